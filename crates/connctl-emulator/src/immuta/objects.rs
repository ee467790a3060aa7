//! Data objects: `GET|DELETE /data/object/{objectPath}`, `POST /data/object/search[/{path}]`,
//! `PUT /data/settings/{objectPath}` and `POST /data/crawl/{objectPath}`. Connections are the
//! top-level objects; their databases, schemas and tables can be read and searched, while
//! settings, crawl and delete act on connections only (deeper paths are 404 there).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, parse_json};
use crate::immuta::{child_json, hit_json, object_json};
use crate::server::Shared;
use crate::store::now_ms;
use crate::validate::{F, Ty, check};

fn not_found(path: &str) -> ApiError {
    ApiError::not_found(format!("Data object '{path}' not found."))
}

/// The connection key of an object path; child paths are not emulated.
fn key_of(path: &str) -> ApiResult<String> {
    let p = path.trim_matches('/');
    if p.is_empty() || p.contains('/') {
        return Err(not_found(p));
    }
    Ok(p.to_string())
}

/// The segments of an object path: the connection key, then the child path.
fn segments(path: &str) -> ApiResult<(String, Vec<String>)> {
    let p = path.trim_matches('/');
    let mut parts = p.split('/').map(str::to_string);
    match parts.next() {
        Some(key) if !key.is_empty() => Ok((key, parts.collect())),
        _ => Err(not_found(p)),
    }
}

pub async fn get_one(State(st): State<Shared>, Path(path): Path<String>) -> ApiResult<Json<Value>> {
    let (key, rest) = segments(&path)?;
    st.read(|s| {
        let c = s.connections.get(&key).ok_or_else(|| not_found(&path))?;
        if rest.is_empty() {
            return Ok(Json(object_json(c)));
        }
        c.children
            .iter()
            .find(|ch| ch.path == rest)
            .map(|ch| Json(child_json(c, ch)))
            .ok_or_else(|| not_found(&path))
    })
}

fn page(q: &HashMap<String, String>) -> ApiResult<(usize, usize)> {
    let num = |k: &str, d: usize| -> ApiResult<usize> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("{k}: expected a non-negative integer, got '{v}'"))
            }),
        }
    };
    let offset = num("offset", 0)?;
    let size = num("size", 100)?;
    if size > 1000 {
        return Err(ApiError::bad_request(format!(
            "size: must be at most 1000, got {size}"
        )));
    }
    Ok((offset, size))
}

fn optional_object(body: &[u8]) -> ApiResult<Value> {
    match parse_json(body)? {
        None => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ApiError::bad_request("body: expected a JSON object")),
    }
}

/// `POST /data/object/search?offset=N&size=M` → `{hits, count}` (or another
/// [`super::shapes::SearchShape`]), connections sorted by key.
pub async fn search(
    State(st): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (offset, size) = page(&q)?;
    optional_object(&body)?;
    st.read(|s| {
        let hits: Vec<Value> = s
            .connections
            .values()
            .skip(offset)
            .take(size)
            .map(hit_json)
            .collect();
        let total = s.connections.len();
        Ok(Json(super::shapes::search(st.cfg.search_shape, hits, total)))
    })
}

/// `POST /data/object/search/{path}?offset=N&size=M` → `{hits, count}`: every object below
/// `path` (all descendants, in path order).
pub async fn search_children(
    State(st): State<Shared>,
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (offset, size) = page(&q)?;
    optional_object(&body)?;
    let (key, rest) = segments(&path)?;
    st.read(|s| {
        let c = s.connections.get(&key).ok_or_else(|| not_found(&path))?;
        if !rest.is_empty() && !c.children.iter().any(|ch| ch.path == rest) {
            return Err(not_found(&path));
        }
        let below: Vec<Value> = c
            .children
            .iter()
            .filter(|ch| ch.path.len() > rest.len() && ch.path.starts_with(&rest))
            .map(|ch| child_json(c, ch))
            .collect();
        let count = below.len();
        let hits: Vec<Value> = below.into_iter().skip(offset).take(size).collect();
        Ok(Json(json!({"hits": hits, "count": count})))
    })
}

/// `PUT /data/settings/{path}` `{"settings": {"isActive"?, "activateNewChildren"?, …}}` → `{bulkId}`.
pub async fn settings(
    State(st): State<Shared>,
    Path(path): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = key_of(&path)?;
    let v = optional_object(&body)?;
    let ty = Ty::Obj(vec![F::new(
        "settings",
        Ty::Obj(vec![
            F::new("isActive", Ty::Bool, false),
            F::new("activateNewChildren", Ty::Bool, false),
            F::new("infrastructureAdmins", Ty::List, false),
            F::new("dataOwners", Ty::List, false),
        ]),
        true,
    )]);
    let mut errs = Vec::new();
    check(&v, "", &ty, &mut errs);
    if errs.is_empty() && v["settings"].as_object().is_some_and(|m| m.is_empty()) {
        errs.push("settings: must set at least one setting".into());
    }
    if !errs.is_empty() {
        return Err(ApiError::bad_request(errs.join("; ")));
    }
    let new = &v["settings"];
    st.mutate(|s| {
        let now = now_ms();
        let c = s.connections.get_mut(&key).ok_or_else(|| not_found(&key))?;
        // Setting a parent's status sets every child's, even when the value is unchanged.
        if let Some(b) = new.get("isActive").and_then(Value::as_bool) {
            c.set_active(b);
        }
        if let Some(b) = new.get("activateNewChildren").and_then(Value::as_bool) {
            c.settings.activate_new_children = b;
        }
        for k in ["infrastructureAdmins", "dataOwners"] {
            if let Some(x) = new.get(k) {
                c.settings.extra.insert(k.into(), x.clone());
            }
        }
        c.updated_ms = now;
        s.settings_requests
            .push(json!({"connectionKey": key, "body": v.clone()}));
        Ok(Json(json!({"bulkId": s.new_bulk(now, &key, "settings")})))
    })
}

/// `POST /data/crawl/{path}` `{"forceRecursiveCrawl"?: bool}` → `{bulkId}`.
pub async fn crawl(
    State(st): State<Shared>,
    Path(path): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let key = key_of(&path)?;
    let v = optional_object(&body)?;
    let mut errs = Vec::new();
    check(
        &v,
        "",
        &Ty::Obj(vec![F::new("forceRecursiveCrawl", Ty::Bool, false)]),
        &mut errs,
    );
    if !errs.is_empty() {
        return Err(ApiError::bad_request(errs.join("; ")));
    }
    st.mutate(|s| {
        if !s.connections.contains_key(&key) {
            return Err(not_found(&key));
        }
        Ok(Json(json!({"bulkId": s.new_bulk(now_ms(), &key, "crawl")})))
    })
}

/// `DELETE /data/object/{key}` → `{objectPath: [key], childCount}`; removes the integration too.
pub async fn delete_one(State(st): State<Shared>, Path(path): Path<String>) -> ApiResult<Json<Value>> {
    let key = key_of(&path)?;
    st.mutate(|s| {
        let c = s.connections.remove(&key).ok_or_else(|| not_found(&key))?;
        s.integrations.remove(&c.integration_id);
        *s.deletions.entry(key.clone()).or_default() += 1;
        Ok(Json(json!({"objectPath": [key], "childCount": c.children.len()})))
    })
}
