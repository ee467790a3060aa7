//! Update in place: connection update, rescript (edit script → execute → integration update)
//! and settings, each part journaled before it is sent and recorded once it answered.

use std::path::PathBuf;

use connctl_immuta::ApiError;
use connctl_immuta::payload::{self, Setting};

use super::journal::awaiting_path;
use super::{Flow, Outcome, Purpose, Resolved, Target, Worker, resolve, sha256};
use crate::fields::{self, FieldClass};
use crate::immuta::Immuta;
use crate::plan::{Change, Operation};
use crate::state::{Pending, PendingOp, Phase, Step, Task};

impl<C: Immuta> Worker<C> {
    /// In-place changes: connection update, rescript, settings, state-only. Each remote write
    /// is journaled (with the whole target pending) before it is sent, and its fields count as
    /// applied once it answered; the pending is cleared only when every part is done.
    /// Of the settings, only those in `settings` (the ones that changed) are sent.
    pub(super) async fn update(
        &self,
        t: &Target,
        operations: &[Operation],
        settings: &[Setting],
    ) -> Flow<Outcome> {
        let conn = &t.connection;
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        let secrets = resolve(conn)?;
        let before = self.store.get(key);
        let resumed = before
            .as_ref()
            .and_then(|s| s.pending.as_ref())
            .is_some_and(|p| matches!(p.operation, PendingOp::Update | PendingOp::Rescript));
        let awaiting_edit = resumed && before.as_ref().is_some_and(|s| s.step == Step::AwaitingExecution);
        let mut done = Vec::new();
        let mut bulk_ids = Vec::new();
        for op in operations {
            match op {
                Operation::UpdateConnection => {
                    self.step(key, Task::Update)?;
                    self.intend_update(t, Task::Update).await?;
                    let body = payload::connection_update(conn, &secrets);
                    let answer = self.client.update_connection(key, &body).await;
                    let bulk = self.answered(t, Task::Update, answer).await?;
                    self.part_done(t, FieldClass::Connection, Task::Update, bulk.clone())
                        .await?;
                    bulk_ids.extend(bulk);
                    done.push("connection updated");
                }
                Operation::Rescript => match self.rescript(t, &secrets, awaiting_edit).await? {
                    None => done.push("integration re-scripted"),
                    Some(path) => return Ok(Outcome::AwaitingExecution { path }),
                },
                Operation::Settings => {
                    // Never re-send `isActive` unasked: Immuta cascades it to every child object.
                    let Some(body) = payload::settings_update(conn, settings) else {
                        continue;
                    };
                    self.step(key, Task::Settings)?;
                    self.intend_update(t, Task::Settings).await?;
                    let answer = self.client.update_settings(key, &body).await;
                    let bulk = self.answered(t, Task::Settings, answer).await?;
                    self.part_done(t, FieldClass::Settings, Task::Settings, bulk.clone())
                        .await?;
                    bulk_ids.extend(bulk);
                    done.push("settings updated");
                }
                Operation::RecordState if resumed => {
                    done.push("the interrupted update was found applied in Immuta; recorded")
                }
                Operation::RecordState => done.push("state updated"),
                Operation::Register | Operation::Deregister => {}
            }
        }
        let fields = t.fields.clone();
        let protect = conn.protect;
        let summary = done.join(", ");
        let detail = summary.clone();
        self.store
            .update(key, tech, move |s| {
                s.applied = Some(fields);
                s.protect = protect;
                s.pending = None;
                s.step = Step::Registered;
                s.journal(Task::Update, Phase::Done, Some(detail));
            })
            .await?;
        let mut detail = summary;
        if self.options.wait {
            for b in &bulk_ids {
                let state = self.await_job(key, tech, b).await?;
                detail = format!("{detail}; job {b} {state}");
            }
        }
        Ok(Outcome::Applied { detail })
    }

    /// Journals the intent of one part of an update, with the whole update pending.
    pub(super) async fn intend_update(&self, t: &Target, task: Task) -> Flow<()> {
        let target = t.fields.clone();
        self.store
            .update(&t.connection.key, t.connection.technology().as_str(), move |s| {
                match s
                    .pending
                    .as_mut()
                    .filter(|p| matches!(p.operation, PendingOp::Update | PendingOp::Rescript))
                {
                    Some(p) => {
                        p.operation = PendingOp::Update;
                        p.target = target;
                    }
                    None => s.pending = Some(Pending::new(PendingOp::Update, target)),
                }
                s.journal(task, Phase::Intent, None);
            })
            .await?;
        Ok(())
    }

    /// The answer to one remote write of an update: a failure is journaled before it is returned.
    pub(super) async fn answered<T>(&self, t: &Target, task: Task, answer: Result<T, ApiError>) -> Flow<T> {
        match answer {
            Ok(value) => Ok(value),
            Err(e) => {
                let tech = t.connection.technology().as_str();
                self.journal(&t.connection.key, tech, task, Phase::Failed, Some(e.to_string()))
                    .await?;
                Err(e.into())
            }
        }
    }

    /// One part of an update answered: its fields are applied, its bulkId recorded.
    pub(super) async fn part_done(
        &self,
        t: &Target,
        class: FieldClass,
        task: Task,
        bulk: Option<String>,
    ) -> Flow<()> {
        let target = t.fields.clone();
        self.store
            .update(&t.connection.key, t.connection.technology().as_str(), move |s| {
                if let Some(b) = bulk {
                    s.record_bulk(b, task.as_str());
                }
                if let Some(applied) = s.applied.as_mut() {
                    applied.retain(|path, _| fields::class_of(path) != class);
                    applied.extend(
                        target
                            .into_iter()
                            .filter(|(path, _)| fields::class_of(path) == class),
                    );
                }
                s.journal(task, Phase::Done, None);
            })
            .await?;
        Ok(())
    }

    /// edit script → execute → `PUT /integrations/{id}`. `Some(path)` when a person must run it.
    /// `awaiting`: an earlier run saved the edit script for a person, so only the `PUT` is left.
    pub(super) async fn rescript(
        &self,
        t: &Target,
        secrets: &Resolved,
        awaiting: bool,
    ) -> Flow<Option<PathBuf>> {
        let conn = &t.connection;
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        let id = self.integration_id(key).await?;
        let body = payload::script_request(conn, secrets);
        if awaiting {
            // A person was to run the edit script; the integration update tells whether they did.
            self.step(key, Task::UpdateIntegration)?;
            self.intend_update(t, Task::UpdateIntegration).await?;
            if let Err(e) = self.client.update_integration(&id, &body).await {
                if e.is_transient() {
                    return self
                        .answered(t, Task::UpdateIntegration, Err::<(), _>(e))
                        .await
                        .map(|()| None);
                }
                let state = self.store.get(key);
                let path = awaiting_path(state.as_ref());
                let shown = path.display().to_string();
                self.journal(key, tech, Task::UpdateIntegration, Phase::Awaiting, Some(shown))
                    .await?;
                return Ok(Some(path));
            }
            self.part_done(t, FieldClass::Integration, Task::UpdateIntegration, None)
                .await?;
            return Ok(None);
        }
        self.step(key, Task::EditScript)?;
        // An edit script changes nothing until it runs: record it with the intent to run it.
        let script = self.client.edit_script(&id, &body).await?;
        let target = t.fields.clone();
        let hash = sha256(&script.sql);
        self.store
            .update(key, tech, move |s| {
                let mut p = Pending::new(PendingOp::Update, target);
                p.script_sha256 = Some(hash);
                s.pending = Some(p);
                s.journal(Task::EditScript, Phase::Done, None);
                s.journal(Task::Execute, Phase::Intent, None);
            })
            .await?;
        if let Some(path) = self.execute(conn, Purpose::Edit, &script.sql, None).await? {
            return Ok(Some(path));
        }
        self.step(key, Task::UpdateIntegration)?;
        self.intend_update(t, Task::UpdateIntegration).await?;
        let answer = self.client.update_integration(&id, &body).await;
        self.answered(t, Task::UpdateIntegration, answer).await?;
        self.part_done(t, FieldClass::Integration, Task::UpdateIntegration, None)
            .await?;
        Ok(None)
    }
}

/// The settings an update changes: only these are sent (`isActive` cascades to children).
pub(super) fn changed_settings(change: &Change) -> Vec<Setting> {
    change
        .fields
        .iter()
        .filter_map(|f| fields::setting_of(&f.path))
        .collect()
}
