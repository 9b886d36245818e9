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

use super::super::item::{at, bounded, first, outcome_of, scalar, Ev, ItemBuilder, OutcomeEv, Side, MAX_EMBEDDED};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::{FormatDef, Head, Item, LayoutPref};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// Time fields read when a format names none, in order.
pub(crate) const TIME_FIELDS: [&str; 21] = [
    "timestamp",
    "@timestamp",
    // Log Analytics' ingestion-side name for the record's time.
    "TimeGenerated",
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

/// Names under which API responses and exports list their records.
const LIST_KEYS: [&str; 24] = [
    "results",
    "data",
    "items",
    "records",
    "Records",
    "events",
    "entries",
    "rows",
    "logs",
    "logEvents",
    "spans",
    "runs",
    "traces",
    "observations",
    "messages",
    "list",
    "value",
    "objects",
    "resources",
    "memories",
    "points",
    "documents",
    "calls",
    "requests",
];

/// The records of a collection document: an array, an envelope holding one list of objects
/// (`{"count": 3, "next": null, "results": [...]}`), or an Elasticsearch response
/// (`hits.hits[]._source`). `None`: the value is one record.
pub(crate) fn collection(v: &Value) -> Option<Vec<&Value>> {
    match v {
        Value::Array(list) => Some(list.iter().collect()),
        Value::Object(o) => {
            if let Some(Value::Array(hits)) = o.get("hits").and_then(|h| h.get("hits")) {
                return Some(hits.iter().map(|h| h.get("_source").unwrap_or(h)).collect());
            }
            let lists: Vec<(&String, &Vec<Value>)> = o
                .iter()
                .filter_map(|(k, x)| {
                    x.as_array().filter(|l| !l.is_empty() && l.iter().all(Value::is_object)).map(|l| (k, l))
                })
                .collect();
            let [(k, list)] = lists.as_slice() else { return None };
            // The rest of an envelope is bookkeeping: counts, cursors, a status.
            let envelope = o
                .iter()
                .filter(|(x, _)| x != k)
                .all(|(_, x)| !x.is_array() && !x.is_object() || x.as_object().is_some_and(|m| m.len() <= 4));
            (LIST_KEYS.contains(&k.as_str()) && envelope).then(|| list.iter().collect())
        }
        _ => None,
    }
}

/// Most columns, and longest column name, a columnar result may have to be read row by row:
/// each row is rebuilt as an object holding every name, so names are bounded (a result past
/// them is read as one document).
const MAX_COLUMNS: usize = 1024;
const MAX_COLUMN_NAME: usize = 256;

/// The tables of a columnar query result, as (column names, rows): Azure Log Analytics and
/// Application Insights query responses (`az monitor … query`, the REST API: `{"tables":
/// [{"columns": [{"name": …}], "rows": [[…], …]}]}`), Kusto's v1 `Tables` with `ColumnName`,
/// or one such table alone. `None`: not columnar. Without this a whole result is one record,
/// so one row's session is "in conflict" with another row's.
pub(crate) fn columnar(v: &Value) -> Option<Vec<(Vec<&str>, &Vec<Value>)>> {
    fn table(t: &Value) -> Option<(Vec<&str>, &Vec<Value>)> {
        let (Some(Value::Array(cols)), Some(Value::Array(rows))) =
            (t.get("columns").or_else(|| t.get("Columns")), t.get("rows").or_else(|| t.get("Rows")))
        else {
            return None;
        };
        if cols.is_empty() || cols.len() > MAX_COLUMNS || !rows.iter().all(Value::is_array) {
            return None;
        }
        let names: Option<Vec<&str>> = cols
            .iter()
            .map(|c| match c {
                Value::String(n) => Some(n.as_str()),
                Value::Object(o) => o.get("name").or_else(|| o.get("ColumnName")).and_then(Value::as_str),
                _ => None,
            })
            .map(|n| n.filter(|n| n.len() <= MAX_COLUMN_NAME))
            .collect();
        Some((names?, rows))
    }
    match v.get("tables").or_else(|| v.get("Tables")) {
        Some(Value::Array(ts)) if !ts.is_empty() => ts.iter().map(table).collect(),
        _ => table(v).map(|t| vec![t]),
    }
}

/// One row of a columnar table as the object its columns name (a cell beyond the named
/// columns is kept under its position).
fn row_object(names: &[&str], row: &Value) -> Value {
    let cells = row.as_array().map(Vec::as_slice).unwrap_or_default();
    Value::Object(
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| (names.get(i).map_or_else(|| format!("column_{i}"), |n| (*n).to_string()), c.clone()))
            .collect(),
    )
}

/// Items of a JSON value read generically (a collection: one per record).
pub(crate) fn read_value(v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
    if let Some(tables) = columnar(v) {
        // Row by row: only one row's object is held at a time.
        for (names, rows) in tables {
            for row in rows {
                out.push(generic_item(&row_object(&names, row), m));
            }
        }
        return;
    }
    match collection(v) {
        Some(list) => {
            for e in list {
                out.push(generic_item(e, m));
            }
        }
        None => out.push(generic_item(v, m)),
    }
}

/// One record read generically.
pub(crate) fn generic_item(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !v.is_object() {
        return b.finish();
    }
    // A ServiceNow Table API response wraps its record in `result`.
    let v = match v.get("result") {
        Some(inner @ Value::Object(_)) if v.as_object().is_some_and(|o| o.len() == 1) => inner,
        _ => v,
    };
    b.walk("", v);
    workload_of_object(v, &mut b);
    let bagged = if b.app_insights() {
        with_bag(v)
    } else if b.ecs() {
        ecs_labels(v)
    } else {
        None
    }
    .or_else(|| hec_event(v));
    let v = bagged.as_ref().unwrap_or(v);
    let start = b.time_from(v, &TIME_FIELDS);
    let spans = if b.app_insights() { app_insights_spans(v, &mut b) } else { None };
    let first_ev = b.item.evidence.len();
    if let Some(ev) = spans.as_ref().and_then(|_| app_insights_http(v, start.clone())) {
        b.evidence(ev);
    } else if let Some(ev) = change_record(v, &mut b, start.clone()) {
        b.evidence(ev);
    } else if let Some(ev) = generic_evidence(v, &b, start.clone()) {
        // An approval record that says when it was asked for is the request too.
        let asked =
            ["requested_at", "requestedAt", "request_time"].iter().filter_map(|p| at(v, p)).find_map(Time::of_json);
        if let (EventKind::ApprovalDecision, Some(t)) = (ev.kind, asked) {
            let mut req = ev.clone();
            req.kind = EventKind::ApprovalRequest;
            req.start = Some(t);
            req.detail.retain(|(k, _)| !matches!(*k, "decision" | "decision_as_written" | "approver"));
            b.evidence(req);
        }
        b.evidence(ev);
    } else if let Some(ev) = request_part(Some(v), &b, start.clone()) {
        b.evidence(ev);
    }
    if let Some((own, parent)) = spans {
        for ev in b.item.evidence.iter_mut().skip(first_ev) {
            ev.own_span = true;
            ev.key(Role::Link(LinkKey::SpanId), &own);
            if let Some(p) = &parent {
                ev.key(Role::Link(LinkKey::ParentSpanId), p);
            }
            if ev.outcome.status.is_none() {
                ev.outcome = app_insights_outcome(v).unwrap_or_default();
            }
            if ev.end.is_none() {
                ev.end = app_insights_end(v, start.as_ref());
            }
        }
    }
    b.finish()
}

/// An Application Insights request or dependency row (`requests`/`dependencies` of a query,
/// `AppRequests`/`AppDependencies` of Log Analytics) is a span of its own: `id`/`Id` is its
/// span id and `operation_ParentId`/`ParentId` its parent's, both recorded as such. Returns
/// them (`None` for a row without an own id). A root request names itself as its parent,
/// which is no parent.
fn app_insights_spans(v: &Value, b: &mut ItemBuilder<'_>) -> Option<(String, Option<String>)> {
    let (own_path, own) = ["id", "Id"].into_iter().find_map(|p| first(v, &[p]).and_then(|s| ai_span_id(&s)).map(|s| (p, s)))?;
    b.field(Role::Link(LinkKey::SpanId), &own, own_path);
    let parent = ["operation_ParentId", "ParentId"]
        .into_iter()
        .find_map(|p| first(v, &[p]).and_then(|s| ai_span_id(&s)).map(|s| (p, s)))
        .filter(|(_, s)| *s != own);
    if let Some((path, p)) = &parent {
        b.field(Role::Link(LinkKey::ParentSpanId), p, path);
    }
    Some((own, parent.map(|(_, p)| p)))
}

/// A span id as Application Insights writes it: 16 hex digits (W3C), or the legacy
/// hierarchical request id `|<trace id>.<span id>.` whose last part is the span's.
fn ai_span_id(raw: &str) -> Option<String> {
    let t = raw.trim().trim_start_matches('|').trim_end_matches('.');
    let last = t.rsplit('.').next()?;
    (!last.is_empty() && last.len() <= 32 && last.bytes().all(|c| c.is_ascii_hexdigit()) && last.bytes().any(|c| c != b'0'))
        .then(|| last.to_ascii_lowercase())
}

/// An Application Insights HTTP dependency (`type`/`DependencyType` `HTTP`, named `METHOD
/// /path`, `target` the host): a request the agent made. To an outside host it is an egress
/// request of its own; to an internal one (a cluster service, a private address) it is a
/// part of the tool call it was made in (its parent span), as an OTLP client span is.
fn app_insights_http(v: &Value, start: Option<Time>) -> Option<Ev> {
    let kind = first(v, &["type", "DependencyType"])?;
    if !kind.eq_ignore_ascii_case("http") && !kind.eq_ignore_ascii_case("http (tracked component)") {
        return None;
    }
    let name = first(v, &["name", "Name"])?;
    let (method, path) = name.split_once(' ')?;
    if method.is_empty() || method.len() > 10 || !method.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let host = first(v, &["target", "Target"]).map(|t| super::proxy::url_host(&t).to_string())?;
    let external = !super::proxy::internal_host(&host);
    let mut ev = Ev::new(
        if external { EventKind::EgressRequest } else { EventKind::ToolCall },
        if external { Side::Client } else { Side::Proxy },
    );
    ev.sub = !external;
    ev.start = start;
    ev.operation = Some(method.to_string());
    ev.detail("host", host.clone());
    ev.detail("path", path.trim().to_string());
    ev.target = Some(host);
    Some(ev)
}

/// What an Application Insights row says of its outcome: `resultCode`/`ResultCode` (an HTTP
/// status; `Canceled` when the caller gave up; `0` for an in-process call) and
/// `success`/`Success`. A failure without a status may still have taken effect: unknown.
fn app_insights_outcome(v: &Value) -> Option<OutcomeEv> {
    let code = first(v, &["resultCode", "ResultCode"]);
    if let Some(c) = code.as_deref() {
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()) {
            return Some(outcome_of(c));
        }
        if c.eq_ignore_ascii_case("canceled") || c.eq_ignore_ascii_case("cancelled") {
            return Some(OutcomeEv {
                replayed: false,
                status: Some(OutcomeStatus::Unknown),
                code: Some(c.to_string()),
                reason: Some("cancelled by the caller: it may or may not have been applied".into()),
            });
        }
    }
    let success = ["success", "Success"].iter().filter_map(|p| at(v, p)).find_map(|s| match s {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })?;
    Some(OutcomeEv {
        replayed: false,
        status: Some(if success { OutcomeStatus::Succeeded } else { OutcomeStatus::Unknown }),
        code: code.filter(|c| !c.trim().is_empty()),
        reason: (!success).then(|| "failed as the caller saw it, without a status: it may or may not have been applied".into()),
    })
}

/// The end of an Application Insights row: its start plus `duration`/`DurationMs`
/// (milliseconds).
fn app_insights_end(v: &Value, start: Option<&Time>) -> Option<Time> {
    after_ms(v, start, &["duration", "DurationMs"])
}

/// The ReplicaSet a Kubernetes object stands for, as a `workload` (the deployment hop a
/// pod's name leads to, [`super::super::item::pod_replicaset`]): an Argo Rollout's current one
/// (`metadata.name` + `-` + `status.currentPodHash`; not its stable ReplicaSet, whose pods
/// run the revision before, which the Rollout's annotations do not describe), or a
/// ReplicaSet's own name.
fn workload_of_object(v: &Value, b: &mut ItemBuilder<'_>) {
    if v.get("apiVersion").is_none() {
        return;
    }
    let name = first(v, &["metadata.name"]);
    match (v.get("kind").and_then(Value::as_str), name) {
        (Some("Rollout"), Some(name)) => {
            if let Some(hash) = first(v, &["status.currentPodHash"]) {
                b.field(Role::Link(LinkKey::Workload), &format!("{name}-{hash}"), "status.currentPodHash");
            }
        }
        (Some("ReplicaSet"), Some(name)) => {
            b.field(Role::Link(LinkKey::Workload), &name, "metadata.name");
        }
        _ => {}
    }
}

/// Application Insights and Log Analytics keep a record's own attributes in a bag beside the
/// telemetry columns (`customDimensions`/`Properties`, an object or JSON in a string;
/// `customMeasurements`/`Measurements`): the event a record describes is read from the bag's
/// keys as if they were the record's (a column of the same name wins). Its fields were
/// already classified where they are (`customDimensions{}.gen_ai.tool.name`). Called for
/// such records only (`ItemBuilder::app_insights`).
fn with_bag(v: &Value) -> Option<Value> {
    let o = v.as_object()?;
    let mut out = o.clone();
    for k in ["customDimensions", "Properties", "customMeasurements", "Measurements"] {
        let bag = match o.get(k) {
            Some(Value::Object(b)) => b.clone(),
            // Bounded as any JSON carried in a string is (`MAX_EMBEDDED`).
            Some(Value::String(t)) if t.len() <= MAX_EMBEDDED => match serde_json::from_str::<Value>(t) {
                Ok(Value::Object(b)) => b,
                _ => continue,
            },
            _ => continue,
        };
        for (bk, bv) in bag {
            out.entry(bk).or_insert(bv);
        }
    }
    Some(Value::Object(out))
}

/// An Elastic Common Schema record keeps the application's own fields in `labels` (custom
/// keywords: `labels.tool_name`, `labels.tool_use_id`) and its verdict in `event.outcome`
/// (`success`, `failure`, `unknown`): the event is read from the labels as if they were the
/// record's keys (a top-level key of the same name wins), with `event.outcome` as its
/// `outcome` (`success`, `failure`; `unknown` says nothing). Their fields were already classified where they are. `None` without labels.
fn ecs_labels(v: &Value) -> Option<Value> {
    let o = v.as_object()?;
    let Some(Value::Object(labels)) = o.get("labels") else { return None };
    let mut out = o.clone();
    for (k, x) in labels {
        out.entry(k.clone()).or_insert_with(|| x.clone());
    }
    // `unknown` is ECS's "not recorded" (a start line): no outcome, not an unrecognised one.
    if let Some(outcome) = v.pointer("/event/outcome").or_else(|| o.get("event.outcome")) {
        if matches!(outcome.as_str(), Some("success" | "failure")) {
            out.entry("outcome".to_string()).or_insert_with(|| outcome.clone());
        }
    }
    Some(Value::Object(out))
}

/// A Splunk HTTP Event Collector event (`{"time": …, "host": …, "sourcetype": …, "event": {…},
/// "fields": {…}}`, as sent to `/services/collector/event` and as HEC spool files keep it): the
/// application's record is `event`, its indexed `fields` and the envelope's `time` beside it.
/// The event it describes is read from that record; its fields were already classified where
/// they are (`event.approval_id`). `None` for any other record.
fn hec_event(v: &Value) -> Option<Value> {
    let o = v.as_object()?;
    let Some(Value::Object(event)) = o.get("event") else { return None };
    let envelope = o.contains_key("sourcetype")
        || (o.contains_key("time") && ["host", "source", "index", "fields"].iter().any(|k| o.contains_key(*k)));
    if !envelope {
        return None;
    }
    let mut out = event.clone();
    if let Some(Value::Object(fields)) = o.get("fields") {
        for (k, x) in fields {
            out.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    if let Some(t) = o.get("time") {
        out.entry("time".to_string()).or_insert_with(|| t.clone());
    }
    Some(Value::Object(out))
}

/// A change-management record (a ServiceNow change request: `sys_id` with a `number` such as
/// `CHG0031174`; or any record whose own id is a change id and that has a state and a
/// description) is a `change` event, and its number is the change id.
fn change_record(v: &Value, b: &mut ItemBuilder<'_>, start: Option<Time>) -> Option<Ev> {
    let snow = v.get("sys_id").is_some() && v.get("number").is_some();
    let number = if snow { first(v, &["number"]).filter(|n| n.to_ascii_uppercase().starts_with("CHG")) } else { None };
    if let Some(n) = &number {
        b.field(Role::Ident(IdentName::ChangeId), n, "number");
    }
    let own = number.clone().or_else(|| {
        let described = ["short_description", "description", "title", "summary"].iter().any(|k| at(v, k).is_some());
        let stateful = ["state", "status", "phase"].iter().any(|k| at(v, k).is_some());
        let typed = ["type", "risk", "category", "implementation_plan", "approval"].iter().any(|k| at(v, k).is_some());
        (described && stateful && typed)
            .then(|| first(v, &["change_id", "changeId", "change.id", "change_number"]))
            .flatten()
    })?;
    let mut ev = Ev::new(EventKind::Change, Side::Server);
    ev.start = start.or_else(|| {
        ["start_date", "sys_created_on", "opened_at"].iter().filter_map(|p| at(v, p)).find_map(Time::of_json)
    });
    ev.target = Some(own.clone());
    ev.operation = first(v, &["state", "status", "phase"]);
    ev.key(Role::Ident(IdentName::ChangeId), &own);
    if let Some(d) = first(v, &["short_description", "title", "summary"]) {
        ev.detail("description", d);
    }
    Some(ev)
}

/// The end of a record: an end-time field, or its start plus a duration in milliseconds.
pub(crate) fn end_of(v: &Value, start: Option<&Time>) -> Option<Time> {
    if let Some(t) = END_FIELDS.iter().filter_map(|p| at(v, p)).find_map(Time::of_json) {
        return Some(t);
    }
    after_ms(v, start, &["duration_ms", "latency_ms", "durationMs", "elapsed_ms"])
}

/// `start` plus the first of `keys` that holds a duration in milliseconds (a number, or one
/// written as a string), when it is finite and below 10^12 ms.
fn after_ms(v: &Value, start: Option<&Time>, keys: &[&str]) -> Option<Time> {
    let ms = keys
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
        &[
            "tool",
            "tool_name",
            "toolName",
            "gen_ai.tool.name",
            "tool.name",
            "function.name",
            "function_name",
            "tool_id",
        ],
    )
    .filter(|t| !t.contains('{'))
}

/// What a tool-call record says of its outcome: a timeout flag, a status (response status,
/// outcome, status code), or an error.
pub(crate) fn tool_outcome(v: &Value) -> OutcomeEv {
    for flag in ["timeout", "timed_out", "timedOut"] {
        if at(v, flag).and_then(Value::as_bool) == Some(true) {
            return OutcomeEv {
                replayed: false,
                status: Some(OutcomeStatus::Unknown),
                code: Some(flag.to_string()),
                reason: Some("timeout".into()),
            };
        }
    }
    let status = [
        "outcome",
        "http.status_code",
        "http.response.status_code",
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
    let error = error_outcome(v);
    if let Some(s) = status {
        let o = outcome_of(&s);
        // A bare `outcome: error` says less than the error it carries (a read timeout
        // after the body was sent: unknown, not failed).
        return match error {
            Some(e) if o.status != Some(OutcomeStatus::Succeeded) && e.reason.as_deref() == Some("timeout") => e,
            _ => o,
        };
    }
    error.unwrap_or_default()
}

/// What a record's `error` says of the outcome, if it has one.
fn error_outcome(v: &Value) -> Option<OutcomeEv> {
    Some(match at(v, "error").or_else(|| at(v, "response.error")) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return None,
        Some(Value::String(s)) => outcome_of(s),
        Some(other) => {
            let parts: Vec<String> =
                ["kind", "type", "message", "code"].iter().filter_map(|k| first(other, &[k])).collect();
            let msg = if parts.is_empty() { "error".to_string() } else { parts.join(": ") };
            let mut o = outcome_of(&msg);
            if o.status == Some(OutcomeStatus::Succeeded) {
                o.status = Some(OutcomeStatus::Unknown);
            }
            o
        }
    })
}

/// The words of a memory operation: add/update/delete/… are writes, get/search/… reads.
pub(crate) fn memory_kind(op: &str) -> Option<EventKind> {
    let o = op.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| o.contains(x));
    if has(&[
        "add", "write", "update", "upsert", "insert", "delete", "remove", "put", "store", "save", "create", "set",
        "forget",
    ]) {
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
    // A decision happened when it was decided; its record may say when it was asked for too.
    let decided = ["decided_at", "decidedAt", "approved_at", "resolved_at", "completed_at"]
        .iter()
        .filter_map(|p| at(v, p))
        .find_map(Time::of_json);
    ev.start = if kind == EventKind::ApprovalDecision { decided.or(start) } else { start };
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
    if let Some(ev) = api_gateway_request(v, b, start.clone()) {
        return Some(ev);
    }
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
            "arguments",
            "args",
            "input",
            "parameters",
            "params",
            "response",
            "output",
            "result",
            "status",
            "outcome",
            "error",
            "duration_ms",
            "latency_ms",
            "call_id",
            "tool_call_id",
            "timeout",
            "status_code",
        ]
        .iter()
        .any(|k| at(v, k).is_some())
            // A line naming the call (an MCP server's log bound to the request's `_meta`).
            || b.value_of(Role::Link(LinkKey::CallId)).is_some();
        if invoked {
            let kind = tool_kind(&tool);
            let mut ev = Ev::new(kind, Side::Client);
            ev.end = end_of(v, start.as_ref());
            ev.start = start;
            ev.target = Some(tool);
            ev.outcome = tool_outcome(v);
            if let Some(c) =
                first(v, &["call_id", "tool_call_id", "toolCallId", "callId", "gen_ai.tool.call.id", "tool_call.id"])
                    .or_else(|| b.value_of(Role::Link(LinkKey::CallId)).map(str::to_string))
            {
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
    // nginx's JSON access logs name the variables (`$request_method`, `$host`, `$request_uri`);
    // ECS names the destination `url.domain`.
    let method = first(v, &["method", "http.method", "http.request.method", "request.method", "request_method", "verb"]);
    let url = first(
        v,
        &[
            "url",
            "url.full",
            "url.original",
            "uri",
            "request.url",
            "host",
            "http_host",
            "url.domain",
            "authority",
            "server.address",
            "upstream",
        ],
    );
    if let (Some(method), Some(url)) = (method, url) {
        if method.chars().all(|c| c.is_ascii_uppercase()) && method.len() <= 10 {
            let mut ev = Ev::new(EventKind::EgressRequest, Side::Proxy);
            ev.end = end_of(v, start.as_ref());
            ev.start = start;
            ev.operation = Some(method);
            let host = super::proxy::url_host(&url).to_string();
            ev.target = Some(host.clone());
            ev.detail("host", host);
            if let Some(p) = first(v, &["path", "url.path", "request.path", "request_uri"]) {
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

/// What a tool (or a workflow activity running one) is by its name: a memory operation, a
/// request for human approval (`request_approval`, `notify_approvers`, `await_approval`), a
/// model call (`invoke_model_activity`, `call_llm`), else a tool call.
pub(crate) fn tool_kind(name: &str) -> EventKind {
    if let Some(k) = memory_tool_kind(name) {
        return k;
    }
    let t = name.to_ascii_lowercase();
    if t.contains("approv") {
        return EventKind::ApprovalRequest;
    }
    if t.contains("invoke_model")
        || t.contains("model_activity")
        || t.contains("call_llm")
        || t.contains("llm_call")
        || t == "chat_completion"
    {
        return EventKind::ModelCall;
    }
    EventKind::ToolCall
}

/// A workflow engine's activity span (the Temporal interceptors' `StartActivity:<name>` and
/// `RunActivity:<name>`): `(name, is the execution attempt)`. `StartActivity` schedules the
/// call (a part of it); each `RunActivity` is one attempt.
pub(crate) fn activity_span(span_name: &str) -> Option<(&str, bool)> {
    if let Some(n) = span_name.strip_prefix("RunActivity:") {
        return Some((n, true));
    }
    span_name.strip_prefix("StartActivity:").map(|n| (n, false))
}

/// An API Gateway proxy event (REST or HTTP API, as Lambda receives it), anywhere in a
/// record: the server's view of one inbound request (the egress of whoever sent it).
pub(crate) fn api_gateway_request(v: &Value, b: &ItemBuilder<'_>, start: Option<Time>) -> Option<Ev> {
    let evt = [v, v.get("event").unwrap_or(&Value::Null), v.get("request").unwrap_or(&Value::Null)].into_iter().find(
        |x| {
            x.get("requestContext").is_some()
                && (x.get("httpMethod").is_some() || x.pointer("/requestContext/http/method").is_some())
        },
    )?;
    let mut ev = Ev::new(EventKind::EgressRequest, Side::Server);
    ev.start = start;
    ev.operation = first(evt, &["httpMethod", "requestContext.http.method"]);
    let host = first(evt, &["headers.Host", "headers.host", "requestContext.domainName"]);
    if let Some(h) = &host {
        ev.detail("host", h.clone());
    }
    ev.target = host;
    if let Some(p) = first(evt, &["path", "rawPath", "resource"]) {
        ev.detail("path", p);
    }
    ev.principal = first(
        evt,
        &[
            "requestContext.authorizer.principalId",
            "requestContext.authorizer.lambda.principalId",
            "requestContext.authorizer.claims.sub",
        ],
    );
    for f in &b.item.fields {
        if matches!(f.role, Role::Link(LinkKey::RequestId) | Role::Link(LinkKey::ParentSpanId)) {
            ev.key(f.role, &f.value);
        }
    }
    if let Some(ip) = first(evt, &["requestContext.identity.sourceIp", "requestContext.http.sourceIp"]) {
        ev.detail("source_address", ip);
    }
    Some(ev)
}

/// A log line of one request (it names a request id) that is no event itself: a part of that
/// request's event (a function's START/END lines, its "created" or "replayed" message), with
/// the outcome it states (`*_status` codes, an outcome message).
pub(crate) fn request_part(v: Option<&Value>, b: &ItemBuilder<'_>, start: Option<Time>) -> Option<Ev> {
    let rid = b.item.fields.iter().find(|f| f.role == Role::Link(LinkKey::RequestId))?;
    let mut ev = Ev::new(EventKind::EgressRequest, Side::Server);
    ev.sub = true;
    ev.start = start;
    for f in &b.item.fields {
        if f.role == Role::Link(LinkKey::RequestId) {
            ev.key(f.role, &f.value);
        }
    }
    let _ = rid;
    if let Some(v) = v {
        let status = v.as_object().into_iter().flatten().find_map(|(k, x)| {
            let k = k.to_ascii_lowercase();
            ((k.ends_with("_status") || k.ends_with("status_code") || k == "statuscode")
                && !k.contains("http_status_text"))
            .then(|| scalar(x))
            .flatten()
        });
        let msg = first(v, &["message", "msg"]);
        let o =
            msg.as_deref().map(outcome_of).filter(|o| o.replayed || o.reason.as_deref() != Some("unrecognised status"));
        ev.outcome = match (o, status) {
            (Some(o), _) if o.replayed => o,
            (_, Some(s)) => outcome_of(&s),
            (Some(o), None) => o,
            (None, None) => OutcomeEv::default(),
        };
    }
    Some(ev)
}

/// A tool whose name is a memory operation (`memory_add`, `add_memory`, `mem0.search`,
/// `save_memory`…) is that memory operation, not a tool call.
pub(crate) fn memory_tool_kind(tool: &str) -> Option<EventKind> {
    let t = tool.to_ascii_lowercase();
    if !(t.contains("memory")
        || t.contains("memories")
        || t.starts_with("mem0")
        || t.contains("remember")
        || t.contains("recall"))
    {
        return None;
    }
    // `remember`, and `manage_memory` (LangMem: create, update or delete a memory).
    if t.contains("remember") || t.contains("manage") {
        return Some(EventKind::MemoryWrite);
    }
    if t.contains("recall") {
        return Some(EventKind::MemoryRead);
    }
    memory_kind(&t.replace("memory", "").replace("memories", "").replace("mem0", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(item: &Item, role: Role) -> Vec<String> {
        item.fields.iter().filter(|f| f.role == role).map(|f| f.value.clone()).collect()
    }

    /// Red team, 2026-12-07 (checkout-scale-to-zero): the Rollout's change, wave and bundle were
    /// never reached, because nothing tied the Rollout object to the pod that served the trace.
    /// Its current ReplicaSet is the hop (the pod's name leads there); the stable one, whose pods
    /// run the previous revision, is not; the pods' service account is configuration.
    #[test]
    fn regression_argo_rollout_object_is_its_current_replicaset_only() {
        let m = FieldMapping::default();
        let rollout = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "ops-scaler", "annotations": {"acme.io/change-id": "CR-4471"}},
            "spec": {"template": {"spec": {"serviceAccountName": "ops-scaler"}}},
            "status": {"currentPodHash": "7b9c6d5f84", "stableRS": "5d4c3b2a19"}
        });
        let item = generic_item(&rollout, &m);
        assert_eq!(roles(&item, Role::Link(LinkKey::Workload)), ["ops-scaler-7b9c6d5f84"]);
        assert!(roles(&item, Role::Ident(IdentName::ToolPrincipal)).is_empty(), "{:?}", item.fields);
        assert_eq!(roles(&item, Role::Ident(IdentName::ChangeId)), ["CR-4471"]);
        // Not a Kubernetes object (no apiVersion): a record merely named `kind: Rollout`.
        let other = serde_json::json!({"kind": "Rollout", "metadata": {"name": "x"}, "status": {"currentPodHash": "7b9c6d5f84"}});
        assert!(roles(&generic_item(&other, &m), Role::Link(LinkKey::Workload)).is_empty());
    }

    /// An Application Insights row: its own span and parent, its outcome from `resultCode`
    /// or `success`, and the pod in `cloud_RoleInstance` as the deployment hop.
    #[test]
    fn app_insights_rows_are_spans_with_outcomes() {
        let m = FieldMapping::default();
        let row = |code: &str, success: &str| {
            generic_item(
                &serde_json::json!({
                    "timestamp": "2026-12-07T15:10:58.2021Z", "itemType": "dependency",
                    "name": "execute_tool scale_deployment", "id": "d3e4f5a60718293a",
                    "operation_Id": "4e8d2b6f0a1c47d9b3e5f7a9c1d3e5f7",
                    "operation_ParentId": "|4e8d2b6f0a1c47d9b3e5f7a9c1d3e5f7.9a8b7c6d5e4f3a21.",
                    "success": success, "resultCode": code, "duration": 1500.0, "type": "InProc",
                    "cloud_RoleInstance": "ops-scaler-7b9c6d5f84-x9k2m",
                    "customDimensions": "{\"gen_ai.tool.name\":\"scale_deployment\",\"gen_ai.tool.call.id\":\"call_1\"}"
                }),
                &m,
            )
        };
        let item = row("409", "False");
        assert_eq!(roles(&item, Role::Link(LinkKey::SpanId)), ["d3e4f5a60718293a"]);
        assert_eq!(roles(&item, Role::Link(LinkKey::ParentSpanId)), ["9a8b7c6d5e4f3a21"]);
        assert_eq!(roles(&item, Role::Link(LinkKey::Workload)), ["ops-scaler-7b9c6d5f84"]);
        let ev = item.evidence.iter().find(|e| e.kind == EventKind::ToolCall).expect("a tool call");
        assert!(ev.own_span);
        assert_eq!(ev.outcome.status, Some(OutcomeStatus::Unknown));
        assert_eq!(ev.outcome.code.as_deref(), Some("409"));
        assert!(ev.end.is_some());
        let ok = row("0", "True");
        let ev = ok.evidence.iter().find(|e| e.kind == EventKind::ToolCall).expect("a tool call");
        assert_eq!(ev.outcome.status, Some(OutcomeStatus::Succeeded));
        let cancelled = row("Canceled", "False");
        let ev = cancelled.evidence.iter().find(|e| e.kind == EventKind::ToolCall).expect("a tool call");
        assert_eq!(ev.outcome.status, Some(OutcomeStatus::Unknown));
        assert_eq!(ai_span_id("|abc.00000000."), None);
    }
}
