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
