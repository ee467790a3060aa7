//! The plan's data: what a [`Plan`] holds and how it is serialised (`docs/plan-json.md`),
//! and the planner's inputs ([`PlanOptions`], [`DesiredView`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fields::{FieldClass, FieldMap};

/// The plan JSON format version (`docs/plan-json.md`).
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub format_version: u32,
    pub generated_at: String,
    /// The state this plan was made against; a saved plan is refused if it moved.
    pub state: StateRef,
    /// Whether Immuta was read (`--refresh=false` plans from state alone).
    pub refreshed: bool,
    /// With `--refresh=changed`: how many managed connections, unchanged since the last apply,
    /// were not read from Immuta (their drift is `connctl drift`'s job); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_read: Option<usize>,
    /// The spec files the plan was made from.
    pub spec_files: Vec<String>,
    /// Every connection with something to do, sorted by key.
    pub changes: Vec<Change>,
    /// Rows of the data objects listed under the connections (`objects:`), by connection in
    /// key order, parents before children (`docs/objects.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<crate::objects::ObjectChange>,
    /// Keys that need nothing.
    pub unchanged: Vec<String>,
    /// Live connections neither desired nor in state; never touched.
    pub unmanaged: Vec<String>,
    /// Reasons the plan cannot be applied as it stands (e.g. `--max-deletes` exceeded).
    pub errors: Vec<String>,
    /// Problems Immuta shows that applying cannot repair in place (a failed or missing
    /// integration, a missing data object): a person must look.
    #[serde(default)]
    pub health: Vec<HealthIssue>,
    pub summary: Summary,
    /// Per key: the fingerprint of what Immuta showed (or `absent`), to detect a stale plan.
    pub live_fingerprints: BTreeMap<String, String>,
    /// Per key: the fingerprint of the desired spec (secrets as fingerprints).
    pub desired_fingerprints: BTreeMap<String, String>,
}

/// The fingerprint of a secret that was not resolved (`plan --no-secrets`); shown as
/// `(sensitive, unknown)`.
pub const UNKNOWN_SECRET: &str = "(unknown)";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateRef {
    pub serial: u64,
    pub lineage: String,
    /// The fingerprint salt, so a plan made before the state file existed can be checked.
    pub salt: String,
    /// The Immuta tenant (normalised URL) the plan is for; a saved plan is refused elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The connctl.toml environment the plan is for; a saved plan is refused in another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Made with `--no-secrets` (or secrets that did not resolve): secret-dependent fields are
    /// unknown, so the plan can be read but never applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secrets_unknown: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub key: String,
    pub technology: String,
    pub action: Action,
    /// The remote operations, in the order they run.
    pub operations: Vec<Operation>,
    pub risk: Risk,
    /// Field-level reasons; empty for create/delete/import (a create lists `attributes`).
    pub fields: Vec<FieldChange>,
    /// One line for a human: why, or what happens next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set when the change sets the connection's own status, which Immuta applies to every
    /// child object too. Classed like a deletion: risk `destructive`, and apply refuses it
    /// without `--allow-cascade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Cascade>,
    /// Every attribute a create, recreate or replace registers with, so a reviewer can check
    /// them; empty for every other action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
}

/// One attribute a registration sends. Secrets carry no value, only `sensitive`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attribute {
    pub path: String,
    /// The desired value; `null` for secrets.
    pub value: Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// What setting a connection's `isActive` does beyond the connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cascade {
    /// The status the connection, and with it each child object, will have.
    pub active: bool,
    /// How many objects (databases, schemas, tables) are below it; `None` when not read.
    pub child_objects: Option<u64>,
    /// What else the status change does on this technology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Cascade {
    /// The change's note: what the status change reaches, and that apply needs a flag for it.
    pub fn note(&self) -> String {
        let objects = match self.child_objects {
            Some(n) => format!("its {n} child object(s)"),
            None => "every child object (count not read)".into(),
        };
        format!(
            "sets the connection {}; Immuta applies that to {objects} too; apply needs --allow-cascade",
            if self.active { "active" } else { "inactive" }
        )
    }
}

/// A problem Immuta shows with a managed connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthIssue {
    pub key: String,
    pub kind: HealthKind,
    /// One line for a human: what Immuta answered.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HealthKind {
    /// The integration backing the connection reports a failed status.
    IntegrationFailed,
    /// `GET /integrations/{id}` answered 404.
    IntegrationMissing,
    /// `GET /data/object/{key}` answered 404 while the connection exists.
    ObjectMissing,
}

impl HealthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthKind::IntegrationFailed => "integration failed",
            HealthKind::IntegrationMissing => "integration missing",
            HealthKind::ObjectMissing => "object missing",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Import,
    Update,
    Replace,
    Recreate,
    Resume,
    Orphan,
    Delete,
    /// Drop a state entry that has nothing in Immuta (never registered, or deleted outside).
    Forget,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Import => "import",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Recreate => "recreate",
            Action::Resume => "resume",
            Action::Orphan => "orphan",
            Action::Delete => "delete",
            Action::Forget => "forget",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// script → execute → test → register.
    Register,
    /// `PUT /data/connection/{key}`.
    UpdateConnection,
    /// edit script → execute → `PUT /integrations/{id}`.
    Rescript,
    /// `PUT /data/settings/{key}`.
    Settings,
    /// delete script → `DELETE /data/object/{key}` → execute the cleanup script.
    Deregister,
    /// Only the state changes.
    RecordState,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    None,
    Additive,
    InPlace,
    Destructive,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    Config,
    Drift,
    Both,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FieldChange {
    pub path: String,
    pub cause: Cause,
    pub class: FieldClass,
    /// What Immuta has now (live when read, else last applied); `null` for secrets.
    pub before: Value,
    /// What the YAML wants; `null` for secrets.
    pub after: Value,
    /// Secret fields carry no values, only whether they changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub drifted: usize,
    pub import: usize,
    pub orphan: usize,
    pub resume: usize,
    pub forget: usize,
    pub unmanaged: usize,
    pub unchanged: usize,
    /// Managed connections with a health problem.
    #[serde(default)]
    pub unhealthy: usize,
}

/// Knobs of one planning run.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only keys matching one of these globs (all when empty).
    pub targets: Vec<String>,
    /// Turn orphans into deletes.
    pub prune: bool,
    /// Refuse a plan deleting (or replacing) more than this many connections.
    pub max_deletes: Option<usize>,
}

/// The desired side, already flattened (secrets fingerprinted). The fields are borrowed from
/// where they were made (a plan's targets), so a plan of 10,000 connections holds one copy.
pub struct DesiredView<'a> {
    pub technology: &'a str,
    pub fields: Cow<'a, FieldMap>,
    pub protect: bool,
}

impl Plan {
    /// True when applying would change nothing (a missing object cannot be set).
    pub fn is_empty(&self) -> bool {
        self.changes
            .iter()
            .all(|c| matches!(c.action, Action::Import | Action::Orphan))
            && self
                .objects
                .iter()
                .all(|o| o.action == crate::objects::ObjectAction::Missing)
    }

    /// True when applying would delete or replace something, or make a high-risk object change
    /// (a deactivation, or an activation over children a person set).
    pub fn is_destructive(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.risk == Risk::Destructive && c.action != Action::Orphan)
            || self.object_gates().next().is_some()
    }

    /// The object rows `apply` refuses without `--allow-cascade`.
    pub fn object_gates(&self) -> impl Iterator<Item = &crate::objects::ObjectChange> {
        self.objects.iter().filter(|o| o.high_risk.is_some())
    }

    /// The changes that set a connection's status (and so its children's).
    pub fn cascades(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.cascade.is_some())
    }
}
