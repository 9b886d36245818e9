//! The signature check: the envelope's Ed25519 signature, over the manifest (v1) or the signed
//! statement (v2), by the key the manifest names, and whether that key is pinned.

use ed25519_dalek::Signature;

use crate::bundle::dsse::pae;
use crate::bundle::manifest::Manifest;
use crate::bundle::write::{ENVELOPE_MEMBER, MANIFEST_MEMBER};
use crate::keys::PublicKey;
use crate::read::archive::ManifestBytes;
use crate::read::envelope::CheckedEnvelope;
use crate::read::ledger::KeyRole;
use crate::verify::findings::Findings;
use crate::verify::report::{FindingKind, SignerInfo};
use crate::verify::{Judged, Trust};

/// Check the signature and the signer's trust; returns who signed.
pub(crate) fn check(
    e: &CheckedEnvelope,
    manifest: Option<&Manifest>,
    man_bytes: Option<&ManifestBytes>,
    payload_is_manifest: bool,
    trust: &Trust,
    fs: &mut Findings,
) -> SignerInfo {
    fs.ran("signature");
    fs.ran("signer_trusted");
    let embedded =
        manifest.and_then(|m| PublicKey::from_pem(&m.signer.public_key, std::path::Path::new("manifest signer")).ok());
    if let Some(m) = manifest {
        if m.signer.keyid != e.keyid.hex() {
            fs.error(
                FindingKind::SignerMismatch,
                ENVELOPE_MEMBER,
                format!("envelope keyid {} differs from the manifest's signer {}", e.keyid.hex(), m.signer.keyid),
            );
        }
        if let Some(k) = &embedded {
            if k.id.0 != e.keyid {
                fs.error(
                    FindingKind::SignerMismatch,
                    MANIFEST_MEMBER,
                    "the manifest's signer public key does not hash to the envelope keyid",
                );
            }
        }
    }
    // A bundle is signed by a collector key, valid (by its pin) at the times the manifest
    // states: both, because a store's ledger bounds `started_at` (rule P3) where nothing
    // bounds `sealed_at` but the signer's word.
    let times: Vec<(&'static str, chrono::DateTime<chrono::Utc>)> = manifest
        .map(|m| vec![("collector.started_at", m.collector.started_at), ("sealed_at", m.sealed_at)])
        .unwrap_or_default();
    let judged = trust.judge(&e.keyid, KeyRole::Collector, &times);
    let trusted = match &judged {
        Judged::Trusted(p) => Some(&p.key),
        _ => None,
    };
    // An embedded key only says whether the signature is valid; trust comes from pinned keys.
    let key = judged.key().cloned().or_else(|| embedded.filter(|k| k.id.0 == e.keyid));
    match key {
        Some(k) => {
            let owned;
            let msg: &[u8] = match man_bytes {
                Some(b) if payload_is_manifest => b.pae(),
                _ => {
                    owned = pae(&e.payload_type, &e.payload);
                    &owned
                }
            };
            if k.key.verify_strict(msg, &Signature::from_bytes(&e.sig)).is_err() {
                fs.error(
                    FindingKind::BadSignature,
                    ENVELOPE_MEMBER,
                    format!("the Ed25519 signature does not verify with key {}", e.keyid.hex()),
                );
            } else {
                fs.detail("signature", format!("valid Ed25519 signature by key {}", e.keyid.hex()));
            }
        }
        None => fs.error(
            FindingKind::BadSignature,
            ENVELOPE_MEMBER,
            format!("no public key for keyid {} to check the signature with", e.keyid.hex()),
        ),
    }
    match &judged {
        Judged::Trusted(p) => {
            fs.detail("signer_trusted", format!("key {} pinned ({}){}", p.key.id, p.origin, p.validity_note()))
        }
        Judged::WrongRole(_) => fs.error(
            FindingKind::SignerRoleMismatch,
            ENVELOPE_MEMBER,
            judged.refusal(KeyRole::Collector, "bundles").unwrap_or_default(),
        ),
        Judged::Outside(..) => fs.error(
            FindingKind::SignerOutsideValidity,
            ENVELOPE_MEMBER,
            judged.refusal(KeyRole::Collector, "bundles").unwrap_or_default(),
        ),
        Judged::Unknown => fs.error(
            FindingKind::UntrustedSigner,
            ENVELOPE_MEMBER,
            format!("signed by key {}, which is not trusted here; pin the signer's public key with --trusted-key PUB after checking it out of band", e.keyid.hex()),
        ),
    }
    SignerInfo { keyid: e.keyid.hex(), trusted: trusted.is_some(), trusted_as: trusted.map(|k| k.origin.clone()) }
}
