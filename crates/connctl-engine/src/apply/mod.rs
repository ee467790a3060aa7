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
//!
//! This module runs the workers; each flow is its own file (`create`, `update`, `delete`,
//! `jobs`), `journal` records progress, `script` is the boundary to the executors and `error`
//! says why a connection failed. Immuta is reached through [`crate::immuta::Immuta`].

mod create;
mod delete;
mod error;
#[cfg(test)]
mod flow_tests;
mod jobs;
mod journal;
mod objects;
mod script;
mod update;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use connctl_immuta::payload::SecretSource;
use connctl_spec::{Connection, Secret, SecretRef};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore};

use crate::fields::{self, FieldMap};
use crate::immuta::Immuta;
use crate::objects::{ObjectAction, ObjectChange};
use crate::plan::{Action, Change, Plan};
use crate::state::{PendingOp, Task};
use crate::store::StateStore;

pub use error::ApplyError;
pub use jobs::{JobEnd, follow_job};
pub use script::{Purpose, RunError, RunOutcome, ScriptRunner};

use self::update::changed_settings;

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
#[derive(Debug, Clone)]
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
        error: Arc<ApplyError>,
    },
    /// A stop was requested before it finished; the next apply resumes it.
    Interrupted {
        detail: String,
        /// What the error that cut it short says to do (apart from `detail`, for the CLI).
        help: Vec<String>,
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

/// How many times a registration whose answer was lost is tried, reading Immuta in between.
const ATTEMPTS: u32 = 5;

type Sink = Arc<dyn Fn(Event) + Send + Sync>;

/// Applies `plan` and returns each connection's outcome, keyed by connection key.
pub async fn apply(
    plan: &Plan,
    targets: BTreeMap<String, Target>,
    client: impl Immuta,
    runner: Arc<dyn ScriptRunner>,
    store: StateStore,
    options: ApplyOptions,
    events: Sink,
) -> BTreeMap<String, Outcome> {
    let targets = Arc::new(targets);
    let limit = Arc::new(Semaphore::new(options.parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    // Object rows by connection, in plan order (parents first); a missing object cannot be set.
    let mut object_rows: BTreeMap<String, Vec<ObjectChange>> = BTreeMap::new();
    for row in plan.objects.iter().filter(|o| o.action != ObjectAction::Missing) {
        object_rows.entry(row.key.clone()).or_default().push(row.clone());
    }
    let changes: Vec<Change> = plan
        .changes
        .iter()
        .filter(|c| !matches!(c.action, Action::Import | Action::Orphan))
        .cloned()
        .collect();
    // Connections whose only changes are objects' get a change of their own to carry them.
    let object_only: Vec<Change> = object_rows
        .keys()
        .filter(|k| !changes.iter().any(|c| &c.key == *k))
        .filter_map(|k| {
            let technology = targets.get(k)?.connection.technology().as_str().to_owned();
            Some(Change {
                key: k.clone(),
                technology,
                action: Action::Update,
                operations: Vec::new(),
                risk: crate::plan::Risk::InPlace,
                fields: Vec::new(),
                note: None,
                cascade: None,
                attributes: Vec::new(),
            })
        })
        .collect();
    for change in changes.iter().chain(&object_only) {
        let rows = object_rows.remove(&change.key).unwrap_or_default();
        let only_objects = change.operations.is_empty() && change.action == Action::Update;
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
                    help: Vec::new(),
                };
                worker.emit(&change.key, EventKind::Finished(outcome.clone()));
                return (change.key, outcome);
            }
            worker.emit(&change.key, EventKind::Started(change.action));
            let run = async {
                let connection = if only_objects {
                    None
                } else {
                    Some(worker.run(&change).await?)
                };
                match connection {
                    Some(Outcome::Applied { detail }) if !rows.is_empty() => {
                        match worker.objects(&change.key, &change.technology, &rows).await? {
                            Outcome::Applied { detail: objects } => Ok(Outcome::Applied {
                                detail: format!("{detail}; {objects}"),
                            }),
                            other => Ok(other),
                        }
                    }
                    Some(other) => Ok(other),
                    None => worker.objects(&change.key, &change.technology, &rows).await,
                }
            };
            let outcome = match run.await {
                Ok(outcome) => outcome,
                Err(Halt::Interrupted(detail)) => Outcome::Interrupted {
                    detail,
                    help: Vec::new(),
                },
                // A step cut short by the stop (an executor's children terminated) is not a failure
                // of the connection: the next apply resumes it.
                Err(Halt::Failed(error)) if stop.is_requested() => Outcome::Interrupted {
                    detail: error.to_string(),
                    help: error.help(),
                },
                Err(Halt::Failed(error)) => Outcome::Failed {
                    error: Arc::from(error),
                },
            };
            worker.emit(&change.key, EventKind::Finished(outcome.clone()));
            (change.key, outcome)
        });
    }
    let mut outcomes = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (key, outcome) = crate::tasks::joined(joined);
        outcomes.insert(key, outcome);
    }
    outcomes
}

/// Why a worker stopped short of an outcome.
#[derive(Debug)]
enum Halt {
    /// Boxed: the error is large and travels up every step.
    Failed(Box<ApplyError>),
    /// A stop was requested; the text says before which step.
    Interrupted(String),
}

impl<E: Into<ApplyError>> From<E> for Halt {
    fn from(error: E) -> Halt {
        Halt::Failed(Box::new(error.into()))
    }
}

type Flow<T> = Result<T, Halt>;

struct Worker<C> {
    client: C,
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

fn resolve(conn: &Connection) -> Flow<Resolved> {
    let mut map = HashMap::new();
    for (field, reference) in conn.secret_refs() {
        let secret = reference
            .resolve()
            .map_err(|source| ApplyError::Secret { field, source })?;
        map.insert(reference.clone(), secret);
    }
    Ok(Resolved(map))
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl<C: Immuta> Worker<C> {
    async fn run(&self, change: &Change) -> Flow<Outcome> {
        let key = change.key.as_str();
        let target = self.targets.get(key);
        let need = || target.ok_or_else(|| Halt::from(ApplyError::NotInYaml { key: key.to_owned() }));
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
                // Immuta had nothing when the plan was made; nothing is sent, only the entry goes.
                self.store.remove(key).await?;
                Ok(Outcome::Applied {
                    detail: "already gone from Immuta; forgotten".into(),
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

    async fn integration_id(&self, key: &str) -> Flow<String> {
        if let Some(id) = self.store.get(key).and_then(|s| s.integration_id) {
            return Ok(id);
        }
        let live = self.client.get_connection(key).await?;
        let id = live
            .and_then(|c| c.native_integration_id)
            .ok_or_else(|| ApplyError::NoIntegration { key: key.to_owned() })?;
        Ok(id)
    }
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
}
