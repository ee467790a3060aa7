//! What a plan reads of the listed objects: the objects to read, the reads themselves (one
//! GET each, bounded), the cascade counts, and the fingerprints a saved plan is checked against.

use super::*;

/// The objects of `connections` to read: every listed object of a connection Immuta has and
/// the state manages (a connection about to be registered has none yet).
pub fn to_read<'a>(
    connections: impl Iterator<Item = &'a Connection>,
    registering: &dyn Fn(&str) -> bool,
) -> Vec<ObjectRef> {
    connections
        .filter(|c| !registering(&c.key))
        .flat_map(|c| {
            c.objects.iter().map(|o| ObjectRef {
                key: c.key.clone(),
                path: o.path.clone(),
            })
        })
        .collect()
}

/// Reads each object once (`GET /data/object/{key/path}`) with at most `parallelism` in flight.
pub async fn refresh(
    client: &impl Immuta,
    wanted: Vec<ObjectRef>,
    parallelism: usize,
) -> Result<LiveObjects, ApiError> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for object in wanted {
        let client = client.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let read = client.get_data_object(&object.path.full(&object.key)).await;
            (object, read)
        });
    }
    let mut out = LiveObjects::new();
    while let Some(joined) = tasks.join_next().await {
        let (object, read) = crate::tasks::joined(joined);
        out.insert(object, read?.as_ref().map(SeenObject::of));
    }
    Ok(out)
}

/// Per connection listing objects (`KEY objects`): a fingerprint of its rows (what Immuta
/// showed of each object and what the YAML wants, cascade counts aside), so that a saved plan
/// is refused when either moved before `apply plan.json`.
pub fn fingerprints<'a>(
    keys: impl Iterator<Item = &'a str>,
    rows: &[ObjectChange],
) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    keys.map(|key| {
        let mine: Vec<ObjectChange> = rows
            .iter()
            .filter(|r| r.key == key)
            .map(|r| ObjectChange {
                cascade: None,
                ..r.clone()
            })
            .collect();
        let text = serde_json::to_string(&mine).unwrap_or_default();
        (
            format!("{key} objects"),
            format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes()))),
        )
    })
    .collect()
}

/// The objects drift reads: every object the state recorded, of the connections in `only`.
pub fn recorded(state: &State, only: &dyn Fn(&str) -> bool) -> Vec<ObjectRef> {
    let mut out = Vec::new();
    for (key, s) in state.connections.iter().filter(|(k, _)| only(k)) {
        for path in s.objects.keys() {
            if let Ok(path) = ObjectPath::parse(path) {
                out.push(ObjectRef {
                    key: key.clone(),
                    path,
                });
            }
        }
    }
    out
}

/// Fills in the cascade count of each status change that lacks one, with a search of the
/// object's direct children (`POST /data/object/search/{path}`).
pub async fn count_cascades(client: &impl Immuta, rows: &mut [ObjectChange]) -> Result<(), ApiError> {
    for row in rows.iter_mut().filter(|r| !r.after_registration) {
        let full = row.full_path();
        let Some(cascade) = row.cascade.as_mut() else {
            continue;
        };
        if cascade.child_objects.is_some() {
            continue;
        }
        cascade.child_objects = match client.count_object_children(&full).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
    }
    Ok(())
}
