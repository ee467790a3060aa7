//! The JSON of a data object (`GET /data/object/{path}`) in each shape the emulator can answer
//! ([`ObjectShape`]), and of a child in a search.

use serde_json::{Map, Value, json};

use super::tree::Setting;
use crate::store::{Child, Connection};

/// How `GET /data/object/{path}` answers (`--object-shape`). Immuta documents the first; its
/// example was cut off, so the others are the plausible readings connctl must read the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectShape {
    /// `objectPath`, `technology`, `state`, `settings` (`isActive`, `activateNewChildren`,
    /// `dataOwners`…, each `{value, hasDescendantsWithOverrides}`) and `overrides`.
    #[default]
    Documented,
    /// As documented, without `settings.isActive` (the status only in `state`): the captured
    /// part of the docs' example.
    Flat,
    /// As documented, plus `childCount` (every known object below it).
    WithChildCount,
    /// No top-level `state`: the status only as `settings.isActive`.
    SettingsOnly,
}

/// Which objects `POST /data/object/search/{path}` lists (`--children-search`); the docs say
/// "the child objects", which may mean either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ChildrenSearch {
    /// Every known object below the path, in path order.
    #[default]
    Descendants,
    /// Only the objects one level below.
    Direct,
}

pub fn state_name(active: bool) -> &'static str {
    if active { "active" } else { "inactive" }
}

fn wrapped(value: Value, overrides_below: bool) -> Value {
    json!({"value": value, "hasDescendantsWithOverrides": overrides_below})
}

fn full_path(c: &Connection, rest: &[String]) -> Vec<String> {
    std::iter::once(c.key.clone())
        .chain(rest.iter().cloned())
        .collect()
}

/// The object at `rest` (`[]`: the connection itself) in `shape`; `None` when Immuta does not
/// know it.
pub fn object(c: &Connection, rest: &[String], shape: ObjectShape) -> Option<Value> {
    let child = if rest.is_empty() {
        None
    } else {
        Some(c.find(rest)?)
    };
    let active = c.is_active_at(rest);
    let mut settings = Map::new();
    if shape != ObjectShape::Flat {
        settings.insert(
            "isActive".into(),
            wrapped(json!(active), c.overrides_below(rest, Setting::IsActive)),
        );
    }
    settings.insert(
        "activateNewChildren".into(),
        wrapped(
            json!(c.activate_new_children_at(rest)),
            c.overrides_below(rest, Setting::ActivateNewChildren),
        ),
    );
    let extra = match child {
        Some(ch) => ch.extra.iter().collect::<Vec<_>>(),
        None => c.settings.extra.iter().collect(),
    };
    for (k, v) in extra {
        settings.insert(k.clone(), wrapped(v.clone(), false));
    }
    // What is set on the object itself (a connection's settings are all its own).
    let mut overrides = Map::new();
    if let Some(ch) = child {
        if ch.active_override {
            overrides.insert("isActive".into(), json!(ch.active));
        }
        if let Some(v) = ch.activate_new_children {
            overrides.insert("activateNewChildren".into(), json!(v));
        }
        for (k, v) in &ch.extra {
            overrides.insert(k.clone(), v.clone());
        }
    }
    let mut out = Map::new();
    out.insert("objectPath".into(), json!(full_path(c, rest)));
    out.insert("technology".into(), json!(c.tech.as_str()));
    if shape != ObjectShape::SettingsOnly {
        out.insert("state".into(), json!(state_name(active)));
    }
    out.insert("settings".into(), Value::Object(settings));
    out.insert("overrides".into(), Value::Object(overrides));
    if shape == ObjectShape::WithChildCount {
        out.insert("childCount".into(), json!(c.below(rest).count()));
    }
    Some(Value::Object(out))
}

/// A hit of `POST /data/object/search/{path}`.
pub fn hit(c: &Connection, child: &Child) -> Value {
    json!({
        "objectPath": full_path(c, &child.path),
        "technology": c.tech.as_str(),
        "state": state_name(child.active),
    })
}
