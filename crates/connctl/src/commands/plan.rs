//! `connctl plan`: shows what apply would change, and saves the plan with `--out`.

use std::path::Path;

use anyhow::{Context as _, Result};
use connctl_engine::plan::{Action, Plan};

use super::DEFAULT_MAX_DELETES;
use crate::cli::{Format, PlanArgs};
use crate::context::{self, Context, Planned};
use crate::view::{self, plan::Kind};

pub(super) async fn run(
    ctx: &Context,
    args: &PlanArgs,
    out: Option<&Path>,
    detailed: bool,
    preflight: bool,
) -> Result<u8> {
    let (loaded, location) = ctx.read_state(&args.common).await?;
    let desired = ctx.load_desired(&args.paths)?;
    let Planned { plan, targets, .. } =
        context::make_plan(ctx, args, desired, &loaded.state, Some(DEFAULT_MAX_DELETES)).await?;
    context::refuse_lost_state(&plan, &loaded, &location, args.allow_empty_state)?;
    // `--preflight`: the checks apply's gate would run, for the same connections.
    let report = if preflight {
        let client = ctx.client(&args.common)?;
        let parallelism = ctx.settings.parallelism(&args.common);
        Some(
            super::preflight::before_apply(
                ctx,
                &client,
                &plan,
                &targets,
                &loaded.state,
                &location,
                parallelism,
            )
            .await,
        )
    } else {
        None
    };
    match &report {
        None => view::plan::print(&plan, args.format, Kind::Plan, ctx.color),
        Some(report) => view::preflight::print_with_plan(&plan, report, args.format, ctx.color),
    }
    if let Some(out) = out {
        save_plan(out, &plan)?;
        if args.format == Format::Text {
            view::plan::saved(out);
        }
    }
    if !plan.errors.is_empty() || report.as_ref().is_some_and(|r| r.failed()) {
        return Ok(1);
    }
    Ok(exit_for(&plan, detailed))
}

/// Writes the plan as JSON, mode 0600 (it names every connection and its settings), with
/// every secret removed from the error texts it may quote.
pub(super) fn save_plan(out: &Path, plan: &Plan) -> Result<()> {
    let text = view::plan::json(plan);
    connctl_engine::state::write_atomic(out, connctl_spec::redact(&text).as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))
}

pub(super) fn exit_for(plan: &Plan, detailed: bool) -> u8 {
    // An import sends nothing to Immuta, but it is still to do (it changes the state): 2. So is
    // a health problem (an integration failed, an object gone).
    // So is an object row, a missing object included (someone must crawl or fix the path).
    let to_do = plan.changes.iter().any(|c| c.action != Action::Orphan)
        || !plan.health.is_empty()
        || !plan.objects.is_empty();
    if !detailed || !to_do {
        0
    } else if plan.is_destructive() {
        // Deletes, replaces, and status changes that cascade to child objects.
        3
    } else {
        2
    }
}
