//! The incident as the analysis understood it: the typed model of a bundle's `analysis.json`
//! (format [`ANALYSIS_FORMAT_V2`], schema `schemas/analysis.v2.schema.json`).
//!
//! Records from many sources are merged into **events** (one per action: a tool-call attempt,
//! a policy decision, an egress request…), each citing every record that describes it. The
//! **identifiers** are read from the incident's records by what each field means (see
//! `docs/collector.md`, "Field semantics"); when the evidence does not decide a value it says
//! `unknown` or `conflict`, with the citations and the reason, never a guess. The **chain**
//! trace → session → deployment → change → wave (and the policy bundle the deployment
//! carried) names each hop's evidence or why it is missing. Counts and the side-effect verdict
//! are computed on events, never on records.
//!
//! Everything here is plain data (`Serialize` + `Deserialize`): tooling reads a bundle's
//! analysis with `serde_json::from_slice::<Analysis>(bytes)`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::analyze::semantics::LinkKey;
pub use super::analyze::values::Zone;
use crate::bundle::manifest::IdentName;

/// The format tag of the analysis custody writes.
pub const ANALYSIS_FORMAT_V2: &str = "custody-analysis/v2";
/// The format tag of the analysis of older bundles (read as JSON, not as this model).
pub const ANALYSIS_FORMAT_V1: &str = "custody-analysis/v1";

/// The whole analysis (a bundle's `analysis.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Always [`ANALYSIS_FORMAT_V2`].
    pub format: String,
    /// How the evidence was searched.
    pub mode: Mode,
    /// What the search started from.
    pub seeds: Vec<Seed>,
    /// The field mapping in force.
    pub field_mapping: MappingInfo,
    /// The nine identifiers, in canonical order.
    pub identifiers: Vec<IdentifierFinding>,
    /// Who the agent acted for (end users, customers): never principals.
    pub subjects: Vec<ValueFinding>,
    /// trace → session → deployment → change → wave, and the bundle the deployment carried.
    pub chain: Chain,
    /// The incident's events, in time order (first `Limits::max_events`).
    pub events: Vec<Event>,
    /// Events not listed (counted in `event_counts`).
    pub events_omitted: u64,
    /// Events per kind (every event, listed or not), and the records that describe them.
    pub event_counts: BTreeMap<EventKind, KindCount>,
    /// Attempts grouped into logical actions by their idempotency key.
    pub actions: Vec<Action>,
    /// Whether the incident's writes took effect, from the events.
    pub side_effect: SideEffectVerdict,
    /// Memory records the incident read and wrote.
    pub memory: MemorySummary,
    /// Hosts the incident's requests went to.
    pub egress: Vec<EgressHost>,
    /// Without a seed: the values found for each identifier, to choose a seed from.
    pub candidates: Vec<Candidates>,
    /// Per collected file: format, evidence kind, analysed or not and why.
    pub sources: Vec<SourceSummary>,
    /// Files not listed in `sources` (beyond the first 1000 with nothing to report).
    pub sources_omitted: u64,
    /// Records that could not be read (malformed, cut short, not UTF-8…).
    pub problems: Vec<RecordProblem>,
    /// Problems not listed.
    pub problems_omitted: u64,
    /// The playbook's checklist (identifier hops, principals, approvals…).
    pub checklist: Vec<LinkCheck>,
    /// Every evidence problem, file- and record-level, in one list.
    pub evidence_problems: Vec<EvidenceProblem>,
    /// Counters.
    pub stats: Stats,
}

/// What `preserve` reports of the analysis it sealed (`preserve --json`, key `analysis`): the
/// analysis without its long lists — the events, sources and record problems are in the
/// bundle's `analysis.json` — but with the events a responder must act on now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSummary {
    /// Always [`ANALYSIS_FORMAT_V2`] (the format of the analysis summarised).
    pub format: String,
    /// How the evidence was searched.
    pub mode: Mode,
    /// What the search started from.
    pub seeds: Vec<Seed>,
    /// The nine identifiers, in canonical order.
    pub identifiers: Vec<IdentifierFinding>,
    /// Who the agent acted for.
    pub subjects: Vec<ValueFinding>,
    /// trace → session → deployment → change → wave, and the bundle.
    pub chain: Chain,
    /// Events per kind.
    pub event_counts: BTreeMap<EventKind, KindCount>,
    /// Attempts grouped by idempotency key.
    pub actions: Vec<Action>,
    /// Whether the incident's writes took effect.
    pub side_effect: SideEffectVerdict,
    /// Memory records read and written.
    pub memory: MemorySummary,
    /// Hosts the incident's requests went to.
    pub egress: Vec<EgressHost>,
    /// Without a seed: candidate values.
    pub candidates: Vec<Candidates>,
    /// The events to act on: writes whose outcome is unknown and the attempts of duplicated
    /// actions (first [`AnalysisSummary::MAX_NOTABLE`]).
    pub notable_events: Vec<Event>,
    /// Notable events not listed.
    pub notable_omitted: u64,
    /// Files the analysis could not understand, with why (first
    /// [`AnalysisSummary::MAX_NOTABLE`]).
    pub not_analysed: Vec<SourceSummary>,
    /// Files not analysed and not listed.
    pub not_analysed_omitted: u64,
    /// The playbook's checklist.
    pub checklist: Vec<LinkCheck>,
    /// Every evidence problem, file- and record-level.
    pub evidence_problems: Vec<EvidenceProblem>,
    /// Counters.
    pub stats: Stats,
}

impl AnalysisSummary {
    /// Longest lists of notable events and not-analysed files.
    pub const MAX_NOTABLE: usize = 50;
}

/// Error reading an analysis document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisReadError {
    /// Not JSON of this model.
    #[error("analysis.json is not a valid {ANALYSIS_FORMAT_V2} document")]
    Invalid(#[source] serde_json::Error),
    /// Another format (an older bundle's analysis is read as JSON, not as this model).
    #[error("analysis.json has format {0:?}, not {ANALYSIS_FORMAT_V2}: read it as JSON (see docs/collector.md)")]
    OtherFormat(String),
}

impl Analysis {
    /// Reads a bundle's `analysis.json` (bytes as sealed; check the bundle with
    /// `custody::verify` first: an unverified analysis is a claim, not evidence).
    pub fn from_json(bytes: &[u8]) -> Result<Analysis, AnalysisReadError> {
        #[derive(Deserialize)]
        struct Tag {
            format: Option<String>,
        }
        let tag: Tag = serde_json::from_slice(bytes).map_err(AnalysisReadError::Invalid)?;
        match tag.format.as_deref() {
            Some(ANALYSIS_FORMAT_V2) => serde_json::from_slice(bytes).map_err(AnalysisReadError::Invalid),
            other => Err(AnalysisReadError::OtherFormat(other.unwrap_or("(none)").to_string())),
        }
    }
}

/// How the evidence was searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// From the responder's seeds.
    Search,
    /// No seed was given; the evidence held exactly one trace (or one session), used as an
    /// inferred seed.
    Inferred,
    /// No seed was given and none could be inferred: candidates are listed, nothing linked.
    Candidates,
}

/// Where a seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SeedOrigin {
    /// A flag (`--trace-id`, `--seed`…).
    Flag,
    /// The incident spec file.
    Spec,
    /// Inferred: the only value of its identifier in the evidence.
    Inferred,
}

/// One seed of the search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The identifier, or `None` for `--seed VALUE` (any value: a ticket, an order, a customer).
    pub ident: Option<IdentName>,
    /// The value searched for (normalised).
    pub value: String,
    /// As given, when normalising changed it (a traceparent, upper-case or base64 id).
    pub given: Option<String>,
    /// What normalising did, in words.
    pub normalised: Option<String>,
    /// Where it came from.
    pub origin: SeedOrigin,
    /// Records that hold it (0: a loud warning, and its checklist item stays unticked).
    pub records: u64,
}

/// The field mapping in force and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingInfo {
    /// `default`, `incident_dir` (custody-fields.toml), `flag` (`--field-map`) or `spec`.
    pub origin: String,
    /// The mapping file, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SHA-256 of the mapping file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The mapping.
    pub mapping: super::analyze::FieldMapping,
}

impl Default for MappingInfo {
    fn default() -> Self {
        MappingInfo { origin: "default".into(), path: None, sha256: None, mapping: Default::default() }
    }
}

/// What is known of one identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentStatus {
    /// Given by the responder (flag or spec).
    Given,
    /// Read from the evidence, one value.
    Found,
    /// The only value of its identifier in the evidence, used as a seed (no seed was given).
    Inferred,
    /// The evidence gives competing values: none is picked.
    Conflict,
    /// Not in the evidence, or the evidence does not decide it (`why` says which).
    Unknown,
    /// Given, but found in no record.
    NotObserved,
    /// Declared not applicable by the responder.
    NotApplicable,
}

/// One identifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierFinding {
    /// Which identifier.
    pub name: IdentName,
    /// What is known.
    pub status: IdentStatus,
    /// The value, when there is one (`null` on conflict or unknown).
    pub value: Option<String>,
    /// How the value was chosen, or why there is none.
    pub why: String,
    /// Every value seen in the incident's records, with its places.
    pub values: Vec<ValueFinding>,
}

/// A value and where it was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueFinding {
    /// The value (normalised).
    pub value: String,
    /// Incident records that hold it.
    pub records: u64,
    /// The field names it was read from (distinct, first 10).
    pub fields: Vec<String>,
    /// Where (first 20).
    pub citations: Vec<Citation>,
    /// Citations not listed.
    pub citations_omitted: u64,
}

/// Where something was read: the sealed file, the byte range of the record, and the item
/// inside it when the record holds several (the spans of an OTLP batch line).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    /// Path in the bundle.
    pub path: String,
    /// SHA-256 (hex) of the sealed file.
    pub sha256: String,
    /// Byte offset of the record (in the decompressed stream when `decompressed`).
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// 1-based line, for line-delimited files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Index of the item inside the record (spans or log records of one OTLP line, elements
    /// of an array document), when the record holds several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
    /// The span id, for an item that is a span or a log record of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The field, when the citation is for one value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Offsets are in the decompressed stream of a gzip/zstd file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decompressed: bool,
}

/// A point in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Time {
    /// RFC 3339 in UTC when understood, else as written.
    pub at: String,
    /// How the zone was given (`none`: no zone written, read as UTC and marked).
    pub zone: Zone,
}

/// The kinds of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// One attempt of a tool invocation by the agent.
    ToolCall,
    /// One policy decision (OPA decision id).
    PolicyDecision,
    /// An approval asked for.
    ApprovalRequest,
    /// An approval decided (approved, rejected, bypassed).
    ApprovalDecision,
    /// One outbound request (HTTP, CONNECT).
    EgressRequest,
    /// A memory read (get, search, retrieval).
    MemoryRead,
    /// A memory write (add, update, delete).
    MemoryWrite,
    /// One model (LLM) call.
    ModelCall,
    /// A deployment (a CD run, a sync).
    Deploy,
    /// A change record.
    Change,
    /// A rollout step (a wave, a canary step, a promotion).
    Rollout,
    /// A cloud API call (CloudTrail event).
    CloudApiCall,
    /// A cluster change (Kubernetes audit event).
    K8sChange,
}

impl EventKind {
    /// Every kind, in order.
    pub const ALL: [EventKind; 13] = [
        EventKind::ToolCall,
        EventKind::PolicyDecision,
        EventKind::ApprovalRequest,
        EventKind::ApprovalDecision,
        EventKind::EgressRequest,
        EventKind::MemoryRead,
        EventKind::MemoryWrite,
        EventKind::ModelCall,
        EventKind::Deploy,
        EventKind::Change,
        EventKind::Rollout,
        EventKind::CloudApiCall,
        EventKind::K8sChange,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ToolCall => "tool_call",
            EventKind::PolicyDecision => "policy_decision",
            EventKind::ApprovalRequest => "approval_request",
            EventKind::ApprovalDecision => "approval_decision",
            EventKind::EgressRequest => "egress_request",
            EventKind::MemoryRead => "memory_read",
            EventKind::MemoryWrite => "memory_write",
            EventKind::ModelCall => "model_call",
            EventKind::Deploy => "deploy",
            EventKind::Change => "change",
            EventKind::Rollout => "rollout",
            EventKind::CloudApiCall => "cloud_api_call",
            EventKind::K8sChange => "k8s_change",
        }
    }
}

/// Events of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindCount {
    /// Events.
    pub events: u64,
    /// Records that describe them.
    pub records: u64,
}

/// An outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeStatus {
    /// It took effect.
    Succeeded,
    /// It was rejected or failed without effect.
    Failed,
    /// Not known: a timeout, a disconnect, no response recorded, conflicting evidence.
    Unknown,
}

/// The outcome of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Succeeded, failed or unknown.
    pub status: OutcomeStatus,
    /// Why (for unknown and failed), and which view decided (a server's record beats a
    /// client's timeout).
    pub reason: Option<String>,
    /// The statuses as the records wrote them.
    pub codes: Vec<String>,
    /// It succeeded by replaying an earlier result (an idempotent replay): no new effect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// How records were merged into one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MergeRule {
    /// The same tool call id.
    CallId,
    /// The same span id (a span and the log records naming it).
    SpanId,
    /// A span inside the action's span (its internal HTTP request, the message it sent, the
    /// server or consumer that carried it out).
    ParentSpan,
    /// The same request id (a proxy line and the server's span of one request).
    RequestId,
    /// The same decision id.
    DecisionId,
    /// The same approval id and decision.
    ApprovalId,
    /// The same audit or event id (Kubernetes audit stages, CloudTrail).
    AuditId,
    /// The same deployment run.
    RunId,
    /// The addition of the same memory record.
    MemoryId,
    /// No shared id: the same principal and target within the merge window.
    TimeWindow,
}

/// How an event is tied to the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tie {
    /// A record of it holds a linked value (the trace, the session, an approval…).
    Linked,
    /// It is on the chain (a deployment, change, rollout, cluster change or cloud API record of
    /// the deployment that served the incident).
    Chain,
    /// Joined to an incident event by a shared id (a memory id, a request id, an address
    /// hop).
    Joined,
    /// A proxy log line without ids, joined by time window and the agent's source address:
    /// probable, not proven (it may be another session's request from the same address).
    TimeAndAddress,
}

/// How two events relate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// The other event.
    pub event: String,
    /// `request_of` / `made_request` (an egress request made by a tool call, and back),
    /// `decision_for` / `decided_by` (a policy decision of a call or of an egress request),
    /// `approval_for` / `approval` (an approval of a call), `decides` / `decided_by` (an
    /// approval decision of a request), `same_action` (the attempt before or after this one
    /// under the same idempotency key; `actions` lists them all).
    pub relation: String,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// `e1`, `e2`, … in time order.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// When it started.
    pub start: Option<Time>,
    /// When it ended.
    pub end: Option<Time>,
    /// The agent.
    pub actor: Option<String>,
    /// The identity it ran as.
    pub principal: Option<String>,
    /// Who it was for.
    pub subject: Option<String>,
    /// What it acted on: a tool, a host, a policy path, a memory store, a resource.
    pub target: Option<String>,
    /// Method, operation, verb, API name.
    pub operation: Option<String>,
    /// Its outcome (`null` for kinds without one).
    pub outcome: Option<Outcome>,
    /// It changes state (a tool call with an idempotency key, a write-like name or a write
    /// HTTP request; a cloud API call that is not read-only; a cluster change): the writes
    /// are what the side-effect verdict counts. A write with no outcome recorded is
    /// `unknown`, never assumed to have succeeded.
    pub write: bool,
    /// Identifiers and linking values it carries.
    pub ids: BTreeMap<String, String>,
    /// Kind-specific details (an egress request's direction, host, upstream and bytes; a
    /// decision's result; an approval's approver; a memory operation's record ids…).
    pub detail: BTreeMap<String, String>,
    /// How its records were merged (empty: one record).
    pub merged_by: Vec<MergeRule>,
    /// How it is tied to the incident.
    pub tie: Tie,
    /// Related events.
    pub related: Vec<Relation>,
    /// Every record that describes it.
    pub citations: Vec<Citation>,
}

/// Attempts of one logical action: grouped by their idempotency key, or — when the calls
/// carry none — by being the same call made again (one trace, one tool, the same arguments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The key; `null` when the attempts carry none (grouped as the same call).
    pub idempotency_key: Option<String>,
    /// How the attempts were grouped (absent in analyses written before it existed: by key).
    #[serde(default)]
    pub grouped_by: ActionGrouping,
    /// The tool (or target) of the attempts.
    pub target: Option<String>,
    /// The attempts (event ids), in time order.
    pub attempts: Vec<String>,
    /// Attempts that took effect.
    pub took_effect: u64,
    /// Attempts whose outcome is unknown.
    pub unknown: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// More than one attempt took effect: the action happened more than once.
    pub duplicate: bool,
}

/// How the attempts of an [`Action`] were grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionGrouping {
    /// The same idempotency key.
    #[default]
    IdempotencyKey,
    /// No key: the same tool called again with the same arguments in one trace (a retry the
    /// caller made after an error or a timeout, which the tool could not recognise).
    SameCall,
}

/// The side-effect verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideEffectVerdict {
    /// `happened`, `not-happened` or `unknown`.
    pub status: crate::bundle::manifest::SideEffect,
    /// `responder` (given), `evidence`, or `default` (no write seen).
    pub origin: String,
    /// Writes among the incident's events (tool calls, cloud API calls, cluster changes).
    pub writes: u64,
    /// Writes that took effect.
    pub took_effect: u64,
    /// Writes that failed.
    pub failed: u64,
    /// Writes whose outcome is unknown.
    pub unknown: u64,
    /// Logical actions that took effect more than once.
    pub duplicates: u64,
    /// One sentence.
    pub detail: String,
    /// What not to do (repeat an unknown write), with its idempotency keys.
    pub warning: Option<String>,
}

/// Memory records read and written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySummary {
    /// Record ids read by the incident.
    pub read: Vec<String>,
    /// Record ids written by the incident.
    pub written: Vec<String>,
    /// Records read by the incident, with where their content is in the evidence and, when
    /// the write is an incident event, that event (`written_by`; `null` when the record was
    /// written outside the incident: a poisoned record planted earlier).
    pub read_after_write: Vec<MemoryProvenance>,
}

/// A memory record read, and the write that put it there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryProvenance {
    /// The record id.
    pub memory_id: String,
    /// The write (event id), when it is an incident event.
    pub written_by: Option<String>,
    /// Where the record's content is.
    pub content: Vec<Citation>,
}

/// Requests to one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressHost {
    /// Host (authority, SNI, CONNECT target).
    pub host: String,
    /// Requests tied to the incident by an id.
    pub requests: u64,
    /// More requests joined only by time window and source address (probable).
    pub probable: u64,
    /// Upstream addresses (the actual network path).
    pub upstreams: Vec<String>,
    /// Statuses seen.
    pub statuses: Vec<String>,
    /// Bytes the agent sent (request bodies).
    pub bytes_out: u64,
    /// Bytes the agent received.
    pub bytes_in: u64,
    /// Policy decisions that allowed requests to it.
    pub allowed_by: Vec<String>,
}

/// The chain a responder reconstructs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    /// trace, session, deployment, change, wave, bundle.
    pub nodes: Vec<ChainNode>,
    /// trace→session, session→deployment, deployment→change, change→wave, deployment→bundle.
    pub hops: Vec<Hop>,
}

/// The names of the chain's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeName {
    /// The trace.
    Trace,
    /// The session.
    Session,
    /// The deployment (CD run, release) that served it.
    Deployment,
    /// The change that deployment rolled out.
    Change,
    /// The rollout wave.
    Wave,
    /// The policy/config bundle revision that deployment carried.
    Bundle,
}

impl NodeName {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeName::Trace => "trace",
            NodeName::Session => "session",
            NodeName::Deployment => "deployment",
            NodeName::Change => "change",
            NodeName::Wave => "wave",
            NodeName::Bundle => "bundle",
        }
    }
}

/// A node of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainNode {
    /// Which.
    pub name: NodeName,
    /// The value (`null` when unknown or in conflict).
    pub value: Option<String>,
    /// Known, unknown, conflict.
    pub status: HopStatus,
    /// The competing values, on a conflict.
    pub conflicts: Vec<String>,
}

/// Whether a hop (or node) is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HopStatus {
    /// A record shows both ends.
    Linked,
    /// Not shown by the evidence (`why` says what is missing).
    Missing,
    /// An end is in conflict: the hop is not ticked.
    Conflict,
    /// Declared not applicable.
    NotApplicable,
}

/// One hop of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hop {
    /// From.
    pub from: NodeName,
    /// To.
    pub to: NodeName,
    /// Established or not.
    pub status: HopStatus,
    /// Why, in words (which record links them, or what is missing).
    pub why: String,
    /// The records that show both ends (first 5).
    pub citations: Vec<Citation>,
}

/// Values of one identifier found in the evidence (without a seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidates {
    /// Which identifier.
    pub name: IdentName,
    /// Distinct values seen (at most the counting cap).
    pub distinct: u64,
    /// The seedless parse budget ran out: files beyond it were only checked, so more values
    /// (and higher counts) may exist than are listed.
    pub capped: bool,
    /// The most frequent values with their counts and first places.
    pub values: Vec<ValueFinding>,
}

/// How a file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSummary {
    /// Path in the bundle.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Format read as.
    pub format: String,
    /// `detected` or `override`.
    pub format_origin: String,
    /// Evidence kind (traces, policy, approvals, memory, egress, logs, deploy, cloud,
    /// cluster, other).
    pub kind: String,
    /// `content` (decided by what the file holds) or `folder` (the folder's name, for files
    /// whose content does not say).
    pub kind_origin: String,
    /// Compression read through.
    pub compression: Option<String>,
    /// `null` when analysed; else why not (binary, not a known text or JSON layout…).
    pub not_analysed: Option<String>,
    /// Bytes read (decompressed).
    pub bytes_scanned: u64,
    /// Lines read.
    pub lines: u64,
    /// Records read.
    pub records: u64,
    /// Records in the incident.
    pub incident_records: u64,
    /// Records that could not be read.
    pub problems: u64,
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordProblem {
    /// File.
    pub path: String,
    /// Byte offset.
    pub offset: Option<u64>,
    /// Length.
    pub len: Option<u64>,
    /// Line.
    pub line: Option<u64>,
    /// Offsets are in the decompressed stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decompressed: bool,
    /// `malformed_json`, `truncated`, `invalid_utf8`, `line_too_long`, `unrecognised_line`,
    /// `document_too_large`, `decompressed_limit`, `decompression_failed`, `read_failed`,
    /// `state_limit`, `pending_limit`, `record_truncated`, `expansion_limit`.
    pub problem: String,
    /// What, in words.
    pub detail: String,
}

/// One checklist item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkCheck {
    /// Item name.
    pub item: String,
    /// Present, missing, not applicable.
    pub status: crate::bundle::manifest::Status,
    /// What was found, or why it is missing.
    pub detail: String,
}

/// An evidence problem (file- or record-level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceProblem {
    /// The path (with `:line` or `@offset` for a record).
    pub path: String,
    /// `unreadable`, `skipped`, `not_collected`, `not_analysed`, `problems_omitted`, or a
    /// record problem type.
    pub problem: String,
    /// What happened.
    pub detail: String,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Records read (items parsed plus problem records).
    pub records_seen: u64,
    /// Lines read, parsed or only checked.
    pub lines_seen: u64,
    /// Records kept for linking.
    pub records_kept: u64,
    /// Records in the incident.
    pub incident_records: u64,
    /// Records of files read through the pre-filter not kept because nothing linked them
    /// when read (a re-read finds them when a value they hold is linked later).
    pub records_deferred: u64,
    /// Records counted but not kept because a budget of the analysis was reached (see the
    /// `pending_limit` and `state_limit` problems).
    pub records_dropped: u64,
    /// Large files read again for values linked after they were scanned.
    pub rereads: u64,
    /// Join keys (call and request ids) searched for in large files too; `false` when there
    /// were more than the pre-filter's budget (then they join only records read anyway).
    pub join_keys_searched: bool,
}

/// `ALL` (every variant, in declaration order: the schema's enum order) for the model's closed
/// lists, and an exhaustive match that stops the build when a variant is added to the enum
/// but not to its list (the schema test compares each list with its schema enum).
macro_rules! every_variant {
    ($t:ident: $($v:ident),+ $(,)?) => {
        impl $t {
            /// Every variant, in declaration order (the order of its schema enum).
            pub const ALL: [$t; every_variant!(@count $($v)+)] = [$($t::$v),+];
        }
        const _: fn($t) = |x| match x {
            $($t::$v)|+ => {}
        };
    };
    (@count) => { 0 };
    (@count $h:ident $($rest:ident)*) => { 1 + every_variant!(@count $($rest)*) };
}

every_variant!(Mode: Search, Inferred, Candidates);
every_variant!(SeedOrigin: Flag, Spec, Inferred);
every_variant!(IdentStatus: Given, Found, Inferred, Conflict, Unknown, NotObserved, NotApplicable);
every_variant!(OutcomeStatus: Succeeded, Failed, Unknown);
every_variant!(MergeRule: CallId, SpanId, ParentSpan, RequestId, DecisionId, ApprovalId, AuditId, RunId, MemoryId, TimeWindow);
every_variant!(Tie: Linked, Chain, Joined, TimeAndAddress);
every_variant!(NodeName: Trace, Session, Deployment, Change, Wave, Bundle);
every_variant!(HopStatus: Linked, Missing, Conflict, NotApplicable);
every_variant!(Zone: Utc, Offset, None, Unparsed);
