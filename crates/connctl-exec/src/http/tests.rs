use super::*;
use crate::testing::{Answer, Mock, fast_timing, secret_file};
use crate::{
    DatabricksAuth, DatabricksExecConfig, Executor, ExecutorConfig, Purpose, ScriptRun, SnowflakeAuth,
    SnowflakeExecConfig, Target,
};

const SCRIPT: &str = "CREATE USER IF NOT EXISTS \"IMMUTA\" PASSWORD = 'Sup3r-Secret-Pw';";

/// A server that would answer success to anything: the target of every redirect below.
async fn elsewhere() -> Mock {
    Mock::start(|_, _| {
        Answer(
            200,
            vec![],
            serde_json::json!({"code": "090001", "statementHandle": "h", "statement_id": "s",
                               "status": {"state": "SUCCEEDED"}}),
        )
    })
    .await
}

async fn redirecting(status: u16, to: &str) -> Mock {
    let to = format!("{to}/api/v2/statements?token=abc");
    Mock::start(move |_, _| Answer(status, vec![("location", to.clone())], serde_json::json!({}))).await
}

#[tokio::test]
async fn no_redirect_is_followed_and_the_target_receives_nothing() {
    for status in [301, 302, 303, 307, 308] {
        let target = elsewhere().await;
        let api = redirecting(status, target.url()).await;
        let url = format!("{}/api/v2/statements", api.url());
        for repeat in [
            Repeat::Safe,
            Repeat::OnlyIfRejected,
            Repeat::OnlyIfRejectedOrUnavailable,
        ] {
            let err = send(
                &fast_timing(),
                "Snowflake",
                "submitting the script",
                repeat,
                |_| http_client().post(&url).bearer_auth("tok").body(SCRIPT),
            )
            .await
            .expect_err("a redirect is an error");
            let msg = err.to_string();
            assert!(
                matches!(err, ExecError::Api { status: Some(s), .. } if s == status),
                "{status}: {err:?}"
            );
            assert!(
                msg.contains(&format!("redirected to {}/api/v2/statements", target.url())),
                "{msg}"
            );
            assert!(!msg.contains("token=abc"), "{msg}");
        }
        assert!(target.requests().is_empty(), "{status}: {:?}", target.requests());
        // One request per kind of repeat: none is retried.
        assert_eq!(api.requests().len(), 3, "{status}: never retried");
    }
}

#[tokio::test]
async fn a_client_that_follows_redirects_still_gets_no_success() {
    let target = elsewhere().await;
    let api = redirecting(302, target.url()).await;
    let url = format!("{}/api/v2/statements/h", api.url());
    let err = send(
        &fast_timing(),
        "Snowflake",
        "checking the script",
        Repeat::Safe,
        |_| reqwest::Client::new().get(&url),
    )
    .await
    .expect_err("an answer from elsewhere is not the API's");
    assert!(err.to_string().contains("which connctl does not follow"), "{err}");
}

#[tokio::test]
async fn executors_refuse_a_redirected_submission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = elsewhere().await;
    let api = redirecting(307, target.url()).await;
    let snowflake = ExecutorConfig::Snowflake(SnowflakeExecConfig {
        url: Some(api.url().to_owned()),
        account: None,
        user: "admin".into(),
        role: None,
        warehouse: None,
        auth: SnowflakeAuth::OAuth {
            token: secret_file(&dir, "token", "oauth-token"),
        },
        timeout_secs: 30,
    });
    let databricks = ExecutorConfig::Databricks(DatabricksExecConfig {
        url: Some(api.url().to_owned()),
        warehouse_id: None,
        auth: DatabricksAuth::Token {
            token: secret_file(&dir, "pat", "dapi-token"),
        },
        timeout_secs: 30,
    });
    let targets = [
        Target::Snowflake {
            host: "acme.snowflakecomputing.com".into(),
        },
        Target::Databricks {
            workspace_url: "dbc-1.cloud.databricks.com".into(),
            http_path: "/sql/1.0/warehouses/wh-1".into(),
        },
    ];
    for (config, target_of) in [snowflake, databricks].into_iter().zip(targets) {
        let ex = Executor::new(config, http_client(), "/nonexistent".into()).with_timing(fast_timing());
        let run = ScriptRun {
            connection_key: "c",
            purpose: Purpose::Create,
            sql: SCRIPT,
            target: target_of,
        };
        let err = ex.execute(&run).await.expect_err("not executed");
        assert!(err.to_string().contains("redirected to"), "{err}");
    }
    assert!(target.requests().is_empty(), "{:?}", target.requests());
}

#[test]
fn a_url_without_a_scheme_gets_a_hint() {
    assert_eq!(
        check_base_url("acme.snowflakecomputing.com").expect_err("no scheme"),
        "`acme.snowflakecomputing.com` has no scheme; did you mean `https://acme.snowflakecomputing.com`?"
    );
}

#[test]
fn base_urls() {
    assert!(check_base_url("https://acme.snowflakecomputing.com").is_ok());
    assert!(check_base_url("http://127.0.0.1:1234").is_ok());
    assert!(check_base_url("http://localhost:1234").is_ok());
    assert!(check_base_url("http://[::1]:1234").is_ok());
    assert!(check_base_url("http://acme.snowflakecomputing.com").is_err());
    assert!(check_base_url("ftp://x").is_err());
    assert!(check_base_url("not a url").is_err());
}

#[test]
fn bare_hosts() {
    assert_eq!(bare_host("a.b.com"), "a.b.com");
    assert_eq!(bare_host("https://a.b.com:443/x"), "a.b.com");
    assert_eq!(bare_host("a.b.com:8443"), "a.b.com");
}

#[test]
fn joins_encode_segments() {
    let base = reqwest::Url::parse("http://127.0.0.1:9/prefix/").expect("url");
    assert_eq!(
        join(&base, &["api", "v2", "a/b"]).as_str(),
        "http://127.0.0.1:9/prefix/api/v2/a%2Fb"
    );
}
