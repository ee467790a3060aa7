//! Environments (`[environments.NAME]`, `--env`, `CONNCTL_ENV`) and YAML variables: one YAML
//! tree planned and applied against two emulators as `dev` and `prod`, each run reaching only
//! its own tenant, and the guards between them (state, `IMMUTA_URL`, protected, selection).

use connctl_emulator::{EmulatorConfig, RunningEmulator};

use crate::support::TestEnv;

const YAML: &str = r#"version: 1
connections:
  - key: sf-analytics
    technology: Snowflake
    host: "${var.sf_account}.snowflakecomputing.com"
    warehouse: ${var.warehouse}
    database: IMMUTA_${env.name}
    role: IMMUTA_SYSTEM
    auth:
      type: userPassword
      username: IMMUTA_SYSTEM_ACCOUNT
      password: { env: CONNCTL_TEST_SF_PASSWORD }
"#;

/// `dev` on the test environment's own emulator, `prod` on a second one (protected).
struct TwoTenants {
    env: TestEnv,
    prod: RunningEmulator,
}

impl TwoTenants {
    fn new() -> TwoTenants {
        let env = TestEnv::new();
        let prod = RunningEmulator::start(EmulatorConfig {
            job_step_ms: 20,
            ..EmulatorConfig::default()
        })
        .expect("second emulator");
        let (dev_url, prod_url) = (env.url(), prod.url());
        let settings = format!(
            r#"paths = ["connections"]

[immuta]
api_key = {{ env = "TEST_IMMUTA_KEY" }}

[vars]
sf_account = "acme"
warehouse = "COMPUTE_WH"

[executor.snowflake]
kind = "snowflake"
url = "{dev_url}"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = {{ type = "programmaticAccessToken", token = {{ env = "TEST_SF_PAT" }} }}

[environments.dev]
immuta = {{ url = "{dev_url}" }}
state = {{ path = "state/dev.json" }}
vars = {{ sf_account = "acme-dev", warehouse = "DEV_WH" }}

[environments.prod]
protected = true
immuta = {{ url = "{prod_url}" }}
state = {{ path = "state/prod.json" }}
vars = {{ sf_account = "acme-prod" }}

[environments.prod.executor.snowflake]
kind = "snowflake"
url = "{prod_url}"
user = "PLATFORM_ADMIN"
role = "ACCOUNTADMIN"
warehouse = "ADMIN_WH"
auth = {{ type = "programmaticAccessToken", token = {{ env = "TEST_SF_PAT" }} }}
"#
        );
        std::fs::write(env.path("connctl.toml"), settings).unwrap();
        env.write("connections/snowflake.yaml", YAML);
        TwoTenants { env, prod }
    }

    /// Requests `method path` answered 2xx by the emulator at `url`.
    fn count(url: &str, method: &str, path: &str) -> usize {
        let log: serde_json::Value = reqwest::blocking::get(format!("{url}/_emulator/requests"))
            .unwrap()
            .json()
            .unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == method && r["path"] == path)
            .filter(|r| r["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
            .count()
    }

    fn total(url: &str) -> usize {
        let log: serde_json::Value = reqwest::blocking::get(format!("{url}/_emulator/requests"))
            .unwrap()
            .json()
            .unwrap();
        log.as_array().unwrap().len()
    }

    fn norm(&self, text: &str) -> String {
        self.env.normalize(text).replace(&self.prod.url(), "[PROD_URL]")
    }
}

#[test]
fn each_environment_plans_and_applies_against_its_own_tenant_only() {
    let t = TwoTenants::new();
    let (dev, prod) = (t.env.url(), t.prod.url());

    let plan = t.env.run(&["plan", "--env", "dev"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    insta::assert_snapshot!(t.norm(&plan.stdout), @r#"
    connctl will take these actions (- Immuta now, + desired):

      + create   sf-analytics (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "IMMUTA_SYSTEM_ACCOUNT"
          +   database: "IMMUTA_dev"
          +   host: "acme-dev.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "IMMUTA_SYSTEM"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "DEV_WH"
          +   workspaces.enabled: false

    Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL] (environment dev)
    "#);
    let prod_before = TwoTenants::total(&prod);
    assert_eq!(prod_before, 0, "the dev plan reached prod");

    let apply = t.env.run(&["apply", "--env", "dev", "--auto-approve", "--wait"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(TwoTenants::count(&dev, "POST", "/data/connection"), 1);
    assert_eq!(TwoTenants::total(&prod), 0, "the dev apply reached prod");

    let apply = t.env.run(&["apply", "--env", "prod", "--auto-approve", "--wait"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply
            .stdout
            .contains(r#"host: "acme-prod.snowflakecomputing.com""#),
        "{}",
        apply.stdout
    );
    assert!(
        apply.stdout.contains(r#"warehouse: "COMPUTE_WH""#),
        "{}",
        apply.stdout
    );
    assert_eq!(TwoTenants::count(&prod, "POST", "/data/connection"), 1);
    assert_eq!(
        TwoTenants::count(&dev, "POST", "/data/connection"),
        1,
        "the prod apply reached dev"
    );

    // Each state records its environment and tenant.
    for (name, url) in [("dev", &dev), ("prod", &prod)] {
        let text = std::fs::read_to_string(t.env.path(&format!("state/{name}.json"))).unwrap();
        let state: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(state["environment"], name);
        assert_eq!(state["tenant"].as_str(), Some(url.trim_end_matches('/')));
    }
    let again = t.env.run(&["plan", "--env", "prod", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn a_state_of_one_environment_is_refused_by_the_other() {
    let t = TwoTenants::new();
    let apply = t.env.run(&["apply", "--env", "dev", "--auto-approve", "--wait"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let dev_posts = TwoTenants::count(&t.env.url(), "POST", "/data/connection");
    let out = t.env.run(&["plan", "--env", "prod", "--state", "state/dev.json"]);
    assert_eq!(out.code, 1);
    // The tenant is checked first: the dev state names the dev tenant.
    insta::assert_snapshot!(t.norm(&out.stderr), @r"
    error: the state state/dev.json belongs to the Immuta tenant [URL], but this run uses [PROD_URL]
      = help: point --state (or CONNCTL_STATE, [state] in connctl.toml) at the state of [PROD_URL], or --immuta-url (IMMUTA_URL) at [URL]
    ");
    // Same tenant, another environment: refused by the environment.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.env.path("state/dev.json")).unwrap()).unwrap();
    let mut edited = state.clone();
    edited["tenant"] = serde_json::Value::Null;
    edited.as_object_mut().unwrap().remove("tenant");
    std::fs::write(t.env.path("state/other.json"), edited.to_string()).unwrap();
    let out = t.env.run(&[
        "apply",
        "--env",
        "prod",
        "--auto-approve",
        "--state",
        "state/other.json",
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    insta::assert_snapshot!(t.norm(&out.stderr), @r"
    error: the state state/other.json belongs to the environment `dev`, but this run is for `prod`
      = help: each environment has its own state: set `[environments.prod.state]` in connctl.toml (or pass --state)
    ");
    assert_eq!(TwoTenants::total(&t.prod.url()), 0, "nothing reached prod");
    assert_eq!(
        TwoTenants::count(&t.env.url(), "POST", "/data/connection"),
        dev_posts
    );
}

#[test]
fn immuta_url_of_another_tenant_is_named_and_refused_by_the_state() {
    let mut t = TwoTenants::new();
    let apply = t.env.run(&["apply", "--env", "dev", "--auto-approve", "--wait"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    t.env.set_env("IMMUTA_URL", &t.prod.url());
    let out = t.env.run(&["plan", "--env", "dev"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    insta::assert_snapshot!(t.norm(&out.stderr), @r"
    warning: IMMUTA_URL ([PROD_URL]) overrides the Immuta URL of environment `dev` ([URL]); this run uses [PROD_URL]
    error: the state state/dev.json belongs to the Immuta tenant [URL], but this run uses [PROD_URL]
      = help: point --state (or CONNCTL_STATE, [state] in connctl.toml) at the state of [PROD_URL], or --immuta-url (IMMUTA_URL) at [URL]
    ");
    assert_eq!(TwoTenants::total(&t.prod.url()), 0, "nothing reached prod");
}

#[test]
fn without_a_selected_environment_commands_that_reach_immuta_stop_with_the_names() {
    let mut t = TwoTenants::new();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["status"],
        &["state", "list"],
    ] {
        let out = t.env.run(args);
        assert_eq!(out.code, 1, "{args:?}");
        assert_eq!(
            out.stderr,
            "error: connctl.toml defines environments (dev, prod); choose one with --env NAME (or CONNCTL_ENV)\n",
            "{args:?}"
        );
    }
    let out = t.env.run(&["plan", "--env", "stage"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.stderr, @r"
    error: environment `stage` is not defined in connctl.toml
      = help: the environments are: dev, prod
    ");
    t.env.set_env("CONNCTL_ENV", "dev");
    let out = t.env.run(&["plan"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with("(environment dev)\n"), "{}", out.stdout);
    // status names the tenant and environment its rows are about, as the plan does.
    let out = t.env.run(&["status"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let last = out.stdout.lines().last().unwrap_or_default();
    assert_eq!(t.norm(last), "Immuta: [URL] (environment dev)", "{}", out.stdout);
    assert_eq!(TwoTenants::total(&t.prod.url()), 0);
}

#[test]
fn a_protected_environment_applies_only_with_an_explicit_env_or_its_typed_name() {
    let mut t = TwoTenants::new();
    t.env.set_env("CONNCTL_ENV", "prod");
    let out = t.env.run(&["apply", "--auto-approve"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "environment `prod` is protected: apply it with `--env prod --auto-approve` (the environment named on the command line, not only by CONNCTL_ENV), or type its name at the prompt; nothing was changed"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(TwoTenants::count(&t.prod.url(), "POST", "/data/connection"), 0);
    let out = t.env.run(&["apply", "--auto-approve", "--env", "prod"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(TwoTenants::count(&t.prod.url(), "POST", "/data/connection"), 1);
}

#[test]
fn verbose_names_the_environment_and_where_each_setting_comes_from() {
    let t = TwoTenants::new();
    let out = t
        .env
        .run(&["plan", "--env", "prod", "-v", "--state", "state/p.json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("environment: prod"))
        .unwrap_or_default();
    assert!(
        line.contains("Immuta URL: [PROD_URL] (from [environments.prod.immuta] in connctl.toml); state: state/p.json (from --state); precedence: flags > CONNCTL_*/IMMUTA_* variables > the environment in connctl.toml > its top level")
            || t.norm(line).contains("Immuta URL: [PROD_URL] (from [environments.prod.immuta] in connctl.toml); state: state/p.json (from --state)"),
        "{}",
        t.norm(&out.stderr)
    );
}

#[test]
fn variables_follow_their_precedence_and_an_undefined_one_is_an_error_at_its_place() {
    let mut t = TwoTenants::new();
    let render = |t: &TwoTenants, args: &[&str]| {
        let out = t.env.run(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout
    };
    assert!(render(&t, &["render", "--env", "prod"]).contains("warehouse: COMPUTE_WH"));
    assert!(render(&t, &["render", "--env", "dev"]).contains("warehouse: DEV_WH"));
    t.env.set_env("CONNCTL_VAR_warehouse", "FROM_ENV_WH");
    assert!(render(&t, &["render", "--env", "dev"]).contains("warehouse: FROM_ENV_WH"));
    assert!(
        render(&t, &["render", "--env", "dev", "--var", "warehouse=FLAG_WH"]).contains("warehouse: FLAG_WH")
    );

    t.env.write(
        "connections/snowflake.yaml",
        &YAML.replace("${var.warehouse}", "\"$${literal} ${var.warehous}\""),
    );
    let out = t.env.run(&["validate", "--env", "dev"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(t.norm(&out.stderr), @r#"
    error: undefined variable `warehous`
     --> connections/snowflake.yaml:6:29
      |
    6 |     warehouse: "$${literal} ${var.warehous}"
      |                             ^^
      = help: did you mean `warehouse`?
    error: 1 problem(s) found; nothing was planned, sent or written
    "#);
}

#[test]
fn init_offers_environments_that_validate_and_must_be_selected() {
    let env = TestEnv::new();
    let out = env.run(&["init", "starter", "--environments", "dev,prod"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let settings = std::fs::read_to_string(env.path("starter/connctl.toml")).unwrap();
    assert!(
        settings.contains("[environments.prod]\nprotected = true"),
        "{settings}"
    );
    let check = env.run(&[
        "--config",
        "starter/connctl.toml",
        "validate",
        "--env",
        "dev",
        "starter/connections.yaml",
    ]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let plan = env.run(&[
        "--config",
        "starter/connctl.toml",
        "plan",
        "starter/connections.yaml",
    ]);
    assert_eq!(plan.code, 1);
    assert_eq!(
        plan.stderr,
        "error: starter/connctl.toml defines environments (dev, prod); choose one with --env NAME (or CONNCTL_ENV)\n"
    );
    let plain = env.run(&["init", "plain"]);
    assert!(
        plain.stdout.contains("connctl init --environments dev,prod"),
        "{}",
        plain.stdout
    );
    assert!(
        !std::fs::read_to_string(env.path("plain/connctl.toml"))
            .unwrap()
            .contains("[environments")
    );
}
