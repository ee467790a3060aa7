//! Data objects: `GET|DELETE /data/object/{objectPath}`, `POST /data/object/search[/{path}]`,
//! `PUT /data/settings/{objectPath}` and `POST /data/crawl/{objectPath}`. Connections are the
//! top-level objects; below them databases, schemas and tables ([`tree`]) can be read,
//! searched, set and crawled at every depth (delete acts on connections only). Each segment of
//! a path is percent-decoded on its own, so a name may hold `/`, `%` or anything else.

pub mod admin;
pub mod render;
pub mod tree;

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::Uri;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, parse_json};
use crate::immuta::hit_json;
use crate::server::Shared;
use crate::store::{Store, now_ms};
use crate::validate::{F, Ty, check};

use render::ChildrenSearch;

fn not_found(path: &str) -> ApiError {
    ApiError::not_found(format!("Data object '{path}' not found."))
}

/// An object path from a URL: the connection key, the names below it, and the path as shown
/// in messages (decoded names joined by `/`).
#[derive(Debug, Clone)]
pub struct ObjectPath {
    pub key: String,
    pub rest: Vec<String>,
    pub shown: String,
}

impl ObjectPath {
    /// The whole path, key first, as `objectPath` is answered.
    pub fn full(&self) -> Vec<String> {
        std::iter::once(self.key.clone())
            .chain(self.rest.iter().cloned())
            .collect()
    }
}

/// The object path of a request to `{prefix}{path}`, each segment percent-decoded on its own.
/// It is read from the URI as sent: a route's capture is decoded as a whole, which would turn an
/// encoded `/` into a separator.
pub fn object_path(uri: &Uri, prefix: &str) -> ApiResult<ObjectPath> {
    let text = uri.path().strip_prefix(prefix).unwrap_or_default();
    let mut names = Vec::new();
    for seg in text.trim_matches('/').split('/') {
        let name = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request(format!("path: segment `{seg}` is not UTF-8 once decoded")))?;
        names.push(name.into_owned());
    }
    let shown = names.join("/");
    if names.iter().any(String::is_empty) {
        return Err(not_found(&shown));
    }
    let key = names.remove(0);
    Ok(ObjectPath {
        key,
        rest: names,
        shown,
    })
}

pub async fn get_one(State(st): State<Shared>, uri: Uri) -> ApiResult<Json<Value>> {
    let p = object_path(&uri, "/data/object/")?;
    st.read(|s| {
        let c = s.connections.get(&p.key).ok_or_else(|| not_found(&p.shown))?;
        render::object(c, &p.rest, st.cfg.object_shape)
            .map(Json)
            .ok_or_else(|| not_found(&p.shown))
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

/// `POST /data/object/search/{path}?offset=N&size=M`: the objects below `path` — every
/// descendant, or the direct children only ([`ChildrenSearch`]) — in path order, in the search
/// shape of connections.
pub async fn search_children(
    State(st): State<Shared>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (offset, size) = page(&q)?;
    optional_object(&body)?;
    let p = object_path(&uri, "/data/object/search/")?;
    st.read(|s| {
        let c = s.connections.get(&p.key).ok_or_else(|| not_found(&p.shown))?;
        if !c.knows(&p.rest) {
            return Err(not_found(&p.shown));
        }
        let below: Vec<Value> = c
            .below(&p.rest)
            .filter(|ch| match st.cfg.children_search {
                ChildrenSearch::Descendants => true,
                ChildrenSearch::Direct => ch.path.len() == p.rest.len() + 1,
            })
            .map(|ch| render::hit(c, ch))
            .collect();
        let count = below.len();
        let hits: Vec<Value> = below.into_iter().skip(offset).take(size).collect();
        Ok(Json(super::shapes::search(st.cfg.search_shape, hits, count)))
    })
}

/// Validates a `PUT /data/settings` body: `{"settings": {…}}` with at least one known setting.
pub fn check_settings(v: &Value) -> ApiResult<()> {
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
    check(v, "", &ty, &mut errs);
    if errs.is_empty() && v["settings"].as_object().is_some_and(|m| m.is_empty()) {
        errs.push("settings: must set at least one setting".into());
    }
    if !errs.is_empty() {
        return Err(ApiError::bad_request(errs.join("; ")));
    }
    Ok(())
}

/// Sets the given settings (and only those) on the object at `p`, as Immuta does: a status
/// cascades to every object below it; enabling is refused for a parent with `limit` or more
/// objects below it. Shared by `PUT /data/settings` and the admin API's UI change.
pub fn apply_settings(s: &mut Store, p: &ObjectPath, new: &Value, limit: u64) -> ApiResult<()> {
    let c = s.connections.get_mut(&p.key).ok_or_else(|| not_found(&p.shown))?;
    if !c.knows(&p.rest) {
        return Err(not_found(&p.shown));
    }
    let active = new.get("isActive").and_then(Value::as_bool);
    if active == Some(true) {
        let below = c.below(&p.rest).count() as u64;
        if below >= limit {
            return Err(ApiError::bad_request(format!(
                "Cannot enable '{}': it has {below} child objects, and enabling a parent object is limited to parent objects with under {limit} child objects.",
                p.shown
            )));
        }
    }
    // Setting a parent's status sets every child's, even when the value is unchanged.
    if let Some(b) = active {
        c.set_status(&p.rest, b);
    }
    if let Some(b) = new.get("activateNewChildren").and_then(Value::as_bool) {
        c.set_activate_new_children(&p.rest, b);
    }
    for k in ["infrastructureAdmins", "dataOwners"] {
        if let Some(x) = new.get(k) {
            match c.find_mut(&p.rest) {
                Some(ch) if !p.rest.is_empty() => {
                    ch.extra.insert(k.into(), x.clone());
                }
                _ => {
                    c.settings.extra.insert(k.into(), x.clone());
                }
            }
        }
    }
    c.updated_ms = now_ms();
    Ok(())
}

/// `PUT /data/settings/{path}` `{"settings": {"isActive"?, "activateNewChildren"?, …}}` → `{bulkId}`.
pub async fn settings(State(st): State<Shared>, uri: Uri, body: Bytes) -> ApiResult<Json<Value>> {
    let p = object_path(&uri, "/data/settings/")?;
    let v = optional_object(&body)?;
    check_settings(&v)?;
    st.mutate(|s| {
        apply_settings(s, &p, &v["settings"], st.cfg.max_activate_children)?;
        let mut request = json!({"connectionKey": p.key, "body": v.clone()});
        if !p.rest.is_empty() {
            request["objectPath"] = json!(p.full());
        }
        s.settings_requests.push(request);
        Ok(Json(json!({"bulkId": s.new_bulk(now_ms(), &p.key, "settings")})))
    })
}

/// `POST /data/crawl/{path}` `{"forceRecursiveCrawl"?: bool}` → `{bulkId}`: the objects seeded
/// below `path` since the last crawl become known (see [`tree`]).
pub async fn crawl(State(st): State<Shared>, uri: Uri, body: Bytes) -> ApiResult<Json<Value>> {
    let p = object_path(&uri, "/data/crawl/")?;
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
        let c = s.connections.get_mut(&p.key).ok_or_else(|| not_found(&p.shown))?;
        if !c.knows(&p.rest) {
            return Err(not_found(&p.shown));
        }
        c.crawl(&p.rest);
        Ok(Json(json!({"bulkId": s.new_bulk(now_ms(), &p.key, "crawl")})))
    })
}

/// `DELETE /data/object/{key}` → `{objectPath: [key], childCount}`; removes the integration too.
/// Deeper paths are 404 (deleting a database or table is not emulated).
pub async fn delete_one(State(st): State<Shared>, uri: Uri) -> ApiResult<Json<Value>> {
    let p = object_path(&uri, "/data/object/")?;
    if !p.rest.is_empty() {
        return Err(not_found(&p.shown));
    }
    let key = p.key;
    st.mutate(|s| {
        let c = s.connections.remove(&key).ok_or_else(|| not_found(&key))?;
        s.integrations.remove(&c.integration_id);
        *s.deletions.entry(key.clone()).or_default() += 1;
        Ok(Json(
            json!({"objectPath": [key], "childCount": c.children.iter().filter(|ch| ch.crawled).count()}),
        ))
    })
}
