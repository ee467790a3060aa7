//! Every rejection the emulator promises: 401, 400 naming the field, 404, 409, registration
//! before execution, several statements in one Databricks call, and warehouse failures.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn assert_envelope(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["statusCode"], status, "{v}");
    assert!(v["error"].is_string(), "{v}");
    assert!(v["message"].is_string(), "{v}");
}

/// Make `key`'s Snowflake setup script executed, so later checks reach the payload comparison.
async fn executed_snowflake(env: &Env) {
    let r = env
        .immuta(
            Method::POST,
            "/integrations/scripts/create",
            Some(sf_script_body()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(snowflake_run_all(env, &r.text).await.status, 200);
}

#[tokio::test]
async fn unauthorized_without_the_api_key() {
    let env = Env::new();
    let r = env.send(Method::GET, "/data/connection/x", None, None).await;
    assert_envelope(&r, 401);
    assert_eq!(r.json()["error"], "Unauthorized");
    let r = env
        .send(Method::GET, "/data/connection/x", Some("wrong-key"), None)
        .await;
    assert_envelope(&r, 401);
    let r = env
        .send(Method::GET, "/data/connection/x", Some("Bearer wrong-key"), None)
        .await;
    assert_envelope(&r, 401);
    let r = env
        .send(
            Method::POST,
            "/integrations/scripts/create",
            None,
            Some(sf_script_body()),
        )
        .await;
    assert_envelope(&r, 401);

    // the accepted forms: raw key, Bearer key, Bearer exchanged token
    assert_eq!(
        env.send(Method::GET, "/data/connection/x", Some(KEY), None)
            .await
            .status,
        404
    );
    assert_eq!(
        env.send(
            Method::GET,
            "/data/connection/x",
            Some(&format!("Bearer {KEY}")),
            None
        )
        .await
        .status,
        404
    );
    let r = env
        .send(
            Method::POST,
            "/bim/apikey/authenticate",
            None,
            Some(json!({"apikey": "nope"})),
        )
        .await;
    assert_envelope(&r, 401);
    let r = env
        .send(
            Method::POST,
            "/bim/apikey/authenticate",
            None,
            Some(json!({"apikey": KEY})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["authenticated"], true);
    let token = r.json()["token"].as_str().unwrap().to_string();
    let r = env
        .send(
            Method::GET,
            "/data/connection/x",
            Some(&format!("Bearer {token}")),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let env = Env::new();
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = sf_script_body();
                b["config"].as_object_mut().unwrap().remove("host");
                b
            },
            "config.host: required",
        ),
        (
            {
                let mut b = sf_script_body();
                b["config"]["warehouse"] = json!(7);
                b
            },
            "config.warehouse: expected string, got number",
        ),
        (
            json!({"type": "Oracle", "autoBootstrap": false, "config": {}}),
            "type: unknown technology 'Oracle'",
        ),
        (
            {
                let mut b = sf_script_body();
                b["config"]["authenticationType"] = json!("kerberos");
                b
            },
            "config.authenticationType: unknown authentication type 'kerberos'",
        ),
        (
            {
                let mut b = sf_script_body();
                b["autoBootstrap"] = json!(true);
                b
            },
            "autoBootstrap: must be false",
        ),
        (
            {
                let mut b = dbx_script_body();
                b["config"]["catalog"] = json!("1bad-name");
                b
            },
            "config.catalog: the catalog name may only contain",
        ),
        (
            {
                let mut b = sf_script_body();
                b["config"]["bogus"] = json!(1);
                b
            },
            "config.bogus: unknown field",
        ),
    ];
    for (body, want) in cases {
        let r = env
            .immuta(Method::POST, "/integrations/scripts/create", Some(body))
            .await;
        assert_envelope(&r, 400);
        assert!(r.message().contains(want), "want {want:?} in {}", r.text);
    }

    executed_snowflake(&env).await;
    type Edit = Box<dyn Fn(&mut Value)>;
    let reg_cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|b| drop(b["connection"].as_object_mut().unwrap().remove("hostname"))),
            "connection.hostname: required",
        ),
        (
            Box::new(|b| b["connection"]["port"] = json!("443")),
            "connection.port: expected integer",
        ),
        (
            Box::new(|b| b["connection"]["technology"] = json!("Redshift")),
            "connection.technology: unknown technology",
        ),
        (
            Box::new(|b| b["connection"]["authenticationType"] = json!("magic")),
            "connection.authenticationType: unknown authentication type 'magic'",
        ),
        (
            Box::new(|b| {
                drop(
                    b["nativeIntegration"]["config"]
                        .as_object_mut()
                        .unwrap()
                        .remove("database"),
                )
            }),
            "nativeIntegration.config.database: required",
        ),
        (
            Box::new(|b| b["settings"]["isActive"] = json!("yes")),
            "settings.isActive: expected boolean",
        ),
        (
            Box::new(|b| b["connectionKey"] = json!("data")),
            "connectionKey: 'data' is a reserved name",
        ),
        (
            Box::new(|b| b["connectionKey"] = json!("a.b")),
            "connectionKey: must contain only letters",
        ),
        (
            Box::new(|b| b["connection"]["warehouse"] = json!("OTHER_WH")),
            "connection.warehouse: does not match nativeIntegration.config.warehouse",
        ),
        (
            Box::new(|b| {
                b["connection"]["warehouse"] = json!("OTHER_WH");
                b["nativeIntegration"]["config"]["warehouse"] = json!("OTHER_WH");
            }),
            "nativeIntegration.config.warehouse differs from the config setup script",
        ),
        (
            Box::new(|b| b["nativeIntegration"]["config"]["audit"]["enabled"] = json!(false)),
            "nativeIntegration.config.audit.enabled differs",
        ),
        (
            Box::new(|b| b["nativeIntegration"]["autoBootstrap"] = json!(true)),
            "nativeIntegration.autoBootstrap: must be false",
        ),
    ];
    for (f, want) in reg_cases {
        let mut body = sf_registration("snowflake-prod");
        f(&mut body);
        for path in ["/data/connection/test", "/data/connection"] {
            let r = env.immuta(Method::POST, path, Some(body.clone())).await;
            assert_envelope(&r, 400);
            assert!(r.message().contains(want), "want {want:?} in {}", r.text);
        }
    }
    // a differing password is named but never echoed
    let mut body = sf_registration("snowflake-prod");
    body["connection"]["password"] = json!("hunter2");
    body["nativeIntegration"]["config"]["password"] = json!("hunter2");
    let r = env.immuta(Method::POST, "/data/connection", Some(body)).await;
    assert_envelope(&r, 400);
    assert!(
        r.message().contains("nativeIntegration.config.password"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("hunter2"));

    // malformed JSON
    let r = env
        .http
        .post(format!("{}/data/connection", env.emu.url()))
        .header("authorization", KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn not_found() {
    let env = Env::new();
    for (m, p) in [
        (Method::GET, "/data/connection/nope"),
        (Method::GET, "/data/object/nope"),
        (Method::DELETE, "/data/object/nope"),
        (Method::GET, "/integrations/99"),
        (Method::GET, "/integrations/abc/status"),
        (Method::POST, "/integrations/99/scripts/delete"),
        (Method::GET, "/jobs?bulkId=nope"),
        (Method::GET, "/no/such/route"),
    ] {
        let r = env.immuta(m.clone(), p, None).await;
        assert_envelope(&r, 404);
    }
    let r = env
        .immuta(
            Method::PUT,
            "/data/settings/nope",
            Some(json!({"settings": {"isActive": true}})),
        )
        .await;
    assert_envelope(&r, 404);
    let r = env
        .immuta(
            Method::PUT,
            "/data/connection/nope",
            Some(json!({"connection": sf_registration("x")["connection"]})),
        )
        .await;
    assert_envelope(&r, 404);
}

#[tokio::test]
async fn conflict_on_an_existing_key() {
    let env = Env::new();
    executed_snowflake(&env).await;
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_envelope(&r, 409);
    let r = env
        .immuta(
            Method::POST,
            "/data/connection/test",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_envelope(&r, 409);
}

#[tokio::test]
async fn registration_before_execution() {
    let env = Env::new();
    // no script at all
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_envelope(&r, 400);
    assert!(
        r.message()
            .starts_with("cannot connect to acme-prod.snowflakecomputing.com"),
        "{}",
        r.text
    );
    // generated, not executed
    let r = env
        .immuta(
            Method::POST,
            "/integrations/scripts/create",
            Some(sf_script_body()),
        )
        .await;
    let script = r.text;
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_envelope(&r, 400);
    assert!(r.message().contains("has not been executed"), "{}", r.text);
    assert!(r.message().contains("0 of"), "{}", r.text);
    // partly executed: a failing statement stops a multi-statement request
    let broken = script.replacen(
        "GRANT USAGE ON WAREHOUSE",
        "GRANT SYNTAX_ERROR_FOR_TEST ON WAREHOUSE",
        1,
    );
    let r = snowflake_run_all(&env, &broken).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()["code"], "001003");
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_envelope(&r, 400);
    assert!(r.message().contains("has not been executed"), "{}", r.text);
    // fully executed
    assert_eq!(snowflake_run_all(&env, &script).await.status, 200);
    let r = env
        .immuta(
            Method::POST,
            "/data/connection",
            Some(sf_registration("snowflake-prod")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        env.immuta(Method::GET, "/data/connection/snowflake-prod", None)
            .await
            .status,
        200
    );
    // and no connection was created by the refused attempts
    let r = env.immuta(Method::POST, "/data/object/search", None).await;
    assert_eq!(r.json()["count"], 1);
}

#[tokio::test]
async fn several_statements_in_one_databricks_call() {
    let env = Env::new();
    let r = env
        .http
        .post(format!("{}/api/2.0/sql/statements", env.emu.url()))
        .bearer_auth("dapi-token")
        .json(&json!({"statement": "CREATE CATALOG a; GRANT USE CATALOG ON CATALOG a TO `x`", "warehouse_id": "w",
                      "wait_timeout": "0s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "execution failures are HTTP 200");
    let v: Value = r.json().await.unwrap();
    let id = v["statement_id"].as_str().unwrap().to_string();
    let final_state = loop {
        let v: Value = env
            .http
            .get(format!("{}/api/2.0/sql/statements/{id}", env.emu.url()))
            .bearer_auth("dapi-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"]["state"] != "PENDING" && v["status"]["state"] != "RUNNING" {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    assert_eq!(final_state["status"]["state"], "FAILED");
    let msg = final_state["status"]["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("[PARSE_SYNTAX_ERROR]"), "{msg}");
    assert!(msg.contains("extra input 'GRANT'"), "{msg}");

    // gibberish fails, a string literal with ';' does not split
    let v = databricks_run(&env, "dapi-token", "FROBNICATE the warehouse").await;
    assert_eq!(v["status"]["state"], "FAILED");
    let v = databricks_run(&env, "dapi-token", "COMMENT ON CATALOG a IS 'x; y'").await;
    assert_eq!(v["status"]["state"], "SUCCEEDED");
    // a compound statement is one statement
    let v = databricks_run(&env, "dapi-token", "BEGIN SELECT 1; SELECT 2; END").await;
    assert_eq!(v["status"]["state"], "SUCCEEDED");
}

#[tokio::test]
async fn warehouse_auth_and_errors() {
    let env = Env::with(connctl_emulator::EmulatorConfig {
        warehouse_token: Some("the-token".into()),
        job_step_ms: 1,
        ..Default::default()
    });
    let post = |auth: Option<(&str, &str)>, body: Value, path: &str| {
        let mut r = env.http.post(format!("{}{path}", env.emu.url())).json(&body);
        if let Some((tok, ty)) = auth {
            r = r.bearer_auth(tok);
            if !ty.is_empty() {
                r = r.header("X-Snowflake-Authorization-Token-Type", ty);
            }
        }
        r.send()
    };
    let sf = "/api/v2/statements";
    let stmt = json!({"statement": "SELECT 1"});
    assert_eq!(post(None, stmt.clone(), sf).await.unwrap().status().as_u16(), 401);
    assert_eq!(
        post(Some(("wrong", "OAUTH")), stmt.clone(), sf)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        post(Some(("the-token", "OAUTH")), stmt.clone(), sf)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(Some(("the-token", "PROGRAMMATIC_ACCESS_TOKEN")), stmt.clone(), sf)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(Some((&snowflake_jwt(), "KEYPAIR_JWT")), stmt.clone(), sf)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(Some(("not.a.jwt", "KEYPAIR_JWT")), stmt.clone(), sf)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let jwt = (snowflake_jwt(), "KEYPAIR_JWT");
    let auth = Some((jwt.0.as_str(), jwt.1));
    // count mismatch, rejected statement, missing statement
    let r = post(auth, json!({"statement": "SELECT 1; SELECT 2"}), sf)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("did not match the desired statement count 1"),
        "{v}"
    );
    let r = post(
        auth,
        json!({"statement": "SELECT 1; SELECT 2", "parameters": {"MULTI_STATEMENT_COUNT": "2"}}),
        sf,
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = post(auth, json!({"statement": "gibberish here"}), sf)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["sqlState"], "42000");
    assert!(v["statementHandle"].is_string());
    assert_eq!(
        post(auth, json!({"nope": 1}), sf)
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );

    // Databricks: the configured token, or one from the OAuth endpoint
    let dbx = "/api/2.0/sql/statements";
    let body = json!({"statement": "SELECT 1", "warehouse_id": "w"});
    assert_eq!(
        post(Some(("wrong", "")), body.clone(), dbx)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        post(Some(("the-token", "")), body.clone(), dbx)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(Some(("the-token", "")), json!({"statement": "SELECT 1"}), dbx)
            .await
            .unwrap()
            .status()
            .as_u16(),
        400,
        "warehouse_id is required"
    );
    assert_eq!(
        post(
            Some(("the-token", "")),
            json!({"statement": "SELECT 1", "warehouse_id": "w", "wait_timeout": "3s"}),
            dbx
        )
        .await
        .unwrap()
        .status()
        .as_u16(),
        400
    );
    let r = env
        .http
        .post(format!("{}/oidc/v1/token", env.emu.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=a&client_secret=b")
        .send()
        .await
        .unwrap();
    let tok: Value = r.json().await.unwrap();
    let t = tok["access_token"].as_str().unwrap();
    assert_eq!(
        post(Some((t, "")), body.clone(), dbx)
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let r = env
        .http
        .post(format!("{}/oidc/v1/token", env.emu.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
