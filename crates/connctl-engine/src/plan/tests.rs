//! The planner's own tests.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::fields::FieldMap;
use crate::refresh::Live;
use crate::state::{ConnectionState, Pending, PendingOp, State, Step};

fn fields(pairs: &[(&str, Value)]) -> FieldMap {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// Applied: warehouse WH, workspaceIds [1]; desired (and pending): WH2, [42].
fn world(live_warehouse: &str, live_ids: Value, pending: Option<Pending>) -> Plan {
    let applied = fields(&[("warehouse", json!("WH")), ("workspaceIds", json!(["1"]))]);
    let want = fields(&[("warehouse", json!("WH2")), ("workspaceIds", json!(["42"]))]);
    let mut state = State::new();
    let mut c = ConnectionState::new("Databricks");
    c.step = Step::Registered;
    c.applied = Some(applied);
    c.pending = pending.map(|mut p| {
        p.target = want.clone();
        p
    });
    state.connections.insert("k".into(), c);
    let desired = BTreeMap::from([(
        "k".to_owned(),
        DesiredView {
            technology: "Databricks",
            fields: std::borrow::Cow::Owned(want),
            protect: false,
        },
    )]);
    let live = Live {
        keys: ["k".to_owned()].into(),
        fields: BTreeMap::from([(
            "k".to_owned(),
            fields(&[("warehouse", json!(live_warehouse)), ("workspaceIds", live_ids)]),
        )]),
        integration_ids: BTreeMap::new(),
        child_counts: BTreeMap::new(),
        health: Vec::new(),
    };
    plan(&desired, &state, Some(&live), &PlanOptions::default(), vec![]).unwrap()
}

#[test]
fn without_a_pending_update_connctls_landed_change_reads_as_drift() {
    let p = world("WH2", json!(["1"]), None);
    assert_eq!(p.changes[0].action, Action::Update);
    assert_eq!(p.summary.drifted, 1);
}

#[test]
fn a_pending_update_that_landed_is_recorded_not_drift() {
    let p = world(
        "WH2",
        json!(["1"]),
        Some(Pending::new(PendingOp::Update, FieldMap::new())),
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Resume);
    // The connection part landed; the integration part is still to do.
    assert_eq!(c.operations, vec![Operation::Rescript]);
    assert_eq!(p.summary.drifted, 0);
    assert_eq!(p.summary.resume, 1);
}

#[test]
fn a_pending_update_that_did_not_land_is_resumed_as_config() {
    let p = world(
        "WH",
        json!(["1"]),
        Some(Pending::new(PendingOp::Update, FieldMap::new())),
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Resume);
    assert_eq!(
        c.operations,
        vec![Operation::UpdateConnection, Operation::Rescript]
    );
    assert!(
        c.fields.iter().all(|f| f.cause == Cause::Config),
        "{:?}",
        c.fields
    );
}

#[test]
fn integration_config_carried_by_the_connection_update_still_needs_its_edit_script() {
    // An old `rescript` pending reads as an update too.
    let p = world(
        "WH2",
        json!(["42"]),
        Some(Pending::new(PendingOp::Rescript, FieldMap::new())),
    );
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Resume);
    assert_eq!(c.operations, vec![Operation::Rescript]);
    assert_eq!(c.fields[0].cause, Cause::Config);
    assert_eq!(p.summary.drifted, 0);
}

#[test]
fn a_pending_update_found_complete_is_only_recorded() {
    let mut state = State::new();
    let mut c = ConnectionState::new("Snowflake");
    c.step = Step::Registered;
    c.applied = Some(fields(&[("warehouse", json!("WH"))]));
    let want = fields(&[("warehouse", json!("WH2"))]);
    c.pending = Some(Pending::new(PendingOp::Update, want.clone()));
    state.connections.insert("k".into(), c);
    let desired = BTreeMap::from([(
        "k".to_owned(),
        DesiredView {
            technology: "Snowflake",
            fields: std::borrow::Cow::Owned(want.clone()),
            protect: false,
        },
    )]);
    let live = Live {
        keys: ["k".to_owned()].into(),
        fields: BTreeMap::from([("k".to_owned(), want)]),
        integration_ids: BTreeMap::new(),
        child_counts: BTreeMap::new(),
        health: Vec::new(),
    };
    let p = plan(&desired, &state, Some(&live), &PlanOptions::default(), vec![]).unwrap();
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Resume);
    assert_eq!(c.operations, vec![Operation::RecordState]);
    assert!(c.fields.is_empty());
    assert_eq!(p.summary.drifted, 0);
}

fn pending_delete(in_yaml: bool, prune: bool) -> Plan {
    let mut state = State::new();
    let mut c = ConnectionState::new("Snowflake");
    c.step = Step::Deregistered;
    c.applied = Some(fields(&[("warehouse", json!("WH"))]));
    let mut p = Pending::new(PendingOp::Delete, FieldMap::new());
    p.cleanup_script = Some(".connctl/scripts/k.delete.sql".into());
    c.pending = Some(p);
    state.connections.insert("k".into(), c);
    let mut desired = BTreeMap::new();
    if in_yaml {
        desired.insert(
            "k".to_owned(),
            DesiredView {
                technology: "Snowflake",
                fields: std::borrow::Cow::Owned(fields(&[("warehouse", json!("WH"))])),
                protect: false,
            },
        );
    }
    let options = PlanOptions {
        prune,
        ..PlanOptions::default()
    };
    plan(&desired, &state, Some(&Live::default()), &options, vec![]).unwrap()
}

#[test]
fn a_pending_delete_is_finished_with_its_saved_cleanup_script_even_without_prune() {
    for prune in [false, true] {
        let p = pending_delete(false, prune);
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Resume);
        assert_eq!(c.operations, vec![Operation::Deregister]);
        assert_eq!(c.risk, Risk::Destructive);
        let note = c.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("cleanup script is saved at .connctl/scripts/k.delete.sql"),
            "{note}"
        );
    }
}

#[test]
fn a_pending_delete_of_a_replace_registers_again_afterwards() {
    let p = pending_delete(true, false);
    assert_eq!(p.changes[0].action, Action::Resume);
    assert_eq!(
        p.changes[0].operations,
        vec![Operation::Deregister, Operation::Register]
    );
}
#[test]
fn a_create_lists_every_attribute_it_sends_secrets_without_a_value() {
    let want = fields(&[
        ("host", json!("h.example")),
        ("auth.password", json!("sha256:abc")),
        ("protect", json!(true)),
    ]);
    let desired = BTreeMap::from([(
        "k".to_owned(),
        DesiredView {
            technology: "Snowflake",
            fields: std::borrow::Cow::Owned(want),
            protect: true,
        },
    )]);
    let p = plan(&desired, &State::new(), None, &PlanOptions::default(), vec![]).unwrap();
    let attrs = &p.changes[0].attributes;
    assert_eq!(
        attrs,
        &vec![
            Attribute {
                path: "auth.password".into(),
                value: Value::Null,
                sensitive: true
            },
            Attribute {
                path: "host".into(),
                value: json!("h.example"),
                sensitive: false
            },
        ]
    );
    assert!(!serde_json::to_string(&p).unwrap().contains("sha256:abc"));
}
