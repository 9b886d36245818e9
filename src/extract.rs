//! `extract`: write a verified bundle's evidence files under a directory.
//!
//! The caller verifies first; extraction then re-reads the archive and streams each blob to a
//! temporary file inside the target, checks its SHA-256 again (the file may have changed since
//! verification), and links it to every entry path that names it. Paths come from a
//! [`crate::read::envelope::CheckedManifest`] (relative, no `..`); every directory on the way
//! is created by us or must be a real directory (never a symlink), and no existing file is
//! ever overwritten. Nothing is written outside the target. An extract that finds any of
//! its files already there writes nothing; one interrupted by a signal has the files it wrote
//! removed by the binary ([`crate::unfinished`]), so it can be run again into the same
//! directory.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::bundle::manifest::Manifest;
use crate::digest::Sha256;
use crate::read::archive::{read_archive, BlobVisitor, Limits};
use crate::unfinished::{temp_file, TrackedTemp, Unfinished};

/// Extraction errors.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// I/O on the target.
    #[error("{op} {path}: {source}")]
    Io {
        /// What.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// A path component on the way is not a plain directory.
    #[error("refusing to write through {0}: it is a symbolic link or not a directory")]
    UnsafePath(PathBuf),
    /// An entry path is not a plain relative path.
    #[error("refusing entry path `{0}`: not a plain relative path")]
    BadEntryPath(String),
    /// A blob changed between verification and extraction.
    #[error("blob {0} changed between verification and extraction; nothing of it was written")]
    Changed(String),
    /// Blobs the manifest names were not met while extracting.
    #[error("{0} blob(s) named by the manifest were not extracted")]
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
}

/// Files written.
#[derive(Debug, Default)]
pub struct Extracted {
    /// Relative paths written, sorted.
    pub files: Vec<String>,
    /// Bytes written.
    pub bytes: u64,
}

struct Writer<'a> {
    dir: &'a Path,
    targets: HashMap<Sha256, Vec<String>>,
    current: Option<(TrackedTemp, bool)>,
    /// The files written so far: removed by the binary if the run is interrupted.
    written: Vec<Unfinished>,
    done: Extracted,
    error: Option<ExtractError>,
    remaining: usize,
}

fn safe_parent(dir: &Path, rel: &str) -> Result<PathBuf, ExtractError> {
    let rel_path = Path::new(rel);
    if !rel_path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ExtractError::BadEntryPath(rel.into()));
    }
    let mut cur = dir.to_path_buf();
    let comps: Vec<_> = rel_path.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c.as_os_str());
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ExtractError::UnsafePath(cur)),
            Err(_) => fs::create_dir(&cur).map_err(|source| ExtractError::Io {
                op: "cannot create directory",
                path: cur.clone(),
                source,
            })?,
        }
    }
    Ok(dir.join(rel_path))
}

impl BlobVisitor for Writer<'_> {
    fn begin(&mut self, claimed: &Sha256, _size: u64) {
        self.current = None;
        if self.error.is_some() || !self.targets.contains_key(claimed) {
            return;
        }
        match temp_file(tempfile::Builder::new().prefix(".custody-extract-"), Some(self.dir)) {
            Ok(t) => self.current = Some((t, true)),
            Err(source) => {
                self.error =
                    Some(ExtractError::Io { op: "cannot create temporary file in", path: self.dir.into(), source })
            }
        }
    }
    fn chunk(&mut self, data: &[u8]) {
        if let Some((t, ok)) = &mut self.current {
            if *ok && t.write_all(data).is_err() {
                *ok = false;
            }
        }
    }
    fn end(&mut self, claimed: &Sha256, actual: Option<Sha256>) {
        let Some((t, ok)) = self.current.take() else { return };
        if actual != Some(*claimed) || !ok {
            self.error.get_or_insert(ExtractError::Changed(claimed.hex()));
            return;
        }
        let Some(paths) = self.targets.remove(claimed) else { return };
        self.remaining -= 1;
        for rel in paths {
            let dest = match safe_parent(self.dir, &rel) {
                Ok(d) => d,
                Err(e) => {
                    self.error.get_or_insert(e);
                    return;
                }
            };
            if let Err(source) = fs::hard_link(t.path(), &dest) {
                self.error.get_or_insert(if source.kind() == std::io::ErrorKind::AlreadyExists {
                    // Created since the check at the start (by someone else).
                    ExtractError::Exists { first: dest, count: 1 }
                } else {
                    ExtractError::Io { op: "cannot create", path: dest, source }
                });
                return;
            }
            self.written.push(Unfinished::track(&dest));
            if self.written.len() == 1 {
                crate::test_pause("extracted-one");
            }
            self.done.bytes += fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
            self.done.files.push(rel);
        }
    }
}

/// Extract the blobs of a (previously verified) bundle read from `bundle` into `dir`.
/// Nothing is written if any of the files is already there (extract never overwrites).
pub fn extract(bundle: &Path, manifest: &Manifest, dir: &Path, limits: &Limits) -> Result<Extracted, ExtractError> {
    // The target: an existing real directory, or one created here (then nothing is in it).
    let existed = match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => true,
        Ok(m) if m.file_type().is_symlink() => return Err(ExtractError::UnsafePath(dir.into())),
        Ok(_) => return Err(ExtractError::NotADirectory(dir.into())),
        Err(_) => {
            fs::create_dir_all(dir).map_err(|source| ExtractError::Io {
                op: "cannot create",
                path: dir.into(),
                source,
            })?;
            let meta = fs::symlink_metadata(dir).map_err(|source| ExtractError::Io {
                op: "cannot stat",
                path: dir.into(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(ExtractError::UnsafePath(dir.into()));
            }
            false
        }
    };
    // In an existing directory, refuse before writing anything rather than stop half-way at
    // the first file that exists. Only plain relative paths are looked up (others are refused
    // below, when extracting).
    if existed {
        let plain = |p: &Path| p.components().all(|c| matches!(c, Component::Normal(_)));
        let existing: Vec<PathBuf> = manifest
            .entries
            .iter()
            .map(|e| Path::new(&e.path))
            .filter(|p| plain(p))
            .map(|p| dir.join(p))
            .filter(|p| fs::symlink_metadata(p).is_ok())
            .collect();
        if let Some(first) = existing.first() {
            return Err(ExtractError::Exists { first: first.clone(), count: existing.len() });
        }
    }
    let mut targets: HashMap<Sha256, Vec<String>> = HashMap::new();
    for e in &manifest.entries {
        targets.entry(e.sha256).or_default().push(e.path.clone());
    }
    let remaining = targets.len();
    let mut w =
        Writer { dir, targets, current: None, written: Vec::new(), done: Extracted::default(), error: None, remaining };
    let file =
        fs::File::open(bundle).map_err(|source| ExtractError::Io { op: "cannot open", path: bundle.into(), source })?;
    let _scan = read_archive(file, limits, Some(&mut w));
    if let Some(e) = w.error {
        return Err(e);
    }
    if w.remaining > 0 {
        return Err(ExtractError::Incomplete(w.remaining));
    }
    w.done.files.sort();
    Ok(w.done)
}
