//! Time and collector identity.
//!
//! `SOURCE_DATE_EPOCH` (seconds since the Unix epoch, the reproducible-builds convention)
//! fixes every timestamp custody writes, so the same evidence gives a byte-identical bundle.

use chrono::{DateTime, TimeZone, Utc};

/// A time source: the system clock, or a fixed instant.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { fixed: None }
    }
    /// Always `t`.
    pub fn fixed(t: DateTime<Utc>) -> Self {
        Clock { fixed: Some(t) }
    }
    /// `SOURCE_DATE_EPOCH` if set and valid, else the system clock.
    pub fn from_env() -> Self {
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(|s| Utc.timestamp_opt(s, 0).single())
            .map(Clock::fixed)
            .unwrap_or_default()
    }
    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

/// This host's name.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The user running custody.
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn user_name() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").map(|m| format!("uid {}", m.uid())).unwrap_or_else(|_| "unknown".into())
        }
        #[cfg(not(unix))]
        {
            "unknown".into()
        }
    })
}
