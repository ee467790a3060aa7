//! A state file written by connctl before the engine's vocabulary was typed (commit 6decba9:
//! creates, a pending create awaiting a person, a pending rescript, a pending delete whose
//! answer was lost, a failed execution, an import, an unprotect) still loads, reads as the
//! same operations, steps and phases, and is written back byte for byte.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use connctl_engine::state::{PendingOp, Phase, State, Step, Task};

const FIXTURE: &str = "tests/fixtures/state-v1-6decba9.json";

#[test]
fn a_state_file_of_the_previous_version_loads_and_round_trips() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let text = std::fs::read_to_string(&path).unwrap();
    let state = State::load(&path).unwrap();

    let op = |key: &str| state.connections[key].pending.as_ref().map(|p| p.operation);
    assert_eq!(op("dbxa"), Some(PendingOp::Create));
    assert_eq!(op("sf-rs"), Some(PendingOp::Rescript));
    assert_eq!(op("sf-ok"), Some(PendingOp::Delete));
    assert_eq!(op("sf-upd"), None);
    assert_eq!(state.connections["dbxa"].step, Step::AwaitingExecution);
    assert_eq!(state.connections["sf-ok"].step, Step::Deleting);
    assert_eq!(state.connections["sf-upd"].step, Step::Registered);

    let lines: Vec<(Task, Phase)> = state
        .connections
        .values()
        .flat_map(|c| c.journal.iter().map(|j| (j.step, j.phase)))
        .collect();
    for expected in [
        (Task::Script, Phase::Done),
        (Task::Execute, Phase::Intent),
        (Task::Execute, Phase::Awaiting),
        (Task::Execute, Phase::Failed),
        (Task::Test, Phase::Done),
        (Task::Register, Phase::Intent),
        (Task::Update, Phase::Done),
        (Task::EditScript, Phase::Done),
        (Task::Delete, Phase::Intent),
        (Task::Import, Phase::Done),
        (Task::Unprotect, Phase::Done),
    ] {
        assert!(lines.contains(&expected), "{expected:?} not read");
    }

    // The same spelling: writing it back changes nothing.
    assert_eq!(serde_json::to_string_pretty(&state).unwrap() + "\n", text);
}
