//! `connctl drift`: reports changes made in Immuta outside connctl (read-only).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;
use connctl_engine::{drift, objects};

use crate::cli::{CommonArgs, Format};
use crate::context::{self, Context};
use crate::error::Hinted;
use crate::view::{self, plan::Kind};

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
    let only: Option<BTreeSet<String>> = if paths.is_empty() {
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
            return Err(Hinted::new(
                format!(
                    "the state {location} is {}: drift has nothing to compare",
                    if loaded.found { "empty" } else { "missing" }
                ),
                "name the YAML (`connctl drift connections/`) so drift can tell a first run from a lost state, or pass --allow-empty-state",
            )
            .into());
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
    let applied = drift::applied(state, only.as_ref());
    let client = ctx.client(common)?;
    let wanted = applied.keys().cloned().collect();
    let live =
        connctl_engine::refresh::refresh(&client, state, &wanted, ctx.settings.parallelism(common)).await?;
    let mut plan = drift::drift(&applied, state, &live)?;
    plan.state.tenant = Some(connctl_engine::state::normalise_tenant(client.base_url()));
    plan.state.environment = ctx.environment().map(str::to_owned);
    connctl_engine::refresh::count_cascades(&client, &mut plan).await?;
    // The objects connctl set on the connections drift compares, each read once.
    let recorded = objects::recorded(state, &|k| applied.contains_key(k) && live.keys.contains(k));
    let seen = objects::refresh(&client, recorded, ctx.settings.parallelism(common)).await?;
    plan.objects = objects::drift(state, &seen);
    objects::count_cascades(&client, &mut plan.objects).await?;
    view::plan::print(&plan, format, Kind::Drift, ctx.color);
    Ok(if drift::found(&plan) { 2 } else { 0 })
}
