//! The state shared by concurrent connection workers, written through after every step.
//!
//! Each step's change is applied in memory and the file rewritten atomically before the worker
//! makes its next remote call, so a crash loses at most the step in flight. Writes are
//! group-committed: a worker whose change was already covered by a write that finished while
//! it waited returns at once, so many workers finishing steps together cost one write, not one
//! each.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::state::{ConnectionState, State, StateError, write_atomic};

#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    path: PathBuf,
    /// Bumped (under the state lock) by every change.
    changed: AtomicU64,
    /// The last change that is on disk.
    durable: AtomicU64,
    /// One writer at a time; the others wait and usually find their change already durable.
    writer: tokio::sync::Mutex<()>,
}

impl StateStore {
    pub fn new(state: State, path: PathBuf) -> StateStore {
        StateStore {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                path,
                changed: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                writer: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A copy of one connection's state.
    pub fn get(&self, key: &str) -> Option<ConnectionState> {
        self.lock().connections.get(key).cloned()
    }

    /// A copy of the whole state.
    pub fn snapshot(&self) -> State {
        self.lock().clone()
    }

    /// Changes one connection (creating its entry); returns once the change is on disk.
    pub async fn update<R>(
        &self,
        key: &str,
        technology: &str,
        change: impl FnOnce(&mut ConnectionState) -> R,
    ) -> Result<R, StateError> {
        self.write(|state| {
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
        self.write(|state| {
            state.connections.remove(key);
        })
        .await
    }

    async fn write<R>(&self, change: impl FnOnce(&mut State) -> R) -> Result<R, StateError> {
        let inner = &self.inner;
        let (result, mine) = {
            let mut state = self.lock();
            let result = change(&mut state);
            (result, inner.changed.fetch_add(1, Ordering::SeqCst) + 1)
        };
        let _writer = inner.writer.lock().await;
        if inner.durable.load(Ordering::SeqCst) >= mine {
            return Ok(result);
        }
        // Everything changed up to now goes into this one write.
        let (bytes, covered) = {
            let mut state = self.lock();
            (
                state.next_revision(&inner.path)?,
                inner.changed.load(Ordering::SeqCst),
            )
        };
        let path = inner.path.clone();
        // The file write and fsyncs block: keep them off the async workers.
        let written = tokio::task::spawn_blocking(move || write_atomic(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => {
                inner.durable.store(covered, Ordering::SeqCst);
                Ok(result)
            }
            Ok(Err(e)) => Err(StateError::Write {
                path: inner.path.clone(),
                reason: e.to_string(),
            }),
            Err(e) => Err(StateError::Write {
                path: inner.path.clone(),
                reason: e.to_string(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_are_all_durable_with_fewer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = StateStore::new(State::new(), path.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.spawn(async move {
                for step in 0..5 {
                    store
                        .update(&format!("k{i}"), "Snowflake", |s| {
                            s.journal("x", "done", Some(step.to_string()))
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
    }
}
