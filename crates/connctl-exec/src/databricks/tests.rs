//! Databricks executor tests against a scriptable mock: one statement per call, polling, the
//! first failure stops the run, OAuth M2M token caching, no blind retry of a submission.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::testing::{Answer, Mock, Recorded, fast_timing, secret_file};
use crate::{
    DatabricksAuth, DatabricksExecConfig, ExecError, Executor, ExecutorConfig, Outcome, Purpose, ScriptRun,
    Target,
};

const SCRIPT: &str = include_str!("../../tests/fixtures/databricks_setup.sql");

fn config(url: &str, auth: DatabricksAuth) -> ExecutorConfig {
    ExecutorConfig::Databricks(DatabricksExecConfig {
        url: Some(url.to_owned()),
        warehouse_id: None,
        auth,
        timeout_secs: 30,
    })
}

fn executor(cfg: ExecutorConfig) -> Executor {
    Executor::new(cfg, reqwest::Client::new(), "/nonexistent".into()).with_timing(fast_timing())
}

fn run(sql: &str) -> ScriptRun<'_> {
    ScriptRun {
        connection_key: "dbx-prod",
        purpose: Purpose::Create,
        sql,
        target: Target::Databricks {
            workspace_url: "dbc-1234.cloud.databricks.com".into(),
            http_path: "/sql/1.0/warehouses/wh-42".into(),
        },
    }
}

fn pat(dir: &tempfile::TempDir) -> DatabricksAuth {
    DatabricksAuth::Token {
        token: secret_file(dir, "pat", "dapi-secret-token"),
    }
}

fn state(id: &str, state: &str) -> Answer {
    Answer(
        200,
        vec![],
        json!({"statement_id": id, "status": {"state": state}}),
    )
}

/// Each POST gets a new id and starts PENDING; each GET moves it RUNNING → SUCCEEDED, except
/// that the statement whose text contains `fail_on` fails.
fn warehouse(fail_on: Option<&'static str>) -> impl Fn(&Recorded, &[Recorded]) -> Answer + Send + Sync {
    move |req, earlier| {
        if req.method == "POST" {
            let n = earlier.iter().filter(|r| r.method == "POST").count() + 1;
            return state(&format!("stmt-{n}"), "PENDING");
        }
        let id = req.path.rsplit('/').next().unwrap_or("").to_owned();
        let polls = earlier
            .iter()
            .filter(|r| r.method == "GET" && r.path == req.path)
            .count();
        let n: usize = id.trim_start_matches("stmt-").parse().unwrap_or(0);
        let text = earlier
            .iter()
            .filter(|r| r.method == "POST")
            .nth(n.saturating_sub(1))
            .map(|r| r.json()["statement"].to_string());
        match (polls, fail_on) {
            (0, _) => state(&id, "RUNNING"),
            (_, Some(f)) if text.is_some_and(|t| t.contains(f)) => Answer(
                200,
                vec![],
                json!({"statement_id": id, "status": {"state": "FAILED", "error": {"error_code": "PERMISSION_DENIED",
                    "message": "User does not have MANAGE on Catalog 'main'.\n== SQL ==\nGRANT ... 'x'"}}}),
            ),
            _ => state(&id, "SUCCEEDED"),
        }
    }
}

#[tokio::test]
async fn runs_each_statement_in_order() {
    let mock = Mock::start(warehouse(None)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = executor(config(mock.url(), pat(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect("runs");
    assert_eq!(out, Outcome::Executed { statements: 8 });
    let reqs = mock.requests();
    let posts: Vec<&Recorded> = reqs.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 8);
    let expected =
        crate::split::split_statements(SCRIPT, crate::split::SqlDialect::Databricks).expect("splits");
    for (post, st) in posts.iter().zip(&expected) {
        let body = post.json();
        assert_eq!(post.path, "/api/2.0/sql/statements");
        assert_eq!(body["statement"], st.text, "sent verbatim");
        assert_eq!(body["warehouse_id"], "wh-42");
        assert_eq!(body["wait_timeout"], "30s");
        assert_eq!(body["on_wait_timeout"], "CONTINUE");
        assert_eq!(post.header("authorization"), "Bearer dapi-secret-token");
    }
    // Statements run one after another: each is polled to SUCCEEDED before the next is sent.
    let order: Vec<String> = reqs.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(order[0], "POST /api/2.0/sql/statements");
    assert_eq!(order[1], "GET /api/2.0/sql/statements/stmt-1");
    assert_eq!(order[2], "GET /api/2.0/sql/statements/stmt-1");
    assert_eq!(order[3], "POST /api/2.0/sql/statements");
}

#[tokio::test]
async fn stops_at_the_first_failure() {
    let mock = Mock::start(warehouse(Some("ON CATALOG `main`"))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = executor(config(mock.url(), pat(&dir)))
        .execute(&run(SCRIPT))
        .await
        .expect_err("fails");
    assert_eq!(err.statement_number(), Some(4));
    assert_eq!(err.server_code(), Some("PERMISSION_DENIED"));
    let text = err.to_string();
    assert!(text.contains("statement 4 (GRANT)"), "{text}");
    assert!(text.contains("does not have MANAGE"), "{text}");
    assert!(!text.contains("== SQL"), "echoed SQL is dropped: {text}");
    assert_eq!(
        mock.requests().iter().filter(|r| r.method == "POST").count(),
        4,
        "nothing after the failure"
    );
}

#[tokio::test]
async fn oauth_m2m_token_is_fetched_once_and_cached() {
    let token_calls = Arc::new(AtomicUsize::new(0));
    let calls = token_calls.clone();
    let inner = warehouse(None);
    let mock = Mock::start(move |req: &Recorded, earlier: &[Recorded]| {
        if req.path == "/oidc/v1/token" {
            calls.fetch_add(1, Ordering::SeqCst);
            return Answer(
                200,
                vec![],
                json!({"access_token": "m2m-access", "token_type": "Bearer", "expires_in": 3600}),
            );
        }
        let rest: Vec<Recorded> = earlier
            .iter()
            .filter(|r| r.path != "/oidc/v1/token")
            .cloned()
            .collect();
        inner(req, &rest)
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = DatabricksAuth::OAuthM2M {
        client_id: "sp-client".into(),
        client_secret: secret_file(&dir, "secret", "dose-secret"),
        token_url: None,
    };
    let ex = executor(config(mock.url(), auth));
    ex.execute(&run("SELECT 1; SELECT 2")).await.expect("runs");
    ex.execute(&run("SELECT 3")).await.expect("runs");
    assert_eq!(token_calls.load(Ordering::SeqCst), 1, "the token is cached");
    let reqs = mock.requests();
    let token_req = reqs
        .iter()
        .find(|r| r.path == "/oidc/v1/token")
        .expect("token request");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("sp-client:dose-secret");
    assert_eq!(token_req.header("authorization"), format!("Basic {basic}"));
    assert_eq!(token_req.body, "grant_type=client_credentials&scope=all-apis");
    assert!(
        reqs.iter()
            .filter(|r| r.path.starts_with("/api/"))
            .all(|r| r.header("authorization") == "Bearer m2m-access")
    );
}

#[tokio::test]
async fn bad_client_secret_is_an_auth_error() {
    let mock = Mock::start(|_: &Recorded, _: &[Recorded]| {
        Answer(
            401,
            vec![],
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = DatabricksAuth::OAuthM2M {
        client_id: "sp".into(),
        client_secret: secret_file(&dir, "secret", "wrong-secret"),
        token_url: Some(format!("{}/oidc/v1/token", mock.url())),
    };
    let err = executor(config(mock.url(), auth))
        .execute(&run("SELECT 1"))
        .await
        .expect_err("fails");
    assert!(matches!(err, ExecError::Auth { status: 401, .. }), "{err:?}");
    assert!(!err.to_string().contains("wrong-secret"));
}

#[tokio::test]
async fn ambiguous_submission_failures_are_not_retried() {
    let mock = Mock::start(|_: &Recorded, _: &[Recorded]| {
        Answer(
            500,
            vec![],
            json!({"error_code": "INTERNAL_ERROR", "message": "boom"}),
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = executor(config(mock.url(), pat(&dir)))
        .execute(&run("SELECT 1; SELECT 2"))
        .await
        .expect_err("fails");
    assert!(
        matches!(
            &err,
            ExecError::Api {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("statement 1 (SELECT)"), "{err}");
    assert_eq!(
        mock.requests().len(),
        1,
        "a 500 on a submission may have run it: no blind retry"
    );
}

#[tokio::test]
async fn rejected_submissions_are_retried() {
    let inner = warehouse(None);
    let mock = Mock::start(move |req: &Recorded, earlier: &[Recorded]| match earlier.len() {
        0 => Answer(503, vec![], json!({"error_code": "TEMPORARILY_UNAVAILABLE"})),
        1 => Answer(
            429,
            vec![("retry-after", "0".into())],
            json!({"error_code": "REQUEST_LIMIT_EXCEEDED"}),
        ),
        _ => inner(req, &earlier[2..]),
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = executor(config(mock.url(), pat(&dir)))
        .execute(&run("SELECT 1"))
        .await
        .expect("runs");
    assert_eq!(out, Outcome::Executed { statements: 1 });
    assert_eq!(mock.requests().iter().filter(|r| r.method == "POST").count(), 3);
}

#[tokio::test]
async fn canceled_and_closed_are_failures() {
    for final_state in ["CANCELED", "CLOSED"] {
        let mock = Mock::start(move |req: &Recorded, _: &[Recorded]| match req.method.as_str() {
            "POST" => state("s1", "RUNNING"),
            _ => state("s1", final_state),
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let err = executor(config(mock.url(), pat(&dir)))
            .execute(&run("GRANT SELECT ON t TO x"))
            .await
            .expect_err("fails");
        assert_eq!(err.server_code(), Some(final_state));
        assert_eq!(err.statement_number(), Some(1));
    }
}

#[tokio::test]
async fn statement_timeout_cancels() {
    let mock = Mock::start(|req: &Recorded, _: &[Recorded]| match req.method.as_str() {
        "POST" if req.path.ends_with("/cancel") => Answer(200, vec![], json!({})),
        _ => state("slow-1", "RUNNING"),
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ExecutorConfig::Databricks(DatabricksExecConfig {
        url: Some(mock.url().to_owned()),
        warehouse_id: Some("explicit-wh".into()),
        auth: pat(&dir),
        timeout_secs: 1,
    });
    let err = executor(cfg)
        .execute(&run("SELECT 1"))
        .await
        .expect_err("times out");
    assert!(
        matches!(&err, ExecError::Timeout { what, secs: 1 } if what == "statement 1 (SELECT)"),
        "{err:?}"
    );
    let reqs = mock.requests();
    assert_eq!(reqs[0].json()["warehouse_id"], "explicit-wh");
    assert!(
        reqs.iter()
            .any(|r| r.path == "/api/2.0/sql/statements/slow-1/cancel")
    );
}

#[tokio::test]
async fn unsplittable_script_sends_nothing() {
    let mock = Mock::start(warehouse(None)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = executor(config(mock.url(), pat(&dir)))
        .execute(&run("SELECT 1;\nCREATE USER x PASSWORD 'unterminated"))
        .await
        .expect_err("fails");
    assert!(matches!(&err, ExecError::Split(e) if e.line == 2), "{err:?}");
    assert!(!err.to_string().contains("unterminated"), "{err}");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn empty_script_executes_nothing() {
    let mock = Mock::start(warehouse(None)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = executor(config(mock.url(), pat(&dir)))
        .execute(&run("-- nothing to do\n"))
        .await
        .expect("runs");
    assert_eq!(out, Outcome::Executed { statements: 0 });
    assert!(mock.requests().is_empty());
}

/// Only `status.state == SUCCEEDED` is success: an HTML or non-JSON 200, a body without a
/// statement id and state, or an unknown state is an error quoting a safe excerpt of the body.
#[tokio::test]
async fn a_200_that_is_not_a_statement_status_is_a_failure() {
    let secret = "dbx-exec-token-secret-9a2";
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "html",
            Answer(
                200,
                vec![("content-type", "text/html".into())],
                json!(format!("<html>\n<body>Login {secret}</body></html>")),
            ),
            "no usable statement_id",
        ),
        (
            "truncated",
            Answer(
                200,
                vec![("content-type", "application/json".into())],
                json!("{\"statement_id\": \"s-1\", \"status\": {\"sta"),
            ),
            "no usable statement_id",
        ),
        (
            "wrong shape",
            Answer(200, vec![], json!({"result": "ok"})),
            "no usable statement_id",
        ),
        (
            "unknown state",
            state("s-1", "DONE_MAYBE"),
            "unknown statement state",
        ),
    ];
    for (name, answer, expected) in cases {
        let answer = std::sync::Mutex::new(Some(answer));
        let mock = Mock::start(move |_req: &Recorded, _earlier: &[Recorded]| {
            answer
                .lock()
                .expect("lock")
                .take()
                .unwrap_or_else(|| state("s-2", "SUCCEEDED"))
        })
        .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = DatabricksAuth::Token {
            token: secret_file(&dir, "pat", secret),
        };
        let err = executor(config(mock.url(), auth))
            .execute(&run("GRANT USE CATALOG ON CATALOG `c` TO `p`"))
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
        assert!(text.contains(expected), "{name}: {text}");
        assert!(!text.contains(secret), "{name}: {text}");
        assert_eq!(mock.requests().len(), 1, "{name}: stops at the first answer");
        if name == "html" {
            assert!(
                text.contains("<html> <body>Login (sensitive)"),
                "the body is quoted: {text}"
            );
        }
    }
}
