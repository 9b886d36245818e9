//! The archive check: the file's digest (when one is expected), every structural problem the
//! reader reported, where the named members stand, and the members' shared mtime.

use crate::bundle::manifest::{Manifest, ANALYSIS_MEMBER};
use crate::bundle::write::{ENVELOPE_MEMBER, MANIFEST_MEMBER};
use crate::digest::BundleId;
use crate::read::archive::{ArchiveProblem, ArchiveScan};
use crate::verify::findings::{Findings, Location};
use crate::verify::report::FindingKind;
use crate::verify::Options;

/// The file's bytes hash to the digest the caller expects (`--expect-digest`, the ledger).
pub(crate) fn check_digest(digest: &BundleId, opts: &Options, fs: &mut Findings) {
    if let Some(want) = &opts.expected_digest {
        if want != digest {
            fs.error(
                FindingKind::BundleDigestMismatch,
                Location::BundleFile,
                format!("the file's bytes hash to {digest}, not to the expected {want}"),
            );
        }
    }
}

/// Every problem the reader found, and the order of the named members: blobs first, then
/// `analysis.json` (v2, optional), `manifest.json` and `manifest.dsse.json`, last.
pub(crate) fn check_structure(scan: &ArchiveScan, size: u64, fs: &mut Findings) {
    fs.ran("archive");
    for p in &scan.problems {
        let (kind, loc) = match p {
            ArchiveProblem::Decompress { at, .. } => (FindingKind::ArchiveCorrupt, Location::DecompressedOffset(*at)),
            ArchiveProblem::Truncated { member } => {
                (FindingKind::ArchiveTruncated, member.clone().map(Location::Member).unwrap_or(Location::EndOfArchive))
            }
            ArchiveProblem::BadHeader { index, .. } => {
                (FindingKind::ArchiveCorrupt, Location::MemberIndex { index: *index, name: None })
            }
            ArchiveProblem::UnsupportedType { name, .. } => {
                (FindingKind::UnsupportedMember, Location::Member(name.clone()))
            }
            ArchiveProblem::BadName { name, .. } => (FindingKind::BadMemberName, Location::Member(name.clone())),
            ArchiveProblem::Duplicate { name } => (FindingKind::DuplicateMember, Location::Member(name.clone())),
            ArchiveProblem::TooLarge { name, .. } => (FindingKind::MemberTooLarge, Location::Member(name.clone())),
            ArchiveProblem::TrailingData => (FindingKind::TrailingData, Location::EndOfArchive),
            ArchiveProblem::TooManyMembers { .. } => (FindingKind::TooManyMembers, Location::Archive),
            ArchiveProblem::DecompressionBomb { .. } => (FindingKind::DecompressionBomb, Location::Archive),
            ArchiveProblem::NonCanonical { index, name, .. } => {
                (FindingKind::NonCanonical, Location::MemberIndex { index: *index, name: Some(name.clone()) })
            }
            ArchiveProblem::Frame { .. } => (FindingKind::ArchiveCorrupt, Location::ZstdFrame),
            ArchiveProblem::TrailingCompressed { .. } => (FindingKind::TrailingData, Location::AfterFrame),
        };
        fs.error(kind, loc, p.to_string());
    }
    fs.detail("archive", format!("well-formed ({} members, {} bytes)", scan.members, size));

    let pos = |n: &str| scan.named.iter().find(|(_, m)| m == n).map(|(i, _)| *i);
    if let (Some(mi), Some(ei)) = (pos(MANIFEST_MEMBER), pos(ENVELOPE_MEMBER)) {
        if !(mi + 1 == ei && ei + 1 == scan.members) {
            fs.error(
                FindingKind::MemberOrder,
                MANIFEST_MEMBER,
                "manifest.json and manifest.dsse.json must be the last two members, in that order",
            );
        }
        if let Some(ai) = pos(ANALYSIS_MEMBER) {
            if ai + 1 != mi {
                fs.error(
                    FindingKind::MemberOrder,
                    ANALYSIS_MEMBER,
                    "analysis.json must come right before manifest.json",
                );
            }
        }
    }
}

/// Every member carries the manifest's `collector.started_at` as its mtime (whole seconds,
/// clamped at 0).
pub(crate) fn check_mtime(m: &Manifest, mtime: Option<u64>, fs: &mut Findings) {
    let Some(t) = mtime else { return };
    let started = m.collector.started_at.timestamp();
    if u64::try_from(started).unwrap_or(0) != t {
        fs.error(
            FindingKind::NonCanonical,
            Location::MemberIndex { index: 0, name: None },
            format!("tar members carry mtime {t}, but custody writes the manifest's collector.started_at ({started})"),
        );
    }
}
