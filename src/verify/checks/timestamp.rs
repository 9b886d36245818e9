//! The `timestamp` check: a bundle's RFC 3161 token (`docs/format.md` §6.6 lists the rules
//! T1–T6; each is one branch here).
//!
//! The token is the object `timestamps/<bundle digest hex>.tsr`. Its ledger entry either
//! references it (`timestamp`: key and SHA-256; written by the preserve that sealed the
//! bundle) or does not (a token added later by `custody timestamp`: the entry is immutable, so
//! the object is found by its key). A referenced token bounds the bundle's self-asserted times
//! from both sides; a later one only proves the signature existed by its `genTime`.

use chrono::{DateTime, Duration, Utc};

use super::{minus, plus};
use crate::digest::{BundleId, Sha256};
use crate::read::ledger::LedgerEntry;
use crate::store::versions::ReadAt;
use crate::store::{Store, StoreError};
use crate::tsa::{check_token, token_key, TrustedTsa, MAX_TOKEN};
use crate::verify::findings::{Findings, Location};
use crate::verify::report::{FindingKind, TimestampInfo};

/// A bundle's token object as read from the store.
#[derive(Debug, Clone)]
pub(crate) enum TokenObject {
    /// No object at the token's key.
    Absent,
    /// The object's bytes (at most [`MAX_TOKEN`]).
    Present(Vec<u8>),
    /// An object that cannot be a token (too large, only delete markers).
    Unreadable(String),
}

/// Read bundle `id`'s token object (its first version in a versioned store), bounded.
pub(crate) async fn load_token(store: &Store, id: &BundleId) -> Result<TokenObject, StoreError> {
    let key = token_key(id);
    let Some(o) = store.object(&key).await? else { return Ok(TokenObject::Absent) };
    if o.at == ReadAt::NoVersion {
        return Ok(TokenObject::Unreadable("the key holds only delete markers".into()));
    }
    match store.read_small(&key, &o.at, MAX_TOKEN as u64).await {
        Ok(Some(b)) => Ok(TokenObject::Present(b)),
        Ok(None) => Ok(TokenObject::Absent),
        Err(e @ StoreError::TooLarge { .. }) => Ok(TokenObject::Unreadable(e.to_string())),
        Err(e) => Err(e),
    }
}

/// What the verifier asks of tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy<'a> {
    /// Pinned TSA certificates (`--trusted-tsa`).
    pub pins: &'a [TrustedTsa],
    /// Every recorded bundle must have a token (`require_timestamp`).
    pub required: bool,
    /// The allowed skew between self-asserted times and the token's.
    pub max_skew: Duration,
}

/// Check bundle `le.bundle`'s token; `signature` is the bundle envelope's signature (`None`
/// when the envelope did not parse: the token cannot be checked, the bundle already fails).
/// `position` is the entry's, for locations. The attested time, when a token checked out.
pub(crate) fn check(
    le: &LedgerEntry,
    position: u64,
    token: &TokenObject,
    signature: Option<&[u8; 64]>,
    policy: Policy<'_>,
    fs: &mut Findings,
) -> Option<TimestampInfo> {
    fs.ran("timestamp");
    let key = token_key(&le.bundle);
    let at = Location::StoreObject(key.clone());
    let entry_at = Location::LedgerEntry(position);
    // T1: a reference names the bundle's own token key.
    if let Some(r) = &le.timestamp {
        if r.key != key {
            fs.error(
                FindingKind::TimestampMismatch,
                entry_at.clone(),
                format!(
                    "the entry references the token `{}`, but bundle {}'s token is at `{key}`: a token of another bundle",
                    r.key.chars().take(200).collect::<String>(),
                    le.bundle
                ),
            );
        }
    }
    let bytes = match token {
        TokenObject::Present(b) => b,
        TokenObject::Unreadable(why) => {
            fs.error(FindingKind::TimestampInvalid, at, format!("the token object cannot be read as a token: {why}"));
            return None;
        }
        // T2 / T6: a referenced token must be there; an unreferenced one only where required.
        TokenObject::Absent => {
            if le.timestamp.is_some() {
                fs.error(
                    FindingKind::TimestampMissing,
                    at,
                    "the ledger entry references this token, but the store does not hold it (deleted?)",
                );
            } else if policy.required {
                fs.error(
                    FindingKind::TimestampMissing,
                    at,
                    "this store requires an RFC 3161 timestamp on every bundle (require_timestamp), and this bundle has none: run `custody timestamp --store URL` to add one",
                );
            } else {
                fs.detail("timestamp", "no token: the bundle's times are self-asserted (`preserve --tsa URL` or `custody timestamp` adds one)");
            }
            return None;
        }
    };
    let recorded = le.timestamp.is_some();
    // T2: the object is the one the entry references.
    if let Some(r) = &le.timestamp {
        let sha = Sha256::of(bytes);
        if sha != r.sha256 {
            fs.error(
                FindingKind::TimestampMismatch,
                at.clone(),
                format!(
                    "the token object hashes to {sha}, but the ledger entry references {}: the token was replaced",
                    r.sha256
                ),
            );
        }
    }
    let sig = signature?;
    // T3: a valid token over this bundle's signature.
    let attested = match check_token(bytes, sig, None, policy.pins) {
        Ok(a) => a,
        Err(p) => {
            fs.error(FindingKind::TimestampInvalid, at, format!("the token does not verify: {p}"));
            return None;
        }
    };
    // T4: by a pinned TSA.
    match (&attested.trusted_as, policy.pins.is_empty()) {
        (Some(_), _) => {}
        (None, true) => fs.warn(
            FindingKind::TimestampUntrusted,
            at.clone(),
            format!(
                "the token is signed by `{}`, but no TSA certificate is pinned: its time is not trusted (give --trusted-tsa CERT)",
                attested.tsa
            ),
        ),
        (None, false) => fs.error(
            FindingKind::TimestampUntrusted,
            at.clone(),
            format!("the token is signed by `{}`, which is not (and is not issued by) a pinned TSA certificate", attested.tsa),
        ),
    }
    // T5: the self-asserted times agree with the attested one.
    let g = attested.gen_time;
    let skew = policy.max_skew;
    if le.sealed_at > plus(g, skew) {
        fs.error(
            FindingKind::TimeContradicted,
            entry_at.clone(),
            format!("the bundle claims it was sealed at {}, after its signature was timestamped at {g}: more than the allowed skew", le.sealed_at),
        );
    }
    if recorded {
        if le.sealed_at < minus(g, skew) {
            fs.error(
                FindingKind::TimeContradicted,
                entry_at.clone(),
                format!("the bundle claims it was sealed at {}, but its token (obtained right after sealing) says {g}: the sealing time was set back", le.sealed_at),
            );
        }
        if le.appended_at < minus(g, skew) {
            fs.error(
                FindingKind::TimeContradicted,
                entry_at,
                format!(
                    "the entry claims it was appended at {}, before the token it references was issued at {g}",
                    le.appended_at
                ),
            );
        }
    }
    let trusted = attested.trusted_as.is_some();
    let how = match (&attested.trusted_as, recorded) {
        (Some(o), true) => format!("genTime {g} by `{}` (pinned: {o}), referenced by the ledger entry", attested.tsa),
        (Some(o), false) => format!(
            "added later, at {g}, by `{}` (pinned: {o}): the signature existed by then; how long before is not attested",
            attested.tsa
        ),
        (None, _) => format!("genTime {g} by `{}` (NOT pinned)", attested.tsa),
    };
    fs.detail("timestamp", how);
    Some(TimestampInfo { key, gen_time: g, tsa: attested.tsa, serial: attested.serial, recorded, trusted })
}

/// The attested time of a bare bundle file's token (`verify FILE --timestamp TOKEN`): T3–T5
/// as for a token added later (there is no entry to bind it).
pub(crate) fn check_file_token(
    bytes: &[u8],
    signature: Option<&[u8; 64]>,
    sealed_at: Option<DateTime<Utc>>,
    policy: Policy<'_>,
    fs: &mut Findings,
) -> Option<TimestampInfo> {
    fs.ran("timestamp");
    let at = Location::StoreObject("--timestamp".into());
    let sig = signature?;
    let a = match check_token(bytes, sig, None, policy.pins) {
        Ok(a) => a,
        Err(p) => {
            fs.error(FindingKind::TimestampInvalid, at, format!("the token does not verify: {p}"));
            return None;
        }
    };
    if a.trusted_as.is_none() {
        let msg = format!("the token is signed by `{}`, which is not (and is not issued by) a pinned TSA certificate (give --trusted-tsa CERT)", a.tsa);
        if policy.pins.is_empty() {
            fs.warn(FindingKind::TimestampUntrusted, at.clone(), msg);
        } else {
            fs.error(FindingKind::TimestampUntrusted, at.clone(), msg);
        }
    }
    if let Some(s) = sealed_at {
        if s > plus(a.gen_time, policy.max_skew) {
            fs.error(
                FindingKind::TimeContradicted,
                at,
                format!(
                    "the bundle claims it was sealed at {s}, after its signature was timestamped at {}",
                    a.gen_time
                ),
            );
        }
    }
    fs.detail("timestamp", format!("genTime {} by `{}`: the signature existed by then", a.gen_time, a.tsa));
    Some(TimestampInfo {
        key: "--timestamp".into(),
        gen_time: a.gen_time,
        tsa: a.tsa,
        serial: a.serial,
        recorded: false,
        trusted: a.trusted_as.is_some(),
    })
}

/// A checkpoint's token (`FILE.tsr`): over the signature of its first signature line, which
/// must be a pinned key's (T3, T4), and its `genTime` within the skew of the checkpoint's own
/// time (T5: `custody checkpoint` asks right after signing).
pub(crate) fn check_checkpoint_token(
    checkpoint: &[u8],
    token: &[u8],
    trust: &crate::verify::Trust,
    policy: Policy<'_>,
    fs: &mut Findings,
) {
    let at = Location::Checkpoint;
    let parsed = crate::read::checkpoint::parse(checkpoint);
    let (note, cp) = match &parsed {
        Ok(crate::read::checkpoint::AnyCheckpoint::Note { note, cp }) => (note, cp),
        // Reported by the anchor check; a legacy checkpoint is never timestamped.
        _ => return,
    };
    let Some(first) = note.signatures.first() else { return };
    let by_pinned = trust.keys().iter().any(|k| note.verify_ed25519(first, &k.key));
    let Ok(sig) = <[u8; 64]>::try_from(first.sig.as_slice()) else { return };
    if !by_pinned {
        fs.error(
            FindingKind::TimestampInvalid,
            at,
            "the checkpoint's token covers its first signature line, which is not a valid signature by a pinned key",
        );
        return;
    }
    let a = match check_token(token, &sig, None, policy.pins) {
        Ok(a) => a,
        Err(p) => {
            fs.error(FindingKind::TimestampInvalid, at, format!("the checkpoint's token does not verify: {p}"));
            return;
        }
    };
    if a.trusted_as.is_none() {
        let msg = format!("the checkpoint's token is signed by `{}`, which is not (and is not issued by) a pinned TSA certificate (give --trusted-tsa CERT)", a.tsa);
        if policy.pins.is_empty() {
            fs.warn(FindingKind::TimestampUntrusted, at.clone(), msg);
        } else {
            fs.error(FindingKind::TimestampUntrusted, at.clone(), msg);
        }
    }
    let t = cp.time;
    if t > plus(a.gen_time, policy.max_skew) || t < minus(a.gen_time, policy.max_skew) {
        fs.error(
            FindingKind::TimeContradicted,
            at,
            format!(
                "the checkpoint claims it was taken at {t}, but its token says {}: more than the allowed skew",
                a.gen_time
            ),
        );
    }
    fs.detail("anchor", format!("checkpoint timestamped at {} by `{}`", a.gen_time, a.tsa));
}
