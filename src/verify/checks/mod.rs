//! The verifier's checks, one small module each. Every check takes what it needs (typed
//! values parsed by [`crate::read`]) and adds to one [`super::findings::Findings`] collector;
//! none of them stops the others.

pub(crate) mod analysis;
pub(crate) mod archive;
pub(crate) mod contents;
pub(crate) mod envelope;
pub(crate) mod ledger;
pub(crate) mod signature;
pub(crate) mod timestamp;
pub(crate) mod versions;

use chrono::{DateTime, Duration, Utc};

/// `t + d`, saturating at the ends of chrono's range instead of panicking (times come from
/// untrusted manifests).
pub(crate) fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
pub(crate) fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
