//! Incidents in export shapes no other test uses (`fixtures/unseen/`, ground truth in each
//! `<name>.truth.md`): every identifier the analysis gives a value must be the true one, and the
//! traps that once produced wrong values (red team, 2026-12-07) must stay defused.

use crate::collector_util::*;
use custody::collect::analysis::{EventKind, IdentStatus, OutcomeStatus};
use custody::collect::analyze::IdentName;

/// `preserve` of one `fixtures/unseen/` folder, seeded as the alert gave it.
fn preserved(folder: &str, traceparent: &str) -> Preserved {
    let root = repo().join("fixtures/unseen").join(folder);
    let files: Vec<(std::path::PathBuf, String)> = walk(&root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under root").display().to_string();
            (p, rel)
        })
        .collect();
    let list: Vec<(std::path::PathBuf, &str)> = files.iter().map(|(p, r)| (p.clone(), r.as_str())).collect();
    preserve_dir(&IncidentDir::of(&list), &["--trace-id", traceparent])
}

/// Every value anywhere in the analysis document, as text.
fn mentions(p: &Preserved, value: &str) -> bool {
    serde_json::to_string(p.a()).expect("analysis serializes").contains(value)
}

#[test]
fn regression_unseen_invoice_credit_claude_identifiers_are_true_or_unknown() {
    let p = preserved("invoice-credit-claude", "00-a3c47e91d2b84f60915e7c3d08b2f6a4-7c1e5a9d3b2f4e60-01");
    let a = p.a();
    let found = |n| ident_value(a, n);
    assert_eq!(found(IdentName::TraceId), (IdentStatus::Given, Some("a3c47e91d2b84f60915e7c3d08b2f6a4")));
    // The Vault HMAC of the MCP server's token was followed as an idempotency key into the
    // noise session: session, approval and deployment all went to CONFLICT.
    assert_eq!(found(IdentName::SessionId), (IdentStatus::Found, Some("5b1f0c2e-8a47-4d93-b6e1-3c9a7f20d814")));
    assert_eq!(found(IdentName::ApprovalId), (IdentStatus::Found, Some("APR-20931")));
    // nginx's `-` was a second idempotency key.
    assert_eq!(found(IdentName::IdempotencyKey), (IdentStatus::Found, Some("crd-7f21c9a04e3b")));
    // Filebeat's `agent.id` was a second agent id.
    assert_eq!(found(IdentName::AgentId), (IdentStatus::Found, Some("invoice-agent")));
    assert_eq!(found(IdentName::BundleId), (IdentStatus::Found, Some("ipol-r42-41d0aa7")));
    assert_eq!(found(IdentName::ChangeId), (IdentStatus::Found, Some("CHG-7731")));
    // Tolerated by the truth: a conflict naming the MCP server's Vault login beside the real
    // principal. `payments-mcp` alone would be wrong.
    let tp = found(IdentName::ToolPrincipal);
    assert!(
        tp == (IdentStatus::Found, Some("svc-invoice-agent@lumen-payments")) || tp.0 == IdentStatus::Conflict,
        "{tp:?}"
    );
    // The wave is only in GitLab's environment name (`production/wave-2`) of deployment 88231,
    // a 5-digit id once too short to follow (not wave 1 or 3: the deployments before and after).
    assert_eq!(found(IdentName::RolloutWave), (IdentStatus::Found, Some("2")));
    // The noise session, its trace, its approval and the Filebeat id are nowhere.
    for noise in ["e0c39a77-41d2-4b8e-9f06-7a2c5d1e3b94", "1f0e6b2c9d8a47e3b5c4a2918f7d6e05", "APR-20925"] {
        assert!(!mentions(&p, &format!("\"{noise}\"")), "{noise} is in the analysis");
    }
    let agents = &ident(a, IdentName::AgentId).values;
    assert!(agents.iter().all(|v| v.value != "3f5d2a8e-6c41-4b97-a0d2-8e1f7c3b5a96"), "{agents:?}");
    // Splunk HEC's `event` is the record (the approval of APR-20931 was missed inside it), and
    // nginx's JSON log names its variables (`request_method`, `host`): three egress requests.
    assert_eq!(count(a, EventKind::ApprovalRequest), 1, "{:?}", counts(a));
    assert_eq!(count(a, EventKind::ApprovalDecision), 1, "{:?}", counts(a));
    let egress = events(a, EventKind::EgressRequest);
    let statuses: Vec<_> = egress.iter().filter_map(|e| e.outcome.as_ref()).flat_map(|o| o.codes.clone()).collect();
    assert_eq!(egress.len(), 3, "{:?}", counts(a));
    assert!(egress.iter().all(|e| e.target.as_deref() == Some("api.ledgerly.example")), "{egress:?}");
    for code in ["504", "201", "499"] {
        assert!(statuses.iter().any(|c| c == code), "{code} not in {statuses:?}");
    }
}

/// Red team, 2026-12-07: the Claude Code transcript was read as generic JSON, so its four tool
/// calls (`tool_use` blocks, answered by `tool_result` blocks of later lines) were "no tool call
/// found" and the side effect "no write understood". One response split over several lines
/// (one per content block) is one model call.
#[test]
fn regression_unseen_invoice_claude_transcript_tool_calls_and_outcomes() {
    let p = preserved("invoice-credit-claude", "00-a3c47e91d2b84f60915e7c3d08b2f6a4-7c1e5a9d3b2f4e60-01");
    let a = p.a();
    assert_eq!(count(a, EventKind::ToolCall), 4, "{:?}", counts(a));
    assert_eq!(count(a, EventKind::ModelCall), 4, "{:?}", counts(a));
    let calls = events(a, EventKind::ToolCall);
    let by = |tool: &str| calls.iter().filter(|e| e.target.as_deref() == Some(tool)).collect::<Vec<_>>();
    assert_eq!(outcome(by("lookup_account")[0]), Some(OutcomeStatus::Succeeded));
    // The last call has a tool_use and no tool_result: unknown, never succeeded.
    assert_eq!(outcome(by("void_invoice")[0]), Some(OutcomeStatus::Unknown));
    let credit = by("issue_credit");
    assert_eq!(credit.len(), 2, "{credit:?}");
    // Attempt 1: "MCP error -32001: Request timed out" (unknown); attempt 2: the tool says it
    // replayed the stored result (a tool's message, not the server's answer: attempt 1 stays
    // unknown).
    assert_eq!(outcome(credit[0]), Some(OutcomeStatus::Unknown));
    assert!(credit[1].outcome.as_ref().is_some_and(|o| o.replayed), "{:?}", credit[1]);
    let action = a.actions.iter().find(|x| x.target.as_deref() == Some("issue_credit")).expect("action");
    assert_eq!(action.idempotency_key.as_deref(), Some("crd-7f21c9a04e3b"));
    assert_eq!(action.attempts.len(), 2, "{action:?}");
    assert!(!action.duplicate, "{action:?}");
    // Filebeat's lines of the agent's own tool log (`labels.tool_name`, `labels.tool_use_id`,
    // `event.outcome`) are the same calls, merged by the call id, not more calls.
    assert!(
        by("lookup_account")[0].citations.iter().any(|c| c.path.starts_with("elastic-export/")),
        "{:?}",
        by("lookup_account")[0]
    );
    // Anthropic's API request id is no request of the agent's: it joins no proxy line.
    assert!(calls.iter().all(|e| id_of(e, "request_id").is_none()), "{calls:?}");
    // The noise session's transcript (another file) is not the incident's.
    assert!(!mentions(&p, "toolu_01N8aQ2wE4rT6yU8iO0pA2sD"));
}

/// Both App Insights shapes: the columnar query result (`tables[].columns`/`rows`, once one
/// record for every row) and Log Analytics row objects.
#[test]
fn regression_unseen_checkout_app_insights_session_is_the_thread_not_the_browser() {
    for folder in ["checkout-scale-to-zero", "checkout-scale-to-zero-rows"] {
        let p = preserved(folder, "00-4e8d2b6f0a1c47d9b3e5f7a9c1d3e5f7-9a8b7c6d5e4f3a21-01");
        let a = p.a();
        let found = |n| ident_value(a, n);
        assert_eq!(
            found(IdentName::SessionId),
            (IdentStatus::Found, Some("thr_01JF3K8Q2W7E9R4T6Y1U3I5O7P")),
            "{folder}"
        );
        assert_eq!(found(IdentName::AgentId), (IdentStatus::Found, Some("ops-scaler")), "{folder}");
        assert_eq!(found(IdentName::ToolPrincipal), (IdentStatus::Found, Some("sp-ops-scaler-prod")), "{folder}");
        assert_eq!(found(IdentName::ApprovalId), (IdentStatus::Found, Some("ap_9f31c2")), "{folder}");
        assert_eq!(
            found(IdentName::IdempotencyKey),
            (IdentStatus::Found, Some("8f14e45f-ceea-467a-9af0-2c1d3e5f7a9b")),
            "{folder}"
        );
        // The browser session and the other run's thread are not the incident's.
        assert!(!mentions(&p, "\"q3Fz8Lk2\""), "{folder}: the browser session is in the analysis");
        let sessions = &ident(a, IdentName::SessionId).values;
        assert!(sessions.iter().all(|v| v.value != "thr_01JF3KB7M4N2C9X5Z8V1L6K3J0"), "{folder}: {sessions:?}");
        // In the Argo Rollout's annotations, reached through the pod that served the trace
        // (App Insights `cloud_RoleInstance`) and the Rollout's current ReplicaSet (once
        // unknown: nothing tied the Rollout object to the trace).
        for (n, truth) in [
            (IdentName::BundleId, "opsguard-2026.12.07-r3"),
            (IdentName::ChangeId, "CR-4471"),
            (IdentName::RolloutWave, "2"),
        ] {
            assert_eq!(found(n), (IdentStatus::Found, Some(truth)), "{folder} {n}");
        }
        // The stable ReplicaSet's pods run the previous revision: never the deployment.
        assert!(!mentions(&p, "ops-scaler-5d4c3b2a19"), "{folder}");
    }
}

/// Red team, 2026-12-07: the retried `scale_deployment` (LangGraph's RetryPolicy re-ran the
/// tool node under the model's call id) was one tool call, not two: Application Insights rows
/// carry their own span id (`id`/`Id`) and their parent's (`operation_ParentId`/`ParentId`),
/// and two spans of one call id are two executions. The rows' `resultCode`/`success` are the
/// outcome (the PagerDuty call was "unknown, no response recorded" beside a 202), and the
/// HTTP dependency to an outside host is the egress request of the call it was made in.
#[test]
fn regression_unseen_checkout_retried_tool_node_is_two_attempts_with_their_outcomes() {
    for folder in ["checkout-scale-to-zero", "checkout-scale-to-zero-rows"] {
        let p = preserved(folder, "00-4e8d2b6f0a1c47d9b3e5f7a9c1d3e5f7-9a8b7c6d5e4f3a21-01");
        let a = p.a();
        assert_eq!(count(a, EventKind::ToolCall), 4, "{folder}: {:?}", counts(a));
        assert_eq!(count(a, EventKind::EgressRequest), 1, "{folder}: {:?}", counts(a));
        let calls = events(a, EventKind::ToolCall);
        let scale: Vec<_> = calls.iter().filter(|e| e.target.as_deref() == Some("scale_deployment")).collect();
        assert_eq!(scale.len(), 2, "{folder}: {scale:?}");
        // Attempt 1 was cancelled by the client after 100 s (it took effect, which only the
        // ops-api's own event says); attempt 2 got 409. Neither is known from the call's rows.
        assert!(scale.iter().all(|e| outcome(e) == Some(OutcomeStatus::Unknown)), "{folder}: {scale:?}");
        let pd = calls.iter().find(|e| e.target.as_deref() == Some("create_pagerduty_incident")).expect("pagerduty");
        assert_eq!(outcome(pd), Some(OutcomeStatus::Succeeded), "{folder}: {pd:?}");
        let egress = events(a, EventKind::EgressRequest);
        assert_eq!(egress[0].target.as_deref(), Some("events.pagerduty.com"), "{folder}: {egress:?}");
        assert_eq!(outcome(egress[0]), Some(OutcomeStatus::Succeeded), "{folder}: {egress:?}");
        // The internal ops-api calls are parts of the tool calls, not egress.
        assert!(!mentions(&p, "\"target\":\"ops-api.shop.svc.cluster.local\""), "{folder}");
        // One logical action (the idempotency key), two attempts, no duplicate claimed.
        let action = a.actions.iter().find(|x| x.target.as_deref() == Some("scale_deployment")).expect("action");
        assert_eq!(action.attempts.len(), 2, "{folder}: {action:?}");
        assert!(!action.duplicate, "{folder}: {action:?}");
    }
}

/// A 3-5 digit deployment id (GitLab's `88231`) is the deployment hop only where a record names
/// it as a deployment id: a record holding the same digits elsewhere (an amount, a port, a
/// count) is not the deployment's, and its change id is not the incident's.
#[test]
fn regression_short_deployment_id_reaches_only_deployment_id_fields() {
    let dir = IncidentDir::new();
    dir.write(
        "app/agent.jsonl",
        concat!(
            r#"{"ts":"2026-12-07T14:02:00Z","trace_id":"a3c47e91d2b84f60915e7c3d08b2f6a4","session_id":"sess-5b1f0c2e8a47","agent_id":"invoice-agent","gitlab_deployment_id":"88231","msg":"tool call started"}"#,
            "\n"
        ),
    );
    dir.write(
        "gitlab/deployment-hooks.jsonl",
        concat!(
            r#"{"object_kind":"deployment","status":"success","deployment_id":88231,"environment":"production/wave-2","commit_title":"Raise the credit limit","change_id":"CHG-7731"}"#,
            "\n",
            r#"{"object_kind":"deployment","status":"success","deployment_id":88240,"environment":"production/wave-3","change_id":"CHG-7740"}"#,
            "\n"
        ),
    );
    // The same digits as an amount in a record that also names a change and a run.
    dir.write(
        "billing/ledger.jsonl",
        concat!(
            r#"{"ts":"2026-12-07T14:05:00Z","amount_cents":88231,"change_id":"CHG-9999","run_id":"run-7f3c2a91","service":"billing"}"#,
            "\n"
        ),
    );
    let p = preserve_dir(&dir, &["--trace-id", "a3c47e91d2b84f60915e7c3d08b2f6a4"]);
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::ChangeId), (IdentStatus::Found, Some("CHG-7731")));
    assert_eq!(ident_value(a, IdentName::RolloutWave), (IdentStatus::Found, Some("2")));
    assert!(!mentions(&p, "CHG-9999"), "a record merely holding the digits joined the chain");
    assert!(!mentions(&p, "CHG-7740"), "the next wave's deployment joined the chain");
}
