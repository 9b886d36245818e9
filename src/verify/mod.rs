//! The verifier: checks a bundle (and its place in a store's ledger) and collects every
//! finding instead of stopping at the first.
//!
//! Order of work: the archive is read by [`crate::read::archive`] (bounded, strict), the
//! envelope and manifest are parsed into checked types by [`crate::read::envelope`], and only
//! then do the cryptographic and cross-reference checks run.

pub mod report;

use std::collections::{HashMap, HashSet};
use std::io::Read;

use chrono::Duration;
use ed25519_dalek::Signature;

use crate::bundle::dsse::pae;
use crate::bundle::journal::{check_chain, check_chain_from, ChainBreak};
use crate::bundle::manifest::{
    Entry, EventKind, JournalEvent, Manifest, ANALYSIS_MEMBER, FORMAT_V1, FORMAT_V2, MANIFEST_PAYLOAD_TYPE,
    STATEMENT_PAYLOAD_TYPE,
};
use crate::bundle::merkle;
use crate::bundle::write::{blob_member, ENVELOPE_MEMBER, MANIFEST_MEMBER};
use crate::digest::{BundleId, Sha256};
use crate::keys::PublicKey;
use crate::read::archive::{read_archive, ArchiveProblem, BlobMember, BlobVisitor, Limits};
use crate::read::envelope::{CheckedEnvelope, CheckedManifest, CheckedStatement, EnvelopeMember};
use crate::store::ledger::{self, StoredEntry};
use crate::store::{bundle_key, Store, StoreError};
pub use report::{Finding, FindingKind, Level, Report, Subject};

/// Pinned public keys.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: Vec<PublicKey>,
}

impl Trust {
    /// Trust exactly these keys.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Trust { keys }
    }
    /// The key with this id.
    pub fn find(&self, id: &Sha256) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id.0 == *id)
    }
    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verification options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Archive limits.
    pub limits: Limits,
    /// Allowed clock skew between a bundle's times and ledger times (the sealing host's and
    /// the appending host's clocks may differ). Used by the ledger checks:
    /// * `sealed_at` may be later than its own entry's, or its successor's, `appended_at` by at
    ///   most this much;
    /// * an entry that lies between the bundle's recorded ledger head and its own position must
    ///   have been appended no earlier than `collector.started_at - max_skew` (otherwise the
    ///   sealer would have seen it as the head: the bundle was not sealed against this ledger).
    pub max_skew: Duration,
    /// The digest the bundle file must have (from the ledger, a ticket, a custody form). A
    /// bundle verified in a store is always checked against its name; for a bare file this is
    /// the only thing that binds the compressed bytes themselves (see `docs/threat-model.md`).
    pub expected_digest: Option<BundleId>,
}

impl Default for Options {
    fn default() -> Self {
        Options { limits: Limits::default(), max_skew: Duration::minutes(5), expected_digest: None }
    }
}

/// Why a `--max-skew` value was rejected.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a duration: use a number with a unit s, m, h or d (e.g. 30s, 5m, 2h), at most 7d")]
pub struct SkewError(String);

/// Parse a skew such as `90s`, `5m`, `2h`, `1d` (a bare number is seconds; at most 7 days).
pub fn parse_skew(s: &str) -> Result<Duration, SkewError> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    let n: i64 = num.parse().map_err(|_| SkewError(s.into()))?;
    let secs = n.checked_mul(mult).filter(|v| (0..=7 * 86_400).contains(v)).ok_or_else(|| SkewError(s.into()))?;
    Ok(Duration::seconds(secs))
}

/// The result of reading and checking one bundle stream.
#[derive(Debug)]
pub struct BundleCheck {
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Checks that ran.
    pub ran: Vec<&'static str>,
    /// Pass details.
    pub details: Vec<(&'static str, String)>,
    /// The manifest, if it parsed.
    pub manifest: Option<Manifest>,
    /// The signer.
    pub signer: Option<report::SignerInfo>,
    /// SHA-256 and size of the bundle bytes.
    pub digest: BundleId,
    /// Size in bytes.
    pub size: u64,
}

fn f(level: Level, kind: FindingKind, location: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding { level, kind, location: location.into(), message: message.into() }
}

fn err(kind: FindingKind, location: impl Into<String>, message: impl Into<String>) -> Finding {
    f(Level::Error, kind, location, message)
}

/// Read and check one bundle from `r` (the `.tar.zst` bytes).
pub fn check_bundle<R: Read>(
    r: R,
    trust: &Trust,
    opts: &Options,
    visitor: Option<&mut dyn BlobVisitor>,
) -> BundleCheck {
    // The reader hashes the whole file (on its decompression thread), to its end.
    let mut scan = read_archive(r, &opts.limits, visitor);
    let (digest, size) = (scan.input.sha256, scan.input.bytes);
    let mut out = BundleCheck {
        findings: Vec::new(),
        ran: vec!["archive"],
        details: Vec::new(),
        manifest: None,
        signer: None,
        digest: BundleId(digest),
        size,
    };
    let fs = &mut out.findings;
    if let Some(want) = &opts.expected_digest {
        if *want != out.digest {
            fs.push(err(
                FindingKind::BundleDigestMismatch,
                "bundle file",
                format!("the file's bytes hash to {}, not to the expected {want}", out.digest),
            ));
        }
    }
    for p in &scan.problems {
        let (kind, loc) = match p {
            ArchiveProblem::Decompress { at, .. } => (FindingKind::ArchiveCorrupt, format!("decompressed offset {at}")),
            ArchiveProblem::Truncated { member } => {
                (FindingKind::ArchiveTruncated, member.clone().unwrap_or_else(|| "end of archive".into()))
            }
            ArchiveProblem::BadHeader { index, .. } => (FindingKind::ArchiveCorrupt, format!("member #{index}")),
            ArchiveProblem::UnsupportedType { name, .. } => (FindingKind::UnsupportedMember, name.clone()),
            ArchiveProblem::BadName { name, .. } => (FindingKind::BadMemberName, name.clone()),
            ArchiveProblem::Duplicate { name } => (FindingKind::DuplicateMember, name.clone()),
            ArchiveProblem::TooLarge { name, .. } => (FindingKind::MemberTooLarge, name.clone()),
            ArchiveProblem::TrailingData => (FindingKind::TrailingData, "end of archive".into()),
            ArchiveProblem::TooManyMembers { .. } => (FindingKind::TooManyMembers, "archive".into()),
            ArchiveProblem::DecompressionBomb { .. } => (FindingKind::DecompressionBomb, "archive".into()),
            ArchiveProblem::NonCanonical { index, name, .. } => {
                (FindingKind::NonCanonical, format!("member #{index} ({name})"))
            }
            ArchiveProblem::Frame { .. } => (FindingKind::ArchiveCorrupt, "zstd frame".into()),
            ArchiveProblem::TrailingCompressed { .. } => (FindingKind::TrailingData, "after the zstd frame".into()),
        };
        fs.push(err(kind, loc, p.to_string()));
    }
    out.details.push(("archive", format!("well-formed ({} members, {} bytes)", scan.members, size)));

    // Member order: blobs first, then analysis.json (v2, optional), manifest.json and
    // manifest.dsse.json.
    let pos = |n: &str| scan.named.iter().find(|(_, m)| m == n).map(|(i, _)| *i);
    if let (Some(mi), Some(ei)) = (pos(MANIFEST_MEMBER), pos(ENVELOPE_MEMBER)) {
        if !(mi + 1 == ei && ei + 1 == scan.members) {
            fs.push(err(
                FindingKind::MemberOrder,
                MANIFEST_MEMBER,
                "manifest.json and manifest.dsse.json must be the last two members, in that order",
            ));
        }
        if let Some(ai) = pos(ANALYSIS_MEMBER) {
            if ai + 1 != mi {
                fs.push(err(
                    FindingKind::MemberOrder,
                    ANALYSIS_MEMBER,
                    "analysis.json must come right before manifest.json",
                ));
            }
        }
    }

    // Envelope and manifest, parsed before any crypto.
    out.ran.push("manifest");
    // The manifest bytes (behind their PAE header) are held until the signature is checked,
    // then dropped; a streamed envelope was already checked against them and holds no payload.
    let man_bytes = scan.manifest.take();
    let mut payload_is_manifest = false;
    let env = match scan.envelope.take() {
        None => {
            fs.push(err(
                FindingKind::MissingEnvelope,
                ENVELOPE_MEMBER,
                "the signature envelope manifest.dsse.json is missing",
            ));
            None
        }
        Some(EnvelopeMember::Buffered(b)) => {
            match CheckedEnvelope::parse_one_of(&b, &[STATEMENT_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE]) {
                Ok(e) => Some(e),
                Err(e) => {
                    fs.push(err(FindingKind::EnvelopeInvalid, ENVELOPE_MEMBER, crate::error_text(&e)));
                    None
                }
            }
        }
        Some(EnvelopeMember::Streamed(Ok(e))) => {
            payload_is_manifest = true;
            Some(e)
        }
        Some(EnvelopeMember::Streamed(Err(e))) => {
            fs.push(err(FindingKind::EnvelopeInvalid, ENVELOPE_MEMBER, crate::error_text(&e)));
            None
        }
        Some(EnvelopeMember::PayloadDiffers { offset }) => {
            fs.push(err(
                FindingKind::PayloadMismatch,
                ENVELOPE_MEMBER,
                format!(
                    "the signed payload is not byte-identical to manifest.json (the envelope's base64 differs at byte {offset}); the envelope is too large to be read any further, so its signature was not checked"
                ),
            ));
            None
        }
    };
    // The manifest's SHA-256 (for a v2 statement) is computed while it is parsed: on a helper
    // thread for a big manifest (60 MB for 100 000 files, ~0.04 s), here otherwise.
    let (manifest, man_sha256) = std::thread::scope(|s| {
        let hashing = man_bytes
            .as_ref()
            .filter(|b| b.bytes().len() >= PARALLEL_HASH_FROM)
            .and_then(|b| std::thread::Builder::new().name("custody-check".into()).spawn_scoped(s, || b.sha256()).ok());
        let manifest = match &man_bytes {
            None => {
                fs.push(err(FindingKind::MissingManifest, MANIFEST_MEMBER, "manifest.json is missing"));
                None
            }
            Some(b) => match CheckedManifest::try_from(b.bytes()) {
                Ok(CheckedManifest(m)) => Some(m),
                Err(e) => {
                    fs.push(err(FindingKind::ManifestInvalid, MANIFEST_MEMBER, crate::error_text(&e)));
                    None
                }
            },
        };
        let sha = match hashing.map(|h| h.join()) {
            Some(Ok(sha)) => Some(sha),
            _ => man_bytes.as_ref().map(|b| b.sha256()),
        };
        (manifest, sha)
    });
    if let (Some(m), Some(t)) = (&manifest, scan.mtime) {
        if m.collector.started_at.timestamp().max(0) as u64 != t {
            fs.push(err(
                FindingKind::NonCanonical,
                "member #0",
                format!(
                    "tar members carry mtime {t}, but custody writes the manifest's collector.started_at ({})",
                    m.collector.started_at.timestamp()
                ),
            ));
        }
    }
    // What the signature covers: v1 signs the manifest itself, v2 a statement of its digest.
    let v2 = manifest.as_ref().is_some_and(|m| m.format == FORMAT_V2);
    if let (Some(e), Some(b)) = (&env, &man_bytes) {
        let statement = e.payload_type == STATEMENT_PAYLOAD_TYPE;
        if manifest.is_some() && statement != v2 {
            fs.push(err(
                FindingKind::EnvelopeInvalid,
                ENVELOPE_MEMBER,
                format!(
                    "the envelope's payload type {} does not belong to a {} manifest (v1 signs the manifest itself, v2 a statement of its SHA-256)",
                    e.payload_type,
                    if v2 { FORMAT_V2 } else { FORMAT_V1 }
                ),
            ));
        }
        if statement {
            match CheckedStatement::try_from(e.payload.as_slice()) {
                Err(x) => fs.push(err(FindingKind::EnvelopeInvalid, ENVELOPE_MEMBER, x.to_string())),
                Ok(CheckedStatement(st)) => {
                    let sha = man_sha256.unwrap_or_else(|| b.sha256());
                    if st.manifest_sha256 != sha || st.manifest_size != b.bytes().len() as u64 {
                        fs.push(err(
                            FindingKind::PayloadMismatch,
                            ENVELOPE_MEMBER,
                            format!(
                                "the signed statement names a manifest of {} bytes with SHA-256 {}, but manifest.json is {} bytes with SHA-256 {}: the manifest was altered or swapped",
                                st.manifest_size,
                                st.manifest_sha256.hex(),
                                b.bytes().len(),
                                sha.hex()
                            ),
                        ));
                    }
                }
            }
        } else if !payload_is_manifest && e.payload != b.bytes() {
            fs.push(err(
                FindingKind::PayloadMismatch,
                ENVELOPE_MEMBER,
                "the signed payload is not byte-identical to manifest.json",
            ));
        }
    }
    out.details.push((
        "manifest",
        if v2 {
            "parsed; the signed statement names manifest.json's SHA-256 and size".into()
        } else {
            "parsed; signed payload equals manifest.json".into()
        },
    ));

    // Signature and trust.
    if let Some(e) = &env {
        out.ran.push("signature");
        out.ran.push("signer_trusted");
        let embedded = manifest
            .as_ref()
            .and_then(|m| PublicKey::from_pem(&m.signer.public_key, std::path::Path::new("manifest signer")).ok());
        if let Some(m) = &manifest {
            if m.signer.keyid != e.keyid.hex() {
                fs.push(err(
                    FindingKind::SignerMismatch,
                    ENVELOPE_MEMBER,
                    format!("envelope keyid {} differs from the manifest's signer {}", e.keyid.hex(), m.signer.keyid),
                ));
            }
            if let Some(k) = &embedded {
                if k.id.0 != e.keyid {
                    fs.push(err(
                        FindingKind::SignerMismatch,
                        MANIFEST_MEMBER,
                        "the manifest's signer public key does not hash to the envelope keyid",
                    ));
                }
            }
        }
        let trusted = trust.find(&e.keyid);
        let key = trusted.cloned().or_else(|| embedded.filter(|k| k.id.0 == e.keyid));
        match key {
            Some(k) => {
                let owned;
                let msg: &[u8] = match &man_bytes {
                    Some(b) if payload_is_manifest => b.pae(),
                    _ => {
                        owned = pae(&e.payload_type, &e.payload);
                        &owned
                    }
                };
                if k.key.verify_strict(msg, &Signature::from_bytes(&e.sig)).is_err() {
                    fs.push(err(
                        FindingKind::BadSignature,
                        ENVELOPE_MEMBER,
                        format!("the Ed25519 signature does not verify with key {}", e.keyid.hex()),
                    ));
                } else {
                    out.details.push(("signature", format!("valid Ed25519 signature by key {}", e.keyid.hex())));
                }
            }
            None => fs.push(err(
                FindingKind::BadSignature,
                ENVELOPE_MEMBER,
                format!("no public key for keyid {} to check the signature with", e.keyid.hex()),
            )),
        }
        match trusted {
            Some(k) => out.details.push(("signer_trusted", format!("key {} pinned ({})", k.id, k.origin))),
            None => fs.push(err(
                FindingKind::UntrustedSigner,
                ENVELOPE_MEMBER,
                format!("signed by key {}, which is not trusted here; pin the signer's public key with --trusted-key PUB after checking it out of band", e.keyid.hex()),
            )),
        }
        out.signer = Some(report::SignerInfo {
            keyid: e.keyid.hex(),
            trusted: trusted.is_some(),
            trusted_as: trusted.map(|k| k.origin.clone()),
        });
    }

    drop(man_bytes);

    // The analysis member (v2): exactly the bytes the signed manifest names.
    let analysis_ref = manifest.as_ref().and_then(|m| m.analysis_ref.clone());
    let mut analysis_bytes = None;
    match (&analysis_ref, scan.analysis.take()) {
        (None, None) => out.details.push((
            "analysis",
            match manifest.as_ref() {
                Some(m) if m.analysis.is_some() => "embedded in the v1 manifest (covered by its signature)".into(),
                Some(_) => "none (sealed with --no-analyze)".into(),
                None => {
                    "not checked: without a readable manifest, whether the bundle has an analysis is unknown".into()
                }
            },
        )),
        (Some(r), Some(a)) => {
            out.ran.push("analysis");
            if r.sha256 != a.sha256 || r.size != a.size {
                fs.push(err(
                    FindingKind::AnalysisMismatch,
                    ANALYSIS_MEMBER,
                    format!(
                        "analysis.json is {} bytes with SHA-256 {}, but the manifest names {} bytes with SHA-256 {}: it was altered or swapped",
                        a.size,
                        a.sha256.hex(),
                        r.size,
                        r.sha256.hex()
                    ),
                ));
            } else {
                out.details.push(("analysis", format!("{} bytes, SHA-256 matches the manifest", a.size)));
                analysis_bytes = a.bytes;
            }
        }
        (Some(_), None) => {
            out.ran.push("analysis");
            fs.push(err(
                FindingKind::AnalysisMismatch,
                ANALYSIS_MEMBER,
                "the manifest names an analysis.json member, but the archive has none (it was removed)",
            ));
        }
        (None, Some(_)) => {
            out.ran.push("analysis");
            fs.push(err(
                FindingKind::AnalysisMismatch,
                ANALYSIS_MEMBER,
                if manifest.is_some() {
                    "the archive has an analysis.json member that the manifest does not name (it was added)"
                } else {
                    "the archive has an analysis.json member but no readable manifest names it"
                },
            ));
        }
    }

    // The journal chain (a SHA-256 over each event's re-serialized body) and the Merkle root
    // are the costly checks of a many-file bundle (100 000 events and leaves). For a big enough
    // manifest (a thread per bundle made `verify --store --all` over 10 000 small bundles 20%
    // slower) a helper thread checks the first half of the chain and the root while this one
    // matches blobs and entries and then checks the second half. Each event is checked against
    // its predecessor's recorded hash, so the halves are independent; findings are reported
    // in the same order as by one thread.
    let split = |m: &Manifest| m.journal.len() / 2;
    let costly = |m: &Manifest| (check_chain(m.journal.get(..split(m)).unwrap_or_default()), merkle::root(&m.entries));
    std::thread::scope(|s| {
        let helper =
            manifest.as_ref().filter(|m| m.entries.len() + m.journal.len() >= PARALLEL_CHECKS_FROM).and_then(|m| {
                std::thread::Builder::new().name("custody-check".into()).spawn_scoped(s, move || costly(m)).ok()
            });
        let fs = &mut out.findings;
        // Blob contents.
        for b in &scan.blobs {
            if b.claimed != b.actual {
                fs.push(err(
                    FindingKind::BlobHashMismatch,
                    blob_member(&b.claimed),
                    format!("content hashes to {}, not to its name", b.actual.hex()),
                ));
            }
        }
        let archive_broken = fs.iter().any(|x| x.level == Level::Error && x.kind.check() == "archive");
        let n = scan.blobs.len();
        out.details.push((
            "blobs",
            match (archive_broken, n) {
                (true, 0) => "not checked: no blob could be read before the archive's error".into(),
                (true, n) => format!("{n} blob(s) read before the archive's error, each SHA-256 matching its name"),
                (false, n) => format!("{n} blob(s), every SHA-256 matches its name"),
            },
        ));
        // With nothing read, the check did not run (it is not a pass).
        if n > 0 || !archive_broken {
            out.ran.push("blobs");
        }

        if let Some(m) = &manifest {
            out.ran.extend(["entries", "journal", "merkle"]);
            // Entries: sorted, unique, each mapped to a blob of the right size.
            let mut strictly_sorted = true;
            for w in m.entries.windows(2) {
                if w[0].path == w[1].path {
                    strictly_sorted = false;
                    fs.push(err(FindingKind::EntryDuplicate, &w[1].path, "this path is listed twice in the manifest"));
                } else if w[0].path > w[1].path {
                    strictly_sorted = false;
                    fs.push(err(FindingKind::EntriesUnsorted, &w[1].path, "manifest entries are not sorted by path"));
                }
            }
            let no_duplicate_members = !scan.problems.iter().any(|p| matches!(p, ArchiveProblem::Duplicate { .. }));
            let distinct = if no_duplicate_members && blobs_in_entry_order(&m.entries, &scan.blobs) {
                m.entries.len()
            } else {
                match_entries_to_blobs(&m.entries, &scan.blobs, fs)
            };
            out.details.push((
                "entries",
                format!("{} entries ↔ {distinct} blobs, none missing, extra or duplicated", m.entries.len()),
            ));

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
                fs.push(err(FindingKind::JournalBroken, format!("journal[{i}]"), what));
            }
            if !(strictly_sorted && journal_in_entry_order(&m.entries, &m.journal)) {
                match_entries_to_journal(&m.entries, &m.journal, fs);
            }
            out.details.push(("journal", format!("{} events, chain intact", m.journal.len())));

            // Merkle root.
            if root != m.merkle_root {
                fs.push(err(
                    FindingKind::MerkleMismatch,
                    "merkle_root",
                    format!("recomputed root {} differs from the manifest's {}", root.hex(), m.merkle_root.hex()),
                ));
            }
            out.details.push(("merkle", format!("root {} over {} entries", root.hex(), m.entries.len())));
        }
    });
    // A v2 manifest in memory carries its verified analysis.json in `analysis` when the caller
    // asked for it (`Limits::keep_analysis`), so callers see one shape for v1 and v2.
    let mut manifest = manifest;
    if let (Some(m), Some(bytes)) = (manifest.as_mut(), analysis_bytes) {
        match serde_json::from_slice(&bytes) {
            Ok(v) => m.analysis = Some(v),
            Err(e) => out.findings.push(f(
                Level::Warning,
                FindingKind::AnalysisMismatch,
                ANALYSIS_MEMBER,
                format!("analysis.json matches the manifest but is not JSON ({e}); it is not shown"),
            )),
        }
    }
    out.manifest = manifest;
    out
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
fn match_entries_to_blobs(entries: &[Entry], blobs: &[BlobMember], fs: &mut Vec<Finding>) -> usize {
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
            None => fs.push(err(
                FindingKind::BlobMissing,
                &e.path,
                format!("its blob {} is not in the archive", blob_member(&e.sha256)),
            )),
            Some(b) if b.size != e.size => fs.push(err(
                FindingKind::BlobSizeMismatch,
                &e.path,
                format!("manifest says {} bytes, blob has {}", e.size, b.size),
            )),
            _ => {}
        }
    }
    for b in blobs {
        if !needed.contains(&b.claimed) {
            fs.push(err(FindingKind::BlobExtra, blob_member(&b.claimed), "blob not referenced by any manifest entry"));
        }
    }
    let actual_order: Vec<Sha256> = blobs.iter().map(|b| b.claimed).filter(|c| needed.contains(c)).collect();
    let mut dedup = HashSet::new();
    let actual_order: Vec<Sha256> = actual_order.into_iter().filter(|c| dedup.insert(*c)).collect();
    if actual_order.len() == expected_order.len() && actual_order != expected_order {
        fs.push(err(
            FindingKind::BlobOrder,
            "blobs/",
            "blob members are not in manifest order (the archive was reordered)",
        ));
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

/// Every entry has a `collected` event in the journal with its digest and size, and there are
/// as many such events (by path) as entries.
fn match_entries_to_journal(entries: &[Entry], journal: &[JournalEvent], fs: &mut Vec<Finding>) {
    let collected: HashMap<&str, (Option<Sha256>, Option<u64>)> =
        collected_events(journal).filter_map(|e| e.path.as_deref().map(|p| (p, (e.sha256, e.size)))).collect();
    for e in entries {
        match collected.get(e.path.as_str()) {
            Some((Some(s), Some(z))) if *s == e.sha256 && *z == e.size => {}
            _ => fs.push(err(
                FindingKind::JournalMismatch,
                &e.path,
                "no matching `collected` event in the custody journal",
            )),
        }
    }
    if collected.len() != entries.len() {
        fs.push(err(
            FindingKind::JournalMismatch,
            "journal",
            format!("{} `collected` events for {} entries", collected.len(), entries.len()),
        ));
    }
}

/// Manifest size from which its SHA-256 is computed on a helper thread while it is parsed
/// ([`check_bundle`]; a thread per bundle costs more than hashing a small manifest).
const PARALLEL_HASH_FROM: usize = 4 << 20;

/// Entries plus journal events from which a bundle's journal chain and Merkle root are checked
/// on a helper thread ([`check_bundle`]).
const PARALLEL_CHECKS_FROM: usize = 4096;

/// Verify a bundle file.
pub fn verify_file(
    path: &std::path::Path,
    trust: &Trust,
    opts: &Options,
) -> Result<(Report, Option<Manifest>), std::io::Error> {
    let file = std::fs::File::open(path)?;
    let c = check_bundle(file, trust, opts, None);
    let subject = Subject {
        kind: "file".into(),
        path: Some(path.display().to_string()),
        bundle: Some(c.digest.to_string()),
        size: Some(c.size),
        store: None,
    };
    let mut ran = c.ran.clone();
    ran.retain(|n| *n != "ledger");
    let mut details = c.details.clone();
    details.push(("ledger", "not checked: pass --store URL DIGEST to check the bundle's ledger position".into()));
    let mut r = Report::build(subject, c.findings, &ran, &report::BUNDLE_CHECKS, &details);
    r.signer = c.signer;
    Ok((r, c.manifest))
}

/// Ledger findings for one bundle given the loaded ledger.
fn ledger_findings(
    entries: &[StoredEntry],
    id: &BundleId,
    manifest: Option<&Manifest>,
    size: u64,
    opts: &Options,
) -> (Vec<Finding>, Option<report::LedgerInfo>) {
    let mut fs = Vec::new();
    let matching: Vec<&StoredEntry> =
        entries.iter().filter(|e| matches!(&e.parsed, Ok((_, le)) if le.bundle == *id)).collect();
    if matching.is_empty() {
        fs.push(err(FindingKind::LedgerMissing, bundle_key(id), "the bundle is in the store but no ledger entry records it (run `custody store repair` to adopt it, or investigate)"));
        return (fs, None);
    }
    if matching.len() > 1 {
        let ps: Vec<String> = matching.iter().map(|e| e.position.to_string()).collect();
        fs.push(err(
            FindingKind::LedgerDuplicateBundle,
            bundle_key(id),
            format!("the bundle is recorded at several ledger positions ({}): a replay", ps.join(", ")),
        ));
    }
    let me = matching[0];
    let Ok((_, le)) = &me.parsed else { return (fs, None) };
    let info = report::LedgerInfo {
        position: me.position,
        entry: me.id.to_string(),
        length: entries.last().map(|e| e.position).unwrap_or(0),
    };
    if le.bundle_size != size {
        fs.push(err(
            FindingKind::LedgerBundleMismatch,
            ledger::entry_key(me.position),
            format!("ledger says {} bytes, bundle has {size}", le.bundle_size),
        ));
    }
    if let Some(m) = manifest {
        if le.sealed_at != m.sealed_at {
            fs.push(err(
                FindingKind::LedgerBundleMismatch,
                ledger::entry_key(me.position),
                "ledger sealed_at differs from the manifest's",
            ));
        }
        if m.sealed_at > le.appended_at + opts.max_skew {
            fs.push(err(
                FindingKind::ClockSkew,
                ledger::entry_key(me.position),
                format!(
                    "bundle sealed at {} but recorded at {}: more than the allowed skew",
                    m.sealed_at, le.appended_at
                ),
            ));
        }
        if let Some(next) = entries.iter().find(|e| e.position == me.position + 1) {
            if let Ok((_, ne)) = &next.parsed {
                if m.sealed_at > ne.appended_at + opts.max_skew {
                    fs.push(err(
                        FindingKind::ClockSkew,
                        ledger::entry_key(next.position),
                        format!(
                            "bundle sealed at {} is later than its ledger successor's time {}",
                            m.sealed_at, ne.appended_at
                        ),
                    ));
                }
            }
        }
        // Where the bundle may sit: right after the head it recorded when sealing, or later only
        // if every entry in between was appended while it was being sealed (a concurrent
        // preserve, or `store repair` of an interrupted one). An entry in between that is older
        // than the sealing means the sealer must have seen it: the bundle was not sealed against
        // this ledger (replayed from another ledger or position, or the ledger was rewritten).
        let (from, link_ok) = match &m.ledger_prev {
            Some(link) => {
                let at = entries.iter().find(|e| e.position == link.position);
                let ok = link.position < me.position
                    && at.is_some_and(|e| {
                        e.id == link.entry && matches!(&e.parsed, Ok((_, x)) if x.bundle == link.bundle)
                    });
                if !ok {
                    fs.push(err(FindingKind::LedgerLinkMismatch, MANIFEST_MEMBER, format!("the manifest says the ledger head at sealing was position {} ({}), which does not match this ledger before position {}", link.position, link.entry, me.position)));
                }
                (link.position + 1, ok)
            }
            None => (1, true),
        };
        if link_ok && from < me.position {
            let earliest = m.collector.started_at - opts.max_skew;
            let stale: Vec<u64> = entries
                .iter()
                .filter(|e| e.position >= from && e.position < me.position)
                .filter(|e| !matches!(&e.parsed, Ok((_, x)) if x.appended_at >= earliest))
                .map(|e| e.position)
                .collect();
            let head = if from == 1 { "an empty ledger".to_string() } else { format!("position {}", from - 1) };
            if stale.is_empty() {
                fs.push(f(
                    Level::Warning,
                    FindingKind::LedgerLinkMismatch,
                    MANIFEST_MEMBER,
                    format!(
                        "the bundle was sealed against {head} but sits at position {}: entries {from}..{} were appended while it was being sealed (a concurrent preserve)",
                        me.position,
                        me.position - 1
                    ),
                ));
            } else {
                let ps: Vec<String> = stale.iter().map(|p| p.to_string()).collect();
                fs.push(err(
                    FindingKind::LedgerLinkMismatch,
                    MANIFEST_MEMBER,
                    format!(
                        "the bundle was sealed against {head} but sits at position {}, and entries {} were appended before its sealing began ({}, allowed skew {}s): the bundle was not sealed against this ledger (a replay, or a rewritten ledger)",
                        me.position,
                        ps.join(", "),
                        m.collector.started_at,
                        opts.max_skew.num_seconds()
                    ),
                ));
            }
        }
    }
    (fs, Some(info))
}

/// Verify one ledger entry's shape and signature against `trust`, and its link to `prev`.
fn entry_findings(e: &StoredEntry, prev: Option<&StoredEntry>, trust: &Trust) -> Vec<Finding> {
    let mut fs = Vec::new();
    let key = ledger::entry_key(e.position);
    match &e.parsed {
        Err(p) => fs.push(err(FindingKind::LedgerEntryInvalid, &key, p.to_string())),
        Ok((env, le)) => {
            if le.position != e.position {
                fs.push(err(
                    FindingKind::LedgerPositionMismatch,
                    &key,
                    format!("the entry says position {}, but is stored at {}", le.position, e.position),
                ));
            }
            match trust.find(&env.keyid) {
                None => fs.push(err(
                    FindingKind::LedgerUntrustedSigner,
                    &key,
                    format!("signed by untrusted key {}", env.keyid.hex()),
                )),
                Some(k) => {
                    if k.key
                        .verify_strict(&pae(&env.payload_type, &env.payload), &Signature::from_bytes(&env.sig))
                        .is_err()
                    {
                        fs.push(err(FindingKind::LedgerBadSignature, &key, "the entry's signature does not verify"));
                    }
                }
            }
            let expected = prev.map(|p| p.id);
            if le.prev != expected {
                fs.push(err(
                    FindingKind::LedgerLinkBroken,
                    &key,
                    "prev does not equal the hash of the previous ledger entry",
                ));
            }
        }
    }
    fs
}

/// One stored ledger entry checked on its own and against `prev`, the entry stored just
/// before it (for `custody list`): it parses, sits at the position it names, is signed by a
/// pinned key with a good signature, and links to `prev`. The findings; none when valid.
pub fn check_ledger_entry(e: &StoredEntry, prev: Option<&StoredEntry>, trust: &Trust) -> Vec<Finding> {
    entry_findings(e, prev, trust)
}

/// Verify a bundle in a store by digest, including its ledger position.
pub async fn verify_in_store(
    store: &Store,
    id: &BundleId,
    trust: &Trust,
    opts: &Options,
) -> Result<(Report, Option<Manifest>), StoreError> {
    let entries = ledger::load_all(store).await?;
    let subject = Subject {
        kind: "store".into(),
        store: Some(store.url().into()),
        bundle: Some(id.to_string()),
        path: None,
        size: None,
    };
    let Some(fetched) = store.fetch_bundle(id).await? else {
        let fs = vec![err(FindingKind::BundleMissing, bundle_key(id), "no such bundle in the store: check the digest (`custody list --store URL` lists the bundles the ledger records) or the store URL")];
        let r = Report::build(subject, fs, &[], &report::BUNDLE_CHECKS, &[]);
        return Ok((r, None));
    };
    let (mut r, m) = verify_fetched(fetched.path(), id, &entries, trust, opts, subject)?;
    let mut keys = vec![bundle_key(id)];
    if let Some(l) = &r.ledger {
        keys.push(ledger::entry_key(l.position));
    }
    add_retention(store, &keys, &mut r).await;
    Ok((r, m))
}

/// Read the Object Lock state of `keys` (S3 stores only) into the report: one line per
/// object, a `retention` check, and a warning for each object that is not (or no longer)
/// locked. Retention is evidence about the store, not about the bundle: it never fails the
/// verdict.
async fn add_retention(store: &Store, keys: &[String], r: &mut Report) {
    if store.s3_admin().is_none() {
        return;
    }
    let now = chrono::Utc::now();
    let mut fs = Vec::new();
    let mut lines = Vec::new();
    let mut earliest: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
    let mut locked = 0usize;
    for k in keys {
        match store.object_retention(k).await {
            Ok(crate::store::RetentionState::Object(o)) => {
                lines.push(report::RetentionLine {
                    key: k.clone(),
                    mode: o.mode.clone(),
                    retain_until: o.retain_until.clone(),
                    legal_hold: o.legal_hold.clone(),
                });
                let held = o.legal_hold.as_deref() == Some("ON");
                match (&o.mode, o.until()) {
                    (Some(mode), Some(until)) if until > now => {
                        locked += 1;
                        if earliest.as_ref().map_or(true, |(e, _)| until < *e) {
                            earliest = Some((until, mode.clone()));
                        }
                    }
                    _ if held => locked += 1,
                    (Some(_), Some(until)) => fs.push(f(
                        Level::Warning,
                        FindingKind::RetentionMissing,
                        k,
                        format!("its Object Lock retention ended on {until}: it can now be deleted"),
                    )),
                    _ => fs.push(f(
                        Level::Warning,
                        FindingKind::RetentionMissing,
                        k,
                        "the server reports no Object Lock retention for this object: it can be deleted or overwritten by anyone allowed to (preserve with --retention DAYS, or set a default retention on the bucket)",
                    )),
                }
            }
            // Never skipped: an audit that reads other keys than the ones written must not
            // pass by finding nothing.
            Ok(_) => fs.push(f(
                Level::Warning,
                FindingKind::RetentionMissing,
                k,
                "not found where its retention was read: its lock could not be checked",
            )),
            Err(e) => fs.push(f(
                Level::Warning,
                FindingKind::RetentionMissing,
                k,
                format!("cannot read its Object Lock retention: {}", crate::error_text(&e)),
            )),
        }
    }
    let detail = match &earliest {
        Some((until, mode)) if locked == keys.len() => {
            format!("{locked} object(s) locked; earliest release {until} ({mode})")
        }
        _ => format!("{locked} of {} object(s) locked", keys.len()),
    };
    let status = if fs.is_empty() { report::CheckStatus::Pass } else { report::CheckStatus::Warn };
    let detail = if fs.is_empty() { detail } else { format!("{detail}; {} warning(s)", fs.len()) };
    r.checks.push(report::Check { name: "retention", status, detail });
    r.findings.extend(fs);
    r.retention = lines;
}

fn verify_fetched(
    path: &std::path::Path,
    id: &BundleId,
    entries: &[StoredEntry],
    trust: &Trust,
    opts: &Options,
    mut subject: Subject,
) -> Result<(Report, Option<Manifest>), StoreError> {
    let file =
        std::fs::File::open(path).map_err(|source| StoreError::Io { op: "cannot open", path: path.into(), source })?;
    let c = check_bundle(file, trust, opts, None);
    let mut fs = c.findings;
    if c.digest != *id {
        fs.push(err(
            FindingKind::BundleDigestMismatch,
            bundle_key(id),
            format!("the object's bytes hash to {}, not to its name", c.digest),
        ));
    }
    let (lf, info) = ledger_findings(entries, id, c.manifest.as_ref(), c.size, opts);
    fs.extend(lf);
    if let Some(i) = &info {
        if let Some(e) = entries.iter().find(|e| e.position == i.position) {
            let prev = entries.iter().find(|p| p.position + 1 == e.position);
            fs.extend(entry_findings(e, prev, trust));
        }
    }
    subject.size = Some(c.size);
    let mut ran = c.ran.clone();
    ran.push("ledger");
    let mut details = c.details.clone();
    if let Some(i) = &info {
        details.push(("ledger", format!("position {} of {}, links intact", i.position, i.length)));
    }
    let mut order: Vec<&'static str> = report::BUNDLE_CHECKS.to_vec();
    order.insert(0, "bundle_digest");
    ran.push("bundle_digest");
    details.push(("bundle_digest", "object bytes hash to the object's name".into()));
    let mut r = Report::build(subject, fs, &ran, &order, &details);
    r.signer = c.signer;
    r.ledger = info;
    Ok((r, c.manifest))
}

/// Audit a whole ledger: contiguity, links, signatures, every bundle present and verified
/// (`read_data = false` only checks presence and size).
pub async fn verify_all(store: &Store, trust: &Trust, opts: &Options, read_data: bool) -> Result<Report, StoreError> {
    verify_all_with(store, trust, opts, read_data, None).await
}

/// [`verify_all`], and compare the ledger with a checkpoint file's bytes (taken earlier by
/// `custody checkpoint`): a ledger shorter than the checkpoint is a rollback, another entry
/// at its position a fork. The checkpoint must be signed by a trusted key.
pub async fn verify_all_with(
    store: &Store,
    trust: &Trust,
    opts: &Options,
    read_data: bool,
    checkpoint: Option<&[u8]>,
) -> Result<Report, StoreError> {
    let entries = ledger::load_all(store).await?;
    let mut fs = Vec::new();
    if let Some(bytes) = checkpoint {
        fs.extend(checkpoint_findings(&entries, bytes, trust));
    }
    let mut lines = Vec::new();
    let mut expected = 1u64;
    let mut prev: Option<&StoredEntry> = None;
    let mut seen_bundles: HashMap<BundleId, u64> = HashMap::new();
    for e in &entries {
        if e.position != expected {
            fs.push(err(
                FindingKind::LedgerGap,
                ledger::entry_key(expected),
                format!(
                    "ledger positions jump from {} to {}: entries are missing",
                    expected.saturating_sub(1),
                    e.position
                ),
            ));
        }
        expected = e.position + 1;
        fs.extend(entry_findings(e, prev.filter(|p| p.position + 1 == e.position), trust));
        prev = Some(e);
        let Ok((_, le)) = &e.parsed else { continue };
        if let Some(first) = seen_bundles.insert(le.bundle, e.position) {
            fs.push(err(
                FindingKind::LedgerDuplicateBundle,
                ledger::entry_key(e.position),
                format!("bundle {} is already recorded at position {first}: a replay", le.bundle),
            ));
        }
    }
    for e in &entries {
        let Ok((_, le)) = &e.parsed else { continue };
        let (status, errors) = if read_data {
            match store.fetch_bundle(&le.bundle).await? {
                None => {
                    fs.push(err(
                        FindingKind::BundleMissing,
                        bundle_key(&le.bundle),
                        format!("ledger position {} names a bundle that is not in the store (deleted?)", e.position),
                    ));
                    ("missing", 1)
                }
                Some(fetched) => {
                    let sub = Subject::default();
                    let (r, _) = verify_fetched(fetched.path(), &le.bundle, &entries, trust, opts, sub)?;
                    let mut errors = 0;
                    for mut x in r.findings {
                        if x.level == Level::Error {
                            errors += 1;
                        }
                        // Duplicates are reported once by the ledger pass above.
                        if x.kind == FindingKind::LedgerDuplicateBundle
                            || x.kind.check() == "ledger"
                                && x.location.starts_with("ledger/")
                                && x.kind != FindingKind::ClockSkew
                                && x.kind != FindingKind::LedgerBundleMismatch
                        {
                            continue;
                        }
                        x.location = format!("{} {}", le.bundle, x.location);
                        fs.push(x);
                    }
                    (if errors == 0 { "intact" } else { "failed" }, errors)
                }
            }
        } else {
            match store.head(&bundle_key(&le.bundle)).await? {
                None => {
                    fs.push(err(
                        FindingKind::BundleMissing,
                        bundle_key(&le.bundle),
                        format!("ledger position {} names a bundle that is not in the store (deleted?)", e.position),
                    ));
                    ("missing", 1)
                }
                Some(sz) if sz != le.bundle_size => {
                    fs.push(err(
                        FindingKind::LedgerBundleMismatch,
                        bundle_key(&le.bundle),
                        format!("object is {sz} bytes, ledger says {}", le.bundle_size),
                    ));
                    ("failed", 1)
                }
                Some(_) => ("present", 0),
            }
        };
        lines.push(report::BundleLine {
            position: e.position,
            bundle: le.bundle.to_string(),
            status: status.into(),
            errors,
        });
    }
    // Bundles nobody recorded: a crash between storing a bundle and appending its entry.
    let objects = store.list("bundles/").await?;
    if entries.is_empty() && objects.is_empty() {
        fs.push(f(
            Level::Warning,
            FindingKind::EmptyStore,
            "ledger/",
            "the store holds no ledger entry and no bundle: nothing was verified. Check the store URL: an empty directory, bucket or prefix (a mistyped S3 prefix, say) reads as an empty store",
        ));
    }
    for (k, _) in objects {
        let hex = k.strip_prefix("bundles/").and_then(|s| s.strip_suffix(".tar.zst")).unwrap_or("");
        match Sha256::parse_canonical_hex(hex) {
            Some(d) if !seen_bundles.contains_key(&BundleId(d)) => fs.push(f(Level::Warning, FindingKind::UnreferencedBundle, k.clone(), "a bundle in the store that no ledger entry records (an interrupted preserve?); `custody store repair` adopts it")),
            Some(_) => {}
            None => fs.push(f(Level::Warning, FindingKind::StrayObject, crate::store::address::display_key(&k), "an object under bundles/ that is not named like a bundle (bundles/<sha256 hex>.tar.zst): junk, or planted; it is not evidence")),
        }
    }
    // Junk under ledger/ (listed with raw keys, so one odd key cannot block the audit).
    for (k, _) in store.list("ledger/").await? {
        if ledger::parse_entry_key(&k).is_none() {
            fs.push(f(Level::Warning, FindingKind::StrayObject, crate::store::address::display_key(&k), "an object under ledger/ that is not named like a ledger entry (ledger/<20 digits>.json): junk, or planted; it is not part of the ledger"));
        }
    }
    let subject = Subject { kind: "ledger".into(), store: Some(store.url().into()), ..Default::default() };
    let order = ["ledger", "bundles"];
    let n = entries.len();
    let details = vec![
        ("ledger", format!("{n} entries, contiguous from 1, every link and signature intact")),
        (
            "bundles",
            format!(
                "{n} bundle(s) {}",
                if read_data { "present and verified" } else { "present with the recorded size (not re-hashed)" }
            ),
        ),
    ];
    let fs: Vec<Finding> = fs;
    let mut r = Report::build(subject, fs.clone(), &order, &order, &details);
    // Per-bundle failures belong to the `bundles` line.
    let bundle_errors: usize = lines.iter().map(|l| l.errors).sum();
    if let Some(c) = r.checks.iter_mut().find(|c| c.name == "bundles") {
        if bundle_errors > 0 {
            c.status = report::CheckStatus::Fail;
            c.detail =
                format!("{} of {n} bundle(s) failed or are missing", lines.iter().filter(|l| l.errors > 0).count());
        }
    }
    if let Some(c) = r.checks.iter_mut().find(|c| c.name == "ledger") {
        let ledger_errors = fs
            .iter()
            .filter(|x| {
                x.level == Level::Error
                    && x.kind.check() == "ledger"
                    && (x.location.starts_with("ledger/") || x.location.starts_with("checkpoint"))
            })
            .count();
        if ledger_errors == 0 && c.status == report::CheckStatus::Fail {
            c.status = report::CheckStatus::Pass;
            c.detail = details[0].1.clone();
        }
    }
    r.bundles = lines;
    if store.s3_admin().is_some() {
        let mut keys: Vec<String> = Vec::new();
        for e in &entries {
            keys.push(ledger::entry_key(e.position));
            if let Ok((_, le)) = &e.parsed {
                keys.push(bundle_key(&le.bundle));
            }
        }
        add_retention(store, &keys, &mut r).await;
    }
    Ok(r)
}

/// Check a checkpoint's signature and compare the ledger with it.
fn checkpoint_findings(entries: &[StoredEntry], bytes: &[u8], trust: &Trust) -> Vec<Finding> {
    use crate::store::checkpoint::{self, Comparison};
    let mut fs = Vec::new();
    let (env, cp) = match checkpoint::parse(bytes) {
        Ok(x) => x,
        Err(e) => {
            fs.push(err(
                FindingKind::LedgerEntryInvalid,
                "checkpoint",
                format!("{}: cannot compare the ledger with it", crate::error_text(&e)),
            ));
            return fs;
        }
    };
    match trust.find(&env.keyid) {
        None => fs.push(err(
            FindingKind::LedgerUntrustedSigner,
            "checkpoint",
            format!("the checkpoint is signed by untrusted key {}; pin it with --trusted-key", env.keyid.hex()),
        )),
        Some(k) => {
            if k.key.verify_strict(&pae(&env.payload_type, &env.payload), &Signature::from_bytes(&env.sig)).is_err() {
                fs.push(err(
                    FindingKind::LedgerBadSignature,
                    "checkpoint",
                    "the checkpoint's signature does not verify",
                ));
            }
        }
    }
    match checkpoint::compare(entries, &cp) {
        Comparison::Consistent => {}
        Comparison::RolledBack { now } => fs.push(err(
            FindingKind::Rollback,
            ledger::entry_key(cp.position),
            format!(
                "the ledger has {now} entries, but a checkpoint taken at {} recorded {}: entries were removed (a rollback to an older head)",
                cp.created_at, cp.position
            ),
        )),
        Comparison::Forked { found } => fs.push(err(
            FindingKind::Rollback,
            ledger::entry_key(cp.position),
            format!(
                "the checkpoint taken at {} recorded entry {} at position {}, but the ledger holds {} there: the ledger was rewritten (a fork)",
                cp.created_at,
                cp.entry.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                cp.position,
                found.map(|e| e.to_string()).unwrap_or_else(|| "nothing".into())
            ),
        )),
    }
    fs
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

    fn kinds(fs: &[Finding]) -> Vec<FindingKind> {
        fs.iter().map(|f| f.kind).collect()
    }

    /// The slow check's findings and blob count, and whether the fast path accepted.
    fn blob_check(e: &[Entry], b: &[BlobMember]) -> (bool, Vec<FindingKind>, usize) {
        let mut fs = Vec::new();
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
        let mut fs = Vec::new();
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
}
