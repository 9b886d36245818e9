//! The ledger audit under attack (issue 18, items 1–6): each test is named after a bug that
//! was reproduced on main, runs the real binary or library on real stores, and asserts what
//! now happens instead. Also the store identity (`store.json`), `custody-ledger/v2` with its
//! adoption flag, and a ledger that mixes v1 and v2 entries (`fixtures/compat/v1-ledger/`).

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use custody::store::ledger::{entry_key, STORE_FILE};
use custody::verify::{verify_all, verify_in_store, FindingKind, Level, Options};

use crate::util::*;
use crate::verify_support::{at, world, T0};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A local store with `n` bundles, preserved by the CLI; returns the ledger entry files and the
/// bundle digests, oldest first.
fn store_of(n: usize) -> (Env, Vec<PathBuf>, Vec<String>) {
    store_in(Env::new(), n)
}

fn store_in(env: Env, n: usize) -> (Env, Vec<PathBuf>, Vec<String>) {
    let digests = (0..n).map(|i| env.preserve_fixture(&["--note", &format!("look #{i}")]).digest).collect();
    let mut entries: Vec<PathBuf> =
        fs::read_dir(env.store().join("ledger")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert_eq!(entries.len(), n);
    (env, entries, digests)
}

fn audit(env: &Env, extra: &[&str]) -> Out {
    let store = env.store();
    let mut args = vec!["verify", "--store", s(&store), "--all", "--json"];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn verify_digest(env: &Env, digest: &str, extra: &[&str]) -> Out {
    let store = env.store();
    let mut args = vec!["verify", "--store", s(&store), digest, "--json"];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn remove(p: &Path) {
    make_writable(p);
    fs::remove_file(p).unwrap();
}

/// Error findings of a report as (kind, location).
fn errors_of(r: &serde_json::Value) -> Vec<(String, String)> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == "error")
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["location"].as_str().unwrap().to_string()))
        .collect()
}

fn check<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} check: {r}"))
}

// ------------------------------------------------------------------ item 1: truncation

#[test]
fn regression_every_ledger_entry_deleted_with_the_bundles_kept_is_a_truncation_not_intact() {
    let (env, entries, _) = store_of(3);
    for e in &entries {
        remove(e);
    }
    for quick in [false, true] {
        let out = audit(&env, if quick { &["--quick"] } else { &[] });
        assert_eq!(out.code, 1, "quick={quick}: the store proves a longer history\n{}", out.stdout);
        let errs = errors_of(&out.json());
        // Bundles 2 and 3 were sealed against positions 1 and 2.
        for p in [1, 2] {
            assert!(
                errs.iter().any(|(k, l)| k == "ledger_truncated" && l == &entry_key(p)),
                "quick={quick}: no truncation naming position {p}: {errs:?}"
            );
        }
    }
}

#[test]
fn regression_an_audit_without_a_checkpoint_says_its_tail_is_not_anchored() {
    let (env, entries, digests) = store_of(2);
    for (args, what) in [(vec![], "--all"), (vec!["--quick"], "--all --quick")] {
        let r = audit(&env, &args).json();
        let a = check(&r, "anchor");
        assert_eq!(a["status"], "skipped", "{what}: {a}");
        assert!(a["detail"].as_str().unwrap().contains("tail is not anchored, give --checkpoint"), "{what}: {a}");
    }
    let human = env.run(&["verify", "--store", s(&env.store()), "--all"]);
    human.expect(0);
    assert!(human.stdout.contains("tail is not anchored, give --checkpoint"), "{}", human.stdout);
    let r = verify_digest(&env, &digests[1], &[]).json();
    assert!(check(&r, "anchor")["detail"].as_str().unwrap().contains("not anchored"), "{r}");

    // With a checkpoint kept outside the store: anchored, in both modes.
    let cp = env.path("checkpoint.json");
    env.run(&["checkpoint", "--store", s(&env.store()), "--out", s(&cp)]).expect(0);
    let r = audit(&env, &["--checkpoint", s(&cp)]).json();
    assert_eq!(check(&r, "anchor")["status"], "pass", "{r}");
    let r = verify_digest(&env, &digests[0], &["--checkpoint", s(&cp)]).json();
    assert_eq!(check(&r, "anchor")["status"], "pass", "{r}");

    // The one attack the store cannot show: the tail entry deleted together with its bundle.
    let last_bundle = env.store().join(custody::store::bundle_key(&digests[1].parse().unwrap()));
    remove(&entries[1]);
    remove(&last_bundle);
    audit(&env, &[]).expect(0);
    // The checkpoint shows it, in an audit and when verifying any bundle by digest.
    for out in [audit(&env, &["--checkpoint", s(&cp)]), verify_digest(&env, &digests[0], &["--checkpoint", s(&cp)])] {
        assert_eq!(out.code, 1, "{}", out.stdout);
        assert!(out.finding_kinds().contains(&"rollback".to_string()), "{}", out.stdout);
    }
}

// ------------------------------------------------------------------ item 2: adoption

#[test]
fn regression_a_bundle_copied_in_from_another_store_is_not_adopted() {
    // Store Y has two entries; an hour later, store X seals a bundle against its own empty
    // ledger (same key).
    const EPOCH: i64 = 1_763_800_000;
    let (env, _, _) = store_in(Env::with_epoch(EPOCH), 2);
    let other = Env::with_epoch(EPOCH + 3600);
    let foreign = other.preserve_fixture(&["--key", s(&env.key()), "--note", "sealed in another store"]);
    // The attacker copies it into Y (same key, valid signature).
    let copied = env.store().join("bundles").join(foreign.bundle.file_name().unwrap());
    fs::copy(&foreign.bundle, &copied).unwrap();
    // The next preserve and `store repair` refuse it, saying why.
    let out = env.run(&["preserve", "--incident-dir", s(&fixture_dir()), "--adopt-min-age", "0", "--note", "next"]);
    out.expect(0);
    assert!(out.stderr.contains(&format!("left unreferenced bundle {} alone", foreign.digest)), "{}", out.stderr);
    assert!(out.stderr.contains("does not fit this ledger"), "{}", out.stderr);
    let out = env.run(&["store", "repair", s(&env.store()), "--min-age", "0", "--json"]);
    assert_eq!(out.code, 1, "a refused adoption is reported: {}", out.stdout);
    // It is not in the ledger; the audit still names it (an unrecorded bundle is a warning).
    let list = env.run(&["list", "--store", s(&env.store()), "--json"]).json();
    let recorded: Vec<&str> =
        list["entries"].as_array().unwrap().iter().map(|e| e["bundle"].as_str().unwrap()).collect();
    assert!(!recorded.contains(&foreign.digest.as_str()), "{list}");
    let r = audit(&env, &[]).json();
    assert_eq!(r["verdict"], "intact", "{r}");
    assert!(
        r["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "unreferenced_bundle"
            && f["location"].as_str().unwrap().contains(foreign.digest.trim_start_matches("sha256:"))),
        "{r}"
    );
}

#[test]
fn an_interrupted_preserve_is_adopted_and_list_and_verify_say_so() {
    let (env, _, _) = store_of(1);
    // A preserve killed after storing its bundle, before its ledger entry.
    let mut c = env.cmd(&["preserve", "--incident-dir", s(&fixture_dir()), "--note", "interrupted"]);
    c.env("CUSTODY_TEST_PAUSE", "after-bundle").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    wait_for_pause(&mut err, "after-bundle");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = env.run(&["store", "repair", s(&env.store()), "--min-age", "0", "--json"]);
    out.expect(0);
    let adopted = &out.json();
    let list = env.run(&["list", "--store", s(&env.store()), "--json"]).json();
    let rows = list["entries"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list} {adopted}");
    assert_eq!((&rows[0]["adopted"], &rows[1]["adopted"]), (&false.into(), &true.into()), "{list}");
    let human = env.run(&["list", "--store", s(&env.store())]);
    assert!(human.stdout.contains("(adopted)"), "{}", human.stdout);
    let r = audit(&env, &[]).json();
    assert_eq!(r["verdict"], "intact", "{r}");
    assert_eq!(r["bundles"][1]["adopted"], true, "{r}");
    let digest = rows[1]["bundle"].as_str().unwrap();
    let r = verify_digest(&env, digest, &[]).json();
    assert_eq!(r["verdict"], "intact", "{r}");
    assert_eq!(r["ledger"]["adopted"], true, "{r}");
    let human = env.run(&["verify", "--store", s(&env.store()), digest]);
    assert!(human.stdout.contains("adopted"), "{}", human.stdout);
}

#[test]
fn regression_adopt_min_age_beyond_the_calendar_adopts_nothing_and_does_not_panic() {
    let env = Env::new();
    let out = env.run(&["preserve", "--incident-dir", s(&fixture_dir()), "--adopt-min-age", "100000000000000"]);
    out.expect(0);
    let out = env.run(&["store", "repair", s(&env.store()), "--min-age", "18446744073709551615"]);
    out.expect(0);
    // The S3 retain-until date of a u32::MAX-day retention is checked too.
    let r = custody::store::config::Retention { days: u32::MAX, mode: custody::store::config::LockMode::Compliance };
    let until = custody::store::lock::retain_until(&r, chrono::Utc::now());
    assert_eq!(until.timestamp(), chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp());
}

// ------------------------------------------------------------------ item 3: DIGEST mode

#[test]
fn regression_verify_by_digest_walks_the_chain_from_position_one() {
    for tamper in ["delete", "edit"] {
        let (env, entries, digests) = store_of(4);
        let e2 = &entries[1];
        match tamper {
            "delete" => remove(e2),
            _ => {
                make_writable(e2);
                let text = fs::read_to_string(e2).unwrap();
                let at = text.find("\"payload\": \"").unwrap() + 30;
                let mut b = text.into_bytes();
                b[at] = if b[at] == b'A' { b'B' } else { b'A' };
                fs::write(e2, b).unwrap();
            }
        }
        // Bundle 4's own entry and its predecessor are untouched: only a walk from 1 sees it.
        let out = verify_digest(&env, &digests[3], &[]);
        assert_eq!(out.code, 1, "{tamper} entry 2, verify bundle 4:\n{}", out.stdout);
        let errs = errors_of(&out.json());
        assert!(errs.iter().any(|(_, l)| l == &entry_key(2) || l == &entry_key(3)), "{tamper}: {errs:?}");
        let human = env.run(&["verify", "--store", s(&env.store()), &digests[3]]);
        assert!(!human.stdout.contains("INTACT"), "{}", human.stdout);
    }
    // Untouched: the ledger line says what was walked and what was not read.
    let (env, _, digests) = store_of(2);
    let r = verify_digest(&env, &digests[0], &[]).json();
    let l = check(&r, "ledger")["detail"].as_str().unwrap().to_string();
    assert!(l.contains("chain walked from position 1: 2 entries") && l.contains("were not read"), "{l}");
}

// ------------------------------------------------------------------ item 4: stray objects

#[test]
fn regression_a_garbage_object_at_the_last_ledger_position_does_not_block_the_store() {
    let (env, _, _) = store_of(2);
    let ledger = env.store().join("ledger");
    fs::write(ledger.join("18446744073709551615.json"), b"garbage").unwrap();
    fs::write(ledger.join("notes.txt"), b"not an entry").unwrap();
    // Appends are not blocked: the next preserve takes position 3 (it used to wrap to 0 and
    // then lose the race for it 200 times).
    let m = env.preserve_fixture(&["--note", "after the garbage"]);
    assert_eq!(m.preserve["ledger"]["position"], 3, "{}", m.preserve);
    // The audit reports both objects (the one at an entry key as an invalid entry beyond a
    // hole, the other as a stray: a warning), and nothing else is wrong.
    let out = audit(&env, &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let r = out.json();
    let errs = errors_of(&r);
    assert!(errs.contains(&("ledger_entry_invalid".into(), entry_key(u64::MAX))), "{errs:?}");
    assert!(errs.iter().all(|(k, _)| ["ledger_entry_invalid", "ledger_gap"].contains(&k.as_str())), "{errs:?}");
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "stray_object" && f["level"] == "warning" && f["location"] == "ledger/notes.txt"),
        "{r}"
    );
    // Garbage at the very next position: it becomes part of the chain (reported), and the
    // append after it links through its bytes.
    fs::write(ledger.join(format!("{:020}.json", 4)), b"{\"planted\": true}").unwrap();
    let m = env.preserve_fixture(&["--note", "after the planted head"]);
    assert_eq!(m.preserve["ledger"]["position"], 5, "{}", m.preserve);
    let errs = errors_of(&audit(&env, &[]).json());
    assert!(errs.contains(&("ledger_entry_invalid".into(), entry_key(4))), "{errs:?}");
    assert!(!errs.iter().any(|(k, _)| k == "ledger_link_broken" || k == "ledger_link_mismatch"), "{errs:?}");
}

// ------------------------------------------------------------------ item 5: spec rules

#[test]
fn regression_an_entry_naming_another_bundle_key_fails() {
    let w = world();
    let e = &w.entries;
    let mut moved = w.ledger_entry(2, &w.bundles[1], Some(&e[0]), at(T0 + 60));
    moved.bundle_key = "bundles/elsewhere.tar.zst".into();
    let e2 = w.entry_with(&w.key, moved);
    let e3 = w.entry(&w.key, 3, &w.bundles[2], Some(&e2), at(T0 + 120));
    let st = w.store_with(&w.all_bundles(), &[(1, &e[0]), (2, &e2), (3, &e3)]);
    let r = w.rt.block_on(verify_all(&st, &w.trust(), &Options::default(), true)).unwrap();
    let f = r.findings.iter().find(|f| f.kind == FindingKind::LedgerBundleMismatch).expect("bundle_key finding");
    assert_eq!((f.level, f.location.to_string()), (Level::Error, entry_key(2)), "{}", r.to_human());
    assert!(f.message.contains("bundles/elsewhere.tar.zst"), "{}", f.message);
}

#[test]
fn regression_a_digest_in_a_format_must_be_bare_lower_case_hex_and_the_error_says_so() {
    let w = world();
    let text = String::from_utf8(w.ledger_entry(1, &w.bundles[0], None, at(T0)).to_payload()).unwrap();
    let prefixed = text.replacen("\"bundle\": \"", "\"bundle\": \"sha256:", 1);
    let env = custody::bundle::dsse::sign(custody::store::ledger::LEDGER_PAYLOAD_TYPE_V2, prefixed.as_bytes(), &w.key);
    let err = custody::store::ledger::parse_entry(&custody::bundle::dsse::to_bytes(&env)).unwrap_err().to_string();
    assert!(err.contains("64 lower-case hex digits, without a `sha256:` prefix"), "{err}");
    assert!(!err.contains("optionally prefixed"), "the message contradicted the rule: {err}");
}

// ------------------------------------------------------------------ item 6: no panics

/// A store directory holding the world's bundles, entries at the given positions and its
/// `store.json`.
fn local_store(
    w: &crate::verify_support::World,
    dir: &Path,
    bundles: &[(custody::digest::BundleId, &[u8])],
    entries: &[(u64, &[u8])],
) -> PathBuf {
    let store = dir.join("store");
    fs::create_dir_all(store.join("bundles")).unwrap();
    fs::create_dir_all(store.join("ledger")).unwrap();
    for (id, b) in bundles {
        fs::write(store.join(custody::store::bundle_key(id)), b).unwrap();
    }
    for (n, e) in entries {
        fs::write(store.join(entry_key(*n)), e).unwrap();
    }
    fs::write(store.join(STORE_FILE), &w.store_file).unwrap();
    let pubkey = dir.join("k.pub");
    fs::write(&pubkey, w.key.public.to_pem().unwrap()).unwrap();
    store
}

fn run_verify(dir: &Path, store: &Path, target: &[&str]) -> Out {
    let mut c = std::process::Command::new(bin());
    c.args(["verify", "--json", "--store", s(store), "--trusted-key", s(&dir.join("k.pub"))]).args(target);
    c.env("CUSTODY_HOME", dir.join("home"));
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn regression_a_forged_entry_in_year_262143_is_a_finding_not_a_panic() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let e = &w.entries;
    // Forged (by another key: untrusted) at the head, with chrono's largest time.
    let mut forged = w.ledger_entry(4, &w.bundles[0], Some(&e[2]), at(T0));
    forged.appended_at = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    let forged = w.entry_with(&w.other_key, forged);
    assert!(String::from_utf8_lossy(&forged).len() > 100);
    let store = local_store(&w, dir.path(), &w.all_bundles(), &[(1, &e[0]), (2, &e[1]), (3, &e[2]), (4, &forged)]);
    let c = w.bundles[2].id.to_string();
    for target in [vec!["--all"], vec![c.as_str()]] {
        let out = run_verify(dir.path(), &store, &target);
        assert_eq!(out.code, 1, "{target:?}: exit {} (101 is a panic)\n{}", out.code, out.stderr);
        let errs = errors_of(&out.json());
        assert!(errs.contains(&("ledger_entry_invalid".into(), entry_key(4))), "{target:?}: {errs:?}");
    }
}

#[test]
fn regression_a_manifest_with_an_extreme_started_at_is_refused_not_a_panic() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    // Bundle C re-sealed by the key holder with collector.started_at at chrono's minimum, and
    // recorded at position 4 behind entry 3 (so the race rule computes started_at − skew).
    let c = &w.bundles[2];
    let mut members = tar_members(&decompress(&c.bytes));
    let j = member_index(&members, "manifest.json");
    let mut m: custody::bundle::manifest::Manifest = serde_json::from_slice(&members[j].data).unwrap();
    m.collector.started_at = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    let (mm, me) = signed_manifest_members(&members[j], &manifest_bytes(&m), &w.key);
    members[j] = mm;
    members[j + 1] = me;
    let bytes = compress(&tar_build(&members));
    let extreme = crate::verify_support::Made {
        id: custody::digest::BundleId(custody::digest::Sha256::of(&bytes)),
        bytes,
        position: 4,
    };
    let e = &w.entries;
    let e4 = w.entry(&w.key, 4, &extreme, Some(&e[2]), at(T0 + 180));
    let mut bundles = w.all_bundles();
    bundles.push((extreme.id, &extreme.bytes));
    let store = local_store(&w, dir.path(), &bundles, &[(1, &e[0]), (2, &e[1]), (3, &e[2]), (4, &e4)]);
    let id = extreme.id.to_string();
    for target in [vec!["--all"], vec![id.as_str()]] {
        let out = run_verify(dir.path(), &store, &target);
        assert_eq!(out.code, 1, "{target:?}: exit {} (101 is a panic)\n{}", out.code, out.stderr);
        let r = out.json();
        let f = r["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "manifest_invalid").cloned();
        let f = f.unwrap_or_else(|| panic!("{target:?}: {r}"));
        assert!(f["message"].as_str().unwrap().contains("collector.started_at is in year -262143"), "{f}");
    }
}

// ------------------------------------------------------------------ store identity, v2

#[test]
fn store_json_is_written_once_and_every_v2_entry_names_it() {
    let (env, entries, _) = store_of(2);
    let path = env.store().join(STORE_FILE);
    let first = fs::read(&path).unwrap();
    let f = custody::store::ledger::parse_store_file(&first).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o444, "written create-only, read-only");
    }
    for e in &entries {
        let parsed = custody::store::ledger::parse_entry(&fs::read(e).unwrap()).unwrap().1;
        assert_eq!((parsed.format.as_str(), parsed.store_id), ("custody-ledger/v2", Some(f.store_id)));
        assert_eq!(parsed.adopted, Some(false));
    }
    env.preserve_fixture(&["--note", "third"]);
    assert_eq!(fs::read(&path).unwrap(), first, "store.json is never rewritten");
    // Reading commands never create it.
    let fresh = Env::new();
    fs::create_dir_all(fresh.store().join("ledger")).unwrap();
    fresh.run(&["verify", "--store", s(&fresh.store()), "--all"]);
    assert!(!fresh.store().join(STORE_FILE).exists());
}

#[test]
fn an_entry_of_another_store_or_a_missing_store_json_is_a_finding() {
    let w = world();
    let e: Vec<(u64, &[u8])> = w.entries.iter().enumerate().map(|(i, e)| (i as u64 + 1, e.as_slice())).collect();
    // The same ledger copied, with its store.json: a migrated bucket verifies.
    let st = w.store_with(&w.all_bundles(), &e);
    let r = w.rt.block_on(verify_all(&st, &w.trust(), &Options::default(), true)).unwrap();
    assert!(r.intact(), "{}", r.to_human());
    // Without store.json.
    let st = w.bare_store_with(&w.all_bundles(), &e);
    let r = w.rt.block_on(verify_all(&st, &w.trust(), &Options::default(), false)).unwrap();
    let f = r.findings.iter().find(|f| f.kind == FindingKind::StoreIdMismatch).expect("finding");
    assert_eq!(f.location.to_string(), STORE_FILE, "{}", r.to_human());
    // The entries replayed into another store (its own store.json, its own id).
    let st = w.bare_store_with(&w.all_bundles(), &e);
    let other = custody::store::ledger::StoreFile {
        format: custody::store::ledger::STORE_FORMAT.into(),
        store_id: custody::store::ledger::StoreId([9; 16]),
        created_at: at(T0),
    };
    w.rt.block_on(st.create(STORE_FILE, other.to_bytes())).unwrap();
    let (r, _) = w.rt.block_on(verify_in_store(&st, &w.bundles[0].id, &w.trust(), &Options::default())).unwrap();
    let ids: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::StoreIdMismatch && f.level == Level::Error)
        .map(|f| f.location.to_string())
        .collect();
    assert_eq!(ids, vec![entry_key(1), entry_key(2), entry_key(3)], "{}", r.to_human());
}

/// `fixtures/compat/v1-ledger/`: a store written by custody before `custody-ledger/v2`
/// (bundles, v1 entries, no `store.json`) and its signer's public key.
fn v1_ledger() -> PathBuf {
    repo().join("fixtures/compat/v1-ledger")
}

#[test]
fn a_v1_ledger_keeps_verifying_and_a_v2_append_after_it_verifies_as_one_chain() {
    let env = Env::new();
    let store = env.path("store");
    for sub in ["bundles", "ledger"] {
        fs::create_dir_all(store.join(sub)).unwrap();
        for e in fs::read_dir(v1_ledger().join("store").join(sub)).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), store.join(sub).join(e.file_name())).unwrap();
        }
    }
    assert!(!store.join(STORE_FILE).exists());
    let v1_pub = v1_ledger().join("signer.pub");
    let out = env.run(&["verify", "--store", s(&store), "--all", "--json", "--trusted-key", s(&v1_pub)]);
    out.expect(0);
    let r = out.json();
    assert_eq!(r["bundles"].as_array().unwrap().len(), 2, "{r}");
    assert!(r["bundles"].as_array().unwrap().iter().all(|b| b["status"] == "intact" && b.get("adopted").is_none()));
    // An append by this custody (another key, pinned too): v2, naming the new store.json.
    let m = env.run(&["preserve", "--store", s(&store), "--incident-dir", s(&fixture_dir()), "--json"]);
    m.expect(0);
    assert_eq!(m.json()["ledger"]["position"], 3);
    assert!(store.join(STORE_FILE).exists(), "the first v2 append created store.json");
    let out = env.run(&[
        "verify",
        "--store",
        s(&store),
        "--all",
        "--json",
        "--trusted-key",
        s(&v1_pub),
        "--trusted-key",
        s(&env.pubkey()),
    ]);
    out.expect(0);
    let r = out.json();
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["level"] == "warning" && f["kind"] != "ledger_format_downgrade"),
        "{r}"
    );
    assert_eq!(r["bundles"].as_array().unwrap().len(), 3, "{r}");
}
