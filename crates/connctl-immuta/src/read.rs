//! Immuta's answers read back into the YAML's vocabulary: the field map the planner compares
//! with the desired one ([`live_fields`]), and the YAML entry `connctl export` writes
//! ([`export_entry`]). The parts every technology shares are here; each technology reads its
//! own names in its module ([`crate::snowflake`], [`crate::databricks`]).

use connctl_spec::{FieldMap, Technology};
use serde_json::{Map, Value, json};

use crate::common::{copy, put};
use crate::live::{LiveConnection, LiveIntegration, LiveObject};
use crate::{databricks, snowflake};

/// The technology whose names a connection is read with. One whose technology connctl does
/// not know (or that names none) is read with Snowflake's names, as connctl always has: its
/// technology differs from any desired one, so the planner replaces it anyway.
fn read_as(connection: &LiveConnection) -> Technology {
    connection.technology().unwrap_or(Technology::Snowflake)
}

/// What Immuta shows of a connection, as a field map. Secrets never appear (unknown, not
/// different). A field Immuta shows when set but that is absent or `null` in what it returned
/// is `null` here, so a field removed in Immuta is drift; fields of a part that was not read
/// (no integration) are left out.
pub fn live_fields(
    connection: &LiveConnection,
    integration: Option<&LiveIntegration>,
    object: Option<&LiveObject>,
) -> FieldMap {
    let mut m = FieldMap::new();
    let c = &connection.connection;
    let technology = c.get("technology").and_then(Value::as_str).unwrap_or_default();
    if !technology.is_empty() {
        m.insert("technology".into(), json!(technology));
    }
    copy(&mut m, c.get("port"), "port");
    copy(&mut m, c.get("authenticationType"), "auth.type");
    match read_as(connection) {
        Technology::Snowflake => snowflake::live_fields(c, integration, &mut m),
        Technology::Databricks => databricks::live_fields(c, integration, &mut m),
    }
    if let Some(o) = object {
        if let Some(active) = o.is_active() {
            m.insert("settings.isActive".into(), json!(active));
        }
        if let Some(v) = o.setting("activateNewChildren") {
            m.insert("settings.activateNewChildren".into(), v.clone());
        }
    }
    m
}

/// One entry of `connections:` for `connctl export`: everything Immuta shows, as written in a
/// spec; secrets, which Immuta never shows, become `{ env: NAME }` placeholders.
pub fn export_entry(
    live: &LiveConnection,
    integration: Option<&LiveIntegration>,
    object: Option<&LiveObject>,
) -> Value {
    let c = &live.connection;
    let key = live.connection_key.as_str();
    let empty = Map::new();
    let config = integration.map(|i| &i.config).unwrap_or(&empty);
    let technology = c.get("technology").and_then(Value::as_str).unwrap_or("Snowflake");
    let mut out = Map::new();
    out.insert("key".into(), json!(key));
    out.insert("technology".into(), json!(technology));
    match read_as(live) {
        Technology::Snowflake => snowflake::export_fields(key, c, config, integration, &mut out),
        Technology::Databricks => databricks::export_fields(key, c, config, integration, &mut out),
    }
    if let Some(o) = object {
        let mut settings = Map::new();
        put(&mut settings, "isActive", o.is_active().map(Value::Bool));
        if !settings.is_empty() {
            out.insert("settings".into(), Value::Object(settings));
        }
    }
    Value::Object(out)
}

/// Whether a YAML field (its first path segment) identifies the remote objects of its
/// technology (changing it replaces the connection).
pub fn is_identity(head: &str) -> bool {
    Technology::ALL.iter().any(|t| match t {
        Technology::Snowflake => snowflake::IDENTITY.contains(&head),
        Technology::Databricks => databricks::IDENTITY.contains(&head),
    })
}

/// Whether a YAML field (its first path segment) lives in Immuta's `connection` object
/// (changed with `PUT /data/connection/{key}`).
pub fn is_in_connection_object(head: &str) -> bool {
    Technology::ALL.iter().any(|t| match t {
        Technology::Snowflake => snowflake::CONNECTION.contains(&head),
        Technology::Databricks => databricks::CONNECTION.contains(&head),
    })
}

/// What Immuta also does in the warehouse when a connection of `technology` is activated, for
/// the plan to warn about.
pub fn activation_warning(technology: Technology) -> Option<&'static str> {
    match technology {
        Technology::Snowflake => None,
        Technology::Databricks => Some(databricks::ACTIVATION_WARNING),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("parses")
    }

    #[test]
    fn each_technology_reads_only_its_own_fields() {
        let connection: LiveConnection = parse(json!({"connectionKey": "k", "connection": {
            "technology": "Snowflake", "hostname": "h", "port": 443, "warehouse": "W", "role": "R",
            "authenticationType": "userPassword", "username": "U"}}));
        let integration: LiveIntegration = parse(json!({"id": "1", "config": {"database": "D"}}));
        let m = live_fields(&connection, Some(&integration), None);
        assert_eq!(m["host"], json!("h"));
        assert_eq!(m["database"], json!("D"));
        assert_eq!(m["lineage.enabled"], Value::Null);
        assert!(
            !m.contains_key("catalog") && !m.contains_key("workspaceUrl") && !m.contains_key("httpPath"),
            "{m:?}"
        );
    }

    #[test]
    fn field_homes_and_activation_warnings() {
        assert!(is_identity("host") && is_identity("catalog") && !is_identity("port"));
        assert!(is_in_connection_object("auth") && is_in_connection_object("httpPath"));
        assert!(!is_in_connection_object("audit"));
        assert_eq!(activation_warning(Technology::Snowflake), None);
        assert!(activation_warning(Technology::Databricks).is_some_and(|w| w.starts_with("Databricks:")));
    }
}
