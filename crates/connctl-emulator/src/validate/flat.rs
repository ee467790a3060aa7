//! Canonical flat forms: payloads as `dotted.path → value`, mapped onto nativeIntegration.config
//! names so the three payloads compare; secret paths and how differences are described.

use serde_json::{Map, Value};

use super::{Flat, Tech, join};

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
