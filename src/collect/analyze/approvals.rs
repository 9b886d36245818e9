//! Approval events: OpenAI Agents SDK `RunState` JSON (`context.approvals`,
//! `hosted_mcp_approvals`, `tool_approval_item` interruptions) and generic approval records.

use super::generic::{common_timestamp, generic_item, Item};
use super::ids::push_obs;
use super::mapping::{first_string, FieldMapping};
use super::types::{Fact, IdentName};
use serde_json::{Map, Value};

/// Deepest nesting walked when looking for `tool_approval_item`s.
const MAX_WALK_DEPTH: usize = 64;
/// Most approval facts taken from one document.
const MAX_APPROVALS: usize = 10_000;

/// Items of approval JSON (a RunState document, an approval record, or an array).
pub(crate) fn approval_items(v: &Value, mapping: &FieldMapping, out: &mut Vec<Item>) {
    match v {
        Value::Array(list) => {
            for e in list {
                out.push(approval_item(e, mapping));
            }
        }
        _ => out.push(approval_item(v, mapping)),
    }
}

fn approval_item(v: &Value, mapping: &FieldMapping) -> Item {
    if v.get("$schemaVersion").is_some() {
        return run_state_item(v, mapping);
    }
    let mut item = generic_item(v, mapping);
    if v.get("type").and_then(Value::as_str) == Some("tool_approval_item") {
        let mut facts = Vec::new();
        approval_item_fact(v, None, &mut facts);
        item.facts.extend(facts);
    }
    item
}

/// Decision recorded for `tool`/`call_id` in a RunState `approvals` map.
fn decision_for(approvals: Option<&Map<String, Value>>, tool: &str, call_id: Option<&str>) -> String {
    let Some(entry) = approvals.and_then(|a| a.get(tool)) else {
        return "pending".to_string();
    };
    let listed = |key: &str| match entry.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Array(ids)) => call_id.is_some_and(|c| ids.iter().any(|i| i.as_str() == Some(c))),
        _ => false,
    };
    // Per-call entries override the tool-wide flag.
    let per_call = |key: &str| match entry.get(key) {
        Some(Value::Array(ids)) => call_id.is_some_and(|c| ids.iter().any(|i| i.as_str() == Some(c))),
        _ => false,
    };
    if per_call("rejected") {
        "rejected".to_string()
    } else if per_call("approved") || listed("approved") {
        "approved".to_string()
    } else if listed("rejected") {
        "rejected".to_string()
    } else {
        "pending".to_string()
    }
}

fn approval_item_fact(v: &Value, approvals: Option<&Map<String, Value>>, facts: &mut Vec<Fact>) {
    let raw = v.get("raw_item").or_else(|| v.get("rawItem"));
    let call_id = raw
        .and_then(|r| first_string(r, &["call_id", "callId", "id"]))
        .or_else(|| first_string(v, &["call_id", "callId"]));
    let tool = first_string(v, &["tool_name", "toolName"]).or_else(|| raw.and_then(|r| first_string(r, &["name"])));
    let decision = tool.as_deref().map(|t| decision_for(approvals, t, call_id.as_deref()));
    facts.push(Fact::Approval {
        approval_id: first_string(v, &["approval_id", "approvalId"]),
        tool,
        decision,
        approver: None,
        call_id,
    });
}

/// Walks a RunState (depth-limited, iterative) for `tool_approval_item`s.
fn walk_approval_items(root: &Value, approvals: Option<&Map<String, Value>>, facts: &mut Vec<Fact>) {
    let mut stack: Vec<(&Value, usize)> = vec![(root, 0)];
    while let Some((v, depth)) = stack.pop() {
        if facts.len() >= MAX_APPROVALS || depth > MAX_WALK_DEPTH {
            continue;
        }
        match v {
            Value::Object(m) => {
                if m.get("type").and_then(Value::as_str) == Some("tool_approval_item") {
                    approval_item_fact(v, approvals, facts);
                    continue;
                }
                stack.extend(m.values().rev().map(|c| (c, depth + 1)));
            }
            Value::Array(list) => stack.extend(list.iter().rev().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
}

fn run_state_item(v: &Value, mapping: &FieldMapping) -> Item {
    let mut item = Item::default();
    if let Some(t) = v.pointer("/trace/trace_id").and_then(Value::as_str) {
        push_obs(&mut item.observations, IdentName::TraceId, t, "trace.trace_id");
    }
    mapping.extract(v, &mut item.observations);
    // The run context (`context.context`) is the application's own object: its fields
    // (agent_id, session_id, tool_principal…) name identifiers more precisely than the
    // agent's display name, which is only the fallback.
    if let Some(ctx) = v.pointer("/context/context").filter(|c| c.is_object()) {
        let mut inner = Vec::new();
        mapping.extract(ctx, &mut inner);
        for mut o in inner {
            o.field = format!("context.context.{}", o.field);
            if !item.observations.iter().any(|e| e.ident == o.ident) {
                item.observations.push(o);
            }
        }
    }
    if let Some(name) = v.pointer("/current_agent/name").and_then(Value::as_str) {
        push_obs(&mut item.observations, IdentName::AgentId, name, "current_agent.name");
    }
    let approvals = v.pointer("/context/approvals").and_then(Value::as_object);
    let mut facts = Vec::new();
    if let Some(map) = approvals {
        for (tool, entry) in map {
            for (key, decision) in [("approved", "approved"), ("rejected", "rejected")] {
                match entry.get(key) {
                    Some(Value::Bool(true)) => facts.push(Fact::Approval {
                        approval_id: None,
                        tool: Some(tool.clone()),
                        decision: Some(format!("{decision} (all calls)")),
                        approver: None,
                        call_id: None,
                    }),
                    Some(Value::Array(ids)) => {
                        for id in ids.iter().filter_map(Value::as_str).take(MAX_APPROVALS) {
                            facts.push(Fact::Approval {
                                approval_id: None,
                                tool: Some(tool.clone()),
                                decision: Some(decision.to_string()),
                                approver: None,
                                call_id: Some(id.to_string()),
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(Value::Array(list)) = v.pointer("/context/hosted_mcp_approvals") {
        for entry in list.iter().take(MAX_APPROVALS) {
            let identity = entry.get("identity");
            let tool = identity.and_then(|i| first_string(i, &["tool_name", "server_label"]));
            let request = identity.and_then(|i| first_string(i, &["request_id"]));
            let decision = entry.get("decision");
            let verdict = |key: &str| match decision.and_then(|d| d.get(key)) {
                Some(Value::Bool(b)) => *b,
                Some(Value::Array(ids)) => match request.as_deref() {
                    Some(r) => ids.iter().any(|i| i.as_str() == Some(r)),
                    None => !ids.is_empty(),
                },
                _ => false,
            };
            let d = if verdict("rejected") {
                "rejected"
            } else if verdict("approved") {
                "approved"
            } else {
                "pending"
            };
            facts.push(Fact::Approval {
                approval_id: None,
                tool,
                decision: Some(d.to_string()),
                approver: None,
                call_id: request,
            });
        }
    }
    walk_approval_items(v, approvals, &mut facts);
    item.facts = facts;
    item.timestamp = common_timestamp(v);
    item
}
