//! The sealer's [`Observer`] that runs the analysis engine ([`super::analyze`]) on every
//! collected file, on its own thread, and merges the result into the manifest.
//!
//! The sealer calls the observer on its writer thread (which feeds zstd), so nothing heavy
//! happens in the callbacks: small files are copied into a bounded channel; the bytes of a
//! large file arrive as the sealer copies them into the archive, in the sealer's own read
//! buffers, which are passed on without a copy (swapped for emptied ones). The analysis
//! therefore sees exactly the sealed bytes, even of a file that is rewritten after its copy.
//! A large file that a search must read again (its pre-filter skipped lines that later turn
//! out to be linked) is re-read through a `try_clone()`d descriptor with positional reads
//! (`read_at`, so the sealer's file offset is never disturbed), and that re-read is checked
//! against the XXH3 of the sealed bytes: a file that differs fails the seal, which is then
//! retried from a private snapshot. Nothing here writes to a collected file; every record the
//! analysis cites is named by the blob's SHA-256 from the [`Entry`] the sealer computed.
//!
//! [`AnalysisObserver::finish`] joins the scan thread, merges the evidence with the
//! responder's identifiers (a flag value that disagrees with the evidence stays the value, and
//! the disagreement is listed as a conflict), decides the side effect when the responder did
//! not, and returns the `analysis` object of the manifest ([`AnalysisDoc`], schema
//! `schemas/analysis.v1.schema.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::Serialize;

use super::analyze::{
    detect, scan_filtered, Analyzer, FieldMapping, Format, IdentStatus, LineFilter, Problem, Report, ScanLimits,
    SideEffectStatus, ValidateOnly,
};
use crate::bundle::manifest::{ConflictingValue, Entry, IdentName, IdentSource, Incident, SideEffect, Status};
use crate::bundle::write::{Observer, PlannedFile};

/// Format tag of the `analysis` object.
pub const ANALYSIS_FORMAT_V1: &str = "custody-analysis/v1";
/// Jobs queued for the scan thread at once: batches of small files (up to [`BATCH_BYTES`]
/// each) and chunks of large files (the sealer's 256 KiB read buffers). When the queue is
/// full the sealer is not held back by the analysis: a large file's later bytes are then read
/// by the scan thread itself (see [`Chunks`]).
const QUEUE_DEPTH: usize = 16;
/// A batch of small files is handed to the scan thread once it holds this many bytes (plus at
/// most one file of the sealer's small-file size) or [`BATCH_FILES`] files: one hand-over per
/// batch instead of one per file (a wake-up of the scan thread, an allocation, a free).
const BATCH_BYTES: usize = 256 * 1024;
/// Most files in one batch.
const BATCH_FILES: usize = 256;
/// How much nicer than the caller the scan thread runs: as nice as the sealer's compressor
/// threads, so that on a busy 2-core machine it shares the CPU with compression instead of
/// taking it first (seedless preserve of 100 000 small files: 2.2-2.6 s -> 2.1 s wall).
const ANALYZE_NICE: i32 = 4;
/// Emptied batches kept for reuse (more are freed).
const SPARE_BATCHES: usize = 4;
/// Emptied chunk buffers of large files kept for the sealer to read into (more are freed).
const SPARE_CHUNKS: usize = 4;
/// How much of a file's head is used for format detection.
const DETECT_HEAD: usize = 16 * 1024;
/// Evidence sources listed per identifier in the manifest's `incident.identifiers[].sources`.
const MAX_MANIFEST_SOURCES: usize = 20;
/// Most linked values searched for by the line pre-filter; beyond, every line is parsed.
const MAX_NEEDLE_VALUES: usize = 4096;
/// Most large files kept open for re-reading; later ones are parsed whole.
const MAX_KEPT_FILES: usize = 256;
/// Sources listed one by one in `analysis.sources` (the rest are counted).
const MAX_LISTED_SOURCES: usize = 1000;
/// Record problems named one by one in the journal note (all are in `analysis.problems`).
const MAX_NOTED_PROBLEMS: usize = 50;
/// The text of [`NOT_SEARCHED`], as a literal so that `concat!` can build on it.
macro_rules! not_searched {
    () => {
        "the evidence was validated but not searched: give --trace-id (or another identifier) to search it"
    };
}
/// Why an item is missing in a validate-only run (no identifier given).
pub const NOT_SEARCHED: &str = not_searched!();
/// Completeness detail of an identifier neither given nor searched for.
const NOT_GIVEN_NOT_SEARCHED: &str = concat!("not given; ", not_searched!());

/// A `--format SELECTOR=FORMAT` override: the selector is a bundle path
/// (`logs/tool_calls.jsonl`), a folder of bundle paths (`logs` or `logs/`), or an evidence kind.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOverride {
    /// Bundle path, folder or kind.
    pub selector: String,
    /// Format to scan as.
    pub format: Format,
}

/// Error parsing a `--format` argument.
#[derive(Debug, thiserror::Error)]
pub enum FormatOverrideError {
    /// Not `SELECTOR=FORMAT`.
    #[error("--format `{0}` is not SELECTOR=FORMAT (for example logs/tool_calls.jsonl=jsonl or egress=envoy)")]
    Syntax(String),
    /// Unknown format name.
    #[error("--format `{arg}`")]
    Format {
        /// The argument.
        arg: String,
        /// Why the format name was rejected.
        #[source]
        source: super::analyze::FormatParseError,
    },
}

impl std::str::FromStr for FormatOverride {
    type Err = FormatOverrideError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sel, fmt) = s.rsplit_once('=').ok_or_else(|| FormatOverrideError::Syntax(s.into()))?;
        let sel = sel.trim().trim_end_matches('/');
        if sel.is_empty() {
            return Err(FormatOverrideError::Syntax(s.into()));
        }
        let format = fmt.parse().map_err(|source| FormatOverrideError::Format { arg: s.into(), source })?;
        Ok(FormatOverride { selector: sel.into(), format })
    }
}

/// The override that applies to an entry: an exact path beats a folder, a longer folder beats
/// a shorter one, and a kind comes last.
pub fn override_for(overrides: &[FormatOverride], path: &str, kind: &str) -> Option<Format> {
    let mut best: Option<(usize, Format)> = None;
    for o in overrides {
        let rank = if o.selector == path {
            usize::MAX
        } else if path.starts_with(&o.selector) && path.as_bytes().get(o.selector.len()) == Some(&b'/') {
            o.selector.len() + 1
        } else if o.selector == kind {
            0
        } else {
            continue;
        };
        if best.map_or(true, |(r, _)| rank >= r) {
            best = Some((rank, o.format));
        }
    }
    best.map(|(_, f)| f)
}

/// Where the field mapping came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MappingInfo {
    /// `default` (built-in names only), `incident_dir` (custody-fields.toml picked up
    /// automatically), `flag` (`--field-map`), or `spec` (the incident spec file).
    pub origin: String,
    /// The mapping file, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SHA-256 of the mapping file's bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The mapping in force.
    pub mapping: FieldMapping,
}

impl Default for MappingInfo {
    fn default() -> Self {
        MappingInfo { origin: "default".into(), path: None, sha256: None, mapping: FieldMapping::default() }
    }
}

/// A file-level problem known before sealing (missing path, dangling symlink, FIFO…).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceProblem {
    /// The path concerned (source path, or bundle path when collected).
    pub path: String,
    /// `missing`, `unreadable`, `skipped`, `not_collected` or a record problem type.
    pub problem: String,
    /// What happened.
    pub detail: String,
}

/// Everything the observer needs to know beyond the files.
#[derive(Debug, Clone, Default)]
pub struct ObserveConfig {
    /// The field mapping and where it came from.
    pub mapping: MappingInfo,
    /// Per-source format overrides.
    pub formats: Vec<FormatOverride>,
    /// The files planned (the sealer's shared list), in plan order: one not seen by the
    /// observer was not collected (its error is in the journal).
    pub planned: Arc<[PlannedFile]>,
    /// Problems already known from planning.
    pub plan_problems: Vec<EvidenceProblem>,
    /// Checklist items the responder declared not applicable.
    pub not_applicable: Vec<String>,
}

/// How the side effect status was decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideEffectDecision {
    /// The status recorded in `incident.side_effect`.
    pub status: SideEffect,
    /// `responder` (given), `evidence` (the engine's hint), or `default` (nothing known).
    pub origin: String,
    /// The warning against repeating a write whose outcome is not visible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// One line of the playbook's linkage checklist (identifiers and evidence kinds are in the
/// manifest's `completeness`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkCheck {
    /// Item name.
    pub item: String,
    /// Present, missing or not applicable.
    pub status: Status,
    /// What was found, or why it is missing.
    pub detail: String,
}

/// How one collected file was scanned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceFormat {
    /// Bundle path.
    pub path: String,
    /// Format scanned as.
    pub format: Format,
    /// `detected` or `override`.
    pub origin: &'static str,
    /// Bytes scanned (decompressed bytes for compressed input).
    pub bytes_scanned: u64,
}

/// What the analysis did with the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisMode {
    /// Searched from the responder's identifiers: records parsed, identifiers linked.
    Search,
    /// No identifier was given: every line and document was validated (problems are
    /// reported), nothing was parsed into records or searched.
    ValidateOnly,
}

/// The manifest's `analysis` object.
#[derive(Serialize)]
pub struct AnalysisDoc {
    /// Always [`ANALYSIS_FORMAT_V1`].
    pub format: &'static str,
    /// `search`, or `validate_only` when no identifier was given to search from.
    pub mode: AnalysisMode,
    /// The field mapping in force.
    pub field_mapping: MappingInfo,
    /// How each listed source was scanned (every override is listed).
    pub formats: Vec<SourceFormat>,
    /// Files scanned per format, over all sources.
    pub format_counts: BTreeMap<String, u64>,
    /// Sources not listed in `sources`/`formats` (neither incident records nor problems,
    /// beyond the first MAX_LISTED_SOURCES).
    pub sources_omitted: u64,
    /// The engine's result: seeds, identifiers (every value, every place), linkage, index,
    /// side-effect hint, record problems, per-source summaries, counters. Its long lists are
    /// rendered as they are written.
    #[serde(flatten)]
    pub analysis: Report,
    /// How the side effect was decided.
    pub side_effect: SideEffectDecision,
    /// The linkage checklist.
    pub checklist: Vec<LinkCheck>,
    /// Every evidence problem: file-level (planning, not collected) and record-level.
    pub evidence_problems: Vec<EvidenceProblem>,
}

/// What the scan thread needs to know about a collected file.
struct Meta {
    path: String,
    kind: String,
    sha256: crate::digest::Sha256,
    size: u64,
}

impl Meta {
    fn of(entry: &Entry) -> Self {
        Meta { path: entry.path.clone(), kind: entry.kind.clone(), sha256: entry.sha256, size: entry.size }
    }
}

/// Small files, their bytes one after the other in `data`.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    files: Vec<(Meta, std::ops::Range<usize>)>,
}

enum Job {
    Bytes(Batch),
    /// A large file; its bytes follow as [`Job::Chunk`]s (up to the offset stored in
    /// `switched`, if the observer stops handing them over), then [`Job::End`].
    File {
        meta: Meta,
        file: File,
        switched: Arc<AtomicU64>,
    },
    /// The next `len` bytes of the current large file, at the start of the buffer.
    Chunk(Vec<u8>, usize),
    /// The current large file's end.
    End {
        /// XXH3-64 of all its sealed bytes; `None` if the copy was cut short (the seal fails).
        sealed_xxh3: Option<u64>,
        /// XXH3-64 of its sealed bytes after the switch offset, if the hand-over stopped there.
        rest_xxh3: Option<u64>,
    },
}

/// `Job::File::switched` while the sealer hands every chunk over.
const NOT_SWITCHED: u64 = u64::MAX;

/// The observer's side of a large file being handed over.
struct Handover {
    /// Set to the bytes handed over when the queue was full: the scan thread reads the rest.
    switched: Arc<AtomicU64>,
    handed: u64,
    /// After the switch: the hash of the sealed bytes not handed over.
    rest: Option<xxhash_rust::xxh3::Xxh3>,
}

struct ScanOutput {
    mode: AnalysisMode,
    report: Report,
    formats: Vec<SourceFormat>,
    /// Large files whose re-read differed from the sealed bytes.
    changed: Vec<String>,
}

/// The collector's observer: scans on its own thread, merges at [`Observer::finish`].
pub struct AnalysisObserver {
    config: ObserveConfig,
    tx: Option<SyncSender<Job>>,
    /// Emptied batches handed back by the scan thread, for reuse.
    spare: Receiver<Batch>,
    /// Emptied chunk buffers of large files handed back by the scan thread, for the sealer.
    spare_chunks: Receiver<Vec<u8>>,
    batch: Batch,
    /// Large files whose re-read differed from the sealed bytes (known after `finish`).
    changed: Vec<String>,
    /// The large file being handed over, if any.
    current: Option<Handover>,
    worker: Option<JoinHandle<ScanOutput>>,
    cancel: Arc<AtomicBool>,
    /// Whether there is a seed to search from (else the run is validate-only).
    searching: bool,
}

impl AnalysisObserver {
    /// Start the scan thread. `seeds` are the responder's identifiers.
    pub fn start(config: ObserveConfig, seeds: &[(IdentName, String)]) -> io::Result<Self> {
        let seeds: Vec<(IdentName, String)> = seeds.to_vec();
        let searching = Analyzer::new(&seeds).has_seeds();
        let (tx, rx) = sync_channel::<Job>(QUEUE_DEPTH);
        let (spare_tx, spare) = sync_channel::<Batch>(SPARE_BATCHES);
        let (chunks_tx, spare_chunks) = sync_channel::<Vec<u8>>(SPARE_CHUNKS);
        let cancel = Arc::new(AtomicBool::new(false));
        let (mapping, formats, c2) = (config.mapping.mapping.clone(), config.formats.clone(), cancel.clone());
        let spares = Spares { batches: spare_tx, chunks: chunks_tx };
        let worker = std::thread::Builder::new()
            .name("custody-analyze".into())
            .spawn(move || scan_worker(rx, spares, seeds, mapping, formats, c2))?;
        Ok(AnalysisObserver {
            config,
            tx: Some(tx),
            spare,
            spare_chunks,
            batch: Batch::default(),
            changed: Vec::new(),
            current: None,
            worker: Some(worker),
            cancel,
            searching,
        })
    }

    /// Hands the pending batch of small files to the scan thread.
    fn flush(&mut self) {
        if self.batch.files.is_empty() {
            return;
        }
        let next = self.spare.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        self.send(Job::Bytes(batch));
    }

    fn send(&mut self, job: Job) {
        if let Some(tx) = &self.tx {
            if tx.send(job).is_err() {
                self.tx = None;
            }
        }
    }
}

impl Drop for AnalysisObserver {
    fn drop(&mut self) {
        // A seal that is abandoned (retried) does not wait for the scan to finish.
        self.cancel.store(true, Ordering::Relaxed);
        self.tx = None;
    }
}

impl Observer for AnalysisObserver {
    fn missing_identifier_detail(&self) -> &'static str {
        if self.searching {
            crate::bundle::write::NOT_FOUND_IN_EVIDENCE
        } else {
            NOT_GIVEN_NOT_SEARCHED
        }
    }

    fn on_bytes(&mut self, entry: &Entry, data: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        let start = self.batch.data.len();
        self.batch.data.extend_from_slice(data);
        self.batch.files.push((Meta::of(entry), start..start + data.len()));
        if self.batch.data.len() >= BATCH_BYTES || self.batch.files.len() >= BATCH_FILES {
            self.flush();
        }
    }

    fn on_file(&mut self, entry: &Entry, file: &File) {
        // Files are analysed in the order they were sealed.
        self.flush();
        match file.try_clone() {
            Ok(file) => {
                let switched = Arc::new(AtomicU64::new(NOT_SWITCHED));
                self.current = Some(Handover { switched: switched.clone(), handed: 0, rest: None });
                self.send(Job::File { meta: Meta::of(entry), file, switched });
            }
            Err(e) => self.config.plan_problems.push(EvidenceProblem {
                path: entry.path.clone(),
                problem: "not_analyzed".into(),
                detail: format!("sealed, but cannot be analyzed: duplicating its descriptor failed: {e}"),
            }),
        }
    }

    fn on_file_data(&mut self, buf: &mut Vec<u8>, len: usize) {
        let (Some(tx), Some(cur)) = (&self.tx, self.current.as_mut()) else { return };
        let data = buf.get(..len).unwrap_or_default();
        let size = buf.len();
        if let Some(rest) = cur.rest.as_mut() {
            // The scan thread reads the rest itself; it is checked against this hash.
            rest.update(data);
            return;
        }
        // The sealer's buffer goes to the scan thread as it is; the sealer gets an emptied one.
        let full = std::mem::take(buf);
        match tx.try_send(Job::Chunk(full, len)) {
            Ok(()) => {
                cur.handed += len as u64;
                *buf = match self.spare_chunks.try_recv() {
                    Ok(b) if b.len() == size => b,
                    _ => vec![0; size],
                };
            }
            Err(TrySendError::Full(job)) => {
                // The analysis lags: it reads the rest of this file itself, from where the
                // chunks end, and the sealer goes on undisturbed.
                if let Job::Chunk(b, _) = job {
                    *buf = b;
                }
                cur.switched.store(cur.handed, Ordering::Release);
                let mut rest = xxhash_rust::xxh3::Xxh3::new();
                rest.update(buf.get(..len).unwrap_or_default());
                cur.rest = Some(rest);
            }
            Err(TrySendError::Disconnected(job)) => {
                if let Job::Chunk(b, _) = job {
                    *buf = b;
                }
                self.tx = None;
            }
        }
    }

    fn on_file_end(&mut self, sealed_xxh3: Option<u64>) {
        if let Some(cur) = self.current.take() {
            self.send(Job::End { sealed_xxh3, rest_xxh3: cur.rest.map(|r| r.digest()) });
        }
    }

    fn changed_since_sealed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.changed)
    }

    fn finish(&mut self, incident: &mut Incident, out: &mut dyn Write) -> io::Result<Option<serde_json::Value>> {
        self.flush();
        self.tx = None;
        let Some(worker) = self.worker.take() else { return Ok(None) };
        let t = std::time::Instant::now();
        let Ok(mut scanned) = worker.join() else { return Ok(None) };
        let joined = t.elapsed();
        self.changed = std::mem::take(&mut scanned.changed);
        let doc = merge(&self.config, scanned, incident);
        let merged = t.elapsed();
        serde_json::to_writer(&mut *out, &doc)?;
        if std::env::var_os("CUSTODY_TIMINGS").is_some_and(|v| v == "1") {
            eprintln!(
                "custody: timing analysis: waited {:.3} s for the scan, merge {:.3} s, write {:.3} s",
                joined.as_secs_f64(),
                (merged - joined).as_secs_f64(),
                (t.elapsed() - merged).as_secs_f64()
            );
        }
        let summary = serde_json::json!({
            "mode": doc.mode,
            "checklist": doc.checklist,
            "evidence_problems": doc.evidence_problems,
            "side_effect": doc.side_effect,
        });
        drop_later(doc);
        Ok(Some(summary))
    }
}

/// Drops `value` on a short-lived thread of its own (inline if none can be started): large
/// analysis structures are freed beside the rest of the seal instead of in its serial tail
/// (for 100 000 small files, ~0.02 s each for the omitted sources and for the document).
fn drop_later<T: Send + 'static>(value: T) {
    // A thread that cannot be started drops its closure, and `value` with it, right here.
    let _ = std::thread::Builder::new().name("custody-free".into()).spawn(move || drop(value));
}

/// Reads a shared descriptor with positional reads (the sealer's offset is not moved).
struct PositionalReader<F> {
    file: F,
    pos: u64,
    /// The sealed size: bytes appended after the sealer read the file are not analysed.
    limit: u64,
    cancel: Arc<AtomicBool>,
}

impl<F: std::borrow::Borrow<File>> Read for PositionalReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "analysis cancelled"));
        }
        let left = self.limit.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.borrow().read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Feeds what is read through XXH3-64.
struct Xxh3Reader<R> {
    inner: R,
    hash: xxhash_rust::xxh3::Xxh3,
}

impl<R: Read> Xxh3Reader<R> {
    fn new(inner: R) -> Self {
        Xxh3Reader { inner, hash: xxhash_rust::xxh3::Xxh3::new() }
    }

    /// Reads on to the end (what a scan that stopped early left) and tells whether all that
    /// was read hashes to `sealed`: the check of a read of a large file from disk against the
    /// XXH3 of its sealed bytes.
    fn ends_as_sealed(&mut self, sealed: u64) -> bool {
        io::copy(self, &mut io::sink()).is_ok() && self.hash.digest() == sealed
    }
}

impl<R: Read> Read for Xxh3Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Where the scan thread gives emptied buffers back to the observer.
struct Spares {
    batches: SyncSender<Batch>,
    chunks: SyncSender<Vec<u8>>,
}

/// The bytes of the large file being scanned, as the sealer passes them on: [`Job::Chunk`]s
/// up to [`Job::End`], read from the job channel; emptied buffers go back for the sealer.
/// If the sealer stopped handing chunks over (the queue was full: the analysis lagged), the
/// rest is read from the file's descriptor by positional reads, hashed, and compared with the
/// hash of the sealed rest that [`Job::End`] brings ([`Chunks::finish`]).
struct Chunks<'a> {
    feed: Feed<'a>,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    /// Bytes received as chunks.
    received: u64,
    /// After a switch: the rest, read from the descriptor and hashed.
    rest: Option<Xxh3Reader<PositionalReader<&'a File>>>,
    /// The file's [`Job::End`], once received.
    end: Option<(Option<u64>, Option<u64>)>,
    /// A job that arrived before the file's end (only if the sealer broke the observer
    /// protocol): handled next, not lost.
    stray: Option<Job>,
}

/// Where [`Chunks`] gets a large file's bytes from.
struct Feed<'a> {
    /// The job channel the chunks and the end come through.
    rx: &'a Receiver<Job>,
    /// Where emptied chunk buffers go back to the observer.
    spare: &'a SyncSender<Vec<u8>>,
    cancel: Arc<AtomicBool>,
    /// The file's duplicated descriptor, for the rest after a switch.
    file: &'a File,
    /// The sealed size.
    size: u64,
    /// [`Job::File`]'s switch offset.
    switched: &'a AtomicU64,
}

impl<'a> Chunks<'a> {
    fn new(feed: Feed<'a>) -> Self {
        Chunks { feed, buf: Vec::new(), len: 0, pos: 0, received: 0, rest: None, end: None, stray: None }
    }

    /// Puts `next` in place of the current chunk buffer and gives that back to the observer
    /// for the sealer to read into (an empty one, before the first chunk, is dropped).
    fn give_back(&mut self, next: Vec<u8>) {
        let done = std::mem::replace(&mut self.buf, next);
        if !done.is_empty() {
            let _ = self.feed.spare.try_send(done);
        }
    }

    /// Takes the next job of this file from the channel (`block`: waiting for it); false when
    /// there is none (yet, or any more).
    fn next_job(&mut self, block: bool) -> bool {
        let job = if block {
            self.feed.rx.recv().ok()
        } else {
            match self.feed.rx.try_recv() {
                Ok(job) => Some(job),
                Err(std::sync::mpsc::TryRecvError::Empty) => return false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
            }
        };
        match job {
            Some(Job::Chunk(buf, len)) => {
                self.give_back(buf);
                self.len = len.min(self.buf.len());
                self.pos = 0;
                self.received += self.len as u64;
                true
            }
            Some(Job::End { sealed_xxh3, rest_xxh3 }) => {
                self.end = Some((sealed_xxh3, rest_xxh3));
                false
            }
            Some(other) => {
                self.stray = Some(other);
                self.end = Some((None, None));
                false
            }
            // The sealer went away (the seal was abandoned).
            None => {
                self.end = Some((None, None));
                false
            }
        }
    }

    /// Makes the next bytes available: buffered chunk bytes, or the rest from the descriptor
    /// (`rest`) once the hand-over stopped where the chunks received end; false at the file's
    /// end. Queued chunks come first; with none queued, the rest is read from the descriptor
    /// if the switch was here (whether or not the file's end came already), else the next
    /// chunk is waited for (a switch can only happen while the queue is full, so it cannot be
    /// missed while waiting).
    fn refill(&mut self) -> bool {
        loop {
            if self.rest.is_some() || self.pos < self.len {
                return true;
            }
            if self.end.is_none() && self.next_job(false) {
                continue;
            }
            if self.feed.switched.load(Ordering::Acquire) == self.received {
                let (file, pos, limit, cancel) =
                    (self.feed.file, self.received, self.feed.size, self.feed.cancel.clone());
                self.rest = Some(Xxh3Reader::new(PositionalReader { file, pos, limit, cancel }));
                return true;
            }
            if self.end.is_some() {
                return false;
            }
            self.next_job(true);
        }
    }

    /// Receives (or reads) the rest of the file unscanned (a scan can stop early) and
    /// returns `Some` of the XXH3 of the sealed bytes if the file was sealed whole, and whether
    /// what was read from the descriptor differs from the sealed bytes.
    fn finish(&mut self) -> (Option<u64>, bool) {
        // Chunks are skipped without a copy.
        self.pos = self.len;
        while self.rest.is_none() && self.refill() {
            self.pos = self.len;
        }
        // After a switch only the end is left to receive.
        while self.end.is_none() {
            self.next_job(true);
        }
        self.give_back(Vec::new());
        let (sealed, rest_sealed) = self.end.unwrap_or((None, None));
        let differs = match (self.rest.as_mut(), rest_sealed) {
            (Some(rest), Some(want)) => !rest.ends_as_sealed(want),
            // Read from the descriptor, but the sealer did not switch: cannot happen unless
            // the copy was cut short, when the seal fails anyway.
            (Some(_), None) => sealed.is_some(),
            (None, _) => false,
        };
        (sealed, differs)
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.feed.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "analysis cancelled"));
        }
        if out.is_empty() || !self.refill() {
            return Ok(0);
        }
        if let Some(rest) = self.rest.as_mut() {
            return rest.read(out);
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A large file kept open (its duplicated descriptor) for re-reading when the incident's
/// linked values grow after it was scanned with the pre-filter.
struct Filtered {
    file: File,
    source: super::analyze::SourceId,
    format: Format,
    /// The linked values the file was last scanned for.
    values: BTreeSet<(IdentName, String)>,
    /// Every line has been parsed.
    done: bool,
    /// The sealed size.
    size: u64,
    /// XXH3-64 of the sealed bytes: a re-read must see the same.
    sealed_xxh3: u64,
    /// The path in the bundle, named if a re-read finds the file changed.
    path: String,
}

/// Byte patterns that find a value in raw evidence: the value itself and, for trace ids, the
/// upper-case hex and base64 forms exporters write.
fn needles(ident: IdentName, value: &str) -> Vec<Vec<u8>> {
    let mut v = vec![value.as_bytes().to_vec()];
    if ident == IdentName::TraceId && value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        v.push(value.to_ascii_uppercase().into_bytes());
        if let Ok(raw) = hex::decode(value) {
            use base64::Engine as _;
            v.push(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes());
        }
    }
    v
}

/// Finds any of a set of byte patterns: the SIMD "Teddy" searcher for small sets (fast on
/// hex-heavy logs), an Aho-Corasick automaton otherwise.
enum Matcher {
    Packed(aho_corasick::packed::Searcher),
    Automaton(aho_corasick::AhoCorasick),
}

impl Matcher {
    fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            Matcher::Packed(s) => s.find(hay).is_some(),
            Matcher::Automaton(a) => a.is_match(hay),
        }
    }
}

fn matcher(values: &BTreeSet<(IdentName, String)>) -> Option<Matcher> {
    let pats: Vec<Vec<u8>> = values.iter().flat_map(|(i, v)| needles(*i, v)).filter(|p| !p.is_empty()).collect();
    if pats.is_empty() {
        return None;
    }
    if let Some(s) = aho_corasick::packed::Config::new().builder().extend(&pats).build() {
        return Some(Matcher::Packed(s));
    }
    aho_corasick::AhoCorasick::new(pats).ok().map(Matcher::Automaton)
}

/// Wants lines holding one of `want` (all lines when `None`) and none of `seen` (lines
/// already parsed on an earlier pass).
struct NeedleFilter {
    want: Option<Matcher>,
    seen: Option<Matcher>,
    first_pass: bool,
}

impl LineFilter for NeedleFilter {
    fn wants(&mut self, line: &[u8]) -> bool {
        let hit = self.want.as_ref().map_or(true, |m| m.is_match(line));
        hit && !self.seen.as_ref().is_some_and(|m| m.is_match(line))
    }
    fn validate_unwanted(&self) -> bool {
        self.first_pass
    }
}

type Linked = Option<BTreeSet<(IdentName, String)>>;

/// What a re-read of a large file needs: its source, its format and the linked values its
/// first pass searched for.
type KeepForReread = (super::analyze::SourceId, Format, BTreeSet<(IdentName, String)>);

/// The scan thread's state.
struct Worker {
    an: Analyzer,
    mode: AnalysisMode,
    mapping: FieldMapping,
    overrides: Vec<FormatOverride>,
    limits: ScanLimits,
    formats: Vec<SourceFormat>,
    kept: Vec<Filtered>,
    /// [`Analyzer::linked_values`] at a [`Analyzer::link_generation`]: recomputed only when
    /// records with link-key observations have arrived since.
    linked: Option<(u64, Linked)>,
    cancel: Arc<AtomicBool>,
    /// Large files whose re-read differed from the sealed bytes.
    changed: Vec<String>,
    /// Large files whose hand-over stopped (the analysis lagged), and the bytes of them read
    /// from disk instead (for `CUSTODY_TIMINGS`).
    switched: (u64, u64),
}

impl Worker {
    fn linked(&mut self) -> Linked {
        let generation = self.an.link_generation();
        if let Some((g, v)) = &self.linked {
            if *g == generation {
                return v.clone();
            }
        }
        let v: Linked = self.an.linked_values(MAX_NEEDLE_VALUES).map(|v| v.into_iter().collect());
        self.linked = Some((generation, v.clone()));
        v
    }

    fn format_of(&self, meta: &Meta, head: &[u8]) -> (Format, &'static str) {
        match override_for(&self.overrides, &meta.path, &meta.kind) {
            Some(f) => (f, "override"),
            None => (detect(&meta.path, head), "detected"),
        }
    }

    /// A small file, from memory.
    fn scan_bytes(&mut self, meta: Meta, data: &[u8]) {
        let head = data.get(..data.len().min(DETECT_HEAD)).unwrap_or_default();
        let (format, origin) = self.format_of(&meta, head);
        let id = self.an.begin_source(&meta.path, &meta.sha256.hex(), &meta.kind, format);
        let mut validate = ValidateOnly;
        let filter: Option<&mut dyn LineFilter> = match self.mode {
            AnalysisMode::ValidateOnly => Some(&mut validate),
            AnalysisMode::Search => None,
        };
        let an = &mut self.an;
        let r = scan_filtered(format, data, &self.mapping, &self.limits, filter, &mut |rec| an.push(id, rec));
        let bytes_scanned = match r {
            Ok(s) => {
                self.an.add_lines(id, s.lines);
                s.bytes_scanned
            }
            Err(e) => {
                self.an.add_problem(id, Problem::ReadFailed { message: crate::error_text(&e) });
                0
            }
        };
        self.formats.push(SourceFormat { path: meta.path, format, origin, bytes_scanned });
    }

    /// A large file, its bytes as the sealer passes them on. Returns what a re-read needs if
    /// the pre-filter skipped lines of it.
    fn scan_file(&mut self, meta: &Meta, chunks: &mut Chunks<'_>) -> Option<KeepForReread> {
        let mut head = Vec::with_capacity(DETECT_HEAD);
        let head_err = (&mut *chunks).take(DETECT_HEAD as u64).read_to_end(&mut head).err();
        let (format, origin) = self.format_of(meta, &head);
        let id = self.an.begin_source(&meta.path, &meta.sha256.hex(), &meta.kind, format);
        let path = meta.path.clone();
        if let Some(e) = head_err {
            self.an.add_problem(id, Problem::ReadFailed { message: e.to_string() });
            self.formats.push(SourceFormat { path, format, origin, bytes_scanned: 0 });
            return None;
        }
        let input = io::Cursor::new(head).chain(&mut *chunks);
        // In a search, large files get the pre-filter (they can be re-read through their
        // descriptor); small files are parsed whole. A validate-only run parses nothing.
        let values = match self.mode {
            AnalysisMode::Search if self.kept.len() < MAX_KEPT_FILES && format != Format::Opaque => self.linked(),
            _ => None,
        };
        let mut needle = values.as_ref().map(|v| NeedleFilter { want: matcher(v), seen: None, first_pass: true });
        let mut validate = ValidateOnly;
        let filter: Option<&mut dyn LineFilter> = match (self.mode, needle.as_mut()) {
            (AnalysisMode::ValidateOnly, _) => Some(&mut validate),
            (AnalysisMode::Search, Some(f)) => Some(f),
            (AnalysisMode::Search, None) => None,
        };
        let an = &mut self.an;
        let r = scan_filtered(format, input, &self.mapping, &self.limits, filter, &mut |rec| an.push(id, rec));
        let (bytes_scanned, keep) = match r {
            Ok(s) => {
                self.an.add_lines(id, s.lines);
                (s.bytes_scanned, values.filter(|_| s.filtered > 0).map(|v| (id, format, v)))
            }
            Err(e) => {
                self.an.add_problem(id, Problem::ReadFailed { message: crate::error_text(&e) });
                (0, None)
            }
        };
        self.formats.push(SourceFormat { path, format, origin, bytes_scanned });
        keep
    }

    /// Lines skipped by the pre-filter are read again for the values linked since, until
    /// nothing new is linked.
    fn reread(&mut self) {
        while !self.cancel.load(Ordering::Relaxed) {
            let now = self.linked();
            let mut again = false;
            for k in self.kept.iter_mut() {
                let want = match &now {
                    Some(v) if v.is_subset(&k.values) => continue,
                    Some(v) => Some(v.difference(&k.values).cloned().collect::<BTreeSet<_>>()),
                    None => None,
                };
                again = true;
                let mut filter =
                    NeedleFilter { want: want.as_ref().and_then(matcher), seen: matcher(&k.values), first_pass: false };
                let reader = PositionalReader { file: &k.file, pos: 0, limit: k.size, cancel: self.cancel.clone() };
                let mut input = Xxh3Reader::new(reader);
                let id = k.source;
                let an = &mut self.an;
                let _ =
                    scan_filtered(k.format, &mut input, &self.mapping, &self.limits, Some(&mut filter), &mut |rec| {
                        // Problems were reported on the first pass.
                        if rec.problem.is_none() {
                            an.push(id, rec)
                        }
                    });
                // What the re-read saw must be what was sealed.
                if !input.ends_as_sealed(k.sealed_xxh3) {
                    if !self.cancel.load(Ordering::Relaxed) {
                        self.changed.push(k.path.clone());
                    }
                    k.done = true;
                    continue;
                }
                match &now {
                    Some(v) => k.values.clone_from(v),
                    // Every line was parsed: nothing is left to re-read.
                    None => k.done = true,
                }
            }
            self.kept.retain(|k| !k.done);
            if !again {
                break;
            }
        }
    }
}

fn scan_worker(
    rx: Receiver<Job>,
    spare: Spares,
    seeds: Vec<(IdentName, String)>,
    mapping: FieldMapping,
    overrides: Vec<FormatOverride>,
    cancel: Arc<AtomicBool>,
) -> ScanOutput {
    crate::bundle::write::lower_priority(ANALYZE_NICE);
    let an = Analyzer::new(&seeds);
    // Without a seed nothing can be linked: validate every line, parse nothing, no re-reads.
    let mode = if an.has_seeds() { AnalysisMode::Search } else { AnalysisMode::ValidateOnly };
    let mut w = Worker {
        an,
        mode,
        mapping,
        overrides,
        limits: ScanLimits::default(),
        formats: Vec::new(),
        kept: Vec::new(),
        linked: None,
        cancel,
        changed: Vec::new(),
        switched: (0, 0),
    };
    let mut stray = None;
    while let Some(job) = stray.take().or_else(|| rx.recv().ok()) {
        if w.cancel.load(Ordering::Relaxed) {
            continue;
        }
        match job {
            Job::Bytes(mut batch) => {
                for (meta, range) in batch.files.drain(..) {
                    w.scan_bytes(meta, batch.data.get(range).unwrap_or_default());
                }
                batch.data.clear();
                let _ = spare.batches.try_send(batch);
            }
            Job::File { meta, file, switched } => {
                let mut chunks = Chunks::new(Feed {
                    rx: &rx,
                    spare: &spare.chunks,
                    cancel: w.cancel.clone(),
                    file: &file,
                    size: meta.size,
                    switched: &switched,
                });
                let keep = w.scan_file(&meta, &mut chunks);
                let (sealed_xxh3, differs) = chunks.finish();
                stray = chunks.stray.take();
                if let Some(rest) = &chunks.rest {
                    w.switched.0 += 1;
                    w.switched.1 += rest.inner.pos.saturating_sub(chunks.received);
                }
                if differs {
                    // Read from disk after the hand-over stopped, and not what was sealed.
                    w.changed.push(meta.path);
                } else if let (Some((source, format, values)), Some(sealed_xxh3)) = (keep, sealed_xxh3) {
                    w.kept.push(Filtered {
                        file,
                        source,
                        format,
                        values,
                        done: false,
                        size: meta.size,
                        sealed_xxh3,
                        path: meta.path,
                    });
                }
            }
            // Bytes of a file whose hand-over failed (never sent as a `File`): nothing to scan.
            Job::Chunk(buf, _) => {
                let _ = spare.chunks.try_send(buf);
            }
            Job::End { .. } => {}
        }
    }
    let timings = std::env::var_os("CUSTODY_TIMINGS").is_some_and(|v| v == "1");
    let t = std::time::Instant::now();
    if w.mode == AnalysisMode::Search {
        w.reread();
    }
    let t_reread = t.elapsed();
    let report = w.an.into_report();
    if timings {
        eprintln!(
            "custody: timing analysis after the last file: re-read {:.3} s, report {:.3} s; {} large file(s) partly read from disk ({} bytes) because the analysis lagged",
            t_reread.as_secs_f64(),
            (t.elapsed() - t_reread).as_secs_f64(),
            w.switched.0,
            w.switched.1
        );
    }
    ScanOutput { mode, report, formats: w.formats, changed: w.changed }
}

fn problem_type(p: &Problem) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
        .unwrap_or_else(|| "problem".into())
}

fn problem_detail(p: &Problem) -> String {
    match p {
        Problem::MalformedJson { message } => format!("malformed JSON: {message}"),
        Problem::InvalidUtf8 { valid_up_to } => format!("invalid UTF-8 after {valid_up_to} valid bytes"),
        Problem::Truncated { detail } => format!("truncated: {detail}"),
        Problem::LineTooLong { len, limit } => {
            format!("line of {len} bytes is longer than the {limit}-byte limit: sealed, not parsed")
        }
        Problem::DocumentTooLarge { limit } => format!("document larger than {limit} bytes: sealed, not parsed"),
        Problem::DecompressedLimit { limit } => format!("decompressed past {limit} bytes: the rest was not scanned"),
        Problem::DecompressionFailed { message } => format!("decompression failed: {message}"),
        Problem::UnrecognisedLine => "line does not match the access-log layout".into(),
        Problem::StateLimit { limit } => format!("analyzer kept {limit} records; later ones were counted only"),
        Problem::ExpansionLimit { ident, limit } => format!("stopped linking {ident} after {limit} values"),
        Problem::ReadFailed { message } => format!("reading for analysis failed: {message}"),
    }
}

/// The principal of the side-effecting call: the one principal of the writes that carry an
/// idempotency key, else the one principal of all writes; `None` when that is not unique.
fn write_principal(a: &Report) -> Option<String> {
    let unique = |keyed: bool| {
        let ps: BTreeSet<String> = a
            .writes()
            .filter(|w| !keyed || w.call.idempotency_key.is_some())
            .filter_map(|w| w.call.principal)
            .collect();
        (ps.len() == 1).then(|| ps.into_iter().next()).flatten()
    };
    unique(true).or_else(|| unique(false))
}

fn na(config: &ObserveConfig, item: &str) -> bool {
    config.not_applicable.iter().any(|n| n == item)
}

/// The planned files whose paths are not in `seen`. The sealer shows the observer the files
/// it sealed in plan order (a subsequence of the plan): one walk over both finds them, without
/// a set of every path (100 000 small files: a hash and a table entry each). Paths seen in
/// another order (a library caller feeding the observer itself) are looked up instead.
fn never_seen<'p>(planned: &'p [PlannedFile], seen: &[&str]) -> Vec<&'p PlannedFile> {
    let mut next = seen.iter().peekable();
    let mut missing = Vec::new();
    for f in planned {
        if next.peek().is_some_and(|s| **s == f.rel_path) {
            next.next();
        } else {
            missing.push(f);
        }
    }
    if next.next().is_none() {
        return missing;
    }
    let seen: std::collections::HashSet<&str> = seen.iter().copied().collect();
    planned.iter().filter(|f| !seen.contains(f.rel_path.as_str())).collect()
}

fn merge(config: &ObserveConfig, out: ScanOutput, incident: &mut Incident) -> AnalysisDoc {
    let ScanOutput { mode, report: mut analysis, formats, changed: _ } = out;
    // Planned files the observer never saw were not collected (their errors are journaled).
    let not_collected: Vec<EvidenceProblem> = {
        let seen: Vec<&str> = formats.iter().map(|f| f.path.as_str()).collect();
        never_seen(&config.planned, &seen)
            .into_iter()
            .map(|f| EvidenceProblem {
                path: f.display_source.clone(),
                problem: "not_collected".into(),
                detail: format!(
                    "planned as `{}` but not sealed (unreadable or not a regular file: see the journal)",
                    f.rel_path
                ),
            })
            .collect()
    };
    // Bounded per-source lists: sources that hold incident records or problems first, then
    // the others in bundle order, up to MAX_LISTED_SOURCES; the rest are counted.
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for f in &formats {
        *counts.entry(f.format.as_str()).or_default() += 1;
    }
    let format_counts: BTreeMap<String, u64> = counts.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    let total_sources = analysis.sources.len();
    let mut keep = vec![false; total_sources];
    let mut listed = 0;
    for (i, s) in analysis.sources.iter().enumerate() {
        if listed < MAX_LISTED_SOURCES && (s.incident_records > 0 || s.problems > 0) {
            keep[i] = true;
            listed += 1;
        }
    }
    for k in keep.iter_mut().filter(|k| !**k).take(MAX_LISTED_SOURCES - listed) {
        *k = true;
    }
    // `Worker::scan_bytes`/`scan_file` register one source and push one format entry per
    // file, together: the formats are kept by the position of their source (a path lookup per
    // file was most of this merge for 100 000 small files).
    debug_assert!(
        formats.len() == total_sources
            && formats.iter().zip(&analysis.sources).all(|(f, s)| f.path.as_str() == &*s.source_path)
    );
    let all = std::mem::take(&mut analysis.sources);
    let mut keep_it = keep.iter();
    let (kept, omitted): (Vec<_>, Vec<_>) = all.into_iter().partition(|_| keep_it.next() == Some(&true));
    analysis.sources = kept;
    let sources_omitted = (total_sources - analysis.sources.len()) as u64;
    let mut keep_it = keep.iter().copied().chain(std::iter::repeat(false));
    let (formats, formats_omitted): (Vec<SourceFormat>, Vec<SourceFormat>) =
        formats.into_iter().partition(|f| keep_it.next() == Some(true) || f.origin == "override");
    // The omitted ones (for 100 000 small files: 99 000 of each, three allocations per source
    // and one per format) are freed beside the rest of the seal, not before it goes on.
    drop_later((omitted, formats_omitted));
    // Identifiers: evidence merged with the responder's values.
    for id in incident.identifiers.iter_mut() {
        let Some(rep) = analysis.identifiers.iter().find(|r| r.ident == id.name) else { continue };
        let place_sources = |value: &str| -> Vec<IdentSource> {
            rep.values
                .iter()
                .filter(|v| v.value == value)
                .flat_map(|v| v.places.iter())
                .take(MAX_MANIFEST_SOURCES)
                .map(|p| IdentSource {
                    origin: "record".into(),
                    path: Some(p.at.source_path.to_string()),
                    line: p.at.line,
                    offset: Some(p.at.offset),
                    field: Some(p.field.clone()),
                })
                .collect()
        };
        let conflict = |value: &str| ConflictingValue { value: value.to_string(), sources: place_sources(value) };
        let given = id.value.clone().filter(|_| id.status == Status::Present);
        match given {
            Some(g) => {
                let norm = super::analyze::normalize_ident(id.name, &g).map(|(v, _)| v).unwrap_or(g);
                id.sources.extend(place_sources(&norm));
                let found = rep.values.iter().any(|v| v.value == norm);
                let single = id.name.is_single_valued();
                for v in &rep.values {
                    if v.value != norm && (single || !found) {
                        id.conflicts.push(conflict(&v.value));
                    }
                }
            }
            None => match rep.status {
                IdentStatus::Present | IdentStatus::Multiple => {
                    let v = rep
                        .value
                        .clone()
                        .or_else(|| (id.name == IdentName::ToolPrincipal).then(|| write_principal(&analysis)).flatten())
                        .or_else(|| rep.values.first().map(|v| v.value.clone()));
                    if let Some(v) = v {
                        id.status = Status::Present;
                        id.sources = place_sources(&v);
                        id.value = Some(v);
                    }
                }
                IdentStatus::Conflict => {
                    // A finding, not a pick: no value, every competing value listed.
                    id.status = Status::Missing;
                    id.value = None;
                    id.conflicts = rep.values.iter().map(|v| conflict(&v.value)).collect();
                }
                IdentStatus::NotObserved | IdentStatus::Missing => {}
            },
        }
    }

    // Side effect: the responder's word, else the evidence.
    let side_effect = if incident.side_effect != SideEffect::Unknown {
        SideEffectDecision { status: incident.side_effect, origin: "responder".into(), warning: None }
    } else {
        match analysis.side_effect() {
            Some((hint, warning)) => {
                let status = match hint {
                    SideEffectStatus::Committed => SideEffect::Happened,
                    SideEffectStatus::NotCommitted => SideEffect::NotHappened,
                    SideEffectStatus::Unknown => SideEffect::Unknown,
                };
                let warning = (hint == SideEffectStatus::Unknown).then(|| warning.to_string());
                SideEffectDecision { status, origin: "evidence".into(), warning }
            }
            None => SideEffectDecision { status: SideEffect::Unknown, origin: "default".into(), warning: None },
        }
    };
    incident.side_effect = side_effect.status;
    if let Some(w) = &side_effect.warning {
        incident.notes.push(format!("custody analysis: side effect unknown — {w}"));
    }

    // Evidence problems: planning, files not collected, records.
    let mut evidence_problems = config.plan_problems.clone();
    evidence_problems.extend(not_collected);
    for p in &analysis.problems {
        let at = match (p.line, p.offset) {
            (Some(l), _) => format!(":{l}"),
            (None, Some(o)) => format!("@{o}"),
            _ => String::new(),
        };
        evidence_problems.push(EvidenceProblem {
            path: format!("{}{at}", p.source_path),
            problem: problem_type(&p.problem),
            detail: problem_detail(&p.problem),
        });
    }
    if analysis.problems_omitted > 0 {
        evidence_problems.push(EvidenceProblem {
            path: "-".into(),
            problem: "problems_omitted".into(),
            detail: format!("{} more record problem(s) not listed", analysis.problems_omitted),
        });
    }

    // The sealer journals the incident's notes: this puts the record-level problems (the
    // file-level ones are journaled by the planner and the sealer) into the hash-chained journal.
    if !analysis.problems.is_empty() {
        let listed: Vec<String> = analysis
            .problems
            .iter()
            .take(MAX_NOTED_PROBLEMS)
            .map(|p| {
                let at = p.line.map(|l| format!(":{l}")).or(p.offset.map(|o| format!("@{o}"))).unwrap_or_default();
                format!("{}{at} {}", p.source_path, problem_type(&p.problem))
            })
            .collect();
        let more = analysis.problems.len() - listed.len() + analysis.problems_omitted as usize;
        incident.notes.push(format!(
            "custody analysis: {} record problem(s) in the evidence (sealed unchanged; details in analysis.problems): {}{}",
            analysis.problems.len() + analysis.problems_omitted as usize,
            listed.join("; "),
            if more > 0 { format!("; +{more} more") } else { String::new() }
        ));
    }
    if mode == AnalysisMode::ValidateOnly {
        incident.notes.push(format!(
            "custody analysis: no identifier given: every line and document was checked for problems, nothing was parsed into records; {NOT_SEARCHED}"
        ));
    }
    let checklist = checklist(config, mode, &analysis, &side_effect, &evidence_problems);
    AnalysisDoc {
        format: ANALYSIS_FORMAT_V1,
        mode,
        field_mapping: config.mapping.clone(),
        formats,
        format_counts,
        sources_omitted,
        analysis,
        side_effect,
        checklist,
        evidence_problems,
    }
}

fn checklist(
    config: &ObserveConfig,
    mode: AnalysisMode,
    a: &Report,
    side: &SideEffectDecision,
    problems: &[EvidenceProblem],
) -> Vec<LinkCheck> {
    let mut items = Vec::new();
    let searched = mode == AnalysisMode::Search;
    let mut push = |item: &str, ok: Option<String>, why_missing: String| {
        // Only what comes from the evidence as a whole holds without a search.
        let needs_search = !matches!(item, "allowed_egress_data" | "evidence_readable");
        let (status, detail) = match ok {
            Some(d) => (Status::Present, d),
            None if na(config, item) => (Status::NotApplicable, "declared not applicable by the responder".into()),
            None if needs_search && !searched => (Status::Missing, format!("not known: {NOT_SEARCHED}")),
            None => (Status::Missing, why_missing),
        };
        items.push(LinkCheck { item: item.into(), status, detail });
    };
    let edge = |from: IdentName, to: IdentName| {
        a.chain()
            .iter()
            .filter(|e| (e.from == from && e.to == to) || (e.from == to && e.to == from))
            .map(|e| {
                if e.from == from {
                    format!("{} → {}", e.from_value, e.to_value)
                } else {
                    format!("{} → {}", e.to_value, e.from_value)
                }
            })
            .collect::<Vec<_>>()
    };
    for (name, from, to) in [
        ("trace_to_session", IdentName::TraceId, IdentName::SessionId),
        ("session_to_bundle", IdentName::SessionId, IdentName::BundleId),
        ("bundle_to_rollout_wave", IdentName::BundleId, IdentName::RolloutWave),
    ] {
        let e = edge(from, to);
        push(
            name,
            (!e.is_empty()).then(|| e.join(", ")),
            format!("no incident record carries both a {from} and a {to}"),
        );
    }
    let (calls, with_principal) = a.tool_call_counts();
    push(
        "tool_call_principals",
        (calls > 0 && with_principal == calls).then(|| format!("{calls} tool call(s), each with its principal")),
        if calls == 0 {
            "no tool call found in the incident records".into()
        } else {
            format!("{} of {calls} tool call(s) show no principal", calls - with_principal)
        },
    );
    let (steps, decided, ds) = a.approval_counts();
    push(
        "approval_path",
        (steps > 0).then(|| {
            format!(
                "{steps} approval step(s), {decided} with a decision ({})",
                ds.into_iter().collect::<Vec<_>>().join(", ")
            )
        }),
        "no approval record found for the incident (use --no-approval-path if the action needed none)".into(),
    );
    push(
        "policy_decisions",
        (a.decision_count() > 0).then(|| format!("{} decision(s)", a.decision_count())),
        "no policy decision found for the incident".into(),
    );
    let (accesses, reads, writes) = a.memory_counts();
    push(
        "memory_records",
        (accesses > 0).then(|| format!("{accesses} access(es): {reads} read(s), {writes} write(s)")),
        "no memory record read or written by the incident was found".into(),
    );
    let allowed = a
        .sources
        .iter()
        .filter(|s| {
            s.kind == "egress" || matches!(s.format, Format::EnvoyJson | Format::EnvoyText | Format::SquidNative)
        })
        .count();
    push(
        "allowed_egress_data",
        (allowed > 0).then(|| format!("{allowed} egress log(s) scanned")),
        "no egress/proxy log was collected, so the allowed egress cannot be checked".into(),
    );
    push(
        "egress_observed",
        (!a.egress().is_empty()).then(|| {
            a.egress().iter().map(|e| format!("{} ×{}", e.destination, e.requests)).collect::<Vec<_>>().join(", ")
        }),
        "no egress request of the incident was observed".into(),
    );
    push(
        "side_effect",
        (side.status != SideEffect::Unknown).then(|| format!("{} (from the {})", side.status.as_str(), side.origin)),
        match &side.warning {
            Some(w) => format!("unknown: {w}"),
            None => "unknown: nothing shows whether the action took effect".into(),
        },
    );
    push(
        "evidence_readable",
        problems.is_empty().then(|| {
            if searched {
                "every planned file was sealed and every record parsed".into()
            } else {
                "every planned file was sealed and every line and document is well-formed".into()
            }
        }),
        format!("{} evidence problem(s): see evidence_problems", problems.len()),
    );
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::xxh3_64;

    const CHUNK: usize = 1000;

    fn content() -> Vec<u8> {
        (0..5 * CHUNK + 321).map(|i| (i % 253) as u8).collect()
    }

    fn disk(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), bytes).unwrap();
        let f = File::open(dir.path().join("f")).unwrap();
        (dir, f)
    }

    fn chunk(bytes: &[u8]) -> Job {
        let mut b = vec![0u8; CHUNK];
        b[..bytes.len()].copy_from_slice(bytes);
        Job::Chunk(b, bytes.len())
    }

    /// Reads a file's bytes through `Chunks` (in small reads, as a scan does), then finishes.
    fn read_through(jobs: Vec<Job>, file: &File, size: u64, switched: u64) -> (Vec<u8>, (Option<u64>, bool)) {
        let (tx, rx) = sync_channel(jobs.len() + 1);
        for j in jobs {
            tx.send(j).unwrap();
        }
        let (spare_tx, _spare) = sync_channel(4);
        let (cancel, switched) = (Arc::new(AtomicBool::new(false)), AtomicU64::new(switched));
        let mut c = Chunks::new(Feed { rx: &rx, spare: &spare_tx, cancel, file, size, switched: &switched });
        let mut got = Vec::new();
        let mut buf = [0u8; 777];
        loop {
            match c.read(&mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        (got, c.finish())
    }

    /// Every chunk handed over, then the end: the bytes are the chunks', not the file's.
    #[test]
    fn chunks_are_read_as_handed_over_whatever_the_file_holds() {
        let sealed = content();
        let (_d, file) = disk(&vec![b'?'; sealed.len()]);
        let mut jobs: Vec<Job> = sealed.chunks(CHUNK).map(chunk).collect();
        jobs.push(Job::End { sealed_xxh3: Some(xxh3_64(&sealed)), rest_xxh3: None });
        let (got, end) = read_through(jobs, &file, sealed.len() as u64, NOT_SWITCHED);
        assert!(got == sealed);
        assert_eq!(end, (Some(xxh3_64(&sealed)), false));
    }

    /// The hand-over stopped after two chunks (the queue was full): the rest is read from the
    /// descriptor, also when the file's end is already queued, and checked against the hash of
    /// the sealed rest; a file whose rest differs is reported.
    #[test]
    fn after_a_switch_the_rest_is_read_from_disk_and_checked() {
        let sealed = content();
        let at = 2 * CHUNK;
        for rewritten in [false, true] {
            let mut on_disk = sealed.clone();
            if rewritten {
                on_disk[at + 10] ^= 1;
            }
            let (_d, file) = disk(&on_disk);
            let mut jobs: Vec<Job> = sealed[..at].chunks(CHUNK).map(chunk).collect();
            jobs.push(Job::End { sealed_xxh3: Some(xxh3_64(&sealed)), rest_xxh3: Some(xxh3_64(&sealed[at..])) });
            let (got, (x, differs)) = read_through(jobs, &file, sealed.len() as u64, at as u64);
            assert!(got == on_disk);
            assert_eq!(x, Some(xxh3_64(&sealed)));
            assert_eq!(differs, rewritten);
        }
    }

    /// `finish` after a scan that stopped early still reads and checks the rest.
    #[test]
    fn finish_checks_the_rest_a_scan_did_not_read() {
        let sealed = content();
        let at = CHUNK;
        let mut on_disk = sealed.clone();
        *on_disk.last_mut().unwrap() ^= 1;
        let (_d, file) = disk(&on_disk);
        let (tx, rx) = sync_channel(8);
        tx.send(chunk(&sealed[..at])).unwrap();
        tx.send(Job::End { sealed_xxh3: Some(xxh3_64(&sealed)), rest_xxh3: Some(xxh3_64(&sealed[at..])) }).unwrap();
        let (spare_tx, _spare) = sync_channel(4);
        let (cancel, switched) = (Arc::new(AtomicBool::new(false)), AtomicU64::new(at as u64));
        let size = sealed.len() as u64;
        let mut c = Chunks::new(Feed { rx: &rx, spare: &spare_tx, cancel, file: &file, size, switched: &switched });
        let mut head = [0u8; 10];
        c.read_exact(&mut head).unwrap();
        assert_eq!(c.finish(), (Some(xxh3_64(&sealed)), true));
    }

    /// The observer hands chunks over while the queue has room; when it is full it stops,
    /// records where, keeps its buffer (no allocation, no wait) and hashes the rest for the
    /// scan thread's check.
    #[test]
    fn observer_stops_handing_over_when_the_queue_is_full() {
        let (tx, rx) = sync_channel(2);
        let (_spare_tx, spare_chunks) = sync_channel(1);
        let (_b_tx, spare) = sync_channel(1);
        let mut obs = AnalysisObserver {
            config: ObserveConfig::default(),
            tx: Some(tx),
            spare,
            spare_chunks,
            batch: Batch::default(),
            worker: None,
            cancel: Arc::new(AtomicBool::new(false)),
            searching: false,
            changed: Vec::new(),
            current: None,
        };
        let sealed = content();
        let (_d, file) = disk(&sealed);
        let entry = Entry {
            path: "logs/f".into(),
            kind: "logs".into(),
            size: sealed.len() as u64,
            sha256: crate::digest::Sha256::of(&sealed),
            source: "f".into(),
            collected_at: chrono::Utc::now(),
        };
        obs.on_file(&entry, &file);
        let mut buf = vec![0u8; CHUNK];
        for (i, part) in sealed.chunks(CHUNK).enumerate() {
            buf[..part.len()].copy_from_slice(part);
            let before = buf.as_ptr();
            obs.on_file_data(&mut buf, part.len());
            assert_eq!(buf.len(), CHUNK);
            // The File job and one chunk fill the queue: from the second chunk on, the
            // observer keeps the sealer's buffer.
            assert_eq!(buf.as_ptr() == before, i >= 1, "chunk {i}");
        }
        let Ok(Job::File { switched, .. }) = rx.recv() else { panic!("a File job first") };
        assert_eq!(switched.load(Ordering::Acquire), CHUNK as u64);
        assert!(matches!(rx.recv(), Ok(Job::Chunk(_, n)) if n == CHUNK));
        obs.on_file_end(Some(xxh3_64(&sealed)));
        let Ok(Job::End { sealed_xxh3, rest_xxh3 }) = rx.recv() else { panic!("the end") };
        assert_eq!((sealed_xxh3, rest_xxh3), (Some(xxh3_64(&sealed)), Some(xxh3_64(&sealed[CHUNK..]))));
    }

    /// `never_seen` finds the planned files the observer was not shown, by one walk when it
    /// saw them in plan order and by lookup when it did not, with the same answer.
    #[test]
    fn never_seen_finds_unsealed_files_in_plan_order_or_any_order() {
        let planned: Vec<PlannedFile> = ["a/1", "a/2", "b/1", "b/2", "c"]
            .iter()
            .map(|p| PlannedFile {
                rel_path: p.to_string(),
                kind: "logs".into(),
                source: p.into(),
                display_source: p.to_string(),
                snapshot: false,
            })
            .collect();
        let names = |v: Vec<&PlannedFile>| v.iter().map(|f| f.rel_path.clone()).collect::<Vec<_>>();
        assert_eq!(names(never_seen(&planned, &["a/1", "b/1", "c"])), ["a/2", "b/2"]);
        assert_eq!(names(never_seen(&planned, &["a/1", "a/2", "b/1", "b/2", "c"])), Vec::<String>::new());
        assert_eq!(names(never_seen(&planned, &[])), ["a/1", "a/2", "b/1", "b/2", "c"]);
        assert_eq!(names(never_seen(&planned, &["c", "a/1", "b/1"])), ["a/2", "b/2"], "out of plan order");
        assert_eq!(names(never_seen(&planned, &["b/2", "a/1"])), ["a/2", "b/1", "c"], "out of plan order");
    }
}
