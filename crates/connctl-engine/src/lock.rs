//! The writer's lock on the state: for a local file, an OS file lock on `state.lock` beside
//! it; for a remote state, a lock object (see [`crate::remote_lock`]). [`WriterLock`] is
//! either.
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
    #[error("the state is locked by another connctl run: {holder}")]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(
        "the state lock {path} was removed or replaced while this run held it; stopped before the next Immuta call"
    )]
    Lost { path: PathBuf },
    #[error("the state {url} is locked by another connctl run: {holder}")]
    RemoteHeld { url: String, holder: String, id: String },
    #[error("cannot use the lock of the state {url}: {reason}")]
    Remote { url: String, reason: String },
    #[error("the state {url} is not locked (no lock {id} to release)")]
    NotHeld { url: String, id: String },
    #[error("the state {url} is locked, but not with {id}: {holder}")]
    OtherId { url: String, id: String, holder: String },
    #[error(
        "the local state {path} is locked by the operating system, which releases the lock when the holding process exits; there is nothing to unlock"
    )]
    LocalUnlock { path: PathBuf },
}

impl LockError {
    /// What the user can do about it, apart from the message (the CLI renders it).
    pub fn help(&self) -> Option<String> {
        Some(match self {
            LockError::Held { path, .. } => format!(
                "wait for it to finish; the lock is released automatically when that process exits ({})",
                path.display()
            ),
            LockError::Lost { .. } => "another connctl run may be using the state now; when none is, run `connctl plan` to see where things stand".into(),
            LockError::RemoteHeld { id, .. } => format!(
                "wait for it (`--lock-timeout 5m`); if that run was killed, `connctl state unlock {id}` releases its lock (it also expires by itself)"
            ),
            LockError::OtherId { .. } => "pass the ID shown".into(),
            LockError::Io { .. }
            | LockError::Remote { .. }
            | LockError::NotHeld { .. }
            | LockError::LocalUnlock { .. } => return None,
        })
    }
}

/// The lock a writing command holds for its whole run.
#[derive(Debug)]
pub enum WriterLock {
    Local(StateLock),
    Remote(crate::remote_lock::RemoteLock),
}

impl WriterLock {
    /// Takes the lock of the state at `location`, waiting up to `wait` while another run
    /// holds it (zero: fail at once, naming the holder).
    pub async fn acquire(
        location: &crate::backend::StateLocation,
        command: &str,
        wait: std::time::Duration,
    ) -> Result<WriterLock, LockError> {
        use crate::backend::StateLocation;
        match location {
            StateLocation::Local(path) => {
                let deadline = std::time::Instant::now() + wait;
                loop {
                    match StateLock::acquire(path, command) {
                        Err(LockError::Held { .. }) if std::time::Instant::now() < deadline => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                        other => return other.map(WriterLock::Local),
                    }
                }
            }
            StateLocation::Remote(object) => {
                crate::remote_lock::RemoteLock::acquire(object, command, wait, crate::remote_lock::LOCK_TTL)
                    .await
                    .map(WriterLock::Remote)
            }
        }
    }

    /// Fails if the lock is no longer this run's.
    pub fn verify(&self) -> Result<(), LockError> {
        match self {
            WriterLock::Local(lock) => lock.verify(),
            WriterLock::Remote(lock) => lock.verify(),
        }
    }

    /// Releases a remote lock now. A local lock is released by the OS when this is dropped
    /// (at the latest when the process exits).
    pub async fn release(&self) -> Result<(), LockError> {
        match self {
            WriterLock::Local(_) => Ok(()),
            WriterLock::Remote(lock) => lock.release().await,
        }
    }

    /// Taken from a remote holder that did not release it (see [`RemoteLock::taken_over`]).
    ///
    /// [`RemoteLock::taken_over`]: crate::remote_lock::RemoteLock::taken_over
    pub fn taken_over(&self) -> bool {
        matches!(self, WriterLock::Remote(lock) if lock.taken_over())
    }

    /// The remote lock's ID (for messages); `None` for a local lock.
    pub fn id(&self) -> Option<String> {
        match self {
            WriterLock::Local(_) => None,
            WriterLock::Remote(lock) => Some(lock.id()),
        }
    }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_with_a_lock_timeout_waits_for_the_local_lock() {
        use crate::backend::StateLocation;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let location = StateLocation::Local(dir.path().join("state.json"));
        let first = WriterLock::acquire(&location, "first", Duration::ZERO)
            .await
            .unwrap();
        let refused = WriterLock::acquire(&location, "second", Duration::ZERO).await;
        assert!(matches!(refused, Err(LockError::Held { .. })));
        let holder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(first);
        });
        WriterLock::acquire(&location, "second", Duration::from_secs(10))
            .await
            .unwrap();
        holder.await.unwrap();
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

    #[test]
    fn a_held_lock_says_who_in_the_message_and_what_to_do_in_the_help() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let _first = StateLock::acquire(&state, "connctl apply").unwrap();
        let err = StateLock::acquire(&state, "connctl apply").unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
        assert_eq!(
            err.help(),
            Some(format!(
                "wait for it to finish; the lock is released automatically when that process exits ({})",
                dir.path().join("state.lock").display()
            ))
        );
        let remote = LockError::RemoteHeld {
            url: "s3://b/state.json".into(),
            holder: "pid 1".into(),
            id: "abc".into(),
        };
        assert_eq!(
            remote.to_string(),
            "the state s3://b/state.json is locked by another connctl run: pid 1"
        );
        assert!(
            remote
                .help()
                .is_some_and(|h| h.contains("`connctl state unlock abc`"))
        );
        let other = LockError::NotHeld {
            url: "s3://b/state.json".into(),
            id: "abc".into(),
        };
        assert_eq!(other.help(), None);
    }
}
