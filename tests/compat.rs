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
