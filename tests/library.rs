//! The library for tooling (issue 22 item 1): `custody::Bundle::open` → `VerifiedBundle`, the
//! only way to read a bundle's manifest, typed events, files and cited records through the
//! library; reads after a swap of the bundle file refused; the `timeline` example program.
//! Only the public API is used here (no `internals` path).

use std::path::{Path, PathBuf};

use custody::analysis::{EventKind, OutcomeStatus};
use custody::keys::{PublicKey, SecretKey};
use custody::manifest::IdentName;
use custody::timeline::{Filter, Timeline};
use custody::verify::Trust;
use custody::{BlobError, Bundle, OpenError, VerifiedBundle};

use crate::util::{files_under, made, repo};

/// `fixtures/library/README.md` says how it was made.
const DIGEST: &str = "sha256:c5fcf92c9f40dbe3c38e41e8d7d77808d6c0583ccd73a4788013b2a971bfaec9";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn lib_dir() -> PathBuf {
    repo().join("fixtures/library")
}

fn incident_dir() -> PathBuf {
    repo().join("fixtures/incidents/duplicate-ticket")
}

fn trust() -> Trust {
    Trust::new(vec![PublicKey::load(&lib_dir().join("signer.pub")).unwrap()])
}

fn open() -> VerifiedBundle {
    Bundle::open(lib_dir().join("incident.tar.zst"), &trust()).unwrap()
}

/// A writable copy of the fixture bundle.
fn copy_of_fixture(dir: &Path) -> PathBuf {
    let p = dir.join("copy.tar.zst");
    std::fs::copy(lib_dir().join("incident.tar.zst"), &p).unwrap();
    p
}

#[test]
fn library_open_gives_the_verified_manifest_identifiers_and_typed_events() {
    let b = open();
    assert_eq!(b.digest().to_string(), DIGEST);
    assert!(b.report().intact());
    assert_eq!(b.manifest().entries.len(), files_under(&incident_dir()).len());
    let trace = b.identifiers().iter().find(|i| i.name == IdentName::TraceId).unwrap();
    assert_eq!(trace.value.as_deref(), Some(TRACE));
    let a = b.analysis().unwrap();
    assert_eq!(b.events().len(), a.events.len());
    // The incident: one create_ticket action, two attempts that both took effect.
    let creates: Vec<_> = b
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::ToolCall && e.target.as_deref() == Some("create_ticket"))
        .collect();
    assert_eq!(creates.len(), 2, "{creates:#?}");
    assert!(creates.iter().all(|e| e.outcome.as_ref().map(|o| o.status) == Some(OutcomeStatus::Succeeded)));
    assert!(b.supplement_of().is_none());
    assert_eq!(b.path(), lib_dir().join("incident.tar.zst"));
}

#[test]
fn library_copy_file_streams_a_sealed_file_hashed_again() {
    let b = open();
    for (path, bytes) in files_under(&incident_dir()) {
        let mut out = Vec::new();
        let n = b.copy_file(&path, &mut out).unwrap();
        assert_eq!(n, bytes.len() as u64, "{path}");
        assert!(out == bytes, "{path}: other bytes than the evidence");
    }
    let e = b.copy_file("logs/no-such-file.jsonl", &mut Vec::new()).unwrap_err();
    assert!(matches!(e, BlobError::NoSuchFile(_)), "{e:?}");
}

#[test]
fn library_resolve_gives_each_citation_its_sealed_bytes() {
    let b = open();
    let sources: std::collections::HashMap<String, Vec<u8>> = files_under(&incident_dir()).into_iter().collect();
    let cited: Vec<_> = b.events().iter().flat_map(|e| e.citations.iter()).filter(|c| !c.decompressed).collect();
    assert!(cited.len() > 20, "{}", cited.len());
    let got = b.resolve(&cited).unwrap();
    for (c, bytes) in cited.iter().zip(&got) {
        let src = &sources[&c.path];
        let want = &src[c.offset as usize..(c.offset + c.len) as usize];
        assert_eq!(bytes.as_slice(), want, "{}@{}+{}", c.path, c.offset, c.len);
    }
}

/// A bundle that does not verify gives nothing: one byte flipped, or a signer not trusted.
#[test]
fn library_open_refuses_a_bundle_that_does_not_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let p = copy_of_fixture(tmp.path());
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&p, &bytes).unwrap();
    match Bundle::open(&p, &trust()) {
        Err(OpenError::NotIntact { failed, report, .. }) => {
            assert!(!report.intact());
            assert!(!failed.is_empty(), "{failed}");
        }
        other => panic!("a flipped byte opened: {other:?}"),
    }
    let other_key = SecretKey::generate(&tmp.path().join("other.key")).unwrap();
    let untrusted = Trust::new(vec![other_key.public.clone()]);
    match Bundle::open(lib_dir().join("incident.tar.zst"), &untrusted) {
        Err(OpenError::NotIntact { failed, .. }) => assert_eq!(failed, "signer_trusted"),
        other => panic!("an untrusted signer opened: {other:?}"),
    }
    let e = Bundle::open(tmp.path().join("absent.tar.zst"), &trust()).unwrap_err();
    assert!(matches!(e, OpenError::Read { .. }), "{e:?}");
}

/// The bundle file replaced after it was opened by another valid, signed bundle of the same
/// paths, one file's bytes different: reading that file, a record cited in it, or extracting
/// fails (the blobs are found by digest and hashed again); the files that did not change
/// still read.
#[test]
fn library_reads_after_a_valid_bundle_is_swapped_in_are_refused() {
    let env = crate::util::Env::new();
    let dir = env.path("incident");
    for (path, bytes) in files_under(&incident_dir()) {
        let p = dir.join(&path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    let log = dir.join("logs/tool_calls.jsonl");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.iter().position(|&b| b == b'{').unwrap() + 1;
    bytes.insert(at, b' ');
    std::fs::write(&log, &bytes).unwrap();
    let out = env.run(&["preserve", "--incident-dir", dir.to_str().unwrap(), "--json"]);
    out.expect(0);
    let other = PathBuf::from(out.json()["location"].as_str().unwrap());

    let p = copy_of_fixture(env.tmp.path());
    let b = Bundle::open(&p, &trust()).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::copy(&other, &p).unwrap();
    let e = b.copy_file("logs/tool_calls.jsonl", &mut Vec::new()).unwrap_err();
    assert!(matches!(e, BlobError::Changed { .. }), "{e:?}");
    let mut unchanged = Vec::new();
    b.copy_file("policy/decisions.jsonl", &mut unchanged).unwrap();
    assert_eq!(unchanged, std::fs::read(incident_dir().join("policy/decisions.jsonl")).unwrap());
    let cited: Vec<_> = b
        .events()
        .iter()
        .flat_map(|e| e.citations.iter())
        .filter(|c| c.path == "logs/tool_calls.jsonl")
        .take(2)
        .collect();
    assert!(!cited.is_empty());
    let e = b.resolve(&cited).unwrap_err();
    assert!(matches!(e, custody::CiteError::Changed(_)), "{e:?}");
    let to = env.path("out");
    assert!(b.extract(&to).is_err());
    assert!(!to.exists() || files_under(&to).is_empty(), "extract left files behind");
}

/// The bundle file replaced after it was opened by damaged bytes: every read of it fails,
/// and extract leaves nothing behind.
#[test]
fn library_reads_after_the_bundle_file_is_swapped_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = copy_of_fixture(tmp.path());
    let b = Bundle::open(&p, &trust()).unwrap();
    // One byte of it changed under the same name.
    let mut bytes = std::fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    let e = b.copy_file("logs/tool_calls.jsonl", &mut Vec::new()).unwrap_err();
    assert!(matches!(e, BlobError::Changed { .. }), "{e:?}");
    let cited: Vec<_> = b.events().iter().flat_map(|e| e.citations.iter()).take(3).collect();
    assert!(b.resolve(&cited).is_err());
    let to = tmp.path().join("out");
    assert!(b.extract(&to).is_err());
    assert!(!to.exists() || files_under(&to).is_empty(), "extract left files behind");
}

#[test]
fn library_extract_writes_the_evidence_of_a_verified_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let b = open();
    let done = b.extract(&tmp.path().join("out")).unwrap();
    assert_eq!(done.files.len(), b.manifest().entries.len());
    assert_eq!(files_under(&tmp.path().join("out")), files_under(&incident_dir()));
}

/// A timeline's records are read only from the bundle its events cite.
#[test]
fn library_timeline_attaches_records_only_from_the_bundle_cited() {
    let b = open();
    let mut t = Timeline::of(&b, &Filter::default()).unwrap();
    assert_eq!(t.events.len(), b.events().len());
    let (_env, m) = made();
    let other = Bundle::open(&m.bundle, &Trust::new(vec![PublicKey::load(&m.pubkey).unwrap()])).unwrap();
    let e = t.attach_records(&other).unwrap_err();
    assert!(matches!(e, custody::CiteError::OtherBundle { .. }), "{e:?}");
    assert!(t.records.is_none());
    t.attach_records(&b).unwrap();
    let records = t.records.as_ref().unwrap();
    assert_eq!(records.len(), t.events.len());
    assert!(records.iter().zip(&t.events).all(|(r, e)| r.len() == e.citations.len()));
}

/// In a store: verified with its ledger position, read from the store's own file.
#[test]
fn library_open_in_store_checks_the_ledger_too() {
    let (_env, m) = made();
    let store = custody::store::Store::open(&m.store.display().to_string()).unwrap();
    let trust = Trust::new(vec![PublicKey::load(&m.pubkey).unwrap()]);
    let id = custody::digest::BundleId(custody::digest::Sha256::parse(&m.digest).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let b = rt.block_on(Bundle::open_in_store(&store, &id, &trust)).unwrap();
    assert_eq!(b.digest(), id);
    assert_eq!(b.report().ledger.as_ref().map(|l| l.position), Some(1));
    let absent = custody::digest::BundleId(custody::digest::Sha256::of(b"no such bundle"));
    match rt.block_on(Bundle::open_in_store(&store, &absent, &trust)) {
        Err(OpenError::NotIntact { report, .. }) => {
            assert!(report.findings.iter().any(|f| format!("{:?}", f.kind).contains("BundleMissing")))
        }
        other => panic!("a missing bundle opened: {other:?}"),
    }
}

/// `examples/timeline.rs` (built by `cargo test`) prints one line per event, in time order.
#[test]
fn library_example_prints_the_timeline_in_time_order() {
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/timeline");
    assert!(example.exists(), "{} not built (cargo test builds the examples)", example.display());
    let out = std::process::Command::new(&example)
        .arg(lib_dir().join("incident.tar.zst"))
        .arg(lib_dir().join("signer.pub"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("bundle {DIGEST} sealed at 2026-12-07 18:48:02.395658438 UTC"));
    assert_eq!(lines.len() - 1, open().events().len());
    let times: Vec<&str> =
        lines[1..].iter().map(|l| l.split_whitespace().next().unwrap()).filter(|t| t.starts_with("20")).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> = times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(lines.iter().filter(|l| l.contains(" create_ticket ") && l.contains("tool_call")).count(), 2);
    // A bundle that does not verify: nothing of it printed.
    let tmp = tempfile::tempdir().unwrap();
    let p = copy_of_fixture(tmp.path());
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 40] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let out = std::process::Command::new(&example).arg(&p).arg(lib_dir().join("signer.pub")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The library's timings are `tracing` events (it writes nothing to a terminal itself); the
/// binary prints them only with `CUSTODY_TIMINGS=1`.
#[test]
fn timings_are_tracing_events_the_binary_prints_only_when_asked() {
    let env = crate::util::Env::new();
    let fx = crate::util::fixture_dir();
    let args = ["preserve", "--incident-dir", fx.to_str().unwrap(), "--trace-id", TRACE];
    let quiet = env.cmd(&args).env_remove("CUSTODY_TIMINGS").output().unwrap();
    assert!(quiet.status.success());
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(!stderr.contains("phase="), "{stderr}");
    let timed = env.cmd(&args).env("CUSTODY_TIMINGS", "1").output().unwrap();
    assert!(timed.status.success());
    let stderr = String::from_utf8_lossy(&timed.stderr);
    for phase in ["plan", "seal", "store", "ledger"] {
        assert!(stderr.contains(&format!("preserve phase phase=\"{phase}\" seconds=")), "{phase}: {stderr}");
    }
    assert!(stderr.contains("analysis written waited_for_scan="), "{stderr}");
    // Only custody's timing events: no other crate's logging.
    let events = stderr.lines().filter(|l| l.starts_with("20") && l.contains('Z')).count();
    assert!(events >= 8, "{stderr}");
}

/// A bundle sealed without an analysis opens, with no events and the reason; `open_with`
/// default options read no analysis at all.
#[test]
fn library_a_bundle_without_analysis_says_why() {
    let env = crate::util::Env::new();
    let m = env.preserve_fixture(&["--no-analyze"]);
    let trust = Trust::new(vec![PublicKey::load(&m.pubkey).unwrap()]);
    let b = Bundle::open(&m.bundle, &trust).unwrap();
    assert!(b.events().is_empty());
    let e = b.analysis().unwrap_err();
    assert_eq!(e, custody::NoAnalysis::NotRead { limit: custody::MAX_ANALYSIS });
    assert!(e.to_string().contains("custody analyze"), "{e}");
    assert!(Timeline::of(&b, &Filter::default()).is_err());
    let plain = Bundle::open_with(lib_dir().join("incident.tar.zst"), &self::trust(), &Default::default()).unwrap();
    assert_eq!(plain.analysis().unwrap_err(), custody::NoAnalysis::NotRead { limit: 0 });
    // Opened with the typed analysis, it is held once.
    let typed = open();
    assert!(typed.analysis().is_ok() && typed.manifest().analysis.is_none());
}
