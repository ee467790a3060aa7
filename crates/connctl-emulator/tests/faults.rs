//! Fault injection: the fail-rate / rate-limit mix, seed repeatability, programmed faults, and
//! that `/_emulator/` routes are never faulted.

mod common;

use common::*;
use connctl_emulator::{EmulatorConfig, fault_decision};
use reqwest::Method;
use serde_json::{Value, json};

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

/// Programs one fault through the admin API.
async fn program(env: &Env, fault: serde_json::Value) {
    let r = env.admin(Method::POST, "/_emulator/faults", Some(fault)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// `POST /data/settings`-free probe: `PUT /data/settings/k` changes isActive and issues a bulkId.
async fn settings_put(env: &Env, client: &reqwest::Client) -> Result<reqwest::Response, reqwest::Error> {
    client
        .put(format!("{}/data/settings/k", env.emu.url()))
        .header("authorization", KEY)
        .json(&json!({"settings": {"isActive": true}}))
        .send()
        .await
}

async fn issued_settings_bulks(env: &Env) -> usize {
    let state = env.admin(Method::GET, "/_emulator/state", None).await.json();
    state["issuedBulkIds"]
        .as_array()
        .expect("issuedBulkIds")
        .iter()
        .filter(|b| b["origin"] == "settings" && b["key"] == "k")
        .count()
}

async fn seeded() -> Env {
    let env = Env::new();
    let r = env
        .admin(
            Method::POST,
            "/_emulator/seed",
            Some(json!({"connections": [sf_registration("k")]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    env
}

#[tokio::test]
async fn lost_answers_applied_or_not() {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for applied in [false, true] {
        // reset: no answer at all; the write happened exactly when `applied`
        let env = seeded().await;
        program(
            &env,
            json!({"method": "PUT", "path": "/data/settings/*", "kind": "reset", "applied": applied}),
        )
        .await;
        let err = settings_put(&env, &client).await.expect_err("no answer");
        assert!(!err.is_timeout() && !err.is_connect(), "{err:?}");
        assert_eq!(issued_settings_bulks(&env).await, usize::from(applied));
        let log = env.admin(Method::GET, "/_emulator/requests", None).await.json();
        assert_eq!(log[0]["fault"], "reset");
        assert_eq!(log[0]["status"], 0);
        assert_eq!(log[0]["handled"], if applied { json!(200) } else { Value::Null });
        // the next request is answered normally
        assert_eq!(settings_put(&env, &client).await.unwrap().status(), 200);

        // timeout: the client gives up; late: the answer comes after the client gave up
        for kind in ["timeout", "late"] {
            let env = seeded().await;
            program(&env, json!({"method": "PUT", "path": "/data/settings/k", "kind": kind, "applied": applied, "delay_ms": 1500})).await;
            let err = settings_put(&env, &client).await.expect_err("no answer in time");
            assert!(err.is_timeout(), "{kind}: {err:?}");
            let expect = usize::from(applied || kind == "late");
            if kind == "late" && !applied {
                // the held request is applied after the client gave up
                assert_eq!(issued_settings_bulks(&env).await, 0);
                tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            }
            assert_eq!(
                issued_settings_bulks(&env).await,
                expect,
                "{kind} applied={applied}"
            );
        }

        // mangled answers: status 5xx, HTML 502, a cut JSON 200, an HTML 200
        for (fault, status, content_type) in [
            (json!({"kind": "status", "status": 500}), 500, "application/json"),
            (json!({"status": 504}), 504, "application/json"),
            (json!({"kind": "html502"}), 502, "text/html"),
            (json!({"kind": "truncated"}), 200, "application/json"),
            (json!({"kind": "nonjson200"}), 200, "text/html"),
        ] {
            let env = seeded().await;
            let mut f = fault.clone();
            f["method"] = json!("PUT");
            f["path"] = json!("/data/settings/*");
            f["applied"] = json!(applied);
            program(&env, f).await;
            let r = settings_put(&env, &client).await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{fault}");
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with(content_type),
                "{fault}"
            );
            let text = r.text().await.unwrap();
            if status == 200 {
                assert!(serde_json::from_str::<Value>(&text).is_err(), "{fault}: {text}");
            }
            assert_eq!(issued_settings_bulks(&env).await, usize::from(applied), "{fault}");
        }
    }
    // a truncated answer of an applied write is the real answer, cut
    let env = seeded().await;
    program(
        &env,
        json!({"method": "PUT", "path": "/data/settings/k", "kind": "truncated", "applied": true}),
    )
    .await;
    let text = settings_put(&env, &client).await.unwrap().text().await.unwrap();
    assert!(text.starts_with("{\"bulkId\":\""), "{text}");
}

#[tokio::test]
async fn redirects_point_at_the_other_host_which_records_everything() {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let env = seeded().await;
    for code in [301, 302, 303, 307, 308] {
        program(
            &env,
            json!({"method": "PUT", "path": "/data/settings/*", "kind": "redirect", "status": code}),
        )
        .await;
        let r = settings_put(&env, &client).await.unwrap();
        assert_eq!(r.status().as_u16(), code);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("{}/data/settings/k", env.emu.other_host_url()));
        // what a client that follows it would send
        let followed = client
            .put(&location)
            .header("authorization", KEY)
            .json(&json!({"settings": {"isActive": true}, "secret": "canary"}))
            .send()
            .await
            .unwrap();
        assert_eq!(followed.status(), 200, "the other host says yes to anything");
    }
    assert_eq!(issued_settings_bulks(&env).await, 0, "nothing applied");
    let other = env.admin(Method::GET, "/_emulator/other-host", None).await.json();
    assert_eq!(other["url"], env.emu.other_host_url());
    let received = other["requests"].as_array().unwrap();
    assert_eq!(received.len(), 5);
    assert_eq!(received[0]["method"], "PUT");
    assert_eq!(received[0]["path"], "/data/settings/k");
    assert_eq!(received[0]["headers"]["authorization"], KEY);
    assert!(received[0]["body"].as_str().unwrap().contains("canary"));

    // same-origin: the Location is a path on this host, and following it gets the real answer
    program(&env, json!({"method": "GET", "path": "/data/connection/k", "kind": "redirect", "status": 302, "to": "same"})).await;
    let r = env.immuta(Method::GET, "/data/connection/k", None).await;
    assert_eq!(
        r.status, 200,
        "reqwest follows a same-origin redirect: {}",
        r.text
    );
    assert_eq!(r.json()["connectionKey"], "k");

    // a reset clears what the other host received
    env.admin(Method::POST, "/_emulator/reset", None).await;
    let other = env.admin(Method::GET, "/_emulator/other-host", None).await.json();
    assert_eq!(other["requests"], json!([]));

    // bad programs are refused with the field named
    for (bad, says) in [
        (
            json!({"method": "GET", "path": "/x", "kind": "redirect", "status": 304}),
            "status",
        ),
        (json!({"method": "GET", "path": "/x", "kind": "explode"}), "kind"),
        (
            json!({"method": "GET", "path": "/x", "kind": "reset", "to": "same"}),
            "to",
        ),
        (
            json!({"method": "GET", "path": "/x", "kind": "reset", "applied": "yes"}),
            "applied",
        ),
    ] {
        let r = env
            .admin(Method::POST, "/_emulator/faults", Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.message().starts_with(says), "{bad}: {}", r.message());
    }
}

#[tokio::test]
async fn faults_from_the_config_apply_from_the_start() {
    use connctl_emulator::{FaultKind, InjectedFault};
    let env = Env::with(EmulatorConfig {
        faults: vec![InjectedFault::new("get", "/integrations", FaultKind::Html502).times(2)],
        ..Default::default()
    });
    for _ in 0..2 {
        let r = env.immuta(Method::GET, "/integrations", None).await;
        assert_eq!(r.status, 502);
        assert!(r.text.contains("<html>"), "{}", r.text);
    }
    assert_eq!(env.immuta(Method::GET, "/integrations", None).await.status, 200);
}

#[tokio::test]
async fn an_echoing_fault_repeats_the_request() {
    let env = Env::new();
    program(
        &env,
        json!({"method": "POST", "path": "/data/connection", "status": 502, "echo": true}),
    )
    .await;
    let r = env
        .immuta(Method::POST, "/data/connection", Some(sf_registration("x")))
        .await;
    assert_eq!(r.status, 502);
    let message = r.message();
    assert!(
        message.starts_with("request rejected: POST /data/connection"),
        "{message}"
    );
    assert!(message.contains(&format!("Authorization: {KEY}")), "{message}");
    assert!(message.contains("pa'ss;word"), "the body is echoed: {message}");
}
