//! `POST /data/connection` (and `/test`) bodies: the `connection`, `nativeIntegration` and
//! `settings` objects, and the consistency between the first two.

use serde_json::{Map, Value};

use super::{
    ApiError, Auth, Flat, Payload, Tech, Ty, auth_of, check, check_key, fail, flatten, is_secret_path, o, r,
    schema, tech_at, type_name, user_role_pattern,
};

/// A validated `nativeIntegration` object.
#[derive(Debug, Clone)]
pub struct Native {
    /// `config`, with a `userRolePattern` given beside it moved inside.
    pub config: Value,
    pub user_role_pattern_beside: bool,
}

/// Check a `connection` object; returns its technology and auth variant.
pub fn check_connection(conn: &Value, errs: &mut Vec<String>) -> Option<(Tech, Auth)> {
    if !conn.is_object() {
        errs.push(format!("connection: expected object, got {}", type_name(conn)));
        return None;
    }
    let tech = match tech_at(conn.get("technology"), "connection.technology") {
        Ok(t) => t,
        Err(e) => {
            errs.push(e);
            return None;
        }
    };
    let auth = match auth_of(tech, conn, "connection") {
        Ok(a) => a,
        Err(e) => {
            errs.push(e);
            return None;
        }
    };
    check(conn, "connection", &schema(tech, auth, Payload::Connection), errs);
    Some((tech, auth))
}

/// Check a `nativeIntegration` object against the connection's technology and auth.
pub fn check_native(native: &Value, tech: Tech, auth: Auth, errs: &mut Vec<String>) -> Option<Native> {
    let mut fields = vec![
        r("type", Ty::OneOf(&["Snowflake", "Databricks"])),
        r("autoBootstrap", Ty::BoolConst(false)),
        r("config", Ty::AnyObj),
    ];
    match tech {
        Tech::Databricks => fields.push(r("unityCatalog", Ty::BoolConst(true))),
        Tech::Snowflake => {
            fields.push(o("unityCatalog", Ty::BoolConst(false)));
            fields.push(o("userRolePattern", user_role_pattern()));
        }
    }
    let before = errs.len();
    check(native, "nativeIntegration", &Ty::Obj(fields), errs);
    if let Some(t) = native.get("type").and_then(Value::as_str)
        && Tech::parse(t).is_some()
        && t != tech.as_str()
    {
        errs.push(format!(
            "nativeIntegration.type: must equal connection.technology ({})",
            tech.as_str()
        ));
    }
    let config = native.get("config")?;
    if !config.is_object() {
        return None;
    }
    match auth_of(tech, config, "nativeIntegration.config") {
        Ok(a) if a == auth => {}
        Ok(_) => errs.push(
            "nativeIntegration.config.authenticationType: must equal connection.authenticationType (and the \
             same OAuth variant)"
                .into(),
        ),
        Err(e) => errs.push(e),
    }
    check(
        config,
        "nativeIntegration.config",
        &schema(tech, auth, Payload::Native),
        errs,
    );
    let mut config = config.clone();
    let beside = native.get("userRolePattern").cloned();
    let user_role_pattern_beside = beside.is_some();
    if let (Some(b), Some(m)) = (beside, config.as_object_mut()) {
        if m.contains_key("userRolePattern") {
            errs.push(
                "nativeIntegration.userRolePattern: given both beside and inside nativeIntegration.config"
                    .into(),
            );
        }
        m.insert("userRolePattern".into(), b);
    }
    if errs.len() > before {
        return None;
    }
    Some(Native {
        config,
        user_role_pattern_beside,
    })
}

/// Where a canonical native path lives in a registration body.
pub fn native_field(path: &str, beside: bool) -> String {
    if path == "httpPath" {
        "connection.httpPath".into()
    } else if beside && path.starts_with("userRolePattern") {
        format!("nativeIntegration.{path}")
    } else {
        format!("nativeIntegration.config.{path}")
    }
}

/// The connection object in canonical names (`hostname` → `host`), without connection-only fields.
fn canon_connection(conn: &Value) -> Flat {
    flatten(conn)
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "technology" | "role" | "httpPath"))
        .map(|(k, v)| {
            if k == "hostname" {
                ("host".to_string(), v)
            } else {
                (k, v)
            }
        })
        .collect()
}

fn connection_field(path: &str) -> String {
    if path == "host" {
        "connection.hostname".into()
    } else {
        format!("connection.{path}")
    }
}

/// The connection must carry the same values as `nativeIntegration.config` for shared fields.
pub fn check_consistency(conn: &Value, native_config: &Value, errs: &mut Vec<String>) {
    const DOMAIN: &[&str] = &[
        "host",
        "port",
        "warehouse",
        "authenticationType",
        "username",
        "password",
        "privateKeyPassword",
        "privateKey",
        "token",
        "oAuthClientConfig",
    ];
    const LOOSE: &[&str] = &[
        "privateKey.keyName",
        "oAuthClientConfig.provider",
        "oAuthClientConfig.useCertificate",
        "oAuthClientConfig.scope",
        "oAuthClientConfig.resource",
    ];
    let c = canon_connection(conn);
    let n = flatten(native_config);
    let in_domain = |p: &str| DOMAIN.iter().any(|d| p == *d || p.starts_with(&format!("{d}.")));
    let mut paths: Vec<&String> = c.keys().chain(n.keys().filter(|p| in_domain(p))).collect();
    paths.sort();
    paths.dedup();
    for p in paths {
        let (a, b) = (c.get(p), n.get(p));
        if LOOSE.contains(&p.as_str()) && (a.is_none() || b.is_none()) {
            continue;
        }
        if a == b {
            continue;
        }
        let detail = if is_secret_path(p) {
            "(secret values differ)".to_string()
        } else {
            let show = |v: Option<&Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "(absent)".into());
            format!("(connection: {}, nativeIntegration: {})", show(a), show(b))
        };
        errs.push(format!(
            "{}: does not match nativeIntegration.config.{p} {detail}",
            connection_field(p)
        ));
    }
}

/// The parsed `settings` of a registration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub is_active: bool,
    pub activate_new_children: bool,
    pub force_recursive_crawl: bool,
    pub extra: Map<String, Value>,
}

fn check_settings(body: &Value, errs: &mut Vec<String>) -> Settings {
    let settings_ty = Ty::Obj(vec![
        o("isActive", Ty::Bool),
        o("activateNewChildren", Ty::Bool),
        o("infrastructureAdmins", Ty::List),
        o("dataOwners", Ty::List),
    ]);
    let options_ty = Ty::Obj(vec![o("forceRecursiveCrawl", Ty::Bool)]);
    if let Some(s) = body.get("settings") {
        check(s, "settings", &settings_ty, errs);
    }
    if let Some(s) = body.get("options") {
        check(s, "options", &options_ty, errs);
    }
    let b = |v: Option<&Value>, d: bool| v.and_then(Value::as_bool).unwrap_or(d);
    let s = body.get("settings");
    let is_active = b(s.and_then(|s| s.get("isActive")), false);
    let mut extra = Map::new();
    for k in ["infrastructureAdmins", "dataOwners"] {
        if let Some(v) = s.and_then(|s| s.get(k)) {
            extra.insert(k.into(), v.clone());
        }
    }
    Settings {
        is_active,
        activate_new_children: b(s.and_then(|s| s.get("activateNewChildren")), true),
        force_recursive_crawl: b(
            body.get("options").and_then(|o| o.get("forceRecursiveCrawl")),
            false,
        ),
        extra,
    }
}

/// A validated `POST /data/connection` (or `/test`) body.
#[derive(Debug, Clone)]
pub struct Registration {
    pub key: String,
    pub tech: Tech,
    pub connection: Value,
    pub native: Native,
    pub settings: Settings,
    pub http_path: Option<String>,
    /// The registration in canonical names: native config (+ `httpPath` for Databricks).
    pub canon: Flat,
    pub host: String,
}

pub fn registration(body: &Value) -> Result<Registration, ApiError> {
    let mut errs = Vec::new();
    check(
        body,
        "",
        &Ty::Obj(vec![
            r("connectionKey", Ty::Str),
            r("connection", Ty::AnyObj),
            o("settings", Ty::AnyObj),
            o("options", Ty::AnyObj),
            r("nativeIntegration", Ty::AnyObj),
        ]),
        &mut errs,
    );
    let key = body
        .get("connectionKey")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if body.get("connectionKey").and_then(Value::as_str).is_some()
        && !key.trim().is_empty()
        && let Err(e) = check_key(&key)
    {
        errs.push(e);
    }
    let settings = check_settings(body, &mut errs);
    let conn = body.get("connection").cloned().unwrap_or(Value::Null);
    let native_v = body.get("nativeIntegration").cloned().unwrap_or(Value::Null);
    let mut ta = None;
    if conn.is_object() {
        ta = check_connection(&conn, &mut errs);
    }
    let mut native = None;
    if let (Some((tech, auth)), true) = (ta, native_v.is_object()) {
        native = check_native(&native_v, tech, auth, &mut errs);
    }
    if !errs.is_empty() {
        return Err(fail(errs));
    }
    let (Some((tech, _)), Some(native)) = (ta, native) else {
        return Err(ApiError::bad_request("body: invalid registration"));
    };
    check_consistency(&conn, &native.config, &mut errs);
    if !errs.is_empty() {
        return Err(fail(errs));
    }
    let http_path = conn.get("httpPath").and_then(Value::as_str).map(str::to_string);
    let mut canon = flatten(&native.config);
    if let (Tech::Databricks, Some(h)) = (tech, &http_path) {
        canon.insert("httpPath".into(), Value::String(h.clone()));
    }
    let host = conn
        .get("hostname")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(Registration {
        key,
        tech,
        connection: conn,
        native,
        settings,
        http_path,
        canon,
        host,
    })
}
