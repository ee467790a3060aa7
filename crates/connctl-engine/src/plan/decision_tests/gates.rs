//! The gates: orphans, --prune, protection, forget, --max-deletes, resume, unmanaged keys,
//! --target and health.

use serde_json::json;

use super::*;

fn orphan_case(prune: bool, protect: bool, live: Option<Option<FieldMap>>) -> Case {
    let mut s = managed(base());
    s.protect = protect;
    Case {
        want: None,
        state: Some(s),
        live,
        options: PlanOptions {
            prune,
            ..PlanOptions::default()
        },
        ..Case::default()
    }
}

#[test]
fn a_key_that_left_the_yaml_is_an_orphan_left_alone_without_prune() {
    for live in [None, Some(Some(base()))] {
        let c = orphan_case(false, false, live).change();
        assert_eq!(c.action, Action::Orphan);
        assert!(c.operations.is_empty());
        assert_eq!(c.risk, Risk::None);
        assert!(c.note.unwrap().contains("use --prune to delete it"));
    }
}

#[test]
fn with_prune_an_orphan_is_deleted_refreshed_or_not() {
    for live in [None, Some(Some(base()))] {
        let p = orphan_case(true, false, live).plan();
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Delete);
        assert_eq!(c.operations, vec![Operation::Deregister]);
        assert_eq!(c.risk, Risk::Destructive);
        assert!(p.is_destructive());
        assert_eq!(p.summary.delete, 1);
    }
}

#[test]
fn a_protected_orphan_is_left_alone_even_with_prune_or_when_gone() {
    for live in [Some(Some(base())), Some(None)] {
        let c = orphan_case(true, true, live).change();
        assert_eq!(c.action, Action::Orphan);
        assert!(
            c.note
                .unwrap()
                .starts_with("protected: left alone even with --prune")
        );
    }
}

#[test]
fn an_entry_with_nothing_left_in_immuta_is_forgotten_with_or_without_prune() {
    for prune in [false, true] {
        let p = orphan_case(prune, false, Some(None)).plan();
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Forget);
        assert_eq!(c.operations, vec![Operation::RecordState]);
        assert_eq!(c.risk, Risk::None);
        assert_eq!((p.summary.forget, p.summary.delete), (1, 0));
        assert!(!p.is_destructive());
        assert!(!p.is_empty());
    }
}

#[test]
fn max_deletes_counts_deletes_and_replaces_but_not_forgets() {
    let mut over = orphan_case(true, false, Some(Some(base())));
    over.options.max_deletes = Some(0);
    let p = over.plan();
    assert_eq!(p.errors.len(), 1);
    assert!(p.errors[0].contains("more than --max-deletes 0 allows"));

    let mut replace = edit(with(base(), "host", json!("other.example")));
    replace.options.max_deletes = Some(0);
    assert_eq!(replace.plan().errors.len(), 1);

    let mut forget = orphan_case(true, false, Some(None));
    forget.options.max_deletes = Some(0);
    assert!(forget.plan().errors.is_empty());
}

#[test]
fn an_interrupted_create_is_resumed_and_says_where_it_stopped() {
    let mut s = ConnectionState::new("Snowflake");
    s.step = Step::Executed;
    s.pending = Some(Pending::new(PendingOp::Create, base()));
    let p = Case {
        want: Some(base()),
        state: Some(s),
        live: Some(None),
        ..Case::default()
    }
    .plan();
    let c = &p.changes[0];
    assert_eq!(c.action, Action::Resume);
    assert_eq!(c.operations, vec![Operation::Register]);
    assert_eq!(c.risk, Risk::Additive);
    assert_eq!(
        c.note.as_deref(),
        Some("an interrupted `create` stopped at step `executed`; apply checks Immuta and carries on")
    );
    assert_eq!(p.summary.resume, 1);
}

#[test]
fn a_key_only_immuta_has_is_unmanaged_and_never_touched() {
    let p = Case {
        live: Some(Some(base())),
        ..Case::default()
    }
    .plan();
    assert!(p.changes.is_empty());
    assert_eq!(p.unmanaged, vec!["k".to_owned()]);
    assert_eq!(p.summary.unmanaged, 1);
}

#[test]
fn targets_leave_other_keys_out_of_the_plan() {
    let mut case = Case {
        want: Some(base()),
        ..Case::default()
    };
    case.options.targets = vec!["other-*".into()];
    let p = case.plan();
    assert!(p.changes.is_empty() && p.unchanged.is_empty());
    case.options.targets = vec!["k*".into()];
    assert_eq!(case.change().action, Action::Create);
    case.options.targets = vec!["[".into()];
    let desired = BTreeMap::new();
    assert!(plan(&desired, &State::new(), None, &case.options, vec![]).is_err());
}

#[test]
fn health_problems_are_carried_per_key_and_counted_once() {
    let mut live = Live::default();
    live.keys.insert("k".into());
    live.fields.insert("k".into(), base());
    for kind in [HealthKind::IntegrationFailed, HealthKind::ObjectMissing] {
        live.health.push(HealthIssue {
            key: "k".into(),
            kind,
            detail: kind.as_str().into(),
        });
    }
    let mut state = State::new();
    state.connections.insert("k".into(), managed(base()));
    let desired = BTreeMap::from([(
        "k".to_owned(),
        DesiredView {
            technology: "Snowflake",
            fields: std::borrow::Cow::Owned(base()),
            protect: false,
        },
    )]);
    let p = plan(&desired, &state, Some(&live), &PlanOptions::default(), vec![]).unwrap();
    assert_eq!(p.health.len(), 2);
    assert_eq!(p.summary.unhealthy, 1);
    assert_eq!(p.live_fingerprints["k"], live.fingerprint("k"));
    assert_eq!(p.desired_fingerprints["k"], fields::digest(&base()));
}
