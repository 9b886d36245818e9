//! `custody analyze` (issue 22 item 4): a stored bundle's sealed evidence analysed again with
//! other seeds or another field mapping, sealed as a supplement bundle linked to it (signed in
//! its manifest and recorded in its `custody-ledger/v2` entry); the verifier's rules L9 and P4
//! (`docs/format.md` §6.4) against hostile links; `show`/`timeline`/`list` naming the link;
//! refusal of an original that does not verify; and the pre-supplement compat store.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::collector_util::{bundle_member, collector_fixture, custody, incident, preserve, Run};
use crate::schemas::assert_valid;
use custody::bundle::manifest::Manifest;
use custody::read::ledger::{entry_key, LedgerEntry, StoredEntry};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn store_of(home: &Path) -> String {
    s(&home.join("store"))
}

fn manifest(bundle: &Path) -> Manifest {
    serde_json::from_slice(&bundle_member(bundle, "manifest.json").expect("manifest.json")).expect("manifest")
}

fn analysis(bundle: &Path) -> custody::collect::analysis::Analysis {
    serde_json::from_slice(&bundle_member(bundle, "analysis.json").expect("analysis.json")).expect("analysis")
}

/// The ledger entry at `position` of the local store `store`.
fn entry(store: &Path, position: u64) -> (Vec<u8>, LedgerEntry) {
    let bytes = std::fs::read(store.join(entry_key(position))).expect("entry");
    let e = StoredEntry::from_bytes(position, &bytes);
    let le = e.entry().expect("a valid entry").clone();
    (bytes, le)
}

fn entries_in(store: &Path) -> usize {
    std::fs::read_dir(store.join("ledger")).map(|d| d.count()).unwrap_or(0)
}

fn bundles_in(store: &Path) -> usize {
    std::fs::read_dir(store.join("bundles")).map(|d| d.count()).unwrap_or(0)
}

fn analyze(home: &Path, digest: &str, args: &[&str]) -> Run {
    let store = store_of(home);
    let mut a = vec!["analyze", digest, "--store", &store];
    a.extend_from_slice(args);
    custody(home, &a)
}

fn location(store: &Path, digest: &str) -> PathBuf {
    store.join("bundles").join(format!("{}.tar.zst", digest.trim_start_matches("sha256:")))
}

/// A preserve with no seed finds nothing (candidates only); `analyze --trace-id` on the sealed
/// bundle finds the nine identifiers — exactly what a preserve with that seed finds, from the
/// same analysis code — and seals a supplement linked both ways; the store stays intact, and
/// `show`, `timeline` and `list` name the link.
#[test]
fn analyze_with_another_seed_seals_a_linked_supplement_and_every_reader_names_the_link() {
    let home = tempfile::tempdir().unwrap();
    let dir = s(&incident("duplicate-ticket"));
    let orig = preserve(home.path(), &["--incident-dir", &dir]);
    let od = orig.out["bundle"].as_str().unwrap().to_string();
    assert!(orig.a().identifiers.iter().all(|i| i.value.is_none()), "no seed: nothing linked");
    let store = home.path().join("store");

    let r = analyze(home.path(), &od, &["--trace-id", TRACE, "--note", "second look", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_valid("analyze.v1.schema.json", &j);
    assert_eq!(j["supplement_of"], od);
    assert_eq!(j["ledger"]["position"], 2);
    assert_eq!(j["record"]["field_map"]["origin"], "original", "no --field-map: the original's mapping again");
    let trace = j["identifiers"].as_array().unwrap().iter().find(|i| i["name"] == "trace_id").unwrap().clone();
    assert_eq!((trace["before"].clone(), trace["after"].clone()), (Value::Null, Value::from(TRACE)));
    let sd = j["bundle"].as_str().unwrap().to_string();
    let sup = location(&store, &sd);

    // The same analysis as a preserve with that seed (the evidence read from the bundle).
    let direct_home = tempfile::tempdir().unwrap();
    let direct = preserve(direct_home.path(), &["--incident-dir", &dir, "--trace-id", TRACE]);
    let a = analysis(&sup);
    let ids = |a: &custody::collect::analysis::Analysis| {
        a.identifiers.iter().map(|i| (i.name, i.status, i.value.clone())).collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(direct.a()));
    assert_eq!(a.events, direct.a().events);
    assert_eq!(a.chain, direct.a().chain);
    assert_eq!(a.side_effect, direct.a().side_effect);

    // The link, signed in the manifest and recorded in the ledger.
    let m = manifest(&sup);
    let o = manifest(&orig.bundle);
    let link = m.supplement_of.as_ref().expect("a signed supplement_of");
    assert_eq!((link.bundle.to_string(), link.sealed_at), (od.clone(), o.sealed_at));
    assert_eq!(m.entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(), ["supplement/analyze.json"]);
    assert_eq!(m.entries[0].kind, "supplement");
    let tool = m.incident.tool_notes.as_ref().expect("v3 tool notes");
    assert!(tool[0].starts_with(&format!("custody analyze: a re-analysis of evidence bundle {od}")), "{tool:?}");
    assert_eq!(m.incident.notes, ["second look"], "only the responder's");
    let (_, le) = entry(&store, 2);
    assert_eq!(le.format, "custody-ledger/v2");
    assert_eq!(le.supplement_of.map(|b| b.to_string()), Some(od.clone()));
    assert_eq!(le.bundle.to_string(), sd);
    let rec: Value =
        serde_json::from_slice(&bundle_member(&sup, &blob_of(&m, "supplement/analyze.json")).unwrap()).unwrap();
    assert_eq!(rec, j["record"]);
    assert_eq!(rec["supplement_of"]["bundle"], od.trim_start_matches("sha256:"));
    assert_eq!(rec["seeds"][0]["value"], TRACE);

    // verify: the whole store, and each bundle by digest.
    let st = store_of(home.path());
    let v = custody(home.path(), &["verify", "--store", &st, "--all", "--json"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let vj = v.json();
    assert_valid("verify-report.v1.schema.json", &vj);
    assert!(vj["findings"].as_array().unwrap().is_empty(), "{vj:#}");
    for d in [&od, &sd] {
        assert_eq!(custody(home.path(), &["verify", "--store", &st, d]).code, 0, "{d}");
    }
    // A bare supplement file verifies; its link is said to be unchecked without the store.
    let bare = custody(home.path(), &["verify", &s(&sup)]);
    assert_eq!(bare.code, 0, "{}", bare.stdout);
    assert!(bare.stdout.contains(&format!("its link as a supplement of {od}")), "{}", bare.stdout);

    // show: the original names its latest supplement; the supplement its original; a file
    // cannot look supplements up.
    let sh = custody(home.path(), &["show", "--store", &st, &od, "--json"]);
    assert_eq!(sh.code, 0, "{}", sh.stderr);
    let shj = sh.json();
    assert_valid("show.v1.schema.json", &shj);
    assert_eq!(shj["supplement_of"], Value::Null);
    assert_eq!(shj["supplements"]["looked_up"], true);
    assert_eq!(shj["supplements"]["count"], 1);
    let latest = &shj["supplements"]["latest"];
    assert_eq!((latest["bundle"].as_str(), latest["position"].as_u64()), (Some(sd.as_str()), Some(2)));
    assert_eq!(latest["seeds"], serde_json::json!([format!("trace_id={TRACE}")]));
    assert_eq!(latest["verified"], true);
    let latest_sealed: chrono::DateTime<chrono::Utc> = serde_json::from_value(latest["sealed_at"].clone()).unwrap();
    assert_eq!(latest_sealed, m.sealed_at, "the sealing time its verified manifest gives");
    let human = custody(home.path(), &["show", "--store", &st, &od]);
    assert!(human.stdout.contains(&format!("supplements 1 (latest {sd} at position 2")), "{}", human.stdout);
    assert!(human.stdout.contains(&format!("custody show --store {st} {sd}")), "{}", human.stdout);
    let shs = custody(home.path(), &["show", "--store", &st, &sd, "--json"]).json();
    assert_valid("show.v1.schema.json", &shs);
    assert_eq!(shs["supplement_of"], od);
    assert_eq!(shs["supplements"]["count"], 0);
    let hs = custody(home.path(), &["show", "--store", &st, &sd]);
    assert!(hs.stdout.contains(&format!("supplement of {od}")), "{}", hs.stdout);
    for b in [&orig.bundle, &sup] {
        let f = custody(home.path(), &["show", &s(b), "--json"]).json();
        assert_eq!(f["supplements"]["looked_up"], false);
        assert_eq!(f["supplements"]["note"], "not looked up (give --store)");
        let h = custody(home.path(), &["show", &s(b)]);
        assert!(h.stdout.contains("supplements not looked up (give --store)"), "{}", h.stdout);
    }

    // timeline: the same fields; a supplement's cited records come from its original.
    let t = custody(home.path(), &["timeline", "--store", &st, &od, "--json"]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let tj = t.json();
    assert_valid("timeline.v1.schema.json", &tj);
    assert_eq!(tj["supplements"]["latest"]["bundle"], sd);
    let th = custody(home.path(), &["timeline", "--store", &st, &od]);
    assert!(th.stdout.contains(&format!("supplements 1 (latest {sd}")), "{}", th.stdout);
    let ts = custody(home.path(), &["timeline", "--store", &st, &sd, "--json", "--records"]);
    assert_eq!(ts.code, 0, "{}", ts.stderr);
    let tsj = ts.json();
    assert_valid("timeline.v1.schema.json", &tsj);
    assert_eq!(tsj["supplement_of"], od);
    assert_eq!(tsj["records"].as_array().unwrap().len(), tsj["events"].as_array().unwrap().len());
    assert!(!tsj["events"].as_array().unwrap().is_empty());
    let tf = custody(home.path(), &["timeline", &s(&orig.bundle), "--json"]).json();
    assert_eq!(tf["supplements"]["note"], "not looked up (give --store)");
    let no_records = custody(home.path(), &["timeline", &s(&sup), "--records", "--json"]);
    assert_eq!(no_records.code, 2);
    assert!(no_records.stderr.contains("give --store URL"), "{}", no_records.stderr);

    // list: both directions of the link.
    let l = custody(home.path(), &["list", "--store", &st, "--json"]);
    assert_eq!(l.code, 0, "{}", l.stdout);
    let lj = l.json();
    assert_valid("list.v1.schema.json", &lj);
    assert_eq!(lj["entries"][0]["details"]["links"]["supplements"], serde_json::json!([sd]));
    assert_eq!(lj["entries"][1]["details"]["links"]["supplement_of"], od);
    assert_eq!(lj["entries"][1]["details"]["links"]["signed"], true, "the verified manifest signs the same link");
    assert_eq!(lj["entries"][0]["details"]["links"]["signed"], true);
    assert_eq!(lj["entries"][1]["details"]["seeds"], serde_json::json!([format!("trace_id={TRACE}")]));
    let lh = custody(home.path(), &["list", "--store", &st]);
    assert!(lh.stdout.contains(&format!("supplemented by {sd}")), "{}", lh.stdout);
    assert!(lh.stdout.contains(&format!("supplement of {od}")), "{}", lh.stdout);

    // A supplement is not analysed again: its evidence is the original's.
    let again = analyze(home.path(), &sd, &["--trace-id", TRACE]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains(&format!("is a supplement (a re-analysis) of {od}")), "{}", again.stderr);
    assert_eq!(entries_in(&store), 2);
}

/// The blob member name of entry `path`.
fn blob_of(m: &Manifest, path: &str) -> String {
    let e = m.entries.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no entry {path}"));
    format!("blobs/sha256/{}", e.sha256.hex())
}

/// `--field-map`: the mapping finds what the built-in names do not, and the supplement seals
/// the file's exact bytes and says so in its record and its analysis.
#[test]
fn analyze_with_a_field_map_records_the_mapping_it_used() {
    let home = tempfile::tempdir().unwrap();
    let base = collector_fixture("generic");
    let src = format!("logs={}", s(&base.join("tool-calls-custom.jsonl")));
    let orig = preserve(home.path(), &["--source", &src, "--trace-id", TRACE]);
    let od = orig.out["bundle"].as_str().unwrap().to_string();
    let session = |a: &custody::collect::analysis::Analysis| {
        a.identifiers.iter().find(|i| i.name.as_str() == "session_id").and_then(|i| i.value.clone())
    };
    assert_eq!(session(orig.a()), None);
    let map = base.join("custom-fields-mapping.toml");
    let r = analyze(home.path(), &od, &["--trace-id", TRACE, "--field-map", &s(&map), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_valid("analyze.v1.schema.json", &j);
    let fm = &j["record"]["field_map"];
    let bytes = std::fs::read(&map).unwrap();
    assert_eq!(fm["origin"], "flag");
    assert_eq!(fm["path"], s(&map));
    assert_eq!(fm["sha256"], custody::digest::Sha256::of(&bytes).hex());
    assert_eq!(fm["entry"], "supplement/field-map.toml");
    let sup = location(&home.path().join("store"), j["bundle"].as_str().unwrap());
    let m = manifest(&sup);
    let e = m.entries.iter().find(|e| e.path == "supplement/field-map.toml").expect("the mapping is sealed");
    assert_eq!(e.kind, "spec");
    assert_eq!(bundle_member(&sup, &blob_of(&m, "supplement/field-map.toml")).unwrap(), bytes);
    let a = analysis(&sup);
    assert_eq!(session(&a).as_deref(), Some("sess-fixture-0001"));
    assert_eq!(a.field_mapping.origin, "flag");
    // A broken mapping is refused before anything is read or written (exit 2).
    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, "[fields]\nsesion_id = [\"x\"]\n").unwrap();
    let r = analyze(home.path(), &od, &["--field-map", &s(&bad)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("the field mapping cannot be used"), "{}", r.stderr);
    assert_eq!(entries_in(&home.path().join("store")), 2);
}

/// An original that does not verify (a byte flipped in the store, or a signer not pinned) is
/// refused with the report and exit 1, and nothing is written: no bundle, no ledger entry.
/// Without --store, analyze says why it needs one.
#[test]
fn analyze_refuses_an_original_that_does_not_verify_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let orig = preserve(home.path(), &["--incident-dir", &s(&incident("duplicate-ticket"))]);
    let od = orig.out["bundle"].as_str().unwrap().to_string();
    let store = home.path().join("store");
    // Not pinned: another key only.
    let other = home.path().join("other.key");
    assert_eq!(custody(home.path(), &["keygen", "--out", &s(&other)]).code, 0);
    let r = analyze(home.path(), &od, &["--trace-id", TRACE, "--trusted-key", &s(&home.path().join("other.key.pub"))]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("refusing to analyze {od}: it did not verify")), "{}", r.stderr);
    assert!(r.stderr.contains("signer_trusted"), "{}", r.stderr);
    assert_eq!((entries_in(&store), bundles_in(&store)), (1, 1));
    // Changed in the store.
    crate::util::make_writable(&orig.bundle);
    let mut bytes = std::fs::read(&orig.bundle).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&orig.bundle, bytes).unwrap();
    let r = analyze(home.path(), &od, &["--trace-id", TRACE]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert_eq!((entries_in(&store), bundles_in(&store)), (1, 1));
    // Not in the store at all.
    let missing = format!("sha256:{}", "ab".repeat(32));
    let r = analyze(home.path(), &missing, &["--trace-id", TRACE]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(entries_in(&store), 1);
    // No store: said, exit 2.
    let r = custody(home.path(), &["analyze", &od, "--trace-id", TRACE]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("analyze needs --store URL"), "{}", r.stderr);
}

/// Hostile links, each signed with the store's own key (a key holder rewriting the newest
/// entry): a `supplement_of` naming a bundle not in the ledger, naming another bundle than the
/// supplement signs, naming the entry's own bundle (not earlier), and a supplement recorded as
/// an ordinary bundle. Each is an error finding of `verify --all` and of `verify` by digest.
#[test]
fn hostile_supplement_links_are_failures() {
    let home = tempfile::tempdir().unwrap();
    let dir = s(&incident("duplicate-ticket"));
    let o1 = preserve(home.path(), &["--incident-dir", &dir]);
    let o2 = preserve(home.path(), &["--incident-dir", &dir, "--note", "another bundle"]);
    let od = o1.out["bundle"].as_str().unwrap().to_string();
    let r = analyze(home.path(), &od, &["--trace-id", TRACE, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sd = r.json()["bundle"].as_str().unwrap().to_string();
    let store = home.path().join("store");
    let (good, le) = entry(&store, 3);
    let key = custody::keys::SecretKey::load(&home.path().join("keys/default.key")).unwrap();
    let o2_id = custody::digest::BundleId(custody::digest::Sha256::parse(o2.out["bundle"].as_str().unwrap()).unwrap());
    let nowhere = custody::digest::BundleId(custody::digest::Sha256::of(b"not in this ledger"));
    let cases: [(&str, Option<custody::digest::BundleId>, &[&str]); 4] = [
        ("names a bundle not in the ledger", Some(nowhere), &["supplement_of_unknown", "supplement_mismatch"]),
        ("names another bundle than the supplement signs", Some(o2_id), &["supplement_mismatch"]),
        ("names its own bundle", Some(le.bundle), &["supplement_of_unknown", "supplement_mismatch"]),
        ("records no supplement", None, &["supplement_mismatch"]),
    ];
    let st = s(&store);
    for (what, of, kinds) in cases {
        let mut hostile = le.clone();
        hostile.supplement_of = of;
        let env = custody::bundle::dsse::sign(hostile.payload_type(), &hostile.to_payload(), &key);
        let path = store.join(entry_key(3));
        crate::util::make_writable(&path);
        std::fs::write(&path, custody::bundle::dsse::to_bytes(&env)).unwrap();
        for args in [vec!["verify", "--store", &st, "--all", "--json"], vec!["verify", "--store", &st, &sd, "--json"]] {
            let v = custody(home.path(), &args);
            assert_eq!(v.code, 1, "{what}: {args:?}\n{}", v.stdout);
            let j = v.json();
            let errors: Vec<&str> = j["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["level"] == "error")
                .map(|f| f["kind"].as_str().unwrap())
                .collect();
            for k in kinds {
                assert!(errors.contains(k), "{what}: {args:?}: {k} not in {errors:?}");
            }
            assert!(errors.iter().all(|e| e.starts_with("supplement_")), "{what}: only the link is wrong: {errors:?}");
        }
        // list compares the entry's link with the one the verified bundle signs.
        let l = custody(home.path(), &["list", "--store", &st, "--json"]);
        assert_eq!(l.code, 1, "{what}: list\n{}", l.stdout);
        let lj = l.json();
        assert_valid("list.v1.schema.json", &lj);
        assert_eq!(lj["entries"][2]["details"]["links"]["signed"], false, "{what}");
        assert_eq!(lj["entries"][2]["details"]["links"]["manifest_supplement_of"], od, "{what}");
        let lh = custody(home.path(), &["list", "--store", &st]);
        assert!(lh.stdout.contains("SUPPLEMENT LINK MISMATCH"), "{what}: {}", lh.stdout);
    }
    // Put back, the store verifies again.
    std::fs::write(store.join(entry_key(3)), good).unwrap();
    assert_eq!(custody(home.path(), &["verify", "--store", &st, "--all"]).code, 0);
}

/// `fixtures/compat/v2-store-pre-supplement/`: a store written by custody before supplements
/// (commit cf57e94). It keeps verifying; a supplement analysed from its bundle (by this custody,
/// another key, both pinned) verifies with it as one store.
#[test]
fn a_pre_supplement_store_keeps_verifying_and_takes_a_supplement() {
    let fx = crate::util::repo().join("fixtures/compat/v2-store-pre-supplement");
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("store");
    for sub in ["bundles", "ledger"] {
        std::fs::create_dir_all(store.join(sub)).unwrap();
        for e in std::fs::read_dir(fx.join("store").join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), store.join(sub).join(e.file_name())).unwrap();
        }
    }
    std::fs::copy(fx.join("store/store.json"), store.join("store.json")).unwrap();
    let old_pub = s(&fx.join("signer.pub"));
    let st = s(&store);
    let v = custody(home.path(), &["verify", "--store", &st, "--all", "--trusted-key", &old_pub]);
    assert_eq!(v.code, 0, "{}", v.stdout);
    let (_, le) = entry(&store, 1);
    let od = le.bundle.to_string();
    assert_eq!(custody(home.path(), &["keygen", "--out", &s(&home.path().join("new.key"))]).code, 0);
    let new_pub = s(&home.path().join("new.key.pub"));
    let r = analyze(
        home.path(),
        &od,
        &["--trace-id", TRACE, "--key", &s(&home.path().join("new.key")), "--trusted-key", &old_pub, "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = custody(
        home.path(),
        &["verify", "--store", &st, "--all", "--trusted-key", &old_pub, "--trusted-key", &new_pub],
    );
    assert_eq!(v.code, 0, "{}", v.stdout);
    let sh = custody(
        home.path(),
        &["show", "--store", &st, &od, "--trusted-key", &old_pub, "--trusted-key", &new_pub, "--json"],
    );
    assert_eq!(sh.json()["supplements"]["count"], 1);
}

/// The attribute `key` of an OTLP attribute list, as a string.
fn otlp_attr<'a>(attrs: &'a Value, key: &str) -> Option<&'a str> {
    attrs.as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

/// `export` (OTLP and eval case) and the HTML report of a supplement name the original as the
/// bundle holding the records (their path, sha256 and offset point into it), and the
/// supplement apart as the analysis' source; of the original, nothing names a supplement.
#[test]
fn exports_and_html_of_a_supplement_name_the_original_as_the_records_bundle() {
    let home = tempfile::tempdir().unwrap();
    let dir = s(&incident("duplicate-ticket"));
    let orig = preserve(home.path(), &["--incident-dir", &dir]);
    let od = orig.out["bundle"].as_str().unwrap().to_string();
    let r = analyze(home.path(), &od, &["--trace-id", TRACE, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sd = r.json()["bundle"].as_str().unwrap().to_string();
    let original_sealed = manifest(&orig.bundle).sealed_at;
    let st = store_of(home.path());
    let out = home.path().join("out");
    std::fs::create_dir(&out).unwrap();

    for (digest, records_in, analysis) in [(&sd, &od, Some(&sd)), (&od, &od, None)] {
        let tag = if analysis.is_some() { "sup" } else { "orig" };
        let otlp = out.join(format!("{tag}-otlp"));
        let case = out.join(format!("{tag}-case.jsonl"));
        let e =
            custody(home.path(), &["export", "--store", &st, digest, "--otlp", &s(&otlp), "--eval-case", &s(&case)]);
        assert_eq!(e.code, 0, "{}", e.stderr);

        let logs: Value = serde_json::from_slice(&std::fs::read(otlp.join("logs.json")).unwrap()).unwrap();
        let traces: Value = serde_json::from_slice(&std::fs::read(otlp.join("traces.json")).unwrap()).unwrap();
        let records = logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array().unwrap();
        let spans = traces["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap();
        // (The original, preserved with no seed, may have nothing to export but its resource.)
        if analysis.is_some() {
            assert!(!records.is_empty() && !spans.is_empty(), "{tag}: nothing exported");
        }
        let resources =
            [&logs["resourceLogs"][0]["resource"]["attributes"], &traces["resourceSpans"][0]["resource"]["attributes"]];
        for attrs in resources.into_iter().chain(records.iter().chain(spans).map(|x| &x["attributes"])) {
            assert_eq!(otlp_attr(attrs, "custody.bundle.digest"), Some(records_in.as_str()), "{tag}: {attrs}");
            assert_eq!(otlp_attr(attrs, "custody.analysis.bundle"), analysis.map(String::as_str), "{tag}: {attrs}");
        }

        let c: Value = serde_json::from_slice(&std::fs::read(&case).unwrap()).unwrap();
        assert_valid("eval-case.v1.schema.json", &c);
        assert_eq!(c["id"], *digest);
        let p = &c["provenance"];
        assert_eq!(p["bundle"], *records_in);
        let sealed: chrono::DateTime<chrono::Utc> = serde_json::from_value(p["sealed_at"].clone()).unwrap();
        assert_eq!(sealed, original_sealed, "{tag}: the records' bundle's sealing time");
        assert_eq!(p["analysis_bundle"].as_str(), analysis.map(String::as_str), "{tag}: {p}");
        assert_eq!(p.get("analysis_sealed_at").is_some(), analysis.is_some(), "{tag}: {p}");

        let html = out.join(format!("{tag}.html"));
        let t = custody(home.path(), &["timeline", "--store", &st, digest, "--html", &s(&html)]);
        assert_eq!(t.code, 0, "{}", t.stderr);
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains(&format!("<code id=\"bundle\">{records_in}</code>")), "{tag}: {page}");
        match analysis {
            Some(sd) => {
                assert!(
                    page.contains(&format!("Analysis from supplement <code id=\"analysis-bundle\">{sd}</code>")),
                    "{page}"
                );
                assert!(page.contains(&format!("in {od}.</p></footer>")), "{page}");
            }
            None => assert!(!page.contains("analysis-bundle"), "{page}"),
        }
        // The original's report names its latest supplement, as show and timeline do; the
        // supplement's has none of its own.
        match analysis {
            Some(_) => assert!(page.contains("<p id=\"supplements\">Supplements: none in the store's ledger.</p>"), "{page}"),
            None => assert!(
                page.contains(&format!(
                    "<p id=\"supplements\">Supplements: 1 in the store's ledger; the latest, <code id=\"latest-supplement\">{sd}</code> at position 2, sealed "
                )) && page.contains(&format!("seeds trace_id={TRACE}.</p>")),
                "{page}"
            ),
        }
    }
}
