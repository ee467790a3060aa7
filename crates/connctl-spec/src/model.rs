//! The typed desired state: what one YAML file says, and what a connection is once
//! `defaults:` have been merged under it.
//!
//! Field names follow Immuta's own payload names (camelCase) so that a user can map the YAML
//! onto Immuta's documentation one to one. The same types generate the JSON Schema
//! (`connctl schema`), so the schema can never disagree with what the loader accepts.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::SecretRef;

/// The only spec format version this build understands.
pub const SPEC_VERSION: u32 = 1;

/// One YAML file as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "connctl connections file")]
pub struct SpecFile {
    /// Spec format version. Must be `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Values merged under every connection of this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Defaults>,
    /// The connections this file declares.
    #[serde(default)]
    pub connections: Vec<ConnectionSpec>,
}

/// Values merged under every connection of the file; a connection's own value wins.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Defaults {
    /// Default `settings` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsSpec>,
    /// Default `options` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsSpec>,
    /// Default `protect` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<bool>,
    /// Default `executor` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
}

/// One connection as written, tagged by `technology`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "technology")]
pub enum ConnectionSpec {
    /// A Snowflake account.
    Snowflake(SnowflakeSpec),
    /// A Databricks Unity Catalog metastore, reached through a workspace.
    Databricks(DatabricksSpec),
}

/// A Snowflake connection as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SnowflakeSpec {
    /// The Immuta `connectionKey`: letters, digits, `-` and `_`; no `.`; not a reserved word
    /// (data, connection, object, crawl, search, settings, metadata, permission, sync, bulk, upgrade).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"), transform = crate::schema::not_reserved)]
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
    #[schemars(transform = crate::schema::one_oauth_credential)]
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
}

/// A Databricks Unity Catalog connection as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabricksSpec {
    /// The Immuta `connectionKey`: letters, digits, `-` and `_`; no `.`; not a reserved word
    /// (data, connection, object, crawl, search, settings, metadata, permission, sync, bulk, upgrade).
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]+$"), transform = crate::schema::not_reserved)]
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
    /// Workspace URL (`config.workspaceUrl`, `connection.hostname`, `nativeIntegration.config.host`).
    #[schemars(length(min = 1))]
    pub workspace_url: String,
    /// HTTP path of the SQL warehouse or cluster, e.g. `/sql/1.0/warehouses/abc123`.
    #[schemars(length(min = 1))]
    pub http_path: String,
    /// Port (`connection.port`, `nativeIntegration.config.port`). Default 443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// The catalog the setup script creates: letters, digits, underscores; not starting with a digit.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub catalog: String,
    /// How Immuta authenticates to Databricks.
    pub auth: DatabricksAuth,
    /// Query audit (`config.audit.enabled`). Recommended `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Toggle>,
    /// Workspaces whose queries are audited (ids as strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_ids: Option<Vec<String>>,
    /// Native query parsing for audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_native_query_parsing: Option<bool>,
    /// Group whose members are exempt from Immuta policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_pattern: Option<GroupPattern>,
    /// Where Immuta's Databricks jobs run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_config: Option<JobConfig>,
}

/// Databricks authentication, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum DatabricksAuth {
    /// A personal access token of the Immuta service principal.
    #[serde(rename = "token")]
    Token { token: SecretRef },
    /// OAuth machine-to-machine with the service principal's client id and secret.
    #[serde(rename = "oAuthM2M", rename_all = "camelCase")]
    OAuthM2M {
        #[schemars(length(min = 1))]
        client_id: String,
        client_secret: SecretRef,
        #[schemars(length(min = 1))]
        authority_url: String,
        /// Default `all-apis`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
}

impl DatabricksAuth {
    /// The `authenticationType` Immuta expects. The PAT value is unconfirmed on a live
    /// tenant (Immuta's payload reference names the field, not this value), so it lives in
    /// this one constant.
    pub fn authentication_type(&self) -> &'static str {
        match self {
            DatabricksAuth::Token { .. } => DATABRICKS_TOKEN_AUTH_TYPE,
            DatabricksAuth::OAuthM2M { .. } => "oAuthM2M",
        }
    }
}

/// `authenticationType` for a Databricks personal access token.
pub const DATABRICKS_TOKEN_AUTH_TYPE: &str = "token";

/// `{ enabled: bool }`, the shape of audit, workspaces, impersonation and lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// Whether the feature is on.
    pub enabled: bool,
}

/// Roles and users excluded from authorization checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRolePattern {
    /// Roles and users that get no policies applied.
    pub exclude: Vec<String>,
}

/// Databricks group exemption.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPattern {
    /// Members of this group are exempt from Immuta policies.
    #[schemars(length(min = 1))]
    pub deny: String,
}

/// Databricks job settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Workspace folder for Immuta's job notebooks.
    pub workspace_directory_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Cluster that runs Immuta's jobs.
    pub job_cluster_id: Option<String>,
}

/// Top-level `settings` of the registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SettingsSpec {
    /// Objects are active by default when created. Default `false` (recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// New children found by object sync are registered as active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_new_children: Option<bool>,
}

/// Top-level `options` of the registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionsSpec {
    /// Crawl inactive objects too. Default `true` (recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_recursive_crawl: Option<bool>,
}

/// How a setup script reaches the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Save the script for a person to run; the next `apply` checks and carries on.
    Manual,
    /// Pipe the script to a command configured in `connctl.toml`.
    Command,
    /// Snowflake SQL API v2.
    Snowflake,
    /// Databricks SQL Statement Execution API.
    Databricks,
}

/// Where a connection was declared: the file and the 1-based line and column of its entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A connection after loading and validation, with `defaults:` merged and every default applied.
#[derive(Debug, Clone)]
pub struct Connection {
    pub key: String,
    pub origin: Origin,
    pub protect: bool,
    /// Executor chosen in the spec, if any (`connctl.toml` decides otherwise).
    pub executor: Option<ExecutorKind>,
    pub settings: Settings,
    pub options: Options,
    pub platform: Platform,
}

/// Settings with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub is_active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate_new_children: Option<bool>,
}

/// Options with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    pub force_recursive_crawl: bool,
}

/// The technology-specific part of a validated connection.
#[derive(Debug, Clone)]
pub enum Platform {
    Snowflake(Snowflake),
    Databricks(Databricks),
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

/// A validated Databricks connection (port defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Databricks {
    pub workspace_url: String,
    pub http_path: String,
    pub port: u16,
    pub catalog: String,
    pub auth: DatabricksAuth,
    pub audit: Option<Toggle>,
    pub workspace_ids: Option<Vec<String>>,
    pub enable_native_query_parsing: Option<bool>,
    pub group_pattern: Option<GroupPattern>,
    pub job_config: Option<JobConfig>,
}

/// The technology names Immuta uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Technology {
    Snowflake,
    Databricks,
}

impl Technology {
    pub fn as_str(self) -> &'static str {
        match self {
            Technology::Snowflake => "Snowflake",
            Technology::Databricks => "Databricks",
        }
    }
}

impl std::fmt::Display for Technology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Connection {
    pub fn technology(&self) -> Technology {
        match self.platform {
            Platform::Snowflake(_) => Technology::Snowflake,
            Platform::Databricks(_) => Technology::Databricks,
        }
    }

    /// Every secret reference of this connection, with its field path in the YAML
    /// (`auth.password`, …), in a stable order.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        let mut refs = Vec::new();
        match &self.platform {
            Platform::Snowflake(sf) => match &sf.auth {
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
            },
            Platform::Databricks(db) => match &db.auth {
                DatabricksAuth::Token { token } => refs.push(("auth.token", token)),
                DatabricksAuth::OAuthM2M { client_secret, .. } => {
                    refs.push(("auth.clientSecret", client_secret))
                }
            },
        }
        refs
    }
}

/// Everything loaded from the paths given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The YAML files read, in the order read.
    pub files: Vec<PathBuf>,
    /// Connections in file order, then declaration order. Keys are unique.
    pub connections: Vec<Connection>,
}

impl Desired {
    pub fn get(&self, key: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.key == key)
    }
}
