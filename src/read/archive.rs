//! A strict, bounded reader for bundle archives (untrusted input).
//!
//! The bundle is a zstd stream holding a POSIX ustar archive. This reader accepts only what
//! the writer produces — regular-file members named `blobs/sha256/<64 lower-case hex>`,
//! `analysis.json`, `manifest.json` and `manifest.dsse.json` — and reports everything else as an
//! [`ArchiveProblem`] instead of failing: links, devices, directories, PAX/GNU extension
//! headers, path escapes, duplicate names, oversized members, bad header checksums,
//! truncation, trailing data and decompression bombs.
//!
//! The reader is *canonical*: every byte of the decompressed archive must be exactly what the
//! writer produces (see `docs/format-reader-rules.md`). Each header must equal the header
//! custody writes for that name, size and the archive's single mtime (mode 0444, uid/gid 0,
//! uname/gname `custody`, ustar magic and version, no prefix, no link name, zero device
//! numbers, checksum as 7 octal digits and NUL); padding is zeros; the archive ends with
//! exactly two zero blocks and nothing else; the zstd stream is exactly one frame with a
//! content checksum and no dictionary, followed by nothing. Any other byte is reported, so a
//! flip that would leave the parsed meaning unchanged is still caught.
//!
//! Memory is bounded: blob contents and `analysis.json` are streamed through SHA-256 (the
//! analysis is kept only when asked, under [`Limits::keep_analysis`]), only the manifest is kept (under a size cap, behind its DSSE PAE header; its SHA-256 is
//! computed from the held bytes, by [`ManifestBytes::sha256`]); the envelope that follows
//! it is checked against it as it streams and only its small tail is kept (an envelope with no
//! manifest before it, or one that deviates, is buffered under a small cap), and the zstd window is
//! capped (`window_log_max`). Nothing here panics on any input.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read};
use std::rc::Rc;

use crate::bundle::manifest::{ANALYSIS_MEMBER, MANIFEST_PAYLOAD_TYPE};
use crate::bundle::write::{ENVELOPE_MEMBER, MANIFEST_MEMBER};
use crate::digest::{Hasher, Sha256};
use crate::read::envelope::{EnvelopeMember, EnvelopeStream};
use crate::read::pipeline::{digest_of, Decoder, InputDigest};

/// Resource limits for reading an archive.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted `manifest.json`.
    pub max_manifest: u64,
    /// Largest accepted `manifest.dsse.json` when `manifest.json` came before it (it is then
    /// checked as it streams, see [`crate::read::envelope::EnvelopeStream`]).
    pub max_envelope: u64,
    /// Largest accepted `manifest.dsse.json` with no `manifest.json` before it (buffered whole).
    pub max_buffered_envelope: u64,
    /// Most members accepted.
    pub max_members: usize,
    /// zstd window log cap (27 = 128 MiB, as the zstd CLI's default).
    pub window_log_max: u32,
    /// After this many decompressed bytes, a compression ratio above `max_ratio` is a bomb.
    pub bomb_floor: u64,
    /// Largest plausible decompressed/compressed ratio past `bomb_floor`.
    pub max_ratio: u64,
    /// Keep the bytes of an `analysis.json` member up to this size (0: only hash it; `show`
    /// sets it, `verify` does not). A larger one is still hashed, just not kept.
    pub keep_analysis: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest: crate::read::envelope::MAX_MANIFEST as u64,
            max_envelope: crate::read::envelope::MAX_ENVELOPE as u64,
            max_buffered_envelope: crate::read::envelope::MAX_BUFFERED_ENVELOPE as u64,
            max_members: 2_000_000,
            window_log_max: 27,
            bomb_floor: 1 << 30,
            max_ratio: 2000,
            keep_analysis: 0,
        }
    }
}

/// What a member is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    /// `blobs/sha256/<hex>`, with the digest its name claims.
    Blob(Sha256),
    /// `analysis.json` (format v2).
    Analysis,
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
    /// A header or padding byte differs from what custody writes.
    NonCanonical {
        /// Member index.
        index: usize,
        /// Member name (lossy).
        name: String,
        /// The first field that differs (`mode`, `uid`, `mtime`, `uname`, `padding`, …).
        field: &'static str,
    },
    /// The zstd framing is not the single checksummed frame custody writes.
    Frame {
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes follow the (single) zstd frame.
    TrailingCompressed {
        /// How many.
        bytes: u64,
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
            ArchiveProblem::TrailingData => {
                write!(f, "data follows the end-of-archive marker (custody ends the archive with exactly two zero blocks)")
            }
            ArchiveProblem::NonCanonical { index, name, field } => write!(
                f,
                "member #{index} `{name}`: its {field} is not what custody writes (non-canonical archive bytes: the archive was altered or not made by custody)"
            ),
            ArchiveProblem::Frame { reason } => write!(f, "the zstd framing is not custody's: {reason}"),
            ArchiveProblem::TrailingCompressed { bytes } => {
                write!(f, "{bytes} byte(s) follow the zstd frame (an appended frame or garbage)")
            }
            ArchiveProblem::TooManyMembers { limit } => write!(f, "more than {limit} members"),
            ArchiveProblem::DecompressionBomb { decompressed, compressed } => write!(
                f,
                "decompression bomb: {decompressed} bytes out of {compressed} compressed bytes; stopped reading"
            ),
        }
    }
}

/// The `manifest.json` member, read into one buffer behind the DSSE pre-authentication header
/// for [`MANIFEST_PAYLOAD_TYPE`], so a v1 signature is checked without copying it again.
#[derive(Debug, Clone)]
pub struct ManifestBytes {
    buf: Vec<u8>,
    start: usize,
}

/// The `analysis.json` member as read.
#[derive(Debug, Clone)]
pub struct AnalysisMember {
    /// 0-based member index in the archive.
    pub index: usize,
    /// SHA-256 of its bytes.
    pub sha256: Sha256,
    /// Its size.
    pub size: u64,
    /// Its bytes, when [`Limits::keep_analysis`] allowed keeping them.
    pub bytes: Option<Vec<u8>>,
}

impl ManifestBytes {
    /// SHA-256 of the manifest bytes (what a v2 envelope's statement names), computed on each
    /// call. The reader does not hash the manifest as it streams by: its thread is the busy
    /// one while a many-file bundle streams, and the verifier hashes the held bytes on a
    /// helper thread while it parses them.
    pub fn sha256(&self) -> Sha256 {
        Sha256::of(self.bytes())
    }
    /// The manifest bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    /// `PAE(MANIFEST_PAYLOAD_TYPE, manifest)`: what the envelope's signature covers.
    pub fn pae(&self) -> &[u8] {
        &self.buf
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
    /// `analysis.json` (the first one, if several).
    pub analysis: Option<AnalysisMember>,
    /// `manifest.json` bytes (the first one, if several).
    pub manifest: Option<ManifestBytes>,
    /// `manifest.dsse.json` (the first one, if several): streamed against the manifest when it
    /// came first, else buffered.
    pub envelope: Option<EnvelopeMember>,
    /// How many members the archive has.
    pub members: usize,
    /// The position of every member named `analysis.json`, `manifest.json` or
    /// `manifest.dsse.json`, in order (the verifier checks where they stand; a blob's name is
    /// not kept here: 100 000 of them cost ~10 MB).
    pub named: Vec<(usize, String)>,
    /// Structural problems.
    pub problems: Vec<ArchiveProblem>,
    /// The mtime shared by every member header (custody writes `collector.started_at`).
    pub mtime: Option<u64>,
    /// Decompressed bytes read.
    pub decompressed_bytes: u64,
    /// Compressed bytes read.
    pub compressed_bytes: u64,
    /// SHA-256 and length of the whole input, every byte to its end (also after a problem
    /// stopped the reading): the bundle digest. Computed on the decompression thread over the
    /// same buffers it decodes (see `pipeline`).
    pub input: InputDigest,
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

/// The compressed input: the peeked frame header, then the rest, counted (read in large
/// chunks by the pipeline, so not buffered here).
type Compressed<R> = Counting<io::Chain<io::Cursor<Vec<u8>>, R>>;

struct Src<R: Read> {
    r: Decoder<Compressed<R>>,
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

/// A numeric header field: octal digits (optionally space/NUL padded), or the positive
/// base-256 form custody's tar writer uses for values of 8^11 and more. `Err` says why not.
fn numeric(field: &[u8]) -> Result<u64, &'static str> {
    match field.first() {
        Some(0xff) => return Err("negative (base-256)"),
        Some(b) if b & 0x80 != 0 => {
            if *b != 0x80 || field.len() < 9 || field[1..field.len() - 8].iter().any(|&x| x != 0) {
                return Err("base-256 value out of range");
            }
            let mut v = 0u64;
            for &x in &field[field.len() - 8..] {
                v = (v << 8) | x as u64;
            }
            return Ok(v);
        }
        _ => {}
    }
    let s: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let t = std::str::from_utf8(&s).map_err(|_| "not octal")?.trim_matches(' ');
    if t.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(t, 8).map_err(|_| "not octal")
}

fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// Write `v` into a 12-byte numeric field the way custody's writer does: 11 octal digits and a
/// NUL below 8^11, else `0x80`, three zero bytes and 8 big-endian bytes.
fn put_numeric12(dst: &mut [u8], v: u64) {
    if v < 8_589_934_592 {
        put_octal(&mut dst[..11], v);
        dst[11] = 0;
    } else {
        dst[..4].copy_from_slice(&[0x80, 0, 0, 0]);
        dst[4..12].copy_from_slice(&v.to_be_bytes());
    }
}

/// `v` in octal digits, zero-padded to fill `dst` (higher digits than fit are dropped; callers
/// pass values that fit). No `format!`: a header is rebuilt for every member, 100 000 times
/// for a 100 000-file bundle.
fn put_octal(dst: &mut [u8], mut v: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
}

/// The exact header custody writes for a regular member `name` (shorter than 100 bytes).
pub fn canonical_header(name: &[u8], size: u64, mtime: u64) -> Option<[u8; 512]> {
    if name.is_empty() || name.len() >= 100 || name.contains(&0) {
        return None;
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000444\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    put_numeric12(&mut h[124..136], size);
    put_numeric12(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..272].copy_from_slice(b"custody");
    h[297..304].copy_from_slice(b"custody");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    // At most 512 * 255 = 130 560, seven octal digits.
    put_octal(&mut h[148..155], sum);
    h[155] = 0;
    Some(h)
}

/// The name of the ustar field holding byte `i` of a header block.
fn field_at(i: usize) -> &'static str {
    match i {
        0..=99 => "name",
        100..=107 => "mode",
        108..=115 => "uid",
        116..=123 => "gid",
        124..=135 => "size",
        136..=147 => "mtime",
        148..=155 => "checksum",
        156 => "type flag",
        157..=256 => "link name",
        257..=262 => "magic",
        263..=264 => "version",
        265..=296 => "uname",
        297..=328 => "gname",
        329..=336 => "devmajor",
        337..=344 => "devminor",
        345..=499 => "prefix",
        _ => "header padding",
    }
}

/// Check the zstd frame header custody writes: the zstd magic, a content checksum, no
/// dictionary, reserved bit clear.
fn frame_problem(head: &[u8]) -> Option<&'static str> {
    if head.len() < 5 {
        return Some("shorter than a zstd frame header");
    }
    if head[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return Some("does not start with a zstd frame (wrong magic, or a skippable frame)");
    }
    let fhd = head[4];
    if fhd & 0x04 == 0 {
        return Some("the frame carries no content checksum");
    }
    if fhd & 0x03 != 0 {
        return Some("the frame names a dictionary");
    }
    if fhd & 0x08 != 0 {
        return Some("a reserved frame header bit is set");
    }
    None
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
        "analysis.json" => Ok(MemberKind::Analysis),
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
pub fn read_archive<R: Read>(mut r: R, limits: &Limits, mut visitor: Option<&mut dyn BlobVisitor>) -> ArchiveScan {
    let mut scan = ArchiveScan::default();
    // Peek at the frame header (custody's is 6 bytes; 5 decide).
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                scan.problems.push(ArchiveProblem::Decompress { at: 0, message: e.to_string() });
                scan.input = digest_of(&head[..got], r);
                return scan;
            }
        }
    }
    if let Some(reason) = frame_problem(&head[..got]) {
        scan.problems.push(ArchiveProblem::Frame { reason });
    }
    let compressed = Rc::new(Cell::new(0u64));
    let counting = Counting { inner: io::Cursor::new(head[..got].to_vec()).chain(r), count: compressed.clone() };
    // Decompression and the input digest run on a background thread (see `pipeline`), member
    // hashing on this one.
    let dec = Decoder::new(counting).window_log_max(limits.window_log_max).single_frame();
    let mut src = Src { r: dec, out: 0, compressed, limits: limits.clone() };
    // Member names seen: blob names by their digest (no string per member), others by name.
    let mut seen_blobs: HashSet<Sha256> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut block = [0u8; 512];
    let mut buf = vec![0u8; 1 << 16];
    let mut index = 0usize;
    let mut clean_end = false;

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
            // End marker: exactly a second zero block, then the end of the stream.
            match src.fill(&mut block) {
                Ok(()) if block.iter().all(|&b| b == 0) => clean_end = check_trailing(&mut src, &mut scan, &mut buf),
                Ok(()) => scan.problems.push(ArchiveProblem::TrailingData),
                Err(stop) => {
                    let p = stop_to_problem(stop, None, &src);
                    scan.problems.push(p);
                }
            }
            break;
        }
        if scan.members >= limits.max_members {
            scan.problems.push(ArchiveProblem::TooManyMembers { limit: limits.max_members });
            break;
        }
        let this = index;
        index += 1;
        // Checksum.
        let stored = numeric(&block[148..156]).ok();
        // The checksum field itself counts as eight spaces. (Summed as the whole block minus
        // that field: a loop without a branch per byte, which the compiler vectorises.)
        let field: u64 = block[148..156].iter().map(|&b| u64::from(b)).sum();
        let sum: u64 = block.iter().map(|&b| u64::from(b)).sum::<u64>() - field + 8 * 32;
        if stored != Some(sum) {
            scan.problems.push(ArchiveProblem::BadHeader { index: this, reason: "header checksum mismatch".into() });
            break; // cannot trust the size field: stop here
        }
        let size = match numeric(&block[124..136]) {
            Ok(s) => s,
            Err(why) => {
                scan.problems.push(ArchiveProblem::BadHeader { index: this, reason: format!("size field is {why}") });
                break;
            }
        };
        let mtime = numeric(&block[136..148]).ok();
        if this == 0 {
            scan.mtime = mtime;
        }
        let name_field = cstr(&block[0..100]);
        let mut raw_name = Vec::new();
        let prefix = cstr(&block[345..500]);
        if &block[257..263] == b"ustar\0" && !prefix.is_empty() {
            raw_name.extend_from_slice(prefix);
            raw_name.push(b'/');
        }
        raw_name.extend_from_slice(name_field);
        let name_lossy = match std::str::from_utf8(&raw_name) {
            // At most 256 bytes (prefix + `/` + name), so under 300 characters: kept as it is.
            Ok(n) if n.len() <= 300 => n.to_owned(),
            _ => String::from_utf8_lossy(&raw_name).chars().take(300).collect::<String>(),
        };
        let typeflag = block[156];
        scan.members += 1;
        if [ANALYSIS_MEMBER, MANIFEST_MEMBER, ENVELOPE_MEMBER].contains(&name_lossy.as_str()) {
            scan.named.push((this, name_lossy.clone()));
        }

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
                        let first = match k {
                            MemberKind::Blob(d) => seen_blobs.insert(d),
                            _ => seen.insert(n.to_string()),
                        };
                        if !first {
                            scan.problems.push(ArchiveProblem::Duplicate { name: n.to_string() });
                        }
                        kind = Some(k);
                    }
                },
            }
            // Every byte of an accepted member's header must be the one custody writes.
            let expected = match (scan.mtime, kind.is_some()) {
                (Some(m), true) => canonical_header(name_field, size, m),
                _ => None,
            };
            match expected {
                Some(h) if h == block => {}
                Some(h) => {
                    let at = (0..512).find(|&i| h[i] != block[i]).unwrap_or(0);
                    scan.problems.push(ArchiveProblem::NonCanonical {
                        index: this,
                        name: name_lossy.clone(),
                        field: field_at(at),
                    });
                }
                None if kind.is_some() => scan.problems.push(ArchiveProblem::NonCanonical {
                    index: this,
                    name: name_lossy.clone(),
                    field: if scan.mtime.is_none() { "mtime" } else { "name" },
                }),
                None => {}
            }
        }
        let limit = match kind {
            Some(MemberKind::Manifest) => limits.max_manifest,
            Some(MemberKind::Envelope) if scan.manifest.is_some() => limits.max_envelope,
            Some(MemberKind::Envelope) => limits.max_buffered_envelope,
            _ => u64::MAX,
        };
        if size > limit {
            scan.problems.push(ArchiveProblem::TooLarge { name: name_lossy.clone(), size, limit });
            break; // refusing to read it; nothing after it can be trusted to be reached in bounded time
        }
        let padded = size.div_ceil(512).saturating_mul(512);
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
            Some(MemberKind::Manifest) if scan.manifest.is_none() => {
                // `size` is at most `max_manifest` here: reserve it all at once (no growth copies).
                let mut data = crate::bundle::dsse::pae_header(MANIFEST_PAYLOAD_TYPE, size);
                let start = data.len();
                data.reserve_exact(size as usize);
                let r = stream(&mut src, size, &mut buf, |chunk| data.extend_from_slice(chunk));
                if r.is_ok() {
                    scan.manifest = Some(ManifestBytes { buf: data, start });
                }
                r
            }
            Some(MemberKind::Analysis) if scan.analysis.is_none() => {
                let mut h = Hasher::new();
                let mut kept = (size <= limits.keep_analysis).then(|| Vec::with_capacity(size as usize));
                let r = stream(&mut src, size, &mut buf, |chunk| {
                    h.update(chunk);
                    if let Some(k) = kept.as_mut() {
                        k.extend_from_slice(chunk);
                    }
                });
                if r.is_ok() {
                    scan.analysis = Some(AnalysisMember { index: this, sha256: h.finish(), size, bytes: kept });
                }
                r
            }
            Some(MemberKind::Envelope) if scan.envelope.is_none() => {
                let (r, member) = match &scan.manifest {
                    Some(m) => {
                        let mut check = EnvelopeStream::new(m.bytes(), MANIFEST_PAYLOAD_TYPE, size);
                        let r = stream(&mut src, size, &mut buf, |chunk| check.feed(chunk));
                        (r, check.finish())
                    }
                    None => {
                        let mut data = Vec::with_capacity(size as usize);
                        let r = stream(&mut src, size, &mut buf, |chunk| data.extend_from_slice(chunk));
                        (r, EnvelopeMember::Buffered(data))
                    }
                };
                if r.is_ok() {
                    scan.envelope = Some(member);
                }
                r
            }
            Some(MemberKind::Manifest | MemberKind::Envelope | MemberKind::Analysis) => {
                stream(&mut src, size, &mut buf, |_| {})
            }
            None => stream(&mut src, size, &mut buf, |_| {}),
        };
        let result = result.and_then(|_| skip(&mut src, padded - size));
        match result {
            Err(stop) => {
                let p = stop_to_problem(stop, Some(name_lossy), &src);
                scan.problems.push(p);
                break;
            }
            Ok(false) => {
                scan.problems.push(ArchiveProblem::NonCanonical { index: this, name: name_lossy, field: "padding" })
            }
            Ok(true) => {}
        }
    }
    scan.decompressed_bytes = src.out;
    scan.compressed_bytes = src.compressed.get();
    let end = src.r.finish();
    scan.input = end.digest;
    // The frame ended with the archive; nothing may follow it in the file.
    if clean_end && end.trailing > 0 {
        scan.problems.push(ArchiveProblem::TrailingCompressed { bytes: end.trailing });
    }
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

/// Read `n` (< 512) padding bytes; `Ok(false)` if any is not zero.
fn skip<R: Read>(src: &mut Src<R>, n: u64) -> Result<bool, Stop> {
    let mut pad = [0u8; 512];
    let pad = &mut pad[..n.min(512) as usize];
    src.fill(pad)?;
    Ok(pad.iter().all(|&b| b == 0))
}

/// After the end marker the decompressed stream must end. Returns true when it does.
fn check_trailing<R: Read>(src: &mut Src<R>, scan: &mut ArchiveScan, buf: &mut [u8]) -> bool {
    // Read a little past the marker: any byte at all is trailing data (custody writes none).
    loop {
        match src.r.read(&mut buf[..512]) {
            Ok(0) => return true,
            Ok(_) => {
                scan.problems.push(ArchiveProblem::TrailingData);
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                scan.problems.push(ArchiveProblem::Decompress { at: src.out, message: e.to_string() });
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header the writer builds (as `bundle::write::blob_header` does, with the tar crate).
    fn writer_header(name: &str, size: u64, mtime: u64) -> [u8; 512] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(size);
        h.set_mode(0o444);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_username("custody").unwrap();
        h.set_groupname("custody").unwrap();
        h.set_cksum();
        *h.as_bytes()
    }

    #[test]
    fn canonical_header_is_what_the_writer_emits_including_base256_sizes() {
        let blob = format!("blobs/sha256/{}", "ab".repeat(32));
        for name in [blob.as_str(), "analysis.json", "manifest.json", "manifest.dsse.json"] {
            for size in [0, 1, 511, 512, 9, 8_589_934_591, 8_589_934_592, 10 << 30, u64::MAX >> 1] {
                for mtime in [0, 1_763_800_000] {
                    let w = writer_header(name, size, mtime);
                    assert_eq!(canonical_header(name.as_bytes(), size, mtime), Some(w), "{name} {size} {mtime}");
                    assert_eq!(numeric(&w[124..136]), Ok(size));
                }
            }
        }
    }

    #[test]
    fn numeric_refuses_negative_and_out_of_range_base256() {
        assert_eq!(numeric(&[0xff; 12]), Err("negative (base-256)"));
        let mut f = [0u8; 12];
        f[0] = 0x81;
        assert!(numeric(&f).is_err());
        assert_eq!(numeric(b"00000000017\0"), Ok(15));
        assert!(numeric(b"0000000001z\0").is_err());
    }
}
