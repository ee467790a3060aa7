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
    // A full write (journal marker + state object), then one journal record.
    assert_eq!(first.write_stats().0, 3);
    // The refused writer claimed nothing ahead of the one that goes on.
    first.update("d", "Snowflake", |_| ()).await.unwrap();
    let on_store = location.load().await.unwrap().state;
    assert_eq!(on_store.connections.keys().collect::<Vec<_>>(), ["a", "b", "d"]);
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

#[tokio::test]
async fn update_existing_changes_only_known_connections_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let mut initial = State::new();
    for key in ["a", "b", "c"] {
        initial
            .connections
            .insert(key.into(), ConnectionState::new("Snowflake"));
    }
    let store = StateStore::new(initial, path.clone());
    let none = store.update_existing(|_, _| false).await.unwrap();
    assert_eq!(none, 0);
    assert!(!path.exists(), "nothing changed, yet the state was written");
    let ids = BTreeMap::from([("a", "7"), ("c", "9"), ("unknown", "1")]);
    let changed = store
        .update_existing(|key, s| match ids.get(key) {
            Some(id) => {
                s.integration_id = Some((*id).to_owned());
                true
            }
            None => false,
        })
        .await
        .unwrap();
    assert_eq!(changed, 2);
    let on_disk = State::load(&path).unwrap();
    assert_eq!(on_disk.serial, 1, "two connections changed in one write");
    assert_eq!(on_disk.connections.len(), 3, "an unknown key was added");
    let id = |k: &str| on_disk.connections[k].integration_id.clone();
    assert_eq!(
        (id("a"), id("b"), id("c")),
        (Some("7".into()), None, Some("9".into()))
    );
    assert_eq!(on_disk, store.snapshot());
}
