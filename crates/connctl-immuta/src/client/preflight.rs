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
    pub permissions: Option<Vec<String>>,
    /// Permissions the user holds through its groups.
    #[serde(default)]
    pub group_permissions: Option<Vec<String>>,
}

impl CurrentUser {
    /// Every permission the user holds, itself or through a group.
    pub fn all_permissions(&self) -> impl Iterator<Item = &String> {
        self.permissions.iter().chain(&self.group_permissions).flatten()
    }
}

impl ImmutaClient {
    /// `GET /bim/rpc/user/current`: "Gets the currently logged in user's information" (in the
    /// tenant's own swagger, not in the public API guides). An answer that lists neither
    /// `permissions` nor `groupPermissions` is another shape than the swagger's: an unexpected
    /// answer, never a user who holds nothing (preflight would then fail a good key).
    pub async fn current_user(&self) -> Result<CurrentUser, ApiError> {
        self.call(Method::GET, "/bim/rpc/user/current", None, Call::Read, |r| {
            let user: CurrentUser = r.json_as()?;
            if user.permissions.is_none() && user.group_permissions.is_none() {
                return Err(r.unexpected("it lists neither `permissions` nor `groupPermissions`"));
            }
            Ok(user)
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
