//! The progress line the binary draws for long operations (`preserve`, `verify`): bytes,
//! files, rate and ETA on stderr, redrawn at most four times a second. The library only
//! counts (it reports to [`custody::progress::Progress`]); drawing is the binary's.
//!
//! It is drawn only when stderr is a terminal and the user did not ask for `--quiet`; in every
//! other case the meter is [`Meter::none`], whose counters cost one branch. Drawing happens on
//! a small background thread so the hot loops never format or write anything. The line is
//! erased when the operation ends, so the command's real output starts on a clean line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use custody::progress::{Meter, Progress};

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

/// The line on stderr: counters the library adds to, and the thread that draws them.
struct Line {
    shared: Arc<Shared>,
    drawer: Mutex<Option<JoinHandle<()>>>,
}

impl Progress for Line {
    fn add_bytes(&self, n: u64) {
        self.shared.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn add_files(&self, n: u64) {
        self.shared.files.fetch_add(n, Ordering::Relaxed);
    }

    fn add_totals(&self, bytes: u64, files: u64) {
        self.shared.total_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.shared.total_files.fetch_add(files, Ordering::Relaxed);
    }

    /// Stop drawing and erase the line. Idempotent.
    fn finish(&self) {
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(h) = self.drawer.lock().ok().and_then(|mut g| g.take()) {
            let _ = h.join();
        }
    }
}

/// A meter drawn on stderr, if stderr is a terminal and `quiet` is false; [`Meter::none`]
/// otherwise. `total_bytes`/`total_files` of 0 mean unknown (no ETA, no file total).
pub fn stderr(label: &'static str, total_bytes: u64, total_files: u64, quiet: bool) -> Meter {
    if quiet || !std::io::stderr().is_terminal() {
        return Meter::none();
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
    Meter::to(Arc::new(Line { shared, drawer: Mutex::new(handle) }))
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
    fn a_meter_without_a_terminal_or_with_quiet_draws_nothing() {
        // Tests run without a terminal on stderr: a requested meter stays off.
        if !std::io::stderr().is_terminal() {
            assert!(!stderr("x", 0, 0, false).is_on());
        }
        assert!(!stderr("x", 0, 0, true).is_on());
    }

    #[test]
    fn the_line_counts_what_the_library_reports() {
        let shared = Arc::new(Shared {
            label: "t",
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            total_files: AtomicU64::new(0),
            start: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            drawn: AtomicBool::new(false),
        });
        let m = Meter::to(Arc::new(Line { shared: shared.clone(), drawer: Mutex::new(None) }));
        m.add_bytes(5);
        m.add_files(2);
        m.add_totals(10, 3);
        m.finish();
        assert_eq!(shared.bytes.load(Ordering::Relaxed), 5);
        assert_eq!(shared.files.load(Ordering::Relaxed), 2);
        assert_eq!(shared.total_bytes.load(Ordering::Relaxed), 10);
        assert_eq!(shared.total_files.load(Ordering::Relaxed), 3);
        assert!(*shared.stop.lock().unwrap(), "finish stops the drawer");
    }
}
