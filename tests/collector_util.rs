//! Helpers of the collector tests: where the fixtures are, temporary incident directories,
//! `custody preserve` with the bundle's `analysis.json` read back as the typed model, the
//! projection the fixture incidents' expected files hold, and scans of files and bytes
//! through the library.
#![allow(dead_code)]

use custody::collect::analysis::{
    Analysis, Citation, Event, EventKind, IdentStatus, IdentifierFinding, OutcomeStatus, Tie,
};
use custody::collect::analyze::{detect, scan, FieldMapping, Format, IdentName, Record, ScanSummary};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/formats/<rel>`: one folder per input format.
pub fn format_fixture(rel: &str) -> PathBuf {
    repo().join("fixtures/formats").join(rel)
}

/// `fixtures/samples/<rel>`: genuine upstream samples.
pub fn sample(rel: &str) -> PathBuf {
    repo().join("fixtures/samples").join(rel)
}

/// `fixtures/collector/<rel>`: hand-written inputs of the scanner tests.
pub fn collector_fixture(rel: &str) -> PathBuf {
    repo().join("fixtures/collector").join(rel)
}

/// `fixtures/incidents/<name>`.
pub fn incident(name: &str) -> PathBuf {
    repo().join("fixtures/incidents").join(name)
}

/// The trace id of the `fixtures/formats` scenario.
pub const FORMATS_TRACE: &str = "7d3f1c9a2b4e48f0a1c6e5d20b9f8a31";

/// Output of one `custody` run.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// Runs the real `custody` binary with its home (key, default store) in `home`.
pub fn custody(home: &Path, args: &[&str]) -> Run {
    custody_env(home, args, &[])
}

/// [`custody`] with extra environment variables.
pub fn custody_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env_remove("CUSTODY_STORE")
        .env_remove("CUSTODY_KEY")
        .env_remove("SOURCE_DATE_EPOCH")
        .envs(env.iter().copied())
        .env("CUSTODY_HOME", home)
        .output()
        .expect("run custody");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temporary incident directory that a test fills with fixture files.
pub struct IncidentDir {
    dir: tempfile::TempDir,
}

impl IncidentDir {
    /// An empty directory.
    pub fn new() -> IncidentDir {
        IncidentDir { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its path as a string (for arguments).
    pub fn arg(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Writes `bytes` at `rel` (parents created).
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> &Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
        self
    }

    /// Copies the file `from` to `rel`.
    pub fn copy(&self, from: &Path, rel: &str) -> &Self {
        let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        self.write(rel, bytes)
    }

    /// An incident directory holding `files`: (fixture path, path in the directory).
    pub fn of(files: &[(PathBuf, &str)]) -> IncidentDir {
        let d = IncidentDir::new();
        for (from, rel) in files {
            d.copy(from, rel);
        }
        d
    }
}

/// One `custody preserve --json` that succeeded, with its bundle's `analysis.json`.
pub struct Preserved {
    /// The run (stderr holds warnings and notes).
    pub run: Run,
    /// Its `--json` output.
    pub out: Value,
    /// The bundle file.
    pub bundle: PathBuf,
    /// `analysis.json` as the typed model (`None` with `--no-analyze`).
    pub analysis: Option<Analysis>,
    /// `analysis.json` as JSON.
    pub raw: Value,
    /// The temporary home (and store) the bundle is in, when the helper made one: kept alive
    /// as long as the bundle is read.
    pub home: Option<tempfile::TempDir>,
}

impl Preserved {
    /// The analysis (panics when the bundle has none).
    pub fn a(&self) -> &Analysis {
        self.analysis.as_ref().expect("the bundle holds analysis.json")
    }
}

/// The bytes of one member of a bundle (a zstd-compressed tar), read with the library crates.
pub fn bundle_member(bundle: &Path, name: &str) -> Option<Vec<u8>> {
    let f = std::fs::File::open(bundle).unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
    let dec = zstd::stream::read::Decoder::new(f).expect("zstd");
    let mut ar = tar::Archive::new(dec);
    for e in ar.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        if e.path().expect("member path").to_str() == Some(name) {
            let mut v = Vec::new();
            e.read_to_end(&mut v).expect("read member");
            return Some(v);
        }
    }
    None
}

/// `custody preserve --json --quiet --store <home>/store ARGS`: must exit 0. The bundle's
/// `analysis.json` is read as the typed model (which denies unknown fields: the written
/// document must be exactly the model).
pub fn preserve(home: &Path, args: &[&str]) -> Preserved {
    let store = home.join("store").display().to_string();
    let mut a = vec!["preserve", "--json", "--quiet", "--store", &store];
    a.extend_from_slice(args);
    let run = custody(home, &a);
    assert_eq!(run.code, 0, "preserve {args:?} failed:\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let out = run.json();
    let bundle = PathBuf::from(out["location"].as_str().expect("location"));
    let (analysis, raw) = match bundle_member(&bundle, "analysis.json") {
        Some(bytes) => {
            let typed: Analysis = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("analysis.json is not the typed model: {e}\n{}", String::from_utf8_lossy(&bytes))
            });
            (Some(typed), serde_json::from_slice(&bytes).expect("analysis.json is JSON"))
        }
        None => (None, Value::Null),
    };
    Preserved { run, out, bundle, analysis, raw, home: None }
}

/// Preserves `dir` (a temporary home) with `args` after `--incident-dir DIR`.
pub fn preserve_dir(dir: &IncidentDir, args: &[&str]) -> Preserved {
    let home = tempfile::tempdir().expect("home");
    let d = dir.arg();
    let mut a = vec!["--incident-dir", d.as_str()];
    a.extend_from_slice(args);
    let mut p = preserve(home.path(), &a);
    p.home = Some(home);
    p
}

/// The finding of one identifier.
pub fn ident(a: &Analysis, name: IdentName) -> &IdentifierFinding {
    a.identifiers.iter().find(|i| i.name == name).unwrap_or_else(|| panic!("no identifier {name}"))
}

/// `(status, value)` of one identifier.
pub fn ident_value(a: &Analysis, name: IdentName) -> (IdentStatus, Option<&str>) {
    let i = ident(a, name);
    (i.status, i.value.as_deref())
}

/// The events of one kind, in time order.
pub fn events(a: &Analysis, kind: EventKind) -> Vec<&Event> {
    a.events.iter().filter(|e| e.kind == kind).collect()
}

/// Events per kind (every kind listed, 0 when absent).
pub fn counts(a: &Analysis) -> Vec<(&'static str, u64)> {
    EventKind::ALL.iter().map(|k| (k.as_str(), a.event_counts.get(k).map_or(0, |c| c.events))).collect()
}

/// The count of events of one kind.
pub fn count(a: &Analysis, kind: EventKind) -> u64 {
    a.event_counts.get(&kind).map_or(0, |c| c.events)
}

/// An event's `ids` entry.
pub fn id_of<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.ids.get(key).map(String::as_str)
}

/// An event's `detail` entry.
pub fn detail_of<'a>(e: &'a Event, key: &str) -> Option<&'a str> {
    e.detail.get(key).map(String::as_str)
}

/// An event's outcome status.
pub fn outcome(e: &Event) -> Option<OutcomeStatus> {
    e.outcome.as_ref().map(|o| o.status)
}

/// An event's start time as written in the analysis.
pub fn start(e: &Event) -> Option<&str> {
    e.start.as_ref().map(|t| t.at.as_str())
}

/// An event's end time as written in the analysis.
pub fn end(e: &Event) -> Option<&str> {
    e.end.as_ref().map(|t| t.at.as_str())
}

/// The bytes a citation points at, read from the original file of the incident directory
/// `dir` (decompressed first when the citation says so).
pub fn cited_bytes(dir: &Path, c: &Citation) -> Vec<u8> {
    let raw = std::fs::read(dir.join(&c.path)).unwrap_or_else(|e| panic!("{}: {e}", c.path));
    let bytes = if c.decompressed { decompressed(&raw) } else { raw };
    let (o, l) = (c.offset as usize, c.len as usize);
    assert!(o + l <= bytes.len(), "citation {c:?} is past the end of {} ({} bytes)", c.path, bytes.len());
    bytes[o..o + l].to_vec()
}

/// gzip or zstd bytes decompressed; UTF-16 with a byte-order mark transcoded to UTF-8.
pub fn decompressed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out).expect("gunzip");
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(raw).expect("zstd").read_to_end(&mut out).expect("unzstd");
    } else if raw.starts_with(&[0xff, 0xfe]) {
        let units: Vec<u16> = raw[2..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        out = String::from_utf16_lossy(&units).into_bytes();
    } else {
        out = raw.to_vec();
    }
    out
}

/// The expected file's projection of an analysis (the comparison of
/// `fixtures/incidents/<name>.expected.json`): each identifier's value, `unknown` or
/// `conflict` with its values; the subjects; the chain's nodes; the events per kind; the
/// duplicated actions; the incident's writes with an unknown outcome (target, call id and the
/// reason's key word); memory records read and written; egress hosts; malformed lines.
pub fn project(a: &Analysis) -> Value {
    let mut ids = serde_json::Map::new();
    for f in &a.identifiers {
        let v = match f.status {
            IdentStatus::Given | IdentStatus::Found | IdentStatus::Inferred => json!({ "value": f.value }),
            IdentStatus::Conflict => {
                let mut vals: Vec<&str> = f.values.iter().map(|v| v.value.as_str()).collect();
                vals.sort_unstable();
                json!({ "status": "conflict", "values": vals })
            }
            _ => json!({ "status": "unknown" }),
        };
        ids.insert(f.name.as_str().to_string(), v);
    }
    let sorted = |v: Vec<&str>| {
        let mut v: Vec<String> = v.into_iter().map(str::to_string).collect();
        v.sort();
        v
    };
    let chain: serde_json::Map<String, Value> =
        a.chain.nodes.iter().map(|n| (n.name.as_str().to_string(), json!(n.value))).collect();
    let events: serde_json::Map<String, Value> =
        counts(a).into_iter().map(|(k, n)| (k.to_string(), json!(n))).collect();
    let dups: Vec<Value> = a
        .actions
        .iter()
        .filter(|x| x.duplicate)
        .map(|x| {
            json!({"idempotency_key": x.idempotency_key, "target": x.target, "attempts": x.attempts.len(), "took_effect": x.took_effect})
        })
        .collect();
    let unknown: Vec<Value> = a
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ToolCall | EventKind::CloudApiCall | EventKind::K8sChange))
        .filter(|e| e.tie == Tie::Linked && outcome(e) == Some(OutcomeStatus::Unknown))
        .map(|e| {
            let reason = e.outcome.as_ref().and_then(|o| o.reason.clone()).unwrap_or_default();
            json!({"target": e.target, "call_id": id_of(e, "call_id"), "reason": reason_word(&reason)})
        })
        .collect();
    let mut malformed: Vec<(String, u64)> =
        a.problems.iter().filter_map(|p| p.line.map(|l| (p.path.clone(), l))).collect();
    malformed.sort();
    json!({
        "identifiers": ids,
        "subjects": sorted(a.subjects.iter().map(|s| s.value.as_str()).collect()),
        "chain": chain,
        "events": events,
        "duplicates": dups,
        "unknown_outcomes": unknown,
        "memory": {
            "read": sorted(a.memory.read.iter().map(String::as_str).collect()),
            "written": sorted(a.memory.written.iter().map(String::as_str).collect()),
        },
        "egress_hosts": sorted(a.egress.iter().map(|h| h.host.as_str()).collect()),
        "malformed_lines": malformed.iter().map(|(p, l)| json!({"path": p, "line": l})).collect::<Vec<_>>(),
    })
}

/// The key word of an unknown outcome's reason.
fn reason_word(r: &str) -> String {
    let r = r.to_lowercase();
    for w in ["timeout", "disconnect", "no response", "conflict"] {
        if r.contains(w) {
            return w.replace(' ', "_");
        }
    }
    r
}

/// An expected file in the projection's normal form (lists the projection sorts, sorted; the
/// `seed` key removed).
pub fn normalise_expected(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("seed");
        for k in ["subjects", "egress_hosts"] {
            if let Some(Value::Array(a)) = o.get_mut(k) {
                a.sort_by_key(|x| x.as_str().map(str::to_string));
            }
        }
        if let Some(m) = o.get_mut("memory").and_then(Value::as_object_mut) {
            for k in ["read", "written"] {
                if let Some(Value::Array(a)) = m.get_mut(k) {
                    a.sort_by_key(|x| x.as_str().map(str::to_string));
                }
            }
        }
        if let Some(Value::Array(a)) = o.get_mut("malformed_lines") {
            a.sort_by_key(|x| (x["path"].as_str().map(str::to_string), x["line"].as_u64()));
        }
    }
    v
}

/// Every difference between two JSON values, one line per path.
pub fn json_diff(expected: &Value, got: &Value) -> Vec<String> {
    fn walk(path: &str, e: &Value, g: &Value, out: &mut Vec<String>) {
        match (e, g) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = format!("{path}.{k}");
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => walk(&p, x, y, out),
                        (Some(x), None) => out.push(format!("{p}: expected {x}, missing in the analysis")),
                        (None, Some(y)) => out.push(format!("{p}: not expected, the analysis has {y}")),
                        (None, None) => {}
                    }
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    walk(&format!("{path}[{i}]"), x, y, out);
                }
            }
            _ if e != g => {
                out.push(format!("{path}: expected {e}\n{:>width$}got      {g}", "", width = path.len() + 2))
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", expected, got, &mut out);
    out
}

/// Detects a file's format from its first 16 KiB, as `preserve` does.
pub fn detect_file(path: &Path) -> Format {
    let mut head = Vec::new();
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.take(16 * 1024).read_to_end(&mut head).expect("read head");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    detect(name, &head)
}

/// Scans a file through the library (its format detected) and returns its records.
pub fn scan_file(path: &Path) -> (Format, Vec<Record>, ScanSummary) {
    let format = detect_file(path);
    let f = std::fs::File::open(path).expect("open");
    let mut records = Vec::new();
    let summary = scan(format, f, &FieldMapping::default(), &mut |r| records.push(r)).expect("scan");
    (format, records, summary)
}

/// Scans bytes as `format` (a format name).
pub fn scan_bytes(format: &str, bytes: &[u8]) -> (Vec<Record>, ScanSummary) {
    let format = Format::named(format).unwrap_or_else(|| panic!("no format {format}"));
    let mut records = Vec::new();
    let summary = scan(format, bytes, &FieldMapping::default(), &mut |r| records.push(r)).expect("scan");
    (records, summary)
}

/// The distinct values of `ident` in `records`, sorted.
pub fn values(records: &[Record], ident: IdentName) -> Vec<String> {
    let mut v: Vec<String> = records.iter().flat_map(|r| r.values(ident)).collect();
    v.sort();
    v.dedup();
    v
}

/// The events the records are evidence of, as (kind, target).
pub fn record_events(records: &[Record]) -> Vec<(EventKind, Option<String>)> {
    records.iter().flat_map(|r| r.events()).map(|(k, t, _)| (k, t)).collect()
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
