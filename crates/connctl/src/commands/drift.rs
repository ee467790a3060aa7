//! `connctl drift`: reports changes made in Immuta outside connctl (read-only).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use connctl_engine::plan::{Action, Cause};

use super::print_plan;
use crate::cli::{CommonArgs, Format};
use crate::context::{self, Context};
use crate::render::Kind;

pub(super) async fn run(
    ctx: &Context,
    paths: &[PathBuf],
    common: &CommonArgs,
    format: Format,
    allow_empty_state: bool,
) -> Result<u8> {
    let (loaded, location) = ctx.read_state(common).await?;
    let state = &loaded.state;
    // Drift compares Immuta with what was last applied; the YAML only narrows the keys.
    let only: Option<Vec<String>> = if paths.is_empty() {
        None
    } else {
        Some(
            ctx.load_desired(paths)?
                .connections
                .into_iter()
                .map(|c| c.key)
                .collect(),
        )
    };
    if state.connections.is_empty() && !allow_empty_state {
        // "No drift" from an empty state would check nothing: a lost state must not pass.
        let Some(keys) = &only else {
            bail!(
                "the state {location} is {}: drift has nothing to compare\n  = help: name the YAML (`connctl drift connections/`) so drift can tell a first run from a lost state, or pass --allow-empty-state",
                if loaded.found { "empty" } else { "missing" }
            );
        };
        let client = ctx.client(common)?;
        let live = connctl_engine::refresh::refresh(
            &client,
            state,
            &Default::default(),
            ctx.settings.parallelism(common),
        )
        .await?;
        let found: Vec<&str> = keys
            .iter()
            .filter(|k| live.keys.contains(*k))
            .map(String::as_str)
            .collect();
        context::lost_state(&found, &loaded, &location)?;
    }
    let applied: BTreeMap<String, connctl_engine::plan::DesiredView<'_>> = state
        .connections
        .iter()
        .filter(|(k, _)| only.as_ref().is_none_or(|o| o.contains(k)))
        .filter_map(|(k, s)| {
            let fields = s.applied.clone()?;
            Some((
                k.clone(),
                connctl_engine::plan::DesiredView {
                    technology: &s.technology,
                    fields,
                    protect: s.protect,
                },
            ))
        })
        .collect();
    let client = ctx.client(common)?;
    let wanted = applied.keys().cloned().collect();
    let live =
        connctl_engine::refresh::refresh(&client, state, &wanted, ctx.settings.parallelism(common)).await?;
    let options = connctl_engine::plan::PlanOptions::default();
    let mut plan = connctl_engine::plan::plan(&applied, state, Some(&live), &options, vec![])?;
    plan.state.tenant = Some(connctl_engine::state::normalise_tenant(client.base_url()));
    // Keep only what Immuta changed: drifted fields and objects deleted outside connctl.
    let mut undrifted = Vec::new();
    plan.changes.retain_mut(|c| {
        c.fields.retain(|f| f.cause != Cause::Config);
        let drifted = c.action == Action::Recreate || (c.action == Action::Update && !c.fields.is_empty());
        if !drifted {
            undrifted.push(c.key.clone());
        }
        drifted
    });
    plan.unchanged.extend(undrifted);
    plan.unchanged.sort();
    connctl_engine::refresh::count_cascades(&client, &mut plan).await?;
    // Unmanaged connections (in Immuta, in no state) are shown as information only.
    // The counts describe drift only, not what a plan would do.
    plan.summary = connctl_engine::plan::Summary {
        drifted: plan.changes.len(),
        unchanged: plan.unchanged.len(),
        unmanaged: plan.unmanaged.len(),
        unhealthy: plan.summary.unhealthy,
        ..Default::default()
    };
    print_plan(&plan, format, Kind::Drift, ctx.color);
    Ok(if plan.changes.is_empty() && plan.health.is_empty() {
        0
    } else {
        2
    })
}
