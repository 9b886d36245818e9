//! The analysis report: from the analyzer's records and the merged events to the typed
//! [`Analysis`] — identifiers (each value cited, or `unknown`/`conflict` with the reason),
//! subjects, the chain and its hops, event counts, logical actions, the side-effect verdict,
//! memory and egress summaries, sources, problems and the checklist.
//!
//! The events list can hold a hundred thousand entries: [`Report`] keeps them compact and
//! renders each one as `analysis.json` is written ([`Report`]'s `Serialize` writes exactly the
//! JSON of [`Report::into_analysis`], which builds the whole [`Analysis`] for library callers;
//! a test holds the two byte-identical).

use super::engine::{Analyzer, Fld, Rec, Tier, NONE, NO_LINE};
use super::events::{build, EventC};
use super::semantics::{LinkKey, Role};
use crate::bundle::manifest::{IdentName, SideEffect, Status};
use crate::collect::analysis::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Most files listed in `sources` beyond those with something to report.
const MAX_LISTED_SOURCES: usize = 1000;
/// Most distinct values listed per identifier.
const MAX_VALUES: usize = 50;
/// Most files named in one checklist line.
const MAX_NAMED: usize = 10;

/// What the report needs beyond the analyzer.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// The field mapping in force.
    pub mapping: MappingInfo,
    /// Checklist items the responder declared not applicable.
    pub not_applicable: Vec<String>,
    /// File-level problems (planning, files never sealed).
    pub file_problems: Vec<EvidenceProblem>,
    /// The side effect as the responder gave it.
    pub side_effect: SideEffect,
    /// Without a seed: candidate values.
    pub candidates: Vec<Candidates>,
    /// The mode.
    pub mode: Option<Mode>,
}

/// The incident analysis, compact until written.
pub struct Report {
    an: Analyzer,
    events: Vec<EventC>,
    head: Analysis,
}

fn cite(an: &Analyzer, rid: u32, field: Option<u32>) -> Citation {
    let r = &an.records[rid as usize];
    let s = an.sources.get(r.source as usize);
    let multi =
        an.records.get(rid as usize + 1).is_some_and(|n| n.source == r.source && n.offset == r.offset) || r.item > 0;
    Citation {
        path: s.map_or_else(String::new, |s| s.path.to_string()),
        sha256: s.map_or_else(String::new, |s| s.sha256.to_string()),
        offset: r.offset,
        len: r.len,
        line: (r.line != NO_LINE).then_some(r.line),
        item: multi.then_some(r.item),
        span_id: an.strings.get_opt(r.span).map(str::to_string),
        field: field.and_then(|f| an.strings.get_opt(f)).map(str::to_string),
        decompressed: r.decompressed,
    }
}

fn time_of(an: &Analyzer, id: u32) -> Option<Time> {
    an.time_of(id).map(|t| Time { at: t.text(&an.strings), zone: t.zone })
}

/// Values of one role in records of some tiers, grouped by canonical form.
struct Acc {
    value: u32,
    records: u64,
    fields: Vec<u32>,
    cites: Vec<(u32, u32)>,
    omitted: u64,
}

fn collect(an: &Analyzer, role: Role, tiers: &[Tier], max_cites: usize) -> Vec<Acc> {
    collect_where(an, role, tiers, max_cites, &|_| true)
}

/// [`collect`] over the records `keep` accepts.
fn collect_where(an: &Analyzer, role: Role, tiers: &[Tier], max_cites: usize, keep: &dyn Fn(&Rec) -> bool) -> Vec<Acc> {
    let mut by: HashMap<u32, Acc> = HashMap::new();
    let mut order: Vec<u32> = Vec::new();
    for (rid, r) in an.records.iter().enumerate() {
        if !tiers.contains(&r.tier) || !keep(r) {
            continue;
        }
        let mut seen_here: Vec<u32> = Vec::new();
        for f in an.fields_of(rid as u32).iter().filter(|f| f.role == role) {
            if seen_here.contains(&f.canon) {
                continue;
            }
            seen_here.push(f.canon);
            let a = by.entry(f.canon).or_insert_with(|| {
                order.push(f.canon);
                Acc { value: f.value, records: 0, fields: Vec::new(), cites: Vec::new(), omitted: 0 }
            });
            a.records += 1;
            if !a.fields.contains(&f.path) && a.fields.len() < 10 {
                a.fields.push(f.path);
            }
            if a.cites.len() < max_cites {
                a.cites.push((rid as u32, f.path));
            } else {
                a.omitted += 1;
            }
        }
    }
    let mut out: Vec<Acc> = order.into_iter().filter_map(|c| by.remove(&c)).collect();
    out.sort_by(|a, b| b.records.cmp(&a.records).then(an.strings.get(a.value).cmp(an.strings.get(b.value))));
    out
}

fn finding(an: &Analyzer, a: &Acc) -> ValueFinding {
    ValueFinding {
        value: an.strings.get(a.value).to_string(),
        records: a.records,
        fields: a.fields.iter().map(|f| an.strings.get(*f).to_string()).collect(),
        citations: a.cites.iter().map(|(r, f)| cite(an, *r, Some(*f))).collect(),
        citations_omitted: a.omitted,
    }
}

fn join_values(vals: &[String]) -> String {
    if vals.len() <= 4 {
        vals.join(", ")
    } else {
        format!("{}, … ({} in all)", vals[..4].join(", "), vals.len())
    }
}

impl Report {
    /// Builds the report.
    pub fn build(mut an: Analyzer, ctx: ReportContext) -> Report {
        tiers(&mut an);
        if let Some(p) = std::env::var_os("CUSTODY_DEBUG_RECORDS") {
            an.debug_dump(std::path::Path::new(&p));
        }
        let events = build(&an);
        let head = head(&an, &events, &ctx);
        Report { an, events, head }
    }

    /// The small parts (everything but the events' entries).
    pub fn head(&self) -> &Analysis {
        &self.head
    }

    /// Renders one event.
    fn event(&self, i: usize) -> Option<Event> {
        render(&self.an, &self.events, i)
    }

    /// What `preserve` reports: the head without its long lists, with the events to act on
    /// (unknown outcomes of the incident's writes, attempts of duplicated actions).
    pub fn summary(&self) -> AnalysisSummary {
        let h = &self.head;
        let dup: BTreeSet<&str> =
            h.actions.iter().filter(|a| a.duplicate).flat_map(|a| a.attempts.iter().map(String::as_str)).collect();
        let mut notable = Vec::new();
        let mut notable_omitted = 0u64;
        for (i, e) in self.events.iter().enumerate() {
            let unknown_write =
                e.tie == Tie::Linked && e.write && e.outcome.as_ref().map(|o| o.0) == Some(OutcomeStatus::Unknown);
            if !unknown_write && !dup.contains(event_id(i as u32).as_str()) {
                continue;
            }
            if notable.len() < AnalysisSummary::MAX_NOTABLE {
                notable.extend(self.event(i));
            } else {
                notable_omitted += 1;
            }
        }
        let not_analysed: Vec<&SourceSummary> = h.sources.iter().filter(|s| s.not_analysed.is_some()).collect();
        AnalysisSummary {
            format: h.format.clone(),
            mode: h.mode,
            seeds: h.seeds.clone(),
            identifiers: h.identifiers.clone(),
            subjects: h.subjects.clone(),
            chain: h.chain.clone(),
            event_counts: h.event_counts.clone(),
            actions: h.actions.clone(),
            side_effect: h.side_effect.clone(),
            memory: h.memory.clone(),
            egress: h.egress.clone(),
            candidates: h.candidates.clone(),
            notable_events: notable,
            notable_omitted,
            not_analysed: not_analysed.iter().take(AnalysisSummary::MAX_NOTABLE).map(|s| (*s).clone()).collect(),
            not_analysed_omitted: not_analysed.len().saturating_sub(AnalysisSummary::MAX_NOTABLE) as u64,
            checklist: h.checklist.clone(),
            evidence_problems: h.evidence_problems.clone(),
            stats: h.stats.clone(),
        }
    }

    /// Files per evidence kind, over every source (the listed `sources` stop at 1000).
    pub fn evidence_kinds(&self) -> BTreeMap<String, u64> {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for s in &self.an.sources {
            let (kind, _) = kind_of(s.format.kind(), &s.folder_kind);
            *kinds.entry(kind).or_default() += 1;
        }
        kinds
    }

    /// The whole analysis, built in memory.
    pub fn into_analysis(self) -> Analysis {
        let mut a = self.head.clone();
        a.events = (0..self.events.len().min(self.an.limits.max_events)).filter_map(|i| self.event(i)).collect();
        a
    }
}

pub(crate) fn event_id(i: u32) -> String {
    format!("e{}", i + 1)
}

fn render(an: &Analyzer, events: &[EventC], i: usize) -> Option<Event> {
    let e = events.get(i)?;
    let s = |id: u32| an.strings.get_opt(id).map(str::to_string);
    let mut ids = BTreeMap::new();
    for (k, vals) in e.ids.iter() {
        let v: Vec<&str> = vals.iter().map(|v| an.strings.get(*v)).collect();
        ids.insert(k.to_string(), v.join(","));
    }
    let mut detail = BTreeMap::new();
    for (k, vals) in e.detail.iter() {
        let v: Vec<&str> = vals.iter().map(|v| an.strings.get(*v)).collect();
        detail.insert(k.to_string(), v.join(","));
    }
    Some(Event {
        id: event_id(i as u32),
        kind: e.kind,
        start: time_of(an, e.start),
        end: time_of(an, e.end),
        actor: s(e.actor),
        principal: s(e.principal),
        subject: s(e.subject),
        target: s(e.target),
        operation: s(e.operation),
        outcome: e.outcome.as_ref().map(|(st, reason, codes)| Outcome {
            status: *st,
            reason: reason.clone(),
            codes: codes.iter().map(|c| an.strings.get(*c).to_string()).collect::<BTreeSet<_>>().into_iter().collect(),
            replayed: e.replayed,
        }),
        write: e.write,
        ids,
        detail,
        merged_by: e.rules.to_vec(),
        tie: e.tie,
        related: e.related.iter().map(|(j, r)| Relation { event: event_id(*j), relation: r.to_string() }).collect(),
        citations: e.recs.iter().map(|r| cite(an, *r, None)).collect(),
    })
}

/// Chain, memory and time-and-address tiers, computed once every record is in.
fn tiers(an: &mut Analyzer) {
    let mark = |an: &mut Analyzer, values: &[u32], tier: Tier, filter: &dyn Fn(&Analyzer, u32) -> bool| -> Vec<u32> {
        let mut got = Vec::new();
        for c in values {
            // A short numeric deployment id reaches only the records naming it as one.
            let weak = an.hops.get(c).is_some_and(|r| super::engine::weak_deployment(*r, an.strings.get(*c)));
            for &rid in an.postings.get(c).map(Vec::as_slice).unwrap_or_default() {
                if weak && !an.fields_of(rid).iter().any(|f| f.canon == *c && f.role == Role::Link(LinkKey::DeploymentId))
                {
                    continue;
                }
                if an.records[rid as usize].tier == Tier::None && filter(an, rid) {
                    got.push(rid);
                }
            }
        }
        for &rid in &got {
            an.records[rid as usize].tier = tier;
        }
        got
    };
    // Chain: records holding the incident's deployment ids, then the change ids those
    // records (and the incident's) name. Records of other sessions or traces are not the
    // chain: they hold their own session.
    let own_session: HashSet<u32> = an
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.tier == Tier::Linked)
        .flat_map(|(i, _)| {
            an.fields_of(i as u32)
                .iter()
                .filter(|f| f.role == Role::Ident(IdentName::SessionId))
                .map(|f| f.canon)
                .collect::<Vec<_>>()
        })
        .collect();
    let infra = move |an: &Analyzer, rid: u32| {
        an.fields_of(rid)
            .iter()
            .all(|f| !matches!(f.role, Role::Ident(IdentName::SessionId)) || own_session.contains(&f.canon))
    };
    let deploy = own_deployment_hops(an);
    let got = mark(an, &deploy, Tier::Chain, &infra);
    // The deployment ids of the rollouts reached that way are the incident's deployments too
    // (the other rollouts of their release are not).
    let mut deploy_set: HashSet<u32> = deploy.iter().copied().collect();
    for &rid in &got {
        let fields = an.fields_of(rid);
        if fields.iter().any(|f| f.role == Role::Link(LinkKey::ReleaseTarget) && deploy_set.contains(&f.canon)) {
            let ids: Vec<u32> =
                fields.iter().filter(|f| f.role == Role::Link(LinkKey::DeploymentId)).map(|f| f.canon).collect();
            deploy_set.extend(ids);
        }
    }
    let mut changes: Vec<u32> =
        an.hops.iter().filter(|(_, r)| **r == Role::Ident(IdentName::ChangeId)).map(|(c, _)| *c).collect();
    for rid in got {
        for f in an.fields_of(rid) {
            if f.role == Role::Ident(IdentName::ChangeId) && !changes.contains(&f.canon) {
                changes.push(f.canon);
            }
        }
    }
    // A change's records, but not other deployments of the same change (its other waves).
    let chain_ok = move |an: &Analyzer, rid: u32| {
        let fields = an.fields_of(rid);
        let other_run =
            fields.iter().any(|f| f.role == Role::Link(LinkKey::DeploymentId) && !deploy_set.contains(&f.canon));
        let src = &an.sources[an.records[rid as usize].source as usize];
        let k = src.format.kind().unwrap_or("");
        !other_run
            && (matches!(k, "deploy" | "cluster" | "cloud")
                || fields.iter().all(|f| !matches!(f.role, Role::Ident(IdentName::SessionId | IdentName::TraceId))))
    };
    let got2 = mark(an, &changes, Tier::Chain, &chain_ok);
    // The workload's owner (the Rollout of a ReplicaSet): its updates, promotions and rollout
    // steps are the deployment's history.
    let mut owners: Vec<u32> = Vec::new();
    for rid in an.records.iter().enumerate().filter(|(_, r)| r.tier == Tier::Chain).map(|(i, _)| i as u32).chain(got2) {
        for f in an.fields_of(rid) {
            if f.role == Role::Link(LinkKey::Owner) && !owners.contains(&f.canon) {
                owners.push(f.canon);
            }
        }
    }
    mark(an, &owners, Tier::Chain, &chain_ok);
    // Joined: writes of memory records the incident read.
    let memory: Vec<u32> =
        an.hops.iter().filter(|(_, r)| **r == Role::Link(LinkKey::MemoryId)).map(|(c, _)| *c).collect();
    let has_write = |an: &Analyzer, rid: u32| {
        an.evs_of(rid).any(|e| {
            an.evs.get(e as usize).is_some_and(|ev| ev.kind == crate::collect::analysis::EventKind::MemoryWrite)
        })
    };
    mark(an, &memory, Tier::Joined, &has_write);
    // Time and address: proxy lines without ids from the agent's source addresses, within
    // the incident's time.
    let times: Vec<i128> = an
        .records
        .iter()
        .filter(|r| r.tier == Tier::Linked)
        .filter_map(|r| an.time_of(r.time).and_then(|t| t.nanos()))
        .collect();
    let (Some(lo), Some(hi)) = (times.iter().min().copied(), times.iter().max().copied()) else { return };
    let w = i128::from(an.limits.join_window_ms) * 1_000_000;
    let (lo, hi) = (lo.saturating_sub(w), hi.saturating_add(w));
    let addrs: Vec<u32> =
        an.hops.iter().filter(|(_, r)| **r == Role::Link(LinkKey::SourceAddress)).map(|(c, _)| *c).collect();
    let in_window = move |an: &Analyzer, rid: u32| {
        let r = &an.records[rid as usize];
        let proxy = an.evs_of(rid).any(|e| {
            an.evs.get(e as usize).is_some_and(|ev| ev.kind == crate::collect::analysis::EventKind::EgressRequest)
        });
        let t = an.time_of(r.time).and_then(|t| t.nanos());
        // A line whose request id a record of another trace or session holds is that
        // session's request (another conversation's call from the same pod): never joined to
        // this incident by address and time.
        let other_session = |other: u32| {
            an.fields_of(other).iter().any(|g| {
                matches!(g.role, Role::Ident(IdentName::SessionId | IdentName::TraceId))
                    && !an.linked.contains_key(&g.canon)
            })
        };
        // A line that names a trace or session of its own, not the incident's, is that
        // session's request.
        let names_other_session = an.fields_of(rid).iter().any(|g| {
            matches!(g.role, Role::Ident(IdentName::SessionId | IdentName::TraceId))
                && !an.linked.contains_key(&g.canon)
        });
        let known_elsewhere = names_other_session
            || an.fields_of(rid).iter().any(|f| {
                f.role == Role::Link(LinkKey::RequestId)
                    && an
                        .postings
                        .get(&f.canon)
                        .is_some_and(|rs| rs.iter().any(|&other| other != rid && other_session(other)))
            });
        proxy && !known_elsewhere && t.is_some_and(|t| t >= lo && t <= hi)
    };
    let got = mark(an, &addrs, Tier::TimeAndAddress, &in_window);
    // What decided those requests (an ext_authz decision naming the request id).
    let mut requests: Vec<u32> = Vec::new();
    for rid in got {
        for f in an.fields_of(rid) {
            if f.role == Role::Link(LinkKey::RequestId) && !requests.contains(&f.canon) {
                requests.push(f.canon);
            }
        }
    }
    let decision = |an: &Analyzer, rid: u32| {
        an.evs_of(rid).any(|e| {
            an.evs.get(e as usize).is_some_and(|ev| ev.kind == crate::collect::analysis::EventKind::PolicyDecision)
        })
    };
    mark(an, &requests, Tier::Joined, &decision);
}

/// The small parts of the analysis.
fn head(an: &Analyzer, events: &[EventC], ctx: &ReportContext) -> Analysis {
    let na = |item: &str| ctx.not_applicable.iter().any(|n| n == item);
    let linked: Vec<&EventC> = events.iter().filter(|e| e.tie == Tie::Linked).collect();
    let writes: Vec<&EventC> = linked.iter().copied().filter(|e| e.write).collect();
    let s = |id: u32| an.strings.get(id).to_string();
    let mode = ctx.mode.unwrap_or(if an.inferred() {
        Mode::Inferred
    } else if an.has_seeds() {
        Mode::Search
    } else {
        Mode::Candidates
    });
    let searched = mode != Mode::Candidates;
    let seeds = an.seed_list();
    let maxc = an.limits.max_citations;

    // Identifiers.
    let mut identifiers = Vec::new();
    let incident = [Tier::Linked];
    for name in IdentName::ALL {
        let seed = seeds.iter().find(|sd| sd.ident == Some(name));
        let mut accs = collect(an, Role::Ident(name), &incident, maxc);
        let mut chain_accs = Vec::new();
        if matches!(name, IdentName::BundleId | IdentName::ChangeId | IdentName::RolloutWave) {
            chain_accs = collect(an, Role::Ident(name), &[Tier::Chain], maxc);
        }
        let vals = |a: &[Acc]| a.iter().map(|x| s(x.value)).collect::<Vec<_>>();
        let (status, value, why) = if na(name.as_str()) {
            (IdentStatus::NotApplicable, None, "declared not applicable by the responder".to_string())
        } else if let Some(sd) = seed {
            let found = accs.iter().any(|a| {
                an.strings.get(a.value) == sd.value
                    || super::values::canon(an.strings.get(a.value)) == super::values::canon(&sd.value)
            });
            match (sd.origin, found || sd.records > 0) {
                (SeedOrigin::Inferred, _) => (
                    IdentStatus::Inferred,
                    Some(sd.value.clone()),
                    "the only value of this identifier in the evidence: used as the seed".to_string(),
                ),
                (_, true) => (
                    IdentStatus::Given,
                    Some(sd.value.clone()),
                    format!(
                        "given ({}); found in {} record(s)",
                        if sd.origin == SeedOrigin::Spec { "spec" } else { "flag" },
                        sd.records
                    ),
                ),
                (_, false) => {
                    (IdentStatus::NotObserved, Some(sd.value.clone()), "given, but no record holds it".to_string())
                }
            }
        } else if !searched {
            (
                IdentStatus::Unknown,
                None,
                "not given; no seed was given or could be inferred, so nothing was linked (see candidates)".to_string(),
            )
        } else {
            decide(an, name, &accs, &chain_accs, &writes, &linked)
        };
        if !chain_accs.is_empty() {
            for c in chain_accs {
                if !accs.iter().any(|a| {
                    super::values::canon(an.strings.get(a.value)) == super::values::canon(an.strings.get(c.value))
                }) {
                    accs.push(c);
                }
            }
        }
        let _ = vals;
        identifiers.push(IdentifierFinding {
            name,
            status,
            value,
            why,
            values: accs.iter().take(MAX_VALUES).map(|a| finding(an, a)).collect(),
        });
    }

    // Subjects: who the agent acted for, from what the incident did. A memory store's rows
    // (no event of their own) say whose memory it is — a namespace as often as a person
    // (OpenMemory's `user_id: "sre-platform"`): not who the agent acted for.
    let memory_state = |r: &Rec| {
        r.evs.0 == r.evs.1
            && an.sources.get(r.source as usize).and_then(|s| s.format.kind()).is_some_and(|k| k == "memory")
    };
    let subjects: Vec<ValueFinding> = collect_where(an, Role::Subject, &incident, maxc, &|r| !memory_state(r))
        .iter()
        .take(MAX_VALUES)
        .map(|a| finding(an, a))
        .collect();

    // Chain. The deployment that served the incident is the one named by the records of its
    // session (a trace crosses services, each with its own deployment).
    let session = identifiers.iter().find(|f| f.name == IdentName::SessionId).and_then(|f| f.value.clone());
    let agent = identifiers.iter().find(|f| f.name == IdentName::AgentId).and_then(|f| f.value.clone());
    let deployments = deployments_of(an, session.as_deref(), agent.as_deref(), maxc);
    let chain = chain(an, &identifiers, &deployments, ctx);

    // Counts.
    let mut event_counts: BTreeMap<EventKind, KindCount> = BTreeMap::new();
    for e in events {
        let c = event_counts.entry(e.kind).or_insert(KindCount { events: 0, records: 0 });
        c.events += 1;
        c.records += e.recs.len() as u64;
    }

    // Actions.
    let mut by_key: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::ToolCall && e.tie == Tie::Linked {
            for &k in e.id_values("idempotency_key") {
                by_key.entry(k).or_default().push(i);
            }
        }
    }
    // Calls without a key: the same tool called again with the same arguments in one trace
    // (a write only: reading twice changes nothing).
    let mut same_call: BTreeMap<(u32, u32, u32), Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::ToolCall && e.tie == Tie::Linked && e.write && e.id_values("idempotency_key").is_empty()
        {
            // The same arguments; or, without their digest, the one call id two executions
            // carry (a graph node retried keeps the model's call id).
            let Some(&t) = e.id_values("trace_id").first() else { continue };
            let same = match (e.detail_values("args_sha").first(), e.id_values("call_id")) {
                (Some(&a), _) => a,
                (None, [c]) => *c,
                _ => continue,
            };
            if e.target != NONE {
                same_call.entry((t, e.target, same)).or_default().push(i);
            }
        }
    }
    let groups = by_key
        .iter()
        .map(|(k, list)| (Some(*k), list))
        .chain(same_call.values().filter(|l| l.len() > 1).map(|list| (None, list)));
    let mut actions = Vec::new();
    for (k, list) in groups {
        let st = |w: OutcomeStatus| {
            list.iter().filter(|i| events[**i].outcome.as_ref().map(|o| o.0) == Some(w)).count() as u64
        };
        let took = list
            .iter()
            .filter(|i| {
                events[**i].outcome.as_ref().map(|o| o.0) == Some(OutcomeStatus::Succeeded) && !events[**i].replayed
            })
            .count() as u64;
        actions.push(Action {
            idempotency_key: k.map(s),
            grouped_by: if k.is_some() { ActionGrouping::IdempotencyKey } else { ActionGrouping::SameCall },
            target: list.iter().find_map(|i| an.strings.get_opt(events[*i].target)).map(str::to_string),
            attempts: list.iter().map(|i| event_id(*i as u32)).collect(),
            took_effect: took,
            unknown: st(OutcomeStatus::Unknown),
            failed: st(OutcomeStatus::Failed),
            duplicate: took > 1,
        });
    }

    // Side effect.
    let side_effect = side_effect(an, events, &writes, &actions, ctx);

    // Memory.
    let memory = memory(an, events);

    // Egress.
    let egress = egress(an, events);

    // Sources.
    let mut incident_per_source: HashMap<u32, u64> = HashMap::new();
    let mut last: Option<(u32, u64)> = None;
    for r in an.records.iter().filter(|r| r.tier == Tier::Linked) {
        if last != Some((r.source, r.offset)) {
            *incident_per_source.entry(r.source).or_default() += 1;
        }
        last = Some((r.source, r.offset));
    }
    let summary = |i: usize| {
        let src = &an.sources[i];
        let (kind, origin) = kind_of(src.format.kind(), &src.folder_kind);
        SourceSummary {
            path: src.path.to_string(),
            sha256: src.sha256.to_string(),
            size: src.size,
            format: src.format.name().to_string(),
            format_origin: src.format_origin.to_string(),
            kind: kind.to_string(),
            kind_origin: origin.to_string(),
            compression: src.compression.map(str::to_string),
            not_analysed: src.not_analysed.clone(),
            bytes_scanned: src.bytes_scanned,
            lines: src.lines,
            records: src.records,
            incident_records: incident_per_source.get(&(i as u32)).copied().unwrap_or(0),
            problems: src.problems,
        }
    };
    let notable = |i: usize| {
        let src = &an.sources[i];
        incident_per_source.contains_key(&(i as u32))
            || src.problems > 0
            || src.not_analysed.is_some()
            || src.format_origin == "override"
    };
    let mut listed: Vec<usize> = (0..an.sources.len()).filter(|i| notable(*i)).take(MAX_LISTED_SOURCES).collect();
    let room = MAX_LISTED_SOURCES.saturating_sub(listed.len());
    listed.extend((0..an.sources.len()).filter(|i| !notable(*i)).take(room));
    listed.sort_unstable();
    let sources: Vec<SourceSummary> = listed.iter().map(|i| summary(*i)).collect();
    let sources_omitted = (an.sources.len() - sources.len()) as u64;

    // Problems.
    let problems: Vec<RecordProblem> = an
        .problems
        .iter()
        .map(|p| RecordProblem {
            path: an.sources.get(p.source as usize).map_or_else(|| "-".to_string(), |s| s.path.to_string()),
            offset: p.offset,
            len: p.len,
            line: p.line,
            decompressed: p.decompressed,
            problem: p.problem.type_name().to_string(),
            detail: p.problem.detail(),
        })
        .collect();
    let mut evidence_problems = ctx.file_problems.clone();
    for (i, src) in an.sources.iter().enumerate() {
        if let Some(why) = &src.not_analysed {
            if i < 100_000 {
                evidence_problems.push(EvidenceProblem {
                    path: src.path.to_string(),
                    problem: "not_analysed".into(),
                    detail: format!("{} ({}): {why}", src.path, human_size(src.size)),
                });
            }
        }
    }
    for p in &problems {
        let at = match (p.line, p.offset) {
            (Some(l), _) => format!(":{l}"),
            (None, Some(o)) => format!("@{o}"),
            _ => String::new(),
        };
        evidence_problems.push(EvidenceProblem {
            path: format!("{}{at}", p.path),
            problem: p.problem.clone(),
            detail: p.detail.clone(),
        });
    }
    if an.problems_omitted > 0 {
        evidence_problems.push(EvidenceProblem {
            path: "-".into(),
            problem: "problems_omitted".into(),
            detail: format!("{} more record problem(s) not listed", an.problems_omitted),
        });
    }

    let stats = Stats {
        records_seen: an.records_seen,
        lines_seen: an.lines_seen,
        records_kept: an.records.len() as u64,
        incident_records: an.records.iter().filter(|r| r.tier == Tier::Linked).count() as u64,
        records_deferred: an.records_deferred,
        records_dropped: an.records_dropped,
        rereads: an.rereads,
        join_keys_searched: an.needles(usize::MAX).is_some_and(|n| n.join_keys),
    };

    let mut a = Analysis {
        format: ANALYSIS_FORMAT_V2.into(),
        mode,
        seeds,
        field_mapping: ctx.mapping.clone(),
        identifiers,
        subjects,
        chain,
        events: Vec::new(),
        events_omitted: events.len().saturating_sub(an.limits.max_events) as u64,
        event_counts,
        actions,
        side_effect,
        memory,
        egress,
        candidates: ctx.candidates.clone(),
        sources,
        sources_omitted,
        problems,
        problems_omitted: an.problems_omitted,
        checklist: Vec::new(),
        evidence_problems,
        stats,
    };
    a.checklist = checklist(an, events, &a, ctx);
    a
}

/// Kind by content, else by the folder's name when it names a kind.
fn kind_of(content: Option<&'static str>, folder: &str) -> (String, &'static str) {
    match content {
        Some(k) => (k.to_string(), "content"),
        None => {
            const KINDS: [&str; 10] = [
                "traces",
                "policy",
                "approvals",
                "memory",
                "egress",
                "logs",
                "deploy",
                "cloud",
                "cluster",
                "attachments",
            ];
            // Folders named after the system that exported them are hints too.
            let f = folder.to_ascii_lowercase();
            let synonym = crate::collect::folder_kind(&f);
            match synonym {
                Some(k) => (k.to_string(), "folder"),
                None if KINDS.contains(&f.as_str()) => (f, "folder"),
                None => ("other".to_string(), "folder"),
            }
        }
    }
}

pub(crate) fn human_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// The deployment ids of the incident's records that also name its agent, else its session.
/// Only when no record of the incident names either are all of its records' deployments
/// taken.
fn deployments_of(an: &Analyzer, session: Option<&str>, agent: Option<&str>, maxc: usize) -> Vec<Acc> {
    // Whether a linked record names the agent or the session (then only such records name
    // the deployment that served the incident).
    let mut named = false;
    // A deployment id (`deployment.id`, a CD run) when one is recorded, else the rollout of
    // the release to the target the pod labels name (Cloud Deploy), else the workload (the
    // ReplicaSet the pod belonged to).
    for role in [Role::Link(LinkKey::DeploymentId), Role::Link(LinkKey::ReleaseTarget), Role::Link(LinkKey::Workload)] {
        if role == Role::Link(LinkKey::ReleaseTarget) {
            let rollouts = rollouts_of(an, session, agent, maxc);
            if !rollouts.is_empty() {
                return rollouts;
            }
            continue;
        }
        let all = collect(an, role, &[Tier::Linked], maxc);
        if all.is_empty() {
            continue;
        }
        // The records of the incident's agent, else of its session, name the deployment that
        // served it (a trace crosses services, each with its own deployment: the API that
        // started a workflow is not the agent that ran it, and the MCP server the agent called
        // has pods and releases of its own).
        for (ident, value) in [(IdentName::AgentId, agent), (IdentName::SessionId, session)] {
            let Some(c) = value.and_then(|s| an.strings.lookup(&super::values::canon(s))) else { continue };
            let mut own: HashSet<u32> = HashSet::new();
            for (i, _) in an.records.iter().enumerate().filter(|(_, r)| r.tier == Tier::Linked) {
                let fields = an.fields_of(i as u32);
                if fields.iter().any(|f| f.role == Role::Ident(ident) && f.canon == c) {
                    named = true;
                    own.extend(fields.iter().filter(|f| f.role == role).map(|f| f.canon));
                }
            }
            if !own.is_empty() {
                return all
                    .into_iter()
                    .filter(|a| {
                        own.contains(&an.strings.lookup(&super::values::canon(an.strings.get(a.value))).unwrap_or(NONE))
                    })
                    .collect();
            }
        }
        // Records of the agent or the session exist but name no deployment of this kind: another
        // service's deployment in the same trace is not theirs.
        if !named {
            return all;
        }
    }
    Vec::new()
}

/// The deployment ids, workloads and release/target pairs that may be the incident's (for
/// the chain tier): those
/// named by its records that name an agent or a session, when there are such records (a tool
/// server's pods in the same trace are not the agent's deployment); else every one its records
/// name.
fn own_deployment_hops(an: &Analyzer) -> Vec<u32> {
    let deploy_role =
        |r: Role| matches!(r, Role::Link(LinkKey::DeploymentId | LinkKey::Workload | LinkKey::ReleaseTarget));
    let all: Vec<u32> = an.hops.iter().filter(|(_, r)| deploy_role(**r)).map(|(c, _)| *c).collect();
    // As `deployments_of` chooses: the agent's records first (a tool server that got the
    // session in its baggage logs it next to its own pod), else the session's.
    let mut named = false;
    let (mut by_agent, mut by_session): (HashSet<u32>, HashSet<u32>) = (HashSet::new(), HashSet::new());
    for (i, _) in an.records.iter().enumerate().filter(|(_, r)| r.tier == Tier::Linked) {
        let fields = an.fields_of(i as u32);
        let deployments = fields.iter().filter(|f| deploy_role(f.role)).map(|f| f.canon);
        if fields.iter().any(|f| f.role == Role::Ident(IdentName::AgentId)) {
            named = true;
            by_agent.extend(deployments);
        } else if fields.iter().any(|f| f.role == Role::Ident(IdentName::SessionId)) {
            named = true;
            by_session.extend(deployments);
        }
    }
    let own = if by_agent.is_empty() { by_session } else { by_agent };
    if named {
        all.into_iter().filter(|c| own.contains(c)).collect()
    } else {
        all
    }
}

/// The deployments (rollout ids) of the chain's records that name a release/target pair the
/// incident's records name: of the records of its agent, else of its session, else of all
/// of them (as [`deployments_of`] chooses).
fn rollouts_of(an: &Analyzer, session: Option<&str>, agent: Option<&str>, maxc: usize) -> Vec<Acc> {
    let role = Role::Link(LinkKey::ReleaseTarget);
    let pairs_where = |keep: &dyn Fn(&[Fld]) -> bool| -> HashSet<u32> {
        an.records
            .iter()
            .enumerate()
            .filter(|(i, r)| r.tier == Tier::Linked && keep(an.fields_of(*i as u32)))
            .flat_map(|(i, _)| {
                an.fields_of(i as u32).iter().filter(|f| f.role == role).map(|f| f.canon).collect::<Vec<_>>()
            })
            .collect()
    };
    let mut pairs = HashSet::new();
    for (ident, value) in [(IdentName::AgentId, agent), (IdentName::SessionId, session)] {
        let Some(c) = value.and_then(|s| an.strings.lookup(&super::values::canon(s))) else { continue };
        pairs = pairs_where(&|fs: &[Fld]| fs.iter().any(|f| f.role == Role::Ident(ident) && f.canon == c));
        if !pairs.is_empty() {
            break;
        }
    }
    // Only when no record of the incident names an agent or a session do all its records'
    // pairs count (as for the other deployments: a tool server's pods are not the agent's).
    let named = an.records.iter().enumerate().any(|(i, r)| {
        r.tier == Tier::Linked
            && an
                .fields_of(i as u32)
                .iter()
                .any(|f| matches!(f.role, Role::Ident(IdentName::AgentId | IdentName::SessionId)))
    });
    if pairs.is_empty() && !named {
        pairs = pairs_where(&|_| true);
    }
    let mut by: Vec<Acc> = Vec::new();
    // Each rollout id's place in `by`, by its canonical value: one lookup per field, however
    // many rollouts an export holds.
    let mut at: HashMap<u32, usize> = HashMap::new();
    for (rid, r) in an.records.iter().enumerate() {
        if r.tier != Tier::Chain {
            continue;
        }
        let fields = an.fields_of(rid as u32);
        if !fields.iter().any(|f| f.role == role && pairs.contains(&f.canon)) {
            continue;
        }
        for f in fields.iter().filter(|f| f.role == Role::Link(LinkKey::DeploymentId)) {
            let i = *at.entry(f.canon).or_insert_with(|| {
                by.push(Acc { value: f.value, records: 0, fields: Vec::new(), cites: Vec::new(), omitted: 0 });
                by.len() - 1
            });
            let Some(a) = by.get_mut(i) else { continue };
            a.records += 1;
            if a.fields.len() < 10 && !a.fields.contains(&f.path) {
                a.fields.push(f.path);
            }
            if a.cites.len() < maxc {
                a.cites.push((rid as u32, f.path));
            } else {
                a.omitted += 1;
            }
        }
    }
    by
}

/// Records (of the incident or its chain) that show the session naming a release/target
/// pair and the deployment (a rollout) naming the same pair: `(pair, citations)`.
fn via_release_target(an: &Analyzer, session: &str, deployment: &str) -> Option<(String, Vec<Citation>)> {
    let cs = an.strings.lookup(&super::values::canon(session))?;
    let cd = an.strings.lookup(&super::values::canon(deployment))?;
    let in_view = |rid: usize| an.records.get(rid).is_some_and(|r| matches!(r.tier, Tier::Linked | Tier::Chain));
    let pairs = |rid: usize| {
        an.fields_of(rid as u32)
            .iter()
            .filter(|f| f.role == Role::Link(LinkKey::ReleaseTarget))
            .copied()
            .collect::<Vec<Fld>>()
    };
    // One pass for the pairs the session's records name (the first record naming each), one
    // for a record of the deployment naming one of them: linear in the records, however many
    // lines of the session carry the pod labels.
    let mut of_session: HashMap<u32, (usize, Fld)> = HashMap::new();
    for rid in (0..an.records.len()).filter(|&i| in_view(i)) {
        let ps = pairs(rid);
        if ps.is_empty() || !an.values_of(rid as u32).any(|c| c == cs) {
            continue;
        }
        for f in ps {
            of_session.entry(f.canon).or_insert((rid, f));
        }
    }
    if of_session.is_empty() {
        return None;
    }
    for rid in (0..an.records.len()).filter(|&i| in_view(i)) {
        let Some((a, f)) = pairs(rid).iter().find_map(|p| of_session.get(&p.canon).filter(|(a, _)| *a != rid)) else {
            continue;
        };
        if !an.values_of(rid as u32).any(|c| c == cd) {
            continue;
        }
        let path = an.fields_of(rid as u32).iter().find(|x| x.canon == cd).map(|x| x.path);
        return Some((
            an.strings.get(f.value).to_string(),
            vec![cite(an, *a as u32, Some(f.path)), cite(an, rid as u32, path)],
        ));
    }
    None
}

/// Records that show `x` and `y` through the deployment's owners: each value in a record of
/// the deployment or of an object that owns it (a Cloud Deploy rollout's release and target,
/// a ReplicaSet's Rollout), when no one record shows both. Citations: the record of `x`, the
/// deployment's, the record of `y`.
fn via_owner(an: &Analyzer, deployment: &str, x: &str, y: &str) -> Vec<Citation> {
    let lookup = |v: &str| an.strings.lookup(&super::values::canon(v));
    let (Some(cd), Some(cx), Some(cy)) = (lookup(deployment), lookup(x), lookup(y)) else { return Vec::new() };
    let in_view = |rid: usize| matches!(an.records[rid].tier, Tier::Linked | Tier::Chain);
    let dep: Vec<u32> = (0..an.records.len())
        .filter(|&i| in_view(i) && an.fields_of(i as u32).iter().any(|f| f.canon == cd))
        .map(|i| i as u32)
        .collect();
    let owners: HashSet<u32> = dep
        .iter()
        .flat_map(|&r| an.fields_of(r).iter().filter(|f| f.role == Role::Link(LinkKey::Owner)).map(|f| f.canon))
        .collect();
    if owners.is_empty() {
        return Vec::new();
    }
    let of = |c: u32| {
        (0..an.records.len()).find(|&i| {
            in_view(i)
                && an.values_of(i as u32).any(|v| v == c)
                && an
                    .fields_of(i as u32)
                    .iter()
                    .any(|f| f.canon == cd || (f.role == Role::Link(LinkKey::Owner) && owners.contains(&f.canon)))
        })
    };
    let (Some(rx), Some(ry), Some(&rd)) = (of(cx), of(cy), dep.first()) else { return Vec::new() };
    let mut out: Vec<Citation> = Vec::new();
    let mut seen: Vec<usize> = Vec::new();
    for (r, c) in [(rx, cx), (rd as usize, cd), (ry, cy)] {
        if seen.contains(&r) {
            continue;
        }
        seen.push(r);
        let path = an.fields_of(r as u32).iter().find(|f| f.canon == c).map(|f| f.path);
        out.push(cite(an, r as u32, path));
    }
    out
}

/// One identifier from the evidence (no seed for it).
fn decide(
    an: &Analyzer,
    name: IdentName,
    accs: &[Acc],
    chain: &[Acc],
    writes: &[&EventC],
    linked: &[&EventC],
) -> (IdentStatus, Option<String>, String) {
    let s = |id: u32| an.strings.get(id).to_string();
    let one = |vals: Vec<String>, source: &str| -> (IdentStatus, Option<String>, String) {
        match vals.len() {
            0 => (IdentStatus::Unknown, None, format!("not found in the evidence ({source})")),
            1 => (IdentStatus::Found, vals.into_iter().next(), source.to_string()),
            n => (IdentStatus::Conflict, None, format!("{n} values ({}) {source}: none is picked", join_values(&vals))),
        }
    };
    let distinct = |v: Vec<String>| {
        let mut seen = BTreeSet::new();
        v.into_iter().filter(|x| seen.insert(super::values::canon(x))).collect::<Vec<_>>()
    };
    let of_events = |evs: &[&EventC], key: &str| {
        distinct(evs.iter().flat_map(|e| e.id_values(key).iter().map(|v| s(*v))).collect())
    };
    let principals =
        |evs: &[&EventC]| distinct(evs.iter().filter(|e| e.principal != NONE).map(|e| s(e.principal)).collect());
    let targets = |evs: &[&EventC]| {
        let t: BTreeSet<String> = evs.iter().filter_map(|e| an.strings.get_opt(e.target)).map(str::to_string).collect();
        t.into_iter().collect::<Vec<_>>().join(", ")
    };
    let all = distinct(accs.iter().map(|a| s(a.value)).collect());
    match name {
        IdentName::TraceId => {
            if all.len() > 1 {
                let w = of_events(writes, "trace_id");
                if w.len() == 1 {
                    return (
                        IdentStatus::Found,
                        w.into_iter().next(),
                        format!(
                            "the trace of the side-effecting call(s) ({}); {} traces in the incident",
                            targets(writes),
                            all.len()
                        ),
                    );
                }
            }
            one(all, "in the incident's records")
        }
        IdentName::SessionId | IdentName::AgentId => {
            if name == IdentName::AgentId && all.is_empty() {
                let names = distinct(
                    collect(an, Role::Link(LinkKey::AgentName), &[Tier::Linked], 1)
                        .iter()
                        .map(|a| s(a.value))
                        .collect(),
                );
                let (st, v, why) = one(names, "from the agent's display name (no agent id in the evidence)");
                return (st, v, why);
            }
            one(all, "in the incident's records")
        }
        IdentName::ToolPrincipal => {
            let tool_writes: Vec<&EventC> =
                keyed_first(writes.iter().copied().filter(|e| e.kind == EventKind::ToolCall).collect());
            let p = principals(&tool_writes);
            if !p.is_empty() {
                return one(
                    p,
                    &format!("the principal of the side-effecting tool call(s) ({})", targets(&tool_writes)),
                );
            }
            let other: Vec<&EventC> = writes.iter().copied().filter(|e| e.kind != EventKind::ToolCall).collect();
            let p = principals(&other);
            if !p.is_empty() {
                return one(p, &format!("the principal of the side-effecting call(s) ({})", targets(&other)));
            }
            let calls: Vec<&EventC> = linked.iter().copied().filter(|e| e.kind == EventKind::ToolCall).collect();
            let p = principals(&calls);
            if p.len() > 1 {
                return (
                    IdentStatus::Conflict,
                    None,
                    format!(
                        "{} principals across the tool calls ({}) and no write decides which one is the incident's",
                        p.len(),
                        join_values(&p)
                    ),
                );
            }
            if !p.is_empty() {
                return one(p, "the principal of the incident's tool calls (no write seen)");
            }
            one(all, "in the incident's records (no tool call names one)")
        }
        IdentName::ApprovalId => {
            let writes = &keyed_first(writes.to_vec());
            let w = of_events(writes, "approval_id");
            if !w.is_empty() {
                return one(w, &format!("the approval of the side-effecting call(s) ({})", targets(writes)));
            }
            one(all, "in the incident's records")
        }
        IdentName::IdempotencyKey => {
            let writes = &keyed_first(writes.to_vec());
            let w = of_events(writes, "idempotency_key");
            if !w.is_empty() {
                return one(w, &format!("the key of the side-effecting call(s) ({})", targets(writes)));
            }
            one(all, "in the incident's records")
        }
        IdentName::BundleId | IdentName::ChangeId | IdentName::RolloutWave => {
            let c = distinct(chain.iter().map(|a| s(a.value)).collect());
            if !all.is_empty() {
                let (st, v, why) = one(all.clone(), "in the incident's records");
                if let (IdentStatus::Found, Some(v)) = (&st, &v) {
                    if !c.is_empty() && !c.iter().any(|x| super::values::canon(x) == super::values::canon(v)) {
                        let mut both = all.clone();
                        both.extend(c.iter().cloned());
                        return (
                            IdentStatus::Conflict,
                            None,
                            format!(
                                "the incident's records say {v}, its deployment's records say {}: none is picked",
                                join_values(&c)
                            ),
                        );
                    }
                    if !c.is_empty() {
                        return (st, Some(v.clone()), format!("{why}; the deployment's records agree"));
                    }
                }
                return (st, v, why);
            }
            if name == IdentName::RolloutWave && c.len() > 1 {
                if let Some((v, when, others)) = in_effect_value(an, Role::Ident(name)) {
                    return (
                        IdentStatus::Found,
                        Some(v),
                        format!(
                            "the wave in effect when the incident began: set at {when} by a record of the deployment that served it (earlier: {})",
                            join_values(&others)
                        ),
                    );
                }
            }
            one(c, "from the records of the deployment that served the incident")
        }
    }
}

/// Of the values a role takes on the chain's records over time, the one set last before the
/// incident began (a rollout moves through its waves): `(value, when, earlier values)`.
fn in_effect_value(an: &Analyzer, role: Role) -> Option<(String, String, Vec<String>)> {
    let begin = an
        .records
        .iter()
        .filter(|r| r.tier == Tier::Linked)
        .filter_map(|r| an.time_of(r.time).and_then(|t| t.nanos()))
        .min()?;
    let mut best: Option<(i128, u32, u32)> = None;
    let mut earlier: Vec<String> = Vec::new();
    for (rid, r) in an.records.iter().enumerate() {
        if r.tier != Tier::Chain {
            continue;
        }
        let Some(t) = an.time_of(r.time).filter(|t| t.nanos().is_some_and(|n| n <= begin)) else { continue };
        let n = t.nanos().unwrap_or(0);
        for f in an.fields_of(rid as u32).iter().filter(|f| f.role == role) {
            if best.map_or(true, |(bn, _, _)| n >= bn) {
                best = Some((n, f.value, r.time));
            }
        }
    }
    let (_, v, text) = best?;
    let value = an.strings.get(v).to_string();
    // Other values set before the incident began, compared as values (`wave-2` is `2`).
    let mut seen = vec![super::values::canon(&value)];
    for (rid, r) in an.records.iter().enumerate() {
        if r.tier != Tier::Chain || !an.time_of(r.time).is_some_and(|t| t.nanos().is_some_and(|n| n <= begin)) {
            continue;
        }
        for f in an.fields_of(rid as u32).iter().filter(|f| f.role == role) {
            let x = an.strings.get(f.value).to_string();
            let c = super::values::canon(&x);
            if !seen.contains(&c) {
                seen.push(c);
                earlier.push(x);
            }
        }
    }
    let when = an.time_of(text).map(|t| t.text(&an.strings)).unwrap_or_default();
    Some((value, when, earlier))
}

/// The writes that carry an idempotency key (the side effects retried under one key are the
/// ones an incident is about), or all writes when none does.
fn keyed_first(writes: Vec<&EventC>) -> Vec<&EventC> {
    let keyed: Vec<&EventC> = writes.iter().copied().filter(|e| !e.id_values("idempotency_key").is_empty()).collect();
    if keyed.is_empty() {
        writes
    } else {
        keyed
    }
}

/// The chain and its hops.
fn chain(an: &Analyzer, ids: &[IdentifierFinding], deployments: &[Acc], ctx: &ReportContext) -> Chain {
    let na = |item: &str| ctx.not_applicable.iter().any(|n| n == item);
    let node_of = |name: NodeName, f: Option<&IdentifierFinding>| -> ChainNode {
        match f {
            Some(f) => ChainNode {
                name,
                value: f.value.clone(),
                status: match f.status {
                    IdentStatus::Conflict => HopStatus::Conflict,
                    IdentStatus::NotApplicable => HopStatus::NotApplicable,
                    _ if f.value.is_some() => HopStatus::Linked,
                    _ => HopStatus::Missing,
                },
                conflicts: if f.status == IdentStatus::Conflict {
                    f.values.iter().map(|v| v.value.clone()).collect()
                } else {
                    Vec::new()
                },
            },
            None => ChainNode { name, value: None, status: HopStatus::Missing, conflicts: Vec::new() },
        }
    };
    let find = |n: IdentName| ids.iter().find(|f| f.name == n);
    let deployment = match deployments.len() {
        0 => ChainNode { name: NodeName::Deployment, value: None, status: HopStatus::Missing, conflicts: Vec::new() },
        1 => ChainNode {
            name: NodeName::Deployment,
            value: Some(an.strings.get(deployments[0].value).to_string()),
            status: HopStatus::Linked,
            conflicts: Vec::new(),
        },
        _ => ChainNode {
            name: NodeName::Deployment,
            value: None,
            status: HopStatus::Conflict,
            conflicts: deployments.iter().map(|d| an.strings.get(d.value).to_string()).collect(),
        },
    };
    let nodes = vec![
        node_of(NodeName::Trace, find(IdentName::TraceId)),
        node_of(NodeName::Session, find(IdentName::SessionId)),
        deployment,
        node_of(NodeName::Change, find(IdentName::ChangeId)),
        node_of(NodeName::Wave, find(IdentName::RolloutWave)),
        node_of(NodeName::Bundle, find(IdentName::BundleId)),
    ];
    let node = |n: NodeName| nodes.iter().find(|x| x.name == n).cloned();
    let mut hops = Vec::new();
    for (from, to, item) in [
        (NodeName::Trace, NodeName::Session, "trace_to_session"),
        (NodeName::Session, NodeName::Deployment, "session_to_deployment"),
        (NodeName::Deployment, NodeName::Change, "deployment_to_change"),
        (NodeName::Change, NodeName::Wave, "change_to_wave"),
        (NodeName::Deployment, NodeName::Bundle, "deployment_to_bundle"),
    ] {
        let (Some(a), Some(b)) = (node(from), node(to)) else { continue };
        let hop = |status, why: String, citations| Hop { from, to, status, why, citations };
        if na(item) {
            hops.push(hop(HopStatus::NotApplicable, "declared not applicable by the responder".into(), Vec::new()));
            continue;
        }
        let h = match (&a.value, &b.value, a.status, b.status) {
            (_, _, HopStatus::Conflict, _) | (_, _, _, HopStatus::Conflict) => {
                let which = if a.status == HopStatus::Conflict { &a } else { &b };
                hop(
                    HopStatus::Conflict,
                    format!(
                        "the {} is in conflict ({}): the hop is not established",
                        which.name.as_str(),
                        which.conflicts.join(", ")
                    ),
                    Vec::new(),
                )
            }
            (Some(x), Some(y), _, _) => {
                let cites = both(an, x, y);
                // The deployment that served the session's trace served the session in it:
                // with the trace → session hop linked, a record of the trace naming the
                // deployment is the hop's evidence (spans name their resource, not the session).
                let via_trace = (cites.is_empty() && from == NodeName::Session)
                    .then(|| {
                        let trace = node(NodeName::Trace)?;
                        let t = trace.value.as_ref().filter(|_| trace.status == HopStatus::Linked)?;
                        let session_linked = hops.iter().any(|h: &Hop| {
                            h.from == NodeName::Trace && h.to == NodeName::Session && h.status == HopStatus::Linked
                        });
                        let c = both(an, t, y);
                        (session_linked && !c.is_empty()).then(|| (t.clone(), c))
                    })
                    .flatten();
                // A session's pod labels name the release and target it was launched by, and
                // the rollout of that release to that target names them too (Cloud Deploy).
                let via_pair = (cites.is_empty() && via_trace.is_none() && from == NodeName::Session)
                    .then(|| via_release_target(an, x, y))
                    .flatten();
                // The deployment's owners hold what it rolled out (a rollout's release holds the
                // change and bundle, its target the wave).
                let dep = node(NodeName::Deployment).filter(|d| d.status == HopStatus::Linked).and_then(|d| d.value);
                let via_owners = match (&dep, cites.is_empty() && from != NodeName::Trace && from != NodeName::Session)
                {
                    (Some(d), true) => via_owner(an, d, x, y),
                    _ => Vec::new(),
                };
                if let Some((t, c)) = via_trace {
                    hop(
                        HopStatus::Linked,
                        format!("{x} → {y}: the session's trace {t} was served by it ({} record(s) show the trace and the deployment)", c.len()),
                        c,
                    )
                } else if let Some((p, c)) = via_pair {
                    hop(
                        HopStatus::Linked,
                        format!("{x} → {y}: the session's records name release/target {p}, which {y} rolled out"),
                        c,
                    )
                } else if !via_owners.is_empty() {
                    hop(
                        HopStatus::Linked,
                        format!(
                            "{x} → {y}: shown by the records of the deployment {} and of what owns it (its release, its target)",
                            dep.as_deref().unwrap_or_default()
                        ),
                        via_owners,
                    )
                } else if cites.is_empty() {
                    hop(
                        HopStatus::Missing,
                        format!("no record shows both the {} {x} and the {} {y}", from.as_str(), to.as_str()),
                        Vec::new(),
                    )
                } else {
                    hop(HopStatus::Linked, format!("{x} → {y}: {} record(s) show both", cites.len()), cites)
                }
            }
            (None, _, _, _) => hop(HopStatus::Missing, format!("the {} is unknown", from.as_str()), Vec::new()),
            (_, None, _, _) => hop(
                HopStatus::Missing,
                match to {
                    NodeName::Deployment => {
                        "no incident record names the deployment that served it (deployment.id, a run or release id)"
                            .to_string()
                    }
                    _ => format!("the {} is unknown", to.as_str()),
                },
                Vec::new(),
            ),
        };
        hops.push(h);
    }
    Chain { nodes, hops }
}

/// Records (of the incident or its chain) that hold both values (first 5).
fn both(an: &Analyzer, x: &str, y: &str) -> Vec<Citation> {
    let (Some(cx), Some(cy)) =
        (an.strings.lookup(&super::values::canon(x)), an.strings.lookup(&super::values::canon(y)))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (rid, r) in an.records.iter().enumerate() {
        if !matches!(r.tier, Tier::Linked | Tier::Chain) {
            continue;
        }
        let mut hx = false;
        let mut hy = false;
        for c in an.values_of(rid as u32) {
            hx |= c == cx;
            hy |= c == cy;
        }
        if hx && hy {
            let field = an.fields_of(rid as u32).iter().find(|f: &&Fld| f.canon == cy).map(|f| f.path);
            out.push(cite(an, rid as u32, field));
            if out.len() >= 5 {
                break;
            }
        }
    }
    out
}

fn side_effect(
    an: &Analyzer,
    events: &[EventC],
    writes: &[&EventC],
    actions: &[Action],
    ctx: &ReportContext,
) -> SideEffectVerdict {
    let st = |w: OutcomeStatus| writes.iter().filter(|e| e.outcome.as_ref().map(|o| o.0) == Some(w)).count() as u64;
    let took = writes
        .iter()
        .filter(|e| e.outcome.as_ref().map(|o| o.0) == Some(OutcomeStatus::Succeeded) && !e.replayed)
        .count() as u64;
    let (failed, unknown) = (st(OutcomeStatus::Failed), st(OutcomeStatus::Unknown));
    let duplicates = actions.iter().filter(|a| a.duplicate).count() as u64;
    let idx =
        |e: &EventC| events.iter().position(|x| std::ptr::eq(x, e)).map(|i| event_id(i as u32)).unwrap_or_default();
    let unknown_writes: Vec<&&EventC> =
        writes.iter().filter(|e| e.outcome.as_ref().map(|o| o.0) == Some(OutcomeStatus::Unknown)).collect();
    let warning = (!unknown_writes.is_empty()).then(|| {
        let tools: BTreeSet<&str> = unknown_writes.iter().filter_map(|e| an.strings.get_opt(e.target)).collect();
        let keys: BTreeSet<&str> = unknown_writes.iter().flat_map(|e| e.id_values("idempotency_key").iter().map(|k| an.strings.get(*k))).collect();
        let keys = if keys.is_empty() { "no idempotency key tied to these writes".to_string() } else { format!("idempotency key(s) {}", keys.into_iter().collect::<Vec<_>>().join(", ")) };
        // Each with why it is unknown (`e29: timeout`): a timeout after the body was sent
        // is not the same doubt as a response nobody recorded.
        let which: Vec<String> = unknown_writes
            .iter()
            .map(|e| match e.outcome.as_ref().and_then(|o| o.1.as_deref()) {
                Some(r) => format!("{}: {}", idx(e), r.chars().take(120).collect::<String>()),
                None => idx(e),
            })
            .collect();
        let tools: Vec<&str> = tools.into_iter().collect();
        format!(
            "do not repeat {} ({}): the outcome of {} write(s) ({}) is unknown from the records custody could tie to them; verify in the target system whether they were applied before retrying",
            join_values(&tools.iter().map(|t| t.to_string()).collect::<Vec<_>>()),
            if keys.len() > 200 { format!("{}…", keys.chars().take(200).collect::<String>()) } else { keys },
            unknown_writes.len(),
            join_values(&which)
        )
    });
    let dup_text = actions
        .iter()
        .filter(|a| a.duplicate)
        .map(|a| {
            format!(
                "{} took effect {} times {} ({})",
                a.target.as_deref().unwrap_or("?"),
                a.took_effect,
                match &a.idempotency_key {
                    Some(k) => format!("under idempotency key {k}"),
                    None => "with no idempotency key: the same call (tool and arguments) made again".into(),
                },
                join_values(&a.attempts)
            )
        })
        .collect::<Vec<_>>();
    let detail = if writes.is_empty() {
        // Not "no write happened": records custody does not understand may hold writes.
        "no write (a state-changing tool call, cloud API call or cluster change) of the incident was understood in the records custody could read: writes in records it did not understand are not counted, so this does not show that none happened".to_string()
    } else {
        let mut d = format!("{} write(s): {took} took effect, {failed} failed, {unknown} unknown", writes.len());
        let replayed = writes.iter().filter(|e| e.replayed).count();
        if replayed > 0 {
            d.push_str(&format!(", {replayed} replayed an earlier result (no new effect)"));
        }
        if !dup_text.is_empty() {
            // The first three; every duplicated action is in `actions`.
            let shown = dup_text.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
            let more = if dup_text.len() > 3 {
                format!(" (and {} more duplicated action(s))", dup_text.len() - 3)
            } else {
                String::new()
            };
            d.push_str(&format!("; DUPLICATE: {shown}{more}"));
        }
        d
    };
    let (status, origin) = if ctx.side_effect != SideEffect::Unknown {
        (ctx.side_effect, "responder")
    } else if writes.is_empty() {
        (SideEffect::Unknown, "default")
    } else if took > 0 {
        (SideEffect::Happened, "evidence")
    } else if failed as usize == writes.len() {
        (SideEffect::NotHappened, "evidence")
    } else {
        (SideEffect::Unknown, "evidence")
    };
    SideEffectVerdict {
        status,
        origin: origin.into(),
        writes: writes.len() as u64,
        took_effect: took,
        failed,
        unknown,
        duplicates,
        detail,
        warning,
    }
}

fn memory(an: &Analyzer, events: &[EventC]) -> MemorySummary {
    let ids_of = |e: &EventC| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for d in e.detail_values("memory_ids").iter().chain(e.id_values("memory_id")) {
            for id in an.strings.get(*d).split(',') {
                let id = id.trim().to_string();
                if !id.is_empty() && !v.contains(&id) {
                    v.push(id);
                }
            }
        }
        v
    };
    let mut read = Vec::new();
    let mut written = Vec::new();
    let (mut read_set, mut written_set) = (HashSet::new(), HashSet::new());
    let mut writer: HashMap<String, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match e.kind {
            EventKind::MemoryRead if e.tie == Tie::Linked => {
                for id in ids_of(e) {
                    if read_set.insert(id.clone()) {
                        read.push(id);
                    }
                }
            }
            EventKind::MemoryWrite => {
                for id in ids_of(e) {
                    writer.entry(id.clone()).or_insert(i);
                    if e.tie == Tie::Linked && written_set.insert(id.clone()) {
                        written.push(id);
                    }
                }
            }
            _ => {}
        }
    }
    // The records holding each read id (its first five), in one walk over the records rather
    // than one per id.
    let mut wanted: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, id) in read.iter().enumerate() {
        if let Some(c) = an.strings.lookup(&super::values::canon(id)) {
            wanted.entry(c).or_default().push(k);
        }
    }
    let mut holders: Vec<Vec<u32>> = vec![Vec::new(); read.len()];
    if !wanted.is_empty() {
        for rid in 0..an.records.len() {
            let rid = rid as u32;
            for f in an.fields_of(rid).iter().filter(|f| f.role == Role::Link(LinkKey::MemoryId)) {
                for k in wanted.get(&f.canon).into_iter().flatten() {
                    if let Some(h) = holders.get_mut(*k).filter(|h| h.len() < 5 && h.last() != Some(&rid)) {
                        h.push(rid);
                    }
                }
            }
        }
    }
    let mut read_after_write = Vec::new();
    for (id, held) in read.iter().zip(&holders) {
        let content: Vec<Citation> = held.iter().map(|rid| cite(an, *rid, None)).collect();
        let written_by = writer.get(id).map(|i| event_id(*i as u32));
        if written_by.is_some() || !content.is_empty() {
            read_after_write.push(MemoryProvenance { memory_id: id.clone(), written_by, content });
        }
    }
    MemorySummary { read, written, read_after_write }
}

fn egress(an: &Analyzer, events: &[EventC]) -> Vec<EgressHost> {
    let mut hosts: BTreeMap<String, EgressHost> = BTreeMap::new();
    let mut allow: HashMap<String, Vec<String>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::PolicyDecision {
            let ok = e.detail_values("decision").iter().any(|d| an.strings.get(*d) == "allow");
            for h in e.detail_values("host") {
                if ok {
                    allow.entry(an.strings.get(*h).to_ascii_lowercase()).or_default().push(event_id(i as u32));
                }
            }
        }
    }
    for e in events.iter().filter(|e| e.kind == EventKind::EgressRequest) {
        let host = e
            .detail_values("host")
            .first()
            .or(Some(&e.target))
            .and_then(|h| an.strings.get_opt(*h))
            .unwrap_or("?")
            .to_ascii_lowercase();
        let h = hosts.entry(host.clone()).or_insert_with(|| EgressHost {
            host: host.clone(),
            requests: 0,
            probable: 0,
            upstreams: Vec::new(),
            statuses: Vec::new(),
            bytes_out: 0,
            bytes_in: 0,
            allowed_by: allow.get(&host).cloned().unwrap_or_default(),
        });
        if e.tie == Tie::TimeAndAddress {
            h.probable += 1;
        } else {
            h.requests += 1;
        }
        for u in e.detail_values("upstream") {
            let u = an.strings.get(*u).to_string();
            if !h.upstreams.contains(&u) {
                h.upstreams.push(u);
            }
        }
        // The decision that allowed this very request (ext_authz, joined by request id).
        for (j, r) in &e.related {
            let Some(d) = events.get(*j as usize) else { continue };
            if *r == "decided_by"
                && d.kind == EventKind::PolicyDecision
                && d.detail_values("decision").iter().any(|x| an.strings.get(*x) == "allow")
            {
                let id = event_id(*j);
                if !h.allowed_by.contains(&id) {
                    h.allowed_by.push(id);
                }
            }
        }
        if let Some((_, _, codes)) = &e.outcome {
            for c in codes {
                let c = an.strings.get(*c).to_string();
                if !h.statuses.contains(&c) {
                    h.statuses.push(c);
                }
            }
        }
        let num =
            |k: &str| e.detail_values(k).first().and_then(|v| an.strings.get(*v).parse::<u64>().ok()).unwrap_or(0);
        h.bytes_out = h.bytes_out.saturating_add(num("bytes_out"));
        h.bytes_in = h.bytes_in.saturating_add(num("bytes_in"));
    }
    let mut v: Vec<EgressHost> = hosts.into_values().collect();
    v.sort_by(|a, b| (b.requests + b.probable).cmp(&(a.requests + a.probable)).then(a.host.cmp(&b.host)));
    v
}

fn checklist(an: &Analyzer, events: &[EventC], a: &Analysis, ctx: &ReportContext) -> Vec<LinkCheck> {
    let mut items = Vec::new();
    let searched = a.mode != Mode::Candidates;
    let na = |item: &str| ctx.not_applicable.iter().any(|n| n == item);
    let mut push = |item: &str, ok: Option<String>, why: String, needs_search: bool| {
        let (status, detail) = match ok {
            Some(d) => (Status::Present, d),
            None if na(item) => (Status::NotApplicable, "declared not applicable by the responder".into()),
            None if needs_search && !searched => (
                Status::Missing,
                "not known: no seed was given and none could be inferred (the evidence holds several traces and sessions); see candidates, and give --trace-id".into(),
            ),
            None => (Status::Missing, why),
        };
        items.push(LinkCheck { item: item.into(), status, detail });
    };
    for s in &a.seeds {
        let name = s.ident.map_or("seed", |i| i.as_str());
        push(
            &format!("seed_{name}"),
            (s.records > 0).then(|| {
                format!(
                    "{} found in {} record(s){}",
                    s.value,
                    s.records,
                    if s.origin == SeedOrigin::Inferred { " (inferred)" } else { "" }
                )
            }),
            format!(
                "the seed {} matched no record: check the value, or that the evidence holding it was collected",
                s.value
            ),
            false,
        );
    }
    for h in &a.chain.hops {
        let item = format!("{}_to_{}", h.from.as_str(), h.to.as_str());
        push(
            &item,
            (h.status == HopStatus::Linked).then(|| h.why.clone()),
            if h.status == HopStatus::Conflict { format!("CONFLICT: {}", h.why) } else { h.why.clone() },
            true,
        );
    }
    let linked: Vec<(usize, &EventC)> = events.iter().enumerate().filter(|(_, e)| e.tie == Tie::Linked).collect();
    let calls: Vec<&(usize, &EventC)> = linked.iter().filter(|(_, e)| e.kind == EventKind::ToolCall).collect();
    let without: Vec<String> = calls
        .iter()
        .filter(|(_, e)| e.principal == NONE)
        .map(|(i, e)| format!("{} {}", event_id(*i as u32), an.strings.get_opt(e.target).unwrap_or("?")))
        .collect();
    push(
        "tool_call_principals",
        (!calls.is_empty() && without.is_empty())
            .then(|| format!("{} tool call(s), each with its principal", calls.len())),
        if calls.is_empty() {
            "no tool call found in the incident".into()
        } else {
            format!("{} of {} tool call(s) show no principal: {}", without.len(), calls.len(), join_values(&without))
        },
        true,
    );
    let approvals: Vec<&(usize, &EventC)> = linked
        .iter()
        .filter(|(_, e)| matches!(e.kind, EventKind::ApprovalRequest | EventKind::ApprovalDecision))
        .collect();
    let decided: BTreeSet<String> = approvals
        .iter()
        .filter(|(_, e)| e.kind == EventKind::ApprovalDecision)
        .flat_map(|(_, e)| e.detail_values("decision").iter().map(|d| an.strings.get(*d).to_string()))
        .collect();
    let requests = approvals.iter().filter(|(_, e)| e.kind == EventKind::ApprovalRequest).count();
    push(
        "approval_path",
        (!approvals.is_empty()).then(|| {
            format!(
                "{requests} request(s), {} decision(s){}",
                approvals.len() - requests,
                if decided.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", decided.into_iter().collect::<Vec<_>>().join(", "))
                }
            )
        }),
        // An approval id in the incident's records means an approval existed: then the
        // records were not understood, and "not applicable" would be the wrong answer.
        match a.identifiers.iter().find(|f| f.name == IdentName::ApprovalId).filter(|f| !f.values.is_empty()) {
            Some(f) => format!(
                "no record was understood as an approval request or decision, but the incident's records name approval id(s) {} ({} record(s)): read them (custody show) before deciding",
                join_values(&f.values.iter().take(3).map(|v| v.value.clone()).collect::<Vec<_>>()),
                f.values.iter().map(|v| v.records).sum::<u64>()
            ),
            None => "no approval request or decision found for the incident (use --no-approval-path if the action needed none)"
                .into(),
        },
        true,
    );
    let decisions = linked.iter().filter(|(_, e)| e.kind == EventKind::PolicyDecision).count();
    push(
        "policy_decisions",
        (decisions > 0).then(|| format!("{decisions} decision(s)")),
        "no policy decision found for the incident".into(),
        true,
    );
    let m = &a.memory;
    push(
        "memory_records",
        (!m.read.is_empty() || !m.written.is_empty()).then(|| {
            format!(
                "read {}; written {}",
                if m.read.is_empty() { "none".into() } else { join_values(&m.read) },
                if m.written.is_empty() { "none".into() } else { join_values(&m.written) }
            )
        }),
        "no memory record read or written by the incident was found".into(),
        true,
    );
    let egress_logs: Vec<&SourceSummary> = a.sources.iter().filter(|s| s.kind == "egress").collect();
    push(
        "allowed_egress_data",
        (!egress_logs.is_empty()).then(|| format!("{} egress/proxy log(s) read", egress_logs.len())),
        "no egress/proxy log was collected, so the allowed egress cannot be checked".into(),
        false,
    );
    push(
        "egress_observed",
        (!a.egress.is_empty()).then(|| {
            a.egress
                .iter()
                .map(|h| {
                    if h.probable > 0 {
                        format!("{} ×{} (+{} probable, by time and source address)", h.host, h.requests, h.probable)
                    } else {
                        format!("{} ×{}", h.host, h.requests)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        }),
        if egress_logs.is_empty() {
            "no egress request of the incident was observed (no egress log was collected)".into()
        } else {
            "no egress request of the incident was observed in the egress logs read".into()
        },
        true,
    );
    let se = &a.side_effect;
    push(
        "side_effect",
        (se.status != SideEffect::Unknown)
            .then(|| format!("{} (from the {}): {}", se.status.as_str(), se.origin, se.detail)),
        match &se.warning {
            Some(w) => format!("unknown: {w}"),
            None => format!("unknown: {}", se.detail),
        },
        true,
    );
    let not_analysed: Vec<String> = an
        .sources
        .iter()
        .filter_map(|s| s.not_analysed.as_ref().map(|w| format!("{} ({}, {w})", s.path, human_size(s.size))))
        .collect();
    push(
        "evidence_analysed",
        not_analysed.is_empty().then(|| format!("every file of {} was read", an.sources.len())),
        format!(
            "{} file(s) not analysed: {}{}",
            not_analysed.len(),
            not_analysed.iter().take(MAX_NAMED).cloned().collect::<Vec<_>>().join("; "),
            if not_analysed.len() > MAX_NAMED {
                format!("; +{} more", not_analysed.len() - MAX_NAMED)
            } else {
                String::new()
            }
        ),
        false,
    );
    let bad: Vec<&EvidenceProblem> = a.evidence_problems.iter().filter(|p| p.problem != "not_analysed").collect();
    push(
        "evidence_readable",
        bad.is_empty().then(|| "every planned file was sealed and every record read".to_string()),
        format!("{} evidence problem(s): see evidence_problems", bad.len()),
        false,
    );
    items
}

/// A sequence serialized from an iterator, entry by entry.
struct Seq<F>(F);

impl<F, I, T> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator<Item = T>,
    T: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq((self.0)())
    }
}

/// The same fields, in the same order, as [`Analysis`] (the test
/// `report_serializes_as_the_analysis_it_builds` holds them to it).
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a, E> {
            format: &'a str,
            mode: Mode,
            seeds: &'a [Seed],
            field_mapping: &'a MappingInfo,
            identifiers: &'a [IdentifierFinding],
            subjects: &'a [ValueFinding],
            chain: &'a Chain,
            events: E,
            events_omitted: u64,
            event_counts: &'a BTreeMap<EventKind, KindCount>,
            actions: &'a [Action],
            side_effect: &'a SideEffectVerdict,
            memory: &'a MemorySummary,
            egress: &'a [EgressHost],
            candidates: &'a [Candidates],
            sources: &'a [SourceSummary],
            sources_omitted: u64,
            problems: &'a [RecordProblem],
            problems_omitted: u64,
            checklist: &'a [LinkCheck],
            evidence_problems: &'a [EvidenceProblem],
            stats: &'a Stats,
        }
        let h = &self.head;
        let n = self.events.len().min(self.an.limits.max_events);
        View {
            format: &h.format,
            mode: h.mode,
            seeds: &h.seeds,
            field_mapping: &h.field_mapping,
            identifiers: &h.identifiers,
            subjects: &h.subjects,
            chain: &h.chain,
            events: Seq(|| (0..n).filter_map(|i| self.event(i))),
            events_omitted: h.events_omitted,
            event_counts: &h.event_counts,
            actions: &h.actions,
            side_effect: &h.side_effect,
            memory: &h.memory,
            egress: &h.egress,
            candidates: &h.candidates,
            sources: &h.sources,
            sources_omitted: h.sources_omitted,
            problems: &h.problems,
            problems_omitted: h.problems_omitted,
            checklist: &h.checklist,
            evidence_problems: &h.evidence_problems,
            stats: &h.stats,
        }
        .serialize(ser)
    }
}

/// Without a seed: the values of each identifier in every record read (all of them when
/// `complete`), most frequent first.
pub(crate) fn candidates(an: &Analyzer, complete: bool) -> Vec<Candidates> {
    let all = [Tier::None, Tier::Linked, Tier::Chain, Tier::Joined, Tier::TimeAndAddress];
    IdentName::ALL
        .iter()
        .map(|&name| {
            let accs = collect(an, Role::Ident(name), &all, 3);
            Candidates {
                name,
                distinct: accs.len() as u64,
                capped: !complete,
                values: accs.iter().take(20).map(|a| finding(an, a)).collect(),
            }
        })
        .collect()
}
