//! The state file and its lock under abuse: the lock folder deleted mid-run, a symlinked or
//! colliding state path, a FIFO, a file-size limit, leftovers of killed writes, and the
//! `state` subcommands.

use std::process::{Output as ProcessOutput, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestEnv;

/// `n` Snowflake connections that each take a few requests to register.
pub fn spec(n: usize) -> String {
    let mut text = String::from("version: 1\nconnections:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - key: sf-{i:03}\n    technology: Snowflake\n    host: acct{i}.snowflakecomputing.com\n    warehouse: WH\n    database: IMMUTA_{i}\n    role: R\n    auth: {{ type: userPassword, username: SYS, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}\n"
        ));
    }
    text
}

/// Waits for `child`, failing the test (not hanging it) after `limit`.
fn wait_at_most(mut child: std::process::Child, limit: Duration) -> ProcessOutput {
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("connctl did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(out: &ProcessOutput) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn deleting_the_state_folder_mid_run_stops_the_run() {
    let env = TestEnv::with_emulator(connctl_emulator::EmulatorConfig {
        latency_ms: 60,
        job_step_ms: 20,
        ..Default::default()
    });
    env.write("c.yaml", &spec(6));
    let child = env
        .command(&["apply", "--auto-approve", "--parallelism", "1", "c.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let state = env.path(".connctl/state.json");
    let started = Instant::now();
    while !state.exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no state written");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_dir_all(env.path(".connctl")).expect("delete .connctl");
    let out = wait_at_most(child, Duration::from_secs(60));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("was removed or replaced while this run held it"),
        "{all}"
    );
    // It stopped: not every connection was registered behind the second run's back.
    assert!(
        env.count_requests("POST", "/data/connection") < 6,
        "the run went on after losing its lock:\n{all}"
    );
    // And it did not recreate the folder it no longer owns.
    assert!(!state.exists(), "{all}");
}

#[cfg(unix)]
#[test]
fn a_symlinked_state_is_written_through_the_link() {
    let env = TestEnv::new();
    env.write("c.yaml", &spec(1));
    std::fs::create_dir_all(env.path("shared")).unwrap();
    std::os::unix::fs::symlink("shared/state.json", env.path("link.json")).unwrap();
    let out = env.run(&["apply", "--auto-approve", "--state", "link.json", "c.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let link = std::fs::symlink_metadata(env.path("link.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced by a file");
    let target: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("shared/state.json")).unwrap()).unwrap();
    assert_eq!(target["connections"]["sf-000"]["step"], "registered");
    // The lock sits beside the file the link names.
    assert!(env.path("shared/state.lock").exists());
    let again = env.run(&["plan", "--detailed-exitcode", "--state", "link.json", "c.yaml"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn a_state_path_that_is_its_own_lock_is_refused() {
    let env = TestEnv::new();
    env.write("c.yaml", &spec(1));
    insta::assert_snapshot!(env.snap(&["apply", "--auto-approve", "--state", "x.lock", "c.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: state path x.lock ends in `.lock`, the name of its own lock file
      = help: name the state file something else, e.g. state.json
    ");
    assert!(!env.path("x.lock").exists());
    assert_eq!(env.count_requests("POST", "/data/connection"), 0);
}

#[cfg(unix)]
#[test]
fn a_fifo_as_state_is_refused_not_waited_on() {
    let env = TestEnv::new();
    env.write("c.yaml", &spec(1));
    let status = std::process::Command::new("mkfifo")
        .arg(env.path("pipe"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    for args in [
        &["state", "list", "--state", "pipe"][..],
        &["plan", "--state", "pipe", "c.yaml"][..],
        &["apply", "--auto-approve", "--state", "pipe", "c.yaml"][..],
    ] {
        let child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = wait_at_most(child, Duration::from_secs(20));
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        assert!(all.contains("is not a regular file"), "{args:?}: {all}");
    }
    assert_eq!(env.count_requests("POST", "/data/connection"), 0);
}

#[cfg(unix)]
#[test]
fn a_file_size_limit_is_reported_not_fatal() {
    let env = TestEnv::new();
    env.write("c.yaml", &spec(3));
    // bash counts `ulimit -f` in 1024-byte blocks: too small for a state with a connection.
    let connctl = env.command(&[]);
    let mut cmd = std::process::Command::new("bash");
    cmd.env_clear().current_dir(env.dir.path());
    for (k, v) in connctl.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.arg("-c")
        .arg("ulimit -f 1; exec \"$0\" \"$@\"")
        .arg(connctl.get_program())
        .args(["apply", "--auto-approve", "c.yaml"]);
    let out = cmd.output().expect("run under ulimit");
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "killed or wrong code: {:?}\n{all}",
        out.status
    );
    assert!(all.contains("cannot write state file"), "{all}");
    assert!(all.contains("File too large"), "{all}");
    let leftovers: Vec<_> = std::fs::read_dir(env.path(".connctl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_local_state_has_no_lock_to_unlock() {
    let env = TestEnv::new();
    insta::assert_snapshot!(env.snap(&["state", "unlock", "some-id"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: the local state .connctl/state.json is locked by the operating system, which releases the lock when the holding process exits; there is nothing to unlock
    ");
}

#[test]
fn temporaries_of_killed_writes_are_cleared_by_the_next_writer() {
    let env = TestEnv::new();
    env.write("c.yaml", &spec(1));
    // pid 4194305 is above Linux's pid_max limit: never a live process.
    let stale = env.write(".connctl/.state.json.4194305.tmp", "{\"partial");
    let out = env.run(&["apply", "--auto-approve", "c.yaml"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!stale.exists());
}
