//! Data objects as code (`objects:` under a connection, issue #17): validation, plan, apply,
//! drift and the cascade gate, against the emulator's object tree.

use crate::support::TestEnv;

const CONNECTION: &str = "version: 1
connections:
  - key: sf-prod
    technology: Snowflake
    host: acme.snowflakecomputing.com
    warehouse: WH
    database: IMMUTA_DB
    role: R
    auth: { type: userPassword, username: U, password: { env: SF_PASSWORD } }
";

#[test]
fn validate_names_a_bad_object_path_at_file_line_col() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        &format!(
            "{CONNECTION}    objects:\n      - path: SALES\n        active: true\n      - path: 'SALES/\"odd/name/T1'\n        active: false\n      - path: SALES/PUBLIC\n"
        ),
    );
    insta::assert_snapshot!(env.snap(&["validate", "c.yaml"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: object path `SALES/"odd/name/T1` has a quoted segment without its closing `"`
      --> c.yaml:13:15
       |
    13 |       - path: 'SALES/"odd/name/T1'
       |               ^^^^^^^^^^^^^^^^^^^^
       = help: segments are joined with `/`; write a segment holding `/` or `"`, or starting or ending with a space, in double quotes, with `""` for a literal quote: `DB/"odd/name"/T1`

    error: `objects[2]` sets neither `active` nor `activateNewChildren`
      --> c.yaml:15:15
       |
    15 |       - path: SALES/PUBLIC
       |               ^^^^^^^^^^^^
       = help: give at least one; an object connctl changes nothing on need not be listed
    error: 2 problem(s) found; nothing was planned, sent or written
    "#);
}

/// `sf-prod` with its objects at three levels (the emulator's registration finds `IMMUTA_DB`,
/// `IMMUTA_DB/PUBLIC` and its tables `CUSTOMERS` and `ORDERS`), plus `extra` entries.
fn spec(env: &TestEnv, db_active: bool, extra: &str) {
    env.write(
        "c.yaml",
        &format!(
            "{CONNECTION}    executor: snowflake
    objects:
      - path: IMMUTA_DB
        active: {db_active}
        activateNewChildren: false
      - path: IMMUTA_DB/PUBLIC
        activateNewChildren: true
      - path: IMMUTA_DB/PUBLIC/ORDERS
        active: false
{extra}"
        ),
    );
}

fn env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set_env("SF_PASSWORD", "pw-objects");
    env
}

/// A plan's object rows, from the first `~ activate` to the blank line after them.
fn object_rows(plan: &str) -> String {
    let rows: Vec<&str> = plan
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("~ activate"))
        .take_while(|l| !l.is_empty())
        .collect();
    rows.join("\n")
}

fn object_puts(env: &TestEnv) -> usize {
    crate::support::request_log(env)
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/data/settings/"))
        })
        .count()
}

#[test]
fn three_levels_plan_apply_then_no_change() {
    let env = env();
    spec(&env, true, "");
    insta::assert_snapshot!(env.snap(&["plan", "c.yaml"]), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   sf-prod (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "U"
          +   database: "IMMUTA_DB"
          +   host: "acme.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "R"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "WH"
          +   workspaces.enabled: false
          ~ activate   IMMUTA_DB  (cascades to child count unknown)
              # active: (unknown) → true (config)
              # activateNewChildren: (unknown) → false (config)
              # set after the connection's registration job completes (the object exists after its first crawl)
          ~ settings   IMMUTA_DB/PUBLIC
              # activateNewChildren: (unknown) → true (config)
              # set after the connection's registration job completes (the object exists after its first crawl)
          ~ deactivate IMMUTA_DB/PUBLIC/ORDERS  (cascades to child count unknown)
              # active: true → false (config)
              # `IMMUTA_DB`'s status change above reaches it first
              # set after the connection's registration job completes (the object exists after its first crawl)

    Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (3 data object(s) to change)
    Immuta: [URL]
    --- stderr
    "#);
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let tree = env.object(&["sf-prod", "IMMUTA_DB"]);
    insta::assert_snapshot!(serde_json::to_string_pretty(&tree).unwrap(), @r#"
    {
      "objectPath": [
        "sf-prod",
        "IMMUTA_DB"
      ],
      "state": "active",
      "activateNewChildren": false,
      "objects": [
        {
          "path": [
            "IMMUTA_DB",
            "PUBLIC"
          ],
          "state": "active",
          "activeOverride": false,
          "activateNewChildren": true,
          "activateNewChildrenOverride": true,
          "crawled": true
        },
        {
          "path": [
            "IMMUTA_DB",
            "PUBLIC",
            "CUSTOMERS"
          ],
          "state": "active",
          "activeOverride": false,
          "activateNewChildren": true,
          "activateNewChildrenOverride": null,
          "crawled": true
        },
        {
          "path": [
            "IMMUTA_DB",
            "PUBLIC",
            "ORDERS"
          ],
          "state": "inactive",
          "activeOverride": true,
          "activateNewChildren": true,
          "activateNewChildrenOverride": null,
          "crawled": true
        }
      ]
    }
    "#);
    // One PUT each, parents first.
    assert_eq!(object_puts(&env), 3);
    let state = env.state();
    let objects = &state["connections"]["sf-prod"]["objects"];
    assert_eq!(
        objects["IMMUTA_DB"]["applied"],
        serde_json::json!({"active": true, "activateNewChildren": false})
    );
    assert!(
        objects["IMMUTA_DB/PUBLIC/ORDERS"]["bulkId"].is_string(),
        "{objects}"
    );
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @"
    exit: 0
    --- stdout
    No changes. Immuta matches the configuration.
    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn a_ui_change_is_drift_and_apply_restores_it() {
    let env = env();
    spec(&env, true, "");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(env.snap(&["drift"]), @"
    exit: 0
    --- stdout
    No drift. Immuta matches what connctl last applied.
    Immuta: [URL]
    --- stderr
    ");
    env.set_object(
        &["sf-prod", "IMMUTA_DB"],
        serde_json::json!({"activateNewChildren": true}),
    );
    insta::assert_snapshot!(env.snap(&["drift"]), @"
    exit: 2
    --- stdout
    Changed in Immuta outside connctl (- Immuta now, + last applied, restored by apply):

      ~ objects  sf-prod
          ~ settings   IMMUTA_DB
              # activateNewChildren: true → false (drift)

    Drift: 0 connection(s) changed in Immuta outside connctl. 1 data object(s) changed in Immuta outside connctl.
    Immuta: [URL]
    --- stderr
    ");
    insta::assert_snapshot!(env.snap(&["plan", "--format", "markdown", "c.yaml"]), @"
    exit: 0
    --- stdout
    ### connctl plan
    Immuta: `[URL]`

    **Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 data object(s) to change)**

    | create | update | replace | delete | drifted | import | orphaned | unmanaged | unchanged |
    |---:|---:|---:|---:|---:|---:|---:|---:|---:|
    | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 1 |

    <b>~ objects</b> sf-prod

    - `~ settings   IMMUTA_DB`
      - activateNewChildren: true → false (drift)

    --- stderr
    ");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env.run(&["drift"]).code, 0);
    assert_eq!(
        env.object(&["sf-prod", "IMMUTA_DB"])["activateNewChildren"],
        serde_json::json!(false)
    );
}

#[test]
fn a_deactivation_shows_its_cascade_exits_3_and_is_gated() {
    let env = env();
    spec(&env, true, "");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let before = object_puts(&env);
    spec(&env, false, "");
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @"
    exit: 3
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ objects  sf-prod
          ~ deactivate IMMUTA_DB  (cascades to ≥ 3 child object(s) (a search's count))
              # active: true → false (config)
              # high-risk: Immuta stops governing it and every object below; apply needs --allow-cascade

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 data object(s) to change)
    Immuta: [URL]
    --- stderr
    ");
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "c.yaml"]), @"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ objects  sf-prod
          ~ deactivate IMMUTA_DB  (cascades to ≥ 3 child object(s) (a search's count))
              # active: true → false (config)
              # high-risk: Immuta stops governing it and every object below; apply needs --allow-cascade

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 data object(s) to change)
    Immuta: [URL]
    --- stderr
    error: refusing a high-risk change of data object(s) sf-prod/IMMUTA_DB: a deactivation, or an activation over children set differently, reaches every object below
      = help: review the plan above, then pass --allow-cascade if that is intended; nothing was sent
    ");
    assert_eq!(object_puts(&env), before, "nothing sent without --allow-cascade");
    let out = env.run(&[
        "apply",
        "--auto-approve",
        "--allow-cascade",
        "--wait",
        "c.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    insta::assert_snapshot!(env.normalize(&serde_json::to_string_pretty(&report["connections"]).unwrap()), @r#"
    [
      {
        "key": "sf-prod",
        "technology": "Snowflake",
        "action": "update",
        "result": "applied",
        "detail": "1 object(s) set",
        "step": "registered",
        "steps_done": [
          "object-settings"
        ],
        "steps_failed": [],
        "bulk_ids": [
          {
            "bulk_id": "[UUID]",
            "origin": "object-settings",
            "job_state": "completed"
          }
        ]
      }
    ]
    "#);
    assert_eq!(object_puts(&env), before + 1);
    assert_eq!(
        env.object(&["sf-prod", "IMMUTA_DB"])["state"],
        serde_json::json!("inactive")
    );
}

#[test]
fn a_listed_object_absent_in_immuta_is_missing() {
    let env = env();
    spec(&env, true, "");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    spec(
        &env,
        true,
        "      - path: IMMUTA_DB/PUBLIC/ORDRES\n        active: true\n",
    );
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @"
    exit: 2
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ objects  sf-prod
          ! missing    IMMUTA_DB/PUBLIC/ORDRES
              # listed in the YAML but not in Immuta: not crawled yet (`connctl crawl`), or a typo

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 data object(s) missing)
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn a_saved_plan_goes_stale_when_a_listed_object_changes() {
    let env = env();
    spec(&env, true, "");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    env.set_object(
        &["sf-prod", "IMMUTA_DB"],
        serde_json::json!({"activateNewChildren": true}),
    );
    assert_eq!(env.run(&["plan", "--out", "plan.json", "c.yaml"]).code, 0);
    env.set_object(
        &["sf-prod", "IMMUTA_DB", "PUBLIC"],
        serde_json::json!({"activateNewChildren": false}),
    );
    let before = object_puts(&env);
    let out = env.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("sf-prod objects"), "{}", out.stderr);
    assert_eq!(object_puts(&env), before, "a stale plan sends nothing");
}

#[test]
fn a_new_connections_object_reached_by_a_cascade_is_a_prediction_then_applied() {
    let env = env();
    env.write(
        "c.yaml",
        &format!(
            "{CONNECTION}    executor: snowflake
    objects:
      - path: IMMUTA_DB
        active: true
      - path: IMMUTA_DB/PUBLIC
        active: true
"
        ),
    );
    insta::assert_snapshot!(object_rows(&env.snap(&["plan", "c.yaml"])), @"
    ~ activate   IMMUTA_DB  (cascades to child count unknown)
        # active: (unknown) → true (config)
        # set after the connection's registration job completes (the object exists after its first crawl)
    = record     IMMUTA_DB/PUBLIC
        # expected to match (it cannot be read before registration); apply reads it after the registration job and sends only what differs
        # `IMMUTA_DB`'s status change above reaches it first
        # set after the connection's registration job completes (the object exists after its first crawl)
    ");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(env.object(&["sf-prod", "IMMUTA_DB", "PUBLIC"])["state"], "active");
    let out = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn an_activation_over_objects_set_by_hand_is_high_risk_and_gated() {
    let env = env();
    spec(&env, false, "");
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A person turns on a table the YAML does not list: an override below IMMUTA_DB.
    env.set_object(
        &["sf-prod", "IMMUTA_DB", "PUBLIC", "CUSTOMERS"],
        serde_json::json!({"isActive": true}),
    );
    let before = object_puts(&env);
    spec(&env, true, "");
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 3, "{}\n{}", plan.stdout, plan.stderr);
    let rows: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.contains("IMMUTA_DB  ") || l.contains("high-risk"))
        .map(str::trim)
        .collect();
    insta::assert_snapshot!(rows.join("\n"), @"
    ~ activate   IMMUTA_DB  (cascades to ≥ 3 child object(s) (a search's count))
    # high-risk: objects below were set differently by hand (hasDescendantsWithOverrides); the cascade overrides them; apply needs --allow-cascade
    ");
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("refusing a high-risk change of data object(s) sf-prod/IMMUTA_DB"),
        "{}",
        out.stderr
    );
    assert_eq!(object_puts(&env), before, "nothing sent without --allow-cascade");
}

#[test]
fn a_databricks_activation_carries_immutas_revoke_warning() {
    let env = env();
    env.write(
        "c.yaml",
        "version: 1
connections:
  - key: dbx-prod
    technology: Databricks
    workspaceUrl: dbc-objects.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/wobjects
    catalog: immuta_objects
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
    objects:
      - path: immuta_objects
        active: true
",
    );
    insta::assert_snapshot!(object_rows(&env.snap(&["plan", "c.yaml"])), @"
    ~ activate   immuta_objects  (cascades to child count unknown)
        # active: (unknown) → true (config)
        # set after the connection's registration job completes (the object exists after its first crawl)
        # warning: Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy
    ");
}
