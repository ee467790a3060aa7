//! The Immuta REST surface: shared JSON renderings of stored objects; the endpoints live in the
//! submodules (connections, objects/settings/crawl, integrations and their scripts, jobs).

pub mod connections;
pub mod integrations;
pub mod jobs;
pub mod objects;
pub mod shapes;

use serde_json::{Value, json};

use crate::store::{Child, Connection, Integration, timestamp};
use crate::validate::strip_secrets;

/// The user every emulated change is attributed to.
pub fn user() -> Value {
    json!({"id": 2, "name": "Emulator Admin", "email": "admin@emulator.invalid"})
}

/// `GET /integrations/{id}` shape; secrets removed.
pub fn integration_json(i: &Integration) -> Value {
    json!({
        "id": i.id.to_string(),
        "status": i.status,
        "type": i.tech.as_str(),
        "autoBootstrap": false,
        "config": strip_secrets(&i.config),
    })
}

/// `GET /data/connection/{key}` shape; secrets removed.
pub fn connection_json(c: &Connection) -> Value {
    json!({
        "connectionKey": c.key,
        "connection": strip_secrets(&c.connection),
        "createdAt": timestamp(c.created_ms),
        "createdBy": 2,
        "updatedAt": timestamp(c.updated_ms),
        "updatedBy": 2,
        "creator": user(),
        "updater": user(),
        "nativeIntegrationId": c.integration_id,
    })
}

fn state_name(active: bool) -> &'static str {
    if active { "active" } else { "inactive" }
}

fn setting(v: &Value) -> Value {
    json!({"value": v, "hasDescendantsWithOverrides": false})
}

/// `GET /data/object/{key}` shape, as Immuta documents it: the status is the top-level `state`
/// (there is no `settings.isActive`), and each setting is wrapped as
/// `{value, hasDescendantsWithOverrides}`. No `childCount`: the documented example has none, so
/// clients count children with `POST /data/object/search/{key}`.
pub fn object_json(c: &Connection) -> Value {
    let mut settings = serde_json::Map::new();
    settings.insert(
        "activateNewChildren".into(),
        setting(&json!(c.settings.activate_new_children)),
    );
    for (k, v) in &c.settings.extra {
        settings.insert(k.clone(), setting(v));
    }
    json!({
        "objectPath": [c.key],
        "technology": c.tech.as_str(),
        "state": state_name(c.settings.is_active),
        "settings": settings,
    })
}

/// `GET /data/object/{key}/{…}` shape of a child object.
pub fn child_json(c: &Connection, child: &Child) -> Value {
    let mut path = vec![c.key.clone()];
    path.extend(child.path.iter().cloned());
    json!({
        "objectPath": path,
        "technology": c.tech.as_str(),
        "state": state_name(child.active),
        "settings": {},
    })
}

/// A hit of `POST /data/object/search`.
pub fn hit_json(c: &Connection) -> Value {
    json!({"objectPath": [c.key], "technology": c.tech.as_str(), "state": state_name(c.settings.is_active)})
}
