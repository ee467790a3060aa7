//! `connctl state …` output: the list, one connection or the whole state as JSON, and the
//! sentence each edit ends with.

use std::fmt::Display;
use std::path::Path;

use connctl_engine::edit::Edit;
use connctl_engine::remote_lock::LockInfo;
use connctl_engine::state::{ConnectionState, State};

/// `state list`: one tab-separated line per connection.
pub fn list(state: &State) {
    for (key, s) in &state.connections {
        println!(
            "{key}\t{}\t{}{}",
            s.technology,
            s.step.as_str(),
            if s.protect { "\tprotected" } else { "" }
        );
    }
}

/// `state show KEY`: the entry as JSON, with every secret of the run removed.
pub fn show(connection: &ConnectionState) -> serde_json::Result<()> {
    println!(
        "{}",
        connctl_spec::redact(&serde_json::to_string_pretty(connection)?)
    );
    Ok(())
}

/// `state pull`: the whole state as JSON.
pub fn pull(state: &State) -> serde_json::Result<()> {
    print!("{}", serde_json::to_string_pretty(state)? + "\n");
    Ok(())
}

/// After `state rm` or `state unprotect`.
pub fn edited(key: &str, edit: Edit) {
    match edit {
        Edit::Forget => println!(
            "Forgot `{key}`. Immuta was not touched; `connctl import PATHS --key {key}` adopts it again."
        ),
        Edit::Unprotect => println!(
            "`{key}` is no longer protected; it can be deleted with `apply --prune` once it leaves the YAML."
        ),
    }
}

/// After `state push FILE`: FILE's serial, and the one it was saved at.
pub fn pushed(file: &Path, serial: u64, state: &State, location: &dyn Display) {
    println!(
        "Pushed {} (serial {serial}, {} connection(s)) to {location}; it is now at serial {}.",
        file.display(),
        state.connections.len(),
        state.serial
    );
}

/// After `state unlock ID`.
pub fn unlocked(holder: &LockInfo, location: &dyn Display) {
    println!(
        "Released lock {} of {location} (held by {}, `{}`, since {}).",
        holder.id, holder.who, holder.operation, holder.created
    );
}
