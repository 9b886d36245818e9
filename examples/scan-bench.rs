//! Throughput of the analysis' line scan, per mode, over real files (a micro-harness, not a
//! test): `cargo run --release --example scan-bench -- MODE[,MODE…] [--values V1,V2,…] FILE…`.
//!
//! Modes, each a `scan_filtered` over every file (read from the page cache like the
//! preserve path's large files):
//! * `split`: a filter that wants no line and validates none (the line splitter alone);
//! * `validate`: the validate-only filter of a seedless run (every line `is_valid_json`);
//! * `needle`: the first-pass search filter: lines holding one of the values (the trace id
//!   forms exporters write, as in the observer) are parsed, the others validated;
//! * `reread`: a re-read pass: lines holding a value are wanted, none validated;
//! * `isvalid`: `is_valid_json` alone over lines split up front (no reader).
//!
//! Prints MB/s per mode and a digest of the records emitted (to compare builds: the
//! digest must not change), plus lines / filtered / problems counts.
use custody::collect::analyze::{
    detect, is_valid_json, scan_filtered, FieldMapping, LineFilter, ScanLimits, ValidateOnly,
};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::time::Instant;

struct Needle {
    m: aho_corasick::packed::Searcher,
    first_pass: bool,
}

impl LineFilter for Needle {
    fn wants(&mut self, line: &[u8]) -> bool {
        self.m.find(line).is_some()
    }
    fn validate_unwanted(&self) -> bool {
        self.first_pass
    }
}

struct SplitOnly;

impl LineFilter for SplitOnly {
    fn wants(&mut self, _line: &[u8]) -> bool {
        false
    }
    fn validate_unwanted(&self) -> bool {
        false
    }
}

/// The byte forms the observer searches for a value (see `needles` in observe.rs).
fn needles(value: &str) -> Vec<Vec<u8>> {
    let mut v = vec![value.as_bytes().to_vec()];
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        v.push(value.to_ascii_uppercase().into_bytes());
        if let Ok(raw) = hex::decode(value) {
            use base64::Engine as _;
            v.push(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes());
        }
    }
    v
}

/// CPU time of this thread so far, in seconds (the machine is shared: wall time is noisy).
/// From `/proc/thread-self/schedstat` (nanoseconds on the CPU); wall time where unavailable.
fn cpu_now() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .map_or_else(|| START.get_or_init(Instant::now).elapsed().as_secs_f64(), |ns| ns as f64 / 1e9)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: scan-bench MODE[,MODE…] [--values V1,V2,…] FILE…");
        return;
    }
    let modes: Vec<String> = args.remove(0).split(',').map(str::to_owned).collect();
    let mut values: Vec<String> = Vec::new();
    if args.first().map(String::as_str) == Some("--values") {
        args.remove(0);
        values = args.remove(0).split(',').map(str::to_owned).collect();
    }
    let pats: Vec<Vec<u8>> = values.iter().flat_map(|v| needles(v)).collect();
    let mapping = FieldMapping::default();
    let limits = ScanLimits::default();
    for mode in &modes {
        let (mut bytes, mut lines, mut filtered, mut records, mut problems) = (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        let mut secs = 0f64;
        for path in &args {
            let mut head = Vec::new();
            let Ok(f) = std::fs::File::open(path) else { continue };
            let _ = f.take(16384).read_to_end(&mut head);
            let format = detect(path, &head);
            if mode == "teddy-lines" || mode == "teddy-block" || mode == "ac-block" {
                let data = std::fs::read(path).unwrap_or_default();
                let m = aho_corasick::packed::Config::new().builder().extend(&pats).build().expect("searcher");
                let ac = aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(&pats)
                    .expect("ac");
                let t = cpu_now();
                let mut hits = 0u64;
                if mode == "teddy-lines" {
                    let mut start = 0;
                    for nl in memchr::memchr_iter(b'\n', &data) {
                        hits += u64::from(m.find(&data[start..nl]).is_some());
                        start = nl + 1;
                    }
                } else if mode == "teddy-block" {
                    let mut at = 0;
                    while let Some(h) = m.find_in(&data, aho_corasick::Span::from(at..data.len())) {
                        hits += 1;
                        at = memchr::memchr(b'\n', &data[h.end()..]).map_or(data.len(), |p| h.end() + p + 1);
                    }
                } else {
                    hits = ac.find_iter(&data).count() as u64;
                }
                secs += cpu_now() - t;
                bytes += data.len() as u64;
                records += hits;
                continue;
            }
            if mode == "isvalid" {
                let data = std::fs::read(path).unwrap_or_default();
                let mut split = Vec::new();
                let mut start = 0;
                for nl in memchr::memchr_iter(b'\n', &data) {
                    split.push(&data[start..nl]);
                    start = nl + 1;
                }
                let t = cpu_now();
                let mut ok = 0u64;
                for _ in 0..3 {
                    for l in &split {
                        ok += u64::from(is_valid_json(l));
                        lines += 1;
                    }
                }
                bytes += 2 * data.len() as u64;
                secs += cpu_now() - t;
                bytes += data.len() as u64;
                records += ok;
                continue;
            }
            let Ok(file) = std::fs::File::open(path) else { continue };
            let mut needle;
            let mut validate = ValidateOnly;
            let mut split = SplitOnly;
            let filter: Option<&mut dyn LineFilter> = match mode.as_str() {
                "split" => Some(&mut split),
                "validate" => Some(&mut validate),
                "needle" | "reread" => {
                    let m = aho_corasick::packed::Config::new().builder().extend(&pats).build().expect("searcher");
                    needle = Needle { m, first_pass: mode == "needle" };
                    Some(&mut needle)
                }
                "all" => None,
                other => panic!("unknown mode {other}"),
            };
            let t = cpu_now();
            // Records are kept and hashed after the clock stops (mode `all` keeps only counts).
            let keep = mode != "all";
            let mut kept = Vec::new();
            let s = scan_filtered(format, file, &mapping, &limits, filter, &mut |r| {
                records += 1;
                problems += u64::from(r.problem.is_some());
                if keep {
                    kept.push(r);
                }
            })
            .expect("scan");
            secs += cpu_now() - t;
            for r in kept {
                format!("{r:?}").hash(&mut digest);
            }
            bytes += s.bytes_scanned;
            lines += s.lines;
            filtered += s.filtered;
        }
        println!(
            "{mode:>8}: {:8.1} MB in {secs:6.3} s CPU = {:7.1} MB/s; lines {lines} filtered {filtered} records {records} \
             problems {problems} digest {:016x}",
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            digest.finish()
        );
    }
}
