//! Bundles with very large manifests (many files): the verifier checks the envelope as it
//! streams and the signature over the manifest in place, so an incident of 100k files verifies,
//! under [`RSS_LIMIT_KIB`] of peak resident memory, and a hostile manifest at the caps stays
//! under [`HOSTILE_RSS_LIMIT_KIB`].

use std::path::Path;
use std::process::Command;

use crate::verify_support::*;

/// The bound for a real bundle of 100k files (a ~56 MB manifest; measured 112 MiB on
/// 2026-12-01, when the archive scan stopped keeping every member's name).
const RSS_LIMIT_KIB: u64 = 160 * 1024;
/// The stated bound for a hostile manifest at the caps: the manifest bytes (<= 160 MiB) plus
/// the parsed manifest (estimated <= 320 MiB by `read::json`, an upper bound of what the
/// parser allocates) plus buffers (docs/format-reader-rules.md, "Manifest").
const HOSTILE_RSS_LIMIT_KIB: u64 = 512 * 1024;
const MTIME: u64 = 1_763_800_000;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_custody")
}

#[test]
fn regression_hundred_thousand_file_bundle_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("memory");
    for i in 0..100_000u32 {
        let d = src.join(format!("d{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&d).unwrap();
        }
        std::fs::write(d.join(format!("m{i:06}.json")), format!("{{\"id\":{i}}}\n")).unwrap();
    }
    let home = dir.path().join("home");
    let out = Command::new(bin())
        .args(["preserve", "--source"])
        .arg(format!("memory={}", src.display()))
        .arg("--json")
        .env("CUSTODY_HOME", &home)
        .env("SOURCE_DATE_EPOCH", MTIME.to_string())
        .output()
        .expect("run custody preserve");
    assert_eq!(out.status.code(), Some(0), "preserve: {}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("preserve --json");
    let bundle = Path::new(p["location"].as_str().expect("location")).to_path_buf();
    let bytes = std::fs::read(&bundle).unwrap();
    let tar = zstd::decode_all(bytes.as_slice()).unwrap();
    let members = split(&tar);
    let man = members.iter().find(|m| m.name == "manifest.json").expect("manifest.json");
    let man_len = man.data.len();
    // The manifest is above the 32 MiB the verifier used to accept (format v2: compact, with the
    // analysis in its own member).
    assert!(man.data.len() > 32 << 20, "manifest.json is {} bytes", man.data.len());
    let m: serde_json::Value = serde_json::from_slice(&man.data).unwrap();
    assert_eq!(m["entries"].as_array().map(Vec::len), Some(100_000));
    assert!(m["analysis_ref"].is_object(), "the collector's analysis is named by the manifest");
    assert!(members.iter().any(|m| m.name == "analysis.json"), "and sealed as analysis.json");
    drop((m, members, tar, bytes));

    let r = verify_file(&bundle, &home, &home.join("keys/default.key.pub"), &[]);
    assert_eq!(r.code, 0, "verify must pass: {:?}\n{}\n{}", r.kinds, r.stderr, &r.stdout[..r.stdout.len().min(2000)]);
    assert!(r.kinds.is_empty(), "{:?}", r.kinds);
    assert!(r.peak_kib < RSS_LIMIT_KIB, "peak RSS {} KiB", r.peak_kib);
    eprintln!("100k files: manifest.json {man_len} bytes, verify peak RSS {} KiB", r.peak_kib);
}

/// A manifest at the cap whose envelope is its canonical, validly signed envelope (so it is
/// streamed and the signature is checked in place), but which does not parse: the parser gets
/// to the end of a huge `analysis` value before failing.
#[test]
fn a_manifest_at_the_cap_with_its_signed_envelope_stays_under_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let key = custody::keys::SecretKey::generate(&dir.path().join("k")).unwrap();
    let cap = custody::read::envelope::MAX_MANIFEST;
    let cost_cap = custody::read::envelope::MAX_JSON_VALUES_COST;
    // A long string, then as many `[]` values as the parse-cost bound still admits: inside
    // `analysis` (a `serde_json::Value`), each `,[]` costs an array slot (an empty array
    // allocates nothing) plus its 3 bytes, which the string gives up.
    let values = (cost_cap - cap) / custody::read::json::VALUE_ELEMENT - 16;
    let mut man = b"{\"analysis\": [\"".to_vec();
    man.resize(cap - values * 3 - 64, b'a');
    man.extend_from_slice(b"\"");
    for _ in 0..values {
        man.extend_from_slice(b",[]");
    }
    man.extend_from_slice(b"], \"format\": \"custody-bundle/v1\"}\n");
    assert!(man.len() <= cap, "{} > {cap}", man.len());
    assert!(man.len() > cap - (1 << 20));
    let cost = custody::read::envelope::json_cost(&man);
    assert!(cost <= cost_cap && cost > cost_cap - (4 << 20), "cost {cost}");
    let env = custody::bundle::dsse::to_bytes(&custody::bundle::dsse::sign(
        custody::bundle::manifest::MANIFEST_PAYLOAD_TYPE,
        &man,
        &key,
    ));
    let ev = b"evidence\n".to_vec();
    let blob = member(&format!("blobs/sha256/{}", custody::digest::Sha256::of(&ev).hex()), ev, MTIME);
    let f = dir.path().join("cap.tar.zst");
    std::fs::write(
        &f,
        zst(&join(&[blob, member("manifest.json", man, MTIME), member("manifest.dsse.json", env.clone(), MTIME)])),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    let r = verify_file(&f, &dir.path().join("home"), &dir.path().join("k.pub"), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.kinds.iter().any(|k| k == "manifest_invalid"), "{:?}", r.kinds);
    // The envelope streamed and its signature, checked in place over the manifest, is valid.
    assert!(!r.kinds.iter().any(|k| k == "bad_signature" || k == "envelope_invalid" || k == "payload_mismatch"));
    assert!(!r.kinds.iter().any(|k| k == "member_too_large"), "{:?}", r.kinds);
    assert!(r.peak_kib < HOSTILE_RSS_LIMIT_KIB, "peak RSS {} KiB", r.peak_kib);
    eprintln!(
        "manifest {} MiB at the cap ({values} values, parse cost {} MiB) + its envelope {} MiB: peak RSS {} KiB",
        cap >> 20,
        cost >> 20,
        env.len() >> 20,
        r.peak_kib
    );
}

/// `show` at its caps: `analysis.json` parses into a `serde_json::Value` only within what the
/// parsed manifest leaves of the parse bound. An analysis whose estimate is just under what is
/// left is shown, one just over is not (a warning); both stay under show's bound (the verify
/// bound plus the 32 MiB of `analysis.json` it keeps).
#[test]
fn show_at_the_analysis_parse_cap_stays_under_its_memory_bound() {
    let w = world();
    let tar = zstd::decode_all(&w.bundles[0].bytes[..]).unwrap();
    let man = split(&tar).into_iter().find(|m| m.name == "manifest.json").unwrap().data;
    let budget = custody::read::envelope::MAX_JSON_VALUES_COST - custody::read::envelope::json_cost(&man);
    // `[1,1,…,1]\n`: 2 bytes and one array slot per element, plus the array and the document.
    let per = custody::read::json::VALUE_ELEMENT + 2;
    let fits = (budget - 4096) / per;
    for (n, shown) in [(fits, true), (fits + 4096 / per + 64, false)] {
        let mut a = Vec::with_capacity(2 * n + 2);
        a.push(b'[');
        for i in 0..n {
            a.extend_from_slice(if i == 0 { b"1" } else { b",1" });
        }
        a.extend_from_slice(b"]\n");
        assert!(a.len() < 32 << 20, "kept by show: {} bytes", a.len());
        let estimate = custody::read::json::cost(&a, custody::read::json::Model::Value);
        assert_eq!(estimate <= budget, shown, "estimate {estimate}, budget {budget}");
        let r = run_on_file(&w, "show", &with_analysis(&w, a));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(!r.stdout.contains("it is not shown"), shown, "{n} elements");
        assert!(r.peak_kib < HOSTILE_RSS_LIMIT_KIB + 32 * 1024, "show of {n} elements: peak RSS {} KiB", r.peak_kib);
        eprintln!("show, analysis of {n} elements (shown: {shown}): peak RSS {} KiB", r.peak_kib);
    }
}
