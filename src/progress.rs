//! A progress line for long operations (`preserve`, `verify`): bytes, files, rate and ETA on
//! stderr, redrawn at most four times a second.
//!
//! It is drawn only when stderr is a terminal and the user did not ask for `--quiet`; in every
//! other case [`Progress`] is a no-op whose counters cost one relaxed atomic add. Drawing
//! happens on a small background thread so the hot loops never format or write anything.
//! The line is erased when the operation ends, so the command's real output starts on a clean
//! line.
//!
//! A process-wide meter can be installed with [`Progress::install_global`]; code deep in the
//! read path (the bundle decompression pipeline) reports to it with [`add_global_bytes`]
//! without having to thread a handle through every call.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Redraw period (at most ~4 redraws a second).
pub const REDRAW: Duration = Duration::from_millis(250);

struct Shared {
    label: &'static str,
    bytes: AtomicU64,
    files: AtomicU64,
    total_bytes: AtomicU64,
    total_files: AtomicU64,
    start: Instant,
    stop: Mutex<bool>,
    wake: Condvar,
    drawn: AtomicBool,
}

/// A progress meter. Cheap to clone; clones share counters.
#[derive(Clone, Default)]
pub struct Progress {
    shared: Option<Arc<Shared>>,
    drawer: Option<Arc<Mutex<Option<JoinHandle<()>>>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("enabled", &self.is_enabled()).finish()
    }
}

impl Progress {
    /// A meter that never draws.
    pub fn disabled() -> Self {
        Progress::default()
    }

    /// A meter on stderr, if stderr is a terminal and `quiet` is false; disabled otherwise.
    /// `total_bytes`/`total_files` of 0 mean unknown (no ETA, no file total).
    pub fn stderr(label: &'static str, total_bytes: u64, total_files: u64, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress::disabled();
        }
        let shared = Arc::new(Shared {
            label,
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            total_bytes: AtomicU64::new(total_bytes),
            total_files: AtomicU64::new(total_files),
            start: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            drawn: AtomicBool::new(false),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new().name("custody-progress".into()).spawn(move || draw_loop(&s)).ok();
        Progress { shared: Some(shared), drawer: Some(Arc::new(Mutex::new(handle))) }
    }

    /// Does this meter draw anything?
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Count `n` more bytes done.
    pub fn add_bytes(&self, n: u64) {
        if let Some(s) = &self.shared {
            s.bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Count `n` more files done.
    pub fn add_files(&self, n: u64) {
        if let Some(s) = &self.shared {
            s.files.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Add to the expected totals (when they become known piecemeal).
    pub fn add_totals(&self, bytes: u64, files: u64) {
        if let Some(s) = &self.shared {
            s.total_bytes.fetch_add(bytes, Ordering::Relaxed);
            s.total_files.fetch_add(files, Ordering::Relaxed);
        }
    }

    /// Stop drawing and erase the line. Idempotent; also done on drop of the last clone
    /// through [`Progress::install_global`]'s guard.
    pub fn finish(&self) {
        let (Some(s), Some(d)) = (&self.shared, &self.drawer) else { return };
        if let Ok(mut stop) = s.stop.lock() {
            *stop = true;
        }
        s.wake.notify_all();
        if let Some(h) = d.lock().ok().and_then(|mut g| g.take()) {
            let _ = h.join();
        }
    }

    /// Install `self` as the process-wide meter until the returned guard is dropped.
    pub fn install_global(self) -> GlobalGuard {
        if let Ok(mut g) = global().write() {
            *g = Some(self.clone());
        }
        GLOBAL_ON.store(self.is_enabled(), Ordering::Relaxed);
        GlobalGuard(self)
    }
}

/// Uninstalls (and finishes) the global meter when dropped.
#[derive(Debug)]
pub struct GlobalGuard(Progress);

impl Drop for GlobalGuard {
    fn drop(&mut self) {
        GLOBAL_ON.store(false, Ordering::Relaxed);
        if let Ok(mut g) = global().write() {
            *g = None;
        }
        self.0.finish();
    }
}

fn global() -> &'static RwLock<Option<Progress>> {
    static G: OnceLock<RwLock<Option<Progress>>> = OnceLock::new();
    G.get_or_init(|| RwLock::new(None))
}

static GLOBAL_ON: AtomicBool = AtomicBool::new(false);

/// Report `n` bytes to the global meter, if one is installed (one relaxed load otherwise).
pub fn add_global_bytes(n: u64) {
    if !GLOBAL_ON.load(Ordering::Relaxed) {
        return;
    }
    if let Ok(g) = global().read() {
        if let Some(p) = g.as_ref() {
            p.add_bytes(n);
        }
    }
}

/// Report `n` finished files (bundles, for `verify --all`) to the global meter.
pub fn add_global_files(n: u64) {
    if !GLOBAL_ON.load(Ordering::Relaxed) {
        return;
    }
    if let Ok(g) = global().read() {
        if let Some(p) = g.as_ref() {
            p.add_files(n);
        }
    }
}

fn draw_loop(s: &Shared) {
    let mut err = std::io::stderr();
    // The first frame is drawn at once (the responder sees the totals immediately), then at
    // most every REDRAW.
    let mut first = true;
    loop {
        let stopped = if std::mem::take(&mut first) {
            s.stop.lock().map(|g| *g).unwrap_or(true)
        } else {
            match s.stop.lock() {
                Ok(g) => match s.wake.wait_timeout_while(g, REDRAW, |stop| !*stop) {
                    Ok((g, _)) => *g,
                    Err(_) => true,
                },
                Err(_) => true,
            }
        };
        if stopped {
            break;
        }
        let line = format_line(
            s.label,
            s.bytes.load(Ordering::Relaxed),
            s.total_bytes.load(Ordering::Relaxed),
            s.files.load(Ordering::Relaxed),
            s.total_files.load(Ordering::Relaxed),
            s.start.elapsed(),
        );
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        s.drawn.store(true, Ordering::Relaxed);
    }
    if s.drawn.load(Ordering::Relaxed) {
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The progress line: label, bytes (of total), files (of total), rate, ETA.
/// Totals of 0 are unknown and omitted; so is the ETA until a rate is known.
pub fn format_line(
    label: &str,
    bytes: u64,
    total_bytes: u64,
    files: u64,
    total_files: u64,
    elapsed: Duration,
) -> String {
    let mut line = format!("{label}: {}", human_bytes(bytes));
    if total_bytes > 0 {
        let pct = (bytes as f64 / total_bytes as f64 * 100.0).min(100.0);
        line.push_str(&format!(" / {} ({pct:.0}%)", human_bytes(total_bytes)));
    }
    if files > 0 || total_files > 0 {
        line.push_str(&format!(", {files}"));
        if total_files > 0 {
            line.push_str(&format!("/{total_files}"));
        }
        line.push_str(" files");
    }
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 && bytes > 0 {
        let rate = bytes as f64 / secs;
        line.push_str(&format!(", {}/s", human_bytes(rate as u64)));
        if total_bytes > bytes {
            let eta = Duration::from_secs_f64((total_bytes - bytes) as f64 / rate);
            line.push_str(&format!(", ETA {}", clock(eta)));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_files_rate_and_eta() {
        let l = format_line("preserve", 512 << 20, 1 << 30, 10, 40, Duration::from_secs(2));
        assert_eq!(l, "preserve: 512.0 MiB / 1.0 GiB (50%), 10/40 files, 256.0 MiB/s, ETA 0:02");
    }

    #[test]
    fn omits_unknown_totals_and_eta() {
        let l = format_line("verify", 1536, 0, 0, 0, Duration::from_secs(1));
        assert_eq!(l, "verify: 1.5 KiB, 1.5 KiB/s");
        let l = format_line("verify", 0, 0, 0, 0, Duration::ZERO);
        assert_eq!(l, "verify: 0 B");
    }

    #[test]
    fn long_etas_use_hours() {
        let l = format_line("preserve", 1 << 20, 10_000 << 20, 0, 0, Duration::from_secs(1));
        assert!(l.ends_with("ETA 2:46:39"), "{l}");
    }

    #[test]
    fn a_disabled_meter_counts_nothing_and_draws_nothing() {
        let p = Progress::disabled();
        p.add_bytes(5);
        p.add_files(1);
        p.finish();
        assert!(!p.is_enabled());
        // Tests run without a terminal on stderr: a requested meter stays disabled.
        if !std::io::stderr().is_terminal() {
            assert!(!Progress::stderr("x", 0, 0, false).is_enabled());
        }
        assert!(!Progress::stderr("x", 0, 0, true).is_enabled());
    }
}
