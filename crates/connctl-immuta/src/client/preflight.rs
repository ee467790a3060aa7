//! The reads only `connctl preflight` makes: the API key's user and its permissions, and whether
//! the tenant serves the connection API at all.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{Call, ImmutaClient};
use crate::error::ApiError;

/// The API key's user as `GET /bim/rpc/user/current` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentUser {
    /// The user's name in its IAM (`userid`).
    #[serde(default)]
    pub userid: Option<String>,
    /// Permissions granted to the user itself.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Permissions the user holds through its groups.
    #[serde(default)]
    pub group_permissions: Vec<String>,
}

impl CurrentUser {
    /// Whether the user holds `permission`, itself or through a group.
    pub fn holds(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .chain(&self.group_permissions)
            .any(|p| p.eq_ignore_ascii_case(permission))
    }
}

impl ImmutaClient {
    /// `GET /bim/rpc/user/current`: "Gets the currently logged in user's information" (in the
    /// tenant's own swagger, not in the public API guides).
    pub async fn current_user(&self) -> Result<CurrentUser, ApiError> {
        self.call(Method::GET, "/bim/rpc/user/current", None, Call::Read, |r| {
            r.json_as()
        })
        .await
    }

    /// `POST /data/object/search` for one hit: answers whenever the tenant has the connection
    /// API, whatever connections exist (a 404 for `GET /data/connection/{key}` cannot tell a
    /// missing connection from a missing API). Reads nothing of the answer.
    pub async fn connection_api(&self) -> Result<(), ApiError> {
        let body = json!({});
        self.call(
            Method::POST,
            "/data/object/search?offset=0&size=1",
            Some(&body),
            Call::Read,
            |r| r.json_value().map(|_| ()),
        )
        .await
    }
}
