//! Helpers for the tamper matrix and the hostile-archive suite: real bundles made by
//! `preserve`, a tiny tar splitter/joiner for crafting variants, ledger entry crafting, and a
//! seeded RNG.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use custody::bundle::dsse;
use custody::digest::{BundleId, EntryId, Sha256};
use custody::keys::SecretKey;
use custody::read::archive::canonical_header;
use custody::store::ledger::{entry_key, LedgerEntry, StoreId, LEDGER_FORMAT_V2, STORE_FILE};
use custody::store::{bundle_key, Store};
use custody::verify::{Finding, Level};

/// The realistic incident.
pub fn incident() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/duplicate-ticket")
}

/// Base time of the bundles made here.
pub const T0: i64 = 1_763_800_000;

pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("valid time")
}

/// splitmix64: a small seeded RNG, so every run mutates the same bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A non-zero XOR mask.
    pub fn mask(&mut self) -> u8 {
        (self.next() % 255) as u8 + 1
    }
}

/// One bundle as preserved, with its bytes.
pub struct Made {
    pub id: BundleId,
    pub bytes: Vec<u8>,
    pub position: u64,
}

/// A store with three bundles made by `preserve` from variants of the incident (B and C
/// change `logs/tool_calls.jsonl`, so B's blob for that path has the same member *path* in
/// the manifest but other content), sealed a minute apart, plus the signing key.
pub struct World {
    pub _dir: tempfile::TempDir,
    pub key: Arc<SecretKey>,
    pub other_key: Arc<SecretKey>,
    pub store: Store,
    pub bundles: Vec<Made>,
    pub entries: Vec<Vec<u8>>,
    /// The store's `store.json` bytes and id.
    pub store_file: Vec<u8>,
    pub store_id: StoreId,
    pub rt: tokio::runtime::Runtime,
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk fixture");
        let rel = e.path().strip_prefix(from).expect("under fixture");
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

pub fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Arc::new(SecretKey::generate(&dir.path().join("k")).expect("key"));
    let other_key = Arc::new(SecretKey::generate(&dir.path().join("other")).expect("key"));
    let store = Store::open("memory://").expect("store");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let mut bundles = Vec::new();
    for i in 0..3 {
        let inc = dir.path().join(format!("incident-{i}"));
        copy_dir(&incident(), &inc);
        if i > 0 {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(inc.join("logs/tool_calls.jsonl")).expect("open");
            writeln!(f, "{{\"variant\":{i}}}").expect("append");
        }
        let req = custody::preserve::PreserveRequest { incident_dir: Some(inc), workers: 0, ..Default::default() };
        let clock = custody::clock::Clock::fixed(at(T0 + 60 * i));
        let done = rt.block_on(custody::preserve::preserve(&store, key.clone(), req, clock)).expect("preserve");
        let f = rt.block_on(store.fetch_bundle(&done.bundle)).expect("fetch").expect("present");
        let bytes = std::fs::read(f.path()).expect("read bundle");
        bundles.push(Made { id: done.bundle, bytes, position: done.position });
    }
    let mut entries = Vec::new();
    for n in 1..=3 {
        entries.push(rt.block_on(store.get_small(&entry_key(n), 1 << 16)).expect("get").expect("entry"));
    }
    let store_file = rt.block_on(store.get_small(STORE_FILE, 4096)).expect("get").expect("store.json");
    let store_id = custody::store::ledger::parse_store_file(&store_file).expect("store.json").store_id;
    World { _dir: dir, key, other_key, store, bundles, entries, store_file, store_id, rt }
}

impl World {
    pub fn trust(&self) -> custody::verify::Trust {
        custody::verify::Trust::new(vec![self.key.public.clone()])
    }

    /// A fresh memory store with this world's `store.json`, holding `bundles` (key → bytes) and
    /// ledger objects at the given positions (position → bytes).
    pub fn store_with(&self, bundles: &[(BundleId, &[u8])], entries: &[(u64, &[u8])]) -> Store {
        let s = self.bare_store_with(bundles, entries);
        self.rt.block_on(s.create(STORE_FILE, self.store_file.clone())).expect("put");
        s
    }

    /// [`World::store_with`] without a `store.json`.
    pub fn bare_store_with(&self, bundles: &[(BundleId, &[u8])], entries: &[(u64, &[u8])]) -> Store {
        let s = Store::open("memory://").expect("store");
        for (id, b) in bundles {
            self.rt.block_on(s.create(&bundle_key(id), b.to_vec())).expect("put");
        }
        for (n, e) in entries {
            self.rt.block_on(s.create(&entry_key(*n), e.to_vec())).expect("put");
        }
        s
    }

    /// All three bundles.
    pub fn all_bundles(&self) -> Vec<(BundleId, &[u8])> {
        self.bundles.iter().map(|b| (b.id, b.bytes.as_slice())).collect()
    }

    /// A signed `custody-ledger/v2` entry object of this world's store.
    pub fn entry(
        &self,
        key: &SecretKey,
        position: u64,
        bundle: &Made,
        prev: Option<&[u8]>,
        appended_at: DateTime<Utc>,
    ) -> Vec<u8> {
        self.entry_with(key, self.ledger_entry(position, bundle, prev, appended_at))
    }

    /// The entry [`World::entry`] signs, to edit before signing it with [`World::entry_with`].
    pub fn ledger_entry(
        &self,
        position: u64,
        bundle: &Made,
        prev: Option<&[u8]>,
        appended_at: DateTime<Utc>,
    ) -> LedgerEntry {
        let m = manifest_of(&bundle.bytes);
        LedgerEntry {
            format: LEDGER_FORMAT_V2.into(),
            position,
            bundle: bundle.id,
            bundle_size: bundle.bytes.len() as u64,
            bundle_key: bundle_key(&bundle.id),
            prev: prev.map(|p| EntryId(Sha256::of(p))),
            sealed_at: m.sealed_at,
            appended_at,
            store_id: Some(self.store_id),
            adopted: Some(false),
            timestamp: None,
            signed_by: None,
            supplement_of: None,
        }
    }

    /// Sign `e` as custody does.
    pub fn entry_with(&self, key: &SecretKey, e: LedgerEntry) -> Vec<u8> {
        dsse::to_bytes(&dsse::sign(e.payload_type(), &e.to_payload(), key))
    }
}

/// The manifest of a (good) bundle.
pub fn manifest_of(bundle: &[u8]) -> custody::bundle::manifest::Manifest {
    let tar = zstd::decode_all(bundle).expect("zstd");
    let m = split(&tar).into_iter().find(|m| m.name == "manifest.json").expect("manifest member");
    serde_json::from_slice(&m.data).expect("manifest json")
}

/// A tar member as custody writes it.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    pub header: [u8; 512],
    pub data: Vec<u8>,
    /// Offset of the header in the tar.
    pub offset: usize,
}

/// Split a canonical custody tar into members (panics on anything else: test input only).
pub fn split(tar: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h: [u8; 512] = tar[at..at + 512].try_into().expect("block");
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_end].to_vec()).expect("utf8 name");
        let size = u64::from_str_radix(std::str::from_utf8(&h[124..135]).expect("size"), 8).expect("octal") as usize;
        let data = tar[at + 512..at + 512 + size].to_vec();
        out.push(Member { name, header: h, data, offset: at });
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// The mtime of a canonical custody tar.
pub fn mtime_of(tar: &[u8]) -> u64 {
    u64::from_str_radix(std::str::from_utf8(&tar[136..147]).expect("mtime"), 8).expect("octal")
}

/// A member with a canonical header for `name` and `data`.
pub fn member(name: &str, data: Vec<u8>, mtime: u64) -> Member {
    let header = canonical_header(name.as_bytes(), data.len() as u64, mtime).expect("short name");
    Member { name: name.into(), header, data, offset: 0 }
}

/// Join members into a tar, re-using each member's header as is (so a stale header stays
/// stale), zero padding, two zero blocks.
pub fn join(members: &[Member]) -> Vec<u8> {
    let mut t = Vec::new();
    for m in members {
        t.extend_from_slice(&m.header);
        t.extend_from_slice(&m.data);
        t.resize(t.len().div_ceil(512) * 512, 0);
    }
    t.extend_from_slice(&[0u8; 1024]);
    t
}

/// Compress like custody (one frame, content checksum), fast level.
pub fn zst(tar: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("encoder");
    e.include_checksum(true).expect("checksum");
    std::io::Write::write_all(&mut e, tar).expect("compress");
    e.finish().expect("finish")
}

/// Error findings.
pub fn errors(fs: &[Finding]) -> Vec<&Finding> {
    fs.iter().filter(|f| f.level == Level::Error).collect()
}

/// Finding kinds as their JSON names.
pub fn kind_name(f: &Finding) -> String {
    serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// What `custody verify FILE --json` said, and its peak RSS (`CUSTODY_REPORT_PEAK_RSS`).
pub struct Run {
    pub code: i32,
    pub kinds: Vec<String>,
    pub messages: Vec<String>,
    pub peak_kib: u64,
    pub stdout: String,
    pub stderr: String,
}

/// `custody verify FILE --json` with an empty home and a pinned key.
pub fn verify_file(file: &std::path::Path, home: &std::path::Path, pubkey: &std::path::Path, extra: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg("verify")
        .arg(file)
        .arg("--json")
        .arg("--trusted-key")
        .arg(pubkey)
        .args(extra)
        .env("CUSTODY_HOME", home)
        .env("CUSTODY_REPORT_PEAK_RSS", "1")
        .output()
        .expect("run custody");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    let findings = json["findings"].as_array().cloned().unwrap_or_default();
    let peak_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("custody: peak rss "))
        .and_then(|s| s.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(u64::MAX);
    Run {
        code: out.status.code().unwrap_or(-1),
        kinds: findings.iter().filter_map(|f| f["kind"].as_str().map(String::from)).collect(),
        messages: findings.iter().filter_map(|f| f["message"].as_str().map(String::from)).collect(),
        peak_kib,
        stdout,
        stderr,
    }
}

/// World bundle A with `analysis` as its `analysis.json`, the manifest naming it and re-signed
/// by the world's key: intact.
pub fn with_analysis(w: &World, analysis: Vec<u8>) -> Vec<u8> {
    let tar = zstd::decode_all(&w.bundles[0].bytes[..]).expect("zstd");
    let mtime = mtime_of(&tar);
    let mut ms = split(&tar);
    let ai = ms.iter().position(|m| m.name == "analysis.json").expect("analysis.json");
    let mi = ms.iter().position(|m| m.name == "manifest.json").expect("manifest.json");
    let mut man: custody::bundle::manifest::Manifest = serde_json::from_slice(&ms[mi].data).expect("manifest");
    man.analysis_ref = Some(custody::bundle::manifest::AnalysisRef {
        member: "analysis.json".into(),
        sha256: Sha256::of(&analysis),
        size: analysis.len() as u64,
    });
    let mut bytes = serde_json::to_vec(&man).expect("json");
    bytes.push(b'\n');
    ms[ai] = member("analysis.json", analysis, mtime);
    ms[mi + 1] = member("manifest.dsse.json", custody::bundle::write::sign_manifest(&bytes, &w.key), mtime);
    ms[mi] = member("manifest.json", bytes, mtime);
    zst(&join(&ms))
}

/// `custody ARGS --json --trusted-key <world key>` on `file` with an empty home, and its peak RSS.
pub fn run_on_file(w: &World, cmd: &str, file: &[u8]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("b.tar.zst");
    std::fs::write(&f, file).expect("write");
    let pubkey = dir.path().join("k.pub");
    std::fs::write(&pubkey, w.key.public.to_pem().expect("pem")).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg(cmd)
        .arg(&f)
        .arg("--json")
        .arg("--trusted-key")
        .arg(&pubkey)
        .env("CUSTODY_HOME", dir.path().join("home"))
        .env("CUSTODY_REPORT_PEAK_RSS", "1")
        .output()
        .expect("run custody");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("custody: peak rss "))
        .and_then(|s| s.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(u64::MAX);
    Run { code: out.status.code().unwrap_or(-1), kinds: Vec::new(), messages: Vec::new(), peak_kib, stdout, stderr }
}
