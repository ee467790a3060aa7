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

const DATABRICKS: &str = "version: 1
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

fn env_with(missing: Vec<Prerequisite>, existing: Vec<String>) -> TestEnv {
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
fn failures(stdout: &str) -> String {
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

fn missing(what: &str) -> TestEnv {
    env_with(vec![what.parse().unwrap()], vec![])
}

#[test]
fn preflight_passes_everything_against_the_default_emulator() {
    let env = env_with(vec![], vec![]);
    let out = env.run(&["preflight", "c"]);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    Preflight: 2 connection(s), 0 failed, 20 passed, 0 not checked

    dbx-prod (Databricks)
      pass  Immuta answers and accepts the API key
      pass  the connection API is available
      pass  the connection key is free
      pass  the SQL warehouse exists and runs statements
      pass  a Unity Catalog metastore is attached
      pass  CREATE CATALOG is granted on the metastore
      pass  the catalog does not exist yet
      pass  system.access audit and lineage tables are readable

    sf-prod (Snowflake)
      pass  Immuta answers and accepts the API key
      pass  the connection API is available
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
