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

/// A hit of `POST /data/object/search`.
pub fn hit_json(c: &Connection) -> Value {
    json!({"objectPath": [c.key], "technology": c.tech.as_str(), "state": objects::render::state_name(c.settings.is_active)})
}
