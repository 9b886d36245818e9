//! The analyzer's record store and its online linking.
//!
//! Every record that holds anything (a classified field, an id-like value, event evidence)
//! is kept compactly: strings interned, its fields, values and evidence in shared arenas.
//! Linking is **online**: a record holding a linked value is in the incident at once, and the
//! values it carries of the expanding roles (trace, session, approval, idempotency key, call
//! id, request id, decision id) are linked in turn, pulling in every record kept so far that
//! holds one of them (a postings table of the records not in the incident yet). So the
//! closure is computed once, in time linear in the values seen, whatever order the sources
//! come in; the line pre-filter asks [`Analyzer::needles`] which values to look for.
//!
//! Beyond the incident's own records (tier [`Tier::Linked`]), three more tiers are computed at
//! the end: records on the **chain** (holding the incident's deployment id, then that
//! deployment's change id), records **joined** by a memory id the incident read or wrote, and
//! proxy lines without ids joined by **time window and source address**.

use super::formats::Format;
use super::item::{Ev, Item, Side};
use super::semantics::{LinkKey, Role};
use super::types::{Problem, Record};
use super::values::{canon, needles as needle_forms, Time, Zone};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus, Seed, SeedOrigin};
use std::collections::HashSet;

/// The analyzer's maps are keyed by interned ids, roles and strings of the evidence: aHash
/// (randomly keyed, like std's SipHash, so hostile evidence cannot choose collisions) hashes
/// them several times faster.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
use std::sync::Arc;

/// An absent interned string or time.
pub(crate) const NONE: u32 = u32::MAX;
/// An absent line number.
pub(crate) const NO_LINE: u64 = u64::MAX;

/// Bounds on the analyzer's state and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyzerLimits {
    /// Most records kept; later ones are counted and reported.
    pub max_records: usize,
    /// Most values of one role linked.
    pub max_link_values: usize,
    /// Most events listed.
    pub max_events: usize,
    /// Most citations listed per value.
    pub max_citations: usize,
    /// Most problems listed.
    pub max_problems: usize,
    /// Merge window for records without a shared id, in milliseconds.
    pub merge_window_ms: u64,
    /// Join window around the incident for proxy lines without ids, in milliseconds.
    pub join_window_ms: u64,
    /// Most bytes (estimated allocation cost: records, fields, events, interned strings) of
    /// records kept before anything linked them; later such records of files that cannot be
    /// read again are counted and reported, not kept.
    pub max_pending_bytes: usize,
    /// Most bytes of the whole record store; later records, even linked ones, are counted
    /// and reported, not kept.
    pub max_state_bytes: usize,
}

impl Default for AnalyzerLimits {
    fn default() -> Self {
        AnalyzerLimits {
            max_records: 20_000_000,
            max_link_values: 10_000,
            max_events: 100_000,
            max_citations: 20,
            max_problems: 10_000,
            merge_window_ms: 2_000,
            join_window_ms: 5_000,
            max_pending_bytes: 24 << 20,
            max_state_bytes: 64 << 20,
        }
    }
}

/// Most join-key values (call, request, decision and event ids) the line pre-filter searches
/// for; beyond it they join only records read anyway (a large incident has thousands, each
/// found in the lines that named the incident's trace or session already).
pub(crate) const MAX_JOIN_NEEDLES: usize = 64;
/// Most memory ids, and most source addresses, the pre-filter searches for.
const MAX_MEMORY_NEEDLES: usize = 64;
const MAX_ADDRESS_NEEDLES: usize = 16;

#[derive(Default)]
pub(crate) struct Interner {
    /// aHash, randomly keyed like std's SipHash (hostile evidence cannot pick colliding
    /// strings) but several times faster on the short ids every record interns.
    map: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
    /// Estimated allocation cost of the strings and their map entries.
    pub(crate) bytes: usize,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.map.get(s) {
            return *id;
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(NONE - 1);
        let a: Arc<str> = Arc::from(s);
        self.strings.push(Arc::clone(&a));
        self.map.insert(a, id);
        // The Arc's counts and the string, its slot in `strings` and its map entry.
        self.bytes = self.bytes.saturating_add(s.len() + 16 + 16 + 32);
        id
    }
    pub(crate) fn opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(NONE, |s| self.intern(s))
    }
    pub(crate) fn get(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }
    pub(crate) fn get_opt(&self, id: u32) -> Option<&str> {
        (id != NONE).then(|| self.get(id))
    }
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }
}

/// A time, compact.
#[derive(Clone, Copy)]
pub(crate) struct TimeC {
    /// Nanoseconds since the epoch, or [`TimeC::UNPARSED`] (then `text` holds it as written).
    nanos: i64,
    /// The text as written, interned only when not understood (a parsed time is rendered from
    /// `nanos`: interning every timestamp's text made it most of the analysis' strings).
    text: u32,
    pub(crate) zone: Zone,
}

impl TimeC {
    const UNPARSED: i64 = i64::MIN;

    pub(crate) fn nanos(&self) -> Option<i128> {
        (self.nanos != Self::UNPARSED).then_some(i128::from(self.nanos))
    }

    /// RFC 3339 in UTC when understood, else as written.
    pub(crate) fn text(&self, strings: &Interner) -> String {
        match self.nanos() {
            Some(n) => super::values::Time::from_nanos(n).map(|t| t.text).unwrap_or_default(),
            None => strings.get(self.text).to_string(),
        }
    }
}

/// A classified field, compact.
#[derive(Clone, Copy)]
pub(crate) struct Fld {
    pub(crate) role: Role,
    pub(crate) value: u32,
    pub(crate) canon: u32,
    pub(crate) path: u32,
    pub(crate) raw: u32,
}

/// An id-like value, compact.
#[derive(Clone, Copy)]
pub(crate) struct Tok {
    pub(crate) canon: u32,
}

/// Event evidence, compact.
pub(crate) struct EvC {
    pub(crate) kind: EventKind,
    pub(crate) side: Side,
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) principal: u32,
    pub(crate) actor: u32,
    pub(crate) subject: u32,
    pub(crate) target: u32,
    pub(crate) operation: u32,
    pub(crate) status: Option<OutcomeStatus>,
    pub(crate) code: u32,
    pub(crate) reason: u32,
    pub(crate) keys: (u32, u32),
    pub(crate) detail: (u32, u32),
    pub(crate) sub: bool,
    pub(crate) replayed: bool,
    pub(crate) attempt: Option<u32>,
    /// See [`super::item::Ev::own_span`].
    pub(crate) own_span: bool,
}

/// How a record belongs to the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Tier {
    /// Not (yet) the incident's.
    None,
    /// Holds a linked value.
    Linked,
    /// On the chain: holds the incident's deployment id or that deployment's change id.
    Chain,
    /// Holds a memory id the incident read or wrote.
    Joined,
    /// A proxy line without ids, from the agent's source address within the incident's time.
    TimeAndAddress,
}

/// A kept record, compact.
pub(crate) struct Rec {
    pub(crate) source: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) line: u64,
    pub(crate) item: u32,
    pub(crate) decompressed: bool,
    pub(crate) time: u32,
    pub(crate) span: u32,
    pub(crate) fields: (u32, u32),
    pub(crate) tokens: (u32, u32),
    pub(crate) evs: (u32, u32),
    pub(crate) tier: Tier,
    /// The linked value that brought it into the incident (canonical id), or [`NONE`].
    pub(crate) via: u32,
}

/// A registered source.
pub(crate) struct SourceInfo {
    pub(crate) path: Arc<str>,
    pub(crate) sha256: Arc<str>,
    pub(crate) size: u64,
    pub(crate) folder_kind: String,
    pub(crate) format: Format,
    pub(crate) format_origin: &'static str,
    pub(crate) compression: Option<&'static str>,
    pub(crate) bytes_scanned: u64,
    pub(crate) records: u64,
    pub(crate) lines: u64,
    pub(crate) problems: u64,
    pub(crate) not_analysed: Option<String>,
    /// Read through the line pre-filter and kept open: lines skipped or records dropped are
    /// found again by a re-read when a value they hold is linked later.
    pub(crate) rereadable: bool,
    /// Records of it not kept because nothing linked them yet.
    pub(crate) deferred: u64,
}

/// A problem, as kept.
pub(crate) struct ProblemAt {
    pub(crate) source: u32,
    pub(crate) offset: Option<u64>,
    pub(crate) len: Option<u64>,
    pub(crate) line: Option<u64>,
    pub(crate) decompressed: bool,
    pub(crate) problem: Problem,
}

/// Handle of a source registered with [`Analyzer::begin_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub(crate) u32);

/// A seed, as the analyzer keeps it.
pub(crate) struct SeedC {
    pub(crate) seed: Seed,
    pub(crate) canon: u32,
}

/// What the line pre-filter should look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needles {
    /// Each value (canonical) with the byte patterns of its written forms.
    pub values: std::collections::BTreeMap<String, Vec<Vec<u8>>>,
    /// Whether the join keys (call and request ids) are among them.
    pub join_keys: bool,
    /// The values among them that are only the chain's change ids: a line holding one is
    /// parsed but its record kept only if it is an infrastructure record, so a re-read must
    /// not skip such lines as "parsed already".
    pub chain: std::collections::BTreeSet<String>,
}

/// Whether values of a role pull records into the incident.
pub(crate) fn expanding(role: Role) -> bool {
    matches!(
        role,
        Role::Ident(IdentName::TraceId | IdentName::SessionId | IdentName::ApprovalId | IdentName::IdempotencyKey)
            | Role::Link(LinkKey::CallId | LinkKey::RequestId | LinkKey::DecisionId | LinkKey::EventId)
    )
}

/// Join keys: expanding, but searched for in large files only within a budget.
fn join_key(role: Role) -> bool {
    matches!(role, Role::Link(LinkKey::CallId | LinkKey::RequestId | LinkKey::DecisionId | LinkKey::EventId))
}

/// A value strong enough to follow: at least 4 characters, and not a small number (an
/// activity id `3` or a status `200` would join unrelated records).
pub(crate) fn strong(v: &str) -> bool {
    v.len() >= 4 && !(v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit()))
}

/// A deployment id too short to follow as a value (GitLab's and Jenkins' 3 to 5 digit
/// deployment and build numbers, `88231`) is still the deployment hop when a record names it
/// as a deployment id: it then reaches only records that hold it in a deployment-id field
/// (never a count, a status or a digit run inside another value), and is no line needle.
pub(crate) fn weak_deployment(role: Role, v: &str) -> bool {
    role == Role::Link(LinkKey::DeploymentId) && (3..=5).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
}

/// Collects records from many sources and computes the incident.
pub struct Analyzer {
    pub(crate) limits: AnalyzerLimits,
    pub(crate) seeds: Vec<SeedC>,
    pub(crate) strings: Interner,
    pub(crate) sources: Vec<SourceInfo>,
    pub(crate) records: Vec<Rec>,
    pub(crate) fields: Vec<Fld>,
    pub(crate) tokens: Vec<Tok>,
    pub(crate) evs: Vec<EvC>,
    pub(crate) ev_keys: Vec<(Role, u32)>,
    pub(crate) ev_detail: Vec<(&'static str, u32)>,
    pub(crate) times: Vec<TimeC>,
    pub(crate) problems: Vec<ProblemAt>,
    pub(crate) problems_omitted: u64,
    pub(crate) records_seen: u64,
    pub(crate) records_dropped: u64,
    /// Records of re-readable files not kept because nothing linked them yet (a re-read
    /// finds them if a value they hold is linked later).
    pub(crate) records_deferred: u64,
    /// Estimated allocation cost of the records kept (without the interned strings).
    kept_bytes: usize,
    pending_limit_reported: bool,
    pub(crate) lines_seen: u64,
    state_limit_reported: bool,
    /// Linked values (canonical ids) and their role (the first it was linked as).
    pub(crate) linked: HashMap<u32, Role>,
    /// Raw forms of linked values, for the pre-filter (a few per value).
    raw_forms: HashMap<u32, Vec<u32>>,
    /// Records not in the incident yet, by each value they hold.
    pub(crate) postings: HashMap<u32, Vec<u32>>,
    per_role: HashMap<Role, usize>,
    limit_hit: HashSet<Role>,
    /// Hop values of incident records (deployment and change ids, memory ids, source
    /// addresses), for the pre-filter and the final tiers.
    pub(crate) hops: HashMap<u32, Role>,
    /// Changes whenever the needles may have.
    generation: u64,
    pub(crate) rereads: u64,
}

impl Analyzer {
    /// The analysis state's size by part, in bytes (for `CUSTODY_TIMINGS`).
    pub fn memory_report(&self) -> String {
        use std::mem::size_of;
        let v = |cap: usize, sz: usize| cap.saturating_mul(sz);
        let strings: usize = self.strings.strings.iter().map(|s| s.len() + 16).sum::<usize>()
            + self.strings.map.capacity() * (size_of::<(Arc<str>, u32)>() + 1);
        let postings: usize = self.postings.values().map(|l| l.capacity() * 4).sum::<usize>()
            + self.postings.capacity() * (size_of::<(u32, Vec<u32>)>() + 1);
        format!(
            "records {} ({} KiB), fields {} ({} KiB), tokens {} ({} KiB), evs {} ({} KiB), ev_keys {} KiB, ev_detail {} KiB, times {} KiB, strings {} ({} KiB), postings {} ({} KiB), linked {}, hops {}",
            self.records.len(),
            v(self.records.capacity(), size_of::<Rec>()) >> 10,
            self.fields.len(),
            v(self.fields.capacity(), size_of::<Fld>()) >> 10,
            self.tokens.len(),
            v(self.tokens.capacity(), size_of::<Tok>()) >> 10,
            self.evs.len(),
            v(self.evs.capacity(), size_of::<EvC>()) >> 10,
            v(self.ev_keys.capacity(), size_of::<(Role, u32)>()) >> 10,
            v(self.ev_detail.capacity(), size_of::<(&str, u32)>()) >> 10,
            v(self.times.capacity(), size_of::<TimeC>()) >> 10,
            self.strings.strings.len(),
            strings >> 10,
            self.postings.len(),
            postings >> 10,
            self.linked.len(),
            self.hops.len()
        )
    }

    /// Starts an analysis from its seeds (normalised already: see
    /// [`super::normalize_seed`]).
    pub fn new(seeds: Vec<Seed>, limits: AnalyzerLimits) -> Self {
        let mut a = Analyzer {
            limits,
            seeds: Vec::new(),
            strings: Interner::default(),
            sources: Vec::new(),
            records: Vec::new(),
            fields: Vec::new(),
            tokens: Vec::new(),
            evs: Vec::new(),
            ev_keys: Vec::new(),
            ev_detail: Vec::new(),
            times: Vec::new(),
            problems: Vec::new(),
            problems_omitted: 0,
            records_seen: 0,
            records_dropped: 0,
            records_deferred: 0,
            kept_bytes: 0,
            pending_limit_reported: false,
            lines_seen: 0,
            state_limit_reported: false,
            linked: HashMap::default(),
            raw_forms: HashMap::default(),
            postings: HashMap::default(),
            per_role: HashMap::default(),
            limit_hit: HashSet::new(),
            hops: HashMap::default(),
            generation: 0,
            rereads: 0,
        };
        for seed in seeds {
            let c = a.strings.intern(&canon(&seed.value));
            let role = seed.ident.map_or(Role::Subject, Role::Ident);
            a.linked.entry(c).or_insert(role);
            if let Some(g) = &seed.given {
                let r = a.strings.intern(g);
                a.raw_forms.entry(c).or_default().push(r);
            }
            a.seeds.push(SeedC { seed, canon: c });
        }
        a
    }

    /// Whether there is a seed to search from.
    pub fn has_seeds(&self) -> bool {
        !self.seeds.is_empty()
    }

    /// Changes whenever [`Analyzer::needles`] may have changed.
    pub fn link_generation(&self) -> u64 {
        self.generation
    }

    /// Counts `lines` read from `source` (parsed or only checked).
    pub fn add_lines(&mut self, source: SourceId, lines: u64) {
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.lines = s.lines.saturating_add(lines);
        }
        self.lines_seen = self.lines_seen.saturating_add(lines);
    }

    /// Records how a source was read.
    pub fn scanned(&mut self, source: SourceId, bytes: u64, compression: Option<&'static str>) {
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.bytes_scanned = bytes;
            s.compression = compression;
        }
    }

    /// Marks a source as not analysed, and why.
    pub fn not_analysed(&mut self, source: SourceId, why: String) {
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.not_analysed = Some(why);
        }
    }

    /// Registers a source; its records are then pushed with [`Analyzer::push`].
    pub fn begin_source(
        &mut self,
        path: &str,
        sha256: &str,
        size: u64,
        folder_kind: &str,
        format: Format,
        format_origin: &'static str,
    ) -> SourceId {
        let id = u32::try_from(self.sources.len()).unwrap_or(NONE - 1);
        self.sources.push(SourceInfo {
            path: Arc::from(path),
            sha256: Arc::from(sha256),
            size,
            folder_kind: folder_kind.to_string(),
            format,
            format_origin,
            compression: None,
            bytes_scanned: 0,
            records: 0,
            lines: 0,
            problems: 0,
            not_analysed: None,
            rereadable: false,
            deferred: 0,
        });
        SourceId(id)
    }

    /// Marks a source as read through the line pre-filter and kept for re-reading: its
    /// records that nothing links yet are not kept (a re-read finds them when a value they
    /// hold is linked).
    pub fn set_rereadable(&mut self, source: SourceId, rereadable: bool) {
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.rereadable = rereadable;
        }
    }

    /// Records of a source not kept because nothing linked them yet (see
    /// [`Analyzer::set_rereadable`]).
    pub fn deferred(&self, source: SourceId) -> u64 {
        self.sources.get(source.0 as usize).map_or(0, |s| s.deferred)
    }

    /// Reports a problem not tied to a record (a read error).
    pub fn add_problem(&mut self, source: SourceId, problem: Problem) {
        self.note_problem(source.0, None, None, None, false, problem);
    }

    /// [`Self::note_problem`] at a record's place: its offset, length, line, and whether
    /// they are positions in decompressed bytes.
    fn note_record_problem(&mut self, source: u32, at: (u64, u64, Option<u64>, bool), p: Problem) {
        self.note_problem(source, Some(at.0), Some(at.1), at.2, at.3, p);
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
            s.problems = s.problems.saturating_add(1);
        }
        if self.problems.len() >= self.limits.max_problems {
            self.problems_omitted = self.problems_omitted.saturating_add(1);
            return;
        }
        self.problems.push(ProblemAt { source, offset, len, line, decompressed, problem });
    }

    fn time(&mut self, t: Option<&Time>) -> u32 {
        let Some(t) = t else { return NONE };
        let id = u32::try_from(self.times.len()).unwrap_or(NONE);
        if id == NONE {
            return NONE;
        }
        // Times beyond i64 nanoseconds (before 1678, after 2262) are kept as written.
        let nanos = t.nanos.and_then(|n| i64::try_from(n).ok()).filter(|n| *n != TimeC::UNPARSED);
        let c = match nanos {
            Some(n) => TimeC { nanos: n, text: NONE, zone: t.zone },
            None => TimeC {
                nanos: TimeC::UNPARSED,
                text: self.strings.intern(&t.text),
                zone: if t.nanos.is_some() { Zone::Unparsed } else { t.zone },
            },
        };
        self.times.push(c);
        id
    }

    /// Feeds one record of `source`.
    pub fn push(&mut self, source: SourceId, record: Record) {
        let at = (record.offset, record.len, record.line, record.decompressed);
        self.records_seen = self.records_seen.saturating_add(1);
        if let Some(s) = self.sources.get_mut(source.0 as usize) {
            s.records = s.records.saturating_add(1);
        }
        if let Some(p) = record.problem {
            self.note_record_problem(source.0, at, p);
            return;
        }
        let Item { time, fields, tokens, evidence, span_id, truncated } = record.data;
        if truncated {
            self.note_record_problem(source.0, at, Problem::RecordTruncated);
        }
        if fields.is_empty() && tokens.is_empty() && evidence.is_empty() {
            return;
        }
        let canons: Vec<String> = fields.iter().map(|f| canon(&f.value)).collect();
        let state = self.kept_bytes.saturating_add(self.strings.bytes);
        let rereadable = self.sources.get(source.0 as usize).is_some_and(|s| s.rereadable);
        if rereadable || state >= self.limits.max_pending_bytes {
            let held = |c: &str| self.strings.lookup(c);
            let linked = canons
                .iter()
                .map(String::as_str)
                .chain(tokens.iter().map(String::as_str))
                .filter_map(held)
                .any(|c| self.linked.contains_key(&c));
            if !linked {
                // Kept only when the final tiers need it: it holds a hop value (a deployment,
                // a memory id, a source address…), or it is an infrastructure record naming a
                // change, a deployment or an owner (a chain record).
                // Change ids are hops only for infrastructure records (see `chainish`).
                let hop = canons
                    .iter()
                    .map(String::as_str)
                    .chain(tokens.iter().map(String::as_str))
                    .filter_map(held)
                    .any(|c| self.hops.get(&c).is_some_and(|r| *r != Role::Ident(IdentName::ChangeId)));
                let kind = self.sources.get(source.0 as usize).and_then(|s| s.format.kind()).unwrap_or("");
                let infra = matches!(kind, "deploy" | "cluster" | "cloud")
                    || fields.iter().all(|f| !matches!(f.role, Role::Ident(IdentName::SessionId | IdentName::TraceId)));
                let chainish = infra
                    && fields.iter().any(|f| {
                        matches!(
                            f.role,
                            Role::Ident(IdentName::ChangeId)
                                | Role::Link(
                                    LinkKey::DeploymentId | LinkKey::Owner | LinkKey::Workload | LinkKey::ReleaseTarget
                                )
                        )
                    });
                // A re-readable file's hop and chain records are kept whatever the pending
                // budget: a re-read skips lines holding hop values as parsed already.
                let keep = (hop || chainish) && (rereadable || state < self.limits.max_pending_bytes);
                if !keep {
                    if rereadable {
                        self.records_deferred = self.records_deferred.saturating_add(1);
                        if let Some(s) = self.sources.get_mut(source.0 as usize) {
                            s.deferred = s.deferred.saturating_add(1);
                        }
                    } else {
                        self.records_dropped = self.records_dropped.saturating_add(1);
                        if !self.pending_limit_reported {
                            self.pending_limit_reported = true;
                            let limit = self.limits.max_pending_bytes as u64;
                            self.note_record_problem(source.0, at, Problem::PendingLimit { limit });
                        }
                    }
                    return;
                }
            }
        }
        if self.records.len() >= self.limits.max_records || state >= self.limits.max_state_bytes {
            self.records_dropped = self.records_dropped.saturating_add(1);
            if !self.state_limit_reported {
                self.state_limit_reported = true;
                let limit = if state >= self.limits.max_state_bytes {
                    self.limits.max_state_bytes as u64
                } else {
                    self.limits.max_records as u64
                };
                self.note_record_problem(source.0, at, Problem::StateLimit { limit });
            }
            return;
        }
        let rid = u32::try_from(self.records.len()).unwrap_or(NONE);
        // The record's allocation cost (its parts and a posting per value), for the budgets.
        let cost = std::mem::size_of::<Rec>()
            + fields.len() * (std::mem::size_of::<Fld>() + 8)
            + tokens.len() * (std::mem::size_of::<Tok>() + 8)
            + std::mem::size_of::<TimeC>()
            + evidence
                .iter()
                .map(|e| {
                    std::mem::size_of::<EvC>()
                        + 2 * std::mem::size_of::<TimeC>()
                        + e.keys.len() * std::mem::size_of::<(Role, u32)>()
                        + e.detail.len() * std::mem::size_of::<(&str, u32)>()
                })
                .sum::<usize>();
        self.kept_bytes = self.kept_bytes.saturating_add(cost);
        let f0 = self.fields.len() as u32;
        for (f, c) in fields.iter().zip(canons) {
            let value = self.strings.intern(&f.value);
            let canon_id = if c == f.value { value } else { self.strings.intern(&c) };
            let path = self.strings.intern(&f.path);
            let raw = self.strings.opt(f.raw.as_deref());
            self.fields.push(Fld { role: f.role, value, canon: canon_id, path, raw });
        }
        let f1 = self.fields.len() as u32;
        let t0 = self.tokens.len() as u32;
        for c in &tokens {
            let canon_id = self.strings.intern(c);
            self.tokens.push(Tok { canon: canon_id });
        }
        let t1 = self.tokens.len() as u32;
        let e0 = self.evs.len() as u32;
        for ev in &evidence {
            self.push_ev(ev);
        }
        let e1 = self.evs.len() as u32;
        let time = self.time(time.as_ref());
        let span = self.strings.opt(span_id.as_deref());
        self.records.push(Rec {
            source: source.0,
            offset: record.offset,
            len: record.len,
            line: record.line.unwrap_or(NO_LINE),
            item: record.item,
            decompressed: record.decompressed,
            time,
            span,
            fields: (f0, f1),
            tokens: (t0, t1),
            evs: (e0, e1),
            tier: Tier::None,
            via: NONE,
        });
        let hit = self.values_of(rid).find(|c| self.linked.contains_key(c));
        if let Some(c) = hit {
            if let Some(r) = self.records.get_mut(rid as usize) {
                r.via = c;
            }
            self.admit(rid);
        } else {
            let vals: Vec<u32> = self.values_of(rid).collect();
            for c in vals {
                let list = self.postings.entry(c).or_default();
                if list.last() != Some(&rid) {
                    list.push(rid);
                }
            }
        }
    }

    fn push_ev(&mut self, ev: &Ev) {
        let start = self.time(ev.start.as_ref());
        let end = self.time(ev.end.as_ref());
        let k0 = self.ev_keys.len() as u32;
        for (r, v) in &ev.keys {
            let id = self.strings.intern(v);
            self.ev_keys.push((*r, id));
        }
        let k1 = self.ev_keys.len() as u32;
        let d0 = self.ev_detail.len() as u32;
        for (k, v) in &ev.detail {
            let id = self.strings.intern(v);
            self.ev_detail.push((k, id));
        }
        let d1 = self.ev_detail.len() as u32;
        let s = &mut self.strings;
        let e = EvC {
            kind: ev.kind,
            side: ev.side,
            start,
            end,
            principal: s.opt(ev.principal.as_deref()),
            actor: s.opt(ev.actor.as_deref()),
            subject: s.opt(ev.subject.as_deref()),
            target: s.opt(ev.target.as_deref()),
            operation: s.opt(ev.operation.as_deref()),
            status: ev.outcome.status,
            code: s.opt(ev.outcome.code.as_deref()),
            reason: s.opt(ev.outcome.reason.as_deref()),
            keys: (k0, k1),
            detail: (d0, d1),
            sub: ev.sub,
            replayed: ev.outcome.replayed,
            attempt: ev.attempt,
            own_span: ev.own_span,
        };
        self.evs.push(e);
    }

    /// Every value a record holds (fields and tokens), canonical.
    pub(crate) fn values_of(&self, rid: u32) -> impl Iterator<Item = u32> + '_ {
        let r = self.records.get(rid as usize);
        let f = r.map_or(0..0, |r| r.fields.0 as usize..r.fields.1 as usize);
        let t = r.map_or(0..0, |r| r.tokens.0 as usize..r.tokens.1 as usize);
        self.fields
            .get(f)
            .unwrap_or_default()
            .iter()
            .map(|f| f.canon)
            .chain(self.tokens.get(t).unwrap_or_default().iter().map(|t| t.canon))
    }

    pub(crate) fn fields_of(&self, rid: u32) -> &[Fld] {
        self.records
            .get(rid as usize)
            .and_then(|r| self.fields.get(r.fields.0 as usize..r.fields.1 as usize))
            .unwrap_or_default()
    }

    pub(crate) fn evs_of(&self, rid: u32) -> std::ops::Range<u32> {
        self.records.get(rid as usize).map_or(0..0, |r| r.evs.0..r.evs.1)
    }

    /// Puts a record (and, through the values it links, every record waiting on them) into
    /// the incident.
    fn admit(&mut self, first: u32) {
        let mut queue = vec![first];
        while let Some(rid) = queue.pop() {
            match self.records.get_mut(rid as usize) {
                Some(r) if r.tier == Tier::None => r.tier = Tier::Linked,
                _ => continue,
            }
            let mut new_values: Vec<(u32, Role, u32)> = Vec::new();
            let mut new_hops: Vec<(u32, Role)> = Vec::new();
            for f in self.fields_of(rid) {
                if expanding(f.role) && !self.linked.contains_key(&f.canon) && strong(self.strings.get(f.canon)) {
                    new_values.push((f.canon, f.role, f.raw));
                }
                if matches!(
                    f.role,
                    Role::Link(LinkKey::DeploymentId | LinkKey::MemoryId | LinkKey::Workload | LinkKey::ReleaseTarget)
                        | Role::Ident(IdentName::ChangeId)
                ) && (strong(self.strings.get(f.canon)) || weak_deployment(f.role, self.strings.get(f.canon)))
                    && !self.hops.contains_key(&f.canon)
                {
                    new_hops.push((f.canon, f.role));
                }
            }
            for (c, role) in new_hops {
                if self.hops.insert(c, role).is_none() {
                    self.generation += 1;
                }
            }
            // Source addresses the incident's requests came from (seen by a proxy, a server
            // or the cluster), and the memory ids its memory operations name.
            for e in self.evs_of(rid) {
                let Some(ev) = self.evs.get(e as usize) else { continue };
                let (d0, d1) = ev.detail;
                for (k, v) in self.ev_detail.get(d0 as usize..d1 as usize).unwrap_or_default().to_vec() {
                    if k == "source_address" {
                        let c = self.strings.intern(&canon(self.strings.get(v)));
                        if let std::collections::hash_map::Entry::Vacant(e) = self.hops.entry(c) {
                            e.insert(Role::Link(LinkKey::SourceAddress));
                            self.generation += 1;
                        }
                    }
                }
                let (k0, k1) = ev.keys;
                for (role, v) in self.ev_keys.get(k0 as usize..k1 as usize).unwrap_or_default().to_vec() {
                    if role == Role::Link(LinkKey::MemoryId) {
                        let c = self.strings.intern(&canon(self.strings.get(v)));
                        self.hops.entry(c).or_insert(role);
                    }
                }
            }
            for (c, role, raw) in new_values {
                if self.linked.contains_key(&c) {
                    continue;
                }
                let n = self.per_role.entry(role).or_default();
                if *n >= self.limits.max_link_values {
                    if self.limit_hit.insert(role) {
                        let ident = match role {
                            Role::Ident(i) => i.as_str().to_string(),
                            Role::Link(l) => l.as_str().to_string(),
                            _ => "value".into(),
                        };
                        let limit = self.limits.max_link_values as u64;
                        self.note_problem(NONE, None, None, None, false, Problem::ExpansionLimit { ident, limit });
                    }
                    continue;
                }
                *n += 1;
                self.linked.insert(c, role);
                if raw != NONE {
                    self.raw_forms.entry(c).or_default().push(raw);
                }
                self.generation += 1;
                if let Some(waiting) = self.postings.remove(&c) {
                    for w in &waiting {
                        if let Some(r) = self.records.get_mut(*w as usize) {
                            if r.tier == Tier::None && r.via == NONE {
                                r.via = c;
                            }
                        }
                    }
                    queue.extend(waiting);
                }
            }
        }
    }

    /// Adds a seed after the records are in (an inferred seed): the records holding it, and
    /// everything they link, join the incident.
    pub fn infer_seed(&mut self, seed: Seed) {
        let c = self.strings.intern(&canon(&seed.value));
        let role = seed.ident.map_or(Role::Subject, Role::Ident);
        self.seeds.push(SeedC { seed, canon: c });
        if self.linked.contains_key(&c) {
            return;
        }
        self.linked.insert(c, role);
        self.generation += 1;
        for rid in self.postings.remove(&c).unwrap_or_default() {
            if let Some(r) = self.records.get_mut(rid as usize) {
                if r.via == NONE {
                    r.via = c;
                }
            }
            self.admit(rid);
        }
    }

    /// Hop values reachable from the incident's: the change ids of records holding the
    /// incident's deployment ids (the deployment's own record names the change it rolled out).
    pub(crate) fn chain_values(&self) -> Vec<(u32, Role)> {
        let mut out: Vec<(u32, Role)> = Vec::new();
        for (&c, &role) in &self.hops {
            if role != Role::Link(LinkKey::DeploymentId) {
                continue;
            }
            let weak = weak_deployment(role, self.strings.get(c));
            for &rid in self.postings.get(&c).map(Vec::as_slice).unwrap_or_default() {
                // A short numeric id counts only where a record names it as a deployment id.
                if weak && !self.fields_of(rid).iter().any(|f| f.canon == c && f.role == role) {
                    continue;
                }
                for f in self.fields_of(rid) {
                    if f.role == Role::Ident(IdentName::ChangeId)
                        && !self.hops.contains_key(&f.canon)
                        && !out.iter().any(|(x, _)| *x == f.canon)
                    {
                        out.push((f.canon, f.role));
                    }
                }
            }
        }
        out
    }

    /// What the line pre-filter should look for: the linked values and the hop values, in
    /// every written form. `None` when there are more than `max` values (then every line is
    /// parsed).
    pub fn needles(&self, max: usize) -> Option<Needles> {
        let joins = self.linked.values().filter(|r| join_key(**r)).count();
        let join_keys = joins <= MAX_JOIN_NEEDLES;
        let count = |role: Role| self.hops.values().filter(|r| **r == role).count();
        let memory = count(Role::Link(LinkKey::MemoryId)) <= MAX_MEMORY_NEEDLES;
        let addresses = count(Role::Link(LinkKey::SourceAddress)) <= MAX_ADDRESS_NEEDLES;
        let mut values = std::collections::BTreeMap::new();
        let chain = self.chain_values();
        let chain_set: std::collections::BTreeSet<String> = chain
            .iter()
            .map(|(c, _)| *c)
            .chain(self.hops.iter().filter(|(_, r)| **r == Role::Ident(IdentName::ChangeId)).map(|(c, _)| *c))
            .map(|c| self.strings.get(c).to_string())
            .collect();
        let all = self.linked.iter().map(|(c, r)| (*c, *r)).chain(self.hops.iter().map(|(c, r)| (*c, *r))).chain(chain);
        for (c, role) in all {
            if weak_deployment(role, self.strings.get(c)) {
                continue;
            }
            if join_key(role) && !join_keys
                || role == Role::Link(LinkKey::MemoryId) && !memory
                || role == Role::Link(LinkKey::SourceAddress) && !addresses
            {
                continue;
            }
            let v = self.strings.get(c);
            // A release/target pair (`<release>/<target>`) is never written as such: a rollout's
            // line names the release (in its `name`) and the target apart. The release finds it.
            let v = match role {
                Role::Link(LinkKey::ReleaseTarget) => v.rsplit_once('/').map_or(v, |(release, _)| release),
                _ => v,
            };
            if v.is_empty() || values.contains_key(v) {
                continue;
            }
            if values.len() >= max {
                return None;
            }
            let raws: Vec<&str> = match role {
                Role::Link(LinkKey::ReleaseTarget) => Vec::new(),
                _ => self.raw_forms.get(&c).into_iter().flatten().take(3).map(|r| self.strings.get(*r)).collect(),
            };
            values.insert(v.to_string(), needle_forms(v, &raws));
        }
        let chain = chain_set.into_iter().filter(|v| values.contains_key(v)).collect();
        Some(Needles { values, join_keys, chain })
    }

    /// Whether a value (any written form) is held by any record kept.
    pub fn seen_anywhere(&self, value: &str) -> bool {
        let Some(c) = self.strings.lookup(&canon(value)) else { return false };
        self.linked.contains_key(&c) && self.records.iter().any(|r| r.tier == Tier::Linked)
            || self.postings.contains_key(&c)
    }

    /// Writes every kept record (tier, the value that linked it, fields) as JSON Lines: for
    /// debugging the analysis (`CUSTODY_DEBUG_RECORDS=FILE`).
    pub(crate) fn debug_dump(&self, path: &std::path::Path) {
        use std::io::Write as _;
        let Ok(f) = std::fs::File::create(path) else { return };
        let mut w = std::io::BufWriter::new(f);
        for (rid, r) in self.records.iter().enumerate() {
            let src = self.sources.get(r.source as usize).map_or("", |s| &s.path);
            let fields: Vec<String> = self
                .fields_of(rid as u32)
                .iter()
                .map(|f| format!("{:?}={}@{}", f.role, self.strings.get(f.value), self.strings.get(f.path)))
                .collect();
            let evs: Vec<String> = self
                .evs_of(rid as u32)
                .filter_map(|e| self.evs.get(e as usize))
                .map(|e| format!("{:?}:{}", e.kind, self.strings.get_opt(e.target).unwrap_or("-")))
                .collect();
            let line = serde_json::json!({
                "rid": rid, "src": src, "line": (r.line != NO_LINE).then_some(r.line), "item": r.item,
                "tier": format!("{:?}", r.tier), "via": self.strings.get_opt(r.via), "fields": fields, "evs": evs,
            });
            let _ = writeln!(w, "{line}");
        }
    }

    /// A kept time.
    pub(crate) fn time_of(&self, id: u32) -> Option<&TimeC> {
        (id != NONE).then(|| self.times.get(id as usize)).flatten()
    }

    /// How many records hold each seed (0: a loud warning).
    pub(crate) fn seed_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.seeds.len()];
        for (rid, r) in self.records.iter().enumerate() {
            if r.tier != Tier::Linked {
                continue;
            }
            let vals: HashSet<u32> = self.values_of(rid as u32).collect();
            for (i, s) in self.seeds.iter().enumerate() {
                if vals.contains(&s.canon) {
                    if let Some(n) = counts.get_mut(i) {
                        *n += 1;
                    }
                }
            }
        }
        counts
    }

    /// The seed origins, for the report.
    pub(crate) fn seed_list(&self) -> Vec<Seed> {
        let counts = self.seed_counts();
        self.seeds.iter().zip(counts).map(|(s, n)| Seed { records: n, ..s.seed.clone() }).collect()
    }

    /// Whether a seed was inferred.
    pub(crate) fn inferred(&self) -> bool {
        self.seeds.iter().any(|s| s.seed.origin == SeedOrigin::Inferred)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::analyze::item::{Field, Item};

    fn rec(offset: u64, fields: &[(Role, &str)]) -> Record {
        let mut r = Record::new(offset, 1, Some(offset + 1), false);
        r.data = Item {
            fields: fields
                .iter()
                .map(|(role, v)| Field { role: *role, value: v.to_string(), raw: None, path: "f".into() })
                .collect(),
            tokens: fields.iter().map(|(_, v)| canon(v)).collect(),
            ..Item::default()
        };
        r
    }

    fn seed(v: &str) -> Seed {
        Seed {
            ident: Some(IdentName::TraceId),
            value: v.into(),
            given: None,
            normalised: None,
            origin: SeedOrigin::Flag,
            records: 0,
        }
    }

    /// Linking is online and order-independent: a record pushed before the value that links
    /// it is pulled in when that value is linked; other sessions stay out.
    #[test]
    fn records_join_when_a_value_they_hold_is_linked_whatever_the_order() {
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        let s = Role::Ident(IdentName::SessionId);
        let a = Role::Ident(IdentName::ApprovalId);
        let mut an = Analyzer::new(vec![seed(t)], AnalyzerLimits::default());
        let src =
            an.begin_source("a.jsonl", "sha", 0, "logs", Format::named("jsonl").expect("jsonl format"), "detected");
        an.push(src, rec(0, &[(s, "sess-other"), (a, "apr-x")]));
        an.push(src, rec(1, &[(a, "apr-0001"), (s, "sess-2222")]));
        let g = an.link_generation();
        an.push(src, rec(2, &[(Role::Ident(IdentName::TraceId), t), (s, "sess-1111")]));
        assert_ne!(an.link_generation(), g);
        an.push(src, rec(3, &[(s, "sess-1111"), (a, "apr-0001")]));
        let tiers: Vec<Tier> = an.records.iter().map(|r| r.tier).collect();
        assert_eq!(tiers, vec![Tier::None, Tier::Linked, Tier::Linked, Tier::Linked]);
        let n = an.needles(100).expect("few values");
        assert!(n.values.contains_key("sess-2222") && !n.values.contains_key("sess-other"), "{:?}", n.values.keys());
    }
}
