//! DSSE v1 envelopes (<https://github.com/secure-systems-lab/dsse>), signed with pure Ed25519.
//!
//! The signature is over `PAE(payloadType, payload)` =
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload` with lengths in ASCII decimal.
//! `keyid` is the signer's key id (SHA-256 of its SPKI DER, hex). Reading an envelope from an
//! untrusted source goes through [`crate::read::envelope`], never through this module.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::keys::SecretKey;

/// A DSSE envelope as serialized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Media type of the payload.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Standard base64 (with padding) of the payload bytes.
    pub payload: String,
    /// Signatures; custody writes exactly one.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Key id (hex SHA-256 of SPKI DER).
    pub keyid: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub sig: String,
}

/// The bytes of `PAE(payload_type, payload)` that come before the payload, for a payload of
/// `payload_len` bytes: a reader can put them in front of the payload in one buffer and verify
/// the signature without copying the payload again.
pub fn pae_header(payload_type: &str, payload_len: u64) -> Vec<u8> {
    format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload_len).into_bytes()
}

/// Pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    v.extend_from_slice(&pae_header(payload_type, payload.len() as u64));
    v.extend_from_slice(payload);
    v
}

/// Sign `payload` and wrap it.
pub fn sign(payload_type: &str, payload: &[u8], key: &SecretKey) -> Envelope {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: b64.encode(payload),
        signatures: vec![EnvelopeSignature { keyid: key.id().to_string(), sig: b64.encode(sig) }],
    }
}

/// Serialize an envelope the way custody stores it (pretty JSON + newline).
pub fn to_bytes(env: &Envelope) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(env).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_spec_example() {
        // From the DSSE spec's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
