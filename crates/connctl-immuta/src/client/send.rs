//! Sending one request: retries by [`Call`], redirects, timeouts, logging and the decoding of
//! the answer — the rules listed in the parent module's documentation.

use super::*;

impl ImmutaClient {
    /// Sends with retries (see [`Call`]) and decodes the success with `decode`; a decode
    /// failure of a read is retried like a lost answer.
    pub(super) async fn call<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        kind: Call,
        decode: impl Fn(Response) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let attempt = || async {
            let resp = self.send_once(method.clone(), path, body, kind).await?;
            decode(resp)
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(8))
            .with_max_times(self.max_retries)
            .with_jitter();
        let cap = self.retry_after_cap;
        attempt
            .retry(backoff)
            .when(|e: &ApiError| kind.retries(e))
            .adjust(|e: &ApiError, delay| match (e.retry_after(), delay) {
                // Honour Retry-After up to the cap, but stop when the backoff says we are out
                // of attempts.
                (Some(after), Some(_)) => Some(capped(after, cap)),
                _ => delay,
            })
            .notify(|e: &ApiError, delay| {
                let retry_after = e.retry_after().map(|a| a.as_secs());
                tracing::debug!(
                    %method, path = strip_query(path), error = %e, ?delay, ?retry_after,
                    cap_s = cap.as_secs(), "retrying"
                );
            })
            .await
    }

    /// One attempt, following a GET's same-origin redirects.
    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        kind: Call,
    ) -> Result<Response, ApiError> {
        let shown_path = strip_query(path);
        let mut url = format!("{}{}", self.base, path);
        let mut hops = 0;
        loop {
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
            let resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::debug!(%method, path = shown_path, latency_ms, "request failed: {}", transport_reason(&e));
                    return Err(ApiError::transport(&method, shown_path, &self.base, &e));
                }
            };
            let status = resp.status();
            tracing::debug!(%method, path = shown_path, status = status.as_u16(), latency_ms, "immuta request");
            if status.is_redirection() {
                let target = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| resp.url().join(loc).ok());
                let refused = |location: String, refusal| ApiError::Redirected {
                    method: method.to_string(),
                    path: shown_path.to_owned(),
                    status: status.as_u16(),
                    location,
                    refusal,
                };
                let Some(target) = target else {
                    return Err(refused("(none)".into(), RedirectRefusal::NoLocation));
                };
                let shown = without_query(&target);
                if method != Method::GET {
                    return Err(refused(shown, RedirectRefusal::Write));
                }
                if target.origin() != resp.url().origin() {
                    return Err(refused(shown, RedirectRefusal::OtherOrigin));
                }
                if hops == MAX_REDIRECTS {
                    return Err(refused(shown, RedirectRefusal::TooMany));
                }
                hops += 1;
                tracing::debug!(%method, path = shown_path, to = %shown, "following a same-origin redirect");
                url = target.to_string();
                continue;
            }
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
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
                return Ok(Response {
                    method: method.to_string(),
                    path: shown_path.to_owned(),
                    status: status.as_u16(),
                    outcome_unknown: kind.changes(),
                    content_type,
                    text,
                });
            }
            return Err(ApiError::from_status(
                &method,
                shown_path,
                status,
                &text,
                retry_after,
            ));
        }
    }
}
