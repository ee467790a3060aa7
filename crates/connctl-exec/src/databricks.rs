//! The Databricks executor: the SQL Statement Execution API, one statement at a time.
//!
//! The API takes a single statement per call, so the script is split locally ([`crate::split`])
//! and each statement is submitted with `POST /api/2.0/sql/statements` (`wait_timeout: "30s"`,
//! `on_wait_timeout: "CONTINUE"`) and polled with `GET /api/2.0/sql/statements/{id}` until it is
//! `SUCCEEDED`, `FAILED`, `CANCELED` or `CLOSED`. The first statement that does not succeed stops
//! the run, reported by number and keyword. Only `status.state == SUCCEEDED` counts as success: a
//! 200 without a statement id and a known state (an HTML page, a truncated or non-JSON body, an
//! unknown state) is an error quoting (a safe excerpt of) the body. A submission is not idempotent, so it is retried only
//! when Databricks certainly did not take it (connection refused, 429, 503).
//!
//! Authentication: a personal access token, or OAuth M2M client credentials exchanged at
//! `<url>/oidc/v1/token` (`grant_type=client_credentials`, `scope=all-apis`, HTTP basic auth);
//! the access token is cached in the [`crate::Executor`] until a minute before it expires.

use std::time::{Duration, Instant};

use base64::Engine as _;
use connctl_spec::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::{DatabricksAuth, DatabricksExecConfig, warehouse_id_from_http_path};
use crate::error::{excerpt, scrub, statement_label};
use crate::http::{self, Repeat, Reply, Timing};

/// How long the server may hold a submission open for its result (Databricks allows 5–50 s).
const SUBMIT_WAIT: &str = "30s";
use crate::split::{self, SqlDialect};
use crate::{ExecError, Outcome};

const WAREHOUSE: &str = "Databricks";
/// An OAuth token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// A cached OAuth access token.
#[derive(Default)]
pub(crate) struct TokenCache(Mutex<Option<CachedToken>>);

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

struct CachedToken {
    /// Token URL and client ID the token was issued for.
    issuer: String,
    token: Secret,
    renew_at: Instant,
}

/// What one run needs.
pub(crate) struct Context<'a> {
    pub http: &'a reqwest::Client,
    pub timing: &'a Timing,
    pub cfg: &'a DatabricksExecConfig,
    pub cache: &'a TokenCache,
}

/// The state of a statement, from a submission or status answer.
struct Status {
    id: String,
    state: String,
    error_code: Option<String>,
    message: Option<String>,
}

impl Context<'_> {
    /// The SQL warehouse statements run on: `warehouseId` if set, else the one named by the
    /// connection's `httpPath`.
    fn warehouse_id(&self, http_path: &str) -> Result<String, ExecError> {
        match &self.cfg.warehouse_id {
            Some(w) if !w.trim().is_empty() => Ok(w.trim().to_owned()),
            _ => warehouse_id_from_http_path(http_path).ok_or_else(|| {
                ExecError::config(
                    "cannot tell the SQL warehouse from the connection's httpPath; set `warehouseId`",
                )
            }),
        }
    }
}

impl Context<'_> {
    /// Runs `sql` on the workspace, statement by statement.
    pub(crate) async fn execute(
        &self,
        workspace_url: &str,
        http_path: &str,
        sql: &str,
    ) -> Result<Outcome, ExecError> {
        let base = http::base_for(self.cfg.url.as_deref(), workspace_url)?;
        let warehouse_id = self.warehouse_id(http_path)?;
        let statements = split::split_statements(sql, SqlDialect::Databricks)?;
        for (index, statement) in statements.iter().enumerate() {
            self.run_statement(&base, &warehouse_id, index + 1, statement)
                .await?;
        }
        tracing::debug!(statements = statements.len(), "the Databricks script finished");
        Ok(Outcome::Executed {
            statements: statements.len(),
        })
    }

    async fn run_statement(
        &self,
        base: &reqwest::Url,
        warehouse_id: &str,
        number: usize,
        statement: &split::Statement<'_>,
    ) -> Result<(), ExecError> {
        let label = statement_label(Some(number), Some(&statement.keyword));
        let body = json!({
            "statement": statement.text,
            "warehouse_id": warehouse_id,
            // The server holds the answer until the statement ends (most DDL does within this),
            // so a statement usually costs one request and no polling sleep.
            "wait_timeout": SUBMIT_WAIT,
            "on_wait_timeout": "CONTINUE",
        });
        let submit_url = http::join(base, &["api", "2.0", "sql", "statements"]);
        let token = self.bearer(base).await?;
        let what = format!("submitting {label}");
        tracing::debug!(statement = %label, "submitting a Databricks statement");
        let reply = http::send(
            self.timing,
            WAREHOUSE,
            &what,
            Repeat::OnlyIfRejectedOrUnavailable,
            |_| {
                self.request(reqwest::Method::POST, submit_url.clone(), &token)
                    .json(&body)
            },
        )
        .await?;
        let literals = split::string_literals(statement.text, SqlDialect::Databricks);
        let mut status = self.status(&reply, &what, &literals).await?;

        let started = Instant::now();
        let limit = Duration::from_secs(self.cfg.timeout_secs);
        let mut delay = self.timing.poll_min;
        loop {
            match status.state.as_str() {
                "SUCCEEDED" => return Ok(()),
                "PENDING" | "RUNNING" => {}
                "FAILED" | "CANCELED" | "CLOSED" => {
                    let message = status.message.as_deref().map_or_else(
                        || match status.state.as_str() {
                            "FAILED" => "the statement failed without a message".to_owned(),
                            "CANCELED" => "the statement was canceled".to_owned(),
                            _ => "the statement was closed before it finished".to_owned(),
                        },
                        |m| scrub(m, &literals),
                    );
                    return Err(ExecError::Statement {
                        warehouse: WAREHOUSE,
                        number: Some(number),
                        keyword: Some(statement.keyword.clone()),
                        code: status.error_code.clone().unwrap_or_else(|| status.state.clone()),
                        message,
                    });
                }
                other => {
                    return Err(ExecError::Api {
                        warehouse: WAREHOUSE,
                        what: format!("running {label}"),
                        status: Some(200),
                        code: None,
                        message: format!(
                            "unknown statement state {:?}; whether it ran is not known",
                            excerpt(other, &literals)
                        ),
                        hint: "check the warehouse's query history for the statement, then run again",
                    });
                }
            }
            if started.elapsed() > limit {
                self.cancel(base, &status.id).await;
                return Err(ExecError::Timeout {
                    what: label,
                    secs: self.cfg.timeout_secs,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(self.timing.poll_max);
            let url = http::join(base, &["api", "2.0", "sql", "statements", &status.id]);
            let token = self.bearer(base).await?;
            let what = format!("checking {label}");
            let reply = http::send(self.timing, WAREHOUSE, &what, Repeat::Safe, |_| {
                self.request(reqwest::Method::GET, url.clone(), &token)
            })
            .await?;
            status = self.status(&reply, &what, &literals).await?;
        }
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url, token: &Secret) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::USER_AGENT,
                format!("connctl/{}", env!("CARGO_PKG_VERSION")),
            )
    }

    /// Reads a statement status from an answer, or turns a rejected request into an error.
    async fn status(&self, reply: &Reply, what: &str, literals: &[String]) -> Result<Status, ExecError> {
        if reply.status != StatusCode::OK {
            return Err(self.request_failed(reply, what).await);
        }
        let v = reply.json();
        let id = v.get("statement_id").and_then(Value::as_str).unwrap_or_default();
        let state = v
            .pointer("/status/state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id_ok = !id.is_empty()
            && id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok || state.is_empty() {
            return Err(ExecError::Api {
                warehouse: WAREHOUSE,
                what: what.to_owned(),
                status: Some(200),
                code: None,
                message: format!(
                    "the answer has no usable statement_id and status.state: {}",
                    excerpt(&reply.body, literals)
                ),
                hint: "check that `url` points at the Databricks workspace",
            });
        }
        let field = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Ok(Status {
            id: id.to_owned(),
            state: state.to_owned(),
            error_code: field("/status/error/error_code"),
            message: field("/status/error/message"),
        })
    }

    async fn request_failed(&self, reply: &Reply, what: &str) -> ExecError {
        let (code, message) = crate::error::error_fields(reply);
        let status = reply.status.as_u16();
        match status {
            401 | 403 => {
                // A revoked or expired OAuth token must not be reused by the next run.
                *self.cache.0.lock().await = None;
                ExecError::Auth {
                    warehouse: WAREHOUSE,
                    status,
                    code,
                    message,
                    hint: "check the token or the service principal's secret, and that it may use the SQL \
                           warehouse (CAN USE) and holds the privileges the script grants",
                }
            }
            _ => ExecError::Api {
                warehouse: WAREHOUSE,
                what: what.to_owned(),
                status: Some(status),
                code,
                message,
                hint: match status {
                    400 => "check `warehouseId` (or the connection's httpPath) and the statement",
                    404 => "check `url` (the workspace URL) and `warehouseId`",
                    429 | 500..=599 => {
                        "Databricks is overloaded or failing; check the warehouse's query history for the \
                         statement, then run again"
                    }
                    _ => "check the executor's settings and run again",
                },
            },
        }
    }

    async fn cancel(&self, base: &reqwest::Url, id: &str) {
        let Ok(token) = self.bearer(base).await else {
            return;
        };
        let url = http::join(base, &["api", "2.0", "sql", "statements", id, "cancel"]);
        let _ = http::send(
            self.timing,
            WAREHOUSE,
            "cancelling a statement",
            Repeat::Safe,
            |_| self.request(reqwest::Method::POST, url.clone(), &token),
        )
        .await;
    }

    /// The bearer token: the PAT, or a (cached) OAuth M2M access token.
    async fn bearer(&self, base: &reqwest::Url) -> Result<Secret, ExecError> {
        let (client_id, client_secret, token_url) = match &self.cfg.auth {
            DatabricksAuth::Token { token } => {
                return token.resolve().map_err(|source| ExecError::Credential {
                    what: "Databricks token",
                    source,
                });
            }
            DatabricksAuth::OAuthM2M {
                client_id,
                client_secret,
                token_url,
            } => (client_id, client_secret, token_url),
        };
        let token_url = match token_url {
            Some(u) => http::check_base_url(u).map_err(ExecError::config)?,
            None => http::join(base, &["oidc", "v1", "token"]),
        };
        let issuer = format!("{token_url} {client_id}");
        let mut cache = self.cache.0.lock().await;
        if let Some(c) = cache.as_ref()
            && c.issuer == issuer
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let secret = client_secret.resolve().map_err(|source| ExecError::Credential {
            what: "Databricks OAuth client secret",
            source,
        })?;
        let (token, lifetime) = self
            .client_credentials(
                &token_url,
                client_id,
                &secret,
                connctl_spec::DATABRICKS_DEFAULT_SCOPE,
            )
            .await?;
        *cache = Some(CachedToken {
            issuer,
            token: token.clone(),
            renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        });
        Ok(token)
    }

    /// Exchanges client credentials for an access token at `token_url` (OAuth M2M:
    /// `grant_type=client_credentials`, HTTP basic auth); returns it with its lifetime.
    pub(crate) async fn client_credentials(
        &self,
        token_url: &reqwest::Url,
        client_id: &str,
        secret: &Secret,
        scope: &str,
    ) -> Result<(Secret, Duration), ExecError> {
        let basic = Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{}", secret.expose()))
        ));
        let form = format!("grant_type=client_credentials&scope={}", form_encode(scope));
        let reply = http::send(
            self.timing,
            WAREHOUSE,
            "getting an OAuth token",
            Repeat::Safe,
            |_| {
                let mut auth = reqwest::header::HeaderValue::from_str(basic.expose())
                    .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Basic"));
                auth.set_sensitive(true);
                self.http
                    .post(token_url.clone())
                    .header(reqwest::header::AUTHORIZATION, auth)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(form.clone())
            },
        )
        .await?;
        let v = reply.json();
        let access = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let (StatusCode::OK, Some(access)) = (reply.status, access) else {
            let (code, message) = crate::error::error_fields(&reply);
            return Err(ExecError::Auth {
                warehouse: WAREHOUSE,
                status: reply.status.as_u16(),
                code,
                message,
                hint: "check `clientId` and `clientSecret` of the service principal (and `tokenUrl`, if set)",
            });
        };
        let lifetime = Duration::from_secs(v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600));
        Ok((Secret::new(access), lifetime))
    }
}

/// A form value percent-encoded (everything but unreserved characters).
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

mod identity;
mod query;
pub use identity::{DatabricksPrincipal, PrincipalKind};
#[cfg(test)]
mod tests;
