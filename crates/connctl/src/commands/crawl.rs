//! `connctl crawl`: asks Immuta to look for new objects below a connection or one of its objects
//! (`POST /data/crawl/{path}`) and follows the crawl's job with the applier's job polling
//! (`connctl_engine::apply::follow_job`), as `apply --wait` follows its jobs.

use anyhow::Result;
use connctl_engine::apply::{ApplyOptions, JobEnd, Stop, follow_job};
use connctl_immuta::ApiError;
use connctl_spec::ObjectPath;

use crate::cli::CommonArgs;
use crate::context::Context;
use crate::error::Hinted;
use crate::view;

pub(super) async fn run(
    ctx: &Context,
    key: &str,
    path: Option<&str>,
    no_wait: bool,
    common: &CommonArgs,
) -> Result<u8> {
    // Everything typed is checked before anything is sent.
    if key.trim().is_empty() {
        return Err(Hinted::new(
            "KEY is empty",
            "name the connection's key, e.g. `connctl crawl snowflake-prod`",
        )
        .into());
    }
    let below = path.map(parse_path).transpose()?;
    let shown = match &below {
        Some(below) => format!("{key}/{below}"),
        None => key.to_owned(),
    };
    let full = match &below {
        Some(below) => below.full(key),
        None => vec![key.to_owned()],
    };
    let client = ctx.client(common)?;
    let bulk_id = match client.crawl(&full).await {
        Ok(bulk_id) => bulk_id,
        Err(ApiError::Status { status: 404, .. }) => {
            return Err(Hinted::new(
                format!("`{shown}` does not exist in Immuta; nothing was crawled"),
                if below.is_some() {
                    "check the key and the path; an object appears in Immuta only once a crawl of its parent found it: crawl the connection (or a parent path) first"
                } else {
                    "check the key: `connctl export` lists the connections Immuta has"
                },
            )
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(bulk_id) = bulk_id else {
        view::crawl::started_without_job(&shown);
        return Ok(0);
    };
    view::crawl::started(&shown, &bulk_id);
    if no_wait {
        return Ok(0);
    }
    let options = ApplyOptions::default();
    // Ctrl-C keeps its default meaning here (exit at once): nothing is recorded, and the job
    // goes on in Immuta either way.
    let end = follow_job(
        &client,
        &bulk_id,
        options.job_poll,
        options.job_timeout,
        &Stop::default(),
    )
    .await?;
    match end {
        JobEnd::Completed => {
            view::crawl::completed(&shown);
            Ok(0)
        }
        JobEnd::Failed | JobEnd::Cancelled | JobEnd::Expired => Err(Hinted::new(
            format!("the crawl of `{shown}` did not complete: Immuta says it {end} (job {bulk_id})"),
            "Immuta's job page (or GET /jobs?bulkId=…) says why; crawl again once it is fixed",
        )
        .into()),
        JobEnd::TimedOut | JobEnd::Stopping => Err(Hinted::new(
            format!(
                "the crawl of `{shown}` did not finish within {} s (job {bulk_id}: {end})",
                options.job_timeout.as_secs()
            ),
            "it goes on in Immuta; follow it there, or crawl again later",
        )
        .into()),
    }
}

/// PATH as the YAML's `objects:` write it (its quoting rule is `ObjectPath`'s).
fn parse_path(text: &str) -> Result<ObjectPath> {
    ObjectPath::parse(text).map_err(|e| {
        Hinted::new(
            format!("PATH `{text}` {e}; nothing was sent"),
            format!(
                "write the path below the connection, e.g. SALES/PUBLIC; {}",
                connctl_spec::objects::QUOTING_HELP
            ),
        )
        .into()
    })
}
