//! Delete: the cleanup script is saved before the `DELETE`, and the entry stays pending until
//! that script ran or was handed to a person.

use std::path::Path;

use super::script::save_script;
use super::{ApplyError, Flow, Outcome, Purpose, RunOutcome, Worker};
use crate::fields::FieldMap;
use crate::immuta::Immuta;
use crate::state::{Pending, PendingOp, Phase, Step, Task};

impl<C: Immuta> Worker<C> {
    /// delete script (saved first) → `DELETE /data/object/{key}` → cleanup → forget.
    ///
    /// The cleanup script is saved and the intent journaled before the `DELETE`, and the entry
    /// stays in the state (pending) until the cleanup ran or was handed to a person, so a lost
    /// answer or a kill anywhere leaves the next run able to finish it.
    pub(super) async fn delete(&self, key: &str, technology: &str) -> Flow<Outcome> {
        let saved = self
            .store
            .get(key)
            .and_then(|s| s.pending)
            .filter(|p| p.operation == PendingOp::Delete)
            .and_then(|p| p.cleanup_script)
            .and_then(|path| std::fs::read_to_string(&path).ok().map(|sql| (path, sql)));
        let (path, sql) = match saved {
            Some((path, sql)) => {
                // An earlier run saved the cleanup script and may have sent the DELETE: read first.
                if self.client.get_connection(key).await?.is_some() {
                    self.deregister(key, technology, &path, false).await?;
                } else {
                    self.store
                        .update(key, technology, |s| {
                            s.step = Step::Deregistered;
                            s.journal(
                                Task::Delete,
                                Phase::Done,
                                Some("confirmed by reading Immuta".into()),
                            );
                        })
                        .await?;
                }
                (path, sql)
            }
            None => {
                let id = match self.integration_id(key).await {
                    Ok(id) => Some(id),
                    Err(_) if self.client.get_connection(key).await?.is_none() => None,
                    Err(e) => return Err(e),
                };
                let Some(id) = id else {
                    self.store.remove(key).await?;
                    return Ok(Outcome::Applied {
                        detail: "already gone from Immuta; forgotten".into(),
                    });
                };
                self.step(key, Task::DeleteScript)?;
                let script = self.client.delete_script(&id).await?;
                let path = save_script(&self.options.scripts_dir, key, Purpose::Delete, &script.sql)
                    .map_err(|source| ApplyError::SaveScript { source })?;
                self.deregister(key, technology, &path, true).await?;
                (path, script.sql)
            }
        };
        self.cleanup(key, technology, &path, &sql).await
    }

    /// Journals the intent (with where the cleanup script is, when `saved_now`) and sends the
    /// `DELETE`.
    pub(super) async fn deregister(
        &self,
        key: &str,
        technology: &str,
        cleanup: &Path,
        saved_now: bool,
    ) -> Flow<()> {
        self.step(key, Task::Delete)?;
        let saved = cleanup.to_path_buf();
        self.store
            .update(key, technology, move |s| {
                s.step = Step::Deleting;
                let shown = saved.display().to_string();
                let mut p = Pending::new(PendingOp::Delete, FieldMap::new());
                p.cleanup_script = Some(saved);
                s.pending = Some(p);
                if saved_now {
                    s.journal(Task::DeleteScript, Phase::Done, Some(shown));
                }
                s.journal(Task::Delete, Phase::Intent, None);
            })
            .await?;
        if let Err(e) = self.client.delete_object(key).await {
            self.journal(key, technology, Task::Delete, Phase::Failed, Some(e.to_string()))
                .await?;
            return Err(ApplyError::Deregister {
                cleanup: cleanup.to_path_buf(),
                source: e,
            }
            .into());
        }
        self.store
            .update(key, technology, |s| {
                s.step = Step::Deregistered;
                s.journal(Task::Delete, Phase::Done, None);
            })
            .await?;
        Ok(())
    }

    /// Runs the saved cleanup script, or hands it to a person; only then is the entry forgotten.
    pub(super) async fn cleanup(
        &self,
        key: &str,
        technology: &str,
        saved: &Path,
        sql: &str,
    ) -> Flow<Outcome> {
        self.step(key, Task::Cleanup)?;
        let Some(conn) = self.targets.get(key).map(|t| &t.connection) else {
            // The entry left the YAML, so there is no executor target: it stays saved for a person.
            self.store.remove(key).await?;
            return Ok(Outcome::Applied {
                detail: format!(
                    "deregistered; run the cleanup script saved at {}",
                    saved.display()
                ),
            });
        };
        self.journal(key, technology, Task::Cleanup, Phase::Intent, None)
            .await?;
        match self.runner.run(conn, Purpose::Delete, sql).await {
            Ok(RunOutcome::Executed) => {
                self.store.remove(key).await?;
                // It ran; a copy left behind would invite running it twice.
                let _ = std::fs::remove_file(saved);
                Ok(Outcome::Applied {
                    detail: "deregistered and cleaned up".into(),
                })
            }
            Ok(RunOutcome::AwaitingManual { path }) => {
                self.store.remove(key).await?;
                Ok(Outcome::Applied {
                    detail: format!("deregistered; run the cleanup script saved at {}", path.display()),
                })
            }
            Err(source) => {
                self.journal(
                    key,
                    technology,
                    Task::Cleanup,
                    Phase::Failed,
                    Some(source.to_string()),
                )
                .await?;
                Err(ApplyError::Cleanup {
                    cleanup: saved.to_path_buf(),
                    source,
                }
                .into())
            }
        }
    }
}
