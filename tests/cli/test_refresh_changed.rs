//! `plan --refresh=changed`: only the connections the YAML changed since the last apply (and
//! added, removed or interrupted ones) are read from Immuta; the plan says how many were not.

use crate::support::TestEnv;

fn snowflake(key: &str, warehouse: &str) -> String {
    format!(
        "  - key: {key}
    technology: Snowflake
    host: {key}.snowflakecomputing.com
    warehouse: {warehouse}
    database: DB
    role: R
    auth: {{ type: userPassword, username: SYS, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}
"
    )
}

fn yaml(entries: &[(&str, &str)]) -> String {
    let body: String = entries.iter().map(|(k, wh)| snowflake(k, wh)).collect();
    format!("version: 1\nconnections:\n{body}")
}

/// Four applied connections; then the YAML changes `sf-edited`'s warehouse, drops
/// `sf-removed` and adds `sf-added`, while a person changes `sf-same`'s role in Immuta (drift
/// that only a full refresh or `connctl drift` sees). The request log is cleared.
fn world() -> TestEnv {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        &yaml(&[
            ("sf-edited", "WH"),
            ("sf-removed", "WH"),
            ("sf-same", "WH"),
            ("sf-same-too", "WH"),
        ]),
    );
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    env.write(
        "c.yaml",
        &yaml(&[
            ("sf-added", "WH"),
            ("sf-edited", "WH2"),
            ("sf-same", "WH"),
            ("sf-same-too", "WH"),
        ]),
    );
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-same",
        serde_json::json!({"connection": {"role": "HAND_EDITED"}}),
    );
    env.admin("DELETE", "/_emulator/requests", serde_json::Value::Null);
    env
}

/// The requests the emulator saw since the last clear, ids folded, sorted.
fn requests(env: &TestEnv) -> Vec<String> {
    let log = env.admin("GET", "/_emulator/requests", serde_json::Value::Null);
    let id = regex_lite::Regex::new(r"^/integrations/\d+$").unwrap();
    let mut out: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                id.replace(path, "/integrations/{id}")
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn changed_reads_only_the_edited_and_removed_connections_and_says_so() {
    let env = world();
    let out = env.run(&["plan", "--refresh=changed", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      + create   sf-added (Snowflake)  [script, execute, test, register]
          +   audit.enabled: false
          +   auth.password: (sensitive)
          +   auth.type: "userPassword"
          +   auth.username: "SYS"
          +   database: "DB"
          +   host: "sf-added.snowflakecomputing.com"
          +   impersonation.enabled: false
          +   lineage.enabled: false
          +   options.forceRecursiveCrawl: true
          +   port: 443
          +   role: "R"
          +   settings.isActive: false
          +   technology: "Snowflake"
          +   warehouse: "WH"
          +   workspaces.enabled: false
      ~ update   sf-edited (Snowflake)  [update connection]
          -   warehouse: "WH"  (config)
          +   warehouse: "WH2"  (config)
      ! orphan   sf-removed (Snowflake)
          # no longer in the YAML; left alone (use --prune to delete it)

    Note: 2 other connection(s), unchanged in the YAML since the last apply, were not read from Immuta (--refresh=changed); their drift is `connctl drift`'s job.
    Plan: 1 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted. (1 orphaned)
    Immuta: [URL]
    --- stderr
    "#);
    // One listing page, and three reads for each of sf-edited and sf-removed: nothing of the
    // two unchanged connections (sf-same's drift is not seen).
    assert_eq!(
        requests(&env),
        [
            "GET /data/connection/sf-edited",
            "GET /data/connection/sf-removed",
            "GET /data/object/sf-edited",
            "GET /data/object/sf-removed",
            "GET /integrations/{id}",
            "GET /integrations/{id}",
            "POST /data/object/search",
        ]
    );
}

#[test]
fn changed_markdown_and_json_say_how_many_were_not_read() {
    let env = world();
    let md = env.run(&["plan", "--refresh=changed", "--format", "markdown", "c.yaml"]);
    assert_eq!(md.code, 0, "{}", md.stderr);
    insta::assert_snapshot!(md.snapshot(), @r#"
    exit: 0
    --- stdout
    ### connctl plan
    Immuta: `[URL]`

    **Plan: 1 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted. (1 orphaned)**

    | create | update | replace | delete | drifted | import | orphaned | unmanaged | unchanged |
    |---:|---:|---:|---:|---:|---:|---:|---:|---:|
    | 1 | 1 | 0 | 0 | 0 | 0 | 1 | 0 | 2 |

    > [!NOTE]
    > 2 other connection(s), unchanged in the YAML since the last apply, were not read from Immuta (--refresh=changed); their drift is `connctl drift`'s job.

    <details><summary><code>+</code> <b>create</b> sf-added (Snowflake)</summary>

    ```diff
    + audit.enabled: false
    + auth.password: (sensitive)
    + auth.type: "userPassword"
    + auth.username: "SYS"
    + database: "DB"
    + host: "sf-added.snowflakecomputing.com"
    + impersonation.enabled: false
    + lineage.enabled: false
    + options.forceRecursiveCrawl: true
    + port: 443
    + role: "R"
    + settings.isActive: false
    + technology: "Snowflake"
    + warehouse: "WH"
    + workspaces.enabled: false
    ```
    </details>

    <details><summary><code>~</code> <b>update</b> sf-edited (Snowflake)</summary>

    ```diff
    - warehouse: "WH"  # config
    + warehouse: "WH2"  # config
    ```
    </details>

    <details><summary><code>!</code> <b>orphan</b> sf-removed (Snowflake)</summary>

    no longer in the YAML; left alone (use --prune to delete it)

    </details>

    --- stderr
    "#);
    let json = env.run(&["plan", "--refresh=changed", "--format", "json", "c.yaml"]);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["not_read"], 2);
    assert_eq!(plan["refreshed"], true);
    // A full refresh has no such field, and sees sf-same's drift.
    let full = env.run(&["plan", "--format", "json", "c.yaml"]);
    let plan: serde_json::Value = serde_json::from_str(&full.stdout).unwrap();
    assert!(plan.get("not_read").is_none(), "{plan}");
    assert_eq!(plan["summary"]["drifted"], 1);
}

#[test]
fn a_saved_changed_plan_applies_rereading_only_what_it_read() {
    let env = world();
    let out = env.run(&["plan", "--refresh=changed", "--out", "plan.json", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    env.admin("DELETE", "/_emulator/requests", serde_json::Value::Null);
    let out = env.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let seen = requests(&env);
    assert!(
        seen.iter().all(|r| !r.contains("sf-same")),
        "apply of a --refresh=changed plan read an unchanged connection: {seen:?}"
    );
    let state = env.state();
    assert_eq!(state["connections"]["sf-edited"]["applied"]["warehouse"], "WH2");
    assert!(state["connections"]["sf-added"]["applied"].is_object());
}

#[test]
fn a_saved_changed_plan_is_stale_when_a_connection_it_read_moved_in_immuta() {
    let env = world();
    let out = env.run(&["plan", "--refresh=changed", "--out", "plan.json", "c.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    env.admin(
        "PATCH",
        "/_emulator/connections/sf-edited",
        serde_json::json!({"connection": {"role": "HAND_EDITED"}}),
    );
    let out = env.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("stale plan: Immuta changed since the plan was made (sf-edited)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.state()["connections"]["sf-edited"]["applied"]["warehouse"],
        "WH"
    );
}

/// The integration id behind each connection, as the emulator has it.
fn live_integration_ids(env: &TestEnv) -> std::collections::BTreeMap<String, String> {
    env.admin("GET", "/_emulator/state", serde_json::Value::Null)["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = c["connectionKey"].as_str().unwrap().to_owned();
            (key, c["integrationId"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The integration id the state records per connection (`None` when it has none).
fn recorded_integration_ids(env: &TestEnv) -> Vec<(String, Option<String>)> {
    let state = env.state();
    state["connections"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| (k.clone(), c["integrationId"].as_str().map(str::to_owned)))
        .collect()
}

#[test]
fn an_apply_records_the_integration_ids_its_refresh_read_and_a_plan_does_not() {
    let env = TestEnv::new();
    env.write("c.yaml", &yaml(&[("sf-a", "WH"), ("sf-b", "WH"), ("sf-c", "WH")]));
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // A registration's answer names no integration: a fresh create records none.
    let none: Vec<(String, Option<String>)> = ["sf-a", "sf-b", "sf-c"]
        .iter()
        .map(|k| (k.to_string(), None))
        .collect();
    assert_eq!(recorded_integration_ids(&env), none);

    // A plan reads them, and writes nothing.
    let before = std::fs::read(env.path(".connctl/state.json")).unwrap();
    let out = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(std::fs::read(env.path(".connctl/state.json")).unwrap(), before);

    // An apply with nothing to change records them, in one write.
    let serial = env.state()["serial"].as_u64().unwrap();
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let live = live_integration_ids(&env);
    let want: Vec<(String, Option<String>)> =
        live.iter().map(|(k, id)| (k.clone(), Some(id.clone()))).collect();
    assert_eq!(recorded_integration_ids(&env), want);
    assert_eq!(env.state()["serial"].as_u64().unwrap(), serial + 1);

    // Known ids: the next apply has nothing to record and writes nothing.
    let before = std::fs::read(env.path(".connctl/state.json")).unwrap();
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(std::fs::read(env.path(".connctl/state.json")).unwrap(), before);

    // A --refresh=changed apply of one edit reads, and so records, nothing for the others
    // (sf-b's id, dropped here, stays unknown), and keeps the edited connection's id through
    // its update.
    let mut state = env.state();
    state["connections"]["sf-b"]
        .as_object_mut()
        .unwrap()
        .remove("integrationId");
    let text = serde_json::to_string_pretty(&state).unwrap();
    std::fs::write(env.path(".connctl/state.json"), text).unwrap();
    env.write(
        "c.yaml",
        &yaml(&[("sf-a", "WH2"), ("sf-b", "WH"), ("sf-c", "WH")]),
    );
    let out = env.run(&["apply", "--auto-approve", "--refresh=changed", "c.yaml"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let expected: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(k, id)| (k.clone(), id.clone().filter(|_| k != "sf-b")))
        .collect();
    assert_eq!(recorded_integration_ids(&env), expected);
}

#[test]
fn refresh_rejects_an_unknown_value_naming_the_choices() {
    let env = TestEnv::new();
    env.write("c.yaml", &yaml(&[("sf-a", "WH")]));
    let out = env.run(&["plan", "--refresh=some", "c.yaml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("[possible values: true, false, changed]"),
        "{}",
        out.stderr
    );
}
