//! `connctl export`: YAML for connections that already exist in Immuta, to start managing them.
//!
//! Everything Immuta shows is written as it is; secrets, which Immuta never shows, become
//! `{ env: NAME }` placeholders named after the connection and field, to be set (or replaced by
//! `{ file: PATH }`) before `connctl import` adopts the connections.

use anyhow::Result;
use connctl_immuta::{ImmutaClient, LiveConnection, LiveIntegration, LiveObject};
use serde_json::{Map, Value, json};

/// Reads `keys` (every connection when empty) and returns the YAML document. With
/// `secret_ref` (`vault:kv/immuta/{key}#{field}`), secrets become `{ secret: … }` references
/// from that template instead of one environment variable each.
pub async fn export(client: &ImmutaClient, keys: &[String], secret_ref: Option<&str>) -> Result<String> {
    if let Some(template) = secret_ref {
        check_template(template)?;
    }
    let keys: Vec<String> = if keys.is_empty() {
        client
            .list_connections()
            .await?
            .iter()
            .filter_map(|h| h.key().map(str::to_owned))
            .collect()
    } else {
        keys.to_vec()
    };
    let mut connections = Vec::new();
    for key in &keys {
        let connection = client
            .get_connection(key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("`{key}` does not exist in Immuta"))?;
        let integration = match &connection.native_integration_id {
            Some(id) => client.get_integration(id).await?,
            None => None,
        };
        let object = client.get_object(key).await?;
        connections.push(entry(&connection, integration.as_ref(), object.as_ref()));
    }
    if let Some(template) = secret_ref {
        for connection in &mut connections {
            from_template(connection, template);
        }
    }
    let document = json!({ "version": 1, "connections": connections });
    let yaml = serde_saphyr::to_string(&document)?;
    if secret_ref.is_some() {
        return Ok(format!(
            "# Exported by `connctl export` from Immuta. Secrets are references to a provider of\n\
             # connctl.toml ([secrets.NAME]): store each value there; fill in any value marked SET_ME\n\
             # (Immuta does not show it); then adopt with `connctl import THIS_FILE --key KEY`.\n{yaml}"
        ));
    }
    Ok(format!(
        "# Exported by `connctl export` from Immuta. Secrets are placeholders: set each environment\n\
         # variable named below (or use {{ file: PATH }}); fill in any value marked SET_ME (Immuta\n\
         # does not show it); then adopt with `connctl import THIS_FILE --key KEY` (a --key per\n\
         # connection).\n{yaml}"
    ))
}

/// A template names `{key}` (else every connection would share one secret) and reads as a
/// provider reference.
fn check_template(template: &str) -> Result<()> {
    if !template.contains("{key}") {
        anyhow::bail!(
            "--secret-ref `{template}` has no `{{key}}`: every connection would get the same secret\n  = help: e.g. --secret-ref 'vault:kv/immuta/{{key}}#{{field}}'"
        );
    }
    let example = template.replace("{key}", "k").replace("{field}", "f");
    connctl_spec::provider::ProviderRef::parse(&example).map_err(|e| {
        anyhow::anyhow!(
            "--secret-ref `{template}` {e}\n  = help: e.g. --secret-ref 'vault:kv/immuta/{{key}}#{{field}}'"
        )
    })?;
    Ok(())
}

/// Replaces each `{ env: … }` placeholder under the connection's `auth` with
/// `{ secret: TEMPLATE }`, `{key}` the connection's key and `{field}` the auth field
/// (`password`, `privateKey`, `privateKeyPassword`, `clientSecret`, `token`).
fn from_template(connection: &mut Value, template: &str) {
    let key = connection["key"].as_str().unwrap_or_default().to_owned();
    if let Some(auth) = connection.get_mut("auth").and_then(Value::as_object_mut) {
        for (field, value) in auth.iter_mut() {
            if value.get("env").is_some() {
                let reference = template.replace("{key}", &key).replace("{field}", field);
                *value = json!({ "secret": reference });
            }
        }
    }
}

/// `SNOWFLAKE_PROD_PASSWORD` for key `snowflake-prod`, field `password`.
fn placeholder(key: &str, field: &str) -> Value {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    name.push('_');
    name.push_str(field);
    json!({ "env": name })
}

fn entry(live: &LiveConnection, integration: Option<&LiveIntegration>, object: Option<&LiveObject>) -> Value {
    let c = &live.connection;
    let key = live.connection_key.as_str();
    let get = |m: &Map<String, Value>, k: &str| m.get(k).filter(|v| !v.is_null()).cloned();
    let empty = Map::new();
    let config = integration.map(|i| &i.config).unwrap_or(&empty);
    let technology = c.get("technology").and_then(Value::as_str).unwrap_or("Snowflake");
    let mut out = Map::new();
    out.insert("key".into(), json!(key));
    out.insert("technology".into(), json!(technology));
    let put = |out: &mut Map<String, Value>, name: &str, value: Option<Value>| {
        if let Some(v) = value {
            out.insert(name.into(), v);
        }
    };
    let auth_type = c
        .get("authenticationType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let oauth = c
        .get("oAuthClientConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let script_oauth = config
        .get("oAuthClientConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if technology == "Databricks" {
        put(&mut out, "workspaceUrl", get(c, "hostname"));
        put(&mut out, "httpPath", get(c, "httpPath"));
        put(&mut out, "port", get(c, "port"));
        put(&mut out, "catalog", get(config, "catalog"));
        let auth = if auth_type == "oAuthM2M" {
            json!({
                "type": "oAuthM2M",
                "clientId": get(oauth, "clientId"),
                "clientSecret": placeholder(key, "CLIENT_SECRET"),
                "authorityUrl": get(oauth, "authorityUrl"),
                "scope": get(oauth, "scope").unwrap_or(json!("all-apis")),
            })
        } else {
            json!({ "type": "token", "token": placeholder(key, "TOKEN") })
        };
        out.insert("auth".into(), auth);
        put(&mut out, "audit", get(config, "audit"));
        put(&mut out, "workspaceIds", get(config, "workspaceIds"));
        put(
            &mut out,
            "enableNativeQueryParsing",
            get(config, "enableNativeQueryParsing"),
        );
        put(&mut out, "groupPattern", get(config, "groupPattern"));
        put(&mut out, "jobConfig", get(config, "jobConfig"));
    } else {
        put(&mut out, "host", get(c, "hostname"));
        put(&mut out, "port", get(c, "port"));
        put(&mut out, "warehouse", get(c, "warehouse"));
        put(&mut out, "database", get(config, "database"));
        put(&mut out, "role", get(c, "role"));
        let auth = match auth_type {
            "keyPair" => {
                let mut a = json!({
                    "type": "keyPair",
                    "username": get(c, "username"),
                    "privateKey": placeholder(key, "PRIVATE_KEY"),
                });
                if c.contains_key("privateKeyPassword") || config.contains_key("privateKeyPassword") {
                    a["privateKeyPassword"] = placeholder(key, "PRIVATE_KEY_PASSWORD");
                }
                a
            }
            "oAuthClientCredentials" => {
                let mut a = Map::new();
                a.insert("type".into(), json!("oAuthClientCredentials"));
                // `provider` lives only in the script config; say so when Immuta does not show it.
                a.insert(
                    "provider".into(),
                    get(script_oauth, "provider")
                        .unwrap_or(json!("SET_ME: the identity provider, e.g. Okta")),
                );
                put(&mut a, "clientId", get(oauth, "clientId"));
                put(&mut a, "authorityUrl", get(oauth, "authorityUrl"));
                put(&mut a, "resource", get(oauth, "resource"));
                match get(oauth, "publicCertificateThumbprint") {
                    Some(thumbprint) => {
                        a.insert("publicCertificateThumbprint".into(), thumbprint);
                        a.insert("privateKey".into(), placeholder(key, "OAUTH_PRIVATE_KEY"));
                    }
                    None => {
                        a.insert("clientSecret".into(), placeholder(key, "CLIENT_SECRET"));
                    }
                }
                Value::Object(a)
            }
            _ => json!({
                "type": "userPassword",
                "username": get(c, "username"),
                "password": placeholder(key, "PASSWORD"),
            }),
        };
        out.insert("auth".into(), auth);
        for toggle in ["audit", "workspaces", "impersonation", "lineage"] {
            put(&mut out, toggle, get(config, toggle));
        }
        let pattern =
            get(config, "userRolePattern").or_else(|| integration.and_then(|i| i.user_role_pattern.clone()));
        put(&mut out, "userRolePattern", pattern);
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
