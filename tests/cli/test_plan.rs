//! `connctl plan`: every action row, in text, markdown and JSON, and the exit codes.

use crate::support::TestEnv;

const BASE: &str = "version: 1
connections:
  - key: sf-main
    technology: Snowflake
    host: acme.snowflakecomputing.com
    warehouse: WH
    database: IMMUTA_DB
    role: IMMUTA_ROLE
    executor: snowflake
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
    audit: { enabled: true }
  - key: dbx-main
    technology: Databricks
    workspaceUrl: dbc-1.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/w1
    catalog: immuta_main
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
  - key: sf-gone
    technology: Snowflake
    host: gone.snowflakecomputing.com
    warehouse: WH
    database: GONE_DB
    role: R
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
  - key: sf-orphan
    technology: Snowflake
    host: orphan.snowflakecomputing.com
    warehouse: WH
    database: ORPHAN_DB
    role: R
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
";

/// A world with every plan row: applied connections, then YAML edits, drift made through the
/// emulator, a deletion behind connctl's back, an unmanaged and an importable connection.
fn world() -> TestEnv {
    let mut env = TestEnv::new();
    env.write("c.yaml", BASE);
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // Config changes: an update (warehouse), a settings change, a rescript (audit), a secret rotation.
    let edited =
        BASE.replace(
            "warehouse: WH\n    database: IMMUTA_DB",
            "warehouse: WH2\n    database: IMMUTA_DB",
        )
        .replace(
            "    audit: { enabled: true }\n",
            "    audit: { enabled: false }\n    settings: { isActive: true }\n",
        )
        .replace(
            "catalog: immuta_main",
            "catalog: immuta_main\n    workspaceIds: [\"42\"]",
        )
        // sf-orphan leaves the YAML; a new one and an importable one arrive.
        .replace("  - key: sf-orphan", "  - key: sf-new")
        .replace(
            "host: orphan.snowflakecomputing.com",
            "host: new.snowflakecomputing.com",
        ) + "  - key: dbx-existing
    technology: Databricks
    workspaceUrl: dbc-2.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/w2
    catalog: immuta_existing
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";
    env.write("c.yaml", &edited);
    // A rotated secret.
    env.set_env("CONNCTL_TEST_SF_PASSWORD", "canary-rotated-password-7c9");
    // Drift: a person changes the role in the Immuta UI.
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-main",
        serde_json::json!({"connection": {"role": "HAND_EDITED"}}),
    );
    // Deleted behind connctl's back.
    env.admin(
        "DELETE",
        "/_emulator/connections/sf-gone",
        serde_json::Value::Null,
    );
    // Unmanaged and importable connections.
    for key in ["unmanaged-one", "dbx-existing"] {
        env.admin(
            "POST",
            "/_emulator/seed",
            serde_json::json!({"connections": [seed(key)]}),
        );
    }
    env
}

fn seed(key: &str) -> serde_json::Value {
    serde_json::json!({"connectionKey": key, "connection": {"technology": "Databricks", "hostname": "dbc-2.cloud.databricks.com", "port": 443, "httpPath": "/sql/1.0/warehouses/w2", "authenticationType": "token", "token": "t"}, "nativeIntegration": {"type": "Databricks", "autoBootstrap": false, "unityCatalog": true, "config": {"host": "dbc-2.cloud.databricks.com", "port": 443, "authenticationType": "token", "token": "t", "catalog": "immuta_existing", "audit": {"enabled": false}}}})
}

#[test]
fn every_row_text() {
    let env = world();
    let out = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    // 3: sf-main's `isActive` change cascades to its child objects, classed like a deletion.
    assert_eq!(out.code, 3, "{}", out.stderr);
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn every_row_markdown() {
    let env = world();
    let out = env.run(&["plan", "--format", "markdown", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn every_row_json() {
    let env = world();
    let out = env.run(&["plan", "--format", "json", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_json_snapshot!(stable_json(&out.stdout));
}

#[test]
fn prune_deletes_and_max_deletes_caps() {
    let env = world();
    let out = env.run(&[
        "plan",
        "--prune",
        "--detailed-exitcode",
        "--target",
        "sf-orphan",
        "c.yaml",
    ]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 3
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      - delete   sf-orphan (Snowflake)  [delete script, deregister, cleanup]
          # no longer in the YAML; --prune deletes it

    Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    ");
    let capped = env.run(&[
        "plan",
        "--prune",
        "--max-deletes",
        "0",
        "--target",
        "sf-orphan",
        "c.yaml",
    ]);
    assert_eq!(capped.code, 1);
    insta::assert_snapshot!(capped.snapshot(), @"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      - delete   sf-orphan (Snowflake)  [delete script, deregister, cleanup]
          # no longer in the YAML; --prune deletes it

    error: this plan deletes or replaces 1 connection(s), more than --max-deletes 0 allows; raise --max-deletes if that is intended
    Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    ");
    let applied = env.run(&[
        "apply",
        "--prune",
        "--auto-approve",
        "--target",
        "sf-orphan",
        "c.yaml",
    ]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(env.count_requests("DELETE", "/data/object/sf-orphan"), 1);
    assert!(env.state()["connections"].get("sf-orphan").is_none());
    // It left the YAML, so no executor knows where it lives: the cleanup script is saved.
    insta::assert_snapshot!(applied.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      - delete   sf-orphan (Snowflake)  [delete script, deregister, cleanup]
          # no longer in the YAML; --prune deletes it

    Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 drifted.
    Immuta: [URL]

      ✓ sf-orphan: deregistered; run the cleanup script saved at .connctl/scripts/sf-orphan.delete.sql

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    let saved = env.path(".connctl/scripts/sf-orphan.delete.sql");
    assert!(
        std::fs::read_to_string(&saved).unwrap().contains("DROP"),
        "a cleanup script"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn protected_connection_is_never_deleted() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        &BASE.replace("  - key: sf-orphan\n", "  - key: sf-orphan\n    protect: true\n"),
    );
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    let without = BASE.split("  - key: sf-orphan").next().unwrap().to_owned();
    env.write("c.yaml", &without);
    let out = env.run(&["apply", "--prune", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ! orphan   sf-orphan (Snowflake)
          # protected: left alone even with --prune (`connctl state unprotect` lifts it)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 orphaned)
    Immuta: [URL]
    --- stderr
    ");
    assert_eq!(env.count_requests("DELETE", "/data/object/sf-orphan"), 0);
    let un = env.run(&["state", "unprotect", "sf-orphan"]);
    assert_eq!(un.code, 0, "{}", un.stderr);
    let out = env.run(&["apply", "--prune", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env.count_requests("DELETE", "/data/object/sf-orphan"), 1);
}

#[test]
fn applying_the_changes_converges() {
    let env = world();
    let out = env.run(&["apply", "--auto-approve", "--allow-cascade", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let import = env.run(&["import", "c.yaml", "--key", "dbx-existing"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    // Only the orphan (left alone without --prune) and the unmanaged one remain.
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ! orphan   sf-orphan (Snowflake)
          # no longer in the YAML; left alone (use --prune to delete it)

    Unmanaged (in Immuta, never touched): unmanaged-one

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 orphaned, 1 unmanaged)
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn plan_from_state_alone() {
    let env = world();
    insta::assert_snapshot!(env.snap(&["plan", "--refresh=false", "c.yaml"]), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-existing (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_existing"
          +   httpPath: "/sql/1.0/warehouses/w2"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-2.cloud.databricks.com"
      ~ update   dbx-main (Databricks)  [edit script, execute, update integration]
          -   workspaceIds: (none)  (config)
          +   workspaceIds: ["42"]  (config)
      ~ update   sf-gone (Snowflake)  [update connection]
          -   auth.password: (sensitive)  (config)
          +   auth.password: (sensitive, changed)  (config)
      ~ update   sf-main (Snowflake)  [update connection → edit script, execute, update integration → settings]
          # sets the connection active; Immuta applies that to every child object (count not read) too; apply needs --allow-cascade
          -   audit.enabled: true  (config)
          +   audit.enabled: false  (config)
          -   auth.password: (sensitive)  (config)
          +   auth.password: (sensitive, changed)  (config)
          -   settings.isActive: false  (config)
          +   settings.isActive: true  (config)
          -   warehouse: "WH"  (config)
          +   warehouse: "WH2"  (config)
      + create   sf-new (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "SYS"
          +   database: "ORPHAN_DB"
          +   host: "new.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "R"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "WH"
          +   workspaces.enabled: false
      ! orphan   sf-orphan (Snowflake)
          # no longer in the YAML; left alone (use --prune to delete it)

    Note: planned from the state alone (--refresh=false); Immuta was not read.
    Plan: 2 to create, 3 to update, 0 to replace, 0 to delete, 0 drifted. (1 orphaned)
    Immuta: [URL]
    --- stderr
    "#);
    assert_eq!(
        env.count_requests("POST", "/data/object/search"),
        1,
        "only the apply in world() listed"
    );
}

#[test]
fn identity_change_is_a_replace() {
    let env = TestEnv::new();
    let one = BASE.split("  - key: dbx-main").next().unwrap().to_owned();
    env.write("c.yaml", &one);
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    env.write(
        "c.yaml",
        &one.replace("database: IMMUTA_DB", "database: IMMUTA_DB_V2"),
    );
    let out = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(out.code, 3, "a replace is destructive");
    insta::assert_snapshot!(out.snapshot());
    other_formats(&env, "replace");
    let applied = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(env.count_requests("DELETE", "/data/object/sf-main"), 1);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn interrupted_operation_is_a_resume() {
    let env = TestEnv::new();
    // No executor for Databricks: the manual one saves the script and the create waits.
    std::fs::write(
        env.path("connctl.toml"),
        format!(
            "[immuta]\nurl = \"{}\"\napi_key = {{ env = \"TEST_IMMUTA_KEY\" }}\n",
            env.url()
        ),
    )
    .unwrap();
    env.write(
        "c.yaml",
        "version: 1
connections:
  - key: dbx-main
    technology: Databricks
    workspaceUrl: dbc-1.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/w1
    catalog: immuta_main
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
",
    );
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    let out = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.snapshot());
    other_formats(&env, "resume");
}

/// A JSON plan with what differs between runs replaced.
fn stable_json(stdout: &str) -> serde_json::Value {
    let mut plan: serde_json::Value = serde_json::from_str(stdout).unwrap();
    plan["generated_at"] = "[TIME]".into();
    assert_eq!(plan["state"]["salt"].as_str().map(str::len), Some(32));
    plan["state"]["salt"] = "[SALT]".into();
    // How many writes the applies took depends on how steps were grouped into one write.
    assert!(plan["state"]["serial"].as_u64().is_some_and(|s| s > 0));
    plan["state"]["serial"] = "[SERIAL]".into();
    plan
}

/// The markdown and JSON renderings of the current plan, pinned beside the text one.
fn other_formats(env: &TestEnv, name: &str) {
    let md = env.run(&["plan", "--format", "markdown", "c.yaml"]);
    assert_eq!(md.code, 0, "{}", md.stderr);
    insta::assert_snapshot!(format!("{name}_markdown"), md.stdout);
    let json = env.run(&["plan", "--format", "json", "c.yaml"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    insta::assert_json_snapshot!(format!("{name}_json"), stable_json(&json.stdout));
}

#[test]
fn the_import_hint_is_a_command_that_runs() {
    let env = world();
    let plan = env.run(&["plan", "c.yaml"]);
    let hint = plan
        .stdout
        .split("adopt it with `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no import hint in:\n{}", plan.stdout));
    assert_eq!(hint, "connctl import c.yaml --key dbx-existing");
    let args: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let import = env.run(&args);
    assert_eq!(import.code, 0, "{}\n{}", import.stdout, import.stderr);
    assert_eq!(env.state()["connections"]["dbx-existing"]["step"], "registered");
}

#[test]
fn a_target_that_matches_nothing_is_an_error_naming_close_keys() {
    let env = TestEnv::new();
    env.write("c.yaml", BASE);
    insta::assert_snapshot!(env.snap(&["plan", "--target", "sf-mian", "c.yaml"]), @r"
    exit: 1
    --- stdout
    --- stderr
    error: --target `sf-mian` matches no connection in the YAML, the state or Immuta
      = help: did you mean `sf-main` or `sf-orphan`?
    ");
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "--target", "zzz*", "c.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: --target `zzz*` matches no connection in the YAML, the state or Immuta
      = help: run without --target to see every connection
    ");
    // A glob that matches plans as before.
    let some = env.run(&["plan", "--detailed-exitcode", "--target", "sf-*", "c.yaml"]);
    assert_eq!(some.code, 2, "{}", some.stderr);
}

#[test]
fn detailed_exitcode_is_2_when_the_only_actions_are_imports() {
    let env = TestEnv::new();
    env.write("c.yaml", BASE);
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    assert_eq!(env.run(&["state", "rm", "dbx-main"]).code, 0);
    insta::assert_snapshot!(env.snap(&["plan", "--detailed-exitcode", "c.yaml"]), @"
    exit: 2
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ? import   dbx-main (Databricks)
          # exists in Immuta but not in the state; adopt it with `connctl import c.yaml --key dbx-main` (apply never creates over it)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to import)
    Immuta: [URL]
    --- stderr
    ");
    // Once imported there is nothing left to do.
    assert_eq!(env.run(&["import", "c.yaml", "--key", "dbx-main"]).code, 0);
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

/// Issue 16: creates list their attributes in the markdown `<details>` block, and a plan of
/// many creates still stays under the comment budget and says how it was cut.
#[test]
fn markdown_creates_list_attributes_within_the_budget() {
    const N: usize = 400;
    let env = TestEnv::new();
    let mut yaml = String::from("version: 1\nconnections:\n");
    for i in 0..N {
        yaml.push_str(&format!(
            "  - key: sf-{i:03}
    technology: Snowflake
    host: acct{i:03}.snowflakecomputing.com
    warehouse: WH
    database: DB_{i:03}
    role: ROLE
    auth: {{ type: userPassword, username: SYS, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}
"
        ));
    }
    env.write("c.yaml", &yaml);
    let out = env.run(&["plan", "--refresh=false", "--format", "markdown", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let md = &out.stdout;
    assert!(md.chars().count() < 65_000, "{} characters", md.chars().count());
    assert!(md.contains(&format!("of {N} changes shown")), "{md}");
    let blocks: Vec<&str> = md.split("<details>").skip(1).collect();
    assert!(!blocks.is_empty());
    for block in &blocks {
        assert!(block.contains("+ auth.password: (sensitive)"), "{block}");
        assert!(block.contains("+ role: \"ROLE\""), "{block}");
    }
    assert!(md.contains("+ host: \"acct000.snowflakecomputing.com\""), "{md}");
    assert!(!md.contains("sha256:"), "no secret fingerprint in a plan");
}

/// Issue 16: `connctl show` prints a saved plan exactly as `plan` printed it, in every format,
/// without reading Immuta.
#[test]
fn show_prints_a_saved_plan_exactly_as_plan_did() {
    let env = world();
    for format in ["text", "markdown", "json"] {
        let file = format!("plan-{format}.json");
        let planned = env.run(&["plan", "--format", format, "--out", &file, "c.yaml"]);
        assert_eq!(planned.code, 0, "{}", planned.stderr);
        // `plan --out` adds one line saying where it saved the plan (text only).
        let original = match planned.stdout.split_once("Saved the plan to ") {
            Some((before, _)) => before.to_owned(),
            None => planned.stdout.clone(),
        };
        let requests = env.count_requests("GET", "/data/connection/sf-main");
        let shown = env.run(&["show", &file, "--format", format]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        assert_eq!(shown.stdout, original, "show --format {format}");
        assert_eq!(shown.stderr, "");
        assert_eq!(
            env.count_requests("GET", "/data/connection/sf-main"),
            requests,
            "show reads no Immuta"
        );
        if format == "text" {
            insta::assert_snapshot!("show_of_a_saved_plan_text", shown.stdout);
        }
    }
    insta::assert_snapshot!(env.snap(&["show", "c.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: c.yaml is not a connctl plan: expected value at line 1 column 1
    ");
}
