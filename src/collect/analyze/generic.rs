//! Generic JSON items (tool-call logs, memory records, approval and decision records)
//! read through the field mapping, plus helpers shared by the format-specific readers.

use super::mapping::{first_string, lookup, scalar_string, FieldMapping};
use super::types::{Fact, IdentName, Observation};
use chrono::{DateTime, SecondsFormat};
use serde_json::Value;

/// Longest rendered fact value (results, outcomes); longer ones are cut at a char boundary.
const MAX_FACT_LEN: usize = 512;

/// What one item (span, log line, decision…) yields.
#[derive(Debug, Default)]
pub(crate) struct Item {
    pub(crate) observations: Vec<Observation>,
    pub(crate) facts: Vec<Fact>,
    pub(crate) timestamp: Option<String>,
}

/// Value of an identifier already observed in the item.
pub(crate) fn obs_value(obs: &[Observation], ident: IdentName) -> Option<String> {
    obs.iter().find(|o| o.ident == ident).map(|o| o.value.clone())
}

/// Cuts `s` to at most [`MAX_FACT_LEN`] bytes on a char boundary.
pub(crate) fn bounded(mut s: String) -> String {
    if s.len() > MAX_FACT_LEN {
        let mut cut = MAX_FACT_LEN;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Renders Unix time given in nanoseconds as RFC 3339.
pub(crate) fn rfc3339_from_nanos(nanos: i128) -> Option<String> {
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Renders a numeric epoch of unknown unit (s, ms, µs or ns, chosen by magnitude).
pub(crate) fn rfc3339_from_epoch(x: f64) -> Option<String> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let nanos = if x >= 1e17 {
        x
    } else if x >= 1e14 {
        x * 1e3
    } else if x >= 1e11 {
        x * 1e6
    } else {
        x * 1e9
    };
    if nanos > 9.0e18 {
        return None;
    }
    // Round to microseconds: float seconds carry no more precision than that.
    let micros = (nanos / 1e3).round();
    rfc3339_from_nanos((micros as i128) * 1000)
}

/// A timestamp value: numbers and digit strings are epochs; other strings are kept.
pub(crate) fn timestamp_of(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u >= 100_000_000_000_000_000 {
                    return rfc3339_from_nanos(i128::from(u));
                }
            }
            n.as_f64().and_then(rfc3339_from_epoch)
        }
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                None
            } else if t.bytes().all(|b| b.is_ascii_digit()) && t.len() <= 20 {
                match t.parse::<u64>() {
                    Ok(u) if u >= 100_000_000_000_000_000 => rfc3339_from_nanos(i128::from(u)),
                    Ok(u) => rfc3339_from_epoch(u as f64),
                    Err(_) => None,
                }
            } else {
                Some(bounded(t.to_string()))
            }
        }
        _ => None,
    }
}

/// First timestamp found at one of the common field names.
pub(crate) fn common_timestamp(v: &Value) -> Option<String> {
    const PATHS: [&str; 11] = [
        "timestamp",
        "@timestamp",
        "ts",
        "time",
        "start_time",
        "startTime",
        "decided_at",
        "requested_at",
        "created_at",
        "timeUnixNano",
        "startTimeUnixNano",
    ];
    PATHS.iter().filter_map(|p| lookup(v, p)).find_map(timestamp_of)
}

/// Outcome of a tool call record, when visible.
fn tool_outcome(v: &Value) -> Option<String> {
    if lookup(v, "timeout").and_then(Value::as_bool) == Some(true)
        || lookup(v, "timed_out").and_then(Value::as_bool) == Some(true)
    {
        return Some("timeout".to_string());
    }
    if let Some(s) = first_string(
        v,
        &[
            "outcome",
            "response.status",
            "response.status_code",
            "response.code",
            "result.status",
            "status_code",
            "status",
        ],
    ) {
        return Some(bounded(s));
    }
    match lookup(v, "error") {
        Some(Value::Null) | None => None,
        Some(Value::String(s)) if s.to_ascii_lowercase().contains("timeout") => Some("timeout".to_string()),
        Some(_) => Some("error".to_string()),
    }
}

/// Facts a generic record states (tool call, memory access, approval, decision).
pub(crate) fn generic_facts(v: &Value, obs: &[Observation], facts: &mut Vec<Fact>) {
    let tool = first_string(v, &["tool", "tool_name", "toolName", "gen_ai.tool.name", "tool.name", "function.name"]);
    let call_id =
        first_string(v, &["call_id", "tool_call_id", "toolCallId", "callId", "gen_ai.tool.call.id", "tool_call.id"]);
    let approval_id = obs_value(obs, IdentName::ApprovalId);
    let decision = first_string(v, &["decision", "approval.decision", "verdict"]);
    if approval_id.is_some() && decision.is_some() {
        facts.push(Fact::Approval {
            approval_id,
            tool: tool.clone().or_else(|| first_string(v, &["action", "requested_action"])),
            decision: decision.map(bounded),
            approver: first_string(v, &["approver", "approved_by", "decided_by", "reviewer"]),
            call_id: call_id.clone(),
        });
    } else if let Some(tool) = tool {
        facts.push(Fact::ToolCall {
            tool: bounded(tool),
            call_id,
            principal: obs_value(obs, IdentName::ToolPrincipal),
            idempotency_key: obs_value(obs, IdentName::IdempotencyKey),
            outcome: tool_outcome(v),
        });
    }
    let memory_id = first_string(v, &["memory_id", "memoryId", "memory.id"]);
    if memory_id.is_some() {
        facts.push(Fact::Memory { memory_id, op: first_string(v, &["op", "operation", "action", "access"]) });
    }
    let decision_id = lookup(v, "decision_id").and_then(scalar_string);
    if decision_id.is_some() && lookup(v, "result").is_some() {
        facts.push(decision_fact(v, decision_id));
    }
}

/// A policy decision fact from an OPA-shaped object.
pub(crate) fn decision_fact(v: &Value, decision_id: Option<String>) -> Fact {
    Fact::Decision {
        decision_id,
        path: lookup(v, "path").and_then(scalar_string),
        result: lookup(v, "result").map(|r| match r {
            Value::String(s) => bounded(s.clone()),
            other => bounded(other.to_string()),
        }),
    }
}

/// Items of a generic JSON value (an array yields one item per element).
pub(crate) fn generic_items(v: &Value, mapping: &FieldMapping, out: &mut Vec<Item>) {
    match v {
        Value::Array(items) => {
            for e in items {
                out.push(generic_item(e, mapping));
            }
        }
        _ => out.push(generic_item(v, mapping)),
    }
}

pub(crate) fn generic_item(v: &Value, mapping: &FieldMapping) -> Item {
    let mut item = Item::default();
    if !v.is_object() {
        return item;
    }
    mapping.extract(v, &mut item.observations);
    generic_facts(v, &item.observations, &mut item.facts);
    item.timestamp = common_timestamp(v);
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_render() {
        assert_eq!(rfc3339_from_nanos(1_544_712_660_000_000_000).as_deref(), Some("2018-12-13T14:51:00Z"));
        assert_eq!(timestamp_of(&serde_json::json!(1763700000.001)).as_deref(), Some("2025-11-21T04:40:00.001Z"));
        assert_eq!(timestamp_of(&serde_json::json!(f64::MAX)), None);
    }
}
