//! Secrets that come back: canary secrets holding quotes, backslashes, `%`, `/`, `+`, spaces and
//! line breaks, echoed by Immuta (an error answer that repeats the request, as a proxy or a WAF
//! may) and by a failing `command` executor that prints the script it got. No form of any canary
//! may reach stdout, stderr (at -vvv, text and JSON logs), the state, a saved plan or any file
//! under `.connctl`. Also: what the `command` executor's program sees of connctl's environment,
//! and the modes of the files connctl writes besides the state.

use std::path::Path;

use base64::Engine as _;
use connctl_emulator::EmulatorConfig;
use serde_json::{Value, json};

use crate::support::TestEnv;

/// In every canary, between every two special characters: URL, JSON, SQL and HTML encodings
/// keep letters and digits as they are, so any form of any part of a canary contains it.
const MARK: &str = "Xq7e1";

const PASSWORD: &str = "Xq7e1pwA'Xq7e1pwB\"Xq7e1pwC\\Xq7e1pwD %/+Xq7e1pwE";
const KEY_PASSWORD: &str = "Xq7e1kpA 'Xq7e1kpB'\n\"Xq7e1kpC\" \\Xq7e1kpD 100%/+Xq7e1kpE";
const API_KEY: &str = "Xq7e1apiA 'Xq7e1apiB' \"Xq7e1apiC\" \\Xq7e1apiD 5%/+Xq7e1apiE";
const DBX_TOKEN: &str = "Xq7e1dbxA'Xq7e1dbxB\"\\ %/+Xq7e1dbxC";
const EXECUTOR_PAT: &str = "Xq7e1patA'Xq7e1patB%/+Xq7e1patC";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
    Xq7e1pemLineOneABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv0+/\n\
    Xq7e1pemLineTwoABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv1+/\n\
    Xq7e1pemEnd==\n\
    -----END PRIVATE KEY-----\n";

const SPEC: &str = "version: 1
connections:
  - key: sf-echo
    technology: Snowflake
    host: acme-echo.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_ECHO
    role: IMMUTA_ECHO_SYSTEM
    executor: command
    auth: { type: userPassword, username: IMMUTA_ECHO_ACCOUNT, password: { env: SCRUB_PASSWORD } }
  - key: sf-key
    technology: Snowflake
    host: acme-key.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_KEY
    role: IMMUTA_KEY_SYSTEM
    executor: snowflake
    auth:
      type: keyPair
      username: IMMUTA_KEY_ACCOUNT
      privateKey: { file: keys/scrub.p8 }
      privateKeyPassword: { env: SCRUB_KEY_PASSWORD }
  - key: dbx-tok
    technology: Databricks
    workspaceUrl: dbc-9876.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/abc987
    catalog: immuta_scrub
    executor: databricks
    auth: { type: token, token: { env: SCRUB_DBX_TOKEN } }
";

/// A `command` executor that prints the script it got (and its environment) on both streams and
/// fails, as a wrapper with `set -x` or `snowsql -o echo=true` would.
const ECHO_COMMAND: &str = "s=$(cat); printf '%s\\n' \"$s\"; printf '%s\\n' \"$s\" >&2; env >&2; exit 3";

fn canaries() -> [&'static str; 6] {
    [PASSWORD, KEY_PASSWORD, API_KEY, DBX_TOKEN, EXECUTOR_PAT, PEM]
}

/// Where `text` holds a canary (any form keeping its letters, or base64), with context.
fn find_leak(text: &str) -> Option<String> {
    let mut needles = vec![MARK.to_owned()];
    for c in canaries() {
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let b64 = engine.encode(c);
            // The part that does not depend on what follows the value.
            needles.push(b64[..b64.len() - 1].to_owned());
        }
    }
    for needle in needles {
        if let Some(at) = text.find(&needle) {
            let from = text[..at].char_indices().rev().nth(300).map_or(0, |(i, _)| i);
            let to = (at + 300).min(text.len());
            let to = (to..=text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            return Some(format!("({needle}):\n…{}…", &text[from..to]));
        }
    }
    None
}

fn scrub_env() -> TestEnv {
    let mut env = TestEnv::with_emulator(EmulatorConfig {
        api_key: API_KEY.into(),
        job_step_ms: 20,
        ..EmulatorConfig::default()
    });
    env.set_env("TEST_IMMUTA_KEY", API_KEY);
    env.set_env("TEST_SF_PAT", EXECUTOR_PAT);
    env.set_env("SCRUB_PASSWORD", PASSWORD);
    env.set_env("SCRUB_KEY_PASSWORD", KEY_PASSWORD);
    env.set_env("SCRUB_DBX_TOKEN", DBX_TOKEN);
    let url = env.url();
    std::fs::write(
        env.path("connctl.toml"),
        format!(
            r#"[immuta]
url = "{url}"
api_key = {{ env = "TEST_IMMUTA_KEY" }}

[executor.snowflake]
kind = "snowflake"
url = "{url}"
user = "PLATFORM_ADMIN"
warehouse = "ADMIN_WH"
auth = {{ type = "programmaticAccessToken", token = {{ env = "TEST_SF_PAT" }} }}

[executor.databricks]
kind = "databricks"
url = "{url}"
auth = {{ type = "token", token = {{ env = "TEST_DBX_PAT" }} }}

[executor.command]
kind = "command"
command = ["sh", "-c", {}]
"#,
            toml_string(ECHO_COMMAND)
        ),
    )
    .unwrap();
    env.write("keys/scrub.p8", PEM);
    env.write("c.yaml", SPEC);
    env
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn echoed_secrets_are_scrubbed_from_every_output_and_file() {
    let env = scrub_env();
    let mut leaks = Vec::new();
    let mut file_leaks = Vec::new();
    let mut runs = 0;
    let mut run = |args: &[&str], format: &str, expect: i32| {
        let mut full = vec!["-vvv", "--log-format", format];
        full.extend_from_slice(args);
        let out = env.run(&full);
        runs += 1;
        let what = format!("`connctl {}`", full.join(" "));
        assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
        assert_eq!(
            out.code, expect,
            "{what}\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
        leaks.extend(find_leak(&out.stdout).map(|l| format!("{what} stdout {l}")));
        leaks.extend(find_leak(&out.stderr).map(|l| format!("{what} stderr {l}")));
        out
    };
    // Runs at -vvv whose errors quote echoed requests: the outputs are long and vary with the
    // requests, so they are checked for what matters (a redaction, no secret), not snapshotted.
    for format in ["text", "json"] {
        env.admin("POST", "/_emulator/reset", Value::Null);
        let _ = std::fs::remove_dir_all(env.path(".connctl"));
        run(&["validate", "--resolve-secrets", "c.yaml"], format, 0);
        run(&["plan", "--out", "plan.json", "c.yaml"], format, 0);

        // 1. The script request answered 400 with the request (the connection's secrets in
        //    `config`, the API key in `Authorization`) echoed.
        env.admin(
            "POST",
            "/_emulator/faults",
            json!({"method": "POST", "path": "/integrations/scripts/create", "status": 400, "count": 3, "echo": true}),
        );
        let out = run(&["apply", "--auto-approve", "c.yaml"], format, 1);
        assert!(out.stdout.contains("request rejected"), "{}", out.stdout);
        assert!(out.stdout.contains("(sensitive)"), "{}", out.stdout);

        // 2. Registration answered 400 with the payload echoed; the `command` executor echoes
        //    the script (the password as a SQL literal, `'` doubled) and fails.
        env.admin(
            "POST",
            "/_emulator/faults",
            json!({"method": "POST", "path": "/data/connection", "status": 400, "count": 10, "echo": true}),
        );
        let out = run(&["apply", "--auto-approve", "--wait", "c.yaml"], format, 1);
        assert!(out.stdout.contains("exit code 3"), "{}", out.stdout);
        assert!(out.stdout.contains("request rejected"), "{}", out.stdout);

        // 3. A read answered with the request echoed: the API key in `Authorization`.
        env.admin("DELETE", "/_emulator/faults", Value::Null);
        env.admin(
            "POST",
            "/_emulator/faults",
            json!({"method": "POST", "path": "/data/object/search", "status": 400, "count": 10, "echo": true}),
        );
        run(&["plan", "--out", "plan-failed.json", "c.yaml"], format, 1);
        run(&["drift"], format, 1);
        env.admin("DELETE", "/_emulator/faults", Value::Null);
        run(&["status", "--json"], format, 0);
        for key in ["sf-echo", "sf-key", "dbx-tok"] {
            run(&["state", "show", key], format, 0);
        }

        // Every file connctl wrote. Only the manual executor's saved scripts may hold a
        // password, and no connection here uses it.
        let mut files = Vec::new();
        collect_files(env.dir.path(), &mut files);
        let mut checked = 0;
        for path in files {
            let rel = path
                .strip_prefix(env.dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "keys/scrub.p8" {
                continue;
            }
            checked += 1;
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            file_leaks.extend(find_leak(&text).map(|l| format!("file {rel} ({format} run) {l}")));
        }
        assert!(checked >= 3, "expected the state, the plan and the settings");
        let state = env.state();
        let journal = serde_json::to_string(&state["connections"]["sf-key"]["journal"]).unwrap();
        assert!(
            journal.contains("(sensitive)"),
            "the journal kept the echoed error: {journal}"
        );
    }
    leaks.extend(file_leaks);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
    eprintln!("scrub: {runs} commands at -vvv, no canary in any output or file");
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The program of a `command` executor sees an allow-list of connctl's environment: not the
/// Immuta API key nor another connection's password, whatever their variable names.
#[test]
fn command_executor_env_holds_no_secret_of_the_run() {
    let mut env = TestEnv::new();
    let api_key = crate::support::API_KEY;
    env.set_env("MY_KEY", api_key);
    env.set_env("OTHER_PW", "other-connection-password-5f2");
    env.set_env("SCRUB_PASSWORD", "own-connection-password-5f3");
    env.set_env("EXTRA_ALLOWED", "extra-value-5f4");
    env.set_env("UNLISTED", "unlisted-value-5f5");
    env.set_env("LC_ALL", "C");
    let dump = env.path("child-env.txt");
    std::fs::write(
        env.path("connctl.toml"),
        format!(
            "[immuta]\nurl = \"{}\"\napi_key = {{ env = \"MY_KEY\" }}\n\n[executor.command]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", {}]\nenv = [\"EXTRA_*\", \"OTHER_PW\"]\n",
            env.url(),
            toml_string(&format!("cat >/dev/null; env > '{}'", dump.display()))
        ),
    )
    .unwrap();
    env.write(
        "c.yaml",
        "version: 1
connections:
  - key: sf-own
    technology: Snowflake
    host: acme-own.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_OWN
    role: IMMUTA_OWN_SYSTEM
    executor: command
    auth: { type: userPassword, username: OWN, password: { env: SCRUB_PASSWORD } }
  - key: sf-other
    technology: Snowflake
    host: acme-other.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_OTHER
    role: IMMUTA_OTHER_SYSTEM
    executor: manual
    auth: { type: userPassword, username: OTHER, password: { env: OTHER_PW } }
",
    );
    // The command ran (the emulator never saw the script, so registration then fails).
    let out = env.run(&["apply", "--auto-approve", "--target", "sf-own", "c.yaml"]);
    let dumped = std::fs::read_to_string(&dump)
        .unwrap_or_else(|_| panic!("the command did not run:\n{}\n{}", out.stdout, out.stderr));
    let names: Vec<&str> = dumped
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    for secret in [
        api_key,
        "other-connection-password-5f2",
        "own-connection-password-5f3",
    ] {
        assert!(
            !dumped.contains(secret),
            "{secret} reached the command:\n{dumped}"
        );
    }
    for absent in [
        "MY_KEY",
        "OTHER_PW",
        "UNLISTED",
        "TEST_IMMUTA_KEY",
        "SCRUB_PASSWORD",
    ] {
        assert!(
            !names.contains(&absent),
            "{absent} reached the command:\n{dumped}"
        );
    }
    for present in [
        "PATH",
        "LC_ALL",
        "EXTRA_ALLOWED",
        "CONNCTL_CONNECTION_KEY",
        "CONNCTL_SCRIPT_PURPOSE",
    ] {
        assert!(names.contains(&present), "{present} missing:\n{dumped}");
    }
}

/// A saved plan and `export --out` are private files, like the state.
#[cfg(unix)]
#[test]
fn saved_plans_and_exports_are_written_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&["plan", "--out", "plan.json", "valid/all-variants"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mode(&env.path("plan.json")), 0o600);
    // An existing, world-readable plan file is replaced by a private one.
    std::fs::set_permissions(env.path("plan.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["plan", "--out", "plan.json", "valid/all-variants"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mode(&env.path("plan.json")), 0o600);
    let out = env.run(&["export", "--out", "exported.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mode(&env.path("exported.yaml")), 0o600);
}

/// A secret too short to be redacted is named by `validate --resolve-secrets` (a warning; the
/// run still succeeds), never shown.
#[test]
fn secrets_too_short_to_redact_are_a_warning() {
    let mut env = TestEnv::new();
    env.set_env("SHORT_PW", "abc12");
    env.write(
        "c.yaml",
        "version: 1
connections:
  - key: sf-short
    technology: Snowflake
    host: acme-short.snowflakecomputing.com
    warehouse: IMMUTA_WH
    database: IMMUTA_SHORT
    role: IMMUTA_SHORT_SYSTEM
    auth: { type: userPassword, username: SHORT, password: { env: SHORT_PW } }
",
    );
    let out = env.run(&["validate", "--resolve-secrets", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    ok: 1 connection in 1 file are valid, and every secret reference resolves
    --- stderr
    warning: connection `sf-short`: auth.password: the value is shorter than 6 characters, so connctl cannot remove it from error messages and logs
     --> c.yaml:3:5
      |
    3 |   - key: sf-short
      |     ^^^
      = help: use a longer secret
    ");
    assert!(!out.stderr.contains("abc12") && !out.stdout.contains("abc12"));
}

/// Issue 16: the apply report (`apply --format json`) quotes errors too; a server that echoes
/// the request leaves no secret in it, and the plan (with its attributes) on stderr has none.
#[test]
fn the_apply_report_carries_no_echoed_secret() {
    let env = scrub_env();
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "POST", "path": "/data/connection", "status": 400, "count": 10, "echo": true}),
    );
    let out = env.run(&["apply", "--auto-approve", "--format", "json", "c.yaml"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["result"], "failed");
    // The report quotes the executor's stderr, which here echoes its environment (PATH and all):
    // checked by its parts.
    assert!(out.stdout.contains("request rejected"), "{}", out.stdout);
    assert_eq!(find_leak(&out.stdout), None);
    assert_eq!(find_leak(&out.stderr), None);
    assert!(out.stderr.contains("(sensitive)"), "{}", out.stderr);
}
