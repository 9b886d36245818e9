//! The generated incident corpus (`bench/make-incident-corpus.py`, in this repository): from
//! the trace id alone `custody preserve` recovers the nine identifiers of its answer key and
//! cites bytes that hold them; the preserve path's observer (line pre-filter, its own thread,
//! re-reads) gives the analysis that parsing every line gives; and the analysis of a large
//! file describes exactly the bytes sealed.
// Tuples of expected values read better than one-off structs here.
#![allow(clippy::type_complexity)]

use crate::collector_util::*;
use custody::bundle::manifest::{Entry, IdentName, Incident, SideEffect, Status};
use custody::bundle::write::Observer;
use custody::collect::analysis::{Analysis, EventKind, IdentStatus, SeedOrigin, Tie};
use custody::collect::analyze::{
    detect, normalize_seed, scan, Analyzer, AnalyzerLimits, FieldMapping, Report, ReportContext,
};
use custody::collect::observe::{AnalysisObserver, ObserveConfig};
use std::path::{Path, PathBuf};
use std::process::Command;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A corpus of `mib` MiB with 200 memory files, generated in a temporary directory; its answer
/// key (`incident.json`, which holds all nine identifiers) is moved out of the evidence.
struct Corpus {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: serde_json::Value,
}

fn corpus(mib: u32) -> Corpus {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("incident");
    let script = repo().join("bench/make-incident-corpus.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .args(["--mib", &mib.to_string(), "--memory-files", "200"])
        .output()
        .expect("python3 runs bench/make-incident-corpus.py");
    assert!(out.status.success(), "corpus generator failed: {}", String::from_utf8_lossy(&out.stderr));
    let key_path = tmp.path().join("incident.json");
    std::fs::rename(dir.join("incident.json"), &key_path).expect("move incident.json out");
    let key = serde_json::from_slice(&std::fs::read(&key_path).expect("incident.json")).expect("incident.json is JSON");
    Corpus { _tmp: tmp, dir, key }
}

/// Every value an event carries (its `ids`, comma-separated lists split).
fn event_values(e: &custody::collect::analysis::Event) -> Vec<String> {
    e.ids.values().flat_map(|v| v.split(',')).map(str::to_lowercase).collect()
}

#[test]
fn corpus_from_its_trace_id_recovers_all_nine_identifiers_and_cites_their_bytes() {
    let c = corpus(8);
    let trace = c.key["trace_id"].as_str().expect("trace").to_string();
    let home = tempfile::tempdir().expect("home");
    let dir = c.dir.display().to_string();
    let p = preserve(home.path(), &["--incident-dir", &dir, "--trace-id", &trace]);
    let a = p.a();
    assert!(p.out["files"].as_u64() > Some(200), "{}", p.out["files"]);
    for n in IdentName::ALL {
        let want = c.key[n.as_str()].as_str().expect("value in incident.json");
        let f = ident(a, n);
        let status = if n == IdentName::TraceId { IdentStatus::Given } else { IdentStatus::Found };
        assert_eq!((f.status, f.value.as_deref()), (status, Some(want)), "{n}: {}", f.why);
        assert!(f.values.iter().any(|v| v.value == want && !v.citations.is_empty()), "{n} is not cited");
    }
    // The background sessions' bundle never reaches the incident.
    assert!(ident(a, IdentName::BundleId).values.iter().all(|v| !v.value.starts_with("bundle-2026.11.2")));
    for k in [EventKind::ToolCall, EventKind::PolicyDecision, EventKind::EgressRequest] {
        assert!(count(a, k) > 0, "no {k:?} event");
    }
    assert!(count(a, EventKind::ApprovalRequest) + count(a, EventKind::ApprovalDecision) > 0);
    assert!(count(a, EventKind::MemoryRead) + count(a, EventKind::MemoryWrite) > 0);
    // Every event tied by a linked value cites a record whose bytes hold one of its values.
    let linked: Vec<_> = a.events.iter().filter(|e| e.tie == Tie::Linked).collect();
    assert!(linked.len() > 10);
    for e in &linked {
        let vals = event_values(e);
        let held = e.citations.iter().any(|cite| {
            let text = String::from_utf8_lossy(&cited_bytes(&c.dir, cite)).to_lowercase();
            vals.iter().any(|v| v.len() >= 4 && text.contains(v.as_str()))
        });
        assert!(held, "{} {:?}: no citation holds one of {vals:?}: {:?}", e.id, e.kind, e.citations);
    }
    // Every evidence kind contributes events; attachments are sealed, not read.
    for kind in ["traces", "policy", "approvals", "memory", "egress", "logs"] {
        assert!(
            a.events.iter().any(|e| e.citations.iter().any(|x| x.path.starts_with(&format!("{kind}/")))),
            "no event cites {kind}/"
        );
    }
    let attachments: Vec<_> = a.sources.iter().filter(|s| s.path.starts_with("attachments/")).collect();
    assert!(!attachments.is_empty());
    assert!(attachments.iter().all(|s| s.records == 0), "{attachments:?}");
}

// ---- The observer (the preserve path) against a plain scan of every line. ----

fn seed(trace: &str) -> custody::collect::analysis::Seed {
    normalize_seed(Some(IdentName::TraceId), trace, SeedOrigin::Flag).expect("a trace id")
}

fn blank_incident() -> Incident {
    Incident {
        identifiers: IdentName::ALL
            .iter()
            .map(|n| custody::bundle::manifest::Identifier {
                name: *n,
                status: Status::Missing,
                value: None,
                sources: Vec::new(),
                conflicts: Vec::new(),
            })
            .collect(),
        category: None,
        side_effect: SideEffect::Unknown,
        notes: Vec::new(),
        tool_notes: Some(Vec::new()),
    }
}

fn entry_of(path: &str, sealed: &[u8], source: &Path) -> Entry {
    Entry {
        path: path.into(),
        kind: path.split('/').next().unwrap_or("logs").to_string(),
        size: sealed.len() as u64,
        sha256: custody::digest::Sha256::of(sealed),
        source: source.display().to_string(),
        collected_at: chrono::Utc::now(),
    }
}

/// The analysis document (`analysis.json`) the observer writes at the end of a seal.
fn finish_doc(obs: &mut dyn Observer) -> Analysis {
    let mut inc = blank_incident();
    let mut doc = Vec::new();
    let summary = obs.finish(&mut inc, &mut doc).expect("finish");
    assert!(summary.is_some(), "the observer analysed");
    serde_json::from_slice(&doc).unwrap_or_else(|e| panic!("analysis.json is not the model: {e}"))
}

/// Runs the observer over every file under `dir` (sorted), small files as bytes and large
/// ones through `observe_file` as the sealer does.
fn observe_dir(dir: &Path, trace: &str) -> Analysis {
    let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[seed(trace)]).expect("start");
    for p in walk(dir) {
        let rel = p.strip_prefix(dir).expect("under dir").display().to_string();
        let bytes = std::fs::read(&p).expect("read");
        let entry = entry_of(&rel, &bytes, &p);
        if bytes.len() as u64 <= custody::bundle::write::SMALL_FILE {
            obs.on_bytes(&entry, &bytes);
        } else {
            custody::bundle::write::observe_file(&mut obs, &entry, &mut std::fs::File::open(&p).expect("open"))
                .expect("observe");
        }
    }
    finish_doc(&mut obs)
}

/// The library alone: every line of every file parsed, in the same order.
fn plain_dir(dir: &Path, trace: &str) -> Analysis {
    let mut an = Analyzer::new(vec![seed(trace)], AnalyzerLimits::default());
    for p in walk(dir) {
        let rel = p.strip_prefix(dir).expect("under dir").display().to_string();
        let bytes = std::fs::read(&p).expect("read");
        let format = detect(&rel, &bytes[..bytes.len().min(16 * 1024)]);
        let kind = rel.split('/').next().unwrap_or("logs").to_string();
        let sha = custody::digest::Sha256::of(&bytes).hex();
        let id = an.begin_source(&rel, &sha, bytes.len() as u64, &kind, format, "detected");
        let s = scan(format, &bytes[..], &FieldMapping::default(), &mut |r| an.push(id, r)).expect("scan");
        an.add_lines(id, s.lines);
    }
    Report::build(an, ReportContext::default()).into_analysis()
}

/// What the two runs must agree on: identifiers, events per kind, and every cited record.
fn essence(
    a: &Analysis,
) -> (Vec<(IdentName, IdentStatus, Option<String>)>, Vec<(&'static str, u64)>, Vec<(String, u64, u64)>) {
    let ids = a.identifiers.iter().map(|i| (i.name, i.status, i.value.clone())).collect();
    let mut cites: Vec<(String, u64, u64)> =
        a.events.iter().flat_map(|e| e.citations.iter().map(|c| (c.path.clone(), c.offset, c.len))).collect();
    cites.sort();
    cites.dedup();
    (ids, counts(a), cites)
}

#[test]
fn corpus_observer_with_prefilter_equals_parsing_every_line() {
    let c = corpus(8);
    let trace = c.key["trace_id"].as_str().expect("trace");
    let observed = observe_dir(&c.dir, trace);
    let plain = plain_dir(&c.dir, trace);
    let (o, p) = (essence(&observed), essence(&plain));
    assert_eq!(o.0, p.0, "identifiers");
    assert_eq!(o.1, p.1, "events per kind");
    assert_eq!(o.2, p.2, "cited records");
    assert!(o.2.len() > 10);
    assert_eq!(observed.problems.len(), plain.problems.len());
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
                "{{\"session_id\":\"sess-late\",\"tool\":\"create_ticket\",\"idempotency_key\":\"idem-{n}\",\"status\":201{extra}}}\n"
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

/// The pre-filter skips lines without a linked value; lines skipped before their value was
/// linked are read again. The result equals parsing every line: here the large file comes
/// first and holds lines of the incident's session only, linked to the trace by a later file.
#[test]
fn prefilter_rereads_lines_skipped_before_their_session_was_linked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut big = calls_of_background_sessions_and_a_late_one(",\"tool_principal\":\"svc@p\"");
    big.push_str("{\"session_id\": broken\n");
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    std::fs::write(dir.path().join("logs/a-calls.jsonl"), &big).expect("write");
    std::fs::write(
        dir.path().join("logs/b-link.jsonl"),
        format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-late\"}}\n"),
    )
    .expect("write");
    let observed = observe_dir(dir.path(), TRACE);
    let plain = plain_dir(dir.path(), TRACE);
    assert_eq!(essence(&observed), essence(&plain));
    let late_calls = (0..).map(|k| k * 1000 + 7).take_while(|n| *n <= big.lines().count()).count() as u64;
    assert_eq!(count(&observed, EventKind::ToolCall), late_calls, "every create_ticket of sess-late");
    assert_eq!(ident_value(&observed, IdentName::SessionId), (IdentStatus::Found, Some("sess-late")));
    assert_eq!(ident_value(&observed, IdentName::ToolPrincipal), (IdentStatus::Found, Some("svc@p")));
    // The malformed last line is reported once, as without the filter.
    assert_eq!(observed.problems.len(), 1, "{:?}", observed.problems);
    assert_eq!(observed.problems[0].line, Some(big.lines().count() as u64));
    assert_eq!(plain.problems.len(), 1);
}

/// A large file that links the session makes the files read before it be re-read while later
/// files are still coming (the eager re-read), and a file sealed after it is read with the new
/// values from the start: the result still equals parsing every line, and a malformed line of
/// the re-read file is reported once.
#[test]
fn a_large_file_linking_the_session_rereads_earlier_files_before_the_last_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut big = calls_of_background_sessions_and_a_late_one(",\"tool_principal\":\"svc@p\"");
    big.push_str("{\"session_id\": broken\n");
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    std::fs::write(dir.path().join("logs/a-calls.jsonl"), &big).expect("write");
    // The link sits in the middle of a large file of other sessions' records.
    let mut link = two_mib_of_session("0123456789abcdef0123456789abcdef", "sess-other");
    link.push_str(&format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-late\"}}\n"));
    link.push_str(&two_mib_of_session("fedcba9876543210fedcba9876543210", "sess-other-2"));
    std::fs::write(dir.path().join("logs/b-link.jsonl"), &link).expect("write");
    // Sealed after the link: the late session's approvals, and its calls again.
    let mut later = String::new();
    let mut n = 0;
    while later.len() < (2 << 20) {
        n += 1;
        if n % 500 == 3 {
            later.push_str(&format!(
                "{{\"session_id\":\"sess-late\",\"approval_id\":\"apr-{n}\",\"decision\":\"approved\"}}\n"
            ));
        } else {
            later.push_str(&format!("{{\"session_id\":\"bg-{}\",\"note\":\"{}\"}}\n", n % 40, "y".repeat(90)));
        }
    }
    std::fs::write(dir.path().join("logs/c-later.jsonl"), &later).expect("write");
    let observed = observe_dir(dir.path(), TRACE);
    let plain = plain_dir(dir.path(), TRACE);
    let (o, p) = (essence(&observed), essence(&plain));
    assert_eq!(o.0, p.0, "identifiers");
    assert_eq!(o.1, p.1, "events per kind");
    assert_eq!(o.2, p.2, "cited records");
    let late_calls = (0..).map(|k| k * 1000 + 7).take_while(|n| *n <= big.lines().count()).count() as u64;
    assert_eq!(count(&observed, EventKind::ToolCall), late_calls, "every create_ticket of sess-late");
    assert_eq!(ident_value(&observed, IdentName::SessionId), (IdentStatus::Found, Some("sess-late")));
    assert!(o.2.iter().any(|(path, _, _)| path == "logs/c-later.jsonl"), "the later file's records are cited");
    assert_eq!(observed.problems.len(), 1, "{:?}", observed.problems);
    assert_eq!(observed.problems[0].path, "logs/a-calls.jsonl");
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

fn sessions(a: &Analysis) -> Vec<String> {
    ident(a, IdentName::SessionId).values.iter().map(|v| v.value.clone()).collect()
}

/// Hands `sealed` to `obs` as the sealer hands a large file's bytes over while it copies them
/// into the archive (256 KiB buffers), with `on_disk` as the file's descriptor.
fn feed_sealed(obs: &mut dyn Observer, entry: &Entry, on_disk: &Path, sealed: &[u8]) {
    obs.on_file(entry, &std::fs::File::open(on_disk).expect("open"));
    for chunk in sealed.chunks(256 << 10) {
        let mut buf = vec![0u8; 256 << 10];
        buf[..chunk.len()].copy_from_slice(chunk);
        obs.on_file_data(&mut buf, chunk.len());
        assert_eq!(buf.len(), 256 << 10, "a swapped-in buffer has the sealer's length");
    }
    obs.on_file_end(Some(xxhash_rust::xxh3::xxh3_64(sealed)));
}

/// A large file that grew after the sealer read it: only the sealed bytes (the entry's size)
/// are analysed, so no citation points outside the sealed blob.
#[test]
fn bytes_appended_after_sealing_are_not_analysed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("calls.jsonl");
    let mut text = two_mib_of_session(TRACE, "sess-sealed");
    let sealed = text.len();
    text.push_str(&format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-appended-later\"}}\n"));
    std::fs::write(&path, &text).expect("write");
    let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[seed(TRACE)]).expect("start");
    let entry = entry_of("logs/calls.jsonl", &text.as_bytes()[..sealed], &path);
    custody::bundle::write::observe_file(&mut obs, &entry, &mut std::fs::File::open(&path).expect("open"))
        .expect("observe");
    let a = finish_doc(&mut obs);
    assert_eq!(sessions(&a), ["sess-sealed"]);
    let cites: Vec<_> = ident(&a, IdentName::SessionId).values[0].citations.iter().map(|c| c.offset + c.len).collect();
    assert!(!cites.is_empty());
    assert!(cites.iter().all(|end| *end <= sealed as u64), "{cites:?}");
}

/// The analysis of a large file read the file again, by positional reads, while or after the
/// sealer copied it: a file rewritten after its copy (a log rotated with `copytruncate`) was
/// analysed from bytes the bundle does not hold. It analyses the bytes the sealer copied.
#[test]
fn regression_the_analysis_of_a_large_file_read_the_file_again_instead_of_its_sealed_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sealed = two_mib_of_session(TRACE, "sess-sealed");
    // Rewritten in place after the copy: same size, another session.
    let path = dir.path().join("calls.jsonl");
    std::fs::write(&path, sealed.replace("sess-sealed", "sess-edited")).expect("write");
    let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[seed(TRACE)]).expect("start");
    feed_sealed(&mut obs, &entry_of("logs/calls.jsonl", sealed.as_bytes(), &path), &path, sealed.as_bytes());
    let a = finish_doc(&mut obs);
    assert_eq!(sessions(&a), ["sess-sealed"]);
    assert!(obs.changed_since_sealed().is_empty(), "nothing was read again");
}

/// A large file the pre-filter must read again (a session linked only by a later file) is
/// re-read from disk at the end and checked against the XXH3 of the sealed bytes. Unchanged,
/// the late session's calls are found; rewritten since its copy, the observer names the file
/// as changed (the sealer then fails the seal and preserve retries from a private snapshot).
#[test]
fn a_reread_that_differs_from_the_sealed_bytes_names_the_file_as_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = calls_of_background_sessions_and_a_late_one("");
    let link = format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-late\"}}\n");
    let path = dir.path().join("a-calls.jsonl");
    for rewritten in [false, true] {
        let on_disk = if rewritten { big.replace("\"tool\":\"read\"", "\"tool\":\"READ\"") } else { big.clone() };
        assert_eq!(on_disk.len(), big.len());
        std::fs::write(&path, &on_disk).expect("write");
        let mut obs = AnalysisObserver::start(ObserveConfig::default(), &[seed(TRACE)]).expect("start");
        feed_sealed(&mut obs, &entry_of("logs/a-calls.jsonl", big.as_bytes(), &path), &path, big.as_bytes());
        obs.on_bytes(&entry_of("logs/b-link.jsonl", link.as_bytes(), &path), link.as_bytes());
        let a = finish_doc(&mut obs);
        if rewritten {
            assert_eq!(obs.changed_since_sealed(), ["logs/a-calls.jsonl"]);
        } else {
            assert!(obs.changed_since_sealed().is_empty());
            assert!(
                count(&a, EventKind::ToolCall) > 2,
                "the re-read found the late session's calls: {:?}",
                a.event_counts
            );
        }
    }
}
