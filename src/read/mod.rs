//! The only place that parses untrusted bytes: bundle archives ([`archive`]), DSSE envelopes
//! and manifests ([`envelope`]), ledger entries and the store identity file ([`ledger`]), and
//! checkpoints ([`checkpoint`], in signed notes: [`note`]). Everything here is bounded and
//! panic-free, and produces checked types or problems for the verifier to report.

pub mod archive;
pub mod checkpoint;
pub mod envelope;
pub mod json;
pub mod ledger;
pub mod note;
pub mod pipeline;
