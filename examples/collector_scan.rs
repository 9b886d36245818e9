//! Analysis throughput on a corpus directory: `collector_scan DIR TRACE_ID [plain|observer]`.
//! `plain` parses every line (the engine alone); `observer` runs the preserve path (the
//! sealer's observer: pre-filter, own thread, re-reads). Files are fed in sorted order.
use custody::bundle::manifest::{Entry, IdentName, Incident, SideEffect};
use custody::bundle::write::Observer;
use custody::collect::analyze::{detect, scan, Analyzer, FieldMapping, IdentName as E};
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
    let ids: Vec<(String, String)>;
    if mode == "plain" {
        let mapping = FieldMapping::default();
        let mut an = Analyzer::new(&[(E::TraceId, trace.clone())]);
        for p in &files {
            let mut head = Vec::new();
            let Ok(f) = std::fs::File::open(p) else { continue };
            let _ = f.take(16384).read_to_end(&mut head);
            let name = p.display().to_string();
            let id = an.begin_source(&name, "-", "bench", detect(&name, &head));
            let fmt = detect(&name, &head);
            let Ok(f) = std::fs::File::open(p) else { continue };
            let _ = scan(fmt, f, &mapping, &mut |r| an.push(id, r));
        }
        let a = an.finish();
        ids = a.identifiers.iter().map(|r| (r.ident.to_string(), format!("{:?}", r.value))).collect();
    } else {
        let mut obs =
            AnalysisObserver::start(ObserveConfig::default(), &[(IdentName::TraceId, trace.clone())]).expect("start");
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
            if size <= 1 << 20 {
                obs.on_bytes(&entry, &std::fs::read(p).unwrap_or_default());
            } else {
                let mut f = std::fs::File::open(p).expect("open");
                custody::bundle::write::observe_file(&mut obs, &entry, &mut f).expect("read");
            }
        }
        let mut inc =
            Incident { identifiers: Vec::new(), category: None, side_effect: SideEffect::Unknown, notes: vec![] };
        inc.identifiers = custody::preserve::incident_from(&Default::default()).identifiers;
        let _ = obs.finish(&mut inc, &mut std::io::sink());
        ids = inc.identifiers.iter().map(|i| (i.name.to_string(), format!("{:?}", i.value))).collect();
    }
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
