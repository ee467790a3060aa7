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
    insta::assert_snapshot!(env.snap(&["drift", "c.yaml"]), @r"
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

    // Restoring sf-a's status cascades to its children: apply refuses it unless allowed, and
    // sends nothing.
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "c.yaml"]), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + recreate dbx-b (Databricks)  [script, execute, test, register]
          # in the state but no longer in Immuta (deleted outside connctl)
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_b"
          +   httpPath: "/sql/1.0/warehouses/b"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-b.cloud.databricks.com"
      ~ update   sf-a (Snowflake)  [update connection → settings]
          # sets the connection inactive; Immuta applies that to its 4 child object(s) too; apply needs --allow-cascade
          -   settings.isActive: true  (drift)
          +   settings.isActive: false  (drift)
          -   warehouse: "UI_WH"  (drift)
          +   warehouse: "WH"  (drift)

    Plan: 1 to create, 1 to update, 0 to replace, 0 to delete, 2 drifted.
    Immuta: [URL]
    --- stderr
    error: refusing to change the status of a connection (sf-a): Immuta applies it to every child object
      = help: review the plan above, then pass --allow-cascade if that is intended; nothing was sent
    "#);
    assert_eq!(env.count_requests("PUT", "/data/settings/sf-a"), 0);
    assert_eq!(
        env.count_requests("POST", "/data/connection"),
        2,
        "only the first apply registered"
    );
    // Apply restores the desired values.
    let fix = env.run(&["apply", "--auto-approve", "--allow-cascade", "c.yaml"]);
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
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ? import   dbx-b (Databricks)
          # exists in Immuta but not in the state; adopt it with `connctl import c.yaml --key dbx-b` (apply never creates over it)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to import)
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn drift_json_counts_what_it_lists() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-a",
        serde_json::json!({"connection": {"warehouse": "UI_WH"}}),
    );
    let out = env.run(&["drift", "--format", "json", "c.yaml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let keys = |field: &str| -> Vec<String> {
        json[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                v.as_str()
                    .map_or_else(|| v["key"].as_str().unwrap().to_owned(), str::to_owned)
            })
            .collect()
    };
    assert_eq!(keys("changes"), ["sf-a"]);
    assert_eq!(keys("unchanged"), ["dbx-b"]);
    assert_eq!(json["summary"]["drifted"], 1);
    assert_eq!(json["summary"]["unchanged"], 1);
}

#[test]
fn status_without_immuta_shows_the_recorded_state_with_a_warning() {
    let mut env = TestEnv::new();
    env.write("c.yaml", SPEC);
    assert_eq!(env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]).code, 0);
    // The warning's first and last lines; the reason between them is the client's own message.
    let assert_warned = |stderr: &str, reason: &str| {
        assert!(
            stderr.starts_with("warning: live job states could not be read from Immuta: ")
                && stderr.contains(reason)
                && stderr.ends_with("  = help: JOB shows the states recorded in .connctl/state.json\n"),
            "{stderr}"
        );
    };
    // The tenant is down: the state is its own (a state of another tenant is refused before
    // anything is read), and nothing listens on its port.
    let state_path = env.path(".connctl/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let tenant = std::mem::replace(&mut state["tenant"], "http://127.0.0.1:1".into());
    std::fs::write(&state_path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    let unreachable = env.run(&["status", "--immuta-url", "http://127.0.0.1:1"]);
    assert_warned(&unreachable.stderr, "http://127.0.0.1:1");
    insta::assert_snapshot!(format!("exit: {}\n{}", unreachable.code, unreachable.stdout), @"
    exit: 0
    KEY                          TECHNOLOGY  STEP                LAST BULK ID                           JOB        IMMUTA
    dbx-b                        Databricks  registered          [UUID]   completed  unknown
    sf-a                         Snowflake   registered          [UUID]   completed  unknown
    Immuta: http://127.0.0.1:[PORT]
    ");
    state["tenant"] = tenant;
    std::fs::write(&state_path, serde_json::to_string_pretty(&state).unwrap()).unwrap();
    env.set_env("TEST_IMMUTA_KEY", "wrong-key");
    let refused = env.run(&["status", "--json"]);
    assert_warned(&refused.stderr, "401");
    insta::assert_snapshot!(format!("exit: {}\n{}", refused.code, refused.stdout), @r#"
    exit: 0
    [
      {
        "key": "dbx-b",
        "technology": "Databricks",
        "step": "registered",
        "protect": false,
        "bulkId": "[UUID]",
        "bulkOrigin": "register",
        "jobState": "completed",
        "immuta": "unknown",
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
        "immuta": "unknown",
        "pending": null,
        "cleanupScript": null
      }
    ]
    "#);
    insta::assert_snapshot!(refused.snapshot(), @r#"
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
        "immuta": "unknown",
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
        "immuta": "unknown",
        "pending": null,
        "cleanupScript": null
      }
    ]
    --- stderr
    warning: live job states could not be read from Immuta: Immuta rejected the API key (401 on POST /data/object/search)
      = help: check IMMUTA_API_KEY (or connctl.toml [immuta] api_key); generate a key on your Immuta profile page under "API Keys"
      = help: JOB shows the states recorded in .connctl/state.json
    "#);
    // The rejected key is never echoed.
    assert!(!refused.stderr.contains("wrong-key"), "{}", refused.stderr);
}
