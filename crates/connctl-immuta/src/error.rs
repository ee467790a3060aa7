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
        ApiError::Status {
            method: method.to_string(),
            path: path.to_owned(),
            status: status.as_u16(),
            message: error_message(body, status),
            retry_after,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Unauthorized { .. } => Some(401),
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

/// The message of an Immuta error body (`{"message": …}`), or a short cut of the raw text;
/// redacted before it is cut, since a server (or a proxy) may echo the request and its secrets.
fn error_message(body: &str, status: StatusCode) -> String {
    let body = &*connctl_spec::redact(body);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = value.get("message").and_then(|m| m.as_str()) {
            return connctl_spec::redact(m).into_owned();
        }
        if let Some(m) = value.get("error").and_then(|m| m.as_str()) {
            return connctl_spec::redact(m).into_owned();
        }
    }
    let text: String = body.chars().take(200).collect();
    if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    }
}
