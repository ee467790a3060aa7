//! The journal under lost answers, kills and signals: a delete's cleanup script is never lost,
//! every update's intent is on disk before it is sent (and the next plan does not call
//! connctl's own change drift), a resumed edit script finishes the other parts of its update,
//! and SIGTERM stops an apply cleanly, taking a `command` executor's processes with it.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TestEnv;
#[cfg(unix)]
use crate::support::mode;

fn snowflake(key: &str, database: &str, warehouse: &str, executor: &str) -> String {
    format!(
        "  - key: {key}\n    technology: Snowflake\n    host: {key}.snowflakecomputing.com\n    warehouse: {warehouse}\n    database: {database}\n    role: R\n    executor: {executor}\n    auth: {{ type: userPassword, username: SYS, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}\n"
    )
}

fn spec(connections: &[String]) -> String {
    format!("version: 1\nconnections:\n{}", connections.concat())
}

fn apply(env: &TestEnv, extra: &[&str]) -> crate::support::Output {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    args.push("c.yaml");
    env.run(&args)
}

/// Waits for `ready`, failing with `what` after 30 s.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn state_text(env: &TestEnv) -> String {
    std::fs::read_to_string(env.path(".connctl/state.json")).unwrap_or_default()
}

fn journal_has(entry: &Value, step: &str, phase: &str) -> bool {
    entry["journal"]
        .as_array()
        .is_some_and(|j| j.iter().any(|l| l["step"] == step && l["phase"] == phase))
}

/// The emulator's delete scripts that ran to their end.
fn executed_cleanups(env: &TestEnv) -> usize {
    let state = env.admin("GET", "/_emulator/state", Value::Null);
    state["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["kind"] == "Delete" && s["statements"].as_u64() > Some(0) && s["executed"] == s["statements"]
        })
        .count()
}

fn live_keys(env: &TestEnv) -> Vec<String> {
    let state = env.admin("GET", "/_emulator/state", Value::Null);
    state["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["connectionKey"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_lost_delete_answer_keeps_the_cleanup_script_until_it_is_handed_over() {
    let env = TestEnv::new();
    let keep = snowflake("sf-keep", "KEEP_DB", "WH", "snowflake");
    env.write(
        "c.yaml",
        &spec(&[
            keep.clone(),
            snowflake("sf-orphan", "ORPHAN_DB", "WH", "snowflake"),
        ]),
    );
    assert_eq!(apply(&env, &[]).code, 0);
    env.write("c.yaml", &spec(&[keep]));

    // Immuta deletes it, but its answer is lost: a 500, and every retry meets a 500 too.
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "DELETE", "path": "/data/object/sf-orphan", "kind": "status", "status": 500, "applied": true, "count": 10}),
    );
    let out = apply(&env, &["--prune"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        !live_keys(&env).contains(&"sf-orphan".to_owned()),
        "the DELETE took effect"
    );
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 1
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      - delete   sf-orphan (Snowflake)  [delete script, deregister, cleanup]
          # no longer in the YAML; --prune deletes it

    Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 drifted.
    Immuta: [URL]

      ✗ sf-orphan: DELETE /data/object/sf-orphan failed with 500: injected fault for DELETE /data/object/sf-orphan
      = help: the cleanup script is saved at .connctl/scripts/sf-orphan.delete.sql; the next apply checks Immuta and finishes the delete

    Apply: 0 applied, 0 awaiting execution, 0 skipped, 1 failed.
    --- stderr
    [progress]
    ");
    // Saved before the DELETE, private, and the intent journaled.
    let saved = env.path(".connctl/scripts/sf-orphan.delete.sql");
    assert!(std::fs::read_to_string(&saved).unwrap().contains("DROP"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&saved), 0o600);
        assert_eq!(mode(&env.path(".connctl/scripts")), 0o700);
    }
    let entry = &env.state()["connections"]["sf-orphan"];
    assert_eq!(entry["pending"]["operation"], "delete", "{entry}");
    assert_eq!(
        entry["pending"]["cleanupScript"],
        ".connctl/scripts/sf-orphan.delete.sql"
    );
    assert!(journal_has(entry, "delete", "intent"), "{entry}");
    assert!(journal_has(entry, "delete", "failed"), "{entry}");

    // plan and status show it.
    let plan = env.run(&["plan", "c.yaml"]);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   sf-orphan (Snowflake)  [delete script, deregister, cleanup]
          # an interrupted `delete` stopped at step `deleting`; apply checks Immuta and finishes it; its cleanup script is saved at .connctl/scripts/sf-orphan.delete.sql

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]
    --- stderr
    ");
    let status = env.run(&["status"]);
    insta::assert_snapshot!(status.snapshot(), @"
    exit: 0
    --- stdout
    KEY                          TECHNOLOGY  STEP                LAST BULK ID                           JOB        IMMUTA
    sf-keep                      Snowflake   registered          [UUID]   completed  ok
    sf-orphan                    Snowflake   deleting            [UUID]   completed  deleting
    sf-orphan: an interrupted delete; its cleanup script is saved at .connctl/scripts/sf-orphan.delete.sql and the next apply finishes it
    Immuta: [URL]
    --- stderr
    ");

    // The next run (even without --prune: the delete was approved) finishes it and says where
    // the script is: the entry left the YAML, so no executor knows where it lives.
    let out = apply(&env, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   sf-orphan (Snowflake)  [delete script, deregister, cleanup]
          # an interrupted `delete` stopped at step `deleting`; apply checks Immuta and finishes it; its cleanup script is saved at .connctl/scripts/sf-orphan.delete.sql

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]

      ✓ sf-orphan: deregistered; run the cleanup script saved at .connctl/scripts/sf-orphan.delete.sql

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    assert!(saved.exists());
    assert!(env.state()["connections"].get("sf-orphan").is_none());
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn a_replace_killed_between_delete_and_cleanup_runs_the_cleanup_next_time() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        &spec(&[snowflake("sf-main", "IMMUTA_DB", "WH", "snowflake")]),
    );
    assert_eq!(apply(&env, &[]).code, 0);
    env.write(
        "c.yaml",
        &spec(&[snowflake("sf-main", "IMMUTA_DB_V2", "WH", "snowflake")]),
    );

    // The cleanup's statement is held, so the kill lands after the DELETE and before the cleanup.
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "POST", "path": "/api/v2/statements", "delay_ms": 20000}),
    );
    let mut child = env
        .command(&["apply", "--auto-approve", "c.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The DELETE answered and journaled: under load the request can reach the emulator well
    // before the run records its answer.
    wait_for("the DELETE, journaled", || {
        env.count_requests("DELETE", "/data/object/sf-main") == 1
            && env.state()["connections"]["sf-main"]["step"] == "deregistered"
    });
    child.kill().unwrap();
    child.wait().unwrap();
    env.admin("DELETE", "/_emulator/faults", Value::Null);
    assert_eq!(executed_cleanups(&env), 0);

    let entry = &env.state()["connections"]["sf-main"];
    assert_eq!(entry["pending"]["operation"], "delete", "{entry}");
    let plan = env.run(&["plan", "c.yaml"]);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   sf-main (Snowflake)  [delete script, deregister, cleanup → script, execute, test, register]
          # an interrupted `delete` stopped at step `deregistered`; apply checks Immuta and finishes it; its cleanup script is saved at .connctl/scripts/sf-main.delete.sql

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]
    --- stderr
    ");

    let out = apply(&env, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   sf-main (Snowflake)  [delete script, deregister, cleanup → script, execute, test, register]
          # an interrupted `delete` stopped at step `deregistered`; apply checks Immuta and finishes it; its cleanup script is saved at .connctl/scripts/sf-main.delete.sql

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]

      ✓ sf-main: deregistered and cleaned up; registered, bulkId [UUID]

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    assert_eq!(executed_cleanups(&env), 1, "the cleanup script ran once");
    assert_eq!(env.count_requests("DELETE", "/data/object/sf-main"), 1);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    // It ran, so the saved copy is gone.
    assert!(!env.path(".connctl/scripts/sf-main.delete.sql").exists());
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn an_update_is_journaled_before_it_is_sent_and_its_landing_is_not_drift() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        &spec(&[snowflake("sf-main", "IMMUTA_DB", "WH", "snowflake")]),
    );
    assert_eq!(apply(&env, &[]).code, 0);
    env.write(
        "c.yaml",
        &spec(&[snowflake("sf-main", "IMMUTA_DB", "WH2", "snowflake")]),
    );

    // Immuta applies the PUT at once but answers late; connctl is killed in between.
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "PUT", "path": "/data/connection/sf-main", "kind": "late", "delay_ms": 20000, "applied": true}),
    );
    let mut child = env
        .command(&["apply", "--auto-approve", "c.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the update's intent in the state", || {
        state_text(&env).contains("\"operation\": \"update\"")
    });
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    env.admin("DELETE", "/_emulator/faults", Value::Null);

    let entry = &env.state()["connections"]["sf-main"];
    assert!(journal_has(entry, "update", "intent"), "{entry}");
    assert_eq!(entry["pending"]["target"]["warehouse"], "WH2", "{entry}");

    // Immuta has WH2 because connctl put it there: a resume, not drift.
    let plan = env.run(&["plan", "--format", "json", "c.yaml"]);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["summary"]["drifted"], 0, "{plan}");
    assert_eq!(plan["changes"][0]["action"], "resume", "{plan}");
    assert_eq!(
        plan["changes"][0]["operations"],
        json!(["record-state"]),
        "{plan}"
    );

    let out = apply(&env, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   sf-main (Snowflake)  [state only]
          # an interrupted `update` stopped at step `registered`; apply checks Immuta and carries on (Immuta already shows the change; apply records it)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]

      ✓ sf-main: the interrupted update was found applied in Immuta; recorded

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    ");
    let entry = &env.state()["connections"]["sf-main"];
    assert!(entry.get("pending").is_none(), "{entry}");
    assert_eq!(entry["applied"]["warehouse"], "WH2");
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[test]
fn a_resumed_edit_script_finishes_every_other_part_of_the_update() {
    let env = TestEnv::new();
    // No executors: the manual one saves every script for a person.
    std::fs::write(
        env.path("connctl.toml"),
        format!(
            "[immuta]\nurl = \"{}\"\napi_key = {{ env = \"TEST_IMMUTA_KEY\" }}\n",
            env.url()
        ),
    )
    .unwrap();
    let dbx = |extra: &str| {
        format!(
            "version: 1\nconnections:\n  - key: dbx-main\n    technology: Databricks\n    workspaceUrl: dbc-1.cloud.databricks.com\n    httpPath: /sql/1.0/warehouses/w1\n    catalog: immuta_main\n    auth: {{ type: token, token: {{ env: CONNCTL_TEST_DBX_TOKEN }} }}\n{extra}"
        )
    };
    env.write("c.yaml", &dbx(""));
    assert_eq!(apply(&env, &[]).code, 0);
    let script = std::fs::read_to_string(env.path(".connctl/scripts/dbx-main.sql")).unwrap();
    crate::test_apply::run_databricks_script(&env, &script);
    assert_eq!(apply(&env, &[]).code, 0);

    // One change with three parts: the connection, the integration (an edit script) and settings
    // (the status, so --allow-cascade).
    env.write(
        "c.yaml",
        &dbx("    workspaceIds: [\"42\"]\n    settings: { isActive: true }\n")
            .replace("warehouses/w1", "warehouses/w1b"),
    );
    let out = apply(&env, &["--allow-cascade"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ~ update   dbx-main (Databricks)  [update connection → edit script, execute, update integration → settings]
          # sets the connection active; Immuta applies that to its 4 child object(s) too; apply needs --allow-cascade
          # warning: Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy
          -   httpPath: "/sql/1.0/warehouses/w1"  (config)
          +   httpPath: "/sql/1.0/warehouses/w1b"  (config)
          -   settings.isActive: false  (config)
          +   settings.isActive: true  (config)
          -   workspaceIds: (none)  (config)
          +   workspaceIds: ["42"]  (config)

    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]

      … dbx-main: run the script saved at .connctl/scripts/dbx-main.edit.sql as a privileged user, then run `connctl apply` again

    Apply: 0 applied, 1 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(env.count_requests("PUT", "/data/connection/dbx-main"), 1);
    assert_eq!(env.count_requests("PUT", "/data/settings/dbx-main"), 0);
    let entry = &env.state()["connections"]["dbx-main"];
    assert_eq!(entry["pending"]["operation"], "update", "{entry}");
    // What was done is recorded; what is left is not.
    assert_eq!(entry["applied"]["httpPath"], "/sql/1.0/warehouses/w1b", "{entry}");
    assert_eq!(entry["applied"]["settings.isActive"], false, "{entry}");

    let plan = env.run(&["plan", "--format", "json", "c.yaml"]);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["changes"][0]["action"], "resume", "{plan}");
    assert_eq!(
        plan["changes"][0]["operations"],
        json!(["rescript", "settings"]),
        "{plan}"
    );
    assert_eq!(plan["summary"]["drifted"], 0, "{plan}");

    // A person runs the edit script; the next apply finishes the integration and the settings.
    let edit = std::fs::read_to_string(env.path(".connctl/scripts/dbx-main.edit.sql")).unwrap();
    crate::test_apply::run_databricks_script(&env, &edit);
    let out = apply(&env, &["--allow-cascade"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.snapshot(), @r#"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      > resume   dbx-main (Databricks)  [edit script, execute, update integration → settings]
          # sets the connection active; Immuta applies that to its 4 child object(s) too; apply needs --allow-cascade
          # warning: Databricks: Immuta REVOKEs access in Databricks for all Immuta users to each enabled object that has no subscription policy
          -   settings.isActive: false  (config)
          +   settings.isActive: true  (config)
              workspaceIds: ["42"]  (config)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (1 to resume)
    Immuta: [URL]

      ✓ dbx-main: integration re-scripted, settings updated

    Apply: 1 applied, 0 awaiting execution, 0 skipped, 0 failed.
    --- stderr
    [progress]
    "#);
    assert_eq!(env.count_requests("PUT", "/data/settings/dbx-main"), 1);
    assert_eq!(
        env.count_requests("PUT", "/data/connection/dbx-main"),
        1,
        "not sent again"
    );
    let entry = &env.state()["connections"]["dbx-main"];
    assert!(entry.get("pending").is_none(), "{entry}");
    assert!(journal_has(entry, "settings", "intent"), "{entry}");
    assert!(journal_has(entry, "settings", "done"), "{entry}");
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
}

#[cfg(target_os = "linux")]
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[cfg(target_os = "linux")]
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("connctl did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_stops_cleanly_and_takes_the_command_executors_processes_with_it() {
    let env = TestEnv::new();
    let marks = env.path("marks");
    std::fs::create_dir_all(&marks).unwrap();
    // A runner that starts a child of its own and hangs, as a stuck client would.
    let hang = format!(
        "cat >/dev/null; sleep 300 & echo $! > {dir}/child; wait",
        dir = marks.display()
    );
    let settings = std::fs::read_to_string(env.path("connctl.toml")).unwrap();
    env.write(
        "connctl.toml",
        &format!(
            "{}[executor.command]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", {}]\n",
            settings.split("[executor.command]").next().unwrap(),
            serde_json::to_string(&hang).unwrap()
        ),
    );
    env.write(
        "c.yaml",
        &spec(&[
            snowflake("sf-a", "A_DB", "WH", "command"),
            snowflake("sf-b", "B_DB", "WH", "command"),
        ]),
    );
    let child = env
        .command(&["apply", "--auto-approve", "--parallelism", "1", "c.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    wait_for("the executor's child", || {
        std::fs::read_to_string(marks.join("child")).is_ok_and(|t| t.ends_with('\n'))
    });
    let grandchild = std::fs::read_to_string(marks.join("child"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(alive(&grandchild));
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait_exit(&mut child);
    let out = child.wait_with_output().unwrap();
    let stdout = env.normalize(&String::from_utf8_lossy(&out.stdout));
    let stderr = env.normalize(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(status.code(), Some(143), "{stdout}\n{stderr}");

    // The executor's whole process group is gone.
    let started = Instant::now();
    while alive(&grandchild) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(&grandchild),
        "the executor's child {grandchild} outlived connctl"
    );

    // What was left is listed; the state is written; nothing was registered. Which connection
    // had started when the signal came varies, so the output is checked by its parts.
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        stdout.contains("Stopped by SIGTERM: 2 connection(s) left unfinished: sf-a, sf-b"),
        "{stdout}"
    );
    // With one connection at a time, whichever started first was stopped mid-script and the
    // other never started (which goes first is up to the scheduler).
    let (started, waiting) = if stdout.contains("sf-b: interrupted: not started") {
        ("sf-a", "sf-b")
    } else {
        ("sf-b", "sf-a")
    };
    assert!(
        stdout.contains(&format!("{waiting}: interrupted: not started")),
        "{stdout}"
    );
    let entry = &env.state()["connections"][started];
    assert_eq!(entry["pending"]["operation"], "create", "{entry}");
    assert!(journal_has(entry, "execute", "intent"), "{entry}");
    assert!(journal_has(entry, "execute", "failed"), "{entry}");
    assert_eq!(env.count_requests("POST", "/data/connection"), 0);

    // The lock is free and the next apply (with a runner that works) finishes both, once each.
    env.write_settings("");
    let out = apply(&env, &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    assert_eq!(env.run(&["plan", "--detailed-exitcode", "c.yaml"]).code, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_request_in_flight_outlives_the_first_sigterm_and_a_second_exits_at_once() {
    let env = TestEnv::new();
    env.write("c.yaml", &spec(&[snowflake("sf-a", "A_DB", "WH", "snowflake")]));
    // The setup script's request to the warehouse API is held for 20 s.
    env.admin(
        "POST",
        "/_emulator/faults",
        json!({"method": "POST", "path": "/api/v2/statements", "delay_ms": 20000}),
    );
    let mut child = env
        .command(&["apply", "--auto-approve", "--skip-preflight", "c.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the execute intent", || {
        state_text(&env).contains("\"step\": \"scripted\"")
    });
    std::thread::sleep(Duration::from_millis(300));
    let term = |child: &Child| {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    term(&child);
    // The request in flight is let finish: connctl is still there.
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first SIGTERM ended the run at once"
    );
    let started = Instant::now();
    term(&child);
    let status = wait_exit(&mut child);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second SIGTERM did not exit at once"
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(143), "{stderr}");
    // Cut off mid-run by a signal: only the last words are fixed.
    assert!(stderr.contains("SIGTERM again: exiting now"), "{stderr}");
    assert_eq!(
        env.state()["connections"]["sf-a"]["pending"]["operation"],
        "create"
    );
}
