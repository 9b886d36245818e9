//! Listing a store with its raw keys.
//!
//! `object_store` turns every listed key into a `Path` and fails the whole listing on one key
//! it cannot parse (`ledger//x`, `ledger/..`, a control character): one junk object, locked
//! under a bucket's default retention, would then block `preserve`, `verify` and `list` until
//! its retention ends. Listings here are signed requests of their own that return every key as
//! the server sent it; what is not a valid entry or bundle key is the caller's finding, never
//! an error. S3 keys are asked for with `encoding-type=url`, so no byte of a key is lost in
//! the XML.

use chrono::{DateTime, Utc};
use object_store::azure::{AzureAuthorizer, AzureCredentialProvider};
use object_store::client::{HttpClient, HttpRequest, HttpRequestBody};

use super::lock::{xml_tag, LockError, S3Admin, MAX_ANSWER};

/// One listed object, key relative to the store's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key, exactly as stored (may hold anything).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time (the epoch when the server sent none we can read).
    pub modified: DateTime<Utc>,
}

/// Upper bound on listing pages followed (1000 keys each on S3 and Azure): a server that
/// keeps answering "truncated" cannot keep a verifier busy forever.
pub const MAX_PAGES: usize = 100_000;

/// Decode the XML character references S3 and Azure use in listings.
pub fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16).ok().and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-decode (lossy for invalid UTF-8: such a key is junk and reported as such).
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let s = if plus_is_space { s.replace('+', " ") } else { s.to_string() };
    String::from_utf8_lossy(&percent_encoding::percent_decode_str(&s).collect::<Vec<u8>>()).into_owned()
}

/// Every `<tag>…</tag>` block of `xml`, in order.
fn blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let Some(j) = body.find(&close) else { break };
        out.push(&body[..j]);
        rest = &body[j + close.len()..];
    }
    out
}

impl S3Admin {
    /// Every object under `prefix` (store-relative), raw keys (`ListObjectsV2`,
    /// `encoding-type=url`), sorted by key.
    pub async fn list_raw(&self, prefix: &str) -> Result<Vec<Listed>, LockError> {
        let full = self.full_key(prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = format!("list-type=2&encoding-type=url&prefix={}", super::address::encode_query(&full));
            if let Some(t) = &token {
                q.push_str(&format!("&continuation-token={}", super::address::encode_query(t)));
            }
            let url = self.url_for(None, Some(&q))?;
            let (status, _, body) = self.send_limited("GET ?list-type=2", url.clone(), MAX_ANSWER).await?;
            if status != 200 {
                return Err(Self::unexpected("GET ?list-type=2", &url, status, &body));
            }
            let text = String::from_utf8_lossy(&body);
            // A page cut short would silently drop keys.
            if !text.trim_end().ends_with("</ListBucketResult>") {
                return Err(LockError::Malformed {
                    op: "GET ?list-type=2",
                    url: url.to_string(),
                    why: "it does not end with </ListBucketResult>: cut short".into(),
                });
            }
            // Keys are URL-encoded only when the answer says so (a server that ignores
            // `encoding-type` sends them raw: decoding would change them).
            let encoded = xml_tag(&text, "EncodingType") == Some("url");
            for c in blocks(&text, "Contents") {
                let Some(k) = xml_tag(c, "Key") else { continue };
                let key = xml_unescape(k);
                let key = if encoded { percent_decode(&key, true) } else { key };
                let Some(rel) = self.relative(&key) else { continue };
                out.push(Listed {
                    key: rel.to_string(),
                    size: xml_tag(c, "Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                    modified: xml_tag(c, "LastModified")
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|d| d.with_timezone(&Utc))
                        .unwrap_or_default(),
                });
            }
            let truncated = xml_tag(&text, "IsTruncated") == Some("true");
            token = xml_tag(&text, "NextContinuationToken").map(xml_unescape);
            if !truncated || token.is_none() {
                out.sort_by(|a, b| a.key.cmp(&b.key));
                return Ok(out);
            }
        }
        Err(LockError::Request { url: "ListObjectsV2: too many pages".into() })
    }
}

/// Signed requests to one Azure Blob container, for listings with raw names.
#[derive(Debug)]
pub struct AzureRaw {
    http: HttpClient,
    credentials: AzureCredentialProvider,
    account: String,
    /// `https://account.blob.core.windows.net/container` or the emulator's
    /// `http://127.0.0.1:10000/devstoreaccount1/container`.
    container_url: String,
    prefix: String,
}

impl AzureRaw {
    /// A client for `container_url` (keys under `prefix`).
    pub fn new(
        http: HttpClient,
        credentials: AzureCredentialProvider,
        account: &str,
        container_url: &str,
        prefix: &str,
    ) -> AzureRaw {
        AzureRaw {
            http,
            credentials,
            account: account.into(),
            container_url: container_url.trim_end_matches('/').into(),
            prefix: prefix.into(),
        }
    }

    /// Every blob under `prefix` (store-relative), raw names (`List Blobs`), sorted by key.
    pub async fn list_raw(&self, prefix: &str) -> Result<Vec<Listed>, LockError> {
        let full = if self.prefix.is_empty() { prefix.to_string() } else { format!("{}/{prefix}", self.prefix) };
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = format!(
                "{}?restype=container&comp=list&prefix={}",
                self.container_url,
                super::address::encode_query(&full)
            );
            if let Some(m) = &marker {
                url.push_str(&format!("&marker={}", super::address::encode_query(m)));
            }
            let cred = self.credentials.get_credential().await.map_err(LockError::Credentials)?;
            let mut req: HttpRequest = http::Request::builder()
                .method(http::Method::GET)
                .uri(url.as_str())
                .body(HttpRequestBody::from(bytes::Bytes::new()))
                .map_err(|_| LockError::Request { url: url.clone() })?;
            AzureAuthorizer::new(&cred, &self.account)
                .try_authorize(&mut req)
                .map_err(|source| LockError::Sign { url: url.clone(), source })?;
            let resp = self.http.execute(req).await.map_err(|source| LockError::Http {
                op: "List Blobs",
                url: url.clone(),
                source,
            })?;
            let status = resp.status().as_u16();
            let body = resp.into_body().bytes().await.unwrap_or_default();
            if status != 200 {
                return Err(LockError::Status {
                    op: "List Blobs",
                    url,
                    status,
                    body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
                });
            }
            let text = String::from_utf8_lossy(&body);
            for b in blocks(&text, "Blob") {
                // A name that is not valid XML text comes percent-encoded, flagged Encoded="true".
                let (name, encoded) = match (xml_tag(b, "Name"), b.find("<Name Encoded=\"true\">")) {
                    (Some(n), _) => (n.to_string(), false),
                    (None, Some(i)) => {
                        let s = &b[i + "<Name Encoded=\"true\">".len()..];
                        (s[..s.find("</Name>").unwrap_or(s.len())].to_string(), true)
                    }
                    (None, None) => continue,
                };
                let name = xml_unescape(&name);
                let name = if encoded { percent_decode(&name, false) } else { name };
                let Some(rel) = name.strip_prefix(&strip) else { continue };
                out.push(Listed {
                    key: rel.to_string(),
                    size: xml_tag(b, "Content-Length").and_then(|s| s.parse().ok()).unwrap_or(0),
                    modified: xml_tag(b, "Last-Modified")
                        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
                        .map(|d| d.with_timezone(&Utc))
                        .unwrap_or_default(),
                });
            }
            marker = xml_tag(&text, "NextMarker").filter(|m| !m.is_empty()).map(xml_unescape);
            if marker.is_none() {
                out.sort_by(|a, b| a.key.cmp(&b.key));
                return Ok(out);
            }
        }
        Err(LockError::Request { url: "List Blobs: too many pages".into() })
    }
}

/// Every file under `root/prefix` of a local store, keys relative to `root` with `/`
/// separators (a name that is not UTF-8 is shown lossily: it is junk either way).
pub fn list_local(root: &std::path::Path, prefix: &str) -> Vec<Listed> {
    let dir = root.join(prefix.trim_end_matches('/'));
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(&dir).follow_links(false).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(rel) = e.path().strip_prefix(root) else { continue };
        let key: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let meta = e.metadata().ok();
        out.push(Listed {
            key: key.join("/"),
            size: meta.as_ref().map(|m| m.len()).unwrap_or(0),
            modified: meta.and_then(|m| m.modified().ok()).map(DateTime::<Utc>::from).unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_percent_decoding_keep_every_byte_of_a_key() {
        assert_eq!(xml_unescape("a&amp;b&lt;&#x1B;&#27;&bogus;&"), "a&b<\u{1b}\u{1b}&bogus;&");
        assert_eq!(percent_decode("ledger/%1B%5B2J+x%2B", true), "ledger/\u{1b}[2J x+");
        let xml = "<R><Contents><Key>a</Key></Contents><Contents><Key>b</Key></Contents></R>";
        assert_eq!(blocks(xml, "Contents").len(), 2);
    }
}
