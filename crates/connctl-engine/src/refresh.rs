//! Refresh: read what Immuta really has, concurrently and no more than the plan needs.
//!
//! One paginated `POST /data/object/search` lists the connections. Then, for each key that is
//! both live and managed (in the state with an applied spec), and only those, it reads the
//! connection, its integration and its settings object — each once — with at most
//! `parallelism` requests in flight. Keys that are desired but not managed need only the
//! listing (create or import), and unmanaged keys are never read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use connctl_immuta::{ApiError, ImmutaClient, LiveConnection, LiveIntegration, LiveObject};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::fields::{self, FieldMap};
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
    client: &ImmutaClient,
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
}

/// Reads each `(key, known integration id)` — connection, integration and settings, each
/// once — with at most `parallelism` requests in flight. `None` for a key Immuta does not have.
pub async fn read_many(
    client: &ImmutaClient,
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
        let seen = read?.map(|(connection, integration, object)| Seen {
            integration_id: connection.native_integration_id.clone(),
            fields: fields::live(&connection, integration.as_ref(), object.as_ref()),
        });
        out.insert(key, seen);
    }
    Ok(out)
}

type Read = Option<(LiveConnection, Option<LiveIntegration>, Option<LiveObject>)>;

async fn read_one(
    client: &ImmutaClient,
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
    let (connection, object, integration) = if known_integration.is_some() {
        tokio::try_join!(connection, object, integration(known_integration))?
    } else {
        let (connection, object) = tokio::try_join!(connection, object)?;
        let id = connection.as_ref().and_then(|c| c.native_integration_id.clone());
        (connection, object, integration(id).await?)
    };
    Ok(connection.map(|c| (c, integration, object)))
}
