//! The one integration-test binary: each module below is a group of tests of the built
//! `custody` binary and library (shared helpers in `util`).

mod util;

mod cli;
mod determinism;
mod extract;
mod interop;
mod roundtrip;
mod schemas;
mod tamper;
