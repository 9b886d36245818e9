//! Interop: a bundle can be checked without custody. GNU `tar --zstd` opens it, `zstd -t`
//! accepts it, `sha256sum` of every blob equals its name and the manifest, and the openssl
//! recipe of docs/format.md (`tests/interop/openssl-verify.sh`) verifies the DSSE signature;
//! keys made by `custody keygen` and by `openssl genpkey` work both ways.
//!
//! Needs `tar`, `zstd`, `openssl`, `jq`, `sha256sum` on PATH (`.ci/run` installs them).

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
