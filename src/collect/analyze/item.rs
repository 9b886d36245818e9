//! What one record (a span, a log line, a decision…) yields: its time, its classified fields,
//! the id-like values it holds anywhere (for value-driven matching), and the evidence of the
//! events it describes. [`ItemBuilder::walk`] is the generic reader every format falls back
//! on: it classifies each field by the semantics table, and looks inside JSON carried as a
//! string, W3C `traceparent`/`baggage`/`tracestate` values, `key=value` text and URL query
//! parameters.

use super::mapping::FieldMapping;
use super::semantics::{role_of, superseded, LinkKey, Role};
use super::values::{canon, no_value, normalize_plain, normalize_span_id, normalize_trace_id, traceparent, Time};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// Deepest nesting walked in one record.
const MAX_WALK_DEPTH: usize = 48;
/// Most classified fields kept per record.
const MAX_FIELDS: usize = 512;
/// Most id-like values kept per record.
const MAX_TOKENS: usize = 512;
/// Longest string looked into for embedded JSON.
pub(crate) const MAX_EMBEDDED: usize = 256 * 1024;
/// How many levels of JSON-in-a-string are opened.
const MAX_EMBEDDED_LEVELS: u8 = 3;
/// Longest rendered descriptive value (a tool name, a status…).
pub(crate) const MAX_TEXT: usize = 512;

/// A classified value of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) role: Role,
    /// Normalised value.
    pub(crate) value: String,
    /// As written, when it differs.
    pub(crate) raw: Option<String>,
    /// Where in the record (dotted path; `{}` marks JSON opened from a string).
    pub(crate) path: String,
}

/// Whose view of an action a record gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// The caller (the agent, its tool runtime, its SDK).
    Client,
    /// The system that carried the action out (a server span, an audit log).
    Server,
    /// A proxy or gateway in between.
    Proxy,
}

/// What a record says about an outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OutcomeEv {
    /// `None`: the record shows no outcome.
    pub(crate) status: Option<OutcomeStatus>,
    /// The status as written (`201`, `timeout`, `ERROR: deadline exceeded`).
    pub(crate) code: Option<String>,
    /// Why it is unknown or failed, when it is.
    pub(crate) reason: Option<String>,
    /// An idempotent replay: succeeded without a new effect.
    pub(crate) replayed: bool,
}

/// The evidence one record gives of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ev {
    pub(crate) kind: EventKind,
    pub(crate) side: Side,
    pub(crate) start: Option<Time>,
    pub(crate) end: Option<Time>,
    /// The identity the action ran as.
    pub(crate) principal: Option<String>,
    /// The agent.
    pub(crate) actor: Option<String>,
    /// Who the action was for.
    pub(crate) subject: Option<String>,
    /// Tool, host, policy path, memory store, resource.
    pub(crate) target: Option<String>,
    /// Method, operation, verb, API name.
    pub(crate) operation: Option<String>,
    pub(crate) outcome: OutcomeEv,
    /// Keys that join records of one event (call id, span id, request id…) and identifiers.
    pub(crate) keys: Vec<(Role, String)>,
    /// Kind-specific details (`host`, `upstream`, `bytes_out`, `decision`, `approver`…).
    pub(crate) detail: Vec<(&'static str, String)>,
    /// A part of an action, not an action by itself: a span inside a tool call (its internal
    /// HTTP request, the message it produced, the server or consumer that carried it out). It
    /// joins the event of its ancestor span, and is dropped when there is none.
    pub(crate) sub: bool,
    /// The attempt number, for one execution attempt of a call a runtime retries (a
    /// Temporal activity, `RunActivity:` spans): each attempt is its own event.
    pub(crate) attempt: Option<u32>,
    /// The record is a span of its own and its span-id key is that span's own id (an
    /// Application Insights request or dependency row), not the id of a span it was logged
    /// in: two such records of one call id with different span ids are two executions (a
    /// retried tool node keeps the model's call id), as two runs of a run-based export are.
    pub(crate) own_span: bool,
}

impl Ev {
    pub(crate) fn new(kind: EventKind, side: Side) -> Self {
        Ev {
            kind,
            side,
            start: None,
            end: None,
            principal: None,
            actor: None,
            subject: None,
            target: None,
            operation: None,
            outcome: OutcomeEv::default(),
            keys: Vec::new(),
            detail: Vec::new(),
            sub: false,
            attempt: None,
            own_span: false,
        }
    }

    /// Adds a join key (normalised like a field of that role); empty values are ignored.
    pub(crate) fn key(&mut self, role: Role, raw: &str) {
        if let Some(v) = normalize_role(role, raw) {
            if !self.keys.iter().any(|(r, x)| *r == role && *x == v) {
                self.keys.push((role, v));
            }
        }
    }

    pub(crate) fn key_of(&self, role: Role) -> Option<&str> {
        self.keys.iter().find(|(r, _)| *r == role).map(|(_, v)| v.as_str())
    }

    pub(crate) fn detail(&mut self, k: &'static str, v: impl Into<String>) {
        let v = bounded(v.into());
        if !v.is_empty() {
            self.detail.push((k, v));
        }
    }

    #[cfg(test)]
    pub(crate) fn detail_of(&self, k: &str) -> Option<&str> {
        self.detail.iter().find(|(d, _)| *d == k).map(|(_, v)| v.as_str())
    }
}

/// Entries a [`RoleCache`] holds before it starts again.
const ROLE_CACHE_ENTRIES: usize = 4096;
/// The longest (path, parent, key) a [`RoleCache`] remembers: a longer one (hostile or
/// machine-generated keys) is worked out each time, so the cache's memory stays bounded.
const ROLE_CACHE_KEY: usize = 512;

thread_local! {
    static ROLES: std::cell::RefCell<RoleCache> = std::cell::RefCell::new(RoleCache::default());
}

/// The role of a field is a function of the mapping and the field's (path, parent, key): a
/// memo of it, for the mapping it was filled under.
#[derive(Default)]
struct RoleCache {
    mapping: Option<FieldMapping>,
    roles: std::collections::HashMap<String, Option<Role>>,
    /// The lookup key being built (reused: a lookup allocates nothing).
    key: String,
}

impl RoleCache {
    fn role(
        &mut self,
        mapping: &FieldMapping,
        path: &str,
        parent: Option<&str>,
        key: &str,
        work_out: impl FnOnce() -> Option<Role>,
    ) -> Option<Role> {
        if path.len() + parent.map_or(0, str::len) + key.len() > ROLE_CACHE_KEY {
            return work_out();
        }
        if self.mapping.as_ref() != Some(mapping) {
            self.mapping = Some(mapping.clone());
            self.roles.clear();
        }
        // Lengths first, so that no two (path, parent, key) triples share a key whatever
        // bytes they hold.
        use std::fmt::Write as _;
        self.key.clear();
        let _ = write!(self.key, "{}:{}:{}:", path.len(), parent.map_or(-1, |p| p.len() as i64), key.len());
        self.key.push_str(path);
        self.key.push_str(parent.unwrap_or(""));
        self.key.push_str(key);
        if let Some(r) = self.roles.get(self.key.as_str()) {
            return *r;
        }
        let r = work_out();
        if self.roles.len() >= ROLE_CACHE_ENTRIES {
            self.roles.clear();
        }
        self.roles.insert(self.key.clone(), r);
        r
    }
}

/// What one record yields.
#[derive(Debug, Default)]
pub(crate) struct Item {
    /// The record's time (its start, for a span).
    pub(crate) time: Option<Time>,
    pub(crate) fields: Vec<Field>,
    /// Id-like values anywhere in the record, in canonical form. (Where each was is not kept:
    /// nothing reads it, and it cost an allocation per value.)
    pub(crate) tokens: Vec<String>,
    pub(crate) evidence: Vec<Ev>,
    /// The span id, for citing one span of an OTLP batch line.
    pub(crate) span_id: Option<String>,
    /// Fields or tokens were left out at the per-record limits.
    pub(crate) truncated: bool,
}

/// Normalises a value for a role: trace ids to hex, span ids to lower-case hex, others
/// trimmed. `None` when the value cannot be one of that role.
pub(crate) fn normalize_role(role: Role, raw: &str) -> Option<String> {
    match role {
        Role::Ident(IdentName::TraceId) => normalize_trace_id(raw),
        Role::Link(LinkKey::SpanId | LinkKey::ParentSpanId) => normalize_span_id(raw),
        Role::Ident(IdentName::BundleId) => normalize_plain(raw).filter(|v| !no_value(v)).map(|v| bundle_revision(&v)),
        _ => normalize_plain(raw).filter(|v| !no_value(v)),
    }
}

/// A bundle given as an OCI or registry reference (`oci://registry/repo:tag`,
/// `registry/repo:tag`) is named by its tag: the revision; one given as `name@revision`
/// (`agent-policy@rev-2026.11.21-3c9e41f`, a CloudTrail tag) by the revision after the `@`.
fn bundle_revision(v: &str) -> String {
    if let Some((name, rev)) = v.split_once('@') {
        let word =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        // Not `repo@sha256:…` (a digest reference: `:` is no word byte) and not an e-mail
        // address (its domain ends in a label of letters; a revision in digits or hex).
        let domain =
            rev.rsplit_once('.').is_some_and(|(_, tld)| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if word(name) && word(rev) && !domain {
            return rev.to_string();
        }
    }
    let body = v.split_once("://").map_or(v, |(_, r)| r);
    match body.rsplit_once(':') {
        Some((repo, tag))
            if repo.contains('/') && !tag.is_empty() && !tag.contains('/') && !repo.ends_with("@sha256") =>
        {
            tag.to_string()
        }
        _ => v.to_string(),
    }
}

/// Cuts `s` to at most [`MAX_TEXT`] bytes on a char boundary.
pub(crate) fn bounded(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A scalar as a string: strings as is, numbers and booleans in JSON form.
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resolves a dotted path (see [`super::mapping::lookup`]).
pub(crate) fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    super::mapping::lookup(v, path)
}

/// First of `paths` holding a non-empty scalar.
pub(crate) fn first(v: &Value, paths: &[&str]) -> Option<String> {
    paths.iter().filter_map(|p| at(v, p).and_then(scalar)).find(|s| !s.trim().is_empty()).map(bounded)
}

/// Whether a value is worth keeping as an id-like token: a value without whitespace, 3 to
/// 256 bytes, that is not a plain word of letters only or a boolean/`null`.
fn id_like(s: &str) -> bool {
    let n = s.len();
    (3..=256).contains(&n)
        && !s.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        && !matches!(s, "true" | "false" | "null" | "none" | "None" | "N/A")
        && (s.bytes().any(|b| b.is_ascii_digit()) || s.bytes().any(|b| matches!(b, b'-' | b'_' | b'@' | b'.' | b':')))
}

impl Item {
    /// Takes the fields and id-like values of `other` (read from the same record) that this
    /// item does not hold yet.
    pub(crate) fn absorb(&mut self, other: Item) {
        for f in other.fields {
            if !self.fields.iter().any(|x| x.role == f.role && x.value == f.value) {
                self.fields.push(f);
            }
        }
        for t in other.tokens {
            if !self.tokens.contains(&t) {
                self.tokens.push(t);
            }
        }
    }
}

/// Builds an [`Item`].
pub(crate) struct ItemBuilder<'m> {
    pub(crate) item: Item,
    mapping: &'m FieldMapping,
    /// Schemas whose names mean something else than the semantics table says, recognised
    /// by their marker fields while the record is walked ([`Dialects::mark`]).
    dialects: Dialects,
}

/// Record schemas that reuse the table's names for something else, recognised from the
/// record's top-level keys before any field is read ([`Dialects::of`]), so that a field they
/// re-read is never recorded (recording it and dropping it later would also drop an equal value
/// from a field that means it: fields are deduplicated by role and value).
#[derive(Default, Clone, Copy)]
struct Dialects {
    /// Elastic Common Schema (`@timestamp` with `ecs.version`, or `agent.type` naming a Beat or
    /// the Elastic Agent): its `agent.*` fields describe the log shipper that sent the record,
    /// not the AI agent; `agent.id` is Filebeat's id.
    ecs: bool,
    /// Azure Application Insights / Log Analytics telemetry (`operation_Id`/`OperationId` with
    /// another of their columns): its top-level `session_Id` / `SessionId` is the client's
    /// (browser or app) telemetry session, not the agent's conversation.
    app_insights: bool,
    /// A Kubernetes workload object (`apiVersion` and `metadata` with a `kind` such as
    /// `Rollout`, `Deployment`, `ReplicaSet`, `Pod`): its `serviceAccountName` is configuration
    /// (the identity its pods would run as), not the principal of an action.
    workload: bool,
}

impl Dialects {
    /// The dialects of a record (a top-level object).
    fn of(v: &Value) -> Dialects {
        let Value::Object(o) = v else { return Dialects::default() };
        const SHIPPERS: [&str; 10] = [
            "filebeat",
            "metricbeat",
            "packetbeat",
            "winlogbeat",
            "auditbeat",
            "heartbeat",
            "functionbeat",
            "journalbeat",
            "elastic-agent",
            "apm-server",
        ];
        let agent_type = o.get("agent").and_then(|a| a.get("type")).or_else(|| o.get("agent.type"));
        let shipper = agent_type.and_then(Value::as_str).is_some_and(|t| SHIPPERS.iter().any(|s| t.eq_ignore_ascii_case(s)));
        let ecs_version = o.get("ecs").and_then(|e| e.get("version")).or_else(|| o.get("ecs.version")).is_some();
        let ecs = shipper || (ecs_version && o.contains_key("@timestamp"));
        const COLUMNS: [&str; 11] = [
            "itemType",
            "cloud_RoleName",
            "cloud_RoleInstance",
            "AppRoleName",
            "AppRoleInstance",
            "operation_ParentId",
            "operation_Name",
            "OperationName",
            "customDimensions",
            "Properties",
            "TimeGenerated",
        ];
        let app_insights = (o.contains_key("operation_Id") || o.contains_key("OperationId"))
            && COLUMNS.iter().any(|c| o.contains_key(*c));
        const WORKLOADS: [&str; 9] =
            ["Rollout", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "PodTemplate"];
        let workload = o.contains_key("apiVersion")
            && o.get("metadata").is_some_and(Value::is_object)
            && o.get("kind").and_then(Value::as_str).is_some_and(|k| WORKLOADS.contains(&k));
        Dialects { ecs, app_insights, workload }
    }

    /// Whether a field (its role, at `path`) of a record in these dialects means something
    /// else, and is not recorded.
    fn overrides(&self, role: Role, path: &str) -> bool {
        (self.ecs
            && path.starts_with("agent.")
            && matches!(role, Role::Ident(IdentName::AgentId) | Role::Link(LinkKey::AgentName)))
            || (self.app_insights
                && role == Role::Ident(IdentName::SessionId)
                && matches!(path, "session_Id" | "SessionId"))
            || (self.workload
                && role == Role::Ident(IdentName::ToolPrincipal)
                && path.rsplit('.').next().is_some_and(|k| matches!(k, "serviceAccountName" | "serviceAccount")))
    }
}

impl<'m> ItemBuilder<'m> {
    pub(crate) fn new(mapping: &'m FieldMapping) -> Self {
        ItemBuilder { item: Item::default(), mapping, dialects: Dialects::default() }
    }

    pub(crate) fn finish(mut self) -> Item {
        // A bare `wave` is the rollout wave only in a deployment record.
        if self.item.fields.iter().any(|f| f.role == Role::Wave) {
            let deploy = self.item.fields.iter().any(|f| {
                matches!(
                    f.role,
                    Role::Ident(IdentName::ChangeId)
                        | Role::Link(LinkKey::DeploymentId | LinkKey::Owner | LinkKey::Workload)
                )
            }) || self.item.evidence.iter().any(|e| {
                matches!(e.kind, EventKind::Deploy | EventKind::Change | EventKind::Rollout | EventKind::K8sChange)
            });
            if deploy {
                for f in self.item.fields.iter_mut().filter(|f| f.role == Role::Wave) {
                    f.role = Role::Ident(IdentName::RolloutWave);
                }
                let mut seen = Vec::new();
                self.item.fields.retain(|f| {
                    f.role != Role::Ident(IdentName::RolloutWave) || {
                        let k = (f.value.clone(), f.path.clone());
                        !seen.contains(&k) && {
                            seen.push(k);
                            true
                        }
                    }
                });
            } else {
                self.item.fields.retain(|f| f.role != Role::Wave);
            }
        }
        self.item
    }

    /// The record's time, unless one was set already.
    pub(crate) fn time(&mut self, t: Option<Time>) {
        if self.item.time.is_none() {
            self.item.time = t;
        }
    }

    /// The first of `paths` that holds a time.
    pub(crate) fn time_from(&mut self, v: &Value, paths: &[&str]) -> Option<Time> {
        let t = paths.iter().filter_map(|p| at(v, p)).find_map(Time::of_json);
        self.time(t.clone());
        t
    }

    /// Records a classified value (deduplicated per role and value).
    pub(crate) fn field(&mut self, role: Role, raw: &str, path: &str) -> Option<String> {
        let (role, raw) = match role {
            Role::TraceParent => {
                let (t, s) = traceparent(raw)?;
                self.push_field(Role::Ident(IdentName::TraceId), &t, Some(raw), path);
                self.push_field(Role::Link(LinkKey::ParentSpanId), &s, Some(raw), path);
                return Some(t);
            }
            Role::Baggage => {
                self.baggage(raw, path);
                return None;
            }
            Role::NumberedDeployment => {
                let n = raw.trim();
                if n.len() < 3 || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (Role::Link(LinkKey::DeploymentId), n)
            }
            r => (r, raw),
        };
        let value = normalize_role(role, raw)?;
        let raw_out = (value != raw).then_some(raw);
        self.push_field(role, &value, raw_out, path);
        Some(value)
    }

    fn push_field(&mut self, role: Role, value: &str, raw: Option<&str>, path: &str) {
        if self.item.fields.iter().any(|f| f.role == role && f.value == value) {
            return;
        }
        if self.item.fields.len() >= MAX_FIELDS {
            self.item.truncated = true;
            return;
        }
        self.item.fields.push(Field {
            role,
            value: value.to_string(),
            raw: raw.map(|r| bounded(r.to_string())),
            path: bounded(path.to_string()),
        });
        self.token(value);
    }

    /// Records an id-like value for value-driven matching.
    pub(crate) fn token(&mut self, raw: &str) {
        let s = raw.trim();
        if !id_like(s) {
            return;
        }
        let c = canon(s);
        if self.item.tokens.contains(&c) {
            return;
        }
        if self.item.tokens.len() >= MAX_TOKENS {
            self.item.truncated = true;
            return;
        }
        self.item.tokens.push(c);
    }

    /// The value of a role already recorded for this item.
    pub(crate) fn value_of(&self, role: Role) -> Option<&str> {
        self.item.fields.iter().find(|f| f.role == role).map(|f| f.value.as_str())
    }

    pub(crate) fn ident(&self, ident: IdentName) -> Option<String> {
        self.value_of(Role::Ident(ident)).map(str::to_string)
    }

    pub(crate) fn evidence(&mut self, ev: Ev) {
        self.item.evidence.push(ev);
    }

    /// The role of a field by the user's mapping (exact dotted paths) first, then the
    /// semantics table (unless the mapping turns the defaults off). Remembered per thread
    /// (see [`RoleCache`]): the records of one file repeat the same few dozen paths.
    fn role(&self, path: &str, parent: Option<&str>, key: &str) -> Option<Role> {
        ROLES.with(|cache| match cache.try_borrow_mut() {
            Ok(mut cache) => cache.role(self.mapping, path, parent, key, || self.role_uncached(path, parent, key)),
            Err(_) => self.role_uncached(path, parent, key),
        })
    }

    fn role_uncached(&self, path: &str, parent: Option<&str>, key: &str) -> Option<Role> {
        if let Some(ident) = self.mapping.ident_for_path(path) {
            return Some(Role::Ident(ident));
        }
        // What was in force before is not the incident's (`previous_opa_bundles.x`).
        if path.split(['.', '/']).any(superseded) {
            return None;
        }
        let r = role_of(parent, key)?;
        if !self.mapping.use_defaults && matches!(r, Role::Ident(_)) {
            return None;
        }
        match r {
            // `mcp.session.id` written as nested objects: the leaf alone reads `session.id`.
            Role::Ident(IdentName::SessionId)
                if super::semantics::transport_session(&super::semantics::norm_key(path)) =>
            {
                None
            }
            // A chat platform's conversation (`teams.conversation_id`, `slack.thread_ts`'s
            // channel, a Bot Framework `conversation.id` logged by a bot): the thread a message
            // or a card was posted in, not the agent's session.
            Role::Ident(IdentName::SessionId)
                if path.split(['.', '/']).any(|seg| {
                    matches!(
                        super::semantics::norm_key(seg).as_ref(),
                        "teams" | "msteams" | "slack" | "discord" | "bot_framework"
                    )
                }) =>
            {
                None
            }
            // A deployment id inside a policy source or bundle (Cerbos Hub's
            // `policySource.hub.remoteBundle.deploymentId`) is how the policies were
            // distributed, not the deployment that served the agent.
            Role::Link(LinkKey::DeploymentId)
                if path.rsplit_once(['.', '/']).is_some_and(|(head, _)| {
                    let h = super::semantics::norm_key(head);
                    h.contains("policy") || h.contains("bundle")
                }) =>
            {
                None
            }
            // Where a policy engine loaded its policies from (Cerbos' `policySource`: disk,
            // git, a Cerbos Hub `remoteBundle`) serves every caller of that engine: its
            // bundle is the engine's, not the agent's deployed policy/config bundle.
            Role::Ident(IdentName::BundleId)
                if path.rsplit_once(['.', '/']).is_some_and(|(head, _)| {
                    super::semantics::norm_key(head)
                        .split('_')
                        .collect::<Vec<_>>()
                        .windows(2)
                        .any(|w| w == ["policy", "source"])
                }) =>
            {
                None
            }
            // Vault's audit log names the caller's auth token `client_token` (under `auth` and
            // `request`): a credential every request made with it shares, in any session, not
            // an idempotency token as AWS's `clientToken` request parameter is.
            Role::Ident(IdentName::IdempotencyKey)
                if super::semantics::norm_key(key) == "client_token"
                    && parent.is_some_and(|p| {
                        matches!(super::semantics::norm_key(p).as_ref(), "auth" | "request" | "response" | "wrap_info")
                    }) =>
            {
                None
            }
            // A JSON-RPC request id (`jsonrpc.request.id`, MCP's `id`) is a counter per
            // connection (`17`), not a request's identity.
            // A policy engine's "call id" (`cerbos.call_id`, Cerbos' `callId`: its id of one
            // authorisation call) identifies a decision, not a tool call.
            Role::Link(LinkKey::CallId)
                if path.rsplit_once(['.', '/']).is_some_and(|(head, _)| {
                    head.split(['.', '/']).any(|seg| {
                        matches!(
                            super::semantics::norm_key(seg).as_ref(),
                            "cerbos" | "opa" | "authz" | "authorization" | "authorizer" | "pdp" | "policy" | "decision"
                        )
                    })
                }) =>
            {
                Some(Role::Link(LinkKey::DecisionId))
            }
            // So is MCP's (`notifications/cancelled` `requestId`, a server's `mcp_cancel`).
            Role::Link(LinkKey::RequestId)
                if path.split(['.', '/']).any(|s| {
                    s.eq_ignore_ascii_case("jsonrpc")
                        || s.eq_ignore_ascii_case("rpc")
                        || super::semantics::norm_key(s).split('_').any(|w| w == "mcp")
                }) =>
            {
                None
            }
            r => Some(r),
        }
    }

    /// Walks one field's value (`key` is its name, `path` where it is).
    pub(crate) fn walk_field(&mut self, path: &str, key: &str, v: &Value) {
        self.walk_value_of(path, None, key, v, 0, 0);
    }

    /// Walks a JSON value: every field classified, every id-like value kept, JSON carried as
    /// a string opened, headers and `key=value` text read.
    pub(crate) fn walk(&mut self, prefix: &str, v: &Value) {
        if prefix.is_empty() {
            self.dialects = Dialects::of(v);
        }
        self.walk_at(prefix, None, v, 0, 0);
    }

    /// Whether the record walked is in the Elastic Common Schema.
    pub(crate) fn ecs(&self) -> bool {
        self.dialects.ecs
    }

    /// Whether the record walked is Application Insights / Log Analytics telemetry.
    pub(crate) fn app_insights(&self) -> bool {
        self.dialects.app_insights
    }

    fn walk_at(&mut self, path: &str, parent: Option<&str>, v: &Value, depth: usize, embedded: u8) {
        if depth > MAX_WALK_DEPTH {
            self.item.truncated = true;
            return;
        }
        match v {
            Value::Object(map) => {
                // An attribute object `{"key": k, "value": v}` (OTLP, CloudTrail tags) or
                // `{"name": k, "value": v}` (Kubernetes env, HTTP headers as lists).
                for (kk, vk) in [("key", "value"), ("Key", "Value"), ("name", "value")] {
                    if let (Some(Value::String(k)), Some(val)) = (map.get(kk), map.get(vk)) {
                        if map.len() == 2 {
                            let p = join(path, k);
                            self.walk_value_of(&p, parent, k, val, depth, embedded);
                            return;
                        }
                    }
                }
                let leaf = path.rsplit('.').next().filter(|s| !s.is_empty());
                for (k, child) in map {
                    let p = join(path, k);
                    self.walk_value_of(&p, leaf, k, child, depth, embedded);
                }
            }
            Value::Array(list) => {
                // A list inside a list (`rows: [[…], …]` of a columnar export, Log Analytics
                // and Application Insights query results): its strings are values too, read
                // without a role (the column names are elsewhere).
                for child in list {
                    match unwrap_any_value(child) {
                        Value::String(s) => self.string(path, s, embedded),
                        n @ Value::Number(_) => {
                            if let Some(s) = scalar(n) {
                                self.token(&s);
                            }
                        }
                        other => self.walk_at(path, parent, other, depth + 1, embedded),
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_value_of(&mut self, path: &str, parent: Option<&str>, key: &str, v: &Value, depth: usize, embedded: u8) {
        // OTLP AnyValue wrappers: `{"stringValue": "…"}`, `{"arrayValue": {"values": […]}}`.
        let v = unwrap_any_value(v);
        match v {
            Value::String(s) => {
                if let Some(role) = self.role(path, parent, key) {
                    // A field the user's mapping names keeps the meaning the user gave it.
                    if !self.dialects.overrides(role, path) || self.mapping.ident_for_path(path).is_some() {
                        self.field(role, s, path);
                    }
                }
                if let Some(rs) = pod_replicaset(key, s) {
                    self.field(Role::Link(LinkKey::Workload), &rs, &format!("{path}→replicaset"));
                }
                self.string(path, s, embedded);
            }
            Value::Number(_) | Value::Bool(_) => {
                if let Some(s) = scalar(v) {
                    if let Some(role) = self.role(path, parent, key) {
                        self.field(role, &s, path);
                    }
                    self.token(&s);
                }
            }
            Value::Array(list) => {
                // A list of scalars under a classified key (header values, `sourceIPs`).
                let role = self.role(path, parent, key);
                for child in list {
                    let child = unwrap_any_value(child);
                    match child {
                        Value::String(s) => {
                            if let Some(r) = role {
                                self.field(r, s, path);
                            }
                            self.string(path, s, embedded);
                        }
                        Value::Number(_) => {
                            if let Some(s) = scalar(child) {
                                self.token(&s);
                            }
                        }
                        _ => self.walk_at(path, Some(key), child, depth + 1, embedded),
                    }
                }
            }
            Value::Object(_) => self.walk_at(path, parent, v, depth + 1, embedded),
            Value::Null => {}
        }
    }

    /// A string value: kept as a token; opened when it holds JSON; read when it holds a
    /// traceparent, `key=value` pairs or a URL query.
    fn string(&mut self, path: &str, s: &str, embedded: u8) {
        self.token(s);
        let t = s.trim();
        if t.is_empty() {
            return;
        }
        if traceparent(t).is_some() {
            self.field(Role::TraceParent, t, path);
            return;
        }
        let first = t.as_bytes().first().copied();
        if matches!(first, Some(b'{') | Some(b'[')) && t.len() <= MAX_EMBEDDED && embedded < MAX_EMBEDDED_LEVELS {
            if let Ok(inner) = serde_json::from_str::<Value>(t) {
                if inner.is_object() || inner.is_array() {
                    let p = format!("{path}{{}}");
                    self.walk_at(&p, None, &inner, 0, embedded + 1);
                    return;
                }
            }
        }
        if t.len() <= MAX_EMBEDDED && (t.contains('=') || t.contains(' ')) {
            self.text(path, t);
        }
    }

    /// Free text: `key=value` pairs (quoted values too, URL query parameters) classified by
    /// their key; id-like words kept as tokens.
    pub(crate) fn text(&mut self, path: &str, t: &str) {
        let mut budget = 256usize;
        // `Key: value` (a word ending in a colon names the next word).
        let mut pending_key: Option<String> = None;
        for raw_word in t.split(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '&' | '?' | '"' | '\'' | '(' | ')' | '<' | '>')
        }) {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let word = raw_word.trim_matches(|c: char| matches!(c, '.' | ':' | '[' | ']' | '{' | '}'));
            if word.is_empty() {
                continue;
            }
            if let Some(k) = pending_key.take() {
                let p = format!("{path}~{k}");
                if let Some(role) = self.role(&p, None, &k) {
                    self.field(role, word, &p);
                }
            }
            if raw_word.ends_with(':')
                && raw_word.len() > 3
                && !word.contains(':')
                && word.bytes().any(|b| b.is_ascii_alphabetic())
            {
                pending_key = Some(word.to_string());
                continue;
            }
            // A path-like word also stands for its parts (`Rollout/procure-agent`).
            if word.contains('/') && !word.contains("://") {
                for seg in word.split('/').filter(|s| s.len() >= 4) {
                    self.token(seg);
                }
            }
            if let Some((k, v)) = word.split_once('=').or_else(|| word.split_once(':').filter(|(k, _)| k.len() > 2)) {
                let v = v.trim_matches(|c: char| matches!(c, '"' | '\'' | '.'));
                if !k.is_empty() && !v.is_empty() {
                    let p = format!("{path}~{k}");
                    if let Some(role) = self.role(&p, None, k) {
                        self.field(role, v, &p);
                    }
                    self.token(v);
                    continue;
                }
            }
            if traceparent(word).is_some() {
                self.field(Role::TraceParent, word, path);
            }
            self.token(word);
        }
    }

    /// W3C baggage / tracestate: `k=v` members separated by commas; properties after `;`.
    fn baggage(&mut self, raw: &str, path: &str) {
        for member in raw.split(',').take(64) {
            let kv = member.split(';').next().unwrap_or("");
            if let Some((k, v)) = kv.split_once('=') {
                let k = k.trim();
                let v = percent_decode(v.trim());
                let p = format!("{path}~{k}");
                if let Some(role) = self.role(&p, None, k) {
                    self.field(role, &v, &p);
                }
                self.token(&v);
            }
        }
    }
}

/// The ReplicaSet of a Kubernetes pod, from the pod's name (`<replicaset>-<5 characters>`,
/// the ReplicaSet being `<workload>-<pod-template-hash>`, or a Spinnaker server group
/// `<cluster>-v<3 digits>`, which carries no hash): only for fields that name a pod.
pub(crate) fn pod_replicaset(key: &str, pod: &str) -> Option<String> {
    let k = super::semantics::norm_key(key);
    // Application Insights names the instance that sent a record `cloud_RoleInstance`
    // (`AppRoleInstance` in Log Analytics): on Kubernetes, the pod's name.
    if !matches!(
        k.as_ref(),
        "k8s_pod_name"
            | "pod_name"
            | "pod"
            | "kubernetes_pod_name"
            | "k8s_pod"
            | "cloud_role_instance"
            | "app_role_instance"
    ) {
        return None;
    }
    let (rs, suffix) = pod.rsplit_once('-')?;
    let (_, hash) = rs.rsplit_once('-')?;
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let hashed = (6..=10).contains(&hash.len()) && alnum(hash);
    let versioned = hash.len() == 4 && hash.starts_with('v') && hash.bytes().skip(1).all(|b| b.is_ascii_digit());
    (suffix.len() == 5 && alnum(suffix) && (hashed || versioned)).then(|| rs.to_string())
}

/// `a` + `.` + `b` (or `b` alone).
pub(crate) fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// The value inside an OTLP `AnyValue` wrapper, or the value itself.
pub(crate) fn unwrap_any_value(v: &Value) -> &Value {
    if let Value::Object(m) = v {
        if m.len() == 1 {
            for k in ["stringValue", "intValue", "boolValue", "doubleValue", "bytesValue"] {
                if let Some(x) = m.get(k) {
                    return x;
                }
            }
            if let Some(Value::Object(a)) = m.get("arrayValue") {
                if let Some(vals @ Value::Array(_)) = a.get("values") {
                    return vals;
                }
            }
            if let Some(Value::Object(kv)) = m.get("kvlistValue") {
                if let Some(vals @ Value::Array(_)) = kv.get("values") {
                    return vals;
                }
            }
        }
    }
    v
}

/// Decodes `%XX` escapes (invalid ones are kept as written).
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let (Some(h), Some(l)) = (b.get(i + 1), b.get(i + 2)) {
                if let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16)) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a written status reads as an outcome: HTTP codes (2xx succeeded; 4xx failed, except
/// 408, 409, 425 and 429, which leave it unknown; 5xx unknown), and words (`ok`, `success`
/// → succeeded; `denied`, `rejected`, `forbidden`, `invalid` → failed; `timeout`,
/// `cancelled`, `disconnected`, `error` → unknown).
pub(crate) fn outcome_of(code: &str) -> OutcomeEv {
    let c = code.trim();
    let lower = c.to_ascii_lowercase();
    let mk = |status, reason: Option<&str>| OutcomeEv {
        status: Some(status),
        code: Some(bounded(c.to_string())),
        reason: reason.map(str::to_string),
        replayed: false,
    };
    if let Ok(n) = lower.parse::<u16>() {
        return match n {
            200..=299 => mk(OutcomeStatus::Succeeded, None),
            408 | 504 => mk(OutcomeStatus::Unknown, Some("timeout")),
            409 => mk(OutcomeStatus::Unknown, Some("conflict (409): it may have been applied before")),
            425 | 429 => mk(OutcomeStatus::Unknown, Some("not processed yet (425/429): it may be retried")),
            // nginx's and Kong's "client closed request": the caller hung up first, after the
            // request may have been forwarded.
            499 => mk(OutcomeStatus::Unknown, Some("the caller closed the connection before the answer (499)")),
            400..=499 => mk(OutcomeStatus::Failed, Some("rejected")),
            500..=599 => mk(OutcomeStatus::Unknown, Some("server error: it may or may not have been applied")),
            _ => mk(OutcomeStatus::Unknown, Some("unrecognised status")),
        };
    }
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&[
        "idempotent replay",
        "replayed",
        "idempotency replay",
        "returning existing",
        "already processed",
        "duplicate request",
    ]) {
        return OutcomeEv { replayed: true, ..mk(OutcomeStatus::Succeeded, Some("idempotent replay: no new effect")) };
    }
    // The caller's credentials failed before any request was sent (google-auth's
    // `RefreshError`, a token that could not be obtained): no effect, whatever timed out
    // while fetching the token.
    if has(&[
        "refresherror",
        "defaultcredentialserror",
        "could not refresh",
        "failed to refresh",
        "unable to obtain credentials",
        "unable to acquire token",
    ]) {
        return mk(
            OutcomeStatus::Failed,
            Some("the caller's credentials failed before the request was sent: no effect"),
        );
    }
    // The server says it never ran it (a request cancelled while queued): no effect, however
    // the caller's side ended.
    if has(&["not executed", "not_executed", "never executed", "not applied", "not_applied", "dropped before"]) {
        return mk(OutcomeStatus::Failed, Some("not executed: no effect"));
    }
    if has(&["timeout", "timed out", "timed_out", "deadline", "time out"]) {
        return mk(OutcomeStatus::Unknown, Some("timeout"));
    }
    if has(&["disconnect", "connection reset", "broken pipe", "eof", "cancel", "aborted"]) {
        return mk(OutcomeStatus::Unknown, Some("disconnected or cancelled"));
    }
    if has(&["denied", "reject", "forbidden", "unauthori", "invalid", "not allowed", "refused"]) {
        return mk(OutcomeStatus::Failed, Some("rejected"));
    }
    if matches!(
        lower.as_str(),
        "ok" | "success"
            | "succeeded"
            | "successful"
            | "completed"
            | "complete"
            | "done"
            | "committed"
            | "created"
            | "accepted"
            | "applied"
            | "status_code_ok"
            | "true"
    ) || (lower.split_whitespace().count() <= 6 && has(&[" created", " committed", " succeeded", " completed"]))
    {
        return mk(OutcomeStatus::Succeeded, None);
    }
    if has(&["error", "fail", "exception", "false"]) {
        return mk(OutcomeStatus::Unknown, Some("error without a status: it may or may not have been applied"));
    }
    mk(OutcomeStatus::Unknown, Some("unrecognised status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_source_deployment_and_a_nested_mcp_session_are_not_the_agents() {
        let item = walked(serde_json::json!({
            "policySource": {"hub": {"remoteBundle": {"deploymentId": "F3QZ8K2M4N7P"}}},
            "attributes": {"mcp": {"session": {"id": "6f0d2a9c81b54e37a2c9d04b7e1f5a83"}}},
            "resource": {"deployment": {"id": "run-7f3c2a91"}},
            "config": {"prior": {"bundle_revision": "ocb-old"}, "bundle_revision": "ocb-new"},
            "jsonrpc": {"request": {"id": 17}},
            "http": {"request_id": "2c4e6a80-1b3d-4f5a-9c7e-0d2f4b6a8c1e"},
        }));
        assert_eq!(roles(&item, Role::Link(LinkKey::RequestId)).len(), 1, "{:?}", item.fields);
        assert_eq!(
            roles(&item, Role::Link(LinkKey::DeploymentId)),
            [("run-7f3c2a91".to_string(), "resource.deployment.id".to_string())]
        );
        assert!(roles(&item, Role::Ident(IdentName::SessionId)).is_empty());
        assert_eq!(
            roles(&item, Role::Ident(IdentName::BundleId)),
            [("ocb-new".to_string(), "config.bundle_revision".to_string())]
        );
    }

    #[test]
    fn a_bundle_named_with_its_revision_is_the_revision() {
        for (given, revision) in [
            ("agent-policy@rev-2026.11.21-3c9e41f", "rev-2026.11.21-3c9e41f"),
            ("agent-policy@1.4.2", "1.4.2"),
            ("oci://ghcr.io/acme/policy:rev-7", "rev-7"),
            ("ghcr.io/acme/policy@sha256:abc", "ghcr.io/acme/policy@sha256:abc"),
            ("ops@example.com", "ops@example.com"),
            ("rev-12", "rev-12"),
        ] {
            assert_eq!(bundle_revision(given), revision, "{given}");
        }
    }

    fn walked(v: Value) -> Item {
        let m = FieldMapping::default();
        let mut b = ItemBuilder::new(&m);
        b.walk("", &v);
        b.finish()
    }

    fn roles(item: &Item, role: Role) -> Vec<(String, String)> {
        item.fields.iter().filter(|f| f.role == role).map(|f| (f.value.clone(), f.path.clone())).collect()
    }

    /// Red team, 2026-12-07 (ECS logs shipped by Filebeat): `agent.id` is Filebeat's id and was
    /// put in CONFLICT with the AI agent's `labels.agent_id`.
    #[test]
    fn regression_ecs_agent_fields_are_the_log_shipper() {
        let item = walked(serde_json::json!({
            "@timestamp": "2026-12-07T13:55:01.120Z",
            "ecs": {"version": "8.11.0"},
            "agent": {"type": "filebeat", "id": "3f5d2a8e-6c41-4b97-a0d2-8e1f7c3b5a96", "name": "ip-10-0-3-7"},
            "labels": {"agent_id": "invoice-agent"},
        }));
        assert_eq!(
            roles(&item, Role::Ident(IdentName::AgentId)),
            [("invoice-agent".to_string(), "labels.agent_id".to_string())]
        );
        assert!(roles(&item, Role::Link(LinkKey::AgentName)).is_empty(), "{:?}", item.fields);
        // Outside ECS, `agent.id` is the agent's id.
        let item = walked(serde_json::json!({"agent": {"id": "invoice-agent"}}));
        assert_eq!(roles(&item, Role::Ident(IdentName::AgentId)).len(), 1);
        // The shipper's name equal to the agent's does not hide the agent's own field.
        let item = walked(serde_json::json!({
            "@timestamp": "2026-12-07T13:55:01.120Z",
            "ecs": {"version": "8.11.0"},
            "agent": {"type": "filebeat", "name": "invoice-agent"},
            "gen_ai": {"agent": {"name": "invoice-agent"}},
        }));
        assert_eq!(
            roles(&item, Role::Link(LinkKey::AgentName)),
            [("invoice-agent".to_string(), "gen_ai.agent.name".to_string())]
        );
        // Another system's `ecs` (AWS ECS task metadata) without `@timestamp` is no ECS log.
        let item = walked(serde_json::json!({"ecs": {"version": "4"}, "agent": {"id": "invoice-agent"}}));
        assert_eq!(roles(&item, Role::Ident(IdentName::AgentId)).len(), 1);
        // Flat dotted ECS keys mark it too (`agent.type` naming a Beat).
        let item = walked(serde_json::json!({"agent.type": "filebeat", "agent.id": "3f5d2a8e"}));
        assert!(roles(&item, Role::Ident(IdentName::AgentId)).is_empty(), "{:?}", item.fields);
    }

    /// Red team, 2026-12-07 (Application Insights): the browser's `session_Id` was followed as
    /// the agent's session and pulled another conversation in.
    #[test]
    fn regression_app_insights_session_is_the_clients() {
        let item = walked(serde_json::json!({
            "operation_Id": "4e8d2b6f0a1c47d9b3e5f7a9c1d3e5f7",
            "session_Id": "q3Fz8Lk2",
            "customDimensions": {"thread_id": "thr_01JF3K8Q2W7E9R4T6Y1U3I5O7P"},
        }));
        assert_eq!(
            roles(&item, Role::Ident(IdentName::SessionId)),
            [("thr_01JF3K8Q2W7E9R4T6Y1U3I5O7P".to_string(), "customDimensions.thread_id".to_string())]
        );
        let item = walked(serde_json::json!({"OperationId": "4e8d2b6f", "AppRoleName": "api", "SessionId": "q3Fz8Lk2"}));
        assert!(roles(&item, Role::Ident(IdentName::SessionId)).is_empty(), "{:?}", item.fields);
        // The app's own session in the attribute bag stays the session.
        let item = walked(serde_json::json!({
            "OperationId": "4e8d2b6f", "AppRoleName": "api", "Properties": {"SessionId": "sess-0799fb3e"}
        }));
        assert_eq!(roles(&item, Role::Ident(IdentName::SessionId)).len(), 1, "{:?}", item.fields);
        // `itemType` alone (an inventory record) is not telemetry.
        let item = walked(serde_json::json!({"itemType": "invoice", "SessionId": "sess-1a2b"}));
        assert_eq!(roles(&item, Role::Ident(IdentName::SessionId)).len(), 1, "{:?}", item.fields);
        // Elsewhere a `SessionId` is the session.
        let item = walked(serde_json::json!({"SessionId": "sess-0799fb3e"}));
        assert_eq!(roles(&item, Role::Ident(IdentName::SessionId)).len(), 1);
    }

    /// Red team, 2026-12-07 (Vault audit log): `auth.client_token` was read as an idempotency
    /// key; AWS's `requestParameters.clientToken` still is one.
    #[test]
    fn regression_vault_client_token_is_a_credential() {
        let item = walked(serde_json::json!({
            "type": "response",
            "auth": {"client_token": "hvs.CAESIJ8", "display_name": "kubernetes-payments-mcp"},
            "request": {"client_token": "hvs.CAESIJ8", "path": "transit/sign/payments"},
        }));
        assert!(roles(&item, Role::Ident(IdentName::IdempotencyKey)).is_empty(), "{:?}", item.fields);
        let item = walked(serde_json::json!({"requestParameters": {"clientToken": "run-7Hq2xP"}}));
        assert_eq!(roles(&item, Role::Ident(IdentName::IdempotencyKey)).len(), 1);
    }

    /// Red team, 2026-12-07: a trace id in a columnar export's `rows: [[…]]` was "found in NO
    /// record".
    #[test]
    fn regression_values_in_lists_of_lists_are_read() {
        let item = walked(serde_json::json!({
            "tables": [{"columns": [{"name": "operation_Id"}], "rows": [["4E8D2B6F0A1C47D9B3E5F7A9C1D3E5F7", 7]]}]
        }));
        assert!(item.tokens.contains(&"4e8d2b6f0a1c47d9b3e5f7a9c1d3e5f7".to_string()), "{:?}", item.tokens);
    }

    #[test]
    fn json_in_a_string_headers_and_text_are_read() {
        let item = walked(serde_json::json!({
            "message": "{\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\",\"acme.change.id\":\"chg-9\"}",
            "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                        "baggage": "session.id=sess-1,x=y"},
            "log": "charging card idempotency_key=idem-42 user_id=cus_77 failed",
            "url": "https://api.example.com/v1/refunds?wave=wave-3&x=1",
        }));
        let t = roles(&item, Role::Ident(IdentName::TraceId));
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].0, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            roles(&item, Role::Ident(IdentName::ChangeId)),
            vec![("chg-9".into(), "message{}.acme.change.id".into())]
        );
        assert_eq!(roles(&item, Role::Ident(IdentName::SessionId))[0].0, "sess-1");
        assert_eq!(roles(&item, Role::Ident(IdentName::IdempotencyKey))[0].0, "idem-42");
        assert_eq!(roles(&item, Role::Subject)[0].0, "cus_77");
        assert_eq!(roles(&item, Role::Ident(IdentName::RolloutWave))[0].0, "wave-3");
        assert_eq!(roles(&item, Role::Link(LinkKey::ParentSpanId))[0].0, "00f067aa0ba902b7");
    }

    #[test]
    fn otlp_attribute_lists_and_header_arrays_are_read() {
        let item = walked(serde_json::json!({"attributes": [
            {"key": "http.request.header.idempotency-key", "value": {"arrayValue": {"values": [{"stringValue": "idem-1"}]}}},
            {"key": "enduser.id", "value": {"stringValue": "cus_9"}},
            {"key": "deployment.id", "value": {"stringValue": "run-77"}}
        ]}));
        assert_eq!(roles(&item, Role::Ident(IdentName::IdempotencyKey))[0].0, "idem-1");
        assert_eq!(roles(&item, Role::Subject)[0].0, "cus_9");
        assert_eq!(roles(&item, Role::Link(LinkKey::DeploymentId))[0].0, "run-77");
        assert!(roles(&item, Role::Ident(IdentName::ToolPrincipal)).is_empty());
        assert!(roles(&item, Role::Ident(IdentName::BundleId)).is_empty());
    }

    #[test]
    fn statuses_read_as_outcomes() {
        assert_eq!(outcome_of("201").status, Some(OutcomeStatus::Succeeded));
        assert_eq!(outcome_of("504").status, Some(OutcomeStatus::Unknown));
        assert_eq!(outcome_of("403").status, Some(OutcomeStatus::Failed));
        assert_eq!(outcome_of("timeout").reason.as_deref(), Some("timeout"));
        assert_eq!(outcome_of("STATUS_CODE_OK").status, Some(OutcomeStatus::Succeeded));
        assert_eq!(outcome_of("error").status, Some(OutcomeStatus::Unknown));
    }

    /// A 499 is the caller hanging up after the request may have been forwarded (it read as
    /// "rejected"); a server that never ran a request says so ("not executed": no effect,
    /// although the message says cancelled); a credentials refresh that timed out failed
    /// before any request (it read as a timeout of the call).
    #[test]
    fn regression_499_not_executed_and_credential_refresh_errors_read_as_what_they_are() {
        let o = outcome_of("499");
        assert_eq!(o.status, Some(OutcomeStatus::Unknown));
        let o = outcome_of("request cancelled by client before execution; not executed");
        assert_eq!((o.status, o.reason.as_deref()), (Some(OutcomeStatus::Failed), Some("not executed: no effect")));
        let o = outcome_of(
            "google.auth.exceptions.RefreshError: Failed to retrieve token: metadata server unavailable due to ReadTimeout",
        );
        assert_eq!(o.status, Some(OutcomeStatus::Failed));
        assert_eq!(outcome_of("httpx.ReadTimeout: timed out").status, Some(OutcomeStatus::Unknown));
    }
}
