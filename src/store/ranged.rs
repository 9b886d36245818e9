//! Reading a bundle from object storage as it downloads: a blocking [`Read`] fed by
//! concurrent ranged GETs, for the verifier (`verify --store s3://…`, `show`, and what verifies
//! before `extract`), with no local copy.
//!
//! **Ranges.** The object is read in [`RANGE_SIZE`] ranges. The first is requested when the
//! reader is opened (so a missing object is `None`, as before, and its answer names the size
//! and the ETag of what is read); the others are then fetched by tasks on the runtime, at most
//! [`RANGES_HELD`] ranges alive at once — being fetched, waiting, or being read by the
//! verifier — and handed to the reader strictly in file order. A range's buffer is freed when
//! the verifier has read past it, so memory is bounded by `RANGES_HELD × RANGE_SIZE`
//! (32 MiB) per bundle, whatever its size.
//!
//! **One version, never a mix.** Every ranged GET after the first is pinned to the bytes the
//! first one read: to the version the verifier chose (`?versionId=`, [`ReadAt::Version`], in a
//! versioned bucket) and to the ETag of the first answer (`If-Match`), and every answer's
//! total size (`Content-Range`) must be the first one's. An object overwritten (or a version
//! deleted) while it is read is then refused by the server, and that is an error saying so
//! ([`StoreError::ChangedWhileRead`]): bytes of two versions are never verified as one bundle.
//! A server that names neither a version nor an ETag cannot be read this way beyond one range
//! ([`StoreError::Unpinned`]).
//!
//! **Faults.** `object_store` retries each request (5xx, timeouts, resets) and, with an ETag,
//! resumes a body cut off mid-way. What it cannot see is a body that ends early *cleanly* (a
//! proxy that shortened it): every range's length is checked, and a short or failed range is
//! fetched again, [`ATTEMPTS`] times in all. A range that still fails is an error naming the
//! key and the byte range ([`StoreError::RangeRead`], [`StoreError::RangeShort`]) — a read
//! failure, never a finding about the bundle: the verifier's findings are discarded when the
//! stream failed.
//!
//! **Nothing left behind.** There is no temporary file. Dropping the reader (the verification
//! ended, failed, or the process is interrupted) closes the channel the tasks send into: the
//! scheduler stops, and every range task stops at its next await.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::versions::ReadAt;
use super::StoreError;

/// Bytes per ranged GET (what S3's own transfer tools use).
pub(crate) const RANGE_SIZE: u64 = 8 << 20;
/// Ranges alive at once per bundle: fetched, queued, or being read.
pub(crate) const RANGES_HELD: usize = 4;
/// Fetches of one range (after `object_store`'s own retries of each request) before its
/// failure is reported.
pub(crate) const ATTEMPTS: u32 = 3;

/// A range read, with the permit that keeps its buffer counted until the reader is past it.
type Piece = Result<(Bytes, OwnedSemaphorePermit), StoreError>;

/// What every ranged GET after the first is pinned to.
#[derive(Debug, Clone)]
struct Pin {
    version: Option<String>,
    etag: Option<String>,
    /// The object's size, as the first answer gave it.
    size: u64,
}

impl Pin {
    /// How the pinned object is named in an error.
    fn describe(&self) -> String {
        match (&self.version, &self.etag) {
            (Some(v), Some(e)) => format!("version {v}, ETag {e}, {} bytes", self.size),
            (Some(v), None) => format!("version {v}, {} bytes", self.size),
            (None, Some(e)) => format!("ETag {e}, {} bytes", self.size),
            (None, None) => format!("{} bytes", self.size),
        }
    }
}

/// Where the reader's failure is kept for the caller: the verifier sees only an I/O error, the
/// caller reports this one instead of anything the verifier found.
pub(crate) type Failure = Arc<Mutex<Option<StoreError>>>;

/// Take the failure kept by a [`RangedReader`], if its stream failed.
pub(crate) fn take_failure(f: &Failure) -> Option<StoreError> {
    f.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A blocking reader of one object, fed in order by ranged GETs running on the runtime. Read
/// it from a blocking thread (`spawn_blocking`), never from an async task.
pub(crate) struct RangedReader {
    rx: mpsc::Receiver<oneshot::Receiver<Piece>>,
    current: Bytes,
    /// Frees the current range's place when the reader moves past it.
    permit: Option<OwnedSemaphorePermit>,
    failure: Failure,
    done: bool,
}

impl RangedReader {
    /// Where this reader keeps its failure.
    pub(crate) fn failure(&self) -> Failure {
        self.failure.clone()
    }

    fn fail(&mut self, e: StoreError) -> io::Error {
        let text = crate::error_text(&e);
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.done = true;
        io::Error::other(text)
    }
}

impl Read for RangedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current[..n]);
                bytes::Buf::advance(&mut self.current, n);
                return Ok(n);
            }
            if buf.is_empty() || self.done {
                return Ok(0);
            }
            self.permit = None;
            let Some(next) = self.rx.blocking_recv() else {
                // Every range was handed over.
                self.done = true;
                return Ok(0);
            };
            match next.blocking_recv() {
                Ok(Ok((bytes, permit))) => {
                    self.current = bytes;
                    self.permit = Some(permit);
                }
                Ok(Err(e)) => return Err(self.fail(e)),
                Err(_) => return Err(self.fail(StoreError::ReadTask)),
            }
        }
    }
}

/// Open `key` as `at` says for reading in ranges; `name` is how errors name it (its
/// location). `size_hint`: its size from the listing or HEAD the caller already has (it sizes
/// the first request; the server's answer decides). `None` when the object (or that version of
/// it) does not exist.
pub(crate) async fn open(
    store: Arc<dyn ObjectStore>,
    key: &str,
    name: &str,
    at: &ReadAt,
    size_hint: Option<u64>,
) -> Result<Option<RangedReader>, StoreError> {
    let version = match at {
        ReadAt::Current => None,
        ReadAt::Version(v) => Some(v.clone()),
        ReadAt::NoVersion => return Ok(None),
    };
    let path = Path::from(key);
    let semaphore = Arc::new(Semaphore::new(RANGES_HELD));
    let first_permit = semaphore.clone().try_acquire_owned().map_err(|_| StoreError::ReadTask)?;
    // The first request: the first range, or (for an object said to be empty, where a range
    // would be refused) a HEAD. Its answer names the size and the ETag that pin the rest.
    let first_len = size_hint.unwrap_or(0).min(RANGE_SIZE);
    let (pin, first) = if first_len > 0 {
        let opts =
            GetOptions { range: Some(GetRange::Bounded(0..first_len)), version: version.clone(), ..Default::default() };
        match store.get_opts(&path, opts).await {
            Ok(r) => (Pin { version, etag: r.meta.e_tag.clone(), size: r.meta.size }, Some(r)),
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(StoreError::RangeRead { key: name.into(), start: 0, end: first_len, source }),
        }
    } else {
        let opts = GetOptions { head: true, version: version.clone(), ..Default::default() };
        match store.get_opts(&path, opts).await {
            Ok(r) => (Pin { version, etag: r.meta.e_tag.clone(), size: r.meta.size }, None),
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(StoreError::Op { op: "head", key: key.into(), source }),
        }
    };
    // The first range is what the first answer holds (the object may be larger than the
    // hint said); the rest follow it.
    let first_end = match &first {
        Some(r) => r.range.end,
        None => pin.size.min(RANGE_SIZE),
    };
    let mut ranges = Vec::new();
    if first_end > 0 {
        ranges.push(0..first_end);
    }
    ranges.extend(ranges_from(first_end, pin.size, RANGE_SIZE));
    if pin.version.is_none() && pin.etag.is_none() && ranges.len() > 1 {
        return Err(StoreError::Unpinned { key: name.into(), size: pin.size });
    }
    let (tx, rx) = mpsc::channel(RANGES_HELD);
    let failure: Failure = Arc::new(Mutex::new(None));
    let job = Job { store, path, name: name.into(), pin };
    tokio::spawn(schedule(job, ranges, first, first_permit, semaphore, tx));
    Ok(Some(RangedReader { rx, current: Bytes::new(), permit: None, failure, done: false }))
}

/// The byte ranges from `start` to the end of an object of `size` bytes, `step` each (the
/// last shorter).
fn ranges_from(start: u64, size: u64, step: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut start = start;
    while start < size {
        let end = start.saturating_add(step).min(size);
        out.push(start..end);
        start = end;
    }
    out
}

/// One object being read.
#[derive(Clone)]
struct Job {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// How errors name the object.
    name: String,
    pin: Pin,
}

/// Start a task per range, in order, each once a place is free, and hand the reader each
/// range's answer in order. Stops when the reader is gone.
async fn schedule(
    job: Job,
    ranges: Vec<Range<u64>>,
    first: Option<GetResult>,
    first_permit: OwnedSemaphorePermit,
    semaphore: Arc<Semaphore>,
    tx: mpsc::Sender<oneshot::Receiver<Piece>>,
) {
    let mut first = first;
    let mut first_permit = Some(first_permit);
    for range in ranges {
        let permit = match first_permit.take() {
            Some(p) => p,
            None => {
                tokio::select! {
                    p = semaphore.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = tx.closed() => return,
                }
            }
        };
        let (piece_tx, piece_rx) = oneshot::channel();
        if tx.send(piece_rx).await.is_err() {
            return;
        }
        let (job, answer) = (job.clone(), first.take());
        tokio::spawn(async move {
            let mut piece_tx = piece_tx;
            let got = tokio::select! {
                got = fetch(&job, range, answer) => got,
                // The reader is gone: stop downloading.
                _ = piece_tx.closed() => return,
            };
            let _ = piece_tx.send(got.map(|b| (b, permit)));
        });
    }
}

/// One range's bytes, exactly `range.end - range.start` of them, of the pinned object:
/// `answer` is the first request's answer (for the first range), read before asking again.
async fn fetch(job: &Job, range: Range<u64>, answer: Option<GetResult>) -> Result<Bytes, StoreError> {
    let want = range.end - range.start;
    let mut answer = answer;
    let mut last: Option<StoreError> = None;
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(250 * u64::from(attempt - 1))).await;
        }
        let r = match answer.take() {
            Some(r) => r,
            None => {
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(range.clone())),
                    version: job.pin.version.clone(),
                    if_match: job.pin.etag.clone(),
                    ..Default::default()
                };
                match job.store.get_opts(&job.path, opts).await {
                    Ok(r) => r,
                    Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                        return Err(changed(job, &range));
                    }
                    Err(source) if super::is_transient(&source) => {
                        last = Some(StoreError::RangeRead {
                            key: job.name.clone(),
                            start: range.start,
                            end: range.end,
                            source,
                        });
                        continue;
                    }
                    Err(source) => {
                        return Err(StoreError::RangeRead {
                            key: job.name.clone(),
                            start: range.start,
                            end: range.end,
                            source,
                        })
                    }
                }
            }
        };
        // Another object answered than the one pinned (an ETag the server did not check, or a
        // size that differs): the same as a refused precondition.
        if r.meta.size != job.pin.size || (job.pin.etag.is_some() && r.meta.e_tag != job.pin.etag) {
            return Err(changed(job, &range));
        }
        match r.bytes().await {
            Ok(b) if b.len() as u64 == want => return Ok(b),
            Ok(b) => {
                last = Some(StoreError::RangeShort {
                    key: job.name.clone(),
                    start: range.start,
                    end: range.end,
                    got: b.len() as u64,
                    attempts: attempt,
                })
            }
            Err(source) => {
                last = Some(StoreError::RangeRead { key: job.name.clone(), start: range.start, end: range.end, source })
            }
        }
    }
    Err(last.unwrap_or(StoreError::ReadTask))
}

/// The error for a pinned range the server would not (or could not) serve.
fn changed(job: &Job, range: &Range<u64>) -> StoreError {
    StoreError::ChangedWhileRead {
        key: job.name.clone(),
        start: range.start,
        end: range.end,
        pinned: job.pin.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    #[test]
    fn ranges_cover_the_object_once_in_order() {
        assert!(ranges_from(0, 0, 8).is_empty());
        assert_eq!(ranges_from(0, 8, 8), vec![0..8]);
        assert_eq!(ranges_from(3, 17, 8), vec![3..11, 11..17]);
        assert_eq!(ranges_from(0, u64::MAX, u64::MAX / 2 + 1), vec![0..u64::MAX / 2 + 1, u64::MAX / 2 + 1..u64::MAX]);
    }

    /// Every byte of a multi-range object, in order, through the blocking reader; an empty
    /// object (a HEAD, no range) and a missing one.
    #[test]
    fn the_reader_yields_the_object_exactly() {
        let rt = runtime();
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for n in [0usize, 1, (RANGE_SIZE as usize) * 3 + 12_345] {
            let bytes = data(n);
            rt.block_on(mem.put(&Path::from("k"), PutPayload::from(bytes.clone()))).unwrap();
            // A hint below the size (an object replaced since it was listed) is fine; above
            // an empty object, the first range cannot be served (a read error).
            let hints = if n == 0 { vec![Some(0), None] } else { vec![Some(n as u64), None, Some(1)] };
            for hint in hints {
                let r = rt.block_on(open(mem.clone(), "k", "mem/k", &ReadAt::Current, hint)).unwrap().unwrap();
                let got = rt
                    .block_on(rt.spawn_blocking(move || {
                        let mut r = r;
                        let mut v = Vec::new();
                        r.read_to_end(&mut v).map(|_| v)
                    }))
                    .unwrap()
                    .unwrap();
                assert!(got == bytes, "{n} bytes, hint {hint:?}: read {} bytes", got.len());
            }
        }
        assert!(rt.block_on(open(mem.clone(), "missing", "mem/missing", &ReadAt::Current, Some(5))).unwrap().is_none());
        assert!(rt.block_on(open(mem, "k", "mem/k", &ReadAt::NoVersion, Some(5))).unwrap().is_none());
    }

    /// The object replaced after the first range was read: the next range is refused by its
    /// ETag, and the reader fails with `ChangedWhileRead` instead of yielding other bytes.
    #[test]
    fn an_object_replaced_while_read_is_an_error_not_a_mix() {
        let rt = runtime();
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let n = (RANGE_SIZE as usize) * (RANGES_HELD + 3);
        let original = data(n);
        rt.block_on(mem.put(&Path::from("k"), PutPayload::from(original.clone()))).unwrap();
        let mut r = rt.block_on(open(mem.clone(), "k", "mem/k", &ReadAt::Current, Some(n as u64))).unwrap().unwrap();
        let failure = r.failure();
        let mut replaced = original.clone();
        replaced[n - 1] ^= 1;
        let (m2, rp) = (mem.clone(), replaced);
        let out = rt
            .block_on(rt.spawn_blocking(move || {
                let mut v = vec![0u8; RANGE_SIZE as usize];
                r.read_exact(&mut v).unwrap();
                // Ranges already fetched stay the first object's; the later ones are refused.
                tokio::runtime::Handle::current().block_on(m2.put(&Path::from("k"), PutPayload::from(rp))).unwrap();
                let mut rest = Vec::new();
                let res = r.read_to_end(&mut rest);
                (v, rest, res.is_err())
            }))
            .unwrap();
        assert!(out.2, "the read did not fail");
        let read: Vec<u8> = out.0.into_iter().chain(out.1).collect();
        assert!(original.starts_with(&read), "bytes of the second object were read");
        match take_failure(&failure) {
            Some(StoreError::ChangedWhileRead { key, .. }) => assert_eq!(key, "mem/k"),
            other => panic!("{other:?}"),
        }
    }
}
