//! Analysis throughput on a corpus directory: `collector_scan DIR TRACE_ID [plain|observer]`.
//! `plain` parses every line (the library's scan and analyzer alone); `observer` runs the
//! preserve path (the sealer's observer: pre-filter, own thread, re-reads). Files are fed in
//! sorted order. Prints the throughput and the nine identifiers found.
use custody::bundle::manifest::{Entry, IdentName, Identifier, Incident, SideEffect, Status};
use custody::bundle::write::Observer;
use custody::collect::analysis::SeedOrigin;
use custody::collect::analyze::{
    detect, normalize_seed, scan, Analyzer, AnalyzerLimits, FieldMapping, Report, ReportContext,
};
use custody::collect::observe::{AnalysisObserver, ObserveConfig};
use custody::digest::Sha256;
use std::io::Read;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(trace)) = (args.first(), args.get(1)) else {
        eprintln!("usage: collector_scan DIR TRACE_ID [plain|observer]");
        return;
    };
    let seed = match normalize_seed(Some(IdentName::TraceId), trace, SeedOrigin::Flag) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("collector_scan: {e}");
            return;
        }
    };
    let mode = args.get(2).map(String::as_str).unwrap_or("observer");
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let on_disk: u64 = files.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    let t0 = Instant::now();
    let ids: Vec<(String, String)> = if mode == "plain" {
        let mapping = FieldMapping::default();
        let mut an = Analyzer::new(vec![seed], AnalyzerLimits::default());
        for p in &files {
            let mut head = Vec::new();
            let Ok(f) = std::fs::File::open(p) else { continue };
            let _ = f.take(16384).read_to_end(&mut head);
            let rel = p.strip_prefix(dir).unwrap_or(p).display().to_string();
            let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let kind = rel.split('/').next().unwrap_or("other").to_string();
            let fmt = detect(&rel, &head);
            let id = an.begin_source(&rel, "-", size, &kind, fmt, "detected");
            let Ok(f) = std::fs::File::open(p) else { continue };
            if let Ok(s) = scan(fmt, f, &mapping, &mut |r| an.push(id, r)) {
                an.add_lines(id, s.lines);
            }
        }
        let a = Report::build(an, ReportContext::default()).into_analysis();
        a.identifiers.iter().map(|r| (r.name.to_string(), format!("{:?} {:?}", r.status, r.value))).collect()
    } else {
        let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[seed]).expect("start");
        for p in &files {
            let rel = p.strip_prefix(dir).unwrap_or(p).display().to_string();
            let kind = rel.split('/').next().unwrap_or("other").to_string();
            let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let entry = Entry {
                path: rel.clone(),
                kind,
                size,
                sha256: Sha256::of(rel.as_bytes()),
                source: p.display().to_string(),
                collected_at: chrono::Utc::now(),
            };
            if size <= custody::bundle::write::SMALL_FILE {
                obs.on_bytes(&entry, &std::fs::read(p).unwrap_or_default());
            } else {
                let mut f = std::fs::File::open(p).expect("open");
                custody::bundle::write::observe_file(&mut obs, &entry, &mut f).expect("read");
            }
        }
        let identifiers = IdentName::ALL
            .iter()
            .map(|n| Identifier {
                name: *n,
                status: Status::Missing,
                value: None,
                sources: Vec::new(),
                conflicts: Vec::new(),
            })
            .collect();
        let mut inc = Incident {
            identifiers,
            category: None,
            side_effect: SideEffect::Unknown,
            notes: vec![],
            tool_notes: Some(vec![]),
        };
        let _ = obs.finish(&mut inc, &mut std::io::sink());
        inc.identifiers.iter().map(|i| (i.name.to_string(), format!("{:?}", i.value))).collect()
    };
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{mode}: {} files, {:.1} MB on disk in {secs:.2}s = {:.1} MB/s",
        files.len(),
        on_disk as f64 / 1e6,
        on_disk as f64 / 1e6 / secs
    );
    for (n, v) in ids {
        println!("  {n:<16} {v}");
    }
}
