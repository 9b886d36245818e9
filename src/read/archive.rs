//! A strict, bounded reader for bundle archives (untrusted input).
//!
//! The bundle is a zstd stream holding a POSIX ustar archive. This reader accepts only what
//! the writer produces — regular-file members named `blobs/sha256/<64 lower-case hex>`,
//! `manifest.json` and `manifest.dsse.json` — and reports everything else as an
//! [`ArchiveProblem`] instead of failing: links, devices, directories, PAX/GNU extension
//! headers, path escapes, duplicate names, oversized members, bad header checksums,
//! truncation, trailing data and decompression bombs.
//!
//! Memory is bounded: blob contents are streamed through SHA-256 (never buffered), only the
//! manifest and envelope members are kept, each under a size cap, and the zstd window is
//! capped (`window_log_max`). Nothing here panics on any input.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use crate::digest::{Hasher, Sha256};

/// Resource limits for reading an archive.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted `manifest.json`.
    pub max_manifest: u64,
    /// Largest accepted `manifest.dsse.json`.
    pub max_envelope: u64,
    /// Most members accepted.
    pub max_members: usize,
    /// zstd window log cap (27 = 128 MiB, as the zstd CLI's default).
    pub window_log_max: u32,
    /// After this many decompressed bytes, a compression ratio above `max_ratio` is a bomb.
    pub bomb_floor: u64,
    /// Largest plausible decompressed/compressed ratio past `bomb_floor`.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest: 64 << 20,
            max_envelope: 96 << 20,
            max_members: 2_000_000,
            window_log_max: 27,
            bomb_floor: 1 << 30,
            max_ratio: 2000,
        }
    }
}

/// What a member is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// `blobs/sha256/<hex>`, with the digest its name claims.
    Blob(Sha256),
    /// `manifest.json`.
    Manifest,
    /// `manifest.dsse.json`.
    Envelope,
}

/// One blob member as read.
#[derive(Debug, Clone)]
pub struct BlobMember {
    /// 0-based member index in the archive.
    pub index: usize,
    /// The digest its name claims.
    pub claimed: Sha256,
    /// The digest of its content.
    pub actual: Sha256,
    /// Its size.
    pub size: u64,
}

/// Something wrong with the archive structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveProblem {
    /// The zstd stream is corrupt.
    Decompress {
        /// Decompressed bytes read before the error.
        at: u64,
        /// The decoder's message.
        message: String,
    },
    /// The archive ends in the middle of a member or before the end marker.
    Truncated {
        /// Member being read, if any.
        member: Option<String>,
    },
    /// A header block is malformed.
    BadHeader {
        /// Member index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A member that is not a regular file (link, device, directory, extension header…).
    UnsupportedType {
        /// Member name.
        name: String,
        /// Its tar type flag.
        typeflag: char,
    },
    /// A name that is not allowed (escape, absolute, unknown file, not UTF-8…).
    BadName {
        /// The name (lossy).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A name that appears twice.
    Duplicate {
        /// The name.
        name: String,
    },
    /// A member larger than its limit.
    TooLarge {
        /// The name.
        name: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Non-zero data after the end-of-archive marker.
    TrailingData,
    /// Too many members.
    TooManyMembers {
        /// The limit.
        limit: usize,
    },
    /// The decompressed stream grows far beyond any plausible compression ratio.
    DecompressionBomb {
        /// Decompressed bytes read when stopped.
        decompressed: u64,
        /// Compressed bytes consumed.
        compressed: u64,
    },
}

impl std::fmt::Display for ArchiveProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveProblem::Decompress { at, message } => {
                write!(f, "the zstd stream is corrupt after {at} decompressed bytes: {message}")
            }
            ArchiveProblem::Truncated { member: Some(m) } => write!(f, "the archive is truncated inside member `{m}`"),
            ArchiveProblem::Truncated { member: None } => {
                write!(f, "the archive is truncated: no end-of-archive marker")
            }
            ArchiveProblem::BadHeader { index, reason } => {
                write!(f, "tar header of member #{index} is malformed: {reason}")
            }
            ArchiveProblem::UnsupportedType { name, typeflag } => {
                write!(f, "member `{name}` has tar type `{typeflag}`; only regular files are allowed (no links, devices, directories or extension headers)")
            }
            ArchiveProblem::BadName { name, reason } => write!(f, "member name `{name}` is not allowed: {reason}"),
            ArchiveProblem::Duplicate { name } => write!(f, "member `{name}` appears more than once"),
            ArchiveProblem::TooLarge { name, size, limit } => {
                write!(f, "member `{name}` declares {size} bytes, above the limit of {limit}")
            }
            ArchiveProblem::TrailingData => write!(f, "non-zero data follows the end-of-archive marker"),
            ArchiveProblem::TooManyMembers { limit } => write!(f, "more than {limit} members"),
            ArchiveProblem::DecompressionBomb { decompressed, compressed } => write!(
                f,
                "decompression bomb: {decompressed} bytes out of {compressed} compressed bytes; stopped reading"
            ),
        }
    }
}

/// Receives blob contents as they stream by (used by `extract`).
pub trait BlobVisitor {
    /// A blob member starts.
    fn begin(&mut self, claimed: &Sha256, size: u64);
    /// Some of its bytes.
    fn chunk(&mut self, data: &[u8]);
    /// It ended; `actual` is the digest of what was streamed (None if truncated).
    fn end(&mut self, claimed: &Sha256, actual: Option<Sha256>);
}

/// The result of reading an archive.
#[derive(Debug, Default)]
pub struct ArchiveScan {
    /// Blob members in archive order.
    pub blobs: Vec<BlobMember>,
    /// `manifest.json` bytes (the first one, if several).
    pub manifest: Option<Vec<u8>>,
    /// `manifest.dsse.json` bytes (the first one, if several).
    pub envelope: Option<Vec<u8>>,
    /// Every member name in order.
    pub members: Vec<String>,
    /// Structural problems.
    pub problems: Vec<ArchiveProblem>,
    /// Decompressed bytes read.
    pub decompressed_bytes: u64,
    /// Compressed bytes read.
    pub compressed_bytes: u64,
}

struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

enum Stop {
    /// EOF where a block was expected.
    Eof,
    /// An I/O or decompression error.
    Io(io::Error),
    /// A limit fired.
    Bomb,
}

struct Src<R: Read> {
    r: super::pipeline::Decoder<BufReader<Counting<R>>>,
    out: u64,
    compressed: Rc<Cell<u64>>,
    limits: Limits,
}

impl<R: Read> Src<R> {
    /// Read exactly `buf.len()` bytes, or report why not.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), Stop> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => return Err(Stop::Eof),
                Ok(n) => {
                    got += n;
                    self.out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Io(e)),
            }
        }
        if self.out > self.limits.bomb_floor && self.out / self.compressed.get().max(1) > self.limits.max_ratio {
            return Err(Stop::Bomb);
        }
        Ok(())
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return None; // base-256: never written by custody
    }
    let s: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let t = std::str::from_utf8(&s).ok()?.trim_matches(' ');
    if t.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(t, 8).ok()
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Classify a member name.
pub fn classify(name: &str) -> Result<MemberKind, &'static str> {
    if name.starts_with('/') {
        return Err("absolute path");
    }
    if name.split('/').any(|c| c == "..") {
        return Err("contains `..`");
    }
    match name {
        "manifest.json" => Ok(MemberKind::Manifest),
        "manifest.dsse.json" => Ok(MemberKind::Envelope),
        _ => match name.strip_prefix("blobs/sha256/") {
            Some(h) => {
                Sha256::parse_canonical_hex(h).map(MemberKind::Blob).ok_or("blob name is not 64 lower-case hex digits")
            }
            None => Err("not a member of a custody bundle"),
        },
    }
}

/// Read a bundle archive from `r` (the compressed bytes).
pub fn read_archive<R: Read>(r: R, limits: &Limits, mut visitor: Option<&mut dyn BlobVisitor>) -> ArchiveScan {
    let mut scan = ArchiveScan::default();
    let compressed = Rc::new(Cell::new(0u64));
    let counting = Counting { inner: r, count: compressed.clone() };
    let mut dec = match super::pipeline::Decoder::new(BufReader::with_capacity(1 << 20, counting)) {
        Ok(d) => d,
        Err(e) => {
            scan.problems.push(ArchiveProblem::Decompress { at: 0, message: e.to_string() });
            return scan;
        }
    };
    if let Err(e) = dec.window_log_max(limits.window_log_max) {
        scan.problems.push(ArchiveProblem::Decompress { at: 0, message: e.to_string() });
        return scan;
    }
    let mut src = Src { r: dec, out: 0, compressed, limits: limits.clone() };
    let mut seen: HashSet<String> = HashSet::new();
    let mut block = [0u8; 512];
    let mut buf = vec![0u8; 1 << 20];
    let mut index = 0usize;

    let stop_to_problem = |stop: Stop, member: Option<String>, src: &Src<R>| match stop {
        Stop::Eof => ArchiveProblem::Truncated { member },
        Stop::Io(e) => ArchiveProblem::Decompress { at: src.out, message: e.to_string() },
        Stop::Bomb => ArchiveProblem::DecompressionBomb { decompressed: src.out, compressed: src.compressed.get() },
    };

    loop {
        if let Err(stop) = src.fill(&mut block) {
            let p = stop_to_problem(stop, None, &src);
            scan.problems.push(p);
            break;
        }
        if block.iter().all(|&b| b == 0) {
            // End marker: a second zero block, then nothing but zero padding.
            match src.fill(&mut block) {
                Ok(()) if block.iter().all(|&b| b == 0) => {}
                Ok(()) => scan.problems.push(ArchiveProblem::TrailingData),
                Err(Stop::Eof) => {} // one zero block then EOF: tolerated (some writers)
                Err(stop) => {
                    let p = stop_to_problem(stop, None, &src);
                    scan.problems.push(p);
                    break;
                }
            }
            check_trailing(&mut src, &mut scan, &mut buf);
            break;
        }
        if scan.members.len() >= limits.max_members {
            scan.problems.push(ArchiveProblem::TooManyMembers { limit: limits.max_members });
            break;
        }
        let this = index;
        index += 1;
        // Checksum.
        let stored = octal(&block[148..156]);
        let mut sum: u64 = 0;
        for (i, b) in block.iter().enumerate() {
            sum += if (148..156).contains(&i) { 32 } else { *b as u64 };
        }
        if stored != Some(sum) {
            scan.problems.push(ArchiveProblem::BadHeader { index: this, reason: "header checksum mismatch".into() });
            break; // cannot trust the size field: stop here
        }
        let Some(size) = octal(&block[124..136]) else {
            scan.problems.push(ArchiveProblem::BadHeader { index: this, reason: "size field is not octal".into() });
            break;
        };
        let mut raw_name = Vec::new();
        let prefix = cstr(&block[345..500]);
        if &block[257..263] == b"ustar\0" && !prefix.is_empty() {
            raw_name.extend_from_slice(prefix);
            raw_name.push(b'/');
        }
        raw_name.extend_from_slice(cstr(&block[0..100]));
        let name_lossy = String::from_utf8_lossy(&raw_name).into_owned();
        let typeflag = block[156];
        scan.members.push(name_lossy.clone());

        let mut kind = None;
        if typeflag != b'0' && typeflag != 0 {
            scan.problems
                .push(ArchiveProblem::UnsupportedType { name: name_lossy.clone(), typeflag: typeflag as char });
        } else if &block[257..263] != b"ustar\0" && &block[257..263] != b"ustar " {
            scan.problems.push(ArchiveProblem::BadHeader { index: this, reason: "not a ustar header".into() });
        } else {
            match std::str::from_utf8(&raw_name) {
                Err(_) => scan.problems.push(ArchiveProblem::BadName { name: name_lossy.clone(), reason: "not UTF-8" }),
                Ok(n) => match classify(n) {
                    Err(reason) => scan.problems.push(ArchiveProblem::BadName { name: name_lossy.clone(), reason }),
                    Ok(k) => {
                        if !seen.insert(n.to_string()) {
                            scan.problems.push(ArchiveProblem::Duplicate { name: n.to_string() });
                        }
                        kind = Some(k);
                    }
                },
            }
        }
        let limit = match kind {
            Some(MemberKind::Manifest) => limits.max_manifest,
            Some(MemberKind::Envelope) => limits.max_envelope,
            _ => u64::MAX,
        };
        if size > limit {
            scan.problems.push(ArchiveProblem::TooLarge { name: name_lossy.clone(), size, limit });
            break; // refusing to read it; nothing after it can be trusted to be reached in bounded time
        }
        let padded = size.div_ceil(512) * 512;
        let result = match &kind {
            Some(MemberKind::Blob(claimed)) => {
                if let Some(v) = visitor.as_deref_mut() {
                    v.begin(claimed, size);
                }
                let mut h = Hasher::new();
                let r = stream(&mut src, size, &mut buf, |chunk| {
                    h.update(chunk);
                    if let Some(v) = visitor.as_deref_mut() {
                        v.chunk(chunk);
                    }
                });
                let actual = r.is_ok().then(|| h.finish());
                if let Some(v) = visitor.as_deref_mut() {
                    v.end(claimed, actual);
                }
                if let Some(actual) = actual {
                    scan.blobs.push(BlobMember { index: this, claimed: *claimed, actual, size });
                }
                r
            }
            Some(k @ (MemberKind::Manifest | MemberKind::Envelope)) => {
                let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
                let r = stream(&mut src, size, &mut buf, |chunk| data.extend_from_slice(chunk));
                let slot = if *k == MemberKind::Manifest { &mut scan.manifest } else { &mut scan.envelope };
                if r.is_ok() && slot.is_none() {
                    *slot = Some(data);
                }
                r
            }
            None => stream(&mut src, size, &mut buf, |_| {}),
        };
        let result = result.and_then(|_| skip(&mut src, padded - size));
        if let Err(stop) = result {
            let p = stop_to_problem(stop, Some(name_lossy), &src);
            scan.problems.push(p);
            break;
        }
    }
    scan.decompressed_bytes = src.out;
    scan.compressed_bytes = src.compressed.get();
    scan
}

fn stream<R: Read>(src: &mut Src<R>, mut left: u64, buf: &mut [u8], mut f: impl FnMut(&[u8])) -> Result<(), Stop> {
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        src.fill(&mut buf[..k])?;
        f(&buf[..k]);
        left -= k as u64;
    }
    Ok(())
}

fn skip<R: Read>(src: &mut Src<R>, n: u64) -> Result<(), Stop> {
    let mut pad = [0u8; 512];
    src.fill(&mut pad[..n as usize])
}

fn check_trailing<R: Read>(src: &mut Src<R>, scan: &mut ArchiveScan, buf: &mut [u8]) {
    // Writers may pad to a record size (GNU tar: 10 KiB); allow up to 1 MiB of zeros.
    let mut seen = 0u64;
    loop {
        match src.r.read(buf) {
            Ok(0) => return,
            Ok(n) => {
                seen += n as u64;
                if buf[..n].iter().any(|&b| b != 0) || seen > (1 << 20) {
                    scan.problems.push(ArchiveProblem::TrailingData);
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                scan.problems.push(ArchiveProblem::Decompress { at: src.out + seen, message: e.to_string() });
                return;
            }
        }
    }
}
