//! `connctl state …`: inspects, edits, moves or unlocks the state (never touches Immuta).

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::edit::{self, Edit, PushRefused};
use connctl_engine::lock::WriterLock;
use connctl_engine::state::State;

use super::release;
use crate::cli::{StateArgs, StateCommand};
use crate::context::Context;
use crate::error::Hinted;
use crate::view;

pub(super) async fn run(ctx: &Context, cmd: StateCommand) -> Result<u8> {
    match cmd {
        StateCommand::List { common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let state = location.load().await?.state;
            view::state::list(&state);
            Ok(0)
        }
        StateCommand::Show { key, common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let state = location.load().await?.state;
            let s = state
                .connections
                .get(&key)
                .ok_or_else(|| anyhow!("`{key}` is not in the state ({location})"))?;
            view::state::show(s)?;
            Ok(0)
        }
        StateCommand::Rm { key, common, lock } => {
            edit_state(ctx, &common, lock.lock_timeout, &key, Edit::Forget).await
        }
        StateCommand::Unprotect { key, common, lock } => {
            edit_state(ctx, &common, lock.lock_timeout, &key, Edit::Unprotect).await
        }
        StateCommand::Pull { common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let loaded = location.load().await?;
            if !loaded.found {
                bail!("there is no state at {location}");
            }
            view::state::pull(&loaded.state)?;
            Ok(0)
        }
        StateCommand::Push { file, common, lock } => push(ctx, &file, &common, lock.lock_timeout).await,
        StateCommand::Unlock { id, common } => {
            let location = ctx.state_location(common.state.as_deref())?;
            let StateLocation::Remote(object) = &location else {
                return Err(connctl_engine::lock::LockError::LocalUnlock {
                    path: location.display_path(),
                }
                .into());
            };
            let holder = connctl_engine::remote_lock::force_unlock(object, &id).await?;
            view::state::unlocked(&holder, &location);
            Ok(0)
        }
    }
}

/// `state push FILE`: replaces the state with FILE. The destination must be empty, or hold
/// the same lineage at an older serial (so a stale copy cannot overwrite newer work).
pub(super) async fn push(
    ctx: &Context,
    file: &Path,
    common: &StateArgs,
    lock_timeout: Duration,
) -> Result<u8> {
    let location = ctx.state_location(common.state.as_deref())?;
    let source = connctl_engine::state::resolve_path(file)?;
    if !source.exists() {
        bail!("cannot read {}: no such file", file.display());
    }
    let mut pushed = State::load(&source)?;
    let lock = WriterLock::acquire(&location, "connctl state push", lock_timeout).await?;
    let result = async {
        let current = location.load_for_writer(&lock).await?;
        let now = current.found.then_some(&current.state);
        if let Err(refused) = edit::check_push(now, &pushed) {
            let file = file.display();
            let message = match &refused {
                PushRefused::OtherLineage { pushed, current } => format!(
                    "{file} has lineage {pushed}, the state at {location} has {current}: they are different states"
                ),
                PushRefused::NotNewer { pushed, current } => format!(
                    "{file} has serial {pushed}, not newer than the state at {location} (serial {current}): pushing it would lose changes"
                ),
                PushRefused::OtherTenant { pushed, current } => format!(
                    "{file} was written for the Immuta tenant {pushed}, the state at {location} for {current}"
                ),
            };
            return Err(Hinted::maybe(message, refused.help()).into());
        }
        lock.verify()?;
        // The pushed serial is kept (the save bumps it once more), so saved plans made from
        // FILE are refused as stale rather than applied against a state they did not see.
        let serial = pushed.serial;
        location.save(&mut pushed, current.version).await?;
        view::state::pushed(file, serial, &pushed, &location);
        Ok(0)
    }
    .await;
    release(&lock).await;
    result
}

/// `state rm` and `state unprotect`: one edit of one connection's entry, under the lock.
pub(super) async fn edit_state(
    ctx: &Context,
    common: &StateArgs,
    lock_timeout: Duration,
    key: &str,
    what: Edit,
) -> Result<u8> {
    let location = ctx.state_location(common.state.as_deref())?;
    let command = match what {
        Edit::Forget => "connctl state rm",
        Edit::Unprotect => "connctl state unprotect",
    };
    let lock = WriterLock::acquire(&location, command, lock_timeout).await?;
    let result = async {
        let Loaded {
            mut state, version, ..
        } = location.load_for_writer(&lock).await?;
        edit::edit(&mut state, key, what).map_err(|e| anyhow!("{e} ({location})"))?;
        lock.verify()?;
        location.save(&mut state, version).await?;
        view::state::edited(key, what);
        Ok(0)
    }
    .await;
    release(&lock).await;
    result
}
