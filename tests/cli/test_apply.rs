//! `connctl apply`: every auth variant end to end, no phantom diffs afterwards, manual
//! execution and resume, and that nothing registers twice.

use crate::support::TestEnv;

#[test]
fn all_six_variants_register_then_plan_is_empty() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&["apply", "--auto-approve", "--wait", "valid/all-variants"]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-m2m (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://dbc-5678.cloud.databricks.com/oidc/v1/token"
          +   auth.clientId: "6f1c2d3e-service-principal"
          +   auth.clientSecret: (sensitive)
          +   auth.scope: "all-apis"
          +   auth.type: "oAuthM2M"
          +   catalog: "_immuta_m2m"
          +   httpPath: "/sql/1.0/warehouses/def456"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-5678.cloud.databricks.com"
      + create   dbx-token (Databricks)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_token"
          +   enableNativeQueryParsing: true
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/abc123"
          +   jobConfig.jobClusterId: "0123-456789-abcdefgh"
          +   jobConfig.workspaceDirectoryPath: "/Workspace/Immuta"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceIds: ["1234567890","2345678901"]
          +   workspaceUrl: "dbc-1234.cloud.databricks.com"
      + create   sf-oauth-cert (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa9z8y7x6"
          +   auth.privateKey: (sensitive)
          +   auth.provider: "Okta"
          +   auth.publicCertificateThumbprint: "3A:4B:5C:6D:7E:8F"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OC"
          +   host: "acme-cert.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_OC_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-oauth-secret (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa1b2c3d4"
          +   auth.clientSecret: (sensitive)
          +   auth.provider: "Okta"
          +   auth.resource: "https://acme-oauth.snowflakecomputing.com"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OS"
          +   host: "acme-oauth.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_OS_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-password (Snowflake)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_PW_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_PW"
          +   host: "acme-password.snowflakecomputing.com"
          +   impersonation.enabled: true
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_PW_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   userRolePattern.exclude: ["ACCOUNTADMIN","SYSADMIN"]
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf_keypair (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.privateKey: (sensitive)
          +   auth.privateKeyPassword: (sensitive)
          +   auth.type: "keyPair"
          +   auth.username: "IMMUTA_KP_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_KP"
          +   host: "acme-keypair.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 8443
          +   role: "IMMUTA_KP_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: true

    Plan: 6 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      ✓ dbx-m2m: registered, bulkId [UUID] (completed)
      ✓ dbx-token: registered, bulkId [UUID] (completed)
      ✓ sf-oauth-cert: registered, bulkId [UUID] (completed)
      ✓ sf-oauth-secret: registered, bulkId [UUID] (completed)
      ✓ sf-password: registered, bulkId [UUID] (completed)
      ✓ sf_keypair: registered, bulkId [UUID] (completed)

    Apply: 6 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(env.count_requests("POST", "/data/connection"), 6);

    let again = env.run(&["plan", "--detailed-exitcode", "valid/all-variants"]);
    assert_eq!(again.code, 0, "phantom diff:\n{}", again.stdout);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);

    let state = env.state();
    for (key, c) in state["connections"].as_object().unwrap() {
        assert_eq!(c["step"], "registered", "{key}");
        let bulk = c["bulkIds"].as_array().unwrap();
        assert_eq!(bulk.len(), 1, "{key}");
        assert_eq!(bulk[0]["origin"], "register");
        assert_eq!(bulk[0]["jobState"], "completed", "{key}");
    }
    // No secret value reaches the state or the output.
    let state_text = std::fs::read_to_string(env.path(".connctl/state.json")).unwrap();
    for text in [state_text.as_str(), &out.stdout, &out.stderr, &again.stdout] {
        assert!(!text.contains("canary-"), "a secret leaked:\n{text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path(".connctl/state.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn manual_executor_waits_then_carries_on() {
    let env = TestEnv::new();
    env.write_settings("");
    std::fs::write(
        env.path("connctl.toml"),
        format!(
            "[immuta]\nurl = \"{}\"\napi_key = {{ env = \"TEST_IMMUTA_KEY\" }}\n",
            env.url()
        ),
    )
    .unwrap();
    env.fixture("valid/all-variants");
    let spec = env.write(
        "m.yaml",
        "version: 1\nconnections:\n  - key: dbx-manual\n    technology: Databricks\n    workspaceUrl: dbc-9.cloud.databricks.com\n    httpPath: /sql/1.0/warehouses/w9\n    catalog: immuta_manual\n    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }\n",
    );
    let spec = spec.to_str().unwrap();
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", spec]), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-manual (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_manual"
          +   httpPath: "/sql/1.0/warehouses/w9"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-9.cloud.databricks.com"

    Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      … dbx-manual: run the script saved at .connctl/scripts/dbx-manual.sql as a privileged user, then run `connctl apply` again

    Apply: 0 applied, 1 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    "#);
    let script_path = env.path(".connctl/scripts/dbx-manual.sql");
    let script = std::fs::read_to_string(&script_path).expect("script saved");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&script_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        env.state()["connections"]["dbx-manual"]["step"],
        "awaiting-execution"
    );

    // Not run yet: the next apply still waits, and registers nothing.
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", spec]), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   dbx-manual (Databricks)  [script, execute, test, register]
          # an interrupted `create` stopped at step `awaiting-execution`; apply checks Immuta and carries on

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]

      … dbx-manual: run the script saved at .connctl/scripts/dbx-manual.sql as a privileged user, then run `connctl apply` again

    Apply: 0 applied, 1 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    assert_eq!(env.count_requests("POST", "/data/connection"), 0);

    // A person runs it (here: statement by statement through the emulated Databricks API).
    run_databricks_script(&env, &script);
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", spec]), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   dbx-manual (Databricks)  [script, execute, test, register]
          # an interrupted `create` stopped at step `awaiting-execution`; apply checks Immuta and carries on

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]

      ✓ dbx-manual: registered, bulkId [UUID]

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    assert_eq!(env.count_requests("POST", "/data/connection"), 1);
    let plan = env.run(&["plan", "--detailed-exitcode", spec]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
}

pub(crate) fn run_databricks_script(env: &TestEnv, script: &str) {
    let client = reqwest::blocking::Client::new();
    for statement in script.split(";\n").map(str::trim).filter(|s| {
        !s.is_empty()
            && !s
                .lines()
                .all(|l| l.trim_start().starts_with("--") || l.trim().is_empty())
    }) {
        let resp: serde_json::Value = client
            .post(format!("{}/api/2.0/sql/statements", env.url()))
            .bearer_auth("person")
            .json(&serde_json::json!({"statement": statement, "warehouse_id": "w9", "wait_timeout": "0s"}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let id = resp["statement_id"].as_str().unwrap().to_owned();
        for _ in 0..200 {
            let s: serde_json::Value = client
                .get(format!("{}/api/2.0/sql/statements/{id}", env.url()))
                .bearer_auth("person")
                .send()
                .unwrap()
                .json()
                .unwrap();
            let state = s["status"]["state"].as_str().unwrap_or_default().to_owned();
            if state == "SUCCEEDED" {
                break;
            }
            assert!(state == "PENDING" || state == "RUNNING", "statement failed: {s}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

#[test]
fn apply_without_approval_off_a_terminal_is_refused() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&["apply", "valid/all-variants"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-m2m (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://dbc-5678.cloud.databricks.com/oidc/v1/token"
          +   auth.clientId: "6f1c2d3e-service-principal"
          +   auth.clientSecret: (sensitive)
          +   auth.scope: "all-apis"
          +   auth.type: "oAuthM2M"
          +   catalog: "_immuta_m2m"
          +   httpPath: "/sql/1.0/warehouses/def456"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-5678.cloud.databricks.com"
      + create   dbx-token (Databricks)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_token"
          +   enableNativeQueryParsing: true
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/abc123"
          +   jobConfig.jobClusterId: "0123-456789-abcdefgh"
          +   jobConfig.workspaceDirectoryPath: "/Workspace/Immuta"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceIds: ["1234567890","2345678901"]
          +   workspaceUrl: "dbc-1234.cloud.databricks.com"
      + create   sf-oauth-cert (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa9z8y7x6"
          +   auth.privateKey: (sensitive)
          +   auth.provider: "Okta"
          +   auth.publicCertificateThumbprint: "3A:4B:5C:6D:7E:8F"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OC"
          +   host: "acme-cert.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_OC_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-oauth-secret (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa1b2c3d4"
          +   auth.clientSecret: (sensitive)
          +   auth.provider: "Okta"
          +   auth.resource: "https://acme-oauth.snowflakecomputing.com"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OS"
          +   host: "acme-oauth.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_OS_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-password (Snowflake)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_PW_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_PW"
          +   host: "acme-password.snowflakecomputing.com"
          +   impersonation.enabled: true
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_PW_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   userRolePattern.exclude: ["ACCOUNTADMIN","SYSADMIN"]
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf_keypair (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.privateKey: (sensitive)
          +   auth.privateKeyPassword: (sensitive)
          +   auth.type: "keyPair"
          +   auth.username: "IMMUTA_KP_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_KP"
          +   host: "acme-keypair.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 8443
          +   role: "IMMUTA_KP_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: true

    Plan: 6 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    error: refusing to apply without confirmation in a non-interactive run
      = help: review the plan above, then pass --auto-approve (or apply a saved plan: `connctl plan --out plan.json`, then `connctl apply plan.json`)
    "#);
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
}

#[test]
fn saved_plan_records_serial_and_fingerprints_and_goes_stale() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&["plan", "--out", "plan.json", "valid/all-variants"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["state"]["serial"], 0);
    assert_eq!(plan["live_fingerprints"].as_object().unwrap().len(), 6);
    assert!(
        plan["live_fingerprints"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v == "absent")
    );

    // Someone registers one of them meanwhile: the saved plan is stale.
    env.admin(
        "POST",
        "/_emulator/seed",
        serde_json::json!({"connections": [{"connectionKey": "dbx-token", "connection": {"technology": "Databricks", "hostname": "x.cloud.databricks.com", "port": 443, "httpPath": "/sql/1.0/warehouses/x", "authenticationType": "token", "token": "t"}, "nativeIntegration": {"type": "Databricks", "autoBootstrap": false, "unityCatalog": true, "config": {"host": "x.cloud.databricks.com", "port": 443, "authenticationType": "token", "token": "t", "catalog": "c", "audit": {"enabled": false}}}}]}),
    );
    let stale = env.run(&["apply", "--auto-approve", "plan.json"]);
    assert_eq!(stale.code, 1, "{}", stale.stdout);
    insta::assert_snapshot!(stale.snapshot(), @"
    exit: 1
    --- stdout
    --- stderr
    error: stale plan: Immuta changed since the plan was made (dbx-token)
      = help: run `connctl plan --out` again
    ");
    assert_eq!(env.count_requests("POST", "/data/connection"), 0);
}

#[test]
fn saved_plan_applies_exactly() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&[
        "plan",
        "--out",
        "plan.json",
        "--target",
        "dbx-*",
        "valid/all-variants",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let applied = env.run(&["apply", "--auto-approve", "plan.json"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    insta::assert_snapshot!(applied.snapshot(), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-m2m (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://dbc-5678.cloud.databricks.com/oidc/v1/token"
          +   auth.clientId: "6f1c2d3e-service-principal"
          +   auth.clientSecret: (sensitive)
          +   auth.scope: "all-apis"
          +   auth.type: "oAuthM2M"
          +   catalog: "_immuta_m2m"
          +   httpPath: "/sql/1.0/warehouses/def456"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-5678.cloud.databricks.com"
      + create   dbx-token (Databricks)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_token"
          +   enableNativeQueryParsing: true
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/abc123"
          +   jobConfig.jobClusterId: "0123-456789-abcdefgh"
          +   jobConfig.workspaceDirectoryPath: "/Workspace/Immuta"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceIds: ["1234567890","2345678901"]
          +   workspaceUrl: "dbc-1234.cloud.databricks.com"

    Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      ✓ dbx-m2m: registered, bulkId [UUID]
      ✓ dbx-token: registered, bulkId [UUID]

    Apply: 2 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    // Applying the same saved plan again is refused: the state moved on.
    let again = env.run(&["apply", "--auto-approve", "plan.json"]);
    assert_eq!(again.code, 1);
    insta::assert_snapshot!(again.snapshot(), @"
    exit: 1
    --- stdout
    --- stderr
    error: stale plan: the state changed since the plan was made (serial 0 then, [SERIAL] now)
      = help: run `connctl plan --out` again
    ");
}

/// Issue 16: a saved plan was reviewed, so `apply PLANFILE` needs no `--auto-approve` (as in
/// Terraform), and a stale one is still refused before anything is sent.
#[test]
fn saved_plan_applies_without_a_prompt_and_stale_is_still_refused() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&[
        "plan",
        "--out",
        "plan.json",
        "--target",
        "dbx-*",
        "valid/all-variants",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Not a terminal, no --auto-approve: applied all the same.
    let applied = env.run(&["apply", "plan.json"]);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    insta::assert_snapshot!(applied.snapshot(), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-m2m (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://dbc-5678.cloud.databricks.com/oidc/v1/token"
          +   auth.clientId: "6f1c2d3e-service-principal"
          +   auth.clientSecret: (sensitive)
          +   auth.scope: "all-apis"
          +   auth.type: "oAuthM2M"
          +   catalog: "_immuta_m2m"
          +   httpPath: "/sql/1.0/warehouses/def456"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-5678.cloud.databricks.com"
      + create   dbx-token (Databricks)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_token"
          +   enableNativeQueryParsing: true
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/abc123"
          +   jobConfig.jobClusterId: "0123-456789-abcdefgh"
          +   jobConfig.workspaceDirectoryPath: "/Workspace/Immuta"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceIds: ["1234567890","2345678901"]
          +   workspaceUrl: "dbc-1234.cloud.databricks.com"

    Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      ✓ dbx-m2m: registered, bulkId [UUID]
      ✓ dbx-token: registered, bulkId [UUID]

    Apply: 2 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    let again = env.run(&["apply", "plan.json"]);
    assert_eq!(again.code, 1);
    insta::assert_snapshot!(again.snapshot(), @"
    exit: 1
    --- stdout
    --- stderr
    error: stale plan: the state changed since the plan was made (serial 0 then, [SERIAL] now)
      = help: run `connctl plan --out` again
    ");
    assert_eq!(env.count_requests("POST", "/data/connection"), 2, "nothing sent");
    // Planning from YAML still asks for --auto-approve off a terminal.
    insta::assert_snapshot!(env.snap(&["apply", "valid/all-variants"]), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   sf-oauth-cert (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa9z8y7x6"
          +   auth.privateKey: (sensitive)
          +   auth.provider: "Okta"
          +   auth.publicCertificateThumbprint: "3A:4B:5C:6D:7E:8F"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OC"
          +   host: "acme-cert.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_OC_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-oauth-secret (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa1b2c3d4"
          +   auth.clientSecret: (sensitive)
          +   auth.provider: "Okta"
          +   auth.resource: "https://acme-oauth.snowflakecomputing.com"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OS"
          +   host: "acme-oauth.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_OS_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-password (Snowflake)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_PW_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_PW"
          +   host: "acme-password.snowflakecomputing.com"
          +   impersonation.enabled: true
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_PW_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   userRolePattern.exclude: ["ACCOUNTADMIN","SYSADMIN"]
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf_keypair (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.privateKey: (sensitive)
          +   auth.privateKeyPassword: (sensitive)
          +   auth.type: "keyPair"
          +   auth.username: "IMMUTA_KP_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_KP"
          +   host: "acme-keypair.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 8443
          +   role: "IMMUTA_KP_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: true

    Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    --- stderr
    error: refusing to apply without confirmation in a non-interactive run
      = help: review the plan above, then pass --auto-approve (or apply a saved plan: `connctl plan --out plan.json`, then `connctl apply plan.json`)
    "#);
}

#[test]
fn export_writes_yaml_that_validates_and_imports() {
    let mut env = TestEnv::new();
    env.fixture("valid/all-variants");
    assert_eq!(
        env.run(&["apply", "--auto-approve", "valid/all-variants"]).code,
        0
    );
    let out = env.run(&["export", "--out", "exported.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let yaml = std::fs::read_to_string(env.path("exported.yaml")).unwrap();
    assert!(
        !yaml.contains("canary-"),
        "a secret leaked into the export:\n{yaml}"
    );
    assert_eq!(yaml.matches("- key: ").count(), 6, "{yaml}");
    let check = env.run(&["validate", "exported.yaml"]);
    assert_eq!(
        check.code, 0,
        "exported YAML must validate:\n{}\n{yaml}",
        check.stderr
    );
    insta::assert_snapshot!(yaml);
    // Never overwrites.
    assert_eq!(env.run(&["export", "--out", "exported.yaml"]).code, 1);

    // Forget one connection, then adopt it again from the export.
    assert_eq!(env.run(&["state", "rm", "dbx-token"]).code, 0);
    env.set_env("DBX_TOKEN_TOKEN", "canary-adopted-token-7d1");
    let import = env.run(&["import", "exported.yaml", "--key", "dbx-token"]);
    assert_eq!(import.code, 0, "{}", import.stderr);
    assert_eq!(env.state()["connections"]["dbx-token"]["step"], "registered");
    let plan = env.run(&[
        "plan",
        "--detailed-exitcode",
        "--target",
        "dbx-token",
        "exported.yaml",
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
}

#[test]
fn one_failing_connection_does_not_stop_the_others() {
    let env = TestEnv::new();
    // `executor: command` with a command that fails for one connection only.
    env.write_settings("");
    let settings = std::fs::read_to_string(env.path("connctl.toml")).unwrap();
    let settings = settings.replace(
        "[executor.command]\nkind = \"command\"\ncommand = [",
        "[executor.command]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"cat > /dev/null; echo 'warehouse said no' >&2; exit 7\"]\n# was: [",
    );
    std::fs::write(env.path("connctl.toml"), settings).unwrap();
    let mut spec = String::from("version: 1\nconnections:\n");
    for i in 0..4 {
        spec.push_str(&format!(
            "  - key: dbx-{i}\n    technology: Databricks\n    workspaceUrl: dbc-{i}.cloud.databricks.com\n    httpPath: /sql/1.0/warehouses/w{i}\n    catalog: immuta_{i}\n    auth: {{ type: token, token: {{ env: CONNCTL_TEST_DBX_TOKEN }} }}\n{}",
            if i == 2 { "    executor: command\n" } else { "" }
        ));
    }
    env.write("c.yaml", &spec);
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "c.yaml"]), @r#"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-0 (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_0"
          +   httpPath: "/sql/1.0/warehouses/w0"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-0.cloud.databricks.com"
      + create   dbx-1 (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_1"
          +   httpPath: "/sql/1.0/warehouses/w1"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-1.cloud.databricks.com"
      + create   dbx-2 (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_2"
          +   httpPath: "/sql/1.0/warehouses/w2"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-2.cloud.databricks.com"
      + create   dbx-3 (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_3"
          +   httpPath: "/sql/1.0/warehouses/w3"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-3.cloud.databricks.com"

    Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      ✓ dbx-0: registered, bulkId [UUID]
      ✓ dbx-1: registered, bulkId [UUID]
      ✗ dbx-2: executing the create script failed: the executor command `sh` failed (exit code 7); the script may be partly applied: fix the cause and run again; its last lines of stderr:
    warehouse said no
      ✓ dbx-3: registered, bulkId [UUID]

    Apply: 3 applied, 0 awaiting execution, 0 skipped, 1 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(env.count_requests("POST", "/data/connection"), 3);
    // The failed one is where it stopped, and the next plan says so.
    let plan = env.run(&["plan", "c.yaml"]);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   dbx-2 (Databricks)  [script, execute, test, register]
          # an interrupted `create` stopped at step `scripted`; apply checks Immuta and carries on

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]
    --- stderr
    ");
}

#[test]
fn an_update_reports_each_step_once() {
    let env = TestEnv::new();
    let spec = "version: 1
connections:
  - key: dbx-u
    technology: Databricks
    workspaceUrl: dbc-u.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/u
    catalog: immuta_u
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";
    env.write("c.yaml", spec);
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    env.write("c.yaml", &spec.replace("warehouses/u", "warehouses/u2"));
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // Off a terminal each line leads with the time since apply started (CI logs have none),
    // and a finished connection says how many of how many are done.
    assert!(
        out.stderr
            .lines()
            .all(|l| l.starts_with('[') && l[1..].trim_start().as_bytes()[0].is_ascii_digit()),
        "{}",
        out.stderr
    );
    insta::with_settings!({filters => vec![(r"(?m)^\[ *\d+\.\ds\] ", "[T] ")]}, {
        insta::assert_snapshot!(out.stderr.lines().map(|l| format!("{l}\n")).collect::<String>(), @r"
        [T] dbx-u: update
        [T] dbx-u: update-connection
        [T] dbx-u: done (connection updated) [1/1]
        ");
    });
}

#[cfg(unix)]
#[test]
fn a_pruned_entrys_cleanup_script_is_saved_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let spec = "version: 1
connections:
  - key: dbx-p
    technology: Databricks
    workspaceUrl: dbc-p.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/p
    catalog: immuta_p
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";
    env.write("c.yaml", spec);
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    env.write("c.yaml", "version: 1\nconnections: []\n");
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "--prune", "c.yaml"]), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      - delete   dbx-p (Databricks)  [delete script, deregister, cleanup]
          # no longer in the YAML; --prune deletes it

    Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 drifted.
    Immuta: [URL]

      ✓ dbx-p: deregistered; run the cleanup script saved at .connctl/scripts/dbx-p.delete.sql

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    let mode = |p: &str| std::fs::metadata(env.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(".connctl/scripts"), 0o700);
    assert_eq!(mode(".connctl/scripts/dbx-p.delete.sql"), 0o600);
}

/// The apply report's schema, as documented (`docs/apply-json.schema.json`).
fn apply_report_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(crate::support::repo().join("docs/apply-json.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("the schema compiles")
}

/// Parses standard output as exactly one JSON document and checks it against the schema.
fn apply_report(stdout: &str) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    let validator = apply_report_validator();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
    doc
}

/// Issue 16: `apply --format json` writes one versioned document to stdout — each
/// connection's outcome, steps done, bulkIds and job states — and the human text to stderr.
#[test]
fn apply_json_is_one_document_that_matches_its_schema() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&[
        "apply",
        "--auto-approve",
        "--wait",
        "--format",
        "json",
        "valid/all-variants",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let doc = apply_report(&out.stdout);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["result"], "applied");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["summary"]["applied"], 6);
    let connections = doc["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 6);
    let state = env.state();
    for c in connections {
        let key = c["key"].as_str().unwrap();
        assert_eq!(c["action"], "create", "{key}");
        assert_eq!(c["result"], "applied", "{key}");
        assert_eq!(c["step"], "registered", "{key}");
        let steps: Vec<&str> = c["steps_done"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(steps, ["script", "execute", "test", "register"], "{key}");
        // The bulkId and job state are the ones the state recorded (the test output shows
        // every UUID as `[UUID]`).
        let recorded = state["connections"][key]["bulkIds"][0]["bulkId"]
            .as_str()
            .unwrap();
        assert_eq!(c["bulk_ids"].as_array().unwrap().len(), 1, "{key}");
        assert_eq!(c["bulk_ids"][0]["bulk_id"], env.normalize(recorded), "{key}");
        assert_eq!(c["bulk_ids"][0]["origin"], "register", "{key}");
        assert_eq!(c["bulk_ids"][0]["job_state"], "completed", "{key}");
    }
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 0
    --- stdout
    {
      "format_version": 1,
      "result": "applied",
      "exit_code": 0,
      "signal": null,
      "summary": {
        "applied": 6,
        "awaiting_execution": 0,
        "skipped": 0,
        "failed": 0,
        "interrupted": 0
      },
      "errors": [],
      "connections": [
        {
          "key": "dbx-m2m",
          "technology": "Databricks",
          "action": "create",
          "result": "applied",
          "detail": "registered, bulkId [UUID] (completed)",
          "step": "registered",
          "steps_done": [
            "script",
            "execute",
            "test",
            "register"
          ],
          "steps_failed": [],
          "bulk_ids": [
            {
              "bulk_id": "[UUID]",
              "origin": "register",
              "job_state": "completed"
            }
          ]
        },
        {
          "key": "dbx-token",
          "technology": "Databricks",
          "action": "create",
          "result": "applied",
          "detail": "registered, bulkId [UUID] (completed)",
          "step": "registered",
          "steps_done": [
            "script",
            "execute",
            "test",
            "register"
          ],
          "steps_failed": [],
          "bulk_ids": [
            {
              "bulk_id": "[UUID]",
              "origin": "register",
              "job_state": "completed"
            }
          ]
        },
        {
          "key": "sf-oauth-cert",
          "technology": "Snowflake",
          "action": "create",
          "result": "applied",
          "detail": "registered, bulkId [UUID] (completed)",
          "step": "registered",
          "steps_done": [
            "script",
            "execute",
            "test",
            "register"
          ],
          "steps_failed": [],
          "bulk_ids": [
            {
              "bulk_id": "[UUID]",
              "origin": "register",
              "job_state": "completed"
            }
          ]
        },
        {
          "key": "sf-oauth-secret",
          "technology": "Snowflake",
          "action": "create",
          "result": "applied",
          "detail": "registered, bulkId [UUID] (completed)",
          "step": "registered",
          "steps_done": [
            "script",
            "execute",
            "test",
            "register"
          ],
          "steps_failed": [],
          "bulk_ids": [
            {
              "bulk_id": "[UUID]",
              "origin": "register",
              "job_state": "completed"
            }
          ]
        },
        {
          "key": "sf-password",
          "technology": "Snowflake",
          "action": "create",
          "result": "applied",
          "detail": "registered, bulkId [UUID] (completed)",
          "step": "registered",
          "steps_done": [
            "script",
            "execute",
            "test",
            "register"
          ],
          "steps_failed": [],
          "bulk_ids": [
            {
              "bulk_id": "[UUID]",
              "origin": "register",
              "job_state": "completed"
            }
          ]
        },
        {
          "key": "sf_keypair",
          "technology": "Snowflake",
          "action": "create",
          "result": "applied",
          "detail": "registered, bulkId [UUID] (completed)",
          "step": "registered",
          "steps_done": [
            "script",
            "execute",
            "test",
            "register"
          ],
          "steps_failed": [],
          "bulk_ids": [
            {
              "bulk_id": "[UUID]",
              "origin": "register",
              "job_state": "completed"
            }
          ]
        }
      ]
    }
    --- stderr
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-m2m (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://dbc-5678.cloud.databricks.com/oidc/v1/token"
          +   auth.clientId: "6f1c2d3e-service-principal"
          +   auth.clientSecret: (sensitive)
          +   auth.scope: "all-apis"
          +   auth.type: "oAuthM2M"
          +   catalog: "_immuta_m2m"
          +   httpPath: "/sql/1.0/warehouses/def456"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-5678.cloud.databricks.com"
      + create   dbx-token (Databricks)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_token"
          +   enableNativeQueryParsing: true
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/abc123"
          +   jobConfig.jobClusterId: "0123-456789-abcdefgh"
          +   jobConfig.workspaceDirectoryPath: "/Workspace/Immuta"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceIds: ["1234567890","2345678901"]
          +   workspaceUrl: "dbc-1234.cloud.databricks.com"
      + create   sf-oauth-cert (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa9z8y7x6"
          +   auth.privateKey: (sensitive)
          +   auth.provider: "Okta"
          +   auth.publicCertificateThumbprint: "3A:4B:5C:6D:7E:8F"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OC"
          +   host: "acme-cert.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_OC_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-oauth-secret (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa1b2c3d4"
          +   auth.clientSecret: (sensitive)
          +   auth.provider: "Okta"
          +   auth.resource: "https://acme-oauth.snowflakecomputing.com"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OS"
          +   host: "acme-oauth.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_OS_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-password (Snowflake)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_PW_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_PW"
          +   host: "acme-password.snowflakecomputing.com"
          +   impersonation.enabled: true
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_PW_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   userRolePattern.exclude: ["ACCOUNTADMIN","SYSADMIN"]
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf_keypair (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.privateKey: (sensitive)
          +   auth.privateKeyPassword: (sensitive)
          +   auth.type: "keyPair"
          +   auth.username: "IMMUTA_KP_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_KP"
          +   host: "acme-keypair.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 8443
          +   role: "IMMUTA_KP_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: true

    Plan: 6 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    [progress]

      ✓ dbx-m2m: registered, bulkId [UUID] (completed)
      ✓ dbx-token: registered, bulkId [UUID] (completed)
      ✓ sf-oauth-cert: registered, bulkId [UUID] (completed)
      ✓ sf-oauth-secret: registered, bulkId [UUID] (completed)
      ✓ sf-password: registered, bulkId [UUID] (completed)
      ✓ sf_keypair: registered, bulkId [UUID] (completed)

    Apply: 6 applied, 0 awaiting execution, 0 skipped, 0 failed.
    "#);

    // Nothing to do: still one document.
    let again = env.run(&[
        "apply",
        "--auto-approve",
        "--format",
        "json",
        "valid/all-variants",
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let doc = apply_report(&again.stdout);
    assert_eq!(doc["result"], "no-changes");
    assert_eq!(doc["connections"], serde_json::json!([]));
}

/// A refused apply (no `--auto-approve` off a terminal) still writes one document that says why.
#[test]
fn apply_json_of_a_refusal_says_why_and_sends_nothing() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&["apply", "--format", "json", "valid/all-variants"]);
    assert_eq!(out.code, 1);
    let doc = apply_report(&out.stdout);
    assert_eq!(doc["result"], "refused");
    assert_eq!(doc["exit_code"], 1);
    assert!(
        doc["errors"][0].as_str().unwrap().contains("--auto-approve"),
        "{doc:#}"
    );
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 1
    --- stdout
    {
      "format_version": 1,
      "result": "refused",
      "exit_code": 1,
      "signal": null,
      "summary": {
        "applied": 0,
        "awaiting_execution": 0,
        "skipped": 0,
        "failed": 0,
        "interrupted": 0
      },
      "errors": [
        "refusing to apply without confirmation in a non-interactive run\n  = help: review the plan above, then pass --auto-approve (or apply a saved plan: `connctl plan --out plan.json`, then `connctl apply plan.json`)"
      ],
      "connections": []
    }
    --- stderr
    connctl will take these actions (- Immuta now, + desired):

      + create   dbx-m2m (Databricks)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://dbc-5678.cloud.databricks.com/oidc/v1/token"
          +   auth.clientId: "6f1c2d3e-service-principal"
          +   auth.clientSecret: (sensitive)
          +   auth.scope: "all-apis"
          +   auth.type: "oAuthM2M"
          +   catalog: "_immuta_m2m"
          +   httpPath: "/sql/1.0/warehouses/def456"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.activateNewChildren: true
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceUrl: "dbc-5678.cloud.databricks.com"
      + create   dbx-token (Databricks)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.token: (sensitive)
          +   auth.type: "token"
          +   catalog: "immuta_token"
          +   enableNativeQueryParsing: true
          +   groupPattern.deny: "immuta_exempt"
          +   httpPath: "/sql/1.0/warehouses/abc123"
          +   jobConfig.jobClusterId: "0123-456789-abcdefgh"
          +   jobConfig.workspaceDirectoryPath: "/Workspace/Immuta"
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   settings.isActive: false
          +   technology: "Databricks"
          +   workspaceIds: ["1234567890","2345678901"]
          +   workspaceUrl: "dbc-1234.cloud.databricks.com"
      + create   sf-oauth-cert (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa9z8y7x6"
          +   auth.privateKey: (sensitive)
          +   auth.provider: "Okta"
          +   auth.publicCertificateThumbprint: "3A:4B:5C:6D:7E:8F"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OC"
          +   host: "acme-cert.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_OC_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-oauth-secret (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.authorityUrl: "https://acme.okta.com/oauth2/default/v1/token"
          +   auth.clientId: "0oa1b2c3d4"
          +   auth.clientSecret: (sensitive)
          +   auth.provider: "Okta"
          +   auth.resource: "https://acme-oauth.snowflakecomputing.com"
          +   auth.type: "oAuthClientCredentials"
          +   database: "IMMUTA_OS"
          +   host: "acme-oauth.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_OS_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf-password (Snowflake)  [script, execute, test, register]
          +   audit.enabled: true
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_PW_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_PW"
          +   host: "acme-password.snowflakecomputing.com"
          +   impersonation.enabled: true
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: false
          +   port: 443
          +   role: "IMMUTA_PW_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: true
          +   technology: "Snowflake"
          +   userRolePattern.exclude: ["ACCOUNTADMIN","SYSADMIN"]
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: false
      + create   sf_keypair (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.privateKey: (sensitive)
          +   auth.privateKeyPassword: (sensitive)
          +   auth.type: "keyPair"
          +   auth.username: "IMMUTA_KP_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_KP"
          +   host: "acme-keypair.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 8443
          +   role: "IMMUTA_KP_SYSTEM"
          +   settings.activateNewChildren: false
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "IMMUTA_WH"
          +   workspaces.enabled: true

    Plan: 6 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    error: refusing to apply without confirmation in a non-interactive run
      = help: review the plan above, then pass --auto-approve (or apply a saved plan: `connctl plan --out plan.json`, then `connctl apply plan.json`)
    "#);
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
}

#[test]
fn a_registration_job_that_does_not_complete_fails_the_awaited_apply_and_keeps_the_connection() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        "version: 1
connections:
  - key: sf-job
    technology: Snowflake
    host: job.snowflakecomputing.com
    warehouse: WH
    database: DB
    role: R
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
",
    );
    env.admin(
        "POST",
        "/_emulator/jobs/end-next",
        serde_json::json!({"origin": "register", "state": "cancelled"}),
    );
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let error = out
        .stdout
        .lines()
        .find(|l| l.contains("did not complete: Immuta says it cancelled"))
        .unwrap_or_else(|| panic!("no job error: {}\n{}", out.stdout, out.stderr));
    assert!(error.contains("sf-job"), "{error}");
    assert!(out.stdout.contains("`connctl crawl KEY`"), "{}", out.stdout);
    // The registration itself went through: the state says so, with the job's end.
    let state = env.state();
    let conn = &state["connections"]["sf-job"];
    assert_eq!(conn["step"], "registered");
    assert_eq!(conn["bulkIds"][0]["jobState"], "cancelled", "{conn}");
    // Its YAML is unchanged since the apply, yet a --refresh=changed plan reads it again: the
    // job that did not complete may have left Immuta behind.
    let reads = || env.count_requests("GET", "/data/connection/sf-job");
    let before = reads();
    let plan = env.run(&["plan", "--refresh=changed", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert_eq!(reads(), before + 1, "the plan did not read sf-job");
}
