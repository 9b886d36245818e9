//! Hostile archives, envelopes, keys and extraction targets (issue 5). Each hostile input is
//! run through the real `custody` binary: it must exit 1 (findings; never 101, a panic), name
//! the expected finding kind, and stay under 256 MiB of peak resident memory. The small
//! deterministic inputs are committed under `fixtures/corrupt/` with an `.expect` sidecar
//! (`expect: <finding kind>`); `corrupt_fixtures_are_current_and_rejected` keeps them honest.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::verify_support::*;

const MIB: u64 = 1 << 20;
/// The resource bound of the issue.
const RSS_LIMIT_KIB: u64 = 256 * 1024;
const MTIME: u64 = 1_763_800_000;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_custody")
}

fn corrupt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corrupt")
}

/// A header for `name`/`size`, patched by `f`, with a correct checksum.
fn header(name: &[u8], size_field: u64, f: impl FnOnce(&mut [u8; 512])) -> [u8; 512] {
    let mut h =
        custody::read::archive::canonical_header(&name[..name.len().min(99)], size_field, MTIME).expect("short name");
    f(&mut h);
    fix_checksum(&mut h);
    h
}

fn fix_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
}

fn blob(data: &[u8]) -> Member {
    member(&format!("blobs/sha256/{}", custody::digest::Sha256::of(data).hex()), data.to_vec(), MTIME)
}

fn raw(h: [u8; 512], data: &[u8]) -> Member {
    Member { name: String::new(), header: h, data: data.to_vec(), offset: 0 }
}

const MANIFEST_STUB: &[u8] = b"{\"format\": \"custody-bundle/v1\"}\n";

/// An envelope JSON as custody lays it out, with the given fields.
fn envelope(payload_type: &str, payload_b64: &str, sigs: &[(&str, &str)]) -> Vec<u8> {
    let sigs: Vec<serde_json::Value> = sigs.iter().map(|(k, s)| serde_json::json!({"keyid": k, "sig": s})).collect();
    let mut v = serde_json::to_vec_pretty(
        &serde_json::json!({"payloadType": payload_type, "payload": payload_b64, "signatures": sigs}),
    )
    .unwrap();
    v.push(b'\n');
    v
}

fn b64(d: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(d)
}

const PT: &str = "application/vnd.custody.manifest.v1+json";
const KEYID: &str = "e97f0d015ca0b37f63d7590848373b77a1f75c4ecb95b13c831f4c368a1f3d3a";

fn sig64() -> String {
    b64(&[7u8; 64])
}

/// A bundle whose manifest and envelope members are `man` and `env`.
fn with_manifest(man: &[u8], env: &[u8]) -> Vec<u8> {
    zst(&join(&[
        blob(b"evidence\n"),
        member("manifest.json", man.to_vec(), MTIME),
        member("manifest.dsse.json", env.to_vec(), MTIME),
    ]))
}

fn stub_envelope() -> Vec<u8> {
    envelope(PT, &b64(MANIFEST_STUB), &[(KEYID, &sig64())])
}

/// zstd frame header custody-style (checksum flag, window 2^wlog).
fn frame_header(wlog: u8) -> Vec<u8> {
    vec![0x28, 0xb5, 0x2f, 0xfd, 0x04, (wlog - 10) << 3]
}

fn raw_block(data: &[u8], last: bool) -> Vec<u8> {
    let h = ((data.len() as u32) << 3) | last as u32;
    let mut v = h.to_le_bytes()[..3].to_vec();
    v.extend_from_slice(data);
    v
}

fn rle_block(byte: u8, n: u32, last: bool) -> Vec<u8> {
    let h = (n << 3) | (1 << 1) | last as u32;
    let mut v = h.to_le_bytes()[..3].to_vec();
    v.push(byte);
    v
}

/// A frame that decompresses to `prefix` followed by `zeros` zero bytes, built from RLE
/// blocks by hand (10 GiB of zeros is ~320 KiB of frame).
fn bomb(prefix: &[u8], zeros: u64) -> Vec<u8> {
    let mut v = frame_header(17);
    v.extend(raw_block(prefix, false));
    let block = 1u64 << 17;
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block);
        left -= n;
        v.extend(rle_block(0, n as u32, left == 0));
    }
    v.extend_from_slice(&[0, 0, 0, 0]); // checksum (never reached)
    v
}

/// Every committed hostile case: name, bytes, the finding kind it must produce.
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let ev = b"evidence\n";
    let good_blob = blob(ev);
    let bname = good_blob.name.clone();
    let dataful = |h: [u8; 512], d: &[u8]| zst(&join(&[raw(h, d)]));
    let typed = |t: u8, link: &[u8]| {
        dataful(
            header(bname.as_bytes(), 0, |h| {
                h[156] = t;
                h[157..157 + link.len()].copy_from_slice(link);
            }),
            b"",
        )
    };
    let deep = |open: &str, close: &str| {
        let mut s = String::new();
        for _ in 0..100_000 {
            s.push_str(open);
        }
        for _ in 0..100_000 {
            s.push_str(close);
        }
        s.into_bytes()
    };
    let mut v: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        ("member-name-dotdot", zst(&join(&[member("../../etc/cron.d/x", ev.to_vec(), MTIME)])), "bad_member_name"),
        ("member-name-absolute", zst(&join(&[member("/etc/passwd", ev.to_vec(), MTIME)])), "bad_member_name"),
        ("member-name-unknown-file", zst(&join(&[member("evil.sh", ev.to_vec(), MTIME)])), "bad_member_name"),
        (
            "member-name-blob-uppercase-hex",
            zst(&join(&[member(&bname.to_uppercase().replace("BLOBS/SHA256", "blobs/sha256"), ev.to_vec(), MTIME)])),
            "bad_member_name",
        ),
        (
            "member-name-100-bytes-no-nul",
            dataful(
                {
                    let mut h = header(b"x", 9, |_| {});
                    h[..100].copy_from_slice(&[b'a'; 100]);
                    fix_checksum(&mut h);
                    h
                },
                ev,
            ),
            "bad_member_name",
        ),
        ("member-name-invalid-utf8", dataful(header(b"blobs/\xff\xfe", 9, |_| {}), ev), "bad_member_name"),
        ("member-symlink", typed(b'2', b"/etc/passwd"), "unsupported_member"),
        ("member-hardlink", typed(b'1', b"manifest.json"), "unsupported_member"),
        ("member-char-device", typed(b'3', b""), "unsupported_member"),
        ("member-block-device", typed(b'4', b""), "unsupported_member"),
        ("member-directory", typed(b'5', b""), "unsupported_member"),
        ("member-fifo", typed(b'6', b""), "unsupported_member"),
        (
            "member-gnu-long-name",
            zst(&join(&[raw(header(b"././@LongLink", 120, |h| h[156] = b'L'), &[b'a'; 120]), good_blob.clone()])),
            "unsupported_member",
        ),
        (
            "member-pax-header",
            zst(&join(&[
                raw(header(b"PaxHeader/x", 30, |h| h[156] = b'x'), b"30 path=../../../../etc/passwd\n"),
                good_blob.clone(),
            ])),
            "unsupported_member",
        ),
        (
            "member-prefix-field-escape",
            dataful(header(bname.as_bytes(), 9, |h| h[345..350].copy_from_slice(b"../..")), ev),
            "bad_member_name",
        ),
        ("member-duplicate-name", zst(&join(&[good_blob.clone(), good_blob.clone()])), "duplicate_member"),
        (
            "size-negative-base256",
            dataful(header(bname.as_bytes(), 9, |h| h[124..136].copy_from_slice(&[0xff; 12])), ev),
            "archive_corrupt",
        ),
        (
            "size-huge-base256",
            dataful(
                header(bname.as_bytes(), 9, |h| {
                    h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
                }),
                ev,
            ),
            "archive_truncated",
        ),
        ("size-huge-octal", dataful(header(bname.as_bytes(), 0o77777777777, |_| {}), ev), "archive_truncated"),
        (
            "size-not-octal",
            dataful(header(bname.as_bytes(), 9, |h| h[124..136].copy_from_slice(b"0000000009z\0")), ev),
            "archive_corrupt",
        ),
        (
            "header-checksum-wrong",
            zst(&{
                let mut t = join(std::slice::from_ref(&good_blob));
                t[150] ^= 1;
                t
            }),
            "archive_corrupt",
        ),
        (
            "header-mode-0777",
            dataful(header(bname.as_bytes(), 9, |h| h[100..108].copy_from_slice(b"0000777\0")), ev),
            "non_canonical",
        ),
        (
            "header-uid-1000",
            dataful(header(bname.as_bytes(), 9, |h| h[108..116].copy_from_slice(b"0001750\0")), ev),
            "non_canonical",
        ),
        ("manifest-declares-1gib", dataful(header(b"manifest.json", 1 << 30, |_| {}), b"{"), "member_too_large"),
        ("manifest-nested-100k", with_manifest(&deep("[", "]"), &stub_envelope()), "manifest_invalid"),
        ("manifest-nested-100k-objects", with_manifest(&deep("{\"a\":", "}"), &stub_envelope()), "manifest_invalid"),
        (
            "manifest-number-overflow",
            with_manifest(
                b"{\"format\": \"custody-bundle/v1\", \"entries\": [{\"size\": 184467440737095516160000}]}\n",
                &stub_envelope(),
            ),
            "manifest_invalid",
        ),
        ("manifest-float-overflow", with_manifest(b"{\"format\": 1e400}\n", &stub_envelope()), "manifest_invalid"),
        (
            "manifest-invalid-utf8",
            with_manifest(b"{\"format\": \"custody-bundle/v1\xff\xfe\"}\n", &stub_envelope()),
            "manifest_invalid",
        ),
        (
            "envelope-two-signatures",
            with_manifest(MANIFEST_STUB, &envelope(PT, &b64(MANIFEST_STUB), &[(KEYID, &sig64()), (KEYID, &sig64())])),
            "envelope_invalid",
        ),
        (
            "envelope-no-signature",
            with_manifest(MANIFEST_STUB, &envelope(PT, &b64(MANIFEST_STUB), &[])),
            "envelope_invalid",
        ),
        (
            "envelope-wrong-payload-type",
            with_manifest(
                MANIFEST_STUB,
                &envelope("application/vnd.in-toto+json", &b64(MANIFEST_STUB), &[(KEYID, &sig64())]),
            ),
            "envelope_invalid",
        ),
        (
            "envelope-noncanonical-base64-trailing-bits",
            with_manifest(b"A", &envelope(PT, "QR==", &[(KEYID, &sig64())])),
            "envelope_invalid",
        ),
        (
            "envelope-noncanonical-base64-unpadded",
            with_manifest(b"A", &envelope(PT, "QQ", &[(KEYID, &sig64())])),
            "envelope_invalid",
        ),
        (
            "envelope-base64-urlsafe-alphabet",
            with_manifest(&[0xfb, 0xff], &envelope(PT, "-_8=", &[(KEYID, &sig64())])),
            "envelope_invalid",
        ),
        (
            "envelope-noncanonical-json-escape",
            with_manifest(MANIFEST_STUB, &stub_envelope().replace_first(b"\"payloadType\"", b"\"payload\\u0054ype\"")),
            "envelope_invalid",
        ),
        (
            "envelope-noncanonical-whitespace",
            with_manifest(MANIFEST_STUB, &stub_envelope().replace_first(b"\n  \"payload\"", b"\n\t\"payload\"")),
            "envelope_invalid",
        ),
        ("envelope-nested-100k", with_manifest(MANIFEST_STUB, &deep("[", "]")), "envelope_invalid"),
        (
            "envelope-short-signature",
            with_manifest(MANIFEST_STUB, &envelope(PT, &b64(MANIFEST_STUB), &[(KEYID, &b64(&[1; 63]))])),
            "envelope_invalid",
        ),
        (
            "zstd-window-2gib",
            {
                let mut f = frame_header(31);
                f.extend(raw_block(&[0; 512], true));
                f
            },
            "archive_corrupt",
        ),
        (
            "zstd-skippable-frame-first",
            {
                let mut f = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
                f.extend(zst(&join(std::slice::from_ref(&good_blob))));
                f
            },
            "archive_corrupt",
        ),
        (
            "zstd-second-frame-appended",
            {
                let mut f = zst(&join(std::slice::from_ref(&good_blob)));
                f.extend(zst(b"more"));
                f
            },
            "trailing_data",
        ),
        (
            "zstd-no-checksum",
            zstd::encode_all(&join(std::slice::from_ref(&good_blob))[..], 1).unwrap(),
            "archive_corrupt",
        ),
        ("not-zstd-at-all", b"PK\x03\x04 this is a zip file, not a bundle".to_vec(), "archive_corrupt"),
        ("empty-file", Vec::new(), "archive_corrupt"),
        (
            "tar-trailing-garbage-after-end",
            zst(&{
                let mut t = join(std::slice::from_ref(&good_blob));
                t.extend_from_slice(b"hidden");
                t
            }),
            "trailing_data",
        ),
        (
            "tar-one-end-block-only",
            zst(&{
                let mut t = join(std::slice::from_ref(&good_blob));
                t.truncate(t.len() - 512);
                t
            }),
            "archive_truncated",
        ),
        (
            "tar-nonzero-padding",
            zst(&{
                let mut t = join(std::slice::from_ref(&good_blob));
                t[512 + ev.len()] = b'X';
                t
            }),
            "non_canonical",
        ),
        ("bomb-zeros-without-header", bomb(&[0; 512], 64 * MIB), "trailing_data"),
    ];
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

trait ReplaceFirst {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let i = self.windows(from.len()).position(|w| w == from).expect("pattern present");
        let mut v = self[..i].to_vec();
        v.extend_from_slice(to);
        v.extend_from_slice(&self[i + from.len()..]);
        v
    }
}

struct Env {
    dir: tempfile::TempDir,
    pubkey: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let k = custody::keys::SecretKey::generate(&dir.path().join("k")).unwrap();
    drop(k);
    std::fs::create_dir(dir.path().join("home")).unwrap();
    Env { pubkey: dir.path().join("k.pub"), dir }
}

fn check_rejected(e: &Env, name: &str, file: &Path, expect: &str) -> Run {
    let r = verify_file(file, &e.dir.path().join("home"), &e.pubkey, &[]);
    assert_eq!(r.code, 1, "{name}: exit code must be 1 (never 101), stderr: {}", r.stderr);
    assert!(
        r.kinds.iter().any(|k| k == expect),
        "{name}: expected a `{expect}` finding, got {:?}\n{}",
        r.kinds,
        r.stdout
    );
    assert!(r.messages.iter().all(|m| !m.is_empty()), "{name}: every finding has a message");
    assert!(r.peak_kib < RSS_LIMIT_KIB, "{name}: peak RSS {} KiB is above 256 MiB", r.peak_kib);
    r
}

#[test]
fn corrupt_fixtures_are_current_and_rejected() {
    let dir = corrupt_dir();
    let write = std::env::var_os("CUSTODY_WRITE_FIXTURES").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let e = env();
    let cases = cases();
    for (name, bytes, expect) in &cases {
        let file = dir.join(format!("{name}.tar.zst"));
        let sidecar = dir.join(format!("{name}.expect"));
        let text = format!("expect: {expect}\n");
        if write {
            std::fs::write(&file, bytes).unwrap();
            std::fs::write(&sidecar, &text).unwrap();
        }
        assert_eq!(
            &std::fs::read(&file).unwrap_or_default(),
            bytes,
            "{name}: fixture is stale (CUSTODY_WRITE_FIXTURES=1 regenerates)"
        );
        assert_eq!(std::fs::read_to_string(&sidecar).unwrap_or_default(), text, "{name}: sidecar");
        let r = check_rejected(&e, name, &file, expect);
        eprintln!("{name:<45} {expect:<20} peak {:>6} KiB", r.peak_kib);
    }
    // Nothing else lives there: every committed fixture is checked.
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(n, cases.len() * 2, "fixtures/corrupt holds exactly the generated cases and their sidecars");
}

#[test]
fn decompression_bomb_is_stopped_with_bounded_memory() {
    let e = env();
    // A blob member declaring 10 GiB, all zeros: 10 GiB out of ~320 KiB.
    let h = header(format!("blobs/sha256/{}", "0".repeat(64)).as_bytes(), 10 << 30, |_| {});
    let f = e.dir.path().join("bomb-10gib.tar.zst");
    let b = bomb(&h, 10 << 30);
    assert!(b.len() < 400 * 1024, "the bomb is small ({} bytes)", b.len());
    std::fs::write(&f, &b).unwrap();
    let r = check_rejected(&e, "bomb-10gib", &f, "decompression_bomb");
    eprintln!("bomb: {} compressed bytes for 10 GiB; peak RSS {} KiB", b.len(), r.peak_kib);
}

#[test]
fn manifest_and_envelope_at_their_caps_stay_under_the_memory_bound() {
    let e = env();
    let lim = custody::read::archive::Limits::default();
    // A manifest just under the cap (JSON that fails late) and an envelope just under its cap.
    let mut man = b"{\"format\": \"custody-bundle/v1\", \"pad\": \"".to_vec();
    man.resize(lim.max_manifest as usize - 3, b'a');
    man.extend_from_slice(b"\"}\n");
    let payload = "A".repeat(((lim.max_envelope as usize - 400) / 4) * 4);
    let env_bytes = envelope(PT, &payload, &[(KEYID, &sig64())]);
    assert!(env_bytes.len() as u64 <= lim.max_envelope);
    let f = e.dir.path().join("caps.tar.zst");
    std::fs::write(&f, with_manifest(&man, &env_bytes)).unwrap();
    let r = verify_file(&f, &e.dir.path().join("home"), &e.pubkey, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.peak_kib < RSS_LIMIT_KIB, "peak RSS {} KiB", r.peak_kib);
    eprintln!(
        "manifest {} MiB + envelope {} MiB at the caps: peak RSS {} KiB",
        man.len() >> 20,
        env_bytes.len() >> 20,
        r.peak_kib
    );
    // A manifest made of as many tiny JSON values as the parse-cost bound admits (each costs
    // ~10x its text once parsed), with an envelope at its cap: still bounded.
    let n = (custody::read::envelope::MAX_JSON_VALUES_COST / 100) - 16;
    let mut man = b"{\"analysis\": [".to_vec();
    for i in 0..n {
        man.extend_from_slice(if i + 1 == n { b"[]" } else { b"[]," });
    }
    man.extend_from_slice(b"], \"format\": \"custody-bundle/v1\"}\n");
    assert!(custody::read::envelope::json_cost(&man) <= custody::read::envelope::MAX_JSON_VALUES_COST);
    std::fs::write(&f, with_manifest(&man, &env_bytes)).unwrap();
    let r = verify_file(&f, &e.dir.path().join("home"), &e.pubkey, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.peak_kib < RSS_LIMIT_KIB, "peak RSS {} KiB", r.peak_kib);
    eprintln!("manifest of {n} JSON values + envelope at the cap: peak RSS {} KiB", r.peak_kib);
    // One value more per 3 bytes than the bound: refused before parsing.
    let mut man = b"{\"analysis\": [".to_vec();
    for _ in 0..n * 2 {
        man.extend_from_slice(b"[],");
    }
    man.extend_from_slice(b"[]], \"format\": \"custody-bundle/v1\"}\n");
    std::fs::write(&f, with_manifest(&man, &stub_envelope())).unwrap();
    let r = check_rejected(&e, "manifest-too-many-values", &f, "manifest_invalid");
    assert!(r.messages.iter().any(|m| m.contains("parsed size estimate")), "{:?}", r.messages);
}

/// 16 MiB of `{"":0}` objects as an intact bundle's `analysis.json` (~2.4 M objects; a 23 KB
/// bundle): `show` parsed it into ~1.6 GB of `serde_json::Value`. Now its cost is estimated
/// first and it is not shown, with a warning; the bundle is still intact.
#[test]
fn regression_show_of_a_16_mib_analysis_of_tiny_objects_stays_under_the_bound() {
    let w = world();
    let mut a = b"[".to_vec();
    while a.len() < 16 << 20 {
        a.extend_from_slice(b"{\"\":0},");
    }
    a.pop();
    a.extend_from_slice(b"]\n");
    let bundle = with_analysis(&w, a);
    assert!(bundle.len() < 256 << 10, "a small bundle: {} bytes", bundle.len());
    let r = run_on_file(&w, "show", &bundle);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, &r.stdout[..r.stdout.len().min(2000)]);
    assert!(r.stdout.contains("it is not shown"), "{}", &r.stdout[..r.stdout.len().min(4000)]);
    assert!(r.peak_kib < RSS_LIMIT_KIB, "show: peak RSS {} KiB", r.peak_kib);
    eprintln!("show, 16 MiB analysis of tiny objects: peak RSS {} KiB", r.peak_kib);
}

/// A manifest whose `analysis` is 2.2 M `{"":0}` objects: `verify` parsed the field (before
/// even checking that a v2 manifest may not have it) into 1.45 GB, above its stated bound,
/// because the cost model charged a `Value` object 48 bytes. Now it is refused before parsing.
#[test]
fn regression_a_manifest_with_a_2_2m_object_analysis_is_refused_before_parsing() {
    let e = env();
    for format in ["custody-bundle/v2", "custody-bundle/v1"] {
        let mut man = format!("{{\"format\": \"{format}\", \"analysis\": [").into_bytes();
        for i in 0..2_200_000 {
            if i > 0 {
                man.push(b',');
            }
            man.extend_from_slice(b"{\"\":0}");
        }
        man.extend_from_slice(b"]}\n");
        let f = e.dir.path().join("analysis-objects.tar.zst");
        std::fs::write(&f, with_manifest(&man, &stub_envelope())).unwrap();
        let r = check_rejected(&e, format, &f, "manifest_invalid");
        assert!(r.messages.iter().any(|m| m.contains("parsed size estimate")), "{format}: {:?}", r.messages);
        eprintln!("{format} manifest of 2.2 M analysis objects: peak RSS {} KiB", r.peak_kib);
    }
}

#[test]
fn verify_needs_no_private_key_and_nothing_prints_or_stores_one() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("empty-home");
    std::fs::create_dir(&home).unwrap();
    let file = dir.path().join("a.tar.zst");
    std::fs::write(&file, &w.bundles[0].bytes).unwrap();
    let pubkey = dir.path().join("signer.pub");
    std::fs::write(&pubkey, w.key.public.to_pem().unwrap()).unwrap();
    let r = verify_file(&file, &home, &pubkey, &[]);
    assert_eq!(r.code, 0, "verify with an empty CUSTODY_HOME and only --trusted-key: {}", r.stdout);
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0, "verify created nothing in the home (no key)");
    // --expect-digest binds the file's bytes: the right digest passes, another one fails.
    let right = w.bundles[0].id.to_string();
    let r2 = verify_file(&file, &home, &pubkey, &["--expect-digest", &right]);
    assert_eq!(r2.code, 0, "{}", r2.stdout);
    let wrong = w.bundles[1].id.to_string();
    let r2 = verify_file(&file, &home, &pubkey, &["--expect-digest", &wrong]);
    assert_eq!(r2.code, 1, "{}", r2.stdout);
    assert!(r2.kinds.iter().any(|k| k == "bundle_digest_mismatch"), "{:?}", r2.kinds);
    // The private key appears in no output and in no stored object.
    let mut outputs = vec![r.stdout, r.stderr];
    let chome = dir.path().join("home");
    let key_path = chome.join("keys/default.key");
    let run = |args: &[&str]| {
        let o = Command::new(bin()).args(args).env("CUSTODY_HOME", &chome).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
    };
    let incident = incident();
    let inc = incident.to_str().unwrap();
    let kg = dir.path().join("kg.key");
    for args in [
        vec!["keygen", "--out", kg.to_str().unwrap()],
        vec!["keygen", "--out", dir.path().join("kg2.key").to_str().unwrap(), "--json"],
        vec!["preserve", "--incident-dir", inc],
        vec!["preserve", "--incident-dir", inc, "--json"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["verify", "--store", chome.join("store").to_str().unwrap(), "--all"],
        vec!["verify", "--store", chome.join("store").to_str().unwrap(), "--all", "--json"],
    ] {
        let (code, out) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        outputs.push(out);
    }
    let secret_pem = std::fs::read_to_string(&key_path).unwrap();
    let secret_b64: String = secret_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for o in &outputs {
        assert!(!o.contains("PRIVATE KEY"), "an output shows a private key: {o}");
        assert!(!o.contains(&secret_b64), "an output contains the private key's base64");
    }
    for entry in walkdir::WalkDir::new(chome.join("store")) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let mut bytes = std::fs::read(entry.path()).unwrap();
        if entry.path().extension().is_some_and(|x| x == "zst") {
            bytes = zstd::decode_all(&bytes[..]).unwrap();
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains(&secret_b64),
            "{} stores a private key",
            entry.path().display()
        );
    }
}

#[test]
fn a_group_or_world_readable_private_key_is_refused_by_the_cli() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("loose.key");
    let o = Command::new(bin()).args(["keygen", "--out", key.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success());
    for mode in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = Command::new(bin())
            .args(["preserve", "--key", key.to_str().unwrap(), "--incident-dir", incident().to_str().unwrap()])
            .env("CUSTODY_HOME", dir.path().join("home"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "mode {mode:o}: {err}");
        assert!(err.contains("readable by group or others") && err.contains("chmod 600"), "mode {mode:o}: {err}");
        assert!(
            !dir.path().join("home/store/ledger").exists()
                || std::fs::read_dir(dir.path().join("home/store/ledger")).unwrap().count() == 0
        );
    }
}

#[test]
fn max_skew_is_an_option_and_a_successor_older_than_the_seal_is_a_finding() {
    let w = world();
    let (a, b) = (&w.bundles[0], &w.bundles[1]);
    let e1 = &w.entries[0];
    // B sealed at T0+60; its successor (C) claims to have been appended 10 minutes before.
    let e2 = w.entry(&w.key, 2, b, Some(e1), at(T0 + 60));
    let e3 = w.entry(&w.key, 3, &w.bundles[2], Some(&e2), at(T0 + 60 - 600));
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("bundles")).unwrap();
    std::fs::create_dir_all(store.join("ledger")).unwrap();
    for m in &w.bundles {
        std::fs::write(store.join(custody::store::bundle_key(&m.id)), &m.bytes).unwrap();
    }
    for (n, e) in [(1u64, e1.as_slice()), (2, &e2), (3, &e3)] {
        std::fs::write(store.join(custody::store::ledger::entry_key(n)), e).unwrap();
    }
    std::fs::write(store.join(custody::store::ledger::STORE_FILE), &w.store_file).unwrap();
    let pubkey = dir.path().join("k.pub");
    std::fs::write(&pubkey, w.key.public.to_pem().unwrap()).unwrap();
    let run = |skew: &str| {
        Command::new(bin())
            .args([
                "verify",
                "--json",
                "--store",
                store.to_str().unwrap(),
                &b.id.to_string(),
                "--trusted-key",
                pubkey.to_str().unwrap(),
                "--max-skew",
                skew,
            ])
            .env("CUSTODY_HOME", dir.path().join("home"))
            .output()
            .unwrap()
    };
    let o = run("5m");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("\"clock_skew\""), "{out}");
    assert!(out.contains(&custody::store::ledger::entry_key(3)), "the finding names the successor entry: {out}");
    let o = run("15m");
    assert_eq!(
        o.status.code(),
        Some(0),
        "with a 15 minute skew the same ledger passes: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = run("soon");
    assert_eq!(o.status.code(), Some(2), "a bad --max-skew is a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a duration"));
    let _ = a;
}

#[test]
fn a_bundle_whose_ledger_link_does_not_match_its_position_is_an_error_unless_it_raced() {
    use custody::verify::{verify_in_store, FindingKind, Level, Options};
    let w = world();
    let (a, b, c) = (&w.bundles[0], &w.bundles[1], &w.bundles[2]);
    let opts = Options::default();
    // C recorded its head as position 2 (B). Put it at position 4 behind an entry appended an
    // hour before C was sealed: C would have seen that entry; not sealed against this ledger.
    let e = &w.entries;
    let extra = w.entry(&w.key, 3, a, Some(&e[1]), at(T0 + 120 - 3600));
    let c4 = w.entry(&w.key, 4, c, Some(&extra), at(T0 + 120));
    let s = w.store_with(&w.all_bundles(), &[(1, &e[0]), (2, &e[1]), (3, &extra), (4, &c4)]);
    let (r, _) = w.rt.block_on(verify_in_store(&s, &c.id, &w.trust(), &opts)).unwrap();
    let f = r.findings.iter().find(|f| f.kind == FindingKind::LedgerLinkMismatch).expect("link finding");
    assert_eq!(f.level, Level::Error, "{f:?}");
    assert!(f.message.contains("entries 3 were appended before its sealing began"), "{}", f.message);
    // The same position, but the entry in between was appended while C was sealing: a
    // concurrent preserve, reported as a warning, still intact.
    let raced = w.entry(&w.key, 3, a, Some(&e[1]), at(T0 + 121));
    let c4 = w.entry(&w.key, 4, c, Some(&raced), at(T0 + 122));
    let s = w.store_with(&w.all_bundles(), &[(1, &e[0]), (2, &e[1]), (3, &raced), (4, &c4)]);
    let (r, _) = w.rt.block_on(verify_in_store(&s, &c.id, &w.trust(), &opts)).unwrap();
    let f = r.findings.iter().find(|f| f.kind == FindingKind::LedgerLinkMismatch).expect("link warning");
    assert_eq!(f.level, Level::Warning);
    assert!(
        r.findings.iter().all(|f| f.level == Level::Warning || f.kind == FindingKind::LedgerDuplicateBundle),
        "{:?}",
        r.findings
    );
    // B's recorded link (position 1 = A) pointing at another entry id: an error.
    let forged1 = w.entry(&w.key, 1, a, None, at(T0 + 1));
    let s = w.store_with(&w.all_bundles(), &[(1, &forged1), (2, &e[1]), (3, &e[2])]);
    let (r, _) = w.rt.block_on(verify_in_store(&s, &b.id, &w.trust(), &opts)).unwrap();
    assert!(
        r.findings.iter().any(|f| f.kind == FindingKind::LedgerLinkMismatch && f.level == Level::Error),
        "{:?}",
        r.findings
    );
}

#[test]
fn extract_never_writes_outside_its_target_and_never_follows_links() {
    use std::os::unix::fs::symlink;
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tar.zst");
    std::fs::write(&file, &w.bundles[0].bytes).unwrap();
    let pubkey = dir.path().join("k.pub");
    std::fs::write(&pubkey, w.key.public.to_pem().unwrap()).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let extract = |to: &Path| {
        Command::new(bin())
            .args([
                "extract",
                file.to_str().unwrap(),
                "--to",
                to.to_str().unwrap(),
                "--trusted-key",
                pubkey.to_str().unwrap(),
            ])
            .env("CUSTODY_HOME", dir.path().join("home"))
            .output()
            .unwrap()
    };
    // A directory on the way is a symlink to somewhere else.
    let t1 = dir.path().join("t1");
    std::fs::create_dir(&t1).unwrap();
    symlink(&outside, t1.join("logs")).unwrap();
    let o = extract(&t1);
    assert_ne!(o.status.code(), Some(0));
    assert_ne!(o.status.code(), Some(101));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symbolic link"), "{}", String::from_utf8_lossy(&o.stderr));
    // The file itself pre-exists as a symlink to a file outside.
    let t2 = dir.path().join("t2");
    std::fs::create_dir_all(t2.join("logs")).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    symlink(&victim, t2.join("logs/tool_calls.jsonl")).unwrap();
    let o = extract(&t2);
    assert_ne!(o.status.code(), Some(0));
    assert_ne!(o.status.code(), Some(101));
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    // The target itself is a symlink.
    let t3 = dir.path().join("t3");
    symlink(&outside, &t3).unwrap();
    let o = extract(&t3);
    assert_ne!(o.status.code(), Some(0));
    let names: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("victim")], "nothing was written outside the targets");
    // A signed manifest whose entry path escapes: verification refuses it, nothing is written.
    let tar = zstd::decode_all(&w.bundles[0].bytes[..]).unwrap();
    let mut ms = split(&tar);
    let mi = ms.iter().position(|m| m.name == "manifest.json").unwrap();
    let ei = ms.iter().position(|m| m.name == "manifest.dsse.json").unwrap();
    let text = String::from_utf8(ms[mi].data.clone())
        .unwrap()
        .replace("\"path\": \"logs/tool_calls.jsonl\"", "\"path\": \"../../escaped.jsonl\"");
    let env = custody::bundle::dsse::to_bytes(&custody::bundle::dsse::sign(PT, text.as_bytes(), &w.key));
    let mtime = mtime_of(&tar);
    ms[mi] = member("manifest.json", text.into_bytes(), mtime);
    ms[ei] = member("manifest.dsse.json", env, mtime);
    std::fs::write(&file, zst(&join(&ms))).unwrap();
    let t4 = dir.path().join("deep/t4");
    let o = extract(&t4);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.path().join("escaped.jsonl").exists() && !dir.path().join("deep/escaped.jsonl").exists());
    // And the untouched bundle extracts, byte-identical to the incident.
    std::fs::write(&file, &w.bundles[0].bytes).unwrap();
    let t5 = dir.path().join("t5");
    let o = extract(&t5);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(t5.join("logs/tool_calls.jsonl")).unwrap(),
        std::fs::read(incident().join("logs/tool_calls.jsonl")).unwrap()
    );
}
