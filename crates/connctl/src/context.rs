//! What most commands need before they do their own thing: the settings (with the selected
//! environment), the desired connections (variables expanded, loaded, validated,
//! fingerprinted), the state, and an Immuta client.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::bail;
use anyhow::{Context as _, Result};
use connctl_engine::apply::{Target, fingerprinted};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::plan::{self, Action, DesiredView, Plan, PlanOptions};
use connctl_engine::refresh;
use connctl_engine::state::State;
use connctl_immuta::ImmutaClient;
use connctl_spec::Desired;

use crate::Reported;
use crate::cli::{CommonArgs, Global, PlanArgs};
use crate::settings::Settings;

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

pub struct Context {
    pub settings: Settings,
    pub color: bool,
    /// The environment was named by `--env` on the command line (not only `CONNCTL_ENV`).
    pub env_explicit: bool,
    config: ConfigArgs,
    /// Set once the tenant and its sources were announced.
    announced: std::sync::OnceLock<()>,
}

impl Context {
    pub fn new(config: &ConfigArgs, color: bool) -> Result<Context> {
        let explicit = config.path != Path::new("connctl.toml");
        let mut settings = Settings::load(&config.path, explicit)?;
        let from_env = std::env::var("CONNCTL_ENV").ok().filter(|e| !e.is_empty());
        let name = config.environment.clone().or(from_env);
        settings.select(name.as_deref(), &config.path)?;
        let base = config.path.parent().unwrap_or(Path::new("."));
        connctl_spec::provider::install(settings.secrets.clone(), base);
        Ok(Context {
            settings,
            color,
            env_explicit: config.environment.is_some(),
            config: config.clone(),
            announced: std::sync::OnceLock::new(),
        })
    }

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
            bail!(
                "no YAML files given\n  = help: pass the YAML files or folders, or set `paths = [\"connections\"]` in {} (top level or [environments.NAME])",
                self.config.path.display()
            );
        }
        Ok(self.settings.paths.clone())
    }

    /// Loads and validates the YAML; on failure prints every diagnostic and exits 1.
    pub fn load_desired(&self, paths: &[PathBuf]) -> Result<Desired> {
        let paths = self.spec_paths(paths)?;
        match connctl_spec::load_with(&paths, &self.load_options()) {
            Ok((desired, warnings)) => {
                if !warnings.is_empty() {
                    eprint!("{}", warnings.render(self.color));
                }
                Ok(desired)
            }
            Err(report) => {
                eprint!("{}", report.render(self.color));
                let n = report.errors().count();
                eprintln!("error: {n} problem(s) found; nothing was planned, sent or written");
                Err(Reported(1).into())
            }
        }
    }

    pub fn client(&self, args: &CommonArgs) -> Result<ImmutaClient> {
        self.require_environment()?;
        self.announce(args);
        Ok(ImmutaClient::new(self.settings.immuta(args)?)?)
    }

    /// Once per run: logs (`-v`) where the Immuta URL and the state come from, and warns when
    /// `--immuta-url` / `IMMUTA_URL` sends the run to another tenant than the environment's.
    fn announce(&self, args: &CommonArgs) {
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
                eprintln!(
                    "warning: {url_source} ({given}) overrides the Immuta URL of environment `{}` ({own}); this run uses {given}",
                    s.name
                );
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

    /// The Immuta URL this run uses, if one is set (without needing the API key).
    pub fn immuta_url(&self, args: &CommonArgs) -> Option<String> {
        args.immuta_url
            .clone()
            .or_else(|| self.settings.immuta.url.clone())
    }

    /// Where the state is: `--state` / `CONNCTL_STATE`, else connctl.toml (the environment's
    /// `[state]`, else the top level's), else the default.
    pub fn state_location(&self, flag: Option<&str>) -> Result<StateLocation> {
        self.require_environment()?;
        self.settings.state_location(flag)
    }

    /// Reads the state (no lock: plan, drift and status never take one) and refuses a state
    /// written against another Immuta tenant.
    pub async fn read_state(&self, args: &CommonArgs) -> Result<(Loaded, StateLocation)> {
        let location = self.state_location(args.state.as_deref())?;
        self.announce(args);
        let loaded = location.load().await?;
        if let Some(url) = self.immuta_url(args) {
            loaded.state.check_tenant(&url, &location.display_path())?;
        }
        if let Some(env) = self.environment() {
            loaded.state.check_environment(env, &location.display_path())?;
        }
        Ok((loaded, location))
    }
}

/// Stops a run whose state is missing or empty while Immuta already has connections the YAML
/// declares (the plan would "import" them): the state is probably lost or points at the wrong
/// place, and going on would check and apply nothing.
pub fn refuse_lost_state(plan: &Plan, loaded: &Loaded, location: &StateLocation, allow: bool) -> Result<()> {
    if allow || !loaded.state.connections.is_empty() {
        return Ok(());
    }
    let found: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Import)
        .map(|c| c.key.as_str())
        .collect();
    lost_state(&found, loaded, location)
}

/// The error of [`refuse_lost_state`] for these keys found in Immuta (none: no error).
pub fn lost_state(found: &[&str], loaded: &Loaded, location: &StateLocation) -> Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = found.iter().take(5).copied().collect();
    let more = if found.len() > shown.len() {
        format!(" and {} more", found.len() - shown.len())
    } else {
        String::new()
    };
    bail!(
        "the state {location} is {}, but Immuta already has {} connection(s) of the YAML ({}{more}): the state is probably lost or points at the wrong place\n  = help: check --state / CONNCTL_STATE / [state] in connctl.toml (restore a lost state with `connctl state push BACKUP`)\n  = help: to adopt the connections that exist in Immuta: `connctl import PATHS --all` (or `--key 'GLOB'`)\n  = help: to go on with an empty state on purpose, pass --allow-empty-state",
        if loaded.found { "empty" } else { "missing" },
        found.len(),
        shown.join(", ")
    )
}

/// The desired connections fingerprinted under the state's salt (`no_secrets`: every secret
/// as [`plan::UNKNOWN_SECRET`], nothing resolved).
pub fn targets(desired: Desired, salt: &str, no_secrets: bool) -> Result<BTreeMap<String, Target>> {
    let mut out = BTreeMap::new();
    for conn in desired.connections {
        let fields = if no_secrets {
            connctl_engine::fields::desired(&conn, &|_| Ok(plan::UNKNOWN_SECRET.to_owned()))
        } else {
            fingerprinted(&conn, salt)
        }
        .with_context(|| {
            "a secret reference did not resolve (check it with `connctl validate --resolve-secrets`, or plan with --no-secrets)"
                .to_string()
        })?;
        out.insert(
            conn.key.clone(),
            Target {
                connection: conn,
                fields,
            },
        );
    }
    Ok(out)
}

pub fn views(targets: &BTreeMap<String, Target>) -> BTreeMap<String, DesiredView<'_>> {
    targets
        .iter()
        .map(|(k, t)| {
            let view = DesiredView {
                technology: t.connection.technology().as_str(),
                fields: t.fields.clone(),
                protect: t.connection.protect,
            };
            (k.clone(), view)
        })
        .collect()
}

/// Everything a plan is made from.
pub struct Planned {
    pub plan: Plan,
    pub targets: BTreeMap<String, Target>,
}

/// Refreshes (unless `--refresh=false`) and plans `desired` against `state`.
pub async fn make_plan(
    ctx: &Context,
    args: &PlanArgs,
    mut desired: Desired,
    state: &State,
    default_max_deletes: Option<usize>,
) -> Result<Planned> {
    let spec_files = desired.files.iter().map(|f| f.display().to_string()).collect();
    let mut known: BTreeSet<String> = desired.connections.iter().map(|c| c.key.clone()).collect();
    // Only targeted connections are planned, so only their secrets need to resolve.
    if let Some(matcher) = plan::target_matcher(&args.targets).context("invalid --target pattern")? {
        desired.connections.retain(|c| matcher.is_match(&c.key));
    }
    // A secret that does not resolve (a pull request from a fork has none) still gives a
    // plan, marked so that it cannot be applied.
    let mut no_secrets = args.no_secrets;
    let targets = match targets(desired.clone(), &state.salt, no_secrets) {
        Err(e) if !no_secrets => {
            eprintln!(
                "warning: {:#}\n  = help: planning without connection secrets: fields that depend on one show as (sensitive, unknown), and this plan cannot be applied",
                e
            );
            no_secrets = true;
            targets(desired, &state.salt, true)?
        }
        other => other?,
    };
    let client = if args.refresh {
        Some(ctx.client(&args.common)?)
    } else {
        None
    };
    let live = match &client {
        Some(client) => {
            let mut wanted: BTreeSet<String> = targets.keys().cloned().collect();
            wanted.extend(state.connections.keys().cloned());
            Some(refresh::refresh(client, state, &wanted, ctx.settings.parallelism(&args.common)).await?)
        }
        None => None,
    };
    known.extend(state.connections.keys().cloned());
    if let Some(live) = &live {
        known.extend(live.keys.iter().cloned());
    }
    check_targets(&args.targets, &known)?;
    let options = PlanOptions {
        targets: args.targets.clone(),
        prune: args.prune,
        max_deletes: args.max_deletes.or(default_max_deletes),
    };
    let mut plan = plan::plan(&views(&targets), state, live.as_ref(), &options, spec_files)
        .context("invalid --target pattern")?;
    if let Some(client) = &client {
        refresh::count_cascades(client, &mut plan).await?;
    }
    if let Some(url) = ctx.immuta_url(&args.common) {
        plan.state.tenant = Some(connctl_engine::state::normalise_tenant(&url));
    }
    plan.state.environment = ctx.environment().map(str::to_owned);
    plan.state.secrets_unknown = no_secrets;
    Ok(Planned { plan, targets })
}

/// A `--target` that matches no connection anywhere is a typo, not "no changes": an error that
/// names the pattern and the keys close to it.
fn check_targets(targets: &[String], known: &BTreeSet<String>) -> Result<()> {
    for target in targets {
        let matcher =
            plan::target_matcher(std::slice::from_ref(target)).context("invalid --target pattern")?;
        if known
            .iter()
            .any(|k| matcher.as_ref().is_none_or(|m| m.is_match(k)))
        {
            continue;
        }
        let keys: Vec<&str> = known.iter().map(String::as_str).collect();
        let close = connctl_spec::suggest::closest(target, &keys, 3);
        let help = if close.is_empty() {
            "run without --target to see every connection".to_owned()
        } else {
            format!("did you mean {}?", connctl_spec::suggest::one_of(&close))
        };
        anyhow::bail!(
            "--target `{target}` matches no connection in the YAML, the state or Immuta\n  = help: {help}"
        );
    }
    Ok(())
}
