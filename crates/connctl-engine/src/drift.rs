//! Drift as plan data: what Immuta changed outside connctl, worked out by planning what was
//! last applied (not the YAML) against what Immuta shows, and keeping only what Immuta moved.
//! The result is an ordinary [`Plan`], so every plan view can show it.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{self, Action, Cause, DesiredView, Plan, PlanOptions, Summary};
use crate::refresh::Live;
use crate::state::State;

/// What was last applied, as the planner's desired input: the state's connections that were
/// ever registered, narrowed to `only` when the YAML names the keys.
pub fn applied<'a>(state: &'a State, only: Option<&BTreeSet<String>>) -> BTreeMap<String, DesiredView<'a>> {
    state
        .connections
        .iter()
        .filter(|(k, _)| only.is_none_or(|o| o.contains(*k)))
        .filter_map(|(k, s)| {
            let fields = s.applied.as_ref()?;
            Some((
                k.clone(),
                DesiredView {
                    technology: &s.technology,
                    fields: std::borrow::Cow::Borrowed(fields),
                    protect: s.protect,
                },
            ))
        })
        .collect()
}

/// The drift between `applied` (see [`applied`]) and `live`: drifted fields (not the ones the
/// YAML changed) and objects deleted outside connctl. Every other connection is listed as
/// unchanged; connections in Immuta and in no state stay as information (`unmanaged`). The
/// summary counts drift only, not what a plan would do.
pub fn drift(
    applied: &BTreeMap<String, DesiredView<'_>>,
    state: &State,
    live: &Live,
) -> Result<Plan, globset::Error> {
    let mut plan = plan::plan(applied, state, Some(live), &PlanOptions::default(), vec![])?;
    let mut undrifted = Vec::new();
    plan.changes.retain_mut(|c| {
        c.fields.retain(|f| f.cause != Cause::Config);
        let drifted = c.action == Action::Recreate || (c.action == Action::Update && !c.fields.is_empty());
        if !drifted {
            undrifted.push(c.key.clone());
        }
        drifted
    });
    plan.unchanged.extend(undrifted);
    plan.unchanged.sort();
    plan.summary = Summary {
        drifted: plan.changes.len(),
        unchanged: plan.unchanged.len(),
        unmanaged: plan.unmanaged.len(),
        unhealthy: plan.summary.unhealthy,
        ..Default::default()
    };
    Ok(plan)
}

/// True when drift found something to report: a drifted or deleted connection, or a health
/// problem (a failed integration, a missing object).
pub fn found(plan: &Plan) -> bool {
    !plan.changes.is_empty() || !plan.health.is_empty() || !plan.objects.is_empty()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fields::FieldMap;
    use crate::state::{ConnectionState, Step};

    fn fields(pairs: &[(&str, serde_json::Value)]) -> FieldMap {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    /// Two registered connections `a` and `b` (warehouse WH) and one never registered (`c`).
    fn state() -> State {
        let mut state = State::new();
        for key in ["a", "b"] {
            let mut c = ConnectionState::new("Snowflake");
            c.step = Step::Registered;
            c.applied = Some(fields(&[("warehouse", json!("WH"))]));
            state.connections.insert(key.into(), c);
        }
        state
            .connections
            .insert("c".into(), ConnectionState::new("Snowflake"));
        state
    }

    fn live(keys: &[&str], warehouse: &str) -> Live {
        Live {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            fields: keys
                .iter()
                .map(|k| ((*k).to_owned(), fields(&[("warehouse", json!(warehouse))])))
                .collect(),
            ..Live::default()
        }
    }

    #[test]
    fn applied_skips_connections_never_registered_and_honours_only() {
        let state = state();
        assert_eq!(applied(&state, None).keys().collect::<Vec<_>>(), ["a", "b"]);
        let only = BTreeSet::from(["b".to_owned(), "c".to_owned()]);
        assert_eq!(applied(&state, Some(&only)).keys().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn nothing_moved_is_no_drift() {
        let state = state();
        let plan = drift(&applied(&state, None), &state, &live(&["a", "b"], "WH")).unwrap();
        assert!(!found(&plan));
        // `c` never reached Immuta: nothing of it can drift.
        assert_eq!(plan.unchanged, ["a", "b", "c"]);
        assert_eq!(plan.summary.unchanged, 3);
        assert_eq!(plan.summary.drifted, 0);
    }

    #[test]
    fn a_field_changed_in_immuta_is_drift_with_only_that_field() {
        let state = state();
        let plan = drift(&applied(&state, None), &state, &live(&["a", "b"], "OTHER")).unwrap();
        assert!(found(&plan));
        assert_eq!(plan.changes.len(), 2);
        assert!(plan.changes.iter().all(|c| c.action == Action::Update));
        assert!(plan.changes.iter().all(|c| {
            c.fields
                .iter()
                .all(|f| f.cause != Cause::Config && f.path == "warehouse")
        }));
        assert_eq!(plan.summary.drifted, 2);
        assert_eq!(plan.summary.update, 0, "the counts describe drift, not a plan");
    }

    #[test]
    fn a_connection_deleted_in_immuta_is_drift_and_unmanaged_ones_are_information() {
        let state = state();
        let mut seen = live(&["a"], "WH");
        seen.keys.insert("stranger".into());
        let plan = drift(&applied(&state, None), &state, &seen).unwrap();
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].key, "b");
        assert_eq!(plan.changes[0].action, Action::Recreate);
        assert_eq!(plan.unmanaged, ["stranger"]);
        assert_eq!(plan.summary.unmanaged, 1);
        assert_eq!(plan.unchanged, ["a", "c"]);
    }
}
