//! Applying object rows: per connection, in the plan's order (parents before children), each
//! object read again, then one `PUT /data/settings/{path}` with only the settings that still
//! differ. A PUT is idempotent, so resuming needs no journal replay: the next run reads each
//! object and sends only what still differs. The intent is recorded before the PUT, its bulkId
//! and what Immuta now has after it.

use connctl_immuta::payload;

use super::{ApplyError, Flow, Outcome, Worker};
use crate::immuta::Immuta;
use crate::objects::{ObjectAction, ObjectChange, ObjectSettings, SeenObject};
use crate::state::{ObjectRecord, Phase, Task, now};

impl<C: Immuta> Worker<C> {
    /// Applies `rows` (one connection's, in order). A connection just registered is given its
    /// registration job's end first: its objects exist only after the first crawl.
    pub(super) async fn objects(&self, key: &str, tech: &str, rows: &[ObjectChange]) -> Flow<Outcome> {
        if rows.iter().any(|r| r.after_registration)
            && let Some(bulk) = self.store.get(key).and_then(|s| {
                s.bulk_ids
                    .iter()
                    .rev()
                    .find(|b| b.origin == Task::Register.as_str() && b.job_state.is_none())
                    .map(|b| b.bulk_id.clone())
            })
        {
            self.await_job(key, tech, &bulk).await?;
        }
        let mut sent = 0;
        let mut recorded = 0;
        for row in rows.iter().filter(|r| r.action != ObjectAction::Missing) {
            self.step(key, Task::ObjectSettings)?;
            let full = row.full_path();
            let Some(live) = self.client.get_data_object(&full).await? else {
                return Err(ApplyError::ObjectMissing {
                    key: key.to_owned(),
                    path: row.path.clone(),
                }
                .into());
            };
            let live = SeenObject::of(&live).settings;
            let send = row.settings.differing(&live);
            if send.is_empty() {
                self.record_object(key, tech, row, None).await?;
                recorded += 1;
                continue;
            }
            let path = row.path.clone();
            self.store
                .update(key, tech, move |s| {
                    s.objects.entry(path.clone()).or_default().pending = Some(send);
                    s.journal(Task::ObjectSettings, Phase::Intent, Some(path));
                })
                .await?;
            let body = payload::object_settings(send.active, send.activate_new_children);
            let bulk = self.client.update_object_settings(&full, &body).await?;
            self.record_object(key, tech, row, bulk.clone()).await?;
            sent += 1;
            if self.options.wait
                && let Some(bulk) = bulk
            {
                self.await_job(key, tech, &bulk).await?;
            }
        }
        let mut detail = format!("{sent} object(s) set");
        if recorded > 0 {
            detail.push_str(&format!(", {recorded} already as wanted"));
        }
        Ok(Outcome::Applied { detail })
    }

    /// Records that Immuta has `row`'s settings (the PUT answered, or nothing was needed).
    async fn record_object(
        &self,
        key: &str,
        tech: &str,
        row: &ObjectChange,
        bulk: Option<String>,
    ) -> Flow<()> {
        let path = row.path.clone();
        let applied: ObjectSettings = row.settings;
        self.store
            .update(key, tech, move |s| {
                if let Some(b) = &bulk {
                    s.record_bulk(b.clone(), Task::ObjectSettings.as_str());
                }
                let detail = match &bulk {
                    Some(b) => format!("{path} (bulkId {b})"),
                    None => path.clone(),
                };
                s.objects.insert(
                    path,
                    ObjectRecord {
                        applied,
                        pending: None,
                        bulk_id: bulk,
                        at: now(),
                    },
                );
                s.journal(Task::ObjectSettings, Phase::Done, Some(detail));
            })
            .await?;
        Ok(())
    }
}
