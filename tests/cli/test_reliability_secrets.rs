//! Reliability, secrets: canary values in every secret field, the API key and the executor
//! tokens; every command at -vvv, in text and JSON logs, including failures: no canary anywhere
//! (outputs and every file connctl writes). See docs/reliability.md.

use connctl_emulator::EmulatorConfig;
use serde_json::{Value, json};

#[cfg(unix)]
use crate::support::mode;
use crate::support::{API_KEY, TestEnv, assert_no_panic, snapshot_tree};

const CANARY_API_KEY: &str = "canary-immuta-api-key-7d1";
/// The body of the fixture's private key files (a secret too, though not a canary).
const KEY_BODY: &str = "ZHVtbXkga2V5IGZvciBjb25uY3RsIHRlc3RzOyBub3QgYSByZWFsIGtleQ";

const MANUAL_SPEC: &str = "version: 1
connections:
  - key: sf-manual
    technology: Snowflake
    host: acme-manual.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_MAN
    role: IMMUTA_MAN_SYSTEM
    executor: manual
    auth: { type: userPassword, username: IMMUTA_MAN_ACCOUNT, password: { env: CONNCTL_TEST_SF_PASSWORD } }
";

/// A password the emulated Snowflake rejects: its `CREATE USER` statement fails.
const REJECTED_SPEC: &str = "version: 1
connections:
  - key: sf-rejected
    technology: Snowflake
    host: acme-rejected.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_REJ
    role: IMMUTA_REJ_SYSTEM
    auth: { type: userPassword, username: IMMUTA_REJ_ACCOUNT, password: { env: CONNCTL_TEST_SF_REJECTED } }
";

fn secrets_env() -> TestEnv {
    let mut env = TestEnv::with_emulator(EmulatorConfig {
        api_key: CANARY_API_KEY.into(),
        job_step_ms: 20,
        ..EmulatorConfig::default()
    });
    env.set_env("TEST_IMMUTA_KEY", CANARY_API_KEY);
    env.set_env("TEST_SF_PAT", "canary-executor-sf-pat-7d2");
    env.set_env("TEST_DBX_PAT", "canary-executor-dbx-pat-7d3");
    env.set_env(
        "CONNCTL_TEST_SF_REJECTED",
        "canary-rejected-SYNTAX_ERROR_FOR_TEST-7d5",
    );
    env.fixture("valid/all-variants");
    env.write(
        "valid/all-variants/secrets/databricks-oauth-secret.txt",
        "canary-dbx-oauth-secret-7d4\n",
    );
    env.write("extra/manual.yaml", MANUAL_SPEC);
    env
}

/// Where `text` holds a canary, the API key or the private key body, with context.
fn find_leak(text: &str) -> Option<String> {
    for needle in ["canary-", CANARY_API_KEY, API_KEY, KEY_BODY] {
        if let Some(at) = text.find(needle) {
            let from = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
            let to = (at + 200).min(text.len());
            let to = (to..=text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            return Some(format!("({needle}…):\n…{}…", &text[from..to]));
        }
    }
    None
}

/// Fails when `text` holds a canary, the API key or the private key body.
fn assert_clean(what: &str, text: &str) {
    if let Some(leak) = find_leak(text) {
        panic!("a secret leaked in {what} {leak}");
    }
}

fn secrets_suite(log_format: &str) {
    let env = secrets_env();
    let paths = ["valid/all-variants", "extra"];
    let mut runs = 0;
    let mut run = |args: &[&str], expect: i32| {
        let mut full = vec!["-vvv", "--log-format", log_format];
        full.extend_from_slice(args);
        let out = env.run(&full);
        runs += 1;
        let what = format!("`connctl {}`", full.join(" "));
        assert_no_panic(&what, &out.stderr);
        assert_clean(&format!("{what} stdout"), &out.stdout);
        assert_clean(&format!("{what} stderr"), &out.stderr);
        assert_eq!(
            out.code, expect,
            "{what}\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
        out
    };
    let with = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
        head.iter().chain(tail).copied().collect()
    };

    run(&with(&["validate", "--resolve-secrets"], &paths), 0);
    run(&with(&["plan"], &paths), 0);
    run(&with(&["plan", "--format", "markdown"], &paths), 0);
    run(
        &with(&["plan", "--format", "json", "--out", "plan.json"], &paths),
        0,
    );
    // Every run is at -vvv, in both log formats; the suite is about what never appears, so the
    // outputs are checked by their parts.
    let applied = run(&["apply", "--auto-approve", "--wait", "plan.json"], 0);
    assert!(
        applied.stdout.contains("6 applied, 1 awaiting execution"),
        "{}",
        applied.stdout
    );
    // Everything applied except the manual connection, which waits for its script to run.
    let after = run(&with(&["plan", "--detailed-exitcode"], &paths), 2);
    assert!(after.stdout.contains("(1 to resume)"), "{}", after.stdout);
    run(&["status"], 0);
    run(&["status", "--json"], 0);
    run(&["state", "list"], 0);
    for key in [
        "sf-password",
        "sf_keypair",
        "sf-oauth-secret",
        "sf-oauth-cert",
        "dbx-token",
        "dbx-m2m",
        "sf-manual",
    ] {
        run(&["state", "show", key], 0);
    }

    // Drift made behind connctl's back.
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-password",
        json!({"connection": {"warehouse": "OTHER_WH"}}),
    );
    env.admin(
        "PATCH",
        "/_emulator/connections/dbx-m2m",
        json!({"settings": {"isActive": true}}),
    );
    run(&["drift"], 2);
    run(&["drift", "--format", "json"], 2);
    run(&with(&["drift", "--format", "markdown"], &paths), 2);
    run(&with(&["plan"], &paths), 0);

    // Import failures: already managed, undeclared, absent from Immuta, differing.
    run(&with(&["import", "--key", "sf-oauth-secret"], &paths), 1);
    run(&with(&["import", "--key", "nope"], &paths), 1);
    run(&["state", "rm", "dbx-token"], 0);
    env.admin(
        "PATCH",
        "/_emulator/connections/dbx-token",
        json!({"connection": {"httpPath": "/sql/1.0/warehouses/changed"}}),
    );
    run(
        &with(&["import", "--key", "dbx-token", "--key", "sf-manual"], &paths),
        1,
    );

    // A failing apply: registration refused (400), a connection deleted outside connctl, and
    // a script the warehouse rejects on the statement that holds the password.
    env.admin("DELETE", "/_emulator/connections/sf-oauth-secret", Value::Null);
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "POST", "path": "/data/connection", "status": 400, "count": 50}),
    );
    env.write("extra/rejected.yaml", REJECTED_SPEC);
    // 3: restoring dbx-m2m's status (changed in the UI above) cascades to its child objects.
    run(&with(&["plan", "--detailed-exitcode"], &paths), 3);
    let failed = run(
        &with(&["apply", "--auto-approve", "--wait", "--allow-cascade"], &paths),
        1,
    );
    assert!(failed.stdout.contains("failed."), "{}", failed.stdout);
    run(&["status"], 0);
    run(&["state", "show", "sf-rejected"], 0);
    // A failing plan: Immuta down for every refresh request.
    env.admin("DELETE", "/_emulator/faults", Value::Null);
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "POST", "path": "/data/object/search", "status": 500, "count": 50}),
    );
    run(&with(&["plan"], &paths), 1);
    run(&["drift"], 1);
    eprintln!("secrets ({log_format} logs): {runs} commands at -vvv, no secret in any output");

    // Files: the plan, the state, the lock and anything else connctl wrote. The saved manual
    // script holds the password (as Immuta's script does) and is checked for its mode only.
    let mut files = 0;
    for (rel, bytes) in snapshot_tree(env.dir.path()) {
        let rel_s = rel.to_string_lossy();
        if rel_s.starts_with("valid/all-variants/secrets") || rel_s.starts_with("valid/all-variants/keys") {
            continue;
        }
        if rel_s.starts_with(".connctl/scripts/") {
            #[cfg(unix)]
            assert_eq!(mode(&env.path(&rel_s)), 0o600, "{rel_s}");
            continue;
        }
        files += 1;
        assert_clean(&rel_s, &String::from_utf8_lossy(&bytes));
    }
    assert!(env.path("plan.json").exists() && env.path(".connctl/state.json").exists());
    assert!(env.path(".connctl/scripts/sf-manual.sql").exists());
    #[cfg(unix)]
    assert_eq!(mode(&env.path(".connctl/state.json")), 0o600);
    eprintln!("secrets ({log_format} logs): {files} files checked");
}

#[test]
fn secrets_never_leak_text_logs() {
    secrets_suite("text");
}

#[test]
fn secrets_never_leak_json_logs() {
    secrets_suite("json");
}

/// A failing `command` executor whose program echoes what it read (as `snowsql -o echo=true`
/// or a shell wrapper with `set -x` would): the script holds the connection's password, and
/// connctl shows the program's stderr tail; the password must not come through.
#[test]
fn secrets_never_leak_from_a_failing_command_executor() {
    let env = TestEnv::new();
    std::fs::write(
        env.path("connctl.toml"),
        format!(
            "[immuta]\nurl = \"{}\"\napi_key = {{ env = \"TEST_IMMUTA_KEY\" }}\n\n[executor.command]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"cat >&2; exit 3\"]\n",
            env.url()
        ),
    )
    .unwrap();
    env.write(
        "c.yaml",
        &MANUAL_SPEC.replace("executor: manual", "executor: command"),
    );
    let mut leaks = Vec::new();
    for format in ["text", "json"] {
        let out = env.run(&[
            "-vvv",
            "--log-format",
            format,
            "apply",
            "--auto-approve",
            "c.yaml",
        ]);
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        // The report quotes the program's stderr (the script, its environment): by its parts.
        assert!(out.stdout.contains("exit code 3"), "{}", out.stdout);
        leaks.extend(find_leak(&out.stdout).map(|l| format!("apply stdout ({format} logs) {l}")));
        leaks.extend(find_leak(&out.stderr).map(|l| format!("apply stderr ({format} logs) {l}")));
    }
    let state = std::fs::read_to_string(env.path(".connctl/state.json")).unwrap();
    leaks.extend(find_leak(&state).map(|l| format!("the state file {l}")));
    let status = env.run(&["status", "--json"]);
    leaks.extend(find_leak(&status.stdout).map(|l| format!("status {l}")));
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}
