//! Egress and proxy access logs: Envoy's default text format, Istio's default text format,
//! Envoy/Istio JSON, Squid's native `access.log`, and the NCSA combined format (nginx,
//! Apache, Squid's `combined`). Each line is one `egress_request` seen by the proxy.
//!
//! Direction is the agent's: Envoy counts `BYTES_RECEIVED` from downstream (the agent) and
//! `BYTES_SENT` to it, so the agent sent `bytes_received` (`bytes_out`) and received
//! `bytes_sent` (`bytes_in`); Squid's byte count is what it delivered to the client
//! (`bytes_in`). The upstream address is the actual network path; the downstream address (or
//! the first `X-Forwarded-For` address) is the agent's source address, which joins lines that
//! carry no id to the incident by time window.

use super::super::item::{bounded, first, outcome_of, scalar, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::{FormatDef, Head, Item, LayoutPref};
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// The host of a URL, `host:port` or CONNECT target, without port or user info.
pub(crate) fn url_host(url: &str) -> &str {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host_port = after_scheme.split(['/', '?', '#']).next().unwrap_or(after_scheme);
    let host_port = host_port.rsplit_once('@').map(|(_, h)| h).unwrap_or(host_port);
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    }
}

/// Whether a host is inside the agent's own network (a cluster service, an `.internal` or
/// `.local` name, a private, loopback or link-local address, a name without a dot): calls to
/// it are part of the tool that made them, not egress.
pub(crate) fn internal_host(host: &str) -> bool {
    let h = url_host(host).trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() || !h.contains('.') && !h.contains(':') {
        return true;
    }
    if [".svc", ".cluster.local", ".internal", ".local", ".localhost", ".lan", ".intranet", ".corp"]
        .iter()
        .any(|s| h.ends_with(s))
        || h.contains(".svc.")
        || h == "localhost"
    {
        return true;
    }
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => a.is_private() || a.is_loopback() || a.is_link_local(),
        Ok(std::net::IpAddr::V6(a)) => {
            a.is_loopback() || (a.segments()[0] & 0xfe00) == 0xfc00 || (a.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => false,
    }
}

/// An address without its port.
fn addr(s: &str) -> &str {
    let s = s.trim();
    let s = s.split(',').next().unwrap_or(s).trim();
    url_host(s)
}

/// Envoy response flags that say the request's outcome is not known or it never left.
fn flags_outcome(flags: &str, code: Option<&str>) -> OutcomeEv {
    let f: Vec<&str> = flags.split(',').map(str::trim).filter(|f| !f.is_empty() && *f != "-").collect();
    let mk = |status, reason: &str| OutcomeEv {
        replayed: false,
        status: Some(status),
        code: Some(bounded(format!("{} {}", code.unwrap_or("-"), flags))),
        reason: Some(reason.into()),
    };
    if f.iter().any(|x| matches!(*x, "UT" | "SI" | "DT")) {
        return mk(OutcomeStatus::Unknown, "upstream timeout: the request may have been applied");
    }
    if f.iter().any(|x| matches!(*x, "DC" | "UC" | "UR" | "DPE" | "UPE")) {
        return mk(OutcomeStatus::Unknown, "connection terminated: the request may have been applied");
    }
    if f.iter().any(|x| matches!(*x, "NR" | "UH" | "UF" | "UO" | "RL" | "UAEX" | "RLSE" | "NC" | "LH")) {
        return mk(OutcomeStatus::Failed, "not forwarded upstream (no route, no healthy upstream, refused)");
    }
    match code {
        // Envoy's 0 and Squid's 000: the client went away, or no response came back.
        Some("0" | "000") | None => OutcomeEv {
            replayed: false,
            status: Some(OutcomeStatus::Unknown),
            code: code.map(str::to_string),
            reason: Some("no response recorded".into()),
        },
        Some(c) => outcome_of(c),
    }
}

/// The fields every proxy line fills.
struct Line<'a> {
    time: Option<&'a str>,
    /// `time` is when the transaction ended (Squid logs it then), not when it started.
    time_is_end: bool,
    method: Option<&'a str>,
    path: Option<&'a str>,
    code: Option<&'a str>,
    flags: Option<&'a str>,
    bytes_out: Option<&'a str>,
    bytes_in: Option<&'a str>,
    duration_ms: Option<&'a str>,
    source: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    host: Option<&'a str>,
    upstream: Option<&'a str>,
    user: Option<&'a str>,
}

fn dash<'a>(t: Option<&&'a str>) -> Option<&'a str> {
    t.copied().map(str::trim).filter(|s| !s.is_empty() && *s != "-")
}

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

fn item(l: Line<'_>, m: &FieldMapping, raw: &str) -> Item {
    let mut b = ItemBuilder::new(m);
    let logged = l.time.and_then(Time::parse);
    let duration = l.duration_ms.and_then(|d| d.parse::<i128>().ok()).filter(|d| (0..1_000_000_000).contains(d));
    let shifted = |by: i128| {
        logged
            .as_ref()
            .and_then(|t| t.nanos)
            .and_then(|n| n.checked_add(by.checked_mul(1_000_000)?))
            .and_then(Time::from_nanos)
    };
    let (start, end) = match (l.time_is_end, duration) {
        (false, Some(d)) => (logged.clone(), shifted(d)),
        (false, None) => (logged.clone(), None),
        // Without the elapsed time the start is not known: the record is ordered by its end.
        (true, Some(d)) => (shifted(-d).or_else(|| logged.clone()), logged.clone()),
        (true, None) => (logged.clone(), logged.clone()),
    };
    b.time(start.clone());
    let mut ev = Ev::new(EventKind::EgressRequest, Side::Proxy);
    ev.end = end;
    ev.start = start;
    ev.operation = l.method.map(str::to_string);
    let host = l
        .host
        .map(|h| url_host(h).to_string())
        .or_else(|| l.path.filter(|p| p.contains("://")).map(|p| url_host(p).to_string()));
    if let Some(h) = &host {
        ev.detail("host", h.clone());
    }
    ev.target = host.or_else(|| l.upstream.map(|u| addr(u).to_string()));
    if let Some(u) = l.upstream {
        ev.detail("upstream", u);
    }
    if let Some(p) = l.path {
        ev.detail("path", p);
    }
    if let Some(n) = l.bytes_out {
        ev.detail("bytes_out", n);
    }
    if let Some(n) = l.bytes_in {
        ev.detail("bytes_in", n);
    }
    if let Some(ua) = l.user_agent {
        ev.detail("user_agent", ua);
        b.text("user_agent", ua);
    }
    ev.outcome = flags_outcome(l.flags.unwrap_or("-"), l.code);
    if let Some(r) = l.request_id {
        b.field(Role::Link(LinkKey::RequestId), r, "request_id");
        ev.key(Role::Link(LinkKey::RequestId), r);
    }
    if !raw.is_empty() {
        b.text("line", raw);
    }
    // A `traceparent` the proxy logged names the span that made the request.
    if let Some(p) = b.value_of(Role::Link(LinkKey::ParentSpanId)) {
        ev.key(Role::Link(LinkKey::ParentSpanId), p);
    }
    if let Some(s) = l.source {
        let a = addr(s);
        b.field(Role::Link(LinkKey::SourceAddress), a, "source_address");
        ev.detail("source_address", a);
    }
    if let Some(u) = l.user {
        ev.principal = Some(bounded(u.to_string()));
    }
    if let Some(p) = l.path {
        b.text("path", p);
    }
    b.evidence(ev);
    b.finish()
}

/// Envoy's default text format.
pub(crate) struct EnvoyText;

/// `[START] "METHOD PATH PROTO" CODE FLAGS …`.
fn is_envoy_like(line: &str) -> bool {
    line.starts_with('[') && line.find(']').is_some_and(|c| line.get(c + 1..c + 3) == Some(" \""))
}

fn is_istio(t: &[&str]) -> bool {
    t.get(4).is_some_and(|x| x.parse::<u64>().is_err() && *x != "-") || t.len() >= 20
}

impl FormatDef for EnvoyText {
    fn name(&self) -> &'static str {
        "envoy_text"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["envoy", "envoy-default"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "Envoy default text access log"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        is_envoy_like(h.first_line) && !is_istio(&tokens(h.first_line))
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Text
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        EnvoyJson.read_json(v, m, out)
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        if !is_envoy_like(line) {
            return None;
        }
        let t = tokens(line);
        if is_istio(&t) {
            return IstioText.read_text(line, m);
        }
        let mut req = t.get(1)?.split_whitespace();
        let (method, path) = (req.next().filter(|x| *x != "-"), req.next().filter(|x| *x != "-"));
        Some(item(
            Line {
                time: t.first().copied(),
                time_is_end: false,
                method,
                path,
                code: dash(t.get(2)),
                flags: dash(t.get(3)),
                bytes_out: dash(t.get(4)),
                bytes_in: dash(t.get(5)),
                duration_ms: dash(t.get(6)),
                source: dash(t.get(8)),
                user_agent: dash(t.get(9)),
                request_id: dash(t.get(10)),
                host: dash(t.get(11)),
                upstream: dash(t.get(12)),
                user: None,
            },
            m,
            line,
        ))
    }
}

/// Istio's default text format (Envoy's plus response details, addresses, cluster, route).
pub(crate) struct IstioText;

impl FormatDef for IstioText {
    fn name(&self) -> &'static str {
        "istio_text"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["istio-proxy"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "Istio default text access log (sidecar or egress gateway)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        is_envoy_like(h.first_line) && is_istio(&tokens(h.first_line))
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Text
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        EnvoyJson.read_json(v, m, out)
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        if !is_envoy_like(line) {
            return None;
        }
        let t = tokens(line);
        let mut req = t.get(1)?.split_whitespace();
        let (method, path) = (req.next().filter(|x| *x != "-"), req.next().filter(|x| *x != "-"));
        let mut b = item(
            Line {
                time: t.first().copied(),
                time_is_end: false,
                method,
                path,
                code: dash(t.get(2)),
                flags: dash(t.get(3)),
                bytes_out: dash(t.get(7)),
                bytes_in: dash(t.get(8)),
                duration_ms: dash(t.get(9)),
                source: dash(t.get(19)).or_else(|| dash(t.get(11))),
                user_agent: dash(t.get(12)),
                request_id: dash(t.get(13)),
                host: dash(t.get(14)).or_else(|| dash(t.get(20))),
                upstream: dash(t.get(15)),
                user: None,
            },
            m,
            line,
        );
        if let (Some(ev), Some(c)) = (b.evidence.first_mut(), dash(t.get(16))) {
            ev.detail("upstream_cluster", c);
        }
        if let (Some(ev), Some(d)) = (b.evidence.first_mut(), dash(t.get(4))) {
            ev.detail("response_code_details", d);
        }
        Some(b)
    }
}

/// Envoy / Istio JSON access log.
pub(crate) struct EnvoyJson;

const ENVOY_KEYS: [&str; 12] = [
    "response_code",
    "upstream_host",
    "authority",
    "start_time",
    "upstream_cluster",
    "response_flags",
    "bytes_sent",
    "bytes_received",
    "x_forwarded_for",
    "downstream_remote_address",
    "upstream_service_time",
    "requested_server_name",
];

impl FormatDef for EnvoyJson {
    fn name(&self) -> &'static str {
        "envoy_json"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["istio", "istio-json"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "Envoy / Istio JSON access log"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.obj().is_some_and(|o| ENVOY_KEYS.iter().filter(|k| o.has(k)).count() >= 3)
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Text
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(envoy_json(e, m))),
            _ => out.push(envoy_json(v, m)),
        }
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        EnvoyText.read_text(line, m)
    }
}

fn envoy_json(v: &Value, m: &FieldMapping) -> Item {
    let s = |keys: &[&str]| first(v, keys);
    let (method, path, code, flags) = (
        s(&["method", ":method", "request_method"]),
        s(&["path", ":path", "x_envoy_original_path"]),
        s(&["response_code", "status", "status_code"]),
        s(&["response_flags"]),
    );
    let (rx, tx, dur) = (s(&["bytes_received"]), s(&["bytes_sent"]), s(&["duration"]));
    let (src, ua, rid) = (
        s(&["downstream_remote_address", "x_forwarded_for", "client_ip"]),
        s(&["user_agent"]),
        s(&["request_id", "x_request_id"]),
    );
    let (host, up, time) = (
        s(&["authority", ":authority", "host", "requested_server_name"]),
        s(&["upstream_host"]),
        s(&["start_time", "timestamp", "time"]),
    );
    let mut it = item(
        Line {
            time: time.as_deref(),
            time_is_end: false,
            method: method.as_deref(),
            path: path.as_deref(),
            code: code.as_deref(),
            flags: flags.as_deref(),
            bytes_out: rx.as_deref(),
            bytes_in: tx.as_deref(),
            duration_ms: dur.as_deref(),
            source: src.as_deref(),
            user_agent: ua.as_deref(),
            request_id: rid.as_deref(),
            host: host.as_deref(),
            upstream: up.as_deref(),
            user: None,
        },
        m,
        "",
    );
    // Every other field (session headers, cluster names) is read by the semantics table.
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let extra = b.finish();
    it.absorb(extra);
    if let (Some(ev), Some(c)) = (it.evidence.first_mut(), s(&["upstream_cluster"])) {
        ev.detail("upstream_cluster", c);
    }
    it
}

/// Kong Gateway's JSON log plugins (`file-log`, `http-log`, `tcp-log`…): one JSON object per
/// request.
pub(crate) struct Kong;

impl FormatDef for Kong {
    fn name(&self) -> &'static str {
        "kong"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["kong-file-log", "kong-http-log"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "Kong Gateway JSON log plugins (file-log, http-log): request, response, service, route, tries, latencies"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.has("upstream_uri") && h.has("latencies") && (h.has("service") || h.has("route") || h.has("tries"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(kong(e, m))),
            _ => out.push(kong(v, m)),
        }
    }
}

/// One Kong log entry. The destination is the **service** Kong proxied to (`service.host`),
/// and the network path the last try's `ip:port`; `request.url` and the `host` header name
/// Kong's own listener (the gateway the agent called), not where the request went. The time is
/// `started_at` (epoch milliseconds), the duration `latencies.request`; `request.size` is what
/// the caller sent, `response.size` what it got back. A `499` is the caller closing the
/// connection before the answer: unknown, not a rejection.
fn kong(v: &Value, m: &FieldMapping) -> Item {
    let s = |keys: &[&str]| first(v, keys);
    let time = v.get("started_at").and_then(Time::of_json).map(|t| t.text.clone());
    let upstream = v
        .get("tries")
        .and_then(Value::as_array)
        .and_then(|t| t.last())
        .and_then(|t| Some(format!("{}:{}", first(t, &["ip"])?, first(t, &["port"]).unwrap_or_default())));
    let host = s(&["service.host"]);
    let (method, path, code) = (s(&["request.method"]), s(&["upstream_uri", "request.uri"]), s(&["response.status"]));
    let (sent, got, dur) = (s(&["request.size"]), s(&["response.size"]), s(&["latencies.request"]));
    let rid = s(&["request.headers.x-request-id", "request.id", "response.headers.x-kong-request-id"]);
    let src = s(&["client_ip"]);
    let mut it = item(
        Line {
            time: time.as_deref(),
            time_is_end: false,
            method: method.as_deref(),
            path: path.as_deref(),
            code: code.as_deref(),
            flags: None,
            bytes_out: sent.as_deref(),
            bytes_in: got.as_deref(),
            duration_ms: dur.as_deref(),
            source: src.as_deref(),
            user_agent: None,
            request_id: rid.as_deref(),
            host: host.as_deref(),
            upstream: upstream.as_deref(),
            user: s(&["consumer.username", "consumer.custom_id"]).as_deref(),
        },
        m,
        "",
    );
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let extra = b.finish();
    it.absorb(extra);
    if let Some(ev) = it.evidence.first_mut() {
        if let Some(r) = s(&["route.name", "service.name"]) {
            ev.detail("route", r);
        }
        if let Some(u) = s(&["upstream_status"]) {
            ev.detail("upstream_status", u);
        }
        mark_replay(ev, v.pointer("/response/headers"));
    }
    it
}

/// A 2xx answer carrying `Idempotent-Replayed: true` (Stripe's header, which other payment
/// APIs copy) is the server's stored result of an earlier request with the same idempotency
/// key, replayed: no new effect. `Original-Request` (Stripe) names that earlier request.
pub(crate) fn mark_replay(ev: &mut Ev, headers: Option<&Value>) {
    let Some(h) = headers.and_then(Value::as_object) else { return };
    let get = |name: &str| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| scalar(v));
    let replayed = get("idempotent-replayed").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !replayed || ev.outcome.status != Some(OutcomeStatus::Succeeded) {
        return;
    }
    ev.outcome.replayed = true;
    ev.outcome.reason = Some("idempotent replay (Idempotent-Replayed: true): no new effect".into());
    if let Some(o) = get("original-request") {
        ev.detail("original_request", o);
    }
}

/// Traefik's JSON access log (`accessLog.format: json`): one object per request.
pub(crate) struct Traefik;

impl FormatDef for Traefik {
    fn name(&self) -> &'static str {
        "traefik"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["traefik-json", "traefik-access-log"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "Traefik JSON access log: RequestHost, RequestMethod, DownstreamStatus, OriginStatus, StartUTC, Duration (ns), request_/origin_ headers"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.has("DownstreamStatus") && h.has("RequestMethod") && (h.has("StartUTC") || h.has("OriginStatus"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(traefik(e, m))),
            _ => out.push(traefik(v, m)),
        }
    }
}

/// One Traefik access-log entry. The destination is the host the caller asked for
/// (`RequestHost`: for an egress gateway, the external API) and the network path the service
/// Traefik forwarded to (`ServiceAddr`); the status is what the caller got
/// (`DownstreamStatus`: a `499` when it hung up, with `OriginStatus` `0`, no answer yet), the
/// origin's kept as the detail `origin_status`. `Duration` is nanoseconds. Headers are
/// flattened into `request_<Name>` and, for the response, `origin_<Name>` (`downstream_<Name>`
/// as sent back): read by the semantics table, and `origin_Idempotent-Replayed` marks a replay.
fn traefik(v: &Value, m: &FieldMapping) -> Item {
    let s = |keys: &[&str]| first(v, keys);
    let time = s(&["StartUTC", "StartLocal"]);
    let dur = v.get("Duration").and_then(Value::as_u64).map(|ns| format!("{}", ns / 1_000_000));
    let rid = s(&["request_X-Request-Id", "request_X-Request-ID", "request_x-request-id"]);
    let mut it = item(
        Line {
            time: time.as_deref(),
            time_is_end: false,
            method: s(&["RequestMethod"]).as_deref(),
            path: s(&["RequestPath"]).as_deref(),
            code: s(&["DownstreamStatus"]).as_deref(),
            flags: None,
            bytes_out: s(&["RequestContentSize"]).as_deref(),
            bytes_in: s(&["DownstreamContentSize"]).as_deref(),
            duration_ms: dur.as_deref(),
            source: s(&["ClientHost"]).as_deref(),
            user_agent: s(&["request_User-Agent"]).as_deref(),
            request_id: rid.as_deref(),
            host: s(&["RequestHost", "RequestAddr"]).as_deref(),
            upstream: s(&["ServiceAddr", "ServiceURL"]).as_deref(),
            user: s(&["ClientUsername"]).as_deref().filter(|u| *u != "-"),
        },
        m,
        "",
    );
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let extra = b.finish();
    it.absorb(extra);
    if let Some(ev) = it.evidence.first_mut() {
        if let Some(r) = s(&["RouterName", "ServiceName"]) {
            ev.detail("route", r);
        }
        if let Some(o) = s(&["OriginStatus"]) {
            ev.detail("origin_status", o);
        }
        // The origin's response headers, by their names.
        let origin: serde_json::Map<String, Value> = v
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, x)| Some((k.strip_prefix("origin_")?.to_string(), x.clone())))
            .take(64)
            .collect();
        mark_replay(ev, Some(&Value::Object(origin)));
    }
    it
}

/// Squid's native access.log.
pub(crate) struct Squid;

fn is_squid(line: &str) -> bool {
    let mut it = line.split_ascii_whitespace();
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

impl FormatDef for Squid {
    fn name(&self) -> &'static str {
        "squid"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["squid-native"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "Squid native access.log"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        is_squid(h.first_line)
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Text
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        if !is_squid(line) {
            return CombinedLog.read_text(line, m);
        }
        let t: Vec<&str> = line.split_ascii_whitespace().collect();
        let code = t.get(3).and_then(|c| c.split_once('/'));
        let url = t.get(6).copied();
        let elapsed = t.get(1).copied();
        let mut it = item(
            Line {
                time: t.first().copied(),
                time_is_end: true,
                method: t.get(5).copied(),
                path: url,
                code: code.map(|(_, s)| s),
                flags: None,
                bytes_out: None,
                bytes_in: t.get(4).copied(),
                duration_ms: elapsed,
                source: t.get(2).copied(),
                user_agent: None,
                request_id: None,
                host: url,
                upstream: t.get(8).and_then(|h| h.split_once('/')).map(|(_, p)| p).filter(|p| *p != "-"),
                user: dash(t.get(7)),
            },
            m,
            line,
        );
        if let (Some(ev), Some((result, status))) = (it.evidence.first_mut(), code) {
            ev.detail("squid_result", result);
            if result.contains("DENIED") {
                ev.outcome = OutcomeEv {
                    status: Some(OutcomeStatus::Failed),
                    code: Some(result.to_string()),
                    reason: Some("denied by the proxy".into()),
                    replayed: false,
                };
            } else if t.get(5).copied() == Some("CONNECT") {
                ev.outcome = tunnel_outcome(&format!("{result}/{status}"));
            }
        }
        Some(it)
    }
}

/// A `CONNECT` the proxy answered 2xx: the tunnel was established. The requests inside it
/// (HTTPS) are invisible to the proxy, so this says nothing of their outcome.
fn tunnel_outcome(code: &str) -> OutcomeEv {
    OutcomeEv {
        status: None,
        code: Some(bounded(code.to_string())),
        reason: Some("tunnel established: the outcome of the requests inside it is not visible to the proxy".into()),
        replayed: false,
    }
}

/// The NCSA combined log format (nginx, Apache, Squid's `combined`).
pub(crate) struct CombinedLog;

fn combined(line: &str) -> Option<Vec<&str>> {
    let t = tokens(line);
    let date = t.get(3)?;
    let ok = date.contains('/')
        && date.contains(':')
        && t.get(4).is_some_and(|r| r.split_whitespace().count() >= 2)
        && t.get(5).is_some_and(|c| c.parse::<u16>().is_ok());
    ok.then_some(t)
}

impl FormatDef for CombinedLog {
    fn name(&self) -> &'static str {
        "combined_log"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["nginx", "apache", "squid-combined", "common-log"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("egress")
    }
    fn what(&self) -> &'static str {
        "NCSA common/combined access log (nginx, Apache, Squid's combined format)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        combined(h.first_line).is_some()
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Text
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        let t = combined(line)?;
        let mut req = t.get(4)?.split_whitespace();
        let (method, path) = (req.next(), req.next());
        let mut it = item(
            Line {
                time: t.get(3).copied(),
                time_is_end: false,
                method,
                path,
                code: t.get(5).copied(),
                flags: None,
                bytes_out: None,
                bytes_in: dash(t.get(6)),
                duration_ms: None,
                source: t.first().copied(),
                user_agent: dash(t.get(8)),
                request_id: None,
                host: path.filter(|p| p.contains("://") || method == Some("CONNECT")),
                upstream: None,
                user: dash(t.get(2)),
            },
            m,
            line,
        );
        let code = t.get(5).copied().unwrap_or_default();
        if method == Some("CONNECT") && code.starts_with('2') {
            if let Some(ev) = it.evidence.first_mut() {
                ev.outcome = tunnel_outcome(code);
            }
        }
        Some(it)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_bytes_are_read_from_the_agents_side() {
        let m = FieldMapping::default();
        let line = r#"[2026-11-21T14:02:42.329Z] "POST /v1/tickets HTTP/1.1" 504 UT 1187 24 30001 - "10.42.3.17" "agent/2.8" "3f6c2a9e-8d41-4b7a-9e05-c1d2b7a4f816" "api.tickets.internal" "10.42.8.21:8443""#;
        let it = EnvoyText.read_text(line, &m).expect("an envoy line");
        let ev = &it.evidence[0];
        assert_eq!(ev.detail_of("bytes_out"), Some("1187"));
        assert_eq!(ev.detail_of("bytes_in"), Some("24"));
        assert_eq!(ev.detail_of("host"), Some("api.tickets.internal"));
        assert_eq!(ev.detail_of("source_address"), Some("10.42.3.17"));
        assert_eq!(ev.outcome.status, Some(OutcomeStatus::Unknown));
        assert_eq!(ev.key_of(Role::Link(LinkKey::RequestId)), Some("3f6c2a9e-8d41-4b7a-9e05-c1d2b7a4f816"));
    }

    #[test]
    fn squid_connect_and_denied() {
        let m = FieldMapping::default();
        let it = Squid
            .read_text("1795269762.101    512 10.42.3.17 TCP_DENIED/403 3921 CONNECT paste.example.net:443 svc-agent HIER_NONE/- text/html", &m)
            .expect("a squid line");
        let ev = &it.evidence[0];
        assert_eq!(ev.target.as_deref(), Some("paste.example.net"));
        assert_eq!(ev.outcome.status, Some(OutcomeStatus::Failed));
        assert_eq!(ev.principal.as_deref(), Some("svc-agent"));
        assert_eq!(url_host("https://user:pw@api.example.com:8443/x?y=1"), "api.example.com");
    }

    #[test]
    fn squid_time_is_the_end_and_a_tunnel_is_no_outcome() {
        let m = FieldMapping::default();
        let it = Squid
            .read_text("1795269852.090  30007 10.42.3.17 TCP_TUNNEL/200 3920 CONNECT payments.example.com:443 billing-agent HIER_DIRECT/203.0.113.40 -", &m)
            .expect("a squid line");
        let ev = &it.evidence[0];
        assert_eq!(ev.end.as_ref().map(|t| t.text.as_str()), Some("2026-11-21T14:04:12.090Z"));
        assert_eq!(ev.start.as_ref().map(|t| t.text.as_str()), Some("2026-11-21T14:03:42.083Z"));
        assert_eq!(it.time, ev.start);
        assert_eq!(ev.outcome.status, None);
        let it = CombinedLog
            .read_text(r#"10.42.3.17 - billing-agent [21/Nov/2026:15:04:14 +0100] "CONNECT payments.example.com:443 HTTP/1.1" 200 5034 "-" "python-httpx/0.28.1" TCP_TUNNEL:HIER_DIRECT"#, &m)
            .expect("a combined line");
        assert_eq!(it.evidence[0].outcome.status, None);
        assert_eq!(it.evidence[0].target.as_deref(), Some("payments.example.com"));
    }
}
