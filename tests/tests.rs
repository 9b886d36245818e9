//! The one integration-test binary: each module below is a group of tests of the built
//! `custody` binary and library (shared helpers in `util`, `store_util`, `collector_util` and
//! `verify_support`).

mod util;

mod big_manifest;
mod cli;
mod collector_bad_input;
mod collector_cli;
mod collector_corpus;
mod collector_formats;
mod collector_incidents;
mod collector_samples;
mod collector_seeds;
mod collector_unseen;
mod collector_util;
mod compat;
mod conformance;
mod determinism;
mod extract;
mod hostile;
mod interop;
mod ledger_audit;
mod library;
mod postmortem;
mod roles;
mod roundtrip;
mod s3;
mod s3_stream;
mod s3_verify_stream;
mod schemas;
mod sealing_pipeline;
mod store_attacks;
mod store_util;
mod store_versions;
mod supplement;
mod symlinks;
mod tamper;
mod tamper_matrix;
mod terminal;
mod tsa;
mod verify_pipeline;
mod verify_support;
mod witness;
