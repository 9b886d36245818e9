//! The streaming sealer and the pipelined reader, end to end through the binary: many small
//! files (several reader batches), large files (two-pass copy), determinism, and the progress
//! line staying silent when stderr is not a terminal.

use std::path::Path;
use std::process::{Command, Output};

fn custody(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env("CUSTODY_HOME", home)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("CUSTODY_STORE")
        .env_remove("CUSTODY_KEY")
        .output()
        .expect("run custody")
}

/// An incident directory with more small files than one reader batch holds, a file just
/// above the in-memory threshold, a multi-chunk large file and two identical files.
fn make_incident(dir: &Path) {
    let mem = dir.join("memory");
    std::fs::create_dir_all(&mem).unwrap();
    for i in 0..700 {
        let body = format!("{{\"memory_id\":\"mem-{i:06}\",\"content\":\"{}\"}}\n", "x".repeat(i % 97));
        std::fs::write(mem.join(format!("m{i:04}.json")), body).unwrap();
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut big = Vec::new();
    let mut i = 0u64;
    while big.len() < (5 << 20) + 123 {
        big.extend_from_slice(format!("{{\"seq\":{i},\"v\":{}}}\n", i.wrapping_mul(2654435761) % 1000003).as_bytes());
        i += 1;
    }
    std::fs::write(logs.join("tool_calls.jsonl"), &big).unwrap();
    std::fs::write(logs.join("just_above_threshold.log"), vec![b'a'; (1 << 20) + 1]).unwrap();
    std::fs::write(logs.join("copy_of_memory.json"), std::fs::read(mem.join("m0001.json")).unwrap()).unwrap();
}

fn no_progress_line(stderr: &[u8], label: &str) {
    let s = String::from_utf8_lossy(stderr);
    assert!(!s.contains('\r') && !s.contains("\x1b[2K"), "progress redraws on a non-terminal stderr: {s:?}");
    assert!(!s.contains(&format!("{label}: ")), "a progress line on a non-terminal stderr: {s:?}");
}

#[test]
fn many_small_and_large_files_seal_deterministically_and_verify_intact_without_progress_output() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let inc = tmp.path().join("incident");
    make_incident(&inc);
    let inc_s = inc.to_str().unwrap();

    let mut bundles = Vec::new();
    for store in ["store-a", "store-b"] {
        let store = tmp.path().join(store);
        let out = custody(&home, &["preserve", "--store", store.to_str().unwrap(), "--incident-dir", inc_s, "--json"]);
        assert!(out.status.success(), "preserve failed: {}", String::from_utf8_lossy(&out.stderr));
        no_progress_line(&out.stderr, "preserve");
        let b: Vec<_> = std::fs::read_dir(store.join("bundles")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(b.len(), 1);
        bundles.push(std::fs::read(&b[0]).unwrap());

        let out = custody(&home, &["verify", "--store", store.to_str().unwrap(), "--all"]);
        assert!(out.status.success(), "verify --all failed: {}", String::from_utf8_lossy(&out.stdout));
        no_progress_line(&out.stderr, "verify");
    }
    assert!(bundles[0] == bundles[1], "same evidence and clock must give byte-identical bundles");

    // The bundle file itself, through the pipelined decoder.
    let file = tmp.path().join("b.tar.zst");
    std::fs::write(&file, &bundles[0]).unwrap();
    let out = custody(&home, &["verify", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "verify failed: {}", String::from_utf8_lossy(&out.stdout));
    no_progress_line(&out.stderr, "verify");

    // Every evidence byte comes back out.
    let to = tmp.path().join("out");
    let out = custody(&home, &["extract", file.to_str().unwrap(), "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "extract failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut found = 0;
    for e in walk(&to) {
        let name = e.file_name().unwrap().to_str().unwrap().to_string();
        if name == "tool_calls.jsonl" {
            assert!(std::fs::read(&e).unwrap() == std::fs::read(inc.join("logs/tool_calls.jsonl")).unwrap());
            found += 1;
        }
        if name == "m0699.json" {
            assert!(std::fs::read(&e).unwrap() == std::fs::read(inc.join("memory/m0699.json")).unwrap());
            found += 1;
        }
    }
    assert_eq!(found, 2, "extracted files not found under {}", to.display());
}

#[test]
fn quiet_flag_is_accepted_by_preserve_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let store = tmp.path().join("store");
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/duplicate-ticket");
    let out = custody(
        &home,
        &["preserve", "--quiet", "--store", store.to_str().unwrap(), "--incident-dir", inc.to_str().unwrap()],
    );
    assert!(out.status.success(), "preserve --quiet failed: {}", String::from_utf8_lossy(&out.stderr));
    no_progress_line(&out.stderr, "preserve");
    let out = custody(&home, &["verify", "-q", "--store", store.to_str().unwrap(), "--all"]);
    assert!(out.status.success(), "verify -q failed: {}", String::from_utf8_lossy(&out.stdout));
    no_progress_line(&out.stderr, "verify");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The sealer renders the entries' and the journal's JSON while it seals and splices them into
/// `manifest.json` at the end; the result must be byte for byte what serializing the manifest
/// writes (file names and notes with quotes, backslashes, control characters and non-ASCII
/// text; skipped and collected events; responder notes; the analysis reference).
#[test]
fn spliced_manifest_json_is_byte_identical_to_serializing_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let inc = tmp.path().join("incident");
    let logs = inc.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for name in ["plain.jsonl", "quote \"and\" back\\slash.log", "tab\tand\u{1}ctl.log", "ünïcødé ✓.json"] {
        std::fs::write(logs.join(name), format!("{{\"trace_id\":\"{}\",\"n\":\"{name}\"}}\n", "ab".repeat(16)))
            .unwrap();
    }
    std::os::unix::fs::symlink("/nonexistent/target", logs.join("dangling")).unwrap();
    let store = tmp.path().join("store");
    let out = custody(
        &home,
        &[
            "preserve",
            "--store",
            store.to_str().unwrap(),
            "--incident-dir",
            inc.to_str().unwrap(),
            "--trace-id",
            &"ab".repeat(16),
            "--note",
            "responder: \"quoted\" \\ ✓ \u{7}",
        ],
    );
    assert!(out.status.success(), "preserve failed: {}", String::from_utf8_lossy(&out.stderr));
    let bundle = std::fs::read_dir(store.join("bundles")).unwrap().next().unwrap().unwrap().path();
    let dec = zstd::stream::read::Decoder::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    let mut ar = tar::Archive::new(dec);
    let mut raw = None;
    for m in ar.entries().unwrap() {
        let mut m = m.unwrap();
        if m.path().unwrap().to_str() == Some("manifest.json") {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut m, &mut v).unwrap();
            raw = Some(v);
        }
    }
    let raw = raw.expect("manifest.json in the bundle");
    let m: custody::bundle::manifest::Manifest = serde_json::from_slice(&raw).unwrap();
    assert!(m.journal.iter().any(|e| e.detail.as_deref().is_some_and(|d| d.contains("symbolic link"))));
    assert!(m.journal.iter().any(|e| e.detail.as_deref().is_some_and(|d| d.contains("\"quoted\""))));
    assert_eq!(m.entries.len(), 4);
    assert!(m.analysis_ref.is_some());
    assert!(
        custody::bundle::write::manifest_to_bytes(&m) == raw,
        "the spliced manifest.json differs from the serialized manifest"
    );
    // …and it holds the real chain: every event's hash is its content's, linked to the last.
    assert!(custody::bundle::journal::check_chain(&m.journal).is_empty(), "the spliced journal's chain is broken");
    let out = custody(&home, &["verify", "--store", store.to_str().unwrap(), "--all"]);
    assert!(out.status.success(), "verify failed: {}", String::from_utf8_lossy(&out.stdout));
}

/// Regression: a file named with a backslash (legal on Unix) was sealed under that bundle
/// path, which the verifier rejects (a separator on Windows), so `preserve` produced a bundle
/// its own `verify` failed. The bundle path now maps it (U+FF3C), the entry keeps the real
/// source path and the journal says so.
#[test]
fn regression_file_name_with_backslash_made_a_bundle_that_failed_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let inc = tmp.path().join("incident");
    std::fs::create_dir_all(inc.join("logs")).unwrap();
    std::fs::write(inc.join("logs").join("C:\\agent\\run.log"), b"evidence\n").unwrap();
    let store = tmp.path().join("store");
    let (s, i) = (store.to_str().unwrap(), inc.to_str().unwrap());
    let out = custody(&home, &["preserve", "--store", s, "--incident-dir", i, "--no-analyze", "--json"]);
    assert!(out.status.success(), "preserve failed: {}", String::from_utf8_lossy(&out.stderr));
    let out = custody(&home, &["verify", "--store", s, "--all"]);
    assert!(out.status.success(), "verify failed: {}", String::from_utf8_lossy(&out.stdout));
    let bundle = std::fs::read_dir(store.join("bundles")).unwrap().next().unwrap().unwrap().path();
    let out = custody(&home, &["show", "--json", bundle.to_str().unwrap()]);
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(show.contains("logs/C:\u{ff3c}agent\u{ff3c}run.log"), "mapped bundle path missing: {show}");
    assert!(show.contains("C:\\\\agent\\\\run.log"), "the real source path must be kept: {show}");
    assert!(show.contains("is not allowed (contains a backslash)"), "no journal note: {show}");
}

/// Runs `custody ARGS` with stdin, stdout and stderr on a pseudo-terminal (util-linux
/// `script`), returning everything the terminal received.
fn custody_on_a_terminal(home: &Path, args: &[&str]) -> String {
    let mut cmd = vec![env!("CARGO_BIN_EXE_custody").to_string()];
    cmd.extend(args.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))));
    let out = Command::new("script")
        .args(["-qefc", &cmd.join(" "), "/dev/null"])
        .env("CUSTODY_HOME", home)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("CUSTODY_STORE")
        .env_remove("CUSTODY_KEY")
        .output()
        .expect("run custody under script(1) (util-linux)");
    assert!(out.status.success(), "custody on a terminal failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// On a terminal, preserve and verify draw a progress line (bytes, files, totals) on stderr and
/// erase it when done; `--quiet` draws nothing.
#[test]
fn progress_line_is_drawn_and_erased_on_a_terminal_and_quiet_silences_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let inc = tmp.path().join("incident");
    make_incident(&inc);
    let (store, i) = (tmp.path().join("store"), inc.to_str().unwrap());
    let s = store.to_str().unwrap();

    let tty = custody_on_a_terminal(&home, &["preserve", "--store", s, "--incident-dir", i]);
    assert!(tty.contains("\r\x1b[2Kpreserve: "), "no progress line on a terminal: {tty:?}");
    assert!(
        tty.contains("\r\x1b[2K\r\nsealed") || tty.contains("\r\x1b[2Ksealed"),
        "the line is erased first: {tty:?}"
    );

    let tty = custody_on_a_terminal(&home, &["verify", "--store", s, "--all"]);
    assert!(tty.contains("\r\x1b[2Kverify: "), "no progress line for verify: {tty:?}");

    let tty = custody_on_a_terminal(&home, &["preserve", "--quiet", "--store", s, "--incident-dir", i]);
    assert!(!tty.contains("\x1b[2K") && !tty.contains("\rpreserve: "), "--quiet must draw nothing: {tty:?}");
    let tty = custody_on_a_terminal(&home, &["verify", "--quiet", "--store", s, "--all"]);
    assert!(!tty.contains("\x1b[2K") && !tty.contains("\rverify: "), "--quiet must draw nothing: {tty:?}");
}
