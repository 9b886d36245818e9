//! Records → events. Every piece of event evidence of the incident's records is merged with
//! the others that describe the same action (see `docs/collector.md`, "Merge rules"):
//!
//! 1. **by id**: the same tool call id, span id (a span and its log records), request id (a
//!    proxy line and the server's span of that request), decision id, audit/event id
//!    (Kubernetes stages, CloudTrail), deployment run id, or, for approvals, the same approval
//!    (approval id or call id) with the same decision;
//! 2. **by time window**: evidence with no shared id, of the same kind and target, from
//!    different files, with compatible principals, whose times are within the merge window
//!    (default 2 s; intervals that overlap count) — at most one record per file per event,
//!    so two attempts logged in one file are never merged.
//!
//! Two pieces of evidence with different call ids, request ids or event ids are never merged.
//! The idempotency key groups attempts into logical actions; it never merges two attempts.
//! Then the outcome of each event is resolved (a server's record beats a proxy's, which beats
//! the client's: a client timeout whose request the server recorded as 201 took effect), and
//! events are related: an egress request to the tool call that made it (by parent span id or
//! call id), approvals and decisions to the call (by call id, approval id).

use super::engine::{Analyzer, Tier, NONE};
use super::item::Side;
use super::semantics::{LinkKey, Role};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, MergeRule, OutcomeStatus, Tie};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The maps of this module are keyed by interned ids and short keys: aHash (randomly keyed,
/// like std's SipHash) hashes them several times faster.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

/// An outcome, compact: the status, why, and the status codes as written (interned).
pub(crate) type OutcomeC = (OutcomeStatus, Option<String>, Vec<u32>);

/// An event, compact (rendered into [`crate::collect::analysis::Event`] when written).
pub(crate) struct EventC {
    pub(crate) kind: EventKind,
    /// Evidence (indices into the analyzer's evidence arena).
    pub(crate) evs: Vec<u32>,
    /// Records, sorted and unique.
    pub(crate) recs: Vec<u32>,
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) principal: u32,
    pub(crate) actor: u32,
    pub(crate) subject: u32,
    pub(crate) target: u32,
    pub(crate) operation: u32,
    pub(crate) outcome: Option<OutcomeC>,
    /// Succeeded by replaying an earlier result: no new effect.
    pub(crate) replayed: bool,
    pub(crate) rules: Box<[MergeRule]>,
    pub(crate) tie: Tie,
    pub(crate) related: Vec<(u32, &'static str)>,
    pub(crate) ids: KeyVals,
    pub(crate) detail: KeyVals,
    pub(crate) write: bool,
}

impl EventC {
    pub(crate) fn id_values(&self, key: &str) -> &[u32] {
        self.ids.get(key)
    }
    pub(crate) fn detail_values(&self, key: &str) -> &[u32] {
        self.detail.get(key)
    }
}

/// Values per key, flat: two allocations per event where a map of vectors made one per key
/// (an incident of 35 000 events held 40 MB of maps).
#[derive(Default)]
pub(crate) struct KeyVals {
    /// Key and its values' range in `vals`, sorted by key.
    keys: Box<[(&'static str, u32, u32)]>,
    vals: Box<[u32]>,
}

impl KeyVals {
    fn from_map(m: BTreeMap<&'static str, Vec<u32>>) -> KeyVals {
        let mut keys = Vec::with_capacity(m.len());
        let mut vals = Vec::with_capacity(m.values().map(Vec::len).sum());
        for (k, v) in m {
            let start = vals.len() as u32;
            vals.extend(v);
            keys.push((k, start, vals.len() as u32));
        }
        KeyVals { keys: keys.into_boxed_slice(), vals: vals.into_boxed_slice() }
    }

    /// The same values with `vals` added under `key` (those not there already).
    fn with(&self, key: &'static str, vals: &[u32]) -> KeyVals {
        let mut m: BTreeMap<&'static str, Vec<u32>> = self.iter().map(|(k, v)| (k, v.to_vec())).collect();
        let list = m.entry(key).or_default();
        for v in vals {
            if !list.contains(v) {
                list.push(*v);
            }
        }
        KeyVals::from_map(m)
    }

    pub(crate) fn get(&self, key: &str) -> &[u32] {
        match self.keys.binary_search_by(|(k, _, _)| (*k).cmp(key)) {
            Ok(i) => {
                let (_, a, b) = self.keys[i];
                self.vals.get(a as usize..b as usize).unwrap_or_default()
            }
            Err(_) => &[],
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &[u32])> + '_ {
        self.keys.iter().map(|(k, a, b)| (*k, self.vals.get(*a as usize..*b as usize).unwrap_or_default()))
    }
}

/// Union-find over evidence, with the keys each component holds.
struct Merge {
    parent: Vec<u32>,
    /// Singular keys per component root: (role, value).
    keys: HashMap<u32, Vec<(Role, u32)>>,
    /// Sources per component root (for the one-record-per-file rule of time merges).
    sources: HashMap<u32, Vec<u32>>,
    rules: HashMap<u32, BTreeSet<MergeRule>>,
    /// Span ids of the runs (of run-based trace exports) per component root: a component
    /// holding one run never takes in another run of the same call id.
    runs: HashMap<u32, Vec<u32>>,
}

/// Roles of which an event has at most one value: two different ones are two events.
fn singular(role: Role) -> bool {
    matches!(role, Role::Link(LinkKey::CallId | LinkKey::RequestId | LinkKey::EventId | LinkKey::DecisionId))
}

impl Merge {
    fn find(&mut self, x: u32) -> u32 {
        let mut r = x;
        while let Some(&p) = self.parent.get(r as usize) {
            if p == r {
                break;
            }
            r = p;
        }
        // Path compression.
        let mut y = x;
        while let Some(&p) = self.parent.get(y as usize) {
            if p == r {
                break;
            }
            if let Some(slot) = self.parent.get_mut(y as usize) {
                *slot = r;
            }
            y = p;
        }
        r
    }

    fn compatible(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        let ka = self.keys.get(&ra).map(Vec::as_slice).unwrap_or_default();
        let kb = self.keys.get(&rb).map(Vec::as_slice).unwrap_or_default();
        // For each role both hold, they must share a value (a record may name two request
        // ids of one request: the gateway's and the function's).
        let roles: BTreeSet<Role> = ka.iter().map(|(r, _)| *r).collect();
        roles.into_iter().all(|role| {
            let va: Vec<u32> = ka.iter().filter(|(r, _)| *r == role).map(|(_, v)| *v).collect();
            let vb: Vec<u32> = kb.iter().filter(|(r, _)| *r == role).map(|(_, v)| *v).collect();
            vb.is_empty() || va.iter().any(|v| vb.contains(v))
        })
    }

    fn union(&mut self, a: u32, b: u32, rule: MergeRule) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            self.rules.entry(ra).or_default().insert(rule);
            return true;
        }
        if !self.compatible(a, b) {
            return false;
        }
        if let Some(p) = self.parent.get_mut(rb as usize) {
            *p = ra;
        }
        let kb = self.keys.remove(&rb).unwrap_or_default();
        let ka = self.keys.entry(ra).or_default();
        for k in kb {
            if !ka.contains(&k) {
                ka.push(k);
            }
        }
        let sb = self.sources.remove(&rb).unwrap_or_default();
        self.sources.entry(ra).or_default().extend(sb);
        let rb_runs = self.runs.remove(&rb).unwrap_or_default();
        let ra_runs = self.runs.entry(ra).or_default();
        for r in rb_runs {
            if !ra_runs.contains(&r) {
                ra_runs.push(r);
            }
        }
        let rl = self.rules.remove(&rb).unwrap_or_default();
        let e = self.rules.entry(ra).or_default();
        e.extend(rl);
        e.insert(rule);
        true
    }
}

/// Which key roles merge evidence of a kind, and under which rule.
fn merge_keys(kind: EventKind) -> &'static [(Role, MergeRule)] {
    use EventKind as K;
    const CALL: (Role, MergeRule) = (Role::Link(LinkKey::CallId), MergeRule::CallId);
    const SPAN: (Role, MergeRule) = (Role::Link(LinkKey::SpanId), MergeRule::SpanId);
    const REQ: (Role, MergeRule) = (Role::Link(LinkKey::RequestId), MergeRule::RequestId);
    const EVT: (Role, MergeRule) = (Role::Link(LinkKey::EventId), MergeRule::AuditId);
    const DEC: (Role, MergeRule) = (Role::Link(LinkKey::DecisionId), MergeRule::DecisionId);
    const APR: (Role, MergeRule) = (Role::Ident(IdentName::ApprovalId), MergeRule::ApprovalId);
    const RUN: (Role, MergeRule) = (Role::Link(LinkKey::DeploymentId), MergeRule::RunId);
    // A request's `traceparent` names the span that made it: a proxy's line and the server's
    // log of one request share it.
    const PARENT: (Role, MergeRule) = (Role::Link(LinkKey::ParentSpanId), MergeRule::ParentSpan);
    match kind {
        K::ToolCall | K::MemoryRead | K::MemoryWrite | K::ModelCall => &[CALL, SPAN, EVT],
        K::EgressRequest => &[REQ, SPAN, EVT, PARENT],
        K::PolicyDecision => &[DEC],
        K::ApprovalRequest | K::ApprovalDecision => &[CALL, APR],
        K::CloudApiCall | K::K8sChange => &[EVT, REQ],
        K::Deploy => &[RUN],
        _ => &[],
    }
}

/// A path inside what a call returned.
fn returned(path: &str) -> bool {
    let first = path.split(['.', '{']).next().unwrap_or("");
    matches!(first, "response" | "output" | "outputs" | "result" | "results" | "return" | "returned" | "body")
}

/// Roles that describe where an action happened rather than which action it was.
fn context_role(r: Role) -> bool {
    matches!(
        r,
        Role::Ident(
            IdentName::TraceId
                | IdentName::SessionId
                | IdentName::AgentId
                | IdentName::BundleId
                | IdentName::ChangeId
                | IdentName::RolloutWave
        ) | Role::Link(LinkKey::DeploymentId | LinkKey::AgentName)
            | Role::Subject
    )
}

/// Whether a tool's name reads as a write.
pub(crate) fn looks_like_write(tool: &str) -> bool {
    let t = tool.to_ascii_lowercase();
    const READS: [&str; 9] = ["get", "read", "search", "list", "lookup", "fetch", "query", "describe", "find"];
    // Verbs that change state somewhere (a record, a cluster, a secret) or move data out.
    const WRITES: [&str; 59] = [
        "create",
        "update",
        "delete",
        "remove",
        "send",
        "post",
        "put",
        "patch",
        "write",
        "insert",
        "upsert",
        "issue",
        "refund",
        "charge",
        "pay",
        "transfer",
        "cancel",
        "approve",
        "submit",
        "book",
        "order",
        "publish",
        "deploy",
        "modify",
        "set_",
        "add_",
        "grant",
        "revoke",
        "upload",
        "rotate",
        "scale",
        "restart",
        "rollback",
        "roll_back",
        "terminate",
        "kill",
        "drain",
        "cordon",
        "exec",
        "void",
        "credit",
        "debit",
        "withdraw",
        "close",
        "archive",
        "suspend",
        "execute",
        "run_",
        "push",
        "merge",
        "commit",
        "reset",
        "enable",
        "disable",
        "assign",
        "invite",
        "destroy",
        "purge",
        "replace",
    ];
    let first = t.split(['_', '.', '-', ' ']).next().unwrap_or("");
    if READS.contains(&first) {
        return false;
    }
    WRITES.iter().any(|w| t.contains(w))
}

/// A write method.
fn write_method(m: &str) -> bool {
    matches!(m.to_ascii_uppercase().as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Builds the incident's events.
pub(crate) fn build(an: &Analyzer) -> Vec<EventC> {
    // Evidence of the incident's records, by tier.
    let mut items: Vec<(u32, u32)> = Vec::new(); // (evidence, record)
    for (rid, r) in an.records.iter().enumerate() {
        let take = |k: EventKind| match r.tier {
            Tier::None => false,
            Tier::Linked => true,
            Tier::Chain => matches!(
                k,
                EventKind::Deploy
                    | EventKind::Change
                    | EventKind::Rollout
                    | EventKind::K8sChange
                    | EventKind::CloudApiCall
            ),
            Tier::Joined => matches!(k, EventKind::MemoryWrite | EventKind::PolicyDecision),
            Tier::TimeAndAddress => k == EventKind::EgressRequest,
        };
        for e in an.evs_of(rid as u32) {
            if an.evs.get(e as usize).is_some_and(|ev| take(ev.kind)) {
                items.push((e, rid as u32));
            }
        }
    }
    let n = items.len();
    let mut m = Merge {
        parent: (0..n as u32).collect(),
        keys: HashMap::default(),
        sources: HashMap::default(),
        rules: HashMap::default(),
        runs: HashMap::default(),
    };
    // A run of a run-based trace export (LangSmith, Langfuse, the Agents SDK's), or a record
    // that is a span of its own (an Application Insights row): its span id.
    let run_span = |e: u32, rid: u32| -> Option<u32> {
        let x = &an.evs[e as usize];
        let src = an.records[rid as usize].source as usize;
        let run_based =
            an.sources.get(src).is_some_and(|s| matches!(s.format.name(), "langsmith" | "langfuse" | "agents_tracing"));
        if x.sub || !(run_based || x.own_span) {
            return None;
        }
        an.ev_keys[x.keys.0 as usize..x.keys.1 as usize]
            .iter()
            .find(|(r, _)| *r == Role::Link(LinkKey::SpanId))
            .map(|(_, v)| *v)
    };
    let decision_of = |e: u32| -> u32 {
        let ev = &an.evs[e as usize];
        an.ev_detail[ev.detail.0 as usize..ev.detail.1 as usize]
            .iter()
            .find(|(k, _)| *k == "decision")
            .map_or(NONE, |(_, v)| *v)
    };
    // A memory record is added once: every record of its addition is one write.
    let adds = |e: u32| -> bool {
        let ev = &an.evs[e as usize];
        ev.kind == EventKind::MemoryWrite
            && an.strings.get_opt(ev.operation).is_some_and(|o| o.eq_ignore_ascii_case("add"))
    };
    for (i, &(e, rid)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        let keys: Vec<(Role, u32)> =
            an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize].iter().filter(|(r, _)| singular(*r)).copied().collect();
        m.keys.insert(i as u32, keys);
        m.sources.insert(i as u32, vec![an.records[rid as usize].source]);
        if let Some(span) = run_span(e, rid) {
            m.runs.insert(i as u32, vec![span]);
        }
    }
    // 0. A function span (no call id) and the tool call its generation asked for (a part
    // with the call id): same trace, kind, tool and arguments, paired in time order.
    pair_requested_calls(an, &items, &mut m);
    // 1. By id.
    let mut first_of: HashMap<(EventKind, Role, u32, u32), u32> = HashMap::default();
    for (i, &(e, _)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        let dec = if matches!(ev.kind, EventKind::ApprovalDecision) { decision_of(e) } else { NONE };
        let extra: &[(Role, MergeRule)] =
            if adds(e) { &[(Role::Link(LinkKey::MemoryId), MergeRule::MemoryId)] } else { &[] };
        for &(role, rule) in merge_keys(ev.kind).iter().chain(extra) {
            for &(r, v) in &an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize] {
                if r != role {
                    continue;
                }
                match first_of.get(&(ev.kind, role, v, dec)) {
                    Some(&j) => {
                        // Two requests made by one span, logged in one file, are two requests.
                        let same_file =
                            an.records[items[j as usize].1 as usize].source == an.records[items[i].1 as usize].source;
                        // Two runs of one call id, each its own run in one run-based trace export
                        // (LangSmith, Langfuse, the Agents SDK's), are two executions: a graph
                        // node retried keeps the model's call id. That holds of the components:
                        // a run paired with the model's request (rule 0) is not merged, through
                        // the request, with the retry's run. (Log records of one call logged in
                        // several spans are one call.)
                        let two_runs = rule == MergeRule::CallId && same_file && {
                            let root = m.find(j);
                            // `i` may be merged already (paired with its request by rule 0):
                            // its runs are its component's.
                            let mine_root = m.find(i as u32);
                            if mine_root == root {
                                continue;
                            }
                            let (mine, theirs) =
                                (m.runs.get(&mine_root).cloned().unwrap_or_default(), m.runs.get(&root));
                            !mine.is_empty() && theirs.is_some_and(|t| t.iter().any(|s| !mine.contains(s)))
                        };
                        let parts_of_one_span = rule == MergeRule::ParentSpan && same_file;
                        if !(parts_of_one_span || two_runs) {
                            m.union(j, i as u32, rule);
                        }
                    }
                    None => {
                        first_of.insert((ev.kind, role, v, dec), i as u32);
                    }
                }
            }
        }
    }
    // Parts of an action (internal calls, messages, their servers and consumers) join the
    // action of their parent span, transitively.
    let mut by_span: HashMap<u32, u32> = HashMap::default();
    for (i, &(e, _)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        for &(r, v) in &an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize] {
            if r == Role::Link(LinkKey::SpanId) {
                by_span.entry(v).or_insert(i as u32);
            }
        }
    }
    // Parts named by a request id (a function's log lines of one invocation) join the
    // evidence of that request.
    let mut by_request: HashMap<u32, u32> = HashMap::default();
    for (i, &(e, _)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        if ev.sub {
            continue;
        }
        for &(r, v) in &an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize] {
            if r == Role::Link(LinkKey::RequestId) {
                by_request.entry(v).or_insert(i as u32);
            }
        }
    }
    for (i, &(e, _)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        if !ev.sub {
            continue;
        }
        for &(r, v) in &an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize] {
            if r == Role::Link(LinkKey::ParentSpanId) {
                if let Some(&p) = by_span.get(&v) {
                    m.union(p, i as u32, MergeRule::ParentSpan);
                }
            }
            // Only into evidence of its own kind: a server span inside a tool call names the
            // request its proxy logged, but is the tool call's part, not the request's.
            if r == Role::Link(LinkKey::RequestId) {
                if let Some(&p) = by_request.get(&v).filter(|p| an.evs[items[**p as usize].0 as usize].kind == ev.kind)
                {
                    m.union(p, i as u32, MergeRule::RequestId);
                }
            }
        }
    }
    // A span of the same kind under another is the same action (a generation under its model
    // activity, an activity under its tool span), except attempts: when several attempts run
    // under one call, each is its own event and the call belongs to the first.
    let mut children: HashMap<u32, Vec<u32>> = HashMap::default();
    for (i, &(e, _)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        for &(r, v) in &an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize] {
            if r == Role::Link(LinkKey::ParentSpanId) {
                if let Some(&p) = by_span.get(&v) {
                    let pk = an.evs[items[p as usize].0 as usize].kind;
                    if pk == ev.kind && p != i as u32 {
                        children.entry(p).or_default().push(i as u32);
                    }
                }
            }
        }
    }
    let start_of =
        |i: u32| an.time_of(an.evs[items[i as usize].0 as usize].start).and_then(|t| t.nanos()).unwrap_or(i128::MAX);
    let mut parents: Vec<(&u32, &Vec<u32>)> = children.iter().collect();
    parents.sort();
    for (&p, kids) in parents {
        let attempts: Vec<u32> =
            kids.iter().copied().filter(|k| an.evs[items[*k as usize].0 as usize].attempt.is_some()).collect();
        if attempts.len() >= 2 {
            let firstk =
                attempts.iter().copied().min_by_key(|k| (an.evs[items[*k as usize].0 as usize].attempt, start_of(*k)));
            for k in kids.iter().copied().filter(|k| !attempts.contains(k)).chain(firstk) {
                m.union(p, k, MergeRule::ParentSpan);
            }
        } else {
            for &k in kids {
                m.union(p, k, MergeRule::ParentSpan);
            }
        }
    }
    // 2. By time window: same kind and target, different files.
    let window = i128::from(an.limits.merge_window_ms) * 1_000_000;
    // (start, end, item) per (kind, target).
    type Spans = Vec<(i128, i128, u32)>;
    let mut groups: HashMap<(EventKind, String), Spans> = HashMap::default();
    for (i, &(e, _)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        let timed = matches!(
            ev.kind,
            EventKind::ToolCall
                | EventKind::MemoryRead
                | EventKind::MemoryWrite
                | EventKind::ModelCall
                | EventKind::EgressRequest
                | EventKind::ApprovalRequest
                | EventKind::ApprovalDecision
                | EventKind::Deploy
        );
        if ev.sub || !timed {
            continue;
        }
        // Approval decisions without a shared id are grouped by their decision, the rest by
        // their target.
        let target = if ev.kind == EventKind::ApprovalDecision {
            an.strings.get_opt(decision_of(e))
        } else {
            an.strings.get_opt(ev.target)
        };
        let Some(target) = target else { continue };
        let Some(s) = an.time_of(ev.start).and_then(|t| t.nanos()) else { continue };
        let end = an.time_of(ev.end).and_then(|t| t.nanos()).filter(|x| *x >= s).unwrap_or(s);
        groups.entry((ev.kind, target.to_ascii_lowercase())).or_default().push((s, end, i as u32));
    }
    let principal_of = |an: &Analyzer, i: u32| -> u32 { an.evs[items[i as usize].0 as usize].principal };
    // One deployment's operation logs several lines (initiated, syncing, succeeded): within a
    // minute, in one log, they are one deploy.
    let deploy_window = window.max(60_000_000_000);
    for ((kind, _), list) in groups.iter_mut() {
        list.sort_unstable();
        let (window, same_file_ok) = if *kind == EventKind::Deploy { (deploy_window, true) } else { (window, false) };
        for a in 0..list.len() {
            for b in a + 1..list.len() {
                let (s1, e1, i) = list[a];
                let (s2, e2, j) = list[b];
                if s2 > e1 + window {
                    break;
                }
                let overlap = s2 <= e1 + window && s1 <= e2 + window;
                if !overlap {
                    continue;
                }
                let (ri, rj) = (m.find(i), m.find(j));
                if ri == rj {
                    continue;
                }
                let si = m.sources.get(&ri).cloned().unwrap_or_default();
                let sj = m.sources.get(&rj).cloned().unwrap_or_default();
                if !same_file_ok && si.iter().any(|x| sj.contains(x)) {
                    continue;
                }
                let (pi, pj) = (principal_of(an, i), principal_of(an, j));
                if pi != NONE && pj != NONE && pi != pj {
                    continue;
                }
                // Two numbered attempts are two attempts.
                let (ai, aj) =
                    (an.evs[items[i as usize].0 as usize].attempt, an.evs[items[j as usize].0 as usize].attempt);
                if ai.is_some() && aj.is_some() && ai != aj {
                    continue;
                }
                m.union(i, j, MergeRule::TimeWindow);
            }
        }
    }
    // Components → events.
    let mut comps: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for i in 0..n as u32 {
        let r = m.find(i);
        comps.entry(r).or_default().push(i);
    }
    let mut events: Vec<EventC> = Vec::with_capacity(comps.len());
    for (root, members) in comps {
        let evs: Vec<u32> = members.iter().map(|&i| items[i as usize].0).collect();
        // Parts without their action are not events.
        if evs.iter().all(|e| an.evs[*e as usize].sub) {
            continue;
        }
        let mut recs: Vec<u32> = members.iter().map(|&i| items[i as usize].1).collect();
        recs.sort_unstable();
        recs.dedup();
        let rules = m.rules.remove(&root).unwrap_or_default();
        events.push(event_of(an, evs, recs, rules));
    }
    in_effect(an, &mut events);
    // Relations name events by position: sort first.
    events.sort_by(|a, b| order_key(an, a).cmp(&order_key(an, b)));
    relate(an, &mut events);
    events
}

/// Pairs each tool run that carries no call id (an Agents SDK function span, a LangSmith tool
/// run that failed) with the call its model call asked for (`requested`: a part with the
/// model's call id), when both name one tool with the same arguments (`args_sha`): the n-th
/// run with the first call not yet paired that was asked for no later than the run started
/// (a retry with the same arguments is a second request, paired with the second run). Runs
/// are paired within their trace first, then within their session (LangGraph resumes an
/// interrupted graph in a new trace of the same thread). Last, a run whose arguments match no
/// request is paired by the tool's name alone when its session holds exactly one such run and
/// one such request left (arguments the app rewrote, a URL it signed). The run's event then
/// carries the call id, and the tool's own records of that call (an MCP server's log lines, a
/// gateway's header) merge into it or relate to it by call id.
fn pair_requested_calls(an: &Analyzer, items: &[(u32, u32)], m: &mut Merge) {
    let detail = |e: u32, key: &str| -> u32 {
        let ev = &an.evs[e as usize];
        an.ev_detail[ev.detail.0 as usize..ev.detail.1 as usize]
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(NONE, |(_, v)| *v)
    };
    let has_call = |e: u32| {
        let ev = &an.evs[e as usize];
        an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize].iter().any(|(r, _)| *r == Role::Link(LinkKey::CallId))
    };
    let ident_of = |rid: u32, name: IdentName| {
        an.fields_of(rid).iter().find(|f| f.role == Role::Ident(name)).map_or(NONE, |f| f.canon)
    };
    let time = |e: u32| an.time_of(an.evs[e as usize].start).and_then(|t| t.nanos());
    // (trace or session, kind, tool, args digest or NONE for the name-only pass)
    type Key = (u32, EventKind, String, u32);
    struct Cand {
        t: i128,
        i: u32,
        rid: u32,
        sha: u32,
    }
    let mut runs: Vec<(EventKind, String, Cand)> = Vec::new();
    let mut asked: Vec<(EventKind, String, Cand)> = Vec::new();
    for (i, &(e, rid)) in items.iter().enumerate() {
        let ev = &an.evs[e as usize];
        if !matches!(ev.kind, EventKind::ToolCall | EventKind::MemoryRead | EventKind::MemoryWrite) {
            continue;
        }
        let Some(target) = an.strings.get_opt(ev.target) else { continue };
        let sha = detail(e, "args_sha");
        if sha == NONE {
            continue;
        }
        let side = Cand { t: time(e).unwrap_or(i128::MIN), i: i as u32, rid, sha };
        if ev.sub && detail(e, "requested") != NONE && has_call(e) {
            asked.push((ev.kind, target.to_ascii_lowercase(), side));
        } else if !ev.sub && !has_call(e) {
            runs.push((ev.kind, target.to_ascii_lowercase(), side));
        }
    }
    // One second of skew between the model call's end and the run's start is allowed.
    const SKEW: i128 = 1_000_000_000;
    let mut run_done = vec![false; runs.len()];
    let mut asked_done = vec![false; asked.len()];
    for (scope, by_sha) in [(IdentName::TraceId, true), (IdentName::SessionId, true), (IdentName::SessionId, false)] {
        let key = |k: EventKind, tool: &str, s: &Cand| -> Option<Key> {
            let g = ident_of(s.rid, scope);
            (g != NONE).then(|| (g, k, tool.to_string(), if by_sha { s.sha } else { NONE }))
        };
        let mut run_groups: HashMap<Key, Vec<usize>> = HashMap::default();
        let mut ask_groups: HashMap<Key, Vec<usize>> = HashMap::default();
        for (j, (k, tool, s)) in runs.iter().enumerate() {
            if let Some(key) = key(*k, tool, s).filter(|_| !run_done[j]) {
                run_groups.entry(key).or_default().push(j);
            }
        }
        for (j, (k, tool, s)) in asked.iter().enumerate() {
            if let Some(key) = key(*k, tool, s).filter(|_| !asked_done[j]) {
                ask_groups.entry(key).or_default().push(j);
            }
        }
        let mut keys: Vec<&Key> = run_groups.keys().collect();
        keys.sort();
        for key in keys {
            let (Some(list), Some(calls)) = (run_groups.get(key), ask_groups.get(key)) else { continue };
            if !by_sha && (list.len() != 1 || calls.len() != 1) {
                continue;
            }
            let mut list = list.clone();
            let mut calls = calls.clone();
            list.sort_unstable_by_key(|j| (runs[*j].2.t, *j));
            calls.sort_unstable_by_key(|j| (asked[*j].2.t, *j));
            // Both in time order: the first request not yet paired is the only candidate (a
            // later one was asked later still), so one cursor pairs them in linear time.
            let mut next = 0usize;
            for j in list {
                let t = runs[j].2.t;
                let Some(&c) = calls.get(next) else { break };
                let ct = asked[c].2.t;
                if ct == i128::MIN || t == i128::MIN || ct <= t.saturating_add(SKEW) {
                    next += 1;
                    asked_done[c] = true;
                    run_done[j] = true;
                    m.union(asked[c].2.i, runs[j].2.i, MergeRule::CallId);
                }
            }
        }
    }
}

/// Of a deployment's history (its deploys and rollout steps, found through the chain), the
/// one in effect when the incident began: per target, the last that started before the
/// incident's first event. Earlier ones were superseded, later ones came after.
fn in_effect(an: &Analyzer, events: &mut Vec<EventC>) {
    let t = |e: &EventC| an.time_of(e.start).and_then(|t| t.nanos());
    let Some(begin) = events.iter().filter(|e| e.tie == Tie::Linked).filter_map(t).min() else { return };
    let mut keep: HashMap<(EventKind, u32), (i128, usize)> = HashMap::default();
    for (i, e) in events.iter().enumerate() {
        if e.tie != Tie::Chain || !matches!(e.kind, EventKind::Deploy | EventKind::Rollout) {
            continue;
        }
        let Some(s) = t(e).filter(|s| *s <= begin) else { continue };
        let k = (e.kind, e.target);
        if keep.get(&k).map_or(true, |(best, _)| s >= *best) {
            keep.insert(k, (s, i));
        }
    }
    let kept: std::collections::HashSet<usize> = keep.values().map(|(_, i)| *i).collect();
    let mut i = 0usize;
    events.retain(|e| {
        let ok = e.tie != Tie::Chain || !matches!(e.kind, EventKind::Deploy | EventKind::Rollout) || kept.contains(&i);
        i += 1;
        ok
    });
}

/// Time order: events with a time first (by time), then the rest by their first citation.
fn order_key<'a>(an: &'a Analyzer, e: &EventC) -> (bool, i128, &'a str, u64, u32) {
    let t = an.time_of(e.start).and_then(|t| t.nanos());
    let first = e.recs.first().and_then(|r| an.records.get(*r as usize));
    let path = first.and_then(|r| an.sources.get(r.source as usize)).map_or("", |s| &s.path);
    (t.is_none(), t.unwrap_or(0), path, first.map_or(0, |r| r.offset), first.map_or(0, |r| r.item))
}

fn side_rank(s: Side) -> u8 {
    match s {
        Side::Client => 0,
        Side::Server => 1,
        Side::Proxy => 2,
    }
}

fn event_of(an: &Analyzer, mut evs: Vec<u32>, recs: Vec<u32>, rules: BTreeSet<MergeRule>) -> EventC {
    evs.sort_by_key(|e| (an.evs[*e as usize].sub, side_rank(an.evs[*e as usize].side)));
    let kind = an.evs[evs[0] as usize].kind;
    let pick = |f: &dyn Fn(&super::engine::EvC) -> u32| {
        evs.iter().map(|e| f(&an.evs[*e as usize])).find(|v| *v != NONE).unwrap_or(NONE)
    };
    let start = evs
        .iter()
        .map(|e| an.evs[*e as usize].start)
        .filter(|t| *t != NONE)
        .min_by_key(|t| an.time_of(*t).and_then(|x| x.nanos()).unwrap_or(i128::MAX))
        .unwrap_or(NONE);
    let end = evs
        .iter()
        .map(|e| an.evs[*e as usize].end)
        .filter(|t| *t != NONE)
        .max_by_key(|t| an.time_of(*t).and_then(|x| x.nanos()).unwrap_or(i128::MIN))
        .unwrap_or(NONE);
    // Identifiers and linking values from the records; keys from the evidence.
    let mut ids: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let mut add = |k: &'static str, v: u32| {
        let e = ids.entry(k).or_default();
        if !e.contains(&v) {
            e.push(v);
        }
    };
    let mut principals_f = Vec::new();
    let mut subjects = Vec::new();
    let mut agents = Vec::new();
    let mut agent_names = Vec::new();
    for &rid in &recs {
        // A record that describes several events (a RunState, a document of many items)
        // gives each of them only its context (trace, session, agent, deployment…): its action
        // keys belong to one event or another, and come from the evidence itself.
        let (e0, e1) = an.records[rid as usize].evs;
        let several = e1.saturating_sub(e0) > 1;
        for f in an.fields_of(rid) {
            if several && !context_role(f.role) {
                continue;
            }
            // What a call returned (its response, output or result) describes the returned
            // objects: a ticket's idempotency key listed in a search response is not the
            // search's key.
            if matches!(kind, EventKind::ToolCall | EventKind::MemoryRead | EventKind::ModelCall)
                && !context_role(f.role)
                && returned(an.strings.get(f.path))
            {
                continue;
            }
            match f.role {
                Role::Ident(i) => {
                    add(i.as_str(), f.value);
                    match i {
                        IdentName::ToolPrincipal => principals_f.push(f.value),
                        IdentName::AgentId => agents.push(f.value),
                        _ => {}
                    }
                }
                Role::Link(LinkKey::AgentName) => agent_names.push(f.value),
                Role::Link(LinkKey::SourceAddress) => {}
                Role::Link(l) => add(l.as_str(), f.value),
                Role::Subject => subjects.push(f.value),
                _ => {}
            }
        }
    }
    for e in &evs {
        let ev = &an.evs[*e as usize];
        for &(r, v) in &an.ev_keys[ev.keys.0 as usize..ev.keys.1 as usize] {
            match r {
                Role::Ident(i) => add(i.as_str(), v),
                Role::Link(l) => add(l.as_str(), v),
                _ => {}
            }
        }
    }
    let mut detail: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for e in &evs {
        let ev = &an.evs[*e as usize];
        for &(k, v) in &an.ev_detail[ev.detail.0 as usize..ev.detail.1 as usize] {
            let d = detail.entry(k).or_default();
            if !d.contains(&v) {
                d.push(v);
            }
        }
    }
    let tie = recs.iter().map(|r| an.records[*r as usize].tier).min().map_or(Tie::Linked, |t| match t {
        Tier::Linked | Tier::None => Tie::Linked,
        Tier::Chain => Tie::Chain,
        Tier::Joined => Tie::Joined,
        Tier::TimeAndAddress => Tie::TimeAndAddress,
    });
    let principal = pick(&|e| e.principal);
    let principal = if principal != NONE { principal } else { principals_f.first().copied().unwrap_or(NONE) };
    let subject = pick(&|e| e.subject);
    let subject = if subject != NONE { subject } else { subjects.first().copied().unwrap_or(NONE) };
    let actor = pick(&|e| e.actor);
    let actor = if actor != NONE { actor } else { agents.first().or(agent_names.first()).copied().unwrap_or(NONE) };
    let (outcome, replayed) = resolve(an, &evs);
    EventC {
        kind,
        start,
        end,
        principal,
        actor,
        subject,
        target: pick(&|e| e.target),
        operation: pick(&|e| e.operation),
        outcome,
        replayed,
        rules: rules.into_iter().collect(),
        tie,
        related: Vec::new(),
        ids: KeyVals::from_map(ids),
        detail: KeyVals::from_map(detail),
        write: false,
        evs,
        recs,
    }
}

/// The outcome from the evidence: the server's view decides over a proxy's, a proxy's over
/// the client's; within the deciding view, a success and a failure together are unknown.
fn resolve(an: &Analyzer, evs: &[u32]) -> (Option<OutcomeC>, bool) {
    let o = resolve_status(an, evs);
    // A replay at the deciding view means no new effect.
    let replayed = o.as_ref().is_some_and(|(s, _, _)| *s == OutcomeStatus::Succeeded)
        && [Side::Server, Side::Proxy, Side::Client]
            .iter()
            .find(|side| evs.iter().any(|e| an.evs[*e as usize].side == **side && an.evs[*e as usize].status.is_some()))
            .is_some_and(|side| evs.iter().any(|e| an.evs[*e as usize].side == *side && an.evs[*e as usize].replayed));
    (o, replayed)
}

fn resolve_status(an: &Analyzer, evs: &[u32]) -> Option<(OutcomeStatus, Option<String>, Vec<u32>)> {
    let codes: Vec<u32> = evs.iter().map(|e| an.evs[*e as usize].code).filter(|c| *c != NONE).collect();
    for side in [Side::Server, Side::Proxy, Side::Client] {
        let seen: Vec<&super::engine::EvC> =
            evs.iter().map(|e| &an.evs[*e as usize]).filter(|e| e.side == side && e.status.is_some()).collect();
        if seen.is_empty() {
            continue;
        }
        let view = match side {
            Side::Server => "the server's record",
            Side::Proxy => "the proxy's record",
            Side::Client => "the caller's record",
        };
        let has = |s: OutcomeStatus| seen.iter().any(|e| e.status == Some(s));
        let reason_of = |s: OutcomeStatus| {
            seen.iter().find(|e| e.status == Some(s)).and_then(|e| an.strings.get_opt(e.reason)).map(str::to_string)
        };
        let code_of = |s: OutcomeStatus| {
            seen.iter().find(|e| e.status == Some(s)).and_then(|e| an.strings.get_opt(e.code)).unwrap_or("").to_string()
        };
        let others_unknown = evs
            .iter()
            .map(|e| &an.evs[*e as usize])
            .any(|e| e.side != side && e.status == Some(OutcomeStatus::Unknown));
        return Some(if has(OutcomeStatus::Succeeded) && has(OutcomeStatus::Failed) {
            (OutcomeStatus::Unknown, Some(format!("conflicting records ({view}): succeeded and failed")), codes)
        } else if has(OutcomeStatus::Succeeded) {
            let r = if others_unknown {
                let u = evs
                    .iter()
                    .map(|e| &an.evs[*e as usize])
                    .find(|e| e.side != side && e.status == Some(OutcomeStatus::Unknown))
                    .and_then(|e| an.strings.get_opt(e.reason))
                    .unwrap_or("unknown");
                Some(format!("{view} shows {} although another view saw: {u}", code_of(OutcomeStatus::Succeeded)))
            } else {
                None
            };
            (OutcomeStatus::Succeeded, r, codes)
        } else if has(OutcomeStatus::Failed) && !has(OutcomeStatus::Unknown) {
            (OutcomeStatus::Failed, reason_of(OutcomeStatus::Failed).map(|r| format!("{r} ({view})")), codes)
        } else {
            (OutcomeStatus::Unknown, reason_of(OutcomeStatus::Unknown).or(Some("unknown".into())), codes)
        });
    }
    None
}

/// Relates events, then settles outcomes that depend on relations and marks writes.
fn relate(an: &Analyzer, events: &mut [EventC]) {
    let mut by_span: HashMap<u32, usize> = HashMap::default();
    // Every call with a call id, in time order: one call id can name several attempts (a
    // graph node re-run keeps the model's call id).
    let mut by_call: HashMap<u32, Vec<usize>> = HashMap::default();
    let mut by_request: HashMap<u32, usize> = HashMap::default();
    let mut by_approval: HashMap<u32, Vec<usize>> = HashMap::default();
    // Egress requests by request id, for the policy decisions (ext_authz) that allowed them.
    let mut egress_by_request: HashMap<u32, usize> = HashMap::default();
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::EgressRequest {
            for &r in e.id_values("request_id") {
                egress_by_request.entry(r).or_insert(i);
            }
        }
        if matches!(e.kind, EventKind::ToolCall | EventKind::MemoryWrite | EventKind::MemoryRead) {
            for &s in e.id_values("span_id") {
                by_span.entry(s).or_insert(i);
            }
            for &c in e.id_values("call_id") {
                by_call.entry(c).or_default().push(i);
            }
            for &r in e.id_values("request_id") {
                by_request.entry(r).or_insert(i);
            }
        }
        if matches!(e.kind, EventKind::ApprovalRequest | EventKind::ApprovalDecision) {
            for &a in e.id_values("approval_id") {
                by_approval.entry(a).or_default().push(i);
            }
        }
    }
    let nanos = |e: &EventC| an.time_of(e.start).and_then(|t| t.nanos());
    // The attempt a record of call `c` at time `at` belongs to: the last attempt that started
    // no later than it (one second of skew), else the first.
    let call_at = |c: &u32, at: Option<i128>| -> Option<usize> {
        let list = by_call.get(c)?;
        let at = at.map(|t| t.saturating_add(1_000_000_000));
        list.iter()
            .rev()
            .find(|j| matches!((at, events.get(**j).and_then(nanos)), (Some(a), Some(s)) if s <= a))
            .or_else(|| list.first())
            .copied()
    };
    // The attempt a decision or approval about call `c` at time `at` is for: a decision comes
    // before what it allows, so the first attempt that started no earlier than one second
    // before it (the run resumed after a human approved), else the last one.
    let call_after = |c: &u32, at: Option<i128>| -> Option<usize> {
        let list = by_call.get(c)?;
        let at = at.map(|t| t.saturating_sub(1_000_000_000));
        list.iter()
            .find(|j| matches!((at, events.get(**j).and_then(nanos)), (Some(a), Some(s)) if s >= a))
            .or_else(|| list.last())
            .copied()
    };
    let mut rel: Vec<(usize, usize, &'static str, &'static str)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        match e.kind {
            EventKind::EgressRequest => {
                let parent = e.id_values("parent_span_id").iter().find_map(|p| by_span.get(p)).copied();
                let call = e.id_values("call_id").iter().find_map(|c| call_at(c, nanos(e)));
                let req = e.id_values("request_id").iter().find_map(|r| by_request.get(r)).copied();
                if let Some(t) = parent.or(call).or(req).filter(|t| *t != i) {
                    rel.push((i, t, "request_of", "made_request"));
                }
            }
            EventKind::ApprovalRequest | EventKind::ApprovalDecision | EventKind::PolicyDecision => {
                let name = if e.kind == EventKind::PolicyDecision { "decision_for" } else { "approval_for" };
                if let Some(t) = e.id_values("call_id").iter().find_map(|c| call_after(c, nanos(e))) {
                    rel.push((i, t, name, if e.kind == EventKind::PolicyDecision { "decided_by" } else { "approval" }));
                }
                if e.kind == EventKind::PolicyDecision {
                    if let Some(t) = e.id_values("request_id").iter().find_map(|r| egress_by_request.get(r)).copied() {
                        rel.push((i, t, "decision_for", "decided_by"));
                    }
                }
                if e.kind == EventKind::ApprovalDecision {
                    for a in e.id_values("approval_id") {
                        for &j in by_approval.get(a).into_iter().flatten() {
                            if j != i && events[j].kind == EventKind::ApprovalRequest {
                                rel.push((i, j, "decides", "decided_by"));
                            }
                        }
                    }
                }
            }
            EventKind::ToolCall => {
                for a in e.id_values("approval_id") {
                    for &j in by_approval.get(a).into_iter().flatten() {
                        rel.push((j, i, "approval_for", "approval"));
                    }
                }
            }
            _ => {}
        }
    }
    // A call carries the idempotency key its requests were sent with (an `Idempotency-Key`
    // header in the proxy's or the server's log) when its own records name none: a retried
    // call is then an attempt of the same action, whichever source recorded the key.
    let mut keys_from_requests: Vec<(usize, Vec<u32>)> = Vec::new();
    for &(req, call, fwd, _) in &rel {
        let (Some(r), Some(c)) = (events.get(req), events.get(call)) else { continue };
        if fwd == "request_of" && c.kind == EventKind::ToolCall && c.id_values("idempotency_key").is_empty() {
            let keys = r.id_values("idempotency_key");
            if !keys.is_empty() {
                keys_from_requests.push((call, keys.to_vec()));
            }
        }
    }
    for (call, keys) in keys_from_requests {
        if let Some(e) = events.get_mut(call) {
            e.ids = e.ids.with("idempotency_key", &keys);
        }
    }
    // Attempts of one logical action.
    let mut by_key: HashMap<u32, Vec<usize>> = HashMap::default();
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::ToolCall {
            for &k in e.id_values("idempotency_key") {
                by_key.entry(k).or_default().push(i);
            }
        }
    }
    // Each attempt is related to the attempts before and after it (events are in time order):
    // linear in the attempts, where all pairs were quadratic (a retry storm of 2 000 attempts
    // made 4 million relations). `actions` lists every attempt of a key.
    for list in by_key.values() {
        for w in list.windows(2) {
            rel.push((w[0], w[1], "same_action", "same_action"));
        }
    }
    let mut seen: HashSet<(usize, usize, &'static str)> = HashSet::with_capacity(rel.len() * 2);
    for (a, b, fwd, back) in rel {
        if seen.insert((a, b, fwd)) {
            if let Some(e) = events.get_mut(a) {
                e.related.push((b as u32, fwd));
            }
        }
        if !back.is_empty() && seen.insert((b, a, back)) {
            if let Some(e) = events.get_mut(b) {
                e.related.push((a as u32, back));
            }
        }
    }
    // A call's requests that took effect at the server decide its outcome when the call
    // itself does not show one (a client timeout whose request was committed).
    let request_outcomes: Vec<(usize, OutcomeStatus, String, bool)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EventKind::EgressRequest)
        .filter_map(|(i, e)| {
            let (st, _, _) = e.outcome.as_ref()?;
            let server =
                e.evs.iter().any(|x| an.evs[*x as usize].side == Side::Server && an.evs[*x as usize].status.is_some());
            let method = e.operation;
            let writes = method != NONE && write_method(an.strings.get(method));
            // A replay is the server's own answer, whoever logged it (a gateway passes the
            // server's `Idempotent-Replayed` header through).
            ((server || e.replayed) && writes).then(|| {
                let rid = e.id_values("request_id").first().map(|r| an.strings.get(*r).to_string()).unwrap_or_default();
                let code = e
                    .outcome
                    .as_ref()
                    .map(|o| o.2.iter().map(|c| an.strings.get(*c)).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                (i, *st, format!("request {rid} ({code})"), e.replayed)
            })
        })
        .collect();
    for (req, st, what, replayed) in request_outcomes {
        let Some(call) = events[req].related.iter().find(|(_, r)| *r == "request_of").map(|(c, _)| *c as usize) else {
            continue;
        };
        let e = &mut events[call];
        let mine = e.outcome.as_ref().map(|o| o.0);
        if replayed && st == OutcomeStatus::Succeeded {
            // The server answered with an earlier result: this attempt had no new effect.
            e.replayed = true;
            if mine != Some(OutcomeStatus::Succeeded) {
                let codes = e.outcome.as_ref().map(|o| o.2.clone()).unwrap_or_default();
                e.outcome = Some((
                    OutcomeStatus::Succeeded,
                    Some(format!("the server replayed an earlier result for {what}: no new effect")),
                    codes,
                ));
            }
            continue;
        }
        if st == OutcomeStatus::Succeeded && mine != Some(OutcomeStatus::Succeeded) {
            let before = e.outcome.as_ref().and_then(|o| o.1.clone()).unwrap_or_else(|| "no response recorded".into());
            let codes = e.outcome.as_ref().map(|o| o.2.clone()).unwrap_or_default();
            e.outcome = Some((
                OutcomeStatus::Succeeded,
                Some(format!("the caller saw {before}, but the server recorded {what}: it took effect")),
                codes,
            ));
        }
    }
    // A call that names no principal ran as the principal its requests were authorised as.
    let principals: Vec<(usize, u32)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EventKind::EgressRequest && e.principal != NONE)
        .filter_map(|(i, e)| {
            e.related.iter().find(|(_, r)| *r == "request_of").map(|(c, _)| (*c as usize, events[i].principal))
        })
        .collect();
    for (call, p) in principals {
        if let Some(e) = events.get_mut(call) {
            if e.principal == NONE {
                e.principal = p;
            }
        }
    }
    // Writes.
    let methods: Vec<bool> = events
        .iter()
        .map(|e| {
            e.related.iter().filter(|(_, r)| *r == "made_request").any(|(j, _)| {
                events
                    .get(*j as usize)
                    .is_some_and(|x| x.operation != NONE && write_method(an.strings.get(x.operation)))
            })
        })
        .collect();
    for (i, e) in events.iter_mut().enumerate() {
        e.write = match e.kind {
            EventKind::ToolCall => {
                !e.id_values("idempotency_key").is_empty()
                    || an.strings.get_opt(e.target).is_some_and(looks_like_write)
                    || methods.get(i).copied().unwrap_or(false)
            }
            EventKind::CloudApiCall => {
                let ro = e.detail_values("read_only").iter().any(|v| an.strings.get(*v) == "true");
                let op = an.strings.get_opt(e.operation).unwrap_or("");
                !ro && !["Get", "List", "Describe", "Head", "Lookup", "Search"].iter().any(|p| op.starts_with(p))
            }
            EventKind::K8sChange => true,
            _ => false,
        };
        if e.write && e.outcome.is_none() {
            e.outcome = Some((OutcomeStatus::Unknown, Some("no response recorded".into()), Vec::new()));
        }
    }
    replay_settles_the_attempt_before(&mut events[..], &by_key);
}

/// A server that answers a retry with a replay of a stored success (`Idempotent-Replayed:
/// true`, Stripe's and Paywell's convention) had applied an earlier attempt with the same
/// idempotency key: a replay is only ever of a result the server stored, and a stored 2xx is
/// an applied request. When exactly one earlier attempt of the key (of the same session) has an
/// unknown outcome (a gateway timeout, a client that gave up) and none before it succeeded,
/// that attempt took effect. With several unknown attempts before the replay, which one was
/// applied cannot be told: they stay unknown. The replay must be a request's (the answer the
/// attempt's own HTTP request got), not a tool's message.
fn replay_settles_the_attempt_before(events: &mut [EventC], by_key: &HashMap<u32, Vec<usize>>) {
    // Only a server's answer proves the replay (a request it answered with a replay of the
    // stored result, `Idempotent-Replayed`): a tool's "already processed" may be anyone's
    // earlier action.
    let proven = |i: usize| {
        events.get(i).is_some_and(|e| {
            e.replayed
                && e.related
                    .iter()
                    .any(|(x, r)| *r == "made_request" && events.get(*x as usize).is_some_and(|q| q.replayed))
        })
    };
    // Attempts of one conversation: a key reused by another session is not this action.
    let same_session = |a: usize, b: usize| match (events.get(a), events.get(b)) {
        (Some(x), Some(y)) => {
            let (sx, sy) = (x.id_values("session_id"), y.id_values("session_id"));
            sx.is_empty() || sy.is_empty() || sx.iter().any(|v| sy.contains(v))
        }
        _ => false,
    };
    let mut settle: Vec<(usize, usize)> = Vec::new();
    for list in by_key.values() {
        let Some(pos) = list.iter().position(|i| proven(*i)) else { continue };
        let replay = list[pos];
        let before: Vec<usize> = list[..pos].iter().copied().filter(|i| same_session(*i, replay)).collect();
        let before = before.as_slice();
        let status = |i: &usize| events.get(*i).and_then(|e| e.outcome.as_ref()).map(|o| o.0);
        let unknown: Vec<usize> =
            before.iter().copied().filter(|i| status(i) == Some(OutcomeStatus::Unknown)).collect();
        let applied = before.iter().any(|i| status(i) == Some(OutcomeStatus::Succeeded));
        if let ([one], false) = (unknown.as_slice(), applied) {
            settle.push((*one, replay));
        }
    }
    for (i, replay) in settle {
        let Some(e) = events.get_mut(i) else { continue };
        let Some((st, reason, codes)) = e.outcome.take() else { continue };
        if st != OutcomeStatus::Unknown {
            e.outcome = Some((st, reason, codes));
            continue;
        }
        let seen = reason.unwrap_or_else(|| "no response recorded".into());
        e.outcome = Some((
            OutcomeStatus::Succeeded,
            Some(format!(
                "the caller saw {seen}, but a later attempt with the same idempotency key (event {}) was answered with a replay of the stored result: this attempt took effect",
                super::report::event_id(replay as u32)
            )),
            codes,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changing_tools_are_writes_and_reads_are_not() {
        for w in
            ["upload_diagnostics", "aws_rotate_secret", "k8s_scale", "restart_pod", "create_ticket", "exec_command"]
        {
            assert!(looks_like_write(w), "{w}");
        }
        for r in ["get_scale", "list_uploads", "read_secret", "search_kb", "describe_rollout"] {
            assert!(!looks_like_write(r), "{r}");
        }
    }
}
