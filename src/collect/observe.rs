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
//! Without a seed, records are parsed (up to [`SEEDLESS_PARSE_BUDGET`] bytes; beyond, lines
//! are only checked) and the values of each identifier are counted as candidates; when the
//! evidence (all of it parsed) holds exactly one trace, or else one session, that value is
//! used as an **inferred** seed.
//!
//! [`AnalysisObserver::finish`] joins the scan thread, builds the report ([`Report`]: the
//! bundle's `analysis.json`, schema `schemas/analysis.v2.schema.json`), and merges it into
//! the manifest: the identifiers (a given value stays the value, a disagreeing one is listed
//! as a conflict; a conflict is never a pick), the side effect when the responder did not
//! give it, and notes that the journal records.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::analysis::{
    Analysis, AnalysisSummary, Candidates, EvidenceProblem, IdentStatus, MappingInfo, Mode, Seed, SeedOrigin,
};
use super::analyze::{
    detect, scan_filtered, Analyzer, AnalyzerLimits, FieldMapping, Format, LineFilter, Needles, Problem, Report,
    ReportContext, ScanLimits, ValidateOnly,
};
use crate::bundle::manifest::{ConflictingValue, Entry, IdentName, IdentSource, Incident, SideEffect, Status};
use crate::bundle::write::{Observer, PlannedFile};

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
/// Most values searched for by the line pre-filter; beyond, every line is parsed.
const MAX_NEEDLE_VALUES: usize = 4096;
/// Most large files kept open for re-reading; later ones are parsed whole.
const MAX_KEPT_FILES: usize = 256;
/// Bytes of kept large files that may be re-read while the sealer still has files to seal (an
/// eager re-read), over the whole run. Values linked by a later file (the session a tool-call log
/// names) are usually searched for in the files scanned before it: re-read then, the work
/// overlaps the sealing instead of running alone after the last file, with one core idle. The
/// budget bounds what eager passes can add when many files each link a few new values (every
/// pass re-reads a whole file); what it does not cover waits for the final re-read.
const EAGER_REREAD_BYTES: u64 = 256 * 1024 * 1024;
/// Record problems named one by one in the journal note (all are in `analysis.problems`).
const MAX_NOTED_PROBLEMS: usize = 50;
/// Without a seed, records are parsed (to count candidate values and infer a seed) up to this
/// many bytes; later lines are only checked for problems. Candidates are then incomplete and
/// no seed is inferred (the analysis says so).
pub const SEEDLESS_PARSE_BUDGET: u64 = 32 * 1024 * 1024;

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
#[non_exhaustive]
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
    /// The analyzer's limits (merge window…).
    pub limits: AnalyzerLimits,
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
    an: Analyzer,
    /// Large files whose re-read differed from the sealed bytes.
    changed: Vec<String>,
    /// The paths scanned, in the order seen.
    seen: Vec<String>,
    /// Without a seed: the values found, and whether all records were parsed.
    candidates: Vec<Candidates>,
}

/// Feeds the sealer's files to the analysis thread (see the module doc) and, at the end,
/// writes the analysis into the bundle and the manifest.
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
    /// Per identifier, why it has no value (known after `finish`).
    why_missing: BTreeMap<IdentName, String>,
    /// Files per evidence kind, by content (known after `finish`).
    kinds: Option<BTreeMap<String, u64>>,
}

impl AnalysisObserver {
    /// Start the scan thread. `seeds` are the responder's, normalised
    /// ([`super::analyze::normalize_seed`]).
    pub fn start(config: ObserveConfig, seeds: &[Seed]) -> io::Result<Self> {
        let seeds: Vec<Seed> = seeds.to_vec();
        let limits = config.limits;
        let (tx, rx) = sync_channel::<Job>(QUEUE_DEPTH);
        let (spare_tx, spare) = sync_channel::<Batch>(SPARE_BATCHES);
        let (chunks_tx, spare_chunks) = sync_channel::<Vec<u8>>(SPARE_CHUNKS);
        let cancel = Arc::new(AtomicBool::new(false));
        let (mapping, formats, c2) = (config.mapping.mapping.clone(), config.formats.clone(), cancel.clone());
        let spares = Spares { batches: spare_tx, chunks: chunks_tx };
        let worker = std::thread::Builder::new()
            .name("custody-analyze".into())
            .spawn(move || scan_worker(rx, spares, seeds, limits, mapping, formats, c2))?;
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
            why_missing: BTreeMap::new(),
            kinds: None,
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
    fn missing_identifier_detail(&self, name: IdentName) -> String {
        self.why_missing.get(&name).cloned().unwrap_or_else(|| crate::bundle::write::NOT_FOUND_IN_EVIDENCE.to_string())
    }

    fn evidence_kinds(&self) -> Option<BTreeMap<String, u64>> {
        self.kinds.clone()
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
                problem: "not_analysed".into(),
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

    fn finish(&mut self, incident: &mut Incident, out: &mut dyn Write) -> io::Result<Option<AnalysisSummary>> {
        self.flush();
        self.tx = None;
        let Some(worker) = self.worker.take() else { return Ok(None) };
        let t = std::time::Instant::now();
        let Ok(scanned) = worker.join() else { return Ok(None) };
        let joined = t.elapsed();
        let ScanOutput { an, changed, seen, candidates } = scanned;
        self.changed = changed;
        // Planned files the observer never saw were not collected (their errors are journaled).
        let mut file_problems = self.config.plan_problems.clone();
        let seen_refs: Vec<&str> = seen.iter().map(String::as_str).collect();
        file_problems.extend(never_seen(&self.config.planned, &seen_refs).into_iter().map(|f| EvidenceProblem {
            path: f.display_source.clone(),
            problem: "not_collected".into(),
            detail: format!(
                "planned as `{}` but not sealed (unreadable or not a regular file: see the journal)",
                f.rel_path
            ),
        }));
        let ctx = ReportContext {
            mapping: self.config.mapping.clone(),
            not_applicable: self.config.not_applicable.clone(),
            file_problems,
            side_effect: incident.side_effect,
            candidates,
            mode: None,
        };
        if tracing::enabled!(target: crate::TIMING, tracing::Level::INFO) {
            tracing::info!(target: crate::TIMING, state = an.memory_report(), rss = rss(), "analysis state");
        }
        let report = Report::build(an, ctx);
        let built = t.elapsed();
        if tracing::enabled!(target: crate::TIMING, tracing::Level::INFO) {
            tracing::info!(target: crate::TIMING, rss = rss(), "analysis report built");
        }
        let head = report.head();
        apply(head, incident, &mut self.why_missing);
        self.kinds = Some(report.evidence_kinds());
        serde_json::to_writer(&mut *out, &report)?;
        if tracing::enabled!(target: crate::TIMING, tracing::Level::INFO) {
            tracing::info!(
                target: crate::TIMING,
                waited_for_scan = joined.as_secs_f64(),
                report = (built - joined).as_secs_f64(),
                write = (t.elapsed() - built).as_secs_f64(),
                rss = rss(),
                "analysis written"
            );
        }
        let summary = report.summary();
        drop_later(report);
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
    /// The values the file was last scanned for.
    values: BTreeSet<String>,
    /// Of those, the values whose lines were all kept when parsed (linked and hop values, not
    /// the chain's change ids): a re-read skips lines holding one.
    seen: BTreeSet<String>,
    /// Every line has been parsed.
    done: bool,
    /// The sealed size.
    size: u64,
    /// XXH3-64 of the sealed bytes: a re-read must see the same.
    sealed_xxh3: u64,
    /// The path in the bundle, named if a re-read finds the file changed.
    path: String,
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

/// A matcher for the patterns of `values` (all of `needles` when `None`).
fn matcher(needles: &Needles, values: Option<&BTreeSet<String>>) -> Option<Matcher> {
    let pats: Vec<&Vec<u8>> = needles
        .values
        .iter()
        .filter(|(v, _)| values.map_or(true, |s| s.contains(*v)))
        .flat_map(|(_, p)| p.iter())
        .filter(|p| !p.is_empty())
        .collect();
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

/// What a re-read of a large file needs: its source, its format and the values its first
/// pass searched for.
type KeepForReread = (super::analyze::SourceId, Format, BTreeSet<String>, BTreeSet<String>);

/// The needles for a file of `format`. The chain's change ids find infrastructure records: a
/// format of another kind (agent traces, approvals, proxies) holds none, and its lines naming
/// the change (every approval of a rollout may) are not parsed for them.
fn needles_for(needles: Option<Needles>, format: Format) -> Option<Needles> {
    let mut n = needles?;
    if format.kind().is_some_and(|k| !matches!(k, "deploy" | "cluster" | "cloud")) {
        let chain = std::mem::take(&mut n.chain);
        n.values.retain(|v, _| !chain.contains(v));
    }
    Some(n)
}

/// The values a pre-filter searched for, and those whose lines were all kept.
fn searched(n: &Needles) -> (BTreeSet<String>, BTreeSet<String>) {
    let all: BTreeSet<String> = n.values.keys().cloned().collect();
    let seen = all.difference(&n.chain).cloned().collect();
    (all, seen)
}

/// The scan thread's state.
struct Worker {
    an: Analyzer,
    mapping: FieldMapping,
    overrides: Vec<FormatOverride>,
    limits: ScanLimits,
    kept: Vec<Filtered>,
    /// [`Analyzer::needles`] at a [`Analyzer::link_generation`]: recomputed only when it changed.
    needles: Option<(u64, Option<Needles>)>,
    cancel: Arc<AtomicBool>,
    /// Large files whose re-read differed from the sealed bytes.
    changed: Vec<String>,
    /// Large files whose hand-over stopped (the analysis lagged), and the bytes of them read
    /// from disk instead (for `CUSTODY_TIMINGS`).
    switched: (u64, u64),
    /// Paths scanned, in order.
    seen: Vec<String>,
    /// Without a seed: bytes still to parse fully; `None` in a search.
    budget: Option<u64>,
    /// Without a seed: some records were only checked (the budget ran out).
    exhausted: bool,
    /// What is left of [`EAGER_REREAD_BYTES`].
    eager_left: u64,
    /// The [`Analyzer::link_generation`] of the last eager re-read.
    eager_generation: u64,
}

impl Worker {
    fn needles(&mut self) -> Option<Needles> {
        let generation = self.an.link_generation();
        if let Some((g, v)) = &self.needles {
            if *g == generation {
                return v.clone();
            }
        }
        let v = self.an.needles(MAX_NEEDLE_VALUES);
        self.needles = Some((generation, v.clone()));
        v
    }

    fn format_of(&self, meta: &Meta, head: &[u8]) -> (Format, &'static str) {
        match override_for(&self.overrides, &meta.path, &meta.kind) {
            Some(f) => (f, "override"),
            None => (detect(&meta.path, head), "detected"),
        }
    }

    /// Without a seed: whether `size` more bytes may be parsed fully.
    fn parse_seedless(&mut self, size: u64) -> bool {
        match self.budget.as_mut() {
            Some(left) if *left >= size => {
                *left -= size;
                true
            }
            Some(_) => {
                self.exhausted = true;
                false
            }
            None => true,
        }
    }

    fn begin(&mut self, meta: &Meta, format: Format, origin: &'static str) -> super::analyze::SourceId {
        self.seen.push(meta.path.clone());
        let id = self.an.begin_source(&meta.path, &meta.sha256.hex(), meta.size, &meta.kind, format, origin);
        if format.is_opaque() {
            let why = if origin == "override" {
                "read as `opaque` by a --format override: sealed, not read"
            } else {
                "binary content: sealed, not read"
            };
            self.an.not_analysed(id, why.into());
        }
        id
    }

    fn done(
        &mut self,
        id: super::analyze::SourceId,
        r: Result<super::analyze::ScanSummary, super::analyze::ScanError>,
    ) -> Option<super::analyze::ScanSummary> {
        match r {
            Ok(s) => {
                self.an.add_lines(id, s.lines);
                let c = s.compression.map(|c| match c {
                    super::analyze::Compression::Gzip => "gzip",
                    super::analyze::Compression::Zstd => "zstd",
                });
                let c = if s.utf16 { Some("utf-16") } else { c };
                self.an.scanned(id, s.bytes_scanned, c);
                Some(s)
            }
            Err(e) => {
                self.an.add_problem(id, Problem::ReadFailed { message: crate::error_text(&e) });
                self.an.not_analysed(id, format!("reading it for the analysis failed: {e}"));
                None
            }
        }
    }

    /// A small file, from memory.
    fn scan_bytes(&mut self, meta: Meta, data: &[u8]) {
        let head = data.get(..data.len().min(DETECT_HEAD)).unwrap_or_default();
        let (format, origin) = self.format_of(&meta, head);
        let id = self.begin(&meta, format, origin);
        let parse = self.parse_seedless(data.len() as u64);
        let mut validate = ValidateOnly;
        let filter: Option<&mut dyn LineFilter> = if parse { None } else { Some(&mut validate) };
        let an = &mut self.an;
        let r = scan_filtered(format, data, &self.mapping, &self.limits, filter, &mut |rec| an.push(id, rec));
        self.done(id, r);
    }

    /// A large file, its bytes as the sealer passes them on. Returns what a re-read needs if
    /// the pre-filter skipped lines of it.
    fn scan_file(&mut self, meta: &Meta, chunks: &mut Chunks<'_>) -> Option<KeepForReread> {
        let mut head = Vec::with_capacity(DETECT_HEAD);
        let head_err = (&mut *chunks).take(DETECT_HEAD as u64).read_to_end(&mut head).err();
        let (format, origin) = self.format_of(meta, &head);
        let id = self.begin(meta, format, origin);
        if let Some(e) = head_err {
            self.an.add_problem(id, Problem::ReadFailed { message: e.to_string() });
            self.an.not_analysed(id, format!("reading it for the analysis failed: {e}"));
            return None;
        }
        let input = io::Cursor::new(head).chain(&mut *chunks);
        // In a search, large files get the pre-filter (they can be re-read through their
        // descriptor); without a seed they are parsed within the budget, else checked only.
        let searching = self.an.has_seeds();
        let needles = if searching && self.kept.len() < MAX_KEPT_FILES && !format.is_opaque() {
            needles_for(self.needles(), format)
        } else {
            None
        };
        let parse = searching || self.parse_seedless(meta.size);
        let mut needle =
            needles.as_ref().map(|n| NeedleFilter { want: matcher(n, None), seen: None, first_pass: true });
        self.an.set_rereadable(id, needle.is_some());
        let mut validate = ValidateOnly;
        let filter: Option<&mut dyn LineFilter> = match (parse, needle.as_mut()) {
            (false, _) => Some(&mut validate),
            (true, Some(f)) => Some(f),
            (true, None) => None,
        };
        let an = &mut self.an;
        let r = scan_filtered(format, input, &self.mapping, &self.limits, filter, &mut |rec| an.push(id, rec));
        let s = self.done(id, r)?;
        // Kept for re-reading when lines were skipped or records not kept.
        let again = s.filtered > 0 || self.an.deferred(id) > 0;
        needles.filter(|_| again).map(|n| {
            let (values, seen) = searched(&n);
            (id, format, values, seen)
        })
    }

    /// Lines skipped by the pre-filter are read again for the values linked since, until
    /// nothing new is linked.
    fn reread(&mut self) {
        while !self.cancel.load(Ordering::Relaxed) {
            if !self.reread_pass(None) {
                break;
            }
        }
    }

    /// While files are still being sealed: one re-read pass over the kept files that have values
    /// to catch up on, within what is left of [`EAGER_REREAD_BYTES`]. Skipped when nothing was
    /// linked since the last pass.
    fn eager_reread(&mut self) {
        if self.kept.is_empty() || self.eager_left == 0 || self.an.link_generation() == self.eager_generation {
            return;
        }
        self.eager_generation = self.an.link_generation();
        let mut left = self.eager_left;
        self.reread_pass(Some(&mut left));
        self.eager_left = left;
    }

    /// One re-read of every kept file with values it was not searched for; with a budget, only
    /// the files that fit in it (each re-read takes its size). Whether any file was re-read.
    fn reread_pass(&mut self, mut budget: Option<&mut u64>) -> bool {
        let now = self.needles();
        let mut again = false;
        for k in self.kept.iter_mut() {
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
            let now = needles_for(now.clone(), k.format);
            let now_values: Option<(BTreeSet<String>, BTreeSet<String>)> = now.as_ref().map(searched);
            let want = match &now_values {
                Some((v, _)) if v.is_subset(&k.values) => continue,
                Some((v, _)) => Some(v.difference(&k.values).cloned().collect::<BTreeSet<_>>()),
                None => None,
            };
            if let Some(left) = budget.as_deref_mut() {
                // Parsed whole (no pre-filter left) is for the final pass only.
                if want.is_none() || k.size > *left {
                    continue;
                }
                *left -= k.size;
            }
            again = true;
            self.an.rereads += 1;
            let old = k.seen.clone();
            let mut filter = NeedleFilter {
                want: match (&now, &want) {
                    (Some(n), Some(w)) => matcher(n, Some(w)),
                    _ => None,
                },
                seen: now.as_ref().and_then(|n| matcher(n, Some(&old))),
                first_pass: false,
            };
            let reader = PositionalReader { file: &k.file, pos: 0, limit: k.size, cancel: self.cancel.clone() };
            let mut input = Xxh3Reader::new(reader);
            let id = k.source;
            // Parsed whole (too many values to search for): nothing is left to re-read, so
            // every record is kept (within the pending budget).
            self.an.set_rereadable(id, now.is_some());
            let an = &mut self.an;
            let _ = scan_filtered(k.format, &mut input, &self.mapping, &self.limits, Some(&mut filter), &mut |rec| {
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
            match now_values {
                Some((v, seen)) => {
                    k.values = v;
                    k.seen = seen;
                }
                // Every line was parsed: nothing is left to re-read.
                None => k.done = true,
            }
        }
        self.kept.retain(|k| !k.done);
        again
    }
}

fn scan_worker(
    rx: Receiver<Job>,
    spare: Spares,
    seeds: Vec<Seed>,
    limits: AnalyzerLimits,
    mapping: FieldMapping,
    overrides: Vec<FormatOverride>,
    cancel: Arc<AtomicBool>,
) -> ScanOutput {
    crate::bundle::write::lower_priority(ANALYZE_NICE);
    let an = Analyzer::new(seeds, limits);
    let budget = (!an.has_seeds()).then_some(SEEDLESS_PARSE_BUDGET);
    let mut w = Worker {
        an,
        mapping,
        overrides,
        limits: ScanLimits::default(),
        kept: Vec::new(),
        needles: None,
        cancel,
        changed: Vec::new(),
        switched: (0, 0),
        seen: Vec::new(),
        budget,
        exhausted: false,
        eager_left: EAGER_REREAD_BYTES,
        eager_generation: 0,
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
                } else if let (Some((source, format, values, seen)), Some(sealed_xxh3)) = (keep, sealed_xxh3) {
                    w.kept.push(Filtered {
                        file,
                        source,
                        format,
                        values,
                        seen,
                        done: false,
                        size: meta.size,
                        sealed_xxh3,
                        path: meta.path,
                    });
                }
                if w.an.has_seeds() {
                    w.eager_reread();
                }
            }
            // Bytes of a file whose hand-over failed (never sent as a `File`): nothing to scan.
            Job::Chunk(buf, _) => {
                let _ = spare.chunks.try_send(buf);
            }
            Job::End { .. } => {}
        }
    }
    let t = std::time::Instant::now();
    let mut candidates = Vec::new();
    if w.an.has_seeds() {
        w.reread();
    } else {
        candidates = super::analyze::report::candidates(&w.an, !w.exhausted);
        // One trace (else one session) in evidence that was all parsed: an inferred seed.
        if !w.exhausted {
            for ident in [IdentName::TraceId, IdentName::SessionId] {
                let c = candidates.iter().find(|c| c.name == ident);
                if let Some(v) = c.filter(|c| c.distinct == 1 && !c.capped).and_then(|c| c.values.first()) {
                    let seed = Seed {
                        ident: Some(ident),
                        value: v.value.clone(),
                        given: None,
                        normalised: None,
                        origin: SeedOrigin::Inferred,
                        records: 0,
                    };
                    w.an.infer_seed(seed);
                    break;
                }
            }
        }
    }
    tracing::info!(
        target: crate::TIMING,
        reread = t.elapsed().as_secs_f64(),
        lagged_files = w.switched.0,
        lagged_bytes_read_from_disk = w.switched.1,
        "analysis after the last file"
    );
    ScanOutput { an: w.an, changed: w.changed, seen: w.seen, candidates }
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

/// Merges the analysis into the manifest's incident: the identifiers (a value given by the
/// responder stays the value; for a single-valued identifier every other value in the
/// evidence is listed as a conflict), the side effect when the responder left it unknown,
/// and the analysis' notes (to `incident.tool_notes`; the journal records them).
fn apply(a: &Analysis, incident: &mut Incident, why_missing: &mut BTreeMap<IdentName, String>) {
    let sources_of = |values: &[super::analysis::ValueFinding], value: &str| -> Vec<IdentSource> {
        values
            .iter()
            .filter(|v| v.value == value)
            .flat_map(|v| v.citations.iter())
            .take(MAX_MANIFEST_SOURCES)
            .map(|c| IdentSource {
                origin: "record".into(),
                path: Some(c.path.clone()),
                line: c.line,
                offset: Some(c.offset),
                field: c.field.clone(),
            })
            .collect()
    };
    for id in incident.identifiers.iter_mut() {
        let Some(f) = a.identifiers.iter().find(|f| f.name == id.name) else { continue };
        let conflict = |v: &super::analysis::ValueFinding| ConflictingValue {
            value: v.value.clone(),
            sources: sources_of(std::slice::from_ref(v), &v.value),
        };
        match f.status {
            IdentStatus::Given | IdentStatus::NotObserved => {
                let given = f.value.clone().unwrap_or_default();
                id.sources.extend(sources_of(&f.values, &given));
                let found = f.values.iter().any(|v| v.value == given);
                for v in &f.values {
                    if v.value != given && (id.name.is_single_valued() || !found) {
                        id.conflicts.push(conflict(v));
                    }
                }
            }
            IdentStatus::Found | IdentStatus::Inferred => {
                let v = f.value.clone().unwrap_or_default();
                id.status = Status::Present;
                id.sources = sources_of(&f.values, &v);
                if f.status == IdentStatus::Inferred {
                    id.sources.insert(
                        0,
                        IdentSource { origin: "inferred".into(), path: None, line: None, offset: None, field: None },
                    );
                }
                id.value = Some(v);
            }
            IdentStatus::Conflict => {
                id.status = Status::Missing;
                id.value = None;
                id.conflicts = f.values.iter().map(conflict).collect();
                why_missing.insert(id.name, format!("CONFLICT: {}", f.why));
            }
            IdentStatus::Unknown => {
                why_missing.insert(id.name, format!("unknown: {}", f.why));
            }
            IdentStatus::NotApplicable => {}
        }
    }
    // custody's notes go to their own field (v3), never among the responder's.
    let mut tool_notes = incident.tool_notes.take().unwrap_or_default();
    let se = &a.side_effect;
    if se.origin == "evidence" {
        incident.side_effect = se.status;
    }
    if let Some(w) = &se.warning {
        tool_notes.push(format!("custody analysis: side effect unknown — {w}"));
    }
    if se.duplicates > 0 {
        tool_notes.push(format!("custody analysis: {}", se.detail));
    }
    for s in &a.seeds {
        if s.records == 0 && s.origin != SeedOrigin::Inferred {
            tool_notes.push(format!(
                "custody analysis: WARNING: the seed {} {} matched no record of the evidence",
                s.ident.map_or("value", |i| i.as_str()),
                s.value
            ));
        }
        if s.origin == SeedOrigin::Inferred {
            tool_notes.push(format!(
                "custody analysis: no seed was given; the evidence holds exactly one {}, {}, used as an inferred seed",
                s.ident.map_or("value", |i| i.as_str()),
                s.value
            ));
        }
    }
    if a.mode == Mode::Candidates {
        let n = |i: IdentName| a.candidates.iter().find(|c| c.name == i).map_or(0, |c| c.distinct);
        tool_notes.push(format!(
            "custody analysis: no seed was given and none could be inferred ({} trace(s), {} session(s) in the evidence): candidates are listed in analysis.candidates; preserve again with --trace-id to search",
            n(IdentName::TraceId),
            n(IdentName::SessionId)
        ));
    }
    if !a.problems.is_empty() {
        let listed: Vec<String> = a
            .problems
            .iter()
            .take(MAX_NOTED_PROBLEMS)
            .map(|p| {
                let at = p.line.map(|l| format!(":{l}")).or(p.offset.map(|o| format!("@{o}"))).unwrap_or_default();
                format!("{}{at} {}", p.path, p.problem)
            })
            .collect();
        let total = a.problems.len() + a.problems_omitted as usize;
        let more = total - listed.len();
        tool_notes.push(format!(
            "custody analysis: {total} record problem(s) in the evidence (sealed unchanged; details in analysis.problems): {}{}",
            listed.join("; "),
            if more > 0 { format!("; +{more} more") } else { String::new() }
        ));
    }
    incident.tool_notes = Some(tool_notes);
    if incident.side_effect == SideEffect::Unknown && se.warning.is_none() && se.writes == 0 {
        // Nothing known either way: the checklist says so.
    }
}

/// The process' resident and peak resident memory (for `CUSTODY_TIMINGS`).
fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or_default()
    };
    format!("rss {} (peak {})", get("VmRSS:"), get("VmHWM:"))
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
            changed: Vec::new(),
            current: None,
            why_missing: BTreeMap::new(),
            kinds: None,
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
                link_target: None,
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
