//! The planner: Desired × State × Live → a typed, versioned [`Plan`].
//!
//! Every key in the union of the three gets one row of DESIGN.md §5: create, import
//! suggested, update / rescript / settings (in place), replace, recreate, orphan or delete,
//! unmanaged, resume of an interrupted operation, or noop. Each change names its fields with
//! their cause: `config` (the YAML moved away from what was applied), `drift` (Immuta moved
//! away from what was applied), or both.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fields::{self, FieldClass, FieldMap};
use crate::refresh::Live;
use crate::state::{ConnectionState, Pending, PendingOp, State, Step};

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
    /// The spec files the plan was made from.
    pub spec_files: Vec<String>,
    /// Every connection with something to do, sorted by key.
    pub changes: Vec<Change>,
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

/// The attributes of a desired connection that reach Immuta (not connctl's own `protect`),
/// secrets without their fingerprints.
fn attributes(fields: &FieldMap) -> Vec<Attribute> {
    fields
        .iter()
        .filter(|(path, _)| fields::class_of(path) != FieldClass::Local)
        .map(|(path, value)| {
            let sensitive = fields::is_secret(path);
            Attribute {
                path: path.clone(),
                value: if sensitive { Value::Null } else { value.clone() },
                sensitive,
            }
        })
        .collect()
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

/// The desired side, already flattened (secrets fingerprinted).
pub struct DesiredView<'a> {
    pub technology: &'a str,
    pub fields: FieldMap,
    pub protect: bool,
}

impl Plan {
    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes
            .iter()
            .all(|c| matches!(c.action, Action::Import | Action::Orphan))
    }

    /// True when applying would delete or replace something.
    pub fn is_destructive(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.risk == Risk::Destructive && c.action != Action::Orphan)
    }

    pub fn has_drift(&self) -> bool {
        self.summary.drifted > 0
    }

    /// The changes that set a connection's status (and so its children's).
    pub fn cascades(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.cascade.is_some())
    }
}

/// Makes the plan. `live` is `None` with `--refresh=false`.
pub fn plan(
    desired: &BTreeMap<String, DesiredView<'_>>,
    state: &State,
    live: Option<&Live>,
    options: &PlanOptions,
    spec_files: Vec<String>,
) -> Result<Plan, globset::Error> {
    let matcher = target_matcher(&options.targets)?;
    let mut keys: BTreeSet<&str> = desired.keys().map(String::as_str).collect();
    keys.extend(state.connections.keys().map(String::as_str));
    if let Some(live) = live {
        keys.extend(live.keys.iter().map(String::as_str));
    }

    // The import hint names the files planned from, so it can be run as it is.
    let import_paths = match spec_files.len() {
        1..=3 => spec_files.join(" "),
        _ => "PATHS".to_owned(),
    };
    let mut out = Plan {
        format_version: PLAN_FORMAT_VERSION,
        generated_at: crate::state::now(),
        state: StateRef {
            serial: state.serial,
            lineage: state.lineage.clone(),
            salt: state.salt.clone(),
            tenant: state.tenant.clone(),
            environment: state.environment.clone(),
            secrets_unknown: false,
        },
        refreshed: live.is_some(),
        spec_files,
        changes: Vec::new(),
        unchanged: Vec::new(),
        unmanaged: Vec::new(),
        errors: Vec::new(),
        health: Vec::new(),
        summary: Summary::default(),
        live_fingerprints: BTreeMap::new(),
        desired_fingerprints: BTreeMap::new(),
    };

    for key in keys {
        if let Some(m) = &matcher
            && !m.is_match(key)
        {
            continue;
        }
        let want = desired.get(key);
        let have = state.connections.get(key);
        let is_live = live.map(|l| l.keys.contains(key));
        let live_fields = live.and_then(|l| l.fields.get(key));
        if let Some(l) = live {
            out.live_fingerprints.insert(key.to_owned(), l.fingerprint(key));
            out.health
                .extend(l.health.iter().filter(|h| h.key == key).cloned());
        }
        if let Some(w) = want {
            out.desired_fingerprints
                .insert(key.to_owned(), fields::digest(&w.fields));
        }

        let change = match (want, have) {
            (Some(w), None) => match is_live {
                Some(true) => Some(Change {
                    key: key.into(),
                    technology: w.technology.into(),
                    action: Action::Import,
                    operations: vec![],
                    risk: Risk::None,
                    fields: vec![],
                    note: Some(format!(
                        "exists in Immuta but not in the state; adopt it with `connctl import {import_paths} --key {key}` (apply never creates over it)"
                    )),
                    cascade: None,
                    attributes: Vec::new(),
                }),
                _ => Some(create(key, w, Action::Create)),
            },
            (Some(w), Some(s)) => {
                let children = live.and_then(|l| l.child_counts.get(key).copied());
                if let Some(pending) = &s.pending {
                    resume(key, w, s, pending, live_fields, children)
                } else if s.applied.is_none() || s.step != Step::Registered {
                    Some(create(key, w, Action::Create))
                } else if is_live == Some(false) {
                    let mut c = create(key, w, Action::Recreate);
                    c.note = Some("in the state but no longer in Immuta (deleted outside connctl)".into());
                    Some(c)
                } else {
                    update(key, w, s.applied.as_ref(), live_fields, s.protect, children)
                }
            }
            (None, Some(s)) => match &s.pending {
                // A delete that started (with --prune) is finished even without it.
                Some(p) if p.operation == PendingOp::Delete => Some(resume_delete(key, &s.technology, s, p)),
                _ => Some(orphan(key, s, is_live, options.prune)),
            },
            (None, None) => {
                out.unmanaged.push(key.to_owned());
                None
            }
        };
        if let Some(error) = change.as_ref().and_then(fixed_at_registration) {
            out.errors.push(error);
        }
        match change {
            Some(c) => out.changes.push(c),
            None if want.is_some() => out.unchanged.push(key.to_owned()),
            None => {}
        }
    }

    summarize(&mut out);
    if let Some(max) = options.max_deletes {
        let deletes = out.summary.delete + out.summary.replace;
        if deletes > max {
            out.errors.push(format!(
                "this plan deletes or replaces {deletes} connection(s), more than --max-deletes {max} allows; raise --max-deletes if that is intended"
            ));
        }
    }
    Ok(out)
}

/// The `--target` globs as one matcher; `None` when there are none (everything matches).
pub fn target_matcher(targets: &[String]) -> Result<Option<globset::GlobSet>, globset::Error> {
    if targets.is_empty() {
        return Ok(None);
    }
    let mut builder = globset::GlobSetBuilder::new();
    for t in targets {
        builder.add(globset::Glob::new(t)?);
    }
    Ok(Some(builder.build()?))
}

fn create(key: &str, w: &DesiredView<'_>, action: Action) -> Change {
    Change {
        key: key.into(),
        technology: w.technology.into(),
        action,
        operations: vec![Operation::Register],
        risk: Risk::Additive,
        fields: vec![],
        note: None,
        cascade: None,
        attributes: attributes(&w.fields),
    }
}

/// An operation that stopped part-way, for a key still in the YAML.
fn resume(
    key: &str,
    w: &DesiredView<'_>,
    s: &ConnectionState,
    pending: &Pending,
    live: Option<&FieldMap>,
    children: Option<u64>,
) -> Option<Change> {
    let interrupted = |operations, risk, fields, extra: &str| Change {
        key: key.into(),
        technology: w.technology.into(),
        action: Action::Resume,
        operations,
        risk,
        fields,
        note: Some(format!(
            "an interrupted `{}` stopped at step `{}`; apply checks Immuta and carries on{extra}",
            pending.operation.as_str(),
            s.step.as_str()
        )),
        cascade: None,
        attributes: Vec::new(),
    };
    match pending.operation {
        PendingOp::Create => Some(interrupted(vec![Operation::Register], Risk::Additive, vec![], "")),
        PendingOp::Delete => {
            let mut c = resume_delete(key, w.technology, s, pending);
            c.operations.push(Operation::Register);
            Some(c)
        }
        PendingOp::Update | PendingOp::Rescript => {
            // What the interrupted update already made true in Immuta is connctl's own change,
            // not drift: such fields count as applied. An integration field is the exception: the
            // connection update carries the integration config too, but only the edit script
            // (then `PUT /integrations/{id}`) finishes it, so it stays to do — as config.
            let mut baseline = s.applied.clone().unwrap_or_default();
            let mut own = BTreeSet::new();
            if let Some(live) = live {
                for (path, want) in &pending.target {
                    if live.get(path) != Some(want) || baseline.get(path) == Some(want) {
                        continue;
                    }
                    if fields::class_of(path) == FieldClass::Integration {
                        own.insert(path.as_str());
                    } else {
                        baseline.insert(path.clone(), want.clone());
                    }
                }
            }
            match update(key, w, Some(&baseline), live, s.protect, children) {
                Some(mut c) if c.action == Action::Update => {
                    for f in c.fields.iter_mut().filter(|f| own.contains(f.path.as_str())) {
                        f.cause = Cause::Config;
                    }
                    let cascade = c.cascade.take();
                    let mut resumed = interrupted(c.operations, c.risk, c.fields, "");
                    resumed.cascade = cascade;
                    Some(resumed)
                }
                Some(other) => Some(other),
                None => Some(interrupted(
                    vec![Operation::RecordState],
                    Risk::None,
                    vec![],
                    " (Immuta already shows the change; apply records it)",
                )),
            }
        }
    }
}

/// A delete that stopped part-way: it is finished, its saved cleanup script run or handed over.
fn resume_delete(key: &str, technology: &str, s: &ConnectionState, pending: &Pending) -> Change {
    let cleanup = match &pending.cleanup_script {
        Some(path) => format!("; its cleanup script is saved at {}", path.display()),
        None => String::new(),
    };
    Change {
        key: key.into(),
        technology: technology.into(),
        action: Action::Resume,
        operations: vec![Operation::Deregister],
        risk: Risk::Destructive,
        fields: vec![],
        note: Some(format!(
            "an interrupted `delete` stopped at step `{}`; apply checks Immuta and finishes it{cleanup}",
            s.step.as_str()
        )),
        cascade: None,
        attributes: Vec::new(),
    }
}

/// The plan error for a change to a field Immuta lets no one change after registration.
///
/// `options.forceRecursiveCrawl` is sent at registration only: `PUT /data/settings` carries
/// settings, not options, and `POST /data/crawl/{key}` takes the flag for that one crawl without
/// storing it (Immuta's "Manage a connection" and "Manage connection settings" pages; nothing else
/// documents an update). Rather than apply it silently as nothing, the plan refuses it and says
/// what the user can do.
fn fixed_at_registration(change: &Change) -> Option<String> {
    let field = change
        .fields
        .iter()
        .find(|f| f.class == FieldClass::Registration && f.cause != Cause::Drift)?;
    let key = &change.key;
    Some(format!(
        "`{key}`: {path} cannot change after registration: Immuta offers no call that updates it \
         (PUT /data/settings carries settings only; POST /data/crawl/{key} uses the flag for that one crawl \
         and does not store it). Set it back to {before} in the YAML. To crawl inactive objects once, \
         trigger a crawl in Immuta (POST /data/crawl/{key} with {{\"forceRecursiveCrawl\": true}}). To change \
         it for good, re-register the connection: take it out of the YAML, `connctl apply --prune`, then put \
         it back and apply (this deletes and re-creates its data objects)",
        path = field.path,
        before = field.before,
    ))
}

/// Field diff of a managed, live (or unknown) connection.
fn update(
    key: &str,
    w: &DesiredView<'_>,
    applied: Option<&FieldMap>,
    live: Option<&FieldMap>,
    protected: bool,
    children: Option<u64>,
) -> Option<Change> {
    let empty = FieldMap::new();
    let applied = applied.unwrap_or(&empty);
    let mut paths: BTreeSet<&String> = w.fields.keys().collect();
    paths.extend(applied.keys());
    let mut changes = Vec::new();
    for path in paths {
        let want = w.fields.get(path);
        let was = applied.get(path);
        // Immuta never shows secrets: for those, the last applied value stands in for live.
        let now = live.and_then(|l| l.get(path));
        let config = want != was;
        let drift = matches!((now, was), (Some(n), Some(a)) if n != a);
        let current = now.or(was);
        if !config && !drift {
            continue;
        }
        if want == current && !config {
            continue;
        }
        let cause = match (config, drift) {
            (true, true) => Cause::Both,
            (true, false) => Cause::Config,
            _ => Cause::Drift,
        };
        let sensitive = fields::is_secret(path);
        changes.push(FieldChange {
            path: path.clone(),
            cause,
            class: fields::class_of(path),
            before: if sensitive {
                Value::Null
            } else {
                current.cloned().unwrap_or(Value::Null)
            },
            after: if sensitive {
                // A secret left unresolved (`plan --no-secrets`) stays marked as unknown.
                want.filter(|w| w.as_str() == Some(UNKNOWN_SECRET))
                    .cloned()
                    .unwrap_or(Value::Null)
            } else {
                want.cloned().unwrap_or(Value::Null)
            },
            sensitive,
        });
    }
    if changes.is_empty() {
        return None;
    }
    let classes: BTreeSet<FieldClass> = changes.iter().map(|c| c.class).collect();
    let (action, operations, risk) = if classes.contains(&FieldClass::Identity) {
        (
            Action::Replace,
            vec![Operation::Deregister, Operation::Register],
            Risk::Destructive,
        )
    } else {
        let mut ops = Vec::new();
        if classes.contains(&FieldClass::Connection) {
            ops.push(Operation::UpdateConnection);
        }
        if classes.contains(&FieldClass::Integration) {
            ops.push(Operation::Rescript);
        }
        if classes.contains(&FieldClass::Settings) {
            ops.push(Operation::Settings);
        }
        if ops.is_empty() {
            ops.push(Operation::RecordState);
        }
        let risk = if ops == [Operation::RecordState] {
            Risk::None
        } else {
            Risk::InPlace
        };
        (Action::Update, ops, risk)
    };
    let mut note = (action == Action::Replace && protected).then(|| {
        "protected: replacing it would delete it; apply refuses (`connctl state unprotect` lifts it)".into()
    });
    let mut risk = risk;
    let cascade = match (action, changes.iter().find(|f| f.path == "settings.isActive")) {
        (Action::Update, Some(f)) => f.after.as_bool().map(|active| {
            let warning = (active && w.technology == "Databricks").then(|| {
                "Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy".to_owned()
            });
            Cascade {
                active,
                child_objects: children,
                warning,
            }
        }),
        _ => None,
    };
    if let Some(c) = &cascade {
        // Classed like a deletion: it can disable (or expose) every data source below.
        risk = Risk::Destructive;
        note = Some(c.note());
    }
    Some(Change {
        key: key.into(),
        technology: w.technology.into(),
        action,
        operations,
        risk,
        fields: changes,
        note,
        cascade,
        attributes: if action == Action::Replace {
            attributes(&w.fields)
        } else {
            Vec::new()
        },
    })
}

fn orphan(key: &str, s: &ConnectionState, is_live: Option<bool>, prune: bool) -> Change {
    let (action, operations, note) = if s.protect {
        (
            Action::Orphan,
            vec![],
            "protected: left alone even with --prune (`connctl state unprotect` lifts it)".into(),
        )
    } else if is_live == Some(false) {
        (
            Action::Delete,
            vec![Operation::RecordState],
            "already gone from Immuta; apply forgets it".into(),
        )
    } else if prune {
        (
            Action::Delete,
            vec![Operation::Deregister],
            "no longer in the YAML; --prune deletes it".into(),
        )
    } else {
        (
            Action::Orphan,
            vec![],
            "no longer in the YAML; left alone (use --prune to delete it)".into(),
        )
    };
    Change {
        key: key.into(),
        technology: s.technology.clone(),
        action,
        risk: if operations.contains(&Operation::Deregister) {
            Risk::Destructive
        } else {
            Risk::None
        },
        operations,
        fields: vec![],
        note: Some(note),
        cascade: None,
        attributes: Vec::new(),
    }
}

fn summarize(plan: &mut Plan) {
    let mut s = Summary {
        unmanaged: plan.unmanaged.len(),
        unchanged: plan.unchanged.len(),
        unhealthy: plan
            .health
            .iter()
            .map(|h| h.key.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        ..Summary::default()
    };
    for c in &plan.changes {
        match c.action {
            Action::Create | Action::Recreate => s.create += 1,
            Action::Update => s.update += 1,
            Action::Replace => s.replace += 1,
            Action::Delete => s.delete += 1,
            Action::Import => s.import += 1,
            Action::Orphan => s.orphan += 1,
            Action::Resume => s.resume += 1,
            Action::Forget => s.forget += 1,
        }
        if c.action == Action::Recreate || c.fields.iter().any(|f| f.cause != Cause::Config) {
            s.drifted += 1;
        }
    }
    plan.summary = s;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::ConnectionState;

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
                fields: want,
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
                fields: want.clone(),
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
                    fields: fields(&[("warehouse", json!("WH"))]),
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
                fields: want,
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
}
