//! The one integration-test binary: every test module is declared here.

mod collector_cli;
mod collector_corpus;
mod collector_fixtures;
mod collector_samples;
mod collector_util;
