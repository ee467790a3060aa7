//! The bridge from the engine's [`ScriptRunner`] to connctl-exec's executors: picks the
//! executor for a connection (its own `executor:` kind, else `[executor.<technology>]` in
//! connctl.toml, else manual) and describes where the connection lives. A `command` run is
//! abandoned when a stop is requested: its process group is killed with it (connctl-exec), so
//! no setup script keeps running after connctl has gone.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use connctl_engine::apply::{Purpose, RunError, RunOutcome, ScriptRunner, Stop};
use connctl_exec::{Executor, ExecutorConfig, ScriptRun, Target};
use connctl_spec::{Connection, ExecutorKind};

pub struct Runner {
    /// Configured executors by technology (`snowflake`, `databricks`).
    configured: BTreeMap<String, Executor>,
    manual: Executor,
    stop: Stop,
}

impl Runner {
    pub fn new(configs: &BTreeMap<String, ExecutorConfig>, scripts_dir: PathBuf, stop: Stop) -> Runner {
        let http = connctl_exec::http_client();
        let configured = configs
            .iter()
            .map(|(tech, c)| {
                (
                    tech.clone(),
                    Executor::new(c.clone(), http.clone(), scripts_dir.clone()),
                )
            })
            .collect();
        Runner {
            configured,
            manual: Executor::new(ExecutorConfig::Manual { dir: None }, http, scripts_dir),
            stop,
        }
    }

    pub(crate) fn executor_for(&self, conn: &Connection) -> Result<&Executor, String> {
        let tech = conn.technology().config_name();
        let configured = self.configured.get(tech);
        match conn.executor {
            Some(ExecutorKind::Manual) => Ok(&self.manual),
            Some(wanted) => {
                // The technology's executor if it is of that kind, else one named after the kind
                // (`[executor.command]`).
                match configured
                    .filter(|e| e.config().kind() == wanted)
                    .or_else(|| self.configured.get(wanted.as_str()))
                {
                    Some(e) if e.config().kind() == wanted => Ok(e),
                    _ => Err(format!(
                        "connection `{}` asks for executor `{wanted}`, but connctl.toml has neither [executor.{tech}] nor [executor.{wanted}] with kind = \"{wanted}\"",
                        conn.key
                    )),
                }
            }
            None => Ok(configured.unwrap_or(&self.manual)),
        }
    }
}

impl ScriptRunner for Runner {
    fn run<'a>(
        &'a self,
        conn: &'a Connection,
        purpose: Purpose,
        sql: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome, RunError>> + Send + 'a>> {
        Box::pin(async move {
            let executor = self.executor_for(conn).map_err(RunError::NoExecutor)?;
            let run = ScriptRun {
                connection_key: &conn.key,
                purpose,
                sql,
                target: Target::of(&conn.platform),
            };
            let executed = executor.execute(&run);
            let result = if matches!(executor.config(), ExecutorConfig::Command { .. }) {
                tokio::select! {
                    result = executed => result,
                    () = self.stop.requested() => {
                        return Err(RunError::Stopped);
                    }
                }
            } else {
                // API executors are requests in flight: they finish (or time out) on their own.
                executed.await
            };
            match result {
                Ok(connctl_exec::Outcome::Executed { .. }) => Ok(RunOutcome::Executed),
                Ok(connctl_exec::Outcome::AwaitingManual { path }) => Ok(RunOutcome::AwaitingManual { path }),
                // A failing command may echo its input, and the script holds the password.
                Err(e) => Err(RunError::Failed(
                    connctl_spec::redact(&e.to_string()).into_owned(),
                )),
            }
        })
    }
}
