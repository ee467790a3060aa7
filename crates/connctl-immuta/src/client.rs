//! The typed Immuta REST client: one method per endpoint connctl uses.
//!
//! Every request has a timeout and is logged at debug level (method, path, status, latency;
//! never a body, never the key). Reads and idempotent writes are retried with exponential
//! backoff and jitter on connect errors, 429 (honouring `Retry-After`) and 502/503/504.
//! A non-idempotent call (`POST /data/connection`, crawl) is retried only when the request
//! provably never reached Immuta (connect error, 429); otherwise its error says the outcome is
//! unknown, and the caller must read before acting again.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use connctl_spec::Secret;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::error::ApiError;
use crate::live::{Job, LiveConnection, LiveIntegration, LiveObject, ObjectHit, Registered, Script};

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
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, api_key: Secret) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            api_key,
            timeout: Duration::from_secs(30),
            max_retries: 6,
        }
    }
}

/// Whether a call may be repeated without checking first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Idempotency {
    /// Reads and idempotent writes: retry any transient failure.
    Safe,
    /// Retry only when the request never reached the server.
    OnlyIfNotSent,
}

/// The client. Cheap to clone; share one per run.
#[derive(Clone)]
pub struct ImmutaClient {
    http: reqwest::Client,
    base: String,
    api_key: Secret,
    max_retries: usize,
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
    let parsed = reqwest::Url::parse(url).map_err(|e| ApiError::BadUrl {
        url: url.into(),
        reason: e.to_string(),
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
            .build()
            .map_err(|e| ApiError::BadUrl {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(ImmutaClient {
            http,
            base,
            api_key: config.api_key,
            max_retries: config.max_retries,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /integrations/scripts/create`.
    pub async fn create_script(&self, body: &Value) -> Result<Script, ApiError> {
        let resp = self
            .send(
                Method::POST,
                "/integrations/scripts/create",
                Some(body),
                Idempotency::Safe,
            )
            .await?;
        Script::from_response(resp, "/integrations/scripts/create")
    }

    /// `POST /integrations/{id}/scripts/edit`.
    pub async fn edit_script(&self, integration_id: &str, body: &Value) -> Result<Script, ApiError> {
        let path = format!("/integrations/{}/scripts/edit", seg(integration_id));
        let resp = self
            .send(Method::POST, &path, Some(body), Idempotency::Safe)
            .await?;
        Script::from_response(resp, &path)
    }

    /// `POST /integrations/{id}/scripts/delete`.
    pub async fn delete_script(&self, integration_id: &str) -> Result<Script, ApiError> {
        let path = format!("/integrations/{}/scripts/delete", seg(integration_id));
        let resp = self
            .send(
                Method::POST,
                &path,
                Some(&serde_json::json!({})),
                Idempotency::Safe,
            )
            .await?;
        Script::from_response(resp, &path)
    }

    /// `POST /data/connection/test`: a dry run of the registration. Changes nothing.
    pub async fn test_connection(&self, registration: &Value) -> Result<(), ApiError> {
        self.send(
            Method::POST,
            "/data/connection/test",
            Some(registration),
            Idempotency::Safe,
        )
        .await?;
        Ok(())
    }

    /// `POST /data/connection`. Not idempotent: on an unknown outcome, read before retrying.
    pub async fn register(&self, registration: &Value) -> Result<Registered, ApiError> {
        let resp = self
            .send(
                Method::POST,
                "/data/connection",
                Some(registration),
                Idempotency::OnlyIfNotSent,
            )
            .await?;
        resp.json_as("/data/connection")
    }

    /// `GET /data/connection/{key}`; `None` when Immuta has no such connection.
    pub async fn get_connection(&self, key: &str) -> Result<Option<LiveConnection>, ApiError> {
        let path = format!("/data/connection/{}", seg(key));
        match self.send(Method::GET, &path, None, Idempotency::Safe).await {
            Ok(resp) => Ok(Some(resp.json_as(&path)?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /data/connection/{key}`; returns the `bulkId` when Immuta gives one.
    pub async fn update_connection(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        let path = format!("/data/connection/{}", seg(key));
        let resp = self
            .send(Method::PUT, &path, Some(body), Idempotency::Safe)
            .await?;
        Ok(resp.bulk_id())
    }

    /// `GET /data/object/{key}`; `None` when absent.
    pub async fn get_object(&self, key: &str) -> Result<Option<LiveObject>, ApiError> {
        let path = format!("/data/object/{}", seg(key));
        match self.send(Method::GET, &path, None, Idempotency::Safe).await {
            Ok(resp) => Ok(Some(resp.json_as(&path)?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /data/object/search`, every page: the top-level objects, i.e. the connections.
    pub async fn list_connections(&self) -> Result<Vec<ObjectHit>, ApiError> {
        const PAGE: usize = 1000;
        let mut all = Vec::new();
        loop {
            let path = format!("/data/object/search?offset={}&size={PAGE}", all.len());
            let resp = self
                .send(
                    Method::POST,
                    &path,
                    Some(&serde_json::json!({})),
                    Idempotency::Safe,
                )
                .await?;
            let page: crate::live::SearchPage = resp.json_as("/data/object/search")?;
            let got = page.hits.len();
            all.extend(page.hits);
            let total = page.count.unwrap_or(all.len());
            if got == 0 || all.len() >= total {
                break;
            }
        }
        Ok(all)
    }

    /// `PUT /data/settings/{key}`; returns the `bulkId`.
    pub async fn update_settings(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        let path = format!("/data/settings/{}", seg(key));
        let resp = self
            .send(Method::PUT, &path, Some(body), Idempotency::Safe)
            .await?;
        Ok(resp.bulk_id())
    }

    /// `POST /data/crawl/{key}`; returns the `bulkId`.
    pub async fn crawl(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        let path = format!("/data/crawl/{}", seg(key));
        let resp = self
            .send(Method::POST, &path, Some(body), Idempotency::OnlyIfNotSent)
            .await?;
        Ok(resp.bulk_id())
    }

    /// `POST /data/object/search/{key}`: how many objects are below a connection (its `count`,
    /// else the hits of one page); `None` when the answer says neither.
    pub async fn count_children(&self, key: &str) -> Result<Option<u64>, ApiError> {
        let path = format!("/data/object/search/{}?offset=0&size=1000", seg(key));
        let resp = self
            .send(
                Method::POST,
                &path,
                Some(&serde_json::json!({})),
                Idempotency::Safe,
            )
            .await?;
        let value: Value = resp.json_as("/data/object/search")?;
        let hits = |v: &Value| v.as_array().map(|a| a.len() as u64);
        Ok(value
            .get("count")
            .and_then(Value::as_u64)
            .or_else(|| value.get("hits").and_then(hits))
            .or_else(|| hits(&value)))
    }

    /// `DELETE /data/object/{key}`; an already-absent object counts as deleted.
    pub async fn delete_object(&self, key: &str) -> Result<(), ApiError> {
        let path = format!("/data/object/{}", seg(key));
        match self.send(Method::DELETE, &path, None, Idempotency::Safe).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /integrations/{id}`; `None` when absent.
    pub async fn get_integration(&self, id: &str) -> Result<Option<LiveIntegration>, ApiError> {
        let path = format!("/integrations/{}", seg(id));
        match self.send(Method::GET, &path, None, Idempotency::Safe).await {
            Ok(resp) => Ok(Some(resp.json_as(&path)?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /integrations/{id}` with `{type, autoBootstrap, config}`.
    pub async fn update_integration(&self, id: &str, body: &Value) -> Result<(), ApiError> {
        let path = format!("/integrations/{}", seg(id));
        self.send(Method::PUT, &path, Some(body), Idempotency::Safe)
            .await?;
        Ok(())
    }

    /// `GET /jobs?bulkId=…`: the jobs of one bulk request.
    pub async fn jobs(&self, bulk_id: &str) -> Result<Vec<Job>, ApiError> {
        let path = format!("/jobs?bulkId={}", seg(bulk_id));
        let resp = self.send(Method::GET, &path, None, Idempotency::Safe).await?;
        resp.json_as("/jobs")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency: Idempotency,
    ) -> Result<Response, ApiError> {
        let attempt = || async { self.send_once(method.clone(), path, body).await };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(8))
            .with_max_times(self.max_retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(|e: &ApiError| match idempotency {
                Idempotency::Safe => e.is_transient(),
                Idempotency::OnlyIfNotSent => e.never_reached_server(),
            })
            .adjust(|e: &ApiError, delay| match (e.retry_after(), delay) {
                // Honour Retry-After, but stop when the backoff says we are out of attempts.
                (Some(after), Some(_)) => Some(after),
                _ => delay,
            })
            .notify(|e: &ApiError, delay| {
                tracing::debug!(%method, path = strip_query(path), error = %e, ?delay, "retrying");
            })
            .await
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ApiError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(header::AUTHORIZATION, self.api_key.expose())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let result = request.send().await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let shown_path = strip_query(path);
        let resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(%method, path = shown_path, latency_ms, "request failed: {}", transport_reason(&e));
                return Err(ApiError::transport(&method, shown_path, &self.base, &e));
            }
        };
        let status = resp.status();
        tracing::debug!(%method, path = shown_path, status = status.as_u16(), latency_ms, "immuta request");
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = resp
            .text()
            .await
            .map_err(|e| ApiError::transport(&method, shown_path, &self.base, &e))?;
        if status.is_success() {
            return Ok(Response { content_type, text });
        }
        Err(ApiError::from_status(
            &method,
            shown_path,
            status,
            &text,
            retry_after,
        ))
    }
}

/// A successful response body.
pub(crate) struct Response {
    pub content_type: String,
    pub text: String,
}

impl Response {
    pub(crate) fn json_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        serde_json::from_str(&self.text).map_err(|e| ApiError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    fn bulk_id(&self) -> Option<String> {
        let value: Value = serde_json::from_str(&self.text).ok()?;
        value.get("bulkId").and_then(Value::as_str).map(str::to_owned)
    }
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// Percent-encodes one path segment (connection keys may hold only safe characters, but ids
/// and keys from a server are not trusted to).
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        reason
    }
}

/// Whether a status is worth retrying for an idempotent call.
pub(crate) fn transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}
