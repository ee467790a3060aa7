//! Everything connctl-immuta knows of Databricks Unity Catalog: the names its three payloads
//! use (script config, `connection`, `nativeIntegration`), the same names read back from
//! Immuta's answers (planner field map, `connctl export` YAML), and what Immuta does on
//! activation.

use connctl_spec::{DATABRICKS_DEFAULT_SCOPE, Databricks, DatabricksAuth, FieldMap};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::common::{SecretSource, copy, get, placeholder, put, seen};
use crate::live::LiveIntegration;

/// YAML fields (first path segment) that identify the remote objects: changing one replaces.
pub(crate) const IDENTITY: &[&str] = &["workspaceUrl", "catalog"];
/// YAML fields (first path segment) kept in the `connection` object (`PUT /data/connection`).
pub(crate) const CONNECTION: &[&str] = &["port", "httpPath", "auth"];

/// What activating a connection also does in Databricks.
pub(crate) const ACTIVATION_WARNING: &str = "Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy";

/// `authenticationType` as Immuta shows it for a Databricks connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum AuthType {
    #[serde(rename = "token")]
    Token,
    #[serde(rename = "oAuthM2M")]
    OAuthM2M,
}

impl AuthType {
    /// The type of a `connection` object; `None` when absent or not one of these.
    fn of(c: &Map<String, Value>) -> Option<AuthType> {
        c.get("authenticationType")
            .and_then(|v| AuthType::deserialize(v).ok())
    }
}

/// The `config` object sent to `scripts/create`.
pub(crate) fn script_config(db: &Databricks, secrets: &dyn SecretSource) -> Value {
    let mut config = Map::new();
    config.insert("workspaceUrl".into(), json!(db.workspace_url));
    config.insert("httpPath".into(), json!(db.http_path));
    config.insert("authenticationType".into(), json!(db.auth.authentication_type()));
    credentials(&db.auth, secrets, &mut config);
    integration_fields(db, &mut config);
    Value::Object(config)
}

/// The `connection` object of the registration.
pub(crate) fn connection_object(db: &Databricks, secrets: &dyn SecretSource) -> Value {
    let mut c = Map::new();
    c.insert("technology".into(), json!("Databricks"));
    c.insert("hostname".into(), json!(db.workspace_url));
    c.insert("port".into(), json!(db.port));
    c.insert("httpPath".into(), json!(db.http_path));
    c.insert("authenticationType".into(), json!(db.auth.authentication_type()));
    credentials(&db.auth, secrets, &mut c);
    Value::Object(c)
}

/// The `nativeIntegration` object of the registration.
pub(crate) fn native_integration(db: &Databricks, secrets: &dyn SecretSource) -> Value {
    let mut config = Map::new();
    config.insert("host".into(), json!(db.workspace_url));
    config.insert("port".into(), json!(db.port));
    config.insert("authenticationType".into(), json!(db.auth.authentication_type()));
    credentials(&db.auth, secrets, &mut config);
    integration_fields(db, &mut config);
    json!({
        "type": "Databricks",
        "autoBootstrap": false,
        "unityCatalog": true,
        "config": Value::Object(config),
    })
}

fn credentials(auth: &DatabricksAuth, secrets: &dyn SecretSource, out: &mut Map<String, Value>) {
    match auth {
        DatabricksAuth::Token { token } => {
            out.insert("token".into(), json!(secrets.value(token)));
        }
        DatabricksAuth::OAuthM2M {
            client_id,
            client_secret,
            authority_url,
            scope,
        } => {
            out.insert(
                "oAuthClientConfig".into(),
                json!({
                    "useCertificate": false,
                    "clientId": client_id,
                    "clientSecret": secrets.value(client_secret),
                    "scope": scope.as_deref().unwrap_or(DATABRICKS_DEFAULT_SCOPE),
                    "authorityUrl": authority_url,
                }),
            );
        }
    }
}

fn integration_fields(db: &Databricks, out: &mut Map<String, Value>) {
    out.insert("catalog".into(), json!(db.catalog));
    out.insert(
        "audit".into(),
        json!({ "enabled": db.audit.is_some_and(|t| t.enabled) }),
    );
    if let Some(ids) = &db.workspace_ids {
        out.insert("workspaceIds".into(), json!(ids));
    }
    if let Some(parsing) = db.enable_native_query_parsing {
        out.insert("enableNativeQueryParsing".into(), json!(parsing));
    }
    if let Some(pattern) = &db.group_pattern {
        out.insert("groupPattern".into(), json!({ "deny": pattern.deny }));
    }
    if let Some(job) = &db.job_config {
        let mut j = Map::new();
        if let Some(path) = &job.workspace_directory_path {
            j.insert("workspaceDirectoryPath".into(), json!(path));
        }
        if let Some(cluster) = &job.job_cluster_id {
            j.insert("jobClusterId".into(), json!(cluster));
        }
        out.insert("jobConfig".into(), Value::Object(j));
    }
}

/// Adds what Immuta shows of a Databricks connection to a live field map (see
/// [`crate::read::live_fields`]): `c` is the `connection` object.
pub(crate) fn live_fields(c: &Map<String, Value>, integration: Option<&LiveIntegration>, m: &mut FieldMap) {
    copy(m, c.get("hostname"), "workspaceUrl");
    copy(m, c.get("httpPath"), "httpPath");
    // Which OAuth fields a tenant echoes is unconfirmed: only values seen are compared.
    if let Some(oauth) = c.get("oAuthClientConfig") {
        seen(m, oauth.get("clientId"), "auth.clientId");
        seen(m, oauth.get("authorityUrl"), "auth.authorityUrl");
        seen(m, oauth.get("scope"), "auth.scope");
    }
    if let Some(i) = integration {
        let cfg = &i.config;
        copy(m, cfg.get("catalog"), "catalog");
        copy(
            m,
            cfg.get("audit").and_then(|t| t.get("enabled")),
            "audit.enabled",
        );
        copy(m, cfg.get("workspaceIds"), "workspaceIds");
        copy(m, cfg.get("enableNativeQueryParsing"), "enableNativeQueryParsing");
        copy(
            m,
            cfg.get("groupPattern").and_then(|p| p.get("deny")),
            "groupPattern.deny",
        );
        let job = cfg.get("jobConfig");
        copy(
            m,
            job.and_then(|j| j.get("workspaceDirectoryPath")),
            "jobConfig.workspaceDirectoryPath",
        );
        copy(
            m,
            job.and_then(|j| j.get("jobClusterId")),
            "jobConfig.jobClusterId",
        );
    }
}

/// Adds the Databricks fields of an exported YAML entry: `c` is the `connection` object,
/// `config` the integration's config (empty when there is none).
pub(crate) fn export_fields(
    key: &str,
    c: &Map<String, Value>,
    config: &Map<String, Value>,
    _integration: Option<&LiveIntegration>,
    out: &mut Map<String, Value>,
) {
    let empty = Map::new();
    put(out, "workspaceUrl", get(c, "hostname"));
    put(out, "httpPath", get(c, "httpPath"));
    put(out, "port", get(c, "port"));
    put(out, "catalog", get(config, "catalog"));
    let oauth = c
        .get("oAuthClientConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let auth = match AuthType::of(c) {
        Some(AuthType::OAuthM2M) => json!({
            "type": "oAuthM2M",
            "clientId": get(oauth, "clientId"),
            "clientSecret": placeholder(key, "CLIENT_SECRET"),
            "authorityUrl": get(oauth, "authorityUrl"),
            "scope": get(oauth, "scope").unwrap_or(json!(DATABRICKS_DEFAULT_SCOPE)),
        }),
        // What Immuta leaves unsaid is read as a token.
        Some(AuthType::Token) | None => json!({ "type": "token", "token": placeholder(key, "TOKEN") }),
    };
    out.insert("auth".into(), auth);
    put(out, "audit", get(config, "audit"));
    put(out, "workspaceIds", get(config, "workspaceIds"));
    put(
        out,
        "enableNativeQueryParsing",
        get(config, "enableNativeQueryParsing"),
    );
    put(out, "groupPattern", get(config, "groupPattern"));
    put(out, "jobConfig", get(config, "jobConfig"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use connctl_spec::SecretRef;

    /// Immuta's `authenticationType` is read back with the names the payloads write.
    #[test]
    fn auth_types_read_back_as_written() {
        let auths = [
            DatabricksAuth::Token {
                token: SecretRef::Env("T".into()),
            },
            DatabricksAuth::OAuthM2M {
                client_id: "c".into(),
                client_secret: SecretRef::Env("S".into()),
                authority_url: "https://a".into(),
                scope: None,
            },
        ];
        for auth in auths {
            let c: Map<String, Value> =
                [("authenticationType".to_owned(), json!(auth.authentication_type()))]
                    .into_iter()
                    .collect();
            assert!(AuthType::of(&c).is_some(), "{}", auth.authentication_type());
        }
        assert_eq!(AuthType::of(&Map::new()), None);
    }
}
