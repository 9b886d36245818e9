//! C2SP signed notes (<https://c2sp.org/signed-note>), the envelope of a checkpoint: a UTF-8
//! text ending in a newline, a blank line, then signature lines `— <key name> <base64(key ID
//! || signature)>`. The text is what is signed, so anyone can read what a key vouched for
//! without custody; each signer adds one line, so a witness cosigns by appending its own.
//!
//! Parsing is strict and bounded (untrusted input): valid UTF-8, no control character but the
//! newline, key names without spaces or `+`, canonical padded standard base64, at most
//! [`MAX_SIGNATURES`] lines. Which lines count is the reader's business (a line from a key
//! it does not know is ignored, as the spec says; see `crate::read::checkpoint`).

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::digest::Sha256;

/// Signature type of an Ed25519 note signature (the signer's own statement).
pub const ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 cosignature (c2sp.org/tlog-cosignature).
pub const COSIGNATURE_V1: u8 = 0x04;
/// At most this many signature lines (the spec asks to accept at least 16).
pub const MAX_SIGNATURES: usize = 64;

/// Why a note was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NoteInvalid(pub String);

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key ID the line carries.
    pub key_id: [u8; 4],
    /// The bytes after the key ID (a signature, a timestamp and a signature, …).
    pub sig: Vec<u8>,
}

/// A parsed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, with its final newline (not the blank line).
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

/// Key names: non-empty, no Unicode space, no `+` (they end at the space before the base64).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key ID of an Ed25519 key of signature type `typ` under `name`: the first 4 bytes of
/// SHA-256(name || 0x0A || typ || 32-byte public key).
pub fn key_id(name: &str, typ: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut m = Vec::with_capacity(name.len() + 34);
    m.extend_from_slice(name.as_bytes());
    m.push(b'\n');
    m.push(typ);
    m.extend_from_slice(key.as_bytes());
    let h = Sha256::of(&m);
    [h.0[0], h.0[1], h.0[2], h.0[3]]
}

/// A signature line: `— name base64(key_id || sig)` and a newline.
pub fn signature_line(name: &str, key_id: [u8; 4], sig: &[u8]) -> String {
    let mut b = Vec::with_capacity(4 + sig.len());
    b.extend_from_slice(&key_id);
    b.extend_from_slice(sig);
    format!("\u{2014} {name} {}\n", base64::engine::general_purpose::STANDARD.encode(b))
}

/// What a cosignature/v1 signs: `cosignature/v1\ntime <timestamp>\n` and the note's text.
pub fn cosigned_message(timestamp: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

impl Note {
    /// Parse a note of at most `max` bytes.
    pub fn parse(bytes: &[u8], max: usize) -> Result<Note, NoteInvalid> {
        if bytes.len() > max {
            return Err(NoteInvalid(format!("{} bytes, above the limit of {max}", bytes.len())));
        }
        let s = std::str::from_utf8(bytes).map_err(|e| NoteInvalid(format!("not UTF-8 ({e})")))?;
        if let Some((i, c)) = s.char_indices().find(|&(_, c)| c.is_control() && c != '\n') {
            return Err(NoteInvalid(format!(
                "control character U+{:04X} at byte {i}: a signed note holds none but the newline",
                c as u32
            )));
        }
        // The text ends at the last blank line: everything after it is signature lines.
        let Some(blank) = s.rfind("\n\n") else {
            return Err(NoteInvalid(
                "no blank line followed by signature lines (`\u{2014} <name> <base64>`): not a signed note".into(),
            ));
        };
        let (text, rest) = (&s[..blank + 1], &s[blank + 2..]);
        if rest.is_empty() {
            return Err(NoteInvalid("no signature line after the blank line".into()));
        }
        let Some(rest) = rest.strip_suffix('\n') else {
            return Err(NoteInvalid("the last signature line does not end with a newline".into()));
        };
        let mut signatures = Vec::new();
        for (n, line) in rest.split('\n').enumerate() {
            if n >= MAX_SIGNATURES {
                return Err(NoteInvalid(format!("more than {MAX_SIGNATURES} signature lines")));
            }
            signatures.push(parse_line(line).map_err(|m| NoteInvalid(format!("signature line {}: {m}", n + 1)))?);
        }
        Ok(Note { text: text.to_string(), signatures })
    }

    /// The note's bytes: its text, a blank line, its signature lines.
    pub fn render(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for l in &self.signatures {
            s.push_str(&signature_line(&l.name, l.key_id, &l.sig));
        }
        s
    }

    /// The lines whose name and key ID are those of `key` as a signer of type `typ` (under
    /// `name` if given, else under the name each line carries).
    pub fn lines_of<'a>(
        &'a self,
        name: Option<&'a str>,
        typ: u8,
        key: &'a VerifyingKey,
    ) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        self.signatures
            .iter()
            .filter(move |l| name.map_or(true, |n| l.name == n) && l.key_id == key_id(&l.name, typ, key))
    }

    /// Does `line` hold a valid Ed25519 signature by `key` over the text?
    pub fn verify_ed25519(&self, line: &NoteSignature, key: &VerifyingKey) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(line.sig.as_slice()) else { return false };
        key.verify_strict(self.text.as_bytes(), &Signature::from_bytes(&sig)).is_ok()
    }

    /// The timestamp of `line` if it is a valid cosignature/v1 by `key` over the text (8-byte
    /// big-endian time, at most 2^63 - 1, then the Ed25519 signature).
    pub fn verify_cosignature(&self, line: &NoteSignature, key: &VerifyingKey) -> Option<u64> {
        let (ts, sig) = line.sig.split_first_chunk::<8>()?;
        let ts = u64::from_be_bytes(*ts);
        let sig = <[u8; 64]>::try_from(sig).ok()?;
        if ts > i64::MAX as u64 {
            return None;
        }
        key.verify_strict(&cosigned_message(ts, &self.text), &Signature::from_bytes(&sig)).ok().map(|_| ts)
    }
}

fn parse_line(line: &str) -> Result<NoteSignature, String> {
    let Some(rest) = line.strip_prefix("\u{2014} ") else {
        return Err("does not start with an em dash (U+2014) and a space".into());
    };
    let Some((name, b64)) = rest.split_once(' ') else {
        return Err("no space between the key name and the signature".into());
    };
    if !valid_name(name) {
        return Err("the key name is empty or holds a space or `+`".into());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the signature is not canonical padded base64 ({e})"))?;
    let Some((id, sig)) = raw.split_first_chunk::<4>() else {
        return Err("the signature is shorter than its 4-byte key ID".into());
    };
    if sig.is_empty() {
        return Err("the signature holds a key ID and nothing else".into());
    }
    Ok(NoteSignature { name: name.to_string(), key_id: *id, sig: sig.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_round_trips_and_hostile_ones_are_refused() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let text = "custody/00\n1\n";
        let sig = ed25519_dalek::Signer::sign(&key, text.as_bytes()).to_bytes();
        let id = key_id("custody/00", ED25519, &key.verifying_key());
        let bytes = format!("{text}\n{}", signature_line("custody/00", id, &sig));
        let n = Note::parse(bytes.as_bytes(), 1 << 16).unwrap();
        assert_eq!(n.render(), bytes);
        let vk = key.verifying_key();
        let line = n.lines_of(Some("custody/00"), ED25519, &vk).next().unwrap();
        assert!(n.verify_ed25519(line, &vk));
        assert_eq!(n.lines_of(Some("custody/00"), COSIGNATURE_V1, &vk).count(), 0);
        for bad in [
            "no blank line\n".to_string(),
            format!("{text}\n"),
            format!("{text}\n\u{2014} name AAAA\n"),
            format!("{text}\n\u{2014} na+me AAAAAAA=\n"),
            format!("{text}\n- name AAAAAAA=\n"),
            format!("{text}\n\u{2014} name AAAAAAA="),
            format!("a\tb\n{}", &bytes[text.len()..]),
        ] {
            assert!(Note::parse(bad.as_bytes(), 1 << 16).is_err(), "{bad:?}");
        }
        assert!(Note::parse(&[0xff, b'\n', b'\n'], 1 << 16).is_err());
        assert!(Note::parse(bytes.as_bytes(), 10).is_err());
        let many = format!("{text}\n{}", "\u{2014} n AAAAAAA=\n".repeat(MAX_SIGNATURES + 1));
        assert!(Note::parse(many.as_bytes(), 1 << 16).is_err());
    }
}
