//! HTTP plumbing shared by the warehouse executors: URL checks, a timeout on every request, and
//! retries with exponential backoff and jitter (`backon`) for connection failures, 429 (honouring
//! `Retry-After`), 500/502/503/504.
//!
//! A request that is not safe to repeat (a Databricks statement submission) is retried only when
//! the server certainly did not act on it: the connection failed, or it answered 429 or 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{RequestBuilder, StatusCode};

use crate::ExecError;

/// Timings of the warehouse executors. The defaults suit real warehouses; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Limit for one HTTP request (connect, send, answer).
    pub request_timeout: Duration,
    /// First retry delay (doubled on each retry, with jitter).
    pub retry_min: Duration,
    /// Longest retry delay, and the cap on a server's `Retry-After`.
    pub retry_max: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
    /// First delay between two status polls.
    pub poll_min: Duration,
    /// Longest delay between two status polls.
    pub poll_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            request_timeout: Duration::from_secs(60),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            retries: 6,
            poll_min: Duration::from_millis(100),
            poll_max: Duration::from_secs(5),
        }
    }
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Idempotent (a GET, or a Snowflake submission with its `requestId`): retry any transient failure.
    Safe,
    /// Retry only when the server certainly did not act: connect errors, 429, 503.
    OnlyIfRejected,
}

/// An answer: status and body text (bodies are small JSON documents).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug)]
enum Failure {
    /// No answer: the connection failed before the request went out.
    Connect(String),
    /// No answer: a timeout or broken connection after the request may have gone out.
    NoAnswer(String),
    /// An answer with a retryable status.
    Status {
        reply: Reply,
        retry_after: Option<Duration>,
    },
}

impl Failure {
    fn retryable(&self, repeat: Repeat) -> bool {
        match (self, repeat) {
            (Failure::Connect(_), _) => true,
            (Failure::NoAnswer(_), Repeat::Safe) => true,
            (Failure::NoAnswer(_), Repeat::OnlyIfRejected) => false,
            (Failure::Status { reply, .. }, Repeat::Safe) => is_transient(reply.status),
            (Failure::Status { reply, .. }, Repeat::OnlyIfRejected) => {
                matches!(
                    reply.status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                )
            }
        }
    }
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sends the request built by `build` (called once per attempt with the attempt number, from 0),
/// retrying transient failures. Returns the final answer, whatever its status; only a request
/// that got no answer at all becomes an error.
pub(crate) async fn send<F>(
    timing: &Timing,
    warehouse: &'static str,
    what: &str,
    repeat: Repeat,
    build: F,
) -> Result<Reply, ExecError>
where
    F: Fn(usize) -> RequestBuilder,
{
    let attempt = AtomicUsize::new(0);
    let once = || async {
        let n = attempt.fetch_add(1, Ordering::SeqCst);
        let result = build(n).timeout(timing.request_timeout).send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(Failure::Connect(describe(&e))),
            Err(e) => return Err(Failure::NoAnswer(describe(&e))),
        };
        let status = response.status();
        let after = retry_after(response.headers());
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => return Err(Failure::NoAnswer(describe(&e))),
        };
        let reply = Reply { status, body };
        if is_transient(status) {
            Err(Failure::Status {
                reply,
                retry_after: after,
            })
        } else {
            Ok(reply)
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(timing.retry_min)
        .with_max_delay(timing.retry_max)
        .with_max_times(timing.retries)
        .with_jitter();
    let cap = timing.retry_max;
    let outcome = once
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|f: &Failure| f.retryable(repeat))
        .adjust(|f: &Failure, d: Option<Duration>| match f {
            Failure::Status {
                retry_after: Some(after),
                ..
            } => d.map(|_| (*after).min(cap)),
            _ => d,
        })
        .notify(|f: &Failure, d: Duration| {
            let why = match f {
                Failure::Connect(m) | Failure::NoAnswer(m) => m.clone(),
                Failure::Status { reply, .. } => format!("HTTP {}", reply.status.as_u16()),
            };
            tracing::debug!(warehouse, what, %why, delay_ms = d.as_millis() as u64, "retrying");
        })
        .await;
    match outcome {
        Ok(reply) => Ok(reply),
        Err(Failure::Status { reply, .. }) => Ok(reply),
        Err(Failure::Connect(message)) => Err(ExecError::Api {
            warehouse,
            what: what.to_owned(),
            status: None,
            code: None,
            message,
            hint: "check the URL and the network, then run again",
        }),
        Err(Failure::NoAnswer(message)) => Err(ExecError::Api {
            warehouse,
            what: what.to_owned(),
            status: None,
            code: None,
            message,
            hint: match repeat {
                Repeat::Safe => "the warehouse did not answer; run again later",
                Repeat::OnlyIfRejected => {
                    "the warehouse did not answer, so whether it ran the statement is unknown; check it \
                     in the warehouse's query history, then run again"
                }
            },
        }),
    }
}

/// A short description of a client error, without the URL (URLs can carry query secrets).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// `https://` only, except for loopback hosts (tests, the emulator, local proxies).
pub(crate) fn check_base_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        _ => Err(format!(
            "`{url}` must use https:// (plain http is accepted only for loopback addresses)"
        )),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// `acme.snowflakecomputing.com` from `https://acme.snowflakecomputing.com:443/`, or the input
/// itself when it is already bare.
pub(crate) fn bare_host(host: &str) -> &str {
    let h = host.trim();
    let h = h.split_once("://").map_or(h, |(_, rest)| rest);
    let h = h.split(['/', '?', '#']).next().unwrap_or(h);
    h.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(h, |(h, _)| h)
}

/// Joins a base URL and path segments (each percent-encoded) to a URL.
pub(crate) fn join(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    url
}

/// The `error_code`/`code` and `message` of a JSON error body, or the start of the raw body.
pub(crate) fn error_fields(reply: &Reply) -> (Option<String>, String) {
    let v = reply.json();
    let code = ["code", "error_code", "errorCode"]
        .iter()
        .find_map(|k| v.get(*k))
        .and_then(|c| {
            c.as_str()
                .map(str::to_owned)
                .or_else(|| c.as_i64().map(|n| n.to_string()))
        });
    let message = ["message", "error_description", "error"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|m| m.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let raw: String = reply.body.chars().take(200).collect();
            if raw.trim().is_empty() {
                reply.status.canonical_reason().unwrap_or("no details").to_owned()
            } else {
                raw
            }
        });
    (code, crate::error::scrub(&message, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert!(check_base_url("https://acme.snowflakecomputing.com").is_ok());
        assert!(check_base_url("http://127.0.0.1:1234").is_ok());
        assert!(check_base_url("http://localhost:1234").is_ok());
        assert!(check_base_url("http://[::1]:1234").is_ok());
        assert!(check_base_url("http://acme.snowflakecomputing.com").is_err());
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn bare_hosts() {
        assert_eq!(bare_host("a.b.com"), "a.b.com");
        assert_eq!(bare_host("https://a.b.com:443/x"), "a.b.com");
        assert_eq!(bare_host("a.b.com:8443"), "a.b.com");
    }

    #[test]
    fn joins_encode_segments() {
        let base = reqwest::Url::parse("http://127.0.0.1:9/prefix/").expect("url");
        assert_eq!(
            join(&base, &["api", "v2", "a/b"]).as_str(),
            "http://127.0.0.1:9/prefix/api/v2/a%2Fb"
        );
    }
}
