//! Connections: `POST /data/connection/test`, `POST /data/connection`,
//! `GET|PUT /data/connection/{key}`, and the check that the setup script of a registration's
//! config has been executed through the emulated warehouse API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, parse_object};
use crate::immuta::connection_json;
use crate::server::Shared;
use crate::store::{Child, Connection, Integration, ScriptKind, Store, now_ms};
use crate::validate::{
    self, Registration, Tech, Ty, describe_values, first_difference, flatten, identity, native_field,
};

/// Registration may proceed only if a create (or edit) script generated with the same config has
/// had every statement executed.
pub fn check_script(store: &mut Store, reg: &Registration) -> ApiResult<()> {
    store.settle(now_ms());
    let id = identity(reg.tech, &reg.canon);
    let mut unexecuted = None;
    let mut same_identity = None;
    for s in store.scripts.iter().rev() {
        if s.kind == ScriptKind::Delete || s.tech != reg.tech {
            continue;
        }
        if first_difference(&s.canon, &reg.canon).is_none() {
            if s.is_executed() {
                return Ok(());
            }
            unexecuted.get_or_insert(s);
        } else if s.identity == id {
            match same_identity {
                None => same_identity = Some(s),
                Some(prev) if !prev.is_executed() && s.is_executed() => same_identity = Some(s),
                _ => {}
            }
        }
    }
    let prefix = format!(
        "cannot connect to {}: the setup script for this configuration has not been executed",
        reg.host
    );
    if let Some(s) = unexecuted {
        return Err(ApiError::bad_request(format!(
            "{prefix} (script {}: {} of {} statements have run successfully through the warehouse API)",
            s.id,
            s.executed_count(),
            s.statements.len()
        )));
    }
    if let Some(s) = same_identity
        && let Some(path) = first_difference(&s.canon, &reg.canon)
    {
        let field = native_field(&path, reg.native.user_role_pattern_beside);
        return Err(ApiError::bad_request(format!(
            "{prefix} ({field} differs from the config setup script {} was generated with {})",
            s.id,
            describe_values(&path, s.canon.get(&path), reg.canon.get(&path))
        )));
    }
    Err(ApiError::bad_request(format!(
        "{prefix} (no setup script was generated for it: call POST /integrations/scripts/create with this \
         config and run the script)"
    )))
}

fn check_new(store: &mut Store, reg: &Registration) -> ApiResult<()> {
    if store.connections.contains_key(&reg.key) {
        return Err(ApiError::conflict(format!(
            "A connection with connectionKey '{}' already exists.",
            reg.key
        )));
    }
    check_host(store, reg)?;
    check_script(store, reg)
}

/// Immuta allows one Snowflake integration per host (its documented 409), whether it backs a
/// connection or was configured on its own before connections existed.
pub fn check_host(store: &Store, reg: &Registration) -> ApiResult<()> {
    if reg.tech != Tech::Snowflake {
        return Ok(());
    }
    let same_host = |i: &&Integration| {
        i.tech == Tech::Snowflake
            && i.config
                .get("host")
                .and_then(Value::as_str)
                .is_some_and(|h| h.eq_ignore_ascii_case(&reg.host))
    };
    match store.integrations.values().find(same_host) {
        Some(i) => Err(ApiError::conflict(format!(
            "Snowflake integration already exists on {} (id = {}). The request failed because an integration \
             already exists on the host.",
            reg.host, i.id
        ))),
        None => Ok(()),
    }
}

/// The objects a registration finds below the connection: its database (catalog), one schema
/// and two tables, with the connection's status.
fn children_of(reg: &Registration) -> Vec<Child> {
    let (top, schema, tables) = match reg.tech {
        Tech::Snowflake => ("database", "PUBLIC", ["CUSTOMERS", "ORDERS"]),
        Tech::Databricks => ("catalog", "default", ["customers", "orders"]),
    };
    let Some(db) = reg.canon.get(top).and_then(Value::as_str) else {
        return Vec::new();
    };
    let active = reg.settings.is_active;
    let mut out = vec![
        Child::new(vec![db.to_string()], active),
        Child::new(vec![db.to_string(), schema.to_string()], active),
    ];
    for t in tables {
        out.push(Child::new(
            vec![db.to_string(), schema.to_string(), t.to_string()],
            active,
        ));
    }
    out
}

/// `POST /data/connection/test`: the registration's checks, changing nothing.
pub async fn test(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let reg = validate::registration(&parse_object(&body)?)?;
    st.read(|s| check_new(s, &reg))?;
    Ok(Json(json!({
        "connectionKey": reg.key,
        "status": "passed",
        "validationTests": [
            {"name": "Payload validation", "status": "passed"},
            {"name": "Setup script executed", "status": "passed"},
            {"name": "Basic Connection Test", "status": "passed"},
        ],
    })))
}

/// Create the connection and its integration (shared by registration and the admin seed).
pub fn create(s: &mut Store, reg: &Registration, now: u64) -> (u64, String) {
    let id = s.next_integration_id();
    s.integrations.insert(
        id,
        Integration {
            id,
            tech: reg.tech,
            status: "enabled".into(),
            config: reg.native.config.clone(),
            http_path: reg.http_path.clone(),
            connection_key: Some(reg.key.clone()),
        },
    );
    s.connections.insert(
        reg.key.clone(),
        Connection {
            key: reg.key.clone(),
            tech: reg.tech,
            connection: reg.connection.clone(),
            settings: reg.settings.clone(),
            integration_id: id,
            created_ms: now,
            updated_ms: now,
            children: children_of(reg),
        },
    );
    (id, s.new_bulk(now, &reg.key, "register"))
}

/// `POST /data/connection` → `{objectPath: [key], bulkId}`.
pub async fn register(State(st): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let reg = validate::registration(&parse_object(&body)?)?;
    st.mutate(|s| {
        check_new(s, &reg)?;
        let (_, bulk) = create(s, &reg, now_ms());
        *s.registrations.entry(reg.key.clone()).or_default() += 1;
        Ok(Json(json!({"objectPath": [reg.key], "bulkId": bulk})))
    })
}

pub async fn get_one(State(st): State<Shared>, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    st.read(|s| {
        s.connections
            .get(&key)
            .map(|c| Json(connection_json(c)))
            .ok_or_else(|| ApiError::not_found(format!("Connection '{key}' not found.")))
    })
}

/// `PUT /data/connection/{key}` `{connection, nativeIntegration?}` → `{connectionKey, bulkId}`.
pub async fn put_one(
    State(st): State<Shared>,
    Path(key): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = parse_object(&body)?;
    let mut errs = Vec::new();
    validate::check(
        &body,
        "",
        &Ty::Obj(vec![
            validate_field("connection", true),
            validate_field("nativeIntegration", false),
        ]),
        &mut errs,
    );
    if !errs.is_empty() {
        return Err(ApiError::bad_request(errs.join("; ")));
    }
    let conn = body.get("connection").cloned().unwrap_or(Value::Null);
    let ta = validate::check_connection(&conn, &mut errs);
    let mut native = None;
    if let (Some((tech, auth)), Some(n)) = (ta, body.get("nativeIntegration")) {
        native = validate::check_native(n, tech, auth, &mut errs);
        if let Some(n) = &native {
            validate::check_consistency(&conn, &n.config, &mut errs);
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::bad_request(errs.join("; ")));
    }
    let Some((tech, _)) = ta else {
        return Err(ApiError::bad_request("connection: invalid"));
    };
    st.mutate(|s| {
        let existing = s
            .connections
            .get(&key)
            .ok_or_else(|| ApiError::not_found(format!("Connection '{key}' not found.")))?;
        if existing.tech != tech {
            return Err(ApiError::bad_request(format!(
                "connection.technology: cannot be changed from {} (replace the connection instead)",
                existing.tech.as_str()
            )));
        }
        let old_host = existing.connection.get("hostname").cloned();
        if conn.get("hostname") != old_host.as_ref() {
            return Err(ApiError::bad_request(
                "connection.hostname: cannot be changed (replace the connection instead)",
            ));
        }
        let iid = existing.integration_id;
        if let (Some(n), Some(i)) = (&native, s.integrations.get(&iid)) {
            let old = identity(tech, &flatten(&i.config));
            let new = identity(tech, &flatten(&n.config));
            if old != new {
                let field = match tech {
                    validate::Tech::Snowflake => "nativeIntegration.config.database",
                    validate::Tech::Databricks => "nativeIntegration.config.catalog",
                };
                return Err(ApiError::bad_request(format!(
                    "{field}: cannot be changed (replace the connection instead)"
                )));
            }
        }
        let now = now_ms();
        if let Some(c) = s.connections.get_mut(&key) {
            c.connection = conn.clone();
            c.updated_ms = now;
        }
        if let Some(i) = s.integrations.get_mut(&iid) {
            if let Some(n) = &native {
                i.config = n.config.clone();
            }
            if let Some(h) = conn.get("httpPath").and_then(Value::as_str) {
                i.http_path = Some(h.to_string());
            }
        }
        let bulk = s.new_bulk(now, &key, "update");
        Ok(Json(json!({"connectionKey": key, "bulkId": bulk})))
    })
}

fn validate_field(name: &'static str, required: bool) -> validate::F {
    validate::F::new(name, Ty::AnyObj, required)
}
