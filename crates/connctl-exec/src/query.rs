//! Read-only queries with an executor's credentials, for preflight checks: one statement, its
//! result set returned as text cells. Only the Snowflake and Databricks executors can query; the
//! manual and command executors hold no credentials ([`Executor::can_query`]).

use crate::{DatabricksPrincipal, ExecError, Executor, ExecutorConfig, Target};

/// A result set: column names and rows of nullable text cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl QueryResult {
    /// Reads `rowType`/`manifest.schema.columns` names and `data`/`data_array` rows.
    pub(crate) fn from_parts(
        columns: Option<&serde_json::Value>,
        data: Option<&serde_json::Value>,
    ) -> QueryResult {
        let columns = columns
            .and_then(serde_json::Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        c.get("name")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = data
            .and_then(serde_json::Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        r.as_array()
                            .map(|cells| {
                                cells
                                    .iter()
                                    .map(|c| match c {
                                        serde_json::Value::Null => None,
                                        serde_json::Value::String(s) => Some(s.clone()),
                                        other => Some(other.to_string()),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        QueryResult { columns, rows }
    }
}

impl Executor {
    /// Whether this executor holds warehouse credentials and can run [`Executor::query`].
    pub fn can_query(&self) -> bool {
        matches!(
            self.config,
            ExecutorConfig::Snowflake(_) | ExecutorConfig::Databricks(_)
        )
    }

    /// The role the Snowflake executor runs as, when its settings name one.
    pub fn snowflake_role(&self) -> Option<&str> {
        match &self.config {
            ExecutorConfig::Snowflake(c) => c.role.as_deref(),
            _ => None,
        }
    }

    /// Runs one read-only statement and returns its result set.
    pub async fn query(&self, target: &Target, sql: &str) -> Result<QueryResult, ExecError> {
        self.config.validate().map_err(ExecError::config)?;
        match (&self.config, target) {
            (ExecutorConfig::Snowflake(cfg), Target::Snowflake { host }) => {
                crate::snowflake::query::query(&self.http, &self.timing, cfg, host, sql).await
            }
            (
                ExecutorConfig::Databricks(cfg),
                Target::Databricks {
                    workspace_url,
                    http_path,
                },
            ) => {
                let ctx = crate::databricks::Context {
                    http: &self.http,
                    timing: &self.timing,
                    cfg,
                    cache: &self.databricks_token,
                };
                ctx.query(workspace_url, http_path, sql).await
            }
            (ExecutorConfig::Snowflake(_) | ExecutorConfig::Databricks(_), other) => {
                Err(crate::wrong_target(self.config.kind(), other))
            }
            _ => Err(ExecError::config(format!(
                "the `{}` executor holds no warehouse credentials and cannot query",
                self.config.kind()
            ))),
        }
    }

    /// Who the connection's own Databricks credential (`auth` in the YAML, not the executor's)
    /// is, by SCIM `Me` on the workspace this executor reaches. Only the Databricks executor
    /// knows where that is (its `url`); any other is [`ExecError::Config`].
    pub async fn databricks_principal(
        &self,
        workspace_url: &str,
        auth: &connctl_spec::DatabricksAuth,
    ) -> Result<DatabricksPrincipal, ExecError> {
        let ExecutorConfig::Databricks(cfg) = &self.config else {
            return Err(ExecError::config(format!(
                "the `{}` executor does not call Databricks",
                self.config.kind()
            )));
        };
        let ctx = crate::databricks::Context {
            http: &self.http,
            timing: &self.timing,
            cfg,
            cache: &self.databricks_token,
        };
        ctx.principal(workspace_url, auth).await
    }
}
