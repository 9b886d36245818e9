//! Store URLs, parsed and normalised once.
//!
//! A remote store URL (`s3://bucket/prefix`, `az://container/prefix`) is turned into a
//! [`StoreUrl`] here and nowhere else: the bucket, and the prefix as the exact key prefix every
//! object of the store lives under. Data, listings, retention checks and messages all use that
//! one prefix, so a check can never read other keys than the ones written (`s3://b/q//r` used
//! to write under `q/r/` and check `q//r/`).
//!
//! What cannot be represented faithfully is refused, never rewritten: an empty segment (`//`),
//! `.` or `..`, a percent-encoded `/`, a control character, and the characters `object_store`
//! would escape in a key (`%`, `\`, `{`, `}`, `^`, `` ` ``, `[`, `]`, `"`, `<`, `>`, `~`, `#`,
//! `|`, `*`, `?`, non-ASCII). Such a prefix would otherwise be stored under a different,
//! escaped key (`my%2520ev/`) that bucket policies written for the intended prefix miss.
//! Credentials in a URL (`s3://user:pw@bucket`) are refused, and every URL custody prints has
//! its user name and password replaced by `***` ([`redact`]).

/// Why a store URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlProblem(pub String);

/// The kinds of remote store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// `s3://` (also `s3a://`).
    S3,
    /// `az://`: Azure Blob Storage.
    Azure,
}

/// A parsed, normalised remote store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The backend.
    pub remote: Remote,
    /// Bucket (S3) or container (Azure).
    pub bucket: String,
    /// The key prefix, without leading or trailing `/`; empty for the bucket's root. Every
    /// object of the store is `prefix/key` (or `key` when empty).
    pub prefix: String,
}

impl StoreUrl {
    /// The canonical form: `s3://bucket/prefix` (what custody prints and records).
    pub fn canonical(&self) -> String {
        let scheme = match self.remote {
            Remote::S3 => "s3",
            Remote::Azure => "az",
        };
        if self.prefix.is_empty() {
            format!("{scheme}://{}", self.bucket)
        } else {
            format!("{scheme}://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The full object key of a store-relative `key`.
    pub fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

/// Characters `object_store` escapes inside a key segment (its `path::parts::INVALID` set,
/// controls aside): a prefix holding one would be stored under an escaped name.
const ESCAPED_BY_OBJECT_STORE: &[char] =
    &['/', '\\', '{', '^', '}', '%', '`', ']', '"', '>', '[', '~', '<', '#', '|', '*', '?'];

/// Parse a remote store URL. `Ok(None)` when `input` is not a remote URL (a local path,
/// `file://`, `memory://`).
pub fn parse(input: &str) -> Result<Option<StoreUrl>, UrlProblem> {
    let Some((scheme, _)) = input.split_once("://") else { return Ok(None) };
    let remote = match scheme.to_ascii_lowercase().as_str() {
        "file" | "memory" => return Ok(None),
        "s3" | "s3a" => Remote::S3,
        "az" => Remote::Azure,
        "gs" | "gcs" => {
            return Err(UrlProblem(
                "Google Cloud Storage stores are not supported by this build: no GCS emulator available to custody's tests speaks the XML API that object_store uses, so create-only writes could not be shown to hold (docs/storage.md, \"Google Cloud Storage\"); use s3:// (GCS's S3-compatible XML endpoint is NOT create-only either) or az://".into(),
            ))
        }
        _ => {
            return Err(UrlProblem(
                "unknown store scheme: use a local path, file:///abs/path, s3://bucket/prefix or az://container/prefix"
                    .into(),
            ))
        }
    };
    // Split by hand: a URL parser would drop `.` and `..` segments silently, and the point is
    // to refuse them.
    let after = &input[scheme.len() + 3..];
    let (authority, rest) = after.split_at(after.find('/').unwrap_or(after.len()));
    if authority.contains('@') {
        return Err(UrlProblem(
            "a store URL must not carry a user name or password (shown here as ***): give credentials through the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT_KEY, …)".into(),
        ));
    }
    if rest.contains('?') || rest.contains('#') || authority.contains('?') || authority.contains('#') {
        return Err(UrlProblem(
            "a store URL takes no query (`?…`) or fragment (`#…`): `?` and `#` cannot be part of a prefix".into(),
        ));
    }
    if authority.contains(':') {
        return Err(UrlProblem(
            "a store URL names a bucket, not a server: give the endpoint with --s3-endpoint / AWS_ENDPOINT (S3) or AZURE_STORAGE_ENDPOINT / AZURITE_BLOB_STORAGE_URL (Azure)".into(),
        ));
    }
    let bucket = authority.to_string();
    check_bucket(remote, &bucket)?;
    let path = rest.strip_prefix('/').unwrap_or(rest);
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut segments = Vec::new();
    if !path.is_empty() {
        for raw in path.split('/') {
            segments.push(check_segment(raw)?);
        }
    }
    Ok(Some(StoreUrl { remote, bucket, prefix: segments.join("/") }))
}

fn check_bucket(remote: Remote, b: &str) -> Result<(), UrlProblem> {
    let (what, example) = match remote {
        Remote::S3 => ("an S3 URL needs a bucket", "s3://bucket/prefix"),
        Remote::Azure => ("an Azure URL needs a container", "az://container/prefix"),
    };
    if b.is_empty() {
        return Err(UrlProblem(format!("{what}: {example}")));
    }
    let ok_chars = b.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if !ok_chars || !(3..=63).contains(&b.len()) || (remote == Remote::Azure && b.contains('.')) {
        return Err(UrlProblem(format!(
            "`{}` is not a valid {} name (3 to 63 lower-case letters, digits and hyphens{})",
            b.escape_default(),
            if remote == Remote::S3 { "bucket" } else { "container" },
            if remote == Remote::S3 { ", dots" } else { "" }
        )));
    }
    Ok(())
}

/// One percent-encoded URL path segment, decoded and checked.
fn check_segment(raw: &str) -> Result<String, UrlProblem> {
    if raw.is_empty() {
        return Err(UrlProblem(
            "the prefix has an empty segment (`//`): objects would be written under one key and checked under another; write the prefix without `//`".into(),
        ));
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    let seg = String::from_utf8(bytes).map_err(|_| UrlProblem("the prefix is not valid UTF-8 once decoded".into()))?;
    if seg == "." || seg == ".." {
        return Err(UrlProblem("the prefix has a `.` or `..` segment: write the prefix it stands for".into()));
    }
    if let Some(c) = seg.chars().find(|c| c.is_control() || !c.is_ascii() || ESCAPED_BY_OBJECT_STORE.contains(c)) {
        return Err(UrlProblem(format!(
            "the prefix holds {:?}, which cannot be stored faithfully (the key would be escaped, and bucket policies written for the prefix would not apply to it): choose a prefix of letters, digits, spaces and -._!$&'()+,;=:@",
            c
        )));
    }
    Ok(seg)
}

/// `s` with the user name and password of every `scheme://user:pass@` replaced by `***`.
/// Applied to every URL custody prints (store URLs, endpoints, error messages carrying them).
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; userinfo ends at its last '@'.
        let end = tail.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A key as it may be shown: control characters, bidi controls and other invisible characters
/// escaped (`\u{1b}`), so a hostile key cannot paint the terminal.
pub fn display_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        let invisible = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        if invisible || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encode a key for a request path: every byte but the unreserved ones and `/`
/// (the encoding `object_store` uses, and the one S3's signatures expect).
pub fn encode_key(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

/// Percent-encode a query parameter value: every byte but the unreserved ones.
pub fn encode_query(v: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(v, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> StoreUrl {
        parse(s).unwrap().unwrap()
    }
    fn refused(s: &str) -> String {
        parse(s).unwrap_err().0
    }

    #[test]
    fn store_url_normalises_once_and_refuses_what_it_cannot_represent() {
        assert_eq!(ok("s3://b-1/q/r").prefix, "q/r");
        assert_eq!(ok("s3://b-1/q/r/").canonical(), "s3://b-1/q/r");
        assert_eq!(ok("s3://b-1").prefix, "");
        assert_eq!(ok("s3://b-1/").canonical(), "s3://b-1");
        assert_eq!(ok("s3://bkt/my ev").prefix, "my ev");
        assert_eq!(ok("s3://bkt/my%20ev").prefix, "my ev");
        assert_eq!(ok("az://cont/team-a").full_key("ledger/x"), "team-a/ledger/x");
        assert!(refused("s3://bkt/q//r").contains("empty segment"));
        assert!(refused("s3://bkt/q/./r").contains("`.`"));
        assert!(refused("s3://bkt/q/%2E%2E/r").contains("`..`"));
        assert!(refused("s3://bkt/a%2Fb").contains("'/'"));
        assert!(refused("s3://bkt/my%25ev").contains("'%'"));
        assert!(refused("s3://bkt/caf%C3%A9").contains("'é'"));
        assert!(refused("s3://bkt/a%1Bb").contains("'\\u{1b}'"));
        assert!(refused("s3://bkt/a?x=1").contains("query"));
        assert!(refused("s3://bkt/a#x").contains("fragment"));
        assert!(refused("s3://bkt:9000/a").contains("endpoint"));
        assert!(refused("s3:///a").contains("needs a bucket"));
        assert!(refused("s3://Bad_Bucket/a").contains("not a valid bucket"));
        assert!(refused("gs://b/x").contains("not supported"));
    }

    #[test]
    fn credentials_in_a_store_url_are_refused_and_never_echoed() {
        let e = refused("s3://user:hunter2@bucket/p");
        assert!(e.contains("user name or password") && !e.contains("hunter2"), "{e}");
        assert!(refused("s3://user@bucket/p").contains("user name"));
        assert_eq!(redact("s3://user:hunter2@bucket/p"), "s3://***@bucket/p");
        assert_eq!(
            redact("error: GET http://ak:sk@127.0.0.1:9/b?x failed; see https://h/"),
            "error: GET http://***@127.0.0.1:9/b?x failed; see https://h/"
        );
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn keys_are_encoded_and_displayed_safely() {
        assert_eq!(encode_key("p q/ledger/a+b%.json"), "p%20q/ledger/a%2Bb%25.json");
        assert_eq!(display_key("ledger/\u{1b}[2J\u{202e}x"), "ledger/\\u{1b}[2J\\u{202e}x");
    }
}
