//! Inputs that are never silently opaque: a BOM + CRLF log with malformed lines among good
//! ones, UTF-16 with a BOM, gzip and zstd files, a gzipped CloudTrail file, a pretty-printed
//! RunState, and a file the analysis cannot understand (listed as not analysed, with its size
//! and why). Then the scanner's own defences, on bytes: malformed, truncated and invalid
//! UTF-8 lines with exact offsets, a 100 MB line that is never buffered, the document and
//! decompression limits, and garbage in every format that never panics.

use crate::collector_util::*;
use custody::bundle::manifest::Status;
use custody::collect::analysis::{EventKind, IdentStatus, OutcomeStatus, Tie};
use custody::collect::analyze::{
    scan, scan_with_limits, Compression, FieldMapping, Format, IdentName, Layout, Problem, ScanLimits,
};
use std::io::Write;

const T: &str = FORMATS_TRACE;

fn line(v: serde_json::Value) -> String {
    v.to_string()
}

/// The tool-call log of the issue: a UTF-8 BOM, CRLF line ends, and two malformed lines
/// (2 and 4) among three good ones.
fn bom_crlf_log() -> Vec<u8> {
    let lines = [
        line(
            serde_json::json!({"ts":"2026-11-21T14:03:41.900Z","trace_id":T,"session_id":"conv_6f2d91c4a7e8","tool":"issue_refund",
            "call_id":"call_R8mX2qLp5vN1tZ7w","idempotency_key":"idem-2c7e9a41f0b35d86","change_id":"CHG-20931","status":"started"}),
        ),
        format!("{{\"ts\":\"2026-11-21T14:03:42.000Z\",\"trace_id\":\"{T}\",\"tool\": broken"),
        line(
            serde_json::json!({"ts":"2026-11-21T14:04:30.100Z","trace_id":T,"tool":"read_secret","call_id":"call_S3cr3tRead0001",
            "request_id":"5b0f2c61-9d3e-4a7b-8c1d-e2f3a4b5c6d7","status":"error","error":"AccessDenied"}),
        ),
        "this line is not JSON at all".to_string(),
        line(
            serde_json::json!({"ts":"2026-11-21T14:04:14.400Z","trace_id":T,"tool":"issue_refund","call_id":"call_R8mX2qLp5vN1tZ7w",
            "status":"succeeded","http_status":201}),
        ),
    ];
    let mut v = b"\xEF\xBB\xBF".to_vec();
    for l in &lines {
        v.extend_from_slice(l.as_bytes());
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn utf16le_with_bom(s: &str) -> Vec<u8> {
    let mut v = vec![0xff, 0xfe];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

/// One incident directory with every kind of awkward input; all of it analysed (each
/// malformed line listed with its line number), the binary file counted and named.
#[test]
fn awkward_inputs_are_analysed_and_each_malformed_line_is_listed() {
    let dir = IncidentDir::new();
    let log = bom_crlf_log();
    dir.write("logs/tool-calls.jsonl", &log);
    let approval =
        line(serde_json::json!({"ts":"2026-11-21T14:02:14.935Z","trace_id":T,"approval_id":"apr-3f8a61d2e9b4",
        "decision":"requested","tool":"issue_refund","call_id":"call_R8mX2qLp5vN1tZ7w"}))
            + "\r\n";
    dir.write("approvals/utf16.jsonl", utf16le_with_bom(&approval));
    let gz_line = line(serde_json::json!({"ts":"2026-11-21T14:02:12.004Z","trace_id":T,"tool":"lookup_invoice",
        "call_id":"call_K4bH9sDf2gJ6aQ3e","status":"ok"}))
        + "\n";
    dir.write("logs/gz-calls.jsonl.gz", gzip(gz_line.as_bytes()));
    let zst_line = line(serde_json::json!({"ts":"2026-11-21T14:02:10.300Z","trace_id":T,
        "memory_id":"8c3e1f52-6a0d-4b9e-9f27-5d1c0a7e3b64","op":"read"}))
        + "\n";
    dir.write("logs/zst-memory.jsonl.zst", zstd::encode_all(zst_line.as_bytes(), 3).expect("zstd"));
    // The CloudTrail file whose AccessDenied record's requestID the tool-call log names.
    let ct = "123456789012_CloudTrail_us-east-1_20261121T1405Z_kT3vQ9mZ2xR7pL4w.json.gz";
    dir.copy(&format_fixture(&format!("cloudtrail/{ct}")), &format!("cloud/{ct}"));
    // The JS SDK's RunState, pretty-printed over 352 lines.
    dir.copy(&format_fixture("agents-runstate/js-pending-pretty.json"), "approvals/state.json");
    let blob: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    dir.write("attachments/blob.bin", &blob);

    let p = preserve_dir(&dir, &["--trace-id", T]);
    let a = p.a();
    let src = |path: &str| a.sources.iter().find(|s| s.path == path).unwrap_or_else(|| panic!("{path} not in sources"));

    // BOM + CRLF + 2 malformed lines: the 3 good lines are records of the incident.
    let s = src("logs/tool-calls.jsonl");
    assert_eq!((s.format.as_str(), s.not_analysed.as_deref()), ("jsonl", None));
    assert_eq!((s.lines, s.records, s.incident_records, s.problems), (5, 5, 3, 2));
    let problems: Vec<_> = a.problems.iter().filter(|p| p.path == "logs/tool-calls.jsonl").collect();
    assert_eq!(problems.len(), 2);
    // Offsets exact: after the 3-byte BOM, each line and its CR LF.
    let starts = line_starts(&log);
    for (p, want_line) in problems.iter().zip([2u64, 4]) {
        assert_eq!(p.line, Some(want_line));
        assert_eq!(p.problem, "malformed_json");
        assert_eq!(p.offset, Some(starts[want_line as usize - 1]), "line {want_line}");
        let text = &log[p.offset.unwrap() as usize..(p.offset.unwrap() + p.len.unwrap()) as usize];
        assert!(!text.ends_with(b"\r"), "the CR is not part of the record");
        assert!(a
            .evidence_problems
            .iter()
            .any(|e| e.path == format!("logs/tool-calls.jsonl:{want_line}") && e.problem == "malformed_json"));
    }
    // What the log alone holds was read: the idempotency key and the change id.
    assert_eq!(ident_value(a, IdentName::IdempotencyKey), (IdentStatus::Found, Some("idem-2c7e9a41f0b35d86")));
    assert_eq!(ident_value(a, IdentName::ChangeId), (IdentStatus::Found, Some("CHG-20931")));
    let refund = a
        .events
        .iter()
        .find(|e| e.kind == EventKind::ToolCall && id_of(e, "call_id") == Some("call_R8mX2qLp5vN1tZ7w"))
        .expect("the refund call");
    let lines: Vec<Option<u64>> =
        refund.citations.iter().filter(|c| c.path == "logs/tool-calls.jsonl").map(|c| c.line).collect();
    assert_eq!(lines, [Some(1), Some(5)], "both log lines of the call are cited: {:?}", refund.citations);
    assert_eq!(refund.citations.iter().find(|c| c.line == Some(1)).map(|c| c.offset), Some(3), "after the BOM");
    assert_eq!(outcome(refund), Some(OutcomeStatus::Succeeded));

    // UTF-16 with a BOM: read transcoded, offsets in the transcoded stream.
    let s = src("approvals/utf16.jsonl");
    assert_eq!(
        (s.format.as_str(), s.compression.as_deref(), s.records, s.incident_records),
        ("approvals", Some("utf-16"), 1, 1)
    );
    assert_eq!(ident_value(a, IdentName::ApprovalId), (IdentStatus::Found, Some("apr-3f8a61d2e9b4")));
    let req = events(a, EventKind::ApprovalRequest);
    assert_eq!(req.len(), 1, "the UTF-16 record and the RunState's interruption are one request");
    let c = req[0].citations.iter().find(|c| c.path == "approvals/utf16.jsonl").expect("the UTF-16 record is cited");
    assert!(c.decompressed);
    assert_eq!((c.offset, c.len), (0, approval.trim_end().len() as u64));

    // gzip and zstd: decompressed, with offsets in the decompressed stream.
    let s = src("logs/gz-calls.jsonl.gz");
    assert_eq!(
        (s.compression.as_deref(), s.bytes_scanned, s.incident_records),
        (Some("gzip"), gz_line.len() as u64, 1)
    );
    let lookup = a.events.iter().find(|e| e.target.as_deref() == Some("lookup_invoice")).expect("the gzipped call");
    let c = lookup.citations.iter().find(|c| c.path == "logs/gz-calls.jsonl.gz").expect("cited");
    assert!(c.decompressed);
    assert_eq!(cited_bytes(dir.path(), c), gz_line.trim_end().as_bytes());
    let s = src("logs/zst-memory.jsonl.zst");
    assert_eq!(
        (s.compression.as_deref(), s.bytes_scanned, s.incident_records),
        (Some("zstd"), zst_line.len() as u64, 1)
    );
    assert_eq!(a.memory.read, ["8c3e1f52-6a0d-4b9e-9f27-5d1c0a7e3b64"]);

    // CloudTrail .json.gz: detected through gzip; its AccessDenied record joined by requestID,
    // its principal the role that issued the session.
    let s = src(&format!("cloud/{ct}"));
    assert_eq!(
        (s.format.as_str(), s.kind.as_str(), s.compression.as_deref(), s.records),
        ("cloudtrail", "cloud", Some("gzip"), 4)
    );
    let calls = events(a, EventKind::CloudApiCall);
    assert_eq!(calls.len(), 1, "{calls:?}");
    let denied = calls[0];
    assert_eq!(
        (denied.target.as_deref(), denied.operation.as_deref()),
        (Some("secretsmanager.amazonaws.com"), Some("GetSecretValue"))
    );
    assert_eq!(denied.principal.as_deref(), Some("arn:aws:iam::123456789012:role/agent-payments-tool"));
    assert_eq!(outcome(denied), Some(OutcomeStatus::Failed));
    assert_eq!(denied.outcome.as_ref().map(|o| o.codes.clone()), Some(vec!["AccessDenied".to_string()]));
    assert_eq!(id_of(denied, "request_id"), Some("5b0f2c61-9d3e-4a7b-8c1d-e2f3a4b5c6d7"));
    assert_eq!(denied.tie, Tie::Linked);
    assert!(
        denied.citations.iter().all(|c| c.decompressed && c.item == Some(3)),
        "the 4th record of the file: {:?}",
        denied.citations
    );

    // The pretty RunState: read as a RunState, its pending approval kept.
    let s = src("approvals/state.json");
    assert_eq!((s.format.as_str(), s.incident_records), ("agents_run_state", 1));
    assert!(req[0].citations.iter().any(|c| c.path == "approvals/state.json"));
    assert_eq!(id_of(req[0], "call_id"), Some("call_R8mX2qLp5vN1tZ7w"));

    // The binary file: counted and named, with its size and why.
    let s = src("attachments/blob.bin");
    assert_eq!((s.format.as_str(), s.size, s.records), ("opaque", 1024, 0));
    assert_eq!(s.not_analysed.as_deref(), Some("binary content: sealed, not read"));
    let item = a.checklist.iter().find(|i| i.item == "evidence_analysed").expect("evidence_analysed");
    assert_eq!(item.status, Status::Missing);
    assert_eq!(item.detail, "1 file(s) not analysed: attachments/blob.bin (1.0 KiB, binary content: sealed, not read)");
    assert!(a.evidence_problems.iter().any(|e| e.path == "attachments/blob.bin" && e.problem == "not_analysed"));
    let readable = a.checklist.iter().find(|i| i.item == "evidence_readable").expect("evidence_readable");
    assert_eq!(readable.status, Status::Missing);
    // Every other file was analysed.
    assert_eq!(a.sources.iter().filter(|s| s.not_analysed.is_some()).count(), 1);
}

/// Byte offsets of each line of `bytes` (after a UTF-8 BOM), CR LF or LF ended.
fn line_starts(bytes: &[u8]) -> Vec<u64> {
    let mut starts = vec![if bytes.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 }];
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' && i + 1 < bytes.len() {
            starts.push(i as u64 + 1);
        }
    }
    starts
}

// ---- The scanner, on bytes and files (library level). ----

#[test]
fn malformed_and_truncated_lines_are_reported_and_scanning_continues() {
    let path = collector_fixture("bad/malformed-and-truncated-lines.jsonl");
    let (fmt, records, summary) = scan_file(&path);
    assert_eq!(fmt.name(), "jsonl");
    assert_eq!((summary.lines, records.len()), (4, 4));
    assert!(matches!(records[1].problem, Some(Problem::MalformedJson { .. })), "{:?}", records[1].problem);
    assert_eq!(records[1].line, Some(2));
    assert!(records[2].problem.is_none());
    assert_eq!(records[2].values(IdentName::SessionId), ["sess-fixture-0001"]);
    // The last line has no newline and is cut mid-string.
    assert!(matches!(records[3].problem, Some(Problem::Truncated { .. })), "{:?}", records[3].problem);
    let size = std::fs::metadata(&path).expect("size").len();
    assert_eq!(records[3].offset + records[3].len, size);
}

#[test]
fn invalid_utf8_line_is_reported_with_its_valid_prefix() {
    let (_, records, _) = scan_file(&collector_fixture("bad/invalid-utf8.jsonl"));
    assert_eq!(records.len(), 3);
    // `{"session_id": "` is 16 bytes, then 0xFF 0xFE.
    assert_eq!(records[1].problem, Some(Problem::InvalidUtf8 { valid_up_to: 16 }));
    assert_eq!(records[1].line, Some(2));
    assert_eq!(records[2].values(IdentName::SessionId), ["sess-fixture-0001"]);
}

#[test]
fn bom_and_crlf_are_handled_with_exact_offsets() {
    let path = collector_fixture("bad/bom-crlf.jsonl");
    let bytes = std::fs::read(&path).expect("read");
    let (_, records, summary) = scan_file(&path);
    assert!(summary.bom);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.problem.is_none()));
    assert_eq!(records[0].offset, 3);
    for r in &records {
        let slice = &bytes[r.offset as usize..(r.offset + r.len) as usize];
        assert!(slice.starts_with(b"{") && slice.ends_with(b"}"), "the CR is excluded");
        assert_eq!(r.values(IdentName::SessionId), ["sess-fixture-0001"]);
    }
    assert_eq!(records[1].offset, records[0].offset + records[0].len + 2);
}

#[test]
fn utf16_with_a_bom_is_read_transcoded() {
    let text = "{\"session_id\":\"sess-utf16\",\"approval_id\":\"apr-utf16-1\"}\r\n{\"session_id\":\"sess-utf16\"}\r\n";
    let (records, summary) = scan_bytes("jsonl", &utf16le_with_bom(text));
    assert!(summary.utf16);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.problem.is_none() && r.decompressed));
    assert_eq!(records[0].values(IdentName::ApprovalId), ["apr-utf16-1"]);
    // Offsets are in the UTF-8 stream: the second line starts after the first and its CR LF.
    let first = text.split("\r\n").next().expect("first line");
    assert_eq!((records[0].offset, records[0].len), (0, first.len() as u64));
    assert_eq!(records[1].offset, first.len() as u64 + 2);
    // Detection sees through the encoding too.
    assert_eq!(custody::collect::analyze::detect("a.jsonl", &utf16le_with_bom(text)).name(), "approvals");
}

#[test]
fn empty_input_yields_nothing() {
    let (fmt, records, summary) = scan_file(&collector_fixture("bad/empty.jsonl"));
    assert_eq!(fmt.name(), "jsonl");
    assert!(records.is_empty());
    assert_eq!(summary.bytes_scanned, 0);
    let (records, _) = scan_bytes("otlp", b"  \n\n");
    assert!(records.is_empty());
}

#[test]
fn malformed_first_line_does_not_hide_the_rest() {
    let (fmt, records, summary) = scan_file(&collector_fixture("bad/malformed-first-line.jsonl"));
    assert_eq!(fmt.name(), "jsonl");
    assert_eq!(summary.layout, Layout::Lines);
    assert_eq!(records.len(), 3);
    assert!(matches!(records[0].problem, Some(Problem::Truncated { .. }) | Some(Problem::MalformedJson { .. })));
    assert_eq!(records[0].line, Some(1));
    // Lines 2 and 3 are read as records of their own (a bare tool name is no tool call:
    // docs/collector.md §4.4, so they carry no event; they carry the session).
    for (r, line) in records[1..].iter().zip([2, 3]) {
        assert_eq!((r.line, r.problem.is_none()), (Some(line), true), "{r:?}");
        let ids: Vec<(IdentName, String)> = r.identifiers().into_iter().map(|(i, v, _)| (i, v)).collect();
        assert_eq!(ids, [(IdentName::SessionId, "sess-fixture-0001".to_string())], "{r:?}");
    }
    // A broken pretty-printed document stays one problem.
    let (records, _) = scan_bytes("json", b"{\n  \"session_id\": \"s\",\n  \"op\": \n");
    assert_eq!(records.len(), 1);
    assert!(matches!(records[0].problem, Some(Problem::Truncated { .. })), "{:?}", records[0].problem);
}

#[test]
fn zstd_lines_are_scanned_with_decompressed_offsets() {
    let path = collector_fixture("generic/tool-calls-zstd-compressed.jsonl.zst");
    let (fmt, records, summary) = scan_file(&path);
    assert_eq!(fmt.name(), "jsonl");
    assert_eq!(summary.compression, Some(Compression::Zstd));
    assert_eq!(records.len(), 50);
    let dec = decompressed(&std::fs::read(&path).expect("read"));
    for (i, r) in records.iter().enumerate() {
        assert!(r.decompressed && r.problem.is_none());
        let slice = &dec[r.offset as usize..(r.offset + r.len) as usize];
        assert!(slice.starts_with(b"{") && slice.ends_with(b"}"));
        assert!(String::from_utf8_lossy(slice).contains(&format!("\"n\": {i}}}")), "record {i} is line {i}");
        assert_eq!(r.values(IdentName::IdempotencyKey), ["idem-fx-3"]);
    }
}

#[test]
fn gzipped_opa_upload_is_scanned_through_the_decompressor() {
    let path = collector_fixture("opa/upload-gzip-bundle-revision.json.gz");
    assert_eq!(detect_file(&path).name(), "opa");
    let (_, records, summary) = scan_file(&path);
    assert_eq!(summary.compression, Some(Compression::Gzip));
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.decompressed && r.problem.is_none()));
    assert_eq!(values(&records, IdentName::BundleId), ["bundle-fx-7"]);
    assert_eq!(values(&records, IdentName::ApprovalId), ["apr-fx-1"]);
    // The whole decompressed document is each decision's record.
    assert_eq!(records[0].offset, 0);
    assert_eq!(records[0].len, summary.bytes_scanned);
    assert_eq!(record_events(&records).iter().filter(|(k, _)| *k == EventKind::PolicyDecision).count(), 2);
}

/// A generator of `first`, `big` bytes of `x`, then `last`, without holding them.
struct Gen {
    parts: [Vec<u8>; 2],
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

/// A 100 MB line between two good lines is skipped (reported with its length, offset and
/// line), not buffered; the line after it is read.
#[test]
fn hundred_megabyte_line_is_skipped_without_buffering() {
    let s = "sess-after-the-huge-line";
    let first = format!("{{\"session_id\":\"{s}\"}}\n{{\"a\":\"");
    let last = format!("\"}}\n{{\"session_id\":\"{s}\"}}\n");
    let big: u64 = 100 * 1000 * 1000;
    let gen = Gen { parts: [first.clone().into_bytes(), last.into_bytes()], big_left: big, stage: 0, pos: 0 };
    let mut records = Vec::new();
    let jsonl = Format::named("jsonl").expect("jsonl");
    let summary = scan(jsonl, gen, &FieldMapping::default(), &mut |r| records.push(r)).expect("scan");
    assert_eq!(records.len(), 3);
    let long_len = 6 + big + 2; // {"a":" + x… + "}
    assert_eq!(records[1].problem, Some(Problem::LineTooLong { len: long_len, limit: 16 * 1024 * 1024 }));
    assert_eq!(records[1].offset, (first.len() - 6) as u64);
    assert_eq!(records[1].line, Some(2));
    assert_eq!(records[2].values(IdentName::SessionId), [s]);
    assert_eq!(records[2].line, Some(3));
    assert_eq!(summary.lines, 3);
}

#[test]
fn limits_on_document_size_and_decompressed_bytes() {
    let s = "sess-limits";
    let json = Format::named("json").expect("json");
    let jsonl = Format::named("jsonl").expect("jsonl");
    let doc = format!("[{}]", vec![format!("{{\"session_id\":\"{s}\"}}"); 1000].join(",\n"));
    let limits = ScanLimits { max_document: 1024, ..ScanLimits::default() };
    let mut records = Vec::new();
    scan_with_limits(json, doc.as_bytes(), &FieldMapping::default(), &limits, &mut |r| records.push(r)).expect("scan");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].problem, Some(Problem::DocumentTooLarge { limit: 1024 }));
    assert_eq!(records[0].len, doc.len() as u64);

    let mut plain = Vec::new();
    for _ in 0..1000 {
        plain.extend_from_slice(format!("{{\"session_id\":\"{s}\"}}\n").as_bytes());
    }
    let gz = gzip(&plain);
    let limits = ScanLimits { max_decompressed: 10_000, ..ScanLimits::default() };
    let mut records = Vec::new();
    let summary =
        scan_with_limits(jsonl, &gz[..], &FieldMapping::default(), &limits, &mut |r| records.push(r)).expect("scan");
    assert_eq!(summary.bytes_scanned, 10_000);
    assert_eq!(records.last().and_then(|r| r.problem.clone()), Some(Problem::DecompressedLimit { limit: 10_000 }));
    let line_len = plain.iter().position(|b| *b == b'\n').expect("newline") as u64 + 1;
    let whole = records.iter().filter(|r| r.problem.is_none()).count() as u64;
    assert_eq!(whole, 10_000 / line_len, "every whole line under the cap is read");

    // A gzip stream cut in half: what decompressed is kept, the cut is reported.
    let (records, _) = scan_bytes("jsonl", &gz[..gz.len() / 2]);
    assert!(records.iter().any(|r| r.problem.is_none() && r.values(IdentName::SessionId) == [s]));
    assert!(records
        .iter()
        .any(|r| matches!(r.problem, Some(Problem::Truncated { .. }) | Some(Problem::DecompressionFailed { .. }))));
}

/// Hostile bytes in every format (and through detection and `scan_auto`): no panic.
#[test]
fn garbage_never_panics_in_any_format() {
    let inputs: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[".to_vec(),
        b"\x1f\x8b".to_vec(),
        b"\x28\xb5\x2f\xfd\x00".to_vec(),
        b"\xff\xfe{\x00".to_vec(),
        b"\xfe\xff\x00{\x00".to_vec(),
        vec![b'['; 100_000],
        b"[\"".repeat(5000),
        b"{\"resourceSpans\":[{\"scopeSpans\":7}]}\n".to_vec(),
        b"{\"Records\":[{\"eventVersion\":1,\"userIdentity\":[]}]}".to_vec(),
        b"{\"data\":[{\"object\":\"trace.span\",\"span_data\":7}]}".to_vec(),
        b"{\"$schemaVersion\":\"1.17\",\"current_step\":{\"data\":{\"interruptions\":[[[]]]}}}".to_vec(),
        b"payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%7B".to_vec(),
        b"[2016] \"\n".to_vec(),
        b"1.5 x y Z/1\n".to_vec(),
        b"\xef\xbb\xbf".to_vec(),
        b"\r\n\r\n".to_vec(),
        format!("{{\"message\":\"{}\"}}", "{\\\"a\\\":".repeat(2000)).into_bytes(),
    ];
    use custody::collect::analyze::{normalize_seed, Analyzer, AnalyzerLimits, Report, ReportContext};
    for input in &inputs {
        let _ = custody::collect::analyze::detect("x", input);
        // What the fuzz target does: every format's records into one analyzer, then the report.
        let seed =
            normalize_seed(Some(IdentName::TraceId), T, custody::collect::analysis::SeedOrigin::Flag).expect("seed");
        let mut an = Analyzer::new(vec![seed], AnalyzerLimits::default());
        for f in Format::all() {
            let src = an.begin_source("x", "00", input.len() as u64, "logs", f, "override");
            let _ = scan(f, &input[..], &FieldMapping::default(), &mut |r| an.push(src, r));
        }
        let _ =
            custody::collect::analyze::scan_auto("x.json.gz", None, &input[..], &FieldMapping::default(), &mut |_| {});
        let a = Report::build(an, ReportContext::default()).into_analysis();
        assert!(a.events.is_empty(), "garbage holds no incident event: {:?}", a.events);
    }
}
