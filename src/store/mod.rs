//! Write-once evidence stores, through the `object_store` crate.
//!
//! Objects are named by content: a bundle lives at `bundles/<hex>.tar.zst` where `<hex>` is
//! the SHA-256 of its bytes; ledger entries at `ledger/<position, 20 digits>.json`. Every
//! write is create-only (`PutMode::Create`): an existing object is never overwritten. On the
//! local store, files end up read-only (mode 0444) and bundles are written to a staging file
//! in the store first, then hard-linked into place, so a partial bundle is never visible.
//!
//! Remote store URLs are parsed and normalised once (`address`). S3 stores
//! (`s3://bucket/prefix`) are configured by the standard `AWS_*` environment variables plus
//! [`config::StoreOptions`] (a config file and command-line overrides); every request is
//! retried with exponential backoff on transient errors, and with a retention every write
//! carries S3 Object Lock headers (`lock`). Azure Blob stores (`az://container/prefix`) are
//! configured by the standard `AZURE_*` variables (`AZURE_STORAGE_USE_EMULATOR` and
//! `AZURITE_BLOB_STORAGE_URL` for the Azurite emulator). Listings use raw keys (`raw`).
//!
//! This is the only module that knows `object_store`.

internal_mod!(address);
pub mod checkpoint;
pub mod config;
pub mod inspect;
pub mod ledger;
internal_mod!(lock);
internal_mod!(multipart);
internal_mod!(ranged);
internal_mod!(raw);
internal_mod!(stream);
internal_mod!(versions);

pub use address::redact;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::digest::{BundleId, HashingWriter};
use crate::unfinished::TrackedTemp;
use config::{ConfigError, Retention, StoreOptions};
use lock::{LockError, ObjectRetention, Protection, S3Admin};
use versions::{ObjectListing, ReadAt, StoredObject};

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL cannot be used.
    #[error("store URL `{url}` is not usable: {reason}")]
    Url {
        /// The URL (user name and password redacted).
        url: String,
        /// Why.
        reason: String,
    },
    /// The endpoint a store is reached at cannot be used.
    #[error("store endpoint `{endpoint}` is not usable: {reason}")]
    Endpoint {
        /// The endpoint (user name and password redacted).
        endpoint: String,
        /// Why.
        reason: &'static str,
    },
    /// The backend could not be configured.
    #[error("cannot open store `{url}`")]
    Open {
        /// The URL.
        url: String,
        /// The backend error.
        source: object_store::Error,
    },
    /// An object-store operation failed.
    #[error("store operation `{op}` on `{key}` failed")]
    Op {
        /// The operation.
        op: &'static str,
        /// The object key.
        key: String,
        /// The backend error.
        source: object_store::Error,
    },
    /// A local file operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An object already exists under a content-addressed name but holds other bytes.
    #[error("store object `{key}` exists but its content does not match its name: the store has been altered")]
    Conflict {
        /// The key.
        key: String,
    },
    /// Appending to the ledger kept losing races.
    #[error("could not append to the ledger of {url}: lost the race for a position {attempts} times; retry later")]
    LedgerContention {
        /// The store.
        url: String,
        /// How often it tried.
        attempts: usize,
    },
    /// The ledger's last position is 2^64 − 1: nothing can be appended after it.
    #[error("the ledger of {url} holds position 18446744073709551615, the last one: nothing can be appended; record new evidence in another store")]
    LedgerFull {
        /// The store.
        url: String,
    },
    /// The store's identity file (`store.json`) is unusable. It is written create-only, so it
    /// cannot be replaced: entries could not name the store.
    #[error("the identity file store.json of {url} is not usable ({problem}); custody does not append to a store it cannot name: keep this store for investigation (`custody verify --store URL --all`) and record new evidence in another store")]
    BadIdentity {
        /// The store.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The store configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A signed side request (Object Lock, versioning) failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// An object is larger than the caller accepts.
    #[error("store object `{key}` is {size} bytes, above the limit of {limit}")]
    TooLarge {
        /// The key.
        key: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An object came back without the lock the preserve asked for.
    #[error("`{key}` was written but is NOT locked as asked ({asked}); the server reports: {got}. Check the bucket with `custody store init` before relying on it (a writer without s3:GetObjectRetention / s3:GetObjectLegalHold is shown no lock at all)")]
    NotLocked {
        /// The key.
        key: String,
        /// What was asked.
        asked: String,
        /// What the server reports.
        got: String,
    },
    /// Object Lock settings given for a store that has no S3 Object Lock.
    #[error("--retention, --lock-mode and --legal-hold are S3 Object Lock settings; an Azure container's immutability is set on the container itself (docs/storage.md, \"Azure Blob Storage\")")]
    LockNotApplicable,
    /// The server kept other bytes than were sent (found by reading the object back).
    #[error("the server stored other bytes at `{key}` than were sent (read back: SHA-256 {got}, sent {sent}): the upload was corrupted on the way and the server did not check its checksum; a corrupted copy stays under that key (verify --all reports it)")]
    Corrupted {
        /// The key.
        key: String,
        /// Digest of what was sent.
        sent: String,
        /// Digest of what was read back (or `absent`).
        got: String,
    },
    /// A server that verifies upload checksums refused a part of a streamed bundle: its bytes
    /// were corrupted on the way.
    #[error("the server refused part {part} of the upload to `{key}`: its bytes did not match the SHA-256 checksum sent with them ({why}), so they were corrupted on the way; the upload was aborted and nothing was stored under the bundle's name; run the preserve again")]
    ChecksumRefused {
        /// The provisional key.
        key: String,
        /// The part number.
        part: u32,
        /// The server's answer.
        why: String,
    },
    /// A streamed upload was abandoned because the seal failed (never shown: the seal's
    /// error is).
    #[error("the upload was abandoned because sealing failed")]
    Abandoned,
    /// The upload task died.
    #[error("internal error: the upload task failed")]
    UploadTask,
    /// Streaming asked of a store that does not stream (only S3 stores do).
    #[error("this store does not take streamed bundles (only S3 stores do)")]
    NotStreaming,
    /// A range of an object could not be read from the store (after the client's retries of
    /// each request and `ranged::ATTEMPTS` fetches of the range).
    #[error("cannot read bytes {start}-{} of {key} from the store: the bundle was NOT verified (a failed read says nothing about the bundle's bytes); check the connection to the store and run the verification again", .end.saturating_sub(1))]
    RangeRead {
        /// Where the object is.
        key: String,
        /// The first byte asked for.
        start: u64,
        /// One past the last.
        end: u64,
        /// The backend error.
        source: object_store::Error,
    },
    /// The store's answers for a range kept ending before its last byte (each asked for the
    /// rest of the range).
    #[error("the store's answers for bytes {start}-{} of {key} ended early {attempts} time(s) ({got} bytes of the range arrived): they were cut short on the way; the bundle was NOT verified (a failed read says nothing about the bundle's bytes); run the verification again", .end.saturating_sub(1))]
    RangeShort {
        /// Where the object is.
        key: String,
        /// The first byte asked for.
        start: u64,
        /// One past the last.
        end: u64,
        /// How many bytes of the range arrived in all.
        got: u64,
        /// How many times the range (or its rest) was asked for.
        attempts: u32,
    },
    /// The object changed while it was being read in ranges: the store refused a range of the
    /// version (or ETag) the first range was read from.
    #[error("{key} changed while it was being read: the store would not serve bytes {start}-{} of the object read so far ({pinned}), so it was overwritten or deleted during the verification; no bytes of two objects were verified together, and the bundle was NOT verified: run the verification again (`custody verify --store URL --all` reports later versions in a versioned bucket)", .end.saturating_sub(1))]
    ChangedWhileRead {
        /// Where the object is.
        key: String,
        /// The first byte of the range refused.
        start: u64,
        /// One past its last.
        end: u64,
        /// What the reads were pinned to (version, ETag, size).
        pinned: String,
    },
    /// The store named neither a version nor an ETag for an object larger than one range, so
    /// its ranges cannot be pinned to one object.
    #[error("the store named neither a version nor an ETag for {key} ({size} bytes): custody cannot make sure that every range it reads comes from the same object, so it did not verify it; use a store that sends ETags (every S3, Azure and GCS server does)")]
    Unpinned {
        /// Where the object is.
        key: String,
        /// Its size.
        size: u64,
    },
    /// A task reading from the store (or the verification it fed) died.
    #[error("internal error: a task reading a bundle from the store failed")]
    ReadTask,
    /// A local store opened to read (verify, show, extract, list…) does not exist. Reading
    /// never creates a store: a mistyped path would otherwise read as an empty, intact one.
    #[error("store directory {} does not exist: check the store path (--store or $CUSTODY_STORE); only `custody preserve` and `custody store init` create a store", path.display())]
    Missing {
        /// The directory.
        path: PathBuf,
    },
}

/// The outcome of a create-only write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PutOutcome {
    /// The object was created.
    Created,
    /// An identical object was already there (content-addressed: a success).
    AlreadyPresent,
    /// A different object already holds that name (only for non-content-addressed keys).
    Taken,
}

/// Which checks a create-only write makes ([`Store::create`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateMode {
    /// The lock check, and in a versioned store the key's versions before and after writing.
    Full,
    /// As `Full`, but the caller has just listed the key as free: versions after writing only.
    Listed,
    /// Neither (`store init`'s probe of conditional writes).
    Probe,
}

/// Bundles at most this large are uploaded with one create-only PUT.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) const SINGLE_PUT_LIMIT: u64 = 64 << 20;

/// A local store's directory of staging files, and how a staging file is named
/// (`bundle-<random>.partial`): [`Store::staging_file`] makes them, [`Store::sweep_staging`]
/// recognises them.
const STAGING_DIR: &str = ".staging";
const STAGING_PREFIX: &str = "bundle-";
const STAGING_SUFFIX: &str = ".partial";

/// A staging file not written to for this long was left by a run that was killed (SIGKILL,
/// a crash, a power cut): a live preserve writes its staging file continuously, then syncs
/// and links it within moments. [`Store::sweep_staging`] removes such files.
pub const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// Which kind of backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// A local directory.
    Local,
    /// In-process memory.
    Memory,
    /// S3 or an S3-compatible server.
    S3,
    /// Azure Blob Storage (or Azurite).
    Azure,
    /// Another `object_store` backend, not opened from a URL (custody's own tests wrap one).
    Other,
}

/// An S3 bucket's versioning, as `GetBucketVersioning` says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Versioning {
    /// Every write adds a version; nothing is overwritten or deleted without a trace. (A
    /// bucket with Object Lock is always versioned.)
    Enabled,
    /// Versioning was on and is now suspended: a write replaces the key's `null` version.
    Suspended,
    /// Never enabled: a write replaces the object, a delete removes it.
    Off,
    /// The server has no bucket versioning (it answered `GetBucketVersioning` with 501 Not
    /// Implemented, as some S3-compatible servers do): as `Off`.
    Unsupported,
    /// The status could not be read (the error): the store is read from its version history
    /// anyway.
    Unknown(String),
}

impl Versioning {
    /// Is the store read from its version history? Everywhere but a bucket that never had
    /// versioning (where there is no history to read).
    pub fn has_history(&self) -> bool {
        !matches!(self, Versioning::Off | Versioning::Unsupported)
    }

    /// As said in reports.
    pub fn describe(&self) -> String {
        match self {
            Versioning::Enabled => "versioning Enabled".into(),
            Versioning::Suspended => "versioning Suspended".into(),
            Versioning::Off => "versioning never enabled".into(),
            Versioning::Unsupported => "no bucket versioning on this server".into(),
            Versioning::Unknown(e) => format!("versioning status unreadable ({e})"),
        }
    }
}

/// What a store can say about an object's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetentionState {
    /// The backend has no object lock (local, memory, or not S3): the reason.
    Unsupported(&'static str),
    /// The object does not exist.
    Absent,
    /// The server's answer.
    Object(ObjectRetention),
}

/// An evidence store.
#[derive(Debug, Clone)]
pub struct Store {
    url: String,
    inner: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    backend: Backend,
    admin: Option<Arc<S3Admin>>,
    azure: Option<Arc<raw::AzureRaw>>,
    retention: Option<Retention>,
    single_put_limit: u64,
    /// The size of a streamed bundle's parts ([`stream::PART_SIZE`]).
    part_size: usize,
    /// Whether the server honours `If-None-Match: *` on multipart completion: probed once
    /// per store handle, when first needed.
    conditional_complete: Arc<std::sync::OnceLock<bool>>,
    /// Whether the server verifies upload checksums: probed once per store handle.
    verifies_checksums: Arc<std::sync::OnceLock<bool>>,
    legal_hold: bool,
    /// When the lock headers were computed (the retain-until date is counted from it).
    opened_at: chrono::DateTime<chrono::Utc>,
    protection: Arc<std::sync::OnceLock<Protection>>,
    /// The bucket's versioning (S3): read once per store handle.
    versioning: Arc<std::sync::OnceLock<Versioning>>,
    /// `store.json` once read valid ([`ledger::read_identity`]): it is written create-only,
    /// so a preserve reads it once, not once for adoption and again for its append.
    identity: Arc<std::sync::OnceLock<ledger::Identity>>,
}

/// Where a bundle fetched from a store can be read.
#[non_exhaustive]
pub enum Fetched {
    /// A file in the local store.
    Local(PathBuf),
    /// A downloaded temporary copy (removed with it, or by [`crate::unfinished::remove_all`]
    /// if the run is interrupted).
    Temp(TrackedTemp),
}

impl Fetched {
    /// The file path.
    pub fn path(&self) -> &FsPath {
        match self {
            Fetched::Local(p) => p,
            Fetched::Temp(t) => t.path(),
        }
    }
}

/// The object key of a bundle.
pub fn bundle_key(id: &BundleId) -> String {
    format!("bundles/{}.tar.zst", id.digest().hex())
}

impl Store {
    /// Open a store by URL: a plain path or `file:///abs/path` (local, created if missing),
    /// `memory://` (in-process, for tests), or `s3://bucket/prefix`, `gs://…`, `az://…`
    /// configured from the environment (`AWS_*`, …).
    ///
    /// The options come from `$CUSTODY_STORE_CONFIG` (if set); see [`Store::open_with`].
    pub fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &StoreOptions::from_env()?)
    }

    /// Open a store by URL with explicit options (endpoint, region, retention, retries…).
    /// A local store is created if missing; see [`Store::open_existing_with`] to read one.
    pub fn open_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        Store::open_impl(url, opts, true)
    }

    /// Open a store to read from it, with explicit options: like [`Store::open_with`], but a
    /// local store that does not exist is [`StoreError::Missing`], and nothing is created in an
    /// existing one. (A remote bucket or prefix cannot be told apart from an empty one this
    /// way; `verify --all` warns when a store holds nothing.)
    pub fn open_existing_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        Store::open_impl(url, opts, false)
    }

    fn open_impl(url: &str, opts: &StoreOptions, create: bool) -> Result<Store, StoreError> {
        let retention = opts.retention()?;
        if url.starts_with("memory:") {
            let mut s = Store::from_object_store(Arc::new(InMemory::new()), url);
            s.backend = Backend::Memory;
            return Ok(s);
        }
        let remote = address::parse(url).map_err(|p| StoreError::Url { url: address::redact(url), reason: p.0 })?;
        let mut store = match remote {
            Some(a) if a.remote == address::Remote::S3 => Store::open_s3(&a, opts)?,
            Some(a) => Store::open_azure(&a, opts)?,
            None => {
                let path = match url.strip_prefix("file://") {
                    Some(rest) if rest.starts_with('/') => PathBuf::from(rest),
                    Some(_) => {
                        return Err(StoreError::Url {
                            url: address::redact(url),
                            reason: "file:// URLs need an absolute path (file:///abs/path)".into(),
                        })
                    }
                    None => PathBuf::from(url),
                };
                Store::open_local(&path, url, create)?
            }
        };
        if store.backend == Backend::Azure && (retention.is_some() || opts.legal_hold == Some(true)) {
            return Err(StoreError::LockNotApplicable);
        }
        store.retention = retention;
        store.legal_hold = opts.legal_hold.unwrap_or(false);
        Ok(store)
    }

    fn open_s3(a: &address::StoreUrl, opts: &StoreOptions) -> Result<Store, StoreError> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
        use object_store::client::{HttpConnector, ReqwestConnector};
        use object_store::{ClientConfigKey, ClientOptions};
        let url = a.canonical();
        // The standard AWS_* variables, split into client options and S3 options.
        let mut builder = AmazonS3Builder::new();
        let mut client = ClientOptions::new();
        for (k, v) in std::env::vars() {
            if !k.starts_with("AWS_") {
                continue;
            }
            match k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                Ok(AmazonS3ConfigKey::Client(ck)) => client = client.with_config(ck, v),
                Ok(key) => builder = builder.with_config(key, v),
                Err(_) => {}
            }
        }
        if let Some(e) = &opts.endpoint {
            builder = builder.with_endpoint(e);
        }
        if let Some(r) = &opts.region {
            builder = builder.with_region(r);
        }
        if let Some(a) = opts.allow_http {
            client = client.with_config(ClientConfigKey::AllowHttp, a.to_string());
        }
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        if let Some(e) = &endpoint {
            check_endpoint(e)?;
        }
        // The side-request client must not carry the lock headers: reqwest would add them
        // unsigned, and S3 rejects unsigned x-amz-* headers.
        let open_err = |source| StoreError::Open { url: url.clone(), source };
        let http = ReqwestConnector::default().connect(&client).map_err(open_err)?;
        let plain = client.clone();
        let opened_at = chrono::Utc::now();
        client = client.with_default_headers(lock::write_headers(
            opts.retention()?.as_ref(),
            opts.legal_hold.unwrap_or(false),
            opened_at,
        ));
        // Every PUT and every part carries x-amz-checksum-sha256 (S3 also requires a checksum
        // on any write to a bucket with Object Lock).
        builder = builder.with_checksum_algorithm(Checksum::SHA256);
        let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
        let s3 = builder
            .with_bucket_name(&a.bucket)
            .with_region(&region)
            .with_client_options(client)
            .with_retry(opts.retry_config())
            .with_http_connector(WithoutDefaultHeaders(plain))
            .build()
            .map_err(open_err)?;
        let admin = S3Admin::new(http, s3.credentials().clone(), &region, endpoint.as_deref(), &a.bucket, &a.prefix)?;
        let inner: Arc<dyn ObjectStore> = if a.prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix_path(&a.prefix)))
        };
        let mut store = Store::from_object_store(inner, url);
        store.backend = Backend::S3;
        store.admin = Some(Arc::new(admin));
        store.opened_at = opened_at;
        Ok(store)
    }

    fn open_azure(a: &address::StoreUrl, opts: &StoreOptions) -> Result<Store, StoreError> {
        use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
        use object_store::client::{HttpConnector, ReqwestConnector};
        use object_store::ClientOptions;
        let url = a.canonical();
        let mut builder = MicrosoftAzureBuilder::new();
        let mut client = ClientOptions::new();
        for (k, v) in std::env::vars() {
            if !k.starts_with("AZURE_") {
                continue;
            }
            match k.to_ascii_lowercase().parse::<AzureConfigKey>() {
                Ok(AzureConfigKey::Client(ck)) => client = client.with_config(ck, v),
                Ok(key) => builder = builder.with_config(key, v),
                Err(_) => {}
            }
        }
        let emulator = builder
            .get_config_value(&AzureConfigKey::UseEmulator)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"));
        let account = builder.get_config_value(&AzureConfigKey::AccountName);
        let open_err = |source| StoreError::Open { url: url.clone(), source };
        // Where the container lives: the same rule object_store applies.
        let (account, base) = if emulator {
            let base = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|_| "http://127.0.0.1:10000".into());
            check_endpoint(&base)?;
            let account = account.unwrap_or_else(|| "devstoreaccount1".into());
            let base = format!("{}/{account}", base.trim_end_matches('/'));
            client = client.with_allow_http(true);
            (account, base)
        } else {
            let Some(account) = account else {
                return Err(StoreError::Url {
                    url,
                    reason: "an Azure store needs an account: set AZURE_STORAGE_ACCOUNT_NAME (and a credential, e.g. AZURE_STORAGE_ACCOUNT_KEY), or AZURE_STORAGE_USE_EMULATOR=true for Azurite".into(),
                });
            };
            let base = opts
                .endpoint
                .clone()
                .or_else(|| builder.get_config_value(&AzureConfigKey::Endpoint))
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
            check_endpoint(&base)?;
            let base = base.trim_end_matches('/').to_string();
            builder = builder.with_endpoint(base.clone());
            (account, base)
        };
        if let Some(a) = opts.allow_http {
            client = client.with_allow_http(a);
        }
        let http = ReqwestConnector::default().connect(&client).map_err(open_err)?;
        let az = builder
            .with_container_name(&a.bucket)
            .with_client_options(client)
            .with_retry(opts.retry_config())
            .build()
            .map_err(open_err)?;
        let container_url = format!("{base}/{}", a.bucket);
        let raw = raw::AzureRaw::new(http, az.credentials().clone(), &account, &container_url, &a.prefix);
        let inner: Arc<dyn ObjectStore> = if a.prefix.is_empty() {
            Arc::new(az)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(az, prefix_path(&a.prefix)))
        };
        let mut store = Store::from_object_store(inner, url);
        store.backend = Backend::Azure;
        store.azure = Some(Arc::new(raw));
        Ok(store)
    }

    fn open_local(p: &FsPath, url: &str, create: bool) -> Result<Store, StoreError> {
        if create {
            std::fs::create_dir_all(p).map_err(|source| StoreError::Io {
                op: "cannot create store directory",
                path: p.into(),
                source,
            })?;
        } else if !p.is_dir() {
            if p.exists() {
                return Err(StoreError::Url {
                    url: url.into(),
                    reason: "it names a file, not a store directory".into(),
                });
            }
            return Err(StoreError::Missing { path: p.into() });
        }
        let root = p.canonicalize().map_err(|source| StoreError::Io {
            op: "cannot resolve store directory",
            path: p.into(),
            source,
        })?;
        if create {
            for sub in ["bundles", "ledger", STAGING_DIR] {
                let d = root.join(sub);
                std::fs::create_dir_all(&d).map_err(|source| StoreError::Io {
                    op: "cannot create",
                    path: d,
                    source,
                })?;
            }
        }
        let fs =
            LocalFileSystem::new_with_prefix(&root).map_err(|source| StoreError::Open { url: url.into(), source })?;
        let mut s = Store::from_object_store(Arc::new(fs), root.display().to_string());
        s.local_root = Some(root);
        s.backend = Backend::Local;
        Ok(s)
    }

    /// Wrap any object store (the library entry point for other backends).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn from_object_store(inner: Arc<dyn ObjectStore>, url: impl Into<String>) -> Store {
        Store {
            url: url.into(),
            inner,
            local_root: None,
            backend: Backend::Other,
            admin: None,
            azure: None,
            retention: None,
            single_put_limit: SINGLE_PUT_LIMIT,
            part_size: stream::PART_SIZE,
            conditional_complete: Arc::new(std::sync::OnceLock::new()),
            verifies_checksums: Arc::new(std::sync::OnceLock::new()),
            legal_hold: false,
            opened_at: chrono::Utc::now(),
            protection: Arc::new(std::sync::OnceLock::new()),
            versioning: Arc::new(std::sync::OnceLock::new()),
            identity: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Bundles larger than `bytes` are uploaded in parts (default [`SINGLE_PUT_LIMIT`]); a
    /// streamed bundle's parts are then `bytes` large (at least S3's 5 MiB, default
    /// `stream::PART_SIZE`), and one that fits in a part is one PUT.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    // Only custody's tests shrink the limit (through the feature).
    #[allow(dead_code)]
    pub(crate) fn with_single_put_limit(mut self, bytes: u64) -> Store {
        self.single_put_limit = bytes.max(1);
        self.part_size = usize::try_from(bytes).unwrap_or(usize::MAX).clamp(stream::MIN_PART_SIZE, 5 << 30);
        self
    }

    /// The backend kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The retention requested on every write (`None`: the bucket default, if any).
    pub fn retention(&self) -> Option<Retention> {
        self.retention
    }

    /// Whether a legal hold is put on every object written.
    pub fn legal_hold(&self) -> bool {
        self.legal_hold
    }

    /// What will lock the objects written through this store (S3 only; `None` elsewhere):
    /// the retention custody sends, else the bucket's default retention, else nothing. Read
    /// once per store handle; every object written is then checked against it.
    pub async fn protection(&self) -> Option<Protection> {
        let admin = self.admin.as_ref()?;
        if let Some(p) = self.protection.get() {
            return Some(p.clone());
        }
        let bucket = admin.bucket_lock().await.map_err(|e| e.to_string());
        let p = Protection::decide(bucket.as_ref().map_err(|e| e.clone()), self.retention.as_ref(), self.opened_at);
        Some(self.protection.get_or_init(|| p).clone())
    }

    /// After writing `key`: is it locked as [`Store::protection`] says it will be (and held,
    /// with a legal hold)? A preserve that asked for locked storage and did not get it fails.
    /// `version`: the one written, when the server named it.
    async fn check_locked(&self, key: &str, version: Option<&str>) -> Result<(), StoreError> {
        let Some(admin) = &self.admin else { return Ok(()) };
        let Some(p) = self.protection().await else { return Ok(()) };
        let wants_lock = matches!(p, Protection::Sent { .. } | Protection::Default { .. });
        if !wants_lock && !self.legal_hold {
            return Ok(());
        }
        let got = admin.object_retention_at(key, version).await?.unwrap_or_default();
        let mode_ok = match &p {
            Protection::Sent { mode, until, .. } => {
                got.mode.as_deref() == Some(mode.as_str())
                    && got.until().is_some_and(|u| u + chrono::Duration::seconds(2) >= *until)
            }
            Protection::Default { mode, .. } => {
                got.mode.as_deref() == Some(mode.as_str()) && got.until().is_some_and(|u| u > chrono::Utc::now())
            }
            _ => true,
        };
        let hold_ok = !self.legal_hold || got.legal_hold.as_deref() == Some("ON");
        if mode_ok && hold_ok {
            return Ok(());
        }
        Err(StoreError::NotLocked {
            key: key.into(),
            asked: p.describe(self.legal_hold),
            got: format!(
                "mode {}, retain-until {}, legal hold {}",
                got.mode.as_deref().unwrap_or("none"),
                got.retain_until.as_deref().unwrap_or("none"),
                got.legal_hold.as_deref().unwrap_or("none")
            ),
        })
    }

    /// `store.json` as this handle already read it, valid ([`ledger::read_identity`]).
    pub(crate) fn identity_read(&self) -> Option<&ledger::Identity> {
        self.identity.get()
    }

    /// Keep `store.json` as read, when it is valid.
    pub(crate) fn keep_identity(&self, identity: &ledger::Identity) {
        if matches!(identity.file, Some(Ok(_))) {
            let _ = self.identity.set(identity.clone());
        }
    }

    /// The signed side-request client, for S3 stores.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn s3_admin(&self) -> Option<&S3Admin> {
        self.admin.as_deref()
    }

    /// The bucket's versioning (S3 stores; `None` elsewhere), read once per store handle.
    pub async fn versioning(&self) -> Option<Versioning> {
        let admin = self.admin.as_ref()?;
        if let Some(v) = self.versioning.get() {
            return Some(v.clone());
        }
        let v = match admin.versioning().await {
            Ok(Some(s)) if s == "Enabled" => Versioning::Enabled,
            Ok(Some(s)) if s == "Suspended" => Versioning::Suspended,
            Ok(None) => Versioning::Off,
            Ok(Some(other)) => {
                Versioning::Unknown(format!("the server says {:?}", other.chars().take(64).collect::<String>()))
            }
            Err(LockError::Status { status: 501, .. }) => Versioning::Unsupported,
            Err(e) => Versioning::Unknown(crate::error_text(&e)),
        };
        Some(self.versioning.get_or_init(|| v).clone())
    }

    /// Is this store read from its version history, every key at its first version
    /// (`versions`)? S3 stores whose bucket ever had versioning (or whose status cannot be
    /// read).
    pub async fn reads_history(&self) -> bool {
        self.versioning().await.is_some_and(|v| v.has_history())
    }

    /// Every key under `prefix`, sorted, each as a reader takes it: in a versioned store at its
    /// first version, with its later versions and delete markers (`versions`); elsewhere the
    /// current objects. Keys for which `wanted` is false (junk) are kept up to
    /// `versions::MAX_OTHER_KEYS` and counted beyond.
    pub async fn list_objects(
        &self,
        prefix: &str,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<ObjectListing, StoreError> {
        if let (Some(a), true) = (&self.admin, self.reads_history().await) {
            return Ok(a.list_versions(prefix, false, wanted).await?);
        }
        let mut out = ObjectListing::default();
        let mut others = 0usize;
        for l in self.list_raw(prefix).await? {
            if !wanted(&l.key) {
                if others >= versions::MAX_OTHER_KEYS {
                    out.not_listed = out.not_listed.saturating_add(1);
                    continue;
                }
                others += 1;
            }
            out.objects.push(StoredObject {
                key: l.key,
                size: l.size,
                modified: l.modified,
                at: ReadAt::Current,
                history: None,
            });
        }
        Ok(out)
    }

    /// One key as a reader takes it (see [`Store::list_objects`]); `None` when the key holds
    /// nothing (no version and no delete marker).
    pub async fn object(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        if let (Some(a), true) = (&self.admin, self.reads_history().await) {
            let all = |_: &str| true;
            return Ok(a.list_versions(key, true, &all).await?.objects.into_iter().next());
        }
        match self.inner.head(&Path::from(key)).await {
            Ok(m) => Ok(Some(StoredObject {
                key: key.into(),
                size: m.size,
                modified: m.last_modified,
                at: ReadAt::Current,
                history: None,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(StoreError::Op { op: "head", key: key.into(), source }),
        }
    }

    /// What the server says about the Object Lock retention of `key` as read at `at`.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn object_retention_at(&self, key: &str, at: &ReadAt) -> Result<RetentionState, StoreError> {
        match (&self.admin, at) {
            (_, ReadAt::NoVersion) => Ok(RetentionState::Absent),
            (Some(a), ReadAt::Version(v)) => Ok(match a.object_retention_at(key, Some(v)).await? {
                Some(r) => RetentionState::Object(r),
                None => RetentionState::Absent,
            }),
            _ => self.object_retention(key).await,
        }
    }

    /// What the server says about `key`'s Object Lock retention.
    pub async fn object_retention(&self, key: &str) -> Result<RetentionState, StoreError> {
        match (&self.admin, self.backend) {
            (Some(a), _) => Ok(match a.object_retention(key).await? {
                Some(r) => RetentionState::Object(r),
                None => RetentionState::Absent,
            }),
            (None, Backend::Local) => Ok(RetentionState::Unsupported(
                "local store: files are read-only (0444) but not locked; the owner or root can delete them",
            )),
            (None, Backend::Memory) => Ok(RetentionState::Unsupported("memory store: nothing survives the process")),
            (None, Backend::Azure) => Ok(RetentionState::Unsupported(
                "Azure store: custody does not read immutability policies or legal holds; check the container's policy (docs/storage.md)",
            )),
            (None, _) => Ok(RetentionState::Unsupported("retention is only read from S3 stores")),
        }
    }

    /// The store's URL (for a local store, its absolute directory).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local directory, for local stores.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    /// A human-readable location of `key`: a file path for local stores, `url/key` otherwise.
    pub fn location(&self, key: &str) -> String {
        match &self.local_root {
            Some(r) => r.join(key).display().to_string(),
            None => format!("{}/{}", self.url.trim_end_matches('/'), key),
        }
    }

    /// Removes the staging files of a local store (`.staging/bundle-*.partial`) not modified
    /// for `older_than` ([`STALE_STAGING`]): what runs killed before they could clean up left
    /// behind. Returns the files removed; nothing for other stores (their staging files are in
    /// the system's temporary directory) or when the directory cannot be read. A staging file
    /// is never a sealed bundle: a bundle is stored under its own name by a hard link.
    pub fn sweep_staging(&self, older_than: std::time::Duration) -> Vec<PathBuf> {
        let Some(root) = &self.local_root else { return Vec::new() };
        let Ok(dir) = std::fs::read_dir(root.join(STAGING_DIR)) else { return Vec::new() };
        let now = std::time::SystemTime::now();
        let mut removed = Vec::new();
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with(STAGING_PREFIX) && name.ends_with(STAGING_SUFFIX)) {
                continue;
            }
            let stale = e
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age >= older_than);
            if stale && std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
        removed.sort();
        removed
    }

    /// A new staging file for a bundle being written (inside a local store, so that the
    /// final hard link is atomic; the system temp dir otherwise), registered for removal if
    /// the run is interrupted ([`crate::unfinished`]).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn staging_file(&self) -> Result<TrackedTemp, StoreError> {
        let dir = match &self.local_root {
            Some(r) => r.join(STAGING_DIR),
            None => std::env::temp_dir(),
        };
        crate::unfinished::temp_file(tempfile::Builder::new().prefix(STAGING_PREFIX).suffix(STAGING_SUFFIX), Some(&dir))
            .map_err(|source| StoreError::Io { op: "cannot create staging file in", path: dir, source })
    }

    /// A writer for a staging file that starts the kernel's write-back as it goes (see
    /// [`SyncAhead`]), so storing the bundle does not wait for the whole file to reach the disk.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn staging_writer(&self, file: std::fs::File) -> SyncAhead {
        SyncAhead::new(file, SYNC_AHEAD_EVERY)
    }

    /// Store a sealed bundle, create-only. `staged` holds exactly the bundle bytes and `id`
    /// is their SHA-256. An existing identical bundle is a success.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn put_bundle(&self, staged: TrackedTemp, id: &BundleId) -> Result<PutOutcome, StoreError> {
        let key = bundle_key(id);
        staged.as_file().sync_all().map_err(|source| StoreError::Io {
            op: "cannot sync",
            path: staged.path().into(),
            source,
        })?;
        if let Some(root) = &self.local_root {
            let dest = root.join(&key);
            match std::fs::hard_link(staged.path(), &dest) {
                Ok(()) => {
                    set_read_only(&dest)?;
                    sync_dir(&root.join("bundles"));
                    Ok(PutOutcome::Created)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let f = std::fs::File::open(&dest).map_err(|source| StoreError::Io {
                        op: "cannot open",
                        path: dest.clone(),
                        source,
                    })?;
                    let (d, _) = crate::digest::hash_reader(f).map_err(|source| StoreError::Io {
                        op: "cannot read",
                        path: dest.clone(),
                        source,
                    })?;
                    if d == *id.digest() {
                        Ok(PutOutcome::AlreadyPresent)
                    } else {
                        Err(StoreError::Conflict { key })
                    }
                }
                Err(source) => Err(StoreError::Io { op: "cannot link bundle into", path: dest, source }),
            }
        } else {
            let size = staged.as_file().metadata().map(|m| m.len()).unwrap_or(0);
            if size <= self.single_put_limit {
                let mut data = Vec::with_capacity(size as usize);
                let mut f = staged.reopen().map_err(|source| StoreError::Io {
                    op: "cannot reopen",
                    path: staged.path().into(),
                    source,
                })?;
                f.read_to_end(&mut data).map_err(|source| StoreError::Io {
                    op: "cannot read",
                    path: staged.path().into(),
                    source,
                })?;
                match self.create(&key, data).await? {
                    PutOutcome::Taken => self.confirm_existing_bundle(&key, id).await,
                    o => Ok(o),
                }
            } else {
                self.put_large(staged, &key, id).await
            }
        }
    }

    /// An object exists under a bundle's name: it is this bundle if its bytes (in a versioned
    /// store, those of the key's first version) hash to the name.
    async fn confirm_existing_bundle(&self, key: &str, id: &BundleId) -> Result<PutOutcome, StoreError> {
        let at = match self.reads_history().await {
            true => match self.object(key).await? {
                Some(o) => o.at,
                None => return Err(StoreError::Conflict { key: key.into() }),
            },
            false => ReadAt::Current,
        };
        match self.fetch_to_temp(key, &at).await? {
            Some((_, d)) if d == *id.digest() => Ok(PutOutcome::AlreadyPresent),
            _ => Err(StoreError::Conflict { key: key.into() }),
        }
    }

    /// Multipart upload of a large bundle. Multipart uploads cannot be made conditional, so:
    /// refuse if the key exists (in a versioned store: holds any version or delete marker),
    /// upload, then re-read the object's digest.
    async fn put_large(&self, staged: TrackedTemp, key: &str, id: &BundleId) -> Result<PutOutcome, StoreError> {
        let path = Path::from(key);
        let taken = match self.reads_history().await {
            true => self.object(key).await?.is_some(),
            false => self.inner.head(&path).await.is_ok(),
        };
        if taken {
            return self.confirm_existing_bundle(key, id).await;
        }
        let upload = self.inner.put_multipart(&path).await.map_err(|source| StoreError::Op {
            op: "put_multipart",
            key: key.into(),
            source,
        })?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, 16 << 20);
        let mut f = staged.reopen().map_err(|source| StoreError::Io {
            op: "cannot reopen",
            path: staged.path().into(),
            source,
        })?;
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|source| StoreError::Io {
                op: "cannot read",
                path: staged.path().into(),
                source,
            })?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.map_err(|source| StoreError::Op {
                op: "upload part",
                key: key.into(),
                source,
            })?;
            w.write(&buf[..n]);
        }
        let put = w.finish().await.map_err(|source| StoreError::Op {
            op: "complete multipart upload",
            key: key.into(),
            source,
        })?;
        let version = put.version.as_deref();
        // Every part went up with its SHA-256 checksum: a server that verifies them has
        // refused any corrupted part. Elsewhere, read the whole object back.
        if !self.server_verifies_checksums().await {
            self.read_back(key, id.digest(), version).await?;
        }
        self.after_multipart(key, id, version).await
    }

    /// After a multipart upload of bundle `id` created `key` (its `version`, when the server
    /// named it): it must be the key's first version, and locked as asked.
    async fn after_multipart(&self, key: &str, id: &BundleId, version: Option<&str>) -> Result<PutOutcome, StoreError> {
        // Another writer (or an attacker) may have put a version there first: the first
        // version is the bundle, and it must be this one.
        if self.reads_history().await {
            match self.object(key).await? {
                Some(StoredObject { at: ReadAt::Version(v), .. }) if Some(v.as_str()) == version => {}
                _ => return self.confirm_existing_bundle(key, id).await,
            }
        }
        let outcome = PutOutcome::Created;
        // Some servers ignore the lock headers of a multipart upload: lock it explicitly.
        if let Some(admin) = &self.admin {
            let got = admin.object_retention(key).await?.unwrap_or_default();
            if let (Some(r), ObjectRetention { mode: None, .. }) = (&self.retention, &got) {
                admin.put_retention(key, r, self.opened_at).await?;
            }
            if self.legal_hold && got.legal_hold.as_deref() != Some("ON") {
                admin.put_legal_hold(key).await?;
            }
        }
        self.check_locked(key, version).await?;
        Ok(outcome)
    }

    /// Create `key` with `data` unless it exists. `AlreadyPresent` if it holds exactly `data`
    /// (for instance because an earlier attempt of this very write succeeded although its
    /// answer was lost), `Taken` if it holds something else. Transient failures are retried
    /// by the client; a request that still fails is retried twice more here.
    ///
    /// On S3, the object is then checked to be locked as [`Store::protection`] says; where the
    /// server does not verify upload checksums, it is first read back and compared.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn create(&self, key: &str, data: Vec<u8>) -> Result<PutOutcome, StoreError> {
        self.create_checked(key, data, CreateMode::Full).await
    }

    /// [`Store::create`] of a key the caller has just listed and found free (a ledger
    /// append): the key's versions are not read again before writing, only after.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn create_listed(&self, key: &str, data: Vec<u8>) -> Result<PutOutcome, StoreError> {
        self.create_checked(key, data, CreateMode::Listed).await
    }

    /// [`Store::create`] without the lock check (for `store init`'s probe, which reports the
    /// lock itself) and without reading the key's versions: the probe must send its
    /// conditional PUT to see whether the server honours `If-None-Match`, not be stopped
    /// before by a listing.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn create_probe(&self, key: &str, data: Vec<u8>) -> Result<PutOutcome, StoreError> {
        self.create_checked(key, data, CreateMode::Probe).await
    }

    /// In a versioned store ([`Store::reads_history`]) a key is taken when it holds any
    /// version or delete marker: `If-None-Match: *` alone would succeed over a delete marker
    /// (a second entry at a position whose head was hidden: a fork). So the key's history is
    /// read before writing, and after writing the version written must be the key's first: a
    /// writer that raced a delete marker and lost finds an older version there and is told
    /// `Taken` (its own version stays, a later version that the audit reports). `mode` says
    /// which of these checks and the lock check run.
    async fn create_checked(&self, key: &str, data: Vec<u8>, mode: CreateMode) -> Result<PutOutcome, StoreError> {
        let (path, check_lock) = (Path::from(key), mode != CreateMode::Probe);
        let payload = PutPayload::from(data);
        let versioned = mode != CreateMode::Probe && self.reads_history().await;
        if versioned && mode == CreateMode::Full {
            if let Some(o) = self.object(key).await? {
                return self.settle(key, &o.at, &payload).await;
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            match self.inner.put_opts(&path, payload.clone(), opts).await {
                Ok(put) => {
                    if let Some(root) = &self.local_root {
                        set_read_only(&root.join(key))?;
                    }
                    let version = put.version.as_deref();
                    if !self.server_verifies_checksums().await {
                        self.read_back(key, &payload_digest(&payload), version).await?;
                    }
                    if versioned {
                        match self.object(key).await? {
                            Some(StoredObject { at: ReadAt::Version(v), .. }) if Some(v.as_str()) == version => {}
                            Some(o) => match (version, self.settle(key, &o.at, &payload).await?) {
                                // The server named no version: the first one holds these bytes.
                                (None, PutOutcome::AlreadyPresent) => {}
                                (_, outcome) => return Ok(outcome),
                            },
                            None => {
                                return Err(StoreError::Corrupted {
                                    key: key.into(),
                                    sent: payload_digest(&payload).hex(),
                                    got: "absent from the version listing".into(),
                                })
                            }
                        }
                    }
                    if check_lock {
                        self.check_locked(key, version).await?;
                    }
                    return Ok(PutOutcome::Created);
                }
                Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => {
                    let at = match versioned {
                        true => match self.object(key).await? {
                            Some(o) => o.at,
                            None => ReadAt::Current,
                        },
                        false => ReadAt::Current,
                    };
                    return self.settle(key, &at, &payload).await;
                }
                Err(source) if attempt < 3 && is_transient(&source) => {
                    tokio::time::sleep(std::time::Duration::from_millis(250 * attempt)).await;
                    let _ = source;
                }
                Err(source) => return Err(StoreError::Op { op: "put (create-only)", key: key.into(), source }),
            }
        }
    }

    /// A key already holds something: `AlreadyPresent` if what a reader takes there (`at`) is
    /// exactly `payload` (an earlier attempt of this very write), `Taken` otherwise (other
    /// bytes, too large, or only delete markers).
    async fn settle(&self, key: &str, at: &ReadAt, payload: &PutPayload) -> Result<PutOutcome, StoreError> {
        let limit = payload.content_length() as u64;
        match self.read_small(key, at, limit).await {
            Ok(Some(existing)) if existing.as_slice() == flatten(payload).as_slice() => Ok(PutOutcome::AlreadyPresent),
            Ok(_) | Err(StoreError::TooLarge { .. }) => Ok(PutOutcome::Taken),
            Err(e) => Err(e),
        }
    }

    /// Whether the server verifies the SHA-256 checksum sent with every upload. S3: asked once
    /// per store handle with a deliberately wrong checksum on a part of a multipart upload that
    /// is then aborted (`S3Admin::probe_checksums`; nothing is stored). Azure: no (custody
    /// sends no checksum Azure checks). Local and memory stores have no network to corrupt data.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn server_verifies_checksums(&self) -> bool {
        match (&self.admin, self.backend) {
            (Some(a), _) => {
                if let Some(v) = self.verifies_checksums.get() {
                    return *v;
                }
                let v = matches!(a.probe_checksums().await, Ok(lock::ChecksumProbe::Verified));
                *self.verifies_checksums.get_or_init(|| v)
            }
            (None, Backend::Local | Backend::Memory) => true,
            (None, _) => false,
        }
    }

    /// Read `key` back (the version written, when the server named it) and compare the
    /// SHA-256 of its bytes with `sent`.
    async fn read_back(
        &self,
        key: &str,
        sent: &crate::digest::Sha256,
        version: Option<&str>,
    ) -> Result<(), StoreError> {
        use sha2::Digest as _;
        let corrupted = |got: String| StoreError::Corrupted { key: key.into(), sent: sent.hex(), got };
        let opts = object_store::GetOptions { version: version.map(String::from), ..Default::default() };
        let r = match self.inner.get_opts(&Path::from(key), opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(corrupted("absent".into())),
            Err(source) => return Err(StoreError::Op { op: "get (read-back)", key: key.into(), source }),
        };
        let mut h = sha2::Sha256::new();
        let mut stream = r.into_stream();
        while let Some(chunk) = stream.try_next().await.map_err(|source| StoreError::Op {
            op: "get (read-back)",
            key: key.into(),
            source,
        })? {
            h.update(&chunk);
        }
        let got = crate::digest::Sha256(h.finalize().into());
        if got != *sent {
            return Err(corrupted(got.hex()));
        }
        Ok(())
    }

    /// Read a small object (its current version); `None` if it does not exist.
    pub async fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_small(key, &ReadAt::Current, limit).await
    }

    /// Read a small object as `at` says; `None` if it does not exist (or has no version).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn read_small(&self, key: &str, at: &ReadAt, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = Path::from(key);
        let version = match at {
            ReadAt::Current => None,
            ReadAt::Version(v) => Some(v.clone()),
            ReadAt::NoVersion => return Ok(None),
        };
        let opts = object_store::GetOptions { version, ..Default::default() };
        let r = match self.inner.get_opts(&path, opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(StoreError::Op { op: "get", key: key.into(), source }),
        };
        if r.meta.size > limit {
            return Err(StoreError::TooLarge { key: key.into(), size: r.meta.size, limit });
        }
        let b = r.bytes().await.map_err(|source| StoreError::Op { op: "get", key: key.into(), source })?;
        Ok(Some(b.to_vec()))
    }

    /// Does `key` exist? Its size if so.
    pub async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.inner.head(&Path::from(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(StoreError::Op { op: "head", key: key.into(), source }),
        }
    }

    /// Every object under `prefix` with its raw key (relative to the store), size and time,
    /// sorted by key. Keys are never parsed here: a key no valid object would have (`ledger//x`,
    /// a control character) is listed like any other, for the caller to report (`raw`).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn list_raw(&self, prefix: &str) -> Result<Vec<raw::Listed>, StoreError> {
        if let Some(a) = &self.admin {
            return Ok(a.list_raw(prefix).await?);
        }
        if let Some(a) = &self.azure {
            return Ok(a.list_raw(prefix).await?);
        }
        if let Some(root) = &self.local_root {
            return Ok(raw::list_local(root, prefix));
        }
        let p = Path::from(prefix);
        let mut v: Vec<raw::Listed> = self
            .inner
            .list(Some(&p))
            .map_ok(|m| raw::Listed { key: m.location.to_string(), size: m.size, modified: m.last_modified })
            .try_collect()
            .await
            .map_err(|source| StoreError::Op { op: "list", key: prefix.into(), source })?;
        v.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(v)
    }

    /// Every key under `prefix` with its size, sorted by key. Keys are raw (relative to the
    /// store) and never parsed: a key no valid object would have (`ledger//x`, a control
    /// character) is listed like any other.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self.list_raw(prefix).await?.into_iter().map(|l| (l.key, l.size)).collect())
    }

    /// List raw keys, sizes and modification times under `prefix`, sorted by key.
    pub async fn list_meta(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, u64, chrono::DateTime<chrono::Utc>)>, StoreError> {
        Ok(self.list_raw(prefix).await?.into_iter().map(|l| (l.key, l.size, l.modified)).collect())
    }

    /// Get a bundle for reading: the file itself in a local store, a downloaded temporary
    /// copy otherwise (in a versioned store, of the first version of its key). `None` if absent.
    pub async fn fetch_bundle(&self, id: &BundleId) -> Result<Option<Fetched>, StoreError> {
        if self.local_root.is_none() && self.reads_history().await {
            return match self.object(&bundle_key(id)).await? {
                Some(o) => self.fetch_bundle_at(id, &o.at).await,
                None => Ok(None),
            };
        }
        self.fetch_bundle_at(id, &ReadAt::Current).await
    }

    /// [`Store::fetch_bundle`] of the bytes `at` says (from a listing).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) async fn fetch_bundle_at(&self, id: &BundleId, at: &ReadAt) -> Result<Option<Fetched>, StoreError> {
        let key = bundle_key(id);
        if let Some(root) = &self.local_root {
            let p = root.join(&key);
            return Ok(p.is_file().then_some(Fetched::Local(p)));
        }
        Ok(self.fetch_to_temp(&key, at).await?.map(|(t, _)| Fetched::Temp(t)))
    }

    /// Bundle `id` as `at` says, opened for reading as it downloads in ranged GETs pinned to
    /// one object ([`ranged`]); read it from a blocking thread. `size_hint`: its size from the
    /// listing or HEAD the caller already has. `None` if absent. Remote stores only: a local
    /// store's bundle is read as the file it is ([`Store::fetch_bundle_at`]).
    pub(crate) async fn open_bundle_ranged(
        &self,
        id: &BundleId,
        at: &ReadAt,
        size_hint: Option<u64>,
    ) -> Result<Option<ranged::RangedReader>, StoreError> {
        let key = bundle_key(id);
        ranged::open(self.inner.clone(), &key, &self.location(&key), at, size_hint).await
    }

    /// Downloads `key` as `at` says into a temporary file (registered for removal if the run
    /// is interrupted) and returns it with the SHA-256 of its bytes.
    async fn fetch_to_temp(
        &self,
        key: &str,
        at: &ReadAt,
    ) -> Result<Option<(TrackedTemp, crate::digest::Sha256)>, StoreError> {
        let path = Path::from(key);
        let version = match at {
            ReadAt::Current => None,
            ReadAt::Version(v) => Some(v.clone()),
            ReadAt::NoVersion => return Ok(None),
        };
        let opts = object_store::GetOptions { version, ..Default::default() };
        let r = match self.inner.get_opts(&path, opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(StoreError::Op { op: "get", key: key.into(), source }),
        };
        let tmp = crate::unfinished::temp_file(&tempfile::Builder::new(), None).map_err(|source| StoreError::Io {
            op: "cannot create temp file in",
            path: std::env::temp_dir(),
            source,
        })?;
        let file =
            tmp.reopen().map_err(|source| StoreError::Io { op: "cannot open", path: tmp.path().into(), source })?;
        let mut w = HashingWriter::new(std::io::BufWriter::new(file));
        let mut stream = r.into_stream();
        while let Some(chunk) =
            stream.try_next().await.map_err(|source| StoreError::Op { op: "get", key: key.into(), source })?
        {
            w.write_all(&chunk).map_err(|source| StoreError::Io {
                op: "cannot write",
                path: tmp.path().into(),
                source,
            })?;
        }
        let (mut bw, d, _) = w.finish();
        bw.flush().map_err(|source| StoreError::Io { op: "cannot write", path: tmp.path().into(), source })?;
        let mut f = bw.into_inner().map_err(|e| StoreError::Io {
            op: "cannot write",
            path: tmp.path().into(),
            source: e.into_error(),
        })?;
        let _ = f.seek(SeekFrom::Start(0));
        Ok(Some((tmp, d)))
    }
}

/// Builds the S3 HTTP client from options *without* the lock headers. `object_store` adds
/// its default headers to most requests before signing them, but its reqwest client would
/// also add them, unsigned, to the requests it does not (ListObjectsV2): S3 rejects a request
/// with an unsigned `x-amz-*` header. With this connector, the lock headers travel only where
/// they are signed.
#[derive(Debug)]
struct WithoutDefaultHeaders(object_store::ClientOptions);

impl object_store::client::HttpConnector for WithoutDefaultHeaders {
    fn connect(
        &self,
        _with_defaults: &object_store::ClientOptions,
    ) -> object_store::Result<object_store::client::HttpClient> {
        let plain =
            object_store::client::HttpConnector::connect(&object_store::client::ReqwestConnector::default(), &self.0)?;
        Ok(object_store::client::HttpClient::new(EchoChecked(plain)))
    }
}

/// The `object_store` path of a normalised prefix: its segments as they are (the prefix was
/// checked to hold nothing `object_store` would escape, [`address`]).
fn prefix_path(prefix: &str) -> Path {
    Path::from_iter(prefix.split('/'))
}

/// An endpoint must not carry a user name or password: S3 and Azure take credentials from
/// their own variables, and a URL with userinfo would be echoed in every error message.
fn check_endpoint(e: &str) -> Result<(), StoreError> {
    let authority = e.split_once("://").map(|(_, r)| r).unwrap_or(e);
    let authority = &authority[..authority.find(['/', '?', '#']).unwrap_or(authority.len())];
    if authority.contains('@') {
        return Err(StoreError::Endpoint {
            endpoint: address::redact(e),
            reason: "it carries a user name or password (shown as ***): give S3 credentials as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, Azure ones as AZURE_STORAGE_ACCOUNT_KEY, and the endpoint without them",
        });
    }
    Ok(())
}

/// The SHA-256 of a payload's bytes.
fn payload_digest(p: &PutPayload) -> crate::digest::Sha256 {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for chunk in p.iter() {
        h.update(chunk);
    }
    crate::digest::Sha256(h.finalize().into())
}

/// The HTTP client of S3 data requests: when the server echoes `x-amz-checksum-sha256`, the
/// echo must be the checksum that was sent (a server that stored other bytes says so here).
#[derive(Debug)]
struct EchoChecked(object_store::client::HttpClient);

/// A server echoed another checksum than the one sent.
#[derive(Debug, thiserror::Error)]
#[error("the server answered x-amz-checksum-sha256 {echo:?} to an upload sent with {sent:?}: it stored other bytes")]
struct ChecksumEcho {
    sent: String,
    echo: String,
}

#[async_trait::async_trait]
impl object_store::client::HttpService for EchoChecked {
    async fn call(
        &self,
        req: object_store::client::HttpRequest,
    ) -> Result<object_store::client::HttpResponse, object_store::client::HttpError> {
        let sent = req.headers().get(lock::CHECKSUM_HEADER).cloned();
        let resp = self.0.execute(req).await?;
        if let (Some(sent), Some(echo)) = (sent, resp.headers().get(lock::CHECKSUM_HEADER)) {
            if resp.status().is_success() && *echo != sent {
                let e = ChecksumEcho {
                    sent: sent.to_str().unwrap_or("?").into(),
                    echo: echo.to_str().unwrap_or("?").into(),
                };
                return Err(object_store::client::HttpError::new(object_store::client::HttpErrorKind::Unknown, e));
            }
        }
        Ok(resp)
    }
}

fn flatten(p: &PutPayload) -> Vec<u8> {
    let mut v = Vec::with_capacity(p.content_length());
    for chunk in p.iter() {
        v.extend_from_slice(chunk);
    }
    v
}

/// Errors worth another attempt: everything but answers that will not change.
fn is_transient(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotFound { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::InvalidPath { .. }
    )
}

fn set_read_only(p: &FsPath) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o444)).map_err(|source| StoreError::Io {
            op: "cannot make read-only",
            path: p.into(),
            source,
        })?;
    }
    #[cfg(not(unix))]
    {
        let mut perm = std::fs::metadata(p)
            .map_err(|source| StoreError::Io { op: "cannot stat", path: p.into(), source })?
            .permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(p, perm).map_err(|source| StoreError::Io {
            op: "cannot make read-only",
            path: p.into(),
            source,
        })?;
    }
    Ok(())
}

fn sync_dir(d: &FsPath) {
    if let Ok(f) = std::fs::File::open(d) {
        let _ = f.sync_all();
    }
}

/// Bytes written to a staging file between two background `fdatasync` calls.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) const SYNC_AHEAD_EVERY: u64 = 32 << 20;

/// Writes to a staging file and, every `every` bytes, asks a background thread to
/// `fdatasync` a clone of the descriptor (skipped while one is still running), so the data is
/// written back to the disk while the bundle is still being sealed and the `fsync` before the
/// create-only link (in [`Store::put_bundle`]) waits for the tail only. Durability is still
/// decided by that final `fsync`; this only moves disk time off the critical path.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) struct SyncAhead {
    file: std::fs::File,
    since: u64,
    every: u64,
    tx: Option<std::sync::mpsc::SyncSender<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl SyncAhead {
    /// Wrap `file`; without a clone of the descriptor or a thread, it is a plain writer.
    pub fn new(file: std::fs::File, every: u64) -> Self {
        let started = file.try_clone().ok().and_then(|clone| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            std::thread::Builder::new()
                .name("custody-sync".into())
                .spawn(move || {
                    for () in rx {
                        let _ = clone.sync_data();
                    }
                })
                .ok()
                .map(|h| (tx, h))
        });
        let (tx, worker) = match started {
            Some((tx, h)) => (Some(tx), Some(h)),
            None => (None, None),
        };
        SyncAhead { file, since: 0, every, tx, worker }
    }
}

impl std::io::Write for SyncAhead {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since += n as u64;
        if self.since >= self.every {
            self.since = 0;
            if let Some(tx) = &self.tx {
                // Full: a sync is already queued; this one is not needed.
                let _ = tx.try_send(());
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for SyncAhead {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod sync_ahead_tests {
    use super::SyncAhead;
    use std::io::Write;

    #[test]
    fn sync_ahead_writes_every_byte_in_order_while_syncing() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        {
            // A sync requested after every 4 KiB: many overlap with writes.
            let mut w = SyncAhead::new(f.reopen().unwrap(), 4096);
            for chunk in data.chunks(1000) {
                w.write_all(chunk).unwrap();
            }
            w.flush().unwrap();
        }
        assert_eq!(std::fs::read(f.path()).unwrap(), data);
    }
}
