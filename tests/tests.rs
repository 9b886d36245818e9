//! The one integration-test binary: each module below is a group of tests of the built
//! `custody` binary and library (shared helpers in `util` and `store_util`).

mod util;

mod cli;
mod conformance;
mod determinism;
mod extract;
mod interop;
mod roundtrip;
mod s3;
mod schemas;
mod store_util;
mod tamper;
