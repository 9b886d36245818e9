//! The verifier: checks a bundle (and its place in a store's ledger) and collects every
//! finding instead of stopping at the first.
//!
//! `check_bundle` (in `bundle.rs`) is a short orchestrator over small checks (`checks/`:
//! archive, envelope, signature, analysis, contents, ledger), each adding to one
//! `findings::Findings` collector whose findings carry a typed [`Location`]. The archive is
//! read by `crate::read::archive` (bounded, strict) and the envelope, manifest, ledger
//! entries and checkpoints are parsed into checked types by `crate::read` before any crypto.
//! [`verify_in_store`] and [`verify_all`] (in `store.rs`) add the ledger checks.

mod bundle;
pub(crate) mod checks;
internal_mod!(findings);
pub mod report;
mod store;
mod trust;

use chrono::Duration;

use crate::bundle::manifest::Manifest;
use crate::digest::BundleId;
use crate::keys::PublicKey;
use crate::read::archive::Limits;
// The raw checker gives the manifest as read whatever the verdict: internal (custody's tests
// reach it with the `internals` feature); tools verify through `crate::Bundle::open`.
#[cfg(not(feature = "internals"))]
pub(crate) use bundle::check_bundle;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use bundle::{check_bundle, BundleCheck};
pub use findings::Location;
pub use report::{Finding, FindingKind, Level, Report, Subject};
pub(crate) use store::{check_stored_bundle, verify_in_store_keeping};
pub use store::{
    verify_all, verify_all_anchored, verify_all_with, verify_in_store, verify_in_store_anchored, verify_in_store_with,
};
pub(crate) use trust::Judged;
pub use trust::{Pin, Trust, TrustFileError, MAX_PINS, MAX_TRUST_FILE, TRUST_FILE_FORMAT};

/// What `verify --checkpoint` compares a store's ledger with: a checkpoint file's bytes and
/// the witnesses who must have cosigned it (`docs/format.md` §6.5).
#[derive(Debug, Clone, Default)]
pub struct Anchor {
    /// The checkpoint file's bytes.
    pub checkpoint: Vec<u8>,
    /// Witness public keys whose cosignatures count.
    pub witnesses: Vec<PublicKey>,
    /// How many of them must have cosigned (0: none required; cosignature lines that match a
    /// key are still checked).
    pub required: usize,
    /// The checkpoint's RFC 3161 token (`FILE.tsr` beside it, from `custody checkpoint --tsa`).
    pub timestamp: Option<Vec<u8>>,
}

impl Anchor {
    /// A checkpoint with no witness required.
    pub fn new(checkpoint: &[u8]) -> Anchor {
        Anchor { checkpoint: checkpoint.to_vec(), witnesses: Vec::new(), required: 0, timestamp: None }
    }
}

/// Verification options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Archive limits.
    pub limits: Limits,
    /// Allowed clock skew between a bundle's times and ledger times (the sealing host's and
    /// the appending host's clocks may differ). Used by the ledger checks
    /// (`docs/format.md` §6.4, rules P2 and P3):
    /// * `sealed_at` may be later than its own entry's, or its successor's, `appended_at` by at
    ///   most this much;
    /// * the head a bundle names (`ledger_prev`) must have been appended no later than
    ///   `collector.started_at + max_skew` (the sealer read it before sealing);
    /// * an entry that lies between the bundle's recorded ledger head and its own position must
    ///   have been appended no earlier than `collector.started_at - max_skew` (otherwise the
    ///   sealer would have seen it as the head: the bundle was not sealed against this ledger).
    pub max_skew: Duration,
    /// The digest the bundle file must have (from the ledger, a ticket, a custody form). A
    /// bundle verified in a store is always checked against its name; for a bare file this is
    /// the only thing that binds the compressed bytes themselves (see `docs/threat-model.md`).
    pub expected_digest: Option<BundleId>,
    /// Pinned TSA certificates (`--trusted-tsa`): a bundle's RFC 3161 token must be signed by
    /// one of them, or by a certificate one of them issued (`docs/format.md` §6.6).
    pub trusted_tsa: Vec<crate::tsa::TrustedTsa>,
    /// Every bundle verified in a store must have a timestamp token (`require_timestamp` in
    /// the store config, or `verify --require-timestamp`).
    pub require_timestamp: bool,
    /// For a bundle file: the bytes of its token (`verify FILE --timestamp TOKEN`).
    pub timestamp_token: Option<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            max_skew: Duration::minutes(5),
            expected_digest: None,
            trusted_tsa: Vec::new(),
            require_timestamp: false,
            timestamp_token: None,
        }
    }
}

impl Options {
    /// The token policy of the `timestamp` check.
    pub(crate) fn tsa_policy(&self) -> checks::timestamp::Policy<'_> {
        checks::timestamp::Policy { pins: &self.trusted_tsa, required: self.require_timestamp, max_skew: self.max_skew }
    }
}

/// Why a `--max-skew` value was rejected.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a duration: use a number with a unit s, m, h or d (e.g. 30s, 5m, 2h), at most 7d")]
pub struct SkewError(String);

/// Parse a skew such as `90s`, `5m`, `2h`, `1d` (a bare number is seconds; at most 7 days).
pub fn parse_skew(s: &str) -> Result<Duration, SkewError> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    let n: i64 = num.parse().map_err(|_| SkewError(s.into()))?;
    let secs = n.checked_mul(mult).filter(|v| (0..=7 * 86_400).contains(v)).ok_or_else(|| SkewError(s.into()))?;
    Ok(Duration::seconds(secs))
}

/// One stored ledger entry checked on its own and against `prev`, the entry stored just
/// before it (for `custody list`): it parses, sits at the position it names, is signed by a
/// pinned key with a good signature, links to `prev` and names its bundle's key (rules L3-L6
/// of `docs/format.md` §6.4). Its store id is not compared with `store.json`, nor the format
/// order across entries (`list` reads the entries only; `verify --store URL --all` checks the
/// whole chain). The findings; none when valid.
pub fn check_ledger_entry(
    e: &crate::read::ledger::StoredEntry,
    prev: Option<&crate::read::ledger::StoredEntry>,
    trust: &Trust,
) -> Vec<Finding> {
    let mut fs = findings::Findings::default();
    let mut seen_v2 = false;
    checks::ledger::check_entry(e, prev, trust, None, &mut seen_v2, &mut fs);
    fs.list
}

/// Verify a bundle file: the report, and the manifest **as read** — also when the bundle did
/// not verify (`custody show` prints it, marked as such). Only [`crate::VerifiedBundle`]
/// guarantees its manifest, analysis and files verified.
pub fn verify_file(
    path: &std::path::Path,
    trust: &Trust,
    opts: &Options,
) -> Result<(Report, Option<Manifest>), std::io::Error> {
    let file = std::fs::File::open(path)?;
    let c = check_bundle(file, trust, opts, None);
    let subject = Subject {
        kind: "file".into(),
        path: Some(path.display().to_string()),
        bundle: Some(c.digest.to_string()),
        size: Some(c.size),
        store: None,
    };
    let mut ran = c.ran.clone();
    ran.retain(|n| *n != "ledger");
    let mut details = c.details.clone();
    details.push((
        "ledger",
        match c.manifest.as_ref().and_then(|m| m.supplement_of.as_ref()) {
            // The signed link is only checked against the ledger (docs/format.md §6.4 P4).
            Some(s) => format!("not checked: pass --store URL DIGEST to check the bundle's ledger position, and its link as a supplement of {}", s.bundle),
            None => "not checked: pass --store URL DIGEST to check the bundle's ledger position".into(),
        },
    ));
    let mut order = report::BUNDLE_CHECKS.to_vec();
    let mut findings = c.findings;
    let mut timestamp = None;
    if let Some(token) = &opts.timestamp_token {
        let mut fs = findings::Findings { list: findings, ran, details };
        let sealed_at = c.manifest.as_ref().map(|m| m.sealed_at);
        timestamp =
            checks::timestamp::check_file_token(token, c.signature.as_ref(), sealed_at, opts.tsa_policy(), &mut fs);
        (findings, ran, details) = (fs.list, fs.ran, fs.details);
        order.push("timestamp");
    }
    let mut r = Report::build(subject, findings, &ran, &order, &details);
    r.signer = c.signer;
    r.timestamp = timestamp;
    Ok((r, c.manifest))
}
