//! Shared helpers for the emulator's HTTP tests: a small client and the documented payloads.
#![allow(dead_code, clippy::unwrap_used)]

use base64::Engine;
use connctl_emulator::{EmulatorConfig, RunningEmulator};
use reqwest::Method;
use serde_json::{Value, json};

pub const KEY: &str = "emulator-api-key";

pub struct Env {
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or_default().to_string()
    }
}

impl Env {
    pub fn new() -> Env {
        Env::with(EmulatorConfig {
            job_step_ms: 5,
            ..EmulatorConfig::default()
        })
    }

    pub fn with(config: EmulatorConfig) -> Env {
        Env {
            emu: RunningEmulator::start(config).expect("start emulator"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(&self, method: Method, path: &str, auth: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.emu.url(), path));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        Resp {
            status,
            headers,
            text,
        }
    }

    /// An Immuta request with the raw API key.
    pub async fn immuta(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, Some(KEY), body).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, None, body).await
    }

    /// Poll a job until `completed`, checking it only ever moves forward.
    pub async fn await_bulk(&self, bulk: &str) {
        let order = ["created", "active", "completed"];
        let mut last = 0;
        loop {
            let r = self
                .immuta(Method::GET, &format!("/jobs?bulkId={bulk}"), None)
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let jobs = r.json();
            assert_eq!(jobs.as_array().map(Vec::len), Some(1), "{jobs}");
            assert_eq!(jobs[0]["output"], Value::Null);
            let state = jobs[0]["state"].as_str().unwrap().to_string();
            let idx = order.iter().position(|s| *s == state).expect("known state");
            assert!(idx >= last, "job went backwards: {state}");
            last = idx;
            if state == "completed" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

/// A structurally valid Snowflake key-pair JWT for ACME.ADMIN, expiring in an hour.
pub fn snowflake_jwt() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        e(&json!({"alg": "RS256", "typ": "JWT"})),
        e(&json!({"iss": "ACME.ADMIN.SHA256:Zm9vYmFy", "sub": "ACME.ADMIN", "iat": now, "exp": now + 3600}))
    )
}

pub fn split_script(script: &str) -> Vec<String> {
    // the emulator ends each statement with ";\n" and no literal holds ";\n"
    script
        .split(";\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

// ------------------------------------------------------------------ Snowflake payloads

pub fn sf_config() -> Value {
    json!({
        "host": "acme-prod.snowflakecomputing.com",
        "warehouse": "IMMUTA_WH",
        "database": "IMMUTA_PROD",
        "authenticationType": "userPassword",
        "username": "IMMUTA_PROD_SYSTEM_ACCOUNT",
        "password": "pa'ss;word",
        "audit": {"enabled": true},
        "workspaces": {"enabled": false},
        "impersonation": {"enabled": false},
        "lineage": {"enabled": false},
        "userRolePattern": {"exclude": ["ACCOUNTADMIN"]}
    })
}

pub fn sf_script_body() -> Value {
    json!({"type": "Snowflake", "autoBootstrap": false, "config": sf_config()})
}

pub fn sf_registration(key: &str) -> Value {
    let c = sf_config();
    let mut native = c.clone();
    native["port"] = json!(443);
    json!({
        "connectionKey": key,
        "connection": {
            "technology": "Snowflake",
            "hostname": c["host"],
            "port": 443,
            "warehouse": c["warehouse"],
            "role": "IMMUTA_PROD_SYSTEM",
            "authenticationType": "userPassword",
            "username": c["username"],
            "password": c["password"]
        },
        "settings": {"isActive": false},
        "options": {"forceRecursiveCrawl": true},
        "nativeIntegration": {"type": "Snowflake", "autoBootstrap": false, "config": native}
    })
}

pub const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";

pub fn sf_keypair_script_body() -> Value {
    json!({"type": "Snowflake", "autoBootstrap": false, "config": {
        "host": "acme-kp.snowflakecomputing.com",
        "warehouse": "IMMUTA_WH",
        "database": "IMMUTA_KP",
        "authenticationType": "keyPair",
        "username": "IMMUTA_KP_SYSTEM",
        "privateKey": PEM,
        "audit": {"enabled": true},
        "userRolePattern": {"exclude": ["ACCOUNTADMIN"]}
    }})
}

pub fn sf_keypair_registration(key: &str) -> Value {
    let key_obj = json!({"keyName": "PRIV_KEY_FILE", "userFilename": "immuta.p8", "content": PEM});
    json!({
        "connectionKey": key,
        "connection": {
            "technology": "Snowflake",
            "hostname": "acme-kp.snowflakecomputing.com",
            "port": 443,
            "warehouse": "IMMUTA_WH",
            "role": "IMMUTA_KP_SYSTEM_ROLE",
            "authenticationType": "keyPair",
            "username": "IMMUTA_KP_SYSTEM",
            "privateKey": {"userFilename": "immuta.p8", "content": PEM}
        },
        "nativeIntegration": {
            "type": "Snowflake",
            "autoBootstrap": false,
            "config": {
                "host": "acme-kp.snowflakecomputing.com",
                "port": 443,
                "warehouse": "IMMUTA_WH",
                "database": "IMMUTA_KP",
                "authenticationType": "keyPair",
                "username": "IMMUTA_KP_SYSTEM",
                "privateKey": key_obj,
                "audit": {"enabled": true}
            },
            "userRolePattern": {"exclude": ["ACCOUNTADMIN"]}
        }
    })
}

// ------------------------------------------------------------------ Databricks payloads

pub fn dbx_oauth() -> Value {
    json!({
        "useCertificate": false,
        "clientId": "0a1b2c3d-sp",
        "clientSecret": "dose-secret",
        "scope": "all-apis",
        "authorityUrl": "https://dbc-1234.cloud.databricks.com/oidc"
    })
}

pub fn dbx_config() -> Value {
    json!({
        "workspaceUrl": "dbc-1234.cloud.databricks.com",
        "httpPath": "/sql/1.0/warehouses/abc123",
        "authenticationType": "oAuthM2M",
        "oAuthClientConfig": dbx_oauth(),
        "catalog": "immuta_prod",
        "audit": {"enabled": true},
        "workspaceIds": ["1234567890"],
        "groupPattern": {"deny": "immuta_exempt"}
    })
}

pub fn dbx_script_body() -> Value {
    json!({"type": "Databricks", "autoBootstrap": false, "config": dbx_config()})
}

pub fn dbx_registration(key: &str) -> Value {
    json!({
        "connectionKey": key,
        "connection": {
            "technology": "Databricks",
            "hostname": "dbc-1234.cloud.databricks.com",
            "port": 443,
            "httpPath": "/sql/1.0/warehouses/abc123",
            "authenticationType": "oAuthM2M",
            "oAuthClientConfig": dbx_oauth()
        },
        "settings": {"isActive": false},
        "options": {"forceRecursiveCrawl": true},
        "nativeIntegration": {
            "type": "Databricks",
            "autoBootstrap": false,
            "unityCatalog": true,
            "config": {
                "host": "dbc-1234.cloud.databricks.com",
                "port": 443,
                "authenticationType": "oAuthM2M",
                "oAuthClientConfig": dbx_oauth(),
                "catalog": "immuta_prod",
                "audit": {"enabled": true},
                "workspaceIds": ["1234567890"],
                "groupPattern": {"deny": "immuta_exempt"}
            }
        }
    })
}

// ------------------------------------------------------------------ warehouse execution

/// Run a whole script through the Snowflake SQL API as one synchronous multi-statement request.
pub async fn snowflake_run_all(env: &Env, script: &str) -> Resp {
    let r = env
        .http
        .post(format!("{}/api/v2/statements", env.emu.url()))
        .bearer_auth(snowflake_jwt())
        .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
        .json(&json!({"statement": script, "warehouse": "ADMIN_WH", "parameters": {"MULTI_STATEMENT_COUNT": "0"}}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Resp {
        status,
        headers,
        text: r.text().await.unwrap(),
    }
}

/// Run one statement through Databricks synchronously (wait_timeout 10s).
pub async fn databricks_run(env: &Env, token: &str, statement: &str) -> Value {
    let r = env
        .http
        .post(format!("{}/api/2.0/sql/statements", env.emu.url()))
        .bearer_auth(token)
        .json(&json!({"statement": statement, "warehouse_id": "abc123", "wait_timeout": "10s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}
