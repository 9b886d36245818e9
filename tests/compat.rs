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
