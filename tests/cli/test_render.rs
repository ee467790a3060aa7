//! `connctl render`: the YAML as an environment gets it (variables expanded, shared and
//! per-file `defaults:` merged into each connection, secrets still references).

use crate::support::TestEnv;

const SETTINGS: &str = r#"paths = ["connections"]
defaults = "shared/defaults.yaml"

[vars]
sf_account = "acme"
warehouse = "COMPUTE_WH"

[environments.dev]
immuta = { url = "http://127.0.0.1:9" }
vars = { sf_account = "acme-dev", warehouse = "DEV_WH" }

[environments.prod]
immuta = { url = "http://127.0.0.1:10" }
vars = { sf_account = "acme-prod" }
"#;

const SHARED: &str = "version: 1
defaults:
  settings: { isActive: true, activateNewChildren: false }
  options: { forceRecursiveCrawl: false }
";

const YAML: &str = r#"version: 1
defaults:
  settings: { activateNewChildren: true }
connections:
  - key: sf-analytics
    technology: Snowflake
    host: "${var.sf_account}.snowflakecomputing.com"
    warehouse: ${var.warehouse}
    database: "IMMUTA_${env.name}"
    role: IMMUTA_SYSTEM
    workspaces: { enabled: true }
    auth:
      type: userPassword
      username: IMMUTA_SYSTEM_ACCOUNT
      password: { env: SNOWFLAKE_PASSWORD }
  - key: dbx-main
    technology: Databricks
    workspaceUrl: dbc-1.cloud.databricks.com
    httpPath: "/sql/1.0/warehouses/$${not-a-var}"
    catalog: immuta
    settings: { isActive: false }
    auth: { type: token, token: { secret: "vault:kv/immuta/${env.name}#token" } }
"#;

fn env() -> TestEnv {
    let env = TestEnv::new();
    std::fs::write(env.path("connctl.toml"), SETTINGS).unwrap();
    env.write("shared/defaults.yaml", SHARED);
    env.write("connections/all.yaml", YAML);
    env
}

#[test]
fn render_shows_each_environment_resolved_with_secrets_as_references() {
    let env = env();
    let dev = env.run(&["render", "--env", "dev"]);
    assert_eq!(dev.code, 0, "{}", dev.stderr);
    insta::assert_snapshot!(dev.stdout, @r#"
    # environment: dev
    version: 1
    connections:
      # connections/all.yaml:5
      - key: sf-analytics
        technology: Snowflake
        host: acme-dev.snowflakecomputing.com
        warehouse: DEV_WH
        database: IMMUTA_dev
        role: IMMUTA_SYSTEM
        workspaces:
          enabled: true
        auth:
          type: userPassword
          username: IMMUTA_SYSTEM_ACCOUNT
          password:
            env: SNOWFLAKE_PASSWORD
        settings:
          activateNewChildren: true
          isActive: true
        options:
          forceRecursiveCrawl: false
      # connections/all.yaml:16
      - key: dbx-main
        technology: Databricks
        workspaceUrl: dbc-1.cloud.databricks.com
        httpPath: "/sql/1.0/warehouses/${not-a-var}"
        catalog: immuta
        settings:
          isActive: false
          activateNewChildren: true
        auth:
          type: token
          token:
            secret: "vault:kv/immuta/dev#token"
        options:
          forceRecursiveCrawl: false
    "#);
    let prod = env.run(&["render", "--env", "prod"]);
    assert_eq!(prod.code, 0, "{}", prod.stderr);
    insta::assert_snapshot!(prod.stdout, @r#"
    # environment: prod
    version: 1
    connections:
      # connections/all.yaml:5
      - key: sf-analytics
        technology: Snowflake
        host: acme-prod.snowflakecomputing.com
        warehouse: COMPUTE_WH
        database: IMMUTA_prod
        role: IMMUTA_SYSTEM
        workspaces:
          enabled: true
        auth:
          type: userPassword
          username: IMMUTA_SYSTEM_ACCOUNT
          password:
            env: SNOWFLAKE_PASSWORD
        settings:
          activateNewChildren: true
          isActive: true
        options:
          forceRecursiveCrawl: false
      # connections/all.yaml:16
      - key: dbx-main
        technology: Databricks
        workspaceUrl: dbc-1.cloud.databricks.com
        httpPath: "/sql/1.0/warehouses/${not-a-var}"
        catalog: immuta
        settings:
          isActive: false
          activateNewChildren: true
        auth:
          type: token
          token:
            secret: "vault:kv/immuta/prod#token"
        options:
          forceRecursiveCrawl: false
    "#);
}

#[test]
fn the_shared_defaults_reach_every_connection_and_the_files_own_win() {
    let env = env();
    let out = env.run(&["validate", "--env", "dev"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The shared file holds no connections; one that does is refused at its place.
    env.write("shared/defaults.yaml", &format!("{SHARED}connections: []\n"));
    let out = env.run(&["render", "--env", "dev"]);
    assert_eq!(out.code, 0, "an empty list is no connection: {}", out.stderr);
    env.write(
        "shared/defaults.yaml",
        &format!("{SHARED}connections:\n  - key: x\n"),
    );
    let out = env.run(&["render", "--env", "dev"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(env.normalize(&out.stderr), @"
    error: missing field `technology` in connection `x`
     --> shared/defaults.yaml:6:5
      |
    6 |   - key: x
      |     ^
      = help: expected `Snowflake` or `Databricks`

    error: the shared defaults file holds connections
     --> shared/defaults.yaml:6:3
      |
    6 |   - key: x
      |   ^
      = help: keep only `version: 1` and `defaults:` in it; connections belong in the YAML paths
    error: 2 problem(s) found
    ");
}

#[test]
fn a_variable_in_a_key_position_is_not_expanded() {
    let env = env();
    env.write(
        "connections/all.yaml",
        &YAML.replace("key: dbx-main", "key: dbx-${env.name}"),
    );
    let out = env.run(&["render", "--env", "dev"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("dbx-${env.name}"), "{}", out.stderr);
}

#[test]
fn a_variable_as_a_field_name_is_not_expanded() {
    let env = env();
    env.write(
        "connections/all.yaml",
        "version: 1\nconnections:\n  - key: a\n    technology: Snowflake\n    ${var.warehouse}: x\n",
    );
    let out = env.run(&["render", "--env", "dev"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("unknown field `${var.warehouse}`"),
        "{}",
        out.stderr
    );
}
