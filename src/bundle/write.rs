//! The bundle writer: a deterministic, streaming `tar` + `zstd` sealer.
//!
//! Threads (plus zstd's workers) form a pipeline, so that hashing and compression run on
//! both cores at once and every evidence byte is SHA-256-hashed exactly once:
//! * the **reader** opens each planned file (never following symlinks, never blocking on a
//!   FIFO), reads and hashes small files with SHA-256 straight into memory, hands each large
//!   file to one of two **hashers** (a first pass over the open descriptor in cache-sized
//!   reads, SHA-256 together with a fast XXH3; see `HASHERS`; the reader makes that pass
//!   itself when their queue is full), and hands the files on, in plan order, in batches
//!   through a bounded channel (a large file as an `Item::Hashing` that the writer waits on
//!   if its hash is not done yet);
//! * the **writer** emits the tar member `blobs/sha256/<hex>` (a large file is re-read from
//!   the same descriptor, from the page cache, and checked against the XXH3 of the first pass
//!   so a file that changed between passes is caught) into a multi-threaded zstd encoder,
//!   whose output is hashed on its way to disk: that hash is the bundle's digest. An
//!   [`Observer`] (the analysis) is handed each small file's bytes and each large file's copy
//!   buffers as they are written, so it sees exactly the sealed bytes. Small
//!   members are staged and handed to zstd in large writes, so 100 000 tiny files cost
//!   hundreds of encoder calls, not hundreds of thousands. At the end the analysis (if any)
//!   is spooled to an unnamed temporary file and copied in as `analysis.json`, then the compact
//!   manifest (streamed from its pre-rendered pieces) and the envelope signing its digest
//!   close the archive (format v2); these members are compressed at zstd level 1.
//!
//! The tar header of a blob names its SHA-256, so a blob's bytes can only be written after
//! the whole file was hashed: that is why large files are read twice (the second read is a
//! page-cache copy; the SHA-256 is not repeated).
//!
//! Memory is bounded whatever the input size: at most `CHANNEL_DEPTH` batches of at most
//! about `BATCH_BYTES` (+ one file of at most `SMALL_FILE`) are in flight, plus the reader's
//! look-ahead, the hashers' read buffers and `SPARE_BUFFERS` emptied batch buffers handed back
//! for reuse; zstd's buffers are fixed by `ZSTD_JOB_SIZE` and the worker count. Entries are written in manifest order,
//! each blob once; `analysis.json`, `manifest.json` and `manifest.dsse.json` close the archive. Owner, group,
//! mode and mtime of every member are fixed, and zstd's multi-threaded output does not depend
//! on timing, so the same evidence and clock give a byte-identical bundle.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

use chrono::{DateTime, Utc};

use super::dsse;
use super::journal::{decimal, json_str, Journal};
use super::manifest::{
    AnalysisRef, CheckItem, Collector, Completeness, Entry, EventKind, Incident, LedgerLink, Manifest,
    ManifestStatement, Signer, Status, ANALYSIS_MEMBER, FORMAT_V2, FORMAT_V3, STATEMENT_PAYLOAD_TYPE,
};
use super::merkle;
use crate::clock::Clock;
use crate::digest::{BundleId, Hasher, HashingWriter, Sha256};
use crate::keys::SecretKey;
use crate::progress::Meter;

/// Files up to this size are read into memory once; larger ones are read twice from the
/// page cache (hash pass, then copy pass).
pub const SMALL_FILE: u64 = 1 << 20;
/// Read size of both passes: small enough that a chunk is still in the L2 cache when it is
/// hashed (SHA-256 runs ~35% faster on cache-resident data than on 4 MiB chunks).
const READ_BUF: usize = 256 << 10;
/// The reader hands files over in batches of at most this many bytes…
const BATCH_BYTES: u64 = 1 << 20;
/// …or this many files (whichever comes first; a large file ends a batch).
const BATCH_FILES: usize = 512;
/// Batches in flight between reader and writer.
const CHANNEL_DEPTH: usize = 4;
/// Small members are gathered into writes of about this size before they reach zstd.
const STAGE: usize = 256 << 10;
/// zstd multi-threading job size. zstd's default at level 3 is 8 MiB, which with two workers
/// keeps ~100 MiB of job buffers allocated. zstd's memory is proportional to it (round buffer
/// of workers + 3 jobs, one output buffer per job in flight): heaptrack on the 1 GiB corpus
/// shows 53 MiB of zstd allocations at 4 MiB, peak RSS 81 -> 57 MiB at 2 MiB, with the same
/// compressed size (±0.2%) — the headroom the analysis needs under the 128 MiB goal.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// Evidence kinds the checklist requires.
pub const REQUIRED_KINDS: [&str; 6] = ["traces", "policy", "approvals", "memory", "egress", "logs"];

/// Errors that stop sealing (problems with individual evidence files do not: they are
/// recorded in the journal).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Writing the bundle failed.
    #[error("cannot write the bundle")]
    Output(#[source] io::Error),
    /// Some files changed between the hash pass and the copy pass (or, for the analysis,
    /// between the copy and a re-read); the caller retries with snapshots of those files.
    #[error("{} file(s) changed while being sealed: {}", .0.len(), .0.join(", "))]
    Changed(Vec<String>),
    /// Nothing could be collected.
    #[error("nothing could be collected: every source was missing, unreadable or skipped")]
    NothingCollected,
    /// The reader, a hasher (or the signing) thread died, or a hasher answered for another
    /// file than the one the writer waited for.
    #[error("internal error: a sealing thread stopped unexpectedly")]
    ReaderPanicked,
}

/// One file to collect.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// Path inside the bundle (`kind/...`), unique.
    pub rel_path: String,
    /// Evidence kind.
    pub kind: String,
    /// Where to read it.
    pub source: PathBuf,
    /// How to name the source in the manifest.
    pub display_source: String,
    /// Copy the file to a private snapshot first (set after it changed during a seal).
    pub snapshot: bool,
    /// Reached through a followed symbolic link: the identity (device, inode, birth) its target had when
    /// the link was checked ([`crate::collect::links`]). The reader reads only that file:
    /// anything else found at `source` (swapped in since) is journaled, not read.
    pub link_target: Option<crate::FileId>,
}

/// An event recorded while planning (before reading), e.g. a skipped symlink.
#[derive(Debug, Clone)]
pub struct PlanEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Skipped, error or note.
    pub event: EventKind,
    /// The path concerned.
    pub path: Option<String>,
    /// Why.
    pub detail: String,
}

/// Everything the sealer needs.
pub struct SealInput<'a> {
    /// Files, sorted by `rel_path` (shared: the reader thread and the writer both walk it).
    pub files: Arc<[PlannedFile]>,
    /// Events from planning, journaled first.
    pub plan_events: Vec<PlanEvent>,
    /// Incident facts (identifiers, category, side effect, notes).
    pub incident: Incident,
    /// Items the responder declared not applicable.
    pub not_applicable: Vec<String>,
    /// The ledger head when sealing.
    pub ledger_prev: Option<LedgerLink>,
    /// Time source.
    pub clock: &'a Clock,
    /// Signing key.
    pub key: &'a SecretKey,
    /// zstd level.
    pub level: i32,
    /// zstd worker threads (0 = single-threaded).
    pub workers: u32,
    /// Called with each collected file's entry and bytes, for the analysis (optional).
    pub observer: Option<&'a mut dyn Observer>,
    /// A supplement's signed link to the bundle it re-analyses (`custody analyze`).
    pub supplement_of: Option<crate::bundle::manifest::SupplementOf>,
}

/// Sees each collected file once, as the sealer reads it (used by the collector's analysis).
pub trait Observer: Send {
    /// A collected small file's bytes.
    fn on_bytes(&mut self, entry: &Entry, data: &[u8]);
    /// A collected large file, hashed (`entry` holds its digest and size) but not yet copied
    /// into the archive. Its bytes follow through [`Observer::on_file_data`] as the sealer
    /// copies them (so the analysis of a large file runs beside its compression and sees
    /// exactly the sealed bytes), then [`Observer::on_file_end`]. `file` may be duplicated
    /// and kept to read the file again later, with positional reads only (`read_at`, never
    /// moving the offset the sealer copies through) and no further than `entry.size`; what
    /// such a re-read sees must be checked against the XXH3 given to `on_file_end` (see
    /// [`Observer::changed_since_sealed`]).
    fn on_file(&mut self, entry: &Entry, file: &File);
    /// The next bytes of the file announced by [`Observer::on_file`]: `buf[..len]`, exactly
    /// as they were written into the archive, in order. The observer may take them without a
    /// copy by swapping `buf` for a buffer of the same length that it no longer needs.
    fn on_file_data(&mut self, buf: &mut Vec<u8>, len: usize) {
        let _ = (buf, len);
    }
    /// The end of the announced file's bytes: `Some` of the XXH3-64 of all of them, or
    /// `None` when the copy ended early or the file changed under it (the seal then fails with
    /// [`SealError::Changed`] and is retried with a fresh observer).
    fn on_file_end(&mut self, sealed_xxh3: Option<u64>) {
        let _ = sealed_xxh3;
    }
    /// After all files: update the incident's identifiers, write the analysis document
    /// (JSON, one line) to `out` and return a small summary of it for the caller's report
    /// (`Ok(None)`, with nothing written: no analysis).
    fn finish(
        &mut self,
        incident: &mut Incident,
        out: &mut dyn Write,
    ) -> io::Result<Option<crate::collect::analysis::AnalysisSummary>>;
    /// The completeness detail of an identifier that was not given and has no value: why
    /// (not found, not searched, in conflict, not decided by the evidence).
    fn missing_identifier_detail(&self, name: crate::bundle::manifest::IdentName) -> String {
        let _ = name;
        NOT_FOUND_IN_EVIDENCE.to_string()
    }
    /// After [`Observer::finish`]: the collected files per evidence kind, decided by their
    /// content (the folder only when the content does not say). `None`: by folder.
    fn evidence_kinds(&self) -> Option<std::collections::BTreeMap<String, u64>> {
        None
    }
    /// After [`Observer::finish`]: the paths of large files that the observer read again and
    /// found different from the sealed bytes (its analysis of them cannot be trusted, so the
    /// seal fails with [`SealError::Changed`] and is retried).
    fn changed_since_sealed(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Feeds a large file to `observer` the way the sealer does ([`Observer::on_file`], its
/// first `entry.size` bytes through [`Observer::on_file_data`], [`Observer::on_file_end`]),
/// for library callers and tests that run an observer without a seal. The file is read from
/// its current offset.
pub fn observe_file(observer: &mut dyn Observer, entry: &Entry, file: &mut File) -> io::Result<()> {
    observer.on_file(entry, file);
    let mut buf = vec![0u8; READ_BUF];
    let Ok(copied) = copy_through(file, entry.size, &mut buf, |buf, k| {
        observer.on_file_data(buf, k);
        Ok::<(), std::convert::Infallible>(())
    });
    observer.on_file_end((copied.error.is_none() && copied.left == 0).then_some(copied.xxh3));
    copied.error.map_or(Ok(()), Err)
}

/// What [`copy_through`] read of a file.
struct Copied {
    /// Bytes of the expected size not read (the file shrank, or a read failed).
    left: u64,
    /// XXH3-64 of the bytes read.
    xxh3: u64,
    /// The read error that stopped the copy, if any.
    error: Option<io::Error>,
}

/// Reads up to `size` bytes of `file` (from its offset) through `buf`, hashing them with
/// XXH3 and handing each read to `each` as `buf[..k]`. `each` may swap `buf` for another
/// buffer (an observer taking it); a buffer of another length is brought back to `buf`'s.
fn copy_through<E>(
    file: &mut File,
    size: u64,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(&mut Vec<u8>, usize) -> Result<(), E>,
) -> Result<Copied, E> {
    let len = buf.len();
    let mut x = xxhash_rust::xxh3::Xxh3::new();
    let mut left = size;
    while left > 0 {
        let want = left.min(len as u64) as usize;
        let k = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Copied { left, xxh3: x.digest(), error: Some(e) }),
        };
        x.update(&buf[..k]);
        each(buf, k)?;
        if buf.len() != len {
            buf.resize(len, 0);
        }
        left -= k as u64;
    }
    Ok(Copied { left, xxh3: x.digest(), error: None })
}

/// Completeness detail of an identifier not given and not found by the observer's search.
pub const NOT_FOUND_IN_EVIDENCE: &str = "not given and not found in the evidence";
/// Completeness detail of an identifier not given when nothing analysed the evidence.
const NOT_ANALYZED: &str = "not given (the evidence was not analyzed, so it was not searched)";

/// The result of a seal.
#[derive(Debug)]
pub struct Sealed {
    /// SHA-256 of the bundle bytes.
    pub id: BundleId,
    /// Bundle size in bytes.
    pub size: u64,
    /// The manifest as signed.
    pub manifest: Manifest,
    /// The observer's summary of the analysis sealed as `analysis.json`, if any.
    pub analysis_summary: Option<crate::collect::analysis::AnalysisSummary>,
    /// Total evidence bytes read.
    pub input_bytes: u64,
    /// The envelope's Ed25519 signature: what an RFC 3161 token over the bundle covers
    /// (`crate::tsa`).
    pub signature: [u8; 64],
}

enum Payload {
    /// A small file's bytes: this range of its batch's `data`.
    Mem(std::ops::Range<usize>),
    File {
        file: File,
        check: u64,
    },
}

/// Items handed to the writer together; the small files' bytes one after the other in `data`
/// — one buffer per batch, handed back for reuse, instead of an allocation per file (which
/// the writer's thread then freed: 100 000 cross-thread frees for 100 000 small files).
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
}

/// Emptied batch buffers kept for the reader.
const SPARE_BUFFERS: usize = 2;

/// The writer's ends of the channels to and from the reader.
struct FromReader {
    batches: Receiver<Batch>,
    /// Batch buffers handed back.
    spare: SyncSender<Vec<u8>>,
}

enum Item {
    Blob {
        idx: usize,
        payload: Payload,
        sha: Sha256,
        size: u64,
        at: DateTime<Utc>,
    },
    Failed {
        idx: usize,
        detail: String,
        at: DateTime<Utc>,
    },
    Skipped {
        idx: usize,
        detail: String,
        at: DateTime<Utc>,
    },
    /// A large file a hasher thread is hashing: `result` brings its `Blob` (or `Failed`).
    Hashing {
        idx: usize,
        result: Receiver<Item>,
    },
}

impl Item {
    /// Whether the item is a large file: an open descriptor (with the reader, in the hashers'
    /// queue, with a hasher or in its answer), no bytes.
    fn is_large(&self) -> bool {
        matches!(self, Item::Blob { payload: Payload::File { .. }, .. } | Item::Hashing { .. })
    }
}

/// Seal `input` into `out`, streaming. Returns the bundle id and manifest.
pub fn seal<W: Write + Send>(input: SealInput<'_>, out: W) -> Result<Sealed, SealError> {
    seal_with_progress(input, out, &Meter::none())
}

/// [`seal`], counting collected files and bytes on `progress`.
pub fn seal_with_progress<W: Write + Send>(
    mut input: SealInput<'_>,
    out: W,
    progress: &Meter,
) -> Result<Sealed, SealError> {
    let clock = input.clock;
    let started_at = clock.now();
    let mtime = started_at.timestamp().max(0) as u64;
    let files = input.files.clone();
    let (tx, rx) = sync_channel::<Batch>(CHANNEL_DEPTH);
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(SPARE_BUFFERS);
    let reader_files = files.clone();
    let clock_copy = clock.clone();
    let never = input.key.file_id().map(|id| (id, input.key.path.clone()));
    let reader = thread::Builder::new()
        .name("custody-read".into())
        .spawn(move || read_all(reader_files, clock_copy, never, tx, spare_rx))
        .map_err(SealError::Output)?;

    // The compressor (this writer and the zstd workers it starts, which inherit its nice value)
    // runs on its own thread at a slightly lower priority than the reader and the hashers: a
    // large file can only be written once all of it is hashed, so on a busy 2-core machine the
    // hashing must not be starved by compression it gates (see docs/performance.md).
    let result = thread::scope(|s| {
        thread::Builder::new()
            .name("custody-seal".into())
            .spawn_scoped(s, || {
                lower_priority(COMPRESSOR_NICE);
                let reader = FromReader { batches: rx, spare: spare_tx };
                write_all(&mut input, &files, reader, out, started_at, mtime, progress)
            })
            .map_err(SealError::Output)?
            .join()
            .map_err(|_| SealError::ReaderPanicked)?
    });
    let joined = reader.join();
    match (result, joined) {
        (Ok(_), Err(_)) => Err(SealError::ReaderPanicked),
        (r, _) => r,
    }
}

/// How much nicer than the reader the compressor threads run.
const COMPRESSOR_NICE: i32 = 4;

/// Makes the calling thread `by` nicer (best effort: a failure changes only scheduling); the
/// sealer's compressor and the analysis thread use it.
pub(crate) fn lower_priority(by: i32) {
    let tid = Some(rustix::thread::gettid());
    if let Ok(p) = rustix::process::getpriority_process(tid) {
        let _ = rustix::process::setpriority_process(tid, (p + by).min(19));
    }
}

/// Small-file bytes the reader may hold beyond the channel while it reads ahead.
const AHEAD_BYTES: u64 = 8 << 20;
/// Large files (each an open descriptor, no bytes) the reader may hold beyond the channel.
const AHEAD_FILES: usize = 64;

/// The reader's side of the channel: finished items are grouped into batches, batches the
/// writer cannot take yet are held (bounded by [`AHEAD_BYTES`] and [`AHEAD_FILES`]) so that
/// the reader runs ahead — above all through large files, which cost only a descriptor —
/// instead of blocking on a full channel. The writer must write a large file after
/// everything before it and cannot start it before it is hashed; reading ahead lets that hash
/// overlap the compression of the files before it.
struct Outbox {
    tx: SyncSender<Batch>,
    /// Buffers the writer is done with.
    spare: Receiver<Vec<u8>>,
    batch: Batch,
    batch_bytes: u64,
    ready: std::collections::VecDeque<(Batch, u64, usize)>,
    held_bytes: u64,
    held_files: usize,
}

/// The writer is gone (it failed or finished early): the reader stops.
struct Gone;

impl Outbox {
    fn new(tx: SyncSender<Batch>, spare: Receiver<Vec<u8>>) -> Self {
        Outbox {
            tx,
            spare,
            batch: Batch::default(),
            batch_bytes: 0,
            ready: std::collections::VecDeque::new(),
            held_bytes: 0,
            held_files: 0,
        }
    }

    fn push(&mut self, item: Item) -> Result<(), Gone> {
        let (bytes, large) = match &item {
            Item::Blob { payload: Payload::Mem(d), .. } => (d.len() as u64, 0),
            i => (0, usize::from(i.is_large())),
        };
        self.batch.items.push(item);
        self.batch_bytes += bytes;
        self.held_bytes += bytes;
        self.held_files += large;
        if large > 0 || self.batch_bytes >= BATCH_BYTES || self.batch.items.len() >= BATCH_FILES {
            self.seal_batch();
        }
        self.offer()?;
        while self.held_bytes > AHEAD_BYTES || self.held_files > AHEAD_FILES {
            self.send_blocking()?;
        }
        Ok(())
    }

    fn seal_batch(&mut self) {
        if !self.batch.items.is_empty() {
            let large = self.batch.items.iter().filter(|i| i.is_large()).count();
            let mut data = self.spare.try_recv().unwrap_or_default();
            data.clear();
            let next = Batch { items: Vec::new(), data };
            self.ready.push_back((std::mem::replace(&mut self.batch, next), self.batch_bytes, large));
            self.batch_bytes = 0;
        }
    }

    /// Hands over as many held batches as the channel takes without blocking.
    fn offer(&mut self) -> Result<(), Gone> {
        while let Some((b, bytes, large)) = self.ready.pop_front() {
            match self.tx.try_send(b) {
                Ok(()) => {
                    self.held_bytes -= bytes;
                    self.held_files -= large;
                }
                Err(std::sync::mpsc::TrySendError::Full(b)) => {
                    self.ready.push_front((b, bytes, large));
                    return Ok(());
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(Gone),
            }
        }
        Ok(())
    }

    fn send_blocking(&mut self) -> Result<(), Gone> {
        if self.ready.is_empty() {
            self.seal_batch();
        }
        let Some((b, bytes, large)) = self.ready.pop_front() else { return Ok(()) };
        self.tx.send(b).map_err(|_| Gone)?;
        self.held_bytes -= bytes;
        self.held_files -= large;
        Ok(())
    }

    fn finish(mut self) {
        self.seal_batch();
        while !self.ready.is_empty() {
            if self.send_blocking().is_err() {
                return;
            }
        }
    }
}

/// `never`: the signing key's identity and path: that file is never read, whatever path
/// reaches it (a hard link, a bind mount, a link swapped in).
fn read_all(
    files: Arc<[PlannedFile]>,
    clock: Clock,
    never: Option<(crate::FileId, PathBuf)>,
    tx: SyncSender<Batch>,
    spare: Receiver<Vec<u8>>,
) {
    let (jobs_tx, jobs_rx) = sync_channel::<HashJob>(AHEAD_FILES);
    let jobs_rx = Mutex::new(jobs_rx);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let mut hashers = 0;
        for _ in 0..HASHERS {
            let spawned = thread::Builder::new()
                .name("custody-hash".into())
                .spawn_scoped(s, || hash_jobs(&files, &jobs_rx, &stop));
            hashers += usize::from(spawned.is_ok());
        }
        // Without a hasher thread (none could be started) the reader hashes large files itself.
        // The sender is dropped when this closure ends, which ends the hashers' loops.
        let jobs = (hashers > 0).then_some(jobs_tx);
        let mut buf = vec![0u8; READ_BUF];
        let mut out = Outbox::new(tx, spare);
        let mut dirs = DirCache::default();
        for (idx, f) in files.iter().enumerate() {
            let item = read_one(idx, f, &clock, never.as_ref(), &mut buf, &mut out, &mut dirs, jobs.as_ref());
            if item.and_then(|item| out.push(item)).is_err() {
                // The writer is gone: files still queued for hashing are dropped unread, and one
                // being hashed is given up within its next MiB.
                stop.store(true, Ordering::Relaxed);
                return;
            }
        }
        out.finish();
    });
}

/// Threads that hash large files beside the reader. The writer must write a large file after
/// everything before it, and cannot start it before all of it is hashed: with one thread
/// hashing in plan order, a big file behind other large ones (a 480 MB log after 200 MB of
/// attachments and proxy logs) kept the writer — and so zstd's workers — waiting while one
/// core hashed it. Two hashers take the large files in plan order, so the big one is hashed
/// while the other thread hashes the files after it. The reader opens the files (in plan
/// order) and reads the small ones; it hashes a large one itself only when the hashers' queue
/// is full, or a snapshot (see [`PlannedFile::snapshot`]).
const HASHERS: usize = 2;

/// A large file for a hasher, opened by the reader (which took its `collected_at`).
struct HashJob {
    idx: usize,
    file: File,
    at: DateTime<Utc>,
    /// Where the finished item goes: the writer waits on it in its `Item::Hashing`.
    reply: SyncSender<Item>,
}

/// A hasher thread: hashes queued large files until the queue closes; after `stop` (the
/// writer is gone) it gives up the file it is hashing within a MiB and drops what is left
/// unread.
fn hash_jobs(files: &[PlannedFile], jobs: &Mutex<Receiver<HashJob>>, stop: &AtomicBool) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(HashJob { idx, mut file, at, reply }) = job else { return };
        let writer_gone = || if stop.load(Ordering::Relaxed) { Err(Gone) } else { Ok(()) };
        if writer_gone().is_err() {
            continue;
        }
        let item = match hash_large(&mut file, &mut buf, writer_gone) {
            Ok(Ok((sha, size, check))) => Item::Blob { idx, payload: Payload::File { file, check }, sha, size, at },
            Ok(Err(e)) => Item::Failed { idx, detail: cannot_read(&files[idx], &e), at },
            Err(Gone) => continue,
        };
        // The writer may be gone; the next job (if any) then finds `stop` set.
        let _ = reply.send(item);
    }
}

/// The journal detail of a file that could not be read.
fn cannot_read(f: &PlannedFile, e: &io::Error) -> String {
    format!("cannot read {}: {e}", f.source.display())
}

/// While a large file is hashed, `between` runs every this many reads (1 MiB): the reader
/// hands its held batches to the writer, a hasher checks that the writer is still there.
const BETWEEN_EVERY: usize = 4;

/// Hashes a large file from its current offset to its end — SHA-256 for its blob id and XXH3
/// for the copy pass to check against — and rewinds it for that copy: `Ok(Ok((sha, size,
/// xxh3)))`, or `Ok(Err(_))` if reading (or rewinding) failed. `between` runs every
/// [`BETWEEN_EVERY`] reads; its error stops the hash and is returned as `Err`.
fn hash_large(
    file: &mut File,
    buf: &mut [u8],
    mut between: impl FnMut() -> Result<(), Gone>,
) -> Result<io::Result<(Sha256, u64, u64)>, Gone> {
    let hashed = hash_reads(file, buf, |_, reads| if reads % BETWEEN_EVERY == 0 { between() } else { Ok(()) })?;
    Ok(hashed.and_then(|h| file.seek(SeekFrom::Start(0)).map(|_| h)))
}

/// Reads `src` from its offset to its end through `buf`, hashing every byte with SHA-256 and
/// XXH3, and hands each read (its bytes, and how many reads so far) to `each`, whose error
/// stops the reading and is returned as `Err`: `Ok(Ok((sha, size, xxh3)))`, or `Ok(Err(_))` if
/// a read failed. The one pass behind [`hash_large`] and [`snapshot`].
fn hash_reads<E>(
    src: &mut impl Read,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8], usize) -> Result<(), E>,
) -> Result<io::Result<(Sha256, u64, u64)>, E> {
    let mut h = Hasher::new();
    let mut x = xxhash_rust::xxh3::Xxh3::new();
    let mut n = 0u64;
    let mut reads = 0usize;
    loop {
        match src.read(buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                x.update(&buf[..k]);
                n += k as u64;
                reads += 1;
                each(&buf[..k], reads)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok((h.finish(), n, x.digest())))
}

/// The flags every planned file is opened with: read-only, the last component never followed
/// if it is a link, never blocking on a FIFO.
fn file_flags() -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// Why [`DirCache::open`] did not open a file.
#[derive(Debug)]
enum NotOpened {
    /// The file is a symbolic link: not followed.
    Link,
    /// A directory on its path is a symbolic link. The planner resolved every link on the
    /// way to a planned file, so this one was put there since: not followed.
    LinkOnTheWay,
    /// Anything else.
    Io(io::Error),
}

impl NotOpened {
    /// The file's own name is a link (ELOOP for `O_NOFOLLOW`; EMLINK on FreeBSD).
    fn of_file(e: rustix::io::Errno) -> NotOpened {
        if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::MLINK {
            NotOpened::Link
        } else {
            NotOpened::Io(e.into())
        }
    }
}

/// Opens the directory at `path` with no symbolic link followed anywhere on the path
/// (`openat2` with `RESOLVE_NO_SYMLINKS`; where the kernel or a seccomp filter refuses
/// `openat2`, one component at a time with `O_NOFOLLOW`): ELOOP if a component is a link.
fn open_dir_no_links(path: &std::path::Path) -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags, CWD};
    use rustix::io::Errno;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    #[cfg(target_os = "linux")]
    match rustix::fs::openat2(CWD, path, flags, Mode::empty(), rustix::fs::ResolveFlags::NO_SYMLINKS) {
        Err(Errno::NOSYS | Errno::PERM | Errno::OPNOTSUPP) => {}
        r => return r,
    }
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = rustix::fs::openat(CWD, start, flags, Mode::empty())?;
    for c in path.components() {
        let name = match c {
            std::path::Component::Normal(n) => n,
            std::path::Component::ParentDir => std::ffi::OsStr::new(".."),
            _ => continue,
        };
        dir = match rustix::fs::openat(&dir, name, flags | OFlags::NOFOLLOW, Mode::empty()) {
            Ok(d) => d,
            // A link opened with `O_NOFOLLOW | O_DIRECTORY` is "not a directory": say which.
            Err(Errno::NOTDIR)
                if rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
                }) =>
            {
                return Err(Errno::LOOP)
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Opens planned files relative to their directory, which is kept open (`O_PATH`) while
/// consecutive files share it — the plan is sorted, so they do: the kernel then looks up one
/// name per file instead of every component of its absolute path.
///
/// No symbolic link is followed anywhere: not the file's name (`O_NOFOLLOW`), not a directory
/// on its path ([`open_dir_no_links`]). The planner gives each file its real path, with every
/// link on the way resolved and checked ([`crate::collect`]), so a link met here was swapped
/// in after planning: following it would read what nobody checked. (A directory replaced
/// while its files are read is read from the one that was opened.)
#[derive(Default)]
struct DirCache {
    dir: Option<(PathBuf, Result<rustix::fd::OwnedFd, rustix::io::Errno>)>,
}

impl DirCache {
    fn open(&mut self, path: &std::path::Path) -> Result<File, NotOpened> {
        use rustix::fs::{Mode, CWD};
        use std::os::unix::ffi::OsStrExt;
        // Split at the last `/` as bytes (no component parsing per file); anything unusual —
        // no directory, the root, a name `.`, `..` or empty — is opened by its whole path,
        // with no link on it followed either.
        let bytes = path.as_os_str().as_bytes();
        let (parent, name) = match memchr::memrchr(b'/', bytes) {
            Some(i) if i > 0 && !matches!(&bytes[i + 1..], b"" | b"." | b"..") => (&bytes[..i], &bytes[i + 1..]),
            Some(_) => {
                // A path ending in `..` (or the root) is a directory: opened as `.` in itself.
                let (parent, name) = match (path.parent(), path.file_name()) {
                    (Some(p), Some(n)) if !p.as_os_str().is_empty() => (p, n),
                    (Some(_), Some(n)) => (std::path::Path::new("."), n),
                    _ => (path, std::ffi::OsStr::new(".")),
                };
                let dir = open_dir_no_links(parent).map_err(|e| match e {
                    rustix::io::Errno::LOOP => NotOpened::LinkOnTheWay,
                    e => NotOpened::Io(e.into()),
                })?;
                return rustix::fs::openat(&dir, name, file_flags(), Mode::empty())
                    .map(File::from)
                    .map_err(NotOpened::of_file);
            }
            None => {
                return rustix::fs::openat(CWD, path, file_flags(), Mode::empty())
                    .map(File::from)
                    .map_err(NotOpened::of_file)
            }
        };
        let parent = std::path::Path::new(std::ffi::OsStr::from_bytes(parent));
        let name = std::ffi::OsStr::from_bytes(name);
        if self.dir.as_ref().map_or(true, |(p, _)| p.as_os_str() != parent.as_os_str()) {
            self.dir = Some((parent.to_path_buf(), open_dir_no_links(parent)));
        }
        match &self.dir {
            Some((_, Ok(dir))) => {
                rustix::fs::openat(dir, name, file_flags(), Mode::empty()).map(File::from).map_err(NotOpened::of_file)
            }
            Some((_, Err(rustix::io::Errno::LOOP))) => Err(NotOpened::LinkOnTheWay),
            Some((_, Err(e))) => Err(NotOpened::Io((*e).into())),
            None => Err(NotOpened::Io(io::Error::other("internal error: no directory"))),
        }
    }
}

/// Opens the file at `path` for reading with no symbolic link followed, neither its name nor
/// any directory on its path (ELOOP if there is one), never blocking on a FIFO: for files
/// outside the plan that custody reads by a path it checked (the automatic field mapping).
pub fn open_no_links(path: &std::path::Path) -> io::Result<File> {
    DirCache::default().open(path).map_err(|e| match e {
        NotOpened::Link | NotOpened::LinkOnTheWay => io::Error::from_raw_os_error(libc::ELOOP),
        NotOpened::Io(e) => e,
    })
}

/// Kernel pseudo-file systems (`statfs` `f_type`): procfs, sysfs, debugfs, securityfs,
/// tracefs, cgroup (v1 and v2), bpf, efivarfs, configfs, devpts. A file reached through a
/// followed link must not be on one ([`crate::collect::links`], rule 3, checked again on
/// the open file: a bind mount or another mount of `/proc` has another path).
#[cfg(target_os = "linux")]
const KERNEL_FS: [u64; 11] = [
    0x9fa0,
    0x6265_6572,
    0x6462_6720,
    0x7363_6673,
    0x7472_6163,
    0x0027_e0eb,
    0x6367_7270,
    0xcafe_4a11,
    0xde5e_81e4,
    0x6265_6570,
    0x1cd1,
];

/// Whether the open `file` is on a kernel pseudo-file system (see [`KERNEL_FS`]).
fn on_kernel_fs(file: &File) -> bool {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::fstatfs(file).is_ok_and(|st| KERNEL_FS.contains(&(st.f_type as u64)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}

/// Why the opened `file` (whose metadata is `meta`) must not be read, if it must not: it is
/// the signing key (`never`), or, reached through a followed link, it is not the file the
/// link's target was when checked, or it is a kernel pseudo-file.
fn refused(
    f: &PlannedFile,
    file: &File,
    meta: &std::fs::Metadata,
    never: Option<&(crate::FileId, PathBuf)>,
) -> Option<String> {
    let id = crate::FileId::of(meta);
    if let Some((_, key)) = never.filter(|(k, _)| *k == id) {
        return Some(format!(
            "secret: this is custody's signing key (the same file as {}: {id}): never sealed, whatever path leads to it",
            key.display()
        ));
    }
    let expected = f.link_target?;
    if expected != id {
        let reused = if (expected.dev, expected.ino) == (id.dev, id.ino) {
            " (its inode number reused by a file created since)"
        } else {
            ""
        };
        return Some(format!(
            "replaced after its symbolic link was checked: the link's target was {expected}, the file found is {id}{reused}; not read"
        ));
    }
    if on_kernel_fs(file) {
        return Some(
            "on a kernel pseudo-file system (procfs, sysfs, …), reached through a symbolic link: never sealed".into(),
        );
    }
    None
}

/// Reads a small file whole: `len` (its size at `fstat`) bytes into one buffer, on to its end
/// if it grew since (`read_to_end` on a `File` would also `fstat` and `lseek` it again first:
/// two system calls per file more). The end is where a `read` comes back short with exactly
/// `len` bytes in: a regular file's read is short only at its end, and the size agrees, so
/// the usual extra `read` that returns 0 is skipped (one system call per file: 100 000 of
/// them for 100 000 small files). Any other short read is followed by more reads until 0.
///
/// The bytes are appended to `buf` (a batch's buffer) and their range returned; on an error
/// `buf` is left as it was.
fn read_small(file: &mut impl Read, len: usize, buf: &mut Vec<u8>) -> io::Result<std::ops::Range<usize>> {
    let start = buf.len();
    let end = start + len;
    // One spare byte: a file that grew since `fstat` fills it, and the read is not short.
    buf.resize(end + 1, 0);
    let mut filled = start;
    loop {
        if filled == buf.len() {
            buf.resize(filled + 4096, 0);
        }
        let want = buf.len() - filled;
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => {
                filled += k;
                if k < want && filled == end {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
    buf.truncate(filled);
    Ok(start..filled)
}

/// Reads one planned file. A large file is handed to a hasher thread (when `hashers` is
/// given and its queue has room) and returned as `Item::Hashing`; else it is hashed here.
#[allow(clippy::too_many_arguments)]
fn read_one(
    idx: usize,
    f: &PlannedFile,
    clock: &Clock,
    never: Option<&(crate::FileId, PathBuf)>,
    buf: &mut [u8],
    out: &mut Outbox,
    dirs: &mut DirCache,
    hashers: Option<&SyncSender<HashJob>>,
) -> Result<Item, Gone> {
    let at = clock.now();
    let fail = |e: io::Error| Item::Failed { idx, detail: cannot_read(f, &e), at };
    let mut file = match dirs.open(&f.source) {
        Ok(file) => file,
        Err(NotOpened::Link) => {
            return Ok(Item::Skipped { idx, detail: "symbolic link: recorded, not followed".into(), at })
        }
        Err(NotOpened::LinkOnTheWay) => {
            let detail =
                "a directory on its path is a symbolic link now (put there after planning): not followed, not read";
            return Ok(Item::Skipped { idx, detail: detail.into(), at });
        }
        Err(NotOpened::Io(e)) => return Ok(fail(e)),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Ok(fail(e)),
    };
    if let Some(detail) = refused(f, &file, &meta, never) {
        return Ok(Item::Skipped { idx, detail, at });
    }
    if !meta.is_file() {
        let what = describe_file_type(&meta);
        return Ok(Item::Skipped { idx, detail: format!("{what}: not a regular file, not read"), at });
    }
    if f.snapshot {
        return Ok(match snapshot(&mut file, buf) {
            Ok((file, sha, size, check)) => Item::Blob { idx, payload: Payload::File { file, check }, sha, size, at },
            Err(e) => fail(e),
        });
    }
    if meta.len() <= SMALL_FILE {
        // Read to EOF: a file that grew since stat is kept whole.
        return Ok(match read_small(&mut file, meta.len() as usize, &mut out.batch.data) {
            Ok(range) => {
                let sha = Sha256::of(&out.batch.data[range.clone()]);
                let size = range.len() as u64;
                Item::Blob { idx, payload: Payload::Mem(range), sha, size, at }
            }
            Err(e) => fail(e),
        });
    }
    // The small files read since the last hand-over can go to the writer while this one is
    // hashed (batches stay in file order).
    out.seal_batch();
    out.offer()?;
    if let Some(jobs) = hashers {
        let (reply, result) = sync_channel(1);
        match jobs.try_send(HashJob { idx, file, at, reply }) {
            Ok(()) => return Ok(Item::Hashing { idx, result }),
            // The queue is full (the hashers are that far behind) or the hashers are gone: hash
            // it here. Never blocking on the queue also means a reader cannot hang behind
            // hashers that died; the writer reports that when it meets their unanswered item.
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => file = job.file,
        }
    }
    // The held batches go on to the writer while the reader hashes (it must not wait behind
    // a long hash).
    Ok(match hash_large(&mut file, buf, || out.offer())? {
        Ok((sha, size, check)) => Item::Blob { idx, payload: Payload::File { file, check }, sha, size, at },
        Err(e) => fail(e),
    })
}

/// Copy a file into a private temporary snapshot, hashing on the way.
fn snapshot(src: &mut File, buf: &mut [u8]) -> io::Result<(File, Sha256, u64, u64)> {
    let mut tmp = tempfile::tempfile()?;
    let (sha, n, check) = hash_reads(src, buf, |data, _| tmp.write_all(data))??;
    tmp.seek(SeekFrom::Start(0))?;
    Ok((tmp, sha, n, check))
}

fn describe_file_type(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if meta.is_dir() {
        "directory"
    } else if meta.file_type().is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// The fixed part of every member header: ustar, mode 0444, owner custody/custody (0/0),
/// regular file, mtime = seal start.
fn header_template(mtime: u64) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o444);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_username("custody")?;
    h.set_groupname("custody")?;
    Ok(h)
}

fn member_header(template: &tar::Header, name: &str, size: u64) -> io::Result<tar::Header> {
    let mut h = template.clone();
    h.set_path(name)?;
    h.set_size(size);
    h.set_cksum();
    Ok(h)
}

fn padding(len: u64) -> &'static [u8] {
    const ZEROS: [u8; 512] = [0u8; 512];
    &ZEROS[..((512 - (len % 512)) % 512) as usize]
}

/// Gathers small writes into large ones before they reach the encoder.
struct Staged<W: Write> {
    inner: W,
    buf: Vec<u8>,
    /// Whether [`metadata_level`] switched the encoder already.
    metadata_level: bool,
}

impl<W: Write> Staged<W> {
    fn small(&mut self, data: &[u8]) -> io::Result<()> {
        if self.buf.len() + data.len() > STAGE {
            self.flush_stage()?;
        }
        if data.len() >= STAGE {
            self.inner.write_all(data)
        } else {
            self.buf.extend_from_slice(data);
            Ok(())
        }
    }
    fn large(&mut self, data: &[u8]) -> io::Result<()> {
        self.flush_stage()?;
        self.inner.write_all(data)
    }
    fn flush_stage(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
    fn member(&mut self, template: &tar::Header, name: &str, data: &[u8]) -> io::Result<()> {
        let h = member_header(template, name, data.len() as u64)?;
        self.small(h.as_bytes())?;
        self.small(data)?;
        self.small(padding(data.len() as u64))
    }
}

/// Appends the JSON of `e` byte for byte as serde_json serializes an [`Entry`] (the unit test
/// `manifest_pieces_are_the_serialized_manifest` holds them together), with `at_json` the JSON
/// of `e.collected_at`, rendered once per file for its entry and its journal event.
fn render_entry(out: &mut Vec<u8>, e: &Entry, at_json: &[u8]) {
    out.extend_from_slice(b"{\"path\":");
    json_str(out, &e.path);
    out.extend_from_slice(b",\"kind\":");
    json_str(out, &e.kind);
    out.extend_from_slice(b",\"size\":");
    out.extend_from_slice(decimal(e.size, &mut [0u8; 20]));
    out.extend_from_slice(b",\"sha256\":\"");
    out.extend_from_slice(&e.sha256.hex_bytes());
    out.extend_from_slice(b"\",\"source\":");
    json_str(out, &e.source);
    out.extend_from_slice(b",\"collected_at\":");
    out.extend_from_slice(at_json);
    out.push(b'}');
}

/// Name of a blob member.
pub fn blob_member(sha: &Sha256) -> String {
    format!("blobs/sha256/{}", sha.hex())
}

/// The header of the blob member of `sha` ([`member_header`] of [`blob_member`]), with the
/// name written straight into the ustar name field: a blob name is 77 ASCII bytes, so the tar
/// crate's path checks and splitting (and a `String` per file) are not needed.
fn blob_header(template: &tar::Header, sha: &Sha256, size: u64) -> tar::Header {
    let mut h = template.clone();
    let name = &mut h.as_old_mut().name;
    name[..BLOB_PREFIX.len()].copy_from_slice(BLOB_PREFIX);
    name[BLOB_PREFIX.len()..BLOB_PREFIX.len() + 64].copy_from_slice(&sha.hex_bytes());
    h.set_size(size);
    h.set_cksum();
    h
}

const BLOB_PREFIX: &[u8] = b"blobs/sha256/";

/// Blob ids already written, hashed with the standard library's randomly keyed SipHash. Not the
/// ids' own first bytes: whoever plants evidence files chooses their contents, and can grind
/// contents whose SHA-256 share low bits until every lookup walks one long probe sequence
/// (quadratic sealing time). SipHash over 32 bytes costs ~3 ms per 100 000 files.
type SeenBlobs = HashSet<Sha256>;

/// Name of the manifest member.
pub const MANIFEST_MEMBER: &str = "manifest.json";
/// Name of the envelope member.
pub const ENVELOPE_MEMBER: &str = "manifest.dsse.json";

fn write_all<W: Write>(
    input: &mut SealInput<'_>,
    files: &[PlannedFile],
    reader: FromReader,
    out: W,
    started_at: DateTime<Utc>,
    mtime: u64,
    progress: &Meter,
) -> Result<Sealed, SealError> {
    let clock = input.clock;
    let hashed = HashingWriter::new(BufWriter::with_capacity(1 << 20, out));
    let mut enc = zstd::stream::write::Encoder::new(hashed, input.level).map_err(SealError::Output)?;
    if input.workers > 0 {
        enc.multithread(input.workers).map_err(SealError::Output)?;
        enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE)).map_err(SealError::Output)?;
    }
    enc.include_checksum(true).map_err(SealError::Output)?;
    let mut enc = Staged { inner: enc, buf: Vec::with_capacity(STAGE), metadata_level: false };
    let template = header_template(mtime).map_err(SealError::Output)?;

    // The entries' and the journal's JSON are rendered as they are produced, while the zstd
    // workers compress, instead of serializing them all after the last blob (~0.1 s per
    // 100 000 files on the critical path); `manifest_pieces` splices them in.
    // Their sizes are known closely in advance (~200 and ~330 bytes per file plus its names):
    // reserved once instead of grown by doubling, which copies them and leaves the outgrown
    // buffers behind in the heap.
    let names: usize = files.iter().map(|f| f.rel_path.len() + f.kind.len() + f.display_source.len()).sum();
    let paths: usize = files.iter().map(|f| f.rel_path.len()).sum();
    let mut journal = Journal::rendering_with_capacity(
        files.len() + input.plan_events.len() + input.incident.notes.len() + 16,
        files.len() * 340 + paths + 64 * 1024,
    );
    let mut entries_json: Vec<u8> = Vec::with_capacity(files.len() * 200 + names + 1024);
    for ev in &input.plan_events {
        journal.push(ev.at, ev.event, ev.path.clone(), None, None, Some(ev.detail.clone()));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(files.len());
    let mut written: SeenBlobs = SeenBlobs::with_capacity(files.len());
    // The Merkle tree, built as the entries are collected (not after the last blob).
    let mut tree = merkle::RootBuilder::default();
    let mut leaf_scratch: Vec<u8> = Vec::with_capacity(256);
    let mut at_json: Vec<u8> = Vec::with_capacity(40);
    let mut changed: Vec<String> = Vec::new();
    let mut copy_buf = vec![0u8; READ_BUF];
    let mut input_bytes = 0u64;

    // How long the writer waited for the reader (a large file cannot be written before it is
    // fully hashed): a timing event for docs/performance.md.
    let mut waited = std::time::Duration::ZERO;
    let recv = |waited: &mut std::time::Duration| {
        let t = std::time::Instant::now();
        let r = reader.batches.recv().ok();
        *waited += t.elapsed();
        r
    };
    while let Some(Batch { items, data: batch_data }) = recv(&mut waited) {
        for item in items {
            // A large file still being hashed: wait for it (that wait counts as the reader's).
            let item = match item {
                Item::Hashing { idx, result } => {
                    let t = std::time::Instant::now();
                    let r = result.recv();
                    waited += t.elapsed();
                    match r {
                        Ok(done @ (Item::Blob { idx: i, .. } | Item::Failed { idx: i, .. })) if i == idx => done,
                        // The hasher died (its answer never came) or answered for another file.
                        _ => return Err(SealError::ReaderPanicked),
                    }
                }
                item => item,
            };
            match item {
                // Resolved above.
                Item::Hashing { .. } => return Err(SealError::ReaderPanicked),
                Item::Skipped { idx, detail, at } => {
                    journal.push(
                        at,
                        EventKind::Skipped,
                        Some(files[idx].display_source.clone()),
                        None,
                        None,
                        Some(detail),
                    );
                    progress.add_files(1);
                }
                Item::Failed { idx, detail, at } => {
                    journal.push(
                        at,
                        EventKind::Error,
                        Some(files[idx].display_source.clone()),
                        None,
                        None,
                        Some(detail),
                    );
                    progress.add_files(1);
                }
                Item::Blob { idx, payload, sha, size, at } => {
                    let f = &files[idx];
                    let entry = Entry {
                        path: f.rel_path.clone(),
                        kind: f.kind.clone(),
                        size,
                        sha256: sha,
                        source: f.display_source.clone(),
                        collected_at: at,
                    };
                    input_bytes += size;
                    let first = written.insert(sha);
                    match payload {
                        Payload::Mem(range) => {
                            let data = batch_data.get(range).unwrap_or_default();
                            if first {
                                let h = blob_header(&template, &sha, size);
                                enc.small(h.as_bytes()).map_err(SealError::Output)?;
                                enc.small(data).map_err(SealError::Output)?;
                                enc.small(padding(size)).map_err(SealError::Output)?;
                            }
                            if let Some(o) = input.observer.as_deref_mut() {
                                o.on_bytes(&entry, data);
                            }
                            progress.add_bytes(size);
                        }
                        Payload::File { mut file, check } => {
                            // The analysis is handed the file before the copy and its bytes
                            // as they are copied: it then runs beside the compression (not
                            // after it, with the writer blocked behind it) and sees exactly
                            // the sealed bytes. A duplicate blob is not written again, but is
                            // still read for the analysis of its own path.
                            let observed = input.observer.is_some();
                            if let Some(o) = input.observer.as_deref_mut() {
                                o.on_file(&entry, &file);
                            }
                            if first || observed {
                                if first {
                                    let h = blob_header(&template, &sha, size);
                                    enc.small(h.as_bytes()).map_err(SealError::Output)?;
                                }
                                let observer = &mut input.observer;
                                let copied = copy_through(&mut file, size, &mut copy_buf, |buf, k| {
                                    if first {
                                        enc.large(&buf[..k]).map_err(SealError::Output)?;
                                    }
                                    if let Some(o) = observer.as_deref_mut() {
                                        o.on_file_data(buf, k);
                                    }
                                    progress.add_bytes(k as u64);
                                    Ok(())
                                })?;
                                // A read error ends the copy short: the file counts as changed.
                                let mut left = copied.left;
                                let intact = left == 0 && copied.xxh3 == check;
                                if let Some(o) = input.observer.as_deref_mut() {
                                    o.on_file_end(intact.then_some(check));
                                }
                                if !intact {
                                    changed.push(f.rel_path.clone());
                                    if first {
                                        // Keep the archive structurally complete; the seal is
                                        // retried.
                                        copy_buf.fill(0);
                                        while left > 0 {
                                            let k = left.min(copy_buf.len() as u64) as usize;
                                            enc.large(&copy_buf[..k]).map_err(SealError::Output)?;
                                            left -= k as u64;
                                        }
                                    }
                                }
                                progress.add_bytes(left);
                                if first {
                                    enc.small(padding(size)).map_err(SealError::Output)?;
                                }
                            } else {
                                progress.add_bytes(size);
                            }
                        }
                    }
                    progress.add_files(1);
                    // The timestamp is rendered once, for the entry and its journal event.
                    at_json.clear();
                    // Serializing a timestamp into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut at_json, &at);
                    journal.push_collected(at, &at_json, entry.path.clone(), sha, size);
                    if !entries_json.is_empty() {
                        entries_json.push(b',');
                    }
                    render_entry(&mut entries_json, &entry, &at_json);
                    tree.push(merkle::entry_leaf_hash(&entry, &mut leaf_scratch));
                    entries.push(entry);
                }
            }
        }
        // The buffer goes back to the reader (or is freed if it holds enough spares).
        if batch_data.capacity() > 0 {
            let _ = reader.spare.try_send(batch_data);
        }
    }
    tracing::info!(target: crate::TIMING, seconds = waited.as_secs_f64(), "seal: the writer waited for the reader");
    let tail_started = std::time::Instant::now();
    if !changed.is_empty() {
        return Err(SealError::Changed(changed));
    }
    if entries.is_empty() {
        return Err(SealError::NothingCollected);
    }

    let mut incident = input.incident.clone();
    // v3: custody's own notes (seed normalisation, a supplement's origin, then the analysis')
    // have their own field, so no responder note can pass for the tool's or the reverse.
    incident.tool_notes.get_or_insert_with(Vec::new);
    // The analysis is spooled to an unnamed temporary file (it can be tens of MB), then copied
    // into the archive and hashed on the way, so the digest covers exactly the sealed bytes.
    let mut analysis_ref = None;
    let mut analysis_summary = None;
    if let Some(o) = input.observer.as_deref_mut() {
        let spool = tempfile::tempfile().map_err(SealError::Output)?;
        let mut w = BufWriter::with_capacity(STAGE, spool);
        let summary = o.finish(&mut incident, &mut w).map_err(SealError::Output)?;
        let changed = o.changed_since_sealed();
        if !changed.is_empty() {
            return Err(SealError::Changed(changed));
        }
        if summary.is_some() {
            metadata_level(&mut enc, input.workers).map_err(SealError::Output)?;
            w.write_all(b"\n").map_err(SealError::Output)?;
            let mut spool = w.into_inner().map_err(|e| SealError::Output(e.into_error()))?;
            let size = spool.stream_position().map_err(SealError::Output)?;
            spool.seek(SeekFrom::Start(0)).map_err(SealError::Output)?;
            let h = member_header(&template, ANALYSIS_MEMBER, size).map_err(SealError::Output)?;
            enc.small(h.as_bytes()).map_err(SealError::Output)?;
            let mut hasher = Hasher::new();
            let mut left = size;
            while left > 0 {
                let want = left.min(copy_buf.len() as u64) as usize;
                spool.read_exact(&mut copy_buf[..want]).map_err(SealError::Output)?;
                hasher.update(&copy_buf[..want]);
                enc.large(&copy_buf[..want]).map_err(SealError::Output)?;
                left -= want as u64;
            }
            enc.small(padding(size)).map_err(SealError::Output)?;
            analysis_ref = Some(AnalysisRef { member: ANALYSIS_MEMBER.into(), sha256: hasher.finish(), size });
            analysis_summary = summary;
        }
    }
    // Journaled in the order sealed: the responder's notes, then custody's (each says what
    // part of custody wrote it), labelled so the journal never attributes one to the other.
    for note in &incident.notes {
        journal.push(clock.now(), EventKind::Note, None, None, None, Some(format!("responder note: {note}")));
    }
    for note in incident.tool_notes.iter().flatten() {
        journal.push(clock.now(), EventKind::Note, None, None, None, Some(note.clone()));
    }
    let t_analysis = tail_started.elapsed();
    let observer = input.observer.as_deref();
    let missing = |name| observer.map_or_else(|| NOT_ANALYZED.to_string(), |o| o.missing_identifier_detail(name));
    let kinds = observer.and_then(|o| o.evidence_kinds());
    let completeness = completeness(&incident, &entries, &input.not_applicable, &missing, kinds.as_ref());
    let merkle_root = tree.root();
    debug_assert_eq!(merkle_root, merkle::root(&entries));
    let finished_at = clock.now();
    let key: &SecretKey = input.key;
    let (journal, journal_json) = journal.into_parts();
    let journal_json = journal_json.unwrap_or_default();
    let manifest = Manifest {
        format: FORMAT_V3.into(),
        incident,
        collector: Collector {
            tool: "custody".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            host: crate::clock::host_name(),
            user: crate::clock::user_name(),
            started_at,
            finished_at,
        },
        signer: Signer { keyid: key.id().to_string(), public_key: key.public.to_pem().unwrap_or_default() },
        entries,
        completeness,
        journal,
        merkle_root,
        ledger_prev: input.ledger_prev.clone(),
        sealed_at: finished_at,
        analysis: None,
        analysis_ref,
        supplement_of: input.supplement_of.clone(),
    };
    let t_manifest = tail_started.elapsed();
    metadata_level(&mut enc, input.workers).map_err(SealError::Output)?;
    // The manifest is streamed from its pieces (the rendered entries and journal are ~55 MB
    // for 100 000 files) and hashed on the way, instead of being assembled into one buffer.
    let pieces = manifest_pieces(&manifest, &entries_json, &journal_json);
    debug_assert_eq!(pieces.concat(), manifest_to_bytes(&manifest));
    let (manifest_sha256, manifest_size) =
        write_member_pieces(&mut enc, &template, MANIFEST_MEMBER, &pieces).map_err(SealError::Output)?;
    drop(pieces);
    drop((entries_json, journal_json));
    let env_bytes = sign_statement(FORMAT_V3, manifest_sha256, manifest_size, key);
    let signature = envelope_signature(&env_bytes);
    enc.member(&template, ENVELOPE_MEMBER, &env_bytes).map_err(SealError::Output)?;
    // End of archive: two zero blocks.
    enc.small(&[0u8; 1024]).map_err(SealError::Output)?;
    enc.flush_stage().map_err(SealError::Output)?;
    let t_envelope = tail_started.elapsed();
    let hashed = enc.inner.finish().map_err(SealError::Output)?;
    let (mut bw, digest, size) = hashed.finish();
    bw.flush().map_err(SealError::Output)?;
    let tail = tail_started.elapsed().as_secs_f64();
    tracing::info!(
        target: crate::TIMING,
        seconds = tail,
        analysis = t_analysis.as_secs_f64(),
        checklist_merkle = (t_manifest - t_analysis).as_secs_f64(),
        manifest_envelope = (t_envelope - t_manifest).as_secs_f64(),
        zstd_end = tail - t_envelope.as_secs_f64(),
        "seal: the end after the last file"
    );
    Ok(Sealed { id: BundleId(digest), size, manifest, analysis_summary, input_bytes, signature })
}

/// zstd level of the members after the blobs (`analysis.json`, `manifest.json`,
/// `manifest.dsse.json`): JSON dense with hex digests, 60 MB of it for 100 000 files, which
/// level 1 compresses in half the CPU time of level 3 and *smaller* (the manifest of the
/// 100k-file benchmark: 13.2 MB at level 1, 15.1 MB at level 3, 2 MiB jobs).
const METADATA_LEVEL: i32 = 1;

/// Switches the encoder to [`METADATA_LEVEL`] for the rest of the frame (once; later calls do
/// nothing). Multi-threaded zstd applies a new level to jobs created after the change, and
/// which job that is would depend on the workers' progress; so the current job is first ended
/// and flushed here, a point fixed by the input alone, and the bundle stays byte-identical for
/// the same evidence. The window size, and so the frame header, is not changed. (Single-
/// threaded zstd keeps a frame's level: nothing to do.)
fn metadata_level<W: Write>(enc: &mut Staged<zstd::stream::write::Encoder<'_, W>>, workers: u32) -> io::Result<()> {
    if workers == 0 || enc.metadata_level {
        return Ok(());
    }
    enc.flush_stage()?;
    enc.inner.flush()?;
    enc.inner.set_parameter(zstd::stream::raw::CParameter::CompressionLevel(METADATA_LEVEL))?;
    enc.metadata_level = true;
    Ok(())
}

/// The bytes of `manifest.dsse.json` for `manifest_bytes`: a DSSE envelope over the
/// [`ManifestStatement`] naming the manifest's SHA-256 and size, signed by `key`.
/// The statement names the manifest's own format when it is v2 (re-signing an older manifest,
/// as tests do), else v3.
pub fn sign_manifest(manifest_bytes: &[u8], key: &SecretKey) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Format {
        format: String,
    }
    let format = match serde_json::from_slice::<Format>(manifest_bytes) {
        Ok(f) if f.format == FORMAT_V2 => FORMAT_V2,
        _ => FORMAT_V3,
    };
    sign_statement(format, Sha256::of(manifest_bytes), manifest_bytes.len() as u64, key)
}

/// The signature bytes of an envelope custody just wrote (one signature, standard base64).
/// Its own serialization always parses; were it not to, the zero bytes returned would make any
/// token over them fail the imprint check (§6.6 T3), never pass it.
fn envelope_signature(env_bytes: &[u8]) -> [u8; 64] {
    use base64::Engine as _;
    let env: Option<dsse::Envelope> = serde_json::from_slice(env_bytes).ok();
    env.and_then(|e| e.signatures.into_iter().next())
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s.sig).ok())
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .unwrap_or([0; 64])
}

/// [`sign_manifest`] of a manifest of `format` with this SHA-256 and size.
fn sign_statement(format: &str, manifest_sha256: Sha256, manifest_size: u64, key: &SecretKey) -> Vec<u8> {
    let statement = ManifestStatement { format: format.into(), manifest_sha256, manifest_size };
    dsse::to_bytes(&dsse::sign(STATEMENT_PAYLOAD_TYPE, &statement.to_bytes(), key))
}

/// Writes the member `name` whose bytes are the concatenation of `pieces`; returns their
/// SHA-256 and size. Each piece is hashed in cache-sized slices just before the slice goes to
/// the encoder.
fn write_member_pieces<W: Write>(
    enc: &mut Staged<W>,
    template: &tar::Header,
    name: &str,
    pieces: &ManifestPieces<'_>,
) -> io::Result<(Sha256, u64)> {
    let size: u64 = pieces.parts().iter().map(|p| p.len() as u64).sum();
    let h = member_header(template, name, size)?;
    enc.small(h.as_bytes())?;
    let mut hasher = Hasher::new();
    for part in pieces.parts() {
        for slice in part.chunks(READ_BUF) {
            hasher.update(slice);
            if slice.len() < STAGE {
                enc.small(slice)?;
            } else {
                enc.large(slice)?;
            }
        }
    }
    enc.small(padding(size))?;
    Ok((hasher.finish(), size))
}

/// The bytes of `manifest.json` as five consecutive pieces: the small fields before the
/// entries, the entries' rendered JSON, the fields between, the journal's rendered JSON, and
/// the fields after it.
struct ManifestPieces<'a> {
    head: Vec<u8>,
    entries: &'a [u8],
    middle: Vec<u8>,
    journal: &'a [u8],
    tail: Vec<u8>,
}

impl ManifestPieces<'_> {
    fn parts(&self) -> [&[u8]; 5] {
        [&self.head, self.entries, &self.middle, self.journal, &self.tail]
    }

    /// All pieces in one buffer (for checks).
    fn concat(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

/// The exact bytes of `manifest.json`: compact JSON and a final newline.
pub fn manifest_to_bytes(m: &Manifest) -> Vec<u8> {
    let mut v = serde_json::to_vec(m).unwrap_or_default();
    v.push(b'\n');
    v
}

/// [`manifest_to_bytes`] of `m` in pieces, with the JSON of `m.entries` and `m.journal` given
/// already rendered (each without its enclosing brackets, as [`Journal::json`] renders): the
/// fields are written in `Manifest`'s declaration order, exactly as its derived `Serialize`
/// writes them (the integration test
/// `spliced_manifest_json_is_byte_identical_to_serializing_the_manifest`, the unit test
/// `manifest_pieces_are_the_serialized_manifest` and, in debug builds, a `debug_assert_eq!` in
/// `write_all` hold the two together).
fn manifest_pieces<'a>(m: &Manifest, entries_json: &'a [u8], journal_json: &'a [u8]) -> ManifestPieces<'a> {
    fn field<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, name: &str, value: &T) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        // Serializing the manifest's plain data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
    let mut head = Vec::with_capacity(16 * 1024);
    head.extend_from_slice(b"{\"format\":");
    let _ = serde_json::to_writer(&mut head, &m.format);
    field(&mut head, "incident", &m.incident);
    field(&mut head, "collector", &m.collector);
    field(&mut head, "signer", &m.signer);
    head.extend_from_slice(b",\"entries\":[");
    let mut middle = b"]".to_vec();
    field(&mut middle, "completeness", &m.completeness);
    middle.extend_from_slice(b",\"journal\":[");
    let mut tail = b"]".to_vec();
    field(&mut tail, "merkle_root", &m.merkle_root);
    field(&mut tail, "ledger_prev", &m.ledger_prev);
    field(&mut tail, "sealed_at", &m.sealed_at);
    if let Some(a) = &m.analysis {
        field(&mut tail, "analysis", a);
    }
    if let Some(a) = &m.analysis_ref {
        field(&mut tail, "analysis_ref", a);
    }
    if let Some(s) = &m.supplement_of {
        field(&mut tail, "supplement_of", s);
    }
    tail.extend_from_slice(b"}\n");
    ManifestPieces { head, entries: entries_json, middle, journal: journal_json, tail }
}

/// Build the completeness checklist.
/// `missing`: the detail of an identifier without a value (neither given nor found, or in
/// conflict). `kinds`: files per evidence kind by content (else the entries' folder kinds).
pub fn completeness(
    incident: &Incident,
    entries: &[Entry],
    not_applicable: &[String],
    missing: &dyn Fn(crate::bundle::manifest::IdentName) -> String,
    kinds: Option<&std::collections::BTreeMap<String, u64>>,
) -> Completeness {
    let mut items = Vec::new();
    let na = |item: &str| not_applicable.iter().any(|n| n == item);
    for id in &incident.identifiers {
        let (status, detail) = if id.status == Status::Present && id.value.is_some() {
            let shown = |s: &crate::bundle::manifest::IdentSource| match (&s.path, &s.field) {
                (Some(p), Some(f)) => format!("{} ({p}, field {f})", s.origin),
                (Some(p), None) => format!("{} ({p})", s.origin),
                _ => s.origin.clone(),
            };
            let value = id.value.clone().unwrap_or_default();
            let given = id.sources.first().filter(|s| matches!(s.origin.as_str(), "flag" | "spec"));
            let record = id.sources.iter().find(|s| s.origin == "record");
            // With an analysis (`kinds`), a given value says whether the evidence holds it:
            // a seed that matches nothing is the responder's word alone.
            let detail = match (given, record, kinds.is_some()) {
                (Some(g), None, true) => format!("{value} given ({}); found in NO record of the evidence", g.origin),
                (Some(g), Some(r), true) => format!("{value} given ({}); also in {}", g.origin, shown(r)),
                _ => format!("{value} from {}", id.sources.first().map(shown).unwrap_or_else(|| "given".into())),
            };
            (Status::Present, detail)
        } else if na(id.name.as_str()) {
            (Status::NotApplicable, "declared not applicable by the responder".into())
        } else {
            (Status::Missing, missing(id.name))
        };
        items.push(CheckItem { group: "identifier".into(), item: id.name.as_str().into(), status, detail });
    }
    for kind in REQUIRED_KINDS {
        let n = match kinds {
            Some(k) => k.get(kind).copied().unwrap_or(0) as usize,
            None => entries.iter().filter(|e| e.kind == kind).count(),
        };
        let (status, detail) = if n > 0 {
            (Status::Present, format!("{n} file(s){}", if kinds.is_some() { " (by content)" } else { "" }))
        } else if na(kind) {
            (Status::NotApplicable, "declared not applicable by the responder".into())
        } else {
            (
                Status::Missing,
                if kinds.is_some() {
                    format!("no collected file was recognised as {kind} evidence (by its content, or a folder named after it)")
                } else {
                    format!("no {kind} evidence was collected")
                },
            )
        };
        items.push(CheckItem { group: "evidence".into(), item: kind.into(), status, detail });
    }
    let complete = items.iter().all(|i| i.status != Status::Missing);
    Completeness { complete, items }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_readers::Trickle;

    /// Records what the sealer shows an observer, and can claim that a re-read found a file
    /// changed.
    #[derive(Default)]
    struct Recorder {
        /// Per large file: its path, the bytes handed over, the `on_file_end` value.
        files: Vec<(String, Vec<u8>, Option<Option<u64>>)>,
        small: Vec<String>,
        claim_changed: Vec<String>,
    }

    impl Observer for Recorder {
        fn on_bytes(&mut self, entry: &Entry, _data: &[u8]) {
            self.small.push(entry.path.clone());
        }
        fn on_file(&mut self, entry: &Entry, _file: &File) {
            self.files.push((entry.path.clone(), Vec::new(), None));
        }
        fn on_file_data(&mut self, buf: &mut Vec<u8>, len: usize) {
            let last = self.files.last_mut().expect("data after on_file");
            last.1.extend_from_slice(&buf[..len]);
            // Take the buffer, as the analysis does: the sealer must go on with the new one.
            *buf = vec![0xEE; buf.len()];
        }
        fn on_file_end(&mut self, sealed_xxh3: Option<u64>) {
            self.files.last_mut().expect("end after on_file").2 = Some(sealed_xxh3);
        }
        fn finish(
            &mut self,
            _: &mut Incident,
            _: &mut dyn Write,
        ) -> io::Result<Option<crate::collect::analysis::AnalysisSummary>> {
            Ok(None)
        }
        fn changed_since_sealed(&mut self) -> Vec<String> {
            std::mem::take(&mut self.claim_changed)
        }
    }

    fn seal_dir(dir: &std::path::Path, names: &[&str], observer: &mut Recorder) -> Result<Sealed, SealError> {
        let files: Arc<[PlannedFile]> = names
            .iter()
            .map(|n| PlannedFile {
                rel_path: format!("logs/{n}"),
                kind: "logs".into(),
                source: dir.join(n),
                display_source: n.to_string(),
                snapshot: false,
                link_target: None,
            })
            .collect();
        let keys = tempfile::tempdir().unwrap();
        let key = SecretKey::generate(&keys.path().join("key.pem")).unwrap();
        let clock = Clock::fixed(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let mut input = test_input(files, &clock, &key);
        input.observer = Some(observer);
        seal(input, io::sink())
    }

    /// A seal of `files` with no incident details and no observer.
    fn test_input<'a>(files: Arc<[PlannedFile]>, clock: &'a Clock, key: &'a SecretKey) -> SealInput<'a> {
        SealInput {
            files,
            plan_events: Vec::new(),
            incident: Incident {
                identifiers: Vec::new(),
                category: None,
                side_effect: Default::default(),
                notes: vec![],
                tool_notes: None,
            },
            not_applicable: Vec::new(),
            ledger_prev: None,
            clock,
            key,
            level: 3,
            workers: 2,
            observer: None,
            supplement_of: None,
        }
    }

    /// The writer waits on a large file's hasher: an answer that never comes (the hasher died)
    /// or that is for another file stops the seal as an internal error, never a wrong bundle.
    #[test]
    fn the_writer_refuses_a_missing_or_misdirected_hash() {
        let files: Arc<[PlannedFile]> =
            vec![planned(std::path::Path::new("/a")), planned(std::path::Path::new("/b"))].into();
        let keys = tempfile::tempdir().unwrap();
        let key = SecretKey::generate(&keys.path().join("key.pem")).unwrap();
        let clock = Clock::fixed(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let at = clock.now();
        for misdirected in [false, true] {
            let (tx, rx) = sync_channel::<Batch>(1);
            let (spare, _spare_rx) = sync_channel::<Vec<u8>>(1);
            let (reply, result) = sync_channel::<Item>(1);
            if misdirected {
                reply.send(Item::Failed { idx: 1, detail: "cannot read /b: x".into(), at }).unwrap();
            } else {
                drop(reply);
            }
            tx.send(Batch { items: vec![Item::Hashing { idx: 0, result }], data: Vec::new() }).unwrap();
            drop(tx);
            let mut input = test_input(files.clone(), &clock, &key);
            let reader = FromReader { batches: rx, spare };
            match write_all(&mut input, &files, reader, io::sink(), at, 0, &Meter::none()) {
                Err(SealError::ReaderPanicked) => {}
                other => panic!("misdirected {misdirected}: expected ReaderPanicked, got {other:?}"),
            }
        }
    }

    /// A large file's bytes reach the observer exactly as sealed (in the sealer's buffers,
    /// which the observer may keep), ended by their XXH3; a duplicate of it at another path is
    /// handed over too, though its blob is written once.
    #[test]
    fn observer_gets_each_large_file_as_sealed_and_the_duplicate_too() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..(5 * READ_BUF + 123)).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("a.bin"), &big).unwrap();
        std::fs::write(dir.path().join("b.bin"), &big).unwrap();
        std::fs::write(dir.path().join("c.txt"), b"small\n").unwrap();
        let mut rec = Recorder::default();
        let sealed = seal_dir(dir.path(), &["a.bin", "b.bin", "c.txt"], &mut rec).unwrap();
        assert_eq!(sealed.manifest.entries.len(), 3);
        assert_eq!(rec.small, ["logs/c.txt"]);
        let x = xxhash_rust::xxh3::xxh3_64(&big);
        assert_eq!(rec.files.len(), 2);
        for (i, (path, bytes, end)) in rec.files.iter().enumerate() {
            assert_eq!(path, ["logs/a.bin", "logs/b.bin"][i]);
            assert!(bytes == &big, "{path}: the bytes handed over are the file's");
            assert_eq!(*end, Some(Some(x)), "{path}");
        }
    }

    /// An observer that found a file changed since its copy (a re-read that differs) fails
    /// the seal with `Changed`, which preserve retries from snapshots.
    #[test]
    fn a_file_the_observer_found_changed_fails_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bin"), vec![b'a'; 2 * READ_BUF]).unwrap();
        let mut rec = Recorder { claim_changed: vec!["logs/a.bin".into()], ..Recorder::default() };
        match seal_dir(dir.path(), &["a.bin"], &mut rec) {
            Err(SealError::Changed(paths)) => assert_eq!(paths, ["logs/a.bin"]),
            other => panic!("expected Changed, got {other:?}"),
        }
        let mut rec = Recorder::default();
        assert!(seal_dir(dir.path(), &["a.bin"], &mut rec).is_ok());
    }

    #[test]
    fn blob_header_is_the_member_header_of_the_blob_name() {
        let template = header_template(1_700_000_000).unwrap();
        for (i, size) in [0u64, 1, 511, 4096, SMALL_FILE + 1, 1 << 40].into_iter().enumerate() {
            let sha = Sha256::of(&[i as u8]);
            let by_name = member_header(&template, &blob_member(&sha), size).unwrap();
            assert_eq!(blob_header(&template, &sha, size).as_bytes()[..], by_name.as_bytes()[..], "size {size}");
        }
    }

    /// The level change for the metadata takes effect (the stream differs from one without
    /// it), the stream still decodes to its input, and it is the same bytes every time.
    #[test]
    fn metadata_level_applies_to_what_follows_at_a_fixed_point() {
        // Blob-like text, then manifest-like JSON full of hex digests.
        let mut blob = Vec::new();
        let mut i = 0u32;
        while blob.len() < ZSTD_JOB_SIZE as usize + 3000 {
            blob.extend_from_slice(format!("{{\"n\":{i},\"msg\":\"event {} of the run\"}}\n", i % 97).as_bytes());
            i += 1;
        }
        let mut json = Vec::new();
        for i in 0..40_000u32 {
            let (a, b) = (Sha256::of(&i.to_le_bytes()), Sha256::of(&(i + 7).to_be_bytes()));
            json.extend_from_slice(format!("{{\"seq\":{i},\"sha256\":\"{a}\",\"prev\":\"{b}\"}},").as_bytes());
        }
        let stream = |switch: bool| {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            enc.multithread(2).unwrap();
            enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE)).unwrap();
            enc.include_checksum(true).unwrap();
            let mut st = Staged { inner: enc, buf: Vec::new(), metadata_level: false };
            st.small(&blob[..100]).unwrap();
            st.large(&blob[100..]).unwrap();
            if switch {
                metadata_level(&mut st, 2).unwrap();
                metadata_level(&mut st, 2).unwrap();
            }
            st.large(&json).unwrap();
            st.flush_stage().unwrap();
            st.inner.finish().unwrap()
        };
        let (a, b, plain) = (stream(true), stream(true), stream(false));
        assert!(a == b, "the same input gave different streams");
        assert!(a != plain, "the metadata level was not applied");
        let decoded = zstd::stream::decode_all(&a[..]).unwrap();
        assert!(decoded.len() == blob.len() + json.len() && decoded[..blob.len()] == blob[..]);
        assert!(decoded[blob.len()..] == json[..]);
    }

    /// `read_small` returns the file's bytes whatever size `fstat` said: the file may have
    /// grown (read on to its end) or shrunk (cut at its end) since.
    #[test]
    fn read_small_reads_to_the_end_whatever_the_stat_said() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &bytes).unwrap();
        for len in [0, 1, 4096, 9_999, 10_000, 10_001, 20_000] {
            let got = read_into_batch(&mut File::open(&p).unwrap(), len);
            assert!(got == bytes, "stat size {len}: {} bytes read", got.len());
        }
    }

    /// `read_small` into a batch buffer that already holds another file: the earlier bytes
    /// stay, the new ones are returned.
    fn read_into_batch(r: &mut impl Read, len: usize) -> Vec<u8> {
        let mut batch = b"earlier file".to_vec();
        let range = read_small(r, len, &mut batch).unwrap();
        assert_eq!(&batch[..12], b"earlier file");
        assert_eq!(range, 12..batch.len(), "the file's range is the rest of the buffer");
        batch[range].to_vec()
    }

    /// A read error leaves the batch buffer as it was (no partial file in it).
    #[test]
    fn read_small_error_leaves_the_batch_as_it_was() {
        let mut batch = b"earlier file".to_vec();
        assert!(read_small(&mut Trickle::failing_at(vec![b'x'; 10], 1, 3), 10, &mut batch).is_err());
        assert_eq!(batch, b"earlier file");
    }

    /// A read that comes back short with the `fstat` size in is the end: one `read` per small
    /// file, not two. A short read before that size (a network or FUSE file system may return
    /// one) is not taken for the end.
    #[test]
    fn read_small_stops_at_a_short_read_of_the_stat_size_only() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let mut whole = Trickle::new(bytes.clone(), usize::MAX);
        assert_eq!(read_into_batch(&mut whole, 5000), bytes);
        assert_eq!(whole.calls, 1, "the end was established by a second read");
        let mut pieces = Trickle::new(bytes.clone(), 1000);
        assert_eq!(read_into_batch(&mut pieces, 5000), bytes, "short reads before the end");
        // Grown since fstat (stat said 3000): read on to the real end, then one read of 0.
        let mut grown = Trickle::new(bytes.clone(), usize::MAX);
        assert_eq!(read_into_batch(&mut grown, 3000), bytes);
        // Shrunk (stat said 6000): the short read is not at the stat size, so one more read.
        let mut shrunk = Trickle::new(bytes.clone(), usize::MAX);
        assert_eq!(read_into_batch(&mut shrunk, 6000), bytes);
        assert_eq!(shrunk.calls, 2);
    }

    /// Files opened through the directory cache are the right files; a symbolic link is
    /// refused, as the file's own name and anywhere on its path (a link there was put there
    /// after planning); a missing file or directory fails.
    #[test]
    fn dir_cache_opens_only_real_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["a", "b"] {
            std::fs::create_dir(root.join(d)).unwrap();
            for n in ["1", "2"] {
                std::fs::write(root.join(d).join(n), format!("{d}{n}")).unwrap();
            }
        }
        std::os::unix::fs::symlink(root.join("a/1"), root.join("b/link")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("dirlink")).unwrap();
        let mut cache = DirCache::default();
        let mut s = String::new();
        cache.open(&root.join("a/./1")).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "a1");
        for odd in ["a/.", "a/", "b/..", "a/../b"] {
            assert!(cache.open(&root.join(odd)).unwrap().metadata().unwrap().is_dir(), "{odd}");
        }
        for rel in ["a/1", "a/2", "b/1", "a/2", "b/2"] {
            let mut s = String::new();
            cache.open(&root.join(rel)).unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s, rel.replace('/', ""));
        }
        assert!(matches!(cache.open(&root.join("b/link")), Err(NotOpened::Link)));
        assert!(matches!(cache.open(&root.join("dirlink/1")), Err(NotOpened::LinkOnTheWay)));
        assert!(matches!(cache.open(&root.join("dirlink/../a/1")), Err(NotOpened::LinkOnTheWay)));
        assert!(matches!(cache.open(&root.join("dirlink/.")), Err(NotOpened::Link)));
        let not_found =
            |r: Result<File, NotOpened>| matches!(r, Err(NotOpened::Io(e)) if e.kind() == io::ErrorKind::NotFound);
        assert!(not_found(cache.open(&root.join("b/none"))));
        assert!(not_found(cache.open(&root.join("c/1"))));
        let mut s = String::new();
        cache.open(&root.join("a/1")).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "a1");
        // The component-by-component fallback refuses links the same way.
        assert_eq!(open_dir_no_links(&root.join("dirlink")).map(drop), Err(rustix::io::Errno::LOOP));
        assert!(open_dir_no_links(&root.join("a")).is_ok());
    }

    /// The reader never reads the signing key (by device and inode: through a hard link
    /// too), nor a file other than the checked target of a followed link, nor a kernel
    /// pseudo-file reached through a link; each is skipped with its reason.
    #[test]
    fn the_reader_refuses_the_key_a_replaced_link_target_and_kernel_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let key = root.join("key");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----").unwrap();
        std::fs::hard_link(&key, root.join("hard")).unwrap();
        std::fs::write(root.join("ok"), "ok").unwrap();
        std::fs::write(root.join("other"), "other").unwrap();
        let id = |p: &std::path::Path| crate::FileId::of(&std::fs::metadata(p).unwrap());
        let never = (id(&key), key.clone());
        let (tx, _rx) = sync_channel::<Batch>(8);
        let (_spare_tx, spare_rx) = sync_channel::<Vec<u8>>(1);
        let mut out = Outbox::new(tx, spare_rx);
        let (mut buf, mut dirs, clock) = (vec![0u8; READ_BUF], DirCache::default(), Clock::system());
        let mut read = |source: std::path::PathBuf, link_target: Option<crate::FileId>| {
            let f = PlannedFile { link_target, ..planned(&source) };
            match read_one(0, &f, &clock, Some(&never), &mut buf, &mut out, &mut dirs, None) {
                Ok(Item::Skipped { detail, .. }) => Err(detail),
                Ok(Item::Blob { .. }) => Ok(()),
                _ => panic!("{}: neither read nor skipped", source.display()),
            }
        };
        assert!(read(root.join("hard"), None).unwrap_err().contains("signing key"));
        assert!(read(key.clone(), Some(id(&key))).unwrap_err().contains("signing key"));
        assert_eq!(read(root.join("ok"), Some(id(&root.join("ok")))), Ok(()));
        assert_eq!(read(root.join("ok"), None), Ok(()));
        assert!(read(root.join("ok"), Some(id(&root.join("other")))).unwrap_err().contains("replaced after"));
        // Same device and inode, another birth: the inode number was reused by a new file.
        let mut reborn = id(&root.join("ok"));
        reborn.born = Some(reborn.born.map_or((0, 0), |(s, ns)| (s, ns ^ 1)));
        let why = read(root.join("ok"), Some(reborn)).unwrap_err();
        assert!(why.contains("inode number reused"), "{why}");
        // For real: a file deleted and created again until the inode number comes back (ext4,
        // XFS and overlayfs hand it out again at once), with a birth time kept by the file system.
        let before = id(&root.join("other"));
        let mut reused = false;
        for _ in 0..64 {
            std::fs::remove_file(root.join("other")).unwrap();
            std::fs::write(root.join("other"), "swapped").unwrap();
            let now = id(&root.join("other"));
            if now.ino == before.ino && now.born.is_some() {
                reused = true;
                break;
            }
        }
        if reused {
            let why = read(root.join("other"), Some(before)).unwrap_err();
            assert!(why.contains("inode number reused"), "{why}");
        }
        let environ = std::path::PathBuf::from(format!("/proc/{}/environ", std::process::id()));
        assert!(read(environ.clone(), Some(id(&environ))).unwrap_err().contains("kernel pseudo-file"));
    }

    #[test]
    fn seen_blobs_tells_first_from_repeated_digests() {
        let mut seen = SeenBlobs::default();
        let shas: Vec<Sha256> = (0..1000u32).map(|i| Sha256::of(&i.to_le_bytes())).collect();
        assert!(shas.iter().all(|s| seen.insert(*s)), "a new digest was taken for a repeated one");
        assert!(shas.iter().all(|s| !seen.insert(*s)), "a repeated digest was taken for a new one");
        // Equal first bytes (the hash) do not make two digests equal.
        let mut twin = shas[0];
        twin.0[31] ^= 1;
        assert!(seen.insert(twin));
    }

    /// Issue 19 (structure): the set hashed digests by folding their own bytes, which whoever
    /// plants the evidence can grind to collide. Two digests that collided under that fold (they
    /// differ by `x` in bytes 16..24 and by `x` rotated left by 5 bits in bytes 24..32) must hash
    /// apart now.
    #[test]
    fn regression_seen_blobs_hash_is_keyed_not_the_digests_own_bits() {
        use std::hash::BuildHasher;
        let a = Sha256::of(b"planted");
        let mut b = a;
        let x: u64 = 0x0123_4567_89ab_cdef;
        let fold = |s: &Sha256, at: usize| u64::from_le_bytes(s.0[at..at + 8].try_into().unwrap());
        b.0[16..24].copy_from_slice(&(fold(&a, 16) ^ x).to_le_bytes());
        b.0[24..32].copy_from_slice(&(fold(&a, 24) ^ x.rotate_left(5)).to_le_bytes());
        let old = |s: &Sha256| (0..4).fold(32u64, |h, i| h.rotate_left(5) ^ fold(s, i * 8));
        assert_eq!(old(&a), old(&b), "the pair collides under the old fold");
        let seen = SeenBlobs::default();
        assert_ne!(seen.hasher().hash_one(a), seen.hasher().hash_one(b));
    }

    /// The manifest streamed from its pieces is byte for byte `manifest_to_bytes`, and its
    /// member carries those bytes with the SHA-256 and size the statement signs.
    #[test]
    fn manifest_pieces_are_the_serialized_manifest() {
        use crate::bundle::manifest::{Collector, Signer};
        use crate::digest::EntryId;
        let at = Utc::now();
        let mut journal = Journal::rendering();
        journal.push(at, EventKind::Skipped, Some("/src/a link".into()), None, None, Some("symbolic link".into()));
        let mut entries = Vec::new();
        let mut entries_json = Vec::new();
        for (i, path) in ["logs/a \"q\".log", "logs/ü\u{1}.jsonl", "memory/x", "o/b\\s\t"].into_iter().enumerate() {
            let e = Entry {
                path: path.into(),
                kind: path.split('/').next().unwrap().into(),
                size: i as u64 * 1000,
                sha256: Sha256::of(path.as_bytes()),
                source: format!("/src/{path}"),
                collected_at: at,
            };
            let at_json = serde_json::to_vec(&at).unwrap();
            journal.push_collected(at, &at_json, e.path.clone(), e.sha256, e.size);
            if !entries_json.is_empty() {
                entries_json.push(b',');
            }
            let mut one = Vec::new();
            render_entry(&mut one, &e, &at_json);
            assert_eq!(one, serde_json::to_vec(&e).unwrap(), "entry {path:?}");
            entries_json.extend_from_slice(&one);
            entries.push(e);
        }
        let incident = crate::preserve::incident_from(&crate::preserve::PreserveRequest {
            notes: vec!["note \"1\"".into()],
            ..Default::default()
        });
        let (events, journal_json) = journal.into_parts();
        let manifest = Manifest {
            format: FORMAT_V3.into(),
            completeness: completeness(&incident, &entries, &[], &|_| NOT_ANALYZED.to_string(), None),
            incident,
            collector: Collector {
                tool: "custody".into(),
                version: "0".into(),
                host: "h".into(),
                user: "u".into(),
                started_at: at,
                finished_at: at,
            },
            signer: Signer { keyid: "k".into(), public_key: "-----BEGIN PUBLIC KEY-----\n".into() },
            merkle_root: merkle::root(&entries),
            entries,
            journal: events,
            ledger_prev: Some(LedgerLink {
                position: 3,
                entry: EntryId(Sha256::of(b"e")),
                bundle: BundleId(Sha256::of(b"b")),
            }),
            sealed_at: at,
            analysis: None,
            analysis_ref: Some(AnalysisRef { member: ANALYSIS_MEMBER.into(), sha256: Sha256::of(b"a"), size: 9 }),
            supplement_of: Some(crate::bundle::manifest::SupplementOf {
                bundle: BundleId(Sha256::of(b"o")),
                sealed_at: at,
            }),
        };
        let journal_json = journal_json.unwrap();
        let pieces = manifest_pieces(&manifest, &entries_json, &journal_json);
        let expected = manifest_to_bytes(&manifest);
        assert_eq!(String::from_utf8(pieces.concat()).unwrap(), String::from_utf8(expected.clone()).unwrap());

        let template = header_template(0).unwrap();
        let mut enc = Staged { inner: Vec::new(), buf: Vec::new(), metadata_level: false };
        let (sha, size) = write_member_pieces(&mut enc, &template, MANIFEST_MEMBER, &pieces).unwrap();
        enc.flush_stage().unwrap();
        assert_eq!((sha, size), (Sha256::of(&expected), expected.len() as u64));
        let mut reference = Staged { inner: Vec::new(), buf: Vec::new(), metadata_level: false };
        reference.member(&template, MANIFEST_MEMBER, &expected).unwrap();
        reference.flush_stage().unwrap();
        assert_eq!(enc.inner, reference.inner);
    }

    fn planned(source: &std::path::Path) -> PlannedFile {
        PlannedFile {
            rel_path: "logs/x".into(),
            kind: "logs".into(),
            source: source.to_path_buf(),
            display_source: source.display().to_string(),
            snapshot: false,
            link_target: None,
        }
    }

    /// Regression (a 480 MB log behind 200 MB of other large files kept the writer waiting
    /// while one thread hashed it): a large file that takes long to hash — here a socket that
    /// delivers its bytes only later — does not hold up the hashing of the file after it.
    #[test]
    fn a_slow_large_file_does_not_hold_up_the_next_ones_hash() {
        let dir = tempfile::tempdir().unwrap();
        let quick = dir.path().join("quick");
        std::fs::write(&quick, b"quick bytes").unwrap();
        // A socket pair stands in for a pipe (`std::io::pipe` is newer than our Rust 1.80).
        let (pipe_rx, mut pipe_tx) = std::os::unix::net::UnixStream::pair().unwrap();
        let files: Vec<PlannedFile> = vec![planned(&dir.path().join("slow")), planned(&quick)];
        let (jobs_tx, jobs_rx) = sync_channel::<HashJob>(4);
        let (jobs_rx, stop) = (Mutex::new(jobs_rx), AtomicBool::new(false));
        let at = Utc::now();
        thread::scope(|s| {
            for _ in 0..HASHERS {
                s.spawn(|| hash_jobs(&files, &jobs_rx, &stop));
            }
            let (slow_tx, slow) = sync_channel(1);
            let file = File::from(std::os::fd::OwnedFd::from(pipe_rx));
            jobs_tx.send(HashJob { idx: 0, file, at, reply: slow_tx }).unwrap();
            let (quick_tx, quick_rx) = sync_channel(1);
            jobs_tx.send(HashJob { idx: 1, file: File::open(&quick).unwrap(), at, reply: quick_tx }).unwrap();
            drop(jobs_tx);
            // The first hasher is stuck in the pipe; the second answers for the next file.
            match quick_rx.recv_timeout(std::time::Duration::from_secs(20)) {
                Ok(Item::Blob { idx: 1, sha, size: 11, .. }) => assert_eq!(sha, Sha256::of(b"quick bytes")),
                _ => panic!("the file after a slow one was not hashed while the slow one was"),
            }
            assert!(slow.try_recv().is_err(), "the socket was answered before it delivered its bytes");
            pipe_tx.write_all(b"late").unwrap();
            pipe_tx.shutdown(std::net::Shutdown::Write).unwrap();
            // A socket cannot be rewound for the copy pass: recorded as unreadable, with why.
            match slow.recv().unwrap() {
                Item::Failed { idx: 0, detail, .. } => {
                    assert!(detail.starts_with("cannot read ") && detail.contains("slow"), "{detail}")
                }
                _ => panic!("a file that cannot be rewound must be recorded as failed"),
            }
        });
    }

    /// A large file no hasher can take (the queue is full) is hashed by the reader itself,
    /// which never blocks on the hashers; with room in the queue it goes to them.
    #[test]
    fn the_reader_hashes_a_large_file_itself_when_the_hashers_queue_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let data: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = planned(&path);
        let (tx, _rx) = sync_channel::<Batch>(1);
        let (_spare_tx, spare_rx) = sync_channel::<Vec<u8>>(1);
        let mut out = Outbox::new(tx, spare_rx);
        let (mut buf, mut dirs, clock) = (vec![0u8; READ_BUF], DirCache::default(), Clock::system());
        // A queue without room and no hasher waiting on it.
        let (full, jobs) = sync_channel::<HashJob>(0);
        let (done_tx, done) = sync_channel(1);
        thread::scope(|s| {
            s.spawn(|| {
                let item = read_one(0, &f, &clock, None, &mut buf, &mut out, &mut dirs, Some(&full));
                let _ = done_tx.send(item.map(|i| match i {
                    Item::Blob { payload: Payload::File { check, .. }, sha, size, .. } => Some((sha, size, check)),
                    _ => None,
                }));
            });
            let Ok(item) = done.recv_timeout(std::time::Duration::from_secs(20)) else {
                // It blocked on the full queue: take the file off it so the thread can end.
                let _ = jobs.recv_timeout(std::time::Duration::from_secs(20));
                panic!("the reader blocked on the hashers' full queue");
            };
            let expected = (Sha256::of(&data), data.len() as u64, xxhash_rust::xxh3::xxh3_64(&data));
            assert!(matches!(item, Ok(Some(got)) if got == expected), "the reader must hash it itself");
        });
        let (room, jobs) = sync_channel::<HashJob>(1);
        match read_one(0, &f, &clock, None, &mut buf, &mut out, &mut dirs, Some(&room)) {
            Ok(Item::Hashing { idx: 0, .. }) => assert_eq!(jobs.try_recv().map(|j| j.idx).ok(), Some(0)),
            _ => panic!("a large file must go to the hashers when their queue has room"),
        }
    }

    /// The reader hands large files to the hashers (the writer gets `Hashing` placeholders)
    /// and small ones in memory, all in plan order; each placeholder resolves to its file.
    #[test]
    fn the_reader_hands_large_files_to_the_hashers_in_plan_order() {
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<Vec<u8>> =
            (0..6u8).map(|i| vec![i; if i % 2 == 0 { (2 << 20) + usize::from(i) } else { 10 }]).collect();
        let files: Arc<[PlannedFile]> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let path = dir.path().join(format!("f{i}"));
                std::fs::write(&path, c).unwrap();
                planned(&path)
            })
            .collect();
        let (tx, rx) = sync_channel::<Batch>(CHANNEL_DEPTH);
        let (_spare_tx, spare_rx) = sync_channel::<Vec<u8>>(SPARE_BUFFERS);
        let reader = {
            let files = files.clone();
            thread::spawn(move || read_all(files, Clock::system(), None, tx, spare_rx))
        };
        let mut seen = Vec::new();
        for batch in rx.iter() {
            for item in batch.items {
                let (idx, sha, hashed) = match item {
                    Item::Hashing { idx, result } => match result.recv().unwrap() {
                        Item::Blob { idx: i, sha, .. } if i == idx => (idx, sha, true),
                        _ => panic!("file {idx}: the hasher's answer is not its blob"),
                    },
                    Item::Blob { idx, payload: Payload::Mem(r), sha, .. } => {
                        assert!(batch.data[r] == contents[idx][..]);
                        (idx, sha, false)
                    }
                    _ => panic!("unexpected item"),
                };
                assert_eq!(sha, Sha256::of(&contents[idx]), "file {idx}");
                assert_eq!(hashed, contents[idx].len() as u64 > SMALL_FILE, "file {idx}: wrong path");
                seen.push(idx);
            }
        }
        reader.join().unwrap();
        assert_eq!(seen, (0..6).collect::<Vec<_>>());
    }

    /// A snapshot (the retry of a file that changed while sealed) is a private copy of the
    /// bytes it hashed, rewound, with their SHA-256, size and XXH3; an unreadable source fails.
    #[test]
    fn a_snapshot_is_a_rewound_copy_of_exactly_the_bytes_it_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.log");
        let data: Vec<u8> = (0..(3 * READ_BUF + 5)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut buf = vec![0u8; READ_BUF];
        let (mut copy, sha, size, check) = snapshot(&mut File::open(&path).unwrap(), &mut buf).unwrap();
        assert_eq!((sha, size, check), (Sha256::of(&data), data.len() as u64, xxhash_rust::xxh3::xxh3_64(&data)));
        let mut back = Vec::new();
        copy.read_to_end(&mut back).unwrap();
        assert!(back == data, "the snapshot differs from the bytes hashed");
        let mut write_only = File::options().write(true).open(&path).unwrap();
        assert!(snapshot(&mut write_only, &mut buf).is_err(), "an unreadable source must fail the snapshot");
    }

    /// Hashing stops within `BETWEEN_EVERY` reads when `between` says the writer is gone, and
    /// `between` runs while a large file is hashed (the reader hands over batches there).
    #[test]
    fn hashing_a_large_file_checks_between_reads_and_stops_when_told() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![1u8; 4 << 20]).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut buf = vec![0u8; READ_BUF];
        let mut calls = 0;
        let r = hash_large(&mut file, &mut buf, || {
            calls += 1;
            Ok(())
        });
        assert!(matches!(r, Ok(Ok((_, n, _))) if n == 4 << 20));
        assert_eq!(calls, (4 << 20) / READ_BUF / BETWEEN_EVERY, "between runs every BETWEEN_EVERY reads");
        let mut calls = 0;
        let r = hash_large(&mut file, &mut buf, || {
            calls += 1;
            if calls == 2 {
                Err(Gone)
            } else {
                Ok(())
            }
        });
        assert!(r.is_err() && calls == 2, "hashing went on after the writer was gone");
    }

    /// A read error in a hasher is recorded for that file, with the error, and the hasher goes
    /// on with the next file; after `stop` (the writer is gone) queued files are not read.
    #[test]
    fn a_hasher_records_a_read_error_goes_on_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 3 << 20]).unwrap();
        let files = vec![planned(&path), planned(&path), planned(&path)];
        let (jobs_tx, jobs_rx) = sync_channel::<HashJob>(4);
        let (jobs_rx, stop) = (Mutex::new(jobs_rx), AtomicBool::new(false));
        let at = Utc::now();
        let (r0, a0) = sync_channel(1);
        let (r1, a1) = sync_channel(1);
        // Opened for writing only: every read fails (EBADF).
        let write_only = File::options().write(true).open(&path).unwrap();
        jobs_tx.send(HashJob { idx: 0, file: write_only, at, reply: r0 }).unwrap();
        jobs_tx.send(HashJob { idx: 1, file: File::open(&path).unwrap(), at, reply: r1 }).unwrap();
        thread::scope(|s| {
            s.spawn(|| hash_jobs(&files, &jobs_rx, &stop));
            match a0.recv().unwrap() {
                Item::Failed { idx: 0, detail, .. } => assert!(detail.starts_with("cannot read "), "{detail}"),
                _ => panic!("an unreadable file must be recorded as failed"),
            }
            match a1.recv().unwrap() {
                Item::Blob { idx: 1, payload: Payload::File { mut file, check }, sha, size, .. } => {
                    let data = vec![7u8; 3 << 20];
                    assert_eq!((sha, size), (Sha256::of(&data), data.len() as u64));
                    assert_eq!(check, xxhash_rust::xxh3::xxh3_64(&data));
                    // Rewound for the copy pass.
                    let mut back = Vec::new();
                    file.read_to_end(&mut back).unwrap();
                    assert!(back == data);
                }
                _ => panic!("the file after an unreadable one must still be hashed"),
            }
            stop.store(true, Ordering::Relaxed);
            let (r2, a2) = sync_channel(1);
            jobs_tx.send(HashJob { idx: 2, file: File::open(&path).unwrap(), at, reply: r2 }).unwrap();
            drop(jobs_tx);
            assert!(a2.recv().is_err(), "a file queued after stop was hashed");
        });
    }

    /// The reader's outbox hands items over in order, reads ahead past a full channel, and
    /// holds at most AHEAD_BYTES of small files and AHEAD_FILES large ones beyond it.
    #[test]
    fn outbox_keeps_order_and_bounds_what_it_holds() {
        let (tx, rx) = sync_channel::<Batch>(1);
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(SPARE_BUFFERS);
        let consumer = thread::spawn(move || {
            let mut seen = Vec::new();
            for batch in rx.iter() {
                thread::sleep(std::time::Duration::from_millis(1));
                for i in &batch.items {
                    match i {
                        Item::Blob { idx, payload: Payload::Mem(r), .. } => {
                            // A small file's range is its own bytes in its own batch.
                            assert!(batch.data[r.clone()].iter().all(|b| *b == *idx as u8), "file {idx}");
                            seen.push(*idx);
                        }
                        Item::Blob { idx, .. }
                        | Item::Failed { idx, .. }
                        | Item::Skipped { idx, .. }
                        | Item::Hashing { idx, .. } => seen.push(*idx),
                    }
                }
                let _ = spare_tx.try_send(batch.data);
            }
            seen
        });
        let mut out = Outbox::new(tx, spare_rx);
        let at = Utc::now();
        let (mut max_bytes, mut max_files, mut ran_ahead) = (0, 0, false);
        for idx in 0..600 {
            let item = match idx % 3 {
                0 => {
                    let start = out.batch.data.len();
                    out.batch.data.resize(start + (300 << 10), idx as u8);
                    Item::Blob {
                        idx,
                        payload: Payload::Mem(start..out.batch.data.len()),
                        sha: Sha256([0; 32]),
                        size: 0,
                        at,
                    }
                }
                1 if idx % 2 == 0 => Item::Blob {
                    idx,
                    payload: Payload::File { file: tempfile::tempfile().unwrap(), check: 0 },
                    sha: Sha256([0; 32]),
                    size: 0,
                    at,
                },
                // A large file still with a hasher counts as held like a hashed one.
                1 => Item::Hashing { idx, result: sync_channel(1).1 },
                _ => Item::Failed { idx, detail: String::new(), at },
            };
            assert!(out.push(item).is_ok());
            ran_ahead |= !out.ready.is_empty();
            max_bytes = max_bytes.max(out.held_bytes);
            max_files = max_files.max(out.held_files);
        }
        out.finish();
        let seen = consumer.join().unwrap();
        assert_eq!(seen, (0..600).collect::<Vec<_>>(), "items must reach the writer in plan order");
        assert!(ran_ahead, "the reader never read ahead of a full channel");
        assert!(max_bytes <= AHEAD_BYTES && max_files <= AHEAD_FILES, "held {max_bytes} bytes, {max_files} files");
    }
}
