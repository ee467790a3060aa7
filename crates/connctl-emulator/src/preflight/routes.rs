//! The HTTP reads of `connctl preflight` that are not warehouse statements: Databricks SCIM
//! `GET /api/2.0/preview/scim/v2/Me` (who the connection's own token or OAuth client is),
//! Immuta's `GET /bim/rpc/user/current` (the API key's user and its permissions), and a tenant
//! without the connection API (`/data/*` answers 404, as a route Immuta does not serve).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Prerequisite;
use crate::auth::{bearer, check_plain_token};
use crate::error::envelope;
use crate::server::Shared;

fn scim_error(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": detail,
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// `GET /api/2.0/preview/scim/v2/Me`: a service principal (its `userName` is its application id,
/// it has no `emails`), or with `databricks:service-principal-user` a user.
pub async fn scim_me(State(st): State<Shared>, headers: HeaderMap) -> Response {
    let missing = |p: &Prerequisite| st.cfg.missing.contains(p);
    let Some(token) = bearer(&headers) else {
        return scim_error(
            StatusCode::UNAUTHORIZED,
            "Authorization header (Bearer token) is missing.",
        );
    };
    if missing(&Prerequisite::DatabricksServicePrincipal) {
        return scim_error(StatusCode::UNAUTHORIZED, "Invalid access token.");
    }
    if let Err(m) = check_plain_token(&st, &token) {
        return scim_error(StatusCode::UNAUTHORIZED, &m);
    }
    let schemas = json!([
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:workspace:2.0:User"
    ]);
    let body = if missing(&Prerequisite::DatabricksServicePrincipalUser) {
        json!({
            "schemas": schemas,
            "id": "8123456789012345",
            "userName": "jane.doe@example.com",
            "displayName": "Jane Doe",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"type": "work", "value": "jane.doe@example.com", "primary": true}],
            "active": true,
            "groups": [{"display": "users", "type": "direct", "value": "1019283746"}],
        })
    } else {
        json!({
            "schemas": schemas,
            "id": "4712019523617395",
            "userName": "6e1c5f2a-8d3b-4c4e-9a7f-3b2d1c0e9f8a",
            "displayName": "immuta-service-principal",
            "active": true,
            "groups": [{"display": "users", "type": "direct", "value": "1019283746"}],
            "entitlements": [{"value": "databricks-sql-access"}],
        })
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET /bim/rpc/user/current` (the tenant's swagger: "Gets the currently logged in user's
/// information"): the API key's user with `permissions` and `groupPermissions`.
pub async fn current_user(State(st): State<Shared>) -> Response {
    let mut permissions = vec!["APPLICATION_ADMIN", "CREATE_DATA_SOURCE", "USER_ADMIN"];
    if st.cfg.missing.contains(&Prerequisite::ImmutaPermission) {
        permissions.retain(|p| *p != "CREATE_DATA_SOURCE");
    }
    Json(json!({
        "id": 2,
        "iamid": "bim",
        "userid": "connctl-admin@example.com",
        "permissions": permissions,
        "groupPermissions": [],
        "profile": {"id": 2, "name": "connctl admin", "email": "connctl-admin@example.com"},
        "systemGenerated": false,
        "disabled": false,
    }))
    .into_response()
}

/// Answers `/data/*` with 404 when the tenant has no connection API (`immuta:connection-api`).
pub async fn connection_api_gate(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if st.cfg.missing.contains(&Prerequisite::ImmutaConnectionApi)
        && (path == "/data" || path.starts_with("/data/"))
    {
        return envelope(StatusCode::NOT_FOUND, "Not Found");
    }
    next.run(req).await
}
