//! Field mapping: which JSON fields hold which identifier. A mapping file (TOML or JSON)
//! lists, per identifier, dotted paths tried in order before the built-in defaults.

use super::types::IdentName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Most path segments followed in a dotted path.
const MAX_PATH_SEGMENTS: usize = 32;
/// Largest mapping file accepted.
const MAX_MAPPING_BYTES: u64 = 1024 * 1024;

/// Error loading a field mapping.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file could not be read.
    #[error("cannot read field mapping {path}")]
    Read {
        /// File path.
        path: String,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than the mapping size limit.
    #[error("field mapping {path} is larger than {limit} bytes")]
    TooLarge {
        /// File path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// Invalid TOML.
    #[error("invalid TOML field mapping")]
    Toml(#[from] toml::de::Error),
    /// Invalid JSON.
    #[error("invalid JSON field mapping")]
    Json(#[from] serde_json::Error),
    /// The file's content is not a valid mapping (the cause says how).
    #[error("field mapping {path}")]
    Invalid {
        /// File path.
        path: String,
        /// What is wrong with it.
        #[source]
        source: Box<MappingError>,
    },
}

/// Which fields hold which identifier.
///
/// ```toml
/// use_defaults = true            # optional, default true
/// [fields]
/// session_id = ["session_id", "x-session-id"]
/// tool_principal = ["tool_principal", "input.principal"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// User paths per identifier, tried first, in order.
    #[serde(default)]
    pub fields: BTreeMap<IdentName, Vec<String>>,
    /// Whether the built-in common names are tried after the user paths.
    #[serde(default = "default_true")]
    pub use_defaults: bool,
}

fn default_true() -> bool {
    true
}

impl Default for FieldMapping {
    fn default() -> Self {
        FieldMapping { fields: BTreeMap::new(), use_defaults: true }
    }
}

impl FieldMapping {
    /// Parses a TOML mapping.
    pub fn from_toml_str(text: &str) -> Result<Self, MappingError> {
        Ok(toml::from_str(text)?)
    }

    /// Parses a JSON mapping (`{"fields": {"session_id": ["…"]}}`).
    pub fn from_json_str(text: &str) -> Result<Self, MappingError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Loads a mapping file; `.json` files are JSON, everything else TOML.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let file = std::fs::File::open(path)
            .map_err(|source| MappingError::Read { path: path.display().to_string(), source })?;
        Self::load_file(file, path)
    }

    /// Loads the mapping file `path` from `file`, already open (for one opened without
    /// following links: a parse error quotes the text it read, so it must read only the file
    /// that was checked).
    pub fn load_file(file: std::fs::File, path: &Path) -> Result<Self, MappingError> {
        Self::load_file_bytes(file, path).map(|(m, _)| m)
    }

    /// [`FieldMapping::load_file`], also returning the exact bytes parsed (`custody analyze`
    /// seals them, so the mapping recorded is the mapping used, even if the file changes).
    pub fn load_file_bytes(file: std::fs::File, path: &Path) -> Result<(Self, Vec<u8>), MappingError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let meta = file.metadata().map_err(|source| MappingError::Read { path: shown.clone(), source })?;
        if meta.len() > MAX_MAPPING_BYTES {
            return Err(MappingError::TooLarge { path: shown, limit: MAX_MAPPING_BYTES });
        }
        let mut text = String::new();
        file.take(MAX_MAPPING_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|source| MappingError::Read { path: shown.clone(), source })?;
        if text.len() as u64 > MAX_MAPPING_BYTES {
            return Err(MappingError::TooLarge { path: shown, limit: MAX_MAPPING_BYTES });
        }
        let is_json = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if is_json { Self::from_json_str(&text) } else { Self::from_toml_str(&text) };
        parsed.map(|m| (m, text.into_bytes())).map_err(|e| MappingError::Invalid { path: shown, source: Box::new(e) })
    }

    /// The identifier a field holds by the user's mapping: an exact dotted path (numeric
    /// segments, which index arrays, are ignored: records are walked without them).
    pub(crate) fn ident_for_path(&self, path: &str) -> Option<IdentName> {
        if self.fields.is_empty() {
            return None;
        }
        for (ident, paths) in &self.fields {
            for p in paths {
                if p == path {
                    return Some(*ident);
                }
                let stripped: Vec<&str> = p.split('.').filter(|seg| !seg.bytes().all(|b| b.is_ascii_digit())).collect();
                if stripped.join(".") == path {
                    return Some(*ident);
                }
            }
        }
        None
    }
}

/// Resolves a dotted path. A key that itself contains dots (`session.id`, flat attribute
/// maps) is matched before descending, so `a.b.c` finds `{"a.b":{"c":1}}` and
/// `{"a":{"b.c":1}}` as well as `{"a":{"b":{"c":1}}}`. Numeric segments index arrays.
pub(crate) fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    lookup_depth(value, path, 0)
}

fn lookup_depth<'v>(value: &'v Value, path: &str, depth: usize) -> Option<&'v Value> {
    if depth > MAX_PATH_SEGMENTS {
        return None;
    }
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(path) {
                return Some(v);
            }
            for (i, _) in path.match_indices('.') {
                let head = path.get(..i)?;
                let rest = path.get(i + 1..)?;
                if let Some(child) = map.get(head) {
                    if let Some(found) = lookup_depth(child, rest, depth + 1) {
                        return Some(found);
                    }
                }
            }
            None
        }
        Value::Array(items) => {
            let (head, rest) = match path.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (path, None),
            };
            let idx: usize = head.parse().ok()?;
            let child = items.get(idx)?;
            match rest {
                Some(r) => lookup_depth(child, r, depth + 1),
                None => Some(child),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_mappings_parse() {
        let m = FieldMapping::from_toml_str(
            "[fields]\nsession_id = [\"x-session-id\"]\ntool_principal = [\"input.principal\"]\n",
        )
        .unwrap_or_default();
        assert_eq!(m.ident_for_path("x-session-id"), Some(IdentName::SessionId));
        assert!(m.use_defaults);
        let j = FieldMapping::from_json_str(r#"{"fields":{"change_id":["meta.0.chg"]},"use_defaults":false}"#);
        let j = j.unwrap_or_default();
        assert_eq!(j.ident_for_path("meta.chg"), Some(IdentName::ChangeId));
        assert!(!j.use_defaults);
        assert!(FieldMapping::from_toml_str("[fields]\nnot_an_ident = [\"x\"]\n").is_err());
    }

    #[test]
    fn dotted_lookup_handles_flat_and_nested_keys() {
        let v: Value =
            serde_json::json!({"a.b": {"c": 1}, "x": {"y.z": "s"}, "arr": [{"k": "v"}], "session.id": "flat"});
        assert_eq!(lookup(&v, "a.b.c"), Some(&serde_json::json!(1)));
        assert_eq!(lookup(&v, "x.y.z"), Some(&serde_json::json!("s")));
        assert_eq!(lookup(&v, "arr.0.k"), Some(&serde_json::json!("v")));
        assert_eq!(lookup(&v, "session.id"), Some(&serde_json::json!("flat")));
        assert_eq!(lookup(&v, "arr.9.k"), None);
    }
}
