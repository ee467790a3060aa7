//! The Immuta checks: the tenant answers and accepts the key, the connection API is there, the
//! key is free, and no integration already sits on the Snowflake host.

use super::*;

pub(super) async fn immuta_checks(
    immuta: &dyn ImmutaProbe,
    integrations: &Result<Vec<IntegrationSummary>, ProbeError>,
    s: &Subject<'_>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let reachable = match integrations {
        Ok(_) => Verdict::Pass,
        Err(ProbeError::Unauthorized(m)) => fail(
            format!("the API key was refused: {m}"),
            None,
            "docs/preflight.md#immuta (set IMMUTA_API_KEY to a current key of a user with CREATE_DATA_SOURCE)",
        ),
        Err(e) => fail(
            format!("Immuta did not answer: {e}"),
            None,
            "docs/preflight.md#immuta (check --immuta-url / [immuta] url in connctl.toml)",
        ),
    };
    let immuta_down = !matches!(reachable, Verdict::Pass);
    out.push(check(CheckId::ImmutaReachable, reachable));
    if immuta_down {
        for id in [
            CheckId::ConnectionApi,
            CheckId::ConnectionKeyFree,
            CheckId::NoExistingIntegration,
        ] {
            out.push(check(id, not_checked("Immuta could not be read")));
        }
        return out;
    }

    let key = &s.conn.key;
    let lookup = immuta.connection(key).await;
    let api = match &lookup {
        Ok(_) => Verdict::Pass,
        Err(ProbeError::NotFound(m)) => fail(
            format!("GET /data/connection/{key} is not served: {m}"),
            None,
            "docs/preflight.md#immuta (the connection API is in public preview on SaaS and needs 2025.1+ self-managed; ask Immuta support to enable it)",
        ),
        Err(e) => not_checked(format!("GET /data/connection/{key} failed: {e}")),
    };
    out.push(check(CheckId::ConnectionApi, api));

    let reserved = connctl_spec::RESERVED_KEYS
        .iter()
        .find(|w| w.eq_ignore_ascii_case(key));
    let key_free = match (reserved, &lookup) {
        (Some(word), _) => fail(
            format!("`{key}` is the reserved word `{word}`"),
            None,
            "docs/preflight.md#immuta (choose another `key` in the YAML)",
        ),
        (None, Ok(Some(_))) if !s.managed => fail(
            format!("Immuta already has a connection `{key}` that connctl does not manage"),
            Some(format!("connctl import <PATHS> --key {key}")),
            "docs/preflight.md#immuta (adopt it with `connctl import`, or choose another key)",
        ),
        (None, Ok(_)) => Verdict::Pass,
        (None, Err(e)) => not_checked(format!("GET /data/connection/{key} failed: {e}")),
    };
    out.push(check(CheckId::ConnectionKeyFree, key_free));

    if let Platform::Snowflake(sf) = &s.conn.platform {
        let verdict = match integrations {
            Ok(list) => {
                let host = bare(&sf.host);
                // The integration of the connection with this key is that connection's own (a
                // taken key is the key check's finding).
                let own = match &lookup {
                    Ok(Some(existing)) => existing.integration_id.as_deref(),
                    _ => None,
                };
                match list.iter().find(|i| {
                    i.technology != Some(Technology::Databricks)
                        && i.host.as_deref().map(bare) == Some(host.clone())
                        && Some(i.id.as_str()) != s.integration_id
                        && Some(i.id.as_str()) != own
                }) {
                    Some(i) => fail(
                        format!(
                            "integration {} already exists on {host}; Immuta refuses a connection there (409)",
                            i.id
                        ),
                        None,
                        "docs/preflight.md#immuta (upgrade it to a connection with Immuta's connection upgrade manager, or delete integration first)",
                    ),
                    None => Verdict::Pass,
                }
            }
            Err(e) => not_checked(e.to_string()),
        };
        out.push(check(CheckId::NoExistingIntegration, verdict));
    }
    out
}
