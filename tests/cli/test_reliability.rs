//! Reliability suites: faults, secrets, concurrency, bad settings and state files, and a
//! property test of the state reader. Each runs at a small size by default (part of
//! `make test`) and at full size with `CONNCTL_SOAK=1` (`make soak`); see docs/reliability.md.
//! The crash suite lives in test_crash.rs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use connctl_emulator::{EmulatorConfig, RunningEmulator};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{API_KEY, TestEnv, repo};

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// `CONNCTL_SOAK=1` selects the full sizes.
fn soak() -> bool {
    std::env::var("CONNCTL_SOAK").is_ok_and(|v| v == "1")
}

fn size(small: usize, full: usize) -> usize {
    if soak() { full } else { small }
}

/// A [`TestEnv`] whose emulator has these knobs (the settings point at it).
fn env_with(config: EmulatorConfig) -> TestEnv {
    let mut env = TestEnv::new();
    env.emulator = RunningEmulator::start(config).expect("emulator");
    env.write_settings("");
    env
}

/// The emulator's request log.
fn request_log(env: &TestEnv) -> Vec<Value> {
    match env.admin("GET", "/_emulator/requests", Value::Null) {
        Value::Array(a) => a,
        other => panic!("request log is not a list: {other}"),
    }
}

fn count(log: &[Value], method: Option<&str>, path: Option<&str>, status: impl Fn(u64) -> bool) -> usize {
    log.iter()
        .filter(|r| method.is_none_or(|m| r["method"] == m))
        .filter(|r| path.is_none_or(|p| r["path"] == p))
        .filter(|r| r["status"].as_u64().is_some_and(&status))
        .count()
}

/// Registrations answered 2xx, and registrations refused as duplicates (409).
fn registrations(env: &TestEnv) -> (usize, usize) {
    let log = request_log(env);
    (
        count(&log, Some("POST"), Some("/data/connection"), |s| {
            (200..300).contains(&s)
        }),
        count(&log, Some("POST"), Some("/data/connection"), |s| s == 409),
    )
}

/// `n` connections, alternating Snowflake (userPassword, Snowflake SQL API executor) and
/// Databricks (token, Statement Execution API executor), keys `{tag}-0…`.
fn many_connections(n: usize, tag: &str) -> String {
    let mut s = String::from("version: 1\nconnections:\n");
    for i in 0..n {
        if i % 2 == 0 {
            s.push_str(&format!(
                "  - key: {tag}-{i}\n    technology: Snowflake\n    host: acme-{tag}{i}.snowflakecomputing.com\n    warehouse: IMMUTA_WH\n    database: IMMUTA_{up}{i}\n    role: IMMUTA_{up}{i}_SYSTEM\n    auth: {{ type: userPassword, username: IMMUTA_{up}{i}_SYSTEM_ACCOUNT, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}\n",
                up = tag.to_uppercase()
            ));
        } else {
            s.push_str(&format!(
                "  - key: {tag}-{i}\n    technology: Databricks\n    workspaceUrl: dbc-{tag}{i}.cloud.databricks.com\n    httpPath: /sql/1.0/warehouses/w{tag}{i}\n    catalog: immuta_{tag}{i}\n    auth: {{ type: token, token: {{ env: CONNCTL_TEST_DBX_TOKEN }} }}\n"
            ));
        }
    }
    s
}

/// The `connctl` command with the same environment as [`TestEnv::run`], to spawn.
fn command(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connctl"));
    cmd.args(args)
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("TEST_IMMUTA_KEY", API_KEY)
        .env("TEST_SF_PAT", "test-pat")
        .env("TEST_DBX_PAT", "test-dbx-pat")
        .env("CONNCTL_TEST_SF_PASSWORD", "canary-sf-password-7c1")
        .env("CONNCTL_TEST_DBX_TOKEN", "canary-dbx-token-7c4")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn assert_no_panic(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{what} panicked:\n{stderr}"
    );
}

/// Every file below `dir` with its bytes, relative paths sorted.
fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.push((path.strip_prefix(dir).expect("prefix").to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------------
// Faults: 20 % 503s, a rate limit (429 + Retry-After) and jitter. Apply converges within a
// bounded number of runs, the plan is then empty, and nothing is registered twice.

#[test]
fn faults_apply_converges_without_duplicate_registrations() {
    let n = size(12, 100);
    let max_runs = 10;
    let env = env_with(EmulatorConfig {
        fail_rate: 0.2,
        rate_limit: Some(40),
        jitter_ms: 20,
        seed: 0x5eed,
        job_step_ms: 20,
        ..EmulatorConfig::default()
    });
    env.write("conns.yaml", &many_connections(n, "f"));
    let started = Instant::now();
    let mut runs = 0;
    let mut last = None;
    while runs < max_runs {
        runs += 1;
        let out = env.run(&["apply", "--auto-approve", "--wait", "conns.yaml"]);
        assert_no_panic("apply under faults", &out.stderr);
        assert!(
            out.code == 0 || out.code == 1,
            "apply run {runs}: exit {}\n{}\n{}",
            out.code,
            out.stdout,
            out.stderr
        );
        // The state parses after every run, finished or not.
        let _ = env.state();
        let code = out.code;
        last = Some(out);
        if code == 0 {
            break;
        }
    }
    let last = last.expect("ran");
    assert_eq!(
        last.code, 0,
        "apply did not converge in {max_runs} runs:\n{}\n{}",
        last.stdout, last.stderr
    );

    // Converged: the plan is empty. A plan may itself run out of retries under 20 % faults
    // (exit 1); it must never show a change (exit 2 or 3).
    let mut plan_runs = 0;
    loop {
        plan_runs += 1;
        let plan = env.run(&["plan", "--detailed-exitcode", "conns.yaml"]);
        assert_no_panic("plan under faults", &plan.stderr);
        assert!(
            plan.code == 0 || plan.code == 1,
            "not converged (exit {}):\n{}",
            plan.code,
            plan.stdout
        );
        if plan.code == 0 {
            assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);
            break;
        }
        assert!(plan_runs < 5, "plan kept failing:\n{}", plan.stderr);
    }

    let state = env.state();
    let conns = state["connections"].as_object().expect("connections");
    assert_eq!(conns.len(), n);
    for (key, c) in conns {
        assert_eq!(c["step"], "registered", "{key}");
        let registers = c["bulkIds"]
            .as_array()
            .map(|b| b.iter().filter(|r| r["origin"] == "register").count())
            .unwrap_or(0);
        assert_eq!(registers, 1, "{key}: register bulkIds {}", c["bulkIds"]);
    }

    let log = request_log(&env);
    let (ok, conflicts) = registrations(&env);
    let failed_503 = count(&log, None, None, |s| s == 503);
    let limited_429 = count(&log, None, None, |s| s == 429);
    let failed_registrations = count(&log, Some("POST"), Some("/data/connection"), |s| s >= 500);
    eprintln!(
        "faults: {n} connections converged in {runs} apply run(s) and {plan_runs} plan run(s), {:.1} s; \
         {} requests, {failed_503} answered 503, {limited_429} answered 429; \
         {failed_registrations} registrations faulted; registrations 2xx: {ok}, 409: {conflicts}; duplicates: {}",
        started.elapsed().as_secs_f64(),
        log.len(),
        ok.saturating_sub(n) + conflicts,
    );
    assert!(failed_503 > 0, "no 503 was injected; the test proves nothing");
    assert!(limited_429 > 0, "no 429 was injected; the test proves nothing");
    assert_eq!(ok, n, "duplicate (or missing) registrations");
    assert_eq!(conflicts, 0, "a registration was repeated for an existing key");
}

// ---------------------------------------------------------------------------------------------
// Secrets: canary values in every secret field, the API key and the executor tokens; every
// command at -vvv, in text and JSON logs, including failures: no canary anywhere.

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
    let mut env = env_with(EmulatorConfig {
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

// ---------------------------------------------------------------------------------------------
// Concurrency: two applies at once on the same folder. One proceeds; the other fails at once,
// naming the holder. Nothing registers twice; the state parses.

#[test]
fn two_applies_at_once_one_waits_for_nobody() {
    let rounds = size(5, 100);
    let (mut overlapped, mut sequential) = (0, 0);
    let mut misnamed = Vec::new();
    for round in 0..rounds {
        let env = env_with(EmulatorConfig {
            latency_ms: 200,
            job_step_ms: 20,
            seed: round as u64,
            ..EmulatorConfig::default()
        });
        env.write("conns.yaml", &many_connections(2, "c"));
        let args = ["apply", "--auto-approve", "conns.yaml"];
        let start = Instant::now();
        let a = command(&env, &args).spawn().expect("spawn a");
        let b = command(&env, &args).spawn().expect("spawn b");
        let (a, b) = (
            std::thread::spawn(move || watch(a, start)),
            std::thread::spawn(move || watch(b, start)),
        );
        let (a, b) = (a.join().expect("a"), b.join().expect("b"));
        let pids = [a.pid, b.pid];
        let what = |r: &Finished| {
            format!(
                "round {round}, pid {} exit {} after {:?}\n--- stdout\n{}--- stderr\n{}",
                r.pid, r.code, r.after, r.stdout, r.stderr
            )
        };
        assert_no_panic(&what(&a), &a.stderr);
        assert_no_panic(&what(&b), &b.stderr);
        match (a.code, b.code) {
            (0, 0) => {
                // The first finished before the second took the lock: the second saw no change.
                sequential += 1;
                let later = if a.after > b.after { &a } else { &b };
                assert!(later.stdout.starts_with("No changes."), "{}", what(later));
            }
            (0, 1) | (1, 0) => {
                overlapped += 1;
                let (winner, loser) = if a.code == 0 { (&a, &b) } else { (&b, &a) };
                assert!(
                    loser.stderr.contains("locked by another connctl run:"),
                    "{}",
                    what(loser)
                );
                // Collected, so that one run counts every round that misnames the holder.
                let holder = loser
                    .stderr
                    .split("locked by another connctl run: pid ")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                    .and_then(|s| s.parse::<u32>().ok());
                if holder != Some(winner.pid) {
                    misnamed.push(format!(
                        "round {round}: holder pid {} (pids {pids:?}), loser said: {}",
                        winner.pid,
                        loser.stderr.lines().next().unwrap_or_default()
                    ));
                }
                assert!(
                    loser.after < winner.after,
                    "the loser waited for the lock:\n{}\n{}",
                    what(loser),
                    what(winner)
                );
                assert!(
                    loser.stdout.is_empty(),
                    "the loser printed a plan:\n{}",
                    what(loser)
                );
                assert!(winner.stdout.contains("Apply: 2 applied"), "{}", what(winner));
            }
            _ => panic!("unexpected exits:\n{}\n{}", what(&a), what(&b)),
        }
        let (ok, conflicts) = registrations(&env);
        assert_eq!((ok, conflicts), (2, 0), "round {round}: duplicate registrations");
        let state = env.state();
        assert_eq!(state["connections"].as_object().map(|c| c.len()), Some(2));
    }
    eprintln!(
        "concurrency: {rounds} rounds, {overlapped} overlapped (one refused at once), {sequential} sequential; \
         holder misnamed in {} round(s); duplicates: 0",
        misnamed.len()
    );
    assert!(
        misnamed.is_empty(),
        "the refused run did not name the holder in {} of {overlapped} overlapping rounds:\n{}",
        misnamed.len(),
        misnamed.join("\n")
    );
    assert!(
        overlapped * 2 >= rounds,
        "too few rounds overlapped ({overlapped} of {rounds}); the test proves little"
    );
}

struct Finished {
    pid: u32,
    code: i32,
    after: Duration,
    stdout: String,
    stderr: String,
}

/// Waits for `child` on a thread, recording when it finished.
fn watch(child: Child, start: Instant) -> Finished {
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    Finished {
        pid,
        code: out.status.code().unwrap_or(-1),
        after: start.elapsed(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: invalid settings (tests/fixtures/invalid-settings/*.toml) and state files
// (tests/fixtures/invalid-state/*.json). Each: exit 1, one clear message naming the problem,
// no panic, nothing written.

const ONE_SPEC: &str = "version: 1
connections:
  - key: dbx-bad-input
    technology: Databricks
    workspaceUrl: dbc-bi.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/bi
    catalog: immuta_bi
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";

fn fixture_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures").join(dir))
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Exactly one `error:` line, no panic.
fn assert_one_error(what: &str, stderr: &str) {
    assert_no_panic(what, stderr);
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(errors, 1, "{what}: expected one error, got:\n{stderr}");
}

#[test]
fn invalid_settings_are_one_clear_error_and_write_nothing() {
    let files = fixture_files("invalid-settings", "toml");
    assert!(files.len() >= 8, "only {} settings cases", files.len());
    let mut tried = 0;
    let mut problems: Vec<String> = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let expects: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| e.replace("{file}", &name))
            .collect();
        assert!(!expects.is_empty(), "{name}: no `# expect:` line");
        let env = TestEnv::new();
        std::fs::remove_file(env.path("connctl.toml")).unwrap();
        env.write(&name, &text);
        env.write("c.yaml", ONE_SPEC);
        let before = snapshot_tree(env.dir.path());
        for args in [
            &["plan", "c.yaml"][..],
            &["apply", "--auto-approve", "c.yaml"],
            &["drift", "c.yaml"],
            &["import", "c.yaml", "--key", "dbx-bad-input"],
        ] {
            let mut full = vec!["--config", name.as_str()];
            full.extend_from_slice(args);
            let out = env.run(&full);
            tried += 1;
            let what = format!("{name}: `connctl {}`", full.join(" "));
            // Problems are collected, so that one run lists every case that misbehaves.
            let mut problem = |p: String| problems.push(format!("{what}: {p}"));
            assert_no_panic(&what, &out.stderr);
            if out.code != 1 {
                problem(format!("exit {}\n{}\n{}", out.code, out.stdout, out.stderr));
            }
            let errors = out.stderr.lines().filter(|l| l.starts_with("error")).count();
            if errors != 1 {
                problem(format!("{errors} error lines:\n{}", out.stderr));
            }
            for e in &expects {
                if !out.stderr.contains(e.as_str()) {
                    problem(format!("no `{e}` in: {}", out.stderr));
                }
            }
            if out.stderr.contains("literal-key-never-echoed") {
                problem(format!("echoed the literal API key: {}", out.stderr.trim()));
            }
            // Writes are collected so that one run shows every case that writes.
            let after = snapshot_tree(env.dir.path());
            if after != before {
                let new: Vec<String> = after
                    .iter()
                    .filter(|f| !before.contains(f))
                    .map(|(p, _)| p.display().to_string())
                    .collect();
                problems.push(format!("{what}: wrote {new:?}"));
                if env.path(".connctl").exists() {
                    std::fs::remove_dir_all(env.path(".connctl")).unwrap();
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {tried} runs with invalid settings misbehaved (expected: exit 1, one error naming \
         the problem, no secret echoed, nothing written):\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "bad input: {} settings cases, {tried} runs, each exit 1 with one clear error, nothing written",
        files.len()
    );
}

/// What each state case must say (by default: that the file is corrupt).
fn state_expectation(name: &str) -> &'static str {
    match name {
        "newer-version.json" => "newer than this connctl understands",
        "missing-version.json" | "top-level-array.json" => "no \"version\" field",
        "version-string.json" | "version-fraction.json" => "\"version\" must be a whole number",
        _ => "is corrupt",
    }
}

#[test]
fn invalid_state_files_are_one_clear_error_and_stay_untouched() {
    let files = fixture_files("invalid-state", "json");
    assert!(files.len() >= 6, "only {} state cases", files.len());
    let env = TestEnv::new();
    env.write("c.yaml", ONE_SPEC);
    // The cases are mutations of this state, which is valid.
    env.write("valid.json", VALID_STATE);
    let ok = env.run(&["state", "list", "--state", "valid.json"]);
    assert_eq!(ok.code, 0, "the base state is not valid:\n{}", ok.stderr);
    assert!(ok.stdout.contains("dbx-token"), "{}", ok.stdout);

    let mut tried = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap();
        let rel = format!("state/{name}");
        let path = env.path(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        for args in [
            &["state", "list"][..],
            &["state", "show", "dbx-token"],
            &["state", "rm", "dbx-token"],
            &["status"],
            &["plan", "c.yaml"],
            &["apply", "--auto-approve", "c.yaml"],
            &["drift"],
            &["import", "c.yaml", "--key", "dbx-bad-input"],
        ] {
            let mut full = args.to_vec();
            full.extend_from_slice(&["--state", rel.as_str()]);
            let out = env.run(&full);
            tried += 1;
            let what = format!("`connctl {}`", full.join(" "));
            assert_eq!(out.code, 1, "{what}\n{}\n{}", out.stdout, out.stderr);
            assert_one_error(&what, &out.stderr);
            assert!(
                out.stderr.contains(&name),
                "{what}: the file is not named:\n{}",
                out.stderr
            );
            let expect = state_expectation(&name);
            assert!(
                out.stderr.contains(expect),
                "{what}: no `{expect}` in:\n{}",
                out.stderr
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{what}: the state file changed"
            );
            let others: Vec<String> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".json") && !n.ends_with(".lock"))
                .collect();
            assert!(others.is_empty(), "{what}: wrote {others:?}");
        }
    }
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
    eprintln!(
        "bad input: {} state cases, {tried} runs, each exit 1 with one clear error, file untouched",
        files.len()
    );
}

/// The state the invalid-state cases were made from.
const VALID_STATE: &str = r#"{
  "version": 1,
  "serial": 7,
  "lineage": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
  "salt": "5f0e2a9c4b7d1e3f5a6b8c9d0e1f2a3b",
  "connections": {
    "dbx-token": {
      "technology": "Databricks",
      "step": "registered",
      "applied": {
        "catalog": "immuta_token",
        "connection.hostname": "dbc-1234.cloud.databricks.com",
        "connection.token": "sha256:9c1f1c0b6c2f0a7e5b1d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b"
      },
      "integrationId": "1",
      "bulkIds": [
        {
          "bulkId": "b-1",
          "origin": "register",
          "at": "2025-01-01T00:00:00Z",
          "jobState": "completed"
        }
      ],
      "journal": [
        {
          "at": "2025-01-01T00:00:00Z",
          "step": "register",
          "phase": "intent"
        }
      ]
    }
  }
}
"#;

// ---------------------------------------------------------------------------------------------
// The state reader under random input: random bytes and JSON mutations of a real state (from
// an apply of every auth variant). `connctl state list` and `status` exit 0 or 1, never panic.

/// A state written by a real apply of every variant (made once per test binary).
fn real_state() -> &'static Value {
    static STATE: OnceLock<Value> = OnceLock::new();
    STATE.get_or_init(|| {
        let env = TestEnv::new();
        env.fixture("valid/all-variants");
        let out = env.run(&["apply", "--auto-approve", "--wait", "valid/all-variants"]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        env.state()
    })
}

fn state_reader_cases() -> u32 {
    if soak() { 4000 } else { 64 }
}

/// Runs the state readers on `bytes`; returns the exit codes.
fn read_state_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    std::fs::write(dir.path().join("fuzzed-state.json"), bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for args in [&["state", "list"][..], &["status", "--json"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_connctl"))
            .args(args)
            .args(["--state", "fuzzed-state.json"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .output()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(
            code == 0 || code == 1,
            "`connctl {}` exit {code} on {} bytes:\n{stderr}",
            args.join(" "),
            bytes.len()
        );
        prop_assert!(!stderr.contains("panicked"), "{stderr}");
        if code == 1 {
            prop_assert!(
                stderr.starts_with("error: ") && stderr.contains("fuzzed-state.json"),
                "an error that does not name the file:\n{stderr}"
            );
        }
        // Nothing but the state file is left (readers write nothing).
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        prop_assert_eq!(names, vec!["fuzzed-state.json".to_owned()]);
    }
    Ok(())
}

/// Every path (object keys and array indices) in `v`.
fn value_paths(v: &Value, here: &mut Vec<PathSeg>, out: &mut Vec<Vec<PathSeg>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(PathSeg::Key(k.clone()));
                value_paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(PathSeg::Index(i));
                value_paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathSeg {
    Key(String),
    Index(usize),
}

fn at_mut<'a>(v: &'a mut Value, path: &[PathSeg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        PathSeg::Key(k) => v.get_mut(k.as_str()),
        PathSeg::Index(i) => v.get_mut(*i),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at a path.
    Replace(prop::sample::Index, Value),
    /// Remove the key or element at a path.
    Remove(prop::sample::Index),
    /// Add a key to the object at (or above) a path.
    Insert(prop::sample::Index, String, Value),
    /// Cut the serialised text at a point.
    Truncate(prop::sample::Index),
    /// Overwrite one byte of the serialised text.
    Byte(prop::sample::Index, u8),
    /// Wrap the value at a path in `depth` arrays.
    Nest(prop::sample::Index, usize),
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!("registered")),
        Just(json!("exploded")),
        Just(json!("")),
        "\\PC{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        Just("version".to_owned()),
        Just("serial".to_owned()),
        Just("step".to_owned()),
        Just("bulkIds".to_owned()),
        Just("pending".to_owned()),
        Just("applied".to_owned()),
        "[a-zA-Z]{1,10}",
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        2 => (any::<prop::sample::Index>(), key, json_value()).prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        1 => (any::<prop::sample::Index>(), 1usize..400).prop_map(|(i, d)| Mutation::Nest(i, d)),
    ]
}

/// Applies `mutations` in order to `state`; returns the bytes to write.
fn mutate(state: &Value, mutations: &[Mutation]) -> Vec<u8> {
    let mut v = state.clone();
    let mut text: Option<Vec<u8>> = None;
    for m in mutations {
        if let Some(bytes) = text.as_mut() {
            // Already text: only the byte-level mutations still apply.
            match m {
                Mutation::Truncate(i) if !bytes.is_empty() => bytes.truncate(i.index(bytes.len())),
                Mutation::Byte(i, b) if !bytes.is_empty() => {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
                _ => {}
            }
            continue;
        }
        let mut paths = Vec::new();
        value_paths(&v, &mut Vec::new(), &mut paths);
        match m {
            Mutation::Replace(i, new) => {
                if let Some(slot) = at_mut(&mut v, &paths[i.index(paths.len())]) {
                    *slot = new.clone();
                }
            }
            Mutation::Remove(i) => {
                let path = &paths[i.index(paths.len())];
                if let Some((last, parent)) = path.split_last()
                    && let Some(p) = at_mut(&mut v, parent)
                {
                    match (last, p) {
                        (PathSeg::Key(k), Value::Object(m)) => {
                            m.remove(k);
                        }
                        (PathSeg::Index(i), Value::Array(a)) if *i < a.len() => {
                            a.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Insert(i, key, new) => {
                let mut path = paths[i.index(paths.len())].clone();
                loop {
                    match at_mut(&mut v, &path) {
                        Some(Value::Object(m)) => {
                            m.insert(key.clone(), new.clone());
                            break;
                        }
                        _ if path.pop().is_some() => {}
                        _ => break,
                    }
                }
            }
            Mutation::Nest(i, depth) => {
                if let Some(slot) = at_mut(&mut v, &paths[i.index(paths.len())]) {
                    for _ in 0..*depth {
                        *slot = Value::Array(vec![slot.take()]);
                    }
                }
            }
            Mutation::Truncate(_) | Mutation::Byte(..) => {
                let mut bytes = serde_json::to_vec_pretty(&v).expect("serialise");
                match m {
                    Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
                    Mutation::Byte(i, b) => {
                        let at = i.index(bytes.len());
                        bytes[at] = *b;
                    }
                    _ => unreachable!(),
                }
                text = Some(bytes);
            }
        }
    }
    text.unwrap_or_else(|| serde_json::to_vec_pretty(&v).expect("serialise"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: state_reader_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn state_reader_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_state_bytes(&bytes)?;
    }

    #[test]
    fn state_reader_never_panics_on_mutated_state(mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(real_state(), &mutations);
        read_state_bytes(&bytes)?;
    }
}

#[test]
fn state_reader_reads_the_unmutated_state() {
    // The control for the mutation test: the real state itself reads fine.
    let bytes = serde_json::to_vec_pretty(real_state()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.json"), &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_connctl"))
        .args(["state", "list", "--state", "s.json"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
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
