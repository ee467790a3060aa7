//! The journal of a remote state: between two full writes of the state object, each write is
//! one small object holding only the connections that changed.
//!
//! Record `n` is `<state>.journal/<lineage>/<n, 20 digits>` and is created only if absent, so
//! two writers can never both write serial `n`. A full write of the state at serial `n` first
//! claims record `n` with a marker (`"full"`), then compares-and-swaps the state object.
//! So a writer that lost its lock is refused at its next write either way: its next record is
//! already taken by the new holder's fencing write, or the state object moved under it.
//!
//! A reader takes the state object (serial `s`) and folds records `s+1, s+2, …` in order,
//! stopping at the first gap. Records at or below the state object's serial are covered by it;
//! [`clean`] deletes them once they are older than any lock could still be held by a writer
//! that might try their slot (a fencing marker must outlive the writer it fences).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::backend::RemoteObject;
use crate::state::{ConnectionState, State, StateError};

/// How old a covered record must be before [`clean`] deletes it: longer than a lock lives
/// unrenewed ([`crate::remote_lock::LOCK_TTL`]), plus room for clocks that disagree.
pub const KEEP_COVERED: Duration = Duration::from_secs(15 * 60);

/// Records read at once when folding.
const READ_AHEAD: usize = 16;

/// One journal object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    lineage: String,
    serial: u64,
    /// A marker: the state object itself is written at this serial (no changes here). It
    /// holds a random id, so that two writers' markers never look alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    full: Option<String>,
    /// Key → the connection as it now is; `null`: removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    changes: BTreeMap<String, Option<ConnectionState>>,
}

/// A record as written: borrows the connections instead of copying them.
#[derive(Serialize)]
struct RecordRef<'a> {
    lineage: &'a str,
    serial: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    full: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    changes: BTreeMap<&'a str, Option<&'a ConnectionState>>,
}

/// The bytes of record `state.serial` holding the current value of each of `keys`.
pub fn changes<'a>(
    state: &State,
    keys: impl IntoIterator<Item = &'a String>,
    url: &str,
) -> Result<Vec<u8>, StateError> {
    let changes = keys
        .into_iter()
        .map(|k| (k.as_str(), state.connections.get(k)))
        .collect();
    encode(
        &RecordRef {
            lineage: &state.lineage,
            serial: state.serial,
            full: None,
            changes,
        },
        url,
    )
}

/// The bytes of the marker that claims `serial` for a full write.
pub fn marker(lineage: &str, serial: u64, url: &str) -> Result<Vec<u8>, StateError> {
    encode(
        &RecordRef {
            lineage,
            serial,
            full: Some(&uuid::Uuid::new_v4().to_string()),
            changes: BTreeMap::new(),
        },
        url,
    )
}

fn encode(record: &RecordRef<'_>, url: &str) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(record).map_err(|e| StateError::Write {
        path: PathBuf::from(url),
        reason: e.to_string(),
    })
}

/// The folder of `lineage`'s records.
fn folder(state: &RemoteObject, lineage: &str) -> ObjectPath {
    ObjectPath::from(format!("{}.journal/{lineage}", state.path()))
}

/// Record `serial` of `lineage`.
pub fn record(state: &RemoteObject, lineage: &str, serial: u64) -> RemoteObject {
    state.sibling(&format!(".journal/{lineage}/{serial:020}"))
}

/// The serial a record's name holds (`…/00000000000000000042`).
fn serial_of(path: &ObjectPath) -> Option<u64> {
    path.filename()?.parse().ok()
}

/// What folding found.
#[derive(Debug, Default, PartialEq)]
pub struct Folded {
    /// Records applied.
    pub records: usize,
    /// A full write was claimed past the state object's serial but the object read is older:
    /// that write is in flight (read again) or died (its changes were never acknowledged).
    pub unfinished_full: bool,
}

/// Applies to `state` (as read from the state object) the records written after it.
pub async fn fold(object: &RemoteObject, state: &mut State) -> Result<Folded, StateError> {
    let dir = folder(object, &state.lineage);
    let after = ObjectPath::from(format!("{dir}/{:020}", state.serial));
    let listed: Vec<_> = object
        .store()
        .list_with_offset(Some(&dir), &after)
        .try_collect()
        .await
        .map_err(|e| object.failed(e))?;
    let mut serials: Vec<u64> = listed.iter().filter_map(|m| serial_of(&m.location)).collect();
    serials.sort_unstable();
    // Only the run of serials right after the state object's counts.
    let run = serials
        .iter()
        .zip(state.serial + 1..)
        .take_while(|(s, want)| *s == want)
        .count();
    let lineage = state.lineage.clone();
    let mut reads = stream::iter(serials[..run].iter().copied())
        .map(|serial| {
            let record = record(object, &lineage, serial);
            async move {
                let bytes = record.get().await?.map(|(b, _)| b);
                Ok::<_, StateError>((record, serial, bytes))
            }
        })
        .buffered(READ_AHEAD);
    let mut folded = Folded::default();
    while let Some(read) = reads.next().await {
        let (record, serial, Some(bytes)) = read? else {
            // Deleted between the listing and the read: covered by a newer state object.
            folded.unfinished_full = true;
            break;
        };
        let corrupt = |reason: String| StateError::Corrupt {
            path: PathBuf::from(record.url()),
            reason,
        };
        let parsed: Record = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if parsed.lineage != state.lineage || parsed.serial != serial {
            return Err(corrupt(format!(
                "it holds serial {} of lineage {}",
                parsed.serial, parsed.lineage
            )));
        }
        // Only a marker with nothing after it can be a full write still in flight.
        folded.unfinished_full = parsed.full.is_some();
        for (key, change) in parsed.changes {
            match change {
                Some(connection) => state.connections.insert(key, connection),
                None => state.connections.remove(&key),
            };
        }
        state.serial = serial;
        folded.records += 1;
    }
    Ok(folded)
}

/// Deletes the records that the state object at `serial` covers (and every record of
/// another lineage) once they are older than `keep`. Only the lock holder calls this.
pub async fn clean(
    object: &RemoteObject,
    lineage: &str,
    serial: u64,
    keep: Duration,
) -> Result<usize, StateError> {
    let root = ObjectPath::from(format!("{}.journal", object.path()));
    let mine = folder(object, lineage);
    let horizon = unix_now().saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
    let listed: Vec<_> = object
        .store()
        .list(Some(&root))
        .try_collect()
        .await
        .map_err(|e| object.failed(e))?;
    let old: Vec<ObjectPath> = listed
        .into_iter()
        .filter(|m| m.last_modified.timestamp() <= horizon)
        .filter(|m| !m.location.prefix_matches(&mine) || serial_of(&m.location).is_some_and(|s| s <= serial))
        .map(|m| m.location)
        .collect();
    let count = old.len();
    if count == 0 {
        return Ok(0);
    }
    let paths = stream::iter(old.into_iter().map(Ok)).boxed();
    object
        .store()
        .delete_stream(paths)
        .try_for_each(|_| async { Ok(()) })
        .await
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(()),
            e => Err(object.failed(e)),
        })?;
    Ok(count)
}

/// Now, in seconds since 1970 (as listings date objects).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectStore;
    use object_store::memory::InMemory;

    use super::*;
    use crate::backend::StateLocation;
    use crate::lock::WriterLock;
    use crate::state::{Phase, Task};
    use crate::store::StateStore;

    fn memory() -> (StateLocation, RemoteObject, Arc<InMemory>) {
        let store = Arc::new(InMemory::new());
        let location = StateLocation::in_store("memory://b/state.json", store.clone(), "state.json");
        let StateLocation::Remote(object) = &location else {
            unreachable!()
        };
        let object = object.clone();
        (location, object, store)
    }

    /// A writing run's store, as `apply` opens it.
    async fn open(location: &StateLocation) -> (StateStore, Arc<WriterLock>) {
        let lock = Arc::new(
            WriterLock::acquire(location, "test", Duration::ZERO)
                .await
                .unwrap(),
        );
        let loaded = location.load_for_writer(&lock).await.unwrap();
        (StateStore::open(loaded, location.clone(), lock.clone()), lock)
    }

    /// `n` connections through the four writes of a create, as parallel workers do.
    async fn create(store: &StateStore, n: usize) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let store = store.clone();
            tasks.spawn(async move {
                for task in [Task::Script, Task::Test, Task::Register, Task::Register] {
                    store
                        .update(&format!("k{i:03}"), "Snowflake", |c| {
                            c.journal(task, Phase::Done, Some("x".repeat(200)))
                        })
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }

    async fn names(store: &InMemory) -> Vec<String> {
        let mut names: Vec<String> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        names.sort();
        names
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn between_full_writes_a_remote_state_is_written_as_small_records() {
        let (location, _, memory) = memory();
        let (store, lock) = open(&location).await;
        create(&store, 100).await;
        let (requests, bytes) = store.write_stats();
        // Readers see every change: the state object plus the records after it.
        let mid_run = location.load().await.unwrap();
        assert_eq!(mid_run.state, store.snapshot());
        let full = serde_json::to_vec_pretty(&mid_run.state).unwrap().len() as u64;
        // Rewriting the whole state once per created connection would have sent about
        // 100 × (half the final size) bytes; the records send a fraction of that. (Counted per
        // connection, not per request: on a loaded machine the store coalesces writes, so the
        // request count varies while the bytes a rewrite-per-step layout needs do not.)
        assert!(
            bytes * 4 < 100 * full / 2,
            "{requests} requests, {bytes} bytes for a {full}-byte state"
        );
        let records = names(&memory)
            .await
            .iter()
            .filter(|n| n.contains(".journal/"))
            .count();
        // How many depends on how writes coalesce (fewer on a loaded machine); some there must be.
        assert!(records > 0, "{records} records");

        // At the end of the run the state object alone is the whole state.
        store.finish().await.unwrap();
        lock.release().await.unwrap();
        let (bytes, _) = location_object(&location).get().await.unwrap().unwrap();
        let alone = State::parse(std::str::from_utf8(&bytes).unwrap(), "x".as_ref()).unwrap();
        assert_eq!(alone, store.snapshot());
        // Its JSON is spelled as a local file's, so older connctl versions read it.
        assert_eq!(
            bytes,
            serde_json::to_string_pretty(&alone)
                .unwrap()
                .into_bytes()
                .into_iter()
                .chain(*b"\n")
                .collect::<Vec<u8>>()
        );
    }

    fn location_object(location: &StateLocation) -> &RemoteObject {
        let StateLocation::Remote(object) = location else {
            unreachable!()
        };
        object
    }

    /// A run killed mid-way (no `finish`, its lock left behind): the next run, after
    /// `state unlock`, starts from the state object and the records, and goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_run_resumes_from_the_state_and_its_records() {
        let (location, object, _) = memory();
        let (killed, lock) = open(&location).await;
        create(&killed, 40).await;
        let at_kill = killed.snapshot();
        let id = lock.id().unwrap();
        drop(killed);
        std::mem::forget(lock); // killed: never released

        crate::remote_lock::force_unlock(&object, &id).await.unwrap();
        let (next, lock) = open(&location).await;
        let mut resumed = next.snapshot();
        assert_eq!(resumed.connections, at_kill.connections);
        assert!(resumed.serial > at_kill.serial, "the takeover writes once");
        next.update("k000", "Snowflake", |c| c.protect = true)
            .await
            .unwrap();
        next.finish().await.unwrap();
        lock.release().await.unwrap();
        resumed.connections.get_mut("k000").unwrap().protect = true;
        assert_eq!(
            location.load().await.unwrap().state.connections,
            resumed.connections
        );
    }

    /// A full write that died between claiming its serial and writing the state object
    /// leaves a marker: readers skip it and the next writer goes on after it.
    #[tokio::test]
    async fn a_dead_full_write_is_skipped() {
        let (location, object, _) = memory();
        let (store, lock) = open(&location).await;
        create(&store, 2).await;
        let serial = store.snapshot().serial;
        let lineage = store.snapshot().lineage;
        drop(store);
        lock.release().await.unwrap();
        record(&object, &lineage, serial + 1)
            .put_if(marker(&lineage, serial + 1, "x").unwrap(), None)
            .await
            .unwrap();
        let loaded = location.load().await.unwrap();
        assert_eq!(loaded.state.serial, serial + 1);
        let (store, lock) = open(&location).await;
        store
            .update("k000", "Snowflake", |c| c.protect = true)
            .await
            .unwrap();
        store.finish().await.unwrap();
        lock.release().await.unwrap();
        assert!(location.load().await.unwrap().state.connections["k000"].protect);
    }

    #[tokio::test]
    async fn a_corrupt_record_is_refused_naming_it() {
        let (location, object, _) = memory();
        let (store, lock) = open(&location).await;
        create(&store, 1).await;
        let state = store.snapshot();
        drop(store);
        lock.release().await.unwrap();
        let next = record(&object, &state.lineage, state.serial + 1);
        next.put_if(b"{\"lineage\": 1}".to_vec(), None).await.unwrap();
        let err = location.load().await.err().unwrap();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(next.url()), "{err}");
    }

    /// Records the state object covers are deleted once old enough; the others are kept.
    #[tokio::test]
    async fn clean_deletes_only_old_covered_records() {
        let (location, object, memory) = memory();
        let (store, lock) = open(&location).await;
        create(&store, 10).await;
        // Still young: a fenced writer may yet try their slots.
        store.finish().await.unwrap();
        let records = |names: Vec<String>| names.iter().filter(|n| n.contains(".journal/")).count();
        let before = records(names(&memory).await);
        assert!(before > 1, "{before}");
        // A record past the state object (a run in flight) stays whatever its age.
        let state = store.snapshot();
        let ahead = record(&object, &state.lineage, state.serial + 1);
        ahead
            .put_if(changes(&state, [&"k000".to_owned()], "x").unwrap(), None)
            .await
            .unwrap();
        let other = record(&object, "other-lineage", 1);
        other.put_if(b"{}".to_vec(), None).await.unwrap();
        let deleted = clean(&object, &state.lineage, state.serial, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(deleted, before + 1);
        let left: Vec<String> = names(&memory)
            .await
            .into_iter()
            .filter(|n| n.contains(".journal/"))
            .collect();
        assert_eq!(left, [ahead.path().to_string()]);
        lock.release().await.unwrap();
    }
}
