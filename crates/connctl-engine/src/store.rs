//! The state shared by concurrent connection workers, written through after every step.
//!
//! Each step's change is applied in memory and the whole file rewritten atomically before the
//! worker makes its next remote call, so a crash loses at most the step in flight.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::state::{ConnectionState, State, StateError};

#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Mutex<State>>,
    path: Arc<PathBuf>,
}

impl StateStore {
    pub fn new(state: State, path: PathBuf) -> StateStore {
        StateStore {
            inner: Arc::new(Mutex::new(state)),
            path: Arc::new(path),
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

    /// Changes one connection (creating its entry) and writes the file before returning.
    pub async fn update<R: Send + 'static>(
        &self,
        key: &str,
        technology: &str,
        change: impl FnOnce(&mut ConnectionState) -> R + Send + 'static,
    ) -> Result<R, StateError> {
        let (key, technology) = (key.to_owned(), technology.to_owned());
        self.write(move |state| {
            let entry = state
                .connections
                .entry(key)
                .or_insert_with(|| ConnectionState::new(&technology));
            change(entry)
        })
        .await
    }

    /// Removes a connection from the state and writes the file.
    pub async fn remove(&self, key: &str) -> Result<(), StateError> {
        let key = key.to_owned();
        self.write(move |state| {
            state.connections.remove(&key);
        })
        .await
    }

    async fn write<R: Send + 'static>(
        &self,
        change: impl FnOnce(&mut State) -> R + Send + 'static,
    ) -> Result<R, StateError> {
        let inner = self.inner.clone();
        let path = self.path.clone();
        // The file write and fsyncs block: keep them off the async workers.
        let joined = tokio::task::spawn_blocking(move || {
            let mut state = inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = change(&mut state);
            state.save(&path).map(|()| result)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) => Err(StateError::Write {
                path: self.path.to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
