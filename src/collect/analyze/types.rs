//! Core data types shared by the scanners and the analyzer: problems, and the per-item
//! [`Record`] a scan emits.

use super::item::Item;
use super::semantics::Role;
use serde::{Deserialize, Serialize};

pub use crate::bundle::manifest::{IdentName, IdentParseError};

/// A defect in the input, reported instead of being dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Problem {
    /// The item is not valid JSON.
    MalformedJson {
        /// Parser message (line/column are relative to the item).
        message: String,
    },
    /// The item is not valid UTF-8.
    InvalidUtf8 {
        /// Number of valid bytes before the first invalid sequence.
        valid_up_to: u64,
    },
    /// The item or stream ends in the middle of a value.
    Truncated {
        /// What was cut short.
        detail: String,
    },
    /// A line longer than the line limit; skipped without being buffered.
    LineTooLong {
        /// Length of the line in bytes (without terminator).
        len: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A single-document file larger than the document limit; not parsed.
    DocumentTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// The decompressed stream exceeded the decompression cap; the rest was not scanned.
    DecompressedLimit {
        /// The limit in force.
        limit: u64,
    },
    /// The compressed stream is corrupt or cut short.
    DecompressionFailed {
        /// Decoder message.
        message: String,
    },
    /// A text line that does not match the expected access-log layout.
    UnrecognisedLine,
    /// The analyzer's state limit was reached; later records were counted but not kept.
    StateLimit {
        /// The limit in force (records, or bytes of the record store).
        limit: u64,
    },
    /// A record with more values or deeper nesting than the analysis reads: its first part was
    /// analysed, the rest only sealed.
    RecordTruncated,
    /// Records read before anything linked them reached the analysis' budget for such records:
    /// later ones of files that cannot be read again were counted, not kept.
    PendingLimit {
        /// The budget in bytes.
        limit: u64,
    },
    /// Linking stopped following values of one kind at the limit.
    ExpansionLimit {
        /// The identifier or linking value (`session_id`, `call_id`…) whose values hit the limit.
        ident: String,
        /// The limit in force.
        limit: u64,
    },
    /// Reading the source failed (reported by the caller through the analyzer).
    ReadFailed {
        /// I/O error text.
        message: String,
    },
}

impl Problem {
    /// The problem's type name (`malformed_json`, `truncated`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Problem::MalformedJson { .. } => "malformed_json",
            Problem::InvalidUtf8 { .. } => "invalid_utf8",
            Problem::Truncated { .. } => "truncated",
            Problem::LineTooLong { .. } => "line_too_long",
            Problem::DocumentTooLarge { .. } => "document_too_large",
            Problem::DecompressedLimit { .. } => "decompressed_limit",
            Problem::DecompressionFailed { .. } => "decompression_failed",
            Problem::UnrecognisedLine => "unrecognised_line",
            Problem::StateLimit { .. } => "state_limit",
            Problem::PendingLimit { .. } => "pending_limit",
            Problem::RecordTruncated => "record_truncated",
            Problem::ExpansionLimit { .. } => "expansion_limit",
            Problem::ReadFailed { .. } => "read_failed",
        }
    }

    /// What, in words.
    pub fn detail(&self) -> String {
        match self {
            Problem::MalformedJson { message } => format!("malformed JSON: {message}"),
            Problem::InvalidUtf8 { valid_up_to } => format!("invalid UTF-8 after {valid_up_to} valid bytes"),
            Problem::Truncated { detail } => format!("truncated: {detail}"),
            Problem::LineTooLong { len, limit } => {
                format!("line of {len} bytes is longer than the {limit}-byte limit: sealed, not parsed")
            }
            Problem::DocumentTooLarge { limit } => format!("document larger than {limit} bytes: sealed, not parsed"),
            Problem::DecompressedLimit { limit } => {
                format!("decompressed past {limit} bytes: the rest was not scanned")
            }
            Problem::DecompressionFailed { message } => format!("decompression failed: {message}"),
            Problem::UnrecognisedLine => "line does not match the file's access-log layout".into(),
            Problem::StateLimit { limit } => format!(
                "the analysis' record store reached its limit ({limit}); later records were counted, not kept: events, counts and links after this record may be incomplete"
            ),
            Problem::RecordTruncated => "more than 512 classified values, 512 id-like values or 48 levels of nesting: the rest of the record was not analysed (it is sealed whole)".to_string(),
            Problem::PendingLimit { limit } => format!(
                "records not (yet) linked to the incident reached the analysis' budget ({} MiB); later ones were counted, not kept: a link found only through them after they were read is missing",
                limit >> 20
            ),
            Problem::ExpansionLimit { ident, limit } => format!("stopped linking {ident} values after {limit} of them"),
            Problem::ReadFailed { message } => format!("reading for analysis failed: {message}"),
        }
    }
}

/// One scanned item with its byte range in the (possibly decompressed) input.
#[derive(Debug)]
pub struct Record {
    /// Byte offset of the line or document holding the item.
    pub offset: u64,
    /// Length in bytes of that line (without terminator) or document.
    pub len: u64,
    /// 1-based line number, for line-delimited inputs.
    pub line: Option<u64>,
    /// Index of the item within its line/document (several spans per OTLP request).
    pub item: u32,
    /// Set when the item could not be read; such records carry nothing else.
    pub problem: Option<Problem>,
    /// Offsets and lengths are in the decompressed (or transcoded) stream.
    pub decompressed: bool,
    pub(crate) data: Item,
}

impl Record {
    pub(crate) fn new(offset: u64, len: u64, line: Option<u64>, decompressed: bool) -> Self {
        Record { offset, len, line, item: 0, problem: None, decompressed, data: Item::default() }
    }

    /// The identifiers the record holds, as `(identifier, normalised value, field)`.
    pub fn identifiers(&self) -> Vec<(IdentName, String, String)> {
        self.data
            .fields
            .iter()
            .filter_map(|f| match f.role {
                Role::Ident(i) => Some((i, f.value.clone(), f.path.clone())),
                _ => None,
            })
            .collect()
    }

    /// The values of one identifier the record holds.
    pub fn values(&self, ident: IdentName) -> Vec<String> {
        self.identifiers().into_iter().filter(|(i, _, _)| *i == ident).map(|(_, v, _)| v).collect()
    }

    /// Linking values and subjects, as `(kind, value, field)`: `call_id`, `request_id`, …,
    /// `subject`.
    pub fn links(&self) -> Vec<(String, String, String)> {
        self.data
            .fields
            .iter()
            .filter_map(|f| match f.role {
                Role::Link(l) => Some((l.as_str().to_string(), f.value.clone(), f.path.clone())),
                Role::Subject => Some(("subject".to_string(), f.value.clone(), f.path.clone())),
                _ => None,
            })
            .collect()
    }

    /// The events the record is evidence of, as `(kind, target, outcome)`.
    pub fn events(
        &self,
    ) -> Vec<(crate::collect::analysis::EventKind, Option<String>, Option<crate::collect::analysis::OutcomeStatus>)>
    {
        self.data.evidence.iter().map(|e| (e.kind, e.target.clone(), e.outcome.status)).collect()
    }

    /// The record's time, as RFC 3339 (UTC) when understood.
    pub fn time(&self) -> Option<String> {
        self.data.time.as_ref().map(|t| t.text.clone())
    }
}

/// Failure of a scan as a whole (data defects are [`Problem`]s, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading the input failed.
    #[error("reading input failed after {offset} bytes")]
    Io {
        /// Bytes consumed before the failure.
        offset: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
