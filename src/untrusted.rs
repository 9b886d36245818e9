//! Text that did not come from custody, made safe to show on a terminal.
//!
//! Evidence file names, record values, notes, the fields of a signed (possibly forged)
//! manifest, stored object keys and the messages of parse errors that quote them may hold
//! characters a terminal acts on instead of showing: ESC sequences that clear the screen or
//! move the cursor (`x\e[2J…` as a file name, `\e[1A` in a record value), CR and LF that start
//! a forged line ("RESULT: INTACT"), BEL, the C1 controls (U+009B is a one-character CSI), and
//! invisible or bidi formatting characters that make text read other than it is (U+202E
//! turns `exe.txt` around). Every such string is printed through [`Untrusted`], which writes
//! them as visible escapes. JSON output is safe by construction of its own escaping (the
//! binary also writes [`is_escaped`] characters there as `\uXXXX`).
//!
//! # Escape syntax
//!
//! Unambiguous and reversible ([`unescape`] gives back the exact bytes):
//!
//! | written   | stands for |
//! |-----------|------------|
//! | `\\`      | a backslash (every backslash is doubled, so a `\` always starts an escape) |
//! | `\n` `\r` `\t` | LF, CR, TAB |
//! | `\u{h}`   | the character U+h (lower-case hex, no leading zeros): every other character of [`is_escaped`], e.g. `\u{1b}` ESC, `\u{9b}` CSI, `\u{202e}` RIGHT-TO-LEFT OVERRIDE |
//! | `\xHH`    | a byte that is not part of valid UTF-8 (file names are bytes on Unix), two lower-case hex digits |
//!
//! Everything else is written as it is. Escaped characters ([`is_escaped`]): the control
//! characters (C0 U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F), the format characters
//! (general category Cf: bidi embeddings, overrides, isolates and marks, zero-width
//! characters, soft hyphen, BOM, tags…), the line and paragraph separators U+2028/U+2029, and
//! the other default-ignorable code points (invisible when rendered: variation selectors,
//! Hangul fillers…), as of Unicode 16.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;

/// Inclusive ranges of the characters written as `\u{h}` (besides `\n`, `\r`, `\t`), sorted.
/// Cc, Cf, Zl, Zp and Default_Ignorable_Code_Point (Unicode 16 `DerivedCoreProperties.txt`).
const ESCAPED: &[(u32, u32)] = &[
    (0x0000, 0x001f), // C0 controls
    (0x007f, 0x009f), // DEL, C1 controls
    (0x00ad, 0x00ad), // soft hyphen
    (0x034f, 0x034f), // combining grapheme joiner
    (0x0600, 0x0605), // Arabic number signs (Cf)
    (0x061c, 0x061c), // Arabic letter mark (bidi)
    (0x06dd, 0x06dd),
    (0x070f, 0x070f),
    (0x0890, 0x0891),
    (0x08e2, 0x08e2),
    (0x115f, 0x1160), // Hangul fillers (render blank)
    (0x17b4, 0x17b5),
    (0x180b, 0x180f), // Mongolian variation selectors, vowel separator
    (0x200b, 0x200f), // zero-width space/joiners, LRM, RLM
    (0x2028, 0x202e), // line/paragraph separator; LRE, RLE, PDF, LRO, RLO
    (0x2060, 0x206f), // word joiner, invisible operators, LRI, RLI, FSI, PDI, deprecated formats
    (0x3164, 0x3164), // Hangul filler
    (0xfe00, 0xfe0f), // variation selectors
    (0xfeff, 0xfeff), // zero-width no-break space (BOM)
    (0xffa0, 0xffa0), // halfwidth Hangul filler
    (0xfff0, 0xfffb), // unassigned default-ignorable, interlinear annotation
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x1343f), // Egyptian hieroglyph format controls
    (0x1bca0, 0x1bca3), // shorthand format controls
    (0x1d173, 0x1d17a), // musical symbol format controls
    (0xe0000, 0xe0fff), // tags, variation selectors supplement, reserved default-ignorable
];

/// Is `c` written as an escape by [`Untrusted`] (and as `\uXXXX` in the binary's JSON)?
/// See the module documentation for the set.
pub fn is_escaped(c: char) -> bool {
    let c = c as u32;
    if (0x20..0x7f).contains(&c) {
        return false;
    }
    ESCAPED
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// A string (or file name) that did not come from custody: its [`fmt::Display`] writes it
/// with the escapes of the module documentation, so nothing in it acts on a terminal.
/// Width and alignment (`{:<16}`) apply to the escaped text.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(&'a [u8]);

impl<'a> Untrusted<'a> {
    /// A string.
    pub fn new(s: &'a str) -> Self {
        Untrusted(s.as_bytes())
    }
    /// A path: its bytes, with those that are not UTF-8 written as `\xHH` (not replaced, as
    /// `Path::display` does, so two different names never print the same).
    pub fn path(p: &'a Path) -> Self {
        Self::os(p.as_os_str())
    }
    /// An OS string (see [`Untrusted::path`]).
    pub fn os(s: &'a OsStr) -> Self {
        Untrusted(s.as_encoded_bytes())
    }
    /// Bytes that may not be UTF-8 (a cited record): invalid bytes are written as `\xHH`.
    pub fn bytes(b: &'a [u8]) -> Self {
        Untrusted(b)
    }
    fn write_to(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            let valid = chunk.valid();
            let mut start = 0;
            for (i, c) in valid.char_indices() {
                let escape = c == '\\' || is_escaped(c);
                if !escape {
                    continue;
                }
                out.write_str(&valid[start..i])?;
                start = i + c.len_utf8();
                match c {
                    '\\' => out.write_str("\\\\")?,
                    '\n' => out.write_str("\\n")?,
                    '\r' => out.write_str("\\r")?,
                    '\t' => out.write_str("\\t")?,
                    c => write!(out, "\\u{{{:x}}}", c as u32)?,
                }
            }
            out.write_str(&valid[start..])?;
            for b in chunk.invalid() {
                write!(out, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Shorthand for [`Untrusted::new`].
pub fn untrusted(s: &str) -> Untrusted<'_> {
    Untrusted::new(s)
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() && f.precision().is_none() {
            return self.write_to(f);
        }
        let mut s = String::with_capacity(self.0.len());
        self.write_to(&mut s)?;
        f.pad(&s)
    }
}

/// Why [`unescape`] refused its input: the text was not written by [`Untrusted`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not custody's escaped text: {what} at byte {at}")]
pub struct UnescapeError {
    /// What is wrong.
    pub what: &'static str,
    /// Where, as a byte offset into the escaped text.
    pub at: usize,
}

/// The exact bytes that [`Untrusted`] wrote as `text` (the inverse of its escaping): for a
/// responder who needs the real file name or value back from a terminal transcript.
pub fn unescape(text: &str) -> Result<Vec<u8>, UnescapeError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let bad = |what| UnescapeError { what, at: i };
        match b.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).ok_or(bad("`\\x` needs two hex digits"))?;
                if !hex.bytes().all(|h| matches!(h, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(bad("`\\x` needs two lower-case hex digits"));
                }
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad("`\\x` needs two hex digits"))?);
                i += 4;
                continue;
            }
            Some(b'u') => {
                let rest = text.get(i + 2..).unwrap_or("");
                let inner = rest
                    .strip_prefix('{')
                    .and_then(|r| r.split_once('}'))
                    .map(|(h, _)| h)
                    .ok_or(bad("`\\u` needs `{hex}`"))?;
                let ok_hex = !inner.is_empty()
                    && inner.len() <= 6
                    && !inner.starts_with('0')
                    && inner.bytes().all(|h| matches!(h, b'0'..=b'9' | b'a'..=b'f'));
                let c = u32::from_str_radix(inner, 16).ok().and_then(char::from_u32);
                let c = match c {
                    Some('\0') if inner == "0" => '\0',
                    Some(c) if ok_hex => c,
                    _ => return Err(bad("`\\u{…}` is not a character in custody's form")),
                };
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 2 + 1 + inner.len() + 1;
                continue;
            }
            _ => return Err(bad("a backslash that starts no escape")),
        }
        i += 2;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        untrusted(s).to_string()
    }

    #[test]
    fn terminal_controls_and_invisible_formatting_are_escaped() {
        assert_eq!(esc("x\x1b[2J\x1b[H"), r"x\u{1b}[2J\u{1b}[H");
        assert_eq!(esc("a\r\nb\tc\x07"), r"a\r\nb\tc\u{7}");
        assert_eq!(esc("\u{9b}31m \u{85} \u{7f} \0"), r"\u{9b}31m \u{85} \u{7f} \u{0}");
        assert_eq!(esc("evil\u{202e}txt.exe"), r"evil\u{202e}txt.exe");
        for c in ['\u{200e}', '\u{200f}', '\u{061c}', '\u{2066}', '\u{2069}', '\u{202a}', '\u{200b}', '\u{feff}'] {
            assert!(is_escaped(c), "U+{:04X}", c as u32);
        }
        assert!(is_escaped('\u{e0041}'), "tag characters hide text");
        assert!(is_escaped('\u{2028}') && is_escaped('\u{2029}'));
        // Ordinary text, including non-ASCII letters and symbols, is left as it is.
        for s in ["logs/tool_calls.jsonl", "Zürich — 東京 ✓ 🙂", "C:\u{ff3c}agent", "a b ~"] {
            assert_eq!(esc(s), s);
        }
        assert_eq!(esc(r"C:\agent"), r"C:\\agent", "a backslash is doubled");
    }

    #[test]
    fn width_and_alignment_apply_to_the_escaped_text() {
        assert_eq!(format!("[{:<8}]", untrusted("a\tb")), r"[a\tb    ]");
        assert_eq!(format!("[{:>5}]", untrusted("ab")), "[   ab]");
    }

    #[cfg(unix)]
    #[test]
    fn bytes_that_are_not_utf8_are_escaped_not_replaced() {
        use std::os::unix::ffi::OsStrExt;
        let name = OsStr::from_bytes(b"a\xff\xfe\x1b.log");
        let shown = Untrusted::os(name).to_string();
        assert_eq!(shown, r"a\xff\xfe\u{1b}.log");
        assert_eq!(unescape(&shown).unwrap(), name.as_bytes());
    }

    #[test]
    fn escaping_is_reversible_and_its_output_holds_no_escaped_character() {
        // Every character class at once, and the escapes' own syntax as literal text.
        let mut samples: Vec<String> = vec![
            r"\u{1b} \x41 \n \\ \".into(),
            "\\".into(),
            "\u{0}\u{1f}\u{7f}\u{80}\u{9f}\u{a0}\u{ad}".into(),
            "\u{10ffff}\u{e01ef}\u{e0fff}\u{f0000}".into(),
        ];
        // A deterministic sweep of code points (every 97th, plus the table's edges).
        let mut s = String::new();
        for cp in
            (0..0x11_0000u32).step_by(97).chain(ESCAPED.iter().flat_map(|&(a, b)| [a, b, a.wrapping_sub(1), b + 1]))
        {
            if let Some(c) = char::from_u32(cp) {
                s.push(c);
            }
        }
        samples.push(s);
        for s in &samples {
            let shown = esc(s);
            assert!(!shown.chars().any(is_escaped), "{shown:?}");
            assert_eq!(unescape(&shown).unwrap(), s.as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn unescape_refuses_what_untrusted_never_writes() {
        for bad in [r"\", r"\q", r"\u{}", r"\u{01b}", r"\u{1B}", r"\u{d800}", r"\u{110000}", r"\x4", r"\xFF", r"\u1b"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
        assert_eq!(unescape(r"\u{0}").unwrap(), b"\0");
    }
}
