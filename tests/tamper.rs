//! Tamper detection on REAL bundles made by `custody preserve`: byte flips in every part
//! (zstd stream, blob contents, tar headers, manifest, envelope), truncation, members removed,
//! added, renamed and reordered, manifests swapped between bundles, re-signing by another
//! key, untrusted signers, and a tampered store ledger. Each case must exit 1 and name the
//! expected finding kind in `verify --json`; the untouched bundle (and an untouched rebuild
//! through the surgery helpers) passes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

/// Verify `bytes` (written to a fresh file) against the bundle's signer.
fn verify_bytes(env: &Env, name: &str, bytes: &[u8], pubkey: &Path) -> Out {
    let p = env.path(name);
    fs::write(&p, bytes).unwrap();
    env.verify_file(&p, pubkey)
}

/// Assert `out` is a failed verification naming `kind` among its error findings.
#[track_caller]
fn assert_caught(out: &Out, kind: &str, what: &str) {
    assert_eq!(out.code, 1, "{what}: verify should exit 1\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let r = out.json();
    assert_eq!(r["verdict"], "failed", "{what}");
    let kinds = finding_kinds(&r);
    assert!(kinds.iter().any(|k| k == kind), "{what}: expected a `{kind}` finding, got {kinds:?}\n{}", out.stdout);
}

/// Rebuild the bundle from `members` and check the verdict.
#[track_caller]
fn assert_members_caught(env: &Env, m: &Made, name: &str, members: &[Member], kind: &str) {
    let out = verify_bytes(env, name, &compress(&tar_build(members)), &m.pubkey);
    assert_caught(&out, kind, name);
}

fn blob_names(members: &[Member]) -> Vec<String> {
    members.iter().map(|m| m.name()).filter(|n| n.starts_with("blobs/sha256/")).collect()
}

#[test]
fn untouched_bundle_and_untouched_rebuild_pass() {
    let (env, m) = made();
    let out = env.verify_file(&m.bundle, &m.pubkey);
    out.expect(0);
    assert_eq!(out.json()["verdict"], "intact");
    assert!(finding_kinds(&out.json()).is_empty());
    // Control for every member-level case below: decompress, split, rebuild, recompress with
    // no change still verifies, so a failure there is due to the tamper and nothing else.
    let members = bundle_members(&m.bundle);
    assert_eq!(tar_build(&members), decompress(&fs::read(&m.bundle).unwrap()), "the helpers round-trip the tar");
    let out = verify_bytes(&env, "rebuilt.tar.zst", &compress(&tar_build(&members)), &m.pubkey);
    out.expect(0);
}

/// Flip one bit at many offsets of the compressed file. A flip that changes the decompressed
/// bytes (or breaks the zstd stream) must fail verification. A few bits of a zstd frame
/// (the window descriptor, some entropy-table bits) change no decompressed byte: the evidence,
/// manifest and signature are untouched, so file verification cannot object, but the bundle
/// digest changes and a store catches the swap (`bundle_digest_mismatch`).
#[test]
fn bit_flips_in_the_compressed_stream_are_detected() {
    let (env, m) = made();
    let orig = fs::read(&m.bundle).unwrap();
    let raw = decompress(&orig);
    let n = orig.len();
    let mut offsets: Vec<usize> = (0..24).collect();
    offsets.extend((24..n - 24).step_by((n / 90).max(1)));
    offsets.extend(n - 24..n);
    let mut caught = 0;
    let mut noop = Vec::new();
    for &off in &offsets {
        let mut b = orig.clone();
        b[off] ^= 0x10;
        let out = verify_bytes(&env, &format!("flip-{off}.tar.zst"), &b, &m.pubkey);
        let same_content = zstd::stream::decode_all(&b[..]).map(|d| d == raw).unwrap_or(false);
        if same_content {
            // Not a change of any sealed byte: the only witness is the bundle digest.
            assert_ne!(out.json()["subject"]["bundle"], m.digest.as_str(), "offset {off}: the digest must change");
            noop.push(off);
        } else {
            assert_eq!(out.code, 1, "flip at compressed offset {off} not detected:\n{}", out.stdout);
            assert!(!finding_kinds(&out.json()).is_empty(), "offset {off}: no error finding");
            caught += 1;
        }
    }
    assert!(caught > offsets.len() * 9 / 10, "caught {caught} of {} (no-op flips at {noop:?})", offsets.len());

    // The store catches a no-op flip. Bit 4 of the zstd frame header descriptor (byte 4) is
    // "unused" by the zstd format: flipping it changes no decompressed byte.
    assert!(noop.contains(&4), "the unused frame-header bit is a no-op flip: {noop:?}");
    let mut b = orig.clone();
    b[4] ^= 0x10;
    make_writable(&m.bundle);
    fs::write(&m.bundle, &b).unwrap();
    let out = env.run(&["verify", "--store", m.store.to_str().unwrap(), &m.digest, "--json"]);
    assert_caught(&out, "bundle_digest_mismatch", "no-op zstd flip in the store");
}

#[test]
fn byte_flip_in_every_blob_content_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let blobs = blob_names(&members);
    assert!(blobs.len() >= 15);
    for (i, name) in blobs.iter().enumerate() {
        let mut t = members.clone();
        let j = member_index(&t, name);
        let mid = t[j].data.len() / 2;
        t[j].data[mid] ^= 0x01;
        let out = verify_bytes(&env, &format!("blob-{i}.tar.zst"), &compress(&tar_build(&t)), &m.pubkey);
        assert_caught(&out, "blob_hash_mismatch", &format!("flip in {name}"));
        let r = out.json();
        let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "blob_hash_mismatch").unwrap().clone();
        assert!(
            f["location"].as_str().unwrap().contains(&name["blobs/sha256/".len()..]),
            "location names the blob: {f}"
        );
    }
}

#[test]
fn byte_flip_in_a_tar_header_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    // Without fixing the header checksum: the header is corrupt.
    for (field, at) in [("name", 20usize), ("size", 130), ("mtime", 140), ("uname", 266), ("magic", 258)] {
        let mut raw = tar_build(&members);
        let h = members[3].offset;
        raw[h + at] ^= 0x01;
        let out = verify_bytes(&env, &format!("hdr-{field}.tar.zst"), &compress(&raw), &m.pubkey);
        assert_eq!(out.code, 1, "flip in header field {field}: {}", out.stdout);
        assert_caught(&out, "archive_corrupt", &format!("header field {field}"));
    }
    // The manifest's header, with a well-formed checksum but a size that no longer matches.
    let mut t = members.clone();
    let j = member_index(&t, "manifest.json");
    t[j].header[124..136].copy_from_slice(b"00000000001\0");
    t[j].fix_checksum();
    // (tar_build writes headers as they are: the declared size now disagrees with the data.)
    let raw = tar_build(&t);
    let out = verify_bytes(&env, "hdr-size.tar.zst", &compress(&raw), &m.pubkey);
    assert_eq!(out.code, 1, "{}", out.stdout);
}

#[test]
fn byte_flip_in_manifest_json_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let j = member_index(&members, "manifest.json");
    let text = String::from_utf8(members[j].data.clone()).unwrap();
    // A flip that keeps the JSON valid (inside the host name) and one that breaks it.
    let host_at = text.find("\"host\":\"").unwrap() + 8;
    for (what, at, kind) in
        [("string", host_at, "payload_mismatch"), ("syntax", text.find('{').unwrap(), "payload_mismatch")]
    {
        let mut t = members.clone();
        t[j].data[at] ^= 0x01;
        assert_members_caught(&env, &m, &format!("manifest-{what}.tar.zst"), &t, kind);
    }
    // Every 997th byte of the manifest, one at a time.
    for at in (0..members[j].data.len()).step_by(997) {
        let mut t = members.clone();
        t[j].data[at] ^= 0x02;
        let out = verify_bytes(&env, &format!("manifest-{at}.tar.zst"), &compress(&tar_build(&t)), &m.pubkey);
        assert_eq!(out.code, 1, "manifest flip at {at} not detected: {}", out.stdout);
    }
}

#[test]
fn byte_flip_in_the_envelope_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let j = member_index(&members, "manifest.dsse.json");
    let text = String::from_utf8(members[j].data.clone()).unwrap();
    let find_value = |key: &str| text.find(&format!("\"{key}\": \"")).unwrap() + key.len() + 5;
    let sig_at = find_value("sig") + 10;
    let payload_at = find_value("payload") + 100;
    let keyid_at = find_value("keyid") + 3;
    let flip_b64 = |c: u8| if c == b'A' { b'B' } else { b'A' };
    for (what, at, kind) in [
        ("sig", sig_at, "bad_signature"),
        // The payload is the signed statement (v2): a flip inside its manifest digest leaves
        // no valid statement.
        ("payload", payload_at, "envelope_invalid"),
        ("keyid", keyid_at, "signer_mismatch"),
    ] {
        let mut t = members.clone();
        let c = t[j].data[at];
        t[j].data[at] = if what == "keyid" {
            if c == b'0' {
                b'1'
            } else {
                b'0'
            }
        } else {
            flip_b64(c)
        };
        assert_members_caught(&env, &m, &format!("env-{what}.tar.zst"), &t, kind);
    }
    // Broken JSON in the envelope.
    let mut t = members.clone();
    t[j].data[0] = b'[';
    assert_members_caught(&env, &m, "env-syntax.tar.zst", &t, "envelope_invalid");
}

#[test]
fn truncated_bundles_are_detected() {
    let (env, m) = made();
    let orig = fs::read(&m.bundle).unwrap();
    let n = orig.len();
    for len in [0, 1, 4, 13, 512, n / 3, n / 2, n - 100, n - 5, n - 1] {
        let out = verify_bytes(&env, &format!("trunc-{len}.tar.zst"), &orig[..len], &m.pubkey);
        assert_eq!(out.code, 1, "truncated to {len} of {n} bytes: {}\n{}", out.stdout, out.stderr);
        assert!(!finding_kinds(&out.json()).is_empty(), "truncated to {len}: no error finding");
    }
    // A valid zstd stream of a truncated tar: the custody layer says so.
    let raw = decompress(&orig);
    // (Cutting only the second zero block of the end marker is tolerated by design: one zero
    // block then EOF, as some tar writers do; no member is affected.)
    for len in [512, raw.len() / 2, raw.len() - 1024, raw.len() - 1500, raw.len() - 700] {
        let out = verify_bytes(&env, &format!("trunc-tar-{len}.tar.zst"), &compress(&raw[..len]), &m.pubkey);
        assert_eq!(out.code, 1, "tar truncated to {len}: {}", out.stdout);
        let kinds = out.finding_kinds();
        assert!(
            kinds.iter().any(|k| k == "archive_truncated" || k == "missing_manifest" || k == "missing_envelope"),
            "tar truncated to {len}: {kinds:?}"
        );
    }
    // Cut exactly before the envelope member: everything else is intact.
    let members = bundle_members(&m.bundle);
    let cut = member(&members, "manifest.dsse.json").offset;
    let out = verify_bytes(&env, "trunc-before-envelope.tar.zst", &compress(&raw[..cut]), &m.pubkey);
    assert_caught(&out, "archive_truncated", "cut before the envelope");
}

#[test]
fn member_removed_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let blob = blob_names(&members)[4].clone();
    for (name, kind) in [
        (blob.as_str(), "blob_missing"),
        ("manifest.json", "missing_manifest"),
        ("manifest.dsse.json", "missing_envelope"),
        ("analysis.json", "analysis_mismatch"),
    ] {
        let t: Vec<Member> = members.iter().filter(|x| x.name() != name).cloned().collect();
        assert_members_caught(&env, &m, &format!("removed-{}.tar.zst", name.replace('/', "_")), &t, kind);
    }
}

#[test]
fn analysis_member_edited_swapped_or_smuggled_in_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let a = member_index(&members, "analysis.json");
    // Edited (still valid JSON, same size): its digest no longer matches the signed manifest.
    let mut t = members.clone();
    let text = String::from_utf8(t[a].data.clone()).unwrap();
    let at = text.find("\"status\":\"").unwrap() + 10;
    t[a].data[at] ^= 0x01;
    assert_members_caught(&env, &m, "analysis-edited.tar.zst", &t, "analysis_mismatch");
    // Swapped for another bundle's analysis (a different incident's).
    let other = env.preserve_fixture(&["--trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"]);
    let theirs = bundle_members(&other.bundle);
    let mut t = members.clone();
    t[a] = theirs[member_index(&theirs, "analysis.json")].clone();
    assert_members_caught(&env, &m, "analysis-swapped.tar.zst", &t, "analysis_mismatch");
    // Smuggled into a bundle sealed without analysis, right where it would go.
    let bare = env.preserve_fixture(&["--no-analyze"]);
    let mut t = bundle_members(&bare.bundle);
    assert!(t.iter().all(|x| x.name() != "analysis.json"));
    let j = member_index(&t, "manifest.json");
    t.insert(j, members[a].clone());
    assert_members_caught(&env, &m, "analysis-smuggled.tar.zst", &t, "analysis_mismatch");
    // Moved after the manifest: the order rule names it.
    let mut t = members.clone();
    let moved = t.remove(a);
    t.insert(t.len() - 1, moved);
    assert_members_caught(&env, &m, "analysis-moved.tar.zst", &t, "member_order");
}

#[test]
fn member_added_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let extra = b"{\"planted\": \"after sealing\"}\n".to_vec();
    let name = format!("blobs/sha256/{}", sha256_hex(&extra));
    let at = member_index(&members, "manifest.json");
    let mut t = members.clone();
    t.insert(at, Member::new_like(&members[0], &name, extra.clone()));
    assert_members_caught(&env, &m, "added-blob.tar.zst", &t, "blob_extra");
    // Appended after the envelope.
    let mut t = members.clone();
    t.push(Member::new_like(&members[0], &name, extra.clone()));
    let out = verify_bytes(&env, "added-last.tar.zst", &compress(&tar_build(&t)), &m.pubkey);
    assert_eq!(out.code, 1, "{}", out.stdout);
    // A member that is not a blob at all.
    let mut t = members.clone();
    t.insert(0, Member::new_like(&members[0], "README.txt", b"hello".to_vec()));
    assert_members_caught(&env, &m, "added-readme.tar.zst", &t, "bad_member_name");
    // A duplicate of an existing blob.
    let mut t = members.clone();
    t.insert(1, members[0].clone());
    let out = verify_bytes(&env, "added-dup.tar.zst", &compress(&tar_build(&t)), &m.pubkey);
    assert_caught(&out, "duplicate_member", "duplicated blob");
}

#[test]
fn member_renamed_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let blob = blob_names(&members)[2].clone();
    let j = member_index(&members, &blob);
    // Renamed to another well-formed blob name: its content no longer matches, and the
    // manifest's blob is gone.
    let mut t = members.clone();
    let other = format!("blobs/sha256/{}", "ab".repeat(32));
    t[j].set_name(&other);
    let out = verify_bytes(&env, "renamed-blob.tar.zst", &compress(&tar_build(&t)), &m.pubkey);
    assert_caught(&out, "blob_missing", "renamed blob");
    assert_caught(&out, "blob_hash_mismatch", "renamed blob");
    // Renamed out of the blob namespace.
    let mut t = members.clone();
    t[j].set_name(&blob.replace("blobs/sha256/", "blobs/sha512/"));
    assert_members_caught(&env, &m, "renamed-ns.tar.zst", &t, "bad_member_name");
    // The manifest renamed.
    let mut t = members.clone();
    let k = member_index(&t, "manifest.json");
    t[k].set_name("manifest.jsn");
    assert_members_caught(&env, &m, "renamed-manifest.tar.zst", &t, "missing_manifest");
}

#[test]
fn members_reordered_are_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let mut t = members.clone();
    t.swap(1, 2);
    assert_members_caught(&env, &m, "swap-blobs.tar.zst", &t, "blob_order");
    let mut t = members.clone();
    let last = t.len() - 1;
    t.swap(last - 1, last);
    assert_members_caught(&env, &m, "swap-manifest-envelope.tar.zst", &t, "member_order");
    let mut t = members.clone();
    let man = t.remove(member_index(&members, "manifest.json"));
    t.insert(0, man);
    assert_members_caught(&env, &m, "manifest-first.tar.zst", &t, "member_order");
}

#[test]
fn manifest_swapped_between_two_bundles_is_detected() {
    let (env, a) = made();
    let fx = fixture_dir();
    let b = {
        let out = env.run(&[
            "preserve",
            "--source",
            &format!("logs={}", fx.join("logs/tool_calls.jsonl").display()),
            "--source",
            &format!("memory={}", fx.join("memory").display()),
            "--json",
        ]);
        out.expect(0);
        PathBuf::from(out.json()["location"].as_str().unwrap())
    };
    let ma = bundle_members(&a.bundle);
    let mb = bundle_members(&b);
    let take = |ms: &[Member], n: &str| member(ms, n).clone();
    // A's blobs with B's (validly signed, same key) manifest + envelope.
    let mut t: Vec<Member> = ma.iter().filter(|x| x.name().starts_with("blobs/")).cloned().collect();
    t.push(take(&mb, "manifest.json"));
    t.push(take(&mb, "manifest.dsse.json"));
    let out = verify_bytes(&env, "swap-both.tar.zst", &compress(&tar_build(&t)), &a.pubkey);
    assert_caught(&out, "blob_extra", "B's manifest on A's blobs");
    // B's blobs are a subset of A's (same fixture files): the only tell is the extra blobs.
    // Now the other way: B's blobs with A's manifest → A's blobs are missing.
    let mut t: Vec<Member> = mb.iter().filter(|x| x.name().starts_with("blobs/")).cloned().collect();
    t.push(take(&ma, "manifest.json"));
    t.push(take(&ma, "manifest.dsse.json"));
    assert_members_caught(&env, &a, "swap-both-rev.tar.zst", &t, "blob_missing");
    // Only manifest.json swapped: it no longer equals the signed payload.
    let mut t = ma.clone();
    let j = member_index(&t, "manifest.json");
    t[j] = take(&mb, "manifest.json");
    assert_members_caught(&env, &a, "swap-manifest-only.tar.zst", &t, "payload_mismatch");
    // Only the envelope swapped.
    let mut t = ma.clone();
    let j = member_index(&t, "manifest.dsse.json");
    t[j] = take(&mb, "manifest.dsse.json");
    assert_members_caught(&env, &a, "swap-envelope-only.tar.zst", &t, "payload_mismatch");
}

/// Another key, generated by the library in a scratch directory.
fn other_key(env: &Env, name: &str) -> custody::keys::SecretKey {
    let p = env.path(name);
    custody::keys::SecretKey::generate(&p).unwrap()
}

#[test]
fn bundle_resigned_by_another_key_is_detected() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let j = member_index(&members, "manifest.json");
    let k2 = other_key(&env, "mallory.key");
    let mut man: custody::bundle::manifest::Manifest = serde_json::from_slice(&members[j].data).unwrap();
    // The attacker's story: the side effect "did not happen".
    man.incident.side_effect = custody::bundle::manifest::SideEffect::NotHappened;
    // Case 1: manifest still names the original signer; envelope signed by mallory.
    let bytes = manifest_bytes(&man);
    let (mm, me) = signed_manifest_members(&members[j], &bytes, &k2);
    let mut t = members.clone();
    t[j] = mm;
    t[j + 1] = me;
    let out = verify_bytes(&env, "resigned-1.tar.zst", &compress(&tar_build(&t)), &m.pubkey);
    assert_caught(&out, "untrusted_signer", "re-signed, old signer in manifest");
    assert_caught(&out, "signer_mismatch", "re-signed, old signer in manifest");
    // Case 2: a fully consistent re-sign (manifest names mallory): only trust stops it.
    man.signer.keyid = k2.id().to_string();
    man.signer.public_key = k2.public.to_pem().unwrap();
    let bytes = manifest_bytes(&man);
    let (mm, me) = signed_manifest_members(&members[j], &bytes, &k2);
    let mut t = members.clone();
    t[j] = mm;
    t[j + 1] = me;
    let out = verify_bytes(&env, "resigned-2.tar.zst", &compress(&tar_build(&t)), &m.pubkey);
    assert_caught(&out, "untrusted_signer", "consistently re-signed by another key");
    // Control: the same rebuild re-signed by the ORIGINAL key passes, so the surgery is sound.
    let k1 = custody::keys::SecretKey::load(&env.key()).unwrap();
    let mut man: custody::bundle::manifest::Manifest = serde_json::from_slice(&members[j].data).unwrap();
    man.incident.notes.push("added later by the key holder".into());
    let bytes = manifest_bytes(&man);
    let (mm, me) = signed_manifest_members(&members[j], &bytes, &k1);
    let mut t = members.clone();
    t[j] = mm;
    t[j + 1] = me;
    verify_bytes(&env, "resigned-ok.tar.zst", &compress(&tar_build(&t)), &m.pubkey).expect(0);
}

#[test]
fn untrusted_signer_fails_never_passes() {
    let (env, m) = made();
    let k2 = other_key(&env, "other.key");
    let other_pub = custody::keys::pub_path_for(&env.path("other.key"));
    let out = env.verify_file(&m.bundle, &other_pub);
    assert_caught(&out, "untrusted_signer", "pinned to another key");
    assert_eq!(out.json()["signer"]["trusted"], false);
    assert_ne!(out.json()["signer"]["keyid"], k2.id().to_string());
    // No pinned key at all (a fresh home with no default key): still a failure.
    let stranger = Env::new();
    let out = stranger.run(&["verify", m.bundle.to_str().unwrap(), "--json"]);
    assert_caught(&out, "untrusted_signer", "no pinned key");
}

// ------------------------------------------------------------------- ledger in the store

/// A store with three bundles; returns the ledger entry files, oldest first.
fn three_bundle_store() -> (Env, Vec<PathBuf>) {
    let env = Env::new();
    for i in 0..3 {
        env.preserve_fixture(&["--note", &format!("look #{i}")]);
    }
    let mut entries: Vec<PathBuf> =
        fs::read_dir(env.store().join("ledger")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert_eq!(entries.len(), 3);
    env.run(&["verify", "--store", env.store().to_str().unwrap(), "--all"]).expect(0);
    (env, entries)
}

fn verify_all(env: &Env) -> Out {
    env.run(&["verify", "--store", env.store().to_str().unwrap(), "--all", "--json"])
}

#[test]
fn ledger_entry_deleted_is_detected() {
    let (env, entries) = three_bundle_store();
    make_writable(&entries[1]);
    fs::remove_file(&entries[1]).unwrap();
    let out = verify_all(&env);
    assert_caught(&out, "ledger_gap", "ledger entry 2 deleted");
    // The bundle that entry named is now unrecorded: at least a warning names it.
    let r = out.json();
    assert!(r["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "unreferenced_bundle"), "{r}");
}

/// Deleting the NEWEST entry leaves a contiguous ledger; without an external anchor for the
/// head, the store alone cannot tell it from an interrupted preserve (bundle written, entry
/// not). It must not be silent: the orphaned bundle is named in a warning.
#[test]
fn ledger_newest_entry_deleted_leaves_a_named_orphan() {
    let (env, entries) = three_bundle_store();
    let named = {
        let l = env.run(&["list", "--store", env.store().to_str().unwrap(), "--json"]).json();
        l["entries"][2]["bundle"].as_str().unwrap().trim_start_matches("sha256:").to_string()
    };
    make_writable(&entries[2]);
    fs::remove_file(&entries[2]).unwrap();
    let out = verify_all(&env);
    let r = out.json();
    let orphan = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "unreferenced_bundle").cloned();
    let orphan = orphan.unwrap_or_else(|| panic!("the orphaned bundle is not reported: {r}"));
    assert!(orphan["location"].as_str().unwrap().contains(&named), "{orphan}");
}

#[test]
fn ledger_entry_edited_is_detected() {
    let (env, entries) = three_bundle_store();
    make_writable(&entries[1]);
    let text = fs::read_to_string(&entries[1]).unwrap();
    let at = text.find("\"payload\": \"").unwrap() + 40;
    let mut b = text.into_bytes();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    fs::write(&entries[1], &b).unwrap();
    let out = verify_all(&env);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let kinds = out.finding_kinds();
    assert!(
        kinds.iter().any(|k| k == "ledger_bad_signature" || k == "ledger_entry_invalid"),
        "edited entry: {kinds:?}"
    );
    // The next entry's link to it is broken too.
    assert!(kinds.iter().any(|k| k == "ledger_link_broken"), "edited entry: {kinds:?}");
}

#[test]
fn ledger_entries_swapped_are_detected() {
    let (env, entries) = three_bundle_store();
    let a = fs::read(&entries[0]).unwrap();
    let b = fs::read(&entries[1]).unwrap();
    for p in &entries[..2] {
        make_writable(p);
    }
    fs::write(&entries[0], &b).unwrap();
    fs::write(&entries[1], &a).unwrap();
    let out = verify_all(&env);
    assert_caught(&out, "ledger_position_mismatch", "entries 1 and 2 swapped");
}

/// Header fields that carry no sealed content (mode, mtime, owner names), edited with a valid
/// checksum: the evidence, manifest and signature are untouched, so a bundle FILE still
/// verifies (its reported digest differs); the store pins the exact bytes and catches it.
/// A changed member type is caught in the file itself.
#[test]
fn tar_header_metadata_edits_are_caught_by_the_bundle_digest() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let mut t = members.clone();
    t[0].header[156] = b'7';
    t[0].fix_checksum();
    assert_members_caught(&env, &m, "typeflag.tar.zst", &t, "unsupported_member");
    let edits: [(&str, std::ops::Range<usize>, &[u8]); 3] =
        [("mode", 100..108, b"0000755\0"), ("mtime", 136..148, b"00000000001\0"), ("uname", 265..297, &[b'r'; 32])];
    for (field, range, val) in edits {
        let mut t = members.clone();
        t[0].header[range.clone()].copy_from_slice(val);
        t[0].fix_checksum();
        let bytes = compress(&tar_build(&t));
        let out = verify_bytes(&env, &format!("meta-{field}.tar.zst"), &bytes, &m.pubkey);
        assert_ne!(out.json()["subject"]["bundle"], m.digest.as_str(), "{field}: the digest must change");
        // The same edit on a bundle in a store.
        let store = Env::new();
        let sm = store.preserve_fixture(&[]);
        let mut t2 = bundle_members(&sm.bundle);
        t2[0].header[range].copy_from_slice(val);
        t2[0].fix_checksum();
        make_writable(&sm.bundle);
        fs::write(&sm.bundle, compress(&tar_build(&t2))).unwrap();
        let out = store.run(&["verify", "--store", sm.store.to_str().unwrap(), &sm.digest, "--json"]);
        assert_caught(&out, "bundle_digest_mismatch", &format!("{field} edited in the store"));
    }
}
