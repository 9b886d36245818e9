//! The incident spec file (`--spec incident.toml`): an alternative to flags that names the
//! sources, format overrides, field mapping, identifiers, category, side effect and notes of
//! one incident. Relative paths are relative to the spec file's folder. The spec's own bytes
//! are sealed as an entry of kind `spec`.
//!
//! ```toml
//! incident_dir = "incident"          # optional
//! category = "unauthorized_side_effect"
//! side_effect = "unknown"
//! notes = ["paged 14:08"]
//! not_applicable = ["memory"]
//! field_map = "fields.toml"          # optional; or an inline [fields] table
//! follow_symlinks = false            # true: as --follow-symlinks (see `collect::links`)
//!
//! [identifiers]
//! trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
//!
//! [[sources]]
//! kind = "logs"
//! path = "/var/log/agent/tool_calls.jsonl"
//! format = "jsonl"                   # optional override
//!
//! [fields]
//! session_id = ["meta.sid"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest spec file accepted.
const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Errors reading a spec file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read incident spec {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Too large.
    #[error("incident spec {path} is larger than {MAX_SPEC_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not valid TOML for a spec.
    #[error("incident spec {path} is not valid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message (with line and column).
        #[source]
        source: toml::de::Error,
    },
}

/// One `[[sources]]` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpecSource {
    /// Evidence kind.
    pub kind: String,
    /// File or directory (relative to the spec's folder).
    pub path: PathBuf,
    /// Format override for everything under this source.
    #[serde(default)]
    pub format: Option<String>,
}

/// The spec file.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The conventional incident directory.
    #[serde(default)]
    pub incident_dir: Option<PathBuf>,
    /// Extra sources.
    #[serde(default)]
    pub sources: Vec<SpecSource>,
    /// Format overrides, `SELECTOR = FORMAT` (bundle path, folder or kind).
    #[serde(default)]
    pub formats: BTreeMap<String, String>,
    /// Identifier values by name.
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    /// Triage category.
    #[serde(default)]
    pub category: Option<String>,
    /// happened / not-happened / unknown.
    #[serde(default)]
    pub side_effect: Option<String>,
    /// Notes.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Checklist items not applicable.
    #[serde(default)]
    pub not_applicable: Vec<String>,
    /// A field-mapping file (relative to the spec's folder).
    #[serde(default)]
    pub field_map: Option<PathBuf>,
    /// An inline field mapping (same table as a mapping file's `[fields]`).
    #[serde(default)]
    pub fields: Option<toml::Table>,
    /// With `fields`: also try the built-in names (default true).
    #[serde(default)]
    pub use_defaults: Option<bool>,
    /// Follow symbolic links, under the rules of `--follow-symlinks` ([`super::links`]).
    #[serde(default)]
    pub follow_symlinks: bool,
}

impl Spec {
    /// Read and parse a spec file, resolving relative paths against its folder. Returns the
    /// spec and its exact bytes.
    pub fn load(path: &Path) -> Result<(Spec, Vec<u8>), SpecError> {
        let meta = std::fs::metadata(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
        if meta.len() > MAX_SPEC_BYTES {
            return Err(SpecError::TooLarge { path: path.into() });
        }
        let bytes = std::fs::read(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
        let text = String::from_utf8_lossy(&bytes);
        let mut spec: Spec = toml::from_str(&text).map_err(|source| SpecError::Parse { path: path.into(), source })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        if let Some(d) = spec.incident_dir.as_mut() {
            resolve(d);
        }
        if let Some(d) = spec.field_map.as_mut() {
            resolve(d);
        }
        for s in spec.sources.iter_mut() {
            resolve(&mut s.path);
        }
        Ok((spec, bytes))
    }

    /// The inline mapping as a mapping-file TOML text, if the spec has one.
    pub fn inline_mapping(&self) -> Option<String> {
        let fields = self.fields.as_ref()?;
        let mut t = toml::Table::new();
        t.insert("fields".into(), toml::Value::Table(fields.clone()));
        if let Some(u) = self.use_defaults {
            t.insert("use_defaults".into(), toml::Value::Boolean(u));
        }
        toml::to_string(&t).ok()
    }
}
