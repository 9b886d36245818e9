//! Verifying in a store: one bundle by digest ([`verify_in_store`]) and the whole ledger
//! ([`verify_all`]). Both walk the ledger's whole chain from position 1 (entries are small);
//! only `--all` reads every bundle. Neither can see, from the store alone, the newest entries
//! deleted together with their bundles: the `anchor` line says so unless a checkpoint is given.
//! In a versioned S3 bucket both read every key at its first version and report what was put
//! over it (the `versions` check, [`super::checks::versions`]).

use std::collections::{HashMap, HashSet};

use futures::StreamExt as _;

use super::bundle::{check_bundle, BundleCheck};
use super::checks::ledger::{check_anchor, check_chain, check_placement, check_truncation, LedgerView, NOT_ANCHORED};
use super::checks::timestamp::{check as check_timestamp, check_checkpoint_token, load_token};
use super::checks::versions::{check_versioning, check_versions};
use super::findings::{Findings, Location};
use super::report::{self, Finding, FindingKind, Level, Report, Subject};
use super::{Anchor, Options, Trust};
use crate::bundle::manifest::Manifest;
use crate::digest::{BundleId, Sha256};
use crate::read::ledger::entry_key;
use crate::store::ranged::take_failure;
use crate::store::versions::{KeyHistory, ReadAt, StoredObject};
use crate::store::{bundle_key, Fetched, Store, StoreError};
use crate::unfinished::TrackedTemp;

/// Bundles `verify --store URL --all` reads and verifies at once from a remote store. Each
/// holds at most [`crate::store::ranged::RANGES_IN_FLIGHT`] ranges with at most
/// [`crate::store::ranged::RANGE_BUFFER`] unread bytes each (32 MiB), so the audit's range
/// buffers stay under 64 MiB; each verification also has its own pipeline (~8 MiB) and
/// manifest. Two keep a download going while a bundle is verified on a 2-core machine; more
/// would only share the same cores.
const BUNDLES_IN_FLIGHT: usize = 2;

/// Verify a bundle in a store by digest, including the ledger's whole chain and the bundle's
/// place in it.
pub async fn verify_in_store(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
    opts: &Options,
) -> Result<(Report, Option<Manifest>), StoreError> {
    verify_in_store_with(store, id, trust, opts, None).await
}

/// [`verify_in_store`], and compare the ledger with a checkpoint file's bytes.
pub async fn verify_in_store_with(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
    opts: &Options,
    checkpoint: Option<&[u8]>,
) -> Result<(Report, Option<Manifest>), StoreError> {
    let anchor = checkpoint.map(Anchor::new);
    verify_in_store_anchored(store, id, trust, opts, anchor.as_ref()).await
}

/// [`verify_in_store`], and compare the ledger with a checkpoint and its cosignatures.
pub async fn verify_in_store_anchored(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
    opts: &Options,
    checkpoint: Option<&Anchor>,
) -> Result<(Report, Option<Manifest>), StoreError> {
    let (report, manifest, _) = verify_in_store_inner(store, id, trust, opts, checkpoint, false).await?;
    Ok((report, manifest))
}

/// [`verify_in_store`], keeping the bytes it verified: the local store's file, or a temporary
/// copy of a remote object written as its ranged reads arrive (`None` when there was no
/// object). A caller that reads the bundle after verifying it (`Bundle::open_in_store`,
/// `custody analyze`) so downloads it once, and reads the very bytes that verified.
pub(crate) async fn verify_in_store_keeping(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
    opts: &Options,
) -> Result<(Report, Option<Manifest>, Option<Fetched>), StoreError> {
    verify_in_store_inner(store, id, trust, opts, None, true).await
}

async fn verify_in_store_inner(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
    opts: &Options,
    checkpoint: Option<&Anchor>,
    keep: bool,
) -> Result<(Report, Option<Manifest>, Option<Fetched>), StoreError> {
    let view = LedgerView::load(store).await?;
    let mut subject = Subject {
        kind: "store".into(),
        store: Some(store.url().into()),
        bundle: Some(id.to_string()),
        path: None,
        size: None,
    };
    // In a versioned store, the bundle's first version (the one written create-only).
    let object = store.object(&bundle_key(id)).await?;
    let at = object.as_ref().map(|o| o.at.clone()).unwrap_or(ReadAt::Current);
    let checked = match &object {
        None if store.reads_history().await => None,
        _ => read_and_check(store, id, &at, object.as_ref().map(|o| o.size), trust, opts, keep).await?,
    };
    let (checked, kept) = match checked {
        Some((c, kept)) => (Some(c), kept),
        None => (None, None),
    };
    let bundle_history = object.as_ref().and_then(|o| o.history.as_deref());
    let Some(c) = checked else {
        let mut fs = Findings::default();
        match &object {
            // Delete markers only: hidden, and nothing left to verify; said by `versions`.
            Some(o) if o.at == ReadAt::NoVersion => fs.error(
                FindingKind::BundleMissing,
                Location::BundleObject(*id),
                "the bundle's key holds only delete markers: no version of it is left to verify",
            ),
            _ => fs.error(FindingKind::BundleMissing, Location::BundleObject(*id), "no such bundle in the store: check the digest (`custody list --store URL` lists the bundles the ledger records) or the store URL"),
        }
        versions(store, &view, bundle_history, view.entries.len() + 2, &mut fs).await;
        let mut order: Vec<&'static str> = report::BUNDLE_CHECKS.to_vec();
        if store.s3_admin().is_some() {
            order.push("versions");
        }
        let r = Report::build(subject, fs.list, &fs.ran, &order, &fs.details);
        return Ok((r, None, None));
    };
    let mut fs = Findings { list: c.findings, ran: c.ran, details: c.details };
    check_chain(&view, trust, &mut fs);
    let info = check_placement(&view, id, c.manifest.as_ref(), c.size, opts.max_skew, &mut fs);
    let timestamp = timestamp_of(store, &view, id, c.signature.as_ref(), opts, &mut fs).await?;
    versions(store, &view, bundle_history, view.entries.len() + 2, &mut fs).await;
    anchor(&view, checkpoint, store.url(), trust, opts, &mut fs);
    subject.size = Some(c.size);
    if let Some(i) = &info {
        let others = view.entries.len().saturating_sub(1);
        fs.detail(
            "ledger",
            format!(
                "chain walked from position 1: {} entries, positions contiguous, every link and signature intact; the bundle is at position {} of {}{}; the other {others} recorded bundle(s) were not read (`verify --store URL --all` reads them)",
                view.entries.len(),
                i.position,
                i.length,
                if i.adopted { " (adopted)" } else { "" }
            ),
        );
    }
    let mut order: Vec<&'static str> = vec!["bundle_digest"];
    order.extend(report::BUNDLE_CHECKS);
    order.push("timestamp");
    if store.s3_admin().is_some() {
        order.push("versions");
    }
    order.push("anchor");
    let mut r = Report::build(subject, fs.list, &fs.ran, &order, &fs.details);
    r.signer = c.signer;
    r.ledger = info;
    r.timestamp = timestamp;
    let mut keys = vec![(bundle_key(id), at)];
    if let Some(l) = &r.ledger {
        keys.push((entry_key(l.position), view.read_at(l.position)));
    }
    add_retention(store, &keys, &mut r).await;
    Ok((r, c.manifest, kept))
}

/// The `timestamp` check of bundle `id` at its first record (none when no entry records it):
/// its token object read from the store and checked against the entry and `signature`.
async fn timestamp_of(
    store: &Store,
    view: &LedgerView,
    id: &BundleId,
    signature: Option<&[u8; 64]>,
    opts: &Options,
    fs: &mut Findings,
) -> Result<Option<report::TimestampInfo>, StoreError> {
    let Some((position, le)) = view.recording(id).first().and_then(|e| e.entry().map(|x| (e.position, x))) else {
        return Ok(None);
    };
    let token = load_token(store, id).await?;
    Ok(check_timestamp(le, position, &token, signature, opts.tsa_policy(), fs))
}

/// The `versions` check (S3 stores): the bucket's versioning, and every later version and
/// delete marker of the ledger's keys, `store.json` and the bundles in `bundles`.
async fn versions<'a>(
    store: &Store,
    view: &'a LedgerView,
    bundles: impl IntoIterator<Item = &'a KeyHistory>,
    objects: usize,
    fs: &mut Findings,
) {
    if store.s3_admin().is_none() {
        return;
    }
    check_versions(view.tampered.iter().chain(bundles), fs);
    check_versioning(store, objects, fs).await;
}

/// The `anchor` check: the checkpoint compared, or the statement that there is none.
fn anchor(view: &LedgerView, checkpoint: Option<&Anchor>, url: &str, trust: &Trust, opts: &Options, fs: &mut Findings) {
    match checkpoint {
        Some(a) => {
            check_anchor(view, a, url, trust, fs);
            if let Some(token) = &a.timestamp {
                check_checkpoint_token(&a.checkpoint, token, trust, opts.tsa_policy(), fs);
            }
        }
        None => fs.detail("anchor", NOT_ANCHORED),
    }
}

/// Read bundle `id` (its first version) from the store and check it with the bundle checks;
/// `None` when the store holds no such object.
pub(crate) async fn check_stored_bundle(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
) -> Result<Option<BundleCheck>, StoreError> {
    let Some(o) = store.object(&bundle_key(id)).await? else { return Ok(None) };
    if o.at == ReadAt::NoVersion {
        return Ok(None);
    }
    let opts = Options::default();
    Ok(read_and_check(store, id, &o.at, Some(o.size), trust, &opts, false).await?.map(|(c, _)| c))
}

/// Read bundle `id` from the store as `at` says and check it ([`check_stored`]); `None` when
/// the store holds no such object. A local store's bundle is read as the file it is. A
/// remote one streams: ranged GETs pinned to one object feed the verifier on a blocking thread
/// ([`crate::store::ranged`]), with no local copy unless `keep` asks for one ([`KeptCopy`]). A
/// read that fails is the error it is, never findings about the bundle: what the verifier
/// found in a stream cut short is discarded. `size`: the object's size from the listing or
/// HEAD the caller already has. With `keep`, also the bytes read (else `None`).
async fn read_and_check(
    store: &Store,
    id: &BundleId,
    at: &ReadAt,
    size: Option<u64>,
    trust: &Trust,
    opts: &Options,
    keep: bool,
) -> Result<Option<(BundleCheck, Option<Fetched>)>, StoreError> {
    if store.local_root().is_some() {
        let Some(fetched) = store.fetch_bundle_at(id, at).await? else { return Ok(None) };
        let path = fetched.path();
        let file = std::fs::File::open(path).map_err(|source| StoreError::Io {
            op: "cannot open",
            path: path.into(),
            source,
        })?;
        return Ok(Some((check_stored(file, id, trust, opts), keep.then_some(fetched))));
    }
    let Some(reader) = store.open_bundle_ranged(id, at, size).await? else { return Ok(None) };
    let failure = reader.failure();
    let copy = match keep {
        true => {
            let tmp = crate::unfinished::temp_file(&tempfile::Builder::new(), None).map_err(|source| {
                StoreError::Io { op: "cannot create temp file in", path: std::env::temp_dir(), source }
            })?;
            let file =
                tmp.reopen().map_err(|source| StoreError::Io { op: "cannot open", path: tmp.path().into(), source })?;
            Some((tmp, std::io::BufWriter::with_capacity(1 << 20, file)))
        }
        false => None,
    };
    let (trust, opts, id2) = (trust.clone(), opts.clone(), *id);
    let (c, copy) = tokio::task::spawn_blocking(move || {
        let mut r = KeptCopy { inner: reader, copy: copy.map(|(tmp, w)| (tmp, w, None)) };
        let c = check_stored(&mut r, &id2, &trust, &opts);
        (c, r.finish())
    })
    .await
    .map_err(|_| StoreError::ReadTask)?;
    if let Some(e) = take_failure(&failure) {
        return Err(e);
    }
    Ok(Some((c, copy?.map(Fetched::Temp))))
}

/// Passes a bundle's bytes to the verifier and writes each into a temporary file as it goes.
/// A write that fails stops the copy (not the verification) and is the error of
/// [`KeptCopy::finish`]: a full disk is an operational error, never a finding about the bundle.
struct KeptCopy<R> {
    inner: R,
    copy: Option<(TrackedTemp, std::io::BufWriter<std::fs::File>, Option<std::io::Error>)>,
}

impl<R> KeptCopy<R> {
    /// The copy, flushed; `Ok(None)` when none was asked for.
    fn finish(self) -> Result<Option<TrackedTemp>, StoreError> {
        let Some((tmp, mut w, failed)) = self.copy else { return Ok(None) };
        let io = |source| StoreError::Io { op: "cannot write", path: tmp.path().into(), source };
        if let Some(e) = failed {
            return Err(io(e));
        }
        use std::io::Write as _;
        w.flush().map_err(io)?;
        Ok(Some(tmp))
    }
}

impl<R: std::io::Read> std::io::Read for KeptCopy<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some((_, w, failed @ None)) = &mut self.copy {
            use std::io::Write as _;
            if let Err(e) = w.write_all(buf.get(..n).unwrap_or_default()) {
                *failed = Some(e);
            }
        }
        Ok(n)
    }
}

/// Check a bundle object read from a store: the bundle checks, and its bytes against its name.
fn check_stored<R: std::io::Read>(r: R, id: &BundleId, trust: &Trust, opts: &Options) -> BundleCheck {
    let mut c = check_bundle(r, trust, opts, None);
    if c.digest != *id {
        c.findings.push(Finding {
            level: Level::Error,
            kind: FindingKind::BundleDigestMismatch,
            location: Location::BundleObject(*id),
            message: format!("the object's bytes hash to {}, not to its name", c.digest),
        });
    }
    c.ran.push("bundle_digest");
    c.details.push(("bundle_digest", "object bytes hash to the object's name".into()));
    c
}

/// Audit a whole ledger: the chain, every bundle present and verified (`read_data = false`
/// only checks presence and size), and every bundle no entry records.
pub async fn verify_all(store: &Store, trust: &Trust, opts: &Options, read_data: bool) -> Result<Report, StoreError> {
    verify_all_with(store, trust, opts, read_data, None).await
}

/// [`verify_all`], and compare the ledger with a checkpoint file's bytes (taken earlier by
/// `custody checkpoint`): a ledger shorter than the checkpoint is a rollback, another entry
/// at its position a fork. The checkpoint must be signed by a trusted key.
pub async fn verify_all_with(
    store: &Store,
    trust: &Trust,
    opts: &Options,
    read_data: bool,
    checkpoint: Option<&[u8]>,
) -> Result<Report, StoreError> {
    let anchor = checkpoint.map(Anchor::new);
    verify_all_anchored(store, trust, opts, read_data, anchor.as_ref()).await
}

/// [`verify_all_with`], with the witnesses whose cosignatures the checkpoint must carry
/// ([`Anchor`]).
pub async fn verify_all_anchored(
    store: &Store,
    trust: &Trust,
    opts: &Options,
    read_data: bool,
    checkpoint: Option<&Anchor>,
) -> Result<Report, StoreError> {
    let view = LedgerView::load(store).await?;
    // Every key under bundles/, each at its first version in a versioned store.
    let listed = store.list_objects("bundles/", &|k| bundle_of_key(k).is_some()).await?;
    let objects: HashMap<BundleId, &StoredObject> =
        listed.objects.iter().filter_map(|o| bundle_of_key(&o.key).map(|id| (id, o))).collect();
    // Where a recorded bundle is read: as listed; an object listed after the ledger was read
    // (a store without history) is read as it is now.
    let at_of = |id: &BundleId| match objects.get(id) {
        Some(o) => Some(o.at.clone()),
        None if listed.versioned => None,
        None => Some(ReadAt::Current),
    };
    let mut fs = Findings::default();
    check_chain(&view, trust, &mut fs);
    let bundle_histories =
        listed.objects.iter().filter(|o| bundle_of_key(&o.key).is_some()).filter_map(|o| o.history.as_deref());
    versions(store, &view, bundle_histories, view.entries.len() + listed.objects.len() + 1, &mut fs).await;
    anchor(&view, checkpoint, store.url(), trust, opts, &mut fs);
    fs.ran("bundles");
    let mut lines = Vec::new();
    let mut recorded: HashSet<BundleId> = HashSet::new();
    // The recorded bundles are read and verified up to `parallel` at a time (downloads overlap
    // verification; each has its own bounded range buffers, `store::ranged`), and their results
    // are taken in ledger order: the report is the one a sequential audit makes. Only the
    // first `?` in ledger order is returned, as sequentially.
    let parallel = if store.local_root().is_some() { 1 } else { BUNDLES_IN_FLIGHT };
    let reads = futures::stream::iter(view.entries.iter().filter_map(|e| e.entry()))
        .map(|le| {
            let at = if read_data { at_of(&le.bundle) } else { None };
            let size = objects.get(&le.bundle).map(|o| o.size);
            async move {
                match at {
                    Some(at) => read_and_check(store, &le.bundle, &at, size, trust, opts, false)
                        .await
                        .map(|c| c.map(|(c, _)| c)),
                    None => Ok(None),
                }
            }
        })
        .buffered(parallel);
    let mut reads = std::pin::pin!(reads);
    for e in &view.entries {
        let Some(le) = e.entry() else { continue };
        let first = recorded.insert(le.bundle);
        let mut stamped = None;
        let (status, errors) = if read_data {
            let checked = reads.next().await.transpose()?.flatten();
            match checked {
                None => {
                    fs.error(
                        FindingKind::BundleMissing,
                        Location::BundleObject(le.bundle),
                        format!("ledger position {} names a bundle that is not in the store (deleted?)", e.position),
                    );
                    ("missing", 1)
                }
                Some(c) => {
                    let mut sub = Findings { list: c.findings, ..Findings::default() };
                    // A replay is reported once, by the chain check; the bundle's place is its
                    // first record's.
                    if first {
                        check_placement(&view, &le.bundle, c.manifest.as_ref(), c.size, opts.max_skew, &mut sub);
                        stamped = timestamp_of(store, &view, &le.bundle, c.signature.as_ref(), opts, &mut sub).await?;
                    }
                    let errors = sub.errors();
                    for x in sub.list {
                        fs.list.push(Finding { location: Location::InBundle(le.bundle, Box::new(x.location)), ..x });
                    }
                    (if errors == 0 { "intact" } else { "failed" }, errors)
                }
            }
        } else {
            let size = match objects.get(&le.bundle) {
                Some(o) if o.at != ReadAt::NoVersion => Some(o.size),
                Some(_) => None,
                None if listed.versioned => None,
                None => store.head(&bundle_key(&le.bundle)).await?,
            };
            match size {
                None => {
                    fs.error(
                        FindingKind::BundleMissing,
                        Location::BundleObject(le.bundle),
                        format!("ledger position {} names a bundle that is not in the store (deleted?)", e.position),
                    );
                    ("missing", 1)
                }
                Some(sz) if sz != le.bundle_size => {
                    fs.error(
                        FindingKind::LedgerBundleMismatch,
                        Location::BundleObject(le.bundle),
                        format!("object is {sz} bytes, ledger says {}", le.bundle_size),
                    );
                    ("failed", 1)
                }
                Some(_) => ("present", 0),
            }
        };
        lines.push(report::BundleLine {
            position: e.position,
            bundle: le.bundle.to_string(),
            status: status.into(),
            errors,
            adopted: le.adopted(),
            timestamp: stamped.map(|t| t.gen_time),
        });
    }
    // Bundles nobody recorded: a crash between storing a bundle and appending its entry — or
    // a deleted entry, which the bundle's own `ledger_prev` may prove.
    if view.entries.is_empty() && listed.objects.is_empty() && view.strays.is_empty() {
        fs.warn(
            FindingKind::EmptyStore,
            Location::Ledger,
            "the store holds no ledger entry and no bundle: nothing was verified. Check the store URL: an empty directory, bucket or prefix (a mistyped S3 prefix, say) reads as an empty store",
        );
    }
    if listed.not_listed > 0 {
        fs.warn(
            FindingKind::StrayObject,
            Location::StoreObject("bundles/".into()),
            format!(
                "{} more objects under bundles/ not named like a bundle, not listed one by one (junk, or planted: a listing keeps at most {} such keys)",
                listed.not_listed,
                crate::store::versions::MAX_OTHER_KEYS
            ),
        );
    }
    for o in &listed.objects {
        let Some(id) = bundle_of_key(&o.key) else {
            fs.warn(
                FindingKind::StrayObject,
                Location::StoreObject(crate::store::address::display_key(&o.key)),
                "an object under bundles/ that is not named like a bundle (bundles/<sha256 hex>.tar.zst): junk, or planted; it is not evidence",
            );
            continue;
        };
        // A key holding only delete markers has nothing to verify: `versions` reports it.
        if recorded.contains(&id) || o.at == ReadAt::NoVersion {
            continue;
        }
        let verdict = match read_and_check(store, &id, &o.at, Some(o.size), trust, opts, false).await?.map(|(c, _)| c) {
            None => "it disappeared while the audit ran".to_string(),
            Some(c) => match (c.findings.iter().find(|x| x.level == Level::Error), &c.manifest) {
                (None, Some(m)) => {
                    check_truncation(&view, &id, m, &mut fs);
                    "it verifies; `custody store repair` adopts it".to_string()
                }
                (Some(x), _) => {
                    format!("it does NOT verify ({}: {}); it will not be adopted", x.location, x.message)
                }
                (None, None) => "it has no readable manifest; it will not be adopted".to_string(),
            },
        };
        fs.warn(
            FindingKind::UnreferencedBundle,
            Location::BundleObject(id),
            format!("a bundle in the store that no ledger entry records (an interrupted preserve, or its entry was deleted): {verdict}"),
        );
    }
    let subject = Subject { kind: "ledger".into(), store: Some(store.url().into()), ..Default::default() };
    let order: &[&'static str] = if store.s3_admin().is_some() {
        &["ledger", "versions", "anchor", "bundles"]
    } else {
        &["ledger", "anchor", "bundles"]
    };
    let n = view.entries.len();
    fs.detail("ledger", format!("{n} entries, contiguous from 1, every link and signature intact"));
    let adopted = lines.iter().filter(|l| l.adopted).count();
    fs.detail(
        "bundles",
        format!(
            "{} bundle(s) {}{}",
            lines.len(),
            if read_data { "present and verified" } else { "present with the recorded size (not re-hashed)" },
            if adopted > 0 { format!(" ({adopted} adopted)") } else { String::new() }
        ),
    );
    // Whatever is about one bundle (its contents, its place, its object) is that bundle's
    // line; the rest by the check its kind belongs to.
    let check_of = |x: &Finding| match (&x.location, x.kind) {
        (Location::InBundle(..) | Location::BundleObject(_), _) | (_, FindingKind::UnreferencedBundle) => "bundles",
        _ => x.kind.check(),
    };
    let mut r = Report::build_with(subject, fs.list, &fs.ran, order, &fs.details, check_of);
    r.bundles = lines;
    if store.s3_admin().is_some() {
        let mut keys: Vec<(String, ReadAt)> = Vec::new();
        for e in &view.entries {
            keys.push((entry_key(e.position), view.read_at(e.position)));
            if let Some(le) = e.entry() {
                keys.push((bundle_key(&le.bundle), at_of(&le.bundle).unwrap_or(ReadAt::NoVersion)));
            }
        }
        add_retention(store, &keys, &mut r).await;
    }
    Ok(r)
}

/// The bundle a key under `bundles/` names (`bundles/<hex>.tar.zst`), if it is one.
fn bundle_of_key(key: &str) -> Option<BundleId> {
    let hex = key.strip_prefix("bundles/")?.strip_suffix(".tar.zst")?;
    Sha256::parse_canonical_hex(hex).map(BundleId)
}

/// Read the Object Lock state of `keys` (S3 stores only) into the report: one line per
/// object, a `retention` check, and a warning for each object that is not (or no longer)
/// locked. Retention is evidence about the store, not about the bundle: it never fails the
/// verdict.
async fn add_retention(store: &Store, keys: &[(String, ReadAt)], r: &mut Report) {
    if store.s3_admin().is_none() {
        return;
    }
    let now = chrono::Utc::now();
    let mut fs = Findings::default();
    let mut lines = Vec::new();
    let mut earliest: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
    let mut locked = 0usize;
    for (k, read_at) in keys {
        let at = Location::StoreObject(k.clone());
        let version_id = match read_at {
            ReadAt::Version(v) => Some(v.clone()),
            _ => None,
        };
        match store.object_retention_at(k, read_at).await {
            Ok(crate::store::RetentionState::Object(o)) => {
                lines.push(report::RetentionLine {
                    key: k.clone(),
                    version_id,
                    mode: o.mode.clone(),
                    retain_until: o.retain_until.clone(),
                    legal_hold: o.legal_hold.clone(),
                });
                let held = o.legal_hold.as_deref() == Some("ON");
                match (&o.mode, o.until()) {
                    (Some(mode), Some(until)) if until > now => {
                        locked += 1;
                        if earliest.as_ref().map_or(true, |(e, _)| until < *e) {
                            earliest = Some((until, mode.clone()));
                        }
                    }
                    _ if held => locked += 1,
                    (Some(_), Some(until)) => fs.warn(
                        FindingKind::RetentionMissing,
                        at,
                        format!("its Object Lock retention ended on {until}: it can now be deleted"),
                    ),
                    _ => fs.warn(
                        FindingKind::RetentionMissing,
                        at,
                        "the server reports no Object Lock retention for this object: it can be deleted or overwritten by anyone allowed to (preserve with --retention DAYS, or set a default retention on the bucket)",
                    ),
                }
            }
            // Never skipped: an audit that reads other keys than the ones written must not
            // pass by finding nothing.
            Ok(_) => fs.warn(
                FindingKind::RetentionMissing,
                at,
                "not found where its retention was read: its lock could not be checked",
            ),
            Err(e) => fs.warn(
                FindingKind::RetentionMissing,
                at,
                format!("cannot read its Object Lock retention: {}", crate::error_text(&e)),
            ),
        }
    }
    let detail = match &earliest {
        Some((until, mode)) if locked == keys.len() => {
            format!("{locked} object(s) locked; earliest release {until} ({mode})")
        }
        _ => format!("{locked} of {} object(s) locked", keys.len()),
    };
    let warnings = fs.list.len();
    let status = if warnings == 0 { report::CheckStatus::Pass } else { report::CheckStatus::Warn };
    let detail = if warnings == 0 { detail } else { format!("{detail}; {warnings} warning(s)") };
    r.checks.push(report::Check { name: "retention", status, detail });
    r.findings.extend(fs.list);
    r.retention = lines;
}
