//! Logs as they are exported: CloudWatch Logs (`filter-log-events` output, subscription
//! payloads), Datadog Logs API responses, Loki query results, Temporal workflow histories,
//! and plain text logs.
//!
//! A log line's message is often JSON carried as a string, or `key=value` text: both are
//! read (the generic walker opens them), and a message that is itself a tool-call, decision
//! or request record yields its event. Temporal payloads are base64 (`metadata.encoding`
//! `json/plain`): they are decoded before reading, so a `traceparent` inside the
//! OpenTelemetry interceptor's `_tracer-data` header is found; an activity is a tool call
//! (scheduled, then completed, failed or timed out).

use super::super::item::{at, first, outcome_of, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::{generic_evidence, generic_item, request_part, tool_kind, TIME_FIELDS};
use super::{FormatDef, Head, Item, LayoutPref};
use crate::collect::analysis::{EventKind, OutcomeStatus};
use base64::Engine as _;
use serde_json::{Map, Value};

/// A log message read: its fields, and the event it describes when it is a record.
pub(crate) fn message(b: &mut ItemBuilder<'_>, path: &str, msg: &str) {
    b.walk_field(path, path, &Value::String(msg.to_string()));
    let t = msg.trim();
    if t.starts_with('{') {
        if let Ok(inner) = serde_json::from_str::<Value>(t) {
            let start = TIME_FIELDS.iter().filter_map(|p| super::super::item::at(&inner, p)).find_map(Time::of_json);
            b.time(start.clone());
            if let Some(ev) = generic_evidence(&inner, b, start.clone()) {
                b.evidence(ev);
            } else if let Some(ev) = request_part(Some(&inner), b, start) {
                // A function's log line about its request ("purchase order created",
                // "idempotent replay…"): part of that request's event, with the outcome it states.
                b.evidence(ev);
            }
        }
    }
}

/// CloudWatch Logs exports.
pub(crate) struct CloudWatch;

impl FormatDef for CloudWatch {
    fn name(&self) -> &'static str {
        "cloudwatch_logs"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["cloudwatch", "aws-logs"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("logs")
    }
    fn what(&self) -> &'static str {
        "CloudWatch Logs exports (filter-log-events output, subscription payloads): each message read"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let ev = |k: &super::Keys| {
            k.has("message") && (k.has("logStreamName") || k.has("ingestionTime") || k.has("eventId"))
        };
        h.inner("events").is_some_and(ev)
            || (h.has("logEvents") && (h.has("logGroup") || h.has("messageType")))
            || h.obj().is_some_and(|o| o.has("message") && o.has("logStreamName"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        let group = first(v, &["logGroup", "logGroupName"]);
        let list = v.get("events").or_else(|| v.get("logEvents")).and_then(Value::as_array);
        let one = [v.clone()];
        let events: &[Value] = match (v, list) {
            (_, Some(l)) => l,
            (Value::Array(l), None) => l,
            _ => &one,
        };
        for e in events {
            let mut b = ItemBuilder::new(m);
            for (k, x) in e.as_object().into_iter().flatten() {
                if k != "message" {
                    b.walk_field(k, k, x);
                }
            }
            if let Some(g) = &group {
                b.token(g);
            }
            if let Some(t) = e.get("timestamp").and_then(Time::of_json) {
                b.time(Some(t));
            }
            if let Some(msg) = e.get("message").and_then(Value::as_str) {
                message(&mut b, "message", msg);
            }
            out.push(b.finish());
        }
    }
}

/// Loki query results.
pub(crate) struct Loki;

impl FormatDef for Loki {
    fn name(&self) -> &'static str {
        "loki"
    }
    fn kind(&self) -> Option<&'static str> {
        Some("logs")
    }
    fn what(&self) -> &'static str {
        "Loki query results (data.result[].values of [ns, line]): each line read"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.has("status") && h.inner("data").is_some_and(|d| d.has("resultType") || d.has("result"))
            || h.has("stream") && h.has("values")
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        let streams = v.pointer("/data/result").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![v.clone()]);
        for s in &streams {
            let labels = s.get("stream");
            for pair in s.get("values").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                let mut b = ItemBuilder::new(m);
                if let Some(l) = labels {
                    b.walk("stream", l);
                }
                if let Some(ts) = pair.get(0).and_then(Value::as_str) {
                    b.time(Time::parse(ts));
                }
                if let Some(line) = pair.get(1).and_then(Value::as_str) {
                    message(&mut b, "line", line);
                }
                out.push(b.finish());
            }
        }
    }
}

/// Temporal workflow histories.
pub(crate) struct Temporal;

impl FormatDef for Temporal {
    fn name(&self) -> &'static str {
        "temporal"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["temporal-history"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("logs")
    }
    fn what(&self) -> &'static str {
        "Temporal workflow history (JSON; base64 payloads decoded; activities are tool calls)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let ev = |k: &super::Keys| k.has("eventId") && k.has("eventType");
        h.inner("events").is_some_and(ev)
            || h.obj().is_some_and(ev)
            || (!h.line_complete && h.mentions("eventType") && h.text.contains("WORKFLOW_EXECUTION_STARTED"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        let decoded = decode_payloads(v, 0);
        let one = [decoded.clone()];
        let events: &[Value] = match decoded.get("events").and_then(Value::as_array) {
            Some(l) => l,
            None => match &decoded {
                Value::Array(l) => l,
                _ => &one,
            },
        };
        // The run, to scope activity ids (`1`, `2`… restart in every workflow run).
        let run = events
            .iter()
            .find_map(|e| {
                first(
                    e,
                    &[
                        "workflowExecutionStartedEventAttributes.originalExecutionRunId",
                        "workflowExecutionStartedEventAttributes.firstExecutionRunId",
                    ],
                )
            })
            .unwrap_or_default();
        // Activities: the scheduled event, the started event (which carries the last attempt's
        // number and the failure of the one before), then the event that closed it.
        let mut starts: Vec<(String, u32, Option<String>, Option<Time>)> = Vec::new();
        for e in events {
            if let Some(a) = e.get("activityTaskStartedEventAttributes") {
                if let Some(s) = first(a, &["scheduledEventId"]) {
                    let attempt = a
                        .get("attempt")
                        .and_then(|x| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))
                        .unwrap_or(1);
                    let failure = first(a, &["lastFailure.message"]);
                    starts.push((
                        s,
                        u32::try_from(attempt).unwrap_or(1),
                        failure,
                        e.get("eventTime").and_then(Time::of_json),
                    ));
                }
            }
        }
        let mut closes: Vec<(String, &Value, &str)> = Vec::new();
        for e in events {
            let ty = e.get("eventType").and_then(Value::as_str).unwrap_or("");
            for (suffix, attr) in [
                ("ACTIVITY_TASK_COMPLETED", "activityTaskCompletedEventAttributes"),
                ("ACTIVITY_TASK_FAILED", "activityTaskFailedEventAttributes"),
                ("ACTIVITY_TASK_TIMED_OUT", "activityTaskTimedOutEventAttributes"),
                ("ACTIVITY_TASK_CANCELED", "activityTaskCanceledEventAttributes"),
                ("ActivityTaskCompleted", "activityTaskCompletedEventAttributes"),
                ("ActivityTaskFailed", "activityTaskFailedEventAttributes"),
                ("ActivityTaskTimedOut", "activityTaskTimedOutEventAttributes"),
                ("ActivityTaskCanceled", "activityTaskCanceledEventAttributes"),
            ] {
                if ty.ends_with(suffix) {
                    if let Some(a) = e.get(attr) {
                        if let Some(s) = first(a, &["scheduledEventId"]) {
                            closes.push((s, a, suffix));
                        }
                    }
                }
            }
        }
        for e in events {
            let mut b = ItemBuilder::new(m);
            b.walk("", e);
            let start = b.time_from(e, &["eventTime"]);
            if let Some(a) = e.get("activityTaskScheduledEventAttributes") {
                let name = first(a, &["activityType.name"]);
                let k = name.as_deref().map_or(EventKind::ToolCall, tool_kind);
                let mut ev = Ev::new(k, Side::Client);
                ev.start = start;
                ev.target = name;
                let id = first(e, &["eventId"]);
                let started = starts.iter().find(|(s, ..)| Some(s) == id.as_ref());
                // Earlier attempts are known only by the started event's attempt number and
                // the last failure: each is an attempt of its own.
                if let Some((_, n, failure, t)) = started.filter(|(_, n, ..)| *n > 1) {
                    for k2 in 1..*n {
                        let mut prior = ev.clone();
                        prior.attempt = Some(k2);
                        prior.outcome = if k2 + 1 == *n {
                            let msg = failure.clone().unwrap_or_else(|| "failed".into());
                            let mut o = outcome_of(&msg);
                            if o.status == Some(OutcomeStatus::Succeeded) {
                                o.status = Some(OutcomeStatus::Unknown);
                            }
                            o.code = Some(format!("attempt {k2}: {msg}"));
                            o
                        } else {
                            OutcomeEv::default()
                        };
                        b.evidence(prior);
                    }
                    ev.attempt = Some(*n);
                    ev.start = t.clone().or(ev.start);
                } else {
                    ev.attempt = Some(1);
                }
                if let Some(aid) = first(a, &["activityId"]) {
                    b.field(
                        Role::Link(LinkKey::CallId),
                        &format!("{run}/{aid}"),
                        "activityTaskScheduledEventAttributes.activityId",
                    );
                }
                if let Some((_, close, suffix)) = closes.iter().find(|(s, _, _)| Some(s) == id.as_ref()) {
                    ev.outcome = match *suffix {
                        s if s.ends_with("COMPLETED") || s.ends_with("Completed") => OutcomeEv {
                            status: Some(OutcomeStatus::Succeeded),
                            code: Some("completed".into()),
                            reason: None,
                            replayed: false,
                        },
                        s if s.ends_with("TIMED_OUT") || s.ends_with("TimedOut") => OutcomeEv {
                            status: Some(OutcomeStatus::Unknown),
                            code: Some("timed out".into()),
                            reason: Some("timeout".into()),
                            replayed: false,
                        },
                        s if s.ends_with("CANCELED") || s.ends_with("Canceled") => OutcomeEv {
                            status: Some(OutcomeStatus::Unknown),
                            code: Some("canceled".into()),
                            reason: Some("cancelled: it may or may not have been applied".into()),
                            replayed: false,
                        },
                        _ => {
                            let msg = first(close, &["failure.message"]).unwrap_or_else(|| "failed".into());
                            let mut o = outcome_of(&msg);
                            if o.status == Some(OutcomeStatus::Succeeded) {
                                o.status = Some(OutcomeStatus::Unknown);
                            }
                            o
                        }
                    };
                }
                b.evidence(ev);
            }
            out.push(b.finish());
        }
    }
}

/// Replaces every Temporal payload (`{"metadata":{"encoding":<base64>}, "data":<base64>}`)
/// by its decoded JSON (or text), so the walker reads what it carries.
fn decode_payloads(v: &Value, depth: usize) -> Value {
    if depth > 48 {
        return v.clone();
    }
    match v {
        Value::Object(o) => {
            if let Some(decoded) = payload(o) {
                return decoded;
            }
            let mut out = Map::new();
            for (k, x) in o {
                out.insert(k.clone(), decode_payloads(x, depth + 1));
            }
            Value::Object(out)
        }
        Value::Array(l) => Value::Array(l.iter().map(|x| decode_payloads(x, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn payload(o: &Map<String, Value>) -> Option<Value> {
    let data = o.get("data")?.as_str()?;
    let enc = o.get("metadata")?.get("encoding")?.as_str()?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let enc = b64.decode(enc).ok().and_then(|e| String::from_utf8(e).ok()).unwrap_or_else(|| enc.to_string());
    if !enc.starts_with("json/") && enc != "binary/plain" {
        return None;
    }
    let raw = b64.decode(data).ok()?;
    let text = String::from_utf8(raw).ok()?;
    Some(serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
}

/// Plain text logs.
pub(crate) struct TextLog;

impl FormatDef for TextLog {
    fn name(&self) -> &'static str {
        "text_log"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["text", "log", "syslog"]
    }
    fn kind(&self) -> Option<&'static str> {
        None
    }
    fn what(&self) -> &'static str {
        "any other text: each line read for key=value pairs, URL parameters, JSON and id-like values"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        !h.json
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Text
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        let t = line.trim();
        // logfmt (`time=… level=info msg="…" key=value`): read as a record.
        if let Some(obj) = logfmt(t) {
            let mut it = generic_item(&obj, m);
            let mut b = ItemBuilder::new(m);
            b.text("line", t);
            for tok in b.finish().tokens {
                if !it.tokens.contains(&tok) {
                    it.tokens.push(tok);
                }
            }
            return Some(it);
        }
        let mut b = ItemBuilder::new(m);
        // A leading time: `2026-11-21T14:02:42Z …`, `2026-11-21 14:02:42,123 …`, `[…] …`.
        let mut words = t.split_whitespace();
        let w1 = words.next().unwrap_or("");
        let w2 = words.next().unwrap_or("");
        let time = Time::parse(w1).or_else(|| Time::parse(&format!("{w1} {w2}")));
        b.time(time);
        if let Some(json) = t.find('{').and_then(|i| t.get(i..)).filter(|j| j.ends_with('}')) {
            message(&mut b, "line", json);
        }
        b.text("line", t);
        if let Some(ev) = request_part(None, &b, b.item.time.clone()) {
            b.evidence(ev);
        }
        Some(b.finish())
    }
}

/// A logfmt line as an object: at least three `key=value` pairs (values bare or double-quoted
/// with `\"` escapes), the keys identifiers. `None` for any other text.
pub(crate) fn logfmt(line: &str) -> Option<Value> {
    let mut out = Map::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while b.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/' | b'@')) {
            i += 1;
        }
        if i == ks || b.get(i) != Some(&b'=') {
            if i >= b.len() {
                break;
            }
            return None;
        }
        let key = line.get(ks..i)?.to_string();
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i) {
                    None => return None,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        match b.get(i + 1) {
                            Some(b'n') => v.push('\n'),
                            Some(b't') => v.push('\t'),
                            Some(&c) => v.push(c as char),
                            None => return None,
                        }
                        i += 2;
                    }
                    Some(_) => {
                        let start = i;
                        while b.get(i).is_some_and(|c| *c != b'"' && *c != b'\\') {
                            i += 1;
                        }
                        v.push_str(line.get(start..i)?);
                    }
                }
            }
            v
        } else {
            let start = i;
            while b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                i += 1;
            }
            line.get(start..i)?.to_string()
        };
        out.insert(key, Value::String(value));
    }
    (out.len() >= 3).then_some(Value::Object(out))
}

/// Datadog Logs: the Logs API v2 list/search response (`{"data": [{"id", "type": "log",
/// "attributes": {…}}], "meta", "links"}`, one page per file), a bare list of its log
/// objects, or one object per line.
pub(crate) struct Datadog;

impl FormatDef for Datadog {
    fn name(&self) -> &'static str {
        "datadog_logs"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["datadog", "dd-logs"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("logs")
    }
    fn what(&self) -> &'static str {
        "Datadog Logs API v2 responses (data[].attributes with service, message and the log's own attributes)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let log = |k: &super::Keys| k.str_of("type") == Some("log") && k.has("attributes") && k.has("id");
        let pretty_log = h.text.contains("\"type\": \"log\"") || h.text.contains("\"type\":\"log\"");
        h.inner("data").is_some_and(log)
            || h.obj().is_some_and(log)
            // A saved page is pretty-printed and larger than the head.
            || (!h.line_complete && h.mentions("data") && h.mentions("attributes") && pretty_log)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        let logs: &[Value] = match (v, v.get("data").and_then(Value::as_array)) {
            (_, Some(l)) => l,
            (Value::Array(l), None) => l,
            _ => std::slice::from_ref(v),
        };
        for e in logs {
            out.push(datadog_log(e, m));
        }
    }
}

/// The name an envelope key has in the view: `status` is the log's level (not an outcome),
/// `host` the machine that logged it (not a request's destination).
fn dd_view_name(k: &str) -> &str {
    match k {
        "status" => "dd_log_level",
        "host" => "dd_log_host",
        other => other,
    }
}

/// The envelope keys of a Datadog log's `attributes` (the rest of it, under
/// `attributes.attributes`, is what the application logged).
const DD_ENVELOPE: [&str; 6] = ["service", "host", "timestamp", "message", "tags", "status"];

/// One Datadog log, read as the application wrote it: its own attributes with the envelope's
/// service, host, time, message and tags beside them ([`dd_view_name`]). Field paths are
/// given back as they are in the file (`attributes.attributes.thread_id`,
/// `attributes.message`). An MCP server's line
/// (a `tools/call` naming its client's address) is the server's view of the tool call.
fn datadog_log(e: &Value, m: &FieldMapping) -> Item {
    let Some(attrs) = e.get("attributes").and_then(Value::as_object) else {
        return super::generic::generic_item(e, m);
    };
    let inner = attrs.get("attributes").and_then(Value::as_object);
    let mut view = inner.cloned().unwrap_or_default();
    for k in DD_ENVELOPE {
        if let Some(x) = attrs.get(k) {
            view.entry(dd_view_name(k).to_string()).or_insert_with(|| x.clone());
        }
    }
    let view = Value::Object(view);
    let mut it = super::generic::generic_item(&view, m);
    let own = |p: &str| {
        let head = p.split(['.', '{', '~']).next().unwrap_or("");
        inner.is_some_and(|i| i.contains_key(head))
    };
    let fix = |p: &str| {
        if own(p) {
            return format!("attributes.attributes.{p}");
        }
        for k in DD_ENVELOPE {
            let v = dd_view_name(k);
            if v != k {
                if let Some(rest) = p.strip_prefix(v) {
                    return format!("attributes.{k}{rest}");
                }
            }
        }
        format!("attributes.{p}")
    };
    for f in it.fields.iter_mut() {
        f.path = fix(&f.path);
    }
    let server = at(&view, "mcp.method.name").is_some()
        && ["network.client.ip", "client.address", "network.peer.address"].iter().any(|p| at(&view, p).is_some());
    if server {
        for ev in it.evidence.iter_mut().filter(|ev| ev.kind == EventKind::ToolCall) {
            ev.side = Side::Server;
        }
    }
    it
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_payloads_decode() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let enc = b64.encode("json/plain");
        let data = b64.encode(r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#);
        let v =
            serde_json::json!({"header": {"fields": {"_tracer-data": {"metadata": {"encoding": enc}, "data": data}}}});
        let d = decode_payloads(&v, 0);
        assert_eq!(
            d.pointer("/header/fields/_tracer-data/traceparent").and_then(Value::as_str),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
    }
}
