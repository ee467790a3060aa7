//! The emulator's in-memory world: connections, integrations, generated scripts and which of
//! their statements ran, bulk jobs, and warehouse statements; plus JSON persistence for
//! `--state-file`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::{Flat, Settings, Tech};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2023-12-22T18:28:46.328Z` for a Unix-epoch millisecond.
pub fn timestamp(ms: u64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub key: String,
    pub tech: Tech,
    /// The `connection` object as registered, secrets included (never returned).
    pub connection: Value,
    pub settings: Settings,
    pub integration_id: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Databases, schemas and tables below the connection, in path order.
    #[serde(default)]
    pub children: Vec<Child>,
}

/// A data object below a connection (database, schema or table). Each has its own status and
/// `activateNewChildren`, and knows which of them were set on itself (an override) rather than
/// inherited; the tree's rules (cascade, crawl, overrides) are in `immuta::objects::tree`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Child {
    /// The object path without the connection key, e.g. `["DB", "PUBLIC", "ORDERS"]`.
    pub path: Vec<String>,
    pub active: bool,
    /// The status was set on this object itself (through the API or the UI), not by a cascade.
    #[serde(default)]
    pub active_override: bool,
    /// `activateNewChildren` set on this object itself; `None`: inherited from its parent.
    #[serde(default)]
    pub activate_new_children: Option<bool>,
    /// Other settings set on it (`dataOwners`, `infrastructureAdmins`).
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
    /// Known to Immuta. `false`: only in the warehouse (an admin seed) until the next crawl.
    #[serde(default = "known")]
    pub crawled: bool,
}

fn known() -> bool {
    true
}

impl Child {
    /// A crawled object with an inherited status and no settings of its own.
    pub fn new(path: Vec<String>, active: bool) -> Child {
        Child {
            path,
            active,
            active_override: false,
            activate_new_children: None,
            extra: BTreeMap::new(),
            crawled: true,
        }
    }
}

impl Connection {
    /// Sets the connection's status and, like Immuta, every known child object's with it
    /// (clearing their status overrides).
    pub fn set_active(&mut self, active: bool) {
        self.settings.is_active = active;
        for child in self.children.iter_mut().filter(|c| c.crawled) {
            child.active = active;
            child.active_override = false;
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Integration {
    pub id: u64,
    pub tech: Tech,
    pub status: String,
    /// `nativeIntegration.config` naming, secrets included, `userRolePattern` inside.
    pub config: Value,
    pub http_path: Option<String>,
    pub connection_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptKind {
    Create,
    Edit,
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Script {
    pub id: String,
    pub kind: ScriptKind,
    pub tech: Tech,
    pub integration_id: Option<u64>,
    /// The config it was generated with, canonical names (see `validate::canon_script`).
    pub canon: Flat,
    pub identity: String,
    /// Normalised statements.
    pub statements: Vec<String>,
    pub executed: Vec<bool>,
    pub cleanup_applied: bool,
    pub created_ms: u64,
}

impl Script {
    pub fn is_executed(&self) -> bool {
        self.executed.iter().all(|x| *x)
    }
    pub fn executed_count(&self) -> usize {
        self.executed.iter().filter(|x| **x).count()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub bulk_id: String,
    pub created_ms: u64,
    /// How the job ends, when not `completed` (`failed`, `cancelled`, …): set through
    /// `POST /_emulator/jobs/end-next` for the next bulk of an origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// The outcome of a warehouse request, decided at submission.
#[derive(Debug, Clone)]
pub enum Outcome {
    Succeeded,
    Failed {
        index: usize,
        code: String,
        sql_state: String,
        message: String,
    },
}

/// One Snowflake or Databricks statement (or multi-statement request).
#[derive(Debug, Clone)]
pub struct WhStatement {
    pub id: String,
    pub tech: Tech,
    pub created_ms: u64,
    pub done_ms: u64,
    pub is_async: bool,
    /// Snowflake: GET polls seen; Databricks: last state index shown (0 PENDING, 1 RUNNING, 2 done).
    pub observed: u8,
    pub outcome: Outcome,
    pub canceled: bool,
    /// Snowflake multi-statement: the child handles.
    pub children: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PendingExec {
    pub done_ms: u64,
    pub tech: Tech,
    pub handle: String,
    pub statements: Vec<String>,
}

/// Who a bulkId was issued to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedBulk {
    pub key: String,
    /// `register`, `update` (connection), `settings` or `crawl`.
    pub origin: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Store {
    pub connections: BTreeMap<String, Connection>,
    pub integrations: BTreeMap<u64, Integration>,
    pub next_integration_id: u64,
    pub scripts: Vec<Script>,
    pub jobs: HashMap<String, Job>,
    pub bulks: HashMap<String, Vec<String>>,
    /// Every bulkId issued: for which connection and by which request.
    #[serde(default)]
    pub issued: BTreeMap<String, IssuedBulk>,
    /// Per connection key: registrations that succeeded (`POST /data/connection`).
    #[serde(default)]
    pub registrations: BTreeMap<String, u64>,
    /// Per connection key: deletions that succeeded (`DELETE /data/object/{key}`).
    #[serde(default)]
    pub deletions: BTreeMap<String, u64>,
    /// Every `PUT /data/settings` body, in order, for tests to read (settings hold no secrets).
    #[serde(default)]
    pub settings_requests: Vec<Value>,
    /// Per bulk origin (`register`, `update`, `settings`, `crawl`): how the next jobs it issues
    /// end instead of `completed`, first come first used.
    #[serde(default)]
    pub job_ends: BTreeMap<String, Vec<String>>,
    #[serde(skip)]
    index: HashMap<(Tech, String), Vec<(usize, usize)>>,
    #[serde(skip)]
    pub pending: Vec<PendingExec>,
    #[serde(skip)]
    pub statements: HashMap<String, WhStatement>,
    #[serde(skip)]
    pub request_ids: HashMap<String, String>,
}

impl Store {
    pub fn load(path: &Path) -> std::io::Result<Store> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::default()),
            Err(e) => return Err(e),
        };
        let mut store: Store = serde_json::from_str(&text)
            .map_err(|e| std::io::Error::other(format!("state file {}: {e}", path.display())))?;
        store.rebuild_index();
        Ok(store)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path)
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        for i in 0..self.scripts.len() {
            self.index_script(i);
        }
    }

    fn index_script(&mut self, i: usize) {
        let s = &self.scripts[i];
        for (j, st) in s.statements.iter().enumerate() {
            self.index.entry((s.tech, st.clone())).or_default().push((i, j));
        }
    }

    pub fn add_script(&mut self, script: Script) {
        self.scripts.push(script);
        self.index_script(self.scripts.len() - 1);
    }

    pub fn next_integration_id(&mut self) -> u64 {
        self.next_integration_id = self.next_integration_id.max(1);
        let id = self.next_integration_id;
        self.next_integration_id += 1;
        id
    }

    /// Apply warehouse statements that have finished by `now`.
    pub fn settle(&mut self, now: u64) {
        let (done, rest): (Vec<PendingExec>, Vec<PendingExec>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.done_ms <= now);
        self.pending = rest;
        for p in done {
            self.mark_executed(p.tech, &p.statements);
        }
    }

    /// Drop not-yet-finished statements of a canceled request.
    pub fn cancel_pending(&mut self, handle: &str) {
        self.pending.retain(|p| p.handle != handle);
    }

    /// Record that `statements` (normalised) ran successfully on a `tech` warehouse.
    pub fn mark_executed(&mut self, tech: Tech, statements: &[String]) {
        let mut touched = Vec::new();
        for st in statements {
            if let Some(hits) = self.index.get(&(tech, st.clone())) {
                for &(i, j) in hits {
                    self.scripts[i].executed[j] = true;
                    touched.push(i);
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            let s = &self.scripts[i];
            if s.kind == ScriptKind::Delete && s.is_executed() && !s.cleanup_applied {
                let identity = s.identity.clone();
                self.scripts[i].cleanup_applied = true;
                // the cleanup dropped what the setup scripts created: they must run again
                for other in self.scripts.iter_mut() {
                    if other.kind != ScriptKind::Delete && other.identity == identity {
                        other.executed.iter_mut().for_each(|x| *x = false);
                    }
                }
            }
        }
    }

    /// A bulk request with one job, issued to connection `key` by an `origin` request.
    pub fn new_bulk(&mut self, now: u64, key: &str, origin: &str) -> String {
        let bulk_id = uuid::Uuid::new_v4().to_string();
        let job_id = uuid::Uuid::new_v4().to_string();
        let end = self
            .job_ends
            .get_mut(origin)
            .filter(|ends| !ends.is_empty())
            .map(|ends| ends.remove(0));
        self.jobs.insert(
            job_id.clone(),
            Job {
                id: job_id.clone(),
                bulk_id: bulk_id.clone(),
                created_ms: now,
                end,
            },
        );
        self.bulks.insert(bulk_id.clone(), vec![job_id]);
        self.issued.insert(
            bulk_id.clone(),
            IssuedBulk {
                key: key.to_owned(),
                origin: origin.to_owned(),
            },
        );
        bulk_id
    }
}

/// `created → active → completed`, one state per `step_ms` after creation.
pub fn job_state(job: &Job, now: u64, step_ms: u64) -> &str {
    let elapsed = now.saturating_sub(job.created_ms);
    if step_ms == 0 || elapsed >= 2 * step_ms {
        job.end.as_deref().unwrap_or("completed")
    } else if elapsed >= step_ms {
        "active"
    } else {
        "created"
    }
}
