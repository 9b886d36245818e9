//! S3 Object Lock: the write headers, and small SigV4-signed requests that `object_store`
//! does not offer (bucket lock configuration, versioning, an object's retention).
//!
//! `object_store`'s `head()` drops the `x-amz-object-lock-*` response headers, so the
//! retention of an object is read here with a signed `HEAD` whose headers S3 returns when the
//! caller may read retention (`s3:GetObjectRetention`). (`GET ?retention` is the dedicated
//! API, but moto answers it with a 500; HEAD works on both AWS and moto.) Requests are signed
//! with `object_store`'s own [`AwsAuthorizer`] and the credentials of the store's client, and
//! sent through its HTTP client, so the same endpoint, TLS and proxy settings apply.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpClient, HttpRequest, HttpRequestBody};
use object_store::{HeaderMap, HeaderValue};
use serde::Serialize;

use super::config::Retention;

/// Header names.
pub const MODE_HEADER: &str = "x-amz-object-lock-mode";
/// Retain-until header.
pub const RETAIN_UNTIL_HEADER: &str = "x-amz-object-lock-retain-until-date";
/// The checksum algorithm header lock PUTs need.
pub const CHECKSUM_ALGO_HEADER: &str = "x-amz-sdk-checksum-algorithm";

/// Errors of the signed side requests.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// No credentials.
    #[error("cannot get S3 credentials: {0}")]
    Credentials(#[source] object_store::Error),
    /// Signing failed.
    #[error("cannot sign the request to {url}: {source}")]
    Sign {
        /// The URL.
        url: String,
        /// Why.
        source: object_store::Error,
    },
    /// The request could not be built.
    #[error("cannot build a request to {url}")]
    Request {
        /// The URL.
        url: String,
    },
    /// Transport failure after retries.
    #[error("{op} {url} failed: {source}")]
    Http {
        /// What.
        op: &'static str,
        /// The URL.
        url: String,
        /// The transport error.
        source: object_store::client::HttpError,
    },
    /// An unexpected status.
    #[error("{op} {url} answered HTTP {status}: {body}")]
    Status {
        /// What.
        op: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// The lock headers every write carries, for `ClientOptions::with_default_headers`: mode,
/// retain-until (now + days, UTC, whole seconds) and the checksum algorithm S3 requires on
/// lock PUTs.
pub fn write_headers(r: &Retention, now: DateTime<Utc>) -> HeaderMap {
    let until = retain_until(r, now);
    let mut h = HeaderMap::new();
    h.insert(MODE_HEADER, HeaderValue::from_static(r.mode.header_value()));
    if let Ok(v) = HeaderValue::from_str(&until.format("%Y-%m-%dT%H:%M:%SZ").to_string()) {
        h.insert(RETAIN_UNTIL_HEADER, v);
    }
    h.insert(CHECKSUM_ALGO_HEADER, HeaderValue::from_static("SHA256"));
    h
}

/// The retain-until date for a write at `now`.
pub fn retain_until(r: &Retention, now: DateTime<Utc>) -> DateTime<Utc> {
    // Checked: a retention of u32::MAX days lies beyond chrono's calendar (no panic on any flag).
    let t = now.checked_add_signed(chrono::Duration::days(i64::from(r.days))).unwrap_or(DateTime::<Utc>::MAX_UTC);
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// An object's retention as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRetention {
    /// `COMPLIANCE`, `GOVERNANCE`, or `None` when the object carries no lock.
    pub mode: Option<String>,
    /// Retain-until date as sent by the server.
    pub retain_until: Option<String>,
}

impl ObjectRetention {
    /// The retain-until date, parsed.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.retain_until.as_deref().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|d| d.with_timezone(&Utc))
    }
}

/// A bucket's Object Lock configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BucketLock {
    /// `ObjectLockEnabled` is `Enabled`.
    pub enabled: bool,
    /// Default retention mode.
    pub default_mode: Option<String>,
    /// Default retention days.
    pub default_days: Option<u32>,
    /// Default retention years.
    pub default_years: Option<u32>,
}

/// Signed side requests to one S3 bucket (under the store's prefix).
#[derive(Debug)]
pub struct S3Admin {
    http: HttpClient,
    credentials: AwsCredentialProvider,
    region: String,
    /// `https://endpoint/bucket/` (path style) or `https://bucket.s3.region.amazonaws.com/`.
    base: url::Url,
    prefix: String,
}

impl S3Admin {
    /// A client for `bucket` (keys under `prefix`) at `endpoint` (None: AWS), path style when
    /// an endpoint is given.
    pub fn new(
        http: HttpClient,
        credentials: AwsCredentialProvider,
        region: &str,
        endpoint: Option<&str>,
        bucket: &str,
        prefix: &str,
    ) -> Result<S3Admin, LockError> {
        let base = match endpoint {
            Some(e) => format!("{}/{bucket}/", e.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/"),
        };
        let base = url::Url::parse(&base).map_err(|_| LockError::Request { url: base.clone() })?;
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(S3Admin { http, credentials, region: region.into(), base, prefix })
    }

    fn url_for(&self, key: Option<&str>, query: Option<&str>) -> Result<url::Url, LockError> {
        let mut u = self.base.clone();
        if let Some(k) = key {
            let full = format!("{}{k}", self.prefix);
            let joined = self.base.join(&full).map_err(|_| LockError::Request { url: full.clone() })?;
            u = joined;
        }
        u.set_query(query);
        Ok(u)
    }

    /// Send one signed bodiless request; retries transport errors and 5xx three times.
    async fn send(
        &self,
        op: &'static str,
        method: http::Method,
        url: url::Url,
    ) -> Result<(u16, HeaderMap, Bytes), LockError> {
        self.send_body(op, method, url, Bytes::new(), HeaderMap::new()).await
    }

    /// Send one signed request with a body and extra headers (same retries).
    async fn send_body(
        &self,
        op: &'static str,
        method: http::Method,
        url: url::Url,
        body: Bytes,
        extra: HeaderMap,
    ) -> Result<(u16, HeaderMap, Bytes), LockError> {
        let cred = self.credentials.get_credential().await.map_err(LockError::Credentials)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req: HttpRequest = http::Request::builder()
                .method(method.clone())
                .uri(url.as_str())
                .body(HttpRequestBody::from(body.clone()))
                .map_err(|_| LockError::Request { url: url.to_string() })?;
            req.headers_mut().extend(extra.clone());
            AwsAuthorizer::new(&cred, "s3", &self.region)
                .try_authorize(&mut req, None)
                .map_err(|source| LockError::Sign { url: url.to_string(), source })?;
            match self.http.execute(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let body = resp.into_body().bytes().await.unwrap_or_default();
                    if status >= 500 && attempt < 4 {
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        continue;
                    }
                    return Ok((status, headers, body));
                }
                Err(e) if attempt < 4 => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(source) => return Err(LockError::Http { op, url: url.to_string(), source }),
            }
        }
    }

    fn unexpected(op: &'static str, url: &url::Url, status: u16, body: &[u8]) -> LockError {
        LockError::Status {
            op,
            url: url.to_string(),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        }
    }

    /// The retention of `key` (relative to the store), from a signed HEAD's lock headers.
    /// `Ok(None)` if the object does not exist.
    pub async fn object_retention(&self, key: &str) -> Result<Option<ObjectRetention>, LockError> {
        let url = self.url_for(Some(key), None)?;
        let (status, headers, body) = self.send("HEAD", http::Method::HEAD, url.clone()).await?;
        match status {
            200 => {
                let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
                Ok(Some(ObjectRetention { mode: get(MODE_HEADER), retain_until: get(RETAIN_UNTIL_HEADER) }))
            }
            404 => Ok(None),
            s => Err(Self::unexpected("HEAD", &url, s, &body)),
        }
    }

    /// Set `key`'s retention (`PUT ?retention`, with the SHA-256 checksum S3 requires). Used
    /// after a multipart upload when the server did not apply the lock headers of its
    /// CreateMultipartUpload (moto does not; AWS does).
    pub async fn put_retention(&self, key: &str, r: &Retention, now: DateTime<Utc>) -> Result<(), LockError> {
        use base64::Engine as _;
        let url = self.url_for(Some(key), Some("retention"))?;
        let until = retain_until(r, now).format("%Y-%m-%dT%H:%M:%SZ");
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>",
            r.mode.header_value()
        );
        let digest = crate::digest::Sha256::of(body.as_bytes());
        let mut h = HeaderMap::new();
        h.insert(CHECKSUM_ALGO_HEADER, HeaderValue::from_static("SHA256"));
        if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(digest.0)) {
            h.insert("x-amz-checksum-sha256", v);
        }
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        let (status, _, resp) =
            self.send_body("PUT ?retention", http::Method::PUT, url.clone(), body.into(), h).await?;
        if status != 200 && status != 204 {
            return Err(Self::unexpected("PUT ?retention", &url, status, &resp));
        }
        Ok(())
    }

    /// The bucket's Object Lock configuration (`GET ?object-lock`); not enabled when the
    /// server says there is none.
    pub async fn bucket_lock(&self) -> Result<BucketLock, LockError> {
        let url = self.url_for(None, Some("object-lock"))?;
        let (status, _, body) = self.send("GET ?object-lock", http::Method::GET, url.clone()).await?;
        let text = String::from_utf8_lossy(&body);
        match status {
            200 => Ok(BucketLock {
                enabled: xml_tag(&text, "ObjectLockEnabled") == Some("Enabled"),
                default_mode: xml_tag(&text, "Mode").map(String::from),
                default_days: xml_tag(&text, "Days").and_then(|d| d.parse().ok()),
                default_years: xml_tag(&text, "Years").and_then(|d| d.parse().ok()),
            }),
            404 if text.contains("ObjectLockConfigurationNotFound") => Ok(BucketLock::default()),
            s => Err(Self::unexpected("GET ?object-lock", &url, s, &body)),
        }
    }

    /// The bucket's versioning status (`Enabled`, `Suspended`, or `None` if never enabled).
    pub async fn versioning(&self) -> Result<Option<String>, LockError> {
        let url = self.url_for(None, Some("versioning"))?;
        let (status, _, body) = self.send("GET ?versioning", http::Method::GET, url.clone()).await?;
        if status != 200 {
            return Err(Self::unexpected("GET ?versioning", &url, status, &body));
        }
        Ok(xml_tag(&String::from_utf8_lossy(&body), "Status").map(String::from))
    }
}

/// The text of the first `<tag>…</tag>` in `xml` (S3's answers are small and flat).
pub fn xml_tag<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml[start..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::config::LockMode;

    #[test]
    fn write_headers_carry_mode_date_and_checksum() {
        let now = DateTime::parse_from_rfc3339("2026-01-31T10:20:30.5Z").unwrap().with_timezone(&Utc);
        let h = write_headers(&Retention { days: 30, mode: LockMode::Governance }, now);
        assert_eq!(h.get(MODE_HEADER).unwrap(), "GOVERNANCE");
        assert_eq!(h.get(RETAIN_UNTIL_HEADER).unwrap(), "2026-03-02T10:20:30Z");
        assert_eq!(h.get(CHECKSUM_ALGO_HEADER).unwrap(), "SHA256");
    }

    #[test]
    fn xml_tag_reads_flat_answers() {
        let x = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>7</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(xml_tag(x, "ObjectLockEnabled"), Some("Enabled"));
        assert_eq!(xml_tag(x, "Mode"), Some("COMPLIANCE"));
        assert_eq!(xml_tag(x, "Days"), Some("7"));
        assert_eq!(xml_tag(x, "Years"), None);
    }
}
