//! One read-only Snowflake statement through the SQL API v2, its result set returned.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::{Auth, Script, WAREHOUSE, request, request_failed, statement_failed, statement_handle};
use crate::ExecError;
use crate::config::SnowflakeExecConfig;
use crate::http::{self, Repeat, Timing};
use crate::query::QueryResult;
use crate::split::{self, SqlDialect};

pub(crate) async fn query(
    client: &reqwest::Client,
    timing: &Timing,
    cfg: &SnowflakeExecConfig,
    host: &str,
    sql: &str,
) -> Result<QueryResult, ExecError> {
    let base = http::base_for(cfg.url.as_deref(), host)?;
    let mut auth = Auth::resolve(cfg, host)?;
    let script = Script {
        sql,
        statements: split::split_statements(sql, SqlDialect::Snowflake).ok(),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut body = json!({
        "statement": sql,
        "timeout": cfg.timeout_secs,
        "parameters": { "MULTI_STATEMENT_COUNT": "1", "QUERY_TAG": "connctl-preflight" },
    });
    if let Some(w) = &cfg.warehouse {
        body["warehouse"] = json!(w);
    }
    if let Some(r) = &cfg.role {
        body["role"] = json!(r);
    }
    let submit_url = http::join(&base, &["api", "v2", "statements"]);
    let token = auth.bearer()?;
    let kind = auth.kind();
    let mut reply = http::send(timing, WAREHOUSE, "running a check", Repeat::Safe, |attempt| {
        let mut url = submit_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("requestId", &request_id);
            if attempt > 0 {
                q.append_pair("retry", "true");
            }
        }
        request(client, reqwest::Method::POST, url, &token, kind).json(&body)
    })
    .await?;
    let started = Instant::now();
    let limit = Duration::from_secs(cfg.timeout_secs);
    let mut delay = timing.poll_min;
    loop {
        match reply.status {
            StatusCode::OK => {
                let v = reply.json();
                return Ok(QueryResult::from_parts(
                    v.pointer("/resultSetMetaData/rowType"),
                    v.get("data"),
                ));
            }
            StatusCode::ACCEPTED => {}
            StatusCode::UNPROCESSABLE_ENTITY => return Err(statement_failed(&reply, &script)),
            _ => return Err(request_failed(&reply, &auth, "running a check")),
        }
        if started.elapsed() > limit {
            return Err(ExecError::Timeout {
                what: "a check".into(),
                secs: cfg.timeout_secs,
            });
        }
        let handle = statement_handle(&reply, &script)?;
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(timing.poll_max);
        let url = http::join(&base, &["api", "v2", "statements", &handle]);
        let token = auth.bearer()?;
        reply = http::send(timing, WAREHOUSE, "running a check", Repeat::Safe, |_| {
            request(client, reqwest::Method::GET, url.clone(), &token, kind)
        })
        .await?;
    }
}
