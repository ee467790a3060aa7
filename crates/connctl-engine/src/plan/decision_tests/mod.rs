//! The planner's decision table, row by row: every action, every operation an update can need,
//! every cause, and the gates (prune, protect, max-deletes, cascade, registration-only fields).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::fields::FieldMap;
use crate::refresh::Live;
use crate::state::{ConnectionState, Pending, PendingOp, State, Step};

fn fields(pairs: &[(&str, Value)]) -> FieldMap {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// The fields every test starts from: one of each class.
fn base() -> FieldMap {
    fields(&[
        ("host", json!("h.example")),
        ("warehouse", json!("WH")),
        ("auth.password", json!("sha256:one")),
        ("userRolePattern.exclude", json!(["ACCOUNTADMIN"])),
        ("settings.isActive", json!(true)),
        ("options.forceRecursiveCrawl", json!(false)),
        ("protect", json!(false)),
    ])
}

fn with(mut f: FieldMap, path: &str, value: Value) -> FieldMap {
    f.insert(path.to_owned(), value);
    f
}

/// One scenario for key `k`: what the YAML wants, what the state holds, what Immuta shows.
#[derive(Default)]
struct Case {
    want: Option<FieldMap>,
    technology: Option<&'static str>,
    state: Option<ConnectionState>,
    /// `None`: not refreshed. `Some(None)`: refreshed, `k` not live. `Some(Some(f))`: live with `f`.
    live: Option<Option<FieldMap>>,
    options: PlanOptions,
    spec_files: Vec<String>,
}

impl Case {
    fn plan(&self) -> Plan {
        let desired: BTreeMap<String, DesiredView<'_>> = self
            .want
            .iter()
            .map(|f| {
                (
                    "k".to_owned(),
                    DesiredView {
                        technology: self.technology.unwrap_or("Snowflake"),
                        fields: std::borrow::Cow::Owned(f.clone()),
                        protect: false,
                    },
                )
            })
            .collect();
        let mut state = State::new();
        if let Some(s) = &self.state {
            state.connections.insert("k".into(), s.clone());
        }
        let live = self.live.as_ref().map(|l| {
            let mut live = Live::default();
            if let Some(f) = l {
                live.keys.insert("k".into());
                live.fields.insert("k".into(), f.clone());
            }
            live
        });
        plan(
            &desired,
            &state,
            live.as_ref(),
            &self.options,
            self.spec_files.clone(),
        )
        .unwrap()
    }

    /// The one change for `k`.
    fn change(&self) -> Change {
        let p = self.plan();
        assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
        p.changes[0].clone()
    }
}

/// An entry registered with `applied`.
fn managed(applied: FieldMap) -> ConnectionState {
    let mut s = ConnectionState::new("Snowflake");
    s.step = Step::Registered;
    s.applied = Some(applied);
    s
}

/// The YAML wants `want`; the state applied `base()`; Immuta shows `base()`.
fn edit(want: FieldMap) -> Case {
    Case {
        want: Some(want),
        state: Some(managed(base())),
        live: Some(Some(base())),
        ..Case::default()
    }
}

#[test]
fn a_new_key_is_created_with_every_attribute_listed() {
    for live in [None, Some(None)] {
        let c = Case {
            want: Some(base()),
            live,
            ..Case::default()
        }
        .change();
        assert_eq!(c.action, Action::Create);
        assert_eq!(c.operations, vec![Operation::Register]);
        assert_eq!(c.risk, Risk::Additive);
        // `protect` is connctl's own: it is not an attribute Immuta receives.
        assert_eq!(c.attributes.len(), base().len() - 1);
    }
}

#[test]
fn a_live_key_missing_from_the_state_is_an_import_never_a_create() {
    let c = Case {
        want: Some(base()),
        live: Some(Some(base())),
        spec_files: vec!["a.yaml".into()],
        ..Case::default()
    }
    .change();
    assert_eq!(c.action, Action::Import);
    assert!(c.operations.is_empty());
    let note = c.note.unwrap();
    assert!(note.contains("`connctl import a.yaml --key k`"), "{note}");
}

#[test]
fn the_import_hint_says_paths_when_there_are_too_many_files_to_list() {
    let c = Case {
        want: Some(base()),
        live: Some(Some(base())),
        spec_files: (1..=4).map(|i| format!("{i}.yaml")).collect(),
        ..Case::default()
    }
    .change();
    assert!(c.note.unwrap().contains("`connctl import PATHS --key k`"));
}

#[test]
fn an_entry_that_never_finished_registering_is_created_again() {
    let mut s = ConnectionState::new("Snowflake");
    s.step = Step::Tested;
    let c = Case {
        want: Some(base()),
        state: Some(s),
        live: Some(None),
        ..Case::default()
    }
    .change();
    assert_eq!(c.action, Action::Create);
}

#[test]
fn a_registered_key_deleted_outside_connctl_is_recreated_and_counts_as_drift() {
    let p = Case {
        want: Some(base()),
        state: Some(managed(base())),
        live: Some(None),
        ..Case::default()
    }
    .plan();
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Recreate);
    assert_eq!(c.operations, vec![Operation::Register]);
    assert!(c.note.as_deref().unwrap().contains("deleted outside connctl"));
    assert_eq!((p.summary.create, p.summary.drifted), (1, 1));
}

#[test]
fn nothing_changed_is_unchanged_whether_refreshed_or_not() {
    for live in [None, Some(Some(base()))] {
        let p = Case {
            want: Some(base()),
            state: Some(managed(base())),
            live,
            ..Case::default()
        }
        .plan();
        assert!(p.changes.is_empty());
        assert_eq!(p.unchanged, vec!["k".to_owned()]);
        assert!(p.is_empty());
    }
}

#[test]
fn each_field_class_maps_to_its_operation() {
    for (path, value, op) in [
        ("warehouse", json!("WH2"), Operation::UpdateConnection),
        ("userRolePattern.exclude", json!([]), Operation::Rescript),
        ("settings.isActive", json!(false), Operation::Settings),
        ("protect", json!(true), Operation::RecordState),
    ] {
        let c = edit(with(base(), path, value)).change();
        assert_eq!(c.action, Action::Update, "{path}");
        assert_eq!(c.operations, vec![op], "{path}");
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].cause, Cause::Config, "{path}");
        assert_eq!(c.fields[0].class, fields::class_of(path));
        let risk = match op {
            Operation::RecordState => Risk::None,
            // Setting the status cascades to every child: classed like a deletion.
            Operation::Settings => Risk::Destructive,
            _ => Risk::InPlace,
        };
        assert_eq!(c.risk, risk, "{path}");
        assert!(c.attributes.is_empty());
    }
}

#[test]
fn an_update_of_several_classes_runs_connection_then_integration_then_settings() {
    let want = with(
        with(
            with(base(), "settings.isActive", json!(false)),
            "warehouse",
            json!("WH2"),
        ),
        "userRolePattern.exclude",
        json!([]),
    );
    let c = edit(want).change();
    assert_eq!(
        c.operations,
        vec![
            Operation::UpdateConnection,
            Operation::Rescript,
            Operation::Settings
        ]
    );
}

#[test]
fn immuta_moving_away_is_drift_and_both_moving_is_both() {
    let drift = Case {
        live: Some(Some(with(base(), "warehouse", json!("OTHER")))),
        ..edit(base())
    };
    let p = drift.plan();
    let f = &p.changes[0].fields[0];
    assert_eq!(
        (f.cause, &f.before, &f.after),
        (Cause::Drift, &json!("OTHER"), &json!("WH"))
    );
    assert_eq!(p.summary.drifted, 1);

    let both = Case {
        live: Some(Some(with(base(), "warehouse", json!("OTHER")))),
        ..edit(with(base(), "warehouse", json!("WH2")))
    };
    let p = both.plan();
    assert_eq!(p.changes[0].fields[0].cause, Cause::Both);
    assert_eq!(p.summary.drifted, 1);

    // Without a refresh only the YAML can have moved.
    let unrefreshed = Case {
        live: None,
        ..edit(with(base(), "warehouse", json!("WH2")))
    };
    assert_eq!(unrefreshed.change().fields[0].cause, Cause::Config);
    assert_eq!(unrefreshed.plan().summary.drifted, 0);
}

#[test]
fn a_changed_secret_is_reported_without_either_fingerprint() {
    let c = edit(with(base(), "auth.password", json!("sha256:two"))).change();
    assert_eq!(c.operations, vec![Operation::UpdateConnection]);
    let f = &c.fields[0];
    assert!(f.sensitive);
    assert_eq!((&f.before, &f.after), (&Value::Null, &Value::Null));
    assert!(!serde_json::to_string(&c).unwrap().contains("sha256:"));
}

#[test]
fn an_identity_change_is_a_destructive_replace_listing_the_new_attributes() {
    let c = edit(with(base(), "host", json!("other.example"))).change();
    assert_eq!(c.action, Action::Replace);
    assert_eq!(c.operations, vec![Operation::Deregister, Operation::Register]);
    assert_eq!(c.risk, Risk::Destructive);
    assert!(
        c.attributes
            .iter()
            .any(|a| a.path == "host" && a.value == json!("other.example"))
    );
    assert!(c.note.is_none());
}

#[test]
fn a_protected_replace_says_apply_refuses_it() {
    let mut s = managed(base());
    s.protect = true;
    let c = Case {
        state: Some(s),
        ..edit(with(base(), "host", json!("other.example")))
    }
    .change();
    assert_eq!(c.action, Action::Replace);
    assert!(
        c.note
            .unwrap()
            .starts_with("protected: replacing it would delete it")
    );
}

#[test]
fn setting_the_status_is_a_cascade_that_names_its_reach() {
    let mut case = edit(with(base(), "settings.isActive", json!(false)));
    let c = case.change();
    let cascade = c.cascade.clone().unwrap();
    assert!(!cascade.active);
    assert_eq!(cascade.child_objects, None);
    assert!(cascade.warning.is_none());
    assert_eq!(c.note.as_deref(), Some(cascade.note().as_str()));
    assert!(c.note.unwrap().ends_with("apply needs --allow-cascade"));

    // Turning a Databricks connection on also revokes access: the plan warns of it.
    case = Case {
        technology: Some("Databricks"),
        state: Some(managed(with(base(), "settings.isActive", json!(false)))),
        live: Some(Some(with(base(), "settings.isActive", json!(false)))),
        ..edit(base())
    };
    let c = case.change();
    let cascade = c.cascade.unwrap();
    assert!(cascade.active);
    assert!(cascade.warning.unwrap().starts_with("Databricks: Immuta REVOKEs"));
    assert_eq!(case.plan().cascades().count(), 1);
}

#[test]
fn a_registration_only_field_changed_in_the_yaml_is_a_plan_error_but_drift_is_not() {
    let p = edit(with(base(), "options.forceRecursiveCrawl", json!(true))).plan();
    assert_eq!(p.errors.len(), 1);
    assert!(p.errors[0].starts_with("`k`: options.forceRecursiveCrawl cannot change after registration"));

    let drift = Case {
        live: Some(Some(with(base(), "options.forceRecursiveCrawl", json!(true)))),
        ..edit(base())
    };
    assert!(drift.plan().errors.is_empty());
}

mod gates;
