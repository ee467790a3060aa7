//! The local state file: read (corrupt or newer refused), and written atomically — a temp
//! file in the same folder, fsync, rename, fsync the folder — so a crash leaves either the
//! old or the new file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{STATE_VERSION, State, StateError, next_serial};

impl State {
    /// Reads the state at `path`; a missing file is an empty state. A corrupt or newer file
    /// is an error, never replaced.
    pub fn load(path: &Path) -> Result<State, StateError> {
        // A FIFO or device would block the read forever or never end.
        match fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(StateError::NotAFile { path: path.into() }),
            _ => {}
        }
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new()),
            Err(e) => {
                return Err(StateError::Read {
                    path: path.into(),
                    reason: e.to_string(),
                });
            }
        };
        State::parse(&text, path)
    }

    /// Parses a state read from `path` (a file or a URL): corrupt or newer is an error.
    pub fn parse(text: &str, path: &Path) -> Result<State, StateError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| StateError::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let version = value.get("version");
        match version.map(|v| (v, v.as_u64())) {
            Some((_, Some(v))) if v > u64::from(STATE_VERSION) => {
                return Err(StateError::TooNew {
                    path: path.into(),
                    found: v,
                });
            }
            Some((_, Some(_))) => {}
            Some((v, None)) => {
                return Err(StateError::Corrupt {
                    path: path.into(),
                    reason: bad_version(path, text, v),
                });
            }
            None => {
                return Err(StateError::Corrupt {
                    path: path.into(),
                    reason: "no \"version\" field".into(),
                });
            }
        }
        serde_json::from_value(value).map_err(|e| StateError::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Bumps the serial and writes atomically with mode 0600.
    pub fn save(&mut self, path: &Path) -> Result<(), StateError> {
        let bytes = self.next_revision(path)?;
        write_atomic(path, &bytes).map_err(|e| StateError::Write {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Bumps the serial and serialises: the bytes of the next write to `path`.
    pub fn next_revision(&mut self, path: &Path) -> Result<Vec<u8>, StateError> {
        self.serial = next_serial(self.serial, path)?;
        let mut text = serde_json::to_string_pretty(self).map_err(|e| StateError::Write {
            path: path.into(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        Ok(text.into_bytes())
    }
}

/// Why a `version` that is there is not a version (`-1`, `1.5`, `"1"`), at its
/// `file:line:col`: serde_json's error for the field gives the line, the line gives the column.
fn bad_version(path: &Path, text: &str, found: &serde_json::Value) -> String {
    #[derive(Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        version: u64,
    }
    let at = serde_json::from_str::<Probe>(text).err().map(|e| {
        let column = text
            .lines()
            .nth(e.line().saturating_sub(1))
            .and_then(|line| {
                let key = line.find("\"version\"")?;
                let value = line[key + "\"version\"".len()..]
                    .trim_start()
                    .strip_prefix(':')?
                    .trim_start();
                Some(line[..line.len() - value.len()].chars().count() + 1)
            })
            .unwrap_or(e.column());
        format!(" at {}:{}:{column}", path.display(), e.line())
    });
    let found = match found {
        serde_json::Value::Array(_) => "a list".to_owned(),
        serde_json::Value::Object(_) => "an object".to_owned(),
        scalar => scalar.to_string().chars().take(40).collect(),
    };
    format!(
        "\"version\" must be a whole number (this connctl writes {STATE_VERSION}), found {found}{}",
        at.unwrap_or_default()
    )
}

/// The file a state path names: symlinks followed (a write replaces the target, never the
/// link), and a path refused that is not a regular file or that would be its own lock file.
pub fn resolve_path(path: &Path) -> Result<PathBuf, StateError> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(|e| StateError::Read {
                    path: current.clone(),
                    reason: e.to_string(),
                })?;
                current = match current.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(m) if !m.is_file() => return Err(StateError::NotAFile { path: current }),
            _ => {
                if crate::lock::lock_path(&current) == current {
                    return Err(StateError::LockCollision { path: current });
                }
                return Ok(current);
            }
        }
    }
    Err(StateError::Read {
        path: path.into(),
        reason: "too many levels of symbolic links".into(),
    })
}

/// The temporary a write by process `pid` uses beside `path`.
fn temporary(dir: &Path, name: &str, pid: u32) -> PathBuf {
    dir.join(format!(".{name}.{pid}.tmp"))
}

/// Removes temporaries beside `path` left by writers that were killed mid-write. Called by
/// the lock holder only, so no live writer of this state is using one.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    false
}

/// Under a file-size limit (`ulimit -f`) the kernel kills a process whose write crosses it
/// with SIGXFSZ, silently. Handling the signal makes the write fail with EFBIG instead, which
/// is reported like any other write failure. Needs a Tokio runtime.
#[cfg(unix)]
pub fn survive_file_size_limit() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // The handler stays installed after the stream is dropped.
    signal(SignalKind::from_raw(25)).map(drop)
}

#[cfg(not(unix))]
pub fn survive_file_size_limit() -> std::io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix.
/// A failed write removes its temporary; a killed one leaves it for
/// [`remove_stale_temporaries`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = temporary(&dir, &name, std::process::id());
    let written = private_file(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // fsync the folder so the rename itself survives a power cut.
    File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Creates (truncating) a file readable only by its owner.
pub fn private_file(path: &Path) -> std::io::Result<File> {
    private_options().create(true).truncate(true).open(path)
}

/// Creates a new file readable only by its owner; fails if `path` exists.
pub fn private_new_file(path: &Path) -> std::io::Result<File> {
    private_options().create_new(true).open(path)
}

/// Options to write a file that, when created, is readable only by its owner.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ConnectionState;

    #[test]
    fn roundtrip_bumps_serial_and_keeps_lineage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".connctl/state.json");
        let mut s = State::load(&path).unwrap();
        assert_eq!(s.serial, 0);
        s.connections
            .insert("a".into(), ConnectionState::new("Snowflake"));
        s.save(&path).unwrap();
        let back = State::load(&path).unwrap();
        assert_eq!(back.serial, 1);
        assert_eq!(back.lineage, s.lineage);
        assert_eq!(back.connections.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn newer_and_corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, r#"{"version": 99, "serial": 1}"#).unwrap();
        assert!(matches!(
            State::load(&path),
            Err(StateError::TooNew { found: 99, .. })
        ));
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Corrupt { .. })));
        // A field this build does not know, even deep inside, would be dropped on the next write.
        let mut s = State::new();
        s.connections
            .insert("a".into(), ConnectionState::new("Snowflake"));
        let mut v = serde_json::to_value(&s).unwrap();
        v["connections"]["a"]["futureField"] = serde_json::json!(1);
        fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn a_version_that_is_not_a_whole_number_is_named_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for (version, shown) in [
            ("-1", "-1"),
            ("1.5", "1.5"),
            (r#""1""#, r#""1""#),
            ("[1]", "a list"),
        ] {
            fs::write(
                &path,
                format!("{{\n  \"serial\": 3,\n  \"version\": {version}\n}}\n"),
            )
            .unwrap();
            let err = State::load(&path).unwrap_err().to_string();
            let want = format!(
                "state file {p} is corrupt: \"version\" must be a whole number (this connctl writes 1), found {shown} at {p}:3:14",
                p = path.display()
            );
            assert_eq!(err, want, "{version}");
        }
    }

    #[test]
    fn a_serial_at_its_maximum_is_refused_not_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = State::new();
        s.serial = u64::MAX;
        let err = s.save(&path).unwrap_err();
        assert!(matches!(
            err,
            StateError::SerialExhausted { serial: u64::MAX, .. }
        ));
        assert_eq!(s.serial, u64::MAX);
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn paths_are_resolved_and_non_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real/state.json");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real/state.json", &link).unwrap();
        // A dangling link resolves to where the file will be created.
        assert_eq!(resolve_path(&link).unwrap(), dir.path().join("real/state.json"));
        let mut s = State::new();
        s.save(&resolve_path(&link).unwrap()).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(State::load(&link).unwrap().serial, 1);

        assert!(matches!(
            resolve_path(&dir.path().join("state.lock")),
            Err(StateError::LockCollision { .. })
        ));
        assert!(matches!(
            resolve_path(dir.path()),
            Err(StateError::NotAFile { .. })
        ));
        assert!(matches!(
            State::load(dir.path()),
            Err(StateError::NotAFile { .. })
        ));
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder: the rename fails after the temporary was written.
        let path = dir.path().join("state.json");
        fs::create_dir_all(path.join("x")).unwrap();
        assert!(write_atomic(&path, b"{}").is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("state.json")]);
    }
}
