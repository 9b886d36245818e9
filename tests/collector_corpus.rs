//! End-to-end test on the generated incident corpus: from the trace id alone, all nine
//! identifiers of incident.json are recovered, and every index entry points at bytes that
//! really hold the trace or session id.

use crate::collector_util as common;

use custody::collect::analyze::{Analyzer, FieldMapping, IdentName, IdentStatus, SideEffectStatus};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn corpus_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("custody-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/make-incident-corpus.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .args(["--mib", "8", "--memory-files", "200"])
        .output()
        .expect("run make-incident-corpus.py");
    assert!(out.status.success(), "corpus generator failed: {out:?}");
    // incident.json is the answer key: it holds all nine identifiers, so it must not be
    // part of the evidence the analysis sees.
    std::fs::rename(dir.join("incident.json"), answer_key(&dir)).expect("move incident.json out");
    dir
}

fn answer_key(dir: &std::path::Path) -> PathBuf {
    dir.with_extension("incident.json")
}

#[test]
fn corpus_trace_id_recovers_all_nine_identifiers() {
    let dir = corpus_dir();
    let incident: serde_json::Value =
        serde_json::from_slice(&std::fs::read(answer_key(&dir)).expect("incident.json")).expect("incident json");
    let trace = incident["trace_id"].as_str().expect("trace").to_string();
    let session = incident["session_id"].as_str().expect("session").to_string();

    let mapping = FieldMapping::default();
    let mut an = Analyzer::new(&[(IdentName::TraceId, trace.clone())]);
    let t0 = Instant::now();
    let bytes = common::feed_dir(&mut an, &dir, &mapping);
    let scan_secs = t0.elapsed().as_secs_f64();
    let analysis = an.finish();
    let total_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "corpus: {bytes} bytes scanned in {scan_secs:.3}s ({:.1} MB/s), analysis total {total_secs:.3}s, {} incident records",
        bytes as f64 / 1e6 / scan_secs,
        analysis.stats.incident_records
    );

    for ident in IdentName::ALL {
        let rep = analysis.identifiers.iter().find(|r| r.ident == ident).expect("report per ident");
        let want = incident[ident.as_str()].as_str().expect("value in incident.json");
        assert_eq!(rep.status, IdentStatus::Present, "{ident}: {rep:?}");
        assert_eq!(rep.value.as_deref(), Some(want), "{ident}");
        assert!(!rep.values.is_empty() && !rep.values[0].places.is_empty());
    }
    // The background bundle never leaks into the incident.
    let bundle = &analysis.identifiers[IdentName::BundleId.position()];
    assert!(bundle.values.iter().all(|v| v.value != "bundle-2026.11.2"));

    // Linkage: trace → session edge, tool calls, approvals, egress, memory.
    assert!(analysis.linkage.chain.iter().any(|e| e.from == IdentName::TraceId
        && e.from_value == trace
        && e.to == IdentName::SessionId
        && e.to_value == session));
    assert!(!analysis.linkage.tool_calls.is_empty());
    assert!(!analysis.linkage.approvals.is_empty());
    assert!(!analysis.linkage.egress.is_empty());
    assert!(!analysis.linkage.decisions.is_empty());
    assert!(analysis.linkage.memory_reads + analysis.linkage.memory_writes > 0);
    let hint = analysis.side_effect_hint.as_ref().expect("writes seen");
    assert!(hint.idempotency_keys.iter().any(|k| k == incident["idempotency_key"].as_str().unwrap_or("")));
    if hint.status == SideEffectStatus::Unknown {
        assert!(hint.warning.starts_with("do not repeat"));
    }

    // Index: non-empty, and each slice holds the trace or session id.
    assert!(analysis.index.len() > 10);
    for e in &analysis.index {
        assert!(!e.at.decompressed);
        let mut f = std::fs::File::open(&e.at.source_path).expect("open");
        f.seek(SeekFrom::Start(e.at.offset)).expect("seek");
        let mut buf = vec![0u8; e.at.len as usize];
        f.read_exact(&mut buf).expect("read slice");
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains(&trace) || text.contains(&session), "index entry {e:?} does not hold the incident ids");
    }
    // Every source kind contributes.
    for kind in ["traces", "policy", "approvals", "memory", "egress", "logs"] {
        assert!(
            analysis.index.iter().any(|e| e.at.source_path.contains(&format!("/{kind}/"))),
            "no index entry from {kind}"
        );
    }
    // Attachments are opaque and never scanned.
    assert!(analysis.sources.iter().filter(|s| s.source_path.contains("/attachments/")).all(|s| s.records == 0));
    let json = serde_json::to_string(&analysis).expect("serialize");
    assert!(json.contains("\"trace_id\""));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(answer_key(&dir));
}

/// The whole path through the binary: `custody preserve --incident-dir CORPUS --trace-id T
/// --json`, then `custody show --json`: the manifest's identifiers equal incident.json's.
#[test]
fn corpus_preserve_from_trace_id_recovers_all_nine_identifiers_in_the_manifest() {
    let dir = corpus_dir();
    let incident: serde_json::Value =
        serde_json::from_slice(&std::fs::read(answer_key(&dir)).expect("incident.json")).expect("incident json");
    let trace = incident["trace_id"].as_str().expect("trace");
    let home = tempfile::tempdir().expect("home");
    let (p, show) = crate::collector_util::preserve_and_show(
        home.path(),
        &["--incident-dir", &dir.display().to_string(), "--trace-id", trace],
    );
    assert!(p["files"].as_u64() > Some(100));
    for ident in IdentName::ALL {
        let id = crate::collector_util::ident(&show, ident.as_str());
        assert_eq!(id["status"], "present", "{ident}: {id}");
        assert_eq!(id["value"], incident[ident.as_str()], "{ident}: {id}");
        assert!(id.get("conflicts").is_none(), "{ident}: {id}");
    }
    let a = &show["manifest"]["analysis"];
    crate::collector_util::assert_schema("analysis.v1.schema.json", a);
    assert!(a["index"].as_array().map(Vec::len) > Some(10));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(answer_key(&dir));
}
