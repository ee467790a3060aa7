//! Reliability, faults: 20 % 503s, a rate limit (429 + Retry-After) and jitter. Apply converges
//! within a bounded number of runs, the plan is then empty, and nothing is registered twice.
//! Small by default (`make test`), full size with `CONNCTL_SOAK=1` (`make soak`); see
//! docs/reliability.md.

use std::time::Instant;

use connctl_emulator::EmulatorConfig;

use crate::support::{TestEnv, assert_no_panic, count, many_connections, registrations, request_log, size};

#[test]
fn faults_apply_converges_without_duplicate_registrations() {
    let n = size(12, 100);
    let max_runs = 10;
    let env = TestEnv::with_emulator(EmulatorConfig {
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
