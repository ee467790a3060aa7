//! The `/_emulator/` admin API: drift, deletion behind the tool's back, seeding, state dump,
//! reset, and `--state-file` persistence.

mod common;

use common::*;
use connctl_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn seed_drift_delete_and_reset() {
    let env = Env::new();
    let r = env
        .admin(
            Method::POST,
            "/_emulator/seed",
            Some(json!({"connections": [sf_registration("sf-b"), dbx_registration("dbx-a")]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seeded = r.json()["seeded"].clone();
    assert_eq!(seeded.as_array().unwrap().len(), 2);
    // seeding an existing key conflicts
    let r = env
        .admin(
            Method::POST,
            "/_emulator/seed",
            Some(json!({"connections": [sf_registration("sf-b")]})),
        )
        .await;
    assert_eq!(r.status, 409);

    // search is sorted by key and paginated
    let r = env
        .immuta(
            Method::POST,
            "/data/object/search?offset=0&size=1",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.json()["count"], 2);
    assert_eq!(r.json()["hits"][0]["objectPath"], json!(["dbx-a"]));
    let r = env
        .immuta(Method::POST, "/data/object/search?offset=1&size=1", None)
        .await;
    assert_eq!(r.json()["hits"][0]["objectPath"], json!(["sf-b"]));
    let r = env
        .immuta(Method::POST, "/data/object/search?size=1001", None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("size"));

    // drift on the connection and its settings
    let r = env
        .admin(
            Method::PATCH,
            "/_emulator/connections/sf-b",
            Some(json!({"connection": {"warehouse": "OTHER"}, "settings": {"isActive": true}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = env
        .immuta(Method::GET, "/data/connection/sf-b", None)
        .await
        .json();
    assert_eq!(c["connection"]["warehouse"], "OTHER");
    assert_eq!(
        env.immuta(Method::GET, "/data/object/sf-b", None).await.json()["state"],
        "active"
    );

    // drift on the integration
    let iid = c["nativeIntegrationId"].as_u64().unwrap();
    let r = env
        .admin(
            Method::PATCH,
            &format!("/_emulator/integrations/{iid}"),
            Some(json!({"config": {"audit": {"enabled": false}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let i = env
        .immuta(Method::GET, &format!("/integrations/{iid}"), None)
        .await
        .json();
    assert_eq!(i["config"]["audit"]["enabled"], false);

    // the state dump names keys and ids, never secrets
    let r = env.admin(Method::GET, "/_emulator/state", None).await;
    assert!(r.text.contains("sf-b") && r.text.contains("dbx-a"));
    assert!(!r.text.contains("pa'ss;word") && !r.text.contains("dose-secret"));

    // deleted behind the tool's back
    let r = env
        .admin(Method::DELETE, "/_emulator/connections/dbx-a", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        env.immuta(Method::GET, "/data/connection/dbx-a", None)
            .await
            .status,
        404
    );
    assert_eq!(
        env.admin(Method::DELETE, "/_emulator/connections/dbx-a", None)
            .await
            .status,
        404
    );

    // reset forgets everything
    assert_eq!(
        env.admin(Method::POST, "/_emulator/reset", None).await.status,
        200
    );
    assert_eq!(
        env.immuta(Method::GET, "/data/connection/sf-b", None)
            .await
            .status,
        404
    );
    let log = env.admin(Method::GET, "/_emulator/requests", None).await.json();
    assert_eq!(
        log.as_array().unwrap().len(),
        1,
        "only the request after the reset: {log}"
    );
}

#[tokio::test]
async fn state_file_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator-state.json");
    let config = EmulatorConfig {
        state_file: Some(path.clone()),
        job_step_ms: 1,
        ..Default::default()
    };
    let (iid, bulk) = {
        let env = Env::with(config.clone());
        let r = env
            .immuta(
                Method::POST,
                "/integrations/scripts/create",
                Some(sf_script_body()),
            )
            .await;
        assert_eq!(snowflake_run_all(&env, &r.text).await.status, 200);
        let r = env
            .immuta(
                Method::POST,
                "/data/connection",
                Some(sf_registration("persisted")),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let c = env
            .immuta(Method::GET, "/data/connection/persisted", None)
            .await
            .json();
        (
            c["nativeIntegrationId"].as_u64().unwrap(),
            r.json()["bulkId"].as_str().unwrap().to_string(),
        )
    };
    assert!(path.exists());
    let env = Env::with(config);
    let c = env.immuta(Method::GET, "/data/connection/persisted", None).await;
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["nativeIntegrationId"].as_u64(), Some(iid));
    assert_eq!(
        env.immuta(Method::GET, &format!("/integrations/{iid}"), None)
            .await
            .status,
        200
    );
    env.await_bulk(&bulk).await;
    // One Snowflake integration per host: a second connection on it is Immuta's 409 …
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("persisted-2")),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains(&format!("(id = {iid})")), "{}", r.text);
    // … and once the first is deregistered, executed scripts survived too: the same config registers
    let r = env.immuta(Method::DELETE, "/data/object/persisted", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("persisted-2")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // ids keep counting
    let r = env
        .admin(
            Method::POST,
            "/_emulator/seed",
            Some(json!({"connections": [dbx_registration("next")]})),
        )
        .await;
    assert_eq!(r.json()["seeded"][0]["integrationId"], (iid + 1).to_string());
}

#[tokio::test]
async fn children_follow_the_connection_status_only_when_it_is_sent() {
    let env = Env::new();
    let r = env
        .admin(
            Method::POST,
            "/_emulator/seed",
            Some(json!({"connections": [sf_registration("sf-c")]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let child = "/data/object/sf-c/IMMUTA_PROD/PUBLIC/ORDERS";
    let state = |r: Resp| r.json()["state"].as_str().unwrap().to_owned();
    assert_eq!(state(env.immuta(Method::GET, child, None).await), "inactive");
    // A person enables one table in the UI.
    let r = env
        .admin(
            Method::PATCH,
            "/_emulator/objects/sf-c/IMMUTA_PROD/PUBLIC/ORDERS",
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A settings body without isActive leaves it alone …
    let r = env
        .immuta(
            Method::PUT,
            "/data/settings/sf-c",
            Some(json!({"settings": {"activateNewChildren": false}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(state(env.immuta(Method::GET, child, None).await), "active");
    let o = env.immuta(Method::GET, "/data/object/sf-c", None).await.json();
    assert_eq!(o["state"], "inactive");
    assert_eq!(o["settings"]["activateNewChildren"]["value"], false);
    // … while re-sending the unchanged isActive: false switches every child off.
    let r = env
        .immuta(
            Method::PUT,
            "/data/settings/sf-c",
            Some(json!({"settings": {"isActive": false}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(state(env.immuta(Method::GET, child, None).await), "inactive");
    let dump = env.admin(Method::GET, "/_emulator/state", None).await.json();
    assert_eq!(
        dump["settingsRequests"],
        json!([
            {"connectionKey": "sf-c", "body": {"settings": {"activateNewChildren": false}}},
            {"connectionKey": "sf-c", "body": {"settings": {"isActive": false}}},
        ])
    );
}

#[tokio::test]
async fn a_pre_existing_integration_on_the_host_is_the_documented_409() {
    let env = Env::new();
    let host = sf_registration("x")["connection"]["hostname"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = env
        .admin(
            Method::POST,
            "/_emulator/integrations",
            Some(json!({"type": "Snowflake", "host": host.to_uppercase()})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("sf-d")),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(
        r.message(),
        format!(
            "Snowflake integration already exists on {host} (id = {id}). The request failed because an \
             integration already exists on the host."
        )
    );
}

#[tokio::test]
async fn object_endpoints_refuse_bad_input_with_a_clear_message() {
    let env = Env::new();
    env.admin(
        Method::POST,
        "/_emulator/seed",
        Some(json!({"connections": [sf_registration("sf-o")]})),
    )
    .await;
    let bad = [
        // (method, path, body, status, what the message names)
        (
            Method::POST,
            "/_emulator/objects/sf-o/IMMUTA_PROD/seed",
            json!({"children": ["PUBLIC/T/TOO_DEEP"]}),
            400,
            "deeper than database/schema/table",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/seed",
            json!({"children": [7]}),
            400,
            "children[0]",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/seed",
            json!({"children": ["A"], "extra": 1}),
            400,
            "extra: unknown field",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/IMMUTA_PROD",
            json!({"active": true}),
            400,
            "active: unknown field",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/IMMUTA_PROD",
            json!({}),
            400,
            "isActive or activateNewChildren: required",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/IMMUTA_PROD",
            json!({"isActive": "yes"}),
            400,
            "isActive: expected a boolean",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/%FF",
            json!({"isActive": true}),
            400,
            "not UTF-8",
        ),
        (
            Method::POST,
            "/_emulator/objects/sf-o/NOPE",
            json!({"isActive": true}),
            404,
            "sf-o/NOPE",
        ),
    ];
    for (method, path, body, status, says) in bad {
        let r = env.admin(method, path, Some(body)).await;
        assert_eq!(r.status, status, "{path}: {}", r.text);
        assert!(r.message().contains(says), "{path}: {}", r.text);
    }
    // The Immuta endpoints: an unknown object at any depth is a 404, a bad setting a 400.
    for (method, path, body) in [
        (Method::GET, "/data/object/sf-o/IMMUTA_PROD/NOPE", None),
        (
            Method::PUT,
            "/data/settings/sf-o/IMMUTA_PROD/PUBLIC/NOPE",
            Some(json!({"settings": {"isActive": true}})),
        ),
        (Method::POST, "/data/crawl/sf-o/NOPE", None),
        (Method::POST, "/data/object/search/sf-o/NOPE", None),
        (Method::DELETE, "/data/object/sf-o/IMMUTA_PROD", None),
    ] {
        let r = env.immuta(method, path, body).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let r = env
        .immuta(
            Method::PUT,
            "/data/settings/sf-o/IMMUTA_PROD",
            Some(json!({"settings": {"isActive": 1}})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Nothing was seeded or changed by the refused requests.
    let dump = env
        .admin(Method::GET, "/_emulator/objects/sf-o", None)
        .await
        .json();
    assert_eq!(dump["objects"].as_array().unwrap().len(), 4, "{dump}");
    assert!(
        dump["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["state"] == "inactive" && o["activeOverride"] == false)
    );
}
