//! Trusted time: RFC 3161 timestamp tokens over a bundle's (or a checkpoint's) signature.
//!
//! The message a token covers is the raw signature bytes (the 64-byte Ed25519 signature of the
//! bundle's `manifest.dsse.json`, base64-decoded; of a checkpoint, the signature of its signed
//! note's signature line), hashed with SHA-256 into the request's `messageImprint`
//! (`docs/format.md` §6.6). A token proves that the signature — so the signed statement, the
//! manifest and every file it names — existed no later than the token's `genTime`.
//!
//! A token is stored as the TSA answered it: a DER `TimeStampResp` (what `openssl ts -reply`
//! writes and `openssl ts -verify -in` reads), at most [`MAX_TOKEN`] bytes. Every token is
//! hostile input here: parsed by RustCrypto's strict DER types (no BER, no trailing bytes),
//! then checked (`check_token`): status granted, one CMS signer whose signed attributes bind
//! the `TSTInfo` (content type and message digest) and the signing certificate (ESSCertID or
//! ESSCertIDv2), a valid RSA PKCS#1 v1.5 / SHA-256 or ECDSA P-256 / SHA-256 signature, the
//! signer's extended key usage, its validity at `genTime`, the message imprint, the nonce when
//! one was sent, and whether the signer is, or is issued by, a pinned certificate
//! ([`TrustedTsa`]).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{Any, Int, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectKeyIdentifier};
use x509_cert::Certificate;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

use crate::digest::{BundleId, Sha256};
use crate::read::ledger::TimestampRef;
use crate::store::{ledger, PutOutcome, Store, StoreError};
use crate::verify::checks::timestamp::{load_token, TokenObject};
use crate::verify::{check_stored_bundle, Level, Trust};

/// Largest token accepted, from a TSA or from a store: real tokens with a certificate chain
/// are 3–8 KiB.
pub const MAX_TOKEN: usize = 64 * 1024;
/// How long a TSA may take to answer, connection included: a TSA that is down costs a
/// preserve at most this.
pub const TSA_TIMEOUT: Duration = Duration::from_secs(10);
/// Prefix of every token object key in a store.
pub const TIMESTAMP_PREFIX: &str = "timestamps/";
/// Certificates followed from the signer towards a pinned one.
const MAX_CHAIN: usize = 4;
/// Certificates accepted inside one token.
const MAX_TOKEN_CERTS: usize = 16;

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SIGNING_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const OID_SIGNING_CERT_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// Why a TSA gave no usable token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsaError {
    /// The URL is not an http(s) URL.
    #[error("TSA URL `{url}` is not usable: give an http:// or https:// URL")]
    Url {
        /// The URL as given (clipped).
        url: String,
    },
    /// The request failed (connection, timeout, TLS).
    #[error("TSA {url} could not be asked for a timestamp")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The TSA answered with an HTTP error.
    #[error("TSA {url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The answer is larger than [`MAX_TOKEN`].
    #[error("TSA {url} answered more than {MAX_TOKEN} bytes: not a timestamp response")]
    TooLarge {
        /// The URL.
        url: String,
    },
    /// The answer is no valid timestamp for the message sent.
    #[error("TSA {url} answered no usable timestamp")]
    Bad {
        /// The URL.
        url: String,
        /// What is wrong with it.
        source: TokenProblem,
    },
}

/// What is wrong with a token (its text may quote the token's strings: print it escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenProblem(pub String);

fn bad(s: impl Into<String>) -> TokenProblem {
    TokenProblem(s.into())
}

/// A pinned TSA certificate (`verify --trusted-tsa CERT`): a token verifies as trusted when
/// its signer's certificate is this one, or is issued by it (directly or through certificates
/// the token carries).
#[derive(Debug, Clone)]
pub struct TrustedTsa {
    cert: Certificate,
    der: Vec<u8>,
    origin: String,
}

impl TrustedTsa {
    /// Every certificate of a PEM file (`origin` names it in reports).
    pub fn from_pem(pem: &[u8], origin: &str) -> Result<Vec<TrustedTsa>, TokenProblem> {
        let certs = Certificate::load_pem_chain(pem).map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file"));
        }
        certs
            .into_iter()
            .map(|cert| {
                let der = cert.to_der().map_err(|e| bad(format!("cannot encode the certificate: {e}")))?;
                Ok(TrustedTsa { cert, der, origin: origin.to_string() })
            })
            .collect()
    }

    /// Where the pin came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// What a token attests, once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Attested {
    /// The TSA's time (`genTime`), truncated to the second.
    pub gen_time: DateTime<Utc>,
    /// The signer certificate's subject (untrusted text: print escaped).
    pub tsa: String,
    /// The token's serial number (hex).
    pub serial: String,
    /// Where the pinned certificate the signer chains to came from; `None` when it chains to
    /// none of the pins given (or none were).
    pub trusted_as: Option<String>,
}

/// The object key of a bundle's token: `timestamps/<bundle digest hex>.tsr`.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn token_key(bundle: &BundleId) -> String {
    format!("{TIMESTAMP_PREFIX}{}.tsr", bundle.0.hex())
}

/// The DER `TimeStampReq` for `message`: SHA-256 imprint, `nonce`, `certReq` true (the TSA
/// puts its certificate in the token, so `openssl ts -verify` needs only the CA).
fn request_der(message: &[u8], nonce: &[u8; 8]) -> Result<Vec<u8>, TokenProblem> {
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: sha256_alg(),
            hashed_message: OctetString::new(Sha256::of(message).0.to_vec()).map_err(|e| bad(e.to_string()))?,
        },
        req_policy: None,
        nonce: Some(Int::new(nonce).map_err(|e| bad(e.to_string()))?),
        cert_req: true,
        extensions: None,
    };
    req.to_der().map_err(|e| bad(format!("cannot encode the request: {e}")))
}

fn sha256_alg() -> spki::AlgorithmIdentifier<Any> {
    spki::AlgorithmIdentifier { oid: OID_SHA256, parameters: Some(Any::null()) }
}

/// A fresh positive 8-byte nonce whose DER integer is exactly these bytes.
fn fresh_nonce() -> [u8; 8] {
    let mut n = [0u8; 8];
    // Without the OS's randomness the nonce is weaker, not absent: the answer is still checked
    // against this request's imprint, and a token never fails a preserve.
    let _ = rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut n);
    // Top bit clear (positive) and the next one set (no leading zero byte to strip).
    n[0] = (n[0] & 0x7f) | 0x40;
    n
}

/// Ask the TSA at `url` for a token over `message` (RFC 3161 over HTTP POST,
/// `application/timestamp-query`), within [`TSA_TIMEOUT`]. The answer is checked as
/// [`check_token`] does, nonce included, against no pins (the signer's trust is the
/// verifier's business): garbage, another message's token or a replayed one is refused.
/// Returns the response's bytes, as stored.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) async fn request_token(url: &str, message: &[u8]) -> Result<(Vec<u8>, Attested), TsaError> {
    let clipped = || crate::untrusted::untrusted(&url.chars().take(200).collect::<String>()).to_string();
    let parsed = url::Url::parse(url).map_err(|_| TsaError::Url { url: clipped() })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(TsaError::Url { url: clipped() });
    }
    let shown = crate::store::redact(url);
    let nonce = fresh_nonce();
    let body = request_der(message, &nonce).map_err(|source| TsaError::Bad { url: shown.clone(), source })?;
    let http = |source| TsaError::Http { url: shown.clone(), source };
    let client = reqwest::Client::builder()
        .timeout(TSA_TIMEOUT)
        .connect_timeout(TSA_TIMEOUT)
        // A TSA answers where it is asked: no redirect to somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(http)?;
    let mut resp = client
        .post(parsed)
        .header(http::header::CONTENT_TYPE, "application/timestamp-query")
        .header(http::header::ACCEPT, "application/timestamp-reply")
        .body(body)
        .send()
        .await
        .map_err(http)?;
    if !resp.status().is_success() {
        return Err(TsaError::Status { url: shown, status: resp.status().as_u16() });
    }
    // Read bounded: a hostile or broken TSA cannot make us buffer more than MAX_TOKEN.
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if bytes.len().saturating_add(chunk.len()) > MAX_TOKEN {
            return Err(TsaError::TooLarge { url: shown });
        }
        bytes.extend_from_slice(&chunk);
    }
    let attested =
        check_token(&bytes, message, Some(&nonce), &[]).map_err(|source| TsaError::Bad { url: shown, source })?;
    Ok((bytes, attested))
}

/// A token stored for a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    /// Its object key (`timestamps/<bundle digest hex>.tsr`).
    pub key: String,
    /// SHA-256 of the object's bytes.
    pub sha256: Sha256,
    /// What it attests (not yet checked against pinned TSA certificates).
    pub attested: Attested,
}

impl Stamp {
    /// The ledger entry's reference to it.
    pub fn reference(&self) -> TimestampRef {
        TimestampRef { key: self.key.clone(), sha256: self.sha256 }
    }
}

/// Store `bytes` (a token checked by [`request_token`]) create-only as bundle `bundle`'s
/// token. `None` when another token already holds the key (a `custody timestamp` that ran
/// first): that one is the bundle's token, found by its key.
pub(crate) async fn store_token(
    store: &Store,
    bundle: &BundleId,
    bytes: Vec<u8>,
    attested: Attested,
) -> Result<Option<Stamp>, StoreError> {
    let key = token_key(bundle);
    let sha256 = Sha256::of(&bytes);
    match store.create(&key, bytes).await? {
        PutOutcome::Created | PutOutcome::AlreadyPresent => Ok(Some(Stamp { key, sha256, attested })),
        PutOutcome::Taken => Ok(None),
    }
}

/// What `custody timestamp` did for one recorded bundle.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Added {
    /// A token was obtained and stored.
    Stamped {
        /// The bundle.
        bundle: BundleId,
        /// The token.
        stamp: Stamp,
    },
    /// The bundle was left without a token, and why.
    Failed {
        /// The bundle.
        bundle: BundleId,
        /// Why (untrusted text: print escaped).
        why: String,
    },
}

/// `custody timestamp`: obtain a token from the TSA at `url` for every bundle the ledger
/// records that has none (its entry references none and no object is at its token key), and
/// store it create-only at its key. The entries are immutable: such a token is found by its key
/// and reported as added later. Each bundle is verified first (its signature, by a key of
/// `trust`): custody timestamps only a bundle that verifies. A TSA that fails stops the run
/// (the rest would wait for it too); a bundle that does not verify is skipped.
pub async fn add_missing(store: &Store, url: &str, trust: &Trust) -> Result<Vec<Added>, StoreError> {
    let entries = ledger::load_all(store).await?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in &entries {
        let Some(le) = e.entry() else { continue };
        if !seen.insert(le.bundle) || le.timestamp.is_some() {
            continue;
        }
        if !matches!(load_token(store, &le.bundle).await?, TokenObject::Absent) {
            continue;
        }
        let id = le.bundle;
        let fail = |why: String| Added::Failed { bundle: id, why };
        let Some(c) = check_stored_bundle(store, &id, trust).await? else {
            out.push(fail("the bundle is not in the store".into()));
            continue;
        };
        let (Some(sig), None) = (c.signature, c.findings.iter().find(|f| f.level == Level::Error)) else {
            let why = c.findings.iter().find(|f| f.level == Level::Error).map(|f| f.message.clone());
            out.push(fail(format!(
                "the bundle does not verify, it is not timestamped: {}",
                why.unwrap_or_else(|| "no signature".into())
            )));
            continue;
        };
        match request_token(url, &sig).await {
            Ok((bytes, attested)) => match store_token(store, &id, bytes, attested).await? {
                Some(stamp) => out.push(Added::Stamped { bundle: id, stamp }),
                None => out.push(fail("another token appeared at its key meanwhile; it is kept".into())),
            },
            Err(e) => {
                out.push(fail(crate::error_text(&e)));
                break;
            }
        }
    }
    Ok(out)
}

/// Where `custody checkpoint --out FILE --tsa URL` writes the checkpoint's token:
/// `FILE.tsr` beside it.
pub fn checkpoint_token_path(checkpoint: &std::path::Path) -> std::path::PathBuf {
    let mut s = checkpoint.as_os_str().to_owned();
    s.push(".tsr");
    std::path::PathBuf::from(s)
}

/// The message a checkpoint's token covers: the Ed25519 signature of its first signature line
/// (the signer's; witnesses' cosignatures follow it), without the 4-byte key ID.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn checkpoint_signature(note: &[u8]) -> Result<[u8; 64], TokenProblem> {
    let n = crate::read::note::Note::parse(note, crate::read::checkpoint::MAX_CHECKPOINT)
        .map_err(|e| bad(format!("the checkpoint is not a signed note: {e}")))?;
    let first = n.signatures.first().ok_or_else(|| bad("the checkpoint has no signature line"))?;
    <[u8; 64]>::try_from(first.sig.as_slice())
        .map_err(|_| bad("the checkpoint's first signature is not an Ed25519 signature (64 bytes)"))
}

/// A token (checked as `request_token` checks one) over a checkpoint's signature: the Ed25519 signature of its first signature line.
pub async fn request_checkpoint_token(url: &str, note: &[u8]) -> Result<(Vec<u8>, Attested), TsaError> {
    let sig = checkpoint_signature(note).map_err(|source| TsaError::Bad { url: crate::store::redact(url), source })?;
    request_token(url, &sig).await
}

/// `TSTInfo` as RFC 3161 §2.4.2 has it, with `genTime` kept raw: RFC 3161 allows fractional
/// seconds there, which `der`'s `GeneralizedTime` refuses.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TstInfo {
    version: TspVersion,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<x509_tsp::Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<Any>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<x509_cert::ext::Extensions>,
}

/// `SigningCertificate` (RFC 2634 §5.4) and `SigningCertificateV2` (RFC 5035 §3): only the
/// first certificate id is used (the signer's); the rest is kept raw.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Any>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    // DEFAULT sha256: absent in DER when it is SHA-256.
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<Any>,
}

/// Check a stored token (`TimeStampResp` DER) over `message`; `nonce` when the caller sent
/// one. `Ok` when the token is well-formed, granted, signed by the certificate it names and
/// covers `message`; [`Attested::trusted_as`] then says whether that signer chains to `pins`.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn check_token(
    bytes: &[u8],
    message: &[u8],
    nonce: Option<&[u8; 8]>,
    pins: &[TrustedTsa],
) -> Result<Attested, TokenProblem> {
    if bytes.len() > MAX_TOKEN {
        return Err(bad(format!("{} bytes, above the limit of {MAX_TOKEN}", bytes.len())));
    }
    let resp = TimeStampResp::from_der(bytes).map_err(|e| bad(format!("not a DER TimeStampResp: {e}")))?;
    // PKIStatus 0 is granted, 1 granted with modifications; the rest give no token.
    let status = resp.status.status as u8;
    if status > 1 {
        return Err(bad(format!("the TSA did not grant the request (PKIStatus {status})")));
    }
    let token = resp.time_stamp_token.ok_or_else(|| bad("the response carries no timeStampToken"))?;
    let (sd, tst_der) = signed_data(&token)?;
    let tst = TstInfo::from_der(&tst_der).map_err(|e| bad(format!("TSTInfo is not valid DER: {e}")))?;
    let gen_time = parse_gen_time(&tst.gen_time)?;

    // The message imprint: SHA-256 of exactly the signature bytes.
    if tst.message_imprint.hash_algorithm.oid != OID_SHA256 {
        return Err(bad(format!(
            "the message imprint uses hash {}, not SHA-256",
            tst.message_imprint.hash_algorithm.oid
        )));
    }
    if tst.message_imprint.hashed_message.as_bytes() != Sha256::of(message).0 {
        return Err(bad("the message imprint is not the SHA-256 of this signature: a token over something else"));
    }
    if let Some(n) = nonce {
        match &tst.nonce {
            Some(got) if got.as_bytes() == n => {}
            _ => return Err(bad("the nonce is not the one sent: a replayed or foreign answer")),
        }
    }

    let signers = sd.signer_infos.0.as_slice();
    let [si] = signers else {
        return Err(bad(format!("{} signers; a timestamp token has exactly one", signers.len())));
    };
    if si.digest_alg.oid != OID_SHA256 {
        return Err(bad(format!("the signer's digest algorithm is {}, not SHA-256", si.digest_alg.oid)));
    }
    let attrs = si.signed_attrs.as_ref().ok_or_else(|| bad("the signer has no signed attributes"))?;
    let content_type = single_attr(attrs, OID_CONTENT_TYPE)?.ok_or_else(|| bad("no content-type attribute"))?;
    if content_type.decode_as::<ObjectIdentifier>().ok() != Some(OID_TST_INFO) {
        return Err(bad("the content-type attribute is not id-ct-TSTInfo"));
    }
    let digest = single_attr(attrs, OID_MESSAGE_DIGEST)?.ok_or_else(|| bad("no message-digest attribute"))?;
    let digest =
        digest.decode_as::<OctetString>().map_err(|_| bad("the message-digest attribute is no OCTET STRING"))?;
    if digest.as_bytes() != Sha256::of(&tst_der).0 {
        return Err(bad("the message-digest attribute does not match the TSTInfo: the token was altered"));
    }

    let embedded = embedded_certs(&sd)?;
    let signer = find_signer(si, &embedded, pins).ok_or_else(|| {
        bad("the signer's certificate is neither in the token nor pinned (ask the TSA with certReq, or pin its certificate)")
    })?;
    let signer_der = signer.to_der().map_err(|e| bad(e.to_string()))?;
    check_signing_cert_attr(attrs, &signer_der)?;
    let signed = attrs.to_der().map_err(|e| bad(format!("cannot encode the signed attributes: {e}")))?;
    verify_signature(
        &signer.tbs_certificate.subject_public_key_info,
        &si.signature_algorithm.oid,
        &signed,
        si.signature.as_bytes(),
    )
    .map_err(|e| bad(format!("the CMS signature does not verify: {}", e.0)))?;
    check_tsa_cert(signer, gen_time)?;
    let trusted_as = chain_to_pins(signer, &signer_der, &embedded, pins, gen_time);
    Ok(Attested {
        gen_time,
        tsa: signer.tbs_certificate.subject.to_string().chars().take(200).collect(),
        serial: hex::encode(tst.serial_number.as_bytes()),
        trusted_as,
    })
}

/// The token's SignedData and its eContent (the TSTInfo's DER).
fn signed_data(token: &ContentInfo) -> Result<(SignedData, Vec<u8>), TokenProblem> {
    if token.content_type != OID_SIGNED_DATA {
        return Err(bad(format!("the token's content type is {}, not SignedData", token.content_type)));
    }
    let sd: SignedData = token.content.decode_as().map_err(|e| bad(format!("SignedData is not valid DER: {e}")))?;
    if sd.encap_content_info.econtent_type != OID_TST_INFO {
        return Err(bad("the signed content is not a TSTInfo"));
    }
    let econtent = sd.encap_content_info.econtent.as_ref().ok_or_else(|| bad("the TSTInfo is missing (detached)"))?;
    if econtent.tag() != Tag::OctetString {
        return Err(bad("the TSTInfo is not wrapped in an OCTET STRING"));
    }
    let tst = econtent.value().to_vec();
    Ok((sd, tst))
}

/// The attribute `oid`'s one value; more than one attribute or value of it is refused.
fn single_attr(attrs: &x509_cert::attr::Attributes, oid: ObjectIdentifier) -> Result<Option<Any>, TokenProblem> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let Some(a) = found.next() else { return Ok(None) };
    if found.next().is_some() || a.values.len() != 1 {
        return Err(bad(format!("attribute {oid} appears more than once or with more than one value")));
    }
    Ok(a.values.get(0).cloned())
}

fn embedded_certs(sd: &SignedData) -> Result<Vec<Certificate>, TokenProblem> {
    let Some(set) = &sd.certificates else { return Ok(Vec::new()) };
    if set.0.len() > MAX_TOKEN_CERTS {
        return Err(bad(format!("{} certificates in the token, above the limit of {MAX_TOKEN_CERTS}", set.0.len())));
    }
    Ok(set
        .0
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect())
}

/// The certificate the SignerInfo names, from the token's or the pins.
fn find_signer<'a>(si: &SignerInfo, embedded: &'a [Certificate], pins: &'a [TrustedTsa]) -> Option<&'a Certificate> {
    let all = embedded.iter().chain(pins.iter().map(|p| &p.cert));
    match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => all
            .into_iter()
            .find(|c| c.tbs_certificate.issuer == is.issuer && c.tbs_certificate.serial_number == is.serial_number),
        SignerIdentifier::SubjectKeyIdentifier(ski) => all
            .into_iter()
            .find(|c| matches!(c.tbs_certificate.get::<SubjectKeyIdentifier>(), Ok(Some((_, k))) if k.0 == ski.0)),
    }
}

/// The signing-certificate attribute (v2 with SHA-256, or v1 with SHA-1) names the signer.
fn check_signing_cert_attr(attrs: &x509_cert::attr::Attributes, signer_der: &[u8]) -> Result<(), TokenProblem> {
    if let Some(v2) = single_attr(attrs, OID_SIGNING_CERT_V2)? {
        let sc: SigningCertificateV2 =
            v2.decode_as().map_err(|e| bad(format!("the ESSCertIDv2 attribute is not valid DER: {e}")))?;
        let first = sc.certs.first().ok_or_else(|| bad("the ESSCertIDv2 attribute names no certificate"))?;
        let alg = first.hash_algorithm.as_ref().map(|a| a.oid).unwrap_or(OID_SHA256);
        if alg != OID_SHA256 {
            return Err(bad(format!("the ESSCertIDv2 hash is {alg}, not SHA-256")));
        }
        if first.cert_hash.as_bytes() != Sha256::of(signer_der).0 {
            return Err(bad("the ESSCertIDv2 attribute names another certificate than the signer's"));
        }
        return Ok(());
    }
    if let Some(v1) = single_attr(attrs, OID_SIGNING_CERT)? {
        let sc: SigningCertificate =
            v1.decode_as().map_err(|e| bad(format!("the ESSCertID attribute is not valid DER: {e}")))?;
        let first = sc.certs.first().ok_or_else(|| bad("the ESSCertID attribute names no certificate"))?;
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, signer_der);
        if first.cert_hash.as_bytes() != sha1.as_ref() {
            return Err(bad("the ESSCertID attribute names another certificate than the signer's"));
        }
        return Ok(());
    }
    Err(bad("no signing-certificate attribute (ESSCertID or ESSCertIDv2) binds the signer's certificate"))
}

/// Verify `sig` over `msg` with the key of `spki`: RSA PKCS#1 v1.5 with SHA-256 (signature
/// algorithm `rsaEncryption` or `sha256WithRSAEncryption`) or ECDSA P-256 with SHA-256.
fn verify_signature(
    spki: &spki::SubjectPublicKeyInfoOwned,
    alg: &ObjectIdentifier,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), TokenProblem> {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256};
    let key = spki.subject_public_key.as_bytes().ok_or_else(|| bad("the public key is not a whole number of bytes"))?;
    let ok = match (spki.algorithm.oid, *alg) {
        (OID_RSA, OID_RSA | OID_RSA_SHA256) => {
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key).verify(msg, sig).is_ok()
        }
        (OID_EC_PUBLIC_KEY, OID_ECDSA_SHA256) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            if curve != Some(OID_P256) {
                return Err(bad("an EC key on another curve than P-256 (not supported)"));
            }
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key).verify(msg, sig).is_ok()
        }
        (k, a) => {
            return Err(bad(format!(
            "key type {k} with signature algorithm {a} is not supported (RSA PKCS#1 v1.5 or ECDSA P-256, with SHA-256)"
        )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(bad("bad signature"))
    }
}

/// The signer certificate may time-stamp: extended key usage `timeStamping` when it has the
/// extension, and valid at `genTime`.
fn check_tsa_cert(c: &Certificate, gen_time: DateTime<Utc>) -> Result<(), TokenProblem> {
    match c.tbs_certificate.get::<ExtendedKeyUsage>() {
        Ok(Some((_, eku))) if !eku.0.contains(&OID_KP_TIME_STAMPING) => {
            return Err(bad(
                "the signer's certificate is not for time-stamping (its extendedKeyUsage lacks timeStamping)",
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(bad(format!("the signer's extendedKeyUsage is not valid DER: {e}"))),
    }
    valid_at(c, gen_time, "the signer's certificate")
}

fn valid_at(c: &Certificate, t: DateTime<Utc>, what: &str) -> Result<(), TokenProblem> {
    let v = &c.tbs_certificate.validity;
    let secs = |x: x509_cert::time::Time| i64::try_from(x.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    let ts = t.timestamp();
    if ts < secs(v.not_before) || ts > secs(v.not_after) {
        return Err(bad(format!("{what} was not valid at the token's time {t}")));
    }
    Ok(())
}

/// The pin `signer` is, or chains to through certificates of the token (each checked: its
/// issuer's signature, a CA, valid at `genTime`); at most [`MAX_CHAIN`] steps.
fn chain_to_pins(
    signer: &Certificate,
    signer_der: &[u8],
    embedded: &[Certificate],
    pins: &[TrustedTsa],
    gen_time: DateTime<Utc>,
) -> Option<String> {
    let mut cur = signer.clone();
    let mut cur_der = signer_der.to_vec();
    for _ in 0..MAX_CHAIN {
        if let Some(p) = pins.iter().find(|p| p.der == cur_der) {
            return Some(p.origin.clone());
        }
        if let Some(p) = pins.iter().find(|p| issued_by(&cur, &p.cert)) {
            return Some(p.origin.clone());
        }
        let next = embedded.iter().find(|c| {
            c.tbs_certificate != cur.tbs_certificate
                && issued_by(&cur, c)
                && is_ca(c)
                && valid_at(c, gen_time, "an intermediate certificate").is_ok()
        })?;
        cur = next.clone();
        cur_der = cur.to_der().ok()?;
    }
    None
}

fn is_ca(c: &Certificate) -> bool {
    matches!(c.tbs_certificate.get::<BasicConstraints>(), Ok(Some((_, b))) if b.ca)
}

/// `child` names `issuer` as its issuer and carries a valid signature by its key.
fn issued_by(child: &Certificate, issuer: &Certificate) -> bool {
    if child.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let (Ok(tbs), Some(sig)) = (child.tbs_certificate.to_der(), child.signature.as_bytes()) else { return false };
    verify_signature(&issuer.tbs_certificate.subject_public_key_info, &child.signature_algorithm.oid, &tbs, sig).is_ok()
}

/// `genTime`: a DER GeneralizedTime `YYYYMMDDHHMMSS[.f+]Z` (fraction without trailing zeros),
/// truncated to the second.
fn parse_gen_time(a: &Any) -> Result<DateTime<Utc>, TokenProblem> {
    let problem = || bad("genTime is not a DER GeneralizedTime (YYYYMMDDHHMMSS[.fff]Z)");
    if a.tag() != Tag::GeneralizedTime {
        return Err(problem());
    }
    let s = std::str::from_utf8(a.value()).map_err(|_| problem())?;
    let body = s.strip_suffix('Z').ok_or_else(problem)?;
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem());
    }
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) || f.ends_with('0') {
            return Err(problem());
        }
    }
    let n = |r: std::ops::Range<usize>| whole.get(r).and_then(|x| x.parse::<u32>().ok()).ok_or_else(problem);
    let year = i32::try_from(n(0..4)?).map_err(|_| problem())?;
    Utc.with_ymd_and_hms(year, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?).single().ok_or_else(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_time_takes_fractions_and_refuses_non_der() {
        let t = |s: &str| parse_gen_time(&Any::new(Tag::GeneralizedTime, s.as_bytes().to_vec()).unwrap());
        assert_eq!(t("20261208010203Z").unwrap(), Utc.with_ymd_and_hms(2026, 12, 8, 1, 2, 3).unwrap());
        assert_eq!(t("20261208010203.25Z").unwrap(), Utc.with_ymd_and_hms(2026, 12, 8, 1, 2, 3).unwrap());
        for s in ["20261208010203.250Z", "20261208010203", "2026120801020Z", "20261308010203Z", "20261208010203.Z"] {
            assert!(t(s).is_err(), "{s}");
        }
    }

    #[test]
    fn request_is_der_with_sha256_imprint_and_nonce() {
        let nonce = fresh_nonce();
        let der = request_der(b"sig", &nonce).unwrap();
        let req = TimeStampReq::from_der(&der).unwrap();
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), Sha256::of(b"sig").0);
        assert_eq!(req.nonce.unwrap().as_bytes(), nonce);
        assert!(req.cert_req);
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        for b in [&b""[..], b"\x30\x00", b"\x30\x80\x00\x00", &[0x30; 100]] {
            assert!(check_token(b, b"m", None, &[]).is_err());
        }
        assert!(check_token(&vec![0u8; MAX_TOKEN + 1], b"m", None, &[]).is_err());
    }
}
