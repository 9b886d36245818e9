//! Cloud and cluster audit logs: AWS CloudTrail (the `{"Records":[…]}` files delivered to S3,
//! usually `.json.gz`, or one event per line) and Kubernetes audit logs (`audit.k8s.io`
//! events, one per line, or an `EventList`).
//!
//! A CloudTrail record is one `cloud_api_call` (merged by `eventID`): its principal is the
//! role session's `sourceIdentity` when set, else the assumed role (the session's issuer),
//! else the caller's ARN; its outcome `errorCode` (failed) or none
//! (succeeded); `requestParameters` are read by the semantics table (a `clientToken` is an
//! idempotency key). A Kubernetes audit event of a mutating verb is one `k8s_change` (its
//! `RequestReceived` and `ResponseComplete` stages merged by `auditID`); reads are linked,
//! not events. Annotations and labels of the request object are read by the semantics table
//! (a change id, a rollout wave, a policy bundle revision in a Deployment's annotations).

use super::super::item::{first, outcome_of, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// AWS CloudTrail.
pub(crate) struct CloudTrail;

impl FormatDef for CloudTrail {
    fn name(&self) -> &'static str {
        "cloudtrail"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["aws-cloudtrail"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("cloud")
    }
    fn what(&self) -> &'static str {
        "AWS CloudTrail log files ({\"Records\":[…]}, often .json.gz) or one event per line"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let rec = |k: &super::Keys| k.has("eventVersion") && (k.has("eventSource") || k.has("eventName"));
        h.inner("Records").is_some_and(rec)
            || h.obj().is_some_and(rec)
            || (h.mentions("Records") && h.mentions("eventSource"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(cloudtrail(e, m))),
            Value::Object(o) if o.get("Records").is_some() => {
                for r in o.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                    out.push(cloudtrail(r, m));
                }
            }
            _ => out.push(cloudtrail(v, m)),
        }
    }
}

fn cloudtrail(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let start = b.time_from(v, &["eventTime"]);
    let mut ev = Ev::new(EventKind::CloudApiCall, Side::Server);
    ev.start = start;
    // Who the call ran as, one value: the role session's source identity when the caller set
    // one (`sts:SourceIdentity`: it names who assumed a role that several callers share, and
    // stays with every call of the session); else the role (the session's issuer: an assumed
    // role's session ARN and `principalId` change with every session); else the caller's ARN.
    // The `principalId`s the walk found (`AROA…:session-name`) are not principals.
    b.item.fields.retain(|f| f.role != Role::Ident(IdentName::ToolPrincipal));
    let chosen = [
        "userIdentity.sessionContext.sourceIdentity",
        "userIdentity.sessionContext.sessionIssuer.arn",
        "userIdentity.arn",
        "userIdentity.principalId",
        "userIdentity.userName",
    ]
    .into_iter()
    .find_map(|p| first(v, &[p]).map(|x| (p, x)));
    if let Some((path, p)) = chosen {
        b.field(Role::Ident(IdentName::ToolPrincipal), &p, path);
        ev.principal = Some(p);
    }
    if let Some(role) = first(v, &["userIdentity.sessionContext.sessionIssuer.arn"]) {
        ev.detail("role", role);
    }
    if let Some(a) = first(v, &["userIdentity.arn"]) {
        ev.detail("session_arn", a);
    }
    let source = first(v, &["eventSource"]);
    ev.operation = first(v, &["eventName"]);
    ev.target = source.clone();
    if let Some(id) = first(v, &["eventID"]) {
        ev.key(Role::Link(LinkKey::EventId), &id);
        ev.detail("event_id", id);
    }
    if let Some(r) = first(v, &["requestID"]) {
        ev.key(Role::Link(LinkKey::RequestId), &r);
    }
    if let Some(ip) = first(v, &["sourceIPAddress"]) {
        ev.detail("source_address", ip);
    }
    if let Some(ro) = v.get("readOnly").and_then(|r| r.as_bool().or_else(|| r.as_str().map(|s| s == "true"))) {
        ev.detail("read_only", ro.to_string());
    }
    if let Some(r) = first(v, &["awsRegion"]) {
        ev.detail("region", r);
    }
    ev.outcome = match first(v, &["errorCode"]) {
        Some(code) => {
            let msg = first(v, &["errorMessage"]).unwrap_or_default();
            let mut o = outcome_of(&format!("{code} {msg}"));
            // An AWS error code means the call was not applied, except for throttling and
            // service errors, where a retry may find it applied.
            let transient = ["Throttl", "RequestLimitExceeded", "ServiceUnavailable", "InternalError", "Timeout"];
            if transient.iter().any(|t| code.contains(t)) {
                o.status = Some(OutcomeStatus::Unknown);
                o.reason = Some("throttled or service error: it may be retried".into());
            } else {
                o.status = Some(OutcomeStatus::Failed);
                o.reason = Some(format!("{code}: rejected"));
            }
            o.code = Some(code);
            o
        }
        None => OutcomeEv {
            status: Some(OutcomeStatus::Succeeded),
            code: Some("no errorCode".into()),
            reason: None,
            replayed: false,
        },
    };
    b.evidence(ev);
    b.finish()
}

/// Kubernetes audit logs.
pub(crate) struct K8sAudit;

impl FormatDef for K8sAudit {
    fn name(&self) -> &'static str {
        "k8s_audit"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["kubernetes-audit", "k8s-audit-log", "audit-k8s"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("cluster")
    }
    fn what(&self) -> &'static str {
        "Kubernetes audit log (audit.k8s.io Events, one per line, or an EventList)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let ev = |k: &super::Keys| {
            (k.str_of("kind") == Some("Event") && k.str_of("apiVersion").is_some_and(|a| a.starts_with("audit.k8s.io")))
                || (k.has("auditID") && k.has("stage"))
        };
        h.obj().is_some_and(ev) || h.inner("items").is_some_and(ev)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(audit(e, m))),
            Value::Object(o) if o.get("kind").and_then(Value::as_str) == Some("EventList") => {
                for r in o.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                    out.push(audit(r, m));
                }
            }
            _ => out.push(audit(v, m)),
        }
    }
}

const MUTATING: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

fn audit(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    for (k, x) in v.as_object().into_iter().flatten() {
        // `responseObject` repeats the request; `managedFields` are bookkeeping.
        if !matches!(k.as_str(), "responseObject") {
            b.walk_field(k, k, x);
        }
    }
    // The owners of the object (a ReplicaSet's Rollout or Deployment).
    for o in v
        .pointer("/requestObject/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if let Some(n) = first(o, &["name"]) {
            b.field(Role::Link(LinkKey::Owner), &n, "requestObject.metadata.ownerReferences.name");
        }
    }
    let start = b.time_from(v, &["requestReceivedTimestamp", "stageTimestamp"]);
    let verb = first(v, &["verb"]).unwrap_or_default();
    if !MUTATING.contains(&verb.as_str()) {
        return b.finish();
    }
    let mut ev = Ev::new(EventKind::K8sChange, Side::Server);
    ev.start = start;
    ev.end = v.get("stageTimestamp").and_then(super::super::values::Time::of_json);
    let user = first(v, &["user.username"]);
    let impersonated = first(v, &["impersonatedUser.username"]);
    ev.principal = impersonated.clone().or(user.clone());
    if let (Some(_), Some(u)) = (&impersonated, &user) {
        ev.actor = Some(u.clone());
    }
    if let Some(p) = &ev.principal {
        b.field(
            Role::Ident(IdentName::ToolPrincipal),
            p,
            if impersonated.is_some() { "impersonatedUser.username" } else { "user.username" },
        );
    }
    ev.operation = Some(verb);
    let obj = v.get("objectRef");
    let resource = obj.and_then(|o| first(o, &["resource"]));
    let ns = obj.and_then(|o| first(o, &["namespace"]));
    let name = obj.and_then(|o| first(o, &["name"]));
    ev.target = Some(
        [resource.as_deref(), ns.as_deref(), name.as_deref()].iter().flatten().copied().collect::<Vec<_>>().join("/"),
    )
    .filter(|t| !t.is_empty());
    if let Some(id) = first(v, &["auditID"]) {
        // Every stage of one request (RequestReceived, ResponseComplete) shares its auditID:
        // a linked value, so a stage that holds no incident value joins the request's event.
        b.field(Role::Link(LinkKey::EventId), &id, "auditID");
        ev.key(Role::Link(LinkKey::EventId), &id);
        ev.detail("audit_id", id);
    }
    if let Some(ip) = v.get("sourceIPs").and_then(|s| s.get(0)).and_then(Value::as_str) {
        ev.detail("source_address", ip);
    }
    if let Some(s) = first(v, &["stage"]) {
        ev.detail("stage", s);
    }
    if let Some(d) = first(v, &["annotations.authorization.k8s.io/decision"]) {
        ev.detail("authorization", d);
    }
    ev.outcome = match first(v, &["responseStatus.code"]) {
        Some(code) => outcome_of(&code),
        // RequestReceived carries no response: its ResponseComplete stage will.
        None => OutcomeEv::default(),
    };
    b.evidence(ev);
    b.finish()
}
