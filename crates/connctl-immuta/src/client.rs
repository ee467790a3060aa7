//! The typed Immuta REST client: one method per endpoint connctl uses.
//!
//! Every request has a timeout and is logged at debug level (method, path, status, latency;
//! never a body, never the key). The rules, each kept in one place below:
//!
//! - **Retries** ([`Call`]): reads retry connect errors, lost answers, the statuses of
//!   [`connctl_spec::retry`] (429, 500, 502, 503, 504) and a 2xx whose body cannot be read;
//!   idempotent writes retry the same failures except an unreadable body; a non-idempotent write
//!   (`POST /data/connection`) is retried only when the request provably never reached
//!   Immuta (connect error, 429), otherwise its error says the outcome is unknown
//!   ([`ApiError::outcome_unknown`]) and the caller reads before acting again. Backoff is
//!   exponential with jitter; `Retry-After` is honoured up to a cap (30 s).
//! - **Redirects**: none is followed on a write (a 301/302/303 would turn `POST /data/connection`
//!   into a GET that looks like success; a 307/308 would re-send its secrets). A GET follows at
//!   most [`MAX_REDIRECTS`] hops to the same scheme, host and port. Anything else is an
//!   [`ApiError::Redirected`] naming the target.
//! - **Success bodies** are checked for the shape each endpoint must answer (see [`crate::live`]).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use connctl_spec::Secret;
use connctl_spec::retry::{RETRY_AFTER_CAP, capped, parse_retry_after};
use reqwest::{Method, header};
use serde_json::Value;

use crate::error::{ApiError, RedirectRefusal};
use crate::live::{
    self, Job, LiveConnection, LiveIntegration, LiveObject, ObjectHit, Registered, Script, SearchPage,
};
use crate::response::Response;
use crate::transport::transport_reason;

pub mod listing;
mod path;
pub mod preflight;
mod send;

use listing::SEARCH_PAGE;
pub use path::object_url_path;
use path::seg;

/// Hops a GET may follow, all to the same origin.
pub const MAX_REDIRECTS: usize = 5;

/// How to reach Immuta.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://acme.hosted.immutacloud.com`. `http://` only for loopback.
    pub url: String,
    pub api_key: Secret,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt for retryable failures.
    pub max_retries: usize,
    /// The longest wait a `Retry-After` can impose (default 30 s, like the executors).
    pub retry_after_cap: Duration,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, api_key: Secret) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            api_key,
            timeout: Duration::from_secs(30),
            max_retries: 6,
            retry_after_cap: RETRY_AFTER_CAP,
        }
    }
}

/// What a call does, which decides what may be retried.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    /// Changes nothing: retry any transient failure, and a success whose body cannot be read.
    Read,
    /// A write that may be repeated (PUT, script generation): retry transient failures; an
    /// unreadable success is an error (for a PUT: outcome unknown).
    Idempotent,
    /// A write that must not be repeated blindly: retry only when it never reached the server.
    OnlyIfNotSent,
}

impl Call {
    fn retries(self, e: &ApiError) -> bool {
        match self {
            Call::Read => e.is_transient() || e.is_unexpected_answer(),
            Call::Idempotent => e.is_transient(),
            Call::OnlyIfNotSent => e.never_reached_server(),
        }
    }

    /// Whether an unreadable answer leaves the outcome unknown (the call changes something).
    fn changes(self) -> bool {
        self != Call::Read
    }
}

/// The client. Cheap to clone; share one per run.
#[derive(Clone)]
pub struct ImmutaClient {
    http: reqwest::Client,
    base: String,
    api_key: Secret,
    max_retries: usize,
    retry_after_cap: Duration,
}

impl std::fmt::Debug for ImmutaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImmutaClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Checks that a URL is `https://`, or `http://` to a loopback address.
pub fn check_url(url: &str) -> Result<String, ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => ApiError::BadUrl {
            url: url.into(),
            reason: "it has no scheme".into(),
            suggestion: Some(format!("https://{}", url.trim().trim_start_matches('/'))),
        },
        other => ApiError::BadUrl {
            url: url.into(),
            reason: other.to_string(),
            suggestion: None,
        },
    })?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(ApiError::InsecureUrl { url: url.into() }),
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl ImmutaClient {
    pub fn new(config: ClientConfig) -> Result<ImmutaClient, ApiError> {
        let base = check_url(&config.url)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("connctl/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            // Redirects are handled in `send_once`, where the method is known.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::BadUrl {
                url: config.url.clone(),
                reason: e.to_string(),
                suggestion: None,
            })?;
        Ok(ImmutaClient {
            http,
            base,
            api_key: config.api_key,
            max_retries: config.max_retries,
            retry_after_cap: config.retry_after_cap,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /integrations/scripts/create`.
    pub async fn create_script(&self, body: &Value) -> Result<Script, ApiError> {
        let path = "/integrations/scripts/create";
        self.call(
            Method::POST,
            path,
            Some(body),
            Call::Idempotent,
            Script::from_response,
        )
        .await
    }

    /// `POST /integrations/{id}/scripts/edit`.
    pub async fn edit_script(&self, integration_id: &str, body: &Value) -> Result<Script, ApiError> {
        let path = format!("/integrations/{}/scripts/edit", seg(integration_id));
        self.call(
            Method::POST,
            &path,
            Some(body),
            Call::Idempotent,
            Script::from_response,
        )
        .await
    }

    /// `POST /integrations/{id}/scripts/delete`.
    pub async fn delete_script(&self, integration_id: &str) -> Result<Script, ApiError> {
        let path = format!("/integrations/{}/scripts/delete", seg(integration_id));
        let body = serde_json::json!({});
        self.call(
            Method::POST,
            &path,
            Some(&body),
            Call::Idempotent,
            Script::from_response,
        )
        .await
    }

    /// `POST /data/connection/test`: a dry run of the registration. Changes nothing.
    pub async fn test_connection(&self, registration: &Value) -> Result<(), ApiError> {
        let path = "/data/connection/test";
        // A dry run changes nothing: an unreadable answer is retried like a read's.
        self.call(Method::POST, path, Some(registration), Call::Read, |r| {
            crate::live::dry_run_verdict(&r)
        })
        .await
    }

    /// `POST /data/connection`. Not idempotent: on an unknown outcome (including a success
    /// whose body lacks `objectPath`/`bulkId`), read before retrying.
    pub async fn register(&self, registration: &Value) -> Result<Registered, ApiError> {
        let path = "/data/connection";
        self.call(Method::POST, path, Some(registration), Call::OnlyIfNotSent, |r| {
            Registered::from_response(&r)
        })
        .await
    }

    /// `GET /data/connection/{key}`; `None` when Immuta has no such connection.
    pub async fn get_connection(&self, key: &str) -> Result<Option<LiveConnection>, ApiError> {
        let path = format!("/data/connection/{}", seg(key));
        let got = self
            .call(Method::GET, &path, None, Call::Read, |r| r.json_as())
            .await;
        absent_as_none(got)
    }

    /// `PUT /data/connection/{key}`; returns the `bulkId` when Immuta gives one.
    pub async fn update_connection(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        let path = format!("/data/connection/{}", seg(key));
        self.call(Method::PUT, &path, Some(body), Call::Idempotent, |r| r.bulk_id())
            .await
    }

    /// `GET /data/object/{key}`; `None` when absent. The connection's own object:
    /// [`ImmutaClient::get_data_object`] with the key as the whole path.
    pub async fn get_object(&self, key: &str) -> Result<Option<LiveObject>, ApiError> {
        self.get_data_object(&[key.to_owned()]).await
    }

    /// `GET /data/object/{path}` for an object at any depth (the path starts with the
    /// connection key); `None` on 404.
    pub async fn get_data_object(&self, path: &[String]) -> Result<Option<LiveObject>, ApiError> {
        let path = format!("/data/object/{}", object_url_path(path)?);
        let got = self
            .call(Method::GET, &path, None, Call::Read, |r| r.json_as())
            .await;
        absent_as_none(got)
    }

    /// `PUT /data/settings/{path}` with `body` (built by [`crate::payload::object_settings`]);
    /// the `bulkId` when Immuta gives one. Immuta cascades a status change to the children.
    pub async fn update_object_settings(
        &self,
        path: &[String],
        body: &Value,
    ) -> Result<Option<String>, ApiError> {
        let path = format!("/data/settings/{}", object_url_path(path)?);
        self.call(Method::PUT, &path, Some(body), Call::Idempotent, |r| r.bulk_id())
            .await
    }

    /// `POST /data/crawl/{path}`: look for new objects below it; the `bulkId` of its job.
    /// Repeating a crawl is harmless, so it is retried like an idempotent write.
    pub async fn crawl(&self, path: &[String]) -> Result<Option<String>, ApiError> {
        let path = format!("/data/crawl/{}", object_url_path(path)?);
        let body = serde_json::json!({});
        self.call(Method::POST, &path, Some(&body), Call::Idempotent, |r| {
            r.bulk_id()
        })
        .await
    }

    /// `POST /data/object/search/{path}`, every page: the direct children of an object, read
    /// with the tolerance and guards of [`ImmutaClient::list_connections`]. Whether Immuta lists
    /// only direct children or every descendant is unconfirmed; deeper hits are dropped here, so
    /// callers get the direct children either way.
    pub async fn list_object_children(&self, path: &[String]) -> Result<Vec<ObjectHit>, ApiError> {
        let search = format!("/data/object/search/{}", object_url_path(path)?);
        let mut hits = self.search_all(&search, "child objects", 1).await?;
        hits.retain(|h| h.object_path.len() == path.len() + 1 && h.object_path.starts_with(path));
        Ok(hits)
    }

    /// How many objects are below `path`: the search's total, else the hits of a page that is
    /// not full; `None` when neither tells. (Callers prefer [`LiveObject::child_count`] when
    /// the tenant reports one.)
    pub async fn count_object_children(&self, path: &[String]) -> Result<Option<u64>, ApiError> {
        let path = format!(
            "/data/object/search/{}?offset=0&size={SEARCH_PAGE}",
            object_url_path(path)?
        );
        let body = serde_json::json!({});
        let page: SearchPage = self
            .call(Method::POST, &path, Some(&body), Call::Read, |r| {
                SearchPage::from_response(&r)
            })
            .await?;
        let got = page.hits.len();
        Ok(page
            .total
            .or((got < SEARCH_PAGE).then_some(got))
            .map(|n| n as u64))
    }

    /// `PUT /data/settings/{key}`; returns the `bulkId`. The connection's own object:
    /// [`ImmutaClient::update_object_settings`] with the key as the whole path.
    pub async fn update_settings(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        self.update_object_settings(&[key.to_owned()], body).await
    }

    /// `POST /data/object/search/{key}`: how many objects are below a connection
    /// ([`ImmutaClient::count_object_children`] with the key as the whole path).
    pub async fn count_children(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.count_object_children(&[key.to_owned()]).await
    }

    /// `DELETE /data/object/{key}`; an already-absent object counts as deleted.
    pub async fn delete_object(&self, key: &str) -> Result<(), ApiError> {
        let path = format!("/data/object/{}", seg(key));
        let got = self
            .call(Method::DELETE, &path, None, Call::Idempotent, |r| {
                r.acknowledged()
            })
            .await;
        absent_as_none(got).map(|_| ())
    }

    /// `GET /integrations/{id}`; `None` when absent.
    pub async fn get_integration(&self, id: &str) -> Result<Option<LiveIntegration>, ApiError> {
        let path = format!("/integrations/{}", seg(id));
        let got = self
            .call(Method::GET, &path, None, Call::Read, |r| r.json_as())
            .await;
        absent_as_none(got)
    }

    /// `GET /integrations`: every integration of the tenant (preflight looks for one on a host).
    pub async fn list_integrations(&self) -> Result<Vec<LiveIntegration>, ApiError> {
        self.call(Method::GET, "/integrations", None, Call::Read, |r| r.json_as())
            .await
    }

    /// `PUT /integrations/{id}` with `{type, autoBootstrap, config}`.
    pub async fn update_integration(&self, id: &str, body: &Value) -> Result<(), ApiError> {
        let path = format!("/integrations/{}", seg(id));
        self.call(Method::PUT, &path, Some(body), Call::Idempotent, |r| {
            r.acknowledged()
        })
        .await
    }

    /// `GET /jobs?bulkId=…`: the jobs of one bulk request, from any of the shapes
    /// [`live::jobs_from`] accepts.
    pub async fn jobs(&self, bulk_id: &str) -> Result<Vec<Job>, ApiError> {
        let path = format!("/jobs?bulkId={}", seg(bulk_id));
        self.call(Method::GET, &path, None, Call::Read, |r| {
            let value = r.json_value()?;
            live::jobs_from(value).map_err(|problem| r.unexpected(problem))
        })
        .await
    }
}

/// The error for a listing that cannot be trusted to be complete.
/// `Ok(None)` for a 404 (the object is absent), the value otherwise.
fn absent_as_none<T>(got: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match got {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A URL as shown in an error: without its query or fragment, which could carry a token.
fn without_query(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}
