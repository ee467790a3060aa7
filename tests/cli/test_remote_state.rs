//! Remote state against real servers on 127.0.0.1: moto for `s3://`, Azurite for `az://`.
//! The whole create → no-change → drift → change cycle, two runners on one state, a killed
//! runner's lock, a stale writer, another tenant, a lost state, and `state push/pull`.

use std::path::Path;
use std::process::{Output as ProcessOutput, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{self, Server};
use crate::support::TestEnv;
use crate::test_state::spec;

const S3_STATE: &str = "s3://bucket/prod/state.json";

fn text(out: &ProcessOutput) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An environment whose emulator answers after `latency_ms`, with the S3 state configured
/// through `CONNCTL_STATE`.
fn s3_env(latency_ms: u64) -> (TestEnv, Server) {
    let server = servers::moto();
    let mut env = TestEnv::with_emulator(connctl_emulator::EmulatorConfig {
        latency_ms,
        job_step_ms: 20,
        ..Default::default()
    });
    servers::use_s3(&mut env, &server);
    env.set_env("CONNCTL_STATE", S3_STATE);
    (env, server)
}

/// An object's body. moto checks no signature, but refuses a request without one.
fn s3_object(server: &Server, key: &str) -> Option<String> {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/bucket/{key}", server.endpoint()))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send()
        .expect("GET");
    resp.status().is_success().then(|| resp.text().expect("body"))
}

/// `state pull`, parsed (not normalised: ids and URLs as they are).
fn pulled(env: &TestEnv) -> serde_json::Value {
    let out = env.command(&["state", "pull"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("state pull prints the state")
}

fn cycle(env: &TestEnv) {
    env.write("c.yaml", &spec(2));
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !env.path(".connctl/state.json").exists(),
        "a local state was written"
    );
    let state = pulled(env);
    assert_eq!(state["connections"]["sf-000"]["step"], "registered");
    assert_eq!(state["connections"]["sf-001"]["step"], "registered");
    assert_eq!(state["tenant"], env.url());

    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);

    let drift = env.run(&["drift", "c.yaml"]);
    assert_eq!(drift.code, 0, "{}{}", drift.stdout, drift.stderr);

    // A change in the YAML is planned and applied through the same remote state.
    env.write("c.yaml", &spec(2).replace("warehouse: WH", "warehouse: WH2"));
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
}

#[test]
fn s3_state_full_cycle() {
    let (env, server) = s3_env(0);
    cycle(&env);
    // The lock was released (a tombstone, never deleted).
    let lock = s3_object(&server, "prod/state.json.lock").expect("lock object");
    assert!(lock.contains("\"Released\""), "{lock}");
}

#[test]
fn azurite_state_full_cycle_from_settings() {
    let server = servers::azurite();
    let mut env = TestEnv::new();
    servers::use_azurite(&mut env, &server);
    env.write_settings("\n[state]\nurl = \"az://cont/prod/state.json\"\n");
    cycle(&env);
}

/// Waits until `key` exists in the bucket.
fn wait_for(server: &Server, key: &str, child: &mut std::process::Child) {
    let started = Instant::now();
    while s3_object(server, key).is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the first apply ended ({status}) before {key} appeared");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{key} never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_apply(env: &TestEnv, dir: &Path, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["apply", "--auto-approve", "--parallelism", "1"];
    args.extend_from_slice(extra);
    args.push("c.yaml");
    env.command(&args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn two_runners_one_state_the_second_is_refused_naming_the_holder() {
    let (env, server) = s3_env(100);
    env.write("c.yaml", &spec(3));
    // A second checkout of the same repository.
    let other = env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(env.path("connctl.toml"), other.join("connctl.toml")).unwrap();
    std::fs::copy(env.path("c.yaml"), other.join("c.yaml")).unwrap();

    let mut first = spawn_apply(&env, env.dir.path(), &[]);
    wait_for(&server, "prod/state.json.lock", &mut first);
    let refused = env
        .command(&["apply", "--auto-approve", "c.yaml"])
        .current_dir(&other)
        .output()
        .unwrap();
    let msg = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains(&format!("the state {S3_STATE} is locked by another connctl run")),
        "{msg}"
    );
    assert!(
        msg.contains("apply --auto-approve --parallelism 1 c.yaml"),
        "{msg}"
    );
    assert!(msg.contains("connctl state unlock "), "{msg}");
    // A waiting runner gets the lock once the first is done, and finds nothing to do.
    let waiting = env
        .command(&["apply", "--auto-approve", "--lock-timeout", "2m", "c.yaml"])
        .current_dir(&other)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let waited = waiting.wait_with_output().unwrap();
    assert_eq!(waited.status.code(), Some(0), "{}", text(&waited));
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains("No changes."),
        "{}",
        text(&waited)
    );
    assert_eq!(env.count_requests("POST", "/data/connection"), 3);
}

/// The lock ID in an error such as "… `connctl state unlock ID` …".
fn lock_id(msg: &str) -> String {
    let at = msg.find("connctl state unlock ").expect("an unlock hint") + "connctl state unlock ".len();
    msg[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect()
}

#[test]
fn a_killed_runner_lock_is_released_by_unlock_and_the_next_apply_resumes() {
    let (env, server) = s3_env(150);
    env.write("c.yaml", &spec(3));
    let mut first = spawn_apply(&env, env.dir.path(), &[]);
    wait_for(&server, "prod/state.json", &mut first);
    std::thread::sleep(Duration::from_millis(400));
    first.kill().unwrap();
    first.wait().unwrap();

    let refused = env
        .command(&["apply", "--auto-approve", "c.yaml"])
        .output()
        .unwrap();
    let msg = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{msg}");
    let id = lock_id(&msg);
    assert_eq!(id.len(), 36, "{msg}");

    insta::assert_snapshot!(env.snap(&["state", "unlock", "00000000-0000-0000-0000-000000000000"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: the state s3://bucket/prod/state.json is locked, but not with [UUID]: lock [UUID] held by [USER]@[HOST], `[CONNCTL] apply --auto-approve --parallelism 1 c.yaml`, since [TIME], expires [TIME]
      = help: pass the ID shown
    ");
    let unlock = env.command(&["state", "unlock", &id]).output().unwrap();
    assert_eq!(unlock.status.code(), Some(0), "{}", text(&unlock));
    assert!(
        text(&unlock).contains(&format!("Released lock {id}")),
        "{}",
        text(&unlock)
    );

    let resumed = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(
        env.count_requests("POST", "/data/connection"),
        3,
        "a duplicate registration"
    );
    let state = pulled(&env);
    for i in 0..3 {
        assert_eq!(state["connections"][format!("sf-00{i}")]["step"], "registered");
    }
}

#[test]
fn a_writer_whose_state_changed_under_it_stops() {
    let (env, server) = s3_env(250);
    env.write("c.yaml", &spec(4));
    let mut first = spawn_apply(&env, env.dir.path(), &[]);
    wait_for(&server, "prod/state.json", &mut first);
    let started = Instant::now();
    // Read as a reader does (the state object plus its journal records): the object alone gets
    // sf-000 only at the next full write, which may be the run's last.
    while pulled(&env)["connections"].get("sf-000").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sf-000 never reached the state"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Someone frees the lock by force and edits the state while the first run goes on.
    let lock = s3_object(&server, "prod/state.json.lock").unwrap();
    let lock: serde_json::Value = serde_json::from_str(&lock).unwrap();
    let id = lock["ID"].as_str().unwrap();
    assert_eq!(env.run(&["state", "unlock", id]).code, 0);
    // The edit itself may meet a write of the first run between its read and its write; it is
    // then refused the same way, and tried again.
    let mut tries = 0;
    loop {
        tries += 1;
        let edit = env.run(&["state", "unprotect", "sf-000"]);
        // Racing the first run: refused or not, depending on timing.
        if edit.code == 0 {
            break;
        }
        assert!(
            edit.stderr.contains("changed since this run read it"),
            "{}",
            edit.stderr
        );
        assert!(tries < 5, "{}", edit.stderr);
    }

    let first = first.wait_with_output().unwrap();
    let msg = text(&first);
    assert_eq!(first.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains(&format!("the state at {S3_STATE} changed since this run read it")),
        "{msg}"
    );
    assert!(
        env.count_requests("POST", "/data/connection") < 4,
        "the stale writer went on:\n{msg}"
    );
}

#[test]
fn a_state_of_another_tenant_is_refused() {
    let (env, _server) = s3_env(0);
    env.write("c.yaml", &spec(1));
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    for args in [
        &["plan", "c.yaml"][..],
        &["apply", "--auto-approve", "c.yaml"][..],
        &["drift", "c.yaml"][..],
        &["status"][..],
    ] {
        let mut args = args.to_vec();
        args.extend(["--immuta-url", "https://dev.immuta.example/"]);
        // The same refusal from every command, before anything is read or sent.
        insta::allow_duplicates! {
            insta::assert_snapshot!(env.snap(&args), @"
            exit: 1
            --- stdout
            --- stderr
            error: the state s3://bucket/prod/state.json belongs to the Immuta tenant [URL], but this run uses https://dev.immuta.example
              = help: point --state (or CONNCTL_STATE, [state] in connctl.toml) at the state of https://dev.immuta.example, or --immuta-url (IMMUTA_URL) at [URL]
            ");
        }
    }
}

#[test]
fn a_lost_state_stops_plan_apply_and_drift() {
    let (mut env, _server) = s3_env(0);
    env.write("c.yaml", &spec(2));
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    // The pipeline now points at an empty place (a typo, a new bucket, a lost object).
    env.set_env("CONNCTL_STATE", "s3://bucket/typo/state.json");
    for args in [
        &["plan", "--detailed-exitcode", "c.yaml"][..],
        &["apply", "--auto-approve", "c.yaml"][..],
        &["drift", "c.yaml"][..],
    ] {
        // The same refusal from every command.
        insta::allow_duplicates! {
            insta::assert_snapshot!(env.snap(args), @"
            exit: 1
            --- stdout
            --- stderr
            error: the state s3://bucket/typo/state.json is missing, but Immuta already has 2 connection(s) of the YAML (sf-000, sf-001): the state is probably lost or points at the wrong place
              = help: check --state / CONNCTL_STATE / [state] in connctl.toml (restore a lost state with `connctl state push BACKUP`)
              = help: to adopt the connections that exist in Immuta: `connctl import PATHS --all` (or `--key 'GLOB'`)
              = help: to go on with an empty state on purpose, pass --allow-empty-state
            ");
        }
    }
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    let drift = env.run(&["drift"]);
    assert_eq!(drift.code, 1, "{}", drift.stdout);
    // On purpose: the plan shows the imports and exits as it would.
    let plan = env.run(&["plan", "--allow-empty-state", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    insta::assert_snapshot!(plan.snapshot(), @"
    exit: 0
    --- stdout
    connctl will take these actions (- Immuta now, + desired):

      ? import   sf-000 (Snowflake)
          # exists in Immuta but not in the state; adopt it with `connctl import c.yaml --key sf-000` (apply never creates over it)
      ? import   sf-001 (Snowflake)
          # exists in Immuta but not in the state; adopt it with `connctl import c.yaml --key sf-001` (apply never creates over it)

    Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 drifted. (2 to import)
    Immuta: [URL]
    --- stderr
    ");
    // Adopting them, as the error says, makes the new place a working state.
    let import = env.run(&["import", "c.yaml", "--key", "sf-00*"]);
    assert_eq!(import.code, 0, "{}{}", import.stdout, import.stderr);
    insta::assert_snapshot!(import.snapshot(), @"
    exit: 0
    --- stdout
    Imported 2: sf-000, sf-001
    --- stderr
    ");
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    // A genuine first run (nothing of the YAML in Immuta) goes ahead.
    env.write("new.yaml", &spec(3).replace("sf-00", "new-00"));
    env.set_env("CONNCTL_STATE", "s3://bucket/fresh/state.json");
    let plan = env.run(&["plan", "new.yaml"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    // `import --all` adopts what Immuta has and leaves the rest for apply.
    env.write(
        "both.yaml",
        &format!(
            "{}{}",
            spec(2),
            &spec(1)
                .replace("sf-00", "new-00")
                // One connection per Snowflake host (Immuta allows one integration per host).
                .replace("acct0.", "acct-new0.")["version: 1\nconnections:\n".len()..]
        ),
    );
    let import = env.run(&["import", "both.yaml", "--all"]);
    assert_eq!(import.code, 0, "{}{}", import.stdout, import.stderr);
    insta::assert_snapshot!(import.snapshot(), @"
    exit: 0
    --- stdout
    Imported 2: sf-000, sf-001
    Not in Immuta, left for `connctl apply` to create: new-000
    --- stderr
    ");
}

#[test]
fn a_local_state_moves_to_s3_with_push_and_comes_back_with_pull() {
    let (mut env, _server) = s3_env(0);
    env.write("c.yaml", &spec(2));
    // Applied with the local default state.
    env.set_env("CONNCTL_STATE", ".connctl/state.json");
    assert_eq!(env.run(&["apply", "--auto-approve", "c.yaml"]).code, 0);
    let local = env.state();

    let push = env.run(&["state", "push", ".connctl/state.json", "--state", S3_STATE]);
    assert_eq!(push.code, 0, "{}{}", push.stdout, push.stderr);
    env.set_env("CONNCTL_STATE", S3_STATE);
    let remote = pulled(&env);
    assert_eq!(remote["lineage"], local["lineage"]);
    assert_eq!(remote["connections"], local["connections"]);
    assert_eq!(remote["serial"], local["serial"].as_u64().unwrap() + 1);
    let plan = env.run(&["plan", "--detailed-exitcode", "c.yaml"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    // The same file again is older than what is there now: refused.
    let again = env.run(&["state", "push", ".connctl/state.json"]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    // The serials depend on how the apply's parallel writes were grouped: named from the files.
    let serial = local["serial"].as_u64().unwrap();
    assert_eq!(
        again.snapshot(),
        format!(
            "exit: 1\n--- stdout\n--- stderr\nerror: .connctl/state.json has serial {serial}, not newer than the state at s3://bucket/prod/state.json (serial {}): pushing it would lose changes\n  = help: pull the current state (`connctl state pull`) and work from it\n",
            serial + 1
        )
    );
    // A state of another lineage: refused.
    let mut other = local.clone();
    other["lineage"] = "0-other".into();
    other["serial"] = 99.into();
    env.write("other.json", &serde_json::to_string_pretty(&other).unwrap());
    insta::assert_snapshot!(env.snap(&["state", "push", "other.json"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: other.json has lineage 0-other, the state at s3://bucket/prod/state.json has [UUID]: they are different states
      = help: push to an empty location, or pull this one first (`connctl state pull`)
    ");
    // A newer copy of the same lineage goes in.
    let mut newer = remote.clone();
    newer["serial"] = (remote["serial"].as_u64().unwrap() + 5).into();
    env.write("newer.json", &serde_json::to_string_pretty(&newer).unwrap());
    let ok = env.run(&["state", "push", "newer.json"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_eq!(pulled(&env)["serial"], newer["serial"].as_u64().unwrap() + 1);
}

/// The keys under `prefix` in moto's bucket.
fn s3_keys(server: &Server, prefix: &str) -> Vec<String> {
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/bucket?list-type=2&prefix={prefix}", server.endpoint()))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send()
        .expect("LIST");
    let body = resp.text().expect("body");
    body.split("<Key>")
        .skip(1)
        .filter_map(|part| part.split_once("</Key>").map(|(key, _)| key.to_owned()))
        .collect()
}

/// Between full writes each step is a small journal record beside the state object; a run
/// killed in between loses none of them, and the end of a run folds them into the object.
#[test]
fn a_killed_run_s_journal_records_are_read_back_and_folded_by_the_next_run() {
    let (env, server) = s3_env(150);
    env.write("c.yaml", &spec(3));
    let mut first = spawn_apply(&env, env.dir.path(), &[]);
    let started = Instant::now();
    while s3_keys(&server, "prod/state.json.journal/").len() < 4 {
        if let Ok(Some(status)) = first.try_wait() {
            panic!("the apply ended ({status}) before writing journal records");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no journal records");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let object: serde_json::Value =
        serde_json::from_str(&s3_object(&server, "prod/state.json").expect("the state object")).unwrap();
    let read = pulled(&env);
    assert!(
        read["serial"].as_u64() > object["serial"].as_u64(),
        "the records after the state object were not read: {} vs {}",
        read["serial"],
        object["serial"]
    );
    assert_ne!(read["connections"], object["connections"]);

    let refused = env
        .command(&["apply", "--auto-approve", "c.yaml"])
        .output()
        .unwrap();
    let id = lock_id(&text(&refused));
    assert_eq!(env.run(&["state", "unlock", &id]).code, 0);
    let resumed = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(env.count_requests("POST", "/data/connection"), 3);
    // The state object alone is now the whole state.
    let object: serde_json::Value =
        serde_json::from_str(&s3_object(&server, "prod/state.json").unwrap()).unwrap();
    assert_eq!(object, pulled(&env));
    for i in 0..3 {
        assert_eq!(object["connections"][format!("sf-00{i}")]["step"], "registered");
    }
}
