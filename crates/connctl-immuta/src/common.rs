//! What the technology modules share, in both directions: the secret source and payload
//! sides payloads are built with, and the small helpers that read Immuta's JSON back. A leaf:
//! it uses no other module of the crate.

use connctl_spec::{FieldMap, SecretRef};
use serde_json::{Map, Value, json};

/// Supplies secret values while a payload is built. The real source resolves references;
/// snapshots and plans use a placeholder source, so a value never has to exist to be shown.
pub trait SecretSource {
    fn value(&self, reference: &SecretRef) -> String;
}

/// A source that writes `<secret env:NAME>` / `<secret file:PATH>` instead of values.
pub struct Placeholders;

impl SecretSource for Placeholders {
    fn value(&self, reference: &SecretRef) -> String {
        match reference {
            SecretRef::Env(name) => format!("<secret env:{name}>"),
            SecretRef::File(path) => format!(
                "<secret file:{}>",
                path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            ),
            SecretRef::Secret(reference) => format!("<secret {reference}>"),
        }
    }
}

/// Which payload a credential goes into; key material changes shape between them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `scripts/create` config: keys are plain PEM strings.
    Script,
    /// `connection`: keys are `{userFilename, content}`.
    Connection,
    /// `nativeIntegration.config`: like `connection`, plus `keyName` for the key pair.
    Native,
}

/// `SNOWFLAKE_PROD_PASSWORD` for key `snowflake-prod`, field `PASSWORD`.
pub(crate) fn placeholder(key: &str, field: &str) -> Value {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    name.push('_');
    name.push_str(field);
    json!({ "env": name })
}

/// A field Immuta shows, `None` when absent or `null`.
pub(crate) fn get(m: &Map<String, Value>, k: &str) -> Option<Value> {
    m.get(k).filter(|v| !v.is_null()).cloned()
}

/// Writes a field when there is a value.
pub(crate) fn put(out: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(v) = value {
        out.insert(name.into(), v);
    }
}

/// Copies a field Immuta shows when set: absent and `null` both read as "not set" (`null`).
pub(crate) fn copy(m: &mut FieldMap, from: Option<&Value>, to: &str) {
    m.insert(to.to_owned(), from.cloned().unwrap_or(Value::Null));
}

/// Copies a field only when Immuta returned a value for it (unknown otherwise).
pub(crate) fn seen(m: &mut FieldMap, from: Option<&Value>, to: &str) {
    if let Some(v) = from.filter(|v| !v.is_null()) {
        m.insert(to.to_owned(), v.clone());
    }
}
