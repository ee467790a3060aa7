//! The emulator's data-object tree (#17), driven over real HTTP through connctl's own client:
//! every depth readable, a parent's status cascading, override flags after a UI change, the
//! children limit, a crawl finding seeded objects, names that need encoding, and every
//! `--object-shape` read the same.

use connctl_emulator::{ChildrenSearch, EmulatorConfig, ObjectShape};
use connctl_immuta::payload::object_settings;
use connctl_immuta::{ApiError, ClientConfig, ImmutaClient, LiveObject};
use connctl_spec::Secret;
use serde_json::json;

use crate::support::{API_KEY, TestEnv};

const KEY: &str = "dbx-o";

/// An environment with one Databricks connection, inactive and not activating new children:
/// `main` / `main/default` / `main/default/{customers,orders}` below it.
fn env_with(config: EmulatorConfig) -> TestEnv {
    let env = TestEnv::with_emulator(EmulatorConfig {
        job_step_ms: 20,
        ..config
    });
    let registration = json!({"connectionKey": KEY,
        "connection": {"technology": "Databricks", "hostname": "dbc-o.cloud.databricks.com", "port": 443,
            "httpPath": "/sql/1.0/warehouses/o", "authenticationType": "token", "token": "t"},
        "settings": {"isActive": false, "activateNewChildren": false},
        "nativeIntegration": {"type": "Databricks", "autoBootstrap": false, "unityCatalog": true,
            "config": {"host": "dbc-o.cloud.databricks.com", "port": 443, "authenticationType": "token",
                "token": "t", "catalog": "main", "audit": {"enabled": false}}}});
    env.admin(
        "POST",
        "/_emulator/seed",
        json!({ "connections": [registration] }),
    );
    env
}

/// The client and a runtime to drive it.
struct Api {
    client: ImmutaClient,
    rt: tokio::runtime::Runtime,
}

impl Api {
    fn new(env: &TestEnv) -> Api {
        let client = ImmutaClient::new(ClientConfig::new(env.url(), Secret::new(API_KEY))).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Api { client, rt }
    }

    fn get(&self, path: &[&str]) -> Option<LiveObject> {
        self.rt.block_on(self.client.get_data_object(&p(path))).unwrap()
    }

    fn object(&self, path: &[&str]) -> LiveObject {
        self.get(path).unwrap_or_else(|| panic!("{path:?} exists"))
    }

    fn set(
        &self,
        path: &[&str],
        active: Option<bool>,
        anc: Option<bool>,
    ) -> Result<Option<String>, ApiError> {
        let body = object_settings(active, anc);
        self.rt
            .block_on(self.client.update_object_settings(&p(path), &body))
    }

    fn children(&self, path: &[&str]) -> Vec<String> {
        let hits = self
            .rt
            .block_on(self.client.list_object_children(&p(path)))
            .unwrap();
        hits.into_iter().map(|h| h.object_path.join("/")).collect()
    }
}

fn p(path: &[&str]) -> Vec<String> {
    path.iter().map(|n| (*n).to_owned()).collect()
}

const DB: [&str; 2] = [KEY, "main"];
const SCHEMA: [&str; 3] = [KEY, "main", "default"];
const TABLE: [&str; 4] = [KEY, "main", "default", "customers"];
const OTHER: [&str; 4] = [KEY, "main", "default", "orders"];

#[test]
fn a_registration_makes_a_three_level_tree_readable_at_every_depth() {
    for search in [ChildrenSearch::Descendants, ChildrenSearch::Direct] {
        let env = env_with(EmulatorConfig {
            children_search: search,
            ..EmulatorConfig::default()
        });
        let api = Api::new(&env);
        for path in [&[KEY][..], &DB, &SCHEMA, &TABLE, &OTHER] {
            let o = api.object(path);
            assert_eq!(o.object_path, p(path), "{search:?}");
            assert_eq!(o.is_active(), Some(false), "{path:?}");
            assert_eq!(o.activate_new_children(), Some(false), "{path:?}");
            assert!(!o.has_descendants_with_overrides(), "{path:?}");
        }
        assert!(api.get(&[KEY, "main", "nope"]).is_none());
        // The direct children, whichever way the search lists.
        assert_eq!(api.children(&[KEY]), ["dbx-o/main"], "{search:?}");
        assert_eq!(
            api.children(&SCHEMA),
            ["dbx-o/main/default/customers", "dbx-o/main/default/orders"]
        );
        assert!(api.children(&TABLE).is_empty());
        let count = api
            .rt
            .block_on(api.client.count_object_children(&p(&[KEY])))
            .unwrap();
        let want = match search {
            ChildrenSearch::Descendants => 4,
            ChildrenSearch::Direct => 1,
        };
        assert_eq!(count, Some(want), "{search:?}");
    }
}

#[test]
fn a_parent_status_cascades_and_clears_the_overrides_below() {
    let env = env_with(EmulatorConfig::default());
    let api = Api::new(&env);
    // A person enables one table in the UI: an override, flagged on every ancestor.
    env.set_object(&TABLE, json!({"isActive": true}));
    let table = api.object(&TABLE);
    assert_eq!(table.is_active(), Some(true));
    assert_eq!(table.overrides, Some(json!({"isActive": true})));
    for parent in [&[KEY][..], &DB, &SCHEMA] {
        let o = api.object(parent);
        assert_eq!(
            o.is_active(),
            Some(false),
            "{parent:?}: a child's change goes no higher"
        );
        assert!(o.has_descendants_with_overrides(), "{parent:?}");
    }

    // Only the given settings: `activateNewChildren` alone leaves every status as it is.
    api.set(&SCHEMA, None, Some(true)).unwrap();
    assert_eq!(api.object(&TABLE).is_active(), Some(true));
    assert_eq!(
        api.object(&OTHER).activate_new_children(),
        Some(true),
        "inherited"
    );

    // Deactivating the database cascades to the schema and both tables, clearing the override.
    let bulk = api.set(&DB, Some(false), None).unwrap().expect("a bulkId");
    let jobs = api.rt.block_on(api.client.jobs(&bulk)).unwrap();
    assert_eq!(jobs.len(), 1);
    for path in [&SCHEMA[..], &TABLE, &OTHER] {
        assert_eq!(api.object(path).is_active(), Some(false), "{path:?}");
    }
    assert_eq!(api.object(&TABLE).overrides, Some(json!({})));
    let db = api.object(&DB);
    assert!(
        db.has_descendants_with_overrides(),
        "the schema's own activateNewChildren is still an override"
    );
    assert_eq!(db.settings["isActive"]["hasDescendantsWithOverrides"], false);

    // Activating the schema activates its tables, not the database above.
    api.set(&SCHEMA, Some(true), None).unwrap();
    let dump = env.object(&[KEY]);
    let states: Vec<(String, String, bool)> = dump["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let path: Vec<&str> = o["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            (
                path.join("/"),
                o["state"].as_str().unwrap().to_owned(),
                o["activeOverride"] == true,
            )
        })
        .collect();
    let want = [
        ("main", "inactive", true),
        ("main/default", "active", true),
        ("main/default/customers", "active", false),
        ("main/default/orders", "active", false),
    ];
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(p, s, o)| ((*p).to_owned(), (*s).to_owned(), *o))
        .collect();
    assert_eq!(states, want);
}

#[test]
fn enabling_a_parent_at_the_children_limit_is_refused_and_changes_nothing() {
    let env = env_with(EmulatorConfig {
        max_activate_children: 2,
        ..EmulatorConfig::default()
    });
    let api = Api::new(&env);
    for parent in [&[KEY][..], &DB, &SCHEMA] {
        let err = api.set(parent, Some(true), None).unwrap_err();
        assert_eq!(err.status(), Some(400), "{parent:?}: {err}");
        assert!(err.to_string().contains("under 2 child objects"), "{err}");
    }
    for path in [&[KEY][..], &DB, &SCHEMA, &TABLE] {
        assert_eq!(api.object(path).is_active(), Some(false), "{path:?}");
    }
    // Below the limit, and disabling, are allowed.
    api.set(&TABLE, Some(true), None).unwrap();
    assert_eq!(api.object(&TABLE).is_active(), Some(true));
    api.set(&[KEY], Some(false), None).unwrap();
    assert_eq!(api.object(&TABLE).is_active(), Some(false));
}

#[test]
fn a_crawl_finds_seeded_objects_active_as_their_parent_says() {
    let env = env_with(EmulatorConfig::default());
    let api = Api::new(&env);
    api.set(&SCHEMA, None, Some(true)).unwrap();
    env.seed_objects(&DB, json!(["default/invoices", "sales/leads"]));
    // In the warehouse only: Immuta does not know them yet.
    assert!(api.get(&[KEY, "main", "default", "invoices"]).is_none());
    assert_eq!(api.children(&DB), ["dbx-o/main/default"]);

    let bulk = api.rt.block_on(api.client.crawl(&p(&[KEY]))).unwrap();
    assert!(bulk.is_some());
    // Below a schema that activates new children: active. Below the database, which inherits
    // the connection's `activateNewChildren: false`: inactive, and so is the table below it.
    assert_eq!(
        api.object(&[KEY, "main", "default", "invoices"]).is_active(),
        Some(true)
    );
    assert_eq!(api.object(&[KEY, "main", "sales"]).is_active(), Some(false));
    assert_eq!(
        api.object(&[KEY, "main", "sales", "leads"]).is_active(),
        Some(false)
    );
    assert_eq!(api.children(&DB), ["dbx-o/main/default", "dbx-o/main/sales"]);
}

#[test]
fn names_that_need_encoding_are_one_segment_each() {
    let env = env_with(EmulatorConfig::default());
    let api = Api::new(&env);
    env.seed_objects(&DB, json!([["odd/name", "t 1%"], ["my.db", "Zürich"], ["seed"]]));
    api.rt.block_on(api.client.crawl(&p(&DB))).unwrap();
    let odd = [KEY, "main", "odd/name", "t 1%"];
    assert_eq!(api.object(&odd).object_path, p(&odd));
    assert_eq!(
        api.children(&[KEY, "main", "odd/name"]),
        ["dbx-o/main/odd/name/t 1%"]
    );
    assert!(
        api.get(&[KEY, "main", "odd"]).is_none(),
        "`/` never splits a name"
    );
    api.set(&odd, Some(true), None).unwrap();
    assert_eq!(api.object(&odd).is_active(), Some(true));
    let dotted = [KEY, "main", "my.db", "Zürich"];
    api.set(&dotted, Some(true), None).unwrap();
    assert_eq!(api.object(&dotted).is_active(), Some(true));
    // An object named like the admin API's seed endpoint is still an object there.
    env.set_object(&[KEY, "main", "seed"], json!({"isActive": true}));
    assert_eq!(api.object(&[KEY, "main", "seed"]).is_active(), Some(true));
}

/// What the client reads of an object: status, `activateNewChildren`, overrides below.
type Read = (Option<bool>, Option<bool>, bool);

#[test]
fn the_client_reads_every_object_shape_the_same() {
    let mut seen: Vec<(ObjectShape, Vec<Read>)> = Vec::new();
    for shape in [
        ObjectShape::Documented,
        ObjectShape::Flat,
        ObjectShape::WithChildCount,
        ObjectShape::SettingsOnly,
    ] {
        let env = env_with(EmulatorConfig {
            object_shape: shape,
            ..EmulatorConfig::default()
        });
        let api = Api::new(&env);
        // UI changes below the database: a table's status and new-children setting (`flat` has
        // no `settings.isActive` to flag a status override on), the schema's new-children one.
        env.set_object(&TABLE, json!({"isActive": true, "activateNewChildren": true}));
        env.set_object(&SCHEMA, json!({"activateNewChildren": true}));
        let read: Vec<Read> = [&[KEY][..], &DB, &SCHEMA, &TABLE]
            .iter()
            .map(|path| {
                let o = api.object(path);
                (
                    o.is_active(),
                    o.activate_new_children(),
                    o.has_descendants_with_overrides(),
                )
            })
            .collect();
        let child_count = api.object(&DB).child_count;
        match shape {
            ObjectShape::WithChildCount => assert_eq!(child_count, Some(3)),
            _ => assert_eq!(child_count, None, "{shape:?}"),
        }
        seen.push((shape, read));
    }
    let want = vec![
        (Some(false), Some(false), true),
        (Some(false), Some(false), true),
        (Some(false), Some(true), true),
        (Some(true), Some(true), false),
    ];
    // (`activateNewChildren` of the connection and database: their own / inherited `false`.)
    for (shape, read) in seen {
        assert_eq!(read, want, "{shape:?}");
    }
}
