//! `connctl export`: YAML for connections that already exist in Immuta, to start managing them.
//!
//! Everything Immuta shows is written as it is; secrets, which Immuta never shows, become
//! `{ env: NAME }` placeholders named after the connection and field, to be set (or replaced by
//! `{ file: PATH }`) before `connctl import` adopts the connections. The entries are built by
//! `connctl_immuta::read::export_entry`, where Immuta's field names are read.

use anyhow::Result;
use connctl_immuta::ImmutaClient;
use serde_json::json;

/// Reads `keys` (every connection when empty) and returns the YAML document.
pub async fn export(client: &ImmutaClient, keys: &[String]) -> Result<String> {
    let keys: Vec<String> = if keys.is_empty() {
        client
            .list_connections()
            .await?
            .iter()
            .filter_map(|h| h.key().map(str::to_owned))
            .collect()
    } else {
        keys.to_vec()
    };
    let mut connections = Vec::new();
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
    }
    let document = json!({ "version": 1, "connections": connections });
    let yaml = serde_saphyr::to_string(&document)?;
    Ok(format!(
        "# Exported by `connctl export` from Immuta. Secrets are placeholders: set each environment\n\
         # variable named below (or use {{ file: PATH }}); fill in any value marked SET_ME (Immuta\n\
         # does not show it); then adopt with `connctl import THIS_FILE --key KEY` (a --key per\n\
         # connection).\n{yaml}"
    ))
}
