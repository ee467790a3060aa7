//! Connections as flat field maps: `warehouse`, `auth.password`, `audit.enabled`, …
//!
//! The planner compares desired, last-applied and live connections field by field in this one
//! vocabulary (the YAML's own paths), so every difference can be named, classified and shown.
//! Secret fields hold salted fingerprints, never values.

use std::collections::BTreeMap;

use connctl_immuta::payload::Setting;
use connctl_immuta::{LiveConnection, LiveIntegration, LiveObject};
use connctl_spec::{
    Connection, DatabricksAuth, OAuthCredential, Platform, SecretError, SecretRef, SnowflakeAuth, Toggle,
};
use serde_json::{Value, json};

/// Field path → value. Secret fields hold `sha256:…` fingerprints.
pub type FieldMap = BTreeMap<String, Value>;

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

/// The class of a field path.
pub fn class_of(path: &str) -> FieldClass {
    let head = path.split('.').next().unwrap_or(path);
    match head {
        "technology" | "host" | "database" | "workspaceUrl" | "catalog" => FieldClass::Identity,
        "port" | "warehouse" | "role" | "httpPath" | "auth" => FieldClass::Connection,
        "settings" => FieldClass::Settings,
        "options" => FieldClass::Registration,
        "protect" => FieldClass::Local,
        _ => FieldClass::Integration,
    }
}

/// Whether a path holds a secret (compared by fingerprint, shown as `(sensitive)`).
pub fn is_secret(path: &str) -> bool {
    matches!(
        path,
        "auth.password" | "auth.privateKey" | "auth.privateKeyPassword" | "auth.clientSecret" | "auth.token"
    )
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
    let mut m = FieldMap::new();
    let secret = |m: &mut FieldMap, path: &str, r: &SecretRef| -> Result<(), UnresolvedSecret> {
        let fp = fingerprint(r).map_err(|reason| UnresolvedSecret {
            key: conn.key.clone(),
            field: path.to_owned(),
            reason,
        })?;
        m.insert(path.to_owned(), json!(fp));
        Ok(())
    };
    m.insert("technology".into(), json!(conn.technology().as_str()));
    m.insert("protect".into(), json!(conn.protect));
    m.insert("settings.isActive".into(), json!(conn.settings.is_active));
    if let Some(v) = conn.settings.activate_new_children {
        m.insert("settings.activateNewChildren".into(), json!(v));
    }
    m.insert(
        "options.forceRecursiveCrawl".into(),
        json!(conn.options.force_recursive_crawl),
    );
    let toggle = |t: Option<Toggle>| json!(t.is_some_and(|t| t.enabled));
    match &conn.platform {
        Platform::Snowflake(sf) => {
            m.insert("host".into(), json!(sf.host));
            m.insert("port".into(), json!(sf.port));
            m.insert("warehouse".into(), json!(sf.warehouse));
            m.insert("database".into(), json!(sf.database));
            m.insert("role".into(), json!(sf.role));
            m.insert("auth.type".into(), json!(sf.auth.authentication_type()));
            match &sf.auth {
                SnowflakeAuth::UserPassword { username, password } => {
                    m.insert("auth.username".into(), json!(username));
                    secret(&mut m, "auth.password", password)?;
                }
                SnowflakeAuth::KeyPair {
                    username,
                    private_key,
                    private_key_password,
                } => {
                    m.insert("auth.username".into(), json!(username));
                    secret(&mut m, "auth.privateKey", private_key)?;
                    if let Some(p) = private_key_password {
                        secret(&mut m, "auth.privateKeyPassword", p)?;
                    }
                }
                SnowflakeAuth::OAuthClientCredentials {
                    provider,
                    client_id,
                    authority_url,
                    resource,
                    ..
                } => {
                    m.insert("auth.provider".into(), json!(provider));
                    m.insert("auth.clientId".into(), json!(client_id));
                    m.insert("auth.authorityUrl".into(), json!(authority_url));
                    if let Some(r) = resource {
                        m.insert("auth.resource".into(), json!(r));
                    }
                    match sf.auth.oauth_credential() {
                        Some(OAuthCredential::ClientSecret(s)) => secret(&mut m, "auth.clientSecret", s)?,
                        Some(OAuthCredential::Certificate {
                            thumbprint,
                            private_key,
                        }) => {
                            m.insert("auth.publicCertificateThumbprint".into(), json!(thumbprint));
                            secret(&mut m, "auth.privateKey", private_key)?;
                        }
                        None => {}
                    }
                }
            }
            m.insert("audit.enabled".into(), toggle(sf.audit));
            m.insert("workspaces.enabled".into(), toggle(sf.workspaces));
            m.insert("impersonation.enabled".into(), toggle(sf.impersonation));
            m.insert("lineage.enabled".into(), toggle(sf.lineage));
            if let Some(p) = &sf.user_role_pattern {
                m.insert("userRolePattern.exclude".into(), json!(p.exclude));
            }
        }
        Platform::Databricks(db) => {
            m.insert("workspaceUrl".into(), json!(db.workspace_url));
            m.insert("port".into(), json!(db.port));
            m.insert("httpPath".into(), json!(db.http_path));
            m.insert("catalog".into(), json!(db.catalog));
            m.insert("auth.type".into(), json!(db.auth.authentication_type()));
            match &db.auth {
                DatabricksAuth::Token { token } => secret(&mut m, "auth.token", token)?,
                DatabricksAuth::OAuthM2M {
                    client_id,
                    client_secret,
                    authority_url,
                    scope,
                } => {
                    m.insert("auth.clientId".into(), json!(client_id));
                    m.insert("auth.authorityUrl".into(), json!(authority_url));
                    m.insert("auth.scope".into(), json!(scope.as_deref().unwrap_or("all-apis")));
                    secret(&mut m, "auth.clientSecret", client_secret)?;
                }
            }
            m.insert("audit.enabled".into(), toggle(db.audit));
            if let Some(ids) = &db.workspace_ids {
                m.insert("workspaceIds".into(), json!(ids));
            }
            if let Some(v) = db.enable_native_query_parsing {
                m.insert("enableNativeQueryParsing".into(), json!(v));
            }
            if let Some(p) = &db.group_pattern {
                m.insert("groupPattern.deny".into(), json!(p.deny));
            }
            if let Some(j) = &db.job_config {
                if let Some(p) = &j.workspace_directory_path {
                    m.insert("jobConfig.workspaceDirectoryPath".into(), json!(p));
                }
                if let Some(c) = &j.job_cluster_id {
                    m.insert("jobConfig.jobClusterId".into(), json!(c));
                }
            }
        }
    }
    Ok(m)
}

/// What Immuta shows of a connection, in the same vocabulary. Secrets never appear (unknown,
/// not different). A field Immuta shows when set but that is absent or `null` in what it returned
/// is `null` here, so a field removed in Immuta is drift; fields of a part that was not read (no
/// integration) are left out.
pub fn live(
    connection: &LiveConnection,
    integration: Option<&LiveIntegration>,
    object: Option<&LiveObject>,
) -> FieldMap {
    let mut m = FieldMap::new();
    let c = &connection.connection;
    let technology = c
        .get("technology")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let databricks = technology == "Databricks";
    if !technology.is_empty() {
        m.insert("technology".into(), json!(technology));
    }
    copy(
        &mut m,
        c.get("hostname"),
        if databricks { "workspaceUrl" } else { "host" },
    );
    copy(&mut m, c.get("port"), "port");
    copy(&mut m, c.get("warehouse"), "warehouse");
    copy(&mut m, c.get("role"), "role");
    copy(&mut m, c.get("httpPath"), "httpPath");
    copy(&mut m, c.get("authenticationType"), "auth.type");
    if c.contains_key("username") {
        copy(&mut m, c.get("username"), "auth.username");
    }
    // Which OAuth fields a tenant echoes is unconfirmed: only values seen are compared.
    if let Some(oauth) = c.get("oAuthClientConfig") {
        seen(&mut m, oauth.get("clientId"), "auth.clientId");
        seen(&mut m, oauth.get("authorityUrl"), "auth.authorityUrl");
        seen(
            &mut m,
            oauth.get("publicCertificateThumbprint"),
            "auth.publicCertificateThumbprint",
        );
        seen(&mut m, oauth.get("resource"), "auth.resource");
        if databricks {
            seen(&mut m, oauth.get("scope"), "auth.scope");
        }
    }
    if let Some(i) = integration {
        let cfg = &i.config;
        copy(&mut m, cfg.get("database"), "database");
        copy(&mut m, cfg.get("catalog"), "catalog");
        for toggle in ["audit", "workspaces", "impersonation", "lineage"] {
            copy(
                &mut m,
                cfg.get(toggle).and_then(|t| t.get("enabled")),
                &format!("{toggle}.enabled"),
            );
        }
        let pattern = cfg.get("userRolePattern").or(i.user_role_pattern.as_ref());
        copy(
            &mut m,
            pattern.and_then(|p| p.get("exclude")),
            "userRolePattern.exclude",
        );
        copy(&mut m, cfg.get("workspaceIds"), "workspaceIds");
        copy(
            &mut m,
            cfg.get("enableNativeQueryParsing"),
            "enableNativeQueryParsing",
        );
        copy(
            &mut m,
            cfg.get("groupPattern").and_then(|p| p.get("deny")),
            "groupPattern.deny",
        );
        let job = cfg.get("jobConfig");
        copy(
            &mut m,
            job.and_then(|j| j.get("workspaceDirectoryPath")),
            "jobConfig.workspaceDirectoryPath",
        );
        copy(
            &mut m,
            job.and_then(|j| j.get("jobClusterId")),
            "jobConfig.jobClusterId",
        );
    }
    if let Some(o) = object {
        if let Some(active) = o.is_active() {
            m.insert("settings.isActive".into(), json!(active));
        }
        if let Some(v) = o.setting("activateNewChildren") {
            m.insert("settings.activateNewChildren".into(), v.clone());
        }
    }
    // Fields of the other technology are not "removed": they never applied.
    let foreign: &[&str] = if databricks {
        &[
            "warehouse",
            "role",
            "host",
            "database",
            "workspaces.enabled",
            "impersonation.enabled",
            "lineage.enabled",
            "userRolePattern.exclude",
        ]
    } else {
        &[
            "workspaceUrl",
            "httpPath",
            "catalog",
            "workspaceIds",
            "enableNativeQueryParsing",
            "groupPattern.deny",
            "jobConfig.workspaceDirectoryPath",
            "jobConfig.jobClusterId",
        ]
    };
    m.retain(|k, v| !(v.is_null() && foreign.contains(&k.as_str())));
    m
}

/// Copies a field Immuta shows when set: absent and `null` both read as "not set" (`null`).
fn copy(m: &mut FieldMap, from: Option<&Value>, to: &str) {
    m.insert(to.to_owned(), from.cloned().unwrap_or(Value::Null));
}

/// Copies a field only when Immuta returned a value for it (unknown otherwise).
fn seen(m: &mut FieldMap, from: Option<&Value>, to: &str) {
    if let Some(v) = from.filter(|v| !v.is_null()) {
        m.insert(to.to_owned(), v.clone());
    }
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
