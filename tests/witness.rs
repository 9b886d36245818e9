//! Signed-note checkpoints and their witnesses (issue 19, item 2): two witness keys with their
//! own state files cosign a checkpoint and `verify --witness-key … --witnesses K` counts them;
//! a witness refuses a rollback, a fork and another store; a checkpoint of another store is
//! reported as such; a legacy JSON checkpoint still anchors; a tampered note fails; lines of
//! unknown keys are ignored; and openssl checks both signatures (the house rule).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A witness: its key (made by `custody keygen`) and its state file (not yet created).
struct W {
    key: PathBuf,
    pubkey: PathBuf,
    state: PathBuf,
}

fn witness(env: &Env, name: &str) -> W {
    let key = env.path(&format!("{name}.key"));
    env.run(&["keygen", "--out", s(&key)]).expect(0);
    W { pubkey: custody::keys::pub_path_for(&key), key, state: env.path(&format!("{name}.state.json")) }
}

/// `custody checkpoint` of `store`, written to `out`.
fn checkpoint(env: &Env, store: &Path, out: &str) -> PathBuf {
    let p = env.path(out);
    env.run(&["checkpoint", "--store", s(store), "--out", s(&p)]).expect(0);
    p
}

/// `witness cosign` of `cp` by `w` (with `extra` flags), written to `out` if it succeeds.
fn cosign(env: &Env, w: &W, cp: &Path, out: &str, extra: &[&str]) -> (Out, PathBuf) {
    let p = env.path(out);
    let trusted = env.pubkey();
    let mut args = vec![
        "witness",
        "cosign",
        s(cp),
        "--key",
        s(&w.key),
        "--state",
        s(&w.state),
        "--trusted-key",
        s(&trusted),
        "--out",
        s(&p),
    ];
    args.extend_from_slice(extra);
    (env.run(&args), p)
}

/// `verify --store S --all --json --checkpoint CP` and `extra`.
fn audit(env: &Env, store: &Path, cp: &Path, extra: &[&str]) -> Out {
    let trusted = env.pubkey();
    let mut args =
        vec!["verify", "--store", s(store), "--all", "--json", "--trusted-key", s(&trusted), "--checkpoint", s(cp)];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn anchor(r: &serde_json::Value) -> serde_json::Value {
    r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "anchor").cloned().unwrap()
}

/// A copy of a store directory (writable), to play a second store or an attacker's.
fn copy_store(from: &Path, to: &Path) {
    let (code, _, err) = sh(Command::new("cp").arg("-r").arg(from).arg(to));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sh(Command::new("chmod").args(["-R", "u+w"]).arg(to));
    assert_eq!(code, 0, "{err}");
}

fn preserve_into(env: &Env, store: &Path, note: &str) {
    let fx = fixture_dir();
    env.run(&["preserve", "--store", s(store), "--incident-dir", s(&fx), "--note", note, "--json"]).expect(0);
}

#[test]
fn two_witnesses_with_their_state_files_cosign_and_verify_counts_the_cosignatures() {
    let env = Env::new();
    env.preserve_fixture(&["--note", "one"]);
    let store = env.store();
    let (w1, w2, w3) = (witness(&env, "w1"), witness(&env, "w2"), witness(&env, "w3"));
    let cp = checkpoint(&env, &store, "cp1");
    let text = std::fs::read_to_string(&cp).unwrap();
    assert!(text.starts_with("custody/") && text.contains("\n1\n") && text.contains("\n\n\u{2014} custody/"), "{text}");

    // Each witness cosigns with its own state file, the second over the first's output.
    let (o, cp_w1) = cosign(&env, &w1, &cp, "cp1.w1", &["--new-state", "--store", s(&store)]);
    o.expect(0);
    assert!(o.stderr.contains("entry and chain checked in the store"), "{}", o.stderr);
    let (o, cp_both) = cosign(&env, &w2, &cp_w1, "cp1.w1w2", &["--new-state"]);
    o.expect(0);
    for w in [&w1, &w2] {
        let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&w.state).unwrap()).unwrap();
        assert_eq!(st["format"], "custody-witness-state/v1", "{st}");
        let origin = text.lines().next().unwrap();
        assert_eq!(st["origins"][origin]["position"], 1, "{st}");
    }
    let w1p = s(&w1.pubkey);
    let w2p = s(&w2.pubkey);
    let w3p = s(&w3.pubkey);

    // Both required (the default: every --witness-key given): intact.
    let o = audit(&env, &store, &cp_both, &["--witness-key", w1p, "--witness-key", w2p]);
    o.expect(0);
    let a = anchor(&o.json());
    assert_eq!(a["status"], "pass", "{a}");
    assert!(a["detail"].as_str().unwrap().contains("cosigned by 2 of 2 witness(es)"), "{a}");
    let o = audit(&env, &store, &cp_both, &["--witness-key", w1p, "--witness-key", w2p, "--witnesses", "2"]);
    o.expect(0);
    // One witness missing: fails, naming the missing key.
    let o = audit(&env, &store, &cp_w1, &["--witness-key", w1p, "--witness-key", w2p, "--witnesses", "2"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_eq!(o.finding_kinds(), ["cosignature_missing"], "{}", o.stdout);
    let w2_id = custody::keys::PublicKey::load(&w2.pubkey).unwrap().id.to_string();
    assert!(o.stdout.contains(&w2_id), "{}", o.stdout);
    // K of N: one of the two is enough with --witnesses 1; two of three with --witnesses 2.
    audit(&env, &store, &cp_w1, &["--witness-key", w1p, "--witness-key", w2p, "--witnesses", "1"]).expect(0);
    audit(
        &env,
        &store,
        &cp_both,
        &["--witness-key", w1p, "--witness-key", w2p, "--witness-key", w3p, "--witnesses", "2"],
    )
    .expect(0);
    let o = audit(&env, &store, &cp_both, &["--witness-key", w1p, "--witness-key", w2p, "--witness-key", w3p]);
    assert_eq!(o.finding_kinds(), ["cosignature_missing"], "{}", o.stdout);
    // Asking for more than the keys given is a usage error.
    let o = audit(&env, &store, &cp_both, &["--witness-key", w1p, "--witnesses", "2"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--witnesses 2 asks for more cosignatures than the 1 distinct"), "{}", o.stderr);
    // The same key twice is one witness, not two cosignatures.
    let o = audit(&env, &store, &cp_w1, &["--witness-key", w1p, "--witness-key", w1p, "--witnesses", "2"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    // The signer is no witness of itself: its key as a witness key is a usage error.
    let signer = env.pubkey();
    let o = audit(&env, &store, &cp_both, &["--witness-key", s(&signer)]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("is also a trusted store key"), "{}", o.stderr);
    // By digest too.
    let digest =
        env.run(&["list", "--store", s(&store), "--json"]).json()["entries"][0]["bundle"].as_str().unwrap().to_string();
    let trusted = env.pubkey();
    let o = env.run(&[
        "verify",
        "--store",
        s(&store),
        &digest,
        "--json",
        "--trusted-key",
        s(&trusted),
        "--checkpoint",
        s(&cp_w1),
        "--witness-key",
        w2p,
    ]);
    assert_eq!(o.finding_kinds(), ["cosignature_missing"], "{}", o.stdout);

    // The ledger grows: a witness cosigns the next checkpoint only with the store at hand to
    // check the chain between the two heads.
    preserve_into(&env, &store, "two");
    let cp2 = checkpoint(&env, &store, "cp2");
    let (o, _) = cosign(&env, &w1, &cp2, "cp2.w1.nostore", &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("moves from position 1 to 2: give the store (--store URL"), "{}", o.stderr);
    let (o, cp2_w1) = cosign(&env, &w1, &cp2, "cp2.w1", &["--store", s(&store)]);
    o.expect(0);
    assert!(o.stderr.contains("extending position 1"), "{}", o.stderr);
    let (o, cp2_both) = cosign(&env, &w2, &cp2_w1, "cp2.w1w2", &["--store", s(&store)]);
    o.expect(0);
    audit(&env, &store, &cp2_both, &["--witness-key", w1p, "--witness-key", w2p]).expect(0);
    // The same head again is fine (nothing moved); the same witness twice on one note is not.
    let (o, _) = cosign(&env, &w1, &cp2, "cp2.w1.again", &[]);
    o.expect(0);
    let (o, _) = cosign(&env, &w1, &cp2_w1, "cp2.w1.twice", &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("already carries a cosignature by this witness key"), "{}", o.stderr);
}

#[test]
fn a_witness_refuses_a_rollback_a_fork_and_another_store_and_says_why() {
    let env = Env::new();
    env.preserve_fixture(&["--note", "one"]);
    let store = env.store();
    // The attacker's copy of the store after position 1 (same store id, same key).
    let forked = env.path("forked-store");
    copy_store(&store, &forked);
    let cp1 = checkpoint(&env, &store, "cp1");
    preserve_into(&env, &store, "two");
    let cp2 = checkpoint(&env, &store, "cp2");
    let w = witness(&env, "w");
    cosign(&env, &w, &cp2, "cp2.w", &["--new-state", "--store", s(&store)]).0.expect(0);
    let state = std::fs::read(&w.state).unwrap();

    // Rollback: an older checkpoint after a newer one (with or without the store).
    for extra in [vec![], vec!["--store", s(&store)]] {
        let (o, out) = cosign(&env, &w, &cp1, "cp1.w", &extra);
        assert_eq!(o.code, 1, "{extra:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("refused: rollback") && o.stderr.contains("already cosigned position 2"),
            "{}",
            o.stderr
        );
        assert!(!out.exists(), "a refused checkpoint was written");
        assert_eq!(std::fs::read(&w.state).unwrap(), state, "a refusal changed the state");
    }

    // Fork: another entry at position 2, signed by the store's key (a rewritten history).
    preserve_into(&env, &forked, "another two");
    let fork2 = checkpoint(&env, &forked, "fork2");
    assert_eq!(
        std::fs::read_to_string(&fork2).unwrap().lines().next(),
        std::fs::read_to_string(&cp2).unwrap().lines().next()
    );
    let (o, _) = cosign(&env, &w, &fork2, "fork2.w", &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("refused: fork") && o.stderr.contains("at position 2"), "{}", o.stderr);
    // The fork grown past the cosigned head: its chain does not hold the cosigned entry.
    preserve_into(&env, &forked, "three");
    let fork3 = checkpoint(&env, &forked, "fork3");
    let (o, _) = cosign(&env, &w, &fork3, "fork3.w", &["--store", s(&forked)]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("refused: fork") && o.stderr.contains("cosigned entry"), "{}", o.stderr);
    assert_eq!(std::fs::read(&w.state).unwrap(), state, "a refusal changed the state");
    // An entry rewritten in place under a later head: the chain check names the break.
    let honest3 = {
        preserve_into(&env, &store, "three");
        checkpoint(&env, &store, "cp3")
    };
    let entry2 = store.join("ledger/00000000000000000002.json");
    let kept = std::fs::read(&entry2).unwrap();
    make_writable(&entry2);
    std::fs::write(&entry2, std::fs::read(forked.join("ledger/00000000000000000002.json")).unwrap()).unwrap();
    let (o, _) = cosign(&env, &w, &honest3, "cp3.w.rewritten", &["--store", s(&store)]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("refused: fork"), "{}", o.stderr);
    std::fs::write(&entry2, kept).unwrap();
    cosign(&env, &w, &honest3, "cp3.w", &["--store", s(&store)]).0.expect(0);

    // Another store: a checkpoint checked against a store it does not name.
    let other = env.path("other-store");
    preserve_into(&env, &other, "elsewhere");
    let (o, _) = cosign(&env, &w, &honest3, "cp3.other", &["--store", s(&other)]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("refused: the checkpoint is of store"), "{}", o.stderr);

    // Not signed by the pinned store key: refused.
    let stranger = witness(&env, "stranger");
    let mut args = vec!["witness", "cosign", s(&cp2), "--key", s(&w.key), "--state", s(&w.state)];
    args.extend(["--trusted-key", s(&stranger.pubkey)]);
    let o = env.run(&args);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("not signed by a pinned store key"), "{}", o.stderr);

    // State files: missing, or asked to be new while one exists, or hostile: clear errors, exit 2.
    let fresh = W { state: env.path("missing.state"), ..witness(&env, "w4") };
    let (o, _) = cosign(&env, &fresh, &cp2, "x1", &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("does not exist; give --new-state"), "{}", o.stderr);
    let (o, _) = cosign(&env, &w, &cp2, "x2", &["--new-state"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("exists already"), "{}", o.stderr);
    let hostile = [
        b"\x1b[31m{not json".to_vec(),
        br#"{"format":"custody-witness-state/v1","origins":{"custody/zz":{"position":1,"entry":"00","cosigned_at":"2026-01-01T00:00:00Z"}}}"#.to_vec(),
        br#"{"format":"other","origins":{}}"#.to_vec(),
        vec![b' '; 2 << 20],
    ];
    for bytes in hostile {
        let bad = W { state: env.path("hostile.state"), ..witness(&env, &format!("h{}", bytes.len())) };
        std::fs::write(&bad.state, &bytes).unwrap();
        let (o, _) = cosign(&env, &bad, &cp2, "x3", &[]);
        assert_eq!(o.code, 2, "{}", o.stderr);
        assert!(o.stderr.contains("witness state") && !o.stderr.contains('\x1b'), "{}", o.stderr);
    }
}

#[test]
fn a_checkpoint_of_another_store_is_reported_as_such_not_as_a_rollback() {
    let env = Env::new();
    env.preserve_fixture(&["--note", "a1"]);
    preserve_into(&env, &env.store(), "a2");
    let other = env.path("other-store");
    preserve_into(&env, &other, "b1");
    let cp_other = checkpoint(&env, &other, "cp-other");
    let o = audit(&env, &env.store(), &cp_other, &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_eq!(o.finding_kinds(), ["checkpoint_other_store"], "{}", o.stdout);
    assert!(o.stdout.contains("a checkpoint of another store"), "{}", o.stdout);
    // Its own checkpoint anchors it; a copy of the store (same store id) still verifies with it.
    let cp = checkpoint(&env, &env.store(), "cp");
    audit(&env, &env.store(), &cp, &[]).expect(0);
    let moved = env.path("moved-store");
    copy_store(&env.store(), &moved);
    audit(&env, &moved, &cp, &[]).expect(0);
}

/// A legacy JSON checkpoint (`custody-checkpoint/v1`), signed with `key` the way custody
/// before signed notes did.
fn legacy_checkpoint(key: &custody::keys::SecretKey, store: &str, position: u64, entry: Option<&str>) -> Vec<u8> {
    let doc = serde_json::json!({
        "format": "custody-checkpoint/v1", "store": store, "position": position,
        "entry": entry, "bundle": null, "created_at": "2026-01-01T00:00:00Z",
    });
    let env = custody::bundle::dsse::sign(
        "application/vnd.custody.checkpoint.v1+json",
        &serde_json::to_vec_pretty(&doc).unwrap(),
        key,
    );
    custody::bundle::dsse::to_bytes(&env)
}

#[test]
fn a_legacy_json_checkpoint_still_anchors_the_ledger() {
    // The compatibility fixture: written by custody before signed notes, of a copy of the store.
    let env = Env::new();
    let fx = repo().join("fixtures/compat/v2-store-pre-supplement");
    let store = env.path("store");
    copy_store(&fx.join("store"), &store);
    let legacy = fx.join("legacy-checkpoint.json");
    let verify = |cp: &Path, extra: &[&str]| {
        let mut args = vec!["verify", "--store", s(&store), "--all", "--json", "--checkpoint", s(cp)];
        let keys = [fx.join("signer.pub"), fx.join("legacy-checkpoint-signer.pub"), env.path("k.key.pub")];
        for k in &keys {
            args.extend(["--trusted-key", s(k)]);
        }
        args.extend_from_slice(extra);
        env.run(&args)
    };
    env.run(&["keygen", "--out", s(&env.path("k.key"))]).expect(0);
    let o = verify(&legacy, &[]);
    o.expect(0);
    let a = anchor(&o.json());
    assert_eq!(a["status"], "pass", "{a}");
    assert!(a["detail"].as_str().unwrap().contains("a legacy JSON checkpoint: it names its store by URL only"), "{a}");
    // It carries no cosignature.
    let w = witness(&env, "w");
    let o = verify(&legacy, &["--witness-key", s(&w.pubkey)]);
    assert_eq!(o.finding_kinds(), ["cosignature_missing"], "{}", o.stdout);
    // A witness does not cosign one (whatever store key it pins).
    env.run(&["keygen", "--out", s(&env.key())]).expect(0);
    let (o, _) = cosign(&env, &w, &legacy, "legacy.w", &["--new-state"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("a legacy JSON checkpoint cannot be cosigned"), "{}", o.stderr);
    // A legacy checkpoint this ledger does not extend: a rollback under this store's URL,
    // another store's under another URL.
    let key = custody::keys::SecretKey::load(&env.path("k.key")).unwrap();
    let url = custody::store::Store::open_existing_with(s(&store), &Default::default()).unwrap().url().to_string();
    for (at, kind) in [(url.as_str(), "rollback"), ("/somewhere/else", "checkpoint_other_store")] {
        let p = env.path("legacy-5.json");
        std::fs::write(&p, legacy_checkpoint(&key, at, 5, Some(&"ab".repeat(32)))).unwrap();
        let o = verify(&p, &[]);
        assert_eq!(o.finding_kinds(), [kind], "{at}: {}", o.stdout);
    }
}

/// The note's text (through its last line before the blank line) and its signature lines.
fn split_note(note: &str) -> (&str, Vec<&str>) {
    let i = note.rfind("\n\n").unwrap();
    (&note[..i + 1], note[i + 2..].lines().collect())
}

/// The bytes a signature line carries.
fn line_bytes(line: &str) -> (String, Vec<u8>) {
    let rest = line.strip_prefix("\u{2014} ").unwrap();
    let (name, b64) = rest.split_once(' ').unwrap();
    (name.to_string(), base64::engine::general_purpose::STANDARD.decode(b64).unwrap())
}

#[test]
fn a_tampered_note_fails_and_lines_of_unknown_keys_are_ignored() {
    let env = Env::new();
    env.preserve_fixture(&["--note", "one"]);
    let store = env.store();
    let (w1, w2) = (witness(&env, "w1"), witness(&env, "w2"));
    let cp = checkpoint(&env, &store, "cp");
    let (o, cp_w1) = cosign(&env, &w1, &cp, "cp.w1", &["--new-state"]);
    o.expect(0);
    // w2 cosigns too, but the verifier is not told of w2: its line is ignored; so is junk from
    // a key nobody knows.
    let (o, cp_w1w2) = cosign(&env, &w2, &cp_w1, "cp.w1w2", &["--new-state"]);
    o.expect(0);
    let mut note = std::fs::read_to_string(&cp_w1w2).unwrap();
    let junk = base64::engine::general_purpose::STANDARD.encode([0u8; 76]);
    note.push_str(&format!("\u{2014} example.com/unknown {junk}\n"));
    let with_unknown = env.path("cp.unknown");
    std::fs::write(&with_unknown, &note).unwrap();
    let w1p = s(&w1.pubkey);
    let o = audit(&env, &store, &with_unknown, &["--witness-key", w1p]);
    o.expect(0);
    assert!(anchor(&o.json())["detail"].as_str().unwrap().contains("cosigned by 1 of 1"), "{}", o.stdout);

    // The note text altered (its time): the store's signature and the cosignature both fail.
    let time_line = note.lines().find(|l| l.starts_with("time ")).unwrap().to_string();
    let altered = note.replacen(&time_line, "time 2001-01-01T00:00:00Z", 1);
    let p = env.path("cp.altered");
    std::fs::write(&p, &altered).unwrap();
    let o = audit(&env, &store, &p, &["--witness-key", w1p]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let kinds = o.finding_kinds();
    for k in ["checkpoint_invalid", "cosignature_invalid", "cosignature_missing"] {
        assert!(kinds.contains(&k.to_string()), "{k}: {}", o.stdout);
    }
    // A line under w1's key ID whose signature was changed: invalid, not ignored.
    let (_, lines) = split_note(&note);
    let w1_line = lines[1];
    let (name, mut bytes) = line_bytes(w1_line);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let forged = format!("\u{2014} {name} {}", base64::engine::general_purpose::STANDARD.encode(&bytes));
    let p = env.path("cp.forged-cosig");
    std::fs::write(&p, note.replacen(w1_line, &forged, 1)).unwrap();
    let o = audit(&env, &store, &p, &["--witness-key", w1p]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(o.finding_kinds().contains(&"cosignature_invalid".to_string()), "{}", o.stdout);
    // Hostile notes: refused as invalid, never a panic.
    for junk in [
        b"custody/00\n1\n".to_vec(),
        note.replacen("\u{2014}", "-", 1).into_bytes(),
        note.replacen("\n1\n", "\n01\n", 1).into_bytes(),
        format!("{note}\u{2014} x\n").into_bytes(),
        [note.as_bytes(), b"\x1b[2J"].concat(),
        vec![b'x'; 70_000],
    ] {
        std::fs::write(&p, &junk).unwrap();
        let o = audit(&env, &store, &p, &[]);
        assert_eq!(o.code, 1, "{}", o.stdout);
        assert_eq!(o.finding_kinds(), ["checkpoint_invalid"], "{}", o.stdout);
    }
}

#[test]
fn openssl_verifies_the_checkpoint_signature_and_the_cosignature() {
    require_tool("openssl");
    let env = Env::new();
    env.preserve_fixture(&["--note", "one"]);
    let w = witness(&env, "w");
    let cp = checkpoint(&env, &env.store(), "cp");
    let (o, cosigned) = cosign(&env, &w, &cp, "cp.w", &["--new-state"]);
    o.expect(0);
    let note = std::fs::read_to_string(&cosigned).unwrap();
    let (text, lines) = split_note(&note);
    assert_eq!(lines.len(), 2, "{note}");
    // The raw Ed25519 public key, as openssl reads it: the last 32 bytes of the SPKI DER.
    let raw = |pubkey: &Path| {
        let (code, der, err) =
            sh(Command::new("openssl").args(["pkey", "-pubin", "-outform", "DER", "-in"]).arg(pubkey));
        assert_eq!(code, 0, "{err}");
        der[der.len() - 32..].to_vec()
    };
    let key_id = |name: &str, typ: u8, raw: &[u8]| {
        let mut m = name.as_bytes().to_vec();
        m.push(b'\n');
        m.push(typ);
        m.extend_from_slice(raw);
        hex::decode(sha256_hex(&m)).unwrap()[..4].to_vec()
    };
    let openssl_verify = |pubkey: &Path, msg: &[u8], sig: &[u8]| {
        let (m, g) = (env.path("msg.bin"), env.path("sig.bin"));
        std::fs::write(&m, msg).unwrap();
        std::fs::write(&g, sig).unwrap();
        let (code, _, err) = sh(Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
            .arg(pubkey)
            .arg("-in")
            .arg(&m)
            .arg("-sigfile")
            .arg(&g));
        (code, err)
    };
    // The store's line: key ID = SHA-256(origin || \n || 0x01 || key)[:4], then the signature
    // over the note text.
    let (name, bytes) = line_bytes(lines[0]);
    assert_eq!(name, text.lines().next().unwrap(), "the store signs under the origin's name");
    assert_eq!(bytes[..4], key_id(&name, 0x01, &raw(&env.pubkey()))[..]);
    let (code, err) = openssl_verify(&env.pubkey(), text.as_bytes(), &bytes[4..]);
    assert_eq!(code, 0, "openssl refused the checkpoint signature: {err}");
    let altered = text.replacen("\n1\n", "\n2\n", 1);
    assert_ne!(openssl_verify(&env.pubkey(), altered.as_bytes(), &bytes[4..]).0, 0, "openssl accepted an altered note");
    // The witness's line: key ID with type 0x04, then an 8-byte big-endian time and the
    // signature over `cosignature/v1\ntime <t>\n` and the note text (c2sp.org/tlog-cosignature).
    let (name, bytes) = line_bytes(lines[1]);
    assert_eq!(bytes.len(), 4 + 8 + 64);
    assert_eq!(bytes[..4], key_id(&name, 0x04, &raw(&w.pubkey))[..]);
    let t = u64::from_be_bytes(bytes[4..12].try_into().unwrap());
    let msg = format!("cosignature/v1\ntime {t}\n{text}");
    let (code, err) = openssl_verify(&w.pubkey, msg.as_bytes(), &bytes[12..]);
    assert_eq!(code, 0, "openssl refused the cosignature: {err}");
    let wrong_time = format!("cosignature/v1\ntime {}\n{text}", t + 1);
    assert_ne!(openssl_verify(&w.pubkey, wrong_time.as_bytes(), &bytes[12..]).0, 0);
}
