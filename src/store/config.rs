//! Store configuration: how to reach an object store and what to ask of it on every write.
//!
//! Sources, lowest precedence first: the standard environment variables of the backend
//! (`AWS_ENDPOINT` / `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, …), a store config file
//! (JSON, `--store-config FILE` or `$CUSTODY_STORE_CONFIG`), then command-line overrides
//! (`--s3-endpoint`, `--s3-region`, `--s3-allow-http`, `--retention`, `--lock-mode`).
//!
//! A [`Retention`] makes every object write carry S3 Object Lock headers; without one, the
//! bucket's default retention (if any) is what protects the evidence.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read store config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("store config {path} is not valid (expected JSON with keys endpoint, region, allow_http, retention_days, lock_mode, legal_hold, max_retries, retry_timeout_secs, tsa, require_timestamp)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A lock mode other than compliance or governance.
    #[error("lock mode `{0}` is not known: use compliance or governance")]
    LockMode(String),
    /// A lock mode without a retention period.
    #[error("a lock mode was given without a retention period: add --retention DAYS (or retention_days in the store config)")]
    ModeWithoutRetention,
    /// A zero retention.
    #[error("--retention must be at least 1 day")]
    ZeroRetention,
}

/// S3 Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LockMode {
    /// Nobody, not even the account root, can delete or shorten the retention before it ends.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can delete or shorten the retention.
    Governance,
}

impl LockMode {
    /// The S3 header value (`COMPLIANCE` / `GOVERNANCE`).
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn header_value(&self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

impl FromStr for LockMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "compliance" => Ok(LockMode::Compliance),
            "governance" => Ok(LockMode::Governance),
            _ => Err(ConfigError::LockMode(s.chars().take(40).collect())),
        }
    }
}

/// Object Lock retention requested for every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// Days from the moment of writing.
    pub days: u32,
    /// The lock mode.
    pub mode: LockMode,
}

/// Everything that configures a store beyond its URL. Every field is optional; `None` means
/// "from the environment / the backend's default".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreOptions {
    /// Endpoint URL: for S3 (e.g. `http://127.0.0.1:9000` for MinIO) it overrides
    /// `AWS_ENDPOINT`; for Azure, the account's blob endpoint (e.g.
    /// `http://127.0.0.1:10000/devstoreaccount1` for Azurite), overriding
    /// `AZURE_STORAGE_ENDPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region; overrides `AWS_REGION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Allow plain HTTP endpoints; overrides `AWS_ALLOW_HTTP` / `AZURE_ALLOW_HTTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
    /// Object Lock retention in days (with [`StoreOptions::lock_mode`], default compliance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Object Lock mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_mode: Option<LockMode>,
    /// Put an S3 Object Lock legal hold on every object written (`--legal-hold`): it lasts
    /// until someone with `s3:PutObjectLegalHold` lifts it, whatever the retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_hold: Option<bool>,
    /// Retries of one request on transient errors (5xx, timeouts, resets); default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<usize>,
    /// Give up retrying one request after this many seconds; default 180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_timeout_secs: Option<u64>,
    /// An RFC 3161 TSA URL: every preserve (and `custody timestamp`, `custody checkpoint`)
    /// timestamps its signature there unless `--tsa` names another. Set once in the config
    /// file a team shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsa: Option<String>,
    /// `verify` requires a timestamp token on every bundle it verifies in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_timestamp: Option<bool>,
}

/// Default retries per request.
pub const DEFAULT_MAX_RETRIES: usize = 10;
/// Default retry budget per request.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(180);

impl StoreOptions {
    /// Read a JSON config file.
    pub fn from_file(path: &Path) -> Result<StoreOptions, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse { path: path.into(), source })
    }

    /// The file named by `$CUSTODY_STORE_CONFIG`, if set; defaults otherwise.
    pub fn from_env() -> Result<StoreOptions, ConfigError> {
        match std::env::var_os("CUSTODY_STORE_CONFIG").filter(|v| !v.is_empty()) {
            Some(p) => StoreOptions::from_file(Path::new(&p)),
            None => Ok(StoreOptions::default()),
        }
    }

    /// `other`'s set fields override ours.
    pub fn merged(mut self, other: StoreOptions) -> StoreOptions {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            endpoint,
            region,
            allow_http,
            retention_days,
            lock_mode,
            legal_hold,
            max_retries,
            retry_timeout_secs,
            tsa,
            require_timestamp
        );
        self
    }

    /// The retention to request on writes: `None` relies on the bucket default. A lock mode
    /// without days is an error; days without a mode mean compliance.
    pub fn retention(&self) -> Result<Option<Retention>, ConfigError> {
        match (self.retention_days, self.lock_mode) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ConfigError::ModeWithoutRetention),
            (Some(0), _) => Err(ConfigError::ZeroRetention),
            (Some(days), mode) => Ok(Some(Retention { days, mode: mode.unwrap_or(LockMode::Compliance) })),
        }
    }

    /// The retry budget.
    #[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
    pub(crate) fn retry_config(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            retry_timeout: self.retry_timeout_secs.map(Duration::from_secs).unwrap_or(DEFAULT_RETRY_TIMEOUT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_needs_days_and_defaults_to_compliance() {
        let o = StoreOptions { retention_days: Some(7), ..Default::default() };
        assert_eq!(o.retention().unwrap(), Some(Retention { days: 7, mode: LockMode::Compliance }));
        let o = StoreOptions { lock_mode: Some(LockMode::Governance), ..Default::default() };
        assert!(matches!(o.retention(), Err(ConfigError::ModeWithoutRetention)));
        assert_eq!(StoreOptions::default().retention().unwrap(), None);
    }

    #[test]
    fn cli_overrides_file() {
        let file = StoreOptions { region: Some("eu-west-1".into()), max_retries: Some(3), ..Default::default() };
        let cli = StoreOptions { region: Some("us-east-2".into()), ..Default::default() };
        let m = file.merged(cli);
        assert_eq!(m.region.as_deref(), Some("us-east-2"));
        assert_eq!(m.max_retries, Some(3));
    }

    #[test]
    fn config_file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("store.json");
        std::fs::write(&p, br#"{"retention_days": 30, "lock_mode": "governance"}"#).unwrap();
        let o = StoreOptions::from_file(&p).unwrap();
        assert_eq!(o.retention().unwrap(), Some(Retention { days: 30, mode: LockMode::Governance }));
        std::fs::write(&p, br#"{"retention": 30}"#).unwrap();
        assert!(matches!(StoreOptions::from_file(&p), Err(ConfigError::Parse { .. })));
    }
}
