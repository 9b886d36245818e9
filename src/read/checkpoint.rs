//! Ledger checkpoints, read and write side by side: a signed statement "the ledger of this
//! store had this head", kept somewhere else (a ticket, a chat message, another bucket) so that
//! a later audit can detect a rollback (the ledger is now shorter) or a fork (another entry at
//! that position). `custody checkpoint` writes one ([`crate::store::checkpoint::take`]); this
//! module is the only parser of one (`docs/format.md` §6.5).
//!
//! A checkpoint is a DSSE envelope (payload type [`CHECKPOINT_PAYLOAD_TYPE`], same envelope
//! rules as a ledger entry) over a [`Checkpoint`] JSON document, signed with the collector's
//! Ed25519 key.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{BundleId, EntryId};
use crate::read::envelope::CheckedEnvelope;
use crate::read::ledger::StoredEntry;

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

/// Why a checkpoint file was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a custody checkpoint: {0}")]
pub struct CheckpointInvalid(pub String);

/// Parse a checkpoint file (untrusted: structure only; the caller checks the signature).
pub fn parse(bytes: &[u8]) -> Result<(CheckedEnvelope, Checkpoint), CheckpointInvalid> {
    if bytes.len() > MAX_CHECKPOINT {
        return Err(CheckpointInvalid(format!("{} bytes, above the limit of {MAX_CHECKPOINT}", bytes.len())));
    }
    let env = CheckedEnvelope::parse(bytes, CHECKPOINT_PAYLOAD_TYPE)
        .map_err(|e| CheckpointInvalid(format!("envelope: {}", crate::error_text(&e))))?;
    let cp: Checkpoint =
        serde_json::from_slice(&env.payload).map_err(|e| CheckpointInvalid(format!("payload: {e}")))?;
    if cp.format != CHECKPOINT_FORMAT {
        return Err(CheckpointInvalid(format!(
            "format is `{}`, expected `{CHECKPOINT_FORMAT}`",
            cp.format.chars().take(64).collect::<String>()
        )));
    }
    if !(0..=9999).contains(&cp.created_at.year()) {
        return Err(CheckpointInvalid(format!(
            "payload: `created_at` is in year {}: timestamps are RFC 3339, years 0000 to 9999",
            cp.created_at.year()
        )));
    }
    Ok((env, cp))
}

/// How the ledger compares with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// Compare the loaded ledger (sorted by position) with a checkpoint.
pub fn compare(entries: &[StoredEntry], cp: &Checkpoint) -> Comparison {
    let len = entries.last().map(|e| e.position).unwrap_or(0);
    if cp.position == 0 {
        return Comparison::Consistent;
    }
    if len < cp.position {
        return Comparison::RolledBack { now: len };
    }
    match entries.binary_search_by_key(&cp.position, |e| e.position) {
        Ok(i) if Some(entries[i].id) == cp.entry => Comparison::Consistent,
        Ok(i) => Comparison::Forked { found: Some(entries[i].id) },
        Err(_) => Comparison::Forked { found: None },
    }
}
