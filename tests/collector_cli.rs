//! The collector through the real `custody` binary, asserted on `--json` output, the
//! bundle's `manifest.json` and `analysis.json` (the human output is not asserted here):
//! flags against evidence, the spec file, the field map, format overrides, `--no-analyze`,
//! `--no-approval-path`, every kind of unreadable input, symlinks, growing files, 100 000
//! files, determinism, and a seedless run that flags the same defects as a search.

use std::io::Write;
use std::path::Path;

use crate::collector_util::*;
use custody::collect::analysis::{IdentStatus, Mode};
use custody::collect::analyze::IdentName;
use serde_json::Value;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn manifest(p: &Preserved) -> Value {
    serde_json::from_slice(&bundle_member(&p.bundle, "manifest.json").expect("manifest.json"))
        .expect("manifest is JSON")
}

/// The manifest's identifier `name`.
fn mident<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["incident"]["identifiers"]
        .as_array()
        .and_then(|v| v.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no identifier {name}"))
}

fn dup_ticket() -> String {
    s(&incident("duplicate-ticket"))
}

/// The manifest records the nine identifiers with their evidence (each record source is a
/// sealed entry, a field and an offset inside it), references `analysis.json` by digest, and
/// says which field map was used; the bundle verifies.
#[test]
fn the_manifest_records_the_analysis_its_identifiers_and_the_field_map_used() {
    let home = tmp();
    let p = preserve(home.path(), &["--incident-dir", &dup_ticket(), "--trace-id", TRACE]);
    let m = manifest(&p);
    let entries = m["entries"].as_array().expect("entries");
    let want = [
        ("trace_id", TRACE),
        ("session_id", "sess-7f3a9c2e41d08b65"),
        ("agent_id", "support-triage-agent"),
        ("tool_principal", "svc-ticketing@prod"),
        ("approval_id", "apr-5d2e91b7c4a0"),
        ("bundle_id", "bundle-2026.11.3-a41c"),
        ("change_id", "chg-48213"),
        ("rollout_wave", "wave-2"),
        ("idempotency_key", "idem-9b1f4c7a2e6d0358"),
    ];
    for (name, value) in want {
        let id = mident(&m, name);
        assert_eq!((id["status"].as_str(), id["value"].as_str()), (Some("present"), Some(value)), "{id}");
        assert!(id.get("conflicts").is_none(), "{id}");
        let records: Vec<&Value> =
            id["sources"].as_array().expect("sources").iter().filter(|s| s["origin"] == "record").collect();
        assert!(!records.is_empty(), "{name}: no record source");
        for r in records {
            let e =
                entries.iter().find(|e| e["path"] == r["path"]).unwrap_or_else(|| panic!("{name}: {r} names no entry"));
            assert!(r["field"].is_string());
            assert!(r["offset"].as_u64().expect("offset") < e["size"].as_u64().expect("size"), "{r}");
        }
    }
    // analysis.json is referenced by its digest and size.
    let bytes = bundle_member(&p.bundle, "analysis.json").expect("analysis.json");
    use sha2::Digest;
    assert_eq!(m["analysis_ref"]["member"], "analysis.json");
    assert_eq!(m["analysis_ref"]["sha256"].as_str(), Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()));
    assert_eq!(m["analysis_ref"]["size"].as_u64(), Some(bytes.len() as u64));
    // custody-fields.toml at the incident directory's root was used, and the journal says so.
    assert_eq!(p.a().field_mapping.origin, "incident_dir");
    assert!(p.a().field_mapping.path.as_deref().is_some_and(|x| x.ends_with("custody-fields.toml")));
    assert!(m["journal"]
        .as_array()
        .expect("journal")
        .iter()
        .any(|e| e["event"] == "note" && e["detail"].as_str().unwrap_or("").contains("custody-fields.toml")));
    // The duplicate is a note of the incident and the side effect happened.
    assert_eq!(m["incident"]["side_effect"], "happened");
    assert_eq!(p.out["side_effect"], "happened");
    let notes = m["incident"]["tool_notes"].as_array().expect("tool_notes");
    assert!(
        notes.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("custody analysis:")
            && n.contains("DUPLICATE: create_ticket took effect 2 times under idempotency key idem-9b1f4c7a2e6d0358"))),
        "{notes:?}"
    );
    let show = custody(home.path(), &["show", &s(&p.bundle), "--json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert_eq!(show.json()["verdict"], "intact");
}

/// A flag that disagrees with the evidence is what the manifest records; the evidence's
/// value is listed as a conflict, and the analysis says the given value is in no record.
#[test]
fn a_flag_disagreeing_with_the_evidence_wins_and_the_evidence_is_listed() {
    let home = tmp();
    let p = preserve(
        home.path(),
        &["--incident-dir", &dup_ticket(), "--trace-id", TRACE, "--bundle-id", "bundle-typed-wrong"],
    );
    let m = manifest(&p);
    let b = mident(&m, "bundle_id");
    assert_eq!(b["value"], "bundle-typed-wrong");
    assert_eq!(b["sources"][0]["origin"], "flag");
    let c = b["conflicts"].as_array().expect("conflicts listed");
    assert!(
        c.iter()
            .any(|c| c["value"] == "bundle-2026.11.3-a41c" && !c["sources"].as_array().expect("sources").is_empty()),
        "{c:?}"
    );
    let f = ident(p.a(), IdentName::BundleId);
    assert_eq!((f.status, f.value.as_deref()), (IdentStatus::NotObserved, Some("bundle-typed-wrong")));
    assert_eq!(f.values.iter().map(|v| v.value.as_str()).collect::<Vec<_>>(), ["bundle-2026.11.3-a41c"]);
}

/// A decision log and a trace disagree on the bundle of one session: a conflict with both
/// values and their fields, not a pick.
#[test]
fn two_bundle_ids_for_one_session_are_a_finding_not_a_pick() {
    let home = tmp();
    let dir = collector_fixture("two-bundle-ids-one-session");
    let p = preserve(home.path(), &["--source", &format!("policy={}", s(&dir)), "--session-id", "sess-conflict"]);
    let f = ident(p.a(), IdentName::BundleId);
    assert_eq!((f.status, f.value.as_deref()), (IdentStatus::Conflict, None));
    let mut got: Vec<(&str, Vec<String>)> = f.values.iter().map(|v| (v.value.as_str(), v.fields.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("bundle-A", vec!["bundles.agent-policy.revision".to_string()]),
            ("bundle-B", vec!["attributes.deployment.bundle_id".to_string()])
        ]
    );
    let m = manifest(&p);
    let b = mident(&m, "bundle_id");
    assert!(b["value"].is_null(), "{b}");
    let mut vals: Vec<&str> =
        b["conflicts"].as_array().expect("conflicts").iter().filter_map(|c| c["value"].as_str()).collect();
    vals.sort_unstable();
    assert_eq!(vals, ["bundle-A", "bundle-B"]);
    // No hop is ticked with a conflicted value.
    let bundle_hop =
        p.a().chain.hops.iter().find(|h| h.to == custody::collect::analysis::NodeName::Bundle).expect("hop");
    assert_ne!(bundle_hop.status, custody::collect::analysis::HopStatus::Linked);
}

#[test]
fn a_spec_file_replaces_flags_and_its_bytes_are_sealed() {
    let home = tmp();
    let dir = tmp();
    let spec = dir.path().join("incident.toml");
    let custom = collector_fixture("generic/tool-calls-custom.jsonl");
    let text = format!(
        r#"# incident spec
incident_dir = "{inc}"
category = "unauthorized_side_effect"
notes = ["paged at 14:08", "customer C-20417"]

[identifiers]
trace_id = "{TRACE}"

[[sources]]
kind = "custom"
path = "{custom}"
format = "jsonl"

[fields]
session_id = ["meta.sid", "session_id"]
tool_principal = ["caller", "tool_principal"]
"#,
        inc = dup_ticket(),
        custom = s(&custom)
    );
    std::fs::write(&spec, &text).expect("write spec");
    let p = preserve(home.path(), &["--spec", &s(&spec)]);
    let m = manifest(&p);
    let e = m["entries"].as_array().expect("entries").iter().find(|e| e["kind"] == "spec").expect("spec entry");
    assert_eq!(e["path"], "spec/incident.toml");
    use sha2::Digest;
    let want = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    assert_eq!(e["sha256"].as_str().map(|x| x.trim_start_matches("sha256:")), Some(want.as_str()));
    assert_eq!(m["incident"]["category"], "unauthorized_side_effect");
    assert!(m["incident"]["notes"].as_array().expect("notes").iter().any(|n| n == "paged at 14:08"));
    let a = p.a();
    assert_eq!(a.seeds[0].origin, custody::collect::analysis::SeedOrigin::Spec);
    assert_eq!(ident_value(a, IdentName::TraceId), (IdentStatus::Given, Some(TRACE)));
    assert_eq!(mident(&m, "trace_id")["sources"][0]["origin"], "spec");
    // The custom file's first line is of the same trace (`meta.trace`) in another session
    // (`meta.sid`, read by the spec's mapping): two sessions for one trace, none picked.
    let sid = ident(a, IdentName::SessionId);
    assert_eq!((sid.status, sid.value.as_deref()), (IdentStatus::Conflict, None));
    let mut got: Vec<(&str, &[String])> = sid.values.iter().map(|v| (v.value.as_str(), v.fields.as_slice())).collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0, got[0].1), ("sess-7f3a9c2e41d08b65", got[0].1));
    assert_eq!((got[1].0, got[1].1), ("sess-fixture-0001", ["meta.sid".to_string()].as_slice()));
    assert_eq!(a.field_mapping.origin, "spec");
    let src = a.sources.iter().find(|x| x.path == "custom/tool-calls-custom.jsonl").expect("the spec's source");
    assert_eq!((src.format.as_str(), src.format_origin.as_str()), ("jsonl", "override"));
    // The spec's mapping reads the custom file: its caller is a principal of the incident.
    assert!(ident(a, IdentName::ToolPrincipal)
        .values
        .iter()
        .any(|v| v.value == "svc-fx@prod" && v.fields == ["caller"]));
}

#[test]
fn the_field_map_flag_maps_custom_field_names() {
    let base = collector_fixture("generic");
    let src = format!("logs={}", s(&base.join("tool-calls-custom.jsonl")));
    // Without the mapping, the custom names hold nothing custody knows.
    let home = tmp();
    let p = preserve(home.path(), &["--source", &src, "--trace-id", TRACE]);
    assert_eq!(p.a().seeds[0].records, 1, "`meta.trace` is a trace id by the generic rules");
    assert_eq!(ident_value(p.a(), IdentName::SessionId), (IdentStatus::Unknown, None), "`meta.sid` is not");
    assert_eq!(ident_value(p.a(), IdentName::IdempotencyKey), (IdentStatus::Unknown, None), "nor `headers.Idem`");
    // With it, the session, principal and idempotency key are found in the mapped fields.
    for map in ["custom-fields-mapping.toml", "custom-fields-mapping.json"] {
        let p = preserve(home.path(), &["--source", &src, "--trace-id", TRACE, "--field-map", &s(&base.join(map))]);
        let a = p.a();
        assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some("sess-fixture-0001")), "{map}");
        assert_eq!(ident(a, IdentName::SessionId).values[0].fields, ["meta.sid"], "{map}");
        assert_eq!(ident_value(a, IdentName::ToolPrincipal), (IdentStatus::Found, Some("svc-fx@prod")), "{map}");
        assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some("idem-fx-2")), "{map}");
        assert_eq!(a.field_mapping.origin, "flag");
        // The mapping file lives outside the evidence: it is sealed too, as kind `spec`.
        let m = manifest(&p);
        assert!(m["entries"].as_array().expect("entries").iter().any(|e| e["path"] == format!("spec/{map}")), "{map}");
    }
    // A broken mapping given explicitly is a usage error (exit 2) naming the file.
    let bad = tmp();
    let bad_map = bad.path().join("bad.toml");
    std::fs::write(&bad_map, "[fields]\nsesion_id = [\"x\"]\n").expect("write");
    let r = custody(home.path(), &["preserve", "--source", &src, "--field-map", &s(&bad_map)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("the field mapping cannot be used"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown variant `sesion_id`"), "{}", r.stderr);
}

/// An error says where: a broken mapping file is named.
#[test]
fn a_broken_field_map_is_named_in_the_error() {
    let home = tmp();
    let bad = tmp();
    let bad_map = bad.path().join("bad.toml");
    std::fs::write(&bad_map, "[fields]\nsesion_id = [\"x\"]\n").expect("write");
    let src = format!("logs={}", s(&collector_fixture("generic/tool-calls-custom.jsonl")));
    let r = custody(home.path(), &["preserve", "--source", &src, "--field-map", &s(&bad_map)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad.toml"), "{}", r.stderr);
}

#[test]
fn a_format_override_changes_how_a_file_is_read() {
    let home = tmp();
    let p = preserve(
        home.path(),
        &["--incident-dir", &dup_ticket(), "--trace-id", TRACE, "--format", "logs/tool_calls.jsonl=opaque"],
    );
    let a = p.a();
    let src = a.sources.iter().find(|x| x.path == "logs/tool_calls.jsonl").expect("listed");
    assert_eq!((src.format.as_str(), src.format_origin.as_str(), src.records), ("opaque", "override", 0));
    let why = src.not_analysed.as_deref().expect("not analysed");
    assert!(why.contains("--format override") && !why.contains("binary"), "{why}");
    assert!(a.events.iter().all(|e| e.citations.iter().all(|c| c.path != "logs/tool_calls.jsonl")));
    let r = custody(home.path(), &["preserve", "--incident-dir", &dup_ticket(), "--format", "logs=yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown format `yaml` (one of: otlp,"), "{}", r.stderr);
}

#[test]
fn no_analyze_seals_without_analysis_and_no_approval_path_is_not_applicable() {
    let home = tmp();
    let p = preserve(home.path(), &["--incident-dir", &dup_ticket(), "--trace-id", TRACE, "--no-analyze"]);
    assert!(p.analysis.is_none(), "no analysis.json");
    let m = manifest(&p);
    assert!(m.get("analysis_ref").filter(|v| !v.is_null()).is_none(), "{}", m["analysis_ref"]);
    assert_eq!(mident(&m, "session_id")["status"], "missing");

    let dir = IncidentDir::new();
    dir.write("logs/calls.jsonl", format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"s-1\"}}\n"));
    let p = preserve_dir(&dir, &["--trace-id", TRACE, "--no-approval-path"]);
    let m = manifest(&p);
    let items = m["completeness"]["items"].as_array().expect("items");
    for it in ["approval_id", "approvals"] {
        assert_eq!(
            items.iter().find(|i| i["item"] == it).map(|i| i["status"].clone()),
            Some(Value::from("not_applicable")),
            "{it}"
        );
    }
    let ap = p.a().checklist.iter().find(|i| i.item == "approval_path").expect("approval_path");
    assert_eq!(ap.status, custody::bundle::manifest::Status::NotApplicable);
    // Without the flag the same item is a spelled-out "no".
    let p = preserve_dir(&dir, &["--trace-id", TRACE]);
    let ap = p.a().checklist.iter().find(|i| i.item == "approval_path").expect("approval_path");
    assert_eq!(ap.status, custody::bundle::manifest::Status::Missing);
    assert!(ap.detail.starts_with("no approval request or decision found for the incident"), "{}", ap.detail);
}

/// Every bad input of the issue in one incident directory plus extra sources: each is
/// sealed (byte for byte) or recorded as not collected, and the run succeeds.
#[test]
fn bad_inputs_are_sealed_or_recorded_and_nothing_crashes() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let bad = collector_fixture("bad");
    let mut originals = Vec::new();
    for f in std::fs::read_dir(&bad).expect("read_dir") {
        let p = f.expect("entry").path();
        std::fs::copy(&p, logs.join(p.file_name().expect("name"))).expect("copy");
        originals.push(p.file_name().expect("name").to_string_lossy().into_owned());
    }
    // A 100 MB single line after one ordinary line, and a record after it.
    {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(logs.join("huge-single-line.jsonl")).expect("create"));
        writeln!(f, "{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-bad-inputs\"}}").expect("write");
        write!(f, "{{\"trace_id\":\"{TRACE}\",\"blob\":\"").expect("write");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).expect("write");
        }
        f.write_all(b"\"}\n").expect("write");
        writeln!(f, "{{\"trace_id\":\"{TRACE}\",\"approval_id\":\"apr-after-huge-line\",\"decision\":\"approved\"}}")
            .expect("write");
    }
    // A FIFO and a dangling symlink in the directory.
    let st = std::process::Command::new("mkfifo").arg(logs.join("pipe")).status().expect("mkfifo");
    assert!(st.success());
    std::os::unix::fs::symlink("/nonexistent/target", logs.join("dangling")).expect("symlink");
    // A device, a missing path, and a file that fails on read even for root (/proc/self/mem
    // is a regular file whose read at offset 0 returns EIO).
    let p = preserve(
        home.path(),
        &[
            "--incident-dir",
            &s(dir.path()),
            "--source",
            "other=/dev/null",
            "--source",
            "other=/nonexistent/evidence.jsonl",
            "--source",
            "other=/proc/self/mem",
            "--trace-id",
            TRACE,
        ],
    );
    let show = custody(home.path(), &["show", &s(&p.bundle), "--json"]);
    assert_eq!(show.json()["verdict"], "intact");
    let m = manifest(&p);
    let journal = m["journal"].as_array().expect("journal");
    let journaled = |path_part: &str, event: &str| {
        journal.iter().any(|e| e["event"] == event && e["path"].as_str().unwrap_or("").contains(path_part))
    };
    assert!(journaled("pipe", "skipped"), "FIFO");
    assert!(journaled("dangling", "skipped"), "dangling symlink");
    assert!(journaled("/dev/null", "skipped"), "device");
    assert!(journaled("/nonexistent/evidence.jsonl", "error"), "missing path");
    assert!(journaled("/proc/self/mem", "error"), "unreadable file");
    let a = p.a();
    let problems: Vec<(String, String)> =
        a.evidence_problems.iter().map(|p| (p.path.clone(), p.problem.clone())).collect();
    let has = |path: &str, kind: &str| problems.iter().any(|(p, k)| p.contains(path) && k == kind);
    assert!(has("logs/malformed-and-truncated-lines.jsonl:2", "malformed_json"), "{problems:?}");
    assert!(has("logs/malformed-and-truncated-lines.jsonl:4", "truncated"), "{problems:?}");
    assert!(has("logs/invalid-utf8.jsonl:2", "invalid_utf8"), "{problems:?}");
    assert!(has("logs/huge-single-line.jsonl:2", "line_too_long"), "{problems:?}");
    assert!(has("dangling", "skipped") && has("pipe", "not_collected"), "{problems:?}");
    assert!(has("/dev/null", "not_collected") && has("/proc/self/mem", "not_collected"), "{problems:?}");
    assert!(has("/nonexistent/evidence.jsonl", "unreadable"), "{problems:?}");
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some("sess-bad-inputs")));
    assert_eq!(
        ident_value(a, IdentName::ApprovalId),
        (IdentStatus::Found, Some("apr-after-huge-line")),
        "the line after the huge one is read"
    );
    let readable = a.checklist.iter().find(|i| i.item == "evidence_readable").expect("evidence_readable");
    assert_eq!(readable.status, custody::bundle::manifest::Status::Missing);
    // BOM + CRLF: its records are read without a problem.
    let bom = a.sources.iter().find(|x| x.path == "logs/bom-crlf.jsonl").expect("bom-crlf");
    assert_eq!((bom.records, bom.problems), (2, 0));
    // Every readable byte is kept: extract and compare with the originals, byte for byte.
    let out = tmp();
    let x = custody(home.path(), &["extract", &s(&p.bundle), "--to", &s(&out.path().join("x"))]);
    assert_eq!(x.code, 0, "{}", x.stderr);
    for name in originals.iter().map(String::as_str).chain(["huge-single-line.jsonl"]) {
        let a = std::fs::read(logs.join(name)).expect("original");
        let b = std::fs::read(out.path().join("x/logs").join(name)).expect("extracted");
        assert!(a == b, "{name} changed");
    }
    let empty = m["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["path"] == "logs/empty.jsonl")
        .expect("empty.jsonl");
    assert_eq!(empty["size"], 0);
}

#[test]
fn nothing_readable_exits_2_and_records_nothing() {
    let home = tmp();
    let r = custody(home.path(), &["preserve", "--source", "logs=/nonexistent/a.jsonl", "--source", "other=/dev/null"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("nothing could be collected"), "{}", r.stderr);
    let l = custody(home.path(), &["list", "--json"]).json();
    assert_eq!(l["entries"].as_array().map(Vec::len).unwrap_or(0), 0);
}

/// A link is recorded, not followed, unless asked; asked, a link out of the named sources is
/// still not followed (`symlinks::…` has the attacks), and one into a named source is.
#[test]
fn symlinks_are_recorded_not_followed_unless_asked() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let target = dir.path().join("outside.jsonl");
    std::fs::write(&target, format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"via-link\"}}\n")).expect("write");
    std::os::unix::fs::symlink(&target, logs.join("link.jsonl")).expect("symlink");
    std::fs::write(logs.join("real.jsonl"), "{\"x\":1}\n").expect("write");
    let linked = |p: &Preserved| {
        manifest(p)["entries"].as_array().expect("entries").iter().any(|e| e["path"] == "logs/link.jsonl")
    };
    let p = preserve(home.path(), &["--source", &format!("logs={}", s(&logs)), "--trace-id", TRACE]);
    assert!(!linked(&p));
    assert_eq!(ident_value(p.a(), IdentName::SessionId), (IdentStatus::Unknown, None));
    let p =
        preserve(home.path(), &["--source", &format!("logs={}", s(&logs)), "--trace-id", TRACE, "--follow-symlinks"]);
    assert!(!linked(&p), "a link out of the named source was followed");
    assert_eq!(ident_value(p.a(), IdentName::SessionId), (IdentStatus::Unknown, None));
    let p = preserve(
        home.path(),
        &[
            "--source",
            &format!("logs={}", s(&logs)),
            "--source",
            &format!("other={}", s(&target)),
            "--trace-id",
            TRACE,
            "--follow-symlinks",
        ],
    );
    assert!(linked(&p), "a link into a named source was not followed");
    assert_eq!(ident_value(p.a(), IdentName::SessionId), (IdentStatus::Found, Some("via-link")));
}

#[test]
fn a_file_growing_while_sealed_ends_sealed_and_verified() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let path = logs.join("growing.jsonl");
    let line = format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-grow\",\"pad\":\"{}\"}}\n", "x".repeat(200));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for _ in 0..(16 << 20) / line.len() {
            f.write_all(line.as_bytes()).expect("write");
        }
    }
    let initial = std::fs::metadata(&path).expect("size").len();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path, line) = (stop.clone(), path.clone(), line.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(line.as_bytes()).expect("append");
                n += 1;
                if n % 64 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        })
    };
    let store = home.path().join("store").display().to_string();
    let r = custody(
        home.path(),
        &["preserve", "--json", "--store", &store, "--source", &format!("logs={}", s(&logs)), "--trace-id", TRACE],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("writer");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let bundle = r.json()["location"].as_str().expect("location").to_string();
    let v = custody(home.path(), &["verify", &bundle]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let m: Value =
        serde_json::from_slice(&bundle_member(Path::new(&bundle), "manifest.json").expect("manifest")).expect("JSON");
    let size = m["entries"][0]["size"].as_u64().expect("size");
    assert!(size >= initial);
    // Whole lines up to the sealed size are analysed; the session is found.
    let a: custody::collect::analysis::Analysis =
        serde_json::from_slice(&bundle_member(Path::new(&bundle), "analysis.json").expect("analysis")).expect("model");
    assert_eq!(ident_value(&a, IdentName::SessionId), (IdentStatus::Found, Some("sess-grow")));
    assert!(a.sources[0].bytes_scanned <= size);
}

#[test]
fn a_directory_with_100k_files_is_sealed_and_its_lists_stay_bounded() {
    let home = tmp();
    let dir = tmp();
    let mem = dir.path().join("memory");
    std::fs::create_dir(&mem).expect("mkdir");
    for i in 0..100_000u32 {
        let body = if i == 77_777 {
            format!(
                "{{\"memory_id\":\"mem-{i}\",\"op\":\"write\",\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-many\"}}"
            )
        } else {
            format!("{{\"memory_id\":\"mem-{i}\",\"op\":\"read\",\"session_id\":\"bg-{}\"}}", i % 97)
        };
        std::fs::write(mem.join(format!("m{i:06}.json")), body).expect("write");
    }
    let p = preserve(home.path(), &["--incident-dir", &s(dir.path()), "--trace-id", TRACE]);
    assert_eq!(p.out["files"], 100_000);
    let sid = p.out["identifiers"].as_array().expect("identifiers").iter().find(|i| i["name"] == "session_id").cloned();
    assert_eq!(sid.map(|i| i["value"].clone()), Some(Value::from("sess-many")));
    let m = manifest(&p);
    assert_eq!(m["entries"].as_array().map(Vec::len), Some(100_000));
    let a = p.a();
    assert_eq!(a.memory.written, ["mem-77777"]);
    // The per-source list stays bounded: the incident's file is listed, the rest counted.
    assert_eq!(a.sources.len(), 1000);
    assert_eq!(a.sources_omitted, 99_000);
    assert!(a.sources.iter().any(|x| x.path == "memory/m077777.json"));
    let show = custody(home.path(), &["show", "--json", &s(&p.bundle)]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert_eq!(show.json()["verdict"], "intact");
}

#[test]
fn the_analysis_is_deterministic_so_bundles_stay_byte_identical() {
    let (a, b) = (tmp(), tmp());
    let key = a.path().join("k.key");
    assert_eq!(custody(a.path(), &["keygen", "--out", &s(&key)]).code, 0);
    let digest = |home: &Path| {
        let store = home.join("store").display().to_string();
        let r = custody_env(
            home,
            &[
                "preserve",
                "--json",
                "--store",
                &store,
                "--key",
                &s(&key),
                "--incident-dir",
                &dup_ticket(),
                "--trace-id",
                TRACE,
            ],
            &[("SOURCE_DATE_EPOCH", "1763700000")],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.json()["bundle"].as_str().expect("bundle").to_string()
    };
    assert_eq!(digest(a.path()), digest(b.path()));
}

/// The analysis appends its own notes ("custody analysis: …"); the journal used to label
/// every note "responder note:", putting words in the responder's mouth.
#[test]
fn regression_analysis_notes_were_journaled_as_responder_notes() {
    let home = tmp();
    let p = preserve(home.path(), &["--incident-dir", &dup_ticket(), "--trace-id", TRACE, "--note", "seen by on-call"]);
    let notes: Vec<String> = manifest(&p)["journal"]
        .as_array()
        .expect("journal")
        .iter()
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["detail"].as_str().map(String::from))
        .collect();
    assert!(notes.iter().any(|n| n == "responder note: seen by on-call"), "{notes:?}");
    let analysis: Vec<&String> = notes.iter().filter(|n| n.contains("custody analysis:")).collect();
    assert!(!analysis.is_empty(), "the fixture's duplicate yields an analysis note: {notes:?}");
    assert!(analysis.iter().all(|n| n.starts_with("custody analysis:")), "{analysis:?}");
}

/// Without a seed nothing is linked, yet every defect is flagged with its path and line
/// exactly as in a search from the trace id, and no identifier is claimed.
#[test]
fn a_seedless_run_flags_the_same_defects_as_a_search() {
    let dir = IncidentDir::new();
    for f in std::fs::read_dir(collector_fixture("bad")).expect("read_dir") {
        let p = f.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        dir.copy(&p, &format!("logs/{name}"));
    }
    // A large file (read through the sealer's descriptor) with a malformed line near its end.
    let mut big = String::new();
    let mut n = 0u64;
    while big.len() < (3 << 20) {
        n += 1;
        big.push_str(&format!(
            "{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-{}\",\"tool\":\"read\",\"pad\":\"{}\"}}\n",
            n % 7,
            "x".repeat(120)
        ));
    }
    big.push_str("{\"session_id\": broken\n");
    let broken_line = n + 1;
    dir.write("logs/big-calls.jsonl", &big);
    dir.write("memory/mem-ok.json", format!("{{\n  \"memory_id\": \"m-1\",\n  \"trace_id\": \"{TRACE}\"\n}}\n"));
    dir.write("memory/mem-cut.json", "{\n  \"memory_id\": \"m-2\",\n  \"op\": \"wri");

    let seedless = preserve_dir(&dir, &[]);
    let a = seedless.a();
    // One trace in the evidence: the inferred seed.
    assert_eq!(a.mode, Mode::Inferred);
    assert_eq!(ident_value(a, IdentName::TraceId), (IdentStatus::Inferred, Some(TRACE)));
    let problems = |a: &custody::collect::analysis::Analysis| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            a.evidence_problems.iter().map(|p| (p.path.clone(), p.problem.clone())).collect();
        v.sort();
        v
    };
    let got = problems(a);
    let has = |path: &str, kind: &str| got.iter().any(|(p, k)| p == path && k == kind);
    assert!(has(&format!("logs/big-calls.jsonl:{broken_line}"), "malformed_json"), "{got:?}");
    assert!(has("logs/malformed-and-truncated-lines.jsonl:2", "malformed_json"), "{got:?}");
    assert!(has("logs/malformed-and-truncated-lines.jsonl:4", "truncated"), "{got:?}");
    assert!(has("logs/invalid-utf8.jsonl:2", "invalid_utf8"), "{got:?}");
    assert!(got.iter().any(|(p, k)| p.starts_with("memory/mem-cut.json") && k == "truncated"), "{got:?}");
    assert!(!got.iter().any(|(p, _)| p.starts_with("memory/mem-ok.json")), "{got:?}");
    let big_src = a.sources.iter().find(|x| x.path == "logs/big-calls.jsonl").expect("big");
    assert_eq!(big_src.lines, broken_line);
    // The same problems as a search from the trace id.
    let searched = preserve_dir(&dir, &["--trace-id", TRACE]);
    assert_eq!(searched.a().mode, Mode::Search);
    assert_eq!(got, problems(searched.a()));
}
