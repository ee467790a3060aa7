//! The manual executor: saves the script for a person to run.
//!
//! The script goes to `<dir>/<key>.sql` (create), `<key>.edit.sql` or `<key>.delete.sql`. Scripts
//! can hold passwords, so the file is created with mode 0600 from the start: it is written to a
//! fresh temporary file opened with that mode in the same folder and renamed over the target, so
//! it is never readable by others, not even for a moment, and a reader never sees half a script.
//! The folder itself is created with mode 0700 when missing.

use std::fs::{self, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{ExecError, Purpose, ScriptRun};

/// The file name of a saved script.
pub(crate) fn file_name(key: &str, purpose: Purpose) -> String {
    match purpose {
        Purpose::Create => format!("{key}.sql"),
        other => format!("{key}.{}.sql", other.as_str()),
    }
}

fn check_key(key: &str) -> Result<(), ExecError> {
    let ok = !key.is_empty()
        && key != "."
        && key != ".."
        && !key.starts_with('.')
        && !key
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(ExecError::config(format!(
            "connection key {key:?} cannot be used as a file name; use letters, digits, `-` and `_`"
        )))
    }
}

/// Saves the script and returns its path.
pub(crate) fn save(dir: &Path, run: &ScriptRun<'_>) -> Result<PathBuf, ExecError> {
    check_key(run.connection_key)?;
    let io = |path: &Path, e: std::io::Error| ExecError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).map_err(|e| io(dir, e))?;

    let path = dir.join(file_name(run.connection_key, run.purpose));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name(run.connection_key, run.purpose),
        uuid::Uuid::new_v4()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(run.sql.as_bytes())?;
        if !run.sql.ends_with('\n') {
            file.write_all(b"\n")?;
        }
        file.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(&path, e));
    }
    tracing::info!(path = %path.display(), "saved the setup script for manual execution");
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;

    fn run<'a>(key: &'a str, purpose: Purpose, sql: &'a str) -> ScriptRun<'a> {
        ScriptRun {
            connection_key: key,
            purpose,
            sql,
            target: Target::Snowflake { host: "a.b".into() },
        }
    }

    #[test]
    fn names() {
        assert_eq!(file_name("k", Purpose::Create), "k.sql");
        assert_eq!(file_name("k", Purpose::Edit), "k.edit.sql");
        assert_eq!(file_name("k", Purpose::Delete), "k.delete.sql");
    }

    #[cfg(unix)]
    #[test]
    fn writes_0600_and_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let scripts = dir.path().join("nested/scripts");
        let p = save(&scripts, &run("sf-prod", Purpose::Create, "SELECT 1;")).expect("saves");
        assert_eq!(p, scripts.join("sf-prod.sql"));
        assert_eq!(fs::read_to_string(&p).expect("reads"), "SELECT 1;\n");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&scripts).expect("meta").permissions().mode() & 0o777,
            0o700
        );

        // An existing, too-open file is replaced by a 0600 one.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
        save(&scripts, &run("sf-prod", Purpose::Create, "SELECT 2;\n")).expect("saves");
        assert_eq!(fs::read_to_string(&p).expect("reads"), "SELECT 2;\n");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );

        let d = save(&scripts, &run("sf-prod", Purpose::Delete, "DROP ROLE R;")).expect("saves");
        assert_eq!(d, scripts.join("sf-prod.delete.sql"));
        let leftovers: Vec<_> = fs::read_dir(&scripts)
            .expect("lists")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn unsafe_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for key in ["", "..", "../x", "a/b", ".hidden"] {
            assert!(
                matches!(
                    save(dir.path(), &run(key, Purpose::Create, "x")),
                    Err(ExecError::Config { .. })
                ),
                "{key}"
            );
        }
    }
}
