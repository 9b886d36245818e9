//! The bundle digest computed by the pipelined archive reader (on its decompression thread,
//! over the very buffers it decodes) must be SHA-256 of the file's bytes, all of them: for a
//! real bundle spanning many read chunks, for truncated copies (cut inside and at the edges
//! of the reader's 256 KiB chunks), for a copy with bytes appended after the zstd frame and
//! for a corrupt copy on which the reader stops early. Checked against `sha2` over the file
//! bytes, both from a file and from memory, and through `expected_digest` (the check that
//! `verify --store` runs).

use std::path::Path;
use std::sync::Arc;

use custody::digest::{BundleId, Sha256};
use custody::keys::SecretKey;
use custody::store::Store;
use custody::verify::{check_bundle, FindingKind, Level, Options, Trust};
use sha2::Digest as _;

use crate::verify_support::{at, incident};

/// The pipeline's input chunk (`read::pipeline::IN_CHUNK`).
const CHUNK: usize = 256 << 10;

/// `sha2` over the bytes, independent of custody's hashing code.
fn sha2_of(bytes: &[u8]) -> BundleId {
    BundleId(Sha256(sha2::Sha256::digest(bytes).into()))
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk fixture");
        let dest = to.join(e.path().strip_prefix(from).expect("under fixture"));
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Incompressible bytes (xorshift), so that the bundle spans many of the reader's chunks.
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A real bundle made by `preserve` of the realistic incident plus a 3 MiB incompressible
/// attachment; its bytes, the trust for its key, and the dir holding it.
fn big_bundle() -> (Vec<u8>, Trust, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Arc::new(SecretKey::generate(&dir.path().join("k")).expect("key"));
    let inc = dir.path().join("incident");
    copy_dir(&incident(), &inc);
    std::fs::create_dir_all(inc.join("attachments")).expect("mkdir");
    std::fs::write(inc.join("attachments/screen-capture.bin"), noise(3 << 20, 0x2545_f491_4f6c_dd1d)).expect("write");
    let store = Store::open("memory://").expect("store");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let req = custody::preserve::PreserveRequest { incident_dir: Some(inc), workers: 0, ..Default::default() };
    let done = rt
        .block_on(custody::preserve::preserve(
            &store,
            key.clone(),
            req,
            custody::clock::Clock::fixed(at(1_763_800_000)),
        ))
        .expect("preserve");
    let f = rt.block_on(store.fetch_bundle(&done.bundle)).expect("fetch").expect("present");
    let bytes = std::fs::read(f.path()).expect("read bundle");
    assert_eq!(sha2_of(&bytes), done.bundle, "the store names the bundle by its SHA-256");
    assert!(bytes.len() > 10 * CHUNK, "the bundle must span many read chunks, has {} bytes", bytes.len());
    (bytes, Trust::new(vec![key.public.clone()]), dir)
}

fn kinds(c: &custody::verify::BundleCheck) -> Vec<FindingKind> {
    c.findings.iter().filter(|f| f.level == Level::Error).map(|f| f.kind).collect()
}

/// Check `bytes` from memory and from a file; both must report SHA-256 of all of `bytes`.
fn check_both(bytes: &[u8], trust: &Trust, opts: &Options, dir: &Path) -> custody::verify::BundleCheck {
    let want = sha2_of(bytes);
    let mem = check_bundle(bytes, trust, opts, None);
    assert_eq!(mem.digest, want, "digest from memory, {} bytes", bytes.len());
    assert_eq!(mem.size, bytes.len() as u64);
    let path = dir.join("copy.tar.zst");
    std::fs::write(&path, bytes).expect("write copy");
    let file = check_bundle(std::fs::File::open(&path).expect("open copy"), trust, opts, None);
    assert_eq!(file.digest, want, "digest from a file, {} bytes", bytes.len());
    assert_eq!(file.size, bytes.len() as u64);
    assert_eq!(kinds(&mem), kinds(&file), "same findings from memory and from a file");
    file
}

#[test]
fn the_pipelined_bundle_digest_is_sha256_of_every_byte_of_the_file() {
    let (bytes, trust, dir) = big_bundle();
    let opts = Options::default();

    let intact = check_both(&bytes, &trust, &opts, dir.path());
    assert!(kinds(&intact).is_empty(), "the untouched bundle verifies: {:?}", intact.findings);

    // Truncated at the frame header, around chunk edges, in the middle, one byte short.
    let n = bytes.len();
    for cut in [0, 1, 5, 6, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK + 7, n / 2, n - 1] {
        let c = check_both(&bytes[..cut], &trust, &opts, dir.path());
        assert!(!kinds(&c).is_empty(), "a bundle cut at {cut} of {n} bytes must not verify");
    }

    // Bytes after the zstd frame: hashed (the digest is of the file) and reported.
    let mut longer = bytes.clone();
    longer.extend(noise(2 * CHUNK + 3, 11));
    let c = check_both(&longer, &trust, &opts, dir.path());
    assert!(kinds(&c).contains(&FindingKind::TrailingData), "{:?}", c.findings);

    // A corrupt byte early on: the reader stops there, the digest still covers the file.
    let mut bad = bytes.clone();
    bad[3 * CHUNK + 100] ^= 0x40;
    let c = check_both(&bad, &trust, &opts, dir.path());
    assert!(!kinds(&c).is_empty(), "a corrupt bundle must not verify");
}

#[test]
fn expected_digest_matches_the_intact_bundle_and_no_truncated_copy() {
    let (bytes, trust, dir) = big_bundle();
    let opts = Options { expected_digest: Some(sha2_of(&bytes)), ..Options::default() };
    let c = check_both(&bytes, &trust, &opts, dir.path());
    assert!(kinds(&c).is_empty(), "{:?}", c.findings);
    for cut in [CHUNK, bytes.len() - 1] {
        let c = check_both(&bytes[..cut], &trust, &opts, dir.path());
        assert!(kinds(&c).contains(&FindingKind::BundleDigestMismatch), "cut at {cut}: {:?}", c.findings);
    }
}
