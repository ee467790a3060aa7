//! connctl-spec: the desired state. Reads connection YAML files, validates them strictly with
//! `file:line:col` diagnostics, and holds secret *references* (never values).
//!
//! Entry points: [`load`] (files and directories → [`Desired`] or a [`Report`] of every
//! problem), [`check_secrets`] (does every reference resolve?), [`json_schema`], and
//! [`redact`] (removes every secret value of the run from text that leaves the process).

mod check;
pub mod diagnostic;
mod emit;
mod load;
mod merge;
pub mod model;
pub mod provider;
pub mod redact;
pub mod retry;
mod schema;
pub mod secret;
mod secrets;
pub mod suggest;
mod validate;
pub mod vars;
mod yaml;

pub use check::RESERVED_KEYS;
pub use diagnostic::{Diagnostic, Report, Severity};
pub use load::{LoadOptions, MAX_SPEC_FILE_BYTES, load, load_with, load_with_warnings, render};
pub use merge::{DEFAULT_FORCE_RECURSIVE_CRAWL, DEFAULT_IS_ACTIVE, DEFAULT_PORT};
pub use model::*;
pub use redact::redact;
pub use schema::{json_schema, json_schema_text};
pub use secret::{MAX_SECRET_FILE_BYTES, Secret, SecretError, SecretRef};
pub use secrets::check_secrets;
pub use vars::Vars;
