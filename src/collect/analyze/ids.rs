//! Identifier value normalisation: trace ids in hex of either case or base64 become
//! lowercase hex; empty and all-zero ids are ignored.

use super::types::{IdentName, Observation};
use base64::Engine as _;

/// Longest identifier value kept; longer values are not identifiers but payloads.
const MAX_IDENT_LEN: usize = 1024;

/// Normalises `raw` as a value of `ident`. Returns the normalised value and, when it
/// differs, the raw form; `None` when the value is empty or not usable as an identifier.
pub fn normalize_ident(ident: IdentName, raw: &str) -> Option<(String, Option<String>)> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_IDENT_LEN {
        return None;
    }
    let value = match ident {
        IdentName::TraceId => normalize_trace_id(trimmed)?,
        _ => trimmed.to_string(),
    };
    let raw_out = if value == raw { None } else { Some(raw.to_string()) };
    Some((value, raw_out))
}

fn normalize_trace_id(s: &str) -> Option<String> {
    // The OpenAI Agents SDK writes its trace ids as `trace_<32 hex>`.
    if let Some(hex) = s.strip_prefix("trace_").filter(|h| h.len() == 32) {
        if hex.bytes().all(|b| b.is_ascii_hexdigit()) && !hex.bytes().all(|b| b == b'0') {
            return Some(hex.to_ascii_lowercase());
        }
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        if s.bytes().all(|b| b == b'0') {
            return None; // the invalid (all-zero) trace id
        }
        return Some(s.to_ascii_lowercase());
    }
    // Some exporters write the 16 id bytes in base64 (24 chars with `==` padding).
    if s.len() == 24 && s.ends_with("==") {
        let engine = base64::engine::general_purpose::STANDARD;
        if let Ok(bytes) = engine.decode(s) {
            if bytes.len() == 16 {
                if bytes.iter().all(|b| *b == 0) {
                    return None;
                }
                return Some(hex::encode(bytes));
            }
        }
    }
    Some(s.to_string())
}

/// Pushes an observation for `raw` unless it is empty or this identifier was already
/// observed in the record (the first field in priority order wins).
pub(crate) fn push_obs(obs: &mut Vec<Observation>, ident: IdentName, raw: &str, field: &str) {
    if obs.iter().any(|o| o.ident == ident) {
        return;
    }
    if let Some((value, raw)) = normalize_ident(ident, raw) {
        obs.push(Observation { ident, value, raw, field: field.to_string() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_normalise() {
        let up = normalize_ident(IdentName::TraceId, "5B8EFFF798038103D269B633813FC60C");
        assert_eq!(
            up,
            Some((
                "5b8efff798038103d269b633813fc60c".to_string(),
                Some("5B8EFFF798038103D269B633813FC60C".to_string())
            ))
        );
        let b64 = normalize_ident(IdentName::TraceId, "W47/95gDgQPSabYzgT/GDA==");
        assert_eq!(b64.map(|v| v.0), Some("5b8efff798038103d269b633813fc60c".to_string()));
        assert_eq!(normalize_ident(IdentName::TraceId, ""), None);
        assert_eq!(normalize_ident(IdentName::TraceId, "00000000000000000000000000000000"), None);
        assert_eq!(normalize_ident(IdentName::SessionId, " s1 "), Some(("s1".to_string(), Some(" s1 ".to_string()))));
    }
}
