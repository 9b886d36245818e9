//! JSON schemas (`schemas/*.schema.json`, draft 2020-12) validate REAL output: every `--json`
//! command, a manifest taken out of a bundle, and failing verify reports; and they reject
//! what they must (unknown verdict, unknown finding kind, unknown manifest fields).

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::util::*;

const SCHEMAS: [&str; 8] = [
    "analysis.v1.schema.json",
    "manifest.v1.schema.json",
    "verify-report.v1.schema.json",
    "preserve.v1.schema.json",
    "show.v1.schema.json",
    "list.v1.schema.json",
    "keygen.v1.schema.json",
    "extract.v1.schema.json",
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

#[track_caller]
fn assert_valid(schema: &str, doc: &Value) {
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
        ("another format", Box::new(|v| v["format"] = json!("custody-bundle/v3"))),
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
