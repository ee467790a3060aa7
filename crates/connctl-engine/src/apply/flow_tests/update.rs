//! Updating in place, and resuming an update.

use std::sync::Arc;

use super::*;

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
    assert_eq!(
        e.to_string(),
        "bulk job bulk-1 did not complete: Immuta says it failed"
    );
    let s = w.entry().unwrap();
    let job = s.bulk_ids.iter().find(|b| b.bulk_id == "bulk-1").unwrap();
    assert_eq!(job.job_state.as_deref(), Some("failed"));
}

#[tokio::test]
async fn an_edit_script_left_for_a_person_is_finished_by_the_next_run_with_only_the_integration_update() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    let person = Arc::new(FakeRunner::answering(Ok(RunOutcome::AwaitingManual {
        path: "/tmp/k.edit.sql".into(),
    })));
    let first = w
        .apply_with(change(Action::Update, vec![Operation::Rescript]), person)
        .await;
    assert!(matches!(first, Outcome::AwaitingExecution { .. }), "{first:?}");
    let s = w.entry().unwrap();
    assert_eq!(s.step, Step::AwaitingExecution);
    assert_eq!(s.pending.as_ref().map(|p| p.operation), Some(PendingOp::Update));

    w.yaml("WH");
    let runner = Arc::new(FakeRunner::default());
    let second = w
        .apply_with(change(Action::Resume, vec![Operation::Rescript]), runner.clone())
        .await;
    assert_eq!(applied(&second), "integration re-scripted");
    assert_eq!(w.fake.count(Call::EditScript), 1);
    assert_eq!(w.fake.count(Call::UpdateIntegration), 1);
    assert!(runner.runs().is_empty());
    assert!(w.entry().unwrap().pending.is_none());
}

#[tokio::test]
async fn a_settings_update_sends_only_the_changed_setting_and_records_its_bulk_id() {
    let mut w = World::new(Some(registered()));
    w.fake.seed(KEY, "integration-7");
    let mut c = change(Action::Update, vec![Operation::Settings]);
    c.fields.push(crate::plan::FieldChange {
        path: "settings.isActive".into(),
        cause: crate::plan::Cause::Config,
        class: crate::fields::FieldClass::Settings,
        before: json!(true),
        after: json!(false),
        sensitive: false,
    });
    let out = w.apply(c).await;
    assert_eq!(applied(&out), "settings updated");
    assert_eq!(w.fake.count(Call::UpdateSettings), 1);
    let sent = w.fake.world().connections[KEY].settings.clone();
    assert_eq!(sent, json!({ "isActive": false }));
    let s = w.entry().unwrap();
    assert_eq!(s.bulk_ids.last().unwrap().origin, "settings");
}

#[tokio::test]
async fn a_settings_update_with_nothing_changed_sends_nothing() {
    let mut w = World::new(Some(registered()));
    let out = w.apply(change(Action::Update, vec![Operation::Settings])).await;
    applied(&out);
    assert!(w.fake.calls().is_empty());
}
