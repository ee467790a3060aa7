//! The Immuta REST surface: shared JSON renderings of stored objects; the endpoints live in the
//! submodules (connections, objects/settings/crawl, integrations and their scripts, jobs).

pub mod connections;
pub mod integrations;
pub mod jobs;
pub mod objects;
pub mod shapes;

use serde_json::{Value, json};

use crate::store::{Connection, Integration, timestamp};
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

fn state_of(c: &Connection) -> &'static str {
    if c.settings.is_active {
        "active"
    } else {
        "inactive"
    }
}

/// `GET /data/object/{key}` shape.
pub fn object_json(c: &Connection) -> Value {
    let setting = |v: bool| json!({"value": v, "hasDescendantsWithOverrides": false});
    json!({
        "objectPath": [c.key],
        "technology": c.tech.as_str(),
        "state": state_of(c),
        "settings": {
            "isActive": setting(c.settings.is_active),
            "activateNewChildren": setting(c.settings.activate_new_children),
        },
        "options": {"forceRecursiveCrawl": c.settings.force_recursive_crawl},
    })
}

/// A hit of `POST /data/object/search`.
pub fn hit_json(c: &Connection) -> Value {
    json!({"objectPath": [c.key], "technology": c.tech.as_str(), "state": state_of(c)})
}
