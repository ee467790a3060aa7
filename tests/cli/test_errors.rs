//! Bad settings and state: one clear message, exit 1, nothing written.

use crate::support::TestEnv;

const SPEC: &str = "version: 1
connections:
  - key: dbx-b
    technology: Databricks
    workspaceUrl: dbc-b.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/b
    catalog: immuta_b
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";

#[test]
fn wrong_api_key_is_one_clear_error() {
    let mut env = TestEnv::new();
    env.write("c.yaml", SPEC);
    env.set_env("TEST_IMMUTA_KEY", "wrong");
    let out = env.run(&["plan", "c.yaml"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot());
    assert!(!env.path(".connctl").exists());
}

#[test]
fn unreachable_immuta() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    let out = env.run(&["plan", "--immuta-url", "http://127.0.0.1:9", "c.yaml"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: cannot reach Immuta at http://127.0.0.1:9"),
        "{}",
        out.stderr
    );
    assert!(!env.path(".connctl").exists());
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    insta::assert_snapshot!(env.snap(&["plan", "--immuta-url", "http://immuta.example.com", "c.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: refusing to send the API key over plain http to http://immuta.example.com
      = help: use https:// (http:// is allowed only for loopback addresses such as 127.0.0.1)
    ");
}

#[test]
fn corrupt_and_newer_state_are_refused_untouched() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    for (text, expect) in [
        ("{oops", "is corrupt"),
        ("{\"version\": 7, \"serial\": 3}", "has version 7, newer"),
    ] {
        env.write(".connctl/state.json", text);
        for args in [
            &["plan", "c.yaml"][..],
            &["apply", "--auto-approve", "c.yaml"][..],
        ] {
            let out = env.run(args);
            assert_eq!(out.code, 1, "{args:?}");
            // One expectation per case and command, in a loop: the message's core only.
            assert!(out.stderr.contains(expect), "{args:?}: {}", out.stderr);
            assert_eq!(
                std::fs::read_to_string(env.path(".connctl/state.json")).unwrap(),
                text
            );
        }
    }
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
}

#[test]
fn locked_state_names_the_holder() {
    let env = TestEnv::new();
    env.write("c.yaml", SPEC);
    std::fs::create_dir_all(env.path(".connctl")).unwrap();
    let _held = connctl_lock_holder(&env.path(".connctl/state.json"));
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "c.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: the state is locked by another connctl run: pid 4242 on ci, `test-holder`, started then
      = help: wait for it to finish; the lock is released automatically when that process exits (.connctl/state.lock)
    ");
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
}

/// Holds the lock as another process would: an OS lock on state.lock with owner info.
fn connctl_lock_holder(state: &std::path::Path) -> std::fs::File {
    use std::io::Write;
    let path = state.with_extension("lock");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(path)
        .unwrap();
    f.try_lock().unwrap();
    writeln!(
        f,
        "{{\"pid\": 4242, \"host\": \"ci\", \"command\": \"test-holder\", \"startedAt\": \"then\"}}"
    )
    .unwrap();
    f
}
