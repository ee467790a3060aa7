//! Scripts: the [`ScriptRunner`] the CLI implements with its executors, what a run comes to,
//! and saving a script to disk for a person (or a later run) to find.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use connctl_spec::Connection;

pub use connctl_spec::Purpose;

/// What running a script came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// It ran to the end.
    Executed,
    /// It was saved for a person to run.
    AwaitingManual { path: PathBuf },
}

/// Runs scripts in the warehouse. The CLI implements it with the configured executors, so the
/// engine knows nothing of Snowflake or Databricks APIs.
pub trait ScriptRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        conn: &'a Connection,
        purpose: Purpose,
        sql: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<RunOutcome, RunError>> + Send + 'a>>;
}

/// Why a script did not run. Its text is shown and journaled, so the runner hands it over with
/// every secret already removed (a failing command may echo its input, which holds passwords).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// No executor fits the connection as configured.
    #[error("{0}")]
    NoExecutor(String),
    /// A stop was requested and the run was abandoned.
    #[error("stopped by a signal; the command and its processes were terminated")]
    Stopped,
    /// The executor ran the script and it failed.
    #[error("{0}")]
    Failed(String),
}

/// Saves a script readable only by its owner (it can hold passwords), in a folder only its
/// owner can enter, atomically: a reader never sees half a script.
pub(super) fn save_script(dir: &Path, key: &str, purpose: Purpose, sql: &str) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let path = dir.join(format!("{key}.{}.sql", purpose.as_str()));
    crate::state::write_atomic(&path, sql.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_scripts_are_saved_private_in_a_private_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scripts = dir.path().join(".connctl/scripts");
        let path = save_script(&scripts, "k", Purpose::Delete, "DROP ROLE R;").expect("saved");
        assert_eq!(path, scripts.join("k.delete.sql"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "DROP ROLE R;");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&scripts), 0o700);
        }
    }
}
