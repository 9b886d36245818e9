//! Round trip through the binary: preserve → verify (file, store digest, whole ledger) → show
//! → list → extract gives back every fixture byte; sources from files, directories and stdin;
//! the default key on first use; missing sources, FIFOs and symlinks recorded, not fatal.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{files_under, fixture_dir, made, Env};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn preserve_verify_show_list_extract_gives_back_every_fixture_byte() {
    let (env, m) = made();
    let store = s(&m.store);
    let fixture = files_under(&fixture_dir());
    assert!(fixture.len() >= 15, "fixture unexpectedly small: {}", fixture.len());

    // preserve --json: digest of the stored file, position 1, nothing went wrong.
    assert!(m.digest.starts_with("sha256:"));
    assert_eq!(m.digest, format!("sha256:{}", crate::util::sha256_hex(&fs::read(&m.bundle).unwrap())));
    assert_eq!(m.preserve["ledger"]["position"], 1);
    assert_eq!(m.preserve["files"], fixture.len());
    assert_eq!(m.preserve["outcome"], "created");
    assert_eq!(m.preserve["problems"].as_array().unwrap().len(), 0);

    // verify: the file, the digest in the store, and the whole ledger.
    let v = env.run(&["verify", s(&m.bundle), "--json"]);
    v.expect(0);
    let r = v.json();
    assert_eq!(r["verdict"], "intact");
    assert_eq!(r["signer"]["trusted"], true);
    let human = env.run(&["verify", s(&m.bundle)]);
    human.expect(0);
    assert!(human.stdout.contains("RESULT: INTACT"), "{}", human.stdout);

    let v = env.run(&["verify", "--store", store, &m.digest, "--json"]);
    v.expect(0);
    let r = v.json();
    assert_eq!(r["verdict"], "intact");
    assert_eq!(r["ledger"]["position"], 1);
    let ledger_check = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == "ledger").unwrap().clone();
    assert_eq!(ledger_check["status"], "pass", "{ledger_check}");
    // Bare hex works as well as sha256:<hex>.
    env.run(&["verify", "--store", store, m.digest.trim_start_matches("sha256:")]).expect(0);

    let v = env.run(&["verify", "--store", store, "--all", "--json"]);
    v.expect(0);
    let r = v.json();
    assert_eq!(r["verdict"], "intact");
    assert_eq!(r["bundles"].as_array().unwrap().len(), 1);
    assert_eq!(r["bundles"][0]["status"], "intact");

    // show: file and store; identifiers and entries are there.
    let sh = env.run(&["show", s(&m.bundle), "--json"]);
    sh.expect(0);
    let j = sh.json();
    assert_eq!(j["bundle"], m.digest.as_str());
    assert_eq!(j["verdict"], "intact");
    let entries = j["manifest"]["entries"].as_array().unwrap();
    let paths: Vec<&str> = entries.iter().map(|e| e["path"].as_str().unwrap()).collect();
    let want: Vec<&str> = fixture.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, want, "manifest entry paths are the fixture's relative paths, sorted");
    let human = env.run(&["show", "--store", store, &m.digest]);
    human.expect(0);
    assert!(human.stdout.contains("traces/agent-run.otlp.json"), "{}", human.stdout);
    assert!(human.stdout.contains("INTACT"), "{}", human.stdout);

    // list: one entry naming the bundle and where it is.
    let l = env.run(&["list", "--store", store, "--json"]);
    l.expect(0);
    let j = l.json();
    let rows = j["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["bundle"], m.digest.as_str());
    assert_eq!(rows[0]["position"], 1);
    assert_eq!(rows[0]["valid"], true);
    assert_eq!(rows[0]["location"], m.preserve["location"]);

    // extract from the file and from the store: every file byte-identical to the fixture.
    for (i, args) in [vec!["extract", s(&m.bundle)], vec!["extract", "--store", store, &m.digest]].iter().enumerate() {
        let to = env.path(&format!("out{i}"));
        let mut a = args.clone();
        a.extend(["--to", s(&to), "--json"]);
        let x = env.run(&a);
        x.expect(0);
        let j = x.json();
        assert_eq!(j["files"].as_array().unwrap().len(), fixture.len());
        let got = files_under(&to);
        assert_eq!(got.len(), fixture.len());
        for ((gp, gb), (wp, wb)) in got.iter().zip(&fixture) {
            assert_eq!(gp, wp);
            assert!(gb == wb, "extracted {gp} differs from the fixture file");
        }
        let total: u64 = fixture.iter().map(|(_, b)| b.len() as u64).sum();
        assert_eq!(j["bytes"], total);
    }
}

#[test]
fn a_second_preserve_links_to_the_first_in_the_ledger() {
    let (env, first) = made();
    let second = env.preserve_fixture(&["--note", "second look"]);
    assert_ne!(first.digest, second.digest);
    assert_eq!(second.preserve["ledger"]["position"], 2);
    let sh = env.run(&["show", s(&second.bundle), "--json"]).json();
    assert_eq!(sh["manifest"]["ledger_prev"]["position"], 1);
    // In the manifest, ledger_prev.bundle is the bare hex digest.
    assert_eq!(sh["manifest"]["ledger_prev"]["bundle"], first.digest.trim_start_matches("sha256:"));
    assert_eq!(sh["manifest"]["incident"]["notes"][0], "second look");
    let all = env.run(&["verify", "--store", s(&env.store()), "--all", "--json"]);
    all.expect(0);
    assert_eq!(all.json()["bundles"].as_array().unwrap().len(), 2);
    let l = env.run(&["list", "--store", s(&env.store()), "--json"]).json();
    let bundles: Vec<_> = l["entries"].as_array().unwrap().iter().map(|e| e["bundle"].clone()).collect();
    assert_eq!(bundles, vec![first.digest.as_str(), second.digest.as_str()], "oldest first");
}

#[test]
fn default_key_is_created_on_first_use_0600_with_a_notice() {
    let env = Env::new();
    assert!(!env.key().exists());
    let fx = fixture_dir();
    let out = env.run(&["preserve", "--incident-dir", s(&fx), "--json"]);
    out.expect(0);
    let mode = fs::metadata(env.key()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "default private key mode");
    assert!(env.pubkey().is_file());
    let keyid = out.json()["signer"]["keyid"].as_str().unwrap().to_string();
    assert_eq!(keyid.len(), 64);
    assert!(out.stderr.contains(&keyid), "the notice names the key id: {}", out.stderr);
    assert!(out.stderr.contains(s(&env.pubkey())), "the notice names the public key path: {}", out.stderr);
    // The key id is sha256 of the SPKI DER of the public key written next to it.
    let pubk = custody::keys::PublicKey::load(&env.pubkey()).unwrap();
    assert_eq!(pubk.id.to_string(), keyid);
    // Second use: same key, no notice.
    let again = env.run(&["preserve", "--incident-dir", s(&fx), "--json"]);
    again.expect(0);
    assert_eq!(again.json()["signer"]["keyid"], keyid.as_str());
    assert!(!again.stderr.contains("created signing key"), "{}", again.stderr);
}

#[test]
fn sources_from_a_file_a_directory_and_stdin() {
    let env = Env::new();
    let fx = fixture_dir();
    let file = fx.join("logs/tool_calls.jsonl");
    let dir = fx.join("memory");
    let stdin = b"{\"line\":1}\n{\"line\":2, \"not closed\"\n\x00\xff raw bytes kept as they are\n".to_vec();
    let out = env.run_stdin(
        &[
            "preserve",
            "--source",
            &format!("logs={}", s(&file)),
            "--source",
            &format!("memory={}", s(&dir)),
            "--source",
            "egress=-",
            "--json",
        ],
        &stdin,
    );
    out.expect(0);
    let j = out.json();
    let bundle = j["location"].as_str().unwrap().to_string();
    let show = env.run(&["show", &bundle, "--json"]).json();
    let entries = show["manifest"]["entries"].as_array().unwrap();
    let by_path = |p: &str| entries.iter().find(|e| e["path"] == p).unwrap_or_else(|| panic!("no entry {p}"));
    assert_eq!(by_path("logs/tool_calls.jsonl")["kind"], "logs");
    assert_eq!(by_path("logs/tool_calls.jsonl")["source"], s(&file));
    assert_eq!(by_path("egress/stdin")["source"], "-");
    assert_eq!(by_path("egress/stdin")["kind"], "egress");
    assert_eq!(by_path("memory/mem-000411.json")["kind"], "memory");

    let to = env.path("x");
    env.run(&["extract", &bundle, "--to", s(&to)]).expect(0);
    let got = files_under(&to);
    let mut want: Vec<(String, Vec<u8>)> =
        vec![("egress/stdin".into(), stdin.clone()), ("logs/tool_calls.jsonl".into(), fs::read(&file).unwrap())];
    for (p, b) in files_under(&dir) {
        want.push((format!("memory/{p}"), b));
    }
    want.sort();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!(g.1 == w.1, "{} differs", g.0);
    }
}

#[test]
fn missing_incident_dir_and_missing_source_are_journal_errors_not_fatal() {
    let env = Env::new();
    let fx = fixture_dir();
    let gone = env.path("no-such-file.jsonl");
    let out = env.run(&["preserve", "--incident-dir", s(&fx), "--source", &format!("logs={}", s(&gone)), "--json"]);
    out.expect(0);
    let j = out.json();
    let problems = j["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["event"] == "error" && p["path"] == s(&gone)),
        "the missing source is recorded as an error: {problems:?}"
    );
    let show = env.run(&["show", j["location"].as_str().unwrap(), "--json"]).json();
    let journal = show["manifest"]["journal"].as_array().unwrap();
    assert!(journal.iter().any(|e| e["event"] == "error" && e["path"] == s(&gone)));

    // A missing incident dir next to a good source: recorded, still sealed.
    let no_dir = env.path("no-such-incident");
    let out = env.run(&[
        "preserve",
        "--incident-dir",
        s(&no_dir),
        "--source",
        &format!("logs={}", s(&fx.join("logs/tool_calls.jsonl"))),
        "--json",
    ]);
    out.expect(0);
    let problems = out.json()["problems"].as_array().unwrap().clone();
    assert!(problems.iter().any(|p| p["event"] == "error" && p["path"] == s(&no_dir)), "{problems:?}");
}

#[test]
fn nothing_collectable_exits_2_and_records_nothing() {
    let env = Env::new();
    let out = env.run(&[
        "preserve",
        "--incident-dir",
        s(&env.path("nope")),
        "--source",
        &format!("logs={}", s(&env.path("nope2"))),
    ]);
    out.expect(2);
    assert!(out.stderr.contains("nothing could be collected"), "{}", out.stderr);
    // No bundle and no ledger entry were written.
    let count = |d: &str| fs::read_dir(env.store().join(d)).map(|r| r.count()).unwrap_or(0);
    assert_eq!(count("bundles"), 0);
    assert_eq!(count("ledger"), 0);
    // No arguments at all is a usage error.
    env.run(&["preserve"]).expect(2);
}

/// Run with a deadline: a FIFO must never make preserve block.
fn run_with_deadline(env: &Env, args: &[&str], limit: Duration) -> crate::util::Out {
    let mut c: Command = env.cmd(args);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("custody preserve hung on a FIFO (killed after {limit:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn fifo_and_symlink_in_an_incident_dir_are_skipped_not_followed() {
    let env = Env::new();
    let inc = env.path("incident");
    fs::create_dir_all(inc.join("logs")).unwrap();
    fs::write(inc.join("logs/tool_calls.jsonl"), b"{\"a\":1}\n").unwrap();
    let secret = env.path("outside-secret.txt");
    fs::write(&secret, b"must not be collected").unwrap();
    std::os::unix::fs::symlink(&secret, inc.join("logs/link.jsonl")).unwrap();
    let fifo = inc.join("logs/pipe.jsonl");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo is needed for this test");
    assert!(st.success());

    let out = run_with_deadline(&env, &["preserve", "--incident-dir", s(&inc), "--json"], Duration::from_secs(60));
    out.expect(0);
    let j = out.json();
    let problems = j["problems"].as_array().unwrap();
    for p in [inc.join("logs/link.jsonl"), fifo.clone()] {
        assert!(
            problems.iter().any(|x| x["event"] == "skipped" && x["path"] == s(&p)),
            "{} should be recorded as skipped: {problems:?}",
            p.display()
        );
    }
    let show = env.run(&["show", j["location"].as_str().unwrap(), "--json"]).json();
    let paths: Vec<&str> =
        show["manifest"]["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["logs/tool_calls.jsonl"], "only the regular file is collected");
    // The symlink's target never made it into the bundle.
    let raw = crate::util::decompress(&fs::read(j["location"].as_str().unwrap()).unwrap());
    assert!(!raw.windows(21).any(|w| w == b"must not be collected"));
}
