//! Egress / proxy access logs: Envoy default text format, Envoy/Istio JSON, Squid native.

use super::generic::{bounded, common_timestamp, rfc3339_from_epoch, Item};
use super::ids::push_obs;
use super::mapping::{first_string, lookup, FieldMapping};
use super::types::{Fact, IdentName};
use serde_json::Value;

/// Tokens of a text access-log line: `[…]` and `"…"` groups are one token each.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (tok, next) = match rest.as_bytes().first() {
            Some(b'[') => match rest.find(']') {
                Some(end) => (rest.get(1..end), rest.get(end + 1..)),
                None => (Some(rest), None),
            },
            Some(b'"') => match rest.get(1..).and_then(|r| r.find('"')) {
                Some(end) => (rest.get(1..end + 1), rest.get(end + 2..)),
                None => (Some(rest), None),
            },
            _ => match rest.find(char::is_whitespace) {
                Some(end) => (rest.get(..end), rest.get(end..)),
                None => (Some(rest), None),
            },
        };
        if let Some(t) = tok {
            out.push(t);
        }
        rest = next.unwrap_or("").trim_start();
    }
    out
}

fn dash_none(s: Option<&&str>) -> Option<String> {
    s.filter(|t| !t.is_empty() && **t != "-").map(|t| t.to_string())
}

/// Envoy default format: `[START] "METHOD PATH PROTO" CODE FLAGS RX TX DUR UPSTREAM_TIME
/// "XFF" "UA" "REQUEST_ID" "AUTHORITY" "UPSTREAM_HOST"`.
pub(crate) fn envoy_text_item(line: &str) -> Option<Item> {
    let t = tokens(line);
    let ts = t.first()?;
    let request = t.get(1)?;
    let mut req = request.split_whitespace();
    let method = req.next().filter(|m| *m != "-").map(str::to_string);
    let status = t.get(2).and_then(|s| s.parse::<u16>().ok());
    let bytes_received = t.get(4).and_then(|s| s.parse::<u64>().ok());
    let bytes_sent = t.get(5).and_then(|s| s.parse::<u64>().ok());
    let destination = dash_none(t.get(11)).or_else(|| dash_none(t.get(12))).unwrap_or_else(|| "-".to_string());
    let mut item = Item { timestamp: Some(ts.to_string()), ..Item::default() };
    item.facts.push(Fact::Egress { destination: bounded(destination), method, status, bytes_sent, bytes_received });
    Some(item)
}

/// Host of a URL or `host:port`.
fn url_host(url: &str) -> &str {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host_port = after_scheme.split(['/', '?', '#']).next().unwrap_or(after_scheme);
    host_port.rsplit_once('@').map(|(_, h)| h).unwrap_or(host_port)
}

/// Squid native: `TIME ELAPSED CLIENT CODE/STATUS BYTES METHOD URL USER HIER/PEER TYPE`.
pub(crate) fn squid_item(line: &str) -> Option<Item> {
    let t: Vec<&str> = line.split_ascii_whitespace().collect();
    let ts = t.first()?.parse::<f64>().ok()?;
    let status = t.get(3).and_then(|c| c.split_once('/')).and_then(|(_, s)| s.parse::<u16>().ok());
    let url = t.get(6)?;
    let mut item = Item { timestamp: rfc3339_from_epoch(ts), ..Item::default() };
    if let Some(user) = dash_none(t.get(7)) {
        push_obs(&mut item.observations, IdentName::ToolPrincipal, &user, "squid.user");
    }
    item.facts.push(Fact::Egress {
        destination: bounded(url_host(url).to_string()),
        method: t.get(5).map(|m| m.to_string()),
        status,
        bytes_sent: t.get(4).and_then(|b| b.parse::<u64>().ok()),
        bytes_received: None,
    });
    Some(item)
}

/// Envoy/Istio JSON access-log entry.
pub(crate) fn envoy_json_item(v: &Value, mapping: &FieldMapping) -> Item {
    let mut item = Item::default();
    if !v.is_object() {
        return item;
    }
    mapping.extract(v, &mut item.observations);
    let destination =
        first_string(v, &["authority", ":authority", "host", "requested_server_name", "upstream_host", "url"]);
    let num = |keys: &[&str]| {
        keys.iter().filter_map(|k| lookup(v, k)).find_map(|x| match x {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        })
    };
    if let Some(dest) = destination {
        item.facts.push(Fact::Egress {
            destination: bounded(url_host(&dest).to_string()),
            method: first_string(v, &["method", ":method", "request_method"]),
            status: num(&["response_code", "status", "status_code"]).and_then(|s| u16::try_from(s).ok()),
            bytes_sent: num(&["bytes_sent"]),
            bytes_received: num(&["bytes_received"]),
        });
    }
    item.timestamp = common_timestamp(v);
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envoy_and_squid_lines() {
        let item = envoy_text_item(
            r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#,
        );
        let facts = item.map(|i| i.facts).unwrap_or_default();
        assert_eq!(
            facts,
            vec![Fact::Egress {
                destination: "locations".into(),
                method: Some("POST".into()),
                status: Some(204),
                bytes_sent: Some(0),
                bytes_received: Some(154)
            }]
        );
        let sq = squid_item("1286536308.779    180 192.168.0.224 TCP_MISS/200 411 GET http://example.com/ - HIER_DIRECT/1.2.3.4 text/html");
        let sq = sq.map(|i| (i.facts, i.timestamp)).unwrap_or_default();
        assert_eq!(
            sq.0,
            vec![Fact::Egress {
                destination: "example.com".into(),
                method: Some("GET".into()),
                status: Some(200),
                bytes_sent: Some(411),
                bytes_received: None
            }]
        );
        assert_eq!(sq.1.as_deref(), Some("2010-10-08T11:11:48.779Z"));
    }
}
