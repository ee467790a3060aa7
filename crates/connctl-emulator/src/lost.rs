//! Lost and mangled answers: carrying out a programmed [`FaultKind`] on one request, the
//! listener whose connections a fault can cut without an answer, and the "other host" a
//! redirect points at, which records everything it is sent.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::error::envelope;
use crate::faults::{FaultKind, InjectedFault};

/// How long a `timeout` fault holds the connection when the fault names no `delay_ms`.
const DEFAULT_HANG_MS: u64 = 300_000;

/// Largest request body the other host records.
const OTHER_HOST_BODY_LIMIT: usize = 1 << 20;

/// What the client is sent for one faulted request.
pub struct Faulted {
    pub response: Response,
    /// The status the handler answered, when the request reached it.
    pub handled: Option<u16>,
    /// The client gets no answer: after this long, the connection is cut.
    pub cut_after: Option<(Duration, Option<Cut>)>,
}

/// Carries out `fault` on `req`: the handler runs first when `fault.applied` (the write happens,
/// then its answer is lost) or, for `late`, after the hold. A cut (`reset`, `timeout`) is left
/// to the caller, so it can log the request first.
pub async fn respond(fault: &InjectedFault, other_host: SocketAddr, req: Request, next: Next) -> Faulted {
    let (req, echoed) = if fault.echo {
        echo(req).await
    } else {
        (req, String::new())
    };
    let cut = req.extensions().get::<ConnectInfo<Cut>>().map(|c| c.0.clone());
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let hold = |default: u64| Duration::from_millis(fault.delay_ms.unwrap_or(default));

    if fault.kind == FaultKind::Late {
        let held = hold(0);
        if !fault.applied {
            tokio::time::sleep(held).await;
        }
        let response = next.run(req).await;
        let handled = Some(response.status().as_u16());
        if fault.applied {
            tokio::time::sleep(held).await;
        }
        return Faulted {
            response,
            handled,
            cut_after: None,
        };
    }

    let (handled, body) = if fault.applied {
        let response = next.run(req).await;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (Some(status), Some(body))
    } else {
        drop(req);
        (None, None)
    };
    let done = |response: Response| Faulted {
        response,
        handled,
        cut_after: None,
    };

    match fault.kind {
        FaultKind::Status { status } => {
            if let Some(d) = fault.delay_ms {
                tokio::time::sleep(Duration::from_millis(d)).await;
            }
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let message = match fault.echo {
                true => format!("request rejected: {method} {path_and_query} {echoed}"),
                false => format!("injected fault for {method} {path_and_query}"),
            };
            let mut r = envelope(code, &message);
            if status == 429 {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            done(r)
        }
        FaultKind::Reset | FaultKind::Timeout => Faulted {
            response: StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            handled,
            cut_after: Some((
                match fault.kind {
                    FaultKind::Timeout => hold(DEFAULT_HANG_MS),
                    _ => Duration::ZERO,
                },
                cut,
            )),
        },
        FaultKind::Html502 => done(
            (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            )
                .into_response(),
        ),
        FaultKind::Truncated => {
            let full = body.unwrap_or_else(|| {
                Bytes::from_static(br#"{"objectPath":["connection"],"bulkId":"00000000-0000-4000-8000-000000000000"}"#)
            });
            let cut_at = full.len() / 2;
            done(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    full.slice(..cut_at),
                )
                    .into_response(),
            )
        }
        FaultKind::Nonjson200 => done(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html")],
                "<!DOCTYPE html><html><head><title>Sign in</title></head><body><p>Your session has expired. Please sign in again.</p></body></html>\n",
            )
                .into_response(),
        ),
        FaultKind::Redirect {
            status,
            same_origin,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
            let location = if same_origin {
                path_and_query
            } else {
                format!("http://{other_host}{path_and_query}")
            };
            let mut r = (code, [(header::CONTENT_TYPE, "text/plain")], format!("Moved to {location}\n"))
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            done(r)
        }
        FaultKind::Late => unreachable!("handled above"),
    }
}

/// The request's `Authorization` header and body as an echoing server repeats them, and the
/// request rebuilt to be handled still.
async fn echo(req: Request) -> (Request, String) {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = format!("Authorization: {auth} body: {}", String::from_utf8_lossy(&body));
    (Request::from_parts(parts, Body::from(body)), text)
}

// ---------------------------------------------------------------------------------------------
// Connections a fault can cut.

/// The switch that cuts one connection: reads see the end, writes fail, and the socket is
/// closed with a TCP reset, so the client gets no answer at all.
#[derive(Debug, Clone, Default)]
pub struct Cut(Arc<AtomicBool>);

impl Cut {
    pub fn cut(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_cut(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A TCP listener whose connections carry a [`Cut`] (reachable from a request as
/// `ConnectInfo<Cut>`).
pub struct CuttableListener(pub TcpListener);

impl axum::serve::Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        CuttableStream {
                            inner: stream,
                            cut: Cut::default(),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: wait and try again, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, CuttableListener>> for Cut {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.io().cut.clone()
    }
}

pub struct CuttableStream {
    inner: TcpStream,
    cut: Cut,
}

impl CuttableStream {
    fn reset(&self) -> io::Error {
        // Zero linger: closing sends a reset instead of a graceful end.
        let _ = self.inner.set_zero_linger();
        io::Error::new(
            io::ErrorKind::ConnectionReset,
            "connection cut by an injected fault",
        )
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(this.reset()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Err(this.reset()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut.is_cut() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The other host.

/// One request the other host received, as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header name (lower case) → value (lossy UTF-8), every header.
    pub headers: BTreeMap<String, String>,
    /// The body, lossy UTF-8.
    pub body: String,
}

/// The host a cross-origin redirect points at: a second listener on 127.0.0.1 that answers
/// every request `200 {}` (the worst case: a client that follows it sees success) and records it.
#[derive(Clone)]
pub struct OtherHost {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl OtherHost {
    /// Binds `127.0.0.1:0`; serve it with [`OtherHost::serve`].
    pub fn bind() -> io::Result<(OtherHost, std::net::TcpListener)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let host = OtherHost {
            addr: listener.local_addr()?,
            received: Arc::default(),
        };
        Ok((host, listener))
    }

    pub async fn serve(self, listener: std::net::TcpListener) -> io::Result<()> {
        let listener = TcpListener::from_std(listener)?;
        let app = Router::new().fallback(record).with_state(self);
        axum::serve(listener, app).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn record(State(host): State<OtherHost>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, OTHER_HOST_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    crate::server::lock(&host.received).push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
}
