//! What Immuta answers: the response shapes connctl reads, parsed leniently (unknown fields
//! ignored, ids accepted as numbers or strings) because several are unconfirmed
//! (`shared/reference/immuta-api.md` §7).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::client::Response;
use crate::error::ApiError;

/// A setup, edit or cleanup script. Never logged, never stored: it can hold passwords.
pub struct Script {
    pub sql: String,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Script({} bytes)", self.sql.len())
    }
}

impl Script {
    /// The response format is unconfirmed: plain SQL, a JSON string, or an object with a
    /// `script` field are all accepted; anything else is an error.
    pub(crate) fn from_response(resp: Response, path: &str) -> Result<Script, ApiError> {
        let looks_json = resp.content_type.contains("json") || resp.text.trim_start().starts_with(['{', '"']);
        if !looks_json {
            return Ok(Script { sql: resp.text });
        }
        match serde_json::from_str::<Value>(&resp.text) {
            Ok(Value::String(sql)) => Ok(Script { sql }),
            Ok(Value::Object(obj)) => match obj.get("script").and_then(Value::as_str) {
                Some(sql) => Ok(Script { sql: sql.to_owned() }),
                None => Err(ApiError::Decode {
                    path: path.into(),
                    reason: "no `script` field in the response".into(),
                }),
            },
            _ => Ok(Script { sql: resp.text }),
        }
    }
}

/// The answer to `POST /data/connection`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    #[serde(default)]
    pub object_path: Vec<String>,
    #[serde(default)]
    pub bulk_id: Option<String>,
}

/// `GET /data/connection/{key}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveConnection {
    pub connection_key: String,
    #[serde(default)]
    pub connection: Map<String, Value>,
    #[serde(default, deserialize_with = "id_string")]
    pub native_integration_id: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `GET /data/object/{key}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveObject {
    #[serde(default)]
    pub technology: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// Objects below it, when Immuta says (the documented example has no such field; `DELETE`
    /// answers one). Without it, the children are counted with a search.
    #[serde(default)]
    pub child_count: Option<u64>,
}

impl LiveObject {
    /// A setting's value; Immuta wraps each as `{value, hasDescendantsWithOverrides}`.
    pub fn setting(&self, name: &str) -> Option<&Value> {
        let v = self.settings.get(name)?;
        Some(v.get("value").unwrap_or(v))
    }

    /// Whether the object is active: the documented top-level `state` (`active` | `inactive`),
    /// else an `isActive` setting (wrapped or bare) for tenants that report one.
    pub fn is_active(&self) -> Option<bool> {
        match self.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("active") => Some(true),
            Some("inactive") => Some(false),
            _ => self.setting("isActive").and_then(Value::as_bool),
        }
    }
}

/// `GET /integrations/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveIntegration {
    #[serde(deserialize_with = "id_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Some tenants put `userRolePattern` beside `config`.
    #[serde(default)]
    pub user_role_pattern: Option<Value>,
}

/// One hit of `POST /data/object/search`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectHit {
    #[serde(default)]
    pub object_path: Vec<String>,
    #[serde(default)]
    pub technology: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

impl ObjectHit {
    /// The connection key: the first element of the object path.
    pub fn key(&self) -> Option<&str> {
        self.object_path.first().map(String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SearchPage {
    #[serde(default)]
    pub hits: Vec<ObjectHit>,
    #[serde(default)]
    pub count: Option<usize>,
}

/// One job of a bulk request.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    #[serde(deserialize_with = "id_string")]
    pub id: Option<String>,
    pub state: String,
}

impl Job {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state.as_str(),
            "completed" | "failed" | "cancelled" | "expired"
        )
    }
}

fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> LiveObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn active_state_comes_from_the_documented_state_first() {
        let documented = object(serde_json::json!({"objectPath": ["k"], "state": "inactive",
            "settings": {"activateNewChildren": {"value": true, "hasDescendantsWithOverrides": false}}}));
        assert_eq!(documented.is_active(), Some(false));
        assert_eq!(
            documented.setting("activateNewChildren"),
            Some(&Value::Bool(true))
        );
        // `state` wins over a stale setting; the setting is the fallback when `state` is absent.
        let both = object(serde_json::json!({"state": "active", "settings": {"isActive": {"value": false}}}));
        assert_eq!(both.is_active(), Some(true));
        let wrapped = object(serde_json::json!({"settings": {"isActive": {"value": true}}}));
        assert_eq!(wrapped.is_active(), Some(true));
        let bare = object(serde_json::json!({"settings": {"isActive": false}, "childCount": 7}));
        assert_eq!(bare.is_active(), Some(false));
        assert_eq!(bare.child_count, Some(7));
        assert_eq!(object(serde_json::json!({})).is_active(), None);
    }
}
