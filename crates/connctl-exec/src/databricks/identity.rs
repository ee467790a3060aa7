//! Who a connection's own Databricks credential is (the token or OAuth client Immuta will use,
//! not the executor's): SCIM `GET /api/2.0/preview/scim/v2/Me` with it, on the workspace the
//! executor reaches. An OAuth client first gets a token from the workspace's
//! `/oidc/v1/token`. The answer is read tolerantly: Databricks answers `Me` for a service
//! principal with a User-shaped resource whose `userName` is the application id (a UUID) and
//! which has no `emails`; a `ServicePrincipal` schema or an `applicationId` says so too.

use connctl_spec::{DATABRICKS_DEFAULT_SCOPE, DatabricksAuth, Secret};
use reqwest::StatusCode;
use serde_json::Value;

use super::{Context, WAREHOUSE};
use crate::ExecError;
use crate::http::{self, Repeat};

pub use connctl_spec::databricks::PrincipalKind;

/// The principal SCIM `Me` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabricksPrincipal {
    /// `userName` (a service principal's application id), else `displayName`.
    pub name: String,
    pub kind: PrincipalKind,
}

/// Reads a SCIM `Me` answer.
pub(crate) fn principal_from(v: &Value) -> DatabricksPrincipal {
    let text = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let user_name = text("userName");
    let sp_schema = v.get("schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter()
            .filter_map(Value::as_str)
            .any(|s| s.to_ascii_lowercase().contains("serviceprincipal"))
    });
    let has_emails = v
        .get("emails")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    let kind = if sp_schema || text("applicationId").is_some() || user_name.is_some_and(is_uuid) {
        PrincipalKind::ServicePrincipal
    } else if has_emails || user_name.is_some_and(|u| u.contains('@')) {
        PrincipalKind::User
    } else {
        PrincipalKind::Unknown
    };
    let name = user_name
        .or_else(|| text("applicationId"))
        .or_else(|| text("displayName"))
        .unwrap_or("(unnamed)")
        .to_owned();
    DatabricksPrincipal { name, kind }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Context<'_> {
    /// SCIM `Me` with the connection's credential `auth` (secrets resolved as apply resolves them).
    pub(crate) async fn principal(
        &self,
        workspace_url: &str,
        auth: &DatabricksAuth,
    ) -> Result<DatabricksPrincipal, ExecError> {
        let base = http::base_for(self.cfg.url.as_deref(), workspace_url)?;
        let token: Secret = match auth {
            DatabricksAuth::Token { token } => token.resolve().map_err(|source| ExecError::Credential {
                what: "the connection's Databricks token",
                source,
            })?,
            DatabricksAuth::OAuthM2M {
                client_id,
                client_secret,
                scope,
                ..
            } => {
                let secret = client_secret.resolve().map_err(|source| ExecError::Credential {
                    what: "the connection's Databricks OAuth client secret",
                    source,
                })?;
                let url = http::join(&base, &["oidc", "v1", "token"]);
                let scope = scope.as_deref().unwrap_or(DATABRICKS_DEFAULT_SCOPE);
                self.client_credentials(&url, client_id, &secret, scope).await?.0
            }
        };
        let url = http::join(&base, &["api", "2.0", "preview", "scim", "v2", "Me"]);
        let reply = http::send(self.timing, WAREHOUSE, "reading SCIM Me", Repeat::Safe, |_| {
            self.request(reqwest::Method::GET, url.clone(), &token)
        })
        .await?;
        if reply.status != StatusCode::OK {
            let (code, message) = crate::error::error_fields(&reply);
            // A SCIM error names its reason `detail`.
            let message = reply
                .json()
                .get("detail")
                .and_then(Value::as_str)
                .map_or(message, |d| connctl_spec::redact(d).into_owned());
            let status = reply.status.as_u16();
            return Err(match status {
                401 | 403 => ExecError::Auth {
                    warehouse: WAREHOUSE,
                    status,
                    code,
                    message,
                    hint: "the connection's `auth` in the YAML: a current token (or OAuth client) of the service principal",
                },
                _ => ExecError::Api {
                    warehouse: WAREHOUSE,
                    what: "reading SCIM Me".into(),
                    status: Some(status),
                    code,
                    message,
                    hint: "check `url` (the workspace URL)",
                },
            });
        }
        Ok(principal_from(&reply.json()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_service_principal_is_told_by_its_application_id_schema_or_field() {
        let by_uuid = json!({"userName": "6e1c5f2a-8d3b-4c4e-9a7f-3b2d1c0e9f8a", "displayName": "sp"});
        assert_eq!(principal_from(&by_uuid).kind, PrincipalKind::ServicePrincipal);
        let by_schema = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"], "displayName": "sp"});
        assert_eq!(principal_from(&by_schema).kind, PrincipalKind::ServicePrincipal);
        let by_field = json!({"applicationId": "abc", "displayName": "sp"});
        assert_eq!(principal_from(&by_field).name, "abc");
        assert_eq!(principal_from(&by_field).kind, PrincipalKind::ServicePrincipal);
    }

    #[test]
    fn a_user_has_an_email_name_and_anything_else_is_unknown() {
        let user = json!({"userName": "jane@example.com", "emails": [{"value": "jane@example.com"}]});
        assert_eq!(principal_from(&user).kind, PrincipalKind::User);
        assert_eq!(principal_from(&user).name, "jane@example.com");
        assert_eq!(
            principal_from(&json!({"displayName": "x"})).kind,
            PrincipalKind::Unknown
        );
        assert_eq!(
            principal_from(&json!({"userName": "6e1c5f2a-8d3b"})).kind,
            PrincipalKind::Unknown
        );
    }

    #[test]
    fn a_scope_is_form_encoded() {
        assert_eq!(super::super::form_encode("all-apis"), "all-apis");
        assert_eq!(
            super::super::form_encode("sql offline_access&x=1"),
            "sql%20offline_access%26x%3D1"
        );
    }
}
