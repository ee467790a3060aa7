//! The `/_emulator/` admin API for tests (no auth, no faults, not logged): reset, the request
//! log, drift (change a live connection or integration as a person in the UI would), deletion
//! behind the tool's back, a child object's status, an integration configured on its own,
//! programmed faults (and what the other host received), a state dump (with every settings
//! body), and seeding live connections.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, parse_json, parse_object};
use crate::faults::{FaultKind, InjectedFault};
use crate::immuta::{connection_json, integration_json};
use crate::server::{Shared, lock};
use crate::store::{Store, now_ms};
use crate::validate;

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn only_keys(v: &Value, allowed: &[&str]) -> ApiResult<()> {
    if let Some(k) = v
        .as_object()
        .and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(format!(
            "{k}: unknown field (known: {})",
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// `POST /_emulator/reset`: forget every object, script, job, statement, log entry and fault;
/// restart the request sequence (and so the seeded fault sequence) at 0.
pub async fn reset(State(st): State<Shared>) -> Json<Value> {
    st.mutate(|s| *s = Store::default());
    lock(&st.log).clear();
    lock(&st.injected).clear();
    lock(&st.other_host.received).clear();
    lock(&st.rate).reset();
    st.seq.store(0, Ordering::SeqCst);
    Json(json!({"reset": true}))
}

/// `GET /_emulator/requests[?since=SEQ]`
pub async fn requests(State(st): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let since = q.get("since").and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let log = lock(&st.log);
    let items: Vec<Value> = log
        .iter()
        .filter(|e| e.seq >= since)
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    Json(Value::Array(items))
}

pub async fn clear_requests(State(st): State<Shared>) -> Json<Value> {
    lock(&st.log).clear();
    Json(json!({"cleared": true}))
}

/// `PATCH /_emulator/connections/{key}` `{"connection"?: merge, "settings"?: {...}, "options"?: {...}}`
pub async fn patch_connection(
    State(st): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let patch = parse_object(&body)?;
    only_keys(&patch, &["connection", "settings", "options"])?;
    st.mutate(|s| {
        let c = s
            .connections
            .get_mut(&key)
            .ok_or_else(|| ApiError::not_found(format!("Connection '{key}' not found.")))?;
        if let Some(p) = patch.get("connection") {
            merge(&mut c.connection, p);
        }
        if let Some(p) = patch.get("settings") {
            // As in the UI: a connection's status change cascades to its children.
            if let Some(b) = p.get("isActive").and_then(Value::as_bool) {
                c.set_active(b);
            }
            if let Some(b) = p.get("activateNewChildren").and_then(Value::as_bool) {
                c.settings.activate_new_children = b;
            }
        }
        if let Some(b) = patch
            .get("options")
            .and_then(|o| o.get("forceRecursiveCrawl"))
            .and_then(Value::as_bool)
        {
            c.settings.force_recursive_crawl = b;
        }
        c.updated_ms = now_ms();
        Ok(Json(connection_json(c)))
    })
}

/// `DELETE /_emulator/connections/{key}`: remove a connection and its integration silently.
pub async fn delete_connection(State(st): State<Shared>, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    st.mutate(|s| {
        let c = s
            .connections
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(format!("Connection '{key}' not found.")))?;
        s.integrations.remove(&c.integration_id);
        Ok(Json(
            json!({"deleted": key, "integrationId": c.integration_id.to_string()}),
        ))
    })
}

/// `PATCH /_emulator/integrations/{id}` `{"config"?: merge, "status"?: "..."}`
pub async fn patch_integration(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let patch = parse_object(&body)?;
    only_keys(&patch, &["config", "status"])?;
    let n = id
        .parse::<u64>()
        .map_err(|_| ApiError::not_found(format!("No integration found with ID {id}.")))?;
    st.mutate(|s| {
        let i = s
            .integrations
            .get_mut(&n)
            .ok_or_else(|| ApiError::not_found(format!("No integration found with ID {id}.")))?;
        if let Some(p) = patch.get("config") {
            merge(&mut i.config, p);
        }
        if let Some(status) = patch.get("status").and_then(Value::as_str) {
            i.status = status.to_string();
        }
        Ok(Json(integration_json(i)))
    })
}

/// `PATCH /_emulator/objects/{key}/{…}` `{"active": bool}`: enable or disable one child object
/// (a database, schema or table) as a person in the UI would; nothing else changes.
pub async fn patch_object(State(st): State<Shared>, uri: Uri, body: Bytes) -> ApiResult<Json<Value>> {
    let patch = parse_object(&body)?;
    only_keys(&patch, &["active"])?;
    let Some(active) = patch.get("active").and_then(Value::as_bool) else {
        return Err(ApiError::bad_request("active: required boolean"));
    };
    let p = crate::immuta::objects::object_path(&uri, crate::immuta::objects::admin::PREFIX)?;
    let missing = || ApiError::not_found(format!("Data object '{}' not found.", p.shown));
    st.mutate(|s| {
        let c = s.connections.get_mut(&p.key).ok_or_else(missing)?;
        let child = c
            .find_mut(&p.rest)
            .filter(|_| !p.rest.is_empty())
            .ok_or_else(missing)?;
        child.active = active;
        child.active_override = true;
        Ok(Json(json!({"objectPath": p.shown, "active": active})))
    })
}

/// `POST /_emulator/integrations` `{"type": "Snowflake", "host": "…"}`: an integration configured
/// on its own (no connection), as a tenant has before upgrading to connections. A registration on
/// that host then gets Immuta's 409.
pub async fn add_integration(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let v = parse_object(&body)?;
    only_keys(&v, &["type", "host"])?;
    let tech = match v.get("type").and_then(Value::as_str) {
        Some("Snowflake") => validate::Tech::Snowflake,
        Some("Databricks") => validate::Tech::Databricks,
        _ => return Err(ApiError::bad_request("type: required, Snowflake or Databricks")),
    };
    let Some(host) = v.get("host").and_then(Value::as_str).filter(|h| !h.is_empty()) else {
        return Err(ApiError::bad_request("host: required string"));
    };
    st.mutate(|s| {
        let id = s.next_integration_id();
        let integration = crate::store::Integration {
            id,
            tech,
            status: "enabled".into(),
            config: json!({"host": host}),
            http_path: None,
            connection_key: None,
        };
        let out = integration_json(&integration);
        s.integrations.insert(id, integration);
        Ok(Json(out))
    })
}

/// `POST /_emulator/jobs/end-next` `{"origin": "register"|"update"|"settings"|"crawl", "state":
/// "failed", "count"?: 1}`: the next `count` bulks that origin issues have their job end in
/// `state` instead of `completed` (a job Immuta could not finish).
pub async fn end_next_jobs(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let v = parse_object(&body)?;
    only_keys(&v, &["origin", "state", "count"])?;
    let origin = match v.get("origin").and_then(Value::as_str) {
        Some(o @ ("register" | "update" | "settings" | "crawl")) => o.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "origin: one of register, update, settings, crawl",
            ));
        }
    };
    let Some(state) = v.get("state").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return Err(ApiError::bad_request("state: required string, e.g. failed"));
    };
    let count = match v.get("count") {
        None => 1,
        Some(c) => match c.as_u64() {
            Some(n @ 1..=10_000) => n,
            _ => return Err(ApiError::bad_request("count: a number from 1 to 10000")),
        },
    };
    let state = state.to_owned();
    st.mutate(|s| {
        let ends = s.job_ends.entry(origin.clone()).or_default();
        ends.extend((0..count).map(|_| state.clone()));
        Ok(Json(json!({"origin": origin, "pending": ends.len()})))
    })
}

/// `POST /_emulator/faults` `{"method", "path", "count"?: 1, "kind"?, "status"?, "applied"?: false,
/// "delay_ms"?, "to"?: "other", "echo"?: false}`. `path` may hold `*` segments. Without `kind`: `status` (503
/// unless given), or `late` when only `delay_ms` is given. See docs/emulator.md.
pub async fn add_fault(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let v = parse_object(&body)?;
    only_keys(
        &v,
        &[
            "method", "path", "count", "kind", "status", "applied", "delay_ms", "to", "echo",
        ],
    )?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(method), Some(path)) = (s("method"), s("path")) else {
        return Err(ApiError::bad_request("method and path: required strings"));
    };
    let count = v.get("count").and_then(Value::as_u64).unwrap_or(1);
    let delay_ms = v.get("delay_ms").and_then(Value::as_u64);
    let flag = |k: &str| match v.get(k) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!("{k}: expected a boolean"))),
    };
    let (applied, echo) = (flag("applied")?, flag("echo")?);
    let status = v.get("status").and_then(Value::as_u64);
    let kind = match (s("kind").as_deref(), status) {
        (Some("status") | None, Some(code)) if (100..=599).contains(&code) => {
            FaultKind::Status { status: code as u16 }
        }
        (Some("status") | None, Some(code)) => {
            return Err(ApiError::bad_request(format!(
                "status: not an HTTP status: {code}"
            )));
        }
        (None, None) if delay_ms.is_some() => FaultKind::Late,
        (Some("status") | None, None) => FaultKind::Status { status: 503 },
        (Some("redirect"), code) => {
            let code = code.unwrap_or(307);
            if ![301, 302, 303, 307, 308].contains(&code) {
                return Err(ApiError::bad_request(format!(
                    "status: a redirect is 301, 302, 303, 307 or 308, not {code}"
                )));
            }
            let same_origin = match s("to").as_deref() {
                None | Some("other") => false,
                Some("same") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "to: `other` (the other host) or `same` (this origin), not `{other}`"
                    )));
                }
            };
            FaultKind::Redirect {
                status: code as u16,
                same_origin,
            }
        }
        (Some(name), None) => match name {
            "reset" => FaultKind::Reset,
            "timeout" => FaultKind::Timeout,
            "late" => FaultKind::Late,
            "html502" => FaultKind::Html502,
            "truncated" => FaultKind::Truncated,
            "nonjson200" => FaultKind::Nonjson200,
            other => {
                return Err(ApiError::bad_request(format!(
                    "kind: unknown fault `{other}` (known: status, reset, timeout, late, html502, truncated, nonjson200, redirect)"
                )));
            }
        },
        (Some(name), Some(_)) => {
            return Err(ApiError::bad_request(format!(
                "status: only for kind status or redirect, not {name}"
            )));
        }
    };
    if v.get("to").is_some() && !matches!(kind, FaultKind::Redirect { .. }) {
        return Err(ApiError::bad_request("to: only for kind redirect"));
    }
    if echo && !matches!(kind, FaultKind::Status { .. }) {
        return Err(ApiError::bad_request("echo: only for kind status"));
    }
    let fault = InjectedFault {
        method: method.to_ascii_uppercase(),
        path,
        remaining: count,
        kind,
        applied,
        delay_ms,
        echo,
    };
    if count > 0 {
        lock(&st.injected).push(fault.clone());
    }
    Ok(Json(serde_json::to_value(fault).unwrap_or(Value::Null)))
}

/// `GET /_emulator/other-host`: its URL and every request it received (method, path, query,
/// headers, body), oldest first.
pub async fn other_host(State(st): State<Shared>) -> Json<Value> {
    let received = lock(&st.other_host.received).clone();
    Json(json!({
        "url": st.other_host.url(),
        "requests": serde_json::to_value(received).unwrap_or(Value::Null),
    }))
}

pub async fn clear_other_host(State(st): State<Shared>) -> Json<Value> {
    lock(&st.other_host.received).clear();
    Json(json!({"cleared": true}))
}

pub async fn list_faults(State(st): State<Shared>) -> Json<Value> {
    Json(serde_json::to_value(lock(&st.injected).clone()).unwrap_or(Value::Null))
}

pub async fn clear_faults(State(st): State<Shared>) -> Json<Value> {
    lock(&st.injected).clear();
    Json(json!({"cleared": true}))
}

/// `GET /_emulator/state`: keys, ids and script progress (no secrets).
pub async fn state(State(st): State<Shared>) -> Json<Value> {
    st.mutate(|s| {
        s.settle(now_ms());
        let connections: Vec<Value> = s
            .connections
            .values()
            .map(|c| {
                json!({
                    "connectionKey": c.key,
                    "technology": c.tech.as_str(),
                    "integrationId": c.integration_id.to_string(),
                    "isActive": c.settings.is_active,
                    "hostname": c.connection.get("hostname"),
                    "children": c.children.iter().map(|ch| json!({
                        "path": ch.path.join("/"),
                        "state": if ch.active { "active" } else { "inactive" },
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let integrations: Vec<Value> = s
            .integrations
            .values()
            .map(|i| json!({"id": i.id.to_string(), "type": i.tech.as_str(), "status": i.status, "connectionKey": i.connection_key}))
            .collect();
        let scripts: Vec<Value> = s
            .scripts
            .iter()
            .map(|sc| {
                json!({
                    "id": sc.id,
                    "kind": sc.kind,
                    "technology": sc.tech.as_str(),
                    "integrationId": sc.integration_id.map(|i| i.to_string()),
                    "statements": sc.statements.len(),
                    "executed": sc.executed_count(),
                })
            })
            .collect();
        Json(json!({
            "connections": connections,
            "integrations": integrations,
            "scripts": scripts,
            "jobs": s.jobs.len(),
            "bulkIds": s.bulks.keys().collect::<Vec<_>>(),
            "issuedBulkIds": s.issued.iter().map(|(b, i)| json!({"bulkId": b, "key": i.key, "origin": i.origin})).collect::<Vec<_>>(),
            "registrations": s.registrations,
            "deletions": s.deletions,
            "pendingStatements": s.pending.len(),
            "settingsRequests": s.settings_requests,
        }))
    })
}

/// `POST /_emulator/seed` `{"connections": [registration body, …]}`: create live connections
/// directly (no script needed).
pub async fn seed(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let v = parse_json(&body)?.unwrap_or_else(|| json!({}));
    only_keys(&v, &["connections"])?;
    let items = match v.get("connections") {
        Some(Value::Array(a)) => a.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "connections: required array of registration bodies",
            ));
        }
    };
    let mut regs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let reg = validate::registration(item)
            .map_err(|e| ApiError::bad_request(format!("connections[{i}]: {}", e.message)))?;
        regs.push(reg);
    }
    st.mutate(|s| {
        for r in &regs {
            if s.connections.contains_key(&r.key) {
                return Err(ApiError::conflict(format!(
                    "A connection with connectionKey '{}' already exists.",
                    r.key
                )));
            }
        }
        let now = now_ms();
        let mut out = Vec::new();
        for r in &regs {
            let (id, bulk) = crate::immuta::connections::create(s, r, now);
            out.push(json!({"connectionKey": r.key, "integrationId": id.to_string(), "bulkId": bulk}));
        }
        Ok(Json(json!({"seeded": out})))
    })
}
