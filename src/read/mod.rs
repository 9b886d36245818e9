//! The only place that parses untrusted bytes: bundle archives ([`archive`]) and DSSE
//! envelopes and manifests ([`envelope`]). Everything here is bounded and panic-free, and
//! produces checked types or problems for the verifier to report.

pub mod archive;
pub mod envelope;
pub mod pipeline;
