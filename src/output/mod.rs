//! Printing results: a human form on stdout, or exactly one JSON document with `--json`
//! (each shape has a schema in `schemas/`).
//!
//! Every string that did not come from custody itself (evidence file names, record values,
//! notes, manifest fields, object keys, error texts that quote them) is printed through
//! [`custody::untrusted::Untrusted`] (`u(…)` here), whose escapes are documented there; the
//! human output then passes through [`ControlsEscaped`], which escapes any such character
//! that a print site forgot (all but LF, which only the per-value escaping can tell from a
//! line break of custody's own). JSON strings carry the same characters as `\uXXXX`.

mod analysis;
pub mod progress;
mod timeline;

use std::io::{BufWriter, StdoutLock, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize as _;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::{json, Value};

use custody::analysis::{Analysis, EvidenceProblem, ANALYSIS_FORMAT_V2};
use custody::analyze::Supplements;
use custody::manifest::{EventKind, Manifest, Status};

use analysis::{Detail, View};
use custody::keys::{pub_path_for, SecretKey};
use custody::preserve::Preserved;
use custody::store::ledger::StoredEntry;
use custody::store::{PutOutcome, Store};
use custody::untrusted::{is_escaped, untrusted as u, Untrusted};
use custody::verify::report::CheckStatus;
use custody::verify::{Finding, Level, Report, Trust};

/// Standard output, locked and buffered. Rust's stdout is line-buffered even into a pipe or a
/// file: `show --json` of a bundle of 100 000 files made ~2 million `write` calls (2.1 s), and
/// preserve's list of problems one call per line.
fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(64 << 10, std::io::stdout().lock())
}

/// Human output: buffered stdout behind the [`ControlsEscaped`] net.
type Human = ControlsEscaped<BufWriter<StdoutLock<'static>>>;

/// Runs `print` on buffered stdout and flushes it. A write error is returned, never a panic
/// (`println!` panics); a closed pipe (`custody show … | head`) is not an error: the reader
/// has what it wanted, and the command's exit code stands.
fn printed(print: impl FnOnce(&mut Human) -> std::io::Result<()>) -> Result<()> {
    let mut out = ControlsEscaped(stdout());
    closed_pipe_is_fine(print(&mut out).and_then(|()| out.flush()))
}

fn closed_pipe_is_fine(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn print_json(v: &Value) -> Result<()> {
    let mut out = stdout();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsonForTerminals(PrettyFormatter::new()));
    let r = v.serialize(&mut ser).map_err(std::io::Error::from).and_then(|()| writeln!(out)).and_then(|()| out.flush());
    closed_pipe_is_fine(r)
}

/// The net under human output: a character of [`is_escaped`] other than LF that reaches
/// stdout is written as [`Untrusted`] writes it. Each untrusted value is escaped where it is
/// formatted (LF and backslashes included); this catches one that a print site forgot.
struct ControlsEscaped<W>(W);

impl<W: Write> Write for ControlsEscaped<W> {
    // Formatting hands over whole `str` pieces, so a character is never split between calls.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\n') {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        for chunk in buf.utf8_chunks() {
            let v = chunk.valid();
            let mut start = 0;
            for (i, c) in v.char_indices() {
                if c != '\n' && is_escaped(c) {
                    self.0.write_all(&v.as_bytes()[start..i])?;
                    start = i + c.len_utf8();
                    write!(self.0, "{}", u(&v[i..start]))?;
                }
            }
            self.0.write_all(&v.as_bytes()[start..])?;
            for b in chunk.invalid() {
                write!(self.0, "\\x{b:02x}")?;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// serde_json's pretty printer, writing the characters of [`is_escaped`] inside strings as
/// `\uXXXX` (serde_json itself escapes only C0 controls): the same JSON value, and nothing a
/// terminal acts on when `--json` output is read on one (C1 controls, DEL, bidi overrides).
struct JsonForTerminals(PrettyFormatter<'static>);

impl Formatter for JsonForTerminals {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_escaped(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                start = i + c.len_utf8();
                for unit in c.encode_utf16(&mut [0u16; 2]) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A JSON value found in an analysis (a count, a list of methods…), as compact JSON text,
/// escaped: a hostile analysis may hold any value where a number is expected.
fn jv(v: &Value) -> String {
    u(&v.to_string()).to_string()
}

pub fn keygen(k: &SecretKey, path: &Path, json: bool) -> Result<()> {
    let pubp = pub_path_for(path);
    if json {
        return print_json(
            &json!({"keyid": k.id().to_string(), "private_key": path.display().to_string(), "public_key": pubp.display().to_string()}),
        );
    }
    printed(|out| {
        writeln!(out, "key id      {}", k.id())?;
        writeln!(out, "private key {} (mode 0600: keep it secret)", Untrusted::path(path))?;
        writeln!(out, "public key  {} (pin it where bundles are verified)", Untrusted::path(&pubp))
    })
}

fn problems(m: &Manifest) -> Vec<Value> {
    m.journal
        .iter()
        .filter(|e| matches!(e.event, EventKind::Error | EventKind::Skipped))
        .map(|e| json!({"event": e.event, "path": e.path, "detail": e.detail}))
        .collect()
}

pub fn preserved(store: &Store, p: &Preserved, key: &SecretKey, elapsed: Duration, json: bool) -> Result<()> {
    let m = &p.manifest;
    let a = p.analysis_summary.as_ref();
    // A seed that matched nothing is the responder's first clue that it is wrong (a typo, the
    // wrong incident, the wrong export): said on stderr whatever the output form.
    for s in a.map(|a| a.seeds.as_slice()).unwrap_or_default() {
        if s.records == 0 {
            eprintln!(
                "custody: WARNING: the seed {} {} matched no record of the evidence: nothing was linked from it; check the value and that the right exports were collected",
                s.ident.map(|i| i.as_str()).unwrap_or("value"),
                u(&s.value)
            );
        }
    }
    if json {
        return print_json(&json!({
            "bundle": p.bundle.to_string(),
            "location": p.location,
            "store": store.url(),
            "outcome": if p.outcome == PutOutcome::AlreadyPresent { "already_present" } else { "created" },
            "size": p.size,
            "input_bytes": p.input_bytes,
            "files": m.entries.len(),
            "ledger": {"position": p.position, "entry": p.entry.to_string()},
            "signer": {"keyid": key.id().to_string(), "public_key": pub_path_for(&key.path).display().to_string()},
            "sealed_at": m.sealed_at,
            "completeness": m.completeness,
            "side_effect": m.incident.side_effect,
            "problems": problems(m),
            "identifiers": m.incident.identifiers,
            "checklist": a.map(|a| &a.checklist),
            "evidence_problems": a.map(|a| &a.evidence_problems),
            "side_effect_warning": a.and_then(|a| a.side_effect.warning.as_deref()),
            "analysis": a,
            "elapsed_ms": elapsed.as_millis() as u64,
            "timestamp": p.timestamp.as_ref().map(|t| json!({
                "key": t.key,
                "sha256": t.sha256.to_string(),
                "gen_time": t.attested.gen_time,
                "tsa": t.attested.tsa,
            })),
        }));
    }
    printed(|out| {
        writeln!(out, "sealed   {}", p.bundle)?;
        writeln!(
            out,
            "stored   {}{}",
            u(&p.location),
            if p.outcome == PutOutcome::AlreadyPresent { " (identical bundle already there)" } else { "" }
        )?;
        writeln!(out, "ledger   position {} (entry {})", p.position, p.entry)?;
        if let Some(t) = &p.timestamp {
            writeln!(out, "time     {} by {} (RFC 3161 token {})", t.attested.gen_time, u(&t.attested.tsa), u(&t.key))?;
        }
        writeln!(out, "signer   {} ({})", key.id(), Untrusted::path(&pub_path_for(&key.path)))?;
        writeln!(
            out,
            "evidence {} file(s), {} → {} in {:.2}s",
            m.entries.len(),
            progress::human_bytes(p.input_bytes),
            progress::human_bytes(p.size),
            elapsed.as_secs_f64()
        )?;
        // The first of each list; all of them are in `--json` and in the bundle.
        let all = format!("custody show --store {} {}", u(store.url()), p.bundle);
        let view = a.map(View::of_summary);
        match &view {
            Some(v) => analysis::print(out, v, Detail::Brief, &all)?,
            None => print_identifiers(out, m, 3)?,
        }
        print_completeness(out, m, Detail::Brief, view.as_ref().is_some_and(|v| v.seedless()))?;
        if let Some(v) = &view {
            analysis::print_checklist(out, v, Detail::Brief)?;
        }
        let evidence = view.as_ref().map(|v| v.evidence_problems()).unwrap_or_default();
        print_problems(out, m, evidence, Some(PRESERVE_LISTED), &all)?;
        let warning = view.as_ref().and_then(|v| v.side_effect_warning());
        let detail = view.as_ref().map(|v| v.side_effect().detail.as_str());
        match (m.incident.side_effect, warning, detail) {
            (custody::manifest::SideEffect::Unknown, Some(w), _) => writeln!(out, "side effect: UNKNOWN — {}", u(w))?,
            (custody::manifest::SideEffect::Unknown, None, _) => {
                writeln!(out, "side effect: UNKNOWN — do not repeat the action until its outcome is established")?
            }
            (s, w, d) => {
                writeln!(out, "side effect: {}{}", s.as_str(), d.map(|d| format!(" — {}", u(d))).unwrap_or_default())?;
                if let Some(w) = w {
                    writeln!(out, "WARNING: some outcomes are unknown — {}", u(w))?;
                }
            }
        }
        if let Some(w) = warning {
            eprintln!("custody: WARNING: side effect unknown — {}", u(w));
        }
        writeln!(out, "verify:  custody verify --store {} {}", u(store.url()), p.bundle)
    })
}

/// The manifest's completeness (identifiers and evidence kinds, as signed): brief prints what
/// is not present; full every item.
/// `seedless`: nothing was linked, every identifier is missing for that one reason (said once).
fn print_completeness(out: &mut impl Write, m: &Manifest, d: Detail, seedless: bool) -> std::io::Result<()> {
    let c = &m.completeness;
    let present = c.items.iter().filter(|i| i.status == Status::Present).count();
    writeln!(
        out,
        "completeness: {present} of {} present{}",
        c.items.len(),
        if c.complete { "" } else { " — NOT complete" }
    )?;
    if seedless {
        writeln!(out, "  [ ] identifiers: none decided without a seed (see the candidates above)")?;
    }
    for i in &c.items {
        if d == Detail::Brief && (i.status == Status::Present || (seedless && i.group == "identifier")) {
            continue;
        }
        let mark = match i.status {
            Status::Present => "[x]",
            Status::NotApplicable => "[-]",
            _ => "[ ]",
        };
        let word = match i.status {
            Status::Present => "",
            Status::NotApplicable => "n/a: ",
            _ => "MISSING: ",
        };
        writeln!(out, "  {mark} {:<10} {:<16} {word}{}", u(&i.group), u(&i.item), u(&i.detail))?;
    }
    Ok(())
}

/// A v1 analysis' linkage checklist (older bundles).
fn print_checklist_v1(out: &mut impl Write, a: &Value) -> std::io::Result<()> {
    if let Some(items) = a["checklist"].as_array() {
        for i in items {
            let (mark, word) = match i["status"].as_str() {
                Some("present") => ("[x]", ""),
                Some("not_applicable") => ("[-]", "n/a: "),
                _ => ("[ ]", "NO: "),
            };
            writeln!(
                out,
                "  {mark} {:<10} {:<22} {word}{}",
                "linkage",
                u(i["item"].as_str().unwrap_or("?")),
                u(i["detail"].as_str().unwrap_or(""))
            )?;
        }
    }
    Ok(())
}

/// A v1 analysis' evidence problems (older bundles), in the v2 shape.
fn evidence_problems_v1(a: &Value) -> Vec<EvidenceProblem> {
    a["evidence_problems"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| EvidenceProblem {
            path: p["path"].as_str().unwrap_or("-").to_string(),
            problem: p["problem"].as_str().unwrap_or("?").to_string(),
            detail: p["detail"].as_str().unwrap_or("").to_string(),
        })
        .collect()
}

fn print_identifiers(out: &mut impl Write, m: &Manifest, max_sources: usize) -> std::io::Result<()> {
    writeln!(out, "identifiers:")?;
    for id in &m.incident.identifiers {
        let src = |sources: &[custody::manifest::IdentSource]| {
            let mut v: Vec<String> = sources
                .iter()
                .take(max_sources)
                .map(|s| match (&s.path, s.line, &s.field) {
                    (Some(p), Some(l), Some(f)) => format!("{}:{l} {}", u(p), u(f)),
                    (Some(p), None, Some(f)) => format!("{}@{} {}", u(p), s.offset.unwrap_or(0), u(f)),
                    (Some(p), _, None) => u(p).to_string(),
                    _ => u(&s.origin).to_string(),
                })
                .collect();
            if sources.len() > max_sources {
                v.push(format!("+{} more", sources.len() - max_sources));
            }
            v.join("; ")
        };
        match (&id.value, id.status) {
            (Some(v), Status::Present) => writeln!(out, "  {:<16} {}  ← {}", id.name.as_str(), u(v), src(&id.sources))?,
            (_, Status::NotApplicable) => writeln!(out, "  {:<16} not applicable", id.name.as_str())?,
            _ if !id.conflicts.is_empty() => writeln!(out, "  {:<16} CONFLICT (no value picked)", id.name.as_str())?,
            _ => writeln!(out, "  {:<16} MISSING", id.name.as_str())?,
        }
        for c in &id.conflicts {
            writeln!(out, "  {:<16} CONFLICT: {}  ← {}", "", u(&c.value), src(&c.sources))?;
        }
    }
    Ok(())
}

/// How many journal problems and evidence problems preserve lists (a seal of 100 000 partly
/// written files found 12 000; the full lists are in `--json`, `show` and the bundle).
const PRESERVE_LISTED: usize = 20;

/// The journal's errors and skips, then the analysis' evidence problems; with `limit`, the
/// first `limit` of each and a count of the rest, with the command that lists them all.
fn print_problems(
    out: &mut impl Write,
    m: &Manifest,
    evidence: &[EvidenceProblem],
    limit: Option<usize>,
    all: &str,
) -> std::io::Result<()> {
    let limit = limit.unwrap_or(usize::MAX);
    let rest = |out: &mut dyn Write, n: usize| -> std::io::Result<()> {
        if n > limit {
            writeln!(out, "  ... and {} more (all of them: {all})", n - limit)?;
        }
        Ok(())
    };
    let journal: Vec<_> =
        m.journal.iter().filter(|e| matches!(e.event, EventKind::Error | EventKind::Skipped)).collect();
    if !journal.is_empty() {
        writeln!(out, "problems recorded in the custody journal ({}):", journal.len())?;
        for e in journal.iter().take(limit) {
            let event = if e.event == EventKind::Error { "error" } else { "skipped" };
            writeln!(
                out,
                "  {event:<8} {}: {}",
                u(e.path.as_deref().unwrap_or("-")),
                u(e.detail.as_deref().unwrap_or(""))
            )?;
        }
        rest(out, journal.len())?;
    }
    let recs: Vec<&EvidenceProblem> =
        evidence.iter().filter(|p| !matches!(p.problem.as_str(), "unreadable" | "skipped")).collect();
    if !recs.is_empty() {
        writeln!(out, "evidence problems found by the analysis ({}):", recs.len())?;
        for p in recs.iter().take(limit) {
            writeln!(out, "  {:<14} {}: {}", u(&p.problem), u(&p.path), u(&p.detail))?;
        }
        rest(out, recs.len())?;
    }
    Ok(())
}

fn print_analysis(out: &mut impl Write, a: &Value) -> std::io::Result<()> {
    let s = |v: &Value| v.as_str().map(|v| u(v).to_string()).unwrap_or_else(|| "?".into());
    let o = |v: &Value| v.as_str().map(|v| u(v).to_string()).unwrap_or_else(|| "-".into());
    if let Some(fm) = a.get("field_mapping") {
        writeln!(out, "field map  {} {}", s(&fm["origin"]), u(fm["path"].as_str().unwrap_or("")))?;
    }
    writeln!(out, "linkage chain:")?;
    let chain = a["linkage"]["chain"].as_array().cloned().unwrap_or_default();
    if chain.is_empty() {
        writeln!(out, "  (no two identifiers seen together in incident records)")?;
    }
    // The playbook's chain first; every other pair is in --json.
    const MAIN: [(&str, &str); 7] = [
        ("trace_id", "session_id"),
        ("session_id", "agent_id"),
        ("session_id", "bundle_id"),
        ("bundle_id", "rollout_wave"),
        ("bundle_id", "change_id"),
        ("session_id", "approval_id"),
        ("approval_id", "idempotency_key"),
    ];
    let main: Vec<&Value> =
        chain.iter().filter(|e| MAIN.iter().any(|(f, t)| e["from"] == *f && e["to"] == *t)).collect();
    if main.len() < chain.len() {
        writeln!(out, "  ({} other identifier pair(s) seen together: see show --json)", chain.len() - main.len())?;
    }
    for e in main {
        writeln!(
            out,
            "  {} {} → {} {}  ({} record(s))",
            s(&e["from"]),
            s(&e["from_value"]),
            s(&e["to"]),
            s(&e["to_value"]),
            jv(&e["records"])
        )?;
    }
    let principals = a["linkage"]["principals"].as_array().cloned().unwrap_or_default();
    writeln!(out, "principal per tool ({}):", principals.len())?;
    for p in &principals {
        writeln!(out, "  {:<20} as {}  ({} call(s))", s(&p["tool"]), o(&p["principal"]), jv(&p["calls"]))?;
    }
    let approvals = a["linkage"]["approvals"].as_array().cloned().unwrap_or_default();
    writeln!(out, "approval path ({} step(s)):", approvals.len())?;
    for p in &approvals {
        writeln!(
            out,
            "  {} {} tool {} decision {} by {}  [{}{}]",
            o(&p["at"]["timestamp"]),
            o(&p["approval_id"]),
            o(&p["tool"]),
            o(&p["decision"]),
            o(&p["approver"]),
            s(&p["at"]["source_path"]),
            p["at"]["line"].as_u64().map(|l| format!(":{l}")).unwrap_or_else(|| format!("@{}", jv(&p["at"]["offset"])))
        )?;
    }
    writeln!(
        out,
        "memory     {} access(es), {} read(s), {} write(s)",
        a["linkage"]["memory"].as_array().map(Vec::len).unwrap_or(0),
        jv(&a["linkage"]["memory_reads"]),
        jv(&a["linkage"]["memory_writes"])
    )?;
    for m in a["linkage"]["memory"].as_array().into_iter().flatten() {
        writeln!(out, "  {} {} {}", o(&m["at"]["timestamp"]), o(&m["op"]), o(&m["memory_id"]))?;
    }
    let egress = a["linkage"]["egress"].as_array().cloned().unwrap_or_default();
    writeln!(out, "egress destinations observed ({}):", egress.len())?;
    for e in &egress {
        writeln!(
            out,
            "  {:<32} {} request(s), methods {}, statuses {}",
            s(&e["destination"]),
            jv(&e["requests"]),
            jv(&e["methods"]),
            jv(&e["statuses"])
        )?;
    }
    let index = a["index"].as_array().map(Vec::len).unwrap_or(0);
    writeln!(
        out,
        "index      {index} incident record(s){} from {} source(s); {} record(s) scanned",
        match a["index_omitted"].as_u64() {
            Some(n) if n > 0 => format!(" (+{n} not listed)"),
            _ => String::new(),
        },
        a["sources"]
            .as_array()
            .map(|v| v.iter().filter(|s| s["incident_records"].as_u64() > Some(0)).count())
            .unwrap_or(0),
        jv(&a["stats"]["records_seen"])
    )?;
    for src in a["sources"].as_array().into_iter().flatten().filter(|s| s["incident_records"].as_u64() > Some(0)) {
        writeln!(out, "  {:>6}  {} ({})", jv(&src["incident_records"]), s(&src["source_path"]), s(&src["format"]))?;
    }
    if let Some(w) = a["side_effect"]["warning"].as_str() {
        writeln!(out, "WARNING    side effect unknown — {}", u(w))?;
    }
    Ok(())
}

pub fn report(r: &Report, json: bool) -> Result<()> {
    if json {
        return print_json(&serde_json::to_value(r)?);
    }
    printed(|out| write!(out, "{}", r.to_human()))
}

pub fn show(
    r: &Report,
    m: Option<&Manifest>,
    supplements: &Supplements,
    store: Option<&str>,
    json: bool,
) -> Result<()> {
    if json {
        return print_json(&json!({
            "bundle": r.subject.bundle,
            "verdict": r.verdict,
            "manifest": m,
            "problems": m.map(problems),
            "verification": r,
            "supplement_of": m.and_then(|m| m.supplement_of.as_ref()).map(|s| s.bundle.to_string()),
            "supplements": supplements,
        }));
    }
    let Some(m) = m else {
        return printed(|out| write!(out, "{}", r.to_human()));
    };
    printed(|out| {
        writeln!(out, "bundle     {}", u(r.subject.bundle.as_deref().unwrap_or("?")))?;
        if r.intact() {
            writeln!(out, "verdict    INTACT")?;
        } else {
            let failed: Vec<&str> = r.checks.iter().filter(|c| c.status == CheckStatus::Fail).map(|c| c.name).collect();
            writeln!(
                out,
                "verdict    FAILED ({}): what follows is what the manifest claims; `custody verify` lists the findings",
                if failed.is_empty() { "see the findings".to_string() } else { failed.join(", ") }
            )?;
        }
        writeln!(out, "format     {}", u(&m.format))?;
        writeln!(
            out,
            "sealed at  {} by {}@{} (custody {})",
            m.sealed_at,
            u(&m.collector.user),
            u(&m.collector.host),
            u(&m.collector.version)
        )?;
        let trusted = r.signer.as_ref().map(|s| s.trusted).unwrap_or(false);
        writeln!(
            out,
            "signer     {}{}",
            u(&m.signer.keyid),
            if trusted { " (trusted)" } else { " (NOT trusted here)" }
        )?;
        match &m.ledger_prev {
            Some(l) => writeln!(out, "ledger     sealed after position {} ({})", l.position, l.bundle)?,
            None => writeln!(out, "ledger     sealed when the ledger was empty (or outside a store)")?,
        }
        if let Some(l) = &r.ledger {
            writeln!(out, "           recorded at position {} of {}", l.position, l.length)?;
        }
        print_supplement_links(out, m.supplement_of.as_ref(), supplements, store)?;
        writeln!(out, "category   {}", m.incident.category.map(|c| c.as_str()).unwrap_or("(not given)"))?;
        writeln!(out, "side effect {}", m.incident.side_effect.as_str())?;
        // Who wrote each note: the responder's, then custody's own (v3 seals them apart; a v1
        // or v2 manifest keeps custody's among the responder's, told by their prefix).
        let (responder, tool, by_prefix) = m.incident.notes_by_author();
        for n in responder {
            writeln!(out, "note       {}", u(n))?;
        }
        for n in &tool {
            writeln!(out, "tool note  {}", u(n))?;
        }
        if by_prefix && !tool.is_empty() {
            writeln!(
                out,
                "           (a {} manifest keeps custody's notes among the responder's: told apart by their prefix)",
                u(&m.format)
            )?;
        }
        // A v2 analysis is read as the typed model; anything else (older bundles) as JSON.
        let typed: Option<Result<Analysis, String>> = m.analysis.as_ref().and_then(|a| {
            (a["format"].as_str() == Some(ANALYSIS_FORMAT_V2))
                .then(|| serde_json::from_value::<Analysis>(a.clone()).map_err(|e| e.to_string()))
        });
        let view = match &typed {
            Some(Ok(a)) => Some(View::of_analysis(a)),
            _ => None,
        };
        match &view {
            Some(v) => analysis::print(out, v, Detail::Full, "")?,
            None => print_identifiers(out, m, 5)?,
        }
        print_completeness(out, m, Detail::Full, false)?;
        match (&view, &m.analysis) {
            (Some(v), _) => analysis::print_checklist(out, v, Detail::Full)?,
            (None, Some(a)) => print_checklist_v1(out, a)?,
            (None, None) => {}
        }
        writeln!(out, "entries ({}), merkle root {}:", m.entries.len(), m.merkle_root)?;
        for e in &m.entries {
            writeln!(out, "  {:<12} {:>10}  {}  {}", u(&e.kind), e.size, &e.sha256.hex()[..16], u(&e.path))?;
        }
        writeln!(out, "journal    {} event(s)", m.journal.len())?;
        let evidence = match (&view, &m.analysis) {
            (Some(v), _) => v.evidence_problems().to_vec(),
            (None, Some(a)) => evidence_problems_v1(a),
            (None, None) => Vec::new(),
        };
        print_problems(out, m, &evidence, None, "")?;
        match (&view, &typed, &m.analysis) {
            (Some(v), _, _) => {
                if let Some(w) = v.side_effect_warning() {
                    writeln!(out, "WARNING    side effect unknown — {}", u(w))?;
                }
                writeln!(out, "{}", analysis::stats_line(v))
            }
            (None, Some(Err(e)), _) => {
                writeln!(out, "analysis   NOT readable as {ANALYSIS_FORMAT_V2}: {}", u(e))
            }
            (None, _, Some(a)) => print_analysis(out, a),
            (None, _, None) if m.analysis_ref.is_some() => {
                writeln!(out, "analysis   not shown (see the analysis warning)")
            }
            (None, _, None) => writeln!(out, "analysis   none (sealed with --no-analyze)"),
        }
    })
}

/// The supplement lines of `show` and `timeline`: which bundle this one re-analyses, and its
/// latest supplement (or why supplements were not looked up). Values escaped.
pub(crate) fn print_supplement_links(
    out: &mut impl Write,
    of: Option<&custody::manifest::SupplementOf>,
    s: &Supplements,
    store: Option<&str>,
) -> std::io::Result<()> {
    let store = u(store.unwrap_or("URL")).to_string();
    if let Some(o) = of {
        writeln!(
            out,
            "supplement of {} (sealed {}): this bundle is a re-analysis of that one's evidence, which stays there; see it with `custody show --store {store} {}`",
            o.bundle, o.sealed_at, o.bundle
        )?;
    }
    if !s.looked_up {
        return writeln!(out, "supplements {}", u(s.note.as_deref().unwrap_or(custody::analyze::NOT_LOOKED_UP)));
    }
    let Some(l) = &s.latest else { return writeln!(out, "supplements none") };
    let seeds = if l.seeds.is_empty() {
        "no seed".to_string()
    } else {
        format!("seeds {}", l.seeds.iter().map(|x| u(x).to_string()).collect::<Vec<_>>().join(" "))
    };
    let state = match (&l.verified, &l.problem, &l.sealed_at) {
        (true, _, Some(at)) => format!("sealed {at}, {seeds}"),
        (true, _, None) => seeds,
        (false, p, _) => format!("NOT VERIFIED: {}", u(p.as_deref().unwrap_or("?"))),
    };
    writeln!(
        out,
        "supplements {} (latest {} at position {}, {state}); view it with `custody show --store {store} {}` or `custody timeline --store {store} {}`",
        s.count,
        u(&l.bundle),
        l.position,
        u(&l.bundle),
        u(&l.bundle)
    )
}

/// `analyze`: the supplement sealed, what it re-analysed with, and how the identifiers
/// changed from the original's.
pub fn analyzed(store: &Store, d: &custody::analyze::Supplemented, key: &SecretKey, json: bool) -> Result<()> {
    let a = d.analysis_summary.as_ref();
    for s in a.map(|a| a.seeds.as_slice()).unwrap_or_default() {
        if s.records == 0 {
            eprintln!(
                "custody: WARNING: the seed {} {} matched no record of the evidence: nothing was linked from it; check the value",
                s.ident.map(|i| i.as_str()).unwrap_or("value"),
                u(&s.value)
            );
        }
    }
    let before = &d.original.incident.identifiers;
    let changes: Vec<Value> = d
        .manifest
        .incident
        .identifiers
        .iter()
        .map(|i| {
            let was = before.iter().find(|b| b.name == i.name).and_then(|b| b.value.clone());
            json!({"name": i.name, "before": was, "after": i.value})
        })
        .collect();
    if json {
        return print_json(&json!({
            "bundle": d.bundle.to_string(),
            "supplement_of": d.record.supplement_of.bundle.to_string(),
            "location": d.location,
            "store": store.url(),
            "size": d.size,
            "evidence_bytes": d.evidence_bytes,
            "ledger": {"position": d.position, "entry": d.entry.to_string(), "supplement_of": d.record.supplement_of.bundle.to_string()},
            "signer": {"keyid": key.id().to_string(), "public_key": pub_path_for(&key.path).display().to_string()},
            "sealed_at": d.manifest.sealed_at,
            "record": d.record,
            "identifiers": changes,
            "checklist": a.map(|a| &a.checklist),
            "analysis": a,
        }));
    }
    printed(|out| {
        writeln!(out, "sealed   supplement {}", d.bundle)?;
        writeln!(
            out,
            "of       {} (verified; its evidence re-read from the store, not collected again)",
            d.record.supplement_of.bundle
        )?;
        writeln!(out, "stored   {}", u(&d.location))?;
        writeln!(
            out,
            "ledger   position {} (entry {}), supplement_of {}",
            d.position, d.entry, d.record.supplement_of.bundle
        )?;
        writeln!(out, "signer   {} ({})", key.id(), Untrusted::path(&pub_path_for(&key.path)))?;
        let seeds: Vec<String> = d
            .record
            .seeds
            .iter()
            .map(|s| match s.ident {
                Some(i) => format!("{}={}", i.as_str(), u(&s.value)),
                None => u(&s.value).to_string(),
            })
            .collect();
        writeln!(out, "seeds    {}", if seeds.is_empty() { "none".to_string() } else { seeds.join(" ") })?;
        let fm = &d.record.field_map;
        writeln!(
            out,
            "mapping  {}{}",
            fm.origin,
            fm.path.as_deref().map(|p| format!(" ({})", u(p))).unwrap_or_default()
        )?;
        writeln!(
            out,
            "evidence {} file(s), {} re-analysed",
            d.original.entries.len(),
            progress::human_bytes(d.evidence_bytes)
        )?;
        writeln!(out, "identifiers (original → supplement):")?;
        for c in &changes {
            let v = |x: &Value| x.as_str().map(|s| u(s).to_string()).unwrap_or_else(|| "-".into());
            let (b, a) = (v(&c["before"]), v(&c["after"]));
            writeln!(
                out,
                "  {:<16} {b} → {a}{}",
                c["name"].as_str().unwrap_or(""),
                if b == a { "" } else { "  (changed)" }
            )?;
        }
        writeln!(
            out,
            "see it with `custody show --store {} {}`; the original now lists it (`custody show --store {} {}`)",
            u(store.url()),
            d.bundle,
            u(store.url()),
            d.record.supplement_of.bundle
        )
    })
}

/// `findings[i]`: what [`custody::verify::check_ledger_entry`] found in `entries[i]`. An
/// entry is valid when it has no error finding: signed by a pinned key, with a good
/// signature, at its position, linked to the entry before.
pub fn list(
    store: &Store,
    entries: &[StoredEntry],
    findings: &[Vec<Finding>],
    details: &[Option<Value>],
    trust: &Trust,
    json: bool,
) -> Result<()> {
    let rows: Vec<Value> = entries
        .iter()
        .zip(findings)
        .zip(details)
        .map(|((e, fs), d)| {
            let problems: Vec<&str> =
                fs.iter().filter(|f| f.level == Level::Error).map(|f| f.message.as_str()).collect();
            let mut row = match &e.parsed {
                Ok((env, le)) => json!({
                    "position": e.position, "entry": e.id.to_string(), "bundle": le.bundle.to_string(),
                    "location": store.location(&le.bundle_key), "size": le.bundle_size, "sealed_at": le.sealed_at,
                    "appended_at": le.appended_at, "signer": env.keyid.hex(),
                    "signer_trusted": trust.find(&env.keyid).is_some(), "valid": problems.is_empty(),
                    "adopted": le.adopted(),
                }),
                Err(_) => json!({"position": e.position, "entry": e.id.to_string(), "valid": false}),
            };
            if !problems.is_empty() {
                row["problem"] = problems.join("; ").into();
            }
            if let (Some(d), true) = (d, row.get("bundle").is_some()) {
                row["details"] = d.clone();
            }
            row
        })
        .collect();
    if json {
        return print_json(&json!({"store": store.url(), "entries": rows}));
    }
    let invalid = rows.iter().filter(|r| r["valid"] != true).count();
    printed(|out| {
        writeln!(
            out,
            "ledger of {} ({} entries, oldest first; each entry's signature, signer and link checked)",
            u(store.url()),
            entries.len()
        )?;
        for r in &rows {
            if r["valid"] == true {
                writeln!(
                    out,
                    "  #{:<5} {}  {}  {}{}",
                    r["position"],
                    u(r["appended_at"].as_str().unwrap_or("")),
                    u(r["bundle"].as_str().unwrap_or("")),
                    u(r["location"].as_str().unwrap_or("")),
                    if r["adopted"] == true { "  (adopted)" } else { "" }
                )?;
                if let Some(d) = r.get("details") {
                    writeln!(out, "         {}", list_details(d))?;
                }
            } else {
                writeln!(out, "  #{:<5} INVALID ENTRY: {}", r["position"], u(r["problem"].as_str().unwrap_or("")))?;
            }
        }
        if invalid > 0 {
            writeln!(
                out,
                "RESULT: {invalid} of {} entries did not check out; `custody verify --store {} --all` audits the ledger and its bundles",
                rows.len(),
                u(store.url())
            )?;
        }
        Ok(())
    })
}

pub fn extracted(dir: &Path, r: &Report, done: &custody::extract::Extracted, json: bool) -> Result<()> {
    if json {
        return print_json(
            &json!({"bundle": r.subject.bundle, "to": dir.display().to_string(), "files": done.files, "bytes": done.bytes, "verification": r}),
        );
    }
    printed(|out| {
        writeln!(out, "verified {} — intact", u(r.subject.bundle.as_deref().unwrap_or("bundle")))?;
        writeln!(out, "extracted {} file(s), {} bytes, into {}", done.files.len(), done.bytes, Untrusted::path(dir))
    })
}

/// Report adoptions made before a preserve (stderr: stdout holds the preserve's own output).
pub fn adoptions(done: &[custody::preserve::Adoption]) {
    for d in done {
        match &d.result {
            Ok(p) => eprintln!("custody: adopted unreferenced bundle {} at ledger position {p}", d.bundle),
            Err(why) => eprintln!("custody: left unreferenced bundle {} alone: {}", d.bundle, u(why)),
        }
    }
}

/// Staging files of killed runs that a preserve or `store repair` removed (on stderr).
pub fn swept(paths: &[std::path::PathBuf]) {
    for p in paths {
        eprintln!(
            "custody: removed {}: a staging file left by an interrupted run (not written to for over an hour; never a sealed bundle)",
            Untrusted::path(p)
        );
    }
}

/// What storing a bundle (or sweeping interrupted uploads) left or removed (on stderr).
pub fn store_notes(notes: &[String]) {
    for n in notes {
        eprintln!("custody: {}", u(n));
    }
}

/// `store init`.
pub fn store_checks(store: &Store, checks: &[custody::store::inspect::StoreCheck], json: bool) -> Result<()> {
    use custody::store::inspect::Promise;
    let broken = checks.iter().filter(|c| c.status == Promise::Broken).count();
    if json {
        return print_json(&json!({
            "store": store.url(),
            "checks": checks,
            "verdict": if broken == 0 { "ok" } else { "broken" },
        }));
    }
    printed(|out| {
        writeln!(out, "custody store init: {}", u(store.url()))?;
        for c in checks {
            let tag = match c.status {
                Promise::Kept => "  ok  ",
                Promise::Broken => " FAIL ",
                Promise::NotApplicable => "  n/a ",
                _ => " ??? ",
            };
            writeln!(out, "[{tag}] {:<19} {}", c.name, u(&c.detail))?;
        }
        if broken == 0 {
            writeln!(out, "RESULT: the store keeps every promise custody relies on")?;
        } else {
            writeln!(
                out,
                "RESULT: {broken} promise(s) broken — evidence written here is not protected as custody says"
            )?;
        }
        Ok(())
    })
}

/// `store repair`.
pub fn repaired(store: &Store, done: &[custody::preserve::Adoption], json: bool) -> Result<()> {
    if json {
        let items: Vec<Value> = done
            .iter()
            .map(|d| match &d.result {
                Ok(p) => json!({"bundle": d.bundle.to_string(), "adopted": true, "position": p}),
                Err(why) => json!({"bundle": d.bundle.to_string(), "adopted": false, "reason": why}),
            })
            .collect();
        return print_json(&json!({"store": store.url(), "unreferenced": items}));
    }
    printed(|out| {
        if done.is_empty() {
            writeln!(out, "no unreferenced bundles in {}", u(store.url()))?;
        }
        for d in done {
            match &d.result {
                Ok(p) => writeln!(out, "adopted {} at ledger position {p}", d.bundle)?,
                Err(why) => writeln!(out, "NOT adopted {}: {}", d.bundle, u(why))?,
            }
        }
        Ok(())
    })
}

/// `timeline`: the human lines, or the document as JSON.
pub fn timeline(t: &custody::timeline::Timeline, store: Option<&str>, json: bool) -> Result<()> {
    if json {
        return print_json(&serde_json::to_value(t)?);
    }
    printed(|out| timeline::print(out, t, store))
}

/// `list`: one bundle's details on one line (values escaped).
fn list_details(d: &Value) -> String {
    let links = &d["links"];
    let mut parts = Vec::new();
    if d["verified"] != true {
        parts.push(format!("NOT VERIFIED: {}", u(d["problem"].as_str().unwrap_or(""))));
    } else {
        parts.push(d["category"].as_str().unwrap_or("no category").to_string());
        parts.push(format!("side effect {}", u(d["side_effect"].as_str().unwrap_or("?"))));
        if let Some(s) = d["analysis_side_effect"].as_str() {
            parts.push(format!("analysis: {}", u(s)));
        }
        let seeds: Vec<String> =
            d["seeds"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).map(|s| u(s).to_string()).collect();
        parts.push(if seeds.is_empty() { "no seed".into() } else { format!("seeds {}", seeds.join(" ")) });
        parts.push(format!(
            "{} file(s), {}",
            d["files"].as_u64().unwrap_or(0),
            progress::human_bytes(d["evidence_bytes"].as_u64().unwrap_or(0))
        ));
        if let Some(n) = d["note"].as_str() {
            const SHOWN: usize = 100;
            let short: String = n.chars().take(SHOWN).collect();
            let more = if n.chars().count() > SHOWN { "…" } else { "" };
            parts.push(format!("note \"{}{more}\"", u(&short)));
        }
    }
    // The ledger's link is said as a fact only when the verified manifest signs the same one.
    let name =
        |v: &Value| v.as_str().map(|s| format!("supplement of {}", u(s))).unwrap_or_else(|| "no supplement".into());
    match (links["supplement_of"].as_str(), &links["signed"]) {
        (Some(s), Value::Bool(true)) => parts.push(format!("supplement of {}", u(s))),
        (_, Value::Bool(false)) => parts.push(format!(
            "SUPPLEMENT LINK MISMATCH: the ledger entry says {}, the signed manifest says {} (`custody verify --store URL DIGEST` reports it)",
            name(&links["supplement_of"]),
            name(&links["manifest_supplement_of"])
        )),
        (Some(s), _) => parts.push(format!("supplement of {} (the ledger's claim: the bundle did not verify)", u(s))),
        (None, _) => {}
    }
    if let Some(s) = links["supplements"].as_array().filter(|s| !s.is_empty()) {
        let v: Vec<String> = s.iter().filter_map(|x| x.as_str()).map(|x| u(x).to_string()).collect();
        // Other entries' claims: each supplement's own line says whether it signs the link.
        parts.push(format!("supplemented by {} (per the ledger)", v.join(", ")));
    }
    parts.join(" · ")
}

/// `search`: per bundle that matched, its chain and matching events; then the sessions and
/// waves they span, and what could not be searched.
pub fn search(doc: &Value, json: bool) -> Result<()> {
    if json {
        return print_json(doc);
    }
    let q = &doc["query"];
    printed(|out| {
        let matches = doc["matches"].as_array().map(Vec::as_slice).unwrap_or_default();
        writeln!(
            out,
            "{} {}: {} of {} bundle(s) searched in {} ({})",
            u(q["by"].as_str().unwrap_or("")),
            u(q["value"].as_str().unwrap_or("")),
            matches.len(),
            doc["searched"],
            u(doc["store"].as_str().unwrap_or("")),
            u(doc["checked"].as_str().unwrap_or(""))
        )?;
        for m in matches {
            let s = |k: &str| m[k].as_str().map(|v| u(v).to_string()).unwrap_or_else(|| "?".into());
            writeln!(
                out,
                "  #{} {}  session {} · deployment {} · wave {} · {}",
                m["position"],
                s("bundle"),
                s("session"),
                s("deployment"),
                s("wave"),
                m["category"].as_str().unwrap_or("no category")
            )?;
            for e in m["events"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let f = |k: &str| e[k].as_str().map(|v| u(v).to_string());
                writeln!(
                    out,
                    "      {:<5} {:<24} {:<15} {}{}",
                    f("event").unwrap_or_default(),
                    f("at").unwrap_or_else(|| "(no time)".into()),
                    f("kind").unwrap_or_default(),
                    f("target").unwrap_or_default(),
                    f("principal").map(|p| format!(" as {p}")).unwrap_or_default()
                )?;
            }
        }
        let list = |k: &str| -> String {
            let v: Vec<String> =
                doc[k].as_array().into_iter().flatten().filter_map(|x| x.as_str()).map(|x| u(x).to_string()).collect();
            if v.is_empty() {
                "none known".into()
            } else {
                v.join(", ")
            }
        };
        writeln!(out, "sessions   {}", list("sessions"))?;
        writeln!(out, "waves      {}", list("waves"))?;
        for s in doc["not_searched"].as_array().map(Vec::as_slice).unwrap_or_default() {
            writeln!(
                out,
                "NOT SEARCHED #{} {}: {}",
                s["position"],
                u(s["bundle"].as_str().unwrap_or("?")),
                u(s["why"].as_str().unwrap_or(""))
            )?;
        }
        Ok(())
    })
}
