//! Reliability, concurrency: two applies at once on the same folder. One proceeds; the other
//! fails at once, naming the holder. Nothing registers twice; the state parses. See
//! docs/reliability.md.

use std::process::Child;
use std::time::{Duration, Instant};

use connctl_emulator::EmulatorConfig;

use crate::support::{TestEnv, assert_no_panic, many_connections, registrations, size};

#[test]
fn two_applies_at_once_one_waits_for_nobody() {
    let rounds = size(5, 100);
    let (mut overlapped, mut sequential) = (0, 0);
    let mut misnamed = Vec::new();
    for round in 0..rounds {
        let env = TestEnv::with_emulator(EmulatorConfig {
            latency_ms: 200,
            job_step_ms: 20,
            seed: round as u64,
            ..EmulatorConfig::default()
        });
        env.write("conns.yaml", &many_connections(2, "c"));
        let args = ["apply", "--auto-approve", "conns.yaml"];
        let start = Instant::now();
        let a = env.spawn(&args);
        let b = env.spawn(&args);
        let (a, b) = (
            std::thread::spawn(move || watch(a, start)),
            std::thread::spawn(move || watch(b, start)),
        );
        let (a, b) = (a.join().expect("a"), b.join().expect("b"));
        let pids = [a.pid, b.pid];
        let what = |r: &Finished| {
            format!(
                "round {round}, pid {} exit {} after {:?}\n--- stdout\n{}--- stderr\n{}",
                r.pid, r.code, r.after, r.stdout, r.stderr
            )
        };
        assert_no_panic(&what(&a), &a.stderr);
        assert_no_panic(&what(&b), &b.stderr);
        match (a.code, b.code) {
            (0, 0) => {
                // The first finished before the second took the lock: the second saw no change.
                sequential += 1;
                let later = if a.after > b.after { &a } else { &b };
                assert!(later.stdout.starts_with("No changes."), "{}", what(later));
            }
            // Which run wins, and the loser's pid, change every round: checked by their parts.
            (0, 1) | (1, 0) => {
                overlapped += 1;
                let (winner, loser) = if a.code == 0 { (&a, &b) } else { (&b, &a) };
                assert!(
                    loser.stderr.contains("locked by another connctl run:"),
                    "{}",
                    what(loser)
                );
                // Collected, so that one run counts every round that misnames the holder.
                let holder = loser
                    .stderr
                    .split("locked by another connctl run: pid ")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next())
                    .and_then(|s| s.parse::<u32>().ok());
                if holder != Some(winner.pid) {
                    misnamed.push(format!(
                        "round {round}: holder pid {} (pids {pids:?}), loser said: {}",
                        winner.pid,
                        loser.stderr.lines().next().unwrap_or_default()
                    ));
                }
                assert!(
                    loser.after < winner.after,
                    "the loser waited for the lock:\n{}\n{}",
                    what(loser),
                    what(winner)
                );
                assert!(
                    loser.stdout.is_empty(),
                    "the loser printed a plan:\n{}",
                    what(loser)
                );
                assert!(winner.stdout.contains("Apply: 2 applied"), "{}", what(winner));
            }
            _ => panic!("unexpected exits:\n{}\n{}", what(&a), what(&b)),
        }
        let (ok, conflicts) = registrations(&env);
        assert_eq!((ok, conflicts), (2, 0), "round {round}: duplicate registrations");
        let state = env.state();
        assert_eq!(state["connections"].as_object().map(|c| c.len()), Some(2));
    }
    eprintln!(
        "concurrency: {rounds} rounds, {overlapped} overlapped (one refused at once), {sequential} sequential; \
         holder misnamed in {} round(s); duplicates: 0",
        misnamed.len()
    );
    assert!(
        misnamed.is_empty(),
        "the refused run did not name the holder in {} of {overlapped} overlapping rounds:\n{}",
        misnamed.len(),
        misnamed.join("\n")
    );
    assert!(
        overlapped * 2 >= rounds,
        "too few rounds overlapped ({overlapped} of {rounds}); the test proves little"
    );
}

struct Finished {
    pid: u32,
    code: i32,
    after: Duration,
    stdout: String,
    stderr: String,
}

/// Waits for `child` on a thread, recording when it finished.
fn watch(child: Child, start: Instant) -> Finished {
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    Finished {
        pid,
        code: out.status.code().unwrap_or(-1),
        after: start.elapsed(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
