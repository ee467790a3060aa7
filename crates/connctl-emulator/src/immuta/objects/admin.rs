//! The admin API's object part (`/_emulator/objects/{path}`; no auth, no faults, not logged):
//! a person's change in Immuta's UI, warehouse objects for the next crawl, and a dump of a
//! connection's tree. (`PATCH` on the same route, one child's status alone, is in `crate::admin`.)

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

use super::{ObjectPath, apply_settings, not_found, object_path, render};
use crate::error::{ApiError, ApiResult, parse_object};
use crate::server::Shared;

/// Where the object part of the admin API lives.
pub const PREFIX: &str = "/_emulator/objects/";

/// `POST /_emulator/objects/{path}` `{"isActive"?: bool, "activateNewChildren"?: bool}`: set them
/// on the object as Immuta's UI does (an override; a status cascades to the objects below, and
/// the children limit applies); answers the object. `POST /_emulator/objects/{path}/seed` adds
/// warehouse objects ([`seed`]); an object really named `seed` is written `%73eed`.
pub async fn post(State(st): State<Shared>, uri: Uri, body: Bytes) -> ApiResult<Json<Value>> {
    let mut p = object_path(&uri, PREFIX)?;
    if uri.path().trim_end_matches('/').ends_with("/seed") {
        p.rest.pop();
        p.shown = p.full().join("/");
        return seed(&st, &p, &body);
    }
    let v = parse_object(&body)?;
    let mut settings = serde_json::Map::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        match (k.as_str(), x) {
            ("isActive" | "activateNewChildren", Value::Bool(_)) => {
                settings.insert(k.clone(), x.clone());
            }
            ("isActive" | "activateNewChildren", _) => {
                return Err(ApiError::bad_request(format!("{k}: expected a boolean")));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "{k}: unknown field (known: isActive, activateNewChildren)"
                )));
            }
        }
    }
    if settings.is_empty() {
        return Err(ApiError::bad_request("isActive or activateNewChildren: required"));
    }
    st.mutate(|s| {
        apply_settings(s, &p, &Value::Object(settings), st.cfg.max_activate_children)?;
        dump(s, &p)
    })
}

/// `{"children": ["A", "B/C", ["odd/name", "T"]], "crawled"?: false}`: warehouse objects below
/// `p` (a string is split on `/`; an array is one path, for names holding `/`), with their
/// missing ancestors. Found at the next crawl, or at once with `crawled: true`.
fn seed(st: &Shared, p: &ObjectPath, body: &[u8]) -> ApiResult<Json<Value>> {
    let v = parse_object(body)?;
    if let Some(k) = v
        .as_object()
        .and_then(|m| m.keys().find(|k| !["children", "crawled"].contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(format!(
            "{k}: unknown field (known: children, crawled)"
        )));
    }
    let crawled = match v.get("crawled") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::bad_request("crawled: expected a boolean")),
    };
    let Some(items) = v.get("children").and_then(Value::as_array) else {
        return Err(ApiError::bad_request("children: required array of paths"));
    };
    let mut paths = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path: Option<Vec<String>> = match item {
            Value::String(s) => Some(s.split('/').map(str::to_owned).collect()),
            Value::Array(names) => names.iter().map(|n| n.as_str().map(str::to_owned)).collect(),
            _ => None,
        };
        paths.push(path.ok_or_else(|| {
            ApiError::bad_request(format!(
                "children[{i}]: expected a path string or an array of names"
            ))
        })?);
    }
    st.mutate(|s| {
        let c = s.connections.get_mut(&p.key).ok_or_else(|| not_found(&p.shown))?;
        let added = c.seed(&p.rest, &paths).map_err(ApiError::bad_request)?;
        let found = if crawled { c.crawl(&p.rest) } else { 0 };
        Ok(Json(json!({"added": added, "found": found})))
    })
}

/// `GET /_emulator/objects/{path}`: the object and everything below it, crawled or not.
pub async fn get(State(st): State<Shared>, uri: Uri) -> ApiResult<Json<Value>> {
    let p = object_path(&uri, PREFIX)?;
    st.read(|s| dump(s, &p))
}

fn dump(s: &crate::store::Store, p: &ObjectPath) -> ApiResult<Json<Value>> {
    let c = s.connections.get(&p.key).ok_or_else(|| not_found(&p.shown))?;
    if !c.knows(&p.rest) {
        return Err(not_found(&p.shown));
    }
    let objects: Vec<Value> = c
        .children
        .iter()
        .filter(|ch| ch.path.len() > p.rest.len() && ch.path.starts_with(&p.rest))
        .map(|ch| {
            json!({
                "path": ch.path,
                "state": render::state_name(ch.active),
                "activeOverride": ch.active_override,
                "activateNewChildren": c.activate_new_children_at(&ch.path),
                "activateNewChildrenOverride": ch.activate_new_children,
                "crawled": ch.crawled,
            })
        })
        .collect();
    Ok(Json(json!({
        "objectPath": p.full(),
        "state": render::state_name(c.is_active_at(&p.rest)),
        "activateNewChildren": c.activate_new_children_at(&p.rest),
        "objects": objects,
    })))
}
