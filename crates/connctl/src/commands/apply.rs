//! `connctl apply`: makes Immuta match the YAML or a saved plan, under the writer's lock.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use connctl_engine::apply::{self, ApplyOptions, Outcome, Stop};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::lock::WriterLock;
use connctl_engine::plan::{Action, Plan};
use connctl_engine::saved;
use connctl_engine::store::StateStore;

use super::{DEFAULT_MAX_DELETES, read_plan, release};
use crate::cli::{Format, PlanArgs};
use crate::context::{self, Context, Planned};
use crate::error::Hinted;
use crate::runner::Runner;
use crate::view::report::ApplyReport;
use crate::view::{self, plan::Kind};

/// A saved plan, if `paths` is exactly one JSON file holding one.
pub(super) fn saved_plan(paths: &[PathBuf]) -> Result<Option<Plan>> {
    let [path] = paths else { return Ok(None) };
    if path.extension().is_none_or(|e| e != "json") {
        return Ok(None);
    }
    read_plan(path).map(Some)
}

pub(super) async fn run(
    ctx: &Context,
    args: &PlanArgs,
    auto_approve: bool,
    wait: bool,
    allow_cascade: bool,
    skip_preflight: bool,
    lock_timeout: Duration,
) -> Result<u8> {
    let location = ctx.state_location(args.common.state.as_deref())?;
    let saved = saved_plan(&args.paths)?;
    // Everything that can be checked is checked before the lock file is written.
    let spec_paths: Vec<PathBuf> = match &saved {
        Some(saved) => saved.spec_files.iter().map(PathBuf::from).collect(),
        None => args.paths.clone(),
    };
    let desired = ctx.load_desired(&spec_paths)?;
    // Every secret of the YAML, not only the targeted connections': redaction and the command
    // executor's environment filter must know them all. A reference that does not resolve is
    // reported where it is needed, not here.
    for conn in &desired.connections {
        // Provider secrets are resolved only for the connections the run touches.
        for (_, reference) in conn.secret_refs().into_iter().filter(|(_, r)| !r.is_provider()) {
            let _ = reference.resolve();
        }
    }
    let client = ctx.client(&args.common)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let lock = Arc::new(WriterLock::acquire(&location, &command, lock_timeout).await?);
    let result = apply_locked(
        ctx,
        args,
        auto_approve,
        wait,
        allow_cascade,
        skip_preflight,
        &location,
        lock.clone(),
        saved,
        desired,
        client,
    )
    .await;
    release(&lock).await;
    result
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_locked(
    ctx: &Context,
    args: &PlanArgs,
    auto_approve: bool,
    wait: bool,
    allow_cascade: bool,
    skip_preflight: bool,
    location: &StateLocation,
    lock: Arc<WriterLock>,
    saved: Option<Plan>,
    desired: connctl_spec::Desired,
    client: connctl_immuta::ImmutaClient,
) -> Result<u8> {
    let Loaded {
        mut state,
        found,
        version,
    } = location.load_for_writer(&lock).await?;
    ctx.claim_state(&mut state, &args.common, location)?;
    if let Some(saved) = &saved {
        saved::adopt_identity(&mut state, saved);
    }
    let planned = match &saved {
        Some(saved) => {
            saved::check_made_for(saved, ctx.environment())?;
            saved::check_state(saved, &state, ctx.immuta_url(&args.common).as_deref())?;
            let mut again = args.clone();
            again.refresh = crate::cli::Refresh::of(saved);
            let planned = context::make_plan(ctx, &again, desired, &state, None).await?;
            saved::check_fingerprints(saved, &planned.plan)?;
            // Apply exactly what was reviewed.
            Planned {
                plan: saved.clone(),
                ..planned
            }
        }
        None => context::make_plan(ctx, args, desired, &state, Some(DEFAULT_MAX_DELETES)).await?,
    };
    let loaded = Loaded {
        state,
        found,
        version,
    };
    context::refuse_lost_state(&planned.plan, &loaded, location, args.allow_empty_state)?;
    let plan = &planned.plan;
    // With `--format json`, standard output carries only the apply report; people read stderr.
    let json = args.format == Format::Json;
    if json {
        view::plan::eprint(plan, Kind::Plan, ctx.color);
    } else {
        view::plan::print(plan, args.format, Kind::Plan, ctx.color);
    }
    let refuse = |errors: Vec<String>| {
        if json {
            print!("{}", ApplyReport::refused(errors).to_json());
        }
    };
    if !plan.errors.is_empty() {
        refuse(plan.errors.clone());
        return Ok(1);
    }
    if plan.state.secrets_unknown {
        let error = "refusing to apply a plan whose connection secrets are unknown (--no-secrets, or a secret that did not resolve); nothing was sent";
        refuse(vec![error.into()]);
        bail!(error);
    }
    if plan.is_empty() {
        if !planned.learned.is_empty() {
            let store = StateStore::open(loaded, location.clone(), lock);
            record_learned(&store, &planned.learned).await?;
            // As after changes: the record is durable, so only the fold can fail here.
            if let Err(e) = store.finish().await {
                tracing::warn!("{e}");
            }
        }
        if json {
            print!("{}", ApplyReport::no_changes().to_json());
        }
        return Ok(0);
    }
    let cascading: Vec<&str> = plan.cascades().map(|c| c.key.as_str()).collect();
    let gated: Vec<String> = plan
        .object_gates()
        .map(|o| format!("{}/{}", o.key, o.path))
        .collect();
    if !allow_cascade && !gated.is_empty() {
        let error = Hinted::new(
            format!(
                "refusing a high-risk change of data object(s) {}: a deactivation, or an activation over children set differently, reaches every object below",
                gated.join(", ")
            ),
            "review the plan above, then pass --allow-cascade if that is intended; nothing was sent",
        );
        refuse(vec![error.to_text()]);
        return Err(error.into());
    }
    if !allow_cascade && !cascading.is_empty() {
        let error = Hinted::new(
            format!(
                "refusing to change the status of {} ({}): Immuta applies it to every child object",
                if cascading.len() == 1 {
                    "a connection"
                } else {
                    "connections"
                },
                cascading.join(", ")
            ),
            "review the plan above, then pass --allow-cascade if that is intended; nothing was sent",
        );
        refuse(vec![error.to_text()]);
        return Err(error.into());
    }
    let typed = ctx.confirm_protected(auto_approve)?;
    // A saved plan was reviewed when it was made (and is refused above if stale), as Terraform does.
    if !auto_approve && saved.is_none() && !typed {
        if !std::io::stdin().is_terminal() {
            let error = Hinted::new(
                "refusing to apply without confirmation in a non-interactive run",
                "review the plan above, then pass --auto-approve (or apply a saved plan: `connctl plan --out plan.json`, then `connctl apply plan.json`)",
            );
            refuse(vec![error.to_text()]);
            return Err(error.into());
        }
        let mut human = human_out(json);
        view::apply::prompt(&mut human)?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            view::apply::cancelled(&mut human)?;
            refuse(vec!["apply cancelled at the prompt; nothing was changed".into()]);
            return Ok(1);
        }
    }
    if !skip_preflight {
        let report = super::preflight::before_apply(
            ctx,
            &client,
            plan,
            &planned.targets,
            &loaded.state,
            location,
            ctx.settings.parallelism(&args.common),
        )
        .await;
        if report.failed() {
            view::preflight::eprint(&report, ctx.color);
            let error = Hinted::new(
                format!(
                    "preflight failed for {}; nothing was sent",
                    report.failed_keys().join(", ")
                ),
                "fix what the checklist above names, or pass --skip-preflight to apply anyway",
            );
            refuse(vec![error.to_text()]);
            return Err(error.into());
        }
    }
    let scripts_dir = location.scripts_dir();
    let stop = Stop::default();
    let signal = crate::signals::watch(stop.clone())?;
    let runner = Arc::new(Runner::new(
        &ctx.settings.executor,
        scripts_dir.clone(),
        stop.clone(),
    ));
    let before = loaded.state.clone();
    let store = StateStore::open(loaded, location.clone(), lock);
    record_learned(&store, &planned.learned).await?;
    let options = ApplyOptions {
        parallelism: ctx.settings.parallelism(&args.common),
        wait,
        scripts_dir,
        stop,
        ..ApplyOptions::default()
    };
    // Apply leaves imports and orphans alone (import is its own command).
    let mut keys: std::collections::BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| !matches!(c.action, Action::Import | Action::Orphan))
        .map(|c| c.key.as_str())
        .collect();
    // Connections whose only changes are their objects' run too.
    keys.extend(
        plan.objects
            .iter()
            .filter(|o| o.action != connctl_engine::objects::ObjectAction::Missing)
            .map(|o| o.key.as_str()),
    );
    let total = keys.len();
    let progress = crate::view::progress::Progress::new(total, ctx.color);
    let sink = progress.sink();
    let outcomes = apply::apply(
        plan,
        planned.targets,
        client,
        runner,
        store.clone(),
        options,
        sink,
    )
    .await;
    progress.finish();
    // A remote state's journal records are folded into one full write; every step is already
    // durable, so a failure here loses nothing.
    if let Err(e) = store.finish().await {
        tracing::warn!("{e}");
    }
    let (writes, bytes) = store.write_stats();
    tracing::info!("state: {writes} write(s), {bytes} byte(s) to {location}");
    let mut human = human_out(json);
    view::apply::outcomes(&mut human, &outcomes, ctx.color)?;
    let failed = outcomes.values().any(|o| matches!(o, Outcome::Failed { .. }));
    let code = u8::from(failed);
    // Every step wrote the state as it went, and the lock is released when this returns.
    let received = signal.received();
    if let Some(signal) = received {
        let unfinished: Vec<&str> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Interrupted { .. }))
            .map(|(k, _)| k.as_str())
            .collect();
        view::apply::stopped(&mut human, signal.name(), &unfinished)?;
    }
    let code = received.map_or(code, |s| s.exit_code());
    if json {
        let after = store.snapshot();
        let report = ApplyReport::of_run(plan, &outcomes, &before, &after, received.map(|s| s.name()), code);
        print!("{}", report.to_json());
    }
    Ok(code)
}

/// Records the integration ids the refresh read and the state lacked, in one write before any
/// change (as Terraform's apply keeps what its refresh read): the next plan then reads those
/// connections in one round trip instead of two chained ones.
async fn record_learned(store: &StateStore, learned: &BTreeMap<String, String>) -> Result<()> {
    store
        .update_existing(|key, s| match learned.get(key) {
            Some(id) if s.integration_id.as_ref() != Some(id) => {
                s.integration_id = Some(id.clone());
                true
            }
            _ => false,
        })
        .await?;
    Ok(())
}

/// Where apply's human text goes: standard output, or standard error when standard output
/// carries the JSON report.
pub(super) fn human_out(json: bool) -> Box<dyn Write> {
    if json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    }
}
