//! Refresh: read what Immuta really has, concurrently and no more than the plan needs.
//!
//! One paginated `POST /data/object/search` lists the connections. Then, for each key that is
//! both live and managed (in the state with an applied spec), and only those, it reads the
//! connection, its integration and its settings object — each once — with at most
//! `parallelism` requests in flight. Keys that are desired but not managed need only the
//! listing (create or import), and unmanaged keys are never read. A 404 on the integration or
//! the data object of a listed connection is a health problem, never "nothing changed"; so is an
//! integration whose status says it failed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use connctl_immuta::{ApiError, LiveConnection, LiveIntegration, LiveObject};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::fields::{self, FieldMap};
use crate::immuta::Immuta;
use crate::plan::{HealthIssue, HealthKind, Plan};
use crate::state::State;

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
    let hits = client.list_connections().await?;
    let keys: BTreeSet<String> = hits.iter().filter_map(|h| h.key().map(str::to_owned)).collect();
    let managed: Vec<(String, Option<String>)> = wanted
        .iter()
        .filter(|k| keys.contains(*k))
        .filter_map(|k| {
            let s = state.connections.get(k)?;
            s.applied.as_ref()?;
            Some((k.clone(), s.integration_id.clone()))
        })
        .collect();

    let mut live = Live {
        keys,
        ..Live::default()
    };
    for (key, read) in read_many(client, managed, parallelism).await? {
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
    Ok(live)
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
        let Ok((key, read)) = joined else { continue };
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
