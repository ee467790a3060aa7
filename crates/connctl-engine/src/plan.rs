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
use crate::state::{State, Step};

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
    pub summary: Summary,
    /// Per key: the fingerprint of what Immuta showed (or `absent`), to detect a stale plan.
    pub live_fingerprints: BTreeMap<String, String>,
    /// Per key: the fingerprint of the desired spec (secrets as fingerprints).
    pub desired_fingerprints: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StateRef {
    pub serial: u64,
    pub lineage: String,
    /// The fingerprint salt, so a plan made before the state file existed can be checked.
    pub salt: String,
    /// The Immuta tenant (normalised URL) the plan is for; a saved plan is refused elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    pub key: String,
    pub technology: String,
    pub action: Action,
    /// The remote operations, in the order they run.
    pub operations: Vec<Operation>,
    pub risk: Risk,
    /// Field-level reasons; empty for create/delete/import.
    pub fields: Vec<FieldChange>,
    /// One line for a human: why, or what happens next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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

    let mut out = Plan {
        format_version: PLAN_FORMAT_VERSION,
        generated_at: crate::state::now(),
        state: StateRef {
            serial: state.serial,
            lineage: state.lineage.clone(),
            salt: state.salt.clone(),
            tenant: state.tenant.clone(),
        },
        refreshed: live.is_some(),
        spec_files,
        changes: Vec::new(),
        unchanged: Vec::new(),
        unmanaged: Vec::new(),
        errors: Vec::new(),
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
                        "exists in Immuta but not in the state; adopt it with `connctl import {key}` (apply never creates over it)"
                    )),
                }),
                _ => Some(create(key, w, Action::Create)),
            },
            (Some(w), Some(s)) => {
                if let Some(pending) = &s.pending {
                    Some(Change {
                        key: key.into(),
                        technology: w.technology.into(),
                        action: Action::Resume,
                        operations: resume_operations(&pending.operation),
                        risk: if pending.operation == "delete" {
                            Risk::Destructive
                        } else {
                            Risk::Additive
                        },
                        fields: vec![],
                        note: Some(format!(
                            "an interrupted `{}` stopped at step `{}`; apply checks Immuta and carries on",
                            pending.operation,
                            s.step.as_str()
                        )),
                    })
                } else if s.applied.is_none() || s.step != Step::Registered {
                    Some(create(key, w, Action::Create))
                } else if is_live == Some(false) {
                    let mut c = create(key, w, Action::Recreate);
                    c.note = Some("in the state but no longer in Immuta (deleted outside connctl)".into());
                    Some(c)
                } else {
                    update(key, w, s.applied.as_ref(), live_fields, s.protect)
                }
            }
            (None, Some(s)) => Some(orphan(key, s, is_live, options.prune)),
            (None, None) => {
                out.unmanaged.push(key.to_owned());
                None
            }
        };
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
    }
}

fn resume_operations(operation: &str) -> Vec<Operation> {
    match operation {
        "delete" => vec![Operation::Deregister],
        "rescript" => vec![Operation::Rescript],
        _ => vec![Operation::Register],
    }
}

/// Field diff of a managed, live (or unknown) connection.
fn update(
    key: &str,
    w: &DesiredView<'_>,
    applied: Option<&FieldMap>,
    live: Option<&FieldMap>,
    protected: bool,
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
                Value::Null
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
    let note = (action == Action::Replace && protected).then(|| {
        "protected: replacing it would delete it; apply refuses (`connctl state unprotect` lifts it)".into()
    });
    Some(Change {
        key: key.into(),
        technology: w.technology.into(),
        action,
        operations,
        risk,
        fields: changes,
        note,
    })
}

fn orphan(key: &str, s: &crate::state::ConnectionState, is_live: Option<bool>, prune: bool) -> Change {
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
    }
}

fn summarize(plan: &mut Plan) {
    let mut s = Summary {
        unmanaged: plan.unmanaged.len(),
        unchanged: plan.unchanged.len(),
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
