//! `extract`: write a verified bundle's evidence files under a directory.
//!
//! [`extract`] takes a [`VerifiedBundle`] (only a successful verification makes one);
//! extraction then re-reads the archive and streams each blob to a
//! temporary file inside the target, checks its SHA-256 again (the file may have changed since
//! verification), and links it to every entry path that names it.
//!
//! Nothing is written outside the target, even while another process rewrites the target's
//! tree (replacing a directory extract just made by a symbolic link, for example): the target
//! is opened once, and every directory and file under it is created and opened relative to an
//! open directory descriptor (`mkdirat`, `openat` with `O_NOFOLLOW | O_DIRECTORY`, `linkat`,
//! `O_CREAT | O_EXCL` for the temporary files), never by resolving a path again. A directory on
//! the way that is a symbolic link or not a directory is refused; a name that exists is never
//! overwritten; a linked file that is not the one extract wrote is refused. Entry paths must
//! pass `check_entry_path` (relative, no `.` or `..`), checked before anything is created.
//!
//! An extract that refuses or fails leaves nothing behind: into an existing directory it
//! first looks up every path (relative to the directory, without following links) and
//! refuses before writing anything; a failure found later (a race, a blob changed since
//! verification) removes every file and directory it made, again relative to the open
//! directories. One interrupted by a signal has the same removed by the binary
//! ([`crate::unfinished`]), so it can be run again into the same directory.
//!
//! This needs `openat` and friends: on Unix only. On other platforms `extract` refuses
//! ([`ExtractError::Unsupported`]) and writes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::bundle::manifest::Manifest;
use crate::read::archive::Limits;
use crate::VerifiedBundle;

/// Extraction errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// I/O on the target.
    #[error("{op} {path}")]
    Io {
        /// What.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// A path component on the way is not a plain directory.
    #[error("refusing to write through {0}: it is a symbolic link or not a directory (extract leaves nothing behind when it refuses)")]
    UnsafePath(PathBuf),
    /// An entry path is not a plain relative path.
    #[error("refusing entry path `{0}`: not a plain relative path (nothing was written)")]
    BadEntryPath(String),
    /// A blob changed between verification and extraction.
    #[error("blob {0} changed between verification and extraction; what was extracted was removed")]
    Changed(String),
    /// Blobs the manifest names were not met while extracting.
    #[error("{0} blob(s) named by the manifest were not extracted; what was extracted was removed")]
    Incomplete(usize),
    /// The target is not a directory.
    #[error("extract target {0} exists and is not a directory: give --to a new or empty directory")]
    NotADirectory(PathBuf),
    /// Files to be extracted already exist in the target; nothing was written.
    #[error("{first} already exists ({count} of the bundle's files do): extract never overwrites, and wrote nothing; extract into a new or empty directory")]
    Exists {
        /// The first one, in the manifest's order.
        first: PathBuf,
        /// How many.
        count: usize,
    },
    /// A file extract linked into place was replaced by another one at once: another process
    /// is writing into the target.
    #[error("{0} was replaced by another file while extract wrote it: another process is writing into the target; what was extracted was removed; extract into a directory only you can write to")]
    Replaced(PathBuf),
    /// The failure `error`, after which some of what extract had made could not be removed:
    /// another process changed them meanwhile (a directory on the way replaced, which is not
    /// followed, or something added to a directory extract made).
    #[error("{} of the files and directories extract made could not be removed after it failed, because another process changed them meanwhile (first: {})", .left.len(), .left.first().map(|p| p.display().to_string()).unwrap_or_default())]
    LeftBehind {
        /// The failure.
        #[source]
        error: Box<ExtractError>,
        /// What is left, as paths under the target.
        left: Vec<PathBuf>,
    },
    /// Not built for this platform.
    #[error("extract is not supported on this platform: it creates files only relative to open directory descriptors (openat), which custody uses on Unix; nothing was written")]
    Unsupported,
}

/// Files written.
#[derive(Debug, Default)]
pub struct Extracted {
    /// Relative paths written, sorted.
    pub files: Vec<String>,
    /// Bytes written.
    pub bytes: u64,
}

/// Extract the files of a verified bundle into `dir` (made if missing). Nothing is written if
/// any of the files is already there (extract never overwrites), and nothing is left behind
/// if it fails (see the module documentation).
pub fn extract(bundle: &VerifiedBundle, dir: &Path) -> Result<Extracted, ExtractError> {
    extract_file(bundle.path(), bundle.manifest(), dir, bundle.limits())
}

/// [`extract`] from a bundle file and the manifest it was verified with (the blobs are hashed
/// again; the entry paths are checked again, whatever the manifest's origin).
#[cfg(unix)]
pub(crate) fn extract_file(
    bundle: &Path,
    manifest: &Manifest,
    dir: &Path,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    for e in &manifest.entries {
        crate::read::envelope::check_entry_path(&e.path).map_err(|_| ExtractError::BadEntryPath(e.path.clone()))?;
    }
    let file = std::fs::File::open(bundle).map_err(|source| ExtractError::Io {
        op: "cannot open",
        path: bundle.into(),
        source,
    })?;
    let mut t = at::Target::open(dir)?;
    let r = match t.check_nothing_in_the_way(manifest) {
        Ok(()) => at::write_blobs(&mut t, file, manifest, limits),
        Err(e) => Err(e),
    };
    match r {
        Ok(done) => {
            t.keep();
            Ok(done)
        }
        Err(error) => match t.remove_what_was_made() {
            left if left.is_empty() => Err(error),
            left => Err(ExtractError::LeftBehind { error: Box::new(error), left }),
        },
    }
}

/// On platforms without `openat`: refuses, writing nothing.
#[cfg(not(unix))]
pub(crate) fn extract_file(
    _bundle: &Path,
    _manifest: &Manifest,
    _dir: &Path,
    _limits: &Limits,
) -> Result<Extracted, ExtractError> {
    Err(ExtractError::Unsupported)
}

/// The directory-descriptor-relative implementation.
#[cfg(unix)]
mod at {
    use std::ffi::OsStr;
    use std::io::Write;
    use std::sync::Arc;

    use rand_core::RngCore;
    use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
    use rustix::fs::{AtFlags, Mode, OFlags, CWD};
    use rustix::io::Errno;

    use super::*;
    use crate::digest::Sha256;
    use crate::read::archive::{read_archive, BlobVisitor};
    use crate::unfinished::{remove_under, Unfinished};

    /// Opening a directory under another one: never through a symbolic link, never blocking
    /// on a FIFO planted in its place.
    fn dir_flags() -> OFlags {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
    }

    /// The errors of `openat(…, O_NOFOLLOW | O_DIRECTORY)` on something that is not a plain
    /// directory: a symbolic link (ELOOP; EMLINK on FreeBSD) or anything else (ENOTDIR).
    fn not_a_plain_dir(e: Errno) -> bool {
        e == Errno::LOOP || e == Errno::NOTDIR || e == Errno::MLINK
    }

    /// Something extract made, registered for removal if the run is interrupted.
    struct Made {
        /// Relative to [`Target::base`].
        rel: PathBuf,
        dir: bool,
        shown: PathBuf,
        _guard: Unfinished,
    }

    /// The target directory, open.
    pub(super) struct Target {
        /// As given, for messages.
        dir: PathBuf,
        root: Arc<OwnedFd>,
        /// `root`, or the existing directory the missing part of the target was created in.
        base: Arc<OwnedFd>,
        /// `root`'s path relative to `base` (empty when they are the same).
        prefix: PathBuf,
        /// `root` was made by this extract (nothing else can be in it but a racing writer's).
        created: bool,
        /// What this extract made, in order.
        made: Vec<Made>,
        cursor: Cursor,
    }

    impl Target {
        /// Opens `dir`, a real directory (not a symbolic link), creating it and its missing
        /// parents if needed. The parents that exist are the caller's own path: followed.
        pub(super) fn open(dir: &Path) -> Result<Target, ExtractError> {
            let io = |op, path: &Path, e: Errno| ExtractError::Io { op, path: path.into(), source: e.into() };
            match rustix::fs::openat(CWD, dir, dir_flags(), Mode::empty()) {
                Ok(fd) => {
                    let root = Arc::new(fd);
                    return Ok(Target::new(dir, root.clone(), root, false));
                }
                Err(Errno::NOENT) => {}
                Err(e) if not_a_plain_dir(e) => {
                    return Err(match std::fs::symlink_metadata(dir) {
                        Ok(m) if m.file_type().is_symlink() => ExtractError::UnsafePath(dir.into()),
                        Ok(_) => ExtractError::NotADirectory(dir.into()),
                        Err(_) => io("cannot open", dir, e),
                    })
                }
                Err(e) => return Err(io("cannot open", dir, e)),
            }
            // The nearest ancestor that exists; the rest is created under it, one directory at
            // a time, each opened without following links.
            let mut missing: Vec<&OsStr> = Vec::new();
            let mut p = dir;
            let (base_path, base) = loop {
                let Some(name) = p.file_name() else {
                    return Err(ExtractError::Io {
                        op: "cannot create",
                        path: dir.into(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no directory"),
                    });
                };
                missing.push(name);
                let parent = match p.parent() {
                    Some(q) if !q.as_os_str().is_empty() => q,
                    _ => Path::new("."),
                };
                match rustix::fs::openat(
                    CWD,
                    parent,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => break (parent, fd),
                    Err(Errno::NOENT) if parent != Path::new(".") => p = parent,
                    Err(e) => return Err(io("cannot open", parent, e)),
                }
            };
            let base = Arc::new(base);
            let mut t = Target::new(dir, base.clone(), base, true);
            for (i, name) in missing.iter().rev().enumerate() {
                let rel = t.prefix.join(name);
                let shown = if base_path == Path::new(".") { rel.clone() } else { base_path.join(&rel) };
                let last = i + 1 == missing.len();
                let made = match rustix::fs::mkdirat(&*t.root, *name, Mode::from_raw_mode(0o777)) {
                    Ok(()) => true,
                    // Made by someone else meanwhile: opened like any existing directory, and
                    // looked into before writing.
                    Err(Errno::EXIST) => false,
                    Err(e) => return Err(t.failed(io("cannot create directory", &shown, e))),
                };
                if made {
                    t.track(rel.clone(), true, shown.clone());
                }
                if last {
                    t.created = made;
                }
                match rustix::fs::openat(&*t.root, *name, dir_flags(), Mode::empty()) {
                    Ok(fd) => t.root = Arc::new(fd),
                    Err(e) if not_a_plain_dir(e) => return Err(t.failed(ExtractError::UnsafePath(shown))),
                    Err(e) => return Err(t.failed(io("cannot open", &shown, e))),
                }
                t.prefix = rel;
            }
            Ok(t)
        }

        fn new(dir: &Path, root: Arc<OwnedFd>, base: Arc<OwnedFd>, created: bool) -> Target {
            Target {
                dir: dir.into(),
                root,
                base,
                prefix: PathBuf::new(),
                created,
                made: Vec::new(),
                cursor: Cursor::default(),
            }
        }

        /// Removes what was made, then gives back `e`.
        fn failed(mut self, e: ExtractError) -> ExtractError {
            match self.remove_what_was_made() {
                left if left.is_empty() => e,
                left => ExtractError::LeftBehind { error: Box::new(e), left },
            }
        }

        /// Registers `rel` (relative to `base`) as made by this extract.
        fn track(&mut self, rel: PathBuf, dir: bool, shown: PathBuf) {
            let guard = Unfinished::track_under(&self.base, &rel, dir, &shown);
            self.made.push(Made { rel, dir, shown, _guard: guard });
        }

        /// Registers `rel` (a path under the target) as made by this extract.
        fn track_in_root(&mut self, rel: &str, dir: bool) {
            self.track(self.prefix.join(rel), dir, self.dir.join(rel));
        }

        /// In a directory this extract did not create: refuses, before writing anything, if
        /// any entry's path exists or goes through something that is not a plain directory.
        pub(super) fn check_nothing_in_the_way(&mut self, manifest: &Manifest) -> Result<(), ExtractError> {
            if self.created {
                return Ok(());
            }
            let mut cursor = Cursor::default();
            let mut existing = Vec::new();
            for e in &manifest.entries {
                let comps: Vec<&str> = e.path.split('/').collect();
                let parent = match cursor.parent(&self.root, &comps, None) {
                    Ok(Some(p)) => p,
                    // A directory on the way does not exist yet: nothing under it does.
                    Ok(None) => continue,
                    Err(step) => return Err(step.error(&self.dir, &comps)),
                };
                let name = comps[comps.len() - 1];
                match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(_) => existing.push(self.dir.join(&e.path)),
                    Err(Errno::NOENT) => {}
                    Err(err) => {
                        return Err(ExtractError::Io {
                            op: "cannot look up",
                            path: self.dir.join(&e.path),
                            source: err.into(),
                        })
                    }
                }
            }
            match existing.first() {
                Some(first) => Err(ExtractError::Exists { first: first.clone(), count: existing.len() }),
                None => Ok(()),
            }
        }

        /// Success: what was made stays (and is no longer registered for removal).
        pub(super) fn keep(&mut self) {
            self.made.clear();
        }

        /// Removes everything made (latest first: files before their directories), relative
        /// to the open base directory; returns what could not be removed.
        pub(super) fn remove_what_was_made(&mut self) -> Vec<PathBuf> {
            self.cursor = Cursor::default();
            let mut left = Vec::new();
            for m in self.made.drain(..).rev() {
                match remove_under(&self.base, &m.rel, m.dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => left.push(m.shown.clone()),
                }
            }
            left.reverse();
            left
        }
    }

    /// Why a directory on the way could not be used: at `depth` components.
    pub(super) enum Step {
        NotPlain(usize),
        Io(&'static str, usize, Errno),
    }

    impl Step {
        fn error(&self, dir: &Path, comps: &[&str]) -> ExtractError {
            let at = |depth: usize| dir.join(comps[..depth].join("/"));
            match *self {
                Step::NotPlain(d) => ExtractError::UnsafePath(at(d)),
                Step::Io(op, d, e) => ExtractError::Io { op, path: at(d), source: e.into() },
            }
        }
    }

    /// The open directories along the last path looked up: consecutive paths share them
    /// (the manifest is sorted), and only as many descriptors as the path is deep are open.
    #[derive(Default)]
    struct Cursor {
        stack: Vec<(String, OwnedFd)>,
    }

    impl Cursor {
        /// The open directory that holds the last of `comps`, under `root`. A missing
        /// directory on the way is created when `made` is given (and its path relative to
        /// `root` pushed there), else the answer is `None`.
        fn parent<'a>(
            &'a mut self,
            root: &'a OwnedFd,
            comps: &[&str],
            mut made: Option<&mut Vec<String>>,
        ) -> Result<Option<BorrowedFd<'a>>, Step> {
            let dirs = &comps[..comps.len().saturating_sub(1)];
            let keep = self.stack.iter().zip(dirs).take_while(|((n, _), c)| n == *c).count();
            self.stack.truncate(keep);
            for (i, c) in dirs.iter().enumerate().skip(keep) {
                let cur = self.stack.last().map(|(_, fd)| fd.as_fd()).unwrap_or(root.as_fd());
                let fd = match rustix::fs::openat(cur, *c, dir_flags(), Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => {
                        let Some(made) = made.as_deref_mut() else { return Ok(None) };
                        match rustix::fs::mkdirat(cur, *c, Mode::from_raw_mode(0o777)) {
                            Ok(()) => made.push(dirs[..=i].join("/")),
                            // Made by someone else meanwhile: used if it is a plain directory.
                            Err(Errno::EXIST) => {}
                            Err(e) => return Err(Step::Io("cannot create directory", i + 1, e)),
                        }
                        match rustix::fs::openat(cur, *c, dir_flags(), Mode::empty()) {
                            Ok(fd) => fd,
                            Err(e) if not_a_plain_dir(e) => return Err(Step::NotPlain(i + 1)),
                            Err(e) => return Err(Step::Io("cannot open directory", i + 1, e)),
                        }
                    }
                    Err(e) if not_a_plain_dir(e) => return Err(Step::NotPlain(i + 1)),
                    Err(e) => return Err(Step::Io("cannot open directory", i + 1, e)),
                };
                self.stack.push((c.to_string(), fd));
            }
            Ok(Some(self.stack.last().map(|(_, fd)| fd.as_fd()).unwrap_or(root.as_fd())))
        }
    }

    /// A blob being written: a temporary file created in the target root (`O_EXCL`), removed
    /// (relative to the root) when dropped; its links stay.
    struct Temp {
        file: std::fs::File,
        root: Arc<OwnedFd>,
        name: String,
        ok: bool,
        written: u64,
        _guard: Unfinished,
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = rustix::fs::unlinkat(&*self.root, self.name.as_str(), AtFlags::empty());
        }
    }

    fn temp(t: &Target) -> Result<Temp, ExtractError> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut last = Errno::EXIST;
        for _ in 0..16 {
            let name = format!(".custody-extract-{:016x}", rand_core::OsRng.next_u64());
            match rustix::fs::openat(&*t.root, name.as_str(), flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => {
                    let guard = Unfinished::track_under(&t.base, &t.prefix.join(&name), false, &t.dir.join(&name));
                    return Ok(Temp {
                        file: fd.into(),
                        root: t.root.clone(),
                        name,
                        ok: true,
                        written: 0,
                        _guard: guard,
                    });
                }
                Err(e) if e == Errno::EXIST => last = e,
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        Err(ExtractError::Io { op: "cannot create a temporary file in", path: t.dir.clone(), source: last.into() })
    }

    struct Writer<'a> {
        t: &'a mut Target,
        targets: HashMap<Sha256, Vec<String>>,
        current: Option<Temp>,
        done: Extracted,
        error: Option<ExtractError>,
        remaining: usize,
    }

    impl Writer<'_> {
        /// Links the verified temporary file `tmp` to `rel` under the target, creating the
        /// directories on the way.
        fn link(&mut self, tmp: &Temp, tmp_stat: &rustix::fs::Stat, rel: &str) -> Result<(), ExtractError> {
            let comps: Vec<&str> = rel.split('/').collect();
            let name = comps[comps.len() - 1];
            let mut made = Vec::new();
            let t = &mut *self.t;
            let parent = t.cursor.parent(&t.root, &comps, Some(&mut made));
            // Registered even when the lookup failed after making some of them.
            let mut shown_made = Vec::with_capacity(made.len());
            for d in &made {
                shown_made.push((t.prefix.join(d), t.dir.join(d)));
            }
            let parent = match parent {
                Ok(Some(p)) => Ok(p),
                Ok(None) => unreachable!("directories are created"),
                Err(step) => Err(step.error(&t.dir, &comps)),
            };
            // `parent` borrows the cursor; `made` is recorded in the other fields.
            for (rel_base, shown) in shown_made {
                let guard = Unfinished::track_under(&t.base, &rel_base, true, &shown);
                t.made.push(Made { rel: rel_base, dir: true, shown, _guard: guard });
            }
            let parent = parent?;
            match rustix::fs::linkat(&*t.root, tmp.name.as_str(), parent, name, AtFlags::empty()) {
                Ok(()) => {}
                // Created since the check at the start (by someone else).
                Err(Errno::EXIST) => return Err(ExtractError::Exists { first: t.dir.join(rel), count: 1 }),
                Err(e) => {
                    return Err(ExtractError::Io { op: "cannot create", path: t.dir.join(rel), source: e.into() })
                }
            }
            let linked = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW);
            t.track_in_root(rel, false);
            // The name was ours to link (linkat never replaces), but the temporary name it was
            // linked from may have been swapped by a writer in the target.
            if !linked.is_ok_and(|s| s.st_dev == tmp_stat.st_dev && s.st_ino == tmp_stat.st_ino) {
                return Err(ExtractError::Replaced(t.dir.join(rel)));
            }
            Ok(())
        }
    }

    impl BlobVisitor for Writer<'_> {
        fn begin(&mut self, claimed: &Sha256, _size: u64) {
            self.current = None;
            if self.error.is_some() || !self.targets.contains_key(claimed) {
                return;
            }
            match temp(self.t) {
                Ok(t) => self.current = Some(t),
                Err(e) => self.error = Some(e),
            }
        }
        fn chunk(&mut self, data: &[u8]) {
            if let Some(t) = &mut self.current {
                if t.ok {
                    match t.file.write_all(data) {
                        Ok(()) => t.written += data.len() as u64,
                        Err(_) => t.ok = false,
                    }
                }
            }
        }
        fn end(&mut self, claimed: &Sha256, actual: Option<Sha256>) {
            let Some(tmp) = self.current.take() else { return };
            if actual != Some(*claimed) || !tmp.ok {
                self.error.get_or_insert(ExtractError::Changed(claimed.hex()));
                return;
            }
            let Some(paths) = self.targets.remove(claimed) else { return };
            self.remaining -= 1;
            let tmp_stat = match rustix::fs::fstat(&tmp.file) {
                Ok(s) => s,
                Err(e) => {
                    self.error.get_or_insert(ExtractError::Io {
                        op: "cannot stat a temporary file in",
                        path: self.t.dir.clone(),
                        source: e.into(),
                    });
                    return;
                }
            };
            for rel in paths {
                if let Err(e) = self.link(&tmp, &tmp_stat, &rel) {
                    self.error.get_or_insert(e);
                    return;
                }
                if self.done.files.is_empty() {
                    crate::test_pause("extracted-one");
                }
                self.done.bytes += tmp.written;
                self.done.files.push(rel);
            }
        }
    }

    /// Streams the archive, writing each blob the manifest names to its paths.
    pub(super) fn write_blobs(
        t: &mut Target,
        file: std::fs::File,
        manifest: &Manifest,
        limits: &Limits,
    ) -> Result<Extracted, ExtractError> {
        let mut targets: HashMap<Sha256, Vec<String>> = HashMap::new();
        for e in &manifest.entries {
            targets.entry(e.sha256).or_default().push(e.path.clone());
        }
        let remaining = targets.len();
        let mut w = Writer { t, targets, current: None, done: Extracted::default(), error: None, remaining };
        let _scan = read_archive(file, limits, Some(&mut w));
        w.current = None;
        if let Some(e) = w.error.take() {
            return Err(e);
        }
        if w.remaining > 0 {
            return Err(ExtractError::Incomplete(w.remaining));
        }
        w.done.files.sort();
        Ok(w.done)
    }
}
