//! An in-memory Immuta for the engine's unit tests: it keeps registered connections, records
//! every call in order, and can be told to fail a call or to lose its answer (the call takes
//! effect, the caller sees an outcome-unknown error).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use connctl_immuta::{
    ApiError, Job, LiveConnection, LiveIntegration, LiveObject, ObjectHit, Registered, Script,
};
use serde_json::{Value, json};

use super::Immuta;

/// The calls the fake knows, as recorded in [`Fake::calls`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Call {
    ListConnections,
    GetConnection,
    GetObject,
    GetIntegration,
    CountChildren,
    CreateScript,
    EditScript,
    DeleteScript,
    TestConnection,
    Register,
    UpdateConnection,
    UpdateSettings,
    UpdateIntegration,
    DeleteObject,
    Jobs,
    GetDataObject,
    UpdateObjectSettings,
    CountObjectChildren,
}

/// What to do to the next call of a kind.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer with this HTTP status; nothing happens.
    Fail(u16),
    /// Do it, then lose the answer (the connection dropped after the request was sent).
    Lose,
}

/// One connection Immuta has.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The body it was registered (or last updated) with.
    pub body: Value,
    pub integration_id: String,
    pub settings: Value,
}

/// One data object: its status, `activateNewChildren`, and whether a person set it on the
/// object itself (an override, which a parent's status change clears).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeObject {
    pub active: bool,
    pub activate_new_children: bool,
    pub overridden: bool,
}

#[derive(Default)]
pub struct World {
    pub connections: BTreeMap<String, Registration>,
    /// Every call, in order, with its key or id.
    pub calls: Vec<(Call, String)>,
    faults: Vec<(Call, Fault)>,
    /// The state each bulk job reports.
    pub job_states: BTreeMap<String, String>,
    /// Data objects below the connections, by full path (key first).
    pub objects: BTreeMap<Vec<String>, FakeObject>,
    /// The body of each `PUT /data/settings/{path}` of an object, in order (path joined by `/`).
    pub object_puts: Vec<(String, Value)>,
    next: u64,
}

#[derive(Clone, Default)]
pub struct Fake(Arc<Mutex<World>>);

impl Fake {
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().expect("fake lock")
    }

    /// A connection Immuta already has, registered with `body`.
    pub fn seed(&self, key: &str, integration_id: &str) {
        self.world().connections.insert(
            key.to_owned(),
            Registration {
                body: json!({ "connectionKey": key }),
                integration_id: integration_id.to_owned(),
                settings: json!({}),
            },
        );
    }

    /// Data objects at `paths` (key first), inactive and not overridden.
    pub fn seed_objects(&self, paths: &[&[&str]]) {
        let mut w = self.world();
        for p in paths {
            let path: Vec<String> = p.iter().map(|s| (*s).to_owned()).collect();
            w.objects.insert(path, FakeObject::default());
        }
    }

    /// A person changes an object in Immuta's UI: an override, the status cascading below.
    pub fn set_object(&self, path: &[&str], active: bool) {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        let mut w = self.world();
        set_status(&mut w.objects, &path, active);
        if let Some(o) = w.objects.get_mut(&path) {
            o.overridden = true;
        }
    }

    pub fn object(&self, path: &[&str]) -> Option<FakeObject> {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.world().objects.get(&path).copied()
    }

    /// The next call of `call` meets `fault` (faults of one kind queue up).
    pub fn fault(&self, call: Call, fault: Fault) {
        self.world().faults.push((call, fault));
    }

    /// The calls made, in order.
    pub fn calls(&self) -> Vec<(Call, String)> {
        self.world().calls.clone()
    }

    /// How many times `call` was made.
    pub fn count(&self, call: Call) -> usize {
        self.world().calls.iter().filter(|(c, _)| *c == call).count()
    }

    /// Records the call and takes its fault, if one is queued.
    fn enter(&self, call: Call, arg: &str) -> Option<Fault> {
        let mut w = self.world();
        w.calls.push((call, arg.to_owned()));
        let i = w.faults.iter().position(|(c, _)| *c == call)?;
        Some(w.faults.remove(i).1)
    }

    fn id(&self, prefix: &str) -> String {
        let mut w = self.world();
        w.next += 1;
        format!("{prefix}-{}", w.next)
    }
}

fn status(call: Call, code: u16) -> ApiError {
    ApiError::Status {
        method: "FAKE".into(),
        path: format!("{call:?}"),
        status: code,
        message: "fault injected".into(),
        retry_after: None,
    }
}

fn lost(call: Call) -> ApiError {
    ApiError::Unreachable {
        method: "FAKE".into(),
        path: format!("{call:?}"),
        base: "fake".into(),
        reason: "connection reset after the request was sent".into(),
        sent: true,
    }
}

/// Runs `effect` unless the fault says to fail first; a lost answer runs it and errs.
fn answer<T>(fault: Option<Fault>, call: Call, effect: impl FnOnce() -> T) -> Result<T, ApiError> {
    match fault {
        Some(Fault::Fail(code)) => Err(status(call, code)),
        Some(Fault::Lose) => {
            effect();
            Err(lost(call))
        }
        None => Ok(effect()),
    }
}

fn key_of(body: &Value) -> String {
    body.get("connectionKey")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Sets the status of `path` and of every object below it, clearing their overrides.
fn set_status(objects: &mut BTreeMap<Vec<String>, FakeObject>, path: &[String], active: bool) {
    for (p, o) in objects.iter_mut() {
        if p.starts_with(path) {
            o.active = active;
            if p.len() > path.len() {
                o.overridden = false;
            }
        }
    }
}

fn script(sql: &str) -> Script {
    Script { sql: sql.to_owned() }
}

impl Immuta for Fake {
    async fn list_connections(
        &self,
        _expected: usize,
        _in_flight: usize,
    ) -> Result<Vec<ObjectHit>, ApiError> {
        let fault = self.enter(Call::ListConnections, "");
        let keys: Vec<String> = self.world().connections.keys().cloned().collect();
        answer(fault, Call::ListConnections, || {
            keys.into_iter()
                .map(|k| serde_json::from_value(json!({ "objectPath": [k] })).expect("hit"))
                .collect()
        })
    }

    async fn get_connection(&self, key: &str) -> Result<Option<LiveConnection>, ApiError> {
        let fault = self.enter(Call::GetConnection, key);
        let found = self.world().connections.get(key).cloned();
        answer(fault, Call::GetConnection, || {
            found.map(|r| {
                serde_json::from_value(json!({
                    "connectionKey": key,
                    "connection": r.body.get("connection").cloned().unwrap_or(json!({})),
                    "nativeIntegrationId": r.integration_id,
                }))
                .expect("connection")
            })
        })
    }

    async fn get_object(&self, key: &str) -> Result<Option<LiveObject>, ApiError> {
        let fault = self.enter(Call::GetObject, key);
        let found = self.world().connections.get(key).cloned();
        answer(fault, Call::GetObject, || {
            found.map(|r| serde_json::from_value(json!({ "settings": r.settings })).expect("object"))
        })
    }

    async fn get_integration(&self, id: &str) -> Result<Option<LiveIntegration>, ApiError> {
        let fault = self.enter(Call::GetIntegration, id);
        let known = self.world().connections.values().any(|r| r.integration_id == id);
        answer(fault, Call::GetIntegration, || {
            known.then(|| {
                serde_json::from_value(json!({ "id": id, "status": "enabled" })).expect("integration")
            })
        })
    }

    async fn count_children(&self, key: &str) -> Result<Option<u64>, ApiError> {
        let fault = self.enter(Call::CountChildren, key);
        answer(fault, Call::CountChildren, || Some(3))
    }

    async fn create_script(&self, body: &Value) -> Result<Script, ApiError> {
        let fault = self.enter(Call::CreateScript, &key_of(body));
        answer(fault, Call::CreateScript, || script("CREATE ROLE IMMUTA;"))
    }

    async fn edit_script(&self, integration_id: &str, _body: &Value) -> Result<Script, ApiError> {
        let fault = self.enter(Call::EditScript, integration_id);
        answer(fault, Call::EditScript, || script("ALTER ROLE IMMUTA;"))
    }

    async fn delete_script(&self, integration_id: &str) -> Result<Script, ApiError> {
        let fault = self.enter(Call::DeleteScript, integration_id);
        answer(fault, Call::DeleteScript, || script("DROP ROLE IMMUTA;"))
    }

    async fn test_connection(&self, registration: &Value) -> Result<(), ApiError> {
        let fault = self.enter(Call::TestConnection, &key_of(registration));
        answer(fault, Call::TestConnection, || ())
    }

    async fn register(&self, registration: &Value) -> Result<Registered, ApiError> {
        let key = key_of(registration);
        let fault = self.enter(Call::Register, &key);
        if self.world().connections.contains_key(&key) && fault.is_none() {
            return Err(status(Call::Register, 409));
        }
        let (bulk, integration) = (self.id("bulk"), self.id("integration"));
        answer(fault, Call::Register, || {
            self.world().connections.insert(
                key.clone(),
                Registration {
                    body: registration.clone(),
                    integration_id: integration,
                    settings: registration.get("settings").cloned().unwrap_or(json!({})),
                },
            );
            Registered {
                object_path: vec![key.clone()],
                bulk_id: Some(bulk),
            }
        })
    }

    async fn update_connection(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        let fault = self.enter(Call::UpdateConnection, key);
        let bulk = self.id("bulk");
        answer(fault, Call::UpdateConnection, || {
            if let Some(r) = self.world().connections.get_mut(key) {
                r.body = body.clone();
            }
            Some(bulk)
        })
    }

    async fn update_settings(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        let fault = self.enter(Call::UpdateSettings, key);
        let bulk = self.id("bulk");
        answer(fault, Call::UpdateSettings, || {
            if let Some(r) = self.world().connections.get_mut(key) {
                r.settings = body.get("settings").cloned().unwrap_or(json!({}));
            }
            Some(bulk)
        })
    }

    async fn update_integration(&self, id: &str, _body: &Value) -> Result<(), ApiError> {
        let fault = self.enter(Call::UpdateIntegration, id);
        answer(fault, Call::UpdateIntegration, || ())
    }

    async fn delete_object(&self, key: &str) -> Result<(), ApiError> {
        let fault = self.enter(Call::DeleteObject, key);
        answer(fault, Call::DeleteObject, || {
            self.world().connections.remove(key);
        })
    }

    async fn get_data_object(&self, path: &[String]) -> Result<Option<LiveObject>, ApiError> {
        let fault = self.enter(Call::GetDataObject, &path.join("/"));
        let w = self.world();
        let found = w.objects.get(path).copied();
        let overrides = w
            .objects
            .iter()
            .any(|(p, o)| p.len() > path.len() && p.starts_with(path) && o.overridden);
        drop(w);
        answer(fault, Call::GetDataObject, || {
            found.map(|o| {
                serde_json::from_value(json!({
                    "objectPath": path,
                    "state": if o.active { "active" } else { "inactive" },
                    "settings": {
                        "activateNewChildren": {"value": o.activate_new_children, "hasDescendantsWithOverrides": overrides},
                    },
                }))
                .expect("object")
            })
        })
    }

    async fn update_object_settings(
        &self,
        path: &[String],
        body: &Value,
    ) -> Result<Option<String>, ApiError> {
        let fault = self.enter(Call::UpdateObjectSettings, &path.join("/"));
        let bulk = self.id("bulk");
        if fault.is_none() && !self.world().objects.contains_key(path) {
            return Err(status(Call::UpdateObjectSettings, 404));
        }
        answer(fault, Call::UpdateObjectSettings, || {
            let mut w = self.world();
            w.object_puts.push((path.join("/"), body.clone()));
            let settings = body.get("settings");
            if let Some(active) = settings.and_then(|s| s.get("isActive")).and_then(Value::as_bool) {
                set_status(&mut w.objects, path, active);
            }
            if let Some(v) = settings
                .and_then(|s| s.get("activateNewChildren"))
                .and_then(Value::as_bool)
                && let Some(o) = w.objects.get_mut(path)
            {
                o.activate_new_children = v;
            }
            Some(bulk)
        })
    }

    async fn count_object_children(&self, path: &[String]) -> Result<Option<u64>, ApiError> {
        let fault = self.enter(Call::CountObjectChildren, &path.join("/"));
        let n = self
            .world()
            .objects
            .keys()
            .filter(|p| p.len() == path.len() + 1 && p.starts_with(path))
            .count() as u64;
        answer(fault, Call::CountObjectChildren, || Some(n))
    }

    async fn jobs(&self, bulk_id: &str) -> Result<Vec<Job>, ApiError> {
        let fault = self.enter(Call::Jobs, bulk_id);
        let state = self
            .world()
            .job_states
            .get(bulk_id)
            .cloned()
            .unwrap_or_else(|| "completed".into());
        answer(fault, Call::Jobs, || {
            vec![Job {
                id: Some(bulk_id.to_owned()),
                state: state.into(),
            }]
        })
    }
}
