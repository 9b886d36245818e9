//! Parsing untrusted DSSE envelopes and manifests into checked types, before any crypto.
//!
//! [`CheckedEnvelope`] is built by [`CheckedEnvelope::parse`]: size-capped, strict JSON (no
//! unknown fields), canonical padded base64 only, exactly one signature, a 64-hex key id and a
//! 64-byte signature — and byte-for-byte the serialization custody writes (pretty JSON, two-space
//! indent, fields in order, final newline). The signature covers only the payload, so without
//! that last rule a whitespace or escape change in the envelope would go unnoticed. [`CheckedManifest`] parses the manifest with the same strictness and validates
//! entry paths, so later checks work on typed values only.

use base64::Engine as _;

use crate::bundle::manifest::{Manifest, ManifestStatement, ANALYSIS_MEMBER};
use crate::digest::Sha256;

/// Why an envelope or manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Larger than allowed.
    #[error("{what} is {size} bytes, above the limit of {limit}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid JSON of the expected shape.
    #[error("{what} is not valid")]
    Json {
        /// What.
        what: &'static str,
        /// The parser's error (with line and column).
        source: serde_json::Error,
    },
    /// Wrong payload type.
    #[error("envelope payloadType is `{found}`, expected `{expected}`")]
    PayloadType {
        /// Found.
        found: String,
        /// Expected (one of, joined by ` or `).
        expected: String,
    },
    /// Not exactly one signature.
    #[error("envelope has {0} signatures; custody envelopes carry exactly one")]
    SignatureCount(usize),
    /// Bad base64.
    #[error("envelope {field} is not canonical padded base64")]
    Base64 {
        /// Which field.
        field: &'static str,
        /// Decoder error.
        source: base64::DecodeError,
    },
    /// Bad key id.
    #[error("envelope keyid `{0}` is not 64 lower-case hex digits")]
    KeyId(String),
    /// Bad signature length.
    #[error("signature is {0} bytes; Ed25519 signatures are 64")]
    SignatureLength(usize),
    /// Unknown format.
    #[error("manifest format is `{0}`; this custody reads `custody-bundle/v1` and `custody-bundle/v2`")]
    Format(String),
    /// A field that the manifest's format requires is missing.
    #[error("a `{format}` manifest must have the field `{field}`")]
    FieldRequired {
        /// The field.
        field: &'static str,
        /// The manifest's format.
        format: &'static str,
    },
    /// A field that the manifest's format does not have.
    #[error("a `{format}` manifest has no field `{field}`")]
    FieldNotInFormat {
        /// The field.
        field: &'static str,
        /// The manifest's format.
        format: &'static str,
    },
    /// A v2 statement that is not what custody writes.
    #[error("the signed statement is not valid: {0}")]
    Statement(&'static str),
    /// Valid, but not byte-for-byte what custody writes.
    #[error(
        "{what} is not in custody's canonical form (first difference at byte {offset}): it was re-encoded or altered"
    )]
    NonCanonical {
        /// What.
        what: &'static str,
        /// Offset of the first differing byte.
        offset: usize,
    },
    /// A time outside RFC 3339's four-digit years.
    #[error("manifest {what} is in year {year}: timestamps are RFC 3339, years 0000 to 9999")]
    Time {
        /// Which time.
        what: &'static str,
        /// Its year.
        year: i32,
    },
    /// A bad entry path.
    #[error("manifest entry path `{path}` is not allowed: {reason}")]
    EntryPath {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
}

/// A structurally valid single-signature envelope.
#[derive(Debug, Clone)]
pub struct CheckedEnvelope {
    /// Payload type.
    pub payload_type: String,
    /// Decoded payload bytes.
    pub payload: Vec<u8>,
    /// Signer key id (hex).
    pub keyid: Sha256,
    /// The signature.
    pub sig: [u8; 64],
}

/// Largest envelope accepted: the base64 of the largest manifest, plus room for the rest. Only
/// one that is the canonical envelope of the manifest before it gets this far without being
/// buffered ([`EnvelopeStream`]); anything else is buffered only up to [`MAX_BUFFERED_ENVELOPE`].
pub const MAX_ENVELOPE: usize = MAX_MANIFEST.div_ceil(3) * 4 + (1 << 20);
/// Largest manifest accepted (a 100k-file incident with its analysis writes ~70–110 MB). The
/// verifier holds the manifest bytes once (with the DSSE PAE header in front, so the signature
/// is checked in place) plus the parsed manifest, bounded by [`MAX_JSON_VALUES_COST`]; the
/// envelope is checked as it streams. `tests/hostile.rs` measures the peak on inputs at the caps.
pub const MAX_MANIFEST: usize = 160 << 20;
/// Bound on the in-memory size of a parsed manifest, estimated before parsing by
/// [`json_cost`] (its length, plus 48 bytes per structural token of its typed fields, plus
/// the `serde_json::Value` model's cost of a v1 manifest's embedded `analysis`; see
/// [`crate::read::json`]). `show` holds the parsed manifest and the parsed `analysis.json`
/// together: both share this bound.
pub const MAX_JSON_VALUES_COST: usize = 320 << 20;

/// Estimated memory a manifest costs once parsed ([`crate::read::json::Model::Manifest`]).
pub fn json_cost(bytes: &[u8]) -> usize {
    crate::read::json::cost(bytes, crate::read::json::Model::Manifest)
}

/// The envelope as read, borrowing the (large) payload text from the input when it has no
/// escapes, which canonical envelopes never have.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    #[serde(rename = "payloadType")]
    payload_type: String,
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
    signatures: Vec<crate::bundle::dsse::EnvelopeSignature>,
}

impl CheckedEnvelope {
    /// Parse and check `bytes`, requiring `payload_type`.
    pub fn parse(bytes: &[u8], payload_type: &'static str) -> Result<Self, ParseError> {
        Self::parse_one_of(bytes, &[payload_type])
    }

    /// Parse and check `bytes`, requiring one of `payload_types`.
    pub fn parse_one_of(bytes: &[u8], payload_types: &[&'static str]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(ParseError::TooLarge { what: "envelope", size: bytes.len(), limit: MAX_ENVELOPE });
        }
        let env: RawEnvelope<'_> =
            serde_json::from_slice(bytes).map_err(|source| ParseError::Json { what: "envelope", source })?;
        if !payload_types.contains(&env.payload_type.as_str()) {
            return Err(ParseError::PayloadType {
                found: env.payload_type.chars().take(100).collect(),
                expected: payload_types.join(" or "),
            });
        }
        if env.signatures.len() != 1 {
            return Err(ParseError::SignatureCount(env.signatures.len()));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload =
            b64.decode(env.payload.as_bytes()).map_err(|source| ParseError::Base64 { field: "payload", source })?;
        let s = &env.signatures[0];
        let keyid = Sha256::parse_canonical_hex(&s.keyid)
            .ok_or_else(|| ParseError::KeyId(s.keyid.chars().take(100).collect()))?;
        let sig_bytes = b64.decode(&s.sig).map_err(|source| ParseError::Base64 { field: "signature", source })?;
        let sig: [u8; 64] =
            sig_bytes.as_slice().try_into().map_err(|_| ParseError::SignatureLength(sig_bytes.len()))?;
        if let Some(offset) = first_difference(&env, bytes) {
            return Err(ParseError::NonCanonical { what: "envelope", offset });
        }
        Ok(CheckedEnvelope { payload_type: env.payload_type, payload, keyid, sig })
    }
}

/// Compares what is written to it with `expected`, without allocating.
struct Compare<'a> {
    expected: &'a [u8],
    at: usize,
    diff: Option<usize>,
}

impl std::io::Write for Compare<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.diff.is_none() {
            let end = (self.at + buf.len()).min(self.expected.len());
            let have = &self.expected[self.at..end];
            if let Some(i) = have.iter().zip(buf).position(|(a, b)| a != b) {
                self.diff = Some(self.at + i);
            } else if have.len() < buf.len() {
                self.diff = Some(end);
            }
        }
        self.at += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where `bytes` first differs from custody's serialization of `env` (`dsse::to_bytes`).
fn first_difference(env: &RawEnvelope<'_>, bytes: &[u8]) -> Option<usize> {
    let mut c = Compare { expected: bytes, at: 0, diff: None };
    if serde_json::to_writer_pretty(&mut c, env).is_err() {
        return Some(0);
    }
    let _ = std::io::Write::write_all(&mut c, b"\n");
    match c.diff {
        Some(d) => Some(d),
        None if c.at != bytes.len() => Some(c.at.min(bytes.len())),
        None => None,
    }
}

/// A parsed manifest whose entry paths are safe to use as relative file paths.
#[derive(Debug, Clone)]
pub struct CheckedManifest(pub Manifest);

/// Check a manifest entry path: relative, `/`-separated, no empty, `.` or `..` components,
/// no NUL, no backslash, at most 4096 bytes.
pub fn check_entry_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty");
    }
    if p.len() > 4096 {
        return Err("longer than 4096 bytes");
    }
    if p.starts_with('/') {
        return Err("absolute");
    }
    if p.contains('\0') {
        return Err("contains NUL");
    }
    if p.contains('\\') {
        return Err("contains a backslash");
    }
    for c in p.split('/') {
        match c {
            "" => return Err("empty path component"),
            "." | ".." => return Err("`.` or `..` component"),
            _ => {}
        }
    }
    Ok(())
}

impl TryFrom<&[u8]> for CheckedManifest {
    type Error = ParseError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        CheckedManifest::parse(bytes).map(|(m, _)| m)
    }
}

/// A time the reader accepts: RFC 3339 has four-digit years, chrono parses up to ±262 143,
/// where adding a skew overflows.
fn check_year(what: &'static str, t: &chrono::DateTime<chrono::Utc>) -> Result<(), ParseError> {
    use chrono::Datelike;
    let year = t.naive_utc().year();
    if (0..=9999).contains(&year) {
        Ok(())
    } else {
        Err(ParseError::Time { what, year })
    }
}

impl CheckedManifest {
    /// Parse and check a manifest; also returns its estimated parsed size ([`json_cost`]).
    pub fn parse(bytes: &[u8]) -> Result<(CheckedManifest, usize), ParseError> {
        if bytes.len() > MAX_MANIFEST {
            return Err(ParseError::TooLarge { what: "manifest", size: bytes.len(), limit: MAX_MANIFEST });
        }
        let cost = json_cost(bytes);
        if cost > MAX_JSON_VALUES_COST {
            return Err(ParseError::TooLarge {
                what: "manifest (parsed size estimate)",
                size: cost,
                limit: MAX_JSON_VALUES_COST,
            });
        }
        // serde_json caps nesting at 128 levels and rejects invalid UTF-8 and overflowing integers.
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|source| ParseError::Json { what: "manifest", source })?;
        use crate::bundle::manifest::{FORMAT_V1, FORMAT_V2, FORMAT_V3};
        match m.format.as_str() {
            FORMAT_V1 if m.analysis_ref.is_some() => {
                return Err(ParseError::FieldNotInFormat { field: "analysis_ref", format: FORMAT_V1 })
            }
            FORMAT_V1 if m.supplement_of.is_some() => {
                return Err(ParseError::FieldNotInFormat { field: "supplement_of", format: FORMAT_V1 })
            }
            FORMAT_V1 if m.incident.tool_notes.is_some() => {
                return Err(ParseError::FieldNotInFormat { field: "incident.tool_notes", format: FORMAT_V1 })
            }
            FORMAT_V2 if m.incident.tool_notes.is_some() => {
                return Err(ParseError::FieldNotInFormat { field: "incident.tool_notes", format: FORMAT_V2 })
            }
            FORMAT_V3 if m.incident.tool_notes.is_none() => return Err(ParseError::FieldRequired { field: "incident.tool_notes", format: FORMAT_V3 }),
            f @ (FORMAT_V2 | FORMAT_V3) if m.analysis.is_some() => {
                return Err(ParseError::FieldNotInFormat { field: "analysis", format: if f == FORMAT_V2 { FORMAT_V2 } else { FORMAT_V3 } })
            }
            f @ (FORMAT_V2 | FORMAT_V3) if m.analysis_ref.as_ref().is_some_and(|a| a.member != ANALYSIS_MEMBER) => {
                return Err(ParseError::FieldNotInFormat {
                    field: "analysis_ref.member other than analysis.json",
                    format: if f == FORMAT_V2 { FORMAT_V2 } else { FORMAT_V3 },
                })
            }
            FORMAT_V1 | FORMAT_V2 | FORMAT_V3 => {}
            other => return Err(ParseError::Format(other.chars().take(100).collect())),
        }
        check_year("collector.started_at", &m.collector.started_at)?;
        check_year("collector.finished_at", &m.collector.finished_at)?;
        check_year("sealed_at", &m.sealed_at)?;
        if let Some(s) = &m.supplement_of {
            check_year("supplement_of.sealed_at", &s.sealed_at)?;
        }
        for e in &m.entries {
            check_entry_path(&e.path)
                .map_err(|reason| ParseError::EntryPath { path: e.path.chars().take(200).collect(), reason })?;
            check_year("an entry's collected_at", &e.collected_at)?;
        }
        for j in &m.journal {
            check_year("a journal event's at", &j.at)?;
        }
        Ok((CheckedManifest(m), cost))
    }
}

/// The statement a v2 or v3 envelope signs, parsed strictly: no unknown fields, format
/// `custody-bundle/v3` or `/v2` (the manifest's, checked by the verifier), and byte for byte what custody writes (compact JSON, fields in order).
#[derive(Debug, Clone)]
pub struct CheckedStatement(pub ManifestStatement);

impl TryFrom<&[u8]> for CheckedStatement {
    type Error = ParseError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        if bytes.len() > 4096 {
            return Err(ParseError::TooLarge { what: "signed statement", size: bytes.len(), limit: 4096 });
        }
        let st: ManifestStatement =
            serde_json::from_slice(bytes).map_err(|source| ParseError::Json { what: "signed statement", source })?;
        if st.format != crate::bundle::manifest::FORMAT_V2 && st.format != crate::bundle::manifest::FORMAT_V3 {
            return Err(ParseError::Statement("its format is neither `custody-bundle/v3` nor `custody-bundle/v2`"));
        }
        if st.to_bytes() != bytes {
            return Err(ParseError::Statement("its bytes are not custody's compact serialization"));
        }
        Ok(CheckedStatement(st))
    }
}

/// Largest envelope read into memory whole: one that is not the canonical envelope of the
/// manifest read before it (or that has no manifest before it) is buffered up to this size
/// and checked as [`CheckedEnvelope::parse`] always did; a larger one that deviates is
/// reported without being buffered.
pub const MAX_BUFFERED_ENVELOPE: usize = 16 << 20;
/// Largest accepted envelope tail (what follows the payload: the signatures).
pub const MAX_ENVELOPE_TAIL: usize = 64 << 10;

/// How the `manifest.dsse.json` member read.
#[derive(Debug)]
pub enum EnvelopeMember {
    /// Buffered whole (no manifest before it, or it deviates from the canonical envelope of
    /// the manifest and is at most [`MAX_BUFFERED_ENVELOPE`]): check it with
    /// [`CheckedEnvelope::parse`] and compare its payload with the manifest.
    Buffered(Vec<u8>),
    /// Streamed: its payload is byte-identical to the manifest read before it, so the
    /// returned envelope's `payload` is left empty (the signed payload *is* the manifest).
    Streamed(Result<CheckedEnvelope, ParseError>),
    /// Streamed and too large to buffer, and its base64 payload differs from the manifest's
    /// base64 at this byte offset of the envelope.
    PayloadDiffers {
        /// Offset of the first differing byte in the envelope.
        offset: usize,
    },
}

enum StreamState {
    /// Every byte so far is the canonical envelope of the manifest (prefix, then base64).
    Matching,
    /// Past the payload: buffering the (small) tail.
    Tail,
    /// Deviated and small enough: buffering the whole envelope.
    Buffering(Vec<u8>),
    /// Deviated and too large to buffer: at this offset, inside the payload or not.
    Failed(usize, bool),
}

/// Checks a `manifest.dsse.json` member against the canonical envelope of `manifest` while
/// it streams out of the archive, holding only the small tail (see [`EnvelopeMember`]).
pub struct EnvelopeStream<'m> {
    manifest: &'m [u8],
    payload_type: &'static str,
    prefix: Vec<u8>,
    b64_len: usize,
    size: u64,
    pos: usize,
    encoded: usize,
    exp: Vec<u8>,
    exp_at: usize,
    tail: Vec<u8>,
    state: StreamState,
}

/// The canonical envelope's bytes before the base64 payload.
fn envelope_prefix(payload_type: &str) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(&RawEnvelope {
        payload_type: payload_type.to_string(),
        payload: std::borrow::Cow::Borrowed(""),
        signatures: vec![],
    })
    .unwrap_or_default();
    // `{\n  "payloadType": "…",\n  "payload": "",\n  "signatures": []\n}`: keep up to the
    // payload's opening quote.
    let marker = b"\"payload\": \"";
    match v.windows(marker.len()).position(|w| w == marker) {
        Some(i) => v.truncate(i + marker.len()),
        None => v.clear(),
    }
    v
}

impl<'m> EnvelopeStream<'m> {
    /// Start checking an envelope member of `size` bytes (its tar header size) against
    /// `manifest`, with payload type `payload_type`.
    pub fn new(manifest: &'m [u8], payload_type: &'static str, size: u64) -> Self {
        EnvelopeStream {
            manifest,
            payload_type,
            prefix: envelope_prefix(payload_type),
            b64_len: manifest.len().div_ceil(3).saturating_mul(4),
            size,
            pos: 0,
            encoded: 0,
            exp: Vec::new(),
            exp_at: 0,
            tail: Vec::new(),
            state: StreamState::Matching,
        }
    }

    /// The first `n` bytes of the canonical envelope (prefix, base64, then the tail read).
    fn reconstruct(&self, n: usize) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let p = self.prefix.len();
        let mut v = Vec::with_capacity(n);
        v.extend_from_slice(&self.prefix[..n.min(p)]);
        if n > p {
            let chars = (n - p).min(self.b64_len);
            let src = &self.manifest[..(chars.div_ceil(4) * 3).min(self.manifest.len())];
            let enc = b64.encode(src);
            v.extend_from_slice(&enc.as_bytes()[..chars.min(enc.len())]);
        }
        if n > p + self.b64_len {
            v.extend_from_slice(&self.tail[..(n - p - self.b64_len).min(self.tail.len())]);
        }
        v
    }

    /// The envelope deviates at byte `at` (every byte before it was canonical).
    fn diverge(&mut self, at: usize) {
        self.state = if self.size <= MAX_BUFFERED_ENVELOPE as u64 {
            StreamState::Buffering(self.reconstruct(at))
        } else {
            let p = self.prefix.len();
            StreamState::Failed(at, (p..p + self.b64_len).contains(&at))
        };
        self.exp = Vec::new();
        self.tail = Vec::new();
    }

    /// Feed the next bytes of the member.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                StreamState::Failed(..) => return,
                StreamState::Buffering(v) => {
                    v.extend_from_slice(data);
                    return;
                }
                StreamState::Tail => {
                    if self.tail.len() + data.len() > MAX_ENVELOPE_TAIL {
                        let at = self.pos;
                        self.diverge(at);
                        continue;
                    }
                    self.tail.extend_from_slice(data);
                    self.pos += data.len();
                    return;
                }
                StreamState::Matching => {
                    let p = self.prefix.len();
                    let expected: &[u8] = if self.pos < p {
                        &self.prefix[self.pos..]
                    } else if self.pos < p + self.b64_len {
                        if self.exp_at == self.exp.len() {
                            let b64 = base64::engine::general_purpose::STANDARD;
                            let end = (self.encoded + (48 << 10)).min(self.manifest.len());
                            self.exp = b64.encode(&self.manifest[self.encoded..end]).into_bytes();
                            self.exp_at = 0;
                            self.encoded = end;
                        }
                        &self.exp[self.exp_at..]
                    } else {
                        self.state = StreamState::Tail;
                        continue;
                    };
                    let n = expected.len().min(data.len());
                    if let Some(i) = expected[..n].iter().zip(&data[..n]).position(|(a, b)| a != b) {
                        let at = self.pos + i;
                        data = &data[i..];
                        self.diverge(at);
                        continue;
                    }
                    if self.pos >= p {
                        self.exp_at += n;
                    }
                    self.pos += n;
                    data = &data[n..];
                }
            }
        }
    }

    /// The member ended.
    pub fn finish(mut self) -> EnvelopeMember {
        let p = self.prefix.len();
        if let StreamState::Matching = self.state {
            // Shorter than the canonical envelope.
            let at = self.pos;
            self.diverge(at);
        }
        match std::mem::replace(&mut self.state, StreamState::Failed(0, false)) {
            StreamState::Buffering(v) => EnvelopeMember::Buffered(v),
            StreamState::Failed(offset, true) => EnvelopeMember::PayloadDiffers { offset },
            StreamState::Failed(offset, false) => {
                EnvelopeMember::Streamed(Err(ParseError::NonCanonical { what: "envelope", offset }))
            }
            StreamState::Matching | StreamState::Tail => {
                // Check the tail as part of an envelope with an empty payload: same rules,
                // same serialization; offsets past the payload shift by its length.
                let mut synthetic = self.prefix.clone();
                synthetic.extend_from_slice(&self.tail);
                match CheckedEnvelope::parse(&synthetic, self.payload_type) {
                    Ok(e) => EnvelopeMember::Streamed(Ok(e)),
                    Err(_) if self.size <= MAX_BUFFERED_ENVELOPE as u64 => {
                        EnvelopeMember::Buffered(self.reconstruct(p + self.b64_len + self.tail.len()))
                    }
                    Err(ParseError::NonCanonical { what, offset }) => {
                        EnvelopeMember::Streamed(Err(ParseError::NonCanonical {
                            what,
                            offset: offset + if offset >= p { self.b64_len } else { 0 },
                        }))
                    }
                    Err(e) => EnvelopeMember::Streamed(Err(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{dsse, manifest::MANIFEST_PAYLOAD_TYPE};

    fn envelope_of(man: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::keys::SecretKey::generate(&dir.path().join("k")).unwrap();
        dsse::to_bytes(&dsse::sign(MANIFEST_PAYLOAD_TYPE, man, &key))
    }

    fn stream(man: &[u8], env: &[u8], size: u64, chunk: usize) -> EnvelopeMember {
        let mut s = EnvelopeStream::new(man, MANIFEST_PAYLOAD_TYPE, size);
        for c in env.chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn the_canonical_envelope_streams_in_any_chunking_and_matches_a_buffered_parse() {
        let man: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let env = envelope_of(&man);
        let whole = CheckedEnvelope::parse(&env, MANIFEST_PAYLOAD_TYPE).unwrap();
        for chunk in [1, 7, 4096, 65536, env.len()] {
            match stream(&man, &env, env.len() as u64, chunk) {
                EnvelopeMember::Streamed(Ok(e)) => {
                    assert_eq!((e.keyid, e.sig), (whole.keyid, whole.sig));
                    assert!(e.payload.is_empty());
                }
                other => panic!("chunk {chunk}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_deviating_envelope_is_buffered_when_small_and_reported_when_large() {
        let man = b"{\"format\": \"custody-bundle/v1\"}\n".repeat(100);
        let env = envelope_of(&man);
        let other = envelope_of(&b"{\"format\": \"custody-bundle/v1\"} \n".repeat(100));
        let prefix = envelope_prefix(MANIFEST_PAYLOAD_TYPE).len();
        // Small: buffered byte for byte, so today's checks and findings apply.
        for bad in [other.clone(), env[..env.len() - 1].to_vec(), [env.as_slice(), b" "].concat()] {
            match stream(&man, &bad, bad.len() as u64, 5) {
                EnvelopeMember::Buffered(b) => assert_eq!(b, bad),
                o => panic!("{o:?}"),
            }
        }
        // Declared too large to buffer: reported at the first difference.
        let big = MAX_BUFFERED_ENVELOPE as u64 + 1;
        let at = env.iter().zip(&other).position(|(a, b)| a != b).unwrap();
        assert!(at > prefix);
        match stream(&man, &other, big, 5) {
            EnvelopeMember::PayloadDiffers { offset } => assert_eq!(offset, at),
            o => panic!("{o:?}"),
        }
        let mut wrong_type = env.clone();
        wrong_type[prefix - 20] ^= 1;
        assert!(matches!(
            stream(&man, &wrong_type, big, 5),
            EnvelopeMember::Streamed(Err(ParseError::NonCanonical { offset, .. })) if offset == prefix - 20
        ));
        let mut bad_tail = env.clone();
        let n = bad_tail.len();
        bad_tail[n - 3] = b' ';
        assert!(matches!(stream(&man, &bad_tail, big, 5), EnvelopeMember::Streamed(Err(_))));
    }

    #[test]
    fn a_statement_must_be_custodys_exact_compact_v2_serialization() {
        let st = ManifestStatement {
            format: crate::bundle::manifest::FORMAT_V2.into(),
            manifest_sha256: Sha256::of(b"m"),
            manifest_size: 1,
        };
        let good = st.to_bytes();
        assert!(CheckedStatement::try_from(good.as_slice()).is_ok());
        let text = String::from_utf8(good).unwrap();
        for (why, bad) in [
            ("a space", text.replacen(":", ": ", 1)),
            ("a final newline", format!("{text}\n")),
            (
                "fields reordered",
                text.replacen("{\"format\":\"custody-bundle/v2\",", "{", 1).replacen(
                    "}",
                    ",\"format\":\"custody-bundle/v2\"}",
                    1,
                ),
            ),
            ("format v1", text.replace("custody-bundle/v2", "custody-bundle/v1")),
            ("an unknown field", text.replacen("}", ",\"x\":1}", 1)),
            ("an upper-case digest", text.replace(&Sha256::of(b"m").hex(), &Sha256::of(b"m").hex().to_uppercase())),
        ] {
            assert!(CheckedStatement::try_from(bad.as_bytes()).is_err(), "accepted {why}: {bad}");
        }
    }
}
