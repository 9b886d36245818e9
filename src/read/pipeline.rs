//! A zstd decoder that decompresses on a background thread, so that reading a bundle uses
//! two cores, and that computes the bundle digest (SHA-256 of the compressed bytes) on that
//! thread too.
//!
//! Thread layout (see docs/performance.md, "The verify pipeline"):
//!
//! * the caller's thread reads the compressed source in `IN_CHUNK` reads straight into chunk
//!   buffers (the source need not be `Send`) and queues them for the worker; it then takes
//!   the decompressed chunks back and does its own work on them (the archive reader
//!   SHA-256s every member);
//! * the worker (`custody-unzstd`) takes each compressed chunk, feeds it to SHA-256 *before*
//!   the decoder sees any byte of it (unless the caller already did, see below), then
//!   decompresses from that same buffer into `OUT_CHUNK` output chunks. The digest is
//!   therefore over exactly the bytes that were decoded (no second read of the file, no window
//!   between hashing and decoding: a queued chunk is never written again), and no byte is
//!   hashed twice.
//! * chunks are hashed strictly in stream order, by whichever thread is free: when the caller
//!   would wait for output (the worker is the slower side), it takes the next unhashed queued
//!   chunk, hashes it and puts it back marked hashed; meanwhile that chunk is `busy` and the
//!   worker waits for it rather than overtake it, and `State::hashing` keeps the two threads
//!   from hashing at once. The caller does not help while the worker has recently found the
//!   output queue full (`HELP_AFTER`): then the worker has time to spare and hashes for free.
//!
//! Decompression (~0.55 s/GiB of output) plus the digest of the compressed bytes (~0.2 s/GiB
//! at a 3.5:1 ratio) on the worker roughly balance the member hashing (~0.75 s/GiB) on the
//! caller's thread; the helping evens out the rest (e.g. incompressible members, where the
//! worker hashes as many bytes as the caller).
//!
//! [`Decoder`] is a drop-in [`Read`] (and [`BufRead`]) for `zstd::stream::read::Decoder`, with
//! the same limits (`window_log_max`). When the caller is done, [`Decoder::finish`] stops the
//! worker, hashes whatever compressed bytes the worker did not take (queued chunks, then the
//! rest of the source, in file order) and returns the digest and length of the *whole* input,
//! and how many compressed bytes followed the frame.
//!
//! Memory is bounded: at most `IN_DEPTH` input chunks (+1 being decoded, +1 being filled) and
//! `OUT_DEPTH` output chunks (+1 being filled, +1 being read) exist at once, about 7.5 MiB.
//!
//! Deadlock freedom: the caller only waits when no output is ready *and* the input queue is
//! full or finished; in both cases the worker can make progress (it never waits for input
//! while the input queue is full, and never waits for room while output is queued, which
//! the caller then takes). Decompression errors reach the caller in stream order, after all
//! the data decoded before them; a panic on the worker (a bug, not an input) is reported as
//! an error instead of leaving the caller waiting. Dropping the decoder stops and joins the
//! worker.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::digest::{Hasher, Sha256};

/// Decompressed bytes per chunk handed to the caller.
const OUT_CHUNK: usize = 1 << 20;
/// Decompressed chunks queued (plus one being filled and one being read).
const OUT_DEPTH: usize = 4;
/// Compressed bytes per chunk handed to the worker (one `read` from the source each, and small
/// enough to still be in the worker's L2 cache when the decoder reads what SHA-256 just read).
const IN_CHUNK: usize = 256 << 10;
/// Compressed chunks queued.
const IN_DEPTH: usize = 4;
/// The caller helps hash only when the worker has not found the output queue full (had time to
/// spare) for this many output chunks.
const HELP_AFTER: u64 = 8;

/// SHA-256 and length of every compressed byte a [`Decoder`] read from its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputDigest {
    /// SHA-256 of the bytes, in order.
    pub sha256: Sha256,
    /// How many.
    pub bytes: u64,
}

impl Default for InputDigest {
    /// The digest of no bytes.
    fn default() -> Self {
        InputDigest { sha256: Hasher::new().finish(), bytes: 0 }
    }
}

/// The SHA-256 and length of `prefix` followed by everything `rest` yields until its end (or
/// its first error other than `Interrupted`: the digest then covers the bytes read before it).
pub fn digest_of<R: Read>(prefix: &[u8], mut rest: R) -> InputDigest {
    let mut h = Hasher::new();
    h.update(prefix);
    let n = drain_into(&mut h, &mut rest, &mut vec![0u8; IN_CHUNK]);
    InputDigest { sha256: h.finish(), bytes: prefix.len() as u64 + n }
}

/// Hash everything `r` yields into `h` (stopping at its end or first error); the byte count.
fn drain_into<R: Read>(h: &mut Hasher, r: &mut R, buf: &mut [u8]) -> u64 {
    let mut n = 0u64;
    loop {
        match r.read(buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                crate::progress::add_global_bytes(k as u64);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    n
}

/// What [`Decoder::finish`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEnd {
    /// The whole input: every byte read from the source, including any after the frame.
    pub digest: InputDigest,
    /// When the decompressed stream ended cleanly: how many compressed bytes follow the end
    /// of the (single) frame. 0 when it did not end cleanly (an error, or the caller stopped).
    pub trailing: u64,
}

/// A compressed chunk in the input queue.
struct InChunk {
    data: Vec<u8>,
    /// Already fed to the input digest (by the caller, while it had nothing else to do).
    hashed: bool,
    /// `data` is out with the caller, being hashed; the worker must not take this chunk yet.
    busy: bool,
}

#[derive(Default)]
struct State {
    input: VecDeque<InChunk>,
    input_eof: bool,
    /// A chunk is being hashed outside the lock (by either thread). Chunks are hashed strictly
    /// in stream order, so nobody may start on the next unhashed chunk meanwhile.
    hashing: bool,
    output: VecDeque<io::Result<Vec<u8>>>,
    worker_done: bool,
    /// Output chunks the worker has queued so far.
    outputs: u64,
    /// `outputs` when the worker last found the output queue full (it had time to spare).
    last_full: Option<u64>,
    /// Compressed bytes the worker's decoder left unread after the (single) frame ended.
    leftover: u64,
    closed: bool,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
}

/// The running digest of the compressed chunks the worker has taken.
#[derive(Default)]
struct Taken {
    hasher: Hasher,
    bytes: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Only the worker updates this while it runs (uncontended); the caller reads it after
    /// joining the worker.
    taken: Mutex<Taken>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means the other side panicked; the state is still consistent
        // enough to shut down (every update is a single push or flag).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(g).unwrap_or_else(|p| p.into_inner())
    }
    fn taken(&self) -> MutexGuard<'_, Taken> {
        self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The worker's view of the compressed input: chunks from the caller, each hashed (if the
/// caller has not hashed it already) as it is taken, before the decoder reads from it.
struct ChunkReader {
    shared: Arc<Shared>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.cur.len() {
            let hash_it = {
                let mut st = self.shared.lock();
                loop {
                    if st.closed {
                        return Ok(&[]);
                    }
                    // The front chunk, unless the caller is hashing it (then wait for it).
                    let ready = st.input.front().map(|c| !c.busy && (c.hashed || !st.hashing));
                    match ready {
                        Some(true) => {}
                        Some(false) => {
                            st = self.shared.wait(st);
                            continue;
                        }
                        None if st.input_eof => return Ok(&[]),
                        None => {
                            st = self.shared.wait(st);
                            continue;
                        }
                    }
                    let Some(c) = st.input.pop_front() else { continue };
                    let old = std::mem::replace(&mut self.cur, c.data);
                    if old.capacity() > 0 {
                        st.spare_in.push(old);
                    }
                    self.pos = 0;
                    if !c.hashed {
                        st.hashing = true;
                    }
                    self.shared.changed.notify_all();
                    break !c.hashed;
                }
            };
            if hash_it {
                // The bundle digest: this exact buffer, before the decoder sees a byte of it.
                {
                    let mut t = self.shared.taken();
                    t.hasher.update(&self.cur);
                    t.bytes += self.cur.len() as u64;
                }
                self.shared.lock().hashing = false;
                self.shared.changed.notify_all();
            }
        }
        Ok(&self.cur[self.pos..])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

type Zstd = zstd::stream::read::Decoder<'static, ChunkReader>;

/// A zstd decoder running on a background thread, which also hashes the compressed input
/// there. See the module documentation.
pub struct Decoder<R: Read> {
    source: R,
    shared: Arc<Shared>,
    window_log_max: Option<u32>,
    single_frame: bool,
    started: bool,
    worker: Option<JoinHandle<()>>,
    input_eof: bool,
    /// No more decompressed data will be returned.
    finished: bool,
    /// The decompressed stream ended without an error.
    clean: bool,
    cur: Vec<u8>,
    pos: usize,
}

impl<R: Read> Decoder<R> {
    /// A decoder over the compressed `source`. Nothing runs until the first read.
    pub fn new(source: R) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            taken: Mutex::new(Taken::default()),
        });
        Decoder {
            source,
            shared,
            window_log_max: None,
            single_frame: false,
            started: false,
            worker: None,
            input_eof: false,
            finished: false,
            clean: false,
            cur: Vec::new(),
            pos: 0,
        }
    }

    /// Stop at the end of the first zstd frame (as `zstd::stream::read::Decoder::single_frame`);
    /// [`Decoder::finish`] then counts whatever follows. Set before the first read.
    pub fn single_frame(mut self) -> Self {
        debug_assert!(!self.started, "single_frame set after decoding started");
        self.single_frame = true;
        self
    }

    /// Cap the zstd window (as `zstd::stream::read::Decoder::window_log_max`). Set before the
    /// first read; an invalid value makes the first read fail.
    pub fn window_log_max(mut self, log: u32) -> Self {
        debug_assert!(!self.started, "window_log_max set after decoding started");
        self.window_log_max = Some(log);
        self
    }

    /// Stop the worker and account for the whole input: the digest and length of every
    /// compressed byte of the source (what the worker hashed, then the chunks it did not take,
    /// then the rest of the source, read to its end), and the compressed bytes after the frame.
    pub fn finish(mut self) -> InputEnd {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(h) = self.worker.take() {
            // The worker reports its own panics as errors; its digest is consistent either way
            // (a chunk is hashed right after it is taken, before anything can fail).
            let _ = h.join();
        }
        self.finished = true;
        let Taken { mut hasher, bytes } = std::mem::take(&mut *self.shared.taken());
        let (queued, unhashed, leftover, mut buf) = {
            let mut st = self.shared.lock();
            // Queued chunks follow everything hashed so far: a hashed prefix, then the rest.
            let (mut queued, mut unhashed) = (0u64, 0u64);
            for c in st.input.drain(..) {
                if !c.hashed {
                    hasher.update(&c.data);
                    unhashed += c.data.len() as u64;
                }
                queued += c.data.len() as u64;
            }
            (queued, unhashed, st.leftover, st.spare_in.pop().unwrap_or_default())
        };
        buf.resize(IN_CHUNK, 0);
        let rest = drain_into(&mut hasher, &mut self.source, &mut buf);
        InputEnd {
            digest: InputDigest { sha256: hasher.finish(), bytes: bytes + unhashed + rest },
            trailing: if self.clean { leftover + queued + rest } else { 0 },
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let chunks = ChunkReader { shared: self.shared.clone(), cur: Vec::new(), pos: 0 };
        let mut dec = zstd::stream::read::Decoder::with_buffer(chunks)?;
        if let Some(log) = self.window_log_max {
            dec.window_log_max(log)?;
        }
        let dec = if self.single_frame { dec.single_frame() } else { dec };
        let shared = self.shared.clone();
        let h = std::thread::Builder::new().name("custody-unzstd".into()).spawn(move || {
            let mut dec = dec;
            if catch_unwind(AssertUnwindSafe(|| work(&mut dec, &shared))).is_err() {
                let mut st = shared.lock();
                st.output.push_back(Err(io::Error::other("internal error: the decompression thread panicked")));
                st.worker_done = true;
                shared.changed.notify_all();
            }
        })?;
        self.worker = Some(h);
        Ok(())
    }

    /// Read one compressed chunk from the source into the input queue (directly into the
    /// chunk: one `read` call of `IN_CHUNK` bytes when the source allows).
    fn feed(&mut self) -> io::Result<()> {
        let mut chunk = self.shared.lock().spare_in.pop().unwrap_or_default();
        chunk.resize(IN_CHUNK, 0);
        let mut n = 0;
        let mut failed = None;
        while n < IN_CHUNK {
            match self.source.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        chunk.truncate(n);
        crate::progress::add_global_bytes(n as u64);
        let mut st = self.shared.lock();
        if n > 0 {
            // Queued even before an error, so that the digest covers every byte read.
            st.input.push_back(InChunk { data: chunk, hashed: false, busy: false });
        } else if failed.is_none() {
            self.input_eof = true;
            st.input_eof = true;
        }
        self.shared.changed.notify_all();
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// If nobody is hashing, the worker is the slower side (it has not found the output queue
    /// full for `HELP_AFTER` chunks) and a queued chunk is not hashed yet, take the data of the
    /// first such chunk: the next one in stream order (those before it are hashed, and so is
    /// the worker's current chunk when `hashing` is clear). It stays in the queue, marked busy.
    fn help_hash(&self, st: &mut State) -> Option<Vec<u8>> {
        if st.hashing || st.last_full.is_some_and(|at| st.outputs < at + HELP_AFTER) {
            return None;
        }
        let c = st.input.iter_mut().find(|c| !c.hashed)?;
        c.busy = true;
        st.hashing = true;
        Some(std::mem::take(&mut c.data))
    }

    /// Hash `data` (taken by [`Decoder::help_hash`]) into the input digest and put it back.
    fn hash_for_worker(&self, data: Vec<u8>) {
        {
            let mut t = self.shared.taken();
            t.hasher.update(&data);
            t.bytes += data.len() as u64;
        }
        let mut st = self.shared.lock();
        // The worker never takes a busy chunk, so it is still queued.
        if let Some(c) = st.input.iter_mut().find(|c| c.busy) {
            c.data = data;
            c.busy = false;
            c.hashed = true;
        }
        st.hashing = false;
        self.shared.changed.notify_all();
    }

    /// The next decompressed chunk, or `None` at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let room = !self.input_eof && self.shared.lock().input.len() < IN_DEPTH;
            if room {
                self.feed()?;
                continue;
            }
            let mut st = self.shared.lock();
            loop {
                if let Some(r) = st.output.pop_front() {
                    self.shared.changed.notify_all();
                    return r.map(Some);
                }
                if st.worker_done {
                    return Ok(None);
                }
                if !self.input_eof && st.input.len() < IN_DEPTH {
                    break;
                }
                // Nothing to do but wait for the worker: take the next chunk's hashing off it.
                if let Some(next) = self.help_hash(&mut st) {
                    drop(st);
                    self.hash_for_worker(next);
                    st = self.shared.lock();
                    continue;
                }
                st = self.shared.wait(st);
            }
        }
    }
}

impl<R: Read> BufRead for Decoder<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.cur.len() {
            if self.finished {
                return Ok(&[]);
            }
            match self.start().and_then(|()| self.next_chunk()) {
                Ok(Some(c)) => {
                    let old = std::mem::replace(&mut self.cur, c);
                    if old.capacity() > 0 {
                        self.shared.lock().spare_out.push(old);
                    }
                    self.pos = 0;
                }
                Ok(None) => {
                    self.finished = true;
                    self.clean = true;
                }
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            }
        }
        Ok(&self.cur[self.pos..])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> Drop for Decoder<R> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

fn work(dec: &mut Zstd, shared: &Shared) {
    loop {
        let mut buf = shared.lock().spare_out.pop().unwrap_or_default();
        buf.resize(OUT_CHUNK, 0);
        let mut filled = 0;
        let outcome = loop {
            match dec.read(&mut buf[filled..]) {
                Ok(0) => break Ok(true),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        buf.truncate(filled);
        let mut st = shared.lock();
        if st.output.len() >= OUT_DEPTH {
            st.last_full = Some(st.outputs);
        }
        while st.output.len() >= OUT_DEPTH && !st.closed {
            st = shared.wait(st);
        }
        if st.closed {
            return;
        }
        if filled > 0 {
            st.output.push_back(Ok(buf));
            st.outputs += 1;
        }
        let end = match outcome {
            Ok(false) => false,
            Ok(true) => true,
            Err(e) => {
                st.output.push_back(Err(e));
                true
            }
        };
        if end {
            let r = dec.get_ref();
            st.leftover = r.cur.len().saturating_sub(r.pos) as u64;
            st.worker_done = true;
        }
        shared.changed.notify_all();
        if end {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use crate::test_readers::Trickle;

    /// With a content checksum, as bundles are written, so any corruption is detected.
    fn compress(data: &[u8]) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_checksum(true).unwrap();
        std::io::Write::write_all(&mut enc, data).unwrap();
        enc.finish().unwrap()
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7919) % 251) as u8 ^ (i >> 13) as u8).collect()
    }

    #[test]
    fn yields_exactly_what_the_plain_decoder_yields_across_many_chunks() {
        let data = sample(9 * OUT_CHUNK + 12345);
        let z = compress(&data);
        let mut d = Decoder::new(Cursor::new(z)).window_log_max(27);
        let mut out = Vec::new();
        // Odd read sizes, as the tar reader does (512-byte headers, then large chunks).
        let mut buf = vec![0u8; 777];
        loop {
            let n = d.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out.len(), data.len());
        assert!(out == data);
    }

    #[test]
    fn reads_concatenated_frames_like_the_plain_decoder() {
        let mut z = compress(b"first frame ");
        z.extend(compress(b"second frame"));
        let mut out = String::new();
        Decoder::new(Cursor::new(z)).read_to_string(&mut out).unwrap();
        assert_eq!(out, "first frame second frame");
    }

    #[test]
    fn reports_corruption_after_the_good_data() {
        let data = sample(3 * OUT_CHUNK);
        let mut z = compress(&data);
        let mid = z.len() / 2;
        for b in &mut z[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let mut d = Decoder::new(Cursor::new(z));
        let mut out = Vec::new();
        let err = d.read_to_end(&mut out).unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::Interrupted);
        assert!(out.len() < data.len());
    }

    #[test]
    fn reports_truncation_as_an_error() {
        let z = compress(&sample(2 * OUT_CHUNK));
        let cut = z[..z.len() - 10].to_vec();
        let mut out = Vec::new();
        let r = Decoder::new(Cursor::new(cut)).read_to_end(&mut out);
        assert!(r.is_err(), "a truncated frame must not read as a clean end");
    }

    #[test]
    fn enforces_the_window_limit() {
        // A frame that needs a 2^24 window, read with a 2^20 cap.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.window_log(24).unwrap();
        enc.long_distance_matching(true).unwrap();
        let data = sample(20 << 20);
        std::io::Write::write_all(&mut enc, &data).unwrap();
        let z = enc.finish().unwrap();
        let mut d = Decoder::new(Cursor::new(z)).window_log_max(20);
        let mut out = Vec::new();
        assert!(d.read_to_end(&mut out).is_err());
    }

    #[test]
    fn dropping_mid_stream_stops_the_worker() {
        let z = compress(&sample(16 * OUT_CHUNK));
        let mut d = Decoder::new(Cursor::new(z));
        let mut buf = [0u8; 10];
        d.read_exact(&mut buf).unwrap();
        drop(d); // must not hang
    }

    #[test]
    fn source_errors_reach_the_caller() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "denied"))
            }
        }
        let mut d = Decoder::new(Failing);
        let e = d.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    /// SHA-256 by `sha2` directly, independent of the pipeline's hasher.
    fn sha(data: &[u8]) -> InputDigest {
        use sha2::Digest as _;
        InputDigest { sha256: Sha256(sha2::Sha256::digest(data).into()), bytes: data.len() as u64 }
    }

    /// Incompressible bytes (xorshift), so that the compressed stream spans many input chunks.
    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// A big bundle-like stream: compressible and incompressible parts, > 10 input chunks.
    fn big_stream() -> (Vec<u8>, Vec<u8>) {
        let mut data = sample(3 * OUT_CHUNK);
        data.extend(noise(3 * OUT_CHUNK, 0x9e37_79b9_7f4a_7c15));
        let z = compress(&data);
        assert!(z.len() > 10 * IN_CHUNK, "the test needs many input chunks");
        (data, z)
    }

    #[test]
    fn the_input_digest_is_sha256_of_every_source_byte_however_far_the_caller_read() {
        let (data, z) = big_stream();
        let want = sha(&z);
        // Read to the end, through a source that returns odd short reads.
        let src = Trickle::new(z.clone(), 10_007);
        let mut d = Decoder::new(src).window_log_max(27).single_frame();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert!(out == data);
        assert_eq!(d.finish(), InputEnd { digest: want, trailing: 0 });
        // Stopped early (as the archive reader does after a problem): the rest is still hashed.
        for stop in [0usize, 1, 512, OUT_CHUNK + 3, 4 * OUT_CHUNK] {
            let mut d = Decoder::new(Cursor::new(z.clone())).single_frame();
            let mut buf = vec![0u8; stop];
            d.read_exact(&mut buf).unwrap();
            assert!(buf[..] == data[..stop]);
            let end = d.finish();
            assert_eq!(end.digest, want, "stopped after {stop} bytes");
            assert_eq!(end.trailing, 0, "the stream did not end cleanly, so no trailing count");
        }
    }

    #[test]
    fn bytes_after_the_frame_are_hashed_and_counted_as_trailing() {
        let (data, mut z) = big_stream();
        let frame = z.len();
        z.extend(noise(3 * IN_CHUNK + 17, 7));
        let mut d = Decoder::new(Cursor::new(z.clone())).single_frame();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert!(out == data);
        let end = d.finish();
        assert_eq!(end.digest, sha(&z));
        assert_eq!(end.trailing, (z.len() - frame) as u64);
    }

    #[test]
    fn corrupt_and_truncated_streams_are_still_hashed_to_their_last_byte() {
        let (_, z) = big_stream();
        let mut bad = z.clone();
        let mid = bad.len() / 3;
        for b in &mut bad[mid..mid + 64] {
            *b ^= 0x5a;
        }
        let cut = z[..z.len() / 2 + 5].to_vec();
        for (what, input) in [("corrupt", bad), ("truncated", cut)] {
            let mut d = Decoder::new(Cursor::new(input.clone())).single_frame();
            assert!(d.read_to_end(&mut Vec::new()).is_err(), "{what}");
            let end = d.finish();
            assert_eq!(end.digest, sha(&input), "{what}");
            assert_eq!(end.trailing, 0, "{what}");
        }
    }

    #[test]
    fn after_a_source_error_the_digest_covers_exactly_the_bytes_read_before_it() {
        let (_, z) = big_stream();
        let fail_at = 5 * IN_CHUNK + 1234;
        let src = Trickle::failing_at(z.clone(), 100_003, fail_at);
        let mut d = Decoder::new(src).single_frame();
        let e = d.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(d.finish().digest, sha(&z[..fail_at]));
    }

    #[test]
    fn digest_of_covers_the_prefix_and_the_rest() {
        let z = noise(3 * IN_CHUNK + 5, 3);
        assert_eq!(digest_of(&z[..5], Cursor::new(&z[5..])), sha(&z));
        assert_eq!(digest_of(&[], io::empty()), InputDigest::default());
        assert_eq!(InputDigest::default(), sha(b""));
    }

    /// Queue `IN_DEPTH` chunks without starting the worker, and let the caller hash the first
    /// `help` of them as it does when it would wait for output.
    fn queued_and_helped(z: &[u8], help: usize) -> Decoder<Cursor<Vec<u8>>> {
        let mut d = Decoder::new(Cursor::new(z.to_vec())).single_frame();
        for _ in 0..IN_DEPTH {
            d.feed().unwrap();
        }
        for _ in 0..help {
            let taken = d.help_hash(&mut d.shared.lock()).expect("an unhashed chunk to help with");
            d.hash_for_worker(taken);
        }
        assert_eq!(d.shared.taken().bytes, (help * IN_CHUNK) as u64);
        d
    }

    #[test]
    fn chunks_the_caller_hashed_are_neither_hashed_again_nor_skipped() {
        let (data, z) = big_stream();
        // The worker then takes two hashed chunks, and hashes the rest itself.
        let mut d = queued_and_helped(&z, 2);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert!(out == data);
        assert_eq!(d.finish().digest, sha(&z));
        // Stopped before the worker took any: finish hashes only the unhashed queued chunks.
        for help in [0, 1, IN_DEPTH] {
            assert_eq!(queued_and_helped(&z, help).finish().digest, sha(&z), "{help} helped");
        }
        // Nothing left to help with once every queued chunk is hashed.
        let d = queued_and_helped(&z, IN_DEPTH);
        assert!(d.help_hash(&mut d.shared.lock()).is_none());
    }
}
