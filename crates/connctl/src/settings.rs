//! `connctl.toml`: where Immuta is, how to find the API key, where the state is, parallelism,
//! the executor per technology, YAML variables, and `[environments.NAME]` sections that
//! override all of these per environment. Flags and `IMMUTA_URL` / `IMMUTA_API_KEY` /
//! `CONNCTL_STATE` override the file (docs/environments.md has the whole order).

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
    /// The YAML files or folders commands read when none are given.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// A connctl file whose `defaults:` every YAML file gets beneath its own.
    pub defaults: Option<PathBuf>,
    /// Declared YAML variables with their default values.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Environments by name; one is selected with `--env` / `CONNCTL_ENV`.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSettings>,
    /// Secret providers by name, for `{ secret: "<name>:<path>#<field>" }`.
    #[serde(default)]
    pub secrets: BTreeMap<String, connctl_spec::provider::ProviderConfig>,
    /// The selected environment, once [`Settings::select`] ran.
    #[serde(skip)]
    pub selected: Option<Selected>,
}

/// `[environments.NAME]`: the top-level sections again, each overriding the top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSettings {
    pub immuta: Option<ImmutaSettings>,
    pub state: Option<StateSettings>,
    pub apply: Option<ApplySettings>,
    #[serde(default)]
    pub executor: BTreeMap<String, ExecutorConfig>,
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    pub defaults: Option<PathBuf>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Providers replacing the top-level ones of the same name.
    #[serde(default)]
    pub secrets: BTreeMap<String, connctl_spec::provider::ProviderConfig>,
    /// Apply asks for the environment's name to be typed, or `--auto-approve` with `--env`.
    #[serde(default)]
    pub protected: bool,
}

/// The environment a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub protected: bool,
    /// The environment's own Immuta URL, if it sets one (to name an override of it).
    pub own_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImmutaSettings {
    pub url: Option<String>,
    pub api_key: Option<SecretRef>,
    /// Per-request timeout in seconds (default 30).
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// A local state file.
    pub path: Option<PathBuf>,
    /// Or a state URL: `s3://…`, `gs://…`, `az://…`, `file://…`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
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
        let file = path.display().to_string();
        anchor_sections(
            &mut settings.immuta,
            &mut settings.state,
            &mut settings.executor,
            base,
            &file,
            "",
        )?;
        anchor_paths(&mut settings.paths, &mut settings.defaults, base);
        let providers = settings.secrets.iter().map(|(n, p)| (String::new(), n, p)).chain(
            settings.environments.iter().flat_map(|(e, env)| {
                env.secrets
                    .iter()
                    .map(move |(n, p)| (format!("environments.{e}."), n, p))
            }),
        );
        for (prefix, name, provider) in providers {
            provider
                .validate()
                .map_err(|e| anyhow!("{file}: [{prefix}secrets.{name}]: {e}"))?;
        }
        for (name, env) in &mut settings.environments {
            let prefix = format!("environments.{name}.");
            let mut immuta = env.immuta.take().unwrap_or_default();
            let mut state = env.state.take().unwrap_or_default();
            anchor_sections(&mut immuta, &mut state, &mut env.executor, base, &file, &prefix)?;
            env.immuta = Some(immuta);
            env.state = Some(state);
            anchor_paths(&mut env.paths, &mut env.defaults, base);
            for var in env.vars.keys() {
                if !settings.vars.contains_key(var) {
                    return Err(Hinted::new(
                        format!("{file}: [environments.{name}.vars]: `{var}` is not declared in [vars]"),
                        format!("declare it with a default: `[vars] {var} = \"…\"` (a typo in an environment's vars would otherwise go unnoticed)"),
                    )
                    .into());
                }
            }
        }
        Ok(settings)
    }

    /// Makes `name` (if any) the environment of this run: its sections replace the top-level
    /// ones (`[immuta]` field by field, `[state]` whole, executors per name). An unknown name
    /// is an error listing the defined ones.
    pub fn select(&mut self, name: Option<&str>, file: &Path) -> Result<()> {
        let Some(name) = name else { return Ok(()) };
        let Some(env) = self.environments.get_mut(name) else {
            let names = self.environment_names();
            if names.is_empty() {
                bail!(
                    "environment `{name}` is not defined: {} has no [environments.*] sections",
                    file.display()
                );
            }
            let close = connctl_spec::suggest::closest(name, &names, 1);
            let hint = match close.first() {
                Some(c) => format!("did you mean `{c}`? "),
                None => String::new(),
            };
            return Err(Hinted::new(
                format!("environment `{name}` is not defined in {}", file.display()),
                format!("{hint}the environments are: {}", names.join(", ")),
            )
            .into());
        };
        let immuta = env.immuta.take().unwrap_or_default();
        let own_url = immuta.url.clone();
        self.immuta.url = immuta.url.or(self.immuta.url.take());
        self.immuta.api_key = immuta.api_key.or(self.immuta.api_key.take());
        self.immuta.timeout_secs = immuta.timeout_secs.or(self.immuta.timeout_secs);
        if let Some(state) = env.state.take()
            && (state.path.is_some() || state.url.is_some())
        {
            self.state = state;
        }
        if let Some(apply) = env.apply.take() {
            self.apply.parallelism = apply.parallelism.or(self.apply.parallelism);
        }
        self.executor.append(&mut env.executor);
        self.secrets.append(&mut env.secrets);
        if !env.paths.is_empty() {
            self.paths = std::mem::take(&mut env.paths);
        }
        if env.defaults.is_some() {
            self.defaults = env.defaults.take();
        }
        for (k, v) in std::mem::take(&mut env.vars) {
            self.vars.insert(k, v);
        }
        self.selected = Some(Selected {
            name: name.to_owned(),
            protected: env.protected,
            own_url,
        });
        Ok(())
    }

    pub fn environment_names(&self) -> Vec<&str> {
        self.environments.keys().map(String::as_str).collect()
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

/// Anchors the relative paths of one set of sections to `base` and checks them; `prefix` is
/// `environments.NAME.` for an environment's sections.
fn anchor_sections(
    immuta: &mut ImmutaSettings,
    state: &mut StateSettings,
    executors: &mut BTreeMap<String, ExecutorConfig>,
    base: &Path,
    file: &str,
    prefix: &str,
) -> Result<()> {
    immuta.api_key = immuta.api_key.take().map(|r| r.anchored(base));
    state.path = state
        .path
        .take()
        .map(|p| if p.is_relative() { base.join(p) } else { p });
    if state.path.is_some() && state.url.is_some() {
        bail!("{file}: [{prefix}state] has both `path` and `url`; keep one (`url` for a remote state)");
    }
    // A plain path given as `url` is taken from this file's folder too.
    state.url = state.url.take().map(|u| {
        if !u.contains("://") && Path::new(&u).is_relative() {
            base.join(u).to_string_lossy().into_owned()
        } else {
            u
        }
    });
    for executor in executors.values_mut() {
        executor.anchor(base);
    }
    for (name, executor) in executors.iter() {
        if !connctl_exec::is_executor_name(name) {
            bail!(
                "{file}: [{prefix}executor.{name}]: unknown executor name; use [executor.snowflake], [executor.databricks] (per technology) or [executor.command] (for connections with `executor: command`)"
            );
        }
        executor
            .validate()
            .map_err(|e| anyhow!("{file}: [{prefix}executor.{name}]: {e}"))?;
    }
    Ok(())
}

fn anchor_paths(paths: &mut [PathBuf], defaults: &mut Option<PathBuf>, base: &Path) {
    for p in paths.iter_mut().chain(defaults.iter_mut()) {
        if p.is_relative() {
            *p = base.join(&*p);
        }
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
    if message.contains("expected one of `env`, `file`") {
        return "a secret must be a reference, never the value itself: { env = \"NAME\" }, { file = \"PATH\" } or { secret = \"PROVIDER:PATH#FIELD\" }"
            .into();
    }
    message.to_owned()
}
