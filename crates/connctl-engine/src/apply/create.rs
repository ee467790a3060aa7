//! Create: script → execute → test → register, resumed from whatever step the journal reached
//! (a registration that may have happened is read, never repeated).

use std::path::PathBuf;
use std::time::Duration;

use connctl_immuta::payload;
use connctl_spec::Connection;

use super::journal::awaiting_path;
use super::{ATTEMPTS, ApplyError, Flow, Outcome, Purpose, RunOutcome, Target, Worker, resolve, sha256};
use crate::immuta::Immuta;
use crate::state::{Pending, PendingOp, Phase, ScriptRecord, Step, Task};

impl<C: Immuta> Worker<C> {
    /// script → execute → test → register → (await).
    pub(super) async fn create(&self, t: &Target, fresh: bool) -> Flow<Outcome> {
        let conn = &t.connection;
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        let secrets = resolve(conn)?;
        let registration = payload::registration(conn, &secrets);
        let target_fields = t.fields.clone();

        let before = self.store.get(key);
        let resuming = !fresh
            && before.as_ref().is_some_and(|s| {
                s.pending
                    .as_ref()
                    .is_some_and(|p| p.operation == PendingOp::Create)
            });
        let mut step = if resuming {
            before.as_ref().map(|s| s.step).unwrap_or_default()
        } else {
            Step::New
        };

        // Reconcile first: a registration that may have happened is read, not repeated.
        if resuming && self.client.get_connection(key).await?.is_some() {
            return self
                .finish_registration(t, None, "registration confirmed by reading Immuta")
                .await;
        }
        // A script that ran in an earlier attempt is recognised by a passing dry run, so an
        // interrupted execution is not run twice.
        // The same holds after a registration Immuta refused (`registering`, not in Immuta): a
        // failing dry run sends it back to the script instead of re-sending a doomed register.
        let recheck = matches!(
            step,
            Step::Scripted | Step::AwaitingExecution | Step::Executed | Step::Tested | Step::Registering
        );
        if resuming && recheck {
            match self.client.test_connection(&registration).await {
                Ok(()) => step = Step::Tested,
                Err(e) if step == Step::AwaitingExecution && !e.is_transient() => {
                    return Ok(Outcome::AwaitingExecution {
                        path: awaiting_path(before.as_ref()),
                    });
                }
                // Cannot tell whether the script ran: stop rather than run it a second time.
                Err(e) if e.is_transient() || e.is_unauthorized() || e.is_unexpected_answer() => {
                    return Err(e.into());
                }
                Err(_) => step = Step::New,
            }
        }

        if matches!(step, Step::New | Step::Scripted | Step::Executed) {
            self.step(key, Task::Script)?;
            let script = self
                .client
                .create_script(&payload::script_request(conn, &secrets))
                .await?;
            // Getting a script changes nothing in Immuta, so its outcome and the intent to run
            // it share one write: the first that must reach the disk before a remote effect.
            let hash = sha256(&script.sql);
            let target = target_fields.clone();
            self.store
                .update(key, tech, move |s| {
                    s.step = Step::Scripted;
                    match s.pending.as_mut().filter(|p| p.operation == PendingOp::Create) {
                        Some(p) => p.script_sha256 = Some(hash),
                        None => {
                            let mut p = Pending::new(PendingOp::Create, target);
                            p.script_sha256 = Some(hash);
                            s.pending = Some(p);
                        }
                    }
                    s.journal(Task::Script, Phase::Done, None);
                    s.journal(Task::Execute, Phase::Intent, None);
                })
                .await?;

            if let Some(path) = self
                .execute(conn, Purpose::Create, &script.sql, Some(Step::Executed))
                .await?
            {
                return Ok(Outcome::AwaitingExecution { path });
            }
            step = Step::Executed;
        }

        let tested_now = step == Step::Executed;
        if tested_now {
            self.step(key, Task::Test)?;
            self.client.test_connection(&registration).await?;
        }
        // The dry run changes nothing, so its outcome and the registration intent share a write.
        self.step(key, Task::Register)?;
        self.store
            .update(key, tech, move |s| {
                if tested_now {
                    s.journal(Task::Test, Phase::Done, None);
                }
                s.step = Step::Registering;
                s.journal(Task::Register, Phase::Intent, None);
            })
            .await?;
        for attempt in 0..ATTEMPTS {
            match self.client.register(&registration).await {
                Ok(registered) => {
                    return self
                        .finish_registration(t, registered.bulk_id, "registered")
                        .await;
                }
                Err(e) if e.is_conflict() || e.outcome_unknown() => {
                    // It may have taken effect: read before trying again.
                    if self.client.get_connection(key).await?.is_some() {
                        return self
                            .finish_registration(t, None, "registration confirmed by reading Immuta")
                            .await;
                    }
                    if e.is_conflict() || attempt + 1 == ATTEMPTS {
                        return Err(e.into());
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
                }
                Err(e) => {
                    self.journal(key, tech, Task::Register, Phase::Failed, Some(e.to_string()))
                        .await?;
                    return Err(e.into());
                }
            }
        }
        Err(ApplyError::RegistrationGaveUp { attempts: ATTEMPTS }.into())
    }

    /// Runs a script and journals the outcome: the sha256 and `done`, the saved path (`Some`, a
    /// person must run it), or the failure. The caller has already written the intent.
    /// `executed` is the step to record when it ran.
    pub(super) async fn execute(
        &self,
        conn: &Connection,
        purpose: Purpose,
        sql: &str,
        executed: Option<Step>,
    ) -> Flow<Option<PathBuf>> {
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        self.step(key, Task::Execute)?;
        match self.runner.run(conn, purpose, sql).await {
            Ok(RunOutcome::Executed) => {
                let record = ScriptRecord {
                    purpose: purpose.as_str().into(),
                    sha256: sha256(sql),
                    at: crate::state::now(),
                };
                self.store
                    .update(key, tech, move |s| {
                        if let Some(step) = executed {
                            s.step = step;
                        }
                        s.scripts.push(record);
                        s.journal(Task::Execute, Phase::Done, None);
                    })
                    .await?;
                Ok(None)
            }
            Ok(RunOutcome::AwaitingManual { path }) => {
                let shown = path.display().to_string();
                self.store
                    .update(key, tech, move |s| {
                        s.step = Step::AwaitingExecution;
                        s.journal(Task::Execute, Phase::Awaiting, Some(shown));
                    })
                    .await?;
                Ok(Some(path))
            }
            Err(source) => {
                self.journal(key, tech, Task::Execute, Phase::Failed, Some(source.to_string()))
                    .await?;
                Err(ApplyError::Execute { purpose, source }.into())
            }
        }
    }

    pub(super) async fn finish_registration(
        &self,
        t: &Target,
        bulk_id: Option<String>,
        how: &str,
    ) -> Flow<Outcome> {
        let key = t.connection.key.clone();
        let tech = t.connection.technology().as_str();
        let fields = t.fields.clone();
        let protect = t.connection.protect;
        let bulk = bulk_id.clone();
        let detail = how.to_owned();
        self.store
            .update(&key, tech, move |s| {
                if let Some(b) = bulk {
                    s.record_bulk(b, Task::Register.as_str());
                }
                s.step = Step::Registered;
                s.applied = Some(fields);
                s.pending = None;
                s.protect = protect;
                s.integration_id = None;
                s.journal(Task::Register, Phase::Done, Some(detail));
            })
            .await?;
        let mut text = how.to_owned();
        if let Some(b) = bulk_id {
            text = format!("{text}, bulkId {b}");
            if self.options.wait {
                let state = self.await_job(&key, tech, &b).await?;
                text = format!("{text} ({state})");
            }
        }
        Ok(Outcome::Applied { detail: text })
    }
}
