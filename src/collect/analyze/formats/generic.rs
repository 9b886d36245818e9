//! Generic JSON (JSON Lines or one document) and the generic reading every format falls back
//! on: each field classified by the semantics table ([`ItemBuilder::walk`]), the record's time
//! from the common time fields, and the event it describes recognised by its shape:
//!
//! | shape | event |
//! |---|---|
//! | `decision_id` and a `result` | `policy_decision` |
//! | an approval id and a decision or status | `approval_decision` (or `approval_request` when pending) |
//! | a memory id or a memory operation (`op`/`operation`/`event`) on `memory` | `memory_read` / `memory_write` |
//! | a tool name (`tool`, `tool_name`, `function.name`, …) with arguments, a response, a status or a call id | `tool_call` |
//! | an HTTP method with a URL or host | `egress_request` |
//!
//! A record matching none of them still links (its identifiers and values are read).

use super::super::item::{at, bounded, first, outcome_of, scalar, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::{FormatDef, Head, Item, LayoutPref};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// Time fields read when a format names none, in order.
pub(crate) const TIME_FIELDS: [&str; 20] = [
    "timestamp",
    "@timestamp",
    "ts",
    "time",
    "start_time",
    "startTime",
    "started_at",
    "startedAt",
    "created_at",
    "createdAt",
    "requested_at",
    "decided_at",
    "eventTime",
    "event_time",
    "datetime",
    "date",
    "logged_at",
    "timeUnixNano",
    "startTimeUnixNano",
    "time_unix_nano",
];

/// End-time fields.
pub(crate) const END_FIELDS: [&str; 7] =
    ["end_time", "endTime", "ended_at", "endedAt", "completed_at", "finished_at", "endTimeUnixNano"];

/// Generic JSON Lines.
pub(crate) struct Jsonl;

impl FormatDef for Jsonl {
    fn name(&self) -> &'static str {
        "jsonl"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["ndjson", "json-lines", "tool-calls", "tool_calls"]
    }
    fn kind(&self) -> Option<&'static str> {
        None
    }
    fn what(&self) -> &'static str {
        "JSON Lines of any shape (tool-call logs, memory records, gateway logs), read by the semantics table"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.json && !h.array && h.line_complete && !h.name.ends_with(".json")
    }
}

/// One generic JSON document (an array: one record per element).
pub(crate) struct Json;

impl FormatDef for Json {
    fn name(&self) -> &'static str {
        "json"
    }
    fn kind(&self) -> Option<&'static str> {
        None
    }
    fn what(&self) -> &'static str {
        "one JSON document of any shape (an array: one record per element), read by the semantics table"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.json
    }
}

/// Not read: binary content (attachments, images, archives).
pub(crate) struct Opaque;

impl FormatDef for Opaque {
    fn name(&self) -> &'static str {
        "opaque"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["none", "binary"]
    }
    fn kind(&self) -> Option<&'static str> {
        None
    }
    fn what(&self) -> &'static str {
        "binary content: sealed, not read (listed as not analysed)"
    }
    fn detect(&self, _: &Head<'_>) -> bool {
        true
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::None
    }
}

/// Items of a JSON value read generically (an array: one per element).
pub(crate) fn read_value(v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
    match v {
        Value::Array(list) => {
            for e in list {
                out.push(generic_item(e, m));
            }
        }
        _ => out.push(generic_item(v, m)),
    }
}

/// One record read generically.
pub(crate) fn generic_item(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !v.is_object() {
        return b.finish();
    }
    b.walk("", v);
    let start = b.time_from(v, &TIME_FIELDS);
    if let Some(ev) = generic_evidence(v, &b, start) {
        b.evidence(ev);
    }
    b.finish()
}

/// The end of a record: an end-time field, or its start plus a duration in milliseconds.
pub(crate) fn end_of(v: &Value, start: Option<&Time>) -> Option<Time> {
    if let Some(t) = END_FIELDS.iter().filter_map(|p| at(v, p)).find_map(Time::of_json) {
        return Some(t);
    }
    let ms = ["duration_ms", "latency_ms", "durationMs", "elapsed_ms"]
        .iter()
        .filter_map(|p| at(v, p))
        .find_map(|d| d.as_f64().or_else(|| d.as_str().and_then(|s| s.parse().ok())))?;
    let s = start?.nanos?;
    if !ms.is_finite() || !(0.0..1e12).contains(&ms) {
        return None;
    }
    Time::from_nanos(s.checked_add((ms * 1e6) as i128)?)
}

/// A tool name in a record.
pub(crate) fn tool_name(v: &Value) -> Option<String> {
    first(
        v,
        &["tool", "tool_name", "toolName", "gen_ai.tool.name", "tool.name", "function.name", "function_name", "tool_id"],
    )
    .filter(|t| !t.contains('{'))
}

/// What a tool-call record says of its outcome: a timeout flag, a status (response status,
/// outcome, status code), or an error.
pub(crate) fn tool_outcome(v: &Value) -> OutcomeEv {
    for flag in ["timeout", "timed_out", "timedOut"] {
        if at(v, flag).and_then(Value::as_bool) == Some(true) {
            return OutcomeEv {
                status: Some(OutcomeStatus::Unknown),
                code: Some(flag.to_string()),
                reason: Some("timeout".into()),
            };
        }
    }
    let status = [
        "outcome",
        "response.status",
        "response.status_code",
        "response.statusCode",
        "response.code",
        "status_code",
        "statusCode",
        "http_status",
        "result.status",
        "status",
    ]
    .iter()
    .filter_map(|p| at(v, p))
    .find_map(|x| scalar(x).filter(|s| !s.trim().is_empty()));
    if let Some(s) = status {
        return outcome_of(&s);
    }
    match at(v, "error").or_else(|| at(v, "response.error")) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => OutcomeEv::default(),
        Some(Value::String(s)) => outcome_of(s),
        Some(other) => {
            let msg = first(other, &["message", "type", "code"]).unwrap_or_else(|| "error".into());
            let mut o = outcome_of(&msg);
            if o.status == Some(OutcomeStatus::Succeeded) {
                o.status = Some(OutcomeStatus::Unknown);
            }
            o
        }
    }
}

/// The words of a memory operation: add/update/delete/… are writes, get/search/… reads.
pub(crate) fn memory_kind(op: &str) -> Option<EventKind> {
    let o = op.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| o.contains(x));
    if has(&["add", "write", "update", "upsert", "insert", "delete", "remove", "put", "store", "save", "create", "set", "forget"]) {
        Some(EventKind::MemoryWrite)
    } else if has(&["read", "get", "search", "query", "retriev", "recall", "fetch", "list", "lookup", "load"]) {
        Some(EventKind::MemoryRead)
    } else {
        None
    }
}

/// An approval decision word → the decision (`approved`, `rejected`, `bypassed`, `pending`,
/// `expired`), or `None` when it is not one.
pub(crate) fn decision_word(s: &str) -> Option<&'static str> {
    let d = s.trim().to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| d.contains(x));
    if has(&["bypass", "skipped", "waived", "auto_approved", "auto-approved"]) {
        Some("bypassed")
    } else if has(&["reject", "deny", "denied", "decline"]) {
        Some("rejected")
    } else if has(&["approve", "allow", "grant", "accept"]) || d == "yes" || d == "true" {
        Some("approved")
    } else if has(&["pending", "request", "waiting", "awaiting", "open", "asked"]) {
        Some("pending")
    } else if has(&["expire", "timeout", "timed_out", "timed out"]) {
        Some("expired")
    } else {
        None
    }
}

/// An approval record's evidence: a decision, or a request while it is pending.
pub(crate) fn approval_evidence(v: &Value, b: &ItemBuilder<'_>, start: Option<Time>) -> Option<Ev> {
    let id = b.ident(IdentName::ApprovalId)?;
    let word = first(v, &["decision", "approval.decision", "verdict", "status", "state", "outcome", "result"])?;
    let decision = decision_word(&word)?;
    let kind = if decision == "pending" { EventKind::ApprovalRequest } else { EventKind::ApprovalDecision };
    let mut ev = Ev::new(kind, Side::Server);
    ev.start = start;
    ev.key(Role::Ident(IdentName::ApprovalId), &id);
    if let Some(c) = first(v, &["call_id", "tool_call_id", "toolCallId", "callId"]) {
        ev.key(Role::Link(LinkKey::CallId), &c);
    }
    ev.target = tool_name(v).or_else(|| first(v, &["action", "requested_action", "operation"]));
    ev.detail("decision", decision);
    if decision != word.to_ascii_lowercase() {
        ev.detail("decision_as_written", word);
    }
    if let Some(a) = first(v, &["approver", "approved_by", "decided_by", "reviewer", "user.name", "user.username"]) {
        ev.detail("approver", a);
    }
    if let Some(r) = first(v, &["reason", "comment", "note"]) {
        ev.detail("reason", r);
    }
    Some(ev)
}

/// The event a generic record describes, by its shape (see the module table).
pub(crate) fn generic_evidence(v: &Value, b: &ItemBuilder<'_>, start: Option<Time>) -> Option<Ev> {
    if at(v, "decision_id").is_some() && (at(v, "result").is_some() || at(v, "allow").is_some()) {
        let mut ev = Ev::new(EventKind::PolicyDecision, Side::Server);
        ev.start = start;
        if let Some(d) = first(v, &["decision_id"]) {
            ev.key(Role::Link(LinkKey::DecisionId), &d);
        }
        ev.target = first(v, &["path", "query"]);
        if let Some(r) = at(v, "result").or_else(|| at(v, "allow")) {
            super::opa::decision_result(r, &mut ev);
        }
        return Some(ev);
    }
    if let Some(ev) = approval_evidence(v, b, start.clone()) {
        return Some(ev);
    }
    let memory_id = b.value_of(Role::Link(LinkKey::MemoryId)).map(str::to_string);
    let op = first(v, &["op", "operation", "action", "access", "event", "memory_op"]);
    if let (Some(op), true) = (op.as_deref(), memory_id.is_some() || at(v, "memory").is_some()) {
        if let Some(kind) = memory_kind(op) {
            let mut ev = Ev::new(kind, Side::Server);
            ev.start = start;
            ev.operation = Some(bounded(op.to_string()));
            if let Some(id) = &memory_id {
                ev.key(Role::Link(LinkKey::MemoryId), id);
                ev.detail("memory_ids", id.clone());
            }
            ev.target = first(v, &["store", "collection", "namespace", "memory_store"]);
            return Some(ev);
        }
    }
    if let Some(tool) = tool_name(v) {
        let invoked = [
            "arguments", "args", "input", "parameters", "params", "response", "output", "result", "status",
            "outcome", "error", "duration_ms", "latency_ms", "call_id", "tool_call_id", "timeout", "status_code",
        ]
        .iter()
        .any(|k| at(v, k).is_some());
        if invoked {
            let kind = memory_tool_kind(&tool).unwrap_or(EventKind::ToolCall);
            let mut ev = Ev::new(kind, Side::Client);
            ev.end = end_of(v, start.as_ref());
            ev.start = start;
            ev.target = Some(tool);
            ev.outcome = tool_outcome(v);
            if let Some(c) = first(v, &["call_id", "tool_call_id", "toolCallId", "callId", "gen_ai.tool.call.id", "tool_call.id"]) {
                ev.key(Role::Link(LinkKey::CallId), &c);
            }
            if let Some(m) = first(v, &["method", "http.method", "request.method"]) {
                ev.operation = Some(m);
            }
            if let Some(a) = first(v, &["attempt", "retry", "attempt_number"]) {
                ev.detail("attempt", a);
            }
            return Some(ev);
        }
    }
    let method = first(v, &["method", "http.method", "http.request.method", "request.method", "verb"]);
    let url = first(v, &["url", "url.full", "uri", "request.url", "host", "authority", "server.address", "upstream"]);
    if let (Some(method), Some(url)) = (method, url) {
        if method.chars().all(|c| c.is_ascii_uppercase()) && method.len() <= 10 {
            let mut ev = Ev::new(EventKind::EgressRequest, Side::Proxy);
            ev.end = end_of(v, start.as_ref());
            ev.start = start;
            ev.operation = Some(method);
            let host = super::proxy::url_host(&url).to_string();
            ev.target = Some(host.clone());
            ev.detail("host", host);
            if let Some(p) = first(v, &["path", "url.path", "request.path"]) {
                ev.detail("path", p);
            }
            ev.outcome = tool_outcome(v);
            if let Some(r) = b.value_of(Role::Link(LinkKey::RequestId)) {
                ev.key(Role::Link(LinkKey::RequestId), r);
            }
            return Some(ev);
        }
    }
    None
}

/// A tool whose name is a memory operation (`memory_add`, `add_memory`, `mem0.search`,
/// `save_memory`…) is that memory operation, not a tool call.
pub(crate) fn memory_tool_kind(tool: &str) -> Option<EventKind> {
    let t = tool.to_ascii_lowercase();
    if !(t.contains("memory") || t.contains("memories") || t.starts_with("mem0") || t.contains("remember") || t.contains("recall")) {
        return None;
    }
    if t.contains("remember") {
        return Some(EventKind::MemoryWrite);
    }
    if t.contains("recall") {
        return Some(EventKind::MemoryRead);
    }
    memory_kind(&t.replace("memory", "").replace("memories", "").replace("mem0", ""))
}
