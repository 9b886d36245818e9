//! Incident-level analysis: keeps a compact summary of every record that carries an
//! identifier, expands the seed identifiers to a fixpoint over the link keys, then reports
//! identifiers (with every place found and any conflict), linkage, the record index, a
//! side-effect hint and the input problems.

use super::format::Format;
use super::ids::normalize_ident;
use super::types::{Fact, IdentName, Problem, Record};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Bounds on the analyzer's state and report sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyzerLimits {
    /// Most records with observations kept; later ones are counted and reported.
    pub max_records: usize,
    /// Most distinct values of one link key followed during expansion.
    pub max_link_values: usize,
    /// Most places listed per identifier value.
    pub max_places: usize,
    /// Most entries in each linkage list and in the index.
    pub max_list: usize,
    /// Most problems listed.
    pub max_problems: usize,
}

impl Default for AnalyzerLimits {
    fn default() -> Self {
        AnalyzerLimits {
            max_records: 20_000_000,
            max_link_values: 10_000,
            max_places: 100,
            max_list: 100_000,
            max_problems: 10_000,
        }
    }
}

/// Handle of a source registered with [`Analyzer::begin_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(u32);

#[derive(Default)]
struct Interner {
    map: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.map.get(s) {
            return *id;
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        let a: Arc<str> = Arc::from(s);
        self.strings.push(Arc::clone(&a));
        self.map.insert(a, id);
        id
    }
    fn opt(&mut self, s: &Option<String>) -> Option<u32> {
        s.as_deref().map(|s| self.intern(s))
    }
    fn get(&self, id: u32) -> String {
        self.strings.get(id as usize).map(|s| s.to_string()).unwrap_or_default()
    }
    fn as_str(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }
    fn get_opt(&self, id: Option<u32>) -> Option<String> {
        id.map(|i| self.get(i))
    }
    fn lookup(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }
}

/// An observation, its strings interned: 16 bytes (`raw` is [`NO_STRING`] when absent).
#[derive(Clone, Copy)]
struct Obs {
    ident: IdentName,
    value: u32,
    raw: u32,
    field: u32,
}

/// An absent interned string in the compact forms ([`Obs::raw`], [`Stored::ts_len`]).
const NO_STRING: u32 = u32::MAX;
/// An absent line number in [`Stored::line`].
const NO_LINE: u64 = u64::MAX;

enum CFact {
    ToolCall {
        tool: u32,
        call_id: Option<u32>,
        principal: Option<u32>,
        idempotency_key: Option<u32>,
        outcome: Option<u32>,
    },
    Decision {
        decision_id: Option<u32>,
        path: Option<u32>,
        result: Option<u32>,
    },
    Approval {
        approval_id: Option<u32>,
        tool: Option<u32>,
        decision: Option<u32>,
        approver: Option<u32>,
        call_id: Option<u32>,
    },
    Egress {
        destination: u32,
        method: Option<u32>,
        status: Option<u16>,
        bytes_sent: Option<u64>,
        bytes_received: Option<u64>,
    },
    Memory {
        memory_id: Option<u32>,
        op: Option<u32>,
    },
}

/// A kept record, compact: a large incident keeps hundreds of thousands of these until its
/// report is written. Its timestamp is a range of [`Analyzer::timestamps`] (no allocation
/// per record).
struct Stored {
    source: u32,
    /// Length of the timestamp in [`Analyzer::timestamps`], or [`NO_STRING`].
    ts_len: u32,
    ts_start: u64,
    offset: u64,
    len: u64,
    /// [`NO_LINE`] when the layout has no lines.
    line: u64,
    decompressed: bool,
    obs: Box<[Obs]>,
    facts: Box<[CFact]>,
}

struct SourceInfo {
    path: Arc<str>,
    blob_sha256: Arc<str>,
    kind: String,
    format: Format,
    records: u64,
    lines: u64,
    problems: u64,
}

/// Collects records from many sources and computes the incident [`Analysis`].
pub struct Analyzer {
    limits: AnalyzerLimits,
    seeds: Vec<(IdentName, u32)>,
    seed_raw: Vec<(IdentName, String)>,
    strings: Interner,
    sources: Vec<SourceInfo>,
    records: Vec<Stored>,
    /// The kept records' timestamps, one after the other.
    timestamps: String,
    records_seen: u64,
    records_dropped: u64,
    problems: Vec<SourceProblem>,
    problems_omitted: u64,
    state_limit_reported: bool,
    lines_seen: u64,
    /// Bumped for every kept record that can change [`Analyzer::linked_values`].
    link_generation: u64,
    /// The values of the last [`Analyzer::linked_values`] (`None`: not computed, or over its
    /// limit), to tell whether a new record can change them.
    linked_last: Option<HashSet<(IdentName, u32)>>,
}

/// Serializes a shared string (the path and blob hash of a source are shared by every
/// [`SourceRef`] into it: tens of thousands in a large incident).
fn shared_str<S: serde::Serializer>(s: &Arc<str>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s)
}

/// Where something was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// Source file path as given by the caller.
    #[serde(serialize_with = "shared_str")]
    pub source_path: Arc<str>,
    /// SHA-256 of the source blob as given by the caller.
    #[serde(serialize_with = "shared_str")]
    pub blob_sha256: Arc<str>,
    /// Byte offset of the line or document.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// 1-based line number.
    pub line: Option<u64>,
    /// Item timestamp.
    pub timestamp: Option<String>,
    /// Offsets are in the decompressed stream.
    pub decompressed: bool,
}

/// One place an identifier value was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The record.
    #[serde(flatten)]
    pub at: SourceRef,
    /// Field that held it.
    pub field: String,
    /// Raw form when it differs from the normalised value.
    pub raw: Option<String>,
}

/// One value of an identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentValue {
    /// Normalised value.
    pub value: String,
    /// Whether the responder supplied it.
    pub seeded: bool,
    /// Incident records holding it.
    pub records: u64,
    /// Places (first `max_places`).
    pub places: Vec<Place>,
    /// Places not listed.
    pub places_omitted: u64,
}

/// Status of one identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentStatus {
    /// Exactly one value found.
    Present,
    /// Several values of a multi-valued identifier (traces, approvals, keys).
    Multiple,
    /// Several values of a single-valued identifier: see `conflicts`.
    Conflict,
    /// Supplied as a seed but not found in any source.
    NotObserved,
    /// Not found.
    Missing,
}

/// Report for one identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifierReport {
    /// Which identifier.
    pub ident: IdentName,
    /// Status.
    pub status: IdentStatus,
    /// The value when it is unambiguous (or the seed); `None` on conflict or absence.
    pub value: Option<String>,
    /// Every value found in incident records, most frequent first.
    pub values: Vec<IdentValue>,
    /// The competing values when `status` is `conflict`.
    pub conflicts: Vec<String>,
}

/// Two identifier values seen together in incident records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkEdge {
    /// First identifier.
    pub from: IdentName,
    /// Its value.
    pub from_value: String,
    /// Second identifier.
    pub to: IdentName,
    /// Its value.
    pub to_value: String,
    /// Records showing both.
    pub records: u64,
}

/// A tool call of the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolCallLink {
    /// Tool name.
    pub tool: String,
    /// Call id.
    pub call_id: Option<String>,
    /// Principal it ran as.
    pub principal: Option<String>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Visible outcome.
    pub outcome: Option<String>,
    /// Where.
    pub at: SourceRef,
}

/// Principal used per tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrincipalUse {
    /// Principal (`None` when the call record names none).
    pub principal: Option<String>,
    /// Tool.
    pub tool: String,
    /// Calls.
    pub calls: u64,
}

/// One step of the approval path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalStep {
    /// Approval id.
    pub approval_id: Option<String>,
    /// Tool or action.
    pub tool: Option<String>,
    /// Tool call id.
    pub call_id: Option<String>,
    /// Decision.
    pub decision: Option<String>,
    /// Approver.
    pub approver: Option<String>,
    /// Where.
    pub at: SourceRef,
}

/// A policy decision of the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionLink {
    /// Decision id.
    pub decision_id: Option<String>,
    /// Policy path.
    pub path: Option<String>,
    /// Result (compact JSON).
    pub result: Option<String>,
    /// Bundle revision in force.
    pub bundle_id: Option<String>,
    /// Where.
    pub at: SourceRef,
}

/// A memory record read or written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryAccess {
    /// Memory id.
    pub memory_id: Option<String>,
    /// Operation.
    pub op: Option<String>,
    /// Where.
    pub at: SourceRef,
}

/// Egress to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressDestination {
    /// Host or upstream.
    pub destination: String,
    /// Requests seen.
    pub requests: u64,
    /// Requests per method.
    pub methods: BTreeMap<String, u64>,
    /// Requests per status.
    pub statuses: BTreeMap<u16, u64>,
    /// Sum of bytes sent.
    pub bytes_sent: u64,
    /// Sum of bytes received.
    pub bytes_received: u64,
    /// Earliest timestamp.
    pub first_seen: Option<String>,
    /// Latest timestamp.
    pub last_seen: Option<String>,
}

/// How the incident's records connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Linkage {
    /// Identifier pairs seen in the same record (trace → session → bundle → wave…).
    pub chain: Vec<LinkEdge>,
    /// Tool calls, by time.
    pub tool_calls: Vec<ToolCallLink>,
    /// Principal per tool.
    pub principals: Vec<PrincipalUse>,
    /// Approval path with decisions, by time.
    pub approvals: Vec<ApprovalStep>,
    /// Policy decisions, by time.
    pub decisions: Vec<DecisionLink>,
    /// Memory records read or written, by time.
    pub memory: Vec<MemoryAccess>,
    /// Memory reads (`read`, `retrieval`, `get`…).
    pub memory_reads: u64,
    /// Memory writes (`write`, `update`, `delete`…).
    pub memory_writes: u64,
    /// Egress destinations, most requests first.
    pub egress: Vec<EgressDestination>,
    /// List entries left out because of the list limit.
    pub omitted: u64,
}

/// One entry of the record index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    /// The record.
    #[serde(flatten)]
    pub at: SourceRef,
    /// Identifiers by which it matched.
    pub matched_by: Vec<IdentName>,
}

/// What is known about a side-effecting write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SideEffectStatus {
    /// At least one write's outcome is not visible.
    Unknown,
    /// Every write shows success.
    Committed,
    /// Every write shows a rejection.
    NotCommitted,
}

/// A write seen in the incident and how its outcome was classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    /// The call.
    #[serde(flatten)]
    pub call: ToolCallLink,
    /// Classification of the visible outcome.
    pub status: SideEffectStatus,
}

/// Hint about side effects whose outcome is uncertain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideEffectHint {
    /// Overall status.
    pub status: SideEffectStatus,
    /// Idempotency keys of the writes.
    pub idempotency_keys: Vec<String>,
    /// The writes.
    pub writes: Vec<WriteOutcome>,
    /// What the responder must (not) do.
    pub warning: String,
}

/// A problem in one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceProblem {
    /// Source path.
    #[serde(serialize_with = "shared_str")]
    pub source_path: Arc<str>,
    /// Byte offset (when known).
    pub offset: Option<u64>,
    /// Length in bytes (when known).
    pub len: Option<u64>,
    /// Line (when known).
    pub line: Option<u64>,
    /// Offsets are in the decompressed stream.
    pub decompressed: bool,
    /// The problem.
    pub problem: Problem,
}

/// Per-source summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    /// Path.
    #[serde(serialize_with = "shared_str")]
    pub source_path: Arc<str>,
    /// Blob hash.
    #[serde(serialize_with = "shared_str")]
    pub blob_sha256: Arc<str>,
    /// Caller's kind label.
    pub kind: String,
    /// Format scanned as.
    pub format: Format,
    /// Records received (items parsed, plus problem records).
    pub records: u64,
    /// Lines read (line layouts; 0 for a document), whether parsed into records or only
    /// validated.
    pub lines: u64,
    /// Records in the incident index.
    pub incident_records: u64,
    /// Problem records.
    pub problems: u64,
}

/// The seed identifiers as given and as normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seed {
    /// Identifier.
    pub ident: IdentName,
    /// Normalised value.
    pub value: String,
}

/// Counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalysisStats {
    /// Records received (items parsed, plus problem records).
    pub records_seen: u64,
    /// Lines read over all sources, whether parsed into records or only validated.
    pub lines_seen: u64,
    /// Records kept for expansion (those with identifiers).
    pub records_kept: u64,
    /// Records with identifiers dropped at the state limit.
    pub records_dropped: u64,
    /// Records in the incident.
    pub incident_records: u64,
    /// Expansion rounds until the fixpoint.
    pub expansion_rounds: u64,
}

/// The incident analysis (goes into the signed manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// The seeds.
    pub seeds: Vec<Seed>,
    /// One report per identifier, in [`IdentName::ALL`] order.
    pub identifiers: Vec<IdentifierReport>,
    /// How the records connect.
    pub linkage: Linkage,
    /// Every incident record, by source and offset.
    pub index: Vec<IndexEntry>,
    /// Index entries left out at the list limit.
    pub index_omitted: u64,
    /// Side-effect hint when writes were seen.
    pub side_effect_hint: Option<SideEffectHint>,
    /// Problems found in the inputs.
    pub problems: Vec<SourceProblem>,
    /// Problems not listed.
    pub problems_omitted: u64,
    /// Per-source summaries.
    pub sources: Vec<SourceSummary>,
    /// Counters.
    pub stats: AnalysisStats,
}

impl Analyzer {
    /// Starts an analysis from the responder's identifiers (e.g. the trace id).
    pub fn new(seeds: &[(IdentName, String)]) -> Self {
        Self::with_limits(seeds, AnalyzerLimits::default())
    }

    /// Like [`Analyzer::new`] with explicit limits.
    pub fn with_limits(seeds: &[(IdentName, String)], limits: AnalyzerLimits) -> Self {
        let mut strings = Interner::default();
        let mut norm = Vec::new();
        let mut seed_raw = Vec::new();
        for (ident, raw) in seeds {
            if let Some((value, _)) = normalize_ident(*ident, raw) {
                let id = strings.intern(&value);
                if !norm.contains(&(*ident, id)) {
                    norm.push((*ident, id));
                    seed_raw.push((*ident, value));
                }
            }
        }
        Analyzer {
            limits,
            seeds: norm,
            seed_raw,
            strings,
            sources: Vec::new(),
            records: Vec::new(),
            timestamps: String::new(),
            records_seen: 0,
            records_dropped: 0,
            problems: Vec::new(),
            problems_omitted: 0,
            state_limit_reported: false,
            lines_seen: 0,
            link_generation: 0,
            linked_last: None,
        }
    }

    /// Whether the analysis has a seed to search from (a seed whose value does not normalise,
    /// such as an all-zero trace id, is no seed).
    pub fn has_seeds(&self) -> bool {
        !self.seeds.is_empty()
    }

    /// Changes whenever a record was kept that may change [`Analyzer::linked_values`]: one that
    /// holds a value linked at the last call and brings a link-key value not linked yet (any
    /// record with a link-key or seeded-identifier observation before the first call). A
    /// record holding no linked value matches nothing new, and one whose link-key values are
    /// all linked already adds nothing: the fixpoint stays. A caller can cache the set and
    /// recompute it only when this value changed.
    pub fn link_generation(&self) -> u64 {
        self.link_generation
    }

    /// Counts `lines` read from `source` (parsed or only validated).
    pub fn add_lines(&mut self, source: SourceId, lines: u64) {
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.lines += lines;
        }
        self.lines_seen += lines;
    }

    /// Registers a source; records are then pushed with [`Analyzer::push`].
    pub fn begin_source(&mut self, source_path: &str, blob_sha256: &str, kind: &str, format: Format) -> SourceId {
        let id = u32::try_from(self.sources.len()).unwrap_or(u32::MAX);
        self.sources.push(SourceInfo {
            path: Arc::from(source_path),
            blob_sha256: Arc::from(blob_sha256),
            kind: kind.to_string(),
            format,
            records: 0,
            lines: 0,
            problems: 0,
        });
        SourceId(id)
    }

    /// Registers a source and feeds all its records.
    pub fn add_source(
        &mut self,
        source_path: &str,
        blob_sha256: &str,
        kind: &str,
        format: Format,
        records: impl IntoIterator<Item = Record>,
    ) -> SourceId {
        let id = self.begin_source(source_path, blob_sha256, kind, format);
        for r in records {
            self.push(id, r);
        }
        id
    }

    /// Reports a problem with a source that is not tied to a record (e.g. a read error).
    pub fn add_problem(&mut self, source: SourceId, problem: Problem) {
        self.note_problem(source.0, None, None, None, false, problem);
    }

    fn note_problem(
        &mut self,
        source: u32,
        offset: Option<u64>,
        len: Option<u64>,
        line: Option<u64>,
        decompressed: bool,
        problem: Problem,
    ) {
        if let Some(s) = self.sources.get_mut(source as usize) {
            s.problems += 1;
        }
        if self.problems.len() >= self.limits.max_problems {
            self.problems_omitted += 1;
            return;
        }
        let source_path = self.sources.get(source as usize).map_or_else(|| Arc::from(""), |s| Arc::clone(&s.path));
        self.problems.push(SourceProblem { source_path, offset, len, line, decompressed, problem });
    }

    /// Feeds one record of `source`.
    pub fn push(&mut self, source: SourceId, record: Record) {
        self.records_seen += 1;
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.records += 1;
        }
        if let Some(p) = record.problem {
            self.note_problem(source.0, Some(record.offset), Some(record.len), record.line, record.decompressed, p);
            return;
        }
        // Records without identifiers can never match the incident: count, don't keep.
        if record.observations.is_empty() {
            return;
        }
        if self.records.len() >= self.limits.max_records {
            self.records_dropped += 1;
            if !self.state_limit_reported {
                self.state_limit_reported = true;
                let limit = self.limits.max_records as u64;
                self.note_problem(
                    source.0,
                    Some(record.offset),
                    Some(record.len),
                    record.line,
                    record.decompressed,
                    Problem::StateLimit { limit },
                );
            }
            return;
        }
        let st = &mut self.strings;
        let obs: Vec<Obs> = record
            .observations
            .iter()
            .map(|o| Obs {
                ident: o.ident,
                value: st.intern(&o.value),
                raw: st.opt(&o.raw).unwrap_or(NO_STRING),
                field: st.intern(&o.field),
            })
            .collect();
        let facts: Vec<CFact> = record.facts.iter().map(|f| compact(st, f)).collect();
        let changes_links = match &self.linked_last {
            Some(linked) => {
                obs.iter().any(|o| linked.contains(&(o.ident, o.value)))
                    && obs.iter().any(|o| o.ident.is_link_key() && !linked.contains(&(o.ident, o.value)))
            }
            None => obs.iter().any(|o| o.ident.is_link_key() || self.seeds.iter().any(|s| s.0 == o.ident)),
        };
        if changes_links {
            self.link_generation += 1;
        }
        let ts_start = self.timestamps.len() as u64;
        let ts_len = match record.timestamp.as_deref().map(|t| (t, u32::try_from(t.len()))) {
            Some((t, Ok(n))) if n != NO_STRING => {
                self.timestamps.push_str(t);
                n
            }
            // A "timestamp" of 4 GiB is no timestamp.
            _ => NO_STRING,
        };
        self.records.push(Stored {
            source: source.0,
            ts_len,
            ts_start,
            offset: record.offset,
            len: record.len,
            line: record.line.unwrap_or(NO_LINE),
            decompressed: record.decompressed,
            obs: obs.into_boxed_slice(),
            facts: facts.into_boxed_slice(),
        });
    }

    /// Expands the seeds to a fixpoint and builds the whole report in memory.
    ///
    /// Its lists can hold hundreds of thousands of entries; [`Analyzer::into_report`] gives the
    /// same report with the long lists rendered one entry at a time when it is serialized.
    pub fn finish(self) -> Analysis {
        self.into_report().into_analysis()
    }

    /// Expands the seeds to a fixpoint and computes the report's small parts. The long lists
    /// (the linkage's tool calls, approvals, decisions and memory accesses, the index, the
    /// side-effect writes) stay compact references into the kept records until they are
    /// rendered: entry by entry when the [`Report`] is serialized, or all at once by
    /// [`Report::into_analysis`].
    pub fn into_report(mut self) -> Report {
        let (matched, rounds) = self.expand();
        let mut incident: Vec<usize> = matched.iter().enumerate().filter_map(|(i, m)| m.then_some(i)).collect();
        drop(matched);
        // Report order follows the evidence (source, offset), not the order records were
        // pushed in (a pre-filter may push some records on a second pass).
        incident.sort_by_key(|&i| self.records.get(i).map(|r| (r.source, r.offset)).unwrap_or_default());
        let identifiers = self.identifier_reports(&incident);
        let lists = self.linkage(&incident);
        let hint = self.side_effect(&lists.tool_calls);
        let (index, index_omitted, per_source) = self.index(&incident);
        let sources = self
            .sources
            .iter_mut()
            .enumerate()
            .map(|(i, s)| SourceSummary {
                source_path: Arc::clone(&s.path),
                blob_sha256: Arc::clone(&s.blob_sha256),
                // Rendering needs only the path and hash of a source.
                kind: std::mem::take(&mut s.kind),
                format: s.format,
                records: s.records,
                lines: s.lines,
                incident_records: per_source.get(&(i as u32)).copied().unwrap_or(0),
                problems: s.problems,
            })
            .collect();
        let stats = AnalysisStats {
            records_seen: self.records_seen,
            lines_seen: self.lines_seen,
            records_kept: self.records.len() as u64,
            records_dropped: self.records_dropped,
            incident_records: incident.len() as u64,
            expansion_rounds: rounds,
        };
        self.linked_last = None;
        Report {
            seeds: self.seed_raw.iter().map(|(ident, value)| Seed { ident: *ident, value: value.clone() }).collect(),
            identifiers,
            index_omitted,
            problems: std::mem::take(&mut self.problems),
            problems_omitted: self.problems_omitted,
            sources,
            stats,
            lists,
            index,
            hint,
            an: self,
        }
    }
    /// Breadth-first expansion over link-key values; returns the matched records and the
    /// number of rounds.
    fn expand(&mut self) -> (Vec<bool>, u64) {
        let seed_idents: HashSet<IdentName> = self.seeds.iter().map(|s| s.0).collect();
        let mut postings: HashMap<(IdentName, u32), Vec<u32>> = HashMap::new();
        for (rid, r) in self.records.iter().enumerate() {
            for o in r.obs.iter() {
                if o.ident.is_link_key() || seed_idents.contains(&o.ident) {
                    postings.entry((o.ident, o.value)).or_default().push(u32::try_from(rid).unwrap_or(u32::MAX));
                }
            }
        }
        let mut matched = vec![false; self.records.len()];
        let mut visited: HashSet<(IdentName, u32)> = self.seeds.iter().copied().collect();
        let mut per_ident = [0usize; 9];
        let mut limit_hit = [false; 9];
        let mut frontier: Vec<(IdentName, u32)> = self.seeds.clone();
        let mut rounds = 0u64;
        let mut pending_problems = Vec::new();
        while !frontier.is_empty() {
            rounds += 1;
            let mut next = Vec::new();
            for key in frontier {
                let Some(list) = postings.get(&key) else {
                    continue;
                };
                for rid in list {
                    let Some(slot) = matched.get_mut(*rid as usize) else {
                        continue;
                    };
                    if *slot {
                        continue;
                    }
                    *slot = true;
                    let Some(rec) = self.records.get(*rid as usize) else {
                        continue;
                    };
                    for o in rec.obs.iter() {
                        if !o.ident.is_link_key() || visited.contains(&(o.ident, o.value)) {
                            continue;
                        }
                        let i = o.ident.index();
                        let Some(count) = per_ident.get_mut(i) else {
                            continue;
                        };
                        if *count >= self.limits.max_link_values {
                            if let Some(hit) = limit_hit.get_mut(i) {
                                if !*hit {
                                    *hit = true;
                                    pending_problems.push(Problem::ExpansionLimit {
                                        ident: o.ident,
                                        limit: self.limits.max_link_values as u64,
                                    });
                                }
                            }
                            continue;
                        }
                        *count += 1;
                        visited.insert((o.ident, o.value));
                        next.push((o.ident, o.value));
                    }
                }
            }
            frontier = next;
        }
        for p in pending_problems {
            if self.problems.len() < self.limits.max_problems {
                self.problems.push(SourceProblem {
                    source_path: Arc::from(""),
                    offset: None,
                    len: None,
                    line: None,
                    decompressed: false,
                    problem: p,
                });
            } else {
                self.problems_omitted += 1;
            }
        }
        (matched, rounds)
    }

    /// A kept record's timestamp.
    fn timestamp(&self, r: &Stored) -> Option<&str> {
        if r.ts_len == NO_STRING {
            return None;
        }
        let start = usize::try_from(r.ts_start).ok()?;
        self.timestamps.get(start..start.checked_add(r.ts_len as usize)?)
    }

    fn source_ref(&self, r: &Stored) -> SourceRef {
        let src = self.sources.get(r.source as usize);
        SourceRef {
            source_path: src.map_or_else(|| Arc::from(""), |s| Arc::clone(&s.path)),
            blob_sha256: src.map_or_else(|| Arc::from(""), |s| Arc::clone(&s.blob_sha256)),
            offset: r.offset,
            len: r.len,
            line: (r.line != NO_LINE).then_some(r.line),
            timestamp: self.timestamp(r).map(str::to_string),
            decompressed: r.decompressed,
        }
    }

    fn identifier_reports(&self, incident: &[usize]) -> Vec<IdentifierReport> {
        struct Acc {
            records: u64,
            last_record: usize,
            places: Vec<Place>,
            omitted: u64,
        }
        let mut accs: BTreeMap<(IdentName, u32), Acc> = BTreeMap::new();
        for &rid in incident {
            let Some(r) = self.records.get(rid) else {
                continue;
            };
            for o in r.obs.iter() {
                let acc = accs.entry((o.ident, o.value)).or_insert(Acc {
                    records: 0,
                    last_record: usize::MAX,
                    places: Vec::new(),
                    omitted: 0,
                });
                // Several items of one line count once.
                let same_line = acc.last_record != usize::MAX
                    && self.records.get(acc.last_record).is_some_and(|p| p.source == r.source && p.offset == r.offset);
                acc.last_record = rid;
                if same_line {
                    continue;
                }
                acc.records += 1;
                if acc.places.len() < self.limits.max_places {
                    acc.places.push(Place {
                        at: self.source_ref(r),
                        field: self.strings.get(o.field),
                        raw: (o.raw != NO_STRING).then(|| self.strings.get(o.raw)),
                    });
                } else {
                    acc.omitted += 1;
                }
            }
        }
        let mut reports = Vec::new();
        for ident in IdentName::ALL {
            let seeded: Vec<u32> = self.seeds.iter().filter(|s| s.0 == ident).map(|s| s.1).collect();
            let mut values: Vec<IdentValue> = accs
                .range((ident, 0)..=(ident, u32::MAX))
                .map(|((_, v), acc)| IdentValue {
                    value: self.strings.get(*v),
                    seeded: seeded.contains(v),
                    records: acc.records,
                    places: acc.places.clone(),
                    places_omitted: acc.omitted,
                })
                .collect();
            values.sort_by(|a, b| b.records.cmp(&a.records).then(a.value.cmp(&b.value)));
            let seed_values: Vec<String> = seeded.iter().map(|v| self.strings.get(*v)).collect();
            let (status, value, conflicts) = match values.len() {
                0 if seed_values.is_empty() => (IdentStatus::Missing, None, Vec::new()),
                0 => (IdentStatus::NotObserved, seed_values.first().cloned(), Vec::new()),
                1 => (IdentStatus::Present, values.first().map(|v| v.value.clone()), Vec::new()),
                _ if ident.is_single_valued() => {
                    (IdentStatus::Conflict, None, values.iter().map(|v| v.value.clone()).collect())
                }
                _ => (IdentStatus::Multiple, seed_values.first().cloned(), Vec::new()),
            };
            reports.push(IdentifierReport { ident, status, value, values, conflicts });
        }
        reports
    }

    /// The linkage, its long lists as references sorted by time.
    fn linkage(&self, incident: &[usize]) -> Lists {
        let s = &self.strings;
        let max = self.limits.max_list;
        let mut edges: BTreeMap<(IdentName, u32, IdentName, u32), u64> = BTreeMap::new();
        let mut principals: BTreeMap<(Option<u32>, u32), u64> = BTreeMap::new();
        let mut egress: HashMap<u32, EgressDestination> = HashMap::new();
        // Lists sized exactly: these can hold tens of thousands of entries, and growing them
        // by doubling leaves up to half of each unused at the analysis' peak of memory.
        let mut counts = [0usize; 4];
        for r in incident.iter().filter_map(|&rid| self.records.get(rid)) {
            for f in r.facts.iter() {
                let i = match f {
                    CFact::ToolCall { .. } => 0,
                    CFact::Decision { .. } => 1,
                    CFact::Approval { .. } => 2,
                    CFact::Memory { .. } => 3,
                    CFact::Egress { .. } => continue,
                };
                counts[i] += 1;
            }
        }
        let mut link = Lists {
            chain: Vec::new(),
            principals: Vec::new(),
            egress: Vec::new(),
            memory_reads: 0,
            memory_writes: 0,
            omitted: 0,
            tool_calls: Vec::with_capacity(counts[0].min(max)),
            decisions: Vec::with_capacity(counts[1].min(max)),
            approvals: Vec::with_capacity(counts[2].min(max)),
            memory: Vec::with_capacity(counts[3].min(max)),
        };
        let mut last_line: Option<(u32, u64)> = None;
        for &rid in incident {
            let Some(r) = self.records.get(rid) else {
                continue;
            };
            let line_key = (r.source, r.offset);
            let new_line = last_line != Some(line_key);
            last_line = Some(line_key);
            for (i, a) in r.obs.iter().enumerate() {
                for b in r.obs.iter().skip(i + 1) {
                    let (x, y) = if a.ident <= b.ident { (a, b) } else { (b, a) };
                    let key = (x.ident, x.value, y.ident, y.value);
                    if let Some(c) = edges.get_mut(&key) {
                        if new_line {
                            *c += 1;
                        }
                    } else if edges.len() < max {
                        edges.insert(key, 1);
                    }
                }
            }
            for (fi, f) in r.facts.iter().enumerate() {
                let at =
                    FactAt { rid: u32::try_from(rid).unwrap_or(u32::MAX), fact: u32::try_from(fi).unwrap_or(u32::MAX) };
                match f {
                    CFact::ToolCall { tool, principal, .. } => {
                        *principals.entry((*principal, *tool)).or_default() += 1;
                        push_capped(&mut link.tool_calls, &mut link.omitted, max, || at);
                    }
                    CFact::Decision { .. } => push_capped(&mut link.decisions, &mut link.omitted, max, || at),
                    CFact::Approval { .. } => push_capped(&mut link.approvals, &mut link.omitted, max, || at),
                    CFact::Egress { destination, method, status, bytes_sent, bytes_received } => {
                        if egress.len() >= max && !egress.contains_key(destination) {
                            link.omitted += 1;
                            continue;
                        }
                        let e = egress.entry(*destination).or_insert_with(|| EgressDestination {
                            destination: s.get(*destination),
                            requests: 0,
                            methods: BTreeMap::new(),
                            statuses: BTreeMap::new(),
                            bytes_sent: 0,
                            bytes_received: 0,
                            first_seen: None,
                            last_seen: None,
                        });
                        e.requests += 1;
                        if let Some(m) = method {
                            *e.methods.entry(s.get(*m)).or_default() += 1;
                        }
                        if let Some(st) = status {
                            *e.statuses.entry(*st).or_default() += 1;
                        }
                        e.bytes_sent = e.bytes_sent.saturating_add(bytes_sent.unwrap_or(0));
                        e.bytes_received = e.bytes_received.saturating_add(bytes_received.unwrap_or(0));
                        if let Some(ts) = self.timestamp(r) {
                            if e.first_seen.as_deref().map_or(true, |f| ts < f) {
                                e.first_seen = Some(ts.to_string());
                            }
                            if e.last_seen.as_deref().map_or(true, |l| ts > l) {
                                e.last_seen = Some(ts.to_string());
                            }
                        }
                    }
                    CFact::Memory { op, .. } => {
                        let op = op.map(|o| s.as_str(o).to_ascii_lowercase());
                        match op.as_deref() {
                            Some("write" | "update" | "upsert" | "delete" | "insert" | "put" | "create" | "store") => {
                                link.memory_writes += 1
                            }
                            Some(_) => link.memory_reads += 1,
                            None => {}
                        }
                        push_capped(&mut link.memory, &mut link.omitted, max, || at);
                    }
                }
            }
        }
        link.chain = edges
            .into_iter()
            .map(|((a, av, b, bv), n)| LinkEdge {
                from: a,
                from_value: s.get(av),
                to: b,
                to_value: s.get(bv),
                records: n,
            })
            .collect();
        link.principals = principals
            .into_iter()
            .map(|((p, t), n)| PrincipalUse { principal: s.get_opt(p), tool: s.get(t), calls: n })
            .collect();
        // Stable sorts: entries of one time keep the evidence order.
        let by_time = |a: &FactAt, b: &FactAt| self.time_key(*a).cmp(&self.time_key(*b));
        link.tool_calls.sort_by(by_time);
        link.approvals.sort_by(by_time);
        link.decisions.sort_by(by_time);
        link.memory.sort_by(by_time);
        let mut eg: Vec<EgressDestination> = egress.into_values().collect();
        eg.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.destination.cmp(&b.destination)));
        link.egress = eg;
        link
    }

    /// A linkage list's order: timestamp, then source path, then offset.
    fn time_key(&self, at: FactAt) -> (Option<&str>, &str, u64) {
        match self.records.get(at.rid as usize) {
            Some(r) => (self.timestamp(r), self.sources.get(r.source as usize).map_or("", |s| &s.path), r.offset),
            None => (None, "", 0),
        }
    }

    /// The record and fact `at` points to.
    fn fact(&self, at: FactAt) -> Option<(&Stored, &CFact)> {
        let r = self.records.get(at.rid as usize)?;
        Some((r, r.facts.get(at.fact as usize)?))
    }

    /// The writes among the listed tool calls (a call with an idempotency key, or a tool
    /// whose name reads as a write), their status, keys and warning.
    fn side_effect(&self, calls: &[FactAt]) -> Option<HintSummary> {
        let s = &self.strings;
        // Per distinct tool and outcome, not per call: classifying allocates.
        let mut write_tool: HashMap<u32, bool> = HashMap::new();
        let mut status_of: HashMap<Option<u32>, SideEffectStatus> = HashMap::new();
        let mut writes: Vec<(u32, SideEffectStatus)> = Vec::new();
        let mut keys: BTreeSet<&str> = BTreeSet::new();
        let mut unknown_tools: BTreeSet<&str> = BTreeSet::new();
        let mut unknown_keys: BTreeSet<&str> = BTreeSet::new();
        let mut unknown = 0u64;
        for (i, at) in calls.iter().enumerate() {
            let Some((_, CFact::ToolCall { tool, idempotency_key, outcome, .. })) = self.fact(*at) else {
                continue;
            };
            let is_write = idempotency_key.is_some()
                || *write_tool.entry(*tool).or_insert_with(|| looks_like_write(s.as_str(*tool)));
            if !is_write {
                continue;
            }
            let status = *status_of.entry(*outcome).or_insert_with(|| classify(outcome.map(|o| s.as_str(o))));
            writes.push((u32::try_from(i).unwrap_or(u32::MAX), status));
            if let Some(k) = idempotency_key {
                keys.insert(s.as_str(*k));
            }
            if status == SideEffectStatus::Unknown {
                unknown += 1;
                unknown_tools.insert(s.as_str(*tool));
                if let Some(k) = idempotency_key {
                    unknown_keys.insert(s.as_str(*k));
                }
            }
        }
        if writes.is_empty() {
            return None;
        }
        let (status, warning) = if unknown > 0 {
            let keys_text = if unknown_keys.is_empty() {
                "no idempotency key recorded".to_string()
            } else {
                format!("idempotency key(s) {}", unknown_keys.into_iter().collect::<Vec<_>>().join(", "))
            };
            (
                SideEffectStatus::Unknown,
                format!(
                    "do not repeat {} ({keys_text}): the outcome of {unknown} write(s) is not visible in the evidence; verify in the target system whether they were applied before retrying",
                    unknown_tools.into_iter().collect::<Vec<_>>().join(", "),
                ),
            )
        } else if writes.iter().all(|w| w.1 == SideEffectStatus::NotCommitted) {
            (
                SideEffectStatus::NotCommitted,
                "every write observed was rejected; none appears to have been applied".to_string(),
            )
        } else {
            (
                SideEffectStatus::Committed,
                "writes were applied; do not repeat them without their original idempotency keys".to_string(),
            )
        };
        Some(HintSummary { status, idempotency_keys: keys.into_iter().map(String::from).collect(), writes, warning })
    }

    /// `incident` is sorted by (source, offset): the items of one line or document are
    /// adjacent and become one entry.
    fn index(&self, incident: &[usize]) -> (Vec<IndexAt>, u64, HashMap<u32, u64>) {
        let link_values: HashSet<(IdentName, u32)> = self.matched_values(incident);
        let key_of = |rid: usize| self.records.get(rid).map(|r| (r.source, r.offset));
        let mut lines = 0usize;
        let mut prev = None;
        for &rid in incident {
            let key = key_of(rid);
            if key.is_some() && key != prev {
                lines += 1;
            }
            prev = key;
        }
        let mut entries: Vec<IndexAt> = Vec::with_capacity(lines.min(self.limits.max_list));
        let mut last: Option<(u32, u64)> = None;
        let mut last_listed = false;
        let mut omitted = 0u64;
        let mut per_source: HashMap<u32, u64> = HashMap::new();
        for &rid in incident {
            let Some(r) = self.records.get(rid) else {
                continue;
            };
            let by = r
                .obs
                .iter()
                .filter(|o| link_values.contains(&(o.ident, o.value)))
                .fold(0u16, |m, o| m | 1 << o.ident.index());
            let key = (r.source, r.offset);
            if last == Some(key) {
                if let (true, Some(e)) = (last_listed, entries.last_mut()) {
                    e.matched_by |= by;
                }
                continue;
            }
            last = Some(key);
            // Counted per line or document left out, as entries are.
            last_listed = entries.len() < self.limits.max_list;
            if !last_listed {
                omitted += 1;
                continue;
            }
            *per_source.entry(r.source).or_default() += 1;
            entries.push(IndexAt { rid: u32::try_from(rid).unwrap_or(u32::MAX), matched_by: by });
        }
        (entries, omitted, per_source)
    }

    /// Seed values plus link-key values of incident records.
    fn matched_values(&self, incident: &[usize]) -> HashSet<(IdentName, u32)> {
        let mut set: HashSet<(IdentName, u32)> = self.seeds.iter().copied().collect();
        for &rid in incident {
            if let Some(r) = self.records.get(rid) {
                for o in r.obs.iter().filter(|o| o.ident.is_link_key()) {
                    set.insert((o.ident, o.value));
                }
            }
        }
        set
    }

    /// The values that currently pull records into the incident: the seeds and, to a
    /// fixpoint over the records pushed so far, the link-key values of matching records
    /// (expansion limits not applied, so this is a superset of what [`Analyzer::finish`]
    /// uses). `None` when there are more than `max` of them. A line pre-filter that parses
    /// every line holding one of these values, and re-reads skipped lines when the set
    /// grows, gives the same analysis as parsing every line.
    pub fn linked_values(&mut self, max: usize) -> Option<Vec<(IdentName, String)>> {
        self.linked_last = None;
        let visited = self.linked_ids(max)?;
        let mut out: Vec<(IdentName, String)> = visited.iter().map(|&(i, v)| (i, self.strings.get(v))).collect();
        out.sort();
        self.linked_last = Some(visited);
        Some(out)
    }

    /// [`Analyzer::linked_values`] as interned ids.
    fn linked_ids(&self, max: usize) -> Option<HashSet<(IdentName, u32)>> {
        let seed_idents: HashSet<IdentName> = self.seeds.iter().map(|s| s.0).collect();
        let mut postings: HashMap<(IdentName, u32), Vec<usize>> = HashMap::new();
        for (rid, r) in self.records.iter().enumerate() {
            for o in r.obs.iter() {
                if o.ident.is_link_key() || seed_idents.contains(&o.ident) {
                    postings.entry((o.ident, o.value)).or_default().push(rid);
                }
            }
        }
        let mut matched = vec![false; self.records.len()];
        let mut visited: HashSet<(IdentName, u32)> = self.seeds.iter().copied().collect();
        let mut frontier: Vec<(IdentName, u32)> = self.seeds.clone();
        while let Some(key) = frontier.pop() {
            for &rid in postings.get(&key).into_iter().flatten() {
                if std::mem::replace(&mut matched[rid], true) {
                    continue;
                }
                for o in self.records[rid].obs.iter().filter(|o| o.ident.is_link_key()) {
                    if visited.insert((o.ident, o.value)) {
                        if visited.len() > max {
                            return None;
                        }
                        frontier.push((o.ident, o.value));
                    }
                }
            }
        }
        Some(visited)
    }

    /// Looks up whether `value` of `ident` was seen in any record (any session).
    pub fn seen_anywhere(&self, ident: IdentName, value: &str) -> bool {
        let Some(id) = self.strings.lookup(value) else {
            return false;
        };
        self.records.iter().any(|r| r.obs.iter().any(|o| o.ident == ident && o.value == id))
    }
}

fn push_capped<T>(list: &mut Vec<T>, omitted: &mut u64, max: usize, make: impl FnOnce() -> T) {
    if list.len() < max {
        list.push(make());
    } else {
        *omitted += 1;
    }
}

fn compact(st: &mut Interner, f: &Fact) -> CFact {
    match f {
        Fact::ToolCall { tool, call_id, principal, idempotency_key, outcome } => CFact::ToolCall {
            tool: st.intern(tool),
            call_id: st.opt(call_id),
            principal: st.opt(principal),
            idempotency_key: st.opt(idempotency_key),
            outcome: st.opt(outcome),
        },
        Fact::Decision { decision_id, path, result } => {
            CFact::Decision { decision_id: st.opt(decision_id), path: st.opt(path), result: st.opt(result) }
        }
        Fact::Approval { approval_id, tool, decision, approver, call_id } => CFact::Approval {
            approval_id: st.opt(approval_id),
            tool: st.opt(tool),
            decision: st.opt(decision),
            approver: st.opt(approver),
            call_id: st.opt(call_id),
        },
        Fact::Egress { destination, method, status, bytes_sent, bytes_received } => CFact::Egress {
            destination: st.intern(destination),
            method: st.opt(method),
            status: *status,
            bytes_sent: *bytes_sent,
            bytes_received: *bytes_received,
        },
        Fact::Memory { memory_id, op } => CFact::Memory { memory_id: st.opt(memory_id), op: st.opt(op) },
    }
}

/// Tool names that usually change state.
fn looks_like_write(tool: &str) -> bool {
    const VERBS: [&str; 20] = [
        "create", "update", "delete", "remove", "send", "write", "post", "put", "patch", "insert", "transfer", "pay",
        "refund", "deploy", "merge", "publish", "execute", "run", "set", "approve",
    ];
    let t = tool.to_ascii_lowercase();
    VERBS.iter().any(|v| t.starts_with(v) || t.contains(&format!("_{v}")) || t.contains(&format!(".{v}")))
}

/// Classifies a visible outcome.
fn classify(outcome: Option<&str>) -> SideEffectStatus {
    let Some(o) = outcome.map(|o| o.trim().to_ascii_lowercase()) else {
        return SideEffectStatus::Unknown;
    };
    if let Ok(code) = o.parse::<u16>() {
        return match code {
            200..=299 => SideEffectStatus::Committed,
            408 | 409 | 425 | 429 => SideEffectStatus::Unknown,
            400..=499 => SideEffectStatus::NotCommitted,
            _ => SideEffectStatus::Unknown,
        };
    }
    if ["ok", "success", "succeeded", "completed", "done", "created"].contains(&o.as_str()) {
        SideEffectStatus::Committed
    } else if ["rejected", "denied", "forbidden", "not_executed", "skipped"].contains(&o.as_str()) {
        SideEffectStatus::NotCommitted
    } else {
        // timeout, error, cancelled, unknown…: the call may or may not have been applied.
        SideEffectStatus::Unknown
    }
}

/// A fact of a kept record: the record and the fact's position in it.
#[derive(Debug, Clone, Copy)]
struct FactAt {
    rid: u32,
    fact: u32,
}

/// An index entry before it is rendered: the first record of its line or document, and the
/// identifiers it matched by (bit [`IdentName::index`]).
#[derive(Debug, Clone, Copy)]
struct IndexAt {
    rid: u32,
    matched_by: u16,
}

/// The linkage with its long lists as references, sorted by time.
struct Lists {
    chain: Vec<LinkEdge>,
    principals: Vec<PrincipalUse>,
    egress: Vec<EgressDestination>,
    memory_reads: u64,
    memory_writes: u64,
    omitted: u64,
    tool_calls: Vec<FactAt>,
    approvals: Vec<FactAt>,
    decisions: Vec<FactAt>,
    memory: Vec<FactAt>,
}

/// The side-effect hint with its writes as positions in [`Lists::tool_calls`].
struct HintSummary {
    status: SideEffectStatus,
    idempotency_keys: Vec<String>,
    writes: Vec<(u32, SideEffectStatus)>,
    warning: String,
}

/// The incident analysis, computed, with its long lists not yet rendered.
///
/// Serializing a `Report` writes exactly the JSON of the [`Analysis`] that
/// [`Report::into_analysis`] would build (same fields, same order), but renders each entry
/// of the linkage lists, the index and the side-effect writes as it is written: the memory
/// a large incident's report needs is the compact records the analyzer kept, not a second,
/// larger copy of them as strings (100 000 tool calls are ~50 MB as [`ToolCallLink`]s).
pub struct Report {
    an: Analyzer,
    lists: Lists,
    index: Vec<IndexAt>,
    hint: Option<HintSummary>,
    /// The seeds.
    pub seeds: Vec<Seed>,
    /// One report per identifier, in [`IdentName::ALL`] order.
    pub identifiers: Vec<IdentifierReport>,
    /// Index entries left out at the list limit.
    pub index_omitted: u64,
    /// Problems found in the inputs.
    pub problems: Vec<SourceProblem>,
    /// Problems not listed.
    pub problems_omitted: u64,
    /// Per-source summaries (a caller may list fewer: only these are serialized).
    pub sources: Vec<SourceSummary>,
    /// Counters.
    pub stats: AnalysisStats,
}

/// Serializes the items of an iterator made on demand, as a JSON array.
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq((self.0)())
    }
}

impl Report {
    fn tool_call(&self, at: FactAt) -> Option<ToolCallLink> {
        let s = &self.an.strings;
        match self.an.fact(at)? {
            (r, CFact::ToolCall { tool, call_id, principal, idempotency_key, outcome }) => Some(ToolCallLink {
                tool: s.get(*tool),
                call_id: s.get_opt(*call_id),
                principal: s.get_opt(*principal),
                idempotency_key: s.get_opt(*idempotency_key),
                outcome: s.get_opt(*outcome),
                at: self.an.source_ref(r),
            }),
            _ => None,
        }
    }

    /// The linkage's tool calls, by time.
    pub fn tool_calls(&self) -> impl Iterator<Item = ToolCallLink> + '_ {
        self.lists.tool_calls.iter().filter_map(|at| self.tool_call(*at))
    }

    /// The approval path with decisions, by time.
    pub fn approvals(&self) -> impl Iterator<Item = ApprovalStep> + '_ {
        let s = &self.an.strings;
        self.lists.approvals.iter().filter_map(move |at| match self.an.fact(*at)? {
            (r, CFact::Approval { approval_id, tool, decision, approver, call_id }) => Some(ApprovalStep {
                approval_id: s.get_opt(*approval_id),
                tool: s.get_opt(*tool),
                call_id: s.get_opt(*call_id),
                decision: s.get_opt(*decision),
                approver: s.get_opt(*approver),
                at: self.an.source_ref(r),
            }),
            _ => None,
        })
    }

    /// The policy decisions, by time.
    pub fn decisions(&self) -> impl Iterator<Item = DecisionLink> + '_ {
        let s = &self.an.strings;
        self.lists.decisions.iter().filter_map(move |at| match self.an.fact(*at)? {
            (r, CFact::Decision { decision_id, path, result }) => Some(DecisionLink {
                decision_id: s.get_opt(*decision_id),
                path: s.get_opt(*path),
                result: s.get_opt(*result),
                bundle_id: r.obs.iter().find(|o| o.ident == IdentName::BundleId).map(|o| s.get(o.value)),
                at: self.an.source_ref(r),
            }),
            _ => None,
        })
    }

    /// The memory records read or written, by time.
    pub fn memory(&self) -> impl Iterator<Item = MemoryAccess> + '_ {
        let s = &self.an.strings;
        self.lists.memory.iter().filter_map(move |at| match self.an.fact(*at)? {
            (r, CFact::Memory { memory_id, op }) => {
                Some(MemoryAccess { memory_id: s.get_opt(*memory_id), op: s.get_opt(*op), at: self.an.source_ref(r) })
            }
            _ => None,
        })
    }

    /// Every incident record (one entry per line or document), by source and offset.
    pub fn index(&self) -> impl Iterator<Item = IndexEntry> + '_ {
        self.index.iter().filter_map(|e| {
            let r = self.an.records.get(e.rid as usize)?;
            let matched_by = IdentName::ALL.into_iter().filter(|i| e.matched_by & (1 << i.index()) != 0).collect();
            Some(IndexEntry { at: self.an.source_ref(r), matched_by })
        })
    }

    /// The side-effecting calls among the tool calls, with their classified outcome.
    pub fn writes(&self) -> impl Iterator<Item = WriteOutcome> + '_ {
        self.hint.iter().flat_map(|h| h.writes.iter()).filter_map(|&(i, status)| {
            let at = *self.lists.tool_calls.get(i as usize)?;
            Some(WriteOutcome { call: self.tool_call(at)?, status })
        })
    }

    /// Identifier pairs seen in the same record.
    pub fn chain(&self) -> &[LinkEdge] {
        &self.lists.chain
    }

    /// Egress destinations, most requests first.
    pub fn egress(&self) -> &[EgressDestination] {
        &self.lists.egress
    }

    /// Tool calls listed, and how many of them name their principal.
    pub fn tool_call_counts(&self) -> (usize, usize) {
        let with_principal = self
            .lists
            .tool_calls
            .iter()
            .filter(|at| matches!(self.an.fact(**at), Some((_, CFact::ToolCall { principal: Some(_), .. }))))
            .count();
        (self.lists.tool_calls.len(), with_principal)
    }

    /// Approval steps listed, how many carry a decision, and the distinct decisions.
    pub fn approval_counts(&self) -> (usize, usize, BTreeSet<&str>) {
        let decisions: Vec<&str> = self
            .lists
            .approvals
            .iter()
            .filter_map(|at| match self.an.fact(*at) {
                Some((_, CFact::Approval { decision: Some(d), .. })) => Some(self.an.strings.as_str(*d)),
                _ => None,
            })
            .collect();
        let decided = decisions.len();
        (self.lists.approvals.len(), decided, decisions.into_iter().collect())
    }

    /// Policy decisions listed.
    pub fn decision_count(&self) -> usize {
        self.lists.decisions.len()
    }

    /// Memory accesses listed, and the reads and writes among all of them.
    pub fn memory_counts(&self) -> (usize, u64, u64) {
        (self.lists.memory.len(), self.lists.memory_reads, self.lists.memory_writes)
    }

    /// The side-effect hint's status and warning, when writes were seen.
    pub fn side_effect(&self) -> Option<(SideEffectStatus, &str)> {
        self.hint.as_ref().map(|h| (h.status, h.warning.as_str()))
    }

    /// The side-effect hint, built in memory.
    pub fn side_effect_hint(&self) -> Option<SideEffectHint> {
        self.hint.as_ref().map(|h| SideEffectHint {
            status: h.status,
            idempotency_keys: h.idempotency_keys.clone(),
            writes: self.writes().collect(),
            warning: h.warning.clone(),
        })
    }

    /// The linkage, built in memory.
    pub fn linkage(&self) -> Linkage {
        Linkage {
            chain: self.lists.chain.clone(),
            tool_calls: self.tool_calls().collect(),
            principals: self.lists.principals.clone(),
            approvals: self.approvals().collect(),
            decisions: self.decisions().collect(),
            memory: self.memory().collect(),
            memory_reads: self.lists.memory_reads,
            memory_writes: self.lists.memory_writes,
            egress: self.lists.egress.clone(),
            omitted: self.lists.omitted,
        }
    }

    /// The whole [`Analysis`], built in memory.
    pub fn into_analysis(self) -> Analysis {
        let linkage = self.linkage();
        let index = self.index().collect();
        let side_effect_hint = self.side_effect_hint();
        Analysis {
            seeds: self.seeds,
            identifiers: self.identifiers,
            linkage,
            index,
            index_omitted: self.index_omitted,
            side_effect_hint,
            problems: self.problems,
            problems_omitted: self.problems_omitted,
            sources: self.sources,
            stats: self.stats,
        }
    }
}

/// The same fields, in the same order, as [`Analysis`], [`Linkage`] and [`SideEffectHint`]
/// (the test `report_serializes_as_the_analysis_it_builds` holds them to it).
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct LinkageView<'a, T, A, D, M> {
            chain: &'a [LinkEdge],
            tool_calls: T,
            principals: &'a [PrincipalUse],
            approvals: A,
            decisions: D,
            memory: M,
            memory_reads: u64,
            memory_writes: u64,
            egress: &'a [EgressDestination],
            omitted: u64,
        }
        #[derive(Serialize)]
        struct HintView<'a, W> {
            status: SideEffectStatus,
            idempotency_keys: &'a [String],
            writes: W,
            warning: &'a str,
        }
        #[derive(Serialize)]
        struct View<'a, L, X, H> {
            seeds: &'a [Seed],
            identifiers: &'a [IdentifierReport],
            linkage: L,
            index: X,
            index_omitted: u64,
            side_effect_hint: Option<H>,
            problems: &'a [SourceProblem],
            problems_omitted: u64,
            sources: &'a [SourceSummary],
            stats: &'a AnalysisStats,
        }
        let l = &self.lists;
        View {
            seeds: &self.seeds,
            identifiers: &self.identifiers,
            linkage: LinkageView {
                chain: &l.chain,
                tool_calls: Seq(|| self.tool_calls()),
                principals: &l.principals,
                approvals: Seq(|| self.approvals()),
                decisions: Seq(|| self.decisions()),
                memory: Seq(|| self.memory()),
                memory_reads: l.memory_reads,
                memory_writes: l.memory_writes,
                egress: &l.egress,
                omitted: l.omitted,
            },
            index: Seq(|| self.index()),
            index_omitted: self.index_omitted,
            side_effect_hint: self.hint.as_ref().map(|h| HintView {
                status: h.status,
                idempotency_keys: &h.idempotency_keys,
                writes: Seq(|| self.writes()),
                warning: &h.warning,
            }),
            problems: &self.problems,
            problems_omitted: self.problems_omitted,
            sources: &self.sources,
            stats: &self.stats,
        }
        .serialize(ser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64, obs: &[(IdentName, &str)]) -> Record {
        let mut r = Record::new(offset, 1, Some(offset + 1), false);
        r.observations = obs
            .iter()
            .map(|(ident, value)| super::super::types::Observation {
                ident: *ident,
                value: (*value).to_string(),
                raw: None,
                field: ident.as_str().to_string(),
            })
            .collect();
        r
    }

    /// The linked set is recomputed only after a record that can change it: one holding a
    /// linked value and bringing a link-key value not linked yet.
    #[test]
    fn link_generation_changes_only_when_the_linked_values_can() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut an = Analyzer::new(&[(IdentName::TraceId, trace.to_string())]);
        let src = an.begin_source("a.jsonl", "sha", "logs", Format::Jsonl);
        an.push(src, rec(0, &[(IdentName::TraceId, trace), (IdentName::SessionId, "s-1")]));
        let linked = an.linked_values(100).unwrap_or_default();
        assert!(linked.contains(&(IdentName::SessionId, "s-1".to_string())), "{linked:?}");
        let g = an.link_generation();
        // Another session, no linked value: cannot join the incident.
        an.push(src, rec(1, &[(IdentName::SessionId, "s-other"), (IdentName::ApprovalId, "apr-x")]));
        // A linked value, but every link-key value already linked (agent ids do not link).
        an.push(src, rec(2, &[(IdentName::SessionId, "s-1"), (IdentName::AgentId, "agent")]));
        assert_eq!(an.link_generation(), g);
        // A linked value bringing a new link-key value: the set grows.
        an.push(src, rec(3, &[(IdentName::SessionId, "s-1"), (IdentName::ApprovalId, "apr-1")]));
        assert_ne!(an.link_generation(), g);
        let linked = an.linked_values(100).unwrap_or_default();
        assert!(linked.contains(&(IdentName::ApprovalId, "apr-1".to_string())), "{linked:?}");
        assert!(!linked.contains(&(IdentName::ApprovalId, "apr-x".to_string())), "{linked:?}");
        // Through the new value, the earlier record of "s-other" is not reached (it holds no
        // linked value), and a later one holding apr-1 links its session.
        let g = an.link_generation();
        an.push(src, rec(4, &[(IdentName::ApprovalId, "apr-1"), (IdentName::SessionId, "s-2")]));
        assert_ne!(an.link_generation(), g);
        let linked = an.linked_values(100).unwrap_or_default();
        assert!(linked.contains(&(IdentName::SessionId, "s-2".to_string())), "{linked:?}");
    }

    /// The report written entry by entry is the very JSON of the analysis built in memory:
    /// every list (capped ones included), sorted by time, with items of one line merged.
    #[test]
    fn report_serializes_as_the_analysis_it_builds() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let limits = AnalyzerLimits { max_list: 3, ..AnalyzerLimits::default() };
        let mut an = Analyzer::with_limits(&[(IdentName::TraceId, trace.to_string())], limits);
        let logs = an.begin_source("logs/tool_calls.jsonl", "sha-a", "logs", Format::Jsonl);
        let other = an.begin_source("policy/decisions.jsonl", "sha-b", "policy", Format::Jsonl);
        let opt = |s: &str| Some(s.to_string());
        for i in 0..5u64 {
            let mut r = rec(i * 100, &[(IdentName::TraceId, trace), (IdentName::SessionId, "s-1")]);
            // Out of time order, so the sort shows.
            r.timestamp = opt(&format!("2026-11-30T12:00:0{}Z", 5 - i));
            r.facts.push(Fact::ToolCall {
                tool: if i % 2 == 0 { "create_ticket".into() } else { "search".into() },
                call_id: opt(&format!("call-{i}")),
                principal: (i != 1).then(|| "svc-bot".to_string()),
                idempotency_key: (i == 2).then(|| "idem-1".to_string()),
                outcome: [None, opt("200"), opt("timeout"), opt("403"), opt("ok")][i as usize].clone(),
            });
            an.push(logs, r);
        }
        for i in 0..4u64 {
            let mut r = rec(
                i * 10,
                &[(IdentName::SessionId, "s-1"), (IdentName::BundleId, "bundle-7"), (IdentName::ApprovalId, "apr-1")],
            );
            r.timestamp = opt(&format!("2026-11-30T11:00:0{i}Z"));
            r.facts.push(Fact::Decision {
                decision_id: opt(&format!("d-{i}")),
                path: opt("agent/allow"),
                result: opt("true"),
            });
            r.facts.push(Fact::Approval {
                approval_id: opt("apr-1"),
                tool: opt("create_ticket"),
                decision: (i > 0).then(|| "approved".to_string()),
                approver: None,
                call_id: None,
            });
            r.facts.push(Fact::Memory {
                memory_id: opt(&format!("m-{i}")),
                op: opt(if i == 0 { "WRITE" } else { "read" }),
            });
            r.facts.push(Fact::Egress {
                destination: "api.tickets.internal".into(),
                method: opt("POST"),
                status: Some(201),
                bytes_sent: Some(10),
                bytes_received: None,
            });
            an.push(other, r.clone());
            // A second item of the same line: one index entry.
            r.facts.clear();
            r.observations.truncate(1);
            an.push(other, r);
        }
        // Not linked: in no list.
        an.push(logs, rec(900, &[(IdentName::SessionId, "s-other")]));

        let report = an.into_report();
        let streamed = serde_json::to_vec(&report).expect("serialize report");
        let (calls, with_principal) = report.tool_call_counts();
        let (steps, decided, decisions) = report.approval_counts();
        let decisions: Vec<String> = decisions.into_iter().map(String::from).collect();
        let writes: Vec<WriteOutcome> = report.writes().collect();
        let built = report.into_analysis();
        assert_eq!(String::from_utf8_lossy(&streamed), serde_json::to_string(&built).expect("serialize analysis"));

        // The lists hold what the records say, capped at 3, by time.
        let l = &built.linkage;
        assert_eq!((calls, with_principal), (3, 2));
        let ids: Vec<_> = l.tool_calls.iter().map(|c| c.call_id.clone().unwrap_or_default()).collect();
        assert_eq!(ids, ["call-2", "call-1", "call-0"]);
        assert_eq!((steps, decided, decisions), (3, 2, vec!["approved".to_string()]));
        assert_eq!(l.decisions.len(), 3);
        assert_eq!(l.decisions[0].bundle_id.as_deref(), Some("bundle-7"));
        assert_eq!((l.memory.len(), l.memory_reads, l.memory_writes), (3, 3, 1));
        // 2 tool calls, 1 decision, 1 approval and 1 memory access over the cap.
        assert_eq!(l.omitted, 5);
        assert_eq!(l.egress.first().map(|e| e.requests), Some(4));
        // Entries are lines: 2 lines of the logs and the 4 lines (2 items each) of the policy
        // log are over the cap.
        assert_eq!(built.index.len(), 3);
        assert_eq!(built.index_omitted, 6);
        assert!(built.index.iter().all(|e| e.matched_by.windows(2).all(|w| w[0] < w[1])));
        let hint = built.side_effect_hint.as_ref().expect("writes were seen");
        assert_eq!(hint.writes, writes);
        assert_eq!(hint.writes.len(), 2);
        assert_eq!(hint.status, SideEffectStatus::Unknown);
        assert_eq!(hint.idempotency_keys, ["idem-1"]);
        assert!(hint.warning.contains("do not repeat create_ticket (idempotency key(s) idem-1)"), "{}", hint.warning);
    }
}
