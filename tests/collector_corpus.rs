//! End-to-end test on the generated incident corpus: from the trace id alone, all nine
//! identifiers of incident.json are recovered, and every index entry points at bytes that
//! really hold the trace or session id.

use crate::collector_util as common;

use custody::collect::analyze::{Analyzer, FieldMapping, IdentName, IdentStatus, SideEffectStatus};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn corpus_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("custody-corpus-{}-{label}", std::process::id()));
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
    let dir = corpus_dir("engine");
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
        let mut f = std::fs::File::open(&*e.at.source_path).expect("open");
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
    let dir = corpus_dir("cli");
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

/// Runs the preserve path's observer (pre-filter, own thread, re-reads) over `files`
/// (relative path, bytes on disk), large files through `on_file` as the sealer does, and
/// returns the analysis document it writes (what the bundle's `analysis.json` holds).
fn observe_files(dir: &std::path::Path, trace: &str) -> serde_json::Value {
    use custody::bundle::manifest::{Entry, IdentName as M};
    use custody::bundle::write::Observer;
    use custody::collect::observe::{AnalysisObserver, ObserveConfig};
    let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[(M::TraceId, trace.to_string())]).expect("start");
    for p in common::walk(dir) {
        let rel = p.strip_prefix(dir).unwrap().display().to_string();
        let bytes = std::fs::read(&p).unwrap();
        let entry = Entry {
            path: rel.clone(),
            kind: rel.split('/').next().unwrap().to_string(),
            size: bytes.len() as u64,
            sha256: custody::digest::Sha256::of(&bytes),
            source: p.display().to_string(),
            collected_at: chrono::Utc::now(),
        };
        if bytes.len() as u64 <= custody::bundle::write::SMALL_FILE {
            obs.on_bytes(&entry, &bytes);
        } else {
            custody::bundle::write::observe_file(&mut obs, &entry, &mut std::fs::File::open(&p).unwrap()).unwrap();
        }
    }
    let mut inc = custody::preserve::incident_from(&Default::default());
    let mut doc = Vec::new();
    obs.finish(&mut inc, &mut doc).unwrap().expect("analysis");
    let doc: serde_json::Value = serde_json::from_slice(&doc).expect("the analysis document is JSON");
    crate::collector_util::assert_schema("analysis.v1.schema.json", &doc);
    doc
}

/// The engine's analysis as the JSON it is sealed as.
fn json(a: &custody::collect::analyze::Analysis) -> serde_json::Value {
    serde_json::to_value(a).expect("serialize analysis")
}

/// Every index entry's (path relative to `dir`, offset, length), for comparing index
/// entries across runs.
fn index_set(analysis: &serde_json::Value, dir: &std::path::Path) -> Vec<(String, u64, u64)> {
    let prefix = format!("{}/", dir.display());
    let entries = analysis["index"].as_array().expect("index");
    let mut v: Vec<(String, u64, u64)> = entries
        .iter()
        .map(|e| {
            let path = e["source_path"].as_str().unwrap_or_default();
            (path.trim_start_matches(&prefix).to_string(), e["offset"].as_u64().unwrap(), e["len"].as_u64().unwrap())
        })
        .collect();
    v.sort();
    v
}

/// Each identifier's values (value, records), in report order.
fn ident_values(analysis: &serde_json::Value) -> Vec<Vec<(String, u64)>> {
    let ids = analysis["identifiers"].as_array().expect("identifiers");
    ids.iter()
        .map(|id| {
            let values = id["values"].as_array().expect("values");
            values.iter().map(|v| (v["value"].as_str().unwrap().to_string(), v["records"].as_u64().unwrap())).collect()
        })
        .collect()
}

/// 3 MiB of tool calls: background sessions' reads, and every 1000th line a `create_ticket`
/// of session `sess-late` (with `extra` JSON members), which only a later file links to the
/// incident's trace.
fn calls_of_background_sessions_and_a_late_one(extra: &str) -> String {
    let mut big = String::new();
    let mut n = 0;
    while big.len() < (3 << 20) {
        n += 1;
        if n % 1000 == 7 {
            big.push_str(&format!(
                "{{\"session_id\":\"sess-late\",\"tool\":\"create_ticket\",\"idempotency_key\":\"idem-{n}\"{extra}}}\n"
            ));
        } else {
            big.push_str(&format!(
                "{{\"session_id\":\"bg-{}\",\"tool\":\"read\",\"pad\":\"{}\"}}\n",
                n % 50,
                "x".repeat(100)
            ));
        }
    }
    big
}

/// The pre-filter skips lines without any linked value; lines skipped before a value was
/// linked are read again. The result equals parsing every line: here the large file is
/// scanned first, holding lines of the incident's session only, and the session is linked to
/// the trace only by a later file.
#[test]
fn prefilter_rereads_lines_skipped_before_their_session_was_linked() {
    let dir = tempfile::tempdir().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut big = calls_of_background_sessions_and_a_late_one(",\"tool_principal\":\"svc@p\"");
    big.push_str("{\"session_id\": broken\n");
    std::fs::write(dir.path().join("a-calls.jsonl"), &big).unwrap();
    // The idempotency keys lead to a third file, read before the link is known too.
    std::fs::write(
        dir.path().join("b-link.jsonl"),
        format!("{{\"trace_id\":\"{trace}\",\"session_id\":\"sess-late\"}}\n"),
    )
    .unwrap();
    let doc = observe_files(dir.path(), trace);
    let mut an = Analyzer::new(&[(IdentName::TraceId, trace.to_string())]);
    common::feed_dir(&mut an, dir.path(), &FieldMapping::default());
    let plain = json(&an.finish());
    let got = index_set(&doc, dir.path());
    assert_eq!(got, index_set(&plain, dir.path()));
    assert!(got.iter().filter(|e| e.0 == "a-calls.jsonl").count() > 2, "{got:?}");
    assert_eq!(ident_values(&doc), ident_values(&plain));
    // The malformed last line is reported once, as without the filter.
    assert_eq!(doc["problems"].as_array().map(Vec::len), Some(1), "{}", doc["problems"]);
    assert_eq!(plain["problems"].as_array().map(Vec::len), Some(1));
}

/// On the generated corpus the preserve path's analysis equals the engine's plain scan.
#[test]
fn corpus_observer_with_prefilter_equals_parsing_every_line() {
    let dir = corpus_dir("observer");
    let incident: serde_json::Value = serde_json::from_slice(&std::fs::read(answer_key(&dir)).unwrap()).unwrap();
    let trace = incident["trace_id"].as_str().unwrap();
    let doc = observe_files(&dir, trace);
    let mut an = Analyzer::new(&[(IdentName::TraceId, trace.to_string())]);
    common::feed_dir(&mut an, &dir, &FieldMapping::default());
    let plain = json(&an.finish());
    assert_eq!(index_set(&doc, &dir), index_set(&plain, &dir));
    let (ids, plain_ids) = (doc["identifiers"].as_array().unwrap(), plain["identifiers"].as_array().unwrap());
    assert_eq!(ids.len(), plain_ids.len());
    for (a, b) in ids.iter().zip(plain_ids) {
        assert_eq!((&a["status"], &a["value"]), (&b["status"], &b["value"]), "{}", a["ident"]);
    }
    assert_eq!(ident_values(&doc), ident_values(&plain));
    let calls = doc["linkage"]["tool_calls"].as_array().map(Vec::len);
    assert!(calls > Some(0));
    assert_eq!(calls, plain["linkage"]["tool_calls"].as_array().map(Vec::len));
    assert_eq!(doc["linkage"]["egress"], plain["linkage"]["egress"]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(answer_key(&dir));
}

/// A large file that grew after the sealer read it: only the sealed bytes (the entry's
/// size) are analysed, so the index never cites bytes outside the sealed blob.
#[test]
fn bytes_appended_after_sealing_are_not_analysed() {
    use custody::bundle::manifest::IdentName as M;
    use custody::collect::observe::{AnalysisObserver, ObserveConfig};
    let dir = tempfile::tempdir().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let path = dir.path().join("calls.jsonl");
    let mut text = two_mib_of_session(trace, "sess-sealed");
    let sealed = text.len() as u64;
    text.push_str(&format!("{{\"trace_id\":\"{trace}\",\"session_id\":\"sess-appended-later\"}}\n"));
    std::fs::write(&path, &text).unwrap();
    let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[(M::TraceId, trace.into())]).unwrap();
    let entry = entry_of("logs/calls.jsonl", &text.as_bytes()[..sealed as usize], &path);
    custody::bundle::write::observe_file(&mut obs, &entry, &mut std::fs::File::open(&path).unwrap()).unwrap();
    let doc = finish_doc(&mut obs);
    assert_eq!(sessions(&doc), ["sess-sealed"]);
    let index = index_set(&doc, dir.path());
    assert!(!index.is_empty());
    assert!(index.iter().all(|(_, offset, len)| offset + len <= sealed), "{index:?}");
}

/// 2 MiB of records of `trace` and `session`.
fn two_mib_of_session(trace: &str, session: &str) -> String {
    let mut text = String::new();
    while text.len() < (2 << 20) {
        text.push_str(&format!(
            "{{\"trace_id\":\"{trace}\",\"session_id\":\"{session}\",\"pad\":\"{}\"}}\n",
            "x".repeat(64)
        ));
    }
    text
}

/// The analysis document `obs` writes at the end of a seal.
fn finish_doc(obs: &mut dyn custody::bundle::write::Observer) -> serde_json::Value {
    let mut inc = custody::preserve::incident_from(&Default::default());
    let mut doc = Vec::new();
    obs.finish(&mut inc, &mut doc).unwrap().expect("analysis");
    serde_json::from_slice(&doc).unwrap()
}

/// The session ids the analysis found.
fn sessions(doc: &serde_json::Value) -> Vec<String> {
    ident_values(doc)[IdentName::SessionId.position()].iter().map(|(v, _)| v.clone()).collect()
}

/// Hands `sealed` to `obs` as the sealer hands a large file's bytes over while it copies them
/// into the archive (256 KiB buffers), with `on_disk` as the file's descriptor.
fn feed_sealed(
    obs: &mut dyn custody::bundle::write::Observer,
    entry: &custody::bundle::manifest::Entry,
    on_disk: &std::path::Path,
    sealed: &[u8],
) {
    obs.on_file(entry, &std::fs::File::open(on_disk).unwrap());
    for chunk in sealed.chunks(256 << 10) {
        let mut buf = vec![0u8; 256 << 10];
        buf[..chunk.len()].copy_from_slice(chunk);
        obs.on_file_data(&mut buf, chunk.len());
        assert_eq!(buf.len(), 256 << 10, "a swapped-in buffer has the sealer's length");
    }
    obs.on_file_end(Some(xxhash_rust::xxh3::xxh3_64(sealed)));
}

fn entry_of(path: &str, sealed: &[u8], source: &std::path::Path) -> custody::bundle::manifest::Entry {
    custody::bundle::manifest::Entry {
        path: path.into(),
        kind: "logs".into(),
        size: sealed.len() as u64,
        sha256: custody::digest::Sha256::of(sealed),
        source: source.display().to_string(),
        collected_at: chrono::Utc::now(),
    }
}

/// The analysis of a large file read the file again, by positional reads, while or after the
/// sealer copied it: a file rewritten after its copy (a log rotated with `copytruncate`, say)
/// was analysed from bytes the bundle does not hold. It now analyses the bytes the sealer
/// copied into the archive, whatever the file holds by then.
#[test]
fn regression_the_analysis_of_a_large_file_read_the_file_again_instead_of_its_sealed_bytes() {
    use custody::bundle::manifest::IdentName as M;
    use custody::bundle::write::Observer;
    use custody::collect::observe::{AnalysisObserver, ObserveConfig};
    let dir = tempfile::tempdir().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sealed = two_mib_of_session(trace, "sess-sealed");
    // Rewritten in place after the copy: same size, another session.
    let path = dir.path().join("calls.jsonl");
    std::fs::write(&path, sealed.replace("sess-sealed", "sess-edited")).unwrap();
    let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[(M::TraceId, trace.into())]).unwrap();
    feed_sealed(&mut obs, &entry_of("logs/calls.jsonl", sealed.as_bytes(), &path), &path, sealed.as_bytes());
    let doc = finish_doc(&mut obs);
    assert_eq!(sessions(&doc), ["sess-sealed"]);
    assert!(obs.changed_since_sealed().is_empty(), "nothing was read again");
}

/// A large file the pre-filter must read again (a session linked only by a later file) is
/// re-read from disk at the end; what the re-read sees is checked against the XXH3 of the
/// sealed bytes. Unchanged, the late session's calls are found; rewritten since its copy,
/// the observer names the file as changed (the sealer then fails the seal, and preserve
/// retries it from a private snapshot).
#[test]
fn a_reread_that_differs_from_the_sealed_bytes_names_the_file_as_changed() {
    use custody::bundle::manifest::IdentName as M;
    use custody::bundle::write::Observer;
    use custody::collect::observe::{AnalysisObserver, ObserveConfig};
    let dir = tempfile::tempdir().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let big = calls_of_background_sessions_and_a_late_one("");
    let link = format!("{{\"trace_id\":\"{trace}\",\"session_id\":\"sess-late\"}}\n");
    let path = dir.path().join("a-calls.jsonl");
    for rewritten in [false, true] {
        let on_disk = if rewritten { big.replace("\"tool\":\"read\"", "\"tool\":\"READ\"") } else { big.clone() };
        assert_eq!(on_disk.len(), big.len());
        std::fs::write(&path, &on_disk).unwrap();
        let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[(M::TraceId, trace.into())]).unwrap();
        feed_sealed(&mut obs, &entry_of("logs/a-calls.jsonl", big.as_bytes(), &path), &path, big.as_bytes());
        obs.on_bytes(&entry_of("logs/b-link.jsonl", link.as_bytes(), &path), link.as_bytes());
        let doc = finish_doc(&mut obs);
        if rewritten {
            assert_eq!(obs.changed_since_sealed(), ["logs/a-calls.jsonl"]);
        } else {
            assert!(obs.changed_since_sealed().is_empty());
            let calls = doc["linkage"]["tool_calls"].as_array().map(Vec::len).unwrap_or(0);
            assert!(calls > 2, "the re-read found the late session's calls: {}", doc["linkage"]);
        }
    }
}
