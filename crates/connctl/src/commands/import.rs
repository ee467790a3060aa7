//! `connctl import`: adopts connections that already exist in Immuta into the state.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use connctl_engine::backend::{Loaded, StateLocation};
use connctl_engine::lock::WriterLock;
use connctl_engine::state::{Phase, Step, Task};

use super::release;
use crate::Reported;
use crate::cli::CommonArgs;
use crate::context::{self, Context};

/// Which connections `import` adopts.
pub(super) enum KeySelection {
    /// Every connection of the YAML that exists in Immuta and is not managed yet.
    All,
    /// These keys; a glob selects the matching keys of the YAML like `All` does.
    Keys(Vec<String>),
}

pub(super) async fn run(
    ctx: &Context,
    paths: &[PathBuf],
    keys: &KeySelection,
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
    which: &KeySelection,
    common: &CommonArgs,
    location: &StateLocation,
    lock: &WriterLock,
    mut desired: connctl_spec::Desired,
    client: connctl_immuta::ImmutaClient,
) -> Result<u8> {
    let Loaded {
        mut state, version, ..
    } = location.load_for_writer(lock).await?;
    if let Some(url) = ctx.immuta_url(common) {
        state.claim_tenant(&url, &location.display_path())?;
    }
    // Keys named exactly must each be adoptable; keys selected by `--all` or a glob are
    // adopted where Immuta has them, and the others left for `apply`.
    let managed = |key: &str| state.connections.get(key).is_some_and(|s| s.applied.is_some());
    let declared: Vec<String> = desired.connections.iter().map(|c| c.key.clone()).collect();
    let mut problems = Vec::new();
    let mut exact = Vec::new();
    let mut selected = std::collections::BTreeSet::new();
    match which {
        KeySelection::All => selected.extend(declared.iter().filter(|k| !managed(k)).cloned()),
        KeySelection::Keys(keys) => {
            for pattern in keys {
                if !pattern.contains(['*', '?', '[', '{']) {
                    exact.push(pattern.clone());
                    continue;
                }
                let glob = globset::Glob::new(pattern)
                    .with_context(|| format!("invalid --key pattern `{pattern}`"))?
                    .compile_matcher();
                let matched: Vec<&String> = declared.iter().filter(|k| glob.is_match(k)).collect();
                if matched.is_empty() {
                    problems.push(format!("`{pattern}` matches no connection of the YAML"));
                }
                selected.extend(matched.into_iter().filter(|k| !managed(k)).cloned());
            }
        }
    }
    for key in &exact {
        selected.remove(key);
    }
    // Only the connections being adopted need their secrets.
    desired
        .connections
        .retain(|c| exact.contains(&c.key) || selected.contains(&c.key));
    let targets = context::targets(desired, &state.salt)?;
    let mut to_read = Vec::new();
    for key in &exact {
        if !targets.contains_key(key) {
            problems.push(format!("`{key}` is not declared in the YAML; declare it first"));
        } else if managed(key) {
            problems.push(format!("`{key}` is already managed"));
        } else {
            to_read.push((key.clone(), None));
        }
    }
    to_read.extend(selected.iter().map(|k| (k.clone(), None)));
    let mut left_for_apply = Vec::new();
    let parallelism = ctx.settings.parallelism(common);
    let mut adopted = Vec::new();
    for (key, seen) in connctl_engine::refresh::read_many(&client, to_read, parallelism).await? {
        let Some(t) = targets.get(&key) else { continue };
        let Some(seen) = seen else {
            if selected.contains(&key) {
                left_for_apply.push(key);
            } else {
                problems.push(format!(
                    "`{key}` does not exist in Immuta; `connctl apply` creates it"
                ));
            }
            continue;
        };
        let mismatched: Vec<String> = seen
            .fields
            .iter()
            .filter_map(|(path, value)| {
                let want = t.fields.get(path)?;
                (want != value).then(|| format!("{path}: Immuta has {value}, the YAML says {want}"))
            })
            .collect();
        if !mismatched.is_empty() {
            problems.push(format!(
                "`{key}` differs from the YAML; make them agree before importing:\n    {}",
                mismatched.join("\n    ")
            ));
            continue;
        }
        let entry = state.connections.entry(key.clone()).or_insert_with(|| {
            connctl_engine::state::ConnectionState::new(t.connection.technology().as_str())
        });
        entry.applied = Some(t.fields.clone());
        entry.step = Step::Registered;
        entry.protect = t.connection.protect;
        entry.integration_id = seen.integration_id;
        entry.journal(
            Task::Import,
            Phase::Done,
            Some("adopted; secrets taken as the YAML's (Immuta never shows them)".into()),
        );
        adopted.push(key);
    }
    if !adopted.is_empty() {
        lock.verify()?;
        location.save(&mut state, version).await?;
        println!("Imported {}: {}", adopted.len(), adopted.join(", "));
    }
    if !left_for_apply.is_empty() {
        println!(
            "Not in Immuta, left for `connctl apply` to create: {}",
            left_for_apply.join(", ")
        );
    }
    if adopted.is_empty() && left_for_apply.is_empty() && problems.is_empty() {
        println!("Nothing to import: every selected connection is already managed.");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {}", connctl_spec::redact(p));
        }
        return Err(Reported(1).into());
    }
    Ok(0)
}
