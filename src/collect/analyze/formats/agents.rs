//! The OpenAI Agents SDK: a serialised `RunState` (Python: compact snake_case; JS
//! `@openai/agents`: camelCase, often pretty-printed) and the SDK's tracing export (traces
//! `trace_<hex>` whose `group_id` is the conversation, spans `span_<hex>` with `span_data`).
//!
//! A RunState yields the tool calls it holds (`tool_call_item`s, their outcome read from the
//! matching `tool_call_output_item`), an `approval_request` per `tool_approval_item`
//! interruption (any approval id inside the item is read), and an `approval_decision` per
//! decision in `context.approvals` (per call id, or for all calls of a tool) and in
//! `hosted_mcp_approvals`. A tracing export's `function` spans are tool calls,
//! `generation`/`response` spans model calls.

use super::super::item::{bounded, first, outcome_of, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::memory_tool_kind;
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::{Map, Value};

/// Deepest nesting searched for approval items.
const MAX_DEPTH: usize = 64;
/// Most events taken from one document.
const MAX_EVENTS: usize = 10_000;

/// An OpenAI Agents SDK `RunState`.
pub(crate) struct RunState;

const RUNSTATE_KEYS: [&str; 10] = [
    "current_agent",
    "currentAgent",
    "generated_items",
    "generatedItems",
    "original_input",
    "originalInput",
    "model_responses",
    "modelResponses",
    "context",
    "currentStep",
];

impl FormatDef for RunState {
    fn name(&self) -> &'static str {
        "agents_run_state"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["runstate", "run-state", "openai-agents", "agents-runstate"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("approvals")
    }
    fn what(&self) -> &'static str {
        "OpenAI Agents SDK RunState (Python snake_case or JS camelCase, compact or pretty-printed)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        (h.has("$schemaVersion") && RUNSTATE_KEYS.iter().any(|k| h.has(k)))
            || (h.mentions("$schemaVersion") && RUNSTATE_KEYS.iter().any(|k| h.mentions(k)))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(run_state(e, m))),
            _ => out.push(run_state(v, m)),
        }
    }
}

/// `snake` or its camelCase spelling.
fn get<'v>(v: &'v Value, snake: &str, camel: &str) -> Option<&'v Value> {
    v.get(snake).or_else(|| v.get(camel))
}

fn raw_item(v: &Value) -> Option<&Value> {
    get(v, "raw_item", "rawItem")
}

fn call_id_of(v: &Value) -> Option<String> {
    raw_item(v)
        .and_then(|r| first(r, &["call_id", "callId", "id"]))
        .or_else(|| first(v, &["call_id", "callId", "tool_call_id"]))
}

fn tool_of(v: &Value) -> Option<String> {
    first(v, &["tool_name", "toolName"]).or_else(|| raw_item(v).and_then(|r| first(r, &["name"])))
}

/// The request of a `tool_approval_item` (an interruption).
pub(crate) fn approval_request(v: &Value, m: Option<&FieldMapping>, start: Option<Time>) -> Ev {
    let mut ev = Ev::new(EventKind::ApprovalRequest, Side::Client);
    ev.start = start;
    ev.target = tool_of(v).map(bounded);
    if let Some(c) = call_id_of(v) {
        ev.key(Role::Link(LinkKey::CallId), &c);
    }
    let default = FieldMapping::default();
    let mut b = ItemBuilder::new(m.unwrap_or(&default));
    b.walk("", v);
    if let Some(id) = b.ident(IdentName::ApprovalId) {
        ev.key(Role::Ident(IdentName::ApprovalId), &id);
    }
    if let Some(a) = v.get("agent").and_then(|a| first(a, &["name"])) {
        ev.actor = Some(a);
    }
    ev
}

/// The decision `approvals` holds for a tool (and call id): approved, rejected, or none.
fn decision_in(approvals: Option<&Map<String, Value>>, tool: &str, call: Option<&str>) -> Option<&'static str> {
    let entry = approvals?.get(tool)?;
    let listed = |key: &str| match entry.get(key) {
        Some(Value::Array(ids)) => call.is_some_and(|c| ids.iter().any(|i| i.as_str() == Some(c))),
        _ => false,
    };
    let all = |key: &str| entry.get(key).and_then(Value::as_bool) == Some(true);
    // Per-call entries override the tool-wide flag.
    if listed("rejected") {
        Some("rejected")
    } else if listed("approved") || all("approved") {
        Some("approved")
    } else if all("rejected") {
        Some("rejected")
    } else {
        None
    }
}

fn decision_ev(tool: Option<String>, call: Option<&str>, decision: &str, scope: Option<&str>) -> Ev {
    let mut ev = Ev::new(EventKind::ApprovalDecision, Side::Client);
    ev.target = tool;
    if let Some(c) = call {
        ev.key(Role::Link(LinkKey::CallId), c);
    }
    ev.detail("decision", decision);
    if let Some(s) = scope {
        ev.detail("scope", s);
    }
    ev
}

/// What a tool's output says of its outcome: an error message reads as its outcome, any
/// other output means the tool returned.
fn output_outcome(output: &str) -> OutcomeEv {
    let lower = output.to_ascii_lowercase();
    if ["error", "exception", "timeout", "timed out", "failed", "denied"].iter().any(|w| lower.contains(w)) {
        let mut o = outcome_of(output);
        if o.status == Some(OutcomeStatus::Succeeded) {
            o.status = Some(OutcomeStatus::Unknown);
        }
        o.code = Some(bounded(output.to_string()));
        return o;
    }
    OutcomeEv { replayed: false, status: Some(OutcomeStatus::Succeeded), code: Some("returned".into()), reason: None }
}

fn run_state(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !v.is_object() {
        return b.finish();
    }
    b.walk("", v);
    if let Some(trace) = v.get("trace").filter(|t| t.is_object()) {
        for k in ["trace_id", "traceId", "id"] {
            if let Some(t) = trace.get(k).and_then(Value::as_str) {
                b.field(Role::Ident(IdentName::TraceId), t, &format!("trace.{k}"));
            }
        }
        for k in ["group_id", "groupId"] {
            if let Some(g) = trace.get(k).and_then(Value::as_str) {
                b.field(Role::Ident(IdentName::SessionId), g, &format!("trace.{k}"));
            }
        }
    }
    for (k, path) in [("current_agent", "current_agent.name"), ("currentAgent", "currentAgent.name")] {
        if let Some(n) = v.get(k).and_then(|a| a.get("name")).and_then(Value::as_str) {
            b.field(Role::Link(LinkKey::AgentName), n, path);
        }
    }
    let ctx = v.get("context");
    let approvals = ctx.and_then(|c| c.get("approvals")).and_then(Value::as_object);
    let mut evs: Vec<Ev> = Vec::new();
    // Tool calls and their outputs.
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut calls: Vec<Ev> = Vec::new();
    let items =
        get(v, "generated_items", "generatedItems").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let session =
        get(v, "session_items", "sessionItems").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for it in items.iter().chain(session) {
        match it.get("type").and_then(Value::as_str) {
            Some("tool_call_item") => {
                let tool = tool_of(it).map(bounded);
                let k = tool.as_deref().and_then(memory_tool_kind).unwrap_or(EventKind::ToolCall);
                let mut ev = Ev::new(k, Side::Client);
                ev.target = tool;
                if let Some(c) = call_id_of(it) {
                    ev.key(Role::Link(LinkKey::CallId), &c);
                }
                if let Some(a) = it.get("agent").and_then(|a| first(a, &["name"])) {
                    ev.actor = Some(a);
                }
                if !calls.iter().any(|c| c.keys == ev.keys && c.target == ev.target) {
                    calls.push(ev);
                }
            }
            Some("tool_call_output_item") => {
                let out = first(it, &["output"]).or_else(|| raw_item(it).and_then(|r| first(r, &["output"])));
                if let (Some(c), Some(o)) = (call_id_of(it), out) {
                    outputs.push((c, o));
                }
            }
            _ => {}
        }
    }
    for mut ev in calls {
        let call = ev.key_of(Role::Link(LinkKey::CallId)).map(str::to_string);
        if let Some((_, o)) = outputs.iter().find(|(c, _)| Some(c) == call.as_ref()) {
            ev.outcome = output_outcome(o);
        }
        evs.push(ev);
    }
    // Interruptions: approval requests, decided or not.
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((x, depth)) = stack.pop() {
        if evs.len() >= MAX_EVENTS || depth > MAX_DEPTH {
            continue;
        }
        match x {
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("tool_approval_item") {
                    let req = approval_request(x, Some(m), None);
                    if !evs.iter().any(|e| e.kind == EventKind::ApprovalRequest && e.keys == req.keys) {
                        evs.push(req);
                    }
                    continue;
                }
                stack.extend(o.values().rev().map(|c| (c, depth + 1)));
            }
            Value::Array(l) => stack.extend(l.iter().rev().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    // Decisions recorded in the context.
    for (tool, entry) in approvals.into_iter().flatten() {
        for (key, decision) in [("approved", "approved"), ("rejected", "rejected")] {
            match entry.get(key) {
                Some(Value::Bool(true)) => evs.push(decision_ev(Some(tool.clone()), None, decision, Some("all calls"))),
                Some(Value::Array(ids)) => {
                    for id in ids.iter().filter_map(Value::as_str).take(MAX_EVENTS) {
                        // A call rejected explicitly is not approved by the tool-wide flag.
                        if decision_in(approvals, tool, Some(id)) == Some(decision) {
                            evs.push(decision_ev(Some(tool.clone()), Some(id), decision, None));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for entry in ctx
        .and_then(|c| get(c, "hosted_mcp_approvals", "hostedMcpApprovals"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .take(MAX_EVENTS)
    {
        let identity = entry.get("identity");
        let tool = identity.and_then(|i| first(i, &["tool_name", "toolName", "server_label"]));
        let request = identity.and_then(|i| first(i, &["request_id", "requestId"]));
        let d = entry.get("decision");
        let verdict = |key: &str| match d.and_then(|d| d.get(key)) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Array(ids)) => match request.as_deref() {
                Some(r) => ids.iter().any(|i| i.as_str() == Some(r)),
                None => !ids.is_empty(),
            },
            _ => false,
        };
        let decision = if verdict("rejected") {
            "rejected"
        } else if verdict("approved") {
            "approved"
        } else {
            continue;
        };
        evs.push(decision_ev(tool, request.as_deref(), decision, Some("hosted MCP")));
    }
    // A snapshot's interruption that its own context already decided is decided there.
    for ev in evs {
        b.evidence(ev);
    }
    b.finish()
}

/// The OpenAI Agents SDK tracing export.
pub(crate) struct Tracing;

impl FormatDef for Tracing {
    fn name(&self) -> &'static str {
        "agents_tracing"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["openai-agents-tracing", "agents-traces"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("traces")
    }
    fn what(&self) -> &'static str {
        "OpenAI Agents SDK tracing export (trace and trace.span objects; function spans are tool calls)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        matches!(h.str_of("object"), Some("trace" | "trace.span"))
            || h.has("span_data")
            || h.inner("data").is_some_and(|d| matches!(d.str_of("object"), Some("trace" | "trace.span")))
            || (!h.line_complete && h.mentions("span_data") && h.text.contains("\"trace.span\""))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| self.read_json(e, m, out)),
            Value::Object(o) if o.get("object").is_none() && o.get("data").is_some_and(Value::is_array) => {
                if let Some(d) = o.get("data") {
                    self.read_json(d, m, out);
                }
            }
            _ => out.push(tracing_object(v, m)),
        }
    }
}

fn tracing_object(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let is_trace = v.get("object").and_then(Value::as_str) == Some("trace") || v.get("workflow_name").is_some();
    if is_trace {
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            b.field(Role::Ident(IdentName::TraceId), id, "id");
        }
        if let Some(g) = v.get("group_id").and_then(Value::as_str) {
            b.field(Role::Ident(IdentName::SessionId), g, "group_id");
        }
        return b.finish();
    }
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        if let Some(s) = b.field(Role::Link(LinkKey::SpanId), id, "id") {
            b.item.span_id = Some(s);
        }
    }
    if let Some(p) = v.get("parent_id").and_then(Value::as_str) {
        b.field(Role::Link(LinkKey::ParentSpanId), p, "parent_id");
    }
    let start = b.time_from(v, &["started_at"]);
    let end = v.get("ended_at").and_then(Time::of_json);
    let data = v.get("span_data");
    let ty = data.and_then(|d| d.get("type")).and_then(Value::as_str);
    let mut ev = match ty {
        Some("function") => {
            let name = data.and_then(|d| first(d, &["name"]));
            let k = name.as_deref().and_then(memory_tool_kind).unwrap_or(EventKind::ToolCall);
            let mut ev = Ev::new(k, Side::Client);
            ev.target = name;
            if let Some(o) = data.and_then(|d| first(d, &["output"])) {
                ev.outcome = output_outcome(&o);
            }
            if let Some(server) = data.and_then(|d| d.get("mcp_data")).and_then(|d| first(d, &["server"])) {
                ev.detail("mcp_server", server);
            }
            // A function span carries no call id; the generation that asked for it does, with
            // the same name and arguments (see `requested_calls`).
            if let Some(input) = data.and_then(|d| d.get("input")) {
                ev.detail(ARGS_SHA, call_signature(input));
            }
            if k != EventKind::ToolCall {
                // A memory tool's output names the records it read or wrote, often as JSON in
                // a string in JSON (an MCP text content whose text is the memory server's
                // JSON): `{"results": [{"id": …, "memory": …}]}`.
                let mut ids = Vec::new();
                if let Some(out) = data.and_then(|d| d.get("output")) {
                    memory_ids_in(out, 0, &mut ids);
                }
                for id in &ids {
                    b.field(Role::Link(LinkKey::MemoryId), id, "span_data.output{}.results.id");
                }
                if !ids.is_empty() {
                    ev.detail("memory_ids", ids.join(","));
                }
            }
            ev
        }
        Some("generation" | "response") => {
            let mut ev = Ev::new(EventKind::ModelCall, Side::Client);
            ev.target = data.and_then(|d| first(d, &["model", "response.model"]));
            ev.operation = ty.map(str::to_string);
            for call in requested_calls(data, end.clone().or_else(|| start.clone())) {
                b.field(
                    Role::Link(LinkKey::CallId),
                    call.key_of(Role::Link(LinkKey::CallId)).unwrap_or(""),
                    REQUESTED_PATH,
                );
                b.evidence(call);
            }
            ev
        }
        _ => return b.finish(),
    };
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        // The SDK's message is generic ("Error running tool"); what went wrong is in
        // `data.error` (an MCP client's "Timed out while waiting for response…").
        let parts: Vec<String> =
            ["message", "data.error", "data.message"].iter().filter_map(|p| first(err, &[p])).collect();
        let msg = if parts.is_empty() { "error".to_string() } else { parts.join(": ") };
        let mut o = outcome_of(&msg);
        if o.status == Some(OutcomeStatus::Succeeded) {
            o.status = Some(OutcomeStatus::Unknown);
        }
        ev.outcome = o;
    }
    ev.start = start;
    ev.end = end;
    if let Some(s) = b.value_of(Role::Link(LinkKey::SpanId)) {
        ev.key(Role::Link(LinkKey::SpanId), s);
    }
    b.evidence(ev);
    b.finish()
}

/// The ids of memory records in a memory tool's output: objects with an `id` (or
/// `memory_id`) next to the memory's content (`memory`, `data`, `text`, `event`, `hash`,
/// `score`), or a LangGraph store item's `key` next to its `namespace`, found through JSON
/// carried in strings (three levels at most; 64 ids at most); in plain text ("created memory
/// 5b0c8e2a-…"), a UUID after the word memory.
pub(crate) fn memory_ids_in(v: &Value, depth: u8, out: &mut Vec<String>) {
    if depth > 6 || out.len() >= 64 {
        return;
    }
    match v {
        Value::String(s) => {
            let t = s.trim_start();
            if depth < 6 && (t.starts_with('{') || t.starts_with('[')) && t.len() <= 256 * 1024 {
                if let Ok(inner) = serde_json::from_str::<Value>(t) {
                    memory_ids_in(&inner, depth + 2, out);
                    return;
                }
            }
            if t.len() <= 4096 && t.to_ascii_lowercase().contains("memory") {
                for w in t.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')) {
                    if is_uuid(w) && !out.iter().any(|x| x == w) {
                        out.push(w.to_string());
                    }
                }
            }
        }
        Value::Array(list) => list.iter().take(256).for_each(|x| memory_ids_in(x, depth, out)),
        Value::Object(o) => {
            let content = ["memory", "data", "text", "event", "hash", "score"].iter().any(|k| o.contains_key(*k));
            let store_item = o.contains_key("namespace") && o.contains_key("value");
            let id = o
                .get("id")
                .or_else(|| o.get("memory_id"))
                .or_else(|| o.get("key").filter(|_| store_item))
                .and_then(Value::as_str);
            let content = content || store_item;
            if let (true, Some(id)) = (content, id) {
                if !out.iter().any(|x| x == id) {
                    out.push(id.to_string());
                }
            }
            for (k, x) in o {
                if matches!(x, Value::String(_)) && !matches!(k.as_str(), "text" | "output" | "content" | "kwargs") {
                    continue;
                }
                memory_ids_in(x, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The detail naming a call's arguments (a digest of them): a function span and the tool
/// call its generation asked for carry the same one.
pub(crate) const ARGS_SHA: &str = "args_sha";

/// Where a generation's requested call ids are.
const REQUESTED_PATH: &str = "span_data.output.tool_calls.id";

/// A digest of a call's arguments (a JSON string, or a value): the same arguments written
/// with other spacing or key order give the same digest.
pub(crate) fn call_signature(args: &Value) -> String {
    use sha2::{Digest, Sha256};
    let parsed = match args {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.trim().to_string())),
        other => other.clone(),
    };
    let canonical = canonical_json(&parsed);
    let d = Sha256::digest(canonical.as_bytes());
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical_json(&o[k.as_str()])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(l) => format!("[{}]", l.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The tool calls a generation (Chat Completions `output[].tool_calls[]`) or a response
/// (Responses API `output[]` items of type `function_call`) asked for: each a *part* of a
/// tool call (never an event by itself: asking is not doing) with the model's call id, the
/// tool's name and its arguments' digest, at the generation's end. The function span that
/// ran it has the same name and arguments but no call id; the event builder pairs them in
/// time order ([`crate::collect::analyze::events`]), so that the call id reaches the span
/// and, through it, the MCP server's or tool's own records of the call.
fn requested_calls(data: Option<&Value>, at: Option<Time>) -> Vec<Ev> {
    let mut out = Vec::new();
    let Some(outputs) = data.and_then(|d| d.get("output")).and_then(Value::as_array) else { return out };
    let mut push = |id: Option<String>, name: Option<String>, args: Option<&Value>| {
        if out.len() < 64 {
            out.extend(requested_call(id, name, args, at.clone()));
        }
    };
    for o in outputs.iter().take(64) {
        for tc in o.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().take(64) {
            push(first(tc, &["id"]), first(tc, &["function.name", "name"]), tc.pointer("/function/arguments"));
        }
        if o.get("type").and_then(Value::as_str) == Some("function_call") {
            push(first(o, &["call_id", "id"]), first(o, &["name"]), o.get("arguments"));
        }
    }
    out
}

/// One tool call a model asked for: a part of the tool call (asking is not doing) with the
/// model's call id, the tool's name and its arguments' digest, at `at` (the model call's end).
pub(crate) fn requested_call(
    id: Option<String>,
    name: Option<String>,
    args: Option<&Value>,
    at: Option<Time>,
) -> Option<Ev> {
    let (id, name) = (id?, name?);
    let k = memory_tool_kind(&name).unwrap_or(EventKind::ToolCall);
    let mut ev = Ev::new(k, Side::Client);
    ev.sub = true;
    ev.start = at;
    ev.target = Some(bounded(name));
    ev.key(Role::Link(LinkKey::CallId), &id);
    ev.detail("requested", "true");
    if let Some(a) = args {
        ev.detail(ARGS_SHA, call_signature(a));
    }
    Some(ev)
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(w: &str) -> bool {
    let parts: Vec<&str> = w.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory ids of a memory tool's output: mem0's results inside an MCP text content
    /// (JSON in a string in JSON), a LangGraph store item's `key`, a UUID in "created memory …".
    #[test]
    fn memory_ids_are_found_in_tool_outputs_of_every_shape() {
        let mut ids = Vec::new();
        let mcp = serde_json::json!({"type": "text", "text": "{\"results\": [{\"id\": \"e4a9d2c7-6f1b-4c8e-a3d5-9b0f2e7c1a64\", \"memory\": \"x\", \"score\": 0.8}]}"});
        memory_ids_in(&Value::String(mcp.to_string()), 0, &mut ids);
        assert_eq!(ids, ["e4a9d2c7-6f1b-4c8e-a3d5-9b0f2e7c1a64"]);
        let mut ids = Vec::new();
        let store = serde_json::json!({"output": {"kwargs": {"content": "[{\"namespace\": [\"memories\"], \"key\": \"5b0c8e2a-4f17-4d93-9c6e-1a7d3b2f8e40\", \"value\": {}}]"}}});
        memory_ids_in(&store, 0, &mut ids);
        assert_eq!(ids, ["5b0c8e2a-4f17-4d93-9c6e-1a7d3b2f8e40"]);
        let mut ids = Vec::new();
        memory_ids_in(
            &serde_json::json!({"content": "created memory a8d3f0b4-2c6e-4917-b5d8-3e1f7a0c9d52"}),
            0,
            &mut ids,
        );
        assert_eq!(ids, ["a8d3f0b4-2c6e-4917-b5d8-3e1f7a0c9d52"]);
        // An id beside no memory content is not a memory record's.
        let mut ids = Vec::new();
        memory_ids_in(&serde_json::json!({"pods": [{"id": "ledger-db-0", "phase": "Running"}]}), 0, &mut ids);
        assert!(ids.is_empty(), "{ids:?}");
    }

    #[test]
    fn call_signatures_ignore_key_order_and_spacing() {
        let a = call_signature(&Value::String("{\"b\": 1, \"a\": [1, 2]}".into()));
        let b = call_signature(&serde_json::json!({"a": [1, 2], "b": 1}));
        assert_eq!(a, b);
        assert_ne!(a, call_signature(&serde_json::json!({"a": [2, 1], "b": 1})));
    }
}
