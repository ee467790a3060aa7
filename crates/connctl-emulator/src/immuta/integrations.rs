//! Integrations: `POST /integrations/scripts/create`, `GET|PUT|DELETE /integrations/{id}`,
//! `GET /integrations/{id}/status`, `POST /integrations/{id}/scripts/edit|delete`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, parse_json, parse_object};
use crate::immuta::integration_json;
use crate::scripts;
use crate::server::Shared;
use crate::store::{Integration, ScriptKind, Store, now_ms};
use crate::validate::{self, Flat, ScriptRequest, Tech, flatten, unflatten};

fn parse_id(id: &str) -> ApiResult<u64> {
    id.parse::<u64>()
        .map_err(|_| ApiError::not_found(format!("No integration found with ID {id}.")))
}

fn find<'a>(s: &'a Store, id: &str) -> ApiResult<&'a Integration> {
    let n = parse_id(id)?;
    s.integrations
        .get(&n)
        .ok_or_else(|| ApiError::not_found(format!("No integration found with ID {id}.")))
}

fn script_response(text: String, id: &str) -> Response {
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-immuta-script-id", v);
    }
    r
}

/// `POST /integrations/scripts/create` → `text/plain` SQL.
pub async fn script_create(State(st): State<Shared>, body: Bytes) -> ApiResult<Response> {
    let req = validate::script_request(&parse_object(&body)?)?;
    let (text, script) = scripts::generate(ScriptKind::Create, req.tech, &req.canon, None, now_ms());
    let id = script.id.clone();
    st.mutate(|s| s.add_script(script));
    Ok(script_response(text, &id))
}

/// An edit request must keep the type and what identifies the managed objects.
fn check_edit(i: &Integration, req: &ScriptRequest) -> ApiResult<()> {
    if req.tech != i.tech {
        return Err(ApiError::bad_request(format!(
            "type: must equal the integration's type ({})",
            i.tech.as_str()
        )));
    }
    let old = flatten(&i.config);
    let field = |f: &str| {
        let (cfg_name, canon_name) = match (i.tech, f) {
            (Tech::Databricks, "host") => ("workspaceUrl", "host"),
            (_, other) => (other, other),
        };
        (cfg_name.to_string(), canon_name.to_string())
    };
    let idf = match i.tech {
        Tech::Snowflake => ["host", "database"],
        Tech::Databricks => ["host", "catalog"],
    };
    for f in idf {
        let (cfg_name, canon_name) = field(f);
        let a = old
            .get(&canon_name)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let b = req
            .canon
            .get(&canon_name)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        if a != b {
            return Err(ApiError::bad_request(format!(
                "config.{cfg_name}: cannot be changed by an edit (delete the connection and register it again)"
            )));
        }
    }
    Ok(())
}

/// `POST /integrations/{id}/scripts/edit` `{type, autoBootstrap: false, config}` → SQL.
pub async fn script_edit(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req = validate::script_request(&parse_object(&body)?)?;
    let iid = st.read(|s| {
        let i = find(s, &id)?;
        check_edit(i, &req)?;
        Ok::<u64, ApiError>(i.id)
    })?;
    let (text, script) = scripts::generate(ScriptKind::Edit, req.tech, &req.canon, Some(iid), now_ms());
    let sid = script.id.clone();
    st.mutate(|s| s.add_script(script));
    Ok(script_response(text, &sid))
}

/// `POST /integrations/{id}/scripts/delete` (body `{}` or absent) → cleanup SQL.
pub async fn script_delete(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    match parse_json(&body)? {
        None => {}
        Some(Value::Object(m)) => {
            if let Some(k) = m
                .keys()
                .find(|k| !matches!(k.as_str(), "type" | "autoBootstrap" | "config"))
            {
                return Err(ApiError::bad_request(format!(
                    "{k}: unknown field (known: type, autoBootstrap, config)"
                )));
            }
        }
        Some(_) => return Err(ApiError::bad_request("body: expected a JSON object")),
    }
    let (tech, canon, iid) = st.read(|s| {
        let i = find(s, &id)?;
        Ok::<(Tech, Flat, u64), ApiError>((i.tech, flatten(&i.config), i.id))
    })?;
    let (text, script) = scripts::generate(ScriptKind::Delete, tech, &canon, Some(iid), now_ms());
    let sid = script.id.clone();
    st.mutate(|s| s.add_script(script));
    Ok(script_response(text, &sid))
}

pub async fn list(State(st): State<Shared>) -> Json<Value> {
    st.read(|s| {
        Json(Value::Array(
            s.integrations.values().map(integration_json).collect(),
        ))
    })
}

pub async fn get_one(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    st.read(|s| find(s, &id).map(|i| Json(integration_json(i))))
}

pub async fn status(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    st.read(|s| find(s, &id).map(|i| Json(json!({"id": i.id.to_string(), "status": i.status}))))
}

pub async fn delete_one(State(st): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    st.mutate(|s| {
        let n = find(s, &id)?.id;
        let i = s
            .integrations
            .remove(&n)
            .ok_or_else(|| ApiError::not_found(format!("No integration found with ID {id}.")))?;
        let mut out = integration_json(&i);
        out["status"] = json!("deleted");
        Ok(Json(out))
    })
}

/// Paths that exist only in `nativeIntegration.config`, carried over by an update.
const NATIVE_ONLY: &[&str] = &[
    "port",
    "privateKey.keyName",
    "privateKey.userFilename",
    "privateKeyPassword",
    "oAuthClientConfig.oauthPrivateKey.userFilename",
    "oAuthClientConfig.resource",
];

/// The integration config after an update with the script-shaped `req`.
fn updated_config(old: &Value, req: &ScriptRequest) -> (Value, Option<String>) {
    let old = flatten(old);
    let mut new: Flat = req.canon.clone();
    let http_path = new
        .remove("httpPath")
        .and_then(|v| v.as_str().map(str::to_string));
    if old.get("authenticationType") == new.get("authenticationType") {
        for p in NATIVE_ONLY {
            if !new.contains_key(*p)
                && let Some(v) = old.get(*p)
            {
                new.insert(p.to_string(), v.clone());
            }
        }
    }
    new.entry("port".into()).or_insert(json!(443));
    if new.contains_key("privateKey.content") {
        new.entry("privateKey.keyName".into())
            .or_insert(json!("PRIV_KEY_FILE"));
        new.entry("privateKey.userFilename".into())
            .or_insert(json!("private_key.p8"));
    }
    if new.contains_key("oAuthClientConfig.oauthPrivateKey.content") {
        new.entry("oAuthClientConfig.oauthPrivateKey.userFilename".into())
            .or_insert(json!("oauth_private_key.pem"));
    }
    (unflatten(&new), http_path)
}

/// `PUT /integrations/{id}` `{type, autoBootstrap: false, config}`: needs an executed edit script
/// generated for exactly this config.
pub async fn put_one(
    State(st): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let req = validate::script_request(&parse_object(&body)?)?;
    st.mutate(|s| {
        let i = find(s, &id)?;
        check_edit(i, &req)?;
        let iid = i.id;
        s.settle(now_ms());
        let same = |sc: &&crate::store::Script| {
            sc.kind == ScriptKind::Edit && sc.integration_id == Some(iid) && sc.canon == req.canon
        };
        let executed = s.scripts.iter().filter(same).any(|sc| sc.is_executed());
        let candidate =
            s.scripts.iter().rev().find(same).map(|sc| (sc.id.clone(), sc.executed_count(), sc.statements.len()));
        if !executed {
            let detail = match candidate {
                Some((sid, n, m)) => format!("script {sid}: {n} of {m} statements have run successfully"),
                None => format!(
                    "no edit script was generated for this config: call POST /integrations/{id}/scripts/edit and \
                     run the script"
                ),
            };
            return Err(ApiError::bad_request(format!(
                "cannot update integration {id}: the edit script for this configuration has not been executed \
                 ({detail})"
            )));
        }
        let i = s.integrations.get_mut(&iid).ok_or_else(|| ApiError::not_found(format!("No integration found with ID {id}.")))?;
        let (config, http_path) = updated_config(&i.config, &req);
        i.config = config;
        if http_path.is_some() {
            i.http_path = http_path;
        }
        i.status = "enabled".into();
        Ok(Json(integration_json(i)))
    })
}
