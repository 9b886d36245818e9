//! The archive reader on arbitrary *compressed* bytes (zstd framing, bombs, truncation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = custody::read::archive::Limits::default();
    let _ = custody::read::archive::read_archive(data, &limits, None);
});
