//! HTTP plumbing shared by the warehouse executors: the client ([`http_client`]), URL checks, a
//! timeout on every request, and retries with exponential backoff and jitter (`backon`) for
//! the failures the policy of [`connctl_spec::retry`] retries (the one the Immuta client uses):
//! connection failures and 429, 500, 502, 503, 504, honouring `Retry-After` up to
//! [`Timing::retry_max`] (30 s by default, like the Immuta client).
//!
//! A request that is not safe to repeat (a Databricks statement submission) is retried only when
//! the server did not take it: the connection failed, or it answered 429 or (Databricks'
//! documented `TEMPORARILY_UNAVAILABLE`) 503.
//!
//! No redirect is followed: the warehouse APIs do not redirect, and following one could turn a
//! submission into a GET that looks like success or re-send the script (with its passwords) and
//! the token to another host. A 3xx is an error naming its target.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
pub(crate) use connctl_spec::retry::Repeat;
use connctl_spec::retry::{Failed, RETRY_AFTER_CAP, is_retry_status, parse_retry_after};
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
            retry_max: RETRY_AFTER_CAP,
            retries: 6,
            poll_min: Duration::from_millis(100),
            poll_max: Duration::from_secs(5),
        }
    }
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
    /// A redirect (never followed, never retried).
    Redirect {
        status: StatusCode,
        target: Option<reqwest::Url>,
    },
}

impl Failure {
    /// Asks the one retry policy ([`connctl_spec::retry`]); a redirect is never retried.
    fn retryable(&self, repeat: Repeat) -> bool {
        let failed = match self {
            Failure::Redirect { .. } => return false,
            Failure::Connect(_) => Failed::NotSent,
            Failure::NoAnswer(_) => Failed::NoAnswer,
            Failure::Status { reply, .. } => Failed::Status(reply.status.as_u16()),
        };
        repeat.retries(failed)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?)
}

/// The HTTP client the executors must be given ([`crate::Executor::new`]): it follows no
/// redirect, so [`send`] sees every 3xx and refuses it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        // Fails only when the TLS backend cannot start, where `reqwest::Client::new()` panics too.
        .unwrap_or_else(|e| panic!("cannot start the HTTP client: {e}"))
}

/// The error for a redirect: never followed, named by its target (without the query, which
/// could carry a token).
fn redirected(
    warehouse: &'static str,
    what: &str,
    status: StatusCode,
    target: Option<reqwest::Url>,
) -> ExecError {
    let shown = target.map_or_else(
        || "an address it did not give".to_owned(),
        |mut url| {
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        },
    );
    ExecError::Api {
        warehouse,
        what: what.to_owned(),
        status: Some(status.as_u16()),
        code: None,
        message: format!("redirected to {shown}, which connctl does not follow"),
        hint: "set the executor's `url` to the address that answers without a redirect; whether a \
               submitted script ran there is unknown, so check the warehouse's query history",
    }
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
        let (client, request) = build(n).timeout(timing.request_timeout).build_split();
        let request = request.map_err(|e| Failure::Connect(describe(&e)))?;
        let asked = request.url().clone();
        let response = match client.execute(request).await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(Failure::Connect(describe(&e))),
            Err(e) => return Err(Failure::NoAnswer(describe(&e))),
        };
        let status = response.status();
        if status.is_redirection() {
            let target = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| asked.join(loc).ok());
            return Err(Failure::Redirect { status, target });
        }
        if response.url() != &asked {
            // A client that follows redirects was passed in: the answer is not from the API.
            return Err(Failure::Redirect {
                status,
                target: Some(response.url().clone()),
            });
        }
        let after = retry_after(response.headers());
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => return Err(Failure::NoAnswer(describe(&e))),
        };
        let reply = Reply { status, body };
        if is_retry_status(status.as_u16()) {
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
                Failure::Status {
                    reply,
                    retry_after: Some(after),
                } if *after > cap => format!(
                    "HTTP {}, Retry-After {} s capped to {} s",
                    reply.status.as_u16(),
                    after.as_secs(),
                    cap.as_secs()
                ),
                Failure::Status { reply, .. } => format!("HTTP {}", reply.status.as_u16()),
                Failure::Redirect { status, .. } => format!("HTTP {}", status.as_u16()),
            };
            tracing::debug!(warehouse, what, %why, delay_ms = d.as_millis() as u64, "retrying");
        })
        .await;
    match outcome {
        Ok(reply) => Ok(reply),
        Err(Failure::Status { reply, .. }) => Ok(reply),
        Err(Failure::Redirect { status, target }) => Err(redirected(warehouse, what, status, target)),
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
                Repeat::OnlyIfRejected | Repeat::OnlyIfRejectedOrUnavailable => {
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

/// The API base for a warehouse: the configured `url` (a proxy, the emulator), else `https://`
/// and the connection's host, checked like every base URL.
pub(crate) fn base_for(configured: Option<&str>, host: &str) -> Result<reqwest::Url, ExecError> {
    let text = configured.map_or_else(|| format!("https://{}", bare_host(host)), str::to_owned);
    check_base_url(&text).map_err(ExecError::config)
}

/// `https://` only, except for loopback hosts (tests, the emulator, local proxies).
pub(crate) fn check_base_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        if url.contains("://") {
            format!("`{url}` is not a URL: {e}")
        } else {
            format!(
                "`{url}` has no scheme; did you mean `https://{}`?",
                url.trim().trim_start_matches('/')
            )
        }
    })?;
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
mod tests;
