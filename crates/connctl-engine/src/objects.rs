//! Data objects below a connection (`objects:` in the YAML, issue #17): what Immuta shows of
//! the listed ones (refresh: one `GET /data/object/{path}` each, concurrent and bounded), and
//! the plan rows they give (`~ activate`, `~ deactivate`, `~ settings`, `! missing`, and
//! `= record` when only the state lags), for a plan and for drift.
//!
//! The decision per object compares three sides, as for connections: what the YAML wants, what
//! was last applied (the state) and what Immuta shows. Only the settings an entry names are
//! managed; the others follow the parent as Immuta decides. The applier's half is in
//! `apply::objects`.

use std::collections::BTreeMap;
use std::sync::Arc;

use connctl_immuta::{ApiError, LiveObject};
use connctl_spec::{Connection, ObjectPath, Technology};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::immuta::Immuta;
use crate::plan::{Cause, Risk};
use crate::state::State;

/// The settings connctl keeps on one object; `None` is "not managed".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_new_children: Option<bool>,
}

impl ObjectSettings {
    /// Each managed setting with its wanted value.
    pub fn each(&self) -> impl Iterator<Item = (ObjectSetting, bool)> {
        [
            (ObjectSetting::Active, self.active),
            (ObjectSetting::ActivateNewChildren, self.activate_new_children),
        ]
        .into_iter()
        .filter_map(|(s, v)| Some((s, v?)))
    }

    pub fn get(&self, setting: ObjectSetting) -> Option<bool> {
        match setting {
            ObjectSetting::Active => self.active,
            ObjectSetting::ActivateNewChildren => self.activate_new_children,
        }
    }

    pub fn set(&mut self, setting: ObjectSetting, value: bool) {
        match setting {
            ObjectSetting::Active => self.active = Some(value),
            ObjectSetting::ActivateNewChildren => self.activate_new_children = Some(value),
        }
    }

    /// The settings of `self` whose value `live` does not have: what a PUT must send.
    pub fn differing(&self, live: &ObjectSettings) -> ObjectSettings {
        let mut out = ObjectSettings::default();
        for (s, v) in self.each() {
            if live.get(s) != Some(v) {
                out.set(s, v);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_none() && self.activate_new_children.is_none()
    }
}

/// One setting of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectSetting {
    /// The object's status (`active` in the YAML; `state` / `settings.isActive` in Immuta).
    Active,
    ActivateNewChildren,
}

impl ObjectSetting {
    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectSetting::Active => "active",
            ObjectSetting::ActivateNewChildren => "activateNewChildren",
        }
    }
}

/// What Immuta shows of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeenObject {
    pub settings: ObjectSettings,
    /// Some object below has a setting of its own that a change here would override.
    pub overrides_below: bool,
    /// Objects below it, when Immuta's answer says.
    pub child_count: Option<u64>,
}

impl SeenObject {
    pub fn of(object: &LiveObject) -> SeenObject {
        SeenObject {
            settings: ObjectSettings {
                active: object.is_active(),
                activate_new_children: object.activate_new_children(),
            },
            overrides_below: object.has_descendants_with_overrides(),
            child_count: object.child_count,
        }
    }
}

/// One listed object of one connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub key: String,
    pub path: ObjectPath,
}

/// What a refresh read: per listed object, `None` when Immuta answered 404.
pub type LiveObjects = BTreeMap<ObjectRef, Option<SeenObject>>;

/// Reads each object once (`GET /data/object/{key/path}`) with at most `parallelism` in flight.
pub async fn refresh(
    client: &impl Immuta,
    wanted: Vec<ObjectRef>,
    parallelism: usize,
) -> Result<LiveObjects, ApiError> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for object in wanted {
        let client = client.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let read = client.get_data_object(&object.path.full(&object.key)).await;
            (object, read)
        });
    }
    let mut out = LiveObjects::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((object, read)) = joined else { continue };
        out.insert(object, read?.as_ref().map(SeenObject::of));
    }
    Ok(out)
}

/// What one object row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectAction {
    /// Sets the status active (with any other setting that differs).
    Activate,
    /// Sets the status inactive, which Immuta applies to every object below.
    Deactivate,
    /// Changes `activateNewChildren` only.
    Settings,
    /// Listed in the YAML, absent in Immuta (not crawled yet, or a typo): nothing can be set.
    Missing,
    /// Immuta already matches the YAML; only the state learns it (nothing is sent).
    Record,
}

impl ObjectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectAction::Activate => "activate",
            ObjectAction::Deactivate => "deactivate",
            ObjectAction::Settings => "settings",
            ObjectAction::Missing => "missing",
            ObjectAction::Record => "record",
        }
    }

    /// Whether applying the row sends a `PUT /data/settings/{path}`.
    pub fn sends(self) -> bool {
        matches!(
            self,
            ObjectAction::Activate | ObjectAction::Deactivate | ObjectAction::Settings
        )
    }
}

/// Why a row is high-risk (risk `destructive`: exit 3, gated by `--allow-cascade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HighRisk {
    /// Deactivating stops Immuta governing the object and everything below it.
    Deactivation,
    /// Activating a parent below which a person set children differently
    /// (`hasDescendantsWithOverrides`): the cascade overrides their choice.
    OverridesBelow,
}

/// How far a cascade count can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CountKind {
    /// The object's own child count.
    Exact,
    /// A search's count of the objects below (`POST /data/object/search/{path}`); tenants
    /// differ on whether it counts direct children only, so it is a lower bound.
    Searched,
}

/// The objects a status change reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCascade {
    /// `None` when it could not be read.
    pub child_objects: Option<u64>,
    pub count: CountKind,
}

impl ObjectCascade {
    /// `12 child object(s)`, `≥ 3 child object(s) (a search's count)`, `child count unknown`.
    pub fn describe(&self) -> String {
        match (self.child_objects, self.count) {
            (None, _) => "child count unknown".into(),
            (Some(n), CountKind::Exact) => format!("{n} child object(s)"),
            (Some(0), CountKind::Searched) => "no child object a search found".into(),
            (Some(n), CountKind::Searched) => format!("≥ {n} child object(s) (a search's count)"),
        }
    }
}

/// One setting a row changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectFieldChange {
    pub setting: ObjectSetting,
    pub cause: Cause,
    /// What Immuta has (or, unread, what was last applied); `None` when unknown.
    pub before: Option<bool>,
    pub after: bool,
}

/// One object row of a plan, under its connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub key: String,
    /// As written in the YAML (re-quoted).
    pub path: String,
    /// The path's names, unquoted (the connection key not included).
    pub segments: Vec<String>,
    pub action: ObjectAction,
    pub risk: Risk,
    /// The settings the YAML wants on the object (what apply compares and sends).
    pub settings: ObjectSettings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<ObjectFieldChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<ObjectCascade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_risk: Option<HighRisk>,
    /// What else activating does on this technology (Databricks revokes access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The connection is being registered: the object is read and set after its job completes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_registration: bool,
    /// A listed ancestor whose status change (earlier in the plan) reaches this object first:
    /// `before` is the status that cascade leaves it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascaded_from: Option<String>,
}

impl ObjectChange {
    pub fn object_path(&self) -> Option<ObjectPath> {
        ObjectPath::new(self.segments.clone()).ok()
    }

    /// Immuta's full `objectPath` (the key first).
    pub fn full_path(&self) -> Vec<String> {
        std::iter::once(self.key.clone())
            .chain(self.segments.iter().cloned())
            .collect()
    }
}

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

/// The objects of `connections` to read: every listed object of a connection Immuta has and
/// the state manages (a connection about to be registered has none yet).
pub fn to_read<'a>(
    connections: impl Iterator<Item = &'a Connection>,
    registering: &dyn Fn(&str) -> bool,
) -> Vec<ObjectRef> {
    connections
        .filter(|c| !registering(&c.key))
        .flat_map(|c| {
            c.objects.iter().map(|o| ObjectRef {
                key: c.key.clone(),
                path: o.path.clone(),
            })
        })
        .collect()
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

/// The objects drift reads: every object the state recorded, of the connections in `only`.
pub fn recorded(state: &State, only: &dyn Fn(&str) -> bool) -> Vec<ObjectRef> {
    let mut out = Vec::new();
    for (key, s) in state.connections.iter().filter(|(k, _)| only(k)) {
        for path in s.objects.keys() {
            if let Ok(path) = ObjectPath::parse(path) {
                out.push(ObjectRef {
                    key: key.clone(),
                    path,
                });
            }
        }
    }
    out
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

/// Fills in the cascade count of each status change that lacks one, with a search of the
/// object's direct children (`POST /data/object/search/{path}`).
pub async fn count_cascades(client: &impl Immuta, rows: &mut [ObjectChange]) -> Result<(), ApiError> {
    for row in rows.iter_mut().filter(|r| !r.after_registration) {
        let full = row.full_path();
        let Some(cascade) = row.cascade.as_mut() else {
            continue;
        };
        if cascade.child_objects.is_some() {
            continue;
        }
        cascade.child_objects = match client.count_object_children(&full).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
