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

mod decide;
mod read;

pub use decide::{Seen, decide, decide_below, drift, plan};
pub use read::{count_cascades, fingerprints, recorded, refresh, to_read};

#[cfg(test)]
pub(crate) mod tests;
