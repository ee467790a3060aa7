//! What a worker records as it goes: progress events for the CLI, journal lines in the state,
//! and the stop check before each step.

use std::path::PathBuf;

use super::{Event, EventKind, Flow, Halt, Worker};
use crate::immuta::Immuta;
use crate::state::{ConnectionState, Phase, Task};

impl<C: Immuta> Worker<C> {
    pub(super) fn emit(&self, key: &str, kind: EventKind) {
        (self.events)(Event {
            key: key.to_owned(),
            kind,
        });
    }

    /// Starts a step: refused once a stop was requested, so nothing new begins after a signal.
    pub(super) fn step(&self, key: &str, task: Task) -> Flow<()> {
        if self.options.stop.is_requested() {
            return Err(Halt::Interrupted(format!(
                "stopped before `{}`; the next apply resumes it",
                task.as_str()
            )));
        }
        self.emit(key, EventKind::Step(task));
        Ok(())
    }

    /// Appends one journal line (and nothing else) and waits until it is on disk.
    pub(super) async fn journal(
        &self,
        key: &str,
        tech: &str,
        task: Task,
        phase: Phase,
        detail: Option<String>,
    ) -> Flow<()> {
        self.store
            .update(key, tech, move |s| s.journal(task, phase, detail))
            .await?;
        Ok(())
    }
}

/// Where the script a connection waits for was saved, from its journal.
pub(super) fn awaiting_path(state: Option<&ConnectionState>) -> PathBuf {
    state
        .and_then(|s| s.journal.iter().rev().find(|j| j.phase == Phase::Awaiting))
        .and_then(|j| j.detail.clone())
        .map(PathBuf::from)
        .unwrap_or_default()
}
