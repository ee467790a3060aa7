//! The Databricks SQL Statement Execution API emulation (`POST /api/2.0/sql/statements`, one
//! statement per call; `GET …/{id}`; `POST …/{id}/cancel`; states PENDING → RUNNING →
//! SUCCEEDED/FAILED) and the OAuth M2M token endpoint `POST /oidc/v1/token`.

// Handlers here return ready-made warehouse-shaped error responses.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::auth::{bearer, check_plain_token};
use crate::server::{Shared, lock};
use crate::sql;
use crate::store::{Outcome, PendingExec, WhStatement, now_ms};
use crate::validate::Tech;

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error_code": code, "message": message}))).into_response()
}

fn authenticate(st: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = bearer(headers) else {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Authorization header (Bearer token) is missing.",
        ));
    };
    check_plain_token(st, &token).map_err(|m| err(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &m))
}

fn time_state(rec: &WhStatement, now: u64, step: u64) -> u8 {
    let elapsed = now.saturating_sub(rec.created_ms);
    if now >= rec.done_ms {
        2
    } else if elapsed >= step {
        1
    } else {
        0
    }
}

fn render(rec: &WhStatement) -> Value {
    let state = match rec.observed {
        0 => "PENDING",
        1 => "RUNNING",
        _ if rec.canceled => "CANCELED",
        _ => match rec.outcome {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::Failed { .. } => "FAILED",
        },
    };
    let mut body = json!({"statement_id": rec.id, "status": {"state": state}});
    match (state, &rec.outcome) {
        ("SUCCEEDED", _) => {
            body["manifest"] = json!({
                "format": "JSON_ARRAY",
                "schema": {"column_count": 0, "columns": []},
                "total_chunk_count": 0,
                "total_row_count": 0,
                "truncated": false,
            });
            body["result"] = json!({"chunk_index": 0, "row_offset": 0, "row_count": 0, "data_array": []});
        }
        (
            "FAILED",
            Outcome::Failed {
                code,
                sql_state,
                message,
                ..
            },
        ) => {
            body["status"]["error"] = json!({"error_code": code, "message": message});
            body["status"]["sql_state"] = json!(sql_state);
        }
        _ => {}
    }
    body
}

/// Advance the shown state by at most one step per look, never past what time allows.
fn look(st: &Shared, id: &str) -> Response {
    let now = now_ms();
    let step = st.step_ms();
    st.read(|s| {
        let Some(rec) = s.statements.get_mut(id).filter(|r| r.tech == Tech::Databricks) else {
            return err(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("Statement {id} not found."),
            );
        };
        if rec.canceled {
            rec.observed = 2;
        } else {
            rec.observed = time_state(rec, now, step)
                .min(rec.observed.saturating_add(1))
                .max(rec.observed);
        }
        (StatusCode::OK, Json(render(rec))).into_response()
    })
}

fn bad(message: &str) -> Response {
    err(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
}

fn parse_wait(v: Option<&Value>) -> Result<u64, Response> {
    let msg = "wait_timeout must be 0 seconds (disables wait) or between 5 seconds and 50 seconds.";
    match v {
        None => Ok(10),
        Some(Value::String(s)) => {
            let n = s
                .strip_suffix('s')
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| bad(msg))?;
            if n == 0 || (5..=50).contains(&n) {
                Ok(n)
            } else {
                Err(bad(msg))
            }
        }
        Some(_) => Err(bad(msg)),
    }
}

const FIELDS: &[&str] = &[
    "statement",
    "warehouse_id",
    "catalog",
    "schema",
    "parameters",
    "wait_timeout",
    "on_wait_timeout",
    "disposition",
    "format",
    "row_limit",
    "byte_limit",
];

fn syntax_error(word: &str, extra: bool) -> Outcome {
    let message = if extra {
        format!(
            "[PARSE_SYNTAX_ERROR] Syntax error at or near '{word}': extra input '{word}'. SQLSTATE: 42601"
        )
    } else {
        format!("[PARSE_SYNTAX_ERROR] Syntax error at or near '{word}'. SQLSTATE: 42601")
    };
    Outcome::Failed {
        index: 0,
        code: "BAD_REQUEST".into(),
        sql_state: "42601".into(),
        message,
    }
}

/// Decide the outcome of one call's text and the statements it runs.
fn plan(text: &str) -> (Outcome, Vec<String>) {
    let raw = sql::split(text);
    let normalized: Vec<String> = raw.iter().map(|s| sql::normalize(s)).collect();
    let whole = sql::normalize(text);
    let upper = whole.to_ascii_uppercase();
    if normalized.len() > 1
        && sql::first_word(&whole) == "BEGIN"
        && upper.ends_with("END")
        && whole.len() >= 8
    {
        // a SQL scripting compound statement: one statement holding many
        let inner = &whole[5..whole.len() - 3];
        let inner_stmts: Vec<String> = sql::split(inner).iter().map(|s| sql::normalize(s)).collect();
        for s in &inner_stmts {
            if let Some(word) = sql::rejection(s) {
                return (syntax_error(&word, false), vec![]);
            }
        }
        return (Outcome::Succeeded, inner_stmts);
    }
    match normalized.len() {
        0 => (
            Outcome::Failed {
                index: 0,
                code: "BAD_REQUEST".into(),
                sql_state: "42617".into(),
                message: "[PARSE_EMPTY_STATEMENT] Syntax error, unexpected empty statement. SQLSTATE: 42617"
                    .into(),
            },
            vec![],
        ),
        1 => match sql::rejection(&normalized[0]) {
            Some(word) => (syntax_error(&word, false), vec![]),
            None => (Outcome::Succeeded, normalized),
        },
        _ => {
            let word = sql::first_word(&normalized[1]);
            (syntax_error(&word, true), vec![])
        }
    }
}

/// `POST /api/2.0/sql/statements`
pub async fn submit(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authenticate(&st, &headers) {
        return r;
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad("The request body must be a JSON object."),
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                &format!("Invalid JSON: {e}"),
            );
        }
    };
    if let Some(k) = v
        .as_object()
        .and_then(|m| m.keys().find(|k| !FIELDS.contains(&k.as_str())))
    {
        return bad(&format!("Unknown field '{k}'."));
    }
    let text = match v.get("statement") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return bad("statement: expected string"),
        None => return bad("statement: required"),
    };
    match v.get("warehouse_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => return bad("warehouse_id: expected a non-empty string"),
        None => return bad("warehouse_id: required"),
    }
    if let Some(answer) = preflight_answer(&st, &text) {
        return answer;
    }
    let wait = match parse_wait(v.get("wait_timeout")) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let cancel_on_timeout = match v.get("on_wait_timeout") {
        None => false,
        Some(Value::String(s)) if s == "CONTINUE" => false,
        Some(Value::String(s)) if s == "CANCEL" => true,
        Some(_) => return bad("on_wait_timeout must be CONTINUE or CANCEL."),
    };
    let (outcome, run) = plan(&text);
    let now = now_ms();
    let done_ms = now + 2 * st.step_ms();
    let id = format!("01ef{}", uuid::Uuid::new_v4().simple());
    st.read(|s| {
        s.statements.insert(
            id.clone(),
            WhStatement {
                id: id.clone(),
                tech: Tech::Databricks,
                created_ms: now,
                done_ms,
                is_async: wait == 0,
                observed: 0,
                outcome,
                canceled: false,
                children: vec![],
            },
        );
        if !run.is_empty() {
            s.pending.push(PendingExec {
                done_ms,
                tech: Tech::Databricks,
                handle: id.clone(),
                statements: run,
            });
        }
    });
    if wait == 0 {
        return st.read(|s| match s.statements.get(&id) {
            Some(rec) => (StatusCode::OK, Json(render(rec))).into_response(),
            None => err(StatusCode::NOT_FOUND, "NOT_FOUND", "statement vanished (reset?)"),
        });
    }
    let deadline = now + wait * 1000;
    let until = done_ms.min(deadline);
    let left = until.saturating_sub(now_ms());
    if left > 0 {
        tokio::time::sleep(Duration::from_millis(left)).await;
    }
    let now = now_ms();
    st.read(|s| {
        let Some(rec) = s.statements.get_mut(&id) else {
            return err(StatusCode::NOT_FOUND, "NOT_FOUND", "statement vanished (reset?)");
        };
        if now >= rec.done_ms {
            rec.observed = 2;
        } else if cancel_on_timeout {
            rec.canceled = true;
            rec.observed = 2;
            s.cancel_pending(&id);
            let rec = s.statements.get(&id);
            return match rec {
                Some(rec) => (StatusCode::OK, Json(render(rec))).into_response(),
                None => err(StatusCode::NOT_FOUND, "NOT_FOUND", "statement vanished"),
            };
        } else {
            rec.observed = 1;
        }
        (StatusCode::OK, Json(render(rec))).into_response()
    })
}

/// `GET /api/2.0/sql/statements/{id}`
pub async fn status(State(st): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&st, &headers) {
        return r;
    }
    look(&st, &id)
}

/// `POST /api/2.0/sql/statements/{id}/cancel`
pub async fn cancel(State(st): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&st, &headers) {
        return r;
    }
    let now = now_ms();
    st.read(|s| {
        let Some(rec) = s.statements.get_mut(&id).filter(|r| r.tech == Tech::Databricks) else {
            return err(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("Statement {id} not found."),
            );
        };
        if now < rec.done_ms {
            rec.canceled = true;
            s.cancel_pending(&id);
        }
        (StatusCode::OK, Json(json!({}))).into_response()
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn oauth_err(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /oidc/v1/token` with `grant_type=client_credentials` (client credentials via HTTP Basic
/// or `client_id`/`client_secret` form fields).
pub async fn token(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = form(&body);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match get("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_err(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type '{other}'"),
            );
        }
        None => {
            return oauth_err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
    }
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("Basic ").or_else(|| a.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())));
    let creds = basic.or_else(|| Some((get("client_id")?, get("client_secret")?)));
    match creds {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {}
        _ => {
            return oauth_err(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client credentials are missing",
            );
        }
    }
    let token = format!("emulated-oauth-{}", uuid::Uuid::new_v4().simple());
    lock(&st.warehouse_tokens).insert(token.clone());
    (
        StatusCode::OK,
        Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": get("scope").unwrap_or_else(|| "all-apis".into())})),
    )
        .into_response()
}

/// A preflight statement (one read-only `SHOW`/`SELECT`) answered at once with its result set.
fn preflight_answer(st: &Shared, text: &str) -> Option<Response> {
    let normalized = sql::normalize(text);
    let answer = st.read(|s| crate::preflight::databricks(&st.cfg, s, &normalized))?;
    let id = format!("01ef{}", uuid::Uuid::new_v4().simple());
    let body = match answer {
        Ok((columns, rows)) => {
            let columns: Vec<Value> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"name": c, "position": i, "type_name": "STRING", "type_text": "STRING"}))
                .collect();
            json!({
                "statement_id": id,
                "status": {"state": "SUCCEEDED"},
                "manifest": {
                    "format": "JSON_ARRAY",
                    "schema": {"column_count": columns.len(), "columns": columns},
                    "total_chunk_count": 1,
                    "total_row_count": rows.len(),
                    "truncated": false,
                },
                "result": {"chunk_index": 0, "row_offset": 0, "row_count": rows.len(), "data_array": rows},
            })
        }
        Err((code, sql_state, message)) => json!({
            "statement_id": id,
            "status": {"state": "FAILED", "error": {"error_code": code, "message": message}, "sql_state": sql_state},
        }),
    };
    Some((StatusCode::OK, Json(body)).into_response())
}
