//! The collector's format parsers on arbitrary bytes: content detection, every format's
//! scanner (plain, and through the gzip/zstd sniffing of `scan_auto`), and the analyzer fed
//! with whatever records come out. Nothing may panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

use custody::collect::analyze::{detect, scan, scan_auto, Analyzer, FieldMapping, Format, IdentName};

fuzz_target!(|data: &[u8]| {
    let mapping = FieldMapping::default();
    let _ = detect("input", data);
    let mut analyzer = Analyzer::new(&[(IdentName::TraceId, "4bf92f3577b34da6a3ce929d0e0e4736".to_string())]);
    for f in Format::ALL {
        let src = analyzer.begin_source("input", "00", "logs", f);
        let _ = scan(f, data, &mapping, &mut |r| analyzer.push(src, r));
    }
    let _ = scan_auto("input.jsonl", None, data, &mapping, &mut |_| {});
    let _ = analyzer.finish();
});
