//! The S3 tier, against a real `moto_server`: Object Lock set and reported, a locked version
//! cannot be deleted, `store init` says which promise fails, concurrent writer processes,
//! injected faults through a loopback proxy, permanent failures, kill -9 during preserve,
//! multipart bundles, and checkpoints that catch a rolled-back or rewritten ledger.

use std::io::BufReader;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use custody::store::config::{LockMode, StoreOptions};
use custody::verify::{self, Trust};

use crate::store_util::{incident, json, random_file, raw_http, run, text, Action, FaultProxy, Moto};

fn env_for(endpoint: &str) -> Vec<(&'static str, String)> {
    Moto::env(endpoint)
}

fn preserve_args<'a>(url: &'a str, dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["preserve", "--store", url, "--incident-dir", dir.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

fn ledger_keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let (status, _, body) =
        raw_http(moto.addr, "GET", &format!("/{bucket}?list-type=2&prefix={prefix}/ledger/"), &[], b"").unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(String::from).collect()
}

fn bundle_keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let (_, _, body) =
        raw_http(moto.addr, "GET", &format!("/{bucket}?list-type=2&prefix={prefix}/bundles/"), &[], b"").unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(String::from).collect()
}

#[test]
fn s3_object_lock_is_set_reported_and_a_locked_version_cannot_be_deleted() {
    let moto = Moto::start();
    moto.create_bucket("locked", true);
    moto.create_bucket("unlocked", false);
    let home = tempfile::tempdir().unwrap();
    let env = env_for(&moto.endpoint);

    // store init: a plain bucket breaks the promises, and says which.
    let o = run(home.path(), &env, &["store", "init", "s3://unlocked/ev", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = json(&o);
    let status = |name: &str| {
        j["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status("object_lock"), "broken");
    assert_eq!(status("versioning"), "broken");
    assert_eq!(status("default_retention"), "broken");
    assert_eq!(status("conditional_writes"), "kept");
    // A locked bucket with --retention keeps them all.
    let o = run(home.path(), &env, &["store", "init", "s3://locked/ev", "--retention", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("a write comes back locked: COMPLIANCE"), "{}", text(&o));

    // Preserve with a compliance lock; verify reports the lock of bundle and entry.
    let dir = incident(home.path(), "lock");
    let o = run(
        home.path(),
        &env,
        &preserve_args("s3://locked/ev", &dir, &["--retention", "2", "--lock-mode", "compliance", "--json"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bundle = json(&o)["bundle"].as_str().unwrap().to_owned();
    let o = run(home.path(), &env, &["verify", "--store", "s3://locked/ev", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    let ret = r["retention"].as_array().expect("retention lines");
    assert_eq!(ret.len(), 2, "{r}");
    let min_until = chrono::Utc::now() + chrono::Duration::days(1);
    for line in ret {
        assert_eq!(line["mode"], "COMPLIANCE", "{line}");
        let until = chrono::DateTime::parse_from_rfc3339(line["retain_until"].as_str().unwrap()).unwrap();
        assert!(until > min_until, "retain-until {until} is not ~2 days ahead");
    }
    let check = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "retention").unwrap();
    assert_eq!(check["status"], "pass", "{check}");
    // Single-bundle verify reports it too.
    let o = run(home.path(), &env, &["verify", "--store", "s3://locked/ev", &bundle]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("COMPLIANCE until"), "{}", text(&o));

    // Governance, from a store config file, is reported as such.
    let dir2 = incident(home.path(), "gov");
    let cfg = home.path().join("store.json");
    std::fs::write(&cfg, br#"{"retention_days": 1, "lock_mode": "governance", "max_retries": 3}"#).unwrap();
    let mut env_cfg = env.clone();
    env_cfg.push(("CUSTODY_STORE_CONFIG", cfg.display().to_string()));
    let o = run(home.path(), &env_cfg, &preserve_args("s3://locked/gov", &dir2, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://locked/gov", "--all", "--json"]);
    assert!(json(&o)["retention"].as_array().unwrap().iter().all(|l| l["mode"] == "GOVERNANCE"), "{}", text(&o));

    // Without --retention on a bucket without a default: written unlocked, and preserve says
    // so (it used to claim it relied on a default retention that did not exist); verify warns.
    let dir3 = incident(home.path(), "nolock");
    let o = run(home.path(), &env, &preserve_args("s3://locked/nolock", &dir3, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("objects written now are NOT locked"), "{}", text(&o));
    assert!(!text(&o).contains("relying on the bucket's default retention"), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://locked/nolock", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "unlocked objects are a warning, not a failure: {}", text(&o));
    let r = json(&o);
    assert!(r["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "retention_missing"), "{r}");

    // Delete the locked bundle's version: refused.
    let hex = bundle.trim_start_matches("sha256:");
    let key = format!("ev/bundles/{hex}.tar.zst");
    let (_, _, body) = raw_http(moto.addr, "GET", &format!("/locked?versions&prefix={key}"), &[], b"").unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    let version = body.split("<VersionId>").nth(1).and_then(|s| s.split("</VersionId>").next()).unwrap().to_owned();
    let (status, _, body) =
        raw_http(moto.addr, "DELETE", &format!("/locked/{key}?versionId={version}"), &[], b"").unwrap();
    assert_eq!(status, 403, "deleting a locked version must be refused: {}", String::from_utf8_lossy(&body));
    // Control: the same request on an unlocked version (the `nolock` store) succeeds, so the
    // refusal above is the lock, not the request.
    let (_, _, listing) = raw_http(moto.addr, "GET", "/locked?versions&prefix=nolock/bundles/", &[], b"").unwrap();
    let listing = String::from_utf8_lossy(&listing).into_owned();
    let ukey = listing.split("<Key>").nth(1).and_then(|s| s.split("</Key>").next()).unwrap().to_owned();
    let uver = listing.split("<VersionId>").nth(1).and_then(|s| s.split("</VersionId>").next()).unwrap().to_owned();
    let (status, _, _) = raw_http(moto.addr, "DELETE", &format!("/locked/{ukey}?versionId={uver}"), &[], b"").unwrap();
    assert_eq!(status, 204, "an unlocked version can be deleted by the same request");
    let o = run(home.path(), &env, &["verify", "--store", "s3://locked/ev", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn s3_eight_concurrent_preserve_processes_make_one_unbroken_ledger() {
    let moto = Moto::start();
    moto.create_bucket("team", true);
    let home = tempfile::tempdir().unwrap();
    let env = env_for(&moto.endpoint);
    // Create the key first so the 8 writers share it.
    let o = run(home.path(), &[], &["keygen", "--out", home.path().join("keys/default.key").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let mut children = Vec::new();
    for i in 0..8 {
        let dir = incident(home.path(), &format!("w{i}"));
        let mut c = crate::store_util::custody();
        c.env("CUSTODY_HOME", home.path())
            .args(preserve_args("s3://team/shared", &dir, &["--retention", "1", "--json"]))
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
    positions.sort();
    assert_eq!(positions, (1..=8).collect::<Vec<_>>());
    assert_eq!(ledger_keys(&moto, "team", "shared").len(), 8);
    let o = run(home.path(), &env, &["verify", "--store", "s3://team/shared", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert_eq!(r["bundles"].as_array().unwrap().len(), 8);
    // Writers that sealed while the ledger was empty say so in their manifests (a warning);
    // nothing else may be reported.
    for f in r["findings"].as_array().unwrap() {
        assert!(f["level"] == "warning" && f["kind"] == "ledger_link_mismatch", "{f}");
    }
}

#[test]
fn s3_transient_faults_are_retried_and_a_lost_answer_is_not_a_conflict() {
    let moto = Moto::start();
    moto.create_bucket("flaky", true);
    let home = tempfile::tempdir().unwrap();
    // Drop the first request, answer 503 to the next two, and for the first ledger PUT let
    // the server write it but tell the client 503: the retry then meets 412 and must
    // recognise its own entry.
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lost2 = lost.clone();
    let proxy = FaultProxy::start(moto.addr, move |req, n| {
        if req.method == "PUT"
            && req.target.contains("/ledger/")
            && !lost2.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Action::ForwardThen503;
        }
        match n {
            0 => Action::Drop,
            1 | 2 => Action::Fail503,
            _ => Action::Forward,
        }
    });
    let env = env_for(&proxy.endpoint);
    let dir = incident(home.path(), "flaky");
    let o = run(home.path(), &env, &preserve_args("s3://flaky/ev", &dir, &["--retention", "1", "--json"]));
    assert_eq!(o.status.code(), Some(0), "preserve must succeed through retries: {}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 1);
    assert!(lost.load(std::sync::atomic::Ordering::SeqCst), "the lost-answer fault was not exercised");
    assert!(proxy.faults.load(std::sync::atomic::Ordering::SeqCst) >= 4);
    // Exactly one entry, and the ledger verifies (directly against the server).
    assert_eq!(ledger_keys(&moto, "flaky", "ev").len(), 1);
    let o = run(home.path(), &env_for(&moto.endpoint), &["verify", "--store", "s3://flaky/ev", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(json(&o)["findings"].as_array().unwrap().is_empty(), "{}", text(&o));
}

#[test]
fn s3_permanent_failure_exits_2_says_what_was_written_and_leaves_no_ledger_entry() {
    let moto = Moto::start();
    moto.create_bucket("down", true);
    let home = tempfile::tempdir().unwrap();

    // Everything fails: nothing written.
    let proxy = FaultProxy::start(moto.addr, |_, _| Action::Fail503);
    let dir = incident(home.path(), "down");
    let o = run(home.path(), &env_for(&proxy.endpoint), &preserve_args("s3://down/ev", &dir, &["--max-retries", "2"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("503"), "the error names the server's answer: {}", text(&o));
    assert!(ledger_keys(&moto, "down", "ev").is_empty());
    assert!(bundle_keys(&moto, "down", "ev").is_empty());

    // Ledger writes fail: the bundle is stored, the error says so, no ledger entry exists.
    let proxy = FaultProxy::start(moto.addr, |req, _| {
        if req.method == "PUT" && req.target.contains("/ledger/") {
            Action::Fail503
        } else {
            Action::Forward
        }
    });
    let o = run(home.path(), &env_for(&proxy.endpoint), &preserve_args("s3://down/ev", &dir, &["--max-retries", "2"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("IS stored") && t.contains("ledger entry was NOT written") && t.contains("store repair"), "{t}");
    assert!(ledger_keys(&moto, "down", "ev").is_empty(), "a dangling ledger entry was written");
    assert_eq!(bundle_keys(&moto, "down", "ev").len(), 1);

    // verify --all: a warning only; repair adopts; then clean.
    let env = env_for(&moto.endpoint);
    let o = run(home.path(), &env, &["verify", "--store", "s3://down/ev", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(json(&o)["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "unreferenced_bundle"));
    let o = run(home.path(), &env, &["store", "repair", "s3://down/ev"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("adopted"), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://down/ev", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert!(!r["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "unreferenced_bundle"), "{r}");
    assert_eq!(r["bundles"].as_array().unwrap().len(), 1);
}

#[test]
fn s3_kill_9_during_preserve_leaves_nothing_or_a_complete_bundle() {
    let moto = Moto::start();
    moto.create_bucket("crash", true);
    let home = tempfile::tempdir().unwrap();
    let env = env_for(&moto.endpoint);
    let url = "s3://crash/ev";
    let o = run(home.path(), &[], &["keygen", "--out", home.path().join("keys/default.key").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    // 1. Killed exactly between the bundle PUT and the ledger entry.
    let dir = incident(home.path(), "paused");
    let mut c = crate::store_util::custody();
    c.env("CUSTODY_HOME", home.path())
        .env("CUSTODY_TEST_PAUSE", "after-bundle")
        .args(preserve_args(url, &dir, &["--retention", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in &env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    crate::util::wait_for_pause(&mut err, "after-bundle");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(bundle_keys(&moto, "crash", "ev").len(), 1);
    assert!(ledger_keys(&moto, "crash", "ev").is_empty());
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "an unreferenced bundle is only a warning: {}", text(&o));
    let r = json(&o);
    let unref: Vec<_> =
        r["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "unreferenced_bundle").collect();
    assert_eq!(unref.len(), 1, "{r}");
    assert_eq!(unref[0]["level"], "warning");

    // 2. The next preserve adopts it (grace period 0 here).
    let dir2 = incident(home.path(), "next");
    let o = run(home.path(), &env, &preserve_args(url, &dir2, &["--adopt-min-age", "0", "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("adopted unreferenced bundle"), "{}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 2, "the adopted bundle took position 1");

    // 3. Killed at several moments of a larger preserve: afterwards the store is either
    // unchanged or holds a complete bundle; verify --all never fails.
    let big = home.path().join("big");
    std::fs::create_dir_all(big.join("attachments")).unwrap();
    random_file(&big.join("attachments/dump.bin"), 16, 7);
    for (i, ms) in [30u64, 150, 400, 800, 1500].into_iter().enumerate() {
        std::fs::write(big.join("attachments/round.txt"), format!("round {i}\n")).unwrap();
        let mut c = crate::store_util::custody();
        c.env("CUSTODY_HOME", home.path())
            .args(preserve_args(url, &big, &["--adopt-min-age", "100000"]))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
        let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
        assert_eq!(o.status.code(), Some(0), "after kill at {ms} ms: {}", text(&o));
        let r = json(&o);
        for f in r["findings"].as_array().unwrap() {
            assert_eq!(f["level"], "warning", "after kill at {ms} ms: {f}");
        }
    }
    // 4. repair adopts whatever complete bundles the kills left; then nothing is unreferenced.
    let o = run(home.path(), &env, &["store", "repair", url, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert!(!r["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "unreferenced_bundle"), "{r}");
    assert_eq!(r["bundles"].as_array().unwrap().len(), bundle_keys(&moto, "crash", "ev").len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_multipart_bundle_is_checked_by_digest_and_locked() {
    let moto = Moto::start();
    moto.create_bucket("big", true);
    let tmp = tempfile::tempdir().unwrap();
    let key = std::sync::Arc::new(custody::keys::SecretKey::generate(&tmp.path().join("k.key")).unwrap());
    let opts = StoreOptions { retention_days: Some(1), lock_mode: Some(LockMode::Compliance), ..Default::default() };
    let store = moto.store("big", "ev", opts).with_single_put_limit(6 << 20);
    let dir = tmp.path().join("inc");
    std::fs::create_dir_all(dir.join("attachments")).unwrap();
    random_file(&dir.join("attachments/heap.bin"), 20, 11);
    let req = custody::preserve::PreserveRequest { incident_dir: Some(dir), ..Default::default() };
    let done = custody::preserve::preserve(&store, key.clone(), req, custody::clock::Clock::system()).await.unwrap();
    assert!(done.size > 6 << 20, "the bundle must be above the single-PUT limit");
    let trust = Trust::new(vec![key.public.clone()]);
    let (r, _) = verify::verify_in_store(&store, &done.bundle, &trust, &Default::default()).await.unwrap();
    assert!(r.intact(), "{}", r.to_human());
    let bundle_line = r.retention.iter().find(|l| l.key.starts_with("bundles/")).expect("bundle retention");
    assert_eq!(bundle_line.mode.as_deref(), Some("COMPLIANCE"), "{}", r.to_human());
}

#[test]
fn s3_checkpoint_detects_a_rollback_and_a_rewritten_ledger() {
    let moto = Moto::start();
    moto.create_bucket("plain", false);
    let home = tempfile::tempdir().unwrap();
    let env = env_for(&moto.endpoint);
    let url = "s3://plain/ev";
    for i in 0..2 {
        let dir = incident(home.path(), &format!("cp{i}"));
        let o = run(home.path(), &env, &preserve_args(url, &dir, &[]));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let cp = home.path().join("checkpoint");
    let o = run(home.path(), &env, &["checkpoint", "--store", url, "--out", cp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let verify_cp = |cp: &Path| {
        run(home.path(), &env, &["verify", "--store", url, "--all", "--json", "--checkpoint", cp.to_str().unwrap()])
    };
    assert_eq!(verify_cp(&cp).status.code(), Some(0));
    // The ledger grows: still consistent.
    let dir = incident(home.path(), "cp2");
    assert_eq!(run(home.path(), &env, &preserve_args(url, &dir, &[])).status.code(), Some(0));
    let o = verify_cp(&cp);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Rollback: someone with delete rights removes the newest entries (this bucket has no lock).
    for n in [3, 2] {
        let (s, _, _) = raw_http(moto.addr, "DELETE", &format!("/plain/ev/ledger/{n:020}.json"), &[], b"").unwrap();
        assert_eq!(s, 204);
    }
    // Without the checkpoint, the bundles whose entries were deleted still prove it: bundle 3
    // was sealed against position 2, which the ledger no longer has.
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(1), "the kept bundles prove a longer ledger: {}", text(&o));
    assert!(json(&o)["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "ledger_truncated"), "{}", text(&o));
    let o = verify_cp(&cp);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&o);
    let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "rollback").expect("rollback finding");
    assert!(f["message"].as_str().unwrap().contains("rollback"), "{f}");

    // Fork: a new entry is written at the checkpointed position.
    let dir = incident(home.path(), "fork");
    let o = run(home.path(), &env, &preserve_args(url, &dir, &["--adopt-min-age", "100000"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = verify_cp(&cp);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&o);
    let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "rollback").expect("fork finding");
    assert!(f["message"].as_str().unwrap().contains("fork"), "{f}");

    // A tampered checkpoint is refused: its note text says position 1, its signature is the
    // one over position 2.
    let note = std::fs::read_to_string(&cp).unwrap();
    let forged = note.replacen("\n2\n", "\n1\n", 1);
    assert_ne!(forged, note);
    let bad = home.path().join("forged.checkpoint");
    std::fs::write(&bad, forged).unwrap();
    let o = verify_cp(&bad);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("signature by pinned key") && text(&o).contains("does not verify"), "{}", text(&o));
}

#[test]
fn s3_every_x_amz_header_is_signed_including_the_lock_headers() {
    // moto does not check signatures, so check the signing ourselves: AWS rejects a request
    // carrying an x-amz-* header that is not listed in SignedHeaders.
    let moto = Moto::start();
    moto.create_bucket("signed", true);
    let home = tempfile::tempdir().unwrap();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let h2 = heads.clone();
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        h2.lock().unwrap().push(req.head.clone());
        Action::Forward
    });
    let env = env_for(&proxy.endpoint);
    let url = "s3://signed/ev";
    let o = run(home.path(), &env, &["store", "init", url, "--retention", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dir = incident(home.path(), "signed");
    let o = run(home.path(), &env, &preserve_args(url, &dir, &["--retention", "1", "--lock-mode", "governance"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--retention", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let heads = heads.lock().unwrap();
    let mut lock_puts = 0;
    for h in heads.iter() {
        let lower = h.to_ascii_lowercase();
        let auth =
            lower.lines().find(|l| l.starts_with("authorization:")).unwrap_or_else(|| panic!("unsigned request:\n{h}"));
        let signed = auth.split("signedheaders=").nth(1).and_then(|s| s.split(',').next()).unwrap_or("");
        let signed: Vec<&str> = signed.split(';').collect();
        for name in lower.lines().skip(1).filter_map(|l| l.split(':').next()).filter(|n| n.starts_with("x-amz-")) {
            assert!(signed.contains(&name), "header {name} is not signed in:\n{h}");
        }
        if lower.starts_with("put ") && lower.contains("x-amz-object-lock-mode: governance") {
            assert!(lower.contains("x-amz-object-lock-retain-until-date:"), "{h}");
            assert!(lower.contains("x-amz-sdk-checksum-algorithm: sha256"), "{h}");
            assert!(lower.contains("x-amz-checksum-sha256:"), "a lock PUT needs a checksum:\n{h}");
            lock_puts += 1;
        }
    }
    assert!(lock_puts >= 2, "bundle and ledger PUTs must carry the lock headers ({lock_puts} seen)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_create_whose_answer_was_lost_is_already_present_not_taken() {
    // The server performs the first PUT but the client is told 503; the client's retry meets
    // 412. That is this very write: `AlreadyPresent`. Other bytes at the key stay `Taken`.
    let moto = Moto::start();
    moto.create_bucket("lost", false);
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = first.clone();
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        if req.method == "PUT" && f2.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Action::ForwardThen503
        } else {
            Action::Forward
        }
    });
    let opts = Moto::options(&proxy.endpoint);
    let store = custody::store::Store::open_with("s3://lost/ev", &opts).unwrap();
    let out = store.create("ledger/00000000000000000001.json", b"entry one".to_vec()).await.unwrap();
    assert!(!first.load(std::sync::atomic::Ordering::SeqCst), "the lost answer was not injected");
    assert_eq!(out, custody::store::PutOutcome::AlreadyPresent);
    let out = store.create("ledger/00000000000000000001.json", b"entry two".to_vec()).await.unwrap();
    assert_eq!(out, custody::store::PutOutcome::Taken);
}
