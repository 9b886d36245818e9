//! Values: how an identifier value is normalised, how any value is compared (its canonical
//! form), the byte patterns that find it in raw evidence, and times.
//!
//! One id is written many ways: a trace id as lower- or upper-case hex, UUID-hyphenated
//! (`4bf92f35-77b3-4da6-a3ce-929d0e0e4736`), base64 of its 16 bytes (standard or URL-safe,
//! padded or not), `trace_<hex>` (OpenAI Agents SDK), or inside a W3C `traceparent`
//! (`00-<trace>-<span>-01`). [`canon`] maps every form to one string, so a seed matches a
//! record whatever form either is written in; [`needles`] lists the byte forms the line
//! pre-filter searches for.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Longest value treated as an identifier; longer values are payloads.
pub(crate) const MAX_IDENT_LEN: usize = 1024;

/// Whether `s` is all ASCII hex digits.
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `8-4-4-4-12` hex with hyphens → the 32 hex digits.
fn unhyphenate_uuid(s: &str) -> Option<String> {
    if s.len() != 36 {
        return None;
    }
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() == 5 && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| is_hex(p)) {
        return Some(parts.concat());
    }
    None
}

/// The trace id part of a W3C `traceparent` (`version-traceid-parentid-flags`).
pub(crate) fn traceparent(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    // `vv-<32>-<16>-ff` is 55 bytes at least (a later version may append fields): most values
    // are shorter and need no split.
    if s.len() < 55 {
        return None;
    }
    let p: Vec<&str> = s.split('-').collect();
    if p.len() < 4 {
        return None;
    }
    let (v, t, s, f) = (p.first()?, p.get(1)?, p.get(2)?, p.get(3)?);
    if v.len() == 2
        && is_hex(v)
        && t.len() == 32
        && is_hex(t)
        && s.len() == 16
        && is_hex(s)
        && f.len() == 2
        && is_hex(f)
    {
        if t.bytes().all(|b| b == b'0') {
            return None;
        }
        return Some((t.to_ascii_lowercase(), s.to_ascii_lowercase()));
    }
    None
}

/// Base64 (standard or URL-safe, padded or not) of exactly 16 or 8 bytes → lower-case hex.
fn base64_id(s: &str) -> Option<String> {
    let plausible = matches!(s.len(), 24 | 22 | 12 | 11)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='));
    if !plausible || is_hex(s) {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(s).ok())?;
    if !matches!(bytes.len(), 16 | 8) || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(hex::encode(bytes))
}

/// A trace id in any of its written forms → 32 (or, for 64-bit trace ids, 16) lower-case hex
/// digits. `None` when the value is not a trace id (an all-zero id is none either).
pub(crate) fn normalize_trace_id(raw: &str) -> Option<String> {
    let s = raw.trim();
    if let Some((t, _)) = traceparent(s) {
        return Some(t);
    }
    let s = s.strip_prefix("trace_").unwrap_or(s);
    // AWS X-Ray: `1-<8 hex: epoch seconds>-<24 hex>` is the W3C id's 32 digits.
    if let Some(rest) = s.strip_prefix("1-").or_else(|| s.strip_prefix("Root=1-")) {
        if let Some((a, b)) = rest.split_once('-') {
            if a.len() == 8 && b.len() == 24 && is_hex(a) && is_hex(b) {
                let h = format!("{a}{b}").to_ascii_lowercase();
                return (!h.bytes().all(|x| x == b'0')).then_some(h);
            }
        }
    }
    let hex = if is_hex(s) && matches!(s.len(), 32 | 16) {
        s.to_ascii_lowercase()
    } else if let Some(h) = unhyphenate_uuid(s) {
        h.to_ascii_lowercase()
    } else {
        base64_id(s).filter(|h| h.len() == 32 || h.len() == 16)?
    };
    if hex.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(hex)
}

/// A span id (16 hex digits, or base64 of 8 bytes; the Agents SDK's `span_<hex>` kept
/// as written, lower-cased).
pub(crate) fn normalize_span_id(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 128 {
        return None;
    }
    if is_hex(s) {
        if s.bytes().all(|b| b == b'0') {
            return None;
        }
        return Some(s.to_ascii_lowercase());
    }
    if let Some(h) = base64_id(s).filter(|h| h.len() == 16) {
        return Some(h);
    }
    Some(s.to_ascii_lowercase())
}

/// A plain identifier value: trimmed, non-empty, at most [`MAX_IDENT_LEN`] bytes, no control
/// characters.
pub(crate) fn normalize_plain(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_IDENT_LEN || s.chars().any(char::is_control) {
        return None;
    }
    Some(s.to_string())
}

/// A value that stands for "none" or hides the real one: never an identifier.
///
/// * Placeholders: nginx, Apache and Squid log an absent header or variable as `-`; exporters
///   write `null`, `none`, `n/a`, `(none)`, `<nil>`, `undefined`.
/// * Redactions: Vault's audit log replaces secrets (its `client_token`, accessors) with
///   `hmac-sha256:<hex>` — one HMAC per token, shared by every request made with it in any
///   session, so following it as an identifier pulls unrelated sessions in — and exporters
///   mask values as `[REDACTED]`, `***`, `<redacted>`.
pub(crate) fn no_value(s: &str) -> bool {
    let t = s.trim().trim_matches(|c: char| matches!(c, '(' | ')' | '<' | '>' | '[' | ']'));
    if t.is_empty() || t.bytes().all(|b| matches!(b, b'-' | b'_' | b'.' | b'*' | b'?')) {
        return true;
    }
    // A mask of three or more `x`/`#` (`xxxx`, `####`); a lone `x` may be a name.
    if t.len() >= 3 && t.bytes().all(|b| matches!(b, b'x' | b'X' | b'#')) {
        return true;
    }
    const WORDS: [&str; 11] =
        ["null", "nil", "none", "n/a", "undefined", "unknown", "unset", "empty", "redacted", "masked", "hidden"];
    if WORDS.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        return true;
    }
    // Vault's audit HMAC exactly: `hmac-sha256:` and hex (not any name starting `hmac-`).
    ["hmac-sha256:", "hmac-sha1:", "hmac-sha512:"].iter().any(|p| {
        t.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p))
            && t.len() > p.len()
            && t.bytes().skip(p.len()).all(|b| b.is_ascii_hexdigit())
    })
}

/// The form values are compared in: a hex id in any of its forms (UUID, base64,
/// `trace_`-prefixed, upper case) becomes its lower-case hex; anything else is lower-cased
/// (ASCII). Two written values are "the same value" exactly when their canonical forms are
/// equal.
pub(crate) fn canon(raw: &str) -> String {
    let s = raw.trim();
    if let Some(h) = normalize_trace_id(s) {
        return h;
    }
    // A rollout wave written `wave-2`, `Wave 2`, `wave_2` is wave 2, as a bare `2` is.
    if let Some(n) = wave_number(s) {
        return n.to_string();
    }
    if let Some(h) = unhyphenate_uuid(s) {
        return h.to_ascii_lowercase();
    }
    s.to_ascii_lowercase()
}

/// The number of a wave written `wave-2`, `Wave 2`, `wave_2`, `wave2` (ASCII case ignored).
fn wave_number(s: &str) -> Option<&str> {
    let rest = s.get(..4).filter(|p| p.eq_ignore_ascii_case("wave")).and(s.get(4..))?;
    let n = rest.strip_prefix(['-', '_', ' ']).unwrap_or(rest);
    (!n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Byte patterns that find a value (given in canonical form) in raw evidence: the value in
/// lower and upper case, each `raw` form it was seen in, and for hex ids of 16 or 8 bytes
/// the UUID-hyphenated and base64 forms.
pub(crate) fn needles(canonical: &str, raw_forms: &[&str]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    let mut add = |p: Vec<u8>| {
        if !p.is_empty() && !v.contains(&p) {
            v.push(p);
        }
    };
    add(canonical.as_bytes().to_vec());
    add(canonical.to_ascii_uppercase().into_bytes());
    for r in raw_forms {
        add(r.trim().as_bytes().to_vec());
    }
    if is_hex(canonical) && matches!(canonical.len(), 32 | 16) {
        if let Ok(bytes) = hex::decode(canonical) {
            if canonical.len() == 32 {
                let c = canonical;
                let uuid = format!("{}-{}-{}-{}-{}", &c[..8], &c[8..12], &c[12..16], &c[16..20], &c[20..]);
                add(uuid.to_ascii_uppercase().into_bytes());
                add(uuid.into_bytes());
            }
            let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            // The unpadded body finds padded and unpadded writings alike.
            add(std.trim_end_matches('=').as_bytes().to_vec());
            add(url.into_bytes());
        }
    }
    v
}

/// Whether a time was written with a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Zone {
    /// UTC (`Z`, `+00:00`) or an epoch number.
    Utc,
    /// An offset other than UTC; the time is shown converted to UTC.
    Offset,
    /// No zone was written: read as UTC for ordering, and marked.
    None,
    /// Not understood as a time: kept as written, not ordered.
    Unparsed,
}

/// A point in time as the evidence wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Time {
    /// Nanoseconds since the Unix epoch (UTC), when understood.
    pub(crate) nanos: Option<i128>,
    /// RFC 3339 in UTC when understood, else the text as written (bounded).
    pub(crate) text: String,
    /// How the zone was given.
    pub(crate) zone: Zone,
}

impl Time {
    pub(crate) fn from_nanos(nanos: i128) -> Option<Time> {
        let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
        let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
        let t = DateTime::from_timestamp(secs, sub)?;
        Some(Time { nanos: Some(nanos), text: t.to_rfc3339_opts(SecondsFormat::AutoSi, true), zone: Zone::Utc })
    }

    /// A numeric epoch of unknown unit (s, ms, µs or ns, chosen by magnitude).
    pub(crate) fn from_epoch(x: f64) -> Option<Time> {
        if !x.is_finite() || x <= 0.0 {
            return None;
        }
        let nanos = if x >= 1e17 {
            x
        } else if x >= 1e14 {
            x * 1e3
        } else if x >= 1e11 {
            x * 1e6
        } else {
            x * 1e9
        };
        if nanos > 9.0e18 {
            return None;
        }
        // Float seconds carry no more than microseconds.
        let micros = (nanos / 1e3).round();
        Time::from_nanos((micros as i128) * 1000)
    }

    /// A time written as text: RFC 3339 (with a zone or an offset), an ISO date-time without
    /// a zone (marked), the same with a space or a comma before the fraction, a bracketed
    /// Envoy time, or an epoch of digits.
    pub(crate) fn parse(raw: &str) -> Option<Time> {
        let t = raw.trim().trim_start_matches('[').trim_end_matches(']').trim();
        if t.is_empty() || t.len() > 64 {
            return None;
        }
        if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && t.bytes().filter(|b| *b == b'.').count() <= 1 {
            if t.len() > 8 && !t.contains('.') {
                if let Ok(u) = t.parse::<u64>() {
                    if u >= 100_000_000_000_000_000 {
                        return Time::from_nanos(i128::from(u));
                    }
                    return Time::from_epoch(u as f64);
                }
            }
            return t.parse::<f64>().ok().filter(|_| t.len() > 8).and_then(Time::from_epoch);
        }
        let norm = t.replacen(',', ".", 1);
        // `2026-12-07 13:57:58 UTC` (GitLab webhooks, Rails): a zone named after a date-time
        // that otherwise has none.
        let (norm, named_utc) = match norm.strip_suffix(" UTC").or_else(|| norm.strip_suffix(" GMT")) {
            Some(n) => (n.to_string(), true),
            None => (norm, false),
        };
        let zoned = |dt: DateTime<chrono::FixedOffset>| {
            let zone = if dt.offset().local_minus_utc() == 0 { Zone::Utc } else { Zone::Offset };
            Time::at(dt.with_timezone(&Utc), zone)
        };
        if let Ok(dt) = DateTime::parse_from_rfc3339(&norm) {
            return zoned(dt);
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
            if let Ok(n) = NaiveDateTime::parse_from_str(&norm, fmt) {
                return Time::at(n.and_utc(), if named_utc { Zone::Utc } else { Zone::None });
            }
        }
        // `2026-11-21 14:02:42 +0000`, `21/Nov/2026:14:02:42 +0000` (common log format).
        for fmt in ["%Y-%m-%d %H:%M:%S%.f %z", "%d/%b/%Y:%H:%M:%S %z"] {
            if let Ok(dt) = DateTime::parse_from_str(&norm, fmt) {
                return zoned(dt);
            }
        }
        None
    }

    /// A UTC date-time, marked with how its zone was written.
    fn at(utc: DateTime<Utc>, zone: Zone) -> Option<Time> {
        let nanos = i128::from(utc.timestamp()) * 1_000_000_000 + i128::from(utc.timestamp_subsec_nanos());
        Some(Time { zone, ..Time::from_nanos(nanos)? })
    }

    /// Text that looks like a time but is not understood: kept, not ordered.
    pub(crate) fn unparsed(raw: &str) -> Time {
        let mut text: String = raw.trim().chars().filter(|c| !c.is_control()).take(64).collect();
        if text.is_empty() {
            text.push('?');
        }
        Time { nanos: None, text, zone: Zone::Unparsed }
    }

    /// A JSON value as a time: numbers are epochs, strings are parsed.
    pub(crate) fn of_json(v: &serde_json::Value) -> Option<Time> {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    if u >= 100_000_000_000_000_000 {
                        return Time::from_nanos(i128::from(u));
                    }
                }
                n.as_f64().and_then(Time::from_epoch)
            }
            serde_json::Value::String(s) => Time::parse(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    /// Red team, 2026-12-07: nginx's `-` for an absent `Idempotency-Key` header was taken as a
    /// second idempotency key (CONFLICT), and Vault's `hmac-sha256:…` of the MCP server's token
    /// as one that every session shares.
    #[test]
    fn regression_placeholders_and_redactions_are_no_value() {
        for v in ["-", " - ", "--", "null", "NULL", "(none)", "<nil>", "n/a", "***", "[REDACTED]", "undefined", "xxxx"] {
            assert!(no_value(v), "{v}");
        }
        assert!(no_value("hmac-sha256:5f0b2c9e1d7a4b3c"));
        for v in ["crd-7f21c9a04e3b", "idem-1", "wave-2", "sha256:0f3a", "x1", "2", "x", "na", "hmac-signer"] {
            assert!(!no_value(v), "{v}");
        }
        // Record values only: a value given on the command line is the responder's.
        assert_eq!(normalize_plain("unknown").as_deref(), Some("unknown"));
    }

    #[test]
    fn every_form_of_a_trace_id_has_one_canonical_form() {
        for form in [
            T,
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
            "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736",
            "S/kvNXezTaajzpKdDg5HNg==",
            "S_kvNXezTaajzpKdDg5HNg",
            "trace_4bf92f3577b34da6a3ce929d0e0e4736",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "1-4bf92f35-77b34da6a3ce929d0e0e4736",
        ] {
            assert_eq!(canon(form), T, "{form}");
            assert_eq!(normalize_trace_id(form).as_deref(), Some(T), "{form}");
        }
        assert_eq!(normalize_trace_id("00000000000000000000000000000000"), None);
        assert_eq!(normalize_trace_id("not-a-trace"), None);
        assert_eq!(canon("Sess-ABC"), "sess-abc");
    }

    #[test]
    fn needles_cover_the_written_forms() {
        let n = needles(T, &[]);
        for form in ["4BF92F35-77B3-4DA6", "S/kvNXezTaajzpKdDg5HNg", "S_kvNXezTaajzpKdDg5HNg", "4bf92f35-77b3"] {
            assert!(
                n.iter()
                    .any(|p| String::from_utf8_lossy(p).contains(form) || form.contains(&*String::from_utf8_lossy(p))),
                "{form}"
            );
        }
    }

    #[test]
    fn times_parse_with_their_zone() {
        let t = Time::parse("2026-11-21T14:02:42.329Z").map(|t| (t.text, t.zone));
        assert_eq!(t, Some(("2026-11-21T14:02:42.329Z".into(), Zone::Utc)));
        let t = Time::parse("2026-11-21T14:02:42.123456").map(|t| t.zone);
        assert_eq!(t, Some(Zone::None));
        let t = Time::parse("2026-11-21T15:02:42+01:00").map(|t| (t.text, t.zone));
        assert_eq!(t, Some(("2026-11-21T14:02:42Z".into(), Zone::Offset)));
        assert_eq!(Time::parse("[2016-04-15T20:17:00.310Z]").map(|t| t.zone), Some(Zone::Utc));
        assert_eq!(Time::parse("1286536308.779").map(|t| t.text), Some("2010-10-08T11:11:48.779Z".into()));
        assert_eq!(Time::parse("1795269762336800000").map(|t| t.text), Some("2026-11-21T14:02:42.336800Z".into()));
        assert!(Time::parse("hello").is_none());
        assert!(Time::from_epoch(f64::MAX).is_none());
        // GitLab's webhook times (red team, 2026-12-07: a deploy event had no start).
        let t = Time::parse("2026-12-07 13:57:58 UTC").map(|t| (t.text, t.zone));
        assert_eq!(t, Some(("2026-12-07T13:57:58Z".into(), Zone::Utc)));
    }
}
