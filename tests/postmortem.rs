//! Postmortem tooling (issue 22): `custody timeline` (human, `--json`, `--records`, filters)
//! on the realistic fixture incidents, its citations resolved to the exact sealed bytes, and
//! the HTML report loaded in headless Chromium (Debian's `chromium`, installed by `.ci/run`:
//! this tier is never skipped).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::collector_util::{cited_bytes, custody, incident, preserve, Preserved, Run};
use crate::schemas::assert_valid;

/// `preserve --incident-dir fixtures/incidents/<name>` with the expected file's seed flags,
/// in a new home (kept alive with the result).
pub(crate) fn preserve_incident(name: &str) -> Preserved {
    let exp: Value = serde_json::from_slice(
        &std::fs::read(crate::collector_util::repo().join(format!("fixtures/incidents/{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    let mut args: Vec<String> = vec!["--incident-dir".into(), incident(name).display().to_string()];
    for (k, v) in exp["seed"].as_object().expect("seed") {
        args.push(format!("--{}", k.replace('_', "-")));
        args.push(v.as_str().unwrap().to_string());
    }
    let home = tempfile::tempdir().unwrap();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = preserve(home.path(), &a);
    p.home = Some(home);
    p
}

pub(crate) const INCIDENTS: [&str; 4] =
    ["duplicate-refund-poisoned-payout", "duplicate-ticket", "oncall-copilot-rotation-exfil", "procurement-po-retry"];

fn home(p: &Preserved) -> &Path {
    p.home.as_ref().expect("home").path()
}

fn run(p: &Preserved, args: &[&str]) -> Run {
    custody(home(p), args)
}

fn bundle(p: &Preserved) -> String {
    p.bundle.display().to_string()
}

/// The records of a `timeline --json --records` resolve, citation by citation, to the bytes
/// the citation names in the original incident file (decompressed or transcoded first when it
/// says so), read from the sealed member named after the cited file's digest.
#[track_caller]
fn assert_records_are_the_cited_bytes(name: &str, t: &Value) -> usize {
    let events: Vec<custody::collect::analysis::Event> = serde_json::from_value(t["events"].clone()).unwrap();
    let records = t["records"].as_array().expect("--records writes records");
    assert_eq!(records.len(), events.len(), "{name}: one list of records per event");
    let mut n = 0;
    for (e, recs) in events.iter().zip(records) {
        let recs = recs.as_array().unwrap();
        assert_eq!(recs.len(), e.citations.len(), "{name} {}: one record per citation", e.id);
        for (c, r) in e.citations.iter().zip(recs) {
            let rec: RecordJson = serde_json::from_value(r.clone()).unwrap();
            assert_eq!(rec.member, format!("blobs/sha256/{}", c.sha256), "{name} {}", e.id);
            let want = cited_bytes(&incident(name), c);
            assert!(!want.is_empty(), "{name} {}: empty citation {c:?}", e.id);
            assert_eq!(rec.raw(), want, "{name} {}: citation {c:?} does not resolve to its bytes", e.id);
            n += 1;
        }
    }
    n
}

#[derive(serde::Deserialize)]
struct RecordJson {
    member: String,
    encoding: String,
    bytes: String,
}

impl RecordJson {
    fn raw(&self) -> Vec<u8> {
        use base64::Engine as _;
        match self.encoding.as_str() {
            "utf8" => self.bytes.clone().into_bytes(),
            "base64" => base64::engine::general_purpose::STANDARD.decode(&self.bytes).unwrap(),
            e => panic!("unknown encoding {e}"),
        }
    }
}

fn time_of(e: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    e["start"]["at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
}

fn event<'a>(t: &'a Value, id: &str) -> &'a Value {
    t["events"].as_array().unwrap().iter().find(|e| e["id"] == id).unwrap_or_else(|| panic!("no event {id}"))
}

fn related(e: &Value, relation: &str) -> Vec<String> {
    e["related"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relation"] == relation)
        .map(|r| r["event"].as_str().unwrap().to_string())
        .collect()
}

/// The hand-written join of the issue (tool calls merged across sources, the OPA decision of
/// each call, the approval, the egress requests, the duplicate) is `timeline --json` on the
/// realistic refund incident: its events are the sealed analysis' events, in time order, and
/// every citation resolves to the exact sealed bytes.
#[test]
fn timeline_json_replaces_the_hand_written_join_on_the_refund_incident() {
    let name = "duplicate-refund-poisoned-payout";
    let p = preserve_incident(name);
    let r = run(&p, &["timeline", &bundle(&p), "--json", "--records"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t = r.json();
    assert_valid("timeline.v1.schema.json", &t);
    assert_eq!(t["format"], "custody-timeline/v1");
    assert_eq!(t["bundle"], p.out["bundle"], "the evidence bundle is named by its digest");

    // The events are the analysis' events, unchanged and all there, in its order.
    let analysis_events = serde_json::to_value(&p.a().events).unwrap();
    assert_eq!(t["events"], analysis_events);
    let events = t["events"].as_array().unwrap();
    assert_eq!(events.len(), 27);
    assert_eq!(t["events_total"], 27);
    // Time order: timed events by start, events with no time last.
    let times: Vec<_> = events.iter().map(time_of).collect();
    let first_untimed = times.iter().position(Option::is_none).unwrap_or(times.len());
    assert!(times[first_untimed..].iter().all(Option::is_none), "events with no time come last");
    assert!(times[..first_untimed].windows(2).all(|w| w[0] <= w[1]), "timed events are in time order");

    // The tool calls, merged across the SDK's RunState, the tool log, OTLP spans and logs.
    let calls: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "tool_call")
        .map(|e| (e["id"].as_str().unwrap(), e["target"].as_str().unwrap(), e["outcome"]["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        calls,
        [
            ("e7", "get_charges", "succeeded"),
            ("e11", "issue_refund", "succeeded"),
            ("e17", "issue_refund", "succeeded"),
            ("e20", "send_payout", "unknown")
        ]
    );
    // Which OPA decision was about which call, and the approval: no re-reading of records.
    let first = event(&t, "e11");
    let decision = event(&t, &related(first, "decided_by")[0]);
    assert_eq!(decision["kind"], "policy_decision");
    assert_eq!(decision["ids"]["call_id"], first["ids"]["call_id"]);
    assert!(related(first, "approval")
        .iter()
        .any(|a| event(&t, a)["kind"] == "approval_decision" && event(&t, a)["principal"] == "dana.okafor"));
    // The retry took effect again under the same idempotency key: the duplicate.
    assert_eq!(related(first, "same_action"), ["e17"]);
    let dup: Vec<&Value> = t["actions"].as_array().unwrap().iter().filter(|a| a["duplicate"] == true).collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0]["attempts"], serde_json::json!(["e11", "e17"]));
    // The payout's egress requests, and the chain.
    let egress: Vec<&str> =
        events.iter().filter(|e| e["kind"] == "egress_request").map(|e| e["target"].as_str().unwrap()).collect();
    assert_eq!(egress, ["api.payrail.example", "api.payrail.example"]);
    let chain: Vec<&str> =
        t["chain"]["nodes"].as_array().unwrap().iter().map(|n| n["value"].as_str().unwrap()).collect();
    assert_eq!(
        chain,
        [
            "c3a1f07e9b5d42e8a6f01d9b7e4c2a58",
            "sess_01JEQ7Z4K8M2X9V3B6N5C1T0WA",
            "run-7f3c2a91",
            "CHG0031174",
            "2",
            "rp-2026.12.02.3-4f9e2c1"
        ]
    );

    // Every citation resolves to the exact sealed bytes, decompressed ones included.
    let n = assert_records_are_the_cited_bytes(name, &t);
    assert!(n >= 50, "{n} citations");
    assert!(p.a().events.iter().flat_map(|e| &e.citations).any(|c| c.decompressed), "a gzip file is cited");
    // An OTLP span is cited as its own item, not as the whole batch line.
    let span = p.a().events.iter().flat_map(|e| &e.citations).find(|c| c.span_id.is_some()).unwrap();
    assert!(span.item.is_some());
}

/// Every fixture incident: `timeline --json --records` validates, and each citation resolves
/// to its bytes.
#[test]
fn timeline_citations_resolve_to_the_exact_sealed_bytes_on_every_fixture_incident() {
    for name in INCIDENTS {
        let p = preserve_incident(name);
        let r = run(&p, &["timeline", &bundle(&p), "--json", "--records"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let t = r.json();
        assert_valid("timeline.v1.schema.json", &t);
        assert_eq!(t["events"], serde_json::to_value(&p.a().events).unwrap(), "{name}");
        assert!(assert_records_are_the_cited_bytes(name, &t) > 0, "{name}");
        // Without --records, no bytes.
        let plain = run(&p, &["timeline", &bundle(&p), "--json"]).json();
        assert!(plain.get("records").is_none());
    }
}

#[test]
fn timeline_filters_keep_what_they_say_and_count_what_they_leave_out() {
    let p = preserve_incident("duplicate-refund-poisoned-payout");
    let b = bundle(&p);
    let total = p.a().events.len() as u64;

    let t = run(&p, &["timeline", &b, "--json", "--kind", "tool_call", "--kind", "approval_decision"]).json();
    assert_valid("timeline.v1.schema.json", &t);
    let kinds: Vec<&str> = t["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["tool_call", "tool_call", "approval_decision", "tool_call", "tool_call"]);
    assert_eq!(t["left_out"]["kind"].as_u64().unwrap(), total - 5);

    // --session keeps the session's events and the events directly related to them (the
    // egress requests carry no session id, and are not related to a call here).
    let s = "sess_01JEQ7Z4K8M2X9V3B6N5C1T0WA";
    let t = run(&p, &["timeline", &b, "--json", "--session", s]).json();
    let kept = t["events"].as_array().unwrap();
    assert!(!kept.is_empty());
    for e in kept {
        let own = e["ids"]["session_id"].as_str().is_some_and(|v| v.split(',').any(|x| x == s));
        let rel = p
            .a()
            .events
            .iter()
            .filter(|o| o.ids.get("session_id").map(String::as_str) == Some(s))
            .any(|o| o.related.iter().any(|r| r.event == e["id"].as_str().unwrap()));
        assert!(own || rel, "{} is neither the session's nor related to it", e["id"]);
    }
    assert!(kept.iter().all(|e| e["kind"] != "egress_request"));
    assert_eq!(t["left_out"]["session"].as_u64().unwrap() + kept.len() as u64, total);
    assert_eq!(
        run(&p, &["timeline", &b, "--json", "--session", "sess_nobody"]).json()["events"],
        serde_json::json!([])
    );

    // A time window: only events placed inside it; the approval request with no time is
    // counted apart.
    let t = run(
        &p,
        &["timeline", &b, "--json", "--since", "2026-12-03T09:16:00Z", "--until", "2026-12-03T10:21:44.330+01:00"],
    )
    .json();
    let ids: Vec<&str> = t["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["e12", "e13", "e14", "e15", "e16", "e17"]);
    assert_eq!(t["left_out"]["no_time"], 1);
    assert_eq!(t["left_out"]["time"].as_u64().unwrap(), total - 7);
    assert_eq!(t["filter"]["since"], "2026-12-03T09:16:00Z");

    // The human form: one line per event kept, after the chain and the verdict.
    let h = run(&p, &["timeline", &b, "--kind", "tool_call"]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert!(h.stdout.contains("chain      trace c3a1f07e9b5d42e8a6f01d9b7e4c2a58 → session sess_01JEQ7Z4K8M2X9V3B6N5C1T0WA → deployment run-7f3c2a91 → change CHG0031174 → wave 2"), "{}", h.stdout);
    let lines: Vec<&str> = h
        .stdout
        .lines()
        .filter(|l| l.starts_with('e') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(lines.len(), 4, "{}", h.stdout);
    assert!(
        lines[3].contains("send_payout")
            && lines[3].contains("→ UNKNOWN")
            && lines[3].contains("call=call_Uc9Ne4Ka7Zs2Hf6Wr1Pm8Dq3")
    );
    assert!(
        lines[1].contains("idempotency_key=idk_5e0b9c72d14a83f6b1e2c7a9")
            && lines[1].contains("← approvals/approval-events.jsonl:4 +8")
    );

    // A time that is not RFC 3339 is a usage error that says what to write.
    let bad = run(&p, &["timeline", &b, "--since", "yesterday"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--since `yesterday` is not an RFC 3339 time"), "{}", bad.stderr);
    let bad = run(&p, &["timeline", &b, "--kind", "tool-call"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("tool_call"), "the kinds are listed: {}", bad.stderr);
}

/// A bundle that does not verify gives no timeline (and no report file); a stored bundle is
/// read by its digest.
#[test]
fn timeline_refuses_a_bundle_that_does_not_verify_and_reads_a_stored_one() {
    let p = preserve_incident("duplicate-refund-poisoned-payout");
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.tar.zst");
    let mut bytes = std::fs::read(&p.bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&bad, bytes).unwrap();
    let html = tmp.path().join("r.html");
    let r = run(&p, &["timeline", bad.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing is shown of a bundle that did not verify: {}", r.stdout);
    assert!(r.stderr.contains("refusing to show a timeline: the bundle did not verify"), "{}", r.stderr);
    assert!(!html.exists());

    let store = home(&p).join("store");
    let digest = p.out["bundle"].as_str().unwrap();
    let r = run(
        &p,
        &[
            "timeline",
            "--store",
            store.to_str().unwrap(),
            digest,
            "--html",
            html.to_str().unwrap(),
            "--json",
            "--records",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_records_are_the_cited_bytes("duplicate-refund-poisoned-payout", &r.json());
    assert!(std::fs::read_to_string(&html).unwrap().contains("issue_refund"));
    // The report is never overwritten.
    let again = run(&p, &["timeline", "--store", store.to_str().unwrap(), digest, "--html", html.to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("it must not exist"), "{}", again.stderr);
}

// ---- The HTML report in headless Chromium ----

/// Debian's `chromium`; panics with the install line when it is missing (never skipped).
fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser"] {
        if let Ok(o) = Command::new("sh").arg("-c").arg(format!("command -v {c}")).output() {
            if o.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            }
        }
    }
    panic!("headless Chromium is needed for the HTML report tests: apt-get install -y chromium (.ci/run installs it)");
}

/// Runs headless Chromium on `page` with its own profile (tests run in parallel) and console
/// messages on stderr: (stdout, stderr).
fn browse(page: &Path, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .expect("run chromium");
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "chromium failed: {e}");
    (o, e)
}

/// A CSP violation Chromium reported on its console.
fn csp_violations(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("Content Security Policy")).collect()
}

/// Where a test leaves what it made to be looked at (the screenshot).
fn output_dir(test: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("postmortem").join(test);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// Evidence that attacks the report: markup and `javascript:` URLs in a file name, in record
/// values (a tool, a principal, a session, a note in the record) and in the responder's note.
fn hostile_incident(dir: &Path) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let rec = |call: &str, ts: f64, tool: &str| {
        serde_json::json!({
            "ts": ts, "trace_id": TRACE, "session_id": "sess-<script>alert(1)</script>",
            "agent_id": "agent-\"><svg onload=alert(2)>", "tool": tool,
            "tool_principal": "javascript:alert(3)", "call_id": call,
            "note": "</pre></details><script>alert(4)</script><a href=\"javascript:alert(5)\">x</a>",
            "idempotency_key": "idem-<b>0001</b>", "status": "ok",
        })
    };
    let body = format!(
        "{}\n{}\n",
        rec("call-1", 1795269711.902, "refund<img src=x onerror=alert(6)>"),
        rec("call-2", 1795269741.5, "refund<img src=x onerror=alert(6)>")
    );
    std::fs::write(dir.join("logs").join("calls<svg onload=alert(7)>javascript:alert(8).jsonl"), body).unwrap();
}

/// The report of hostile evidence loads in headless Chromium inert: the DOM holds the events
/// and the hostile strings as text, and no element, attribute or URL they tried to make; the
/// Content-Security-Policy is in force and the page's own style is allowed by its hash
/// (Chromium reports no violation). A screenshot is left in the test's output directory.
#[test]
fn html_report_of_hostile_evidence_is_inert_in_headless_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let inc = tmp.path().join("incident");
    hostile_incident(&inc);
    let h = tmp.path().join("home");
    let p = preserve(
        &h,
        &[
            "--incident-dir",
            inc.to_str().unwrap(),
            "--trace-id",
            TRACE,
            "--note",
            "<script>alert(9)</script> javascript:alert(10)",
        ],
    );
    let events = p.a().events.len();
    assert!(events >= 2, "the hostile records are events: {events}");
    let page = tmp.path().join("report.html");
    let r = custody(&h, &["timeline", &p.bundle.display().to_string(), "--html", page.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#39;none&#39;; style-src &#39;sha256-"
    ));
    for bad in ["<script", "<svg", "<img", "<a ", "href=\""] {
        assert!(!html.contains(bad), "the report itself holds {bad:?}");
    }

    let (dom, log) = browse(&page, &["--dump-dom"]);
    assert!(csp_violations(&log).is_empty(), "Chromium reported CSP violations: {:?}", csp_violations(&log));
    // The DOM: one element per event, in order, with the hostile values as text.
    let ids: Vec<String> = p.a().events.iter().map(|e| format!("<li class=\"event\" id=\"{}\"", e.id)).collect();
    let mut at = 0;
    for id in &ids {
        let found = dom[at..].find(id.as_str()).unwrap_or_else(|| panic!("{id} is not in the DOM (in order):\n{dom}"));
        at += found + id.len();
    }
    assert_eq!(dom.matches("<li class=\"event\"").count(), events);
    for text in [
        "refund&lt;img src=x onerror=alert(6)&gt;",
        "javascript:alert(3)",
        "sess-&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;alert(4)&lt;/script&gt;",
        "calls&lt;svg onload=alert(7)&gt;javascript:alert(8).jsonl",
        "&lt;script&gt;alert(9)&lt;/script&gt; javascript:alert(10)",
    ] {
        assert!(dom.contains(text), "the DOM shows {text:?} as text:\n{dom}");
    }
    // (Text nodes are serialized with `<` escaped: any of these would be an element.)
    for bad in ["<script", "<svg", "<img", "<a "] {
        assert!(!dom.contains(bad), "the DOM holds {bad:?}:\n{dom}");
    }
    // A <details> per event, to expand to its records.
    assert_eq!(dom.matches("<details").count(), events);

    let shot = output_dir("html_report_of_hostile_evidence").join("report.png");
    let _ = std::fs::remove_file(&shot);
    browse(&page, &[&format!("--screenshot={}", shot.display()), "--window-size=1280,1600", "--hide-scrollbars"]);
    let png = std::fs::read(&shot).expect("the screenshot was taken");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());
}

/// The control for the test above: the policy is what blocks. A report given a script and a
/// changed style (as a failed escaping would) runs no script and gets no style, and Chromium
/// says why.
#[test]
fn html_report_csp_blocks_an_injected_script_and_a_changed_style() {
    let p = preserve_incident("duplicate-refund-poisoned-payout");
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("report.html");
    let r = run(&p, &["timeline", &bundle(&p), "--html", page.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    let (dom, log) = browse(&page, &["--dump-dom"]);
    assert!(csp_violations(&log).is_empty(), "{log}");
    assert!(dom.contains("issue_refund") && dom.contains("CHG0031174"));

    let tampered = tmp.path().join("tampered.html");
    let changed = html.replacen("body{font:14px", "body{font:15px", 1).replacen(
        "<footer>",
        "<script>document.body.setAttribute('data-ran','yes')</script><footer>",
        1,
    );
    assert_ne!(changed, html);
    std::fs::write(&tampered, changed).unwrap();
    let (dom, log) = browse(&tampered, &["--dump-dom"]);
    assert!(dom.contains("document.body.setAttribute"), "the script is in the page");
    assert!(!dom.contains("data-ran=\"yes\""), "the injected script ran");
    let v = csp_violations(&log);
    assert!(v.iter().any(|l| l.contains("script")), "no script violation reported: {log}");
    assert!(v.iter().any(|l| l.contains("style")), "no style violation reported: {log}");
}

// ---- Exports ----

/// `tests/interop/otlp-roundtrip.py` on an export: what the official protobuf definitions
/// parsed (strictly), or the script's failure.
fn otlp_parsed(dir: &Path) -> Result<Value, String> {
    let out = Command::new("python3")
        .arg(crate::collector_util::repo().join("tests/interop/otlp-roundtrip.py"))
        .arg(dir.join("traces.json"))
        .arg(dir.join("logs.json"))
        .output()
        .expect("python3");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !err.contains("No module named"),
            "the OTLP round trip needs the official definitions: pip install opentelemetry-proto (.ci/run installs it)\n{err}"
        );
        return Err(err);
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn nanos(at: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_nanos_opt().unwrap() as u64
}

/// The OTLP export parses strictly with the official protobuf definitions (opentelemetry-proto,
/// protobuf's JSON mapping) and the trace and span ids, times, attributes and provenance
/// survive: a span per timed event, a log record per cited record holding its exact bytes.
#[test]
fn export_otlp_round_trips_through_the_official_protobuf_definitions() {
    let name = "duplicate-refund-poisoned-payout";
    let p = preserve_incident(name);
    let a = p.a();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("otlp");
    let r = run(&p, &["export", &bundle(&p), "--otlp", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = otlp_parsed(&dir).unwrap_or_else(|e| panic!("the export does not parse: {e}"));
    let digest = p.out["bundle"].as_str().unwrap();
    assert_eq!(got["resource"]["custody.bundle.digest"], digest);

    let spans = got["spans"].as_array().unwrap();
    let timed: Vec<_> = a.events.iter().filter(|e| e.start.is_some()).collect();
    assert_eq!(spans.len(), timed.len(), "one span per event with a time");
    let mut span_of = std::collections::BTreeMap::new();
    let mut used = std::collections::BTreeSet::new();
    for e in &timed {
        let s = spans
            .iter()
            .find(|s| s["attributes"]["custody.event.id"] == e.id.as_str())
            .unwrap_or_else(|| panic!("no span for {}", e.id));
        let trace = e.ids.get("trace_id").map_or("c3a1f07e9b5d42e8a6f01d9b7e4c2a58", |t| t.split(',').next().unwrap());
        assert_eq!(s["trace_id"], trace, "{}", e.id);
        // Its own span id, the first one an earlier event did not take (a policy decision
        // names its call's span); else one derived from the bundle digest and the event id.
        let own = e.ids.get("span_id").and_then(|v| v.split(',').find(|x| !used.contains(*x)));
        match own {
            Some(x) => assert_eq!(s["span_id"], x, "{}: the span keeps its own id", e.id),
            None => assert!(!e.ids.get("span_id").is_some_and(|v| v.split(',').any(|x| s["span_id"] == x))),
        }
        used.insert(s["span_id"].as_str().unwrap().to_string());
        assert_eq!(s["start"].as_u64().unwrap(), nanos(&e.start.as_ref().unwrap().at), "{}", e.id);
        if let Some(end) = &e.end {
            assert_eq!(s["end"].as_u64().unwrap(), nanos(&end.at), "{}", e.id);
        }
        assert_eq!(s["attributes"]["custody.event.kind"], e.kind.as_str());
        assert_eq!(s["attributes"]["custody.bundle.digest"], digest);
        if let Some(pr) = &e.principal {
            assert_eq!(s["attributes"]["custody.principal"], pr.as_str());
        }
        for (k, v) in &e.ids {
            assert_eq!(s["attributes"][format!("custody.id.{k}")], v.as_str(), "{} {k}", e.id);
        }
        let offsets: Vec<u64> = e.citations.iter().map(|c| c.offset).collect();
        assert_eq!(s["attributes"]["custody.sealed.offsets"], serde_json::json!(offsets));
        let paths: Vec<&str> = e.citations.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(s["attributes"]["custody.sealed.paths"], serde_json::json!(paths));
        let status = match e.outcome.as_ref().map(|o| o.status) {
            Some(custody::collect::analysis::OutcomeStatus::Succeeded) => 1,
            Some(custody::collect::analysis::OutcomeStatus::Failed) => 2,
            _ => 0,
        };
        assert_eq!(s["status"], status, "{}", e.id);
        span_of.insert(e.id.clone(), (s["trace_id"].clone(), s["span_id"].clone()));
    }
    let ids: std::collections::BTreeSet<&str> = spans.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), spans.len(), "span ids are unique");

    // One log record per citation: the exact bytes, the provenance, the event's span.
    let logs = got["logs"].as_array().unwrap();
    let cites: Vec<_> = a.events.iter().flat_map(|e| e.citations.iter().map(move |c| (e, c))).collect();
    assert_eq!(logs.len(), cites.len());
    for (l, (e, c)) in logs.iter().zip(&cites) {
        let at = &l["attributes"];
        assert_eq!(at["custody.event.id"], e.id.as_str());
        assert_eq!(at["custody.sealed.path"], c.path.as_str());
        assert_eq!(at["custody.sealed.sha256"], c.sha256.as_str());
        assert_eq!(at["custody.sealed.offset"], c.offset);
        assert_eq!(at["custody.sealed.length"], c.len);
        assert_eq!(at["custody.bundle.digest"], digest);
        let want = cited_bytes(&incident(name), c);
        assert_eq!(l["body"].as_str().unwrap().as_bytes(), want.as_slice(), "{} {c:?}", e.id);
        if let Some((t, s)) = span_of.get(&e.id) {
            assert_eq!((&l["trace_id"], &l["span_id"]), (t, s));
            assert_eq!(l["time"].as_u64().unwrap(), nanos(&e.start.as_ref().unwrap().at));
        } else {
            assert_eq!(l["time"], 0, "a record of an event with no time has none");
        }
    }

    // The parse is strict: an unknown field, or an id that is not hex of its length, fails.
    let traces = dir.join("traces.json");
    let original = std::fs::read_to_string(&traces).unwrap();
    std::fs::write(&traces, original.replacen("\"kind\":1", "\"kind\":1,\"bogus\":1", 1)).unwrap();
    assert!(otlp_parsed(&dir).is_err(), "an unknown field is refused");
    std::fs::write(&traces, original.replace("c3a1f07e9b5d42e8a6f01d9b7e4c2a58", "w6Ewfp tdQuim8B2bfkwqWA==")).unwrap();
    assert!(otlp_parsed(&dir).is_err(), "a base64 trace id is refused");
    std::fs::write(&traces, &original).unwrap();
    assert!(otlp_parsed(&dir).is_ok());

    // export never writes into what exists, and needs an output.
    let again = run(&p, &["export", &bundle(&p), "--otlp", dir.to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("it must not exist"), "{}", again.stderr);
    let none = run(&p, &["export", &bundle(&p)]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("--otlp") && none.stderr.contains("--eval-case"), "{}", none.stderr);
}

/// The eval case: one JSON line (schema), with the inputs and retrieved context before the
/// risky path, the tool calls, the decisions, the expected safe behaviour derived from the
/// analysis (do not repeat `issue_refund` without approval) and the triage category.
#[test]
fn export_eval_case_is_one_documented_json_line() {
    let name = "duplicate-refund-poisoned-payout";
    let home = tempfile::tempdir().unwrap();
    let dir = incident(name).display().to_string();
    let p = preserve(
        home.path(),
        &[
            "--incident-dir",
            &dir,
            "--trace-id",
            "c3a1f07e9b5d42e8a6f01d9b7e4c2a58",
            "--category",
            "unauthorized_side_effect",
        ],
    );
    let out = home.path().join("case.jsonl");
    let r = custody(home.path(), &["export", &p.bundle.display().to_string(), "--eval-case", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "one line");
    let c: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_valid("eval-case.v1.schema.json", &c);
    assert_eq!(c["id"], p.out["bundle"]);
    assert_eq!(c["triage_category"], "unauthorized_side_effect");
    assert_eq!(c["risky_event"], "e11");
    assert_eq!(c["identifiers"]["idempotency_key"], "idk_5e0b9c72d14a83f6b1e2c7a9");
    let rules: Vec<(&str, Vec<&str>)> = c["expected_behaviour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["rule"].as_str().unwrap(), r["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect())
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("do not repeat `issue_refund` without approval", vec!["e11", "e17"]),
            ("do not retry `send_payout` before checking whether the earlier attempt was applied", vec!["e20"]),
            (
                "treat memory record 4e7a1c9d-8b2f-4a63-b5e0-c1d9f7a2e684 as untrusted input, not as instructions",
                vec!["e5"]
            ),
        ]
    );
    let tools: Vec<&str> = c["tool_calls"].as_array().unwrap().iter().map(|t| t["target"].as_str().unwrap()).collect();
    assert_eq!(tools, ["get_charges", "issue_refund", "issue_refund", "send_payout"]);
    let kinds: Vec<&str> = c["decisions"].as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"approval_decision") && kinds.iter().filter(|k| **k == "policy_decision").count() >= 4);
    let before: Vec<&str> = c["inputs"].as_array().unwrap().iter().map(|t| t["event"].as_str().unwrap()).collect();
    assert_eq!(before, ["e6", "e9"], "the model calls before the risky call");
    assert_eq!(c["retrieved_context"][0]["event"], "e4");
    // The records are the exact sealed bytes.
    for ev in c["tool_calls"].as_array().unwrap() {
        let e = p.a().events.iter().find(|e| ev["event"] == e.id.as_str()).unwrap();
        for (r, cit) in ev["records"].as_array().unwrap().iter().zip(&e.citations) {
            assert_eq!(r["bytes"].as_str().unwrap().as_bytes(), cited_bytes(&incident(name), cit).as_slice());
        }
    }
}

// ---- list ----

/// Two bundles of one store are told apart by `list` (category, seeds, side effect, files,
/// size, the responder's note); a bundle that no longer verifies is named and exits 1;
/// `--ledger-only` reads no bundle.
#[test]
fn list_tells_the_bundles_of_a_store_apart() {
    let home = tempfile::tempdir().unwrap();
    let refund = incident("duplicate-refund-poisoned-payout").display().to_string();
    let ticket = incident("duplicate-ticket").display().to_string();
    let a = preserve(
        home.path(),
        &[
            "--incident-dir",
            &refund,
            "--trace-id",
            "c3a1f07e9b5d42e8a6f01d9b7e4c2a58",
            "--category",
            "unauthorized_side_effect",
            "--note",
            "first look\nsecond line",
        ],
    );
    let b = preserve(
        home.path(),
        &["--incident-dir", &ticket, "--trace-id", "4bf92f3577b34da6a3ce929d0e0e4736", "--note", "ticket retry"],
    );
    let store = home.path().join("store").display().to_string();
    let r = custody(home.path(), &["list", "--store", &store, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_valid("list.v1.schema.json", &j);
    let d: Vec<&Value> = j["entries"].as_array().unwrap().iter().map(|e| &e["details"]).collect();
    assert_eq!(d[0]["verified"], true);
    assert_eq!(d[0]["category"], "unauthorized_side_effect");
    assert_eq!(d[0]["seeds"], serde_json::json!(["trace_id=c3a1f07e9b5d42e8a6f01d9b7e4c2a58"]));
    assert_eq!(d[0]["note"], "first look", "the first line of the responder's note");
    assert_eq!(d[0]["side_effect"], "happened");
    assert_eq!(d[0]["files"], a.out["files"]);
    assert_eq!(d[1]["category"], Value::Null);
    assert_eq!(d[1]["seeds"], serde_json::json!(["trace_id=4bf92f3577b34da6a3ce929d0e0e4736"]));
    assert_eq!(d[1]["note"], "ticket retry");
    assert_ne!(d[0]["evidence_bytes"], d[1]["evidence_bytes"]);
    assert_eq!(
        d[0]["links"],
        serde_json::json!({"supplement_of": null, "supplements": [], "signed": true, "manifest_supplement_of": null})
    );

    let h = custody(home.path(), &["list", "--store", &store]);
    assert_eq!(h.code, 0);
    assert!(h.stdout.contains("unauthorized_side_effect · side effect happened · analysis: happened · seeds trace_id=c3a1f07e9b5d42e8a6f01d9b7e4c2a58 · 19 file(s)"), "{}", h.stdout);
    assert!(h.stdout.contains("note \"ticket retry\""), "{}", h.stdout);

    // A stored bundle changed: named, not described, exit 1; --ledger-only does not see it.
    let mut bytes = std::fs::read(&b.bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let mut perm = std::fs::metadata(&b.bundle).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&b.bundle, perm).unwrap();
    std::fs::write(&b.bundle, bytes).unwrap();
    let r = custody(home.path(), &["list", "--store", &store, "--json"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    assert_valid("list.v1.schema.json", &j);
    assert_eq!(j["entries"][1]["details"]["verified"], false);
    assert!(j["entries"][1]["details"]["problem"].as_str().unwrap().starts_with("the bundle did not verify"));
    assert_eq!(j["entries"][0]["details"]["verified"], true);
    let l = custody(home.path(), &["list", "--store", &store, "--ledger-only", "--json"]);
    assert_eq!(l.code, 0);
    assert!(l.json()["entries"][1].get("details").is_none());
}

// ---- What people expect of a CLI they install ----

/// The README's install line, run as written into a temporary root (`--root`), installs a
/// custody that runs, completes and has a man page. It shares this build's target directory,
/// so cargo reuses what `cargo test --release` just built when it is fresh (it checks and
/// rebuilds whatever is not) instead of building everything again.
#[test]
fn readme_install_line_installs_a_working_custody_into_a_temporary_root() {
    let repo = crate::collector_util::repo();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo install "))
        .expect("the README has an install line");
    assert_eq!(line, "cargo install --locked --path .");
    let root = tempfile::tempdir().unwrap();
    // target/release/deps/tests-… → target
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let mut words = line.split_whitespace();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| words.next().unwrap().to_string());
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let out = Command::new(cargo)
        .args(&args)
        .arg("--root")
        .arg(root.path())
        .current_dir(&repo)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo install");
    assert!(out.status.success(), "cargo install failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let bin = root.path().join("bin/custody");
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("custody {}", env!("CARGO_PKG_VERSION")));

    // Completions: bash loads them; zsh and fish get their own formats; every command is there.
    let bash = Command::new("bash")
        .arg("-c")
        .arg(format!("source <('{}' completions bash) && complete -p custody", bin.display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bash.stdout).contains("-F _custody custody"), "{bash:?}");
    let comp =
        |sh: &str| String::from_utf8(Command::new(&bin).args(["completions", sh]).output().unwrap().stdout).unwrap();
    let (zsh, fish) = (comp("zsh"), comp("fish"));
    assert!(zsh.starts_with("#compdef custody"));
    for c in ["timeline", "export", "list", "verify", "completions", "man"] {
        assert!(fish.contains(&format!("-a \"{c}\"")), "fish completes {c}");
        assert!(zsh.contains(&format!("'{c}:")), "zsh completes {c}");
    }
    assert!(fish.contains("tool_call"), "the --kind values are completed");

    // The man page renders (man -l) and documents the commands and their options.
    let page = root.path().join("custody.1");
    std::fs::write(&page, Command::new(&bin).arg("man").output().unwrap().stdout).unwrap();
    let shown =
        Command::new("man").arg("-l").arg(&page).env("MANPAGER", "cat").env("MANWIDTH", "100").output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success() && text.contains("custody(1)") && text.contains("timeline"), "{text}");
    let dir = root.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    assert!(Command::new(&bin).args(["man", "--dir"]).arg(&dir).status().unwrap().success());
    let t = std::fs::read_to_string(dir.join("custody-timeline.1")).unwrap();
    assert!(t.contains("\\-\\-since") && t.contains("\\-\\-html"), "{t}");
}

// ---- search ----

/// `search` over a store of three bundles (the refund incident sealed twice, the ticket
/// incident once): the destination, the principal, the memory record and the session are
/// found in exactly the bundles whose analyses hold them, with their session and rollout
/// wave; a bundle that no longer verifies is not searched, named, and exits 1.
#[test]
fn search_finds_which_bundles_sessions_and_waves_touched_a_value() {
    let home = tempfile::tempdir().unwrap();
    let refund = incident("duplicate-refund-poisoned-payout").display().to_string();
    let ticket = incident("duplicate-ticket").display().to_string();
    let seed = ["--trace-id", "c3a1f07e9b5d42e8a6f01d9b7e4c2a58"];
    let a = preserve(home.path(), &[&["--incident-dir", refund.as_str()][..], &seed].concat());
    let b = preserve(home.path(), &[&["--incident-dir", refund.as_str(), "--note", "again"][..], &seed].concat());
    let t = preserve(home.path(), &["--incident-dir", &ticket, "--trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"]);
    let store = home.path().join("store").display().to_string();
    let search = |by: &str, v: &str| {
        let r = custody(home.path(), &["search", "--store", &store, by, v, "--json"]);
        let j = r.json();
        assert_valid("search.v1.schema.json", &j);
        (r.code, j)
    };
    let bundles = |j: &Value| -> Vec<String> {
        j["matches"].as_array().unwrap().iter().map(|m| m["bundle"].as_str().unwrap().to_string()).collect()
    };

    let (code, j) = search("--host", "API.Payrail.example:443");
    assert_eq!(code, 0);
    assert_eq!((j["bundles"].as_u64(), j["searched"].as_u64()), (Some(3), Some(3)));
    assert_eq!(bundles(&j), [a.out["bundle"].as_str().unwrap(), b.out["bundle"].as_str().unwrap()]);
    let m = &j["matches"][0];
    assert_eq!(
        (m["session"].as_str(), m["wave"].as_str(), m["deployment"].as_str()),
        (Some("sess_01JEQ7Z4K8M2X9V3B6N5C1T0WA"), Some("2"), Some("run-7f3c2a91"))
    );
    let ev: Vec<&str> = m["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    let want: Vec<&str> = a
        .a()
        .events
        .iter()
        .filter(|e| e.kind == custody::collect::analysis::EventKind::EgressRequest)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(ev, want);
    assert_eq!(
        j["sessions"],
        serde_json::json!(["sess_01JEQ7Z4K8M2X9V3B6N5C1T0WA"]),
        "one session: a single run, sealed twice"
    );
    assert_eq!(j["waves"], serde_json::json!(["2"]));

    let (_, j) = search("--host", "crm.internal");
    assert_eq!(bundles(&j), [t.out["bundle"].as_str().unwrap()]);
    let (_, j) = search("--principal", "arn:aws:iam::284739101456:role/refund-tools-prod");
    assert_eq!(bundles(&j).len(), 2);
    let (_, j) = search("--memory-id", "4e7a1c9d-8b2f-4a63-b5e0-c1d9f7a2e684");
    assert_eq!(bundles(&j).len(), 2);
    assert!(j["matches"][0]["events"].as_array().unwrap().iter().any(|e| e["kind"] == "memory_write"));
    let (_, j) = search("--session", "sess_nobody");
    assert!(j["matches"].as_array().unwrap().is_empty());

    let h = custody(home.path(), &["search", "--store", &store, "--host", "api.payrail.example"]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert!(h.stdout.contains("host api.payrail.example: 2 of 3 bundle(s) searched"), "{}", h.stdout);
    assert!(
        h.stdout.contains("session sess_01JEQ7Z4K8M2X9V3B6N5C1T0WA · deployment run-7f3c2a91 · wave 2"),
        "{}",
        h.stdout
    );
    let none = custody(home.path(), &["search", "--store", &store]);
    assert_eq!(none.code, 2, "a query is required");
    let two = custody(home.path(), &["search", "--store", &store, "--host", "a", "--session", "b"]);
    assert_eq!(two.code, 2, "one query at a time");

    // A bundle changed in the store: not searched, named, exit 1; the others still are.
    let mut bytes = std::fs::read(&b.bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let mut perm = std::fs::metadata(&b.bundle).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&b.bundle, perm).unwrap();
    std::fs::write(&b.bundle, bytes).unwrap();
    let (code, j) = search("--host", "api.payrail.example");
    assert_eq!(code, 1);
    assert_eq!(bundles(&j), [a.out["bundle"].as_str().unwrap()]);
    assert_eq!(j["not_searched"][0]["bundle"], b.out["bundle"]);
    assert!(j["not_searched"][0]["why"].as_str().unwrap().starts_with("it did not verify"));
}
