//! The apply report: the one JSON document `connctl apply --format json` writes to standard
//! output (`docs/plan-json.md#apply-json`, schema `docs/apply-json.schema.json`). It is built
//! from the outcomes and from what the run added to the state's journal and bulk records.

use std::collections::BTreeMap;

use connctl_engine::apply::Outcome;
use connctl_engine::plan::{Action, Plan};
use connctl_engine::state::{Phase, State};
use serde::Serialize;

/// The apply report format version; fields are added, never renamed or removed, within one.
pub const APPLY_FORMAT_VERSION: u32 = 1;

/// How the run ended as a whole.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    /// Every connection applied (or left for a person to run its script).
    Applied,
    /// At least one connection failed.
    Failed,
    /// Stopped by a signal; the next apply resumes.
    Interrupted,
    /// Nothing was sent: the plan has errors, or apply refused it (see `errors`).
    Refused,
    /// The plan had nothing to do.
    NoChanges,
}

#[derive(Debug, Serialize)]
pub struct ApplyReport {
    pub format_version: u32,
    pub result: RunResult,
    pub exit_code: u8,
    /// `SIGINT` or `SIGTERM` when a signal stopped the run.
    pub signal: Option<&'static str>,
    pub summary: Counts,
    /// Why nothing was sent (plan errors, a refusal), secrets removed.
    pub errors: Vec<String>,
    /// One entry per connection the run worked on, sorted by key.
    pub connections: Vec<ConnectionReport>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub applied: usize,
    pub awaiting_execution: usize,
    pub skipped: usize,
    pub failed: usize,
    pub interrupted: usize,
}

/// What happened to one connection.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionResult {
    Applied,
    AwaitingExecution,
    Skipped,
    Failed,
    Interrupted,
}

#[derive(Debug, Serialize)]
pub struct ConnectionReport {
    pub key: String,
    pub technology: String,
    /// The plan action (`create`, `update`, …).
    pub action: &'static str,
    pub result: ConnectionResult,
    /// One line for a human: what was done, why it was skipped, or the error.
    pub detail: String,
    /// The saved script a person must run (`awaiting-execution` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The connection's step in the state after the run.
    pub step: Option<&'static str>,
    /// The steps this run finished, in order (journal names: `script`, `execute`, `register`, …).
    pub steps_done: Vec<&'static str>,
    /// The steps this run tried and that failed.
    pub steps_failed: Vec<&'static str>,
    /// The bulk jobs this run started, with the job state last seen (`null` unless followed with
    /// `--wait`).
    pub bulk_ids: Vec<BulkReport>,
}

#[derive(Debug, Serialize)]
pub struct BulkReport {
    pub bulk_id: String,
    pub origin: String,
    pub job_state: Option<String>,
}

impl ApplyReport {
    /// A run that sent nothing.
    pub fn refused(errors: Vec<String>) -> ApplyReport {
        ApplyReport {
            format_version: APPLY_FORMAT_VERSION,
            result: RunResult::Refused,
            exit_code: 1,
            signal: None,
            summary: Counts::default(),
            errors: errors.iter().map(|e| redact(e)).collect(),
            connections: Vec::new(),
        }
    }

    pub fn no_changes() -> ApplyReport {
        ApplyReport {
            result: RunResult::NoChanges,
            exit_code: 0,
            ..ApplyReport::refused(Vec::new())
        }
    }

    /// A run that applied: each outcome with what the state gained between `before` and `after`.
    pub fn of_run(
        plan: &Plan,
        outcomes: &BTreeMap<String, Outcome>,
        before: &State,
        after: &State,
        signal: Option<&'static str>,
        exit_code: u8,
    ) -> ApplyReport {
        let mut summary = Counts::default();
        let mut connections = Vec::new();
        for (key, outcome) in outcomes {
            let (result, detail, script) = match outcome {
                Outcome::Applied { detail } => (ConnectionResult::Applied, detail.clone(), None),
                Outcome::AwaitingExecution { path } => (
                    ConnectionResult::AwaitingExecution,
                    "run the saved script as a privileged user, then run `connctl apply` again".into(),
                    Some(path.display().to_string()),
                ),
                Outcome::Skipped { reason } => (ConnectionResult::Skipped, reason.clone(), None),
                Outcome::Failed { error } => (
                    ConnectionResult::Failed,
                    crate::error::apply_error_text(error),
                    None,
                ),
                Outcome::Interrupted { detail, help } => (
                    ConnectionResult::Interrupted,
                    crate::error::joined(detail.clone(), help),
                    None,
                ),
            };
            *match result {
                ConnectionResult::Applied => &mut summary.applied,
                ConnectionResult::AwaitingExecution => &mut summary.awaiting_execution,
                ConnectionResult::Skipped => &mut summary.skipped,
                ConnectionResult::Failed => &mut summary.failed,
                ConnectionResult::Interrupted => &mut summary.interrupted,
            } += 1;
            let change = plan.changes.iter().find(|c| &c.key == key);
            let was = before.connections.get(key);
            let now = after.connections.get(key);
            // This run's journal lines: those after the last line the state had before it.
            let journal = now.map(|s| s.journal.as_slice()).unwrap_or_default();
            let start = was
                .and_then(|w| w.journal.last())
                .and_then(|last| journal.iter().rposition(|e| e == last))
                .map_or(0, |i| i + 1);
            let run = &journal[start.min(journal.len())..];
            let steps = |phase: Phase| -> Vec<&'static str> {
                run.iter()
                    .filter(|e| e.phase == phase)
                    .map(|e| e.step.as_str())
                    .collect()
            };
            let bulk_ids = now
                .map(|s| s.bulk_ids.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|b| was.is_none_or(|w| !w.bulk_ids.iter().any(|o| o.bulk_id == b.bulk_id)))
                .map(|b| BulkReport {
                    bulk_id: b.bulk_id.clone(),
                    origin: b.origin.clone(),
                    job_state: b.job_state.clone(),
                })
                .collect();
            connections.push(ConnectionReport {
                key: key.clone(),
                technology: change
                    .map(|c| c.technology.clone())
                    .or_else(|| now.map(|s| s.technology.clone()))
                    .unwrap_or_default(),
                // A connection whose only changes are its objects' is updated in place.
                action: match change {
                    Some(c) => c.action.as_str(),
                    None if plan.objects.iter().any(|o| &o.key == key) => Action::Update.as_str(),
                    None => "unknown",
                },
                result,
                detail: redact(&detail),
                script,
                step: now.map(|s| s.step.as_str()),
                steps_done: steps(Phase::Done),
                steps_failed: steps(Phase::Failed),
                bulk_ids,
            });
        }
        let result = if signal.is_some() {
            RunResult::Interrupted
        } else if summary.failed > 0 {
            RunResult::Failed
        } else {
            RunResult::Applied
        };
        ApplyReport {
            format_version: APPLY_FORMAT_VERSION,
            result,
            exit_code,
            signal,
            summary,
            errors: Vec::new(),
            connections,
        }
    }

    /// The document, secrets removed (an outcome can quote a server's answer).
    pub fn to_json(&self) -> String {
        let text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        redact(&text) + "\n"
    }
}

fn redact(text: &str) -> String {
    connctl_spec::redact(text).into_owned()
}
