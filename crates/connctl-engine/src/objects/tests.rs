//! The object decision table, the refresh through the fake, drift, and the plan's gate.

use serde_json::json;

use super::*;
use crate::immuta::fake::{Call, Fake};
use crate::plan::PlanOptions;
use crate::state::{ConnectionState, ObjectRecord, Step};

pub(crate) const KEY: &str = "sf";

/// A Snowflake connection `sf` with `objects` (YAML list items, indented 6).
pub(crate) fn connection(objects: &str) -> Connection {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1
connections:
  - key: {KEY}
    technology: Snowflake
    host: acme.snowflakecomputing.com
    warehouse: WH
    database: DB
    role: R
    auth: {{ type: userPassword, username: U, password: {{ env: X }} }}
    objects:
{objects}"
        ),
    )
    .unwrap();
    connctl_spec::load(&[&file])
        .unwrap_or_else(|r| panic!("{r}"))
        .connections
        .remove(0)
}

fn obj(path: &str) -> ObjectRef {
    ObjectRef {
        key: KEY.into(),
        path: ObjectPath::parse(path).unwrap(),
    }
}

fn want(active: Option<bool>, anc: Option<bool>) -> ObjectSettings {
    ObjectSettings {
        active,
        activate_new_children: anc,
    }
}

fn seen(active: bool, anc: bool) -> SeenObject {
    SeenObject {
        settings: want(Some(active), Some(anc)),
        overrides_below: false,
        child_count: None,
    }
}

type Row = (ObjectAction, Vec<Cause>, Risk, Option<HighRisk>);

fn row(want: ObjectSettings, applied: Option<ObjectSettings>, s: Seen<'_>) -> Option<Row> {
    decide(&obj("DB"), Technology::Snowflake, want, applied, s).map(|r| {
        let causes = r.fields.iter().map(|f| f.cause).collect();
        (r.action, causes, r.risk, r.high_risk)
    })
}

#[test]
fn the_decision_table() {
    use ObjectAction as A;
    let on = Some(true);
    let off = Some(false);
    let inactive = seen(false, false);
    let active = seen(true, false);
    // The YAML activates an object Immuta has inactive.
    assert_eq!(
        row(want(on, None), None, Seen::Read(&inactive)),
        Some((A::Activate, vec![Cause::Config], Risk::InPlace, None))
    );
    // Applied active, a person deactivated it: drift, restored by an activation.
    assert_eq!(
        row(want(on, None), Some(want(on, None)), Seen::Read(&inactive)),
        Some((A::Activate, vec![Cause::Drift], Risk::InPlace, None))
    );
    // Deactivating is high-risk.
    assert_eq!(
        row(want(off, None), Some(want(on, None)), Seen::Read(&active)),
        Some((
            A::Deactivate,
            vec![Cause::Config],
            Risk::Destructive,
            Some(HighRisk::Deactivation)
        ))
    );
    // Only activateNewChildren differs: a settings row; the status is not managed.
    assert_eq!(
        row(want(None, on), None, Seen::Read(&active)),
        Some((A::Settings, vec![Cause::Config], Risk::InPlace, None))
    );
    // Immuta already matches: the state learns it once, then nothing.
    assert_eq!(
        row(want(on, None), None, Seen::Read(&active)),
        Some((A::Record, vec![], Risk::None, None))
    );
    assert_eq!(
        row(want(on, None), Some(want(on, None)), Seen::Read(&active)),
        None
    );
    // Listed, absent in Immuta: missing, never skipped.
    assert_eq!(
        row(want(on, None), None, Seen::Absent),
        Some((A::Missing, vec![], Risk::None, None))
    );
    // Unread (--refresh=false): compared with what was last applied.
    assert_eq!(
        row(want(off, None), Some(want(on, None)), Seen::Unread),
        Some((
            A::Deactivate,
            vec![Cause::Config],
            Risk::Destructive,
            Some(HighRisk::Deactivation)
        ))
    );
    assert_eq!(row(want(on, None), Some(want(on, None)), Seen::Unread), None);
    // Activating over children a person set differently is high-risk too.
    let overridden = SeenObject {
        overrides_below: true,
        ..inactive
    };
    assert_eq!(
        row(want(on, None), None, Seen::Read(&overridden)),
        Some((
            A::Activate,
            vec![Cause::Config],
            Risk::Destructive,
            Some(HighRisk::OverridesBelow)
        ))
    );
}

#[test]
fn rows_carry_cascade_counts_warnings_and_registration() {
    let counted = SeenObject {
        child_count: Some(7),
        ..seen(false, false)
    };
    let r = decide(
        &obj("DB"),
        Technology::Snowflake,
        want(Some(true), None),
        None,
        Seen::Read(&counted),
    )
    .unwrap();
    assert_eq!(
        r.cascade,
        Some(ObjectCascade {
            child_objects: Some(7),
            count: CountKind::Exact
        })
    );
    assert_eq!(r.warning, None);
    let r = decide(
        &obj("DB"),
        Technology::Databricks,
        want(Some(true), None),
        None,
        Seen::Read(&seen(false, false)),
    )
    .unwrap();
    assert!(
        r.warning.as_deref().is_some_and(|w| w.starts_with("Databricks:")),
        "{r:?}"
    );
    assert_eq!(r.cascade.unwrap().count, CountKind::Searched);
    // A settings-only row cascades nothing.
    let r = decide(
        &obj("DB"),
        Technology::Snowflake,
        want(None, Some(true)),
        None,
        Seen::Read(&seen(true, false)),
    )
    .unwrap();
    assert_eq!(r.cascade, None);
    let r = decide(
        &obj("DB"),
        Technology::Snowflake,
        want(Some(true), None),
        None,
        Seen::Registering,
    )
    .unwrap();
    assert!(r.after_registration);
    assert_eq!(r.action, ObjectAction::Activate);
    assert_eq!(r.fields[0].before, None);
    assert_eq!(
        ObjectCascade {
            child_objects: Some(3),
            count: CountKind::Searched
        }
        .describe(),
        "≥ 3 child object(s) (a search's count)"
    );
}

fn registered_state() -> State {
    let mut state = State::new();
    let mut s = ConnectionState::new("Snowflake");
    s.step = Step::Registered;
    state.connections.insert(KEY.into(), s);
    state
}

/// Three levels and a typo: one GET each, rows in the YAML's order (parents first), the
/// direct children counted for the status changes.
#[tokio::test]
async fn the_plan_reads_each_listed_object_once_in_order() {
    let fake = Fake::default();
    fake.seed_objects(&[
        &[KEY, "SALES"],
        &[KEY, "SALES", "PUBLIC"],
        &[KEY, "SALES", "PUBLIC", "ORDERS"],
        &[KEY, "SALES", "PUBLIC", "ITEMS"],
    ]);
    let conn = connection(
        "      - path: SALES
        active: true
      - path: SALES/PUBLIC
        activateNewChildren: true
      - path: SALES/PUBLIC/ORDERS
        active: false
      - path: SALES/TYPO
        active: true
",
    );
    let wanted = to_read(std::iter::once(&conn), &|_| false);
    let live = refresh(&fake, wanted, 2).await.unwrap();
    assert_eq!(fake.count(Call::GetDataObject), 4);
    let state = registered_state();
    let mut rows = plan(std::iter::once(&conn), &state, Some(&live), &|_| false);
    count_cascades(&fake, &mut rows).await.unwrap();
    let got: Vec<(&str, ObjectAction)> = rows.iter().map(|r| (r.path.as_str(), r.action)).collect();
    assert_eq!(
        got,
        [
            ("SALES", ObjectAction::Activate),
            ("SALES/PUBLIC", ObjectAction::Settings),
            // SALES's activation reaches it first; it is put back, which stops nothing
            // Immuta governs now: not high-risk.
            ("SALES/PUBLIC/ORDERS", ObjectAction::Deactivate),
            ("SALES/TYPO", ObjectAction::Missing),
        ]
    );
    assert_eq!(rows[2].cascaded_from.as_deref(), Some("SALES"));
    assert_eq!(rows[2].fields[0].before, Some(true));
    assert_eq!(rows[2].high_risk, None);
    assert_eq!(rows[2].risk, Risk::InPlace);
    assert_eq!(
        rows[0].cascade,
        Some(ObjectCascade {
            child_objects: Some(1),
            count: CountKind::Searched
        })
    );
    // One search per status change (SALES, ORDERS).
    assert_eq!(fake.count(Call::CountObjectChildren), 2);
    // A connection being registered has nothing read; its rows wait for the registration.
    let wanted = to_read(std::iter::once(&conn), &|_| true);
    assert!(wanted.is_empty());
    let rows = plan(std::iter::once(&conn), &State::new(), None, &|_| true);
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r.after_registration && r.action != ObjectAction::Missing)
    );
}

#[tokio::test]
async fn drift_reports_what_a_person_changed_and_apply_would_restore() {
    let fake = Fake::default();
    fake.seed_objects(&[&[KEY, "SALES"], &[KEY, "SALES", "PUBLIC"]]);
    fake.set_object(&[KEY, "SALES"], true);
    let mut state = registered_state();
    let entry = state.connections.get_mut(KEY).unwrap();
    for path in ["SALES", "SALES/PUBLIC"] {
        entry.objects.insert(
            path.into(),
            ObjectRecord {
                applied: want(Some(true), None),
                ..ObjectRecord::default()
            },
        );
    }
    let live = refresh(&fake, recorded(&state, &|_| true), 4).await.unwrap();
    assert!(drift(&state, &live).is_empty(), "nothing moved yet");
    // The "UI" deactivates the schema.
    fake.set_object(&[KEY, "SALES", "PUBLIC"], false);
    let live = refresh(&fake, recorded(&state, &|_| true), 4).await.unwrap();
    let rows = drift(&state, &live);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].path, "SALES/PUBLIC");
    assert_eq!(rows[0].action, ObjectAction::Activate);
    assert_eq!(rows[0].fields[0].cause, Cause::Drift);
    assert_eq!(rows[0].fields[0].before, Some(false));
}

#[test]
fn high_risk_rows_make_the_plan_destructive_and_gated() {
    let mut p = crate::plan::plan(
        &Default::default(),
        &State::new(),
        None,
        &PlanOptions::default(),
        vec![],
    )
    .unwrap();
    let settings = decide(
        &obj("DB"),
        Technology::Snowflake,
        want(None, Some(true)),
        None,
        Seen::Read(&seen(true, false)),
    )
    .unwrap();
    p.objects = vec![settings.clone()];
    assert!(!p.is_empty());
    assert!(!p.is_destructive());
    assert_eq!(p.object_gates().count(), 0);
    let deactivate = decide(
        &obj("DB"),
        Technology::Snowflake,
        want(Some(false), None),
        None,
        Seen::Read(&seen(true, false)),
    )
    .unwrap();
    p.objects.push(deactivate);
    assert!(p.is_destructive());
    assert_eq!(p.object_gates().count(), 1);
    // A plan of missing objects only has nothing to apply.
    p.objects = vec![
        decide(
            &obj("DB"),
            Technology::Snowflake,
            want(Some(true), None),
            None,
            Seen::Absent,
        )
        .unwrap(),
    ];
    assert!(p.is_empty());
    // The JSON names the action and the reason.
    let v = serde_json::to_value(
        decide(
            &obj("DB"),
            Technology::Snowflake,
            want(Some(false), None),
            None,
            Seen::Read(&seen(true, false)),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(v["action"], json!("deactivate"));
    assert_eq!(v["high_risk"], json!("deactivation"));
    assert_eq!(v["settings"], json!({"active": false}));
}

#[test]
fn import_records_only_the_objects_immuta_has_as_listed() {
    // DB is active in Immuta and the YAML turns it off; PUBLIC is active too and listed off, so
    // it matches only once DB's change reaches it; ORDERS is inactive as listed; GONE is not in
    // Immuta.
    let conn = connection(
        "      - path: DB\n        active: false\n      - path: DB/PUBLIC\n        active: false\n      - path: DB/PUBLIC/ORDERS\n        active: false\n      - path: DB/GONE\n        active: true\n",
    );
    let mut state = registered_state();
    let live: LiveObjects = [
        (obj("DB"), Some(seen(true, false))),
        (obj("DB/PUBLIC"), Some(seen(true, false))),
        (obj("DB/PUBLIC/ORDERS"), Some(seen(false, false))),
        (obj("DB/GONE"), None),
    ]
    .into_iter()
    .collect();
    let rows = plan(std::iter::once(&conn), &state, Some(&live), &|_| false);
    assert_eq!(crate::adopt::adopt_objects(&mut state, &rows), 1);
    let recorded: Vec<(&str, ObjectSettings)> = state.connections[KEY]
        .objects
        .iter()
        .map(|(p, r)| (p.as_str(), r.applied))
        .collect();
    assert_eq!(recorded, [("DB/PUBLIC/ORDERS", want(Some(false), None))]);
}
