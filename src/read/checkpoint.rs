//! Ledger checkpoints, read and write side by side: a signed statement "the ledger of this
//! store had this head", kept somewhere else (a ticket, a chat message, another bucket) so that
//! a later audit can detect a rollback (the ledger is now shorter) or a fork (another entry at
//! that position). `custody checkpoint` writes one ([`crate::store::checkpoint::take`]); this
//! module is the only parser of one (`docs/format.md` §6.5).
//!
//! A checkpoint is a C2SP signed note ([`crate::read::note`]) whose text is a
//! [`NoteCheckpoint`]: the origin `custody/<store id>`, the head's position and entry id, the
//! bundle it records and the time it was taken, one per line. The store's key signs it under
//! the origin's name; witnesses append cosignatures (c2sp.org/tlog-cosignature, `custody
//! witness cosign`). The earlier form, a DSSE envelope over a JSON [`Checkpoint`] naming the
//! store by URL, is still read ([`AnyCheckpoint::Legacy`]) and never written.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{BundleId, EntryId, Sha256};
use crate::read::envelope::CheckedEnvelope;
use crate::read::ledger::{StoreId, StoredEntry};
use crate::read::note::{Note, NoteInvalid};

/// DSSE payload type of a legacy (JSON) checkpoint.
pub const CHECKPOINT_PAYLOAD_TYPE: &str = "application/vnd.custody.checkpoint.v1+json";
/// Format tag of a legacy (JSON) checkpoint.
pub const CHECKPOINT_FORMAT: &str = "custody-checkpoint/v1";
/// Largest checkpoint file accepted.
pub const MAX_CHECKPOINT: usize = 64 * 1024;

/// The signed statement of a legacy checkpoint (read, never written).
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

/// Parse a legacy (JSON) checkpoint file (untrusted: structure only; the caller checks the
/// signature).
pub fn parse_legacy(bytes: &[u8]) -> Result<(CheckedEnvelope, Checkpoint), CheckpointInvalid> {
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

/// Compare the loaded ledger (sorted by position) with a checkpoint's head: `entry` at
/// `position` (`None` at 0: a legacy checkpoint of an empty ledger).
pub fn compare(entries: &[StoredEntry], position: u64, entry: Option<EntryId>) -> Comparison {
    let len = entries.last().map(|e| e.position).unwrap_or(0);
    if position == 0 {
        return Comparison::Consistent;
    }
    if len < position {
        return Comparison::RolledBack { now: len };
    }
    match entries.binary_search_by_key(&position, |e| e.position) {
        Ok(i) if Some(entries[i].id) == entry => Comparison::Consistent,
        Ok(i) => Comparison::Forked { found: Some(entries[i].id) },
        Err(_) => Comparison::Forked { found: None },
    }
}

/// Prefix of a checkpoint's origin line; the store id follows.
pub const ORIGIN_PREFIX: &str = "custody/";

/// The text of a checkpoint note (`docs/format.md` §6.5), exactly five lines:
///
/// ```text
/// custody/<store id, 32 lower-case hex digits>
/// <position, decimal, no leading zero, at least 1>
/// <head entry id, 64 lower-case hex digits>
/// bundle <the bundle the head records, 64 lower-case hex digits>
/// time <when it was taken, RFC 3339 UTC to the second: 2026-12-07T21:57:48Z>
/// ```
///
/// Shaped like a c2sp.org/tlog-checkpoint (origin, size, head) but not one: the head is a hash
/// chain's last entry id, not a Merkle root, and ids stay bare lower-case hex as everywhere in
/// custody's formats (so a tlog witness cannot mistake it for a tree head it can check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteCheckpoint {
    /// The store the ledger is in.
    pub store_id: StoreId,
    /// The head's position (the last of the run 1..n).
    pub position: u64,
    /// The head's entry id.
    pub entry: EntryId,
    /// The bundle the head records.
    pub bundle: BundleId,
    /// When it was taken.
    pub time: DateTime<Utc>,
}

/// The time format of the `time` line.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

impl NoteCheckpoint {
    /// The origin line's text (also the key name the store's key signs under).
    pub fn origin(&self) -> String {
        format!("{ORIGIN_PREFIX}{}", self.store_id.hex())
    }

    /// The note text: five lines, each ending in a newline.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\nbundle {}\ntime {}\n",
            self.origin(),
            self.position,
            self.entry.0.hex(),
            self.bundle.0.hex(),
            self.time.format(TIME_FORMAT)
        )
    }

    /// Parse a note text (strict: exactly the five lines, canonical forms only).
    pub fn parse_text(text: &str) -> Result<NoteCheckpoint, CheckpointInvalid> {
        let bad = CheckpointInvalid;
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad("the note text does not end with a newline".into()));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, position, entry, bundle, time] = lines.as_slice() else {
            return Err(bad(format!(
                "the note text has {} lines, expected 5 (origin, position, entry id, `bundle <hex>`, `time <RFC 3339>`)",
                lines.len()
            )));
        };
        let store_id = origin
            .strip_prefix(ORIGIN_PREFIX)
            .and_then(StoreId::parse_canonical_hex)
            .ok_or_else(|| bad(format!("origin `{}` is not custody/<store id, 32 lower-case hex digits>", clip(origin))))?;
        let position = match position.parse::<u64>() {
            Ok(p) if p >= 1 && !position.starts_with('0') && !position.starts_with('+') => p,
            _ => return Err(bad(format!("position `{}` is not a decimal number from 1, without leading zeros", clip(position)))),
        };
        let hex_line = |line: &str, prefix: &str, what: &str| {
            line.strip_prefix(prefix)
                .and_then(Sha256::parse_canonical_hex)
                .ok_or_else(|| bad(format!("{what} line `{}` is not {prefix}<64 lower-case hex digits>", clip(line))))
        };
        let entry = EntryId(hex_line(entry, "", "entry id")?);
        let bundle = BundleId(hex_line(bundle, "bundle ", "bundle")?);
        let t = time.strip_prefix("time ").unwrap_or("");
        let parsed = chrono::NaiveDateTime::parse_from_str(t, TIME_FORMAT).ok().map(|n| n.and_utc());
        let time = match parsed {
            Some(x) if x.format(TIME_FORMAT).to_string() == t && (0..=9999).contains(&x.year()) => x,
            _ => return Err(bad(format!("time line `{}` is not `time YYYY-MM-DDTHH:MM:SSZ`", clip(time)))),
        };
        Ok(NoteCheckpoint { store_id, position, entry, bundle, time })
    }
}

/// At most 64 characters of an untrusted line, for a message (escaped where printed).
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A checkpoint file as read.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum AnyCheckpoint {
    /// A signed note (what `custody checkpoint` writes).
    Note {
        /// The note, with every signature line.
        note: Note,
        /// Its text, parsed.
        cp: NoteCheckpoint,
    },
    /// A legacy DSSE/JSON checkpoint (read only).
    Legacy {
        /// The envelope.
        env: CheckedEnvelope,
        /// Its payload.
        cp: Checkpoint,
    },
}

impl AnyCheckpoint {
    /// The head it records: position and entry id.
    pub fn head(&self) -> (u64, Option<EntryId>) {
        match self {
            AnyCheckpoint::Note { cp, .. } => (cp.position, Some(cp.entry)),
            AnyCheckpoint::Legacy { cp, .. } => (cp.position, cp.entry),
        }
    }

    /// When it was taken.
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            AnyCheckpoint::Note { cp, .. } => cp.time,
            AnyCheckpoint::Legacy { cp, .. } => cp.created_at,
        }
    }
}

/// Parse a checkpoint file, either form (untrusted: structure only; the caller checks the
/// signatures). A file whose first non-blank byte is `{` is a legacy JSON checkpoint; anything
/// else must be a signed note. At most [`MAX_CHECKPOINT`] bytes.
pub fn parse(bytes: &[u8]) -> Result<AnyCheckpoint, CheckpointInvalid> {
    if bytes.len() > MAX_CHECKPOINT {
        return Err(CheckpointInvalid(format!("{} bytes, above the limit of {MAX_CHECKPOINT}", bytes.len())));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let (env, cp) = parse_legacy(bytes)?;
        return Ok(AnyCheckpoint::Legacy { env, cp });
    }
    let note = Note::parse(bytes, MAX_CHECKPOINT).map_err(|NoteInvalid(m)| CheckpointInvalid(format!("signed note: {m}")))?;
    let cp = NoteCheckpoint::parse_text(&note.text)?;
    Ok(AnyCheckpoint::Note { note, cp })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NoteCheckpoint {
        NoteCheckpoint {
            store_id: StoreId([0xab; 16]),
            position: 12,
            entry: EntryId(Sha256([1; 32])),
            bundle: BundleId(Sha256([2; 32])),
            time: "2026-12-07T21:57:48Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_note_text_round_trips_and_only_its_canonical_form_parses() {
        let cp = sample();
        let text = cp.text();
        assert!(text.starts_with("custody/abababababababababababababababab\n12\n0101"), "{text}");
        assert!(text.ends_with("\ntime 2026-12-07T21:57:48Z\n"), "{text}");
        assert_eq!(NoteCheckpoint::parse_text(&text).unwrap(), cp);
        for (from, to) in [
            ("\n12\n", "\n012\n"),
            ("\n12\n", "\n+12\n"),
            ("\n12\n", "\n0\n"),
            ("\n12\n", "\n99999999999999999999999\n"),
            ("custody/abab", "custody/ABAB"),
            ("custody/", "other/"),
            ("bundle ", "bundle  "),
            ("48Z", "48.5Z"),
            ("48Z", "48+00:00"),
            ("T21", "t21"),
            ("time ", "time"),
            ("48Z\n", "48Z\nextra\n"),
            ("48Z\n", "48Z"),
        ] {
            let t = text.replacen(from, to, 1);
            assert!(NoteCheckpoint::parse_text(&t).is_err(), "{t:?}");
        }
    }

    #[test]
    fn either_form_is_told_apart_and_junk_is_refused_without_panic() {
        // Read as the legacy form (its envelope is cut short), not as a note.
        let Err(e) = parse(b"  {\"payloadType\": ") else { panic!("parsed") };
        assert!(e.to_string().contains("envelope"), "{e}");
        assert!(parse(b"").is_err());
        assert!(parse(&vec![b'a'; MAX_CHECKPOINT + 1]).is_err());
        assert!(parse(b"\n\n\xe2\x80\x94 a AAAAAAA=\n").is_err());
    }
}
