//! The Snowflake executor: the SQL API v2.
//!
//! The whole script goes in one request with `MULTI_STATEMENT_COUNT = 0`, so Snowflake splits
//! it server-side: `POST /api/v2/statements?requestId=<uuid>`, which Snowflake holds open until
//! the script ends (about 45 s at most, then 202), then — only if still running —
//! `GET /api/v2/statements/{handle}` with growing delays until 200 (done) or 422 (a statement
//! failed). Retries of the submission reuse the `requestId` and add `retry=true`, so Snowflake
//! runs the script at most once however often it is sent. A 200 counts as "executed" only when
//! its body is a statement result that says so (a `statementHandle` and the success code
//! `090001` or SQL state `00000`); an HTML page, a truncated or non-JSON body or any other shape
//! is an error quoting (a safe excerpt of) the body. Authentication: key-pair JWT
//! ([`jwt`]), OAuth token or programmatic access token, each with its
//! `X-Snowflake-Authorization-Token-Type`.

pub(crate) mod jwt;
pub(crate) mod query;

use std::time::{Duration, Instant};

use connctl_spec::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::config::{SnowflakeAuth, SnowflakeExecConfig, account_from_host};
use crate::error::{excerpt, scrub, statement_label};
use crate::http::{self, Repeat, Reply, Timing};
use crate::split::{self, SqlDialect};
use crate::{ExecError, Outcome};

const WAREHOUSE: &str = "Snowflake";
/// Renew a key-pair token this long after issuing it (it is valid for 59 minutes).
const JWT_RENEW_AFTER: Duration = Duration::from_secs(54 * 60);
/// The `code` of a statement result that succeeded ("Statement executed successfully.").
const SUCCESS_CODE: &str = "090001";
/// The SQL state of success.
const SUCCESS_SQL_STATE: &str = "00000";
/// Extra time allowed beyond the configured statement timeout before giving up polling.
const POLL_GRACE: Duration = Duration::from_secs(60);

fn user_agent() -> String {
    format!("connctl/{}", env!("CARGO_PKG_VERSION"))
}

/// Resolved credentials, turned into a bearer token on demand.
enum Auth {
    KeyPair {
        signer: jwt::KeyPairSigner,
        account: String,
        user: String,
        current: Option<(Secret, Instant)>,
    },
    Token {
        token: Secret,
        kind: &'static str,
    },
}

impl Auth {
    fn resolve(cfg: &SnowflakeExecConfig, host: &str) -> Result<Auth, ExecError> {
        match &cfg.auth {
            SnowflakeAuth::KeyPair { private_key } => {
                let pem = private_key.resolve().map_err(|source| ExecError::Credential {
                    what: "Snowflake private key",
                    source,
                })?;
                let signer = jwt::KeyPairSigner::from_pem(pem.expose())?;
                let account = match &cfg.account {
                    Some(a) if !a.trim().is_empty() => a.trim().to_uppercase(),
                    _ => account_from_host(host),
                };
                if account.is_empty() {
                    return Err(ExecError::config(
                        "cannot tell the Snowflake account from the connection host; set `account`",
                    ));
                }
                Ok(Auth::KeyPair {
                    signer,
                    account,
                    user: cfg.user.clone(),
                    current: None,
                })
            }
            SnowflakeAuth::OAuth { token } => Ok(Auth::Token {
                token: token.resolve().map_err(|source| ExecError::Credential {
                    what: "Snowflake OAuth token",
                    source,
                })?,
                kind: "OAUTH",
            }),
            SnowflakeAuth::ProgrammaticAccessToken { token } => Ok(Auth::Token {
                token: token.resolve().map_err(|source| ExecError::Credential {
                    what: "Snowflake programmatic access token",
                    source,
                })?,
                kind: "PROGRAMMATIC_ACCESS_TOKEN",
            }),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Auth::KeyPair { .. } => "KEYPAIR_JWT",
            Auth::Token { kind, .. } => kind,
        }
    }

    /// The bearer token for the next request (a key-pair token is renewed before it expires).
    fn bearer(&mut self) -> Result<Secret, ExecError> {
        match self {
            Auth::Token { token, .. } => Ok(token.clone()),
            Auth::KeyPair {
                signer,
                account,
                user,
                current,
            } => {
                if let Some((token, issued)) = current
                    && issued.elapsed() < JWT_RENEW_AFTER
                {
                    return Ok(token.clone());
                }
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let token = Secret::new(signer.token(account, user, now)?);
                *current = Some((token.clone(), Instant::now()));
                Ok(token)
            }
        }
    }

    fn hint(&self) -> &'static str {
        match self {
            Auth::KeyPair { .. } => {
                "check `user` and `account` (or the connection host) and that the key's public half is set \
                 on the user (`ALTER USER … SET RSA_PUBLIC_KEY`)"
            }
            Auth::Token {
                kind: "PROGRAMMATIC_ACCESS_TOKEN",
                ..
            } => {
                "check the token and that the user is subject to a network policy, which programmatic access \
                 tokens require"
            }
            Auth::Token { .. } => "check that the OAuth token is current and belongs to `user`",
        }
    }
}

/// What the script looked like locally, to name a failed statement.
struct Script<'a> {
    sql: &'a str,
    statements: Option<Vec<split::Statement<'a>>>,
}

impl Script<'_> {
    fn keyword(&self, number: usize) -> Option<String> {
        self.statements
            .as_ref()?
            .get(number.checked_sub(1)?)
            .map(|s| s.keyword.clone())
    }

    fn count(&self) -> Option<usize> {
        self.statements.as_ref().map(Vec::len)
    }

    /// The script's string literals, to scrub from anything quoted back.
    fn literals(&self) -> Vec<String> {
        split::string_literals(self.sql, SqlDialect::Snowflake)
    }
}

/// Runs `sql` on the Snowflake account at `host`.
pub(crate) async fn execute(
    client: &reqwest::Client,
    timing: &Timing,
    cfg: &SnowflakeExecConfig,
    host: &str,
    sql: &str,
) -> Result<Outcome, ExecError> {
    let base = http::base_for(cfg.url.as_deref(), host)?;
    let mut auth = Auth::resolve(cfg, host)?;
    let script = Script {
        sql,
        statements: split::split_statements(sql, SqlDialect::Snowflake).ok(),
    };
    if script.count() == Some(0) {
        return Ok(Outcome::Executed { statements: 0 });
    }

    let request_id = uuid::Uuid::new_v4().to_string();
    let mut body = json!({
        "statement": sql,
        "timeout": cfg.timeout_secs,
        "parameters": { "MULTI_STATEMENT_COUNT": "0", "QUERY_TAG": "connctl" },
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
    tracing::debug!(request_id, "submitting the script to the Snowflake SQL API");
    let reply = http::send(
        timing,
        WAREHOUSE,
        "submitting the script",
        Repeat::Safe,
        |attempt| {
            let mut url = submit_url.clone();
            {
                let mut query = url.query_pairs_mut();
                // Synchronous: Snowflake holds the answer until the script ends (or ~45 s, then
                // 202 and polling), so a short script costs one request and no polling sleep.
                query.append_pair("requestId", &request_id);
                if attempt > 0 {
                    query.append_pair("retry", "true");
                }
            }
            request(client, reqwest::Method::POST, url, &token, kind).json(&body)
        },
    )
    .await?;

    let started = Instant::now();
    let limit = Duration::from_secs(cfg.timeout_secs) + POLL_GRACE;
    let mut delay = timing.poll_min;
    let mut reply = reply;
    loop {
        match reply.status {
            StatusCode::OK => return finished(&reply, &script),
            StatusCode::ACCEPTED => {}
            s if s == StatusCode::UNPROCESSABLE_ENTITY => return Err(statement_failed(&reply, &script)),
            StatusCode::REQUEST_TIMEOUT => {
                return Err(ExecError::Timeout {
                    what: "the script".into(),
                    secs: cfg.timeout_secs,
                });
            }
            _ => return Err(request_failed(&reply, &auth, "running the script")),
        }
        let handle = statement_handle(&reply, &script)?;
        if started.elapsed() > limit {
            cancel(client, timing, &base, &handle, &mut auth).await;
            return Err(ExecError::Timeout {
                what: "the script".into(),
                secs: cfg.timeout_secs,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(timing.poll_max);
        let url = http::join(&base, &["api", "v2", "statements", &handle]);
        let token = auth.bearer()?;
        reply = http::send(
            timing,
            WAREHOUSE,
            "checking the script's progress",
            Repeat::Safe,
            |_| request(client, reqwest::Method::GET, url.clone(), &token, kind),
        )
        .await?;
    }
}

fn request(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    token: &Secret,
    kind: &'static str,
) -> reqwest::RequestBuilder {
    client
        .request(method, url)
        .bearer_auth(token.expose())
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::USER_AGENT, user_agent())
        .header("X-Snowflake-Authorization-Token-Type", kind)
}

/// The `statementHandle` of a 202, checked to be safe in a URL path.
fn statement_handle(reply: &Reply, script: &Script<'_>) -> Result<String, ExecError> {
    let v = reply.json();
    match v.get("statementHandle").and_then(Value::as_str) {
        Some(h)
            if !h.is_empty()
                && h.len() <= 128
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok(h.to_owned())
        }
        _ => Err(ExecError::Api {
            warehouse: WAREHOUSE,
            what: "running the script".into(),
            status: Some(reply.status.as_u16()),
            code: None,
            message: format!(
                "the answer has no usable statementHandle: {}",
                excerpt(&reply.body, &script.literals())
            ),
            hint: "check that `url` points at the Snowflake SQL API",
        }),
    }
}

/// The outcome of a 200, which must be a statement result saying the script succeeded.
fn finished(reply: &Reply, script: &Script<'_>) -> Result<Outcome, ExecError> {
    let v = reply.json();
    let text = |key: &str| v.get(key).and_then(Value::as_str);
    let succeeded = text("code") == Some(SUCCESS_CODE) || text("sqlState") == Some(SUCCESS_SQL_STATE);
    if !succeeded || text("statementHandle").is_none_or(str::is_empty) {
        return Err(ExecError::Api {
            warehouse: WAREHOUSE,
            what: "running the script".into(),
            status: Some(reply.status.as_u16()),
            code: text("code").map(str::to_owned),
            message: format!(
                "the answer does not show that the script ran: {}",
                excerpt(&reply.body, &script.literals())
            ),
            hint: "check that `url` points at the Snowflake SQL API (not a proxy or a login page), and the \
                   account's query history for what ran, then run again",
        });
    }
    let statements = v
        .get("statementHandles")
        .and_then(Value::as_array)
        .map(Vec::len)
        .filter(|n| *n > 0)
        .or(script.count())
        .unwrap_or(1);
    tracing::debug!(statements, "the Snowflake script finished");
    Ok(Outcome::Executed { statements })
}

fn statement_failed(reply: &Reply, script: &Script<'_>) -> ExecError {
    let v = reply.json();
    let code = v
        .get("code")
        .and_then(|c| {
            c.as_str()
                .map(str::to_owned)
                .or_else(|| c.as_i64().map(|n| n.to_string()))
        })
        .unwrap_or_else(|| "422".to_owned());
    let raw = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("statement failed");
    // In a multi-statement request the handles list the statements run so far, the last one
    // failed; otherwise a `Statement N of M: …` prefix of the message names it.
    let number = v
        .get("statementHandles")
        .and_then(Value::as_array)
        .map(Vec::len)
        .filter(|n| *n > 0)
        .or_else(|| number_in_message(raw))
        .or_else(|| (script.count() == Some(1)).then_some(1));
    let keyword = number.and_then(|n| script.keyword(n));
    let message = scrub(raw, &script.literals());
    tracing::debug!(code, statement = %statement_label(number, keyword.as_deref()), "a Snowflake statement failed");
    ExecError::Statement {
        warehouse: WAREHOUSE,
        number,
        keyword,
        code,
        message,
    }
}

/// `4` from a message starting `Statement 4 of 11: …`.
fn number_in_message(message: &str) -> Option<usize> {
    let rest = message.trim_start().strip_prefix("Statement ")?;
    let (n, rest) = rest.split_once(' ')?;
    rest.starts_with("of ").then_some(())?;
    n.parse().ok().filter(|n| *n > 0)
}

fn request_failed(reply: &Reply, auth: &Auth, what: &str) -> ExecError {
    let (code, message) = crate::error::error_fields(reply);
    let status = reply.status.as_u16();
    match status {
        401 | 403 => ExecError::Auth {
            warehouse: WAREHOUSE,
            status,
            code,
            message,
            hint: auth.hint(),
        },
        _ => ExecError::Api {
            warehouse: WAREHOUSE,
            what: what.to_owned(),
            status: Some(status),
            code,
            message,
            hint: match status {
                400 => "check `warehouse` and `role` in the executor's settings",
                404 => "check `url`: it should be the account's https://<account>.snowflakecomputing.com",
                429 | 500..=599 => "Snowflake is overloaded or failing; run again later",
                _ => "check the executor's settings and run again",
            },
        },
    }
}

async fn cancel(
    client: &reqwest::Client,
    timing: &Timing,
    base: &reqwest::Url,
    handle: &str,
    auth: &mut Auth,
) {
    let Ok(token) = auth.bearer() else { return };
    let kind = auth.kind();
    let url = http::join(base, &["api", "v2", "statements", handle, "cancel"]);
    let _ = http::send(timing, WAREHOUSE, "cancelling the script", Repeat::Safe, |_| {
        request(client, reqwest::Method::POST, url.clone(), &token, kind)
    })
    .await;
}

#[cfg(test)]
mod tests;
