//! Deleting, resuming a delete, protection and forgetting.

use std::sync::Arc;

use super::*;

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
    assert_eq!(e.to_string(), "FAKE DeleteObject failed with 500: fault injected");
    let help = e.help();
    assert_eq!(help.len(), 1, "{help:?}");
    assert!(help[0].starts_with("the cleanup script is saved at "), "{help:?}");
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
    assert!(matches!(&out[KEY], Outcome::Interrupted { detail, .. } if detail == "not started (create)"));
    assert!(w.fake.calls().is_empty());
}

/// Requests the stop while "running" the script, as a signal would, and fails as the runner
/// does when it terminates the script.
struct StoppedMidScript(Stop);

impl ScriptRunner for StoppedMidScript {
    fn run<'a>(
        &'a self,
        _conn: &'a Connection,
        _purpose: Purpose,
        _sql: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome, RunError>> + Send + 'a>> {
        self.0.request();
        Box::pin(async { Err(RunError::Stopped) })
    }
}

#[tokio::test]
async fn a_cleanup_cut_short_by_a_stop_is_interrupted_and_keeps_its_help_as_data() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    let mut plan = crate::plan::plan(
        &BTreeMap::new(),
        &State::new(),
        None,
        &PlanOptions::default(),
        vec![],
    )
    .unwrap();
    plan.changes = vec![change(Action::Delete, vec![Operation::Deregister])];
    let options = ApplyOptions {
        scripts_dir: w.scripts(),
        ..ApplyOptions::default()
    };
    let runner = Arc::new(StoppedMidScript(options.stop.clone()));
    let target = w.target.take().unwrap();
    let out = apply(
        &plan,
        BTreeMap::from([(KEY.to_owned(), target)]),
        w.fake.clone(),
        runner,
        w.store.clone(),
        options,
        Arc::new(|_| {}),
    )
    .await;
    let Outcome::Interrupted { detail, help } = &out[KEY] else {
        panic!("{out:?}");
    };
    assert_eq!(
        detail,
        "deregistered, but the cleanup script failed: stopped by a signal; the command and its processes were terminated"
    );
    assert_eq!(help.len(), 1, "{help:?}");
    assert!(help[0].starts_with("it is saved at "), "{help:?}");
    assert!(help[0].ends_with("; the next apply runs it again"), "{help:?}");
}
