//! Pinned keys: which public keys a verification trusts, **for what** (a role) and **when**
//! (a validity period), and the pinned-keys file that lists them (`--trusted-keys FILE`,
//! `docs/format.md` §6.7).
//!
//! A signature is trusted when its key is pinned for the role of what it signs — `collector`
//! for bundles, `ledger` for ledger entries and checkpoints — and the times the signed object
//! states (a bundle's `collector.started_at` and `sealed_at`, an entry's `appended_at`, a
//! checkpoint's `time`) fall within the pin's validity. Those times are the signer's own
//! claim: a validity period shows that a key was used outside its window *by its own account*
//! (a retired key still deployed, a bundle sealed with last year's key), not when it really
//! signed — trusted time is an RFC 3161 token's.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::digest::Sha256;
use crate::keys::PublicKey;
use crate::read::ledger::KeyRole;

/// Largest pinned-keys file read.
pub const MAX_TRUST_FILE: u64 = 1 << 20;
/// Most keys one pinned-keys file may list.
pub const MAX_PINS: usize = 1000;
/// The `format` a pinned-keys file declares.
pub const TRUST_FILE_FORMAT: &str = "custody-trusted-keys/v1";

/// One pinned key: the key, the roles it is trusted for, and when.
#[derive(Debug, Clone)]
pub struct Pin {
    /// The public key.
    pub key: PublicKey,
    /// What it may sign: [`KeyRole::Collector`] (bundles), [`KeyRole::Ledger`] (ledger entries
    /// and checkpoints).
    pub roles: Vec<KeyRole>,
    /// The earliest time it may have signed at (inclusive), if bounded.
    pub not_before: Option<DateTime<Utc>>,
    /// The latest time it may have signed at (inclusive), if bounded.
    pub not_after: Option<DateTime<Utc>>,
    /// Where it was pinned, for messages (a file, or a file and line).
    pub origin: String,
}

impl Pin {
    /// A key trusted for every role, at any time (what `--trusted-key` pins).
    pub fn any(key: PublicKey) -> Pin {
        let origin = key.origin.clone();
        Pin { key, roles: vec![KeyRole::Collector, KeyRole::Ledger], not_before: None, not_after: None, origin }
    }

    /// A key trusted for ledger entries and checkpoints only (`--trusted-ledger-key`).
    pub fn ledger(key: PublicKey) -> Pin {
        Pin { roles: vec![KeyRole::Ledger], ..Pin::any(key) }
    }

    fn covers(&self, t: &DateTime<Utc>) -> bool {
        self.not_before.map_or(true, |nb| *t >= nb) && self.not_after.map_or(true, |na| *t <= na)
    }

    /// "from A to B", "until B", "from A", "at any time".
    fn window(&self) -> String {
        match (self.not_before, self.not_after) {
            (Some(a), Some(b)) => format!("from {} to {}", rfc3339(&a), rfc3339(&b)),
            (None, Some(b)) => format!("until {}", rfc3339(&b)),
            (Some(a), None) => format!("from {}", rfc3339(&a)),
            (None, None) => "at any time".into(),
        }
    }

    /// For a pass line: ", valid from A to B" when bounded, else nothing.
    pub(crate) fn validity_note(&self) -> String {
        match (self.not_before, self.not_after) {
            (None, None) => String::new(),
            _ => format!(", valid {}", self.window()),
        }
    }

    fn role_names(&self) -> String {
        self.roles.iter().map(|r| role_name(*r)).collect::<Vec<_>>().join(" and ")
    }
}

/// The name of a role as files and messages spell it.
pub(crate) fn role_name(r: KeyRole) -> &'static str {
    match r {
        KeyRole::Collector => "collector",
        KeyRole::Ledger => "ledger",
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Pinned public keys, each for some roles and a validity period.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Each key once (the first pin's copy).
    keys: Vec<PublicKey>,
    pins: Vec<Pin>,
}

/// How a pinned-keys judgement came out.
pub(crate) enum Judged<'a> {
    /// A pin for this role covers every time given.
    Trusted(&'a Pin),
    /// The key is pinned, but not for this role.
    WrongRole(&'a Pin),
    /// The key is pinned for this role, but no such pin covers this time (named by its field).
    Outside(&'a Pin, &'static str, DateTime<Utc>),
    /// The key is not pinned.
    Unknown,
}

impl Judged<'_> {
    /// The key, when it is pinned at all (its signature can be checked).
    pub(crate) fn key(&self) -> Option<&PublicKey> {
        match self {
            Judged::Trusted(p) | Judged::WrongRole(p) | Judged::Outside(p, _, _) => Some(&p.key),
            Judged::Unknown => None,
        }
    }

    /// Why a pinned key is not trusted here, for a finding (`what`: "bundles", "ledger
    /// entries"…); `None` when trusted or not pinned at all.
    pub(crate) fn refusal(&self, role: KeyRole, what: &str) -> Option<String> {
        match self {
            Judged::Trusted(_) | Judged::Unknown => None,
            Judged::WrongRole(p) => Some(format!(
                "key {} is pinned ({}) as a {} key only, and a {} key does not sign {what}: keep the roles apart, or pin it for role {} too if it really signs {what}",
                p.key.id,
                p.origin,
                p.role_names(),
                p.role_names(),
                role_name(role)
            )),
            Judged::Outside(p, field, t) => Some(format!(
                "key {} is pinned ({}) for {what} {}, but the {field} it signed says {}: a key used outside its validity (a retired key still signing, or one not yet in use); the time is the signer's own claim",
                p.key.id,
                p.origin,
                p.window(),
                rfc3339(t)
            )),
        }
    }
}

impl Trust {
    /// Trust exactly these keys, for every role, at any time.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Trust::pinned(keys.into_iter().map(Pin::any).collect())
    }

    /// Trust these pins.
    pub fn pinned(pins: Vec<Pin>) -> Self {
        let mut t = Trust::default();
        for p in pins {
            t.add(p);
        }
        t
    }

    /// Add a pin (a key may be pinned more than once: other roles, other periods).
    pub fn add(&mut self, pin: Pin) {
        if !self.keys.iter().any(|k| k.id == pin.key.id) {
            self.keys.push(pin.key.clone());
        }
        self.pins.push(pin);
    }

    /// The key with this id, whatever its roles and validity.
    pub fn find(&self, id: &Sha256) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id.0 == *id)
    }
    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// The keys, each once.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
    /// The pins, as given.
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// Is key `id` trusted for `role` at every one of `times` (each named by its field)?
    pub(crate) fn judge(&self, id: &Sha256, role: KeyRole, times: &[(&'static str, DateTime<Utc>)]) -> Judged<'_> {
        let mine: Vec<&Pin> = self.pins.iter().filter(|p| p.key.id.0 == *id).collect();
        let Some(first) = mine.first() else { return Judged::Unknown };
        let for_role: Vec<&Pin> = mine.iter().copied().filter(|p| p.roles.contains(&role)).collect();
        if for_role.is_empty() {
            return Judged::WrongRole(first);
        }
        if let Some(p) = for_role.iter().find(|p| times.iter().all(|(_, t)| p.covers(t))) {
            return Judged::Trusted(p);
        }
        // Name the first time the first pin of the role does not cover.
        let p = for_role[0];
        let (field, t) =
            times.iter().find(|(_, t)| !p.covers(t)).copied().unwrap_or(("time", DateTime::<Utc>::MIN_UTC));
        Judged::Outside(p, field, t)
    }

    /// Read a pinned-keys file (`docs/format.md` §6.7): TOML, at most [`MAX_TRUST_FILE`]
    /// bytes and [`MAX_PINS`] keys; a key given by path is read relative to the file's
    /// directory.
    pub fn load_file(path: &Path) -> Result<Vec<Pin>, TrustFileError> {
        use std::io::Read;
        let bad = |line: usize, problem: String| TrustFileError::Invalid { path: path.to_path_buf(), line, problem };
        let f =
            std::fs::File::open(path).map_err(|source| TrustFileError::Read { path: path.to_path_buf(), source })?;
        let mut bytes = Vec::new();
        f.take(MAX_TRUST_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| TrustFileError::Read { path: path.to_path_buf(), source })?;
        if bytes.len() as u64 > MAX_TRUST_FILE {
            return Err(bad(0, format!("larger than {MAX_TRUST_FILE} bytes: not a pinned-keys file")));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = line_of(&String::from_utf8_lossy(e.as_bytes()), e.utf8_error().valid_up_to());
            bad(line, "not UTF-8".into())
        })?;
        let file: TrustFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(&text, s.start));
            // The message alone, on one line: the position is the line said once, here.
            bad(line, e.message().trim().replace('\n', "; "))
        })?;
        if file.format.get_ref() != TRUST_FILE_FORMAT {
            return Err(bad(
                line_of(&text, file.format.span().start),
                format!("format is `{}`, expected `{TRUST_FILE_FORMAT}`", shown(file.format.get_ref())),
            ));
        }
        if file.key.len() > MAX_PINS {
            return Err(bad(
                0,
                format!("{} keys, more than the {MAX_PINS} a pinned-keys file may list", file.key.len()),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut pins = Vec::with_capacity(file.key.len());
        for k in file.key {
            let line = line_of(&text, k.span().start);
            let k = k.into_inner();
            let key = if k.public_key.trim_start().starts_with("-----BEGIN") {
                PublicKey::from_pem(&k.public_key, &PathBuf::from(format!("{}:{line}", path.display())))
                    .map_err(|e| bad(line, crate::error_text(&e)))?
            } else {
                let p = dir.join(&k.public_key);
                PublicKey::load(&p).map_err(|e| bad(line, crate::error_text(&e)))?
            };
            if let Some(want) = &k.keyid {
                if want.to_ascii_lowercase().trim_start_matches("sha256:") != key.id.to_string() {
                    return Err(bad(line, format!("keyid {} is not the key's id {}", shown(want), key.id)));
                }
            }
            if k.roles.is_empty() {
                return Err(bad(line, "roles is empty: give \"collector\", \"ledger\" or both".into()));
            }
            let mut roles = Vec::new();
            for r in &k.roles {
                let role = match r.as_str() {
                    "collector" => KeyRole::Collector,
                    "ledger" => KeyRole::Ledger,
                    other => {
                        return Err(bad(
                            line,
                            format!("unknown role `{}`: the roles are \"collector\" (signs bundles) and \"ledger\" (signs ledger entries and checkpoints)", shown(other)),
                        ))
                    }
                };
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
            let time = |field: &str, v: &Option<toml::Value>| -> Result<Option<DateTime<Utc>>, TrustFileError> {
                let Some(v) = v else { return Ok(None) };
                let s = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Datetime(d) => d.to_string(),
                    _ => return Err(bad(line, format!("{field} is not a date-time"))),
                };
                let t = DateTime::parse_from_rfc3339(&s)
                    .map_err(|_| {
                        bad(
                            line,
                            format!(
                                "{field} `{}` is not an RFC 3339 date-time with a zone (e.g. 2026-06-30T23:59:59Z)",
                                shown(&s)
                            ),
                        )
                    })?
                    .with_timezone(&Utc);
                use chrono::Datelike;
                if !(0..=9999).contains(&t.year()) {
                    return Err(bad(line, format!("{field} is outside the years 0000 to 9999")));
                }
                Ok(Some(t))
            };
            let not_before = time("not_before", &k.not_before)?;
            let not_after = time("not_after", &k.not_after)?;
            if let (Some(a), Some(b)) = (not_before, not_after) {
                if a > b {
                    return Err(bad(line, "not_before is later than not_after: the key would never be valid".into()));
                }
            }
            pins.push(Pin { key, roles, not_before, not_after, origin: format!("{}:{line}", path.display()) });
        }
        Ok(pins)
    }
}

/// A value from the file, for a message: clipped (whoever prints the error escapes it; the
/// binary writes every error through `Untrusted`).
fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes().iter().take(at).filter(|&&b| b == b'\n').count() + 1
}

/// A pinned-keys file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    format: toml::Spanned<String>,
    #[serde(default)]
    key: Vec<toml::Spanned<KeyEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    /// A path (relative to the file's directory) or the SPKI PEM text itself.
    public_key: String,
    /// Optional: the key id it must have (a guard against pinning the wrong file).
    keyid: Option<String>,
    roles: Vec<String>,
    not_before: Option<toml::Value>,
    not_after: Option<toml::Value>,
    /// Free text for people (ignored).
    #[allow(dead_code)]
    comment: Option<String>,
}

/// Why a pinned-keys file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFileError {
    /// The file cannot be read.
    #[error("cannot read the pinned-keys file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid pinned-keys file.
    #[error("{}{}: {problem} (see docs/format.md §6.7 for the pinned-keys file)", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line (0: the whole file).
        line: usize,
        /// What is wrong.
        problem: String,
    },
}
