//! The writer's lock on a remote state: an object beside it (`<state>.lock`) taken by
//! create-if-absent, holding Terraform-style lock info and an expiry the holder renews while
//! it runs.
//!
//! No OS drops this lock when a runner is killed, so it expires: a lock past its expiry may
//! be taken over (itself a compare-and-swap, so two takers cannot both win), and
//! `connctl state unlock ID` releases one at once. Releasing writes a tombstone rather than
//! deleting: object stores have no conditional delete, and a read-then-delete could remove a
//! lock someone else just took. The lock is advisory; what fences a writer that lost it is the
//! compare-and-swap on every state write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::UpdateVersion;
use serde::{Deserialize, Serialize};

use crate::backend::RemoteObject;
use crate::lock::LockError;
use crate::state::{StateError, now};

/// How long a lock holds without renewal. A runner killed mid-apply blocks others this long
/// at most (or until `connctl state unlock`).
pub const LOCK_TTL: Duration = Duration::from_secs(10 * 60);

/// What the lock object holds (Terraform's LockInfo, plus an expiry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LockInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub operation: String,
    /// `user@host`.
    pub who: String,
    /// The connctl version that took the lock.
    pub version: String,
    pub created: String,
    /// The state the lock guards.
    pub path: String,
    pub expires: String,
    /// Set when released: the lock is free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
    /// Set when released by `state unlock` rather than by its holder, which may still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
}

impl LockInfo {
    fn new(state_url: &str, operation: &str, ttl: Duration) -> LockInfo {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into());
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation.to_owned(),
            who: format!("{user}@{host}"),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            created: now(),
            path: state_url.to_owned(),
            expires: in_future(ttl),
            released: None,
            forced: None,
        }
    }

    /// One line naming the holder, for "locked by …".
    pub fn describe(&self) -> String {
        format!(
            "lock {} held by {}, `{}`, since {}, expires {}",
            self.id, self.who, self.operation, self.created, self.expires
        )
    }

    fn is_free(&self) -> bool {
        self.released.is_some() || expired(&self.expires)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }
}

fn in_future(d: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + d;
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

/// An expiry that cannot be read counts as not expired: only `state unlock` frees it.
fn expired(expires: &str) -> bool {
    time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
        .is_ok_and(|at| at < time::OffsetDateTime::now_utc())
}

/// A remote lock held by this run. Renewed in the background until released.
#[derive(Debug)]
pub struct RemoteLock {
    object: RemoteObject,
    /// Taken from a holder that did not release it (expired, or freed by `state unlock`).
    taken_over: bool,
    shared: Arc<Shared>,
    renewer: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    info: Mutex<LockInfo>,
    version: Mutex<UpdateVersion>,
    /// Set when a renewal found the lock taken over, or the lock ran out unrenewed.
    lost: AtomicBool,
}

impl RemoteLock {
    /// Takes the lock beside `state`, waiting up to `wait` (zero: fail at once) while
    /// another run holds it.
    pub async fn acquire(
        state: &RemoteObject,
        operation: &str,
        wait: Duration,
        ttl: Duration,
    ) -> Result<RemoteLock, LockError> {
        let object = lock_object(state);
        let info = LockInfo::new(state.url(), operation, ttl);
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(500);
        let (version, taken_over) = loop {
            match try_acquire(&object, &info).await {
                Ok(taken) => break taken,
                Err(held @ LockError::RemoteHeld { .. }) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Err(held);
                    }
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(Duration::from_secs(16));
                }
                Err(e) => return Err(e),
            }
        };
        let shared = Arc::new(Shared {
            info: Mutex::new(info),
            version: Mutex::new(version),
            lost: AtomicBool::new(false),
        });
        let renewer = tokio::spawn(renew(object.clone(), shared.clone(), ttl));
        Ok(RemoteLock {
            object,
            taken_over,
            shared,
            renewer,
        })
    }

    pub fn id(&self) -> String {
        lock(&self.shared.info).id.clone()
    }

    /// The lock was taken from a run that may still be going: the new holder should write
    /// the state once before anything else, so that run's next write is refused.
    pub fn taken_over(&self) -> bool {
        self.taken_over
    }

    /// Fails if the lock was taken over or ran out: the run must stop writing.
    pub fn verify(&self) -> Result<(), LockError> {
        if self.shared.lost.load(Ordering::SeqCst) || expired(&lock(&self.shared.info).expires) {
            return Err(LockError::Lost {
                path: self.object.url().into(),
            });
        }
        Ok(())
    }

    /// Releases the lock (a tombstone, written only if the lock is still ours).
    pub async fn release(&self) -> Result<(), LockError> {
        self.renewer.abort();
        // Whatever the store answers, this run writes no more.
        self.shared.lost.store(true, Ordering::SeqCst);
        let mut info = lock(&self.shared.info).clone();
        info.released = Some(now());
        let version = lock(&self.shared.version).clone();
        self.object
            .put_if(info.bytes(), Some(version))
            .await
            .map(drop)
            .map_err(|e| remote(&self.object, e))
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `s3://b/state.json` → `s3://b/state.json.lock`.
pub fn lock_object(state: &RemoteObject) -> RemoteObject {
    state.sibling(".lock")
}

fn remote(object: &RemoteObject, e: StateError) -> LockError {
    LockError::Remote {
        url: object.url().to_owned(),
        reason: e.to_string(),
    }
}

fn held(object: &RemoteObject, holder: &LockInfo) -> LockError {
    LockError::RemoteHeld {
        // Named after the state it guards, not the lock object.
        url: object
            .url()
            .strip_suffix(".lock")
            .unwrap_or(object.url())
            .to_owned(),
        holder: holder.describe(),
        id: holder.id.clone(),
    }
}

async fn read(object: &RemoteObject) -> Result<Option<(LockInfo, UpdateVersion)>, LockError> {
    let Some((bytes, version)) = object.get().await.map_err(|e| remote(object, e))? else {
        return Ok(None);
    };
    let info = serde_json::from_slice(&bytes).map_err(|e| LockError::Remote {
        url: object.url().to_owned(),
        reason: format!("the lock object is not connctl lock info: {e}"),
    })?;
    Ok(Some((info, version)))
}

/// The lock's version, and whether it was taken from a holder that did not release it.
async fn try_acquire(object: &RemoteObject, info: &LockInfo) -> Result<(UpdateVersion, bool), LockError> {
    // Create-if-absent; else read back what is there.
    match object.put_if(info.bytes(), None).await {
        Ok(version) => return Ok((version, false)),
        Err(StateError::Conflict { .. }) => {}
        Err(e) => return Err(remote(object, e)),
    }
    let Some((current, version)) = read(object).await? else {
        // Released and deleted by hand in between: try once more next round.
        return Err(LockError::RemoteHeld {
            url: info.path.clone(),
            holder: "(the lock changed while it was read)".into(),
            id: String::new(),
        });
    };
    if current.id == info.id {
        // Our own create, whose answer was lost and which the client retried.
        return Ok((version, false));
    }
    if !current.is_free() {
        return Err(held(object, &current));
    }
    let taken_over = current.released.is_none() || current.forced.is_some();
    // Released or expired: take it over, if nobody else does first.
    match object.put_if(info.bytes(), Some(version)).await {
        Ok(version) => Ok((version, taken_over)),
        Err(StateError::Conflict { .. }) => match read(object).await? {
            Some((now, version)) if now.id == info.id => Ok((version, taken_over)),
            Some((now, _)) => Err(held(object, &now)),
            None => Err(LockError::RemoteHeld {
                url: info.path.clone(),
                holder: "(the lock changed while it was taken)".into(),
                id: String::new(),
            }),
        },
        Err(e) => Err(remote(object, e)),
    }
}

/// Pushes the expiry out every third of the lifetime. A refused renewal means the lock was
/// taken over: the run is told through [`RemoteLock::verify`]. Other failures are retried at
/// the next tick; the lock counts as lost once its expiry passes unrenewed.
async fn renew(object: RemoteObject, shared: Arc<Shared>, ttl: Duration) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(period).await;
        let mut info = lock(&shared.info).clone();
        info.expires = in_future(ttl);
        let version = lock(&shared.version).clone();
        match object.put_if(info.bytes(), Some(version)).await {
            Ok(version) => {
                *lock(&shared.version) = version;
                *lock(&shared.info) = info;
            }
            Err(StateError::Conflict { .. }) => {
                shared.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!("cannot renew the state lock {}: {e}", object.url()),
        }
    }
}

/// Who holds the lock beside `state`, if anyone.
pub async fn holder(state: &RemoteObject) -> Result<Option<LockInfo>, LockError> {
    let object = lock_object(state);
    Ok(read(&object)
        .await?
        .map(|(info, _)| info)
        .filter(|i| i.released.is_none()))
}

/// `connctl state unlock ID`: releases the lock if `id` is the one held.
pub async fn force_unlock(state: &RemoteObject, id: &str) -> Result<LockInfo, LockError> {
    let object = lock_object(state);
    let not_held = || LockError::NotHeld {
        url: state.url().to_owned(),
        id: id.to_owned(),
    };
    let Some((mut info, version)) = read(&object).await? else {
        return Err(not_held());
    };
    if info.released.is_some() {
        return Err(not_held());
    }
    if info.id != id {
        return Err(LockError::OtherId {
            url: state.url().to_owned(),
            id: id.to_owned(),
            holder: info.describe(),
        });
    }
    let holder = info.clone();
    info.released = Some(now());
    info.forced = info.released.clone();
    object
        .put_if(info.bytes(), Some(version))
        .await
        .map_err(|e| remote(&object, e))?;
    Ok(holder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::StateLocation;
    use object_store::memory::InMemory;

    fn state() -> RemoteObject {
        match StateLocation::in_store("memory://b/state.json", Arc::new(InMemory::new()), "state.json") {
            StateLocation::Remote(object) => object,
            StateLocation::Local(_) => unreachable!(),
        }
    }

    #[tokio::test]
    async fn a_second_writer_is_refused_naming_the_holder_until_release() {
        let state = state();
        let first = RemoteLock::acquire(&state, "connctl apply", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
        let err = RemoteLock::acquire(&state, "connctl import", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&first.id()), "{msg}");
        assert!(msg.contains("`connctl apply`"), "{msg}");
        assert!(msg.contains("memory://b/state.json"), "{msg}");
        assert_eq!(holder(&state).await.unwrap().unwrap().id, first.id());
        first.release().await.unwrap();
        assert!(holder(&state).await.unwrap().is_none());
        RemoteLock::acquire(&state, "connctl import", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_waiting_writer_gets_the_lock_when_it_is_released() {
        let state = state();
        let first = RemoteLock::acquire(&state, "a", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
        let waiter = {
            let state = state.clone();
            tokio::spawn(
                async move { RemoteLock::acquire(&state, "b", Duration::from_secs(20), LOCK_TTL).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        first.release().await.unwrap();
        let second = waiter.await.unwrap().unwrap();
        assert_eq!(holder(&state).await.unwrap().unwrap().id, second.id());
    }

    #[tokio::test]
    async fn an_expired_lock_is_taken_over_and_its_holder_learns_it() {
        let state = state();
        // A lock that lives 1 s and is renewed every 333 ms; stop the renewals (a frozen runner).
        let first = RemoteLock::acquire(&state, "a", Duration::ZERO, Duration::from_secs(1))
            .await
            .unwrap();
        first.renewer.abort();
        first.verify().unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let second = RemoteLock::acquire(&state, "b", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
        assert!(matches!(first.verify(), Err(LockError::Lost { .. })));
        second.verify().unwrap();
        // The old holder's release must not free the new holder's lock.
        assert!(first.release().await.is_err());
        assert_eq!(holder(&state).await.unwrap().unwrap().id, second.id());
    }

    #[tokio::test]
    async fn a_lock_holding_our_own_id_is_ours() {
        let state = state();
        let object = lock_object(&state);
        let info = LockInfo::new(state.url(), "a", LOCK_TTL);
        // Our create landed but its answer was lost; the retry finds our own lock there.
        object.put_if(info.bytes(), None).await.unwrap();
        let mut changed = info.clone();
        changed.created = "later".into();
        assert!(!try_acquire(&object, &changed).await.unwrap().1);
        // Someone else's is not.
        let other = LockInfo::new(state.url(), "b", LOCK_TTL);
        assert!(matches!(
            try_acquire(&object, &other).await,
            Err(LockError::RemoteHeld { .. })
        ));
    }

    #[tokio::test]
    async fn unlock_needs_the_holders_id() {
        let state = state();
        let first = RemoteLock::acquire(&state, "a", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
        let err = force_unlock(&state, "not-the-id").await.unwrap_err().to_string();
        assert!(err.contains(&first.id()), "{err}");
        let freed = force_unlock(&state, &first.id()).await.unwrap();
        assert_eq!(freed.id, first.id());
        assert!(matches!(
            force_unlock(&state, &first.id()).await,
            Err(LockError::NotHeld { .. })
        ));
        // The next holder knows it took the lock from a run that may still be going.
        let second = RemoteLock::acquire(&state, "b", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
        assert!(second.taken_over());
        second.release().await.unwrap();
        // A lock released by its holder is simply free.
        let third = RemoteLock::acquire(&state, "c", Duration::ZERO, LOCK_TTL)
            .await
            .unwrap();
        assert!(!third.taken_over());
    }
}
