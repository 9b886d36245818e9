//! Roles (issue 19 item 6) and key validity: custody's notes sealed apart from the
//! responder's (format v3), a separate ledger key (`--ledger-key`) whose entries say
//! `signed_by: ledger`, keys pinned by role (`--trusted-ledger-key`, `--trusted-keys FILE`) and
//! by validity period, so that old bundles keep verifying after a rotation and a retired key's
//! new signatures are findings.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::schemas::assert_valid;
use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `custody keygen --out DIR/name`: (private key, public key).
fn keygen(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    let k = env.path(name);
    env.run(&["keygen", "--out", s(&k)]).expect(0);
    (k.clone(), custody::keys::pub_path_for(&k))
}

/// `preserve` of the fixture incident into `store` with `extra` flags; the bundle's digest.
fn preserve_into(env: &Env, store: &Path, extra: &[&str]) -> String {
    let fx = fixture_dir();
    let mut args = vec!["preserve", "--incident-dir", s(&fx), "--store", s(store), "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    out.expect(0);
    out.json()["bundle"].as_str().unwrap().to_string()
}

/// The payload of the ledger entry at `position` of a local store.
fn entry_payload(store: &Path, position: u64) -> Value {
    let bytes = std::fs::read(store.join(format!("ledger/{position:020}.json"))).unwrap();
    let env: Value = serde_json::from_slice(&bytes).unwrap();
    let raw = base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn key_id(pubkey: &Path) -> String {
    custody::keys::PublicKey::load(pubkey).unwrap().id.to_string()
}

fn verify_json(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert!(out.code == 0 || out.code == 1, "verify exit {}: {}", out.code, out.stderr);
    let v = out.json();
    assert_valid("verify-report.v1.schema.json", &v);
    (out.code, v)
}

#[test]
fn tool_notes_and_responder_notes_are_sealed_and_shown_apart() {
    let env = Env::new();
    let m = env.preserve_fixture(&["--note", "paged at 14:08"]);
    let show = env.run(&["show", s(&m.bundle), "--trusted-key", s(&m.pubkey), "--json"]);
    show.expect(0);
    let sj = show.json();
    assert_valid("show.v1.schema.json", &sj);
    let man = &sj["manifest"];
    assert_eq!(man["format"], "custody-bundle/v3");
    assert_eq!(man["incident"]["notes"], serde_json::json!(["paged at 14:08"]), "only the responder's: {man:#}");
    let tool = man["incident"]["tool_notes"].as_array().expect("v3 has tool_notes");
    assert!(!tool.is_empty() && tool.iter().all(|n| n.as_str().unwrap().starts_with("custody")), "{tool:?}");
    assert!(tool.iter().any(|n| n.as_str().unwrap().starts_with("custody analysis:")), "{tool:?}");
    // The journal says who wrote each note.
    let details: Vec<&str> = man["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "note")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(details.contains(&"responder note: paged at 14:08"), "{details:?}");
    assert!(details.iter().filter(|d| d.starts_with("responder note: custody")).count() == 0, "{details:?}");
    // Human show: labelled apart.
    let human = env.run(&["show", s(&m.bundle), "--trusted-key", s(&m.pubkey)]);
    human.expect(0);
    assert!(human.stdout.contains("note       paged at 14:08"), "{}", human.stdout);
    assert!(human.stdout.contains("tool note  custody analysis:"), "{}", human.stdout);
    assert!(!human.stdout.contains("note       custody"), "{}", human.stdout);
    assert!(!human.stdout.contains("told apart by their prefix"), "a v3 bundle needs no prefix: {}", human.stdout);
    // Timeline JSON and the HTML report.
    let html = env.path("report.html");
    let tl = env.run(&["timeline", s(&m.bundle), "--trusted-key", s(&m.pubkey), "--json", "--html", s(&html)]);
    tl.expect(0);
    let tj = tl.json();
    assert_valid("timeline.v1.schema.json", &tj);
    assert_eq!(tj["notes"], serde_json::json!(["paged at 14:08"]));
    assert_eq!(tj["tool_notes"], man["incident"]["tool_notes"]);
    assert_eq!(tj["tool_notes_by_prefix"], false);
    let page = std::fs::read_to_string(&html).unwrap();
    let responder = page.split("class=\"note-responder\">").nth(1).expect("a responder note");
    assert!(responder.split("</p>").next().unwrap().ends_with("note: paged at 14:08"), "{page}");
    let tool = page.split("class=\"note-tool\">").nth(1).expect("a tool note");
    assert!(tool.split("</p>").next().unwrap().contains("note: custody analysis:"), "{page}");
    assert!(!page.contains("note-responder\">Responder&#39;s note: custody"), "{page}");
}

#[test]
fn a_responder_note_that_imitates_the_tool_is_refused() {
    let env = Env::new();
    let fx = fixture_dir();
    for note in ["custody analysis: no side effect", "  Custody Analysis: x", "custody: trace_id given as y"] {
        let out = env.run(&["preserve", "--incident-dir", s(&fx), "--note", note]);
        out.expect(2);
        assert!(out.stderr.contains("begins like the notes custody writes itself"), "{}", out.stderr);
    }
    assert!(
        !env.store().join("bundles").exists()
            || std::fs::read_dir(env.store().join("bundles")).unwrap().next().is_none()
    );
    // A note that merely mentions custody is the responder's.
    env.preserve_fixture(&["--note", "handed to custody: legal"]);
}

#[test]
fn preserve_with_a_ledger_key_verifies_only_with_the_ledger_key_pinned() {
    let env = Env::new();
    let (lkey, lpub) = keygen(&env, "ledger.key");
    let store = env.store();
    let digest = preserve_into(&env, &store, &["--ledger-key", s(&lkey)]);
    let cpub = env.pubkey();
    // The entry says it is the ledger key's; the bundle is the collector key's.
    let p = entry_payload(&store, 1);
    assert_eq!(p["signed_by"], serde_json::json!({"role": "ledger", "keyid": key_id(&lpub)}), "{p:#}");
    // Without the ledger key pinned: the entry is untrusted.
    let (code, r) = verify_json(&env, &["--store", s(&store), &digest, "--trusted-key", s(&cpub)]);
    assert_eq!(code, 1);
    assert!(finding_kinds(&r).contains(&"ledger_untrusted_signer".to_string()), "{r:#}");
    // With it: intact, and the bundle's signer is still the collector key.
    let (code, r) = verify_json(
        &env,
        &["--store", s(&store), &digest, "--trusted-key", s(&cpub), "--trusted-ledger-key", s(&lpub)],
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["signer"]["keyid"], key_id(&cpub));
    // A checkpoint signed by the ledger key anchors the ledger when the ledger key is pinned.
    let cp = env.path("cp");
    env.run(&["checkpoint", "--store", s(&store), "--ledger-key", s(&lkey), "--out", s(&cp)]).expect(0);
    let (code, r) = verify_json(
        &env,
        &[
            "--store",
            s(&store),
            "--all",
            "--checkpoint",
            s(&cp),
            "--trusted-key",
            s(&cpub),
            "--trusted-ledger-key",
            s(&lpub),
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    // The ledger key's signature checks with openssl alone, and its private key file is
    // PKCS#8 v1, which OpenSSL 3.0 reads.
    require_tool("openssl");
    let (code, _, err) = sh(Command::new("openssl").args(["pkey", "-in", s(&lkey), "-noout"]));
    assert_eq!(code, 0, "{err}");
    let entry: Value =
        serde_json::from_slice(&std::fs::read(store.join("ledger/00000000000000000001.json")).unwrap()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(entry["payload"].as_str().unwrap()).unwrap();
    let t = entry["payloadType"].as_str().unwrap();
    let mut pae = format!("DSSEv1 {} {t} {} ", t.len(), payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    assert_eq!(entry["signatures"][0]["keyid"], key_id(&lpub));
    std::fs::write(env.path("pae.bin"), &pae).unwrap();
    std::fs::write(env.path("sig.bin"), b64.decode(entry["signatures"][0]["sig"].as_str().unwrap()).unwrap()).unwrap();
    let (code, out, err) = sh(Command::new("openssl").args([
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&lpub),
        "-rawin",
        "-in",
        s(&env.path("pae.bin")),
        "-sigfile",
        s(&env.path("sig.bin")),
    ]));
    assert_eq!(code, 0, "{}{err}", String::from_utf8_lossy(&out));
    // The ledger key may not be the collector key itself.
    let fx = fixture_dir();
    let out = env.run(&["preserve", "--incident-dir", s(&fx), "--ledger-key", s(&env.key())]);
    out.expect(2);
    assert!(out.stderr.contains("is the collector's signing key itself"), "{}", out.stderr);
}

#[test]
fn a_mixed_ledger_verifies_with_both_keys_pinned_for_the_ledger() {
    let env = Env::new();
    let (lkey, lpub) = keygen(&env, "ledger.key");
    let store = env.store();
    preserve_into(&env, &store, &[]);
    preserve_into(&env, &store, &["--ledger-key", s(&lkey), "--note", "second"]);
    assert!(entry_payload(&store, 1).get("signed_by").is_none());
    assert_eq!(entry_payload(&store, 2)["signed_by"]["role"], "ledger");
    let (code, r) = verify_json(
        &env,
        &["--store", s(&store), "--all", "--trusted-key", s(&env.pubkey()), "--trusted-ledger-key", s(&lpub)],
    );
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn a_collector_key_cannot_sign_the_ledger_when_roles_are_pinned() {
    let env = Env::new();
    let store = env.store();
    let digest = preserve_into(&env, &store, &[]);
    let cp = env.path("cp");
    env.run(&["checkpoint", "--store", s(&store), "--out", s(&cp)]).expect(0);
    // The collector key pinned for bundles only: its entries and its checkpoint are refused,
    // its bundle passes.
    let file = env.path("keys.toml");
    std::fs::write(
        &file,
        format!(
            "format = \"custody-trusted-keys/v1\"\n[[key]]\npublic_key = \"{}\"\nroles = [\"collector\"]\n",
            s(&env.pubkey())
        ),
    )
    .unwrap();
    let (code, r) =
        verify_json(&env, &["--store", s(&store), &digest, "--checkpoint", s(&cp), "--trusted-keys", s(&file)]);
    assert_eq!(code, 1);
    let kinds = finding_kinds(&r);
    assert!(kinds.contains(&"ledger_signer_role_mismatch".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"checkpoint_invalid".to_string()), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k == "signer_role_mismatch" || k == "untrusted_signer"), "{kinds:?}");
}

#[test]
fn a_ledger_key_cannot_sign_bundles() {
    let (env, m) = made();
    let (code, r) = verify_json(&env, &[s(&m.bundle), "--trusted-ledger-key", s(&m.pubkey)]);
    assert_eq!(code, 1);
    let kinds = finding_kinds(&r);
    assert!(kinds.contains(&"signer_role_mismatch".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"untrusted_signer".to_string()), "{kinds:?}");
    let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "signer_role_mismatch").unwrap();
    assert!(f["message"].as_str().unwrap().contains("ledger key only"), "{f:#}");
}

/// 2026-06-01, the rotation 2026-07-01, and 2026-08-01 (SOURCE_DATE_EPOCH).
const BEFORE: i64 = 1_780_272_000;
const ROTATION: &str = "2026-07-01T00:00:00Z";
const AFTER: i64 = 1_785_542_400;

#[test]
fn after_rotation_old_bundles_verify_and_a_retired_key_is_a_finding() {
    let mut env = Env::with_epoch(BEFORE);
    let (old, old_pub) = keygen(&env, "old.key");
    let (new, new_pub) = keygen(&env, "new.key");
    let file = env.path("keys.toml");
    std::fs::write(
        &file,
        format!(
            "format = \"custody-trusted-keys/v1\"\n\n[[key]]\npublic_key = \"old.key.pub\"\nroles = [\"collector\", \"ledger\"]\nnot_after = \"{ROTATION}\"\n\n[[key]]\npublic_key = \"new.key.pub\"\nkeyid = \"sha256:{}\"\nroles = [\"collector\", \"ledger\"]\nnot_before = {ROTATION}\n",
            key_id(&new_pub)
        ),
    )
    .unwrap();
    // Sealed before the rotation with the old key, after it with the new: all verifies.
    let store = env.path("store");
    let first = preserve_into(&env, &store, &["--key", s(&old)]);
    env.epoch = Some(AFTER);
    preserve_into(&env, &store, &["--key", s(&new)]);
    let (code, r) = verify_json(&env, &["--store", s(&store), "--all", "--trusted-keys", s(&file)]);
    assert_eq!(code, 0, "{r:#}");
    let (code, r) = verify_json(&env, &["--store", s(&store), &first, "--trusted-keys", s(&file)]);
    assert_eq!(code, 0, "{r:#}");
    // The retired key sealing after its not_after: the bundle and its entry are findings.
    let other = env.path("other");
    let late = preserve_into(&env, &other, &["--key", s(&old)]);
    let (code, r) = verify_json(&env, &["--store", s(&other), &late, "--trusted-keys", s(&file)]);
    assert_eq!(code, 1);
    let kinds = finding_kinds(&r);
    assert!(kinds.contains(&"signer_outside_validity".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"ledger_signer_outside_validity".to_string()), "{kinds:?}");
    let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "signer_outside_validity").unwrap();
    assert!(f["message"].as_str().unwrap().contains(&format!("until {ROTATION}")), "{f:#}");
    // The same bundle with the key pinned without a period verifies: the period is the finding.
    let (code, _) = verify_json(&env, &["--store", s(&other), &late, "--trusted-key", s(&old_pub)]);
    assert_eq!(code, 0);
}

#[test]
fn a_hostile_pinned_keys_file_is_refused_with_its_file_and_line() {
    let (env, m) = made();
    let key = s(&m.pubkey).to_string();
    let head = "format = \"custody-trusted-keys/v1\"\n\n[[key]]\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("{head}public_key = \"{key}\"\nroles = [\"collector\"]\nextra = 1\n"), ":6", "unknown field"),
        (format!("{head}public_key = \"{key}\"\nroles = [\"admin\\u001b[31m\"]\n"), ":3", "unknown role"),
        (format!("{head}public_key = \"{key}\"\nroles = []\n"), ":3", "roles is empty"),
        (
            format!("{head}public_key = \"{key}\"\nroles = [\"ledger\"]\nnot_before = \"2027-01-01T00:00:00Z\"\nnot_after = \"2026-01-01T00:00:00Z\"\n"),
            ":3",
            "never be valid",
        ),
        (format!("{head}public_key = \"{key}\"\nroles = [\"ledger\"]\nnot_after = \"2026-01-01T00:00:00\"\n"), ":3", "with a zone"),
        (format!("{head}public_key = \"{key}\"\nkeyid = \"{}\"\nroles = [\"ledger\"]\n", "ab".repeat(32)), ":3", "is not the key's id"),
        (format!("{head}public_key = \"missing.pub\"\nroles = [\"ledger\"]\n"), ":3", "missing.pub"),
        ("format = \"custody-trusted-keys/v9\"\n".to_string(), ":1", "expected `custody-trusted-keys/v1`"),
        (format!("{head}public_key = \n"), ":", ""),
        ("x".repeat(1 << 21), "", "larger than"),
    ];
    for (i, (text, line, what)) in cases.iter().enumerate() {
        let file = env.path(&format!("keys-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = env.run(&["verify", s(&m.bundle), "--trusted-keys", s(&file)]);
        out.expect(2);
        assert!(out.stderr.contains(&format!("keys-{i}.toml{line}")), "case {i}: {}", out.stderr);
        assert!(out.stderr.contains(what), "case {i}: {}", out.stderr);
        assert!(!out.stderr.contains('\u{1b}'), "case {i}: a raw escape reached the terminal: {:?}", out.stderr);
    }
}
