//! Deterministic output: the same evidence, clock (`SOURCE_DATE_EPOCH`) and key give a
//! byte-identical bundle in two fresh stores; another clock gives another digest.

use std::fs;

use crate::util::*;

const EPOCH: i64 = 1_763_733_600; // 2025-11-21T14:00:00Z

#[test]
fn same_evidence_clock_and_key_give_a_byte_identical_bundle() {
    let keys = Env::new();
    let key = keys.path("k.key");
    keys.run(&["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]).expect(0);
    let key = key.to_str().unwrap();
    let (ea, eb) = (Env::with_epoch(EPOCH), Env::with_epoch(EPOCH));
    let a = ea.preserve_fixture(&["--key", key]);
    let b = eb.preserve_fixture(&["--key", key]);
    assert_ne!(a.bundle, b.bundle, "two different stores");
    assert_eq!(a.digest, b.digest);
    assert!(fs::read(&a.bundle).unwrap() == fs::read(&b.bundle).unwrap(), "bundles differ byte-wise");
    assert_eq!(a.preserve["sealed_at"], "2025-11-21T14:00:00Z");
    // The tar inside is fixed too: every member's mtime is the clock, owner custody, mode 0444.
    for mem in bundle_members(&a.bundle) {
        assert_eq!(&mem.header[100..107], b"0000444", "{mem:?} mode");
        assert_eq!(&mem.header[265..272], b"custody", "{mem:?} owner");
        let mtime = u64::from_str_radix(std::str::from_utf8(&mem.header[136..147]).unwrap(), 8).unwrap();
        assert_eq!(mtime, EPOCH as u64, "{mem:?} mtime");
    }

    // Another clock: another bundle.
    let c = Env::with_epoch(EPOCH + 1).preserve_fixture(&["--key", key]);
    assert_ne!(a.digest, c.digest);
    // Another key, same clock: another bundle.
    let d = Env::with_epoch(EPOCH).preserve_fixture(&[]);
    assert_ne!(a.digest, d.digest);
}

#[test]
fn determinism_holds_over_repeated_runs() {
    // Three runs in fresh homes with the same key and clock agree (the sealer is threaded:
    // ordering must not depend on scheduling).
    let keys = Env::new();
    let key = keys.path("k.key");
    keys.run(&["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]).expect(0);
    let key = key.to_str().unwrap();
    let digests: Vec<String> =
        (0..3).map(|_| Env::with_epoch(EPOCH).preserve_fixture(&["--key", key]).digest).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}
