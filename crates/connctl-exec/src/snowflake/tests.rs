//! Snowflake executor tests against a scriptable mock: headers, body, polling, retries with the
//! same `requestId`, failures and key-pair tokens.

use serde_json::json;

use crate::testing::{Answer, Mock, Recorded, fast_timing, secret_file};
use crate::{
    ExecError, Executor, ExecutorConfig, Outcome, Purpose, ScriptRun, SnowflakeAuth, SnowflakeExecConfig,
    Target,
};

const SCRIPT: &str = "CREATE ROLE IF NOT EXISTS \"IMMUTA_SYSTEM\";\n\
                      CREATE USER IF NOT EXISTS \"IMMUTA_SYSTEM_ACCOUNT\" PASSWORD = 'Sup3r-Secret-Pw';\n\
                      GRANT ROLE \"IMMUTA_SYSTEM\" TO USER \"IMMUTA_SYSTEM_ACCOUNT\";\n";

fn config(url: &str, auth: SnowflakeAuth) -> ExecutorConfig {
    ExecutorConfig::Snowflake(SnowflakeExecConfig {
        url: Some(url.to_owned()),
        account: None,
        user: "platform_admin".into(),
        role: Some("ACCOUNTADMIN".into()),
        warehouse: Some("ADMIN_WH".into()),
        auth,
        timeout_secs: 30,
    })
}

fn executor(cfg: ExecutorConfig) -> Executor {
    Executor::new(cfg, reqwest::Client::new(), "/nonexistent".into()).with_timing(fast_timing())
}

fn run(sql: &str) -> ScriptRun<'_> {
    ScriptRun {
        connection_key: "sf-prod",
        purpose: Purpose::Create,
        sql,
        target: Target::Snowflake {
            host: "acme-prod.snowflakecomputing.com".into(),
        },
    }
}

fn accepted() -> Answer {
    Answer(
        202,
        vec![],
        json!({"code": "333334", "message": "Asynchronous execution in progress.", "statementHandle": "01b2-0000-abcd",
               "statementStatusUrl": "/api/v2/statements/01b2-0000-abcd"}),
    )
}

fn done(n: usize) -> Answer {
    let handles: Vec<String> = (0..n).map(|i| format!("01b2-000{i}")).collect();
    Answer(
        200,
        vec![],
        json!({"code": "090001", "message": "Statement executed successfully.",
        "statementHandle": "01b2-0000-abcd", "statementHandles": handles}),
    )
}

fn oauth(dir: &tempfile::TempDir) -> SnowflakeAuth {
    SnowflakeAuth::OAuth {
        token: secret_file(dir, "token", "oauth-token-value"),
    }
}

#[tokio::test]
async fn submits_once_and_polls_to_success() {
    let mock =
        Mock::start(
            |req: &Recorded, earlier: &[Recorded]| match (req.method.as_str(), earlier.len()) {
                ("POST", _) => accepted(),
                (_, 1) => accepted(),
                _ => done(3),
            },
        )
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = executor(config(mock.url(), oauth(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect("runs");
    assert_eq!(out, Outcome::Executed { statements: 3 });

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    let post = &reqs[0];
    assert_eq!(post.path, "/api/v2/statements");
    assert!(
        !post.query.contains("async=true") && post.query.contains("requestId="),
        "{}",
        post.query
    );
    assert!(!post.query.contains("retry"));
    assert_eq!(post.header("authorization"), "Bearer oauth-token-value");
    assert_eq!(post.header("x-snowflake-authorization-token-type"), "OAUTH");
    assert!(post.header("user-agent").starts_with("connctl/"));
    assert_eq!(post.header("accept"), "application/json");
    let body = post.json();
    assert_eq!(body["statement"], SCRIPT);
    assert_eq!(body["timeout"], 30);
    assert_eq!(body["warehouse"], "ADMIN_WH");
    assert_eq!(body["role"], "ACCOUNTADMIN");
    assert_eq!(body["parameters"]["MULTI_STATEMENT_COUNT"], "0");
    assert_eq!(body["parameters"]["QUERY_TAG"], "connctl");
    assert_eq!(reqs[1].method, "GET");
    assert_eq!(reqs[1].path, "/api/v2/statements/01b2-0000-abcd");
    assert_eq!(reqs[2].header("x-snowflake-authorization-token-type"), "OAUTH");
}

#[tokio::test]
async fn retries_reuse_the_request_id() {
    let mock =
        Mock::start(
            |req: &Recorded, earlier: &[Recorded]| match (req.method.as_str(), earlier.len()) {
                ("POST", 0) => Answer(503, vec![], json!({"code": "390503", "message": "unavailable"})),
                ("POST", 1) => Answer(429, vec![("retry-after", "0".into())], json!({"code": "390505"})),
                ("POST", 2) => Answer(502, vec![], json!({})),
                ("POST", _) => accepted(),
                (_, 4) => Answer(500, vec![], json!({})),
                _ => done(3),
            },
        )
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = executor(config(mock.url(), oauth(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect("runs");
    assert_eq!(out, Outcome::Executed { statements: 3 });
    let reqs = mock.requests();
    let posts: Vec<&Recorded> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 4);
    let id = |r: &Recorded| {
        r.query
            .split('&')
            .find(|p| p.starts_with("requestId="))
            .map(str::to_owned)
    };
    assert!(
        posts.iter().all(|p| id(p) == id(posts[0])),
        "same requestId on every attempt"
    );
    assert!(!posts[0].query.contains("retry=true"));
    assert!(posts[1..].iter().all(|p| p.query.contains("retry=true")));
    assert_eq!(
        reqs.iter().filter(|r| r.method == "GET").count(),
        2,
        "a failed poll is retried"
    );
}

#[tokio::test]
async fn failed_statement_is_named_and_scrubbed() {
    let mock = Mock::start(|req: &Recorded, _: &[Recorded]| match req.method.as_str() {
        "POST" => accepted(),
        _ => Answer(
            422,
            vec![],
            json!({"code": "003001", "sqlState": "42501",
                "message": "SQL access control error: Insufficient privileges near 'Sup3r-Secret-Pw'",
                "statementHandle": "01b2-0000-abcd", "statementHandles": ["h1", "h2"]}),
        ),
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = executor(config(mock.url(), oauth(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    let text = err.to_string();
    assert_eq!(err.statement_number(), Some(2));
    assert_eq!(err.server_code(), Some("003001"));
    assert!(text.contains("statement 2 (CREATE)"), "{text}");
    assert!(text.contains("Insufficient privileges"), "{text}");
    assert!(!text.contains("Sup3r-Secret-Pw"), "{text}");
    assert!(
        !text.contains("IMMUTA_SYSTEM_ACCOUNT"),
        "no statement text: {text}"
    );
}

#[tokio::test]
async fn unauthorized_is_an_auth_error_without_the_token() {
    let mock = Mock::start(|_: &Recorded, _: &[Recorded]| {
        Answer(
            401,
            vec![],
            json!({"code": "390303", "message": "Invalid OAuth access token."}),
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pat = SnowflakeAuth::ProgrammaticAccessToken {
        token: secret_file(&dir, "pat", "pat-secret-value"),
    };
    let err = executor(config(mock.url(), pat))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    assert!(matches!(err, ExecError::Auth { status: 401, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("network policy"), "{text}");
    assert!(!text.contains("pat-secret-value"));
    assert_eq!(
        mock.requests()[0].header("x-snowflake-authorization-token-type"),
        "PROGRAMMATIC_ACCESS_TOKEN"
    );
    assert_eq!(mock.requests().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn key_pair_token_is_a_valid_jwt_for_the_derived_account() {
    let mock = Mock::start(|_: &Recorded, _: &[Recorded]| done(1)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = include_str!("../../tests/fixtures/test_rsa_key.p8");
    let auth = SnowflakeAuth::KeyPair {
        private_key: secret_file(&dir, "key.p8", key),
    };
    let out = executor(config(mock.url(), auth))
        .execute(&run("SELECT 1"))
        .await
        .expect("runs");
    assert_eq!(out, Outcome::Executed { statements: 1 });
    let req = &mock.requests()[0];
    assert_eq!(req.header("x-snowflake-authorization-token-type"), "KEYPAIR_JWT");
    let token = req
        .header("authorization")
        .strip_prefix("Bearer ")
        .expect("bearer");
    let public = include_str!("../../tests/fixtures/test_rsa_key.pub");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<super::jwt::Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).expect("public"),
        &v,
    )
    .expect("verifies");
    assert_eq!(data.claims.sub, "ACME-PROD.PLATFORM_ADMIN");
    assert!(data.claims.iss.starts_with("ACME-PROD.PLATFORM_ADMIN.SHA256:"));
}

#[tokio::test]
async fn server_timeout_and_client_deadline() {
    let mock =
        Mock::start(|_: &Recorded, _: &[Recorded]| Answer(408, vec![], json!({"code": "000630"}))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = executor(config(mock.url(), oauth(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    assert!(matches!(err, ExecError::Timeout { secs: 30, .. }), "{err:?}");
}

#[tokio::test]
async fn configuration_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A Snowflake executor cannot run a Databricks script.
    let ex = executor(config("http://127.0.0.1:9", oauth(&dir)));
    let mut r = run(SCRIPT);
    r.target = Target::Databricks {
        workspace_url: "w".into(),
        http_path: "/sql/1.0/warehouses/x".into(),
    };
    assert!(matches!(ex.execute(&r).await, Err(ExecError::Config { .. })));
    // Plain http to a non-loopback host is refused before anything is sent.
    let ex = executor(config("http://example.com", oauth(&dir)));
    assert!(matches!(
        ex.execute(&run(SCRIPT)).await,
        Err(ExecError::Config { .. })
    ));
    // A missing secret names the reference.
    let missing = SnowflakeAuth::OAuth {
        token: connctl_spec::SecretRef::File(dir.path().join("absent")),
    };
    let err = executor(config("http://127.0.0.1:9", missing))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    assert!(matches!(err, ExecError::Credential { .. }), "{err:?}");
    assert!(err.to_string().contains("absent"));
}

#[tokio::test]
async fn unreachable_server_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let err = executor(config("http://127.0.0.1:9", oauth(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    assert!(matches!(err, ExecError::Api { status: None, .. }), "{err:?}");
}

#[tokio::test]
async fn statement_number_from_the_message() {
    let mock = Mock::start(|_: &Recorded, _: &[Recorded]| {
        Answer(
            422,
            vec![],
            json!({"code": "001003", "sqlState": "42000",
                "message": "Statement 3 of 3: SQL compilation error:\nsyntax error line 1 at position 0 unexpected 'GRANT'."}),
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = executor(config(mock.url(), oauth(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    assert_eq!(err.statement_number(), Some(3));
    assert!(err.to_string().contains("statement 3 (GRANT)"), "{err}");
}

#[test]
fn numbers_in_messages() {
    assert_eq!(super::number_in_message("Statement 4 of 11: x"), Some(4));
    assert_eq!(super::number_in_message("SQL compilation error"), None);
    assert_eq!(super::number_in_message("Statement executed"), None);
}

/// A 200 proves nothing by itself: a proxy's HTML page, a non-JSON or truncated body, or a
/// JSON of another shape is an error quoting a safe excerpt of the body, never "executed".
#[tokio::test]
async fn a_200_that_is_not_a_successful_statement_result_is_a_failure() {
    let secret = "sf-exec-oauth-secret-9a1";
    let cases: Vec<(&str, Answer)> = vec![
        (
            "html",
            Answer(
                200,
                vec![("content-type", "text/html".into())],
                json!(format!(
                    "<html><body>Sign in\n\n to continue {secret} 'Sup3r-Secret-Pw'</body></html>"
                )),
            ),
        ),
        (
            "not json",
            Answer(200, vec![("content-type", "text/plain".into())], json!("OK")),
        ),
        (
            "truncated",
            Answer(
                200,
                vec![("content-type", "application/json".into())],
                json!("{\"code\": \"090001\", \"statementHa"),
            ),
        ),
        (
            "empty",
            Answer(200, vec![("content-type", "text/plain".into())], json!("")),
        ),
        ("other shape", Answer(200, vec![], json!({"data": [["ok"]]}))),
        (
            "no handle",
            Answer(
                200,
                vec![],
                json!({"code": "090001", "message": "Statement executed successfully."}),
            ),
        ),
        (
            "a failure code",
            Answer(
                200,
                vec![],
                json!({"code": "000604", "sqlState": "57014", "statementHandle": "01b2"}),
            ),
        ),
    ];
    for (name, answer) in cases {
        let answer = std::sync::Mutex::new(Some(answer));
        let mock = Mock::start(move |_req: &Recorded, _earlier: &[Recorded]| {
            answer.lock().expect("lock").take().unwrap_or_else(|| done(3))
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = SnowflakeAuth::OAuth {
            token: secret_file(&dir, "token", secret),
        };
        let err = executor(config(mock.url(), auth))
            .execute(&run(SCRIPT))
            .await
            .expect_err(name);
        let text = err.to_string();
        assert!(
            matches!(
                &err,
                ExecError::Api {
                    status: Some(200),
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        assert!(
            text.contains("does not show that the script ran"),
            "{name}: {text}"
        );
        assert!(
            !text.contains(secret) && !text.contains("Sup3r-Secret-Pw"),
            "{name}: {text}"
        );
        assert_eq!(mock.requests().len(), 1, "{name}: one request, no retry");
        if name == "html" {
            assert!(text.contains("<html><body>Sign in to continue"), "{text}");
        }
    }
}
