//! Answers to the read-only statements `connctl preflight` runs, with result sets shaped like the
//! real warehouses': Snowflake `SHOW GRANTS TO ROLE` (system roles inheriting each other),
//! `SHOW WAREHOUSES`/`SHOW DATABASES LIKE`, `SELECT CURRENT_ROLE()`; Databricks
//! `SELECT CURRENT_METASTORE()`, `SHOW GRANTS ON METASTORE`, `SHOW CATALOGS LIKE` and the
//! `system.access` tables, `SELECT current_user()` and `is_account_group_member`; the SCIM
//! `GET /api/2.0/preview/scim/v2/Me` of the connection's own credentials; Immuta's
//! `GET /bim/rpc/user/current`, and the connection API's absence. Every prerequisite holds unless
//! [`EmulatorConfig::missing`] names it.

use std::str::FromStr;

use serde_json::{Value, json};

use crate::EmulatorConfig;
use crate::store::Store;
use crate::validate::Tech;

pub mod routes;

/// A prerequisite the emulator can be started without (`--missing`), so that exactly one
/// preflight check fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prerequisite {
    /// `snowflake:<PRIVILEGE>`, e.g. `snowflake:CREATE USER`: no role holds it with grant option.
    SnowflakePrivilege(String),
    /// `snowflake:warehouse`: no warehouse exists.
    SnowflakeWarehouse,
    /// `snowflake:free-database`: every database asked about exists already.
    SnowflakeFreeDatabase,
    /// `databricks:metastore`: no Unity Catalog metastore is attached.
    DatabricksMetastore,
    /// `databricks:create-catalog`: nobody holds CREATE CATALOG on the metastore.
    DatabricksCreateCatalog,
    /// `databricks:free-catalog`: every catalog asked about exists already.
    DatabricksFreeCatalog,
    /// `databricks:system-access`: the `system.access` schema is not enabled.
    DatabricksSystemAccess,
    /// `immuta:connection-api`: the tenant does not have the connection API: `/data/*` is 404.
    ImmutaConnectionApi,
    /// `immuta:permission`: the API key's user lacks `CREATE_DATA_SOURCE`.
    ImmutaPermission,
    /// `databricks:service-principal`: the connection's token (or OAuth client) is refused (401).
    DatabricksServicePrincipal,
    /// `databricks:service-principal-user`: the connection's token belongs to a user, not a
    /// service principal.
    DatabricksServicePrincipalUser,
    /// `databricks:runner-create-catalog`: CREATE CATALOG is granted to another principal, not
    /// to the runner or a group it belongs to.
    DatabricksRunnerCreateCatalog,
}

impl FromStr for Prerequisite {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tech, what) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected snowflake:<PRIVILEGE|warehouse|free-database>, databricks:<metastore|create-catalog|runner-create-catalog|free-catalog|system-access|service-principal|service-principal-user> or immuta:<connection-api|permission>"))?;
        let what = what.trim();
        match (tech.trim().to_ascii_lowercase().as_str(), what) {
            ("snowflake", "warehouse") => Ok(Prerequisite::SnowflakeWarehouse),
            ("snowflake", "free-database") => Ok(Prerequisite::SnowflakeFreeDatabase),
            ("snowflake", p) if PRIVILEGES.iter().any(|x| x.eq_ignore_ascii_case(p)) => {
                Ok(Prerequisite::SnowflakePrivilege(p.to_ascii_uppercase()))
            }
            ("databricks", "metastore") => Ok(Prerequisite::DatabricksMetastore),
            ("databricks", "create-catalog") => Ok(Prerequisite::DatabricksCreateCatalog),
            ("databricks", "free-catalog") => Ok(Prerequisite::DatabricksFreeCatalog),
            ("databricks", "system-access") => Ok(Prerequisite::DatabricksSystemAccess),
            ("databricks", "service-principal") => Ok(Prerequisite::DatabricksServicePrincipal),
            ("databricks", "service-principal-user") => Ok(Prerequisite::DatabricksServicePrincipalUser),
            ("databricks", "runner-create-catalog") => Ok(Prerequisite::DatabricksRunnerCreateCatalog),
            ("immuta", "connection-api") => Ok(Prerequisite::ImmutaConnectionApi),
            ("immuta", "permission") => Ok(Prerequisite::ImmutaPermission),
            _ => Err(format!("`{s}`: unknown prerequisite")),
        }
    }
}

const PRIVILEGES: [&str; 6] = [
    "CREATE DATABASE",
    "CREATE ROLE",
    "CREATE USER",
    "MANAGE GRANTS",
    "APPLY MASKING POLICY",
    "APPLY ROW ACCESS POLICY",
];

/// The system roles' account grants and the roles each inherits, as on a new account.
fn role_grants(role: &str) -> Option<(Vec<&'static str>, Vec<&'static str>)> {
    match role {
        "ACCOUNTADMIN" => Some((
            vec![
                "CREATE DATABASE",
                "APPLY MASKING POLICY",
                "APPLY ROW ACCESS POLICY",
            ],
            vec!["SECURITYADMIN", "SYSADMIN"],
        )),
        "SECURITYADMIN" => Some((vec!["MANAGE GRANTS"], vec!["USERADMIN"])),
        "USERADMIN" => Some((vec!["CREATE USER", "CREATE ROLE"], vec![])),
        "SYSADMIN" => Some((vec!["CREATE WAREHOUSE"], vec![])),
        "PUBLIC" => Some((vec![], vec![])),
        _ => None,
    }
}

/// A statement's answer: columns and rows, or a failure (code, SQL state, message).
pub type Answer = Result<(Vec<&'static str>, Vec<Vec<Value>>), (&'static str, &'static str, String)>;

/// `'X'` → `X`, `"X"` → `X` (case kept), `X` → `X` upper-cased.
fn unquote(s: &str) -> String {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        inner.replace("\"\"", "\"")
    } else {
        s.to_ascii_uppercase()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// The answer to a Snowflake preflight statement, `None` for any other statement.
pub fn snowflake(
    cfg: &EmulatorConfig,
    store: &Store,
    normalized: &str,
    role: Option<&str>,
) -> Option<Answer> {
    let missing = |p: &Prerequisite| cfg.missing.contains(p);
    if normalized.eq_ignore_ascii_case("SELECT CURRENT_ROLE()") {
        return Some(Ok((
            vec!["CURRENT_ROLE()"],
            vec![vec![json!(role.unwrap_or("ACCOUNTADMIN"))]],
        )));
    }
    if let Some(rest) = strip_prefix_ci(normalized, "SHOW GRANTS TO ROLE ") {
        let name = unquote(rest);
        let Some((privileges, inherits)) = role_grants(&name) else {
            return Some(Err((
                "002003",
                "02000",
                format!("SQL compilation error:\nRole '{name}' does not exist or not authorized."),
            )));
        };
        let mut rows = Vec::new();
        for p in privileges {
            if missing(&Prerequisite::SnowflakePrivilege(p.to_owned())) {
                continue;
            }
            rows.push(vec![
                json!("2024-01-01 00:00:00.000 -0800"),
                json!(p),
                json!("ACCOUNT"),
                json!("EMULATOR"),
                json!("ROLE"),
                json!(name),
                json!("true"),
                json!("SYSTEM"),
            ]);
        }
        for r in inherits {
            rows.push(vec![
                json!("2024-01-01 00:00:00.000 -0800"),
                json!("USAGE"),
                json!("ROLE"),
                json!(r),
                json!("ROLE"),
                json!(name),
                json!("false"),
                json!("SYSTEM"),
            ]);
        }
        let columns = vec![
            "created_on",
            "privilege",
            "granted_on",
            "name",
            "granted_to",
            "grantee_name",
            "grant_option",
            "granted_by",
        ];
        return Some(Ok((columns, rows)));
    }
    if let Some(rest) = strip_prefix_ci(normalized, "SHOW WAREHOUSES LIKE ") {
        let name = unquote(rest);
        let rows = if missing(&Prerequisite::SnowflakeWarehouse) {
            vec![]
        } else {
            vec![vec![
                json!(name),
                json!("SUSPENDED"),
                json!("STANDARD"),
                json!("X-Small"),
            ]]
        };
        return Some(Ok((vec!["name", "state", "type", "size"], rows)));
    }
    if let Some(rest) = strip_prefix_ci(normalized, "SHOW DATABASES LIKE ") {
        let name = unquote(rest);
        let exists = missing(&Prerequisite::SnowflakeFreeDatabase)
            || store.connections.values().any(|c| {
                c.tech == Tech::Snowflake
                    && c.connection.get("database").and_then(Value::as_str) == Some(name.as_str())
            });
        let rows = if exists {
            vec![vec![
                json!("2024-01-01 00:00:00.000 -0800"),
                json!(name),
                json!("N"),
                json!(""),
            ]]
        } else {
            vec![]
        };
        return Some(Ok((vec!["created_on", "name", "is_default", "origin"], rows)));
    }
    None
}

/// The user whose credentials run Databricks statements (the executor's), as `current_user()`
/// names it, and the account groups it belongs to.
const RUNNER: &str = "platform-admin@example.com";
const RUNNER_GROUPS: [&str; 1] = ["platform-admins"];

/// The answer to a Databricks preflight statement, `None` for any other statement.
pub fn databricks(cfg: &EmulatorConfig, store: &Store, normalized: &str) -> Option<Answer> {
    let missing = |p: &Prerequisite| cfg.missing.contains(p);
    if normalized.eq_ignore_ascii_case("SELECT CURRENT_METASTORE()") {
        if missing(&Prerequisite::DatabricksMetastore) {
            return Some(Err((
                "BAD_REQUEST",
                "42000",
                "[NO_METASTORE_ASSIGNED] No metastore assigned for the current workspace. SQLSTATE: 42000"
                    .into(),
            )));
        }
        return Some(Ok((
            vec!["current_metastore()"],
            vec![vec![json!("aws:us-west-2:19a85dee-54bc-43a2-87ab-023d0ec16013")]],
        )));
    }
    if normalized.eq_ignore_ascii_case("SELECT current_user()") {
        return Some(Ok((vec!["current_user()"], vec![vec![json!(RUNNER)]])));
    }
    if let Some(rest) = strip_prefix_ci(normalized, "SELECT is_account_group_member(") {
        // `SELECT is_account_group_member('<group>') AS member`
        let group = unquote(rest.split_once(')').map_or(rest, |(g, _)| g));
        let member = RUNNER_GROUPS.iter().any(|g| *g == group);
        return Some(Ok((vec!["member"], vec![vec![json!(member.to_string())]])));
    }
    if normalized.eq_ignore_ascii_case("SHOW GRANTS ON METASTORE") {
        let mut rows = vec![vec![
            json!("account users"),
            json!("CREATE EXTERNAL LOCATION"),
            json!("METASTORE"),
            json!("metastore"),
        ]];
        if !missing(&Prerequisite::DatabricksCreateCatalog) {
            // The runner holds it through a group; with the knob, only another team does.
            let holder = if missing(&Prerequisite::DatabricksRunnerCreateCatalog) {
                "data-eng@example.com"
            } else {
                RUNNER_GROUPS[0]
            };
            rows.push(vec![
                json!(holder),
                json!("CREATE CATALOG"),
                json!("METASTORE"),
                json!("metastore"),
            ]);
        }
        return Some(Ok((
            vec!["Principal", "ActionType", "ObjectType", "ObjectKey"],
            rows,
        )));
    }
    if let Some(rest) = strip_prefix_ci(normalized, "SHOW CATALOGS LIKE ") {
        let name = unquote(rest);
        let exists = missing(&Prerequisite::DatabricksFreeCatalog)
            || store.connections.values().any(|c| {
                c.tech == Tech::Databricks
                    && c.connection
                        .get("catalog")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.eq_ignore_ascii_case(&name))
            });
        let rows = if exists { vec![vec![json!(name)]] } else { vec![] };
        return Some(Ok((vec!["catalog"], rows)));
    }
    if let Some(rest) = strip_prefix_ci(normalized, "SELECT 1 FROM system.access.") {
        if missing(&Prerequisite::DatabricksSystemAccess) {
            return Some(Err((
                "BAD_REQUEST",
                "42501",
                "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have USE SCHEMA on Schema 'system.access'. SQLSTATE: 42501".into(),
            )));
        }
        let table = rest.split_whitespace().next().unwrap_or("");
        if ["audit", "table_lineage", "column_lineage"].contains(&table) {
            return Some(Ok((vec!["1"], vec![])));
        }
    }
    None
}

/// Adds an integration on `host` that no connection owns (`--existing-integration`).
pub fn seed_integration(store: &mut Store, host: &str) {
    let id = store.next_integration_id();
    store.integrations.insert(
        id,
        crate::store::Integration {
            id,
            tech: Tech::Snowflake,
            status: "enabled".into(),
            config: json!({"host": host}),
            http_path: None,
            connection_key: None,
        },
    );
}
