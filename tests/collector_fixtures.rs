//! Hand-written fixtures for every format and every kind of bad input, plus analyzer
//! behaviour (fixpoint, noise isolation, conflicts, side-effect hint).

use crate::collector_util as common;

use common::{fixtures_dir, scan_bytes, scan_file, values};
use custody::collect::analyze::{
    scan, scan_with_limits, Analyzer, Compression, Fact, FieldMapping, Format, IdentName, IdentStatus, Layout, Problem,
    ScanLimits, SideEffectStatus,
};
use std::io::Write;

const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "sess-fixture-0001";

fn fx(rel: &str) -> std::path::PathBuf {
    fixtures_dir().join(rel)
}

fn problems(records: &[custody::collect::analyze::Record]) -> Vec<Problem> {
    records.iter().filter_map(|r| r.problem.clone()).collect()
}

#[test]
fn otlp_base64_trace_ids_and_genai_attributes() {
    let (fmt, records, summary) = scan_file(&fx("otlp/traces-base64.json"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::OtlpJson);
    assert_eq!(summary.layout, Layout::Document);
    assert_eq!(records.len(), 3);
    assert_eq!(values(&records, IdentName::TraceId), vec![T1]);
    let raw = records[0].observations.iter().find(|o| o.ident == IdentName::TraceId).and_then(|o| o.raw.clone());
    assert_eq!(raw.as_deref(), Some("S/kvNXezTaajzpKdDg5HNg=="));
    assert_eq!(values(&records, IdentName::SessionId), vec![S]);
    assert_eq!(values(&records, IdentName::AgentId), vec!["agent-fx"]);
    assert_eq!(values(&records, IdentName::ToolPrincipal), vec!["svc-fx@prod"]);
    // Resource attributes: deployment.id → bundle, rollout wave, on every span.
    assert_eq!(values(&records, IdentName::BundleId), vec!["bundle-fx-7"]);
    assert!(records.iter().all(|r| r
        .observations
        .iter()
        .any(|o| o.ident == IdentName::RolloutWave && o.field == "resource.attributes.deployment.rollout_wave")));
    assert_eq!(values(&records, IdentName::ChangeId), vec!["chg-123"]);
    assert_eq!(values(&records, IdentName::IdempotencyKey), vec!["idem-fx-1"]);
    assert_eq!(
        records[1].facts,
        vec![Fact::ToolCall {
            tool: "create_ticket".into(),
            call_id: Some("call_1".into()),
            principal: Some("svc-fx@prod".into()),
            idempotency_key: Some("idem-fx-1".into()),
            outcome: Some("error: deadline exceeded".into())
        }]
    );
    assert_eq!(records[1].timestamp.as_deref(), Some("2025-11-21T04:40:00.500Z"));
    assert_eq!(
        records[2].facts,
        vec![Fact::Memory { memory_id: Some("kb-main".into()), op: Some("retrieval".into()) }]
    );
}

#[test]
fn otlp_logs_jsonl_vendor_session_attributes_and_empty_trace_id() {
    let (fmt, records, _) =
        scan_file(&fx("otlp/logs-vendor-session-empty-trace-id.otlp.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::OtlpJsonl);
    assert_eq!(records.len(), 3);
    assert_eq!(records.iter().map(|r| r.line).collect::<Vec<_>>(), vec![Some(1), Some(2), Some(3)]);
    assert_eq!(records[0].observations[0].value, T1); // uppercase in the file
    assert!(records[1].observations.iter().all(|o| o.ident != IdentName::TraceId));
    assert_eq!(values(&records, IdentName::SessionId), vec![S, "sess-other"]);
    let fields: Vec<&str> = records
        .iter()
        .flat_map(|r| r.observations.iter())
        .filter(|o| o.ident == IdentName::SessionId)
        .map(|o| o.field.as_str())
        .collect();
    assert_eq!(fields, vec!["attributes.langfuse.session.id", "attributes.session.id", "attributes.mcp.session.id"]);
}

#[test]
fn opa_console_lines_with_top_level_revision() {
    let (fmt, records, _) = scan_file(&fx("opa/console-top-level-revision.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::OpaJsonl);
    assert_eq!(records.len(), 2);
    let first = &records[0];
    let get =
        |i: IdentName| first.observations.iter().find(|o| o.ident == i).map(|o| (o.value.as_str(), o.field.as_str()));
    assert_eq!(get(IdentName::BundleId), Some(("bundle-fx-7", "revision")));
    assert_eq!(get(IdentName::TraceId), Some((T1, "trace_id")));
    assert_eq!(get(IdentName::SessionId), Some((S, "input.session_id")));
    assert_eq!(get(IdentName::ToolPrincipal), Some(("svc-fx@prod", "input.principal")));
    assert!(
        matches!(&first.facts[0], Fact::Decision { decision_id: Some(d), result: Some(r), .. } if d == "d-1" && r == r#"{"allow":true}"#)
    );
    assert_eq!(records[1].observations[0].value, "bundle-other");
}

#[test]
fn gzipped_opa_upload_is_scanned_through_the_decompressor() {
    let path = fx("opa/upload-gzip-bundle-revision.json.gz");
    assert_eq!(common::detect_file(&path), Format::OpaUpload);
    let (_, records, summary) = scan_file(&path, None, &FieldMapping::default());
    assert_eq!(summary.compression, Some(Compression::Gzip));
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.decompressed));
    assert_eq!(values(&records, IdentName::BundleId), vec!["bundle-fx-7"]);
    assert_eq!(values(&records, IdentName::ApprovalId), vec!["apr-fx-1"]);
    // The whole decompressed document is the record.
    assert_eq!(records[0].offset, 0);
    assert_eq!(records[0].len, summary.bytes_scanned);
}

#[test]
fn zstd_jsonl_is_scanned_with_decompressed_offsets() {
    let path = fx("generic/tool-calls-zstd-compressed.jsonl.zst");
    assert_eq!(common::detect_file(&path), Format::Jsonl);
    let (_, records, summary) = scan_file(&path, None, &FieldMapping::default());
    assert_eq!(summary.compression, Some(Compression::Zstd));
    assert_eq!(records.len(), 50);
    assert!(records.iter().all(|r| r.decompressed));
    // Offsets are in the decompressed stream: reproduce them.
    let mut dec = Vec::new();
    let f = std::fs::File::open(&path).expect("open");
    std::io::Read::read_to_end(&mut zstd::stream::read::Decoder::new(f).expect("zstd"), &mut dec).expect("decode");
    for r in &records {
        let slice = &dec[r.offset as usize..(r.offset + r.len) as usize];
        assert!(slice.starts_with(b"{") && slice.ends_with(b"}"));
        assert!(String::from_utf8_lossy(slice).contains("idem-fx-3"));
    }
}

#[test]
fn approval_records_and_run_state_interruptions() {
    let (fmt, records, _) = scan_file(&fx("approvals/generic-approval-records.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::ApprovalJsonl);
    assert!(
        matches!(&records[0].facts[0], Fact::Approval { approval_id: Some(a), tool: Some(t), decision: Some(d), approver: Some(p), .. }
        if a == "apr-fx-1" && t == "create_ticket" && d == "timeout" && p == "oncall-3")
    );
    assert_eq!(records[0].timestamp.as_deref(), Some("2025-11-21T04:40:00.250Z"));
    let (fmt, records, _) = scan_file(&fx("approvals/runstate-interruption.json"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::AgentsRunState);
    assert_eq!(values(&records, IdentName::SessionId), vec![S]); // conversation_id
    let pending = records[0].facts.iter().any(
        |f| matches!(f, Fact::Approval { call_id: Some(c), decision: Some(d), .. } if c == "call_7" && d == "pending"),
    );
    let rejected = records[0].facts.iter().any(|f| matches!(f, Fact::Approval { call_id: Some(c), decision: Some(d), tool: Some(t), .. } if c == "call_9" && d == "rejected" && t == "delete_record"));
    assert!(pending && rejected, "{:?}", records[0].facts);
}

#[test]
fn egress_envoy_json_text_and_squid() {
    let (fmt, records, _) = scan_file(&fx("egress/envoy-access.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::EnvoyJson);
    assert_eq!(values(&records, IdentName::SessionId), vec![S, "sess-other"]);
    assert!(
        matches!(&records[0].facts[0], Fact::Egress { destination, status: Some(504), bytes_received: Some(812), .. } if destination == "api.tickets.internal")
    );

    let (fmt, records, _) = scan_file(&fx("egress/envoy-default.log"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::EnvoyText);
    assert_eq!(records.len(), 3);
    // Authority "-" falls back to the upstream host.
    assert!(
        matches!(&records[1].facts[0], Fact::Egress { destination, bytes_sent: Some(512), .. } if destination == "10.0.2.2:443")
    );
    assert_eq!(records[2].problem, Some(Problem::UnrecognisedLine));
    assert_eq!(records[2].line, Some(3));

    let (fmt, records, _) = scan_file(&fx("egress/squid-access.log"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::SquidNative);
    assert!(
        matches!(&records[1].facts[0], Fact::Egress { destination, method: Some(m), .. } if destination == "paste.example.net:443" && m == "CONNECT")
    );
    assert_eq!(values(&records, IdentName::ToolPrincipal), vec!["svc-fx"]);
}

#[test]
fn user_field_mapping_from_toml_and_json() {
    let path = fx("generic/tool-calls-custom.jsonl");
    // Without the mapping the custom fields are invisible.
    let (_, plain, _) = scan_file(&path, None, &FieldMapping::default());
    assert!(values(&plain, IdentName::SessionId).is_empty());
    for m in ["generic/custom-fields-mapping.toml", "generic/custom-fields-mapping.json"] {
        let mapping = FieldMapping::load(&fx(m)).expect("mapping");
        let (_, records, _) = scan_file(&path, None, &mapping);
        assert_eq!(values(&records, IdentName::SessionId), vec![S, "sess-other"]);
        assert_eq!(values(&records, IdentName::ToolPrincipal), vec!["svc-fx@prod"]);
        assert_eq!(values(&records, IdentName::IdempotencyKey), vec!["idem-fx-2"]);
        let o = records[0].observations.iter().find(|o| o.ident == IdentName::SessionId).map(|o| o.field.clone());
        assert_eq!(o.as_deref(), Some("meta.sid"));
        assert!(matches!(&records[0].facts[0], Fact::ToolCall { outcome: Some(o), .. } if o == "timeout"));
    }
}

#[test]
fn pretty_printed_memory_document() {
    let (fmt, records, summary) = scan_file(&fx("generic/memory-record.json"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::Json);
    assert_eq!(summary.layout, Layout::Document);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].facts, vec![Fact::Memory { memory_id: Some("mem-fx-1".into()), op: Some("write".into()) }]);
}

#[test]
fn malformed_and_truncated_lines_are_reported_and_scanning_continues() {
    let (fmt, records, summary) =
        scan_file(&fx("bad/malformed-and-truncated-lines.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::Jsonl);
    assert_eq!(summary.lines, 4);
    assert_eq!(records.len(), 4);
    assert!(matches!(records[1].problem, Some(Problem::MalformedJson { .. })));
    assert_eq!(records[1].line, Some(2));
    assert!(records[2].problem.is_none() && !records[2].observations.is_empty());
    // Final line without newline, cut mid-string.
    assert!(matches!(records[3].problem, Some(Problem::Truncated { .. })));
    assert_eq!(
        records[3].offset + records[3].len,
        std::fs::metadata(fx("bad/malformed-and-truncated-lines.jsonl")).map(|m| m.len()).unwrap_or(0)
    );
}

#[test]
fn invalid_utf8_line_is_reported() {
    let (_, records, _) = scan_file(&fx("bad/invalid-utf8.jsonl"), None, &FieldMapping::default());
    assert_eq!(records.len(), 3);
    assert_eq!(problems(&records), vec![Problem::InvalidUtf8 { valid_up_to: 16 }]);
    assert_eq!(records[1].line, Some(2));
    assert!(records[2].observations.iter().any(|o| o.value == S));
}

#[test]
fn bom_and_crlf_are_handled_with_exact_offsets() {
    let path = fx("bad/bom-crlf.jsonl");
    let bytes = std::fs::read(&path).expect("read");
    let (_, records, summary) = scan_file(&path, None, &FieldMapping::default());
    assert!(summary.bom);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.problem.is_none()));
    assert_eq!(records[0].offset, 3);
    for r in &records {
        let slice = &bytes[r.offset as usize..(r.offset + r.len) as usize];
        assert!(slice.starts_with(b"{") && slice.ends_with(b"}"), "CR excluded");
    }
}

#[test]
fn empty_input_yields_nothing() {
    let (fmt, records, summary) = scan_file(&fx("bad/empty.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::Jsonl);
    assert!(records.is_empty());
    assert_eq!(summary.bytes_scanned, 0);
    let (records, _) = scan_bytes(Format::OtlpJson, b"  \n\n");
    assert!(records.is_empty());
}

#[test]
fn hundred_megabyte_line_is_skipped_without_buffering() {
    // 100 MB single line between two good lines, streamed from a generator reader.
    struct Gen {
        parts: Vec<Vec<u8>>,
        big_left: u64,
        stage: usize,
        pos: usize,
    }
    impl std::io::Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            loop {
                match self.stage {
                    1 => {
                        if self.big_left == 0 {
                            self.stage = 2;
                            continue;
                        }
                        let n = (buf.len() as u64).min(self.big_left) as usize;
                        buf[..n].fill(b'x');
                        self.big_left -= n as u64;
                        return Ok(n);
                    }
                    s if s >= 3 => return Ok(0),
                    s => {
                        let part = &self.parts[s / 2];
                        if self.pos >= part.len() {
                            self.stage += 1;
                            self.pos = 0;
                            continue;
                        }
                        let n = buf.len().min(part.len() - self.pos);
                        buf[..n].copy_from_slice(&part[self.pos..self.pos + n]);
                        self.pos += n;
                        return Ok(n);
                    }
                }
            }
        }
    }
    let first = format!("{{\"session_id\":\"{S}\"}}\n{{\"a\":\"");
    let last = format!("\"}}\n{{\"session_id\":\"{S}\"}}\n");
    let big: u64 = 100 * 1000 * 1000;
    let gen =
        Gen { parts: vec![first.clone().into_bytes(), last.clone().into_bytes()], big_left: big, stage: 0, pos: 0 };
    let mut records = Vec::new();
    let summary = scan(Format::Jsonl, gen, &FieldMapping::default(), &mut |r| records.push(r)).expect("scan");
    assert_eq!(records.len(), 3);
    let long_len = 6 + big + 2; // {"a":" + x… + "}
    assert_eq!(records[1].problem, Some(Problem::LineTooLong { len: long_len, limit: 16 * 1024 * 1024 }));
    assert_eq!(records[1].offset, (first.len() - 6) as u64);
    assert_eq!(records[1].line, Some(2));
    assert!(records[2].observations.iter().any(|o| o.value == S));
    assert_eq!(records[2].line, Some(3));
    assert_eq!(summary.lines, 3);
}

#[test]
fn limits_document_size_and_decompressed_bytes() {
    let doc = format!("[{}]", vec![format!("{{\"session_id\":\"{S}\"}}"); 1000].join(",\n"));
    let limits = ScanLimits { max_document: 1024, ..ScanLimits::default() };
    let mut records = Vec::new();
    scan_with_limits(Format::Json, doc.as_bytes(), &FieldMapping::default(), &limits, &mut |r| records.push(r))
        .expect("scan");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].problem, Some(Problem::DocumentTooLarge { limit: 1024 }));
    assert_eq!(records[0].len, doc.len() as u64);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..1000 {
        gz.write_all(format!("{{\"session_id\":\"{S}\"}}\n").as_bytes()).expect("gz");
    }
    let gz = gz.finish().expect("gz");
    let limits = ScanLimits { max_decompressed: 10_000, ..ScanLimits::default() };
    let mut records = Vec::new();
    let summary = scan_with_limits(Format::Jsonl, &gz[..], &FieldMapping::default(), &limits, &mut |r| records.push(r))
        .expect("scan");
    assert_eq!(summary.bytes_scanned, 10_000);
    assert_eq!(records.last().and_then(|r| r.problem.clone()), Some(Problem::DecompressedLimit { limit: 10_000 }));

    // A gzip stream cut in half: what decompressed is kept, the cut is reported.
    let cut = &gz[..gz.len() / 2];
    let (records, _) = scan_bytes(Format::Jsonl, cut);
    assert!(records.iter().any(|r| r.problem.is_none() && !r.observations.is_empty()));
    assert!(records
        .iter()
        .any(|r| matches!(r.problem, Some(Problem::Truncated { .. }) | Some(Problem::DecompressionFailed { .. }))));
}

#[test]
fn garbage_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[".to_vec(),
        b"\x1f\x8b".to_vec(),
        b"\x28\xb5\x2f\xfd\x00".to_vec(),
        vec![b'['; 100_000],
        b"[\"".repeat(5000),
        b"{\"resourceSpans\":[{\"scopeSpans\":7}]}\n".to_vec(),
        b"[2016] \"\n".to_vec(),
        b"1.5 x y Z/1\n".to_vec(),
        b"\xef\xbb\xbf".to_vec(),
        b"\r\n\r\n".to_vec(),
    ];
    let formats = Format::ALL;
    for input in &inputs {
        let _ = custody::collect::analyze::detect("x", input);
        for f in formats {
            let mut n = 0;
            let _ = scan(f, &input[..], &FieldMapping::default(), &mut |_| n += 1);
        }
    }
}

fn analyze_dir(
    rel: &str,
    seeds: &[(IdentName, String)],
    mapping: &FieldMapping,
) -> custody::collect::analyze::Analysis {
    let mut an = Analyzer::new(seeds);
    common::feed_dir(&mut an, &fx(rel), mapping);
    an.finish()
}

#[test]
fn conflicting_bundle_ids_for_one_session_are_reported_not_picked() {
    let a = analyze_dir(
        "two-bundle-ids-one-session",
        &[(IdentName::SessionId, "sess-conflict".into())],
        &FieldMapping::default(),
    );
    let b = &a.identifiers[IdentName::BundleId.position()];
    assert_eq!(b.status, IdentStatus::Conflict);
    assert_eq!(b.value, None);
    let mut c = b.conflicts.clone();
    c.sort();
    assert_eq!(c, vec!["bundle-A", "bundle-B"]);
    // Each conflicting value says where it came from.
    let fields: Vec<&str> = b.values.iter().map(|v| v.places[0].field.as_str()).collect();
    assert!(fields.contains(&"bundles.agent-policy.revision") && fields.contains(&"attributes.deployment.bundle_id"));
    assert_eq!(a.identifiers[IdentName::TraceId.position()].status, IdentStatus::Present);
}

#[test]
fn fixpoint_over_all_fixtures_isolates_the_incident_from_noise() {
    let mapping = FieldMapping::load(&fx("generic/custom-fields-mapping.toml")).expect("mapping");
    let mut an = Analyzer::new(&[(IdentName::TraceId, T1.to_uppercase())]);
    for dir in ["otlp", "opa", "approvals", "egress", "generic"] {
        common::feed_dir(&mut an, &fx(dir), &mapping);
    }
    let a = an.finish();
    let get = |i: IdentName| a.identifiers[i.position()].clone();
    assert_eq!(a.seeds[0].value, T1);
    assert_eq!(get(IdentName::SessionId).value.as_deref(), Some(S));
    assert_eq!(get(IdentName::SessionId).status, IdentStatus::Present);
    // Found only through the session (second round): approval id, change id, bundle id.
    assert_eq!(get(IdentName::ApprovalId).value.as_deref(), Some("apr-fx-1"));
    assert_eq!(get(IdentName::ChangeId).value.as_deref(), Some("chg-123"));
    assert_eq!(get(IdentName::BundleId).value.as_deref(), Some("bundle-fx-7"));
    assert_eq!(get(IdentName::RolloutWave).value.as_deref(), Some("wave-1"));
    assert_eq!(get(IdentName::AgentId).value.as_deref(), Some("agent-fx"));
    assert!(a.stats.expansion_rounds >= 2);
    // Two keys for one incident: multiple, not a conflict.
    let idem = get(IdentName::IdempotencyKey);
    assert_eq!(idem.status, IdentStatus::Multiple);
    assert_eq!(idem.values.len(), 3);
    // Noise (sess-other, bundle-other, apr-bg-9, chg-999, paste.example.net) stays out.
    let json = serde_json::to_string(&a).expect("json");
    for noise in ["sess-other", "bundle-other", "apr-bg-9", "chg-999", "paste.example.net"] {
        assert!(!json.contains(noise), "{noise} leaked into the analysis");
    }
    // Linkage.
    assert!(a.linkage.egress.iter().any(|e| e.destination == "api.tickets.internal" && e.requests == 1));
    assert!(a.linkage.approvals.iter().any(|s| s.decision.as_deref() == Some("timeout")));
    assert!(a
        .linkage
        .approvals
        .iter()
        .any(|s| s.call_id.as_deref() == Some("call_9") && s.decision.as_deref() == Some("rejected")));
    assert_eq!(a.linkage.memory_writes, 1);
    assert!(a
        .linkage
        .principals
        .iter()
        .any(|p| p.principal.as_deref() == Some("svc-fx@prod") && p.tool == "create_ticket"));
    assert!(a
        .linkage
        .chain
        .iter()
        .any(|e| e.from == IdentName::SessionId && e.to == IdentName::BundleId && e.to_value == "bundle-fx-7"));
    // Side effects: a write timed out / errored → unknown, do not repeat.
    let hint = a.side_effect_hint.as_ref().expect("hint");
    assert_eq!(hint.status, SideEffectStatus::Unknown);
    assert!(hint.warning.starts_with("do not repeat"), "{}", hint.warning);
    assert!(hint.warning.contains("idem-fx-1") && hint.warning.contains("idem-fx-2"));
    // Problems of the inputs are carried through with their place.
    assert!(a.problems.iter().any(|p| p.problem == Problem::UnrecognisedLine && p.line == Some(3)));
    // Index entries: sorted per source, matched_by set, decompressed flagged.
    assert!(a.index.iter().all(|e| !e.matched_by.is_empty()));
    assert!(a.index.iter().any(|e| e.at.decompressed && e.at.source_path.ends_with(".zst")));
    assert!(a.index.iter().any(|e| e.at.source_path.ends_with("upload-gzip-bundle-revision.json.gz")));
}

#[test]
fn records_without_outcome_give_unknown_and_successes_give_committed() {
    let mut an = Analyzer::new(&[(IdentName::SessionId, "s".into())]);
    let lines =
        b"{\"session_id\":\"s\",\"tool\":\"create_ticket\",\"idempotency_key\":\"k1\",\"response\":{\"status\":201}}\n";
    let id = an.begin_source("ok.jsonl", "0", "logs", Format::Jsonl);
    scan(Format::Jsonl, &lines[..], &FieldMapping::default(), &mut |r| an.push(id, r)).expect("scan");
    let a = an.finish();
    assert_eq!(a.side_effect_hint.map(|h| h.status), Some(SideEffectStatus::Committed));

    let mut an = Analyzer::new(&[(IdentName::SessionId, "s".into())]);
    let lines = b"{\"session_id\":\"s\",\"tool\":\"transfer_funds\",\"idempotency_key\":\"k2\"}\n{\"session_id\":\"s\",\"tool\":\"search\"}\n";
    let id = an.begin_source("none.jsonl", "0", "logs", Format::Jsonl);
    scan(Format::Jsonl, &lines[..], &FieldMapping::default(), &mut |r| an.push(id, r)).expect("scan");
    let a = an.finish();
    let h = a.side_effect_hint.expect("hint");
    assert_eq!(h.status, SideEffectStatus::Unknown);
    assert_eq!(h.writes.len(), 1);
    assert!(h.warning.contains("do not repeat transfer_funds (idempotency key(s) k2)"));
}

#[test]
fn missing_and_unobserved_identifiers_are_said() {
    let mut an = Analyzer::new(&[(IdentName::TraceId, "ffffffffffffffffffffffffffffffff".into())]);
    common::feed_dir(&mut an, &fx("egress"), &FieldMapping::default());
    let a = an.finish();
    assert_eq!(a.identifiers[0].status, IdentStatus::NotObserved);
    assert!(a.identifiers[1..].iter().all(|r| r.status == IdentStatus::Missing && r.value.is_none()));
    assert!(a.index.is_empty());
}

#[test]
fn malformed_first_line_does_not_hide_the_rest() {
    let (fmt, records, summary) = scan_file(&fx("bad/malformed-first-line.jsonl"), None, &FieldMapping::default());
    assert_eq!(fmt, Format::Jsonl);
    assert_eq!(summary.layout, Layout::Lines);
    assert_eq!(records.len(), 3);
    assert!(records[0].problem.is_some());
    assert_eq!(records[0].line, Some(1));
    let tools: Vec<String> = records
        .iter()
        .flat_map(|r| r.facts.iter())
        .filter_map(|f| match f {
            Fact::ToolCall { tool, .. } => Some(tool.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tools, vec!["search_kb", "read_crm"]);
    // A broken pretty-printed document stays one problem.
    let (records, _) = scan_bytes(Format::Json, b"{\n  \"session_id\": \"s\",\n  \"op\": \n");
    assert_eq!(records.len(), 1);
    assert!(matches!(records[0].problem, Some(Problem::Truncated { .. })));
}
