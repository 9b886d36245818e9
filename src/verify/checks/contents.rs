//! The contents checks: every blob's SHA-256 matches its name (`blobs`), the manifest's entries
//! are sorted, unique and each has its blob (`entries`), the journal chain is intact and has one
//! `collected` event per entry (`journal`), and the Merkle root is the manifest's (`merkle`).

use std::collections::{HashMap, HashSet};

use crate::bundle::journal::{check_chain, check_chain_from, ChainBreak};
use crate::bundle::manifest::{Entry, EventKind, JournalEvent, Manifest};
use crate::bundle::merkle;
use crate::bundle::write::blob_member;
use crate::digest::Sha256;
use crate::read::archive::{ArchiveProblem, ArchiveScan, BlobMember};
use crate::verify::findings::{Findings, Location};
use crate::verify::report::FindingKind;

/// Entries plus journal events from which the journal chain and Merkle root are checked on a
/// helper thread (a thread per bundle made `verify --store --all` over 10 000 small bundles
/// 20% slower).
const PARALLEL_CHECKS_FROM: usize = 4096;

/// Run the contents checks.
///
/// The journal chain (a SHA-256 over each event's re-serialized body) and the Merkle root are
/// the costly checks of a many-file bundle (100 000 events and leaves). For a big enough
/// manifest a helper thread checks the first half of the chain and the root while this one
/// matches blobs and entries and then checks the second half. Each event is checked against its
/// predecessor's recorded hash, so the halves are independent; findings are reported in the
/// same order as by one thread.
pub(crate) fn check(manifest: Option<&Manifest>, scan: &ArchiveScan, fs: &mut Findings) {
    let split = |m: &Manifest| m.journal.len() / 2;
    let costly = |m: &Manifest| (check_chain(m.journal.get(..split(m)).unwrap_or_default()), merkle::root(&m.entries));
    std::thread::scope(|s| {
        let helper = manifest.filter(|m| m.entries.len() + m.journal.len() >= PARALLEL_CHECKS_FROM).and_then(|m| {
            std::thread::Builder::new().name("custody-check".into()).spawn_scoped(s, move || costly(m)).ok()
        });
        check_blobs(scan, fs);
        let Some(m) = manifest else { return };
        fs.ran("entries");
        fs.ran("journal");
        fs.ran("merkle");
        let strictly_sorted = check_entries(m, scan, fs);
        // Journal. (If no helper thread could be started, the checks run here.)
        let rest = check_chain_from(&m.journal, split(m));
        let (mut breaks, root) = match helper.map(|h| h.join()) {
            Some(Ok(done)) => done,
            _ => costly(m),
        };
        breaks.extend(rest);
        for b in breaks {
            let (i, what) = match b {
                ChainBreak::Sequence { index, seq } => (index, format!("seq is {seq}, expected {index}")),
                ChainBreak::Link { index } => (index, "prev does not equal the previous event's hash".into()),
                ChainBreak::Content { index } => (index, "hash does not match the event's content".into()),
            };
            fs.error(FindingKind::JournalBroken, Location::JournalEvent(i), what);
        }
        if !(strictly_sorted && journal_in_entry_order(&m.entries, &m.journal)) {
            match_entries_to_journal(&m.entries, &m.journal, fs);
        }
        fs.detail("journal", format!("{} events, chain intact", m.journal.len()));
        if root != m.merkle_root {
            fs.error(
                FindingKind::MerkleMismatch,
                Location::ManifestField("merkle_root"),
                format!("recomputed root {} differs from the manifest's {}", root.hex(), m.merkle_root.hex()),
            );
        }
        fs.detail("merkle", format!("root {} over {} entries", root.hex(), m.entries.len()));
    });
}

/// Every blob member's content hashes to its name.
fn check_blobs(scan: &ArchiveScan, fs: &mut Findings) {
    for b in &scan.blobs {
        if b.claimed != b.actual {
            fs.error(
                FindingKind::BlobHashMismatch,
                Location::Member(blob_member(&b.claimed)),
                format!("content hashes to {}, not to its name", b.actual.hex()),
            );
        }
    }
    let archive_broken = fs.failed("archive");
    let n = scan.blobs.len();
    fs.detail(
        "blobs",
        match (archive_broken, n) {
            (true, 0) => "not checked: no blob could be read before the archive's error".into(),
            (true, n) => format!("{n} blob(s) read before the archive's error, each SHA-256 matching its name"),
            (false, n) => format!("{n} blob(s), every SHA-256 matches its name"),
        },
    );
    // With nothing read, the check did not run (it is not a pass).
    if n > 0 || !archive_broken {
        fs.ran("blobs");
    }
}

/// Entries sorted by path and unique, each mapped to a blob of the right size, no blob left
/// over, blobs in manifest order. Returns whether the entries are strictly sorted.
fn check_entries(m: &Manifest, scan: &ArchiveScan, fs: &mut Findings) -> bool {
    let mut strictly_sorted = true;
    for w in m.entries.windows(2) {
        if w[0].path == w[1].path {
            strictly_sorted = false;
            fs.error(
                FindingKind::EntryDuplicate,
                Location::EntryPath(w[1].path.clone()),
                "this path is listed twice in the manifest",
            );
        } else if w[0].path > w[1].path {
            strictly_sorted = false;
            fs.error(
                FindingKind::EntriesUnsorted,
                Location::EntryPath(w[1].path.clone()),
                "manifest entries are not sorted by path",
            );
        }
    }
    let no_duplicate_members = !scan.problems.iter().any(|p| matches!(p, ArchiveProblem::Duplicate { .. }));
    let distinct = if no_duplicate_members && blobs_in_entry_order(&m.entries, &scan.blobs) {
        m.entries.len()
    } else {
        match_entries_to_blobs(&m.entries, &scan.blobs, fs)
    };
    fs.detail("entries", format!("{} entries ↔ {distinct} blobs, none missing, extra or duplicated", m.entries.len()));
    strictly_sorted
}

/// The common case of [`match_entries_to_blobs`], in one sequential pass with no lookups: the
/// blob members are exactly the entries' blobs, in entry order, each of the entry's size.
/// With no member name repeated in the archive (checked by the caller), no two entries share a
/// blob, and that check has nothing to report and counts one blob per entry; anything else
/// (shared blobs included) goes through it.
fn blobs_in_entry_order(entries: &[Entry], blobs: &[BlobMember]) -> bool {
    entries.len() == blobs.len() && entries.iter().zip(blobs).all(|(e, b)| e.sha256 == b.claimed && e.size == b.size)
}

/// Every entry's blob is present with the entry's size, no blob is unreferenced, and the
/// blobs come in manifest order (of each digest's first entry). Returns the number of distinct
/// blobs the entries name.
fn match_entries_to_blobs(entries: &[Entry], blobs: &[BlobMember], fs: &mut Findings) -> usize {
    let mut by_name: HashMap<Sha256, &BlobMember> = HashMap::new();
    for b in blobs {
        by_name.entry(b.claimed).or_insert(b);
    }
    let mut expected_order: Vec<Sha256> = Vec::new();
    let mut needed: HashSet<Sha256> = HashSet::new();
    for e in entries {
        if needed.insert(e.sha256) {
            expected_order.push(e.sha256);
        }
        match by_name.get(&e.sha256) {
            None => fs.error(
                FindingKind::BlobMissing,
                Location::EntryPath(e.path.clone()),
                format!("its blob {} is not in the archive", blob_member(&e.sha256)),
            ),
            Some(b) if b.size != e.size => fs.error(
                FindingKind::BlobSizeMismatch,
                Location::EntryPath(e.path.clone()),
                format!("manifest says {} bytes, blob has {}", e.size, b.size),
            ),
            _ => {}
        }
    }
    for b in blobs {
        if !needed.contains(&b.claimed) {
            fs.error(
                FindingKind::BlobExtra,
                Location::Member(blob_member(&b.claimed)),
                "blob not referenced by any manifest entry",
            );
        }
    }
    let mut dedup = HashSet::new();
    let actual_order: Vec<Sha256> =
        blobs.iter().map(|b| b.claimed).filter(|c| needed.contains(c)).filter(|c| dedup.insert(*c)).collect();
    if actual_order.len() == expected_order.len() && actual_order != expected_order {
        fs.error(
            FindingKind::BlobOrder,
            Location::Blobs,
            "blob members are not in manifest order (the archive was reordered)",
        );
    }
    expected_order.len()
}

/// The journal's `collected` events (those with a path).
fn collected_events(journal: &[JournalEvent]) -> impl Iterator<Item = &JournalEvent> {
    journal.iter().filter(|e| e.event == EventKind::Collected && e.path.is_some())
}

/// The common case of [`match_entries_to_journal`], in one sequential pass with no lookups
/// (the sealer journals each file as it writes it, in entry order): the `collected` events
/// are the entries, one each, in order, with their digests and sizes. With entries sorted and
/// unique (checked by the caller), that check then has nothing to report.
fn journal_in_entry_order(entries: &[Entry], journal: &[JournalEvent]) -> bool {
    let mut events = collected_events(journal);
    entries.iter().all(|e| {
        events.next().is_some_and(|j| {
            j.path.as_deref() == Some(e.path.as_str()) && j.sha256 == Some(e.sha256) && j.size == Some(e.size)
        })
    }) && events.next().is_none()
}

/// Every entry has exactly one `collected` event in the journal, with its digest and size, and
/// there are as many such events as entries. (Counted per path: two events for one path are a
/// finding whichever of them matches, in either order.)
fn match_entries_to_journal(entries: &[Entry], journal: &[JournalEvent], fs: &mut Findings) {
    // The digest and size of each `collected` event, by path.
    type Recorded = (Option<Sha256>, Option<u64>);
    let mut collected: HashMap<&str, Vec<Recorded>> = HashMap::new();
    let mut total = 0usize;
    for e in collected_events(journal) {
        if let Some(p) = e.path.as_deref() {
            collected.entry(p).or_default().push((e.sha256, e.size));
            total += 1;
        }
    }
    for e in entries {
        match collected.get(e.path.as_str()).map(Vec::as_slice) {
            Some([(Some(s), Some(z))]) if *s == e.sha256 && *z == e.size => {}
            Some(events) if events.len() > 1 => fs.error(
                FindingKind::JournalMismatch,
                Location::EntryPath(e.path.clone()),
                format!(
                    "{} `collected` events in the custody journal for this path; exactly one is allowed",
                    events.len()
                ),
            ),
            _ => fs.error(
                FindingKind::JournalMismatch,
                Location::EntryPath(e.path.clone()),
                "no matching `collected` event in the custody journal",
            ),
        }
    }
    if total != entries.len() {
        fs.error(
            FindingKind::JournalMismatch,
            Location::ManifestField("journal"),
            format!("{total} `collected` events for {} entries", entries.len()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn entries(n: u8) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                path: format!("logs/{i:03}.jsonl"),
                kind: "logs".into(),
                size: 100 + u64::from(i),
                sha256: Sha256::of(&[i]),
                source: format!("/incident/logs/{i:03}.jsonl"),
                collected_at: Utc.timestamp_opt(1_764_000_000, 0).unwrap(),
            })
            .collect()
    }

    fn blobs_of(entries: &[Entry]) -> Vec<BlobMember> {
        entries
            .iter()
            .enumerate()
            .map(|(index, e)| BlobMember { index, claimed: e.sha256, actual: e.sha256, size: e.size })
            .collect()
    }

    fn journal_of(entries: &[Entry]) -> Vec<JournalEvent> {
        let mut j = crate::bundle::journal::Journal::new();
        let at = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
        j.push(at, EventKind::Note, None, None, None, Some("started".into()));
        for e in entries {
            j.push(at, EventKind::Collected, Some(e.path.clone()), Some(e.sha256), Some(e.size), None);
        }
        j.into_events()
    }

    fn kinds(fs: &Findings) -> Vec<FindingKind> {
        fs.list.iter().map(|f| f.kind).collect()
    }

    /// The slow check's findings and blob count, and whether the fast path accepted.
    fn blob_check(e: &[Entry], b: &[BlobMember]) -> (bool, Vec<FindingKind>, usize) {
        let mut fs = Findings::default();
        let distinct = match_entries_to_blobs(e, b, &mut fs);
        (blobs_in_entry_order(e, b), kinds(&fs), distinct)
    }

    #[test]
    fn the_blob_fast_path_accepts_only_what_the_full_check_finds_nothing_in() {
        let e = entries(5);
        let b = blobs_of(&e);
        assert_eq!(blob_check(&e, &b), (true, vec![], 5), "a well-formed bundle");

        let mut sized = b.clone();
        sized[2].size += 1;
        assert_eq!(blob_check(&e, &sized), (false, vec![FindingKind::BlobSizeMismatch], 5));

        let mut swapped = b.clone();
        swapped.swap(1, 3);
        assert_eq!(blob_check(&e, &swapped), (false, vec![FindingKind::BlobOrder], 5));

        let mut missing = b.clone();
        missing.remove(4);
        assert_eq!(blob_check(&e, &missing), (false, vec![FindingKind::BlobMissing], 5));

        let mut extra = b.clone();
        extra.push(BlobMember { index: 5, claimed: Sha256::of(b"extra"), actual: Sha256::of(b"extra"), size: 5 });
        assert_eq!(blob_check(&e, &extra), (false, vec![FindingKind::BlobExtra], 5));

        // Two files with the same bytes share one blob: not an error, but the fast path declines.
        let mut shared = e.clone();
        shared[3].sha256 = shared[1].sha256;
        shared[3].size = shared[1].size;
        let mut one_blob = b.clone();
        one_blob.remove(3);
        assert_eq!(blob_check(&shared, &one_blob), (false, vec![], 4));
    }

    /// The slow check's findings, and whether the fast path accepted.
    fn journal_check(e: &[Entry], j: &[JournalEvent]) -> (bool, Vec<FindingKind>) {
        let mut fs = Findings::default();
        match_entries_to_journal(e, j, &mut fs);
        (journal_in_entry_order(e, j), kinds(&fs))
    }

    #[test]
    fn the_journal_fast_path_accepts_only_what_the_full_check_finds_nothing_in() {
        let e = entries(4);
        let j = journal_of(&e);
        assert_eq!(journal_check(&e, &j), (true, vec![]), "a well-formed journal");

        let mut digest = j.clone();
        digest[2].sha256 = Some(Sha256::of(b"other"));
        assert_eq!(journal_check(&e, &digest), (false, vec![FindingKind::JournalMismatch]));

        let mut size = j.clone();
        size[3].size = Some(1);
        assert_eq!(journal_check(&e, &size), (false, vec![FindingKind::JournalMismatch]));

        let mut dropped = j.clone();
        dropped.remove(4);
        assert_eq!(
            journal_check(&e, &dropped),
            (false, vec![FindingKind::JournalMismatch, FindingKind::JournalMismatch]),
            "the entry without an event, and the count"
        );

        let mut added = j.clone();
        added.push(added[1].clone());
        added.last_mut().unwrap().path = Some("logs/zzz.jsonl".into());
        assert_eq!(journal_check(&e, &added), (false, vec![FindingKind::JournalMismatch]), "the count");

        // Events in another order still match (the full check is by path): the fast path
        // declines and the full check finds nothing.
        let mut reordered = j.clone();
        reordered.swap(1, 2);
        assert_eq!(journal_check(&e, &reordered), (false, vec![]));

        // A collected event without a path is not one of the entries' events.
        let mut pathless = j.clone();
        pathless.push(JournalEvent { path: None, ..pathless[1].clone() });
        assert_eq!(journal_check(&e, &pathless), (true, vec![]));
    }

    #[test]
    fn regression_two_collected_events_for_one_entry_fail_in_either_order() {
        let e = entries(3);
        let j = journal_of(&e);
        // A second `collected` event for entry 1 with another digest, after or before the
        // right one: the verdict used to depend on which came last.
        let mut wrong = j[2].clone();
        wrong.sha256 = Some(Sha256::of(b"other"));
        for at in [3, 2] {
            let mut dup = j.clone();
            dup.insert(at, wrong.clone());
            let (fast, found) = journal_check(&e, &dup);
            assert!(!fast, "position {at}");
            assert!(found.contains(&FindingKind::JournalMismatch), "position {at}: {found:?}");
        }
        // Two identical events: still one too many.
        let mut same = j.clone();
        same.insert(3, j[2].clone());
        assert_eq!(journal_check(&e, &same).1, vec![FindingKind::JournalMismatch, FindingKind::JournalMismatch]);
    }
}
