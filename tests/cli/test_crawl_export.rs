//! `connctl crawl` and `connctl export --objects` (issue 17) against the emulator's object
//! tree: a crawl finds what the warehouse gained, a missing path or a bad PATH exits 1, and an
//! export of objects changed in Immuta's UI writes exactly those, in YAML that validates and
//! plans with no change.

use serde_json::{Value, json};

use crate::support::TestEnv;

const SPEC: &str = "version: 1
connections:
  - key: sf-a
    technology: Snowflake
    host: a.snowflakecomputing.com
    warehouse: WH
    database: DB_A
    role: R
    settings: { isActive: false, activateNewChildren: true }
    auth: { type: userPassword, username: SYS, password: { env: CONNCTL_TEST_SF_PASSWORD } }
    audit: { enabled: true }
";

/// `sf-a` applied and its registration job done: DB_A/PUBLIC/{CUSTOMERS,ORDERS} exist.
fn applied() -> TestEnv {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    let out = env.run(&["apply", "--auto-approve", "--wait", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    env
}

/// `GET /data/object/{path}` as Immuta answers it (`None`: 404).
fn immuta_object(env: &TestEnv, path: &str) -> Option<Value> {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/data/object/{path}", env.url()))
        .bearer_auth(crate::support::API_KEY)
        .send()
        .unwrap();
    if resp.status() == 404 {
        return None;
    }
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    Some(resp.json().unwrap())
}

#[test]
fn crawl_finds_the_objects_the_warehouse_gained() {
    let env = applied();
    env.seed_objects(
        &["sf-a", "DB_A"],
        json!(["SALES/ORDERS", "SALES/RETURNS", ["odd/name", "T"]]),
    );
    assert!(
        immuta_object(&env, "sf-a/DB_A/SALES").is_none(),
        "unknown to Immuta before a crawl"
    );
    insta::assert_snapshot!(env.snap(&["crawl", "sf-a", "DB_A"]), @"
    exit: 0
    --- stdout
    Crawl of sf-a/DB_A started: bulkId [UUID]
    Crawl of sf-a/DB_A: completed
    --- stderr
    ");
    assert_eq!(env.count_requests("POST", "/data/crawl/sf-a/DB_A"), 1);
    assert!(env.count_requests("GET", "/jobs") >= 1, "the job was followed");
    // Found, and active: the connection's `activateNewChildren: true` is in force below it.
    for path in [
        "sf-a/DB_A/SALES",
        "sf-a/DB_A/SALES/ORDERS",
        "sf-a/DB_A/SALES/RETURNS",
    ] {
        let object = immuta_object(&env, path).unwrap_or_else(|| panic!("{path} after the crawl"));
        assert_eq!(object["state"], "active", "{path}: {object}");
    }
    // A name holding `/`, quoted as in the YAML, is crawled as one segment.
    let out = env.run(&["crawl", "sf-a", "DB_A/\"odd/name\""]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env.count_requests("POST", "/data/crawl/sf-a/DB_A/odd%2Fname"), 1);
    assert!(immuta_object(&env, "sf-a/DB_A/odd%2Fname/T").is_some());
}

#[test]
fn crawl_of_a_missing_path_or_a_bad_path_exits_1() {
    let env = applied();
    insta::assert_snapshot!(env.snap(&["crawl", "sf-a", "NOPE/PUBLIC"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: `sf-a/NOPE/PUBLIC` does not exist in Immuta; nothing was crawled
      = help: check the key and the path; an object appears in Immuta only once a crawl of its parent found it: crawl the connection (or a parent path) first
    ");
    insta::assert_snapshot!(env.snap(&["crawl", "sf-nope"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: `sf-nope` does not exist in Immuta; nothing was crawled
      = help: check the key: `connctl export` lists the connections Immuta has
    ");
    // A quoted name holding `/` is one segment, sent percent-encoded.
    assert_eq!(env.run(&["crawl", "sf-a", "DB_A/\"odd/name\""]).code, 1);
    // A PATH that does not parse is refused before anything is sent.
    insta::assert_snapshot!(env.snap(&["crawl", "sf-a", "DB_A//T"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: PATH `DB_A//T` has an empty segment; nothing was sent
      = help: write the path below the connection, e.g. SALES/PUBLIC; segments are joined with `/`; write a segment holding `/` or `"`, or starting or ending with a space, in double quotes, with `""` for a literal quote: `DB/"odd/name"/T1`
    "#);
    insta::assert_snapshot!(env.snap(&["crawl", "sf-a", "DB_A/\"odd"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: PATH `DB_A/"odd` has a quoted segment without its closing `"`; nothing was sent
      = help: write the path below the connection, e.g. SALES/PUBLIC; segments are joined with `/`; write a segment holding `/` or `"`, or starting or ending with a space, in double quotes, with `""` for a literal quote: `DB/"odd/name"/T1`
    "#);
    let log = env.admin("GET", "/_emulator/requests", Value::Null);
    let crawls: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/data/crawl/")))
        .collect();
    let sent: Vec<&str> = crawls.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(
        sent,
        [
            "/data/crawl/sf-a/NOPE/PUBLIC",
            "/data/crawl/sf-nope",
            "/data/crawl/sf-a/DB_A/odd%2Fname"
        ],
        "only the well-formed paths were sent"
    );
}

#[test]
fn crawl_no_wait_prints_the_bulk_id_and_follows_nothing() {
    let env = applied();
    let jobs_before = env.count_requests("GET", "/jobs");
    insta::assert_snapshot!(env.snap(&["crawl", "sf-a", "--no-wait"]), @"
    exit: 0
    --- stdout
    Crawl of sf-a started: bulkId [UUID]
    --- stderr
    ");
    assert_eq!(env.count_requests("POST", "/data/crawl/sf-a"), 1);
    assert_eq!(env.count_requests("GET", "/jobs"), jobs_before, "no job polled");
}

/// A tree changed in Immuta's UI: DB_A activated (cascading to all below it), then one table
/// deactivated, and `activateNewChildren` switched off on a schema.
fn changed_in_the_ui() -> TestEnv {
    let env = applied();
    env.seed_objects(&["sf-a", "DB_A"], json!(["SALES/T1", "SALES/T2"]));
    assert_eq!(env.run(&["crawl", "sf-a"]).code, 0);
    env.set_object(&["sf-a", "DB_A"], json!({"isActive": true}));
    env.set_object(&["sf-a", "DB_A", "PUBLIC", "ORDERS"], json!({"isActive": false}));
    env.set_object(&["sf-a", "DB_A", "SALES"], json!({"activateNewChildren": false}));
    env
}

#[test]
fn export_objects_writes_what_differs_from_the_parent_and_plans_with_no_change() {
    let mut env = changed_in_the_ui();
    let out = env.run(&["export", "--objects", "--out", "exported.yaml", "sf-a"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let yaml = std::fs::read_to_string(env.path("exported.yaml")).unwrap();
    insta::assert_snapshot!(yaml, @"
    # Exported by `connctl export` from Immuta. Secrets are placeholders: set each environment
    # variable named below (or use { file: PATH }); fill in any value marked SET_ME (Immuta
    # does not show it); then adopt with `connctl import THIS_FILE --key KEY` (a --key per
    # connection).
    version: 1
    connections:
    - key: sf-a
      technology: Snowflake
      host: a.snowflakecomputing.com
      port: 443
      warehouse: WH
      database: DB_A
      role: R
      auth:
        type: userPassword
        username: SYS
        password:
          env: SF_A_PASSWORD
      audit:
        enabled: true
      workspaces:
        enabled: false
      impersonation:
        enabled: false
      lineage:
        enabled: false
      settings:
        isActive: false
      objects:
      - path: DB_A
        active: true
      - path: DB_A/PUBLIC/ORDERS
        active: false
      - path: DB_A/SALES
        activateNewChildren: false
    ");
    let check = env.run(&["validate", "exported.yaml"]);
    assert_eq!(check.code, 0, "{}\n{yaml}", check.stderr);
    // Adopted as the export's header says (its secret set), it plans with no change against
    // the same tenant.
    env.set_env("SF_A_PASSWORD", "canary-sf-password-7c1");
    assert_eq!(env.run(&["state", "rm", "sf-a"]).code, 0);
    let listed = ["DB_A", "DB_A/PUBLIC/ORDERS", "DB_A/SALES"].map(|p| format!("/data/object/sf-a/{p}"));
    let reads = |env: &TestEnv| listed.clone().map(|p| env.count_requests("GET", &p));
    let before = reads(&env);
    // Import reads each listed object and records those Immuta has as listed (all three).
    insta::assert_snapshot!(env.snap(&["import", "exported.yaml", "--key", "sf-a"]), @"
    exit: 0
    --- stdout
    Imported 1: sf-a
    Recorded 3 listed data object(s) that Immuta has as the YAML lists them.
    --- stderr
    ");
    let after = reads(&env);
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "import read each listed object: {before:?} then {after:?}"
    );
    let recorded: Vec<String> = env.state()["connections"]["sf-a"]["objects"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(recorded, ["DB_A", "DB_A/PUBLIC/ORDERS", "DB_A/SALES"]);
    // So the first plan after the import has nothing to do, and applying sends nothing.
    let plan = env.run(&["plan", "--detailed-exitcode", "exported.yaml"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    let out = env.run(&["apply", "--auto-approve", "exported.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let sent = env.admin("GET", "/_emulator/state", Value::Null)["settingsRequests"].clone();
    assert_eq!(sent, json!([]), "no settings were sent");
}

#[test]
fn export_objects_of_an_untouched_tree_writes_no_objects() {
    let env = applied();
    let out = env.run(&["export", "--objects", "sf-a"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("objects:"), "{}", out.stdout);
    // Every object below the connection was listed or read, but no table's children were listed.
    assert_eq!(env.count_requests("POST", "/data/object/search/sf-a"), 1);
    assert_eq!(env.count_requests("POST", "/data/object/search/sf-a/DB_A"), 1);
    assert_eq!(
        env.count_requests("POST", "/data/object/search/sf-a/DB_A/PUBLIC"),
        1
    );
    assert_eq!(
        env.count_requests("POST", "/data/object/search/sf-a/DB_A/PUBLIC/ORDERS"),
        0
    );
    // The schema's listing gives each table's status: no table is read on its own.
    assert_eq!(
        env.count_requests("GET", "/data/object/sf-a/DB_A/PUBLIC/ORDERS"),
        0
    );
    assert_eq!(env.count_requests("GET", "/data/object/sf-a/DB_A/PUBLIC"), 1);
}

#[test]
fn export_objects_with_an_unreadable_listing_is_an_error_and_writes_nothing() {
    let env = changed_in_the_ui();
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "POST", "path": "/data/object/search/sf-a/DB_A/SALES", "status": 403, "count": 5}),
    );
    let out = env.run(&["export", "--objects", "--out", "exported.yaml", "sf-a"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    insta::assert_snapshot!(out.stderr, @"error: cannot list the objects below `sf-a/DB_A/SALES`: POST /data/object/search/sf-a/DB_A/SALES failed with 403: injected fault for POST /data/object/search/sf-a/DB_A/SALES?offset=0&size=1000");
    assert!(!env.path("exported.yaml").exists(), "nothing written");
}

#[test]
fn a_crawl_whose_job_fails_exits_1_naming_the_job() {
    let env = applied();
    env.admin(
        "POST",
        "/_emulator/jobs/end-next",
        json!({"origin": "crawl", "state": "failed"}),
    );
    insta::assert_snapshot!(env.snap(&["crawl", "sf-a", "DB_A"]), @"
    exit: 1
    --- stdout
    Crawl of sf-a/DB_A started: bulkId [UUID]
    --- stderr
    error: the crawl of `sf-a/DB_A` did not complete: Immuta says it failed (job [UUID])
      = help: Immuta's job page (or GET /jobs?bulkId=…) says why; crawl again once it is fixed
    ");
}
