//! A zstd decoder that decompresses on a background thread, so that reading a bundle uses
//! two cores: decompression on one, SHA-256 of the members (in the caller's thread) on the
//! other.
//!
//! [`Decoder`] is a drop-in [`Read`] for `zstd::stream::read::Decoder`: the same decoder, with
//! the same limits (`window_log_max`), runs on a worker thread and hands decompressed data
//! back in chunks of `OUT_CHUNK` bytes through a small bounded queue. The compressed input is
//! still read by the caller's thread (the source need not be `Send`: it is usually a hashing
//! reader over the bundle file) and passed to the worker in chunks through another bounded
//! queue, so memory stays bounded — at most `IN_DEPTH` input and `OUT_DEPTH + 2` output chunks
//! exist at once, about 7 MiB.
//!
//! Deadlock freedom: the caller only waits when no output is ready *and* the input queue is
//! full or finished; in both cases the worker can make progress (it never waits for input
//! while the input queue is full, and never waits for room while output is queued, which
//! the caller then takes). Decompression errors reach the caller in stream order, after all
//! the data decoded before them. Dropping the decoder stops and joins the worker.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Decompressed bytes per chunk handed to the caller.
const OUT_CHUNK: usize = 1 << 20;
/// Decompressed chunks queued (plus one being filled and one being read).
const OUT_DEPTH: usize = 4;
/// Compressed bytes per chunk handed to the worker.
const IN_CHUNK: usize = 256 << 10;
/// Compressed chunks queued.
const IN_DEPTH: usize = 4;

#[derive(Default)]
struct State {
    input: VecDeque<Vec<u8>>,
    input_eof: bool,
    output: VecDeque<io::Result<Vec<u8>>>,
    worker_done: bool,
    /// Compressed bytes the worker's decoder left unread after the (single) frame ended.
    leftover: u64,
    closed: bool,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
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
}

/// The worker's view of the compressed input: chunks from the caller.
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
            let mut st = self.shared.lock();
            loop {
                if let Some(c) = st.input.pop_front() {
                    let old = std::mem::replace(&mut self.cur, c);
                    if old.capacity() > 0 {
                        st.spare_in.push(old);
                    }
                    self.pos = 0;
                    self.shared.changed.notify_all();
                    break;
                }
                if st.input_eof || st.closed {
                    return Ok(&[]);
                }
                st = self.shared.wait(st);
            }
        }
        Ok(&self.cur[self.pos..])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

type Zstd = zstd::stream::read::Decoder<'static, ChunkReader>;

/// A zstd decoder running on a background thread. See the module documentation.
pub struct Decoder<R: BufRead> {
    source: R,
    shared: Arc<Shared>,
    pending: Option<Zstd>,
    worker: Option<JoinHandle<()>>,
    input_eof: bool,
    finished: bool,
    cur: Vec<u8>,
    pos: usize,
}

impl<R: BufRead> Decoder<R> {
    /// A decoder over the compressed `source`. Nothing runs until the first read.
    pub fn new(source: R) -> io::Result<Self> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        let chunks = ChunkReader { shared: shared.clone(), cur: Vec::new(), pos: 0 };
        let dec = zstd::stream::read::Decoder::with_buffer(chunks)?;
        Ok(Decoder {
            source,
            shared,
            pending: Some(dec),
            worker: None,
            input_eof: false,
            finished: false,
            cur: Vec::new(),
            pos: 0,
        })
    }

    /// Stop at the end of the first zstd frame (as `zstd::stream::read::Decoder::single_frame`);
    /// whatever follows can then be counted with [`Decoder::trailing_compressed`].
    pub fn single_frame(mut self) -> Self {
        self.pending = self.pending.take().map(|d| d.single_frame());
        self
    }

    /// After the decompressed stream ended: how many compressed bytes follow the frame (those
    /// the worker received but did not use, those still queued, and the rest of the source).
    pub fn trailing_compressed(&mut self) -> u64 {
        if !self.finished {
            return 0;
        }
        let mut extra = {
            let mut st = self.shared.lock();
            let queued: u64 = st.input.iter().map(|c| c.len() as u64).sum();
            st.input.clear();
            st.leftover + queued
        };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match self.source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => extra += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        extra
    }

    /// Cap the zstd window (as `zstd::stream::read::Decoder::window_log_max`). Must be
    /// called before the first read.
    pub fn window_log_max(&mut self, log: u32) -> io::Result<()> {
        match self.pending.as_mut() {
            Some(d) => d.window_log_max(log),
            None => Err(io::Error::other("window_log_max set after decoding started")),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        let Some(dec) = self.pending.take() else { return Ok(()) };
        let shared = self.shared.clone();
        let h = std::thread::Builder::new().name("custody-unzstd".into()).spawn(move || work(dec, &shared))?;
        self.worker = Some(h);
        Ok(())
    }

    /// Read one compressed chunk from the source into the input queue.
    fn feed(&mut self) -> io::Result<()> {
        let mut chunk = self.shared.lock().spare_in.pop().unwrap_or_default();
        chunk.resize(IN_CHUNK, 0);
        let mut n = 0;
        while n < IN_CHUNK {
            match self.source.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        chunk.truncate(n);
        crate::progress::add_global_bytes(n as u64);
        let mut st = self.shared.lock();
        if n == 0 {
            self.input_eof = true;
            st.input_eof = true;
        } else {
            st.input.push_back(chunk);
        }
        self.shared.changed.notify_all();
        Ok(())
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
                st = self.shared.wait(st);
            }
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.cur.len() {
            if self.finished {
                return Ok(0);
            }
            self.start()?;
            match self.next_chunk() {
                Ok(Some(c)) => {
                    let old = std::mem::replace(&mut self.cur, c);
                    if old.capacity() > 0 {
                        self.shared.lock().spare_out.push(old);
                    }
                    self.pos = 0;
                }
                Ok(None) => {
                    self.finished = true;
                    return Ok(0);
                }
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
            }
        }
        let n = (self.cur.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R: BufRead> Drop for Decoder<R> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

fn work(mut dec: Zstd, shared: &Shared) {
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
        while st.output.len() >= OUT_DEPTH && !st.closed {
            st = shared.wait(st);
        }
        if st.closed {
            return;
        }
        if filled > 0 {
            st.output.push_back(Ok(buf));
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
    use std::io::{BufReader, Cursor};

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
        let mut d = Decoder::new(BufReader::new(Cursor::new(z))).unwrap();
        d.window_log_max(27).unwrap();
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
        Decoder::new(BufReader::new(Cursor::new(z))).unwrap().read_to_string(&mut out).unwrap();
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
        let mut d = Decoder::new(BufReader::new(Cursor::new(z))).unwrap();
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
        let r = Decoder::new(BufReader::new(Cursor::new(cut))).unwrap().read_to_end(&mut out);
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
        let mut d = Decoder::new(BufReader::new(Cursor::new(z))).unwrap();
        d.window_log_max(20).unwrap();
        let mut out = Vec::new();
        assert!(d.read_to_end(&mut out).is_err());
    }

    #[test]
    fn dropping_mid_stream_stops_the_worker() {
        let z = compress(&sample(16 * OUT_CHUNK));
        let mut d = Decoder::new(BufReader::new(Cursor::new(z))).unwrap();
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
        let mut d = Decoder::new(BufReader::new(Failing)).unwrap();
        let e = d.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }
}
