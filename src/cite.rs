//! Citations resolved to the exact sealed bytes they point at.
//!
//! A [`Citation`] of a bundle's `analysis.json` names a sealed file (its path and SHA-256) and
//! a byte range of it: of the file as sealed, or — `decompressed` — of the stream the analysis
//! read (a gzip or zstd file decompressed, then a UTF-16 file with a byte-order mark
//! transcoded to UTF-8, the mark dropped: the same steps as the analysis' scanner, with the
//! same functions). [`resolve`] reads the bundle's archive once more and returns, for each
//! citation, those bytes.
//!
//! The bundle must have been verified (its manifest is the verified one): the blobs are
//! hashed again while they are read, and a blob whose bytes no longer have the digest its
//! name claims (the file was swapped since verification) resolves nothing — the whole call
//! fails. A citation must name a file the manifest lists with that digest; one that does not
//! is an error, never a guess. Memory: only the cited ranges are kept of a file cited as
//! sealed; a file cited in its decompressed stream is held whole (compressed) and decoded up
//! to [`MAX_DECODED`] bytes.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use crate::bundle::manifest::Manifest;
use crate::collect::analysis::Citation;
use crate::collect::analyze::formats::{sniff_compression, sniff_utf16, utf16_to_utf8, Compression};
use crate::digest::Sha256;
use crate::read::archive::{read_archive, BlobVisitor, Limits};

/// Largest decoded stream (decompressed, transcoded) read to resolve a citation into it.
pub const MAX_DECODED: u64 = 512 << 20;
/// Largest compressed file held to resolve citations into its decoded stream.
pub const MAX_HELD: u64 = 512 << 20;
/// Most bytes copied out for all citations of one call together (a hostile analysis may cite
/// one large range many times).
pub const MAX_RESOLVED: u64 = 1 << 30;

/// Why citations could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CiteError {
    /// The bundle file could not be opened.
    #[error("cannot open bundle {path}")]
    Open {
        /// The bundle.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The citation names a file the verified manifest does not list with that digest.
    #[error("citation of {path} (SHA-256 {sha256}) names no file of the verified manifest: the analysis does not belong to this bundle")]
    NotInManifest {
        /// The cited path.
        path: String,
        /// The cited digest.
        sha256: String,
    },
    /// The range is past the end of the (decoded) file.
    #[error("citation of {path} at {offset}+{len} is past the end of its {size} bytes{}", if *.decompressed { " (decoded)" } else { "" })]
    OutOfRange {
        /// The cited path.
        path: String,
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
        /// The (decoded) size.
        size: u64,
        /// Whether the range is in the decoded stream.
        decompressed: bool,
    },
    /// A cited blob was not found in the archive, or its bytes no longer have its digest.
    #[error("blob {0} is missing from the archive or changed since verification: verify the bundle again")]
    Changed(String),
    /// The cited ranges together are larger than `MAX_RESOLVED`.
    #[error("the cited records add up to more than {0} bytes: resolve fewer citations at once (filter the timeline)")]
    TooMuch(u64),
    /// The decoded stream is larger than custody decodes to resolve a citation.
    #[error("{path}: its decoded stream is larger than the {limit} bytes read to resolve citations into it")]
    TooLarge {
        /// The cited path.
        path: String,
        /// The bound.
        limit: u64,
    },
    /// The records were to be read from another bundle than the one whose analysis cites them.
    #[error("the records are in {wanted}, not in {given}: open {wanted} to read them (a supplement's records are in its original)")]
    OtherBundle {
        /// The bundle the citations point into.
        wanted: String,
        /// The bundle given.
        given: String,
    },
    /// The file cited in its decoded stream could not be decoded.
    #[error("{path}: cannot decode it as the analysis did")]
    Decode {
        /// The cited path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The bytes of each citation, in the order given (`out[i]` for `citations[i]`), read from the
/// verified bundle file `bundle` whose manifest is `manifest`.
pub fn resolve(bundle: &Path, manifest: &Manifest, citations: &[&Citation]) -> Result<Vec<Vec<u8>>, CiteError> {
    resolve_with(bundle, manifest, citations, &Limits::default())
}

/// [`resolve`], reading the archive under `limits` (those it was verified under).
pub fn resolve_with(
    bundle: &Path,
    manifest: &Manifest,
    citations: &[&Citation],
    limits: &Limits,
) -> Result<Vec<Vec<u8>>, CiteError> {
    // Each citation must name a file of the manifest, by path and digest.
    let mut wanted: HashMap<Sha256, Wanted> = HashMap::new();
    for (i, c) in citations.iter().enumerate() {
        let sha = manifest
            .entries
            .iter()
            .find(|e| e.path == c.path && e.sha256.hex() == c.sha256)
            .map(|e| e.sha256)
            .ok_or_else(|| CiteError::NotInManifest { path: c.path.clone(), sha256: c.sha256.clone() })?;
        let w = wanted.entry(sha).or_default();
        if c.decompressed {
            w.decoded.push(i);
        } else {
            w.raw.push(i);
        }
    }
    let total = citations.iter().fold(0u64, |t, c| t.saturating_add(c.len));
    if total > MAX_RESOLVED {
        return Err(CiteError::TooMuch(MAX_RESOLVED));
    }
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); citations.len()];
    if wanted.is_empty() {
        return Ok(out);
    }
    let file = std::fs::File::open(bundle).map_err(|source| CiteError::Open { path: bundle.into(), source })?;
    let mut v = Collector {
        citations,
        wanted: &wanted,
        current: None,
        pos: 0,
        out: &mut out,
        held: BTreeMap::new(),
        done: HashMap::new(),
        too_large: None,
    };
    read_archive(std::io::BufReader::new(file), limits, Some(&mut v));
    if let Some(p) = v.too_large.take() {
        return Err(CiteError::TooLarge { path: p, limit: MAX_HELD });
    }
    let held = std::mem::take(&mut v.held);
    let done = std::mem::take(&mut v.done);
    for sha in wanted.keys() {
        if done.get(sha) != Some(&true) {
            return Err(CiteError::Changed(sha.hex()));
        }
    }
    // Raw ranges were filled while streaming; check they were complete.
    for (sha, w) in &wanted {
        for &i in &w.raw {
            let c = citations[i];
            let size = manifest.entries.iter().find(|e| e.sha256 == *sha).map(|e| e.size).unwrap_or(0);
            if c.offset.checked_add(c.len).map_or(true, |end| end > size) {
                return Err(CiteError::OutOfRange {
                    path: c.path.clone(),
                    offset: c.offset,
                    len: c.len,
                    size,
                    decompressed: false,
                });
            }
        }
    }
    for (sha, bytes) in held {
        let Some(w) = wanted.get(&sha) else { continue };
        let Some(&first) = w.decoded.first() else { continue };
        let path = citations[first].path.clone();
        let decoded = decode(&bytes, &path)?;
        for &i in &w.decoded {
            let c = citations[i];
            let range = usize::try_from(c.offset)
                .ok()
                .zip(usize::try_from(c.len).ok())
                .and_then(|(o, l)| Some(o..o.checked_add(l)?))
                .filter(|r| r.end <= decoded.len());
            match range {
                Some(r) => out[i] = decoded[r].to_vec(),
                None => {
                    return Err(CiteError::OutOfRange {
                        path: c.path.clone(),
                        offset: c.offset,
                        len: c.len,
                        size: decoded.len() as u64,
                        decompressed: true,
                    })
                }
            }
        }
    }
    Ok(out)
}

/// The stream the analysis read of a file: decompressed (gzip, zstd), then UTF-16 with a
/// byte-order mark transcoded to UTF-8 (the mark dropped).
fn decode(raw: &[u8], path: &str) -> Result<Vec<u8>, CiteError> {
    let err = |source| CiteError::Decode { path: path.to_string(), source };
    let mut dec = Vec::new();
    let limit = MAX_DECODED.saturating_add(1);
    match sniff_compression(raw) {
        None => dec.extend_from_slice(raw),
        Some(Compression::Gzip) => {
            flate2::read::MultiGzDecoder::new(raw).take(limit).read_to_end(&mut dec).map_err(err)?;
        }
        Some(Compression::Zstd) => {
            zstd::stream::read::Decoder::new(raw).map_err(err)?.take(limit).read_to_end(&mut dec).map_err(err)?;
        }
    }
    if dec.len() as u64 > MAX_DECODED {
        return Err(CiteError::TooLarge { path: path.to_string(), limit: MAX_DECODED });
    }
    Ok(match sniff_utf16(&dec) {
        Some(enc) => utf16_to_utf8(dec.get(2..).unwrap_or_default(), enc),
        None => dec,
    })
}

/// The citations (by index) into one blob.
#[derive(Default)]
struct Wanted {
    raw: Vec<usize>,
    decoded: Vec<usize>,
}

/// Streams the archive's blobs, keeping the cited ranges (and the files cited decoded).
struct Collector<'a> {
    citations: &'a [&'a Citation],
    wanted: &'a HashMap<Sha256, Wanted>,
    current: Option<Sha256>,
    pos: u64,
    out: &'a mut Vec<Vec<u8>>,
    held: BTreeMap<Sha256, Vec<u8>>,
    /// Blob digest → whether its streamed bytes had that digest.
    done: HashMap<Sha256, bool>,
    too_large: Option<String>,
}

impl BlobVisitor for Collector<'_> {
    fn begin(&mut self, claimed: &Sha256, size: u64) {
        self.pos = 0;
        // A blob met twice (a hostile archive) is read once: the first, as the verifier does.
        self.current = (self.wanted.contains_key(claimed) && !self.done.contains_key(claimed)).then_some(*claimed);
        if let Some(c) = self.current {
            for &i in &self.wanted[&c].raw {
                self.out[i].clear();
            }
            if !self.wanted[&c].decoded.is_empty() {
                if size > MAX_HELD {
                    self.too_large = Some(self.citations[self.wanted[&c].decoded[0]].path.clone());
                } else {
                    self.held.insert(c, Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
                }
            }
        }
    }

    fn chunk(&mut self, data: &[u8]) {
        let Some(c) = self.current else { return };
        let start = self.pos;
        let end = start.saturating_add(data.len() as u64);
        for &i in &self.wanted[&c].raw {
            let cit = self.citations[i];
            let (lo, hi) = (cit.offset.max(start), cit.offset.saturating_add(cit.len).min(end));
            if lo < hi {
                let a = usize::try_from(lo - start).unwrap_or(usize::MAX);
                let b = usize::try_from(hi - start).unwrap_or(usize::MAX);
                if let Some(s) = data.get(a..b) {
                    self.out[i].extend_from_slice(s);
                }
            }
        }
        if let Some(h) = self.held.get_mut(&c) {
            h.extend_from_slice(data);
        }
        self.pos = end;
    }

    fn end(&mut self, claimed: &Sha256, actual: Option<Sha256>) {
        if self.current.as_ref() == Some(claimed) {
            let ok = actual.as_ref() == Some(claimed);
            self.done.insert(*claimed, ok);
            if !ok {
                self.held.remove(claimed);
            }
        }
        self.current = None;
    }
}
