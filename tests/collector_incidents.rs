//! The fixture incidents (`fixtures/incidents/<name>/`) through `custody preserve` from the
//! seed of their expected file: the projection of the bundle's `analysis.json` equals
//! `<name>.expected.json` exactly (every identifier, the chain, the events per kind, the
//! duplicates, the unknown outcomes, memory, egress hosts and malformed lines), and every
//! identifier value is cited where its bytes are.

use crate::collector_util::*;
use custody::collect::analysis::{Analysis, HopStatus, IdentStatus, Mode, NodeName, SeedOrigin, Tie};
use custody::collect::analyze::IdentName;
use serde_json::Value;

const INCIDENTS: [&str; 3] = ["duplicate-ticket", "duplicate-refund-poisoned-payout", "procurement-po-retry"];

fn expected(name: &str) -> Value {
    let p = repo().join("fixtures/incidents").join(format!("{name}.expected.json"));
    serde_json::from_slice(&std::fs::read(&p).expect("expected file")).expect("expected file is JSON")
}

/// `preserve --incident-dir fixtures/incidents/<name>` with the expected file's seed flags.
fn preserve_incident(name: &str) -> Preserved {
    let exp = expected(name);
    let seeds = exp["seed"].as_object().expect("the expected file names its seed");
    let dir = incident(name).display().to_string();
    let mut args: Vec<String> = vec!["--incident-dir".into(), dir];
    for (k, v) in seeds {
        args.push(format!("--{}", k.replace('_', "-")));
        args.push(v.as_str().expect("seed value").to_string());
    }
    let home = tempfile::tempdir().expect("home");
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = preserve(home.path(), &a);
    p.home = Some(home);
    p
}

fn assert_projection_equals_expected(name: &str) {
    let p = preserve_incident(name);
    let got = project(p.a());
    let want = normalise_expected(expected(name));
    let diff = json_diff(&want, &got);
    assert!(
        diff.is_empty(),
        "{name}: the analysis differs from {name}.expected.json in {} place(s):\n{}\n\nwhole projection:\n{}",
        diff.len(),
        diff.join("\n"),
        serde_json::to_string_pretty(&got).unwrap_or_default()
    );
}

#[test]
fn duplicate_ticket_analysis_equals_its_expected_file() {
    assert_projection_equals_expected("duplicate-ticket");
}

#[test]
fn duplicate_refund_poisoned_payout_analysis_equals_its_expected_file() {
    assert_projection_equals_expected("duplicate-refund-poisoned-payout");
}

#[test]
fn procurement_po_retry_analysis_equals_its_expected_file() {
    assert_projection_equals_expected("procurement-po-retry");
}

/// The projection compares whole documents: a value it does not expect is a difference too.
#[test]
fn the_projection_comparison_sees_extra_and_missing_values() {
    let want = serde_json::json!({"a": {"x": 1}, "b": [1, 2]});
    assert!(json_diff(&want, &want).is_empty());
    let got = serde_json::json!({"a": {"x": 1, "y": 2}, "b": [1, 3]});
    let d = json_diff(&want, &got);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].starts_with(".a.y: not expected"), "{d:?}");
    assert!(d[1].starts_with(".b[1]: expected 2"), "{d:?}");
    assert_eq!(
        json_diff(&want, &serde_json::json!({"a": {"x": 1}})),
        vec![".b: expected [1,2], missing in the analysis"]
    );
}

/// From the trace id alone, all nine identifiers of every fixture incident are found with
/// their value (none given, unknown or in conflict), the chain is linked end to end, and each
/// value's citations point at records whose bytes hold it.
#[test]
fn every_fixture_incident_yields_nine_of_nine_identifiers_from_its_trace_id_alone() {
    for name in INCIDENTS {
        let exp = expected(name);
        assert_eq!(exp["seed"].as_object().map(|o| o.keys().collect::<Vec<_>>()), Some(vec![&"trace_id".to_string()]));
        let p = preserve_incident(name);
        let a = p.a();
        assert_eq!(a.mode, Mode::Search);
        assert_eq!(a.seeds.len(), 1);
        assert_eq!(a.seeds[0].origin, SeedOrigin::Flag);
        assert!(a.seeds[0].records > 0, "{name}: the seed matched no record");
        for n in IdentName::ALL {
            let f = ident(a, n);
            let want =
                exp["identifiers"][n.as_str()]["value"].as_str().unwrap_or_else(|| panic!("{name}: {n} has no value"));
            let status_ok = if n == IdentName::TraceId { IdentStatus::Given } else { IdentStatus::Found };
            assert_eq!((f.status, f.value.as_deref()), (status_ok, Some(want)), "{name}: {n}: {}", f.why);
            let v = f
                .values
                .iter()
                .find(|v| v.value == want)
                .unwrap_or_else(|| panic!("{name}: {n} lists no value {want}"));
            assert!(v.records > 0 && !v.citations.is_empty(), "{name}: {n} {want} is not cited");
            for c in &v.citations {
                assert_cites_value(name, &p, a, n, want, c);
            }
        }
        // The chain trace → session → deployment → change → wave, and the bundle.
        for node in &a.chain.nodes {
            assert_eq!(node.status, HopStatus::Linked, "{name}: node {:?}", node.name);
        }
        assert_hops_cited(name, a);
        let node = |n: NodeName| a.chain.nodes.iter().find(|x| x.name == n).and_then(|x| x.value.clone());
        assert_eq!(node(NodeName::Trace).as_deref(), exp["identifiers"]["trace_id"]["value"].as_str());
        assert_eq!(node(NodeName::Session).as_deref(), exp["identifiers"]["session_id"]["value"].as_str());
        assert_eq!(node(NodeName::Bundle).as_deref(), exp["identifiers"]["bundle_id"]["value"].as_str());
    }
}

/// Every hop of the chain is established and cites the records that show both ends.
fn assert_hops_cited(name: &str, a: &Analysis) {
    assert_eq!(a.chain.hops.len(), 5, "{name}");
    for hop in &a.chain.hops {
        assert_eq!(hop.status, HopStatus::Linked, "{name}: hop {:?} → {:?}: {}", hop.from, hop.to, hop.why);
        assert!(!hop.citations.is_empty(), "{name}: hop {:?} → {:?} cites nothing", hop.from, hop.to);
    }
}

/// The procurement incident's deployment (the ReplicaSet that served it) is reached through
/// the trace's records: its node is linked, so the hop that leads to it must be shown too.
/// The retried `create_purchase_order` carries its idempotency key only in the requests it
/// made (the Squid line's header, the Lambda's log): its two attempts are still one action,
/// the first took effect at the server although its client timed out, and the second was an
/// idempotent replay (the Lambda's "idempotent replay" line, a JSON message inside the
/// CloudWatch export) — one purchase order, no duplicate, nothing unknown.
#[test]
fn regression_attempts_keyed_only_by_their_requests_were_not_one_action() {
    let p = preserve_incident("procurement-po-retry");
    let a = p.a();
    let po: Vec<_> = a.actions.iter().filter(|x| x.target.as_deref() == Some("create_purchase_order")).collect();
    assert_eq!(po.len(), 1, "{:?}", a.actions);
    assert_eq!(po[0].idempotency_key, "po-7f1e0c2d-93ab-4c55-8e61-2b4d9a0c7e15");
    assert_eq!((po[0].attempts.len(), po[0].took_effect, po[0].unknown, po[0].duplicate), (2, 1, 0, false));
    let second = a.events.iter().find(|e| e.id == po[0].attempts[1]).expect("second attempt");
    assert!(second.outcome.as_ref().is_some_and(|o| o.replayed), "{second:?}");
    assert_eq!((a.side_effect.took_effect, a.side_effect.unknown, a.side_effect.duplicates), (1, 0, 0));
    assert!(a.side_effect.detail.contains("1 replayed an earlier result"), "{}", a.side_effect.detail);
}

#[test]
fn procurement_po_retry_chain_hops_are_all_cited() {
    let p = preserve_incident("procurement-po-retry");
    assert_hops_cited("procurement-po-retry", p.a());
}

/// A citation of `value` points at a sealed record (its digest is the file's) whose bytes hold
/// the value in one of its written forms.
fn assert_cites_value(
    name: &str,
    p: &Preserved,
    _a: &Analysis,
    n: IdentName,
    value: &str,
    c: &custody::collect::analysis::Citation,
) {
    let dir = incident(name);
    let original = std::fs::read(dir.join(&c.path)).unwrap_or_else(|e| panic!("{name}: cited {}: {e}", c.path));
    use sha2::Digest;
    assert_eq!(c.sha256, hex::encode(sha2::Sha256::digest(&original)), "{name}: {} digest", c.path);
    let sealed = bundle_has_blob(p, &c.sha256);
    assert!(sealed, "{name}: {} is not a sealed blob", c.path);
    let bytes = cited_bytes(&dir, c);
    let raw = String::from_utf8_lossy(&bytes);
    let text = raw.to_lowercase();
    let forms = written_forms(value);
    assert!(
        forms.iter().any(|f| text.contains(f)) || embedded(&raw, &forms),
        "{name}: {n} {value}: citation {}@{}+{} does not hold it: {}",
        c.path,
        c.offset,
        c.len,
        text.chars().take(300).collect::<String>()
    );
}

/// Whether the bundle's manifest lists a blob with this digest.
fn bundle_has_blob(p: &Preserved, sha: &str) -> bool {
    let m = bundle_member(&p.bundle, "manifest.json").expect("manifest.json");
    String::from_utf8_lossy(&m).contains(sha)
}

/// The lower-case forms a value is written in: as is, a hex id UUID-hyphenated, `trace_`
/// prefixed or inside a traceparent, and base64 of its bytes (escaped `/` too).
fn written_forms(v: &str) -> Vec<String> {
    let l = v.to_lowercase();
    let mut f = vec![l.clone()];
    if l.len() == 32 && l.bytes().all(|b| b.is_ascii_hexdigit()) {
        f.push(format!("{}-{}-{}-{}-{}", &l[..8], &l[8..12], &l[12..16], &l[16..20], &l[20..]));
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(hex::decode(&l).expect("hex"));
        f.push(b.to_lowercase());
    }
    f
}

/// Whether the value is inside base64 carried in the text (Temporal payloads).
fn embedded(text: &str, forms: &[String]) -> bool {
    use base64::Engine as _;
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
        .filter(|t| t.len() >= 16)
        .filter_map(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .any(|b| {
            let s = String::from_utf8_lossy(&b).to_lowercase();
            forms.iter().any(|f| s.contains(f))
        })
}

/// `oncall-copilot-rotation-exfil` was built from public format docs by a tester who had not
/// seen custody's rules, with traps custody did not know (an MCP transport session shared by
/// every conversation on a pod, a Cerbos Hub deployment id, a superseded bundle under
/// `config.prior`, an OpenMemory namespace in `user_id`, an Istio container log whose first line
/// is text). custody does not recover all of it (see the fixture's story): what this holds is
/// the rule that a wrong value is worse than a missing one — every value custody asserts is
/// the true one, every conflict contains the true value, no count exceeds the truth, and
/// nothing of another conversation is counted as the incident's.
#[test]
fn regression_oncall_copilot_rotation_exfil_asserts_nothing_false() {
    let name = "oncall-copilot-rotation-exfil";
    let exp = expected(name);
    let p = preserve_incident(name);
    let a = p.a();
    for f in &a.identifiers {
        let want = exp["identifiers"][f.name.as_str()]["value"].as_str().expect("truth");
        match f.status {
            IdentStatus::Given | IdentStatus::Found | IdentStatus::Inferred => {
                assert_eq!(f.value.as_deref(), Some(want), "{}: {}", f.name, f.why)
            }
            IdentStatus::Conflict => {
                assert!(f.values.iter().any(|v| v.value == want), "{}: conflict without the truth {want}", f.name)
            }
            _ => {}
        }
    }
    let truth_subjects: Vec<&str> = exp["subjects"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for s in &a.subjects {
        assert!(truth_subjects.contains(&s.value.as_str()), "acted for {} is false", s.value);
    }
    for node in &a.chain.nodes {
        let Some(v) = node.value.as_deref() else { continue };
        let want = exp["chain"][node.name.as_str()].as_str().expect("truth");
        // The ReplicaSet the pod names is the same deployment as seen by the cluster (the
        // story's trap 6): custody may name it instead of the GitHub deployment id.
        let same = node.name == NodeName::Deployment && v == "oncall-copilot-7f9c4d8b6";
        assert!(v == want || same, "chain {:?} = {v}, truth {want}", node.name);
    }
    // Counts: no kind has more events tied to the incident than really happened (the probable,
    // time-and-address egress requests are labelled as such and not counted here).
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for e in a.events.iter().filter(|e| e.tie != Tie::TimeAndAddress) {
        *counts.entry(format!("{:?}", e.kind)).or_default() += 1;
    }
    for e in &a.events {
        let kind = serde_json::to_value(e.kind).unwrap();
        let truth = exp["events"][kind.as_str().unwrap()].as_u64().unwrap();
        let got = counts.get(&format!("{:?}", e.kind)).copied().unwrap_or(0);
        assert!(got <= truth, "{kind}: {got} events, truth {truth}");
    }
    // The true duplicate has no idempotency key: custody cannot group it, and must not
    // invent another.
    let duplicates: Vec<_> = a.actions.iter().filter(|d| d.duplicate).collect();
    assert!(duplicates.is_empty(), "{duplicates:?}");
    let truth_hosts: Vec<&str> = exp["egress_hosts"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for h in &a.egress {
        assert!(truth_hosts.contains(&h.host.as_str()), "egress to {} is not the incident's", h.host);
    }
    for m in a.memory.read.iter().chain(&a.memory.written) {
        let truth =
            exp["memory"]["read"].as_array().unwrap().iter().chain(exp["memory"]["written"].as_array().unwrap());
        assert!(truth.into_iter().any(|t| t == m), "memory {m} is not the incident's");
    }
    // The upload whose outcome is really unknown is named; an approval whose records were not
    // understood is not offered as "not applicable".
    assert!(a.side_effect.warning.as_deref().is_some_and(|w| w.contains("upload_diagnostics")), "{:?}", a.side_effect);
    let approval = a.checklist.iter().find(|c| c.item == "approval_path").expect("approval_path");
    assert!(
        approval.detail.contains("APR-20261214-0419") && !approval.detail.contains("--no-approval-path"),
        "{}",
        approval.detail
    );
}
