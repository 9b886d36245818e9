//! OTLP/JSON traces and logs (`TracesData`, `LogsData`, the Export*ServiceRequest bodies
//! and the file exporter's lines): one item per span or log record, with resource
//! attributes inherited and OTel GenAI / OpenInference attributes mapped to identifiers.

use super::generic::{bounded, obs_value, rfc3339_from_nanos, timestamp_of, Item};
use super::ids::push_obs;
use super::mapping::FieldMapping;
use super::types::{Fact, IdentName};
use serde_json::Value;

/// Attribute list flattened to `(key, scalar as string)`.
type Attrs<'a> = Vec<(&'a str, String)>;

/// OTLP AnyValue as a string, for scalar kinds.
fn any_value_string(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    for key in ["stringValue", "intValue", "boolValue", "doubleValue", "bytesValue"] {
        match obj.get(key) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Number(n)) => return Some(n.to_string()),
            Some(Value::Bool(b)) => return Some(b.to_string()),
            _ => {}
        }
    }
    None
}

fn attrs_of(v: Option<&Value>) -> Attrs<'_> {
    let mut out = Vec::new();
    if let Some(Value::Array(list)) = v {
        for kv in list {
            let key = kv.get("key").and_then(Value::as_str);
            let val = kv.get("value").and_then(any_value_string);
            if let (Some(k), Some(val)) = (key, val) {
                out.push((k, val));
            }
        }
    }
    out
}

fn attr<'a>(attrs: &'a Attrs<'_>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| attrs.iter().find(|(ak, v)| ak == k && !v.trim().is_empty()).map(|(_, v)| v.as_str()))
}

fn array<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_array)).map(Vec::as_slice).unwrap_or_default()
}

/// Items of one OTLP/JSON object (or an array of them).
pub(crate) fn otlp_items(v: &Value, mapping: &FieldMapping, out: &mut Vec<Item>) {
    if let Value::Array(list) = v {
        for e in list {
            otlp_object(e, mapping, out);
        }
    } else {
        otlp_object(v, mapping, out);
    }
}

fn otlp_object(v: &Value, mapping: &FieldMapping, out: &mut Vec<Item>) {
    for rs in array(v, &["resourceSpans", "resource_spans"]) {
        let res = attrs_of(rs.get("resource").and_then(|r| r.get("attributes")));
        for ss in array(rs, &["scopeSpans", "scope_spans", "instrumentationLibrarySpans"]) {
            for span in array(ss, &["spans"]) {
                out.push(otlp_entry(span, &res, mapping, true));
            }
        }
    }
    for rl in array(v, &["resourceLogs", "resource_logs"]) {
        let res = attrs_of(rl.get("resource").and_then(|r| r.get("attributes")));
        for sl in array(rl, &["scopeLogs", "scope_logs", "instrumentationLibraryLogs"]) {
            for rec in array(sl, &["logRecords", "log_records"]) {
                out.push(otlp_entry(rec, &res, mapping, false));
            }
        }
    }
}

fn otlp_entry(e: &Value, res: &Attrs<'_>, mapping: &FieldMapping, is_span: bool) -> Item {
    let mut item = Item::default();
    let attrs = attrs_of(e.get("attributes"));
    for key in ["traceId", "trace_id"] {
        if let Some(t) = e.get(key).and_then(Value::as_str) {
            push_obs(&mut item.observations, IdentName::TraceId, t, key);
        }
    }
    mapping.extract_attrs(&attrs, "attributes.", &mut item.observations);
    mapping.extract_attrs(res, "resource.attributes.", &mut item.observations);

    let ts_key = if is_span { "startTimeUnixNano" } else { "timeUnixNano" };
    item.timestamp = e.get(ts_key).or_else(|| e.get("observedTimeUnixNano")).and_then(|t| match t {
        Value::String(s) => {
            s.parse::<u64>().ok().and_then(|n| if n == 0 { None } else { rfc3339_from_nanos(i128::from(n)) })
        }
        other => timestamp_of(other),
    });

    let op = attr(&attrs, &["gen_ai.operation.name"]);
    let tool = attr(&attrs, &["gen_ai.tool.name", "tool.name"]);
    if tool.is_some() || op == Some("execute_tool") {
        let name = tool
            .map(str::to_string)
            .or_else(|| e.get("name").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let outcome = e.get("status").and_then(|s| {
            let code = s.get("code");
            let text = match code {
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(1) => Some("ok"),
                    Some(2) => Some("error"),
                    _ => None,
                },
                Some(Value::String(c)) if c.ends_with("OK") => Some("ok"),
                Some(Value::String(c)) if c.ends_with("ERROR") => Some("error"),
                _ => None,
            }?;
            let msg = s.get("message").and_then(Value::as_str).unwrap_or("");
            Some(if msg.is_empty() { text.to_string() } else { bounded(format!("{text}: {msg}")) })
        });
        item.facts.push(Fact::ToolCall {
            tool: bounded(name),
            call_id: attr(&attrs, &["gen_ai.tool.call.id", "tool_call.id"]).map(str::to_string),
            principal: obs_value(&item.observations, IdentName::ToolPrincipal),
            idempotency_key: obs_value(&item.observations, IdentName::IdempotencyKey),
            outcome,
        });
    }
    let source = attr(&attrs, &["gen_ai.data_source.id"]);
    if op == Some("retrieval") || source.is_some() {
        item.facts.push(Fact::Memory {
            memory_id: source.map(str::to_string),
            op: Some(op.unwrap_or("retrieval").to_string()),
        });
    }
    item
}

/// Items of a flat span-attribute map (OpenInference / GenAI fixtures: `{"gen_ai.tool.name": …}`).
pub(crate) fn is_flat_attribute_map(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        m.keys().any(|k| {
            k.starts_with("gen_ai.")
                || k.starts_with("openinference.")
                || k.starts_with("llm.")
                || k.starts_with("tool_call.")
                || k.starts_with("session.")
        })
    })
}

/// Converts a flat attribute map into an item, reusing the span logic.
pub(crate) fn flat_attribute_item(v: &Value, mapping: &FieldMapping) -> Item {
    let mut attributes = Vec::new();
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            let any = match val {
                Value::String(s) => serde_json::json!({ "stringValue": s }),
                Value::Number(n) => serde_json::json!({ "doubleValue": n }),
                Value::Bool(b) => serde_json::json!({ "boolValue": b }),
                _ => continue,
            };
            attributes.push(serde_json::json!({"key": k, "value": any}));
        }
    }
    let span = serde_json::json!({ "attributes": attributes });
    otlp_entry(&span, &Vec::new(), mapping, true)
}
