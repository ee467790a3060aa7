//! connctl-spec: the desired state. Reads connection YAML files, validates them strictly with
//! `file:line:col` diagnostics, and holds secret *references* (never values).
//!
//! Entry points: [`load`] (files and directories → [`Desired`] or a [`Report`] of every
//! problem), [`check_secrets`] (does every reference resolve?), [`json_schema`], and
//! [`redact`] (removes every secret value of the run from text that leaves the process).

mod check;
mod common;
pub mod databricks;
mod defaults;
pub mod diagnostic;
mod emit;
mod load;
mod merge;
pub mod model;
pub mod objects;
pub mod provider;
mod purpose;
pub mod redact;
pub mod retry;
mod schema;
pub mod secret;
mod secrets;
pub mod snowflake;
pub mod suggest;
mod validate;
pub mod vars;
mod yaml;

pub use common::{
    DEFAULT_PORT, ExecutorKind, Options, OptionsSpec, Origin, RESERVED_KEYS, Settings, SettingsSpec, Toggle,
};
pub use databricks::{
    DATABRICKS_DEFAULT_SCOPE, DATABRICKS_TOKEN_AUTH_TYPE, Databricks, DatabricksAuth, DatabricksSpec,
    GroupPattern, JobConfig,
};
pub use defaults::render;
pub use diagnostic::{Diagnostic, Report, Severity};
pub use load::{LoadOptions, MAX_SPEC_FILE_BYTES, load, load_with, load_with_warnings};
pub use merge::{DEFAULT_FORCE_RECURSIVE_CRAWL, DEFAULT_IS_ACTIVE};
pub use model::*;
pub use objects::{MAX_OBJECT_DEPTH, ObjectPath, ObjectPathError, ObjectSpec};
pub use purpose::Purpose;
pub use redact::redact;
pub use schema::{json_schema, json_schema_text};
pub use secret::{MAX_SECRET_FILE_BYTES, Secret, SecretError, SecretRef};
pub use secrets::check_secrets;
pub use snowflake::{OAuthCredential, Snowflake, SnowflakeAuth, SnowflakeSpec, UserRolePattern};
pub use validate::is_secret_field;
pub use vars::Vars;
