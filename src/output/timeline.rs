//! `custody timeline`: one line per event (time, kind, operation and target, principal,
//! outcome, the identifiers it carries, a short citation), after the chain and the verdict.
//! Every value from the bundle goes through `u(…)`.

use std::io::{self, Write};

use custody::analysis::{HopStatus, OutcomeStatus};
use custody::timeline::html::{node_label, short_citation};
use custody::timeline::Timeline;
use custody::untrusted::untrusted as u;

/// Identifiers shown on an event's line (the join keys of the incident; span ids are in
/// --json and the HTML report).
const LINE_IDS: [&str; 8] = [
    "session_id",
    "call_id",
    "approval_id",
    "idempotency_key",
    "decision_id",
    "request_id",
    "memory_id",
    "deployment_id",
];

pub(super) fn print(out: &mut impl Write, t: &Timeline, store: Option<&str>) -> io::Result<()> {
    writeln!(out, "evidence bundle {} (verified intact), sealed {}", u(&t.bundle), t.sealed_at.to_rfc3339())?;
    let of = t.supplement_of.as_deref();
    if let Some(o) = of {
        writeln!(
            out,
            "supplement of {}: these events are a re-analysis of that bundle's evidence (the records they cite are there)",
            u(o)
        )?;
    }
    super::print_supplement_links(out, None, &t.supplements, store)?;
    let chain: Vec<String> = t
        .chain
        .nodes
        .iter()
        .map(|n| match (&n.value, n.status) {
            (Some(v), _) => format!("{} {}", node_label(n.name), u(v)),
            (None, HopStatus::Conflict) => format!("{} CONFLICT", node_label(n.name)),
            (None, _) => format!("{} ?", node_label(n.name)),
        })
        .collect();
    writeln!(out, "chain      {}", chain.join(" → "))?;
    writeln!(out, "side effect {} — {}", t.side_effect.status.as_str(), u(&t.side_effect.detail))?;
    if let Some(w) = &t.side_effect.warning {
        writeln!(out, "WARNING    {}", u(w))?;
    }
    let lo = &t.left_out;
    writeln!(
        out,
        "events     {} of {}{}{}",
        t.events.len(),
        t.events_total,
        if lo.kind + lo.session + lo.time + lo.no_time > 0 {
            format!(
                " (left out: {} by kind, {} by session, {} outside the time window, {} with no time)",
                lo.kind, lo.session, lo.time, lo.no_time
            )
        } else {
            String::new()
        },
        if t.events_omitted > 0 {
            format!("; {} more not listed by the analysis", t.events_omitted)
        } else {
            String::new()
        }
    )?;
    for e in &t.events {
        let mut line = format!(
            "{:<5} {:<24} {:<17}",
            u(&e.id),
            e.start.as_ref().map(|t| u(&t.at).to_string()).unwrap_or_else(|| "(no time)".into()),
            e.kind.as_str()
        );
        if let Some(op) = &e.operation {
            line.push_str(&format!(" {}", u(op)));
        }
        if let Some(t) = &e.target {
            line.push_str(&format!(" {}", u(t)));
        }
        if let Some(p) = &e.principal {
            line.push_str(&format!(" as {}", u(p)));
        }
        if let Some(o) = &e.outcome {
            line.push_str(match o.status {
                OutcomeStatus::Succeeded if o.replayed => " → succeeded (replayed)",
                OutcomeStatus::Succeeded => " → succeeded",
                OutcomeStatus::Failed => " → failed",
                _ => " → UNKNOWN",
            });
        }
        let ids: Vec<String> = LINE_IDS
            .iter()
            .filter_map(|k| e.ids.get(*k).map(|v| format!("{}={}", k.trim_end_matches("_id"), u(v))))
            .collect();
        if !ids.is_empty() {
            line.push_str(&format!(" [{}]", ids.join(" ")));
        }
        if let Some(c) = e.citations.first() {
            line.push_str(&format!(" ← {}", u(&short_citation(c))));
            if e.citations.len() > 1 {
                line.push_str(&format!(" +{}", e.citations.len() - 1));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}
