//! The JSON Schema of a connctl file, generated from the serde types of [`crate::model`] so
//! editors complete and check the YAML with the same rules the loader applies.
//! `docs/connctl.schema.json` is this output (`make schema`); a test keeps it current.

use crate::model::SpecFile;

/// The JSON Schema (draft 2020-12) of one connctl YAML file.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(SpecFile);
    schema.to_value()
}

/// The text of `docs/connctl.schema.json`: pretty JSON and a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// `key`: not one of Immuta's reserved words, in any case (JSON Schema regexes have no
/// case-insensitive flag, so each letter becomes a class).
pub(crate) fn not_reserved(schema: &mut schemars::Schema) {
    let words: Vec<String> = crate::check::RESERVED_KEYS
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

/// Snowflake OAuth: exactly one credential, a client secret or a certificate.
pub(crate) fn one_oauth_credential(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([
            {
                "title": "client secret",
                "required": ["clientSecret"],
                "not": { "anyOf": [{ "required": ["publicCertificateThumbprint"] }, { "required": ["privateKey"] }] }
            },
            {
                "title": "certificate",
                "required": ["publicCertificateThumbprint", "privateKey"],
                "not": { "required": ["clientSecret"] }
            }
        ]),
    );
}
