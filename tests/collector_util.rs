//! Test helpers: scan files in place and feed them to an analyzer.
#![allow(dead_code)]

use custody::collect::analyze::{detect, scan, Analyzer, FieldMapping, Format, Record, ScanSummary};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Directory of the shared real-world samples.
pub fn formats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/formats")
}

/// Directory of this crate's fixtures.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/collector")
}

/// Detects a file's format from its first 16 KiB.
pub fn detect_file(path: &Path) -> Format {
    let mut head = Vec::new();
    let f = std::fs::File::open(path).expect("open");
    f.take(16 * 1024).read_to_end(&mut head).expect("read head");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    detect(name, &head)
}

/// Scans a file (format detected unless given) and returns its records.
pub fn scan_file(path: &Path, format: Option<Format>, mapping: &FieldMapping) -> (Format, Vec<Record>, ScanSummary) {
    let format = format.unwrap_or_else(|| detect_file(path));
    let f = std::fs::File::open(path).expect("open");
    let mut records = Vec::new();
    let summary = scan(format, f, mapping, &mut |r| records.push(r)).expect("scan");
    (format, records, summary)
}

/// Scans bytes.
pub fn scan_bytes(format: Format, bytes: &[u8]) -> (Vec<Record>, ScanSummary) {
    let mut records = Vec::new();
    let summary = scan(format, bytes, &FieldMapping::default(), &mut |r| records.push(r)).expect("scan");
    (records, summary)
}

/// Values of `ident` observed in `records`.
pub fn values(records: &[Record], ident: custody::collect::analyze::IdentName) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .flat_map(|r| r.observations.iter())
        .filter(|o| o.ident == ident)
        .map(|o| o.value.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every file under `dir`, sorted (iterative walk).
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

/// Scans every file under `dir` into `an`; returns bytes scanned.
pub fn feed_dir(an: &mut Analyzer, dir: &Path, mapping: &FieldMapping) -> u64 {
    let mut bytes = 0;
    for p in walk(dir) {
        let format = detect_file(&p);
        let shown = p.display().to_string();
        let id = an.begin_source(&shown, &format!("sha256-of:{shown}"), "test", format);
        let f = std::fs::File::open(&p).expect("open");
        let s = scan(format, f, mapping, &mut |r| an.push(id, r)).expect("scan");
        bytes += s.bytes_scanned;
    }
    bytes
}

/// Output of one `custody` run.
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
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// Runs the real `custody` binary with its home (key, store) in `home`.
pub fn custody(home: &Path, args: &[&str]) -> Run {
    custody_env(home, args, &[])
}

/// [`custody`] with extra environment variables.
pub fn custody_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .envs(env.iter().copied())
        .env("CUSTODY_HOME", home)
        .env_remove("CUSTODY_STORE")
        .env_remove("CUSTODY_KEY")
        .output()
        .expect("run custody");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `custody preserve ARGS --json`, then `custody show BUNDLE --json`: (preserve, show).
pub fn preserve_and_show(home: &Path, args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let mut a = vec!["preserve", "--json"];
    a.extend_from_slice(args);
    let p = custody(home, &a);
    assert_eq!(p.code, 0, "preserve failed:\n{}\n{}", p.stdout, p.stderr);
    let pj = p.json();
    let loc = pj["location"].as_str().expect("location").to_string();
    let s = custody(home, &["show", &loc, "--json"]);
    assert_eq!(s.code, 0, "show failed:\n{}\n{}", s.stdout, s.stderr);
    let sj = s.json();
    assert_eq!(sj["verdict"], "intact", "bundle does not verify: {}", s.stdout);
    (pj, sj)
}

/// The repository's fixture incident.
pub fn fixture_incident() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/duplicate-ticket")
}

/// The manifest identifier `name` from a `show --json` document.
pub fn ident<'a>(show: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    show["manifest"]["incident"]["identifiers"]
        .as_array()
        .and_then(|v| v.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no identifier {name}"))
}

/// Validates `instance` against `schemas/<name>`.
pub fn assert_schema(name: &str, instance: &serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read schema")).expect("schema is JSON");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{name} violations:\n{}", errors.join("\n"));
}
