//! The applier: turns a plan into reality, one step machine per connection.
//!
//! Connections run concurrently (bounded by `parallelism`); one failing never stops the
//! others. Within a connection the steps run in order and the state is written after each
//! one: the intent before every remote write, the outcome after. A run that stopped anywhere
//! is resumed by reading Immuta first — a registration that may have happened is checked with
//! `GET /data/connection/{key}`, never blindly repeated; a delete's cleanup script is saved
//! before the `DELETE`, so it is run (or handed over) by whichever run finds it pending.
//!
//! A [`Stop`] request (the CLI's answer to SIGINT/SIGTERM) is honoured between steps: nothing
//! new starts, the step in flight finishes, and the connection is reported as interrupted.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use connctl_immuta::payload::{self, SecretSource, Setting};
use connctl_immuta::{ApiError, ImmutaClient};
use connctl_spec::{Connection, Secret, SecretRef};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore};

use crate::fields::{self, FieldClass, FieldMap};
use crate::plan::{Action, Change, Operation, Plan};
use crate::state::{ConnectionState, Pending, PendingOp, Phase, ScriptRecord, StateError, Step, Task};
use crate::store::StateStore;

pub use connctl_spec::Purpose;

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
    Step(Task),
    Finished(Outcome),
}

/// How one connection's apply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        detail: String,
    },
    AwaitingExecution {
        path: PathBuf,
    },
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
    /// A stop was requested before it finished; the next apply resumes it.
    Interrupted {
        detail: String,
    },
}

/// A request to stop an apply, shared between whoever asks (the CLI, on a signal) and the
/// workers, which check it between steps.
#[derive(Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Default)]
struct StopInner {
    requested: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Asks every worker to stop before its next step.
    pub fn request(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Resolves once a stop has been requested.
    pub async fn requested(&self) {
        loop {
            // Registered before the check, so a request between the two is not missed.
            let notified = self.0.notify.notified();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }
}

/// Knobs of one apply.
#[derive(Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// Follow each bulk job to a terminal state.
    pub wait: bool,
    pub job_poll: Duration,
    pub job_timeout: Duration,
    /// Where cleanup scripts are saved before a `DELETE`, and scripts no executor can run.
    pub scripts_dir: PathBuf,
    /// Checked between steps; once requested, nothing new starts.
    pub stop: Stop,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 8,
            wait: false,
            job_poll: Duration::from_millis(250),
            job_timeout: Duration::from_secs(600),
            scripts_dir: PathBuf::from(".connctl/scripts"),
            stop: Stop::default(),
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
            let stop = &worker.options.stop;
            if stop.is_requested() {
                let outcome = Outcome::Interrupted {
                    detail: format!("not started ({})", change.action.as_str()),
                };
                worker.emit(&change.key, EventKind::Finished(outcome.clone()));
                return (change.key, outcome);
            }
            worker.emit(&change.key, EventKind::Started(change.action));
            let outcome = match worker.run(&change).await {
                Ok(outcome) => outcome,
                Err(Halt::Interrupted(detail)) => Outcome::Interrupted { detail },
                // A step cut short by the stop (an executor's children terminated) is not a failure
                // of the connection: the next apply resumes it.
                Err(Halt::Failed(detail)) if stop.is_requested() => Outcome::Interrupted { detail },
                Err(Halt::Failed(error)) => Outcome::Failed { error },
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

/// Why a worker stopped short of an outcome.
#[derive(Debug)]
enum Halt {
    Failed(String),
    /// A stop was requested; the text says before which step.
    Interrupted(String),
}

impl From<String> for Halt {
    fn from(error: String) -> Halt {
        Halt::Failed(error)
    }
}

type Flow<T> = Result<T, Halt>;

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

    /// Starts a step: refused once a stop was requested, so nothing new begins after a signal.
    fn step(&self, key: &str, task: Task) -> Flow<()> {
        if self.options.stop.is_requested() {
            return Err(Halt::Interrupted(format!(
                "stopped before `{}`; the next apply resumes it",
                task.as_str()
            )));
        }
        self.emit(key, EventKind::Step(task));
        Ok(())
    }

    /// Appends one journal line (and nothing else) and waits until it is on disk.
    async fn journal(
        &self,
        key: &str,
        tech: &str,
        task: Task,
        phase: Phase,
        detail: Option<String>,
    ) -> Flow<()> {
        self.store
            .update(key, tech, move |s| s.journal(task, phase, detail))
            .await
            .map_err(st)?;
        Ok(())
    }

    async fn run(&self, change: &Change) -> Flow<Outcome> {
        let key = change.key.as_str();
        let target = self.targets.get(key);
        let need = || target.ok_or_else(|| Halt::Failed(format!("`{key}` is not in the YAML")));
        match change.action {
            Action::Create | Action::Recreate => {
                self.create(need()?, change.action == Action::Recreate).await
            }
            Action::Resume => {
                let pending = self.store.get(key).and_then(|s| s.pending);
                match pending.map(|p| p.operation) {
                    // An interrupted delete (of a replace, or of a prune) is finished first; a
                    // key still in the YAML is then registered again.
                    Some(PendingOp::Delete) => match (self.delete(key, &change.technology).await?, target) {
                        (Outcome::Applied { detail }, Some(t)) => self.recreate_after(t, detail).await,
                        (other, _) => Ok(other),
                    },
                    Some(PendingOp::Update | PendingOp::Rescript) => {
                        self.update(need()?, &change.operations, &changed_settings(change))
                            .await
                    }
                    Some(PendingOp::Create) | None => self.create(need()?, false).await,
                }
            }
            Action::Update => {
                self.update(need()?, &change.operations, &changed_settings(change))
                    .await
            }
            Action::Replace => {
                let t = need()?;
                if self.store.get(key).is_some_and(|s| s.protect) {
                    return Ok(Outcome::Skipped {
                        reason: "protected: a replace would delete it (`connctl state unprotect` lifts it)"
                            .into(),
                    });
                }
                match self.delete(key, &change.technology).await? {
                    Outcome::Applied { detail } => self.recreate_after(t, detail).await,
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

    /// The create half of a replace, reporting what the delete half did too.
    async fn recreate_after(&self, t: &Target, deleted: String) -> Flow<Outcome> {
        match self.create(t, true).await? {
            Outcome::Applied { detail } => Ok(Outcome::Applied {
                detail: format!("{deleted}; {detail}"),
            }),
            other => Ok(other),
        }
    }

    /// script → execute → test → register → (await).
    async fn create(&self, t: &Target, fresh: bool) -> Flow<Outcome> {
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
        if resuming && self.client.get_connection(key).await.map_err(api)?.is_some() {
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
                    return Err(api(e).into());
                }
                Err(_) => step = Step::New,
            }
        }

        if matches!(step, Step::New | Step::Scripted | Step::Executed) {
            self.step(key, Task::Script)?;
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
            self.step(key, Task::Test)?;
            self.client.test_connection(&registration).await.map_err(api)?;
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
                        return Err(api(e).into());
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                Err(e) => {
                    self.journal(key, tech, Task::Register, Phase::Failed, Some(e.to_string()))
                        .await?;
                    return Err(api(e).into());
                }
            }
        }
        Err("registration did not go through after 5 attempts"
            .to_owned()
            .into())
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
                    .await
                    .map_err(st)?;
                Ok(None)
            }
            Ok(RunOutcome::AwaitingManual { path }) => {
                let shown = path.display().to_string();
                self.store
                    .update(key, tech, move |s| {
                        s.step = Step::AwaitingExecution;
                        s.journal(Task::Execute, Phase::Awaiting, Some(shown));
                    })
                    .await
                    .map_err(st)?;
                Ok(Some(path))
            }
            Err(error) => {
                self.journal(key, tech, Task::Execute, Phase::Failed, Some(error.clone()))
                    .await?;
                Err(format!("executing the {} script failed: {error}", purpose.as_str()).into())
            }
        }
    }

    async fn finish_registration(&self, t: &Target, bulk_id: Option<String>, how: &str) -> Flow<Outcome> {
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
                s.journal(Task::Register, Phase::Done, Some(detail));
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

    /// In-place changes: connection update, rescript, settings, state-only. Each remote write
    /// is journaled (with the whole target pending) before it is sent, and its fields count as
    /// applied once it answered; the pending is cleared only when every part is done.
    /// Of the settings, only those in `settings` (the ones that changed) are sent.
    async fn update(&self, t: &Target, operations: &[Operation], settings: &[Setting]) -> Flow<Outcome> {
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
            .await
            .map_err(st)?;
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
    async fn intend_update(&self, t: &Target, task: Task) -> Flow<()> {
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
            .await
            .map_err(st)?;
        Ok(())
    }

    /// The answer to one remote write of an update: a failure is journaled before it is returned.
    async fn answered<T>(&self, t: &Target, task: Task, answer: Result<T, ApiError>) -> Flow<T> {
        match answer {
            Ok(value) => Ok(value),
            Err(e) => {
                let tech = t.connection.technology().as_str();
                self.journal(&t.connection.key, tech, task, Phase::Failed, Some(e.to_string()))
                    .await?;
                Err(api(e).into())
            }
        }
    }

    /// One part of an update answered: its fields are applied, its bulkId recorded.
    async fn part_done(&self, t: &Target, class: FieldClass, task: Task, bulk: Option<String>) -> Flow<()> {
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
            .await
            .map_err(st)?;
        Ok(())
    }

    /// edit script → execute → `PUT /integrations/{id}`. `Some(path)` when a person must run it.
    /// `awaiting`: an earlier run saved the edit script for a person, so only the `PUT` is left.
    async fn rescript(&self, t: &Target, secrets: &Resolved, awaiting: bool) -> Flow<Option<PathBuf>> {
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
        let script = self.client.edit_script(&id, &body).await.map_err(api)?;
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
            .await
            .map_err(st)?;
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

    /// delete script (saved first) → `DELETE /data/object/{key}` → cleanup → forget.
    ///
    /// The cleanup script is saved and the intent journaled before the `DELETE`, and the entry
    /// stays in the state (pending) until the cleanup ran or was handed to a person, so a lost
    /// answer or a kill anywhere leaves the next run able to finish it.
    async fn delete(&self, key: &str, technology: &str) -> Flow<Outcome> {
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
                if self.client.get_connection(key).await.map_err(api)?.is_some() {
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
                        .await
                        .map_err(st)?;
                }
                (path, sql)
            }
            None => {
                let id = match self.integration_id(key).await {
                    Ok(id) => Some(id),
                    Err(_) if self.client.get_connection(key).await.map_err(api)?.is_none() => None,
                    Err(e) => return Err(e.into()),
                };
                let Some(id) = id else {
                    self.store.remove(key).await.map_err(st)?;
                    return Ok(Outcome::Applied {
                        detail: "already gone from Immuta; forgotten".into(),
                    });
                };
                self.step(key, Task::DeleteScript)?;
                let script = self.client.delete_script(&id).await.map_err(api)?;
                let path = save_script(&self.options.scripts_dir, key, Purpose::Delete, &script.sql)
                    .map_err(|e| {
                        format!("the cleanup script could not be saved, so nothing was deleted: {e}")
                    })?;
                self.deregister(key, technology, &path, true).await?;
                (path, script.sql)
            }
        };
        self.cleanup(key, technology, &path, &sql).await
    }

    /// Journals the intent (with where the cleanup script is, when `saved_now`) and sends the
    /// `DELETE`.
    async fn deregister(&self, key: &str, technology: &str, cleanup: &Path, saved_now: bool) -> Flow<()> {
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
            .await
            .map_err(st)?;
        if let Err(e) = self.client.delete_object(key).await {
            self.journal(key, technology, Task::Delete, Phase::Failed, Some(e.to_string()))
                .await?;
            return Err(format!(
                "{e}\n  = help: the cleanup script is saved at {}; the next apply checks Immuta and finishes the delete",
                cleanup.display()
            )
            .into());
        }
        self.store
            .update(key, technology, |s| {
                s.step = Step::Deregistered;
                s.journal(Task::Delete, Phase::Done, None);
            })
            .await
            .map_err(st)?;
        Ok(())
    }

    /// Runs the saved cleanup script, or hands it to a person; only then is the entry forgotten.
    async fn cleanup(&self, key: &str, technology: &str, saved: &Path, sql: &str) -> Flow<Outcome> {
        self.step(key, Task::Cleanup)?;
        let Some(conn) = self.targets.get(key).map(|t| &t.connection) else {
            // The entry left the YAML, so there is no executor target: it stays saved for a person.
            self.store.remove(key).await.map_err(st)?;
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
                self.store.remove(key).await.map_err(st)?;
                // It ran; a copy left behind would invite running it twice.
                let _ = std::fs::remove_file(saved);
                Ok(Outcome::Applied {
                    detail: "deregistered and cleaned up".into(),
                })
            }
            Ok(RunOutcome::AwaitingManual { path }) => {
                self.store.remove(key).await.map_err(st)?;
                Ok(Outcome::Applied {
                    detail: format!("deregistered; run the cleanup script saved at {}", path.display()),
                })
            }
            Err(e) => {
                self.journal(key, technology, Task::Cleanup, Phase::Failed, Some(e.clone()))
                    .await?;
                Err(format!(
                    "deregistered, but the cleanup script failed: {e}\n  = help: it is saved at {}; the next apply runs it again",
                    saved.display()
                )
                .into())
            }
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
    async fn await_job(&self, key: &str, tech: &str, bulk_id: &str) -> Flow<String> {
        self.emit(key, EventKind::Step(Task::Await));
        let started = tokio::time::Instant::now();
        loop {
            if self.options.stop.is_requested() {
                return Ok("not followed to its end: connctl is stopping".into());
            }
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
                    return Err(format!("bulk job {bulk_id} failed").into());
                }
                return Ok(state);
            }
            tokio::time::sleep(self.options.job_poll).await;
        }
    }
}

/// The settings an update changes: only these are sent (`isActive` cascades to children).
fn changed_settings(change: &Change) -> Vec<Setting> {
    change
        .fields
        .iter()
        .filter_map(|f| fields::setting_of(&f.path))
        .collect()
}

/// Saves a script readable only by its owner (it can hold passwords), in a folder only its
/// owner can enter, atomically: a reader never sees half a script.
fn save_script(dir: &Path, key: &str, purpose: Purpose, sql: &str) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let path = dir.join(format!("{key}.{}.sql", purpose.as_str()));
    crate::state::write_atomic(&path, sql.as_bytes())?;
    Ok(path)
}

/// Where the script a connection waits for was saved, from its journal.
fn awaiting_path(state: Option<&ConnectionState>) -> PathBuf {
    state
        .and_then(|s| s.journal.iter().rev().find(|j| j.phase == Phase::Awaiting))
        .and_then(|j| j.detail.clone())
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The field map of a connection with secrets fingerprinted under `salt`.
pub fn fingerprinted(conn: &Connection, salt: &str) -> Result<FieldMap, fields::UnresolvedSecret> {
    fields::desired(conn, &|r| r.resolve().map(|s| s.fingerprint(salt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_wakes_its_waiters_before_and_after_the_request() {
        let stop = Stop::default();
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.requested().await }
        });
        assert!(!stop.is_requested());
        stop.request();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("joined");
        // Asked after the request, it resolves at once.
        tokio::time::timeout(Duration::from_secs(1), stop.requested())
            .await
            .expect("already requested");
    }

    #[test]
    fn cleanup_scripts_are_saved_private_in_a_private_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scripts = dir.path().join(".connctl/scripts");
        let path = save_script(&scripts, "k", Purpose::Delete, "DROP ROLE R;").expect("saved");
        assert_eq!(path, scripts.join("k.delete.sql"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "DROP ROLE R;");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&scripts), 0o700);
        }
    }
}
