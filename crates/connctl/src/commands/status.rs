//! `connctl status`: each connection's step, last bulk job and what Immuta shows now.

use anyhow::{Result, bail};
use connctl_engine::status::ImmutaView;

use crate::cli::CommonArgs;
use crate::context::Context;
use crate::view::{self, status::Row};

pub(super) async fn run(ctx: &Context, keys: &[String], common: &CommonArgs, json: bool) -> Result<u8> {
    let (loaded, path) = ctx.read_state(common).await?;
    let state = loaded.state;
    // Immuta unreachable or refusing the key: the recorded state is still worth showing, with
    // a warning that the job states are the recorded ones (exit 0, docs/plan-json.md).
    let mut unread: Option<String> = None;
    let mut client = ctx
        .client(common)
        .map_err(|e| unread = Some(crate::error::with_help(&e)))
        .ok();
    // What Immuta has now, so a connection deleted or broken there is not shown as fine.
    let live = match &client {
        Some(c) => {
            let wanted = state
                .connections
                .keys()
                .filter(|k| keys.is_empty() || keys.contains(k))
                .cloned()
                .collect();
            match connctl_engine::refresh::refresh(c, &state, &wanted, ctx.settings.parallelism(common)).await
            {
                Ok(live) => Some(live),
                Err(e) => {
                    unread = Some(crate::error::joined(e.to_string(), e.help()));
                    client = None;
                    None
                }
            }
        }
        None => None,
    };
    let mut rows = Vec::new();
    for (key, s) in &state.connections {
        if !keys.is_empty() && !keys.contains(key) {
            continue;
        }
        let immuta = ImmutaView::of(key, s, live.as_ref());
        let bulk = s.last_bulk();
        let recorded =
            |b: &connctl_engine::state::BulkRecord| b.job_state.clone().unwrap_or_else(|| "unknown".into());
        let job = match (bulk, &client) {
            // Gone from Immuta: its last job says nothing about it any more.
            _ if immuta.is_missing() => "-".into(),
            (Some(b), Some(c)) => match c.jobs(&b.bulk_id).await {
                Ok(jobs) if !jobs.is_empty() => jobs
                    .iter()
                    .map(|j| j.state.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                Ok(_) => "unknown".into(),
                Err(e) if e.is_not_found() => "unknown".into(),
                Err(e) => {
                    unread = Some(crate::error::joined(e.to_string(), e.help()));
                    client = None;
                    recorded(b)
                }
            },
            (Some(b), None) => recorded(b),
            (None, _) => "-".into(),
        };
        rows.push(Row {
            key: key.clone(),
            technology: Some(s.technology.to_string()),
            step: s.step.as_str().to_owned(),
            protect: s.protect,
            bulk_id: bulk.map(|b| b.bulk_id.clone()),
            bulk_origin: bulk.map(|b| b.origin.to_string()),
            job_state: job,
            immuta,
            pending: s.pending.as_ref().map(|p| p.operation.as_str().to_owned()),
            cleanup_script: s.pending.as_ref().and_then(|p| p.cleanup_script.clone()),
        });
    }
    for k in keys {
        if !state.connections.contains_key(k) {
            bail!("`{k}` is not in the state ({path})");
        }
    }
    // Connections in Immuta that connctl does not manage: information, never an error.
    let unmanaged: Vec<&String> = match (&live, keys.is_empty()) {
        (Some(live), true) => live
            .keys
            .iter()
            .filter(|k| !state.connections.contains_key(*k))
            .collect(),
        _ => Vec::new(),
    };
    rows.extend(unmanaged.iter().map(|key| Row::unmanaged(key)));
    if let Some(reason) = &unread {
        eprint!("{}", view::status::unread_warning(reason, &path.to_string()));
    }
    if json {
        print!("{}", view::status::json(&rows)?);
        return Ok(0);
    }
    print!("{}", view::status::table(&rows, &path.to_string()));
    if !rows.is_empty() {
        print!("{}", view::status::interrupted(&state, keys));
    }
    // Last, as in a plan: which tenant (and environment) these rows are about.
    let tenant = ctx
        .immuta_url(common)
        .map(|u| connctl_engine::state::normalise_tenant(&u))
        .or(state.tenant.clone());
    if let Some(line) = view::status::tenant_line(tenant.as_deref(), ctx.environment()) {
        print!("{line}");
    }
    Ok(0)
}
