//! What most commands need before they do their own thing: the settings (with the selected
//! environment), the desired connections (variables expanded, loaded, validated,
//! fingerprinted), the state, and an Immuta client.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use connctl_engine::apply::{Target, fingerprinted};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::plan::{self, Action, DesiredView, Plan, PlanOptions};
use connctl_engine::state::State;
use connctl_engine::{objects, refresh};
use connctl_immuta::ImmutaClient;
use connctl_spec::Desired;

use crate::Reported;
use crate::cli::{CommonArgs, PlanArgs};
use crate::error::Hinted;
use crate::settings::Settings;

mod environment;
pub use environment::ConfigArgs;

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
    let message = format!(
        "the state {location} is {}, but Immuta already has {} connection(s) of the YAML ({}{more}): the state is probably lost or points at the wrong place",
        if loaded.found { "empty" } else { "missing" },
        found.len(),
        shown.join(", ")
    );
    Err(Hinted::new(
        message,
        "check --state / CONNCTL_STATE / [state] in connctl.toml (restore a lost state with `connctl state push BACKUP`)",
    )
    .and("to adopt the connections that exist in Immuta: `connctl import PATHS --all` (or `--key 'GLOB'`)")
    .and("to go on with an empty state on purpose, pass --allow-empty-state")
    .into())
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
                fields: std::borrow::Cow::Borrowed(&t.fields),
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
    /// Integration ids the refresh read that the state lacks (see [`refresh::Live::learned`]):
    /// an apply records them; a plan never writes the state.
    pub learned: BTreeMap<String, String>,
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
            crate::view::notice::warning(
                &format!("{e:#}"),
                Some(
                    "planning without connection secrets: fields that depend on one show as (sensitive, unknown), and this plan cannot be applied",
                ),
            );
            no_secrets = true;
            targets(desired, &state.salt, true)?
        }
        other => other?,
    };
    let scope = args.refresh.scope();
    let client = scope.map(|_| ctx.client(&args.common)).transpose()?;
    let views = views(&targets);
    let mut not_read = None;
    let live = match (&client, scope) {
        (Some(client), Some(scope)) => {
            let matcher = plan::target_matcher(&args.targets).context("invalid --target pattern")?;
            let in_scope = |k: &str| matcher.as_ref().is_none_or(|m| m.is_match(k));
            let selection = refresh::select(scope, &views, state, in_scope);
            not_read = selection.not_read;
            let parallelism = ctx.settings.parallelism(&args.common);
            Some(refresh::refresh_selected(client, state, &selection, parallelism).await?)
        }
        _ => None,
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
    let mut plan =
        plan::plan(&views, state, live.as_ref(), &options, spec_files).context("invalid --target pattern")?;
    plan.not_read = not_read;
    if let Some(client) = &client {
        refresh::count_cascades(client, &mut plan).await?;
    }
    let (rows, fingerprints) = plan_objects(
        &plan,
        &targets,
        state,
        client.as_ref().filter(|_| live.is_some()),
        live.as_ref(),
        ctx.settings.parallelism(&args.common),
    )
    .await?;
    plan.objects = rows;
    plan.live_fingerprints.extend(fingerprints);
    if let Some(url) = ctx.immuta_url(&args.common) {
        plan.state.tenant = Some(connctl_engine::state::normalise_tenant(&url));
    }
    plan.state.environment = ctx.environment().map(str::to_owned);
    plan.state.secrets_unknown = no_secrets;
    let learned = live.map(|l| l.learned(state)).unwrap_or_default();
    Ok(Planned {
        plan,
        targets,
        learned,
    })
}

/// The object rows of the plan's connections: their listed objects read from Immuta (one GET
/// each, concurrent) when the plan refreshes, then decided against the state. A connection the
/// plan registers has its objects set after its registration job; one the plan leaves alone
/// (import, orphan, delete) has none planned.
async fn plan_objects(
    plan: &Plan,
    targets: &BTreeMap<String, Target>,
    state: &State,
    client: Option<&ImmutaClient>,
    live: Option<&refresh::Live>,
    parallelism: usize,
) -> Result<(Vec<objects::ObjectChange>, BTreeMap<String, String>)> {
    let action = |key: &str| plan.changes.iter().find(|c| c.key == key).map(|c| c.action);
    let registering = |key: &str| match action(key) {
        Some(Action::Create | Action::Recreate | Action::Replace) => true,
        Some(Action::Resume) => state
            .connections
            .get(key)
            .is_none_or(|s| s.step != connctl_engine::state::Step::Registered),
        _ => false,
    };
    let planned: Vec<&connctl_spec::Connection> = targets
        .values()
        .map(|t| &t.connection)
        .filter(|c| !c.objects.is_empty())
        .filter(|c| {
            !matches!(
                action(&c.key),
                Some(Action::Import | Action::Orphan | Action::Delete | Action::Forget)
            )
        })
        .collect();
    let read = match (client, live) {
        (Some(client), Some(live)) => {
            let wanted = objects::to_read(
                planned.iter().copied().filter(|c| live.keys.contains(&c.key)),
                &registering,
            );
            Some(objects::refresh(client, wanted, parallelism).await?)
        }
        _ => None,
    };
    let keys: Vec<&str> = planned.iter().map(|c| c.key.as_str()).collect();
    let mut rows = objects::plan(planned.into_iter(), state, read.as_ref(), &registering);
    if let Some(client) = client {
        objects::count_cascades(client, &mut rows).await?;
    }
    let fingerprints = objects::fingerprints(keys.into_iter(), &rows);
    Ok((rows, fingerprints))
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
        return Err(Hinted::new(
            format!("--target `{target}` matches no connection in the YAML, the state or Immuta"),
            help,
        )
        .into());
    }
    Ok(())
}
