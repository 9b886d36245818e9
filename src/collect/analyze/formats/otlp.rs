//! OTLP/JSON traces and logs (`TracesData`, `LogsData`, the `Export*ServiceRequest` bodies,
//! and the file exporter's one-request-per-line JSON Lines): one record per span or log
//! record, resource attributes inherited.
//!
//! Spans become events by their attributes (OTel semantic conventions): a tool execution
//! (`gen_ai.operation.name = execute_tool`, `gen_ai.tool.name`) is a `tool_call` (or a memory
//! operation when the tool is one: `memory_add` is a write); `chat`/`text_completion`/
//! `generate_content`/`embeddings` a `model_call`; `retrieval` a `memory_read`; an HTTP
//! client span, and an HTTP server span that has a parent (the server side of a request a
//! tool made), an `egress_request`. A log record naming a tool is evidence of that tool call
//! (merged with its span by span id). Span links are not followed: a linked trace is another
//! trace. `enduser.id` is the subject (who the agent acted for), never the principal.

use super::super::item::{bounded, outcome_of, scalar, unwrap_any_value, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::{activity_span, memory_kind, memory_tool_kind, tool_kind, tool_outcome};
use super::proxy::{internal_host, url_host};
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// OTLP/JSON traces and logs.
pub(crate) struct Otlp;

impl FormatDef for Otlp {
    fn name(&self) -> &'static str {
        "otlp"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["otlp-json", "otlp-jsonl", "otel", "otel-json", "otel-jsonl", "otlp-file", "traces"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("traces")
    }
    fn what(&self) -> &'static str {
        "OTLP/JSON traces and logs (TracesData, LogsData, Export*ServiceRequest; one per line or one document)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        ["resourceSpans", "resourceLogs", "resource_spans", "resource_logs"].iter().any(|k| h.has(k) || h.mentions(k))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| object(e, m, out)),
            _ => object(v, m, out),
        }
    }
}

fn list<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_array)).map(Vec::as_slice).unwrap_or_default()
}

fn object(v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
    for rs in list(v, &["resourceSpans", "resource_spans"]) {
        let res = rs.get("resource").and_then(|r| r.get("attributes"));
        for ss in list(rs, &["scopeSpans", "scope_spans", "instrumentationLibrarySpans"]) {
            for span in list(ss, &["spans"]) {
                out.push(entry(span, res, m, true));
            }
        }
    }
    for rl in list(v, &["resourceLogs", "resource_logs"]) {
        let res = rl.get("resource").and_then(|r| r.get("attributes"));
        for sl in list(rl, &["scopeLogs", "scope_logs", "instrumentationLibraryLogs"]) {
            for rec in list(sl, &["logRecords", "log_records"]) {
                out.push(entry(rec, res, m, false));
            }
        }
    }
}

/// The attributes of a span or log record as `(key, scalar)`.
fn attrs(v: Option<&Value>) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    for kv in v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let key = kv.get("key").and_then(Value::as_str);
        let val = kv.get("value").map(unwrap_any_value);
        if let (Some(k), Some(val)) = (key, val) {
            let s = match val {
                Value::Array(items) => items.iter().filter_map(|i| scalar(unwrap_any_value(i))).next(),
                other => scalar(other),
            };
            if let Some(s) = s.filter(|s| !s.trim().is_empty()) {
                out.push((k, s));
            }
        }
    }
    out
}

fn attr<'a>(a: &'a [(&str, String)], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| a.iter().find(|(ak, _)| ak == k).map(|(_, v)| v.as_str()))
}

fn nanos(v: Option<&Value>) -> Option<Time> {
    match v? {
        Value::String(s) => s.parse::<u64>().ok().filter(|n| *n > 0).and_then(|n| Time::from_nanos(i128::from(n))),
        other => Time::of_json(other),
    }
}

/// `1`/`SPAN_KIND_INTERNAL`, `2` server, `3` client, `4` producer, `5` consumer.
fn span_kind(v: &Value) -> u64 {
    match v.get("kind") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => match s.as_str() {
            "SPAN_KIND_INTERNAL" => 1,
            "SPAN_KIND_SERVER" => 2,
            "SPAN_KIND_CLIENT" => 3,
            "SPAN_KIND_PRODUCER" => 4,
            "SPAN_KIND_CONSUMER" => 5,
            _ => 0,
        },
        _ => 0,
    }
}

/// What a span's status, HTTP status and `error.type` say of its outcome.
fn span_outcome(e: &Value, a: &[(&str, String)]) -> OutcomeEv {
    if let Some(code) = attr(a, &["http.response.status_code", "http.status_code"]) {
        let mut o = outcome_of(code);
        // A server that answers a retried idempotency key from its record says so in a
        // response header (`Idempotent-Replayed: true`): no new effect.
        let replay =
            attr(a, &["http.response.header.idempotent-replayed", "http.response.header.idempotency-replayed"]);
        if o.status == Some(OutcomeStatus::Succeeded) && replay.is_some_and(|r| r.eq_ignore_ascii_case("true")) {
            o.replayed = true;
            o.reason = Some("idempotent replay: no new effect".into());
        }
        return o;
    }
    let status = e.get("status");
    let code = status.and_then(|s| s.get("code"));
    let msg = status.and_then(|s| s.get("message")).and_then(Value::as_str).unwrap_or("").trim();
    let is = |n: u64, name: &str| match code {
        Some(Value::Number(x)) => x.as_u64() == Some(n),
        Some(Value::String(c)) => c.ends_with(name),
        _ => false,
    };
    if is(2, "ERROR") {
        let mut o = outcome_of(if msg.is_empty() { "error" } else { msg });
        if o.status == Some(OutcomeStatus::Succeeded) {
            o.status = Some(OutcomeStatus::Unknown);
        }
        o.code = Some(bounded(if msg.is_empty() { "ERROR".to_string() } else { format!("ERROR: {msg}") }));
        return o;
    }
    if let Some(t) = attr(a, &["error.type", "exception.type"]) {
        let mut o = outcome_of(t);
        if o.status == Some(OutcomeStatus::Succeeded) {
            o.status = Some(OutcomeStatus::Unknown);
        }
        return o;
    }
    if is(1, "OK") {
        return OutcomeEv {
            replayed: false,
            status: Some(OutcomeStatus::Succeeded),
            code: Some("OK".into()),
            reason: None,
        };
    }
    OutcomeEv::default()
}

fn entry(e: &Value, res: Option<&Value>, m: &FieldMapping, is_span: bool) -> Item {
    let mut b = ItemBuilder::new(m);
    for key in ["traceId", "trace_id"] {
        if let Some(t) = e.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            b.field(Role::Ident(IdentName::TraceId), t, key);
        }
    }
    for key in ["spanId", "span_id"] {
        if let Some(s) = e.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            if let Some(v) = b.field(Role::Link(LinkKey::SpanId), s, key) {
                b.item.span_id = Some(v);
            }
        }
    }
    for key in ["parentSpanId", "parent_span_id"] {
        if let Some(s) = e.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            b.field(Role::Link(LinkKey::ParentSpanId), s, key);
        }
    }
    if let Some(a) = e.get("attributes") {
        b.walk("attributes", a);
    }
    if let Some(evs) = e.get("events") {
        b.walk("events", evs);
    }
    if let Some(body) = e.get("body") {
        b.walk_field("body", "body", body);
    }
    if let Some(r) = res {
        b.walk("resource.attributes", r);
    }
    let start = if is_span {
        nanos(e.get("startTimeUnixNano"))
    } else {
        nanos(e.get("timeUnixNano")).or_else(|| nanos(e.get("observedTimeUnixNano")))
    };
    b.time(start.clone());
    let a = attrs(e.get("attributes"));
    let name = e.get("name").and_then(Value::as_str).map(str::to_string);
    let ev = if is_span { span_evidence(e, &a, name, start, &b) } else { log_evidence(e, &a, start, &b) };
    if let Some(ev) = ev {
        b.evidence(ev);
    }
    b.finish()
}

fn span_evidence(
    e: &Value,
    a: &[(&str, String)],
    name: Option<String>,
    start: Option<Time>,
    b: &ItemBuilder<'_>,
) -> Option<Ev> {
    let op = attr(a, &["gen_ai.operation.name"]);
    let tool = attr(a, &["gen_ai.tool.name", "tool.name"]).map(str::to_string);
    let end = nanos(e.get("endTimeUnixNano"));
    let method = attr(a, &["http.request.method", "http.method"]).map(str::to_string);
    let kind = span_kind(e);
    let has_parent = b.value_of(Role::Link(LinkKey::ParentSpanId)).is_some();
    let memory_op = attr(a, &["memory.operation", "gen_ai.memory.operation", "db.operation.name"])
        .filter(|_| {
            attr(a, &["memory.system", "gen_ai.memory.system", "mem0.run_id"]).is_some()
                || name.as_deref().is_some_and(|n| n.contains("memory"))
        })
        .and_then(memory_kind);
    let messaging = attr(a, &["messaging.operation.type", "messaging.operation"]).map(str::to_ascii_lowercase);
    let activity = name.as_deref().and_then(activity_span).map(|(n, a)| (n.to_string(), a));
    let mut ev = if let Some((act, is_attempt)) = activity {
        let mut ev = Ev::new(tool_kind(&act), Side::Client);
        ev.target = Some(act);
        if is_attempt {
            ev.attempt = Some(attr(a, &["temporal.attempt", "attempt"]).and_then(|x| x.parse().ok()).unwrap_or(1));
        } else {
            ev.sub = true;
        }
        ev
    } else if let Some(k) = memory_op {
        let mut ev = Ev::new(k, Side::Client);
        ev.target = attr(a, &["memory.system", "gen_ai.memory.system"]).map(str::to_string).or(name.clone());
        ev.operation =
            attr(a, &["memory.operation", "gen_ai.memory.operation", "db.operation.name"]).map(str::to_string);
        let ids: Vec<&str> = b
            .item
            .fields
            .iter()
            .filter(|f| f.role == Role::Link(LinkKey::MemoryId))
            .map(|f| f.value.as_str())
            .collect();
        if !ids.is_empty() {
            ev.detail("memory_ids", ids.join(","));
        }
        if let Some(id) = b.value_of(Role::Link(LinkKey::EventId)) {
            ev.key(Role::Link(LinkKey::EventId), id);
        }
        ev
    } else if tool.is_some() || op == Some("execute_tool") {
        let target = tool.or(name).map(bounded);
        let k = target.as_deref().map_or(EventKind::ToolCall, tool_kind);
        let mut ev = Ev::new(k, Side::Client);
        ev.target = target;
        if let Some(c) = attr(a, &["gen_ai.tool.call.id", "tool_call.id", "tool.call.id"]) {
            ev.key(Role::Link(LinkKey::CallId), c);
        }
        if k != EventKind::ToolCall {
            if let Some(id) = b.value_of(Role::Link(LinkKey::MemoryId)) {
                ev.detail("memory_ids", id);
            }
        }
        ev
    } else if matches!(op, Some("chat" | "text_completion" | "generate_content" | "embeddings")) {
        let mut ev = Ev::new(EventKind::ModelCall, Side::Client);
        ev.target = attr(a, &["gen_ai.request.model", "gen_ai.response.model"]).map(str::to_string);
        ev.operation = op.map(str::to_string);
        ev
    } else if op == Some("retrieval") || attr(a, &["gen_ai.data_source.id"]).is_some() {
        let mut ev = Ev::new(EventKind::MemoryRead, Side::Client);
        ev.target = attr(a, &["gen_ai.data_source.id"]).map(str::to_string).or(name);
        ev.operation = Some("retrieval".into());
        ev
    } else if let Some(mt) = messaging.filter(|_| has_parent) {
        // A message a tool sent (producer), or its processing (consumer): parts of the tool
        // call they descend from; the consumer is the side that carried it out.
        let server = matches!(mt.as_str(), "process" | "receive" | "deliver") || kind == 5;
        let mut ev = Ev::new(EventKind::ToolCall, if server { Side::Server } else { Side::Proxy });
        ev.sub = true;
        ev.target = attr(a, &["messaging.destination.name"]).map(str::to_string).or(name);
        ev.operation = Some(mt);
        if let Some(m) = attr(a, &["messaging.message.id"]) {
            ev.detail("message_id", m);
        }
        ev
    } else if let Some(method) = method.filter(|_| kind == 3 || (kind == 2 && has_parent)) {
        let host = attr(a, &["server.address", "http.host", "net.host.name", "net.peer.name"])
            .map(str::to_string)
            .or_else(|| attr(a, &["url.full", "http.url"]).map(|u| url_host(u).to_string()));
        let external = kind == 3 && host.as_deref().is_some_and(|h| !internal_host(h));
        let side = if kind == 2 {
            Side::Server
        } else if external {
            Side::Client
        } else {
            Side::Proxy
        };
        let mut ev = Ev::new(if external { EventKind::EgressRequest } else { EventKind::ToolCall }, side);
        // An internal call, or the server side of one, is part of the tool call that made it.
        ev.sub = !external;
        if let Some(h) = &host {
            ev.detail("host", h.clone());
        }
        ev.target = host;
        ev.operation = Some(method);
        if let Some(p) = attr(a, &["http.route", "url.path", "http.target"]) {
            ev.detail("path", p);
        }
        if let Some(s) = b.value_of(Role::Link(LinkKey::SourceAddress)) {
            ev.detail("source_address", s);
        }
        ev
    } else if kind == 2 && has_parent || kind == 5 {
        // The server or consumer side of something a tool did (an RPC, a job).
        let mut ev = Ev::new(EventKind::ToolCall, Side::Server);
        ev.sub = true;
        ev.target = name;
        ev
    } else {
        return None;
    };
    ev.start = start;
    ev.end = end;
    ev.outcome = span_outcome(e, a);
    if ev.sub && ev.outcome.status.is_none() {
        ev.outcome = status_attr_outcome(a);
    }
    if let Some(sid) = b.value_of(Role::Link(LinkKey::SpanId)) {
        ev.key(Role::Link(LinkKey::SpanId), sid);
    }
    if let Some(p) = b.value_of(Role::Link(LinkKey::ParentSpanId)) {
        ev.key(Role::Link(LinkKey::ParentSpanId), p);
    }
    if let Some(r) = b.value_of(Role::Link(LinkKey::RequestId)) {
        ev.key(Role::Link(LinkKey::RequestId), r);
    }
    if matches!(ev.kind, EventKind::EgressRequest) || ev.sub {
        // Request bodies are what the agent sent, whichever side recorded them.
        if let Some(r) = attr(a, &["http.request.body.size", "http.request_content_length"]) {
            ev.detail("bytes_out", r);
        }
        if let Some(r) = attr(a, &["http.response.body.size", "http.response_content_length"]) {
            ev.detail("bytes_in", r);
        }
    }
    Some(ev)
}

/// The outcome a server or consumer span states in an attribute (`payment.refund.status:
/// succeeded`, `job.result: failed`), when its span status says nothing.
fn status_attr_outcome(a: &[(&str, String)]) -> OutcomeEv {
    for (k, v) in a {
        let k = k.to_ascii_lowercase();
        if (k.ends_with(".status") || k.ends_with("_status") || k.ends_with(".result") || k.ends_with(".outcome"))
            && !k.contains("http")
            && !v.is_empty()
            && v.len() < 64
        {
            let o = outcome_of(v);
            if o.reason.as_deref() != Some("unrecognised status") {
                return o;
            }
        }
    }
    OutcomeEv::default()
}

/// A log record that names a tool is evidence of that tool call.
fn log_evidence(e: &Value, a: &[(&str, String)], start: Option<Time>, b: &ItemBuilder<'_>) -> Option<Ev> {
    let body = e.get("body").map(unwrap_any_value);
    let body_json: Option<Value> = match body {
        Some(Value::String(s)) if s.trim_start().starts_with('{') => serde_json::from_str(s).ok(),
        _ => None,
    };
    let tool = attr(a, &["gen_ai.tool.name", "tool.name", "tool"])
        .map(str::to_string)
        .or_else(|| body_json.as_ref().and_then(super::generic::tool_name))?;
    let k = memory_tool_kind(&tool).unwrap_or(EventKind::ToolCall);
    let mut ev = Ev::new(k, Side::Client);
    ev.target = Some(bounded(tool));
    ev.start = start;
    if let Some(c) = attr(a, &["gen_ai.tool.call.id", "tool_call.id", "call_id", "tool_call_id"])
        .map(str::to_string)
        .or_else(|| body_json.as_ref().and_then(|j| super::super::item::first(j, &["call_id", "tool_call_id"])))
    {
        ev.key(Role::Link(LinkKey::CallId), &c);
    }
    if let Some(sid) = b.value_of(Role::Link(LinkKey::SpanId)) {
        ev.key(Role::Link(LinkKey::SpanId), sid);
    }
    ev.outcome = match &body_json {
        Some(j) => tool_outcome(j),
        None => attr(a, &["outcome", "status", "http.response.status_code"]).map(outcome_of).unwrap_or_default(),
    };
    Some(ev)
}
