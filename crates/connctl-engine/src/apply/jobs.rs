//! Following a bulk job to its end.

use super::{ApplyError, EventKind, Flow, Worker};
use crate::immuta::Immuta;
use crate::state::Task;

/// How following a bulk job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobEnd {
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

impl<C: Immuta> Worker<C> {
    /// Follows a bulk job to a terminal state, recording what it saw.
    pub(super) async fn await_job(&self, key: &str, tech: &str, bulk_id: &str) -> Flow<JobEnd> {
        self.emit(key, EventKind::Step(Task::Await));
        let started = tokio::time::Instant::now();
        loop {
            if self.options.stop.is_requested() {
                return Ok(JobEnd::Stopping);
            }
            let jobs = self.client.jobs(bulk_id).await?;
            let done = !jobs.is_empty() && jobs.iter().all(|j| j.is_terminal());
            if done || started.elapsed() > self.options.job_timeout {
                let end = if jobs.iter().any(|j| j.state == "failed") {
                    JobEnd::Failed
                } else if done {
                    JobEnd::Completed
                } else {
                    JobEnd::TimedOut
                };
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
                return Ok(end);
            }
            tokio::time::sleep(self.options.job_poll).await;
        }
    }
}
