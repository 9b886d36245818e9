//! S3 multipart uploads as custody's own SigV4-signed requests ([`S3Admin`]): create, upload
//! a part with its SHA-256 checksum, copy a part server-side, complete (optionally
//! `If-None-Match: *`), abort, and list the incomplete uploads under a prefix.
//!
//! `object_store` 0.14's multipart upload cannot complete conditionally, cannot copy parts,
//! and sends the lock headers on every request; these requests carry exactly the headers
//! custody chooses (a provisional upload carries no lock, [`super::stream`]).

use base64::Engine as _;
use bytes::Bytes;
use object_store::{HeaderMap, HeaderValue};

use super::address::encode_query;
use super::lock::{xml_tag, LockError, S3Admin, CHECKSUM_HEADER, MAX_ANSWER};

/// One part of a multipart upload, as CompleteMultipartUpload names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1-based.
    pub number: u32,
    /// The server's ETag for it (quoted, as returned).
    pub etag: String,
    /// Its SHA-256 checksum, base64 (sent with it, or returned by a part copy).
    pub checksum: Option<String>,
}

/// How an upload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completed {
    /// The object exists now: its ETag and version (in a versioned bucket).
    Done {
        /// ETag (quoted).
        etag: String,
        /// `x-amz-version-id`, if any.
        version: Option<String>,
    },
    /// `If-None-Match: *` was refused: an object already holds the key (HTTP 412).
    Exists,
}

/// What the server answered to a part.
#[derive(Debug)]
pub enum PartAnswer {
    /// Stored.
    Stored(Part),
    /// Refused because its bytes do not match the checksum sent (HTTP 400 `BadDigest` or
    /// `XAmzContentSHA256Mismatch`): corrupted on the way.
    ChecksumRefused(String),
}

/// An incomplete multipart upload (`ListMultipartUploads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// The key, relative to the store.
    pub key: String,
    /// Its upload id.
    pub upload_id: String,
    /// When it was started.
    pub initiated: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a server did with `CompleteMultipartUpload` + `If-None-Match: *` over an existing
/// object ([`S3Admin::probe_conditional_complete`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionalProbe {
    /// Refused it (HTTP 412): completion can be made create-only.
    Honoured,
    /// Completed it anyway, or answered otherwise (the HTTP status).
    NotHonoured(u16),
}

fn b64(d: &crate::digest::Sha256) -> String {
    base64::engine::general_purpose::STANDARD.encode(d.0)
}

/// `s` as XML text (an ETag is quoted; a hostile one could hold markup).
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The `<Error><Code>` of an answer, if it is one (S3 may answer 200 with an error body to a
/// CompleteMultipartUpload or UploadPartCopy that failed after it started).
fn error_code(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if !text.contains("<Error>") {
        return None;
    }
    Some(xml_tag(&text, "Code").unwrap_or("?").to_string())
}

impl S3Admin {
    /// `CreateMultipartUpload` of `key` with `headers` (checksum algorithm, lock headers):
    /// the upload id.
    pub async fn create_upload(&self, key: &str, mut headers: HeaderMap) -> Result<String, LockError> {
        let url = self.url_for(Some(key), Some("uploads"))?;
        headers.insert("x-amz-checksum-algorithm", HeaderValue::from_static("SHA256"));
        let (status, _, body) =
            self.send_body("POST ?uploads", http::Method::POST, url.clone(), Bytes::new(), headers).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        match (status, xml_tag(&text, "UploadId")) {
            (200, Some(id)) if !id.is_empty() => Ok(super::raw::xml_unescape(id)),
            _ => Err(Self::unexpected("POST ?uploads", &url, status, &body)),
        }
    }

    /// `UploadPart` number `number` of `body`, whose SHA-256 is `digest` (sent as
    /// `x-amz-checksum-sha256`, and as the signed payload hash: the part is hashed once). A
    /// server that echoes a checksum must echo this one.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
        digest: &crate::digest::Sha256,
    ) -> Result<PartAnswer, LockError> {
        let query = format!("partNumber={number}&uploadId={}", encode_query(upload_id));
        let url = self.url_for(Some(key), Some(&query))?;
        let checksum = b64(digest);
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&checksum) {
            h.insert(CHECKSUM_HEADER, v);
        }
        let (status, headers, answer) = self
            .send_attempts("PUT part", http::Method::PUT, url.clone(), body, h, 4, MAX_ANSWER, Some(&digest.0))
            .await?;
        if status == 400 {
            let code = error_code(&answer).unwrap_or_default();
            if matches!(code.as_str(), "BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest") {
                return Ok(PartAnswer::ChecksumRefused(code));
            }
        }
        if status != 200 {
            return Err(Self::unexpected("PUT part", &url, status, &answer));
        }
        if let Some(echo) = headers.get(CHECKSUM_HEADER) {
            if echo.as_bytes() != checksum.as_bytes() {
                return Ok(PartAnswer::ChecksumRefused(format!(
                    "the server answered x-amz-checksum-sha256 {:?}, not the {checksum:?} sent",
                    String::from_utf8_lossy(echo.as_bytes())
                )));
            }
        }
        let Some(etag) = headers.get("etag").and_then(|v| v.to_str().ok()) else {
            return Err(Self::unexpected("PUT part (no ETag)", &url, status, &answer));
        };
        Ok(PartAnswer::Stored(Part { number, etag: etag.to_string(), checksum: Some(checksum) }))
    }

    /// `UploadPartCopy`: part `number` of the upload is bytes `range` (inclusive) of
    /// `source` (store-relative) at `version`, and only if its ETag is still `source_etag`
    /// (when known).
    /// The part's SHA-256 when the server returns one.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        source: &str,
        version: Option<&str>,
        source_etag: Option<&str>,
        range: (u64, u64),
    ) -> Result<Part, LockError> {
        let query = format!("partNumber={number}&uploadId={}", encode_query(upload_id));
        let url = self.url_for(Some(key), Some(&query))?;
        let mut src = format!("/{}/{}", self.bucket(), super::address::encode_key(&self.full_key(source)));
        if let Some(v) = version {
            src.push_str(&format!("?versionId={}", encode_query(v)));
        }
        let mut h = HeaderMap::new();
        let bad = || LockError::Request { url: url.to_string() };
        h.insert("x-amz-copy-source", HeaderValue::from_str(&src).map_err(|_| bad())?);
        if let Some(e) = source_etag {
            h.insert("x-amz-copy-source-if-match", HeaderValue::from_str(e).map_err(|_| bad())?);
        }
        let r = format!("bytes={}-{}", range.0, range.1);
        h.insert("x-amz-copy-source-range", HeaderValue::from_str(&r).map_err(|_| bad())?);
        let (status, _, body) =
            self.send_body("PUT part (copy)", http::Method::PUT, url.clone(), Bytes::new(), h).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        match (status, error_code(&body), xml_tag(&text, "ETag")) {
            (200, None, Some(etag)) => Ok(Part {
                number,
                etag: super::raw::xml_unescape(etag),
                checksum: xml_tag(&text, "ChecksumSHA256").map(String::from),
            }),
            _ => Err(Self::unexpected("PUT part (copy)", &url, status, &body)),
        }
    }

    /// `CompleteMultipartUpload` of `parts`; with `create_only`, `If-None-Match: *` (an
    /// existing object is [`Completed::Exists`], and the upload is left for the caller to
    /// abort).
    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[Part],
        create_only: bool,
    ) -> Result<Completed, LockError> {
        let url = self.url_for(Some(key), Some(&format!("uploadId={}", encode_query(upload_id))))?;
        let mut xml = String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        for p in parts {
            xml.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>", p.number, xml_text(&p.etag)));
            if let Some(c) = &p.checksum {
                xml.push_str(&format!("<ChecksumSHA256>{c}</ChecksumSHA256>"));
            }
            xml.push_str("</Part>");
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        if create_only {
            h.insert("if-none-match", HeaderValue::from_static("*"));
        }
        // A 200 whose body is an error (InternalError after the completion started) is retried
        // like a 5xx: completing the same upload again is idempotent.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (status, headers, body) = self
                .send_body("POST ?uploadId", http::Method::POST, url.clone(), Bytes::from(xml.clone()), h.clone())
                .await?;
            let text = String::from_utf8_lossy(&body).into_owned();
            match (status, error_code(&body)) {
                (412, _) => return Ok(Completed::Exists),
                (200, None) => {
                    let etag = headers
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from)
                        .or_else(|| xml_tag(&text, "ETag").map(super::raw::xml_unescape))
                        .unwrap_or_default();
                    let version = headers.get("x-amz-version-id").and_then(|v| v.to_str().ok()).map(String::from);
                    return Ok(Completed::Done { etag, version });
                }
                (200, Some(_)) if attempt < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                }
                _ => return Err(Self::unexpected("POST ?uploadId (complete)", &url, status, &body)),
            }
        }
    }

    /// `AbortMultipartUpload`: the parts are deleted. An upload already gone is not an error.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), LockError> {
        let url = self.url_for(Some(key), Some(&format!("uploadId={}", encode_query(upload_id))))?;
        let (status, _, body) = self.send("DELETE ?uploadId", http::Method::DELETE, url.clone()).await?;
        match status {
            200 | 204 | 404 => Ok(()),
            s => Err(Self::unexpected("DELETE ?uploadId", &url, s, &body)),
        }
    }

    /// Delete one version of `key` (the current object without `version`). `Ok(false)` when
    /// the server refuses (HTTP 403: locked by a retention or legal hold, or not allowed).
    pub async fn delete_object(&self, key: &str, version: Option<&str>) -> Result<bool, LockError> {
        let query = version.map(|v| format!("versionId={}", encode_query(v)));
        let url = self.url_for(Some(key), query.as_deref())?;
        let (status, _, body) = self.send("DELETE", http::Method::DELETE, url.clone()).await?;
        match status {
            200 | 204 | 404 => Ok(true),
            403 => Ok(false),
            s => Err(Self::unexpected("DELETE", &url, s, &body)),
        }
    }

    /// The incomplete multipart uploads of keys under `prefix` (store-relative), at most
    /// `limit` of them (one page of 1000 is read at a time).
    pub async fn list_uploads(&self, prefix: &str, limit: usize) -> Result<Vec<Incomplete>, LockError> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut q = format!("uploads&prefix={}", encode_query(&self.full_key(prefix)));
            if let Some((k, u)) = &markers {
                q.push_str(&format!("&key-marker={}&upload-id-marker={}", encode_query(k), encode_query(u)));
            }
            let url = self.url_for(None, Some(&q))?;
            let (status, _, body) = self.send_limited("GET ?uploads", url.clone(), MAX_ANSWER).await?;
            if status != 200 {
                return Err(Self::unexpected("GET ?uploads", &url, status, &body));
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            for chunk in text.split("<Upload>").skip(1) {
                let chunk = chunk.split("</Upload>").next().unwrap_or("");
                let (Some(k), Some(id)) = (xml_tag(chunk, "Key"), xml_tag(chunk, "UploadId")) else { continue };
                let k = super::raw::xml_unescape(k);
                let Some(rel) = self.relative(&k) else { continue };
                out.push(Incomplete {
                    key: rel.to_string(),
                    upload_id: super::raw::xml_unescape(id),
                    initiated: xml_tag(chunk, "Initiated")
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc)),
                });
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            let next = (xml_tag(&text, "NextKeyMarker"), xml_tag(&text, "NextUploadIdMarker"));
            match (xml_tag(&text, "IsTruncated"), next) {
                (Some("true"), (Some(k), Some(u))) if !k.is_empty() => {
                    let m = (super::raw::xml_unescape(k), super::raw::xml_unescape(u));
                    if markers.as_ref() == Some(&m) {
                        return Ok(out); // a server repeating its page: stop, not loop
                    }
                    markers = Some(m);
                }
                _ => return Ok(out),
            }
        }
    }

    /// Does the server honour `If-None-Match: *` on `CompleteMultipartUpload`? Writes the
    /// small probe object `.custody/complete-probe` create-only (once per store; it stays,
    /// locked if the bucket locks everything), then uploads the same bytes to that key in one
    /// part and completes with `If-None-Match: *`. A 412 means honoured (the upload is
    /// aborted); a server that completes it has replaced the probe with identical bytes
    /// (in a versioned bucket, added a version of it), which harms nothing.
    pub async fn probe_conditional_complete(&self) -> Result<ConditionalProbe, LockError> {
        let key = ".custody/complete-probe";
        let body = Bytes::from_static(b"custody conditional completion probe\n");
        let digest = crate::digest::Sha256::of(&body);
        let url = self.url_for(Some(key), None)?;
        let mut h = HeaderMap::new();
        h.insert("if-none-match", HeaderValue::from_static("*"));
        h.insert(super::lock::CHECKSUM_ALGO_HEADER, HeaderValue::from_static("SHA256"));
        if let Ok(v) = HeaderValue::from_str(&b64(&digest)) {
            h.insert(CHECKSUM_HEADER, v);
        }
        let (status, _, answer) =
            self.send_body("PUT (probe)", http::Method::PUT, url.clone(), body.clone(), h).await?;
        if !matches!(status, 200 | 412) {
            return Err(Self::unexpected("PUT (probe)", &url, status, &answer));
        }
        let id = self.create_upload(key, HeaderMap::new()).await?;
        let part = match self.upload_part(key, &id, 1, body, &digest).await {
            Ok(PartAnswer::Stored(p)) => p,
            Ok(PartAnswer::ChecksumRefused(code)) => {
                let _ = self.abort_upload(key, &id).await;
                return Err(LockError::Status {
                    op: "PUT part (probe)",
                    url: url.to_string(),
                    status: 400,
                    body: format!("the probe's own part was refused by its checksum ({code})"),
                });
            }
            Err(e) => {
                let _ = self.abort_upload(key, &id).await;
                return Err(e);
            }
        };
        let done = self.complete_upload(key, &id, &[part], true).await;
        let _ = self.abort_upload(key, &id).await;
        Ok(match done? {
            Completed::Exists => ConditionalProbe::Honoured,
            Completed::Done { .. } => ConditionalProbe::NotHonoured(200),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_is_told_from_a_result() {
        assert_eq!(error_code(b"<Error><Code>InternalError</Code></Error>").as_deref(), Some("InternalError"));
        assert_eq!(error_code(b"<CompleteMultipartUploadResult><ETag>x</ETag></CompleteMultipartUploadResult>"), None);
    }
}
