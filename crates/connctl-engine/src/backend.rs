//! Where the state lives and how it is read and written: a local file (today's OS lock and
//! atomic rename) or an object in S3, Google Cloud Storage or Azure Blob Storage through
//! `object_store`, where every full write is a compare-and-swap on the version last read or
//! written, and reads fold in the [`crate::journal`] records written after it. A writer whose
//! state changed under it fails its next write with [`StateError::Conflict`] and stops before
//! its next Immuta call.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};

use crate::state::{State, StateError, resolve_path};

/// A state location as the user gave it: `--state`, `CONNCTL_STATE` or `[state]` in
/// connctl.toml.
#[derive(Clone)]
pub enum StateLocation {
    /// A file on this machine (a plain path or `file://`), symlinks resolved.
    Local(PathBuf),
    /// An object in a bucket or container.
    Remote(RemoteObject),
}

/// One object of an object store, named by the URL it was reached with.
#[derive(Clone)]
pub struct RemoteObject {
    url: String,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

/// The state as read, with what the next write must compare against.
pub struct Loaded {
    pub state: State,
    /// A state was there (else `state` is a new, empty one).
    pub found: bool,
    /// The object's version, for the next compare-and-swap (`None` for a local file, and
    /// where no object was found: the first write then creates it).
    pub version: Option<UpdateVersion>,
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Local(path) => write!(f, "{}", path.display()),
            StateLocation::Remote(object) => f.write_str(&object.url),
        }
    }
}

impl fmt::Display for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteObject({})", self.url)
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateLocation({self})")
    }
}

impl StateLocation {
    /// `s3://bucket/key`, `gs://bucket/key`, `az://container/key` (or `azure://`),
    /// `file:///path` or a plain path. Credentials and endpoints come from each cloud's
    /// standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn parse(text: &str) -> Result<StateLocation, StateError> {
        let bad = |reason: String| StateError::BadLocation {
            location: text.to_owned(),
            reason,
        };
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(StateLocation::Local(resolve_path(Path::new(text))?));
        };
        let url = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match scheme {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("not an absolute file path".into()))?;
                return Ok(StateLocation::Local(resolve_path(&path)?));
            }
            "s3" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "azure" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(text)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            other => {
                return Err(bad(format!(
                    "unsupported scheme `{other}://`; use s3://, gs://, az://, file:// or a path"
                )));
            }
        };
        let path = ObjectPath::from_url_path(url.path()).map_err(|e| bad(e.to_string()))?;
        if path.as_ref().is_empty() || url.path().ends_with('/') {
            return Err(bad("the URL names a bucket or folder, not the state object (e.g. s3://bucket/connctl/state.json)".into()));
        }
        Ok(StateLocation::Remote(RemoteObject {
            url: text.to_owned(),
            store,
            path,
        }))
    }

    /// A location in any object store (tests use `object_store::memory::InMemory`).
    pub fn in_store(url: &str, store: Arc<dyn ObjectStore>, path: &str) -> StateLocation {
        StateLocation::Remote(RemoteObject {
            url: url.to_owned(),
            store,
            path: ObjectPath::from(path),
        })
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, StateLocation::Remote(_))
    }

    /// Where `apply` saves scripts for the manual executor: beside a local state, else in
    /// `.connctl/scripts` of the working folder.
    pub fn scripts_dir(&self) -> PathBuf {
        match self {
            StateLocation::Local(path) => path.parent().unwrap_or(Path::new(".")).join("scripts"),
            StateLocation::Remote(_) => PathBuf::from(".connctl/scripts"),
        }
    }

    /// The name used in errors built by the state code (a path, or the URL).
    pub fn display_path(&self) -> PathBuf {
        match self {
            StateLocation::Local(path) => path.clone(),
            StateLocation::Remote(object) => PathBuf::from(&object.url),
        }
    }

    /// Reads the state; none there is an empty state with a new lineage.
    pub async fn load(&self) -> Result<Loaded, StateError> {
        match self {
            StateLocation::Local(path) => {
                let found = path.exists();
                let state = State::load(path)?;
                // The local file is guarded by the OS lock, not by versions.
                Ok(Loaded {
                    state,
                    found,
                    version: None,
                })
            }
            StateLocation::Remote(object) => object.load().await,
        }
    }

    /// Writes `bytes`, the whole state at `serial` of `lineage`, as the next revision:
    /// atomically for a file; for an object, after claiming `serial` in the journal, and only
    /// if the object is still at `version` (`None`: only if there is none yet). Returns the
    /// new version (`None` for a file).
    pub async fn write(
        &self,
        bytes: Vec<u8>,
        lineage: &str,
        serial: u64,
        version: Option<UpdateVersion>,
    ) -> Result<Option<UpdateVersion>, StateError> {
        match self {
            StateLocation::Local(path) => {
                let target = path.clone();
                let written =
                    tokio::task::spawn_blocking(move || crate::state::write_atomic(&target, &bytes))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                written.map_err(|reason| StateError::Write {
                    path: path.clone(),
                    reason,
                })?;
                Ok(None)
            }
            StateLocation::Remote(object) => {
                let marker = crate::journal::marker(lineage, serial, &object.url)?;
                crate::journal::record(object, lineage, serial)
                    .put_if(marker, None)
                    .await?;
                object.put_if(bytes, version).await.map(Some)
            }
        }
    }
}

impl StateLocation {
    /// Bumps the serial and writes `state` as its next revision (for commands that write
    /// once; `apply` writes through a [`crate::store::StateStore`]).
    pub async fn save(
        &self,
        state: &mut State,
        version: Option<UpdateVersion>,
    ) -> Result<Option<UpdateVersion>, StateError> {
        let before = state.serial;
        let bytes = state.next_revision(&self.display_path())?;
        let written = self.write(bytes, &state.lineage, state.serial, version).await;
        if written.is_err() {
            // Not written: the next attempt takes the same serial (a stale writer must not
            // claim serials ahead of the writer that fenced it).
            state.serial = before;
        }
        written
    }
}

impl StateLocation {
    /// Reads the state for the holder of `lock`. If the lock was taken from a run that may
    /// still be going (it expired, or `state unlock` freed it), writes the state once at once:
    /// that run's next write then fails its compare-and-swap, and it stops before its next
    /// Immuta call.
    pub async fn load_for_writer(&self, lock: &crate::lock::WriterLock) -> Result<Loaded, StateError> {
        let mut loaded = self.load().await?;
        if !lock.taken_over() || !loaded.found {
            return Ok(loaded);
        }
        let mut attempts = 0;
        loop {
            match self.save(&mut loaded.state, loaded.version.clone()).await {
                Ok(version) => {
                    loaded.version = version;
                    return Ok(loaded);
                }
                // The old holder wrote in between: read again and fence again.
                Err(StateError::Conflict { .. }) if attempts < 5 => {
                    attempts += 1;
                    loaded = self.load().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl RemoteObject {
    /// The object `suffix` appended to this one's name (the lock: `state.json.lock`).
    pub fn sibling(&self, suffix: &str) -> RemoteObject {
        RemoteObject {
            url: format!("{}{suffix}", self.url),
            store: self.store.clone(),
            path: ObjectPath::from(format!("{}{suffix}", self.path)),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn path(&self) -> &ObjectPath {
        &self.path
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(crate) fn failed(&self, e: impl fmt::Display) -> StateError {
        StateError::Remote {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

    /// The state object with the journal records written after it folded in. A full write
    /// claimed but not yet visible is waited for a little: it is usually in flight.
    async fn load(&self) -> Result<Loaded, StateError> {
        let mut attempts = 0;
        loop {
            let Some((bytes, version)) = self.get().await? else {
                return Ok(Loaded {
                    state: State::new(),
                    found: false,
                    version: None,
                });
            };
            let text = String::from_utf8(bytes).map_err(|e| StateError::Corrupt {
                path: PathBuf::from(&self.url),
                reason: e.to_string(),
            })?;
            let mut state = State::parse(&text, &PathBuf::from(&self.url))?;
            let folded = crate::journal::fold(self, &mut state).await?;
            if folded.unfinished_full && attempts < 5 {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempts)).await;
                continue;
            }
            return Ok(Loaded {
                state,
                found: true,
                version: Some(version),
            });
        }
    }

    /// The object's bytes and version, or `None` if there is no object.
    pub async fn get(&self) -> Result<Option<(Vec<u8>, UpdateVersion)>, StateError> {
        match self.store.get(&self.path).await {
            Ok(result) => {
                let version = UpdateVersion {
                    e_tag: result.meta.e_tag.clone(),
                    version: result.meta.version.clone(),
                };
                let bytes = result.bytes().await.map_err(|e| self.failed(e))?;
                Ok(Some((bytes.to_vec(), version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Puts `bytes` if the object is still at `version` (`None`: if there is no object).
    ///
    /// A refused write is read back: a conditional PUT that committed but lost its answer is
    /// retried by the client and then refused against itself, so identical bytes there mean
    /// the write is ours.
    pub async fn put_if(
        &self,
        bytes: Vec<u8>,
        version: Option<UpdateVersion>,
    ) -> Result<UpdateVersion, StateError> {
        let mode = match version {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        let payload = PutPayload::from(bytes.clone());
        match self.store.put_opts(&self.path, payload, mode.into()).await {
            Ok(result) => Ok(UpdateVersion {
                e_tag: result.e_tag,
                version: result.version,
            }),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                match self.get().await? {
                    Some((current, version)) if current == bytes => Ok(version),
                    _ => Err(StateError::Conflict {
                        url: self.url.clone(),
                    }),
                }
            }
            Err(e) => Err(self.failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn memory() -> (StateLocation, Arc<InMemory>) {
        let store = Arc::new(InMemory::new());
        (
            StateLocation::in_store("memory://bucket/state.json", store.clone(), "state.json"),
            store,
        )
    }

    #[tokio::test]
    async fn a_missing_object_is_a_new_state_and_the_first_write_creates_it() {
        let (location, _) = memory();
        let loaded = location.load().await.unwrap();
        assert!(!loaded.found);
        let mut state = loaded.state;
        let v1 = location.save(&mut state, None).await.unwrap();
        let again = location.load().await.unwrap();
        assert_eq!(again.state, state);
        assert!(again.found);
        assert_eq!(again.version, v1);
    }

    #[tokio::test]
    async fn a_stale_writer_is_refused() {
        let (location, _) = memory();
        let mut state = State::new();
        let v1 = location.save(&mut state, None).await.unwrap();
        // Two writers read v1; the first to write wins, the second is refused.
        let mut a = state.clone();
        let mut b = state.clone();
        let v2 = location.save(&mut a, v1.clone()).await.unwrap();
        b.salt.push('x');
        let err = location.save(&mut b, v1.clone()).await.unwrap_err();
        assert!(matches!(err, StateError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("memory://bucket/state.json"), "{err}");
        assert_eq!(b.serial, 1, "a refused write keeps its serial");
        // A second "create" is refused as well.
        state.salt.push('y');
        let err = location.save(&mut state, None).await.unwrap_err();
        assert!(matches!(err, StateError::Conflict { .. }), "{err}");
        // The winner goes on from its own version.
        location.save(&mut a, v2).await.unwrap();
        assert_eq!(location.load().await.unwrap().state, a);
    }

    #[tokio::test]
    async fn a_refused_write_of_identical_bytes_is_taken_as_ours() {
        let (location, _) = memory();
        let StateLocation::Remote(object) = &location else {
            unreachable!()
        };
        let bytes = State::new().next_revision(Path::new("x")).unwrap();
        let v1 = object.put_if(bytes.clone(), None).await.unwrap();
        // The answer was lost and the create retried: it meets itself.
        let again = object.put_if(bytes, None).await.unwrap();
        assert_eq!(again, v1);
        let err = object.put_if(b"{}".to_vec(), None).await.unwrap_err();
        assert!(matches!(err, StateError::Conflict { .. }), "{err}");
    }

    #[test]
    fn urls_are_checked() {
        for (text, needle) in [
            ("ftp://host/x.json", "unsupported scheme"),
            ("s3://bucket/", "names a bucket or folder"),
        ] {
            let err = StateLocation::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
        // Building a client reads only the environment: nothing is contacted until a read.
        for url in ["s3://bucket/prod/state.json", "gs://bucket/prod/state.json"] {
            let remote = StateLocation::parse(url).unwrap();
            assert!(remote.is_remote(), "{url}");
            assert_eq!(remote.to_string(), url);
            assert_eq!(remote.scripts_dir(), PathBuf::from(".connctl/scripts"));
        }
        let local = StateLocation::parse("some/state.json").unwrap();
        assert!(!local.is_remote());
        assert_eq!(local.to_string(), "some/state.json");
        let file = StateLocation::parse("file:///tmp/x/state.json").unwrap();
        assert_eq!(file.to_string(), "/tmp/x/state.json");
    }
}
