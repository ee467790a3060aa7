//! The command executor: pipes the script to a configured program.
//!
//! The program is started directly from its argv (no shell), with the script on standard input
//! and `CONNCTL_CONNECTION_KEY` / `CONNCTL_SCRIPT_PURPOSE` in its environment. connctl's own
//! secrets stay out of it: the program sees only an allow-list of connctl's variables
//! ([`crate::child_env`]). Standard output is read and discarded (it may echo the
//! script); the last 20 lines of standard error are kept for the error message. Exit status 0
//! means success. A program still running at the timeout is killed.
//!
//! The program runs in a process group of its own, and the whole group is killed when the run
//! ends early (timeout, or connctl dropping the run on SIGINT/SIGTERM): a script runner's own
//! children (a shell's pipeline, a client it started) must not outlive it and run beside the
//! copy the next apply starts.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::{ExecError, ScriptRun};

/// How many trailing lines of standard error an error keeps.
const TAIL_LINES: usize = 20;
/// How many trailing bytes of standard error are kept while reading.
const TAIL_BYTES: usize = 64 * 1024;

/// Runs the command with the script on standard input.
pub(crate) async fn run(
    argv: &[String],
    env: &[String],
    run: &ScriptRun<'_>,
    timeout: Duration,
) -> Result<(), ExecError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ExecError::config(
            "executor `command` needs a non-empty `command`",
        ));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    // An allow-list, not connctl's environment: the API key and other connections' secrets
    // live there under names nobody can predict.
    cmd.env_clear()
        .envs(crate::child_env::allowed(std::env::vars_os(), env))
        .env("CONNCTL_CONNECTION_KEY", run.connection_key)
        .env("CONNCTL_SCRIPT_PURPOSE", run.purpose.as_str());

    let mut child = cmd.spawn().map_err(|e| ExecError::Spawn {
        program: program.clone(),
        reason: e.to_string(),
    })?;
    // Armed until the program has exited by itself.
    let mut group = Group(child.id());
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let script = run.sql.as_bytes().to_vec();

    let feed = async move {
        if let Some(mut pipe) = stdin.take() {
            // A program that exits without reading closes the pipe; its exit status tells.
            let _ = pipe.write_all(&script).await;
            let _ = pipe.shutdown().await;
        }
    };
    let drain_out = async move {
        if let Some(out) = stdout {
            let _ = read_tail(out, 0).await;
        }
    };
    let read_err = async move {
        match stderr {
            Some(err) => read_tail(err, TAIL_BYTES).await,
            None => Vec::new(),
        }
    };

    let work = async {
        let ((), (), err_tail, status) = tokio::join!(feed, drain_out, read_err, child.wait());
        (err_tail, status)
    };
    let result = tokio::time::timeout(timeout, work).await;
    if result.is_ok() {
        group.0 = None;
    }
    match result {
        Ok((err_tail, Ok(status))) if status.success() => {
            tracing::debug!(program, "executor command succeeded");
            drop(err_tail);
            Ok(())
        }
        Ok((err_tail, Ok(status))) => Err(ExecError::Command {
            program: program.clone(),
            status: describe_status(&status),
            code: status.code(),
            stderr_tail: last_lines(&err_tail),
        }),
        Ok((_, Err(e))) => Err(ExecError::Spawn {
            program: program.clone(),
            reason: e.to_string(),
        }),
        Err(_) => {
            group.kill();
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(ExecError::Command {
                program: program.clone(),
                status: format!("timed out after {} s and was killed", timeout.as_secs()),
                code: None,
                stderr_tail: String::new(),
            })
        }
    }
}

/// The process group of a running program (its leader's pid); killed on drop while armed.
struct Group(Option<u32>);

impl Group {
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .take()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            // The group may be gone already; nothing to do then.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a pipe to its end, keeping at most the last `keep` bytes.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if keep > 0 {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > keep {
                        tail.drain(..tail.len() - keep);
                    }
                }
            }
        }
    }
    tail
}

/// The last lines of standard error, with every secret of the run removed (the program may echo
/// the script). When the tail was cut, its first line is partial and is dropped: a secret cut in
/// half would not be recognised.
fn last_lines(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = connctl_spec::redact(&text);
    let mut lines: Vec<&str> = text.trim_end().lines().collect();
    if bytes.len() >= TAIL_BYTES && !lines.is_empty() {
        lines.remove(0);
    }
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

fn describe_status(status: &std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("killed by signal {sig}");
        }
    }
    "no exit code".to_owned()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::{Purpose, Target};

    fn script_run(sql: &str) -> ScriptRun<'_> {
        ScriptRun {
            connection_key: "dbx-prod",
            purpose: Purpose::Edit,
            sql,
            target: Target::Databricks {
                workspace_url: "w".into(),
                http_path: "/sql/1.0/warehouses/x".into(),
            },
        }
    }

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn cat_receives_the_script_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.sql");
        let env_out = dir.path().join("env.txt");
        let sh = format!(
            "cat > '{}' && printf '%s %s %s' \"$CONNCTL_CONNECTION_KEY\" \"$CONNCTL_SCRIPT_PURPOSE\" \"${{IMMUTA_API_KEY:-unset}}\" > '{}'",
            out.display(),
            env_out.display()
        );
        let sql = "GRANT USE CATALOG ON CATALOG `c` TO `p`;\nSELECT 'x;y';\n".repeat(2000);
        run(
            &argv(&["sh", "-c", &sh]),
            &[],
            &script_run(&sql),
            Duration::from_secs(30),
        )
        .await
        .expect("runs");
        assert_eq!(std::fs::read_to_string(&out).expect("reads"), sql);
        assert_eq!(
            std::fs::read_to_string(&env_out).expect("reads"),
            "dbx-prod edit unset"
        );
    }

    #[tokio::test]
    async fn plain_cat_to_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("s.sql");
        let sh = format!("cat > '{}'", out.display());
        run(
            &argv(&["sh", "-c", &sh]),
            &[],
            &script_run("SELECT 1;"),
            Duration::from_secs(30),
        )
        .await
        .expect("runs");
        assert_eq!(std::fs::read_to_string(&out).expect("reads"), "SELECT 1;");
    }

    #[tokio::test]
    async fn false_fails_with_exit_code() {
        let err = run(
            &argv(&["false"]),
            &[],
            &script_run("SELECT 1;"),
            Duration::from_secs(30),
        )
        .await
        .expect_err("fails");
        match err {
            ExecError::Command { code, ref status, .. } => {
                assert_eq!(code, Some(1));
                assert_eq!(status, "exit code 1");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn stderr_tail_is_reported() {
        let sh = "cat >/dev/null; for i in $(seq 1 50); do echo \"line $i\" >&2; done; exit 3";
        let err = run(
            &argv(&["sh", "-c", sh]),
            &[],
            &script_run("SELECT 1;"),
            Duration::from_secs(30),
        )
        .await
        .expect_err("fails");
        let ExecError::Command {
            code, stderr_tail, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*code, Some(3));
        let lines: Vec<&str> = stderr_tail.lines().collect();
        assert_eq!(lines.len(), 20);
        assert_eq!(lines[0], "line 31");
        assert_eq!(lines[19], "line 50");
        assert!(err.to_string().contains("exit code 3"));
    }

    #[tokio::test]
    async fn missing_binary_is_a_spawn_error() {
        let err = run(
            &argv(&["/nonexistent/connctl-runner"]),
            &[],
            &script_run("SELECT 1;"),
            Duration::from_secs(5),
        )
        .await
        .expect_err("fails");
        assert!(
            matches!(&err, ExecError::Spawn { program, .. } if program == "/nonexistent/connctl-runner"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_command() {
        let started = std::time::Instant::now();
        let err = run(
            &argv(&["sleep", "30"]),
            &[],
            &script_run("SELECT 1;"),
            Duration::from_millis(300),
        )
        .await
        .expect_err("times out");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            matches!(&err, ExecError::Command { status, .. } if status.contains("timed out")),
            "{err:?}"
        );
    }

    /// Whether a process is still running (a zombie counts as gone).
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

    fn gone_soon(pid: &str) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_whole_process_group_dies_on_timeout_and_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (case, timeout) in [
            ("timeout", Duration::from_millis(400)),
            ("drop", Duration::from_secs(60)),
        ] {
            let pid_file = dir.path().join(format!("{case}.pid"));
            // The shell starts a grandchild, as a runner's pipeline or client would.
            let sh = format!(
                "cat >/dev/null; sleep 60 & echo $! > '{}'; wait",
                pid_file.display()
            );
            let argv = argv(&["sh", "-c", &sh]);
            let script = script_run("SELECT 1;");
            let running = run(&argv, &[], &script, timeout);
            // The drop case: connctl abandons the run (as on SIGTERM) after 400 ms.
            let _ = tokio::time::timeout(Duration::from_millis(400), running).await;
            let pid = std::fs::read_to_string(&pid_file).expect("pid written");
            assert!(
                gone_soon(pid.trim()),
                "{case}: the grandchild {pid} outlived the run"
            );
        }
    }

    #[tokio::test]
    async fn no_shell_interpretation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("should-not-exist");
        // With a shell this would create the marker; without one, `echo` just prints the text.
        let arg = format!("; touch {}", marker.display());
        run(
            &argv(&["echo", &arg]),
            &[],
            &script_run("SELECT 1;"),
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert!(!marker.exists());
    }
}
