//! The store's ledger: an append-only, hash-linked, signed sequence of bundle records.
//!
//! Entry `n` (1-based) is the object `ledger/<n as 20 digits>.json`: a DSSE envelope
//! (payload type [`LEDGER_PAYLOAD_TYPE`]) over a [`LedgerEntry`] naming one bundle and the
//! SHA-256 of entry `n-1`'s object bytes. Appends are create-only writes at `head + 1`, so two
//! writers can never both claim a position: the loser re-reads the head and retries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{bundle_key, PutOutcome, Store, StoreError};
use crate::bundle::dsse;
use crate::bundle::manifest::LedgerLink;
use crate::digest::{BundleId, EntryId, Sha256};
use crate::keys::SecretKey;
use crate::read::envelope::{CheckedEnvelope, ParseError};

/// DSSE payload type of a ledger entry.
pub const LEDGER_PAYLOAD_TYPE: &str = "application/vnd.custody.ledger-entry.v1+json";
/// Format tag of a ledger entry.
pub const LEDGER_FORMAT: &str = "custody-ledger/v1";
/// Largest ledger entry object accepted.
pub const MAX_ENTRY: u64 = 64 * 1024;
/// How many times an append retries after losing a race.
pub const MAX_APPEND_ATTEMPTS: usize = 200;

/// One ledger record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// Always [`LEDGER_FORMAT`].
    pub format: String,
    /// 1-based position.
    pub position: u64,
    /// The bundle recorded.
    pub bundle: BundleId,
    /// Its size in bytes.
    pub bundle_size: u64,
    /// Its object key.
    pub bundle_key: String,
    /// SHA-256 of the previous entry object (`null` at position 1).
    pub prev: Option<EntryId>,
    /// When the bundle was sealed (from its manifest).
    pub sealed_at: DateTime<Utc>,
    /// When this entry was written.
    pub appended_at: DateTime<Utc>,
}

/// The object key of position `n`.
pub fn entry_key(n: u64) -> String {
    format!("ledger/{n:020}.json")
}

/// Parse a ledger key back into its position.
pub fn parse_entry_key(key: &str) -> Option<u64> {
    let digits = key.strip_prefix("ledger/")?.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A ledger entry as read from the store (untrusted until checked).
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// Position from the key.
    pub position: u64,
    /// SHA-256 of the object bytes.
    pub id: EntryId,
    /// The envelope and entry, if they parse.
    pub parsed: Result<(CheckedEnvelope, LedgerEntry), EntryProblem>,
}

/// Why a stored ledger entry cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntryProblem {
    /// Envelope invalid.
    #[error("envelope: {0}")]
    Envelope(String),
    /// Payload invalid.
    #[error("payload: {0}")]
    Payload(String),
    /// Object unreadable or too large.
    #[error("object: {0}")]
    Object(String),
}

/// Parse one entry object.
pub fn parse_entry(bytes: &[u8]) -> Result<(CheckedEnvelope, LedgerEntry), EntryProblem> {
    let env = CheckedEnvelope::parse(bytes, LEDGER_PAYLOAD_TYPE)
        .map_err(|e: ParseError| EntryProblem::Envelope(crate::error_text(&e)))?;
    let entry: LedgerEntry = serde_json::from_slice(&env.payload).map_err(|e| EntryProblem::Payload(e.to_string()))?;
    if entry.format != LEDGER_FORMAT {
        return Err(EntryProblem::Payload(format!(
            "format is `{}`, expected `{LEDGER_FORMAT}`",
            entry.format.chars().take(64).collect::<String>()
        )));
    }
    Ok((env, entry))
}

/// The current head: position, entry id, and the bundle it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// 1-based position.
    pub position: u64,
    /// Entry id.
    pub id: EntryId,
    /// Bundle.
    pub bundle: BundleId,
}

impl Head {
    /// As a manifest link.
    pub fn link(&self) -> LedgerLink {
        LedgerLink { position: self.position, entry: self.id, bundle: self.bundle }
    }
}

/// Ledger positions present in the store, sorted.
pub async fn positions(store: &Store) -> Result<Vec<u64>, StoreError> {
    Ok(store.list("ledger/").await?.iter().filter_map(|(k, _)| parse_entry_key(k)).collect())
}

/// Read the head entry (`None` for an empty ledger).
pub async fn head(store: &Store) -> Result<Option<Head>, StoreError> {
    let Some(&n) = positions(store).await?.last() else { return Ok(None) };
    let key = entry_key(n);
    let Some(bytes) = store.get_small(&key, MAX_ENTRY).await? else { return Ok(None) };
    let id = EntryId(Sha256::of(&bytes));
    let bundle = parse_entry(&bytes).map(|(_, e)| e.bundle).unwrap_or(BundleId(Sha256([0; 32])));
    Ok(Some(Head { position: n, id, bundle }))
}

/// Read every entry, oldest first.
pub async fn load_all(store: &Store) -> Result<Vec<StoredEntry>, StoreError> {
    let mut out = Vec::new();
    for n in positions(store).await? {
        let key = entry_key(n);
        match store.get_small(&key, MAX_ENTRY).await {
            Ok(Some(bytes)) => {
                out.push(StoredEntry { position: n, id: EntryId(Sha256::of(&bytes)), parsed: parse_entry(&bytes) })
            }
            Ok(None) => {}
            Err(e @ StoreError::TooLarge { .. }) => out.push(StoredEntry {
                position: n,
                id: EntryId(Sha256([0; 32])),
                parsed: Err(EntryProblem::Object(e.to_string())),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Append a record for `bundle` at the head. Retries on the new head after losing a race.
pub async fn append(
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
pub struct Appended {
    /// 1-based position.
    pub position: u64,
    /// Entry id.
    pub entry: EntryId,
    /// True when another writer had already recorded the bundle (nothing was written).
    pub existing: bool,
}

/// Append a record for `bundle` unless one already exists after position `since`
/// (`Some(0)`: anywhere; `None`: do not look). Before each attempt, the entries appended since
/// the last look are read, so two writers racing to record the same bundle end with one
/// record: the loser of the race for a position sees the winner's entry and stops.
pub async fn append_unique(
    store: &Store,
    bundle: &BundleId,
    bundle_size: u64,
    sealed_at: DateTime<Utc>,
    key: &SecretKey,
    now: impl Fn() -> DateTime<Utc>,
    since: Option<u64>,
) -> Result<Appended, StoreError> {
    let mut checked = since;
    for attempt in 0..MAX_APPEND_ATTEMPTS {
        let h = head(store).await?;
        let top = h.as_ref().map(|h| h.position).unwrap_or(0);
        if let Some(c) = checked {
            for n in positions(store).await?.into_iter().filter(|&n| n > c && n <= top) {
                let Some(bytes) = store.get_small(&entry_key(n), MAX_ENTRY).await? else { continue };
                if matches!(parse_entry(&bytes), Ok((_, e)) if e.bundle == *bundle) {
                    return Ok(Appended { position: n, entry: EntryId(Sha256::of(&bytes)), existing: true });
                }
            }
            checked = Some(top.max(c));
        }
        let position = top + 1;
        let entry = LedgerEntry {
            format: LEDGER_FORMAT.into(),
            position,
            bundle: *bundle,
            bundle_size,
            bundle_key: bundle_key(bundle),
            prev: h.as_ref().map(|h| h.id),
            sealed_at,
            appended_at: now(),
        };
        let payload = serde_json::to_vec_pretty(&entry).unwrap_or_default();
        let env = dsse::sign(LEDGER_PAYLOAD_TYPE, &payload, key);
        let bytes = dsse::to_bytes(&env);
        let id = EntryId(Sha256::of(&bytes));
        match store.create(&entry_key(position), bytes).await? {
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
