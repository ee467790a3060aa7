//! connctl-spec: the desired state. Reads connection YAML files, validates them strictly with
//! `file:line:col` diagnostics, and holds secret *references* (never values).

pub mod model;
pub mod secret;

pub use model::*;
pub use secret::{Secret, SecretError, SecretRef};
