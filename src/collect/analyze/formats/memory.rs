//! Agent memory: mem0 (exports, search and add results, history rows) and generic vector
//! stores (a Chroma `get()` dump, Qdrant points, Pinecone vectors).
//!
//! A memory record (an id with its content) is state, not an event: it is what a read
//! returned and what a write put there, and its record is cited as the content. Operations
//! are events: a mem0 history row or add result with `event` `ADD`/`UPDATE`/`DELETE` is a
//! `memory_write` (one per row; one per add call when a call's results are listed
//! together), a search result list (with `score`s) one `memory_read` naming every id it
//! returned. mem0's `user_id` is the subject (the end user the memory is about).

use super::super::item::{bounded, first, Ev, Item, ItemBuilder, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::generic::{memory_kind, TIME_FIELDS};
use super::{FormatDef, Head};
use crate::collect::analysis::EventKind;
use serde_json::Value;

/// mem0 memory exports, results and history.
pub(crate) struct Mem0;

fn mem0_like(k: &super::Keys) -> bool {
    (k.has("memory") && (k.has("hash") || k.has("user_id") || k.has("agent_id") || k.has("run_id") || k.has("score")))
        || (k.str_of("event").is_some_and(|e| matches!(e, "ADD" | "UPDATE" | "DELETE" | "NONE"))
            && (k.has("memory") || k.has("new_memory") || k.has("old_memory") || k.has("memory_id")))
}

/// An element of mem0's platform event list (`GET /v1/events/`).
fn mem0_event(k: &super::Keys) -> bool {
    k.has("event_type") && (k.has("payload") || k.has("results"))
}

impl FormatDef for Mem0 {
    fn name(&self) -> &'static str {
        "mem0"
    }
    fn kind(&self) -> Option<&'static str> {
        Some("memory")
    }
    fn what(&self) -> &'static str {
        "mem0 memories: get_all/search/add results and history rows"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.obj().is_some_and(mem0_like)
            || h.inner("results").is_some_and(|k| mem0_like(k) || mem0_event(k))
            || h.inner("memories").is_some_and(mem0_like)
            || h.obj().is_some_and(mem0_event)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        let events: Vec<&Value> = match v {
            Value::Array(l) => l.iter().filter(|e| e.get("event_type").is_some()).collect(),
            Value::Object(o) if o.get("event_type").is_some() => vec![v],
            Value::Object(o) => o
                .get("results")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter(|e| e.get("event_type").is_some()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if !events.is_empty() {
            for e in events {
                out.push(platform_event(e, m));
            }
            return;
        }
        match v {
            Value::Array(list) => {
                let rows: Vec<&Value> = list.iter().collect();
                results(None, &rows, m, out);
            }
            Value::Object(o) => {
                if let Some(Value::Array(list)) = o.get("results").or_else(|| o.get("memories")) {
                    let rows: Vec<&Value> = list.iter().collect();
                    results(Some(v), &rows, m, out);
                } else {
                    results(None, &[v], m, out);
                }
            }
            _ => {}
        }
    }
}

/// One mem0 platform event: a SEARCH is a read of the memories it returned, an ADD, UPDATE
/// or DELETE a write of those it changed. Its own context is its payload (`user_id` is the
/// subject, `run_id` the session) and metadata; the memories it lists are named by id only:
/// their `run_id` is the session that wrote them, not this operation's.
fn platform_event(e: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    for (k, x) in e.as_object().into_iter().flatten() {
        if k != "results" {
            b.walk_field(k, k, x);
        }
    }
    for p in ["payload.run_id", "run_id", "payload.session_id"] {
        if let Some(r) = first(e, &[p]) {
            b.field(Role::Ident(crate::bundle::manifest::IdentName::SessionId), &r, p);
        }
    }
    if let Some(id) = first(e, &["id", "event_id"]) {
        b.field(Role::Link(LinkKey::EventId), &id, "id");
    }
    let mut ids: Vec<String> = Vec::new();
    for r in e.get("results").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        if let Some(id) = first(r, &["id", "memory_id"]) {
            b.field(Role::Link(LinkKey::MemoryId), &id, "results.id");
            ids.push(id);
        }
        for x in r.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(s) = super::super::item::scalar(x) {
                b.token(&s);
            }
        }
    }
    let start = b.time_from(e, &["started_at", "created_at"]);
    let ty = first(e, &["event_type"]).unwrap_or_default().to_ascii_uppercase();
    let kind = match ty.as_str() {
        "ADD" | "UPDATE" | "DELETE" | "DELETE_ALL" | "BATCH_UPDATE" | "BATCH_DELETE" => Some(EventKind::MemoryWrite),
        "SEARCH" | "GET" | "GET_ALL" | "HISTORY" => Some(EventKind::MemoryRead),
        _ => memory_kind(&ty),
    };
    if let Some(kind) = kind {
        let mut ev = Ev::new(kind, Side::Server);
        ev.start = start;
        ev.end = e.get("completed_at").and_then(super::super::values::Time::of_json);
        ev.target = Some("mem0".into());
        ev.operation = Some(ty.to_ascii_lowercase());
        if let Some(id) = first(e, &["id", "event_id"]) {
            ev.key(Role::Link(LinkKey::EventId), &id);
        }
        for id in &ids {
            ev.key(Role::Link(LinkKey::MemoryId), id);
        }
        if !ids.is_empty() {
            ev.detail("memory_ids", ids.join(","));
        }
        if let Some(s) = first(e, &["status"]) {
            ev.outcome = super::super::item::outcome_of(&s);
        }
        b.evidence(ev);
    }
    b.finish()
}

/// One item per memory row; the operation(s) they show as events.
fn results(call: Option<&Value>, rows: &[&Value], m: &FieldMapping, out: &mut Vec<Item>) {
    let op = call.and_then(|c| first(c, &["op", "operation", "method", "action", "type"]));
    let mut items: Vec<Item> = Vec::new();
    let mut writes: Vec<(String, String)> = Vec::new();
    let mut reads: Vec<String> = Vec::new();
    let start = call.and_then(|c| {
        let mut b = ItemBuilder::new(m);
        b.time_from(c, &TIME_FIELDS)
    });
    for row in rows {
        let mut b = ItemBuilder::new(m);
        if let Some(c) = call {
            for (k, x) in c.as_object().into_iter().flatten() {
                if !matches!(k.as_str(), "results" | "memories" | "relations") {
                    b.walk_field(k, k, x);
                }
            }
        }
        b.walk("", row);
        let history = row.get("memory_id").is_some();
        let id = first(row, if history { &["memory_id"] } else { &["id", "memory_id"] });
        if let Some(id) = &id {
            b.field(Role::Link(LinkKey::MemoryId), id, if history { "memory_id" } else { "id" });
        }
        let t = b.time_from(row, &["updated_at", "created_at", "timestamp"]);
        let event = first(row, &["event"]).map(|e| e.to_ascii_uppercase());
        match (event.as_deref(), &id) {
            (Some("ADD" | "UPDATE" | "DELETE"), Some(id)) if history || call.is_none() => {
                let mut ev = Ev::new(EventKind::MemoryWrite, Side::Server);
                ev.start = t;
                ev.target = Some("mem0".into());
                ev.operation = event.as_deref().map(str::to_ascii_lowercase);
                ev.key(Role::Link(LinkKey::MemoryId), id);
                ev.detail("memory_ids", id.clone());
                if let Some(c) = first(row, &["new_memory", "memory"]) {
                    ev.detail("content", c);
                }
                b.evidence(ev);
            }
            (Some(e @ ("ADD" | "UPDATE" | "DELETE")), Some(id)) => writes.push((e.to_string(), id.clone())),
            _ if row.get("score").is_some() || op.as_deref().and_then(memory_kind) == Some(EventKind::MemoryRead) => {
                if let Some(id) = &id {
                    reads.push(id.clone());
                }
            }
            _ => {}
        }
        items.push(b.finish());
    }
    // The call's results listed together are one operation.
    if let Some(first_item) = items.first_mut() {
        if !writes.is_empty() {
            let mut ev = Ev::new(EventKind::MemoryWrite, Side::Server);
            ev.start = start.clone().or_else(|| first_item.time.clone());
            let ops: Vec<&str> = writes.iter().map(|(e, _)| e.as_str()).collect();
            ev.operation = Some(bounded(ops.join(",")));
            for (_, id) in &writes {
                ev.key(Role::Link(LinkKey::MemoryId), id);
            }
            ev.detail("memory_ids", writes.iter().map(|(_, i)| i.as_str()).collect::<Vec<_>>().join(","));
            first_item.evidence.push(ev);
        }
        if !reads.is_empty() {
            let mut ev = Ev::new(EventKind::MemoryRead, Side::Server);
            ev.start = start.or_else(|| first_item.time.clone());
            ev.operation = Some(op.unwrap_or_else(|| "search".into()));
            for id in &reads {
                ev.key(Role::Link(LinkKey::MemoryId), id);
            }
            ev.detail("memory_ids", reads.join(","));
            first_item.evidence.push(ev);
        }
    }
    out.extend(items);
}

/// Generic vector-store exports.
pub(crate) struct VectorStore;

impl FormatDef for VectorStore {
    fn name(&self) -> &'static str {
        "vector_store"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["chroma", "qdrant", "pinecone"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("memory")
    }
    fn what(&self) -> &'static str {
        "vector-store exports: Chroma get() {ids, documents, metadatas}, Qdrant points, Pinecone vectors"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        (h.has("ids") && (h.has("documents") || h.has("metadatas")))
            || h.inner("points").is_some_and(|p| p.has("payload"))
            || h.inner("result").is_some_and(|r| r.has("points"))
            || h.has("vectors") && h.has("namespace")
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        if let Some(Value::Array(ids)) = v.get("ids") {
            let col = |k: &str, i: usize| v.get(k).and_then(|c| c.get(i));
            for (i, id) in ids.iter().enumerate() {
                let mut b = ItemBuilder::new(m);
                if let Some(id) = id.as_str() {
                    b.field(Role::Link(LinkKey::MemoryId), id, "ids");
                }
                if let Some(d) = col("documents", i) {
                    b.walk_field("documents", "documents", d);
                }
                if let Some(md) = col("metadatas", i) {
                    b.walk("metadatas", md);
                    b.time_from(md, &TIME_FIELDS);
                }
                out.push(b.finish());
            }
            return;
        }
        let points = v
            .get("points")
            .or_else(|| v.get("result").and_then(|r| r.get("points")))
            .or_else(|| v.get("result").filter(|r| r.is_array()));
        if let Some(Value::Array(points)) = points {
            for p in points {
                out.push(point(p, m, "id", "payload"));
            }
            return;
        }
        if let Some(Value::Object(vectors)) = v.get("vectors") {
            for p in vectors.values() {
                out.push(point(p, m, "id", "metadata"));
            }
            return;
        }
        super::generic::read_value(v, m, out);
    }
}

fn point(p: &Value, m: &FieldMapping, id_key: &str, payload_key: &str) -> Item {
    let mut b = ItemBuilder::new(m);
    if let Some(id) = p.get(id_key).and_then(super::super::item::scalar) {
        b.field(Role::Link(LinkKey::MemoryId), &id, id_key);
    }
    if let Some(pl) = p.get(payload_key) {
        b.walk(payload_key, pl);
        b.time_from(pl, &TIME_FIELDS);
    }
    b.finish()
}
