//! Input formats and content-based format detection.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// How many decompressed bytes of a compressed head are examined by [`detect`].
const DETECT_DECOMPRESSED_HEAD: u64 = 64 * 1024;

/// A recognised input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One OTLP/JSON `TracesData`/`LogsData` (or Export*ServiceRequest) document.
    OtlpJson,
    /// The OTel file exporter's JSON Lines: one OTLP/JSON object per line.
    OtlpJsonl,
    /// OPA decision-log upload body: a JSON array of decision events.
    OpaUpload,
    /// OPA decision events one per line (console `"msg":"Decision Log"` or plain).
    OpaJsonl,
    /// OpenAI Agents SDK `RunState` JSON (human-in-the-loop approvals).
    AgentsRunState,
    /// Generic approval events, one JSON object per line.
    ApprovalJsonl,
    /// Envoy default-format text access log.
    EnvoyText,
    /// Envoy/Istio JSON access log.
    EnvoyJson,
    /// Squid native access.log.
    SquidNative,
    /// Generic JSON Lines (tool-call logs, memory records) read through the field mapping.
    Jsonl,
    /// Generic single JSON document read through the field mapping.
    Json,
    /// Not scanned.
    Opaque,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 12] = [
        Format::OtlpJson,
        Format::OtlpJsonl,
        Format::OpaUpload,
        Format::OpaJsonl,
        Format::AgentsRunState,
        Format::ApprovalJsonl,
        Format::EnvoyText,
        Format::EnvoyJson,
        Format::SquidNative,
        Format::Jsonl,
        Format::Json,
        Format::Opaque,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OtlpJson => "otlp_json",
            Format::OtlpJsonl => "otlp_jsonl",
            Format::OpaUpload => "opa_upload",
            Format::OpaJsonl => "opa_jsonl",
            Format::AgentsRunState => "agents_run_state",
            Format::ApprovalJsonl => "approval_jsonl",
            Format::EnvoyText => "envoy_text",
            Format::EnvoyJson => "envoy_json",
            Format::SquidNative => "squid_native",
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Opaque => "opaque",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error parsing a user-supplied format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{name}` (try otlp, otlp-jsonl, opa, opa-jsonl, runstate, approvals, envoy, envoy-json, squid, jsonl, json, opaque)")]
pub struct FormatParseError {
    /// The rejected input.
    pub name: String,
}

impl FromStr for Format {
    type Err = FormatParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        let f = match norm.as_str() {
            "otlp" | "otlp-json" | "otel" | "otel-json" | "traces" => Format::OtlpJson,
            "otlp-jsonl" | "otel-jsonl" | "otlp-file" => Format::OtlpJsonl,
            "opa" | "opa-upload" => Format::OpaUpload,
            "opa-jsonl" | "opa-console" | "opa-decisions" => Format::OpaJsonl,
            "runstate" | "run-state" | "agents-run-state" | "openai-agents" => Format::AgentsRunState,
            "approvals" | "approval" | "approval-jsonl" => Format::ApprovalJsonl,
            "envoy" | "envoy-text" => Format::EnvoyText,
            "envoy-json" | "istio" => Format::EnvoyJson,
            "squid" | "squid-native" => Format::SquidNative,
            "jsonl" | "ndjson" | "json-lines" => Format::Jsonl,
            "json" => Format::Json,
            "opaque" | "none" | "binary" => Format::Opaque,
            _ => return Err(FormatParseError { name: s.to_string() }),
        };
        Ok(f)
    }
}

/// Compression wrapping an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Compression recognised by magic bytes.
pub fn sniff_compression(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// Decompresses as much of a compressed head as possible (a partial stream is fine).
fn decompress_head(kind: Compression, head: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match kind {
        Compression::Gzip => {
            let dec = flate2::read::MultiGzDecoder::new(head);
            read_partial(dec.take(DETECT_DECOMPRESSED_HEAD), &mut out);
        }
        Compression::Zstd => {
            if let Ok(dec) = zstd::stream::read::Decoder::new(head) {
                read_partial(dec.take(DETECT_DECOMPRESSED_HEAD), &mut out);
            }
        }
    }
    out
}

/// Reads until EOF or the first error, keeping what was read.
fn read_partial<R: Read>(mut r: R, out: &mut Vec<u8>) {
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
}

fn strip_compression_suffix(name: &str) -> &str {
    for suffix in [".gz", ".gzip", ".zst", ".zstd"] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            return stripped;
        }
    }
    name
}

/// Detects the format of an input from its first bytes (a few KiB are enough), using the
/// file name only as a tie breaker. Compressed heads are decompressed first.
pub fn detect(name_hint: &str, head: &[u8]) -> Format {
    if let Some(kind) = sniff_compression(head) {
        let inner = decompress_head(kind, head);
        return detect_plain(strip_compression_suffix(name_hint), &inner);
    }
    detect_plain(name_hint, head)
}

fn detect_plain(name_hint: &str, head: &[u8]) -> Format {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let body = body.get(start..).unwrap_or_default();
    let lower_name = name_hint.to_ascii_lowercase();
    let Some(&first) = body.first() else {
        return by_name_only(&lower_name);
    };
    // Binary content is never scanned.
    let sample = body.get(..body.len().min(4096)).unwrap_or_default();
    if memchr::memchr(0, sample).is_some() {
        return Format::Opaque;
    }
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    if first == b'[' && is_envoy_text(first_line) {
        return Format::EnvoyText;
    }
    if first == b'{' || first == b'[' {
        let parsed: Option<Top> = serde_json::from_slice(first_line).ok();
        if let Some(v) = parsed {
            return detect_json_value(v.object(), first == b'[', &lower_name);
        }
        // JSON Lines whose first line is bad: judge by the next complete line. A
        // pretty-printed document opens with a lone `{` or `[` and is not judged this way.
        if first_line.trim_ascii().len() > 1 {
            let next = body
                .split(|b| *b == b'\n')
                .skip(1)
                .take(50)
                .find_map(|l| serde_json::from_slice::<Top>(l.trim_ascii()).ok())
                .filter(|t| matches!(t, Top::Object(_)));
            if let Some(v) = next {
                return detect_json_value(v.object(), false, &lower_name);
            }
        }
        return detect_json_text(body, first == b'[', &lower_name);
    }
    if is_squid(first_line) {
        return Format::SquidNative;
    }
    Format::Opaque
}

fn by_name_only(lower_name: &str) -> Format {
    if lower_name.ends_with(".jsonl") || lower_name.ends_with(".ndjson") {
        Format::Jsonl
    } else if lower_name.ends_with(".json") {
        Format::Json
    } else {
        Format::Opaque
    }
}

/// The top level of a JSON value, all detection looks at: an object's keys with its string
/// values, or the same of an array's first element. Nested values are skipped, not built
/// (building a `serde_json::Value` of every small file's first line was half of the cost of
/// analysing 100 000 small files).
enum Top {
    Object(Keys),
    Array(Option<Keys>),
    Scalar,
}

/// An object's top-level keys, in order, with the string values detection reads
/// ([`VALUE_KEYS`]; other values are skipped, not copied). Of a key given twice the last value
/// counts, as in serde_json's maps. A few dozen keys: a list beats hashing them.
struct Keys(Vec<(String, Option<String>)>);

/// The keys whose string values detection looks at.
const VALUE_KEYS: [&str; 2] = ["msg", "type"];

impl Keys {
    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    fn str_of(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }
}

impl Top {
    /// The object detection looks at: the value itself, or an array's first element.
    fn object(&self) -> Option<&Keys> {
        match self {
            Top::Object(m) => Some(m),
            Top::Array(first) => first.as_ref(),
            Top::Scalar => None,
        }
    }
}

/// A string value (kept) or anything else (skipped).
struct StrOrSkip(Option<String>);

impl<'de> Deserialize<'de> for StrOrSkip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrSkip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOrSkip, E> {
                Ok(StrOrSkip(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StrOrSkip, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<StrOrSkip, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<StrOrSkip, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StrOrSkip, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrOrSkip, E> {
                Ok(StrOrSkip(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrOrSkip, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrOrSkip(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrOrSkip, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrOrSkip(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An object's keys and string values; `None` for anything else.
struct ObjectOrSkip(Option<Keys>);

fn top_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Keys, A::Error> {
    let mut keys = Vec::new();
    while let Some(k) = map.next_key::<String>()? {
        let v = if VALUE_KEYS.contains(&k.as_str()) {
            map.next_value::<StrOrSkip>()?.0
        } else {
            map.next_value::<IgnoredAny>()?;
            None
        };
        keys.push((k, v));
    }
    Ok(Keys(keys))
}

impl<'de> Deserialize<'de> for ObjectOrSkip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectOrSkip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectOrSkip, A::Error> {
                top_object(map).map(|m| ObjectOrSkip(Some(m)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ObjectOrSkip, E> {
                Ok(ObjectOrSkip(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ObjectOrSkip, E> {
                Ok(ObjectOrSkip(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ObjectOrSkip, E> {
                Ok(ObjectOrSkip(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ObjectOrSkip, E> {
                Ok(ObjectOrSkip(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ObjectOrSkip, E> {
                Ok(ObjectOrSkip(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ObjectOrSkip, E> {
                Ok(ObjectOrSkip(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectOrSkip, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ObjectOrSkip(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
                top_object(map).map(Top::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
                let first = seq.next_element::<ObjectOrSkip>()?.and_then(|o| o.0);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Top::Array(first))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
                Ok(Top::Scalar)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
                Ok(Top::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
                Ok(Top::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
                Ok(Top::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
                Ok(Top::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
                Ok(Top::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

/// Detection from the first complete JSON value (a whole line): `obj` is the object it is
/// (or the array's first element).
fn detect_json_value(obj: Option<&Keys>, is_array: bool, lower_name: &str) -> Format {
    let Some(obj) = obj else {
        return generic(is_array, true, lower_name);
    };
    let has = |k: &str| obj.has(k);
    let str_of = |k: &str| obj.str_of(k);
    if has("resourceSpans") || has("resourceLogs") {
        return if is_array { Format::OtlpJson } else { Format::OtlpJsonl };
    }
    if has("$schemaVersion") && (has("generated_items") || has("current_agent") || has("context")) {
        return Format::AgentsRunState;
    }
    let is_decision =
        has("decision_id") && (has("bundles") || has("path") || has("result") || has("input") || has("revision"));
    if is_decision || str_of("msg") == Some("Decision Log") {
        return if is_array { Format::OpaUpload } else { Format::OpaJsonl };
    }
    if has("approval_id") || str_of("type") == Some("tool_approval_item") {
        return Format::ApprovalJsonl;
    }
    let envoy_keys = [
        "response_code",
        "upstream_host",
        "authority",
        "start_time",
        "upstream_cluster",
        "response_flags",
        "bytes_sent",
        "x_forwarded_for",
        "downstream_remote_address",
    ];
    if envoy_keys.iter().filter(|k| has(k)).count() >= 3 {
        return Format::EnvoyJson;
    }
    generic(is_array, true, lower_name)
}

/// Detection from a head that is not one complete JSON value per line (a document).
fn detect_json_text(body: &[u8], is_array: bool, lower_name: &str) -> Format {
    let text = String::from_utf8_lossy(body);
    if text.contains("\"resourceSpans\"") || text.contains("\"resourceLogs\"") {
        return Format::OtlpJson;
    }
    if text.contains("\"$schemaVersion\"")
        && (text.contains("\"generated_items\"") || text.contains("\"current_agent\""))
    {
        return Format::AgentsRunState;
    }
    if text.contains("\"decision_id\"") && (text.contains("\"bundles\"") || text.contains("\"path\"")) {
        return Format::OpaUpload;
    }
    generic(is_array, false, lower_name)
}

fn generic(is_array: bool, first_line_complete: bool, lower_name: &str) -> Format {
    if is_array || !first_line_complete {
        return Format::Json;
    }
    if lower_name.ends_with(".json") {
        Format::Json
    } else {
        Format::Jsonl
    }
}

/// `[timestamp] "METHOD …` — Envoy's default text format.
pub(crate) fn is_envoy_text(line: &[u8]) -> bool {
    let Some(close) = line.iter().position(|b| *b == b']') else {
        return false;
    };
    line.first() == Some(&b'[') && line.get(close + 1..close + 3) == Some(b" \"")
}

/// `1286536308.779 180 192.168.0.224 TCP_MISS/200 …` — Squid's native format.
pub(crate) fn is_squid(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    let mut it = text.split_ascii_whitespace();
    let (Some(ts), Some(elapsed), Some(_client), Some(code)) = (it.next(), it.next(), it.next(), it.next()) else {
        return false;
    };
    ts.contains('.')
        && ts.parse::<f64>().is_ok()
        && elapsed.parse::<u64>().is_ok()
        && code.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty() && a.bytes().all(|c| c.is_ascii_uppercase() || c == b'_') && b.parse::<u16>().is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_text_formats() {
        let envoy = br#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0" "locations" "tcp://10.0.2.1:80""#;
        assert_eq!(detect("x.log", envoy), Format::EnvoyText);
        let squid = b"1286536308.779    180 192.168.0.224 TCP_MISS/200 411 GET http://example.com/ - HIER_DIRECT/1.2.3.4 text/html\n";
        assert_eq!(detect("access.log", squid), Format::SquidNative);
        assert_eq!(detect("a.bin", b"\x00\x01\x02"), Format::Opaque);
        assert_eq!(detect("empty.jsonl", b""), Format::Jsonl);
        assert_eq!(detect("notes.txt", b"hello world\n"), Format::Opaque);
    }

    /// Detection reads only the top-level keys and the `msg`/`type` strings; of a key given
    /// twice the last value counts (as serde_json's maps keep it), nested keys do not count,
    /// and a malformed first line is judged by the next one.
    #[test]
    fn detects_json_by_top_level_keys_and_last_value_of_a_repeated_key() {
        let approval = br#"{"type":"other","body":"x","type":"tool_approval_item"}"#;
        assert_eq!(detect("a.jsonl", approval), Format::ApprovalJsonl);
        let not_approval = br#"{"type":"tool_approval_item","type":"other"}"#;
        assert_eq!(detect("a.jsonl", not_approval), Format::Jsonl);
        let opa = br#"{"nested":{"type":"tool_approval_item"},"msg":"Decision Log","n":[1,{"a":2}]}"#;
        assert_eq!(detect("d.jsonl", opa), Format::OpaJsonl);
        assert_eq!(detect("o.jsonl", br#"{"x":{"resourceSpans":[]}}"#), Format::Jsonl);
        assert_eq!(detect("o.json", br#"[{"resourceSpans":[]}]"#), Format::OtlpJson);
        let bad_then_approval = b"{\"type\": broken\n{\"approval_id\":\"apr-1\"}\n";
        assert_eq!(detect("a.jsonl", bad_then_approval), Format::ApprovalJsonl);
    }

    #[test]
    fn parses_user_overrides() {
        assert_eq!("otlp".parse(), Ok(Format::OtlpJson));
        assert_eq!("OPA".parse(), Ok(Format::OpaUpload));
        assert_eq!("envoy".parse(), Ok(Format::EnvoyText));
        assert_eq!("envoy_json".parse(), Ok(Format::EnvoyJson));
        assert!("nope".parse::<Format>().is_err());
    }
}
