//! `custody search`: which other incidents touched the same destination, memory record,
//! principal or session — a single run, or a broader pattern across sessions and rollout
//! waves? Matching is done on each bundle's verified, typed analysis (`custody-analysis/v2`):
//! its events, never its raw evidence.

use serde::Serialize;

use crate::collect::analysis::{Analysis, Event, EventKind, NodeName};

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Query {
    /// A destination host (egress requests to it; compared without case, a trailing dot or a
    /// port).
    Host(String),
    /// A memory record id (events reading or writing it).
    MemoryId(String),
    /// A principal (events that ran as it, or name it as their tool principal).
    Principal(String),
    /// A session id (events carrying it).
    Session(String),
}

impl Query {
    /// The flag's name (`host`, `memory_id`, `principal`, `session`).
    pub fn name(&self) -> &'static str {
        match self {
            Query::Host(_) => "host",
            Query::MemoryId(_) => "memory_id",
            Query::Principal(_) => "principal",
            Query::Session(_) => "session",
        }
    }

    /// The value searched for.
    pub fn value(&self) -> &str {
        match self {
            Query::Host(v) | Query::MemoryId(v) | Query::Principal(v) | Query::Session(v) => v,
        }
    }
}

/// A host as compared: lower case, without a trailing dot or a port.
fn host_key(h: &str) -> String {
    let h = h.trim().to_ascii_lowercase();
    let h = match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
        _ => h,
    };
    h.trim_end_matches('.').to_string()
}

/// Whether a comma-separated id field lists `v`.
fn lists(field: Option<&String>, v: &str) -> bool {
    field.is_some_and(|f| f.split(',').any(|x| x == v))
}

/// Does `e` match `q`?
pub fn event_matches(e: &Event, q: &Query) -> bool {
    match q {
        Query::Host(h) => {
            let want = host_key(h);
            e.kind == EventKind::EgressRequest
                && (e.target.as_deref().is_some_and(|t| host_key(t) == want)
                    || e.detail.get("host").is_some_and(|t| host_key(t) == want))
        }
        Query::MemoryId(m) => {
            lists(e.ids.get("memory_id"), m)
                || (matches!(e.kind, EventKind::MemoryRead | EventKind::MemoryWrite)
                    && e.detail.values().any(|v| v.split(',').any(|x| x.trim() == m)))
        }
        Query::Principal(p) => e.principal.as_deref() == Some(p.as_str()) || lists(e.ids.get("tool_principal"), p),
        Query::Session(s) => lists(e.ids.get("session_id"), s),
    }
}

/// One matching event, in short.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Its id in the bundle's analysis.
    pub event: String,
    /// Its kind.
    pub kind: EventKind,
    /// When it started.
    pub at: Option<String>,
    /// What it acted on.
    pub target: Option<String>,
    /// Who it ran as.
    pub principal: Option<String>,
    /// The session ids it carries.
    pub session: Option<String>,
}

/// What one bundle's analysis holds of the query.
#[derive(Debug, Clone, Serialize)]
pub struct BundleHits {
    /// The chain's session, deployment and rollout wave of the incident (null when unknown).
    pub session: Option<String>,
    /// The deployment that served it.
    pub deployment: Option<String>,
    /// The rollout wave.
    pub wave: Option<String>,
    /// The matching events, in the analysis' order.
    pub events: Vec<Hit>,
}

/// The events of `a` that match `q`, with the incident's chain (None: no event matches).
pub fn search(a: &Analysis, q: &Query) -> Option<BundleHits> {
    let events: Vec<Hit> = a
        .events
        .iter()
        .filter(|e| event_matches(e, q))
        .map(|e| Hit {
            event: e.id.clone(),
            kind: e.kind,
            at: e.start.as_ref().map(|t| t.at.clone()),
            target: e.target.clone(),
            principal: e.principal.clone(),
            session: e.ids.get("session_id").cloned(),
        })
        .collect();
    if events.is_empty() {
        return None;
    }
    let node = |n: NodeName| a.chain.nodes.iter().find(|x| x.name == n).and_then(|x| x.value.clone());
    Some(BundleHits {
        session: node(NodeName::Session),
        deployment: node(NodeName::Deployment),
        wave: node(NodeName::Wave),
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_compare_without_case_port_or_trailing_dot() {
        assert_eq!(host_key("API.Payrail.example.:443"), "api.payrail.example");
        assert_eq!(host_key("[::1]:8080"), "[::1]:8080".to_string().to_ascii_lowercase());
        assert_eq!(host_key("example.com"), "example.com");
    }
}
