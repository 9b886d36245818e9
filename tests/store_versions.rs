//! Versions and delete markers (issue "object storage under attack", items 1–3), against a real
//! `moto_server` started by the tests: a ledger replaced by new versions under COMPLIANCE, a
//! delete marker over the head, an append over a delete marker, `store repair` and hidden
//! originals, 8 concurrent preserves while an attacker deletes the head, an unversioned bucket,
//! and a hostile version listing (a loopback fake S3). Each test is named after the bug it pins.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::store_util::{incident, json, raw_http, run, text, Moto};

fn preserve<'a>(url: &'a str, dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["preserve", "--store", url, "--incident-dir", dir.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

/// One element of a version listing.
#[derive(Debug, Clone, PartialEq)]
struct V {
    key: String,
    id: String,
    marker: bool,
}

/// Every version and delete marker under `prefix` of a moto bucket (`?versions`).
fn versions(moto: &Moto, bucket: &str, prefix: &str) -> Vec<V> {
    let q = custody::store::address::encode_query(prefix);
    let (status, _, body) = raw_http(moto.addr, "GET", &format!("/{bucket}?versions&prefix={q}"), &[], b"").unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    let tag = |s: &str, t: &str| {
        s.split(&format!("<{t}>")).nth(1).and_then(|x| x.split(&format!("</{t}>")).next()).map(String::from)
    };
    let mut out = Vec::new();
    for (open, marker) in [("<Version>", false), ("<DeleteMarker>", true)] {
        for part in body.split(open).skip(1) {
            out.push(V { key: tag(part, "Key").unwrap(), id: tag(part, "VersionId").unwrap(), marker });
        }
    }
    out
}

/// Put `body` over `key` unconditionally: a new version, as an attacker with s3:PutObject can.
fn put_over(moto: &Moto, bucket: &str, key: &str, body: &[u8]) {
    let (s, _, resp) =
        raw_http(moto.addr, "PUT", &format!("/{bucket}/{key}"), &[("Content-Type", "application/octet-stream")], body)
            .unwrap();
    assert_eq!(s, 200, "put over {key}: {}", String::from_utf8_lossy(&resp));
}

/// The current bytes of `key`.
fn get(moto: &Moto, bucket: &str, key: &str) -> Vec<u8> {
    let (s, _, body) = raw_http(moto.addr, "GET", &format!("/{bucket}/{key}"), &[], b"").unwrap();
    assert_eq!(s, 200, "get {key}");
    body
}

/// `DeleteObject` without a version id: a delete marker over `key`.
fn delete_marker(moto: &Moto, bucket: &str, key: &str) {
    let (s, head, _) = raw_http(moto.addr, "DELETE", &format!("/{bucket}/{key}"), &[], b"").unwrap();
    assert_eq!(s, 204, "delete {key}");
    assert!(head.to_ascii_lowercase().contains("x-amz-delete-marker: true"), "{head}");
}

/// The JSON report of a `verify`, checked against its schema.
fn report(o: &std::process::Output) -> serde_json::Value {
    let r = json(o);
    crate::schemas::assert_valid("verify-report.v1.schema.json", &r);
    r
}

fn findings<'a>(r: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    r["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

fn kinds(r: &serde_json::Value) -> std::collections::BTreeSet<String> {
    r["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_owned()).collect()
}

fn check<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} check: {r}"))
}

fn entry(n: u64) -> String {
    format!("ledger/{n:020}.json")
}

/// Three preserves into `s3://bucket/prefix` (COMPLIANCE, 1 day); their bundle digests.
fn three(moto_env: &[(&'static str, String)], home: &Path, url: &str, tag: &str) -> Vec<String> {
    (1..=3)
        .map(|i| {
            let dir = incident(home, &format!("{tag}{i}"));
            let o =
                run(home, moto_env, &preserve(url, &dir, &["--retention", "1", "--lock-mode", "compliance", "--json"]));
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            assert_eq!(json(&o)["ledger"]["position"], i, "{}", text(&o));
            json(&o)["bundle"].as_str().unwrap().trim_start_matches("sha256:").to_owned()
        })
        .collect()
}

/// Store `a` of bucket `repl` replaced by store `b`'s ledger, bundles and store.json (same
/// signing key), as new versions over a's keys: what the issue reproduced under COMPLIANCE.
fn replaced_ledger(moto: &Moto, home: &Path, env: &[(&'static str, String)]) -> (Vec<String>, Vec<String>) {
    let (a, b) = two_stores(moto, home, env);
    replace_a_with_b(moto, &b);
    (a, b)
}

/// Stores `a` and `b` of bucket `repl`, three preserves each.
fn two_stores(moto: &Moto, home: &Path, env: &[(&'static str, String)]) -> (Vec<String>, Vec<String>) {
    moto.create_bucket("repl", true);
    (three(env, home, "s3://repl/a", "a"), three(env, home, "s3://repl/b", "b"))
}

/// The attack: b's ledger, bundles and store.json put over a's keys.
fn replace_a_with_b(moto: &Moto, b: &[String]) {
    for n in 1..=3 {
        put_over(moto, "repl", &format!("a/{}", entry(n)), &get(moto, "repl", &format!("b/{}", entry(n))));
    }
    for h in b {
        put_over(
            moto,
            "repl",
            &format!("a/bundles/{h}.tar.zst"),
            &get(moto, "repl", &format!("b/bundles/{h}.tar.zst")),
        );
    }
    put_over(moto, "repl", "a/store.json", &get(moto, "repl", "b/store.json"));
}

#[test]
fn a_ledger_replaced_by_new_versions_is_a_finding_under_compliance() {
    // `verify --all` read only the latest versions and said INTACT ("6 objects locked") while
    // the real entries sat underneath as locked older versions.
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let (a, b) = two_stores(&moto, home.path(), &env);
    let cp_a = home.path().join("a.checkpoint");
    let o = run(home.path(), &env, &["checkpoint", "--store", "s3://repl/a", "--out", cp_a.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    replace_a_with_b(&moto, &b);
    // What a reader of current versions sees is b's ledger, and it is self-consistent.
    assert_eq!(get(&moto, "repl", "a/store.json"), get(&moto, "repl", "b/store.json"));
    let o = run(home.path(), &env, &["verify", "--store", "s3://repl/a", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "a replaced ledger must not verify: {}", text(&o));
    let r = report(&o);
    assert_eq!(r["verdict"], "failed");
    let later = findings(&r, "later_version");
    let keys: Vec<&str> = later.iter().map(|f| f["location"].as_str().unwrap()).collect();
    for k in [entry(1), entry(2), entry(3), "store.json".into()] {
        assert!(keys.contains(&k.as_str()), "no later_version finding for {k}: {r}");
    }
    for f in &later {
        assert_eq!(f["level"], "error", "{f}");
        let m = f["message"].as_str().unwrap();
        assert!(m.contains("1 later version(s)") && m.contains(" at 20") && m.contains("first version"), "{m}");
    }
    // Each finding names the versions: the attacker's, which moto lists first.
    let listed = versions(&moto, "repl", "a/ledger/");
    let newest = listed.iter().find(|v| v.key == format!("a/{}", entry(1)) && !v.marker).unwrap();
    let f1 = later.iter().find(|f| f["location"] == entry(1).as_str()).unwrap();
    assert!(f1["message"].as_str().unwrap().contains(&newest.id), "{f1}");
    assert_eq!(check(&r, "versions")["status"], "fail", "{r}");
    // The audit verified a's own bundles, at the first versions of a's entries.
    let lines = r["bundles"].as_array().unwrap();
    let audited: Vec<String> =
        lines.iter().map(|l| l["bundle"].as_str().unwrap().trim_start_matches("sha256:").to_owned()).collect();
    assert_eq!(audited, a, "{r}");
    assert!(lines.iter().all(|l| l["status"] == "intact"), "{r}");
    // b's bundles copied in are not evidence of this store: unreferenced, and they prove a
    // ledger this store never had.
    for h in &b[1..] {
        assert!(
            findings(&r, "unreferenced_bundle").iter().any(|f| f["location"].as_str().unwrap().contains(h.as_str())),
            "{r}"
        );
    }
    // Retention is read on the first versions (the ones that hold the evidence).
    let ret = r["retention"].as_array().unwrap();
    assert_eq!(ret.len(), 6, "{r}");
    assert!(ret.iter().all(|l| l["mode"] == "COMPLIANCE" && l["version_id"].is_string()), "{r}");
    // By digest, too: a's bundle 2 is found intact at position 2, and the replacement is named.
    let o = run(home.path(), &env, &["verify", "--store", "s3://repl/a", &a[1], "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["ledger"]["position"], 2, "{r}");
    assert_eq!(kinds(&r), ["later_version".to_string()].into(), "only the replacement is wrong: {r}");
    // A checkpoint taken before the attack still matches (the first versions are the ledger it
    // anchored); one of the other store is reported as such: checkpoints name their store's id.
    let all_cp = |cp: &Path| {
        run(
            home.path(),
            &env,
            &["verify", "--store", "s3://repl/a", "--all", "--json", "--checkpoint", cp.to_str().unwrap()],
        )
    };
    let r = report(&all_cp(&cp_a));
    assert_eq!(check(&r, "anchor")["status"], "pass", "{r}");
    assert!(findings(&r, "rollback").is_empty(), "{r}");
    let cp_b = home.path().join("b.checkpoint");
    let o = run(home.path(), &env, &["checkpoint", "--store", "s3://repl/b", "--out", cp_b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&all_cp(&cp_b));
    assert!(
        findings(&r, "checkpoint_other_store").iter().any(|f| f["message"].as_str().unwrap().contains("another store")),
        "{r}"
    );
    assert!(findings(&r, "rollback").is_empty(), "not a rollback or fork of this store: {r}");
    // The human report says it, escaped and per key.
    let o = run(home.path(), &env, &["verify", "--store", "s3://repl/a", "--all"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("[later_version] at ledger/00000000000000000001.json") && t.contains("RESULT: FAILED"), "{t}");
    // Entries of another store put over this one's keys without store.json: a's entries are
    // still read, and b's never get a chance to be compared (covered above); another prefix's
    // store.json alone does not make a's entries another store's.
    let o = run(home.path(), &env, &["list", "--store", "s3://repl/a", "--json"]);
    assert_eq!(o.status.code(), Some(0), "list reads the first versions, which check out: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&a[2]), "{}", text(&o));
}

#[test]
fn repair_does_not_adopt_originals_hidden_under_new_versions() {
    // `store repair` adopted the hidden originals into the replaced ledger.
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let (a, _b) = replaced_ledger(&moto, home.path(), &env);
    let before = versions(&moto, "repl", "a/");
    let o = run(home.path(), &env, &["store", "repair", "s3://repl/a", "--json"]);
    assert_eq!(o.status.code(), Some(1), "refusals exit 1: {}", text(&o));
    let j = json(&o);
    let items = j["unreferenced"].as_array().unwrap();
    assert!(!items.is_empty() && items.iter().all(|i| i["adopted"] == false), "{j}");
    let all = serde_json::to_string(&j).unwrap();
    assert!(all.contains("later versions or delete markers") && all.contains("nothing is adopted"), "{j}");
    assert!(!all.contains("\"adopted\":true"), "something was adopted: {j}");
    for h in &a {
        assert!(
            !all.contains(h.as_str()),
            "a's originals are recorded (at their first versions), never candidates: {j}"
        );
    }
    assert_eq!(versions(&moto, "repl", "a/"), before, "repair wrote something");
    // A preserve's own adoption refuses the same way, and the preserve itself appends to the
    // first-version chain (position 4, linked to a's entry 3).
    let o = run(
        home.path(),
        &env,
        &preserve("s3://repl/a", &incident(home.path(), "a4"), &["--retention", "1", "--json", "--adopt-min-age", "0"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 4, "{}", text(&o));
    assert!(text(&o).contains("nothing is adopted"), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://repl/a", "--all", "--json"]);
    let r = report(&o);
    assert!(!kinds(&r).contains("ledger_link_broken") && !kinds(&r).contains("store_id_mismatch"), "{r}");
    assert_eq!(r["bundles"].as_array().unwrap().len(), 4, "{r}");
}

#[test]
fn a_delete_marker_on_the_head_is_a_finding() {
    // A DeleteObject without a version id on the head entry and its bundle: verify --all said
    // INTACT.
    let moto = Moto::start();
    moto.create_bucket("dmark", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://dmark/ev";
    let b = three(&env, home.path(), url, "d");
    delete_marker(&moto, "dmark", &format!("ev/{}", entry(3)));
    delete_marker(&moto, "dmark", &format!("ev/bundles/{}.tar.zst", b[2]));
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "the evidence is hidden: {}", text(&o));
    let r = report(&o);
    let dm = findings(&r, "delete_marker");
    assert_eq!(dm.len(), 2, "{r}");
    assert!(dm.iter().all(|f| f["level"] == "error"), "{r}");
    let locs: Vec<&str> = dm.iter().map(|f| f["location"].as_str().unwrap()).collect();
    assert!(locs.contains(&entry(3).as_str()) && locs.contains(&format!("bundles/{}.tar.zst", b[2]).as_str()), "{r}");
    assert!(dm.iter().all(|f| f["message"].as_str().unwrap().contains("the newest hides the key")), "{r}");
    assert_eq!(kinds(&r), ["delete_marker".to_string()].into(), "nothing else is wrong: {r}");
    // The hidden head and its bundle are still verified, at their first versions.
    let lines = r["bundles"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{r}");
    assert!(lines.iter().all(|l| l["status"] == "intact"), "{r}");
    // --quick, by digest and the human report say the same.
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--quick", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(findings(&report(&o), "delete_marker").len(), 2);
    let o = run(home.path(), &env, &["verify", "--store", url, &b[2], "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["ledger"]["position"], 3, "the hidden bundle is found at its position: {r}");
    assert_eq!(findings(&r, "delete_marker").len(), 2, "{r}");
    assert!(findings(&r, "bundle_missing").is_empty(), "{r}");
    // show and extract read the first version too (a reader of current versions finds nothing).
    let out = home.path().join("out");
    let o = run(home.path(), &env, &["extract", "--store", url, &b[2], "--to", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "extract refuses a store report that failed: {}", text(&o));
    let o = run(home.path(), &env, &["show", "--store", url, &b[2]]);
    assert!(text(&o).contains("FAILED (versions)"), "{}", text(&o));
}

#[test]
fn a_bundle_whose_versions_were_deleted_under_a_marker_is_missing_not_skipped() {
    // Unlocked objects (no retention): an attacker with s3:DeleteObjectVersion hides a bundle
    // and deletes its version. Nothing is left to verify: missing, and the marker is named.
    let moto = Moto::start();
    moto.create_bucket("gone", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://gone/ev";
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "g"), &["--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let b = json(&o)["bundle"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let key = format!("ev/bundles/{b}.tar.zst");
    let v = versions(&moto, "gone", &key).into_iter().find(|v| !v.marker).unwrap();
    delete_marker(&moto, "gone", &key);
    let (s, _, _) = raw_http(moto.addr, "DELETE", &format!("/gone/{key}?versionId={}", v.id), &[], b"").unwrap();
    assert_eq!(s, 204);
    for quick in [false, true] {
        let mut args = vec!["verify", "--store", url, "--all", "--json"];
        if quick {
            args.push("--quick");
        }
        let o = run(home.path(), &env, &args);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let r = report(&o);
        assert_eq!(
            kinds(&r),
            ["bundle_missing".to_string(), "delete_marker".into(), "retention_missing".into()].into(),
            "{r}"
        );
        assert!(findings(&r, "delete_marker")[0]["message"].as_str().unwrap().contains("no version at all"), "{r}");
    }
    let o = run(home.path(), &env, &["verify", "--store", url, &b, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert!(findings(&r, "bundle_missing")[0]["message"].as_str().unwrap().contains("only delete markers"), "{r}");
    assert_eq!(findings(&r, "delete_marker").len(), 1, "{r}");
}

#[test]
fn append_over_a_delete_marker_takes_the_next_position() {
    // The next preserve's create-only write succeeded over the delete marker: position 3 had
    // two different entries.
    let moto = Moto::start();
    moto.create_bucket("fork", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://fork/ev";
    let b = three(&env, home.path(), url, "f");
    delete_marker(&moto, "fork", &format!("ev/{}", entry(3)));
    delete_marker(&moto, "fork", &format!("ev/bundles/{}.tar.zst", b[2]));
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "f4"), &["--retention", "1", "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 4, "a hidden head still holds its position: {}", text(&o));
    let at3: Vec<V> = versions(&moto, "fork", &format!("ev/{}", entry(3)));
    assert_eq!(at3.iter().filter(|v| !v.marker).count(), 1, "a second entry was written at position 3: {at3:?}");
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert_eq!(kinds(&r), ["delete_marker".to_string()].into(), "entry 4 links to the hidden entry 3: {r}");
    assert_eq!(r["bundles"].as_array().unwrap().len(), 4, "{r}");

    // A key holding only a delete marker at the NEXT position (AWS makes one for a
    // DeleteObject of a key that never existed; moto does not, so: put an unlocked version,
    // hide it, delete the version) takes it: it is chained through as an empty object, never a
    // block, and reported.
    let k5 = format!("ev/{}", entry(5));
    put_over(&moto, "fork", &k5, b"junk");
    delete_marker(&moto, "fork", &k5);
    let junk = versions(&moto, "fork", &k5).into_iter().find(|v| !v.marker).unwrap();
    let (s, _, _) = raw_http(moto.addr, "DELETE", &format!("/fork/{k5}?versionId={}", junk.id), &[], b"").unwrap();
    assert_eq!(s, 204, "an unlocked version can be deleted");
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "f6"), &["--retention", "1", "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 6, "{}", text(&o));
    assert!(versions(&moto, "fork", &format!("ev/{}", entry(5))).iter().all(|v| v.marker), "written over the marker");
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert!(findings(&r, "delete_marker").iter().any(|f| f["location"] == entry(5).as_str()), "{r}");
    let invalid = findings(&r, "ledger_entry_invalid");
    assert!(
        invalid
            .iter()
            .any(|f| f["location"] == entry(5).as_str()
                && f["message"].as_str().unwrap().contains("only delete markers")),
        "{r}"
    );
    assert!(findings(&r, "ledger_link_broken").is_empty() && findings(&r, "ledger_gap").is_empty(), "{r}");
}

#[test]
fn concurrent_preserves_while_the_head_is_deleted_never_share_a_position() {
    // With an attacker deleting the head during 8 concurrent preserves, three preserves each
    // reported "position 3", the visible ledger ended empty, and the audit said INTACT.
    let moto = Moto::start();
    moto.create_bucket("race", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://race/shared";
    let o = run(home.path(), &[], &["keygen", "--out", home.path().join("keys/default.key").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for i in 1..=2 {
        let o = run(home.path(), &env, &preserve(url, &incident(home.path(), &format!("r{i}")), &["--retention", "1"]));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    // The attacker: delete (without a version id) whatever entry is the newest visible one.
    let stop = Arc::new(AtomicBool::new(false));
    let deletes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop2, deletes2, addr) = (stop.clone(), deletes.clone(), moto.addr);
    let attacker = std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            let Ok((200, _, body)) = raw_http(addr, "GET", "/race?list-type=2&prefix=shared/ledger/", &[], b"") else {
                continue;
            };
            let body = String::from_utf8_lossy(&body).into_owned();
            let newest = body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).max().map(String::from);
            if let Some(k) = newest {
                if let Ok((204, _, _)) = raw_http(addr, "DELETE", &format!("/race/{k}"), &[], b"") {
                    deletes2.fetch_add(1, Ordering::SeqCst);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let mut children = Vec::new();
    for i in 0..8 {
        let dir = incident(home.path(), &format!("w{i}"));
        let mut c = crate::store_util::custody();
        c.env("CUSTODY_HOME", home.path())
            .args(preserve(url, &dir, &["--retention", "1", "--json"]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            c.env(k, v);
        }
        children.push(c.spawn().unwrap());
    }
    let mut positions = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        positions.push(json(&o)["ledger"]["position"].as_u64().unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    attacker.join().unwrap();
    assert!(deletes.load(Ordering::SeqCst) > 0, "the attacker never deleted anything");
    positions.sort();
    assert_eq!(positions, (3..=10).collect::<Vec<_>>(), "two preserves reported one position");
    // No position holds two entries written as its first version by different preserves: each
    // entry key's first version is the one its preserve reported.
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "the audit must not say INTACT: {}", text(&o));
    let r = report(&o);
    assert!(!findings(&r, "delete_marker").is_empty(), "{r}");
    let unexpected: Vec<String> = kinds(&r)
        .into_iter()
        .filter(|k| !["delete_marker", "later_version", "ledger_link_mismatch"].contains(&k.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "the chain itself is intact (no fork, gap or broken link): {unexpected:?} {r}");
    let lines = r["bundles"].as_array().unwrap();
    assert_eq!(lines.len(), 10, "{r}");
    assert!(lines.iter().all(|l| l["status"] == "intact"), "{r}");
    // A losing writer's own version over a marker (if the race produced one) is reported as a
    // later version; custody never wrote a second first version anywhere.
    for n in 1..=10u64 {
        let v = versions(&moto, "race", &format!("shared/{}", entry(n)));
        assert!(v.iter().any(|x| !x.marker), "position {n} has no entry: {v:?}");
    }
}

#[test]
fn an_unversioned_bucket_says_what_is_not_defended() {
    let moto = Moto::start();
    moto.create_bucket("plainv", false);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://plainv/ev";
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "u"), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "a warning, not a failure: {}", text(&o));
    let r = report(&o);
    let w = findings(&r, "versioning_off");
    assert_eq!(w.len(), 1, "{r}");
    assert_eq!(w[0]["level"], "warning");
    assert_eq!(w[0]["location"], "bucket");
    assert!(w[0]["message"].as_str().unwrap().contains("without a trace"), "{r}");
    assert_eq!(check(&r, "versions")["status"], "warn", "{r}");
    let o = run(home.path(), &env, &["store", "init", url, "--json"]);
    let j = json(&o);
    let v = j["checks"].as_array().unwrap().iter().find(|c| c["name"] == "versioning").unwrap();
    assert_eq!(v["status"], "broken", "{j}");
    assert!(v["detail"].as_str().unwrap().contains("leaving no older version to audit"), "{j}");
    // A versioned bucket: kept, and store init says what custody does with the history.
    moto.create_bucket("lockedv", true);
    let o = run(home.path(), &env, &["store", "init", "s3://lockedv/ev", "--retention", "1", "--json"]);
    let j = json(&o);
    let v = j["checks"].as_array().unwrap().iter().find(|c| c["name"] == "versioning").unwrap();
    assert_eq!(v["status"], "kept", "{j}");
    assert!(v["detail"].as_str().unwrap().contains("first version"), "{j}");
    let o = run(home.path(), &env, &preserve("s3://lockedv/ev", &incident(home.path(), "l"), &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://lockedv/ev", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&o);
    assert_eq!(check(&r, "versions")["status"], "pass", "{r}");
    assert!(check(&r, "versions")["detail"].as_str().unwrap().starts_with("versioning Enabled: 3 object(s)"), "{r}");
}

/// A loopback fake S3 that answers a versioned bucket's listing of `p/ledger/` with `pages`
/// pages of 1000 versions of one entry key each (or, with `endless`, one page that never
/// ends), the entry's first version with `entry`, and nothing else. With `versioning_api`
/// false it answers `GetBucketVersioning` 501 Not Implemented and lists nothing.
fn fake_s3(pages: usize, endless: bool, entry: &'static [u8], versioning_api: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut c) = client else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let method = head.split_whitespace().next().unwrap_or("").to_owned();
                let answer = |c: &mut std::net::TcpStream, status: &str, extra: &str, body: &[u8]| {
                    let _ = c.write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    if method != "HEAD" {
                        let _ = c.write_all(body);
                    }
                };
                const KEY: &str = "p/ledger/00000000000000000001.json";
                if target.contains("?versioning") && !versioning_api {
                    answer(&mut c, "501 Not Implemented", "", b"<Error><Code>NotImplemented</Code></Error>");
                } else if target.contains("?list-type=2") {
                    answer(
                        &mut c,
                        "200 OK",
                        "",
                        b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
                    );
                } else if target.contains("?versioning") {
                    answer(
                        &mut c,
                        "200 OK",
                        "",
                        b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
                    );
                } else if target.contains("?versions") && target.contains("ledger") {
                    let page = target
                        .split("version-id-marker=m")
                        .nth(1)
                        .and_then(|s| s.split('&').next())
                        .and_then(|s| s.parse::<usize>().ok())
                        .map_or(0, |p| p + 1);
                    let element = |i: usize| {
                        format!("<Version><Key>{KEY}</Key><VersionId>v{i}</VersionId><IsLatest>{}</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>{}</Size></Version>", i == pages * 1000 - 1, entry.len())
                    };
                    if endless {
                        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\nConnection: close\r\n\r\n<ListVersionsResult><IsTruncated>false</IsTruncated>");
                        let chunk: String = (0..1000).map(element).collect();
                        while c.write_all(chunk.as_bytes()).is_ok() {}
                        return;
                    }
                    // Newest first: page 0 holds the newest versions.
                    let mut body = String::from("<ListVersionsResult>");
                    let last = page + 1 == pages;
                    body.push_str(&format!("<IsTruncated>{}</IsTruncated>", !last));
                    if !last {
                        body.push_str(&format!(
                            "<NextKeyMarker>{KEY}</NextKeyMarker><NextVersionIdMarker>m{page}</NextVersionIdMarker>"
                        ));
                    }
                    for i in (0..1000).rev() {
                        body.push_str(&element((pages - 1 - page) * 1000 + i));
                    }
                    body.push_str("</ListVersionsResult>");
                    answer(&mut c, "200 OK", "", body.as_bytes());
                } else if target.contains("?versions") {
                    answer(
                        &mut c,
                        "200 OK",
                        "",
                        b"<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>",
                    );
                } else if target.contains("ledger/00000000000000000001.json") && target.contains("versionId=v0") {
                    answer(&mut c, "200 OK", "ETag: \"e\"\r\nLast-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n", entry);
                } else {
                    answer(&mut c, "404 Not Found", "", b"<Error><Code>NoSuchKey</Code></Error>");
                }
            });
        }
    });
    format!("http://{addr}")
}

fn verify_fake(endpoint: &str) -> (std::process::Output, u64) {
    let home = tempfile::tempdir().unwrap();
    let mut env = Moto::env(endpoint);
    env.push(("CUSTODY_REPORT_PEAK_RSS", "1".into()));
    let o = run(home.path(), &env, &["verify", "--store", "s3://fake/p", "--all", "--json"]);
    let peak = String::from_utf8_lossy(&o.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("custody: peak rss ").map(String::from))
        .and_then(|s| s.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(u64::MAX);
    (o, peak)
}

#[test]
fn a_hostile_version_listing_is_read_with_bounded_memory() {
    // A bucket can hold any number of versions of a key, and a server can send any answer:
    // neither may take the auditor's memory.
    // 300 000 versions of one entry key over 300 pages: one first version, a count, a sample.
    let (o, peak) = verify_fake(&fake_s3(300, false, b"not an entry", true));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    let later = findings(&r, "later_version");
    assert_eq!(later.len(), 1, "{r}");
    let m = later[0]["message"].as_str().unwrap();
    assert!(
        m.starts_with("299999 later version(s)") && m.contains("v299999 at") && m.contains("and 299991 more"),
        "{m}"
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB for 300 000 versions");
    eprintln!("300 000 versions of one key: peak RSS {peak} KiB");
    // One page that never ends: refused at the page bound, not read to the end.
    let (o, peak) = verify_fake(&fake_s3(1, true, b"x", true));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("larger than 16777216 bytes"), "{}", text(&o));
    assert!(peak < 96 * 1024, "peak RSS {peak} KiB for an endless page");
    eprintln!("an endless listing page: refused at 16 MiB, peak RSS {peak} KiB");
    // A server without bucket versioning (501): read as its current objects, and said.
    let (o, _) = verify_fake(&fake_s3(1, false, b"x", false));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&o);
    let w = findings(&r, "versioning_off");
    assert!(w.len() == 1 && w[0]["message"].as_str().unwrap().contains("501"), "{r}");
}
