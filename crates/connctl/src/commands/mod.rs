//! The commands, one module per command (jj-style): each takes parsed arguments, does its work
//! through the library crates, hands its result to a view, and returns the exit code. This
//! module dispatches and holds the few helpers several commands share.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use connctl_engine::lock::WriterLock;
use connctl_engine::plan::Plan;

use crate::cli::{Cli, Command};
use crate::context::Context;

mod apply;
mod completions;
mod crawl;
mod drift;
mod export;
mod import;
mod init;
mod man;
mod plan;
mod preflight;
mod render;
mod schema;
mod show;
mod state;
mod status;
mod validate;

/// Deletes and replaces one run may make unless `--max-deletes` says otherwise; plan and apply
/// use the same cap so the plan shows the refusal apply would give.
const DEFAULT_MAX_DELETES: usize = 1;

pub async fn run(cli: Cli, color: bool) -> Result<u8> {
    let config = crate::context::ConfigArgs::from_global(&cli.global);
    match cli.command {
        Command::Init { dir, environments } => init::run(&dir, &environments),
        Command::Render { paths } => {
            let ctx = Context::new(&config, color)?;
            render::run(&ctx, &paths)
        }
        Command::Schema => schema::run(),
        Command::Completions { shell } => completions::run(shell),
        Command::Man { out } => man::run(&out),
        Command::Validate {
            paths,
            resolve_secrets,
        } => {
            let ctx = Context::new(&config, color)?;
            validate::run(&ctx, &paths, resolve_secrets)
        }
        Command::Plan {
            plan,
            out,
            detailed_exitcode,
            preflight,
        } => {
            let ctx = Context::new(&config, color)?;
            plan::run(&ctx, &plan, out.as_deref(), detailed_exitcode, preflight).await
        }
        Command::Show { plan, format } => show::run(&plan, format, color),
        Command::Apply {
            plan,
            auto_approve,
            wait,
            allow_cascade,
            skip_preflight,
            lock,
        } => {
            let ctx = Context::new(&config, color)?;
            apply::run(
                &ctx,
                &plan,
                auto_approve,
                wait,
                allow_cascade,
                skip_preflight,
                lock.lock_timeout,
            )
            .await
        }
        Command::Drift {
            paths,
            common,
            format,
            allow_empty_state,
        } => {
            let ctx = Context::new(&config, color)?;
            drift::run(&ctx, &paths, &common, format, allow_empty_state).await
        }
        Command::Status { keys, common, json } => {
            let ctx = Context::new(&config, color)?;
            status::run(&ctx, &keys, &common, json).await
        }
        Command::Import {
            paths,
            keys,
            all,
            common,
            lock,
        } => {
            let ctx = Context::new(&config, color)?;
            let which = if all {
                connctl_engine::adopt::Selection::All
            } else {
                connctl_engine::adopt::Selection::Keys(keys)
            };
            import::run(&ctx, &paths, &which, &common, lock.lock_timeout).await
        }
        Command::Export {
            keys,
            out,
            common,
            secret_ref,
            objects,
        } => {
            let ctx = Context::new(&config, color)?;
            export::run(
                &ctx,
                &keys,
                out.as_deref(),
                &common,
                secret_ref.as_deref(),
                objects,
            )
            .await
        }
        Command::Crawl {
            key,
            path,
            no_wait,
            immuta_url,
        } => {
            let ctx = Context::new(&config, color)?;
            let common = crate::cli::CommonArgs {
                immuta_url,
                state: None,
                parallelism: None,
            };
            crawl::run(&ctx, &key, path.as_deref(), no_wait, &common).await
        }
        Command::Preflight {
            paths,
            common,
            targets,
            format,
        } => {
            let ctx = Context::new(&config, color)?;
            preflight::run(&ctx, &paths, &common, &targets, format).await
        }
        Command::State(cmd) => {
            let ctx = Context::new(&config, color)?;
            state::run(&ctx, cmd).await
        }
    }
}

/// Reads a plan saved with `plan --out`, refusing another format version.
pub(super) fn read_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let plan: Plan =
        serde_json::from_str(&text).with_context(|| format!("{} is not a connctl plan", path.display()))?;
    if plan.format_version != connctl_engine::plan::PLAN_FORMAT_VERSION {
        bail!(
            "{} has plan format {}, this connctl reads {}",
            path.display(),
            plan.format_version,
            connctl_engine::plan::PLAN_FORMAT_VERSION
        );
    }
    Ok(plan)
}

/// Releases a writer's lock at the end of a command; a failure is a warning (the lock then
/// expires by itself, or `state unlock` frees it).
pub(super) async fn release(lock: &WriterLock) {
    if let Err(e) = lock.release().await {
        let help = lock
            .id()
            .map(|id| format!("if the lock is still held, `connctl state unlock {id}` releases it"));
        crate::view::notice::warning(&e, help.as_deref());
    }
}
