//! Errors of the Immuta client, each saying what happened and what to do next.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::client::{transient_status, transport_reason};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid Immuta URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "refusing to send the API key over plain http to {url}\n  = help: use https:// (http:// is allowed only for loopback addresses such as 127.0.0.1)"
    )]
    InsecureUrl { url: String },
    #[error(
        "cannot reach Immuta at {base} ({method} {path}): {reason}\n  = help: check the URL (connctl.toml [immuta] url, IMMUTA_URL or --immuta-url) and your network"
    )]
    Unreachable {
        method: String,
        path: String,
        base: String,
        reason: String,
        sent: bool,
    },
    #[error(
        "Immuta rejected the API key (401 on {method} {path})\n  = help: check IMMUTA_API_KEY (or connctl.toml [immuta] api_key); generate a key on your Immuta profile page under \"API Keys\""
    )]
    Unauthorized { method: String, path: String },
    #[error("{method} {path} failed with {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("unexpected response from {path}: {reason}")]
    Decode { path: String, reason: String },
    #[error(
        "Immuta refused {method} {path} (409): a Snowflake integration already exists on {host} (id = {id}), and Immuta allows one per host\n  = help: a connection cannot be registered over an existing integration: upgrade integration {id} to a connection with Immuta's connection upgrade manager, then adopt it with `connctl import`; or remove that integration in Immuta"
    )]
    IntegrationExists {
        method: String,
        path: String,
        host: String,
        id: String,
    },
}

impl ApiError {
    pub(crate) fn transport(method: &Method, path: &str, base: &str, e: &reqwest::Error) -> ApiError {
        ApiError::Unreachable {
            method: method.to_string(),
            path: path.to_owned(),
            base: base.to_owned(),
            reason: transport_reason(e),
            // A connect error means the request never left; anything else may have arrived.
            sent: !e.is_connect(),
        }
    }

    pub(crate) fn from_status(
        method: &Method,
        path: &str,
        status: StatusCode,
        body: &str,
        retry_after: Option<Duration>,
    ) -> ApiError {
        if status == StatusCode::UNAUTHORIZED {
            return ApiError::Unauthorized {
                method: method.to_string(),
                path: path.to_owned(),
            };
        }
        let message = error_message(body, status);
        if status == StatusCode::CONFLICT
            && let Some((host, id)) = existing_integration(&message)
        {
            return ApiError::IntegrationExists {
                method: method.to_string(),
                path: path.to_owned(),
                host,
                id,
            };
        }
        ApiError::Status {
            method: method.to_string(),
            path: path.to_owned(),
            status: status.as_u16(),
            message,
            retry_after,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::IntegrationExists { .. } => Some(409),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Unauthorized { .. })
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Worth retrying for an idempotent call.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Unreachable { .. } => true,
            ApiError::Status { status, .. } => StatusCode::from_u16(*status).is_ok_and(transient_status),
            _ => false,
        }
    }

    /// Certainly never processed by Immuta: safe to retry even a non-idempotent call.
    pub fn never_reached_server(&self) -> bool {
        match self {
            ApiError::Unreachable { sent, .. } => !sent,
            ApiError::Status { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// The outcome of a non-idempotent call is unknown: read before acting again.
    pub fn outcome_unknown(&self) -> bool {
        self.is_transient() && !self.never_reached_server()
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Host and id of Immuta's documented 409: "Snowflake integration already exists on <host> (id = N)".
fn existing_integration(message: &str) -> Option<(String, String)> {
    let rest = message.split_once("integration already exists on ")?.1;
    let (host, rest) = rest.split_once(" (id = ")?;
    let id = rest.split_once(')')?.0;
    Some((host.trim().to_owned(), id.trim().to_owned()))
}

/// The message of an Immuta error body (`{"message": …}`), or a short cut of the raw text.
fn error_message(body: &str, status: StatusCode) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = value.get("message").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
        if let Some(m) = value.get("error").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
    }
    let text: String = body.chars().take(200).collect();
    if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_integration_per_host_409_names_the_integration_and_the_way_out() {
        let body = r#"{"statusCode":409,"error":"Conflict","message":"Snowflake integration already exists on test-account.snowflakecomputing.com (id = 1). The request failed because an integration already exists on the host."}"#;
        let e = ApiError::from_status(
            &Method::POST,
            "/data/connection",
            StatusCode::CONFLICT,
            body,
            None,
        );
        assert!(e.is_conflict());
        let text = e.to_string();
        assert!(
            text.contains("test-account.snowflakecomputing.com (id = 1)"),
            "{text}"
        );
        assert!(text.contains("upgrade integration 1"), "{text}");
        assert!(text.contains("connection upgrade manager"), "{text}");
        // Any other 409 stays as it was.
        let other = ApiError::from_status(
            &Method::POST,
            "/data/connection",
            StatusCode::CONFLICT,
            r#"{"message":"A connection with connectionKey 'k' already exists."}"#,
            None,
        );
        assert!(matches!(other, ApiError::Status { status: 409, .. }));
    }
}
