//! Following a bulk job to its end: [`follow_job`] polls `GET /jobs` (also used by `connctl
//! crawl`), and the applier's `await_job` records what it saw in the state.

use std::time::Duration;

use connctl_immuta::ApiError;

use super::{ApplyError, EventKind, Flow, Stop, Worker};
use crate::immuta::Immuta;
use crate::state::Task;

/// How following a bulk job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Completed,
    Failed,
    TimedOut,
    /// A stop was requested while following it; the job goes on in Immuta.
    Stopping,
}

impl JobEnd {
    /// As the apply report says it; the first three are also what the state records.
    fn as_str(self) -> &'static str {
        match self {
            JobEnd::Completed => "completed",
            JobEnd::Failed => "failed",
            JobEnd::TimedOut => "timed out waiting",
            JobEnd::Stopping => "not followed to its end: connctl is stopping",
        }
    }
}

impl std::fmt::Display for JobEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Polls the jobs of `bulk_id` every `poll` until all are terminal (any `failed` one makes it
/// [`JobEnd::Failed`]), `timeout` has passed, or `stop` is requested.
pub async fn follow_job(
    client: &impl Immuta,
    bulk_id: &str,
    poll: Duration,
    timeout: Duration,
    stop: &Stop,
) -> Result<JobEnd, ApiError> {
    let started = tokio::time::Instant::now();
    loop {
        if stop.is_requested() {
            return Ok(JobEnd::Stopping);
        }
        let jobs = client.jobs(bulk_id).await?;
        let done = !jobs.is_empty() && jobs.iter().all(|j| j.is_terminal());
        if done || started.elapsed() > timeout {
            return Ok(if jobs.iter().any(|j| j.state == "failed") {
                JobEnd::Failed
            } else if done {
                JobEnd::Completed
            } else {
                JobEnd::TimedOut
            });
        }
        tokio::time::sleep(poll).await;
    }
}

impl<C: Immuta> Worker<C> {
    /// Follows a bulk job to a terminal state, recording what it saw.
    pub(super) async fn await_job(&self, key: &str, tech: &str, bulk_id: &str) -> Flow<JobEnd> {
        self.emit(key, EventKind::Step(Task::Await));
        let options = &self.options;
        let end = follow_job(
            &self.client,
            bulk_id,
            options.job_poll,
            options.job_timeout,
            &options.stop,
        )
        .await?;
        if end == JobEnd::Stopping {
            return Ok(end);
        }
        let b = bulk_id.to_owned();
        self.store
            .update(key, tech, move |s| {
                if let Some(r) = s.bulk_ids.iter_mut().find(|r| r.bulk_id == b) {
                    r.job_state = Some(end.as_str().to_owned());
                }
            })
            .await?;
        if end == JobEnd::Failed {
            return Err(ApplyError::JobFailed {
                bulk_id: bulk_id.to_owned(),
            }
            .into());
        }
        Ok(end)
    }
}
