//! Core data types shared by the scanners and the analyzer: identifier names, observations,
//! facts, problems and the per-item [`Record`].

use serde::{Deserialize, Serialize};

pub use crate::bundle::manifest::{IdentName, IdentParseError};

/// One identifier value seen in a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Which identifier.
    pub ident: IdentName,
    /// Normalised value (trace ids: lowercase hex).
    pub value: String,
    /// The value exactly as written, when it differs from `value`.
    pub raw: Option<String>,
    /// Where in the record it was found (dotted path or attribute key).
    pub field: String,
}

/// Something an item says happened, beyond its identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Fact {
    /// A tool invocation.
    ToolCall {
        /// Tool name.
        tool: String,
        /// Tool call id.
        call_id: Option<String>,
        /// Principal the call ran as.
        principal: Option<String>,
        /// Idempotency key sent with the call.
        idempotency_key: Option<String>,
        /// Visible outcome (status code, `ok`, `error`, `timeout`…); `None` when not visible.
        outcome: Option<String>,
    },
    /// A policy decision.
    Decision {
        /// OPA decision id.
        decision_id: Option<String>,
        /// Policy path queried.
        path: Option<String>,
        /// Result, rendered as compact JSON.
        result: Option<String>,
    },
    /// A human approval (request or decision).
    Approval {
        /// Approval id.
        approval_id: Option<String>,
        /// Tool or action the approval is for.
        tool: Option<String>,
        /// Decision (`approved`, `rejected`, `pending`, `timeout`…).
        decision: Option<String>,
        /// Who decided.
        approver: Option<String>,
        /// Tool call id the approval is keyed by (OpenAI Agents SDK).
        call_id: Option<String>,
    },
    /// An outbound network request.
    Egress {
        /// Host (authority) or upstream address.
        destination: String,
        /// HTTP method.
        method: Option<String>,
        /// HTTP status.
        status: Option<u16>,
        /// Bytes sent (as the proxy counts them).
        bytes_sent: Option<u64>,
        /// Bytes received (as the proxy counts them).
        bytes_received: Option<u64>,
    },
    /// A memory record read or written.
    Memory {
        /// Memory record id.
        memory_id: Option<String>,
        /// Operation (`read`, `write`, `retrieval`…).
        op: Option<String>,
    },
}

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
        /// The limit in force.
        limit: u64,
    },
    /// Identifier expansion stopped at the limit of linked values.
    ExpansionLimit {
        /// The identifier whose values hit the limit.
        ident: IdentName,
        /// The limit in force.
        limit: u64,
    },
    /// Reading the source failed (reported by the caller through the analyzer).
    ReadFailed {
        /// I/O error text.
        message: String,
    },
}

/// How a JSON input is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One value per line.
    Lines,
    /// One value for the whole input.
    Document,
    /// Text lines (access logs).
    Text,
    /// Not scanned.
    None,
}

/// One scanned item with its byte range in the (possibly decompressed) input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Byte offset of the line or document holding the item.
    pub offset: u64,
    /// Length in bytes of that line (without terminator) or document.
    pub len: u64,
    /// 1-based line number, for line-delimited inputs.
    pub line: Option<u64>,
    /// Index of the item within its line/document (several spans per OTLP request).
    pub item: u32,
    /// Timestamp of the item (RFC 3339 when derived from a number, else as written).
    pub timestamp: Option<String>,
    /// Identifiers found.
    pub observations: Vec<Observation>,
    /// Facts found.
    pub facts: Vec<Fact>,
    /// Set when the item could not be read; such records carry no observations.
    pub problem: Option<Problem>,
    /// Offsets and lengths are in the decompressed stream, not in the file's bytes.
    pub decompressed: bool,
}

impl Record {
    pub(crate) fn new(offset: u64, len: u64, line: Option<u64>, decompressed: bool) -> Self {
        Record {
            offset,
            len,
            line,
            item: 0,
            timestamp: None,
            observations: Vec::new(),
            facts: Vec::new(),
            problem: None,
            decompressed,
        }
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
