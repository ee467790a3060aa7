//! The preflight probes: the engine's read-only [`ImmutaProbe`] over the Immuta client and its
//! [`WarehouseProbe`] over the configured executors (the manual and command executors hold no
//! credentials, so their checks are "not checked").

use connctl_engine::preflight::{
    BoxFuture, ExistingConnection, ImmutaProbe, ImmutaUser, IntegrationSummary, Principal, ProbeError, Rows,
    WarehouseProbe,
};
use connctl_exec::{ExecError, ExecutorConfig, Target};
use connctl_immuta::{ApiError, ImmutaClient};
use connctl_spec::{Connection, Technology};

use crate::runner::Runner;

pub struct Immuta<'a> {
    pub client: &'a ImmutaClient,
    /// This run already listed Immuta's connections (`POST /data/object/search`, while
    /// refreshing the plan): the connection API answered, and is not asked again.
    pub api_answered: bool,
}

fn api_error(e: ApiError) -> ProbeError {
    // An answer can echo a request; keep secrets out of the checklist.
    let text = connctl_spec::redact(&e.to_string()).into_owned();
    if e.is_unauthorized() {
        ProbeError::Unauthorized(text)
    } else if e.is_not_found() {
        ProbeError::NotFound(text)
    } else {
        ProbeError::Other(text)
    }
}

impl ImmutaProbe for Immuta<'_> {
    fn integrations(&self) -> BoxFuture<'_, Result<Vec<IntegrationSummary>, ProbeError>> {
        Box::pin(async move {
            let list = self.client.list_integrations().await.map_err(api_error)?;
            Ok(list
                .into_iter()
                .filter_map(|i| {
                    let text = |k: &str| i.config.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                    // Its documented `type`; without one, a Databricks integration still names
                    // its workspace `workspaceUrl`.
                    let named = i.kind.as_deref().map(|kind| {
                        Technology::ALL
                            .into_iter()
                            .find(|t| t.as_str().eq_ignore_ascii_case(kind))
                    });
                    let technology = match named {
                        Some(t) => t,
                        None if i.config.contains_key("workspaceUrl") => Some(Technology::Databricks),
                        None => None,
                    };
                    Some(IntegrationSummary {
                        id: i.id?,
                        technology,
                        other: matches!(named, Some(None)),
                        host: text("host"),
                    })
                })
                .collect())
        })
    }

    fn connection<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExistingConnection>, ProbeError>> {
        Box::pin(async move {
            let live = self.client.get_connection(key).await.map_err(api_error)?;
            Ok(live.map(|c| ExistingConnection {
                integration_id: c.native_integration_id,
            }))
        })
    }

    fn connection_api(&self) -> BoxFuture<'_, Result<(), ProbeError>> {
        Box::pin(async move {
            if self.api_answered {
                return Ok(());
            }
            self.client.connection_api().await.map_err(api_error)
        })
    }

    fn current_user(&self) -> BoxFuture<'_, Result<ImmutaUser, ProbeError>> {
        Box::pin(async move {
            let user = self.client.current_user().await.map_err(api_error)?;
            Ok(ImmutaUser {
                name: user.userid.clone(),
                permissions: user.all_permissions().cloned().collect(),
            })
        })
    }
}

pub struct Warehouse<'a>(pub &'a Runner);

fn exec_error(e: ExecError) -> ProbeError {
    let text = connctl_spec::redact(&e.to_string()).into_owned();
    match e {
        // The warehouse's own words: the generic advice about a partly applied script does not
        // fit a read-only check.
        ExecError::Statement { code, message, .. } => {
            ProbeError::Statement(connctl_spec::redact(&format!("{code}: {message}")).into_owned())
        }
        ExecError::Auth { .. } => ProbeError::Unauthorized(text),
        // The reference, never a value; the check says whose credential it is.
        ExecError::Credential { source, .. } => ProbeError::Secret(source.to_string()),
        ExecError::Api {
            status: Some(404), ..
        } => ProbeError::NotFound(text),
        _ => ProbeError::Other(text),
    }
}

impl WarehouseProbe for Warehouse<'_> {
    fn setup_role(&self, conn: &Connection) -> Option<String> {
        self.0
            .executor_for(conn)
            .ok()
            .and_then(|e| e.snowflake_role())
            .map(str::to_owned)
    }

    fn query<'a>(&'a self, conn: &'a Connection, sql: &'a str) -> BoxFuture<'a, Result<Rows, ProbeError>> {
        Box::pin(async move {
            let executor = self.0.executor_for(conn).map_err(ProbeError::Other)?;
            if !executor.can_query() {
                return Err(ProbeError::NoCredentials);
            }
            let result = executor
                .query(&Target::of(&conn.platform), sql)
                .await
                .map_err(exec_error)?;
            Ok(Rows {
                columns: result.columns,
                rows: result.rows,
            })
        })
    }

    fn databricks_principal<'a>(
        &'a self,
        conn: &'a Connection,
        db: &'a connctl_spec::Databricks,
    ) -> BoxFuture<'a, Result<Principal, ProbeError>> {
        Box::pin(async move {
            let executor = self.0.executor_for(conn).map_err(ProbeError::Other)?;
            if !matches!(executor.config(), ExecutorConfig::Databricks(_)) {
                return Err(ProbeError::NoCredentials);
            }
            let p = executor
                .databricks_principal(&db.workspace_url, &db.auth)
                .await
                .map_err(|e| match e {
                    // The connection's credential, not the executor's: Databricks' own words.
                    ExecError::Auth { status, message, .. } => {
                        ProbeError::Unauthorized(format!("HTTP {status}: {message}"))
                    }
                    other => exec_error(other),
                })?;
            Ok(Principal {
                name: p.name,
                kind: p.kind,
            })
        })
    }
}
