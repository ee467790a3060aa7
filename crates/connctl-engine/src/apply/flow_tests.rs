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
struct FakeRunner {
    runs: Mutex<Vec<Purpose>>,
    answer: Mutex<Option<Result<RunOutcome, RunError>>>,
}

impl FakeRunner {
    fn answering(answer: Result<RunOutcome, RunError>) -> FakeRunner {
        FakeRunner {
            answer: Mutex::new(Some(answer)),
            ..FakeRunner::default()
        }
    }

    fn runs(&self) -> Vec<Purpose> {
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

const KEY: &str = "k";

/// A world: a connection `k` in the YAML, the fake Immuta, a state file, a scripts folder.
struct World {
    dir: tempfile::TempDir,
    fake: Fake,
    store: StateStore,
    target: Option<Target>,
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
    fn new(entry: Option<ConnectionState>) -> World {
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

    /// `k` is no longer in the YAML.
    fn without_yaml(mut self) -> World {
        self.target = None;
        self
    }

    fn scripts(&self) -> PathBuf {
        self.dir.path().join("scripts")
    }

    async fn apply_with(&mut self, change: Change, runner: Arc<FakeRunner>) -> Outcome {
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

    async fn apply(&mut self, change: Change) -> Outcome {
        self.apply_with(change, Arc::new(FakeRunner::default())).await
    }

    fn entry(&self) -> Option<ConnectionState> {
        self.store.get(KEY)
    }
}

fn change(action: Action, operations: Vec<Operation>) -> Change {
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
fn pending(op: PendingOp, step: Step) -> ConnectionState {
    let mut s = ConnectionState::new("Snowflake");
    s.step = step;
    s.pending = Some(Pending::new(op, FieldMap::new()));
    s
}

/// A registered entry (applied with warehouse `OLD`), as after an earlier apply.
fn registered() -> ConnectionState {
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

fn applied(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Applied { detail } => detail,
        other => panic!("not applied: {other:?}"),
    }
}

fn failed(outcome: &Outcome) -> &ApplyError {
    match outcome {
        Outcome::Failed { error } => error,
        other => panic!("not failed: {other:?}"),
    }
}

fn journal(s: &ConnectionState) -> Vec<(Task, Phase)> {
    s.journal.iter().map(|j| (j.step, j.phase)).collect()
}

// ---- create ----

#[tokio::test]
async fn a_create_scripts_executes_tests_and_registers_once_and_records_the_bulk_id() {
    let mut w = World::new(None);
    let runner = Arc::new(FakeRunner::default());
    let out = w
        .apply_with(change(Action::Create, vec![Operation::Register]), runner.clone())
        .await;
    assert!(applied(&out).starts_with("registered, bulkId bulk-"), "{out:?}");
    let calls: Vec<Call> = w.fake.calls().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        calls,
        vec![Call::CreateScript, Call::TestConnection, Call::Register]
    );
    assert_eq!(runner.runs(), vec![Purpose::Create]);
    let s = w.entry().unwrap();
    assert_eq!(s.step, Step::Registered);
    assert!(s.pending.is_none());
    assert_eq!(s.bulk_ids.len(), 1);
    assert_eq!(s.bulk_ids[0].origin, "register");
    assert_eq!(s.scripts.len(), 1);
    assert!(journal(&s).contains(&(Task::Register, Phase::Done)));
}

#[tokio::test]
async fn a_lost_registration_answer_is_confirmed_by_reading_never_sent_twice() {
    let mut w = World::new(None);
    w.fake.fault(Call::Register, Fault::Lose);
    let out = w.apply(change(Action::Create, vec![Operation::Register])).await;
    assert_eq!(applied(&out), "registration confirmed by reading Immuta");
    assert_eq!(w.fake.count(Call::Register), 1);
    assert_eq!(w.entry().unwrap().step, Step::Registered);
}

#[tokio::test]
async fn a_refused_registration_fails_with_immutas_error_and_is_journaled() {
    let mut w = World::new(None);
    w.fake.fault(Call::Register, Fault::Fail(400));
    let out = w.apply(change(Action::Create, vec![Operation::Register])).await;
    assert!(matches!(failed(&out), ApplyError::Api(e) if e.status() == Some(400)));
    let s = w.entry().unwrap();
    assert_eq!(s.step, Step::Registering);
    assert_eq!(s.pending.as_ref().map(|p| p.operation), Some(PendingOp::Create));
    assert!(journal(&s).contains(&(Task::Register, Phase::Failed)));
}

#[tokio::test]
async fn a_failed_setup_script_is_an_execute_error_naming_the_purpose() {
    let mut w = World::new(None);
    let runner = Arc::new(FakeRunner::answering(Err(RunError::Failed("boom".into()))));
    let out = w
        .apply_with(change(Action::Create, vec![Operation::Register]), runner)
        .await;
    let e = failed(&out);
    assert!(matches!(
        e,
        ApplyError::Execute {
            purpose: Purpose::Create,
            ..
        }
    ));
    assert_eq!(e.to_string(), "executing the create script failed: boom");
    assert_eq!(w.fake.count(Call::Register), 0);
    assert!(journal(&w.entry().unwrap()).contains(&(Task::Execute, Phase::Failed)));
}

#[tokio::test]
async fn a_script_for_a_person_leaves_the_create_awaiting_execution() {
    let mut w = World::new(None);
    let saved = PathBuf::from("/tmp/k.create.sql");
    let runner = Arc::new(FakeRunner::answering(Ok(RunOutcome::AwaitingManual {
        path: saved.clone(),
    })));
    let out = w
        .apply_with(change(Action::Create, vec![Operation::Register]), runner)
        .await;
    assert!(matches!(out, Outcome::AwaitingExecution { ref path } if *path == saved));
    assert_eq!(w.entry().unwrap().step, Step::AwaitingExecution);
    assert_eq!(w.fake.count(Call::Register), 0);
}

/// Resumes a pending create from `step`; returns the world after the apply.
async fn resume_create(
    step: Step,
    in_immuta: bool,
    test_fault: Option<Fault>,
) -> (World, Outcome, Arc<FakeRunner>) {
    let mut entry = pending(PendingOp::Create, step);
    entry.bulk_ids = registered().bulk_ids;
    entry.journal(Task::Execute, Phase::Awaiting, Some("/saved/k.create.sql".into()));
    let mut w = World::new(Some(entry));
    if in_immuta {
        w.fake.seed(KEY, "integration-7");
    }
    if let Some(f) = test_fault {
        w.fake.fault(Call::TestConnection, f);
    }
    let runner = Arc::new(FakeRunner::default());
    let out = w
        .apply_with(change(Action::Resume, vec![Operation::Register]), runner.clone())
        .await;
    (w, out, runner)
}

#[tokio::test]
async fn resuming_a_create_already_in_immuta_only_records_it_at_any_step() {
    for step in [
        Step::New,
        Step::Scripted,
        Step::Executed,
        Step::Tested,
        Step::Registering,
    ] {
        let (w, out, runner) = resume_create(step, true, None).await;
        assert_eq!(
            applied(&out),
            "registration confirmed by reading Immuta",
            "{step:?}"
        );
        assert_eq!(w.fake.count(Call::Register), 0, "{step:?}");
        assert!(runner.runs().is_empty(), "{step:?}");
        let s = w.entry().unwrap();
        assert_eq!(s.step, Step::Registered);
        assert!(s.pending.is_none());
        // The bulkId of the earlier run is kept.
        assert!(s.bulk_ids.iter().any(|b| b.bulk_id == "bulk-earlier"), "{step:?}");
    }
}

#[tokio::test]
async fn resuming_from_new_runs_every_step() {
    let (w, out, runner) = resume_create(Step::New, false, None).await;
    applied(&out);
    assert_eq!(w.fake.count(Call::CreateScript), 1);
    assert_eq!(w.fake.count(Call::Register), 1);
    assert_eq!(runner.runs(), vec![Purpose::Create]);
}

#[tokio::test]
async fn resuming_after_the_script_ran_skips_it_when_the_dry_run_passes() {
    for step in [
        Step::Scripted,
        Step::AwaitingExecution,
        Step::Executed,
        Step::Tested,
        Step::Registering,
    ] {
        let (w, out, runner) = resume_create(step, false, None).await;
        assert!(applied(&out).starts_with("registered"), "{step:?}: {out:?}");
        assert_eq!(w.fake.count(Call::CreateScript), 0, "{step:?}");
        assert!(
            runner.runs().is_empty(),
            "{step:?}: the script must not run twice"
        );
        assert_eq!(w.fake.count(Call::Register), 1, "{step:?}");
        let s = w.entry().unwrap();
        assert_eq!(
            s.bulk_ids.len(),
            2,
            "{step:?}: the earlier bulkId and the new one"
        );
    }
}

#[tokio::test]
async fn resuming_when_the_dry_run_fails_goes_back_to_the_script() {
    for step in [Step::Scripted, Step::Executed, Step::Tested, Step::Registering] {
        let (w, out, runner) = resume_create(step, false, Some(Fault::Fail(400))).await;
        applied(&out);
        assert_eq!(w.fake.count(Call::CreateScript), 1, "{step:?}");
        assert_eq!(runner.runs(), vec![Purpose::Create], "{step:?}");
        assert_eq!(w.fake.count(Call::Register), 1, "{step:?}");
    }
}

#[tokio::test]
async fn resuming_a_script_left_for_a_person_waits_while_the_dry_run_fails() {
    let (w, out, runner) = resume_create(Step::AwaitingExecution, false, Some(Fault::Fail(400))).await;
    assert!(
        matches!(out, Outcome::AwaitingExecution { ref path } if path == Path::new("/saved/k.create.sql")),
        "{out:?}"
    );
    assert!(runner.runs().is_empty());
    assert_eq!(w.fake.count(Call::Register), 0);
}

#[tokio::test]
async fn resuming_stops_when_it_cannot_tell_whether_the_script_ran() {
    let (w, out, runner) = resume_create(Step::Executed, false, Some(Fault::Fail(503))).await;
    assert!(matches!(failed(&out), ApplyError::Api(e) if e.is_transient()));
    assert!(runner.runs().is_empty());
    assert_eq!(w.fake.count(Call::CreateScript), 0);
    assert_eq!(w.fake.count(Call::Register), 0);
}

// ---- update ----

#[tokio::test]
async fn an_update_sends_each_part_once_and_clears_the_pending() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    let runner = Arc::new(FakeRunner::default());
    let out = w
        .apply_with(
            change(
                Action::Update,
                vec![Operation::UpdateConnection, Operation::Rescript],
            ),
            runner.clone(),
        )
        .await;
    assert_eq!(applied(&out), "connection updated, integration re-scripted");
    assert_eq!(w.fake.count(Call::UpdateConnection), 1);
    assert_eq!(w.fake.count(Call::EditScript), 1);
    assert_eq!(w.fake.count(Call::UpdateIntegration), 1);
    assert_eq!(runner.runs(), vec![Purpose::Edit]);
    let s = w.entry().unwrap();
    assert!(s.pending.is_none());
    assert_eq!(s.applied.unwrap()["warehouse"], json!("WH"));
    let origins: Vec<&str> = s.bulk_ids.iter().map(|b| b.origin.as_str()).collect();
    assert_eq!(origins, vec!["register", "update"]);
}

#[tokio::test]
async fn a_lost_update_answer_fails_and_leaves_the_update_pending_for_the_next_run() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    w.fake.fault(Call::UpdateConnection, Fault::Lose);
    let out = w
        .apply(change(Action::Update, vec![Operation::UpdateConnection]))
        .await;
    assert!(matches!(failed(&out), ApplyError::Api(e) if e.outcome_unknown()));
    let s = w.entry().unwrap();
    assert_eq!(s.pending.as_ref().map(|p| p.operation), Some(PendingOp::Update));
    assert!(journal(&s).contains(&(Task::Update, Phase::Failed)));
    // Nothing counts as applied until an answer proves it.
    assert_eq!(s.applied.unwrap()["warehouse"], json!("OLD"));
}

#[tokio::test]
async fn resuming_an_update_whose_edit_script_was_left_for_a_person_only_updates_the_integration() {
    for op in [PendingOp::Update, PendingOp::Rescript] {
        let mut entry = registered();
        entry.step = Step::AwaitingExecution;
        entry.pending = Some(Pending::new(op, FieldMap::new()));
        let mut w = World::new(Some(entry));
        w.fake.seed(KEY, "integration-7");
        let runner = Arc::new(FakeRunner::default());
        let out = w
            .apply_with(change(Action::Resume, vec![Operation::Rescript]), runner.clone())
            .await;
        assert_eq!(applied(&out), "integration re-scripted", "{op:?}");
        assert_eq!(w.fake.count(Call::EditScript), 0, "{op:?}");
        assert_eq!(w.fake.count(Call::UpdateIntegration), 1, "{op:?}");
        assert!(runner.runs().is_empty(), "{op:?}");
        let s = w.entry().unwrap();
        assert!(s.pending.is_none(), "{op:?}");
        assert_eq!(s.step, Step::Registered);
    }
}

#[tokio::test]
async fn resuming_an_update_found_applied_only_records_it() {
    let mut entry = registered();
    entry.pending = Some(Pending::new(PendingOp::Update, FieldMap::new()));
    let mut w = World::new(Some(entry));
    let out = w
        .apply(change(Action::Resume, vec![Operation::RecordState]))
        .await;
    assert_eq!(
        applied(&out),
        "the interrupted update was found applied in Immuta; recorded"
    );
    assert!(w.fake.calls().is_empty());
    let s = w.entry().unwrap();
    assert!(s.pending.is_none());
    assert_eq!(s.bulk_ids[0].bulk_id, "bulk-earlier");
}

#[tokio::test]
async fn a_followed_job_that_failed_fails_the_connection_and_is_recorded() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    // The fake numbers its ids in order: the update's bulkId is the first.
    w.fake.world().job_states.insert("bulk-1".into(), "failed".into());
    let mut plan_change = change(Action::Update, vec![Operation::UpdateConnection]);
    plan_change.risk = Risk::InPlace;
    let mut plan = crate::plan::plan(
        &BTreeMap::new(),
        &State::new(),
        None,
        &PlanOptions::default(),
        vec![],
    )
    .unwrap();
    plan.changes = vec![plan_change];
    let target = w.target.take().unwrap();
    let options = ApplyOptions {
        wait: true,
        job_poll: Duration::from_millis(1),
        scripts_dir: w.scripts(),
        ..ApplyOptions::default()
    };
    let out = apply(
        &plan,
        BTreeMap::from([(KEY.to_owned(), target)]),
        w.fake.clone(),
        Arc::new(FakeRunner::default()),
        w.store.clone(),
        options,
        Arc::new(|_| {}),
    )
    .await;
    let e = failed(&out[KEY]);
    assert_eq!(e.to_string(), "bulk job bulk-1 failed");
    let s = w.entry().unwrap();
    let job = s.bulk_ids.iter().find(|b| b.bulk_id == "bulk-1").unwrap();
    assert_eq!(job.job_state.as_deref(), Some("failed"));
}

// ---- delete ----

#[tokio::test]
async fn a_delete_saves_the_cleanup_script_before_the_delete_then_runs_it_and_forgets() {
    let mut w = World::new(Some(registered())).without_yaml();
    w.fake.seed(KEY, "integration-7");
    let out = w.apply(change(Action::Delete, vec![Operation::Deregister])).await;
    // Without the connection in the YAML there is no executor: the script is handed over.
    assert!(
        applied(&out).starts_with("deregistered; run the cleanup script saved at "),
        "{out:?}"
    );
    let calls: Vec<Call> = w.fake.calls().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        calls,
        vec![Call::GetConnection, Call::DeleteScript, Call::DeleteObject]
    );
    assert!(w.entry().is_none());
    assert!(w.scripts().join("k.delete.sql").exists());
}

/// A pending delete at `step` with its cleanup script saved; `k` still in Immuta or not.
async fn resume_delete(step: Step, in_immuta: bool, in_yaml: bool) -> (World, Outcome, Arc<FakeRunner>) {
    let mut entry = registered();
    entry.step = step;
    let mut w = World::new(None);
    std::fs::create_dir_all(w.scripts()).unwrap();
    let saved = w.scripts().join("k.delete.sql");
    std::fs::write(&saved, "DROP ROLE IMMUTA;").unwrap();
    let mut p = Pending::new(PendingOp::Delete, FieldMap::new());
    p.cleanup_script = Some(saved);
    entry.pending = Some(p);
    w.store.update(KEY, "Snowflake", |s| *s = entry).await.unwrap();
    if in_immuta {
        w.fake.seed(KEY, "integration-7");
    }
    if !in_yaml {
        w = w.without_yaml();
    }
    let runner = Arc::new(FakeRunner::default());
    let ops = if in_yaml {
        vec![Operation::Deregister, Operation::Register]
    } else {
        vec![Operation::Deregister]
    };
    let out = w.apply_with(change(Action::Resume, ops), runner.clone()).await;
    (w, out, runner)
}

#[tokio::test]
async fn resuming_a_delete_whose_answer_was_lost_reads_first_and_does_not_delete_again() {
    for step in [Step::Deleting, Step::Deregistered] {
        let (w, out, runner) = resume_delete(step, false, true).await;
        assert!(
            applied(&out).starts_with("deregistered and cleaned up; registered"),
            "{out:?}"
        );
        assert_eq!(w.fake.count(Call::DeleteObject), 0, "{step:?}");
        assert_eq!(w.fake.count(Call::DeleteScript), 0, "{step:?}");
        // The saved cleanup script ran, then the key (still in the YAML) was registered again.
        assert_eq!(runner.runs(), vec![Purpose::Delete, Purpose::Create]);
        assert_eq!(w.fake.count(Call::Register), 1);
        assert!(
            !w.scripts().join("k.delete.sql").exists(),
            "a script that ran is not kept"
        );
    }
}

#[tokio::test]
async fn resuming_a_delete_that_was_not_sent_sends_it_once_with_the_saved_script() {
    let (w, out, runner) = resume_delete(Step::Deleting, true, false).await;
    assert!(
        applied(&out).starts_with("deregistered; run the cleanup script saved at"),
        "{out:?}"
    );
    assert_eq!(w.fake.count(Call::DeleteObject), 1);
    assert_eq!(w.fake.count(Call::DeleteScript), 0);
    assert!(runner.runs().is_empty());
    assert!(w.entry().is_none());
}

#[tokio::test]
async fn a_refused_delete_keeps_the_cleanup_script_pending_and_says_where_it_is() {
    let mut w = World::new(Some(registered())).without_yaml();
    w.fake.seed(KEY, "integration-7");
    w.fake.fault(Call::DeleteObject, Fault::Fail(500));
    let out = w.apply(change(Action::Delete, vec![Operation::Deregister])).await;
    let e = failed(&out);
    assert!(matches!(e, ApplyError::Deregister { .. }));
    assert!(
        e.to_string().contains("= help: the cleanup script is saved at"),
        "{e}"
    );
    let s = w.entry().unwrap();
    assert_eq!(s.step, Step::Deleting);
    let p = s.pending.unwrap();
    assert_eq!(p.operation, PendingOp::Delete);
    assert!(p.cleanup_script.unwrap().exists());
}

#[tokio::test]
async fn a_failing_cleanup_script_is_a_cleanup_error_and_stays_pending() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    let runner = Arc::new(FakeRunner::answering(Err(RunError::Failed(
        "no privilege".into(),
    ))));
    let out = w
        .apply_with(change(Action::Delete, vec![Operation::Deregister]), runner)
        .await;
    let e = failed(&out);
    assert!(matches!(
        e,
        ApplyError::Cleanup {
            source: RunError::Failed(_),
            ..
        }
    ));
    assert!(
        e.to_string()
            .starts_with("deregistered, but the cleanup script failed: no privilege")
    );
    let s = w.entry().unwrap();
    assert_eq!(s.step, Step::Deregistered);
    assert!(journal(&s).contains(&(Task::Cleanup, Phase::Failed)));
}

#[tokio::test]
async fn protected_connections_are_neither_deleted_nor_replaced() {
    for action in [Action::Delete, Action::Replace] {
        let mut entry = registered();
        entry.protect = true;
        let mut w = World::new(Some(entry));
        w.fake.seed(KEY, "integration-7");
        let out = w.apply(change(action, vec![Operation::Deregister])).await;
        assert!(
            matches!(out, Outcome::Skipped { ref reason } if reason.starts_with("protected")),
            "{out:?}"
        );
        assert!(w.fake.calls().is_empty(), "{action:?}");
        assert!(w.entry().is_some());
    }
}

#[tokio::test]
async fn forget_drops_the_entry_without_calling_immuta() {
    let mut w = World::new(Some(registered())).without_yaml();
    let out = w
        .apply(change(Action::Forget, vec![Operation::RecordState]))
        .await;
    assert_eq!(applied(&out), "already gone from Immuta; forgotten");
    assert!(w.fake.calls().is_empty());
    assert!(w.entry().is_none());
}

#[tokio::test]
async fn a_change_for_a_key_no_longer_in_the_yaml_fails_by_name() {
    let mut w = World::new(None).without_yaml();
    let out = w.apply(change(Action::Create, vec![Operation::Register])).await;
    assert_eq!(failed(&out).to_string(), "`k` is not in the YAML");
}

#[tokio::test]
async fn nothing_starts_after_a_stop() {
    let mut w = World::new(None);
    let mut plan = crate::plan::plan(
        &BTreeMap::new(),
        &State::new(),
        None,
        &PlanOptions::default(),
        vec![],
    )
    .unwrap();
    plan.changes = vec![change(Action::Create, vec![Operation::Register])];
    let options = ApplyOptions {
        scripts_dir: w.scripts(),
        ..ApplyOptions::default()
    };
    options.stop.request();
    let target = w.target.take().unwrap();
    let out = apply(
        &plan,
        BTreeMap::from([(KEY.to_owned(), target)]),
        w.fake.clone(),
        Arc::new(FakeRunner::default()),
        w.store.clone(),
        options,
        Arc::new(|_| {}),
    )
    .await;
    assert!(matches!(&out[KEY], Outcome::Interrupted { detail } if detail == "not started (create)"));
    assert!(w.fake.calls().is_empty());
}
