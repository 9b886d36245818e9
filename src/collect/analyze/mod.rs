//! Telemetry analysis engine: recognises incident-evidence exports (OTLP/JSON traces and
//! logs, OPA decision logs, approval events, egress access logs, generic JSON Lines),
//! extracts the incident identifiers they carry, and links them into one incident view.
//!
//! The engine only reads: collected bytes are never altered. [`scan`] streams one input and
//! reports one [`Record`] per item (a span, a log line, a decision…) with its byte range;
//! [`Analyzer`] takes the records of many sources and computes, from one or more seed
//! identifiers, the closure of identifiers that belong to the incident ([`Analysis`]).

mod analyzer;
mod approvals;
mod egress;
mod format;
mod generic;
mod ids;
mod jsoncheck;
mod mapping;
mod opa;
mod otlp;
mod reader;
mod scan;
mod types;

pub use analyzer::{
    Analysis, AnalysisStats, Analyzer, AnalyzerLimits, ApprovalStep, DecisionLink, EgressDestination, IdentStatus,
    IdentValue, IdentifierReport, IndexEntry, LinkEdge, Linkage, MemoryAccess, Place, PrincipalUse, Report, Seed,
    SideEffectHint, SideEffectStatus, SourceId, SourceProblem, SourceRef, SourceSummary, ToolCallLink, WriteOutcome,
};
pub use format::{detect, Compression, Format, FormatParseError};
pub use ids::normalize_ident;
pub use jsoncheck::{is_valid_json, max_nesting};
pub use mapping::{FieldMapping, MappingError};
pub use scan::{scan, scan_auto, scan_filtered, scan_with_limits, LineFilter, ScanLimits, ScanSummary, ValidateOnly};
pub use types::{Fact, IdentName, IdentParseError, Layout, Observation, Problem, Record, ScanError};
