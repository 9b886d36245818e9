//! The command line's contract: exit codes (0 ok, 1 findings, 2 usage/operational error),
//! error messages that say what is wrong and what to do, and no stray stdout on errors.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::util::*;

#[track_caller]
fn usage_error(env: &Env, args: &[&str], says: &str) {
    let o = env.run(args);
    o.expect(2);
    assert!(o.stderr.contains(says), "{args:?}: stderr should say `{says}`:\n{}", o.stderr);
    assert!(o.stdout.trim().is_empty(), "{args:?}: nothing on stdout on error, got:\n{}", o.stdout);
}

#[test]
fn help_and_version_exit_0() {
    let env = Env::new();
    let h = env.run(&["--help"]);
    h.expect(0);
    for cmd in ["keygen", "preserve", "verify", "show", "extract", "list"] {
        assert!(h.stdout.contains(cmd), "--help lists {cmd}");
        env.run(&[cmd, "--help"]).expect(0);
    }
    let v = env.run(&["--version"]);
    v.expect(0);
    assert!(v.stdout.contains(env!("CARGO_PKG_VERSION")));
}

/// `analyze --format` takes the same overrides as preserve: its help lists the same formats.
#[test]
fn analyze_help_lists_the_formats_as_preserve_help_does() {
    let env = Env::new();
    let list = |cmd: &str| {
        let h = env.run(&[cmd, "--help"]);
        h.expect(0);
        let after = h.stdout.split("FORMAT is one of:").nth(1).map(str::to_string);
        after.unwrap_or_else(|| panic!("{cmd} --help lists no format:\n{}", h.stdout))
    };
    for cmd in ["preserve", "analyze"] {
        let text = list(cmd);
        for line in custody::collect::analyze::Format::help().lines() {
            let name = line.split([':', ' ']).next().unwrap_or_default();
            assert!(text.contains(name), "{cmd} --help lacks the format `{name}`:\n{text}");
        }
    }
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let env = Env::new();
    let fx = fixture_dir();
    let fx = fx.to_str().unwrap();
    usage_error(&env, &["frobnicate"], "unrecognized subcommand");
    usage_error(&env, &["verify"], "verify needs a BUNDLE_FILE");
    usage_error(&env, &["verify", "--all"], "--store");
    usage_error(&env, &["verify", "/no/such/bundle.tar.zst"], "does not exist");
    usage_error(&env, &["verify", "--store", env.store().to_str().unwrap(), "not-a-digest"], "must be a bundle digest");
    usage_error(&env, &["preserve", "--incident-dir", fx, "--category", "oops"], "policy_bypass");
    usage_error(&env, &["preserve", "--incident-dir", fx, "--side-effect", "maybe"], "not-happened");
    usage_error(&env, &["preserve", "--source", "no-equals-sign"], "KIND=PATH");
    usage_error(&env, &["preserve", "--source", "bad/kind=x"], "letters, digits");
    usage_error(&env, &["preserve", "--incident-dir", fx, "--level", "99"], "99");
    // Nothing was created by any of these.
    assert!(!env.key().exists(), "a usage error must not create the default key");
}

/// Reading commands used to create a local store that did not exist: `verify --store <typo>
/// --all` made an empty store there and reported it INTACT, and `list` before the first
/// preserve made the default one. Only `preserve` and `store init` create a store now.
#[test]
fn regression_verify_of_a_mistyped_store_path_created_it_and_said_intact() {
    let env = Env::new();
    let missing = env.path("no-such-store");
    let m = missing.to_str().unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let says = "store directory";
    usage_error(&env, &["verify", "--store", m, "--all"], says);
    usage_error(&env, &["verify", "--store", m, "--all", "--quick"], says);
    usage_error(&env, &["verify", "--store", m, &digest], says);
    usage_error(&env, &["show", "--store", m, &digest], says);
    usage_error(&env, &["extract", "--store", m, &digest, "--to", "out"], says);
    usage_error(&env, &["list", "--store", m], says);
    usage_error(&env, &["checkpoint", "--store", m], says);
    usage_error(&env, &["store", "repair", m], says);
    let o = env.run(&["verify", "--store", m, "--all"]);
    assert!(o.stderr.contains(&format!("{m} does not exist")), "names the path: {}", o.stderr);
    assert!(o.stderr.contains("only `custody preserve` and `custody store init` create a store"), "{}", o.stderr);
    assert!(!missing.exists(), "a reading command created the store");
    assert!(!env.path("out").exists(), "extract created its target for a store that does not exist");
    // The default store, before the first preserve.
    usage_error(&env, &["list"], "does not exist");
    assert!(!env.store().exists(), "`list` created the default store");
    assert!(!env.key().exists(), "`checkpoint` created a key for a store that does not exist");
    // `store init` still creates one, and an existing directory is read as it is, with
    // nothing added to it.
    env.run(&["store", "init", m]).expect(0);
    assert!(missing.join("ledger").is_dir() && missing.join("bundles").is_dir());
    let file = env.path("a-file");
    fs::write(&file, b"x").unwrap();
    usage_error(&env, &["verify", "--store", file.to_str().unwrap(), "--all"], "names a file, not a store directory");
    let bare = env.path("bare");
    fs::create_dir(&bare).unwrap();
    env.run(&["list", "--store", bare.to_str().unwrap()]).expect(0);
    assert_eq!(fs::read_dir(&bare).unwrap().count(), 0, "listing a store wrote into it");
}

/// An empty store verifies (nothing in it is wrong), but says it held nothing: a store URL
/// that points at the wrong bucket prefix or directory must not read as a clean bill.
#[test]
fn an_empty_store_verifies_with_a_warning_that_nothing_was_checked() {
    let env = Env::new();
    let empty = env.path("empty");
    fs::create_dir(&empty).unwrap();
    let o = env.run(&["verify", "--store", empty.to_str().unwrap(), "--all", "--json"]);
    o.expect(0);
    let v = o.json();
    let warnings: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "warning")
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(warnings, ["empty_store"], "{v:#}");
    let human = env.run(&["verify", "--store", empty.to_str().unwrap(), "--all"]);
    human.expect(0);
    assert!(human.stdout.contains("nothing was verified"), "{}", human.stdout);
    // A store with a bundle has no such warning.
    let (env, m) = made();
    let o = env.run(&["verify", "--store", m.store.to_str().unwrap(), "--all", "--json"]);
    o.expect(0);
    assert!(!o.stdout.contains("empty_store"), "{}", o.stdout);
}

/// `verify` of a file that is not a bundle said its analysis was "none (sealed with
/// --no-analyze)" and its blobs all matched: nothing was known about either.
#[test]
fn regression_a_non_bundle_file_was_said_sealed_with_no_analyze() {
    let env = Env::new();
    let junk = env.path("junk.tar.zst");
    fs::write(&junk, b"not a bundle at all").unwrap();
    let o = env.run(&["verify".as_ref(), junk.as_os_str()]);
    o.expect(1);
    assert!(!o.stdout.contains("--no-analyze"), "{}", o.stdout);
    assert!(o.stdout.contains("not checked: without a readable manifest"), "{}", o.stdout);
    let blobs = o.stdout.lines().find(|l| l.contains("] blobs")).expect("a blobs line");
    assert!(blobs.starts_with("[ skip ]") && blobs.contains("no blob could be read"), "{blobs}");
}

/// Errors printed their cause twice ("cannot read key file K: No such file or directory (os
/// error 2): No such file or directory (os error 2)"): the library's messages include their
/// source's text, and the binary printed the whole chain after them.
#[test]
fn regression_error_messages_said_their_cause_twice() {
    let env = Env::new();
    let junk = env.path("junk.tar.zst");
    fs::write(&junk, b"x").unwrap();
    let missing_key = env.path("no-such.pub");
    let o = env.run(&["verify".as_ref(), junk.as_os_str(), "--trusted-key".as_ref(), missing_key.as_os_str()]);
    o.expect(2);
    let line = o.stderr.lines().find(|l| l.starts_with("custody: error:")).expect("an error line");
    assert!(line.contains(&format!("cannot use trusted key {}", missing_key.display())), "{line}");
    assert_eq!(line.matches("No such file or directory").count(), 1, "the cause once: {line}");
    let missing_store = env.path("no-such-store");
    let o = env.run(&["list".as_ref(), "--store".as_ref(), missing_store.as_os_str()]);
    o.expect(2);
    assert_eq!(o.stderr.matches("does not exist").count(), 1, "{}", o.stderr);
    // The binary no longer hides repeats (it removed any cause already said anywhere in the
    // line, and so also a different cause that happened to read the same): the library's
    // errors never write their source into their message, and the line is printed as the
    // chain. Each failing invocation: what and where, and the cause, once.
    let fx = fixture_dir();
    let fx = fx.to_str().unwrap();
    let p = |name: &str| env.path(name).to_str().unwrap().to_string();
    fs::write(env.path("bad-config.json"), b"{").unwrap();
    fs::write(env.path("bad-spec.toml"), b"x = ").unwrap();
    fs::write(env.path("bad-map.toml"), b"x = ").unwrap();
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec!["preserve".into(), "--incident-dir".into(), fx.into(), "--store-config".into(), p("no-config.json")],
            format!("cannot read store config {}", p("no-config.json")),
            "No such file or directory",
        ),
        (
            vec!["preserve".into(), "--incident-dir".into(), fx.into(), "--store-config".into(), p("bad-config.json")],
            format!("store config {} is not valid (expected JSON with keys", p("bad-config.json")),
            "EOF while parsing",
        ),
        (
            vec!["preserve".into(), "--spec".into(), p("no-spec.toml")],
            format!("cannot read incident spec {}", p("no-spec.toml")),
            "No such file or directory",
        ),
        (
            vec!["preserve".into(), "--spec".into(), p("bad-spec.toml")],
            format!("incident spec {} is not valid", p("bad-spec.toml")),
            "TOML parse error",
        ),
        (
            vec!["preserve".into(), "--incident-dir".into(), fx.into(), "--field-map".into(), p("bad-map.toml")],
            format!(
                "the field mapping cannot be used (fix the file, or leave out --field-map): field mapping {}: invalid TOML field mapping",
                p("bad-map.toml")
            ),
            "TOML parse error",
        ),
        (
            vec!["keygen".into(), "--out".into(), p("bad-spec.toml/k.key")],
            format!("cannot create the key directory {}", p("bad-spec.toml")),
            "File exists",
        ),
        (
            vec!["verify".into(), junk.to_str().unwrap().into(), "--trusted-key".into(), p("junk.tar.zst")],
            "is not an Ed25519 public key in SPKI PEM form".into(),
            "PEM preamble",
        ),
    ];
    for (args, what, cause) in cases {
        let o = env.run(&args);
        o.expect(2);
        let line = o.stderr.lines().find(|l| l.starts_with("custody: error:")).expect("an error line");
        assert!(line.contains(&what), "{args:?}: says what and where ({what}): {line}");
        assert_eq!(line.matches(cause).count(), 1, "{args:?}: the cause `{cause}` once: {line}");
        let parts: Vec<&str> = line.split(": ").filter(|s| s.len() > 12).collect();
        for (i, a) in parts.iter().enumerate() {
            assert!(!parts[i + 1..].contains(a), "{args:?}: `{a}` twice: {line}");
        }
    }
}

/// A preserve interrupted by SIGTERM or SIGINT left its staging file (as large as the
/// bundle) in `<store>/.staging`, and the spool of its standard input in the temporary
/// directory, for good: a signal's default action runs no destructor.
#[test]
fn regression_an_interrupted_preserve_left_its_staging_file_behind() {
    use std::io::{BufReader, Write};
    use std::process::Stdio;
    let mut signals = vec![("TERM", 15, 143)];
    if custody::unfinished::inherited_ignored_signals() & (1 << (2 - 1)) == 0 {
        signals.push(("INT", 2, 130));
    } else {
        // Inherited as ignored (this test runs as a background job of a script): the child
        // inherits that too, and rightly keeps it ignored.
        eprintln!("SIGINT is ignored by the test process: only SIGTERM is sent");
    }
    for (name, _, code) in signals {
        let env = Env::new();
        let fx = fixture_dir();
        let mut c = env.cmd(&["preserve", "--quiet", "--incident-dir", fx.to_str().unwrap(), "--source", "notes=-"]);
        c.env("CUSTODY_TEST_PAUSE", "sealing").stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"what the responder saw\n").unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        wait_for_pause(&mut err, "sealing");
        let staging = env.store().join(".staging");
        let partial: Vec<PathBuf> = fs::read_dir(&staging).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(partial.len(), 1, "the staging file exists while sealing: {partial:?}");
        let killed = std::process::Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status();
        assert!(killed.unwrap().success());
        let status = child.wait().unwrap();
        let mut rest = String::new();
        err.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(code), "SIG{name}: exit 128 + signal; stderr: {rest}");
        assert!(rest.contains(&format!("interrupted by SIG{name}: removed 2 unfinished file(s)")), "{rest}");
        assert!(rest.contains(&partial[0].display().to_string()), "names the staging file: {rest}");
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0, "SIG{name}: the staging file is gone");
        // The other file removed is the spool of standard input, outside the store.
        let listed = rest.rsplit_once(" (").map(|(_, l)| l.trim_end().trim_end_matches(')')).unwrap_or("");
        let paths: Vec<&str> = listed.split(", ").collect();
        assert_eq!(paths.len(), 2, "{rest}");
        for p in paths {
            assert!(!PathBuf::from(p).exists(), "{p} is still there");
        }
        assert_eq!(fs::read_dir(env.store().join("bundles")).unwrap().count(), 0, "nothing sealed");
        assert_eq!(fs::read_dir(env.store().join("ledger")).unwrap().count(), 0, "nothing recorded");
    }
}

/// A staging file left by a killed run (SIGKILL: nothing can clean up) is removed by the
/// next preserve once it has not been written to for an hour; a recent one may belong to a
/// preserve still running, and is left alone.
#[test]
fn stale_staging_files_of_killed_runs_are_swept_and_recent_ones_kept() {
    let env = Env::new();
    env.preserve_fixture(&[]);
    let staging = env.store().join(".staging");
    let (old, recent, other) =
        (staging.join("bundle-dead01.partial"), staging.join("bundle-live01.partial"), staging.join("notes.txt"));
    for p in [&old, &recent, &other] {
        fs::write(p, b"half a bundle").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for p in [&old, &other] {
        fs::File::options().write(true).open(p).unwrap().set_modified(two_hours_ago).unwrap();
    }
    let fx = fixture_dir();
    let o = env.run(&["preserve", "--incident-dir", fx.to_str().unwrap(), "--note", "second"]);
    o.expect(0);
    assert!(!old.exists(), "the stale staging file is removed");
    assert!(o.stderr.contains(&format!("removed {}", old.display())), "{}", o.stderr);
    assert!(recent.exists(), "a recent staging file may be a running preserve's");
    assert!(other.exists(), "only bundle-*.partial files are staging files");
    // `store repair` sweeps too.
    fs::File::options().write(true).open(&recent).unwrap().set_modified(two_hours_ago).unwrap();
    let o = env.run(&["store", "repair", env.store().to_str().unwrap()]);
    o.expect(0);
    assert!(!recent.exists(), "store repair removes it once stale");
    assert!(o.stderr.contains("left by an interrupted run"), "{}", o.stderr);
    env.run(&["verify", "--store", env.store().to_str().unwrap(), "--all"]).expect(0);
}

#[test]
fn keys_are_never_overwritten_and_loose_modes_are_refused() {
    let env = Env::new();
    let k = env.path("k.key");
    env.run(&["keygen".as_ref(), "--out".as_ref(), k.as_os_str()]).expect(0);
    let before = fs::read(&k).unwrap();
    let again = env.run(&["keygen".as_ref(), "--out".as_ref(), k.as_os_str()]);
    again.expect(2);
    assert!(again.stderr.contains("refusing to overwrite"), "{}", again.stderr);
    assert_eq!(fs::read(&k).unwrap(), before);

    fs::set_permissions(&k, fs::Permissions::from_mode(0o644)).unwrap();
    let fx = fixture_dir();
    let o = env.run(&["preserve", "--incident-dir", fx.to_str().unwrap(), "--key", k.to_str().unwrap()]);
    o.expect(2);
    assert!(o.stderr.contains("chmod 600"), "the error says how to fix it: {}", o.stderr);
    // Nothing was sealed with the refused key.
    assert!(fs::read_dir(env.store().join("ledger")).map(|r| r.count()).unwrap_or(0) == 0);
}

#[test]
fn verify_exit_codes_are_0_intact_1_findings_2_cannot_run() {
    let (env, m) = made();
    env.verify_file(&m.bundle, &m.pubkey).expect(0);
    let bad = env.path("bad.tar.zst");
    fs::write(&bad, b"not a bundle").unwrap();
    env.verify_file(&bad, &m.pubkey).expect(1);
    // A trusted key that is not a key: an operational error, not a verdict.
    let not_key = env.path("not-a-key.pub");
    fs::write(&not_key, b"hello").unwrap();
    let o = env.verify_file(&m.bundle, &not_key);
    o.expect(2);
    assert!(o.stderr.contains("PUBLIC KEY"), "{}", o.stderr);
}

/// An incident directory of `n` small JSONL files, each with a cut-short last line (an
/// evidence problem).
fn incident_of_cut_files(env: &Env, n: usize) -> PathBuf {
    let inc = env.path("many");
    fs::create_dir_all(inc.join("logs")).unwrap();
    for i in 0..n {
        fs::write(inc.join(format!("logs/part-{i:05}.jsonl")), format!("{{\"n\":{i}}}\n{{\"cut\":\"sho")).unwrap();
    }
    inc
}

/// Two large files with the same bytes are sealed as one blob but analysed as two sources:
/// the malformed line is an evidence problem of each path.
#[test]
fn identical_large_files_are_one_blob_but_each_is_analysed() {
    let env = Env::new();
    let inc = env.path("twins");
    fs::create_dir_all(inc.join("logs")).unwrap();
    let mut big = String::new();
    while big.len() < (3 << 20) {
        big.push_str(&format!("{{\"n\":{},\"pad\":\"{}\"}}\n", big.len(), "x".repeat(90)));
    }
    big.push_str("{\"cut\":\"sho\n{\"n\":0}\n");
    for name in ["a.jsonl", "b.jsonl"] {
        fs::write(inc.join("logs").join(name), &big).unwrap();
    }
    let out = env.run(&["preserve", "--incident-dir", inc.to_str().unwrap(), "--json"]);
    out.expect(0);
    let bundle = out.json()["location"].as_str().unwrap().to_string();
    let shown = env.run(&["show", bundle.as_str(), "--json"]);
    shown.expect(0);
    let m = &shown.json()["manifest"];
    let entries = m["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["sha256"], entries[1]["sha256"]);
    let problems: Vec<String> = m["analysis"]["evidence_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    assert!(problems.iter().any(|p| p.starts_with("logs/a.jsonl")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("logs/b.jsonl")), "{problems:?}");
}

/// `custody show BUNDLE | head` panicked ("failed printing to stdout: Broken pipe", exit 101)
/// once the reader closed the pipe, and `show --json | head` failed with exit 2: a closed pipe
/// is not a failure of the command.
#[test]
fn regression_show_into_a_closed_pipe_panicked() {
    let env = Env::new();
    // 1 500 entries: far more than a pipe holds (64 KiB), so writes fail after the close.
    let inc = incident_of_cut_files(&env, 1500);
    let made = env.run(&["preserve", "--incident-dir", inc.to_str().unwrap(), "--json"]);
    made.expect(0);
    let bundle = made.json()["location"].as_str().unwrap().to_string();
    for json in [false, true] {
        let mut args = vec!["show", bundle.as_str()];
        if json {
            args.push("--json");
        }
        let mut child = env
            .cmd(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "show (json: {json}) into a closed pipe: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("error"), "json: {json}: {stderr}");
    }
}

/// Preserve printed every evidence problem, one line each (12 000 for a corpus of 100 000
/// partly written files); it now lists the first 20 of each list, counts the rest and names
/// the command that lists them all, which does.
#[test]
fn preserve_lists_the_first_problems_and_counts_the_rest() {
    let env = Env::new();
    let inc = incident_of_cut_files(&env, 27);
    let out = env.run(&["preserve", "--incident-dir", inc.to_str().unwrap()]);
    out.expect(0);
    let listed: Vec<&str> = out.stdout.lines().filter(|l| l.contains("logs/part-")).collect();
    assert!(out.stdout.contains("evidence problems found by the analysis (27):"), "{}", out.stdout);
    assert_eq!(listed.len(), 20, "{}", out.stdout);
    assert!(listed[0].contains("logs/part-00000.jsonl:2") && listed[19].contains("logs/part-00019.jsonl:2"));
    let more = out.stdout.lines().find(|l| l.contains("... and 7 more")).expect("a count of the rest");
    let cmd = more.split("all of them: ").nth(1).unwrap().trim_end_matches(')');
    assert!(cmd.starts_with("custody show --store "), "{more}");
    // The command it names lists all 27 (read here in its --json form).
    let mut args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    args.insert(1, "--json");
    let shown = env.run(&args);
    shown.expect(0);
    let all = shown.json()["manifest"]["analysis"]["evidence_problems"].as_array().unwrap().len();
    assert_eq!(all, 27);
}

/// `show` exited 0 on a bundle that failed verification (signed by a key not pinned here, or
/// tampered with), while `verify` of the same bundle exited 1. Every command that verifies
/// keeps the contract: 0 intact, 1 findings, 2 error.
#[test]
fn regression_show_exited_0_on_a_bundle_that_failed_verification() {
    let (env, m) = made();
    let b = m.bundle.to_str().unwrap();
    env.run(&["show", b]).expect(0);
    env.run(&["show", b, "--json"]).expect(0);
    let other = env.path("other.key");
    env.run(&["keygen", "--out", other.to_str().unwrap()]).expect(0);
    let other_pub = env.path("other.key.pub");
    let o = env.run(&["show", b, "--trusted-key", other_pub.to_str().unwrap()]);
    o.expect(1);
    assert!(o.stdout.contains("NOT trusted here"), "{}", o.stdout);
    assert!(o.stdout.contains("verdict    FAILED (signer_trusted)"), "the verdict names the check: {}", o.stdout);
    let o = env.run(&["show", b, "--json", "--trusted-key", other_pub.to_str().unwrap()]);
    o.expect(1);
    assert_eq!(o.json()["verdict"], "failed");
    // A home with no key at all trusts nothing.
    Env::new().run(&["show", b]).expect(1);
    // Tampered: one blob byte flipped.
    let mut members = bundle_members(&m.bundle);
    let i = members.iter().position(|x| x.name().starts_with("blobs/")).unwrap();
    members[i].data[0] ^= 1;
    let bad = env.path("bad.tar.zst");
    write_bundle(&bad, &members);
    env.run(&["show", bad.to_str().unwrap()]).expect(1);
    env.run(&["show", bad.to_str().unwrap(), "--json"]).expect(1);
    // Not a verdict: an error.
    usage_error(&env, &["show", "/no/such/bundle.tar.zst"], "does not exist");
}

/// `list --json` reported entries signed by a key not pinned here as `"valid": true`, and
/// `list` exited 0 over them. Each entry's signer, signature, position and link are checked
/// now, with `--trusted-key` (default: the local key) as for verify.
#[test]
fn regression_list_json_said_an_entry_signed_by_an_untrusted_key_was_valid() {
    let (env, m) = made();
    env.preserve_fixture(&["--note", "second"]);
    let st = m.store.to_str().unwrap();
    let o = env.run(&["list", "--store", st, "--json"]);
    o.expect(0);
    let v = o.json();
    for e in v["entries"].as_array().unwrap() {
        assert_eq!((&e["valid"], &e["signer_trusted"]), (&true.into(), &true.into()), "{e}");
    }
    let other = env.path("other.key");
    env.run(&["keygen", "--out", other.to_str().unwrap()]).expect(0);
    let other_pub = env.path("other.key.pub");
    let o = env.run(&["list", "--store", st, "--json", "--trusted-key", other_pub.to_str().unwrap()]);
    o.expect(1);
    let v = o.json();
    for e in v["entries"].as_array().unwrap() {
        assert_eq!((&e["valid"], &e["signer_trusted"]), (&false.into(), &false.into()), "{e}");
        assert!(e["problem"].as_str().unwrap().contains("untrusted key"), "{e}");
        assert!(e["bundle"].is_string(), "what the entry says is still listed: {e}");
    }
    let o = env.run(&["list", "--store", st, "--trusted-key", other_pub.to_str().unwrap()]);
    o.expect(1);
    assert_eq!(o.stdout.matches("INVALID ENTRY").count(), 2, "{}", o.stdout);
    assert!(o.stdout.contains("RESULT: 2 of 2 entries did not check out"), "{}", o.stdout);
    // An entry at a position it does not name (entry 2 copied to position 3) is not valid.
    let ledger = m.store.join("ledger");
    fs::copy(ledger.join("00000000000000000002.json"), ledger.join("00000000000000000003.json")).unwrap();
    let o = env.run(&["list", "--store", st, "--json"]);
    o.expect(1);
    let v = o.json();
    assert_eq!(v["entries"][1]["valid"], true);
    assert_eq!(v["entries"][2]["valid"], false, "{v:#}");
    assert!(v["entries"][2]["problem"].as_str().unwrap().contains("position"), "{v:#}");
}
