//! The applier against the in-memory Immuta: each flow, and resuming from each step the journal
//! can hold (the work picks up where it stopped, a registration is never sent twice, recorded
//! bulkIds stay).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::immuta::fake::{Call, Fake, Fault};
use crate::plan::{Operation, PlanOptions, Risk};
use crate::state::{BulkRecord, ConnectionState, Pending, PendingOp, Phase, State, Step, Task};

/// The script runner of the tests: records each run and answers as told.
#[derive(Default)]
pub(super) struct FakeRunner {
    runs: Mutex<Vec<Purpose>>,
    answer: Mutex<Option<Result<RunOutcome, RunError>>>,
}

impl FakeRunner {
    pub(super) fn answering(answer: Result<RunOutcome, RunError>) -> FakeRunner {
        FakeRunner {
            answer: Mutex::new(Some(answer)),
            ..FakeRunner::default()
        }
    }

    pub(super) fn runs(&self) -> Vec<Purpose> {
        self.runs.lock().unwrap().clone()
    }
}

impl ScriptRunner for FakeRunner {
    fn run<'a>(
        &'a self,
        _conn: &'a Connection,
        purpose: Purpose,
        _sql: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome, RunError>> + Send + 'a>> {
        self.runs.lock().unwrap().push(purpose);
        let answer = self
            .answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Ok(RunOutcome::Executed));
        Box::pin(async move { answer })
    }
}

pub(super) const KEY: &str = "k";

/// A world: a connection `k` in the YAML, the fake Immuta, a state file, a scripts folder.
pub(super) struct World {
    pub(super) dir: tempfile::TempDir,
    pub(super) fake: Fake,
    pub(super) store: StateStore,
    pub(super) target: Option<Target>,
}

fn connection(dir: &Path, warehouse: &str) -> Connection {
    std::fs::write(dir.join("pw.txt"), "s3cret-pw").unwrap();
    let yaml = format!(
        "version: 1
connections:
  - key: {KEY}
    technology: Snowflake
    host: acme.snowflakecomputing.com
    warehouse: {warehouse}
    database: DB
    role: R
    auth:
      type: userPassword
      username: U
      password: {{ file: pw.txt }}
"
    );
    let file = dir.join("c.yaml");
    std::fs::write(&file, yaml).unwrap();
    let desired = connctl_spec::load(&[&file]).unwrap();
    desired.connections.into_iter().next().unwrap()
}

impl World {
    /// `k` in the YAML (warehouse `WH`) with `state` as its entry, if any.
    pub(super) fn new(entry: Option<ConnectionState>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let conn = connection(dir.path(), "WH");
        let mut state = State::new();
        let fields = fingerprinted(&conn, &state.salt).unwrap();
        if let Some(e) = entry {
            state.connections.insert(KEY.into(), e);
        }
        let store = StateStore::new(state, dir.path().join("state.json"));
        World {
            dir,
            fake: Fake::default(),
            store,
            target: Some(Target {
                connection: conn,
                fields,
            }),
        }
    }

    /// `k` in the YAML again for a further run (each apply takes it), with warehouse `warehouse`.
    pub(super) fn yaml(&mut self, warehouse: &str) {
        let conn = connection(self.dir.path(), warehouse);
        let fields = fingerprinted(&conn, &self.store.snapshot().salt).unwrap();
        self.target = Some(Target {
            connection: conn,
            fields,
        });
    }

    /// `k` is no longer in the YAML.
    pub(super) fn without_yaml(mut self) -> World {
        self.target = None;
        self
    }

    pub(super) fn scripts(&self) -> PathBuf {
        self.dir.path().join("scripts")
    }

    pub(super) async fn apply_with(&mut self, change: Change, runner: Arc<FakeRunner>) -> Outcome {
        let mut plan = crate::plan::plan(
            &BTreeMap::new(),
            &State::new(),
            None,
            &PlanOptions::default(),
            vec![],
        )
        .unwrap();
        plan.changes = vec![change];
        let targets = self
            .target
            .take()
            .map(|t| BTreeMap::from([(KEY.to_owned(), t)]))
            .unwrap_or_default();
        let options = ApplyOptions {
            scripts_dir: self.scripts(),
            job_poll: Duration::from_millis(1),
            ..ApplyOptions::default()
        };
        let mut outcomes = apply(
            &plan,
            targets,
            self.fake.clone(),
            runner,
            self.store.clone(),
            options,
            Arc::new(|_| {}),
        )
        .await;
        outcomes.remove(KEY).expect("an outcome for k")
    }

    pub(super) async fn apply(&mut self, change: Change) -> Outcome {
        self.apply_with(change, Arc::new(FakeRunner::default())).await
    }

    pub(super) fn entry(&self) -> Option<ConnectionState> {
        self.store.get(KEY)
    }
}

pub(super) fn change(action: Action, operations: Vec<Operation>) -> Change {
    Change {
        key: KEY.into(),
        technology: "Snowflake".into(),
        action,
        operations,
        risk: Risk::None,
        fields: vec![],
        note: None,
        cascade: None,
        attributes: vec![],
    }
}

/// A state entry with `op` pending at `step`.
pub(super) fn pending(op: PendingOp, step: Step) -> ConnectionState {
    let mut s = ConnectionState::new("Snowflake");
    s.step = step;
    s.pending = Some(Pending::new(op, FieldMap::new()));
    s
}

/// A registered entry (applied with warehouse `OLD`), as after an earlier apply.
pub(super) fn registered() -> ConnectionState {
    let mut s = ConnectionState::new("Snowflake");
    s.step = Step::Registered;
    s.applied = Some(BTreeMap::from([("warehouse".to_owned(), json!("OLD"))]));
    s.bulk_ids.push(BulkRecord {
        bulk_id: "bulk-earlier".into(),
        origin: "register".into(),
        at: "2026-01-01T00:00:00Z".into(),
        job_state: None,
    });
    s
}

pub(super) fn applied(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Applied { detail } => detail,
        other => panic!("not applied: {other:?}"),
    }
}

pub(super) fn failed(outcome: &Outcome) -> &ApplyError {
    match outcome {
        Outcome::Failed { error } => error,
        other => panic!("not failed: {other:?}"),
    }
}

pub(super) fn journal(s: &ConnectionState) -> Vec<(Task, Phase)> {
    s.journal.iter().map(|j| (j.step, j.phase)).collect()
}

mod create;
mod delete;
mod objects;
mod update;
