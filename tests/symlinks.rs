//! `preserve --follow-symlinks` under attack (issue 18, item 11). Links planted in the
//! evidence once made custody seal its own signing key (`-----BEGIN PRIVATE KEY-----` in the
//! bundle) and its environment (`/proc/self/environ`: the store's credentials). Each test
//! plants links, preserves through the real binary (or plans and seals through the library,
//! to swap files between the check and the read), and asserts on the bundle's bytes — the
//! secret appears nowhere in the decompressed archive — and on its signed journal: every
//! link not followed is `skipped`, under the link's own path, with the reason; legitimate
//! links are still followed.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::util::{decompress, tar_members, Env, Out};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// One preserve's bundle: the `--json` output, the decompressed archive and the manifest.
struct Sealed {
    out: Value,
    raw: Vec<u8>,
    manifest: Value,
}

impl Sealed {
    /// Whether `needle` occurs anywhere in the archive (blobs, manifest, journal, analysis).
    fn contains(&self, needle: &[u8]) -> bool {
        self.raw.windows(needle.len()).any(|w| w == needle)
    }

    /// The bytes sealed as bundle path `path`, if any.
    fn entry(&self, path: &str) -> Option<Vec<u8>> {
        let e = self.manifest["entries"].as_array().expect("entries").iter().find(|e| e["path"] == path)?;
        let blob = format!("blobs/sha256/{}", e["sha256"].as_str().expect("sha256").trim_start_matches("sha256:"));
        let m = tar_members(&self.raw).into_iter().find(|m| m.name() == blob).expect("the entry's blob");
        Some(m.data)
    }

    /// The journal events about `path` (the link's own path), as (event, detail).
    fn events(&self, path: &Path) -> Vec<(String, String)> {
        self.manifest["journal"]
            .as_array()
            .expect("journal")
            .iter()
            .filter(|e| e["path"] == s(path))
            .map(|e| (e["event"].as_str().unwrap_or("").to_string(), e["detail"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// The detail of the `skipped` event of `path`; panics (showing the journal) if none.
    #[track_caller]
    fn skipped(&self, path: &Path) -> String {
        let found = self.events(path).into_iter().find(|(e, _)| e == "skipped").map(|(_, d)| d);
        found.unwrap_or_else(|| {
            panic!("{} is not journaled as skipped; journal:\n{:#}", path.display(), self.manifest["journal"])
        })
    }

    /// Asserts that `path` was skipped with a reason containing `why`, and that no entry was
    /// sealed under bundle path `rel`.
    #[track_caller]
    fn refused(&self, path: &Path, rel: &str, why: &str) {
        let detail = self.skipped(path);
        assert!(detail.contains(why), "{}: the reason should say {why:?}: {detail}", path.display());
        assert!(self.entry(rel).is_none(), "{rel} was sealed");
    }
}

/// Runs `custody` in `env` with extra environment variables.
fn run(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let mut c = env.cmd(args);
    c.envs(vars.iter().copied()).stdin(Stdio::null());
    let o = c.output().expect("run custody");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `preserve ARGS --json` in `env` (exit 0), its bundle read back; the bundle verifies
/// against the env's key.
fn preserve(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Sealed {
    let mut a = vec!["preserve", "--json", "--quiet"];
    a.extend_from_slice(args);
    let o = run(env, &a, vars);
    o.expect(0);
    let out = o.json();
    let bundle = PathBuf::from(out["location"].as_str().expect("location"));
    env.verify_file(&bundle, &env.pubkey()).expect(0);
    let raw = decompress(&fs::read(&bundle).expect("bundle"));
    let manifest = tar_members(&raw).into_iter().find(|m| m.name() == "manifest.json").expect("manifest.json");
    let manifest = serde_json::from_slice(&manifest.data).expect("manifest is JSON");
    Sealed { out, raw, manifest }
}

/// An env whose default signing key exists; returns it with the key's PEM text.
fn env_with_key() -> (Env, String) {
    let env = Env::new();
    run(&env, &["keygen", "--out", s(&env.key())], &[]).expect(0);
    let pem = fs::read_to_string(env.key()).expect("key");
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----"));
    (env, pem)
}

/// The base64 body of a PEM private key (what would leak even without its armour).
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// A fresh incident directory `name` in `env` with `logs/real.jsonl`, and a file outside it.
fn incident(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    let inc = env.path(name);
    fs::create_dir_all(inc.join("logs")).expect("mkdir");
    fs::write(inc.join("logs/real.jsonl"), "{\"note\":\"legit-in-dir\"}\n").expect("write");
    let outside = env.path(&format!("{name}-outside"));
    fs::create_dir_all(&outside).expect("mkdir");
    fs::write(outside.join("secret.txt"), "outside-secret-bytes\n").expect("write");
    (inc, outside)
}

/// A planted link to custody's own signing key — absolute, relative, to its directory, to
/// custody's home, to the public key beside it — is never followed, and a hard link to the
/// key (which no link rule sees) is refused by device and inode, with or without
/// `--follow-symlinks`. The in-directory link next to them is followed.
#[test]
fn follow_symlinks_never_seals_the_signing_key() {
    let (env, pem) = env_with_key();
    let (inc, _) = incident(&env, "incident");
    let logs = inc.join("logs");
    symlink(env.key(), logs.join("key.pem")).unwrap();
    symlink("../../home/keys/default.key", logs.join("key-relative.pem")).unwrap();
    symlink(env.key().parent().unwrap(), logs.join("keys")).unwrap();
    symlink(env.home(), logs.join("home")).unwrap();
    symlink(env.pubkey(), logs.join("key.pub")).unwrap();
    symlink("real.jsonl", logs.join("alias.jsonl")).unwrap();
    fs::hard_link(env.key(), logs.join("hard.key")).unwrap();

    let b = preserve(&env, &["--incident-dir", s(&inc), "--follow-symlinks"], &[]);
    assert!(!b.contains(b"PRIVATE KEY"), "the signing key's armour is in the bundle");
    assert!(!b.contains(pem_body(&pem).as_bytes()), "the signing key's bytes are in the bundle");
    b.refused(&logs.join("key.pem"), "logs/key.pem", "secret: it is custody's signing key");
    b.refused(&logs.join("key-relative.pem"), "logs/key-relative.pem", "secret: it is custody's signing key");
    b.refused(
        &logs.join("keys"),
        "logs/keys/default.key",
        "secret: it is inside the directory of custody's signing key",
    );
    b.refused(&logs.join("home"), "logs/home/keys/default.key", "secret: it is inside");
    b.refused(&logs.join("key.pub"), "logs/key.pub", "secret: it is inside the directory of custody's signing key");
    b.refused(&logs.join("hard.key"), "logs/hard.key", "custody's signing key");
    // The reason names what the link pointed at.
    assert!(b.skipped(&logs.join("key.pem")).contains(s(&env.key())));
    // The legitimate link is followed, and says so.
    assert_eq!(b.entry("logs/alias.jsonl").as_deref(), Some(&b"{\"note\":\"legit-in-dir\"}\n"[..]));
    assert!(b.events(&logs.join("alias.jsonl")).iter().any(|(e, d)| e == "note" && d.contains("followed")));
    assert!(b.out["problems"].as_array().expect("problems").iter().any(|p| p["path"] == s(&logs.join("key.pem"))));

    // Without --follow-symlinks the hard link is still the key.
    let b = preserve(&env, &["--incident-dir", s(&inc)], &[]);
    assert!(!b.contains(b"PRIVATE KEY") && !b.contains(pem_body(&pem).as_bytes()));
    b.refused(&logs.join("hard.key"), "logs/hard.key", "custody's signing key");
    b.refused(&logs.join("key.pem"), "logs/key.pem", "not followed (use --follow-symlinks)");
}

/// Links into `/proc` (the environment, maps, memory, open files of custody's own process),
/// `/sys` and `/dev` are never followed — through the spec file's `follow_symlinks = true` as
/// through the flag — and custody's environment (here a canary standing for the store's
/// credentials) is nowhere in the bundle.
#[test]
fn follow_symlinks_never_seals_proc_environ() {
    let (env, _) = env_with_key();
    let (inc, _) = incident(&env, "incident");
    let logs = inc.join("logs");
    // Directory links go to small directories only: if the rule broke, following `/proc/self`
    // (its `root` is `/`), `/sys` or `/dev` (`/dev/core`) would walk the host.
    let sys = if Path::new("/sys/kernel/mm").is_dir() { "/sys/kernel/mm" } else { "/sys" };
    let kernel = [
        ("environ", "/proc/self/environ", "under /proc"),
        ("maps", "/proc/self/maps", "under /proc"),
        ("mem", "/proc/self/mem", "under /proc"),
        ("fdinfo", "/proc/self/fdinfo", "under /proc"),
        ("sys", sys, "under /sys"),
        ("null", "/dev/null", "under /dev"),
        ("stdin", "/dev/stdin", "under /dev"),
    ];
    for (name, target, _) in kernel {
        symlink(target, logs.join(name)).unwrap();
    }
    let canary = "AWS_SECRET_ACCESS_KEY_CANARY_7f3a9c2e41d08b65";
    let vars = [("AWS_SECRET_ACCESS_KEY", canary)];
    let spec = env.path("incident.toml");
    fs::write(&spec, format!("incident_dir = {:?}\nfollow_symlinks = true\n", s(&inc))).unwrap();
    let by_spec = preserve(&env, &["--spec", s(&spec)], &vars);
    let by_flag = preserve(&env, &["--incident-dir", s(&inc), "--follow-symlinks"], &vars);
    for b in [by_spec, by_flag] {
        assert!(!b.contains(canary.as_bytes()), "custody's environment is in the bundle");
        for (name, _, why) in kernel {
            b.refused(&logs.join(name), &format!("logs/{name}"), why);
            assert!(b.skipped(&logs.join(name)).contains("kernel interface"));
        }
        assert!(b.entry("logs/real.jsonl").is_some());
    }
}

/// A link whose target escapes the incident directory — absolute, relative with `..`, a
/// directory, a host file — is not followed, and the file it names is not sealed.
#[test]
fn follow_symlinks_refuses_links_out_of_the_incident_dir() {
    let (env, _) = env_with_key();
    let (inc, outside) = incident(&env, "incident");
    let logs = inc.join("logs");
    symlink(outside.join("secret.txt"), logs.join("abs.txt")).unwrap();
    symlink("../../incident-outside/secret.txt", logs.join("relative.txt")).unwrap();
    symlink(&outside, logs.join("outdir")).unwrap();
    symlink("/etc/hostname", logs.join("host.txt")).unwrap();
    symlink("/nonexistent/target", logs.join("dangling")).unwrap();

    let b = preserve(&env, &["--incident-dir", s(&inc), "--follow-symlinks"], &[]);
    assert!(!b.contains(b"outside-secret-bytes"), "a file outside the incident directory is in the bundle");
    for (name, rel) in [
        ("abs.txt", "logs/abs.txt"),
        ("relative.txt", "logs/relative.txt"),
        ("outdir", "logs/outdir/secret.txt"),
        ("host.txt", "logs/host.txt"),
    ] {
        b.refused(&logs.join(name), rel, "escapes the incident directory");
    }
    b.refused(&logs.join("dangling"), "logs/dangling", "cannot be resolved");
    assert!(b.skipped(&logs.join("abs.txt")).contains(s(&outside.join("secret.txt"))), "the target is named");
    assert!(b.entry("logs/real.jsonl").is_some());
}

/// A link whose target is inside a source the responder named (`--source`) is followed — to
/// a file and to a directory — while a link beside it to an unnamed file is not; a source
/// that is itself a link is the responder's own choice and is followed.
#[test]
fn follow_symlinks_follows_a_link_into_a_named_source() {
    let (env, _) = env_with_key();
    let (inc, outside) = incident(&env, "incident");
    let logs = inc.join("logs");
    let named = outside.join("named");
    fs::create_dir_all(&named).unwrap();
    fs::write(named.join("x.jsonl"), "named-source-bytes\n").unwrap();
    symlink(named.join("x.jsonl"), logs.join("link.jsonl")).unwrap();
    symlink(&named, logs.join("dirlink")).unwrap();
    symlink(outside.join("secret.txt"), logs.join("unnamed.txt")).unwrap();
    fs::write(outside.join("alone.txt"), "named-link-bytes\n").unwrap();
    let named_link = env.path("named-link.txt");
    symlink(outside.join("alone.txt"), &named_link).unwrap();

    let b = preserve(
        &env,
        &[
            "--incident-dir",
            s(&inc),
            "--source",
            &format!("extra={}", s(&named)),
            "--source",
            &format!("other={}", s(&named_link)),
            "--follow-symlinks",
        ],
        &[],
    );
    assert_eq!(b.entry("logs/link.jsonl").as_deref(), Some(&b"named-source-bytes\n"[..]));
    assert_eq!(b.entry("logs/dirlink/x.jsonl").as_deref(), Some(&b"named-source-bytes\n"[..]));
    assert_eq!(b.entry("extra/x.jsonl").as_deref(), Some(&b"named-source-bytes\n"[..]));
    assert_eq!(b.entry("other/named-link.txt").as_deref(), Some(&b"named-link-bytes\n"[..]));
    let note = b.events(&logs.join("link.jsonl"));
    assert!(note.iter().any(|(e, d)| e == "note" && d.contains(s(&named.join("x.jsonl")))), "{note:?}");
    b.refused(&logs.join("unnamed.txt"), "logs/unnamed.txt", "escapes the incident directory");
    assert!(!b.contains(b"outside-secret-bytes"));
    // The manifest names where the followed file was found: the link.
    let e = b.manifest["entries"].as_array().unwrap().iter().find(|e| e["path"] == "logs/link.jsonl").unwrap();
    assert_eq!(e["source"], s(&logs.join("link.jsonl")));
}

/// Links inside a directory entered through a link are checked like any other: one to a
/// file outside and one to the key are refused, a nested in-directory link is followed.
#[test]
fn follow_symlinks_checks_links_inside_followed_directories() {
    let (env, pem) = env_with_key();
    let (inc, outside) = incident(&env, "incident");
    let shared = inc.join("shared");
    fs::create_dir_all(shared.join("deeper")).unwrap();
    fs::write(shared.join("ok.txt"), "shared-ok\n").unwrap();
    fs::write(shared.join("deeper/d.txt"), "deeper-ok\n").unwrap();
    symlink(outside.join("secret.txt"), shared.join("leak.txt")).unwrap();
    symlink(env.key(), shared.join("key.pem")).unwrap();
    symlink("/proc/self/environ", shared.join("environ")).unwrap();
    symlink(shared.join("deeper"), shared.join("nested")).unwrap();
    let logs = inc.join("logs");
    symlink(&shared, logs.join("d")).unwrap();

    let b = preserve(&env, &["--incident-dir", s(&inc), "--follow-symlinks"], &[]);
    assert!(!b.contains(b"outside-secret-bytes") && !b.contains(b"PRIVATE KEY"));
    assert!(!b.contains(pem_body(&pem).as_bytes()));
    assert_eq!(b.entry("logs/d/ok.txt").as_deref(), Some(&b"shared-ok\n"[..]));
    assert_eq!(b.entry("logs/d/nested/d.txt").as_deref(), Some(&b"deeper-ok\n"[..]));
    // Reported under the path through the followed link: the path the walk took.
    b.refused(&logs.join("d/leak.txt"), "logs/d/leak.txt", "escapes the incident directory");
    b.refused(&logs.join("d/key.pem"), "logs/d/key.pem", "custody's signing key");
    b.refused(&logs.join("d/environ"), "logs/d/environ", "under /proc");
    // The directory itself is walked too, and refuses the same links there.
    b.refused(&shared.join("leak.txt"), "shared/leak.txt", "escapes the incident directory");
    // A directory is entered through links once: its files are sealed under the first link
    // (links fanning out to one directory cannot multiply the work).
    b.refused(&shared.join("nested"), "shared/nested/d.txt", "already collected through");
}

/// A chain of links is judged by where it ends: in-directory hops that end outside (or at
/// the key) are refused, a chain that leaves and comes back in is followed, a loop of links
/// and a link to its own parent directory end with a journal entry, not a hang.
#[test]
fn follow_symlinks_checks_the_end_of_every_chain_of_links() {
    let (env, pem) = env_with_key();
    let (inc, outside) = incident(&env, "incident");
    let logs = inc.join("logs");
    symlink(outside.join("secret.txt"), inc.join("c")).unwrap();
    symlink(inc.join("c"), logs.join("b")).unwrap();
    symlink("b", logs.join("a")).unwrap();
    symlink(env.key(), outside.join("hop-key")).unwrap();
    symlink(outside.join("hop-key"), logs.join("to-key")).unwrap();
    symlink(logs.join("real.jsonl"), outside.join("hop-back")).unwrap();
    symlink(outside.join("hop-back"), logs.join("back.jsonl")).unwrap();
    symlink("loop2", logs.join("loop1")).unwrap();
    symlink("loop1", logs.join("loop2")).unwrap();
    symlink(&logs, logs.join("up")).unwrap();

    let b = preserve(&env, &["--incident-dir", s(&inc), "--follow-symlinks"], &[]);
    assert!(!b.contains(b"outside-secret-bytes") && !b.contains(b"PRIVATE KEY"));
    assert!(!b.contains(pem_body(&pem).as_bytes()));
    for (link, rel) in [(logs.join("a"), "logs/a"), (logs.join("b"), "logs/b"), (inc.join("c"), "c")] {
        b.refused(&link, rel, "escapes the incident directory");
    }
    b.refused(&logs.join("to-key"), "logs/to-key", "custody's signing key");
    assert_eq!(b.entry("logs/back.jsonl").as_deref(), Some(&b"{\"note\":\"legit-in-dir\"}\n"[..]));
    b.refused(&logs.join("loop1"), "logs/loop1", "cannot be resolved");
    b.refused(&logs.join("up"), "logs/up/real.jsonl", "a loop");
}

/// Between the check (planning) and the read, the link's checked target is replaced: by a
/// hard link to the signing key, by a symbolic link to `/proc/self/environ`, by another
/// file; and, without `--follow-symlinks`, a directory of a planned file is replaced by a
/// link to `/proc/self`. The reader reads none of them and journals each; the files it can
/// still trust are sealed.
#[test]
fn follow_symlinks_a_target_swapped_after_the_check_is_never_read() {
    use custody::bundle::write::{seal, SealInput};
    use custody::collect::{links::Secrets, plan, Symlinks};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let home = root.join("home");
    let key_path = home.join("keys/default.key");
    let key = custody::keys::SecretKey::generate(&key_path).unwrap();
    let inc = root.join("incident");
    fs::create_dir_all(inc.join("logs")).unwrap();
    fs::create_dir_all(inc.join("proc")).unwrap();
    fs::write(inc.join("logs/keep.txt"), "kept\n").unwrap();
    for name in ["t-key", "t-environ", "t-other"] {
        fs::write(inc.join(name), format!("{name} before\n")).unwrap();
        symlink(inc.join(name), inc.join("logs").join(format!("{name}.link"))).unwrap();
    }
    fs::write(inc.join("proc/environ"), "harmless\n").unwrap();
    let clock = custody::clock::Clock::system();
    let secrets = Secrets::new(&key.path, key.file_id(), &home);
    let seal_now = |p: custody::collect::Plan| {
        let custody::collect::Plan { files, events, .. } = p;
        let input = SealInput {
            files: files.into(),
            plan_events: events,
            incident: custody::preserve::incident_from(&Default::default()),
            not_applicable: Vec::new(),
            ledger_prev: None,
            clock: &clock,
            key: &key,
            level: 1,
            workers: 0,
            observer: None,
            supplement_of: None,
        };
        let mut bytes = Vec::new();
        let sealed = seal(input, &mut bytes).expect("seal");
        (sealed, decompress(&bytes))
    };
    let followed = plan(Some(&inc), &[], &Symlinks::Follow(secrets), &clock).unwrap();
    let unfollowed = plan(Some(&inc), &[], &Symlinks::Record, &clock).unwrap();
    let planned = |p: &custody::collect::Plan, rel: &str| p.files.iter().any(|f| f.rel_path == rel);
    assert!(planned(&followed, "logs/t-key.link") && planned(&followed, "logs/t-environ.link"));
    assert!(planned(&unfollowed, "proc/environ"));
    // The swaps.
    fs::remove_file(inc.join("t-key")).unwrap();
    fs::hard_link(&key_path, inc.join("t-key")).unwrap();
    fs::remove_file(inc.join("t-environ")).unwrap();
    symlink("/proc/self/environ", inc.join("t-environ")).unwrap();
    fs::remove_file(inc.join("t-other")).unwrap();
    fs::write(inc.join("t-other"), "t-other swapped in\n").unwrap();
    fs::rename(inc.join("proc"), root.join("proc-moved")).unwrap();
    symlink("/proc/self", inc.join("proc")).unwrap();

    let environ = fs::read(format!("/proc/{}/environ", std::process::id())).unwrap();
    let first_var = environ.split(|&b| b == 0).find(|v| v.len() > 8).expect("an environment variable").to_vec();
    let pem = fs::read_to_string(&key_path).unwrap();
    let skipped = |m: &custody::bundle::manifest::Manifest, path: &Path| {
        m.journal
            .iter()
            .find(|e| e.path.as_deref() == Some(s(path)) && e.event == custody::bundle::manifest::EventKind::Skipped)
            .and_then(|e| e.detail.clone())
            .unwrap_or_else(|| panic!("{} not skipped: {:#?}", path.display(), m.journal))
    };
    let sealed_paths =
        |m: &custody::bundle::manifest::Manifest| m.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();

    let (sealed, raw) = seal_now(followed);
    let has = |b: &[u8]| raw.windows(b.len()).any(|w| w == b);
    assert!(!has(b"PRIVATE KEY") && !has(pem_body(&pem).as_bytes()), "the key was read");
    assert!(!has(&first_var), "the environment was read");
    let m = &sealed.manifest;
    let key_why = skipped(m, &inc.join("logs/t-key.link"));
    assert!(key_why.contains("signing key"), "{key_why}");
    let environ_why = skipped(m, &inc.join("logs/t-environ.link"));
    assert!(environ_why.contains("symbolic link"), "{environ_why}");
    let other_why = skipped(m, &inc.join("logs/t-other.link"));
    assert!(other_why.contains("replaced after its symbolic link was checked"), "{other_why}");
    let paths = sealed_paths(m);
    assert!(paths.contains(&"logs/keep.txt".to_string()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with(".link")), "{paths:?}");

    let (sealed, raw) = seal_now(unfollowed);
    let has = |b: &[u8]| raw.windows(b.len()).any(|w| w == b);
    assert!(!has(&first_var) && !has(b"PRIVATE KEY"), "read through a swapped directory");
    let why = skipped(&sealed.manifest, &inc.join("proc/environ"));
    assert!(why.contains("a directory on its path is a symbolic link"), "{why}");
    let paths = sealed_paths(&sealed.manifest);
    assert!(!paths.contains(&"proc/environ".to_string()) && paths.contains(&"logs/keep.txt".to_string()));
}
