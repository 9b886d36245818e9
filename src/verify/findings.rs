//! The one findings collector every check adds to, and where a finding is ([`Location`]).
//!
//! A location is typed, so the verifier decides by its kind — "is this about the ledger?" —
//! never by the text it prints as. Its text (the `location` string of the JSON report) is
//! [`Location`]'s `Display`.

use std::fmt;

use serde::{Serialize, Serializer};

use super::report::{Finding, FindingKind, Level};
use crate::digest::BundleId;

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// The bundle file's bytes as a whole (`bundle file`).
    BundleFile,
    /// The archive as a whole (`archive`).
    Archive,
    /// An offset in the decompressed stream.
    DecompressedOffset(u64),
    /// The zstd frame's header (`zstd frame`).
    ZstdFrame,
    /// Bytes after the zstd frame (`after the zstd frame`).
    AfterFrame,
    /// The end-of-archive marker (`end of archive`).
    EndOfArchive,
    /// A member by its 0-based index, with its name when it has a valid one
    /// (`member #3 (manifest.json)`).
    MemberIndex {
        /// Index in the archive.
        index: usize,
        /// Its name.
        name: Option<String>,
    },
    /// A member by name (`manifest.json`, `blobs/sha256/<hex>`).
    Member(String),
    /// The blob members as a group (`blobs/`).
    Blobs,
    /// A collected file, by its manifest entry path.
    EntryPath(String),
    /// A top-level part of the manifest (`journal`, `merkle_root`).
    ManifestField(&'static str),
    /// One journal event (`journal[4]`).
    JournalEvent(usize),
    /// A bundle object in a store (`bundles/<hex>.tar.zst`).
    BundleObject(BundleId),
    /// Another store object (`store.json`, a stray key under `ledger/` or `bundles/`).
    StoreObject(String),
    /// The ledger entry object at a position (`ledger/<20 digits>.json`).
    LedgerEntry(u64),
    /// The ledger as a whole (`ledger/`).
    Ledger,
    /// The checkpoint file given with `--checkpoint`.
    Checkpoint,
    /// The bucket (or container) as a whole (`bucket`): its versioning, say.
    Bucket,
    /// A finding about one bundle of a whole-ledger audit: the bundle, then where in it.
    InBundle(BundleId, Box<Location>),
}

impl Location {
    /// Is this about the store's ledger (an entry, the ledger, or a checkpoint of it), as
    /// opposed to a bundle's contents?
    pub fn is_ledger(&self) -> bool {
        matches!(self, Location::LedgerEntry(_) | Location::Ledger | Location::Checkpoint)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::BundleFile => f.write_str("bundle file"),
            Location::Archive => f.write_str("archive"),
            Location::DecompressedOffset(at) => write!(f, "decompressed offset {at}"),
            Location::ZstdFrame => f.write_str("zstd frame"),
            Location::AfterFrame => f.write_str("after the zstd frame"),
            Location::EndOfArchive => f.write_str("end of archive"),
            Location::MemberIndex { index, name: Some(n) } => write!(f, "member #{index} ({n})"),
            Location::MemberIndex { index, name: None } => write!(f, "member #{index}"),
            Location::Member(n) | Location::EntryPath(n) | Location::StoreObject(n) => f.write_str(n),
            Location::Blobs => f.write_str("blobs/"),
            Location::ManifestField(n) => f.write_str(n),
            Location::JournalEvent(i) => write!(f, "journal[{i}]"),
            Location::BundleObject(b) => f.write_str(&crate::store::bundle_key(b)),
            Location::LedgerEntry(n) => f.write_str(&crate::read::ledger::entry_key(*n)),
            Location::Ledger => f.write_str(crate::read::ledger::LEDGER_PREFIX),
            Location::Checkpoint => f.write_str("checkpoint"),
            Location::Bucket => f.write_str("bucket"),
            Location::InBundle(b, inner) => write!(f, "{b} {inner}"),
        }
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<&str> for Location {
    /// A member name.
    fn from(name: &str) -> Self {
        Location::Member(name.to_string())
    }
}

/// The findings collector: every check adds its findings here, says that it ran, and leaves a
/// detail line for the checklist when it passes.
#[derive(Debug, Default)]
pub struct Findings {
    /// Every finding, in the order found.
    pub list: Vec<Finding>,
    /// Checks that ran.
    pub ran: Vec<&'static str>,
    /// Pass details, by check.
    pub details: Vec<(&'static str, String)>,
}

impl Findings {
    /// An error: verification fails.
    pub fn error(&mut self, kind: FindingKind, location: impl Into<Location>, message: impl Into<String>) {
        self.list.push(Finding { level: Level::Error, kind, location: location.into(), message: message.into() });
    }
    /// A warning: worth attention, verification still passes.
    pub fn warn(&mut self, kind: FindingKind, location: impl Into<Location>, message: impl Into<String>) {
        self.list.push(Finding { level: Level::Warning, kind, location: location.into(), message: message.into() });
    }
    /// Note that `check` ran.
    pub fn ran(&mut self, check: &'static str) {
        if !self.ran.contains(&check) {
            self.ran.push(check);
        }
    }
    /// The checklist line of `check` when it passes.
    pub fn detail(&mut self, check: &'static str, detail: impl Into<String>) {
        self.details.push((check, detail.into()));
    }
    /// Has some error of a kind belonging to `check` been found?
    pub fn failed(&self, check: &str) -> bool {
        self.list.iter().any(|x| x.level == Level::Error && x.kind.check() == check)
    }
    /// Errors found so far.
    pub fn errors(&self) -> usize {
        self.list.iter().filter(|x| x.level == Level::Error).count()
    }
}
