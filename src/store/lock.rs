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

/// The SHA-256 checksum header every S3 upload carries.
pub const CHECKSUM_HEADER: &str = "x-amz-checksum-sha256";

/// What a server did with a part sent with a wrong SHA-256 checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumProbe {
    /// Refused it (HTTP 400): the server verifies upload checksums.
    Verified,
    /// Accepted it, or answered otherwise (the HTTP status): uploads must be read back.
    NotVerified(u16),
}

/// Errors of the signed side requests.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// No credentials.
    #[error("cannot get S3 credentials")]
    Credentials(#[source] object_store::Error),
    /// Signing failed.
    #[error("cannot sign the request to {url}")]
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
    #[error("{op} {url} failed")]
    Http {
        /// What.
        op: &'static str,
        /// The URL.
        url: String,
        /// The transport error.
        source: object_store::client::HttpError,
    },
    /// An answer larger than the request accepts (a hostile or broken server).
    #[error("{op} {url}: the answer is larger than {limit} bytes; refusing to read it (a hostile or broken server?)")]
    TooLarge {
        /// What.
        op: &'static str,
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// An answer that is cut short or not the document asked for (a broken connection, a
    /// hostile server): a listing read in part would hide objects.
    #[error("{op} {url}: the answer is not a complete listing ({why}); refusing to use it")]
    Malformed {
        /// What.
        op: &'static str,
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// A request custody needs was refused.
    #[error("{op} {url} was refused (HTTP 403): {why}")]
    Denied {
        /// What.
        op: &'static str,
        /// The URL.
        url: String,
        /// Why custody needs it, and what to grant.
        why: &'static str,
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

/// The largest answer a side request reads (a listing page of 1000 keys of 1024 bytes,
/// percent-encoded, is under 4 MiB): a larger one is refused, never held in memory.
pub const MAX_ANSWER: usize = 16 << 20;

/// Legal-hold header.
pub const LEGAL_HOLD_HEADER: &str = "x-amz-object-lock-legal-hold";

/// The headers every S3 request carries, for `ClientOptions::with_default_headers`: the
/// checksum algorithm (S3 requires it, or Content-MD5, on every write to a bucket with Object
/// Lock, default retention included); with a retention, mode and retain-until (now + days,
/// UTC, whole seconds); with a legal hold, `x-amz-object-lock-legal-hold: ON`.
pub fn write_headers(r: Option<&Retention>, legal_hold: bool, now: DateTime<Utc>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(r) = r {
        let until = retain_until(r, now);
        h.insert(MODE_HEADER, HeaderValue::from_static(r.mode.header_value()));
        if let Ok(v) = HeaderValue::from_str(&until.format("%Y-%m-%dT%H:%M:%SZ").to_string()) {
            h.insert(RETAIN_UNTIL_HEADER, v);
        }
    }
    if legal_hold {
        h.insert(LEGAL_HOLD_HEADER, HeaderValue::from_static("ON"));
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

/// What will lock the next object custody writes to an S3 store, decided before writing and
/// checked on every object after writing ([`crate::store::Store::protection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// custody sends a retention with every write (`--retention`).
    Sent {
        /// `COMPLIANCE` or `GOVERNANCE`.
        mode: String,
        /// The retain-until date sent.
        until: DateTime<Utc>,
        /// `--retention` days.
        days: u32,
        /// The bucket's default retention, which the sent one replaces: (mode, days, as said).
        default: Option<(String, u64, String)>,
    },
    /// The bucket's default retention applies to every write.
    Default {
        /// Its mode.
        mode: String,
        /// Its period, as said.
        period: String,
    },
    /// Nothing locks the objects: no default retention and no `--retention`.
    Nothing {
        /// Whether Object Lock is enabled on the bucket at all.
        object_lock: bool,
    },
    /// The bucket's configuration could not be read.
    Unknown(String),
}

impl Protection {
    /// Decide from the bucket's configuration and what custody sends.
    pub fn decide(bucket: Result<&BucketLock, String>, sent: Option<&Retention>, now: DateTime<Utc>) -> Protection {
        let default = bucket.as_ref().ok().and_then(|b| b.default_retention());
        match (sent, bucket) {
            (Some(r), _) => Protection::Sent {
                mode: r.mode.header_value().into(),
                until: retain_until(r, now),
                days: r.days,
                default,
            },
            (None, Ok(_)) if default.is_some() => {
                let (mode, _, period) = default.unwrap_or_default();
                Protection::Default { mode, period }
            }
            (None, Ok(b)) => Protection::Nothing { object_lock: b.enabled },
            (None, Err(e)) => Protection::Unknown(e),
        }
    }

    /// The weaker-than-the-default problem of a sent retention, if any.
    pub fn weaker_than_default(&self) -> Option<String> {
        let Protection::Sent { mode, days, default: Some((dmode, ddays, dperiod)), .. } = self else { return None };
        let why = if mode == "GOVERNANCE" && dmode == "COMPLIANCE" {
            "principals with s3:BypassGovernanceRetention could delete the evidence"
        } else if u64::from(*days) < *ddays {
            "the evidence would be released sooner"
        } else {
            return None;
        };
        Some(format!(
            "custody sends {mode} for {days} day(s), which REPLACES the bucket's default {dmode} for {dperiod} on every object custody writes: {why}; drop --retention/--lock-mode to rely on the default, or ask for at least as much"
        ))
    }

    /// One sentence saying exactly what protects objects written now.
    pub fn describe(&self, legal_hold: bool) -> String {
        let hold = if legal_hold { ", and a legal hold (until lifted)" } else { "" };
        match self {
            Protection::Sent { mode, until, days, .. } => {
                let mut s = format!("objects written now are locked by custody's --retention {days}: {mode} until {}{hold}", until.format("%Y-%m-%dT%H:%M:%SZ"));
                if let Some(w) = self.weaker_than_default() {
                    s.push_str(&format!("; WARNING: {w}"));
                }
                s
            }
            Protection::Default { mode, period } => format!(
                "objects written now are locked by the bucket's default retention: {mode} for {period} from each write{hold}"
            ),
            Protection::Nothing { object_lock } => format!(
                "WARNING: objects written now are NOT locked{}: the bucket has no default retention{} and no --retention was given, so anyone allowed s3:DeleteObject can delete them{}; give --retention DAYS or set a default retention (check with `custody store init`)",
                if legal_hold { " by any retention (only by the legal hold)" } else { "" },
                if *object_lock { "" } else { " (Object Lock is not even enabled on it)" },
                if legal_hold { " once the hold is lifted" } else { "" }
            ),
            Protection::Unknown(e) => format!(
                "cannot tell what will lock objects written now: reading the bucket's Object Lock configuration failed ({e}); give --retention DAYS (then every object's lock is checked after writing)"
            ),
        }
    }
}

/// An object's retention as the server reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectRetention {
    /// `COMPLIANCE`, `GOVERNANCE`, or `None` when the object carries no lock.
    pub mode: Option<String>,
    /// Retain-until date as sent by the server.
    pub retain_until: Option<String>,
    /// `ON` or `OFF` when the server reports a legal hold.
    pub legal_hold: Option<String>,
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

impl BucketLock {
    /// The default retention as `(mode, period in days, period as said)`, if there is one.
    /// A zero `Days` next to `Years` (moto writes both) is not a period of its own.
    pub fn default_retention(&self) -> Option<(String, u64, String)> {
        let mode = self.default_mode.clone()?;
        match (self.default_days.filter(|d| *d > 0), self.default_years.filter(|y| *y > 0)) {
            (Some(d), _) => Some((mode, u64::from(d), format!("{d} day(s)"))),
            (None, Some(y)) => Some((mode, u64::from(y) * 365, format!("{y} year(s)"))),
            (None, None) => Some((mode, 0, "an unknown period".into())),
        }
    }
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
    /// The bucket's name (for `x-amz-copy-source`).
    bucket: String,
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
        Ok(S3Admin { http, credentials, region: region.into(), base, prefix, bucket: bucket.into() })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full object key of a store-relative key.
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// A full object key made store-relative; `None` when it lies outside the prefix.
    pub fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.prefix.as_str())
    }

    /// The request URL of a store-relative `key` (or of the bucket), with `query` (already
    /// encoded). The key is percent-encoded byte for byte, as `object_store` encodes it, so
    /// side requests name exactly the objects the data requests wrote.
    pub(crate) fn url_for(&self, key: Option<&str>, query: Option<&str>) -> Result<url::Url, LockError> {
        let mut s = self.base.as_str().to_string();
        if let Some(k) = key {
            s.push_str(&super::address::encode_key(&self.full_key(k)));
        }
        let mut u = url::Url::parse(&s).map_err(|_| LockError::Request { url: s.clone() })?;
        u.set_query(query);
        Ok(u)
    }

    /// Send one signed bodiless request; retries transport errors and 5xx three times.
    pub(crate) async fn send(
        &self,
        op: &'static str,
        method: http::Method,
        url: url::Url,
    ) -> Result<(u16, HeaderMap, Bytes), LockError> {
        self.send_body(op, method, url, Bytes::new(), HeaderMap::new()).await
    }

    /// Send one signed bodiless request whose answer may be at most `limit` bytes (listings:
    /// a page of a hostile server cannot take more memory than that).
    pub(crate) async fn send_limited(
        &self,
        op: &'static str,
        url: url::Url,
        limit: usize,
    ) -> Result<(u16, HeaderMap, Bytes), LockError> {
        self.send_attempts(op, http::Method::GET, url, Bytes::new(), HeaderMap::new(), 4, limit, None).await
    }

    /// Send one signed request with a body and extra headers (same retries).
    pub(crate) async fn send_body(
        &self,
        op: &'static str,
        method: http::Method,
        url: url::Url,
        body: Bytes,
        extra: HeaderMap,
    ) -> Result<(u16, HeaderMap, Bytes), LockError> {
        self.send_attempts(op, method, url, body, extra, 4, MAX_ANSWER, None).await
    }

    /// Send one signed request, at most `attempts` times on transport errors (a body cut
    /// short included) and 5xx; an answer above `limit` bytes is refused. `digest`: the
    /// SHA-256 of `body` when the caller has it (a part: it is hashed once, for its checksum
    /// header and the signature alike).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_attempts(
        &self,
        op: &'static str,
        method: http::Method,
        url: url::Url,
        body: Bytes,
        extra: HeaderMap,
        attempts: u32,
        limit: usize,
        digest: Option<&[u8]>,
    ) -> Result<(u16, HeaderMap, Bytes), LockError> {
        use futures::StreamExt as _;
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
                .try_authorize(&mut req, digest)
                .map_err(|source| LockError::Sign { url: url.to_string(), source })?;
            match self.http.execute(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    // Read chunk by chunk: an answer above the limit is refused, never held.
                    let mut stream = resp.into_body().bytes_stream();
                    let mut got: Vec<u8> = Vec::new();
                    let mut cut = None;
                    while let Some(chunk) = stream.next().await {
                        match chunk {
                            Ok(c) if got.len().saturating_add(c.len()) > limit => {
                                return Err(LockError::TooLarge { op, url: url.to_string(), limit })
                            }
                            Ok(c) => got.extend_from_slice(&c),
                            Err(e) => {
                                cut = Some(e);
                                break;
                            }
                        }
                    }
                    match cut {
                        Some(_) if attempt < attempts => {
                            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                            continue;
                        }
                        Some(source) => return Err(LockError::Http { op, url: url.to_string(), source }),
                        None => {}
                    }
                    let body = Bytes::from(got);
                    if status >= 500 && attempt < attempts {
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                        continue;
                    }
                    return Ok((status, headers, body));
                }
                Err(e) if attempt < attempts => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(source) => return Err(LockError::Http { op, url: url.to_string(), source }),
            }
        }
    }

    pub(crate) fn unexpected(op: &'static str, url: &url::Url, status: u16, body: &[u8]) -> LockError {
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
        self.object_retention_at(key, None).await
    }

    /// The retention of one version of `key` (`None`: the current one), from a signed HEAD.
    pub async fn object_retention_at(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectRetention>, LockError> {
        let query = version.map(|v| format!("versionId={}", crate::store::address::encode_query(v)));
        let url = self.url_for(Some(key), query.as_deref())?;
        let (status, headers, body) = self.send("HEAD", http::Method::HEAD, url.clone()).await?;
        match status {
            200 => {
                let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
                Ok(Some(ObjectRetention {
                    mode: get(MODE_HEADER),
                    retain_until: get(RETAIN_UNTIL_HEADER),
                    legal_hold: get(LEGAL_HOLD_HEADER),
                }))
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

    /// Does the server verify upload checksums? Starts a multipart upload of
    /// `.custody/checksum-probe`, sends part 1 with an `x-amz-checksum-sha256` that does not
    /// match its body, and aborts the upload: nothing is ever stored. A 400 answer means the
    /// server checks (AWS answers `BadDigest`); anything else means custody must read uploads
    /// back (moto accepts such parts, or fails them with a 500).
    pub async fn probe_checksums(&self) -> Result<ChecksumProbe, LockError> {
        use base64::Engine as _;
        let key = ".custody/checksum-probe";
        let url = self.url_for(Some(key), Some("uploads"))?;
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-algorithm", HeaderValue::from_static("SHA256"));
        let (status, _, body) =
            self.send_body("POST ?uploads", http::Method::POST, url.clone(), Bytes::new(), h).await?;
        if status != 200 {
            return Err(Self::unexpected("POST ?uploads", &url, status, &body));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let Some(id) = xml_tag(&text, "UploadId").map(crate::store::raw::xml_unescape) else {
            return Err(Self::unexpected("POST ?uploads", &url, status, &body));
        };
        let id = crate::store::address::encode_query(&id);
        let part = self.url_for(Some(key), Some(&format!("partNumber=1&uploadId={id}")))?;
        let wrong = base64::engine::general_purpose::STANDARD.encode(crate::digest::Sha256::of(b"not the body").0);
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&wrong) {
            h.insert(CHECKSUM_HEADER, v);
        }
        // Once: a server that fails such a part with a 5xx will not change its mind.
        let body = Bytes::from_static(b"custody checksum probe");
        let sent = self
            .send_attempts("PUT part (checksum probe)", http::Method::PUT, part, body, h, 1, MAX_ANSWER, None)
            .await;
        let abort = self.url_for(Some(key), Some(&format!("uploadId={id}")))?;
        let _ = self.send("DELETE ?uploadId", http::Method::DELETE, abort).await;
        Ok(match sent? {
            (400, _, _) => ChecksumProbe::Verified,
            (s, _, _) => ChecksumProbe::NotVerified(s),
        })
    }

    /// Put a legal hold on `key` (`PUT ?legal-hold`): after a multipart upload whose
    /// CreateMultipartUpload's header the server did not apply.
    pub async fn put_legal_hold(&self, key: &str) -> Result<(), LockError> {
        use base64::Engine as _;
        let url = self.url_for(Some(key), Some("legal-hold"))?;
        let body = "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>ON</Status></LegalHold>";
        let digest = crate::digest::Sha256::of(body.as_bytes());
        let mut h = HeaderMap::new();
        h.insert(CHECKSUM_ALGO_HEADER, HeaderValue::from_static("SHA256"));
        if let Ok(v) = HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(digest.0)) {
            h.insert(CHECKSUM_HEADER, v);
        }
        h.insert("content-type", HeaderValue::from_static("application/xml"));
        let (status, _, resp) =
            self.send_body("PUT ?legal-hold", http::Method::PUT, url.clone(), body.into(), h).await?;
        if status != 200 && status != 204 {
            return Err(Self::unexpected("PUT ?legal-hold", &url, status, &resp));
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
        let h = write_headers(Some(&Retention { days: 30, mode: LockMode::Governance }), true, now);
        assert_eq!(h.get(MODE_HEADER).unwrap(), "GOVERNANCE");
        assert_eq!(h.get(RETAIN_UNTIL_HEADER).unwrap(), "2026-03-02T10:20:30Z");
        assert_eq!(h.get(CHECKSUM_ALGO_HEADER).unwrap(), "SHA256");
        assert_eq!(h.get(LEGAL_HOLD_HEADER).unwrap(), "ON");
        // Without a retention, a write still says how it is checksummed (S3 requires it on a
        // bucket with a default retention).
        let h = write_headers(None, false, now);
        assert_eq!(h.get(CHECKSUM_ALGO_HEADER).unwrap(), "SHA256");
        assert!(h.get(MODE_HEADER).is_none() && h.get(LEGAL_HOLD_HEADER).is_none());
    }

    #[test]
    fn xml_tag_reads_flat_answers() {
        let x = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>7</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(xml_tag(x, "ObjectLockEnabled"), Some("Enabled"));
        assert_eq!(xml_tag(x, "Mode"), Some("COMPLIANCE"));
        assert_eq!(xml_tag(x, "Days"), Some("7"));
        assert_eq!(xml_tag(x, "Years"), None);
    }

    #[test]
    fn a_one_year_default_retention_is_not_shown_as_0_days() {
        let l = BucketLock {
            enabled: true,
            default_mode: Some("COMPLIANCE".into()),
            default_days: Some(0),
            default_years: Some(1),
        };
        assert_eq!(l.default_retention(), Some(("COMPLIANCE".into(), 365, "1 year(s)".into())));
    }
}
