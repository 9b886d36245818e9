//! Google Cloud Logging exports: `gcloud logging read --format=json` (a JSON array of
//! `LogEntry`, keys sorted, pretty-printed) and Log Router sinks to Cloud Storage (JSON Lines,
//! one `LogEntry` per line). Two formats read the same entries: `gcp_logging` (application
//! and platform logs, evidence kind `logs`) and `gcp_audit` (Cloud Audit Logs, kind `cloud`);
//! each reads an entry of the other kind as the other would, since one export often mixes
//! them.
//!
//! The entry is a wrapper around what the application or the service logged: its metadata
//! (`logName`, `insertId`, `resource.labels` such as `project_id`, `cluster_name`,
//! `pod_name`) says where the line was logged and is kept as id-like values only, never
//! classified as the application's fields (a `pod_name` there is the logging pod, not a
//! workload the record is about). `trace` (`projects/P/traces/<32 hex>`) is the trace id,
//! `spanId` the span. `jsonPayload` is read with the semantics table like any structured log,
//! `textPayload` like a text line (logfmt or `key=value`). `labels` are read with the
//! semantics table, except the pod labels Cloud Deploy sets
//! (`k8s-pod/deploy_cloud_google_com/release-id`, `…/target-id`): together they name the
//! release and target the pod was launched by (a [`LinkKey::ReleaseTarget`]), which the
//! `cloud_deploy` rollout of that release to that target also names. `severity` is the log
//! level, never an outcome. `httpRequest` is an egress request only when a load balancer or a
//! proxy logged it (its `resource.type` says so): an application's own request log is its
//! server view, and a severity of `ERROR` beside a 200 is not a failure.
//!
//! An audit entry (`protoPayload."@type"` = `type.googleapis.com/google.cloud.audit.AuditLog`)
//! is one `cloud_api_call`, like a CloudTrail record: the principal is
//! `authenticationInfo.principalEmail` (a service account is a tool principal), the first
//! hop of `serviceAccountDelegationInfo` is who impersonated it (the actor); the operation is
//! `methodName`, the target `resourceName` (a Cloud Storage object
//! `projects/_/buckets/B/objects/O` in its `gs://B/O` form, the form applications log);
//! the outcome is `status.code` (a `google.rpc.Code`: absent or 0 succeeded; 1 CANCELLED,
//! 4 DEADLINE_EXCEEDED and 14 UNAVAILABLE unknown — the call may have been applied; any other
//! failed). The first and last entries of one long-running operation (`operation.id`,
//! `first`, `last`) are one event.

use super::super::item::{first, outcome_of, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::{generic_evidence, request_part};
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// The `@type` of a Cloud Audit Logs payload.
const AUDIT_TYPE: &str = "type.googleapis.com/google.cloud.audit.AuditLog";

/// Whether a head's first entry is a `LogEntry` (`logName` `projects/…/logs/…` with its
/// `insertId` and a monitored resource or a receive time).
fn log_entry(h: &Head<'_>) -> bool {
    let entry = |k: &super::Keys| {
        k.str_of("logName").is_some_and(|n| n.contains("/logs/"))
            && k.has("insertId")
            && (k.has("resource") || k.has("receiveTimestamp"))
    };
    h.obj().is_some_and(entry)
        // `gcloud logging read --format=json` pretty-prints: a large first entry is not
        // complete in the head.
        || (!h.line_complete && h.mentions("insertId") && h.mentions("logName") && h.text.contains("/logs/"))
}

fn audit_head(h: &Head<'_>) -> bool {
    h.inner("protoPayload").is_some_and(|p| p.str_of("@type") == Some(AUDIT_TYPE))
        || (h.obj().is_none() && h.text.contains(AUDIT_TYPE))
}

/// Cloud Audit Logs entries.
pub(crate) struct GcpAudit;

impl FormatDef for GcpAudit {
    fn name(&self) -> &'static str {
        "gcp_audit"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["cloud-audit-logs", "gcp-audit-log", "google-cloud-audit"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("cloud")
    }
    fn what(&self) -> &'static str {
        "Google Cloud Audit Logs entries (gcloud logging read JSON, or a sink's JSONL): each a cloud API call"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        log_entry(h) && audit_head(h)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        read_entries(v, m, out);
    }
}

/// Cloud Logging entries (application and platform logs).
pub(crate) struct GcpLogging;

impl FormatDef for GcpLogging {
    fn name(&self) -> &'static str {
        "gcp_logging"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["cloud-logging", "gcloud-logging", "stackdriver", "google-cloud-logging"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("logs")
    }
    fn what(&self) -> &'static str {
        "Google Cloud Logging LogEntry exports (gcloud logging read JSON, or a sink's JSONL): each payload read"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        log_entry(h)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        read_entries(v, m, out);
    }
}

fn read_entries(v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
    match v {
        Value::Array(list) => list.iter().for_each(|e| out.push(entry(e, m))),
        // `gcloud logging read` without `--format=json` is not JSON; `entries:list` answers
        // `{"entries": […], "nextPageToken": …}`.
        Value::Object(o) if o.get("entries").is_some_and(Value::is_array) => {
            for e in o.get("entries").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                out.push(entry(e, m));
            }
        }
        _ => out.push(entry(v, m)),
    }
}

fn entry(e: &Value, m: &FieldMapping) -> Item {
    let audit = e.pointer("/protoPayload/@type").and_then(Value::as_str) == Some(AUDIT_TYPE);
    if audit {
        audit_entry(e, m)
    } else {
        app_entry(e, m)
    }
}

/// The trace id of a `trace` value: `projects/P/traces/<hex>` (or a bare id, as some
/// agents write it).
fn trace_of(t: &str) -> &str {
    t.rsplit_once("/traces/").map_or(t, |(_, id)| id)
}

/// What every entry carries: its time, trace and span, its labels (by the semantics table),
/// and where it was logged (id-like values only).
fn envelope(b: &mut ItemBuilder<'_>, e: &Value) -> Option<Time> {
    let start = b.time_from(e, &["timestamp", "receiveTimestamp"]);
    if let Some(t) = e.get("trace").and_then(Value::as_str) {
        if b.field(Role::Ident(IdentName::TraceId), trace_of(t), "trace").is_none() {
            b.token(t);
        }
    }
    if let Some(s) = e.get("spanId").and_then(Value::as_str) {
        b.field(Role::Link(LinkKey::SpanId), s, "spanId");
    }
    if let Some(labels) = e.get("labels").and_then(Value::as_object) {
        let mut release = None;
        let mut target = None;
        for (k, x) in labels {
            let p = format!("labels.{k}");
            match cloud_deploy_label(k) {
                Some("release-id") => release = x.as_str().map(|s| (s, p.clone())),
                Some("target-id") => target = x.as_str(),
                _ => {}
            }
            b.walk_field(&p, k, x);
        }
        if let (Some((r, p)), Some(t)) = (release, target) {
            b.field(Role::Link(LinkKey::ReleaseTarget), &format!("{r}/{t}"), &p);
        }
    }
    // Where it was logged: the project, cluster, namespace, pod, container. Descriptive (a
    // pod name here is the logging pod, not a workload the record is about), but searchable.
    if let Some(rl) = e.pointer("/resource/labels").and_then(Value::as_object) {
        for x in rl.values() {
            if let Some(s) = x.as_str() {
                b.token(s);
            }
        }
    }
    if let Some(id) = e.get("insertId").and_then(Value::as_str) {
        b.token(id);
    }
    start
}

/// The name of a pod label Cloud Deploy sets (`deploy.cloud.google.com/release-id`, which
/// Cloud Logging writes `k8s-pod/deploy_cloud_google_com/release-id`): `release-id`,
/// `target-id`, `delivery-pipeline-id`, `location`, `project-id`.
fn cloud_deploy_label(k: &str) -> Option<&str> {
    let k = k.strip_prefix("k8s-pod/").unwrap_or(k);
    k.strip_prefix("deploy_cloud_google_com/").or_else(|| k.strip_prefix("deploy.cloud.google.com/"))
}

/// Monitored resource types whose `httpRequest` is a load balancer's or a proxy's view of a
/// request (not an application's log of the request it served).
const PROXY_RESOURCES: [&str; 5] = [
    "http_load_balancer",
    "internal_http_lb_rule",
    "l7_lb_rule",
    "networkservices.googleapis.com/Gateway",
    "tcp_ssl_proxy_rule",
];

fn app_entry(e: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    let start = envelope(&mut b, e);
    if let Some(p) = e.get("jsonPayload") {
        b.walk("jsonPayload", p);
        if let Some(ev) = generic_evidence(p, &b, start.clone()) {
            b.evidence(ev);
        } else if let Some(ev) = request_part(Some(p), &b, start.clone()) {
            b.evidence(ev);
        }
    } else if let Some(t) = e.get("textPayload").and_then(Value::as_str) {
        match super::logs::logfmt(t.trim()) {
            Some(obj) => {
                b.walk("textPayload", &obj);
                b.text("textPayload", t);
                if let Some(ev) = generic_evidence(&obj, &b, start.clone()) {
                    b.evidence(ev);
                }
            }
            None => super::logs::message(&mut b, "textPayload", t),
        }
    } else if let Some(p) = e.get("protoPayload") {
        b.walk("protoPayload", p);
    }
    if let Some(h) = e.get("httpRequest") {
        b.walk("httpRequest", h);
        let rtype = first(e, &["resource.type"]).unwrap_or_default();
        if PROXY_RESOURCES.contains(&rtype.as_str()) {
            let ev = http_request(&mut b, h, start);
            b.evidence(ev);
        }
    }
    b.finish()
}

/// A load balancer's or proxy's `httpRequest` as an egress request.
fn http_request(b: &mut ItemBuilder<'_>, h: &Value, start: Option<Time>) -> Ev {
    let mut ev = Ev::new(EventKind::EgressRequest, Side::Proxy);
    ev.end = latency_nanos(h.get("latency").and_then(Value::as_str).unwrap_or(""))
        .and_then(|d| start.as_ref()?.nanos?.checked_add(d))
        .and_then(Time::from_nanos);
    ev.start = start;
    ev.operation = first(h, &["requestMethod"]);
    if let Some(u) = first(h, &["requestUrl"]) {
        let host = super::proxy::url_host(&u).to_string();
        ev.detail("host", host.clone());
        ev.target = Some(host);
        ev.detail("url", u);
    }
    if let Some(ip) = first(h, &["remoteIp"]) {
        b.field(Role::Link(LinkKey::SourceAddress), &ip, "httpRequest.remoteIp");
        ev.detail("source_address", ip);
    }
    if let Some(ip) = first(h, &["serverIp"]) {
        ev.detail("upstream", ip);
    }
    if let Some(n) = first(h, &["requestSize"]) {
        ev.detail("bytes_out", n);
    }
    if let Some(n) = first(h, &["responseSize"]) {
        ev.detail("bytes_in", n);
    }
    if let Some(ua) = first(h, &["userAgent"]) {
        ev.detail("user_agent", ua);
    }
    // `status` is the HTTP status; `severity` is the log level and says nothing of it.
    if let Some(s) = first(h, &["status"]) {
        ev.outcome = outcome_of(&s);
    }
    if let Some(p) = b.value_of(Role::Link(LinkKey::ParentSpanId)) {
        ev.key(Role::Link(LinkKey::ParentSpanId), p);
    }
    ev
}

/// A protobuf `Duration` as JSON (`"0.5s"`, `"12s"`, `"0.000123456s"`) in nanoseconds.
fn latency_nanos(s: &str) -> Option<i128> {
    let n = s.trim().strip_suffix('s')?;
    let (secs, frac) = n.split_once('.').unwrap_or((n, ""));
    if secs.is_empty() && frac.is_empty() || frac.len() > 9 || secs.len() > 12 {
        return None;
    }
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    if !digits(secs) || !digits(frac) {
        return None;
    }
    let whole: i128 = if secs.is_empty() { 0 } else { secs.parse().ok()? };
    let mut f: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    for _ in frac.len()..9 {
        f = f.checked_mul(10)?;
    }
    whole.checked_mul(1_000_000_000)?.checked_add(f)
}

/// A resource name in the form applications log it: a Cloud Storage object
/// (`projects/_/buckets/B/objects/O`) or bucket is `gs://B/O` / `gs://B`.
pub(crate) fn canonical_resource(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("projects/_/buckets/") {
        return match rest.split_once("/objects/") {
            Some((bucket, object)) => format!("gs://{bucket}/{object}"),
            None => format!("gs://{rest}"),
        };
    }
    name.to_string()
}

/// Which audit log an entry is in (`activity`, `data_access`, `system_event`, `policy`).
fn audit_log(log_name: &str) -> Option<&str> {
    log_name
        .rsplit_once("cloudaudit.googleapis.com%2F")
        .or_else(|| log_name.rsplit_once("cloudaudit.googleapis.com/"))
        .map(|(_, l)| l)
}

fn audit_entry(e: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    let start = envelope(&mut b, e);
    let empty = Value::Null;
    let pp = e.get("protoPayload").unwrap_or(&empty);
    // What was asked for (`request`, `metadata`) is read by the semantics table (a label
    // naming a change, a `requestId` an API takes for idempotency); `response` repeats the
    // resource.
    for k in ["request", "metadata", "serviceData"] {
        if let Some(x) = pp.get(k) {
            b.walk(&format!("protoPayload.{k}"), x);
        }
    }
    let mut ev = Ev::new(EventKind::CloudApiCall, Side::Server);
    ev.start = start;
    let email = first(pp, &["authenticationInfo.principalEmail"]);
    if let Some(p) = &email {
        // A service account (`…@….iam.gserviceaccount.com`, `…@developer.gserviceaccount.com`)
        // is a workload's identity: a tool principal. A person is the event's principal only.
        if p.ends_with(".gserviceaccount.com") {
            b.field(Role::Ident(IdentName::ToolPrincipal), p, "protoPayload.authenticationInfo.principalEmail");
        } else {
            b.token(p);
        }
        ev.principal = Some(p.clone());
    }
    // The delegation chain, original authority first: who impersonated the service account.
    if let Some(d) = pp.pointer("/authenticationInfo/serviceAccountDelegationInfo/0") {
        if let Some(who) = first(d, &["firstPartyPrincipal.principalEmail", "principalSubject"]) {
            ev.detail("delegated_by", who.clone());
            ev.actor = Some(who);
        }
    }
    if let Some(s) = first(pp, &["authenticationInfo.principalSubject"]) {
        b.token(&s);
    }
    let service = first(pp, &["serviceName"]);
    ev.operation = first(pp, &["methodName"]);
    let resource = first(pp, &["resourceName"]).map(|r| canonical_resource(&r));
    if let Some(r) = &resource {
        b.token(r);
    }
    ev.target = resource.or_else(|| service.clone());
    if let Some(s) = service {
        ev.detail("service", s);
    }
    if let Some(l) = first(e, &["logName"]).as_deref().and_then(audit_log) {
        ev.detail("audit_log", l.to_string());
    }
    // Descriptive, not a source address to join proxy lines by: for calls Google services
    // make on a caller's behalf it is `private` or a Google-internal address, and a pod's
    // address seen by an API is not the address a proxy sees.
    if let Some(ip) = first(pp, &["requestMetadata.callerIp"]) {
        ev.detail("caller_ip", ip);
    }
    if let Some(ua) = first(pp, &["requestMetadata.callerSuppliedUserAgent"]) {
        ev.detail("user_agent", ua);
    }
    if let Some(id) = first(e, &["insertId"]) {
        ev.key(Role::Link(LinkKey::EventId), &id);
    }
    // One long-running operation is logged when it starts (`first`) and when it ends
    // (`last`): one event, and the start says nothing of the outcome yet.
    let op_first = e.pointer("/operation/first").and_then(Value::as_bool).unwrap_or(false);
    let op_last = e.pointer("/operation/last").and_then(Value::as_bool).unwrap_or(false);
    if let Some(id) = first(e, &["operation.id"]) {
        b.field(Role::Link(LinkKey::EventId), &id, "operation.id");
        ev.key(Role::Link(LinkKey::EventId), &id);
        ev.detail("operation", id);
    }
    // An int32 in proto3 JSON, which some exporters write as a string.
    let code = pp.pointer("/status/code").and_then(|c| c.as_i64().or_else(|| c.as_str()?.trim().parse().ok()));
    ev.outcome = match code {
        _ if op_first && !op_last && code.is_none() => OutcomeEv::default(),
        None | Some(0) => OutcomeEv {
            status: Some(OutcomeStatus::Succeeded),
            code: Some(if code.is_some() { "0 OK".into() } else { "no status".into() }),
            reason: None,
            replayed: false,
        },
        Some(c) => {
            let msg = first(pp, &["status.message"]).unwrap_or_default();
            let mut o = outcome_of(&msg);
            // The status code decides; the message's words only explain (a "duplicate
            // request" message on an error is no replay).
            o.replayed = false;
            o.code = Some(format!("{c} {}", rpc_code_name(c)));
            // CANCELLED, DEADLINE_EXCEEDED and UNAVAILABLE: the server may have applied the
            // call before the caller stopped waiting or the answer was lost.
            if matches!(c, 1 | 4 | 14) {
                o.status = Some(OutcomeStatus::Unknown);
                o.reason = Some(format!("{}: it may or may not have been applied", rpc_code_name(c)));
            } else {
                o.status = Some(OutcomeStatus::Failed);
                o.reason = Some(format!("{}: rejected", rpc_code_name(c)));
            }
            o
        }
    };
    b.evidence(ev);
    b.finish()
}

/// The name of a `google.rpc.Code`.
fn rpc_code_name(c: i64) -> &'static str {
    match c {
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_and_resource_forms() {
        assert_eq!(latency_nanos("0.5s"), Some(500_000_000));
        assert_eq!(latency_nanos("12s"), Some(12_000_000_000));
        assert_eq!(latency_nanos("0.000123456s"), Some(123_456));
        assert_eq!(latency_nanos("s"), None);
        assert_eq!(latency_nanos("-1s"), None);
        assert_eq!(latency_nanos("99999999999999999999s"), None);
        assert_eq!(canonical_resource("projects/_/buckets/b1/objects/a/b.json"), "gs://b1/a/b.json");
        assert_eq!(canonical_resource("projects/_/buckets/b1"), "gs://b1");
        assert_eq!(canonical_resource("projects/p/secrets/s"), "projects/p/secrets/s");
        assert_eq!(trace_of("projects/p/traces/7d3f1c9a2b4e48f0a1c6e5d20b9f8a31"), "7d3f1c9a2b4e48f0a1c6e5d20b9f8a31");
    }

    /// Status codes by `google.rpc.Code`, written as a number or a string; an operation's
    /// first entry without a status has no outcome yet.
    #[test]
    fn audit_status_codes() {
        let m = FieldMapping::default();
        let status = |st: Value, op: Value| {
            let e = serde_json::json!({
                "insertId": "x1", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
                "operation": op,
                "protoPayload": {"@type": AUDIT_TYPE, "methodName": "m", "serviceName": "s", "status": st},
            });
            let it = entry(&e, &m);
            let ev = it.evidence.first().cloned().expect("an event");
            (ev.outcome.status, ev.outcome.code)
        };
        let none = Value::Null;
        assert_eq!(status(serde_json::json!({"code": "4"}), none.clone()).0, Some(OutcomeStatus::Unknown));
        assert_eq!(status(serde_json::json!({"code": 14}), none.clone()).0, Some(OutcomeStatus::Unknown));
        assert_eq!(
            status(serde_json::json!({"code": 7, "message": "denied"}), none.clone()),
            (Some(OutcomeStatus::Failed), Some("7 PERMISSION_DENIED".into()))
        );
        assert_eq!(status(serde_json::json!({}), none.clone()).0, Some(OutcomeStatus::Succeeded));
        assert_eq!(status(Value::Null, serde_json::json!({"id": "op-1", "first": true})).0, None);
        assert_eq!(
            status(Value::Null, serde_json::json!({"id": "op-1", "first": true, "last": true})).0,
            Some(OutcomeStatus::Succeeded)
        );
    }
}
