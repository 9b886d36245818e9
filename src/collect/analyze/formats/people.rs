//! Where people decide: generic approval records, Slack interactivity `block_actions`
//! payloads (an approver clicking Approve or Reject in a message), as JSON Lines or as the
//! form-encoded body Slack POSTs (`payload=%7B…`), and Bot Framework (Microsoft Teams)
//! activities: an Adaptive Card asking for an approval and the `invoke` that answers it.

use super::super::item::{bounded, first, percent_decode, Ev, ItemBuilder, Side};
use super::super::mapping::FieldMapping;
use super::super::semantics::{LinkKey, Role};
use super::super::values::Time;
use super::generic::{approval_evidence, decision_word, generic_item, tool_name, TIME_FIELDS};
use super::{FormatDef, Head, Item, LayoutPref};
use crate::bundle::manifest::IdentName;
use crate::collect::analysis::EventKind;
use serde_json::Value;

/// Generic approval records (`approval_id` with a decision or a status).
pub(crate) struct Approvals;

impl FormatDef for Approvals {
    fn name(&self) -> &'static str {
        "approvals"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["approval", "approval-jsonl"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("approvals")
    }
    fn what(&self) -> &'static str {
        "approval records (approval_id with a decision or status; tool_approval_item records)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.has("approval_id") || h.has("approvalId") || h.str_of("type") == Some("tool_approval_item")
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(approval(e, m))),
            _ => out.push(approval(v, m)),
        }
    }
}

fn approval(v: &Value, m: &FieldMapping) -> Item {
    if v.get("type").and_then(Value::as_str) != Some("tool_approval_item") {
        return generic_item(v, m);
    }
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    let start = b.time_from(v, &TIME_FIELDS);
    b.evidence(super::agents::approval_request(v, None, start));
    b.finish()
}

/// Slack interactivity `block_actions` payloads.
pub(crate) struct SlackActions;

impl FormatDef for SlackActions {
    fn name(&self) -> &'static str {
        "slack_block_actions"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["slack", "block-actions"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("approvals")
    }
    fn what(&self) -> &'static str {
        "Slack block_actions payloads (JSON, or the form-encoded payload=… body)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        h.str_of("type") == Some("block_actions")
            || (h.first_line.starts_with("payload=") && percent_decode(h.first_line).contains("block_actions"))
    }
    fn layout(&self) -> LayoutPref {
        LayoutPref::Auto
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(block_actions(e, m))),
            _ => out.push(block_actions(v, m)),
        }
    }
    fn read_text(&self, line: &str, m: &FieldMapping) -> Option<Item> {
        let body = line.trim();
        // `application/x-www-form-urlencoded`: `payload=<url-encoded JSON>` (maybe among other
        // fields); `+` is a space.
        let encoded = body.split('&').find_map(|kv| kv.strip_prefix("payload="))?;
        let json = percent_decode(&encoded.replace('+', " "));
        let v: Value = serde_json::from_str(&json).ok()?;
        let mut it = block_actions(&v, m);
        for f in it.fields.iter_mut() {
            f.path = format!("payload{{}}.{}", f.path);
        }
        Some(it)
    }
}

fn block_actions(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    b.walk("", v);
    // The user who clicked is the approver, not who the agent acted for.
    b.item.fields.retain(|f| !(f.role == Role::Subject && f.path.starts_with("user.")));
    let approver = first(v, &["user.username", "user.name", "user.id"]);
    let user_id = first(v, &["user.id"]);
    for action in v.get("actions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let words = [
            first(action, &["action_id"]),
            first(action, &["value"]),
            first(action, &["text.text"]),
            first(action, &["selected_option.value"]),
        ];
        let Some(decision) = words.iter().flatten().find_map(|w| decision_word(w)) else { continue };
        let mut ev = Ev::new(
            if decision == "pending" { EventKind::ApprovalRequest } else { EventKind::ApprovalDecision },
            Side::Client,
        );
        ev.start = action.get("action_ts").and_then(|t| Time::of_json(t).or_else(|| t.as_str().and_then(Time::parse)));
        b.time(ev.start.clone());
        ev.detail("decision", decision);
        if let Some(a) = &approver {
            ev.detail("approver", a.clone());
            ev.principal = Some(a.clone());
        }
        if let Some(u) = &user_id {
            ev.detail("approver_id", u.clone());
        }
        if let Some(a) = first(action, &["action_id"]) {
            ev.detail("action_id", a);
        }
        // The value usually carries what is approved: an approval id, a call id, JSON.
        if let Some(val) = first(action, &["value"]) {
            ev.detail("value", bounded(val.clone()));
            let mut inner = ItemBuilder::new(m);
            inner.walk_field("value", "value", &Value::String(val.clone()));
            let inner = inner.finish();
            if let Some(f) = inner.fields.iter().find(|f| f.role == Role::Ident(IdentName::ApprovalId)) {
                ev.key(Role::Ident(IdentName::ApprovalId), &f.value);
            }
            if let Some(f) = inner.fields.iter().find(|f| f.role == Role::Link(LinkKey::CallId)) {
                ev.key(Role::Link(LinkKey::CallId), &f.value);
            }
        }
        if ev.key_of(Role::Ident(IdentName::ApprovalId)).is_none() {
            if let Some(id) = b.ident(IdentName::ApprovalId) {
                ev.key(Role::Ident(IdentName::ApprovalId), &id);
            }
        }
        ev.target = tool_name(v);
        b.evidence(ev);
    }
    if b.item.evidence.is_empty() {
        if let Some(ev) = approval_evidence(v, &b, b.item.time.clone()) {
            b.evidence(ev);
        }
    }
    b.finish()
}

/// Bot Framework activities (Microsoft Teams bots): the activity itself, or a bot's activity
/// logger line wrapping it under `activity`.
pub(crate) struct BotActivity;

impl FormatDef for BotActivity {
    fn name(&self) -> &'static str {
        "bot_framework"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["teams", "msteams", "bot-activity"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("approvals")
    }
    fn what(&self) -> &'static str {
        "Bot Framework / Microsoft Teams activities (an Adaptive Card approval and its invoke), bare or under `activity`"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let act = |k: &super::Keys| k.has("channelId") && k.has("conversation") && (k.has("type") || k.has("from"));
        h.obj().is_some_and(act) || h.inner("activity").is_some_and(act)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v {
            Value::Array(list) => list.iter().for_each(|e| out.push(bot_activity(e, m))),
            _ => out.push(bot_activity(v, m)),
        }
    }
}

/// One activity. Bot Framework calls the channel thread a `conversation`: its id (with
/// `;messageid=` for a reply thread) is the Teams thread the card was posted in, never the
/// agent's session, and the people in `from`/`recipient` are chat users, not subjects. An
/// outgoing message carrying an Adaptive Card whose actions name an approval id is the
/// `approval_request`; an `invoke` (`adaptiveCard/action`, or a legacy `message` with a
/// `value`) whose verb decides is the `approval_decision`, by `from` (name and Azure AD object
/// id).
fn bot_activity(v: &Value, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    if !v.is_object() {
        return b.finish();
    }
    let (a, prefix) = match v.get("activity") {
        Some(inner @ Value::Object(_)) => (inner, "activity."),
        _ => (v, ""),
    };
    b.walk("", v);
    b.item.fields.retain(|f| {
        let p = f.path.strip_prefix(prefix).unwrap_or(&f.path);
        let chat = p.starts_with("conversation.") || p.starts_with("from.") || p.starts_with("recipient.");
        !(chat && matches!(f.role, Role::Ident(IdentName::SessionId) | Role::Subject | Role::Ident(IdentName::AgentId)))
    });
    let start = b.time_from(a, &["timestamp", "localTimestamp"]).or_else(|| b.time_from(v, &TIME_FIELDS));
    let kind = first(a, &["type"]).unwrap_or_default();
    let thread = first(a, &["conversation.id"]);
    if kind == "invoke" || (kind == "message" && a.get("value").is_some()) {
        let action = a.get("value").map(|x| x.get("action").unwrap_or(x));
        let Some(action) = action else { return b.finish() };
        let words = [first(action, &["verb"]), first(action, &["title"]), first(action, &["data.decision"])];
        let Some(decision) = words.iter().flatten().find_map(|w| decision_word(w)) else { return b.finish() };
        let mut ev = Ev::new(
            if decision == "pending" { EventKind::ApprovalRequest } else { EventKind::ApprovalDecision },
            Side::Client,
        );
        ev.start = start;
        ev.detail("decision", decision);
        if let Some(n) = first(a, &["from.name"]) {
            ev.detail("approver", n.clone());
            ev.principal = Some(n);
        }
        if let Some(id) = first(a, &["from.aadObjectId", "from.id"]) {
            ev.detail("approver_id", id);
        }
        approval_keys(&mut ev, &b, action.get("data").unwrap_or(action), m);
        ev.target = action.get("data").and_then(tool_name);
        if let Some(t) = thread {
            ev.detail("thread", t);
        }
        b.evidence(ev);
        return b.finish();
    }
    // A card posted with actions about an approval: the request.
    let cards = a.get("attachments").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for card in cards.iter().take(8) {
        let actions = card.pointer("/content/actions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let Some(data) = actions.iter().find_map(|x| x.get("data").filter(|d| d.is_object())) else { continue };
        let mut ev = Ev::new(EventKind::ApprovalRequest, Side::Client);
        ev.start = start.clone();
        ev.detail("decision", "pending");
        approval_keys(&mut ev, &b, data, m);
        if ev.key_of(Role::Ident(IdentName::ApprovalId)).is_none() {
            continue;
        }
        ev.target = tool_name(data);
        if let Some(t) = &thread {
            ev.detail("thread", t.clone());
        }
        b.evidence(ev);
        break;
    }
    b.finish()
}

/// The approval id and call id an action's data names (by the semantics table).
fn approval_keys(ev: &mut Ev, b: &ItemBuilder<'_>, data: &Value, m: &FieldMapping) {
    let mut inner = ItemBuilder::new(m);
    inner.walk("", data);
    let inner = inner.finish();
    for role in [Role::Ident(IdentName::ApprovalId), Role::Link(LinkKey::CallId)] {
        if let Some(f) = inner.fields.iter().find(|f| f.role == role) {
            ev.key(role, &f.value);
        }
    }
    if ev.key_of(Role::Ident(IdentName::ApprovalId)).is_none() {
        if let Some(id) = b.ident(IdentName::ApprovalId) {
            ev.key(Role::Ident(IdentName::ApprovalId), &id);
        }
    }
}

/// ServiceNow Table API records (`{"result": [...]}` or `{"result": {...}}`), also with
/// `sysparm_display_value=all` (every field `{"display_value", "value"[, "link"]}`).
pub(crate) struct ServiceNow;

impl FormatDef for ServiceNow {
    fn name(&self) -> &'static str {
        "servicenow"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["snow", "servicenow-table"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("approvals")
    }
    fn what(&self) -> &'static str {
        "ServiceNow Table API approval records (sysapproval_approver rows, requested items; display_value=all wrappers)"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        // The approval tables: approver rows, and requested items (a change request is read
        // generically: its evidence kind is not approvals).
        let snow = |k: &super::Keys| {
            k.has("sys_id") && (k.has("sysapproval") || (k.has("approval") && (k.has("cat_item") || k.has("request"))))
        };
        h.inner("result").is_some_and(snow)
            || (h.has("result")
                && h.mentions("sys_id")
                && h.mentions("display_value")
                && (h.mentions("sysapproval") || h.mentions("cat_item")))
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        match v.get("result") {
            Some(Value::Array(list)) => list.iter().for_each(|r| out.push(snow_record(r, m))),
            Some(r @ Value::Object(_)) => out.push(snow_record(r, m)),
            _ => super::generic::read_value(v, m, out),
        }
    }
}

/// A `{"display_value", "value"[, "link"]}` wrapper: (value, display value).
fn snow_wrapper(x: &Value) -> Option<(&Value, Option<&str>)> {
    let o = x.as_object()?;
    let plain = o.keys().all(|k| matches!(k.as_str(), "display_value" | "value" | "link"));
    (plain && o.contains_key("value")).then(|| (&o["value"], o.get("display_value").and_then(Value::as_str)))
}

/// A ServiceNow date-time `value` (`2026-12-16 14:19:02`): UTC, written without a zone (its
/// `display_value` is the viewer's local time, never used).
fn snow_time(v: &Value, key: &str) -> Option<Time> {
    let raw = v.get(key).map(|x| snow_wrapper(x).map_or(x, |(val, _)| val)).and_then(Value::as_str)?;
    Time::parse(&format!("{}Z", raw.trim().replacen(' ', "T", 1))).or_else(|| Time::parse(raw))
}

/// One record, read with every wrapper unwrapped to its `value` (the display values kept as
/// id-like values, so a reference is found by its number too: `sysapproval` →
/// `RITM0041873`). An approver row (`sysapproval_approver`: `approver`, `sysapproval`,
/// `state`) is an approval decision (`approved`/`rejected`) or request (`requested`) about
/// its task, the task's number being the approval id; rows made moot (`not_required`,
/// `cancelled`) are no event. A task that asks for an approval (a requested item with
/// `approval`) is the approval request, its number the approval id. Anything else is read
/// generically.
fn snow_record(r: &Value, m: &FieldMapping) -> Item {
    let Some(o) = r.as_object() else { return super::generic::generic_item(r, m) };
    let mut view = serde_json::Map::new();
    let mut displays: Vec<(String, String)> = Vec::new();
    let mut wrapped: Vec<String> = Vec::new();
    for (k, x) in o {
        match snow_wrapper(x) {
            Some((val, disp)) => {
                view.insert(k.clone(), val.clone());
                wrapped.push(k.clone());
                if let Some(d) = disp.filter(|d| Some(*d) != val.as_str()) {
                    displays.push((k.clone(), d.to_string()));
                }
            }
            None => {
                view.insert(k.clone(), x.clone());
            }
        }
    }
    let view = Value::Object(view);
    let display = |k: &str| displays.iter().find(|(x, _)| x == k).map(|(_, d)| d.clone());
    let value = |k: &str| first(&view, &[k]);
    let approver_row = ["approver", "sysapproval", "state"].iter().all(|k| view.get(*k).is_some());
    let asks = !approver_row && view.get("number").is_some() && view.get("approval").is_some();
    let mut it = if approver_row || asks {
        let mut b = ItemBuilder::new(m);
        b.walk("", &view);
        b.finish()
    } else {
        super::generic::generic_item(&view, m)
    };
    // A reference field's value is a `sys_id` (`requested_for` → a `sys_user` record, here
    // often the agent's own service user): not whom the agent acted for.
    it.fields.retain(|f| f.role != Role::Subject);
    // Paths as in the file (`state.value`).
    for f in it.fields.iter_mut() {
        let head = f.path.split(['.', '{', '~']).next().unwrap_or("");
        if wrapped.iter().any(|w| w == head) {
            f.path = format!("{head}.value{}", &f.path[head.len()..]);
        }
    }
    let mut extra = ItemBuilder::new(m);
    for (_, d) in &displays {
        extra.token(d);
    }
    let task = if approver_row { display("sysapproval") } else { value("number") };
    if approver_row || asks {
        if let Some(t) = &task {
            extra.field(
                Role::Ident(IdentName::ApprovalId),
                t,
                if approver_row { "sysapproval.display_value" } else { "number.value" },
            );
        }
    }
    let extra = extra.finish();
    it.absorb(extra);
    if approver_row {
        let state = value("state").unwrap_or_default();
        let decision = match state.as_str() {
            "approved" => Some("approved"),
            "rejected" => Some("rejected"),
            "requested" => Some("pending"),
            _ => None,
        };
        if let (Some(decision), Some(t)) = (decision, &task) {
            let kind = if decision == "pending" { EventKind::ApprovalRequest } else { EventKind::ApprovalDecision };
            let mut ev = Ev::new(kind, Side::Server);
            ev.start = if decision == "pending" {
                snow_time(r, "sys_created_on")
            } else {
                snow_time(r, "sys_updated_on").or_else(|| snow_time(r, "sys_created_on"))
            };
            ev.key(Role::Ident(IdentName::ApprovalId), t);
            ev.detail("decision", decision);
            if let Some(a) = display("approver").or_else(|| value("approver")) {
                ev.detail("approver", a.clone());
                ev.principal = Some(a);
            }
            if let Some(g) = display("group") {
                ev.detail("group", g);
            }
            if let Some(c) = value("comments") {
                ev.detail("reason", super::super::item::bounded(c));
            }
            it.time = it.time.or_else(|| ev.start.clone());
            it.evidence.push(ev);
        }
    } else if asks {
        if let Some(t) = &task {
            let mut ev = Ev::new(EventKind::ApprovalRequest, Side::Server);
            ev.start = snow_time(r, "opened_at").or_else(|| snow_time(r, "sys_created_on"));
            ev.key(Role::Ident(IdentName::ApprovalId), t);
            ev.detail("decision", "pending");
            if let Some(d) = value("short_description") {
                ev.detail("description", d);
            }
            it.time = it.time.or_else(|| ev.start.clone());
            it.evidence.push(ev);
        }
    }
    it
}

/// Jira Service Management approvals (`GET /rest/servicedeskapi/request/{key}/approval`): a
/// page of approval steps of one customer request.
pub(crate) struct JiraApprovals;

impl FormatDef for JiraApprovals {
    fn name(&self) -> &'static str {
        "jira_approvals"
    }
    fn spellings(&self) -> &'static [&'static str] {
        &["jira-sm", "jira-approvals", "servicedesk-approvals"]
    }
    fn kind(&self) -> Option<&'static str> {
        Some("approvals")
    }
    fn what(&self) -> &'static str {
        "Jira Service Management request approvals (servicedeskapi): finalDecision, approvers[].approverDecision, createdDate, completedDate"
    }
    fn detect(&self, h: &Head<'_>) -> bool {
        let step = |k: &super::Keys| k.has("finalDecision") && (k.has("approvers") || k.has("canAnswerApproval"));
        step_or_page(h, step)
    }
    fn read_json(&self, v: &Value, m: &FieldMapping, out: &mut Vec<Item>) {
        // The request's key is in the page's own link; a step's link names the request by
        // its numeric id.
        let key = first(v, &["_links.self"]).and_then(|u| jira_request_key(&u));
        match v.get("values") {
            Some(Value::Array(list)) => list.iter().for_each(|r| out.push(jira_step(r, key.as_deref(), m))),
            _ => out.push(jira_step(v, key.as_deref(), m)),
        }
    }
}

fn step_or_page(h: &Head<'_>, step: impl Fn(&super::Keys) -> bool) -> bool {
    h.obj().is_some_and(&step) || h.inner("values").is_some_and(&step)
}

/// `…/request/FIN-2291/approval` → `FIN-2291`.
fn jira_request_key(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("/request/")?;
    let (key, tail) = rest.split_once('/')?;
    (tail.starts_with("approval")
        && !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| key.to_string())
}

/// A Jira date object (`{"iso8601", "jira", "epochMillis", "friendly"}`): its instant.
fn jira_time(v: &Value, key: &str) -> Option<Time> {
    let d = v.get(key)?;
    d.get("epochMillis").and_then(Time::of_json).or_else(|| {
        first(d, &["jira", "iso8601"]).and_then(|s| {
            // `+0000` without a colon.
            let fixed = match s.len().checked_sub(5).and_then(|i| s.get(i..).map(|z| (i, z))) {
                Some((i, z))
                    if (z.starts_with('+') || z.starts_with('-')) && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("{}{}:{}", &s[..i], &z[..3], &z[3..])
                }
                _ => s.clone(),
            };
            Time::parse(&fixed)
        })
    })
}

/// One approval step: its decision once decided (`finalDecision` at `completedDate`, by the
/// approvers who answered; `createdDate` kept as `requested_at`), else the pending request
/// (`createdDate`) — the agent's side records its own request. The approval id is the
/// request's key.
fn jira_step(r: &Value, key: Option<&str>, m: &FieldMapping) -> Item {
    let mut b = ItemBuilder::new(m);
    b.walk("", r);
    if let Some(k) = key {
        b.field(Role::Ident(IdentName::ApprovalId), k, "_links.self(page)");
    }
    let mut it = b.finish();
    let Some(id) = key.map(str::to_string).or_else(|| first(r, &["_links.self"])) else { return it };
    let decision = first(r, &["finalDecision"]).and_then(|d| decision_word(&d)).filter(|d| *d != "pending");
    let step = first(r, &["id"]);
    let name = first(r, &["name"]);
    let Some(decision) = decision else {
        // Still pending: the request.
        let mut asked = Ev::new(EventKind::ApprovalRequest, Side::Server);
        asked.start = jira_time(r, "createdDate");
        asked.key(Role::Ident(IdentName::ApprovalId), &id);
        asked.detail("decision", "pending");
        if let Some(n) = name {
            asked.detail("description", n);
        }
        if let Some(s) = step {
            asked.detail("step", s);
        }
        it.time = asked.start.clone();
        it.evidence.push(asked);
        return it;
    };
    {
        let mut ev = Ev::new(EventKind::ApprovalDecision, Side::Server);
        ev.start = jira_time(r, "completedDate");
        it.time = ev.start.clone();
        ev.key(Role::Ident(IdentName::ApprovalId), &id);
        ev.detail("decision", decision);
        if let Some(t) = jira_time(r, "createdDate") {
            ev.detail("requested_at", t.text.clone());
        }
        if let Some(n) = name {
            ev.detail("description", n);
        }
        if let Some(s) = step {
            ev.detail("step", s);
        }
        let answered: Vec<String> = r
            .get("approvers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // Those who decided as the step did (on a step needing one of two, the other may
            // have declined).
            .filter(|a| first(a, &["approverDecision"]).and_then(|d| decision_word(&d)) == Some(decision))
            .filter_map(|a| first(a, &["approver.emailAddress", "approver.displayName", "approver.accountId"]))
            .take(16)
            .collect();
        if !answered.is_empty() {
            ev.detail("approver", answered.join(", "));
            ev.principal = answered.first().cloned();
        }
        it.evidence.push(ev);
    }
    it
}
