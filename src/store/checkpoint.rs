//! Ledger checkpoints: a signed statement "the ledger of this store had this head", kept
//! somewhere else (a ticket, a chat message, another bucket) so that a later audit can detect
//! a rollback (the ledger is now shorter) or a fork (a different entry at that position).
//!
//! A checkpoint is a DSSE envelope (payload type [`CHECKPOINT_PAYLOAD_TYPE`]) over a
//! [`Checkpoint`] JSON document, signed with the same Ed25519 key as bundles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ledger::{self, StoredEntry};
use super::{Store, StoreError};
use crate::bundle::dsse;
use crate::digest::{BundleId, EntryId};
use crate::keys::SecretKey;
use crate::read::envelope::CheckedEnvelope;

/// DSSE payload type of a checkpoint.
pub const CHECKPOINT_PAYLOAD_TYPE: &str = "application/vnd.custody.checkpoint.v1+json";
/// Format tag.
pub const CHECKPOINT_FORMAT: &str = "custody-checkpoint/v1";
/// Largest checkpoint file accepted.
pub const MAX_CHECKPOINT: usize = 64 * 1024;

/// The signed statement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The store it describes (informational: stores move).
    pub store: String,
    /// Ledger length (position of the head; 0 for an empty ledger).
    pub position: u64,
    /// SHA-256 of the head entry object (absent for an empty ledger).
    pub entry: Option<EntryId>,
    /// The bundle the head records.
    pub bundle: Option<BundleId>,
    /// When the checkpoint was taken.
    pub created_at: DateTime<Utc>,
}

/// Checkpoint errors.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not a checkpoint.
    #[error("not a custody checkpoint: {0}")]
    Invalid(String),
}

/// Take a checkpoint of `store`'s current head, signed with `key`. Returns the document and
/// the envelope bytes to keep.
pub async fn take(
    store: &Store,
    key: &SecretKey,
    now: DateTime<Utc>,
) -> Result<(Checkpoint, Vec<u8>), CheckpointError> {
    let head = ledger::head(store).await?;
    let cp = Checkpoint {
        format: CHECKPOINT_FORMAT.into(),
        store: store.url().into(),
        position: head.as_ref().map(|h| h.position).unwrap_or(0),
        entry: head.as_ref().map(|h| h.id),
        bundle: head.as_ref().map(|h| h.bundle),
        created_at: now,
    };
    let payload = serde_json::to_vec_pretty(&cp).map_err(|e| CheckpointError::Invalid(e.to_string()))?;
    let env = dsse::sign(CHECKPOINT_PAYLOAD_TYPE, &payload, key);
    let mut bytes = dsse::to_bytes(&env);
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    Ok((cp, bytes))
}

/// Parse a checkpoint file (untrusted: structure only; the caller checks the signature).
pub fn parse(bytes: &[u8]) -> Result<(CheckedEnvelope, Checkpoint), CheckpointError> {
    if bytes.len() > MAX_CHECKPOINT {
        return Err(CheckpointError::Invalid(format!("{} bytes, above the limit of {MAX_CHECKPOINT}", bytes.len())));
    }
    let env = CheckedEnvelope::parse(bytes, CHECKPOINT_PAYLOAD_TYPE)
        .map_err(|e| CheckpointError::Invalid(format!("envelope: {}", crate::error_text(&e))))?;
    let cp: Checkpoint =
        serde_json::from_slice(&env.payload).map_err(|e| CheckpointError::Invalid(format!("payload: {e}")))?;
    if cp.format != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Invalid(format!(
            "format is `{}`, expected `{CHECKPOINT_FORMAT}`",
            cp.format.chars().take(64).collect::<String>()
        )));
    }
    Ok((env, cp))
}

/// How the ledger compares with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The checkpointed entry is still at its position (the ledger may have grown).
    Consistent,
    /// The ledger is shorter than the checkpoint: entries were removed.
    RolledBack {
        /// Positions in the ledger now.
        now: u64,
    },
    /// Another entry (or none) sits at the checkpoint position: the ledger was rewritten.
    Forked {
        /// The entry found there, if any.
        found: Option<EntryId>,
    },
}

/// Compare the loaded ledger with a checkpoint.
pub fn compare(entries: &[StoredEntry], cp: &Checkpoint) -> Comparison {
    let len = entries.last().map(|e| e.position).unwrap_or(0);
    if cp.position == 0 {
        return Comparison::Consistent;
    }
    if len < cp.position {
        return Comparison::RolledBack { now: len };
    }
    match entries.iter().find(|e| e.position == cp.position) {
        Some(e) if Some(e.id) == cp.entry => Comparison::Consistent,
        Some(e) => Comparison::Forked { found: Some(e.id) },
        None => Comparison::Forked { found: None },
    }
}
