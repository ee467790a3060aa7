//! `connctl apply`: every auth variant end to end, no phantom diffs afterwards, manual
//! execution and resume, and that nothing registers twice.

use crate::support::TestEnv;

#[test]
fn all_six_variants_register_then_plan_is_empty() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&["apply", "--auto-approve", "--wait", "valid/all-variants"]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("Apply: 6 applied, 0 awaiting execution, 0 skipped, 0 failed."),
        "{}",
        out.stdout
    );
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
    let first = env.run(&["apply", "--auto-approve", spec]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("run the script saved at"),
        "{}",
        first.stdout
    );
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
    let second = env.run(&["apply", "--auto-approve", spec]);
    assert!(second.stdout.contains("awaiting execution"), "{}", second.stdout);
    assert_eq!(env.count_requests("POST", "/data/connection"), 0);

    // A person runs it (here: statement by statement through the emulated Databricks API).
    run_databricks_script(&env, &script);
    let third = env.run(&["apply", "--auto-approve", spec]);
    assert_eq!(third.code, 0, "{}\n{}", third.stdout, third.stderr);
    assert!(third.stdout.contains("1 applied"), "{}", third.stdout);
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
    assert!(out.stderr.contains("--auto-approve"), "{}", out.stderr);
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
    assert!(stale.stderr.contains("stale plan"), "{}", stale.stderr);
    assert!(stale.stderr.contains("dbx-token"), "{}", stale.stderr);
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
    assert!(applied.stdout.contains("Apply: 2 applied"), "{}", applied.stdout);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    // Applying the same saved plan again is refused: the state moved on.
    let again = env.run(&["apply", "--auto-approve", "plan.json"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("stale plan"), "{}", again.stderr);
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
    assert!(applied.stdout.contains("Apply: 2 applied"), "{}", applied.stdout);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    let again = env.run(&["apply", "plan.json"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("stale plan"), "{}", again.stderr);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2, "nothing sent");
    // Planning from YAML still asks for --auto-approve off a terminal.
    let unreviewed = env.run(&["apply", "valid/all-variants"]);
    assert_eq!(unreviewed.code, 1);
    assert!(
        unreviewed.stderr.contains("--auto-approve"),
        "{}",
        unreviewed.stderr
    );
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
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Apply: 3 applied, 0 awaiting execution, 0 skipped, 1 failed."),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("✗ dbx-2: executing the create script failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("exit") && out.stdout.contains("warehouse said no"),
        "{}",
        out.stdout
    );
    assert_eq!(env.count_requests("POST", "/data/connection"), 3);
    // The failed one is where it stopped, and the next plan says so.
    let plan = env.run(&["plan", "c.yaml"]);
    assert!(plan.stdout.contains("resume   dbx-2"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to create"), "{}", plan.stdout);
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
    let out = env.run(&["apply", "--auto-approve", "--prune", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "dbx-p: deregistered; run the cleanup script saved at .connctl/scripts/dbx-p.delete.sql"
        ),
        "{}",
        out.stdout
    );
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
    assert!(out.stderr.contains("Apply: 6 applied"), "{}", out.stderr);
    assert!(
        out.stderr.contains("connctl will take these actions"),
        "{}",
        out.stderr
    );

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
    assert!(out.stderr.contains("--auto-approve"), "{}", out.stderr);
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
}
