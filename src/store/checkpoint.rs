//! Taking a ledger checkpoint ([`take`]); the format and its parser live in
//! `crate::read::checkpoint` (re-exported here).

use chrono::{DateTime, Utc};

use super::ledger;
use super::{Store, StoreError};
use crate::bundle::dsse;
use crate::keys::SecretKey;
pub use crate::read::checkpoint::{
    compare, parse, Checkpoint, CheckpointInvalid, Comparison, CHECKPOINT_FORMAT, CHECKPOINT_PAYLOAD_TYPE,
    MAX_CHECKPOINT,
};

/// Checkpoint errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not a checkpoint.
    #[error(transparent)]
    Invalid(#[from] CheckpointInvalid),
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
    let payload = serde_json::to_vec_pretty(&cp).map_err(|e| CheckpointInvalid(e.to_string()))?;
    let env = dsse::sign(CHECKPOINT_PAYLOAD_TYPE, &payload, key);
    let mut bytes = dsse::to_bytes(&env);
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    Ok((cp, bytes))
}
