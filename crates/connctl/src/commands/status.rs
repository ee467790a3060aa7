//! `connctl status`: each connection's step, last bulk job and what Immuta shows now.

use anyhow::{Result, bail};
use connctl_engine::refresh::Live;

use crate::cli::CommonArgs;
use crate::context::Context;

pub(super) async fn run(ctx: &Context, keys: &[String], common: &CommonArgs, json: bool) -> Result<u8> {
    let (loaded, path) = ctx.read_state(common).await?;
    let state = loaded.state;
    // Immuta unreachable or refusing the key: the recorded state is still worth showing, with
    // a warning that the job states are the recorded ones (exit 0, docs/plan-json.md).
    let mut unread: Option<String> = None;
    let mut client = ctx
        .client(common)
        .map_err(|e| unread = Some(format!("{e:#}")))
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
                    unread = Some(format!("{e:#}"));
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
        let immuta = immuta_health(key, s, live.as_ref());
        let bulk = s.last_bulk();
        let recorded =
            |b: &connctl_engine::state::BulkRecord| b.job_state.clone().unwrap_or_else(|| "unknown".into());
        let job = match (bulk, &client) {
            // Gone from Immuta: its last job says nothing about it any more.
            _ if immuta == "missing" => "-".into(),
            (Some(b), Some(c)) => match c.jobs(&b.bulk_id).await {
                Ok(jobs) if !jobs.is_empty() => {
                    jobs.iter().map(|j| j.state.clone()).collect::<Vec<_>>().join(",")
                }
                Ok(_) => "unknown".into(),
                Err(e) if e.is_not_found() => "unknown".into(),
                Err(e) => {
                    unread = Some(e.to_string());
                    client = None;
                    recorded(b)
                }
            },
            (Some(b), None) => recorded(b),
            (None, _) => "-".into(),
        };
        rows.push(serde_json::json!({
            "key": key,
            "technology": s.technology,
            "step": s.step.as_str(),
            "protect": s.protect,
            "bulkId": bulk.map(|b| b.bulk_id.clone()),
            "bulkOrigin": bulk.map(|b| b.origin.clone()),
            "jobState": job,
            "immuta": immuta,
            "pending": s.pending.as_ref().map(|p| p.operation.as_str()),
            "cleanupScript": s.pending.as_ref().and_then(|p| p.cleanup_script.as_ref()),
        }));
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
    for key in &unmanaged {
        rows.push(serde_json::json!({
            "key": key,
            "technology": null,
            "step": "-",
            "protect": false,
            "bulkId": null,
            "bulkOrigin": null,
            "jobState": "-",
            "immuta": "unmanaged",
            "pending": null,
            "cleanupScript": null,
        }));
    }
    if let Some(reason) = &unread {
        eprintln!(
            "warning: live job states could not be read from Immuta: {reason}\n  = help: JOB shows the states recorded in {}",
            path
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!("The state ({path}) holds no connections.");
        return Ok(0);
    }
    println!(
        "{:<28} {:<11} {:<19} {:<38} {:<10} IMMUTA",
        "KEY", "TECHNOLOGY", "STEP", "LAST BULK ID", "JOB"
    );
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
        // The state still says registered; Immuta says otherwise, and Immuta wins.
        let step = if s("immuta") == "missing" {
            "deleted in Immuta".into()
        } else {
            s("step")
        };
        println!(
            "{:<28} {:<11} {:<19} {:<38} {:<10} {}",
            s("key"),
            s("technology"),
            step,
            s("bulkId"),
            s("jobState"),
            s("immuta")
        );
    }
    // Operations that stopped part-way, above all a delete whose cleanup has not run yet.
    for (key, s) in &state.connections {
        let Some(p) = s
            .pending
            .as_ref()
            .filter(|_| keys.is_empty() || keys.contains(key))
        else {
            continue;
        };
        match &p.cleanup_script {
            Some(path) => println!(
                "{key}: an interrupted delete; its cleanup script is saved at {} and the next apply finishes it",
                path.display()
            ),
            None => println!(
                "{key}: an interrupted {}; the next apply resumes it",
                p.operation.as_str()
            ),
        }
    }
    Ok(0)
}

/// What Immuta shows of a connection in the state: `ok`, `missing` (deleted outside connctl),
/// its health problems, `drifted` (a field changed in Immuta; `connctl drift` shows which), `-`
/// (never registered) or `unknown` (Immuta was not read).
pub(super) fn immuta_health(
    key: &str,
    s: &connctl_engine::state::ConnectionState,
    live: Option<&Live>,
) -> String {
    let Some(live) = live else { return "unknown".into() };
    if s.applied.is_none() {
        return "-".into();
    }
    if !live.keys.contains(key) {
        // connctl's own interrupted delete is not a deletion behind its back.
        let deleting = s
            .pending
            .as_ref()
            .is_some_and(|p| p.operation == connctl_engine::state::PendingOp::Delete);
        return if deleting {
            "deleting".into()
        } else {
            "missing".into()
        };
    }
    let problems: Vec<&str> = live
        .health
        .iter()
        .filter(|h| h.key == key)
        .map(|h| h.kind.as_str())
        .collect();
    if !problems.is_empty() {
        return problems.join(", ");
    }
    let drifted = match (&s.applied, live.fields.get(key)) {
        (Some(applied), Some(seen)) => seen
            .iter()
            .any(|(path, now)| applied.get(path).is_some_and(|was| was != now)),
        _ => false,
    };
    if drifted { "drifted".into() } else { "ok".into() }
}
