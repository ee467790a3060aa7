//! What a real tenant does that connctl must not get wrong (issue 11): settings updates carry
//! only what changed, a status change shows its cascade and is gated, `forceRecursiveCrawl` is
//! never a silent no-op, drift sees removals, failures, 404s and unmanaged connections, and one
//! Snowflake integration per host.

use serde_json::{Value, json};

use crate::support::TestEnv;

const SPEC: &str = "version: 1
connections:
  - key: sf-a
    technology: Snowflake
    host: a.snowflakecomputing.com
    warehouse: WH
    database: DB_A
    role: R
    settings: { isActive: false, activateNewChildren: true }
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
    audit: { enabled: true }
  - key: dbx-b
    technology: Databricks
    workspaceUrl: dbc-b.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/b
    catalog: immuta_b
    groupPattern: { deny: immuta_exempt }
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";

fn applied() -> TestEnv {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    env
}

fn emulator_state(env: &TestEnv) -> Value {
    env.admin("GET", "/_emulator/state", Value::Null)
}

/// The status of one child object, e.g. `DB_A/PUBLIC/ORDERS` of `sf-a`.
fn child_state(env: &TestEnv, key: &str, path: &str) -> String {
    let state = emulator_state(env);
    let conn = state["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connectionKey"] == key)
        .unwrap_or_else(|| panic!("{key} in {state}"))
        .clone();
    conn["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("{path} in {conn}"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_change_of_activate_new_children_alone_sends_no_is_active() {
    let env = applied();
    // A person enables one table in the UI; connctl must not switch it off again.
    env.admin(
        "PATCH",
        "/_emulator/objects/sf-a/DB_A/PUBLIC/ORDERS",
        json!({"active": true}),
    );
    env.write(
        "c.yaml",
        &SPEC.replace("activateNewChildren: true", "activateNewChildren: false"),
    );
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 2, "not a cascade: {}", plan.stdout);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 2
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ update   sf-a (Snowflake)  [settings]
          -   settings.activateNewChildren: true  (config)
          +   settings.activateNewChildren: false  (config)

    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    ");
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let bodies = emulator_state(&env)["settingsRequests"].clone();
    assert_eq!(
        bodies,
        json!([{"connectionKey": "sf-a", "body": {"settings": {"activateNewChildren": false}}}])
    );
    assert_eq!(child_state(&env, "sf-a", "DB_A/PUBLIC/ORDERS"), "active");
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn a_status_change_shows_its_cascade_exits_3_and_needs_allow_cascade() {
    let env = applied();
    env.write(
        "c.yaml",
        &SPEC.replace(
            "    catalog: immuta_b\n",
            "    catalog: immuta_b\n    settings: { isActive: true }\n",
        ),
    );
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 3, "{}", plan.stdout);
    insta::assert_snapshot!(plan.snapshot(), @r"
    exit: 3
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ update   dbx-b (Databricks)  [settings]
          # sets the connection active; Immuta applies that to its 4 child object(s) too; apply needs --allow-cascade
          # warning: Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy
          -   settings.isActive: false  (config)
          +   settings.isActive: true  (config)

    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    ");
    let json = env.run(&["plan", "--format", "json", "c.yaml"]);
    let plan_json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan_json["changes"][0]["risk"], "destructive");
    assert_eq!(plan_json["changes"][0]["cascade"]["child_objects"], 4);

    // Refused, and nothing sent, without --allow-cascade.
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "c.yaml"]), @"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ update   dbx-b (Databricks)  [settings]
          # sets the connection active; Immuta applies that to its 4 child object(s) too; apply needs --allow-cascade
          # warning: Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy
          -   settings.isActive: false  (config)
          +   settings.isActive: true  (config)

    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    error: refusing to change the status of a connection (dbx-b): Immuta applies it to every child object
      = help: review the plan above, then pass --allow-cascade if that is intended; nothing was sent
    ");
    assert_eq!(env.count_requests("PUT", "/data/settings/dbx-b"), 0);
    assert_eq!(child_state(&env, "dbx-b", "immuta_b/default/orders"), "inactive");

    let out = env.run(&["apply", "--auto-approve", "--allow-cascade", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        emulator_state(&env)["settingsRequests"],
        json!([{"connectionKey": "dbx-b", "body": {"settings": {"isActive": true}}}])
    );
    assert_eq!(child_state(&env, "dbx-b", "immuta_b/default/orders"), "active");
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn a_status_changed_in_the_ui_is_drift_read_from_the_documented_state() {
    let env = applied();
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-a",
        json!({"settings": {"isActive": true}}),
    );
    // The emulator answers as Immuta documents: `state`, and no `settings.isActive`.
    let drift = env.run(&["drift", "--format", "json"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    let plan: Value = serde_json::from_str(&drift.stdout).unwrap();
    let field = &plan["changes"][0]["fields"][0];
    assert_eq!(field["path"], "settings.isActive");
    assert_eq!(field["before"], true);
    assert_eq!(field["cause"], "drift");
    assert_eq!(plan["changes"][0]["cascade"]["active"], false);
}

#[test]
fn force_recursive_crawl_change_is_never_a_silent_no_op() {
    let env = applied();
    env.write(
        "c.yaml",
        &SPEC.replace(
            "    audit: { enabled: true }\n",
            "    audit: { enabled: true }\n    options: { forceRecursiveCrawl: false }\n",
        ),
    );
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ update   sf-a (Snowflake)  [state only]
          -   options.forceRecursiveCrawl: true  (config)
          +   options.forceRecursiveCrawl: false  (config)

    error: `sf-a`: options.forceRecursiveCrawl cannot change after registration: Immuta offers no call that updates it (PUT /data/settings carries settings only; POST /data/crawl/sf-a uses the flag for that one crawl and does not store it). Set it back to true in the YAML. To crawl inactive objects once, trigger a crawl in Immuta (POST /data/crawl/sf-a with {"forceRecursiveCrawl": true}). To change it for good, re-register the connection: take it out of the YAML, `connctl apply --prune`, then put it back and apply (this deletes and re-creates its data objects)
    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    "#);
    let apply = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    assert_eq!(env.count_requests("PUT", "/data/settings/sf-a"), 0);
}

#[test]
fn a_field_removed_in_immuta_is_drift() {
    let env = applied();
    let ids: Vec<String> = emulator_state(&env)["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["integrationId"].as_str().unwrap().to_owned())
        .collect();
    // dbx-b then sf-a, sorted by key.
    env.admin(
        "PATCH",
        &format!("/_emulator/integrations/{}", ids[0]),
        json!({"config": {"groupPattern": null}}),
    );
    env.admin(
        "PATCH",
        &format!("/_emulator/integrations/{}", ids[1]),
        json!({"config": {"audit": null}}),
    );
    let drift = env.run(&["drift"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    insta::assert_snapshot!(drift.snapshot(), @r#"
    exit: 2
    --- stdout
    Changed in Immuta outside connctl (- Immuta now, + last applied, restored by apply):

      ~ update   dbx-b (Databricks)  [edit script, execute, update integration]
          -   groupPattern.deny: (none)  (drift)
          +   groupPattern.deny: "immuta_exempt"  (drift)
      ~ update   sf-a (Snowflake)  [edit script, execute, update integration]
          -   audit.enabled: (none)  (drift)
          +   audit.enabled: true  (drift)

    Drift: 2 connection(s) changed in Immuta outside connctl.
    Immuta: [URL]
    --- stderr
    "#);
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @r#"
    exit: 2
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ update   dbx-b (Databricks)  [edit script, execute, update integration]
          -   groupPattern.deny: (none)  (drift)
          +   groupPattern.deny: "immuta_exempt"  (drift)
      ~ update   sf-a (Snowflake)  [edit script, execute, update integration]
          -   audit.enabled: (none)  (drift)
          +   audit.enabled: true  (drift)

    Plan: 0 to create, 2 to update, 0 to replace, 0 to delete, 2 drifted.
    Immuta: [URL]
    --- stderr
    "#);
    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    for key in ["dbx-b", "sf-a"] {
        assert!(
            status
                .stdout
                .lines()
                .any(|l| l.starts_with(key) && l.ends_with("drifted")),
            "{}",
            status.stdout
        );
    }
}

#[test]
fn a_failed_integration_is_a_health_problem_everywhere() {
    let env = applied();
    let ids: Vec<String> = emulator_state(&env)["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["integrationId"].as_str().unwrap().to_owned())
        .collect();
    env.admin(
        "PATCH",
        &format!("/_emulator/integrations/{}", ids[1]),
        json!({"status": "failed"}),
    );
    let drift = env.run(&["drift"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    // Registrations run concurrently, so integration ids vary between runs (filtered).
    insta::assert_snapshot!(drift.snapshot(), @r"
    exit: 2
    --- stdout
    No field drift, but Immuta reports problems:

    Health problems (apply cannot repair these in place; check them in Immuta):
      ! sf-a: integration failed: integration [ID] reports status `failed` in Immuta

    Drift: 0 connection(s) changed in Immuta outside connctl. 1 with health problems.
    Immuta: [URL]
    --- stderr
    ");
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @"
    exit: 2
    --- stdout
    Nothing to apply, but Immuta reports problems:

    Health problems (apply cannot repair these in place; check them in Immuta):
      ! sf-a: integration failed: integration [ID] reports status `failed` in Immuta

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 unhealthy)
    Immuta: [URL]
    --- stderr
    ");
    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("sf-a") && l.ends_with("integration failed")),
        "{}",
        status.stdout
    );
    let json = env.run(&["status", "--json"]);
    insta::assert_snapshot!(json.snapshot(), @r#"
    exit: 0
    --- stdout
    [
      {
        "key": "dbx-b",
        "technology": "Databricks",
        "step": "registered",
        "protect": false,
        "bulkId": "[UUID]",
        "bulkOrigin": "register",
        "jobState": "completed",
        "immuta": "ok",
        "pending": null,
        "cleanupScript": null
      },
      {
        "key": "sf-a",
        "technology": "Snowflake",
        "step": "registered",
        "protect": false,
        "bulkId": "[UUID]",
        "bulkOrigin": "register",
        "jobState": "completed",
        "immuta": "integration failed",
        "pending": null,
        "cleanupScript": null
      }
    ]
    --- stderr
    "#);
}

#[test]
fn a_404_on_the_integration_or_the_object_is_not_no_changes() {
    let env = applied();
    let ids: Vec<String> = emulator_state(&env)["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["integrationId"].as_str().unwrap().to_owned())
        .collect();
    for path in [
        format!("/integrations/{}", ids[0]),
        "/data/object/sf-a".to_owned(),
    ] {
        env.admin(
            "POST",
            "/_emulator/faults",
            json!({"method": "GET", "path": path, "status": 404, "count": 1000}),
        );
    }
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @"
    exit: 2
    --- stdout
    Nothing to apply, but Immuta reports problems:

    Health problems (apply cannot repair these in place; check them in Immuta):
      ! dbx-b: integration missing: integration [ID] backing it is gone from Immuta (GET /integrations/[ID]: 404)
      ! sf-a: object missing: its data object is gone from Immuta (GET /data/object/sf-a: 404)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (2 unhealthy)
    Immuta: [URL]
    --- stderr
    ");
    let drift = env.run(&["drift"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    insta::assert_snapshot!(drift.snapshot(), @"
    exit: 2
    --- stdout
    No field drift, but Immuta reports problems:

    Health problems (apply cannot repair these in place; check them in Immuta):
      ! dbx-b: integration missing: integration [ID] backing it is gone from Immuta (GET /integrations/[ID]: 404)
      ! sf-a: object missing: its data object is gone from Immuta (GET /data/object/sf-a: 404)

    Drift: 0 connection(s) changed in Immuta outside connctl. 2 with health problems.
    Immuta: [URL]
    --- stderr
    ");
    let status = env.run(&["status"]);
    insta::assert_snapshot!(status.snapshot(), @"
    exit: 0
    --- stdout
    KEY                          TECHNOLOGY  STEP                LAST BULK ID                           JOB        IMMUTA
    dbx-b                        Databricks  registered          [UUID]   completed  integration missing
    sf-a                         Snowflake   registered          [UUID]   completed  object missing
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn a_connection_deleted_in_immuta_is_not_shown_as_registered() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    env.admin("DELETE", "/_emulator/connections/dbx-b", Value::Null);
    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let row = status
        .stdout
        .lines()
        .find(|l| l.starts_with("dbx-b"))
        .unwrap()
        .to_owned();
    assert!(!row.contains("registered") && !row.contains("completed"), "{row}");
    assert!(
        row.contains("deleted in Immuta") && row.ends_with("missing"),
        "{row}"
    );
    insta::assert_snapshot!(env.snap(&["drift"]), @r#"
    exit: 2
    --- stdout
    Changed in Immuta outside connctl (- Immuta now, + last applied, restored by apply):

      + recreate dbx-b (Databricks)  [script, execute, test, register]
          # in the state but no longer in Immuta (deleted outside connctl)
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_b"
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/b"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-b.cloud.databricks.com"

    Drift: 1 connection(s) changed in Immuta outside connctl.
    Immuta: [URL]
    --- stderr
    "#);
}

#[test]
fn unmanaged_connections_show_in_drift_as_information() {
    let env = applied();
    env.admin(
        "POST",
        "/_emulator/seed",
        json!({"connections": [{"connectionKey": "by-hand", "connection": {"technology": "Databricks", "hostname": "dbc-9.cloud.databricks.com", "port": 443, "httpPath": "/sql/1.0/warehouses/9", "authenticationType": "token", "token": "t"}, "nativeIntegration": {"type": "Databricks", "autoBootstrap": false, "unityCatalog": true, "config": {"host": "dbc-9.cloud.databricks.com", "port": 443, "authenticationType": "token", "token": "t", "catalog": "c9", "audit": {"enabled": false}}}}]}),
    );
    let drift = env.run(&["drift"]);
    assert_eq!(drift.code, 0, "information only: {}", drift.stdout);
    insta::assert_snapshot!(drift.snapshot(), @r"
    exit: 0
    --- stdout
    No drift.

    Unmanaged (in Immuta, never touched): by-hand

    Drift: 0 connection(s) changed in Immuta outside connctl. 1 unmanaged (information only).
    Immuta: [URL]
    --- stderr
    ");
    let json = env.run(&["drift", "--format", "json"]);
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["unmanaged"], json!(["by-hand"]));
    assert_eq!(plan["summary"]["unmanaged"], 1);
    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("by-hand") && l.ends_with("unmanaged")),
        "{}",
        status.stdout
    );
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "information only: {}", plan.stdout);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    No changes. Immuta matches the configuration.
    Unmanaged (in Immuta, never touched): by-hand

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 unmanaged)
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn a_second_integration_on_a_snowflake_host_is_one_clear_error() {
    let env = TestEnv::new();
    // A Snowflake integration configured before connections, on sf-a's host.
    env.admin(
        "POST",
        "/_emulator/integrations",
        json!({"type": "Snowflake", "host": "a.snowflakecomputing.com"}),
    );
    env.write("c.yaml", SPEC);
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "--skip-preflight", "c.yaml"]), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-b (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_b"
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/b"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-b.cloud.databricks.com"
      + create   sf-a (Snowflake)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "SYS"
          +   database: "DB_A"
          +   host: "a.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "R"
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "WH"
          +   workspaces.enabled: false

    Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      ✓ dbx-b: registered, bulkId [UUID]
      ✗ sf-a: Immuta refused POST /data/connection/test (409): a Snowflake integration already exists on a.snowflakecomputing.com (id = 1), and Immuta allows one per host
      = help: a connection cannot be registered over an existing integration: upgrade integration [ID] to a connection with Immuta's connection upgrade manager, then adopt it with `connctl import`; or remove that integration in Immuta

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 1 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(
        env.count_requests("POST", "/data/connection"),
        1,
        "only dbx-b registered"
    );
}

#[test]
fn two_yaml_connections_on_one_snowflake_host_are_a_validation_error() {
    let env = TestEnv::new();
    let second = SPEC.replace("key: sf-a", "key: sf-c").replace("DB_A", "DB_C");
    let second = second.split("  - key: dbx-b").next().unwrap().to_owned();
    env.write("a.yaml", SPEC);
    env.write("b.yaml", &second);
    insta::assert_snapshot!(env.snap(&["validate", "a.yaml", "b.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: connection `sf-c` is on Snowflake host `a.snowflakecomputing.com`, which connection `sf-a` at a.yaml:3:5 already uses
     --> b.yaml:3:5
      = help: Immuta allows one Snowflake integration per host and each connection creates one; keep one connection per Snowflake account
    error: 1 problem(s) found; nothing was planned, sent or written
    ");
    let plan = env.run(&["plan", "a.yaml", "b.yaml"]);
    assert_eq!(plan.code, 1);
    assert_eq!(
        env.count_requests("POST", "/data/object/search"),
        0,
        "nothing sent"
    );
}
