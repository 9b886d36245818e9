//! The ledger checks, for a bundle verified in a store and for a whole-ledger audit
//! (`docs/format.md` §6.4 lists them as L1–L9, P1–P4 and A1; each rule is one function or one
//! branch here; V1–V2 are in [`super::versions`]):
//!
//! * [`check_chain`]: the whole chain from position 1 — positions contiguous, every entry a
//!   valid entry at its own position, signed by a pinned key, linked to the object before it,
//!   naming its bundle's key and this store's id, each bundle recorded once — plus stray
//!   objects under `ledger/` and the store identity file;
//! * [`check_placement`]: one bundle's place — recorded, the recorded size and sealing time,
//!   its times within the skew of its entry's and successor's, and its `ledger_prev` matching
//!   this ledger (the race rule);
//! * [`check_truncation`]: an unrecorded bundle whose `ledger_prev` names entries this ledger
//!   no longer has;
//! * [`check_anchor`]: the ledger against a checkpoint kept outside the store.

use std::collections::HashMap;

use chrono::Duration;
use ed25519_dalek::Signature;

use super::{minus, plus};
use crate::bundle::dsse::pae;
use crate::bundle::manifest::{LedgerLink, Manifest};
use crate::bundle::write::MANIFEST_MEMBER;
use crate::digest::BundleId;
use crate::read::checkpoint::{self, AnyCheckpoint, Comparison};
use crate::read::ledger::KeyRole;
use crate::read::ledger::{EntryProblem, StoreFile, StoreId, StoredEntry, STORE_FILE};
use crate::read::note::{self, Note};
use crate::store::ledger as store_ledger;
use crate::store::versions::{KeyHistory, ReadAt};
use crate::store::{bundle_key, Store, StoreError};
use crate::verify::findings::{Findings, Location};
use crate::verify::report::{FindingKind, LedgerInfo};
use crate::verify::{Anchor, Judged, Trust};

/// The ledger as read from a store, once, for every check.
#[derive(Debug, Default)]
pub(crate) struct LedgerView {
    /// Objects at entry keys, by position.
    pub entries: Vec<StoredEntry>,
    /// Other keys under `ledger/`.
    pub strays: Vec<(String, u64)>,
    /// `store.json`, if present.
    pub identity: Option<Result<StoreFile, EntryProblem>>,
    /// Other keys under `ledger/` beyond the ones in `strays` (counted, not listed).
    pub strays_not_listed: u64,
    /// Entry keys and `store.json` with later versions or delete markers (versioned stores:
    /// the entries and identity above are their first versions).
    pub tampered: Vec<KeyHistory>,
    /// How each position was read, where not as the current object (versioned stores).
    reads: std::collections::BTreeMap<u64, ReadAt>,
    /// Positions (indexes into `entries`) recording each bundle, in order.
    by_bundle: HashMap<BundleId, Vec<usize>>,
}

impl LedgerView {
    /// Read the ledger, its strays and `store.json` (in a versioned store, every key at its
    /// first version, with the later versions and delete markers in `tampered`).
    pub async fn load(store: &Store) -> Result<LedgerView, StoreError> {
        let loaded = store_ledger::load(store).await?;
        let identity = store_ledger::read_identity(store).await?;
        let mut view = LedgerView::new(loaded.entries, loaded.strays, identity.file);
        view.strays_not_listed = loaded.strays_not_listed;
        view.tampered = loaded.tampered;
        view.tampered.extend(identity.history);
        view.reads = loaded.reads;
        Ok(view)
    }

    /// A view of `entries` (sorted by position).
    pub fn new(
        entries: Vec<StoredEntry>,
        strays: Vec<(String, u64)>,
        identity: Option<Result<StoreFile, EntryProblem>>,
    ) -> LedgerView {
        let mut by_bundle: HashMap<BundleId, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(le) = e.entry() {
                by_bundle.entry(le.bundle).or_default().push(i);
            }
        }
        LedgerView {
            entries,
            strays,
            identity,
            strays_not_listed: 0,
            tampered: Vec::new(),
            reads: Default::default(),
            by_bundle,
        }
    }

    /// The object at `position`.
    pub fn at(&self, position: u64) -> Option<&StoredEntry> {
        self.entries.binary_search_by_key(&position, |e| e.position).ok().map(|i| &self.entries[i])
    }

    /// How the object at `position` was read (its first version, in a versioned store).
    pub fn read_at(&self, position: u64) -> ReadAt {
        self.reads.get(&position).cloned().unwrap_or(ReadAt::Current)
    }

    /// The highest position holding an object (0 for an empty ledger).
    pub fn length(&self) -> u64 {
        self.entries.last().map(|e| e.position).unwrap_or(0)
    }

    /// The entries recording `bundle`, oldest first.
    pub fn recording(&self, bundle: &BundleId) -> Vec<&StoredEntry> {
        self.by_bundle.get(bundle).map(|v| v.iter().map(|&i| &self.entries[i]).collect()).unwrap_or_default()
    }

    /// The position an append would take: after the run of positions 1..=n all present.
    pub fn next_position(&self) -> Option<u64> {
        let mut n = 0u64;
        for e in &self.entries {
            if Some(e.position) != n.checked_add(1) {
                break;
            }
            n = e.position;
        }
        n.checked_add(1)
    }

    /// The store id `store.json` gives, if it is valid.
    fn store_id(&self) -> Option<StoreId> {
        match &self.identity {
            Some(Ok(f)) => Some(f.store_id),
            _ => None,
        }
    }
}

/// The whole chain, from position 1; see the module doc.
pub(crate) fn check_chain(view: &LedgerView, trust: &Trust, fs: &mut Findings) {
    fs.ran("ledger");
    for (key, _) in &view.strays {
        fs.warn(
            FindingKind::StrayObject,
            // Listed raw: a key may hold control characters (escaped here, in the report too).
            Location::StoreObject(crate::store::address::display_key(key)),
            "an object under ledger/ that is not named like a ledger entry (ledger/<position, 20 digits>.json, from 1): junk, or planted; custody never writes one, and it is not part of the ledger",
        );
    }
    if view.strays_not_listed > 0 {
        fs.warn(
            FindingKind::StrayObject,
            Location::Ledger,
            format!(
                "{} more objects under ledger/ not named like a ledger entry, not listed one by one (junk, or planted: a listing keeps at most {} such keys)",
                view.strays_not_listed,
                crate::store::versions::MAX_OTHER_KEYS
            ),
        );
    }
    let expected_store = view.store_id();
    let first_v2 =
        view.entries.iter().find_map(|e| e.entry().filter(|le| le.is_v2()).map(|le| (e.position, le.store_id)));
    match (&view.identity, first_v2) {
        (Some(Err(p)), _) => fs.error(
            FindingKind::StoreIdMismatch,
            Location::StoreObject(STORE_FILE.into()),
            format!("the store identity file is not usable ({p}): the entries' store ids cannot be checked"),
        ),
        (None, Some((position, Some(id)))) => fs.error(
            FindingKind::StoreIdMismatch,
            Location::StoreObject(STORE_FILE.into()),
            format!("store.json is missing, but the entry at position {position} names store id {id}: the store's identity was removed (or these entries were copied here from another store)"),
        ),
        _ => {}
    }
    let mut expected = Some(1u64);
    let mut prev: Option<&StoredEntry> = None;
    let mut seen_v2 = false;
    let mut first_record: HashMap<BundleId, u64> = HashMap::new();
    for e in &view.entries {
        if Some(e.position) != expected {
            let from = expected.map(|x| x.saturating_sub(1)).unwrap_or(u64::MAX);
            fs.error(
                FindingKind::LedgerGap,
                expected.map(Location::LedgerEntry).unwrap_or(Location::Ledger),
                format!("ledger positions jump from {from} to {}: entries are missing", e.position),
            );
        }
        expected = e.position.checked_add(1);
        let linked = prev.filter(|p| p.position.checked_add(1) == Some(e.position));
        check_entry(e, linked, trust, expected_store, &mut seen_v2, fs);
        prev = Some(e);
        let Some(le) = e.entry() else { continue };
        match first_record.entry(le.bundle) {
            std::collections::hash_map::Entry::Occupied(first) => fs.error(
                FindingKind::LedgerDuplicateBundle,
                Location::LedgerEntry(e.position),
                format!("bundle {} is already recorded at position {}: a replay", le.bundle, first.get()),
            ),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(e.position);
            }
        }
    }
    check_supplement_targets(view, fs);
}

/// One entry: its shape, position, signature and trust, its link to the object before it
/// (`linked`, when that position is present), its bundle key and its store id.
pub(crate) fn check_entry(
    e: &StoredEntry,
    linked: Option<&StoredEntry>,
    trust: &Trust,
    store_id: Option<StoreId>,
    seen_v2: &mut bool,
    fs: &mut Findings,
) {
    let here = || Location::LedgerEntry(e.position);
    let (env, le) = match &e.parsed {
        Err(p) => {
            fs.error(
                FindingKind::LedgerEntryInvalid,
                here(),
                format!("not a valid ledger entry ({p}); custody never writes such an object"),
            );
            return;
        }
        Ok(x) => x,
    };
    if le.position != e.position {
        fs.error(
            FindingKind::LedgerPositionMismatch,
            here(),
            format!("the entry says position {}, but is stored at {}", le.position, e.position),
        );
    }
    // An entry is signed by a key pinned for the ledger role, valid at its `appended_at`.
    let judged = trust.judge(&env.keyid, KeyRole::Ledger, &[("appended_at", le.appended_at)]);
    match judged.key() {
        None => fs.error(
            FindingKind::LedgerUntrustedSigner,
            here(),
            format!("signed by untrusted key {}; pin the signer's public key with --trusted-key PUB (or, for a separate ledger key, --trusted-ledger-key PUB)", env.keyid.hex()),
        ),
        Some(k) => {
            if k.key.verify_strict(&pae(&env.payload_type, &env.payload), &Signature::from_bytes(&env.sig)).is_err() {
                fs.error(FindingKind::LedgerBadSignature, here(), "the entry's signature does not verify");
            }
        }
    }
    match &judged {
        Judged::WrongRole(_) => fs.error(
            FindingKind::LedgerSignerRoleMismatch,
            here(),
            judged.refusal(KeyRole::Ledger, "ledger entries").unwrap_or_default(),
        ),
        Judged::Outside(..) => fs.error(
            FindingKind::LedgerSignerOutsideValidity,
            here(),
            judged.refusal(KeyRole::Ledger, "ledger entries").unwrap_or_default(),
        ),
        Judged::Trusted(_) | Judged::Unknown => {}
    }
    if let Some(sb) = &le.signed_by {
        if sb.keyid != env.keyid {
            fs.error(
                FindingKind::LedgerEntryInvalid,
                here(),
                format!("the entry says it is signed by key {}, but its envelope is signed by {}", sb.keyid, env.keyid),
            );
        }
    }
    let want_prev = if e.position == 1 { Some(None) } else { linked.map(|p| Some(p.id)) };
    if let Some(want) = want_prev {
        if le.prev != want {
            fs.error(
                FindingKind::LedgerLinkBroken,
                here(),
                if e.position == 1 {
                    "the entry at position 1 has a prev link: the ledger starts there with none".to_string()
                } else {
                    format!("prev does not equal the hash of the object at position {}", e.position - 1)
                },
            );
        }
    }
    let key = bundle_key(&le.bundle);
    if le.bundle_key != key {
        fs.error(
            FindingKind::LedgerBundleMismatch,
            here(),
            format!(
                "bundle_key is `{}`, but bundle {} is stored at `{key}`",
                le.bundle_key.chars().take(200).collect::<String>(),
                le.bundle
            ),
        );
    }
    if le.is_v2() {
        *seen_v2 = true;
        if let (Some(theirs), Some(ours)) = (le.store_id, store_id) {
            if theirs != ours {
                fs.error(
                    FindingKind::StoreIdMismatch,
                    here(),
                    format!("the entry was appended to store {theirs}, but this store is {ours} (store.json): an entry of another store, copied or replayed here"),
                );
            }
        }
    } else if *seen_v2 {
        fs.warn(
            FindingKind::LedgerFormatDowngrade,
            here(),
            "a custody-ledger/v1 entry after v2 ones: an older custody appended it (it names no store and says nothing of adoption); upgrade every writer of this store",
        );
    }
    // A token reference is checked with the bundle's signature, by the `timestamp` check.
}

/// L9: every entry's `supplement_of` names a bundle first recorded at an earlier position,
/// by an entry that is no supplement itself (custody writes a supplement only of a bundle
/// already in the ledger, and never of a supplement).
fn check_supplement_targets(view: &LedgerView, fs: &mut Findings) {
    for e in &view.entries {
        let Some(le) = e.entry() else { continue };
        let Some(of) = le.supplement_of else { continue };
        let first = view.recording(&of).first().copied();
        let problem = match first.and_then(|f| f.entry().map(|x| (f.position, x))) {
            None => format!("the entry records a supplement of bundle {of}, which no entry of this ledger records: a bundle of another ledger, or a forged link"),
            Some((p, _)) if p >= e.position => format!(
                "the entry records a supplement of bundle {of}, which is first recorded at position {p}, not before this entry: a supplement is sealed only of a bundle already in the ledger (a forward reference)"
            ),
            Some((p, x)) if x.supplement_of.is_some() => format!(
                "the entry records a supplement of bundle {of} (position {p}), which is itself a supplement: custody re-analyses only original evidence bundles"
            ),
            Some(_) => continue,
        };
        fs.error(FindingKind::SupplementOfUnknown, Location::LedgerEntry(e.position), problem);
    }
}

/// One bundle's place in the ledger; see the module doc. `manifest` is the bundle's (if it
/// parsed) and `size` its byte count.
pub(crate) fn check_placement(
    view: &LedgerView,
    id: &BundleId,
    manifest: Option<&Manifest>,
    size: u64,
    max_skew: Duration,
    fs: &mut Findings,
) -> Option<LedgerInfo> {
    fs.ran("ledger");
    let recorded = view.recording(id);
    let Some(me) = recorded.first().copied() else {
        fs.error(FindingKind::LedgerMissing, Location::BundleObject(*id), "the bundle is in the store but no ledger entry records it (run `custody store repair` to adopt it, or investigate)");
        return None;
    };
    let le = me.entry()?;
    let here = Location::LedgerEntry(me.position);
    let info =
        LedgerInfo { position: me.position, entry: me.id.to_string(), length: view.length(), adopted: le.adopted() };
    if le.bundle_size != size {
        fs.error(
            FindingKind::LedgerBundleMismatch,
            here.clone(),
            format!("ledger says {} bytes, bundle has {size}", le.bundle_size),
        );
    }
    let Some(m) = manifest else { return Some(info) };
    if le.sealed_at != m.sealed_at {
        fs.error(FindingKind::LedgerBundleMismatch, here.clone(), "ledger sealed_at differs from the manifest's");
    }
    if m.sealed_at > plus(le.appended_at, max_skew) {
        fs.error(
            FindingKind::ClockSkew,
            here,
            format!("bundle sealed at {} but recorded at {}: more than the allowed skew", m.sealed_at, le.appended_at),
        );
    }
    let next = me.position.checked_add(1).and_then(|n| view.at(n)).and_then(|n| n.entry().map(|x| (n.position, x)));
    if let Some((n, ne)) = next {
        if m.sealed_at > plus(ne.appended_at, max_skew) {
            fs.error(
                FindingKind::ClockSkew,
                Location::LedgerEntry(n),
                format!(
                    "bundle sealed at {} is later than its ledger successor's time {}",
                    m.sealed_at, ne.appended_at
                ),
            );
        }
    }
    check_link(view, me.position, le.adopted(), m, max_skew, fs);
    check_supplement_link(view, me.position, le.supplement_of, m, fs);
    Some(info)
}

/// P4: the supplement link the bundle signs (`supplement_of` in its manifest) is the one its
/// ledger entry records, and names the original's sealing time as the ledger has it.
fn check_supplement_link(
    view: &LedgerView,
    position: u64,
    recorded: Option<BundleId>,
    m: &Manifest,
    fs: &mut Findings,
) {
    let here = Location::LedgerEntry(position);
    let signed = m.supplement_of.as_ref();
    match (signed.map(|s| s.bundle), recorded) {
        (None, None) => {}
        (Some(s), Some(r)) if s == r => {}
        (Some(s), None) => fs.error(
            FindingKind::SupplementMismatch,
            here,
            format!("the bundle is a supplement of {s} (its signed manifest says so), but its ledger entry records no supplement: the ledger hides the link"),
        ),
        (None, Some(r)) => fs.error(
            FindingKind::SupplementMismatch,
            here,
            format!("the ledger entry records the bundle as a supplement of {r}, but the bundle's signed manifest names no original: the link is the ledger's alone"),
        ),
        (Some(s), Some(r)) => fs.error(
            FindingKind::SupplementMismatch,
            here,
            format!("the ledger entry records the bundle as a supplement of {r}, but the bundle's signed manifest names {s}"),
        ),
    }
    let Some(s) = signed else { return };
    let original = view.recording(&s.bundle).first().and_then(|e| e.entry().map(|x| (e.position, x.sealed_at)));
    if let Some((p, sealed_at)) = original {
        if sealed_at != s.sealed_at {
            fs.error(
                FindingKind::SupplementMismatch,
                MANIFEST_MEMBER,
                format!(
                    "the manifest says its original {} was sealed at {}, but the ledger records it (position {p}) as sealed at {sealed_at}",
                    s.bundle, s.sealed_at
                ),
            );
        }
    }
}

/// How a bundle's `ledger_prev` fits the position it sits at (or would be appended at).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LinkVerdict {
    /// Right after the head it recorded.
    Fits,
    /// Later, but every valid entry in between was appended after its collection started: a
    /// concurrent preserve, or an adoption. `from` is the first position in between.
    Later {
        /// First position in between.
        from: u64,
    },
    /// `ledger_prev` names a position this ledger does not have before `position`, or another
    /// entry or bundle there.
    NoSuchHead,
    /// The head it names was appended after its collection started (beyond the skew).
    HeadAfterStart {
        /// When that head was appended.
        appended_at: chrono::DateTime<chrono::Utc>,
    },
    /// Entries between its head and its position were appended before its collection
    /// started: it was not sealed against this ledger.
    Stale {
        /// First position in between.
        from: u64,
        /// The entries appended too early.
        stale: Vec<u64>,
    },
}

/// Where a bundle may sit (the race rule): right after the head it recorded when sealing
/// (`ledger_prev`), or later only if every valid entry in between was appended no earlier than
/// its collection started (minus the skew): a sealer that started after an entry was appended
/// would have seen it as the head. And the head it names must have been appended no later than
/// its collection started (plus the skew): it cannot have seen a head not yet written.
/// Invalid objects in between are not counted: a writer never takes one for a head it saw
/// (the chain check reports them).
pub(crate) fn judge_link(view: &LedgerView, position: u64, m: &Manifest, max_skew: Duration) -> LinkVerdict {
    let started = m.collector.started_at;
    let from = match &m.ledger_prev {
        Some(link) => {
            if !link_matches(view, link, position) {
                return LinkVerdict::NoSuchHead;
            }
            if let Some(head) = view.at(link.position).and_then(StoredEntry::entry) {
                if head.appended_at > plus(started, max_skew) {
                    return LinkVerdict::HeadAfterStart { appended_at: head.appended_at };
                }
            }
            link.position.saturating_add(1)
        }
        None => 1,
    };
    if from >= position {
        return LinkVerdict::Fits;
    }
    let earliest = minus(started, max_skew);
    let stale: Vec<u64> = view
        .entries
        .iter()
        .filter(|e| e.position >= from && e.position < position)
        .filter(|e| e.entry().is_some_and(|x| x.appended_at < earliest))
        .map(|e| e.position)
        .collect();
    if stale.is_empty() {
        LinkVerdict::Later { from }
    } else {
        LinkVerdict::Stale { from, stale }
    }
}

/// What [`judge_link`] found, said: an error, a warning, or nothing. `None` when it fits.
pub(crate) fn link_problem(
    verdict: &LinkVerdict,
    position: u64,
    adopted: bool,
    m: &Manifest,
    max_skew: Duration,
) -> Option<(bool, String)> {
    let head = |from: u64| if from <= 1 { "an empty ledger".to_string() } else { format!("position {}", from - 1) };
    let skew = max_skew.num_seconds();
    let started = m.collector.started_at;
    Some(match verdict {
        LinkVerdict::Fits => return None,
        LinkVerdict::Later { from } => (
            false,
            if adopted {
                format!(
                    "the bundle was sealed against {} and adopted at position {position} (by a later preserve or store repair); entries {from}..{} were appended after its collection started",
                    head(*from),
                    position - 1
                )
            } else {
                format!(
                    "the bundle was sealed against {} but sits at position {position}: entries {from}..{} were appended while it was being sealed (a concurrent preserve)",
                    head(*from),
                    position - 1
                )
            },
        ),
        LinkVerdict::NoSuchHead => {
            let (p, e) = m.ledger_prev.as_ref().map(|l| (l.position, l.entry.to_string())).unwrap_or_default();
            (true, format!("the manifest says the ledger head at sealing was position {p} ({e}), which does not match this ledger before position {position}"))
        }
        LinkVerdict::HeadAfterStart { appended_at } => (
            true,
            format!(
                "the manifest names position {} as the ledger head at sealing, but that entry was appended at {appended_at}, after the collection started ({started}, allowed skew {skew}s): the bundle cannot have seen it",
                m.ledger_prev.as_ref().map(|l| l.position).unwrap_or(0)
            ),
        ),
        LinkVerdict::Stale { from, stale } => (
            true,
            format!(
                "the bundle was sealed against {} but sits at position {position}, and entries {} were appended before its sealing began ({started}, allowed skew {skew}s): the bundle was not sealed against this ledger (a replay, or a rewritten ledger)",
                head(*from),
                stale.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            ),
        ),
    })
}

fn check_link(view: &LedgerView, position: u64, adopted: bool, m: &Manifest, max_skew: Duration, fs: &mut Findings) {
    let verdict = judge_link(view, position, m, max_skew);
    match link_problem(&verdict, position, adopted, m, max_skew) {
        None => {}
        Some((true, msg)) => fs.error(FindingKind::LedgerLinkMismatch, MANIFEST_MEMBER, msg),
        Some((false, msg)) => fs.warn(FindingKind::LedgerLinkMismatch, MANIFEST_MEMBER, msg),
    }
}

/// `link` names an earlier position whose object has the named id and, if it is a valid entry,
/// records the named bundle. (An invalid object can be a head: the writer links through its
/// bytes; it is reported by the chain check.)
fn link_matches(view: &LedgerView, link: &LedgerLink, position: u64) -> bool {
    link.position < position
        && view
            .at(link.position)
            .is_some_and(|e| e.id == link.entry && e.entry().map_or(true, |x| x.bundle == link.bundle))
}

/// A bundle no entry records, intact under a pinned key: if its `ledger_prev` names a
/// position this ledger no longer reaches, or another entry than the one there, entries were
/// deleted or rewritten — the store itself proves a longer history.
pub(crate) fn check_truncation(view: &LedgerView, id: &BundleId, m: &Manifest, fs: &mut Findings) {
    let Some(link) = &m.ledger_prev else { return };
    let length = view.length();
    let named = Location::LedgerEntry(link.position);
    if link.position > length {
        fs.error(
            FindingKind::LedgerTruncated,
            named,
            format!(
                "bundle {id} (intact, signed by a pinned key) was sealed when the ledger's head was position {} (entry {}), but the ledger now ends at position {length}: entries were deleted (a truncation or rollback)",
                link.position, link.entry
            ),
        );
    } else if let Some(e) = view.at(link.position) {
        if e.id != link.entry {
            fs.error(
                FindingKind::LedgerTruncated,
                named,
                format!(
                    "bundle {id} (intact, signed by a pinned key) was sealed when the ledger's head at position {} was entry {}, but the ledger holds {} there: the ledger was rewritten",
                    link.position, link.entry, e.id
                ),
            );
        }
    }
}

/// What an audit without a checkpoint cannot show, said in its `anchor` line.
pub(crate) const NOT_ANCHORED: &str = "not anchored: the ledger's tail is not anchored, give --checkpoint FILE. Without a checkpoint kept outside the store, deleting the newest entries together with their bundles leaves a shorter ledger that verifies; take one after each preserve with `custody checkpoint --out FILE` and keep it elsewhere";

/// Compare the ledger with a checkpoint: its signature by a pinned key (in a signed note, a
/// line under the origin's name; in a legacy JSON checkpoint, the envelope's), the store it
/// names (a note's store id against `store.json`; a legacy checkpoint has only a URL), the
/// witnesses' cosignatures it must carry, then a ledger shorter than it (rollback) or with
/// another entry at its position (fork).
pub(crate) fn check_anchor(view: &LedgerView, anchor: &Anchor, store_url: &str, trust: &Trust, fs: &mut Findings) {
    fs.ran("anchor");
    let any = match checkpoint::parse(&anchor.checkpoint) {
        Ok(x) => x,
        Err(e) => {
            fs.error(
                FindingKind::CheckpointInvalid,
                Location::Checkpoint,
                format!("{e}: cannot compare the ledger with it"),
            );
            return;
        }
    };
    let (position, entry) = any.head();
    let taken = any.time();
    // Said in the pass line: which store, which witnesses.
    let mut about = Vec::new();
    let mut legacy_url = None;
    match &any {
        AnyCheckpoint::Legacy { env, cp } => {
            let judged = trust.judge(&env.keyid, KeyRole::Ledger, &[("created_at", cp.created_at)]);
            if let Some(why) = judged.refusal(KeyRole::Ledger, "checkpoints") {
                fs.error(FindingKind::CheckpointInvalid, Location::Checkpoint, why);
            }
            match judged.key() {
                None => fs.error(
                    FindingKind::CheckpointInvalid,
                    Location::Checkpoint,
                    format!("the checkpoint is signed by untrusted key {}; pin it with --trusted-key (or --trusted-ledger-key)", env.keyid.hex()),
                ),
                Some(k) => {
                    if k.key
                        .verify_strict(&pae(&env.payload_type, &env.payload), &Signature::from_bytes(&env.sig))
                        .is_err()
                    {
                        fs.error(
                            FindingKind::CheckpointInvalid,
                            Location::Checkpoint,
                            "the checkpoint's signature does not verify",
                        );
                    }
                }
            }
            if !anchor.witnesses.is_empty() {
                fs.error(
                    FindingKind::CosignatureMissing,
                    Location::Checkpoint,
                    "a legacy JSON checkpoint carries no cosignatures: take a signed-note checkpoint (`custody checkpoint`) and have the witnesses cosign it (`custody witness cosign`)",
                );
            }
            about.push(format!(
                "a legacy JSON checkpoint: it names its store by URL only ({}), which is not compared while the ledger extends it",
                cp.store.chars().take(200).collect::<String>()
            ));
            legacy_url = Some(cp.store.clone());
        }
        AnyCheckpoint::Note { note, cp } => {
            let origin = cp.origin();
            let mut signed = false;
            for k in trust.keys() {
                for line in note.lines_of(Some(&origin), note::ED25519, &k.key) {
                    if note.verify_ed25519(line, &k.key) {
                        // A checkpoint is the ledger's: signed by a key pinned for that role,
                        // valid at the note's `time`.
                        let judged = trust.judge(&k.id.0, KeyRole::Ledger, &[("time", cp.time)]);
                        match judged.refusal(KeyRole::Ledger, "checkpoints") {
                            None => signed = true,
                            Some(why) => fs.error(FindingKind::CheckpointInvalid, Location::Checkpoint, why),
                        }
                    } else {
                        fs.error(
                            FindingKind::CheckpointInvalid,
                            Location::Checkpoint,
                            format!("the checkpoint's signature by pinned key {} does not verify: the note was altered after it was signed", k.id),
                        );
                    }
                }
            }
            if !signed && !fs.failed("anchor") {
                fs.error(
                    FindingKind::CheckpointInvalid,
                    Location::Checkpoint,
                    format!("the checkpoint has no signature by a pinned key under its origin's name ({origin}); pin the store's signing key with --trusted-key"),
                );
            }
            match view.store_id() {
                Some(ours) if ours != cp.store_id => {
                    fs.error(
                        FindingKind::CheckpointOtherStore,
                        Location::Checkpoint,
                        format!("the checkpoint is of store {}, but this store is {ours} (store.json): a checkpoint of another store says nothing about this ledger; give this store's checkpoint", cp.store_id),
                    );
                    check_cosignatures(note, anchor, fs, &mut about);
                    return;
                }
                Some(_) => about.push(format!("of this store, {}", cp.store_id)),
                None => fs.warn(
                    FindingKind::CheckpointOtherStore,
                    Location::Checkpoint,
                    format!("the checkpoint is of store {}, but this store has no usable store.json to compare with; compared anyway", cp.store_id),
                ),
            }
            check_cosignatures(note, anchor, fs, &mut about);
        }
    }
    let about: String = about.iter().map(|a| format!("; {a}")).collect();
    let other_url = legacy_url.filter(|u| u != store_url);
    match checkpoint::compare(&view.entries, position, entry) {
        Comparison::Consistent => fs.detail(
            "anchor",
            format!(
                "the ledger extends the checkpoint taken at {taken} (position {position}{about}); entries after it are not anchored"
            ),
        ),
        // A legacy checkpoint names its store by URL only: one of another URL that this ledger
        // does not extend is most likely of another store (or this one moved, then lost entries).
        _ if other_url.is_some() => fs.error(
            FindingKind::CheckpointOtherStore,
            Location::Checkpoint,
            format!(
                "the legacy checkpoint names store {}, not {store_url}, and this ledger does not extend it: a checkpoint of another store, or this store moved and was rolled back or rewritten since; take a new checkpoint",
                other_url.unwrap_or_default()
            ),
        ),
        Comparison::RolledBack { now } => fs.error(
            FindingKind::Rollback,
            Location::LedgerEntry(position),
            format!(
                "the ledger has {now} entries, but a checkpoint taken at {taken} recorded {position}: entries were removed (a rollback to an older head)"
            ),
        ),
        Comparison::Forked { found } => fs.error(
            FindingKind::Rollback,
            Location::LedgerEntry(position),
            format!(
                "the checkpoint taken at {taken} recorded entry {} at position {position}, but the ledger holds {} there: the ledger was rewritten (a fork)",
                entry.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                found.map(|e| e.to_string()).unwrap_or_else(|| "nothing".into())
            ),
        ),
    }
}

/// The witnesses' cosignatures on a checkpoint note: every line matching a witness key must
/// verify (`cosignature_invalid`), and at least `anchor.required` of the keys must have a
/// valid one (`cosignature_missing`). Lines of other keys are ignored (c2sp.org/signed-note).
fn check_cosignatures(note: &Note, anchor: &Anchor, fs: &mut Findings, about: &mut Vec<String>) {
    if anchor.witnesses.is_empty() {
        return;
    }
    let mut valid = Vec::new();
    let mut missing = Vec::new();
    // A key given twice is one witness: it never counts twice towards `required`.
    let mut seen = std::collections::HashSet::new();
    for w in anchor.witnesses.iter().filter(|w| seen.insert(w.id)) {
        let mut ok = None;
        for line in note.lines_of(None, note::COSIGNATURE_V1, &w.key) {
            match note.verify_cosignature(line, &w.key) {
                Some(ts) => ok = Some(ts),
                None => fs.error(
                    FindingKind::CosignatureInvalid,
                    Location::Checkpoint,
                    format!(
                        "a cosignature line (name `{}`) matches witness key {} but does not verify: the note was altered after it was cosigned, or the line is forged",
                        line.name.chars().take(64).collect::<String>(),
                        w.id
                    ),
                ),
            }
        }
        match ok {
            Some(ts) => valid.push(format!(
                "{} at {}",
                w.id,
                chrono::DateTime::from_timestamp(i64::try_from(ts).unwrap_or(i64::MAX), 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| format!("{ts}s"))
            )),
            None => missing.push(w.id.to_string()),
        }
    }
    if valid.len() < anchor.required {
        fs.error(
            FindingKind::CosignatureMissing,
            Location::Checkpoint,
            format!(
                "{} of the {} witness keys given cosigned the checkpoint, {} required; no valid cosignature by {}",
                valid.len(),
                seen.len(),
                anchor.required,
                missing.join(", ")
            ),
        );
    }
    about.push(format!("cosigned by {} of {} witness(es): {}", valid.len(), seen.len(), valid.join(", ")));
}
