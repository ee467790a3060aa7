//! Following a bulk job to its end: [`follow_job`] polls `GET /jobs` (also used by `connctl
//! crawl`), and the applier's `await_job` records what it saw in the state.

use std::time::Duration;

use connctl_immuta::{ApiError, JobState};

use super::{ApplyError, EventKind, Flow, Stop, Worker};
use crate::immuta::Immuta;
use crate::state::Task;

/// How following a bulk job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Completed,
    /// Ended without doing its work, as Immuta says: failed, cancelled or expired.
    Failed,
    Cancelled,
    Expired,
    TimedOut,
    /// A stop was requested while following it; the job goes on in Immuta.
    Stopping,
}

impl JobEnd {
    /// As the apply report says it; all but the last are also what the state records.
    pub fn as_str(self) -> &'static str {
        match self {
            JobEnd::Completed => "completed",
            JobEnd::Failed => "failed",
            JobEnd::Cancelled => "cancelled",
            JobEnd::Expired => "expired",
            JobEnd::TimedOut => "timed out waiting",
            JobEnd::Stopping => "not followed to its end: connctl is stopping",
        }
    }

    /// The job ended without doing its work: the write awaited through it is not done.
    pub fn is_unsuccessful(self) -> bool {
        matches!(self, JobEnd::Failed | JobEnd::Cancelled | JobEnd::Expired)
    }

    /// The end of an unsuccessful job state.
    fn unsuccessful(state: &JobState) -> Option<JobEnd> {
        match state {
            JobState::Failed => Some(JobEnd::Failed),
            JobState::Cancelled => Some(JobEnd::Cancelled),
            JobState::Expired => Some(JobEnd::Expired),
            _ => None,
        }
    }
}

impl std::fmt::Display for JobEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Polls the jobs of `bulk_id` every `poll` until all are terminal (the first that failed,
/// was cancelled or expired gives the end: its work was not done), `timeout` has passed, or
/// `stop` is requested.
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
            return Ok(
                if let Some(end) = jobs.iter().find_map(|j| JobEnd::unsuccessful(&j.state)) {
                    end
                } else if done {
                    JobEnd::Completed
                } else {
                    JobEnd::TimedOut
                },
            );
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
        if end.is_unsuccessful() {
            return Err(ApplyError::JobFailed {
                bulk_id: bulk_id.to_owned(),
                end: end.as_str(),
            }
            .into());
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::immuta::fake::{Call, Fake, Fault};

    const POLL: Duration = Duration::from_millis(1);

    async fn follow(fake: &Fake, timeout: Duration, stop: &Stop) -> JobEnd {
        follow_job(fake, "bulk-9", POLL, timeout, stop).await.unwrap()
    }

    #[tokio::test]
    async fn each_job_end_is_told_apart() {
        let fake = Fake::default();
        let stop = Stop::default();
        let long = Duration::from_secs(60);
        assert_eq!(follow(&fake, long, &stop).await, JobEnd::Completed);
        fake.world().job_states.insert("bulk-9".into(), "failed".into());
        assert_eq!(follow(&fake, long, &stop).await, JobEnd::Failed);
        // Ended without doing the work: not completed either, and told apart.
        for (state, end) in [
            ("cancelled", JobEnd::Cancelled),
            ("expired", JobEnd::Expired),
            ("CANCELLED", JobEnd::Cancelled),
        ] {
            fake.world().job_states.insert("bulk-9".into(), state.into());
            let got = follow(&fake, long, &stop).await;
            assert_eq!(got, end, "{state}");
            assert!(got.is_unsuccessful(), "{state}");
        }
        // Never terminal: the timeout ends it, after at least one more poll.
        fake.world().job_states.insert("bulk-9".into(), "active".into());
        assert_eq!(
            follow(&fake, Duration::from_millis(5), &stop).await,
            JobEnd::TimedOut
        );
        assert!(fake.count(Call::Jobs) > 3, "{:?}", fake.calls());
        stop.request();
        let before = fake.count(Call::Jobs);
        assert_eq!(follow(&fake, long, &stop).await, JobEnd::Stopping);
        assert_eq!(fake.count(Call::Jobs), before, "a stop polls nothing");
    }

    #[tokio::test]
    async fn an_unreadable_job_list_is_an_error() {
        let fake = Fake::default();
        fake.fault(Call::Jobs, Fault::Fail(500));
        let got = follow_job(&fake, "bulk-9", POLL, Duration::from_secs(60), &Stop::default()).await;
        assert!(got.is_err());
    }
}
