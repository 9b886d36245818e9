//! A witness: a second party, with its own key, that cosigns a store's checkpoints only while
//! they extend each other (`custody witness cosign`, `docs/format.md` §6.5).
//!
//! The witness keeps, per origin (per store id), the last head it cosigned: position and entry
//! id ([`State`], a small JSON file replaced atomically). It cosigns a checkpoint only if
//!
//! * the store's key (one of the pinned `trusted` keys) signed it, under its origin's name;
//! * its position is not below the last cosigned one (a rollback), and at that same position
//!   its entry is the one cosigned (else a fork);
//! * with the store at hand (read only), the store is the one the checkpoint names
//!   (`store.json`), the checkpoint's entry is at its position there, and the chain links the
//!   last cosigned head to it: every entry from the old position + 1 on names the one before
//!   in `prev`. A custody ledger is a hash chain, not a Merkle tree, so there is no
//!   consistency proof to carry: the witness reads the entries in between. Without the store,
//!   only a first checkpoint of an origin or the same head again can be cosigned.
//!
//! A cosignature is a c2sp.org/tlog-cosignature v1 line (timestamped Ed25519, signature type
//! 0x04) over the checkpoint's text. It says: "at this time, the largest head of this store I
//! have seen extends every head I cosigned before, and the store's key signed it" — not that
//! the bundles are intact (that is `verify`'s), nor anything of the extension lines but the
//! position and entry.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::EntryId;
use crate::keys::{PublicKey, SecretKey};
use crate::read::checkpoint::{self, AnyCheckpoint, CheckpointInvalid, NoteCheckpoint};
use crate::read::ledger::StoredEntry;
use crate::read::note::{self, Note, NoteSignature};
use crate::store::{ledger, Store, StoreError};

/// Is `name` a valid key name for a cosignature line (non-empty, no space, no `+`)?
pub use crate::read::note::valid_name;

/// Format tag of a witness state file.
pub const STATE_FORMAT: &str = "custody-witness-state/v1";
/// Largest state file read.
pub const MAX_STATE: u64 = 1 << 20;

/// What the witness remembers of one origin: the last head it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosigned {
    /// Its position.
    pub position: u64,
    /// Its entry id.
    pub entry: EntryId,
    /// When it was cosigned.
    pub cosigned_at: DateTime<Utc>,
}

/// The witness's state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// By origin (`custody/<store id>`).
    pub origins: BTreeMap<String, Cosigned>,
}

impl Default for State {
    fn default() -> Self {
        State { format: STATE_FORMAT.into(), origins: BTreeMap::new() }
    }
}

/// Why the witness did not cosign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// Not a checkpoint this witness can read.
    #[error(transparent)]
    Invalid(#[from] CheckpointInvalid),
    /// A legacy JSON checkpoint: it names no store id and has no room for cosignatures.
    #[error("a legacy JSON checkpoint cannot be cosigned: take a signed-note checkpoint with `custody checkpoint`")]
    Legacy,
    /// No valid signature by a pinned store key.
    #[error("the checkpoint of {origin} {problem}")]
    Untrusted {
        /// The origin.
        origin: String,
        /// What is wrong.
        problem: String,
    },
    /// Refused: the checkpoint is older than the last one cosigned.
    #[error("refused: rollback: the checkpoint of {origin} is at position {position}, but this witness already cosigned position {last} (entry {entry}); it never cosigns an older head")]
    Rollback {
        /// The origin.
        origin: String,
        /// The checkpoint's position.
        position: u64,
        /// The last cosigned position.
        last: u64,
        /// The last cosigned entry.
        entry: EntryId,
    },
    /// Refused: the checkpoint (or the store's ledger) does not hold the cosigned entry.
    #[error("refused: fork: {0}")]
    Fork(String),
    /// Refused: the store given is another store.
    #[error("refused: the checkpoint is of store {checkpoint}, but {url} is store {store}")]
    OtherStore {
        /// The store id the checkpoint names.
        checkpoint: String,
        /// The store given.
        url: String,
        /// Its id (or what is wrong with its `store.json`).
        store: String,
    },
    /// The checkpoint moves past the last cosigned head and no store was given to check the
    /// chain between them.
    #[error("the checkpoint of {origin} moves from position {last} to {position}: give the store (--store URL, read only) so the witness can check that the ledger's chain links the two heads")]
    NeedStore {
        /// The origin.
        origin: String,
        /// The last cosigned position.
        last: u64,
        /// The checkpoint's position.
        position: u64,
    },
    /// This witness key already cosigned the checkpoint.
    #[error("the checkpoint already carries a cosignature by this witness key ({name})")]
    AlreadyCosigned {
        /// The line's key name.
        name: String,
    },
    /// The state file is missing (and a new one was not asked for), or exists when one was.
    #[error("witness state {path}: {problem}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The state file could not be read or written.
    #[error("cannot {op} witness state {path}")]
    StateIo {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WitnessError {
    /// A refusal about the checkpoint itself (exit 1: it is not what it should be), as
    /// opposed to a problem of the run (missing store, unreadable state file: exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            WitnessError::Invalid(_)
                | WitnessError::Legacy
                | WitnessError::Untrusted { .. }
                | WitnessError::Rollback { .. }
                | WitnessError::Fork(_)
                | WitnessError::OtherStore { .. }
        )
    }
}

/// A witness: its key, the name it signs under, and its state file.
#[derive(Debug)]
pub struct Witness<'a> {
    /// The witness's signing key.
    pub key: &'a SecretKey,
    /// The key name of its cosignature lines.
    pub name: String,
    /// The state file.
    pub state: &'a Path,
    /// Create the state file (it must not exist) instead of reading it.
    pub new_state: bool,
}

/// The default key name of a witness key: `witness/<first 16 hex digits of its key id>`.
pub fn default_name(key: &PublicKey) -> String {
    format!("witness/{}", &key.id.0.hex()[..16])
}

/// What a cosigning did.
#[derive(Debug, Clone)]
pub struct Cosignature {
    /// The checkpoint with the new cosignature line appended.
    pub bytes: Vec<u8>,
    /// What was cosigned.
    pub checkpoint: NoteCheckpoint,
    /// The head cosigned before for this origin, if any.
    pub previous: Option<Cosigned>,
    /// Whether the chain between the two was read from the store.
    pub chain_checked: bool,
}

/// Cosign the checkpoint `bytes` (see the module doc): check it, record its head in the state
/// file (before the cosignature exists: a crash in between forgets nothing), and return it with
/// the witness's line appended.
pub async fn cosign(
    bytes: &[u8],
    witness: &Witness<'_>,
    trusted: &[PublicKey],
    store: Option<&Store>,
    now: DateTime<Utc>,
) -> Result<Cosignature, WitnessError> {
    let (note, cp) = match checkpoint::parse(bytes)? {
        AnyCheckpoint::Note { note, cp } => (note, cp),
        AnyCheckpoint::Legacy { .. } => return Err(WitnessError::Legacy),
    };
    let origin = cp.origin();
    check_store_signature(&note, &origin, trusted)?;
    let wkey = &witness.key.public.key;
    if let Some(l) = note.lines_of(None, note::COSIGNATURE_V1, wkey).next() {
        return Err(WitnessError::AlreadyCosigned { name: l.name.chars().take(64).collect() });
    }
    let _lock = lock(witness.state)?;
    let mut state = load_state(witness.state, witness.new_state)?;
    let previous = state.origins.get(&origin).cloned();
    if let Some(p) = &previous {
        if cp.position < p.position {
            return Err(WitnessError::Rollback { origin, position: cp.position, last: p.position, entry: p.entry });
        }
        if cp.position == p.position && cp.entry != p.entry {
            return Err(WitnessError::Fork(format!(
                "the checkpoint of {origin} records entry {} at position {}, but this witness cosigned entry {} there",
                cp.entry, cp.position, p.entry
            )));
        }
    }
    let chain_checked = match store {
        Some(s) => {
            check_chain(s, &cp, previous.as_ref()).await?;
            true
        }
        None => match &previous {
            Some(p) if p.position != cp.position => {
                return Err(WitnessError::NeedStore { origin, last: p.position, position: cp.position })
            }
            _ => false,
        },
    };
    let now = now.trunc_subsecs(0);
    state.origins.insert(origin, Cosigned { position: cp.position, entry: cp.entry, cosigned_at: now });
    save_state(witness.state, &state, witness.new_state)?;
    // Within 0..=2^63-1 as the spec requires (a time before 1970 cosigns at 0).
    let ts = u64::try_from(now.timestamp()).unwrap_or(0);
    let sig = witness.key.sign(&note::cosigned_message(ts, &note.text));
    let mut payload = ts.to_be_bytes().to_vec();
    payload.extend_from_slice(&sig);
    let id = note::key_id(&witness.name, note::COSIGNATURE_V1, wkey);
    let mut out = note.clone();
    out.signatures.push(NoteSignature { name: witness.name.clone(), key_id: id, sig: payload });
    Ok(Cosignature { bytes: out.render().into_bytes(), checkpoint: cp, previous, chain_checked })
}

/// A valid signature by one of `trusted` under the origin's name, and no bad one.
fn check_store_signature(note: &Note, origin: &str, trusted: &[PublicKey]) -> Result<(), WitnessError> {
    let mut signed = false;
    for k in trusted {
        for line in note.lines_of(Some(origin), note::ED25519, &k.key) {
            if !note.verify_ed25519(line, &k.key) {
                return Err(WitnessError::Untrusted {
                    origin: origin.into(),
                    problem: format!("carries a signature by pinned key {} that does not verify: it was altered", k.id),
                });
            }
            signed = true;
        }
    }
    if signed {
        Ok(())
    } else {
        Err(WitnessError::Untrusted {
            origin: origin.into(),
            problem: "is not signed by a pinned store key under its origin's name (give the store's public key with --trusted-key)".into(),
        })
    }
}

/// The store is the checkpoint's, holds its entry at its position, and (after a previous
/// cosignature) links it back to the previous head through `prev`.
async fn check_chain(store: &Store, cp: &NoteCheckpoint, previous: Option<&Cosigned>) -> Result<(), WitnessError> {
    let other =
        |what: String| WitnessError::OtherStore { checkpoint: cp.store_id.hex(), url: store.url().into(), store: what };
    match ledger::read_store_id(store).await? {
        Some(Ok(f)) if f.store_id == cp.store_id => {}
        Some(Ok(f)) => return Err(other(f.store_id.hex())),
        Some(Err(p)) => return Err(other(format!("unknown (store.json is unusable: {p})"))),
        None => return Err(other("unknown (it has no store.json)".into())),
    }
    let entries = ledger::load_all(store).await?;
    let at = |n: u64| entries.binary_search_by_key(&n, |e| e.position).ok().and_then(|i| entries.get(i));
    // The ledger holds `entry` at `position`, else a fork, said as `whose` entry and `when`.
    let holds = |position: u64, entry: &EntryId, whose: &str, when: &str| match at(position) {
        Some(e) if e.id == *entry => Ok(()),
        found => Err(WitnessError::Fork(format!(
            "{whose} entry {entry} at position {position}, but the store's ledger holds {} there{when}",
            found.map(|e| e.id.to_string()).unwrap_or_else(|| "nothing".into())
        ))),
    };
    holds(cp.position, &cp.entry, "the checkpoint records", "")?;
    let Some(p) = previous else { return Ok(()) };
    holds(p.position, &p.entry, "this witness cosigned", " now")?;
    // Walk back from the new head: each entry names the one before it.
    let mut n = cp.position;
    while n > p.position {
        let here: Option<&StoredEntry> = at(n);
        let before = n.checked_sub(1).and_then(at);
        let linked = match (here.and_then(StoredEntry::entry), before) {
            (Some(le), Some(b)) => le.prev == Some(b.id),
            _ => false,
        };
        if !linked {
            return Err(WitnessError::Fork(format!(
                "the store's ledger does not link position {n} to position {} (a missing or invalid entry, or a prev that names another entry): the checkpoint does not extend the head this witness cosigned at position {}",
                n.saturating_sub(1),
                p.position
            )));
        }
        n -= 1;
    }
    Ok(())
}

/// An exclusive lock on `<state>.lock`, held while the state is read, checked and replaced:
/// two cosignings with the same state file never both pass on the same old head.
fn lock(state: &Path) -> Result<std::fs::File, WitnessError> {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    let path = PathBuf::from(p);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| WitnessError::StateIo { op: "create the lock file of", path: state.into(), source })?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| WitnessError::StateIo {
        op: "lock",
        path: state.into(),
        source: e.into(),
    })?;
    Ok(f)
}

/// Read the state file (untrusted: bounded, strict), or start one when `new` (it must not
/// exist then).
fn load_state(path: &Path, new: bool) -> Result<State, WitnessError> {
    let bad = |problem: String| WitnessError::StateFile { path: path.into(), problem };
    if new {
        return match std::fs::symlink_metadata(path) {
            Ok(_) => Err(bad("exists already; --new-state starts a witness's state, it never replaces one".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(WitnessError::StateIo { op: "look for", path: path.into(), source }),
        };
    }
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad("does not exist; give --new-state to start one (the first time only: a witness that loses its state forgets what it cosigned)".into()))
        }
        Err(source) => return Err(WitnessError::StateIo { op: "open", path: path.into(), source }),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_STATE + 1), &mut bytes)
        .map_err(|source| WitnessError::StateIo { op: "read", path: path.into(), source })?;
    if bytes.len() as u64 > MAX_STATE {
        return Err(bad(format!("larger than {MAX_STATE} bytes: not a witness state file")));
    }
    let state: State = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not a witness state file ({e}); restore it from a backup")))?;
    if state.format != STATE_FORMAT {
        return Err(bad(format!(
            "format is `{}`, expected `{STATE_FORMAT}`",
            state.format.chars().take(64).collect::<String>()
        )));
    }
    for (origin, c) in &state.origins {
        let valid =
            origin.strip_prefix(checkpoint::ORIGIN_PREFIX).and_then(crate::read::ledger::StoreId::parse_canonical_hex);
        if valid.is_none() || c.position == 0 {
            return Err(bad(format!(
                "origin `{}` is not custody/<store id> with a position from 1",
                origin.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(state)
}

/// Replace the state file atomically: a new file beside it, written and synced, renamed over
/// it, and the directory synced (a crash leaves the old state or the new, never half of one).
fn save_state(path: &Path, state: &State, new: bool) -> Result<(), WitnessError> {
    let io = |op, source| WitnessError::StateIo { op, path: path.into(), source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut bytes = serde_json::to_vec_pretty(state).unwrap_or_default();
    bytes.push(b'\n');
    let mut tmp = tempfile::Builder::new()
        .prefix(".custody-witness-state.")
        .tempfile_in(&dir)
        .map_err(|e| io("create a temporary file for", e))?;
    tmp.write_all(&bytes).and_then(|_| tmp.as_file().sync_all()).map_err(|e| io("write", e))?;
    if new {
        // Create-only: a state that appeared meanwhile is never replaced by an empty one.
        tmp.persist_noclobber(path).map_err(|e| io("create", e.error))?;
    } else {
        tmp.persist(path).map_err(|e| io("replace", e.error))?;
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        d.sync_all().map_err(|e| io("sync the directory of", e))?;
    }
    Ok(())
}
