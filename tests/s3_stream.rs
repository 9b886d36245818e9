//! Preserving straight into S3 (`store::stream`), against a real `moto_server`: a bundle is
//! sealed into a multipart upload under a provisional key, then copied create-only to its
//! name. An interrupted stream leaves nothing readable and nothing in the ledger; a part
//! corrupted on the way is refused by its checksum; two writers racing one bundle end with one
//! object; a refused conditional completion confirms what is there and never overwrites it;
//! a name already taken is found before the provisional upload is completed.

use std::io::{BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use custody::digest::{BundleId, Sha256};
use custody::store::stream::StreamUpload;
use custody::store::{bundle_key, PutOutcome, Store, StoreError};

use crate::store_util::{random_file, raw_http, run, text, Action, FaultProxy, Moto};

/// Keys under `prefix` of a moto bucket, every version of each (`?versions`), delete markers
/// left out.
fn versions(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let q = custody::store::address::encode_query(prefix);
    let (status, _, body) = raw_http(moto.addr, "GET", &format!("/{bucket}?versions&prefix={q}"), &[], b"").unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("<Version>")
        .skip(1)
        .filter_map(|v| v.split("<Key>").nth(1)?.split("</Key>").next().map(String::from))
        .collect()
}

/// The incomplete multipart uploads of a moto bucket, by key.
fn incomplete_uploads(moto: &Moto, bucket: &str) -> Vec<String> {
    let (status, _, body) = raw_http(moto.addr, "GET", &format!("/{bucket}?uploads"), &[], b"").unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).into_owned();
    body.split("<Upload>")
        .skip(1)
        .filter_map(|v| v.split("<Key>").nth(1)?.split("</Key>").next().map(String::from))
        .collect()
}

fn get(moto: &Moto, bucket: &str, key: &str) -> Vec<u8> {
    let (s, _, body) = raw_http(moto.addr, "GET", &format!("/{bucket}/{key}"), &[], b"").unwrap();
    assert_eq!(s, 200, "get {key}");
    body
}

/// An incident directory with `mib` MiB of incompressible evidence: a bundle of several parts.
fn big_incident(root: &Path, mib: usize) -> std::path::PathBuf {
    let d = root.join(format!("big-{mib}"));
    std::fs::create_dir_all(d.join("attachments")).unwrap();
    random_file(&d.join("attachments/heap.bin"), mib, 5);
    std::fs::write(d.join("attachments/note.txt"), "streamed\n").unwrap();
    d
}

fn preserve_args<'a>(url: &'a str, dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["preserve", "--store", url, "--incident-dir", dir.to_str().unwrap(), "--no-analyze"];
    v.extend_from_slice(extra);
    v
}

/// Start `custody preserve` paused at `point`, and kill it there (SIGKILL).
fn kill_at(home: &Path, env: &[(&'static str, String)], args: &[&str], point: &str) {
    let mut c = crate::store_util::custody();
    c.env("CUSTODY_HOME", home)
        .env("CUSTODY_TEST_PAUSE", point)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    crate::util::wait_for_pause(&mut err, point);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn s3_stream_interrupted_upload_leaves_nothing_readable_and_nothing_in_the_ledger() {
    let moto = Moto::start();
    moto.create_bucket("cut", true);
    let home = tempfile::tempdir().unwrap();
    let env = Moto::env(&moto.endpoint);
    let url = "s3://cut/ev";
    let dir = big_incident(home.path(), 24);
    let o = run(home.path(), &[], &["keygen", "--out", home.path().join("keys/default.key").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    // 1. Killed mid-stream: a part is uploaded, the upload is not complete.
    kill_at(home.path(), &env, &preserve_args(url, &dir, &["--retention", "1"]), "streaming");
    assert_eq!(incomplete_uploads(&moto, "cut").len(), 1, "the killed run's upload is incomplete");
    assert!(incomplete_uploads(&moto, "cut")[0].starts_with("ev/uploads/"));
    assert!(versions(&moto, "cut", "ev/bundles/").is_empty(), "nothing under a bundle's name");
    assert!(versions(&moto, "cut", "ev/ledger/").is_empty(), "nothing in the ledger");
    assert!(versions(&moto, "cut", "ev/uploads/").is_empty(), "no object at all: the upload was never completed");
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "an interrupted upload is no finding: {}", text(&o));

    // 2. Killed between the provisional upload and its copy: an object under uploads/,
    // which no reader takes for a bundle.
    kill_at(home.path(), &env, &preserve_args(url, &dir, &["--retention", "1"]), "provisional");
    let provisional = versions(&moto, "cut", "ev/uploads/");
    assert_eq!(provisional.len(), 1, "{provisional:?}");
    assert!(provisional[0].ends_with(".partial"), "{provisional:?}");
    assert!(versions(&moto, "cut", "ev/bundles/").is_empty());
    assert!(versions(&moto, "cut", "ev/ledger/").is_empty());
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = crate::store_util::json(&o);
    assert!(r["bundles"].as_array().is_none_or(|b| b.is_empty()), "a provisional upload was taken for a bundle: {r}");
    assert!(!r.to_string().contains("uploads/"), "a provisional upload was read: {r}");

    // 3. store repair aborts the incomplete upload and deletes the provisional object (they
    // are older than --uploads-min-age 0); a younger one would be left to its preserve.
    let o = run(home.path(), &env, &["store", "repair", url]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(incomplete_uploads(&moto, "cut").len(), 1, "the default age (an hour) keeps a fresh upload");
    let o = run(home.path(), &env, &["store", "repair", url, "--uploads-min-age", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("aborted the incomplete upload"), "{}", text(&o));
    assert!(text(&o).contains("deleted the provisional upload"), "{}", text(&o));
    assert!(incomplete_uploads(&moto, "cut").is_empty());
    assert!(versions(&moto, "cut", "ev/uploads/").is_empty());

    // 4. The same preserve, uninterrupted: one bundle, one entry, nothing left under uploads/.
    let o = run(home.path(), &env, &preserve_args(url, &dir, &["--retention", "1", "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(versions(&moto, "cut", "ev/bundles/").len(), 1);
    assert_eq!(versions(&moto, "cut", "ev/ledger/").len(), 1);
    assert!(versions(&moto, "cut", "ev/uploads/").is_empty(), "the provisional object was not deleted");
    assert!(incomplete_uploads(&moto, "cut").is_empty());
    let o = run(home.path(), &env, &["verify", "--store", url, "--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(crate::store_util::json(&o)["findings"].as_array().unwrap().is_empty(), "{}", text(&o));
}

#[test]
fn s3_stream_a_part_corrupted_in_flight_is_refused_by_its_checksum() {
    // moto does not verify checksums; a proxy in front of it does, as AWS does (it also
    // refuses store init's probe, so custody knows the server verifies and reads nothing
    // back), and another proxy in front of that one flips a byte of the second part.
    let moto = Moto::start();
    moto.create_bucket("flip", true);
    let home = tempfile::tempdir().unwrap();
    let verifying = FaultProxy::start(moto.addr, |req, _| match req.method.as_str() {
        "PUT" => Action::VerifyChecksum,
        _ => Action::Forward,
    });
    let corrupt = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let heads = Arc::new(Mutex::new(Vec::<String>::new()));
    let (c2, h2) = (corrupt.clone(), heads.clone());
    let corrupting = FaultProxy::start(verifying.addr(), move |req, _| {
        h2.lock().unwrap().push(format!("{} {}", req.method, req.target));
        if c2.load(std::sync::atomic::Ordering::SeqCst)
            && req.method == "PUT"
            && req.target.contains("/uploads/")
            && req.target.contains("partNumber=2&")
        {
            return Action::CorruptAt(1000);
        }
        Action::Forward
    });
    let env = Moto::env(&corrupting.endpoint);
    let url = "s3://flip/ev";
    let dir = big_incident(home.path(), 20);
    let o = run(home.path(), &env, &preserve_args(url, &dir, &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("refused part 2") && t.contains("SHA-256 checksum") && t.contains("BadDigest"), "{t}");
    assert!(t.contains("nothing was written to the ledger"), "{t}");
    assert!(versions(&moto, "flip", "ev/bundles/").is_empty(), "a corrupted bundle was stored");
    assert!(versions(&moto, "flip", "ev/ledger/").is_empty());
    assert!(versions(&moto, "flip", "ev/uploads/").is_empty());
    assert!(incomplete_uploads(&moto, "flip").is_empty(), "the refused upload was not aborted");

    // Control: the same path without the corruption stores the bundle, and (the server
    // verifies) never reads it back.
    corrupt.store(false, std::sync::atomic::Ordering::SeqCst);
    heads.lock().unwrap().clear();
    let o = run(home.path(), &env, &preserve_args(url, &dir, &["--retention", "1"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(versions(&moto, "flip", "ev/bundles/").len(), 1);
    let heads = heads.lock().unwrap();
    assert!(heads.iter().filter(|h| h.starts_with("PUT ") && h.contains("partNumber=")).count() >= 3, "{heads:?}");
    assert!(
        !heads.iter().any(|h| h.starts_with("GET ") && (h.contains("/uploads/") || h.contains("/bundles/"))),
        "a verifying server's upload was read back: {heads:?}"
    );
}

/// Stream `data` through a new upload of `store` (the writer on a blocking thread, as the
/// sealer's).
async fn stream(store: &Store, data: Arc<Vec<u8>>) -> StreamUpload {
    let (mut w, up) = store.start_stream().unwrap();
    tokio::task::spawn_blocking(move || {
        w.write_all(&data).unwrap();
        drop(w);
    })
    .await
    .unwrap();
    up
}

/// 20 MiB of incompressible bytes and their bundle id (the store does not parse them).
fn payload(seed: u64) -> (Arc<Vec<u8>>, BundleId) {
    let f = tempfile::NamedTempFile::new().unwrap();
    random_file(f.path(), 20, seed);
    let data = std::fs::read(f.path()).unwrap();
    let id = BundleId(Sha256::of(&data));
    (Arc::new(data), id)
}

/// The completion of the copy that writes a streamed bundle under its name
/// (`POST …/bundles/…?uploadId=`).
fn is_final_completion(req: &crate::store_util::RequestHead) -> bool {
    req.method == "POST" && req.target.contains("/bundles/") && req.target.contains("uploadId=")
}

/// Holds every final completion ([`is_final_completion`]) until `n` have arrived (or 20 s
/// passed): both writers have checked the name free, copied their parts and now complete.
/// They are then let go 1.5 s apart: moto checks `If-None-Match` and completes without a lock
/// (its server is threaded), so completions let go at the same instant can both succeed
/// there; S3's conditional completion is atomic.
fn hold_completions(n: usize) -> impl Fn(&crate::store_util::RequestHead) -> bool + Send + Sync {
    let gate = Arc::new((Mutex::new(0usize), Condvar::new()));
    move |req| {
        if !is_final_completion(req) {
            return false;
        }
        let (m, cv) = &*gate;
        let mut arrived = m.lock().unwrap();
        *arrived += 1;
        let order = *arrived;
        cv.notify_all();
        drop(cv.wait_timeout_while(arrived, Duration::from_secs(20), |a| *a < n).unwrap());
        std::thread::sleep(Duration::from_millis(1500 * (order as u64 - 1)));
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_stream_two_writers_racing_one_bundle_end_with_one_object() {
    let moto = Moto::start();
    moto.create_bucket("race", true);
    let hold = hold_completions(2);
    let completions = Arc::new(Mutex::new(Vec::<String>::new()));
    let c2 = completions.clone();
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        if hold(req) {
            c2.lock().unwrap().push(req.head.to_ascii_lowercase());
        }
        Action::Forward
    });
    let open =
        || Store::open_with("s3://race/ev", &Moto::options(&proxy.endpoint)).unwrap().with_single_put_limit(6 << 20);
    let (a, b) = (open(), open());
    let (data, id) = payload(21);
    let (ua, ub) = (stream(&a, data.clone()).await, stream(&b, data.clone()).await);
    let size = data.len() as u64;
    let (ra, rb) = tokio::join!(a.put_streamed(ua, &id, size), b.put_streamed(ub, &id, size));
    let mut outcomes = vec![ra.unwrap().outcome, rb.unwrap().outcome];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, vec![PutOutcome::AlreadyPresent, PutOutcome::Created]);
    let completions = completions.lock().unwrap();
    assert_eq!(completions.len(), 2, "both writers reached the final completion");
    assert!(completions.iter().all(|h| h.contains("if-none-match: *")), "{completions:?}");
    // One object, one version, the bundle's bytes; no provisional object, no upload left.
    let key = format!("ev/{}", bundle_key(&id));
    assert_eq!(versions(&moto, "race", "ev/bundles/"), vec![key.clone()]);
    assert_eq!(Sha256::of(&get(&moto, "race", &key)), *id.digest());
    assert!(versions(&moto, "race", "ev/uploads/").is_empty());
    assert!(incomplete_uploads(&moto, "race").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_stream_refused_conditional_completion_confirms_the_existing_object_and_never_overwrites_it() {
    let moto = Moto::start();
    moto.create_bucket("taken", true);
    // Just before the final completion, another writer puts an object under the bundle's
    // name: `plant` says with which bytes. The provisional uploads' completions are counted.
    let plant: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let provisional_completions = Arc::new(AtomicUsize::new(0));
    let (p2, c2) = (plant.clone(), provisional_completions.clone());
    let addr = moto.addr;
    let proxy = FaultProxy::start(moto.addr, move |req, _| {
        if req.method == "POST" && req.target.contains("/uploads/") && req.target.contains("uploadId=") {
            c2.fetch_add(1, Ordering::SeqCst);
        }
        if is_final_completion(req) {
            let path = req.target.split('?').next().unwrap().to_string();
            let body = p2.lock().unwrap().clone();
            let (s, _, _) = raw_http(addr, "PUT", &path, &[], &body).unwrap();
            assert_eq!(s, 200);
        }
        Action::Forward
    });
    let store =
        Store::open_with("s3://taken/ev", &Moto::options(&proxy.endpoint)).unwrap().with_single_put_limit(6 << 20);
    assert!(store.completes_conditionally().await, "moto honours If-None-Match on CompleteMultipartUpload");

    // Other bytes got there first: refused, and they stay (the bundle is not written over them).
    let (data, id) = payload(31);
    let key = format!("ev/{}", bundle_key(&id));
    *plant.lock().unwrap() = b"not the bundle".to_vec();
    let up = stream(&store, data.clone()).await;
    let err = store.put_streamed(up, &id, data.len() as u64).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(versions(&moto, "taken", &key).len(), 1, "the existing object was overwritten");
    assert_eq!(get(&moto, "taken", &key), b"not the bundle");
    assert!(versions(&moto, "taken", "ev/uploads/").is_empty());
    assert!(incomplete_uploads(&moto, "taken").is_empty(), "the refused completion's upload was not aborted");

    // The same bundle got there first: confirmed by its bytes, already present, one version.
    let (data, id) = payload(32);
    let key = format!("ev/{}", bundle_key(&id));
    *plant.lock().unwrap() = data.to_vec();
    let up = stream(&store, data.clone()).await;
    let done = store.put_streamed(up, &id, data.len() as u64).await.unwrap();
    assert_eq!(done.outcome, PutOutcome::AlreadyPresent);
    assert_eq!(versions(&moto, "taken", &key).len(), 1);
    assert!(incomplete_uploads(&moto, "taken").is_empty());

    // Streamed once more: the name is found taken before the provisional upload is completed,
    // so it never becomes an object; already present.
    let before = provisional_completions.load(Ordering::SeqCst);
    let up = stream(&store, data.clone()).await;
    let done = store.put_streamed(up, &id, data.len() as u64).await.unwrap();
    assert_eq!(done.outcome, PutOutcome::AlreadyPresent);
    assert_eq!(provisional_completions.load(Ordering::SeqCst), before, "a provisional upload was completed");
    assert!(versions(&moto, "taken", "ev/uploads/").is_empty());
    assert!(incomplete_uploads(&moto, "taken").is_empty(), "the unneeded upload was not aborted");
    assert_eq!(versions(&moto, "taken", &key).len(), 1);
}
