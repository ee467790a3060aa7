//! The writer's lock on the state: an OS file lock on `state.lock` beside the state file.
//!
//! The OS drops the lock when the process dies, so no stale lock survives a crash. The lock
//! file records who holds it (pid, host, command, start time) so a second writer can say so.
//! An OS lock lives on an inode: if the lock file is deleted or replaced (someone removes
//! `.connctl` mid-run), a second run can lock a new file. So the holder checks before every
//! state write that the path still names the inode it locked, and stops if not.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held for the lifetime of a writing command; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the state is locked by another connctl run: {holder}\n  = help: wait for it to finish; the lock is released automatically when that process exits ({path})"
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(
        "the state lock {path} was removed or replaced while this run held it; stopped before the next Immuta call\n  = help: another connctl run may be using the state now; when none is, run `connctl plan` to see where things stand"
    )]
    Lost { path: PathBuf },
}

impl StateLock {
    /// Takes the lock next to `state_path`, failing at once if another process holds it.
    pub fn acquire(state_path: &Path, command: &str) -> Result<StateLock, LockError> {
        let path = lock_path(state_path);
        let io = |e: std::io::Error| LockError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    holder: read_holder(&mut file),
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let info = serde_json::json!({
            "pid": std::process::id(),
            "host": hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            "command": command,
            "startedAt": crate::state::now(),
        });
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(format!("{info}\n").as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        // Holding the lock, no other writer is mid-write: leftovers of killed writes can go.
        crate::state::remove_stale_temporaries(state_path);
        Ok(StateLock { file, path })
    }

    /// Fails unless the lock file at [`StateLock::path`] is still the one this run locked.
    pub fn verify(&self) -> Result<(), LockError> {
        let lost = || LockError::Lost {
            path: self.path.clone(),
        };
        let held = self.file.metadata().map_err(|_| lost())?;
        let named = std::fs::symlink_metadata(&self.path).map_err(|_| lost())?;
        if same_file(&held, &named) {
            Ok(())
        } else {
            Err(lost())
        }
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino() && a.nlink() > 0
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    b.is_file()
}

/// `state.json` → `state.lock` in the same folder. A state path that is its own lock path
/// (`x.lock`) is refused earlier, by [`crate::state::resolve_path`].
pub fn lock_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("lock")
}

/// Who holds the lock. The holder writes its details just after locking, so a run that lost
/// the race by a hair waits briefly for them rather than saying "unknown".
fn read_holder(file: &mut File) -> String {
    for _ in 0..50 {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(0)).is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Some(holder) = describe_holder(&text)
        {
            return holder;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    "unknown holder (its details could not be read)".into()
}

fn describe_holder(text: &str) -> Option<String> {
    let v = serde_json::from_str::<serde_json::Value>(text.trim()).ok()?;
    let field = |k: &str| {
        v.get(k)
            .map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()))
    };
    Some(format!(
        "pid {} on {}, `{}`, started {}",
        field("pid").unwrap_or_else(|| "?".into()),
        field("host").unwrap_or_else(|| "?".into()),
        field("command").unwrap_or_else(|| "?".into()),
        field("startedAt").unwrap_or_else(|| "?".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let first = StateLock::acquire(&state, "connctl apply").unwrap();
        let err = StateLock::acquire(&state, "connctl apply").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        assert!(msg.contains("`connctl apply`"), "{msg}");
        drop(first);
        StateLock::acquire(&state, "connctl apply").unwrap();
    }

    #[test]
    fn a_deleted_or_replaced_lock_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".connctl/state.json");
        let lock = StateLock::acquire(&state, "connctl apply").unwrap();
        lock.verify().unwrap();
        std::fs::remove_dir_all(dir.path().join(".connctl")).unwrap();
        assert!(matches!(lock.verify(), Err(LockError::Lost { .. })));
        // A second run can now lock a new file at the same path; the first still sees the loss.
        let second = StateLock::acquire(&state, "connctl apply").unwrap();
        second.verify().unwrap();
        let err = lock.verify().unwrap_err().to_string();
        assert!(err.contains("removed or replaced"), "{err}");
    }

    #[test]
    fn taking_the_lock_clears_temporaries_of_dead_writers() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        // pid 4194305 is above Linux's pid_max limit: never alive.
        let stale = dir.path().join(".state.json.4194305.tmp");
        let unrelated = dir.path().join(".other.json.4194305.tmp");
        std::fs::write(&stale, "partial").unwrap();
        std::fs::write(&unrelated, "x").unwrap();
        let _lock = StateLock::acquire(&state, "connctl apply").unwrap();
        assert!(!stale.exists());
        assert!(unrelated.exists());
    }
}
