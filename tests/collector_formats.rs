//! Every input format, on its fixtures in `fixtures/formats/<format>/` (each folder's
//! README lists the format's quirks and where each value lives): detection by content, and
//! through `custody preserve` the events, identifiers, subjects and details each file must
//! yield. Values asserted here were read in the fixture files; the tests name their inputs.
// Tuples of expected values read better than one-off structs here.
#![allow(clippy::type_complexity)]

use crate::collector_util::*;
use custody::collect::analysis::{EventKind, HopStatus, IdentStatus, MergeRule, NodeName, OutcomeStatus, Tie, Zone};
use custody::collect::analyze::{IdentName, Layout};

const TRACE: &str = FORMATS_TRACE;
const SESSION: &str = "conv_6f2d91c4a7e8";
const CUSTOMER: &str = "cus_Q3x9LmT2vK";
const REFUND_CALL: &str = "call_R8mX2qLp5vN1tZ7w";
const LOOKUP_CALL: &str = "call_K4bH9sDf2gJ6aQ3e";
const IDEM: &str = "idem-2c7e9a41f0b35d86";
const APPROVAL: &str = "apr-3f8a61d2e9b4";
const ATTEMPT_1: &str = "6f1c2a9e-3b4d-4e8f-9a0b-1c2d3e4f5a6b";
const ATTEMPT_2: &str = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b";

/// `preserve` of the fixture files given as (folder/file, path in the incident directory).
fn run(files: &[(&str, &str)], args: &[&str]) -> (IncidentDir, Preserved) {
    let list: Vec<(std::path::PathBuf, &str)> = files.iter().map(|(f, to)| (format_fixture(f), *to)).collect();
    let dir = IncidentDir::of(&list);
    let p = preserve_dir(&dir, args);
    (dir, p)
}

/// One fixture file under a folder named after no evidence kind (its kind must come from its
/// content), searched from the scenario's trace id.
fn one(file: &str) -> Preserved {
    let name = file.rsplit('/').next().expect("file name");
    run(&[(file, &format!("evidence/{name}"))], &["--trace-id", TRACE]).1
}

fn one_with(file: &str, args: &[&str]) -> Preserved {
    let name = file.rsplit('/').next().expect("file name");
    run(&[(file, &format!("evidence/{name}"))], args).1
}

fn subjects(p: &Preserved) -> Vec<&str> {
    p.a().subjects.iter().map(|s| s.value.as_str()).collect()
}

/// Every fixture file is detected as its format by content, scans without a problem and
/// yields records; and in an incident directory whose folders are named after the source
/// systems, each file's evidence kind comes from its content.
#[test]
fn every_format_fixture_is_detected_by_its_content() {
    let table: [(&str, &str, &str); 57] = [
        ("agents-runstate/js-pending-pretty.json", "agents_run_state", "approvals"),
        ("agents-runstate/python-decided-2026-11-21T140341Z.json", "agents_run_state", "approvals"),
        ("agents-runstate/python-pending-2026-11-21T140215Z.json", "agents_run_state", "approvals"),
        ("argo/argo-rollouts-controller.jsonl", "argo", "deploy"),
        ("argo/argocd-application-controller.jsonl", "argo", "deploy"),
        ("argo/argocd-server.jsonl", "argo", "deploy"),
        ("bot-framework/ops-approvals-bot-activity-20261214.jsonl", "bot_framework", "approvals"),
        ("cd-pipeline/agents-deploy.jsonl", "cd_pipeline", "deploy"),
        ("cerbos/cerbos-audit-decisions.log", "cerbos", "policy"),
        ("claude-code/7d2f0b64-1c3e-4a59-9b8d-2e6f4a1c0d37.jsonl", "claude_transcript", "traces"),
        ("claude-code/agent-sdk-stream.jsonl", "claude_transcript", "traces"),
        ("cloudtrail/123456789012_CloudTrail_us-east-1_20261121T1345Z_Qm9XpL2vN7cR4tYw.json.gz", "cloudtrail", "cloud"),
        ("cloudtrail/123456789012_CloudTrail_us-east-1_20261121T1405Z_kT3vQ9mZ2xR7pL4w.json.gz", "cloudtrail", "cloud"),
        ("cloud-deploy/releases.json", "cloud_deploy", "deploy"),
        ("cloud-deploy/rollouts.json", "cloud_deploy", "deploy"),
        ("cloud-deploy/targets.json", "cloud_deploy", "deploy"),
        ("cloudwatch-logs/filter-log-events.json", "cloudwatch_logs", "logs"),
        ("cloudwatch-logs/loki-query-range.json", "loki", "logs"),
        ("datadog-logs/logs-events-20261214T1735Z-1805Z.page-2.json", "datadog_logs", "logs"),
        ("envoy/envoy-default-format.log", "envoy_text", "egress"),
        ("envoy/istio-proxy-json.log", "envoy_json", "egress"),
        ("envoy/istio-proxy-text.log", "istio_text", "egress"),
        ("gcp-audit/cloudaudit-20261121T1400Z.json", "gcp_audit", "cloud"),
        ("gcp-logging/billing-agent-gke-20261121T1400Z.json", "gcp_logging", "logs"),
        ("gcp-logging/requests_2026-11-21_14-00-00_14-59-59_S0.json", "gcp_logging", "logs"),
        (
            "github-deployments/repos-brightwater-oncall-copilot-deployments-1874392051-statuses.json",
            "github_deployments",
            "deploy",
        ),
        ("github-deployments/repos-brightwater-oncall-copilot-deployments.json", "github_deployments", "deploy"),
        ("k8s-audit/audit.log", "k8s_audit", "cluster"),
        ("jira-sm/request-FIN-2291-approval.json", "jira_approvals", "approvals"),
        ("kong/credit-replay.json.log", "kong", "egress"),
        ("kong/file-log.json.log", "kong", "egress"),
        ("langfuse/get-trace-full.json", "langfuse", "traces"),
        ("langfuse/list-traces-by-session.json", "langfuse", "traces"),
        ("langsmith/list-runs.jsonl", "langsmith", "traces"),
        ("langsmith/read-run-tree.json", "langsmith", "traces"),
        ("langsmith/retried-tool-node.jsonl", "langsmith", "traces"),
        ("mem0/add-results.jsonl", "mem0", "memory"),
        ("mem0/get-all.json", "mem0", "memory"),
        ("mem0/history-2f9a7c31-0b8e-4d65-a1f4-7e3c9d2b6a05.json", "mem0", "memory"),
        ("openai-agents-tracing/ingest-payload-run1.json", "agents_tracing", "traces"),
        ("openai-agents-tracing/processor-export-run2.jsonl", "agents_tracing", "traces"),
        ("otlp/file-exporter-logs.jsonl", "otlp", "traces"),
        ("otlp/protojson-dump-base64-ids.json", "otlp", "traces"),
        ("otlp/traces-agent-run.otlp.json", "otlp", "traces"),
        ("permit/audit_logs-larkspur-prod-20261216T1400-1430.json", "opa", "policy"),
        ("servicenow/sc_req_item-RITM0041873.json", "servicenow", "approvals"),
        ("servicenow/sysapproval_approver-RITM0041873.json", "servicenow", "approvals"),
        ("slack-block-actions/interactivity-post-body.txt", "slack_block_actions", "approvals"),
        ("slack-block-actions/received-payloads.jsonl", "slack_block_actions", "approvals"),
        ("spinnaker/billingagent-executions.json", "spinnaker", "deploy"),
        ("squid/access-combined.log", "combined_log", "egress"),
        ("squid/access.log", "squid", "egress"),
        ("temporal/history-short-enums-notify.json", "temporal", "logs"),
        ("temporal/workflow-show-refund-idem-2c7e9a41f0b35d86.json", "temporal", "logs"),
        ("traefik/access.log", "traefik", "egress"),
        ("vector-store/chroma-collection-get.json", "vector_store", "memory"),
        ("vector-store/qdrant-scroll-points.json", "vector_store", "memory"),
    ];
    // The table covers every fixture file.
    let root = repo().join("fixtures/formats");
    let mut on_disk: Vec<String> = walk(&root)
        .into_iter()
        .map(|p| p.strip_prefix(&root).expect("under root").display().to_string())
        .filter(|p| !p.ends_with("README.md"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = table.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every file of fixtures/formats is in this table");

    let dir = IncidentDir::new();
    for (file, format, _) in table {
        let path = format_fixture(file);
        assert_eq!(detect_file(&path).name(), format, "{file}");
        let (_, records, summary) = scan_file(&path);
        assert!(!records.is_empty(), "{file}: no record");
        let bad: Vec<_> = records.iter().filter_map(|r| r.problem.clone()).collect();
        assert!(bad.is_empty(), "{file}: {bad:?}");
        assert_ne!(summary.layout, Layout::None, "{file}");
        dir.copy(&path, file);
    }
    // Folders named after the source systems, searched from the trace id.
    let p = preserve_dir(&dir, &["--trace-id", TRACE]);
    for (file, format, kind) in table {
        let s = p.a().sources.iter().find(|s| s.path == file).unwrap_or_else(|| panic!("{file} not in sources"));
        assert_eq!((s.format.as_str(), s.kind.as_str(), s.kind_origin.as_str()), (format, kind, "content"), "{file}");
        assert_eq!(s.not_analysed, None, "{file}");
        assert_eq!(s.problems, 0, "{file}");
    }
}

// ---- OTLP ----

/// The agent's trace: GenAI spans are tool calls, model calls and memory operations; HTTP
/// CLIENT spans are egress requests with the header arrays read; `enduser.id` is a subject,
/// `deployment.id` a deployment, neither a principal nor a bundle.
#[test]
fn otlp_traces_yield_typed_events_and_give_each_field_its_meaning() {
    let p = one("otlp/traces-agent-run.otlp.json");
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident_value(a, IdentName::AgentId), (IdentStatus::Found, Some("billing-agent")));
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some(APPROVAL)));
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some(IDEM)));
    // enduser.id is who the agent acted for, not whom the tools ran as.
    assert_eq!(subjects(&p), [CUSTOMER]);
    assert_eq!(a.subjects[0].fields, ["attributes.enduser.id"]);
    assert_eq!(ident_value(a, IdentName::ToolPrincipal), (IdentStatus::Unknown, None));
    // deployment.id is the CD run: the chain's deployment, not the policy bundle.
    assert_eq!(ident_value(a, IdentName::BundleId), (IdentStatus::Unknown, None));
    let dep = a.chain.nodes.iter().find(|n| n.name == NodeName::Deployment).expect("deployment node");
    assert_eq!(dep.value.as_deref(), Some("deploy-run-7741903"));
    assert_eq!(
        counts(a).into_iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>(),
        [("tool_call", 2), ("egress_request", 2), ("memory_read", 1), ("memory_write", 1), ("model_call", 2)]
    );
    let tools: Vec<(Option<&str>, Option<&str>)> =
        events(a, EventKind::ToolCall).iter().map(|e| (e.target.as_deref(), id_of(e, "call_id"))).collect();
    assert_eq!(tools, [(Some("lookup_invoice"), Some(LOOKUP_CALL)), (Some("issue_refund"), Some(REFUND_CALL))]);
    let refund = events(a, EventKind::ToolCall)[1];
    assert_eq!(
        (start(refund), end(refund)),
        (Some("2026-11-21T14:02:14.902550Z"), Some("2026-11-21T14:04:14.377120Z"))
    );
    assert_eq!(id_of(refund, "idempotency_key"), Some(IDEM), "read from the JSON string gen_ai.tool.call.arguments");
    assert_eq!(id_of(refund, "approval_id"), Some(APPROVAL), "from the span event approval.requested");
    assert_eq!(refund.citations[0].span_id.as_deref(), Some("9d8c7b6a5f4e3d21"));
    assert_eq!(refund.citations[0].item, Some(5), "the 6th span of the export");
    // The two HTTP attempts, their request ids from the header arrays, 504 then 201.
    let egress = events(a, EventKind::EgressRequest);
    let got: Vec<_> = egress
        .iter()
        .map(|e| {
            (
                e.target.as_deref(),
                e.operation.as_deref(),
                id_of(e, "request_id"),
                outcome(e),
                id_of(e, "parent_span_id"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("payments.example.com"),
                Some("POST"),
                Some(ATTEMPT_1),
                Some(OutcomeStatus::Unknown),
                Some("9d8c7b6a5f4e3d21")
            ),
            (
                Some("payments.example.com"),
                Some("POST"),
                Some(ATTEMPT_2),
                Some(OutcomeStatus::Succeeded),
                Some("9d8c7b6a5f4e3d21")
            ),
        ]
    );
    assert_eq!(egress[0].outcome.as_ref().and_then(|o| o.reason.as_deref()), Some("timeout"));
    // Memory: memory_search reads (app.memory.ids), memory_add writes.
    let (r, w) = (events(a, EventKind::MemoryRead), events(a, EventKind::MemoryWrite));
    assert_eq!((r[0].target.as_deref(), w[0].target.as_deref()), (Some("memory_search"), Some("memory_add")));
    assert_eq!(a.memory.read, ["8c3e1f52-6a0d-4b9e-9f27-5d1c0a7e3b64", "2f9a7c31-0b8e-4d65-a1f4-7e3c9d2b6a05"]);
    assert_eq!(a.memory.written, ["d41c7e0a-93b2-4f1e-8a6d-2c5b9e0f7a13"]);
    let models: Vec<_> =
        events(a, EventKind::ModelCall).iter().map(|e| (e.target.as_deref(), e.operation.as_deref())).collect();
    assert_eq!(models, [(Some("gpt-4.1"), Some("chat")), (Some("gpt-4.1"), Some("chat"))]);
}

/// The collector's file exporter: upper-case hex ids, the record time from
/// `observedTimeUnixNano` when `timeUnixNano` is 0, JSON in `body.stringValue`; its three
/// records of the refund merge into one tool call by call id.
#[test]
fn otlp_file_exporter_logs_merge_by_call_id_and_read_json_bodies() {
    let path = format_fixture("otlp/file-exporter-logs.jsonl");
    let (_, records, summary) = scan_file(&path);
    assert_eq!(summary.layout, Layout::Lines);
    assert_eq!(records.len(), 4, "3 lines: 1 + 2 + 1 log records");
    assert_eq!(records.iter().map(|r| r.line).collect::<Vec<_>>(), [Some(1), Some(2), Some(2), Some(3)]);
    assert_eq!(records[0].values(IdentName::TraceId), [TRACE], "upper case in the file");
    assert_eq!(records[1].time().as_deref(), Some("2026-11-21T14:04:12.094007Z"), "observedTimeUnixNano");
    assert!(records[3].values(IdentName::TraceId).is_empty(), "empty traceId");

    let p = one("otlp/file-exporter-logs.jsonl");
    let a = p.a();
    assert_eq!(
        ident_value(a, IdentName::ToolPrincipal),
        (IdentStatus::Found, Some("svc-payments@billing.example.com"))
    );
    assert_eq!(ident(a, IdentName::ToolPrincipal).values[0].fields, ["body{}.principal"]);
    let calls = events(a, EventKind::ToolCall);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = calls[0];
    assert_eq!((c.target.as_deref(), id_of(c, "call_id")), (Some("issue_refund"), Some(REFUND_CALL)));
    assert_eq!(c.merged_by, [MergeRule::CallId]);
    let cites: Vec<(Option<u64>, Option<&str>)> = c.citations.iter().map(|x| (x.line, x.span_id.as_deref())).collect();
    assert_eq!(
        cites,
        [(Some(1), Some("9d8c7b6a5f4e3d21")), (Some(2), Some("4a5b6c7d8e9f0a1b")), (Some(2), Some("6b7c8d9e0f1a2b3c"))]
    );
    assert_eq!(outcome(c), Some(OutcomeStatus::Succeeded), "the call finished after its retry");
}

/// A protobuf-JSON dump: base64 trace and span ids, enum names. The server's record of
/// attempt 1 (201) beats the client's 504, and attempt 2 is an idempotent replay.
#[test]
fn otlp_protojson_base64_ids_and_the_servers_view_of_each_attempt() {
    let (_, records, _) = scan_file(&format_fixture("otlp/protojson-dump-base64-ids.json"));
    assert_eq!(records.len(), 2);
    assert_eq!(values(&records, IdentName::TraceId), [TRACE], "fT8cmitOSPChxuXSC5+KMQ==");
    let links: Vec<(String, String)> =
        records[0].links().into_iter().filter(|(k, _, _)| k.ends_with("span_id")).map(|(k, v, _)| (k, v)).collect();
    assert!(links.contains(&("span_id".into(), "e3f4a5b6c7d8e9f0".into())), "4/SltsfY6fA=: {links:?}");
    assert!(links.contains(&("parent_span_id".into(), "4a5b6c7d8e9f0a1b".into())), "SltsfY6fChs=: {links:?}");

    let (_, p) = run(
        &[
            ("otlp/traces-agent-run.otlp.json", "agent/traces.json"),
            ("otlp/protojson-dump-base64-ids.json", "payments/dump.json"),
        ],
        &["--trace-id", TRACE],
    );
    let a = p.a();
    let egress = events(a, EventKind::EgressRequest);
    assert_eq!(egress.len(), 2, "each server span joins its client span");
    let first = egress[0];
    assert_eq!(first.merged_by, [MergeRule::ParentSpan]);
    assert_eq!(outcome(first), Some(OutcomeStatus::Succeeded), "{:?}", first.outcome);
    assert!(
        first
            .outcome
            .as_ref()
            .and_then(|o| o.reason.as_deref())
            .is_some_and(|r| r.contains("the server's record shows 201")),
        "{:?}",
        first.outcome
    );
    let second = egress[1];
    assert_eq!(outcome(second), Some(OutcomeStatus::Succeeded));
    assert!(second.outcome.as_ref().is_some_and(|o| o.replayed), "Idempotent-Replayed: true: {:?}", second.outcome);
    assert!(!first.outcome.as_ref().is_some_and(|o| o.replayed));
}

// ---- OpenAI Agents SDK ----

/// Tracing export: `function` spans are tool calls (memory tools are memory operations),
/// `generation`/`response` spans model calls; `trace_<hex>` is the trace id and `group_id`
/// the session; the app's `metadata.customer_id` a subject.
#[test]
fn agents_sdk_tracing_function_spans_are_tool_calls_and_group_id_the_session() {
    let p = one("openai-agents-tracing/ingest-payload-run1.json");
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident(a, IdentName::SessionId).values[0].fields, ["group_id"]);
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some(APPROVAL)));
    assert_eq!(subjects(&p), [CUSTOMER]);
    let tools = events(a, EventKind::ToolCall);
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].target.as_deref(), Some("lookup_invoice"));
    assert_eq!(start(tools[0]), Some("2026-11-21T14:02:12.004113Z"), "+00:00 read as UTC");
    assert_eq!(id_of(tools[0], "span_id"), Some("span_834dfb772207d873877d8c3d"));
    let reads = events(a, EventKind::MemoryRead);
    assert_eq!((reads.len(), reads[0].target.as_deref()), (1, Some("memory_search")));
    assert_eq!(detail_of(reads[0], "mcp_server"), Some("mem0-mcp"));
    assert_eq!(count(a, EventKind::ModelCall), 4, "1 generation + 3 response spans");

    // Run 2: spans written as they end (children first); the failed notify_customer.
    let p = one("openai-agents-tracing/processor-export-run2.jsonl");
    let a = p.a();
    let tools: Vec<(Option<&str>, Option<OutcomeStatus>)> =
        events(a, EventKind::ToolCall).iter().map(|e| (e.target.as_deref(), outcome(e))).collect();
    assert_eq!(
        tools,
        [
            (Some("issue_refund"), Some(OutcomeStatus::Succeeded)),
            (Some("notify_customer"), Some(OutcomeStatus::Unknown))
        ]
    );
    let refund = events(a, EventKind::ToolCall)[0];
    assert_eq!(id_of(refund, "idempotency_key"), Some(IDEM), "inside the JSON string function.input");
    let notify = events(a, EventKind::ToolCall)[1];
    // The SDK's generic message and what went wrong (`error.data.error`).
    assert_eq!(
        notify.outcome.as_ref().map(|o| o.codes.clone()),
        Some(vec!["Error running tool: SMTPDataError: 451 4.3.0 temporary failure".to_string()])
    );
    let writes = events(a, EventKind::MemoryWrite);
    assert_eq!((writes.len(), writes[0].target.as_deref()), (1, Some("memory_add")));
    assert_eq!(count(a, EventKind::ModelCall), 2);
}

/// RunState, Python (compact) and JS (pretty, camelCase): the pending interruptions are
/// approval requests, the decided snapshot's `context.approvals` and hosted-MCP decisions are
/// approval decisions; the app context's approval id is promoted.
#[test]
fn agents_sdk_run_state_python_and_js_spellings() {
    let p = one("agents-runstate/python-pending-2026-11-21T140215Z.json");
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some(APPROVAL)));
    assert_eq!(
        ident_value(a, IdentName::ToolPrincipal),
        (IdentStatus::Found, Some("svc-payments@billing.example.com"))
    );
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some(IDEM)));
    assert_eq!(subjects(&p), [CUSTOMER]);
    let requests: Vec<(Option<&str>, Option<&str>)> =
        events(a, EventKind::ApprovalRequest).iter().map(|e| (e.target.as_deref(), id_of(e, "call_id"))).collect();
    assert_eq!(
        requests,
        [(Some("issue_refund"), Some(REFUND_CALL)), (Some("delete_memory"), Some("mcpr_68f3a1d0c2e4f6a8b0d2e4f6a8"))]
    );
    assert_eq!(count(a, EventKind::ApprovalDecision), 0, "context.approvals is empty: both pending");
    let refund = events(a, EventKind::ToolCall)
        .into_iter()
        .find(|e| e.target.as_deref() == Some("issue_refund"))
        .expect("refund");
    assert_eq!(outcome(refund), Some(OutcomeStatus::Unknown), "no output recorded yet");

    let p = one("agents-runstate/python-decided-2026-11-21T140341Z.json");
    let a = p.a();
    assert_eq!(count(a, EventKind::ApprovalRequest), 2, "the interruptions are still listed");
    let decisions: Vec<(Option<&str>, Option<&str>)> = events(a, EventKind::ApprovalDecision)
        .iter()
        .map(|e| (e.target.as_deref(), detail_of(e, "decision")))
        .collect();
    assert_eq!(decisions, [(Some("issue_refund"), Some("approved")), (Some("delete_memory"), Some("rejected"))]);

    let p = one("agents-runstate/js-pending-pretty.json");
    let a = p.a();
    assert_eq!(p.a().sources[0].format, "agents_run_state", "352 pretty lines are one RunState");
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some(APPROVAL)));
    assert_eq!(ident(a, IdentName::ApprovalId).values[0].fields, ["context.context.pendingApproval.approvalId"]);
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    let req = events(a, EventKind::ApprovalRequest);
    assert_eq!((req.len(), id_of(req[0], "call_id")), (1, Some(REFUND_CALL)), "rawItem.callId");
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some(IDEM)));
}

// ---- LangSmith and Langfuse ----

/// LangSmith: the top-level `session_id` is the tracing project, not the conversation;
/// the conversation is in `extra.metadata` under three spellings; times without a zone are
/// marked; the UUID-form trace id is the OTel id.
#[test]
fn langsmith_runs_session_is_not_the_project_and_zoneless_times_are_marked() {
    for file in ["langsmith/list-runs.jsonl", "langsmith/read-run-tree.json"] {
        let p = one(file);
        let a = p.a();
        assert!(a.seeds[0].records > 0, "{file}: the UUID-form trace id matches");
        assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)), "{file}");
        let mut fields = ident(a, IdentName::SessionId).values[0].fields.clone();
        fields.sort();
        assert_eq!(
            fields,
            ["extra.metadata.conversation_id", "extra.metadata.session_id", "extra.metadata.thread_id"],
            "{file}"
        );
        assert!(ident(a, IdentName::SessionId)
            .values
            .iter()
            .all(|v| v.value != "1b6f0e2a-93c4-4d71-8e5a-7f2c0d9b4e38"));
        assert_eq!(subjects(&p), [CUSTOMER], "{file}");
        let tools: Vec<_> = events(a, EventKind::ToolCall).iter().map(|e| e.target.as_deref()).collect();
        assert_eq!(tools, [Some("lookup_invoice"), Some("issue_refund")], "{file}");
        let refund = events(a, EventKind::ToolCall)[1];
        assert_eq!(
            (id_of(refund, "call_id"), id_of(refund, "approval_id")),
            (Some(REFUND_CALL), Some(APPROVAL)),
            "{file}"
        );
        assert_eq!(id_of(refund, "idempotency_key"), Some(IDEM), "{file}");
        let t = refund.start.as_ref().expect("start");
        assert_eq!((t.at.as_str(), t.zone), ("2026-11-21T14:03:42.050318Z", Zone::None), "{file}: no zone written");
        let r = events(a, EventKind::MemoryRead);
        assert_eq!(
            (r.len(), r[0].target.as_deref(), r[0].operation.as_deref()),
            (1, Some("kb_search"), Some("retrieval")),
            "{file}"
        );
        assert_eq!(count(a, EventKind::ModelCall), 1, "{file}");
    }
}

/// Langfuse: a trace's id is `id`, `userId` a subject; observations ingested from
/// OpenTelemetry keep span attributes: `execute_tool` spans are tool calls named by
/// `gen_ai.tool.name`, whatever their observation type.
#[test]
fn langfuse_trace_and_observations() {
    let p = one("langfuse/get-trace-full.json");
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident_value(a, IdentName::AgentId), (IdentStatus::Found, Some("billing-agent")));
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some(IDEM)));
    assert_eq!(ident_value(a, IdentName::ToolPrincipal), (IdentStatus::Unknown, None), "userId is no principal");
    assert_eq!(subjects(&p), [CUSTOMER]);
    let tools: Vec<(Option<&str>, Option<&str>)> =
        events(a, EventKind::ToolCall).iter().map(|e| (e.target.as_deref(), id_of(e, "call_id"))).collect();
    assert_eq!(tools, [(Some("lookup_invoice"), Some(LOOKUP_CALL)), (Some("issue_refund"), Some(REFUND_CALL))]);
    let refund = events(a, EventKind::ToolCall)[1];
    assert_eq!((start(refund), end(refund)), (Some("2026-11-21T14:02:14.902Z"), Some("2026-11-21T14:04:14.377Z")));
    let models = events(a, EventKind::ModelCall);
    assert_eq!((models.len(), models[0].target.as_deref()), (1, Some("gpt-4.1-2025-04-14")));

    let p = one("langfuse/list-traces-by-session.json");
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident(a, IdentName::TraceId).values[0].fields, ["id"], "a trace's id is the trace id");
    let s = &a.sources[0];
    assert_eq!((s.records, s.incident_records), (2, 1), "two traces of the session, one is the incident's");
}

// ---- Approvals from people ----

/// Slack `block_actions`: the approval and call ids inside `actions[].value` (a JSON
/// string), the approver's user id, the decision time from `action_ts`; the duplicate click
/// is the same decision; the form-encoded POST body reads the same.
#[test]
fn slack_block_actions_are_approval_decisions_by_a_slack_user() {
    for file in ["slack-block-actions/received-payloads.jsonl", "slack-block-actions/interactivity-post-body.txt"] {
        let p = one_with(file, &["--seed", APPROVAL]);
        let a = p.a();
        let d = events(a, EventKind::ApprovalDecision);
        assert_eq!(d.len(), 1, "{file}: {d:?}");
        let d = d[0];
        assert_eq!(detail_of(d, "decision"), Some("approved"), "{file}");
        assert_eq!(detail_of(d, "approver_id"), Some("U07QJ2M4K8R"), "{file}");
        assert_eq!((id_of(d, "approval_id"), id_of(d, "call_id")), (Some(APPROVAL), Some(REFUND_CALL)), "{file}");
        assert_eq!(start(d), Some("2026-11-21T14:03:41.612877Z"), "{file}: action_ts");
        assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some(APPROVAL)));
        assert_eq!(
            ident_value(a, IdentName::TraceId),
            (IdentStatus::Unknown, None),
            "{file}: the mrkdwn text is no field"
        );
    }
    let p = one_with("slack-block-actions/received-payloads.jsonl", &["--seed", APPROVAL]);
    let lines: Vec<Option<u64>> =
        events(p.a(), EventKind::ApprovalDecision)[0].citations.iter().map(|c| c.line).collect();
    assert_eq!(lines, [Some(2), Some(4)], "the click and its repeat, not line 1 (another approval)");
}

/// Bot Framework: the Adaptive Card asking for an approval is the request, the `invoke` that
/// answers it the decision, by the person in `from`; the Teams thread (`conversation.id`) is
/// no session and the chat users are no subjects.
#[test]
fn bot_framework_card_and_invoke_are_the_approval_request_and_decision() {
    let p = one_with("bot-framework/ops-approvals-bot-activity-20261214.jsonl", &["--seed", "APR-20261214-0419"]);
    let a = p.a();
    let req = events(a, EventKind::ApprovalRequest);
    let dec = events(a, EventKind::ApprovalDecision);
    assert_eq!((req.len(), dec.len()), (1, 1), "{req:?} {dec:?}");
    assert_eq!(req[0].citations[0].line, Some(1));
    assert_eq!(detail_of(dec[0], "decision"), Some("approved"));
    assert_eq!(detail_of(dec[0], "approver"), Some("Priya Raman"));
    assert_eq!(detail_of(dec[0], "approver_id"), Some("6b0e4a2f-8c1d-4e3f-9a7b-5c2d1e0f8a63"));
    assert_eq!(start(dec[0]), Some("2026-12-14T17:48:37.412Z"));
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some("APR-20261214-0419")));
    // The thread the card was posted in is not the agent's session (the session is in the
    // card's data: `thread`).
    assert!(
        ident(a, IdentName::SessionId).values.iter().all(|v| !v.value.starts_with("19:")),
        "{:?}",
        ident(a, IdentName::SessionId)
    );
    assert!(subjects(&p).is_empty(), "{:?}", subjects(&p));
}

/// ServiceNow (`display_value=all`): the requested item asking for approval is the request,
/// the approver row that approved the decision (by its approver, at `sys_updated_on`'s UTC
/// `value`), the rows made moot are no event; the reference's number is the approval id; a
/// `sys_user` reference is no subject.
#[test]
fn servicenow_group_approval_is_one_request_and_one_decision() {
    let p = run(
        &[
            ("servicenow/sc_req_item-RITM0041873.json", "snow/ritm.json"),
            ("servicenow/sysapproval_approver-RITM0041873.json", "snow/approvers.json"),
        ],
        &["--seed", "RITM0041873"],
    )
    .1;
    let a = p.a();
    let req = events(a, EventKind::ApprovalRequest);
    let dec = events(a, EventKind::ApprovalDecision);
    assert_eq!((req.len(), dec.len()), (1, 1), "{req:?} {dec:?}");
    assert_eq!(start(req[0]), Some("2026-12-16T14:05:25Z"));
    assert_eq!(detail_of(dec[0], "approver"), Some("Dana Whitfield"));
    assert_eq!(start(dec[0]), Some("2026-12-16T14:19:02Z"), "the UTC value, not the Chicago display value");
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some("RITM0041873")));
    assert!(subjects(&p).is_empty(), "{:?}", subjects(&p));
    let checked = a.checklist.iter().find(|c| c.item == "approval_path").expect("approval_path");
    assert!(checked.detail.contains("1 decision(s) (approved)"), "{}", checked.detail);
}

// ---- Memory ----

/// mem0: `add()` results and history rows are writes (add/update/delete), history rows
/// ordered by `updated_at` with their US/Pacific offsets converted; `get_all` is state, its
/// `user_id` a subject.
#[test]
fn mem0_writes_and_mixed_offsets() {
    let p = one_with(
        "mem0/history-2f9a7c31-0b8e-4d65-a1f4-7e3c9d2b6a05.json",
        &["--seed", "2f9a7c31-0b8e-4d65-a1f4-7e3c9d2b6a05"],
    );
    let w: Vec<(Option<&str>, Option<&str>)> =
        events(p.a(), EventKind::MemoryWrite).iter().map(|e| (e.operation.as_deref(), start(e))).collect();
    // ADD 2026-10-02T11:40:57.120033-07:00 = 18:40:57Z; the UPDATE row keeps that
    // created_at, its time is updated_at.
    assert_eq!(
        w,
        [(Some("add"), Some("2026-10-02T18:40:57.120033Z")), (Some("update"), Some("2026-11-21T14:04:21.398771Z"))]
    );
    assert_eq!(p.a().memory.written, ["2f9a7c31-0b8e-4d65-a1f4-7e3c9d2b6a05"]);

    let p = one_with("mem0/add-results.jsonl", &["--seed", "d41c7e0a-93b2-4f1e-8a6d-2c5b9e0f7a13"]);
    let w = events(p.a(), EventKind::MemoryWrite);
    assert_eq!(w.len(), 1, "one add() call: ADD + UPDATE");
    assert_eq!(w[0].operation.as_deref(), Some("ADD,UPDATE"));
    let mut written = p.a().memory.written.clone();
    written.sort();
    assert_eq!(written, ["2f9a7c31-0b8e-4d65-a1f4-7e3c9d2b6a05", "d41c7e0a-93b2-4f1e-8a6d-2c5b9e0f7a13"]);
    assert_eq!(w[0].citations[0].line, Some(2));
    // The poisoning conversation's add() call: the poisoned memory added, another deleted.
    let p = one_with("mem0/add-results.jsonl", &["--seed", "8c3e1f52-6a0d-4b9e-9f27-5d1c0a7e3b64"]);
    let w = events(p.a(), EventKind::MemoryWrite);
    assert_eq!((w.len(), w[0].operation.as_deref(), w[0].citations[0].line), (1, Some("ADD,DELETE"), Some(1)));
    let mut written = p.a().memory.written.clone();
    written.sort();
    assert_eq!(written, ["5a7b9c1d-3e5f-4a6b-8c9d-0e1f2a3b4c5d", "8c3e1f52-6a0d-4b9e-9f27-5d1c0a7e3b64"]);

    let p = one_with("mem0/get-all.json", &["--seed", CUSTOMER]);
    assert!(p.a().events.is_empty(), "memories are state, not operations");
    // A memory row's `user_id` says whose memory it is (a person here, a namespace elsewhere):
    // not who the agent acted for.
    assert!(subjects(&p).is_empty(), "{:?}", subjects(&p));
    assert_eq!(
        ident(p.a(), IdentName::SessionId).values.len(),
        0,
        "run_id is not read as this incident's session here"
    );
}

/// Generic vector stores: Chroma's columnar `get()` (record i across the arrays, a JSON
/// string in its metadata) and a Qdrant scroll page with mixed id types.
#[test]
fn vector_store_exports_are_read_record_by_record() {
    let (_, records, _) = scan_file(&format_fixture("vector-store/chroma-collection-get.json"));
    assert_eq!(records.len(), 4, "4 records as parallel arrays");
    let p = one("vector-store/chroma-collection-get.json");
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident(a, IdentName::IdempotencyKey).values[0].fields, ["metadatas.tool_call{}.idempotency_key"]);
    assert!(subjects(&p).is_empty(), "memory rows name whose memory it is, not who the agent acted for");
    assert_eq!(a.sources[0].incident_records, 1);

    let (_, records, _) = scan_file(&format_fixture("vector-store/qdrant-scroll-points.json"));
    assert_eq!(records.len(), 3, "2 memories and a knowledge-base point");
    let p = one("vector-store/qdrant-scroll-points.json");
    assert_eq!(ident_value(p.a(), IdentName::AgentId), (IdentStatus::Found, Some("billing-agent")));
    assert!(subjects(&p).is_empty(), "{:?}", subjects(&p));
}

// ---- Cloud and cluster ----

/// CloudTrail (gzip): each record a cloud API call whose principal is the role that issued
/// the session; tag lists read by the semantics table; the denied call failed.
#[test]
fn cloudtrail_principal_is_the_session_issuer_and_tags_are_read() {
    let p = one_with(
        "cloudtrail/123456789012_CloudTrail_us-east-1_20261121T1345Z_Qm9XpL2vN7cR4tYw.json.gz",
        &["--seed", "deploy-run-7741903-migrate-0001"],
    );
    let a = p.a();
    let calls = events(a, EventKind::CloudApiCall);
    let got: Vec<(Option<&str>, Option<&str>, Option<&str>, Tie)> =
        calls.iter().map(|e| (e.operation.as_deref(), start(e), e.principal.as_deref(), e.tie)).collect();
    let role = Some("arn:aws:iam::123456789012:role/acme-cd-deployer");
    // The two RunTask records hold the key (clientToken); AddTagsToResource holds their
    // change id (a tag): a record of the chain. PutParameter holds neither.
    assert_eq!(
        got,
        [
            (Some("AddTagsToResource"), Some("2026-11-21T13:41:08Z"), role, Tie::Chain),
            (Some("RunTask"), Some("2026-11-21T13:43:12Z"), role, Tie::Linked),
            (Some("RunTask"), Some("2026-11-21T13:43:43Z"), role, Tie::Linked),
        ]
    );
    assert!(calls.iter().all(|e| e.citations[0].decompressed));
    assert_eq!(calls.iter().map(|e| e.citations[0].item).collect::<Vec<_>>(), [Some(1), Some(2), Some(3)]);
    // The two RunTask calls carry the same clientToken: the key of both attempts.
    assert!(calls[1..].iter().all(|e| id_of(e, "idempotency_key") == Some("deploy-run-7741903-migrate-0001")));

    let p = one_with(
        "cloudtrail/123456789012_CloudTrail_us-east-1_20261121T1345Z_Qm9XpL2vN7cR4tYw.json.gz",
        &["--seed", "deploy-run-7741903"],
    );
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::ChangeId), (IdentStatus::Found, Some("CHG-20931")), "tag acme.change.id");
    assert_eq!(ident_value(a, IdentName::RolloutWave), (IdentStatus::Found, Some("2")), "tag rollout-wave");
    assert_eq!(ident(a, IdentName::ChangeId).values[0].fields, ["requestParameters.tags.acme.change.id"]);

    let p = one_with(
        "cloudtrail/123456789012_CloudTrail_us-east-1_20261121T1405Z_kT3vQ9mZ2xR7pL4w.json.gz",
        &["--seed", "5b0f2c61-9d3e-4a7b-8c1d-e2f3a4b5c6d7"],
    );
    let calls = events(p.a(), EventKind::CloudApiCall);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].principal.as_deref(), Some("arn:aws:iam::123456789012:role/agent-payments-tool"));
    assert_eq!(
        detail_of(calls[0], "session_arn"),
        Some("arn:aws:sts::123456789012:assumed-role/agent-payments-tool/botocore-session-1795269823")
    );
    assert_eq!((outcome(calls[0]), start(calls[0])), (Some(OutcomeStatus::Failed), Some("2026-11-21T14:04:30Z")));
}

/// Kubernetes audit: a mutating request is one `k8s_change` whatever stages were logged
/// (merged by auditID); annotations under vendor keys name the change, wave and bundle;
/// reads are not changes.
#[test]
fn k8s_audit_stages_merge_and_annotations_name_the_change() {
    let p = one_with("k8s-audit/audit.log", &["--seed", "CHG-20931"]);
    let a = p.a();
    let changes = events(a, EventKind::K8sChange);
    let got: Vec<(Option<&str>, Option<&str>, Vec<Option<u64>>)> = changes
        .iter()
        .map(|e| (e.target.as_deref(), e.operation.as_deref(), e.citations.iter().map(|c| c.line).collect()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("configmaps/agents/agent-policy-bundle"), Some("patch"), vec![Some(1), Some(2)]),
            (Some("rollouts/agents/billing-agent"), Some("patch"), vec![Some(3)]),
        ]
    );
    assert_eq!(changes[0].merged_by, [MergeRule::AuditId]);
    assert_eq!(changes[0].principal.as_deref(), Some("system:serviceaccount:argocd:argocd-application-controller"));
    assert_eq!(outcome(changes[0]), Some(OutcomeStatus::Succeeded));
    assert_eq!(ident_value(a, IdentName::BundleId), (IdentStatus::Found, Some("rev-2026.11.21-3c9e41f")));
    assert_eq!(ident_value(a, IdentName::RolloutWave), (IdentStatus::Found, Some("wave-2")));
    // The impersonated, forbidden request: the evaluated identity is the principal, the
    // authenticated user the actor.
    let p = one_with("k8s-audit/audit.log", &["--seed", "oidc:maria@example.com"]);
    let c = events(p.a(), EventKind::K8sChange);
    assert!(c.is_empty(), "event 5 is a `get`: not a change ({c:?})");
}

/// Cerbos: each decision entry is one policy decision; `callId` is its decision id (never a
/// tool call), the policy source's Cerbos Hub bundle is the PDP's (not the agent's bundle),
/// `principal.id` is the tool principal and `principal.attr.on_behalf_of` a subject.
#[test]
fn cerbos_decisions_are_policy_decisions_and_the_policy_source_is_not_the_agents_bundle() {
    let p = one_with("cerbos/cerbos-audit-decisions.log", &["--trace-id", "5e2b8c41d7a94f06b3c1e9d2a7f04b18"]);
    let a = p.a();
    let d = events(a, EventKind::PolicyDecision);
    let lines: Vec<Option<u64>> = d.iter().map(|e| e.citations[0].line).collect();
    assert_eq!(lines, [Some(1), Some(2), Some(3), Some(4), Some(8), Some(9)], "the incident's six entries");
    assert!(d.iter().all(|e| detail_of(e, "decision") == Some("allow")));
    assert_eq!(id_of(d[0], "decision_id"), Some("01JF5Q8N0B3V7C1X5Z9K2M4R6T"));
    assert!(d.iter().all(|e| id_of(e, "call_id").is_none() && id_of(e, "request_id").is_none()));
    assert_eq!(detail_of(d[4], "requires_approval"), Some("true"), "the rotation's output");
    assert_eq!(count(a, EventKind::ToolCall), 0);
    assert_eq!(ident_value(a, IdentName::BundleId), (IdentStatus::Unknown, None), "policySource is the PDP's");
    assert_eq!(ident_value(a, IdentName::ToolPrincipal), (IdentStatus::Found, Some("oncall-copilot-tools")));
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some("thr_5Kd8Qm2Zx7Vb1Nc4")));
    assert_eq!(subjects(&p), ["E10472"]);
}

/// A PDP's audit API page (Permit.io: `{"data": [...], "total_count"}`, each element an OPA
/// decision under `raw_data`) is one decision per element: read as one record it had merged
/// two customers' conversations into the incident (regression). `user_key` is the subject.
#[test]
fn regression_a_permit_audit_page_was_one_decision_holding_two_conversations() {
    let p = one_with(
        "permit/audit_logs-larkspur-prod-20261216T1400-1430.json",
        &["--trace-id", "01a27f2bdea47a13ba9ea5f6c52ad146"],
    );
    let a = p.a();
    let d = events(a, EventKind::PolicyDecision);
    assert_eq!(d.len(), 10, "the incident conversation's ten decisions, not the page, not the other customer's");
    assert!(d.iter().all(|e| id_of(e, "decision_id").is_some_and(|x| !x.contains(','))));
    let denies: Vec<_> = d.iter().filter(|e| detail_of(e, "decision") == Some("deny")).collect();
    assert_eq!(denies.len(), 1);
    assert_eq!(
        ident_value(a, IdentName::SessionId),
        (IdentStatus::Found, Some("c7e2f1a9-3b6d-4e58-a0c4-9d1f7e2b6a35"))
    );
    assert_eq!(subjects(&p), ["ACCT-30091822"]);
}

/// Kong: the destination is the service Kong proxied to, not Kong's own listener in
/// `request.url`; the path is the last try; a 499 is the caller hanging up (unknown).
#[test]
fn kong_file_log_destination_is_the_service_and_499_is_unknown() {
    let p = one_with("kong/file-log.json.log", &["--trace-id", "01a27f3890487e6287d127c87d5f0f4f"]);
    let a = p.a();
    let hosts: Vec<&str> = a.egress.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["api.textbridge.example", "hooks.ledgerly-billing.example"],
        "not egress-gw.internal, not the weather service"
    );
    let reqs = events(a, EventKind::EgressRequest);
    assert_eq!(reqs.len(), 3);
    let upload = reqs.iter().find(|e| e.target.as_deref() == Some("hooks.ledgerly-billing.example")).expect("upload");
    assert_eq!(outcome(upload), Some(OutcomeStatus::Unknown));
    assert!(upload.outcome.as_ref().and_then(|o| o.reason.as_deref()).is_some_and(|r| r.contains("499")));
    assert!(detail_of(reqs[0], "upstream").is_some_and(|u| u.starts_with("198.51.100.")), "{:?}", reqs[0].detail);
}

/// A LangGraph tool node that timed out and was resumed in a new trace of the same thread:
/// LangSmith logs two `apply_bill_credit` runs. The failed one returned no ToolMessage, so it
/// has no call id; the retry carries the model's. The egress gateway (Kong) saw attempt 1 end
/// in a 504 and attempt 2 answered `201` with `Idempotent-Replayed: true`. Before: the two runs
/// merged into one call through the model's request (6 calls counted for 4), and attempt 1
/// stayed "unknown" although the replay proves the server had applied it.
#[test]
fn regression_a_retried_tool_node_merged_into_one_call_and_a_replay_did_not_settle_the_timed_out_attempt() {
    const CALL: &str = "toolu_01HqV8cR3nWk2Lp5Tz9Ya6Xe";
    const KEY: &str = "credit-acct_77Q2-INV-88120";
    let (_, p) = run(
        &[
            ("langsmith/retried-tool-node.jsonl", "langsmith/runs.jsonl"),
            ("kong/credit-replay.json.log", "gateway/file-log.json.log"),
        ],
        &["--session-id", "thr_7Wq2Lm9Kd4"],
    );
    let a = p.a();
    let calls = events(a, EventKind::ToolCall);
    let got: Vec<(Option<&str>, Option<&str>, Option<OutcomeStatus>, bool)> = calls
        .iter()
        .map(|e| (e.target.as_deref(), id_of(e, "call_id"), outcome(e), e.outcome.as_ref().is_some_and(|o| o.replayed)))
        .collect();
    assert_eq!(
        got,
        [
            (Some("apply_bill_credit"), Some(CALL), Some(OutcomeStatus::Succeeded), false),
            (Some("send_sms"), Some("toolu_01Ns4Jt7Bx2Vc9Qm5Rk8Wd3E"), Some(OutcomeStatus::Succeeded), false),
            (Some("apply_bill_credit"), Some(CALL), Some(OutcomeStatus::Succeeded), true),
        ],
        "{:#?}",
        calls
    );
    let why = calls[0].outcome.as_ref().and_then(|o| o.reason.as_deref()).unwrap_or_default();
    assert!(why.contains("replay") && why.contains(&calls[2].id), "{why}");
    // Each gateway request belongs to the attempt it was made in (by time), not to the first
    // call with that call id.
    let reqs = events(a, EventKind::EgressRequest);
    assert_eq!(reqs.len(), 2);
    for (req, call) in reqs.iter().zip([calls[0], calls[2]]) {
        assert!(
            req.related.iter().any(|r| r.event == call.id && r.relation == "request_of"),
            "{} should be the request of {}: {:?}",
            req.id,
            call.id,
            req.related
        );
    }
    let credit = a.actions.iter().find(|x| x.idempotency_key.as_deref() == Some(KEY)).expect("the credit action");
    assert_eq!((credit.attempts.len(), credit.took_effect, credit.duplicate), (2, 1, false), "{credit:?}");
}

/// A policy decision about a call that was retried belongs to the attempt it allowed: a
/// decision comes before what it allows, so it is for the first attempt that started no
/// earlier than a second before it (the resumed one here), not for the attempt that was running
/// at its time (the timed-out one, which started 83 s earlier).
#[test]
fn a_decision_about_a_retried_call_is_for_the_attempt_after_it() {
    const CALL: &str = "toolu_01HqV8cR3nWk2Lp5Tz9Ya6Xe";
    let list = vec![
        (format_fixture("langsmith/retried-tool-node.jsonl"), "langsmith/runs.jsonl"),
        (format_fixture("kong/credit-replay.json.log"), "gateway/file-log.json.log"),
    ];
    let dir = IncidentDir::of(&list);
    let decision = serde_json::json!({
        "decision_id": "0f6e2b1c-4d8a-4b7e-9c3f-2a1d5e8b7c60",
        "timestamp": "2026-11-21T16:21:28.000Z",
        "path": "agent/tools/allow",
        "input": {"tool": "apply_bill_credit", "tool_call_id": CALL, "session_id": "thr_7Wq2Lm9Kd4"},
        "result": true
    });
    dir.write("opa/decisions.jsonl", format!("{decision}\n"));
    let p = preserve_dir(&dir, &["--session-id", "thr_7Wq2Lm9Kd4"]);
    let a = p.a();
    let calls: Vec<_> = events(a, EventKind::ToolCall)
        .into_iter()
        .filter(|e| e.target.as_deref() == Some("apply_bill_credit"))
        .collect();
    assert_eq!(calls.len(), 2, "two attempts: {calls:#?}");
    let decisions = events(a, EventKind::PolicyDecision);
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    let for_ = |call: &str| decisions[0].related.iter().any(|r| r.event == call && r.relation == "decision_for");
    assert!(for_(&calls[1].id), "the decision is for the resumed attempt: {:?}", decisions[0].related);
    assert!(!for_(&calls[0].id), "not for the timed-out attempt: {:?}", decisions[0].related);
}

/// A tool's own "already processed" answer is no proof that the server applied the earlier
/// attempt (someone else may have): only a replay that the attempt's HTTP request got settles
/// the timed-out attempt before it. Before: the first attempt was declared "took effect".
#[test]
fn regression_a_tools_already_processed_message_settled_the_timed_out_attempt() {
    let dir = IncidentDir::new();
    let log: String = [
        serde_json::json!({"ts": "2026-11-21T14:03:42Z", "session_id": SESSION, "trace_id": TRACE, "tool": "issue_refund",
            "call_id": "call_A1", "idempotency_key": "idem-q1", "timeout": true}),
        serde_json::json!({"ts": "2026-11-21T14:04:30Z", "session_id": SESSION, "trace_id": TRACE, "tool": "issue_refund",
            "call_id": "call_A2", "idempotency_key": "idem-q1", "response": {"status": "already processed"}}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect();
    dir.write("logs/tool_calls.jsonl", log);
    let p = preserve_dir(&dir, &["--trace-id", TRACE]);
    let calls = events(p.a(), EventKind::ToolCall);
    let got: Vec<(Option<&str>, Option<OutcomeStatus>, bool)> = calls
        .iter()
        .map(|e| (id_of(e, "call_id"), outcome(e), e.outcome.as_ref().is_some_and(|o| o.replayed)))
        .collect();
    assert_eq!(
        got,
        [
            (Some("call_A1"), Some(OutcomeStatus::Unknown), false),
            (Some("call_A2"), Some(OutcomeStatus::Succeeded), true)
        ]
    );
}

/// Datadog: each log of a Logs API page is a record read as the application logged it; an MCP
/// server's lines of one call (named by the call id in `_meta`) are one tool call seen by the
/// server; a read timeout after the body was sent is unknown, not failed; the log's level and
/// host are neither an outcome nor a destination.
#[test]
fn datadog_logs_an_mcp_servers_lines_are_its_view_of_the_call() {
    let p = one_with(
        "datadog-logs/logs-events-20261214T1735Z-1805Z.page-2.json",
        &["--trace-id", "5e2b8c41d7a94f06b3c1e9d2a7f04b18"],
    );
    let a = p.a();
    let calls = events(a, EventKind::ToolCall);
    let got: Vec<(Option<&str>, Option<&str>, Option<OutcomeStatus>, usize)> =
        calls.iter().map(|e| (e.target.as_deref(), id_of(e, "call_id"), outcome(e), e.citations.len())).collect();
    assert_eq!(
        got,
        [
            (Some("aws_rotate_secret"), Some("call_Mz6Qb1Wt8Kr3Vn5Xd7Hc2Ge"), Some(OutcomeStatus::Succeeded), 4),
            (Some("upload_diagnostics"), Some("call_Ux3Fa9Ld6Zm1Qk8Vr4Bt7Nw"), Some(OutcomeStatus::Unknown), 6),
        ]
    );
    let upload = calls[1];
    assert_eq!(upload.outcome.as_ref().and_then(|o| o.reason.as_deref()), Some("timeout"));
    assert!(upload.citations.iter().all(|c| c.item.is_some()));
    assert!(a.egress.iter().all(|h| !h.host.starts_with("i-")), "the log's host is no destination: {:?}", a.egress);
    let session = ident(a, IdentName::SessionId);
    assert_eq!(session.value.as_deref(), Some("thr_5Kd8Qm2Zx7Vb1Nc4"));
    assert!(
        session.values[0].fields.iter().any(|f| f.starts_with("attributes.attributes.")),
        "{:?}",
        session.values[0].fields
    );
    assert_eq!(subjects(&p), ["E10472"], "usr.id");
}

// ---- Google Cloud ----

const GCP_TOOL_SA: &str = "billing-agent-tools@acme-agents-prod.iam.gserviceaccount.com";
const GCP_RUNTIME_SA: &str = "billing-agent@acme-agents-prod.iam.gserviceaccount.com";
const GCS_OBJECT: &str = "gs://acme-billing-exports/refunds/2026-11-21/idem-2c7e9a41f0b35d86.json";
const ROLLOUT_WAVE_2: &str = "rel-20261121-3c9e41f-to-prod-wave-2-0001";

/// Cloud Logging (`gcloud logging read --format=json`, newest first): `trace` is the trace
/// id (the other request's trace in the same file is not followed), `jsonPayload` is read as
/// the application's log (tool calls, the end user a subject), `textPayload` as key=value
/// text; the wrapper's metadata (pod name, project, cluster labels) is no field of the
/// application's, the container's own `httpRequest` is no egress request, and `severity:
/// ERROR` is no outcome.
#[test]
fn gcp_logging_reads_the_payload_not_the_wrapper() {
    let p = one("gcp-logging/billing-agent-gke-20261121T1400Z.json");
    let a = p.a();
    assert_eq!(a.sources[0].format, "gcp_logging");
    assert_eq!(a.sources[0].incident_records, 1, "one document");
    assert_eq!(ident_value(a, IdentName::TraceId), (IdentStatus::Given, Some(TRACE)));
    assert_eq!(ident(a, IdentName::TraceId).values.len(), 1);
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
    assert_eq!(ident(a, IdentName::SessionId).values.len(), 1, "conv_91b3e0d27f5a is the other request's");
    let mut fields = ident(a, IdentName::SessionId).values[0].fields.clone();
    fields.sort();
    assert_eq!(fields, ["jsonPayload.session_id", "textPayload~session_id"]);
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some(IDEM)));
    assert_eq!(subjects(&p), [CUSTOMER], "enduser_id is whom the agent acted for");
    // No principal: nothing in an application's log entry names who a call ran as.
    assert_eq!(ident_value(a, IdentName::ToolPrincipal).1, None);
    let calls: Vec<(Option<&str>, Option<&str>, Option<OutcomeStatus>)> =
        events(a, EventKind::ToolCall).iter().map(|e| (e.target.as_deref(), id_of(e, "call_id"), outcome(e))).collect();
    assert_eq!(
        calls,
        [
            (Some("lookup_invoice"), Some(LOOKUP_CALL), Some(OutcomeStatus::Succeeded)),
            (Some("issue_refund"), Some(REFUND_CALL), Some(OutcomeStatus::Unknown)),
        ]
    );
    // The container logged the turn it served (with severity ERROR and status 200): its own
    // server view, not an egress request, and nothing failed.
    assert_eq!(count(a, EventKind::EgressRequest), 0);
    assert!(a.events.iter().all(|e| outcome(e) != Some(OutcomeStatus::Failed)), "{:?}", a.events);
    // Pod and project labels of the wrapper are not the application's workload or deployment.
    let node = a.chain.nodes.iter().find(|x| x.name == NodeName::Deployment).expect("node");
    assert_eq!((node.status, node.value.as_deref()), (HopStatus::Missing, None));
}

/// A load balancer's request log (a Log Router sink's hourly JSON Lines object) is the
/// proxy's view of the agent's egress: the timed-out attempt (504 after 30 s) is unknown, the
/// retry's 201 succeeded although its entry says `severity: ERROR`; the other trace's request
/// is not the incident's.
#[test]
fn gcp_load_balancer_requests_are_egress_and_severity_is_no_outcome() {
    let (_, p) = run(
        &[
            ("gcp-logging/billing-agent-gke-20261121T1400Z.json", "gcp/app.json"),
            ("gcp-logging/requests_2026-11-21_14-00-00_14-59-59_S0.json", "gcp/requests/14-00-00_14-59-59_S0.json"),
        ],
        &["--trace-id", TRACE],
    );
    let a = p.a();
    let got: Vec<(Option<&str>, Option<&str>, Option<&str>, Option<OutcomeStatus>, Option<&str>)> =
        events(a, EventKind::EgressRequest)
            .iter()
            .map(|e| (e.target.as_deref(), start(e), end(e), outcome(e), detail_of(e, "source_address")))
            .collect();
    assert_eq!(
        got,
        [
            (
                Some("payments.example.com"),
                Some("2026-11-21T14:02:43.114205Z"),
                Some("2026-11-21T14:03:13.116322Z"),
                Some(OutcomeStatus::Unknown),
                Some("34.76.18.202")
            ),
            (
                Some("payments.example.com"),
                Some("2026-11-21T14:03:45.120776Z"),
                Some("2026-11-21T14:03:45.604678Z"),
                Some(OutcomeStatus::Succeeded),
                Some("34.76.18.202")
            ),
        ]
    );
    let s = a.sources.iter().find(|s| s.path.ends_with("S0.json")).expect("sink file");
    assert_eq!((s.format.as_str(), s.incident_records), ("gcp_logging", 2));
}

/// Cloud Audit Logs: each entry a cloud API call whose principal is the service account it ran
/// as (a tool principal), impersonated by the agent's runtime account (the actor); status
/// code 4 (DEADLINE_EXCEEDED) leaves the outcome unknown; the first and last entries of one
/// long-running operation are one event; a Cloud Storage object is named `gs://B/O`; a
/// person's call is no tool principal's.
#[test]
fn gcp_audit_calls_principals_outcomes_and_operations() {
    let p = one_with("gcp-audit/cloudaudit-20261121T1400Z.json", &["--seed", GCP_TOOL_SA]);
    let a = p.a();
    let calls = events(a, EventKind::CloudApiCall);
    let got: Vec<(Option<&str>, Option<&str>, Option<OutcomeStatus>, Option<&str>, usize)> = calls
        .iter()
        .map(|e| {
            (e.operation.as_deref(), e.target.as_deref(), outcome(e), detail_of(e, "audit_log"), e.citations.len())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion"),
                Some("projects/412305876093/secrets/payments-api-key/versions/latest"),
                Some(OutcomeStatus::Unknown),
                Some("data_access"),
                1
            ),
            (Some("storage.objects.create"), Some(GCS_OBJECT), Some(OutcomeStatus::Succeeded), Some("data_access"), 1),
            (
                Some("v1.compute.instances.setMetadata"),
                Some("projects/acme-agents-prod/zones/europe-west1-b/instances/agent-sandbox-7"),
                Some(OutcomeStatus::Succeeded),
                Some("activity"),
                2
            ),
        ]
    );
    assert!(calls.iter().all(|e| e.principal.as_deref() == Some(GCP_TOOL_SA)));
    assert!(calls.iter().all(|e| e.actor.as_deref() == Some(GCP_RUNTIME_SA)));
    let o = calls[0].outcome.as_ref().expect("outcome");
    assert_eq!(o.codes, ["4 DEADLINE_EXCEEDED"]);
    assert_eq!(calls[2].merged_by, [MergeRule::AuditId], "operation first + last");
    assert_eq!(start(calls[2]), Some("2026-11-21T14:03:46.532140Z"));
    assert_eq!(ident_value(a, IdentName::ToolPrincipal), (IdentStatus::Found, Some(GCP_TOOL_SA)));
    assert_eq!(detail_of(calls[1], "caller_ip"), Some("10.52.3.17"), "descriptive: no source address");
    assert_eq!(detail_of(calls[1], "source_address"), None);

    // alice@example.com (a person reading a bucket's policy) is the call's principal, never a
    // tool principal.
    let p = one_with("gcp-audit/cloudaudit-20261121T1400Z.json", &["--seed", "alice@example.com"]);
    let calls = events(p.a(), EventKind::CloudApiCall);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].principal.as_deref(), calls[0].target.as_deref()),
        (Some("alice@example.com"), Some("gs://acme-billing-exports"))
    );
    assert!(ident(p.a(), IdentName::ToolPrincipal).values.is_empty());
}

/// The object the agent exported, named `gs://B/O` in its log and
/// `projects/_/buckets/B/objects/O` in the audit log, is one value: searching for it finds
/// both.
#[test]
fn gcs_object_is_one_target_in_app_and_audit_logs() {
    let (_, p) = run(
        &[
            ("gcp-logging/billing-agent-gke-20261121T1400Z.json", "gcp/app.json"),
            ("gcp-audit/cloudaudit-20261121T1400Z.json", "gcp/audit.json"),
        ],
        &["--seed", GCS_OBJECT],
    );
    let a = p.a();
    let calls = events(a, EventKind::CloudApiCall);
    assert_eq!(
        calls.iter().map(|e| (e.operation.as_deref(), e.target.as_deref())).collect::<Vec<_>>(),
        [(Some("storage.objects.create"), Some(GCS_OBJECT))]
    );
    let app = a.sources.iter().find(|s| s.path == "gcp/app.json").expect("app log");
    assert_eq!(app.incident_records, 1, "the app's entries naming the object (one document)");
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)));
}

/// Cloud Deploy: the pod labels Cloud Deploy sets (`release-id`, `target-id`) name the
/// rollout of that release to that target — the deployment, not the wave-1 rollout of the
/// same release; its release's annotations and labels name the change (`CHG-20931`, written
/// lower-case in a label), its deploy parameters the bundle, its target's labels the wave.
/// The rollout's `approvalState` is a deploy approval, not the agent's approval id.
#[test]
fn cloud_deploy_rollout_of_the_release_to_the_target_closes_the_chain() {
    let (_, p) = run(
        &[
            ("gcp-logging/billing-agent-gke-20261121T1400Z.json", "gcp/app.json"),
            ("cloud-deploy/releases.json", "deploy/releases.json"),
            ("cloud-deploy/rollouts.json", "deploy/rollouts.json"),
            ("cloud-deploy/targets.json", "deploy/targets.json"),
        ],
        &["--trace-id", TRACE],
    );
    let a = p.a();
    let node = |n: NodeName| a.chain.nodes.iter().find(|x| x.name == n).expect("node").clone();
    let nodes: Vec<(NodeName, Option<String>)> = a.chain.nodes.iter().map(|n| (n.name, n.value.clone())).collect();
    assert_eq!(node(NodeName::Deployment).value.as_deref(), Some(ROLLOUT_WAVE_2), "{nodes:?}");
    assert_eq!(node(NodeName::Change).value.as_deref(), Some("CHG-20931"));
    assert_eq!(node(NodeName::Wave).value.as_deref(), Some("2"));
    assert_eq!(node(NodeName::Bundle).value.as_deref(), Some("rev-2026.11.21-3c9e41f"));
    for hop in &a.chain.hops {
        assert_eq!(hop.status, HopStatus::Linked, "{:?} → {:?}: {}", hop.from, hop.to, hop.why);
    }
    let hop = |f: NodeName| a.chain.hops.iter().find(|h| h.from == f).expect("hop");
    let cited = |f: NodeName| hop(f).citations.iter().map(|c| c.path.as_str()).collect::<Vec<_>>();
    assert_eq!(cited(NodeName::Session), ["gcp/app.json", "deploy/rollouts.json"]);
    assert_eq!(cited(NodeName::Deployment)[..2], ["deploy/rollouts.json", "deploy/releases.json"]);
    let wave_hop = a.chain.hops.iter().find(|h| h.from == NodeName::Change).expect("change → wave");
    assert_eq!(
        wave_hop.citations.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(),
        ["deploy/releases.json", "deploy/rollouts.json", "deploy/targets.json"]
    );
    let changes: Vec<&str> = ident(a, IdentName::ChangeId).values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(changes.len(), 1, "CHG-20870 is the previous release's: {changes:?}");
    // `labels.acme-change-id` (chg-20931) is the same value, in the same record.
    assert_eq!(ident(a, IdentName::ChangeId).values[0].fields, ["annotations.acme.io/change-id"]);
    let waves: Vec<&str> = ident(a, IdentName::RolloutWave).values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(waves, ["2"], "the release's target snapshots hold wave 1 too: not read");
    // One deploy event: the wave-2 rollout, on the chain.
    let deploys = events(a, EventKind::Deploy);
    let got: Vec<(Option<&str>, Option<&str>, Option<OutcomeStatus>, Option<&str>, Tie)> = deploys
        .iter()
        .map(|e| (id_of(e, "deployment_id"), e.target.as_deref(), outcome(e), detail_of(e, "deploy_approval"), e.tie))
        .collect();
    assert_eq!(
        got,
        [(Some(ROLLOUT_WAVE_2), Some("prod-wave-2"), Some(OutcomeStatus::Succeeded), Some("APPROVED"), Tie::Chain)]
    );
    assert_eq!(
        (start(deploys[0]), end(deploys[0])),
        (Some("2026-11-21T13:40:02.118093Z"), Some("2026-11-21T13:52:30.774001Z"))
    );
    assert_eq!(ident_value(a, IdentName::ApprovalId).1, None, "a deploy approval is no approval id");
}

/// A rollouts export larger than the pre-filter's threshold, one rollout per line: the line of
/// the incident's rollout names the release and the target apart (never the pair), and is
/// still read and taken as the deployment.
#[test]
fn cloud_deploy_rollout_found_in_a_large_jsonl_export() {
    let rollouts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format_fixture("cloud-deploy/rollouts.json")).expect("read"))
            .expect("json");
    let mut body = String::new();
    // 6000 rollouts of other releases (~2 MiB), then the fixture's two.
    for i in 0..6000 {
        let mut r = rollouts[1].clone();
        let rel = format!("rel-20261001-{i:07x}");
        r["name"] = format!(
            "projects/acme-agents-prod/locations/europe-west1/deliveryPipelines/billing-agent/releases/{rel}/rollouts/{rel}-to-prod-wave-2-0001"
        )
        .into();
        r["targetId"] = "prod-wave-2".into();
        body.push_str(&serde_json::to_string(&r).expect("json"));
        body.push('\n');
    }
    for r in rollouts.as_array().expect("array") {
        body.push_str(&serde_json::to_string(r).expect("json"));
        body.push('\n');
    }
    assert!(body.len() > 2 << 20, "{}", body.len());
    let dir = IncidentDir::new();
    dir.copy(&format_fixture("gcp-logging/billing-agent-gke-20261121T1400Z.json"), "gcp/app.json")
        .copy(&format_fixture("cloud-deploy/releases.json"), "deploy/releases.json")
        .copy(&format_fixture("cloud-deploy/targets.json"), "deploy/targets.json")
        .write("deploy/rollouts.jsonl", body);
    let p = preserve_dir(&dir, &["--trace-id", TRACE]);
    let a = p.a();
    let node = |n: NodeName| a.chain.nodes.iter().find(|x| x.name == n).expect("node").clone();
    assert_eq!(node(NodeName::Deployment).value.as_deref(), Some(ROLLOUT_WAVE_2));
    assert_eq!(node(NodeName::Change).value.as_deref(), Some("CHG-20931"));
    assert_eq!(node(NodeName::Wave).value.as_deref(), Some("2"));
}

// ---- Deployments ----

/// A generic CD pipeline log: the run whose id the services report as `deployment.id`
/// closes the chain to its change, wave and bundle. The wave is written 2, "2" and wave-2;
/// `previous_opa_bundles` names the revision the run replaced, never the deployed one.
#[test]
fn cd_pipeline_closes_the_chain_and_ignores_the_previous_bundle() {
    let (_, p) = run(
        &[
            ("otlp/traces-agent-run.otlp.json", "otel/traces.json"),
            ("cd-pipeline/agents-deploy.jsonl", "cd/agents-deploy.jsonl"),
        ],
        &["--trace-id", TRACE],
    );
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::ChangeId), (IdentStatus::Found, Some("CHG-20931")));
    let mut fields = ident(a, IdentName::ChangeId).values[0].fields.clone();
    fields.sort();
    assert_eq!(fields, ["acme.change.id", "change_id"]);
    assert_eq!(ident_value(a, IdentName::BundleId), (IdentStatus::Found, Some("rev-2026.11.21-3c9e41f")));
    let bundles: Vec<&str> = ident(a, IdentName::BundleId).values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(bundles, ["rev-2026.11.21-3c9e41f"], "rev-2026.11.14-8b20d7a is the previous bundle");
    // wave: 2 (number, lines 5 and 13) and "2" (string, line 11) are one value.
    let wave = ident(a, IdentName::RolloutWave);
    assert_eq!(wave.status, IdentStatus::Found);
    let two = wave.values.iter().find(|v| v.value == "2").expect("wave 2");
    assert_eq!(two.records, 3);
    let node = |n: NodeName| a.chain.nodes.iter().find(|x| x.name == n).expect("node").clone();
    assert_eq!(
        node(NodeName::Deployment).value.as_deref(),
        Some("deploy-run-7741903"),
        "not wave 1's deploy-run-7741850"
    );
    assert_eq!(node(NodeName::Change).value.as_deref(), Some("CHG-20931"));
    assert_eq!(node(NodeName::Bundle).value.as_deref(), Some("rev-2026.11.21-3c9e41f"));
    for hop in &a.chain.hops {
        assert_eq!(hop.status, HopStatus::Linked, "{:?} → {:?}: {}", hop.from, hop.to, hop.why);
    }
    // One deploy event for the run (its lines merged by run id), on the chain; the other
    // runs (wave 1, kb-deploy) are not the incident's.
    let deploys = events(a, EventKind::Deploy);
    assert_eq!(deploys.len(), 1);
    assert_eq!((deploys[0].tie, deploys[0].merged_by.as_slice()), (Tie::Chain, [MergeRule::RunId].as_slice()));
    let lines: Vec<Option<u64>> = deploys[0].citations.iter().map(|c| c.line).collect();
    assert_eq!(lines, (5..=13).map(Some).collect::<Vec<_>>());
    let t = deploys[0].citations.iter().find(|c| c.line == Some(11)).expect("line 11");
    assert_eq!(t.path, "cd/agents-deploy.jsonl");
}

/// Argo Rollouts and Argo CD logs: rollout steps are rollout events of their rollout, Argo
/// CD syncs deploy events of their application; a server log that starts with a gRPC access
/// line is still Argo.
#[test]
fn argo_rollout_steps_and_syncs() {
    let p = one_with("argo/argo-rollouts-controller.jsonl", &["--seed", "billing-agent"]);
    let steps: Vec<(Option<&str>, Option<&str>)> =
        events(p.a(), EventKind::Rollout).iter().map(|e| (detail_of(e, "step"), start(e))).collect();
    assert_eq!(
        steps,
        [
            (Some("1/4"), Some("2026-11-21T13:47:21Z")),
            (Some("2/4"), Some("2026-11-21T13:49:21Z")),
            (Some("3/4"), Some("2026-11-21T13:49:52Z")),
            (Some("4/4"), Some("2026-11-21T13:51:52Z")),
            (None, Some("2026-11-21T13:51:53Z")),
            (None, Some("2026-11-21T13:52:30Z")),
        ]
    );
    assert!(events(p.a(), EventKind::Rollout).iter().all(|e| e.target.as_deref() == Some("billing-agent")));

    let p = one_with("argo/argocd-application-controller.jsonl", &["--seed", "billing-agent"]);
    let d = events(p.a(), EventKind::Deploy);
    assert_eq!(
        (d.len(), d[0].target.as_deref(), start(d[0])),
        (1, Some("billing-agent"), Some("2026-11-21T13:46:57Z"))
    );

    let p = one_with("argo/argocd-server.jsonl", &["--seed", "3f9c2b1e8d7a6c5b4a39281706f5e4d3c2b1a098"]);
    assert_eq!(p.a().sources[0].format, "argo");
    let d = events(p.a(), EventKind::Deploy);
    assert_eq!(d.len(), 1, "cd-bot initiated sync: {d:?}");
    assert_eq!((d[0].target.as_deref(), d[0].citations[0].line), (Some("billing-agent"), Some(2)));
}

/// GitHub deployments: a deployment is a deploy event keyed by its numeric id, its statuses
/// join it (the newest decides), and its `payload` — a JSON string — names the change, the
/// wave and the bundle; the other deployments of the same change are not it.
#[test]
fn github_deployments_payload_string_names_change_wave_and_bundle() {
    let p = run(
        &[
            ("github-deployments/repos-brightwater-oncall-copilot-deployments.json", "gh/deployments.json"),
            (
                "github-deployments/repos-brightwater-oncall-copilot-deployments-1874392051-statuses.json",
                "gh/statuses.json",
            ),
        ],
        &["--seed", "1874392051"],
    )
    .1;
    let a = p.a();
    let deploys = events(a, EventKind::Deploy);
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    let d = deploys[0];
    assert_eq!(id_of(d, "deployment_id"), Some("1874392051"));
    assert_eq!(d.target.as_deref(), Some("prod-use2-b"));
    assert_eq!(d.citations.len(), 4, "the deployment and its three statuses");
    assert_eq!(outcome(d), Some(OutcomeStatus::Succeeded));
    assert_eq!(ident_value(a, IdentName::ChangeId), (IdentStatus::Found, Some("CR-88412")));
    assert_eq!(ident_value(a, IdentName::RolloutWave), (IdentStatus::Found, Some("2")));
    assert_eq!(ident_value(a, IdentName::BundleId), (IdentStatus::Found, Some("ocb-2026.12.13.2+9d1e7a3")));
    let bundle = ident(a, IdentName::BundleId);
    assert_eq!(bundle.values.len(), 1, "previous_config_bundle is superseded: {:?}", bundle.values);
    assert_eq!(bundle.values[0].fields, ["payload{}.config_bundle"]);
}

// ---- Egress ----

/// Envoy's default text format: bytes from the agent's point of view (`BYTES_RECEIVED` is
/// what the agent sent), the end from the duration, the upstream as the network path.
#[test]
fn envoy_text_bytes_are_the_agents_direction() {
    let p = one_with("envoy/envoy-default-format.log", &["--seed", "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"]);
    let e = events(p.a(), EventKind::EgressRequest);
    assert_eq!(e.len(), 1);
    let up = e[0];
    assert_eq!((up.target.as_deref(), up.operation.as_deref()), (Some("paste.example.net"), Some("POST")));
    assert_eq!(
        (detail_of(up, "bytes_out"), detail_of(up, "bytes_in")),
        (Some("48213"), Some("0")),
        "the agent sent 48 KB"
    );
    assert_eq!(outcome(up), Some(OutcomeStatus::Failed), "403 UAEX");
    let h = &p.a().egress[0];
    assert_eq!((h.host.as_str(), h.bytes_out, h.bytes_in, h.requests), ("paste.example.net", 48213, 0, 1));

    let p = one_with("envoy/envoy-default-format.log", &["--seed", ATTEMPT_1]);
    let e = events(p.a(), EventKind::EgressRequest)[0];
    assert_eq!((start(e), end(e)), (Some("2026-11-21T14:03:42.083Z"), Some("2026-11-21T14:04:12.084Z")), "30001 ms");
    assert_eq!(outcome(e), Some(OutcomeStatus::Unknown), "504 UT: it may have been applied");
    assert_eq!(detail_of(e, "upstream"), Some("203.0.113.40:443"));
    assert_eq!(detail_of(e, "source_address"), Some("10.42.3.17"));
    assert_eq!((detail_of(e, "bytes_out"), detail_of(e, "bytes_in")), (Some("412"), Some("24")));
}

/// Istio's text and JSON formats, joined to the trace by the mesh's `traceparent`; the
/// gateway's default-format lines of the same requests merge by request id.
#[test]
fn istio_text_and_json_and_the_gateway_merge_by_request_id() {
    let p = one_with("envoy/istio-proxy-text.log", &["--seed", ATTEMPT_1]);
    let e = events(p.a(), EventKind::EgressRequest)[0];
    assert_eq!(detail_of(e, "upstream"), Some("10.42.0.9:8080"), "the egress gateway");
    assert_eq!(detail_of(e, "response_code_details"), Some("upstream_response_timeout"));
    assert_eq!(
        detail_of(e, "upstream_cluster"),
        Some("outbound|80||istio-egressgateway.istio-system.svc.cluster.local")
    );

    let (_, p) = run(
        &[
            ("envoy/istio-proxy-json.log", "mesh/istio-proxy-json.log"),
            ("envoy/envoy-default-format.log", "gateway/access.log"),
        ],
        &["--trace-id", TRACE],
    );
    let a = p.a();
    let e = events(a, EventKind::EgressRequest);
    let got: Vec<(Option<&str>, Vec<(&str, Option<u64>)>, Option<OutcomeStatus>)> = e
        .iter()
        .map(|x| (id_of(x, "request_id"), x.citations.iter().map(|c| (c.path.as_str(), c.line)).collect(), outcome(x)))
        .collect();
    assert_eq!(
        got,
        [
            (
                Some(ATTEMPT_1),
                vec![("gateway/access.log", Some(3)), ("mesh/istio-proxy-json.log", Some(1))],
                Some(OutcomeStatus::Unknown)
            ),
            (
                Some(ATTEMPT_2),
                vec![("gateway/access.log", Some(4)), ("mesh/istio-proxy-json.log", Some(2))],
                Some(OutcomeStatus::Succeeded)
            ),
        ]
    );
    assert!(e.iter().all(|x| x.merged_by == [MergeRule::RequestId]));
    // The older proxy's all-string line carries another trace: not the incident's.
    assert_eq!(a.sources.iter().find(|s| s.path == "mesh/istio-proxy-json.log").map(|s| s.incident_records), Some(2));
    let h = &a.egress[0];
    assert_eq!((h.host.as_str(), h.requests, h.bytes_out, h.bytes_in), ("payments.example.com", 2, 824, 342));
}

/// Squid: the time is when the transaction ended (the start is `elapsed` earlier), and a
/// `TCP_TUNNEL/200` says the tunnel was set up, nothing of the HTTPS request inside it.
#[test]
fn squid_time_is_the_end_and_a_tunnel_is_not_an_outcome() {
    let (_, records, _) = scan_file(&format_fixture("squid/access.log"));
    assert_eq!(records.len(), 7);
    // 1795269852.090, 30007 ms: 14:04:12.090 − 30.007 s.
    assert_eq!(records[1].time().as_deref(), Some("2026-11-21T14:03:42.083Z"));
    assert_eq!(records[1].events(), [(EventKind::EgressRequest, Some("payments.example.com".to_string()), None)]);
    assert_eq!(
        records[3].events(),
        [(EventKind::EgressRequest, Some("paste.example.net".to_string()), Some(OutcomeStatus::Failed))]
    );
    let (_, records, _) = scan_file(&format_fixture("squid/access-combined.log"));
    assert_eq!(records[0].events(), [(EventKind::EgressRequest, Some("payments.example.com".to_string()), None)]);

    // Joined to the mesh's record of attempt 1 (same host, source address, time): the 504
    // stays unknown.
    let (_, p) = run(
        &[("envoy/istio-proxy-json.log", "mesh/istio-proxy-json.log"), ("squid/access.log", "proxy/access.log")],
        &["--trace-id", TRACE],
    );
    let e = events(p.a(), EventKind::EgressRequest);
    let first = e.iter().find(|x| id_of(x, "request_id") == Some(ATTEMPT_1)).expect("attempt 1");
    assert_eq!(outcome(first), Some(OutcomeStatus::Unknown), "{:?}", first.outcome);
    assert!(first.citations.iter().any(|c| c.path == "proxy/access.log" && c.line == Some(2)), "{:?}", first.citations);
    assert_eq!(end(first), Some("2026-11-21T14:04:12.090Z"), "the tunnel closed last");
    assert_eq!(first.principal.as_deref(), Some("billing-agent"), "the proxy-auth user");
}

// ---- Logs and workflows ----

/// CloudWatch `filter-log-events`: identifiers inside the `message` string (JSON, JSON after
/// a tab-separated prefix, the REPORT line's X-Ray id).
#[test]
fn cloudwatch_messages_are_read_inside_their_string() {
    let p = one_with("cloudwatch-logs/filter-log-events.json", &["--seed", IDEM]);
    let a = p.a();
    assert_eq!(ident_value(a, IdentName::TraceId), (IdentStatus::Found, Some(TRACE)));
    let mut fields = ident(a, IdentName::TraceId).values[0].fields.clone();
    fields.sort();
    assert_eq!(fields, ["message{}.request.headers.traceparent", "message{}.xray_trace_id", "message~TraceId"]);
    assert_eq!(ident(a, IdentName::TraceId).values[0].records, 3);
}

/// Loki `query_range`: JSON and logfmt lines, upper-case ids, a `traceparent=` pair and the
/// `conversation=` session.
#[test]
fn loki_json_and_logfmt_lines() {
    let p = one("cloudwatch-logs/loki-query-range.json");
    let a = p.a();
    assert_eq!(ident(a, IdentName::TraceId).values[0].records, 4, "every line holds the trace, in 3 forms");
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some(APPROVAL)));
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some(IDEM)));
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some(SESSION)), "logfmt conversation=");
}

/// Temporal: the trace id inside base64 JSON in the `_tracer-data` header; the activity's
/// attempt 1 (a StartToClose timeout, known only from `lastFailure`) and attempt 2 are two
/// attempts.
#[test]
fn temporal_history_base64_payloads_and_activity_attempts() {
    let p = one("temporal/workflow-show-refund-idem-2c7e9a41f0b35d86.json");
    let a = p.a();
    assert_eq!(
        ident_value(a, IdentName::IdempotencyKey),
        (IdentStatus::Found, Some(IDEM)),
        "in the base64 input payload"
    );
    assert_eq!(subjects(&p), [CUSTOMER]);
    let attempts: Vec<(Option<&str>, Option<OutcomeStatus>, Option<&str>)> =
        events(a, EventKind::ToolCall).iter().map(|e| (e.target.as_deref(), outcome(e), start(e))).collect();
    assert_eq!(
        attempts,
        [
            (Some("charge_refund"), Some(OutcomeStatus::Unknown), Some("2026-11-21T14:03:42.240160773Z")),
            (Some("charge_refund"), Some(OutcomeStatus::Succeeded), Some("2026-11-21T14:04:04.553016842Z")),
        ]
    );
    let p = one("temporal/history-short-enums-notify.json");
    assert_eq!(p.a().sources[0].format, "temporal");
    assert_eq!(p.a().seeds[0].records, 1, "the short-enum history holds the trace in its header");
}

/// Claude Code transcripts and Agent SDK stream-json: `tool_use` blocks are tool calls, the
/// `tool_result` blocks of later lines their outcomes (merged by the call id), the lines of one
/// API response one model call, and `requestId` (Anthropic's) joins nothing.
#[test]
fn claude_transcript_tool_calls_take_their_results_and_one_response_is_one_model_call() {
    let p = one_with("claude-code/7d2f0b64-1c3e-4a59-9b8d-2e6f4a1c0d37.jsonl", &["--seed", CUSTOMER]);
    let a = p.a();
    assert_eq!(p.a().sources[0].format, "claude_transcript");
    assert_eq!(count(a, EventKind::ToolCall), 4, "{:?}", counts(a));
    assert_eq!(count(a, EventKind::ModelCall), 4, "{:?}", counts(a));
    assert_eq!(
        ident_value(a, IdentName::SessionId),
        (IdentStatus::Found, Some("7d2f0b64-1c3e-4a59-9b8d-2e6f4a1c0d37"))
    );
    let calls = events(a, EventKind::ToolCall);
    let refunds: Vec<_> = calls.iter().filter(|e| e.target.as_deref() == Some("issue_refund")).collect();
    assert_eq!(refunds.len(), 2, "{calls:?}");
    // The MCP server is a detail; the tool is the name after it.
    assert_eq!(detail_of(refunds[0], "mcp_server"), Some("billing"));
    assert_eq!(outcome(refunds[0]), Some(OutcomeStatus::Unknown), "{:?}", refunds[0]);
    assert!(refunds[1].outcome.as_ref().is_some_and(|o| o.replayed), "{:?}", refunds[1]);
    assert!(refunds.iter().all(|e| id_of(e, "idempotency_key") == Some(IDEM)), "{refunds:?}");
    let action = a.actions.iter().find(|x| x.idempotency_key.as_deref() == Some(IDEM)).expect("the refund's action");
    assert_eq!(action.attempts.len(), 2);
    assert!(!action.duplicate);
    assert!(calls.iter().all(|e| id_of(e, "request_id").is_none()), "{calls:?}");

    let p = one_with("claude-code/agent-sdk-stream.jsonl", &["--seed", "idem-77b0c2e9d4a1f635"]);
    let a = p.a();
    let calls = events(a, EventKind::ToolCall);
    assert_eq!(calls.len(), 1, "{:?}", counts(a));
    // "card_declined: … rejected by the issuer": the caller was refused, nothing applied.
    assert_eq!(outcome(calls[0]), Some(OutcomeStatus::Failed), "{:?}", calls[0]);
    assert_eq!(
        ident_value(a, IdentName::SessionId),
        (IdentStatus::Found, Some("c41e9a07-5d2b-4f83-a6e0-9b1c7d3f2e58"))
    );
}
