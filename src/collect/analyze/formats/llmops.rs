//! LLM observability exports: LangSmith run trees and Langfuse traces with their
//! observations.
//!
//! LangSmith: a run's `session_id` is its tracing **project**, not the conversation (that is
//! `extra.metadata.thread_id` / `session_id` / `conversation_id`); `trace_id` is the root
//! run's UUID; times are often written without a zone (marked). `run_type` `tool` is a tool
//! call, `llm` a model call, `retriever` a memory read. Langfuse: the trace's id is its `id`;
//! `sessionId` is the session, `userId` the subject; observations of type `TOOL`,
//! `GENERATION` and `RETRIEVER` are tool calls, model calls and memory reads.

use super::super::item::{bounded, first, outcome_of, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::{activity_span, memory_tool_kind, tool_kind};
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// LangSmith runs.
pub(crate) struct LangSmith;

impl FormatDef for LangSmith {
    fn name(&self) -> &'static str {
        "langsmith"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["langsmith-runs", "langchain"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("traces")
    }
    fn what(&self) -> &'static str {
        "LangSmith run trees (runs with run_type, trace_id, dotted_order; session_id is the project)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let run = |k: &super::Keys| {
            k.has("run_type")
                && (k.has("dotted_order") || k.has("trace_id") || k.has("parent_run_id") || k.has("inputs"))
        };
        h.obj().is_some_and(run)
            || ["runs", "data", "child_runs"].iter().any(|k| h.inner(k).is_some_and(run))
            || (!h.line_complete && h.mentions("run_type") && h.mentions("dotted_order"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| self.read_json(e, m, out)),
            Value::Object(o) if o.get("run_type").is_none() => {
                for k in ["runs", "data"] {
                    if let Some(l) = o.get(k) {
                        self.read_json(l, m, out);
                    }
                }
            }
            _ => {
                out.push(run(v, m));
                if let Some(children) = v.get("child_runs") {
                    self.read_json(children, m, out);
                }
            }
        }
    }
}

fn run(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    for (k, x) in v.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "session_id" | "id" | "trace_id" | "parent_run_id" | "child_runs" | "child_run_ids") {
            b.walk_field(k, k, x);
        }
    }
    if let Some(t) = v.get("trace_id").and_then(Value::as_str) {
        b.field(Role::Ident(IdentName::TraceId), t, "trace_id");
    }
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        if let Some(s) = b.field(Role::Link(LinkKey::SpanId), id, "id") {
            b.item.span_id = Some(s);
        }
    }
    if let Some(p) = v.get("parent_run_id").and_then(Value::as_str) {
        b.field(Role::Link(LinkKey::ParentSpanId), p, "parent_run_id");
    }
    let start = b.time_from(v, &["start_time"]);
    let end = v.get("end_time").and_then(Time::of_json);
    let name = first(v, &["name"]);
    let ty = v.get("run_type").and_then(Value::as_str);
    let mut ev = match ty {
        Some("tool") => {
            let k = name.as_deref().and_then(memory_tool_kind).unwrap_or(EventKind::ToolCall);
            let mut ev = Ev::new(k, Side::Client);
            ev.target = name;
            // LangChain puts the call id in the ToolMessage it returns (`outputs.output`,
            // serialised with `kwargs`) when the inputs do not carry it.
            if let Some(c) = first(
                v,
                &[
                    "inputs.tool_call_id",
                    "extra.metadata.tool_call_id",
                    "inputs.tool_call.id",
                    "outputs.output.kwargs.tool_call_id",
                    "outputs.output.tool_call_id",
                ],
            ) {
                ev.key(Role::Link(LinkKey::CallId), &c);
            } else if let Some(input) = v.get("inputs").filter(|i| i.as_object().is_some_and(|o| !o.is_empty())) {
                // A run that failed returned no ToolMessage, so no call id: the model run that
                // asked for the call has it, with the same tool and arguments (paired by the
                // event builder, like an Agents SDK function span).
                ev.detail(super::agents::ARGS_SHA, super::agents::call_signature(input));
            }
            if k != EventKind::ToolCall {
                let mut ids = Vec::new();
                if let Some(out) = v.get("outputs") {
                    super::agents::memory_ids_in(out, 0, &mut ids);
                }
                for id in &ids {
                    b.field(Role::Link(LinkKey::MemoryId), id, "outputs.output");
                }
                if !ids.is_empty() {
                    ev.detail("memory_ids", ids.join(","));
                }
            }
            ev
        }
        Some("llm" | "embedding") => {
            for call in asked_for(v, end.clone().or_else(|| start.clone())) {
                b.field(
                    Role::Link(LinkKey::CallId),
                    call.key_of(Role::Link(LinkKey::CallId)).unwrap_or(""),
                    ASKED_PATH,
                );
                b.evidence(call);
            }
            let mut ev = Ev::new(EventKind::ModelCall, Side::Client);
            ev.target = first(
                v,
                &[
                    "extra.invocation_params.model",
                    "extra.metadata.ls_model_name",
                    "extra.invocation_params.model_name",
                ],
            )
            .or(name);
            ev
        }
        Some("retriever") => {
            let mut ev = Ev::new(EventKind::MemoryRead, Side::Client);
            ev.target = name;
            ev.operation = Some("retrieval".into());
            ev
        }
        _ => {
            if let Some(p) = v.get("session_id").and_then(Value::as_str) {
                b.token(p);
            }
            return b.finish();
        }
    };
    if let Some(p) = v.get("session_id").and_then(Value::as_str) {
        ev.detail("project", p);
    }
    ev.outcome = status_outcome(first(v, &["status"]).as_deref(), first(v, &["error"]).as_deref(), end.is_some());
    ev.start = start;
    ev.end = end;
    if let Some(s) = b.value_of(Role::Link(LinkKey::SpanId)) {
        ev.key(Role::Link(LinkKey::SpanId), s);
    }
    b.evidence(ev);
    b.finish()
}

/// Where an LLM run's requested call ids are (LangChain's serialised `AIMessage`).
const ASKED_PATH: &str = "outputs.generations.message.kwargs.tool_calls.id";

/// The tool calls an LLM run asked for: `outputs.generations[][].message` (serialised with
/// `kwargs`, or plain), its `tool_calls[]` (`{name, args, id}`) or, from OpenAI models,
/// `additional_kwargs.tool_calls[]` (`{id, function: {name, arguments}}`). Each is a part of
/// its tool call, like a generation's in the Agents SDK (`agents::requested_call`).
fn asked_for(v: &Value, at: Option<Time>) -> Vec<Ev> {
    let mut out = Vec::new();
    let gens = v.pointer("/outputs/generations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for g in gens.iter().flat_map(|g| g.as_array().map(Vec::as_slice).unwrap_or_default()).take(16) {
        let Some(msg) = g.get("message") else { continue };
        let body = msg.get("kwargs").unwrap_or(msg);
        let mut calls: Vec<(Option<String>, Option<String>, Option<&Value>)> = Vec::new();
        for tc in
            body.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().take(64)
        {
            calls.push((first(tc, &["id"]), first(tc, &["name"]), tc.get("args")));
        }
        if calls.is_empty() {
            for tc in body
                .pointer("/additional_kwargs/tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .take(64)
            {
                calls.push((first(tc, &["id"]), first(tc, &["function.name"]), tc.pointer("/function/arguments")));
            }
        }
        for (id, name, args) in calls {
            if out.len() < 64 {
                out.extend(super::agents::requested_call(id, name, args, at.clone()));
            }
        }
    }
    out
}

/// `error` (or an error status) reads as its message; `success`, or an end without an
/// error, as returned.
fn status_outcome(status: Option<&str>, error: Option<&str>, ended: bool) -> OutcomeEv {
    if let Some(e) = error.filter(|e| !e.trim().is_empty()) {
        let mut o = outcome_of(e);
        if o.status == Some(OutcomeStatus::Succeeded) {
            o.status = Some(OutcomeStatus::Unknown);
        }
        o.code = Some(bounded(e.to_string()));
        return o;
    }
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("error") => OutcomeEv {
            replayed: false,
            status: Some(OutcomeStatus::Unknown),
            code: Some("error".into()),
            reason: Some("error without a message".into()),
        },
        Some("success") => OutcomeEv {
            replayed: false,
            status: Some(OutcomeStatus::Succeeded),
            code: Some("success".into()),
            reason: None,
        },
        Some("pending") => OutcomeEv {
            replayed: false,
            status: Some(OutcomeStatus::Unknown),
            code: Some("pending".into()),
            reason: Some("still running when exported: no response recorded".into()),
        },
        _ if ended => OutcomeEv {
            replayed: false,
            status: Some(OutcomeStatus::Succeeded),
            code: Some("returned".into()),
            reason: None,
        },
        _ => OutcomeEv::default(),
    }
}

/// Langfuse traces and observations.
pub(crate) struct Langfuse;

impl FormatDef for Langfuse {
    fn name(&self) -> &'static str {
        "langfuse"
    }
    fn kind(&self) -> Option<&'static str> {
        Some("traces")
    }
    fn what(&self) -> &'static str {
        "Langfuse trace export (a trace whose id is `id`, with its observations)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let obs =
            |k: &super::Keys| k.has("traceId") && k.has("type") && (k.has("startTime") || k.has("parentObservationId"));
        (h.has("observations") && (h.has("sessionId") || h.has("userId") || h.has("id")))
            || h.obj().is_some_and(obs)
            || h.inner("data").is_some_and(|d| d.has("observations") || obs(d))
            || (!h.line_complete && h.mentions("observations") && h.mentions("traceId"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| self.read_json(e, m, out)),
            Value::Object(o) if o.get("data").is_some_and(Value::is_array) && o.get("id").is_none() => {
                if let Some(d) = o.get("data") {
                    self.read_json(d, m, out);
                }
            }
            Value::Object(o) if o.get("traceId").is_some() && o.get("observations").is_none() => {
                out.push(observation(v, m))
            }
            _ => {
                out.push(trace(v, m));
                for o in v.get("observations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                    if o.is_object() {
                        out.push(observation(o, m));
                    }
                }
            }
        }
    }
}

fn trace(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    for (k, x) in v.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "observations" | "id") {
            b.walk_field(k, k, x);
        }
    }
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        b.field(Role::Ident(IdentName::TraceId), id, "id");
    }
    b.time_from(v, &["timestamp", "createdAt"]);
    b.finish()
}

fn observation(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    for (k, x) in v.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "id" | "parentObservationId") {
            b.walk_field(k, k, x);
        }
    }
    if let Some(id) = v.get("id").and_then(Value::as_str) {
        if let Some(s) = b.field(Role::Link(LinkKey::SpanId), id, "id") {
            b.item.span_id = Some(s);
        }
    }
    if let Some(p) = v.get("parentObservationId").and_then(Value::as_str) {
        b.field(Role::Link(LinkKey::ParentSpanId), p, "parentObservationId");
    }
    let start = b.time_from(v, &["startTime", "timestamp"]);
    let end = v.get("endTime").and_then(Time::of_json);
    let name = first(v, &["name"]);
    if let Some((act, is_attempt)) = name.as_deref().and_then(activity_span) {
        let mut ev = Ev::new(tool_kind(act), Side::Client);
        ev.target = Some(act.to_string());
        if is_attempt {
            ev.attempt = Some(
                first(v, &["metadata.temporal.attempt", "metadata.attempt"]).and_then(|a| a.parse().ok()).unwrap_or(1),
            );
            let error = (first(v, &["level"]).as_deref() == Some("ERROR"))
                .then(|| first(v, &["statusMessage"]).unwrap_or_else(|| "error".into()));
            ev.outcome = status_outcome(None, error.as_deref(), v.get("endTime").and_then(Time::of_json).is_some());
        } else {
            ev.sub = true;
        }
        ev.start = start;
        ev.end = v.get("endTime").and_then(Time::of_json);
        if let Some(s) = b.value_of(Role::Link(LinkKey::SpanId)) {
            ev.key(Role::Link(LinkKey::SpanId), s);
        }
        if let Some(p) = b.value_of(Role::Link(LinkKey::ParentSpanId)) {
            ev.key(Role::Link(LinkKey::ParentSpanId), p);
        }
        b.evidence(ev);
        return b.finish();
    }
    // Observations ingested through OpenTelemetry keep the span's attributes: a tool
    // execution is an `execute_tool` span (Langfuse type `SPAN` or `TOOL`), named
    // `execute_tool <tool>`, whose tool is `gen_ai.tool.name`.
    let otel_tool = first(v, &["metadata.attributes.gen_ai.tool.name"]).or_else(|| {
        (first(v, &["metadata.attributes.gen_ai.operation.name"]).as_deref() == Some("execute_tool"))
            .then(|| name.as_deref().map(|n| n.trim_start_matches("execute_tool").trim().to_string()))
            .flatten()
            .filter(|n| !n.is_empty())
    });
    let ty = v.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase);
    let ty = if otel_tool.is_some() && ty.as_deref() != Some("GENERATION") { Some("TOOL".to_string()) } else { ty };
    let mut ev = match ty.as_deref() {
        Some("TOOL") => {
            let name = otel_tool.or(name);
            let k = name.as_deref().map_or(EventKind::ToolCall, tool_kind);
            let mut ev = Ev::new(k, Side::Client);
            ev.target = name;
            if let Some(c) = first(
                v,
                &[
                    "metadata.tool_call_id",
                    "input.tool_call_id",
                    "metadata.call_id",
                    "metadata.attributes.gen_ai.tool.call.id",
                ],
            ) {
                ev.key(Role::Link(LinkKey::CallId), &c);
            }
            ev
        }
        Some("GENERATION" | "EMBEDDING") => {
            let mut ev = Ev::new(EventKind::ModelCall, Side::Client);
            ev.target = first(v, &["model", "providedModelName"]).or(name);
            ev
        }
        Some("RETRIEVER") => {
            let mut ev = Ev::new(EventKind::MemoryRead, Side::Client);
            ev.target = name;
            ev.operation = Some("retrieval".into());
            ev
        }
        _ => match name.as_deref().and_then(memory_tool_kind) {
            Some(k) => {
                let mut ev = Ev::new(k, Side::Client);
                ev.target = name;
                ev
            }
            None => return b.finish(),
        },
    };
    let level = first(v, &["level"]);
    let error =
        (level.as_deref() == Some("ERROR")).then(|| first(v, &["statusMessage"]).unwrap_or_else(|| "error".into()));
    ev.outcome = status_outcome(None, error.as_deref(), end.is_some());
    ev.start = start;
    ev.end = end;
    if let Some(s) = b.value_of(Role::Link(LinkKey::SpanId)) {
        ev.key(Role::Link(LinkKey::SpanId), s);
    }
    if let Some(p) = b.value_of(Role::Link(LinkKey::ParentSpanId)) {
        ev.key(Role::Link(LinkKey::ParentSpanId), p);
    }
    b.evidence(ev);
    b.finish()
}
