//! The applier: turns a plan into reality, one step machine per connection.
//!
//! Connections run concurrently (bounded by `parallelism`); one failing never stops the
//! others. Within a connection the steps run in order and the state is written after each
//! one: the intent before a remote call, the outcome after. A run that stopped anywhere is
//! resumed by reading Immuta first — a registration that may have happened is checked with
//! `GET /data/connection/{key}`, never blindly repeated.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use connctl_immuta::payload::{self, SecretSource, Setting};
use connctl_immuta::{ApiError, ImmutaClient};
use connctl_spec::{Connection, Secret, SecretRef};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::fields::{self, FieldMap};
use crate::plan::{Action, Change, Operation, Plan};
use crate::state::{Pending, ScriptRecord, StateError, Step};
use crate::store::StateStore;

/// Why a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Create,
    Edit,
    Delete,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Create => "create",
            Purpose::Edit => "edit",
            Purpose::Delete => "delete",
        }
    }
}

/// What running a script came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// It ran to the end.
    Executed,
    /// It was saved for a person to run.
    AwaitingManual { path: PathBuf },
}

/// Runs scripts in the warehouse. The CLI implements it with the configured executors, so the
/// engine knows nothing of Snowflake or Databricks APIs.
pub trait ScriptRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        conn: &'a Connection,
        purpose: Purpose,
        sql: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome, String>> + Send + 'a>>;
}

/// Progress, for the CLI to render.
#[derive(Debug, Clone)]
pub struct Event {
    pub key: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone)]
pub enum EventKind {
    Started(Action),
    Step(&'static str),
    Finished(Outcome),
}

/// How one connection's apply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied { detail: String },
    AwaitingExecution { path: PathBuf },
    Skipped { reason: String },
    Failed { error: String },
}

/// Knobs of one apply.
#[derive(Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// Follow each bulk job to a terminal state.
    pub wait: bool,
    pub job_poll: Duration,
    pub job_timeout: Duration,
    /// Where scripts no executor can run are saved (cleanup of entries that left the YAML).
    pub scripts_dir: PathBuf,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 8,
            wait: false,
            job_poll: Duration::from_millis(250),
            job_timeout: Duration::from_secs(600),
            scripts_dir: PathBuf::from(".connctl/scripts"),
        }
    }
}

/// One desired connection with its fingerprinted fields.
pub struct Target {
    pub connection: Connection,
    pub fields: FieldMap,
}

type Sink = Arc<dyn Fn(Event) + Send + Sync>;

/// Applies `plan` and returns each connection's outcome, keyed by connection key.
pub async fn apply(
    plan: &Plan,
    targets: BTreeMap<String, Target>,
    client: ImmutaClient,
    runner: Arc<dyn ScriptRunner>,
    store: StateStore,
    options: ApplyOptions,
    events: Sink,
) -> BTreeMap<String, Outcome> {
    let targets = Arc::new(targets);
    let limit = Arc::new(Semaphore::new(options.parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for change in plan
        .changes
        .iter()
        .filter(|c| !matches!(c.action, Action::Import | Action::Orphan))
    {
        let worker = Worker {
            client: client.clone(),
            runner: runner.clone(),
            store: store.clone(),
            options: options.clone(),
            events: events.clone(),
            targets: targets.clone(),
        };
        let change = change.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            worker.emit(&change.key, EventKind::Started(change.action));
            let outcome = match worker.run(&change).await {
                Ok(outcome) => outcome,
                Err(error) => Outcome::Failed { error },
            };
            worker.emit(&change.key, EventKind::Finished(outcome.clone()));
            (change.key, outcome)
        });
    }
    let mut outcomes = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((key, outcome)) = joined {
            outcomes.insert(key, outcome);
        }
    }
    outcomes
}

struct Worker {
    client: ImmutaClient,
    runner: Arc<dyn ScriptRunner>,
    store: StateStore,
    options: ApplyOptions,
    events: Sink,
    targets: Arc<BTreeMap<String, Target>>,
}

/// Secret values of one connection, resolved once before any remote call.
struct Resolved(HashMap<SecretRef, Secret>);

impl SecretSource for Resolved {
    fn value(&self, reference: &SecretRef) -> String {
        self.0
            .get(reference)
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    }
}

fn resolve(conn: &Connection) -> Result<Resolved, String> {
    let mut map = HashMap::new();
    for (field, reference) in conn.secret_refs() {
        let secret = reference.resolve().map_err(|e| format!("{field}: {e}"))?;
        map.insert(reference.clone(), secret);
    }
    Ok(Resolved(map))
}

fn api(e: ApiError) -> String {
    e.to_string()
}

fn st(e: StateError) -> String {
    e.to_string()
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Worker {
    fn emit(&self, key: &str, kind: EventKind) {
        (self.events)(Event {
            key: key.to_owned(),
            kind,
        });
    }

    async fn run(&self, change: &Change) -> Result<Outcome, String> {
        let key = change.key.as_str();
        let target = self.targets.get(key);
        match change.action {
            Action::Create | Action::Recreate => {
                let t = target.ok_or_else(|| format!("`{key}` is not in the YAML"))?;
                self.create(t, change.action == Action::Recreate).await
            }
            Action::Resume => {
                let t = target.ok_or_else(|| format!("`{key}` is not in the YAML"))?;
                let pending = self.store.get(key).and_then(|s| s.pending);
                match pending.as_ref().map(|p| p.operation.as_str()) {
                    Some("rescript") => self.update(t, &[Operation::Rescript], &[]).await,
                    Some("delete") => self.delete(key, &change.technology).await,
                    _ => self.create(t, false).await,
                }
            }
            Action::Update => {
                let t = target.ok_or_else(|| format!("`{key}` is not in the YAML"))?;
                let settings: Vec<Setting> = change
                    .fields
                    .iter()
                    .filter_map(|f| fields::setting_of(&f.path))
                    .collect();
                self.update(t, &change.operations, &settings).await
            }
            Action::Replace => {
                let t = target.ok_or_else(|| format!("`{key}` is not in the YAML"))?;
                if self.store.get(key).is_some_and(|s| s.protect) {
                    return Ok(Outcome::Skipped {
                        reason: "protected: a replace would delete it (`connctl state unprotect` lifts it)"
                            .into(),
                    });
                }
                match self.delete(key, &change.technology).await? {
                    Outcome::Applied { .. } => self.create(t, true).await,
                    other => Ok(other),
                }
            }
            Action::Forget => {
                self.store.remove(key).await.map_err(st)?;
                Ok(Outcome::Applied {
                    detail: "dropped from the state".into(),
                })
            }
            Action::Delete => {
                if self.store.get(key).is_some_and(|s| s.protect) {
                    return Ok(Outcome::Skipped {
                        reason: "protected: deletion refused".into(),
                    });
                }
                self.delete(key, &change.technology).await
            }
            Action::Import | Action::Orphan => Ok(Outcome::Skipped {
                reason: "nothing to apply".into(),
            }),
        }
    }

    /// script → execute → test → register → (await).
    async fn create(&self, t: &Target, fresh: bool) -> Result<Outcome, String> {
        let conn = &t.connection;
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        let secrets = resolve(conn)?;
        let registration = payload::registration(conn, &secrets);
        let target_fields = t.fields.clone();

        let before = self.store.get(key);
        let resuming = !fresh
            && before
                .as_ref()
                .is_some_and(|s| s.pending.as_ref().is_some_and(|p| p.operation == "create"));
        let mut step = if resuming {
            before.as_ref().map(|s| s.step).unwrap_or_default()
        } else {
            Step::New
        };

        // Reconcile first: a registration that may have happened is read, not repeated.
        if resuming && self.client.get_connection(key).await.map_err(api)?.is_some() {
            return self
                .finish_registration(t, None, "registration confirmed by reading Immuta")
                .await;
        }
        // A script that ran in an earlier attempt is recognised by a passing dry run, so an
        // interrupted execution is not run twice.
        if resuming && matches!(step, Step::Scripted | Step::AwaitingExecution | Step::Executed) {
            match self.client.test_connection(&registration).await {
                Ok(()) => step = Step::Tested,
                Err(e) if step == Step::AwaitingExecution && !e.is_transient() => {
                    return Ok(Outcome::AwaitingExecution {
                        path: awaiting_path(before.as_ref()),
                    });
                }
                Err(e) if e.is_transient() || e.is_unauthorized() => return Err(api(e)),
                Err(_) => step = Step::New,
            }
        }

        if matches!(step, Step::New | Step::Scripted | Step::Executed) {
            self.emit(key, EventKind::Step("script"));
            let script = self
                .client
                .create_script(&payload::script_request(conn, &secrets))
                .await
                .map_err(api)?;
            // Getting a script changes nothing in Immuta, so its outcome and the intent to run
            // it share one write: the first that must reach the disk before a remote effect.
            let hash = sha256(&script.sql);
            let target = target_fields.clone();
            self.store
                .update(key, tech, move |s| {
                    s.step = Step::Scripted;
                    match s.pending.as_mut().filter(|p| p.operation == "create") {
                        Some(p) => p.script_sha256 = Some(hash),
                        None => {
                            s.pending = Some(Pending {
                                operation: "create".into(),
                                target,
                                script_sha256: Some(hash),
                            })
                        }
                    }
                    s.journal("script", "done", None);
                    s.journal("execute", "intent", None);
                })
                .await
                .map_err(st)?;

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
            self.emit(key, EventKind::Step("test"));
            self.client.test_connection(&registration).await.map_err(api)?;
        }
        // The dry run changes nothing, so its outcome and the registration intent share a write.
        self.emit(key, EventKind::Step("register"));
        self.store
            .update(key, tech, move |s| {
                if tested_now {
                    s.journal("test", "done", None);
                }
                s.step = Step::Registering;
                s.journal("register", "intent", None);
            })
            .await
            .map_err(st)?;
        for attempt in 0..5 {
            match self.client.register(&registration).await {
                Ok(registered) => {
                    return self
                        .finish_registration(t, registered.bulk_id, "registered")
                        .await;
                }
                Err(e) if e.is_conflict() || e.outcome_unknown() => {
                    // It may have taken effect: read before trying again.
                    if self.client.get_connection(key).await.map_err(api)?.is_some() {
                        return self
                            .finish_registration(t, None, "registration confirmed by reading Immuta")
                            .await;
                    }
                    if e.is_conflict() || attempt == 4 {
                        return Err(api(e));
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                Err(e) => {
                    let detail = e.to_string();
                    self.store
                        .update(key, tech, move |s| s.journal("register", "failed", Some(detail)))
                        .await
                        .map_err(st)?;
                    return Err(api(e));
                }
            }
        }
        Err("registration did not go through after 5 attempts".into())
    }

    /// Runs a script and journals the outcome: the sha256 and `done`, the saved path (`Some`, a
    /// person must run it), or the failure. The caller has already written the intent.
    /// `executed` is the step to record when it ran.
    async fn execute(
        &self,
        conn: &Connection,
        purpose: Purpose,
        sql: &str,
        executed: Option<Step>,
    ) -> Result<Option<PathBuf>, String> {
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        self.emit(key, EventKind::Step("execute"));
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
                        s.journal("execute", "done", None);
                    })
                    .await
                    .map_err(st)?;
                Ok(None)
            }
            Ok(RunOutcome::AwaitingManual { path }) => {
                let shown = path.display().to_string();
                self.store
                    .update(key, tech, move |s| {
                        s.step = Step::AwaitingExecution;
                        s.journal("execute", "awaiting", Some(shown));
                    })
                    .await
                    .map_err(st)?;
                Ok(Some(path))
            }
            Err(error) => {
                let detail = error.clone();
                self.store
                    .update(key, tech, move |s| s.journal("execute", "failed", Some(detail)))
                    .await
                    .map_err(st)?;
                Err(format!(
                    "executing the {} script failed: {error}",
                    purpose.as_str()
                ))
            }
        }
    }

    async fn finish_registration(
        &self,
        t: &Target,
        bulk_id: Option<String>,
        how: &str,
    ) -> Result<Outcome, String> {
        let key = t.connection.key.clone();
        let tech = t.connection.technology().as_str();
        let fields = t.fields.clone();
        let protect = t.connection.protect;
        let bulk = bulk_id.clone();
        let detail = how.to_owned();
        self.store
            .update(&key, tech, move |s| {
                if let Some(b) = bulk {
                    s.record_bulk(b, "register");
                }
                s.step = Step::Registered;
                s.applied = Some(fields);
                s.pending = None;
                s.protect = protect;
                s.integration_id = None;
                s.journal("register", "done", Some(detail));
            })
            .await
            .map_err(st)?;
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

    /// In-place changes: connection update, rescript, settings (only `settings`, the ones that
    /// changed), state-only.
    async fn update(
        &self,
        t: &Target,
        operations: &[Operation],
        settings: &[Setting],
    ) -> Result<Outcome, String> {
        let conn = &t.connection;
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        let secrets = resolve(conn)?;
        let mut done = Vec::new();
        let mut bulk_ids = Vec::new();
        for op in operations {
            match op {
                Operation::UpdateConnection => {
                    self.emit(key, EventKind::Step("update"));
                    let body = payload::connection_update(conn, &secrets);
                    if let Some(b) = self.client.update_connection(key, &body).await.map_err(api)? {
                        bulk_ids.push((b, "update"));
                    }
                    done.push("connection updated");
                }
                Operation::Rescript => match self.rescript(t, &secrets).await? {
                    None => done.push("integration re-scripted"),
                    Some(path) => return Ok(Outcome::AwaitingExecution { path }),
                },
                Operation::Settings => {
                    // Never re-send `isActive` unasked: Immuta cascades it to every child object.
                    let Some(body) = payload::settings_update(conn, settings) else {
                        continue;
                    };
                    self.emit(key, EventKind::Step("settings"));
                    if let Some(b) = self.client.update_settings(key, &body).await.map_err(api)? {
                        bulk_ids.push((b, "settings"));
                    }
                    done.push("settings updated");
                }
                Operation::RecordState => done.push("state updated"),
                Operation::Register | Operation::Deregister => {}
            }
        }
        let fields = t.fields.clone();
        let protect = conn.protect;
        let recorded = bulk_ids.clone();
        self.store
            .update(key, tech, move |s| {
                for (b, origin) in recorded {
                    s.record_bulk(b, origin);
                }
                s.applied = Some(fields);
                s.protect = protect;
                s.pending = None;
                s.step = Step::Registered;
                s.journal("update", "done", None);
            })
            .await
            .map_err(st)?;
        let mut detail = done.join(", ");
        if self.options.wait {
            for (b, _) in &bulk_ids {
                let state = self.await_job(key, tech, b).await?;
                detail = format!("{detail}; job {b} {state}");
            }
        }
        Ok(Outcome::Applied { detail })
    }

    /// edit script → execute → `PUT /integrations/{id}`. `Some(path)` when a person must run it.
    async fn rescript(&self, t: &Target, secrets: &Resolved) -> Result<Option<PathBuf>, String> {
        let conn = &t.connection;
        let key = conn.key.as_str();
        let tech = conn.technology().as_str();
        let id = self.integration_id(key).await?;
        let body = payload::script_request(conn, secrets);
        let state = self.store.get(key);
        let awaiting = state.as_ref().is_some_and(|s| {
            s.step == Step::AwaitingExecution && s.pending.as_ref().is_some_and(|p| p.operation == "rescript")
        });
        if awaiting {
            // A person was to run the edit script; the integration update tells whether they did.
            self.emit(key, EventKind::Step("update-integration"));
            if let Err(e) = self.client.update_integration(&id, &body).await {
                if e.is_transient() {
                    return Err(api(e));
                }
                return Ok(Some(awaiting_path(state.as_ref())));
            }
            return Ok(None);
        }
        self.emit(key, EventKind::Step("edit-script"));
        // An edit script changes nothing until it runs: record it with the intent to run it.
        let script = self.client.edit_script(&id, &body).await.map_err(api)?;
        let target = t.fields.clone();
        let hash = sha256(&script.sql);
        self.store
            .update(key, tech, move |s| {
                s.pending = Some(Pending {
                    operation: "rescript".into(),
                    target,
                    script_sha256: Some(hash),
                });
                s.journal("edit-script", "done", None);
                s.journal("execute", "intent", None);
            })
            .await
            .map_err(st)?;
        if let Some(path) = self.execute(conn, Purpose::Edit, &script.sql, None).await? {
            return Ok(Some(path));
        }
        self.emit(key, EventKind::Step("update-integration"));
        self.client.update_integration(&id, &body).await.map_err(api)?;
        Ok(None)
    }

    /// delete script → `DELETE /data/object/{key}` → execute the cleanup script → forget.
    async fn delete(&self, key: &str, technology: &str) -> Result<Outcome, String> {
        let id = match self.integration_id(key).await {
            Ok(id) => Some(id),
            Err(_) if self.client.get_connection(key).await.map_err(api)?.is_none() => None,
            Err(e) => return Err(e),
        };
        let Some(id) = id else {
            self.store.remove(key).await.map_err(st)?;
            return Ok(Outcome::Applied {
                detail: "already gone from Immuta; forgotten".into(),
            });
        };
        self.emit(key, EventKind::Step("delete-script"));
        let script = self.client.delete_script(&id).await.map_err(api)?;
        self.store
            .update(key, technology, |s| {
                s.step = Step::Deleting;
                s.pending = Some(Pending {
                    operation: "delete".into(),
                    target: FieldMap::new(),
                    script_sha256: None,
                });
                s.journal("delete", "intent", None);
            })
            .await
            .map_err(st)?;
        self.emit(key, EventKind::Step("delete"));
        self.client.delete_object(key).await.map_err(api)?;
        // Deregistered: whatever the cleanup does, Immuta no longer has it, so neither does the state.
        self.store.remove(key).await.map_err(st)?;
        self.emit(key, EventKind::Step("cleanup"));
        let Some(conn) = self.targets.get(key).map(|t| &t.connection) else {
            // The entry left the YAML, so there is no executor target: save it for a person.
            let path = save_script(&self.options.scripts_dir, key, Purpose::Delete, &script.sql)
                .map_err(|e| format!("deregistered, but the cleanup script could not be saved: {e}"))?;
            return Ok(Outcome::Applied {
                detail: format!("deregistered; run the cleanup script saved at {}", path.display()),
            });
        };
        match self.runner.run(conn, Purpose::Delete, &script.sql).await {
            Ok(RunOutcome::Executed) => Ok(Outcome::Applied {
                detail: "deregistered and cleaned up".into(),
            }),
            Ok(RunOutcome::AwaitingManual { path }) => Ok(Outcome::Applied {
                detail: format!("deregistered; run the cleanup script saved at {}", path.display()),
            }),
            Err(e) => Err(format!("deregistered, but the cleanup script failed: {e}")),
        }
    }

    async fn integration_id(&self, key: &str) -> Result<String, String> {
        if let Some(id) = self.store.get(key).and_then(|s| s.integration_id) {
            return Ok(id);
        }
        let live = self.client.get_connection(key).await.map_err(api)?;
        let id = live
            .and_then(|c| c.native_integration_id)
            .ok_or_else(|| format!("Immuta reports no integration for `{key}`"))?;
        Ok(id)
    }

    /// Follows a bulk job to a terminal state, recording what it saw.
    async fn await_job(&self, key: &str, tech: &str, bulk_id: &str) -> Result<String, String> {
        self.emit(key, EventKind::Step("await"));
        let started = tokio::time::Instant::now();
        loop {
            let jobs = self.client.jobs(bulk_id).await.map_err(api)?;
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
                    .await
                    .map_err(st)?;
                if state == "failed" {
                    return Err(format!("bulk job {bulk_id} failed"));
                }
                return Ok(state);
            }
            tokio::time::sleep(self.options.job_poll).await;
        }
    }
}

/// Saves a script readable only by its owner (it can hold passwords).
fn save_script(dir: &std::path::Path, key: &str, purpose: Purpose, sql: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{key}.{}.sql", purpose.as_str()));
    let mut file = crate::state::private_file(&path)?;
    file.write_all(sql.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// Where the script a connection waits for was saved, from its journal.
fn awaiting_path(state: Option<&crate::state::ConnectionState>) -> PathBuf {
    state
        .and_then(|s| s.journal.iter().rev().find(|j| j.phase == "awaiting"))
        .and_then(|j| j.detail.clone())
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The field map of a connection with secrets fingerprinted under `salt`.
pub fn fingerprinted(conn: &Connection, salt: &str) -> Result<FieldMap, fields::UnresolvedSecret> {
    fields::desired(conn, &|r| r.resolve().map(|s| s.fingerprint(salt)))
}
