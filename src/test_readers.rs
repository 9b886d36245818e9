//! Readers for unit tests (compiled only with `cfg(test)`): a source that returns short reads
//! and can fail part-way, and counts the calls made to it.

use std::io::{self, Read};

/// Yields `data` in reads of at most `step` bytes, then fails with `BrokenPipe` once `fail_at`
/// bytes were read (if set); `calls` counts the `read` calls.
pub(crate) struct Trickle {
    pub data: Vec<u8>,
    pub pos: usize,
    pub step: usize,
    pub fail_at: Option<usize>,
    pub calls: usize,
}

impl Trickle {
    /// `data` in reads of at most `step` bytes, never failing.
    pub fn new(data: impl Into<Vec<u8>>, step: usize) -> Self {
        Trickle { data: data.into(), pos: 0, step, fail_at: None, calls: 0 }
    }

    /// The same, failing once `at` bytes were read.
    pub fn failing_at(data: impl Into<Vec<u8>>, step: usize, at: usize) -> Self {
        Trickle { fail_at: Some(at), ..Trickle::new(data, step) }
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let end = self.fail_at.unwrap_or(self.data.len()).min(self.data.len());
        if self.pos >= end && self.fail_at.is_some() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "device went away"));
        }
        let n = buf.len().min(self.step).min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
