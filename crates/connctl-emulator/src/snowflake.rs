//! The Snowflake SQL API v2 emulation: `POST /api/v2/statements` (sync, `async=true`,
//! multi-statement with `MULTI_STATEMENT_COUNT`, `requestId` + `retry=true`),
//! `GET /api/v2/statements/{handle}` and `POST …/{handle}/cancel`, with key-pair JWT, OAuth and
//! programmatic-access-token bearer auth.

// Handlers here return ready-made warehouse-shaped error responses.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::{bearer, check_keypair_jwt, check_plain_token};
use crate::server::Shared;
use crate::sql;
use crate::store::{Outcome, PendingExec, WhStatement, now_ms};
use crate::validate::Tech;

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn authenticate(st: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = bearer(headers) else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "390101",
            "Authorization header (Bearer token) is missing.",
        ));
    };
    let ty = headers
        .get("x-snowflake-authorization-token-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_uppercase);
    let now_s = now_ms() / 1000;
    let looks_jwt = token.split('.').count() == 3;
    let res = match ty.as_deref() {
        Some("KEYPAIR_JWT") => check_keypair_jwt(&token, now_s),
        Some("OAUTH") | Some("PROGRAMMATIC_ACCESS_TOKEN") => check_plain_token(st, &token),
        Some(other) => Err(format!(
            "unsupported X-Snowflake-Authorization-Token-Type '{other}'"
        )),
        None if looks_jwt => check_keypair_jwt(&token, now_s),
        None => check_plain_token(st, &token),
    };
    res.map_err(|m| err(StatusCode::UNAUTHORIZED, "390303", &m))
}

fn status_url(handle: &str) -> String {
    format!("/api/v2/statements/{handle}")
}

fn running(rec: &WhStatement) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "code": "333334",
            "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
            "statementHandle": rec.id,
            "statementStatusUrl": status_url(&rec.id),
        })),
    )
        .into_response()
}

fn finished(rec: &WhStatement) -> Response {
    if rec.canceled {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": "000604", "sqlState": "57014", "message": "SQL execution canceled",
                "statementHandle": rec.id, "statementStatusUrl": status_url(&rec.id),
            })),
        )
            .into_response();
    }
    match &rec.outcome {
        Outcome::Succeeded => {
            let multi = !rec.children.is_empty();
            let text = if multi { "Multiple statements executed successfully." } else { "Statement executed successfully." };
            let mut body = json!({
                "resultSetMetaData": {
                    "numRows": 1,
                    "format": "jsonv2",
                    "partitionInfo": [{"rowCount": 1, "uncompressedSize": text.len() + 8}],
                    "rowType": [{
                        "name": "status", "database": "", "schema": "", "table": "", "type": "text",
                        "nullable": true, "byteLength": 16777216, "length": 16777216,
                        "scale": null, "precision": null, "collation": null
                    }],
                },
                "data": [[text]],
                "code": "090001",
                "statementStatusUrl": status_url(&rec.id),
                "requestId": Value::Null,
                "sqlState": "00000",
                "statementHandle": rec.id,
                "message": "Statement executed successfully.",
                "createdOn": rec.created_ms,
            });
            if multi {
                body["statementHandles"] = json!(rec.children);
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Outcome::Failed { code, sql_state, message, .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": code, "sqlState": sql_state, "message": message,
                "statementHandle": rec.id, "statementStatusUrl": status_url(&rec.id), "createdOn": rec.created_ms,
            })),
        )
            .into_response(),
    }
}

/// The current answer for `handle`; a poll of an async statement answers 202 at least once.
fn poll(st: &Shared, handle: &str) -> Response {
    let now = now_ms();
    st.read(|s| {
        let Some(rec) = s.statements.get_mut(handle).filter(|r| r.tech == Tech::Snowflake) else {
            return err(
                StatusCode::NOT_FOUND,
                "333333",
                &format!("Statement handle {handle} not found."),
            );
        };
        if rec.is_async && rec.observed == 0 && !rec.canceled {
            rec.observed = 1;
            return running(rec);
        }
        rec.observed = rec.observed.saturating_add(1);
        if now < rec.done_ms && !rec.canceled {
            running(rec)
        } else {
            finished(rec)
        }
    })
}

fn bad_request(message: String) -> Response {
    err(
        StatusCode::BAD_REQUEST,
        "390142",
        &format!("Incoming request does not contain a valid payload: {message}"),
    )
}

fn check_body(v: &Value) -> Result<(String, Option<u64>), Response> {
    let Some(obj) = v.as_object() else {
        return Err(bad_request("body: expected a JSON object".into()));
    };
    let statement = match obj.get("statement") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad_request("statement: expected string".into())),
        None => return Err(bad_request("statement: required".into())),
    };
    for k in ["database", "schema", "warehouse", "role"] {
        if let Some(x) = obj.get(k)
            && !x.is_string()
        {
            return Err(bad_request(format!("{k}: expected string")));
        }
    }
    if let Some(x) = obj.get("timeout")
        && x.as_u64().is_none()
    {
        return Err(bad_request("timeout: expected a non-negative integer".into()));
    }
    let count = match obj.get("parameters") {
        None => None,
        Some(Value::Object(p)) => match p.get("MULTI_STATEMENT_COUNT") {
            None => None,
            Some(Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| {
                bad_request(format!("parameters.MULTI_STATEMENT_COUNT: not a number: '{s}'"))
            })?),
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| {
                bad_request("parameters.MULTI_STATEMENT_COUNT: not a non-negative integer".into())
            })?),
            Some(_) => {
                return Err(bad_request(
                    "parameters.MULTI_STATEMENT_COUNT: expected string".into(),
                ));
            }
        },
        Some(_) => return Err(bad_request("parameters: expected object".into())),
    };
    Ok((statement, count))
}

fn unprocessable(code: &str, sql_state: &str, message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"code": code, "sqlState": sql_state, "message": message})),
    )
        .into_response()
}

/// `POST /api/v2/statements`
pub async fn submit(
    State(st): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authenticate(&st, &headers) {
        return r;
    }
    let flag = |k: &str| q.get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let request_id = q.get("requestId").cloned();
    if flag("retry")
        && let Some(rid) = &request_id
        && let Some(handle) = st.read(|s| s.request_ids.get(rid).cloned())
    {
        return poll(&st, &handle);
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body: invalid JSON: {e}")),
    };
    let (text, count) = match check_body(&v) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(answer) = preflight_answer(&st, &v, &text) {
        return answer;
    }
    let raw = sql::split(&text);
    let n = raw.len();
    if n == 0 {
        return unprocessable("000900", "42000", "SQL compilation error:\nEmpty SQL statement.");
    }
    let want = count.unwrap_or(1);
    if want != 0 && want as usize != n {
        return unprocessable(
            "000008",
            "0A000",
            &format!("Actual statement count {n} did not match the desired statement count {want}."),
        );
    }
    let normalized: Vec<String> = raw.iter().map(|s| sql::normalize(s)).collect();
    let mut outcome = Outcome::Succeeded;
    let mut ok_count = n;
    for (i, st_text) in normalized.iter().enumerate() {
        if let Some(word) = sql::rejection(st_text) {
            let prefix = if n > 1 {
                format!("Statement {} of {n}: ", i + 1)
            } else {
                String::new()
            };
            outcome = Outcome::Failed {
                index: i,
                code: "001003".into(),
                sql_state: "42000".into(),
                message: format!(
                    "{prefix}SQL compilation error:\nsyntax error line 1 at position 0 unexpected '{word}'."
                ),
            };
            ok_count = i;
            break;
        }
    }
    let now = now_ms();
    let done_ms = now + 2 * st.step_ms();
    let handle = uuid::Uuid::new_v4().to_string();
    let is_async = flag("async");
    st.read(|s| {
        let mut children = Vec::new();
        if n > 1 {
            for i in 0..n {
                let child = uuid::Uuid::new_v4().to_string();
                let child_outcome = match &outcome {
                    Outcome::Failed { index, .. } if *index == i => outcome.clone(),
                    Outcome::Failed { index, .. } if i > *index => Outcome::Failed {
                        index: i,
                        code: "000603".into(),
                        sql_state: "XX000".into(),
                        message: "Statement not executed: an earlier statement failed.".into(),
                    },
                    _ => Outcome::Succeeded,
                };
                s.statements.insert(
                    child.clone(),
                    WhStatement {
                        id: child.clone(),
                        tech: Tech::Snowflake,
                        created_ms: now,
                        done_ms,
                        is_async: false,
                        observed: 0,
                        outcome: child_outcome,
                        canceled: false,
                        children: vec![],
                    },
                );
                children.push(child);
            }
        }
        s.statements.insert(
            handle.clone(),
            WhStatement {
                id: handle.clone(),
                tech: Tech::Snowflake,
                created_ms: now,
                done_ms,
                is_async,
                observed: 0,
                outcome: outcome.clone(),
                canceled: false,
                children,
            },
        );
        if ok_count > 0 {
            s.pending.push(PendingExec {
                done_ms,
                tech: Tech::Snowflake,
                handle: handle.clone(),
                statements: normalized[..ok_count].to_vec(),
            });
        }
        if let Some(rid) = &request_id {
            s.request_ids.insert(rid.clone(), handle.clone());
        }
    });
    if is_async {
        return st.read(|s| match s.statements.get(&handle) {
            Some(rec) => running(rec),
            None => err(StatusCode::NOT_FOUND, "333333", "statement vanished (reset?)"),
        });
    }
    let wait = done_ms.saturating_sub(now_ms());
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    poll(&st, &handle)
}

/// `GET /api/v2/statements/{handle}`
pub async fn status(State(st): State<Shared>, Path(handle): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&st, &headers) {
        return r;
    }
    poll(&st, &handle)
}

/// `POST /api/v2/statements/{handle}/cancel`
pub async fn cancel(State(st): State<Shared>, Path(handle): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&st, &headers) {
        return r;
    }
    let now = now_ms();
    st.read(|s| {
        let Some(rec) = s
            .statements
            .get_mut(&handle)
            .filter(|r| r.tech == Tech::Snowflake)
        else {
            return err(
                StatusCode::NOT_FOUND,
                "333333",
                &format!("Statement handle {handle} not found."),
            );
        };
        if now < rec.done_ms {
            rec.canceled = true;
            s.cancel_pending(&handle);
        }
        (
            StatusCode::OK,
            Json(json!({
                "code": "000604", "sqlState": "57014", "message": "successfully canceled",
                "statementHandle": handle, "statementStatusUrl": status_url(&handle),
            })),
        )
            .into_response()
    })
}

/// A preflight statement (one read-only `SHOW`/`SELECT`) answered at once with its result set.
fn preflight_answer(st: &Shared, body: &Value, text: &str) -> Option<Response> {
    let normalized = sql::normalize(text);
    let role = body.get("role").and_then(Value::as_str);
    let answer = st.read(|s| crate::preflight::snowflake(&st.cfg, s, &normalized, role))?;
    let handle = uuid::Uuid::new_v4().to_string();
    Some(match answer {
        Ok((columns, rows)) => {
            let row_type: Vec<Value> = columns
                .iter()
                .map(|c| json!({"name": c, "database": "", "schema": "", "table": "", "type": "text", "nullable": true}))
                .collect();
            (
                StatusCode::OK,
                Json(json!({
                    "resultSetMetaData": {"numRows": rows.len(), "format": "jsonv2", "rowType": row_type},
                    "data": rows,
                    "code": "090001",
                    "sqlState": "00000",
                    "statementHandle": handle,
                    "statementStatusUrl": status_url(&handle),
                    "message": "Statement executed successfully.",
                    "createdOn": now_ms(),
                })),
            )
                .into_response()
        }
        Err((code, sql_state, message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "code": code, "sqlState": sql_state, "message": message,
                "statementHandle": handle, "statementStatusUrl": status_url(&handle),
            })),
        )
            .into_response(),
    })
}
