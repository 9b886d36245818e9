//! Ledger entries, checkpoints and the store identity file, alone and as a whole ledger:
//!
//! * every parser of `read::ledger` and `read::checkpoint` on the raw input;
//! * the JSON parse-cost model (`read::json::cost`) on the raw input: it must not panic, and
//!   when the input parses as a `serde_json::Value`, the estimate must not be below a lower
//!   bound of what that value holds on the heap;
//! * a store built from the input — pieces separated by `\0LE\0`: `store.json`, a checkpoint,
//!   then ledger objects at positions 1, 2, … (a piece starting `@<position>\n` goes at that
//!   position, 2^64 − 1 included; a piece starting with the zstd magic is a bundle, stored
//!   under its digest) — audited in full by `verify::verify_all_with` with the checkpoint: the
//!   chain, store ids, strays, the anchor, every recorded bundle's place (the race rule and
//!   the skew comparisons, on entries parsed whether or not a pinned key signed them) and the
//!   unrecorded bundles' `ledger_prev`. The corpus' ledgers are signed by [`SEED_KEY`], which
//!   is pinned, so mutations start from intact stores.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use custody::read::json::{cost, Model};
use custody::store::ledger::{entry_key, STORE_FILE};
use custody::store::Store;
use custody::verify::{verify_all_with, Options, Trust};

const SEP: &[u8] = b"\0LE\0";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// The public key of the stores the corpus was made from (its private key was thrown away).
const SEED_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAvHb7runodAu6Z/HEnoNvWJFC1dGPRAwM7onkWoPZ/EQ=\n-----END PUBLIC KEY-----\n";

fn trust() -> &'static Trust {
    static T: OnceLock<Trust> = OnceLock::new();
    T.get_or_init(|| {
        let key = custody::keys::PublicKey::from_pem(SEED_KEY, std::path::Path::new("seed key")).expect("seed key");
        Trust::new(vec![key])
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

/// A lower bound of what a parsed value holds on the heap (the model's layout, no malloc
/// overhead): string capacities, 32-byte array slots, one 632-byte B-tree leaf per 11 members.
fn allocated(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => a.capacity() * 32 + a.iter().map(allocated).sum::<usize>(),
        Value::Object(m) => {
            m.len().div_ceil(11) * 632 + m.iter().map(|(k, v)| k.capacity() + allocated(v)).sum::<usize>()
        }
        _ => 0,
    }
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    out.push(rest);
    out
}

/// `@<position>\n` at the start of a piece: where it goes.
fn placed(piece: &[u8], default: u64) -> (u64, &[u8]) {
    if let Some(rest) = piece.strip_prefix(b"@") {
        if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            if let Some(n) = std::str::from_utf8(&rest[..nl]).ok().and_then(|s| s.parse().ok()) {
                return (n, &rest[nl + 1..]);
            }
        }
    }
    (default, piece)
}

fuzz_target!(|data: &[u8]| {
    let _ = custody::read::ledger::parse_entry(data);
    let _ = custody::read::ledger::parse_store_file(data);
    let _ = custody::read::checkpoint::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = custody::read::ledger::parse_entry_key(text);
    }
    let estimate = cost(data, Model::Value);
    let _ = cost(data, Model::Manifest);
    if data.len() <= 1 << 16 {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let held = allocated(&v);
            assert!(estimate >= held, "the Value model estimates {estimate} bytes, the parsed value holds {held}");
        }
    }

    let pieces = split(data);
    if pieces.len() < 3 || pieces.len() > 40 {
        return;
    }
    let rt = runtime();
    let store = Store::open("memory://").expect("memory store");
    rt.block_on(async {
        if !pieces[0].is_empty() {
            let _ = store.create(STORE_FILE, pieces[0].to_vec()).await;
        }
        let mut position = 0u64;
        for piece in &pieces[2..] {
            if piece.starts_with(ZSTD_MAGIC) {
                let id = custody::digest::BundleId(custody::digest::Sha256::of(piece));
                let _ = store.create(&custody::store::bundle_key(&id), piece.to_vec()).await;
                continue;
            }
            position += 1;
            let (at, bytes) = placed(piece, position);
            let _ = store.create(&entry_key(at), bytes.to_vec()).await;
        }
        let checkpoint = (!pieces[1].is_empty()).then_some(pieces[1]);
        if let Ok(r) = verify_all_with(&store, trust(), &Options::default(), true, checkpoint).await {
            // Every error has a message and the verdict follows the findings.
            let errors = r.findings.iter().filter(|f| f.level == custody::verify::Level::Error).count();
            assert_eq!(r.intact(), errors == 0);
            assert!(r.findings.iter().all(|f| !f.message.is_empty()));
        }
    });
});
