//! custody: preserve the evidence of an AI-agent incident in a sealed, signed, write-once
//! bundle, and prove later — offline, with pinned keys — that nothing was altered, removed,
//! reordered or replayed.
//!
//! The data walks one way: sources → [`collect`] (plan) → [`bundle::write`] (seal) →
//! [`store`] (write-once + ledger) → later [`read`] (untrusted bytes) → [`verify`].
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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
pub mod clock;
pub mod collect;
pub mod digest;
pub mod extract;
pub mod keys;
pub mod preserve;
pub mod progress;
pub mod read;
pub mod store;
pub mod unfinished;
pub mod untrusted;
pub mod verify;

#[cfg(test)]
mod test_readers;

use std::path::PathBuf;

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
