//! Executors for warehouse setup scripts.
//!
//! `connctl apply` gets a setup script from Immuta and has it executed in the warehouse before it
//! registers the connection. This crate does the executing, and knows nothing of Immuta: it takes
//! a script, a [`Target`] (where the connection lives) and an [`ExecutorConfig`] (how to run it)
//! and either runs the script or saves it for a person to run:
//!
//! - [`ExecutorConfig::Manual`]: the script is saved with mode 0600 and the run waits for a
//!   person ([`Outcome::AwaitingManual`]);
//! - [`ExecutorConfig::Command`]: the script is piped to a command, whose exit status decides;
//! - [`ExecutorConfig::Snowflake`]: the Snowflake SQL API v2 runs the whole script as one
//!   multi-statement request, polled to its end;
//! - [`ExecutorConfig::Databricks`]: the script is split into statements ([`split`]) and each is
//!   run through the Statement Execution API, stopping at the first failure.
//!
//! Credentials are [`connctl_spec::SecretRef`]s resolved only when a script runs; they never
//! appear in logs or errors, and neither does the text of a statement ([`ExecError`]).

mod child_env;
mod command;
pub mod config;
mod databricks;
mod error;
mod http;
mod manual;
mod query;
mod snowflake;
pub mod split;
#[cfg(test)]
mod testing;

use std::path::PathBuf;
use std::time::Duration;

use connctl_spec::{ExecutorKind, Platform, Technology};

pub use config::{
    DatabricksAuth, DatabricksExecConfig, ExecutorConfig, SnowflakeAuth, SnowflakeExecConfig,
    is_executor_name,
};
pub use databricks::{DatabricksPrincipal, PrincipalKind};
pub use error::ExecError;
pub use http::{Timing, http_client};
pub use query::QueryResult;

/// Where the connection whose script runs lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Snowflake account, by host (`acme-prod.snowflakecomputing.com`).
    Snowflake {
        /// The connection's host.
        host: String,
    },
    /// A Databricks workspace.
    Databricks {
        /// The workspace host (`dbc-1234.cloud.databricks.com`).
        workspace_url: String,
        /// The SQL warehouse's HTTP path (`/sql/1.0/warehouses/abc123`).
        http_path: String,
    },
}

impl Target {
    /// Where a connection lives, from its validated spec.
    pub fn of(platform: &Platform) -> Target {
        match platform {
            Platform::Snowflake(sf) => Target::Snowflake {
                host: sf.host.clone(),
            },
            Platform::Databricks(db) => Target::Databricks {
                workspace_url: db.workspace_url.clone(),
                http_path: db.http_path.clone(),
            },
        }
    }

    fn technology(&self) -> Technology {
        match self {
            Target::Snowflake { .. } => Technology::Snowflake,
            Target::Databricks { .. } => Technology::Databricks,
        }
    }

    fn dialect(&self) -> split::SqlDialect {
        match self {
            Target::Snowflake { .. } => split::SqlDialect::Snowflake,
            Target::Databricks { .. } => split::SqlDialect::Databricks,
        }
    }
}

pub use connctl_spec::Purpose;

/// One script to execute.
#[derive(Debug, Clone)]
pub struct ScriptRun<'a> {
    /// The connection's key; names the saved script and is passed to commands.
    pub connection_key: &'a str,
    /// What the script is for.
    pub purpose: Purpose,
    /// The script (several `;`-separated statements).
    pub sql: &'a str,
    /// Where the connection lives.
    pub target: Target,
}

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The script ran to its end.
    Executed {
        /// The number of statements it held (as split locally, or as the server reported).
        statements: usize,
    },
    /// The script was saved for a person to run.
    AwaitingManual {
        /// The saved script (mode 0600).
        path: PathBuf,
    },
}

/// The default limit for a configured command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs scripts with one [`ExecutorConfig`]. Cheap to share: `execute` takes `&self`, and a
/// Databricks OAuth token is cached across runs until shortly before it expires.
#[derive(Debug)]
pub struct Executor {
    config: ExecutorConfig,
    http: reqwest::Client,
    scripts_dir: PathBuf,
    timing: Timing,
    command_timeout: Duration,
    databricks_token: databricks::TokenCache,
}

impl Executor {
    /// An executor for `config`; `scripts_dir` is where the manual executor saves scripts unless
    /// the config names its own `dir`. `http` should come from [`http_client`], which follows no
    /// redirect; with a client that does, a redirected request still fails, but only after its
    /// body went to the redirect's target.
    pub fn new(config: ExecutorConfig, http: reqwest::Client, scripts_dir: PathBuf) -> Executor {
        Executor {
            config,
            http,
            scripts_dir,
            timing: Timing::default(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            databricks_token: databricks::TokenCache::default(),
        }
    }

    /// Replaces the HTTP timings (request timeout, retries, polling).
    pub fn with_timing(mut self, timing: Timing) -> Executor {
        self.timing = timing;
        self
    }

    /// The configuration this executor runs with.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Executes (or, for the manual executor, saves) one script.
    pub async fn execute(&self, run: &ScriptRun<'_>) -> Result<Outcome, ExecError> {
        self.config.validate().map_err(ExecError::config)?;
        tracing::debug!(
            executor = self.config.kind().as_str(),
            connection = run.connection_key,
            purpose = run.purpose.as_str(),
            "executing setup script"
        );
        match &self.config {
            ExecutorConfig::Manual { dir } => {
                let dir = dir.as_deref().unwrap_or(&self.scripts_dir);
                manual::save(dir, run).map(|path| Outcome::AwaitingManual { path })
            }
            ExecutorConfig::Command { command, env } => {
                command::run(command, env, run, self.command_timeout).await?;
                let statements =
                    split::split_statements(run.sql, run.target.dialect()).map_or(0, |s| s.len());
                Ok(Outcome::Executed { statements })
            }
            ExecutorConfig::Snowflake(cfg) => {
                // An API executor runs scripts of its own technology only.
                let Target::Snowflake { host } = &run.target else {
                    return Err(wrong_target(self.config.kind(), &run.target));
                };
                snowflake::execute(&self.http, &self.timing, cfg, host, run.sql).await
            }
            ExecutorConfig::Databricks(cfg) => {
                let Target::Databricks {
                    workspace_url,
                    http_path,
                } = &run.target
                else {
                    return Err(wrong_target(self.config.kind(), &run.target));
                };
                let ctx = databricks::Context {
                    http: &self.http,
                    timing: &self.timing,
                    cfg,
                    cache: &self.databricks_token,
                };
                ctx.execute(workspace_url, http_path, run.sql).await
            }
        }
    }
}

fn wrong_target(kind: ExecutorKind, target: &Target) -> ExecError {
    ExecError::config(format!(
        "the `{kind}` executor cannot run a script for a {} connection; set the executor for {} in \
         connctl.toml",
        target.technology(),
        target.technology().config_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Send + Sync>() {}

    /// The CLI runs connections in parallel tasks: the executor is shared and its future is `Send`.
    #[test]
    fn executor_is_shareable_and_its_future_is_send() {
        assert_sync::<Executor>();
        let ex = Executor::new(ExecutorConfig::default(), reqwest::Client::new(), "/tmp".into());
        let run = ScriptRun {
            connection_key: "k",
            purpose: Purpose::Create,
            sql: "SELECT 1",
            target: Target::Snowflake {
                host: "a.snowflakecomputing.com".into(),
            },
        };
        let fut = ex.execute(&run);
        assert_send(&fut);
    }

    #[tokio::test]
    async fn wrong_target_is_a_config_error() {
        let cfg = ExecutorConfig::Databricks(DatabricksExecConfig {
            url: None,
            warehouse_id: None,
            auth: DatabricksAuth::Token {
                token: connctl_spec::SecretRef::Env("UNUSED".into()),
            },
            timeout_secs: 1,
        });
        let ex = Executor::new(cfg, reqwest::Client::new(), "/tmp".into());
        let run = ScriptRun {
            connection_key: "k",
            purpose: Purpose::Create,
            sql: "SELECT 1",
            target: Target::Snowflake {
                host: "a.snowflakecomputing.com".into(),
            },
        };
        let err = ex.execute(&run).await.expect_err("wrong target");
        assert!(err.to_string().contains("Snowflake connection"), "{err}");
    }
}
