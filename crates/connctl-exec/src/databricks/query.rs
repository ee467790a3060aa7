//! One read-only Databricks statement through the Statement Execution API, its result set
//! returned (the first chunk, which holds every row of the small answers checks read).

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Context, SUBMIT_WAIT, WAREHOUSE};
use crate::ExecError;
use crate::error::scrub;
use crate::http::{self, Repeat};
use crate::query::QueryResult;

impl Context<'_> {
    pub(crate) async fn query(
        &self,
        workspace_url: &str,
        http_path: &str,
        sql: &str,
    ) -> Result<QueryResult, ExecError> {
        let base = http::base_for(self.cfg.url.as_deref(), workspace_url)?;
        let warehouse_id = self.warehouse_id(http_path)?;
        let body = json!({
            "statement": sql,
            "warehouse_id": warehouse_id,
            "wait_timeout": SUBMIT_WAIT,
            "on_wait_timeout": "CONTINUE",
            "format": "JSON_ARRAY",
            "disposition": "INLINE",
        });
        let token = self.bearer(&base).await?;
        let submit_url = http::join(&base, &["api", "2.0", "sql", "statements"]);
        // A read-only statement is safe to send again.
        let mut reply = http::send(self.timing, WAREHOUSE, "running a check", Repeat::Safe, |_| {
            self.request(reqwest::Method::POST, submit_url.clone(), &token)
                .json(&body)
        })
        .await?;
        let started = Instant::now();
        let limit = Duration::from_secs(self.cfg.timeout_secs);
        let mut delay = self.timing.poll_min;
        loop {
            let status = self.status(&reply, "running a check", &[]).await?;
            match status.state.as_str() {
                "SUCCEEDED" => {
                    let v = reply.json();
                    return Ok(QueryResult::from_parts(
                        v.pointer("/manifest/schema/columns"),
                        v.pointer("/result/data_array"),
                    ));
                }
                "PENDING" | "RUNNING" => {}
                other => {
                    return Err(ExecError::Statement {
                        warehouse: WAREHOUSE,
                        number: Some(1),
                        keyword: None,
                        code: status.error_code.clone().unwrap_or_else(|| other.to_owned()),
                        message: status
                            .message
                            .as_deref()
                            .map_or_else(|| format!("the statement ended {other}"), |m| scrub(m, &[])),
                    });
                }
            }
            if started.elapsed() > limit {
                self.cancel(&base, &status.id).await;
                return Err(ExecError::Timeout {
                    what: "a check".into(),
                    secs: self.cfg.timeout_secs,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(self.timing.poll_max);
            let url = http::join(&base, &["api", "2.0", "sql", "statements", &status.id]);
            let token = self.bearer(&base).await?;
            reply = http::send(self.timing, WAREHOUSE, "running a check", Repeat::Safe, |_| {
                self.request(reqwest::Method::GET, url.clone(), &token)
            })
            .await?;
        }
    }
}
