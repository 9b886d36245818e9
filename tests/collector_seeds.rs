//! What the search starts from: `--trace-id` in the forms alerts carry it (normalised, and
//! the analysis says how), seeds that cannot be ids refused with exit 2, `--seed VALUE` (a
//! ticket number), a seed that matches nothing (a warning note and an unticked item), and no
//! seed at all (one trace: an inferred seed, marked so; several: candidates with counts).

use crate::collector_util::*;
use custody::bundle::manifest::Status;
use custody::collect::analysis::{IdentStatus, Mode, SeedOrigin};
use custody::collect::analyze::IdentName;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The nine identifier values of duplicate-ticket (its README's table).
const NINE: [&str; 9] = [
    TRACE,
    "sess-7f3a9c2e41d08b65",
    "support-triage-agent",
    "svc-ticketing@prod",
    "apr-5d2e91b7c4a0",
    "bundle-2026.11.3-a41c",
    "chg-48213",
    "wave-2",
    "idem-9b1f4c7a2e6d0358",
];

fn duplicate_ticket(args: &[&str]) -> Preserved {
    let home = tempfile::tempdir().expect("home");
    let dir = incident("duplicate-ticket").display().to_string();
    let mut a = vec!["--incident-dir", dir.as_str()];
    a.extend_from_slice(args);
    let mut p = preserve(home.path(), &a);
    p.home = Some(home);
    p
}

fn values_of(p: &Preserved) -> Vec<Option<String>> {
    p.a().identifiers.iter().map(|i| i.value.clone()).collect()
}

#[test]
fn trace_id_given_as_traceparent_upper_case_uuid_or_base64_is_normalised_and_says_so() {
    let plain = duplicate_ticket(&["--trace-id", TRACE]);
    assert_eq!(plain.a().seeds[0].given, None);
    assert_eq!(plain.a().seeds[0].normalised, None);
    let want = values_of(&plain);
    assert_eq!(want, NINE.iter().map(|v| Some(v.to_string())).collect::<Vec<_>>());
    // base64 of the 16 bytes 4b f9 2f 35 77 b3 4d a6 a3 ce 92 9d 0e 0e 47 36.
    for (given, how) in [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "taken from a W3C traceparent"),
        ("4BF92F3577B34DA6A3CE929D0E0E4736", "lower-cased"),
        ("4bf92f35-77b3-4da6-a3ce-929d0e0e4736", "UUID hyphens removed"),
        ("S/kvNXezTaajzpKdDg5HNg==", "decoded from base64"),
        ("S_kvNXezTaajzpKdDg5HNg", "decoded from base64"),
    ] {
        let p = duplicate_ticket(&["--trace-id", given]);
        let s = &p.a().seeds[0];
        assert_eq!(s.ident, Some(IdentName::TraceId), "{given}");
        assert_eq!(s.value, TRACE, "{given}");
        assert_eq!(s.given.as_deref(), Some(given));
        assert_eq!(s.normalised.as_deref(), Some(how), "{given}");
        assert_eq!(s.origin, SeedOrigin::Flag);
        assert_eq!(s.records, plain.a().seeds[0].records, "{given}: the same records hold it");
        assert_eq!(values_of(&p), want, "{given}: the same identifiers");
        assert_eq!(ident_value(p.a(), IdentName::TraceId), (IdentStatus::Given, Some(TRACE)));
        assert_eq!(counts(p.a()), counts(plain.a()), "{given}: the same events");
        // What the manifest records is the normalised id, not the alert's spelling.
        let t = &p.out["identifiers"][0];
        assert_eq!((t["name"].as_str(), t["value"].as_str()), (Some("trace_id"), Some(TRACE)), "{given}");
    }
}

#[test]
fn a_trace_id_that_cannot_be_one_is_refused_with_exit_2_and_the_reason() {
    let dir = incident("duplicate-ticket").display().to_string();
    for bad in [
        "4bf92f35",                                             // 8 hex digits: too short
        "4bf92f3577b34da6a3ce929d0e0e47361",                    // 33 hex digits
        "00000000000000000000000000000000",                     // all zeros: invalid per W3C
        "not-a-trace-id",                                       // not hex at all
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", // traceparent without flags
        "4bf92f3577b34da6a3ce929d0e0e473g",                     // a non-hex digit
    ] {
        let home = tempfile::tempdir().expect("home");
        let store = home.path().join("store").display().to_string();
        let r =
            custody(home.path(), &["preserve", "--json", "--store", &store, "--incident-dir", &dir, "--trace-id", bad]);
        assert_eq!(r.code, 2, "{bad}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&format!("--trace-id `{bad}` is not a trace id (32 hex digits")),
            "{bad}: the reason names the flag, the value and what it should be:\n{}",
            r.stderr
        );
        assert!(stored_bundles(&home.path().join("store")).is_empty(), "{bad}: nothing is sealed");
    }
    // An empty `--seed` is no value either.
    let home = tempfile::tempdir().expect("home");
    let r = custody(home.path(), &["preserve", "--incident-dir", &dir, "--seed", ""]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--seed `` is not a usable value"), "{}", r.stderr);
}

/// Bundle files under a store directory.
fn stored_bundles(store: &std::path::Path) -> Vec<std::path::PathBuf> {
    if !store.exists() {
        return Vec::new();
    }
    walk(store).into_iter().filter(|p| p.to_string_lossy().ends_with(".tar.zst")).collect()
}

/// `--seed TCK-88213`: the duplicate ticket number from the alert is in the tool-call log
/// (`response.body.ticket`) and the ticketing-api span (`ticket.id`); from there the search
/// finds the whole incident, in any case.
#[test]
fn seed_value_from_an_alert_finds_the_incident() {
    for given in ["TCK-88213", "tck-88213"] {
        let p = duplicate_ticket(&["--seed", given]);
        let a = p.a();
        assert_eq!(a.mode, Mode::Search);
        let s = &a.seeds[0];
        assert_eq!((s.ident, s.value.as_str(), s.origin), (None, given, SeedOrigin::Flag));
        assert!(s.records >= 2, "{given}: matched {} record(s)", s.records);
        for (n, want) in IdentName::ALL.iter().zip(NINE) {
            assert_eq!(ident_value(a, *n), (IdentStatus::Found, Some(want)), "{given}: {n}");
        }
    }
}

/// A seed nothing holds: the seed says 0 records, its identifier is `not_observed`, nothing
/// else is claimed, the checklist item `seed_trace_id` stays unticked with the reason, and the
/// manifest carries the warning as a note.
#[test]
fn a_seed_matching_no_record_is_a_warning_and_an_unticked_item() {
    let none = "ffffffffffffffffffffffffffffffff";
    let p = duplicate_ticket(&["--trace-id", none]);
    let a = p.a();
    assert_eq!(a.seeds[0].records, 0);
    assert_eq!(ident_value(a, IdentName::TraceId), (IdentStatus::NotObserved, Some(none)));
    for n in &IdentName::ALL[1..] {
        assert_eq!(ident_value(a, *n), (IdentStatus::Unknown, None), "{n}");
    }
    assert!(a.events.is_empty(), "{:?}", a.events);
    let item = a.checklist.iter().find(|i| i.item == "seed_trace_id").expect("a checklist item for the seed");
    assert_eq!(item.status, Status::Missing);
    assert!(item.detail.contains(&format!("the seed {none} matched no record")), "{}", item.detail);
    let json_item =
        p.out["checklist"].as_array().expect("checklist").iter().find(|i| i["item"] == "seed_trace_id").cloned();
    assert_eq!(json_item.map(|i| i["status"].clone()), Some(serde_json::json!("missing")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&bundle_member(&p.bundle, "manifest.json").expect("manifest")).expect("manifest JSON");
    let notes = manifest["incident"]["tool_notes"].as_array().expect("tool_notes");
    assert!(
        notes.iter().any(|n| n.as_str()
            == Some(&format!("custody analysis: WARNING: the seed trace_id {none} matched no record of the evidence"))),
        "{notes:?}"
    );
}

/// No seed, and the evidence holds one trace: it is the seed, marked `inferred` in the seeds,
/// the identifier, the mode and the manifest's identifier sources.
#[test]
fn without_a_seed_the_only_trace_is_an_inferred_seed_marked_so() {
    // The formats scenario's OTLP export: one trace, 9 spans; its conversation and agent.
    let dir = IncidentDir::of(&[(format_fixture("otlp/traces-agent-run.otlp.json"), "traces/run.otlp.json")]);
    let p = preserve_dir(&dir, &[]);
    let a = p.a();
    assert_eq!(a.mode, Mode::Inferred);
    assert_eq!(a.seeds.len(), 1);
    let s = &a.seeds[0];
    assert_eq!(
        (s.ident, s.value.as_str(), s.origin, s.records),
        (Some(IdentName::TraceId), FORMATS_TRACE, SeedOrigin::Inferred, 9)
    );
    assert_eq!(ident_value(a, IdentName::TraceId), (IdentStatus::Inferred, Some(FORMATS_TRACE)));
    assert_eq!(ident_value(a, IdentName::SessionId), (IdentStatus::Found, Some("conv_6f2d91c4a7e8")));
    assert_eq!(ident_value(a, IdentName::AgentId), (IdentStatus::Found, Some("billing-agent")));
    let t = &p.out["identifiers"][0];
    assert_eq!(t["value"], FORMATS_TRACE);
    assert_eq!(t["sources"][0]["origin"], "inferred", "{t}");
}

/// No seed, several traces: nothing is linked, and each identifier's values are listed with
/// how many records hold them.
#[test]
fn without_a_seed_several_traces_are_listed_as_candidates_with_counts() {
    let a_trace = "0af7651916cd43dd8448eb211c80319c";
    let b_trace = "5b8efff798038103d269b633813fc60c";
    let mut log = String::new();
    for i in 0..3 {
        log.push_str(&format!(
            "{{\"trace_id\":\"{a_trace}\",\"session_id\":\"sess-a\",\"tool\":\"read\",\"n\":{i}}}\n"
        ));
    }
    log.push_str(&format!("{{\"trace_id\":\"{b_trace}\",\"session_id\":\"sess-b\",\"tool\":\"read\"}}\n"));
    log.push_str(&format!("{{\"traceId\":\"{}\",\"session_id\":\"sess-b\"}}\n", b_trace.to_uppercase()));
    let dir = IncidentDir::new();
    dir.write("logs/calls.jsonl", &log);
    let p = preserve_dir(&dir, &[]);
    let a = p.a();
    assert_eq!(a.mode, Mode::Candidates);
    assert!(a.seeds.is_empty());
    assert!(a.identifiers.iter().all(|i| i.status == IdentStatus::Unknown && i.value.is_none()), "{:?}", a.identifiers);
    assert!(a.events.is_empty());
    let c = |n: IdentName| {
        let c = a.candidates.iter().find(|c| c.name == n).unwrap_or_else(|| panic!("no candidates for {n}"));
        (c.distinct, c.capped, c.values.iter().map(|v| (v.value.clone(), v.records)).collect::<Vec<_>>())
    };
    assert_eq!(c(IdentName::TraceId), (2, false, vec![(a_trace.to_string(), 3), (b_trace.to_string(), 2)]));
    assert_eq!(c(IdentName::SessionId), (2, false, vec![("sess-a".to_string(), 3), ("sess-b".to_string(), 2)]));
    let t = a.candidates.iter().find(|c| c.name == IdentName::TraceId).expect("trace candidates");
    let b = &t.values[1];
    let mut fields = b.fields.clone();
    fields.sort();
    assert_eq!(fields, ["traceId", "trace_id"]);
    assert_eq!(b.citations.iter().map(|c| c.line).collect::<Vec<_>>(), [Some(4), Some(5)]);

    // The fixture incident: its trace and its follow-up trace are the two most frequent of the
    // trace ids its files hold.
    let home = tempfile::tempdir().expect("home");
    let dir = incident("duplicate-ticket").display().to_string();
    let p = preserve(home.path(), &["--incident-dir", &dir]);
    let a = p.a();
    assert_eq!(a.mode, Mode::Candidates);
    let t = a.candidates.iter().find(|c| c.name == IdentName::TraceId).expect("trace candidates");
    let top: Vec<&str> = t.values.iter().take(2).map(|v| v.value.as_str()).collect();
    assert_eq!(top, [TRACE, "9a1c6e2f5b7d4038a2e41f6c0d8b3a57"]);
    assert!(t.values[0].records > t.values[1].records);
    let s = a.candidates.iter().find(|c| c.name == IdentName::SessionId).expect("session candidates");
    let mut sessions: Vec<&str> = s.values.iter().map(|v| v.value.as_str()).collect();
    sessions.sort_unstable();
    // The incident's session and the four background sessions of the README.
    assert_eq!(
        sessions,
        [
            "sess-2c81d0e95fa37b14",
            "sess-7f3a9c2e41d08b65",
            "sess-a05e77c3190bd4f2",
            "sess-d4b9f27e6a0c3318",
            "sess-e61f0a2b7c93d548"
        ]
    );
    assert_eq!(s.distinct, 5);
}
