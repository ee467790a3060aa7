//! `connctl preflight`: read-only checks that each selected connection can be registered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use connctl_engine::apply::Stop;
use connctl_engine::backend::StateLocation;
use connctl_engine::plan;
use connctl_engine::plan::{Action, Plan};
use connctl_engine::preflight::{self, Report, Subject};
use connctl_engine::state::State;

use crate::cli::{CommonArgs, Format};
use crate::context::Context;
use crate::probe;
use crate::runner::Runner;
use crate::view;

pub(super) async fn run(
    ctx: &Context,
    paths: &[PathBuf],
    common: &CommonArgs,
    targets: &[String],
    format: Format,
) -> Result<u8> {
    let (loaded, location) = ctx.read_state(common).await?;
    let mut desired = ctx.load_desired(paths)?;
    if let Some(matcher) = plan::target_matcher(targets).context("invalid --target pattern")? {
        desired.connections.retain(|c| matcher.is_match(&c.key));
        if desired.connections.is_empty() {
            bail!(
                "--target {} matches no connection of the YAML",
                targets.join(", ")
            );
        }
    }
    let client = ctx.client(common)?;
    let runner = Runner::new(&ctx.settings.executor, location.scripts_dir(), Stop::default());
    let subjects: Vec<Subject<'_>> = desired
        .connections
        .iter()
        .map(|conn| {
            let recorded = loaded.state.connections.get(&conn.key);
            Subject {
                conn,
                managed: recorded.is_some(),
                integration_id: recorded.and_then(|r| r.integration_id.as_deref()),
            }
        })
        .collect();
    let immuta = probe::Immuta {
        client: &client,
        api_answered: false,
    };
    let report = preflight::run(
        &immuta,
        &probe::Warehouse(&runner),
        &subjects,
        ctx.settings.parallelism(common),
    )
    .await;
    view::preflight::print(&report, format, ctx.color);
    Ok(u8::from(report.failed()))
}

/// Apply's gate: the checks of the connections the plan creates or replaces (the ones whose
/// setup script runs from scratch), before anything is sent.
pub(super) async fn before_apply(
    ctx: &Context,
    client: &connctl_immuta::ImmutaClient,
    plan: &Plan,
    targets: &BTreeMap<String, connctl_engine::apply::Target>,
    state: &State,
    location: &StateLocation,
    parallelism: usize,
) -> Report {
    let subjects: Vec<Subject<'_>> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace | Action::Recreate))
        .filter_map(|c| targets.get(&c.key))
        .map(|t| {
            let recorded = state.connections.get(&t.connection.key);
            Subject {
                conn: &t.connection,
                managed: recorded.is_some(),
                integration_id: recorded.and_then(|r| r.integration_id.as_deref()),
            }
        })
        .collect();
    if subjects.is_empty() {
        return Report::default();
    }
    let runner = Runner::new(&ctx.settings.executor, location.scripts_dir(), Stop::default());
    // A refreshed plan listed Immuta's connections: the connection API answered.
    let immuta = probe::Immuta {
        client,
        api_answered: plan.refreshed,
    };
    preflight::run(&immuta, &probe::Warehouse(&runner), &subjects, parallelism).await
}
