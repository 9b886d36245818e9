//! Benchmark helper: fill a local store with N tiny bundles and their signed ledger entries,
//! fast, for the `verify --store --all` benchmark.
//!
//! It seals through the library exactly as `preserve` does (same manifest, same ledger entry
//! bytes, each bundle linked to the previous entry) but skips what makes a real preserve slow
//! per call on tiny inputs: process start, re-listing the ledger before every append, and an
//! fsync per bundle. The resulting store verifies intact.
//!
//! usage: cargo run --release --example bench-ledger -- STORE N
//! The signing key is created as STORE/../bench-ledger.key (public key: `.pub`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use custody::bundle::dsse;
use custody::bundle::manifest::LedgerLink;
use custody::bundle::write::{seal, PlannedFile, SealInput};
use custody::clock::Clock;
use custody::digest::{EntryId, Sha256};
use custody::keys::SecretKey;
use custody::preserve::{incident_from, PreserveRequest};
use custody::store::ledger::{ensure_store_id, entry_key, LedgerEntry, LEDGER_FORMAT_V2};
use custody::store::{bundle_key, PutOutcome, Store};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store_dir, n] = args.as_slice() else { bail!("usage: bench-ledger STORE N") };
    let n: u64 = n.parse().context("N must be a number")?;
    let store_dir = PathBuf::from(store_dir);
    std::fs::create_dir_all(&store_dir)?;
    let key_path = store_dir.canonicalize()?.with_extension("key");
    let key_path = key_path.with_file_name(format!(
        "{}-bench-ledger.key",
        key_path.file_stem().and_then(|s| s.to_str()).unwrap_or("store")
    ));
    let key = if key_path.exists() { SecretKey::load(&key_path)? } else { SecretKey::generate(&key_path)? };
    let store = Store::open(store_dir.to_str().context("store path is not UTF-8")?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let clock = Clock::system();
    let incident = incident_from(&PreserveRequest::default());
    let evidence = tempfile::tempdir()?;
    let store_id = rt.block_on(ensure_store_id(&store, clock.now()))?;
    let mut prev: Option<LedgerLink> = None;
    for position in 1..=n {
        let src = evidence.path().join(format!("r{position}.json"));
        std::fs::write(&src, format!("{{\"memory_id\":\"mem-{position:06}\",\"op\":\"write\"}}\n"))?;
        let input = SealInput {
            files: vec![PlannedFile {
                rel_path: format!("memory/r{position:06}.json"),
                kind: "memory".into(),
                source: src.clone(),
                display_source: src.display().to_string(),
                snapshot: false,
                link_target: None,
            }]
            .into(),
            plan_events: Vec::new(),
            incident: incident.clone(),
            not_applicable: Vec::new(),
            ledger_prev: prev.clone(),
            clock: &clock,
            key: &key,
            level: 3,
            workers: 0,
            observer: None,
            supplement_of: None,
        };
        let mut bytes = Vec::new();
        let sealed = seal(input, &mut bytes)?;
        let size = bytes.len() as u64;
        if rt.block_on(store.create(&bundle_key(&sealed.id), bytes))? != PutOutcome::Created {
            bail!("bundle {} already in the store: use an empty store", sealed.id);
        }
        let entry = LedgerEntry {
            format: LEDGER_FORMAT_V2.into(),
            position,
            bundle: sealed.id,
            bundle_size: size,
            bundle_key: bundle_key(&sealed.id),
            prev: prev.as_ref().map(|p| p.entry),
            sealed_at: sealed.manifest.sealed_at,
            appended_at: clock.now(),
            store_id: Some(store_id),
            adopted: Some(false),
            timestamp: None,
            signed_by: None,
            supplement_of: None,
        };
        let env_bytes = dsse::to_bytes(&dsse::sign(entry.payload_type(), &entry.to_payload(), &key));
        let id = EntryId(Sha256::of(&env_bytes));
        if rt.block_on(store.create(&entry_key(position), env_bytes))? != PutOutcome::Created {
            bail!("ledger position {position} is taken: use an empty store");
        }
        std::fs::remove_file(&src)?;
        prev = Some(LedgerLink { position, entry: id, bundle: sealed.id });
    }
    println!("{}", custody::keys::pub_path_for(&key_path).display());
    Ok(())
}
