//! Builds Immuta's payloads from one validated connection: the `config` of
//! `POST /integrations/scripts/create`, and the `connection` / `nativeIntegration` objects of
//! `POST /data/connection`.
//!
//! The registration guide warns that these "should match the values used when generating the
//! script". Here they match by construction: every payload is derived from the same
//! [`Connection`], and the names each payload uses are mapped in this one place (tabled per
//! field in `docs/yaml-reference.md`; the snapshots in `tests/snapshots` show each payload). Optional integration toggles that the
//! registration requires (`audit`, `workspaces`, …) are sent explicitly, defaulting to
//! `false`, so the script and the registration can never disagree on them.
//!
//! This module holds the parts every technology shares and dispatches on [`Platform`]; the
//! names each technology's payloads use are in its module ([`crate::snowflake`],
//! [`crate::databricks`]).

use connctl_spec::{Connection, Platform};
use serde_json::{Map, Value, json};

pub use crate::common::{Placeholders, SecretSource};
use crate::{databricks, snowflake};

/// The body of `POST /integrations/scripts/create` (and of `scripts/edit` and `PUT /integrations/{id}`).
pub fn script_request(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    json!({
        "type": conn.technology().as_str(),
        "autoBootstrap": false,
        "config": script_config(conn, secrets),
    })
}

/// The `config` object sent to `scripts/create`.
pub fn script_config(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    match &conn.platform {
        Platform::Snowflake(sf) => snowflake::script_config(sf, secrets),
        Platform::Databricks(db) => databricks::script_config(db, secrets),
    }
}

/// The body of `POST /data/connection` and `POST /data/connection/test`.
pub fn registration(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    let mut body = Map::new();
    body.insert("connectionKey".into(), json!(conn.key));
    body.insert("connection".into(), connection_object(conn, secrets));
    body.insert("settings".into(), settings_object(conn));
    body.insert(
        "options".into(),
        json!({ "forceRecursiveCrawl": conn.options.force_recursive_crawl }),
    );
    body.insert("nativeIntegration".into(), native_integration(conn, secrets));
    Value::Object(body)
}

/// The body of `PUT /data/connection/{key}`: the connection object and the matching
/// integration, so credentials stay the same on both sides.
pub fn connection_update(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    json!({
        "connection": connection_object(conn, secrets),
        "nativeIntegration": native_integration(conn, secrets),
    })
}

/// A setting `PUT /data/settings/{key}` can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The connection's status. Immuta cascades it to every child object, so it is sent only
    /// when it is the change being made.
    IsActive,
    ActivateNewChildren,
}

/// The body of `PUT /data/settings/{key}` carrying only `changed`; `None` when none of them has
/// a value to send (e.g. `activateNewChildren` was removed from the YAML: Immuta keeps its own).
pub fn settings_update(conn: &Connection, changed: &[Setting]) -> Option<Value> {
    let mut settings = Map::new();
    for setting in changed {
        match setting {
            Setting::IsActive => {
                settings.insert("isActive".into(), json!(conn.settings.is_active));
            }
            Setting::ActivateNewChildren => {
                if let Some(v) = conn.settings.activate_new_children {
                    settings.insert("activateNewChildren".into(), json!(v));
                }
            }
        }
    }
    (!settings.is_empty()).then(|| json!({ "settings": settings }))
}

/// The body of `PUT /data/settings/{path}` for a data object: `{"settings": {…}}` with ONLY
/// the given settings (an absent one is left as Immuta has it; `isActive` cascades to the
/// object's children, so it is sent only when it is the change being made).
pub fn object_settings(active: Option<bool>, activate_new_children: Option<bool>) -> Value {
    let mut settings = Map::new();
    if let Some(v) = active {
        settings.insert("isActive".into(), json!(v));
    }
    if let Some(v) = activate_new_children {
        settings.insert("activateNewChildren".into(), json!(v));
    }
    json!({ "settings": settings })
}

fn settings_object(conn: &Connection) -> Value {
    let mut settings = Map::new();
    settings.insert("isActive".into(), json!(conn.settings.is_active));
    if let Some(v) = conn.settings.activate_new_children {
        settings.insert("activateNewChildren".into(), json!(v));
    }
    Value::Object(settings)
}

/// The `connection` object of the registration.
pub fn connection_object(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    match &conn.platform {
        Platform::Snowflake(sf) => snowflake::connection_object(sf, secrets),
        Platform::Databricks(db) => databricks::connection_object(db, secrets),
    }
}

/// The `nativeIntegration` object of the registration: the script's config under the names the
/// registration uses.
pub fn native_integration(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    match &conn.platform {
        Platform::Snowflake(sf) => snowflake::native_integration(sf, secrets),
        Platform::Databricks(db) => databricks::native_integration(db, secrets),
    }
}
