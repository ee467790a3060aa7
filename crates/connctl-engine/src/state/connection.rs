//! What connctl knows of one connection: its step, what was applied, the operation in
//! flight, and the journal of its last steps. The JSON spelling is the one state files have
//! always had.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::now;
use crate::fields::FieldMap;
use crate::objects::ObjectSettings;

/// Journal entries kept per connection; older ones are dropped.
const JOURNAL_LIMIT: usize = 64;

/// Everything connctl knows about one connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionState {
    pub technology: String,
    /// The step reached by the last operation.
    pub step: Step,
    /// Deletion is refused while true, even after the entry leaves the YAML.
    #[serde(default)]
    pub protect: bool,
    /// The spec last applied in full (secrets as fingerprints); `None` before the first
    /// registration completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<FieldMap>,
    /// The operation in flight, if a run stopped part-way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bulk_ids: Vec<BulkRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<ScriptRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
    /// The data objects of `objects:` connctl set, by path as the YAML writes it (absent in
    /// state files from before objects, which load unchanged).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, ObjectRecord>,
}

/// What connctl last set on one data object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRecord {
    /// The settings Immuta was last seen to match (the managed ones only).
    pub applied: ObjectSettings,
    /// A `PUT /data/settings/{path}` sent (or about to be) whose outcome is not confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<ObjectSettings>,
    /// The bulkId of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_id: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub at: String,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Nothing done yet.
    #[default]
    New,
    /// A script was obtained; it has not run.
    Scripted,
    /// The manual executor saved the script; a person must run it.
    AwaitingExecution,
    /// The script ran.
    Executed,
    /// The dry run passed.
    Tested,
    /// Registration was sent; its outcome is being confirmed.
    Registering,
    /// In Immuta, matching `applied`.
    Registered,
    /// Deregistration started: the cleanup script is saved and the DELETE may have been sent.
    Deleting,
    /// Immuta no longer has it; the cleanup script has not run yet.
    Deregistered,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::New => "new",
            Step::Scripted => "scripted",
            Step::AwaitingExecution => "awaiting-execution",
            Step::Executed => "executed",
            Step::Tested => "tested",
            Step::Registering => "registering",
            Step::Registered => "registered",
            Step::Deleting => "deleting",
            Step::Deregistered => "deregistered",
        }
    }
}

/// An operation that has started and not finished.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pending {
    pub operation: PendingOp,
    /// The spec being applied (secrets as fingerprints).
    pub target: FieldMap,
    /// sha256 of the script of this operation, once obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_sha256: Option<String>,
    /// A delete's cleanup script, saved (mode 0600) before the `DELETE`; kept until it ran or
    /// was handed to a person, so neither a lost answer nor a kill can lose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_script: Option<PathBuf>,
}

impl Pending {
    pub fn new(operation: PendingOp, target: FieldMap) -> Pending {
        Pending {
            operation,
            target,
            script_sha256: None,
            cleanup_script: None,
        }
    }
}

/// The kind of operation in flight. The JSON spelling is the one state files have always had.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PendingOp {
    /// script → execute → test → register.
    Create,
    /// In-place changes: connection update, rescript, settings.
    Update,
    /// An edit script; written by versions before `update` covered it, read as an update.
    Rescript,
    /// delete script → `DELETE` → cleanup.
    Delete,
}

impl PendingOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingOp::Create => "create",
            PendingOp::Update => "update",
            PendingOp::Rescript => "rescript",
            PendingOp::Delete => "delete",
        }
    }
}

/// A `bulkId` Immuta returned, with what produced it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkRecord {
    pub bulk_id: String,
    /// `register`, `update`, `settings`, `crawl`.
    pub origin: String,
    pub at: String,
    /// The job state last seen, if followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
}

impl BulkRecord {
    /// Its job was followed and ended without doing its work (failed, cancelled or expired):
    /// whatever the write it carries was to change may not have happened.
    pub fn did_not_complete(&self) -> bool {
        self.job_state
            .as_deref()
            .is_some_and(|s| connctl_immuta::JobState::from(s).is_unsuccessful())
    }
}

/// The sha256 of a script executed (never the script: it can hold passwords).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptRecord {
    pub purpose: String,
    pub sha256: String,
    pub at: String,
}

/// One line of the journal: an intent written before a remote call, or its outcome after.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JournalEntry {
    pub at: String,
    pub step: Task,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a journal line is about. The JSON spelling is the one state files have always had.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// `POST /integrations/scripts/create`.
    Script,
    /// Running a script with an executor.
    Execute,
    /// `POST /data/connection/test`.
    Test,
    /// `POST /data/connection`.
    Register,
    /// `PUT /data/connection/{key}`, and an update as a whole.
    Update,
    /// `PUT /data/settings/{key}`.
    Settings,
    /// `PUT /data/settings/{key/path}` of a data object below the connection.
    ObjectSettings,
    /// `POST /integrations/{id}/scripts/edit`.
    EditScript,
    /// `PUT /integrations/{id}`.
    UpdateIntegration,
    /// `POST /integrations/{id}/scripts/delete`, saved before the `DELETE`.
    DeleteScript,
    /// `DELETE /data/object/{key}`.
    Delete,
    /// Running (or handing over) a delete's cleanup script.
    Cleanup,
    /// Following a bulk job.
    Await,
    /// `connctl import`.
    Import,
    /// `connctl state unprotect`.
    Unprotect,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Script => "script",
            Task::Execute => "execute",
            Task::Test => "test",
            Task::Register => "register",
            Task::Update => "update",
            Task::Settings => "settings",
            Task::ObjectSettings => "object-settings",
            Task::EditScript => "edit-script",
            Task::UpdateIntegration => "update-integration",
            Task::DeleteScript => "delete-script",
            Task::Delete => "delete",
            Task::Cleanup => "cleanup",
            Task::Await => "await",
            Task::Import => "import",
            Task::Unprotect => "unprotect",
        }
    }

    /// How a progress line names the step. The journal keeps [`Task::as_str`] (old state files
    /// spell it so); progress says `update-connection`, as `update` is already the action's name.
    pub fn label(self) -> &'static str {
        match self {
            Task::Update => "update-connection",
            other => other.as_str(),
        }
    }
}

/// Where a journal line stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Written before the remote call.
    Intent,
    Done,
    Failed,
    /// Saved for a person to run.
    Awaiting,
}

impl ConnectionState {
    pub fn new(technology: &str) -> ConnectionState {
        ConnectionState {
            technology: technology.to_owned(),
            ..ConnectionState::default()
        }
    }

    /// Appends to the journal, keeping the last [`JOURNAL_LIMIT`] entries. The detail (often
    /// a server's or an executor's error) is stored with every secret of the run removed.
    pub fn journal(&mut self, step: Task, phase: Phase, detail: Option<String>) {
        self.journal.push(JournalEntry {
            at: now(),
            step,
            phase,
            detail: detail.map(|d| connctl_spec::redact(&d).into_owned()),
        });
        if self.journal.len() > JOURNAL_LIMIT {
            let excess = self.journal.len() - JOURNAL_LIMIT;
            self.journal.drain(..excess);
        }
    }

    pub fn record_bulk(&mut self, bulk_id: String, origin: &str) {
        if !self.bulk_ids.iter().any(|b| b.bulk_id == bulk_id) {
            self.bulk_ids.push(BulkRecord {
                bulk_id,
                origin: origin.to_owned(),
                at: now(),
                job_state: None,
            });
        }
    }

    pub fn last_bulk(&self) -> Option<&BulkRecord> {
        self.bulk_ids.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_is_bounded() {
        let mut c = ConnectionState::new("Snowflake");
        for i in 0..200 {
            c.journal(Task::Script, Phase::Intent, Some(i.to_string()));
        }
        assert_eq!(c.journal.len(), JOURNAL_LIMIT);
        assert_eq!(c.journal.last().unwrap().detail.as_deref(), Some("199"));
    }
}
