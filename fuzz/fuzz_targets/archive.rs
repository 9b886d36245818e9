//! The archive reader on arbitrary *decompressed* bytes: the input is taken as the tar stream
//! and compressed on the fly (fast level, one frame, checksum), so libFuzzer explores tar
//! headers, names, sizes, padding and end markers instead of fighting zstd's checksum. The
//! whole verifier runs on it (envelope, manifest, blob and journal checks included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut e = match zstd::stream::write::Encoder::new(Vec::new(), 1) {
        Ok(e) => e,
        Err(_) => return,
    };
    let _ = e.include_checksum(true);
    if std::io::Write::write_all(&mut e, data).is_err() {
        return;
    }
    let Ok(z) = e.finish() else { return };
    let opts = custody::verify::Options::default();
    let trust = custody::verify::Trust::default();
    let c = custody::verify::check_bundle(&z[..], &trust, &opts, None);
    // Nothing without a trusted signer can be intact.
    assert!(c.findings.iter().any(|f| f.level == custody::verify::Level::Error));
});
