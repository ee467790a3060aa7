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
    /// With audit enabled, `system.access` audit and lineage tables are readable.
    DatabricksSystemAccess,
}

impl CheckId {
    /// A one-line title for the checklist.
    pub fn title(self) -> String {
        match self {
            CheckId::ImmutaReachable => "Immuta answers and accepts the API key".into(),
            CheckId::ConnectionApi => "the connection API is available".into(),
            CheckId::ConnectionKeyFree => "the connection key is free".into(),
            CheckId::NoExistingIntegration => "no integration exists on the host".into(),
            CheckId::SnowflakePrivilege(p) => {
                format!("role holds {} ON ACCOUNT WITH GRANT OPTION", p.as_sql())
            }
            CheckId::SnowflakeWarehouse => "the warehouse exists".into(),
            CheckId::SnowflakeDatabaseFree => "the Immuta database does not exist yet".into(),
            CheckId::DatabricksMetastore => "a Unity Catalog metastore is attached".into(),
            CheckId::DatabricksCreateCatalog => "CREATE CATALOG is granted on the metastore".into(),
            CheckId::DatabricksCatalogFree => "the catalog does not exist yet".into(),
            CheckId::DatabricksWarehouse => "the SQL warehouse exists and runs statements".into(),
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

/// Why a probe gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The credentials were refused (401/403).
    Unauthorized(String),
    /// The endpoint or object does not exist (404).
    NotFound(String),
    /// The statement ran and failed (e.g. insufficient privileges, unknown object).
    Statement(String),
    /// The executor has no credentials to run statements (manual, command).
    NoCredentials,
    /// Anything else (network, 5xx, an unreadable answer).
    Other(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Unauthorized(m)
            | ProbeError::NotFound(m)
            | ProbeError::Statement(m)
            | ProbeError::Other(m) => f.write_str(m),
            ProbeError::NoCredentials => f.write_str("not checked: no credentials (manual executor)"),
        }
    }
}

/// An integration as `GET /integrations` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSummary {
    pub id: String,
    pub technology: Option<Technology>,
    pub host: Option<String>,
}

/// A connection Immuta already has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingConnection {
    /// Its integration (`nativeIntegrationId`), which sits on its host.
    pub integration_id: Option<String>,
}

/// A result set: column names and rows of (nullable) text cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The cells of the column named `name` (case-insensitive), one per row.
    pub fn column(&self, name: &str) -> Vec<Option<&str>> {
        let Some(i) = self.columns.iter().position(|c| c.eq_ignore_ascii_case(name)) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .map(|r| r.get(i).and_then(|c| c.as_deref()))
            .collect()
    }
}

/// Read-only Immuta calls the checks make.
pub trait ImmutaProbe: Send + Sync {
    /// `GET /integrations`.
    fn integrations(&self) -> BoxFuture<'_, Result<Vec<IntegrationSummary>, ProbeError>>;
    /// `GET /data/connection/{key}`: the connection with that key, if Immuta has one.
    fn connection<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExistingConnection>, ProbeError>>;
}

/// Runs one read-only statement in the connection's warehouse with the executor's credentials.
pub trait WarehouseProbe: Send + Sync {
    /// The role the executor runs the setup script as, when its settings name one.
    fn setup_role(&self, conn: &Connection) -> Option<String>;
    fn query<'a>(&'a self, conn: &'a Connection, sql: &'a str) -> BoxFuture<'a, Result<Rows, ProbeError>>;
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
    let integrations = immuta.integrations().await;
    let shared = Shared::default();
    let mut connections: Vec<ConnectionReport> = futures_util::stream::iter(subjects)
        .map(|s| {
            let (integrations, shared) = (&integrations, &shared);
            async move {
                let mut checks = immuta_checks(immuta, integrations, s).await;
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

/// One workspace-level statement's answer, computed once per run.
type AnswerCell = Arc<OnceCell<Result<Rows, ProbeError>>>;

/// Per-run reads shared between connections checked concurrently.
#[derive(Default)]
struct Shared {
    /// Keyed by (workspace, `httpPath`, statement): several Databricks connections (one per
    /// catalog) share a workspace, its metastore and its system tables. (Snowflake allows one
    /// connection per account, so its statements have nothing to share.)
    answers: Mutex<HashMap<(String, String, &'static str), AnswerCell>>,
}

impl Shared {
    /// Runs a statement that does not depend on the catalog once per workspace and warehouse.
    async fn workspace_query(
        &self,
        wh: &dyn WarehouseProbe,
        conn: &Connection,
        db: &connctl_spec::Databricks,
        sql: &'static str,
    ) -> Result<Rows, ProbeError> {
        let cell = {
            // A poisoned lock only means another check panicked; the map is still whole.
            let mut map = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            map.entry((bare(&db.workspace_url), db.http_path.clone(), sql))
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
mod snowflake;
use databricks::databricks_checks;
use immuta::immuta_checks;
use snowflake::snowflake_checks;

#[cfg(test)]
mod tests;
