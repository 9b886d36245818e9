//! The timeline as one self-contained HTML report (`custody timeline --html FILE`).
//!
//! The report shows hostile evidence, so it is built to stay inert in a browser:
//! - one file, no network and no external asset: no script, no image, no font, no link, no
//!   form; the only style is one inline `<style>` element;
//! - a Content-Security-Policy `default-src 'none'`, with `style-src` allowing exactly that
//!   style element by its SHA-256 (a hash, not `'unsafe-inline'`), `base-uri` and
//!   `form-action` `'none'`: were anything to slip through the escaping, the browser would
//!   still load and run nothing;
//! - every string from the evidence, the analysis or the manifest is escaped twice: first its
//!   characters that act on a terminal or hide text (controls, bidi overrides, invalid
//!   UTF-8…) are made visible as [`crate::untrusted`] does, then `& < > " '` become character
//!   references. No attribute value comes from the evidence except the event's id, escaped
//!   the same way, and no URL is ever written.
//!
//! Each event is a `<details>` element (expandable without a script) whose body lists its
//! identifiers, related events and the exact sealed bytes of every record it cites.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Record, Timeline};
use crate::collect::analysis::Event;
use crate::collect::analysis::{Citation, HopStatus, OutcomeStatus};
use crate::untrusted::Untrusted;

/// The report's only style, allowed by its hash in the Content-Security-Policy.
const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #d0d7de}
code,pre,.mono{font-family:ui-monospace,monospace;font-size:12px}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 6px;text-align:left;vertical-align:top}
.chain{display:flex;flex-wrap:wrap;gap:.3em;list-style:none;padding:0}
.chain li{border:1px solid #8c959f;border-radius:4px;padding:2px 8px}
.linked{background:#dafbe1}.missing{background:#fff8c5}.conflict{background:#ffebe9}.not_applicable{background:#eaeef2}
.verdict{font-weight:bold}.warn{color:#a40e26;font-weight:bold}
ol.events{list-style:none;padding:0}ol.events li{border-bottom:1px solid #eaeef2;padding:2px 0}
summary{cursor:pointer}.time{color:#57606a}.kind{font-weight:bold}
.succeeded{color:#1a7f37}.failed{color:#a40e26}.unknown{color:#9a6700;font-weight:bold}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:6px;white-space:pre-wrap;word-break:break-all;max-height:24em;overflow:auto}
.cite{color:#57606a}
";

/// Longest part of one record shown in the report (the JSON form has it whole).
pub const MAX_RECORD_SHOWN: usize = 64 * 1024;

/// The Content-Security-Policy the report sets.
pub fn content_security_policy() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'")
}

/// Text for HTML: made visible as on a terminal ([`Untrusted`]), then HTML-escaped.
fn h(s: &str) -> String {
    esc(&Untrusted::new(s).to_string())
}

/// `& < > " '` as character references.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A record's bytes for a `<pre>`: line by line (its line breaks kept), each made visible and
/// escaped; at most [`MAX_RECORD_SHOWN`] bytes.
fn record_text(bytes: &[u8]) -> String {
    let shown = bytes.get(..MAX_RECORD_SHOWN).unwrap_or(bytes);
    let lines: Vec<String> = shown.split(|&b| b == b'\n').map(|l| esc(&Untrusted::bytes(l).to_string())).collect();
    let mut s = lines.join("\n");
    if bytes.len() > shown.len() {
        let _ = write!(
            s,
            "\n… {} more byte(s): `timeline --json --records` has the record whole",
            bytes.len() - shown.len()
        );
    }
    s
}

/// A serde enum's name (`snake_case`).
fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// A citation in short: `path:line`, or `path@offset`, with the item.
pub fn short_citation(c: &Citation) -> String {
    let mut s = match c.line {
        Some(l) => format!("{}:{l}", c.path),
        None => format!("{}@{}", c.path, c.offset),
    };
    if c.decompressed {
        s.push_str(" (decompressed)");
    }
    if let Some(i) = c.item {
        let _ = write!(s, " item {i}");
    }
    if let Some(sp) = &c.span_id {
        let _ = write!(s, " span {sp}");
    }
    s
}

/// The report.
pub fn render(t: &Timeline) -> String {
    let mut o = String::new();
    let csp = content_security_policy();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>custody timeline {}</title>\n<style>{STYLE}</style></head>\n<body>\n",
        esc(&csp),
        h(&t.bundle)
    );
    // `#bundle` is always the bundle holding the records shown: for a supplement, the original
    // (a supplement holds no evidence), the supplement being named apart as the analysis' source.
    let category = t.category.map(|c| c.as_str()).unwrap_or("(not given)");
    let _ = match &t.supplement_of {
        None => write!(
            o,
            "<header><h1>Incident timeline</h1><p>Evidence bundle <code id=\"bundle\">{}</code>, sealed {}, verified intact before this report was made. Category: {category}.</p>",
            h(&t.bundle),
            t.sealed_at.to_rfc3339(),
        ),
        Some(original) => write!(
            o,
            "<header><h1>Incident timeline</h1><p>Analysis from supplement <code id=\"analysis-bundle\">{}</code> (sealed {}) of evidence bundle <code id=\"bundle\">{}</code> (sealed {}), which holds the records shown; both verified intact before this report was made. Category: {category}.</p>",
            h(&t.bundle),
            t.sealed_at.to_rfc3339(),
            h(original),
            t.records_sealed_at().to_rfc3339(),
        ),
    };
    // The responder's notes and custody's, each labelled by who wrote it.
    for n in &t.notes {
        let _ = write!(o, "<p class=\"note-responder\">Responder's note: {}</p>", h(n));
    }
    for n in &t.tool_notes {
        let _ = write!(
            o,
            "<p class=\"note-tool\">custody's note{}: {}</p>",
            if t.tool_notes_by_prefix {
                " (told by its prefix: an older bundle keeps it among the responder's)"
            } else {
                ""
            },
            h(n)
        );
    }
    // Re-analyses of this bundle recorded in the store's ledger (`custody analyze`), as `show`
    // and `timeline` print them.
    let sup = &t.supplements;
    let _ = match (&sup.latest, sup.looked_up) {
        (_, false) => write!(
            o,
            "<p id=\"supplements\">Supplements: {}.</p>",
            h(sup.note.as_deref().unwrap_or(crate::analyze::NOT_LOOKED_UP))
        ),
        (None, true) => write!(o, "<p id=\"supplements\">Supplements: none in the store's ledger.</p>"),
        (Some(l), true) => write!(
            o,
            "<p id=\"supplements\">Supplements: {} in the store's ledger; the latest, <code id=\"latest-supplement\">{}</code> at position {}, {}.</p>",
            sup.count,
            h(&l.bundle),
            l.position,
            match (l.verified, l.sealed_at, l.problem.as_deref()) {
                (true, Some(at), _) if l.seeds.is_empty() => format!("sealed {}, no seed", at.to_rfc3339()),
                (true, Some(at), _) => format!("sealed {}, seeds {}", at.to_rfc3339(), h(&l.seeds.join(" "))),
                (true, None, _) => "verified".to_string(),
                (false, _, p) => format!("NOT VERIFIED: {}", h(p.unwrap_or("?"))),
            }
        ),
    };
    o.push_str("</header>\n");

    // Identifiers.
    o.push_str("<section id=\"identifiers\"><h2>Identifiers</h2><table><tr><th>identifier</th><th>status</th><th>value</th><th>why</th></tr>");
    for i in &t.identifiers {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            i.name.as_str(),
            name(&i.status),
            i.value.as_deref().map(h).unwrap_or_default(),
            h(&i.why)
        );
    }
    o.push_str("</table></section>\n");

    // The chain.
    o.push_str(
        "<section id=\"chain\"><h2>Chain: trace → session → deployment → change → wave</h2><ol class=\"chain\">",
    );
    for n in &t.chain.nodes {
        let _ = write!(
            o,
            "<li class=\"{}\" data-node=\"{}\">{} <code>{}</code></li>",
            name(&n.status),
            n.name.as_str(),
            node_label(n.name),
            match (&n.value, n.status) {
                (Some(v), _) => h(v),
                (None, HopStatus::Conflict) => format!("conflict: {}", h(&n.conflicts.join(", "))),
                (None, s) => name(&s),
            }
        );
    }
    o.push_str("</ol><table><tr><th>hop</th><th>status</th><th>evidence</th></tr>");
    for hop in &t.chain.hops {
        let _ = write!(
            o,
            "<tr class=\"{}\"><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            name(&hop.status),
            hop.from.as_str(),
            hop.to.as_str(),
            name(&hop.status),
            h(&hop.why)
        );
    }
    o.push_str("</table></section>\n");

    // Side effect and the checklist.
    let se = &t.side_effect;
    let _ = write!(
        o,
        "<section id=\"side-effect\"><h2>Side effect</h2><p class=\"verdict\">{} ({})</p><p>{}</p>",
        se.status.as_str(),
        h(&se.origin),
        h(&se.detail)
    );
    if let Some(w) = &se.warning {
        let _ = write!(o, "<p class=\"warn\">{}</p>", h(w));
    }
    for a in t.actions.iter().filter(|a| a.duplicate) {
        let _ = write!(
            o,
            "<p class=\"warn\">Duplicate: {} attempts of {} {} ({}) took effect {} time(s).</p>",
            a.attempts.len(),
            h(a.target.as_deref().unwrap_or("?")),
            match &a.idempotency_key {
                Some(k) => format!("under idempotency key <code>{}</code>", h(k)),
                None => "with no idempotency key (the same tool and arguments, called again)".to_string(),
            },
            h(&a.attempts.join(", ")),
            a.took_effect
        );
    }
    o.push_str("</section>\n<section id=\"checklist\"><h2>Checklist</h2><ul>");
    for c in &t.checklist {
        let mark = match c.status {
            crate::bundle::manifest::Status::Present => "[x]",
            crate::bundle::manifest::Status::NotApplicable => "[-]",
            crate::bundle::manifest::Status::Missing => "[ ]",
        };
        let _ = write!(o, "<li class=\"mono\">{mark} {}: {}</li>", h(&c.item), h(&c.detail));
    }
    o.push_str("</ul></section>\n");

    // The timeline.
    let _ = write!(o, "<section id=\"timeline\"><h2>Timeline ({} of {} event(s))</h2>", t.events.len(), t.events_total);
    let lo = &t.left_out;
    if lo.kind + lo.session + lo.time + lo.no_time > 0 || t.events_omitted > 0 {
        let _ = write!(
            o,
            "<p>Left out: {} by kind, {} by session, {} outside the time window, {} with no time; {} not listed by the analysis.</p>",
            lo.kind, lo.session, lo.time, lo.no_time, t.events_omitted
        );
    }
    o.push_str("<ol class=\"events\">\n");
    // Writes a responder must look at first are expanded: an unknown outcome, a duplicate.
    let dup: std::collections::BTreeSet<&str> =
        t.actions.iter().filter(|a| a.duplicate).flat_map(|a| a.attempts.iter().map(String::as_str)).collect();
    for (i, e) in t.events.iter().enumerate() {
        let unknown = e.outcome.as_ref().is_some_and(|x| x.status == OutcomeStatus::Unknown);
        let open = e.write && (unknown || dup.contains(e.id.as_str()));
        event(&mut o, e, open, t.records.as_ref().and_then(|r| r.get(i)).map(Vec::as_slice));
    }
    o.push_str("</ol></section>\n<footer><p>");
    match &t.supplement_of {
        None => o.push_str("Made by custody from the sealed analysis.json of the bundle above; every record shown is the exact sealed bytes its citation names."),
        Some(original) => {
            let _ = write!(
                o,
                "Made by custody from the sealed analysis.json of supplement {} of evidence bundle {}; every record shown is the exact sealed bytes its citation names in {}.",
                h(&t.bundle),
                h(original),
                h(original)
            );
        }
    }
    o.push_str("</p></footer>\n</body></html>\n");
    o
}

/// One event: its line, then (expanded) its identifiers, relations and cited records.
fn event(o: &mut String, e: &Event, open: bool, records: Option<&[Record]>) {
    let (out_class, out_text) = match &e.outcome {
        Some(x) => {
            let s = match x.status {
                OutcomeStatus::Succeeded if x.replayed => "succeeded (replayed)",
                OutcomeStatus::Succeeded => "succeeded",
                OutcomeStatus::Failed => "failed",
                OutcomeStatus::Unknown => "UNKNOWN",
            };
            let reason = x.reason.as_deref().map(|r| format!(" ({})", h(r))).unwrap_or_default();
            (name(&x.status), format!("→ {s}{reason}"))
        }
        None => (String::new(), String::new()),
    };
    let _ = write!(
        o,
        "<li class=\"event\" id=\"{}\" data-kind=\"{}\"><details{}><summary><span class=\"time\">{}</span> <span class=\"kind\">{}</span> {}{}{} <span class=\"{}\">{}</span> <span class=\"cite\">[{}]</span></summary>",
        h(&e.id),
        e.kind.as_str(),
        if open { " open" } else { "" },
        e.start.as_ref().map(|t| h(&t.at)).unwrap_or_else(|| "(no time)".into()),
        e.kind.as_str(),
        e.operation.as_deref().map(|x| format!("{} ", h(x))).unwrap_or_default(),
        e.target.as_deref().map(|x| format!("<b>{}</b>", h(x))).unwrap_or_default(),
        e.principal.as_deref().map(|x| format!(" as {}", h(x))).unwrap_or_default(),
        out_class,
        out_text,
        e.citations.first().map(|c| h(&short_citation(c))).unwrap_or_default()
    );
    o.push_str("<table>");
    let _ = write!(o, "<tr><th>event</th><td>{} (tie: {})</td></tr>", h(&e.id), name(&e.tie));
    if let Some(a) = &e.actor {
        let _ = write!(o, "<tr><th>actor</th><td>{}</td></tr>", h(a));
    }
    if let Some(s) = &e.subject {
        let _ = write!(o, "<tr><th>for</th><td>{}</td></tr>", h(s));
    }
    for (k, v) in e.ids.iter().chain(e.detail.iter()) {
        let _ = write!(o, "<tr><th>{}</th><td><code>{}</code></td></tr>", h(k), h(v));
    }
    if !e.related.is_empty() {
        let rel: Vec<String> = e.related.iter().map(|r| format!("{} {}", h(&r.relation), h(&r.event))).collect();
        let _ = write!(o, "<tr><th>related</th><td>{}</td></tr>", rel.join(", "));
    }
    o.push_str("</table>");
    for (i, c) in e.citations.iter().enumerate() {
        let _ = write!(
            o,
            "<p class=\"cite\">record {} of {}: {} — bytes {}+{} of blob <code>{}</code></p>",
            i + 1,
            e.citations.len(),
            h(&short_citation(c)),
            c.offset,
            c.len,
            h(&c.sha256)
        );
        if let Some(r) = records.and_then(|r| r.get(i)) {
            let _ = write!(o, "<pre class=\"record\">{}</pre>", record_text(&r.raw()));
        }
    }
    o.push_str("</details></li>\n");
}

/// A chain node's label: the `bundle` node is the policy/config bundle revision (bundle_id),
/// not the evidence bundle.
pub fn node_label(n: crate::collect::analysis::NodeName) -> &'static str {
    match n {
        crate::collect::analysis::NodeName::Bundle => "policy/config bundle",
        n => n.as_str(),
    }
}
