//! Executor settings, as the CLI embeds them in `connctl.toml` (`[executor.snowflake]`,
//! `[executor.databricks]`).
//!
//! Naming: the table is selected by `kind`; field names are camelCase like the spec YAML and
//! Immuta's payloads (`privateKey`, `warehouseId`, `clientId`, `clientSecret`, `tokenUrl`,
//! `timeoutSecs`); for the timeout the snake_case spelling `timeout_secs` is accepted as well,
//! matching connctl.toml's own keys. Unknown keys are rejected. Credentials are always
//! [`SecretRef`]s (`{ env = "NAME" }` or `{ file = "PATH" }`), resolved only when a script runs.
//!
//! ```toml
//! [executor.snowflake]
//! kind = "snowflake"
//! url = "https://acme-prod.snowflakecomputing.com"   # default: https://<connection host>
//! account = "ACME-PROD"                              # default: derived from the connection host
//! user = "PLATFORM_ADMIN"
//! role = "ACCOUNTADMIN"
//! warehouse = "ADMIN_WH"
//! timeoutSecs = 600
//! auth = { type = "keyPair", privateKey = { file = "/run/secrets/sf-admin.p8" } }
//!
//! [executor.databricks]
//! kind = "databricks"
//! warehouseId = "abc123def456"                       # default: the last segment of httpPath
//! auth = { type = "oAuthM2M", clientId = "8b4a…", clientSecret = { env = "DBX_SECRET" } }
//! ```

use std::path::{Path, PathBuf};

use connctl_spec::{ExecutorKind, SecretRef, Technology};
use serde::{Deserialize, Serialize};

/// The default limit, in seconds, for a script (Snowflake) or one statement (Databricks).
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// How a setup script gets executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ExecutorConfig {
    /// Save the script (mode 0600) for a person to run; the connection waits for them.
    Manual {
        /// Where to save scripts; default: the CLI's scripts folder (`.connctl/scripts`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<PathBuf>,
    },
    /// Pipe the script to a command's standard input; exit status 0 means success.
    Command {
        /// The program and its arguments, run without a shell.
        command: Vec<String>,
        /// Variables passed to the program besides the defaults (`PATH`, `HOME`, `LANG`, …): names,
        /// or prefixes ending in `*`. A variable holding a secret of the run is never passed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<String>,
    },
    /// Run the script through the Snowflake SQL API v2.
    Snowflake(SnowflakeExecConfig),
    /// Run the script statement by statement through the Databricks Statement Execution API.
    Databricks(DatabricksExecConfig),
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig::Manual { dir: None }
    }
}

impl ExecutorConfig {
    /// The `kind` as written in connctl.toml.
    pub fn kind(&self) -> ExecutorKind {
        match self {
            ExecutorConfig::Manual { .. } => ExecutorKind::Manual,
            ExecutorConfig::Command { .. } => ExecutorKind::Command,
            ExecutorConfig::Snowflake(_) => ExecutorKind::Snowflake,
            ExecutorConfig::Databricks(_) => ExecutorKind::Databricks,
        }
    }

    /// Takes relative paths (secret files, the manual executor's folder) from `base`, the
    /// folder of connctl.toml.
    pub fn anchor(&mut self, base: &Path) {
        let anchor = |r: &mut SecretRef| *r = r.clone().anchored(base);
        match self {
            ExecutorConfig::Manual { dir } => {
                if let Some(dir) = dir.as_mut().filter(|d| d.is_relative()) {
                    *dir = base.join(&*dir);
                }
            }
            ExecutorConfig::Command { .. } => {}
            ExecutorConfig::Snowflake(c) => match &mut c.auth {
                SnowflakeAuth::KeyPair { private_key } => anchor(private_key),
                SnowflakeAuth::OAuth { token } | SnowflakeAuth::ProgrammaticAccessToken { token } => {
                    anchor(token)
                }
            },
            ExecutorConfig::Databricks(c) => match &mut c.auth {
                DatabricksAuth::Token { token } => anchor(token),
                DatabricksAuth::OAuthM2M { client_secret, .. } => anchor(client_secret),
            },
        }
    }

    /// Checks what can be checked without resolving secrets or touching the network.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ExecutorConfig::Manual { .. } => Ok(()),
            ExecutorConfig::Command { command, env } => match command.first() {
                Some(p) if !p.trim().is_empty() => {
                    env.iter().try_for_each(|e| crate::child_env::check_pattern(e))
                }
                _ => Err("executor `command` needs a non-empty `command = [\"program\", \"arg\", …]`".into()),
            },
            ExecutorConfig::Snowflake(c) => {
                if c.user.trim().is_empty() {
                    return Err("executor `snowflake` needs a `user`".into());
                }
                if let Some(url) = &c.url {
                    crate::http::check_base_url(url)?;
                }
                Ok(())
            }
            ExecutorConfig::Databricks(c) => {
                if let Some(url) = &c.url {
                    crate::http::check_base_url(url)?;
                }
                if let DatabricksAuth::OAuthM2M {
                    token_url: Some(u), ..
                } = &c.auth
                {
                    crate::http::check_base_url(u)?;
                }
                Ok(())
            }
        }
    }
}

/// Whether `[executor.<name>]` names something: a technology (`snowflake`: the default for its
/// connections) or a kind (`command`: for connections that ask for it).
pub fn is_executor_name(name: &str) -> bool {
    Technology::ALL.iter().any(|t| t.config_name() == name) || ExecutorKind::from_name(name).is_some()
}

/// `kind = "snowflake"`: the Snowflake SQL API v2 with the *admin's* credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnowflakeExecConfig {
    /// Base URL; default `https://<connection host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Account identifier for the key-pair JWT; default: the connection host's first label
    /// (before the first `-` for `.global` hosts), uppercased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The Snowflake user that runs the script.
    pub user: String,
    /// Role to run as (case-sensitive); default: the user's default role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Warehouse to run on (case-sensitive); multi-statement requests need one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    /// How to authenticate.
    pub auth: SnowflakeAuth,
    /// Limit for the whole script, in seconds (default 600).
    #[serde(default = "default_timeout", alias = "timeout_secs")]
    pub timeout_secs: u64,
}

/// Snowflake credentials (`auth = { type = "…", … }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SnowflakeAuth {
    /// Key-pair authentication: an unencrypted PKCS#8 (or PKCS#1) RSA private key in PEM.
    #[serde(rename = "keyPair")]
    KeyPair {
        /// The private key PEM.
        #[serde(rename = "privateKey")]
        private_key: SecretRef,
    },
    /// A Snowflake OAuth access token.
    #[serde(rename = "oauth")]
    OAuth {
        /// The access token.
        token: SecretRef,
    },
    /// A programmatic access token (the user must be subject to a network policy).
    #[serde(rename = "programmaticAccessToken")]
    ProgrammaticAccessToken {
        /// The token.
        token: SecretRef,
    },
}

/// `kind = "databricks"`: the Databricks SQL Statement Execution API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabricksExecConfig {
    /// Base URL; default `https://<workspaceUrl>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// SQL warehouse ID; default: the last segment of the connection's `httpPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<String>,
    /// How to authenticate.
    pub auth: DatabricksAuth,
    /// Limit for each statement, in seconds (default 600).
    #[serde(default = "default_timeout", alias = "timeout_secs")]
    pub timeout_secs: u64,
}

/// Databricks credentials (`auth = { type = "…", … }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum DatabricksAuth {
    /// A personal access token.
    #[serde(rename = "token")]
    Token {
        /// The token.
        token: SecretRef,
    },
    /// OAuth machine-to-machine: a service principal's client credentials.
    #[serde(rename = "oAuthM2M")]
    OAuthM2M {
        /// The service principal's application (client) ID.
        #[serde(rename = "clientId")]
        client_id: String,
        /// The OAuth secret.
        #[serde(rename = "clientSecret")]
        client_secret: SecretRef,
        /// Token endpoint; default `<url>/oidc/v1/token`.
        #[serde(rename = "tokenUrl", default, skip_serializing_if = "Option::is_none")]
        token_url: Option<String>,
    },
}

/// The Snowflake account identifier for JWTs, from a host such as
/// `xy12345.us-east-1.snowflakecomputing.com` (→ `XY12345`) or
/// `myorg-acct.global.snowflakecomputing.com` (→ `MYORG`).
pub fn account_from_host(host: &str) -> String {
    let host = crate::http::bare_host(host);
    let first = host.split('.').next().unwrap_or(host);
    let is_global = host
        .split('.')
        .nth(1)
        .is_some_and(|l| l.eq_ignore_ascii_case("global"));
    let account = if is_global {
        first.split('-').next().unwrap_or(first)
    } else {
        first
    };
    account.to_uppercase()
}

/// The warehouse ID in an `httpPath` such as `/sql/1.0/warehouses/abc123`.
pub fn warehouse_id_from_http_path(http_path: &str) -> Option<String> {
    http_path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        executor: std::collections::BTreeMap<String, ExecutorConfig>,
    }

    fn parse(toml_text: &str) -> Result<File, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn design_example_parses() {
        let f = parse(
            r#"
[executor.snowflake]
kind = "snowflake"
url = "https://acme-prod.snowflakecomputing.com"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = { type = "keyPair", privateKey = { file = "/run/secrets/sf-admin.p8" } }

[executor.databricks]
kind = "command"
command = ["databricks-sql-runner", "--stdin"]
"#,
        )
        .expect("parses");
        let ExecutorConfig::Snowflake(sf) = &f.executor["snowflake"] else {
            panic!("snowflake")
        };
        assert_eq!(sf.user, "PLATFORM_ADMIN");
        assert_eq!(sf.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(
            sf.auth,
            SnowflakeAuth::KeyPair {
                private_key: SecretRef::File("/run/secrets/sf-admin.p8".into())
            }
        );
        assert_eq!(
            f.executor["databricks"],
            ExecutorConfig::Command {
                command: vec!["databricks-sql-runner".into(), "--stdin".into()],
                env: vec![],
            }
        );
        assert!(f.executor.values().all(|e| e.validate().is_ok()));
    }

    #[test]
    fn all_auth_variants_parse() {
        let f = parse(
            r#"
[executor.a]
kind = "snowflake"
user = "U"
timeout_secs = 30
auth = { type = "oauth", token = { env = "SF_TOKEN" } }
[executor.b]
kind = "snowflake"
user = "U"
timeoutSecs = 31
auth = { type = "programmaticAccessToken", token = { env = "SF_PAT" } }
[executor.c]
kind = "databricks"
warehouseId = "abc"
auth = { type = "token", token = { file = "pat.txt" } }
[executor.d]
kind = "databricks"
auth = { type = "oAuthM2M", clientId = "cid", clientSecret = { env = "S" }, tokenUrl = "https://x/oidc/v1/token" }
[executor.e]
kind = "manual"
dir = "/tmp/scripts"
[executor.f]
kind = "manual"
"#,
        )
        .expect("parses");
        let ExecutorConfig::Snowflake(a) = &f.executor["a"] else {
            panic!()
        };
        assert_eq!(a.timeout_secs, 30);
        let ExecutorConfig::Snowflake(b) = &f.executor["b"] else {
            panic!()
        };
        assert_eq!(b.timeout_secs, 31);
        assert!(matches!(b.auth, SnowflakeAuth::ProgrammaticAccessToken { .. }));
        let ExecutorConfig::Databricks(c) = &f.executor["c"] else {
            panic!()
        };
        assert_eq!(c.warehouse_id.as_deref(), Some("abc"));
        let ExecutorConfig::Databricks(d) = &f.executor["d"] else {
            panic!()
        };
        assert!(
            matches!(&d.auth, DatabricksAuth::OAuthM2M { client_id, token_url: Some(_), .. } if client_id == "cid")
        );
        assert_eq!(
            f.executor["e"],
            ExecutorConfig::Manual {
                dir: Some("/tmp/scripts".into())
            }
        );
        assert_eq!(f.executor["f"], ExecutorConfig::default());
    }

    #[test]
    fn unknown_fields_and_kinds_are_rejected() {
        let bad = [
            "[executor.x]\nkind = \"manual\"\nfolder = \"x\"",
            "[executor.x]\nkind = \"snowflake\"\nuser = \"U\"\npassword = \"p\"\nauth = { type = \"oauth\", token = { env = \"T\" } }",
            "[executor.x]\nkind = \"snowflake\"\nuser = \"U\"\nauth = { type = \"password\", token = { env = \"T\" } }",
            "[executor.x]\nkind = \"databricks\"\nauth = { type = \"token\", token = \"inline-secret\" }",
            "[executor.x]\nkind = \"shell\"",
        ];
        for b in bad {
            let err = parse(b).expect_err(b);
            assert!(
                !err.contains("inline-secret") || b.contains("inline-secret"),
                "{err}"
            );
        }
    }

    #[test]
    fn validation() {
        assert!(
            ExecutorConfig::Command {
                command: vec![],
                env: vec![]
            }
            .validate()
            .is_err()
        );
        let with_env = |e: &str| ExecutorConfig::Command {
            command: vec!["snowsql".into()],
            env: vec![e.into()],
        };
        assert!(with_env("SNOWSQL_*").validate().is_ok());
        assert!(with_env("NOT A NAME").validate().is_err());
        let sf = |url: &str| {
            ExecutorConfig::Snowflake(SnowflakeExecConfig {
                url: Some(url.into()),
                account: None,
                user: "U".into(),
                role: None,
                warehouse: None,
                auth: SnowflakeAuth::OAuth {
                    token: SecretRef::Env("T".into()),
                },
                timeout_secs: 1,
            })
        };
        assert!(sf("http://example.com").validate().is_err());
        assert!(sf("http://127.0.0.1:8080").validate().is_ok());
        assert!(sf("https://a.snowflakecomputing.com").validate().is_ok());
    }

    #[test]
    fn executor_names_and_anchoring() {
        for name in ["snowflake", "databricks", "command", "manual"] {
            assert!(is_executor_name(name), "{name}");
        }
        assert!(!is_executor_name("shell") && !is_executor_name("Snowflake"));
        let base = Path::new("/etc/connctl");
        let mut manual = ExecutorConfig::Manual {
            dir: Some("scripts".into()),
        };
        manual.anchor(base);
        assert_eq!(
            manual,
            ExecutorConfig::Manual {
                dir: Some("/etc/connctl/scripts".into())
            }
        );
        let mut databricks = ExecutorConfig::Databricks(DatabricksExecConfig {
            url: None,
            warehouse_id: None,
            auth: DatabricksAuth::Token {
                token: SecretRef::File("pat.txt".into()),
            },
            timeout_secs: 1,
        });
        databricks.anchor(base);
        let ExecutorConfig::Databricks(c) = &databricks else {
            panic!("databricks")
        };
        assert_eq!(
            c.auth,
            DatabricksAuth::Token {
                token: SecretRef::File("/etc/connctl/pat.txt".into())
            }
        );
    }

    #[test]
    fn accounts_from_hosts() {
        assert_eq!(account_from_host("acme-prod.snowflakecomputing.com"), "ACME-PROD");
        assert_eq!(
            account_from_host("xy12345.us-east-1.snowflakecomputing.com"),
            "XY12345"
        );
        assert_eq!(
            account_from_host("myorg-acct.global.snowflakecomputing.com"),
            "MYORG"
        );
        assert_eq!(
            account_from_host("https://org.us-east-1.snowflakecomputing.com:443/"),
            "ORG"
        );
    }

    #[test]
    fn warehouse_ids() {
        assert_eq!(
            warehouse_id_from_http_path("/sql/1.0/warehouses/abc123").as_deref(),
            Some("abc123")
        );
        assert_eq!(
            warehouse_id_from_http_path("/sql/1.0/warehouses/abc123/").as_deref(),
            Some("abc123")
        );
        assert_eq!(warehouse_id_from_http_path(""), None);
    }
}
