//! The store's ledger: an append-only, hash-linked, signed sequence of bundle records, and the
//! store's identity (`store.json`) that every v2 entry names.
//!
//! Entry `n` (1-based) is the object `ledger/<n as 20 digits>.json`: a DSSE envelope over a
//! [`LedgerEntry`] naming one bundle and the SHA-256 of the object at position `n-1`. The
//! ledger is the run of positions 1..=n that are all present; an append writes position n+1
//! create-only, so two writers can never both claim a position: the loser re-reads the head and
//! retries. Objects above a hole in that run (a planted `ledger/18446744073709551615.json`, say)
//! are not part of the chain: the writer never builds on them, the verifier reports them.
//!
//! In a versioned store (S3 with versioning) every key is read at its first version, the one
//! written create-only (`super::versions`): a position is taken as soon as its key holds any
//! version or delete marker, the head is the first version at the last position (a key that holds
//! only delete markers is an object of zero bytes: it stays in the chain and is reported), and a
//! delete marker over the head neither hides it from a writer nor frees its position.
//!
//! The formats and their parser are in `crate::read::ledger` (re-exported here).

use chrono::{DateTime, Utc};

use super::versions::{KeyHistory, ReadAt};
use super::{bundle_key, PutOutcome, Store, StoreError};
use crate::bundle::dsse;
use crate::bundle::manifest::LedgerLink;
use crate::digest::{BundleId, EntryId, Sha256};
use crate::keys::SecretKey;
pub use crate::read::ledger::{
    entry_key, parse_entry, parse_entry_key, parse_store_file, EntryProblem, KeyRole, LedgerEntry, SignedBy, StoreFile,
    StoreId, StoredEntry, TimestampRef, LEDGER_FORMAT_V1, LEDGER_FORMAT_V2, LEDGER_PAYLOAD_TYPE_V1,
    LEDGER_PAYLOAD_TYPE_V2, LEDGER_PREFIX, MAX_ENTRY, MAX_STORE_FILE, STORE_FILE, STORE_FORMAT,
};

/// How many times an append retries after losing a race.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) const MAX_APPEND_ATTEMPTS: usize = 200;

/// The current head: position, entry id, and the bundle it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// 1-based position.
    pub position: u64,
    /// Entry id (SHA-256 of the object, whatever it holds).
    pub id: EntryId,
    /// The bundle the entry records; 64 zero bits when the object is not a valid entry (it is
    /// still the head: the chain links through its bytes, and the verifier reports it).
    pub bundle: BundleId,
}

impl Head {
    /// As a manifest link.
    pub fn link(&self) -> LedgerLink {
        LedgerLink { position: self.position, entry: self.id, bundle: self.bundle }
    }
}

/// Everything under `ledger/`, as listed.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Entry keys' positions, ascending.
    pub positions: Vec<u64>,
    /// Keys under `ledger/` that are not entry keys, with their sizes.
    pub strays: Vec<(String, u64)>,
    /// Keys under `ledger/` that are not entry keys beyond the ones listed (counted).
    pub strays_not_listed: u64,
    /// Entry keys with later versions or delete markers (versioned stores).
    pub tampered: Vec<KeyHistory>,
    /// How each position is read, in the order of `positions`.
    reads: Vec<ReadAt>,
}

impl Listing {
    /// The length of the chain: the largest n such that positions 1..=n are all present.
    pub fn contiguous(&self) -> u64 {
        let mut n = 0u64;
        for &p in &self.positions {
            match n.checked_add(1) {
                Some(next) if p == next => n = next,
                _ => break,
            }
        }
        n
    }

    /// How position `n` is read: its first version in a versioned store.
    pub fn read_at(&self, n: u64) -> ReadAt {
        match self.positions.binary_search(&n) {
            Ok(i) => self.reads.get(i).cloned().unwrap_or(ReadAt::Current),
            Err(_) => ReadAt::Current,
        }
    }
}

/// List `ledger/` (in a versioned store, from its version history: a key with any version or
/// delete marker is a position).
pub async fn list(store: &Store) -> Result<Listing, StoreError> {
    let listed = store.list_objects(LEDGER_PREFIX, &|k| parse_entry_key(k).is_some()).await?;
    let mut out = Listing { strays_not_listed: listed.not_listed, ..Listing::default() };
    let mut at = Vec::new();
    for o in listed.objects {
        match parse_entry_key(&o.key) {
            Some(n) => {
                at.push((n, o.at));
                out.tampered.extend(o.history.map(|h| *h));
            }
            None => out.strays.push((o.key, o.size)),
        }
    }
    at.sort_by_key(|(n, _)| *n);
    at.dedup_by_key(|(n, _)| *n);
    (out.positions, out.reads) = at.into_iter().unzip();
    Ok(out)
}

/// Ledger positions present in the store, sorted.
pub async fn positions(store: &Store) -> Result<Vec<u64>, StoreError> {
    Ok(list(store).await?.positions)
}

/// The head of the chain (`None` for an empty ledger): the object at the last position of the
/// run 1..=n.
pub async fn head(store: &Store) -> Result<Option<Head>, StoreError> {
    head_of(store, &list(store).await?).await
}

async fn head_of(store: &Store, listing: &Listing) -> Result<Option<Head>, StoreError> {
    let n = listing.contiguous();
    if n == 0 {
        return Ok(None);
    }
    // Removed between the listing and now: the caller's create-only write settles it.
    let Some(e) = entry_object(store, n, &listing.read_at(n)).await? else { return Ok(None) };
    let bundle = e.entry().map(|x| x.bundle).unwrap_or(BundleId(Sha256([0; 32])));
    Ok(Some(Head { position: n, id: e.id, bundle }))
}

/// The entry object at position `n`, read as `at` says; `None` if it is gone. An object above
/// [`MAX_ENTRY`] is an invalid entry with a zero id; a key that holds only delete markers is
/// an invalid entry of zero bytes (its id is the SHA-256 of nothing: writers chain through it).
pub async fn entry_object(store: &Store, n: u64, at: &ReadAt) -> Result<Option<StoredEntry>, StoreError> {
    if *at == ReadAt::NoVersion {
        return Ok(Some(StoredEntry {
            position: n,
            id: EntryId(Sha256::of(b"")),
            parsed: Err(EntryProblem::Object(
                "the key holds only delete markers: no version of it exists to read".into(),
            )),
        }));
    }
    match store.read_small(&entry_key(n), at, MAX_ENTRY).await {
        Ok(Some(bytes)) => Ok(Some(StoredEntry::from_bytes(n, &bytes))),
        Ok(None) => Ok(None),
        Err(e @ StoreError::TooLarge { .. }) => Ok(Some(StoredEntry {
            position: n,
            id: EntryId(Sha256([0; 32])),
            parsed: Err(EntryProblem::Object(e.to_string())),
        })),
        Err(e) => Err(e),
    }
}

/// The whole ledger as read: every entry object (oldest first) and every stray key.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Objects at entry keys, by position.
    pub entries: Vec<StoredEntry>,
    /// Keys under `ledger/` that are not entry keys.
    pub strays: Vec<(String, u64)>,
    /// Stray keys beyond the ones listed (counted).
    pub strays_not_listed: u64,
    /// Entry keys with later versions or delete markers (versioned stores).
    pub tampered: Vec<KeyHistory>,
    /// How each position was read, where not as the current object (versioned stores).
    pub reads: std::collections::BTreeMap<u64, ReadAt>,
}

/// Read every entry object and list the strays.
pub async fn load(store: &Store) -> Result<Loaded, StoreError> {
    let listing = list(store).await?;
    let mut entries = Vec::with_capacity(listing.positions.len());
    let mut reads = std::collections::BTreeMap::new();
    for &n in &listing.positions {
        let at = listing.read_at(n);
        if let Some(e) = entry_object(store, n, &at).await? {
            entries.push(e);
        }
        if at != ReadAt::Current {
            reads.insert(n, at);
        }
    }
    Ok(Loaded {
        entries,
        strays: listing.strays,
        strays_not_listed: listing.strays_not_listed,
        tampered: listing.tampered,
        reads,
    })
}

/// Read every entry, oldest first.
pub async fn load_all(store: &Store) -> Result<Vec<StoredEntry>, StoreError> {
    Ok(load(store).await?.entries)
}

/// The store's identity file as read (in a versioned store, its first version).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `store.json`, if it has a version to read.
    pub file: Option<Result<StoreFile, EntryProblem>>,
    /// Its later versions and delete markers (versioned stores).
    pub history: Option<KeyHistory>,
}

/// Read `store.json` (its first version in a versioned store). A valid one is read once per
/// store handle: it is written create-only.
pub async fn read_identity(store: &Store) -> Result<Identity, StoreError> {
    if let Some(known) = store.identity_read() {
        return Ok(known.clone());
    }
    let identity = read_identity_now(store).await?;
    store.keep_identity(&identity);
    Ok(identity)
}

async fn read_identity_now(store: &Store) -> Result<Identity, StoreError> {
    let (at, history) = match store.reads_history().await {
        true => match store.object(STORE_FILE).await? {
            Some(o) => (o.at, o.history.map(|h| *h)),
            None => return Ok(Identity::default()),
        },
        false => (ReadAt::Current, None),
    };
    let file = match store.read_small(STORE_FILE, &at, MAX_STORE_FILE).await {
        Ok(Some(bytes)) => Some(parse_store_file(&bytes)),
        Ok(None) => None,
        Err(e @ StoreError::TooLarge { .. }) => Some(Err(EntryProblem::Object(e.to_string()))),
        Err(e) => return Err(e),
    };
    Ok(Identity { file, history })
}

/// The store's id from `store.json`: `None` if the file does not exist.
pub async fn read_store_id(store: &Store) -> Result<Option<Result<StoreFile, EntryProblem>>, StoreError> {
    Ok(read_identity(store).await?.file)
}

/// The store's id, creating `store.json` (create-only) with a fresh random id if the store has
/// none yet. Two writers racing to create it agree: the loser reads the winner's.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) async fn ensure_store_id(store: &Store, now: DateTime<Utc>) -> Result<StoreId, StoreError> {
    for _ in 0..3 {
        let identity = read_identity(store).await?;
        match identity.file {
            Some(Ok(f)) => return Ok(f.store_id),
            Some(Err(p)) => {
                return Err(StoreError::BadIdentity { url: store.url().into(), problem: p.to_string() });
            }
            None if identity.history.is_some() => {
                return Err(StoreError::BadIdentity {
                    url: store.url().into(),
                    problem: "store.json holds only delete markers: the key is taken, but no version of it exists to name the store".into(),
                });
            }
            None => {}
        }
        let id = StoreId::random().map_err(|e| StoreError::BadIdentity {
            url: store.url().into(),
            problem: format!("cannot draw a random store id: {e}"),
        })?;
        let file = StoreFile { format: STORE_FORMAT.into(), store_id: id, created_at: now };
        let bytes = file.to_bytes();
        match store.create(STORE_FILE, bytes.clone()).await? {
            PutOutcome::Created | PutOutcome::AlreadyPresent => {
                // Written create-only and checked to be the key's first version: kept as a
                // re-read would find it, so the append that follows does not list it again.
                store.keep_identity(&Identity { file: Some(parse_store_file(&bytes)), history: None });
                return Ok(id);
            }
            PutOutcome::Taken => continue,
        }
    }
    Err(StoreError::BadIdentity {
        url: store.url().into(),
        problem: "store.json keeps changing while it is read (it is written create-only)".into(),
    })
}

/// What to record, and how.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) struct NewEntry {
    /// The bundle.
    pub bundle: BundleId,
    /// Its size.
    pub bundle_size: u64,
    /// Its manifest's `sealed_at`.
    pub sealed_at: DateTime<Utc>,
    /// Recorded by adoption (not by the preserve that sealed it).
    pub adopted: bool,
    /// The evidence bundle this one supplements (`custody analyze`), named by the entry too.
    pub supplement_of: Option<BundleId>,
    /// The bundle's RFC 3161 token, already stored at its key (`crate::tsa`).
    pub timestamp: Option<TimestampRef>,
}

/// The key that signs ledger entries (and checkpoints), and the role it signs them in: the
/// collector's own key (no `--ledger-key`: entries carry no `signed_by`, as before roles) or a
/// separate ledger key (entries carry `signed_by: {"role": "ledger", "keyid"}`).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) struct LedgerSigner<'a> {
    /// The key.
    pub key: &'a SecretKey,
    /// [`KeyRole::Collector`] or [`KeyRole::Ledger`].
    pub role: KeyRole,
}

impl<'a> LedgerSigner<'a> {
    /// `ledger` when a separate ledger key is given, else the collector's key.
    pub fn of(collector: &'a SecretKey, ledger: Option<&'a SecretKey>) -> LedgerSigner<'a> {
        match ledger {
            Some(key) => LedgerSigner { key, role: KeyRole::Ledger },
            None => LedgerSigner { key: collector, role: KeyRole::Collector },
        }
    }

    /// What the entry says of its signer: nothing for the collector's key (absent means that
    /// key, `docs/format.md` §6.2, and keeps the bytes of a one-key store as they were).
    fn signed_by(&self) -> Option<SignedBy> {
        match self.role {
            KeyRole::Ledger => Some(SignedBy { role: KeyRole::Ledger, keyid: self.key.id().0 }),
            _ => None,
        }
    }
}

/// Append a record for `bundle` at the head. Retries on the new head after losing a race.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
// Only custody's tests append this way (through the feature).
#[allow(dead_code)]
pub(crate) async fn append(
    store: &Store,
    bundle: &BundleId,
    bundle_size: u64,
    sealed_at: DateTime<Utc>,
    key: &SecretKey,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<(u64, EntryId), StoreError> {
    append_unique(store, bundle, bundle_size, sealed_at, key, now, None).await.map(|a| (a.position, a.entry))
}

/// Where an append put (or found) a bundle's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) struct Appended {
    /// 1-based position.
    pub position: u64,
    /// Entry id.
    pub entry: EntryId,
    /// True when another writer had already recorded the bundle (nothing was written).
    pub existing: bool,
}

/// Append a record for `bundle` (not adopted) unless one already exists after position
/// `since`; see [`append_entry`].
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
// Only custody's tests append this way (through the feature).
#[allow(dead_code)]
pub(crate) async fn append_unique(
    store: &Store,
    bundle: &BundleId,
    bundle_size: u64,
    sealed_at: DateTime<Utc>,
    key: &SecretKey,
    now: impl Fn() -> DateTime<Utc>,
    since: Option<u64>,
) -> Result<Appended, StoreError> {
    let new =
        NewEntry { bundle: *bundle, bundle_size, sealed_at, adopted: false, supplement_of: None, timestamp: None };
    append_entry(store, &new, LedgerSigner::of(key, None), now, since).await
}

/// Append a `custody-ledger/v2` record for `new.bundle` unless one already exists after
/// position `since` (`Some(0)`: anywhere; `None`: do not look). Before each attempt, the
/// entries appended since the last look are read, so two writers racing to record the same
/// bundle end with one record: the loser of the race for a position sees the winner's entry
/// and stops. The first append to a store creates its `store.json`.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) async fn append_entry(
    store: &Store,
    new: &NewEntry,
    signer: LedgerSigner<'_>,
    now: impl Fn() -> DateTime<Utc>,
    since: Option<u64>,
) -> Result<Appended, StoreError> {
    let store_id = ensure_store_id(store, now()).await?;
    let mut checked = since;
    for attempt in 0..MAX_APPEND_ATTEMPTS {
        let listing = list(store).await?;
        let h = head_of(store, &listing).await?;
        let top = h.as_ref().map(|h| h.position).unwrap_or(0);
        if let Some(c) = checked {
            for &n in listing.positions.iter().filter(|&&n| n > c && n <= top) {
                let Some(e) = entry_object(store, n, &listing.read_at(n)).await? else { continue };
                if e.entry().is_some_and(|x| x.bundle == new.bundle) {
                    return Ok(Appended { position: n, entry: e.id, existing: true });
                }
            }
            checked = Some(top.max(c));
        }
        let position = top.checked_add(1).ok_or_else(|| StoreError::LedgerFull { url: store.url().into() })?;
        let entry = LedgerEntry {
            format: LEDGER_FORMAT_V2.into(),
            position,
            bundle: new.bundle,
            bundle_size: new.bundle_size,
            bundle_key: bundle_key(&new.bundle),
            prev: h.as_ref().map(|h| h.id),
            sealed_at: new.sealed_at,
            appended_at: now(),
            store_id: Some(store_id),
            adopted: Some(new.adopted),
            timestamp: new.timestamp.clone(),
            signed_by: signer.signed_by(),
            supplement_of: new.supplement_of,
        };
        let env = dsse::sign(entry.payload_type(), &entry.to_payload(), signer.key);
        let bytes = dsse::to_bytes(&env);
        let id = EntryId(Sha256::of(&bytes));
        // The listing above found the position free: versions are read after writing only.
        match store.create_listed(&entry_key(position), bytes).await? {
            PutOutcome::Created | PutOutcome::AlreadyPresent => {
                return Ok(Appended { position, entry: id, existing: false })
            }
            PutOutcome::Taken => {
                // Back off a little (jittered by attempt) before re-reading the head.
                let ms = 2u64.saturating_mul(1 + (attempt as u64 % 16)) + jitter_ms();
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
        }
    }
    Err(StoreError::LedgerContention { url: store.url().into(), attempts: MAX_APPEND_ATTEMPTS })
}

fn jitter_ms() -> u64 {
    let mut b = [0u8; 1];
    let _ = rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut b);
    u64::from(b[0] % 16)
}
