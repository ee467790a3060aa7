//! The emulator's own reading of Immuta's documented field tables: it walks `serde_json::Value`
//! request bodies (never the client's structs), reports every problem with the field's path,
//! and maps the three payloads (scripts/create `config`, `connection`, `nativeIntegration`) onto
//! one canonical, flat form so "the same values under the names each payload uses" can be
//! compared (the mapping is tabled per field in `docs/yaml-reference.md`).

use std::collections::BTreeMap;

use serde_json::Value;

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

mod fields;
mod flat;
mod registration;
mod schema;
mod script;
#[cfg(test)]
mod tests;

pub use fields::{F, Ty, check};
use fields::{join, o, r, type_name};
pub use flat::{
    canon_script, describe_values, first_difference, flatten, identity, is_secret_path, strip_secrets,
    unflatten,
};
pub use registration::{
    Registration, Settings, check_connection, check_consistency, check_native, native_field, registration,
};
pub use schema::{auth_of, schema};
use schema::{tech_at, user_role_pattern};
pub use script::{ScriptRequest, check_key, script_request};

fn fail(errs: Vec<String>) -> ApiError {
    ApiError::bad_request(errs.join("; "))
}
