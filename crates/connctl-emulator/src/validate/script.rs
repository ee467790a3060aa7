//! `POST /integrations/scripts/create` bodies and connection keys.

use serde_json::Value;

use super::{ApiError, Flat, Payload, Tech, Ty, auth_of, canon_script, check, fail, r, schema, tech_at};

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
