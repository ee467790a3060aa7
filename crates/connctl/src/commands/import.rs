//! `connctl import`: adopts connections that already exist in Immuta into the state.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use connctl_engine::adopt::{self, Selection};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::lock::WriterLock;
use connctl_engine::objects;

use super::release;
use crate::Reported;
use crate::cli::CommonArgs;
use crate::context::{self, Context};
use crate::view;

pub(super) async fn run(
    ctx: &Context,
    paths: &[PathBuf],
    keys: &Selection,
    common: &CommonArgs,
    lock_timeout: Duration,
) -> Result<u8> {
    let location = ctx.state_location(common.state.as_deref())?;
    let desired = ctx.load_desired(paths)?;
    let client = ctx.client(common)?;
    let lock = WriterLock::acquire(&location, "connctl import", lock_timeout).await?;
    let result = import_locked(ctx, keys, common, &location, &lock, desired, client).await;
    release(&lock).await;
    result
}

pub(super) async fn import_locked(
    ctx: &Context,
    which: &Selection,
    common: &CommonArgs,
    location: &StateLocation,
    lock: &WriterLock,
    mut desired: connctl_spec::Desired,
    client: connctl_immuta::ImmutaClient,
) -> Result<u8> {
    let Loaded {
        mut state, version, ..
    } = location.load_for_writer(lock).await?;
    ctx.claim_state(&mut state, common, location)?;
    let declared: Vec<String> = desired.connections.iter().map(|c| c.key.clone()).collect();
    let selected = adopt::select(which, &declared, &state)?;
    // Only the connections being adopted need their secrets.
    desired.connections.retain(|c| selected.contains(&c.key));
    let targets = context::targets(desired, &state.salt, false)?;
    let to_read = selected.keys().map(|k| (k.clone(), None)).collect();
    let parallelism = ctx.settings.parallelism(common);
    let seen = connctl_engine::refresh::read_many(&client, to_read, parallelism).await?;
    let mut outcome = adopt::adopt(&mut state, selected, &context::views(&targets), seen);
    // The adopted connections' listed objects: read, and those Immuta has as the YAML lists
    // them recorded, so that the first plan after an import has nothing to record.
    let adopted: Vec<&connctl_spec::Connection> = outcome
        .adopted
        .iter()
        .filter_map(|k| targets.get(k).map(|t| &t.connection))
        .collect();
    let listed = objects::to_read(adopted.iter().copied(), &|_| false);
    if !listed.is_empty() {
        let live = objects::refresh(&client, listed, parallelism).await?;
        let rows = objects::plan(adopted.iter().copied(), &state, Some(&live), &|_| false);
        outcome.objects_recorded = adopt::adopt_objects(&mut state, &rows);
        outcome.objects_left = rows.len() - outcome.objects_recorded;
    }
    if !outcome.adopted.is_empty() {
        lock.verify()?;
        location.save(&mut state, version).await?;
    }
    if view::import::print(&outcome) {
        return Err(Reported(1).into());
    }
    Ok(0)
}
