//! The state shared by concurrent connection workers, written through after every step.
//!
//! Each step's change is applied in memory and written before the worker makes its next
//! remote call, so a crash loses at most the step in flight. Writes are group-committed: a
//! worker whose change was already covered by a write that finished while it waited returns
//! at once, so many workers finishing steps together cost one write, not one each. And each
//! full write re-serialises only the connections that changed since the last one: the others'
//! JSON is kept, so a write costs a copy of the file, not a serialisation of it.
//!
//! Where the bytes go is the [`StateLocation`]'s business: a local file is rewritten whole
//! every time. A remote state is written whole only now and then (the first write of a run,
//! then whenever the records since the last full write add up to its size, and at
//! [`StateStore::finish`]); in between, each write is one small [`crate::journal`] record of
//! the connections that changed. Before each write the store checks that the run still holds
//! its [`WriterLock`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use object_store::UpdateVersion;

use crate::backend::{Loaded, StateLocation};
use crate::lock::WriterLock;
use crate::state::{ConnectionState, State, StateError};

/// Journal records at most between two full writes of a remote state (a reader after a crash
/// folds at most this many).
const MAX_RECORDS: u64 = 256;
/// Journal bytes allowed between two full writes even when the state is smaller.
const MIN_RECORD_BYTES: u64 = 64 * 1024;

/// The state with the serialised JSON of each connection as last written.
struct Cached {
    state: State,
    /// Key → the connection's pretty JSON, indented to sit inside the document.
    fragments: BTreeMap<String, String>,
    /// Keys changed since their fragment was made.
    dirty: BTreeSet<String>,
    /// Keys changed since the last write of any kind: the next journal record.
    delta: BTreeSet<String>,
    /// Journal records written since the last full write, and their bytes.
    records: u64,
    record_bytes: u64,
    /// The size of this store's last full write; `None` before it (or after a failed write):
    /// the next write is then full.
    full_bytes: Option<u64>,
    /// [`StateStore::finish`] asks for a full write.
    want_full: bool,
}

/// One write: what to send where.
enum Revision {
    Full(Vec<u8>),
    Record(Vec<u8>),
}

impl Cached {
    /// The next write: the serial bumped, then either a journal record of what changed (a
    /// remote state between full writes) or the whole state.
    fn next(&mut self, path: &std::path::Path, remote: bool) -> Result<Revision, StateError> {
        self.state.serial = crate::state::next_serial(self.state.serial, path)?;
        if remote
            && !self.want_full
            && self.records < MAX_RECORDS
            && let Some(full) = self.full_bytes
        {
            let record = crate::journal::changes(&self.state, &self.delta, &path.to_string_lossy())?;
            let bytes = self.record_bytes + record.len() as u64;
            if bytes < full.max(MIN_RECORD_BYTES) {
                self.delta.clear();
                self.records += 1;
                self.record_bytes = bytes;
                return Ok(Revision::Record(record));
            }
        }
        let full = self.render(path)?;
        self.delta.clear();
        self.want_full = false;
        self.records = 0;
        self.record_bytes = 0;
        self.full_bytes = Some(full.len() as u64);
        Ok(Revision::Full(full))
    }

    /// The whole state, changed connections re-serialised.
    fn render(&mut self, path: &std::path::Path) -> Result<Vec<u8>, StateError> {
        let failed = |e: serde_json::Error| StateError::Write {
            path: path.into(),
            reason: e.to_string(),
        };
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
    /// A write was refused as another writer's: this store writes no more.
    fenced: std::sync::atomic::AtomicBool,
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
                    delta: BTreeSet::new(),
                    records: 0,
                    record_bytes: 0,
                    full_bytes: None,
                    want_full: false,
                }),
                path: location.display_path(),
                location,
                version: Mutex::new(version),
                lock,
                writes: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                changed: AtomicU64::new(0),
                durable: AtomicU64::new(0),
                fenced: std::sync::atomic::AtomicBool::new(false),
                writer: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Requests sent to write the state so far (a remote full write is two: its journal
    /// marker and the state object), and the bytes they sent.
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

    /// Changes the connections already in the state for which `change` says it changed
    /// something, all in one write; returns how many. Nothing is written when none changed.
    pub async fn update_existing(
        &self,
        mut change: impl FnMut(&str, &mut ConnectionState) -> bool,
    ) -> Result<usize, StateError> {
        let (changed, mine) = {
            let mut cached = self.lock();
            let cached = &mut *cached;
            let mut changed = Vec::new();
            for (key, entry) in &mut cached.state.connections {
                if change(key, entry) {
                    changed.push(key.clone());
                }
            }
            if changed.is_empty() {
                return Ok(0);
            }
            cached.dirty.extend(changed.iter().cloned());
            cached.delta.extend(changed.iter().cloned());
            (
                changed.len(),
                self.inner.changed.fetch_add(1, Ordering::SeqCst) + 1,
            )
        };
        self.commit(mine).await?;
        Ok(changed)
    }

    /// Removes a connection from the state; returns once that is on disk.
    pub async fn remove(&self, key: &str) -> Result<(), StateError> {
        self.write(key, |state| {
            state.connections.remove(key);
        })
        .await
    }

    async fn write<R>(&self, key: &str, change: impl FnOnce(&mut State) -> R) -> Result<R, StateError> {
        let (result, mine) = {
            let mut cached = self.lock();
            let result = change(&mut cached.state);
            cached.dirty.insert(key.to_owned());
            cached.delta.insert(key.to_owned());
            (result, self.inner.changed.fetch_add(1, Ordering::SeqCst) + 1)
        };
        self.commit(mine).await?;
        Ok(result)
    }

    /// Ends a run's writing: a remote state with journal records since its last full write
    /// is written whole (so readers need read no records), then the records that every lock
    /// holder's fence has outlived are deleted. Nothing for a local file.
    pub async fn finish(&self) -> Result<(), StateError> {
        let StateLocation::Remote(object) = &self.inner.location else {
            return Ok(());
        };
        let pending = {
            let mut cached = self.lock();
            cached.want_full = cached.records > 0;
            cached.want_full
        };
        if pending {
            let mine = self.inner.changed.fetch_add(1, Ordering::SeqCst) + 1;
            self.commit(mine).await?;
        }
        let _writer = self.inner.writer.lock().await;
        let (lineage, serial) = {
            let cached = self.lock();
            (cached.state.lineage.clone(), cached.state.serial)
        };
        // Only a lock holder deletes records.
        if self.inner.lock.is_some() {
            crate::journal::clean(object, &lineage, serial, crate::journal::KEEP_COVERED).await?;
        }
        Ok(())
    }

    /// Makes change number `mine` durable (with every change made before it).
    async fn commit(&self, mine: u64) -> Result<(), StateError> {
        let inner = &self.inner;
        let _writer = inner.writer.lock().await;
        if inner.durable.load(Ordering::SeqCst) >= mine {
            return Ok(());
        }
        if inner.fenced.load(Ordering::SeqCst) {
            return Err(StateError::Conflict {
                url: inner.location.to_string(),
            });
        }
        if let Some(lock) = &inner.lock {
            lock.verify()?;
        }
        // Everything changed up to now goes into this one write.
        let (revision, lineage, serial, covered) = {
            let mut state = self.lock();
            (
                state.next(&inner.path, inner.location.is_remote())?,
                state.state.lineage.clone(),
                state.state.serial,
                inner.changed.load(Ordering::SeqCst),
            )
        };
        let version = guard(&inner.version).clone();
        let (requests, size, written) = match revision {
            Revision::Full(bytes) => {
                let size = bytes.len() as u64;
                let written = inner.location.write(bytes, &lineage, serial, version).await;
                (1 + u64::from(inner.location.is_remote()), size, written.map(Some))
            }
            Revision::Record(bytes) => {
                let size = bytes.len() as u64;
                let StateLocation::Remote(object) = &inner.location else {
                    unreachable!("journal records are written to remote states only")
                };
                let written = crate::journal::record(object, &lineage, serial)
                    .put_if(bytes, None)
                    .await;
                (1, size, written.map(|_| None))
            }
        };
        let written = written.inspect_err(|e| {
            // What this write held is still in memory: the next write is full, carries it, and
            // takes the same serial (a writer must not claim serials ahead of the one that
            // fenced it). A write refused as another's is this store's last.
            let mut cached = self.lock();
            cached.full_bytes = None;
            cached.state.serial = serial - 1;
            if matches!(e, StateError::Conflict { .. }) {
                inner.fenced.store(true, Ordering::SeqCst);
            }
        })?;
        if let Some(version) = written {
            *guard(&inner.version) = version;
        }
        inner.writes.fetch_add(requests, Ordering::SeqCst);
        inner.bytes.fetch_add(size, Ordering::SeqCst);
        inner.durable.store(covered, Ordering::SeqCst);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        guard(&self.inner.state)
    }
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
