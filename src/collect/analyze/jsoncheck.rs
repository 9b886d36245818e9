//! A fast, allocation-free JSON validator for the lines the scanner does not parse.
//!
//! [`is_valid_json`] answers "would `serde_json` accept these bytes as one JSON value?"
//! without building anything, so that lines a filter does not want can still be checked for
//! being well-formed at a fraction of the cost of `std::str::from_utf8` followed by
//! `serde_json::from_str::<serde::de::IgnoredAny>` (the exact check it stands in for).
//!
//! # Contract
//!
//! The reference is `std::str::from_utf8(bytes).is_ok() &&
//! serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()` with serde_json 1.0.154
//! (`Deserializer::ignore_value` and `SliceRead::ignore_str` in its source):
//!
//! * **Sound:** `is_valid_json(bytes)` is `true` only if the reference is `true`. A wrong
//!   `true` would let a malformed evidence line pass unreported, so this never gives one.
//! * **Complete, except where documented:** it is `true` whenever the reference is `true`,
//!   with one exception, which only costs time (a `false` sends the line to the exact path):
//!   - **nesting deeper than 128 levels of arrays/objects** (`MAX_DEPTH`). serde_json's
//!     `IgnoredAny` path has *no* depth limit in 1.0.154 (`ignore_value` keeps its own heap
//!     stack instead of recursing, and never applies the 128-level `remaining_depth` check
//!     that `from_str::<Value>` does), so the reference accepts e.g. 129 nested `[`…`]`;
//!     this validator keeps its container stack in one `u128` and returns `false` instead.
//!     (In the scanner such a line then takes the exact path, which parses into a `Value`
//!     and so reports it as malformed: "recursion limit exceeded".)
//!
//!   No other case is known; the unit tests and the `jsoncheck` fuzz target check equality
//!   with the reference for everything nested less deeply.
//!
//! # Grammar checked (serde_json 1.0.154, verified against its source)
//!
//! * exactly one value, optionally surrounded by whitespace; whitespace is only space, `\t`,
//!   `\n`, `\r`; empty or whitespace-only input and trailing non-whitespace are rejected;
//! * literals `true`, `false`, `null` (case-sensitive, nothing else);
//! * numbers `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; `IgnoredAny` never converts
//!   them, so arbitrarily long mantissas and exponents (`1e999999`) are accepted;
//! * strings: any byte but `"`, `\` and control bytes `0x00..=0x1F` (`0x7F` is allowed);
//!   escapes `\" \\ \/ \b \f \n \r \t \uXXXX` (hex digits of either case). Escaped
//!   surrogates are *not* checked on this path (`ignore_escape` only consumes four hex
//!   digits), so a lone `\uD800` is accepted, as serde_json does;
//! * arrays and objects without trailing or leading commas; object keys must be strings;
//!   duplicate keys are fine;
//! * the whole input must be valid UTF-8. Outside strings any byte ≥ 0x80 is a syntax error
//!   anyway; inside strings each maximal run of non-ASCII bytes is checked with
//!   `std::str::from_utf8`, which is exact: a byte string is valid UTF-8 iff each of its
//!   maximal non-ASCII runs is (multi-byte sequences never contain ASCII bytes).
//!
//! # How
//!
//! One iterative pass with an explicit container stack (one bit per level in a `u128`),
//! no allocation, no recursion, no indexing that can panic, no `unsafe`. String bodies —
//! most of a telemetry line — are skipped eight bytes at a time with a SWAR test on a `u64`:
//!
//! * a line with no `\`, no control byte and no byte ≥ 0x80 (checked first, in a
//!   vectorised pass over the whole line) only needs the next `"` found;
//! * any other line takes the general path, whose test flags `"`, `\`, control bytes and
//!   non-ASCII bytes in one go; a non-ASCII byte starts a run that is validated with
//!   `std::str::from_utf8` on just that run. (Measured faster than skipping non-ASCII bytes
//!   and running `from_utf8` over the whole line afterwards.)
//!
//! On telemetry lines this runs at roughly 1.5–1.8 times the speed of the reference.

/// Deepest nesting of arrays and objects [`is_valid_json`] follows; deeper input is
/// answered `false` (although serde_json's `IgnoredAny` accepts any depth).
pub(crate) const MAX_DEPTH: usize = 128;

const ONES: u64 = u64::MAX / 255; // 0x0101…01
const HIGH: u64 = ONES << 7; // 0x8080…80

/// Whether `bytes` is one JSON value that serde_json would accept: exactly the lines for
/// which `std::str::from_utf8(bytes)` succeeds and `serde_json::from_str::<IgnoredAny>`
/// then succeeds (serde_json 1.0.154), except that nesting deeper than 128 levels of
/// arrays/objects is answered `false` (serde_json's `IgnoredAny` has no depth limit).
///
/// It never answers `true` for bytes that check rejects (sound), so a `false` only means
/// "take the exact path". The one case in which it is stricter than serde_json is that
/// depth limit; the grammar follows serde_json exactly: whitespace is space, `\t`, `\n`,
/// `\r` only; numbers without leading zeros but of any length and exponent; strings
/// without raw control bytes, with the JSON escapes (lone `\uD800` surrogates accepted,
/// as serde_json does when ignoring); keys must be strings, duplicates are fine; nothing
/// may follow the value but whitespace. Runs in linear time, without allocating, and never
/// panics.
///
/// A drop-in for the JSON branch of the scanner's `line_is_clean`:
/// `is_valid_json(line)` implies `line_is_clean(false, line)`, and they agree on every line
/// nested at most 128 deep.
pub fn is_valid_json(bytes: &[u8]) -> bool {
    if is_plain(bytes) {
        validate::<true>(bytes)
    } else {
        validate::<false>(bytes)
    }
}

/// Whether `b` has no byte that needs a closer look inside a string: no `\`, no control
/// byte, no byte ≥ 0x80. Branch-free over the whole slice so that it vectorises; most
/// machine-written telemetry lines are plain.
#[inline]
fn is_plain(b: &[u8]) -> bool {
    // `c - 0x20` wraps the control bytes above 0x5F together with the bytes ≥ 0x80: one
    // unsigned compare for both.
    !b.iter().fold(false, |acc, &c| acc | (c.wrapping_sub(0x20) >= 0x60) | (c == b'\\'))
}

/// The validator proper. `PLAIN` promises that [`is_plain`] holds for `b`: string bodies
/// then end at the next `"`, and only that is searched for.
#[inline(always)]
fn validate<const PLAIN: bool>(b: &[u8]) -> bool {
    let mut i = 0;
    // Container stack: bit 0 is the innermost container, 1 = object, 0 = array.
    let mut stack: u128 = 0;
    let mut depth = 0usize;
    'value: loop {
        // A value is expected at `i` (after whitespace).
        i = skip_ws(b, i);
        let Some(&c) = b.get(i) else { return false };
        match c {
            b'"' => match skip_string::<PLAIN>(b, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            b'{' | b'[' => {
                if depth == MAX_DEPTH {
                    return false;
                }
                let is_object = c == b'{';
                depth += 1;
                stack = (stack << 1) | u128::from(is_object);
                i = skip_ws(b, i + 1);
                match b.get(i) {
                    // Empty container: a complete value, go on after it.
                    Some(b'}') if is_object => {
                        i += 1;
                        depth -= 1;
                        stack >>= 1;
                    }
                    Some(b']') if !is_object => {
                        i += 1;
                        depth -= 1;
                        stack >>= 1;
                    }
                    _ if is_object => match skip_key::<PLAIN>(b, i) {
                        Some(next) => {
                            i = next;
                            continue 'value;
                        }
                        None => return false,
                    },
                    _ => continue 'value,
                }
            }
            b't' => match b.get(i..i + 4) {
                Some(b"true") => i += 4,
                _ => return false,
            },
            b'f' => match b.get(i..i + 5) {
                Some(b"false") => i += 5,
                _ => return false,
            },
            b'n' => match b.get(i..i + 4) {
                Some(b"null") => i += 4,
                _ => return false,
            },
            b'-' | b'0'..=b'9' => match skip_number(b, i) {
                Some(end) => i = end,
                None => return false,
            },
            _ => return false,
        }
        // A value ended at `i`: close containers until a comma asks for the next value.
        loop {
            i = skip_ws(b, i);
            if depth == 0 {
                return i == b.len();
            }
            let in_object = stack & 1 == 1;
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if in_object {
                        match skip_key::<PLAIN>(b, skip_ws(b, i)) {
                            Some(next) => i = next,
                            None => return false,
                        }
                    }
                    continue 'value;
                }
                Some(b'}') if in_object => {}
                Some(b']') if !in_object => {}
                _ => return false,
            }
            i += 1;
            depth -= 1;
            stack >>= 1;
        }
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

/// An object key and its colon starting at `i` (no whitespace before it): the index after
/// the `:`.
#[inline(always)]
fn skip_key<const PLAIN: bool>(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(b, skip_string::<PLAIN>(b, i + 1)?);
    (b.get(i) == Some(&b':')).then_some(i + 1)
}

/// A number starting at `i` (at `-` or a digit): the index after it.
#[inline(always)]
fn skip_number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = skip_digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = skip_digits(b, start);
        if i == start {
            return None;
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let start = i;
        i = skip_digits(b, start);
        if i == start {
            return None;
        }
    }
    // Whatever follows (a digit after a leading `0` as in "01", a second `.`, a letter) is
    // judged by the caller as the next token, and rejected there, as serde_json does.
    Some(i)
}

#[inline(always)]
fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = b.get(i) {
        i += 1;
    }
    i
}

/// The bytes of a `u64` (little-endian lanes) that are `"`, `\`, `< 0x20` or `≥ 0x80`, as
/// their high bits. Only the lowest flagged lane is guaranteed exact (a borrow from a lane
/// that matched can flag the lanes above it), which is all the callers use.
#[inline(always)]
fn special_lanes(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let has_quote = quote.wrapping_sub(ONES) & !quote;
    let has_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let has_control = w.wrapping_sub(ONES * 0x20) & !w;
    (has_quote | has_backslash | has_control | w) & HIGH
}

/// The bytes of a `u64` that are `"`, as their high bits (lowest flagged lane exact).
#[inline(always)]
fn quote_lanes(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    quote.wrapping_sub(ONES) & !quote & HIGH
}

/// The body of a string whose opening quote is just before `i`: the index after its closing
/// quote, or `None` if the string is malformed or unterminated.
#[inline(always)]
fn skip_string<const PLAIN: bool>(b: &[u8], mut i: usize) -> Option<usize> {
    if PLAIN {
        // Only the closing quote matters. Most strings are short (keys, ids): look at the
        // first 64 bytes with SWAR words; a longer string is searched with memchr.
        for _ in 0..8 {
            let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) else { break };
            let m = quote_lanes(u64::from_le_bytes(*chunk));
            if m != 0 {
                return Some(i + (m.trailing_zeros() / 8) as usize + 1);
            }
            i += 8;
        }
        return memchr::memchr(b'"', b.get(i..)?).map(|p| i + p + 1);
    }
    loop {
        // Eight bytes at a time while eight remain; the lowest flagged lane is the next
        // byte that needs a look (reading past the closing quote is harmless).
        while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            let w = u64::from_le_bytes(*chunk);
            let m = if PLAIN { quote_lanes(w) } else { special_lanes(w) };
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = skip_escape(b, i + 1)?,
            0x00..=0x1f => return None,
            0x80..=0xff => {
                // A maximal run of non-ASCII bytes: it ends at an ASCII byte (or the end of
                // input) and must be whole UTF-8 characters.
                let rest = b.get(i..)?;
                let len = rest.iter().position(|&c| c < 0x80).unwrap_or(rest.len());
                std::str::from_utf8(rest.get(..len)?).ok()?;
                i += len;
            }
            _ => i += 1,
        }
    }
}

/// An escape whose backslash is just before `i`: the index after it.
#[inline]
fn skip_escape(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => {
            let hex = b.get(i + 1..i + 5)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 5)
        }
        _ => None,
    }
}

/// Nesting depth of arrays and objects outside strings (exact for valid JSON): the oracle the
/// differential tests and the `jsoncheck` fuzz target use to tell the one case where
/// [`is_valid_json`] may say `false` although serde_json accepts (deeper than 128 levels).
#[doc(hidden)]
pub fn max_nesting(b: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &c in b {
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

/// Whether a head of content (starting at its first non-blank byte, a `{`) is JSON Lines
/// rather than one document: its first line is one complete JSON value, or — a JSON Lines file
/// whose first line is malformed — the first line is more than a lone `{`/`[` and most of the
/// next complete lines (up to 50) are complete JSON objects. A pretty-printed document opens
/// with a lone `{` (serde_json, `JSON.stringify`, Python's `json.dumps` all write it so), and
/// its inner lines end with `,` or are not values on their own.
pub(crate) fn looks_like_json_lines(body: &[u8]) -> bool {
    let mut lines = body.split(|b| *b == b'\n');
    let first = lines.next().unwrap_or_default();
    let valid = |l: &[u8]| is_valid_json(l) || serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok();
    if valid(first) {
        return true;
    }
    if first.trim_ascii().len() <= 1 {
        return false;
    }
    // Only complete lines: the head may end inside one.
    let complete = body.iter().rposition(|b| *b == b'\n').map_or(&[][..], |end| &body[..end]);
    let (mut seen, mut good) = (0usize, 0usize);
    for l in complete.split(|b| *b == b'\n').skip(1).map(<[u8]>::trim_ascii).filter(|l| !l.is_empty()).take(50) {
        seen += 1;
        if l.first() == Some(&b'{') && valid(l) {
            good += 1;
        }
    }
    good > 0 && good * 2 > seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact check `is_valid_json` stands in for.
    fn serde_accepts(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok_and(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok())
    }

    /// Soundness always; equality unless the input nests deeper than `MAX_DEPTH`.
    fn check(b: &[u8]) {
        let fast = is_valid_json(b);
        let exact = serde_accepts(b);
        assert_eq!(fast, validate::<false>(b), "the general path disagrees with the plain one");
        assert!(!fast || exact, "unsound: true for {:?}", String::from_utf8_lossy(b));
        if max_nesting(b) <= MAX_DEPTH {
            assert_eq!(fast, exact, "disagrees on {:?} ({:02x?})", String::from_utf8_lossy(b), b);
        }
    }

    const TABLE: &[(&[u8], bool)] = &[
        // Empty, whitespace, trailing characters.
        (b"", false),
        (b" ", false),
        (b" \t\r\n", false),
        (b"null", true),
        (b" \t\r\n null \t\r\n", true),
        (b"\x0cnull", false), // form feed is not JSON whitespace
        (b"null\x0c", false),
        (b"\x0bnull", false),
        (b"null\x00", false),
        (b"\xc2\xa0null", false),     // NBSP
        (b"\xef\xbb\xbfnull", false), // BOM
        (b"null null", false),
        (b"{}{}", false),
        (b"{} x", false),
        (b"1 2", false),
        (b"\"a\"\"b\"", false),
        // Literals.
        (b"true", true),
        (b"false", true),
        (b"tru", false),
        (b"truee", false),
        (b"True", false),
        (b"nul", false),
        (b"NULL", false),
        (b"fals", false),
        (b"falsy", false),
        (b"[true,false,null]", true),
        (b"[truefalse]", false),
        (b"[nan]", false),
        (b"Infinity", false),
        // Numbers.
        (b"0", true),
        (b"-0", true),
        (b"7", true),
        (b"-7", true),
        (b"1234567890", true),
        (b"00", false),
        (b"01", false),
        (b"-01", false),
        (b"-", false),
        (b"--1", false),
        (b"+1", false),
        (b"-a", false),
        (b".5", false),
        (b"5.", false),
        (b"5.e3", false),
        (b"0.5", true),
        (b"-0.0", true),
        (b"1.25e3", true),
        (b"1E3", true),
        (b"1e+3", true),
        (b"1e-3", true),
        (b"1e", false),
        (b"1e+", false),
        (b"1e-", false),
        (b"1e+-3", false),
        (b"1.5.3", false),
        (b"1e3.5", false),
        (b"1e3e3", false),
        (b"0x10", false),
        (b"0e0", true),
        (b"0.0e-00", true),
        (b"1e999999999999999999", true), // never converted by IgnoredAny
        (b"-1e-999999999999999999", true),
        (b"123456789012345678901234567890123456789012345678901234567890", true),
        (b"0.000000000000000000000000000000000000000000000000000000001", true),
        (b"[1,-2.5e10,0]", true),
        (b"[01]", false),
        (b"[1.]", false),
        (b"[-]", false),
        (b"{\"a\":-}", false),
        (b"[1 2]", false),
        (b"1\xc3\xa9", false),
        // Strings.
        (b"\"\"", true),
        (b"\"abc\"", true),
        (b"\"abc", false),
        (b"\"", false),
        (b"\"a\x00b\"", false),
        (b"\"a\x1fb\"", false),
        (b"\"a\tb\"", false),
        (b"\"a\nb\"", false),
        (b"\"a\x7fb\"", true), // DEL is not a control byte for JSON
        (b"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", true),
        (b"\"\\a\"", false),
        (b"\"\\x41\"", false),
        (b"\"\\'\"", false),
        (b"\"\\0\"", false),
        (b"\"\\", false),
        (b"\"\\\"", false),
        (b"\"\\u0041\"", true),
        (b"\"\\u00e9\\u00C9\\uFFFF\\uabcd\"", true),
        (b"\"\\u004\"", false),
        (b"\"\\u004g\"", false),
        (b"\"\\u00\"", false),
        (b"\"\\u", false),
        (b"\"\\u0041", false),
        (b"\"\\U0041\"", false),
        (b"\"\\uD800\"", true), // lone surrogates are not checked when ignoring
        (b"\"\\uDC00\\uD800\"", true),
        (b"\"\\ud83d\\ude00\"", true),
        // UTF-8.
        (b"\"caf\xc3\xa9\"", true),
        (b"\"\xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac\"", true),
        (b"\"\xc3\"", false),   // truncated sequence before the quote
        (b"\"\xc3\xa9", false), // unterminated
        (b"\"\xc3", false),
        (b"\"\x80\"", false), // lone continuation byte
        (b"\"\xff\"", false),
        (b"\"\xfe\"", false),
        (b"\"\xc0\x80\"", false),         // overlong
        (b"\"\xed\xa0\x80\"", false),     // encoded surrogate
        (b"\"\xf4\x90\x80\x80\"", false), // above U+10FFFF
        (b"\"\xe2\x82\"", false),
        (b"\"\xe2\x82\xac\xac\"", false),
        (b"\"0123456789abcdef\xc3\xa90123456789abcdef\"", true),
        (b"\"0123456789abcdef\xc30123456789abcdef\"", false),
        (b"\"0123456789abcdef\x010123456789abcdef\"", false),
        (b"\"0123456789abcdef\\q0123456789abcdef\"", false),
        (b"\xc3\xa9", false),
        // Arrays.
        (b"[]", true),
        (b"[ ]", true),
        (b"[\t\r\n]", true),
        (b"[", false),
        (b"]", false),
        (b"[[]", false),
        (b"[]]", false),
        (b"[1,]", false),
        (b"[,1]", false),
        (b"[,]", false),
        (b"[1,,2]", false),
        (b"[1 , 2 ]", true),
        (b"[[[]],[{}]]", true),
        (b"[}", false),
        (b"[1}", false),
        (b"[1:2]", false),
        // Objects.
        (b"{}", true),
        (b"{ }", true),
        (b"{", false),
        (b"}", false),
        (b"{\"a\":1}", true),
        (b" { \"a\" : 1 , \"b\" : [ ] } ", true),
        (b"{\"a\":1,\"a\":2}", true), // duplicate keys are fine
        (b"{\"a\"}", false),
        (b"{\"a\":}", false),
        (b"{\"a\" 1}", false),
        (b"{\"a\"::1}", false),
        (b"{\"a\":1,}", false),
        (b"{,\"a\":1}", false),
        (b"{,}", false),
        (b"{\"a\":1 \"b\":2}", false),
        (b"{a:1}", false),
        (b"{1:1}", false),
        (b"{null:1}", false),
        (b"{'a':1}", false),
        (b"{\"a\":1]", false),
        (b"{\"a\\u0041\":{\"\":[]}}", true),
        (b"{\"a\x01\":1}", false),
        (b"{\"\xc3\xa9\":1}", true),
        (b"{\"\xc3\":1}", false),
        (b"{\"a\":1}}", false),
        // Comments and other extensions serde_json does not accept.
        (b"[1]//c", false),
        (b"/*c*/[1]", false),
        (b"'a'", false),
    ];

    #[test]
    fn table_agrees_with_serde_and_validator() {
        for &(input, expected) in TABLE {
            let text = String::from_utf8_lossy(input);
            assert_eq!(serde_accepts(input), expected, "table is wrong about serde for {text:?}");
            assert_eq!(is_valid_json(input), expected, "validator is wrong for {text:?}");
            assert_eq!(validate::<false>(input), expected, "general path is wrong for {text:?}");
        }
    }

    /// `levels` times `open`, a `1`, `levels` times `close`.
    fn nested(levels: usize, open: &[u8], close: &[u8]) -> Vec<u8> {
        [open.repeat(levels), b"1".to_vec(), close.repeat(levels)].concat()
    }

    #[test]
    fn depth_limit_is_the_one_documented_disagreement() {
        // Up to MAX_DEPTH containers: exact agreement.
        for (open, close, per_level) in [(&b"["[..], &b"]"[..], 1), (b"{\"k\":", b"}", 1), (b"{\"k\":[", b"]}", 2)] {
            for levels in [1, 2, 63, 64, MAX_DEPTH / per_level - 1, MAX_DEPTH / per_level] {
                let v = nested(levels, open, close);
                assert!(max_nesting(&v) <= MAX_DEPTH);
                assert!(
                    is_valid_json(&v) && serde_accepts(&v),
                    "{levels} levels of {:?}",
                    String::from_utf8_lossy(open)
                );
            }
        }
        // Deeper: serde_json's IgnoredAny has no depth limit; the validator says false.
        for levels in [MAX_DEPTH + 1, MAX_DEPTH + 2, 1000, 100_000] {
            for (open, close) in [(&b"["[..], &b"]"[..]), (b"{\"a\":", b"}")] {
                let deep = nested(levels, open, close);
                assert!(serde_accepts(&deep), "serde_json 1.0.154's IgnoredAny accepts depth {levels}");
                assert!(!is_valid_json(&deep));
            }
        }
        // Malformed deep input is rejected by both.
        let bad = b"[".repeat(100_000);
        assert!(!is_valid_json(&bad) && !serde_accepts(&bad));
    }

    /// Realistic lines: OTLP span export, OPA decision log, tool-call log with escapes and
    /// non-ASCII text, and a number-heavy line.
    const SEEDS: &[&[u8]] = &[
        br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"agent-runtime"}}]},"scopeSpans":[{"scope":{"name":"agent-runtime"},"spans":[{"traceId":"288ebc90a88f6b0c93a9c58b2f515d43","spanId":"eee2e04b3827ac77","parentSpanId":"","name":"invoke_agent","kind":1,"startTimeUnixNano":"1763700000000000000","endTimeUnixNano":"1763700000000900000","attributes":[{"key":"gen_ai.agent.id","value":{"stringValue":"support-triage-agent"}},{"key":"retries","value":{"intValue":"3"}}],"status":{}}]}]}]}"#,
        br#"{"decision_id":"75105beecc7dec7af31302114d7ed392","path":"agent/tools/allow","timestamp":"2025-11-21T04:40:00Z","input":{"session_id":"sess-fffc1ef5ded9aabc","tool":"send_email","principal":"svc-ticketing@prod"},"result":true,"bundles":{"agent-policy":{"revision":"bundle-2026.11.2"}},"labels":{"id":"05e4ad76838fbb55","version":"0.70.0"},"metrics":null}"#,
        "{\"ts\":1763700000.001,\"msg\":\"caf\u{e9} \u{20ac}12 \u{65e5}\u{672c}\u{8a9e} \u{1f600}\",\"esc\":\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\ud83d\\ude00\",\"args\":{\"q\":\"r\u{e9}sum\u{e9}\"},\"ok\":false}".as_bytes(),
        br#" [ -0.5e-3 , 1E+9 , 0 , -12 , 3.25 , [ ] , { } , "x" ] "#,
    ];

    const INTERESTING: &[u8] = &[
        b'"', b'\\', b'}', b']', b',', b':', 0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xff, b' ', b'0', b'-', b'e', b'u', b'{',
        b'[',
    ];

    #[test]
    fn mutations_of_realistic_lines_agree_with_serde() {
        let mut checked = 0usize;
        for seed in SEEDS {
            assert!(is_valid_json(seed) && serde_accepts(seed));
            for i in 0..=seed.len() {
                // Truncation.
                check(&seed[..i]);
                checked += 1;
                if i == seed.len() {
                    break;
                }
                // Deletion.
                let mut v = seed.to_vec();
                v.remove(i);
                check(&v);
                checked += 1;
                for &x in INTERESTING {
                    // Replacement.
                    let mut v = seed.to_vec();
                    v[i] = x;
                    check(&v);
                    // Insertion.
                    let mut v = seed.to_vec();
                    v.insert(i, x);
                    check(&v);
                    checked += 2;
                }
            }
        }
        assert!(checked > 10_000);
    }

    /// Random token soup, biased towards JSON, from a fixed-seed xorshift generator.
    #[test]
    fn random_token_sequences_agree_with_serde() {
        const TOKENS: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b"\"k\":",
            b"\"v\"",
            b",",
            b":",
            b" ",
            b"\t",
            b"\n",
            b"\r",
            b"\x0c",
            b"0",
            b"1",
            b"9",
            b"-",
            b"+",
            b".",
            b"e",
            b"E",
            b"true",
            b"false",
            b"null",
            b"nul",
            b"\\",
            b"\\u",
            b"\\u00e9",
            b"\\uD800",
            b"\\n",
            b"\\x",
            b"u",
            b"a",
            b"A",
            b"f",
            b"\xc3\xa9",
            b"\xc3",
            b"\xa9",
            b"\xe2\x82\xac",
            b"\xe2\x82",
            b"\xf0\x9f\x98\x80",
            b"\xff",
            b"\x00",
            b"\x1f",
            b"\x7f",
            b"0123456789abcdef",
            b"\"0123456789abcdef\"",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut v = Vec::new();
        let mut valid = 0usize;
        for _ in 0..300_000 {
            v.clear();
            let n = next() % 24;
            for _ in 0..n {
                v.extend_from_slice(TOKENS[(next() % TOKENS.len() as u64) as usize]);
            }
            check(&v);
            valid += usize::from(is_valid_json(&v));
        }
        // The generator must reach the accepting side too, not only garbage.
        assert!(valid > 1000, "only {valid} valid inputs generated");
    }

    /// Strings of every length around the SWAR words and the switch to memchr (64 bytes),
    /// in plain and general lines, closed or not, with a special byte at every position:
    /// the validator agrees with serde_json on each.
    #[test]
    fn long_strings_agree_with_serde_at_every_length() {
        let mut checked = 0usize;
        for len in 0..=150usize {
            let body = "a".repeat(len);
            for (pre, post) in [("\"", "\""), ("[\"", "\"]"), ("{\"k\":\"", "\"}"), ("{\"", "\":1}")] {
                let line = format!("{pre}{body}{post}");
                assert!(is_valid_json(line.as_bytes()), "{line}");
                check(line.as_bytes());
                // Unterminated: the closing quote cut off.
                let cut = format!("{pre}{body}");
                check(cut.as_bytes());
                checked += 2;
            }
            for pos in [0, len / 2, len.saturating_sub(1), len] {
                for x in [b'"', b'\\', 0x01, 0x1f, 0x7f, 0x80, 0xc3, b'n', b'u'] {
                    let mut v = format!("[\"{body}\",\"{body}\"]").into_bytes();
                    if let Some(slot) = v.get_mut(2 + pos) {
                        *slot = x;
                    }
                    check(&v);
                    let mut ins = format!("[\"{body}\"]").into_bytes();
                    ins.insert(2 + pos, x);
                    check(&ins);
                    checked += 2;
                }
            }
        }
        assert!(checked > 5000);
    }

    #[test]
    fn swar_lanes_flag_exactly_the_special_bytes() {
        for byte in 0..=255u8 {
            let special = byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte);
            for lane in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[lane] = byte;
                let w = u64::from_le_bytes(chunk);
                let m = special_lanes(w);
                if special {
                    assert_eq!(m.trailing_zeros() as usize / 8, lane, "byte {byte:#04x} lane {lane}");
                } else {
                    assert_eq!(m, 0, "byte {byte:#04x} lane {lane}");
                }
                let q = quote_lanes(w);
                if byte == b'"' {
                    assert_eq!(q.trailing_zeros() as usize / 8, lane, "quote lane {lane}");
                } else {
                    assert_eq!(q, 0, "byte {byte:#04x} lane {lane}");
                }
                assert_eq!(is_plain(&chunk), !special || byte == b'"', "byte {byte:#04x}");
            }
        }
    }

    /// Throughput against the exact check over real JSON Lines files. Run with
    /// `CUSTODY_JSONCHECK_FILES="a.jsonl b.jsonl" cargo test --release --lib jsoncheck --
    /// --ignored --nocapture throughput`. Prints MB/s, asserts only agreement.
    /// `CUSTODY_JSONCHECK_ONLY=fast|exact|none` runs one side only, 5 rounds, for
    /// `perf stat -e cycles:u` on a busy machine.
    #[test]
    #[ignore]
    fn throughput_on_corpus_files() {
        use std::time::Instant;
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let cap: usize = var("CUSTODY_JSONCHECK_MAX_BYTES").parse().unwrap_or(256 << 20);
        let only = var("CUSTODY_JSONCHECK_ONLY");
        for path in var("CUSTODY_JSONCHECK_FILES").split_whitespace() {
            let mut data = std::fs::read(path).expect("read corpus file");
            data.truncate(cap);
            let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
            let mb = lines.iter().map(|l| l.len()).sum::<usize>() as f64 / 1e6;
            if !only.is_empty() {
                let mut n = 0;
                for _ in 0..5 {
                    n += match only.as_str() {
                        "fast" => lines.iter().filter(|l| is_valid_json(l)).count(),
                        "exact" => lines.iter().filter(|l| serde_accepts(l)).count(),
                        _ => lines.iter().filter(|l| l.len() > 1).count(),
                    };
                }
                println!("{path}: {only}: {n} of 5 x {} lines, 5 x {mb:.1} MB", lines.len());
                continue;
            }
            for round in 0..3 {
                let t = Instant::now();
                let fast = lines.iter().filter(|l| is_valid_json(l)).count();
                let fast_s = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let exact = lines.iter().filter(|l| serde_accepts(l)).count();
                let exact_s = t.elapsed().as_secs_f64();
                assert_eq!(fast, exact);
                println!(
                    "{path} round {round}: {} lines, {mb:.1} MB: is_valid_json {:.0} MB/s, \
                     from_utf8+serde IgnoredAny {:.0} MB/s ({:.2}x)",
                    lines.len(),
                    mb / fast_s,
                    mb / exact_s,
                    exact_s / fast_s
                );
            }
        }
    }
}
