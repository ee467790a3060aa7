//! `connctl.toml`: where Immuta is, how to find the API key, where the state is, parallelism
//! and the executor per technology. Flags and `IMMUTA_URL` / `IMMUTA_API_KEY` /
//! `CONNCTL_STATE` override it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use connctl_engine::backend::StateLocation;
use connctl_exec::ExecutorConfig;
use connctl_spec::{Secret, SecretRef};
use serde::Deserialize;

use crate::cli::CommonArgs;
use crate::error::Hinted;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub immuta: ImmutaSettings,
    #[serde(default)]
    pub state: StateSettings,
    #[serde(default)]
    pub apply: ApplySettings,
    /// Keyed by technology in lower case (`snowflake`, `databricks`: the default for that
    /// technology) or by kind (`command`: for connections that ask for it).
    #[serde(default)]
    pub executor: BTreeMap<String, ExecutorConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutaSettings {
    pub url: Option<String>,
    pub api_key: Option<SecretRef>,
    /// Per-request timeout in seconds (default 30).
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// A local state file.
    pub path: Option<PathBuf>,
    /// Or a state URL: `s3://…`, `gs://…`, `az://…`, `file://…`.
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplySettings {
    pub parallelism: Option<usize>,
}

pub const DEFAULT_STATE_PATH: &str = ".connctl/state.json";
pub const DEFAULT_PARALLELISM: usize = 8;

impl Settings {
    /// Reads `path`; a missing default file is an empty configuration, a missing explicit one
    /// is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Settings> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Settings::default()),
            Err(e) => return Err(anyhow!("cannot read settings file {}: {e}", path.display())),
        };
        let mut settings: Settings = toml::from_str(&text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
            anyhow!(
                "{}:{line}:{col}: {}",
                path.display(),
                settings_message(e.message())
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        // Relative paths in this file are taken from its folder, wherever connctl runs.
        settings.immuta.api_key = settings.immuta.api_key.map(|r| r.anchored(base));
        settings.state.path = settings
            .state
            .path
            .map(|p| if p.is_relative() { base.join(p) } else { p });
        if settings.state.path.is_some() && settings.state.url.is_some() {
            bail!(
                "{}: [state] has both `path` and `url`; keep one (`url` for a remote state)",
                path.display()
            );
        }
        // A plain path given as `url` is taken from this file's folder too.
        settings.state.url = settings.state.url.map(|u| {
            if !u.contains("://") && Path::new(&u).is_relative() {
                base.join(u).to_string_lossy().into_owned()
            } else {
                u
            }
        });
        for executor in settings.executor.values_mut() {
            executor.anchor(base);
        }
        for (name, executor) in &settings.executor {
            if !connctl_exec::is_executor_name(name) {
                bail!(
                    "{}: [executor.{name}]: unknown executor name; use [executor.snowflake], [executor.databricks] (per technology) or [executor.command] (for connections with `executor: command`)",
                    path.display()
                );
            }
            executor
                .validate()
                .map_err(|e| anyhow!("{}: [executor.{name}]: {e}", path.display()))?;
        }
        Ok(settings)
    }

    /// `--state` (or `CONNCTL_STATE`), else `[state] url` or `path`, else
    /// `.connctl/state.json`. A local path has its symlinks resolved, and is refused if it is
    /// no regular file or would be its own lock file.
    pub fn state_location(&self, flag: Option<&str>) -> Result<StateLocation> {
        let text = match (flag, &self.state.url, &self.state.path) {
            (Some(flag), _, _) => flag.to_owned(),
            (None, Some(url), _) => url.clone(),
            (None, None, Some(path)) => path.to_string_lossy().into_owned(),
            (None, None, None) => DEFAULT_STATE_PATH.to_owned(),
        };
        Ok(StateLocation::parse(&text)?)
    }

    pub fn parallelism(&self, args: &CommonArgs) -> usize {
        args.parallelism
            .or(self.apply.parallelism)
            .unwrap_or(DEFAULT_PARALLELISM)
            .max(1)
    }

    /// The Immuta URL and API key, from flags, environment, then this file.
    pub fn immuta(&self, args: &CommonArgs) -> Result<connctl_immuta::ClientConfig> {
        let url = args.immuta_url.clone().or_else(|| self.immuta.url.clone()).ok_or_else(|| {
            Hinted::new(
                "no Immuta URL",
                "set IMMUTA_URL, pass --immuta-url, or add `[immuta] url = \"https://…\"` to connctl.toml",
            )
        })?;
        let key = match std::env::var("IMMUTA_API_KEY") {
            Ok(k) if !k.is_empty() => Secret::new(k),
            _ => match &self.immuta.api_key {
                Some(reference) => reference.resolve().context("cannot read the Immuta API key")?,
                None => {
                    return Err(Hinted::new(
                        "no Immuta API key",
                        "set IMMUTA_API_KEY, or add `[immuta] api_key = { env = \"NAME\" }` (or { file = \"PATH\" }) to connctl.toml",
                    )
                    .into());
                }
            },
        };
        let mut config = connctl_immuta::ClientConfig::new(url, key);
        if let Some(t) = self.immuta.timeout_secs {
            config.timeout = std::time::Duration::from_secs(t);
        }
        Ok(config)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// The TOML error's message, except where it would repeat a literal written where a secret
/// reference belongs (serde says "unknown variant `<the value>`").
fn settings_message(message: &str) -> String {
    if message.contains("expected `env` or `file`") {
        return "a secret must be a reference, never the value itself: { env = \"NAME\" } or { file = \"PATH\" }"
            .into();
    }
    message.to_owned()
}
