//! The collector's format parsers on arbitrary bytes: content detection, every format's
//! scanner (plain, and through the gzip/zstd/UTF-16 sniffing of `scan_auto`), the analyzer
//! fed with whatever records come out, and the report built from it. Nothing may panic, hang
//! or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

use custody::collect::analysis::SeedOrigin;
use custody::collect::analyze::{
    detect, normalize_seed, scan, scan_auto, Analyzer, AnalyzerLimits, FieldMapping, Format, IdentName, Report,
    ReportContext,
};

fuzz_target!(|data: &[u8]| {
    let mapping = FieldMapping::default();
    let _ = detect("input", data);
    let seeds = normalize_seed(Some(IdentName::TraceId), "4bf92f3577b34da6a3ce929d0e0e4736", SeedOrigin::Flag)
        .into_iter()
        .collect();
    let mut analyzer = Analyzer::new(seeds, AnalyzerLimits::default());
    for f in Format::all() {
        let src = analyzer.begin_source("input", "00", data.len() as u64, "logs", f, "override");
        let _ = scan(f, data, &mapping, &mut |r| analyzer.push(src, r));
    }
    let src =
        analyzer.begin_source("input.jsonl", "00", data.len() as u64, "logs", detect("input.jsonl", data), "detected");
    let _ = scan_auto("input.jsonl", None, data, &mapping, &mut |r| analyzer.push(src, r));
    // A seed taken from the bytes themselves (as `--seed` would be).
    if let Ok(s) = std::str::from_utf8(&data[..data.len().min(64)]) {
        let _ = normalize_seed(None, s, SeedOrigin::Flag);
        let _ = normalize_seed(Some(IdentName::TraceId), s, SeedOrigin::Flag);
    }
    let _ = Report::build(analyzer, ReportContext::default()).into_analysis();
});
