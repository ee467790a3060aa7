//! The executors against the real emulator over HTTP: scripts come from its Immuta route
//! (`POST /integrations/scripts/create`) and run through its Snowflake SQL API and Databricks
//! Statement Execution API; the emulator's `/_emulator/state` shows every statement executed.

use std::time::Duration;

use connctl_emulator::{EmulatorConfig, RunningEmulator};
use connctl_exec::split::{SqlDialect, split_statements};
use connctl_exec::{
    DatabricksAuth, DatabricksExecConfig, ExecError, Executor, ExecutorConfig, Outcome, Purpose, ScriptRun,
    SnowflakeAuth, SnowflakeExecConfig, Target, Timing,
};
use connctl_spec::SecretRef;
use serde_json::{Value, json};

const SF_HOST: &str = "acme-prod.snowflakecomputing.com";
const DBX_HOST: &str = "dbc-1234.cloud.databricks.com";
const HTTP_PATH: &str = "/sql/1.0/warehouses/wh42";
/// A value the emulator puts into the scripts; it must never show in an error.
const CANARY: &str = "Canary-Pw-7f3a9c";

fn emulator() -> RunningEmulator {
    RunningEmulator::start(EmulatorConfig {
        job_step_ms: 20,
        ..Default::default()
    })
    .expect("emulator starts")
}

fn timing() -> Timing {
    Timing {
        request_timeout: Duration::from_secs(10),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        retries: 5,
        poll_min: Duration::from_millis(10),
        poll_max: Duration::from_millis(50),
    }
}

async fn immuta_script(emu: &RunningEmulator, body: Value) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/integrations/scripts/create", emu.url()))
        .header("Authorization", "emulator-api-key")
        .json(&body)
        .send()
        .await
        .expect("script request");
    let status = resp.status();
    let text = resp.text().await.expect("script body");
    assert!(status.is_success(), "scripts/create: {status}: {text}");
    text
}

async fn snowflake_script(emu: &RunningEmulator) -> String {
    immuta_script(
        emu,
        json!({"type": "Snowflake", "autoBootstrap": false, "config": {
            "host": SF_HOST, "warehouse": "COMPUTE_WH", "database": "IMMUTA_DB",
            "authenticationType": "userPassword", "username": "IMMUTA_SYSTEM_ACCOUNT", "password": CANARY,
            "audit": {"enabled": true}, "workspaces": {"enabled": false},
            "impersonation": {"enabled": false}, "lineage": {"enabled": false},
            "userRolePattern": {"exclude": []}
        }}),
    )
    .await
}

async fn databricks_script(emu: &RunningEmulator) -> String {
    immuta_script(
        emu,
        json!({"type": "Databricks", "autoBootstrap": false, "config": {
            "workspaceUrl": DBX_HOST, "httpPath": HTTP_PATH, "authenticationType": "token", "token": CANARY,
            "catalog": "immuta_catalog", "audit": {"enabled": true}
        }}),
    )
    .await
}

/// `(statements, executed)` of every script the emulator handed out.
async fn executed(emu: &RunningEmulator) -> Vec<(u64, u64)> {
    let v: Value = reqwest::get(format!("{}/_emulator/state", emu.url()))
        .await
        .expect("state")
        .json()
        .await
        .expect("state json");
    v["scripts"]
        .as_array()
        .expect("scripts")
        .iter()
        .map(|s| {
            (
                s["statements"].as_u64().unwrap_or(0),
                s["executed"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn secret_file(dir: &tempfile::TempDir, name: &str, value: &str) -> SecretRef {
    let path = dir.path().join(name);
    std::fs::write(&path, value).expect("write secret");
    SecretRef::File(path)
}

fn snowflake(emu: &RunningEmulator, auth: SnowflakeAuth) -> Executor {
    let cfg = ExecutorConfig::Snowflake(SnowflakeExecConfig {
        url: Some(emu.url()),
        account: None,
        user: "platform_admin".into(),
        role: Some("ACCOUNTADMIN".into()),
        warehouse: Some("ADMIN_WH".into()),
        auth,
        timeout_secs: 60,
    });
    Executor::new(cfg, reqwest::Client::new(), "/nonexistent".into()).with_timing(timing())
}

fn databricks(emu: &RunningEmulator, auth: DatabricksAuth) -> Executor {
    let cfg = ExecutorConfig::Databricks(DatabricksExecConfig {
        url: Some(emu.url()),
        warehouse_id: None,
        auth,
        timeout_secs: 60,
    });
    Executor::new(cfg, reqwest::Client::new(), "/nonexistent".into()).with_timing(timing())
}

fn sf_run(sql: &str) -> ScriptRun<'_> {
    ScriptRun {
        connection_key: "sf-prod",
        purpose: Purpose::Create,
        sql,
        target: Target::Snowflake { host: SF_HOST.into() },
    }
}

fn dbx_run(sql: &str) -> ScriptRun<'_> {
    ScriptRun {
        connection_key: "dbx-prod",
        purpose: Purpose::Create,
        sql,
        target: Target::Databricks {
            workspace_url: DBX_HOST.into(),
            http_path: HTTP_PATH.into(),
        },
    }
}

#[tokio::test]
async fn snowflake_oauth_runs_the_immuta_script() {
    let emu = emulator();
    let script = snowflake_script(&emu).await;
    let n = split_statements(&script, SqlDialect::Snowflake)
        .expect("splits")
        .len();
    assert!(n > 3, "a realistic script: {n} statements");
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = SnowflakeAuth::OAuth {
        token: secret_file(&dir, "t", "oauth-token"),
    };
    let out = snowflake(&emu, auth)
        .execute(&sf_run(&script))
        .await
        .expect("executes");
    assert_eq!(out, Outcome::Executed { statements: n });
    assert_eq!(executed(&emu).await, vec![(n as u64, n as u64)]);
}

#[tokio::test]
async fn snowflake_key_pair_and_pat() {
    let emu = emulator();
    let script = snowflake_script(&emu).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = include_str!("fixtures/test_rsa_key.p8");
    let auth = SnowflakeAuth::KeyPair {
        private_key: secret_file(&dir, "key.p8", key),
    };
    snowflake(&emu, auth)
        .execute(&sf_run(&script))
        .await
        .expect("key pair executes");
    let auth = SnowflakeAuth::ProgrammaticAccessToken {
        token: secret_file(&dir, "pat", "pat-token"),
    };
    snowflake(&emu, auth)
        .execute(&sf_run(&script))
        .await
        .expect("PAT executes");
}

#[tokio::test]
async fn snowflake_rejected_statement_is_named() {
    let emu = emulator();
    let script = snowflake_script(&emu).await;
    let n = split_statements(&script, SqlDialect::Snowflake)
        .expect("splits")
        .len();
    let broken = format!("{script}\nGRANT SYNTAX_ERROR_FOR_TEST TO ROLE R;\nSELECT 1;\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = SnowflakeAuth::OAuth {
        token: secret_file(&dir, "t", "oauth-token"),
    };
    let err = snowflake(&emu, auth)
        .execute(&sf_run(&broken))
        .await
        .expect_err("fails");
    assert!(matches!(err, ExecError::Statement { .. }), "{err:?}");
    assert_eq!(err.statement_number(), Some(n + 1), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("statement {} (GRANT)", n + 1)), "{text}");
    assert!(!text.contains(CANARY), "{text}");
}

#[tokio::test]
async fn databricks_pat_runs_statement_by_statement() {
    let emu = emulator();
    let script = databricks_script(&emu).await;
    let n = split_statements(&script, SqlDialect::Databricks)
        .expect("splits")
        .len();
    assert!(n > 3, "a realistic script: {n} statements");
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = DatabricksAuth::Token {
        token: secret_file(&dir, "pat", "dapi-token"),
    };
    let out = databricks(&emu, auth)
        .execute(&dbx_run(&script))
        .await
        .expect("executes");
    assert_eq!(out, Outcome::Executed { statements: n });
    assert_eq!(executed(&emu).await, vec![(n as u64, n as u64)]);
}

#[tokio::test]
async fn databricks_oauth_m2m() {
    let emu = emulator();
    let script = databricks_script(&emu).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = DatabricksAuth::OAuthM2M {
        client_id: "8b4a3c1e-2f7d-4c1b-9a51-7e1d2c3b4a5f".into(),
        client_secret: secret_file(&dir, "secret", "dose-client-secret"),
        token_url: None,
    };
    let ex = databricks(&emu, auth);
    ex.execute(&dbx_run(&script)).await.expect("executes");
    ex.execute(&dbx_run(&script))
        .await
        .expect("executes again with the cached token");
}

#[tokio::test]
async fn databricks_stops_at_the_failed_statement() {
    let emu = emulator();
    let script = databricks_script(&emu).await;
    let n = split_statements(&script, SqlDialect::Databricks)
        .expect("splits")
        .len();
    // The failure sits in the middle: nothing after it may run.
    let mut parts: Vec<String> = split_statements(&script, SqlDialect::Databricks)
        .expect("splits")
        .iter()
        .map(|s| s.text.to_owned())
        .collect();
    parts.insert(2, "GRANT SYNTAX_ERROR_FOR_TEST ON CATALOG `c` TO `p`".into());
    let broken = parts.join(";\n") + ";\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = DatabricksAuth::Token {
        token: secret_file(&dir, "pat", "dapi-token"),
    };
    let err = databricks(&emu, auth)
        .execute(&dbx_run(&broken))
        .await
        .expect_err("fails");
    assert_eq!(err.statement_number(), Some(3), "{err}");
    let text = err.to_string();
    assert!(text.contains("statement 3 (GRANT)"), "{text}");
    assert!(!text.contains(CANARY), "{text}");
    assert_eq!(
        executed(&emu).await,
        vec![(n as u64, 2)],
        "only the two statements before it ran"
    );
}

#[tokio::test]
async fn whole_script_in_one_databricks_call_fails_but_split_succeeds() {
    // Guards the reason the splitter exists: the emulator, like Databricks, refuses `a; b`.
    let emu = emulator();
    let script = databricks_script(&emu).await;
    let resp: Value = reqwest::Client::new()
        .post(format!("{}/api/2.0/sql/statements", emu.url()))
        .bearer_auth("dapi-token")
        .json(&json!({"statement": script, "warehouse_id": "wh42", "wait_timeout": "0s"}))
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("json");
    let id = resp["statement_id"].as_str().unwrap_or_default().to_owned();
    let mut state = resp["status"]["state"].as_str().unwrap_or_default().to_owned();
    for _ in 0..100 {
        if state != "PENDING" && state != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let v: Value = reqwest::Client::new()
            .get(format!("{}/api/2.0/sql/statements/{id}", emu.url()))
            .bearer_auth("dapi-token")
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("json");
        state = v["status"]["state"].as_str().unwrap_or_default().to_owned();
    }
    assert_eq!(state, "FAILED");
}

#[tokio::test]
async fn command_and_manual_executors_with_an_immuta_script() {
    let emu = emulator();
    let script = snowflake_script(&emu).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("piped.sql");
    let cfg = ExecutorConfig::Command {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!("cat > '{}'", out_file.display()),
        ],
        env: vec![],
    };
    let ex = Executor::new(cfg, reqwest::Client::new(), dir.path().join("scripts"));
    let out = ex.execute(&sf_run(&script)).await.expect("command runs");
    assert!(
        matches!(out, Outcome::Executed { statements } if statements > 3),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&out_file).expect("piped"), script);

    let ex = Executor::new(
        ExecutorConfig::default(),
        reqwest::Client::new(),
        dir.path().join("scripts"),
    );
    let out = ex.execute(&sf_run(&script)).await.expect("saves");
    let Outcome::AwaitingManual { path } = out else {
        panic!("manual: {out:?}")
    };
    assert_eq!(path, dir.path().join("scripts/sf-prod.sql"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Accepted (HTTP 200) Databricks submissions and all Snowflake submissions, from the request log.
async fn submissions(emu: &RunningEmulator) -> (usize, Vec<String>) {
    let log: Vec<Value> = reqwest::get(format!("{}/_emulator/requests", emu.url()))
        .await
        .expect("log")
        .json()
        .await
        .expect("log json");
    let dbx_ok = log
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"] == "/api/2.0/sql/statements" && e["status"] == 200)
        .count();
    let sf_queries = log
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"] == "/api/v2/statements")
        .map(|e| e["query"].as_str().unwrap_or_default().to_owned())
        .collect();
    (dbx_ok, sf_queries)
}

#[tokio::test]
async fn converges_through_injected_faults_and_rate_limits() {
    let emu = RunningEmulator::start(EmulatorConfig {
        job_step_ms: 20,
        fail_rate: 0.3,
        rate_limit: Some(25),
        seed: 7,
        ..Default::default()
    })
    .expect("emulator starts");
    let patient = Timing {
        retries: 10,
        retry_max: Duration::from_secs(1),
        ..timing()
    };
    let dir = tempfile::tempdir().expect("tempdir");

    // scripts/create may meet an injected 503 too; ask until it answers.
    let mut script = None;
    for _ in 0..20 {
        let resp = reqwest::Client::new()
            .post(format!("{}/integrations/scripts/create", emu.url()))
            .header("Authorization", "emulator-api-key")
            .json(&json!({"type": "Databricks", "autoBootstrap": false, "config": {
                "workspaceUrl": DBX_HOST, "httpPath": HTTP_PATH, "authenticationType": "token", "token": CANARY,
                "catalog": "immuta_catalog", "audit": {"enabled": true}}}))
            .send()
            .await
            .expect("script request");
        if resp.status().is_success() {
            script = Some(resp.text().await.expect("text"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let script = script.expect("a script within 20 tries");
    let n = split_statements(&script, SqlDialect::Databricks)
        .expect("splits")
        .len();

    let auth = DatabricksAuth::Token {
        token: secret_file(&dir, "pat", "dapi-token"),
    };
    let out = databricks(&emu, auth)
        .with_timing(patient)
        .execute(&dbx_run(&script))
        .await
        .expect("converges");
    assert_eq!(out, Outcome::Executed { statements: n });
    let (accepted, _) = submissions(&emu).await;
    assert_eq!(accepted, n, "each statement was accepted exactly once");

    let auth = SnowflakeAuth::OAuth {
        token: secret_file(&dir, "t", "oauth-token"),
    };
    let sf_script =
        "CREATE ROLE IF NOT EXISTS \"IMMUTA_SYSTEM\";\nGRANT ROLE \"IMMUTA_SYSTEM\" TO ROLE SYSADMIN;\n";
    let out = snowflake(&emu, auth)
        .with_timing(patient)
        .execute(&sf_run(sf_script))
        .await
        .expect("converges");
    assert_eq!(out, Outcome::Executed { statements: 2 });
    let (_, queries) = submissions(&emu).await;
    let ids: std::collections::BTreeSet<String> = queries
        .iter()
        .filter_map(|q| {
            q.split('&')
                .find(|p| p.starts_with("requestId="))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every Snowflake attempt reused one requestId: {queries:?}"
    );
    assert!(
        queries.iter().skip(1).all(|q| q.contains("retry=true")),
        "{queries:?}"
    );

    let log: Vec<Value> = reqwest::get(format!("{}/_emulator/requests", emu.url()))
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let faults = log
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/api/")))
        .filter(|e| e["status"] == 503 || e["status"] == 429)
        .count();
    assert!(faults > 0, "the run met injected faults");
}
