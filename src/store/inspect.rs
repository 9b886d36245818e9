//! `custody store init`: check that a store keeps the promises custody relies on, and say
//! plainly which one fails.
//!
//! For S3: the bucket is reachable and listable, Object Lock is enabled, versioning is on,
//! a default retention exists (or custody sends one), conditional writes are honoured (a
//! create-only write of the same key twice must be refused the second time), and a write
//! comes back locked. Local and memory stores only get the conditional-write probe; they
//! cannot lock anything, which is said too.

use serde::Serialize;

use super::{Backend, PutOutcome, RetentionState, Store, StoreError};

/// Outcome of one promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Promise {
    /// Kept.
    Kept,
    /// Broken: evidence is not protected the way custody says.
    Broken,
    /// Not applicable to this backend (explained).
    NotApplicable,
}

/// One checked promise.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreCheck {
    /// Short name.
    pub name: &'static str,
    /// Kept or broken.
    pub status: Promise,
    /// What was seen, and what to do when broken.
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> StoreCheck {
    StoreCheck { name, status: if ok { Promise::Kept } else { Promise::Broken }, detail: detail.into() }
}

/// Key of the probe object (the probe is written create-only and, on a locked bucket,
/// stays until its retention ends: a few bytes per `store init`).
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn probe_key(now: chrono::DateTime<chrono::Utc>) -> String {
    format!(".custody/probe-{}-{:08x}.txt", now.format("%Y%m%dT%H%M%S%.6fZ"), std::process::id())
}

/// Versioning: on, and its history readable (custody reads a versioned store from it).
async fn versioning_check(store: &Store, admin: &super::lock::S3Admin) -> StoreCheck {
    use super::Versioning;
    match store.versioning().await {
        Some(Versioning::Enabled) => {
            let all = |_: &str| true;
            match admin.list_versions(super::ledger::LEDGER_PREFIX, false, &all).await {
                Ok(l) => {
                    let touched = l.objects.iter().filter(|o| o.history.is_some()).count();
                    check(
                        "versioning",
                        true,
                        format!(
                            "versioning is enabled: a write adds a version, a delete adds a delete marker; custody reads every key at its first version (the one it wrote create-only) and `verify` reports any later version or delete marker (ledger/ now: {} key(s), {touched} with later versions or delete markers)",
                            l.objects.len()
                        ),
                    )
                }
                Err(e) => check(
                    "versioning",
                    false,
                    format!("versioning is enabled, but the version history cannot be listed ({}): custody reads a versioned store from it; grant s3:ListBucketVersions and s3:GetObjectVersion", crate::error_text(&e)),
                ),
            }
        }
        Some(Versioning::Suspended) => check(
            "versioning",
            false,
            "versioning is Suspended: a write replaces a key's null version and a delete removes it, leaving nothing to audit; enable versioning (a bucket with Object Lock cannot suspend it)",
        ),
        Some(Versioning::Off) => check(
            "versioning",
            false,
            "versioning is not enabled: an overwrite replaces evidence and a delete removes it, leaving no older version to audit; create the bucket with Object Lock, which enables versioning (docs/storage.md)",
        ),
        Some(Versioning::Unsupported) => check(
            "versioning",
            false,
            "the server has no bucket versioning (GetBucketVersioning: 501 Not Implemented): an overwrite replaces evidence and a delete removes it, and Object Lock is not available either; use a server with versioning and Object Lock",
        ),
        Some(Versioning::Unknown(e)) => {
            check("versioning", false, format!("cannot read the versioning status: {e}; grant s3:GetBucketVersioning"))
        }
        None => check("versioning", false, "not an S3 store"),
    }
}

/// Check `store`'s promises.
pub async fn inspect(store: &Store) -> Result<Vec<StoreCheck>, StoreError> {
    let mut out = Vec::new();
    // Reachable and listable.
    match store.list("ledger/").await {
        Ok(v) => out.push(check("reachable", true, format!("listed the ledger ({} entries)", v.len()))),
        Err(e) => {
            out.push(check("reachable", false, format!("cannot list the store: {}", crate::error_text(&e))));
            return Ok(out);
        }
    }
    if let Some(admin) = store.s3_admin() {
        let lock = admin.bucket_lock().await;
        match &lock {
            Ok(l) if l.enabled => out.push(check("object_lock", true, "Object Lock is enabled on the bucket")),
            Ok(_) => out.push(check(
                "object_lock",
                false,
                "Object Lock is NOT enabled on the bucket: objects can be deleted or overwritten by any credential allowed to; create the bucket with Object Lock enabled (see docs/storage.md)",
            )),
            Err(e) => out.push(check("object_lock", false, format!("cannot read the Object Lock configuration: {}", crate::error_text(e)))),
        }
        out.push(versioning_check(store, admin).await);
        let default = lock.as_ref().ok().and_then(|l| l.default_retention());
        let protection = store.protection().await;
        match (default, store.retention()) {
            (Some((dm, _, dp)), Some(r)) => match protection.as_ref().and_then(|p| p.weaker_than_default()) {
                Some(w) => out.push(check("default_retention", false, w)),
                None => out.push(check(
                    "default_retention",
                    true,
                    format!(
                        "bucket default retention {dm} for {dp}; custody replaces it with {} for {} day(s) on every object it writes",
                        r.mode.header_value(),
                        r.days
                    ),
                )),
            },
            (Some((dm, _, dp)), None) => out.push(check(
                "default_retention",
                true,
                format!("bucket default retention {dm} for {dp}: it locks every object custody writes (no --retention given)"),
            )),
            (None, Some(r)) => out.push(check(
                "default_retention",
                true,
                format!(
                    "no bucket default retention, but custody sends {} for {} day(s) on every write",
                    r.mode.header_value(),
                    r.days
                ),
            )),
            (None, None) => out.push(check(
                "default_retention",
                false,
                "no bucket default retention and no --retention: objects are written WITHOUT a lock; set a default retention on the bucket or preserve with --retention DAYS",
            )),
        }
        match admin.probe_checksums().await {
            Ok(super::lock::ChecksumProbe::Verified) => out.push(check(
                "checksums",
                true,
                "the server refused a part sent with a wrong SHA-256 checksum: it verifies every upload (custody does not read uploads back)",
            )),
            Ok(super::lock::ChecksumProbe::NotVerified(status)) => out.push(check(
                "checksums",
                true,
                format!("the server did not refuse a part sent with a wrong SHA-256 checksum (HTTP {status}): it does not verify uploads, so custody reads every upload back before writing its ledger entry"),
            )),
            Err(e) => out.push(check("checksums", false, format!("cannot probe whether the server verifies upload checksums: {e}"))),
        }
        match admin.probe_conditional_complete().await {
            Ok(super::multipart::ConditionalProbe::Honoured) => out.push(check(
                "conditional_complete",
                true,
                "the server refused to complete a multipart upload over an existing object (If-None-Match: *): a streamed bundle is stored under its name create-only",
            )),
            Ok(super::multipart::ConditionalProbe::NotHonoured(status)) => out.push(check(
                "conditional_complete",
                true,
                format!("the server completed a multipart upload over an existing object despite If-None-Match: * (HTTP {status}): custody checks a bundle's name just before completing; two writers racing the same bundle can both complete, the second as a later version of identical bytes (docs/storage.md)"),
            )),
            Err(e) => out.push(check(
                "conditional_complete",
                false,
                format!("cannot probe whether the server completes multipart uploads create-only: {}", crate::error_text(&e)),
            )),
        }
    } else {
        let why = match store.backend() {
            Backend::Local => "local store: files are made read-only (0444), but the owner or root can still delete them; use S3 with Object Lock for retention",
            Backend::Memory => "memory store: nothing survives the process",
            Backend::Azure => "Azure container: custody writes create-only (If-None-Match: *) but does not read immutability policies or legal holds; set a locked time-based retention policy on the container yourself (docs/storage.md, \"Azure Blob Storage\")",
            _ => "Object Lock checks are implemented for S3 only; check this backend's immutability settings yourself",
        };
        out.push(StoreCheck { name: "object_lock", status: Promise::NotApplicable, detail: why.into() });
    }
    // Conditional writes: create the same key twice; the second must be refused.
    let key = probe_key(chrono::Utc::now());
    let body = format!("custody store init probe {key}\n").into_bytes();
    let first = store.create_probe(&key, body.clone()).await;
    let second = store.create_probe(&key, b"a different body\n".to_vec()).await;
    match (first, second) {
        (Ok(PutOutcome::Created), Ok(PutOutcome::Taken)) => out.push(check(
            "conditional_writes",
            true,
            format!("a second create-only write of {key} was refused"),
        )),
        (Ok(PutOutcome::Created), Ok(_)) => out.push(check(
            "conditional_writes",
            false,
            "the server ACCEPTED a create-only write over an existing object: If-None-Match is not honoured, two writers could both claim one ledger position (a fork); use a server that supports conditional writes",
        )),
        (Err(e), _) | (_, Err(e)) => {
            out.push(check("conditional_writes", false, format!("create-only probe write failed: {}", crate::error_text(&e))))
        }
        (Ok(o), _) => out.push(check(
            "conditional_writes",
            false,
            format!("the probe {key} already existed ({o:?}); run store init again"),
        )),
    }
    // The probe comes back locked (when custody asks for retention or the bucket has a default).
    if store.s3_admin().is_some() {
        match store.object_retention(&key).await {
            Ok(RetentionState::Object(o)) if o.mode.is_some() => out.push(check(
                "lock_applied",
                true,
                format!(
                    "a write comes back locked: {} until {}{}",
                    o.mode.unwrap_or_default(),
                    o.retain_until.unwrap_or_else(|| "?".into()),
                    if o.legal_hold.as_deref() == Some("ON") { ", under a legal hold" } else { "" }
                ),
            )),
            Ok(RetentionState::Object(o)) if o.legal_hold.as_deref() == Some("ON") => out.push(check(
                "lock_applied",
                true,
                "a write comes back under a legal hold (no retention): it stays until the hold is lifted",
            )),
            Ok(RetentionState::Object(_)) => out.push(check(
                "lock_applied",
                false,
                "the probe object came back WITHOUT a lock: evidence written now would not be protected",
            )),
            Ok(_) => out.push(check("lock_applied", false, "the probe object could not be found after writing it")),
            Err(e) => out.push(check(
                "lock_applied",
                false,
                format!("cannot read the probe's retention: {}", crate::error_text(&e)),
            )),
        }
    }
    Ok(out)
}
