//! Streaming scan of one input: decompression, layout choice (lines or one document),
//! bounded line reading, and dispatch to the format readers. Emits one [`Record`] per item.

use super::formats::{detect, sniff_compression, sniff_utf16, Compression, Format, Layout, LayoutPref, Utf16};
use super::item::Item;
use super::mapping::FieldMapping;
use super::reader::{ByteSource, Capped, LineEvent};
use super::types::{Problem, Record, ScanError};
use serde::Serialize;
use serde_json::Value;
use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

/// How much of the head is examined to choose the layout.
const LAYOUT_HEAD: usize = 64 * 1024;
/// How much of the head [`scan_auto`] reads for format detection.
const DETECT_HEAD: usize = 16 * 1024;

/// Resource limits of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Longest line parsed; longer lines are skipped and reported.
    pub max_line: usize,
    /// Largest single document parsed whole.
    pub max_document: usize,
    /// Most decompressed bytes scanned from one compressed input.
    pub max_decompressed: u64,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            max_line: 16 * 1024 * 1024,
            max_document: 256 * 1024 * 1024,
            max_decompressed: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// What a scan saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanSummary {
    /// Format scanned as.
    pub format: Format,
    /// How the input was delimited.
    pub layout: Layout,
    /// Compression the input was read through.
    pub compression: Option<Compression>,
    /// Bytes scanned (decompressed bytes for compressed input).
    pub bytes_scanned: u64,
    /// Lines seen (line layouts).
    pub lines: u64,
    /// Records emitted (including problem records).
    pub records: u64,
    /// Records that carry a problem.
    pub problems: u64,
    /// Whether a UTF-8 byte-order mark was skipped.
    pub bom: bool,
    /// Valid lines a [`LineFilter`] said were of no interest: validated, not parsed.
    pub filtered: u64,
    /// The input was UTF-16 (with a byte-order mark) and was read transcoded to UTF-8.
    pub utf16: bool,
}

/// Scans `input` as `format` with default limits, calling `on_record` for every item and
/// every problem. Compressed input (gzip, zstd) is decompressed transparently.
pub fn scan<R: Read>(
    format: Format,
    input: R,
    mapping: &FieldMapping,
    on_record: &mut dyn FnMut(Record),
) -> Result<ScanSummary, ScanError> {
    scan_with_limits(format, input, mapping, &ScanLimits::default(), on_record)
}

/// Detects the format from the head of `input` (unless `format_override` is given), then
/// scans it. The summary's `format` says which format was used.
pub fn scan_auto<R: Read>(
    name_hint: &str,
    format_override: Option<Format>,
    mut input: R,
    mapping: &FieldMapping,
    on_record: &mut dyn FnMut(Record),
) -> Result<ScanSummary, ScanError> {
    let head = read_prefix(&mut input, DETECT_HEAD)?;
    let format = format_override.unwrap_or_else(|| detect(name_hint, &head));
    scan(format, Cursor::new(head).chain(input), mapping, on_record)
}

fn read_prefix<R: Read>(input: &mut R, n: usize) -> Result<Vec<u8>, ScanError> {
    let mut head = Vec::with_capacity(n);
    let mut limited = input.take(n as u64);
    limited.read_to_end(&mut head).map_err(|source| ScanError::Io { offset: 0, source })?;
    Ok(head)
}

/// A cheap look at a line's raw bytes before it is parsed (see [`scan_filtered`]).
pub trait LineFilter {
    /// Whether the line may hold something of interest and must be parsed fully.
    fn wants(&mut self, line: &[u8]) -> bool;
    /// Whether an unwanted line is still checked (valid UTF-8, valid JSON or a recognised
    /// access-log line) so that its defects are reported: `true` on a first pass, `false`
    /// when re-reading an input whose problems were reported already.
    fn validate_unwanted(&self) -> bool {
        true
    }
    /// Whether a document (an input read as one JSON value) must be parsed into items. When
    /// not, it is only validated like an unwanted line (a defective document still takes the
    /// normal path and reports its problem). The default parses every document.
    fn wants_document(&mut self, _doc: &[u8]) -> bool {
        true
    }
}

/// The filter of a validate-only run: no line and no document is parsed into records; each is
/// validated, and a defective one takes the normal path so that its problem is reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateOnly;

impl LineFilter for ValidateOnly {
    fn wants(&mut self, _line: &[u8]) -> bool {
        false
    }
    fn wants_document(&mut self, _doc: &[u8]) -> bool {
        false
    }
}

/// Scans with explicit limits. See [`scan`].
pub fn scan_with_limits<R: Read>(
    format: Format,
    input: R,
    mapping: &FieldMapping,
    limits: &ScanLimits,
    on_record: &mut dyn FnMut(Record),
) -> Result<ScanSummary, ScanError> {
    scan_filtered(format, input, mapping, limits, None, on_record)
}

/// Like [`scan_with_limits`], with a line pre-filter: in line-delimited inputs, a line the
/// filter does not want is not parsed into items. On a first pass it is still validated
/// (cheaply, without building a JSON tree), and a defective line goes through the normal
/// path so that its problem is reported exactly as without the filter. Such skipped lines
/// are counted in [`ScanSummary::filtered`]. Documents (one value per input) are parsed unless
/// the filter's [`LineFilter::wants_document`] says otherwise (then they are validated the same
/// way).
pub fn scan_filtered<R: Read>(
    format: Format,
    mut input: R,
    mapping: &FieldMapping,
    limits: &ScanLimits,
    filter: Option<&mut dyn LineFilter>,
    on_record: &mut dyn FnMut(Record),
) -> Result<ScanSummary, ScanError> {
    let mut summary = ScanSummary {
        format,
        layout: Layout::None,
        compression: None,
        bytes_scanned: 0,
        lines: 0,
        records: 0,
        problems: 0,
        bom: false,
        filtered: 0,
        utf16: false,
    };
    if format.def().layout() == LayoutPref::None {
        return Ok(summary);
    }
    let prefix = read_prefix(&mut input, 4)?;
    let compression = sniff_compression(&prefix);
    summary.compression = compression;
    let raw = Cursor::new(prefix).chain(input);
    let cap_hit = Rc::new(Cell::new(false));
    let reader: Box<dyn Read + '_> = match compression {
        None => Box::new(raw),
        Some(Compression::Gzip) => Box::new(CapFlag::new(
            Capped::new(flate2::read::MultiGzDecoder::new(raw), limits.max_decompressed),
            Rc::clone(&cap_hit),
        )),
        Some(Compression::Zstd) => {
            let dec = zstd::stream::read::Decoder::new(raw).map_err(|source| ScanError::Io { offset: 0, source })?;
            Box::new(CapFlag::new(Capped::new(dec, limits.max_decompressed), Rc::clone(&cap_hit)))
        }
    };
    // UTF-16 (recognised by its byte-order mark) is read transcoded to UTF-8: offsets are then
    // positions in the transcoded stream, as for a decompressed one.
    let mut reader = reader;
    let mut head = [0u8; 2];
    let got = read_up_to(&mut reader, &mut head).map_err(|source| ScanError::Io { offset: 0, source })?;
    let head = head.get(..got).unwrap_or_default().to_vec();
    let enc = sniff_utf16(&head);
    let reader: Box<dyn Read + '_> = match enc {
        Some(e) => Box::new(Utf16Reader::new(reader, e)),
        None => Box::new(Cursor::new(head).chain(reader)),
    };
    summary.utf16 = enc.is_some();
    let mut ctx = Ctx {
        format,
        mapping,
        limits,
        decompressed: compression.is_some() || enc.is_some(),
        summary: &mut summary,
        on_record,
        filter,
    };
    let mut src = ByteSource::new(reader);
    if src.peek(3) == b"\xEF\xBB\xBF" {
        src.skip_buffered(3);
        ctx.summary.bom = true;
    }
    let layout = choose_layout(format, &mut src);
    ctx.summary.layout = layout;
    match layout {
        Layout::Document => scan_document(&mut ctx, &mut src),
        Layout::Lines | Layout::Text => scan_lines(&mut ctx, &mut src, 0),
        Layout::None => {}
    }
    let end = src.offset();
    ctx.summary.bytes_scanned = end;
    if let Some(err) = src.error.take() {
        if !ctx.decompressed {
            return Err(ScanError::Io { offset: end, source: err });
        }
        let problem = if err.kind() == io::ErrorKind::UnexpectedEof {
            Problem::Truncated { detail: format!("compressed stream ends early: {err}") }
        } else {
            Problem::DecompressionFailed { message: err.to_string() }
        };
        ctx.problem(end, 0, None, problem);
    }
    drop(src);
    if cap_hit.get() {
        let limit = limits.max_decompressed;
        ctx.problem(end, 0, None, Problem::DecompressedLimit { limit });
    }
    Ok(summary)
}

/// Forwards reads and publishes the cap flag of a [`Capped`] reader.
struct CapFlag<R> {
    inner: Capped<R>,
    flag: Rc<Cell<bool>>,
}

impl<R: Read> CapFlag<R> {
    fn new(inner: Capped<R>, flag: Rc<Cell<bool>>) -> Self {
        CapFlag { inner, flag }
    }
}

impl<R: Read> Read for CapFlag<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.inner.hit {
            self.flag.set(true);
        }
        Ok(n)
    }
}

struct Ctx<'a, 'm, 'f> {
    format: Format,
    mapping: &'m FieldMapping,
    limits: &'m ScanLimits,
    decompressed: bool,
    summary: &'a mut ScanSummary,
    on_record: &'a mut dyn FnMut(Record),
    filter: Option<&'f mut dyn LineFilter>,
}

impl Ctx<'_, '_, '_> {
    fn problem(&mut self, offset: u64, len: u64, line: Option<u64>, problem: Problem) {
        let mut r = Record::new(offset, len, line, self.decompressed);
        r.problem = Some(problem);
        self.summary.records += 1;
        self.summary.problems += 1;
        (self.on_record)(r);
    }

    fn items(&mut self, offset: u64, len: u64, line: Option<u64>, items: Vec<Item>) {
        if items.is_empty() {
            self.summary.records += 1;
            (self.on_record)(Record::new(offset, len, line, self.decompressed));
            return;
        }
        for (i, it) in items.into_iter().enumerate() {
            let mut r = Record::new(offset, len, line, self.decompressed);
            r.item = u32::try_from(i).unwrap_or(u32::MAX);
            r.data = it;
            self.summary.records += 1;
            (self.on_record)(r);
        }
    }

    /// Parses one JSON text (a line or a document) and emits its items or its problem.
    fn json(&mut self, bytes: &[u8], offset: u64, len: u64, line: Option<u64>) {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid_up_to = e.valid_up_to() as u64;
                self.problem(offset, len, line, Problem::InvalidUtf8 { valid_up_to });
                return;
            }
        };
        match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                let mut items = Vec::new();
                self.format.def().read_json(&v, self.mapping, &mut items);
                self.items(offset, len, line, items);
            }
            Err(e) => {
                let problem = if e.is_eof() {
                    Problem::Truncated { detail: format!("JSON value cut short: {e}") }
                } else {
                    Problem::MalformedJson { message: e.to_string() }
                };
                self.problem(offset, len, line, problem);
            }
        }
    }

    /// Handles one text access-log line.
    fn text_line(&mut self, bytes: &[u8], offset: u64, len: u64, line: Option<u64>) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            let valid_up_to = std::str::from_utf8(bytes).err().map(|e| e.valid_up_to() as u64).unwrap_or(0);
            self.problem(offset, len, line, Problem::InvalidUtf8 { valid_up_to });
            return;
        };
        match self.format.def().read_text(text, self.mapping) {
            Some(it) => self.items(offset, len, line, vec![it]),
            // The proxy's own log among its access lines (`kubectl logs` of an Istio gateway
            // mixes both): a valid line of another kind, describing no request.
            None if component_log_line(text) => {}
            None => self.problem(offset, len, line, Problem::UnrecognisedLine),
        }
    }
}

/// An Istio/Envoy (or any Go/C++ service's) component log line: an RFC 3339 time, a tab, a
/// level, a tab (`2026-12-14T17:30:02.118227Z\tinfo\txdsproxy\tconnected to …`), or Envoy's
/// `[2026-12-14 17:30:02.118][12][info][config] …`.
pub(crate) fn component_log_line(text: &str) -> bool {
    const LEVELS: [&str; 8] = ["trace", "debug", "info", "warn", "warning", "error", "critical", "fatal"];
    let mut parts = text.splitn(3, '\t');
    if let (Some(time), Some(level), Some(_)) = (parts.next(), parts.next(), parts.next()) {
        return super::values::Time::parse(time).is_some()
            && LEVELS.contains(&level.trim().to_ascii_lowercase().as_str());
    }
    let Some(rest) = text.strip_prefix('[') else { return false };
    let Some((time, rest)) = rest.split_once(']') else { return false };
    super::values::Time::parse(time).is_some()
        && rest
            .split(['[', ']'])
            .filter(|x| !x.is_empty())
            .take(3)
            .any(|w| LEVELS.contains(&w.to_ascii_lowercase().as_str()))
}

/// Lines or one document, from the format and the head of the content.
fn choose_layout<R: Read>(format: Format, src: &mut ByteSource<R>) -> Layout {
    let pref = format.def().layout();
    match pref {
        LayoutPref::None => return Layout::None,
        LayoutPref::Text => return Layout::Text,
        LayoutPref::Json | LayoutPref::Auto => {}
    }
    let head = src.peek(LAYOUT_HEAD);
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let body = head.get(start..).unwrap_or_default();
    if pref == LayoutPref::Auto && !matches!(body.first(), Some(b'{') | Some(b'[') | None) {
        return Layout::Text;
    }
    match body.first() {
        None => return Layout::Lines,
        Some(b'[') => return Layout::Document,
        _ => {}
    }
    match body.iter().position(|b| *b == b'\n') {
        Some(_) => {
            if super::jsoncheck::looks_like_json_lines(body) {
                Layout::Lines
            } else {
                Layout::Document
            }
        }
        None if head.len() < LAYOUT_HEAD => Layout::Lines, // whole input is one line
        None => Layout::Document,
    }
}

fn scan_lines<R: Read>(ctx: &mut Ctx<'_, '_, '_>, src: &mut ByteSource<R>, base: u64) {
    let text = ctx.summary.layout == Layout::Text;
    let max = ctx.limits.max_line;
    loop {
        match src.next_line(max) {
            LineEvent::Eof => break,
            LineEvent::TooLong { offset, len } => {
                ctx.summary.lines += 1;
                let line = Some(ctx.summary.lines);
                let problem = Problem::LineTooLong { len, limit: max as u64 };
                ctx.problem(base + offset, len, line, problem);
            }
            LineEvent::Line { offset } => {
                ctx.summary.lines += 1;
                let line = Some(ctx.summary.lines);
                let bytes = src.line_bytes();
                // Trim surrounding whitespace but keep offsets exact.
                let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
                    continue;
                };
                let last = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).unwrap_or(first);
                let trimmed = bytes.get(first..=last).unwrap_or_default();
                let off = base + offset + first as u64;
                let tlen = trimmed.len() as u64;
                // In a text file a line starting `{` is JSON only if it is a complete value: a
                // YAML flow mapping or a JSON example cut across lines is text, not a defect.
                let is_text = text
                    && (trimmed.first() != Some(&b'{')
                        || !(super::jsoncheck::is_valid_json(trimmed)
                            || serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok()));
                if let Some(f) = ctx.filter.as_deref_mut() {
                    if !f.wants(trimmed)
                        && (!f.validate_unwanted() || line_is_clean(ctx.format, ctx.mapping, is_text, trimmed))
                    {
                        ctx.summary.filtered += 1;
                        continue;
                    }
                }
                if is_text {
                    ctx.text_line(trimmed, off, tlen, line);
                } else {
                    ctx.json(trimmed, off, tlen, line);
                }
            }
        }
    }
}

/// Whether a line would be read without a problem: valid UTF-8 and valid JSON (checked
/// byte by byte, without building a tree: [`super::jsoncheck::is_valid_json`]), or a text
/// line its format recognises. A `false` only sends the line down the exact path, which
/// reports its problem (or parses it, when the quick check was merely conservative).
fn line_is_clean(format: Format, mapping: &FieldMapping, is_text: bool, line: &[u8]) -> bool {
    if is_text {
        return match std::str::from_utf8(line) {
            Ok(t) => format.name() == "text_log" || format.def().read_text(t, mapping).is_some(),
            Err(_) => false,
        };
    }
    super::jsoncheck::is_valid_json(line)
}

fn scan_document<R: Read>(ctx: &mut Ctx<'_, '_, '_>, src: &mut ByteSource<R>) {
    let start = src.offset();
    match src.read_all(ctx.limits.max_document) {
        Err(total) => {
            let limit = ctx.limits.max_document as u64;
            ctx.problem(start, total, None, Problem::DocumentTooLarge { limit });
        }
        Ok(bytes) => {
            let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            let last = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).unwrap_or(first);
            let doc = bytes.get(first..=last).unwrap_or_default();
            let off = start + first as u64;
            // Several concatenated values (JSON Lines that looked like a document)?
            let single = serde_json::from_slice::<serde::de::IgnoredAny>(doc);
            match single {
                Err(e) if e.to_string().starts_with("trailing characters") || some_line_parses(doc) => {
                    ctx.summary.layout = Layout::Lines;
                    let mut inner = ByteSource::new(&bytes[..]);
                    scan_lines(ctx, &mut inner, start);
                }
                _ => {
                    if let Some(f) = ctx.filter.as_deref_mut() {
                        if !f.wants_document(doc) && line_is_clean(ctx.format, ctx.mapping, false, doc) {
                            ctx.summary.filtered += 1;
                            return;
                        }
                    }
                    ctx.json(doc, off, doc.len() as u64, None)
                }
            }
        }
    }
}

/// Whether any of the first lines of `doc` is a complete JSON object or array on its own:
/// then an unparsable "document" is really JSON Lines with a bad line, and is re-read line
/// by line so that one bad line does not hide the others.
fn some_line_parses(doc: &[u8]) -> bool {
    doc.split(|b| *b == b'\n').map(|l| l.trim_ascii()).filter(|l| l.len() > 1).take(100).any(|l| {
        matches!(l.first(), Some(b'{') | Some(b'[')) && serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok()
    })
}

/// Reads up to `buf.len()` bytes (fewer only at the end of input).
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// UTF-16 (after its byte-order mark, already consumed) → UTF-8, streaming. An unpaired
/// surrogate becomes U+FFFD; an odd final byte is dropped (and reported by nothing else:
/// the line it ends is read as written so far).
struct Utf16Reader<R> {
    inner: R,
    enc: Utf16,
    out: Vec<u8>,
    pos: usize,
    pending: Option<u16>,
    eof: bool,
}

impl<R: Read> Utf16Reader<R> {
    fn new(inner: R, enc: Utf16) -> Self {
        Utf16Reader { inner, enc, out: Vec::new(), pos: 0, pending: None, eof: false }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut raw = [0u8; 16 * 1024];
        let n = read_up_to(&mut self.inner, &mut raw)?;
        if n == 0 {
            self.eof = true;
            if self.pending.take().is_some() {
                self.out.extend_from_slice("\u{FFFD}".as_bytes());
            }
            return Ok(());
        }
        let units = raw.get(..n - n % 2).unwrap_or_default().chunks_exact(2).map(|c| match self.enc {
            Utf16::Le => u16::from_le_bytes([c[0], c[1]]),
            Utf16::Be => u16::from_be_bytes([c[0], c[1]]),
        });
        let mut all: Vec<u16> = self.pending.take().into_iter().collect();
        all.extend(units);
        // A high surrogate at the end waits for its pair.
        if all.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
            self.pending = all.pop();
        }
        for c in char::decode_utf16(all) {
            let mut b = [0u8; 4];
            self.out.extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf8(&mut b).as_bytes());
        }
        Ok(())
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if self.eof {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            self.fill()?;
        }
        let avail = self.out.get(self.pos..).unwrap_or_default();
        let n = avail.len().min(buf.len());
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(avail.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}
