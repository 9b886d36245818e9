//! Which symbolic links `preserve --follow-symlinks` follows, and which it never does.
//!
//! A link in collected evidence was made by whoever could write there — possibly the attacker
//! of the incident. Followed blindly, one link made custody seal its own signing key, another
//! (`/proc/self/environ`) custody's environment with the store's credentials, into a signed
//! bundle. A link is followed only when its target, fully resolved (every link of a chain,
//! whatever the depth, links inside followed directories included), is
//! 1. not custody's signing key: not its path, and not its device and inode (a hard link or a
//!    bind mount of the key is still the key);
//! 2. not inside the directory that holds the signing key, nor inside custody's home (keys,
//!    the default store): whatever else lives there is custody's, not the incident's —
//!    unless the target is also inside an incident directory or named source that the
//!    responder keeps *within* that directory (and that does not hold the key): evidence
//!    kept next to the key stays collectable, the rest of the key's directory does not;
//! 3. not under `/proc`, `/sys` or `/dev`: these are the kernel's interfaces, not files an
//!    incident wrote — every process's environment, memory, maps and open files, kernel and
//!    device state, devices and shared memory. None of it is evidence of the kind custody
//!    seals, much of it is secret, and some of it blocks or changes as it is read;
//! 4. inside the incident directory or inside a source the responder named (`--source`, the
//!    spec's `[[sources]]`, the spec and field-map files) — except for a link the responder
//!    named itself as a source, which is exempt from this rule (but not from 1–3).
//!
//! Each link not followed is journaled `skipped` with the rule it broke and the path of the
//! link (so its name stays on record). Rules 1–3 hold whatever names the target: a source
//! named on the command line does not make the signing key or `/proc` followable.
//!
//! Checking is not enough when the files can change: the check is made while planning, the
//! reading comes later. The planner therefore hands the reader the *resolved* path and the
//! target's identity (device, inode, birth time: [`crate::FileId`]); the reader
//! ([`crate::bundle::write`]) opens that path with no symbolic link allowed anywhere on it,
//! then compares the opened file's identity with the checked one (and with the signing key's, for every file it reads, followed or
//! not), so a link or file swapped in after the check is never read.

use std::path::{Path, PathBuf};

use crate::FileId;

/// Directories whose files are never reached through a link: the kernel's interfaces (rule 3).
pub const KERNEL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// What custody keeps secret: never followed to, whatever link or source leads there.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// The signing key's real path (links resolved).
    key_path: Option<PathBuf>,
    /// The signing key file's device and inode.
    key_id: Option<FileId>,
    /// Real paths of directories holding secrets, each with what it is (for the journal).
    dirs: Vec<(PathBuf, &'static str)>,
}

impl Secrets {
    /// The secrets of a preserve signing with the key at `key_path` (`key_id`: the key
    /// file's identity when it was read), with custody's home `home`.
    pub fn new(key_path: &Path, key_id: Option<FileId>, home: &Path) -> Secrets {
        let real_key = key_path.canonicalize().ok();
        let key_id = key_id.or_else(|| std::fs::metadata(key_path).ok().map(|m| FileId::of(&m)));
        let mut dirs = Vec::new();
        // The key's own directory: its real one, and the one it was named in (if the key
        // path is a link, both hold it).
        for dir in [real_key.as_deref().and_then(Path::parent), key_path.parent()].into_iter().flatten() {
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            if let Ok(d) = dir.canonicalize() {
                if !dirs.iter().any(|(x, _)| *x == d) {
                    dirs.push((d, "the directory of custody's signing key"));
                }
            }
        }
        if let Ok(h) = home.canonicalize() {
            if !dirs.iter().any(|(x, _)| *x == h) {
                dirs.push((h, "custody's home (its keys and default store)"));
            }
        }
        Secrets { key_path: real_key, key_id, dirs }
    }

    /// The signing key file's device and inode, if known.
    pub fn key_id(&self) -> Option<FileId> {
        self.key_id
    }
}

/// Why a link is not followed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Refusal {
    /// Its target is the signing key (rule 1).
    SigningKey,
    /// Its target is inside a directory holding custody's secrets (rule 2).
    SecretDir {
        /// The directory.
        dir: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Its target is a kernel interface (rule 3).
    Kernel(&'static str),
    /// Its target is outside the incident directory and every named source (rule 4).
    Outside,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::SigningKey => f.write_str("secret: it is custody's signing key"),
            Refusal::SecretDir { dir, what } => write!(f, "secret: it is inside {what} `{}`", dir.display()),
            Refusal::Kernel(dir) => write!(
                f,
                "it is under {dir}, a kernel interface (process environments, memory, maps, devices), not evidence; copy what you need into a file and preserve that"
            ),
            Refusal::Outside => f.write_str(
                "its target escapes the incident directory and every source named on the command line or in the spec (name it as a --source to collect it)",
            ),
        }
    }
}

/// Checks a link's resolved `target` (a real path: no link on it) and its metadata `meta`
/// (of the target) against the rules above. `allowed`: the real paths of the incident
/// directory and the named sources; `named`: the link is itself a source the responder named
/// (rule 4 does not apply).
pub fn check(
    target: &Path,
    meta: &std::fs::Metadata,
    secrets: &Secrets,
    allowed: &[PathBuf],
    named: bool,
) -> Result<(), Refusal> {
    if secrets.key_id == Some(FileId::of(meta)) || secrets.key_path.as_deref() == Some(target) {
        return Err(Refusal::SigningKey);
    }
    // A named root strictly inside a secret directory, not holding the key, is evidence the
    // responder keeps there: its own files stay followable.
    let kept_there = |d: &Path| {
        allowed.iter().any(|a| {
            a.starts_with(d)
                && a != d
                && target.starts_with(a)
                && !secrets.key_path.as_deref().is_some_and(|k| k.starts_with(a))
        })
    };
    if let Some((dir, what)) = secrets.dirs.iter().find(|(d, _)| target.starts_with(d) && !kept_there(d)) {
        return Err(Refusal::SecretDir { dir: dir.clone(), what });
    }
    if let Some(k) = KERNEL_DIRS.into_iter().find(|k| target.starts_with(k)) {
        return Err(Refusal::Kernel(k));
    }
    if !named && !allowed.iter().any(|a| target.starts_with(a)) {
        return Err(Refusal::Outside);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_refuses_with_its_reason_and_in_dir_targets_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (home, inc, named, elsewhere) =
            (root.join("home"), root.join("incident"), root.join("named"), root.join("elsewhere"));
        for d in [home.join("keys"), inc.clone(), named.clone(), elsewhere.clone()] {
            std::fs::create_dir_all(d).unwrap();
        }
        let key = home.join("keys/default.key");
        std::fs::write(&key, "k").unwrap();
        std::fs::write(home.join("keys/other"), "o").unwrap();
        std::fs::write(inc.join("a"), "a").unwrap();
        std::fs::hard_link(&key, inc.join("hard")).unwrap();
        std::fs::write(named.join("n"), "n").unwrap();
        std::fs::write(elsewhere.join("e"), "e").unwrap();
        let secrets = Secrets::new(&key, None, &home);
        let allowed = [inc.clone(), named.clone()];
        let check_path = |p: &Path, named: bool| check(p, &std::fs::metadata(p).unwrap(), &secrets, &allowed, named);
        assert_eq!(check_path(&key, false), Err(Refusal::SigningKey));
        assert_eq!(check_path(&inc.join("hard"), false), Err(Refusal::SigningKey), "a hard link is the key");
        assert_eq!(check_path(&key, true), Err(Refusal::SigningKey), "naming it does not help");
        assert!(matches!(check_path(&home.join("keys/other"), true), Err(Refusal::SecretDir { .. })));
        assert!(matches!(check_path(&home, false), Err(Refusal::SecretDir { .. })));
        assert_eq!(check_path(Path::new("/proc/self/environ"), true), Err(Refusal::Kernel("/proc")));
        assert_eq!(check_path(Path::new("/dev/null"), false), Err(Refusal::Kernel("/dev")));
        assert_eq!(check_path(&elsewhere.join("e"), false), Err(Refusal::Outside));
        assert_eq!(check_path(&elsewhere.join("e"), true), Ok(()), "a link the responder named");
        assert_eq!(check_path(&inc.join("a"), false), Ok(()));
        assert_eq!(check_path(&named.join("n"), false), Ok(()));
        assert_eq!(check_path(&named, false), Ok(()));
        // An incident directory kept in the key's directory: its own files are followable,
        // the rest of that directory (and the key) is not; naming the key's whole directory
        // (or one holding the key) opens nothing.
        let next_to_key = home.join("keys/incident");
        std::fs::create_dir_all(&next_to_key).unwrap();
        std::fs::write(next_to_key.join("x"), "x").unwrap();
        let kept = [next_to_key.clone(), home.join("keys"), home.clone()];
        let kept_check = |p: &Path| check(p, &std::fs::metadata(p).unwrap(), &secrets, &kept, false);
        assert_eq!(kept_check(&next_to_key.join("x")), Ok(()));
        assert!(matches!(kept_check(&home.join("keys/other")), Err(Refusal::SecretDir { .. })));
        assert_eq!(kept_check(&key), Err(Refusal::SigningKey));
        // `/procfoo` is not under `/proc`: components, not bytes.
        assert!(!Path::new("/procfoo/x").starts_with("/proc"));
    }
}
