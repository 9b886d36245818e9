//! Claude Code and Claude Agent SDK transcripts: the session files Claude Code keeps
//! (`~/.claude/projects/<project>/<session id>.jsonl`, camelCase: `sessionId`, `parentUuid`,
//! `uuid`, `timestamp`, `requestId`, `toolUseResult`) and the Agent SDK's / CLI's
//! `--output-format stream-json` lines (snake_case: `session_id`, `parent_tool_use_id`). One
//! JSON object per line, `type` `user`, `assistant`, `system`, `result` or `summary`, with
//! the Messages API `message` inside.
//!
//! * An assistant line's `tool_use` block is a tool call (its `id` the call id, `name` the
//!   tool: `mcp__<server>__<tool>` for an MCP tool, read as the tool with its server as a
//!   detail). The same call's `tool_result` block, in a later user line (`tool_use_id`), is its
//!   result: `is_error` → the error's words decide (a timeout is unknown), else succeeded (an
//!   idempotent replay when the result says so). A call with no result line has no outcome.
//! * Claude Code writes one line per content block of a response: lines sharing the API
//!   request (`requestId`, else `message.id`) are one `model_call`.
//! * `requestId` is Anthropic's API request id, not an HTTP request the agent made: it never
//!   joins a proxy's or a server's request id.

use super::super::item::{first, outcome_of, Ev, ItemBuilder, OutcomeEv, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::generic::{memory_tool_kind, tool_kind};
use super::{FormatDef, Head, Item};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::{EventKind, OutcomeStatus};
use serde_json::Value;

/// Claude Code / Agent SDK transcripts.
pub(crate) struct ClaudeTranscript;

impl FormatDef for ClaudeTranscript {
    fn name(&self) -> &'static str {
        "claude_transcript"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["claude-code", "claude-agent-sdk", "claude", "claude-stream-json"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("traces")
    }
    fn what(&self) -> &'static str {
        "Claude Code session transcripts and Agent SDK stream-json (type user/assistant/system/result lines with message, sessionId or session_id)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let Some(o) = h.obj() else { return false };
        let session = o.has("sessionId") || o.has("session_id");
        let ty = o.str_of("type");
        // A transcript line (`parentUuid` is on every one, `null` on the first), a stream-json
        // message, or the summary line a compacted transcript starts with.
        (session
            && o.has("message")
            && (o.has("parentUuid") || o.has("parent_tool_use_id") || o.has("uuid"))
            && matches!(ty, Some("user" | "assistant" | "system")))
            || (ty == Some("summary") && o.has("leafUuid"))
            || (session && ty == Some("system") && o.str_of("subtype") == Some("init") && o.has("tools"))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        out.push(line(v, m));
    }
}

/// Keys of a line that are no identifier of the incident: message ids, the API request id.
const NOT_WALKED: [&str; 5] = ["requestId", "request_id", "uuid", "parentUuid", "leafUuid"];
/// Content blocks of one line read for tool calls and results (a response has a handful; a
/// hostile line with more is read up to here, its other blocks only sealed).
const MAX_BLOCKS: usize = 256;

fn line(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    for (k, x) in v.as_object().into_iter().flatten() {
        if !NOT_WALKED.contains(&k.as_str()) {
            b.walk_field(k, k, x);
        }
    }
    let at = b.time_from(v, &["timestamp"]);
    let all = v.pointer("/message/content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let blocks = all.get(..all.len().min(MAX_BLOCKS)).unwrap_or_default();
    if all.len() > MAX_BLOCKS {
        b.item.truncated = true;
    }
    match v.get("type").and_then(Value::as_str) {
        Some("assistant") => {
            for block in blocks {
                if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                    continue;
                }
                let Some(name) = block.get("name").and_then(Value::as_str) else { continue };
                let (server, tool) = mcp_tool(name);
                let kind = memory_tool_kind(tool).unwrap_or_else(|| tool_kind(tool));
                let mut ev = Ev::new(kind, Side::Client);
                ev.start = at.clone();
                ev.target = Some(tool.to_string());
                if let Some(s) = server {
                    ev.detail("mcp_server", s);
                }
                if let Some(id) = block.get("id").and_then(Value::as_str) {
                    b.field(Role::Link(LinkKey::CallId), id, "message.content.id");
                    ev.key(Role::Link(LinkKey::CallId), id);
                }
                // The line also holds the model call (and may hold other calls): the keys this
                // call was made with (an idempotency key, an approval id in its input) are its
                // own, not the line's.
                if let Some(input) = block.get("input") {
                    let mut own = ItemBuilder::new(m);
                    own.walk_field("message.content.input", "input", input);
                    for f in own.finish().fields {
                        if !matches!(
                            f.role,
                            Role::Ident(IdentName::TraceId | IdentName::SessionId | IdentName::AgentId)
                        ) && matches!(f.role, Role::Ident(_) | Role::Link(_))
                        {
                            ev.key(f.role, &f.value);
                        }
                    }
                }
                b.evidence(ev);
            }
            // The API request the line is (a part of) the response to.
            let request = first(v, &["requestId", "message.id"]);
            if let Some(r) = request {
                let mut ev = Ev::new(EventKind::ModelCall, Side::Client);
                ev.start = at.clone();
                ev.target = first(v, &["message.model"]);
                ev.key(Role::Link(LinkKey::EventId), &r);
                ev.detail("request_id", r);
                b.evidence(ev);
            }
        }
        Some("user") => {
            for block in blocks {
                if block.get("type").and_then(Value::as_str) != Some("tool_result") {
                    continue;
                }
                let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else { continue };
                b.field(Role::Link(LinkKey::CallId), id, "message.content.tool_use_id");
                let mut ev = Ev::new(EventKind::ToolCall, Side::Client);
                ev.end = at.clone();
                ev.key(Role::Link(LinkKey::CallId), id);
                ev.outcome = result_outcome(block);
                b.evidence(ev);
            }
        }
        _ => {}
    }
    b.finish()
}

/// `mcp__<server>__<tool>` → (`Some(server)`, `tool`); any other name is the tool itself.
fn mcp_tool(name: &str) -> (Option<&str>, &str) {
    name.strip_prefix("mcp__")
        .and_then(|rest| rest.split_once("__"))
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        .map_or((None, name), |(s, t)| (Some(s), t))
}

/// A `tool_result` block's text: a string, or its `text` blocks joined.
fn result_text(block: &Value) -> String {
    match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// What a `tool_result` says of the call: an error's words decide (`MCP error -32001: Request
/// timed out` is a timeout: unknown); a result is a success, an idempotent replay when it says
/// so (no new effect).
fn result_outcome(block: &Value) -> OutcomeEv {
    let text = result_text(block);
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        let mut o = outcome_of(&text);
        // An error that reads as a success ("error: ok") is still an error the caller saw.
        if o.status == Some(OutcomeStatus::Succeeded) {
            o.status = Some(OutcomeStatus::Unknown);
        }
        return o;
    }
    let lower = text.to_ascii_lowercase();
    let replayed = ["idempotent_replayed\":true", "idempotent_replay\":true", "idempotent replay", "\"replayed\":true"]
        .iter()
        .any(|m| lower.replace(": ", ":").contains(m));
    OutcomeEv {
        replayed,
        status: Some(OutcomeStatus::Succeeded),
        code: None,
        reason: replayed.then(|| "idempotent replay: no new effect".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_tool_names_are_split_and_others_kept() {
        assert_eq!(mcp_tool("mcp__payments__issue_credit"), (Some("payments"), "issue_credit"));
        assert_eq!(mcp_tool("Bash"), (None, "Bash"));
        assert_eq!(mcp_tool("mcp____x"), (None, "mcp____x"));
    }

    #[test]
    fn tool_results_read_as_outcomes() {
        let err = serde_json::json!({"type": "tool_result", "tool_use_id": "t", "content": "MCP error -32001: Request timed out", "is_error": true});
        assert_eq!(result_outcome(&err).status, Some(OutcomeStatus::Unknown));
        let replay = serde_json::json!({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "{\"credit_note\": \"CN-1\", \"idempotent_replayed\": true}"}]});
        let o = result_outcome(&replay);
        assert!(o.replayed && o.status == Some(OutcomeStatus::Succeeded));
        let ok = serde_json::json!({"type": "tool_result", "tool_use_id": "t", "content": "no errors found"});
        let o = result_outcome(&ok);
        assert!(!o.replayed && o.status == Some(OutcomeStatus::Succeeded));
    }
}
