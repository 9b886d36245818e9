//! The custody journal: an append-only, hash-chained list of collection events.
//!
//! `hash(e) = SHA-256(compact JSON of e without its "hash" field)`, and each event's `prev`
//! is the previous event's `hash` (64 zeros for the first). Changing, removing, inserting or
//! reordering any event breaks the chain from that point on.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::manifest::{EventKind, JournalEvent};
use crate::digest::Sha256;

/// The `prev` of the first event.
pub const GENESIS: Sha256 = Sha256([0u8; 32]);

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    at: &'a DateTime<Utc>,
    event: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: &'a Option<Sha256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: &'a Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: &'a Option<String>,
    prev: &'a Sha256,
}

/// The hash an event must carry, computed from its other fields.
pub fn event_hash(e: &JournalEvent) -> Sha256 {
    Sha256::of(&body_bytes(e))
}

/// The compact JSON of `e` without its `hash` field: the bytes [`event_hash`] hashes.
fn body_bytes(e: &JournalEvent) -> Vec<u8> {
    let mut out = Vec::new();
    write_body(e, &mut out);
    out
}

/// Appends [`body_bytes`] of `e` to `out`.
fn write_body(e: &JournalEvent, out: &mut Vec<u8>) {
    let body = Body {
        seq: e.seq,
        at: &e.at,
        event: e.event,
        path: &e.path,
        sha256: &e.sha256,
        size: &e.size,
        detail: &e.detail,
        prev: &e.prev,
    };
    // Serializing plain structs of strings and integers into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &body);
}

/// Builds a journal, chaining each new event to the last.
#[derive(Debug, Default)]
pub struct Journal {
    events: Vec<JournalEvent>,
    /// With [`Journal::rendering`]: the events so far as the compact JSON `serde_json` writes
    /// for `Vec<JournalEvent>`, without the enclosing brackets.
    json: Option<Vec<u8>>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty journal that also renders its events' JSON as they are pushed (see
    /// [`Journal::json`]): the body serialized for an event's hash is reused, so the sealer
    /// does not serialize 100 000 events a second time at the end of a seal.
    pub fn rendering() -> Self {
        Self::rendering_with_capacity(0, 0)
    }

    /// [`Journal::rendering`], with room for `events` events and `json` bytes of their JSON
    /// reserved up front (growing a 35 MB buffer by doubling copies it, and leaves the
    /// smaller buffers it outgrew behind in the heap).
    pub fn rendering_with_capacity(events: usize, json: usize) -> Self {
        Journal { events: Vec::with_capacity(events), json: Some(Vec::with_capacity(json)) }
    }

    /// With [`Journal::rendering`]: the compact JSON of the events, comma-separated, without
    /// the enclosing `[` `]` — byte for byte what `serde_json::to_vec(&events)` writes
    /// between them.
    pub fn json(&self) -> Option<&[u8]> {
        self.json.as_deref()
    }

    /// Append an event.
    pub fn push(
        &mut self,
        at: DateTime<Utc>,
        event: EventKind,
        path: Option<String>,
        sha256: Option<Sha256>,
        size: Option<u64>,
        detail: Option<String>,
    ) {
        let prev = self.events.last().map(|e| e.hash).unwrap_or(GENESIS);
        let mut e =
            JournalEvent { seq: self.events.len() as u64, at, event, path, sha256, size, detail, prev, hash: GENESIS };
        match self.json.as_mut() {
            Some(json) => {
                // The body is serialized straight into the rendered JSON and hashed there;
                // `JournalEvent` serializes the body's fields in the same order with the same
                // omissions, then `hash`: spliced in before the body's closing brace.
                if !json.is_empty() {
                    json.push(b',');
                }
                let start = json.len();
                write_body(&e, json);
                e.hash = Sha256::of(&json[start..]);
                if json.last() == Some(&b'}') {
                    json.pop();
                }
                json.extend_from_slice(b",\"hash\":\"");
                json.extend_from_slice(&e.hash.hex_bytes());
                json.extend_from_slice(b"\"}");
            }
            None => e.hash = event_hash(&e),
        }
        self.events.push(e);
    }

    /// [`Journal::push`] of a `collected` event, with `at_json` the JSON of `at` (quoted, as
    /// serde_json writes it: the sealer renders each file's timestamp once for its entry and
    /// its event). The body is written without serde's machinery, byte for byte as
    /// [`Journal::push`] writes it (the unit test `collected_fast_path_is_push` holds them
    /// together); a journal that does not render uses [`Journal::push`].
    pub fn push_collected(&mut self, at: DateTime<Utc>, at_json: &[u8], path: String, sha256: Sha256, size: u64) {
        let Some(json) = self.json.as_mut() else {
            return self.push(at, EventKind::Collected, Some(path), Some(sha256), Some(size), None);
        };
        let prev = self.events.last().map(|e| e.hash).unwrap_or(GENESIS);
        let seq = self.events.len() as u64;
        if !json.is_empty() {
            json.push(b',');
        }
        let start = json.len();
        json.extend_from_slice(b"{\"seq\":");
        json.extend_from_slice(decimal(seq, &mut [0u8; 20]));
        json.extend_from_slice(b",\"at\":");
        json.extend_from_slice(at_json);
        json.extend_from_slice(b",\"event\":\"collected\",\"path\":");
        json_str(json, &path);
        json.extend_from_slice(b",\"sha256\":\"");
        json.extend_from_slice(&sha256.hex_bytes());
        json.extend_from_slice(b"\",\"size\":");
        json.extend_from_slice(decimal(size, &mut [0u8; 20]));
        json.extend_from_slice(b",\"prev\":\"");
        json.extend_from_slice(&prev.hex_bytes());
        json.extend_from_slice(b"\"}");
        let hash = Sha256::of(&json[start..]);
        json.pop();
        json.extend_from_slice(b",\"hash\":\"");
        json.extend_from_slice(&hash.hex_bytes());
        json.extend_from_slice(b"\"}");
        self.events.push(JournalEvent {
            seq,
            at,
            event: EventKind::Collected,
            path: Some(path),
            sha256: Some(sha256),
            size: Some(size),
            detail: None,
            prev,
            hash,
        });
    }

    /// Events so far.
    pub fn events(&self) -> &[JournalEvent] {
        &self.events
    }

    /// The finished journal.
    pub fn into_events(self) -> Vec<JournalEvent> {
        self.events
    }

    /// The finished journal and, with [`Journal::rendering`], its rendered JSON (see
    /// [`Journal::json`]), without copying either.
    pub fn into_parts(self) -> (Vec<JournalEvent>, Option<Vec<u8>>) {
        (self.events, self.json)
    }
}

/// Appends `s` as a JSON string exactly as serde_json writes it: quoted, with `"`, `\\` and
/// control characters escaped (nothing else is). Strings with nothing to escape — nearly all
/// paths — are copied as they are.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serializing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(out, s);
    }
}

/// The decimal digits of `n` (as serde_json writes an integer), written into the end of `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A break in a journal chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// `seq` is not the event's position.
    Sequence {
        /// Position in the list.
        index: usize,
        /// What the event says.
        seq: u64,
    },
    /// `prev` does not equal the previous event's hash.
    Link {
        /// Position in the list.
        index: usize,
    },
    /// `hash` does not match the event's content.
    Content {
        /// Position in the list.
        index: usize,
    },
}

/// Check a chain; every break is reported.
pub fn check_chain(events: &[JournalEvent]) -> Vec<ChainBreak> {
    check_chain_from(events, 0)
}

/// [`check_chain`] of the events from position `start` on (none if `start` is past the end):
/// exactly the breaks the whole-chain check reports there, with the same indices, because each
/// event is checked against its predecessor's *recorded* hash. The verifier checks a long chain
/// in two parts on two threads, `events[..k]` (as `check_chain(&events[..k])`) and
/// `check_chain_from(events, k)`.
pub fn check_chain_from(events: &[JournalEvent], start: usize) -> Vec<ChainBreak> {
    let mut out = Vec::new();
    let mut prev = match start.checked_sub(1) {
        None => GENESIS,
        Some(before) => match events.get(before) {
            Some(e) => e.hash,
            None => return out,
        },
    };
    for (i, e) in events.iter().enumerate().skip(start) {
        if e.seq != i as u64 {
            out.push(ChainBreak::Sequence { index: i, seq: e.seq });
        }
        if e.prev != prev {
            out.push(ChainBreak::Link { index: i });
        }
        if event_hash(e) != e.hash {
            out.push(ChainBreak::Content { index: i });
        }
        prev = e.hash;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `n` note events `n0`, `n1`, ….
    fn notes(n: u64) -> Vec<JournalEvent> {
        let t = Utc::now();
        let mut j = Journal::new();
        for i in 0..n {
            j.push(t, EventKind::Note, None, None, Some(i), Some(format!("n{i}")));
        }
        j.into_events()
    }

    #[test]
    fn a_chain_checked_in_two_parts_reports_what_the_whole_check_does() {
        let intact = notes(9);
        let mut edited = intact.clone();
        edited[4].detail = Some("changed".into());
        let mut reordered = intact.clone();
        reordered.swap(2, 6);
        let mut relinked = intact.clone();
        relinked[5].prev = relinked[3].hash;
        for chain in [&intact, &edited, &reordered, &relinked] {
            let whole = check_chain(chain);
            for k in 0..=chain.len() {
                let mut parts = check_chain(&chain[..k]);
                parts.extend(check_chain_from(chain, k));
                assert_eq!(parts, whole, "split at {k}");
            }
            assert!(check_chain_from(chain, chain.len() + 1).is_empty());
        }
        assert!(
            !check_chain(&edited).is_empty()
                && !check_chain(&reordered).is_empty()
                && !check_chain(&relinked).is_empty()
        );
    }

    #[test]
    fn chain_detects_edit_and_reorder() {
        let ev = notes(4);
        assert!(check_chain(&ev).is_empty());
        let mut edited = ev.clone();
        edited[2].detail = Some("changed".into());
        assert!(check_chain(&edited).contains(&ChainBreak::Content { index: 2 }));
        let mut swapped = ev.clone();
        swapped.swap(1, 2);
        assert!(!check_chain(&swapped).is_empty());
        let mut dropped = ev;
        dropped.remove(1);
        assert!(!check_chain(&dropped).is_empty());
    }

    /// `push_collected` writes the same JSON and hashes as `push` of the same event, for
    /// paths that need escaping and paths that do not; `json_str` and `decimal` write what
    /// serde_json writes.
    #[test]
    fn collected_fast_path_is_push() {
        let t = Utc::now();
        let at_json = serde_json::to_vec(&t).unwrap();
        let (mut fast, mut slow) = (Journal::rendering(), Journal::rendering());
        let paths = ["logs/a.jsonl", "logs/q \"x\".log", "b\\s/\u{1}\t\u{7f}ü✓", "", "\u{1f}"];
        for (i, p) in paths.iter().enumerate() {
            fast.push(t, EventKind::Note, None, None, None, Some("plan".into()));
            slow.push(t, EventKind::Note, None, None, None, Some("plan".into()));
            let (sha, size) = (Sha256::of(p.as_bytes()), [0, 9, 10, 4096, u64::MAX][i]);
            fast.push_collected(t, &at_json, p.to_string(), sha, size);
            slow.push(t, EventKind::Collected, Some(p.to_string()), Some(sha), Some(size), None);
            let mut s = Vec::new();
            json_str(&mut s, p);
            assert_eq!(s, serde_json::to_vec(p).unwrap());
            assert_eq!(decimal(size, &mut [0; 20]), serde_json::to_vec(&size).unwrap());
        }
        assert_eq!(fast.json(), slow.json());
        assert_eq!(fast.events(), slow.events());
        assert!(check_chain(fast.events()).is_empty());
        let mut plain = Journal::new();
        plain.push_collected(t, &at_json, "x".into(), GENESIS, 1);
        assert_eq!(plain.events()[0].hash, event_hash(&plain.events()[0]));
    }

    #[test]
    fn rendered_json_is_what_serde_writes_for_the_events() {
        let t = Utc::now();
        let mut j = Journal::rendering();
        j.push(t, EventKind::Collected, Some("logs/a \"b\".jsonl".into()), Some(GENESIS), Some(7), None);
        j.push(t, EventKind::Skipped, Some("/src/ü\n\u{1}".into()), None, None, Some("symbolic link".into()));
        j.push(t, EventKind::Note, None, None, None, Some("responder note: ✓ \\ done".into()));
        j.push(t, EventKind::Error, Some("x".into()), None, Some(0), Some(String::new()));
        let mut rendered = b"[".to_vec();
        rendered.extend_from_slice(j.json().unwrap());
        rendered.push(b']');
        assert_eq!(String::from_utf8(rendered).unwrap(), serde_json::to_string(j.events()).unwrap());
        // The hashes computed over the JSON rendered in place are the events' real hashes.
        assert!(check_chain(j.events()).is_empty());
        assert_eq!(j.events()[3].hash, event_hash(&j.events()[3]));
        let json = j.json().unwrap().to_vec();
        let (events, parts_json) = j.into_parts();
        assert_eq!((events.len(), parts_json), (4, Some(json)));
        assert!(Journal::new().json().is_none());
    }
}
