//! Crash and resume: `apply` killed with SIGKILL at many moments, restarted each time until
//! done. Every connection must end registered exactly once (the emulator's request log proves
//! it), no bulkId may go unaccounted for, and the state must parse after every kill.
//! `CONNCTL_SOAK=1` runs the full size (50 connections, 100 kills).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::TestEnv;

fn spec(n: usize) -> String {
    let mut text = String::from("version: 1\nconnections:\n");
    for i in 0..n {
        if i % 2 == 0 {
            text.push_str(&format!(
                "  - key: sf-{i:03}\n    technology: Snowflake\n    host: acct{i}.snowflakecomputing.com\n    warehouse: WH\n    database: IMMUTA_{i}\n    role: R\n    auth: {{ type: userPassword, username: SYS, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}\n"
            ));
        } else {
            text.push_str(&format!(
                "  - key: dbx-{i:03}\n    technology: Databricks\n    workspaceUrl: dbc-{i}.cloud.databricks.com\n    httpPath: /sql/1.0/warehouses/w{i}\n    catalog: immuta_{i}\n    auth: {{ type: token, token: {{ env: CONNCTL_TEST_DBX_TOKEN }} }}\n"
            ));
        }
    }
    text
}

#[test]
fn killed_at_many_moments_registers_each_connection_exactly_once() {
    let soak = std::env::var_os("CONNCTL_SOAK").is_some();
    // Enough work (requests × latency ÷ parallelism) that every kill lands inside a run.
    let (n, kills, parallelism) = if soak { (50, 100, "1") } else { (20, 20, "2") };
    let env = TestEnv::with_emulator(connctl_emulator::EmulatorConfig {
        latency_ms: 50,
        jitter_ms: 10,
        seed: 11,
        job_step_ms: 20,
        ..Default::default()
    });
    env.write("c.yaml", &spec(n));

    let mut killed = 0;
    let mut runs = 0;
    let mut rng = 0x2545F4914F6CDD1Du64;
    // Each run is killed somewhere in its first 300 ms: before, during or after any step.
    let window_ms = 280u64;
    let finished = loop {
        runs += 1;
        assert!(runs <= kills + 30, "apply did not converge after {runs} runs");
        let mut child = env
            .command(&["apply", "--auto-approve", "--parallelism", parallelism, "c.yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn connctl");
        if killed < kills {
            // A different moment each time: xorshift over the first part of a run.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = Duration::from_millis(20 + rng % window_ms);
            let started = Instant::now();
            let mut exited = None;
            while started.elapsed() < at {
                if let Some(status) = child.try_wait().expect("wait") {
                    exited = Some(status);
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            if exited.is_none() {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                killed += 1;
                // The state parses after every kill (when it exists yet).
                if env.path(".connctl/state.json").exists() {
                    let _ = env.state();
                }
                continue;
            }
            let status = exited.expect("exited");
            if status.success() && plan_is_clean(&env) {
                break true;
            }
            continue;
        }
        let status = child.wait().expect("wait");
        if status.success() && plan_is_clean(&env) {
            break true;
        }
    };
    assert!(finished);
    eprintln!("crash suite: {n} connections, {killed} SIGKILLs, {runs} runs");
    assert_eq!(killed, kills, "every planned kill landed inside a run");

    // Registered exactly once each: n successful registrations and no conflict on any.
    let log = env.admin("GET", "/_emulator/requests", serde_json::Value::Null);
    let registrations: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/data/connection")
        .collect();
    let ok = registrations
        .iter()
        .filter(|r| r["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
        .count();
    let conflicts = registrations.iter().filter(|r| r["status"] == 409).count();
    assert_eq!(ok, n, "each connection registered exactly once");
    assert_eq!(conflicts, 0, "a registration was repeated");

    // Every bulkId accounted for: each connection holds its registration's bulkId, or says
    // plainly that the registration was confirmed by reading Immuta after the process died
    // between Immuta's answer and the state write.
    let emulator = env.admin("GET", "/_emulator/state", serde_json::Value::Null);
    let issued: Vec<&str> = emulator["bulkIds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    let state = env.state();
    let connections = state["connections"].as_object().unwrap();
    assert_eq!(connections.len(), n);
    let mut recovered = 0;
    for (key, c) in connections {
        assert_eq!(c["step"], "registered", "{key}");
        let bulks: Vec<&str> = c["bulkIds"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b["origin"] == "register")
                    .filter_map(|b| b["bulkId"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for b in &bulks {
            assert!(issued.contains(b), "{key}: bulkId {b} was never issued");
        }
        if bulks.is_empty() {
            let confirmed = c["journal"].as_array().unwrap().iter().any(|j| {
                j["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("confirmed by reading Immuta"))
            });
            assert!(confirmed, "{key}: no bulkId and no recorded confirmation: {c}");
            recovered += 1;
        }
    }
    eprintln!("crash suite: {recovered} registration(s) confirmed by reading Immuta after a kill");
}

fn plan_is_clean(env: &TestEnv) -> bool {
    env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code == 0
}

#[test]
fn a_second_writer_fails_at_once_naming_the_holder() {
    let env = TestEnv::with_emulator(connctl_emulator::EmulatorConfig {
        latency_ms: 300,
        ..Default::default()
    });
    env.write("c.yaml", &spec(2));
    let mut first = env
        .command(&["apply", "--auto-approve", "c.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock (the lock file records its pid).
    let started = Instant::now();
    while !std::fs::read_to_string(env.path(".connctl/state.lock"))
        .is_ok_and(|t| t.contains(&first.id().to_string()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "first apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(second.code, 1);
    // Names the first run's pid, which changes every run (a snapshot would filter it away).
    assert!(
        second
            .stderr
            .contains(&format!("locked by another connctl run: pid {}", first.id())),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
}
