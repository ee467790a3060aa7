//! `connctl drift`: read-only, reports only what changed in Immuta outside connctl.

use crate::support::TestEnv;

const SPEC: &str = "version: 1
connections:
  - key: sf-a
    technology: Snowflake
    host: a.snowflakecomputing.com
    warehouse: WH
    database: DB_A
    role: R
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
  - key: dbx-b
    technology: Databricks
    workspaceUrl: dbc-b.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/b
    catalog: immuta_b
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";

#[test]
fn no_drift_then_drift_from_the_admin_api() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    let clean = env.run(&["drift", "c.yaml"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    insta::assert_snapshot!(clean.snapshot(), @r"
    exit: 0
    --- stdout
    No drift. Immuta matches what connctl last applied.
    Immuta: [URL]
    --- stderr
    ");

    let before = std::fs::read(env.path(".connctl/state.json")).unwrap();
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-a",
        serde_json::json!({"connection": {"warehouse": "UI_WH"}, "settings": {"isActive": true}}),
    );
    env.admin("DELETE", "/_emulator/connections/dbx-b", serde_json::Value::Null);
    let drift = env.run(&["drift", "c.yaml"]);
    assert_eq!(drift.code, 2);
    insta::assert_snapshot!(drift.snapshot());
    let md = env.run(&["drift", "--format", "markdown"]);
    assert_eq!(md.code, 2);
    insta::assert_snapshot!(md.snapshot());
    // Read-only: the state file is byte-identical and no lock was taken.
    assert_eq!(std::fs::read(env.path(".connctl/state.json")).unwrap(), before);
    assert!(!env.path(".connctl/state.lock").exists() || env.run(&["state", "list"]).code == 0);

    // Apply restores the desired values.
    let fix = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(fix.code, 0, "{}\n{}", fix.stdout, fix.stderr);
    assert_eq!(env.run(&["drift", "c.yaml"]).code, 0);
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn status_shows_step_bulk_id_and_job() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    assert_eq!(env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]).code, 0);
    let out = env.run(&["status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.snapshot());
    let rm = env.run(&["state", "rm", "dbx-b"]);
    assert_eq!(rm.code, 0);
    let list = env.run(&["state", "list"]);
    assert_eq!(list.stdout, "sf-a\tSnowflake\tregistered\n");
    // Forgotten, not deleted: Immuta still has it, so plan suggests an import.
    let plan = env.run(&["plan", "c.yaml"]);
    assert!(plan.stdout.contains("import   dbx-b"), "{}", plan.stdout);
}
