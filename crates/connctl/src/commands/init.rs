//! `connctl init`: a starter `connections.yaml` and `connctl.toml` that validate as written.

use std::path::Path;

use anyhow::{Context, Result, bail};

const CONNECTIONS: &str = include_str!("../../templates/connections.yaml");
const SETTINGS: &str = include_str!("../../templates/connctl.toml");

pub fn run(dir: &Path) -> Result<u8> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [("connections.yaml", CONNECTIONS), ("connctl.toml", SETTINGS)];
    for (name, _) in files {
        let path = dir.join(name);
        if path.exists() {
            bail!(
                "{} already exists; connctl init never overwrites a file",
                path.display()
            );
        }
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    crate::view::notice::initialised(&written);
    Ok(0)
}
