//! Sealed evidence for tooling: [`Bundle::open`] verifies a bundle and gives a
//! [`VerifiedBundle`], the only way to read its manifest, analysis, events and files through
//! the library.
//!
//! A [`VerifiedBundle`] cannot be built any other way: its fields are private and its only
//! constructors verify in full first (the archive, every blob's digest, the manifest's
//! signature by a pinned key, the analysis digest; in a store also the bundle's ledger entry
//! and the ledger's chain). Reading a file or a cited record afterwards reads the archive
//! again and hashes every blob again, so a bundle file swapped after verification yields an
//! error, never other bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::analysis::{Analysis, Citation, Event, ANALYSIS_FORMAT_V2};
use crate::cite::CiteError;
use crate::digest::{BundleId, Sha256};
use crate::extract::{ExtractError, Extracted};
use crate::manifest::{Identifier, Manifest, SupplementOf};
use crate::read::archive::{read_archive, BlobVisitor, Limits};
use crate::store::{Fetched, Store, StoreError};
use crate::verify::{Options, Report, Trust};

/// The largest `analysis.json` [`Bundle::open`] keeps to read as the typed [`Analysis`] (the
/// analyzer's lists are capped: the 1 GiB benchmark incident writes 29 MB). A larger one is
/// still verified (its digest) but not parsed: [`VerifiedBundle::analysis`] says why.
pub const MAX_ANALYSIS: u64 = 32 << 20;

/// Opens sealed bundles; every way of opening one verifies it first. See [`VerifiedBundle`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Bundle;

/// Why a bundle could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The bundle file could not be read.
    #[error("cannot read the bundle file {path}: check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be read.
    #[error("cannot read bundle {bundle} from the store")]
    Store {
        /// The bundle.
        bundle: BundleId,
        /// Why.
        source: Box<StoreError>,
    },
    /// The bundle did not verify: nothing of it is given out. The report says what failed.
    #[error("bundle {bundle} did not verify ({failed}): nothing of it was read; `custody verify` lists the findings")]
    NotIntact {
        /// The bundle digest (of the bytes read), when known.
        bundle: String,
        /// The checks that failed.
        failed: String,
        /// The verification report.
        report: Box<Report>,
    },
    /// The bundle verified in the store but disappeared before its copy for reading was
    /// fetched.
    #[error("bundle {bundle} disappeared from {store} after it was verified: verify it again (`custody verify --store URL --all` reports deleted bundles)")]
    Disappeared {
        /// The bundle.
        bundle: BundleId,
        /// The store (credentials redacted).
        store: String,
    },
}

/// Why a bundle's typed analysis is not available ([`VerifiedBundle::analysis`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoAnalysis {
    /// Sealed without one (`preserve --no-analyze`), or larger than the bound it was opened
    /// with ([`MAX_ANALYSIS`] by default).
    #[error("the bundle has no analysis.json that was read (sealed with --no-analyze, or larger than the {} MiB read); `custody analyze DIGEST --store URL` analyses its sealed evidence", limit >> 20)]
    NotRead {
        /// The bound it was opened with.
        limit: u64,
    },
    /// An older format (`custody-analysis/v1`, embedded in the manifest), read as JSON only.
    #[error("the bundle's analysis is {0}, not {ANALYSIS_FORMAT_V2}: only its JSON is available (the manifest's `analysis`); `custody analyze DIGEST --store URL` seals a {ANALYSIS_FORMAT_V2} re-analysis")]
    OtherFormat(String),
    /// Its digest verified, but it does not parse as the typed model.
    #[error("the bundle's analysis.json does not match {ANALYSIS_FORMAT_V2}: {0}")]
    Invalid(String),
}

/// Why a file of a verified bundle could not be read ([`VerifiedBundle::copy_file`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The manifest lists no file by that path.
    #[error("the bundle has no file {0:?}: its manifest lists every sealed path (VerifiedBundle::manifest().entries)")]
    NoSuchFile(String),
    /// The bundle file could not be read again.
    #[error("cannot read the bundle file {path} again")]
    Read {
        /// The bundle file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the bytes out failed.
    #[error("cannot write the bytes of {path} out")]
    Write {
        /// The sealed path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file's bytes, read again, no longer have the digest the verified manifest gives it
    /// (the bundle file was replaced after verification), or the archive no longer holds it.
    /// Bytes already written to the output must be discarded.
    #[error("{path} is missing from the bundle or its bytes changed since verification (SHA-256 {sha256} expected): discard what was written and verify the bundle again")]
    Changed {
        /// The sealed path.
        path: String,
        /// The digest the manifest gives it.
        sha256: Sha256,
    },
}

/// Where a verified bundle's bytes are read from again.
enum Source {
    /// A bundle file the caller named.
    File(PathBuf),
    /// The store's own file (local store) or a temporary copy (removed when dropped).
    Stored(Fetched),
}

/// A bundle that verified in full: only [`Bundle::open`], [`Bundle::open_with`] and
/// [`Bundle::open_in_store`] make one.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use custody::keys::PublicKey;
/// use custody::verify::Trust;
/// use custody::Bundle;
///
/// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library");
/// let key = PublicKey::load(&dir.join("signer.pub"))?;
/// let bundle = Bundle::open(dir.join("incident.tar.zst"), &Trust::new(vec![key]))?;
///
/// println!("{} sealed at {}", bundle.digest(), bundle.manifest().sealed_at);
/// for id in bundle.identifiers() {
///     println!("{}: {:?}", id.name, id.value);
/// }
/// let analysis = bundle.analysis()?;
/// assert!(!analysis.events.is_empty());
/// # Ok(()) }
/// ```
pub struct VerifiedBundle {
    digest: BundleId,
    report: Report,
    manifest: Manifest,
    analysis: Result<Analysis, NoAnalysis>,
    source: Source,
    /// The archive limits it verified under: its bytes are read again under the same ones.
    limits: Limits,
}

impl Bundle {
    /// Verifies the bundle file at `path` with the keys of `trust` (its ledger position is
    /// not checked: a file has no ledger; [`Bundle::open_in_store`] checks it) and keeps its
    /// analysis up to [`MAX_ANALYSIS`] bytes.
    pub fn open(path: impl AsRef<Path>, trust: &Trust) -> Result<VerifiedBundle, OpenError> {
        Bundle::open_with(path, trust, &default_options())
    }

    /// [`Bundle::open`] with verification options, used as given: an expected digest, the
    /// allowed clock skew, archive limits (also for every later read of the bundle).
    /// `limits.keep_analysis` is the largest `analysis.json` parsed — 0 in
    /// `Options::default()`, which reads no analysis: set it to [`MAX_ANALYSIS`] (what
    /// [`Bundle::open`] uses) to read one.
    pub fn open_with(path: impl AsRef<Path>, trust: &Trust, opts: &Options) -> Result<VerifiedBundle, OpenError> {
        let path = path.as_ref();
        let (report, manifest) = crate::verify::verify_file(path, trust, opts)
            .map_err(|source| OpenError::Read { path: path.into(), source })?;
        VerifiedBundle::new(report, manifest, opts, Source::File(path.into()))
    }

    /// Verifies the bundle `id` in `store`: in full, and its ledger entry, its position and
    /// the ledger's whole chain. Its bytes are read again from the store's file (local store)
    /// or, from object storage, from a temporary copy written while they were downloaded and
    /// verified (one download; removed with the [`VerifiedBundle`]).
    pub async fn open_in_store(store: &Store, id: &BundleId, trust: &Trust) -> Result<VerifiedBundle, OpenError> {
        Bundle::open_in_store_with(store, id, trust, &default_options()).await
    }

    /// [`Bundle::open_in_store`] with verification options (the expected digest is the
    /// bundle's name; `limits.keep_analysis` is the largest `analysis.json` parsed: 0 for
    /// none, when only the files are wanted).
    pub async fn open_in_store_with(
        store: &Store,
        id: &BundleId,
        trust: &Trust,
        opts: &Options,
    ) -> Result<VerifiedBundle, OpenError> {
        let store_err = |source| OpenError::Store { bundle: *id, source: Box::new(source) };
        // The bytes that verified are kept (a temporary copy written as the ranged reads
        // arrive): one download, and later reads are of that very object.
        let (report, manifest, kept) =
            crate::verify::verify_in_store_keeping(store, id, trust, opts).await.map_err(store_err)?;
        if !report.intact() || manifest.is_none() {
            return Err(not_intact(report));
        }
        let fetched =
            kept.ok_or_else(|| OpenError::Disappeared { bundle: *id, store: crate::store::redact(store.url()) })?;
        VerifiedBundle::new(report, manifest, opts, Source::Stored(fetched))
    }
}

fn default_options() -> Options {
    let mut opts = Options::default();
    opts.limits.keep_analysis = MAX_ANALYSIS;
    opts
}

/// The failed checks of a report that did not verify.
fn not_intact(report: Report) -> OpenError {
    let failed: Vec<&str> =
        report.checks.iter().filter(|c| c.status == crate::verify::report::CheckStatus::Fail).map(|c| c.name).collect();
    OpenError::NotIntact {
        bundle: report.subject.bundle.clone().unwrap_or_default(),
        failed: if failed.is_empty() { "no readable manifest".into() } else { failed.join(", ") },
        report: Box::new(report),
    }
}

impl std::fmt::Debug for VerifiedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedBundle")
            .field("digest", &self.digest)
            .field("path", &self.path())
            .field("files", &self.manifest.entries.len())
            .field("analysis", &self.analysis.as_ref().map(|a| a.events.len()))
            .finish_non_exhaustive()
    }
}

impl VerifiedBundle {
    fn new(report: Report, manifest: Option<Manifest>, opts: &Options, source: Source) -> Result<Self, OpenError> {
        let digest = report.subject.bundle.as_deref().and_then(|b| Sha256::parse(b).ok()).map(BundleId);
        let (Some(manifest), Some(digest), true) = (manifest, digest, report.intact()) else {
            return Err(not_intact(report));
        };
        let mut manifest = manifest;
        let analysis = typed_analysis(&manifest, opts.limits.keep_analysis);
        if analysis.is_ok() {
            // Held once: as the typed model, not also as its JSON.
            manifest.analysis = None;
        }
        Ok(VerifiedBundle { digest, report, manifest, analysis, source, limits: opts.limits.clone() })
    }

    /// The bundle digest: the SHA-256 of the bundle file's bytes, its name in a store.
    pub fn digest(&self) -> BundleId {
        self.digest
    }

    /// The verification report (every check passed; warnings may remain).
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The verified manifest. Its `analysis` JSON is empty when the typed analysis was read
    /// ([`VerifiedBundle::analysis`] holds it, once); it holds a `custody-analysis/v1`
    /// document of an older bundle.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The incident's identifiers as sealed (one per name, in the canonical order: found,
    /// given, unknown, conflicting or inferred, each with its sources).
    pub fn identifiers(&self) -> &[Identifier] {
        &self.manifest.incident.identifiers
    }

    /// The typed analysis (`custody-analysis/v2`), or why there is none.
    pub fn analysis(&self) -> Result<&Analysis, NoAnalysis> {
        self.analysis.as_ref().map_err(Clone::clone)
    }

    /// The incident's events in the analysis' order (none without a typed analysis). Each
    /// cites the sealed records that describe it: [`VerifiedBundle::resolve`] reads them.
    pub fn events(&self) -> &[Event] {
        self.analysis.as_ref().map_or(&[], |a| a.events.as_slice())
    }

    /// For a supplement (`custody analyze`): the evidence bundle whose records its analysis
    /// cites. Open that one to read them.
    pub fn supplement_of(&self) -> Option<&SupplementOf> {
        self.manifest.supplement_of.as_ref()
    }

    /// The archive limits it was verified under (every read uses them again).
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The bundle file its bytes are read from again (a temporary copy for a bundle opened in
    /// a remote store).
    pub fn path(&self) -> &Path {
        match &self.source {
            Source::File(p) => p,
            Source::Stored(f) => f.path(),
        }
    }

    /// Streams the sealed file `path` (as the manifest names it) into `out`, hashing it again
    /// on the way, and returns its size. Each call reads (decompresses) the archive from its
    /// start to its end; to read every file, [`VerifiedBundle::extract`] reads it once. If its bytes no longer have the verified digest
    /// (the bundle file was replaced since it was opened), the call fails with
    /// [`BlobError::Changed`] after the bytes were written: discard them.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library");
    /// let trust = custody::verify::Trust::new(vec![custody::keys::PublicKey::load(&dir.join("signer.pub"))?]);
    /// let bundle = custody::Bundle::open(dir.join("incident.tar.zst"), &trust)?;
    /// let mut log = Vec::new();
    /// let size = bundle.copy_file("logs/tool_calls.jsonl", &mut log)?;
    /// assert_eq!(size, log.len() as u64);
    /// assert!(log.starts_with(b"{"));
    /// # Ok(()) }
    /// ```
    pub fn copy_file(&self, path: &str, out: &mut dyn Write) -> Result<u64, BlobError> {
        let entry =
            self.manifest.entries.iter().find(|e| e.path == path).ok_or_else(|| BlobError::NoSuchFile(path.into()))?;
        let file =
            std::fs::File::open(self.path()).map_err(|source| BlobError::Read { path: self.path().into(), source })?;
        let mut v = OneBlob { want: entry.sha256, out, written: 0, state: BlobState::Waiting, error: None };
        read_archive(std::io::BufReader::new(file), &self.limits, Some(&mut v));
        if let Some(source) = v.error.take() {
            return Err(BlobError::Write { path: path.into(), source });
        }
        match v.state {
            BlobState::Good if v.written == entry.size => Ok(v.written),
            _ => Err(BlobError::Changed { path: path.into(), sha256: entry.sha256 }),
        }
    }

    /// The bytes each citation points at (`out[i]` for `citations[i]`), read from the sealed
    /// files (hashed again). A citation must name a file of this bundle by path and digest:
    /// for a supplement, resolve them in its original ([`VerifiedBundle::supplement_of`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library");
    /// let trust = custody::verify::Trust::new(vec![custody::keys::PublicKey::load(&dir.join("signer.pub"))?]);
    /// let bundle = custody::Bundle::open(dir.join("incident.tar.zst"), &trust)?;
    /// use custody::analysis::EventKind;
    /// // The records behind the first tool call.
    /// let call = bundle.events().iter().find(|e| e.kind == EventKind::ToolCall).expect("a tool call");
    /// let cited: Vec<_> = call.citations.iter().collect();
    /// let records = bundle.resolve(&cited)?;
    /// for (c, bytes) in cited.iter().zip(&records) {
    ///     assert_eq!(bytes.len() as u64, c.len);
    ///     println!("{} @ {}: {}", c.path, c.offset, String::from_utf8_lossy(bytes));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn resolve(&self, citations: &[&Citation]) -> Result<Vec<Vec<u8>>, CiteError> {
        crate::cite::resolve_with(self.path(), &self.manifest, citations, &self.limits)
    }

    /// Writes the bundle's files under `dir` (see [`crate::extract`]): nothing is overwritten,
    /// and nothing is left behind if it fails.
    pub fn extract(&self, dir: &Path) -> Result<Extracted, ExtractError> {
        crate::extract::extract(self, dir)
    }
}

/// The typed analysis kept by the verifier (its digest checked against the manifest).
fn typed_analysis(m: &Manifest, limit: u64) -> Result<Analysis, NoAnalysis> {
    use serde::Deserialize as _;
    let doc = m.analysis.as_ref().ok_or(NoAnalysis::NotRead { limit })?;
    match doc.get("format").and_then(|f| f.as_str()) {
        Some(ANALYSIS_FORMAT_V2) => Analysis::deserialize(doc)
            .map_err(|e| NoAnalysis::Invalid(crate::untrusted::untrusted(&e.to_string()).to_string())),
        other => {
            Err(NoAnalysis::OtherFormat(crate::untrusted::untrusted(other.unwrap_or("of no known format")).to_string()))
        }
    }
}

#[derive(PartialEq)]
enum BlobState {
    Waiting,
    Reading,
    Good,
    Bad,
}

/// Streams one blob (the first member with its digest, as the verifier reads it) out.
struct OneBlob<'a> {
    want: Sha256,
    out: &'a mut dyn Write,
    written: u64,
    state: BlobState,
    error: Option<std::io::Error>,
}

impl BlobVisitor for OneBlob<'_> {
    fn begin(&mut self, claimed: &Sha256, _size: u64) {
        if *claimed == self.want && self.state == BlobState::Waiting {
            self.state = BlobState::Reading;
        }
    }

    fn chunk(&mut self, data: &[u8]) {
        if self.state != BlobState::Reading || self.error.is_some() {
            return;
        }
        match self.out.write_all(data) {
            Ok(()) => self.written = self.written.saturating_add(data.len() as u64),
            Err(e) => self.error = Some(e),
        }
    }

    fn end(&mut self, claimed: &Sha256, actual: Option<Sha256>) {
        if self.state == BlobState::Reading && *claimed == self.want {
            self.state = if actual.as_ref() == Some(claimed) { BlobState::Good } else { BlobState::Bad };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blob streamed out is judged by the digest of what was streamed: bytes that do not
    /// hash to the manifest's digest are `Bad` (copy_file then fails with `Changed`), and only
    /// the first member with the digest is written.
    #[test]
    fn a_blob_is_good_only_when_what_was_streamed_has_its_digest() {
        let want = Sha256::of(b"evidence");
        let mut out = Vec::new();
        let mut v = OneBlob { want, out: &mut out, written: 0, state: BlobState::Waiting, error: None };
        v.begin(&Sha256::of(b"other"), 5);
        v.chunk(b"other");
        v.end(&Sha256::of(b"other"), Some(Sha256::of(b"other")));
        v.begin(&want, 8);
        v.chunk(b"evid");
        v.chunk(b"ence");
        v.end(&want, Some(Sha256::of(b"evidence")));
        v.begin(&want, 8);
        v.chunk(b"again!!!");
        v.end(&want, Some(Sha256::of(b"again!!!")));
        assert!(v.state == BlobState::Good && v.written == 8);
        assert_eq!(out, b"evidence");

        let mut out = Vec::new();
        let mut v = OneBlob { want, out: &mut out, written: 0, state: BlobState::Waiting, error: None };
        v.begin(&want, 8);
        v.chunk(b"evidenCe");
        v.end(&want, Some(Sha256::of(b"evidenCe")));
        assert!(v.state == BlobState::Bad);
        let mut v = OneBlob { want, out: &mut Vec::new(), written: 0, state: BlobState::Waiting, error: None };
        v.begin(&want, 8);
        v.chunk(b"evid");
        v.end(&want, None);
        assert!(v.state == BlobState::Bad, "truncated");
    }
}
