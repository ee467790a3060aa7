//! `connctl export`: YAML for connections that already exist in Immuta, to start managing them.
//!
//! Everything Immuta shows is written as it is; secrets, which Immuta never shows, become
//! `{ env: NAME }` placeholders named after the connection and field, to be set (or replaced by
//! `{ file: PATH }`) before `connctl import` adopts the connections. The entries are built by
//! `connctl_immuta::read::export_entry`, where Immuta's field names are read; with
//! `--objects`, [`objects`] adds the data objects set apart from their parent's settings.

mod objects;

use anyhow::Result;
use connctl_immuta::ImmutaClient;
use serde_json::{Value, json};

use crate::error::Hinted;

/// Reads `keys` (every connection when empty) and returns the YAML document. With
/// `secret_ref` (`vault:kv/immuta/{key}#{field}`), secrets become `{ secret: … }` references
/// from that template instead of one environment variable each. With `objects` (the
/// parallelism of the walk), each connection also gets its `objects:` entries.
pub async fn export(
    client: &ImmutaClient,
    keys: &[String],
    secret_ref: Option<&str>,
    objects: Option<usize>,
) -> Result<String> {
    if let Some(template) = secret_ref {
        check_template(template)?;
    }
    let keys: Vec<String> = if keys.is_empty() {
        client
            .list_connections(0, 1)
            .await?
            .iter()
            .filter_map(|h| h.key().map(str::to_owned))
            .collect()
    } else {
        keys.to_vec()
    };
    let mut connections = Vec::new();
    let mut roots = Vec::new();
    for key in &keys {
        let connection = client
            .get_connection(key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("`{key}` does not exist in Immuta"))?;
        let integration = match &connection.native_integration_id {
            Some(id) => client.get_integration(id).await?,
            None => None,
        };
        let object = client.get_object(key).await?;
        connections.push(connctl_immuta::read::export_entry(
            &connection,
            integration.as_ref(),
            object.as_ref(),
        ));
        roots.push((key.clone(), object));
    }
    if let Some(parallelism) = objects {
        let below = objects::differing(client, &roots, parallelism).await?;
        for (connection, (key, _)) in connections.iter_mut().zip(&roots) {
            let entries = below.get(key).cloned().unwrap_or_default();
            if let (false, Some(fields)) = (entries.is_empty(), connection.as_object_mut()) {
                fields.insert("objects".into(), Value::Array(entries));
            }
        }
    }
    if let Some(template) = secret_ref {
        for connection in &mut connections {
            from_template(connection, template);
        }
    }
    let document = json!({ "version": 1, "connections": connections });
    let yaml = serde_saphyr::to_string(&document)?;
    if secret_ref.is_some() {
        return Ok(format!(
            "# Exported by `connctl export` from Immuta. Secrets are references to a provider of\n\
             # connctl.toml ([secrets.NAME]): store each value there; fill in any value marked SET_ME\n\
             # (Immuta does not show it); then adopt with `connctl import THIS_FILE --key KEY`.\n{yaml}"
        ));
    }
    Ok(format!(
        "# Exported by `connctl export` from Immuta. Secrets are placeholders: set each environment\n\
         # variable named below (or use {{ file: PATH }}); fill in any value marked SET_ME (Immuta\n\
         # does not show it); then adopt with `connctl import THIS_FILE --key KEY` (a --key per\n\
         # connection).\n{yaml}"
    ))
}

const EXAMPLE: &str = "e.g. --secret-ref 'vault:kv/immuta/{key}#{field}'";

/// A template names `{key}` (else every connection would share one secret) and reads as a
/// provider reference.
fn check_template(template: &str) -> Result<()> {
    if !template.contains("{key}") {
        return Err(Hinted::new(
            format!("--secret-ref `{template}` has no `{{key}}`: every connection would get the same secret"),
            EXAMPLE,
        )
        .into());
    }
    let example = template.replace("{key}", "k").replace("{field}", "f");
    connctl_spec::provider::ProviderRef::parse(&example)
        .map_err(|e| Hinted::new(format!("--secret-ref `{template}` {e}"), EXAMPLE))?;
    Ok(())
}

/// Replaces each `{ env: … }` placeholder under the connection's `auth` with
/// `{ secret: TEMPLATE }`, `{key}` the connection's key and `{field}` the auth field
/// (`password`, `privateKey`, `privateKeyPassword`, `clientSecret`, `token`).
fn from_template(connection: &mut Value, template: &str) {
    let key = connection["key"].as_str().unwrap_or_default().to_owned();
    if let Some(auth) = connection.get_mut("auth").and_then(Value::as_object_mut) {
        for (field, value) in auth.iter_mut() {
            if value.get("env").is_some() {
                let reference = template.replace("{key}", &key).replace("{field}", field);
                *value = json!({ "secret": reference });
            }
        }
    }
}
