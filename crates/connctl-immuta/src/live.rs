//! What Immuta answers: the response shapes connctl reads, parsed leniently (unknown fields
//! ignored, ids accepted as numbers or strings) because several are unconfirmed
//! (`docs/emulator.md`, "Unconfirmed answer shapes and what connctl accepts").

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::response::Response;

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
    /// `script` field are accepted. Anything else is an error carrying the start of the body,
    /// never sent to a warehouse: an empty body, an HTML page (a proxy's or a login page),
    /// a cut-off JSON document, JSON of another shape.
    pub(crate) fn from_response(resp: Response) -> Result<Script, ApiError> {
        let text = resp.text.trim_start();
        let looks_json = resp.content_type.contains("json") || text.starts_with(['{', '"', '[']);
        let sql = if looks_json {
            match resp.json_value()? {
                Value::String(sql) => sql,
                Value::Object(obj) => match obj.get("script").and_then(Value::as_str) {
                    Some(sql) => sql.to_owned(),
                    None => return Err(resp.unexpected("it has no `script` field")),
                },
                _ => return Err(resp.unexpected("it is JSON but not a script")),
            }
        } else {
            if resp.content_type.contains("html") || text.starts_with('<') {
                return Err(resp.unexpected("the body is an HTML page, not a SQL script"));
            }
            resp.text.clone()
        };
        if sql.trim().is_empty() {
            return Err(resp.unexpected("the script is empty"));
        }
        Ok(Script { sql })
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

impl Registered {
    /// A JSON object with at least one of the documented fields (`objectPath`, `bulkId`);
    /// anything else leaves the registration's outcome unknown.
    pub(crate) fn from_response(resp: &Response) -> Result<Registered, ApiError> {
        let registered: Registered = resp.json_as()?;
        if registered.object_path.is_empty() && registered.bulk_id.is_none() {
            return Err(resp.unexpected("the body has neither `objectPath` nor `bulkId`"));
        }
        Ok(registered)
    }
}

/// The verdict of `POST /data/connection/test`. Its answer is undocumented; Immuta's
/// integrations API reports validation inside a 200 (`status` and a list of tests with their
/// own `status`), so a 200 alone is not taken as a pass: a body that is there must be JSON, and
/// any `failed`/`error` status in it (top level, `validationTests` or `validationResults`) fails
/// the dry run. An empty body is a pass (the status code is all it said).
pub(crate) fn dry_run_verdict(resp: &Response) -> Result<(), ApiError> {
    if resp.text.trim().is_empty() {
        return Ok(());
    }
    let value = resp.json_value()?;
    let failed = |v: &Value| {
        v.get("status")
            .and_then(Value::as_str)
            .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "failed" | "failure" | "error"))
    };
    let mut reasons = Vec::new();
    for list in ["validationTests", "validationResults"] {
        for test in value.get(list).and_then(Value::as_array).into_iter().flatten() {
            if failed(test) {
                let name = test.get("name").and_then(Value::as_str).unwrap_or("a check");
                let why = ["message", "result", "error"]
                    .iter()
                    .find_map(|k| test.get(*k).and_then(Value::as_str));
                reasons.push(match why {
                    Some(why) => format!("{name}: {why}"),
                    None => name.to_owned(),
                });
            }
        }
    }
    if reasons.is_empty() && failed(&value) {
        let why = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        reasons.push(why.to_owned());
    }
    if !value.is_object() {
        return Err(resp.unexpected("the body is not a JSON object"));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(ApiError::DryRunFailed {
            reasons: reasons.join("; "),
        })
    }
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

impl LiveConnection {
    /// The technology Immuta names for this connection; `None` when it names none connctl knows.
    pub fn technology(&self) -> Option<connctl_spec::Technology> {
        self.connection
            .get("technology")
            .and_then(Value::as_str)
            .and_then(connctl_spec::Technology::from_name)
    }
}

/// `GET /data/object/{path}`: a data object at any depth (a connection, database, schema or
/// table). The documented shape has a top-level `state` and each setting wrapped as
/// `{value, hasDescendantsWithOverrides}`; the readers below also accept the other plausible
/// shapes (bare settings, `settings.isActive` only, a `childCount`), all decided here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveObject {
    /// The connection key, then the names below it; empty when the answer omits it.
    #[serde(default)]
    pub object_path: Vec<String>,
    #[serde(default)]
    pub technology: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// The settings set on this object itself rather than inherited (documented as an object;
    /// its fields were not captured, so it is kept as Immuta sent it).
    #[serde(default)]
    pub overrides: Option<Value>,
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
        state_is_active(self.state.as_deref()).or_else(|| self.setting("isActive").and_then(Value::as_bool))
    }

    /// Whether objects found below it later start active (`settings.activateNewChildren`,
    /// wrapped or bare).
    pub fn activate_new_children(&self) -> Option<bool> {
        self.setting("activateNewChildren").and_then(Value::as_bool)
    }

    /// Whether some object below it has a setting of its own (set by a person, or by an
    /// earlier change) that a change here would override. The docs show the flag on
    /// `activateNewChildren`; the status' flag may sit on `isActive`: true when ANY wrapped
    /// setting says so.
    pub fn has_descendants_with_overrides(&self) -> bool {
        self.settings.values().any(|v| {
            v.get("hasDescendantsWithOverrides")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
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
    /// The technology, as `GET /integrations` names it (`Snowflake`, `Databricks`, …).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
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

    /// The hit's status, when the listing says (`state`: `active` | `inactive`).
    pub fn is_active(&self) -> Option<bool> {
        state_is_active(self.state.as_deref())
    }
}

/// An object's documented `state` (`active` | `inactive`, any case) as a status; `None` for
/// anything else. The one reading of `state`, for objects and listing hits alike.
fn state_is_active(state: Option<&str>) -> Option<bool> {
    match state.map(str::to_ascii_lowercase).as_deref() {
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        _ => None,
    }
}

/// One page of `POST /data/object/search`. The answer is undocumented, so each plausible
/// shape is accepted, all decided here:
///
/// - a bare array of hits;
/// - an object with the hits under `hits`, `results` or `data` (the first present), and the
///   total under `count` or `total` (optional).
///
/// Any other shape, and a hit without an object path, is an error: an answer that cannot be
/// read must never look like an empty tenant.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<ObjectHit>,
    /// The number of connections in the whole listing, when the answer says.
    pub total: Option<usize>,
}

/// The envelope keys a search answer may hold its hits under, in order of preference.
pub const SEARCH_ENVELOPES: [&str; 3] = ["hits", "results", "data"];

impl SearchPage {
    pub fn from_value(value: Value) -> Result<SearchPage, String> {
        let (items, total) = match value {
            Value::Array(items) => (items, None),
            Value::Object(mut obj) => {
                let Some(items) = SEARCH_ENVELOPES.iter().find_map(|k| obj.remove(*k)) else {
                    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
                    return Err(format!(
                        "it holds no list of connections (expected an array, or one of `hits`, `results`, `data`; got keys {keys:?})"
                    ));
                };
                let Value::Array(items) = items else {
                    return Err("its list of connections is not an array".into());
                };
                let total = match ["count", "total"].iter().find_map(|k| obj.get(*k)) {
                    None | Some(Value::Null) => None,
                    Some(n) => Some(
                        n.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or("its `count`/`total` is not a non-negative integer")?,
                    ),
                };
                (items, total)
            }
            _ => return Err("it is neither an array nor an object".into()),
        };
        let hits = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let hit: ObjectHit = serde_json::from_value(item)
                    .map_err(|e| format!("hit {i} is not a data object ({e})"))?;
                if hit.key().is_none_or(str::is_empty) {
                    return Err(format!("hit {i} has no `objectPath`"));
                }
                Ok(hit)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(SearchPage { hits, total })
    }

    pub(crate) fn from_response(resp: &Response) -> Result<SearchPage, ApiError> {
        SearchPage::from_value(resp.json_value()?).map_err(|problem| resp.unexpected(problem))
    }
}

/// One job of a bulk request.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    #[serde(default, deserialize_with = "id_string")]
    pub id: Option<String>,
    pub state: JobState,
}

impl Job {
    pub fn is_terminal(&self) -> bool {
        self.state.is_terminal()
    }
}

/// A job's `state`, as documented: `created`, `active`, `retry` (still running), `completed`,
/// and the ends that did not complete the work, `failed`, `cancelled`, `expired`. A state the
/// docs do not name is kept as read and counts as still running.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum JobState {
    Created,
    Active,
    Retry,
    Completed,
    Failed,
    Cancelled,
    Expired,
    Other(String),
}

impl JobState {
    /// The job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled | JobState::Expired
        )
    }

    /// The job ended without doing its work: failed, cancelled or expired. A write awaited
    /// through such a job is not done.
    pub fn is_unsuccessful(&self) -> bool {
        matches!(self, JobState::Failed | JobState::Cancelled | JobState::Expired)
    }

    pub fn as_str(&self) -> &str {
        match self {
            JobState::Created => "created",
            JobState::Active => "active",
            JobState::Retry => "retry",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Expired => "expired",
            JobState::Other(s) => s,
        }
    }
}

impl From<String> for JobState {
    fn from(s: String) -> JobState {
        match s.to_ascii_lowercase().as_str() {
            "created" => JobState::Created,
            "active" => JobState::Active,
            "retry" => JobState::Retry,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" | "canceled" => JobState::Cancelled,
            "expired" => JobState::Expired,
            _ => JobState::Other(s),
        }
    }
}

impl From<&str> for JobState {
    fn from(s: &str) -> JobState {
        JobState::from(s.to_owned())
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The jobs of `GET /jobs?bulkId=`. The answer's shape is undocumented, so each plausible one
/// is accepted, all decided here:
///
/// - a bare array of jobs;
/// - an object keyed by job id (the documented shape of `POST /jobs/statuses`), each value a
///   job (its `id` defaults to the key);
/// - an envelope with the array under `jobs`, `hits`, `data` or `results`.
///
/// Anything else (including a job without a `state`) is an error, never "no jobs".
pub fn jobs_from(value: Value) -> Result<Vec<Job>, String> {
    const ENVELOPES: [&str; 4] = ["jobs", "hits", "data", "results"];
    let parse = |v: Value, what: &str| -> Result<Job, String> {
        serde_json::from_value(v).map_err(|e| format!("{what} is not a job ({e})"))
    };
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse(v, &format!("item {i}")))
            .collect(),
        Value::Object(mut obj) => {
            if let Some(items) = ENVELOPES.iter().find_map(|k| obj.remove(*k)) {
                return match items {
                    Value::Array(_) => jobs_from(items),
                    _ => Err("its list of jobs is not an array".into()),
                };
            }
            obj.into_iter()
                .map(|(id, v)| {
                    if !v.is_object() {
                        return Err(format!(
                            "it is neither an array of jobs, an envelope (`jobs`, `hits`, `data`, `results`) nor an object keyed by job id (`{id}` is not a job)"
                        ));
                    }
                    let mut job = parse(v, &format!("job `{id}`"))?;
                    job.id.get_or_insert(id);
                    Ok(job)
                })
                .collect()
        }
        _ => Err("it is neither an array nor an object".into()),
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
mod tests;
