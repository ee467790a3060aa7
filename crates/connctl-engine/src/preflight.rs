//! Preflight: read-only checks that a connection can be registered, run before anything is
//! created. This module owns the list of checks, the statement each one runs, how an answer is
//! judged and the fix a failure names; the results are data ([`Report`]) for the CLI to render.
//!
//! Immuta is read through [`ImmutaProbe`] (GETs only) and the warehouse through
//! [`WarehouseProbe`] (read-only `SHOW`/`SELECT` statements with the executor's credentials), so
//! the engine knows no HTTP API and unit tests use a fake. A probe that cannot run a statement
//! (the manual executor has no credentials) makes its checks "not checked", with the statement
//! for a person to run by hand.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::OnceCell;

use connctl_spec::{Connection, Platform, Technology};
use serde::Serialize;

/// A boxed future, as the probe traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the requirements are documented (the registration guide, per technology).
const DOCS_SNOWFLAKE: &str = "docs/preflight.md#snowflake (registration guide: \"Snowflake permissions for the user registering the connection\")";
const DOCS_DATABRICKS: &str = "docs/preflight.md#databricks (registration guide: \"Databricks privileges for the user registering the connection\")";
const DOCS_AUDIT: &str = "docs/preflight.md#databricks (registration guide, step 2: \"Set up Unity Catalog system tables for native query audit\")";

/// The Immuta permissions the API key's user needs: `CREATE_DATA_SOURCE` (the registration
/// guide) and `APPLICATION_ADMIN` (the integrations API's script endpoints; current SaaS pages
/// also name it for `POST /data/connection`).
pub const IMMUTA_PERMISSIONS: [&str; 2] = ["CREATE_DATA_SOURCE", "APPLICATION_ADMIN"];

/// An account privilege the role running the Snowflake setup script must hold WITH GRANT OPTION.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnowflakePrivilege {
    CreateDatabase,
    CreateRole,
    CreateUser,
    ManageGrants,
    ApplyMaskingPolicy,
    ApplyRowAccessPolicy,
}

impl SnowflakePrivilege {
    pub const ALL: [SnowflakePrivilege; 6] = [
        SnowflakePrivilege::CreateDatabase,
        SnowflakePrivilege::CreateRole,
        SnowflakePrivilege::CreateUser,
        SnowflakePrivilege::ManageGrants,
        SnowflakePrivilege::ApplyMaskingPolicy,
        SnowflakePrivilege::ApplyRowAccessPolicy,
    ];

    /// The privilege as `SHOW GRANTS` names it.
    pub fn as_sql(self) -> &'static str {
        match self {
            SnowflakePrivilege::CreateDatabase => "CREATE DATABASE",
            SnowflakePrivilege::CreateRole => "CREATE ROLE",
            SnowflakePrivilege::CreateUser => "CREATE USER",
            SnowflakePrivilege::ManageGrants => "MANAGE GRANTS",
            SnowflakePrivilege::ApplyMaskingPolicy => "APPLY MASKING POLICY",
            SnowflakePrivilege::ApplyRowAccessPolicy => "APPLY ROW ACCESS POLICY",
        }
    }
}

/// Which check a result is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "check", content = "privilege", rename_all = "kebab-case")]
pub enum CheckId {
    /// The Immuta URL answers and the API key is accepted.
    ImmutaReachable,
    /// The connection API (`/data/connection`) is available on the tenant.
    ConnectionApi,
    /// The API key's user holds the Immuta permissions registration needs.
    ImmutaPermission,
    /// The key is not reserved and not taken by a connection connctl does not manage.
    ConnectionKeyFree,
    /// No integration already exists on the Snowflake host (Immuta answers 409).
    NoExistingIntegration,
    /// The setup role holds this account privilege WITH GRANT OPTION (directly or inherited).
    SnowflakePrivilege(SnowflakePrivilege),
    /// The warehouse named in the YAML exists.
    SnowflakeWarehouse,
    /// The Immuta database named in the YAML does not exist yet.
    SnowflakeDatabaseFree,
    /// A Unity Catalog metastore is attached to the workspace.
    DatabricksMetastore,
    /// The runner may CREATE CATALOG on the metastore.
    DatabricksCreateCatalog,
    /// The catalog named in the YAML does not exist yet.
    DatabricksCatalogFree,
    /// The SQL warehouse of `httpPath` exists and runs statements.
    DatabricksWarehouse,
    /// The connection's token (or OAuth client) authenticates, as a service principal.
    DatabricksServicePrincipal,
    /// With audit enabled, `system.access` audit and lineage tables are readable.
    DatabricksSystemAccess,
}

impl CheckId {
    /// A one-line title for the checklist.
    pub fn title(self) -> String {
        match self {
            CheckId::ImmutaReachable => "Immuta answers and accepts the API key".into(),
            CheckId::ConnectionApi => "the connection API is available".into(),
            CheckId::ImmutaPermission => {
                format!("the API key's user holds {}", IMMUTA_PERMISSIONS.join(" and "))
            }
            CheckId::ConnectionKeyFree => "the connection key is free".into(),
            CheckId::NoExistingIntegration => "no integration exists on the host".into(),
            CheckId::SnowflakePrivilege(p) => {
                format!("role holds {} ON ACCOUNT WITH GRANT OPTION", p.as_sql())
            }
            CheckId::SnowflakeWarehouse => "the warehouse exists".into(),
            CheckId::SnowflakeDatabaseFree => "the Immuta database does not exist yet".into(),
            CheckId::DatabricksMetastore => "a Unity Catalog metastore is attached".into(),
            CheckId::DatabricksCreateCatalog => "the runner holds CREATE CATALOG on the metastore".into(),
            CheckId::DatabricksCatalogFree => "the catalog does not exist yet".into(),
            CheckId::DatabricksWarehouse => "the SQL warehouse exists and runs statements".into(),
            CheckId::DatabricksServicePrincipal => {
                "the connection's credentials authenticate a service principal".into()
            }
            CheckId::DatabricksSystemAccess => "system.access audit and lineage tables are readable".into(),
        }
    }
}

/// How to fix a failed check: the statement to run (if one does it) and where it is documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    pub docs: &'static str,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail {
        why: String,
        fix: Fix,
    },
    /// The check could not run; `statement` is what a person can run to check by hand.
    NotChecked {
        why: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        statement: Option<String>,
    },
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    #[serde(flatten)]
    pub id: CheckId,
    pub title: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The checks of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionReport {
    pub key: String,
    pub technology: Technology,
    pub checks: Vec<Check>,
}

/// The checks of every selected connection, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub connections: Vec<ConnectionReport>,
}

impl Report {
    /// Whether any check failed (a "not checked" is not a failure).
    pub fn failed(&self) -> bool {
        self.connections
            .iter()
            .flat_map(|c| &c.checks)
            .any(|c| matches!(c.verdict, Verdict::Fail { .. }))
    }

    /// The keys of the connections with a failed check.
    pub fn failed_keys(&self) -> Vec<&str> {
        self.connections
            .iter()
            .filter(|c| c.checks.iter().any(|c| matches!(c.verdict, Verdict::Fail { .. })))
            .map(|c| c.key.as_str())
            .collect()
    }
}

/// What the checks know about a connection besides its YAML.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub conn: &'a Connection,
    /// The state records it (so an Immuta connection with its key is ours).
    pub managed: bool,
    /// The integration the state records for it (excluded from the existing-integration check).
    pub integration_id: Option<&'a str>,
}

/// Runs every check for each subject, up to `parallelism` connections at a time. Reads that do
/// not depend on the connection are made once per run and shared: Immuta's integrations, and a
/// Databricks workspace's metastore, metastore grants and system tables (see [`Shared`]). The report is in key order whatever order checks finish in.
pub async fn run(
    immuta: &dyn ImmutaProbe,
    warehouse: &dyn WarehouseProbe,
    subjects: &[Subject<'_>],
    parallelism: usize,
) -> Report {
    let tenant = Tenant::read(immuta).await;
    let shared = Shared::default();
    let mut connections: Vec<ConnectionReport> = futures_util::stream::iter(subjects)
        .map(|s| {
            let (tenant, shared) = (&tenant, &shared);
            async move {
                let mut checks = immuta_checks(immuta, tenant, s).await;
                checks.extend(warehouse_checks(warehouse, shared, s.conn, s.managed).await);
                ConnectionReport {
                    key: s.conn.key.clone(),
                    technology: s.conn.technology(),
                    checks,
                }
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    connections.sort_by(|a, b| a.key.cmp(&b.key));
    Report { connections }
}

/// The Immuta reads that do not depend on the connection, made once per run.
struct Tenant {
    integrations: Result<Vec<IntegrationSummary>, ProbeError>,
    connection_api: Result<(), ProbeError>,
    user: Result<ImmutaUser, ProbeError>,
}

impl Tenant {
    async fn read(immuta: &dyn ImmutaProbe) -> Tenant {
        let integrations = immuta.integrations().await;
        if let Err(e) = &integrations {
            // Immuta did not answer or refused the key: the other reads would say the same.
            let e = e.clone();
            return Tenant {
                integrations,
                connection_api: Err(e.clone()),
                user: Err(e),
            };
        }
        Tenant {
            integrations,
            connection_api: immuta.connection_api().await,
            user: immuta.current_user().await,
        }
    }
}

/// One workspace-level statement's answer, computed once per run.
type AnswerCell = Arc<OnceCell<Result<Rows, ProbeError>>>;

/// Per-run reads shared between connections checked concurrently.
#[derive(Default)]
struct Shared {
    /// Keyed by (workspace, `httpPath`, statement): several Databricks connections (one per
    /// catalog) share a workspace, its metastore and its system tables. (Snowflake allows one
    /// connection per account, so its statements have nothing to share.)
    answers: Mutex<HashMap<(String, String, String), AnswerCell>>,
}

impl Shared {
    /// Runs a statement that does not depend on the catalog once per workspace and warehouse.
    async fn workspace_query(
        &self,
        wh: &dyn WarehouseProbe,
        conn: &Connection,
        db: &connctl_spec::Databricks,
        sql: &str,
    ) -> Result<Rows, ProbeError> {
        let cell = {
            // A poisoned lock only means another check panicked; the map is still whole.
            let mut map = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            map.entry((bare(&db.workspace_url), db.http_path.clone(), sql.to_owned()))
                .or_default()
                .clone()
        };
        cell.get_or_init(|| wh.query(conn, sql)).await.clone()
    }
}

fn check(id: CheckId, verdict: Verdict) -> Check {
    Check {
        id,
        title: id.title(),
        verdict,
    }
}

fn fail(why: impl Into<String>, statement: Option<String>, docs: &'static str) -> Verdict {
    Verdict::Fail {
        why: why.into(),
        fix: Fix { statement, docs },
    }
}

fn not_checked(why: impl Into<String>) -> Verdict {
    Verdict::NotChecked {
        why: why.into(),
        statement: None,
    }
}

/// A host compared without scheme, port, trailing dot or case.
fn bare(host: &str) -> String {
    let h = host.trim();
    let h = h.split_once("://").map_or(h, |(_, rest)| rest);
    let h = h.split(['/', ':']).next().unwrap_or(h);
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// A SQL identifier quoted for Snowflake/Databricks `LIKE` patterns: `'` doubled.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A Snowflake identifier in double quotes (case-sensitive, as the YAML spells it).
fn sf_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A Databricks identifier in backticks.
fn db_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// The statements each warehouse check runs (also the ones to run by hand); see docs/preflight.md.
pub mod statements {
    use super::*;

    pub const SNOWFLAKE_CURRENT_ROLE: &str = "SELECT CURRENT_ROLE()";
    pub fn snowflake_grants(role: &str) -> String {
        format!("SHOW GRANTS TO ROLE {}", sf_ident(role))
    }
    pub fn snowflake_warehouse(warehouse: &str) -> String {
        format!("SHOW WAREHOUSES LIKE {}", literal(warehouse))
    }
    pub fn snowflake_database(database: &str) -> String {
        format!("SHOW DATABASES LIKE {}", literal(database))
    }
    pub const DATABRICKS_METASTORE: &str = "SELECT CURRENT_METASTORE()";
    pub const DATABRICKS_METASTORE_GRANTS: &str = "SHOW GRANTS ON METASTORE";
    pub const DATABRICKS_CURRENT_USER: &str = "SELECT current_user()";
    pub fn databricks_group_member(group: &str) -> String {
        format!("SELECT is_account_group_member({}) AS member", literal(group))
    }
    /// SCIM `Me` by hand, with the connection's token (not a statement: a request).
    pub fn databricks_scim_me(workspace_url: &str) -> String {
        let host = bare(workspace_url);
        format!("curl -H \"Authorization: Bearer $TOKEN\" https://{host}/api/2.0/preview/scim/v2/Me")
    }
    pub fn databricks_catalog(catalog: &str) -> String {
        format!("SHOW CATALOGS LIKE {}", literal(catalog))
    }
    pub const DATABRICKS_SYSTEM_TABLES: [&str; 3] = [
        "SELECT 1 FROM system.access.audit LIMIT 0",
        "SELECT 1 FROM system.access.table_lineage LIMIT 0",
        "SELECT 1 FROM system.access.column_lineage LIMIT 0",
    ];
}

/// The verdict for a probe error; `statement` is offered for checking by hand.
fn unanswered(e: ProbeError, statement: String) -> Verdict {
    match e {
        ProbeError::NoCredentials => Verdict::NotChecked {
            why: "not checked: no credentials (the manual executor runs nothing); run this by hand".into(),
            statement: Some(statement),
        },
        other => Verdict::NotChecked {
            why: other.to_string(),
            statement: Some(statement),
        },
    }
}

async fn warehouse_checks(
    wh: &dyn WarehouseProbe,
    shared: &Shared,
    conn: &Connection,
    managed: bool,
) -> Vec<Check> {
    let mut checks = match &conn.platform {
        Platform::Snowflake(sf) => snowflake_checks(wh, conn, sf).await,
        Platform::Databricks(db) => databricks_checks(wh, shared, conn, db).await,
    };
    // A registered connection's database or catalog is its own: existing is expected.
    if managed {
        for c in &mut checks {
            if matches!(
                c.id,
                CheckId::SnowflakeDatabaseFree | CheckId::DatabricksCatalogFree
            ) && matches!(c.verdict, Verdict::Fail { .. })
            {
                c.verdict = not_checked("the connection is registered already; the name is its own");
            }
        }
    }
    checks
}

/// The role that runs the setup script: the executor's `role`, else the user's current role. (The
/// YAML's `role` is the Immuta system role the script creates.)
async fn setup_role(wh: &dyn WarehouseProbe, conn: &Connection) -> Result<String, ProbeError> {
    if let Some(role) = wh.setup_role(conn) {
        return Ok(role);
    }
    let rows = wh.query(conn, statements::SNOWFLAKE_CURRENT_ROLE).await?;
    rows.rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            ProbeError::Other("the session has no current role; set `role` in [executor.snowflake]".into())
        })
}

mod databricks;
mod immuta;
mod probe;
mod snowflake;
use databricks::databricks_checks;
use immuta::immuta_checks;
pub use probe::*;
use snowflake::snowflake_checks;

#[cfg(test)]
mod tests;
