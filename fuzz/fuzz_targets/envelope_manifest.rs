//! The DSSE envelope, statement and manifest parsers on arbitrary bytes:
//! `CheckedEnvelope::parse_one_of` (both manifest payload types), its decoded payload through
//! `CheckedStatement::try_from` (v2) and `CheckedManifest::try_from` (v1), the raw input
//! through both, and the ledger entry parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

use custody::bundle::manifest::{MANIFEST_PAYLOAD_TYPE, STATEMENT_PAYLOAD_TYPE};
use custody::read::envelope::{CheckedEnvelope, CheckedManifest, CheckedStatement};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = CheckedEnvelope::parse_one_of(data, &[STATEMENT_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE]) {
        let _ = CheckedStatement::try_from(env.payload.as_slice());
        let _ = CheckedManifest::try_from(env.payload.as_slice());
    }
    let _ = CheckedStatement::try_from(data);
    let _ = CheckedManifest::try_from(data);
    let _ = custody::store::ledger::parse_entry(data);
});
