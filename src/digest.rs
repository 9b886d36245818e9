//! SHA-256 digests and the typed ids built on them.
//!
//! Every object custody names — a collected blob, a bundle file, a ledger entry, a signing
//! key — is named by the SHA-256 of its bytes. [`Sha256`] is the one digest type; the typed
//! wrappers ([`BlobId`], [`BundleId`], [`EntryId`]) keep a blob hash from being used where a
//! bundle digest is expected. Text form: 64 lower-case hex digits, optionally prefixed with
//! `sha256:` where a user types or reads it (parsing user input accepts both, display of a
//! bundle uses the prefix). Inside formats — names, manifests, ledger entries, checkpoints —
//! a digest is always bare lower-case hex (serde: [`Sha256::parse_canonical_hex`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// Why a digest string could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestError {
    /// Not 64 hex digits (after an optional `sha256:` prefix).
    #[error("`{0}` is not a SHA-256 digest: expected 64 hex digits, optionally prefixed with `sha256:`")]
    Malformed(String),
    /// Not the canonical form a format requires: 64 lower-case hex digits, no prefix.
    #[error("`{0}` is not a digest in canonical form: expected 64 lower-case hex digits, without a `sha256:` prefix")]
    NotCanonical(String),
}

/// A SHA-256 digest. Invariant: exactly 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Sha256(sha2::Sha256::digest(data).into())
    }

    /// Lower-case hex, no prefix.
    pub fn hex(&self) -> String {
        // Always ASCII, so never the (empty) fallback.
        String::from_utf8(self.hex_bytes().to_vec()).unwrap_or_default()
    }

    /// Lower-case hex as bytes, without allocating (the sealer writes two digests per file).
    pub fn hex_bytes(&self) -> [u8; 64] {
        // A table lookup per nibble: `hex::encode` goes through a char iterator, which showed
        // up at ~4% of a 100k-file seal (every digest is written in the manifest and journal).
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[(b >> 4) as usize];
            out[2 * i + 1] = DIGITS[(b & 0x0f) as usize];
        }
        out
    }

    /// `sha256:<hex>`.
    pub fn prefixed(&self) -> String {
        format!("sha256:{}", self.hex())
    }

    /// Parse 64 hex digits (either case), with or without the `sha256:` prefix.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let h = s.strip_prefix("sha256:").unwrap_or(s);
        decode_hex(h.as_bytes(), &HEX_ANY_CASE).ok_or_else(|| DigestError::Malformed(truncate_for_msg(s)))
    }

    /// Parse only the canonical form: 64 *lower-case* hex digits, no prefix. Used where a
    /// digest is part of a name (tar entries, store keys) so that one object has one name.
    pub fn parse_canonical_hex(s: &str) -> Option<Self> {
        decode_hex(s.as_bytes(), &HEX_LOWER)
    }
}

/// Not a hex digit, in the decoding tables below.
const NOT_HEX: u8 = 0xff;

/// The value of every byte as a hex digit: `0-9`, `a-f`, and `A-F` if `upper`; [`NOT_HEX`]
/// for every other byte.
const fn hex_table(upper: bool) -> [u8; 256] {
    let mut t = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if upper {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}

static HEX_ANY_CASE: [u8; 256] = hex_table(true);
static HEX_LOWER: [u8; 256] = hex_table(false);

/// Exactly 64 hex digits (per `table`) as a digest. A table lookup per digit and one check
/// per byte: the `hex` crate's per-character decoding was ~9% of verifying a 100 000-file
/// bundle (every entry, journal event and blob name carries a digest).
fn decode_hex(h: &[u8], table: &[u8; 256]) -> Option<Sha256> {
    let h: &[u8; 64] = h.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(h.chunks_exact(2)) {
        let (hi, lo) = (table[pair[0] as usize], table[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    // Digits are 0..=15; only NOT_HEX has a high bit set.
    (bad & 0xf0 == 0).then_some(Sha256(out))
}

fn truncate_for_msg(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Sha256 {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // On the stack: the sealer serializes several digests per collected file.
        let hex = self.hex_bytes();
        s.serialize_str(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor over the borrowed text, not `String::deserialize`: no allocation per digest
        // (a 100 000-file manifest holds 400 000 of them). Same errors as through a `String`.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Sha256;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Sha256, E> {
                Sha256::parse_canonical_hex(s).ok_or_else(|| E::custom(DigestError::NotCanonical(truncate_for_msg(s))))
            }
        }
        d.deserialize_str(V)
    }
}

macro_rules! typed_id {
    ($(#[$m:meta])* $name:ident, $prefixed:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Sha256);

        impl $name {
            /// The underlying digest.
            pub fn digest(&self) -> &Sha256 {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $prefixed {
                    write!(f, "sha256:{}", self.0.hex())
                } else {
                    f.write_str(&self.0.hex())
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(sha256:{})", stringify!($name), self.0.hex())
            }
        }

        impl FromStr for $name {
            type Err = DigestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Sha256::parse(s).map($name)
            }
        }
    };
}

typed_id!(
    /// The SHA-256 of one collected file's bytes; names `blobs/sha256/<hex>` in a bundle.
    BlobId,
    false
);
typed_id!(
    /// The SHA-256 of a whole bundle file (the compressed `.tar.zst` bytes).
    BundleId,
    true
);
typed_id!(
    /// The SHA-256 of one ledger entry object's bytes.
    EntryId,
    true
);

/// Incremental SHA-256.
#[derive(Clone, Default)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest of everything fed so far.
    pub fn finish(self) -> Sha256 {
        Sha256(self.0.finalize().into())
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Hasher::new(), count: 0 }
    }
    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Sha256, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, hasher: Hasher::new(), count: 0 }
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The digest of everything read so far and its length.
    pub fn finish(self) -> (Sha256, u64) {
        (self.hasher.finish(), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Hash everything `r` yields, in 1 MiB reads.
pub fn hash_reader<R: Read>(mut r: R) -> io::Result<(Sha256, u64)> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((h.finish(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_and_bare_and_rejects_garbage() {
        let d = Sha256::of(b"abc");
        assert_eq!(d.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(Sha256::parse(&d.prefixed()).unwrap(), d);
        assert_eq!(Sha256::parse(&d.hex().to_uppercase()).unwrap(), d);
        assert!(Sha256::parse("sha256:abc").is_err());
        assert!(Sha256::parse_canonical_hex(&d.hex().to_uppercase()).is_none());
        assert_eq!(BundleId(d).to_string(), d.prefixed());
        assert_eq!(BlobId(d).to_string(), d.hex());
        // The table encoder agrees with the hex crate on every byte value.
        for block in 0..8u8 {
            let d = Sha256(std::array::from_fn(|i| block * 32 + i as u8));
            assert_eq!(d.hex(), hex::encode(d.0));
        }
    }

    #[test]
    fn the_table_decoder_agrees_with_the_hex_crate_on_every_byte_in_every_position() {
        let d = Sha256::of(b"position");
        let lower = d.hex().into_bytes();
        for pos in [0, 1, 2, 31, 32, 62, 63] {
            for b in 0..=255u8 {
                let mut h = lower.clone();
                h[pos] = b;
                // Not UTF-8 (a lone byte >= 0x80) cannot be a `&str`; the bytes are what matter.
                let Ok(text) = std::str::from_utf8(&h) else { continue };
                let mut want = [0u8; 32];
                let any_case = hex::decode_to_slice(text, &mut want).is_ok();
                assert_eq!(Sha256::parse(text).ok().map(|d| d.0), any_case.then_some(want), "byte {b:#04x} at {pos}");
                let canonical = any_case && !b.is_ascii_uppercase();
                assert_eq!(
                    Sha256::parse_canonical_hex(text).map(|d| d.0),
                    canonical.then_some(want),
                    "canonical, byte {b:#04x} at {pos}"
                );
            }
        }
        for len in [0, 63, 65, 128] {
            let text = "a".repeat(len);
            assert!(Sha256::parse(&text).is_err() && Sha256::parse_canonical_hex(&text).is_none(), "length {len}");
        }
        assert!(Sha256::parse_canonical_hex(&d.prefixed()).is_none(), "the canonical form has no prefix");
        assert_eq!(Sha256::parse(&format!("sha256:{}", d.hex().to_uppercase())), Ok(d));
    }
}
