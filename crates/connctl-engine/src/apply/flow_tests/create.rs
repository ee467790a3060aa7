//! Creating, and resuming a create from each step.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;

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

#[tokio::test]
async fn a_create_left_for_a_person_is_registered_by_the_next_run_without_running_the_script() {
    let mut w = World::new(None);
    let saved = PathBuf::from("/tmp/k.create.sql");
    let person = Arc::new(FakeRunner::answering(Ok(RunOutcome::AwaitingManual {
        path: saved,
    })));
    let first = w
        .apply_with(change(Action::Create, vec![Operation::Register]), person)
        .await;
    assert!(matches!(first, Outcome::AwaitingExecution { .. }), "{first:?}");
    let s = w.entry().unwrap();
    assert_eq!(s.step, Step::AwaitingExecution);
    assert_eq!(s.pending.as_ref().map(|p| p.operation), Some(PendingOp::Create));

    // The person ran it; the next run resumes from the journal.
    w.yaml("WH");
    let runner = Arc::new(FakeRunner::default());
    let second = w
        .apply_with(change(Action::Resume, vec![Operation::Register]), runner.clone())
        .await;
    assert!(applied(&second).starts_with("registered, bulkId"), "{second:?}");
    assert!(runner.runs().is_empty());
    assert_eq!(w.fake.count(Call::CreateScript), 1);
    assert_eq!(w.fake.count(Call::Register), 1);
    assert!(w.entry().unwrap().pending.is_none());
}

#[tokio::test]
async fn a_create_whose_registration_answer_was_lost_twice_is_recorded_once_on_the_next_run() {
    let mut w = World::new(None);
    // The answer is lost, and so is the read that would confirm it: the run fails.
    w.fake.fault(Call::Register, Fault::Lose);
    w.fake.fault(Call::GetConnection, Fault::Fail(503));
    let first = w.apply(change(Action::Create, vec![Operation::Register])).await;
    failed(&first);
    assert_eq!(w.entry().unwrap().step, Step::Registering);

    w.yaml("WH");
    let second = w.apply(change(Action::Resume, vec![Operation::Register])).await;
    assert_eq!(applied(&second), "registration confirmed by reading Immuta");
    assert_eq!(w.fake.count(Call::Register), 1);
    assert_eq!(w.entry().unwrap().step, Step::Registered);
}
