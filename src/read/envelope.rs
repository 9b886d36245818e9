//! Parsing untrusted DSSE envelopes and manifests into checked types, before any crypto.
//!
//! [`CheckedEnvelope`] is built by `TryFrom<&[u8]>`: size-capped, strict JSON (no unknown
//! fields), canonical padded base64 only, exactly one signature, a 64-hex key id and a 64-byte
//! signature. [`CheckedManifest`] parses the manifest with the same strictness and validates
//! entry paths, so later checks work on typed values only.

use base64::Engine as _;

use crate::bundle::dsse::Envelope;
use crate::bundle::manifest::Manifest;
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
    #[error("{what} is not valid: {source}")]
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
        /// Expected.
        expected: &'static str,
    },
    /// Not exactly one signature.
    #[error("envelope has {0} signatures; custody envelopes carry exactly one")]
    SignatureCount(usize),
    /// Bad base64.
    #[error("envelope {field} is not canonical padded base64: {source}")]
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
    #[error("manifest format is `{0}`; this custody reads `custody-bundle/v1`")]
    Format(String),
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

/// Largest envelope accepted.
pub const MAX_ENVELOPE: usize = 96 << 20;
/// Largest manifest accepted.
pub const MAX_MANIFEST: usize = 64 << 20;

impl CheckedEnvelope {
    /// Parse and check `bytes`, requiring `payload_type`.
    pub fn parse(bytes: &[u8], payload_type: &'static str) -> Result<Self, ParseError> {
        if bytes.len() > MAX_ENVELOPE {
            return Err(ParseError::TooLarge { what: "envelope", size: bytes.len(), limit: MAX_ENVELOPE });
        }
        let env: Envelope =
            serde_json::from_slice(bytes).map_err(|source| ParseError::Json { what: "envelope", source })?;
        if env.payload_type != payload_type {
            return Err(ParseError::PayloadType {
                found: env.payload_type.chars().take(100).collect(),
                expected: payload_type,
            });
        }
        if env.signatures.len() != 1 {
            return Err(ParseError::SignatureCount(env.signatures.len()));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = b64.decode(&env.payload).map_err(|source| ParseError::Base64 { field: "payload", source })?;
        let s = &env.signatures[0];
        let keyid = Sha256::parse_canonical_hex(&s.keyid)
            .ok_or_else(|| ParseError::KeyId(s.keyid.chars().take(100).collect()))?;
        let sig_bytes = b64.decode(&s.sig).map_err(|source| ParseError::Base64 { field: "signature", source })?;
        let sig: [u8; 64] =
            sig_bytes.as_slice().try_into().map_err(|_| ParseError::SignatureLength(sig_bytes.len()))?;
        Ok(CheckedEnvelope { payload_type: env.payload_type, payload, keyid, sig })
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
        if bytes.len() > MAX_MANIFEST {
            return Err(ParseError::TooLarge { what: "manifest", size: bytes.len(), limit: MAX_MANIFEST });
        }
        // serde_json caps nesting at 128 levels and rejects invalid UTF-8 and overflowing integers.
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|source| ParseError::Json { what: "manifest", source })?;
        if m.format != crate::bundle::manifest::FORMAT_V1 {
            return Err(ParseError::Format(m.format.chars().take(100).collect()));
        }
        for e in &m.entries {
            check_entry_path(&e.path)
                .map_err(|reason| ParseError::EntryPath { path: e.path.chars().take(200).collect(), reason })?;
        }
        Ok(CheckedManifest(m))
    }
}
