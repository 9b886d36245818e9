//! One conformance suite for every store backend: `memory://`, a local directory, S3 (a real
//! `moto_server`) and Azure Blob (a real Azurite). Each backend must give the same answers:
//! write-once objects, an identical re-put is a success, a different object at a taken ledger
//! position is refused, racing create-only writes of one key have exactly one winner, ledger
//! append/head/load_all, the store identity (`store.json`) created once by racing first
//! appends, and 8 concurrent preserves ending in one unbroken ledger that `verify --all` finds
//! intact.

use std::io::Write;
use std::sync::Arc;

use custody::clock::Clock;
use custody::digest::{BundleId, Sha256};
use custody::keys::SecretKey;
use custody::preserve::{preserve, PreserveRequest};
use custody::store::ledger;
use custody::store::{PutOutcome, Store, StoreError};
use custody::verify::{self, FindingKind, Trust};

use crate::store_util::{incident, Azurite, Moto};

fn key(dir: &std::path::Path) -> Arc<SecretKey> {
    Arc::new(SecretKey::generate(&dir.join("signing.key")).unwrap())
}

async fn stage(store: &Store, bytes: &[u8]) -> custody::unfinished::TrackedTemp {
    let mut t = store.staging_file().unwrap();
    t.write_all(bytes).unwrap();
    t.flush().unwrap();
    t
}

/// The suite. `make(name)` returns a fresh, empty store for each part.
async fn conformance(label: &str, make: impl Fn(&str) -> Store) {
    let tmp = tempfile::tempdir().unwrap();
    let key = key(tmp.path());

    // Write-once objects: created, identical re-put is a success, different content refused.
    let s = make("objects");
    assert_eq!(s.create("ledger/x.json", b"first".to_vec()).await.unwrap(), PutOutcome::Created, "{label}");
    assert_eq!(s.create("ledger/x.json", b"first".to_vec()).await.unwrap(), PutOutcome::AlreadyPresent, "{label}");
    assert_eq!(s.create("ledger/x.json", b"second".to_vec()).await.unwrap(), PutOutcome::Taken, "{label}");
    assert_eq!(s.get_small("ledger/x.json", 1024).await.unwrap().unwrap(), b"first", "{label}: overwritten");

    // Create-only is real: 16 writers race to create one key with different bytes; exactly
    // one wins, every other is told the key is taken, and the winner's bytes stay.
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { (i, s.create("ledger/race.json", vec![b'w', i]).await) }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r.unwrap_or_else(|e| panic!("{label}: racing create failed: {e}")) {
            PutOutcome::Created => winners.push(i),
            PutOutcome::Taken => {}
            PutOutcome::AlreadyPresent => panic!("{label}: writer {i} found its own bytes it never wrote"),
            other => panic!("{label}: writer {i}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{label}: create-only race had winners {winners:?}");
    assert_eq!(s.get_small("ledger/race.json", 16).await.unwrap().unwrap(), vec![b'w', winners[0]], "{label}");

    // Bundles: content-addressed, an identical bundle is a success, other bytes under a taken
    // name are a conflict (the store was altered).
    let a = b"bundle bytes A".to_vec();
    let id = BundleId(Sha256::of(&a));
    assert_eq!(s.put_bundle(stage(&s, &a).await, &id).await.unwrap(), PutOutcome::Created, "{label}");
    assert_eq!(s.put_bundle(stage(&s, &a).await, &id).await.unwrap(), PutOutcome::AlreadyPresent, "{label}");
    let b = b"bundle bytes B".to_vec();
    let id_b = BundleId(Sha256::of(&b));
    s.create(&custody::store::bundle_key(&id_b), b"planted, not B".to_vec()).await.unwrap();
    let err = s.put_bundle(stage(&s, &b).await, &id_b).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{label}: {err}");
    let fetched = s.fetch_bundle(&id).await.unwrap().expect("bundle present");
    assert_eq!(std::fs::read(fetched.path()).unwrap(), a, "{label}: bundle bytes changed");

    // Ledger: append, head, load_all, hash links; a taken position refuses other content.
    let s = make("ledger");
    assert!(ledger::head(&s).await.unwrap().is_none(), "{label}: new ledger not empty");
    let sealed = chrono::Utc::now();
    let mut ids = Vec::new();
    for i in 0..3u8 {
        let b = BundleId(Sha256::of(&[i]));
        let (pos, eid) = ledger::append(&s, &b, 1, sealed, &key, chrono::Utc::now).await.unwrap();
        assert_eq!(pos, u64::from(i) + 1, "{label}");
        ids.push(eid);
    }
    let h = ledger::head(&s).await.unwrap().unwrap();
    assert_eq!((h.position, h.id), (3, ids[2]), "{label}");
    let all = ledger::load_all(&s).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3], "{label}");
    for (i, e) in all.iter().enumerate() {
        let (_, le) = e.parsed.as_ref().unwrap();
        assert_eq!(le.prev, if i == 0 { None } else { Some(ids[i - 1]) }, "{label}: broken link at {}", e.position);
        assert_eq!(e.id, ids[i], "{label}");
    }
    let before = s.get_small(&ledger::entry_key(2), 1 << 16).await.unwrap().unwrap();
    assert_eq!(s.create(&ledger::entry_key(2), b"{\"forged\":true}".to_vec()).await.unwrap(), PutOutcome::Taken);
    assert_eq!(s.get_small(&ledger::entry_key(2), 1 << 16).await.unwrap().unwrap(), before, "{label}");
    // Recording an already-recorded bundle again (append_unique) finds the existing entry.
    let again = ledger::append_unique(&s, &BundleId(Sha256::of(&[1])), 1, sealed, &key, chrono::Utc::now, Some(0))
        .await
        .unwrap();
    assert!(again.existing && again.position == 2, "{label}: {again:?}");
    assert_eq!(ledger::positions(&s).await.unwrap().len(), 3, "{label}: a duplicate entry was written");

    // Many writers racing for positions: every append gets its own position, one chain.
    let s = make("race");
    let mut tasks = Vec::new();
    for i in 0..24u8 {
        let (s, key) = (s.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            ledger::append(&s, &BundleId(Sha256::of(&[b'r', i])), 1, sealed, &key, chrono::Utc::now).await
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap().unwrap_or_else(|e| panic!("{label}: racing append failed: {e}")).0);
    }
    got.sort();
    assert_eq!(got, (1..=24).collect::<Vec<u64>>(), "{label}: racing appends");
    let all = ledger::load_all(&s).await.unwrap();
    for w in all.windows(2) {
        assert_eq!(w[1].parsed.as_ref().unwrap().1.prev, Some(w[0].id), "{label}: race broke the chain");
    }
    // Store identity: the 24 racing first appends created store.json once (create-only), every
    // entry names its id, and it is never replaced.
    let id = match ledger::read_store_id(&s).await.unwrap() {
        Some(Ok(f)) => f.store_id,
        other => panic!("{label}: store.json after the first appends: {other:?}"),
    };
    assert!(all.iter().all(|e| e.entry().is_some_and(|le| le.store_id == Some(id))), "{label}: store ids differ");
    assert_eq!(s.create(ledger::STORE_FILE, b"{}".to_vec()).await.unwrap(), PutOutcome::Taken, "{label}");
    assert_eq!(ledger::ensure_store_id(&s, chrono::Utc::now()).await.unwrap(), id, "{label}");

    // An unreferenced bundle (a preserve killed before its ledger entry) is adopted exactly
    // once, even by several repairs at the same time.
    let src = make("adopt-src");
    let req =
        PreserveRequest { incident_dir: Some(incident(tmp.path(), &format!("{label}-orphan"))), ..Default::default() };
    let p = preserve(&src, key.clone(), req, Clock::system()).await.unwrap();
    let bytes = std::fs::read(src.fetch_bundle(&p.bundle).await.unwrap().unwrap().path()).unwrap();
    let s = make("adopt");
    assert_eq!(s.put_bundle(stage(&s, &bytes).await, &p.bundle).await.unwrap(), PutOutcome::Created);
    let trust = Trust::new(vec![key.public.clone()]);
    let r = verify::verify_all(&s, &trust, &verify::Options::default(), true).await.unwrap();
    assert!(r.intact(), "{label}: {}", r.to_human());
    assert!(r.findings.iter().any(|f| f.kind == FindingKind::UnreferencedBundle), "{label}: {}", r.to_human());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, key) = (s.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            custody::preserve::adopt_unreferenced(&s, &key, None, std::time::Duration::ZERO, &Clock::system()).await
        }));
    }
    for t in tasks {
        for a in t.await.unwrap().unwrap() {
            assert_eq!(a.result, Ok(1), "{label}: adoption");
        }
    }
    assert_eq!(ledger::positions(&s).await.unwrap(), vec![1], "{label}: adopted more than once");
    let r = verify::verify_all(&s, &trust, &verify::Options::default(), true).await.unwrap();
    // (On S3 without --retention, unlocked objects are warned about; nothing else may be.)
    assert!(
        r.intact() && r.findings.iter().all(|f| f.kind == FindingKind::RetentionMissing),
        "{label}: {}",
        r.to_human()
    );
    // A bundle signed by a key we do not hold is not adopted.
    let other = SecretKey::generate(&tmp.path().join(format!("other-{label}.key"))).unwrap();
    let s2 = make("adopt-foreign");
    s2.put_bundle(stage(&s2, &bytes).await, &p.bundle).await.unwrap();
    let done = custody::preserve::adopt_unreferenced(&s2, &other, None, std::time::Duration::ZERO, &Clock::system())
        .await
        .unwrap();
    assert!(matches!(&done[..], [a] if a.result.is_err()), "{label}: {done:?}");
    assert!(ledger::positions(&s2).await.unwrap().is_empty(), "{label}: a foreign bundle was adopted");

    // 8 concurrent preserves: all succeed, one unbroken chain, each bundle exactly once.
    let s = make("concurrent");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (s, key) = (s.clone(), key.clone());
        let dir = incident(tmp.path(), &format!("{label}-{i}"));
        tasks.push(tokio::spawn(async move {
            let req = PreserveRequest {
                incident_dir: Some(dir),
                notes: vec![format!("responder {i}")],
                workers: 1,
                ..Default::default()
            };
            preserve(&s, key, req, Clock::system()).await
        }));
    }
    let mut bundles = Vec::new();
    let mut positions = Vec::new();
    for t in tasks {
        let p = t.await.unwrap().unwrap_or_else(|e| panic!("{label}: concurrent preserve failed: {e}"));
        bundles.push(p.bundle);
        positions.push(p.position);
    }
    positions.sort();
    assert_eq!(positions, (1..=8).collect::<Vec<u64>>(), "{label}: positions");
    bundles.sort();
    bundles.dedup();
    assert_eq!(bundles.len(), 8, "{label}: distinct bundles");
    let trust = Trust::new(vec![key.public.clone()]);
    let r = verify::verify_all(&s, &trust, &verify::Options::default(), true).await.unwrap();
    assert!(r.intact(), "{label}: {}", r.to_human());
    assert_eq!(r.bundles.len(), 8, "{label}");
    assert!(r.bundles.iter().all(|b| b.status == "intact"), "{label}: {}", r.to_human());
    assert!(
        !r.findings.iter().any(|f| f.kind == FindingKind::UnreferencedBundle),
        "{label}: unreferenced bundles after concurrent preserves: {}",
        r.to_human()
    );
    let all = ledger::load_all(&s).await.unwrap();
    for w in all.windows(2) {
        let (_, le) = w[1].parsed.as_ref().unwrap();
        assert_eq!(le.prev, Some(w[0].id), "{label}: chain broken at {}", w[1].position);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_memory() {
    conformance("memory", |_| Store::open_with("memory://", &Default::default()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_local_dir() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    conformance("local", move |name| Store::open_with(root.join(name).to_str().unwrap(), &Default::default()).unwrap())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_s3_moto() {
    let moto = Moto::start();
    moto.create_bucket("conformance", true);
    conformance("s3", |name| moto.store("conformance", name, Default::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_azure_azurite() {
    let azurite = Azurite::start();
    azurite.create_container("conformance");
    conformance("azure", |name| azurite.store("conformance", name)).await;
}
