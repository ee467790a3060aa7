//! `connctl schema`: prints the JSON Schema of the connection YAML.

use anyhow::Result;

pub(super) fn run() -> Result<u8> {
    print!("{}", connctl_spec::json_schema_text());
    Ok(0)
}
