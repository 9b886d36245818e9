//! OPA decision logs: the upload body (a JSON array of events) and one event per line
//! (console `"msg":"Decision Log"` form or plain). The bundle revision is the bundle id.

use super::generic::{common_timestamp, decision_fact, generic_facts, Item};
use super::ids::push_obs;
use super::mapping::{scalar_string, FieldMapping};
use super::types::IdentName;
use serde_json::Value;

/// Items of an OPA decision event or an array of them.
pub(crate) fn opa_items(v: &Value, mapping: &FieldMapping, out: &mut Vec<Item>) {
    match v {
        Value::Array(list) => {
            for e in list {
                out.push(opa_item(e, mapping));
            }
        }
        _ => out.push(opa_item(v, mapping)),
    }
}

fn opa_item(v: &Value, mapping: &FieldMapping) -> Item {
    let mut item = Item::default();
    if !v.is_object() {
        return item;
    }
    // `bundles.<name>.revision` (first bundle by name), then the pre-bundles `revision`.
    if let Some(Value::Object(bundles)) = v.get("bundles") {
        for (name, b) in bundles {
            if let Some(rev) = b.get("revision").and_then(Value::as_str) {
                let field = format!("bundles.{name}.revision");
                push_obs(&mut item.observations, IdentName::BundleId, rev, &field);
            }
        }
    }
    if let Some(rev) = v.get("revision").and_then(Value::as_str) {
        push_obs(&mut item.observations, IdentName::BundleId, rev, "revision");
    }
    mapping.extract(v, &mut item.observations);
    let decision_id = v.get("decision_id").and_then(scalar_string);
    if decision_id.is_some() || v.get("result").is_some() {
        item.facts.push(decision_fact(v, decision_id));
    }
    // Tool-call, approval or memory details some policies log in `input`.
    if let Some(input) = v.get("input") {
        let mut extra = Vec::new();
        generic_facts(input, &item.observations, &mut extra);
        item.facts.extend(extra.into_iter().filter(|f| !matches!(f, super::types::Fact::Decision { .. })));
    }
    item.timestamp = common_timestamp(v);
    item
}
