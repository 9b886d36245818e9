//! Findings, checks and the verify report (human checklist and JSON).
//!
//! The JSON form is `schemas/verify-report.v1.schema.json`; a compliance tool can archive it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use super::findings::Location;
use crate::untrusted::untrusted as u;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Level {
    /// Verification fails.
    Error,
    /// Worth attention; verification still passes.
    Warning,
}

/// What kind of problem a finding is. Each kind belongs to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum FindingKind {
    // archive
    ArchiveCorrupt,
    ArchiveTruncated,
    UnsupportedMember,
    BadMemberName,
    DuplicateMember,
    MemberTooLarge,
    TrailingData,
    DecompressionBomb,
    TooManyMembers,
    MemberOrder,
    NonCanonical,
    BundleDigestMismatch,
    BundleMissing,
    // manifest / envelope
    MissingManifest,
    MissingEnvelope,
    ManifestInvalid,
    EnvelopeInvalid,
    PayloadMismatch,
    /// `analysis.json` does not match the manifest's `analysis_ref` (or one is missing).
    AnalysisMismatch,
    // blobs / entries
    BlobHashMismatch,
    BlobMissing,
    BlobSizeMismatch,
    BlobExtra,
    BlobOrder,
    EntryDuplicate,
    EntriesUnsorted,
    // journal, merkle
    JournalBroken,
    JournalMismatch,
    MerkleMismatch,
    // signature
    BadSignature,
    SignerMismatch,
    UntrustedSigner,
    /// The bundle's signer is pinned, but not as a collector key (`--trusted-ledger-key`, or
    /// roles in `--trusted-keys`).
    SignerRoleMismatch,
    /// The bundle's signer is pinned as a collector key, but not for the times the manifest
    /// states (`not_before`/`not_after` in `--trusted-keys`).
    SignerOutsideValidity,
    // ledger
    LedgerMissing,
    LedgerEntryInvalid,
    LedgerLinkBroken,
    LedgerGap,
    LedgerDuplicateBundle,
    LedgerPositionMismatch,
    LedgerUntrustedSigner,
    /// An entry's signer is pinned, but not as a ledger key.
    LedgerSignerRoleMismatch,
    /// An entry's signer is pinned as a ledger key, but not for its `appended_at`.
    LedgerSignerOutsideValidity,
    LedgerBadSignature,
    LedgerBundleMismatch,
    LedgerLinkMismatch,
    ClockSkew,
    UnreferencedBundle,
    /// An object under `ledger/` or `bundles/` whose key no entry or bundle has (junk, or
    /// planted): reported, not part of the ledger.
    StrayObject,
    /// A bundle in the store was sealed against a ledger position or entry this ledger no
    /// longer has: entries were deleted (truncation, rollback) or rewritten.
    LedgerTruncated,
    /// `store.json` is missing or unusable, or an entry names another store's id.
    StoreIdMismatch,
    /// A `custody-ledger/v1` entry after a v2 one (an older custody appended it).
    LedgerFormatDowngrade,
    /// An entry carries something this version of custody does not check: reported, not
    /// failed. (None today: a supplement link is checked by L9 and P4, a timestamp token by
    /// the `timestamp` check; kept for reports of earlier versions.)
    LedgerNotChecked,
    /// An entry's `supplement_of` names no bundle recorded before it (a forward reference, a
    /// bundle of another ledger, its own bundle) or a supplement.
    SupplementOfUnknown,
    /// A bundle's signed `supplement_of` and its ledger entry's disagree.
    SupplementMismatch,
    EmptyStore,
    // timestamp (RFC 3161)
    /// A bundle's timestamp token does not parse or does not verify (status, CMS signature,
    /// signed attributes, certificate use, message imprint).
    TimestampInvalid,
    /// A token's signer is not a pinned TSA certificate, nor issued by one (an error when
    /// certificates are pinned, a warning when none is).
    TimestampUntrusted,
    /// A ledger entry's token reference names another key, or another object's SHA-256.
    TimestampMismatch,
    /// A referenced token is gone, or a bundle has no token where tokens are required.
    TimestampMissing,
    /// A self-asserted time (`sealed_at`, `appended_at`) contradicts the token's `genTime`
    /// beyond the allowed skew.
    TimeContradicted,
    // anchor (checkpoint)
    CheckpointInvalid,
    Rollback,
    /// The checkpoint names another store (by store id; a legacy one by URL) than the one
    /// verified.
    CheckpointOtherStore,
    /// Fewer witnesses than required cosigned the checkpoint (`--witnesses K`).
    CosignatureMissing,
    /// A cosignature line of a given witness key does not verify.
    CosignatureInvalid,
    // retention (object lock)
    RetentionMissing,
    // versions (a versioned bucket's history)
    /// A version written over an entry, a bundle or `store.json` after the one written
    /// create-only: what readers that do not list versions see instead of the evidence.
    LaterVersion,
    /// A delete marker on an entry, a bundle or `store.json`: the evidence is hidden from
    /// readers that do not list versions (not deleted: the first version is verified).
    DeleteMarker,
    /// The bucket's versioning is not enabled (never, or suspended): an overwrite or a delete
    /// leaves no older version to audit.
    VersioningOff,
}

impl FindingKind {
    /// The check this kind belongs to.
    pub fn check(&self) -> &'static str {
        use FindingKind::*;
        match self {
            ArchiveCorrupt | ArchiveTruncated | UnsupportedMember | BadMemberName | DuplicateMember
            | MemberTooLarge | TrailingData | DecompressionBomb | TooManyMembers | MemberOrder | NonCanonical => {
                "archive"
            }
            BundleDigestMismatch | BundleMissing => "bundle_digest",
            MissingManifest | MissingEnvelope | ManifestInvalid | EnvelopeInvalid | PayloadMismatch => "manifest",
            AnalysisMismatch => "analysis",
            BlobHashMismatch | BlobSizeMismatch => "blobs",
            BlobMissing | BlobExtra | BlobOrder | EntryDuplicate | EntriesUnsorted => "entries",
            JournalBroken | JournalMismatch => "journal",
            MerkleMismatch => "merkle",
            BadSignature | SignerMismatch => "signature",
            UntrustedSigner | SignerRoleMismatch | SignerOutsideValidity => "signer_trusted",
            LedgerMissing
            | LedgerEntryInvalid
            | LedgerLinkBroken
            | LedgerGap
            | LedgerDuplicateBundle
            | LedgerPositionMismatch
            | LedgerUntrustedSigner
            | LedgerSignerRoleMismatch
            | LedgerSignerOutsideValidity
            | LedgerBadSignature
            | LedgerBundleMismatch
            | LedgerLinkMismatch
            | ClockSkew
            | UnreferencedBundle
            | StrayObject
            | LedgerTruncated
            | StoreIdMismatch
            | LedgerFormatDowngrade
            | LedgerNotChecked
            | SupplementOfUnknown
            | SupplementMismatch
            | EmptyStore => "ledger",
            TimestampInvalid | TimestampUntrusted | TimestampMismatch | TimestampMissing | TimeContradicted => {
                "timestamp"
            }
            CheckpointInvalid | Rollback | CheckpointOtherStore | CosignatureMissing | CosignatureInvalid => "anchor",
            RetentionMissing => "retention",
            LaterVersion | DeleteMarker | VersioningOff => "versions",
        }
    }
}

/// One problem, with where it is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Error or warning.
    pub level: Level,
    /// What kind.
    pub kind: FindingKind,
    /// Where: a member name, entry path, journal position, ledger key… (printed as text).
    pub location: Location,
    /// What is wrong and what to do.
    pub message: String,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckStatus {
    /// Passed.
    Pass,
    /// Passed with warnings.
    Warn,
    /// Failed.
    Fail,
    /// Not run (not applicable, or impossible after an earlier failure).
    Skipped,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// Check name.
    pub name: &'static str,
    /// Outcome.
    pub status: CheckStatus,
    /// A short explanation.
    pub detail: String,
}

/// What was verified.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Subject {
    /// `file`, `store` or `ledger`.
    pub kind: String,
    /// The bundle file, for `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The store URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The bundle digest (`sha256:<hex>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Bundle size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Who signed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignerInfo {
    /// Key id.
    pub keyid: String,
    /// Is it pinned?
    pub trusted: bool,
    /// Where the pinned key came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_as: Option<String>,
}

/// Ledger position of the bundle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LedgerInfo {
    /// 1-based position.
    pub position: u64,
    /// Entry id.
    pub entry: String,
    /// Ledger length.
    pub length: u64,
    /// The entry says the bundle was adopted (recorded by a later preserve or `store
    /// repair`, not by the preserve that sealed it). Always false for a v1 entry.
    pub adopted: bool,
}

/// A bundle's RFC 3161 timestamp token, as checked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimestampInfo {
    /// The token object's key (`timestamps/<bundle digest hex>.tsr`), or `--timestamp`.
    pub key: String,
    /// The time the TSA attests (`genTime`, to the second).
    pub gen_time: DateTime<Utc>,
    /// The TSA certificate's subject.
    pub tsa: String,
    /// The token's serial number (hex).
    pub serial: String,
    /// The ledger entry references the token (false: added later, found by its key).
    pub recorded: bool,
    /// The TSA is pinned (`--trusted-tsa`), or issued by a pinned certificate.
    pub trusted: bool,
}

/// Per-bundle line in a whole-ledger audit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BundleLine {
    /// Ledger position.
    pub position: u64,
    /// Bundle digest.
    pub bundle: String,
    /// `intact`, `failed`, `missing` or `present` (quick mode: not re-hashed).
    pub status: String,
    /// Error findings for this bundle.
    pub errors: usize,
    /// The entry says the bundle was adopted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// The time its timestamp token attests, when it has one that verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
}

/// Object Lock state of one stored object, as the server reported it (S3 stores).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RetentionLine {
    /// Object key.
    pub key: String,
    /// The version whose lock was read (the key's first, in a versioned bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `COMPLIANCE`, `GOVERNANCE`, or null when the object is not locked.
    pub mode: Option<String>,
    /// Retain-until date, as the server sent it.
    pub retain_until: Option<String>,
    /// `ON` when the object is under an S3 Object Lock legal hold, `OFF` or null otherwise.
    pub legal_hold: Option<String>,
}

/// The verify report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Always `custody-verify-report/v1`.
    pub report: &'static str,
    /// custody version.
    pub tool_version: &'static str,
    /// When.
    pub verified_at: DateTime<Utc>,
    /// What.
    pub subject: Subject,
    /// `intact` or `failed`.
    pub verdict: &'static str,
    /// The checklist.
    pub checks: Vec<Check>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Signer, when a manifest envelope was read.
    pub signer: Option<SignerInfo>,
    /// Ledger position, when verified against a store.
    pub ledger: Option<LedgerInfo>,
    /// The bundle's timestamp token, when it has one that verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampInfo>,
    /// Per-bundle results of `--all`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<BundleLine>,
    /// Object Lock state of each object checked (S3 stores only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retention: Vec<RetentionLine>,
}

/// The checks of a single bundle, in display order.
pub const BUNDLE_CHECKS: [&str; 10] = [
    "archive",
    "manifest",
    "analysis",
    "blobs",
    "entries",
    "journal",
    "merkle",
    "signature",
    "signer_trusted",
    "ledger",
];

impl Report {
    /// Assemble a report from findings; `ran` lists the checks that ran (others are skipped),
    /// `details` gives pass details per check. A finding belongs to its kind's check.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn build(
        subject: Subject,
        findings: Vec<Finding>,
        ran: &[&'static str],
        order: &[&'static str],
        details: &[(&'static str, String)],
    ) -> Report {
        Report::build_with(subject, findings, ran, order, details, |f| f.kind.check())
    }

    /// [`Report::build`], with `check_of` saying which check each finding belongs to.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn build_with(
        subject: Subject,
        findings: Vec<Finding>,
        ran: &[&'static str],
        order: &[&'static str],
        details: &[(&'static str, String)],
        check_of: impl Fn(&Finding) -> &'static str,
    ) -> Report {
        let mut checks = Vec::new();
        for &name in order {
            let mine = || findings.iter().filter(|f| check_of(f) == name);
            let errors = mine().filter(|f| f.level == Level::Error).count();
            let warns = mine().filter(|f| f.level == Level::Warning).count();
            let detail_of = || details.iter().find(|(n, _)| *n == name).map(|(_, d)| d.clone());
            let (status, detail) = if errors > 0 {
                let first = mine().find(|f| f.level == Level::Error).map(|f| f.message.clone()).unwrap_or_default();
                (CheckStatus::Fail, if errors == 1 { first } else { format!("{errors} problems; first: {first}") })
            } else if !ran.contains(&name) {
                (CheckStatus::Skipped, detail_of().unwrap_or_else(|| "not run".into()))
            } else if warns > 0 {
                (CheckStatus::Warn, format!("{warns} warning(s)"))
            } else {
                (CheckStatus::Pass, detail_of().unwrap_or_else(|| "ok".into()))
            };
            checks.push(Check { name, status, detail });
        }
        let failed = findings.iter().any(|f| f.level == Level::Error);
        Report {
            report: "custody-verify-report/v1",
            tool_version: env!("CARGO_PKG_VERSION"),
            verified_at: Utc::now(),
            subject,
            verdict: if failed { "failed" } else { "intact" },
            checks,
            findings,
            signer: None,
            ledger: None,
            timestamp: None,
            bundles: Vec::new(),
            retention: Vec::new(),
        }
    }

    /// True when no error finding was made.
    pub fn intact(&self) -> bool {
        self.verdict == "intact"
    }

    /// The human checklist. Every value is printed through [`crate::untrusted`]: paths,
    /// object keys, key ids and messages may quote hostile bytes.
    pub fn to_human(&self) -> String {
        let mut s = String::new();
        let what = match (&self.subject.bundle, &self.subject.path, &self.subject.store) {
            (_, Some(p), _) => format!("bundle file {}", u(p)),
            (Some(b), None, Some(st)) => format!("bundle {} in store {}", u(b), u(st)),
            (None, None, Some(st)) => format!("ledger of store {}", u(st)),
            _ => "bundle".into(),
        };
        let _ = writeln!(s, "custody verify: {what}");
        if let (Some(b), Some(_)) = (&self.subject.bundle, &self.subject.path) {
            let _ = writeln!(s, "  digest {}", u(b));
        }
        for c in &self.checks {
            let tag = match c.status {
                CheckStatus::Pass => "  ok  ",
                CheckStatus::Warn => " warn ",
                CheckStatus::Fail => " FAIL ",
                CheckStatus::Skipped => " skip ",
            };
            let _ = writeln!(s, "[{tag}] {:<15} {}", c.name, u(&c.detail));
        }
        if let Some(sg) = &self.signer {
            match (&sg.trusted, &sg.trusted_as) {
                (true, Some(a)) => {
                    let _ = writeln!(s, "signed by key {} (trusted: {})", u(&sg.keyid), u(a));
                }
                _ => {
                    let _ = writeln!(s, "signed by key {} (NOT trusted)", u(&sg.keyid));
                }
            }
        }
        if let Some(l) = &self.ledger {
            let adopted = if l.adopted { ", adopted: recorded by a later preserve or store repair" } else { "" };
            let _ = writeln!(s, "ledger position {} of {} (entry {}{adopted})", l.position, l.length, u(&l.entry));
        }
        if let Some(t) = &self.timestamp {
            let _ = writeln!(
                s,
                "timestamped at {} by {} ({}{})",
                t.gen_time,
                u(&t.tsa),
                if t.trusted { "pinned TSA" } else { "TSA NOT pinned" },
                if t.recorded {
                    ""
                } else {
                    "; added later: the signature existed by then, how long before is not attested"
                }
            );
        }
        if !self.bundles.is_empty() {
            let _ = writeln!(s, "bundles:");
            for b in &self.bundles {
                let adopted = if b.adopted { " (adopted)" } else { "" };
                let ts = b.timestamp.map(|t| format!(" timestamped {t}")).unwrap_or_default();
                let _ = writeln!(s, "  #{:<5} {} {}{adopted}{ts}", b.position, u(&b.bundle), u(&b.status));
            }
        }
        if !self.retention.is_empty() {
            let _ = writeln!(s, "retention:");
            for r in &self.retention {
                let _ = writeln!(
                    s,
                    "  {} {} until {}{}",
                    u(&r.key),
                    u(r.mode.as_deref().unwrap_or("NOT LOCKED")),
                    u(r.retain_until.as_deref().unwrap_or("-")),
                    if r.legal_hold.as_deref() == Some("ON") { ", legal hold ON" } else { "" }
                );
            }
        }
        if !self.findings.is_empty() {
            let _ = writeln!(s, "findings:");
            for f in &self.findings {
                let lvl = if f.level == Level::Error { "error" } else { "warning" };
                let _ = writeln!(
                    s,
                    "  {lvl} [{}] at {}: {}",
                    serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                    u(&f.location.to_string()),
                    u(&f.message)
                );
            }
        }
        let errors = self.findings.iter().filter(|f| f.level == Level::Error).count();
        let warns = self.findings.len() - errors;
        if self.intact() {
            let _ = writeln!(s, "RESULT: INTACT ({warns} warning(s))");
        } else {
            let _ = writeln!(s, "RESULT: FAILED ({errors} error(s), {warns} warning(s)) — do not rely on this evidence until the findings are explained");
        }
        s
    }
}
