//! Errors of the Immuta client, each saying what happened and what to do next.

use std::time::Duration;

use connctl_spec::retry::{Failed, RETRY_AFTER_CAP, Repeat};
use reqwest::{Method, StatusCode};

use crate::transport::{tls_reason, transport_reason};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid Immuta URL {url}: {reason}")]
    BadUrl {
        url: String,
        reason: String,
        /// The URL the user probably meant (e.g. with `https://` in front).
        suggestion: Option<String>,
    },
    #[error("refusing to send the API key over plain http to {url}")]
    InsecureUrl { url: String },
    #[error("cannot reach Immuta at {base} ({method} {path}): {reason}")]
    Unreachable {
        method: String,
        path: String,
        base: String,
        reason: String,
        sent: bool,
    },
    #[error("Immuta rejected the API key (401 on {method} {path})")]
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
    /// A TLS failure: the certificate was rejected, or the server does not speak TLS.
    #[error("TLS with Immuta at {base} failed ({method} {path}): {reason}")]
    Tls {
        method: String,
        path: String,
        base: String,
        reason: String,
    },
    /// A 3xx that connctl does not follow (see `client` for the rule).
    #[error("{method} {path} was redirected ({status}) to {location}: {refusal}")]
    Redirected {
        method: String,
        path: String,
        status: u16,
        /// The target, without its query (it could carry a token).
        location: String,
        refusal: RedirectRefusal,
    },
    /// Immuta's documented 409: an integration already exists on the host.
    #[error(
        "Immuta refused {method} {path} (409): a Snowflake integration already exists on {host} (id = {id}), and Immuta allows one per host"
    )]
    IntegrationExists {
        method: String,
        path: String,
        host: String,
        id: String,
    },
    /// An object path that cannot be put into a URL (see [`crate::client::object_url_path`]).
    #[error("the object path `{path}` cannot be sent to Immuta: {reason}")]
    BadObjectPath { path: String, reason: String },
    /// `POST /data/connection/test` answered 200 with a failed check in its body.
    #[error("the dry run (POST /data/connection/test) failed: {reasons}")]
    DryRunFailed { reasons: String },
    /// A 2xx whose body is not the shape the endpoint must answer (HTML from a proxy, a cut-off
    /// or empty body, JSON without the documented fields). For a write, `outcome_unknown` says
    /// Immuta may have applied it: read before acting again.
    #[error(
        "{method} {path} answered {status} but {problem}: {excerpt}{}",
        if *outcome_unknown { "\n  = note: Immuta may or may not have applied it; connctl reads before acting again" } else { "" }
    )]
    UnexpectedAnswer {
        method: String,
        path: String,
        status: u16,
        /// What is wrong, e.g. "the body is not JSON".
        problem: String,
        /// The start of the body (at most 200 characters, on one line).
        excerpt: String,
        outcome_unknown: bool,
    },
}

/// Why a redirect was not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectRefusal {
    /// POST/PUT/DELETE: following could turn the write into a GET that looks like success, or
    /// re-send its body (with secrets) elsewhere.
    Write,
    /// A read redirected to another scheme, host or port: the API key would follow it.
    OtherOrigin,
    /// No usable `Location` header.
    NoLocation,
    /// More hops than `MAX_REDIRECTS` (the client's limit).
    TooMany,
}

impl std::fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedirectRefusal::Write => "connctl follows no redirect on a write",
            RedirectRefusal::OtherOrigin => {
                "connctl follows a redirect on a read only to the same scheme, host and port"
            }
            RedirectRefusal::NoLocation => "the answer has no valid Location",
            RedirectRefusal::TooMany => "too many redirects",
        })
    }
}

impl ApiError {
    /// What the user can do about it, kept apart from the message so the CLI renders it
    /// (`  = help: …`); `None` when the message says it all.
    pub fn help(&self) -> Option<String> {
        Some(match self {
            ApiError::BadUrl { suggestion, .. } => format!("did you mean {}?", suggestion.as_deref()?),
            ApiError::InsecureUrl { .. } => {
                "use https:// (http:// is allowed only for loopback addresses such as 127.0.0.1)".into()
            }
            ApiError::Unreachable { .. } => {
                "check the URL (connctl.toml [immuta] url, IMMUTA_URL or --immuta-url) and your network".into()
            }
            ApiError::Unauthorized { .. } => "check IMMUTA_API_KEY (or connctl.toml [immuta] api_key); generate a key on your Immuta profile page under \"API Keys\"".into(),
            ApiError::Tls { .. } => "check that the URL's scheme and port are right and that the server's certificate is valid and trusted (a proxy that re-signs TLS needs its CA in the system trust store)".into(),
            ApiError::Redirected { .. } => {
                "set the Immuta URL to the address that answers without a redirect".into()
            }
            ApiError::IntegrationExists { id, .. } => format!(
                "a connection cannot be registered over an existing integration: upgrade integration {id} to a connection with Immuta's connection upgrade manager, then adopt it with `connctl import`; or remove that integration in Immuta"
            ),
            ApiError::Status { .. }
            | ApiError::Decode { .. }
            | ApiError::DryRunFailed { .. }
            | ApiError::BadObjectPath { .. }
            | ApiError::UnexpectedAnswer { .. } => return None,
        })
    }

    pub(crate) fn transport(method: &Method, path: &str, base: &str, e: &reqwest::Error) -> ApiError {
        if let Some(reason) = tls_reason(e) {
            return ApiError::Tls {
                method: method.to_string(),
                path: path.to_owned(),
                base: base.to_owned(),
                reason,
            };
        }
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
        let mut message = error_message(body, status);
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
        if let Some(after) = retry_after.filter(|a| *a > RETRY_AFTER_CAP) {
            message.push_str(&format!(
                " (Retry-After: {} s; connctl waits at most {} s)",
                after.as_secs(),
                RETRY_AFTER_CAP.as_secs()
            ));
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
        self.failed().is_some_and(|f| Repeat::Safe.retries(f))
    }

    /// A 2xx whose body could not be read as the endpoint's answer.
    pub fn is_unexpected_answer(&self) -> bool {
        matches!(self, ApiError::UnexpectedAnswer { .. })
    }

    /// Certainly never processed by Immuta: safe to retry even a non-idempotent call.
    pub fn never_reached_server(&self) -> bool {
        self.failed().is_some_and(|f| Repeat::OnlyIfRejected.retries(f))
    }

    /// This failure as the one retry policy ([`connctl_spec::retry`]) sees it; `None`: an
    /// answer no retry can change.
    fn failed(&self) -> Option<Failed> {
        match self {
            ApiError::Unreachable { sent: false, .. } => Some(Failed::NotSent),
            ApiError::Unreachable { sent: true, .. } => Some(Failed::NoAnswer),
            ApiError::Status { status, .. } => Some(Failed::Status(*status)),
            _ => None,
        }
    }

    /// The outcome of a write is unknown: read before acting again. True for a lost or failed
    /// answer that may follow the change, for a redirected write (a 303 after a POST can mean
    /// "done, see there"), and for a success whose body is not the documented answer.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            ApiError::UnexpectedAnswer { outcome_unknown, .. } => *outcome_unknown,
            ApiError::Redirected { method, .. } => method != "GET",
            _ => self.is_transient() && !self.never_reached_server(),
        }
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
        let help = e.help().unwrap_or_default();
        assert!(help.contains("upgrade integration 1"), "{help}");
        assert!(help.contains("connection upgrade manager"), "{help}");
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

    #[test]
    fn the_message_is_only_the_message_and_the_help_is_data() {
        let unauthorized =
            ApiError::from_status(&Method::GET, "/bim/rpc", StatusCode::UNAUTHORIZED, "", None);
        assert_eq!(
            unauthorized.to_string(),
            "Immuta rejected the API key (401 on GET /bim/rpc)"
        );
        assert!(
            unauthorized
                .help()
                .is_some_and(|h| h.starts_with("check IMMUTA_API_KEY")),
            "{:?}",
            unauthorized.help()
        );
        let insecure = crate::client::check_url("http://immuta.example.com").unwrap_err();
        assert_eq!(
            insecure.to_string(),
            "refusing to send the API key over plain http to http://immuta.example.com"
        );
        assert!(insecure.help().is_some_and(|h| h.starts_with("use https://")));
        let no_scheme = crate::client::check_url("acme.immuta.com").unwrap_err();
        assert_eq!(
            no_scheme.to_string(),
            "invalid Immuta URL acme.immuta.com: it has no scheme"
        );
        assert_eq!(
            no_scheme.help().as_deref(),
            Some("did you mean https://acme.immuta.com?")
        );
        // A server's refusal says it all.
        let status = ApiError::from_status(
            &Method::GET,
            "/x",
            StatusCode::BAD_REQUEST,
            r#"{"message":"bad"}"#,
            None,
        );
        assert_eq!(status.to_string(), "GET /x failed with 400: bad");
        assert_eq!(status.help(), None);
    }
}
