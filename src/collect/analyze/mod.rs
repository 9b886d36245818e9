//! The analysis engine: reads incident evidence in the formats it knows ([`formats`]),
//! classifies every field by what it means ([`semantics`]), finds the seed and every value
//! linked to it wherever it occurs ([`values`], [`engine`]), merges the records that
//! describe one action into one event ([`events`]), and reports the incident
//! ([`report`], the model in [`crate::collect::analysis`]).
//!
//! The engine only reads: collected bytes are never altered. [`scan`] streams one input and
//! emits one [`Record`] per item (a span, a log line, a decision…) with its byte range;
//! [`Analyzer`] takes the records of many sources and links them online.

pub(crate) mod engine;
pub(crate) mod events;
pub(crate) mod formats;
pub(crate) mod item;
mod jsoncheck;
mod mapping;
mod reader;
pub(crate) mod report;
mod scan;
pub(crate) mod semantics;
mod types;
pub(crate) mod values;

pub use engine::{Analyzer, AnalyzerLimits, Needles, SourceId};
pub use formats::{detect, Compression, Format, FormatParseError, Layout};
pub use jsoncheck::{is_valid_json, max_nesting};
pub use mapping::{FieldMapping, MappingError};
pub use report::{Report, ReportContext};
pub use scan::{scan, scan_auto, scan_filtered, scan_with_limits, LineFilter, ScanLimits, ScanSummary, ValidateOnly};
pub use types::{IdentName, IdentParseError, Problem, Record, ScanError};

use crate::collect::analysis::{Seed, SeedOrigin};

/// A seed the responder gave that is not a value of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} `{value}` is not {what}")]
pub struct SeedError {
    /// The flag.
    pub flag: String,
    /// The value as given.
    pub value: String,
    /// What it should have been.
    pub what: String,
}

/// Normalises a seed: a trace id given as a W3C `traceparent`, in upper case, UUID-hyphenated,
/// base64 or X-Ray form becomes its 32 lower-case hex digits (and the seed says so). A value
/// that cannot be one of its kind is an error (exit 2): an all-zero or non-hex trace id, an
/// empty value, control characters, or a value longer than 1 KiB. `ident` `None` is
/// `--seed VALUE`: any value, searched for as written (in any case).
pub fn normalize_seed(ident: Option<IdentName>, raw: &str, origin: SeedOrigin) -> Result<Seed, SeedError> {
    let flag = ident.map_or_else(|| "seed".to_string(), |i| i.as_str().replace('_', "-"));
    let err = |what: &str| SeedError { flag: flag.clone(), value: raw.chars().take(120).collect(), what: what.into() };
    let plain = values::normalize_plain(raw)
        .ok_or_else(|| err("a usable value (empty, over 1 KiB, or with control characters)"))?;
    let (value, normalised) = match ident {
        Some(IdentName::TraceId) => {
            let v = values::normalize_trace_id(&plain).ok_or_else(|| {
                err("a trace id (32 hex digits, or a traceparent, UUID, base64 or X-Ray form of one; not all zeros)")
            })?;
            let how = if values::traceparent(&plain).is_some() {
                Some("taken from a W3C traceparent")
            } else if plain.starts_with("1-") && plain.len() == 35 {
                Some("taken from an AWS X-Ray trace id")
            } else if plain.contains('-') {
                Some("UUID hyphens removed")
            } else if plain.starts_with("trace_") {
                Some("`trace_` prefix (OpenAI Agents SDK) removed")
            } else if plain.bytes().any(|b| b.is_ascii_uppercase()) && plain.bytes().all(|b| b.is_ascii_hexdigit()) {
                Some("lower-cased")
            } else if !plain.bytes().all(|b| b.is_ascii_hexdigit()) {
                Some("decoded from base64")
            } else {
                None
            };
            (v, how.map(str::to_string))
        }
        _ => (plain, None),
    };
    let given = (value != raw).then(|| raw.to_string());
    Ok(Seed { ident, value, given, normalised, origin, records: 0 })
}
