//! Incident-level analysis: keeps a compact summary of every record that carries an
//! identifier, expands the seed identifiers to a fixpoint over the link keys, then reports
//! identifiers (with every place found and any conflict), linkage, the record index, a
//! side-effect hint and the input problems.

use super::format::Format;
use super::ids::normalize_ident;
use super::types::{Fact, IdentName, Problem, Record};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
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
    fn get_opt(&self, id: Option<u32>) -> Option<String> {
        id.map(|i| self.get(i))
    }
    fn lookup(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }
}

#[derive(Clone, Copy)]
struct Obs {
    ident: IdentName,
    value: u32,
    raw: Option<u32>,
    field: u32,
}

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

struct Stored {
    source: u32,
    offset: u64,
    len: u64,
    line: Option<u64>,
    decompressed: bool,
    timestamp: Option<Box<str>>,
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
                raw: st.opt(&o.raw),
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
        self.records.push(Stored {
            source: source.0,
            offset: record.offset,
            len: record.len,
            line: record.line,
            decompressed: record.decompressed,
            timestamp: record.timestamp.map(String::into_boxed_str),
            obs: obs.into_boxed_slice(),
            facts: facts.into_boxed_slice(),
        });
    }

    /// Expands the seeds to a fixpoint and builds the report.
    pub fn finish(mut self) -> Analysis {
        let (matched, rounds) = self.expand();
        let mut incident: Vec<usize> = matched.iter().enumerate().filter_map(|(i, m)| m.then_some(i)).collect();
        // Report order follows the evidence (source, offset), not the order records were
        // pushed in (a pre-filter may push some records on a second pass).
        incident.sort_by_key(|&i| self.records.get(i).map(|r| (r.source, r.offset)).unwrap_or_default());
        let identifiers = self.identifier_reports(&incident);
        let linkage = self.linkage(&incident);
        let side_effect_hint = side_effect_hint(&linkage.tool_calls);
        let (index, index_omitted, per_source) = self.index(&incident);
        let sources = std::mem::take(&mut self.sources)
            .into_iter()
            .enumerate()
            .map(|(i, s)| SourceSummary {
                source_path: s.path,
                blob_sha256: s.blob_sha256,
                kind: s.kind,
                format: s.format,
                records: s.records,
                lines: s.lines,
                incident_records: per_source.get(&(i as u32)).copied().unwrap_or(0),
                problems: s.problems,
            })
            .collect();
        Analysis {
            seeds: self.seed_raw.iter().map(|(ident, value)| Seed { ident: *ident, value: value.clone() }).collect(),
            identifiers,
            linkage,
            index,
            index_omitted,
            side_effect_hint,
            problems: std::mem::take(&mut self.problems),
            problems_omitted: self.problems_omitted,
            sources,
            stats: AnalysisStats {
                records_seen: self.records_seen,
                lines_seen: self.lines_seen,
                records_kept: self.records.len() as u64,
                records_dropped: self.records_dropped,
                incident_records: incident.len() as u64,
                expansion_rounds: rounds,
            },
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

    fn source_ref(&self, r: &Stored) -> SourceRef {
        let src = self.sources.get(r.source as usize);
        SourceRef {
            source_path: src.map_or_else(|| Arc::from(""), |s| Arc::clone(&s.path)),
            blob_sha256: src.map_or_else(|| Arc::from(""), |s| Arc::clone(&s.blob_sha256)),
            offset: r.offset,
            len: r.len,
            line: r.line,
            timestamp: r.timestamp.as_deref().map(str::to_string),
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
                        raw: self.strings.get_opt(o.raw),
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

    fn linkage(&self, incident: &[usize]) -> Linkage {
        let s = &self.strings;
        let mut link = Linkage::default();
        let mut edges: BTreeMap<(IdentName, u32, IdentName, u32), u64> = BTreeMap::new();
        let mut principals: BTreeMap<(Option<u32>, u32), u64> = BTreeMap::new();
        let mut egress: HashMap<u32, EgressDestination> = HashMap::new();
        let max = self.limits.max_list;
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
        link.tool_calls.reserve_exact(counts[0].min(max));
        link.decisions.reserve_exact(counts[1].min(max));
        link.approvals.reserve_exact(counts[2].min(max));
        link.memory.reserve_exact(counts[3].min(max));
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
            let bundle = r.obs.iter().find(|o| o.ident == IdentName::BundleId).map(|o| s.get(o.value));
            for f in r.facts.iter() {
                match f {
                    CFact::ToolCall { tool, call_id, principal, idempotency_key, outcome } => {
                        *principals.entry((*principal, *tool)).or_default() += 1;
                        push_capped(&mut link.tool_calls, &mut link.omitted, max, || ToolCallLink {
                            tool: s.get(*tool),
                            call_id: s.get_opt(*call_id),
                            principal: s.get_opt(*principal),
                            idempotency_key: s.get_opt(*idempotency_key),
                            outcome: s.get_opt(*outcome),
                            at: self.source_ref(r),
                        });
                    }
                    CFact::Decision { decision_id, path, result } => {
                        push_capped(&mut link.decisions, &mut link.omitted, max, || DecisionLink {
                            decision_id: s.get_opt(*decision_id),
                            path: s.get_opt(*path),
                            result: s.get_opt(*result),
                            bundle_id: bundle.clone(),
                            at: self.source_ref(r),
                        })
                    }
                    CFact::Approval { approval_id, tool, decision, approver, call_id } => {
                        push_capped(&mut link.approvals, &mut link.omitted, max, || ApprovalStep {
                            approval_id: s.get_opt(*approval_id),
                            tool: s.get_opt(*tool),
                            call_id: s.get_opt(*call_id),
                            decision: s.get_opt(*decision),
                            approver: s.get_opt(*approver),
                            at: self.source_ref(r),
                        })
                    }
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
                        if let Some(ts) = r.timestamp.as_deref() {
                            if e.first_seen.as_deref().map_or(true, |f| ts < f) {
                                e.first_seen = Some(ts.to_string());
                            }
                            if e.last_seen.as_deref().map_or(true, |l| ts > l) {
                                e.last_seen = Some(ts.to_string());
                            }
                        }
                    }
                    CFact::Memory { memory_id, op } => {
                        let op_s = s.get_opt(*op);
                        match op_s.as_deref().map(str::to_ascii_lowercase).as_deref() {
                            Some("write" | "update" | "upsert" | "delete" | "insert" | "put" | "create" | "store") => {
                                link.memory_writes += 1
                            }
                            Some(_) => link.memory_reads += 1,
                            None => {}
                        }
                        push_capped(&mut link.memory, &mut link.omitted, max, || MemoryAccess {
                            memory_id: s.get_opt(*memory_id),
                            op: op_s.clone(),
                            at: self.source_ref(r),
                        });
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
        let by_time = |a: &SourceRef, b: &SourceRef| {
            (&a.timestamp, &a.source_path, a.offset).cmp(&(&b.timestamp, &b.source_path, b.offset))
        };
        link.tool_calls.sort_by(|a, b| by_time(&a.at, &b.at));
        link.approvals.sort_by(|a, b| by_time(&a.at, &b.at));
        link.decisions.sort_by(|a, b| by_time(&a.at, &b.at));
        link.memory.sort_by(|a, b| by_time(&a.at, &b.at));
        let mut eg: Vec<EgressDestination> = egress.into_values().collect();
        eg.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.destination.cmp(&b.destination)));
        link.egress = eg;
        link
    }

    /// `incident` is sorted by (source, offset): the items of one line or document are
    /// adjacent and become one entry.
    fn index(&self, incident: &[usize]) -> (Vec<IndexEntry>, u64, HashMap<u32, u64>) {
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
        let mut entries: Vec<IndexEntry> = Vec::with_capacity(lines.min(self.limits.max_list));
        let mut last: Option<(u32, u64)> = None;
        let mut omitted = 0u64;
        let mut per_source: HashMap<u32, u64> = HashMap::new();
        for &rid in incident {
            let Some(r) = self.records.get(rid) else {
                continue;
            };
            let by: Vec<IdentName> =
                r.obs.iter().filter(|o| link_values.contains(&(o.ident, o.value))).map(|o| o.ident).collect();
            let key = (r.source, r.offset);
            if last == Some(key) {
                if let Some(e) = entries.last_mut() {
                    for i in by {
                        if !e.matched_by.contains(&i) {
                            e.matched_by.push(i);
                        }
                    }
                    e.matched_by.sort();
                }
                continue;
            }
            if entries.len() >= self.limits.max_list {
                omitted += 1;
                continue;
            }
            last = Some(key);
            *per_source.entry(r.source).or_default() += 1;
            let mut by = by;
            by.sort();
            by.dedup();
            entries.push(IndexEntry { at: self.source_ref(r), matched_by: by });
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

fn side_effect_hint(calls: &[ToolCallLink]) -> Option<SideEffectHint> {
    let is_write = |c: &&ToolCallLink| c.idempotency_key.is_some() || looks_like_write(&c.tool);
    let mut writes: Vec<WriteOutcome> = Vec::with_capacity(calls.iter().filter(is_write).count());
    writes.extend(
        calls.iter().filter(is_write).map(|c| WriteOutcome { call: c.clone(), status: classify(c.outcome.as_deref()) }),
    );
    if writes.is_empty() {
        return None;
    }
    let mut keys: Vec<String> = writes.iter().filter_map(|w| w.call.idempotency_key.clone()).collect();
    keys.sort();
    keys.dedup();
    let unknown: Vec<&WriteOutcome> = writes.iter().filter(|w| w.status == SideEffectStatus::Unknown).collect();
    let (status, warning) = if !unknown.is_empty() {
        let mut tools: Vec<&str> = unknown.iter().map(|w| w.call.tool.as_str()).collect();
        tools.sort();
        tools.dedup();
        let mut ukeys: Vec<&str> = unknown.iter().filter_map(|w| w.call.idempotency_key.as_deref()).collect();
        ukeys.sort();
        ukeys.dedup();
        let keys_text = if ukeys.is_empty() {
            "no idempotency key recorded".to_string()
        } else {
            format!("idempotency key(s) {}", ukeys.join(", "))
        };
        (
            SideEffectStatus::Unknown,
            format!(
                "do not repeat {} ({keys_text}): the outcome of {} write(s) is not visible in the evidence; verify in the target system whether they were applied before retrying",
                tools.join(", "),
                unknown.len()
            ),
        )
    } else if writes.iter().all(|w| w.status == SideEffectStatus::NotCommitted) {
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
    Some(SideEffectHint { status, idempotency_keys: keys, writes, warning })
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
}
