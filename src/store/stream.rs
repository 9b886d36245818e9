//! Sealing straight into S3: the sealer's output feeds a multipart upload as it is produced.
//!
//! **Keys.** A multipart upload's key is fixed when it starts, and a bundle's name (its
//! digest) is known only when sealing ends. So a bundle larger than one part is uploaded in
//! one stream to a *provisional* key, `uploads/<start>-<32 random hex>.partial`, with no lock
//! headers, and made final by a server-side copy: a second multipart upload of
//! `bundles/<hex>.tar.zst` whose parts are `UploadPartCopy` ranges of the provisional object
//! (pinned by version and ETag), completed with `If-None-Match: *` where the server honours
//! it ([`Store::completes_conditionally`]). The name is checked free before the provisional
//! upload is completed, and the provisional object is deleted right after the copy, before
//! the copy's versions are read. Not one `CopyObject` with `If-None-Match: *`: moto (5.2.1)
//! ignores the condition on a copy and writes over an existing object. Readers
//! only ever look under `bundles/` and `ledger/`: nothing under `uploads/` is a bundle, so an
//! interrupted run leaves nothing a reader could take for one, and a bundle appears under
//! its name only complete (a completion is atomic). A bundle that fits in one part is held in
//! memory and written with one create-only PUT, as before.
//!
//! Why a copy and not a key that is not the digest plus an index object: the bundle's name
//! stays its content's digest, so every reader, the verifier's key rules and stores written
//! before this are unchanged; the cost is a server-side copy (no bytes through custody; on
//! moto, which copies in Python, ~6 s per 288 MiB, docs/performance.md)
//! and, where the bucket's default retention locks every write, a provisional object that
//! cannot be deleted until its retention ends (reported, never an error; docs/storage.md).
//!
//! **Memory.** Parts are [`PART_SIZE`] bytes (doubling every 1000 parts, S3 allows 10 000),
//! at most [`PARTS_IN_FLIGHT`] uploading, one queued and one being filled: about 40 MiB for
//! bundles up to 8 GiB.
//!
//! **Integrity.** Every part carries its SHA-256 (`x-amz-checksum-sha256`): a server that
//! verifies checksums refuses a part corrupted on the way ([`StoreError::ChecksumRefused`]).
//! Where the server does not verify them ([`Store::server_verifies_checksums`], moto), the
//! provisional object is read back and hashed before it is copied, so corrupted bytes never
//! reach a bundle's name. A one-part copy's checksum, when the server returns it, is the
//! SHA-256 of the whole object: it must be the bundle digest.
//!
//! **Crash safety.** An upload that fails or is abandoned (the seal failed) is aborted. A
//! killed run leaves an incomplete upload (invisible to readers; aborted by the next preserve
//! or `store repair` once stale, [`Store::sweep_uploads`], or by an
//! `AbortIncompleteMultipartUpload` lifecycle rule) or, in a short window, a provisional
//! object under `uploads/` (swept the same way). Nothing is in the ledger until the bundle is
//! stored under its name.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt as _;
use object_store::HeaderMap;
use tokio::sync::{mpsc, oneshot};

use super::lock::{self, S3Admin};
use super::multipart::{Completed, Part, PartAnswer};
use super::{bundle_key, PutOutcome, Store, StoreError};
use crate::digest::{BundleId, Sha256};

/// The size of a part (the first 1000; then it doubles every 1000 parts).
pub const PART_SIZE: usize = 8 << 20;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;
/// Parts uploading at once.
pub const PARTS_IN_FLIGHT: usize = 3;
/// Where provisional uploads live (never read as bundles).
pub const UPLOADS_PREFIX: &str = "uploads/";
/// A provisional upload's suffix.
pub const UPLOAD_SUFFIX: &str = ".partial";
/// S3's largest part, and so the largest range one `UploadPartCopy` copies.
const COPY_PART_MAX: u64 = 5 << 30;
/// S3's most parts in one upload.
const MAX_PARTS: u32 = 10_000;

/// The size of part `n` (1-based): `base`, doubled every 1000 parts (10 000 parts of 8 MiB
/// would stop a bundle at 78 GiB; these hold 8 TiB, beyond S3's 5 TiB object limit), at most
/// 5 GiB.
fn part_size(base: usize, n: u32) -> usize {
    let doublings = (n.saturating_sub(1) / 1000).min(16);
    base.saturating_mul(1usize << doublings).min(COPY_PART_MAX as usize)
}

/// The sealer's output while streaming: a [`Write`] that hands each full part to the
/// uploader (blocking while [`PARTS_IN_FLIGHT`] parts are uploading and one is queued). It
/// must be used from a blocking thread (the sealer's). Dropping it hands the last, partial
/// part over; whether the upload is then completed or aborted is the [`StreamUpload`]'s call.
pub struct StreamWriter {
    buf: Vec<u8>,
    base: usize,
    /// The number `buf` will have as a part.
    next_part: u32,
    tx: Option<mpsc::Sender<Bytes>>,
    tail: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Write for StreamWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut size = part_size(self.base, self.next_part);
        if self.buf.len() >= size {
            if self.next_part >= MAX_PARTS {
                return Err(std::io::Error::other(
                    "the bundle is larger than an S3 multipart upload can hold (10 000 parts)",
                ));
            }
            let next = Vec::with_capacity(part_size(self.base, self.next_part + 1));
            let full = std::mem::replace(&mut self.buf, next);
            let tx = self.tx.as_ref().ok_or_else(|| std::io::Error::other("the upload is closed"))?;
            tx.blocking_send(Bytes::from(full))
                .map_err(|_| std::io::Error::other("the upload to the store stopped (its error follows)"))?;
            self.next_part += 1;
            size = part_size(self.base, self.next_part);
        }
        let n = data.len().min(size - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        let tail = std::mem::take(&mut self.buf);
        *self.tail.lock().unwrap_or_else(|e| e.into_inner()) = Some(tail);
        self.tx = None; // closes the channel: the uploader takes the tail
    }
}

/// What the uploader holds once the sealer's output has all gone up.
#[derive(Debug)]
pub(crate) enum Uploaded {
    /// The whole bundle fits in one part: not uploaded yet (one create-only PUT).
    Small(Vec<u8>),
    /// Completed under its provisional key.
    Provisional(Provisional),
}

/// A completed provisional upload.
#[derive(Debug)]
pub(crate) struct Provisional {
    key: String,
    etag: String,
    version: Option<String>,
    size: u64,
}

/// The uploading side of a stream ([`Store::start_stream`]): [`StreamUpload::finish`] it
/// once the seal succeeded ([`Store::put_streamed`]), [`StreamUpload::abandon`] it otherwise.
pub struct StreamUpload {
    decide: Option<oneshot::Sender<bool>>,
    task: tokio::task::JoinHandle<Result<Uploaded, StoreError>>,
}

impl StreamUpload {
    async fn finish(mut self) -> Result<Uploaded, StoreError> {
        if let Some(d) = self.decide.take() {
            let _ = d.send(true);
        }
        (&mut self.task).await.map_err(|_| StoreError::UploadTask)?
    }

    /// The seal failed: abort the upload. Returns the upload's own error, if it failed first
    /// (the seal's error is then only its consequence).
    pub async fn abandon(mut self) -> Option<StoreError> {
        if let Some(d) = self.decide.take() {
            let _ = d.send(false);
        }
        match (&mut self.task).await {
            Ok(Err(StoreError::Abandoned)) | Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(StoreError::UploadTask),
        }
    }
}

/// A streamed bundle, stored.
#[derive(Debug)]
pub struct StreamPut {
    /// Created, or already there.
    pub outcome: PutOutcome,
    /// What the run left behind that a reader should know of (a provisional object the
    /// server would not delete).
    pub notes: Vec<String>,
}

/// What [`Store::copy_to_name`] did.
enum Copied {
    /// Another writer had stored the bundle under its name first (its bytes confirmed).
    Existing(PutOutcome),
    /// The copy created the name (`version`, when the server named one).
    Created { version: Option<String> },
}

impl Store {
    /// Does a preserve into this store seal straight into it ([`Store::start_stream`])? S3
    /// stores; the others seal into a staging file first ([`Store::put_bundle`]).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn streams(&self) -> bool {
        self.admin.is_some()
    }

    /// Start streaming a bundle: the writer for the sealer, and the upload it feeds (started
    /// on the current Tokio runtime). Only for stores that [`Store::streams`].
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn start_stream(&self) -> Result<(StreamWriter, StreamUpload), StoreError> {
        let admin = self.admin.clone().ok_or(StoreError::NotStreaming)?;
        let base = self.part_size;
        let (tx, rx) = mpsc::channel(1);
        let (decide_tx, decide_rx) = oneshot::channel();
        let tail = Arc::new(Mutex::new(None));
        let writer =
            StreamWriter { buf: Vec::with_capacity(base), base, next_part: 1, tx: Some(tx), tail: tail.clone() };
        let task = tokio::spawn(upload(admin, rx, tail, decide_rx));
        Ok((writer, StreamUpload { decide: Some(decide_tx), task }))
    }

    /// Store a streamed bundle under its name, create-only: `id` and `size` are what the seal
    /// says it wrote. An identical bundle already there is a success; the provisional
    /// object is deleted whatever happens.
    ///
    /// The order keeps the bucket small while it is listed: the name is checked before the
    /// provisional upload is completed (an incomplete upload's parts are not objects), and the
    /// provisional object is deleted right after the copy, before the copy's version history
    /// is read. Listing a bucket's versions costs moto a deep copy of every object in it
    /// (docs/performance.md); on S3 the requests are the same ones, in another order.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn put_streamed(&self, upload: StreamUpload, id: &BundleId, size: u64) -> Result<StreamPut, StoreError> {
        let key = bundle_key(id);
        let admin = self.admin.clone().ok_or(StoreError::NotStreaming)?;
        // Checked while the last parts may still be uploading. A bundle stored since is
        // caught by the conditional completion, or by the first-version check after it.
        let taken = match self.reads_history().await {
            true => self.object(&key).await.map(|o| o.is_some()),
            false => self.head(&key).await.map(|h| h.is_some()),
        };
        match taken {
            Ok(false) => {}
            Ok(true) => {
                // Nothing of this run is kept: the upload is aborted before it becomes an
                // object (its own error, if it failed, no longer matters).
                let _ = upload.abandon().await;
                let outcome = self.confirm_existing_bundle(&key, id).await?;
                return Ok(StreamPut { outcome, notes: Vec::new() });
            }
            Err(e) => {
                let _ = upload.abandon().await;
                return Err(e);
            }
        }
        match upload.finish().await? {
            Uploaded::Small(bytes) => {
                if bytes.len() as u64 != size {
                    return Err(StoreError::Corrupted {
                        key,
                        sent: id.digest().hex(),
                        got: format!("{} bytes streamed, {size} sealed", bytes.len()),
                    });
                }
                // The name was just listed free: its versions are read after writing only.
                let outcome = match self.create_listed(&key, bytes).await? {
                    PutOutcome::Taken => self.confirm_existing_bundle(&key, id).await?,
                    o => o,
                };
                Ok(StreamPut { outcome, notes: Vec::new() })
            }
            Uploaded::Provisional(p) => {
                // Tests stop here to kill a run between the provisional upload and the copy.
                if std::env::var_os("CUSTODY_TEST_PAUSE").is_some_and(|v| v == "provisional") {
                    tokio::task::spawn_blocking(|| crate::test_pause("provisional")).await.ok();
                }
                let copied = self.copy_to_name(&admin, &p, &key, id, size).await;
                let mut notes = Vec::new();
                match admin.delete_object(&p.key, p.version.as_deref()).await {
                    Ok(true) => {}
                    Ok(false) => notes.push(format!(
                        "the provisional upload {} could not be deleted (the server refused: locked by the bucket's default retention, or s3:DeleteObjectVersion not granted); it is not a bundle and no reader takes it for one; delete it once its retention ends",
                        self.location(&p.key)
                    )),
                    Err(e) => notes.push(format!(
                        "the provisional upload {} could not be deleted ({}); it is not a bundle and no reader takes it for one; the next preserve or `custody store repair` retries",
                        self.location(&p.key),
                        crate::error_text(&e)
                    )),
                }
                let outcome = match copied? {
                    Copied::Existing(outcome) => outcome,
                    Copied::Created { version } => self.after_multipart(&key, id, version.as_deref()).await?,
                };
                Ok(StreamPut { outcome, notes })
            }
        }
    }

    /// Copy the provisional object `p` to `key` create-only, after reading it back where the
    /// server does not verify checksums. The caller deletes `p`, then checks and locks the
    /// copy ([`Store::after_multipart`]).
    async fn copy_to_name(
        &self,
        admin: &S3Admin,
        p: &Provisional,
        key: &str,
        id: &BundleId,
        size: u64,
    ) -> Result<Copied, StoreError> {
        if p.size != size {
            return Err(StoreError::Corrupted {
                key: p.key.clone(),
                sent: id.digest().hex(),
                got: format!("{} bytes streamed, {size} sealed", p.size),
            });
        }
        // Before the copy: corrupted bytes must never reach the bundle's name.
        if !self.server_verifies_checksums().await {
            self.read_back(&p.key, id.digest(), p.version.as_deref()).await?;
        }
        let create_only = self.completes_conditionally().await;
        if !create_only {
            // Nothing but this check guards an unconditional completion: done again just
            // before the copy, so the window another writer's object could be replaced in
            // stays as short as before (the check before the provisional completion is long
            // past).
            let taken = match self.reads_history().await {
                true => self.object(key).await?.is_some(),
                false => self.head(key).await?.is_some(),
            };
            if taken {
                return self.confirm_existing_bundle(key, id).await.map(Copied::Existing);
            }
        }
        let headers = lock::write_headers(self.retention.as_ref(), self.legal_hold, self.opened_at);
        let upload = admin.create_upload(key, headers).await?;
        let mut parts: Vec<Part> = Vec::new();
        let mut start = 0u64;
        while start < p.size {
            let end = start.saturating_add(COPY_PART_MAX).min(p.size) - 1;
            let number = parts.len() as u32 + 1;
            let etag = (!p.etag.is_empty()).then_some(p.etag.as_str());
            match admin.upload_part_copy(key, &upload, number, &p.key, p.version.as_deref(), etag, (start, end)).await {
                Ok(part) => parts.push(part),
                Err(e) => {
                    let _ = admin.abort_upload(key, &upload).await;
                    return Err(e.into());
                }
            }
            start = end + 1;
        }
        let version = match admin.complete_upload(key, &upload, &parts, create_only).await {
            Ok(Completed::Done { version, .. }) => version,
            Ok(Completed::Exists) => {
                // Another writer stored an object under this name first: it is this bundle
                // only if its bytes say so; it is never overwritten.
                let _ = admin.abort_upload(key, &upload).await;
                return self.confirm_existing_bundle(key, id).await.map(Copied::Existing);
            }
            Err(e) => {
                let _ = admin.abort_upload(key, &upload).await;
                return Err(e.into());
            }
        };
        // A one-part copy's server-computed checksum is the SHA-256 of the whole object.
        if let [only] = parts.as_slice() {
            if let Some(c) = &only.checksum {
                check_whole_checksum(key, id, c)?;
            }
        }
        Ok(Copied::Created { version })
    }

    /// Does the server honour `If-None-Match: *` on `CompleteMultipartUpload`? Probed once
    /// per store handle (`S3Admin::probe_conditional_complete`); where it does not (or the
    /// probe fails), the key is checked just before completing: two writers racing the same
    /// bundle can then both complete, and the second writes a later version of identical
    /// bytes (docs/storage.md).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn completes_conditionally(&self) -> bool {
        let Some(a) = &self.admin else { return false };
        if let Some(v) = self.conditional_complete.get() {
            return *v;
        }
        let v = matches!(a.probe_conditional_complete().await, Ok(super::multipart::ConditionalProbe::Honoured));
        *self.conditional_complete.get_or_init(|| v)
    }

    /// Abort the incomplete uploads under `uploads/` started more than `older_than` ago, and
    /// delete the provisional objects there older than that: what killed runs left. Returns
    /// what was removed, and what could not be (a provisional object locked by the bucket's
    /// default retention), as sentences. Nothing for stores that do not stream.
    pub async fn sweep_uploads(&self, older_than: std::time::Duration) -> (Vec<String>, Vec<String>) {
        let (mut removed, mut kept) = (Vec::new(), Vec::new());
        let Some(admin) = &self.admin else { return (removed, kept) };
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        if let Ok(uploads) = admin.list_uploads(UPLOADS_PREFIX, 1000).await {
            for u in uploads.into_iter().filter(|u| started_at(&u.key).is_some_and(|t| t <= cutoff)) {
                if admin.abort_upload(&u.key, &u.upload_id).await.is_ok() {
                    removed.push(format!(
                        "aborted the incomplete upload of {} left by an interrupted run",
                        self.location(&u.key)
                    ));
                }
            }
        }
        // A plain listing first (cheap): the version history is read only when a provisional
        // object is old enough to go.
        let stale = self
            .list_raw(UPLOADS_PREFIX)
            .await
            .unwrap_or_default()
            .iter()
            .any(|l| started_at(&l.key).is_some_and(|t| t <= cutoff));
        if !stale {
            return (removed, kept);
        }
        let all = |_: &str| true;
        let listed = match self.reads_history().await {
            true => admin.list_versions(UPLOADS_PREFIX, false, &all).await.ok(),
            false => self.list_objects(UPLOADS_PREFIX, &all).await.ok(),
        };
        for o in listed.map(|l| l.objects).unwrap_or_default() {
            if !started_at(&o.key).is_some_and(|t| t <= cutoff) {
                continue;
            }
            let version = match &o.at {
                super::versions::ReadAt::Version(v) => Some(v.as_str()),
                _ => None,
            };
            match admin.delete_object(&o.key, version).await {
                Ok(true) => removed.push(format!(
                    "deleted the provisional upload {} left by an interrupted run (never a bundle)",
                    self.location(&o.key)
                )),
                _ => kept.push(format!(
                    "the provisional upload {} left by an interrupted run cannot be deleted (locked by the bucket's default retention?); it is not a bundle and no reader takes it for one",
                    self.location(&o.key)
                )),
            }
        }
        (removed, kept)
    }
}

/// A server-computed SHA-256 of the whole object at `key` (base64) must be bundle `id`'s digest.
fn check_whole_checksum(key: &str, id: &BundleId, got: &str) -> Result<(), StoreError> {
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD.encode(id.digest().0);
    match got == want {
        true => Ok(()),
        false => Err(StoreError::Corrupted { key: key.into(), sent: want, got: got.into() }),
    }
}

/// The uploader: waits for the first full part (a bundle that ends before is
/// [`Uploaded::Small`]), then uploads parts as they come, at most [`PARTS_IN_FLIGHT`] at
/// once, and the tail; completes the provisional upload if told to, aborts it otherwise or
/// on any error.
async fn upload(
    admin: Arc<S3Admin>,
    mut rx: mpsc::Receiver<Bytes>,
    tail: Arc<Mutex<Option<Vec<u8>>>>,
    decide: oneshot::Receiver<bool>,
) -> Result<Uploaded, StoreError> {
    let take_tail = || tail.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    let Some(first) = rx.recv().await else {
        return match decide.await {
            Ok(true) => Ok(Uploaded::Small(take_tail())),
            _ => Err(StoreError::Abandoned),
        };
    };
    let key = provisional_key();
    let id = admin.create_upload(&key, HeaderMap::new()).await?;
    match stream_parts(&admin, &key, &id, first, &mut rx, take_tail, decide).await {
        Ok(u) => Ok(u),
        Err(e) => {
            drop(rx); // the writer stops at its next part
            let _ = admin.abort_upload(&key, &id).await;
            Err(e)
        }
    }
}

async fn stream_parts(
    admin: &Arc<S3Admin>,
    key: &str,
    id: &str,
    first: Bytes,
    rx: &mut mpsc::Receiver<Bytes>,
    take_tail: impl Fn() -> Vec<u8>,
    decide: oneshot::Receiver<bool>,
) -> Result<Uploaded, StoreError> {
    let mut inflight = FuturesUnordered::new();
    let mut parts: Vec<Part> = Vec::new();
    let (mut number, mut size, mut closed, mut paused) = (0u32, 0u64, false, false);
    let mut send = |bytes: Bytes, inflight: &mut FuturesUnordered<_>| {
        number += 1;
        size += bytes.len() as u64;
        inflight.push(one_part(admin.clone(), key.to_string(), id.to_string(), number, bytes));
    };
    send(first, &mut inflight);
    loop {
        if !closed && inflight.len() < PARTS_IN_FLIGHT {
            tokio::select! {
                biased;
                Some(r) = inflight.next(), if !inflight.is_empty() => parts.push(r?),
                m = rx.recv() => match m {
                    Some(b) => send(b, &mut inflight),
                    None => {
                        closed = true;
                        let t = take_tail();
                        if !t.is_empty() {
                            send(Bytes::from(t), &mut inflight);
                        }
                    }
                },
            }
        } else {
            match inflight.next().await {
                Some(r) => parts.push(r?),
                None => break,
            }
        }
        if !parts.is_empty() && !closed && !paused {
            paused = true;
            // Tests stop here to kill a run mid-stream: an upload with a part, not completed.
            if std::env::var_os("CUSTODY_TEST_PAUSE").is_some_and(|v| v == "streaming") {
                tokio::task::spawn_blocking(|| crate::test_pause("streaming")).await.ok();
            }
        }
    }
    if !matches!(decide.await, Ok(true)) {
        return Err(StoreError::Abandoned);
    }
    parts.sort_by_key(|p| p.number);
    match admin.complete_upload(key, id, &parts, false).await? {
        Completed::Done { etag, version } => {
            Ok(Uploaded::Provisional(Provisional { key: key.to_string(), etag, version, size }))
        }
        // A random key: only a server that confuses uploads answers this.
        Completed::Exists => Err(StoreError::Conflict { key: key.to_string() }),
    }
}

/// Hash one part (on the blocking pool: it is CPU work) and upload it with its checksum.
async fn one_part(admin: Arc<S3Admin>, key: String, id: String, number: u32, bytes: Bytes) -> Result<Part, StoreError> {
    let b = bytes.clone();
    let digest = tokio::task::spawn_blocking(move || Sha256::of(&b)).await.map_err(|_| StoreError::UploadTask)?;
    match admin.upload_part(&key, &id, number, bytes, &digest).await? {
        PartAnswer::Stored(p) => Ok(p),
        PartAnswer::ChecksumRefused(why) => Err(StoreError::ChecksumRefused { key, part: number, why }),
    }
}

/// `uploads/<start, Unix seconds, 12 digits>-<32 random hex>.partial`. The start time is in
/// the name because the sweep must not trust the server's: moto dates every upload
/// 2010-11-10, and an upload of a preserve still running must never look stale.
fn provisional_key() -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    let now = chrono::Utc::now().timestamp().max(0);
    format!("{UPLOADS_PREFIX}{now:012}-{}{UPLOAD_SUFFIX}", hex::encode(b))
}

/// When the upload of a provisional key was started, by its name; `None` for any other key
/// (never swept: it is not custody's).
fn started_at(key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let rest = key.strip_prefix(UPLOADS_PREFIX)?.strip_suffix(UPLOAD_SUFFIX)?;
    let (secs, random) = rest.split_once('-')?;
    if secs.len() != 12 || random.len() != 32 || !random.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    chrono::DateTime::from_timestamp(secs.parse().ok()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_that_ten_thousand_hold_any_bundle() {
        assert_eq!(part_size(PART_SIZE, 1), PART_SIZE);
        assert_eq!(part_size(PART_SIZE, 1000), PART_SIZE);
        assert_eq!(part_size(PART_SIZE, 1001), 2 * PART_SIZE);
        let total: u64 = (1..=MAX_PARTS).map(|n| part_size(PART_SIZE, n) as u64).sum();
        // S3's largest object is 5 TiB.
        assert!(total >= 5 << 40, "{total}");
        assert!((1..=MAX_PARTS).all(|n| part_size(PART_SIZE, n) as u64 <= COPY_PART_MAX));
    }

    #[test]
    fn provisional_keys_are_never_bundle_keys_and_say_when_they_started() {
        let k = provisional_key();
        assert!(k.starts_with(UPLOADS_PREFIX) && k.ends_with(UPLOAD_SUFFIX) && k.len() == 8 + 13 + 32 + 8, "{k}");
        let t = started_at(&k).expect("own key");
        assert!((chrono::Utc::now() - t).num_seconds().abs() < 5);
        assert_eq!(started_at("uploads/other.partial"), None);
        assert_eq!(started_at("bundles/000000000001-00000000000000000000000000000000.partial"), None);
    }
}
