//! Test fixtures for the storage tiers: a real S3-protocol server (`moto_server`) on a free
//! loopback port, a loopback fault-injection proxy in front of it, raw HTTP for bucket setup
//! (moto does not check signatures), and helpers to run the `custody` binary.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use custody::store::config::StoreOptions;
use custody::store::Store;

/// Credentials moto accepts (it does not check them).
pub const KEY_ID: &str = "custody-test";
/// Secret.
pub const SECRET: &str = "custody-test-secret";
/// Region.
pub const REGION: &str = "us-east-1";

static ENV: Once = Once::new();
static MOTO_IMPORTS: Once = Once::new();

/// Library use of S3 stores reads credentials from the environment: set test ones once.
pub fn set_aws_env() {
    ENV.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        std::env::set_var("AWS_REGION", REGION);
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
    });
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `moto_server` process, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The address.
    pub addr: SocketAddr,
}

impl Moto {
    /// Start moto's server (`moto_atomic.py -H 127.0.0.1 -p PORT`) and wait until it answers.
    /// Panics with install instructions when `python3` cannot import moto: this tier is never
    /// skipped.
    pub fn start() -> Moto {
        set_aws_env();
        MOTO_IMPORTS.call_once(|| {
            let ok = Command::new("python3")
                .args(["-c", "import moto.server, moto.s3.responses"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "`python3 -c 'import moto.server'` failed: the S3 test tier needs moto for python3.\n\
                 Install it with:  python3 -m pip install 'moto[server]'\n\
                 (.ci/run does this; the S3 tests are never skipped)"
            );
        });
        for _ in 0..5 {
            let port = free_port();
            // moto's own entry point behind a wrapper that makes conditional writes atomic,
            // as they are on AWS (see the script's docstring).
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/store_util/moto_atomic.py");
            let child = match Command::new("python3")
                .args([script, "-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot start moto ({e}): the S3 test tier needs `python3` with moto installed.\n\
                     Install it with:  python3 -m pip install 'moto[server]'\n\
                     (.ci/run does this; the S3 tests are never skipped)"
                ),
            };
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut m = Moto { child, endpoint: format!("http://{addr}"), addr };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = m.child.try_wait() {
                    break; // port taken by someone else: try another
                }
                if let Ok((200, _, _)) = raw_http(addr, "GET", "/", &[], b"") {
                    return m;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = m.child.kill();
            let _ = m.child.wait();
        }
        panic!("moto_server did not become ready on a loopback port within 30 s");
    }

    /// Create a bucket; with `lock`, Object Lock enabled (which also enables versioning).
    pub fn create_bucket(&self, name: &str, lock: bool) {
        let h: &[(&str, &str)] = if lock { &[("x-amz-bucket-object-lock-enabled", "true")] } else { &[] };
        let (status, _, body) = raw_http(self.addr, "PUT", &format!("/{name}"), h, b"").unwrap();
        assert_eq!(status, 200, "create bucket {name}: {}", String::from_utf8_lossy(&body));
    }

    /// Store options pointing at `endpoint` (the server, or a proxy in front of it).
    pub fn options(endpoint: &str) -> StoreOptions {
        StoreOptions {
            endpoint: Some(endpoint.into()),
            region: Some(REGION.into()),
            allow_http: Some(true),
            ..Default::default()
        }
    }

    /// Open `s3://bucket/prefix` on this server.
    pub fn store(&self, bucket: &str, prefix: &str, opts: StoreOptions) -> Store {
        let o = Moto::options(&self.endpoint).merged(opts);
        Store::open_with(&format!("s3://{bucket}/{prefix}"), &o).unwrap()
    }

    /// Environment for a `custody` child process talking to `endpoint`.
    pub fn env(endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ENDPOINT", endpoint.into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request with `Connection: close`: (status, head, body).
pub fn raw_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    // moto refuses anonymous deletes, but does not check signatures: any SigV4-shaped header passes.
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/{REGION}/s3/aws4_request, SignedHeaders=host, Signature=00"
    );
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = buf.get(split + 4..).unwrap_or_default().to_vec();
    Ok((status, head, body))
}

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pass it through.
    Forward,
    /// Close the connection without answering (a reset).
    Drop,
    /// Answer 503 Slow Down without forwarding.
    Fail503,
    /// Forward it (the server acts on it) but answer 503 to the client: the "lost answer".
    ForwardThen503,
    /// Forward it with one byte of its body flipped (a corruption on the way).
    CorruptBody,
    /// Forward it without its `x-amz-object-lock-*` headers (a server that ignores them).
    StripLockHeaders,
    /// Answer 400 BadDigest without forwarding (a server that verifies checksums refusing one).
    BadDigest,
    /// Forward it, and add to the answer an `x-amz-checksum-sha256` echo that is not the one
    /// sent (a server saying it stored other bytes).
    WrongChecksumEcho,
    /// Read the whole body first and check it against its `x-amz-checksum-sha256`, as AWS
    /// does: a mismatch is answered 400 BadDigest and not forwarded, a match is forwarded.
    /// (Put this proxy behind one that corrupts, and moto behaves like a verifying server.)
    VerifyChecksum,
    /// Forward it with a byte of its body flipped at `n` bytes into the body.
    CorruptAt(usize),
    /// Forward it, pass on the answer's head and the first `n` bytes of its body, then close
    /// the connection (a connection dropped mid-body: the client sees a body shorter than its
    /// Content-Length).
    CutAnswer(usize),
    /// Forward it, and pass on an answer whose Content-Length is rewritten to `n` with only
    /// the first `n` bytes of its body (a body cut short that still looks complete).
    ShortAnswer(usize),
}

/// The first line and headers of a request, as seen by the proxy.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The whole request head (request line and headers).
    pub head: String,
}

type Rule = dyn Fn(&RequestHead, usize) -> Action + Send + Sync;

/// A loopback TCP proxy in front of an HTTP server that can drop or fail requests.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    stop: Arc<AtomicBool>,
    /// Requests seen.
    pub seen: Arc<AtomicUsize>,
    /// Requests not forwarded or answered falsely.
    pub faults: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl FaultProxy {
    /// Start a proxy to `upstream`; `rule(head, n)` decides for the n-th request (0-based).
    pub fn start(upstream: SocketAddr, rule: impl Fn(&RequestHead, usize) -> Action + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(AtomicUsize::new(0));
        let rule: Arc<Rule> = Arc::new(rule);
        let (stop2, seen2, faults2) = (stop.clone(), seen.clone(), faults.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (rule, seen, faults) = (rule.clone(), seen2.clone(), faults2.clone());
                        std::thread::spawn(move || {
                            let _ = handle(client, upstream, &*rule, &seen, &faults);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { endpoint: format!("http://{addr}"), stop, seen, faults, addr }
    }
}

impl FaultProxy {
    /// Its address (to chain another proxy in front of it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    rule: &Rule,
    seen: &AtomicUsize,
    faults: &AtomicUsize,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    // Read the request head.
    let mut head = Vec::new();
    let mut byte = [0u8; 4096];
    let split = loop {
        let n = client.read(&mut byte)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if head.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&head[..split]).into_owned();
    let mut first = text.lines().next().unwrap_or("").split_whitespace();
    let req = RequestHead {
        method: first.next().unwrap_or("").to_string(),
        target: first.next().unwrap_or("").to_string(),
        head: text.clone(),
    };
    let n = seen.fetch_add(1, Ordering::SeqCst);
    let action = rule(&req, n);
    if action != Action::Forward {
        faults.fetch_add(1, Ordering::SeqCst);
    }
    const SLOW_DOWN: &[u8] = b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: 94\r\nConnection: close\r\n\r\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate (proxy)</Message></Error>";
    match action {
        Action::Drop => {
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::Fail503 => {
            // Drain what the client sends of the body (best effort), then answer.
            client.set_read_timeout(Some(Duration::from_millis(50)))?;
            let _ = client.read(&mut byte);
            client.write_all(SLOW_DOWN)?;
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::BadDigest => {
            client.set_read_timeout(Some(Duration::from_millis(50)))?;
            let _ = client.read(&mut byte);
            let body = "<Error><Code>BadDigest</Code><Message>The SHA256 you specified did not match (proxy)</Message></Error>";
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes())?;
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::VerifyChecksum => verify_then_forward(client, upstream, head, split, &text),
        Action::CutAnswer(n) | Action::ShortAnswer(n) => {
            let mut up = TcpStream::connect(upstream)?;
            up.write_all(&head)?;
            let (answer_head, mut body) = read_answer_head(&mut up)?;
            let answer_head = match action {
                Action::ShortAnswer(_) => answer_head
                    .split_inclusive("\r\n")
                    .map(|l| {
                        if l.to_ascii_lowercase().starts_with("content-length:") {
                            format!("Content-Length: {n}\r\n")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect(),
                _ => answer_head,
            };
            client.write_all(answer_head.as_bytes())?;
            let mut buf = vec![0u8; 1 << 16];
            while body.len() < n {
                let k = up.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..k]);
            }
            body.truncate(n);
            client.write_all(&body)?;
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Action::CorruptAt(at) => {
            let mut body = read_body(&mut client, &head[split..], &text)?;
            if let Some(b) = body.get_mut(at) {
                *b ^= 0x01;
            }
            forward_whole(client, upstream, &head[..split], &body)
        }
        Action::Forward
        | Action::ForwardThen503
        | Action::CorruptBody
        | Action::StripLockHeaders
        | Action::WrongChecksumEcho => {
            let mut up = TcpStream::connect(upstream)?;
            let mut corrupt = action == Action::CorruptBody;
            let mut head = head;
            if action == Action::StripLockHeaders {
                let body = head.split_off(split);
                let kept: String = text
                    .split_inclusive("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("x-amz-object-lock-"))
                    .collect();
                head = kept.into_bytes();
                head.extend_from_slice(&body);
            } else if corrupt && head.len() > split {
                head[split] ^= 0x01;
                corrupt = false;
            }
            up.write_all(&head)?;
            let mut c2 = client.try_clone()?;
            let mut u2 = up.try_clone()?;
            let pump = std::thread::spawn(move || {
                if corrupt {
                    // The body had not arrived with the head: flip its first byte.
                    let mut b = [0u8; 1];
                    if let Ok(1) = c2.read(&mut b) {
                        b[0] ^= 0x01;
                        let _ = u2.write_all(&b);
                    }
                }
                let _ = std::io::copy(&mut c2, &mut u2);
                let _ = u2.shutdown(Shutdown::Write);
            });
            if action == Action::WrongChecksumEcho {
                // Insert the header after the status line of the answer.
                let mut first = Vec::new();
                let mut b = [0u8; 1];
                while up.read(&mut b).unwrap_or(0) == 1 {
                    first.push(b[0]);
                    if first.ends_with(b"\r\n") {
                        break;
                    }
                }
                client.write_all(&first)?;
                client.write_all(b"x-amz-checksum-sha256: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n")?;
                let _ = std::io::copy(&mut up, &mut client);
            } else if action != Action::ForwardThen503 {
                let _ = std::io::copy(&mut up, &mut client);
            } else {
                // The server acted on the request; the client never hears about it.
                let _ = std::io::copy(&mut up, &mut std::io::sink());
                client.write_all(SLOW_DOWN)?;
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = pump.join();
            Ok(())
        }
    }
}

/// The rest of a request's body (by its Content-Length), after `got` that came with the head.
fn read_body(client: &mut TcpStream, got: &[u8], head: &str) -> std::io::Result<Vec<u8>> {
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = got.to_vec();
    let mut buf = vec![0u8; 1 << 16];
    while body.len() < len {
        let n = client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(body)
}

/// An answer's head (status line and headers, with the blank line) and what of its body
/// came with it.
fn read_answer_head(up: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let k = up.read(&mut buf)?;
        if k == 0 {
            return Ok((String::from_utf8_lossy(&got).into_owned(), Vec::new()));
        }
        got.extend_from_slice(&buf[..k]);
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = got.split_off(p + 4);
            return Ok((String::from_utf8_lossy(&got).into_owned(), body));
        }
    }
}

/// Send a request head and body upstream and its answer back.
fn forward_whole(mut client: TcpStream, upstream: SocketAddr, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(head)?;
    up.write_all(body)?;
    let _ = std::io::copy(&mut up, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}

/// [`Action::VerifyChecksum`].
fn verify_then_forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    head: Vec<u8>,
    split: usize,
    text: &str,
) -> std::io::Result<()> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let body = read_body(&mut client, &head[split..], text)?;
    let sent = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("x-amz-checksum-sha256").then(|| v.trim().to_string())
    });
    if let Some(sent) = sent {
        let got = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
        if got != sent {
            let msg = "<Error><Code>BadDigest</Code><Message>The SHA256 you specified did not match the calculated checksum (proxy)</Message></Error>";
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            );
            client.write_all(answer.as_bytes())?;
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
    forward_whole(client, upstream, &head[..split], &body)
}

/// The `custody` binary.
pub fn custody() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custody"));
    c.env_remove("CUSTODY_STORE").env_remove("CUSTODY_KEY").env_remove("CUSTODY_STORE_CONFIG");
    c
}

/// Run `custody` with `home` as CUSTODY_HOME and extra env.
pub fn run(home: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut c = custody();
    c.env("CUSTODY_HOME", home).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// stdout + stderr as text.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A small incident directory with a few evidence files (distinct content via `tag`).
pub fn incident(dir: &Path, tag: &str) -> PathBuf {
    let d = dir.join(format!("incident-{tag}"));
    for (sub, name, body) in [
        ("traces", "trace.jsonl", format!("{{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"tag\":\"{tag}\"}}\n")),
        ("policy", "decisions.jsonl", format!("{{\"decision\":\"deny\",\"tag\":\"{tag}\"}}\n")),
        ("logs", "tool-calls.log", format!("call refund_ticket id=42 tag={tag}\n")),
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::write(d.join(sub).join(name), body).unwrap();
    }
    d
}

/// A file of `mib` MiB of incompressible pseudo-random bytes.
pub fn random_file(path: &Path, mib: usize, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

/// A JSON document from stdout.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(o)))
}

/// Azurite's well-known development account (the same in every Azurite).
pub const AZURE_ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key.
pub const AZURE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static AZURE_ENV: Once = Once::new();

/// Library use of Azure stores reads the account and key from the environment: set Azurite's
/// once (each test passes its own Azurite's endpoint as a store option).
pub fn set_azure_env() {
    AZURE_ENV.call_once(|| {
        std::env::set_var("AZURE_STORAGE_ACCOUNT_NAME", AZURE_ACCOUNT);
        std::env::set_var("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY);
        std::env::remove_var("AZURE_STORAGE_USE_EMULATOR");
    });
}

/// An `azurite-blob` process (Azure Blob Storage emulator, in memory), killed on drop.
pub struct Azurite {
    child: Child,
    /// The account's blob endpoint, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub endpoint: String,
    /// The address.
    pub addr: SocketAddr,
}

impl Azurite {
    /// Start `azurite-blob` on a free loopback port and wait until it answers. Panics with
    /// install instructions when it is not on PATH: this tier is never skipped.
    pub fn start() -> Azurite {
        set_azure_env();
        for _ in 0..5 {
            let port = free_port();
            let child = match Command::new("azurite-blob")
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .args(["--inMemoryPersistence", "--disableTelemetry", "--silent", "--skipApiVersionCheck"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => panic!(
                    "cannot start `azurite-blob` ({e}): the Azure test tier needs it on PATH.\n\
                     Install it with:  npm install -g azurite@3.37.0   (Node.js >= 18)\n\
                     (.ci/run does this; the Azure tests are never skipped)"
                ),
            };
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut a = Azurite { child, endpoint: format!("http://{addr}/{AZURE_ACCOUNT}"), addr };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = a.child.try_wait() {
                    break; // port taken by someone else: try another
                }
                // Any HTTP answer (an unauthenticated request gets a 4xx) means it is up.
                if let Ok((s, _, _)) = raw_http(addr, "GET", "/", &[], b"") {
                    if s != 0 {
                        return a;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
        panic!("azurite-blob did not become ready on a loopback port within 60 s");
    }

    /// Send one request signed with the development account's shared key.
    pub fn signed(&self, method: &str, path_and_query: &str, extra: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
        let uri = format!("http://{}{path_and_query}", self.addr);
        let mut req: object_store::client::HttpRequest = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-length", body.len().to_string())
            .body(object_store::client::HttpRequestBody::from(body.to_vec()))
            .unwrap();
        for (k, v) in extra {
            req.headers_mut()
                .insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
        }
        let cred = AzureCredential::AccessKey(AzureAccessKey::try_new(AZURE_KEY).unwrap());
        AzureAuthorizer::new(&cred, AZURE_ACCOUNT).try_authorize(&mut req).unwrap();
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (k, v) in req.headers() {
            head.push_str(&format!("{}: {}\r\n", k, v.to_str().unwrap()));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    /// Create a container.
    pub fn create_container(&self, name: &str) {
        let (status, text) = self.signed("PUT", &format!("/{AZURE_ACCOUNT}/{name}?restype=container"), &[], b"");
        assert_eq!(status, 201, "create container {name}: {text}");
    }

    /// Upload a blob with any name (unconditionally), as an attacker with write access would.
    pub fn put_blob(&self, container: &str, encoded_name: &str, body: &[u8]) {
        let (status, text) = self.signed(
            "PUT",
            &format!("/{AZURE_ACCOUNT}/{container}/{encoded_name}"),
            &[("x-ms-blob-type", "BlockBlob")],
            body,
        );
        assert_eq!(status, 201, "put blob {encoded_name}: {text}");
    }

    /// Store options pointing at this Azurite.
    pub fn options(&self) -> StoreOptions {
        StoreOptions { endpoint: Some(self.endpoint.clone()), allow_http: Some(true), ..Default::default() }
    }

    /// Open `az://container/prefix` on this Azurite.
    pub fn store(&self, container: &str, prefix: &str) -> Store {
        Store::open_with(&format!("az://{container}/{prefix}"), &self.options()).unwrap()
    }

    /// Environment for a `custody` child process talking to this Azurite.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME", AZURE_ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZURE_KEY.into()),
            ("AZURE_STORAGE_ENDPOINT", self.endpoint.clone()),
            ("AZURE_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
