//! The decision table: one [`Change`] (or none) per key from what the YAML wants, what the
//! state recorded and what Immuta shows. Each function decides one family of cases.

use std::collections::BTreeSet;

use connctl_spec::Technology;
use serde_json::Value;

use super::{
    Action, Attribute, Cascade, Cause, Change, DesiredView, FieldChange, Operation, Risk, UNKNOWN_SECRET,
};
use crate::fields::{self, FieldClass, FieldMap};
use crate::state::{ConnectionState, Pending, PendingOp};

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

pub(super) fn create(key: &str, w: &DesiredView<'_>, action: Action) -> Change {
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
pub(super) fn resume(
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
pub(super) fn resume_delete(key: &str, technology: &str, s: &ConnectionState, pending: &Pending) -> Change {
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
pub(super) fn fixed_at_registration(change: &Change) -> Option<String> {
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
pub(super) fn update(
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
            let warning = Technology::from_name(w.technology)
                .and_then(connctl_immuta::read::activation_warning)
                .filter(|_| active)
                .map(str::to_owned);
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

pub(super) fn orphan(key: &str, s: &ConnectionState, is_live: Option<bool>, prune: bool) -> Change {
    let (action, operations, note) = if s.protect {
        (
            Action::Orphan,
            vec![],
            "protected: left alone even with --prune (`connctl state unprotect` lifts it)".into(),
        )
    } else if is_live == Some(false) {
        // Nothing in Immuta to delete: only the state entry goes, with or without --prune.
        (
            Action::Forget,
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
