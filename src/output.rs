//! Printing results: a human form on stdout, or exactly one JSON document with `--json`
//! (each shape has a schema in `schemas/`).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use custody::bundle::manifest::{EventKind, Manifest, Status};
use custody::keys::{pub_path_for, SecretKey};
use custody::preserve::Preserved;
use custody::store::ledger::StoredEntry;
use custody::store::{PutOutcome, Store};
use custody::verify::Report;

fn print_json(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub fn keygen(k: &SecretKey, path: &Path, json: bool) -> Result<()> {
    let pubp = pub_path_for(path);
    if json {
        return print_json(
            &json!({"keyid": k.id().to_string(), "private_key": path.display().to_string(), "public_key": pubp.display().to_string()}),
        );
    }
    println!("key id      {}", k.id());
    println!("private key {} (mode 0600: keep it secret)", path.display());
    println!("public key  {} (pin it where bundles are verified)", pubp.display());
    Ok(())
}

fn human_size(n: u64) -> String {
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
            "checklist": a.map(|a| a["checklist"].clone()),
            "evidence_problems": a.map(|a| a["evidence_problems"].clone()),
            "side_effect_warning": side_effect_warning(a),
            "elapsed_ms": elapsed.as_millis() as u64,
        }));
    }
    println!("sealed   {}", p.bundle);
    println!(
        "stored   {}{}",
        p.location,
        if p.outcome == PutOutcome::AlreadyPresent { " (identical bundle already there)" } else { "" }
    );
    println!("ledger   position {} (entry {})", p.position, p.entry);
    println!("signer   {} ({})", key.id(), pub_path_for(&key.path).display());
    println!(
        "evidence {} file(s), {} → {} in {:.2}s",
        m.entries.len(),
        human_size(p.input_bytes),
        human_size(p.size),
        elapsed.as_secs_f64()
    );
    print_identifiers(m, 3);
    print_checklist(m, a);
    print_problems(m, a);
    if let Some(w) = side_effect_warning(a) {
        eprintln!("custody: WARNING: side effect unknown — {w}");
        println!("side effect: UNKNOWN — {w}");
    } else if m.incident.side_effect == custody::bundle::manifest::SideEffect::Unknown {
        println!("side effect: UNKNOWN — do not repeat the action until its outcome is established");
    } else {
        println!("side effect: {}", m.incident.side_effect.as_str());
    }
    println!("verify:  custody verify --store {} {}", store.url(), p.bundle);
    Ok(())
}

/// `a`: the analysis (a v1 manifest's, a v2 bundle's `analysis.json`, or preserve's summary).
fn print_checklist(m: &Manifest, a: Option<&Value>) {
    let c = &m.completeness;
    let present = c.items.iter().filter(|i| i.status == Status::Present).count();
    println!("completeness: {present} of {} present{}", c.items.len(), if c.complete { "" } else { " — NOT complete" });
    for i in &c.items {
        let mark = match i.status {
            Status::Present => "[x]",
            Status::Missing => "[ ]",
            Status::NotApplicable => "[-]",
        };
        let word = match i.status {
            Status::Present => "",
            Status::Missing => "MISSING: ",
            Status::NotApplicable => "n/a: ",
        };
        println!("  {mark} {:<10} {:<16} {word}{}", i.group, i.item, i.detail);
    }
    if let Some(items) = a.and_then(|a| a["checklist"].as_array()) {
        for i in items {
            let (mark, word) = match i["status"].as_str() {
                Some("present") => ("[x]", ""),
                Some("not_applicable") => ("[-]", "n/a: "),
                _ => ("[ ]", "NO: "),
            };
            println!(
                "  {mark} {:<10} {:<22} {word}{}",
                "linkage",
                i["item"].as_str().unwrap_or("?"),
                i["detail"].as_str().unwrap_or("")
            );
        }
    }
}

fn side_effect_warning(a: Option<&Value>) -> Option<String> {
    a.and_then(|a| a["side_effect"]["warning"].as_str()).map(String::from)
}

fn print_identifiers(m: &Manifest, max_sources: usize) {
    println!("identifiers:");
    for id in &m.incident.identifiers {
        let src = |sources: &[custody::bundle::manifest::IdentSource]| {
            let mut v: Vec<String> = sources
                .iter()
                .take(max_sources)
                .map(|s| match (&s.path, s.line, &s.field) {
                    (Some(p), Some(l), Some(f)) => format!("{p}:{l} {f}"),
                    (Some(p), None, Some(f)) => format!("{p}@{} {f}", s.offset.unwrap_or(0)),
                    (Some(p), _, None) => p.clone(),
                    _ => s.origin.clone(),
                })
                .collect();
            if sources.len() > max_sources {
                v.push(format!("+{} more", sources.len() - max_sources));
            }
            v.join("; ")
        };
        match (&id.value, id.status) {
            (Some(v), Status::Present) => println!("  {:<16} {v}  ← {}", id.name.as_str(), src(&id.sources)),
            (_, Status::NotApplicable) => println!("  {:<16} not applicable", id.name.as_str()),
            _ if !id.conflicts.is_empty() => println!("  {:<16} CONFLICT (no value picked)", id.name.as_str()),
            _ => println!("  {:<16} MISSING", id.name.as_str()),
        }
        for c in &id.conflicts {
            println!("  {:<16} CONFLICT: {}  ← {}", "", c.value, src(&c.sources));
        }
    }
}

fn print_problems(m: &Manifest, a: Option<&Value>) {
    let journal: Vec<_> =
        m.journal.iter().filter(|e| matches!(e.event, EventKind::Error | EventKind::Skipped)).collect();
    if !journal.is_empty() {
        println!("problems recorded in the custody journal ({}):", journal.len());
        for e in journal {
            println!(
                "  {:<8} {}: {}",
                format!("{:?}", e.event).to_lowercase(),
                e.path.as_deref().unwrap_or("-"),
                e.detail.as_deref().unwrap_or("")
            );
        }
    }
    let recs: Vec<&Value> = a
        .and_then(|a| a["evidence_problems"].as_array())
        .map(|v| v.iter().filter(|p| !matches!(p["problem"].as_str(), Some("unreadable" | "skipped"))).collect())
        .unwrap_or_default();
    if !recs.is_empty() {
        println!("evidence problems found by the analysis ({}):", recs.len());
        for p in recs {
            println!(
                "  {:<14} {}: {}",
                p["problem"].as_str().unwrap_or("?"),
                p["path"].as_str().unwrap_or("-"),
                p["detail"].as_str().unwrap_or("")
            );
        }
    }
}

fn print_analysis(a: &Value) {
    let s = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| "?".into());
    let o = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| "-".into());
    if let Some(fm) = a.get("field_mapping") {
        println!("field map  {} {}", s(&fm["origin"]), fm["path"].as_str().unwrap_or(""));
    }
    println!("linkage chain:");
    let chain = a["linkage"]["chain"].as_array().cloned().unwrap_or_default();
    if chain.is_empty() {
        println!("  (no two identifiers seen together in incident records)");
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
        println!("  ({} other identifier pair(s) seen together: see show --json)", chain.len() - main.len());
    }
    for e in main {
        println!(
            "  {} {} → {} {}  ({} record(s))",
            s(&e["from"]),
            s(&e["from_value"]),
            s(&e["to"]),
            s(&e["to_value"]),
            e["records"]
        );
    }
    let principals = a["linkage"]["principals"].as_array().cloned().unwrap_or_default();
    println!("principal per tool ({}):", principals.len());
    for p in &principals {
        println!("  {:<20} as {}  ({} call(s))", s(&p["tool"]), o(&p["principal"]), p["calls"]);
    }
    let approvals = a["linkage"]["approvals"].as_array().cloned().unwrap_or_default();
    println!("approval path ({} step(s)):", approvals.len());
    for p in &approvals {
        println!(
            "  {} {} tool {} decision {} by {}  [{}{}]",
            o(&p["at"]["timestamp"]),
            o(&p["approval_id"]),
            o(&p["tool"]),
            o(&p["decision"]),
            o(&p["approver"]),
            s(&p["at"]["source_path"]),
            p["at"]["line"].as_u64().map(|l| format!(":{l}")).unwrap_or_else(|| format!("@{}", p["at"]["offset"]))
        );
    }
    println!(
        "memory     {} access(es), {} read(s), {} write(s)",
        a["linkage"]["memory"].as_array().map(Vec::len).unwrap_or(0),
        a["linkage"]["memory_reads"],
        a["linkage"]["memory_writes"]
    );
    for m in a["linkage"]["memory"].as_array().into_iter().flatten() {
        println!("  {} {} {}", o(&m["at"]["timestamp"]), o(&m["op"]), o(&m["memory_id"]));
    }
    let egress = a["linkage"]["egress"].as_array().cloned().unwrap_or_default();
    println!("egress destinations observed ({}):", egress.len());
    for e in &egress {
        println!(
            "  {:<32} {} request(s), methods {}, statuses {}",
            s(&e["destination"]),
            e["requests"],
            e["methods"],
            e["statuses"]
        );
    }
    let index = a["index"].as_array().map(Vec::len).unwrap_or(0);
    println!(
        "index      {index} incident record(s){} from {} source(s); {} record(s) scanned",
        match a["index_omitted"].as_u64() {
            Some(n) if n > 0 => format!(" (+{n} not listed)"),
            _ => String::new(),
        },
        a["sources"]
            .as_array()
            .map(|v| v.iter().filter(|s| s["incident_records"].as_u64() > Some(0)).count())
            .unwrap_or(0),
        a["stats"]["records_seen"]
    );
    for src in a["sources"].as_array().into_iter().flatten().filter(|s| s["incident_records"].as_u64() > Some(0)) {
        println!("  {:>6}  {} ({})", src["incident_records"], s(&src["source_path"]), s(&src["format"]));
    }
    if let Some(w) = a["side_effect"]["warning"].as_str() {
        println!("WARNING    side effect unknown — {w}");
    }
}

pub fn report(r: &Report, json: bool) -> Result<()> {
    if json {
        return print_json(&serde_json::to_value(r)?);
    }
    print!("{}", r.to_human());
    Ok(())
}

pub fn show(r: &Report, m: Option<&Manifest>, json: bool) -> Result<()> {
    if json {
        return print_json(
            &json!({"bundle": r.subject.bundle, "verdict": r.verdict, "manifest": m, "problems": m.map(problems), "verification": r}),
        );
    }
    let Some(m) = m else {
        print!("{}", r.to_human());
        return Ok(());
    };
    println!("bundle     {}", r.subject.bundle.as_deref().unwrap_or("?"));
    println!("verdict    {}", if r.intact() { "INTACT" } else { "FAILED (run custody verify for the findings)" });
    println!("format     {}", m.format);
    println!(
        "sealed at  {} by {}@{} (custody {})",
        m.sealed_at, m.collector.user, m.collector.host, m.collector.version
    );
    let trusted = r.signer.as_ref().map(|s| s.trusted).unwrap_or(false);
    println!("signer     {}{}", m.signer.keyid, if trusted { " (trusted)" } else { " (NOT trusted here)" });
    match &m.ledger_prev {
        Some(l) => println!("ledger     sealed after position {} ({})", l.position, l.bundle),
        None => println!("ledger     sealed when the ledger was empty (or outside a store)"),
    }
    if let Some(l) = &r.ledger {
        println!("           recorded at position {} of {}", l.position, l.length);
    }
    println!("category   {}", m.incident.category.map(|c| c.as_str()).unwrap_or("(not given)"));
    println!("side effect {}", m.incident.side_effect.as_str());
    print_identifiers(m, 5);
    for n in &m.incident.notes {
        println!("note       {n}");
    }
    print_checklist(m, m.analysis.as_ref());
    println!("entries ({}), merkle root {}:", m.entries.len(), m.merkle_root);
    for e in &m.entries {
        println!("  {:<12} {:>10}  {}  {}", e.kind, e.size, &e.sha256.hex()[..16], e.path);
    }
    println!("journal    {} event(s)", m.journal.len());
    print_problems(m, m.analysis.as_ref());
    if let Some(a) = &m.analysis {
        print_analysis(a);
    } else {
        println!("analysis   none (sealed with --no-analyze)");
    }
    Ok(())
}

pub fn list(store: &Store, entries: &[StoredEntry], json: bool) -> Result<()> {
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| match &e.parsed {
            Ok((env, le)) => json!({
                "position": e.position, "entry": e.id.to_string(), "bundle": le.bundle.to_string(),
                "location": store.location(&le.bundle_key), "size": le.bundle_size, "sealed_at": le.sealed_at,
                "appended_at": le.appended_at, "signer": env.keyid.hex(), "valid": true,
            }),
            Err(p) => {
                json!({"position": e.position, "entry": e.id.to_string(), "valid": false, "problem": p.to_string()})
            }
        })
        .collect();
    if json {
        return print_json(&json!({"store": store.url(), "entries": rows}));
    }
    println!("ledger of {} ({} entries, oldest first)", store.url(), entries.len());
    for r in &rows {
        if r["valid"] == true {
            println!(
                "  #{:<5} {}  {}  {}",
                r["position"],
                r["appended_at"].as_str().unwrap_or(""),
                r["bundle"].as_str().unwrap_or(""),
                r["location"].as_str().unwrap_or("")
            );
        } else {
            println!("  #{:<5} INVALID ENTRY: {}", r["position"], r["problem"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

pub fn extracted(dir: &Path, r: &Report, done: &custody::extract::Extracted, json: bool) -> Result<()> {
    if json {
        return print_json(
            &json!({"bundle": r.subject.bundle, "to": dir.display().to_string(), "files": done.files, "bytes": done.bytes, "verification": r}),
        );
    }
    println!("verified {} — intact", r.subject.bundle.as_deref().unwrap_or("bundle"));
    println!("extracted {} file(s), {} bytes, into {}", done.files.len(), done.bytes, dir.display());
    Ok(())
}

/// Report adoptions made before a preserve (stderr: stdout holds the preserve's own output).
pub fn adoptions(done: &[custody::preserve::Adoption]) {
    for d in done {
        match &d.result {
            Ok(p) => eprintln!("custody: adopted unreferenced bundle {} at ledger position {p}", d.bundle),
            Err(why) => eprintln!("custody: left unreferenced bundle {} alone: {why}", d.bundle),
        }
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
    println!("custody store init: {}", store.url());
    for c in checks {
        let tag = match c.status {
            Promise::Kept => "  ok  ",
            Promise::Broken => " FAIL ",
            Promise::NotApplicable => "  n/a ",
        };
        println!("[{tag}] {:<19} {}", c.name, c.detail);
    }
    if broken == 0 {
        println!("RESULT: the store keeps every promise custody relies on");
    } else {
        println!("RESULT: {broken} promise(s) broken — evidence written here is not protected as custody says");
    }
    Ok(())
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
    if done.is_empty() {
        println!("no unreferenced bundles in {}", store.url());
    }
    for d in done {
        match &d.result {
            Ok(p) => println!("adopted {} at ledger position {p}", d.bundle),
            Err(why) => println!("NOT adopted {}: {why}", d.bundle),
        }
    }
    Ok(())
}
