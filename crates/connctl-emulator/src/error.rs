//! The Immuta error envelope `{statusCode, error, message}` used for every Immuta 4xx/5xx and for
//! injected faults.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An Immuta-style error: status plus a message naming the offending field.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

/// The JSON envelope for `status` and `message`.
pub fn envelope(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    (
        status,
        axum::Json(json!({"statusCode": status.as_u16(), "error": reason, "message": message})),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        envelope(self.status, &self.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Parse a request body as JSON; an empty body is `None`.
pub fn parse_json(body: &[u8]) -> ApiResult<Option<serde_json::Value>> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("body: invalid JSON: {e}")))
}

/// Parse a request body that must be a JSON object.
pub fn parse_object(body: &[u8]) -> ApiResult<serde_json::Value> {
    match parse_json(body)? {
        Some(v @ serde_json::Value::Object(_)) => Ok(v),
        Some(_) => Err(ApiError::bad_request("body: expected a JSON object")),
        None => Err(ApiError::bad_request("body: required")),
    }
}
