//! The manifest: the signed description of one bundle (formats `custody-bundle/v3`, written,
//! and `custody-bundle/v2` and `/v1`, still read). v3 differs from v2 only by
//! `incident.tool_notes`: the notes custody itself writes are kept apart from the responder's,
//! so neither can pass for the other.
//!
//! Field meanings are normative in `docs/format.md`; the JSON schema is
//! `schemas/manifest.v1.schema.json` (it covers both formats). A v2 manifest is compact JSON;
//! the DSSE envelope signs a small [`ManifestStatement`] naming its SHA-256 and size, and the
//! collector's analysis is a member of its own (`analysis.json`) named by [`AnalysisRef`]. A v1
//! manifest was pretty-printed, embedded its analysis, and was itself the DSSE payload.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{BundleId, EntryId, Sha256};

/// The format tag of v1 manifests (read, no longer written).
pub const FORMAT_V1: &str = "custody-bundle/v1";
/// The format tag of v2 manifests (read, no longer written): tool notes among the responder's.
pub const FORMAT_V2: &str = "custody-bundle/v2";
/// The format tag of the manifests custody writes.
pub const FORMAT_V3: &str = "custody-bundle/v3";
/// How the tool notes of a v1 or v2 manifest begin (they were written among the responder's
/// notes); `preserve` and `analyze` refuse a responder note that begins so.
pub const TOOL_NOTE_PREFIXES: [&str; 3] = ["custody analysis:", "custody analyze:", "custody:"];

/// Does `note` begin like a note custody writes (case and leading blanks aside)?
pub fn looks_like_tool_note(note: &str) -> bool {
    let head: String = note.trim_start().chars().take(20).collect::<String>().to_lowercase();
    TOOL_NOTE_PREFIXES.iter().any(|p| head.starts_with(p))
}
/// DSSE payload type of a v1 envelope, whose payload is the manifest itself.
pub const MANIFEST_PAYLOAD_TYPE: &str = "application/vnd.custody.manifest.v1+json";
/// DSSE payload type of a v2 envelope, whose payload is a [`ManifestStatement`].
pub const STATEMENT_PAYLOAD_TYPE: &str = "application/vnd.custody.manifest-statement.v2+json";

/// What a v2 or v3 envelope signs: the manifest's digest and size (compact JSON, fields in this
/// order, no final newline). Signing this instead of the manifest keeps the envelope a few
/// hundred bytes whatever the number of files, and lets a reader hash the manifest as it
/// streams instead of holding it twice.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestStatement {
    /// The manifest's format: [`FORMAT_V3`] (written) or [`FORMAT_V2`].
    pub format: String,
    /// SHA-256 of `manifest.json`'s exact bytes.
    pub manifest_sha256: Sha256,
    /// Size of `manifest.json` in bytes.
    pub manifest_size: u64,
}

impl ManifestStatement {
    /// The statement's exact bytes (what is signed, inside the DSSE PAE).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Name of the analysis member of a v2 bundle.
pub const ANALYSIS_MEMBER: &str = "analysis.json";

/// Where a v2 bundle's analysis is: the member [`ANALYSIS_MEMBER`], whose exact bytes (compact
/// JSON of `schemas/analysis.v1.schema.json`, then a newline) have this digest and size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnalysisRef {
    /// Always [`ANALYSIS_MEMBER`].
    pub member: String,
    /// SHA-256 of the member's bytes.
    pub sha256: Sha256,
    /// Its size in bytes.
    pub size: u64,
}

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT_V3`] (written), [`FORMAT_V2`] or [`FORMAT_V1`] (read).
    pub format: String,
    /// What happened and the identifiers that tie it together.
    pub incident: Incident,
    /// Who collected, where, when.
    pub collector: Collector,
    /// The key that signs this manifest (also named by the DSSE envelope).
    pub signer: Signer,
    /// Collected files, sorted by `path`, unique paths.
    pub entries: Vec<Entry>,
    /// The completeness checklist.
    pub completeness: Completeness,
    /// The custody journal: every collection event, hash-chained.
    pub journal: Vec<JournalEvent>,
    /// RFC 6962 Merkle tree head over `entries` (see `crate::bundle::merkle`).
    pub merkle_root: Sha256,
    /// The ledger head this store had when the bundle was sealed (`null`: empty ledger or no store).
    pub ledger_prev: Option<LedgerLink>,
    /// When the bundle was sealed.
    pub sealed_at: DateTime<Utc>,
    /// v1 only: what the collector derived from the evidence, embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<serde_json::Value>,
    /// v2 only: the analysis member (identifiers' sources, linkage, index), by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis_ref: Option<AnalysisRef>,
    /// v2, supplements only (`custody analyze`): the evidence bundle this one re-analyses.
    /// Signed with the manifest, so the link does not rest on the ledger alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplement_of: Option<SupplementOf>,
}

/// A supplement's signed link to the evidence bundle it re-analyses (`docs/format.md` §3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupplementOf {
    /// The original's bundle digest (bare hex, like every digest in the manifest).
    pub bundle: BundleId,
    /// The original manifest's `sealed_at`.
    pub sealed_at: DateTime<Utc>,
}

/// The entry path of a supplement's record of what was done (seeds, field map, original).
pub const SUPPLEMENT_RECORD: &str = "supplement/analyze.json";
/// The evidence kind of a supplement's own entries.
pub const SUPPLEMENT_KIND: &str = "supplement";

/// Incident facts supplied by the responder or derived from the evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// One item per [`IdentName`], in the canonical order.
    pub identifiers: Vec<Identifier>,
    /// Triage category, if the responder gave one.
    pub category: Option<Category>,
    /// Whether the side effect happened.
    pub side_effect: SideEffect,
    /// Free-text responder notes, in the order given (in v1 and v2, custody's own notes follow
    /// them, each beginning with one of [`TOOL_NOTE_PREFIXES`]).
    pub notes: Vec<String>,
    /// v3 (required there, absent before): the notes custody itself wrote — the analysis'
    /// findings (`custody analysis: …`), a seed's normalisation (`custody: …`), a supplement's
    /// origin (`custody analyze: …`) — never the responder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_notes: Option<Vec<String>>,
}

impl Incident {
    /// The responder's notes and custody's, apart: in v3 as sealed; in a v1 or v2 manifest,
    /// custody's are told by their prefix ([`TOOL_NOTE_PREFIXES`]) — the third value says so.
    pub fn notes_by_author(&self) -> (Vec<&str>, Vec<&str>, bool) {
        match &self.tool_notes {
            Some(tool) => (self.notes.iter().map(String::as_str).collect(), tool.iter().map(String::as_str).collect(), false),
            None => {
                let (tool, responder): (Vec<&String>, Vec<&String>) = self.notes.iter().partition(|n| looks_like_tool_note(n));
                (responder.into_iter().map(String::as_str).collect(), tool.into_iter().map(String::as_str).collect(), true)
            }
        }
    }
}

/// The identifiers every incident record should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentName {
    /// OTLP trace id.
    TraceId,
    /// Conversation / session id.
    SessionId,
    /// The agent.
    AgentId,
    /// The principal the tool calls ran as.
    ToolPrincipal,
    /// The approval that should have gated the action.
    ApprovalId,
    /// The deployed config/policy bundle.
    BundleId,
    /// The change that deployed it.
    ChangeId,
    /// The rollout wave.
    RolloutWave,
    /// The idempotency key of the side-effecting call.
    IdempotencyKey,
}

impl IdentName {
    /// All names, canonical order.
    pub const ALL: [IdentName; 9] = [
        IdentName::TraceId,
        IdentName::SessionId,
        IdentName::AgentId,
        IdentName::ToolPrincipal,
        IdentName::ApprovalId,
        IdentName::BundleId,
        IdentName::ChangeId,
        IdentName::RolloutWave,
        IdentName::IdempotencyKey,
    ];

    /// snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdentName::TraceId => "trace_id",
            IdentName::SessionId => "session_id",
            IdentName::AgentId => "agent_id",
            IdentName::ToolPrincipal => "tool_principal",
            IdentName::ApprovalId => "approval_id",
            IdentName::BundleId => "bundle_id",
            IdentName::ChangeId => "change_id",
            IdentName::RolloutWave => "rollout_wave",
            IdentName::IdempotencyKey => "idempotency_key",
        }
    }
}

impl IdentName {
    /// Whether a value of this identifier found in an incident record pulls further records
    /// into the incident. Only identifiers that are specific to one incident link records;
    /// shared attributes (agent, principal, bundle, change, wave) are reported but never
    /// widen the match set, because background traffic shares them.
    pub fn is_link_key(self) -> bool {
        matches!(self, IdentName::TraceId | IdentName::SessionId | IdentName::ApprovalId | IdentName::IdempotencyKey)
    }

    /// Whether the incident is expected to have exactly one value of this identifier; two
    /// different values are then reported as a conflict. Traces, approvals and idempotency
    /// keys may legitimately be several per incident, and so may principals: each tool call
    /// runs as its own service account (the linkage lists the principal per tool call).
    pub fn is_single_valued(self) -> bool {
        !matches!(
            self,
            IdentName::TraceId | IdentName::ToolPrincipal | IdentName::ApprovalId | IdentName::IdempotencyKey
        )
    }

    /// Position in [`IdentName::ALL`].
    pub fn position(self) -> usize {
        self as usize
    }
}

/// Error parsing an identifier name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identifier name `{name}` (expected one of trace_id, session_id, agent_id, tool_principal, approval_id, bundle_id, change_id, rollout_wave, idempotency_key)")]
pub struct IdentParseError {
    /// The rejected input.
    pub name: String,
}

impl FromStr for IdentName {
    type Err = IdentParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        IdentName::ALL
            .iter()
            .copied()
            .find(|i| i.as_str() == norm)
            .ok_or_else(|| IdentParseError { name: s.to_string() })
    }
}

impl fmt::Display for IdentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether something on the checklist is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Found, with its source.
    Present,
    /// Not found: explicitly missing.
    Missing,
    /// Declared not applicable by the responder.
    NotApplicable,
}

/// One incident identifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    /// Which identifier.
    pub name: IdentName,
    /// Present, missing or not applicable.
    pub status: Status,
    /// The value, when present.
    pub value: Option<String>,
    /// Where the value came from (`flag`, `spec`, or an evidence record).
    pub sources: Vec<IdentSource>,
    /// Other values seen for the same identifier in incident records: a finding, not a pick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictingValue>,
}

/// Where an identifier value was found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentSource {
    /// `flag`, `spec` or `record`.
    pub origin: String,
    /// Entry path for `record` sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based line, where the format has lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Byte offset of the record in the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The field that carried the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A second value for a single-valued identifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConflictingValue {
    /// The other value.
    pub value: String,
    /// Where it was seen.
    pub sources: Vec<IdentSource>,
}

/// Triage taxonomy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Category {
    /// A policy was bypassed.
    PolicyBypass,
    /// A side effect happened that was not authorized.
    UnauthorizedSideEffect,
    /// Egress to a host that is not allowed.
    DangerousEgress,
    /// A poisoned memory write.
    MemoryContamination,
    /// An approval was missing, bypassed or wrong.
    ApprovalFailure,
    /// The agent escaped an evaluation sandbox.
    EvalEscape,
    /// The agent pursued a goal against its instructions.
    AgenticMisalignment,
}

impl Category {
    /// All categories.
    pub const ALL: [Category; 7] = [
        Category::PolicyBypass,
        Category::UnauthorizedSideEffect,
        Category::DangerousEgress,
        Category::MemoryContamination,
        Category::ApprovalFailure,
        Category::EvalEscape,
        Category::AgenticMisalignment,
    ];
    /// snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::PolicyBypass => "policy_bypass",
            Category::UnauthorizedSideEffect => "unauthorized_side_effect",
            Category::DangerousEgress => "dangerous_egress",
            Category::MemoryContamination => "memory_contamination",
            Category::ApprovalFailure => "approval_failure",
            Category::EvalEscape => "eval_escape",
            Category::AgenticMisalignment => "agentic_misalignment",
        }
    }
}

/// A string that is not one of the known names.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} `{value}`; expected one of: {expected}")]
pub struct UnknownName {
    what: &'static str,
    value: String,
    expected: String,
}

impl FromStr for Category {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownName {
            what: "category",
            value: s.to_string(),
            expected: Category::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Did the side effect happen? `unknown` is a first-class answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SideEffect {
    /// It happened.
    Happened,
    /// It did not.
    NotHappened,
    /// Nobody can tell yet: do not repeat the action.
    #[default]
    Unknown,
}

impl SideEffect {
    /// kebab-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            SideEffect::Happened => "happened",
            SideEffect::NotHappened => "not-happened",
            SideEffect::Unknown => "unknown",
        }
    }
}

impl FromStr for SideEffect {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "happened" => Ok(SideEffect::Happened),
            "not-happened" | "not_happened" => Ok(SideEffect::NotHappened),
            "unknown" => Ok(SideEffect::Unknown),
            _ => Err(UnknownName {
                what: "side effect",
                value: s.to_string(),
                expected: "happened, not-happened, unknown".into(),
            }),
        }
    }
}

/// Collector identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Collector {
    /// `custody`.
    pub tool: String,
    /// Tool version.
    pub version: String,
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
    /// When collection started.
    pub started_at: DateTime<Utc>,
    /// When collection ended.
    pub finished_at: DateTime<Utc>,
}

/// The signing key, as the manifest records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// SHA-256 of the SPKI DER, hex.
    pub keyid: String,
    /// SPKI PEM of the public key (not a trust anchor: trust comes from pinned keys).
    pub public_key: String,
}

/// One collected file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative path inside the bundle's evidence tree (`/`-separated, no `..`).
    pub path: String,
    /// Evidence kind (traces, policy, approvals, memory, egress, logs, attachments, other…).
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes: the blob `blobs/sha256/<hex>`.
    pub sha256: Sha256,
    /// Where it was read from (absolute path, or `-` for stdin).
    pub source: String,
    /// When it was read.
    pub collected_at: DateTime<Utc>,
}

/// The completeness checklist.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Completeness {
    /// True when no item is missing.
    pub complete: bool,
    /// Every required identifier and evidence kind.
    pub items: Vec<CheckItem>,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckItem {
    /// `identifier` or `evidence`.
    pub group: String,
    /// Identifier name or evidence kind.
    pub item: String,
    /// Present / missing / not applicable.
    pub status: Status,
    /// The source when present, the reason when missing.
    pub detail: String,
}

/// Journal event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A file was read and sealed.
    Collected,
    /// A path was deliberately not collected (symlink, FIFO, device…).
    Skipped,
    /// A path could not be read.
    Error,
    /// A note (responder note, problem found in a record, …).
    Note,
}

/// One custody journal event. `hash` = SHA-256 of the compact JSON of the event without
/// `hash` (fields in this order, absent options omitted); `prev` = the previous event's
/// `hash`, or 64 zeros for the first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JournalEvent {
    /// 0-based position.
    pub seq: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: EventKind,
    /// Entry path (collected) or source path (others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Blob digest, for collected files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// Size, for collected files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Human-readable detail (error text, skip reason, note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Hash of the previous event.
    pub prev: Sha256,
    /// Hash of this event.
    pub hash: Sha256,
}

/// A pointer to a ledger position.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LedgerLink {
    /// 1-based ledger position.
    pub position: u64,
    /// Hash of that ledger entry object.
    pub entry: EntryId,
    /// The bundle it names.
    pub bundle: BundleId,
}
