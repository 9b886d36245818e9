//! Reading a bundle from object storage as it downloads: a blocking [`Read`] fed by
//! concurrent ranged GETs, for the verifier (`verify --store s3://…`, `show`, and what verifies
//! before `extract`), with no local copy.
//!
//! **Ranges.** The object is read in ranges that start at [`FIRST_RANGE`] and double up to
//! [`MAX_RANGE`] (8, 16, 32, 64, 64… MiB): a 285 MB bundle is 7 requests. The first range is
//! requested when the reader is opened (so a missing object is `None`, as before, and its
//! answer names the size and the ETag of what is read); the others are fetched by tasks on the
//! runtime, at most [`RANGES_IN_FLIGHT`] ranges alive at once (the one being read and those
//! ahead of it), and handed to the reader in file order. Each range *streams*: its task passes
//! its body on as it arrives, with at most [`RANGE_BUFFER`] bytes not yet read by the verifier
//! (then its connection waits), so memory is bounded by `RANGES_IN_FLIGHT × RANGE_BUFFER`
//! (32 MiB) per bundle, whatever the range and bundle sizes. Why growing ranges and not 8 MiB
//! ones throughout: each range is a request, and a server may pay per request for the whole
//! object (moto reads the whole value to serve any range: 36 ranges of 8 MiB made a verify of
//! a 285 MB bundle take 1.9× the time of main's one GET to a temporary file,
//! docs/performance.md); the first range stays small so that the verifier starts at once.
//!
//! **One version, never a mix.** Every ranged GET after the first answer is pinned to the
//! bytes that answer came from: to the version the verifier chose (`?versionId=`,
//! [`ReadAt::Version`], in a versioned bucket) and to the first answer's ETag (`If-Match`), and
//! every answer's total size (`Content-Range`) must be the first one's. An object overwritten
//! (or a version deleted) while it is read is then refused by the server, and that is an error
//! saying so ([`StoreError::ChangedWhileRead`]): bytes of two versions are never verified as
//! one bundle. A server that names neither a version nor an ETag cannot be read this way
//! beyond one range ([`StoreError::Unpinned`]).
//!
//! **Faults.** `object_store` retries each request (5xx, timeouts, resets) and, with an ETag,
//! resumes a body cut off mid-way. What it cannot see is a body that ends early *cleanly* (a
//! proxy that shortened it): every range's length is checked, and a range that ends short or
//! fails is asked again for the rest (pinned as above), [`ATTEMPTS`] times in all. A range that
//! still fails is an error naming the key and the byte range ([`StoreError::RangeRead`],
//! [`StoreError::RangeShort`]) — a read failure, never a finding about the bundle: the
//! verifier's findings are discarded when the stream failed.
//!
//! **Nothing left behind.** There is no temporary file. Dropping the reader (the verification
//! ended, failed, or the process is interrupted) closes the channels the tasks send into: the
//! scheduler stops, and every range task stops at its next send.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt as _;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, ObjectStore};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::versions::ReadAt;
use super::StoreError;

/// The first range (small: the verifier starts as soon as it arrives).
pub(crate) const FIRST_RANGE: u64 = 8 << 20;
/// The largest range; each range is twice the one before, up to this.
pub(crate) const MAX_RANGE: u64 = 64 << 20;
/// Ranges alive at once per bundle: the one being read and those fetched ahead of it.
pub(crate) const RANGES_IN_FLIGHT: usize = 4;
/// Bytes of one range held for the reader (beyond, its download waits).
pub(crate) const RANGE_BUFFER: usize = 8 << 20;
/// Requests for one range (after `object_store`'s own retries of each request) before its
/// failure is reported.
pub(crate) const ATTEMPTS: u32 = 3;

/// A piece of a range's body, with the permit that counts its bytes until the reader is past
/// them.
type Chunk = Result<(Bytes, OwnedSemaphorePermit), StoreError>;

/// One range as the reader takes it: its body's pieces in order (the channel closes after
/// exactly the range's bytes, or an error), and its place among the ranges in flight.
struct RangeFeed {
    chunks: mpsc::UnboundedReceiver<Chunk>,
    _slot: OwnedSemaphorePermit,
}

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
    ranges: mpsc::Receiver<RangeFeed>,
    head: Option<RangeFeed>,
    current: Bytes,
    /// Frees the current piece's bytes when the reader moves past it.
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
        self.head = None;
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
            let head = match &mut self.head {
                Some(h) => h,
                None => match self.ranges.blocking_recv() {
                    Some(h) => self.head.insert(h),
                    None => {
                        // Every range was handed over and read.
                        self.done = true;
                        return Ok(0);
                    }
                },
            };
            match head.chunks.blocking_recv() {
                Some(Ok((bytes, permit))) => {
                    self.current = bytes;
                    self.permit = Some(permit);
                }
                Some(Err(e)) => return Err(self.fail(e)),
                // This range is complete (its task checked its length): the next one.
                None => self.head = None,
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
    // The first request: the first range, or (for an object said to be empty, where a range
    // would be refused) a HEAD. Its answer names the size and the ETag that pin the rest.
    let first_len = size_hint.unwrap_or(0).min(FIRST_RANGE);
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
        None => pin.size.min(FIRST_RANGE),
    };
    let ranges = plan(first_end, pin.size);
    if pin.version.is_none() && pin.etag.is_none() && first_end < pin.size {
        return Err(StoreError::Unpinned { key: name.into(), size: pin.size });
    }
    let (tx, rx) = mpsc::channel(RANGES_IN_FLIGHT);
    let job = Job { store, path, name: name.into(), pin };
    tokio::spawn(schedule(job, ranges, first, tx));
    Ok(Some(RangedReader {
        ranges: rx,
        head: None,
        current: Bytes::new(),
        permit: None,
        failure: Arc::new(Mutex::new(None)),
        done: false,
    }))
}

/// The ranges of an object of `size` bytes whose first range ends at `first_end`: each next
/// range twice the one before, at most [`MAX_RANGE`], the last shorter. Lazy: the size comes
/// from the server, and a huge one must not become a huge list.
fn plan(first_end: u64, size: u64) -> Plan {
    Plan { start: 0, end_of_first: first_end.min(size), step: first_end.max(1), size }
}

/// The ranges [`plan`] yields.
struct Plan {
    start: u64,
    end_of_first: u64,
    step: u64,
    size: u64,
}

impl Iterator for Plan {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        if self.start >= self.size {
            return None;
        }
        let end = if self.start == 0 && self.end_of_first > 0 {
            self.end_of_first
        } else {
            self.step = self.step.saturating_mul(2).min(MAX_RANGE);
            self.start.saturating_add(self.step).min(self.size)
        };
        let r = self.start..end;
        self.start = end;
        Some(r)
    }
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

/// Start a task per range, in order, each once a place among the ranges in flight is free,
/// and hand the reader each range's feed in order. Stops when the reader is gone.
async fn schedule(job: Job, ranges: Plan, first: Option<GetResult>, tx: mpsc::Sender<RangeFeed>) {
    let slots = Arc::new(Semaphore::new(RANGES_IN_FLIGHT));
    let mut first = first;
    for range in ranges {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            _ = tx.closed() => return,
        };
        let (chunk_tx, chunks) = mpsc::unbounded_channel();
        if tx.send(RangeFeed { chunks, _slot: slot }).await.is_err() {
            return;
        }
        let (job, answer) = (job.clone(), first.take());
        tokio::spawn(async move { stream_range(&job, range, answer, chunk_tx).await });
    }
}

/// Pass exactly the bytes of `range` of the pinned object on to `tx`, in order, holding at
/// most [`RANGE_BUFFER`] of them unread; `answer` is the first request's answer (for the
/// first range). A body that fails or ends early is asked again for the rest. Ends with an
/// error sent, or with the channel closed after the last byte.
async fn stream_range(job: &Job, range: Range<u64>, answer: Option<GetResult>, tx: mpsc::UnboundedSender<Chunk>) {
    let budget = Arc::new(Semaphore::new(RANGE_BUFFER));
    let mut answer = answer;
    let mut pos = range.start;
    let mut last: Option<StoreError> = None;
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(250 * u64::from(attempt - 1))).await;
        }
        let r = match answer.take() {
            Some(r) => r,
            None => {
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(pos..range.end)),
                    version: job.pin.version.clone(),
                    if_match: job.pin.etag.clone(),
                    ..Default::default()
                };
                match job.store.get_opts(&job.path, opts).await {
                    Ok(r) => r,
                    Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                        let _ = tx.send(Err(changed(job, &range)));
                        return;
                    }
                    Err(source) => {
                        let transient = super::is_transient(&source);
                        last = Some(read_error(job, &range, source));
                        if transient {
                            continue;
                        }
                        break;
                    }
                }
            }
        };
        // Another object answered than the one pinned (an ETag the server did not check, or a
        // size that differs): the same as a refused precondition.
        if r.meta.size != job.pin.size || (job.pin.etag.is_some() && r.meta.e_tag != job.pin.etag) {
            let _ = tx.send(Err(changed(job, &range)));
            return;
        }
        let mut body = r.into_stream();
        loop {
            let piece = tokio::select! {
                p = body.next() => p,
                // The reader is gone: stop downloading.
                _ = tx.closed() => return,
            };
            match piece {
                Some(Ok(b)) => {
                    // Never more than the range (object_store checked the answer's range).
                    let left = usize::try_from(range.end - pos).unwrap_or(usize::MAX);
                    let b = if b.len() > left { b.slice(..left) } else { b };
                    if b.is_empty() {
                        continue;
                    }
                    let n = u32::try_from(b.len().min(RANGE_BUFFER)).unwrap_or(u32::MAX);
                    let permit = tokio::select! {
                        p = budget.clone().acquire_many_owned(n) => match p {
                            Ok(p) => p,
                            Err(_) => return,
                        },
                        _ = tx.closed() => return,
                    };
                    pos += b.len() as u64;
                    if tx.send(Ok((b, permit))).is_err() {
                        return;
                    }
                }
                Some(Err(source)) => {
                    last = Some(read_error(job, &range, source));
                    break;
                }
                None => {
                    last = Some(StoreError::RangeShort {
                        key: job.name.clone(),
                        start: range.start,
                        end: range.end,
                        got: pos - range.start,
                        attempts: attempt,
                    });
                    break;
                }
            }
            if pos == range.end {
                return;
            }
        }
    }
    let _ = tx.send(Err(last.unwrap_or(StoreError::ReadTask)));
}

fn read_error(job: &Job, range: &Range<u64>, source: object_store::Error) -> StoreError {
    StoreError::RangeRead { key: job.name.clone(), start: range.start, end: range.end, source }
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
    fn ranges_cover_the_object_once_in_order_growing_to_the_largest() {
        const M: u64 = 1 << 20;
        let p = |first, size| plan(first, size).collect::<Vec<_>>();
        assert!(p(0, 0).is_empty());
        assert_eq!(p(8, 8), vec![0..8]);
        assert_eq!(p(3, 17), vec![0..3, 3..9, 9..17]);
        assert_eq!(
            p(8 * M, 300 * M),
            vec![
                0..8 * M,
                8 * M..24 * M,
                24 * M..56 * M,
                56 * M..120 * M,
                120 * M..184 * M,
                184 * M..248 * M,
                248 * M..300 * M
            ]
        );
        // A size the server claims is never a list in memory; the ranges still tile it.
        let mut huge = plan(FIRST_RANGE, u64::MAX);
        assert_eq!(huge.next(), Some(0..FIRST_RANGE));
        let mut last = FIRST_RANGE;
        for r in huge.by_ref().take(10_000) {
            assert!(r.start == last && r.end - r.start <= MAX_RANGE);
            last = r.end;
        }
        assert_eq!(huge.start, last);
    }

    /// Every byte of a multi-range object, in order, through the blocking reader; an empty
    /// object (a HEAD, no range) and a missing one.
    #[test]
    fn the_reader_yields_the_object_exactly() {
        let rt = runtime();
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for n in [0usize, 1, (FIRST_RANGE as usize) * 7 + 12_345] {
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
        let n = (MAX_RANGE as usize) * 3;
        let original = data(n);
        rt.block_on(mem.put(&Path::from("k"), PutPayload::from(original.clone()))).unwrap();
        let mut r = rt.block_on(open(mem.clone(), "k", "mem/k", &ReadAt::Current, Some(n as u64))).unwrap().unwrap();
        let failure = r.failure();
        let mut replaced = original.clone();
        replaced[n - 1] ^= 1;
        let (m2, rp) = (mem.clone(), replaced);
        let out = rt
            .block_on(rt.spawn_blocking(move || {
                let mut v = vec![0u8; FIRST_RANGE as usize];
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
