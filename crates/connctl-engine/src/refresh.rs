//! Refresh: read what Immuta really has, concurrently and no more than the plan needs.
//!
//! One paginated `POST /data/object/search` lists the connections. Then, for each key that is
//! both live and managed (in the state with an applied spec), and only those, it reads the
//! connection, its integration and its settings object — each once — with at most
//! `parallelism` requests in flight. Keys that are desired but not managed need only the
//! listing (create or import), and unmanaged keys are never read. A 404 on the integration or
//! the data object of a listed connection is a health problem, never "nothing changed"; so is an
//! integration whose status says it failed.
//!
//! [`Scope`] and [`select`] decide which keys a plan reads: every managed one
//! (`--refresh=true`), or only those the YAML changed since the last apply (`--refresh=changed`,
//! plans proportional to the change; the others' drift is `connctl drift`'s job).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use connctl_immuta::{ApiError, LiveConnection, LiveIntegration, LiveObject};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::fields::{self, FieldMap};
use crate::immuta::Immuta;
use crate::plan::{DesiredView, HealthIssue, HealthKind, Plan};
use crate::state::{State, Step};

/// Which managed connections a plan reads from Immuta (`plan --refresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every managed connection of the plan (`--refresh=true`).
    All,
    /// Only the connections whose desired state differs from what the state last applied, the
    /// added and removed ones, and any with an interrupted operation (`--refresh=changed`).
    Changed,
}

/// The keys one refresh reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub scope: Scope,
    /// The keys to refresh (of these, only managed ones are read one by one; the listing
    /// answers for the rest).
    pub keys: BTreeSet<String>,
    /// With [`Scope::Changed`]: how many managed connections were left unread because nothing
    /// about them changed since the last apply.
    pub not_read: Option<usize>,
}

/// Chooses the keys to refresh among `desired` (already narrowed to `--target`) and the state's
/// connections matching `in_scope`. Decided from the state alone: no Immuta read.
pub fn select(
    scope: Scope,
    desired: &BTreeMap<String, DesiredView<'_>>,
    state: &State,
    in_scope: impl Fn(&str) -> bool,
) -> Selection {
    let mut keys: BTreeSet<String> = desired.keys().cloned().collect();
    if scope == Scope::All {
        keys.extend(state.connections.keys().cloned());
        return Selection {
            scope,
            keys,
            not_read: None,
        };
    }
    let mut not_read = 0;
    for (key, s) in &state.connections {
        if !in_scope(key) {
            continue;
        }
        // Unchanged: registered as the YAML still wants it, nothing left half-done, and the
        // last job followed did its work (a failed update job may have changed nothing).
        let unchanged = s.pending.is_none()
            && s.step == Step::Registered
            && !s.last_bulk().is_some_and(|b| b.did_not_complete())
            && desired
                .get(key)
                .is_some_and(|w| s.applied.as_ref() == Some(&*w.fields));
        if unchanged {
            keys.remove(key);
            not_read += 1;
        } else {
            keys.insert(key.clone());
        }
    }
    Selection {
        scope,
        keys,
        not_read: Some(not_read),
    }
}

/// What Immuta showed.
#[derive(Debug, Default, Clone)]
pub struct Live {
    /// Every connection key Immuta listed.
    pub keys: BTreeSet<String>,
    /// Managed connections, flattened (non-secret fields only).
    pub fields: BTreeMap<String, FieldMap>,
    /// The integration id Immuta reports per managed key.
    pub integration_ids: BTreeMap<String, String>,
    /// Objects below each managed connection, when Immuta's object says (`childCount`).
    pub child_counts: BTreeMap<String, u64>,
    /// Problems seen with managed connections.
    pub health: Vec<HealthIssue>,
}

impl Live {
    /// The integration ids read for connections the state records without them (or with
    /// another): an apply writes them into the state, so that later refreshes read each of
    /// those connections in one round trip rather than two chained ones (the connection, then
    /// the integration it names).
    pub fn learned(&self, state: &State) -> BTreeMap<String, String> {
        self.integration_ids
            .iter()
            .filter(|(key, id)| {
                state
                    .connections
                    .get(*key)
                    .is_some_and(|s| s.integration_id.as_ref() != Some(*id))
            })
            .map(|(k, id)| (k.clone(), id.clone()))
            .collect()
    }

    /// A stable fingerprint of what was read for `key` (`absent` when not live).
    pub fn fingerprint(&self, key: &str) -> String {
        if !self.keys.contains(key) {
            return "absent".into();
        }
        match self.fields.get(key) {
            Some(f) => fields::digest(f),
            None => {
                let digest = Sha256::digest(format!("listed:{key}").as_bytes());
                format!("sha256:{}", hex::encode(digest))
            }
        }
    }
}

/// Reads Immuta for the keys in `wanted` (plus the listing).
pub async fn refresh(
    client: &impl Immuta,
    state: &State,
    wanted: &BTreeSet<String>,
    parallelism: usize,
) -> Result<Live, ApiError> {
    let hits = client
        .list_connections(state.connections.len(), parallelism)
        .await?;
    let keys: BTreeSet<String> = hits.iter().filter_map(|h| h.key().map(str::to_owned)).collect();
    let to_read = managed(state, wanted.iter().filter(|k| keys.contains(*k)));
    let reads = read_many(client, to_read, parallelism).await?;
    Ok(assemble(keys, reads))
}

/// Reads Immuta for a [`Selection`]. With [`Scope::Changed`] the few reads do not wait for the
/// listing: they run beside it (the listing's pages, as many as the state's count needs, up to
/// four, are asked at once in slots of `parallelism` set aside for them), and a key the listing
/// lacks but a read finds counts as live.
///
/// The listing is kept because correctness needs it: an added key may already exist in Immuta
/// (the plan says import, never create over it, and a lost state is refused loudly), and a
/// removed one may be gone already (forget, not delete). One page answers for 1,000 keys, where
/// reading each added or removed key would cost a request apiece — every key, after a lost state.
pub async fn refresh_selected(
    client: &impl Immuta,
    state: &State,
    selection: &Selection,
    parallelism: usize,
) -> Result<Live, ApiError> {
    if selection.scope == Scope::All {
        return refresh(client, state, &selection.keys, parallelism).await;
    }
    let to_read = managed(state, selection.keys.iter());
    // The listing's pages and the reads share `parallelism`.
    let expected = state.connections.len();
    let pages = connctl_immuta::pages_at_once(expected, parallelism.saturating_sub(1));
    let reading = read_many(client, to_read, parallelism.saturating_sub(pages));
    let listing = client.list_connections(expected, pages);
    let (hits, reads) = tokio::try_join!(listing, reading)?;
    let mut keys: BTreeSet<String> = hits.iter().filter_map(|h| h.key().map(str::to_owned)).collect();
    keys.extend(reads.iter().filter(|(_, r)| r.is_some()).map(|(k, _)| k.clone()));
    Ok(assemble(keys, reads))
}

/// The keys among `keys` that are managed (in the state with an applied spec), with the
/// integration id the state knows.
fn managed<'a>(state: &State, keys: impl Iterator<Item = &'a String>) -> Vec<(String, Option<String>)> {
    keys.filter_map(|k| {
        let s = state.connections.get(k)?;
        s.applied.as_ref()?;
        Some((k.clone(), s.integration_id.clone()))
    })
    .collect()
}

/// [`Live`] from the listed keys and the connections read.
fn assemble(keys: BTreeSet<String>, reads: BTreeMap<String, Option<Seen>>) -> Live {
    let mut live = Live {
        keys,
        ..Live::default()
    };
    for (key, read) in reads {
        match read {
            Some(seen) => {
                if let Some(id) = seen.integration_id {
                    live.integration_ids.insert(key.clone(), id);
                }
                if let Some(n) = seen.child_count {
                    live.child_counts.insert(key.clone(), n);
                }
                live.health.extend(seen.health);
                live.fields.insert(key, seen.fields);
            }
            // Listed but gone by the time it was read: treat as absent.
            None => {
                live.keys.remove(&key);
            }
        }
    }
    live
}

/// One connection as Immuta shows it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub fields: FieldMap,
    pub integration_id: Option<String>,
    pub child_count: Option<u64>,
    pub health: Vec<HealthIssue>,
}

impl Seen {
    fn new(
        key: &str,
        connection: LiveConnection,
        integration: Integration,
        object: Option<LiveObject>,
    ) -> Seen {
        let mut health = Vec::new();
        let issue = |kind, detail: String| HealthIssue {
            key: key.to_owned(),
            kind,
            detail,
        };
        match &integration {
            Integration::Missing(id) => health.push(issue(
                HealthKind::IntegrationMissing,
                format!("integration {id} backing it is gone from Immuta (GET /integrations/{id}: 404)"),
            )),
            Integration::Read(i) => {
                let status = i.status.as_deref().unwrap_or_default();
                let lower = status.to_ascii_lowercase();
                if lower.contains("fail") || lower.contains("error") {
                    let id = i.id.as_deref().unwrap_or("?");
                    health.push(issue(
                        HealthKind::IntegrationFailed,
                        format!("integration {id} reports status `{status}` in Immuta"),
                    ));
                }
            }
            Integration::None => {}
        }
        if object.is_none() {
            health.push(issue(
                HealthKind::ObjectMissing,
                format!("its data object is gone from Immuta (GET /data/object/{key}: 404)"),
            ));
        }
        let read = match &integration {
            Integration::Read(i) => Some(i),
            _ => None,
        };
        Seen {
            integration_id: connection.native_integration_id.clone(),
            fields: fields::live(&connection, read, object.as_ref()),
            child_count: object.as_ref().and_then(|o| o.child_count),
            health,
        }
    }
}

/// The integration of a connection as read.
#[derive(Debug)]
enum Integration {
    /// The connection names no integration.
    None,
    /// It names one, and `GET /integrations/{id}` answered 404.
    Missing(String),
    Read(LiveIntegration),
}

/// Fills in the number of child objects of each cascading change that lacks it, by searching
/// the connection's children (`POST /data/object/search/{key}`): the plan must say what a
/// status change reaches.
pub async fn count_cascades(client: &impl Immuta, plan: &mut Plan) -> Result<(), ApiError> {
    for change in &mut plan.changes {
        let Some(cascade) = change.cascade.as_mut() else {
            continue;
        };
        if cascade.child_objects.is_some() {
            continue;
        }
        cascade.child_objects = match client.count_children(&change.key).await {
            Ok(n) => n,
            // Its object is gone: the health problem says so; the count stays unknown.
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        change.note = Some(cascade.note());
    }
    Ok(())
}

/// Reads each `(key, known integration id)` — connection, integration and settings, each
/// once — with at most `parallelism` requests in flight. `None` for a key Immuta does not have.
pub async fn read_many(
    client: &impl Immuta,
    keys: Vec<(String, Option<String>)>,
    parallelism: usize,
) -> Result<BTreeMap<String, Option<Seen>>, ApiError> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (key, known_integration) in keys {
        let client = client.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let read = read_one(&client, &limit, &key, known_integration).await;
            (key, read)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (key, read) = crate::tasks::joined(joined);
        let seen =
            read?.map(|(connection, integration, object)| Seen::new(&key, connection, integration, object));
        out.insert(key, seen);
    }
    Ok(out)
}

type Read = Option<(LiveConnection, Integration, Option<LiveObject>)>;

async fn read_one(
    client: &impl Immuta,
    limit: &Semaphore,
    key: &str,
    known_integration: Option<String>,
) -> Result<Read, ApiError> {
    let permit = |_| ApiError::Decode {
        path: "refresh".into(),
        reason: "semaphore closed".into(),
    };
    // The three reads are independent when the integration id is already known.
    let connection = async {
        let _p = limit.acquire().await.map_err(permit)?;
        client.get_connection(key).await
    };
    let object = async {
        let _p = limit.acquire().await.map_err(permit)?;
        client.get_object(key).await
    };
    let integration = |id: Option<String>| async move {
        let Some(id) = id else { return Ok(None) };
        let _p = limit.acquire().await.map_err(permit)?;
        client.get_integration(&id).await
    };
    let (connection, object, mut read) = if known_integration.is_some() {
        tokio::try_join!(connection, object, integration(known_integration.clone()))?
    } else {
        let (connection, object) = tokio::try_join!(connection, object)?;
        let id = connection.as_ref().and_then(|c| c.native_integration_id.clone());
        (connection, object, integration(id).await?)
    };
    let Some(connection) = connection else {
        return Ok(None);
    };
    let named = connection.native_integration_id.clone();
    // The id in the state may be stale: the one the connection names now is the one that counts.
    if read.is_none() && named.is_some() && named != known_integration {
        read = integration(named.clone()).await?;
    }
    let id = named.or(known_integration);
    let integration = match (read, id) {
        (Some(i), _) => Integration::Read(i),
        (None, Some(id)) => Integration::Missing(id),
        (None, None) => Integration::None,
    };
    Ok(Some((connection, integration, object)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::{ConnectionState, Pending, PendingOp};

    fn spec(warehouse: &str) -> FieldMap {
        FieldMap::from([("warehouse".to_owned(), json!(warehouse))])
    }

    fn registered(applied: FieldMap) -> ConnectionState {
        let mut c = ConnectionState::new("Snowflake");
        c.step = Step::Registered;
        c.applied = Some(applied);
        c
    }

    /// The state has `same`, `edited`, `removed`, `interrupted`, `half-created` and
    /// `other-team`; the YAML has `same`, `edited` (changed), `interrupted`, `half-created` and
    /// `added`.
    fn world() -> (BTreeMap<String, DesiredView<'static>>, State) {
        let mut state = State::new();
        for key in ["same", "edited", "removed", "interrupted", "other-team"] {
            state.connections.insert(key.into(), registered(spec("WH")));
        }
        let mut interrupted = registered(spec("WH"));
        interrupted.pending = Some(Pending::new(PendingOp::Update, spec("WH")));
        state.connections.insert("interrupted".into(), interrupted);
        let mut half = ConnectionState::new("Snowflake");
        half.step = Step::Executed;
        state.connections.insert("half-created".into(), half);
        let desired = [
            ("same", "WH"),
            ("edited", "WH2"),
            ("interrupted", "WH"),
            ("half-created", "WH"),
            ("added", "WH"),
        ]
        .into_iter()
        .map(|(k, wh)| {
            let view = DesiredView {
                technology: "Snowflake",
                fields: std::borrow::Cow::Owned(spec(wh)),
                protect: false,
            };
            (k.to_owned(), view)
        })
        .collect();
        (desired, state)
    }

    fn keys(selection: &Selection) -> Vec<&str> {
        selection.keys.iter().map(String::as_str).collect()
    }

    #[test]
    fn changed_reads_edited_added_removed_and_interrupted_connections_only() {
        let (desired, state) = world();
        let s = select(Scope::Changed, &desired, &state, |_| true);
        assert_eq!(
            keys(&s),
            [
                "added",
                "edited",
                "half-created",
                "interrupted",
                "other-team",
                "removed"
            ]
        );
        assert_eq!(s.not_read, Some(1));
    }

    #[test]
    fn changed_leaves_out_state_keys_outside_the_targets() {
        let (mut desired, state) = world();
        desired.retain(|k, _| k.starts_with('e') || k.starts_with('s'));
        let s = select(Scope::Changed, &desired, &state, |k| {
            k.starts_with('e') || k.starts_with('s')
        });
        assert_eq!(keys(&s), ["edited"]);
        assert_eq!(s.not_read, Some(1));
    }

    #[test]
    fn all_reads_every_desired_and_state_key_and_counts_nothing_unread() {
        let (desired, state) = world();
        let s = select(Scope::All, &desired, &state, |_| true);
        assert_eq!(s.keys.len(), 7);
        assert_eq!(s.not_read, None);
    }

    #[test]
    fn changed_reads_a_connection_whose_last_job_did_not_complete() {
        let (desired, mut state) = world();
        for (key, job) in [("same", "failed"), ("interrupted", "completed")] {
            if let Some(s) = state.connections.get_mut(key) {
                s.record_bulk("b-1".into(), "update");
                if let Some(b) = s.bulk_ids.last_mut() {
                    b.job_state = Some(job.into());
                }
            }
        }
        let s = select(Scope::Changed, &desired, &state, |_| true);
        assert!(s.keys.contains("same"), "{:?}", s.keys);
        assert_eq!(s.not_read, Some(0));
    }

    #[test]
    fn learned_ids_are_those_the_state_lacks_or_records_differently() {
        let (_, mut state) = world();
        if let Some(s) = state.connections.get_mut("same") {
            s.integration_id = Some("1".into());
        }
        if let Some(s) = state.connections.get_mut("edited") {
            s.integration_id = Some("2".into());
        }
        let live = Live {
            integration_ids: [
                ("same", "1"),
                ("edited", "20"),
                ("removed", "3"),
                ("not-in-state", "4"),
            ]
            .into_iter()
            .map(|(k, id)| (k.to_owned(), id.to_owned()))
            .collect(),
            ..Live::default()
        };
        let learned = live.learned(&state);
        let got: Vec<(&str, &str)> = learned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("edited", "20"), ("removed", "3")]);
    }
}
