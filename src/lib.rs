//! custody: preserve the evidence of an AI-agent incident in a sealed, signed, write-once
//! bundle, and prove later — offline, with pinned keys — that nothing was altered, removed,
//! reordered or replayed.
//!
//! # For tooling: reading sealed evidence
//!
//! [`Bundle::open`] (a file) or [`Bundle::open_in_store`] (by digest, with its ledger
//! position) verifies a bundle in full and gives a [`VerifiedBundle`] — the only way to its
//! [`manifest`], identifiers, typed [`analysis`] and events, its files
//! ([`VerifiedBundle::copy_file`]) and the exact bytes each event cites
//! ([`VerifiedBundle::resolve`]). [`timeline::Timeline::of`] orders and filters the events;
//! [`export`] writes them as OTLP or an eval case. `examples/timeline.rs` prints a timeline
//! with this API alone.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use custody::{keys::PublicKey, verify::Trust, Bundle};
//!
//! let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library");
//! let trust = Trust::new(vec![PublicKey::load(&dir.join("signer.pub"))?]);
//! let bundle = Bundle::open(dir.join("incident.tar.zst"), &trust)?;
//! for e in bundle.events() {
//!     println!("{:?} {} {:?}", e.kind, e.target.as_deref().unwrap_or("-"), e.outcome.as_ref().map(|o| o.status));
//! }
//! # Ok(()) }
//! ```
//!
//! # Preserving and verifying
//!
//! The data walks one way: sources → collect (plan) → seal → [`store`] (write-once + ledger)
//! → later [`verify`]. [`preserve::preserve`] does the first three; the verifier reads every
//! byte as untrusted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = custody::store::Store::open("memory://")?;
//! let key = Arc::new(custody::keys::SecretKey::load("signing.key".as_ref())?);
//! let req = custody::preserve::PreserveRequest { incident_dir: Some("incident/".into()), ..Default::default() };
//! let done = custody::preserve::preserve(&store, key.clone(), req, custody::clock::Clock::system()).await?;
//! let trust = custody::verify::Trust::new(vec![key.public.clone()]);
//! let (report, _) = custody::verify::verify_in_store(&store, &done.bundle, &trust, &Default::default()).await?;
//! assert!(report.intact());
//! # Ok(()) }
//! ```
//!
//! The library never draws on a terminal: long operations report to a
//! [`progress::Progress`], and timings are `tracing` events of target [`TIMING`]. What is not
//! in these docs is internal (`pub(crate)`; custody's own tests reach it through the
//! `internals` feature, which is no API).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Declares one of custody's internal modules: `pub(crate)`, and — only with the `internals`
/// feature, which custody's own integration tests turn on — `pub` under the same path and
/// hidden from the docs. What a tool may rely on is what `cargo doc` shows without it.
macro_rules! internal_mod {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$meta])*
        #[cfg(not(feature = "internals"))]
        // Some internals exist for custody's tests (`scan`, `seal`, the Merkle inclusion
        // proof, …): unused without the feature, as they were unseen when they were `pub`.
        #[allow(dead_code, unused_imports)]
        pub(crate) mod $name;
    };
}

// An item of a public module that no tool may use — a writer (it must go through `preserve`,
// `analyze` or `adopt_unreferenced`, which keep the ledger protocol), a raw backend handle, a
// read at a version the caller picks, plumbing — is `pub(crate)` and carries
//
//     #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
//
// the item-level counterpart of `internal_mod!`: `pub`, hidden from the docs, only with the
// `internals` feature, for custody's own tests; the `visibility` crate is a dependency only
// then. A `macro_rules!` cannot change the visibility of a method in an impl block (nor leave
// its body to rustfmt), and an extension trait would not cover free functions and constants.
// `grep -rn 'visibility::make' src` lists them all; `src/api_guard.rs` stops the build of the
// binary (without the feature) if one of them becomes public.

pub mod analyze;
pub mod clock;
pub mod digest;
pub mod export;
pub mod extract;
pub mod keys;
pub mod preserve;
pub mod progress;
pub mod search;
pub mod store;
pub mod timeline;
pub mod tsa;
pub mod unfinished;
pub mod untrusted;
pub mod verify;
pub mod witness;

mod open;

internal_mod!(bundle);
internal_mod!(cite);
internal_mod!(collect);
internal_mod!(read);

pub use cite::CiteError;
pub use open::{BlobError, Bundle, NoAnalysis, OpenError, VerifiedBundle, MAX_ANALYSIS};

/// Entry points into custody's internals for its own tests (with the `internals` feature):
/// not an API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    use std::path::Path;

    /// `extract` from a bundle file and a manifest that need not have been verified (the
    /// extract tests' defence-in-depth cases).
    pub fn extract_file(
        bundle: &Path,
        manifest: &crate::manifest::Manifest,
        dir: &Path,
        limits: &crate::read::archive::Limits,
    ) -> Result<crate::extract::Extracted, crate::extract::ExtractError> {
        crate::extract::extract_file(bundle, manifest, dir, limits)
    }
}

/// The typed analysis of an incident (`analysis.json`, format `custody-analysis/v2`): its
/// identifiers, the chain, and its events, each citing the sealed records that describe it.
/// [`VerifiedBundle::analysis`] reads it from a verified bundle; `schemas/analysis.v2.schema.json`
/// is its JSON Schema.
pub mod analysis {
    pub use crate::collect::analysis::*;
}

/// A bundle's signed manifest (`custody-bundle/v3`): what was sealed — the incident, its
/// identifiers and completeness, every file with its SHA-256 — and when.
/// [`VerifiedBundle::manifest`] gives the verified one.
pub mod manifest {
    pub use crate::bundle::manifest::*;
}

#[cfg(test)]
mod test_readers;

use std::path::PathBuf;

/// The `tracing` target of custody's timing events (phases of a preserve, the sealer's and
/// the analysis' waits and memory): for a subscriber that wants them. The binary prints them
/// on stderr with `CUSTODY_TIMINGS=1`.
pub const TIMING: &str = "custody::timing";

/// custody's home: `$CUSTODY_HOME`, else `$XDG_DATA_HOME/custody`, else
/// `~/.local/share/custody`. Holds the default key (`keys/default.key`) and the default
/// store (`store/`).
pub fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CUSTODY_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("custody");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/custody")
}

/// A file's identity on this host: its device and inode numbers (`st_dev`, `st_ino`) and, where
/// the file system records one, its birth time (`statx` `btime`). Two paths — a hard link, a bind
/// mount, a symbolic link — name the same file exactly when their identities are equal; a path
/// that now names another file has another identity. The birth time is there because an inode
/// number is reused: a file deleted and another created in its place (ext4, XFS, overlayfs do
/// this at once) gets the same device and inode, but not the same birth time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Birth time (seconds and nanoseconds since the Unix epoch), when the file system keeps
    /// it; the same file always gives the same answer here, so equality stays exact.
    pub born: Option<(i64, u32)>,
}

impl FileId {
    /// The identity of the file `meta` was read from.
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        let born = meta.created().ok().map(|t| match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
            // Before 1970: keep it distinct and exact rather than fail.
            Err(e) => (i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s), e.duration().subsec_nanos()),
        });
        FileId { dev: meta.dev(), ino: meta.ino(), born }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "device {} inode {}", self.dev, self.ino)?;
        if let Some((s, ns)) = self.born {
            write!(f, " born {s}.{ns:09}")?;
        }
        Ok(())
    }
}

/// The default store URL: `$CUSTODY_STORE`, else `<home>/store`.
pub fn default_store_url() -> String {
    std::env::var("CUSTODY_STORE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| home_dir().join("store").display().to_string())
}

/// The default signing key: `$CUSTODY_KEY`, else `<home>/keys/default.key`.
pub fn default_key_path() -> PathBuf {
    std::env::var_os("CUSTODY_KEY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join("keys/default.key"))
}

/// An error and its causes, each said once, joined by ": " (what `{:#}` of an
/// `anyhow::Error` shows): for the places where an error becomes text (a finding's message, a
/// journal detail, the binary's error line).
///
/// custody's own errors never write their source's text into their message (the source is
/// the next link; `tests::every_error_says_its_cause_once` holds them to it). Some other
/// crates' errors do (object_store's, its retry errors), and expose it as their source too:
/// a link whose text already contains the next one's ends the repetition, and that next link
/// is not written again.
pub fn error_chain<'a>(links: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut out = String::new();
    let mut shown = String::new();
    for link in links {
        let text = link.to_string();
        if text.is_empty() || (!shown.is_empty() && shown.contains(&text)) {
            shown = text;
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        shown = text;
    }
    out
}

/// [`error_chain`] of `e` and its sources.
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    error_chain(std::iter::successors(Some(e), |e| e.source()))
}

/// Test hook for crash tests: with `CUSTODY_TEST_PAUSE=<point>`, announce the point on stderr
/// and sleep there (so a test can kill the process at a known step). Points: `sealing` (the
/// staging file created, nothing sealed yet), `after-bundle` (bundle stored, ledger entry
/// not yet written), `extracted-one` (an extract has written its first file).
pub(crate) fn test_pause(point: &str) {
    if std::env::var("CUSTODY_TEST_PAUSE").is_ok_and(|v| v == point) {
        eprintln!("custody: test pause at {point}");
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::path::PathBuf;

    /// A cause whose text can be counted in a message.
    fn io(n: usize) -> std::io::Error {
        std::io::Error::other(format!("disk-on-fire-{n}"))
    }

    fn store_op(n: usize) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: Box::new(io(n)) }
    }

    /// Every error type of the library with a source, one value of each such variant: its
    /// message does not contain its source's text (printed with `{:#}` / [`crate::error_text`]
    /// the cause would show twice), and [`crate::error_text`] shows the innermost cause once.
    #[test]
    fn every_error_says_its_cause_once() {
        use crate::collect::analyze::ScanError;
        use crate::collect::observe::FormatOverride;
        use crate::collect::spec::SpecError;
        use crate::store::config::ConfigError;
        use crate::store::lock::LockError;
        use crate::store::StoreError;
        let p = || PathBuf::from("/x/y");
        let toml_err = || toml::from_str::<toml::Value>("x = ").unwrap_err();
        let json_err = || serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let join_err = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            let t = tokio::spawn(std::future::pending::<()>());
            t.abort();
            t.await.unwrap_err()
        });
        let bad_format = "logs=nonsense".parse::<FormatOverride>().unwrap_err();
        let http = object_store::client::HttpError::new(object_store::client::HttpErrorKind::Connect, io(7));
        let key_dir = tempfile::tempdir().unwrap();
        let junk = key_dir.path().join("junk.key");
        std::fs::write(&junk, "junk").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let cases: Vec<Box<dyn Error + 'static>> = vec![
            Box::new(crate::bundle::write::SealError::Output(io(1))),
            Box::new(SpecError::Read { path: p(), source: io(2) }),
            Box::new(SpecError::Parse { path: p(), source: toml_err() }),
            Box::new(crate::collect::CollectError::Stdin(io(3))),
            Box::new(ScanError::Io { offset: 10, source: io(4) }),
            Box::new(crate::collect::analyze::MappingError::Read { path: "m.toml".into(), source: io(5) }),
            Box::new(crate::collect::analyze::MappingError::Toml(toml_err())),
            Box::new(crate::collect::analyze::MappingError::Json(json_err())),
            Box::new(crate::collect::analyze::MappingError::Invalid {
                path: "m.toml".into(),
                source: Box::new(crate::collect::analyze::MappingError::Toml(toml_err())),
            }),
            Box::new(bad_format),
            Box::new(crate::keys::KeyError::Read { path: p(), source: io(6) }),
            Box::new(crate::keys::KeyError::Write { path: p(), source: io(8) }),
            Box::new(crate::keys::KeyError::CreateDir { path: p(), source: io(21) }),
            Box::new(crate::keys::PublicKey::from_pem("junk", &p()).unwrap_err()),
            Box::new(crate::read::envelope::ParseError::Json { what: "envelope", source: json_err() }),
            Box::new(
                crate::read::envelope::CheckedEnvelope::parse(
                    br#"{"payloadType":"t","payload":"!!","signatures":[{"keyid":"k","sig":"s"}]}"#,
                    "t",
                )
                .unwrap_err(),
            ),
            Box::new(crate::extract::ExtractError::Io { op: "cannot create", path: p(), source: io(9) }),
            Box::new(crate::extract::ExtractError::LeftBehind {
                error: Box::new(crate::extract::ExtractError::Io { op: "cannot create", path: p(), source: io(10) }),
                left: vec![p()],
            }),
            Box::new(LockError::Credentials(store_op(11))),
            Box::new(LockError::Sign { url: "https://b/k".into(), source: store_op(12) }),
            Box::new(LockError::Http { op: "PUT", url: "https://b/k".into(), source: http }),
            Box::new(StoreError::Open { url: "s3://b".into(), source: store_op(13) }),
            Box::new(StoreError::Op { op: "get", key: "k".into(), source: store_op(14) }),
            Box::new(StoreError::Io { op: "cannot create", path: p(), source: io(15) }),
            Box::new(StoreError::RangeRead { key: "s3://b/k".into(), start: 0, end: 8, source: store_op(21) }),
            Box::new(ConfigError::Read { path: p(), source: io(16) }),
            Box::new(ConfigError::Parse { path: p(), source: json_err() }),
            Box::new(crate::preserve::PreserveError::BundleNotStored {
                bundle: crate::digest::BundleId(crate::digest::Sha256([1; 32])),
                source: Box::new(StoreError::Io { op: "cannot create", path: p(), source: io(17) }),
            }),
            Box::new(crate::preserve::PreserveError::NotRecorded {
                bundle: crate::digest::BundleId(crate::digest::Sha256([1; 32])),
                location: "s3://b/bundles/x".into(),
                source: Box::new(StoreError::Io { op: "cannot create", path: p(), source: io(18) }),
            }),
            Box::new(crate::preserve::PreserveError::Mapping(crate::collect::analyze::MappingError::Read {
                path: "m.toml".into(),
                source: io(19),
            })),
            Box::new(crate::preserve::PreserveError::Thread(io(20))),
            Box::new(crate::preserve::PreserveError::Task(join_err)),
            Box::new(crate::OpenError::Read { path: p(), source: io(22) }),
            Box::new(crate::OpenError::Store {
                bundle: crate::digest::BundleId(crate::digest::Sha256([1; 32])),
                source: Box::new(StoreError::Io { op: "cannot create", path: p(), source: io(23) }),
            }),
            Box::new(crate::BlobError::Read { path: p(), source: io(24) }),
            Box::new(crate::BlobError::Write { path: "logs/x.jsonl".into(), source: io(25) }),
            Box::new(crate::CiteError::Open { path: p(), source: io(26) }),
            Box::new(crate::CiteError::Decode { path: "logs/x.jsonl.gz".into(), source: io(27) }),
            Box::new(crate::analyze::AnalyzeError::OriginalMapping {
                bundle: crate::digest::BundleId(crate::digest::Sha256([1; 32])),
                what: "its analysis.json does not match custody-analysis/v2".into(),
                source: Some(json_err()),
            }),
        ];
        for e in &cases {
            let top = e.to_string();
            let source = e.source().unwrap_or_else(|| panic!("{top:?} has no source: not a case of this test"));
            let cause = source.to_string();
            assert!(!top.contains(&cause), "{top:?} repeats its cause {cause:?}");
            let text = crate::error_text(e.as_ref());
            let mut innermost: &(dyn Error + 'static) = e.as_ref();
            while let Some(s) = innermost.source() {
                innermost = s;
            }
            let innermost = innermost.to_string();
            assert_eq!(text.matches(&innermost).count(), 1, "{text:?}: the innermost cause {innermost:?} once");
            assert!(text.starts_with(&top) && text.len() > top.len(), "{text:?}");
        }
        // A key file that is not a key: what, where, and the decoder's cause once.
        let e = crate::keys::SecretKey::load(&junk).unwrap_err();
        let text = crate::error_text(&e);
        assert!(text.contains("junk.key") && text.contains("PKCS#8"), "{text}");
    }

    /// object_store's errors write their source into their own message and expose it as their
    /// source too: the chain shows it once.
    #[test]
    fn a_foreign_error_that_repeats_its_source_is_shown_once() {
        let e = crate::store::StoreError::Op { op: "get", key: "k".into(), source: store_op(1) };
        let text = crate::error_text(&e);
        assert_eq!(text, "store operation `get` on `k` failed: Generic S3 error: disk-on-fire-1");
    }
}
