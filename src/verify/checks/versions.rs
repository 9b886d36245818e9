//! The `versions` check of an S3 store (`docs/format.md` §6.4, rules V1–V2): in a versioned
//! bucket every key is read at its first version, the one custody wrote create-only
//! ([`crate::store::versions`]); a later version or a delete marker on an entry key, a bundle
//! key or `store.json` is an error naming the key, the versions and their times; a bucket
//! whose versioning is not enabled leaves nothing to audit, which is a warning.

use crate::store::address::display_key;
use crate::store::versions::{KeyHistory, VersionRecord, SAMPLE};
use crate::store::{Store, Versioning};
use crate::verify::findings::{Findings, Location};
use crate::verify::report::FindingKind;

/// `id at time` for each record, and how many more there are.
fn listed(records: &[VersionRecord], count: u64) -> String {
    let mut s = records
        .iter()
        .map(|r| format!("{} at {}", r.id, r.modified.format("%Y-%m-%dT%H:%M:%SZ")))
        .collect::<Vec<_>>()
        .join(", ");
    let more = count.saturating_sub(records.len() as u64);
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

/// V1: every later version and delete marker of the keys in `histories` (entry keys, bundle
/// keys, `store.json`) is an error.
pub(crate) fn check_versions<'a>(histories: impl IntoIterator<Item = &'a KeyHistory>, fs: &mut Findings) {
    fs.ran("versions");
    for h in histories {
        let at = || Location::StoreObject(display_key(&h.key));
        let first = match &h.first {
            Some(f) => format!("version {} of {}", f.id, f.modified.format("%Y-%m-%dT%H:%M:%SZ")),
            None => "none: the key holds no version at all".into(),
        };
        if h.later_count > 0 {
            fs.error(
                FindingKind::LaterVersion,
                at(),
                format!(
                    "{} later version(s) written over the one custody wrote create-only ({first}): {} (newest first; at most {SAMPLE} named). Readers that do not list versions see the newest instead of the evidence; this audit verified the first version. Object Lock keeps a version from changing, not a new version from being written over its key: deny unconditional writes (docs/storage.md, bucket policy)",
                    h.later_count,
                    listed(&h.later, h.later_count)
                ),
            );
        }
        if h.marker_count > 0 {
            fs.error(
                FindingKind::DeleteMarker,
                at(),
                format!(
                    "{} delete marker(s): {}{}. The evidence is hidden, not deleted: this audit read the first version ({first}). A DeleteObject without a version id makes them: deny it (docs/storage.md, bucket policy)",
                    h.marker_count,
                    listed(&h.markers, h.marker_count),
                    if h.hidden { "; the newest hides the key: readers that do not list versions see no object" } else { "" }
                ),
            );
        }
    }
}

/// V2 and the `versions` checklist line: the bucket's versioning, and how many objects were
/// read from their version history. Adds nothing for stores other than S3.
pub(crate) async fn check_versioning(store: &Store, objects: usize, fs: &mut Findings) {
    let Some(v) = store.versioning().await else { return };
    fs.ran("versions");
    match &v {
        Versioning::Enabled | Versioning::Unknown(_) => fs.detail(
            "versions",
            format!(
                "{}: {objects} object(s) read at their first version, the one written create-only (ListObjectVersions); none has a later version or a delete marker",
                v.describe()
            ),
        ),
        Versioning::Suspended => fs.warn(
            FindingKind::VersioningOff,
            Location::Bucket,
            "versioning is Suspended on the bucket: a write now replaces a key's null version and a delete removes it, leaving nothing to audit; the versions listed were audited. Enable versioning again (Object Lock needs it)",
        ),
        Versioning::Unsupported => fs.warn(
            FindingKind::VersioningOff,
            Location::Bucket,
            "the server has no bucket versioning (GetBucketVersioning: 501 Not Implemented): an overwrite replaces an object and a delete removes it without a trace in the store. A replaced entry or bundle is still caught by its digest, signature and links, deleted newest entries only with a checkpoint (--checkpoint)",
        ),
        Versioning::Off => fs.warn(
            FindingKind::VersioningOff,
            Location::Bucket,
            "versioning is not enabled on the bucket: an overwrite replaces an object and a delete removes it without a trace in the store. A replaced entry or bundle is still caught by its digest, signature and links, deleted newest entries only with a checkpoint (--checkpoint); create the bucket with Object Lock (which enables versioning), docs/storage.md",
        ),
    }
}
