//! The documented manual flow over real HTTP, for a Snowflake and a Databricks connection:
//! script → execute through the warehouse API → test → register → GET → job completes →
//! settings → crawl → delete script → delete.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn snowflake_manual_flow() {
    let env = Env::new();

    // 1. script
    let r = env
        .immuta(
            Method::POST,
            "/integrations/scripts/create",
            Some(sf_script_body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let script_id = r.headers["x-immuta-script-id"].to_str().unwrap().to_string();
    let script = r.text;
    assert_eq!(
        script.lines().next().unwrap(),
        format!("-- immuta-script-id: {script_id}")
    );
    assert!(script.contains("CREATE DATABASE IF NOT EXISTS \"IMMUTA_PROD\""));
    assert!(script.contains("CREATE ROLE IF NOT EXISTS \"IMMUTA_PROD_SYSTEM\""));
    assert!(
        script.contains("PASSWORD = 'pa''ss;word'"),
        "the system user's password is in the script"
    );
    assert!(script.contains("GRANT APPLY MASKING POLICY ON ACCOUNT"));

    // test before execution fails
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.message()
            .starts_with("cannot connect to acme-prod.snowflakecomputing.com"),
        "{}",
        r.text
    );

    // 2. execute: one async multi-statement request, polled
    let request_id = uuid::Uuid::new_v4().to_string();
    let submit = |retry: bool| {
        let mut url = format!(
            "{}/api/v2/statements?async=true&requestId={request_id}",
            env.emu.url()
        );
        if retry {
            url.push_str("&retry=true");
        }
        env.http
            .post(url)
            .bearer_auth(snowflake_jwt())
            .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
            .json(
                &json!({"statement": script, "warehouse": "ADMIN_WH", "role": "ACCOUNTADMIN",
                          "parameters": {"MULTI_STATEMENT_COUNT": "0", "QUERY_TAG": "connctl"}}),
            )
            .send()
    };
    let r = submit(false).await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "333334");
    let handle = body["statementHandle"].as_str().unwrap().to_string();
    let mut polls = Vec::new();
    let done: Value = loop {
        let r = env
            .http
            .get(format!("{}/api/v2/statements/{handle}", env.emu.url()))
            .bearer_auth(snowflake_jwt())
            .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
            .send()
            .await
            .unwrap();
        polls.push(r.status().as_u16());
        if r.status().as_u16() == 200 {
            break r.json().await.unwrap();
        }
        assert_eq!(r.status().as_u16(), 202);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    assert_eq!(polls[0], 202, "at least one 202 poll");
    assert_eq!(done["code"], "090001");
    let n = split_script(&script).len();
    assert_eq!(done["statementHandles"].as_array().unwrap().len(), n);
    // a retried requestId returns the original statement instead of running it twice
    let r = submit(true).await.unwrap();
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["statementHandle"], handle.as_str());

    // 3. test
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // 4. register
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reg = r.json();
    assert_eq!(reg["objectPath"], json!(["snowflake-prod"]));
    let bulk = reg["bulkId"].as_str().unwrap().to_string();

    // 5. GET
    let r = env
        .immuta(Method::GET, "/data/connection/snowflake-prod", None)
        .await;
    assert_eq!(r.status, 200);
    let c = r.json();
    assert_eq!(c["connectionKey"], "snowflake-prod");
    assert_eq!(c["connection"]["warehouse"], "IMMUTA_WH");
    assert_eq!(c["connection"]["hostname"], "acme-prod.snowflakecomputing.com");
    assert!(c["connection"].get("password").is_none(), "no secret on read");
    assert!(!r.text.contains("pa'ss;word"));
    for k in [
        "createdAt",
        "createdBy",
        "updatedAt",
        "updatedBy",
        "creator",
        "updater",
    ] {
        assert!(c.get(k).is_some(), "{k}");
    }
    let iid = c["nativeIntegrationId"].as_u64().unwrap();
    let r = env
        .immuta(Method::GET, &format!("/integrations/{iid}"), None)
        .await;
    assert_eq!(r.status, 200);
    let i = r.json();
    assert_eq!(i["id"], iid.to_string());
    assert_eq!(i["status"], "enabled");
    assert_eq!(i["type"], "Snowflake");
    assert_eq!(i["config"]["database"], "IMMUTA_PROD");
    assert!(i["config"].get("password").is_none());
    let r = env
        .immuta(Method::GET, &format!("/integrations/{iid}/status"), None)
        .await;
    assert_eq!(r.json(), json!({"id": iid.to_string(), "status": "enabled"}));

    // 6. job completes
    env.await_bulk(&bulk).await;

    // 7. settings
    let r = env.immuta(Method::GET, "/data/object/snowflake-prod", None).await;
    assert_eq!(r.json()["state"], "inactive");
    let r = env
        .immuta(
            Method::PUT,
            "/data/settings/snowflake-prod",
            Some(json!({"settings": {"isActive": true}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.await_bulk(r.json()["bulkId"].as_str().unwrap()).await;
    let o = env
        .immuta(Method::GET, "/data/object/snowflake-prod", None)
        .await
        .json();
    assert_eq!(o["objectPath"], json!(["snowflake-prod"]));
    assert_eq!(o["technology"], "Snowflake");
    assert_eq!(o["state"], "active");
    // The documented shape: status in `state` and, wrapped like every setting, as
    // `settings.isActive` (the schema: "status, new children status, and data owners").
    assert_eq!(
        o["settings"]["activateNewChildren"],
        json!({"value": true, "hasDescendantsWithOverrides": false})
    );
    assert_eq!(
        o["settings"]["isActive"],
        json!({"value": true, "hasDescendantsWithOverrides": false})
    );
    assert_eq!(o["overrides"], json!({}), "a connection's settings are its own");
    assert!(o.get("childCount").is_none(), "{o}");
    // The children followed the connection's status.
    let r = env
        .immuta(
            Method::POST,
            "/data/object/search/snowflake-prod",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.json()["count"], 4, "{}", r.text);
    let hits = r.json()["hits"].as_array().unwrap().clone();
    assert!(hits.iter().all(|h| h["state"] == "active"), "{}", r.text);
    let t = env
        .immuta(
            Method::GET,
            "/data/object/snowflake-prod/IMMUTA_PROD/PUBLIC/ORDERS",
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.json()["state"], "active");

    // 8. crawl
    let r = env
        .immuta(
            Method::POST,
            "/data/crawl/snowflake-prod",
            Some(json!({"forceRecursiveCrawl": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let job_bulk = r.json()["bulkId"].as_str().unwrap().to_string();
    let jobs = env
        .immuta(Method::GET, &format!("/jobs?bulkId={job_bulk}"), None)
        .await
        .json();
    let job_id = jobs[0]["id"].as_str().unwrap().to_string();
    let r = env
        .immuta(
            Method::POST,
            "/jobs/statuses",
            Some(json!({"jobIds": [job_id], "wait": -1, "pollInterval": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[&job_id]["state"], "completed");

    // search lists it
    let r = env
        .immuta(Method::POST, "/data/object/search", Some(json!({})))
        .await;
    assert_eq!(
        r.json(),
        json!({"hits": [{"objectPath": ["snowflake-prod"], "technology": "Snowflake", "state": "active"}], "count": 1})
    );

    // 9. delete script
    let r = env
        .immuta(
            Method::POST,
            &format!("/integrations/{iid}/scripts/delete"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cleanup = r.text;
    assert!(cleanup.starts_with("-- immuta-script-id: "));
    assert!(cleanup.contains("DROP DATABASE IF EXISTS \"IMMUTA_PROD\""));

    // 10. delete, then run the cleanup one statement at a time
    let r = env
        .immuta(Method::DELETE, "/data/object/snowflake-prod", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["objectPath"], json!(["snowflake-prod"]));
    assert_eq!(r.json()["childCount"], 4);
    for stmt in split_script(&cleanup) {
        let r = env
            .http
            .post(format!("{}/api/v2/statements", env.emu.url()))
            .bearer_auth("an-oauth-token")
            .header("X-Snowflake-Authorization-Token-Type", "OAUTH")
            .json(&json!({"statement": stmt}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(
        env.immuta(Method::GET, "/data/connection/snowflake-prod", None)
            .await
            .status,
        404
    );
    assert_eq!(
        env.immuta(Method::GET, &format!("/integrations/{iid}"), None)
            .await
            .status,
        404
    );
    // the cleanup dropped what the setup script made: registering again needs it run again
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("has not been executed"), "{}", r.text);
}

#[tokio::test]
async fn snowflake_key_pair_mapping() {
    let env = Env::new();
    let r = env
        .immuta(
            Method::POST,
            "/integrations/scripts/create",
            Some(sf_keypair_script_body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        !r.text.contains("BEGIN PRIVATE KEY"),
        "the private key is not in the script"
    );
    let run = snowflake_run_all(&env, &r.text).await;
    assert_eq!(run.status, 200, "{}", run.text);
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_keypair_registration("sf-kp")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // One Snowflake integration per host: deregister it so the same host can be tried again.
    let r = env.immuta(Method::DELETE, "/data/object/sf-kp", None).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // keyName must be PRIV_KEY_FILE
    let mut bad = sf_keypair_registration("sf-kp2");
    bad["nativeIntegration"]["config"]["privateKey"]["keyName"] = json!("OTHER");
    let r = env.immuta(Method::POST, "/data/connection", Some(bad)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.message()
            .contains("nativeIntegration.config.privateKey.keyName"),
        "{}",
        r.text
    );

    // a different key than the script was generated with is named, without echoing it
    let mut other = sf_keypair_registration("sf-kp3");
    let pem2 = PEM.replace("BKcw", "XXXX");
    other["connection"]["privateKey"]["content"] = json!(pem2);
    other["nativeIntegration"]["config"]["privateKey"]["content"] = json!(pem2);
    let r = env.immuta(Method::POST, "/data/connection", Some(other)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.message()
            .contains("nativeIntegration.config.privateKey.content"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("XXXX"), "secrets are never echoed");
}

#[tokio::test]
async fn databricks_manual_flow() {
    let env = Env::new();

    // OAuth M2M token for the executor
    let r = env
        .http
        .post(format!("{}/oidc/v1/token", env.emu.url()))
        .basic_auth("admin-client", Some("admin-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=all-apis")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let tok: Value = r.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let token = tok["access_token"].as_str().unwrap().to_string();

    // 1. script
    let r = env
        .immuta(
            Method::POST,
            "/integrations/scripts/create",
            Some(dbx_script_body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let script = r.text;
    assert!(script.contains("CREATE CATALOG IF NOT EXISTS `immuta_prod`"));
    assert!(
        script.contains("TO `0a1b2c3d-sp`"),
        "grants to the service principal"
    );
    assert!(!script.contains("$$"));
    let stmts = split_script(&script);
    assert!(
        stmts.iter().any(|s| s.contains("';") || s.contains("; ")),
        "a literal holds a ';'"
    );

    // the whole script in one call fails as Databricks fails it
    let v = env
        .http
        .post(format!("{}/api/2.0/sql/statements", env.emu.url()))
        .bearer_auth(&token)
        .json(&json!({"statement": script, "warehouse_id": "abc123", "wait_timeout": "30s"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(v["status"]["state"], "FAILED");
    assert!(
        v["status"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[PARSE_SYNTAX_ERROR]")
    );

    // 2. execute one statement per call; the first asynchronously, watching the states
    let r = env
        .http
        .post(format!("{}/api/2.0/sql/statements", env.emu.url()))
        .bearer_auth(&token)
        .json(&json!({"statement": stmts[0], "warehouse_id": "abc123", "wait_timeout": "0s"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["state"], "PENDING");
    let id = v["statement_id"].as_str().unwrap().to_string();
    let mut states = vec!["PENDING".to_string()];
    loop {
        let v: Value = env
            .http
            .get(format!("{}/api/2.0/sql/statements/{id}", env.emu.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let s = v["status"]["state"].as_str().unwrap().to_string();
        if states.last() != Some(&s) {
            states.push(s.clone());
        }
        if s == "SUCCEEDED" {
            break;
        }
        assert!(s == "PENDING" || s == "RUNNING", "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(states, ["PENDING", "RUNNING", "SUCCEEDED"]);
    // registration before the rest ran is refused
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(dbx_registration("databricks-prod")),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.message().contains(&format!("1 of {} statements", stmts.len())),
        "{}",
        r.text
    );
    for s in &stmts[1..] {
        let v = databricks_run(&env, &token, s).await;
        assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    }

    // 3. test, 4. register
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(dbx_registration("databricks-prod")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(dbx_registration("databricks-prod")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let bulk = r.json()["bulkId"].as_str().unwrap().to_string();

    // 5. GET
    let c = env
        .immuta(Method::GET, "/data/connection/databricks-prod", None)
        .await
        .json();
    assert_eq!(c["connection"]["httpPath"], "/sql/1.0/warehouses/abc123");
    assert!(c["connection"]["oAuthClientConfig"].get("clientSecret").is_none());
    let iid = c["nativeIntegrationId"].as_u64().unwrap();
    let i = env
        .immuta(Method::GET, &format!("/integrations/{iid}"), None)
        .await
        .json();
    assert_eq!(i["config"]["host"], "dbc-1234.cloud.databricks.com");
    assert_eq!(i["config"]["catalog"], "immuta_prod");
    assert!(i["config"]["oAuthClientConfig"].get("clientSecret").is_none());

    // 6. job
    env.await_bulk(&bulk).await;

    // rescript: edit script → PUT refused until executed → execute → PUT
    let mut edited = dbx_script_body();
    edited["config"]["audit"]["enabled"] = json!(false);
    let r = env
        .immuta(
            Method::POST,
            &format!("/integrations/{iid}/scripts/edit"),
            Some(edited.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let edit_script = r.text;
    let r = env
        .immuta(Method::PUT, &format!("/integrations/{iid}"), Some(edited.clone()))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("edit script"), "{}", r.text);
    for s in split_script(&edit_script) {
        assert_eq!(
            databricks_run(&env, &token, &s).await["status"]["state"],
            "SUCCEEDED"
        );
    }
    let r = env
        .immuta(Method::PUT, &format!("/integrations/{iid}"), Some(edited))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["config"]["audit"]["enabled"], false);
    assert_eq!(r.json()["config"]["port"], 443);

    // connection update
    let mut upd = dbx_registration("databricks-prod");
    upd["connection"]["oAuthClientConfig"]["clientSecret"] = json!("rotated");
    let r = env
        .immuta(
            Method::PUT,
            "/data/connection/databricks-prod",
            Some(json!({"connection": upd["connection"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["connectionKey"], "databricks-prod");
    env.await_bulk(r.json()["bulkId"].as_str().unwrap()).await;

    // 7. settings, 8. crawl
    let r = env
        .immuta(
            Method::PUT,
            "/data/settings/databricks-prod",
            Some(json!({"settings": {"isActive": true, "activateNewChildren": false}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let o = env
        .immuta(Method::GET, "/data/object/databricks-prod", None)
        .await
        .json();
    assert_eq!(o["settings"]["activateNewChildren"]["value"], false);
    let r = env
        .immuta(Method::POST, "/data/crawl/databricks-prod", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.await_bulk(r.json()["bulkId"].as_str().unwrap()).await;

    // 9. delete script, 10. delete, cleanup
    let r = env
        .immuta(Method::POST, &format!("/integrations/{iid}/scripts/delete"), None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("DROP CATALOG IF EXISTS `immuta_prod` CASCADE"));
    let cleanup = r.text;
    let r = env
        .immuta(Method::DELETE, "/data/object/databricks-prod", None)
        .await;
    assert_eq!(r.status, 200);
    for s in split_script(&cleanup) {
        assert_eq!(
            databricks_run(&env, &token, &s).await["status"]["state"],
            "SUCCEEDED"
        );
    }
    assert_eq!(
        env.immuta(Method::GET, "/data/connection/databricks-prod", None)
            .await
            .status,
        404
    );
    let r = env.immuta(Method::POST, "/data/object/search", None).await;
    assert_eq!(r.json(), json!({"hits": [], "count": 0}));
}
