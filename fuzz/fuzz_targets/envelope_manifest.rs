//! The DSSE envelope and manifest parsers on arbitrary bytes: `CheckedEnvelope::parse` (for
//! both payload types), its decoded payload through `CheckedManifest::try_from`, the raw input
//! through `CheckedManifest::try_from`, and the ledger entry parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

use custody::bundle::manifest::MANIFEST_PAYLOAD_TYPE;
use custody::read::envelope::{CheckedEnvelope, CheckedManifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = CheckedEnvelope::parse(data, MANIFEST_PAYLOAD_TYPE) {
        // A parsed envelope is canonical: re-serializing gives the input back.
        let _ = CheckedManifest::try_from(env.payload.as_slice());
    }
    let _ = CheckedManifest::try_from(data);
    let _ = custody::store::ledger::parse_entry(data);
});
