//! Everything connctl-immuta knows of Snowflake: the names its three payloads use (script
//! config, `connection`, `nativeIntegration`), and the same names read back from Immuta's
//! answers, into the planner's field map and into the YAML `connctl export` writes.

use connctl_spec::{FieldMap, OAuthCredential, SecretRef, Snowflake, SnowflakeAuth, Toggle};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::common::{SecretSource, Side, copy, get, placeholder, put, seen};
use crate::live::LiveIntegration;

/// `authenticationType` as Immuta shows it for a Snowflake connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum AuthType {
    UserPassword,
    KeyPair,
    OAuthClientCredentials,
}

impl AuthType {
    /// The type of a `connection` object; `None` when absent or not one of these.
    fn of(c: &Map<String, Value>) -> Option<AuthType> {
        c.get("authenticationType")
            .and_then(|v| AuthType::deserialize(v).ok())
    }
}

/// `keyName` Immuta requires for a Snowflake key pair.
const KEY_NAME: &str = "PRIV_KEY_FILE";

/// YAML fields (first path segment) that identify the remote objects: changing one replaces.
pub(crate) const IDENTITY: &[&str] = &["host", "database"];
/// YAML fields (first path segment) kept in the `connection` object (`PUT /data/connection`).
pub(crate) const CONNECTION: &[&str] = &["port", "warehouse", "role", "auth"];

/// The `config` object sent to `scripts/create`.
pub(crate) fn script_config(sf: &Snowflake, secrets: &dyn SecretSource) -> Value {
    let mut config = Map::new();
    config.insert("host".into(), json!(sf.host));
    config.insert("warehouse".into(), json!(sf.warehouse));
    config.insert("database".into(), json!(sf.database));
    config.insert("authenticationType".into(), json!(sf.auth.authentication_type()));
    credentials(&sf.auth, secrets, &mut config, Side::Script);
    toggles(sf, &mut config);
    if let Some(pattern) = &sf.user_role_pattern {
        config.insert("userRolePattern".into(), json!({ "exclude": pattern.exclude }));
    }
    Value::Object(config)
}

/// The `connection` object of the registration.
pub(crate) fn connection_object(sf: &Snowflake, secrets: &dyn SecretSource) -> Value {
    let mut c = Map::new();
    c.insert("technology".into(), json!("Snowflake"));
    c.insert("hostname".into(), json!(sf.host));
    c.insert("port".into(), json!(sf.port));
    c.insert("warehouse".into(), json!(sf.warehouse));
    c.insert("role".into(), json!(sf.role));
    c.insert("authenticationType".into(), json!(sf.auth.authentication_type()));
    credentials(&sf.auth, secrets, &mut c, Side::Connection);
    Value::Object(c)
}

/// The `nativeIntegration` object of the registration.
pub(crate) fn native_integration(sf: &Snowflake, secrets: &dyn SecretSource) -> Value {
    let mut config = Map::new();
    config.insert("host".into(), json!(sf.host));
    config.insert("port".into(), json!(sf.port));
    config.insert("warehouse".into(), json!(sf.warehouse));
    config.insert("database".into(), json!(sf.database));
    config.insert("authenticationType".into(), json!(sf.auth.authentication_type()));
    credentials(&sf.auth, secrets, &mut config, Side::Native);
    toggles(sf, &mut config);
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
            SnowflakeAuth::KeyPair { .. } | SnowflakeAuth::OAuthClientCredentials { .. } => {
                native.insert("userRolePattern".into(), value);
            }
        }
    }
    native.insert("config".into(), Value::Object(config));
    Value::Object(native)
}

fn credentials(auth: &SnowflakeAuth, secrets: &dyn SecretSource, out: &mut Map<String, Value>, side: Side) {
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
                Side::Native => key_file(private_key, Some(KEY_NAME)),
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

/// The integration toggles, each sent explicitly (`false` when unset).
const TOGGLES: [&str; 4] = ["audit", "workspaces", "impersonation", "lineage"];

fn toggles(sf: &Snowflake, out: &mut Map<String, Value>) {
    let toggle = |t: Option<Toggle>| json!({ "enabled": t.is_some_and(|t| t.enabled) });
    let values = [sf.audit, sf.workspaces, sf.impersonation, sf.lineage];
    for (name, value) in TOGGLES.into_iter().zip(values) {
        out.insert(name.into(), toggle(value));
    }
}

/// Adds what Immuta shows of a Snowflake connection to a live field map (see
/// [`crate::read::live_fields`]): `c` is the `connection` object.
pub(crate) fn live_fields(c: &Map<String, Value>, integration: Option<&LiveIntegration>, m: &mut FieldMap) {
    copy(m, c.get("hostname"), "host");
    copy(m, c.get("warehouse"), "warehouse");
    copy(m, c.get("role"), "role");
    if c.contains_key("username") {
        copy(m, c.get("username"), "auth.username");
    }
    // Which OAuth fields a tenant echoes is unconfirmed: only values seen are compared.
    if let Some(oauth) = c.get("oAuthClientConfig") {
        seen(m, oauth.get("clientId"), "auth.clientId");
        seen(m, oauth.get("authorityUrl"), "auth.authorityUrl");
        seen(
            m,
            oauth.get("publicCertificateThumbprint"),
            "auth.publicCertificateThumbprint",
        );
        seen(m, oauth.get("resource"), "auth.resource");
    }
    if let Some(i) = integration {
        let cfg = &i.config;
        copy(m, cfg.get("database"), "database");
        for toggle in TOGGLES {
            copy(
                m,
                cfg.get(toggle).and_then(|t| t.get("enabled")),
                &format!("{toggle}.enabled"),
            );
        }
        let pattern = cfg.get("userRolePattern").or(i.user_role_pattern.as_ref());
        copy(
            m,
            pattern.and_then(|p| p.get("exclude")),
            "userRolePattern.exclude",
        );
    }
}

/// Adds the Snowflake fields of an exported YAML entry: `c` is the `connection` object,
/// `config` the integration's config (empty when there is none).
pub(crate) fn export_fields(
    key: &str,
    c: &Map<String, Value>,
    config: &Map<String, Value>,
    integration: Option<&LiveIntegration>,
    out: &mut Map<String, Value>,
) {
    let empty = Map::new();
    put(out, "host", get(c, "hostname"));
    put(out, "port", get(c, "port"));
    put(out, "warehouse", get(c, "warehouse"));
    put(out, "database", get(config, "database"));
    put(out, "role", get(c, "role"));
    let oauth = c
        .get("oAuthClientConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let script_oauth = config
        .get("oAuthClientConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let auth = match AuthType::of(c) {
        Some(AuthType::KeyPair) => {
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
        Some(AuthType::OAuthClientCredentials) => {
            let mut a = Map::new();
            a.insert("type".into(), json!("oAuthClientCredentials"));
            // `provider` lives only in the script config; say so when Immuta does not show it.
            a.insert(
                "provider".into(),
                get(script_oauth, "provider").unwrap_or(json!("SET_ME: the identity provider, e.g. Okta")),
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
        // What Immuta leaves unsaid is read as a password.
        Some(AuthType::UserPassword) | None => json!({
            "type": "userPassword",
            "username": get(c, "username"),
            "password": placeholder(key, "PASSWORD"),
        }),
    };
    out.insert("auth".into(), auth);
    for toggle in TOGGLES {
        put(out, toggle, get(config, toggle));
    }
    let pattern =
        get(config, "userRolePattern").or_else(|| integration.and_then(|i| i.user_role_pattern.clone()));
    put(out, "userRolePattern", pattern);
}

#[cfg(test)]
mod tests {
    use super::*;
    use connctl_spec::SecretRef;

    /// Immuta's `authenticationType` is read back with the names the payloads write.
    #[test]
    fn auth_types_read_back_as_written() {
        let auths = [
            SnowflakeAuth::UserPassword {
                username: "u".into(),
                password: SecretRef::Env("P".into()),
            },
            SnowflakeAuth::KeyPair {
                username: "u".into(),
                private_key: SecretRef::Env("K".into()),
                private_key_password: None,
            },
            SnowflakeAuth::OAuthClientCredentials {
                provider: "Okta".into(),
                client_id: "c".into(),
                authority_url: "https://a".into(),
                resource: None,
                client_secret: Some(SecretRef::Env("S".into())),
                public_certificate_thumbprint: None,
                private_key: None,
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
