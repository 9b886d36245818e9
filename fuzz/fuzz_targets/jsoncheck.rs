//! Differential: the collector's byte-level JSON validator (`is_valid_json`) against the
//! exact check it replaces, `std::str::from_utf8` + `serde_json::from_str::<IgnoredAny>`.
//! It must never accept what serde_json rejects (a malformed evidence line would pass
//! unreported), and must agree exactly on inputs nesting fewer than 100 levels (its one
//! documented stricter case is nesting deeper than 128).
#![no_main]

use libfuzzer_sys::fuzz_target;

use custody::collect::analyze::is_valid_json;

/// Nesting depth of arrays/objects outside strings (exact for valid JSON).
fn nesting(data: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &c in data {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let fast = is_valid_json(data);
    let exact = std::str::from_utf8(data).is_ok_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok());
    if fast {
        assert!(exact, "is_valid_json accepted what serde_json rejects: {:?}", String::from_utf8_lossy(data));
    }
    if nesting(data) < 100 {
        assert_eq!(fast, exact, "disagreement on {:?}", String::from_utf8_lossy(data));
    }
});
