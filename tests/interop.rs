//! Interop: a bundle can be checked without custody. GNU `tar --zstd` opens it, `zstd -t`
//! accepts it, `sha256sum` of every blob equals its name and the manifest, and the openssl
//! recipe of docs/format.md (`tests/interop/openssl-verify.sh`) verifies the DSSE signature;
//! keys made by `custody keygen` and by `openssl genpkey` work both ways; and the python3 recipe
//! (`tests/interop/verify-bundle.py`) checks the rest — archive, journal chain, Merkle root — on
//! fresh, compat, re-signed inconsistent and corrupt bundles.
//!
//! Needs `tar`, `zstd`, `openssl`, `jq`, `sha256sum`, `python3` on PATH (`.ci/run` installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn tools() {
    for t in ["tar", "zstd", "openssl", "jq", "sha256sum", "base64"] {
        require_tool(t);
    }
}

fn script() -> PathBuf {
    repo().join("tests/interop/openssl-verify.sh")
}

/// Run the openssl recipe; returns (exit code, stdout + stderr).
fn openssl_recipe(bundle: &Path, pubkey: &Path) -> (i32, String) {
    let (code, out, err) = sh(Command::new("bash").arg(script()).arg(bundle).arg(pubkey));
    (code, format!("{}{err}", String::from_utf8_lossy(&out)))
}

/// `sha256sum FILE` → hex.
fn sha256sum(p: &Path) -> String {
    let (code, out, err) = sh(Command::new("sha256sum").arg(p));
    assert_eq!(code, 0, "sha256sum {}: {err}", p.display());
    String::from_utf8(out).unwrap().split_whitespace().next().unwrap().to_string()
}

/// sha256 of a public key's SPKI DER, computed by openssl + sha256sum.
fn openssl_keyid(pubkey: &Path) -> String {
    let cmd = format!("openssl pkey -pubin -in '{}' -outform DER | sha256sum", pubkey.display());
    let (code, out, err) = sh(Command::new("bash").args(["-o", "pipefail", "-c", &cmd]));
    assert_eq!(code, 0, "{cmd}: {err}");
    String::from_utf8(out).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn gnu_tar_and_zstd_open_a_bundle_and_sha256sum_matches_every_blob() {
    tools();
    let (env, m) = made();
    let (code, _, err) = sh(Command::new("zstd").arg("-t").arg(&m.bundle));
    assert_eq!(code, 0, "zstd -t rejects the bundle: {err}");
    let dir = env.path("untarred");
    fs::create_dir_all(&dir).unwrap();
    let (code, _, err) = sh(Command::new("tar").arg("--zstd").arg("-xf").arg(&m.bundle).arg("-C").arg(&dir));
    assert_eq!(code, 0, "GNU tar cannot open the bundle: {err}");
    let (code, listing, _) = sh(Command::new("tar").arg("--zstd").arg("-tvf").arg(&m.bundle));
    assert_eq!(code, 0);
    let listing = String::from_utf8(listing).unwrap();
    assert!(listing.lines().all(|l| l.starts_with("-r--r--r--")), "regular read-only members only:\n{listing}");

    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let blobs: Vec<PathBuf> = fs::read_dir(dir.join("blobs/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
    let entries = manifest["entries"].as_array().unwrap();
    assert!(!blobs.is_empty());
    for b in &blobs {
        let name = b.file_name().unwrap().to_str().unwrap();
        assert_eq!(sha256sum(b), name, "sha256sum of the blob equals its name");
        assert!(entries.iter().any(|e| e["sha256"] == name), "blob {name} is named by the manifest");
    }
    // Every manifest entry: its blob is there, has its size, and holds the fixture's bytes.
    for e in entries {
        let hex = e["sha256"].as_str().unwrap();
        let blob = dir.join("blobs/sha256").join(hex);
        assert_eq!(sha256sum(&blob), hex);
        assert_eq!(fs::metadata(&blob).unwrap().len(), e["size"].as_u64().unwrap());
        let original = fixture_dir().join(e["path"].as_str().unwrap());
        assert!(fs::read(&blob).unwrap() == fs::read(&original).unwrap(), "{} differs", original.display());
    }
    let mut top: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    top.sort();
    assert_eq!(top, ["analysis.json", "blobs", "manifest.dsse.json", "manifest.json"]);
}

#[test]
fn openssl_recipe_verifies_the_signature_and_rejects_a_flipped_manifest() {
    tools();
    let (env, m) = made();
    let (code, out) = openssl_recipe(&m.bundle, &m.pubkey);
    assert_eq!(code, 0, "openssl recipe failed on an intact bundle:\n{out}");
    assert!(out.contains("Signature Verified Successfully"), "{out}");

    // One byte of manifest.json flipped (tar and zstd kept well-formed): openssl fails.
    let mut members = bundle_members(&m.bundle);
    let j = member_index(&members, "manifest.json");
    let at = String::from_utf8_lossy(&members[j].data).find("\"host\":\"").unwrap() + 8;
    members[j].data[at] ^= 0x01;
    let bad = env.path("flipped.tar.zst");
    write_bundle(&bad, &members);
    let (code, out) = openssl_recipe(&bad, &m.pubkey);
    assert_ne!(code, 0, "openssl accepted a flipped manifest:\n{out}");
    assert!(!out.contains("Signature Verified Successfully"), "{out}");

    // One byte of analysis.json flipped: the recipe's digest check fails.
    let mut members = bundle_members(&m.bundle);
    let a = member_index(&members, "analysis.json");
    members[a].data[10] ^= 0x01;
    let bad = env.path("analysis-flipped.tar.zst");
    write_bundle(&bad, &members);
    let (code, out) = openssl_recipe(&bad, &m.pubkey);
    assert_ne!(code, 0, "the recipe accepted a flipped analysis.json:\n{out}");
    assert!(out.contains("BAD analysis.json"), "{out}");

    // Another key's public key: openssl fails too.
    let other = env.path("other.key");
    env.run(&["keygen".as_ref(), "--out".as_ref(), other.as_os_str()]).expect(0);
    let (code, out) = openssl_recipe(&m.bundle, &custody::keys::pub_path_for(&other));
    assert_ne!(code, 0, "openssl accepted the wrong key:\n{out}");
}

#[test]
fn openssl_reads_a_custody_keygen_key_and_agrees_on_the_key_id() {
    tools();
    let env = Env::new();
    let k = env.path("k.pem");
    let out = env.run(&["keygen".as_ref(), "--out".as_ref(), k.as_os_str(), "--json".as_ref()]);
    out.expect(0);
    let keyid = out.json()["keyid"].as_str().unwrap().to_string();
    let (code, _, err) = sh(Command::new("openssl").args(["pkey", "-noout", "-in"]).arg(&k));
    assert_eq!(code, 0, "openssl pkey cannot read a custody key: {err}");
    // openssl derives the same public key custody wrote.
    let (code, pem, err) = sh(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&k));
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8(pem).unwrap(), fs::read_to_string(k.with_extension("pem.pub")).unwrap());
    assert_eq!(openssl_keyid(&k.with_extension("pem.pub")), keyid);
}

#[test]
fn an_openssl_genpkey_key_signs_bundles_custody_and_openssl_verify() {
    tools();
    let env = Env::new();
    let k = env.path("ossl.key");
    let p = env.path("ossl.key.pub");
    let (code, _, err) = sh(Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&k));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sh(Command::new("chmod").arg("600").arg(&k));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sh(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&k).arg("-out").arg(&p));
    assert_eq!(code, 0, "{err}");
    let m = env.preserve_fixture(&["--key", k.to_str().unwrap()]);
    let keyid = m.preserve["signer"]["keyid"].as_str().unwrap();
    assert_eq!(keyid, openssl_keyid(&p), "custody's key id = sha256 of the SPKI DER");
    assert!(!env.key().exists(), "no default key is created when --key is given");
    env.run(&["verify".as_ref(), m.bundle.as_os_str(), "--trusted-key".as_ref(), p.as_os_str()]).expect(0);
    let (code, out) = openssl_recipe(&m.bundle, &p);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Signature Verified Successfully"));
}

// ---------------------------------------------------------------- the python3 recipe

/// Run `tests/interop/verify-bundle.py BUNDLE PUBKEY`; returns (exit code, stdout + stderr).
fn python_recipe(bundle: &Path, pubkey: &Path) -> (i32, String) {
    let script = repo().join("tests/interop/verify-bundle.py");
    let (code, out, err) = sh(Command::new("python3").arg(script).arg(bundle).arg(pubkey));
    (code, format!("{}{err}", String::from_utf8_lossy(&out)))
}

/// The script passed every check, the journal and the Merkle root included.
#[track_caller]
fn assert_python_passes(bundle: &Path, pubkey: &Path) {
    let (code, out) = python_recipe(bundle, pubkey);
    assert_eq!(code, 0, "the python recipe rejects {}:\n{out}", bundle.display());
    for check in ["frame", "archive", "statement", "signer", "signer_trusted", "entries", "journal", "merkle"] {
        assert!(out.contains(&format!("ok   {check}: ")), "no `{check}` line for {}:\n{out}", bundle.display());
    }
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn python_recipe_passes_a_fresh_bundle_and_the_compat_bundles() {
    tools();
    require_tool("python3");
    let (_env, m) = made();
    assert_python_passes(&m.bundle, &m.pubkey);
    // Format v1 (pretty manifest as the payload), v2 with a v1 analysis, v2 with custody's
    // notes among the responder's (before v3), and the bundles of
    // the compat stores: every format custody still reads.
    let compat = repo().join("fixtures/compat");
    let mut cases = vec![
        (compat.join("v1-duplicate-ticket-intact.tar.zst"), compat.join("v1-signer.pub")),
        (compat.join("v2-analysis-v1-duplicate-ticket-intact.tar.zst"), compat.join("v2-analysis-v1-signer.pub")),
        (compat.join("v2-duplicate-ticket-tool-notes.tar.zst"), compat.join("v2-signer.pub")),
    ];
    for store in ["v1-ledger", "v2-store-pre-supplement"] {
        for b in fs::read_dir(compat.join(store).join("store/bundles")).unwrap() {
            cases.push((b.unwrap().path(), compat.join(store).join("signer.pub")));
        }
    }
    assert_eq!(cases.len(), 6, "{cases:?}");
    for (bundle, key) in &cases {
        assert_python_passes(bundle, key);
    }
    // Another key than the signer's: refused by name.
    let (code, out) = python_recipe(&m.bundle, &cases[0].1);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL untrusted_signer: "), "{out}");
}

/// A copy of `bundle` whose manifest `edit` changed, signed again with the bundle's own key so
/// that the signature (and the openssl recipe) still passes. With `rechain`, the journal chain
/// is re-hashed and the Merkle root recomputed after the edit (see `util::reseal`); without,
/// they are left as `edit` leaves them.
fn resigned(
    env: &Env,
    m: &Made,
    name: &str,
    rechain: bool,
    edit: impl FnOnce(&mut custody::bundle::manifest::Manifest),
) -> PathBuf {
    let key = custody::keys::SecretKey::load(&env.key()).unwrap();
    let members = bundle_members(&m.bundle);
    let members = if rechain {
        reseal(&members, &key, edit)
    } else {
        let j = member_index(&members, "manifest.json");
        let mut man: custody::bundle::manifest::Manifest = serde_json::from_slice(&members[j].data).unwrap();
        edit(&mut man);
        let (mm, me) = signed_manifest_members(&members[j], &manifest_bytes(&man), &key);
        let mut out = members.clone();
        out[j] = mm;
        out[member_index(&members, "manifest.dsse.json")] = me;
        out
    };
    let path = env.path(name);
    write_bundle(&path, &members);
    path
}

/// Bundles that are internally inconsistent but signed by the trusted key: the openssl recipe
/// (which checks what the signature binds) accepts each, and custody's verify and the python
/// recipe both reject each, by the same finding kind, for the journal or the Merkle root.
#[test]
fn python_recipe_rejects_re_signed_bundles_with_a_broken_journal_or_merkle_root() {
    use custody::bundle::journal::event_hash;
    use custody::bundle::manifest::EventKind;
    use custody::digest::Sha256;
    tools();
    require_tool("python3");
    let (env, m) = made();
    let collected = |man: &custody::bundle::manifest::Manifest| {
        man.journal.iter().position(|e| e.event == EventKind::Collected).expect("a collected event")
    };
    let cases: Vec<(&str, PathBuf, &str, &str)> = vec![
        (
            // An event rewritten with its own hash recomputed: the next event's prev breaks.
            "edited event, its hash recomputed",
            resigned(&env, &m, "relinked.tar.zst", false, |man| {
                man.journal[0].detail = Some("rewritten history".into());
                man.journal[0].hash = event_hash(&man.journal[0]);
            }),
            "journal_broken",
            "event 1: prev does not equal the previous event's hash",
        ),
        (
            "edited event, its hash kept",
            resigned(&env, &m, "rehashed.tar.zst", false, |man| {
                let last = man.journal.len() - 1;
                man.journal[last].at += chrono::Duration::seconds(1);
            }),
            "journal_broken",
            "hash does not match the event's content",
        ),
        (
            "a seq skipped, the chain re-hashed",
            resigned(&env, &m, "seq.tar.zst", true, |man| {
                for e in man.journal.iter_mut().skip(1) {
                    e.seq += 1;
                }
            }),
            "journal_broken",
            "event 1: seq is 2",
        ),
        (
            "a collected event's size changed, the chain re-hashed",
            resigned(&env, &m, "size.tar.zst", true, |man| {
                let i = collected(man);
                man.journal[i].size = man.journal[i].size.map(|s| s + 1);
            }),
            "journal_mismatch",
            "no matching `collected` event in the journal",
        ),
        (
            "a second collected event for one entry, the chain re-hashed",
            resigned(&env, &m, "twice.tar.zst", true, |man| {
                let mut dup = man.journal[collected(man)].clone();
                dup.seq = man.journal.len() as u64;
                man.journal.push(dup);
            }),
            "journal_mismatch",
            "2 `collected` events; exactly one is allowed",
        ),
        (
            "the Merkle root replaced",
            resigned(&env, &m, "root.tar.zst", false, |man| man.merkle_root = Sha256::of(b"another tree")),
            "merkle_mismatch",
            "differs from the manifest's",
        ),
        (
            // An entry reclassified (its blob, digest and journal event untouched): only the
            // Merkle leaf, which covers the kind, shows it.
            "an entry's kind changed, the root kept",
            resigned(&env, &m, "kind.tar.zst", false, |man| man.entries[0].kind = "other".into()),
            "merkle_mismatch",
            "differs from the manifest's",
        ),
    ];
    for (what, bundle, kind, message) in &cases {
        let (code, out) = openssl_recipe(bundle, &m.pubkey);
        assert_eq!(code, 0, "{what}: the signature should still verify:\n{out}");
        let report = env.verify_file(bundle, &m.pubkey);
        report.expect(1);
        assert!(report.finding_kinds().iter().any(|k| k == kind), "{what}: custody verify: {}", report.stdout);
        let (code, out) = python_recipe(bundle, &m.pubkey);
        assert_eq!(code, 1, "{what}: the python recipe accepted it:\n{out}");
        assert!(
            out.contains(&format!("FAIL {kind}: ")) && out.contains(message),
            "{what}: wanted {kind} ({message}):\n{out}"
        );
        assert!(out.contains("ok   signer_trusted: "), "{what}: {out}");
        let check = kind.split('_').next().unwrap();
        assert!(!out.contains(&format!("ok   {check}: ")), "{what}: a failed check is not also reported ok:\n{out}");
    }
}

/// Every committed corrupt bundle (`fixtures/corrupt/`, see tests/hostile.rs) is rejected by
/// the python recipe with the finding kind custody reports, except the resource limits that
/// docs/format.md §7 lists as custody-only.
#[test]
fn python_recipe_rejects_every_corrupt_fixture_by_custodys_finding_kind() {
    require_tool("zstd");
    require_tool("python3");
    let dir = repo().join("fixtures/corrupt");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if !path.to_string_lossy().ends_with(".tar.zst") {
            continue;
        }
        n += 1;
        let sidecar = path.to_string_lossy().replace(".tar.zst", ".expect");
        let expect = fs::read_to_string(&sidecar).unwrap();
        let kind = expect.trim().strip_prefix("expect: ").unwrap();
        let (code, out) = python_recipe(&path, &repo().join("fixtures/compat/v1-signer.pub"));
        assert_eq!(code, 1, "{}: {out}", path.display());
        assert!(!out.contains("Traceback"), "{}: {out}", path.display());
        if kind != "member_too_large" {
            assert!(out.contains(&format!("FAIL {kind}: ")), "{}: wanted {kind}:\n{out}", path.display());
        }
    }
    assert!(n >= 40, "{n} corrupt fixtures");
}
