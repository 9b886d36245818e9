//! Differential: the collector's byte-level JSON validator (`is_valid_json`) against the
//! exact check it replaces, `std::str::from_utf8` + `serde_json::from_str::<IgnoredAny>`.
//! It must never accept what serde_json rejects (a malformed evidence line would pass
//! unreported), and must agree exactly on inputs nesting fewer than 100 levels (its one
//! documented stricter case is nesting deeper than 128).
#![no_main]

use libfuzzer_sys::fuzz_target;

use custody::collect::analyze::{is_valid_json, max_nesting};

fuzz_target!(|data: &[u8]| {
    let fast = is_valid_json(data);
    let exact = std::str::from_utf8(data).is_ok_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok());
    if fast {
        assert!(exact, "is_valid_json accepted what serde_json rejects: {:?}", String::from_utf8_lossy(data));
    }
    if max_nesting(data) < 100 {
        assert_eq!(fast, exact, "disagreement on {:?}", String::from_utf8_lossy(data));
    }
});
