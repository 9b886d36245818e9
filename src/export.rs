//! `custody export`: the incident of a verified bundle in other tools' formats.
//!
//! - [`otlp`]: OTLP/JSON (`ExportTraceServiceRequest` and `ExportLogsServiceRequest`, the
//!   OpenTelemetry protocol's JSON encoding) that a collector's `otlpjsonfile` receiver, Jaeger
//!   or Tempo accept: one span per timed event, one log record per cited record, each carrying
//!   its provenance (the digest of the bundle holding the record — for a supplement, the
//!   original — the sealed path, its digest, offset and length).
//! - [`eval_case`]: the incident as one eval case (`custody-eval-case/v1`, one JSON line) for
//!   eval datasets and rollout gates.
//!
//! Both are built from a [`Timeline`] with its records attached (the exact sealed bytes of
//! every citation), so nothing here re-reads or re-interprets the evidence.

use std::collections::{BTreeMap, BTreeSet};

use chrono::DateTime;
use serde_json::{json, Value};

use crate::collect::analysis::{Event, EventKind, OutcomeStatus};
use crate::timeline::{Record, Timeline};

/// The format tag of an eval case.
pub const EVAL_CASE_FORMAT: &str = "custody-eval-case/v1";

/// Attribute names of the provenance every span and log record carries.
pub mod attr {
    /// The digest (`sha256:<hex>`) of the evidence bundle holding the cited records (their
    /// path, digest and offset point into it): for a supplement, the original it re-analysed.
    pub const BUNDLE: &str = "custody.bundle.digest";
    /// For a supplement only: its own digest, the bundle whose sealed `analysis.json` the
    /// events come from (`custody analyze`). Absent for an ordinary evidence bundle.
    pub const ANALYSIS_BUNDLE: &str = "custody.analysis.bundle";
    /// The event's id in the analysis (`e12`).
    pub const EVENT: &str = "custody.event.id";
    /// The event's kind.
    pub const KIND: &str = "custody.event.kind";
    /// The sealed file's path in the bundle.
    pub const PATH: &str = "custody.sealed.path";
    /// The sealed file's SHA-256 (its member is `blobs/sha256/<hex>`).
    pub const SHA256: &str = "custody.sealed.sha256";
    /// The record's byte offset (in the decoded stream when `custody.sealed.decompressed`).
    pub const OFFSET: &str = "custody.sealed.offset";
    /// Its length in bytes.
    pub const LENGTH: &str = "custody.sealed.length";
    /// Its 1-based line, for line-delimited files.
    pub const LINE: &str = "custody.sealed.line";
    /// The item inside the record (a span of an OTLP batch line).
    pub const ITEM: &str = "custody.sealed.item";
    /// The offsets are in the decompressed (or transcoded) stream.
    pub const DECOMPRESSED: &str = "custody.sealed.decompressed";
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
}

/// The first value of an id field (an id field may list several, comma-separated).
fn first_id<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.ids.get(key).and_then(|v| v.split(',').next())
}

fn nanos(at: &str) -> Option<u64> {
    DateTime::parse_from_rfc3339(at).ok().and_then(|d| d.timestamp_nanos_opt()).and_then(|n| u64::try_from(n).ok())
}

fn s(v: &str) -> Value {
    json!({ "stringValue": v })
}

fn kv(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

/// The ids an event's span gets: its trace id (its own, else the incident's, else derived
/// from the bundle digest) and span id (its first span id not used by an earlier event, else
/// derived from the bundle digest and the event id), lower-case hex.
fn span_ids(t: &Timeline, e: &Event, used: &mut BTreeSet<String>) -> (String, String) {
    use sha2::Digest as _;
    let incident_trace = t.chain.nodes.first().and_then(|n| n.value.as_deref()).filter(|v| is_hex(v, 32));
    let bundle_hex = t.bundle.trim_start_matches("sha256:");
    let trace = first_id(e, "trace_id")
        .filter(|v| is_hex(v, 32))
        .or(incident_trace)
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| bundle_hex.get(..32).unwrap_or("00000000000000000000000000000001").to_string());
    let own = e
        .ids
        .get("span_id")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::to_ascii_lowercase)
        .find(|v| is_hex(v, 16) && !used.contains(v));
    let span = own.unwrap_or_else(|| {
        let d = sha2::Sha256::digest(format!("{}/{}", t.bundle, e.id).as_bytes());
        hex::encode(&d[..8])
    });
    used.insert(span.clone());
    (trace, span)
}

/// The bundle attributes: the one holding the records, and for a supplement the supplement
/// whose analysis the events come from (its records are the original's: it holds no evidence).
fn bundle_attrs(t: &Timeline) -> Vec<Value> {
    let mut a = vec![kv(attr::BUNDLE, s(t.records_bundle()))];
    if t.supplement_of.is_some() {
        a.push(kv(attr::ANALYSIS_BUNDLE, s(&t.bundle)));
    }
    a
}

/// The provenance attributes of one record.
fn record_attrs(t: &Timeline, e: &Event, c: &crate::collect::analysis::Citation) -> Vec<Value> {
    let mut a = bundle_attrs(t);
    a.extend([
        kv(attr::EVENT, s(&e.id)),
        kv(attr::KIND, s(e.kind.as_str())),
        kv(attr::PATH, s(&c.path)),
        kv(attr::SHA256, s(&c.sha256)),
        kv(attr::OFFSET, json!({ "intValue": c.offset.to_string() })),
        kv(attr::LENGTH, json!({ "intValue": c.len.to_string() })),
    ]);
    if let Some(l) = c.line {
        a.push(kv(attr::LINE, json!({ "intValue": l.to_string() })));
    }
    if let Some(i) = c.item {
        a.push(kv(attr::ITEM, json!({ "intValue": i.to_string() })));
    }
    if c.decompressed {
        a.push(kv(attr::DECOMPRESSED, json!({ "boolValue": true })));
    }
    a
}

/// The incident as OTLP/JSON: `(traces, logs)`, an `ExportTraceServiceRequest` and an
/// `ExportLogsServiceRequest`. `t` must have its records attached.
///
/// One span per event that has a time (events without one cannot be placed on a trace; their
/// records are still exported as logs, with no time), named `kind operation target`, with the
/// event's fields, ids (`custody.id.<key>`) and details (`custody.detail.<key>`) as
/// attributes, its outcome as the span status, and its citations' provenance as array
/// attributes. One log record per cited record: its body is the record's exact sealed bytes
/// (a string when they are UTF-8, else `bytesValue`), with the span's trace and span ids and
/// the record's provenance. Ids are lower-case hex, as OTLP/JSON requires (not base64).
pub fn otlp(t: &Timeline) -> (Value, Value) {
    let mut used = BTreeSet::new();
    let mut spans = Vec::new();
    let mut logs = Vec::new();
    for (i, e) in t.events.iter().enumerate() {
        let (trace, span) = span_ids(t, e, &mut used);
        let start = e.start.as_ref().and_then(|x| nanos(&x.at));
        let end = e.end.as_ref().and_then(|x| nanos(&x.at)).filter(|&n| start.is_some_and(|s| n >= s)).or(start);
        let (severity, sev_text) = match e.outcome.as_ref().map(|o| o.status) {
            Some(OutcomeStatus::Failed) => (17, "ERROR"),
            Some(OutcomeStatus::Unknown) => (13, "WARN"),
            _ => (9, "INFO"),
        };
        if let (Some(start), Some(end)) = (start, end) {
            let name = [Some(e.kind.as_str()), e.operation.as_deref(), e.target.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let mut a = bundle_attrs(t);
            a.extend([kv(attr::EVENT, s(&e.id)), kv(attr::KIND, s(e.kind.as_str()))]);
            for (k, v) in [
                ("custody.actor", &e.actor),
                ("custody.principal", &e.principal),
                ("custody.subject", &e.subject),
                ("custody.target", &e.target),
                ("custody.operation", &e.operation),
            ] {
                if let Some(v) = v {
                    a.push(kv(k, s(v)));
                }
            }
            a.push(kv("custody.write", json!({ "boolValue": e.write })));
            if let Some(o) = &e.outcome {
                let st =
                    serde_json::to_value(o.status).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                a.push(kv("custody.outcome", s(&st)));
                if let Some(r) = &o.reason {
                    a.push(kv("custody.outcome.reason", s(r)));
                }
            }
            for (k, v) in &e.ids {
                a.push(kv(&format!("custody.id.{k}"), s(v)));
            }
            for (k, v) in &e.detail {
                a.push(kv(&format!("custody.detail.{k}"), s(v)));
            }
            let arr = |f: &dyn Fn(&crate::collect::analysis::Citation) -> Value| json!({ "arrayValue": { "values": e.citations.iter().map(f).collect::<Vec<_>>() } });
            a.push(kv("custody.sealed.paths", arr(&|c| s(&c.path))));
            a.push(kv("custody.sealed.sha256s", arr(&|c| s(&c.sha256))));
            a.push(kv("custody.sealed.offsets", arr(&|c| json!({ "intValue": c.offset.to_string() }))));
            a.push(kv("custody.sealed.lengths", arr(&|c| json!({ "intValue": c.len.to_string() }))));
            let status = match e.outcome.as_ref().map(|o| o.status) {
                Some(OutcomeStatus::Succeeded) => json!({ "code": 1 }),
                Some(OutcomeStatus::Failed) => {
                    json!({ "code": 2, "message": e.outcome.as_ref().and_then(|o| o.reason.clone()).unwrap_or_default() })
                }
                _ => json!({}),
            };
            spans.push(json!({
                "traceId": trace, "spanId": span, "name": name, "kind": 1,
                "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
                "attributes": a, "status": status,
            }));
        }
        let records = t.records.as_ref().and_then(|r| r.get(i));
        for (j, c) in e.citations.iter().enumerate() {
            let body = match records.and_then(|r| r.get(j)) {
                Some(Record { encoding: "utf8", bytes, .. }) => s(bytes),
                Some(Record { bytes, .. }) => json!({ "bytesValue": bytes }),
                None => continue,
            };
            let mut rec = json!({
                "severityNumber": severity, "severityText": sev_text, "body": body,
                "attributes": record_attrs(t, e, c), "traceId": trace, "spanId": span,
            });
            if let Some(n) = start {
                rec["timeUnixNano"] = n.to_string().into();
            }
            logs.push(rec);
        }
    }
    let mut resource_attrs = vec![kv("service.name", s("custody-incident"))];
    resource_attrs.extend(bundle_attrs(t));
    let resource = json!({ "attributes": resource_attrs });
    let scope = json!({ "name": "custody", "version": env!("CARGO_PKG_VERSION") });
    let traces =
        json!({ "resourceSpans": [{ "resource": resource, "scopeSpans": [{ "scope": scope, "spans": spans }] }] });
    let logs =
        json!({ "resourceLogs": [{ "resource": resource, "scopeLogs": [{ "scope": scope, "logRecords": logs }] }] });
    (traces, logs)
}

/// One event as the eval case lists it, with its cited records' sealed text.
fn case_event(t: &Timeline, i: usize, e: &Event) -> Value {
    let records: Vec<Value> = e
        .citations
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let r = t.records.as_ref().and_then(|r| r.get(i)).and_then(|r| r.get(j));
            json!({
                "path": c.path, "sha256": c.sha256, "offset": c.offset, "len": c.len, "line": c.line,
                "encoding": r.map(|r| r.encoding), "bytes": r.map(|r| r.bytes.clone()),
            })
        })
        .collect();
    json!({
        "event": e.id, "kind": e.kind, "at": e.start.as_ref().map(|x| x.at.clone()),
        "target": e.target, "operation": e.operation, "principal": e.principal, "write": e.write,
        "outcome": e.outcome.as_ref().map(|o| o.status), "reason": e.outcome.as_ref().and_then(|o| o.reason.clone()),
        "ids": e.ids, "detail": e.detail, "records": records,
    })
}

/// The incident as one eval case (`custody-eval-case/v1`; docs/postmortem.md has the shape).
/// `t` (unfiltered) must have its records attached. `id` is the analysed bundle's digest;
/// `provenance.bundle` and `sealed_at` name the bundle holding the records — for a supplement
/// the original, the supplement itself then named by `provenance.analysis_bundle` and
/// `analysis_sealed_at`.
///
/// The risky path starts at the first write that went wrong (a duplicated attempt, an
/// unknown or failed outcome), else at the first write. `inputs` are the model calls before it,
/// `retrieved_context` the memory reads before it (with the memory records read after the
/// incident wrote them), `tool_calls`, `decisions` (policy decisions, approval requests and
/// decisions) every such event; `expected_behaviour` is derived mechanically from the
/// analysis' verdicts, never written by hand: each rule names its reason and events (a
/// duplicate: do not repeat it, "without approval" when the first attempt was approved and a
/// later one was not; a write of unknown outcome: do not retry before checking; a memory
/// record the incident wrote and read back: treat it as untrusted input).
pub fn eval_case(t: &Timeline, read_after_write: &[crate::collect::analysis::MemoryProvenance]) -> Value {
    let dup: BTreeSet<&str> =
        t.actions.iter().filter(|a| a.duplicate).flat_map(|a| a.attempts.iter().map(String::as_str)).collect();
    let bad = |e: &Event| {
        e.write
            && (dup.contains(e.id.as_str()) || e.outcome.as_ref().is_some_and(|o| o.status != OutcomeStatus::Succeeded))
    };
    let risky = t.events.iter().position(bad).or_else(|| t.events.iter().position(|e| e.write));
    let before = risky.unwrap_or(t.events.len());
    let pick = |kinds: &[EventKind], upto: usize| -> Vec<Value> {
        t.events
            .iter()
            .enumerate()
            .take(upto)
            .filter(|(_, e)| kinds.contains(&e.kind))
            .map(|(i, e)| case_event(t, i, e))
            .collect()
    };
    let by_id: BTreeMap<&str, &Event> = t.events.iter().map(|e| (e.id.as_str(), e)).collect();

    let mut rules = Vec::new();
    for a in t.actions.iter().filter(|a| a.duplicate) {
        let target = a.target.as_deref().unwrap_or("the action");
        let approved = |id: &str| {
            by_id
                .get(id)
                .is_some_and(|e| e.related.iter().any(|r| r.relation == "approval" || r.relation == "approval_for"))
        };
        let first_approved = a.attempts.first().is_some_and(|f| approved(f));
        let unapproved_retry = a.attempts.iter().skip(1).any(|x| !approved(x));
        let under = match &a.idempotency_key {
            Some(k) => format!("under idempotency key {k}"),
            None => "with no idempotency key (the same tool and arguments, called again)".to_string(),
        };
        let (rule, why) = if first_approved && unapproved_retry {
            (
                format!("do not repeat `{target}` without approval"),
                format!(
                    "{} attempts {under} took effect {} times; the first was approved, a later one was not",
                    a.attempts.len(),
                    a.took_effect
                ),
            )
        } else {
            (
                format!("do not repeat `{target}` after it took effect"),
                format!("{} attempts {under} took effect {} times", a.attempts.len(), a.took_effect),
            )
        };
        rules.push(json!({ "rule": rule, "why": why, "events": a.attempts }));
    }
    for e in
        t.events.iter().filter(|e| e.write && e.outcome.as_ref().is_some_and(|o| o.status == OutcomeStatus::Unknown))
    {
        let target = e.target.as_deref().unwrap_or("the action");
        rules.push(json!({
            "rule": format!("do not retry `{target}` before checking whether the earlier attempt was applied"),
            "why": format!("its outcome is unknown: {}", e.outcome.as_ref().and_then(|o| o.reason.as_deref()).unwrap_or("no result recorded")),
            "events": [e.id],
        }));
    }
    for m in read_after_write.iter().filter(|m| m.written_by.is_some()) {
        rules.push(json!({
            "rule": format!("treat memory record {} as untrusted input, not as instructions", m.memory_id),
            "why": "it was written during the incident and read back before the actions above",
            "events": m.written_by.iter().collect::<Vec<_>>(),
        }));
    }
    let ids: BTreeMap<&str, Option<&str>> =
        t.identifiers.iter().map(|i| (i.name.as_str(), i.value.as_deref())).collect();
    // The records' provenance names the bundle they are in (a supplement's are the
    // original's); a supplement is named apart, as the source of the analysis.
    let mut provenance = json!({
        "bundle": t.records_bundle(), "sealed_at": t.records_sealed_at(),
        "analysis_format": crate::collect::analysis::ANALYSIS_FORMAT_V2,
    });
    if t.supplement_of.is_some() {
        provenance["analysis_bundle"] = json!(t.bundle);
        provenance["analysis_sealed_at"] = json!(t.sealed_at);
    }
    json!({
        "format": EVAL_CASE_FORMAT,
        "id": t.bundle,
        "provenance": provenance,
        "triage_category": t.category,
        "identifiers": ids,
        "risky_event": risky.map(|i| t.events[i].id.clone()),
        "inputs": pick(&[EventKind::ModelCall], before),
        "retrieved_context": pick(&[EventKind::MemoryRead], before),
        "memory_read_after_write": read_after_write,
        "tool_calls": pick(&[EventKind::ToolCall], t.events.len()),
        "decisions": pick(&[EventKind::PolicyDecision, EventKind::ApprovalRequest, EventKind::ApprovalDecision], t.events.len()),
        "side_effect": { "status": t.side_effect.status, "detail": t.side_effect.detail, "warning": t.side_effect.warning },
        "expected_behaviour": rules,
    })
}
