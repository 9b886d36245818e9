//! Progress reporting for long operations (`preserve`, `verify`): the library counts bytes
//! and files done and reports them to a [`Progress`] the caller supplies; it never draws
//! anything itself (the `custody` binary draws a line on stderr from these counts).
//!
//! [`Meter`] is the handle the library's hot loops hold: cheap to clone, and a single branch
//! when no one listens ([`Meter::none`]). A process-wide meter can be installed with
//! [`Meter::install_global`]; code deep in the read path (the bundle decompression pipeline)
//! reports to it without a handle threaded through every call.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use custody::progress::{Meter, Progress};
//!
//! #[derive(Default)]
//! struct Bytes(AtomicU64);
//! impl Progress for Bytes {
//!     fn add_bytes(&self, n: u64) {
//!         self.0.fetch_add(n, Ordering::Relaxed);
//!     }
//!     fn add_files(&self, _n: u64) {}
//! }
//!
//! let counted = Arc::new(Bytes::default());
//! let meter = Meter::to(counted.clone());
//! meter.add_bytes(4096);
//! assert_eq!(counted.0.load(Ordering::Relaxed), 4096);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// Receives what a long operation has done. Called from the operation's threads (often a
/// hot loop): keep it cheap (an atomic add) and draw elsewhere.
pub trait Progress: Send + Sync {
    /// `n` more bytes done (read, hashed, compressed or decompressed).
    fn add_bytes(&self, n: u64);
    /// `n` more files done (evidence files sealed; bundles verified by `verify --all`).
    fn add_files(&self, n: u64);
    /// The expected totals grew (when they become known piecemeal).
    fn add_totals(&self, _bytes: u64, _files: u64) {}
    /// The operation ended: stop drawing. Called by [`Meter::finish`] and when a global meter
    /// is uninstalled; may be called more than once (make it idempotent).
    fn finish(&self) {}
}

/// The handle the library reports through: nothing ([`Meter::none`], the default) or a
/// [`Progress`]. Cheap to clone; clones report to the same [`Progress`].
#[derive(Clone, Default)]
pub struct Meter(Option<Arc<dyn Progress>>);

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").field("on", &self.is_on()).finish()
    }
}

impl Meter {
    /// A meter that reports to no one.
    pub fn none() -> Self {
        Meter(None)
    }

    /// A meter that reports to `p`.
    pub fn to(p: Arc<dyn Progress>) -> Self {
        Meter(Some(p))
    }

    /// Does this meter report to anyone?
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Count `n` more bytes done.
    pub fn add_bytes(&self, n: u64) {
        if let Some(p) = &self.0 {
            p.add_bytes(n);
        }
    }

    /// Count `n` more files done.
    pub fn add_files(&self, n: u64) {
        if let Some(p) = &self.0 {
            p.add_files(n);
        }
    }

    /// Add to the expected totals.
    pub fn add_totals(&self, bytes: u64, files: u64) {
        if let Some(p) = &self.0 {
            p.add_totals(bytes, files);
        }
    }

    /// The operation ended ([`Progress::finish`]).
    pub fn finish(&self) {
        if let Some(p) = &self.0 {
            p.finish();
        }
    }

    /// Whether both report to the same [`Progress`] (or both to none).
    fn same_as(&self, other: &Meter) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)),
            (None, None) => true,
            _ => false,
        }
    }

    /// Install `self` as the process-wide meter until the returned guard is dropped (which
    /// also finishes it).
    pub fn install_global(self) -> GlobalGuard {
        if let Ok(mut g) = global().write() {
            *g = Some(self.clone());
        }
        GLOBAL_ON.store(self.is_on(), Ordering::Relaxed);
        GlobalGuard(self)
    }
}

/// Uninstalls (and finishes) the global meter when dropped.
#[derive(Debug)]
pub struct GlobalGuard(Meter);

impl Drop for GlobalGuard {
    fn drop(&mut self) {
        // Only its own meter: another one installed since (by another caller in the process)
        // stays.
        if let Ok(mut g) = global().write() {
            if g.as_ref().is_some_and(|m| m.same_as(&self.0)) {
                *g = None;
                GLOBAL_ON.store(false, Ordering::Relaxed);
            }
        }
        self.0.finish();
    }
}

fn global() -> &'static RwLock<Option<Meter>> {
    static G: OnceLock<RwLock<Option<Meter>>> = OnceLock::new();
    G.get_or_init(|| RwLock::new(None))
}

static GLOBAL_ON: AtomicBool = AtomicBool::new(false);

/// Report `n` bytes to the global meter, if one is installed (one relaxed load otherwise).
pub(crate) fn add_global_bytes(n: u64) {
    if !GLOBAL_ON.load(Ordering::Relaxed) {
        return;
    }
    if let Ok(g) = global().read() {
        if let Some(p) = g.as_ref() {
            p.add_bytes(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Count(AtomicU64, AtomicU64, AtomicBool);
    impl Progress for Count {
        fn add_bytes(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        fn add_files(&self, n: u64) {
            self.1.fetch_add(n, Ordering::Relaxed);
        }
        fn finish(&self) {
            self.2.store(true, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_meter_reports_to_its_progress_and_none_reports_nothing() {
        let c = Arc::new(Count::default());
        let m = Meter::to(c.clone());
        m.clone().add_bytes(7);
        m.add_files(2);
        assert_eq!((c.0.load(Ordering::Relaxed), c.1.load(Ordering::Relaxed)), (7, 2));
        let none = Meter::none();
        none.add_bytes(1);
        none.finish();
        assert!(!none.is_on() && m.is_on());
    }

    #[test]
    fn a_guard_uninstalls_only_its_own_global_meter() {
        let first = Arc::new(Count::default());
        let second = Arc::new(Count::default());
        let g1 = Meter::to(first.clone()).install_global();
        let g2 = Meter::to(second.clone()).install_global();
        drop(g1);
        add_global_bytes(5);
        assert!(second.0.load(Ordering::Relaxed) >= 5, "the second meter stays installed");
        assert!(first.2.load(Ordering::Relaxed), "the first is finished");
        drop(g2);
    }

    #[test]
    fn the_global_meter_gets_the_reports_until_its_guard_is_dropped() {
        let c = Arc::new(Count::default());
        let guard = Meter::to(c.clone()).install_global();
        add_global_bytes(3);
        drop(guard);
        // Other tests running meanwhile may report too: at least ours arrived, nothing after.
        let b = c.0.load(Ordering::Relaxed);
        assert!(b >= 3, "{b}");
        add_global_bytes(100);
        assert_eq!(c.0.load(Ordering::Relaxed), b);
        assert!(c.2.load(Ordering::Relaxed), "dropping the guard finishes the meter");
    }
}
