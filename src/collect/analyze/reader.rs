//! Bounded, offset-tracking byte source: line splitting with a line-length limit (long
//! lines are skipped without being buffered), whole-document reads with a size limit, and
//! a decompression cap.

use std::cell::RefCell;
use std::io::{self, Read};

const CHUNK: usize = 256 * 1024;
/// Buffers of [`CHUNK`] bytes kept per thread for the next [`ByteSource`]: a scan of many small
/// files would otherwise allocate, zero and free a fresh buffer per file (page faults, and the
/// allocator trimming and regrowing its heap, show up as system time).
const SPARE_BUFFERS: usize = 4;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A [`CHUNK`]-sized buffer: a spare one of this thread, else a new one.
fn take_buffer() -> Vec<u8> {
    SPARE.with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop())).unwrap_or_else(|| vec![0; CHUNK])
}

/// Keeps a buffer for the next [`ByteSource`] of this thread (only unenlarged ones: a buffer
/// grown for a long line or a document is freed).
fn give_back(buf: Vec<u8>) {
    if buf.len() != CHUNK {
        return;
    }
    SPARE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < SPARE_BUFFERS {
                s.push(buf);
            }
        }
    });
}

/// A line (or a skipped over-long line) read from a [`ByteSource`].
pub(crate) enum LineEvent {
    /// A line: offset of its first byte; its bytes are in `ByteSource::line_bytes`.
    Line { offset: u64 },
    /// A line longer than the limit, skipped; `len` excludes the terminator.
    TooLong { offset: u64, len: u64 },
    /// End of input (or of the readable part of it).
    Eof,
}

/// Caps the bytes read from `inner`; sets `hit` when more data was available.
pub(crate) struct Capped<R> {
    inner: R,
    remaining: u64,
    pub(crate) hit: bool,
}

impl<R: Read> Capped<R> {
    pub(crate) fn new(inner: R, cap: u64) -> Self {
        Capped { inner, remaining: cap, hit: false }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // Probe one byte to know whether the cap actually cut anything.
            if !self.hit {
                let mut probe = [0u8; 1];
                if self.inner.read(&mut probe)? > 0 {
                    self.hit = true;
                }
            }
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

/// Buffered reader that tracks the absolute offset of every byte it hands out. Its buffer is
/// reused by the next `ByteSource` of the same thread (see [`SPARE_BUFFERS`]).
pub(crate) struct ByteSource<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Absolute offset of `buf[pos]`.
    offset: u64,
    eof: bool,
    /// First read error; reading stops there.
    pub(crate) error: Option<io::Error>,
    line_start: usize,
    line_len: usize,
}

impl<R: Read> ByteSource<R> {
    pub(crate) fn new(inner: R) -> Self {
        ByteSource {
            inner,
            buf: take_buffer(),
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
            error: None,
            line_start: 0,
            line_len: 0,
        }
    }

    /// Offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    fn buffered(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    /// Reads more data after the buffered bytes; returns false at EOF or on error.
    fn fill_more(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            let grow = self.buf.len().max(CHUNK);
            self.buf.resize(self.buf.len() + grow, 0);
        }
        loop {
            let Some(dst) = self.buf.get_mut(self.end..) else {
                self.eof = true;
                return false;
            };
            match self.inner.read(dst) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.error = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }

    /// Returns up to `n` bytes from the current position without consuming them.
    pub(crate) fn peek(&mut self, n: usize) -> &[u8] {
        while self.end - self.pos < n && self.fill_more() {}
        let avail = (self.end - self.pos).min(n);
        self.buf.get(self.pos..self.pos + avail).unwrap_or_default()
    }

    /// Skips `n` bytes if they are buffered (used for a BOM).
    pub(crate) fn skip_buffered(&mut self, n: usize) {
        self.consume(n);
    }

    /// Bytes of the last line returned by [`Self::next_line`] (terminator excluded).
    pub(crate) fn line_bytes(&self) -> &[u8] {
        self.buf.get(self.line_start..self.line_start + self.line_len).unwrap_or_default()
    }

    /// Reads the next line. Lines longer than `max` bytes are skipped and reported.
    /// A `\r` before the `\n` is excluded from the line.
    pub(crate) fn next_line(&mut self, max: usize) -> LineEvent {
        let mut searched = 0usize;
        loop {
            let found = self.buffered().get(searched..).and_then(|b| memchr::memchr(b'\n', b)).map(|p| p + searched);
            if let Some(nl) = found {
                if nl > max {
                    let offset = self.offset;
                    self.consume(nl + 1);
                    return LineEvent::TooLong { offset, len: nl as u64 };
                }
                return self.take_line(nl, nl + 1);
            }
            let have = self.end - self.pos;
            if have > max {
                return self.skip_long_line();
            }
            searched = have;
            if !self.fill_more() {
                let rest = self.end - self.pos;
                if rest == 0 {
                    return LineEvent::Eof;
                }
                return self.take_line(rest, rest);
            }
        }
    }

    fn take_line(&mut self, content: usize, consumed: usize) -> LineEvent {
        let offset = self.offset;
        let mut len = content;
        if len > 0 && self.buf.get(self.pos + len - 1) == Some(&b'\r') {
            len -= 1;
        }
        self.line_start = self.pos;
        self.line_len = len;
        self.consume(consumed);
        LineEvent::Line { offset }
    }

    /// Discards an over-long line up to and including its terminator.
    fn skip_long_line(&mut self) -> LineEvent {
        let offset = self.offset;
        let mut len: u64 = 0;
        loop {
            let buffered = self.end - self.pos;
            let nl = memchr::memchr(b'\n', self.buffered());
            match nl {
                Some(p) => {
                    len += p as u64;
                    self.consume(p + 1);
                    return LineEvent::TooLong { offset, len };
                }
                None => {
                    len += buffered as u64;
                    self.consume(buffered);
                    // Keep the buffer from growing while skipping.
                    self.pos = 0;
                    self.end = 0;
                    if !self.fill_more() {
                        return LineEvent::TooLong { offset, len };
                    }
                }
            }
        }
    }

    /// Reads everything left, up to `max` bytes. `Err(read)` when the input is larger
    /// (the rest is drained so the byte count is exact).
    pub(crate) fn read_all(&mut self, max: usize) -> Result<Vec<u8>, u64> {
        let mut out = Vec::new();
        loop {
            let chunk = self.buffered();
            if out.len() + chunk.len() > max {
                let mut total = (out.len() + chunk.len()) as u64;
                drop(out);
                let n = self.end - self.pos;
                self.consume(n);
                self.pos = 0;
                self.end = 0;
                while self.fill_more() {
                    total += (self.end - self.pos) as u64;
                    let n = self.end - self.pos;
                    self.consume(n);
                    self.pos = 0;
                    self.end = 0;
                }
                return Err(total);
            }
            out.extend_from_slice(chunk);
            let n = self.end - self.pos;
            self.consume(n);
            self.pos = 0;
            self.end = 0;
            if !self.fill_more() {
                return Ok(out);
            }
        }
    }
}

impl<R> Drop for ByteSource<R> {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_with_offsets_crlf_and_long_lines() {
        let data = b"ab\r\ncccccccccc\nd\n\ne".to_vec();
        let mut src = ByteSource::new(&data[..]);
        let mut got = Vec::new();
        loop {
            match src.next_line(5) {
                LineEvent::Line { offset } => {
                    let b = src.line_bytes();
                    got.push(format!("{offset}:{}:{}", b.len(), String::from_utf8_lossy(b)))
                }
                LineEvent::TooLong { offset, len } => got.push(format!("long {offset}:{len}")),
                LineEvent::Eof => break,
            }
        }
        assert_eq!(got, vec!["0:2:ab", "long 4:10", "15:1:d", "17:0:", "18:1:e"]);
    }

    #[test]
    fn capped_reader_flags_cut() {
        let data = [7u8; 100];
        let mut c = Capped::new(&data[..], 10);
        let mut out = Vec::new();
        let n = c.read_to_end(&mut out).unwrap_or(0);
        assert_eq!(n, 10);
        assert!(c.hit);
    }
}
