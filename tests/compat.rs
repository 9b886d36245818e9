//! Bundles of earlier formats keep verifying: `fixtures/compat/` holds an intact format v1
//! bundle (pretty manifest as the DSSE payload, analysis embedded), sealed by an earlier
//! custody. `verify`, `show`, `extract` and the openssl recipe must accept it, and a tampered
//! copy must still be caught by the v1 rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn v1_bundle() -> PathBuf {
    repo().join("fixtures/compat/v1-duplicate-ticket-intact.tar.zst")
}

fn v1_pub() -> PathBuf {
    repo().join("fixtures/compat/v1-signer.pub")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_v1_bundle_still_verifies_shows_and_extracts() {
    let env = Env::new();
    let b = v1_bundle();
    let out = env.run(&["verify", s(&b), "--trusted-key", s(&v1_pub()), "--json"]);
    out.expect(0);
    let r = out.json();
    assert_eq!(r["verdict"], "intact", "{r:#}");
    let manifest_check = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "manifest").unwrap();
    assert_eq!(manifest_check["detail"], "parsed; signed payload equals manifest.json", "{r:#}");
    // show reads the embedded analysis of a v1 manifest.
    let show = env.run(&["show", s(&b), "--trusted-key", s(&v1_pub()), "--json"]);
    show.expect(0);
    let sj = show.json();
    assert_eq!(sj["manifest"]["format"], "custody-bundle/v1");
    assert_eq!(sj["manifest"]["analysis"]["format"], "custody-analysis/v1");
    assert!(sj["manifest"].get("analysis_ref").is_none());
    // extract writes the original evidence files.
    let to = env.path("out");
    env.run(&["extract", s(&b), "--trusted-key", s(&v1_pub()), "--to", s(&to)]).expect(0);
    let want = fixture_dir().join("logs/tool_calls.jsonl");
    assert_eq!(std::fs::read(to.join("logs/tool_calls.jsonl")).unwrap(), std::fs::read(want).unwrap());
}

#[test]
fn the_openssl_recipe_verifies_a_v1_bundle() {
    require_tool("openssl");
    require_tool("jq");
    let (code, out, err) =
        sh(Command::new("bash").arg(repo().join("tests/interop/openssl-verify.sh")).arg(v1_bundle()).arg(v1_pub()));
    assert_eq!(code, 0, "{}{err}", String::from_utf8_lossy(&out));
    assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
}

#[test]
fn a_tampered_v1_manifest_is_still_caught_by_the_v1_rules() {
    let env = Env::new();
    let mut members = bundle_members(&v1_bundle());
    let j = member_index(&members, "manifest.json");
    let at = String::from_utf8_lossy(&members[j].data).find("\"host\": \"").unwrap() + 9;
    members[j].data[at] ^= 0x01;
    let bad = env.path("v1-flipped.tar.zst");
    write_bundle(&bad, &members);
    let out = env.run(&["verify", s(&bad), "--trusted-key", s(&v1_pub()), "--json"]);
    out.expect(1);
    assert!(out.finding_kinds().contains(&"payload_mismatch".to_string()), "{:?}", out.finding_kinds());
    // A v1 manifest signed with a v2 statement (re-signed by a key holder): the envelope does
    // not belong to the manifest's format.
    let key = custody::keys::SecretKey::generate(&env.path("k2.key")).unwrap();
    let members = bundle_members(&v1_bundle());
    let (mm, me) = signed_manifest_members(&members[j], &members[j].data, &key);
    let mut t = members.clone();
    t[j] = mm;
    t[j + 1] = me;
    let mixed = env.path("v1-with-v2-envelope.tar.zst");
    write_bundle(&mixed, &t);
    let pubk = custody::keys::pub_path_for(&env.path("k2.key"));
    let out = env.run(&["verify", s(&mixed), "--trusted-key", s(&pubk), "--json"]);
    out.expect(1);
    assert!(out.finding_kinds().contains(&"envelope_invalid".to_string()), "{:?}", out.finding_kinds());
}

fn analysis_v1_bundle() -> PathBuf {
    repo().join("fixtures/compat/v2-analysis-v1-duplicate-ticket-intact.tar.zst")
}

fn analysis_v1_pub() -> PathBuf {
    repo().join("fixtures/compat/v2-analysis-v1-signer.pub")
}

/// A format v2 bundle sealed before the incident model (its `analysis.json` is
/// `custody-analysis/v1`) keeps verifying, and `show` reads its analysis as v1 JSON: the
/// typed v2 model refuses it by name instead of misreading it.
#[test]
fn a_bundle_sealed_before_the_incident_model_still_verifies_and_shows() {
    let env = Env::new();
    let b = analysis_v1_bundle();
    let key = analysis_v1_pub();
    let out = env.run(&["verify", s(&b), "--trusted-key", s(&key), "--json"]);
    out.expect(0);
    assert_eq!(out.json()["verdict"], "intact");
    let show = env.run(&["show", s(&b), "--trusted-key", s(&key), "--json"]);
    show.expect(0);
    let sj = show.json();
    assert_eq!(sj["manifest"]["format"], "custody-bundle/v2");
    assert_eq!(sj["manifest"]["analysis"]["format"], "custody-analysis/v1");
    assert_eq!(sj["manifest"]["analysis_ref"]["member"], "analysis.json");
    // The human form prints the v1 analysis with the v1 printer (its identifiers).
    let human = env.run(&["show", s(&b), "--trusted-key", s(&key)]);
    human.expect(0);
    let text = &human.stdout;
    assert!(text.contains("sess-7f3a9c2e41d08b65"), "{text}");
    assert!(!text.contains("NOT readable as custody-analysis/v2"), "{text}");
    // The library's typed reader names the format it cannot read.
    let members = bundle_members(&b);
    let m = members.iter().find(|m| m.name() == "analysis.json").expect("analysis.json member");
    match custody::collect::analysis::Analysis::from_json(&m.data) {
        Err(custody::collect::analysis::AnalysisReadError::OtherFormat(f)) => assert_eq!(f, "custody-analysis/v1"),
        other => panic!("{other:?}"),
    }
    // extract gives the original files back.
    let to = env.path("out");
    env.run(&["extract", s(&b), "--trusted-key", s(&key), "--to", s(&to)]).expect(0);
    let want = fixture_dir().join("logs/tool_calls.jsonl");
    assert_eq!(std::fs::read(to.join("logs/tool_calls.jsonl")).unwrap(), std::fs::read(want).unwrap());
}

#[test]
fn the_openssl_recipe_verifies_a_bundle_with_a_v1_analysis() {
    require_tool("openssl");
    require_tool("jq");
    let (code, out, err) = sh(Command::new("bash")
        .arg(repo().join("tests/interop/openssl-verify.sh"))
        .arg(analysis_v1_bundle())
        .arg(analysis_v1_pub()));
    assert_eq!(code, 0, "{}{err}", String::from_utf8_lossy(&out));
    assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
}

/// A format v2 bundle sealed before v3 gave custody's notes their own field: its manifest keeps
/// them among the responder's notes. It keeps verifying (file, openssl recipe), `show` labels
/// custody's notes as the tool's by their prefix and says so, and the v3 field may not appear
/// in it (a v2 manifest with `incident.tool_notes`, re-signed, is `manifest_invalid`).
#[test]
fn a_v2_bundle_with_tool_notes_among_the_notes_still_verifies_and_shows_them_apart() {
    let env = Env::new();
    let b = repo().join("fixtures/compat/v2-duplicate-ticket-tool-notes.tar.zst");
    let k = repo().join("fixtures/compat/v2-signer.pub");
    let out = env.run(&["verify", s(&b), "--trusted-key", s(&k), "--json"]);
    out.expect(0);
    assert_eq!(out.json()["verdict"], "intact");
    let show = env.run(&["show", s(&b), "--trusted-key", s(&k), "--json"]);
    show.expect(0);
    let sj = show.json();
    crate::schemas::assert_valid("show.v1.schema.json", &sj);
    assert_eq!(sj["manifest"]["format"], "custody-bundle/v2");
    assert!(sj["manifest"]["incident"].get("tool_notes").is_none());
    let notes = sj["manifest"]["incident"]["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n == "v2 fixture: responder note"), "{notes:?}");
    assert!(notes.iter().any(|n| n.as_str().unwrap().starts_with("custody analysis:")), "{notes:?}");
    let human = env.run(&["show", s(&b), "--trusted-key", s(&k)]);
    human.expect(0);
    assert!(human.stdout.contains("note       v2 fixture: responder note"), "{}", human.stdout);
    assert!(human.stdout.contains("tool note  custody analysis:"), "{}", human.stdout);
    assert!(human.stdout.contains("told apart by their prefix"), "{}", human.stdout);
    let tl = env.run(&["timeline", s(&b), "--trusted-key", s(&k), "--json"]);
    tl.expect(0);
    let tj = tl.json();
    crate::schemas::assert_valid("timeline.v1.schema.json", &tj);
    assert_eq!(tj["notes"], serde_json::json!(["v2 fixture: responder note"]));
    assert_eq!(tj["tool_notes_by_prefix"], true);
    // The openssl recipe checks its statement of format v2.
    require_tool("openssl");
    require_tool("jq");
    let (code, o, err) = sh(Command::new("bash").arg(repo().join("tests/interop/openssl-verify.sh")).arg(&b).arg(&k));
    assert_eq!(code, 0, "{}{err}", String::from_utf8_lossy(&o));
    // A v2 manifest given the v3 field (and re-signed by a key holder) is not a v2 manifest.
    let key = custody::keys::SecretKey::generate(&env.path("k.key")).unwrap();
    let members = bundle_members(&b);
    let j = member_index(&members, "manifest.json");
    let mut man: serde_json::Value = serde_json::from_slice(&members[j].data).unwrap();
    man["incident"]["tool_notes"] = serde_json::json!([]);
    let bytes = [serde_json::to_vec(&man).unwrap(), b"\n".to_vec()].concat();
    let (mm, me) = signed_manifest_members(&members[j], &bytes, &key);
    let mut t = members.clone();
    t[j] = mm;
    t[j + 1] = me;
    let bad = env.path("v2-with-tool-notes.tar.zst");
    write_bundle(&bad, &t);
    let out =
        env.run(&["verify", s(&bad), "--trusted-key", s(&custody::keys::pub_path_for(&env.path("k.key"))), "--json"]);
    out.expect(1);
    assert!(out.finding_kinds().contains(&"manifest_invalid".to_string()), "{:?}", out.finding_kinds());
}
