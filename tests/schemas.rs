//! JSON schemas (`schemas/*.schema.json`, draft 2020-12) validate REAL output: every `--json`
//! command, a manifest taken out of a bundle, a bundle's `analysis.json` (of every fixture
//! incident, seeded, inferred and seedless), and failing verify reports; they reject what they
//! must (unknown verdict, unknown finding kind, unknown manifest or analysis fields, values
//! outside an enum, missing fields); and their enums are held to the source's.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::util::*;

const SCHEMAS: [&str; 13] = [
    "analysis.v1.schema.json",
    "analysis.v2.schema.json",
    "manifest.v1.schema.json",
    "verify-report.v1.schema.json",
    "preserve.v1.schema.json",
    "show.v1.schema.json",
    "list.v1.schema.json",
    "keygen.v1.schema.json",
    "extract.v1.schema.json",
    "timeline.v1.schema.json",
    "eval-case.v1.schema.json",
    "search.v1.schema.json",
    "analyze.v1.schema.json",
];

fn load(name: &str) -> Value {
    let p = repo().join("schemas").join(name);
    serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

/// A validator for `name`, with every schema of `schemas/` registered under its `$id`
/// (cross-file `$ref`s resolve offline).
fn validator(name: &str) -> jsonschema::Validator {
    let mut opts = jsonschema::options().with_draft(jsonschema::Draft::Draft202012);
    for s in SCHEMAS {
        let v = load(s);
        let id = v["$id"].as_str().unwrap().to_string();
        opts = opts.with_resource(id, jsonschema::Resource::from_contents(v).unwrap());
    }
    opts.build(&load(name)).unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

/// Fails unless `doc` is valid against `schema` (used by other test modules on their real
/// output too).
#[track_caller]
pub(crate) fn assert_valid(schema: &str, doc: &Value) {
    let v = validator(schema);
    let errors: Vec<String> = v.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{schema} rejects real output:\n{}\n{doc:#}", errors.join("\n"));
}

#[track_caller]
fn assert_invalid(schema: &str, doc: &Value, why: &str) {
    assert!(!validator(schema).is_valid(doc), "{schema} accepts {why}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema_with_its_own_id() {
    let on_disk: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir(repo().join("schemas"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".schema.json"))
            .collect();
        v.sort();
        v
    };
    let mut listed: Vec<String> = SCHEMAS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every schema in schemas/ is tested here");
    for name in SCHEMAS {
        let v = load(name);
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema", "{name}");
        assert!(v["$id"].as_str().unwrap().ends_with(&format!("/{name}")), "{name}: $id names the file");
        if let Err(e) = jsonschema::meta::validate(&v) {
            panic!("{name} is not a valid JSON Schema: {e}");
        }
        validator(name);
    }
}

#[test]
fn preserve_keygen_and_list_json_match_their_schemas() {
    let env = Env::new();
    let k = env.path("k.key");
    let kg = env.run(&["keygen".as_ref(), "--out".as_ref(), k.as_os_str(), "--json".as_ref()]);
    kg.expect(0);
    assert_valid("keygen.v1.schema.json", &kg.json());

    // A preserve with identifiers, category, notes, a not-applicable item and a problem.
    let fx = fixture_dir();
    let m = env.preserve_fixture(&[
        "--trace-id",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "--session-id",
        "sess-7f3a9c2e41d08b65",
        "--category",
        "unauthorized_side_effect",
        "--side-effect",
        "happened",
        "--note",
        "duplicate ticket TCK-88213",
        "--not-applicable",
        "rollout_wave",
        "--source",
        &format!("logs={}", s(&env.path("missing.jsonl"))),
    ]);
    assert_eq!(m.preserve["problems"].as_array().unwrap().len(), 1);
    assert_valid("preserve.v1.schema.json", &m.preserve);
    // The plain one too (key created on first use, nothing given).
    let plain = env.run(&["preserve", "--incident-dir", s(&fx), "--json", "--key", s(&k)]);
    plain.expect(0);
    assert_valid("preserve.v1.schema.json", &plain.json());

    // Entry 2 is signed by `k`: pinned with the default key, both entries are valid.
    let k_pub = env.path("k.key.pub");
    let store = env.store();
    let both = ["list", "--store", s(&store), "--json", "--trusted-key", s(&m.pubkey), "--trusted-key", s(&k_pub)];
    let l = env.run(&both);
    l.expect(0);
    let lj = l.json();
    assert_eq!(lj["entries"].as_array().unwrap().len(), 2);
    assert!(lj["entries"].as_array().unwrap().iter().all(|e| e["valid"] == true && e["signer_trusted"] == true));
    assert_valid("list.v1.schema.json", &lj);
    // Without `k` pinned, entry 2 is not valid (exit 1), still within the schema.
    let l = env.run(&["list", "--store", s(&env.store()), "--json"]);
    l.expect(1);
    let lj = l.json();
    assert_eq!((&lj["entries"][1]["valid"], &lj["entries"][1]["signer_trusted"]), (&false.into(), &false.into()));
    assert_valid("list.v1.schema.json", &lj);

    // A ledger entry that cannot be read is listed as invalid, still within the schema.
    let mut entries: Vec<_> = fs::read_dir(env.store().join("ledger")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    make_writable(&entries[0]);
    fs::write(&entries[0], b"{ not json").unwrap();
    let l = env.run(&both);
    l.expect(1);
    let lj = l.json();
    assert_eq!(lj["entries"][0]["valid"], false);
    assert!(lj["entries"][1]["problem"].as_str().unwrap().contains("prev"), "entry 2 no longer links: {lj:#}");
    assert_valid("list.v1.schema.json", &lj);
}

#[test]
fn real_manifests_match_the_manifest_schema() {
    let env = Env::new();
    let m = env.preserve_fixture(&[
        "--agent-id",
        "support-triage-agent",
        "--approval-id",
        "apr-5d2e91b7c4a0",
        "--category",
        "approval_failure",
        "--note",
        "one",
        "--note",
        "two",
    ]);
    let second = env.preserve_fixture(&[]);
    for b in [&m.bundle, &second.bundle] {
        let members = bundle_members(b);
        let man: Value = serde_json::from_slice(&member(&members, "manifest.json").data).unwrap();
        assert_valid("manifest.v1.schema.json", &man);
    }
    let man2: Value = serde_json::from_slice(&member(&bundle_members(&second.bundle), "manifest.json").data).unwrap();
    assert!(man2["ledger_prev"].is_object(), "the second manifest links to the first");
    // A bundle with skipped/error journal events (a symlink and a missing source).
    let inc = env.path("inc");
    fs::create_dir_all(inc.join("logs")).unwrap();
    fs::write(inc.join("logs/a.jsonl"), b"{}\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", inc.join("logs/link")).unwrap();
    let out = env.run(&["preserve", "--incident-dir", s(&inc), "--source", "x=/nonexistent/custody", "--json"]);
    out.expect(0);
    let members = bundle_members(Path::new(out.json()["location"].as_str().unwrap()));
    let man: Value = serde_json::from_slice(&member(&members, "manifest.json").data).unwrap();
    let events: Vec<&str> = man["journal"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(events.contains(&"skipped") && events.contains(&"error"), "{events:?}");
    assert_valid("manifest.v1.schema.json", &man);
}

#[test]
fn verify_reports_match_the_schema_intact_and_failing() {
    let (env, m) = made();
    let store = s(&m.store);
    let intact_file = env.verify_file(&m.bundle, &m.pubkey);
    intact_file.expect(0);
    assert_valid("verify-report.v1.schema.json", &intact_file.json());
    let intact_store = env.run(&["verify", "--store", store, &m.digest, "--json"]);
    intact_store.expect(0);
    assert_valid("verify-report.v1.schema.json", &intact_store.json());
    let all = env.run(&["verify", "--store", store, "--all", "--json"]);
    all.expect(0);
    assert_valid("verify-report.v1.schema.json", &all.json());
    let quick = env.run(&["verify", "--store", store, "--all", "--quick", "--json"]);
    quick.expect(0);
    assert_valid("verify-report.v1.schema.json", &quick.json());
    // An empty store: intact, with its warning.
    let empty = env.path("empty-store");
    fs::create_dir(&empty).unwrap();
    let e = env.run(&["verify", "--store", s(&empty), "--all", "--json"]);
    e.expect(0);
    assert_valid("verify-report.v1.schema.json", &e.json());

    // Failing: a tampered blob, garbage, an untrusted signer, a missing bundle in a store.
    let mut members = bundle_members(&m.bundle);
    members[0].data[0] ^= 1;
    let bad = env.path("bad.tar.zst");
    write_bundle(&bad, &members);
    let failing = env.verify_file(&bad, &m.pubkey);
    failing.expect(1);
    assert_valid("verify-report.v1.schema.json", &failing.json());
    let garbage = env.path("garbage.tar.zst");
    fs::write(&garbage, b"this is not a bundle").unwrap();
    let g = env.verify_file(&garbage, &m.pubkey);
    g.expect(1);
    assert_valid("verify-report.v1.schema.json", &g.json());
    let untrusted = Env::new().run(&["verify", s(&m.bundle), "--json"]);
    untrusted.expect(1);
    assert_valid("verify-report.v1.schema.json", &untrusted.json());
    let missing = env.run(&["verify", "--store", store, &format!("sha256:{}", "0".repeat(64)), "--json"]);
    missing.expect(1);
    assert_valid("verify-report.v1.schema.json", &missing.json());

    // Failing --all: the stored bundle replaced by the tampered one.
    make_writable(&m.bundle);
    fs::copy(&bad, &m.bundle).unwrap();
    let all = env.run(&["verify", "--store", store, "--all", "--json"]);
    all.expect(1);
    assert_valid("verify-report.v1.schema.json", &all.json());
    let one = env.run(&["verify", "--store", store, &m.digest, "--json"]);
    one.expect(1);
    assert_valid("verify-report.v1.schema.json", &one.json());
}

#[test]
fn show_and_extract_json_match_their_schemas() {
    let (env, m) = made();
    for args in [vec!["show", s(&m.bundle), "--json"], vec!["show", "--store", s(&m.store), &m.digest, "--json"]] {
        let o = env.run(&args);
        o.expect(0);
        assert_valid("show.v1.schema.json", &o.json());
    }
    // A failing bundle whose manifest still reads, and one whose manifest does not.
    let mut members = bundle_members(&m.bundle);
    members[0].data[0] ^= 1;
    let bad = env.path("bad.tar.zst");
    write_bundle(&bad, &members);
    let o = env.run(&["show", s(&bad), "--json"]);
    let j = o.json();
    assert_eq!(j["verdict"], "failed");
    assert!(j["manifest"].is_object());
    assert_valid("show.v1.schema.json", &j);
    let garbage = env.path("garbage.tar.zst");
    fs::write(&garbage, b"\x28\xb5\x2f\xfd garbage").unwrap();
    let o = env.run(&["show", s(&garbage), "--json"]);
    o.expect(1);
    assert!(o.json()["manifest"].is_null());
    assert_valid("show.v1.schema.json", &o.json());

    let x = env.run(&["extract", s(&m.bundle), "--to", s(&env.path("out")), "--json"]);
    x.expect(0);
    assert_valid("extract.v1.schema.json", &x.json());
}

fn a_failing_report() -> Value {
    json!({
        "report": "custody-verify-report/v1",
        "tool_version": "0.1.0",
        "verified_at": "2026-11-21T14:00:00Z",
        "subject": {"kind": "file", "path": "b.tar.zst", "bundle": format!("sha256:{}", "ab".repeat(32)), "size": 10},
        "verdict": "failed",
        "checks": [{"name": "blobs", "status": "fail", "detail": "1 problem"}],
        "findings": [{"level": "error", "kind": "blob_hash_mismatch", "location": "blobs/sha256/x", "message": "bad"}],
        "signer": null,
        "ledger": null
    })
}

#[test]
fn the_report_schema_rejects_unknown_verdicts_kinds_and_inconsistent_verdicts() {
    let good = a_failing_report();
    assert_valid("verify-report.v1.schema.json", &good);
    let mut r = good.clone();
    r["verdict"] = json!("compromised");
    assert_invalid("verify-report.v1.schema.json", &r, "an unknown verdict");
    let mut r = good.clone();
    r["findings"][0]["kind"] = json!("looks_fine");
    assert_invalid("verify-report.v1.schema.json", &r, "an unknown finding kind");
    let mut r = good.clone();
    r["verdict"] = json!("intact");
    assert_invalid("verify-report.v1.schema.json", &r, "verdict intact with an error finding");
    let mut r = good.clone();
    r["findings"] = json!([]);
    assert_invalid("verify-report.v1.schema.json", &r, "verdict failed with no error finding");
    let mut r = good.clone();
    r["extra"] = json!(1);
    assert_invalid("verify-report.v1.schema.json", &r, "an unknown top-level field");
    let mut r = good;
    r["subject"]["bundle"] = json!("ab".repeat(32));
    assert_invalid("verify-report.v1.schema.json", &r, "a bundle digest without sha256:");
}

#[test]
fn the_manifest_schema_rejects_what_the_reader_rejects() {
    let (_env, m) = made();
    let man: Value = serde_json::from_slice(&member(&bundle_members(&m.bundle), "manifest.json").data).unwrap();
    assert_valid("manifest.v1.schema.json", &man);
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("an unknown top-level field", Box::new(|v| v["extra"] = json!(true))),
        ("an unknown entry field", Box::new(|v| v["entries"][0]["mode"] = json!(420))),
        ("an unknown journal field", Box::new(|v| v["journal"][0]["who"] = json!("x"))),
        ("another format", Box::new(|v| v["format"] = json!("custody-bundle/v4"))),
        (
            "a v3 manifest without tool_notes",
            Box::new(|v| v["incident"].as_object_mut().unwrap().remove("tool_notes").map(|_| ()).unwrap()),
        ),
        ("a v2 manifest with tool_notes", Box::new(|v| v["format"] = json!("custody-bundle/v2"))),
        ("a v1 manifest with tool_notes", Box::new(|v| v["format"] = json!("custody-bundle/v1"))),
        (
            "a v1 manifest naming an analysis member",
            Box::new(|v| {
                v["format"] = json!("custody-bundle/v1");
                v["analysis_ref"] = json!({"member": "analysis.json", "sha256": "ab".repeat(32), "size": 1});
            }),
        ),
        (
            "an analysis member of another name",
            Box::new(|v| {
                v["analysis_ref"] = json!({"member": "x.json", "sha256": "ab".repeat(32), "size": 1});
            }),
        ),
        ("an upper-case digest", Box::new(|v| v["merkle_root"] = json!("AB".repeat(32)))),
        (
            "a prefixed blob digest",
            Box::new(|v| v["entries"][0]["sha256"] = json!(format!("sha256:{}", "ab".repeat(32)))),
        ),
        ("an unknown side effect", Box::new(|v| v["incident"]["side_effect"] = json!("maybe"))),
        ("an unknown category", Box::new(|v| v["incident"]["category"] = json!("oops"))),
        ("a missing signer", Box::new(|v| v.as_object_mut().unwrap().remove("signer").map(|_| ()).unwrap())),
        ("an unknown identifier", Box::new(|v| v["incident"]["identifiers"][0]["name"] = json!("user_id"))),
    ];
    for (why, edit) in cases {
        let mut v = man.clone();
        edit(&mut v);
        assert_invalid("manifest.v1.schema.json", &v, why);
        // The Rust reader agrees (deny_unknown_fields, enums, the format's own fields).
        let bytes = serde_json::to_vec(&v).unwrap();
        assert!(
            custody::read::envelope::CheckedManifest::try_from(bytes.as_slice()).is_err(),
            "the reader accepts {why} but the schema does not"
        );
    }
}

/// The schema's finding kinds are exactly the variants of `FindingKind` in the source.
#[test]
fn the_report_schema_lists_every_finding_kind_in_the_source() {
    let src = fs::read_to_string(repo().join("src/verify/report.rs")).unwrap();
    let start = src.find("pub enum FindingKind {").expect("FindingKind in src/verify/report.rs");
    let body = &src[start..start + src[start..].find("\n}").unwrap()];
    let mut from_src: Vec<String> = body
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .map(|l| {
            let name = l.trim_end_matches(',');
            let mut out = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        })
        .collect();
    // Serialization agrees with this conversion for a sample.
    assert_eq!(
        serde_json::to_value(custody::verify::FindingKind::LedgerPositionMismatch).unwrap(),
        "ledger_position_mismatch"
    );
    let schema = load("verify-report.v1.schema.json");
    let mut in_schema: Vec<String> = schema["$defs"]["finding_kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    from_src.sort();
    in_schema.sort();
    assert_eq!(in_schema, from_src);
}

// ---------------------------------------------------------------- analysis v2

const ANALYSIS: &str = "analysis.v2.schema.json";

/// The fixture incidents, each with the seed of its `<name>.expected.json`.
const INCIDENTS: [&str; 4] =
    ["duplicate-ticket", "duplicate-refund-poisoned-payout", "procurement-po-retry", "oncall-copilot-rotation-exfil"];

fn incident_dir(name: &str) -> PathBuf {
    repo().join("fixtures/incidents").join(name)
}

/// `--trace-id VALUE`… from the `seed` object of `fixtures/incidents/<name>.expected.json`.
fn seed_args(name: &str) -> Vec<String> {
    let p = repo().join(format!("fixtures/incidents/{name}.expected.json"));
    let expected: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    let seed = expected["seed"].as_object().unwrap_or_else(|| panic!("{}: no seed object", p.display()));
    assert!(!seed.is_empty(), "{}: empty seed", p.display());
    seed.iter()
        .flat_map(|(k, v)| [format!("--{}", k.replace('_', "-")), v.as_str().expect("seed values are strings").into()])
        .collect()
}

/// The trace id of a fixture incident's seed.
fn seed_trace_id(name: &str) -> String {
    let args = seed_args(name);
    let i = args.iter().position(|a| a == "--trace-id").unwrap_or_else(|| panic!("{name}: the seed has no trace id"));
    args[i + 1].clone()
}

/// One real `preserve` of an incident directory: what it printed, the bundle's sealed
/// `analysis.json` (bytes, as GNU tar extracts them) and `show --json` of the bundle.
struct Run {
    what: String,
    preserve: Value,
    analysis: Option<Vec<u8>>,
    show: Value,
}

fn run_preserve(env: &Env, what: &str, dir: &Path, extra: &[String]) -> Run {
    let mut args: Vec<String> = vec!["preserve".into(), "--incident-dir".into(), s(dir).into(), "--json".into()];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    out.expect(0);
    let preserve = out.json();
    let bundle = PathBuf::from(preserve["location"].as_str().expect("preserve --json has a location"));
    require_tool("tar");
    require_tool("zstd");
    let (code, bytes, err) = sh(Command::new("tar").arg("--zstd").arg("-xOf").arg(&bundle).arg("analysis.json"));
    let analysis = (code == 0).then_some(bytes);
    if analysis.is_none() {
        assert!(err.contains("analysis.json"), "{what}: tar cannot read the bundle: {err}");
    }
    let show = env.run(&["show", s(&bundle), "--json"]);
    show.expect(0);
    Run { what: what.into(), preserve, analysis, show: show.json() }
}

/// Validates every document of a run against its schema, and checks that the typed model
/// reads back exactly what was written.
#[track_caller]
fn assert_run_matches_schemas(r: &Run) {
    assert_valid("preserve.v1.schema.json", &r.preserve);
    assert_valid("show.v1.schema.json", &r.show);
    let Some(bytes) = &r.analysis else {
        assert!(r.preserve["analysis"].is_null(), "{}: no analysis.json but preserve printed one", r.what);
        assert!(r.show["manifest"].get("analysis").is_none(), "{}: show invents an analysis", r.what);
        return;
    };
    assert_eq!(bytes.last(), Some(&b'\n'), "{}: analysis.json ends with a newline", r.what);
    let doc: Value = serde_json::from_slice(bytes).unwrap();
    assert_valid(ANALYSIS, &doc);
    assert_eq!(r.show["manifest"]["analysis"], doc, "{}: show --json fills in analysis.json as sealed", r.what);

    // The public model reads it, and writes back the same JSON value.
    let text = std::str::from_utf8(bytes).unwrap();
    let typed: custody::collect::analysis::Analysis =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{}: the model cannot read analysis.json: {e}", r.what));
    assert_eq!(serde_json::to_value(&typed).unwrap(), doc, "{}: Analysis does not round-trip", r.what);
    assert_eq!(custody::collect::analysis::Analysis::from_json(bytes).unwrap(), typed);
    let summary: custody::collect::analysis::AnalysisSummary = serde_json::from_value(r.preserve["analysis"].clone())
        .unwrap_or_else(|e| panic!("{}: the model cannot read preserve's analysis: {e}", r.what));
    assert_eq!(serde_json::to_value(&summary).unwrap(), r.preserve["analysis"], "{}: summary round-trip", r.what);
    // The summary is of this analysis.
    for k in ["format", "mode", "seeds", "identifiers", "chain", "event_counts", "actions", "checklist"] {
        assert_eq!(r.preserve["analysis"][k], doc[k], "{}: preserve's `{k}` is not the sealed one", r.what);
    }
    assert_eq!(r.preserve["checklist"], doc["checklist"], "{}", r.what);
    assert_eq!(r.preserve["evidence_problems"], doc["evidence_problems"], "{}", r.what);
}

/// Every run the analysis schemas are tested on: each fixture incident from its seed, one
/// without a seed whose only trace becomes the seed, one with several traces and no seed
/// (candidates), a gzipped log with an idempotent replay and a malformed line, and one with
/// `--no-analyze`.
fn analysis_runs(env: &Env) -> Vec<Run> {
    let mut runs: Vec<Run> =
        INCIDENTS.iter().map(|name| run_preserve(env, name, &incident_dir(name), &seed_args(name))).collect();
    // One trace in the evidence, no seed: inferred. The OTLP batch lines of one trace of a
    // fixture (its other lines hold other traces).
    let otlp = incident_dir("duplicate-refund-poisoned-payout").join("traces/otelcol-file-export.jsonl");
    let seed = &seed_trace_id("duplicate-refund-poisoned-payout");
    let text = fs::read_to_string(&otlp).unwrap();
    let lines: Vec<&str> =
        text.lines().filter(|l| trace_ids(&serde_json::from_str(l).unwrap()) == [seed.as_str()]).collect();
    assert!(lines.len() >= 2, "{}: no batch of trace {seed} alone", otlp.display());
    let one = env.path("one-trace");
    fs::create_dir_all(one.join("traces")).unwrap();
    fs::write(one.join("traces/one-trace.otlp.jsonl"), lines.join("\n") + "\n").unwrap();
    runs.push(run_preserve(env, "one trace, no seed", &one, &[]));
    // That export whole (several traces and sessions), no seed: nothing to infer.
    let two = env.path("two-traces");
    fs::create_dir_all(two.join("traces")).unwrap();
    fs::copy(&otlp, two.join("traces/otelcol-file-export.jsonl")).unwrap();
    runs.push(run_preserve(env, "several traces, no seed", &two, &[]));
    // A gzipped tool-call log: an idempotent replay, and a malformed line (cited in the
    // decompressed stream).
    let gz = env.path("gzipped");
    fs::create_dir_all(gz.join("logs")).unwrap();
    let call = |n: u32, status: Value| {
        json!({"ts": 1795269800 + n, "session_id": "sess-schema-1", "trace_id": "0af7651916cd43dd8448eb211c80319c",
               "agent_id": "agent-1", "tool": "create_ticket", "call_id": format!("call_{n}"),
               "tool_principal": "svc-ticketing@prod", "idempotency_key": "idem-1", "response": {"status": status}})
        .to_string()
    };
    let log = format!("{}\n{{ not json\n{}\n", call(1, json!(201)), call(2, json!("idempotent replay")));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, log.as_bytes()).unwrap();
    fs::write(gz.join("logs/tool_calls.jsonl.gz"), enc.finish().unwrap()).unwrap();
    let seed = ["--trace-id".to_string(), "0af7651916cd43dd8448eb211c80319c".into()];
    runs.push(run_preserve(env, "gzipped log with a replay and a bad line", &gz, &seed));
    runs.push(run_preserve(
        env,
        "--no-analyze",
        &incident_dir("duplicate-ticket"),
        &["--no-analyze".to_string(), "--trace-id".into(), "4bf92f3577b34da6a3ce929d0e0e4736".into()],
    ));
    runs
}

/// The distinct OTLP `traceId`s of a JSON value.
fn trace_ids(v: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                if let Some(t) = o.get("traceId").and_then(Value::as_str) {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

#[test]
fn analysis_v2_of_every_fixture_incident_and_mode_matches_the_schemas() {
    let env = Env::new();
    let runs = analysis_runs(&env);
    for r in &runs {
        assert_run_matches_schemas(r);
    }
    let mode = |i: usize| runs[i].preserve["analysis"]["mode"].as_str().map(str::to_string);
    for (i, name) in INCIDENTS.iter().enumerate() {
        assert_eq!(mode(i).as_deref(), Some("search"), "{name}");
    }
    // The runs after the incidents, in the order `analysis_runs` makes them.
    let n = INCIDENTS.len();
    assert_eq!(mode(n).as_deref(), Some("inferred"), "one trace, no seed");
    assert_eq!(runs[n].preserve["analysis"]["seeds"][0]["origin"], "inferred");
    assert_eq!(runs[n].preserve["analysis"]["seeds"][0]["value"], seed_trace_id("duplicate-refund-poisoned-payout"));
    assert_eq!(mode(n + 1).as_deref(), Some("candidates"), "several traces, no seed");
    assert!(!runs[n + 1].preserve["analysis"]["candidates"].as_array().unwrap().is_empty());
    assert_eq!(mode(n + 2).as_deref(), Some("search"), "gzipped log");
    assert!(runs[n + 3].analysis.is_none() && runs[n + 3].preserve["analysis"].is_null(), "--no-analyze");

    // Every property the schema declares is written by at least one of these runs: a
    // property the analysis never writes (or a misspelt optional one, which additionalProperties
    // would only catch when written) is not tested by them.
    let schema = load(ANALYSIS);
    let mut seen = BTreeSet::new();
    for r in &runs {
        if let Some(bytes) = &r.analysis {
            walk(&schema, &schema, &serde_json::from_slice(bytes).unwrap(), "(analysis)", &mut seen);
        }
        let summary = json!({"$ref": "#/$defs/summary"});
        walk(&schema, &summary, &r.preserve["analysis"], "(analysis)", &mut seen);
    }
    let declared = declared_properties(&schema);
    let unseen: Vec<_> = declared.difference(&seen).collect();
    assert!(unseen.is_empty(), "properties of {ANALYSIS} that no real output wrote: {unseen:?}");
}

/// Every (definition, property) declared by the schema: the top level as `(analysis)`.
fn declared_properties(schema: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut add = |def: &str, s: &Value| {
        for k in s["properties"].as_object().into_iter().flatten().map(|(k, _)| k) {
            out.insert((def.to_string(), k.clone()));
        }
    };
    add("(analysis)", schema);
    for (name, def) in schema["$defs"].as_object().unwrap() {
        add(name, def);
    }
    out
}

/// Walks `v` along schema `s` (local `$ref`s followed; other files not entered), recording
/// each (definition, property) that holds a value.
fn walk(root: &Value, s: &Value, v: &Value, def: &str, seen: &mut BTreeSet<(String, String)>) {
    if let Some(r) = s["$ref"].as_str() {
        if let Some(name) = r.strip_prefix("#/$defs/") {
            let target = root.pointer(&r[1..]).unwrap_or_else(|| panic!("unresolved {r}"));
            walk(root, target, v, name, seen);
        }
        return;
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        for sub in s[k].as_array().into_iter().flatten() {
            walk(root, sub, v, def, seen);
        }
    }
    match v {
        Value::Object(o) => {
            let props = s["properties"].as_object();
            for (k, x) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => {
                        seen.insert((def.to_string(), k.clone()));
                        walk(root, sub, x, def, seen);
                    }
                    None if s["additionalProperties"].is_object() => {
                        walk(root, &s["additionalProperties"], x, def, seen)
                    }
                    None => {}
                }
            }
        }
        Value::Array(a) => {
            let prefix = s["prefixItems"].as_array().map_or(0, Vec::len);
            for (i, x) in a.iter().enumerate() {
                match s["prefixItems"].get(i) {
                    Some(sub) => walk(root, sub, x, def, seen),
                    None if i >= prefix && s["items"].is_object() => walk(root, &s["items"], x, def, seen),
                    None => {}
                }
            }
        }
        _ => {}
    }
}

/// A real analysis.json, for the negative tests.
fn real_analysis() -> Value {
    let env = Env::new();
    let r = run_preserve(&env, "duplicate-ticket", &incident_dir("duplicate-ticket"), &seed_args("duplicate-ticket"));
    let doc: Value = serde_json::from_slice(r.analysis.as_ref().unwrap()).unwrap();
    assert_valid(ANALYSIS, &doc);
    doc
}

#[test]
fn the_analysis_schema_rejects_unknown_fields_values_outside_its_enums_and_missing_fields() {
    let doc = real_analysis();
    assert!(!doc["events"].as_array().unwrap().is_empty(), "the fixture has events");
    type Edit = Box<dyn Fn(&mut Value)>;
    let remove = |v: &mut Value, key: &str| {
        v.as_object_mut().unwrap().remove(key).unwrap_or_else(|| panic!("no `{key}` to remove"));
    };
    // (why, edit, whether the typed model rejects it too: some closed sets are strings there)
    let cases: Vec<(&str, Edit, bool)> = vec![
        ("an unknown top-level field", Box::new(|v| v["verdict"] = json!("guilty")), true),
        ("an unknown event field", Box::new(|v| v["events"][0]["severity"] = json!("high")), true),
        ("an unknown citation field", Box::new(|v| v["events"][0]["citations"][0]["blob"] = json!("x")), true),
        ("an unknown stats field", Box::new(|v| v["stats"]["files"] = json!(1)), true),
        ("another format", Box::new(|v| v["format"] = json!("custody-analysis/v3")), false),
        ("an unknown mode", Box::new(|v| v["mode"] = json!("guess")), true),
        ("an unknown event kind", Box::new(|v| v["events"][0]["kind"] = json!("tool_invocation")), true),
        (
            "an unknown event kind counted",
            Box::new(|v| v["event_counts"]["phone_call"] = json!({"events": 1, "records": 1})),
            true,
        ),
        ("an unknown identifier status", Box::new(|v| v["identifiers"][0]["status"] = json!("maybe")), true),
        ("an unknown side effect", Box::new(|v| v["side_effect"]["status"] = json!("probably")), true),
        ("an unknown source format", Box::new(|v| v["sources"][0]["format"] = json!("csv")), false),
        ("an unknown id key", Box::new(|v| v["events"][0]["ids"]["user_id"] = json!("u1")), false),
        (
            "a time without its zone",
            Box::new(|v| v["events"][0]["start"] = json!({"at": "2026-11-21T14:00:00Z"})),
            true,
        ),
        (
            "a local time marked UTC",
            Box::new(|v| v["events"][0]["start"] = json!({"at": "21 Nov 2026 14:00", "zone": "utc"})),
            false,
        ),
        ("a negative count", Box::new(|v| v["events_omitted"] = json!(-1)), true),
        ("a missing top-level field", Box::new(move |v| remove(v, "events_omitted")), true),
        ("a missing event field", Box::new(move |v| remove(&mut v["events"][0], "write")), true),
        ("a missing hop explanation", Box::new(move |v| remove(&mut v["chain"]["hops"][0], "why")), true),
        ("a missing nullable field", Box::new(move |v| remove(&mut v["events"][0], "outcome")), false),
        ("eight identifiers", Box::new(|v| v["identifiers"].as_array_mut().unwrap().truncate(8)), false),
        ("the chain out of order", Box::new(|v| v["chain"]["nodes"].as_array_mut().unwrap().swap(0, 1)), false),
    ];
    for (why, edit, typed_rejects) in cases {
        let mut v = doc.clone();
        edit(&mut v);
        assert_invalid(ANALYSIS, &v, why);
        if typed_rejects {
            assert!(
                serde_json::from_value::<custody::collect::analysis::Analysis>(v).is_err(),
                "the model accepts {why} but the schema does not"
            );
        }
    }
}

/// analysis.v2 validates an analysis.json on its own (tooling, the collector tests): it refers
/// to no other file, and its copies of the manifest's definitions are the manifest's.
#[test]
fn the_analysis_schema_stands_alone_and_its_copies_match_the_manifests() {
    let schema = load(ANALYSIS);
    let mut stack = vec![&schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    assert!(r.starts_with("#/"), "{ANALYSIS} refers to another file: {r}");
                }
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    let alone = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{ANALYSIS} does not compile on its own: {e}"));
    let doc = real_analysis();
    let errors: Vec<String> = alone.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{ANALYSIS} alone rejects real output: {errors:?}");
    let manifest = load("manifest.v1.schema.json");
    for (ours, theirs) in [
        ("ident_name", "ident_name"),
        ("sha256_hex", "sha256_hex"),
        ("side_effect", "side_effect"),
        ("check_status", "status"),
    ] {
        let strip = |v: &Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("description");
            v
        };
        assert_eq!(
            strip(&schema["$defs"][ours]),
            strip(&manifest["$defs"][theirs]),
            "{ANALYSIS} $defs/{ours} differs from manifest.v1.schema.json $defs/{theirs}"
        );
    }
}

#[test]
fn the_preserve_and_manifest_schemas_hold_their_analysis_to_its_version() {
    let env = Env::new();
    let r = run_preserve(&env, "duplicate-ticket", &incident_dir("duplicate-ticket"), &seed_args("duplicate-ticket"));
    assert_valid("preserve.v1.schema.json", &r.preserve);
    let mut p = r.preserve.clone();
    p["analysis"]["events"] = json!([]);
    assert_invalid("preserve.v1.schema.json", &p, "the full event list in preserve's summary");
    let mut p = r.preserve.clone();
    p["analysis"].as_object_mut().unwrap().remove("notable_events");
    assert_invalid("preserve.v1.schema.json", &p, "a summary without its notable events");
    let mut p = r.preserve.clone();
    p["analysis"] = Value::Null;
    assert_invalid("preserve.v1.schema.json", &p, "a checklist without an analysis");
    let mut p = r.preserve.clone();
    p.as_object_mut().unwrap().remove("analysis");
    assert_invalid("preserve.v1.schema.json", &p, "no analysis key");

    // show --json: the analysis is read by its format.
    assert_valid("show.v1.schema.json", &r.show);
    let mut shown = r.show.clone();
    shown["manifest"]["analysis"]["format"] = json!("custody-analysis/v1");
    assert_invalid("show.v1.schema.json", &shown, "a v2 analysis labelled v1");
    let mut shown = r.show.clone();
    shown["manifest"]["analysis"]["linkage"] = json!({});
    assert_invalid("show.v1.schema.json", &shown, "a v2 analysis with a v1 field");
    // An older bundle's v1 analysis still validates (fixtures/compat).
    let compat = repo().join("fixtures/compat");
    let old = env.run(&[
        "show",
        s(&compat.join("v1-duplicate-ticket-intact.tar.zst")),
        "--trusted-key",
        s(&compat.join("v1-signer.pub")),
        "--json",
    ]);
    old.expect(0);
    let old = old.json();
    assert_eq!(old["manifest"]["analysis"]["format"], "custody-analysis/v1");
    assert_valid("show.v1.schema.json", &old);
}

/// The schema's enums are the model's: the format names are the plug-in registry's, in its
/// order; every other enum is the serde name of every variant (an exhaustive match below
/// breaks the build when a variant is added, so this test cannot silently fall behind).
#[test]
fn the_analysis_schema_enums_are_the_models() {
    use custody::bundle::manifest::IdentName;
    use custody::collect::analysis::*;
    use custody::collect::analyze::Format;

    let schema = load(ANALYSIS);
    let enum_of = |def: &str| -> Vec<String> {
        schema["$defs"][def]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("$defs/{def} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let names =
        |vals: Vec<Value>| -> Vec<String> { vals.into_iter().map(|v| v.as_str().unwrap().to_string()).collect() };
    fn serde_names<T: serde::Serialize>(all: &[T]) -> Vec<Value> {
        all.iter().map(|v| serde_json::to_value(v).unwrap()).collect()
    }

    let formats: Vec<String> = Format::all().map(|f| f.name().to_string()).collect();
    assert_eq!(enum_of("format_name"), formats, "format names (src/collect/analyze/formats/mod.rs REGISTRY)");
    let kinds = enum_of("evidence_kind");
    for f in Format::all() {
        if let Some(k) = f.kind() {
            assert!(kinds.iter().any(|x| x == k), "format {f}'s evidence kind {k} is not in the schema");
        }
    }
    assert_eq!(enum_of("event_kind"), EventKind::ALL.iter().map(|k| k.as_str().to_string()).collect::<Vec<_>>());
    assert_eq!(names(serde_names(&EventKind::ALL)), enum_of("event_kind"));
    assert_eq!(names(serde_names(&IdentName::ALL)), enum_of("id_key")[..9].to_vec());

    // Each list is the enum's `ALL` (an exhaustive match in the library stops the build when a
    // variant is added to an enum but not to its list).
    assert_eq!(names(serde_names(&Mode::ALL)), enum_of("mode"));
    assert_eq!(names(serde_names(&IdentStatus::ALL)), enum_of("ident_status"));
    assert_eq!(names(serde_names(&MergeRule::ALL)), enum_of("merge_rule"));
    assert_eq!(names(serde_names(&Tie::ALL)), enum_of("tie"));
    assert_eq!(names(serde_names(&NodeName::ALL)), enum_of("node_name"));
    assert_eq!(names(serde_names(&HopStatus::ALL)), enum_of("hop_status"));
    assert_eq!(names(serde_names(&Zone::ALL)), enum_of("zone"));
    assert_eq!(
        names(serde_names(&SeedOrigin::ALL)),
        names(schema["$defs"]["seed"]["properties"]["origin"]["enum"].as_array().unwrap().clone())
    );
    assert_eq!(
        names(serde_names(&OutcomeStatus::ALL)),
        names(schema["$defs"]["outcome"]["properties"]["status"]["enum"].as_array().unwrap().clone())
    );

    // Linking values (`LinkKey` is non-exhaustive and has no list: read from its `as_str`).
    let src = fs::read_to_string(repo().join("src/collect/analyze/semantics.rs")).unwrap();
    let start = src.find("impl LinkKey {").expect("impl LinkKey in src/collect/analyze/semantics.rs");
    let body = &src[start..start + src[start..].find("\n}").unwrap()];
    let mut links: Vec<String> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("LinkKey::"))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(links.len() >= 10, "LinkKey names not found in its as_str: {links:?}");
    assert_eq!(serde_json::to_value(LinkKey::CallId).unwrap(), "call_id", "serde and as_str agree");
    let mut in_schema = enum_of("id_key")[9..].to_vec();
    links.sort();
    in_schema.sort();
    assert_eq!(in_schema, links, "linking values (src/collect/analyze/semantics.rs LinkKey)");

    // Record problem types (`Problem::type_name`).
    let src = fs::read_to_string(repo().join("src/collect/analyze/types.rs")).unwrap();
    let start = src.find("pub fn type_name").expect("Problem::type_name in src/collect/analyze/types.rs");
    let body = &src[start..start + src[start..].find("\n    }").unwrap()];
    let mut problems: Vec<String> =
        body.lines().filter(|l| l.contains("=>")).filter_map(|l| l.split('"').nth(1).map(str::to_string)).collect();
    let mut in_schema = enum_of("record_problem_type");
    problems.sort();
    in_schema.sort();
    assert_eq!(in_schema, problems, "record problem types (src/collect/analyze/types.rs Problem::type_name)");
}
