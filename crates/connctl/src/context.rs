//! What most commands need before they do their own thing: the settings, the desired
//! connections (loaded, validated, fingerprinted), the state, and an Immuta client.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use connctl_engine::apply::{Target, fingerprinted};
use connctl_engine::plan::{self, DesiredView, Plan, PlanOptions};
use connctl_engine::refresh;
use connctl_engine::state::State;
use connctl_immuta::ImmutaClient;
use connctl_spec::Desired;

use crate::Reported;
use crate::cli::{CommonArgs, PlanArgs};
use crate::settings::Settings;

pub struct Context {
    pub settings: Settings,
    pub color: bool,
}

impl Context {
    pub fn new(config: &Path, color: bool) -> Result<Context> {
        let explicit = config != Path::new("connctl.toml");
        Ok(Context {
            settings: Settings::load(config, explicit)?,
            color,
        })
    }

    /// Loads and validates the YAML; on failure prints every diagnostic and exits 1.
    pub fn load_desired(&self, paths: &[PathBuf]) -> Result<Desired> {
        match connctl_spec::load_with_warnings(paths) {
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
        Ok(ImmutaClient::new(self.settings.immuta(args)?)?)
    }

    pub fn state(&self, flag: Option<&Path>) -> Result<(State, PathBuf)> {
        let path = self.settings.state_path(flag)?;
        let state = State::load(&path)?;
        Ok((state, path))
    }
}

/// The desired connections fingerprinted under the state's salt.
pub fn targets(desired: Desired, salt: &str) -> Result<BTreeMap<String, Target>> {
    let mut out = BTreeMap::new();
    for conn in desired.connections {
        let fields = fingerprinted(&conn, salt).with_context(|| {
            "a secret reference did not resolve (check it with `connctl validate --resolve-secrets`)"
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
    // Only targeted connections are planned, so only their secrets need to resolve.
    if let Some(matcher) = plan::target_matcher(&args.targets).context("invalid --target pattern")? {
        desired.connections.retain(|c| matcher.is_match(&c.key));
    }
    let targets = targets(desired, &state.salt)?;
    let live = if args.refresh {
        let client = ctx.client(&args.common)?;
        let mut wanted: BTreeSet<String> = targets.keys().cloned().collect();
        wanted.extend(state.connections.keys().cloned());
        Some(refresh::refresh(&client, state, &wanted, ctx.settings.parallelism(&args.common)).await?)
    } else {
        None
    };
    let options = PlanOptions {
        targets: args.targets.clone(),
        prune: args.prune,
        max_deletes: args.max_deletes.or(default_max_deletes),
    };
    let plan = plan::plan(&views(&targets), state, live.as_ref(), &options, spec_files)
        .context("invalid --target pattern")?;
    Ok(Planned { plan, targets })
}
