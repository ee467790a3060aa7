//! Fault injection: the fail-rate / rate-limit mix, seed repeatability, programmed faults, and
//! that `/_emulator/` routes are never faulted.

mod common;

use common::*;
use connctl_emulator::{EmulatorConfig, fault_decision};
use reqwest::Method;
use serde_json::json;

async fn statuses(env: &Env, n: usize) -> Vec<(u16, Option<String>)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = env.immuta(Method::GET, "/integrations", None).await;
        let retry = r
            .headers
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii header").to_string());
        out.push((r.status, retry));
    }
    out
}

#[tokio::test]
async fn fail_rate_and_rate_limit_mix() {
    let (seed, rate) = (7, 0.2);
    let env = Env::with(EmulatorConfig {
        fail_rate: rate,
        rate_limit: Some(50),
        seed,
        ..Default::default()
    });
    let got = statuses(&env, 200).await;
    let count = |s: u16| got.iter().filter(|(x, _)| *x == s).count();
    let (ok, failed, limited) = (count(200), count(503), count(429));
    eprintln!("200: {ok}, 503: {failed}, 429: {limited}");
    assert_eq!(ok + failed + limited, 200, "only 200, 503 and 429 answers");
    assert!(limited > 0, "the rate limit answered 429");
    // every admitted request is failed exactly when the seeded RNG says so
    let mut admitted = 0;
    for (seq, (status, retry)) in got.iter().enumerate() {
        if *status == 429 {
            let secs: u64 = retry.as_deref().expect("Retry-After on 429").parse().unwrap();
            assert!((1..=1).contains(&secs), "Retry-After {secs}");
            continue;
        }
        admitted += 1;
        assert_eq!(
            *status == 503,
            fault_decision(seed, seq as u64, rate),
            "request {seq}"
        );
    }
    // the first 50 are always admitted; the log agrees that no fixed one-second window (each opened by
    // the first request after the previous one closed) admitted more than 50
    assert!(got[..50].iter().all(|(s, _)| *s != 429));
    let log = env.admin(Method::GET, "/_emulator/requests", None).await.json();
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 200);
    let first = entries[0]["at_ms"].as_u64().unwrap();
    let last = entries[199]["at_ms"].as_u64().unwrap();
    let windows = (last - first + 1) / 1000 + 1;
    assert!(
        admitted as u64 <= 50 * windows,
        "{admitted} admitted over {windows} window(s)"
    );
    assert_eq!(entries.iter().filter(|e| e["status"] != 429).count(), admitted);
    // the admitted mix is near the configured rate (exactly what the seed predicts)
    let predicted: usize = (0..200u64)
        .zip(got.iter())
        .filter(|(seq, (s, _))| *s != 429 && fault_decision(seed, *seq, rate))
        .count();
    assert_eq!(failed, predicted);
    assert!(failed > 0 && failed < admitted / 2, "{failed} of {admitted}");
}

#[tokio::test]
async fn fail_rate_matches_configuration_over_many_requests() {
    let env = Env::with(EmulatorConfig {
        fail_rate: 0.2,
        seed: 3,
        ..Default::default()
    });
    let got = statuses(&env, 500).await;
    let failed = got.iter().filter(|(s, _)| *s == 503).count();
    let expected = (0..500).filter(|s| fault_decision(3, *s, 0.2)).count();
    assert_eq!(failed, expected);
    assert!((70..=130).contains(&failed), "{failed} of 500 at 0.2");
    assert!(got.iter().all(|(s, _)| *s == 200 || *s == 503));
    // the 503 carries the Immuta envelope
    let r = loop {
        let r = env.immuta(Method::GET, "/integrations", None).await;
        if r.status == 503 {
            break r;
        }
    };
    assert_eq!(r.json()["statusCode"], 503);
}

#[tokio::test]
async fn seed_makes_it_repeatable() {
    let run = |seed: u64| async move {
        let env = Env::with(EmulatorConfig {
            fail_rate: 0.3,
            seed,
            ..Default::default()
        });
        let a = statuses(&env, 100).await;
        // a reset restarts the sequence
        env.admin(Method::POST, "/_emulator/reset", None).await;
        let b = statuses(&env, 100).await;
        assert_eq!(a, b, "reset restarts the seeded sequence");
        a
    };
    let first = run(42).await;
    let second = run(42).await;
    let other = run(43).await;
    assert_eq!(first, second, "same seed, same sequence");
    assert_ne!(first, other, "another seed, another sequence");
}

#[tokio::test]
async fn programmed_faults_and_admin_is_never_faulted() {
    let env = Env::with(EmulatorConfig {
        fail_rate: 1.0,
        ..Default::default()
    });
    // every Immuta and warehouse request fails, admin routes never do
    assert_eq!(env.immuta(Method::GET, "/integrations", None).await.status, 503);
    let r = env
        .http
        .post(format!("{}/api/2.0/sql/statements", env.emu.url()))
        .bearer_auth("t")
        .json(&json!({"statement": "SELECT 1", "warehouse_id": "w"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(env.admin(Method::GET, "/_emulator/state", None).await.status, 200);
    assert_eq!(
        env.admin(Method::GET, "/_emulator/requests", None).await.status,
        200
    );

    let env = Env::new();
    let r = env
        .admin(
            Method::POST,
            "/_emulator/faults",
            Some(json!({"method": "POST", "path": "/data/connection", "count": 2, "status": 503})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for _ in 0..2 {
        let r = env
            .immuta(Method::POST, "/data/connection", Some(sf_registration("x")))
            .await;
        assert_eq!(r.status, 503);
    }
    // other routes are untouched, and the third request goes through (to the real answer)
    assert_eq!(
        env.immuta(Method::POST, "/data/connection/test", Some(sf_registration("x")))
            .await
            .status,
        400
    );
    let r = env
        .immuta(Method::POST, "/data/connection", Some(sf_registration("x")))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("cannot connect"));
    // a held (delayed) request is answered normally
    env.admin(
        Method::POST,
        "/_emulator/faults",
        Some(json!({"method": "GET", "path": "/integrations", "count": 1, "delay_ms": 20})),
    )
    .await;
    assert_eq!(env.immuta(Method::GET, "/integrations", None).await.status, 200);
    // the request log has method, path, query and status
    let log = env.admin(Method::GET, "/_emulator/requests", None).await.json();
    let first = &log[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/data/connection");
    assert_eq!(first["status"], 503);
    assert!(first["seq"].is_u64() && first["at_ms"].is_u64());
    env.immuta(Method::GET, "/jobs?bulkId=abc", None).await;
    let log = env.admin(Method::GET, "/_emulator/requests", None).await.json();
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["path"], "/jobs");
    assert_eq!(last["query"], "bulkId=abc");
    assert_eq!(last["status"], 404);
}

#[tokio::test]
async fn an_after_fault_carries_the_request_out_then_loses_or_delays_its_answer() {
    let env = Env::new();
    env.admin(
        Method::POST,
        "/_emulator/seed",
        Some(json!({"connections": [dbx_registration("gone")]})),
    )
    .await;
    env.admin(
        Method::POST,
        "/_emulator/faults",
        Some(json!({"method": "DELETE", "path": "/data/object/gone", "status": 500, "after": true})),
    )
    .await;
    // The answer says 500, but the delete happened.
    assert_eq!(
        env.immuta(Method::DELETE, "/data/object/gone", None).await.status,
        500
    );
    assert_eq!(
        env.immuta(Method::GET, "/data/connection/gone", None)
            .await
            .status,
        404
    );

    // Without a status the real answer comes, late.
    env.admin(
        Method::POST,
        "/_emulator/seed",
        Some(json!({"connections": [dbx_registration("late")]})),
    )
    .await;
    env.admin(
        Method::POST,
        "/_emulator/faults",
        Some(json!({"method": "DELETE", "path": "/data/object/late", "delay_ms": 200, "after": true})),
    )
    .await;
    let started = std::time::Instant::now();
    let r = env.immuta(Method::DELETE, "/data/object/late", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
}
