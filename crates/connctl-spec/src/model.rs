//! The typed desired state: what one YAML file says, and what a connection is once
//! `defaults:` have been merged under it.
//!
//! Field names follow Immuta's own payload names (camelCase) so that a user can map the YAML
//! onto Immuta's documentation one to one. The same types generate the JSON Schema
//! (`connctl schema`), so the schema can never disagree with what the loader accepts.
//!
//! This module holds what every connection has and the dispatch to the technologies; what a
//! technology has of its own lives in its module ([`crate::snowflake`], [`crate::databricks`]).
//! Adding a technology means a variant of [`ConnectionSpec`], [`Platform`] and [`Technology`];
//! the compiler then points at every match left to extend.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::{ExecutorKind, Options, OptionsSpec, Origin, Settings, SettingsSpec};
use crate::databricks::{Databricks, DatabricksSpec};
use crate::diagnostic::Report;
use crate::secret::SecretRef;
use crate::snowflake::{Snowflake, SnowflakeSpec};

/// The only spec format version this build understands.
pub const SPEC_VERSION: u32 = 1;

/// One YAML file as written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "connctl connections file")]
pub struct SpecFile {
    /// Spec format version. Must be `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// Values merged under every connection of this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Defaults>,
    /// The connections this file declares.
    #[serde(default)]
    pub connections: Vec<ConnectionSpec>,
}

/// Values merged under every connection of the file; a connection's own value wins.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Defaults {
    /// Default `settings` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsSpec>,
    /// Default `options` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsSpec>,
    /// Default `protect` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect: Option<bool>,
    /// Default `executor` of every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
}

/// One connection as written, tagged by `technology`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "technology")]
pub enum ConnectionSpec {
    /// A Snowflake account.
    Snowflake(SnowflakeSpec),
    /// A Databricks Unity Catalog metastore, reached through a workspace.
    Databricks(DatabricksSpec),
}

/// A connection after loading and validation, with `defaults:` merged and every default applied.
#[derive(Debug, Clone)]
pub struct Connection {
    pub key: String,
    pub origin: Origin,
    pub protect: bool,
    /// Executor chosen in the spec, if any (`connctl.toml` decides otherwise).
    pub executor: Option<ExecutorKind>,
    pub settings: Settings,
    pub options: Options,
    /// The data objects below the connection connctl manages, parents before children
    /// (validation guarantees the order and unique paths).
    pub objects: Vec<crate::objects::ObjectSpec>,
    pub platform: Platform,
}

/// The technology-specific part of a validated connection.
#[derive(Debug, Clone)]
pub enum Platform {
    Snowflake(Snowflake),
    Databricks(Databricks),
}

/// The technology names Immuta uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Technology {
    Snowflake,
    Databricks,
}

impl Technology {
    /// Every technology, in the order messages list them. A test checks it against
    /// [`ConnectionSpec`].
    pub const ALL: [Technology; 2] = [Technology::Snowflake, Technology::Databricks];

    /// The name Immuta and the YAML use (`Snowflake`).
    pub fn as_str(self) -> &'static str {
        match self {
            Technology::Snowflake => "Snowflake",
            Technology::Databricks => "Databricks",
        }
    }

    /// The technology Immuta or a YAML file names, exactly as spelt.
    pub fn from_name(name: &str) -> Option<Technology> {
        Technology::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The lower-case name `connctl.toml` uses for the technology's executor table
    /// (`[executor.snowflake]`).
    pub fn config_name(self) -> &'static str {
        match self {
            Technology::Snowflake => "snowflake",
            Technology::Databricks => "databricks",
        }
    }
}

impl std::fmt::Display for Technology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Technology> for String {
    fn from(t: Technology) -> String {
        t.as_str().to_owned()
    }
}

/// A connection as field paths of its YAML (`warehouse`, `auth.password`, `audit.enabled`, …)
/// → values. Secret fields hold whatever the caller records for them (a fingerprint).
pub type FieldMap = BTreeMap<String, Value>;

impl Connection {
    pub fn technology(&self) -> Technology {
        match self.platform {
            Platform::Snowflake(_) => Technology::Snowflake,
            Platform::Databricks(_) => Technology::Databricks,
        }
    }

    /// Every secret reference of this connection, with its field path in the YAML
    /// (`auth.password`, …), in a stable order.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        let mut refs = Vec::new();
        match &self.platform {
            Platform::Snowflake(sf) => sf.secret_refs(&mut refs),
            Platform::Databricks(db) => db.secret_refs(&mut refs),
        }
        refs
    }

    /// This connection as a [`FieldMap`], every default applied. `secret` gives the value
    /// recorded for a secret field (called with its path); its error ends the walk.
    pub fn fields<E>(
        &self,
        secret: &dyn Fn(&'static str, &SecretRef) -> Result<Value, E>,
    ) -> Result<FieldMap, E> {
        let mut m = FieldMap::new();
        m.insert("technology".into(), json!(self.technology().as_str()));
        m.insert("protect".into(), json!(self.protect));
        m.insert("settings.isActive".into(), json!(self.settings.is_active));
        if let Some(v) = self.settings.activate_new_children {
            m.insert("settings.activateNewChildren".into(), json!(v));
        }
        m.insert(
            "options.forceRecursiveCrawl".into(),
            json!(self.options.force_recursive_crawl),
        );
        match &self.platform {
            Platform::Snowflake(sf) => sf.fields(&mut m, secret)?,
            Platform::Databricks(db) => db.fields(&mut m, secret)?,
        }
        Ok(m)
    }
}

/// Everything loaded from the paths given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// The YAML files read, in the order read.
    pub files: Vec<PathBuf>,
    /// Connections in file order, then declaration order. Keys are unique.
    pub connections: Vec<Connection>,
}

impl Desired {
    pub fn get(&self, key: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.key == key)
    }

    /// Rules across connections of one technology (Snowflake: one integration per host).
    pub(crate) fn check_across(&self, report: &mut Report) {
        let snowflake = self.connections.iter().filter_map(|c| match &c.platform {
            Platform::Snowflake(sf) => Some((c.key.as_str(), &c.origin, sf)),
            Platform::Databricks(_) => None,
        });
        crate::snowflake::one_integration_per_host(snowflake, report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Technology::ALL` lists exactly the technologies a connection can be written with.
    #[test]
    fn all_technologies_are_listed() {
        let schema = serde_json::to_value(schemars::schema_for!(ConnectionSpec)).expect("schema");
        let mut tags: Vec<String> = schema["oneOf"]
            .as_array()
            .expect("oneOf")
            .iter()
            .map(|v| {
                v["properties"]["technology"]["const"]
                    .as_str()
                    .expect("tag")
                    .to_owned()
            })
            .collect();
        tags.sort();
        let mut all: Vec<String> = Technology::ALL.iter().map(|t| t.to_string()).collect();
        all.sort();
        assert_eq!(tags, all);
        for t in Technology::ALL {
            assert_eq!(Technology::from_name(t.as_str()), Some(t));
            assert_eq!(t.config_name(), t.as_str().to_lowercase());
        }
        assert_eq!(Technology::from_name("snowflake"), None);
    }
}
