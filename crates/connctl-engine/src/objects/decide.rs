//! The row of each listed object: the decision between the YAML, the state and Immuta, for a
//! plan and for drift.

use super::*;

/// `cause` of one setting, as for connection fields: the YAML moved (config), Immuta moved
/// (drift), or both.
fn cause(applied: Option<bool>, live: Option<bool>, want: bool) -> Cause {
    match (applied == Some(want), live == applied) {
        (true, _) => Cause::Drift,
        (false, true) => Cause::Config,
        (false, false) if applied.is_none() => Cause::Config,
        (false, false) => Cause::Both,
    }
}

/// What the planner knows of one listed object.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// Read from Immuta.
    Read(&'a SeenObject),
    /// Immuta answered 404.
    Absent,
    /// Not read (`--refresh=false`, or outside the refresh).
    Unread,
    /// Its connection is being registered: it exists only after the first crawl.
    Registering,
}

/// The row of one object, or `None` when nothing needs doing.
pub fn decide(
    object: &ObjectRef,
    technology: Technology,
    want: ObjectSettings,
    applied: Option<ObjectSettings>,
    seen: Seen<'_>,
) -> Option<ObjectChange> {
    decide_below(object, technology, want, applied, seen, None)
}

/// [`decide`] for an object below a listed ancestor whose row sets the status `cascade.1`
/// first (Immuta cascades it), so the object's status is compared with that.
pub fn decide_below(
    object: &ObjectRef,
    technology: Technology,
    want: ObjectSettings,
    applied: Option<ObjectSettings>,
    seen: Seen<'_>,
    cascade: Option<(&ObjectPath, bool)>,
) -> Option<ObjectChange> {
    let mut row = ObjectChange {
        key: object.key.clone(),
        path: object.path.to_string(),
        segments: object.path.segments().to_vec(),
        action: ObjectAction::Settings,
        risk: Risk::InPlace,
        settings: want,
        fields: Vec::new(),
        cascade: None,
        high_risk: None,
        warning: None,
        after_registration: false,
        cascaded_from: None,
    };
    let mut before: ObjectSettings = match seen {
        Seen::Absent => {
            row.action = ObjectAction::Missing;
            row.risk = Risk::None;
            return Some(row);
        }
        Seen::Read(s) => s.settings,
        // Unread: compare with what was last applied (nothing known before the first apply).
        Seen::Unread => applied.unwrap_or_default(),
        Seen::Registering => {
            row.after_registration = true;
            ObjectSettings::default()
        }
    };
    let known = !matches!(seen, Seen::Registering);
    let status_now = before.active;
    if let Some((ancestor, status)) = cascade
        && want.active.is_some()
        && before.active != Some(status)
    {
        before.active = Some(status);
        row.cascaded_from = Some(ancestor.to_string());
    }
    for (setting, after) in want.each() {
        let live = before.get(setting);
        if live == Some(after) {
            continue;
        }
        let applied_value = applied.and_then(|a| a.get(setting));
        row.fields.push(ObjectFieldChange {
            setting,
            cause: if known {
                cause(applied_value, live, after)
            } else {
                Cause::Config
            },
            before: live,
            after,
        });
    }
    if row.fields.is_empty() {
        // Immuta has it; the state learns it unless it already knows.
        let recorded = applied.is_some_and(|a| want.each().all(|(s, v)| a.get(s) == Some(v)));
        if recorded {
            return None;
        }
        row.action = ObjectAction::Record;
        row.risk = Risk::None;
        return Some(row);
    }
    let status = row
        .fields
        .iter()
        .find(|f| f.setting == ObjectSetting::Active)
        .map(|f| f.after);
    let overrides_below = matches!(seen, Seen::Read(s) if s.overrides_below);
    match status {
        Some(true) => {
            row.action = ObjectAction::Activate;
            row.warning = connctl_immuta::read::activation_warning(technology).map(str::to_owned);
            if overrides_below {
                row.high_risk = Some(HighRisk::OverridesBelow);
            }
        }
        Some(false) => {
            row.action = ObjectAction::Deactivate;
            // Put back to inactive after an ancestor's activation reached it, or below a
            // connection not registered yet: nothing Immuta governs now stops being governed.
            if known && status_now != Some(false) {
                row.high_risk = Some(HighRisk::Deactivation);
            }
        }
        None => {}
    }
    if status.is_some() {
        row.cascade = Some(match seen {
            Seen::Read(SeenObject {
                child_count: Some(n), ..
            }) => ObjectCascade {
                child_objects: Some(*n),
                count: CountKind::Exact,
            },
            _ => ObjectCascade {
                child_objects: None,
                count: CountKind::Searched,
            },
        });
    }
    if row.high_risk.is_some() {
        row.risk = Risk::Destructive;
    }
    Some(row)
}

/// The rows of a plan for `connections` (already narrowed to the plan's targets), parents
/// before children within a connection (the YAML's order, which validation keeps parent first).
/// `live` is `None` without a refresh; `registering` says which connections the plan registers.
pub fn plan<'a>(
    connections: impl Iterator<Item = &'a Connection>,
    state: &State,
    live: Option<&LiveObjects>,
    registering: &dyn Fn(&str) -> bool,
) -> Vec<ObjectChange> {
    let mut rows = Vec::new();
    for conn in connections {
        let recorded = state.connections.get(&conn.key).map(|s| &s.objects);
        // Status changes planned so far, parents first: each reaches the objects below it.
        let mut sets: Vec<(ObjectPath, bool)> = Vec::new();
        for spec in &conn.objects {
            let object = ObjectRef {
                key: conn.key.clone(),
                path: spec.path.clone(),
            };
            let want = ObjectSettings {
                active: spec.active,
                activate_new_children: spec.activate_new_children,
            };
            let applied = recorded
                .and_then(|r| r.get(&object.path.to_string()))
                .map(|r| r.applied);
            let seen = if registering(&conn.key) {
                Seen::Registering
            } else {
                match live.map(|l| l.get(&object)) {
                    Some(Some(Some(s))) => Seen::Read(s),
                    Some(Some(None)) => Seen::Absent,
                    _ => Seen::Unread,
                }
            };
            let cascade = sets
                .iter()
                .rev()
                .find(|(p, _)| p.is_ancestor_of(&object.path))
                .map(|(p, s)| (p, *s));
            let row = decide_below(&object, conn.technology(), want, applied, seen, cascade);
            if let Some(status) = row.as_ref().and_then(|r| {
                r.fields
                    .iter()
                    .find(|f| f.setting == ObjectSetting::Active)
                    .map(|f| f.after)
            }) {
                sets.push((object.path.clone(), status));
            }
            rows.extend(row);
        }
    }
    rows
}

/// Drift of objects: what Immuta moved away from what was last applied. An object recorded in
/// the state and now absent is drift too.
pub fn drift(state: &State, live: &LiveObjects) -> Vec<ObjectChange> {
    let mut rows = Vec::new();
    for (object, seen) in live {
        let Some(s) = state.connections.get(&object.key) else {
            continue;
        };
        let Some(record) = s.objects.get(&object.path.to_string()) else {
            continue;
        };
        let technology = Technology::from_name(&s.technology).unwrap_or(Technology::Snowflake);
        let seen = match seen {
            Some(seen) => Seen::Read(seen),
            None => Seen::Absent,
        };
        if let Some(mut row) = decide(object, technology, record.applied, Some(record.applied), seen)
            && row.action != ObjectAction::Record
        {
            row.fields.retain(|f| f.cause != Cause::Config);
            rows.push(row);
        }
    }
    rows
}
