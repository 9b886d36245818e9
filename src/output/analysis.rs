//! The human form of a `custody-analysis/v2`: preserve's summary (brief) and a bundle's
//! `analysis.json` in `show` (full). Every value quoted from the evidence goes through
//! `u(…)`; long lists are capped in the brief form, with the command that lists them all.
//!
//! The order follows what a responder needs first: what the search started from, the
//! identifiers with how each was decided (or why not), who the agent acted for, the chain with
//! each hop's evidence, what happened (duplicates and unknown outcomes first), memory, egress,
//! then the checklist and what could not be read.

use std::io::{self, Write};

use custody::analysis::{
    Action, Analysis, AnalysisSummary, Candidates, Chain, Citation, EgressHost, Event, EventKind, EvidenceProblem,
    HopStatus, IdentStatus, IdentifierFinding, KindCount, LinkCheck, MemorySummary, Mode, OutcomeStatus, Seed,
    SeedOrigin, SideEffectVerdict, SourceSummary, Stats, Tie, Time, ValueFinding, Zone,
};
use custody::manifest::Status;
use custody::untrusted::untrusted as u;
use std::collections::BTreeMap;

/// How much to print.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Detail {
    /// preserve: first items of each list, only what is not ticked in the checklist.
    Brief,
    /// show: everything the document holds, with a timeline of the events.
    Full,
}

/// The parts of an analysis or of preserve's summary that are printed.
pub(super) struct View<'a> {
    mode: Mode,
    seeds: &'a [Seed],
    identifiers: &'a [IdentifierFinding],
    subjects: &'a [ValueFinding],
    chain: &'a Chain,
    event_counts: &'a BTreeMap<EventKind, KindCount>,
    actions: &'a [Action],
    side_effect: &'a SideEffectVerdict,
    memory: &'a MemorySummary,
    egress: &'a [EgressHost],
    candidates: &'a [Candidates],
    notable: Vec<&'a Event>,
    notable_omitted: u64,
    not_analysed: Vec<&'a SourceSummary>,
    not_analysed_omitted: u64,
    checklist: &'a [LinkCheck],
    evidence_problems: &'a [EvidenceProblem],
    stats: &'a Stats,
    /// The full document (show): its events and sources.
    full: Option<&'a Analysis>,
}

impl<'a> View<'a> {
    pub(super) fn of_summary(s: &'a AnalysisSummary) -> View<'a> {
        View {
            mode: s.mode,
            seeds: &s.seeds,
            identifiers: &s.identifiers,
            subjects: &s.subjects,
            chain: &s.chain,
            event_counts: &s.event_counts,
            actions: &s.actions,
            side_effect: &s.side_effect,
            memory: &s.memory,
            egress: &s.egress,
            candidates: &s.candidates,
            notable: s.notable_events.iter().collect(),
            notable_omitted: s.notable_omitted,
            not_analysed: s.not_analysed.iter().collect(),
            not_analysed_omitted: s.not_analysed_omitted,
            checklist: &s.checklist,
            evidence_problems: &s.evidence_problems,
            stats: &s.stats,
            full: None,
        }
    }

    pub(super) fn of_analysis(a: &'a Analysis) -> View<'a> {
        let dup: Vec<&str> =
            a.actions.iter().filter(|x| x.duplicate).flat_map(|x| x.attempts.iter().map(String::as_str)).collect();
        View {
            mode: a.mode,
            seeds: &a.seeds,
            identifiers: &a.identifiers,
            subjects: &a.subjects,
            chain: &a.chain,
            event_counts: &a.event_counts,
            actions: &a.actions,
            side_effect: &a.side_effect,
            memory: &a.memory,
            egress: &a.egress,
            candidates: &a.candidates,
            notable: a.events.iter().filter(|e| unknown_write(e) || dup.contains(&e.id.as_str())).collect(),
            notable_omitted: 0,
            not_analysed: a.sources.iter().filter(|s| s.not_analysed.is_some()).collect(),
            not_analysed_omitted: 0,
            checklist: &a.checklist,
            evidence_problems: &a.evidence_problems,
            stats: &a.stats,
            full: Some(a),
        }
    }

    /// The side-effect warning, when the outcome of a write is unknown.
    pub(super) fn side_effect_warning(&self) -> Option<&'a str> {
        self.side_effect.warning.as_deref()
    }

    pub(super) fn side_effect(&self) -> &'a SideEffectVerdict {
        self.side_effect
    }

    /// No seed was given or inferred: nothing is linked.
    pub(super) fn seedless(&self) -> bool {
        self.mode == Mode::Candidates
    }

    pub(super) fn evidence_problems(&self) -> &'a [EvidenceProblem] {
        self.evidence_problems
    }
}

fn unknown_write(e: &Event) -> bool {
    e.write && e.tie == Tie::Linked && e.outcome.as_ref().is_some_and(|o| o.status == OutcomeStatus::Unknown)
}

/// How many items of a list the brief form prints.
const BRIEF: usize = 5;

/// `path:line` (or `path@offset`), the item or span inside the record, and the field.
pub(super) fn cite(c: &Citation) -> String {
    let mut s = match c.line {
        Some(l) => format!("{}:{l}", u(&c.path)),
        None => format!("{}@{}", u(&c.path), c.offset),
    };
    if c.decompressed && c.line.is_none() {
        s.push_str(" (decompressed)");
    }
    match (&c.span_id, c.item) {
        (Some(span), _) => s.push_str(&format!(" span {}", u(span))),
        (None, Some(i)) => s.push_str(&format!(" item {i}")),
        _ => {}
    }
    if let Some(f) = &c.field {
        s.push_str(&format!(" {}", u(f)));
    }
    s
}

/// The first `n` citations and how many more.
fn cites(c: &[Citation], omitted: u64, n: usize) -> String {
    let mut v: Vec<String> = c.iter().take(n).map(cite).collect();
    let more = (c.len().saturating_sub(n) as u64).saturating_add(omitted);
    if more > 0 {
        v.push(format!("+{more} more"));
    }
    v.join("; ")
}

/// The first `n` of a list, and how many more.
fn first_of(l: &[String], n: usize) -> String {
    let mut s = l.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if l.len() > n {
        s.push_str(&format!(", … {} more", l.len() - n));
    }
    s
}

fn time(t: &Option<Time>) -> String {
    match t {
        None => "(no time)".into(),
        Some(t) => match t.zone {
            Zone::None => format!("{} (no zone written, read as UTC)", u(&t.at)),
            Zone::Unparsed => format!("{} (not understood as a time)", u(&t.at)),
            _ => u(&t.at).to_string(),
        },
    }
}

/// Prints the analysis.
pub(super) fn print(out: &mut impl Write, v: &View, d: Detail, all: &str) -> io::Result<()> {
    seeds(out, v)?;
    if v.mode == Mode::Candidates {
        candidates(out, v, d)?;
    }
    if v.mode != Mode::Candidates {
        identifiers(out, v, d)?;
        subjects(out, v, d)?;
        chain(out, v, d)?;
        events(out, v, d, all)?;
        memory(out, v, d)?;
        egress(out, v, d)?;
    }
    not_analysed(out, v, d, all)?;
    if d == Detail::Full {
        if let Some(a) = v.full {
            timeline(out, a)?;
            sources(out, a)?;
        }
    }
    Ok(())
}

fn seeds(out: &mut impl Write, v: &View) -> io::Result<()> {
    if v.mode == Mode::Candidates {
        writeln!(
            out,
            "seed       NONE given and none could be inferred (the evidence holds more than one trace and session, or none): nothing was linked; the values below are candidates, not findings"
        )?;
    }
    for s in v.seeds {
        let name = s.ident.map(|i| i.as_str()).unwrap_or("value");
        let origin = match s.origin {
            SeedOrigin::Flag => "given",
            SeedOrigin::Spec => "given in the spec",
            SeedOrigin::Inferred => "INFERRED: the only one in the evidence, no seed was given",
            _ => "of an origin this custody does not know",
        };
        let norm = match (&s.given, &s.normalised) {
            (Some(g), Some(n)) => format!(", given as {} ({})", u(g), u(n)),
            (Some(g), None) => format!(", given as {}", u(g)),
            _ => String::new(),
        };
        let found = if s.records == 0 {
            "found in NO record: check the value (nothing was linked from it)".to_string()
        } else {
            format!("found in {} record(s)", s.records)
        };
        writeln!(out, "seed       {name} {} ({origin}{norm}): {found}", u(&s.value))?;
    }
    Ok(())
}

fn candidates(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    let n = if d == Detail::Brief { 3 } else { usize::MAX };
    writeln!(
        out,
        "candidates (values seen, most frequent first; run preserve again with one, e.g. --trace-id VALUE, or --seed VALUE):"
    )?;
    for c in v.candidates {
        if c.values.is_empty() {
            continue;
        }
        writeln!(
            out,
            "  {:<16} {} distinct value(s){}",
            c.name.as_str(),
            c.distinct,
            if c.capped { " (counting capped)" } else { "" }
        )?;
        for val in c.values.iter().take(n) {
            writeln!(
                out,
                "    {}  ×{}  ← {}",
                u(&val.value),
                val.records,
                cites(&val.citations, val.citations_omitted, 1)
            )?;
        }
        if c.values.len() > n {
            writeln!(out, "    … {} more value(s)", c.values.len() - n)?;
        }
    }
    Ok(())
}

fn identifiers(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    if v.mode == Mode::Candidates {
        return Ok(());
    }
    let known = v
        .identifiers
        .iter()
        .filter(|i| matches!(i.status, IdentStatus::Given | IdentStatus::Found | IdentStatus::Inferred))
        .count();
    writeln!(out, "identifiers ({known} of {} with a value):", v.identifiers.len())?;
    let ncite = if d == Detail::Brief { 1 } else { 3 };
    for i in v.identifiers {
        let name = i.name.as_str();
        let first = |val: &str| i.values.iter().find(|f| f.value == val);
        match i.status {
            IdentStatus::Given | IdentStatus::Found | IdentStatus::Inferred => {
                let value = i.value.as_deref().unwrap_or("?");
                let word = match i.status {
                    IdentStatus::Given => "given",
                    IdentStatus::Inferred => "INFERRED",
                    _ => "found",
                };
                let at = first(value).map(|f| format!("  ← {}", cites(&f.citations, f.citations_omitted, ncite)));
                writeln!(out, "  {name:<16} {}  {word}{}", u(value), at.unwrap_or_default())?;
                if d == Detail::Full && !i.why.is_empty() {
                    writeln!(out, "  {:<16} ({})", "", u(&i.why))?;
                }
            }
            IdentStatus::Conflict => {
                writeln!(out, "  {name:<16} CONFLICT: no value picked — {}", u(&i.why))?;
                let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
                for f in i.values.iter().take(n) {
                    writeln!(
                        out,
                        "  {:<16}   {}  ← {}",
                        "",
                        u(&f.value),
                        cites(&f.citations, f.citations_omitted, ncite)
                    )?;
                }
                if i.values.len() > n {
                    writeln!(out, "  {:<16}   … {} more value(s)", "", i.values.len() - n)?;
                }
            }
            IdentStatus::Unknown => writeln!(out, "  {name:<16} unknown — {}", u(&i.why))?,
            IdentStatus::NotObserved => writeln!(
                out,
                "  {name:<16} {}  NOT OBSERVED: given, found in no record — {}",
                u(i.value.as_deref().unwrap_or("?")),
                u(&i.why)
            )?,
            IdentStatus::NotApplicable => writeln!(out, "  {name:<16} not applicable (declared)")?,
            _ => writeln!(out, "  {name:<16} NOT UNDERSTOOD by this custody — {}", u(&i.why))?,
        }
    }
    Ok(())
}

fn subjects(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
    for s in v.subjects.iter().take(n) {
        writeln!(
            out,
            "acted for  {} (the end user or customer, not a principal)  ← {}",
            u(&s.value),
            cites(&s.citations, s.citations_omitted, 1)
        )?;
    }
    if v.subjects.len() > n {
        writeln!(out, "acted for  … {} more", v.subjects.len() - n)?;
    }
    Ok(())
}

fn chain(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    if v.chain.nodes.is_empty() {
        return Ok(());
    }
    let node = |n: &custody::analysis::ChainNode| match (n.status, &n.value) {
        (HopStatus::Conflict, _) => format!("{} CONFLICT({})", n.name.as_str(), u(&n.conflicts.join(" | "))),
        (HopStatus::NotApplicable, _) => format!("{} n/a", n.name.as_str()),
        (_, Some(val)) => format!("{} {}", n.name.as_str(), u(val)),
        (_, None) => format!("{} ?", n.name.as_str()),
    };
    let main: Vec<String> =
        v.chain.nodes.iter().filter(|n| n.name != custody::analysis::NodeName::Bundle).map(node).collect();
    let bundle = v.chain.nodes.iter().find(|n| n.name == custody::analysis::NodeName::Bundle).map(node);
    writeln!(
        out,
        "chain      {}{}",
        main.join(" → "),
        bundle.map(|b| format!("  (the deployment carried {b})")).unwrap_or_default()
    )?;
    let ncite = if d == Detail::Brief { 1 } else { 5 };
    for h in &v.chain.hops {
        let hop = format!("{} → {}", h.from.as_str(), h.to.as_str());
        match h.status {
            HopStatus::Linked => {
                writeln!(out, "  {hop:<22} linked  ← {}", cites(&h.citations, 0, ncite))?;
                if d == Detail::Full {
                    writeln!(out, "  {:<22} ({})", "", u(&h.why))?;
                }
            }
            HopStatus::Missing => writeln!(out, "  {hop:<22} MISSING: {}", u(&h.why))?,
            HopStatus::Conflict => writeln!(out, "  {hop:<22} CONFLICT (not ticked): {}", u(&h.why))?,
            HopStatus::NotApplicable => writeln!(out, "  {hop:<22} not applicable")?,
            _ => writeln!(out, "  {hop:<22} NOT UNDERSTOOD by this custody: {}", u(&h.why))?,
        }
    }
    Ok(())
}

fn events(out: &mut impl Write, v: &View, d: Detail, all: &str) -> io::Result<()> {
    let total: u64 = v.event_counts.values().map(|c| c.events).fold(0, u64::saturating_add);
    let records: u64 = v.event_counts.values().map(|c| c.records).fold(0, u64::saturating_add);
    let kinds: Vec<String> = v.event_counts.iter().map(|(k, c)| format!("{} {}", c.events, k.as_str())).collect();
    writeln!(
        out,
        "events     {total} from {records} record(s){}{}",
        if kinds.is_empty() { String::new() } else { format!(": {}", kinds.join(", ")) },
        if total > 0 { " (records of one action are merged into one event)" } else { "" }
    )?;
    let dups: Vec<&Action> = v.actions.iter().filter(|a| a.duplicate).collect();
    let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
    if dups.len() > n {
        writeln!(out, "DUPLICATE  {} actions took effect more than once; the first {n}:", dups.len())?;
    }
    for a in dups.iter().take(n) {
        writeln!(
            out,
            "DUPLICATE  {} took effect {} times {} (attempts {})",
            u(a.target.as_deref().unwrap_or("?")),
            a.took_effect,
            match &a.idempotency_key {
                Some(k) => format!("under idempotency key {}", u(k)),
                None => "with no idempotency key (the same tool and arguments, called again)".to_string(),
            },
            u(&first_of(&a.attempts, if d == Detail::Brief { 10 } else { usize::MAX }))
        )?;
    }
    let unknown: Vec<&&Event> = v.notable.iter().filter(|e| unknown_write(e)).collect();
    let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
    for e in unknown.iter().take(n) {
        writeln!(
            out,
            "UNKNOWN    outcome of {} {} at {}: {}  ← {}",
            e.id,
            u(e.target.as_deref().unwrap_or("?")),
            time(&e.start),
            u(e.outcome.as_ref().and_then(|o| o.reason.as_deref()).unwrap_or("not recorded")),
            cites(&e.citations, 0, 2)
        )?;
    }
    let more = (unknown.len().saturating_sub(n) as u64).saturating_add(v.notable_omitted);
    if more > 0 {
        writeln!(out, "UNKNOWN    … and {more} more write(s) of unknown outcome (all of them: {all})")?;
    }
    Ok(())
}

fn memory(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    let m = v.memory;
    if m.read.is_empty() && m.written.is_empty() {
        return Ok(());
    }
    let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
    let list = |l: &[String]| {
        let mut s: Vec<String> = l.iter().take(n).map(|x| u(x).to_string()).collect();
        if l.len() > n {
            s.push(format!("+{} more", l.len() - n));
        }
        if s.is_empty() {
            "none".to_string()
        } else {
            s.join(", ")
        }
    };
    writeln!(out, "memory     read {}; written {}", list(&m.read), list(&m.written))?;
    for p in m.read_after_write.iter().take(n) {
        writeln!(
            out,
            "  READ AFTER WRITE {}{}  content ← {}",
            u(&p.memory_id),
            p.written_by.as_deref().map(|w| format!(" (written by {})", u(w))).unwrap_or_default(),
            cites(&p.content, 0, 2)
        )?;
    }
    Ok(())
}

fn egress(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    if v.egress.is_empty() {
        return Ok(());
    }
    writeln!(out, "egress     {} host(s) (direction from the agent's side):", v.egress.len())?;
    let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
    for h in v.egress.iter().take(n) {
        let mut parts = vec![format!("{} request(s) tied by id", h.requests)];
        if h.probable > 0 {
            parts.push(format!("{} PROBABLE (by time and source address only)", h.probable));
        }
        let m = if d == Detail::Brief { BRIEF } else { usize::MAX };
        if !h.upstreams.is_empty() {
            parts.push(format!("upstream {}", u(&first_of(&h.upstreams, m))));
        }
        if !h.statuses.is_empty() {
            parts.push(format!("status {}", u(&first_of(&h.statuses, m))));
        }
        if h.bytes_out > 0 || h.bytes_in > 0 {
            parts.push(format!("sent {} B, received {} B", h.bytes_out, h.bytes_in));
        }
        if !h.allowed_by.is_empty() {
            parts.push(format!("allowed by {}", u(&first_of(&h.allowed_by, m))));
        }
        writeln!(out, "  {:<32} {}", u(&h.host), parts.join("; "))?;
    }
    if v.egress.len() > n {
        writeln!(out, "  … {} more host(s)", v.egress.len() - n)?;
    }
    Ok(())
}

fn not_analysed(out: &mut impl Write, v: &View, d: Detail, all: &str) -> io::Result<()> {
    if v.not_analysed.is_empty() {
        return Ok(());
    }
    let total = (v.not_analysed.len() as u64).saturating_add(v.not_analysed_omitted);
    writeln!(out, "NOT analysed ({total} file(s), sealed as they are but not understood):")?;
    let n = if d == Detail::Brief { BRIEF } else { usize::MAX };
    for s in v.not_analysed.iter().take(n) {
        writeln!(out, "  {} ({} B): {}", u(&s.path), s.size, u(s.not_analysed.as_deref().unwrap_or("")))?;
    }
    let more = total.saturating_sub(n.min(v.not_analysed.len()) as u64);
    if more > 0 {
        writeln!(out, "  … and {more} more (all of them: {all})")?;
    }
    Ok(())
}

/// show: every event of the document, in time order.
fn timeline(out: &mut impl Write, a: &Analysis) -> io::Result<()> {
    writeln!(
        out,
        "timeline ({} event(s){}):",
        a.events.len(),
        if a.events_omitted > 0 { format!(", {} more not listed", a.events_omitted) } else { String::new() }
    )?;
    for e in &a.events {
        let mut line = format!("  {:<5} {} {}", e.id, time(&e.start), e.kind.as_str());
        if let Some(op) = &e.operation {
            line.push_str(&format!(" {}", u(op)));
        }
        if let Some(t) = &e.target {
            line.push_str(&format!(" {}", u(t)));
        }
        if let Some(x) = &e.actor {
            line.push_str(&format!(" by {}", u(x)));
        }
        if let Some(p) = &e.principal {
            line.push_str(&format!(" as {}", u(p)));
        }
        if let Some(s) = &e.subject {
            line.push_str(&format!(" for {}", u(s)));
        }
        if let Some(o) = &e.outcome {
            let st = match o.status {
                OutcomeStatus::Succeeded if o.replayed => "succeeded (replayed: no new effect)",
                OutcomeStatus::Succeeded => "succeeded",
                OutcomeStatus::Failed => "failed",
                _ => "UNKNOWN",
            };
            line.push_str(&format!(" → {st}"));
            if let Some(r) = &o.reason {
                line.push_str(&format!(" ({})", u(r)));
            }
        }
        if e.tie != Tie::Linked {
            line.push_str(match e.tie {
                Tie::Chain => " [on the chain]",
                Tie::Joined => " [joined by id]",
                Tie::TimeAndAddress => " [PROBABLE: time and source address]",
                _ => "",
            });
        }
        writeln!(out, "{line}")?;
        if !e.merged_by.is_empty() {
            let rules: Vec<String> = e
                .merged_by
                .iter()
                .map(|r| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
                .collect();
            writeln!(out, "        merged {} record(s) by {}", e.citations.len(), rules.join(", "))?;
        }
        writeln!(out, "        ← {}", cites(&e.citations, 0, 3))?;
    }
    Ok(())
}

/// show: how each file was read.
fn sources(out: &mut impl Write, a: &Analysis) -> io::Result<()> {
    writeln!(
        out,
        "sources ({} file(s){}; {} record(s) read, {} in the incident):",
        a.sources.len(),
        if a.sources_omitted > 0 { format!(", {} more not listed", a.sources_omitted) } else { String::new() },
        a.stats.records_seen,
        a.stats.incident_records
    )?;
    for s in &a.sources {
        writeln!(
            out,
            "  {:>6}/{:<6} {} [{}, {} by {}{}]{}",
            s.incident_records,
            s.records,
            u(&s.path),
            u(&s.format),
            u(&s.kind),
            u(&s.kind_origin),
            s.compression.as_deref().map(|c| format!(", {}", u(c))).unwrap_or_default(),
            if s.problems > 0 { format!(" {} problem(s)", s.problems) } else { String::new() }
        )?;
    }
    Ok(())
}

/// The linkage checklist: brief prints what is not ticked (and how many are); full all.
pub(super) fn print_checklist(out: &mut impl Write, v: &View, d: Detail) -> io::Result<()> {
    let items = v.checklist;
    let ticked = items.iter().filter(|i| i.status == Status::Present).count();
    writeln!(out, "checklist  {ticked} of {} linkage item(s) ticked", items.len())?;
    if d == Detail::Brief && v.mode == Mode::Candidates {
        // Every linkage item says the same: nothing is linked without a seed.
        return writeln!(out, "  (nothing is linked without a seed: see the candidates above)");
    }
    for i in items {
        if d == Detail::Brief && i.status == Status::Present {
            continue;
        }
        let (mark, word) = match i.status {
            Status::Present => ("[x]", ""),
            Status::NotApplicable => ("[-]", "n/a: "),
            _ => ("[ ]", "NO: "),
        };
        writeln!(out, "  {mark} {:<22} {word}{}", u(&i.item), u(&i.detail))?;
    }
    Ok(())
}

/// The stats line (records read, the fixpoint's rounds).
pub(super) fn stats_line(v: &View) -> String {
    format!(
        "analysis   {} record(s) read, {} in the incident, {} not kept (not linked when read), {} over a budget{}",
        v.stats.records_seen,
        v.stats.incident_records,
        v.stats.records_deferred,
        v.stats.records_dropped,
        if v.stats.join_keys_searched {
            ""
        } else {
            "; join keys beyond the pre-filter's budget joined only records read anyway"
        }
    )
}
