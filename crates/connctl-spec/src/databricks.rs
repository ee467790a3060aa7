//! Everything connctl-spec knows of Databricks Unity Catalog: the connection as written
//! ([`DatabricksSpec`]), its auth variants, the validated form ([`Databricks`]), the field rules
//! the YAML walk applies (catalog names among them), and the connection's flat field map.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::check::{Field, TechRules, Ty, Variant, check_fields, non_empty_str, opt, req};
use crate::common::{CommonSpec, DEFAULT_PORT, ExecutorKind, OptionsSpec, SettingsSpec, Toggle};
use crate::diagnostic::Sink;
use crate::secret::SecretRef;
use crate::yaml::Node;

/// A Databricks Unity Catalog connection as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabricksSpec {
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
    /// Data objects below the connection whose status and settings connctl manages
    /// (`docs/objects.md`); objects not listed follow their parent as Immuta decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<crate::objects::ObjectSpec>>,
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

    /// Relative secret files taken from the spec file's folder.
    fn anchored(self, base: &Path) -> DatabricksAuth {
        match self {
            DatabricksAuth::Token { token } => DatabricksAuth::Token {
                token: token.anchored(base),
            },
            DatabricksAuth::OAuthM2M {
                client_id,
                client_secret,
                authority_url,
                scope,
            } => DatabricksAuth::OAuthM2M {
                client_id,
                client_secret: client_secret.anchored(base),
                authority_url,
                scope,
            },
        }
    }
}

/// `authenticationType` for a Databricks personal access token.
pub const DATABRICKS_TOKEN_AUTH_TYPE: &str = "token";

/// The OAuth scope when none is given.
pub const DATABRICKS_DEFAULT_SCOPE: &str = "all-apis";

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

impl DatabricksSpec {
    /// The common fields, and the Databricks part with its defaults applied and relative secret
    /// files anchored at `base`.
    pub(crate) fn split(self, base: &Path) -> (CommonSpec, Databricks) {
        let common = CommonSpec {
            key: self.key,
            protect: self.protect,
            executor: self.executor,
            settings: self.settings,
            options: self.options,
            objects: self.objects.unwrap_or_default(),
        };
        let databricks = Databricks {
            workspace_url: self.workspace_url,
            http_path: self.http_path,
            port: self.port.unwrap_or(DEFAULT_PORT),
            catalog: self.catalog,
            auth: self.auth.anchored(base),
            audit: self.audit,
            workspace_ids: self.workspace_ids,
            enable_native_query_parsing: self.enable_native_query_parsing,
            group_pattern: self.group_pattern,
            job_config: self.job_config,
        };
        (common, databricks)
    }
}

impl Databricks {
    /// Every secret reference, with its field path in the YAML, in a stable order.
    pub(crate) fn secret_refs<'a>(&'a self, refs: &mut Vec<(&'static str, &'a SecretRef)>) {
        match &self.auth {
            DatabricksAuth::Token { token } => refs.push(("auth.token", token)),
            DatabricksAuth::OAuthM2M { client_secret, .. } => refs.push(("auth.clientSecret", client_secret)),
        }
    }

    /// Adds this part's fields to a connection's field map (see [`crate::Connection::fields`]).
    pub(crate) fn fields<E>(
        &self,
        m: &mut crate::FieldMap,
        secret: &dyn Fn(&'static str, &SecretRef) -> Result<Value, E>,
    ) -> Result<(), E> {
        m.insert("workspaceUrl".into(), json!(self.workspace_url));
        m.insert("port".into(), json!(self.port));
        m.insert("httpPath".into(), json!(self.http_path));
        m.insert("catalog".into(), json!(self.catalog));
        m.insert("auth.type".into(), json!(self.auth.authentication_type()));
        match &self.auth {
            DatabricksAuth::Token { token } => {
                m.insert("auth.token".into(), secret("auth.token", token)?);
            }
            DatabricksAuth::OAuthM2M {
                client_id,
                client_secret,
                authority_url,
                scope,
            } => {
                m.insert("auth.clientId".into(), json!(client_id));
                m.insert("auth.authorityUrl".into(), json!(authority_url));
                m.insert(
                    "auth.scope".into(),
                    json!(scope.as_deref().unwrap_or(DATABRICKS_DEFAULT_SCOPE)),
                );
                m.insert(
                    "auth.clientSecret".into(),
                    secret("auth.clientSecret", client_secret)?,
                );
            }
        }
        m.insert(
            "audit.enabled".into(),
            json!(self.audit.is_some_and(|t| t.enabled)),
        );
        if let Some(ids) = &self.workspace_ids {
            m.insert("workspaceIds".into(), json!(ids));
        }
        if let Some(v) = self.enable_native_query_parsing {
            m.insert("enableNativeQueryParsing".into(), json!(v));
        }
        if let Some(p) = &self.group_pattern {
            m.insert("groupPattern.deny".into(), json!(p.deny));
        }
        if let Some(j) = &self.job_config {
            if let Some(p) = &j.workspace_directory_path {
                m.insert("jobConfig.workspaceDirectoryPath".into(), json!(p));
            }
            if let Some(c) = &j.job_cluster_id {
                m.insert("jobConfig.jobClusterId".into(), json!(c));
            }
        }
        Ok(())
    }
}

/// What the YAML walk checks of a Databricks connection.
pub(crate) const RULES: TechRules = TechRules {
    fields: &[
        req("workspaceUrl", Ty::Str),
        req("httpPath", Ty::Str),
        opt("port", Ty::Port),
        req("catalog", Ty::Scalar(catalog)),
        opt("audit", Ty::Toggle),
        opt("workspaceIds", Ty::StrList),
        opt("enableNativeQueryParsing", Ty::Bool),
        opt("groupPattern", Ty::Nested(group_pattern)),
        opt("jobConfig", Ty::Nested(job_config)),
    ],
    telltales: &["workspaceUrl", "catalog"],
    auth: &[
        Variant {
            name: "token",
            fields: &[req("type", Ty::Skip), req("token", Ty::Secret)],
            check: None,
        },
        Variant {
            name: "oAuthM2M",
            fields: &[
                req("type", Ty::Skip),
                req("clientId", Ty::Str),
                req("clientSecret", Ty::Secret),
                req("authorityUrl", Ty::Str),
                opt("scope", Ty::Str),
            ],
            check: None,
        },
    ],
    check: |_, _| {},
};

/// Catalog names: letters, digits, underscores; not starting with a digit.
fn catalog(sink: &mut Sink<'_>, node: &Node, path: &str) {
    let Some(name) = non_empty_str(sink, node, path) else {
        return;
    };
    let starts_with_digit = name.starts_with(|c: char| c.is_ascii_digit());
    let bad = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_'));
    if starts_with_digit || bad.is_some() {
        let reason = match bad {
            Some(c) => format!("contains `{c}`"),
            None => "starts with a digit".to_owned(),
        };
        sink.error(
            node.pos,
            format!("invalid catalog name `{name}`: it {reason}"),
            Some("a catalog name may only contain letters, digits and underscores, and cannot start with a digit".into()),
        );
    }
}

fn group_pattern(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    let fields: [Field; 1] = [req("deny", Ty::Str)];
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), &fields, &|_| {
        None
    });
}

fn job_config(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    let fields = [
        opt("workspaceDirectoryPath", Ty::Str),
        opt("jobClusterId", Ty::Str),
    ];
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), &fields, &|_| {
        None
    });
}

/// What kind of Databricks principal a credential belongs to (SCIM `Me`): the connection's
/// token or OAuth client must be a service principal. Read by the executor, judged by preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    ServicePrincipal,
    User,
    /// The answer does not say (neither an application id nor an e-mail).
    Unknown,
}
