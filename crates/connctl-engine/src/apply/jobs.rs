//! Following a bulk job to its end.

use super::{ApplyError, EventKind, Flow, Worker};
use crate::immuta::Immuta;
use crate::state::Task;

impl<C: Immuta> Worker<C> {
    /// Follows a bulk job to a terminal state, recording what it saw.
    pub(super) async fn await_job(&self, key: &str, tech: &str, bulk_id: &str) -> Flow<String> {
        self.emit(key, EventKind::Step(Task::Await));
        let started = tokio::time::Instant::now();
        loop {
            if self.options.stop.is_requested() {
                return Ok("not followed to its end: connctl is stopping".into());
            }
            let jobs = self.client.jobs(bulk_id).await?;
            let done = !jobs.is_empty() && jobs.iter().all(|j| j.is_terminal());
            if done || started.elapsed() > self.options.job_timeout {
                let state = if jobs.iter().any(|j| j.state == "failed") {
                    "failed".to_owned()
                } else if done {
                    "completed".to_owned()
                } else {
                    "timed out waiting".to_owned()
                };
                let (b, recorded) = (bulk_id.to_owned(), state.clone());
                self.store
                    .update(key, tech, move |s| {
                        if let Some(r) = s.bulk_ids.iter_mut().find(|r| r.bulk_id == b) {
                            r.job_state = Some(recorded);
                        }
                    })
                    .await?;
                if state == "failed" {
                    return Err(ApplyError::JobFailed {
                        bulk_id: bulk_id.to_owned(),
                    }
                    .into());
                }
                return Ok(state);
            }
            tokio::time::sleep(self.options.job_poll).await;
        }
    }
}
