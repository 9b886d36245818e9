//! Every real-world sample under ../shared/formats, read in place: format detection and
//! the identifiers / facts each one must yield.

use crate::collector_util as common;

use common::{formats_dir, scan_file, values};
use custody::collect::analyze::{Fact, FieldMapping, Format, IdentName, Layout};

fn sample(rel: &str) -> std::path::PathBuf {
    formats_dir().join(rel)
}

#[test]
fn every_sample_is_detected_as_its_format() {
    let expected = [
        ("otlp-json/opentelemetry-proto_examples_trace.json", Format::OtlpJson),
        ("otlp-json/opentelemetry-proto_examples_logs.json", Format::OtlpJson),
        (
            "otlp-json/jaeger/cmd_jaeger_internal_extension_jaegerquery_internal_fixture_otlp2jaeger-in.json",
            Format::OtlpJson,
        ),
        ("otlp-json/jaeger/internal_storage_integration_fixtures_traces_example_trace.json", Format::OtlpJson),
        ("otlp-json/jaeger/internal_storage_integration_fixtures_traces_link_attributes_trace.json", Format::OtlpJson),
        ("otlp-json/jaeger/internal_storage_v2_memory_fixtures_otel_traces_01.json", Format::OtlpJson),
        ("otlp-jsonl/otel-spec_file-exporter_logs_example_line1.jsonl", Format::OtlpJsonl),
        ("otlp-jsonl/otel-spec_file-exporter_traces_example_line1.jsonl", Format::OtlpJsonl),
        ("opa-decision-log/opa_docs_decision_log_upload_body.json", Format::OpaUpload),
        ("envoy-access-log/envoy_docs_default_format_example.log", Format::EnvoyText),
        ("openai-agents-hitl/v1_14_hosted_mcp_approval_scope.json", Format::AgentsRunState),
        ("openai-agents-hitl/v1_16_per_call_approval_override.json", Format::AgentsRunState),
        ("openinference/openinference_client_span_tool_calls.json", Format::Json),
        ("openinference/otel_genai_client_span_tool_calls.json", Format::Json),
        ("openinference/otel_genai_tool_execution_span.json", Format::Json),
        ("otel-genai-semconv/model_gen-ai_registry.yaml", Format::Opaque),
        ("otel-genai-semconv/model_gen-ai_spans.yaml", Format::Opaque),
    ];
    // Every file in the folder is covered by the table.
    let all = common::walk(&formats_dir());
    let listed = all.iter().filter(|p| !p.ends_with("SOURCES.md")).count();
    assert_eq!(listed, expected.len());
    for (rel, fmt) in expected {
        assert_eq!(common::detect_file(&sample(rel)), fmt, "{rel}");
        let (_, records, summary) = scan_file(&sample(rel), None, &FieldMapping::default());
        assert!(records.iter().all(|r| r.problem.is_none()), "{rel}: {records:?}");
        if fmt != Format::Opaque {
            assert!(!records.is_empty(), "{rel}");
        } else {
            assert_eq!(summary.layout, Layout::None);
        }
    }
}

#[test]
fn otlp_uppercase_hex_trace_ids_are_normalised_with_raw_kept() {
    let m = FieldMapping::default();
    for rel in ["otlp-json/opentelemetry-proto_examples_trace.json", "otlp-json/opentelemetry-proto_examples_logs.json"]
    {
        let (_, records, _) = scan_file(&sample(rel), None, &m);
        assert_eq!(values(&records, IdentName::TraceId), vec!["5b8efff798038103d269b633813fc60c"]);
        let o = &records[0].observations[0];
        assert_eq!(o.raw.as_deref(), Some("5B8EFFF798038103D269B633813FC60C"));
        assert_eq!(o.field, "traceId");
        assert!(records[0].timestamp.as_deref().unwrap_or("").starts_with("2018-12-13T14:51:00"));
    }
}

#[test]
fn jaeger_fixtures_yield_one_record_per_span_with_every_trace() {
    let m = FieldMapping::default();
    let (_, records, _) =
        scan_file(&sample("otlp-json/jaeger/internal_storage_v2_memory_fixtures_otel_traces_01.json"), None, &m);
    assert_eq!(records.len(), 4);
    assert_eq!(
        values(&records, IdentName::TraceId),
        vec!["00000000000000010000000000000000", "00000000000000020000000000000000"]
    );
    // Link trace ids are not the span's trace: the link-attributes fixture has one trace.
    let (_, records, _) = scan_file(
        &sample("otlp-json/jaeger/internal_storage_integration_fixtures_traces_link_attributes_trace.json"),
        None,
        &m,
    );
    assert_eq!(values(&records, IdentName::TraceId), vec!["00000000000000000000000000000226"]);
}

#[test]
fn file_exporter_line_with_empty_trace_id_is_tolerated() {
    let m = FieldMapping::default();
    let (_, records, summary) =
        scan_file(&sample("otlp-jsonl/otel-spec_file-exporter_traces_example_line1.jsonl"), None, &m);
    assert_eq!(summary.layout, Layout::Lines);
    assert_eq!(records.len(), 2); // two spans, both with empty traceId
    assert!(records.iter().all(|r| r.observations.is_empty() && r.problem.is_none()));
    let (_, records, _) = scan_file(&sample("otlp-jsonl/otel-spec_file-exporter_logs_example_line1.jsonl"), None, &m);
    assert_eq!(records.len(), 2);
    assert_eq!(values(&records, IdentName::TraceId), vec!["08040201000000000000000000000000"]);
    assert!(records[1].observations.is_empty());
}

#[test]
fn opa_upload_revision_is_the_bundle_id() {
    let (_, records, _) =
        scan_file(&sample("opa-decision-log/opa_docs_decision_log_upload_body.json"), None, &FieldMapping::default());
    assert_eq!(values(&records, IdentName::BundleId), vec!["W3sibCI6InN5cy9jYXRhbG9nIiwicyI6NDA3MX1d"]);
    assert_eq!(records[0].observations[0].field, "bundles.authz.revision");
    assert_eq!(
        records[0].facts,
        vec![Fact::Decision {
            decision_id: Some("4ca636c1-55e4-417a-b1d8-4aceb67960d1".into()),
            path: Some("http/example/authz/allow".into()),
            result: Some("true".into()),
        }]
    );
}

#[test]
fn envoy_default_line_is_an_egress_fact() {
    let (_, records, _) =
        scan_file(&sample("envoy-access-log/envoy_docs_default_format_example.log"), None, &FieldMapping::default());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].timestamp.as_deref(), Some("2016-04-15T20:17:00.310Z"));
    assert!(matches!(
        &records[0].facts[0],
        Fact::Egress { destination, method: Some(m), status: Some(204), bytes_received: Some(154), .. }
            if destination == "locations" && m == "POST"
    ));
}

fn approvals_of(
    records: &[custody::collect::analyze::Record],
) -> Vec<(Option<String>, Option<String>, Option<String>)> {
    records
        .iter()
        .flat_map(|r| r.facts.iter())
        .filter_map(|f| match f {
            Fact::Approval { tool, decision, call_id, .. } => Some((tool.clone(), call_id.clone(), decision.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn run_state_approvals_are_reported() {
    let m = FieldMapping::default();
    let (_, records, _) = scan_file(&sample("openai-agents-hitl/v1_16_per_call_approval_override.json"), None, &m);
    assert_eq!(values(&records, IdentName::AgentId), vec!["compat-agent"]);
    let a = approvals_of(&records);
    assert!(a.contains(&(Some("sensitive_tool".into()), None, Some("approved (all calls)".into()))));
    assert!(a.contains(&(Some("sensitive_tool".into()), Some("exception-call".into()), Some("rejected".into()))));
    let (_, records, _) = scan_file(&sample("openai-agents-hitl/v1_14_hosted_mcp_approval_scope.json"), None, &m);
    let a = approvals_of(&records);
    assert!(a.contains(&(Some("lookup_account".into()), Some("mcp-request-1".into()), Some("approved".into()))));
    assert_eq!(a.len(), 2);
}

#[test]
fn genai_tool_execution_span_map_is_a_tool_call() {
    let (_, records, _) =
        scan_file(&sample("openinference/otel_genai_tool_execution_span.json"), None, &FieldMapping::default());
    assert_eq!(
        records[0].facts,
        vec![Fact::ToolCall {
            tool: "get_weather".into(),
            call_id: Some("1234".into()),
            principal: None,
            idempotency_key: None,
            outcome: None
        }]
    );
}
