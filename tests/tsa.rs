//! Trusted time (issue 19, item 1) against a real local TSA: `openssl ts -reply` behind a tiny
//! HTTP responder started by the test (RFC 3161 over HTTP POST). Preserve stores and references
//! the token; verify checks it against the pinned CA and reports its time; a token tampered
//! with, of another bundle, replaced, from an untrusted TSA, or contradicting `sealed_at` fails;
//! a TSA that is down or answers garbage only warns, and `custody timestamp` adds the token
//! later; checkpoints are timestamped too; and `openssl ts -verify` alone checks a token with
//! the recipe of docs/format.md §7.1.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::schemas::assert_valid;
use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A test TSA: a CA, a TSA certificate it issued (extendedKeyUsage critical timeStamping), and
/// the `openssl ts -reply` config that signs with it.
struct Tsa {
    dir: PathBuf,
    ca: PathBuf,
    config: PathBuf,
}

/// Run a shell command in `dir`, expecting success.
fn run_sh(dir: &Path, cmd: &str) {
    let (code, _, err) = sh(Command::new("bash").args(["-euo", "pipefail", "-c", cmd]).current_dir(dir));
    assert_eq!(code, 0, "{cmd}: {err}");
}

/// Make a TSA under `dir` with keys of `kind` (`rsa` or `ec`).
fn make_tsa(dir: &Path, kind: &str) -> Tsa {
    require_tool("openssl");
    std::fs::create_dir_all(dir).unwrap();
    let newkey = match kind {
        "rsa" => "-newkey rsa:2048",
        _ => "-newkey ec -pkeyopt ec_paramgen_curve:P-256",
    };
    std::fs::write(dir.join("ext.cnf"), "extendedKeyUsage = critical,timeStamping\n").unwrap();
    run_sh(
        dir,
        &format!(
            "openssl req -x509 {newkey} -nodes -keyout ca.key -out ca.pem -days 3 -subj '/CN=custody test TSA CA' \
               -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign 2>/dev/null
             openssl req {newkey} -nodes -keyout tsa.key -out tsa.csr -subj '/CN=custody test TSA' 2>/dev/null
             openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tsa.pem -days 2 \
               -extfile ext.cnf 2>/dev/null
             echo 01 > serial"
        ),
    );
    let config = dir.join("tsa.cnf");
    std::fs::write(
        &config,
        format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {d}\nserial = $dir/serial\nsigner_cert = $dir/tsa.pem\n\
             signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\n\
             accuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            d = dir.display()
        ),
    )
    .unwrap();
    Tsa { dir: dir.to_path_buf(), ca: dir.join("ca.pem"), config }
}

impl Tsa {
    /// A reply to the DER query `q` (`openssl ts -reply`).
    fn reply(&self, q: &[u8]) -> Vec<u8> {
        let n = rand_name();
        let (qf, rf) = (self.dir.join(format!("{n}.tsq")), self.dir.join(format!("{n}.tsr")));
        std::fs::write(&qf, q).unwrap();
        let (code, _, err) = sh(Command::new("openssl")
            .args(["ts", "-reply", "-config"])
            .arg(&self.config)
            .arg("-queryfile")
            .arg(&qf)
            .arg("-out")
            .arg(&rf));
        assert_eq!(code, 0, "openssl ts -reply: {err}");
        std::fs::read(&rf).unwrap()
    }

    /// A token over `data` asked with the openssl CLI (no custody involved).
    fn token_over(&self, data: &[u8]) -> Vec<u8> {
        let n = rand_name();
        let (df, qf) = (self.dir.join(format!("{n}.bin")), self.dir.join(format!("{n}.q")));
        std::fs::write(&df, data).unwrap();
        let (code, _, err) = sh(Command::new("openssl")
            .args(["ts", "-query", "-sha256", "-cert", "-data"])
            .arg(&df)
            .arg("-out")
            .arg(&qf));
        assert_eq!(code, 0, "openssl ts -query: {err}");
        self.reply(&std::fs::read(&qf).unwrap())
    }
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("r{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// How the responder answers.
#[derive(Clone, Copy)]
enum Mode {
    /// RFC 3161: the TSA's reply.
    Real,
    /// 200 with bytes that are no TimeStampResp (and a terminal escape in them).
    Garbage,
    /// Reads the request and never answers.
    Hang,
}

/// Start an HTTP responder for `tsa` on a free loopback port; its URL. The thread serves until
/// the test process ends.
fn serve(tsa: &Tsa, mode: Mode) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", l.local_addr().unwrap());
    let tsa = Tsa { dir: tsa.dir.clone(), ca: tsa.ca.clone(), config: tsa.config.clone() };
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let Some(body) = read_request(&mut c) else { continue };
            let (ctype, answer) = match mode {
                Mode::Real => ("application/timestamp-reply", tsa.reply(&body)),
                Mode::Garbage => ("application/timestamp-reply", b"\x1b[31mnot a token\x1b[0m".to_vec()),
                Mode::Hang => {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                    continue;
                }
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&answer);
        }
    });
    url
}

/// The body of one HTTP/1.1 POST with a Content-Length (what reqwest sends).
fn read_request(c: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    assert!(head.starts_with("post "), "{head}");
    assert!(head.contains("content-type: application/timestamp-query"), "{head}");
    let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse().unwrap())?;
    while buf.len() < end + len {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[end..end + len].to_vec())
}

/// A URL where nothing listens.
fn down_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/tsa", l.local_addr().unwrap());
    drop(l);
    url
}

fn preserve(env: &Env, extra: &[&str]) -> (Out, String) {
    let fx = fixture_dir();
    let mut args = vec!["preserve", "--incident-dir", s(&fx), "--json"];
    args.extend_from_slice(extra);
    let o = env.run(&args);
    o.expect(0);
    let digest = o.json()["bundle"].as_str().unwrap().to_string();
    (o, digest)
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn token_path(store: &Path, digest: &str) -> PathBuf {
    store.join(format!("timestamps/{}.tsr", hex_of(digest)))
}

/// The payload of the ledger entry at `position`.
fn entry(store: &Path, position: u64) -> serde_json::Value {
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join(format!("ledger/{position:020}.json"))).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn verify(env: &Env, args: &[&str]) -> Out {
    let pubkey = env.pubkey();
    let mut a = vec!["verify", "--json", "--trusted-key", s(&pubkey)];
    a.extend_from_slice(args);
    env.run(&a)
}

/// The raw signature bytes of a bundle's envelope.
fn signature_of(bundle: &Path) -> Vec<u8> {
    let members = bundle_members(bundle);
    let env: serde_json::Value = serde_json::from_slice(&member(&members, "manifest.dsse.json").data).unwrap();
    base64::engine::general_purpose::STANDARD.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap()
}

fn overwrite(p: &Path, bytes: &[u8]) {
    make_writable(p);
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn preserve_stores_and_references_a_token_that_verify_checks_against_the_pinned_tsa() {
    let env = Env::new();
    let tsa = make_tsa(&env.path("tsa"), "rsa");
    let url = serve(&tsa, Mode::Real);
    let started = std::time::Instant::now();
    let (o, digest) = preserve(&env, &["--tsa", &url]);
    let preserve_secs = started.elapsed().as_secs_f64();
    let store = env.store();
    let tok = token_path(&store, &digest);
    let bytes = std::fs::read(&tok).expect("no token stored at timestamps/<hex>.tsr");
    let e = entry(&store, 1);
    assert_eq!(e["timestamp"]["key"], format!("timestamps/{}.tsr", hex_of(&digest)), "{e}");
    assert_eq!(e["timestamp"]["sha256"], sha256_hex(&bytes), "{e}");
    assert_eq!(o.json()["timestamp"]["key"], e["timestamp"]["key"], "{}", o.stdout);
    assert_valid("preserve.v1.schema.json", &o.json());

    // Pinned CA: intact, the attested time reported.
    let ca = s(&tsa.ca);
    let t0 = std::time::Instant::now();
    let v = verify(&env, &["--store", s(&store), &digest, "--trusted-tsa", ca]);
    let with_tsa = t0.elapsed().as_secs_f64();
    v.expect(0);
    let r = v.json();
    assert_valid("verify-report.v1.schema.json", &r);
    assert_eq!(r["timestamp"]["recorded"], true, "{r}");
    assert_eq!(r["timestamp"]["trusted"], true, "{r}");
    assert!(r["timestamp"]["tsa"].as_str().unwrap().contains("custody test TSA"), "{r}");
    let check = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "timestamp").unwrap().clone();
    assert_eq!(check["status"], "pass", "{check}");
    let t0 = std::time::Instant::now();
    verify(&env, &["--store", s(&store), &digest]).expect(0);
    let without = t0.elapsed().as_secs_f64();
    // The token fetch alone: the preserve's `tsa` phase (CUSTODY_TIMINGS=1).
    let fx = fixture_dir();
    let timed = env
        .cmd(&["preserve", "--incident-dir", s(&fx), "--note", "timed", "--tsa", &url])
        .env("CUSTODY_TIMINGS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&timed.stderr).into_owned();
    let phase = err.lines().find(|l| l.contains("tsa") && l.contains("seconds")).unwrap_or("-").to_string();
    eprintln!(
        "measure: preserve with TSA {preserve_secs:.3}s (tsa phase: {phase}); verify with token {with_tsa:.3}s, without pins {without:.3}s"
    );

    // No pin: still intact, but the token's time is not trusted (a warning).
    let v = verify(&env, &["--store", s(&store), &digest]);
    v.expect(0);
    let warned = v.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["level"] == "warning" && f["kind"] == "timestamp_untrusted");
    assert!(warned, "{}", v.stdout);

    // Another CA pinned: the token's TSA is not trusted (an error).
    let other = make_tsa(&env.path("other"), "rsa");
    let v = verify(&env, &["--store", s(&store), &digest, "--trusted-tsa", s(&other.ca)]);
    v.expect(1);
    assert_eq!(v.finding_kinds(), vec!["timestamp_untrusted"], "{}", v.stdout);

    // The whole ledger: each bundle's line carries its attested time.
    let v = verify(&env, &["--store", s(&store), "--all", "--trusted-tsa", ca]);
    v.expect(0);
    assert!(v.json()["bundles"][0]["timestamp"].is_string(), "{}", v.stdout);
    assert_valid("verify-report.v1.schema.json", &v.json());

    // The bundle file with its token, away from the store.
    let bundle = store.join(format!("bundles/{}.tar.zst", hex_of(&digest)));
    let v = verify(&env, &[s(&bundle), "--timestamp", s(&tok), "--trusted-tsa", ca]);
    v.expect(0);
    assert_eq!(v.json()["timestamp"]["trusted"], true, "{}", v.stdout);
    let human = env.run(&[
        "verify",
        s(&bundle),
        "--timestamp",
        s(&tok),
        "--trusted-tsa",
        ca,
        "--trusted-key",
        s(&env.pubkey()),
    ]);
    human.expect(0);
    assert!(human.stdout.contains("timestamped at"), "{}", human.stdout);
}

#[test]
fn an_ecdsa_p256_tsa_is_checked_too() {
    let env = Env::new();
    let tsa = make_tsa(&env.path("tsa"), "ec");
    let url = serve(&tsa, Mode::Real);
    let (_, digest) = preserve(&env, &["--tsa", &url]);
    let v = verify(&env, &["--store", s(&env.store()), &digest, "--trusted-tsa", s(&tsa.ca)]);
    v.expect(0);
    assert_eq!(v.json()["timestamp"]["trusted"], true, "{}", v.stdout);
}

#[test]
fn tampered_swapped_and_replaced_tokens_fail() {
    let env = Env::new();
    let tsa = make_tsa(&env.path("tsa"), "rsa");
    let url = serve(&tsa, Mode::Real);
    let (_, a) = preserve(&env, &["--tsa", &url, "--note", "a"]);
    let (_, b) = preserve(&env, &["--tsa", &url, "--note", "b"]);
    let store = env.store();
    let ca = s(&tsa.ca);
    let (ta, tb) = (token_path(&store, &a), token_path(&store, &b));
    let orig_a = std::fs::read(&ta).unwrap();

    // One byte of the TSTInfo's genTime changed: the CMS signature no longer holds, and the
    // object is not the one the entry references.
    let mut tampered = orig_a.clone();
    let at = tampered.windows(2).position(|w| w == [0x18, 0x0f]).expect("no GeneralizedTime in the token") + 2;
    tampered[at + 3] ^= 0x01;
    overwrite(&ta, &tampered);
    let v = verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca]);
    v.expect(1);
    let kinds = v.finding_kinds();
    assert!(kinds.contains(&"timestamp_invalid".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"timestamp_mismatch".to_string()), "{kinds:?}");
    assert_valid("verify-report.v1.schema.json", &v.json());

    // B's token at A's key: another bundle's signature.
    overwrite(&ta, &std::fs::read(&tb).unwrap());
    let v = verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca]);
    v.expect(1);
    let kinds = v.finding_kinds();
    assert!(kinds.contains(&"timestamp_invalid".to_string()), "{kinds:?}");
    assert!(v.stdout.contains("message imprint"), "{}", v.stdout);

    // Another valid token over A's own signature (asked with openssl alone): valid, but not
    // the object the ledger entry references.
    let bundle_a = store.join(format!("bundles/{}.tar.zst", hex_of(&a)));
    let other = tsa.token_over(&signature_of(&bundle_a));
    overwrite(&ta, &other);
    let v = verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca]);
    v.expect(1);
    assert_eq!(v.finding_kinds(), vec!["timestamp_mismatch"], "{}", v.stdout);

    // Deleted: the referenced token is missing.
    std::fs::remove_file(&ta).unwrap();
    let v = verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca]);
    v.expect(1);
    assert_eq!(v.finding_kinds(), vec!["timestamp_missing"], "{}", v.stdout);

    // The tampered token of a bare file fails alone.
    let tfile = env.path("tampered.tsr");
    std::fs::write(&tfile, &tampered).unwrap();
    let v = verify(&env, &[s(&bundle_a), "--timestamp", s(&tfile), "--trusted-tsa", ca]);
    v.expect(1);
    assert_eq!(v.finding_kinds(), vec!["timestamp_invalid"], "{}", v.stdout);
    // B stays intact throughout.
    verify(&env, &["--store", s(&store), &b, "--trusted-tsa", ca]).expect(0);
}

#[test]
fn a_sealing_time_set_back_contradicts_the_token() {
    // The test clock (SOURCE_DATE_EPOCH) says 2020; the TSA says now.
    let env = Env::with_epoch(1_600_000_000);
    let tsa = make_tsa(&env.path("tsa"), "rsa");
    let url = serve(&tsa, Mode::Real);
    let (_, digest) = preserve(&env, &["--tsa", &url]);
    let v = verify(&env, &["--store", s(&env.store()), &digest, "--trusted-tsa", s(&tsa.ca)]);
    v.expect(1);
    let kinds = v.finding_kinds();
    assert!(kinds.iter().all(|k| k == "time_contradicted"), "{kinds:?}");
    assert!(v.stdout.contains("set back"), "{}", v.stdout);
    assert_valid("verify-report.v1.schema.json", &v.json());
}

#[test]
fn a_tsa_down_or_answering_garbage_does_not_block_preserve_and_timestamp_adds_the_token_later() {
    let env = Env::new();
    let tsa = make_tsa(&env.path("tsa"), "rsa");
    let store = env.store();

    // Down: preserve succeeds, warns, and records no token.
    let t0 = std::time::Instant::now();
    let (o, a) = preserve(&env, &["--tsa", &down_url()]);
    eprintln!("measure: preserve with the TSA down {:.3}s", t0.elapsed().as_secs_f64());
    assert!(o.stderr.contains("warning: the bundle has no RFC 3161 timestamp"), "{}", o.stderr);
    assert!(entry(&store, 1).get("timestamp").is_none());
    assert!(!token_path(&store, &a).exists());

    // Garbage: the same, and nothing of the answer reaches the terminal raw.
    let garbage = serve(&tsa, Mode::Garbage);
    let (o, b) = preserve(&env, &["--tsa", &garbage, "--note", "b"]);
    assert!(o.stderr.contains("no usable timestamp"), "{}", o.stderr);
    assert!(!o.stderr.contains('\x1b'), "{:?}", o.stderr);
    assert!(!token_path(&store, &b).exists());

    // A TSA that accepts the request and never answers: the preserve waits at most the
    // timeout (10 s), then goes on without a token.
    let hang = serve(&tsa, Mode::Hang);
    let t0 = std::time::Instant::now();
    let (o, c) = preserve(&env, &["--tsa", &hang, "--note", "c"]);
    let waited = t0.elapsed().as_secs_f64();
    eprintln!("measure: preserve with a TSA that never answers {waited:.3}s");
    assert!(waited < 30.0, "{waited}");
    assert!(o.stderr.contains("warning: the bundle has no RFC 3161 timestamp"), "{}", o.stderr);
    assert!(!token_path(&store, &c).exists());

    // A store that requires tokens: both bundles fail for want of one.
    let ca = s(&tsa.ca);
    let v = verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca, "--require-timestamp"]);
    v.expect(1);
    assert_eq!(v.finding_kinds(), vec!["timestamp_missing"], "{}", v.stdout);
    // ... also when the store config says so.
    let cfg = env.path("store-config.json");
    std::fs::write(&cfg, br#"{"require_timestamp": true}"#).unwrap();
    verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca, "--store-config", s(&cfg)]).expect(1);
    // Without the requirement, a bundle without a token is intact.
    verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca]).expect(0);

    // `custody timestamp` adds both, found later by their keys (the TSA from the config).
    let url = serve(&tsa, Mode::Real);
    std::fs::write(&cfg, format!(r#"{{"require_timestamp": true, "tsa": "{url}"}}"#)).unwrap();
    let o = env.run(&["timestamp", "--store", s(&store), "--store-config", s(&cfg)]);
    o.expect(0);
    assert!(o.stderr.contains("3 token(s) added"), "{}", o.stderr);
    assert!(token_path(&store, &a).exists() && token_path(&store, &b).exists() && token_path(&store, &c).exists());
    let v = verify(&env, &["--store", s(&store), &a, "--trusted-tsa", ca, "--store-config", s(&cfg)]);
    v.expect(0);
    assert_eq!(v.json()["timestamp"]["recorded"], false, "{}", v.stdout);
    let human = env.run(&["verify", "--store", s(&store), &a, "--trusted-tsa", ca, "--trusted-key", s(&env.pubkey())]);
    human.expect(0);
    assert!(human.stdout.contains("added later"), "{}", human.stdout);
    verify(&env, &["--store", s(&store), "--all", "--trusted-tsa", ca, "--require-timestamp"]).expect(0);
    // Nothing left to add.
    let o = env.run(&["timestamp", "--store", s(&store), "--tsa", &url]);
    o.expect(0);
    assert!(o.stderr.contains("0 token(s) added"), "{}", o.stderr);
    // The TSA down at `custody timestamp`: exit 1, nothing written.
    let env2 = Env::new();
    preserve(&env2, &[]);
    let o = env2.run(&["timestamp", "--store", s(&env2.store()), "--tsa", &down_url()]);
    o.expect(1);
}

#[test]
fn a_checkpoint_is_timestamped_beside_its_file() {
    let env = Env::new();
    let tsa = make_tsa(&env.path("tsa"), "rsa");
    let url = serve(&tsa, Mode::Real);
    preserve(&env, &[]);
    let store = env.store();
    let cp = env.path("cp");
    env.run(&["checkpoint", "--store", s(&store), "--out", s(&cp), "--tsa", &url]).expect(0);
    let tsr = env.path("cp.tsr");
    assert!(tsr.exists());
    let ca = s(&tsa.ca);
    let v = verify(&env, &["--store", s(&store), "--all", "--checkpoint", s(&cp), "--trusted-tsa", ca]);
    v.expect(0);
    // Another TSA pinned: the checkpoint's token is not trusted.
    let other = make_tsa(&env.path("other"), "rsa");
    let v = verify(&env, &["--store", s(&store), "--all", "--checkpoint", s(&cp), "--trusted-tsa", s(&other.ca)]);
    v.expect(1);
    assert_eq!(v.finding_kinds(), vec!["timestamp_untrusted"], "{}", v.stdout);
    // openssl checks it over the note's first signature (after its 4-byte key ID).
    let text = std::fs::read_to_string(&cp).unwrap();
    let line = text.lines().find(|l| l.starts_with('\u{2014}')).unwrap();
    let sig = base64::engine::general_purpose::STANDARD.decode(line.rsplit(' ').next().unwrap()).unwrap();
    let sigf = env.path("cp.sig");
    std::fs::write(&sigf, &sig[4..]).unwrap();
    let (code, out, err) =
        sh(Command::new("openssl").args(["ts", "-verify", "-data", s(&sigf), "-in", s(&tsr), "-CAfile", ca]));
    assert_eq!(code, 0, "{}{err}", String::from_utf8_lossy(&out));
}

#[test]
fn openssl_ts_verify_alone_checks_a_token_with_the_documented_recipe() {
    require_tool("jq");
    require_tool("zstd");
    let env = Env::new();
    let tsa = make_tsa(&env.path("tsa"), "rsa");
    let url = serve(&tsa, Mode::Real);
    let (_, a) = preserve(&env, &["--tsa", &url, "--note", "a"]);
    let (_, b) = preserve(&env, &["--tsa", &url, "--note", "b"]);
    let store = env.store();
    let script = repo().join("tests/interop/timestamp-verify.sh");
    let bundle_a = store.join(format!("bundles/{}.tar.zst", hex_of(&a)));
    let run = |tsr: &Path, ca: &Path| {
        let (code, out, err) = sh(Command::new("bash").arg(&script).arg(&bundle_a).arg(tsr).arg(ca));
        (code, format!("{}{err}", String::from_utf8_lossy(&out)))
    };
    let (code, out) = run(&token_path(&store, &a), &tsa.ca);
    assert_eq!(code, 0, "the openssl recipe refused a good token:\n{out}");
    assert!(out.contains("Verification: OK") && out.contains("Time stamp:"), "{out}");
    // Another bundle's token, or another CA: openssl refuses.
    assert_ne!(run(&token_path(&store, &b), &tsa.ca).0, 0);
    let other = make_tsa(&env.path("other"), "rsa");
    assert_ne!(run(&token_path(&store, &a), &other.ca).0, 0);
}
