//! Input formats as plug-ins: each format is one [`FormatDef`] (its name and spellings, the
//! evidence kind it holds, how it is detected, how its records are read), registered in one
//! list, [`REGISTRY`], whose order is the detection priority. Names, accepted spellings, the
//! CLI help and the error for an unknown name are generated from that list (and a test holds
//! the schema's enum of format names to it).
//!
//! Detection reads the head of a file (16 KiB, decompressed first when it is gzip or zstd,
//! UTF-16 transcoded): the top-level keys of its first JSON value (and the keys of the first
//! element of a top-level array or of an array-valued key), or its first text line. The file
//! name is only a hint, used last.

mod agents;
mod claude;
mod cloud;
mod deploy;
mod gcp;
mod generic;
mod llmops;
mod logs;
mod memory;
mod opa;
mod otlp;
mod people;
mod proxy;

use super::item::Item;
use super::mapping::FieldMapping;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// How a format's input is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One value per line.
    Lines,
    /// One value for the whole input.
    Document,
    /// Text lines (a line that starts with `{` is read as JSON).
    Text,
    /// Not scanned.
    None,
}

/// How a format wants its input delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayoutPref {
    /// JSON: one value per line when the first line is a complete value, else one document.
    Json,
    /// Text lines.
    Text,
    /// JSON when the input starts with `{` or `[`, else text lines.
    Auto,
    /// Not read.
    None,
}

/// One input format.
pub(crate) trait FormatDef: Sync {
    /// Stable snake_case name (in `analysis.json`, `--format`, the schema).
    fn name(&self) -> &'static str;
    /// Other names accepted by `--format` (lower case; `_` and `-` are the same).
    fn spellings(&self) -> &'static [&'static str] {
        &[]
    }
    /// The evidence kind its files hold (traces, policy, approvals, memory, egress, logs,
    /// deploy, cloud, cluster), or `None` when the content does not say (generic JSON).
    fn kind(&self) -> Option<&'static str>;
    /// One line for the help and the docs.
    fn what(&self) -> &'static str;
    /// Whether a head is this format.
    fn detect(&self, head: &Head<'_>) -> bool;
    /// How its input is delimited.
    fn layout(&self) -> LayoutPref {
        LayoutPref::Json
    }
    /// Reads one JSON value (a line or a document) into items.
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        generic::read_value(v, m, out);
    }
    /// Reads one text line; `None`: not a line of this format.
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        let _ = (line, m);
        None
    }
}

/// Every format, in detection priority: the first whose `detect` says yes wins. Specific
/// formats come before the general ones they would also match (an OPA decision log line is
/// JSON Lines too); `jsonl`, `json`, `text_log` and `opaque` come last.
pub(crate) static REGISTRY: [&dyn FormatDef; 39] = [
    &otlp::Otlp,
    &agents::RunState,
    &agents::Tracing,
    &llmops::LangSmith,
    &llmops::Langfuse,
    &claude::ClaudeTranscript,
    &logs::Temporal,
    &cloud::CloudTrail,
    &cloud::K8sAudit,
    &gcp::GcpAudit,
    &gcp::GcpLogging,
    &opa::Opa,
    &opa::Cerbos,
    &people::SlackActions,
    &people::BotActivity,
    &people::ServiceNow,
    &people::JiraApprovals,
    &logs::Datadog,
    &logs::CloudWatch,
    &logs::Loki,
    &memory::Mem0,
    &memory::VectorStore,
    &deploy::Argo,
    &deploy::CdPipeline,
    &deploy::GithubDeployments,
    &deploy::Spinnaker,
    &deploy::CloudDeploy,
    &proxy::Kong,
    &proxy::Traefik,
    &proxy::EnvoyJson,
    &people::Approvals,
    &proxy::EnvoyText,
    &proxy::IstioText,
    &proxy::Squid,
    &proxy::CombinedLog,
    &generic::Jsonl,
    &generic::Json,
    &logs::TextLog,
    &generic::Opaque,
];

/// A recognised input format (a handle into `REGISTRY`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Format(u8);

impl Format {
    pub(crate) fn def(self) -> &'static dyn FormatDef {
        REGISTRY.get(self.0 as usize).copied().unwrap_or(&generic::Opaque)
    }

    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        self.def().name()
    }

    /// The evidence kind its files hold, when the content says.
    pub fn kind(self) -> Option<&'static str> {
        self.def().kind()
    }

    /// Every format, in detection order.
    pub fn all() -> impl Iterator<Item = Format> {
        (0..REGISTRY.len()).map(|i| Format(i as u8))
    }

    /// A format by its name.
    pub fn named(name: &str) -> Option<Format> {
        Format::all().find(|f| f.name() == name)
    }

    /// Not read at all.
    pub fn is_opaque(self) -> bool {
        self.name() == "opaque"
    }

    pub(crate) fn of(def: &'static dyn FormatDef) -> Format {
        Format::all().find(|f| f.name() == def.name()).unwrap_or(Format(0))
    }

    /// The help text of `--format`: every name with its spellings and what it reads.
    pub fn help() -> String {
        let mut s = String::new();
        for f in Format::all() {
            let d = f.def();
            let sp = d.spellings();
            s.push_str(&format!(
                "{}{}: {}\n",
                d.name(),
                if sp.is_empty() { String::new() } else { format!(" ({})", sp.join(", ")) },
                d.what()
            ));
        }
        s
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Format::named(&s).ok_or_else(|| de::Error::custom(format!("unknown format `{s}`")))
    }
}

/// Error parsing a user-supplied format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{name}` (one of: {})", names_list())]
pub struct FormatParseError {
    /// The rejected input.
    pub name: String,
}

fn names_list() -> String {
    Format::all().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

impl FromStr for Format {
    type Err = FormatParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Format::all()
            .find(|f| f.name() == norm || f.def().spellings().iter().any(|sp| sp.replace('-', "_") == norm))
            .ok_or_else(|| FormatParseError { name: s.to_string() })
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

/// A text encoding other than UTF-8, recognised by its byte-order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Utf16 {
    Le,
    Be,
}

pub(crate) fn sniff_utf16(head: &[u8]) -> Option<Utf16> {
    if head.starts_with(&[0xff, 0xfe]) {
        Some(Utf16::Le)
    } else if head.starts_with(&[0xfe, 0xff]) {
        Some(Utf16::Be)
    } else {
        None
    }
}

/// UTF-16 (after its BOM) → UTF-8; unpaired surrogates become U+FFFD.
pub(crate) fn utf16_to_utf8(bytes: &[u8], enc: Utf16) -> Vec<u8> {
    let units = bytes.chunks_exact(2).map(|c| match enc {
        Utf16::Le => u16::from_le_bytes([c[0], c[1]]),
        Utf16::Be => u16::from_be_bytes([c[0], c[1]]),
    });
    let s: String = char::decode_utf16(units).map(|r| r.unwrap_or('\u{FFFD}')).collect();
    s.into_bytes()
}

/// How many decompressed bytes of a compressed head are examined.
const DETECT_DECOMPRESSED_HEAD: u64 = 64 * 1024;

/// Decompresses as much of a compressed head as possible (a partial stream is fine).
pub(crate) fn decompress_head(kind: Compression, head: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut read = |r: &mut dyn Read| {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
    };
    match kind {
        Compression::Gzip => read(&mut flate2::read::MultiGzDecoder::new(head).take(DETECT_DECOMPRESSED_HEAD)),
        Compression::Zstd => {
            if let Ok(d) = zstd::stream::read::Decoder::new(head) {
                read(&mut d.take(DETECT_DECOMPRESSED_HEAD));
            }
        }
    }
    out
}

/// What detection looks at.
pub(crate) struct Head<'a> {
    /// The file name (lower case, compression suffix removed).
    pub(crate) name: &'a str,
    /// The head as text (BOM removed; lossy).
    pub(crate) text: &'a str,
    /// The first text line.
    pub(crate) first_line: &'a str,
    /// The first complete JSON value: a line, or the whole head.
    pub(crate) first: Option<Keys>,
    /// The input starts with `[`.
    pub(crate) array: bool,
    /// The input starts with `{` or `[`.
    pub(crate) json: bool,
    /// The first line alone is a complete JSON value (JSON Lines, or a one-line document).
    pub(crate) line_complete: bool,
}

impl Head<'_> {
    /// The object detection looks at (a top-level object, or a top-level array's first
    /// element).
    pub(crate) fn obj(&self) -> Option<&Keys> {
        self.first.as_ref()
    }

    pub(crate) fn has(&self, k: &str) -> bool {
        self.obj().is_some_and(|o| o.has(k))
    }

    pub(crate) fn str_of(&self, k: &str) -> Option<&str> {
        self.obj().and_then(|o| o.str_of(k))
    }

    /// The keys of the first element of the array under `k`.
    pub(crate) fn inner(&self, k: &str) -> Option<&Keys> {
        self.obj().and_then(|o| o.inner(k))
    }

    /// The head text holds `"key"` (a pretty-printed document whose first value is not
    /// complete in the head).
    pub(crate) fn mentions(&self, key: &str) -> bool {
        self.text.contains(&format!("\"{key}\""))
    }
}

/// An object's top-level keys, the short string values among them, and the keys of the
/// first element of each array (or of each nested object).
#[derive(Debug, Default)]
pub(crate) struct Keys {
    keys: Vec<(String, Option<String>)>,
    inner: Vec<(String, Keys)>,
}

impl Keys {
    pub(crate) fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }
    pub(crate) fn str_of(&self, key: &str) -> Option<&str> {
        self.keys.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| v.as_deref())
    }
    pub(crate) fn inner(&self, key: &str) -> Option<&Keys> {
        self.inner.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }
}

/// Longest string value kept for detection.
const DETECT_STRING: usize = 128;

/// Deserialises the top of a JSON value into [`Keys`] (depth 0: the object itself; depth 1:
/// the first element of an array value, or a nested object), skipping everything else.
struct KeysSeed(u8);

impl<'de> de::DeserializeSeed<'de> for KeysSeed {
    type Value = Option<Keys>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Keys>, D::Error> {
        d.deserialize_any(KeysVisitor(self.0))
    }
}

struct KeysVisitor(u8);

impl<'de> Visitor<'de> for KeysVisitor {
    type Value = Option<Keys>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Keys>, A::Error> {
        let mut out = Keys::default();
        while let Some(k) = map.next_key::<String>()? {
            if self.0 == 0 {
                let v = map.next_value_seed(ValueTop)?;
                match v {
                    Top::Str(s) => out.keys.push((k, Some(s))),
                    Top::Nested(Some(inner)) => {
                        out.keys.push((k.clone(), None));
                        out.inner.push((k, inner));
                    }
                    _ => out.keys.push((k, None)),
                }
            } else {
                let s = map.next_value::<StrOrSkip>()?.0;
                out.keys.push((k, s));
            }
        }
        Ok(Some(out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Keys>, A::Error> {
        let first = seq.next_element_seed(KeysSeed(self.0))?.flatten();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(first)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Keys>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Keys>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Keys>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Keys>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Keys>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Keys>, E> {
        Ok(None)
    }
}

enum Top {
    Str(String),
    Nested(Option<Keys>),
    Other,
}

struct ValueTop;

impl<'de> de::DeserializeSeed<'de> for ValueTop {
    type Value = Top;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Top, E> {
                Ok(if v.len() <= DETECT_STRING { Top::Str(v.to_string()) } else { Top::Other })
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
                Ok(Top::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
                KeysVisitor(1).visit_map(map).map(Top::Nested)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top, A::Error> {
                KeysVisitor(1).visit_seq(seq).map(Top::Nested)
            }
        }
        d.deserialize_any(V)
    }
}

/// A short string value (kept) or anything else (skipped).
struct StrOrSkip(Option<String>);

impl<'de> Deserialize<'de> for StrOrSkip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(ValueTopFlat)? {
            Some(s) => Ok(StrOrSkip(Some(s))),
            None => Ok(StrOrSkip(None)),
        }
    }
}

struct ValueTopFlat;

impl<'de> Visitor<'de> for ValueTopFlat {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
        Ok((v.len() <= DETECT_STRING).then(|| v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The [`Keys`] of one complete JSON value.
fn keys_of(bytes: &[u8]) -> Option<Keys> {
    let mut d = serde_json::Deserializer::from_slice(bytes);
    de::DeserializeSeed::deserialize(KeysSeed(0), &mut d).ok().flatten()
}

fn strip_compression_suffix(name: &str) -> &str {
    for suffix in [".gz", ".gzip", ".zst", ".zstd"] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            return stripped;
        }
    }
    name
}

/// Detects the format of an input from its first bytes (16 KiB are plenty), the file name
/// only as a hint. Compressed heads are decompressed first; UTF-16 heads transcoded.
pub fn detect(name_hint: &str, head: &[u8]) -> Format {
    if let Some(kind) = sniff_compression(head) {
        let inner = decompress_head(kind, head);
        return detect(strip_compression_suffix(name_hint), &inner);
    }
    if let Some(enc) = sniff_utf16(head) {
        let inner = utf16_to_utf8(head.get(2..).unwrap_or_default(), enc);
        return detect_plain(name_hint, &inner);
    }
    detect_plain(name_hint, head)
}

fn detect_plain(name_hint: &str, head: &[u8]) -> Format {
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    let body = body.get(start..).unwrap_or_default();
    let lower = name_hint.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let sample = body.get(..body.len().min(4096)).unwrap_or_default();
    if memchr::memchr(0, sample).is_some() || looks_binary(sample) {
        return Format::of(&generic::Opaque);
    }
    let text = String::from_utf8_lossy(body);
    let first_line = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
    let json = matches!(body.first(), Some(b'{') | Some(b'['));
    // A container's log mixes a few text lines (the sidecar's own messages) with JSON access
    // log lines: when most lines are JSON objects, the format is that of the first of them
    // (the text lines are then reported, not the whole file read as text).
    if !json {
        if let Some(at) = mostly_json_lines(body) {
            let f = detect_plain(name_hint, body.get(at..).unwrap_or_default());
            if !f.is_opaque() && f.def().kind().is_some() {
                return f;
            }
        }
    }
    let array = body.first() == Some(&b'[');
    // The first complete value: the first line, else the next complete lines (JSON Lines
    // whose first line is bad), else the whole head (a small pretty-printed document).
    let first = if json {
        keys_of(first_line.as_bytes())
            .or_else(|| {
                (first_line.trim().len() > 1).then(|| {
                    text.split('\n').skip(1).take(50).find_map(|l| {
                        let l = l.trim();
                        (l.starts_with('{')).then(|| keys_of(l.as_bytes())).flatten()
                    })
                })?
            })
            .or_else(|| keys_of(body))
    } else {
        None
    };
    let line_complete =
        json && super::jsoncheck::looks_like_json_lines(body) || serde_json::from_str::<IgnoredAny>(first_line).is_ok();
    let h = Head { name, text: &text, first_line, first, array, json, line_complete };
    if body.is_empty() {
        return by_name_only(name);
    }
    Format::all().find(|f| f.def().detect(&h)).unwrap_or(Format::of(&generic::Opaque))
}

/// Where the first JSON-object line starts, when at least 4 in 5 of the head's first 50
/// complete non-blank lines are complete JSON objects.
fn mostly_json_lines(body: &[u8]) -> Option<usize> {
    let complete = body.get(..body.iter().rposition(|b| *b == b'\n')?)?;
    let (mut seen, mut json, mut first) = (0usize, 0usize, None);
    let mut at = 0usize;
    for raw in complete.split(|b| *b == b'\n') {
        let start = at;
        at += raw.len() + 1;
        let l = raw.trim_ascii();
        if l.is_empty() {
            continue;
        }
        seen += 1;
        if l.first() == Some(&b'{') && super::jsoncheck::is_valid_json(l) {
            json += 1;
            first.get_or_insert(start + raw.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0));
        }
        if seen == 50 {
            break;
        }
    }
    (json >= 2 && json * 5 >= seen * 4).then_some(first?)
}

/// Bytes that are not text: more than 1 in 32 control bytes (other than whitespace), or more
/// than 1 in 32 bytes in invalid UTF-8 sequences (a sequence cut by the head's end does not
/// count). A log with a few bad bytes in one line is text: its lines are read and the bad
/// line is reported, not the whole file dropped as binary.
fn looks_binary(sample: &[u8]) -> bool {
    let controls = sample.iter().filter(|b| b.is_ascii_control() && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c)).count();
    if controls * 32 > sample.len().max(1) {
        return true;
    }
    let mut invalid = 0usize;
    let mut rest = sample;
    while let Err(e) = std::str::from_utf8(rest) {
        let Some(n) = e.error_len() else { break };
        invalid += n;
        rest = rest.get(e.valid_up_to() + n..).unwrap_or_default();
    }
    invalid * 32 > sample.len().max(1)
}

fn by_name_only(name: &str) -> Format {
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Format::of(&generic::Jsonl)
    } else if name.ends_with(".json") {
        Format::of(&generic::Json)
    } else {
        Format::of(&logs::TextLog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_spellings_parse() {
        let mut names: Vec<&str> = Format::all().map(|f| f.name()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        for f in Format::all() {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            for sp in f.def().spellings() {
                assert_eq!(sp.parse::<Format>(), Ok(f), "{sp}");
            }
        }
        assert!("nope".parse::<Format>().is_err());
        assert!(Format::help().contains("otlp"));
    }

    #[test]
    fn detects_by_content_not_by_name() {
        let d = |name: &str, b: &[u8]| detect(name, b).name();
        assert_eq!(d("x.log", br#"[2016-04-15T20:17:00.310Z] "POST /api HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "ua" "id" "host" "tcp://10.0.2.1:80""#), "envoy_text");
        assert_eq!(d("a.log", b"1286536308.779    180 192.168.0.224 TCP_MISS/200 411 GET http://example.com/ - HIER_DIRECT/1.2.3.4 text/html\n"), "squid");
        assert_eq!(d("a.bin", b"\x00\x01\x02"), "opaque");
        // One line with two bad bytes among good ones is a text log, not binary.
        let mixed = b"{\"session_id\": \"s-1\", \"tool\": \"search_kb\", \"response\": {\"status\": 200}}\n{\"session_id\": \"\xff\xfe bad\"}\n{\"session_id\": \"s-1\", \"tool\": \"search_kb\"}\n";
        assert_eq!(d("x.jsonl", mixed), "jsonl");
        assert_eq!(
            d("x.bin", b"\x89PNG\r\n\x1a\n\xff\xd8\xff\xe0\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc"),
            "opaque"
        );
        assert_eq!(d("empty.jsonl", b""), "jsonl");
        assert_eq!(d("notes.txt", b"hello world\n"), "text_log");
        assert_eq!(d("o.jsonl", br#"{"resourceSpans":[]}"#), "otlp");
        assert_eq!(d("d.jsonl", b"{\"decision_id\":\"x\",\"path\":\"a\",\"result\":true}\n"), "opa");
        assert_eq!(
            d("a.jsonl", b"{\"type\": broken\n{\"approval_id\":\"apr-1\",\"decision\":\"approved\"}\n"),
            "approvals"
        );
        assert_eq!(
            d("ct.json", br#"{"Records":[{"eventVersion":"1.09","eventSource":"s3.amazonaws.com"}]}"#),
            "cloudtrail"
        );
        assert_eq!(
            d("x.json", "\u{feff}{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\"}".as_bytes()),
            "k8s_audit"
        );
    }
}
