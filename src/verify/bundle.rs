//! [`check_bundle`]: read one bundle stream and run every check on it, in order, each adding to
//! one [`Findings`] collector. The order matters only where a check needs what an earlier one
//! parsed: the archive is read first (bounded, strict), the envelope and manifest are parsed
//! into checked types before any crypto, then the signature, the analysis member and the
//! contents (blobs, entries, journal, Merkle root) are checked. The ledger checks need a
//! store and run in [`super::store`].

use std::io::Read;

use super::checks::{analysis, archive, contents, envelope, signature};
use super::findings::Findings;
use super::report::{Finding, SignerInfo};
use super::{Options, Trust};
use crate::bundle::manifest::Manifest;
use crate::digest::BundleId;
use crate::read::archive::{read_archive, BlobVisitor};

/// The result of reading and checking one bundle stream.
#[derive(Debug)]
pub struct BundleCheck {
    /// Every finding.
    pub findings: Vec<Finding>,
    /// Checks that ran.
    pub ran: Vec<&'static str>,
    /// Pass details.
    pub details: Vec<(&'static str, String)>,
    /// The manifest, if it parsed.
    pub manifest: Option<Manifest>,
    /// The signer.
    pub signer: Option<SignerInfo>,
    /// SHA-256 of the bundle bytes.
    pub digest: BundleId,
    /// Size in bytes.
    pub size: u64,
    /// The envelope's signature bytes, when the envelope parsed: the message an RFC 3161
    /// token over this bundle covers (`crate::tsa`).
    pub signature: Option<[u8; 64]>,
}

/// Read and check one bundle from `r` (the `.tar.zst` bytes).
pub fn check_bundle<R: Read>(
    r: R,
    trust: &Trust,
    opts: &Options,
    visitor: Option<&mut dyn BlobVisitor>,
) -> BundleCheck {
    // The reader hashes the whole file (on its decompression thread), to its end.
    let mut scan = read_archive(r, &opts.limits, visitor);
    let digest = BundleId(scan.input.sha256);
    let size = scan.input.bytes;
    let mut fs = Findings::default();

    archive::check_digest(&digest, opts, &mut fs);
    archive::check_structure(&scan, size, &mut fs);
    let man_bytes = scan.manifest.take();
    let parsed = envelope::parse(scan.envelope.take(), man_bytes.as_ref(), &mut fs);
    if let Some(m) = &parsed.manifest {
        archive::check_mtime(m, scan.mtime, &mut fs);
    }
    envelope::check_binding(&parsed, man_bytes.as_ref(), &mut fs);
    let signature = parsed.envelope.as_ref().map(|e| e.sig);
    let signer = parsed.envelope.as_ref().map(|e| {
        signature::check(e, parsed.manifest.as_ref(), man_bytes.as_ref(), parsed.payload_is_manifest, trust, &mut fs)
    });
    // The manifest bytes are held only until the signature is checked.
    drop(man_bytes);
    let mut manifest = parsed.manifest;
    let manifest_cost = parsed.manifest_cost;
    let analysis_bytes = analysis::check(manifest.as_ref(), scan.analysis.take(), opts.limits.keep_analysis, &mut fs);
    contents::check(manifest.as_ref(), &scan, &mut fs);
    if let (Some(m), Some(bytes)) = (manifest.as_mut(), analysis_bytes) {
        analysis::attach(m, manifest_cost, bytes, &mut fs);
    }
    BundleCheck { findings: fs.list, ran: fs.ran, details: fs.details, manifest, signer, digest, size, signature }
}
