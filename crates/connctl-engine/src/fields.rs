//! Connections as flat field maps: `warehouse`, `auth.password`, `audit.enabled`, …
//!
//! The planner compares desired, last-applied and live connections field by field in this one
//! vocabulary (the YAML's own paths), so every difference can be named, classified and shown.
//! Secret fields hold salted fingerprints, never values. The maps themselves are built where
//! each technology's names are known: the desired one by connctl-spec
//! ([`Connection::fields`]), the live one by connctl-immuta ([`read::live_fields`]).

use connctl_immuta::payload::Setting;
use connctl_immuta::read;
use connctl_immuta::{LiveConnection, LiveIntegration, LiveObject};
use connctl_spec::{Connection, SecretError, SecretRef};
use serde_json::json;

/// Field path → value. Secret fields hold `sha256:…` fingerprints.
pub type FieldMap = connctl_spec::FieldMap;

/// What changing a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldClass {
    /// Recorded only by connctl (`protect`): no remote call.
    Local,
    /// Registration settings: `PUT /data/settings/{key}`.
    Settings,
    /// Fixed at registration (`options.forceRecursiveCrawl`): Immuta documents no call that
    /// updates it, so a change can only be planned as an error.
    Registration,
    /// The connection object: `PUT /data/connection/{key}`.
    Connection,
    /// The integration config: edit script → execute → `PUT /integrations/{id}`.
    Integration,
    /// Identifies the remote objects (technology, host, database, catalog): replace.
    Identity,
}

/// The class of a field path. What is particular to a technology (which fields identify the
/// remote objects, which live in Immuta's `connection` object) comes from connctl-immuta.
pub fn class_of(path: &str) -> FieldClass {
    let head = path.split('.').next().unwrap_or(path);
    match head {
        "technology" => FieldClass::Identity,
        "settings" => FieldClass::Settings,
        "options" => FieldClass::Registration,
        "protect" => FieldClass::Local,
        _ if read::is_identity(head) => FieldClass::Identity,
        _ if read::is_in_connection_object(head) => FieldClass::Connection,
        _ => FieldClass::Integration,
    }
}

/// Whether a path holds a secret (compared by fingerprint, shown as `(sensitive)`).
pub fn is_secret(path: &str) -> bool {
    connctl_spec::is_secret_field(path)
}

/// The setting a `settings.*` path names, for `PUT /data/settings`.
pub fn setting_of(path: &str) -> Option<Setting> {
    match path {
        "settings.isActive" => Some(Setting::IsActive),
        "settings.activateNewChildren" => Some(Setting::ActivateNewChildren),
        _ => None,
    }
}

/// A secret that did not resolve while fingerprinting.
#[derive(Debug, thiserror::Error)]
#[error("connection `{key}`: {field}: {reason}")]
pub struct UnresolvedSecret {
    pub key: String,
    pub field: String,
    pub reason: SecretError,
}

/// The desired field map of a connection; `fingerprint` turns each secret reference into a
/// salted fingerprint (resolving it).
pub fn desired(
    conn: &Connection,
    fingerprint: &dyn Fn(&SecretRef) -> Result<String, SecretError>,
) -> Result<FieldMap, UnresolvedSecret> {
    conn.fields(&|path, r| {
        fingerprint(r)
            .map(|fp| json!(fp))
            .map_err(|reason| UnresolvedSecret {
                key: conn.key.clone(),
                field: path.to_owned(),
                reason,
            })
    })
}

/// What Immuta shows of a connection, in the same vocabulary (see [`read::live_fields`]).
pub fn live(
    connection: &LiveConnection,
    integration: Option<&LiveIntegration>,
    object: Option<&LiveObject>,
) -> FieldMap {
    read::live_fields(connection, integration, object)
}

/// The fingerprint of a field map (for saved plans: "the spec this plan was made from").
pub fn digest(map: &FieldMap) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(map).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn classes() {
        assert_eq!(class_of("host"), FieldClass::Identity);
        assert_eq!(class_of("auth.password"), FieldClass::Connection);
        assert_eq!(class_of("audit.enabled"), FieldClass::Integration);
        assert_eq!(class_of("userRolePattern.exclude"), FieldClass::Integration);
        assert_eq!(class_of("settings.isActive"), FieldClass::Settings);
        assert_eq!(class_of("protect"), FieldClass::Local);
        assert!(is_secret("auth.token"));
        assert!(!is_secret("auth.username"));
        assert_eq!(class_of("options.forceRecursiveCrawl"), FieldClass::Registration);
        assert_eq!(setting_of("settings.isActive"), Some(Setting::IsActive));
        assert_eq!(setting_of("options.forceRecursiveCrawl"), None);
    }

    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("parses")
    }

    #[test]
    fn live_reads_the_documented_state_and_sees_removed_fields() {
        let connection: LiveConnection = parse(json!({"connectionKey": "k", "connection": {
            "technology": "Databricks", "hostname": "h", "port": 443, "httpPath": "/p",
            "authenticationType": "token"}}));
        // `groupPattern` was removed in Immuta, `audit` set to null.
        let integration: LiveIntegration = parse(json!({"id": "1", "status": "enabled", "config": {
            "catalog": "c", "audit": null}}));
        let object: LiveObject = parse(json!({"state": "active", "settings": {
            "activateNewChildren": {"value": false, "hasDescendantsWithOverrides": false}}}));
        let m = live(&connection, Some(&integration), Some(&object));
        assert_eq!(m["settings.isActive"], json!(true));
        assert_eq!(m["settings.activateNewChildren"], json!(false));
        assert_eq!(m["groupPattern.deny"], Value::Null);
        assert_eq!(m["audit.enabled"], Value::Null);
        assert_eq!(m["catalog"], json!("c"));
        // Snowflake-only fields are not "removed" from a Databricks connection.
        assert!(
            !m.contains_key("warehouse") && !m.contains_key("database"),
            "{m:?}"
        );
        // Without the integration, its fields are unknown rather than removed.
        let m = live(&connection, None, None);
        assert!(!m.contains_key("groupPattern.deny") && !m.contains_key("settings.isActive"));
    }
}
