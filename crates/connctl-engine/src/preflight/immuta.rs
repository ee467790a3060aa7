//! The Immuta checks: the tenant answers and accepts the key, the connection API is there, the
//! key's user holds the permissions, the key is free, and no integration already sits on the
//! Snowflake host.

use super::*;

pub(super) async fn immuta_checks(immuta: &dyn ImmutaProbe, tenant: &Tenant, s: &Subject<'_>) -> Vec<Check> {
    let integrations = &tenant.integrations;
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
            CheckId::ImmutaPermission,
            CheckId::ConnectionKeyFree,
            CheckId::NoExistingIntegration,
        ] {
            out.push(check(id, not_checked("Immuta could not be read")));
        }
        return out;
    }

    let key = &s.conn.key;
    let api = match &tenant.connection_api {
        Ok(()) => Verdict::Pass,
        Err(ProbeError::NotFound(m)) => fail(
            format!("the tenant does not serve the connection API: {m}"),
            None,
            "docs/preflight.md#immuta (the connection API is in public preview on SaaS and needs 2025.1+ self-managed; ask Immuta support to enable it)",
        ),
        Err(e) => not_checked(format!("POST /data/object/search failed: {e}")),
    };
    let api_missing = matches!(tenant.connection_api, Err(ProbeError::NotFound(_)));
    out.push(check(CheckId::ConnectionApi, api));
    out.push(check(CheckId::ImmutaPermission, permission(&tenant.user)));

    // Without the API a 404 for the key says nothing about it.
    let lookup = if api_missing {
        Err(ProbeError::Other("the connection API is not available".into()))
    } else {
        immuta.connection(key).await
    };
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
        (None, Err(_)) if api_missing => not_checked("the connection API is not available"),
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
                let others: Vec<&IntegrationSummary> = list
                    .iter()
                    .filter(|i| {
                        i.technology != Some(Technology::Databricks)
                            && Some(i.id.as_str()) != s.integration_id
                            && Some(i.id.as_str()) != own
                    })
                    .collect();
                // One that names no host could be on this one (unless its type says it is of
                // another technology): not a pass.
                let hostless = others.iter().filter(|i| i.host.is_none() && !i.other).count();
                match others
                    .iter()
                    .find(|i| i.host.as_deref().map(bare) == Some(host.clone()))
                {
                    Some(i) => fail(
                        format!(
                            "integration {} already exists on {host}; Immuta refuses a connection there (409)",
                            i.id
                        ),
                        None,
                        "docs/preflight.md#immuta (upgrade it to a connection with Immuta's connection upgrade manager, or delete integration first)",
                    ),
                    None if hostless > 0 => not_checked(format!(
                        "{hostless} integration(s) in GET /integrations name no host (`config.host`); check in Immuta that none is on {host}"
                    )),
                    None => Verdict::Pass,
                }
            }
            Err(e) => not_checked(e.to_string()),
        };
        out.push(check(CheckId::NoExistingIntegration, verdict));
    }
    out
}

/// Whether the API key's user holds [`IMMUTA_PERMISSIONS`], from `GET /bim/rpc/user/current`.
fn permission(user: &Result<ImmutaUser, ProbeError>) -> Verdict {
    const BY_HAND: &str = "check by hand: in Immuta, People → the API key's user → Permissions";
    match user {
        Ok(user) => {
            let lacking: Vec<&str> = IMMUTA_PERMISSIONS
                .iter()
                .copied()
                .filter(|p| !user.permissions.iter().any(|h| h.eq_ignore_ascii_case(p)))
                .collect();
            if lacking.is_empty() {
                return Verdict::Pass;
            }
            fail(
                format!(
                    "the API key's user {} lacks {}",
                    user.name.as_deref().unwrap_or("(unnamed)"),
                    lacking.join(" and ")
                ),
                None,
                "docs/preflight.md#immuta (a user admin grants it in Immuta: People → the user → Permissions; or use the key of a user who holds it)",
            )
        }
        Err(ProbeError::NotFound(_)) => not_checked(format!(
            "this Immuta does not serve GET /bim/rpc/user/current; {BY_HAND}"
        )),
        Err(e) => not_checked(format!("GET /bim/rpc/user/current failed: {e}; {BY_HAND}")),
    }
}
