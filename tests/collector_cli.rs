//! The collector through the real `custody` binary: the fixture incident from its trace id
//! alone, flags against evidence, the spec file, the field map, format overrides,
//! `--no-analyze`, `--no-approval-path`, and every kind of bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::collector_util::{assert_schema, custody, fixture_incident, ident, preserve_and_show};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The identifiers listed in fixtures/incidents/duplicate-ticket/README.md.
const README_IDS: [(&str, &str); 9] = [
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

#[test]
fn fixture_incident_from_trace_id_alone_finds_every_readme_identifier() {
    let home = tmp();
    let (p, show) = preserve_and_show(home.path(), &["--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE]);
    for (name, want) in README_IDS {
        let id = ident(&show, name);
        assert_eq!(id["status"], "present", "{name}: {id}");
        assert_eq!(id["value"], want, "{name}: {id}");
        assert!(id.get("conflicts").is_none(), "{name} has conflicts: {id}");
        // Every evidence source names a collected file, a field and a byte offset.
        let rec: Vec<_> = id["sources"].as_array().unwrap().iter().filter(|s| s["origin"] == "record").collect();
        assert!(!rec.is_empty(), "{name} has no evidence source: {id}");
        assert!(rec.iter().all(|s| s["path"].is_string() && s["field"].is_string() && s["offset"].is_u64()));
    }
    let m = &show["manifest"];
    let a = &m["analysis"];
    assert_schema("analysis.v1.schema.json", a);
    // custody-fields.toml was picked up automatically, and the journal says so.
    assert_eq!(a["field_mapping"]["origin"], "incident_dir");
    assert!(m["journal"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "note" && e["detail"].as_str().unwrap_or("").contains("custody-fields.toml")));
    // The linkage chain trace → session → bundle → wave.
    let chain = a["linkage"]["chain"].as_array().unwrap();
    let edge = |f: &str, fv: &str, t: &str, tv: &str| {
        chain.iter().any(|e| e["from"] == f && e["from_value"] == fv && e["to"] == t && e["to_value"] == tv)
    };
    assert!(edge("trace_id", TRACE, "session_id", "sess-7f3a9c2e41d08b65"));
    assert!(edge("session_id", "sess-7f3a9c2e41d08b65", "bundle_id", "bundle-2026.11.3-a41c"));
    assert!(edge("bundle_id", "bundle-2026.11.3-a41c", "rollout_wave", "wave-2"));
    // Principal per tool, the approval path with its decisions, memory, egress.
    let principals = a["linkage"]["principals"].as_array().unwrap();
    assert!(principals.iter().any(|p| p["tool"] == "create_ticket" && p["principal"] == "svc-ticketing@prod"));
    let decisions: Vec<&str> =
        a["linkage"]["approvals"].as_array().unwrap().iter().filter_map(|s| s["decision"].as_str()).collect();
    assert!(decisions.contains(&"approved") && decisions.contains(&"bypassed"), "{decisions:?}");
    assert!(a["linkage"]["memory"].as_array().unwrap().iter().any(|m| m["memory_id"] == "mem-000411"));
    let egress = a["linkage"]["egress"].as_array().unwrap();
    assert!(egress.iter().any(|e| e["destination"] == "api.tickets.internal"));
    // Background noise (the kb-curator's paste.example.net) is not part of the incident.
    assert!(egress.iter().all(|e| e["destination"] != "paste.example.net"));
    // The write timed out: unknown, with a warning on stderr-equivalent and in the manifest.
    assert_eq!(m["incident"]["side_effect"], "unknown");
    assert_eq!(a["side_effect"]["origin"], "evidence");
    assert!(a["side_effect"]["warning"].as_str().unwrap().starts_with("do not repeat"));
    assert!(m["incident"]["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("do not repeat")));
    assert!(p["side_effect_warning"].as_str().unwrap().contains("idem-9b1f4c7a2e6d0358"));
    // The index cites sealed blobs: every entry names a manifest entry's sha256, and its
    // slice of the original file holds one of the incident's link values.
    let entries = m["entries"].as_array().unwrap();
    let index = a["index"].as_array().unwrap();
    assert!(index.len() > 10);
    for e in index {
        let entry = entries.iter().find(|x| x["sha256"] == e["blob_sha256"]).expect("index cites a sealed blob");
        let bytes = std::fs::read(entry["source"].as_str().unwrap()).unwrap();
        let (o, l) = (e["offset"].as_u64().unwrap() as usize, e["len"].as_u64().unwrap() as usize);
        let slice = String::from_utf8_lossy(&bytes[o..o + l]);
        assert!(
            ["4bf92f3577b34da6a3ce929d0e0e4736", "sess-7f3a9c2e41d08b65", "apr-5d2e91b7c4a0", "idem-9b1f4c7a2e6d0358"]
                .iter()
                .any(|v| slice.contains(v)),
            "index entry {e} does not hold an incident id"
        );
    }
    // Every checklist line is present here, except the side effect, which nothing shows.
    for i in a["checklist"].as_array().unwrap() {
        let want = if i["item"] == "side_effect" { "missing" } else { "present" };
        assert_eq!(i["status"], want, "{i}");
    }
    // The human `show` prints the sections the issue asks for.
    let loc = p["location"].as_str().unwrap();
    let human = custody(home.path(), &["show", loc]);
    assert_eq!(human.code, 0);
    for want in [
        "linkage chain:",
        "trace_id 4bf92f3577b34da6a3ce929d0e0e4736 → session_id sess-7f3a9c2e41d08b65",
        "approval path",
        "egress destinations observed (1):",
        "api.tickets.internal",
        "index ",
        "session_id       sess-7f3a9c2e41d08b65  ← ",
        "[x] linkage    approval_path",
    ] {
        assert!(human.stdout.contains(want), "show output lacks `{want}`:\n{}", human.stdout);
    }
}

#[test]
fn preserve_prints_the_side_effect_warning_on_stderr() {
    let home = tmp();
    let r = custody(home.path(), &["preserve", "--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("WARNING: side effect unknown — do not repeat create_ticket"), "{}", r.stderr);
    assert!(r.stdout.contains("completeness:"));
    // Responder says it happened: the evidence hint does not override, no warning.
    let r = custody(
        home.path(),
        &["preserve", "--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE, "--side-effect", "happened"],
    );
    assert_eq!(r.code, 0);
    assert!(!r.stderr.contains("WARNING"), "{}", r.stderr);
}

#[test]
fn flag_disagreeing_with_evidence_wins_and_the_conflict_is_listed() {
    let home = tmp();
    let (_, show) = preserve_and_show(
        home.path(),
        &["--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE, "--bundle-id", "bundle-typed-wrong"],
    );
    let b = ident(&show, "bundle_id");
    assert_eq!(b["value"], "bundle-typed-wrong");
    assert_eq!(b["sources"][0]["origin"], "flag");
    let c = b["conflicts"].as_array().expect("conflicts listed");
    assert!(c.iter().any(|c| c["value"] == "bundle-2026.11.3-a41c" && !c["sources"].as_array().unwrap().is_empty()));
}

#[test]
fn two_bundle_ids_for_one_session_are_a_finding_not_a_pick() {
    let home = tmp();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/collector/two-bundle-ids-one-session");
    let (_, show) =
        preserve_and_show(home.path(), &["--source", &format!("policy={}", s(&dir)), "--session-id", "sess-conflict"]);
    let b = ident(&show, "bundle_id");
    assert!(b["value"].is_null(), "{b}");
    let mut vals: Vec<&str> = b["conflicts"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    vals.sort();
    assert_eq!(vals, ["bundle-A", "bundle-B"]);
    let a = &show["manifest"]["analysis"];
    assert_eq!(a["identifiers"][5]["status"], "conflict");
}

#[test]
fn spec_file_replaces_flags_and_its_bytes_are_sealed() {
    let home = tmp();
    let dir = tmp();
    let spec = dir.path().join("incident.toml");
    let custom = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/collector/generic/tool-calls-custom.jsonl");
    let text = format!(
        r#"# incident spec
incident_dir = "{inc}"
category = "unauthorized_side_effect"
notes = ["paged at 14:08", "customer C-20417"]
not_applicable = ["memory_records"]

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
        inc = s(&fixture_incident()),
        custom = s(&custom)
    );
    std::fs::write(&spec, &text).unwrap();
    let (_, show) = preserve_and_show(home.path(), &["--spec", &s(&spec)]);
    let m = &show["manifest"];
    let e = m["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "spec").expect("spec entry");
    assert_eq!(e["path"], "spec/incident.toml");
    use sha2::Digest;
    let want = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    assert_eq!(e["sha256"].as_str().unwrap().trim_start_matches("sha256:"), want);
    assert_eq!(m["incident"]["category"], "unauthorized_side_effect");
    assert!(m["incident"]["notes"].as_array().unwrap().iter().any(|n| n == "paged at 14:08"));
    let t = ident(&show, "trace_id");
    assert_eq!(t["value"], TRACE);
    assert_eq!(t["sources"][0]["origin"], "spec");
    assert_eq!(ident(&show, "session_id")["value"], "sess-7f3a9c2e41d08b65");
    let a = &m["analysis"];
    assert_eq!(a["field_mapping"]["origin"], "spec");
    let f = a["formats"].as_array().unwrap().iter().find(|f| f["path"] == "custom/tool-calls-custom.jsonl").unwrap();
    assert_eq!(f["origin"], "override");
    assert_eq!(f["format"], "jsonl");
    let mem = a["checklist"].as_array().unwrap().iter().find(|i| i["item"] == "memory_records").unwrap();
    assert_eq!(mem["status"], "present", "found evidence is present even when declared n/a");
}

#[test]
fn field_map_flag_maps_custom_field_names() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/collector/generic");
    let src = format!("logs={}", s(&base.join("tool-calls-custom.jsonl")));
    // Without the mapping, the custom names hold nothing custody knows.
    let home = tmp();
    let (_, show) = preserve_and_show(home.path(), &["--source", &src, "--trace-id", TRACE]);
    assert_eq!(ident(&show, "session_id")["status"], "missing");
    // With it, the session, principal and idempotency key are found in the mapped fields.
    let (_, show) = preserve_and_show(
        home.path(),
        &["--source", &src, "--trace-id", TRACE, "--field-map", &s(&base.join("custom-fields-mapping.toml"))],
    );
    let sid = ident(&show, "session_id");
    assert_eq!(sid["value"], "sess-fixture-0001");
    assert!(sid["sources"].as_array().unwrap().iter().any(|s| s["field"] == "meta.sid"));
    assert_eq!(ident(&show, "tool_principal")["value"], "svc-fx@prod");
    assert_eq!(ident(&show, "idempotency_key")["value"], "idem-fx-2");
    let fm = &show["manifest"]["analysis"]["field_mapping"];
    assert_eq!(fm["origin"], "flag");
    // The mapping file lives outside the evidence: it is sealed too, as kind `spec`.
    assert!(show["manifest"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["path"] == "spec/custom-fields-mapping.toml"));
    // A JSON mapping works the same.
    let (_, show) = preserve_and_show(
        home.path(),
        &["--source", &src, "--trace-id", TRACE, "--field-map", &s(&base.join("custom-fields-mapping.json"))],
    );
    assert_eq!(ident(&show, "session_id")["value"], "sess-fixture-0001");
    // A broken mapping given explicitly is a usage error (exit 2) naming the file.
    let bad = tmp();
    let bad_map = bad.path().join("bad.toml");
    std::fs::write(&bad_map, "[fields]\nsesion_id = [\"x\"]\n").unwrap();
    let r = custody(home.path(), &["preserve", "--source", &src, "--field-map", &s(&bad_map)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.toml") || r.stderr.contains("field mapping"), "{}", r.stderr);
}

#[test]
fn format_override_by_path_changes_how_a_file_is_scanned() {
    let home = tmp();
    let inc = s(&fixture_incident());
    let (_, show) = preserve_and_show(
        home.path(),
        &["--incident-dir", &inc, "--trace-id", TRACE, "--format", "logs/tool_calls.jsonl=opaque"],
    );
    let a = &show["manifest"]["analysis"];
    let f = a["formats"].as_array().unwrap().iter().find(|f| f["path"] == "logs/tool_calls.jsonl").unwrap();
    assert_eq!(f["format"], "opaque");
    assert_eq!(f["origin"], "override");
    assert!(a["index"].as_array().unwrap().iter().all(|e| e["source_path"] != "logs/tool_calls.jsonl"));
    let r = custody(home.path(), &["preserve", "--incident-dir", &inc, "--format", "logs=yaml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown format `yaml`"), "{}", r.stderr);
}

#[test]
fn no_analyze_seals_without_analysis_and_no_approval_path_is_not_applicable() {
    let home = tmp();
    let (_, show) = preserve_and_show(
        home.path(),
        &["--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE, "--no-analyze"],
    );
    assert!(show["manifest"].get("analysis").is_none());
    assert_eq!(ident(&show, "session_id")["status"], "missing");

    let dir = tmp();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/calls.jsonl"),
        format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"s-1\"}}\n"),
    )
    .unwrap();
    let (_, show) =
        preserve_and_show(home.path(), &["--incident-dir", &s(dir.path()), "--trace-id", TRACE, "--no-approval-path"]);
    let items = show["manifest"]["completeness"]["items"].as_array().unwrap();
    for it in ["approval_id", "approvals"] {
        assert_eq!(items.iter().find(|i| i["item"] == it).unwrap()["status"], "not_applicable", "{it}");
    }
    let ap = show["manifest"]["analysis"]["checklist"].as_array().unwrap();
    assert_eq!(ap.iter().find(|i| i["item"] == "approval_path").unwrap()["status"], "not_applicable");
    // Without the flag the same item is a spelled-out "no".
    let r = custody(home.path(), &["preserve", "--incident-dir", &s(dir.path()), "--trace-id", TRACE]);
    assert!(r.stdout.contains("[ ] linkage    approval_path          NO: no approval record found"), "{}", r.stdout);
}

/// Every bad input of the issue in one incident directory plus extra sources.
#[test]
fn bad_inputs_are_sealed_or_recorded_and_nothing_crashes() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/collector/bad");
    let mut originals = Vec::new();
    for f in std::fs::read_dir(&bad).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, logs.join(p.file_name().unwrap())).unwrap();
        originals.push(p.file_name().unwrap().to_string_lossy().into_owned());
    }
    // A 100 MB single line after one ordinary line, and a record after it.
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(logs.join("huge-single-line.jsonl")).unwrap());
        writeln!(f, "{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-bad-inputs\"}}").unwrap();
        write!(f, "{{\"trace_id\":\"{TRACE}\",\"blob\":\"").unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n").unwrap();
        writeln!(f, "{{\"trace_id\":\"{TRACE}\",\"approval_id\":\"apr-after-huge-line\"}}").unwrap();
    }
    // A FIFO and a dangling symlink in the directory.
    let st = std::process::Command::new("mkfifo").arg(logs.join("pipe")).status().unwrap();
    assert!(st.success());
    std::os::unix::fs::symlink("/nonexistent/target", logs.join("dangling")).unwrap();
    // A device, a missing path, and a file that fails on read even for root (/proc/self/mem
    // is a regular file whose read at offset 0 returns EIO).
    let r = custody(
        home.path(),
        &[
            "preserve",
            "--json",
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
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let loc = r.json()["location"].as_str().unwrap().to_string();
    let show = custody(home.path(), &["show", &loc, "--json"]).json();
    assert_eq!(show["verdict"], "intact");
    let m = &show["manifest"];
    let journal = m["journal"].as_array().unwrap();
    let journaled = |path_part: &str, event: &str| {
        journal.iter().any(|e| e["event"] == event && e["path"].as_str().unwrap_or("").contains(path_part))
    };
    assert!(journaled("pipe", "skipped"), "FIFO");
    assert!(journaled("dangling", "skipped"), "dangling symlink");
    assert!(journaled("/dev/null", "skipped"), "device");
    assert!(journaled("/nonexistent/evidence.jsonl", "error"), "missing path");
    assert!(journaled("/proc/self/mem", "error"), "unreadable file");
    // Record problems are in the journal (an analysis note) and in the analysis.
    let note = journal
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .find(|d| d.contains("record problem(s)"))
        .expect("journal note with record problems");
    let a = &m["analysis"];
    assert_schema("analysis.v1.schema.json", a);
    let problems: Vec<(String, String)> = a["evidence_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].as_str().unwrap().to_string(), p["problem"].as_str().unwrap().to_string()))
        .collect();
    let has = |path: &str, kind: &str| problems.iter().any(|(p, k)| p.contains(path) && k == kind);
    assert!(has("logs/malformed-and-truncated-lines.jsonl:2", "malformed_json"), "{problems:?}");
    assert!(has("logs/malformed-and-truncated-lines.jsonl:4", "truncated"), "{problems:?}");
    assert!(has("logs/invalid-utf8.jsonl", "invalid_utf8"), "{problems:?}");
    assert!(has("logs/huge-single-line.jsonl:2", "line_too_long"), "{problems:?}");
    assert_eq!(ident(&show, "session_id")["value"], "sess-bad-inputs");
    assert_eq!(ident(&show, "approval_id")["value"], "apr-after-huge-line", "the line after the huge one is read");
    assert!(has("dangling", "skipped") && has("pipe", "not_collected"));
    assert!(has("/dev/null", "not_collected") && has("/proc/self/mem", "not_collected"));
    assert!(has("/nonexistent/evidence.jsonl", "unreadable"));
    assert!(note.contains("logs/malformed-and-truncated-lines.jsonl:2 malformed_json"), "{note}");
    let readable = a["checklist"].as_array().unwrap().iter().find(|i| i["item"] == "evidence_readable").unwrap();
    assert_eq!(readable["status"], "missing");
    // BOM + CRLF: the record is read and its identifiers found.
    assert!(a["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["source_path"] == "logs/bom-crlf.jsonl" && s["records"].as_u64() > Some(0) && s["problems"] == 0));
    // Every readable byte is kept: extract and compare with the originals, byte for byte.
    let out = tmp();
    let x = custody(home.path(), &["extract", &loc, "--to", &s(&out.path().join("x"))]);
    assert_eq!(x.code, 0, "{}", x.stderr);
    for name in originals.iter().map(String::as_str).chain(["huge-single-line.jsonl"]) {
        let a = std::fs::read(logs.join(name)).unwrap();
        let b = std::fs::read(out.path().join("x/logs").join(name)).unwrap();
        assert!(a == b, "{name} changed");
    }
    let empty = m["entries"].as_array().unwrap().iter().find(|e| e["path"] == "logs/empty.jsonl").unwrap();
    assert_eq!(empty["size"], 0);
    // The human output lists every problem by path.
    let human = custody(home.path(), &["show", &loc]);
    for want in [
        "/proc/self/mem",
        "/dev/null",
        "pipe",
        "dangling",
        "logs/malformed-and-truncated-lines.jsonl:2",
        "line_too_long",
    ] {
        assert!(human.stdout.contains(want), "show lacks {want}:\n{}", human.stdout);
    }
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

#[test]
fn symlinks_are_recorded_not_followed_unless_asked() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let target = dir.path().join("outside.jsonl");
    std::fs::write(&target, format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"via-link\"}}\n")).unwrap();
    std::os::unix::fs::symlink(&target, logs.join("link.jsonl")).unwrap();
    std::fs::write(logs.join("real.jsonl"), "{\"x\":1}\n").unwrap();
    let (_, show) = preserve_and_show(home.path(), &["--source", &format!("logs={}", s(&logs)), "--trace-id", TRACE]);
    assert!(show["manifest"]["entries"].as_array().unwrap().iter().all(|e| e["path"] != "logs/link.jsonl"));
    assert_eq!(ident(&show, "session_id")["status"], "missing");
    let (_, show) = preserve_and_show(
        home.path(),
        &["--source", &format!("logs={}", s(&logs)), "--trace-id", TRACE, "--follow-symlinks"],
    );
    assert!(show["manifest"]["entries"].as_array().unwrap().iter().any(|e| e["path"] == "logs/link.jsonl"));
    assert_eq!(ident(&show, "session_id")["value"], "via-link");
}

#[test]
fn file_growing_while_sealed_ends_sealed_and_verified() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let path = logs.join("growing.jsonl");
    let line = format!("{{\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-grow\",\"pad\":\"{}\"}}\n", "x".repeat(200));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..(16 << 20) / line.len() {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    let initial = std::fs::metadata(&path).unwrap().len();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path, line) = (stop.clone(), path.clone(), line.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(line.as_bytes()).unwrap();
                n += 1;
                if n % 64 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        })
    };
    let r =
        custody(home.path(), &["preserve", "--json", "--source", &format!("logs={}", s(&logs)), "--trace-id", TRACE]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let loc = r.json()["location"].as_str().unwrap().to_string();
    let v = custody(home.path(), &["verify", &loc]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let show = custody(home.path(), &["show", &loc, "--json"]).json();
    let e = &show["manifest"]["entries"][0];
    assert!(e["size"].as_u64().unwrap() >= initial);
    // Whole lines up to the sealed size are analysed; the session is found.
    assert_eq!(ident(&show, "session_id")["value"], "sess-grow");
}

#[test]
fn directory_with_100k_files_is_sealed() {
    let home = tmp();
    let dir = tmp();
    let mem = dir.path().join("memory");
    std::fs::create_dir(&mem).unwrap();
    for i in 0..100_000u32 {
        let body = if i == 77_777 {
            format!(
                "{{\"memory_id\":\"mem-{i}\",\"op\":\"write\",\"trace_id\":\"{TRACE}\",\"session_id\":\"sess-many\"}}"
            )
        } else {
            format!("{{\"memory_id\":\"mem-{i}\",\"op\":\"read\",\"session_id\":\"bg-{}\"}}", i % 97)
        };
        std::fs::write(mem.join(format!("m{i:06}.json")), body).unwrap();
    }
    let r = custody(home.path(), &["preserve", "--json", "--incident-dir", &s(dir.path()), "--trace-id", TRACE]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p = r.json();
    assert_eq!(p["files"], 100_000);
    let sid = p["identifiers"].as_array().unwrap().iter().find(|i| i["name"] == "session_id").unwrap();
    assert_eq!(sid["value"], "sess-many");
    // `show` verifies the bundle and fills in the manifest's analysis from analysis.json.
    let sh = custody(home.path(), &["show", "--json", p["location"].as_str().unwrap()]);
    assert_eq!(sh.code, 0, "{}", sh.stderr);
    let show = sh.json();
    let m = &show["manifest"];
    assert_eq!(m["format"], "custody-bundle/v2");
    assert!(m["analysis_ref"].is_object());
    assert_eq!(m["entries"].as_array().unwrap().len(), 100_000);
    let a = &m["analysis"];
    assert_schema("analysis.v1.schema.json", a);
    assert!(a["linkage"]["memory"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["memory_id"] == "mem-77777" && m["op"] == "write"));
    // The per-source lists stay bounded; the incident's file is listed, the rest counted.
    assert_eq!(a["sources"].as_array().unwrap().len(), 1000);
    assert_eq!(a["sources_omitted"], 99_000);
    assert!(a["sources"].as_array().unwrap().iter().any(|s| s["source_path"] == "memory/m077777.json"));
    assert_eq!(a["format_counts"]["json"], 100_000);
    // `formats` lists exactly the listed sources (no override given), in the same order.
    let paths = |list: &str, key: &str| -> Vec<String> {
        a[list].as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(paths("formats", "path"), paths("sources", "source_path"));
}

#[test]
fn analysis_is_deterministic_so_bundles_stay_byte_identical() {
    let (a, b) = (tmp(), tmp());
    let key = a.path().join("k.key");
    assert_eq!(custody(a.path(), &["keygen", "--out", &s(&key)]).code, 0);
    let digest = |home: &Path| {
        let r = crate::collector_util::custody_env(
            home,
            &["preserve", "--json", "--key", &s(&key), "--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE],
            &[("SOURCE_DATE_EPOCH", "1763700000")],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.json()["bundle"].as_str().unwrap().to_string()
    };
    assert_eq!(digest(a.path()), digest(b.path()));
}

#[test]
fn regression_analysis_notes_were_journaled_as_responder_notes() {
    // The analysis appends its own notes ("custody analysis: side effect unknown …"); the
    // journal used to label every note "responder note:", putting words in the responder's mouth.
    let home = tmp();
    let (_, show) = preserve_and_show(
        home.path(),
        &["--incident-dir", &s(&fixture_incident()), "--trace-id", TRACE, "--note", "seen by on-call"],
    );
    let notes: Vec<String> = show["manifest"]["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["detail"].as_str().map(String::from))
        .collect();
    assert!(notes.iter().any(|n| n == "responder note: seen by on-call"), "{notes:?}");
    let analysis: Vec<&String> = notes.iter().filter(|n| n.contains("custody analysis:")).collect();
    assert!(!analysis.is_empty(), "the fixture's unknown side effect yields an analysis note: {notes:?}");
    assert!(analysis.iter().all(|n| n.starts_with("custody analysis:")), "{analysis:?}");
}

/// Without an identifier there is nothing to search from: the analysis only validates every
/// line and document (no record is parsed or kept), yet every defect is flagged exactly as in
/// a search, with its path and line, and nothing claims an identifier was "not found".
#[test]
fn seedless_preserve_validates_without_parsing_records() {
    let home = tmp();
    let dir = tmp();
    let logs = dir.path().join("logs");
    let memory = dir.path().join("memory");
    std::fs::create_dir(&logs).unwrap();
    std::fs::create_dir(&memory).unwrap();
    let bad = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/collector/bad");
    for f in std::fs::read_dir(&bad).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, logs.join(p.file_name().unwrap())).unwrap();
    }
    // A large file (read through the sealer's descriptor, not from memory) with a malformed
    // line near its end.
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
    std::fs::write(logs.join("big-calls.jsonl"), &big).unwrap();
    // Documents: a valid one and one cut short.
    std::fs::write(
        memory.join("mem-ok.json"),
        format!("{{\n  \"memory_id\": \"m-1\",\n  \"trace_id\": \"{TRACE}\"\n}}\n"),
    )
    .unwrap();
    std::fs::write(memory.join("mem-cut.json"), "{\n  \"memory_id\": \"m-2\",\n  \"op\": \"wri").unwrap();

    let (p, show) = preserve_and_show(home.path(), &["--incident-dir", &s(dir.path())]);
    let m = &show["manifest"];
    let a = &m["analysis"];
    assert_schema("analysis.v1.schema.json", a);
    assert_eq!(a["mode"], "validate_only");
    // Nothing was parsed into records: only problem records were seen.
    let stats = &a["stats"];
    assert_eq!(stats["records_kept"], 0, "{stats}");
    assert_eq!(stats["incident_records"], 0, "{stats}");
    assert_eq!(stats["records_seen"], a["problems"].as_array().unwrap().len() as u64, "{stats}");
    assert!(stats["lines_seen"].as_u64().unwrap() > n, "{stats}");
    let big_src = a["sources"].as_array().unwrap().iter().find(|s| s["source_path"] == "logs/big-calls.jsonl").unwrap();
    assert_eq!(big_src["lines"], broken_line, "{big_src}");
    assert_eq!(big_src["records"], 1, "only the problem record: {big_src}");
    assert!(a["index"].as_array().unwrap().is_empty());
    // Every defect is flagged with its path and line.
    let problems = |a: &serde_json::Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = a["evidence_problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["path"].as_str().unwrap().to_string(), p["problem"].as_str().unwrap().to_string()))
            .collect();
        v.sort();
        v
    };
    let got = problems(a);
    let has = |path: &str, kind: &str| got.iter().any(|(p, k)| p == path && k == kind);
    assert!(has(&format!("logs/big-calls.jsonl:{broken_line}"), "malformed_json"), "{got:?}");
    assert!(has("logs/malformed-and-truncated-lines.jsonl:2", "malformed_json"), "{got:?}");
    assert!(has("logs/malformed-and-truncated-lines.jsonl:4", "truncated"), "{got:?}");
    assert!(got.iter().any(|(p, k)| p.starts_with("logs/invalid-utf8.jsonl:") && k == "invalid_utf8"), "{got:?}");
    assert!(got.iter().any(|(p, k)| p.starts_with("memory/mem-cut.json") && k == "truncated"), "{got:?}");
    assert!(!got.iter().any(|(p, _)| p.starts_with("memory/mem-ok.json")), "{got:?}");
    // The same problems as a search from the trace id finds.
    let home2 = tmp();
    let (_, searched) = preserve_and_show(home2.path(), &["--incident-dir", &s(dir.path()), "--trace-id", TRACE]);
    let sa = &searched["manifest"]["analysis"];
    assert_eq!(sa["mode"], "search");
    assert!(sa["stats"]["records_kept"].as_u64() > Some(0));
    assert_eq!(got, problems(sa));
    // Honest wording: the identifiers were not searched for, so none is "not found".
    let items = m["completeness"]["items"].as_array().unwrap();
    for i in items.iter().filter(|i| i["group"] == "identifier") {
        assert_eq!(i["status"], "missing", "{i}");
        let d = i["detail"].as_str().unwrap();
        assert!(d.contains("validated but not searched") && d.contains("--trace-id"), "{i}");
    }
    let check = |item: &str| a["checklist"].as_array().unwrap().iter().find(|i| i["item"] == item).unwrap().clone();
    assert!(check("trace_to_session")["detail"].as_str().unwrap().contains("not searched"));
    assert_eq!(check("evidence_readable")["status"], "missing");
    assert!(m["journal"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "note" && e["detail"].as_str().unwrap_or("").contains("no identifier given")));
    let human = custody(home.path(), &["show", p["location"].as_str().unwrap()]);
    assert!(human.stdout.contains("validated but not searched"), "{}", human.stdout);
    assert!(!human.stdout.contains("not found in the evidence"), "{}", human.stdout);
    assert!(human.stdout.contains(&format!("logs/big-calls.jsonl:{broken_line}")), "{}", human.stdout);
}
