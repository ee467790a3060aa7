//! Builds Immuta's payloads from one validated connection: the `config` of
//! `POST /integrations/scripts/create`, and the `connection` / `nativeIntegration` objects of
//! `POST /data/connection`.
//!
//! The registration guide warns that these "should match the values used when generating the
//! script". Here they match by construction: every payload is derived from the same
//! [`Connection`], and the names each payload uses are mapped in this one place
//! (`shared/reference/payload-mapping.md`). Optional integration toggles that the
//! registration requires (`audit`, `workspaces`, …) are sent explicitly, defaulting to
//! `false`, so the script and the registration can never disagree on them.

use connctl_spec::{
    Connection, Databricks, DatabricksAuth, OAuthCredential, Platform, SecretRef, Snowflake, SnowflakeAuth,
    Toggle,
};
use serde_json::{Map, Value, json};

/// Supplies secret values while a payload is built. The real source resolves references;
/// snapshots and plans use a placeholder source, so a value never has to exist to be shown.
pub trait SecretSource {
    fn value(&self, reference: &SecretRef) -> String;
}

/// A source that writes `<secret env:NAME>` / `<secret file:PATH>` instead of values.
pub struct Placeholders;

impl SecretSource for Placeholders {
    fn value(&self, reference: &SecretRef) -> String {
        match reference {
            SecretRef::Env(name) => format!("<secret env:{name}>"),
            SecretRef::File(path) => format!(
                "<secret file:{}>",
                path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            ),
            SecretRef::Secret(reference) => format!("<secret {reference}>"),
        }
    }
}

/// `keyName` Immuta requires for a Snowflake key pair.
const SNOWFLAKE_KEY_NAME: &str = "PRIV_KEY_FILE";

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
        Platform::Snowflake(sf) => snowflake_script_config(sf, secrets),
        Platform::Databricks(db) => databricks_script_config(db, secrets),
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
        Platform::Snowflake(sf) => {
            let mut c = Map::new();
            c.insert("technology".into(), json!("Snowflake"));
            c.insert("hostname".into(), json!(sf.host));
            c.insert("port".into(), json!(sf.port));
            c.insert("warehouse".into(), json!(sf.warehouse));
            c.insert("role".into(), json!(sf.role));
            c.insert("authenticationType".into(), json!(sf.auth.authentication_type()));
            snowflake_credentials(&sf.auth, secrets, &mut c, Side::Connection);
            Value::Object(c)
        }
        Platform::Databricks(db) => {
            let mut c = Map::new();
            c.insert("technology".into(), json!("Databricks"));
            c.insert("hostname".into(), json!(db.workspace_url));
            c.insert("port".into(), json!(db.port));
            c.insert("httpPath".into(), json!(db.http_path));
            c.insert("authenticationType".into(), json!(db.auth.authentication_type()));
            databricks_credentials(&db.auth, secrets, &mut c);
            Value::Object(c)
        }
    }
}

/// The `nativeIntegration` object of the registration: the script's config under the names the
/// registration uses.
pub fn native_integration(conn: &Connection, secrets: &dyn SecretSource) -> Value {
    match &conn.platform {
        Platform::Snowflake(sf) => {
            let mut config = Map::new();
            config.insert("host".into(), json!(sf.host));
            config.insert("port".into(), json!(sf.port));
            config.insert("warehouse".into(), json!(sf.warehouse));
            config.insert("database".into(), json!(sf.database));
            config.insert("authenticationType".into(), json!(sf.auth.authentication_type()));
            snowflake_credentials(&sf.auth, secrets, &mut config, Side::Native);
            snowflake_toggles(sf, &mut config);
            let mut native = Map::new();
            native.insert("type".into(), json!("Snowflake"));
            native.insert("autoBootstrap".into(), json!(false));
            // The guide's key-pair and OAuth tables put userRolePattern beside `config`; for
            // userPassword it says to paste the script payload as it is, which keeps it inside.
            if let Some(pattern) = &sf.user_role_pattern {
                let value = json!({ "exclude": pattern.exclude });
                match sf.auth {
                    SnowflakeAuth::UserPassword { .. } => {
                        config.insert("userRolePattern".into(), value);
                    }
                    _ => {
                        native.insert("userRolePattern".into(), value);
                    }
                }
            }
            native.insert("config".into(), Value::Object(config));
            Value::Object(native)
        }
        Platform::Databricks(db) => {
            let mut config = Map::new();
            config.insert("host".into(), json!(db.workspace_url));
            config.insert("port".into(), json!(db.port));
            config.insert("authenticationType".into(), json!(db.auth.authentication_type()));
            databricks_credentials(&db.auth, secrets, &mut config);
            databricks_integration_fields(db, &mut config);
            json!({
                "type": "Databricks",
                "autoBootstrap": false,
                "unityCatalog": true,
                "config": Value::Object(config),
            })
        }
    }
}

fn snowflake_script_config(sf: &Snowflake, secrets: &dyn SecretSource) -> Value {
    let mut config = Map::new();
    config.insert("host".into(), json!(sf.host));
    config.insert("warehouse".into(), json!(sf.warehouse));
    config.insert("database".into(), json!(sf.database));
    config.insert("authenticationType".into(), json!(sf.auth.authentication_type()));
    snowflake_credentials(&sf.auth, secrets, &mut config, Side::Script);
    snowflake_toggles(sf, &mut config);
    if let Some(pattern) = &sf.user_role_pattern {
        config.insert("userRolePattern".into(), json!({ "exclude": pattern.exclude }));
    }
    Value::Object(config)
}

fn databricks_script_config(db: &Databricks, secrets: &dyn SecretSource) -> Value {
    let mut config = Map::new();
    config.insert("workspaceUrl".into(), json!(db.workspace_url));
    config.insert("httpPath".into(), json!(db.http_path));
    config.insert("authenticationType".into(), json!(db.auth.authentication_type()));
    databricks_credentials(&db.auth, secrets, &mut config);
    databricks_integration_fields(db, &mut config);
    Value::Object(config)
}

/// Which payload a credential goes into; key material changes shape between them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// `scripts/create` config: keys are plain PEM strings.
    Script,
    /// `connection`: keys are `{userFilename, content}`.
    Connection,
    /// `nativeIntegration.config`: like `connection`, plus `keyName` for the key pair.
    Native,
}

fn snowflake_credentials(
    auth: &SnowflakeAuth,
    secrets: &dyn SecretSource,
    out: &mut Map<String, Value>,
    side: Side,
) {
    let key_file = |reference: &SecretRef, key_name: Option<&str>| -> Value {
        let mut key = Map::new();
        if let Some(name) = key_name {
            key.insert("keyName".into(), json!(name));
        }
        key.insert("userFilename".into(), json!(reference.user_filename()));
        key.insert("content".into(), json!(secrets.value(reference)));
        Value::Object(key)
    };
    match auth {
        SnowflakeAuth::UserPassword { username, password } => {
            out.insert("username".into(), json!(username));
            out.insert("password".into(), json!(secrets.value(password)));
        }
        SnowflakeAuth::KeyPair {
            username,
            private_key,
            private_key_password,
        } => {
            out.insert("username".into(), json!(username));
            let key = match side {
                Side::Script => json!(secrets.value(private_key)),
                Side::Connection => key_file(private_key, None),
                Side::Native => key_file(private_key, Some(SNOWFLAKE_KEY_NAME)),
            };
            out.insert("privateKey".into(), key);
            if let (Some(password), Side::Connection | Side::Native) = (private_key_password, side) {
                out.insert("privateKeyPassword".into(), json!(secrets.value(password)));
            }
        }
        SnowflakeAuth::OAuthClientCredentials {
            provider,
            client_id,
            authority_url,
            resource,
            ..
        } => {
            let mut oauth = Map::new();
            if side == Side::Script {
                oauth.insert("provider".into(), json!(provider));
            }
            oauth.insert("clientId".into(), json!(client_id));
            oauth.insert("authorityUrl".into(), json!(authority_url));
            match auth.oauth_credential() {
                Some(OAuthCredential::ClientSecret(secret)) => {
                    oauth.insert("clientSecret".into(), json!(secrets.value(secret)));
                }
                Some(OAuthCredential::Certificate {
                    thumbprint,
                    private_key,
                }) => {
                    oauth.insert("publicCertificateThumbprint".into(), json!(thumbprint));
                    let key = match side {
                        Side::Script => json!(secrets.value(private_key)),
                        Side::Connection | Side::Native => key_file(private_key, None),
                    };
                    oauth.insert("oauthPrivateKey".into(), key);
                }
                // Validation rejects such a block before any payload is built.
                None => {}
            }
            if let (Some(resource), Side::Connection | Side::Native) = (resource, side) {
                oauth.insert("resource".into(), json!(resource));
            }
            out.insert("oAuthClientConfig".into(), Value::Object(oauth));
        }
    }
}

fn snowflake_toggles(sf: &Snowflake, out: &mut Map<String, Value>) {
    let toggle = |t: Option<Toggle>| json!({ "enabled": t.is_some_and(|t| t.enabled) });
    out.insert("audit".into(), toggle(sf.audit));
    out.insert("workspaces".into(), toggle(sf.workspaces));
    out.insert("impersonation".into(), toggle(sf.impersonation));
    out.insert("lineage".into(), toggle(sf.lineage));
}

fn databricks_credentials(auth: &DatabricksAuth, secrets: &dyn SecretSource, out: &mut Map<String, Value>) {
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
                    "scope": scope.as_deref().unwrap_or("all-apis"),
                    "authorityUrl": authority_url,
                }),
            );
        }
    }
}

fn databricks_integration_fields(db: &Databricks, out: &mut Map<String, Value>) {
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
