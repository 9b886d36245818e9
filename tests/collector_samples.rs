//! The genuine upstream samples in `fixtures/samples/` (their sources and licences in
//! `fixtures/samples/SOURCES.md`), read through the library: the format each is detected as,
//! and the identifiers and events each must yield.

use crate::collector_util::*;
use custody::collect::analysis::{EventKind, OutcomeStatus};
use custody::collect::analyze::{IdentName, Layout, Problem};

#[test]
fn every_sample_is_detected_as_its_format() {
    let table: [(&str, &str); 17] = [
        ("otlp-json/opentelemetry-proto_examples_trace.json", "otlp"),
        ("otlp-json/opentelemetry-proto_examples_logs.json", "otlp"),
        ("otlp-json/jaeger/cmd_jaeger_internal_extension_jaegerquery_internal_fixture_otlp2jaeger-in.json", "otlp"),
        ("otlp-json/jaeger/internal_storage_integration_fixtures_traces_example_trace.json", "otlp"),
        ("otlp-json/jaeger/internal_storage_integration_fixtures_traces_link_attributes_trace.json", "otlp"),
        ("otlp-json/jaeger/internal_storage_v2_memory_fixtures_otel_traces_01.json", "otlp"),
        ("otlp-jsonl/otel-spec_file-exporter_logs_example_line1.jsonl", "otlp"),
        ("otlp-jsonl/otel-spec_file-exporter_traces_example_line1.jsonl", "otlp"),
        ("opa-decision-log/opa_docs_decision_log_upload_body.json", "opa"),
        ("envoy-access-log/envoy_docs_default_format_example.log", "envoy_text"),
        ("openai-agents-hitl/v1_14_hosted_mcp_approval_scope.json", "agents_run_state"),
        ("openai-agents-hitl/v1_16_per_call_approval_override.json", "agents_run_state"),
        // Flat attribute maps: no format of their own, read as generic JSON.
        ("openinference/openinference_client_span_tool_calls.json", "json"),
        ("openinference/otel_genai_client_span_tool_calls.json", "json"),
        ("openinference/otel_genai_tool_execution_span.json", "json"),
        // YAML: text.
        ("otel-genai-semconv/model_gen-ai_registry.yaml", "text_log"),
        ("otel-genai-semconv/model_gen-ai_spans.yaml", "text_log"),
    ];
    let root = repo().join("fixtures/samples");
    let mut on_disk: Vec<String> = walk(&root)
        .into_iter()
        .map(|p| p.strip_prefix(&root).expect("under root").display().to_string())
        .filter(|p| !p.starts_with("LICENSES/") && p != "SOURCES.md")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = table.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every sample is in this table");
    for (rel, format) in table {
        let path = sample(rel);
        assert_eq!(detect_file(&path).name(), format, "{rel}");
        let (_, records, summary) = scan_file(&path);
        assert!(!records.is_empty(), "{rel}");
        assert_ne!(summary.layout, Layout::None, "{rel}");
    }
    // Each sample's licence is named in SOURCES.md and its text is in LICENSES/.
    let sources = std::fs::read_to_string(sample("SOURCES.md")).expect("SOURCES.md");
    for folder in [
        "otlp-json/",
        "otlp-jsonl/",
        "opa-decision-log/",
        "envoy-access-log/",
        "openinference/",
        "openai-agents-hitl/",
        "otel-genai-semconv/",
    ] {
        assert!(sources.contains(&format!("| {folder} |")), "{folder} is not listed in SOURCES.md");
    }
    for l in ["Apache-2.0.txt", "MIT-openai-agents-python.txt"] {
        assert!(sample(&format!("LICENSES/{l}")).is_file(), "{l}");
    }
}

/// The JSON-carrying samples parse without a single problem record.
#[test]
fn json_samples_scan_without_problems() {
    for rel in [
        "otlp-json/opentelemetry-proto_examples_trace.json",
        "otlp-json/opentelemetry-proto_examples_logs.json",
        "otlp-json/jaeger/internal_storage_v2_memory_fixtures_otel_traces_01.json",
        "otlp-jsonl/otel-spec_file-exporter_traces_example_line1.jsonl",
        "opa-decision-log/opa_docs_decision_log_upload_body.json",
        "openai-agents-hitl/v1_14_hosted_mcp_approval_scope.json",
        "openinference/otel_genai_tool_execution_span.json",
        "otel-genai-semconv/model_gen-ai_spans.yaml",
    ] {
        let (_, records, _) = scan_file(&sample(rel));
        let problems: Vec<Problem> = records.iter().filter_map(|r| r.problem.clone()).collect();
        assert!(problems.is_empty(), "{rel}: {problems:?}");
    }
}

/// A text file that is not a log (YAML with JSON examples inside) is read as text: the
/// JSON example's opening `{` line is not a broken JSON record of the evidence.
#[test]
fn yaml_with_json_examples_is_not_reported_as_broken_json() {
    let (_, records, _) = scan_file(&sample("otel-genai-semconv/model_gen-ai_registry.yaml"));
    let problems: Vec<(Option<u64>, Problem)> =
        records.iter().filter_map(|r| r.problem.clone().map(|p| (r.line, p))).collect();
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn otlp_upper_case_hex_trace_ids_are_normalised() {
    for rel in ["otlp-json/opentelemetry-proto_examples_trace.json", "otlp-json/opentelemetry-proto_examples_logs.json"]
    {
        let (_, records, _) = scan_file(&sample(rel));
        // The files write 5B8EFFF798038103D269B633813FC60C.
        assert_eq!(values(&records, IdentName::TraceId), ["5b8efff798038103d269b633813fc60c"], "{rel}");
        let (_, _, field) =
            records[0].identifiers().into_iter().find(|(i, _, _)| *i == IdentName::TraceId).expect("trace");
        assert_eq!(field, "traceId", "{rel}");
        assert!(
            records[0].time().as_deref().unwrap_or("").starts_with("2018-12-13T14:51:00"),
            "{rel}: {:?}",
            records[0].time()
        );
    }
}

#[test]
fn jaeger_fixtures_yield_one_record_per_span_with_every_trace() {
    let (_, records, _) =
        scan_file(&sample("otlp-json/jaeger/internal_storage_v2_memory_fixtures_otel_traces_01.json"));
    assert_eq!(records.len(), 4);
    assert_eq!(
        values(&records, IdentName::TraceId),
        ["00000000000000010000000000000000", "00000000000000020000000000000000"]
    );
    // A link's trace id is not the span's trace: the link-attributes fixture has one trace.
    let (_, records, _) =
        scan_file(&sample("otlp-json/jaeger/internal_storage_integration_fixtures_traces_link_attributes_trace.json"));
    assert_eq!(values(&records, IdentName::TraceId), ["00000000000000000000000000000226"]);
}

#[test]
fn file_exporter_line_with_an_empty_trace_id_is_tolerated() {
    let (_, records, summary) = scan_file(&sample("otlp-jsonl/otel-spec_file-exporter_traces_example_line1.jsonl"));
    assert_eq!(summary.layout, Layout::Lines);
    assert_eq!(records.len(), 2, "two spans, both with an empty traceId");
    assert!(records.iter().all(|r| r.values(IdentName::TraceId).is_empty() && r.problem.is_none()));
    let (_, records, _) = scan_file(&sample("otlp-jsonl/otel-spec_file-exporter_logs_example_line1.jsonl"));
    assert_eq!(records.len(), 2);
    assert_eq!(values(&records, IdentName::TraceId), ["08040201000000000000000000000000"]);
    assert!(records[1].values(IdentName::TraceId).is_empty());
}

/// OPA's documented upload body: `bundles.authz.revision` is the bundle, and the decision is
/// one policy decision with its id and path.
#[test]
fn opa_upload_revision_is_the_bundle_and_each_entry_a_decision() {
    let (_, records, _) = scan_file(&sample("opa-decision-log/opa_docs_decision_log_upload_body.json"));
    assert_eq!(values(&records, IdentName::BundleId), ["W3sibCI6InN5cy9jYXRhbG9nIiwicyI6NDA3MX1d"]);
    let (_, _, field) =
        records[0].identifiers().into_iter().find(|(i, _, _)| *i == IdentName::BundleId).expect("bundle");
    assert_eq!(field, "bundles.authz.revision");
    assert_eq!(records[0].events(), [(EventKind::PolicyDecision, Some("http/example/authz/allow".to_string()), None)]);
    let links = records[0].links();
    assert!(
        links.iter().any(|(k, v, _)| k == "decision_id" && v == "4ca636c1-55e4-417a-b1d8-4aceb67960d1"),
        "{links:?}"
    );
}

#[test]
fn envoy_docs_line_is_an_egress_request() {
    let (_, records, _) = scan_file(&sample("envoy-access-log/envoy_docs_default_format_example.log"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].time().as_deref(), Some("2016-04-15T20:17:00.310Z"));
    assert_eq!(
        records[0].events(),
        [(EventKind::EgressRequest, Some("locations".to_string()), Some(OutcomeStatus::Succeeded))]
    );
}

/// The SDK's own RunState fixtures: per-call approval overrides and hosted-MCP approvals.
#[test]
fn run_state_samples_yield_their_approvals() {
    let (_, records, _) = scan_file(&sample("openai-agents-hitl/v1_16_per_call_approval_override.json"));
    // `current_agent.name` is a display name: a linking value, not an agent id.
    assert!(values(&records, IdentName::AgentId).is_empty());
    assert!(
        records[0].links().iter().any(|(k, v, _)| k == "agent_name" && v == "compat-agent"),
        "{:?}",
        records[0].links()
    );
    let ev = record_events(&records);
    let decisions: Vec<&Option<String>> =
        ev.iter().filter(|(k, _)| *k == EventKind::ApprovalDecision).map(|(_, t)| t).collect();
    assert!(decisions.iter().all(|t| t.as_deref() == Some("sensitive_tool")), "{ev:?}");
    assert!(decisions.len() >= 2, "the call-wide approval and the per-call rejection: {ev:?}");
    let (_, records, _) = scan_file(&sample("openai-agents-hitl/v1_14_hosted_mcp_approval_scope.json"));
    let ev = record_events(&records);
    assert!(
        ev.iter().any(|(k, t)| *k == EventKind::ApprovalDecision && t.as_deref() == Some("lookup_account")),
        "{ev:?}"
    );
}

/// An OTel GenAI `execute_tool` attribute map read as generic JSON is a tool call.
#[test]
fn genai_tool_execution_attributes_are_a_tool_call() {
    let (_, records, _) = scan_file(&sample("openinference/otel_genai_tool_execution_span.json"));
    assert_eq!(record_events(&records), [(EventKind::ToolCall, Some("get_weather".to_string()))]);
    let links = records[0].links();
    assert!(links.iter().any(|(k, v, f)| k == "call_id" && v == "1234" && f == "gen_ai.tool.call.id"), "{links:?}");
}
