//! A scriptable HTTP server for unit tests: records every request and answers each with whatever
//! the test's responder returns, so tests can inject failures the emulator does not produce.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request the mock received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// An answer: status, extra headers, JSON body. With a `content-type` among the headers and a
/// JSON string as the body, the string is sent as it is (an HTML page, a truncated body, …).
pub(crate) struct Answer(pub u16, pub Vec<(&'static str, String)>, pub serde_json::Value);

type Responder = dyn Fn(&Recorded, &[Recorded]) -> Answer + Send + Sync;

struct State {
    log: Mutex<Vec<Recorded>>,
    responder: Box<Responder>,
}

/// A running mock server; stops when dropped.
pub(crate) struct Mock {
    state: Arc<State>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    /// Starts a server answering with `responder(request, earlier requests)`.
    pub async fn start(responder: impl Fn(&Recorded, &[Recorded]) -> Answer + Send + Sync + 'static) -> Mock {
        let state = Arc::new(State {
            log: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        });
        let shared = state.clone();
        let app =
            axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move {
                    let rec = Recorded {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: uri.query().unwrap_or("").to_owned(),
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let answer = {
                        let mut log = state.log.lock().expect("log");
                        let a = (state.responder)(&rec, &log);
                        log.push(rec);
                        a
                    };
                    let Answer(status, extra, body) = answer;
                    let status = StatusCode::from_u16(status).expect("status");
                    let raw = extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
                    let mut resp: Response = match body {
                        serde_json::Value::String(text) if raw => (status, text).into_response(),
                        body => (status, axum::Json(body)).into_response(),
                    };
                    for (k, v) in extra {
                        resp.headers_mut().insert(k, v.parse().expect("header value"));
                    }
                    resp
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock { state, url, task }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().expect("log").clone()
    }
}

/// Timings short enough for tests.
pub(crate) fn fast_timing() -> crate::Timing {
    crate::Timing {
        request_timeout: std::time::Duration::from_secs(5),
        retry_min: std::time::Duration::from_millis(10),
        retry_max: std::time::Duration::from_millis(50),
        retries: 4,
        poll_min: std::time::Duration::from_millis(5),
        poll_max: std::time::Duration::from_millis(20),
    }
}

/// A file holding `value`, for a `SecretRef::File`.
pub(crate) fn secret_file(dir: &tempfile::TempDir, name: &str, value: &str) -> connctl_spec::SecretRef {
    let path = dir.path().join(name);
    std::fs::write(&path, value).expect("write secret");
    connctl_spec::SecretRef::File(path)
}
