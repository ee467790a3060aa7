//! `connctl init`: a starter `connections.yaml` and `connctl.toml` that validate as written,
//! with `[environments.NAME]` sections when asked for.

use std::path::Path;

use anyhow::{Context, Result, bail};

const CONNECTIONS: &str = include_str!("../../templates/connections.yaml");
const SETTINGS: &str = include_str!("../../templates/connctl.toml");

pub fn run(dir: &Path, environments: &[String]) -> Result<u8> {
    for name in environments {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("`{name}` is not an environment name (letters, digits, - and _)");
        }
    }
    let settings = format!("{SETTINGS}{}", environment_sections(environments));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("connections.yaml", CONNECTIONS),
        ("connctl.toml", settings.as_str()),
    ];
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
    crate::view::notice::initialised(&written, environments.first().map(String::as_str));
    Ok(0)
}

/// `[environments.NAME]` for each name, each with its own tenant and state; `prod` and
/// `production` are protected.
fn environment_sections(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n# Environments (docs/environments.md): one YAML, one tenant and state each. Select one with\n\
         # --env NAME or CONNCTL_ENV; their sections override the ones above. `${var.NAME}` in the YAML\n\
         # takes [vars] defaults, overridden per environment with `vars = { NAME = \"…\" }`.\n",
    );
    for name in names {
        let protected = matches!(name.as_str(), "prod" | "production");
        out.push_str(&format!(
            "\n[environments.{name}]\n{}immuta = {{ url = \"https://{name}.your-tenant.hosted.immutacloud.com\" }}\nstate = {{ path = \".connctl/{name}/state.json\" }}\n",
            if protected {
                "protected = true                       # apply asks for the name, or --env NAME --auto-approve\n"
            } else {
                ""
            }
        ));
    }
    out
}
