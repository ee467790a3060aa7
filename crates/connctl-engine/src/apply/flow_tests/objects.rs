//! Applying object rows: parents before children, one PUT each with only what differs, the
//! bulkId and the settings recorded, and a resume that re-reads and sends only what still
//! differs.

use super::*;
use crate::objects::tests::{KEY as SF, connection};
use crate::objects::{self, ObjectAction};

const YAML: &str = "      - path: SALES
        active: true
      - path: SALES/PUBLIC
        activateNewChildren: true
      - path: SALES/PUBLIC/ORDERS
        active: false
";

fn world() -> (Fake, StateStore, tempfile::TempDir, Connection) {
    let fake = Fake::default();
    fake.seed_objects(&[
        &[SF, "SALES"],
        &[SF, "SALES", "PUBLIC"],
        &[SF, "SALES", "PUBLIC", "ORDERS"],
        &[SF, "SALES", "PUBLIC", "ITEMS"],
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::new();
    let mut entry = ConnectionState::new("Snowflake");
    entry.step = Step::Registered;
    state.connections.insert(SF.into(), entry);
    let store = StateStore::new(state, dir.path().join("state.json"));
    (fake, store, dir, connection(YAML))
}

/// Plans the objects against the fake and the store's state, then applies them.
async fn plan_and_apply(fake: &Fake, store: &StateStore, conn: &Connection) -> (Vec<ObjectAction>, Outcome) {
    let wanted = objects::to_read(std::iter::once(conn), &|_| false);
    let live = objects::refresh(fake, wanted, 4).await.unwrap();
    let mut plan = crate::plan::plan(
        &BTreeMap::new(),
        &State::new(),
        None,
        &PlanOptions::default(),
        vec![],
    )
    .unwrap();
    plan.objects = objects::plan(std::iter::once(conn), &store.snapshot(), Some(&live), &|_| false);
    let actions = plan.objects.iter().map(|o| o.action).collect();
    // Object rows need no connection fields (nor its secret).
    let fields = FieldMap::new();
    let targets = BTreeMap::from([(
        SF.to_owned(),
        Target {
            connection: conn.clone(),
            fields,
        },
    )]);
    let options = ApplyOptions {
        job_poll: Duration::from_millis(1),
        wait: true,
        ..ApplyOptions::default()
    };
    let mut outcomes = apply(
        &plan,
        targets,
        fake.clone(),
        Arc::new(FakeRunner::default()),
        store.clone(),
        options,
        Arc::new(|_| {}),
    )
    .await;
    (
        actions,
        outcomes.remove(SF).unwrap_or(Outcome::Skipped {
            reason: "none".into(),
        }),
    )
}

#[tokio::test]
async fn parents_first_one_put_each_with_only_what_differs() {
    let (fake, store, _dir, conn) = world();
    let (actions, outcome) = plan_and_apply(&fake, &store, &conn).await;
    assert_eq!(
        actions,
        [
            ObjectAction::Activate,
            ObjectAction::Settings,
            ObjectAction::Deactivate
        ]
    );
    assert_eq!(applied(&outcome), "3 object(s) set");
    let puts = fake.world().object_puts.clone();
    assert_eq!(
        puts,
        [
            ("sf/SALES".to_owned(), json!({"settings": {"isActive": true}})),
            (
                "sf/SALES/PUBLIC".to_owned(),
                json!({"settings": {"activateNewChildren": true}})
            ),
            // The parent's activation cascaded to it; the YAML wants it inactive again.
            (
                "sf/SALES/PUBLIC/ORDERS".to_owned(),
                json!({"settings": {"isActive": false}})
            ),
        ]
    );
    assert!(
        fake.object(&[SF, "SALES", "PUBLIC", "ITEMS"]).unwrap().active,
        "cascaded"
    );
    assert!(!fake.object(&[SF, "SALES", "PUBLIC", "ORDERS"]).unwrap().active);
    let entry = store.get(SF).unwrap();
    let sales = &entry.objects["SALES"];
    assert_eq!(sales.applied.active, Some(true));
    assert!(sales.bulk_id.is_some() && sales.pending.is_none());
    assert!(
        entry
            .bulk_ids
            .iter()
            .any(|b| b.origin == "object-settings" && b.job_state.as_deref() == Some("completed"))
    );
    assert!(
        entry
            .journal
            .iter()
            .any(|j| j.step == Task::ObjectSettings && j.phase == Phase::Intent)
    );
    // Applied: the next plan has nothing for the objects.
    let (actions, _) = plan_and_apply(&fake, &store, &conn).await;
    assert_eq!(actions, []);
    assert_eq!(fake.world().object_puts.len(), 3);
}

#[tokio::test]
async fn a_resume_reads_again_and_sends_only_what_still_differs() {
    let (fake, store, _dir, conn) = world();
    // The first PUT sent fails: the run stops there.
    fake.fault(Call::UpdateObjectSettings, Fault::Fail(503));
    // A person activated the database (and with it everything below).
    fake.set_object(&[SF, "SALES"], true);
    let (_, outcome) = plan_and_apply(&fake, &store, &conn).await;
    // SALES already active: recorded, nothing sent; PUBLIC's PUT failed.
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    let entry = store.get(SF).unwrap();
    assert_eq!(entry.objects["SALES"].applied.active, Some(true));
    assert_eq!(
        entry.objects["SALES/PUBLIC"]
            .pending
            .map(|p| p.activate_new_children),
        Some(Some(true))
    );
    fake.fault(Call::UpdateObjectSettings, Fault::Lose);
    let (_, outcome) = plan_and_apply(&fake, &store, &conn).await;
    assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
    // The lost PUT took effect: the next run reads it and sends only ORDERS.
    let before = fake.world().object_puts.len();
    let (actions, outcome) = plan_and_apply(&fake, &store, &conn).await;
    assert_eq!(actions, [ObjectAction::Record, ObjectAction::Deactivate]);
    assert_eq!(applied(&outcome), "1 object(s) set, 1 already as wanted");
    let puts = fake.world().object_puts.clone();
    assert_eq!(puts.len(), before + 1);
    assert_eq!(puts.last().unwrap().0, "sf/SALES/PUBLIC/ORDERS");
    assert!(
        store
            .get(SF)
            .unwrap()
            .objects
            .values()
            .all(|o| o.pending.is_none())
    );
}
