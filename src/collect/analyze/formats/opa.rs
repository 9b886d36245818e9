//! OPA decision logs: the upload body (a JSON array of decision events, usually gzipped) and
//! one event per line (the console form with `"msg":"Decision Log"`, or plain). Each event is
//! one `policy_decision`; the bundle revision in force (`bundles.<name>.revision`, or the
//! older top-level `revision`) is the `bundle_id`. Cerbos PDP audit logs: each decision
//! entry is one `policy_decision` ([`Cerbos`]).

use super::super::item::{bounded, first, Ev, ItemBuilder, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::TIME_FIELDS;
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::EventKind;
use serde_json::Value;

/// OPA decision logs.
pub(crate) struct Opa;

impl FormatDef for Opa {
    fn name(&self) -> &'static str {
        "opa"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["opa-upload", "opa-jsonl", "opa-console", "opa-decisions", "decision-log"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("policy")
    }
    fn what(&self) -> &'static str {
        "OPA decision logs: the upload body (JSON array, often gzip) or one decision per line"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let decision = h.has("decision_id")
            && (h.has("bundles") || h.has("path") || h.has("result") || h.has("input") || h.has("revision"));
        decision
            || h.str_of("msg") == Some("Decision Log")
            || (!h.line_complete && h.mentions("decision_id") && (h.mentions("bundles") || h.mentions("path")))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        // An upload body is an array; an API page wraps its decisions in an envelope
        // (`{"data": [...], "total_count": …}`, Permit.io's audit logs): one record each,
        // never the page as one decision.
        match super::generic::collection(v) {
            Some(list) => list.into_iter().for_each(|e| out.push(decision(e, m))),
            None => out.push(decision(v, m)),
        }
    }
}

/// A decision's result: `allow`/`deny` for a boolean (or an object's `allow`), its `reason`,
/// and the result itself (compact JSON, bounded).
pub(crate) fn decision_result(r: &Value, ev: &mut Ev) {
    let allow = match r {
        Value::Bool(b) => Some(*b),
        Value::Object(o) => o.get("allow").or_else(|| o.get("allowed")).and_then(Value::as_bool),
        _ => None,
    };
    match allow {
        Some(true) => ev.detail("decision", "allow"),
        Some(false) => ev.detail("decision", "deny"),
        None => {
            if let Some(d) = first(r, &["decision", "effect", "outcome"]) {
                ev.detail("decision", d);
            }
        }
    }
    if let Some(reason) = first(r, &["reason", "message", "msg"]) {
        ev.detail("reason", reason);
    }
    if r.get("require_approval").and_then(Value::as_bool) == Some(true)
        || r.get("requires_approval").and_then(Value::as_bool) == Some(true)
    {
        ev.detail("requires_approval", "true");
    }
    let compact = match r {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    ev.detail("result", bounded(compact));
}

fn decision(outer: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !outer.is_object() {
        return b.finish();
    }
    // A PDP service's audit record keeps OPA's decision log under `raw_data` (Permit.io) with
    // its own summary beside it (`decision: true`, `action`, `user_key`): the decision is read
    // from the OPA record, every field of both is walked.
    let v = outer.get("raw_data").filter(|r| r.get("decision_id").is_some()).unwrap_or(outer);
    if !std::ptr::eq(v, outer) {
        for (k, x) in outer.as_object().into_iter().flatten().filter(|(k, _)| k.as_str() != "raw_data") {
            b.walk_field(k, k, x);
        }
    }
    let prefix = if std::ptr::eq(v, outer) { "" } else { "raw_data." };
    // Whom the check was for (Permit's `user_key`: the customer the agent acts for).
    if let Some(u) = first(outer, &["user_key"]).filter(|_| !prefix.is_empty()) {
        b.field(Role::Subject, &u, "user_key");
    }
    if let Some(Value::Object(bundles)) = v.get("bundles") {
        for (name, bundle) in bundles {
            if let Some(rev) = bundle.get("revision").and_then(Value::as_str) {
                b.field(Role::Ident(IdentName::BundleId), rev, &format!("{prefix}bundles.{name}.revision"));
            }
        }
    }
    if let Some(rev) = v.get("revision").and_then(Value::as_str) {
        b.field(Role::Ident(IdentName::BundleId), rev, &format!("{prefix}revision"));
    }
    for (k, x) in v.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "bundles" | "metrics" | "nd_builtin_cache" | "revision") {
            let p = format!("{prefix}{k}");
            b.walk_field(&p, k, x);
        }
    }
    let start = b.time_from(v, &TIME_FIELDS);
    let mut ev = Ev::new(EventKind::PolicyDecision, Side::Server);
    ev.start = start.or_else(|| v.get("timestamp").and_then(Value::as_str).map(Time::unparsed));
    if let Some(d) = first(v, &["decision_id"]) {
        ev.key(Role::Link(LinkKey::DecisionId), &d);
    }
    ev.target = first(v, &["path", "query"]);
    if let Some(r) = v.get("result") {
        decision_result(r, &mut ev);
    } else if let Some(d) = outer.get("decision").and_then(Value::as_bool) {
        ev.detail("decision", if d { "allow" } else { "deny" });
    } else {
        ev.detail("decision", "no result (undefined)");
    }
    if let Some(r) = first(outer, &["reason"]).filter(|_| !std::ptr::eq(v, outer)) {
        ev.detail("reason", r);
    }
    if let Some(input) = v.get("input") {
        if let Some(t) = super::generic::tool_name(input).or_else(|| first(input, &["action", "operation"])) {
            ev.detail("tool", t);
        }
        if let Some(c) = first(input, &["tool_call_id", "call_id", "toolCallId"]) {
            ev.key(Role::Link(LinkKey::CallId), &c);
        }
        // OPA-Envoy (ext_authz): the request's id, as the proxy logs it.
        if let Some(r) =
            first(input, &["attributes.request.http.headers.x-request-id", "attributes.request.http.id", "request_id"])
        {
            ev.key(Role::Link(LinkKey::RequestId), &r);
        }
        if let Some(h) = first(
            input,
            &[
                "attributes.request.http.host",
                "attributes.request.http.headers.:authority",
                "attributes.destination.address.socketAddress.address",
                "host",
                "destination",
                "destination_host",
                "request.host",
                "url",
                "request.url",
                "egress.host",
                "target_host",
            ],
        ) {
            ev.detail("host", super::proxy::url_host(&h).to_string());
        }
    }
    b.evidence(ev);
    b.finish()
}

/// Cerbos PDP audit logs (`DecisionLogEntry`, one JSON per line, as the `file` and `local`
/// backends write them, with `log.logger`/`log.kind`).
pub(crate) struct Cerbos;

impl FormatDef for Cerbos {
    fn name(&self) -> &'static str {
        "cerbos"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["cerbos-audit", "cerbos-decisions"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("policy")
    }
    fn what(&self) -> &'static str {
        "Cerbos PDP audit log: decision entries (callId with checkResources or planResources), access entries"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.str_of("log.logger") == Some("cerbos.audit")
            || (h.has("callId") && (h.has("checkResources") || h.has("planResources") || h.has("policySource")))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(cerbos(e, m))),
            _ => out.push(cerbos(v, m)),
        }
    }
}

/// One Cerbos audit entry. A decision entry is one `policy_decision` (whatever number of
/// resources it checked): its `callId` is Cerbos' id of that authorisation call (a decision
/// id, never a tool call id), the `requestId`s of its inputs are Cerbos' per-resource ids
/// (not HTTP request ids), `principal.id` is who the checked action would run as, and
/// `policySource` (disk, git, a Cerbos Hub remote bundle) is where the PDP loaded its
/// policies from: descriptive (the item walk drops its bundle and deployment ids). What the
/// caller put in `requestContext.annotations` (a session, a `traceparent`, a tool name) is
/// read by the semantics table.
fn cerbos(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !v.is_object() {
        return b.finish();
    }
    b.walk("", v);
    b.item.fields.retain(|f| {
        let cerbos_id = f.path == "callId"
            || (f.role == Role::Link(LinkKey::RequestId) && f.path.starts_with("checkResources."))
            || (f.role == Role::Link(LinkKey::RequestId) && f.path.starts_with("planResources."));
        !cerbos_id
    });
    let start = b.time_from(v, &["timestamp"]);
    let kind = first(v, &["log.kind"]);
    let check = v.get("checkResources").or_else(|| v.get("planResources"));
    if kind.as_deref().is_some_and(|k| k != "decision") || check.is_none() {
        return b.finish();
    }
    let mut ev = Ev::new(EventKind::PolicyDecision, Side::Server);
    ev.start = start;
    if let Some(id) = first(v, &["callId"]) {
        b.field(Role::Link(LinkKey::DecisionId), &id, "callId");
        ev.key(Role::Link(LinkKey::DecisionId), &id);
    }
    let inputs = check.and_then(|c| c.get("inputs")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut targets = Vec::new();
    for i in inputs.iter().take(16) {
        let kind = first(i, &["resource.kind"]).unwrap_or_default();
        let id = first(i, &["resource.id"]).unwrap_or_default();
        targets.push(format!("{kind}:{id}").trim_matches(':').to_string());
        if ev.principal.is_none() {
            ev.principal = first(i, &["principal.id"]);
        }
        if let Some(actions) = i.get("actions").and_then(Value::as_array) {
            let a: Vec<String> = actions.iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
            if ev.operation.is_none() && !a.is_empty() {
                ev.operation = Some(bounded(a.join(",")));
            }
        }
    }
    if !targets.is_empty() {
        ev.target = Some(bounded(targets.join(", ")));
    }
    // The effects of every action of every output: allow only when all allowed.
    let mut effects = Vec::new();
    let outputs = check.and_then(|c| c.get("outputs")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for o in outputs.iter().take(16) {
        for (_, a) in o.get("actions").and_then(Value::as_object).into_iter().flatten() {
            if let Some(e) = first(a, &["effect"]) {
                effects.push(e);
            }
        }
        if o.to_string().contains("\"requires_approval\":true") {
            ev.detail("requires_approval", "true");
        }
    }
    let word = |e: &str| {
        if e.ends_with("ALLOW") {
            "allow"
        } else if e.ends_with("DENY") {
            "deny"
        } else {
            "no match"
        }
    };
    if effects.is_empty() {
        ev.detail("decision", "no result (undefined)");
    } else if effects.iter().all(|e| word(e) == "allow") {
        ev.detail("decision", "allow");
    } else {
        ev.detail("decision", effects.iter().map(|e| word(e)).find(|w| *w != "allow").unwrap_or("deny"));
    }
    ev.detail("result", bounded(effects.join(",")));
    let annotations = v.pointer("/requestContext/annotations");
    if let Some(t) = annotations.and_then(super::generic::tool_name) {
        ev.detail("tool", t);
    }
    if let Some(c) = annotations.and_then(|a| first(a, &["tool_call_id", "call_id", "toolCallId"])) {
        ev.key(Role::Link(LinkKey::CallId), &c);
    }
    b.evidence(ev);
    b.finish()
}
