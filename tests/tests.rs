//! The integration-test binary: one module per area.

mod conformance;
mod s3;
mod store_util;
