//! Object storage under attack (issue "object storage under attack", items 3–7), against real
//! servers started by the tests (moto for S3, Azurite for Azure Blob): junk keys, store URLs
//! that used to write one place and check another, secrets in URLs, corrupted uploads, setup
//! output that said the wrong thing about what locks the evidence, and legal holds. Each test
//! is named after the bug it pins.

use std::sync::{Arc, Mutex};

use crate::store_util::{incident, json, raw_http, run, text, Action, Azurite, FaultProxy, Moto};

fn preserve<'a>(url: &'a str, dir: &'a std::path::Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["preserve", "--store", url, "--incident-dir", dir.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

/// Raw keys under `prefix` of a moto bucket (URL-decoded by asking for `encoding-type=url`).
fn keys(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let q = custody::store::address::encode_query(prefix);
    let (status, _, body) =
        raw_http(moto.addr, "GET", &format!("/{bucket}?list-type=2&encoding-type=url&prefix={q}"), &[], b"").unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(|k| percent_encoding::percent_decode_str(k).decode_utf8_lossy().into_owned())
        .collect()
}

/// Give a moto bucket (created with Object Lock, still empty) a default retention.
fn default_retention(moto: &Moto, bucket: &str, mode: &str, period: &str) {
    let body = format!(
        "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>{mode}</Mode>{period}</DefaultRetention></Rule></ObjectLockConfiguration>"
    );
    let (status, _, resp) = raw_http(
        moto.addr,
        "PUT",
        &format!("/{bucket}?object-lock"),
        &[("Content-Type", "application/xml")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
}

fn findings_of<'a>(r: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    r["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

#[test]
fn s3_junk_keys_under_ledger_and_bundles_are_findings_not_errors() {
    // One object at `ledger//x` (or `..`, `a/./b`, a control character, `bundles//x`) used to
    // make preserve, verify and list exit 2 ("Encountered object with invalid path").
    let moto = Moto::start();
    moto.create_bucket("junk", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://junk/ev";
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "j1"), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for junk in ["ev/ledger//x", "ev/ledger/%2E%2E", "ev/ledger/a/%2E/b", "ev/ledger/x%1B%5B2J%07", "ev/bundles//x"] {
        let (s, _, _) = raw_http(moto.addr, "PUT", &format!("/junk/{junk}"), &[], b"junk").unwrap();
        assert_eq!(s, 200, "{junk}");
    }
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "j2"), &["--json"]));
    assert_eq!(o.status.code(), Some(0), "preserve is not blocked by junk keys: {}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 2);
    let o = run(home.path(), &env, &["list", "--store", url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["store", "repair", url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "junk keys are findings, not errors: {}", text(&o));
    let r = json(&o);
    let stray = findings_of(&r, "stray_object");
    assert_eq!(stray.len(), 5, "{r}");
    assert!(stray.iter().all(|f| f["level"] == "warning"), "{r}");
    assert!(stray.iter().any(|f| f["location"] == "ledger/x\\u{1b}[2J\\u{7}"), "the key is escaped: {r}");
    assert_eq!(r["bundles"].as_array().unwrap().len(), 2, "{r}");
    let o = run(home.path(), &env, &["verify", "--store", url, "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!o.stdout.contains(&0x1b) && !o.stderr.contains(&0x1b), "a raw ESC reached the terminal: {}", text(&o));
}

#[test]
fn azure_junk_key_does_not_block_the_store() {
    let azurite = Azurite::start();
    azurite.create_container("junk");
    let home = tempfile::tempdir().unwrap();
    let env = azurite.env();
    let url = "az://junk/ev";
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "a1"), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    azurite.put_blob("junk", "ev/ledger//x", b"junk");
    azurite.put_blob("junk", "ev/bundles/not-a-bundle.txt", b"junk");
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "a2"), &["--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)["ledger"]["position"], 2);
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert!(!findings_of(&r, "stray_object").is_empty(), "{r}");
    assert_eq!(r["bundles"].as_array().unwrap().len(), 2, "{r}");
}

#[test]
fn s3_store_url_is_normalised_once_and_unrepresentable_prefixes_are_refused() {
    // `s3://bucket/q//r` wrote to `q/r/` and checked retention at `q//r/` (finding nothing and
    // saying [ ok ]); `my ev` was stored as `my%2520ev/`.
    let moto = Moto::start();
    moto.create_bucket("norm", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let dir = incident(home.path(), "n");
    for (bad, why) in [
        ("s3://norm/q//r", "empty segment"),
        ("s3://norm/q/./r", "`.`"),
        ("s3://norm/q/%2E%2E/r", "`..`"),
        ("s3://norm/my%25ev", "'%'"),
        ("s3://norm/caf%C3%A9", "'é'"),
        ("s3://norm/a?versionId=1", "query"),
    ] {
        let o = run(home.path(), &env, &preserve(bad, &dir, &["--retention", "1"]));
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        assert!(text(&o).contains("is not usable") && text(&o).contains(why), "{bad}: {}", text(&o));
        let o = run(home.path(), &env, &["verify", "--store", bad, "--all"]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
    }
    assert!(keys(&moto, "norm", "").is_empty(), "a refused URL wrote something");
    // A prefix with a space is stored under exactly that prefix, and every check reads the
    // keys that were written.
    let o = run(home.path(), &env, &preserve("s3://norm/my ev", &dir, &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let written = keys(&moto, "norm", "");
    assert_eq!(written.len(), 3, "a bundle, its ledger entry and the store's store.json: {written:?}");
    assert!(written.contains(&"my ev/store.json".to_string()), "{written:?}");
    assert!(written.iter().all(|k| k.starts_with("my ev/")), "{written:?}");
    for url in ["s3://norm/my ev", "s3://norm/my%20ev/"] {
        let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let r = json(&o);
        assert_eq!(r["subject"]["store"], "s3://norm/my ev", "one canonical form: {r}");
        let check = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "retention").unwrap();
        assert_eq!(check["status"], "pass", "{r}");
        assert!(check["detail"].as_str().unwrap().starts_with("2 object(s) locked"), "{r}");
    }
}

#[test]
fn s3_secrets_in_the_endpoint_or_the_store_url_are_never_echoed() {
    let moto = Moto::start();
    moto.create_bucket("secret", false);
    let home = tempfile::tempdir().unwrap();
    let dir = incident(home.path(), "s");
    // A password inside AWS_ENDPOINT: refused, and redacted in the message.
    let mut env = Moto::env(&moto.endpoint);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT");
    env.push(("AWS_ENDPOINT", format!("http://admin:Sekr1tPW@{}", moto.addr)));
    for args in [
        preserve("s3://secret/p", &dir, &["--json"]),
        vec!["list", "--store", "s3://secret/p", "--json"],
        vec!["verify", "--store", "s3://secret/p", "--all", "--json"],
        vec!["store", "init", "s3://secret/p", "--json"],
    ] {
        let o = run(home.path(), &env, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("Sekr1tPW"), "{args:?} echoed the endpoint's password: {}", text(&o));
        assert!(text(&o).contains("***"), "{}", text(&o));
        assert!(text(&o).contains("user name or password"), "{}", text(&o));
    }
    let env = Moto::env(&moto.endpoint);
    let endpoint = format!("http://u:Sekr3tPW@{}", moto.addr);
    let o = run(home.path(), &env, &["list", "--store", "s3://secret/p", "--s3-endpoint", &endpoint]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("Sekr3tPW"), "{}", text(&o));
    // Credentials in the store URL: refused, never echoed, nothing written.
    for url in ["s3://AKIAXXXX:Sekr2tPW@secret/p", "az://acct:Sekr2tPW@container/p"] {
        for args in [
            preserve(url, &dir, &["--json"]),
            vec!["list", "--store", url, "--json"],
            vec!["verify", "--store", url, "--all", "--json"],
            vec!["checkpoint", "--store", url],
        ] {
            let o = run(home.path(), &env, &args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
            assert!(!text(&o).contains("Sekr2tPW"), "{args:?}: {}", text(&o));
            assert!(text(&o).contains("***") && text(&o).contains("user name or password"), "{}", text(&o));
        }
    }
    assert!(keys(&moto, "secret", "").is_empty());
}

#[test]
fn s3_corrupted_upload_is_not_reported_as_sealed() {
    // A byte flipped on the way used to be stored by a server that does not check the
    // checksum (moto), and preserve said "sealed".
    let moto = Moto::start();
    moto.create_bucket("flip", true);
    let home = tempfile::tempdir().unwrap();
    let heads = Arc::new(Mutex::new(Vec::<String>::new()));
    let target = Arc::new(Mutex::new("/bundles/".to_string()));
    let (h2, t2) = (heads.clone(), target.clone());
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        h2.lock().unwrap().push(req.head.clone());
        if req.method == "PUT" && req.target.contains(t2.lock().unwrap().as_str()) {
            Action::CorruptBody
        } else {
            Action::Forward
        }
    });
    let env = Moto::env(&proxy.endpoint);
    let url = "s3://flip/ev";
    let dir = incident(home.path(), "flip");
    let o = run(home.path(), &env, &preserve(url, &dir, &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("stored other bytes") && text(&o).contains("nothing was written to the ledger"),
        "{}",
        text(&o)
    );
    assert!(keys(&moto, "flip", "ev/ledger/").is_empty(), "a ledger entry was written for a corrupted bundle");
    // A corrupted ledger entry is caught the same way.
    *target.lock().unwrap() = "/ledger/".into();
    let dir = incident(home.path(), "flip2");
    let o = run(home.path(), &env, &preserve(url, &dir, &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("stored other bytes"), "{}", text(&o));
    // Control: without the fault, the same path seals; and every PUT carried its checksum.
    *target.lock().unwrap() = "/nothing-matches/".into();
    heads.lock().unwrap().clear();
    let dir = incident(home.path(), "clean");
    let o = run(home.path(), &env, &preserve(url, &dir, &["--retention", "1", "--adopt-min-age", "100000"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let heads = heads.lock().unwrap();
    let puts: Vec<&String> = heads.iter().filter(|h| h.starts_with("PUT ")).collect();
    assert!(puts.len() >= 2, "{puts:?}");
    for h in puts {
        assert!(h.to_ascii_lowercase().contains("x-amz-checksum-sha256:"), "a PUT without its checksum:\n{h}");
    }
    // moto does not verify checksums: the upload was read back before the ledger entry.
    assert!(heads.iter().any(|h| h.starts_with("GET ") && h.contains("/bundles/")), "no read-back");
}

#[test]
fn s3_an_upload_whose_checksum_echo_differs_is_checked_by_reading_it_back() {
    // A server that answers a PUT with another x-amz-checksum-sha256 than the one sent says it
    // stored other bytes: that answer is an error, never a success. The write is retried, meets
    // the object, and only its bytes read back decide. Here the server "verifies checksums"
    // (the probe is refused with BadDigest), so nothing else would have read the bundle back.
    let moto = Moto::start();
    moto.create_bucket("echo", true);
    let home = tempfile::tempdir().unwrap();
    let gets = Arc::new(Mutex::new(0usize));
    let lied = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (g2, l2) = (gets.clone(), lied.clone());
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        if req.method == "PUT" && req.target.contains("checksum-probe") && req.target.contains("partNumber=") {
            return Action::BadDigest;
        }
        if req.method == "PUT"
            && req.target.contains("/bundles/")
            && !l2.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Action::WrongChecksumEcho;
        }
        if req.method == "GET" && req.target.contains("/bundles/") {
            *g2.lock().unwrap() += 1;
        }
        Action::Forward
    });
    let env = Moto::env(&proxy.endpoint);
    let o =
        run(home.path(), &env, &preserve("s3://echo/ev", &incident(home.path(), "e"), &["--retention", "1", "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(lied.load(std::sync::atomic::Ordering::SeqCst), "the wrong echo was not injected");
    assert_eq!(json(&o)["outcome"], "already_present", "the lying answer was not taken as a success: {}", text(&o));
    assert!(*gets.lock().unwrap() >= 1, "the object was not read back after the wrong echo");
}

#[test]
fn s3_store_init_detects_whether_the_server_verifies_checksums() {
    let moto = Moto::start();
    moto.create_bucket("probe", true);
    let home = tempfile::tempdir().unwrap();
    let detail = |o: &std::process::Output| {
        let j = json(o);
        j["checks"].as_array().unwrap().iter().find(|c| c["name"] == "checksums").unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let o =
        run(home.path(), &Moto::env(&moto.endpoint), &["store", "init", "s3://probe/ev", "--retention", "1", "--json"]);
    assert!(detail(&o).contains("does not verify uploads"), "{}", text(&o));
    // moto honours If-None-Match on CompleteMultipartUpload: store init says so.
    let complete = json(&o)["checks"].as_array().unwrap().iter().find(|c| c["name"] == "conditional_complete").cloned();
    let complete = complete.unwrap_or_else(|| panic!("no conditional_complete check: {}", text(&o)));
    assert_eq!(complete["status"], "kept", "{complete}");
    assert!(complete["detail"].as_str().unwrap().contains("refused to complete"), "{complete}");
    // A server that refuses the wrong part (as AWS does, with BadDigest): no read-back.
    let gets = Arc::new(Mutex::new(0usize));
    let g2 = gets.clone();
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        if req.method == "PUT" && req.target.contains("checksum-probe") && req.target.contains("partNumber=") {
            return Action::BadDigest;
        }
        if req.method == "GET" && req.target.contains("/bundles/") {
            *g2.lock().unwrap() += 1;
        }
        Action::Forward
    });
    let env = Moto::env(&proxy.endpoint);
    let o = run(home.path(), &env, &["store", "init", "s3://probe/ev", "--retention", "1", "--json"]);
    assert!(detail(&o).contains("it verifies every upload"), "{}", text(&o));
    let o = run(home.path(), &env, &preserve("s3://probe/ev", &incident(home.path(), "p"), &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(*gets.lock().unwrap(), 0, "a verifying server's uploads are not read back");
}

#[test]
fn s3_a_bucket_default_retention_locks_every_object_and_is_reported_as_it_is() {
    // With a default retention and no --retention every upload failed
    // (MissingUploadObjectWithObjectLockHeaders), and a 1-year default read "0 day(s)".
    let moto = Moto::start();
    moto.create_bucket("defret", true);
    default_retention(&moto, "defret", "COMPLIANCE", "<Years>1</Years>");
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let o = run(home.path(), &env, &["store", "init", "s3://defret/ev"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("COMPLIANCE for 1 year(s)") && !text(&o).contains("0 day(s)"), "{}", text(&o));
    let o = run(home.path(), &env, &preserve("s3://defret/ev", &incident(home.path(), "d"), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("locked by the bucket's default retention: COMPLIANCE for 1 year(s)"), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://defret/ev", "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert!(r["retention"].as_array().unwrap().iter().all(|l| l["mode"] == "COMPLIANCE"), "{r}");
    // `--lock-mode governance` REPLACES the COMPLIANCE default on every object: not [ ok ].
    let o = run(
        home.path(),
        &env,
        &["store", "init", "s3://defret/ev", "--retention", "400", "--lock-mode", "governance", "--json"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j = json(&o);
    let c = j["checks"].as_array().unwrap().iter().find(|c| c["name"] == "default_retention").unwrap();
    assert_eq!(c["status"], "broken", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("REPLACES the bucket's default COMPLIANCE"), "{c}");
    // …and preserve says so.
    let o = run(
        home.path(),
        &env,
        &preserve("s3://defret/gov", &incident(home.path(), "g"), &["--retention", "1", "--lock-mode", "governance"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("WARNING: custody sends GOVERNANCE for 1 day(s), which REPLACES"), "{}", text(&o));
}

#[test]
fn s3_no_default_retention_and_no_retention_says_not_locked() {
    let moto = Moto::start();
    moto.create_bucket("nodef", false);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let o = run(home.path(), &env, &preserve("s3://nodef/ev", &incident(home.path(), "n"), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("objects written now are NOT locked") && t.contains("Object Lock is not even enabled"), "{t}");
    assert!(!t.contains("relying on"), "{t}");
}

#[test]
fn s3_a_preserve_that_asked_for_a_lock_and_did_not_get_it_fails() {
    // A server (or anything on the way) that drops the lock headers: the object is written
    // unlocked. Asked for --retention, the preserve must fail, before the ledger entry.
    let moto = Moto::start();
    moto.create_bucket("strip", true);
    let home = tempfile::tempdir().unwrap();
    let proxy =
        FaultProxy::start(
            moto.addr,
            |req, _| {
                if req.method == "PUT" {
                    Action::StripLockHeaders
                } else {
                    Action::Forward
                }
            },
        );
    let env = Moto::env(&proxy.endpoint);
    let o = run(home.path(), &env, &preserve("s3://strip/ev", &incident(home.path(), "s"), &["--retention", "3"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("is NOT locked as asked") && t.contains("mode none"), "{t}");
    assert!(keys(&moto, "strip", "ev/ledger/").is_empty(), "a ledger entry was written for an unlocked bundle");
}

#[test]
fn s3_legal_hold_is_put_on_every_object_and_reported_by_verify() {
    let moto = Moto::start();
    moto.create_bucket("hold", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://hold/ev";
    let o = run(
        home.path(),
        &env,
        &preserve(url, &incident(home.path(), "h"), &["--retention", "1", "--legal-hold", "--json"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("and a legal hold"), "{}", text(&o));
    let bundle = json(&o)["bundle"].as_str().unwrap().to_owned();
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    let lines = r["retention"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{r}");
    assert!(lines.iter().all(|l| l["legal_hold"] == "ON"), "{r}");
    let o = run(home.path(), &env, &["verify", "--store", url, &bundle]);
    assert!(text(&o).contains("legal hold ON"), "{}", text(&o));
    // Without the flag, objects carry no hold, and verify says so too.
    let o = run(home.path(), &env, &preserve("s3://hold/free", &incident(home.path(), "f"), &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(home.path(), &env, &["verify", "--store", "s3://hold/free", "--all", "--json"]);
    let r = json(&o);
    assert!(r["retention"].as_array().unwrap().iter().all(|l| l["legal_hold"] != "ON"), "{r}");
}

#[test]
fn docs_recommended_bucket_policy_is_valid_json_for_s3() {
    // The policy in docs/storage.md is copied by operators: it must parse, and hold only what
    // S3's policy grammar allows.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/storage.md")).unwrap();
    let start = doc.find("<!-- bucket-policy -->").expect("the policy is marked in docs/storage.md");
    let block = &doc[start..];
    let block = &block[block.find("```json").unwrap() + 7..];
    let block = &block[..block.find("```").unwrap()];
    let p: serde_json::Value = serde_json::from_str(block).expect("the bucket policy is valid JSON");
    assert_eq!(p["Version"], "2012-10-17");
    let statements = p["Statement"].as_array().unwrap();
    assert!(!statements.is_empty());
    let mut sids = std::collections::HashSet::new();
    for s in statements {
        let o = s.as_object().unwrap();
        for k in o.keys() {
            assert!(
                ["Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "Condition"].contains(&k.as_str()),
                "unknown statement key {k}"
            );
        }
        assert!(sids.insert(s["Sid"].as_str().unwrap().to_owned()), "duplicate Sid");
        assert!(s["Effect"] == "Deny" || s["Effect"] == "Allow");
        let actions: Vec<&str> = match &s["Action"] {
            serde_json::Value::String(a) => vec![a.as_str()],
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
            other => panic!("Action {other}"),
        };
        assert!(actions.iter().all(|a| a.starts_with("s3:")), "{actions:?}");
        let resources: Vec<&str> = match &s["Resource"] {
            serde_json::Value::String(a) => vec![a.as_str()],
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_str().unwrap()).collect(),
            other => panic!("Resource {other}"),
        };
        assert!(resources.iter().all(|r| r.starts_with("arn:aws:s3:::")), "{resources:?}");
    }
    // The two protections the issue asks for are there.
    let text = block.to_string();
    assert!(
        text.contains("s3:versionid") && text.contains("\"s3:DeleteObject\""),
        "deny DeleteObject without a version"
    );
    assert!(text.contains("s3:if-none-match"), "deny overwrites of existing keys");
    // And an S3-protocol server takes it.
    let moto = Moto::start();
    moto.create_bucket("acme-evidence", true);
    let (status, _, body) = raw_http(
        moto.addr,
        "PUT",
        "/acme-evidence?policy",
        &[("Content-Type", "application/json")],
        block.trim().as_bytes(),
    )
    .unwrap();
    assert!(status == 200 || status == 204, "moto refused the policy: {}", String::from_utf8_lossy(&body));
}

#[test]
fn azure_every_command_works_on_an_az_store() {
    // `custody list --store gs://b/x` used to answer "feature … not enabled": az:// now works
    // for every command, against a real Azurite.
    let azurite = Azurite::start();
    azurite.create_container("every");
    let home = tempfile::tempdir().unwrap();
    let env = azurite.env();
    let url = "az://every/team-a";
    let o = run(home.path(), &env, &["store", "init", url, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json(&o);
    let status = |n: &str| j["checks"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap()["status"].clone();
    assert_eq!(status("conditional_writes"), "kept", "{j}");
    assert_eq!(status("object_lock"), "not_applicable", "{j}");
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "az"), &["--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bundle = json(&o)["bundle"].as_str().unwrap().to_owned();
    let out = home.path().join("out");
    for args in [
        vec!["list", "--store", url],
        vec!["verify", "--store", url, "--all"],
        vec!["verify", "--store", url, bundle.as_str()],
        vec!["show", "--store", url, bundle.as_str()],
        vec!["extract", "--store", url, bundle.as_str(), "--to", out.to_str().unwrap()],
        vec!["checkpoint", "--store", url],
        vec!["store", "repair", url],
    ] {
        let o = run(home.path(), &env, &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
    assert!(out.join("traces/trace.jsonl").is_file(), "extract wrote nothing");
    // Object Lock flags are S3's: refused for Azure, with the reason.
    let o = run(home.path(), &env, &preserve(url, &incident(home.path(), "az2"), &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("S3 Object Lock settings"), "{}", text(&o));
    // gs:// is refused, saying why.
    let o = run(home.path(), &env, &["list", "--store", "gs://bucket/x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("Google Cloud Storage stores are not supported"), "{}", text(&o));
}
