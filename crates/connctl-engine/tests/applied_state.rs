//! A state file written by `connctl apply --wait` (this version, against the bundled emulator)
//! from `fixtures/applied/connections.yaml` loads, is written back byte for byte, and plans
//! with no change against the YAML it was applied from — from the state alone and with Immuta
//! showing what was applied.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connctl_engine::apply::fingerprinted;
use connctl_engine::fields::{FieldMap, is_secret};
use connctl_engine::plan::{DesiredView, PlanOptions, plan};
use connctl_engine::refresh::Live;
use connctl_engine::state::{State, Step};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/applied")
        .join(name)
}

#[test]
fn a_state_written_by_apply_loads_round_trips_and_plans_no_change() {
    let path = fixture("state.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let state = State::load(&path).unwrap();
    assert_eq!(serde_json::to_string_pretty(&state).unwrap() + "\n", text);
    for (key, c) in &state.connections {
        assert_eq!(c.step, Step::Registered, "{key}");
        assert!(c.pending.is_none(), "{key}");
        assert_eq!(c.bulk_ids[0].job_state.as_deref(), Some("completed"), "{key}");
    }

    let desired = connctl_spec::load(&[fixture("connections.yaml")]).unwrap();
    let fields: BTreeMap<String, FieldMap> = desired
        .connections
        .iter()
        .map(|c| (c.key.clone(), fingerprinted(c, &state.salt).unwrap()))
        .collect();
    let views: BTreeMap<String, DesiredView<'_>> = desired
        .connections
        .iter()
        .map(|c| {
            let view = DesiredView {
                technology: c.technology().as_str(),
                fields: std::borrow::Cow::Borrowed(&fields[&c.key]),
                protect: c.protect,
            };
            (c.key.clone(), view)
        })
        .collect();

    // Immuta shows what was applied (it never shows secrets).
    let live = Live {
        keys: state.connections.keys().cloned().collect(),
        fields: state
            .connections
            .iter()
            .map(|(k, c)| {
                let shown = c
                    .applied
                    .clone()
                    .unwrap()
                    .into_iter()
                    .filter(|(p, _)| !is_secret(p));
                (k.clone(), shown.collect())
            })
            .collect(),
        ..Live::default()
    };
    for live in [None, Some(&live)] {
        let p = plan(&views, &state, live, &PlanOptions::default(), vec![]).unwrap();
        assert!(p.changes.is_empty(), "{:#?}", p.changes);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.unchanged, vec!["databricks-prod", "snowflake-prod"]);
        assert_eq!(p.summary.drifted, 0);
    }
}
