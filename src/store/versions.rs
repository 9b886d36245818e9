//! A versioned store read as it was written: each key at its **first version**.
//!
//! S3 Object Lock stops anyone from deleting or changing a *version*; it does not stop a
//! `PutObject` of a new version over the same key, nor a `DeleteObject` without a version id,
//! which puts a *delete marker* over the key. A reader that takes the current version of each
//! key would then verify whatever was put last, or miss what a marker hides. custody writes every
//! object create-only, so in a versioned bucket the first (oldest) version of a key is the one
//! custody wrote: the store is read from its version history (`ListObjectVersions`), every key
//! at its first version ([`ReadAt::Version`]), and every later version or delete marker is kept
//! for the verifier to report ([`KeyHistory`]).
//!
//! Order: S3 lists the versions of a key newest first (AWS interleaves delete markers in that
//! order; moto lists them after the versions of a page), and its times have whole seconds, so
//! the first version is the **last `Version` element of its key** in the listing, whatever the
//! times say; delete markers are never a key's content, and are reported wherever they are.
//! A key that holds only delete markers has no content ([`ReadAt::NoVersion`]).
//!
//! Memory is bounded by real cost: each page is at most [`MAX_ANSWER`] bytes and must be a
//! complete `ListVersionsResult`; per key only its first version, the number of later versions
//! and markers, and the newest [`SAMPLE`] of each are kept, so a key with a million versions
//! costs what a key with two does; keys the caller does not need (junk, see [`super::raw`]) are
//! kept up to a bound and counted beyond it. Pagination must advance and stops after
//! [`super::raw::MAX_PAGES`] pages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::lock::{xml_tag, LockError, S3Admin, MAX_ANSWER};
use super::raw::{percent_decode, xml_unescape, MAX_PAGES};

/// How many later versions and delete markers of one key are kept to be named (the rest are
/// counted).
pub const SAMPLE: usize = 8;

/// How many keys a caller does not need (junk) a listing keeps by name; beyond, they are counted.
pub const MAX_OTHER_KEYS: usize = 1000;

/// Longest version id accepted (AWS's are 32 characters; "null" for the null version).
const MAX_VERSION_ID: usize = 1024;

/// Longest key accepted from a listing, after decoding (S3 allows 1024 bytes).
const MAX_KEY: usize = 4096;

/// Which bytes of a key a reader takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAt {
    /// The current object (a store without versions).
    Current,
    /// This version: the key's first.
    Version(String),
    /// The key holds only delete markers: there is no version to read.
    NoVersion,
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its version id.
    pub id: String,
    /// When it was written (whole seconds; the epoch when the server sent none readable).
    pub modified: DateTime<Utc>,
    /// Its size in bytes.
    pub size: u64,
}

/// What a key's history holds beyond the version custody wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHistory {
    /// The key, relative to the store, exactly as listed.
    pub key: String,
    /// The first version (`None`: only delete markers).
    pub first: Option<VersionRecord>,
    /// How many versions were written over the first.
    pub later_count: u64,
    /// The newest of them (at most [`SAMPLE`]), newest first.
    pub later: Vec<VersionRecord>,
    /// How many delete markers the key holds.
    pub marker_count: u64,
    /// The first [`SAMPLE`] of them as listed (size 0).
    pub markers: Vec<VersionRecord>,
    /// The key's current version is a delete marker: readers that do not list versions see
    /// no object.
    pub hidden: bool,
}

impl KeyHistory {
    /// Nothing beyond the first version.
    pub fn is_clean(&self) -> bool {
        self.later_count == 0 && self.marker_count == 0
    }
}

/// One key as a reader takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The key, relative to the store, exactly as listed.
    pub key: String,
    /// Size of what is read (0 when there is no version).
    pub size: u64,
    /// When what is read was written.
    pub modified: DateTime<Utc>,
    /// Which bytes to read.
    pub at: ReadAt,
    /// Later versions and delete markers, when the key has any.
    pub history: Option<Box<KeyHistory>>,
}

/// The keys under a prefix, each as a reader takes it, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectListing {
    /// The objects.
    pub objects: Vec<StoredObject>,
    /// Keys the caller did not need, beyond [`MAX_OTHER_KEYS`]: counted, not listed.
    pub not_listed: u64,
    /// Read from the version history (`false`: current objects only).
    pub versioned: bool,
}

/// One `<Version>` or `<DeleteMarker>` of a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub key: String,
    pub version: VersionRecord,
    pub marker: bool,
    pub latest: bool,
}

/// One page of `ListObjectVersions`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Page {
    pub elements: Vec<Element>,
    /// `(NextKeyMarker, NextVersionIdMarker)` when the listing goes on.
    pub next: Option<(String, Option<String>)>,
}

/// Parse one `ListObjectVersions` page. Keys are percent-decoded only when the answer says
/// `<EncodingType>url</EncodingType>` (AWS does; moto 5 sends keys raw and does not say so:
/// decoding those would turn a junk key `…01%2Ejson` into a valid entry key).
pub(crate) fn parse_page(text: &str) -> Result<Page, String> {
    let body = text.trim_end();
    if !body.ends_with("</ListVersionsResult>") {
        return Err("it does not end with </ListVersionsResult>: cut short".into());
    }
    // The page's own fields come before or after the elements; read them outside the elements
    // so a key cannot fake them.
    let mut outside = String::new();
    let mut elements = Vec::new();
    let mut rest = body;
    loop {
        let v = rest.find("<Version>");
        let d = rest.find("<DeleteMarker>");
        let (start, tag, marker) = match (v, d) {
            (Some(v), Some(d)) if d < v => (d, "DeleteMarker", true),
            (Some(v), _) => (v, "Version", false),
            (None, Some(d)) => (d, "DeleteMarker", true),
            (None, None) => break,
        };
        outside.push_str(&rest[..start]);
        let open = tag.len() + 2;
        let close = format!("</{tag}>");
        let inner_start = start + open;
        let Some(len) = rest[inner_start..].find(&close) else {
            return Err(format!("a <{tag}> element is not closed"));
        };
        elements.push((&rest[inner_start..inner_start + len], marker));
        rest = &rest[inner_start + len + close.len()..];
    }
    outside.push_str(rest);
    let encoded = xml_tag(&outside, "EncodingType") == Some("url");
    let decode = |s: &str| {
        let s = xml_unescape(s);
        if encoded {
            percent_decode(&s, true)
        } else {
            s
        }
    };
    let mut page = Page::default();
    for (inner, marker) in elements {
        let Some(key) = xml_tag(inner, "Key") else { return Err("an element without a <Key>".into()) };
        let key = decode(key);
        if key.len() > MAX_KEY {
            return Err(format!("a key of {} bytes (S3 allows 1024)", key.len()));
        }
        let Some(id) = xml_tag(inner, "VersionId").map(xml_unescape) else {
            return Err("an element without a <VersionId>".into());
        };
        if id.is_empty() || id.len() > MAX_VERSION_ID {
            return Err(format!("a version id of {} bytes", id.len()));
        }
        let modified = xml_tag(inner, "LastModified")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let size = if marker { 0 } else { xml_tag(inner, "Size").and_then(|s| s.parse().ok()).unwrap_or(0) };
        let latest = xml_tag(inner, "IsLatest") == Some("true");
        page.elements.push(Element { key, version: VersionRecord { id, modified, size }, marker, latest });
    }
    if xml_tag(&outside, "IsTruncated") == Some("true") {
        let Some(k) = xml_tag(&outside, "NextKeyMarker").map(decode).filter(|k| !k.is_empty()) else {
            return Err("truncated, but no <NextKeyMarker> to go on from".into());
        };
        let v = xml_tag(&outside, "NextVersionIdMarker").map(xml_unescape).filter(|v| !v.is_empty());
        page.next = Some((k, v));
    }
    Ok(page)
}

/// A key's history as it is listed, newest first.
#[derive(Debug, Default)]
struct Acc {
    first: Option<VersionRecord>,
    later_count: u64,
    later: Vec<VersionRecord>,
    marker_count: u64,
    markers: Vec<VersionRecord>,
    hidden: bool,
}

impl Acc {
    fn add(&mut self, e: Element) {
        if e.marker {
            self.marker_count = self.marker_count.saturating_add(1);
            self.hidden |= e.latest;
            if self.markers.len() < SAMPLE {
                self.markers.push(e.version);
            }
        } else if let Some(newer) = self.first.replace(e.version) {
            // Versions come newest first: the one before this is a later version.
            self.later_count = self.later_count.saturating_add(1);
            if self.later.len() < SAMPLE {
                self.later.push(newer);
            }
        }
    }

    fn into_object(self, key: String) -> StoredObject {
        let (at, size, modified) = match &self.first {
            Some(v) => (ReadAt::Version(v.id.clone()), v.size, v.modified),
            None => (ReadAt::NoVersion, 0, self.markers.first().map(|m| m.modified).unwrap_or_default()),
        };
        let history = (self.later_count > 0 || self.marker_count > 0).then(|| {
            Box::new(KeyHistory {
                key: key.clone(),
                first: self.first,
                later_count: self.later_count,
                later: self.later,
                marker_count: self.marker_count,
                markers: self.markers,
                hidden: self.hidden,
            })
        });
        StoredObject { key, size, modified, at, history }
    }
}

/// Folds listing pages into one [`ObjectListing`].
pub(crate) struct Collector<'a> {
    keys: BTreeMap<String, Acc>,
    wanted: &'a (dyn Fn(&str) -> bool + Sync),
    others: usize,
    not_listed: u64,
    last_dropped: Option<String>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(wanted: &'a (dyn Fn(&str) -> bool + Sync)) -> Self {
        Collector { keys: BTreeMap::new(), wanted, others: 0, not_listed: 0, last_dropped: None }
    }

    /// Add one element, its key relative to the store.
    pub(crate) fn add(&mut self, key: String, e: Element) {
        if let Some(acc) = self.keys.get_mut(&key) {
            acc.add(e);
            return;
        }
        if !(self.wanted)(&key) {
            if self.others >= MAX_OTHER_KEYS {
                if self.last_dropped.as_deref() != Some(key.as_str()) {
                    self.not_listed = self.not_listed.saturating_add(1);
                    self.last_dropped = Some(key);
                }
                return;
            }
            self.others += 1;
        }
        let mut acc = Acc::default();
        acc.add(e);
        self.keys.insert(key, acc);
    }

    pub(crate) fn finish(self, versioned: bool) -> ObjectListing {
        let objects = self.keys.into_iter().map(|(k, acc)| acc.into_object(k)).collect();
        ObjectListing { objects, not_listed: self.not_listed, versioned }
    }
}

impl S3Admin {
    /// Every key under `prefix` (store-relative) from its version history
    /// (`ListObjectVersions`, `encoding-type=url`), sorted by key; keys for which `wanted` is
    /// false are kept up to [`MAX_OTHER_KEYS`] and counted beyond. With `exact`, only the key
    /// `prefix` itself.
    pub async fn list_versions(
        &self,
        prefix: &str,
        exact: bool,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<ObjectListing, LockError> {
        const OP: &str = "GET ?versions";
        let full = self.full_key(prefix);
        let mut c = Collector::new(wanted);
        let mut next: Option<(String, Option<String>)> = None;
        for _ in 0..MAX_PAGES {
            let mut q = format!("versions&encoding-type=url&prefix={}", super::address::encode_query(&full));
            if let Some((k, v)) = &next {
                q.push_str(&format!("&key-marker={}", super::address::encode_query(k)));
                if let Some(v) = v {
                    q.push_str(&format!("&version-id-marker={}", super::address::encode_query(v)));
                }
            }
            let url = self.url_for(None, Some(&q))?;
            let (status, _, body) = self.send_limited(OP, url.clone(), MAX_ANSWER).await?;
            if status == 403 {
                return Err(LockError::Denied {
                    op: OP,
                    url: url.to_string(),
                    why: "custody reads a versioned bucket from its version history, every key at its first version; grant s3:ListBucketVersions (and s3:GetObjectVersion) to this role (docs/storage.md)",
                });
            }
            if status != 200 {
                return Err(Self::unexpected(OP, &url, status, &body));
            }
            let text = String::from_utf8_lossy(&body);
            let page = parse_page(&text).map_err(|why| LockError::Malformed { op: OP, url: url.to_string(), why })?;
            for e in page.elements {
                let Some(rel) = self.relative(&e.key) else { continue };
                if exact && rel != prefix {
                    continue;
                }
                let rel = rel.to_string();
                c.add(rel, e);
            }
            match page.next {
                None => return Ok(c.finish(true)),
                Some(n) if Some(&n) == next.as_ref() => {
                    return Err(LockError::Malformed {
                        op: OP,
                        url: url.to_string(),
                        why: "the listing does not advance (the same next marker twice)".into(),
                    })
                }
                Some(n) => next = Some(n),
            }
        }
        Err(LockError::Malformed { op: OP, url: full, why: format!("more than {MAX_PAGES} pages") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(elements: &str, tail: &str) -> String {
        format!("<?xml version=\"1.0\"?><ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated>{elements}{tail}</ListVersionsResult>")
    }

    fn v(key: &str, id: &str, latest: bool) -> String {
        format!("<Version><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>{latest}</IsLatest><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>7</Size></Version>")
    }

    fn m(key: &str, id: &str, latest: bool) -> String {
        format!("<DeleteMarker><Key>{key}</Key><VersionId>{id}</VersionId><IsLatest>{latest}</IsLatest><LastModified>2026-01-02T00:00:00.000Z</LastModified></DeleteMarker>")
    }

    fn collect(text: &str) -> ObjectListing {
        let all = |_: &str| true;
        let mut c = Collector::new(&all);
        for e in parse_page(text).unwrap().elements {
            c.add(e.key.clone(), e);
        }
        c.finish(true)
    }

    #[test]
    fn the_first_version_is_the_last_listed_whatever_the_markers_and_times() {
        // moto lists delete markers after the versions of a page; AWS interleaves them.
        let text =
            page(&[v("a", "v3", false), v("a", "v2", false), v("a", "v1", false), m("a", "d1", true)].concat(), "");
        let l = collect(&text);
        assert_eq!(l.objects.len(), 1);
        let o = &l.objects[0];
        assert_eq!(o.at, ReadAt::Version("v1".into()));
        let h = o.history.as_ref().unwrap();
        assert_eq!((h.later_count, h.marker_count, h.hidden), (2, 1, true));
        assert_eq!(h.later.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["v3", "v2"]);
        let text = page(&[m("b", "d1", true), v("b", "v2", false), v("b", "v1", false)].concat(), "");
        assert_eq!(collect(&text).objects[0].at, ReadAt::Version("v1".into()));
        // Only markers: nothing to read.
        let l = collect(&page(&m("c", "d1", true), ""));
        assert_eq!(l.objects[0].at, ReadAt::NoVersion);
        // One version, nothing else: clean.
        let l = collect(&page(&v("d", "only", true), ""));
        assert_eq!((l.objects[0].at.clone(), l.objects[0].history.is_none()), (ReadAt::Version("only".into()), true));
    }

    #[test]
    fn a_million_versions_of_one_key_cost_what_a_few_do() {
        let all = |_: &str| true;
        let mut c = Collector::new(&all);
        for i in (0..1_000_000u32).rev() {
            let e = Element {
                key: "k".into(),
                version: VersionRecord { id: format!("v{i}"), modified: DateTime::default(), size: 1 },
                marker: false,
                latest: i == 999_999,
            };
            c.add("k".into(), e);
        }
        let l = c.finish(true);
        let h = l.objects[0].history.as_ref().unwrap();
        assert_eq!(l.objects[0].at, ReadAt::Version("v0".into()));
        assert_eq!(h.later_count, 999_999);
        assert_eq!(h.later.len(), SAMPLE);
    }

    #[test]
    fn junk_keys_beyond_the_bound_are_counted_not_kept() {
        let wanted = |k: &str| k.starts_with("ledger/");
        let mut c = Collector::new(&wanted);
        for i in 0..(MAX_OTHER_KEYS + 500) {
            for j in 0..3 {
                let e = Element {
                    key: String::new(),
                    version: VersionRecord { id: format!("v{j}"), modified: DateTime::default(), size: 1 },
                    marker: false,
                    latest: j == 0,
                };
                c.add(format!("junk/{i:06}"), e);
            }
        }
        let e = Element {
            key: String::new(),
            version: VersionRecord { id: "x".into(), modified: DateTime::default(), size: 1 },
            marker: false,
            latest: true,
        };
        c.add("ledger/00000000000000000001.json".into(), e);
        let l = c.finish(true);
        assert_eq!(l.objects.len(), MAX_OTHER_KEYS + 1);
        assert_eq!(l.not_listed, 500);
    }

    #[test]
    fn keys_are_decoded_only_when_the_answer_says_they_are_encoded() {
        let raw = page(&v("ledger/00000000000000000001%2Ejson", "v1", true), "");
        assert_eq!(parse_page(&raw).unwrap().elements[0].key, "ledger/00000000000000000001%2Ejson");
        let enc = page(&v("ledger/x%1B%5B2J+y", "v1", true), "<EncodingType>url</EncodingType>");
        assert_eq!(parse_page(&enc).unwrap().elements[0].key, "ledger/x\u{1b}[2J y");
        // A key cannot fake the page's own fields.
        let fake = page(&v("<IsTruncated>true</IsTruncated>", "v1", true), "");
        assert!(parse_page(&fake).is_err() || parse_page(&fake).unwrap().next.is_none());
    }

    #[test]
    fn cut_short_or_hostile_pages_are_refused() {
        let full = page(&v("a", "v1", true), "");
        assert!(parse_page(&full[..full.len() - 10]).is_err(), "a page cut short");
        assert!(parse_page(&page("<Version><Key>a</Key><VersionId>v", "")).is_err(), "an element not closed");
        assert!(parse_page(&page(&v("a", &"x".repeat(2000), true), "")).is_err(), "a huge version id");
        assert!(parse_page(&page(&v(&"k".repeat(5000), "v", true), "")).is_err(), "a huge key");
        let t = page("", "").replace("<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>");
        assert!(parse_page(&t).is_err(), "truncated without a marker");
        let t = page("", "<NextKeyMarker>a</NextKeyMarker><NextVersionIdMarker>v1</NextVersionIdMarker>")
            .replace("<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>");
        assert_eq!(parse_page(&t).unwrap().next, Some(("a".into(), Some("v1".into()))));
    }
}
