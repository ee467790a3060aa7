//! Everything connctl-spec knows of Snowflake: the connection as written ([`SnowflakeSpec`]),
//! its auth variants, the validated form ([`Snowflake`]), the field rules the YAML walk applies,
//! the cross-connection check, and the connection's flat field map; the field rules of the YAML
//! walk and their cross-field checks are in [`rules`].

use std::collections::HashMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::{CommonSpec, DEFAULT_PORT, ExecutorKind, OptionsSpec, Origin, SettingsSpec, Toggle};
use crate::diagnostic::{Diagnostic, Report};
use crate::secret::SecretRef;

mod rules;

pub(crate) use rules::RULES;

/// A Snowflake connection as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SnowflakeSpec {
    /// The Immuta `connectionKey`: letters, digits, `-` and `_`; no `.`; not a reserved word
    /// (data, connection, object, crawl, search, settings, metadata, permission, sync, bulk, upgrade).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"), transform = crate::common::not_reserved)]
    pub key: String,
    /// Refuse to delete this connection, even after it leaves the YAML. Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<bool>,
    /// How the setup script is executed; overrides `connctl.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
    /// Top-level `settings` of `POST /data/connection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsSpec>,
    /// Top-level `options` of `POST /data/connection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsSpec>,
    /// Snowflake account URL (`config.host`, `connection.hostname`).
    #[schemars(length(min = 1))]
    pub host: String,
    /// Port (`connection.port`, `nativeIntegration.config.port`). Default 443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Warehouse the Immuta system user runs queries in.
    #[schemars(length(min = 1))]
    pub warehouse: String,
    /// The new, empty database the setup script creates for Immuta.
    #[schemars(length(min = 1))]
    pub database: String,
    /// Privileged role of the Immuta system account (`connection.role`).
    #[schemars(length(min = 1))]
    pub role: String,
    /// How Immuta authenticates to Snowflake.
    pub auth: SnowflakeAuth,
    /// Query audit (`config.audit.enabled`). Recommended `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Toggle>,
    /// Project workspaces; cannot be used with Snowflake table grants. Recommended `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Toggle>,
    /// User impersonation; cannot be used with low row access policy mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonation: Option<Toggle>,
    /// Lineage ingestion. Recommended `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Toggle>,
    /// Roles and users excluded from authorization checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_role_pattern: Option<UserRolePattern>,
    /// Data objects below the connection whose status and settings connctl manages
    /// (`docs/objects.md`); objects not listed follow their parent as Immuta decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<crate::objects::ObjectSpec>>,
}

/// Snowflake authentication, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum SnowflakeAuth {
    /// Username and password of the Immuta system account.
    #[serde(rename_all = "camelCase")]
    UserPassword { username: String, password: SecretRef },
    /// Key pair: the system account's private key (PEM), optionally encrypted.
    #[serde(rename_all = "camelCase")]
    KeyPair {
        #[schemars(length(min = 1))]
        username: String,
        private_key: SecretRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_key_password: Option<SecretRef>,
    },
    /// Snowflake OAuth with client credentials: either `clientSecret`, or a certificate
    /// (`publicCertificateThumbprint` + `privateKey`). Exactly one of the two.
    #[serde(rename_all = "camelCase")]
    #[schemars(transform = one_oauth_credential)]
    OAuthClientCredentials {
        /// Identity provider, such as Okta.
        #[schemars(length(min = 1))]
        provider: String,
        #[schemars(length(min = 1))]
        client_id: String,
        #[schemars(length(min = 1))]
        authority_url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<SecretRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        public_certificate_thumbprint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_key: Option<SecretRef>,
    },
}

/// Which credential a validated Snowflake OAuth block carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCredential<'a> {
    ClientSecret(&'a SecretRef),
    Certificate {
        thumbprint: &'a str,
        private_key: &'a SecretRef,
    },
}

impl SnowflakeAuth {
    /// The `authenticationType` Immuta expects.
    pub fn authentication_type(&self) -> &'static str {
        match self {
            SnowflakeAuth::UserPassword { .. } => "userPassword",
            SnowflakeAuth::KeyPair { .. } => "keyPair",
            SnowflakeAuth::OAuthClientCredentials { .. } => "oAuthClientCredentials",
        }
    }

    /// The OAuth credential variant; `None` for non-OAuth auth or a block validation rejects.
    pub fn oauth_credential(&self) -> Option<OAuthCredential<'_>> {
        match self {
            SnowflakeAuth::OAuthClientCredentials {
                client_secret: Some(secret),
                public_certificate_thumbprint: None,
                private_key: None,
                ..
            } => Some(OAuthCredential::ClientSecret(secret)),
            SnowflakeAuth::OAuthClientCredentials {
                client_secret: None,
                public_certificate_thumbprint: Some(thumbprint),
                private_key: Some(private_key),
                ..
            } => Some(OAuthCredential::Certificate {
                thumbprint,
                private_key,
            }),
            _ => None,
        }
    }

    /// Relative secret files taken from the spec file's folder.
    fn anchored(self, base: &Path) -> SnowflakeAuth {
        match self {
            SnowflakeAuth::UserPassword { username, password } => SnowflakeAuth::UserPassword {
                username,
                password: password.anchored(base),
            },
            SnowflakeAuth::KeyPair {
                username,
                private_key,
                private_key_password,
            } => SnowflakeAuth::KeyPair {
                username,
                private_key: private_key.anchored(base),
                private_key_password: private_key_password.map(|p| p.anchored(base)),
            },
            SnowflakeAuth::OAuthClientCredentials {
                provider,
                client_id,
                authority_url,
                resource,
                client_secret,
                public_certificate_thumbprint,
                private_key,
            } => SnowflakeAuth::OAuthClientCredentials {
                provider,
                client_id,
                authority_url,
                resource,
                client_secret: client_secret.map(|s| s.anchored(base)),
                public_certificate_thumbprint,
                private_key: private_key.map(|k| k.anchored(base)),
            },
        }
    }
}

/// Roles and users excluded from authorization checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRolePattern {
    /// Roles and users that get no policies applied.
    pub exclude: Vec<String>,
}

/// A validated Snowflake connection (port defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snowflake {
    pub host: String,
    pub port: u16,
    pub warehouse: String,
    pub database: String,
    pub role: String,
    pub auth: SnowflakeAuth,
    pub audit: Option<Toggle>,
    pub workspaces: Option<Toggle>,
    pub impersonation: Option<Toggle>,
    pub lineage: Option<Toggle>,
    pub user_role_pattern: Option<UserRolePattern>,
}

impl SnowflakeSpec {
    /// The common fields, and the Snowflake part with its defaults applied and relative secret
    /// files anchored at `base`.
    pub(crate) fn split(self, base: &Path) -> (CommonSpec, Snowflake) {
        let common = CommonSpec {
            key: self.key,
            protect: self.protect,
            executor: self.executor,
            settings: self.settings,
            options: self.options,
            objects: self.objects.unwrap_or_default(),
        };
        let snowflake = Snowflake {
            host: self.host,
            port: self.port.unwrap_or(DEFAULT_PORT),
            warehouse: self.warehouse,
            database: self.database,
            role: self.role,
            auth: self.auth.anchored(base),
            audit: self.audit,
            workspaces: self.workspaces,
            impersonation: self.impersonation,
            lineage: self.lineage,
            user_role_pattern: self.user_role_pattern,
        };
        (common, snowflake)
    }
}

impl Snowflake {
    /// Every secret reference, with its field path in the YAML, in a stable order.
    pub(crate) fn secret_refs<'a>(&'a self, refs: &mut Vec<(&'static str, &'a SecretRef)>) {
        match &self.auth {
            SnowflakeAuth::UserPassword { password, .. } => refs.push(("auth.password", password)),
            SnowflakeAuth::KeyPair {
                private_key,
                private_key_password,
                ..
            } => {
                refs.push(("auth.privateKey", private_key));
                if let Some(p) = private_key_password {
                    refs.push(("auth.privateKeyPassword", p));
                }
            }
            SnowflakeAuth::OAuthClientCredentials {
                client_secret,
                private_key,
                ..
            } => {
                if let Some(s) = client_secret {
                    refs.push(("auth.clientSecret", s));
                }
                if let Some(k) = private_key {
                    refs.push(("auth.privateKey", k));
                }
            }
        }
    }

    /// Adds this part's fields to a connection's field map (see [`crate::Connection::fields`]).
    pub(crate) fn fields<E>(
        &self,
        m: &mut crate::FieldMap,
        secret: &dyn Fn(&'static str, &SecretRef) -> Result<Value, E>,
    ) -> Result<(), E> {
        let put_secret = |m: &mut crate::FieldMap, path: &'static str, r: &SecretRef| {
            secret(path, r).map(|v| {
                m.insert(path.to_owned(), v);
            })
        };
        m.insert("host".into(), json!(self.host));
        m.insert("port".into(), json!(self.port));
        m.insert("warehouse".into(), json!(self.warehouse));
        m.insert("database".into(), json!(self.database));
        m.insert("role".into(), json!(self.role));
        m.insert("auth.type".into(), json!(self.auth.authentication_type()));
        match &self.auth {
            SnowflakeAuth::UserPassword { username, password } => {
                m.insert("auth.username".into(), json!(username));
                put_secret(m, "auth.password", password)?;
            }
            SnowflakeAuth::KeyPair {
                username,
                private_key,
                private_key_password,
            } => {
                m.insert("auth.username".into(), json!(username));
                put_secret(m, "auth.privateKey", private_key)?;
                if let Some(p) = private_key_password {
                    put_secret(m, "auth.privateKeyPassword", p)?;
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
                match self.auth.oauth_credential() {
                    Some(OAuthCredential::ClientSecret(s)) => put_secret(m, "auth.clientSecret", s)?,
                    Some(OAuthCredential::Certificate {
                        thumbprint,
                        private_key,
                    }) => {
                        m.insert("auth.publicCertificateThumbprint".into(), json!(thumbprint));
                        put_secret(m, "auth.privateKey", private_key)?;
                    }
                    None => {}
                }
            }
        }
        let toggle = |t: Option<Toggle>| json!(t.is_some_and(|t| t.enabled));
        m.insert("audit.enabled".into(), toggle(self.audit));
        m.insert("workspaces.enabled".into(), toggle(self.workspaces));
        m.insert("impersonation.enabled".into(), toggle(self.impersonation));
        m.insert("lineage.enabled".into(), toggle(self.lineage));
        if let Some(p) = &self.user_role_pattern {
            m.insert("userRolePattern.exclude".into(), json!(p.exclude));
        }
        Ok(())
    }
}

/// Schema transform for OAuth: exactly one credential, a client secret or a certificate.
fn one_oauth_credential(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([
            {
                "title": "client secret",
                "required": ["clientSecret"],
                "not": { "anyOf": [{ "required": ["publicCertificateThumbprint"] }, { "required": ["privateKey"] }] }
            },
            {
                "title": "certificate",
                "required": ["publicCertificateThumbprint", "privateKey"],
                "not": { "required": ["clientSecret"] }
            }
        ]),
    );
}

/// Immuta allows one Snowflake integration per host, and every connection creates one: a second
/// connection on a host is refused by Immuta (409) after its setup script has already run, so it
/// is an error here, naming both. Takes each Snowflake connection's key, origin and part.
pub(crate) fn one_integration_per_host<'a>(
    connections: impl Iterator<Item = (&'a str, &'a Origin, &'a Snowflake)>,
    report: &mut Report,
) {
    let mut first: HashMap<String, (&str, &Origin)> = HashMap::new();
    for (key, origin, sf) in connections {
        let host = sf.host.to_ascii_lowercase();
        match first.get(&host) {
            Some((earlier_key, earlier_origin)) => report.diagnostics.push(
                Diagnostic::error(
                    &origin.file,
                    origin.line,
                    origin.column,
                    format!(
                        "connection `{key}` is on Snowflake host `{}`, which connection `{earlier_key}` at {earlier_origin} already uses",
                        sf.host
                    ),
                )
                .with_help(
                    "Immuta allows one Snowflake integration per host and each connection creates one; \
                     keep one connection per Snowflake account",
                ),
            ),
            None => {
                first.insert(host, (key, origin));
            }
        }
    }
}
