//! The environment side of [`Context`]: which connctl.toml environment a run uses, its YAML
//! variables and paths, where its tenant and state come from, and the guards around it (a
//! required `--env`, the state's recorded environment, protected environments).

use std::path::PathBuf;

use anyhow::{Result, bail};
use connctl_engine::backend::StateLocation;
use connctl_engine::state::State;

use super::Context;
use crate::cli::{CommonArgs, Global};
use crate::error::Hinted;

/// What the global flags say about the settings: the file, the environment, the variables.
#[derive(Debug, Clone)]
pub struct ConfigArgs {
    pub path: PathBuf,
    /// `--env` (explicit; `CONNCTL_ENV` is read by [`Context::new`]).
    pub environment: Option<String>,
    /// `--var NAME=VALUE`, in command-line order.
    pub vars: Vec<(String, String)>,
}

impl ConfigArgs {
    pub fn from_global(global: &Global) -> ConfigArgs {
        ConfigArgs {
            path: global.config.clone(),
            environment: global.environment.clone(),
            vars: global.vars.clone(),
        }
    }
}

impl Context {
    /// The selected environment's name.
    pub fn environment(&self) -> Option<&str> {
        self.settings.selected.as_ref().map(|s| s.name.as_str())
    }

    /// Stops a command that reaches Immuta or the state when connctl.toml defines
    /// environments and none is selected: which tenant is meant must never be a guess.
    pub fn require_environment(&self) -> Result<()> {
        if self.settings.environments.is_empty() || self.settings.selected.is_some() {
            return Ok(());
        }
        bail!(
            "{} defines environments ({}); choose one with --env NAME (or CONNCTL_ENV)",
            self.config.path.display(),
            self.settings.environment_names().join(", ")
        )
    }

    /// Every variable with its winning value: `[vars]` default < the environment's `vars` <
    /// `CONNCTL_VAR_NAME` < `--var NAME=VALUE`.
    pub fn vars(&self) -> connctl_spec::Vars {
        let mut values = self.settings.vars.clone();
        for (name, value) in std::env::vars() {
            if let Some(var) = name.strip_prefix("CONNCTL_VAR_")
                && !var.is_empty()
            {
                values.insert(var.to_owned(), value);
            }
        }
        for (name, value) in &self.config.vars {
            values.insert(name.clone(), value.clone());
        }
        connctl_spec::Vars {
            environment: self.environment().map(str::to_owned),
            values,
        }
    }

    /// How the YAML is read: the variables and the shared defaults of the environment.
    pub fn load_options(&self) -> connctl_spec::LoadOptions {
        connctl_spec::LoadOptions {
            vars: Some(self.vars()),
            shared_defaults: self.settings.defaults.clone(),
        }
    }

    /// `paths`, or the `paths` of connctl.toml (the environment's, else the top level's).
    pub fn spec_paths(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
        if !paths.is_empty() {
            return Ok(paths.to_vec());
        }
        if self.settings.paths.is_empty() {
            return Err(Hinted::new(
                "no YAML files given",
                format!(
                    "pass the YAML files or folders, or set `paths = [\"connections\"]` in {} (top level or [environments.NAME])",
                    self.config.path.display()
                ),
            )
            .into());
        }
        Ok(self.settings.paths.clone())
    }

    /// Once per run: logs (`-v`) where the Immuta URL and the state come from, and warns when
    /// `--immuta-url` / `IMMUTA_URL` sends the run to another tenant than the environment's.
    pub(super) fn announce(&self, args: &CommonArgs) {
        if self.announced.set(()).is_err() {
            return;
        }
        let selected = self.settings.selected.as_ref();
        let file = self.config.path.display();
        let url_source = match (&args.immuta_url, selected.and_then(|s| s.own_url.as_ref())) {
            (Some(url), _) if std::env::var("IMMUTA_URL").ok().as_ref() == Some(url) => {
                "IMMUTA_URL".to_owned()
            }
            (Some(_), _) => "--immuta-url".to_owned(),
            (None, Some(_)) => format!(
                "[environments.{}.immuta] in {file}",
                selected.map_or("", |s| s.name.as_str())
            ),
            (None, None) => format!("[immuta] in {file}"),
        };
        let state_source = if args.state.is_some() {
            if std::env::var("CONNCTL_STATE").ok() == args.state {
                "CONNCTL_STATE".to_owned()
            } else {
                "--state".to_owned()
            }
        } else {
            match selected {
                Some(s) if self.settings.state.path.is_some() || self.settings.state.url.is_some() => {
                    format!("[state] of {file} (or [environments.{}.state])", s.name)
                }
                _ if self.settings.state.path.is_some() || self.settings.state.url.is_some() => {
                    format!("[state] in {file}")
                }
                _ => "the default".to_owned(),
            }
        };
        let url = self.immuta_url(args).unwrap_or_else(|| "(none)".into());
        tracing::info!(
            "environment: {}; Immuta URL: {url} (from {url_source}); state: {} (from {state_source}); precedence: flags > CONNCTL_*/IMMUTA_* variables > the environment in {file} > its top level",
            selected.map_or("(none)", |s| s.name.as_str()),
            args.state
                .clone()
                .or_else(|| self.settings.state.url.clone())
                .or_else(|| self.settings.state.path.as_ref().map(|p| p.display().to_string()))
                .unwrap_or_else(|| crate::settings::DEFAULT_STATE_PATH.to_owned()),
        );
        if let (Some(s), Some(given)) = (selected, &args.immuta_url)
            && let Some(own) = &s.own_url
        {
            let (own, given) = (
                connctl_engine::state::normalise_tenant(own),
                connctl_engine::state::normalise_tenant(given),
            );
            if own != given {
                let message = format!(
                    "{url_source} ({given}) overrides the Immuta URL of environment `{}` ({own}); this run uses {given}",
                    s.name
                );
                crate::view::notice::warning(&message, None);
            }
        }
    }

    /// Refuses a state of another tenant or environment, and records both in one that has
    /// none yet (written with the next save).
    pub fn claim_state(&self, state: &mut State, args: &CommonArgs, location: &StateLocation) -> Result<()> {
        if let Some(url) = self.immuta_url(args) {
            state.claim_tenant(&url, &location.display_path())?;
        }
        if let Some(env) = self.environment() {
            state.claim_environment(env, &location.display_path())?;
        }
        Ok(())
    }

    /// Protected environments: apply goes on only with `--auto-approve` and an explicit
    /// `--env`, or once the environment's name is typed at the prompt. Returns whether the
    /// name was typed (which also counts as the approval).
    pub fn confirm_protected(&self, auto_approve: bool) -> Result<bool> {
        use std::io::{BufRead as _, IsTerminal as _, Write as _};
        let Some(selected) = self.settings.selected.as_ref().filter(|s| s.protected) else {
            return Ok(false);
        };
        let name = &selected.name;
        if auto_approve && self.env_explicit {
            return Ok(false);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "environment `{name}` is protected: apply it with `--env {name} --auto-approve` (the environment named on the command line, not only by CONNCTL_ENV), or type its name at the prompt; nothing was changed"
            );
        }
        let mut err = std::io::stderr();
        write!(
            err,
            "\nEnvironment `{name}` is protected. Type its name to apply: "
        )?;
        err.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != name {
            bail!(
                "apply cancelled: `{}` is not `{name}`; nothing was changed",
                answer.trim()
            );
        }
        Ok(true)
    }
}
