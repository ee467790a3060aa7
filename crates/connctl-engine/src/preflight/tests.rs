//! Preflight checks against an in-memory fake of Immuta and the warehouse.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

/// A fake warehouse answering the statements the checks run from a table of results.
#[derive(Default)]
struct Fake {
    integrations: Vec<IntegrationSummary>,
    connections: Vec<String>,
    answers: BTreeMap<String, Result<Rows, ProbeError>>,
    no_credentials: bool,
    /// When set, each statement takes this long times (1 + the key's trailing digits), so
    /// connections finish in another order than they start.
    delay: Option<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Every statement run, in order.
    ran: Mutex<Vec<String>>,
    /// Set: the tenant's connection API answers this error.
    connection_api: Option<ProbeError>,
    /// Set: the API key's user; unset: a user with every permission needed.
    user: Option<Result<ImmutaUser, ProbeError>>,
    /// Set: SCIM `Me` of the connection's credential; unset: a service principal.
    principal: Option<Result<Principal, ProbeError>>,
}

impl ImmutaProbe for Fake {
    fn integrations(&self) -> BoxFuture<'_, Result<Vec<IntegrationSummary>, ProbeError>> {
        Box::pin(async move { Ok(self.integrations.clone()) })
    }
    fn connection<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ExistingConnection>, ProbeError>> {
        Box::pin(async move {
            Ok(self
                .connections
                .iter()
                .any(|k| k == key)
                .then(ExistingConnection::default))
        })
    }
    fn connection_api(&self) -> BoxFuture<'_, Result<(), ProbeError>> {
        Box::pin(async move { self.connection_api.clone().map_or(Ok(()), Err) })
    }
    fn current_user(&self) -> BoxFuture<'_, Result<ImmutaUser, ProbeError>> {
        Box::pin(async move {
            self.user.clone().unwrap_or_else(|| {
                Ok(ImmutaUser {
                    name: Some("admin".into()),
                    permissions: vec!["APPLICATION_ADMIN".into(), "CREATE_DATA_SOURCE".into()],
                })
            })
        })
    }
}

impl WarehouseProbe for Fake {
    fn setup_role(&self, _conn: &Connection) -> Option<String> {
        Some("SETUP".into())
    }
    fn query<'a>(&'a self, conn: &'a Connection, sql: &'a str) -> BoxFuture<'a, Result<Rows, ProbeError>> {
        Box::pin(async move {
            self.ran.lock().unwrap().push(sql.to_owned());
            if let Some(delay) = self.delay {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_in_flight.fetch_max(now, Ordering::SeqCst);
                let n: u32 = conn
                    .key
                    .trim_start_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .unwrap_or(0);
                tokio::time::sleep(delay * (1 + n)).await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            if self.no_credentials {
                return Err(ProbeError::NoCredentials);
            }
            self.answers
                .get(sql)
                .cloned()
                .unwrap_or_else(|| Ok(Rows::default()))
        })
    }
    fn databricks_principal<'a>(
        &'a self,
        _conn: &'a Connection,
        _db: &'a connctl_spec::Databricks,
    ) -> BoxFuture<'a, Result<Principal, ProbeError>> {
        Box::pin(async move {
            self.principal.clone().unwrap_or_else(|| {
                Ok(Principal {
                    name: "6e1c5f2a-8d3b-4c4e-9a7f-3b2d1c0e9f8a".into(),
                    kind: PrincipalKind::ServicePrincipal,
                })
            })
        })
    }
}

fn rows(columns: &[&str], data: &[&[&str]]) -> Rows {
    Rows {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: data
            .iter()
            .map(|r| r.iter().map(|c| Some(c.to_string())).collect())
            .collect(),
    }
}

fn grants(data: &[&[&str]]) -> Rows {
    rows(&["privilege", "granted_on", "name", "grant_option"], data)
}

/// The setup role holds half the privileges itself and half through an inherited role.
fn snowflake_fake() -> Fake {
    let mut f = Fake::default();
    f.answers.insert(
        "SHOW GRANTS TO ROLE \"SETUP\"".into(),
        Ok(grants(&[
            &["CREATE DATABASE", "ACCOUNT", "ACME", "true"],
            &["CREATE ROLE", "ACCOUNT", "ACME", "true"],
            &["CREATE USER", "ACCOUNT", "ACME", "true"],
            &["USAGE", "ROLE", "POLICY_ADMIN", "false"],
        ])),
    );
    f.answers.insert(
        "SHOW GRANTS TO ROLE \"POLICY_ADMIN\"".into(),
        Ok(grants(&[
            &["MANAGE GRANTS", "ACCOUNT", "ACME", "true"],
            &["APPLY MASKING POLICY", "ACCOUNT", "ACME", "true"],
            &["APPLY ROW ACCESS POLICY", "ACCOUNT", "ACME", "true"],
            &["USAGE", "ROLE", "SETUP", "false"],
        ])),
    );
    f.answers.insert(
        "SHOW WAREHOUSES LIKE 'IMMUTA_WH'".into(),
        Ok(rows(&["name", "state"], &[&["IMMUTA_WH", "SUSPENDED"]])),
    );
    f
}

fn load(yaml: &str) -> connctl_spec::Desired {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, yaml).unwrap();
    connctl_spec::load(&[path]).unwrap()
}

const SNOWFLAKE: &str = "version: 1
connections:
  - key: sf
    technology: Snowflake
    host: acme.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_DB
    role: IMMUTA_SYSTEM
    auth: { type: userPassword, username: IMMUTA_SYSTEM_ACCOUNT, password: { env: X } }
";

async fn report(fake: &Fake, yaml: &str, managed: bool) -> Report {
    let desired = load(yaml);
    let subjects: Vec<Subject<'_>> = desired
        .connections
        .iter()
        .map(|conn| Subject {
            conn,
            managed,
            integration_id: None,
        })
        .collect();
    run(fake, fake, &subjects, 4).await
}

fn failed(r: &Report) -> Vec<CheckId> {
    r.connections
        .iter()
        .flat_map(|c| &c.checks)
        .filter(|c| matches!(c.verdict, Verdict::Fail { .. }))
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn everything_in_place_passes_with_inherited_privileges() {
    let r = report(&snowflake_fake(), SNOWFLAKE, false).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(r.connections[0].checks.len(), 5 + 6 + 2);
}

#[tokio::test]
async fn a_missing_privilege_fails_with_its_grant() {
    let mut f = snowflake_fake();
    f.answers.insert(
        "SHOW GRANTS TO ROLE \"POLICY_ADMIN\"".into(),
        Ok(grants(&[
            &["MANAGE GRANTS", "ACCOUNT", "ACME", "true"],
            &["APPLY MASKING POLICY", "ACCOUNT", "ACME", "true"],
            // held, but without grant option: not enough
            &["APPLY ROW ACCESS POLICY", "ACCOUNT", "ACME", "false"],
        ])),
    );
    let r = report(&f, SNOWFLAKE, false).await;
    let p = CheckId::SnowflakePrivilege(SnowflakePrivilege::ApplyRowAccessPolicy);
    assert_eq!(failed(&r), vec![p]);
    let check = r.connections[0].checks.iter().find(|c| c.id == p).unwrap();
    match &check.verdict {
        Verdict::Fail { fix, .. } => assert_eq!(
            fix.statement.as_deref(),
            Some("GRANT APPLY ROW ACCESS POLICY ON ACCOUNT TO ROLE \"SETUP\" WITH GRANT OPTION;")
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_existing_database_or_missing_warehouse_fails() {
    let mut f = snowflake_fake();
    f.answers.insert(
        "SHOW DATABASES LIKE 'IMMUTA_DB'".into(),
        Ok(rows(&["name"], &[&["IMMUTA_DB"]])),
    );
    f.answers.insert(
        "SHOW WAREHOUSES LIKE 'IMMUTA_WH'".into(),
        Ok(rows(&["name"], &[])),
    );
    let r = report(&f, SNOWFLAKE, false).await;
    assert_eq!(
        failed(&r),
        vec![CheckId::SnowflakeWarehouse, CheckId::SnowflakeDatabaseFree]
    );
}

#[tokio::test]
async fn an_integration_on_the_host_fails_naming_its_id_unless_it_is_ours() {
    let mut f = snowflake_fake();
    f.integrations.push(IntegrationSummary {
        id: "7".into(),
        technology: Some(Technology::Snowflake),
        other: false,
        host: Some("ACME.snowflakecomputing.com".into()),
    });
    let r = report(&f, SNOWFLAKE, false).await;
    assert_eq!(failed(&r), vec![CheckId::NoExistingIntegration]);
    let text = format!("{:?}", r.connections[0].checks);
    assert!(text.contains("integration 7 already exists"), "{text}");

    let desired = load(SNOWFLAKE);
    let ours = [Subject {
        conn: &desired.connections[0],
        managed: true,
        integration_id: Some("7"),
    }];
    assert!(!run(&f, &f, &ours, 4).await.failed());
}

/// The verdict of `no-existing-integration` for the Snowflake connection.
async fn host_check(f: &Fake) -> Verdict {
    let r = report(f, SNOWFLAKE, false).await;
    r.connections[0]
        .checks
        .iter()
        .find(|c| c.id == CheckId::NoExistingIntegration)
        .map(|c| c.verdict.clone())
        .expect("the host check ran")
}

fn integration(
    id: &str,
    technology: Option<Technology>,
    other: bool,
    host: Option<&str>,
) -> IntegrationSummary {
    IntegrationSummary {
        id: id.into(),
        technology,
        other,
        host: host.map(str::to_owned),
    }
}

#[tokio::test]
async fn an_integration_that_names_no_host_leaves_the_host_check_not_checked() {
    // Another technology's integration, one on another host, a Databricks one: a pass.
    let mut f = snowflake_fake();
    f.integrations.push(integration("1", None, true, None));
    f.integrations.push(integration(
        "2",
        Some(Technology::Snowflake),
        false,
        Some("other.snowflakecomputing.com"),
    ));
    f.integrations
        .push(integration("3", Some(Technology::Databricks), false, None));
    assert_eq!(host_check(&f).await, Verdict::Pass);
    // Whatever its type says, one on this very host is a conflict.
    let mut f = snowflake_fake();
    f.integrations
        .push(integration("5", None, true, Some("ACME.snowflakecomputing.com")));
    assert!(
        matches!(host_check(&f).await, Verdict::Fail { .. }),
        "{:?}",
        host_check(&f).await
    );
    // A Snowflake (or untyped) integration whose host cannot be read might be on this host.
    for technology in [Some(Technology::Snowflake), None] {
        let mut f = snowflake_fake();
        f.integrations.push(integration("4", technology, false, None));
        match host_check(&f).await {
            Verdict::NotChecked { why, .. } => assert!(why.contains("1 integration(s)"), "{why}"),
            other => panic!("{technology:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_key_taken_by_an_unmanaged_connection_fails() {
    let mut f = snowflake_fake();
    f.connections.push("sf".into());
    assert_eq!(
        failed(&report(&f, SNOWFLAKE, false).await),
        vec![CheckId::ConnectionKeyFree]
    );
    assert!(failed(&report(&f, SNOWFLAKE, true).await).is_empty());
}

#[tokio::test]
async fn without_credentials_warehouse_checks_are_not_checked_with_the_sql() {
    let mut f = snowflake_fake();
    f.no_credentials = true;
    let r = report(&f, SNOWFLAKE, false).await;
    assert!(!r.failed());
    let wh = r.connections[0]
        .checks
        .iter()
        .find(|c| c.id == CheckId::SnowflakeWarehouse)
        .unwrap();
    assert_eq!(
        wh.verdict,
        Verdict::NotChecked {
            why: "not checked: no credentials (the manual executor runs nothing); run this by hand".into(),
            statement: Some("SHOW WAREHOUSES LIKE 'IMMUTA_WH'".into()),
        }
    );
}

const DATABRICKS: &str = "version: 1
connections:
  - key: dbx
    technology: Databricks
    workspaceUrl: dbc-1.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/abc
    catalog: immuta
    auth: { type: token, token: { env: X } }
    audit: { enabled: true }
";

fn databricks_fake() -> Fake {
    let mut f = Fake::default();
    f.answers.insert(
        statements::DATABRICKS_METASTORE.into(),
        Ok(rows(&["current_metastore()"], &[&["aws:us-east-1:1234"]])),
    );
    f.answers.insert(
        statements::DATABRICKS_CURRENT_USER.into(),
        Ok(rows(&["current_user()"], &[&["runner"]])),
    );
    f.answers.insert(
        statements::DATABRICKS_METASTORE_GRANTS.into(),
        Ok(rows(
            &["Principal", "ActionType", "ObjectType"],
            &[&["runner", "CREATE CATALOG", "METASTORE"]],
        )),
    );
    f
}

#[tokio::test]
async fn databricks_checks_pass_then_fail_one_by_one() {
    assert!(!report(&databricks_fake(), DATABRICKS, false).await.failed());

    let mut f = databricks_fake();
    f.answers.insert(
        statements::DATABRICKS_METASTORE_GRANTS.into(),
        Ok(rows(&["Principal", "ActionType", "ObjectType"], &[])),
    );
    assert_eq!(
        failed(&report(&f, DATABRICKS, false).await),
        vec![CheckId::DatabricksCreateCatalog]
    );

    let mut f = databricks_fake();
    f.answers.insert(
        statements::DATABRICKS_SYSTEM_TABLES[1].into(),
        Err(ProbeError::Statement("[INSUFFICIENT_PERMISSIONS]".into())),
    );
    assert_eq!(
        failed(&report(&f, DATABRICKS, false).await),
        vec![CheckId::DatabricksSystemAccess]
    );

    let mut f = databricks_fake();
    f.answers.insert(
        statements::databricks_catalog("immuta"),
        Ok(rows(&["catalog"], &[&["immuta"]])),
    );
    assert_eq!(
        failed(&report(&f, DATABRICKS, false).await),
        vec![CheckId::DatabricksCatalogFree]
    );
}

#[tokio::test]
async fn connections_are_checked_concurrently_bounded_by_parallelism_in_key_order() {
    let mut yaml = String::from("version: 1\nconnections:\n");
    // Listed in reverse key order; later keys are slower, so completion order is neither.
    for i in (0..12).rev() {
        yaml.push_str(&format!(
            "  - key: dbx{i:02}
    technology: Databricks
    workspaceUrl: dbc-1.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/abc
    catalog: immuta_{i}
    auth: {{ type: token, token: {{ env: X }} }}
    audit: {{ enabled: true }}
"
        ));
    }
    let desired = load(&yaml);
    let subjects: Vec<Subject<'_>> = desired
        .connections
        .iter()
        .map(|conn| Subject {
            conn,
            managed: false,
            integration_id: None,
        })
        .collect();
    let mut f = databricks_fake();
    f.delay = Some(Duration::from_millis(2));

    let r = run(&f, &f, &subjects, 3).await;

    let max = f.max_in_flight.load(Ordering::SeqCst);
    assert_eq!(
        max, 3,
        "at most --parallelism connections in flight, and that many used"
    );
    let keys: Vec<&str> = r.connections.iter().map(|c| c.key.as_str()).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("dbx{i:02}")).collect();
    assert_eq!(keys, expected);
    assert!(!r.failed(), "{r:?}");
    // The workspace's metastore, grants and system tables are read once for all twelve
    // connections; each catalog is looked up for its own connection.
    let ran = f.ran.lock().unwrap().clone();
    let count = |sql: &str| ran.iter().filter(|s| s.as_str() == sql).count();
    assert_eq!(count(statements::DATABRICKS_METASTORE), 1, "{ran:?}");
    assert_eq!(count(statements::DATABRICKS_METASTORE_GRANTS), 1, "{ran:?}");
    assert_eq!(count(statements::DATABRICKS_SYSTEM_TABLES[0]), 1, "{ran:?}");
    assert_eq!(ran.iter().filter(|s| s.starts_with("SHOW CATALOGS")).count(), 12);

    // Sequential (parallelism 1) gives the same report.
    let mut f1 = databricks_fake();
    f1.delay = Some(Duration::from_millis(1));
    let sequential = run(&f1, &f1, &subjects, 1).await;
    assert_eq!(f1.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(sequential, r);
}

mod access;
