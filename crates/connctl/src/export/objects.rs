//! `connctl export --objects`: the data objects of a connection whose status or
//! `activateNewChildren` differ from their parent's (what a person changed in Immuta's UI, or
//! objects a crawl found with another status than their parent's), as the YAML's `objects:`
//! entries.
//!
//! The tree is walked with `POST /data/object/search/{path}` (the children) and
//! `GET /data/object/{path}` (a child's settings), every request of every connection under one
//! bound (the parallelism). It reads no more than it must: a table's children are never listed
//! (three names below the connection is the deepest a path goes), and a table is read only when
//! its parent's listing does not give its status (a table's other setting,
//! `activateNewChildren`, governs nothing). Override flags (`hasDescendantsWithOverrides`) cannot
//! cut the walk short: an object found by a crawl takes its status from its parent's
//! `activateNewChildren`, with no override, so it may differ from its parent all the same. A
//! listing or an object that cannot be read is an error, never "no objects".

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use connctl_immuta::{ImmutaClient, LiveObject, ObjectHit};
use connctl_spec::{MAX_OBJECT_DEPTH, ObjectPath};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What an object passes on to its children, to compare them with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    active: Option<bool>,
    activate_new_children: Option<bool>,
}

impl Settings {
    fn of(object: &LiveObject) -> Settings {
        Settings {
            active: object.is_active(),
            activate_new_children: object.activate_new_children(),
        }
    }
}

/// One request of the walk.
enum Step {
    /// List the children of `path`, whose settings are `settings`.
    List { path: Vec<String>, settings: Settings },
    /// Read `path`, a child of an object whose settings are `parent`.
    Read { path: Vec<String>, parent: Settings },
}

/// What a step found.
enum Found {
    Children {
        parent: Settings,
        children: Vec<ObjectHit>,
    },
    Object {
        path: Vec<String>,
        parent: Settings,
        object: Box<LiveObject>,
    },
}

/// For each connection (key and its object, already read for the connection's entry), the
/// `objects:` entries: path (below the connection) → the settings that differ from its parent's,
/// parents before children.
pub async fn differing(
    client: &ImmutaClient,
    connections: &[(String, Option<LiveObject>)],
    parallelism: usize,
) -> Result<BTreeMap<String, Vec<Value>>> {
    let limit = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks: JoinSet<Result<Found>> = JoinSet::new();
    let mut found: BTreeMap<String, BTreeMap<Vec<String>, Value>> = BTreeMap::new();
    for (key, object) in connections {
        found.entry(key.clone()).or_default();
        let object = object
            .as_ref()
            .ok_or_else(|| anyhow!("cannot read the data object of `{key}` (GET /data/object/{key} answered 404), so its objects cannot be exported"))?;
        spawn(
            &mut tasks,
            client,
            &limit,
            Step::List {
                path: vec![key.clone()],
                settings: Settings::of(object),
            },
        );
    }
    while let Some(done) = tasks.join_next().await {
        match done?? {
            Found::Children { parent, children } => {
                for hit in children {
                    let status = hit.is_active();
                    let path = hit.object_path;
                    match status {
                        Some(active) if path.len() > MAX_OBJECT_DEPTH => {
                            let own = Settings {
                                active: Some(active),
                                activate_new_children: None,
                            };
                            record(&mut found, &path, parent, own)?;
                        }
                        _ => spawn(&mut tasks, client, &limit, Step::Read { path, parent }),
                    }
                }
            }
            Found::Object { path, parent, object } => {
                let settings = Settings::of(&object);
                record(&mut found, &path, parent, settings)?;
                if path.len() <= MAX_OBJECT_DEPTH {
                    spawn(&mut tasks, client, &limit, Step::List { path, settings });
                }
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(key, entries)| (key, entries.into_values().collect()))
        .collect())
}

/// Adds the entry of `path` (key first) to its connection's, if it differs from its parent.
fn record(
    found: &mut BTreeMap<String, BTreeMap<Vec<String>, Value>>,
    path: &[String],
    parent: Settings,
    own: Settings,
) -> Result<()> {
    if let Some(entry) = entry(path, parent, own)? {
        found
            .entry(path[0].clone())
            .or_default()
            .insert(path.to_vec(), entry);
    }
    Ok(())
}

/// The `objects:` entry of `path` (key first), if a setting differs from its parent's; a
/// setting Immuta does not report is left out.
fn entry(path: &[String], parent: Settings, own: Settings) -> Result<Option<Value>> {
    let mut entry = Map::new();
    if let Some(active) = own.active.filter(|a| parent.active != Some(*a)) {
        entry.insert("active".into(), json!(active));
    }
    if let Some(new) = own
        .activate_new_children
        .filter(|n| parent.activate_new_children != Some(*n))
    {
        entry.insert("activateNewChildren".into(), json!(new));
    }
    if entry.is_empty() {
        return Ok(None);
    }
    let below = ObjectPath::new(path[1..].to_vec()).map_err(|e| {
        anyhow!(
            "Immuta has an object `{}` that connctl cannot write as a path: {e}",
            path.join("/")
        )
    })?;
    let mut with_path = Map::new();
    with_path.insert("path".into(), json!(below.to_string()));
    with_path.extend(entry);
    Ok(Some(Value::Object(with_path)))
}

fn spawn(tasks: &mut JoinSet<Result<Found>>, client: &ImmutaClient, limit: &Arc<Semaphore>, step: Step) {
    let client = client.clone();
    let limit = limit.clone();
    tasks.spawn(async move {
        let _permit = limit.acquire_owned().await?;
        match step {
            Step::List { path, settings } => {
                let hits = client.list_object_children(&path).await.map_err(|e| {
                    anyhow::Error::from(e).context(format!("cannot list the objects below `{}`", path.join("/")))
                })?;
                // A child is its parent's path and one more name; anything else is not an answer
                // connctl can place in the tree.
                if let Some(odd) = hits
                    .iter()
                    .find(|h| h.object_path.len() != path.len() + 1 || !h.object_path.starts_with(&path))
                {
                    return Err(anyhow!(
                        "listing the objects below `{}` answered `{}`, which is not a child of it",
                        path.join("/"),
                        odd.object_path.join("/")
                    ));
                }
                Ok(Found::Children {
                    parent: settings,
                    children: hits,
                })
            }
            Step::Read { path, parent } => {
                let object = client
                    .get_data_object(&path)
                    .await
                    .map_err(|e| anyhow::Error::from(e).context(format!("cannot read the object `{}`", path.join("/"))))?
                    .ok_or_else(|| {
                        anyhow!(
                            "`{}` was listed but is not found in Immuta (removed meanwhile?); run the export again",
                            path.join("/")
                        )
                    })?;
                Ok(Found::Object {
                    path,
                    parent,
                    object: Box::new(object),
                })
            }
        }
    });
}
