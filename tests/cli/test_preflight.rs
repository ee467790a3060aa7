//! `connctl preflight`: every check passes against the default emulator; each prerequisite left
//! out of the emulator fails exactly its check, with its fix, exit 1.

use connctl_emulator::{EmulatorConfig, Prerequisite};

use crate::support::TestEnv;

const SNOWFLAKE: &str = "version: 1
connections:
  - key: sf-prod
    technology: Snowflake
    host: acme-prod.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_DB
    role: IMMUTA_SYSTEM
    executor: snowflake
    auth: { type: userPassword, username: IMMUTA_SYSTEM_ACCOUNT, password: { env: CONNCTL_TEST_SF_PASSWORD } }
";

pub(crate) const DATABRICKS: &str = "version: 1
connections:
  - key: dbx-prod
    technology: Databricks
    workspaceUrl: dbc-1234.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/abc123
    catalog: immuta
    executor: databricks
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
    audit: { enabled: true }
";

pub(crate) fn env_with(missing: Vec<Prerequisite>, existing: Vec<String>) -> TestEnv {
    let env = TestEnv::with_emulator(EmulatorConfig {
        job_step_ms: 20,
        missing,
        existing_integrations: existing,
        ..EmulatorConfig::default()
    });
    env.write("c/sf.yaml", SNOWFLAKE);
    env.write("c/dbx.yaml", DATABRICKS);
    env
}

/// The lines of the failed checks, with their detail lines.
pub(crate) fn failures(stdout: &str) -> String {
    let mut out = String::new();
    let mut in_fail = false;
    for line in stdout.lines() {
        if line.starts_with("  FAIL") {
            in_fail = true;
        } else if !line.starts_with("        ") {
            in_fail = false;
        }
        if in_fail {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub(crate) fn missing(what: &str) -> TestEnv {
    env_with(vec![what.parse().unwrap()], vec![])
}

#[test]
fn preflight_passes_everything_against_the_default_emulator() {
    let env = env_with(vec![], vec![]);
    let out = env.run(&["preflight", "c"]);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    Preflight: 2 connection(s), 0 failed, 23 passed, 0 not checked

    dbx-prod (Databricks)
      pass  Immuta answers and accepts the API key
      pass  the connection API is available
      pass  the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN
      pass  the connection key is free
      pass  the SQL warehouse exists and runs statements
      pass  a Unity Catalog metastore is attached
      pass  the runner holds CREATE CATALOG on the metastore
      pass  the catalog does not exist yet
      pass  the connection's credentials authenticate a service principal
      pass  system.access audit and lineage tables are readable

    sf-prod (Snowflake)
      pass  Immuta answers and accepts the API key
      pass  the connection API is available
      pass  the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN
      pass  the connection key is free
      pass  no integration exists on the host
      pass  role holds CREATE DATABASE ON ACCOUNT WITH GRANT OPTION
      pass  role holds CREATE ROLE ON ACCOUNT WITH GRANT OPTION
      pass  role holds CREATE USER ON ACCOUNT WITH GRANT OPTION
      pass  role holds MANAGE GRANTS ON ACCOUNT WITH GRANT OPTION
      pass  role holds APPLY MASKING POLICY ON ACCOUNT WITH GRANT OPTION
      pass  role holds APPLY ROW ACCESS POLICY ON ACCOUNT WITH GRANT OPTION
      pass  the warehouse exists
      pass  the Immuta database does not exist yet
    --- stderr
    ");
}

#[test]
fn preflight_without_create_user_fails_that_check_with_its_grant() {
    let env = missing("snowflake:CREATE USER");
    let out = env.run(&["preflight", "c"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @r#"
    FAIL  role holds CREATE USER ON ACCOUNT WITH GRANT OPTION
          role ACCOUNTADMIN holds no CREATE USER ON ACCOUNT WITH GRANT OPTION, directly or through its roles
          fix:  GRANT CREATE USER ON ACCOUNT TO ROLE "ACCOUNTADMIN" WITH GRANT OPTION;
          docs: docs/preflight.md#snowflake (registration guide: "Snowflake permissions for the user registering the connection")
    "#);
}

#[test]
fn preflight_without_each_snowflake_privilege_fails_only_that_one() {
    for p in [
        "CREATE DATABASE",
        "CREATE ROLE",
        "MANAGE GRANTS",
        "APPLY MASKING POLICY",
        "APPLY ROW ACCESS POLICY",
    ] {
        let env = missing(&format!("snowflake:{p}"));
        let out = env.run(&["preflight", "c"]);
        assert_eq!(out.code, 1, "{}", out.snapshot());
        let failed = failures(&out.stdout);
        assert_eq!(
            failed.lines().filter(|l| l.starts_with("  FAIL")).count(),
            1,
            "{failed}"
        );
        assert!(
            failed.contains(&format!(
                "GRANT {p} ON ACCOUNT TO ROLE \"ACCOUNTADMIN\" WITH GRANT OPTION;"
            )),
            "{failed}"
        );
    }
}

#[test]
fn preflight_without_the_warehouse_fails_that_check() {
    let out = missing("snowflake:warehouse").run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @r#"
    FAIL  the warehouse exists
          no warehouse named IMMUTA_WH is visible to the role
          fix:  CREATE WAREHOUSE "IMMUTA_WH" WITH WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60;
          docs: docs/preflight.md#snowflake (registration guide: "Snowflake permissions for the user registering the connection")
    "#);
}

#[test]
fn preflight_with_the_database_taken_fails_that_check() {
    let out = missing("snowflake:free-database").run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @r#"
    FAIL  the Immuta database does not exist yet
          database IMMUTA_DB already exists; the setup script creates it
          fix:  DROP DATABASE "IMMUTA_DB";  -- only if it is an unused leftover
          docs: docs/preflight.md#snowflake (or name another `database` in the YAML)
    "#);
}

#[test]
fn preflight_with_an_existing_integration_names_its_id() {
    let env = env_with(vec![], vec!["acme-prod.snowflakecomputing.com".into()]);
    let out = env.run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  no integration exists on the host
          integration [ID] already exists on acme-prod.snowflakecomputing.com; Immuta refuses a connection there (409)
          docs: docs/preflight.md#immuta (upgrade it to a connection with Immuta's connection upgrade manager, or delete integration first)
    ");
}

#[test]
fn preflight_without_system_access_fails_that_check() {
    let out = missing("databricks:system-access").run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @r#"
    FAIL  system.access audit and lineage tables are readable
          `SELECT 1 FROM system.access.audit LIMIT 0` failed: BAD_REQUEST: [INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have USE SCHEMA on Schema 'system.access'. SQLSTATE: 42501
          fix:  GRANT USE CATALOG ON CATALOG system TO `<principal>`; GRANT USE SCHEMA ON SCHEMA system.access TO `<principal>`; GRANT SELECT ON TABLE system.access.audit TO `<principal>`; GRANT SELECT ON TABLE system.access.table_lineage TO `<principal>`; GRANT SELECT ON TABLE system.access.column_lineage TO `<principal>`; (and enable the schema: databricks system-schemas enable <metastore-id> access)
          docs: docs/preflight.md#databricks (registration guide, step 2: "Set up Unity Catalog system tables for native query audit")
    "#);
}

#[test]
fn preflight_without_create_catalog_fails_that_check() {
    let out = missing("databricks:create-catalog").run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @r#"
    FAIL  the runner holds CREATE CATALOG on the metastore
          the runner platform-admin@example.com holds no CREATE CATALOG on the metastore, directly or through its groups (nobody holds it)
          fix:  GRANT CREATE CATALOG ON METASTORE TO `platform-admin@example.com`;
          docs: docs/preflight.md#databricks (registration guide: "Databricks privileges for the user registering the connection")
    "#);
}

#[test]
fn preflight_with_the_catalog_taken_fails_that_check() {
    let out = missing("databricks:free-catalog").run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the catalog does not exist yet
          catalog immuta already exists; the setup script creates it
          fix:  DROP CATALOG `immuta` CASCADE;  -- only if it is an unused leftover
          docs: docs/preflight.md#databricks (or name another `catalog` in the YAML)
    ");
}

#[test]
fn preflight_without_a_metastore_fails_that_check() {
    let out = missing("databricks:metastore").run(&["preflight", "c"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  a Unity Catalog metastore is attached
          no Unity Catalog metastore: BAD_REQUEST: [NO_METASTORE_ASSIGNED] No metastore assigned for the current workspace. SQLSTATE: 42000
          docs: docs/preflight.md#databricks (create a metastore and assign it to the workspace in the account console)
    ");
}

#[test]
fn preflight_with_a_key_taken_by_an_unmanaged_connection_fails_that_check() {
    let env = env_with(vec![], vec![]);
    // Register sf-prod, then forget it: Immuta has it, the state does not.
    let applied = env.run(&["apply", "c", "--auto-approve", "--target", "sf-prod"]);
    assert_eq!(applied.code, 0, "{}", applied.snapshot());
    std::fs::remove_file(env.path(".connctl/state.json")).unwrap();
    let out = env.run(&["preflight", "c", "--target", "sf-prod"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the connection key is free
          Immuta already has a connection `sf-prod` that connctl does not manage
          fix:  connctl import <PATHS> --key sf-prod
          docs: docs/preflight.md#immuta (adopt it with `connctl import`, or choose another key)
    ");
}

#[test]
fn preflight_with_the_manual_executor_lists_warehouse_checks_as_not_checked_with_sql() {
    let env = env_with(vec![], vec![]);
    env.write(
        "c/sf.yaml",
        &SNOWFLAKE.replace("executor: snowflake", "executor: manual"),
    );
    let out = env.run(&["preflight", "c", "--target", "sf-prod", "--format", "markdown"]);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 0
    --- stdout
    ## Preflight: 1 connection(s), 0 failed, 5 passed, 8 not checked

    ### `sf-prod` (Snowflake)

    | Result | Check | Detail |
    |---|---|---|
    | ✅ pass | Immuta answers and accepts the API key |  |
    | ✅ pass | the connection API is available |  |
    | ✅ pass | the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN |  |
    | ✅ pass | the connection key is free |  |
    | ✅ pass | no integration exists on the host |  |
    | ⚪ not checked | role holds CREATE DATABASE ON ACCOUNT WITH GRANT OPTION | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW GRANTS TO ROLE "<setup role>"` |
    | ⚪ not checked | role holds CREATE ROLE ON ACCOUNT WITH GRANT OPTION | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW GRANTS TO ROLE "<setup role>"` |
    | ⚪ not checked | role holds CREATE USER ON ACCOUNT WITH GRANT OPTION | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW GRANTS TO ROLE "<setup role>"` |
    | ⚪ not checked | role holds MANAGE GRANTS ON ACCOUNT WITH GRANT OPTION | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW GRANTS TO ROLE "<setup role>"` |
    | ⚪ not checked | role holds APPLY MASKING POLICY ON ACCOUNT WITH GRANT OPTION | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW GRANTS TO ROLE "<setup role>"` |
    | ⚪ not checked | role holds APPLY ROW ACCESS POLICY ON ACCOUNT WITH GRANT OPTION | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW GRANTS TO ROLE "<setup role>"` |
    | ⚪ not checked | the warehouse exists | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW WAREHOUSES LIKE 'IMMUTA_WH'` |
    | ⚪ not checked | the Immuta database does not exist yet | not checked: no credentials (the manual executor runs nothing); run this by hand<br>By hand: `SHOW DATABASES LIKE 'IMMUTA_DB'` |
    --- stderr
    "#);
}

#[test]
fn preflight_json_lists_every_check_with_its_verdict() {
    let out =
        missing("snowflake:CREATE USER").run(&["preflight", "c", "--target", "sf-prod", "--format", "json"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.stdout, @r#"
    {
      "failed": true,
      "connections": [
        {
          "key": "sf-prod",
          "technology": "Snowflake",
          "checks": [
            {
              "check": "immuta-reachable",
              "title": "Immuta answers and accepts the API key",
              "verdict": "pass"
            },
            {
              "check": "connection-api",
              "title": "the connection API is available",
              "verdict": "pass"
            },
            {
              "check": "immuta-permission",
              "title": "the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN",
              "verdict": "pass"
            },
            {
              "check": "connection-key-free",
              "title": "the connection key is free",
              "verdict": "pass"
            },
            {
              "check": "no-existing-integration",
              "title": "no integration exists on the host",
              "verdict": "pass"
            },
            {
              "check": "snowflake-privilege",
              "privilege": "CREATE_DATABASE",
              "title": "role holds CREATE DATABASE ON ACCOUNT WITH GRANT OPTION",
              "verdict": "pass"
            },
            {
              "check": "snowflake-privilege",
              "privilege": "CREATE_ROLE",
              "title": "role holds CREATE ROLE ON ACCOUNT WITH GRANT OPTION",
              "verdict": "pass"
            },
            {
              "check": "snowflake-privilege",
              "privilege": "CREATE_USER",
              "title": "role holds CREATE USER ON ACCOUNT WITH GRANT OPTION",
              "verdict": "fail",
              "why": "role ACCOUNTADMIN holds no CREATE USER ON ACCOUNT WITH GRANT OPTION, directly or through its roles",
              "fix": {
                "statement": "GRANT CREATE USER ON ACCOUNT TO ROLE \"ACCOUNTADMIN\" WITH GRANT OPTION;",
                "docs": "docs/preflight.md#snowflake (registration guide: \"Snowflake permissions for the user registering the connection\")"
              }
            },
            {
              "check": "snowflake-privilege",
              "privilege": "MANAGE_GRANTS",
              "title": "role holds MANAGE GRANTS ON ACCOUNT WITH GRANT OPTION",
              "verdict": "pass"
            },
            {
              "check": "snowflake-privilege",
              "privilege": "APPLY_MASKING_POLICY",
              "title": "role holds APPLY MASKING POLICY ON ACCOUNT WITH GRANT OPTION",
              "verdict": "pass"
            },
            {
              "check": "snowflake-privilege",
              "privilege": "APPLY_ROW_ACCESS_POLICY",
              "title": "role holds APPLY ROW ACCESS POLICY ON ACCOUNT WITH GRANT OPTION",
              "verdict": "pass"
            },
            {
              "check": "snowflake-warehouse",
              "title": "the warehouse exists",
              "verdict": "pass"
            },
            {
              "check": "snowflake-database-free",
              "title": "the Immuta database does not exist yet",
              "verdict": "pass"
            }
          ]
        }
      ]
    }
    "#);
}

#[test]
fn apply_stops_before_any_write_when_a_check_fails_and_proceeds_with_skip_preflight() {
    let env = missing("snowflake:CREATE USER");
    let out = env.run(&["apply", "c", "--auto-approve", "--target", "sf-prod"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("preflight failed for sf-prod; nothing was sent"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("GRANT CREATE USER ON ACCOUNT TO ROLE \"ACCOUNTADMIN\" WITH GRANT OPTION;"),
        "{}",
        out.stderr
    );
    let log = env.admin("GET", "/_emulator/requests", serde_json::Value::Null);
    let log = log.as_array().unwrap();
    // The checks were made (the log is not empty), and nothing but reads reached Immuta.
    assert!(log.iter().any(|r| r["path"] == "/integrations"), "{log:?}");
    let writes: Vec<&serde_json::Value> = log
        .iter()
        .filter(|r| r["method"] != "GET" && !r["path"].as_str().unwrap_or("").starts_with("/api/"))
        .filter(|r| r["path"] != "/data/object/search")
        .collect();
    assert!(writes.is_empty(), "writes before preflight passed: {writes:?}");

    let out = env.run(&[
        "apply",
        "c",
        "--auto-approve",
        "--target",
        "sf-prod",
        "--skip-preflight",
    ]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert_eq!(env.count_requests("POST", "/data/connection"), 1);
}

#[test]
fn plan_with_preflight_adds_the_checklist_and_exits_1_when_a_check_fails() {
    let env = missing("snowflake:CREATE USER");
    let out = env.run(&[
        "plan",
        "c",
        "--target",
        "sf-prod",
        "--preflight",
        "--color",
        "never",
    ]);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   sf-prod (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_DB"
          +   host: "acme-prod.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false

    Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

    Preflight: 1 connection(s), 1 failed, 12 passed, 0 not checked

    sf-prod (Snowflake)
      pass  Immuta answers and accepts the API key
      pass  the connection API is available
      pass  the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN
      pass  the connection key is free
      pass  no integration exists on the host
      pass  role holds CREATE DATABASE ON ACCOUNT WITH GRANT OPTION
      pass  role holds CREATE ROLE ON ACCOUNT WITH GRANT OPTION
      FAIL  role holds CREATE USER ON ACCOUNT WITH GRANT OPTION
            role ACCOUNTADMIN holds no CREATE USER ON ACCOUNT WITH GRANT OPTION, directly or through its roles
            fix:  GRANT CREATE USER ON ACCOUNT TO ROLE "ACCOUNTADMIN" WITH GRANT OPTION;
            docs: docs/preflight.md#snowflake (registration guide: "Snowflake permissions for the user registering the connection")
      pass  role holds MANAGE GRANTS ON ACCOUNT WITH GRANT OPTION
      pass  role holds APPLY MASKING POLICY ON ACCOUNT WITH GRANT OPTION
      pass  role holds APPLY ROW ACCESS POLICY ON ACCOUNT WITH GRANT OPTION
      pass  the warehouse exists
      pass  the Immuta database does not exist yet
    --- stderr
    "#);

    let out = env.run(&[
        "plan",
        "c",
        "--target",
        "sf-prod",
        "--preflight",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 1);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["preflight"]["failed"], true);
    assert_eq!(plan["preflight"]["connections"][0]["key"], "sf-prod");
    assert_eq!(plan["changes"][0]["key"], "sf-prod");

    // Without the flag the plan is as before: no checks, no field.
    let out = env.run(&["plan", "c", "--target", "sf-prod", "--format", "json"]);
    assert_eq!(out.code, 0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(plan.get("preflight").is_none());
}
