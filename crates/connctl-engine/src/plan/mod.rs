//! The planner: Desired × State × Live → a typed, versioned [`Plan`].
//!
//! Every key in the union of the three gets one decision: create, import
//! suggested, update / rescript / settings (in place), replace, recreate, orphan or delete,
//! unmanaged, resume of an interrupted operation, or noop. Each change names its fields with
//! their cause: `config` (the YAML moved away from what was applied), `drift` (Immuta moved
//! away from what was applied), or both, and an entry with nothing left in Immuta is forgotten.
//!
//! `types` holds the plan's data, `decide` the rows of the table; this module walks the keys
//! and adds the summary and the plan-wide checks (`--max-deletes`).

mod decide;
#[cfg(test)]
mod decision_tests;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{BTreeMap, BTreeSet};

pub use types::*;

use self::decide::{create, fixed_at_registration, orphan, resume, resume_delete, update};
use crate::fields;
use crate::refresh::Live;
use crate::state::{PendingOp, State, Step};

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
        not_read: None,
        spec_files,
        changes: Vec::new(),
        objects: Vec::new(),
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
