//! What the checks read through: the read-only Immuta and warehouse probes (traits the CLI
//! implements over its clients, and unit tests over a fake) and the answers they give.

use connctl_spec::{Connection, Technology};

use super::BoxFuture;

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
    /// A secret of the connection (the YAML's `auth`) does not resolve; names the reference.
    Secret(String),
    /// Anything else (network, 5xx, an unreadable answer).
    Other(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Unauthorized(m)
            | ProbeError::NotFound(m)
            | ProbeError::Statement(m)
            | ProbeError::Secret(m)
            | ProbeError::Other(m) => f.write_str(m),
            ProbeError::NoCredentials => f.write_str("not checked: no credentials (manual executor)"),
        }
    }
}

/// An integration as `GET /integrations` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSummary {
    pub id: String,
    /// Snowflake or Databricks, when the listing says (its `type`, or a Databricks workspace).
    pub technology: Option<Technology>,
    /// Its `type` names another technology: without a host, it is not taken for one that
    /// could sit on a Snowflake host.
    pub other: bool,
    /// `config.host`, where the listing has it.
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

/// The API key's user and the Immuta permissions it holds (itself or through its groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImmutaUser {
    pub name: Option<String>,
    pub permissions: Vec<String>,
}

pub use connctl_spec::databricks::PrincipalKind;

/// The Databricks principal a connection's own credential authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its `userName` (a service principal's application id).
    pub name: String,
    pub kind: PrincipalKind,
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
    /// Whether the tenant serves the connection API (`NotFound` when it does not).
    fn connection_api(&self) -> BoxFuture<'_, Result<(), ProbeError>>;
    /// `GET /bim/rpc/user/current`: the API key's user and its permissions.
    fn current_user(&self) -> BoxFuture<'_, Result<ImmutaUser, ProbeError>>;
}

/// Runs one read-only statement in the connection's warehouse with the executor's credentials.
pub trait WarehouseProbe: Send + Sync {
    /// The role the executor runs the setup script as, when its settings name one.
    fn setup_role(&self, conn: &Connection) -> Option<String>;
    fn query<'a>(&'a self, conn: &'a Connection, sql: &'a str) -> BoxFuture<'a, Result<Rows, ProbeError>>;
    /// Who the connection's own Databricks credential (the YAML's `auth`, resolved as apply
    /// resolves it) is, by SCIM `Me`; [`ProbeError::NoCredentials`] when the executor does not
    /// call Databricks.
    fn databricks_principal<'a>(
        &'a self,
        conn: &'a Connection,
        db: &'a connctl_spec::Databricks,
    ) -> BoxFuture<'a, Result<Principal, ProbeError>>;
}
