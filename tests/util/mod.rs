//! Shared helpers for the integration tests: run the built `custody` binary in an isolated
//! home, make a real bundle from the `duplicate-ticket` fixture, and do surgery on bundles
//! (zstd layer and raw ustar members) to build tampered-but-well-formed archives.
//!
//! Every helper panics with a message that says what failed: these are test helpers.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The `custody` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_custody"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/incidents/duplicate-ticket`.
pub fn fixture_dir() -> PathBuf {
    repo().join("fixtures/incidents/duplicate-ticket")
}

/// Every regular file under `dir`, as (`/`-separated relative path, bytes), sorted.
pub fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut items: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        items.sort();
        for p in items {
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(base, &p, out);
            } else if m.is_file() {
                let rel =
                    p.strip_prefix(base).unwrap().components().map(|c| c.as_os_str().to_string_lossy().into_owned());
                out.push((rel.collect::<Vec<_>>().join("/"), fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Out {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Parse stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not one JSON document ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    /// Assert the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// The `kind`s of the error findings of a verify report (`--json`).
    pub fn finding_kinds(&self) -> Vec<String> {
        finding_kinds(&self.json())
    }
}

/// The `kind`s of the error-level findings in a verify report.
pub fn finding_kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings array in {report}"))
        .iter()
        .filter(|f| f["level"] == "error")
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// An isolated custody home (`CUSTODY_HOME` in a temporary directory), optionally with a
/// fixed clock (`SOURCE_DATE_EPOCH`).
pub struct Env {
    /// The temporary directory (home is `<tmp>/home`; tests may use the rest as scratch).
    pub tmp: tempfile::TempDir,
    /// `SOURCE_DATE_EPOCH` to pass, if any.
    pub epoch: Option<i64>,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A fresh home, system clock.
    pub fn new() -> Env {
        Env { tmp: tempfile::tempdir().expect("cannot create a temporary directory"), epoch: None }
    }

    /// A fresh home with `SOURCE_DATE_EPOCH` fixed.
    pub fn with_epoch(epoch: i64) -> Env {
        Env { epoch: Some(epoch), ..Env::new() }
    }

    /// `CUSTODY_HOME`.
    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// The default store directory.
    pub fn store(&self) -> PathBuf {
        self.home().join("store")
    }

    /// The default private key path.
    pub fn key(&self) -> PathBuf {
        self.home().join("keys/default.key")
    }

    /// The default public key path.
    pub fn pubkey(&self) -> PathBuf {
        self.home().join("keys/default.key.pub")
    }

    /// A scratch path inside the temporary directory (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A command for the binary with this environment (and nothing inherited that could
    /// point custody elsewhere).
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("CUSTODY_HOME", self.home())
            .env_remove("CUSTODY_STORE")
            .env_remove("CUSTODY_KEY")
            .env_remove("CUSTODY_LEDGER_KEY")
            .env_remove("XDG_DATA_HOME")
            .current_dir(self.tmp.path());
        match self.epoch {
            Some(e) => c.env("SOURCE_DATE_EPOCH", e.to_string()),
            None => c.env_remove("SOURCE_DATE_EPOCH"),
        };
        c
    }

    /// Run the binary with empty stdin.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        self.run_stdin(args, b"")
    }

    /// Run the binary feeding `input` on stdin.
    pub fn run_stdin<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], input: &[u8]) -> Out {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("cannot start the custody binary");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let o = child.wait_with_output().expect("cannot wait for custody");
        feeder.join().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `preserve --incident-dir <fixture> --json` (plus `extra`), expecting exit 0.
    pub fn preserve_fixture(&self, extra: &[&str]) -> Made {
        let fx = fixture_dir();
        let mut args: Vec<&str> = vec!["preserve", "--incident-dir", fx.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        out.expect(0);
        let v = out.json();
        Made {
            bundle: PathBuf::from(v["location"].as_str().expect("preserve --json has no location")),
            digest: v["bundle"].as_str().expect("preserve --json has no bundle").to_string(),
            store: self.store(),
            pubkey: self.pubkey(),
            preserve: v,
        }
    }

    /// `verify FILE --json --trusted-key PUB`.
    pub fn verify_file(&self, bundle: &Path, pubkey: &Path) -> Out {
        self.run(&[
            "verify".as_ref(),
            bundle.as_os_str(),
            "--json".as_ref(),
            "--trusted-key".as_ref(),
            pubkey.as_os_str(),
        ])
    }
}

/// A bundle made by `preserve` in an [`Env`].
#[derive(Debug, Clone)]
pub struct Made {
    /// The bundle file in the store (read-only).
    pub bundle: PathBuf,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The store directory.
    pub store: PathBuf,
    /// The signer's public key.
    pub pubkey: PathBuf,
    /// The `preserve --json` document.
    pub preserve: Value,
}

/// A fresh env with a bundle of the `duplicate-ticket` fixture in its default store.
pub fn made() -> (Env, Made) {
    let env = Env::new();
    let m = env.preserve_fixture(&[]);
    (env, m)
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    custody::digest::Sha256::of(data).hex()
}

// ---------------------------------------------------------------- zstd + ustar surgery

/// Decompress a whole bundle to its raw tar bytes.
pub fn decompress(bundle: &[u8]) -> Vec<u8> {
    zstd::stream::decode_all(bundle).expect("cannot decompress the bundle")
}

/// Compress raw tar bytes as a valid zstd stream (with a content checksum, like custody).
pub fn compress(tar: &[u8]) -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(tar).unwrap();
    enc.finish().unwrap()
}

/// One ustar member: its 512-byte header and its content.
#[derive(Clone)]
pub struct Member {
    /// The header block as found (or edited).
    pub header: [u8; 512],
    /// The content (unpadded).
    pub data: Vec<u8>,
    /// Offset of the header in the raw tar it was parsed from.
    pub offset: usize,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Member({}, {} bytes @{})", self.name(), self.data.len(), self.offset)
    }
}

fn octal(field: &[u8]) -> u64 {
    let s: String = field.iter().take_while(|&&b| b != 0 && b != b' ').map(|&b| b as char).collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or_else(|_| panic!("bad octal field {field:?}"))
}

fn put_octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    assert!(s.len() <= w, "{v} does not fit an octal field of {} bytes", field.len());
    field[..w].copy_from_slice(s.as_bytes());
    field[w] = 0;
}

impl Member {
    /// A new regular-file member with the same fixed metadata as `like`.
    pub fn new_like(like: &Member, name: &str, data: Vec<u8>) -> Member {
        let mut m = Member { header: like.header, data, offset: 0 };
        m.set_name(name);
        m.sync_size();
        m
    }

    /// The member name (prefix + name, ustar).
    pub fn name(&self) -> String {
        let cut =
            |b: &[u8]| String::from_utf8_lossy(&b[..b.iter().position(|&x| x == 0).unwrap_or(b.len())]).into_owned();
        let (name, prefix) = (cut(&self.header[0..100]), cut(&self.header[345..500]));
        if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        }
    }

    /// Set the name field (must fit 100 bytes; the prefix is cleared) and fix the checksum.
    pub fn set_name(&mut self, name: &str) {
        assert!(name.len() <= 100, "name too long for this helper: {name}");
        self.header[0..100].fill(0);
        self.header[0..name.len()].copy_from_slice(name.as_bytes());
        self.header[345..500].fill(0);
        self.fix_checksum();
    }

    /// Replace the content, updating the size field and the checksum.
    pub fn set_data(&mut self, data: Vec<u8>) {
        self.data = data;
        self.sync_size();
    }

    fn sync_size(&mut self) {
        let n = self.data.len() as u64;
        put_octal(&mut self.header[124..136], n);
        self.fix_checksum();
    }

    /// The header's declared size.
    pub fn declared_size(&self) -> u64 {
        octal(&self.header[124..136])
    }

    /// Recompute the header checksum (so the archive stays well-formed after an edit).
    pub fn fix_checksum(&mut self) {
        self.header[148..156].fill(b' ');
        let sum: u64 = self.header.iter().map(|&b| b as u64).sum();
        // As custody (tar-rs) writes it: 7 octal digits and a NUL.
        let s = format!("{sum:07o}");
        self.header[148..155].copy_from_slice(s.as_bytes());
        self.header[155] = 0;
    }
}

/// Parse a raw ustar archive (as custody writes it) into members, stopping at the first
/// all-zero block.
pub fn tar_members(raw: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= raw.len() {
        let block = &raw[off..off + 512];
        if block.iter().all(|&b| b == 0) {
            break;
        }
        let mut header = [0u8; 512];
        header.copy_from_slice(block);
        let size = octal(&header[124..136]) as usize;
        let data = raw[off + 512..off + 512 + size].to_vec();
        out.push(Member { header, data, offset: off });
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// Offset of the content of member `i` in the raw tar.
pub fn data_offset(m: &Member) -> usize {
    m.offset + 512
}

/// Serialize members back into a ustar archive with the two-zero-block end marker.
pub fn tar_build(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        out.extend_from_slice(&m.header);
        out.extend_from_slice(&m.data);
        let pad = (512 - m.data.len() % 512) % 512;
        out.extend(std::iter::repeat(0u8).take(pad));
    }
    out.extend(std::iter::repeat(0u8).take(1024));
    out
}

/// Read a bundle file and split it into members.
pub fn bundle_members(bundle: &Path) -> Vec<Member> {
    tar_members(&decompress(&fs::read(bundle).unwrap()))
}

/// Write members as a new (valid zstd, well-formed tar) bundle file.
pub fn write_bundle(path: &Path, members: &[Member]) {
    fs::write(path, compress(&tar_build(members))).unwrap();
}

/// The member called `name`.
pub fn member<'a>(members: &'a [Member], name: &str) -> &'a Member {
    members.iter().find(|m| m.name() == name).unwrap_or_else(|| panic!("no member {name} in {members:?}"))
}

/// Index of the member called `name`.
pub fn member_index(members: &[Member], name: &str) -> usize {
    members.iter().position(|m| m.name() == name).unwrap_or_else(|| panic!("no member {name} in {members:?}"))
}

/// Make a file writable (store files are 0444) so a test can tamper with it.
pub fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
}

/// Re-sign a manifest with `key` and return (manifest.json member, manifest.dsse.json member)
/// ready to replace the originals: the envelope is built with the library's signer (format
/// v2: a DSSE envelope over the statement of the manifest's SHA-256 and size).
pub fn signed_manifest_members(like: &Member, manifest: &[u8], key: &custody::keys::SecretKey) -> (Member, Member) {
    let m = Member::new_like(like, "manifest.json", manifest.to_vec());
    let e = Member::new_like(like, "manifest.dsse.json", custody::bundle::write::sign_manifest(manifest, key));
    (m, e)
}

/// Serialize a manifest the way custody does (compact JSON + newline).
pub fn manifest_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec(v).unwrap();
    b.push(b'\n');
    b
}

/// Require an external tool on PATH, with a clear message when it is absent.
pub fn require_tool(name: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false);
    assert!(found, "this test needs `{name}` on PATH (bash .ci/run installs it: apt-get install tar zstd openssl jq)");
}

/// Run an external command, returning (exit code, stdout bytes, stderr text).
pub fn sh(cmd: &mut Command) -> (i32, Vec<u8>, String) {
    let o = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (o.status.code().unwrap_or(-1), o.stdout, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Edit the manifest of a bundle with `edit`, then make it fully consistent again (journal
/// chain re-hashed, Merkle root recomputed) and sign it with `key`: a bundle that only the
/// checks of what `edit` changed can reject. Returns the new member list.
pub fn reseal(
    members: &[Member],
    key: &custody::keys::SecretKey,
    edit: impl FnOnce(&mut custody::bundle::manifest::Manifest),
) -> Vec<Member> {
    use custody::bundle::{journal, merkle};
    let j = member_index(members, "manifest.json");
    let mut man: custody::bundle::manifest::Manifest = serde_json::from_slice(&members[j].data).unwrap();
    edit(&mut man);
    let mut prev = journal::GENESIS;
    for ev in &mut man.journal {
        ev.prev = prev;
        ev.hash = journal::event_hash(ev);
        prev = ev.hash;
    }
    man.merkle_root = merkle::root(&man.entries);
    let bytes = manifest_bytes(&man);
    let (mm, me) = signed_manifest_members(&members[j], &bytes, key);
    let mut out = members.to_vec();
    out[j] = mm;
    out[member_index(members, "manifest.dsse.json")] = me;
    out
}

/// Rename entry `from` to `to` in a manifest, in the entries and in the journal.
pub fn rename_entry(man: &mut custody::bundle::manifest::Manifest, from: &str, to: &str) {
    let mut hit = false;
    for e in &mut man.entries {
        if e.path == from {
            e.path = to.to_string();
            hit = true;
        }
    }
    assert!(hit, "no entry {from}");
    for ev in &mut man.journal {
        if ev.path.as_deref() == Some(from) {
            ev.path = Some(to.to_string());
        }
    }
}

/// Reads `err` (a child's stderr) line by line until the `CUSTODY_TEST_PAUSE` announcement
/// of `point`; panics if the child's stderr ends first.
pub fn wait_for_pause(err: &mut impl std::io::BufRead, point: &str) {
    let want = format!("test pause at {point}");
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "the process ended before the pause point {point}");
        if line.contains(&want) {
            return;
        }
    }
}
