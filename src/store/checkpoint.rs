//! Taking a ledger checkpoint ([`take`]); the format and its parser live in
//! `crate::read::checkpoint` (re-exported here).

use chrono::{DateTime, SubsecRound as _, Utc};

use super::ledger;
use super::{Store, StoreError};
use crate::keys::SecretKey;
pub use crate::read::checkpoint::{
    compare, parse, parse_legacy, AnyCheckpoint, Checkpoint, CheckpointInvalid, Comparison, NoteCheckpoint,
    CHECKPOINT_FORMAT, CHECKPOINT_PAYLOAD_TYPE, MAX_CHECKPOINT, ORIGIN_PREFIX,
};
use crate::read::note::{self, Note};

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
    /// The ledger is empty: there is no head to anchor.
    #[error("the ledger of {url} is empty: there is no head to checkpoint (take one after the first preserve)")]
    Empty {
        /// The store.
        url: String,
    },
    /// `store.json` is missing while the head names a store id (it was removed), or unusable.
    #[error("cannot name the store {url} by its id: {problem}; audit it with `custody verify --store URL --all`")]
    NoIdentity {
        /// The store.
        url: String,
        /// What is wrong.
        problem: String,
    },
}

/// Take a checkpoint of `store`'s current head, signed with `key`: the checkpoint and the
/// signed note's bytes to keep. A store whose ledger predates store ids (v1 entries only, no
/// `store.json`) gets its `store.json` now (create-only, as its next preserve would).
pub async fn take(
    store: &Store,
    key: &SecretKey,
    now: DateTime<Utc>,
) -> Result<(NoteCheckpoint, Vec<u8>), CheckpointError> {
    let head = ledger::head(store).await?.ok_or_else(|| CheckpointError::Empty { url: store.url().into() })?;
    let store_id = match ledger::read_store_id(store).await? {
        Some(Ok(f)) => f.store_id,
        Some(Err(p)) => return Err(CheckpointError::NoIdentity { url: store.url().into(), problem: p.to_string() }),
        None => {
            // Creating a fresh id would hide a removed store.json behind a new name.
            let head_entry = ledger::entry_object(store, head.position, &super::versions::ReadAt::Current).await?;
            if let Some(id) = head_entry.as_ref().and_then(|e| e.entry()).and_then(|le| le.store_id) {
                return Err(CheckpointError::NoIdentity {
                    url: store.url().into(),
                    problem: format!("store.json is missing, but the head entry names store {id}"),
                });
            }
            ledger::ensure_store_id(store, now).await?
        }
    };
    let cp = NoteCheckpoint {
        store_id,
        position: head.position,
        entry: head.id,
        bundle: head.bundle,
        time: now.trunc_subsecs(0),
    };
    let bytes = sign(&cp, key).into_bytes();
    Ok((cp, bytes))
}

/// The signed note of `cp`: its text and one Ed25519 signature by `key` under the origin's
/// name (`docs/format.md` §6.5).
pub fn sign(cp: &NoteCheckpoint, key: &SecretKey) -> String {
    let text = cp.text();
    let name = cp.origin();
    let id = note::key_id(&name, note::ED25519, &key.public.key);
    let sig = key.sign(text.as_bytes());
    let n = Note { text, signatures: vec![note::NoteSignature { name, key_id: id, sig: sig.to_vec() }] };
    n.render()
}
