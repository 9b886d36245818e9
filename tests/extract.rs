//! `extract` never writes outside its target directory and never overwrites: crafted bundles
//! whose *validly signed, otherwise consistent* manifests name `../` and absolute paths, a
//! symlink planted in the target, a tampered bundle, and existing files.

use std::fs;
use std::path::Path;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Build a resealed variant of the fixture bundle where attachments/responder-notes.md is called `path`, signed
/// by the bundle's own (trusted) key.
fn crafted(env: &Env, m: &Made, name: &str, path: &str) -> std::path::PathBuf {
    let key = custody::keys::SecretKey::load(&env.key()).unwrap();
    let members =
        reseal(&bundle_members(&m.bundle), &key, |man| rename_entry(man, "attachments/responder-notes.md", path));
    let p = env.path(name);
    write_bundle(&p, &members);
    p
}

#[test]
fn resealing_helper_control_a_benign_rename_verifies_and_extracts() {
    // Proves the crafted bundles below differ from a valid one only by their path.
    let (env, m) = made();
    let ok = crafted(&env, &m, "benign.tar.zst", "attachments/renamed.md");
    env.verify_file(&ok, &m.pubkey).expect(0);
    let to = env.path("out");
    env.run(&["extract", s(&ok), "--to", s(&to)]).expect(0);
    assert_eq!(
        fs::read(to.join("attachments/renamed.md")).unwrap(),
        fs::read(fixture_dir().join("attachments/responder-notes.md")).unwrap()
    );
}

#[test]
fn extract_refuses_dotdot_and_absolute_entry_paths() {
    let (env, m) = made();
    let root = env.path("area");
    let to = root.join("to");
    fs::create_dir_all(&to).unwrap();
    let abs_target = root.join("abs-escape.md");
    let cases = [
        ("dotdot.tar.zst", "../escape.md".to_string(), root.join("escape.md")),
        ("dotdot-deep.tar.zst", "../../deep-escape.md".to_string(), env.tmp.path().join("deep-escape.md")),
        ("absolute.tar.zst", abs_target.display().to_string(), abs_target.clone()),
    ];
    for (name, path, outside) in &cases {
        let b = crafted(&env, &m, name, path);
        // verify names the path problem.
        let v = env.verify_file(&b, &m.pubkey);
        v.expect(1);
        let r = v.json();
        let msgs = serde_json::to_string(&r["findings"]).unwrap();
        assert!(msgs.contains("not allowed"), "{name}: the finding explains the path: {msgs}");
        // extract refuses, writes nothing anywhere.
        let x = env.run(&["extract", s(&b), "--to", s(&to), "--trusted-key", s(&m.pubkey)]);
        x.expect(1);
        assert!(!outside.exists(), "{name}: wrote {}", outside.display());
        assert!(files_under(&to).is_empty(), "{name}: wrote into the target although it refused");
    }
}

/// Defence in depth: the library's `extract` checks paths itself, even if handed a manifest
/// that never went through the verifier.
#[test]
fn library_extract_checks_paths_itself() {
    let (env, m) = made();
    let members = bundle_members(&m.bundle);
    let man0: custody::bundle::manifest::Manifest =
        serde_json::from_slice(&member(&members, "manifest.json").data).unwrap();
    let root = env.path("lib");
    let to = root.join("to");
    fs::create_dir_all(&to).unwrap();
    let limits = custody::read::archive::Limits::default();
    let abs = root.join("abs-escape.md");
    for bad in ["../escape.md", abs.to_str().unwrap(), "a/../../escape2.md", "./x.md"] {
        let mut man = man0.clone();
        rename_entry(&mut man, "attachments/responder-notes.md", bad);
        let r = custody::internals::extract_file(&m.bundle, &man, &to, &limits);
        assert!(matches!(r, Err(custody::extract::ExtractError::BadEntryPath(_))), "{bad}: {r:?}");
    }
    assert!(!root.join("escape.md").exists());
    assert!(!root.join("escape2.md").exists());
    assert!(!abs.exists());
}

#[test]
fn extract_refuses_to_write_through_a_symlink_planted_in_the_target() {
    let (env, m) = made();
    let to = env.path("to");
    let outside = env.path("outside");
    fs::create_dir_all(&to).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, to.join("traces")).unwrap();
    let x = env.run(&["extract", s(&m.bundle), "--to", s(&to)]);
    assert_ne!(x.code, 0, "extract wrote through a symlink: {}", x.stdout);
    assert!(x.stderr.contains("symbolic link"), "{}", x.stderr);
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "something was written through the symlink");
    // The target itself being a symlink is refused too.
    let link_to = env.path("link-to");
    std::os::unix::fs::symlink(&outside, &link_to).unwrap();
    let x = env.run(&["extract", s(&m.bundle), "--to", s(&link_to)]);
    assert_ne!(x.code, 0, "extract wrote through a symlinked target: {}", x.stdout);
    assert!(fs::read_dir(&outside).unwrap().next().is_none());
}

#[test]
fn extract_of_a_tampered_bundle_writes_nothing_and_exits_1() {
    let (env, m) = made();
    let mut members = bundle_members(&m.bundle);
    let i = members.iter().position(|x| x.name().starts_with("blobs/")).unwrap();
    members[i].data[0] ^= 0x01;
    let bad = env.path("bad.tar.zst");
    write_bundle(&bad, &members);
    let to = env.path("to");
    let x = env.run(&["extract", s(&bad), "--to", s(&to)]);
    x.expect(1);
    assert!(x.stderr.contains("refusing to extract"), "{}", x.stderr);
    assert!(!to.exists() || files_under(&to).is_empty(), "a tampered bundle wrote files");
    // And a bundle by an untrusted signer.
    let stranger = Env::new();
    let x = stranger.run(&["extract", s(&m.bundle), "--to", s(&to)]);
    x.expect(1);
    assert!(!to.exists() || files_under(&to).is_empty());
}

#[test]
fn extract_never_overwrites_an_existing_file() {
    let (env, m) = made();
    let to = env.path("to");
    fs::create_dir_all(to.join("logs")).unwrap();
    let precious = to.join("logs/tool_calls.jsonl");
    fs::write(&precious, b"do not touch").unwrap();
    let x = env.run(&["extract", s(&m.bundle), "--to", s(&to)]);
    assert_ne!(x.code, 0, "extract overwrote an existing file: {}", x.stdout);
    assert!(x.stderr.contains("logs/tool_calls.jsonl"), "the error names the file: {}", x.stderr);
    assert_eq!(fs::read(&precious).unwrap(), b"do not touch");
    // Refused before anything is written: it used to stop half-way, at the first file that
    // existed, leaving those before it.
    assert_eq!(files_under(&to).len(), 1, "extract wrote other files before refusing: {:?}", files_under(&to));
    assert!(x.stderr.contains("wrote nothing") && x.stderr.contains("new or empty directory"), "{}", x.stderr);
    // A target that is a file.
    let file = env.path("a-file");
    fs::write(&file, b"x").unwrap();
    let f = env.run(&["extract", s(&m.bundle), "--to", s(&file)]);
    f.expect(2);
    assert!(f.stderr.contains("is not a directory"), "{}", f.stderr);
    assert_eq!(fs::read(&file).unwrap(), b"x");
    // Extracting twice into the same directory: the second run refuses, the first's files stay.
    let to2 = env.path("to2");
    env.run(&["extract", s(&m.bundle), "--to", s(&to2)]).expect(0);
    let before = files_under(&to2);
    let again = env.run(&["extract", s(&m.bundle), "--to", s(&to2)]);
    assert_ne!(again.code, 0);
    assert_eq!(files_under(&to2), before);
}

/// An extract interrupted by a signal left the files it had written (and its temporary file),
/// so running it again into the same directory was refused: the files already existed.
#[test]
fn regression_an_interrupted_extract_left_files_that_blocked_the_next_one() {
    use std::io::{BufReader, Read};
    use std::process::Stdio;
    let (env, m) = made();
    let to = env.path("to");
    let mut c = env.cmd(&["extract", s(&m.bundle), "--to", s(&to)]);
    c.env("CUSTODY_TEST_PAUSE", "extracted-one").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    wait_for_pause(&mut err, "extracted-one");
    assert!(!files_under(&to).is_empty(), "a file is written at the pause point");
    let killed = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(killed.unwrap().success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(143), "{rest}");
    assert!(rest.contains("interrupted by SIGTERM: removed"), "{rest}");
    assert!(!to.exists(), "the interrupted extract left the target it made, or files in it: {rest}");
    // So the same command works now, and gives back every file.
    let again = env.run(&["extract", s(&m.bundle), "--to", s(&to)]);
    again.expect(0);
    assert_eq!(files_under(&to), files_under(&fixture_dir()));
    // Into a directory that existed: it is left as it was, empty (the directories extract
    // made in it are removed too).
    let to2 = env.path("to2");
    fs::create_dir(&to2).unwrap();
    let mut c = env.cmd(&["extract", s(&m.bundle), "--to", s(&to2)]);
    c.env("CUSTODY_TEST_PAUSE", "extracted-one").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    wait_for_pause(&mut err, "extracted-one");
    let killed = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(killed.unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert_eq!(fs::read_dir(&to2).unwrap().count(), 0, "the interrupted extract left something in the target");
}

/// A symbolic link planted in the target as one of the bundle's directories (`traces`) made
/// extract refuse, but only when it reached that directory: the files of the directories
/// before it (8 of them) were already written, despite "writes nothing". Every path is now
/// looked up (relative to the open target, links not followed) before anything is written.
#[test]
fn regression_a_refused_extract_through_a_planted_symlink_left_files_behind() {
    let (env, m) = made();
    let to = env.path("to");
    let outside = env.path("outside");
    fs::create_dir_all(&to).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, to.join("traces")).unwrap();
    let x = env.run(&["extract", s(&m.bundle), "--to", s(&to)]);
    x.expect(2);
    assert!(
        x.stderr.contains("symbolic link") && x.stderr.contains(&to.join("traces").display().to_string()),
        "{}",
        x.stderr
    );
    let left: Vec<_> = fs::read_dir(&to).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["traces"], "a refused extract left files or directories behind");
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "something was written through the symlink");
    // A file (not a directory) planted where a directory goes is refused the same way.
    let to2 = env.path("to2");
    fs::create_dir_all(&to2).unwrap();
    fs::write(to2.join("traces"), b"not a directory").unwrap();
    let x = env.run(&["extract", s(&m.bundle), "--to", s(&to2)]);
    x.expect(2);
    assert!(x.stderr.contains("not a directory"), "{}", x.stderr);
    assert_eq!(files_under(&to2), [("traces".to_string(), b"not a directory".to_vec())]);
}

/// A failure found only while writing (here a manifest, never verified, whose paths collide:
/// `attachments/responder-notes.md` is a file and a directory) removes everything extract made, the target it
/// created included.
#[test]
fn a_failure_while_writing_removes_every_file_and_directory_extract_made() {
    let (env, m) = made();
    let man0: custody::bundle::manifest::Manifest =
        serde_json::from_slice(&member(&bundle_members(&m.bundle), "manifest.json").data).unwrap();
    let mut man = man0.clone();
    rename_entry(&mut man, "logs/tool_calls.jsonl", "attachments/responder-notes.md/deep/tool_calls.jsonl");
    let limits = custody::read::archive::Limits::default();
    let to = env.path("new/target");
    let r = custody::internals::extract_file(&m.bundle, &man, &to, &limits);
    assert!(r.is_err(), "{r:?}");
    assert!(!env.path("new").exists(), "the target and its parent, made by extract, are removed: {r:?}");
    // Into an existing (empty) directory: it stays, empty.
    let to = env.path("existing");
    fs::create_dir(&to).unwrap();
    let r = custody::internals::extract_file(&m.bundle, &man, &to, &limits);
    assert!(r.is_err(), "{r:?}");
    assert_eq!(fs::read_dir(&to).unwrap().count(), 0, "{r:?}");
    // The same bundle, paths untouched: extracts.
    let done = custody::internals::extract_file(&m.bundle, &man0, &to, &limits).unwrap();
    assert_eq!(done.files.len(), files_under(&fixture_dir()).len());
}

/// Directories under `dir` (not through links) replaced by a symbolic link to `outside`
/// while they are still empty, as a local writer racing extract would: `rmdir`, `symlink`.
fn swap_empty_dirs_for_links(dir: &Path, outside: &Path) -> usize {
    let mut swapped = 0;
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    for e in rd.flatten() {
        let p = e.path();
        if !fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        if fs::remove_dir(&p).is_ok() {
            if std::os::unix::fs::symlink(outside, &p).is_ok() {
                swapped += 1;
            }
        } else {
            swapped += swap_empty_dirs_for_links(&p, outside);
        }
    }
    swapped
}

/// extract checked a parent path, then created the file by path again: a local writer that
/// replaced each new directory with a symbolic link (rmdir + symlink) got a file written
/// outside the target (1 run in 98). Every directory and file is now made relative to an open
/// directory descriptor. Many runs against a writer racing in a loop: nothing is ever written
/// outside the target, and a run that fails leaves no file of the bundle behind.
#[test]
fn regression_a_racing_writer_swapping_new_directories_for_symlinks_got_a_file_written_outside_the_target() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let env = Env::new();
    // Many directories, each made then filled by extract: many windows for the writer.
    let inc = env.path("incident");
    for i in 0..24 {
        let d = inc.join(format!("attachments/d{i:02}/e{i:02}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f.txt"), format!("file {i}\n")).unwrap();
    }
    let out = env.run(&["preserve", "--quiet", "--no-analyze", "--incident-dir", s(&inc), "--json"]);
    out.expect(0);
    let bundle = std::path::PathBuf::from(out.json()["location"].as_str().unwrap());
    let man: custody::bundle::manifest::Manifest =
        serde_json::from_slice(&member(&bundle_members(&bundle), "manifest.json").data).unwrap();
    let expected = files_under(&inc);
    let limits = custody::read::archive::Limits::default();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    let (mut ok, mut refused, mut swaps) = (0, 0, 0);
    // At least 100 runs, and on until the writer has got in the way often enough (it nearly
    // always has by then; the cap only bounds a machine too busy to run both threads).
    const RUNS: usize = 100;
    let mut runs = 0;
    while runs < RUNS || (swaps < 20 && runs < 20 * RUNS) {
        let run = runs;
        runs += 1;
        let to = env.path(&format!("to{run}"));
        fs::create_dir(&to).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let racer = {
            let (stop, to, outside) = (stop.clone(), to.clone(), outside.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += swap_empty_dirs_for_links(&to, &outside);
                }
                n
            })
        };
        let r = custody::internals::extract_file(&bundle, &man, &to, &limits);
        stop.store(true, Ordering::Relaxed);
        swaps += racer.join().unwrap();
        let escaped: Vec<_> =
            walkdir::WalkDir::new(&outside).min_depth(1).into_iter().map(|e| e.unwrap().into_path()).collect();
        assert!(escaped.is_empty(), "run {run}: written outside the target: {escaped:?} ({r:?})");
        match r {
            Ok(done) => {
                ok += 1;
                assert_eq!(done.files.len(), expected.len());
                assert_eq!(files_under(&to), expected, "run {run}: an extract that succeeded wrote every file");
            }
            Err(e) => {
                refused += 1;
                assert_eq!(files_under(&to), Vec::new(), "run {run}: a failed extract left files behind: {e}");
            }
        }
    }
    eprintln!("{runs} runs against a racing writer: {ok} extracted, {refused} refused, {swaps} directories swapped");
    assert!(
        swaps > 0 && refused > 0,
        "the writer never got in the way: the test proves nothing ({ok} ok, {swaps} swaps)"
    );
}
