//! Verifying straight from S3 (`store::ranged`), against a real `moto_server` behind a proxy
//! that records (and breaks) requests: a remote bundle is verified from ranged GETs as they
//! arrive, with no local copy; every range is pinned to one object (version and ETag); a
//! range cut short is fetched again, or reported as a read error naming the key and the
//! range, never as an altered bundle; `verify --all` reads two bundles at once and reports
//! in ledger order.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store_util::{json, random_file, raw_http, text, Action, FaultProxy, Moto, RequestHead};

/// The first range is 8 MiB and the second 16 MiB (`store::ranged::plan`).
const SECOND_RANGE: &str = "bytes=8388608-25165823";
/// How a request for the second range, or for the rest of it, ends.
const SECOND_RANGE_END: &str = "-25165823";

/// A store with one bundle of ~24 MiB (three ranges: 8 MiB, 16 MiB, the rest) in bucket
/// `bucket`.
struct Fixture {
    moto: Moto,
    home: tempfile::TempDir,
    bucket: &'static str,
    /// Its digest (hex).
    hex: String,
}

impl Fixture {
    fn new(bucket: &'static str, versioned: bool) -> Fixture {
        let moto = Moto::start();
        moto.create_bucket(bucket, versioned);
        let home = tempfile::tempdir().unwrap();
        let o = run_in(home.path(), &[], &["keygen", "--out", home.path().join("keys/default.key").to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        let dir = big_incident(home.path(), "big", 24, 5);
        let hex = preserve(&moto.endpoint, home.path(), &url(bucket), &dir);
        Fixture { moto, home, bucket, hex }
    }

    fn key(&self) -> String {
        format!("ev/bundles/{}.tar.zst", self.hex)
    }

    /// `custody verify --store URL DIGEST --json` through `endpoint`, with `extra` env.
    fn verify(&self, endpoint: &str, extra: &[(&str, String)]) -> std::process::Output {
        let mut env = Moto::env(endpoint);
        env.extend(extra.iter().cloned());
        run_in(self.home.path(), &env, &["verify", "--store", &url(self.bucket), &self.hex, "--json"])
    }
}

fn url(bucket: &str) -> String {
    format!("s3://{bucket}/ev")
}

fn run_in(home: &Path, env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    crate::store_util::run(home, env, args)
}

/// An incident of `mib` MiB of incompressible evidence.
fn big_incident(root: &Path, name: &str, mib: usize, seed: u64) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(d.join("attachments")).unwrap();
    random_file(&d.join("attachments/heap.bin"), mib, seed);
    std::fs::write(d.join("attachments/note.txt"), format!("{name}\n")).unwrap();
    d
}

/// Preserve `dir` into `url` (moto at `endpoint`); the bundle digest (hex).
fn preserve(endpoint: &str, home: &Path, url: &str, dir: &Path) -> String {
    let o = run_in(
        home,
        &Moto::env(endpoint),
        &["preserve", "--store", url, "--incident-dir", dir.to_str().unwrap(), "--no-analyze", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    json(&o)["bundle"].as_str().unwrap().trim_start_matches("sha256:").to_owned()
}

/// A header's value in a request head (names compared case-insensitively).
fn header(r: &RequestHead, name: &str) -> Option<String> {
    r.head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// Is this a GET of the bundle's object?
fn bundle_get(r: &RequestHead, hex: &str) -> bool {
    r.method == "GET" && r.target.contains(&format!("/bundles/{hex}.tar.zst"))
}

/// A proxy in front of moto that records every request head and asks `rule` what to do.
fn recording_proxy(
    moto: &Moto,
    rule: impl Fn(&RequestHead, usize) -> Action + Send + Sync + 'static,
) -> (FaultProxy, Arc<Mutex<Vec<RequestHead>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let p = FaultProxy::start(moto.addr, move |r, n| {
        s2.lock().unwrap().push(r.clone());
        rule(r, n)
    });
    (p, seen)
}

fn check<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {r}"))
}

/// (a) A good bundle is verified from ranged GETs, with no local copy: `TMPDIR` names a
/// directory that does not exist, so any temporary file would fail the run (the download to a
/// temporary file it replaces did).
#[test]
fn s3_verify_streams_a_bundle_from_ranged_gets_without_a_local_copy() {
    let f = Fixture::new("stream", true);
    let (proxy, seen) = recording_proxy(&f.moto, |_, _| Action::Forward);
    let no_tmp = f.home.path().join("no-such-tmp");
    let o = f.verify(&proxy.endpoint, &[("TMPDIR", no_tmp.display().to_string())]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&o);
    assert_eq!(r["verdict"], "intact", "{r}");
    assert_eq!(check(&r, "bundle_digest")["status"], "pass", "{r}");
    assert!(!no_tmp.exists());
    // Several ranged GETs, each at the bundle's first version.
    let gets: Vec<RequestHead> = seen.lock().unwrap().iter().filter(|h| bundle_get(h, &f.hex)).cloned().collect();
    let ranges: std::collections::BTreeSet<String> = gets.iter().filter_map(|h| header(h, "range")).collect();
    assert!(ranges.len() >= 3, "the bundle was not read in ranges: {ranges:?}");
    assert!(ranges.contains(SECOND_RANGE), "{ranges:?}");
    assert!(gets.iter().all(|h| header(h, "range").is_some()), "an unranged GET of the bundle");
    let versions: std::collections::BTreeSet<String> =
        gets.iter().filter_map(|h| h.target.split("versionId=").nth(1).map(String::from)).collect();
    assert_eq!(versions.len(), 1, "every range at one version: {versions:?}");
    assert!(gets.iter().all(|h| h.target.contains("versionId=")), "a range read without its version");
}

/// (b) A bundle whose bytes were altered in the store (an unversioned bucket, where an
/// overwrite replaces the object) is still reported altered, through the ranged reads.
#[test]
fn s3_verify_streaming_reports_a_bundle_altered_in_the_store() {
    let f = Fixture::new("altered", false);
    let key = f.key();
    let (s, _, mut body) = raw_http(f.moto.addr, "GET", &format!("/{}/{key}", f.bucket), &[], b"").unwrap();
    assert_eq!(s, 200);
    // A byte flipped in the second range.
    body[17 << 20] ^= 0x01;
    let (s, _, _) = raw_http(f.moto.addr, "PUT", &format!("/{}/{key}", f.bucket), &[], &body).unwrap();
    assert_eq!(s, 200);
    let (proxy, seen) = recording_proxy(&f.moto, |_, _| Action::Forward);
    let o = f.verify(&proxy.endpoint, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = json(&o);
    assert_eq!(r["verdict"], "failed", "{r}");
    assert_eq!(check(&r, "bundle_digest")["status"], "fail", "{r}");
    let kinds = crate::util::finding_kinds(&r);
    assert!(kinds.iter().any(|k| k == "bundle_digest_mismatch"), "{kinds:?}");
    let ranged = seen.lock().unwrap().iter().filter(|h| bundle_get(h, &f.hex) && header(h, "range").is_some()).count();
    assert!(ranged >= 3, "not read in ranges ({ranged})");
}

/// (c) A range whose answer is cut off (the connection dropped mid-body) or cut short (a body
/// that looks complete) once is fetched again: the bundle verifies. Cut short every time, it
/// is an error naming the key and the byte range, exit 2, never an altered bundle.
#[test]
fn s3_verify_a_range_cut_short_is_fetched_again_or_reported_as_a_read_error() {
    let f = Fixture::new("faults", true);
    for (what, action) in [("cut off", Action::CutAnswer(1 << 20)), ("cut short", Action::ShortAnswer(1 << 20))] {
        let hex = f.hex.clone();
        let hits = Arc::new(Mutex::new(0usize));
        let h2 = hits.clone();
        let (proxy, _) = recording_proxy(&f.moto, move |r, _| {
            // The second range, or what object_store asks again of it after a cut.
            if bundle_get(r, &hex) && header(r, "range").is_some_and(|v| v.ends_with(SECOND_RANGE_END)) {
                let mut n = h2.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    return action;
                }
            }
            Action::Forward
        });
        let o = f.verify(&proxy.endpoint, &[]);
        assert_eq!(o.status.code(), Some(0), "{what} once: {}", text(&o));
        assert_eq!(json(&o)["verdict"], "intact");
        assert!(*hits.lock().unwrap() >= 2, "{what}: the range was not fetched again");
    }
    // Every answer to the second range cut short, or cut off (with one retry per request).
    let cfg = f.home.path().join("store.json");
    std::fs::write(&cfg, r#"{"max_retries": 1, "retry_timeout_secs": 20}"#).unwrap();
    for action in [Action::ShortAnswer(1 << 20), Action::CutAnswer(1 << 20)] {
        let hex = f.hex.clone();
        let (proxy, _) = recording_proxy(&f.moto, move |r, _| {
            if bundle_get(r, &hex) && header(r, "range").is_some_and(|v| v.ends_with(SECOND_RANGE_END)) {
                return action;
            }
            Action::Forward
        });
        let o = f.verify(&proxy.endpoint, &[("CUSTODY_STORE_CONFIG", cfg.display().to_string())]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{action:?}: {t}");
        assert!(t.contains(&format!("bytes 8388608-25165823 of s3://faults/ev/bundles/{}.tar.zst", f.hex)), "{t}");
        assert!(t.contains("NOT verified"), "{t}");
        for altered in ["\"verdict\"", "bundle_digest_mismatch", "archive_corrupt", "altered"] {
            assert!(!t.contains(altered), "a read failure reported as {altered}: {t}");
        }
        assert!(o.stdout.is_empty(), "a report was written: {t}");
    }
}

/// (d) The object overwritten by a second version while it is read. Versioned bucket: every
/// range is read at the first version, so the bundle verifies and no byte of the second
/// version is read. Unversioned bucket: the ranges are pinned by ETag, the server refuses the
/// rest, and that is an error saying the object changed — never a mix verified as one bundle.
#[test]
fn s3_verify_an_object_overwritten_while_read_is_never_read_as_a_mix() {
    for versioned in [true, false] {
        let bucket = if versioned { "pinned" } else { "unpinned" };
        let f = Fixture::new(bucket, versioned);
        let key = f.key();
        let (s, _, mut other) = raw_http(f.moto.addr, "GET", &format!("/{bucket}/{key}"), &[], b"").unwrap();
        assert_eq!(s, 200);
        other[9 << 20] ^= 0x01; // in the second range
        let (hex, addr) = (f.hex.clone(), f.moto.addr);
        let put_path = format!("/{bucket}/{key}");
        let overwritten = Arc::new(Mutex::new(false));
        let o2 = overwritten.clone();
        let (proxy, seen) = recording_proxy(&f.moto, move |r, _| {
            // When the second range is first asked for (the first range is being read), put
            // the other bytes over the key; then let the request through.
            if bundle_get(r, &hex) && header(r, "range").as_deref() == Some(SECOND_RANGE) {
                let mut done = o2.lock().unwrap();
                if !*done {
                    let (s, _, _) = raw_http(addr, "PUT", &put_path, &[], &other).unwrap();
                    assert_eq!(s, 200);
                    *done = true;
                }
            }
            Action::Forward
        });
        let o = f.verify(&proxy.endpoint, &[]);
        let t = text(&o);
        assert!(*overwritten.lock().unwrap(), "the overwrite did not happen");
        if versioned {
            assert_eq!(o.status.code(), Some(0), "{t}");
            assert_eq!(check(&json(&o), "bundle_digest")["status"], "pass", "{t}");
            let gets: Vec<RequestHead> =
                seen.lock().unwrap().iter().filter(|h| bundle_get(h, &f.hex)).cloned().collect();
            assert!(gets.len() >= 3 && gets.iter().all(|h| h.target.contains("versionId=")), "{gets:?}");
            // The overwrite is there, and an audit reports it.
            let o = run_in(
                f.home.path(),
                &Moto::env(&f.moto.endpoint),
                &["verify", "--store", &url(bucket), &f.hex, "--json"],
            );
            assert!(crate::util::finding_kinds(&json(&o)).iter().any(|k| k == "later_version"), "{}", text(&o));
        } else {
            assert_eq!(o.status.code(), Some(2), "{t}");
            assert!(t.contains("changed while it was being read"), "{t}");
            assert!(t.contains("bytes 8388608-25165823"), "{t}");
            assert!(!t.contains("\"verdict\"") && !t.contains("bundle_digest_mismatch"), "{t}");
            // Every range after the first was pinned by the first answer's ETag.
            let gets: Vec<RequestHead> =
                seen.lock().unwrap().iter().filter(|h| bundle_get(h, &f.hex)).cloned().collect();
            let later: Vec<&RequestHead> =
                gets.iter().filter(|h| header(h, "range").is_some_and(|v| !v.starts_with("bytes=0-"))).collect();
            assert!(!later.is_empty() && later.iter().all(|h| header(h, "if-match").is_some()), "{gets:?}");
        }
    }
}

/// (e) `verify --all` reads two bundles at once (the second bundle's first GET is sent while
/// the first bundle's is held back by the proxy) and still reports exactly what it reports
/// when nothing is held back: the bundles in ledger order, one finding list, the same JSON.
#[test]
fn s3_verify_all_reads_bundles_concurrently_and_reports_in_ledger_order() {
    let moto = Moto::start();
    // Unversioned: an overwrite replaces the bytes read, so a bundle fails in the middle.
    moto.create_bucket("audit", false);
    let home = tempfile::tempdir().unwrap();
    let o = run_in(home.path(), &[], &["keygen", "--out", home.path().join("keys/default.key").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let u = url("audit");
    let mut hexes = Vec::new();
    for (i, mib) in [10usize, 1, 3].into_iter().enumerate() {
        let dir = big_incident(home.path(), &format!("inc{i}"), mib, 40 + i as u64);
        hexes.push(preserve(&moto.endpoint, home.path(), &u, &dir));
    }
    // The second bundle altered: its findings come between the others' lines.
    let key1 = format!("ev/bundles/{}.tar.zst", hexes[1]);
    let (_, _, mut b1) = raw_http(moto.addr, "GET", &format!("/audit/{key1}"), &[], b"").unwrap();
    b1[1000] ^= 1;
    let (s, _, _) = raw_http(moto.addr, "PUT", &format!("/audit/{key1}"), &[], &b1).unwrap();
    assert_eq!(s, 200);

    let audit = |endpoint: &str| {
        let o = run_in(home.path(), &Moto::env(endpoint), &["verify", "--store", &u, "--all", "--json"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let mut r = json(&o);
        r.as_object_mut().unwrap().remove("verified_at");
        r
    };
    let plain = audit(&moto.endpoint);
    let order: Vec<String> = plain["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["bundle"].as_str().unwrap().trim_start_matches("sha256:").to_owned())
        .collect();
    assert_eq!(order, hexes, "bundles in ledger order");

    // The first bundle's first GET held back 3 s: the second bundle's first GET must arrive
    // meanwhile (two bundles in flight), and the report must not change.
    let (first, second) = (hexes[0].clone(), hexes[1].clone());
    let times: Arc<Mutex<Vec<(&'static str, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let t2 = times.clone();
    let proxy = FaultProxy::start(moto.addr, move |r, _| {
        if bundle_get(r, &first) && header(r, "range").is_some_and(|v| v.starts_with("bytes=0-")) {
            t2.lock().unwrap().push(("first held", Instant::now()));
            std::thread::sleep(Duration::from_secs(3));
            t2.lock().unwrap().push(("first released", Instant::now()));
        }
        if bundle_get(r, &second) {
            t2.lock().unwrap().push(("second asked", Instant::now()));
        }
        Action::Forward
    });
    let held = audit(&proxy.endpoint);
    assert_eq!(held, plain, "the report depends on which download finished first");
    let times = times.lock().unwrap().clone();
    let at = |what: &str| {
        times.iter().find(|(w, _)| *w == what).map(|(_, t)| *t).unwrap_or_else(|| panic!("{what}: {times:?}"))
    };
    assert!(at("second asked") < at("first released"), "the second bundle waited for the first: {times:?}");
}

/// Issue 22: opening a stored bundle (`extract --store`, `Bundle::open_in_store`) verified it
/// from ranged GETs and then downloaded it again in full to read its files. Now the bytes are
/// downloaded once: the ranges, which together cover the object exactly, and no other GET of
/// it; the files come out whole.
#[test]
fn regression_s3_extract_downloads_the_bundle_once() {
    let f = Fixture::new("once", true);
    let (proxy, seen) = recording_proxy(&f.moto, |_, _| Action::Forward);
    let env = Moto::env(&proxy.endpoint);
    let to = f.home.path().join("out");
    let o = run_in(
        f.home.path(),
        &env,
        &["extract", "--store", &url(f.bucket), &f.hex, "--to", to.to_str().unwrap(), "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let want = std::fs::read(f.home.path().join("big/attachments/heap.bin")).unwrap();
    assert!(std::fs::read(to.join("attachments/heap.bin")).unwrap() == want, "extracted bytes differ");
    let gets: Vec<RequestHead> = seen.lock().unwrap().iter().filter(|h| bundle_get(h, &f.hex)).cloned().collect();
    assert!(gets.iter().all(|h| header(h, "range").is_some()), "an unranged GET of the bundle: a second download");
    // Each byte of the object requested once.
    let mut spans: Vec<(u64, u64)> = gets
        .iter()
        .filter_map(|h| {
            let r = header(h, "range")?;
            let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    spans.sort();
    let mut next = 0u64;
    for (a, b) in &spans {
        assert_eq!(*a, next, "ranges overlap or leave a gap: {spans:?}");
        next = b + 1;
    }
    let (s, _, body) = raw_http(f.moto.addr, "GET", &format!("/{}/{}", f.bucket, f.key()), &[], b"").unwrap();
    assert_eq!(s, 200);
    assert!(next >= body.len() as u64, "the ranges stop at {next} of {}", body.len());
}
