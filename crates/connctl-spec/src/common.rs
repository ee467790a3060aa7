//! The parts of a connection every technology shares: `settings`, `options`, the executor
//! choice, toggles, origins, the key rules, and the defaults applied to them.
//!
//! A leaf of the crate's types: the technology modules ([`crate::snowflake`],
//! [`crate::databricks`]) and [`crate::model`] build on it, and it builds on none of them.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Words Immuta reserves as the first segment of an object path; a connection key may not be one.
pub const RESERVED_KEYS: &[&str] = &[
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

/// Port when none is given.
pub const DEFAULT_PORT: u16 = 443;

/// `{ enabled: bool }`, the shape of audit, workspaces, impersonation and lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// Whether the feature is on.
    pub enabled: bool,
}

/// Top-level `settings` of the registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SettingsSpec {
    /// Objects are active by default when created. Default `false` (recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// New children found by object sync are registered as active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_new_children: Option<bool>,
}

/// Top-level `options` of the registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OptionsSpec {
    /// Crawl inactive objects too. Default `true` (recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_recursive_crawl: Option<bool>,
}

/// How a setup script reaches the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Save the script for a person to run; the next `apply` checks and carries on.
    Manual,
    /// Pipe the script to a command configured in `connctl.toml`.
    Command,
    /// Snowflake SQL API v2.
    Snowflake,
    /// Databricks SQL Statement Execution API.
    Databricks,
}

impl ExecutorKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [ExecutorKind; 4] = [
        ExecutorKind::Manual,
        ExecutorKind::Command,
        ExecutorKind::Snowflake,
        ExecutorKind::Databricks,
    ];

    /// The name a spec and `connctl.toml` use (`kind = "command"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Manual => "manual",
            ExecutorKind::Command => "command",
            ExecutorKind::Snowflake => "snowflake",
            ExecutorKind::Databricks => "databricks",
        }
    }

    /// The kind a name stands for.
    pub fn from_name(name: &str) -> Option<ExecutorKind> {
        ExecutorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields every connection has as written, whatever its technology.
pub(crate) struct CommonSpec {
    pub key: String,
    pub protect: Option<bool>,
    pub executor: Option<ExecutorKind>,
    pub settings: Option<SettingsSpec>,
    pub options: Option<OptionsSpec>,
    pub objects: Vec<crate::objects::ObjectSpec>,
}

/// Where a connection was declared: the file and the 1-based line and column of its entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Settings with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub is_active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activate_new_children: Option<bool>,
}

/// Options with defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    pub force_recursive_crawl: bool,
}

/// Schema transform for `key`: not one of Immuta's reserved words, in any case (JSON Schema
/// regexes have no case-insensitive flag, so each letter becomes a class).
pub(crate) fn not_reserved(schema: &mut schemars::Schema) {
    let words: Vec<String> = RESERVED_KEYS
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c))
                .collect()
        })
        .collect();
    schema.insert(
        "not".into(),
        serde_json::json!({ "pattern": format!("^({})$", words.join("|")) }),
    );
}
