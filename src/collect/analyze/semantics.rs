//! What a field means: the semantics table of `docs/collector.md` ("Field semantics").
//!
//! Every field the collector reads is one of four things:
//!
//! * an **identifier** — one of the nine ([`IdentName`]): it names the incident;
//! * a **linking value** ([`LinkKey`]) — it joins records into one event or one hop of the
//!   chain (a tool call id, a request id, a deployment/CD run id, a source address…) but is
//!   not one of the nine;
//! * a **subject** — the end user or customer the agent acted *for* (`enduser.id`,
//!   `user_id`, `customer_id`…). A subject is reported as such ("acted for cus_…"), never as
//!   a principal: the principal is who the action ran *as*;
//! * **descriptive** — everything else.
//!
//! Keys are compared in a normalised form ([`norm_key`]: camelCase split, lower case, `.`,
//! `-`, `:`, `/` and spaces as `_`), so `traceId`, `trace.id`, `trace-id` and `TRACE_ID` are
//! one name. A generic leaf (`id`, `name`, `key`, `revision`, `value`) is read with its parent
//! (`{"trace":{"id":…}}` is `trace_id`). After the exact names, **suffix rules** recognise
//! vendor-prefixed keys (`acme.change.id` → `acme_change_id` ends in `_change_id`). Format
//! readers override the table where a format gives a name another meaning (LangSmith's
//! `session_id` is its tracing project, the Agents SDK's `group_id` is the conversation).

use crate::bundle::manifest::IdentName;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A linking value that is not one of the nine identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LinkKey {
    /// A tool call id (`gen_ai.tool.call.id`, `call_id`, `tool_call_id`): one attempt.
    CallId,
    /// A span id: the span, and the log records that name it.
    SpanId,
    /// A parent span id (a server span's parent is the client span that called it).
    ParentSpanId,
    /// A request id (`x-request-id`, CloudTrail `requestID`): one HTTP/API request.
    RequestId,
    /// An OPA decision id.
    DecisionId,
    /// A memory record id.
    MemoryId,
    /// The deployment (CD run, release) that served the incident (`deployment.id`).
    DeploymentId,
    /// A network address the agent's requests came from (`client.address`,
    /// `sourceIPAddress`, `x_forwarded_for`): joins proxy logs that carry no id.
    SourceAddress,
    /// The agent's display name (`gen_ai.agent.name`): an agent id only when no id is given.
    AgentName,
    /// The workload revision that served it (a Kubernetes ReplicaSet, named from the pod's
    /// name): the deployment when no deployment id is recorded.
    Workload,
    /// The object that owns a workload (a Kubernetes `ownerReferences` name: the Rollout or
    /// Deployment of a ReplicaSet): its other records are the deployment's history.
    Owner,
    /// An audit or event id (CloudTrail `eventID`, Kubernetes `auditID`): one recorded
    /// event, whatever stages or copies of it were logged. Set by those formats only.
    EventId,
    /// A release rolled out to a target (`<release>/<target>`, Google Cloud Deploy): an
    /// application log names the release and target its pod was launched by (the pod
    /// labels Cloud Deploy sets), a rollout record names both; that rollout is the
    /// deployment that served the log. Set by the `gcp_logging` and `cloud_deploy` formats.
    ReleaseTarget,
}

impl LinkKey {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKey::CallId => "call_id",
            LinkKey::SpanId => "span_id",
            LinkKey::ParentSpanId => "parent_span_id",
            LinkKey::RequestId => "request_id",
            LinkKey::DecisionId => "decision_id",
            LinkKey::MemoryId => "memory_id",
            LinkKey::DeploymentId => "deployment_id",
            LinkKey::SourceAddress => "source_address",
            LinkKey::AgentName => "agent_name",
            LinkKey::EventId => "event_id",
            LinkKey::Workload => "workload",
            LinkKey::Owner => "owner",
            LinkKey::ReleaseTarget => "release_target",
        }
    }
}

/// What a field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Role {
    /// One of the nine identifiers.
    Ident(IdentName),
    /// A linking value.
    Link(LinkKey),
    /// The end user / customer the agent acted for.
    Subject,
    /// A W3C `traceparent` (decoded into a trace id and a parent span id).
    TraceParent,
    /// W3C `baggage` / `tracestate`: a `k=v` list whose keys are classified in turn.
    Baggage,
    /// A bare `wave` or a `…_wave` key: the rollout wave in a deployment record (one naming a
    /// change, a deployment or its owner, or describing a deploy, change, rollout or cluster
    /// change), nothing otherwise (`heat_wave`, a survey's `wave`).
    Wave,
    /// A `…_deployment` key (`github_deployment`, `gitlab_deployment`): a deployment id when
    /// its value is a number (a CD system's deployment id, as GitHub and GitLab number
    /// them), nothing otherwise (`kube_deployment: api` names a Kubernetes Deployment, which
    /// every release of it shares).
    NumberedDeployment,
}

/// Generic leaf names that are read together with their parent key.
const GENERIC_LEAVES: [&str; 6] = ["id", "name", "key", "revision", "value", "uuid"];

/// Normalises a key: camelCase is split (`traceId` → `trace_id`, `traceID` → `trace_id`),
/// ASCII is lower-cased, and `.`, `-`, `:`, `/`, space become `_` (runs collapse). Keys
/// longer than 256 bytes are not identifiers and normalise to an empty string.
pub(crate) fn norm_key(key: &str) -> Cow<'_, str> {
    if key.len() > 256 {
        return Cow::Borrowed("");
    }
    let simple = key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if simple {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len() + 4);
    let chars: Vec<char> = key.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
            let next = chars.get(i + 1).copied();
            // A boundary before an upper-case letter that follows a lower-case letter or a
            // digit (`traceId`), or that starts a word after an acronym (`HTTPRequest`).
            let boundary = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_ascii_uppercase()) && next.is_some_and(|n| n.is_ascii_lowercase()));
            if boundary && !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if matches!(c, '.' | '-' | ':' | '/' | ' ' | '_' | '@' | '$') {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    Cow::Owned(out)
}

/// The meaning of a field from its (normalised) name, by the exact table then the suffix
/// rules. `None`: descriptive.
pub(crate) fn role_of_name(n: &str) -> Option<Role> {
    use IdentName as I;
    use LinkKey as L;
    if transport_session(n) {
        return None;
    }
    let r = match n {
        // Identifiers.
        "trace_id" | "traceid" | "otel_trace_id" | "trace" => Role::Ident(I::TraceId),
        "session_id"
        | "sessionid"
        | "conversation_id"
        | "conversation"
        | "gen_ai_conversation_id"
        | "thread_id"
        | "x_session_id"
        | "langfuse_session_id"
        | "langsmith_trace_session_id"
        | "chat_session_id" => Role::Ident(I::SessionId),
        "agent_id" | "gen_ai_agent_id" | "agentid" => Role::Ident(I::AgentId),
        "tool_principal"
        | "principal"
        | "service_account"
        | "serviceaccount"
        | "service_account_name"
        | "run_as"
        | "acting_principal"
        | "tool_service_account"
        | "principal_id"
        | "authorizer_principal_id" => Role::Ident(I::ToolPrincipal),
        "approval_id" | "approvalid" | "approval_request_id" | "approval_key" => Role::Ident(I::ApprovalId),
        "bundle_id"
        | "bundle_revision"
        | "policy_bundle_revision"
        | "policy_revision"
        | "policy_bundle"
        | "config_bundle"
        | "config_bundle_revision"
        | "opa_bundle_revision"
        | "config_bundle_ref"
        | "policy_bundle_ref" => Role::Ident(I::BundleId),
        "change_id" | "changeid" | "vcs_change_id" | "change_request_id" | "change_request" => Role::Ident(I::ChangeId),
        "rollout_wave" | "deployment_rollout_wave" | "rollout_wave_id" => Role::Ident(I::RolloutWave),
        "wave" => Role::Wave,
        "idempotency_key"
        | "idempotency_token"
        | "idempotencykey"
        | "x_idempotency_key"
        | "idem_key"
        | "client_token"
        | "client_request_token"
        | "message_deduplication_id"
        | "deduplication_id"
        | "dedup_id"
        | "dedupe_id" => Role::Ident(I::IdempotencyKey),
        // Linking values.
        "call_id" | "tool_call_id" | "gen_ai_tool_call_id" | "function_call_id" | "callid" | "tool_use_id" => {
            Role::Link(L::CallId)
        }
        "span_id" | "spanid" => Role::Link(L::SpanId),
        "parent_span_id" | "parentspanid" | "parent_id_span" => Role::Link(L::ParentSpanId),
        "request_id" | "x_request_id" | "requestid" | "aws_request_id" => Role::Link(L::RequestId),
        "decision_id" | "decisionid" => Role::Link(L::DecisionId),
        "memory_id" | "memoryid" => Role::Link(L::MemoryId),
        "deployment_id" | "deploy_id" | "release_id" | "deployment_run_id" | "k8s_replicaset_name" => {
            Role::Link(L::DeploymentId)
        }
        "client_address"
        | "client_ip"
        | "source_ip_address"
        | "source_ip"
        | "source_ips"
        | "downstream_remote_address"
        | "x_forwarded_for"
        | "remote_addr"
        | "remote_address"
        | "network_peer_address"
        | "peer_address" => Role::Link(L::SourceAddress),
        "agent_name" | "gen_ai_agent_name" => Role::Link(L::AgentName),
        // Subjects: who the agent acted for.
        "enduser_id" | "enduser_pseudo_id" | "user_id" | "userid" | "customer_id" | "customerid" | "end_user"
        | "end_user_id" | "gen_ai_user_id" | "user_email" | "customer_email" | "enduser" => Role::Subject,
        // Datadog's standard user attribute (`usr.id`), and whom a request was made for
        // (`on_behalf_of`, `requested_for`, `on-behalf-of` in Kubernetes impersonation extras).
        "usr_id" | "on_behalf_of" | "requested_for" | "acting_for" | "customer_account" | "customer_account_id" => {
            Role::Subject
        }
        // Trace context headers.
        "traceparent" | "http_request_header_traceparent" => Role::TraceParent,
        "baggage" | "tracestate" | "http_request_header_baggage" => Role::Baggage,
        _ => return role_by_suffix(n),
    };
    Some(r)
}

/// The suffix rules (documented in `docs/collector.md`): vendor-prefixed names.
fn role_by_suffix(n: &str) -> Option<Role> {
    use IdentName as I;
    use LinkKey as L;
    // HTTP header attributes (`http.request.header.idempotency-key`): the header's name.
    for prefix in ["http_request_header_", "http_response_header_", "request_headers_", "headers_", "header_"] {
        if let Some(h) = n.strip_prefix(prefix) {
            return role_of_name(h);
        }
    }
    // A custom request header naming the tool call a request was made for
    // (`X-Larkspur-Tool-Call`, `x-acme-tool-call-id`): a call id. Only as a header (`x_…`): a
    // bare `last_tool_call` may hold a tool's name.
    if n.starts_with("x_") && (n.ends_with("_tool_call") || n.ends_with("_tool_call_id")) {
        return Some(Role::Link(L::CallId));
    }
    // A key naming what something replaced (`previous_deployment_id`, `old_bundle_revision`)
    // holds a prior value, not the incident's: descriptive.
    if superseded(n) {
        return None;
    }
    const RULES: [(&str, Role); 30] = [
        ("_trace_id", Role::Ident(I::TraceId)),
        ("_session_id", Role::Ident(I::SessionId)),
        ("_conversation_id", Role::Ident(I::SessionId)),
        ("_agent_id", Role::Ident(I::AgentId)),
        ("_tool_principal", Role::Ident(I::ToolPrincipal)),
        ("_service_account", Role::Ident(I::ToolPrincipal)),
        ("_approval_id", Role::Ident(I::ApprovalId)),
        ("_bundle_id", Role::Ident(I::BundleId)),
        ("_bundle_revision", Role::Ident(I::BundleId)),
        ("_config_bundle", Role::Ident(I::BundleId)),
        ("_policy_bundle", Role::Ident(I::BundleId)),
        ("_bundle_ref", Role::Ident(I::BundleId)),
        ("_rollout_wave_id", Role::Ident(I::RolloutWave)),
        ("_policy_revision", Role::Ident(I::BundleId)),
        ("_change_id", Role::Ident(I::ChangeId)),
        ("_rollout_wave", Role::Ident(I::RolloutWave)),
        ("_wave", Role::Wave),
        ("_idempotency_key", Role::Ident(I::IdempotencyKey)),
        ("_tool_call_id", Role::Link(L::CallId)),
        ("_request_id", Role::Link(L::RequestId)),
        ("_decision_id", Role::Link(L::DecisionId)),
        ("_memory_id", Role::Link(L::MemoryId)),
        ("_memory_ids", Role::Link(L::MemoryId)),
        // A memory system's operation id (`mem0.event_id`): one memory operation.
        ("mem0_event_id", Role::Link(L::EventId)),
        ("memory_event_id", Role::Link(L::EventId)),
        ("_deployment_id", Role::Link(L::DeploymentId)),
        ("_customer_id", Role::Subject),
        ("_on_behalf_of", Role::Subject),
        ("_requested_for", Role::Subject),
        ("_deployment", Role::NumberedDeployment),
    ];
    // Vendor trace ids of other id spaces are not W3C trace ids.
    if n.starts_with("dd_") || n.starts_with("datadog_") || n.contains("_dd_trace") {
        return None;
    }
    RULES.iter().find(|(suffix, _)| n.ends_with(suffix)).map(|(_, r)| *r)
}

/// A protocol's or a login's session (`mcp.session.id`, the `Mcp-Session-Id` header a server
/// assigns per connection; TLS, SSH, database, HTTP/browser sessions): not the agent's
/// conversation. An MCP server's session spans every conversation its client pod relays, so
/// following it as the incident's session pulls other conversations in.
pub(crate) fn transport_session(n: &str) -> bool {
    const PROTOCOLS: [&str; 14] = [
        "mcp",
        "tls",
        "ssl",
        "ssh",
        "db",
        "database",
        "http",
        "https",
        "grpc",
        "websocket",
        "ws",
        "browser",
        "login",
        "sso",
    ];
    let Some(head) = n.strip_suffix("session_id").or_else(|| n.strip_suffix("sessionid")) else { return false };
    let head = head.trim_end_matches('_');
    PROTOCOLS.iter().any(|p| head == *p || head.strip_suffix(p).is_some_and(|h| h.ends_with('_')))
        || matches!(n, "jsessionid" | "phpsessid")
}

/// Whether a key names what was in force before (`previous_opa_bundles`, `prev_wave`,
/// `old_revision`, `former_owner`): values under it are not the incident's identifiers.
pub(crate) fn superseded(key: &str) -> bool {
    let k = norm_key(key);
    // A bare segment (`config.prior.bundle_revision`, `{"before": …, "after": …}`) or a prefix.
    matches!(
        k.as_ref(),
        "previous" | "prev" | "old" | "former" | "prior" | "last_known" | "superseded" | "replaced" | "before"
    ) || ["previous", "prev_", "old_", "former_", "last_known_", "prior_", "superseded_", "replaced_"]
        .iter()
        .any(|p| k.starts_with(p))
}

/// The meaning of a field, from its key and its parent's key: the generic leaves (`id`,
/// `name`, …) are read together with their parent (`trace.id`, `agent.name`).
pub(crate) fn role_of(parent: Option<&str>, key: &str) -> Option<Role> {
    let k = norm_key(key);
    if k.is_empty() {
        return None;
    }
    if GENERIC_LEAVES.contains(&k.as_ref()) {
        let p = norm_key(parent?);
        if p.is_empty() {
            return None;
        }
        return role_of_name(&format!("{p}_{k}"));
    }
    role_of_name(&k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentName as I;

    #[test]
    fn keys_normalise() {
        assert_eq!(norm_key("traceId"), "trace_id");
        assert_eq!(norm_key("traceID"), "trace_id");
        assert_eq!(norm_key("trace.id"), "trace_id");
        assert_eq!(norm_key("Idempotency-Key"), "idempotency_key");
        assert_eq!(norm_key("HTTPRequestId"), "http_request_id");
        assert_eq!(norm_key("gen_ai.conversation.id"), "gen_ai_conversation_id");
        assert_eq!(norm_key("x-session-id"), "x_session_id");
        assert_eq!(norm_key("$schemaVersion"), "schema_version");
    }

    #[test]
    fn enduser_is_a_subject_and_deployment_id_a_link_not_an_identifier() {
        assert_eq!(role_of(None, "enduser.id"), Some(Role::Subject));
        assert_eq!(role_of(Some("enduser"), "id"), Some(Role::Subject));
        assert_eq!(role_of(None, "deployment.id"), Some(Role::Link(LinkKey::DeploymentId)));
        assert_eq!(role_of(None, "user_id"), Some(Role::Subject));
    }

    #[test]
    fn vendor_prefixed_keys_follow_the_suffix_rules() {
        assert_eq!(role_of(None, "acme.change.id"), Some(Role::Ident(I::ChangeId)));
        assert_eq!(role_of(None, "x.rollout.wave"), Some(Role::Ident(I::RolloutWave)));
        assert_eq!(role_of(None, "wave"), Some(Role::Wave));
        assert_eq!(role_of(None, "heat_wave"), Some(Role::Wave));
        assert_eq!(role_of(None, "acme.rollout.wave"), Some(Role::Ident(I::RolloutWave)));
        assert_eq!(role_of(None, "deployment.bundle_id"), Some(Role::Ident(I::BundleId)));
        assert_eq!(role_of(None, "http.request.header.idempotency-key"), Some(Role::Ident(I::IdempotencyKey)));
        assert_eq!(role_of(None, "http.request.header.x-request-id"), Some(Role::Link(LinkKey::RequestId)));
        assert_eq!(role_of(None, "dd.trace_id"), None);
        assert_eq!(role_of(None, "acme_customer_id"), Some(Role::Subject));
        assert_eq!(role_of(Some("trace"), "id"), Some(Role::Ident(I::TraceId)));
        assert_eq!(role_of(None, "id"), None);
        assert_eq!(role_of(None, "message"), None);
    }

    #[test]
    fn whom_a_request_was_for_is_a_subject_and_a_numbered_deployment_a_deployment() {
        for k in ["usr.id", "principal.attr.on_behalf_of", "brightwater.example.com/on-behalf-of", "requested_for"] {
            assert_eq!(role_of(None, k), Some(Role::Subject), "{k}");
        }
        assert_eq!(role_of(Some("usr"), "id"), Some(Role::Subject));
        assert_eq!(role_of(None, "github_deployment"), Some(Role::NumberedDeployment));
        assert_eq!(role_of(None, "kube_deployment"), Some(Role::NumberedDeployment));
        // Who asked (an OPA `requested_by` is the caller's address) is not whom it was for.
        assert_eq!(role_of(None, "requested_by"), None);
    }

    #[test]
    fn keys_naming_a_prior_value_are_descriptive() {
        assert_eq!(role_of(None, "previous_deployment_id"), None);
        assert_eq!(role_of(None, "prev_change_id"), None);
        assert_eq!(role_of(None, "old_bundle_revision"), None);
        assert_eq!(role_of(None, "deployment_id"), Some(Role::Link(LinkKey::DeploymentId)));
    }

    #[test]
    fn a_protocol_session_is_not_the_agent_session() {
        for k in
            ["mcp.session.id", "Mcp-Session-Id", "http.request.header.mcp-session-id", "tls.session_id", "JSESSIONID"]
        {
            assert_eq!(role_of(None, k), None, "{k}");
        }
        assert_eq!(role_of(None, "agent.session_id"), Some(Role::Ident(I::SessionId)));
        assert_eq!(role_of(None, "gen_ai.conversation.id"), Some(Role::Ident(I::SessionId)));
    }

    #[test]
    fn values_under_a_superseded_segment_are_not_identifiers() {
        for k in ["prior", "previous", "before", "prior_bundle_revision", "old_change_id"] {
            assert!(superseded(k), "{k}");
        }
        for k in ["bundle_revision", "priority", "oldest", "beforehand"] {
            assert!(!superseded(k), "{k}");
        }
    }

    #[test]
    fn a_bare_conversation_key_is_the_session() {
        // Loki logfmt lines (`conversation=conv_…`), app RunState contexts.
        assert_eq!(role_of(None, "conversation"), Some(Role::Ident(I::SessionId)));
        assert_eq!(role_of(Some("conversation"), "id"), Some(Role::Ident(I::SessionId)));
    }
}
