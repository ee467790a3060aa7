//! The state shared by concurrent connection workers, written through after every step.
//!
//! Each step's change is applied in memory and the file rewritten atomically before the worker
//! makes its next remote call, so a crash loses at most the step in flight. Writes are
//! group-committed: a worker whose change was already covered by a write that finished while
//! it waited returns at once, so many workers finishing steps together cost one write, not one
//! each. And each write re-serialises only the connections that changed since the last one: the
//! others' JSON is kept, so a write costs a copy of the file, not a serialisation of it.
//!
//! Where the bytes go is the [`StateLocation`]'s business: a local file, or an object written
//! by compare-and-swap on the version this store last wrote. Before each write the store
//! checks that the run still holds its [`WriterLock`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use object_store::UpdateVersion;

use crate::backend::{Loaded, StateLocation};
use crate::lock::WriterLock;
use crate::state::{ConnectionState, State, StateError};

/// The state with the serialised JSON of each connection as last written.
struct Cached {
    state: State,
    /// Key → the connection's pretty JSON, indented to sit inside the document.
    fragments: BTreeMap<String, String>,
    /// Keys changed since their fragment was made.
    dirty: BTreeSet<String>,
}

impl Cached {
    /// The next revision of the file: the serial bumped, changed connections re-serialised.
    fn next_revision(&mut self, path: &std::path::Path) -> Result<Vec<u8>, StateError> {
        let failed = |e: serde_json::Error| StateError::Write {
            path: path.into(),
            reason: e.to_string(),
        };
        self.state.serial = crate::state::next_serial(self.state.serial, path)?;
        for key in std::mem::take(&mut self.dirty) {
            match self.state.connections.get(&key) {
                Some(c) => {
                    let json = serde_json::to_string_pretty(c).map_err(failed)?;
                    self.fragments.insert(key, json.replace('\n', "\n    "));
                }
                None => {
                    self.fragments.remove(&key);
                }
            }
        }
        let s = &self.state;
        let mut out =
            String::with_capacity(self.fragments.values().map(|f| f.len() + 64).sum::<usize>() + 256);
        let quoted = |v: &str| serde_json::to_string(v).map_err(failed);
        let _ = write!(
            out,
            "{{\n  \"version\": {},\n  \"serial\": {},\n  \"lineage\": {},\n",
            s.version,
            s.serial,
            quoted(&s.lineage)?,
        );
        if let Some(tenant) = &s.tenant {
            let _ = writeln!(out, "  \"tenant\": {},", quoted(tenant)?);
        }
        if let Some(environment) = &s.environment {
            let _ = writeln!(out, "  \"environment\": {},", quoted(environment)?);
        }
        let _ = write!(out, "  \"salt\": {},\n  \"connections\": ", quoted(&s.salt)?);
        if self.fragments.is_empty() {
            out.push_str("{}");
        } else {
            out.push_str("{\n");
            let last = self.fragments.len() - 1;
            for (i, (key, fragment)) in self.fragments.iter().enumerate() {
                let _ = write!(
                    out,
                    "    {}: {fragment}{}",
                    quoted(key)?,
                    if i == last { "\n" } else { ",\n" }
                );
            }
            out.push_str("  }");
        }
        out.push_str("\n}\n");
        Ok(out.into_bytes())
    }
}

#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<Cached>,
    location: StateLocation,
    /// Where the state is, for errors.
    path: PathBuf,
    /// The remote object's version this store last read or wrote: the next write's
    /// precondition. Only the writer (under `writer`) changes it.
    version: Mutex<Option<UpdateVersion>>,
    /// The writer's lock, checked before every write: a run whose lock was removed or taken
    /// over must not write (nor go on to its next Immuta call).
    lock: Option<Arc<WriterLock>>,
    /// Writes made and bytes sent, for measuring what a run costs the store.
    writes: AtomicU64,
    bytes: AtomicU64,
    /// Bumped (under the state lock) by every change.
    changed: AtomicU64,
    /// The last change that is on disk.
    durable: AtomicU64,
    /// One writer at a time; the others wait and usually find their change already durable.
    writer: tokio::sync::Mutex<()>,
}

impl StateStore {
    /// A store over a local file, without a lock (tests, and callers that hold one apart).
    pub fn new(state: State, path: PathBuf) -> StateStore {
        StateStore::build(state, StateLocation::Local(path), None, None)
    }

    /// The store of a writing run: the state as loaded from `location`, whose every write
    /// first checks that `lock` is still held.
    pub fn open(loaded: Loaded, location: StateLocation, lock: Arc<WriterLock>) -> StateStore {
        StateStore::build(loaded.state, location, loaded.version, Some(lock))
    }

    fn build(
        state: State,
        location: StateLocation,
        version: Option<UpdateVersion>,
        lock: Option<Arc<WriterLock>>,
    ) -> StateStore {
        StateStore {
            inner: Arc::new(Inner {
                state: Mutex::new(Cached {
                    dirty: state.connections.keys().cloned().collect(),
                    state,
                    fragments: BTreeMap::new(),
                }),
                path: location.display_path(),
                location,
                version: Mutex::new(version),
                lock,
                writes: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                changed: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                writer: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Writes made so far and the bytes they sent.
    pub fn write_stats(&self) -> (u64, u64) {
        (
            self.inner.writes.load(Ordering::SeqCst),
            self.inner.bytes.load(Ordering::SeqCst),
        )
    }

    /// A copy of one connection's state.
    pub fn get(&self, key: &str) -> Option<ConnectionState> {
        self.lock().state.connections.get(key).cloned()
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> State {
        self.lock().state.clone()
    }

    /// Changes one connection (creating its entry); returns once the change is on disk.
    pub async fn update<R>(
        &self,
        key: &str,
        technology: &str,
        change: impl FnOnce(&mut ConnectionState) -> R,
    ) -> Result<R, StateError> {
        self.write(key, |state| {
            let entry = state
                .connections
                .entry(key.to_owned())
                .or_insert_with(|| ConnectionState::new(technology));
            change(entry)
        })
        .await
    }

    /// Removes a connection from the state; returns once that is on disk.
    pub async fn remove(&self, key: &str) -> Result<(), StateError> {
        self.write(key, |state| {
            state.connections.remove(key);
        })
        .await
    }

    async fn write<R>(&self, key: &str, change: impl FnOnce(&mut State) -> R) -> Result<R, StateError> {
        let inner = &self.inner;
        let (result, mine) = {
            let mut cached = self.lock();
            let result = change(&mut cached.state);
            cached.dirty.insert(key.to_owned());
            (result, inner.changed.fetch_add(1, Ordering::SeqCst) + 1)
        };
        let _writer = inner.writer.lock().await;
        if inner.durable.load(Ordering::SeqCst) >= mine {
            return Ok(result);
        }
        if let Some(lock) = &inner.lock {
            lock.verify()?;
        }
        // Everything changed up to now goes into this one write.
        let (bytes, covered) = {
            let mut state = self.lock();
            (
                state.next_revision(&inner.path)?,
                inner.changed.load(Ordering::SeqCst),
            )
        };
        let size = bytes.len() as u64;
        let version = guard(&inner.version).clone();
        let written = inner.location.write(bytes, version).await?;
        *guard(&inner.version) = written;
        inner.writes.fetch_add(1, Ordering::SeqCst);
        inner.bytes.fetch_add(size, Ordering::SeqCst);
        inner.durable.store(covered, Ordering::SeqCst);
        Ok(result)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        guard(&self.inner.state)
    }
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_are_all_durable_with_fewer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut initial = State::new();
        initial.tenant = Some("https://acme.immuta.com".into());
        let store = StateStore::new(initial, path.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.spawn(async move {
                for step in 0..5 {
                    store
                        .update(&format!("k{i}"), "Snowflake", |s| {
                            s.journal(
                                crate::state::Task::Script,
                                crate::state::Phase::Done,
                                Some(step.to_string()),
                            )
                        })
                        .await
                        .unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let on_disk = State::load(&path).unwrap();
        assert_eq!(on_disk.connections.len(), 64);
        assert!(on_disk.connections.values().all(|c| c.journal.len() == 5));
        // 320 changes, grouped into fewer writes (each write bumps the serial once).
        assert!(
            on_disk.serial < 320,
            "no two changes shared a write: serial {}",
            on_disk.serial
        );
        assert_eq!(on_disk, store.snapshot());
        // The assembled file is exactly what serialising the whole state would give.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, serde_json::to_string_pretty(&on_disk).unwrap() + "\n");
    }

    #[tokio::test]
    async fn a_store_whose_lock_was_removed_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".connctl/state.json");
        let location = StateLocation::Local(path.clone());
        let lock = WriterLock::acquire(&location, "test", std::time::Duration::ZERO)
            .await
            .unwrap();
        let loaded = location.load().await.unwrap();
        let store = StateStore::open(loaded, location, Arc::new(lock));
        store.update("a", "Snowflake", |_| ()).await.unwrap();
        std::fs::remove_dir_all(dir.path().join(".connctl")).unwrap();
        let err = store.update("b", "Snowflake", |_| ()).await.unwrap_err();
        assert!(err.to_string().contains("removed or replaced"), "{err}");
        assert!(!path.exists(), "the write went ahead");
    }

    /// Two runs on one remote state without a lock between them (a lock taken over): the
    /// second to write is refused, and keeps being refused.
    #[tokio::test]
    async fn a_stale_remote_writer_is_refused() {
        let memory = std::sync::Arc::new(object_store::memory::InMemory::new());
        let location = StateLocation::in_store("memory://b/state.json", memory, "state.json");
        // No lock: what is under test is the compare-and-swap that fences a writer whose
        // lock was lost.
        let open = |location: StateLocation| async move {
            let loaded = location.load().await.unwrap();
            StateStore::build(loaded.state, location, loaded.version, None)
        };
        let first = open(location.clone()).await;
        first.update("a", "Snowflake", |_| ()).await.unwrap();
        let second = open(location.clone()).await;
        first.update("b", "Snowflake", |_| ()).await.unwrap();
        for _ in 0..2 {
            let err = second.update("c", "Snowflake", |_| ()).await.unwrap_err();
            assert!(matches!(err, StateError::Conflict { .. }), "{err}");
        }
        let on_store = location.load().await.unwrap().state;
        assert_eq!(on_store.connections.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(first.write_stats().0, 2);
    }

    /// A run whose lock was freed by `state unlock` and taken by another run is refused at its
    /// next write, even before the new holder has changed anything of its own.
    #[tokio::test]
    async fn a_run_whose_lock_was_taken_over_is_fenced_at_its_next_write() {
        let memory = std::sync::Arc::new(object_store::memory::InMemory::new());
        let location = StateLocation::in_store("memory://b/state.json", memory, "state.json");
        let StateLocation::Remote(object) = &location else {
            unreachable!()
        };
        let zero = std::time::Duration::ZERO;
        let first_lock = Arc::new(WriterLock::acquire(&location, "a", zero).await.unwrap());
        let first = StateStore::open(
            location.load_for_writer(&first_lock).await.unwrap(),
            location.clone(),
            first_lock.clone(),
        );
        first.update("a", "Snowflake", |_| ()).await.unwrap();
        let id = first_lock.id().unwrap();
        crate::remote_lock::force_unlock(object, &id).await.unwrap();
        let second_lock = WriterLock::acquire(&location, "b", zero).await.unwrap();
        assert!(second_lock.taken_over());
        let second = location.load_for_writer(&second_lock).await.unwrap();
        assert_eq!(second.state.connections.len(), 1);
        let err = first.update("b", "Snowflake", |_| ()).await.unwrap_err();
        assert!(matches!(err, StateError::Conflict { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_serial_at_its_maximum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut state = State::new();
        state.serial = u64::MAX;
        let store = StateStore::new(state, path.clone());
        let err = store.update("a", "Snowflake", |_| ()).await.unwrap_err();
        assert!(matches!(err, StateError::SerialExhausted { .. }), "{err}");
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn removals_and_an_emptied_state_are_written_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut initial = State::new();
        initial
            .connections
            .insert("old".into(), ConnectionState::new("Databricks"));
        let store = StateStore::new(initial, path.clone());
        store
            .update("new", "Snowflake", |s| s.protect = true)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            serde_json::to_string_pretty(&store.snapshot()).unwrap() + "\n"
        );
        store.remove("old").await.unwrap();
        store.remove("new").await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            serde_json::to_string_pretty(&store.snapshot()).unwrap() + "\n"
        );
        assert!(State::load(&path).unwrap().connections.is_empty());
    }
}
