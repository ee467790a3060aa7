//! The emulator's own reading of Immuta's documented field tables: it walks `serde_json::Value`
//! request bodies (never the client's structs), reports every problem with the field's path,
//! and maps the three payloads (scripts/create `config`, `connection`, `nativeIntegration`) onto
//! one canonical, flat form so "the same values under the names each payload uses" can be
//! compared (the mapping is tabled per field in `docs/yaml-reference.md`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A payload flattened to `dotted.path → leaf value` (arrays are leaves).
pub type Flat = BTreeMap<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Tech {
    Snowflake,
    Databricks,
}

impl Tech {
    pub fn as_str(self) -> &'static str {
        match self {
            Tech::Snowflake => "Snowflake",
            Tech::Databricks => "Databricks",
        }
    }
    pub fn parse(s: &str) -> Option<Tech> {
        match s {
            "Snowflake" => Some(Tech::Snowflake),
            "Databricks" => Some(Tech::Databricks),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    UserPassword,
    KeyPair,
    OAuthSecret,
    OAuthCert,
    Token,
    OAuthM2M,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Script,
    Native,
    Connection,
}

#[derive(Debug, Clone)]
pub enum Ty {
    Str,
    Bool,
    Port,
    StrList,
    List,
    AnyObj,
    OneOf(&'static [&'static str]),
    Const(&'static str),
    BoolConst(bool),
    Catalog,
    Obj(Vec<F>),
}

#[derive(Debug, Clone)]
pub struct F {
    name: &'static str,
    ty: Ty,
    required: bool,
}

impl F {
    pub fn new(name: &'static str, ty: Ty, required: bool) -> F {
        F { name, ty, required }
    }
}

fn r(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: true,
    }
}
fn o(name: &'static str, ty: Ty) -> F {
    F {
        name,
        ty,
        required: false,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Check `v` against `ty`, pushing `path: problem` messages.
pub fn check(v: &Value, path: &str, ty: &Ty, errs: &mut Vec<String>) {
    let wrong = |want: &str, errs: &mut Vec<String>| {
        errs.push(format!("{path}: expected {want}, got {}", type_name(v)));
    };
    match ty {
        Ty::Str => match v {
            Value::String(s) if s.trim().is_empty() => errs.push(format!("{path}: must not be empty")),
            Value::String(_) => {}
            _ => wrong("string", errs),
        },
        Ty::Bool => {
            if !v.is_boolean() {
                wrong("boolean", errs)
            }
        }
        Ty::Port => match v.as_u64() {
            Some(p) if p <= 65535 => {}
            Some(_) => errs.push(format!("{path}: must be between 0 and 65535")),
            None if v.is_number() => errs.push(format!("{path}: must be an integer between 0 and 65535")),
            None => wrong("integer", errs),
        },
        Ty::StrList => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(item, &format!("{path}[{i}]"), &Ty::Str, errs);
                }
            }
            _ => wrong("array of strings", errs),
        },
        Ty::List => {
            if !v.is_array() {
                wrong("array", errs)
            }
        }
        Ty::AnyObj => {
            if !v.is_object() {
                wrong("object", errs)
            }
        }
        Ty::OneOf(options) => match v.as_str() {
            Some(s) if options.contains(&s) => {}
            Some(s) => errs.push(format!(
                "{path}: unknown value '{s}' (expected one of: {})",
                options.join(", ")
            )),
            None => wrong("string", errs),
        },
        Ty::Const(c) => match v.as_str() {
            Some(s) if s == *c => {}
            Some(s) => errs.push(format!("{path}: must be \"{c}\", got \"{s}\"")),
            None => wrong("string", errs),
        },
        Ty::BoolConst(b) => match v.as_bool() {
            Some(x) if x == *b => {}
            Some(_) => errs.push(format!("{path}: must be {b}")),
            None => wrong("boolean", errs),
        },
        Ty::Catalog => match v.as_str() {
            Some(s) => {
                let ok = !s.is_empty()
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !s.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    errs.push(format!(
                        "{path}: the catalog name may only contain letters, numbers, and underscores and \
                         cannot start with a number (got '{s}')"
                    ));
                }
            }
            None => wrong("string", errs),
        },
        Ty::Obj(fields) => {
            let Some(map) = v.as_object() else {
                wrong("object", errs);
                return;
            };
            for f in fields {
                match map.get(f.name) {
                    None if f.required => errs.push(format!("{}: required", join(path, f.name))),
                    None => {}
                    Some(x) => check(x, &join(path, f.name), &f.ty, errs),
                }
            }
            for k in map.keys() {
                if !fields.iter().any(|f| f.name == k) {
                    let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    errs.push(format!(
                        "{}: unknown field (known: {})",
                        join(path, k),
                        known.join(", ")
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------- schemas

const SF_AUTH: &[&str] = &["userPassword", "keyPair", "oAuthClientCredentials"];
const DBX_AUTH: &[&str] = &["token", "oAuthM2M"];

fn toggle() -> Ty {
    Ty::Obj(vec![o("enabled", Ty::Bool)])
}
fn user_role_pattern() -> Ty {
    Ty::Obj(vec![o("exclude", Ty::StrList)])
}
fn key_file(key_name: Option<bool>) -> Ty {
    let mut f = vec![r("userFilename", Ty::Str), r("content", Ty::Str)];
    match key_name {
        Some(true) => f.insert(0, r("keyName", Ty::Const("PRIV_KEY_FILE"))),
        Some(false) => f.insert(0, o("keyName", Ty::Const("PRIV_KEY_FILE"))),
        None => {}
    }
    Ty::Obj(f)
}

fn snowflake_oauth(payload: Payload, cert: bool) -> Ty {
    let mut f = match payload {
        Payload::Script => vec![
            r("provider", Ty::Str),
            r("clientId", Ty::Str),
            r("authorityUrl", Ty::Str),
        ],
        _ => vec![
            r("clientId", Ty::Str),
            r("authorityUrl", Ty::Str),
            o("resource", Ty::Str),
            o("provider", Ty::Str),
        ],
    };
    f.push(o("useCertificate", Ty::BoolConst(cert)));
    if cert {
        f.push(r("publicCertificateThumbprint", Ty::Str));
        f.push(match payload {
            Payload::Script => r("oauthPrivateKey", Ty::Str),
            _ => r("oauthPrivateKey", key_file(None)),
        });
    } else {
        f.push(r("clientSecret", Ty::Str));
    }
    Ty::Obj(f)
}

/// The field table for one payload of one technology and auth variant.
pub fn schema(tech: Tech, auth: Auth, payload: Payload) -> Ty {
    let mut f = Vec::new();
    match tech {
        Tech::Snowflake => {
            match payload {
                Payload::Script => f.extend([
                    r("host", Ty::Str),
                    r("warehouse", Ty::Str),
                    r("database", Ty::Str),
                    r("authenticationType", Ty::OneOf(SF_AUTH)),
                    o("port", Ty::Port),
                ]),
                Payload::Native => f.extend([
                    r("host", Ty::Str),
                    r("port", Ty::Port),
                    r("warehouse", Ty::Str),
                    r("database", Ty::Str),
                    r("authenticationType", Ty::OneOf(SF_AUTH)),
                ]),
                Payload::Connection => f.extend([
                    r("technology", Ty::Const("Snowflake")),
                    r("hostname", Ty::Str),
                    r("port", Ty::Port),
                    r("warehouse", Ty::Str),
                    r("role", Ty::Str),
                    r("authenticationType", Ty::OneOf(SF_AUTH)),
                ]),
            }
            if payload != Payload::Connection {
                f.extend([
                    o("audit", toggle()),
                    o("workspaces", toggle()),
                    o("impersonation", toggle()),
                    o("lineage", toggle()),
                    o("userRolePattern", user_role_pattern()),
                ]);
            }
            match auth {
                Auth::UserPassword => f.extend([r("username", Ty::Str), r("password", Ty::Str)]),
                Auth::KeyPair => {
                    f.push(r("username", Ty::Str));
                    match payload {
                        Payload::Script => f.push(r("privateKey", Ty::Str)),
                        Payload::Native => {
                            f.push(r("privateKey", key_file(Some(true))));
                            f.push(o("privateKeyPassword", Ty::Str));
                        }
                        Payload::Connection => {
                            f.push(r("privateKey", key_file(Some(false))));
                            f.push(o("privateKeyPassword", Ty::Str));
                        }
                    }
                }
                Auth::OAuthSecret | Auth::OAuthCert => f.push(r(
                    "oAuthClientConfig",
                    snowflake_oauth(payload, auth == Auth::OAuthCert),
                )),
                Auth::Token | Auth::OAuthM2M => {}
            }
        }
        Tech::Databricks => {
            match payload {
                Payload::Script => f.extend([
                    r("workspaceUrl", Ty::Str),
                    r("httpPath", Ty::Str),
                    r("authenticationType", Ty::OneOf(DBX_AUTH)),
                    r("catalog", Ty::Catalog),
                    o("port", Ty::Port),
                ]),
                Payload::Native => f.extend([
                    r("host", Ty::Str),
                    r("port", Ty::Port),
                    r("authenticationType", Ty::OneOf(DBX_AUTH)),
                    r("catalog", Ty::Catalog),
                ]),
                Payload::Connection => f.extend([
                    r("technology", Ty::Const("Databricks")),
                    r("hostname", Ty::Str),
                    r("port", Ty::Port),
                    r("httpPath", Ty::Str),
                    r("authenticationType", Ty::OneOf(DBX_AUTH)),
                ]),
            }
            if payload != Payload::Connection {
                f.extend([
                    o("audit", toggle()),
                    o("workspaceIds", Ty::StrList),
                    o("enableNativeQueryParsing", Ty::Bool),
                    o("groupPattern", Ty::Obj(vec![o("deny", Ty::Str)])),
                    o(
                        "jobConfig",
                        Ty::Obj(vec![
                            o("workspaceDirectoryPath", Ty::Str),
                            o("jobClusterId", Ty::Str),
                        ]),
                    ),
                ]);
            }
            match auth {
                Auth::Token => f.push(r("token", Ty::Str)),
                Auth::OAuthM2M => f.push(r(
                    "oAuthClientConfig",
                    Ty::Obj(vec![
                        o("useCertificate", Ty::BoolConst(false)),
                        r("clientId", Ty::Str),
                        r("clientSecret", Ty::Str),
                        o("scope", Ty::Str),
                        r("authorityUrl", Ty::Str),
                    ]),
                )),
                _ => {}
            }
        }
    }
    Ty::Obj(f)
}

/// Decide the auth variant of a config/connection object at `path`.
pub fn auth_of(tech: Tech, obj: &Value, path: &str) -> Result<Auth, String> {
    let at_path = join(path, "authenticationType");
    let at = match obj.get("authenticationType") {
        None => return Err(format!("{at_path}: required")),
        Some(Value::String(s)) => s.as_str(),
        Some(v) => return Err(format!("{at_path}: expected string, got {}", type_name(v))),
    };
    match (tech, at) {
        (Tech::Snowflake, "userPassword") => Ok(Auth::UserPassword),
        (Tech::Snowflake, "keyPair") => Ok(Auth::KeyPair),
        (Tech::Snowflake, "oAuthClientCredentials") => {
            let op = join(path, "oAuthClientConfig");
            let Some(oc) = obj.get("oAuthClientConfig").and_then(Value::as_object) else {
                return Err(format!(
                    "{op}: required (an object) for authenticationType oAuthClientCredentials"
                ));
            };
            let secret = oc.contains_key("clientSecret");
            let cert = oc.contains_key("publicCertificateThumbprint") || oc.contains_key("oauthPrivateKey");
            let use_cert = oc.get("useCertificate").and_then(Value::as_bool);
            match (secret, cert, use_cert) {
                (true, true, _) => Err(format!(
                    "{op}: give either clientSecret or publicCertificateThumbprint and oauthPrivateKey, not both"
                )),
                (true, false, _) | (false, false, Some(false)) => Ok(Auth::OAuthSecret),
                (false, true, _) | (false, false, Some(true)) => Ok(Auth::OAuthCert),
                (false, false, None) => Err(format!(
                    "{op}: give clientSecret, or publicCertificateThumbprint and oauthPrivateKey"
                )),
            }
        }
        (Tech::Databricks, "token") => Ok(Auth::Token),
        (Tech::Databricks, "oAuthM2M") => Ok(Auth::OAuthM2M),
        (Tech::Snowflake, other) => Err(format!(
            "{at_path}: unknown authentication type '{other}' for Snowflake (expected one of: {})",
            SF_AUTH.join(", ")
        )),
        (Tech::Databricks, other) => Err(format!(
            "{at_path}: unknown authentication type '{other}' for Databricks (expected one of: {})",
            DBX_AUTH.join(", ")
        )),
    }
}

fn tech_at(v: Option<&Value>, path: &str) -> Result<Tech, String> {
    match v {
        None => Err(format!("{path}: required")),
        Some(Value::String(s)) => Tech::parse(s)
            .ok_or_else(|| format!("{path}: unknown technology '{s}' (expected Snowflake or Databricks)")),
        Some(v) => Err(format!("{path}: expected string, got {}", type_name(v))),
    }
}

fn fail(errs: Vec<String>) -> ApiError {
    ApiError::bad_request(errs.join("; "))
}

// ---------------------------------------------------------------- flat forms

/// Flatten objects into dotted paths; arrays and scalars are leaves; empty objects vanish.
pub fn flatten(v: &Value) -> Flat {
    fn go(v: &Value, prefix: &str, out: &mut Flat) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    go(x, &join(prefix, k), out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = Flat::new();
    go(v, "", &mut out);
    out
}

/// Rebuild nested JSON from a flat form.
pub fn unflatten(flat: &Flat) -> Value {
    let mut root = Map::new();
    for (path, v) in flat {
        let parts: Vec<&str> = path.split('.').collect();
        let mut cur = &mut root;
        for p in &parts[..parts.len() - 1] {
            let entry = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(m) = entry else { unreachable!() };
            cur = m;
        }
        if let Some(last) = parts.last() {
            cur.insert(last.to_string(), v.clone());
        }
    }
    Value::Object(root)
}

/// A scripts/create `config` in canonical (nativeIntegration.config) names.
pub fn canon_script(tech: Tech, config: &Value) -> Flat {
    flatten(config)
        .into_iter()
        .map(|(k, v)| {
            let k = match (tech, k.as_str()) {
                (Tech::Snowflake, "privateKey") => "privateKey.content".to_string(),
                (Tech::Snowflake, "oAuthClientConfig.oauthPrivateKey") => {
                    "oAuthClientConfig.oauthPrivateKey.content".to_string()
                }
                (Tech::Databricks, "workspaceUrl") => "host".to_string(),
                _ => k,
            };
            (k, v)
        })
        .collect()
}

/// Paths compared only when both sides carry them (they exist in one payload only).
const ONE_SIDED: &[&str] = &[
    "port",
    "privateKey.keyName",
    "privateKey.userFilename",
    "privateKeyPassword",
    "oAuthClientConfig.oauthPrivateKey.userFilename",
    "oAuthClientConfig.resource",
    "oAuthClientConfig.useCertificate",
    "oAuthClientConfig.provider",
];

/// The first canonical path where a script's config and a registration/update differ.
pub fn first_difference(script: &Flat, other: &Flat) -> Option<String> {
    let mut paths: Vec<&String> = script.keys().chain(other.keys()).collect();
    paths.sort();
    paths.dedup();
    for p in paths {
        let (a, b) = (script.get(p), other.get(p));
        if ONE_SIDED.contains(&p.as_str()) && (a.is_none() || b.is_none()) {
            continue;
        }
        if a != b {
            return Some(p.clone());
        }
    }
    None
}

/// Whether a canonical path holds a secret (its value is never echoed).
pub fn is_secret_path(p: &str) -> bool {
    let last = p.rsplit('.').next().unwrap_or(p);
    matches!(
        last,
        "password" | "token" | "privateKeyPassword" | "clientSecret" | "content"
    ) || p == "privateKey"
        || p == "oAuthClientConfig.oauthPrivateKey"
}

/// `(script: X, given: Y)` for non-secret paths, `(secret value differs)` for secrets.
pub fn describe_values(path: &str, script: Option<&Value>, given: Option<&Value>) -> String {
    if is_secret_path(path) {
        return match (script, given) {
            (Some(_), None) => "(missing; the script has a value)".into(),
            (None, Some(_)) => "(the script has no such value)".into(),
            _ => "(secret value differs)".into(),
        };
    }
    let show = |v: Option<&Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "(absent)".into());
    format!("(script: {}, given: {})", show(script), show(given))
}

/// Remove secret values from an Immuta object before returning it.
pub fn strip_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "password" | "token" | "privateKeyPassword" | "clientSecret" | "content"
                    )
                })
                .map(|(k, x)| (k.clone(), strip_secrets(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `tech|host|database-or-catalog`: what identifies the Immuta-managed objects of a config.
pub fn identity(tech: Tech, canon: &Flat) -> String {
    let get = |k: &str| canon.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let db = match tech {
        Tech::Snowflake => get("database"),
        Tech::Databricks => get("catalog"),
    };
    format!("{}|{}|{}", tech.as_str(), get("host").to_ascii_lowercase(), db)
}

// ---------------------------------------------------------------- requests

/// A validated `{type, autoBootstrap: false, config}` body.
#[derive(Debug, Clone)]
pub struct ScriptRequest {
    pub tech: Tech,
    pub canon: Flat,
}

pub fn script_request(body: &Value) -> Result<ScriptRequest, ApiError> {
    let mut errs = Vec::new();
    let tech = match tech_at(body.get("type"), "type") {
        Ok(t) => Some(t),
        Err(e) => {
            errs.push(e);
            None
        }
    };
    let top = Ty::Obj(vec![
        r("type", Ty::OneOf(&["Snowflake", "Databricks"])),
        r("autoBootstrap", Ty::BoolConst(false)),
        r("config", Ty::AnyObj),
    ]);
    let mut top_errs = Vec::new();
    check(body, "", &top, &mut top_errs);
    errs.extend(top_errs.into_iter().filter(|e| !e.starts_with("type:")));
    let config = body.get("config").cloned().unwrap_or(Value::Null);
    let (Some(tech), true) = (tech, config.is_object()) else {
        return Err(fail(errs));
    };
    let auth = match auth_of(tech, &config, "config") {
        Ok(a) => a,
        Err(e) => {
            errs.push(e);
            return Err(fail(errs));
        }
    };
    check(&config, "config", &schema(tech, auth, Payload::Script), &mut errs);
    if !errs.is_empty() {
        return Err(fail(errs));
    }
    let canon = canon_script(tech, &config);
    Ok(ScriptRequest { tech, canon })
}

/// Connection key rules: letters, digits, `-`, `_`; not a reserved word.
pub fn check_key(key: &str) -> Result<(), String> {
    const RESERVED: &[&str] = &[
        "data",
        "connection",
        "object",
        "crawl",
        "search",
        "settings",
        "metadata",
        "permission",
        "sync",
        "bulk",
        "upgrade",
    ];
    if key.is_empty() {
        return Err("connectionKey: must not be empty".into());
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "connectionKey: must contain only letters, numbers, hyphens, and underscores (got '{key}')"
        ));
    }
    if RESERVED.iter().any(|w| w.eq_ignore_ascii_case(key)) {
        return Err(format!(
            "connectionKey: '{key}' is a reserved name ({})",
            RESERVED.join(", ")
        ));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn script_request_names_fields() {
        let err = script_request(&json!({"type": "Snowflake", "autoBootstrap": false, "config": {
            "host": "h", "warehouse": 1, "authenticationType": "userPassword", "username": "u", "password": "p",
            "bogus": true
        }}))
        .unwrap_err();
        assert!(
            err.message.contains("config.warehouse: expected string"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("config.database: required"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("config.bogus: unknown field"),
            "{}",
            err.message
        );
        let err =
            script_request(&json!({"type": "Oracle", "autoBootstrap": false, "config": {}})).unwrap_err();
        assert!(
            err.message.contains("type: unknown technology 'Oracle'"),
            "{}",
            err.message
        );
    }

    #[test]
    fn keys() {
        assert!(check_key("snowflake-prod_1").is_ok());
        assert!(check_key("a.b").is_err());
        assert!(check_key("Search").is_err());
    }

    #[test]
    fn flatten_roundtrip() {
        let v = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        assert_eq!(unflatten(&flatten(&v)), v);
    }

    #[test]
    fn snowflake_oauth_certificate_maps_across_payloads() {
        let oauth = json!({"provider": "Okta", "clientId": "cid", "authorityUrl": "https://idp",
                           "publicCertificateThumbprint": "AB:CD", "oauthPrivateKey": "PEM"});
        let req = script_request(&json!({"type": "Snowflake", "autoBootstrap": false, "config": {
            "host": "h.snowflakecomputing.com", "warehouse": "WH", "database": "DB",
            "authenticationType": "oAuthClientCredentials", "oAuthClientConfig": oauth
        }}))
        .unwrap();
        let client = json!({"clientId": "cid", "authorityUrl": "https://idp", "resource": "r",
                            "publicCertificateThumbprint": "AB:CD",
                            "oauthPrivateKey": {"userFilename": "k.pem", "content": "PEM"}});
        let reg = registration(&json!({
            "connectionKey": "sf-oauth",
            "connection": {"technology": "Snowflake", "hostname": "h.snowflakecomputing.com", "port": 443,
                           "warehouse": "WH", "role": "R", "authenticationType": "oAuthClientCredentials",
                           "oAuthClientConfig": client},
            "nativeIntegration": {"type": "Snowflake", "autoBootstrap": false, "config": {
                "host": "h.snowflakecomputing.com", "port": 443, "warehouse": "WH", "database": "DB",
                "authenticationType": "oAuthClientCredentials", "oAuthClientConfig": client}}
        }))
        .unwrap();
        assert_eq!(first_difference(&req.canon, &reg.canon), None);
        let mut other = reg.canon.clone();
        other.insert("oAuthClientConfig.oauthPrivateKey.content".into(), json!("OTHER"));
        assert_eq!(
            first_difference(&req.canon, &other).as_deref(),
            Some("oAuthClientConfig.oauthPrivateKey.content")
        );
        // both a secret and a certificate is refused
        let err = script_request(&json!({"type": "Snowflake", "autoBootstrap": false, "config": {
            "host": "h", "warehouse": "WH", "database": "DB", "authenticationType": "oAuthClientCredentials",
            "oAuthClientConfig": {"provider": "Okta", "clientId": "c", "authorityUrl": "u", "clientSecret": "s",
                                  "publicCertificateThumbprint": "t", "oauthPrivateKey": "k"}
        }}))
        .unwrap_err();
        assert!(err.message.contains("not both"), "{}", err.message);
    }
}
