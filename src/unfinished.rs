//! Files this process is writing that an interrupted run must not leave behind: a bundle's
//! staging file (`<store>/.staging/bundle-*.partial`, or in the temporary directory for a
//! remote store), the spool of standard input, a bundle downloaded for verification, and the
//! files an extract has written so far (an interrupted extract leaves none, so running it
//! again into the same directory works).
//!
//! Each one is registered by a guard (`Unfinished`) while it is being written; dropping the
//! guard unregisters it. A file or directory an extract creates is registered by its path
//! relative to an open directory and removed relative to it, never through a symbolic link,
//! even if a directory on the way was replaced by one since. A temporary file is a
//! [`TrackedTemp`], which owns both the file and its guard, so the two cannot part: dropping
//! it deletes the file, then unregisters it. (A file an extract has linked into place, or a
//! stored bundle's own name, is not the temporary file's name and is never touched by the
//! guard.) A process that is killed by a signal runs no destructor, so the `custody` binary
//! handles SIGINT, SIGTERM and SIGHUP: it calls [`remove_all`] and exits. Nothing sealed is
//! ever touched: a bundle is stored under its own name (`bundles/<sha256>.tar.zst`) by a hard
//! link, and removing the staging name leaves that link. A run killed with SIGKILL (or a
//! crash) still leaves its staging file; `preserve` and `store repair` sweep staging files
//! older than [`crate::store::STALE_STAGING`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A registered file (or directory).
enum Tracked {
    /// By its path.
    Path(PathBuf),
    /// By its path relative to an open directory: `dir` tells a directory (removed only if
    /// empty) from a file; `shown` is how it is named in messages.
    #[cfg(unix)]
    Under { base: std::sync::Arc<rustix::fd::OwnedFd>, rel: PathBuf, dir: bool, shown: PathBuf },
}

impl Tracked {
    fn remove(&self) -> bool {
        match self {
            Tracked::Path(p) => std::fs::remove_file(p).is_ok(),
            #[cfg(unix)]
            Tracked::Under { base, rel, dir, .. } => remove_under(base, rel, *dir).is_ok(),
        }
    }
    fn shown(&self) -> &Path {
        match self {
            Tracked::Path(p) => p,
            #[cfg(unix)]
            Tracked::Under { shown, .. } => shown,
        }
    }
}

/// The registered files by registration number (an extract registers one per file written,
/// 100 000 for a big bundle: each guard finds its own entry in O(log n)).
static FILES: Mutex<(u64, BTreeMap<u64, Tracked>)> = Mutex::new((0, BTreeMap::new()));

fn files() -> MutexGuard<'static, (u64, BTreeMap<u64, Tracked>)> {
    // A panic while the list was held leaves it as it was: still usable.
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes `rel` (a file, or if `dir` an empty directory) under the open directory `base`:
/// each directory on the way is opened with `O_NOFOLLOW`, so a path whose directory was
/// replaced by a symbolic link is not followed (and the file is not removed). A name that is
/// gone, or a directory replaced by something else, is `NotFound`.
#[cfg(unix)]
pub(crate) fn remove_under(base: &rustix::fd::OwnedFd, rel: &Path, dir: bool) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let mut comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let Some(name) = comps.pop() else { return Ok(()) };
    let mut cur: Option<rustix::fd::OwnedFd> = None;
    for c in comps {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let next = match &cur {
            Some(d) => rustix::fs::openat(d, c, flags, Mode::empty()),
            None => rustix::fs::openat(base, c, flags, Mode::empty()),
        }?;
        cur = Some(next);
    }
    let parent = match &cur {
        Some(d) => rustix::fd::AsFd::as_fd(d),
        None => rustix::fd::AsFd::as_fd(base),
    };
    if dir {
        // A directory replaced by something else since is not the one registered: gone.
        let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if !rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() {
            return Err(rustix::io::Errno::NOENT.into());
        }
        rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(parent, name, AtFlags::empty())?;
    }
    Ok(())
}

/// A file registered for removal if the process is interrupted, until this guard is dropped.
#[derive(Debug)]
#[must_use = "the file is unregistered when the guard is dropped"]
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) struct Unfinished {
    /// The registration number (the path is kept once, in the registry).
    id: u64,
}

impl Unfinished {
    /// Registers `path`.
    pub fn track(path: &Path) -> Unfinished {
        Self::register(Tracked::Path(path.to_path_buf()))
    }

    /// Registers `rel` under the open directory `base` (see `remove_under`); `dir`: it is a
    /// directory, removed if empty. `shown` names it in messages.
    #[cfg(unix)]
    pub fn track_under(base: &std::sync::Arc<rustix::fd::OwnedFd>, rel: &Path, dir: bool, shown: &Path) -> Unfinished {
        Self::register(Tracked::Under { base: base.clone(), rel: rel.to_path_buf(), dir, shown: shown.to_path_buf() })
    }

    fn register(t: Tracked) -> Unfinished {
        let mut f = files();
        f.0 += 1;
        let id = f.0;
        f.1.insert(id, t);
        Unfinished { id }
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        files().1.remove(&self.id);
    }
}

/// A temporary file registered for removal if the process is interrupted, for as long as it
/// lives. It derefs to the [`tempfile::NamedTempFile`].
#[derive(Debug)]
pub struct TrackedTemp {
    // Declared first, so dropped first: the file is deleted, then unregistered.
    file: tempfile::NamedTempFile,
    _tracked: Unfinished,
}

/// A registered temporary file made by `builder` in `dir` (the system's temporary directory
/// if `None`).
#[cfg_attr(feature = "internals", visibility::make(pub), doc(hidden))]
pub(crate) fn temp_file(builder: &tempfile::Builder<'_, '_>, dir: Option<&Path>) -> std::io::Result<TrackedTemp> {
    let file = match dir {
        Some(d) => builder.tempfile_in(d)?,
        None => builder.tempfile()?,
    };
    let _tracked = Unfinished::track(file.path());
    Ok(TrackedTemp { file, _tracked })
}

impl std::ops::Deref for TrackedTemp {
    type Target = tempfile::NamedTempFile;
    fn deref(&self) -> &tempfile::NamedTempFile {
        &self.file
    }
}

impl std::ops::DerefMut for TrackedTemp {
    fn deref_mut(&mut self) -> &mut tempfile::NamedTempFile {
        &mut self.file
    }
}

/// Deletes every registered file (and empty registered directory), the latest first (a
/// directory after the files made in it), and returns those it deleted in the order they
/// were registered (one already gone is not listed). For the binary's signal handler, just
/// before the process exits: the list stays locked, so no new file is registered meanwhile.
pub fn remove_all() -> Vec<PathBuf> {
    let mut f = files();
    let mut removed: Vec<PathBuf> =
        f.1.values().rev().filter(|t| t.remove()).map(|t| t.shown().to_path_buf()).collect();
    removed.reverse();
    f.1.clear();
    removed
}

/// The signals this process ignores, as it inherited them (bit `n - 1` for signal `n`): a
/// parent that ignores SIGHUP (`nohup`) or SIGINT (a script's background job) means the
/// interrupted-run handler must leave that signal ignored. Read from `/proc/self/status`;
/// none where it cannot be read.
pub fn inherited_ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status").ok().and_then(|s| ignored_signals(&s)).unwrap_or(0)
}

/// The mask of ignored signals from the text of `/proc/<pid>/status` (its `SigIgn:` line, in
/// hex); `None` without one.
fn ignored_signals(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("SigIgn:")).and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_signals_are_read_from_the_sigign_line() {
        let status = "Name:\tcustody\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\nSigCgt:\t0\n";
        let mask = ignored_signals(status).unwrap();
        assert_ne!(mask & (1 << (1 - 1)), 0, "SIGHUP (1) ignored");
        assert_ne!(mask & (1 << (13 - 1)), 0, "SIGPIPE (13) ignored");
        assert_eq!(mask & (1 << (2 - 1)), 0, "SIGINT (2) not ignored");
        assert_eq!(ignored_signals("Name:\tx\n"), None);
        assert_eq!(ignored_signals("SigIgn:\tnot-hex\n"), None);
    }

    // One test: the registry is process-wide and tests run in parallel (no other unit test
    // registers a file: remove_all would delete it).
    #[test]
    fn registered_files_are_removed_and_dropped_guards_unregister() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        for p in [&a, &b, &c] {
            std::fs::write(p, b"x").unwrap();
        }
        let ga = Unfinished::track(&a);
        let gb = Unfinished::track(&b);
        let gone = dir.path().join("never-written");
        let _gn = Unfinished::track(&gone);
        drop(gb);
        let removed = remove_all();
        assert!(removed.contains(&a), "{removed:?}");
        assert!(!removed.contains(&b) && !removed.contains(&gone), "{removed:?}");
        assert!(!a.exists(), "a registered file is removed");
        assert!(b.exists(), "an unregistered file is left alone");
        assert!(c.exists(), "a file never registered is left alone");
        drop(ga);
        // A tracked temporary file: registered while it lives, deleted then unregistered.
        let t = temp_file(&tempfile::Builder::new(), Some(dir.path())).unwrap();
        let tp = t.path().to_path_buf();
        drop(t);
        assert!(!tp.exists());
        let t = temp_file(&tempfile::Builder::new(), Some(dir.path())).unwrap();
        let tp = t.path().to_path_buf();
        assert!(remove_all().contains(&tp), "a live tracked temporary file is registered");
        assert!(!tp.exists());
        drop(t);
    }
}
