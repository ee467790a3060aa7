//! The client against small local servers that misbehave on purpose: redirects, HTML and
//! cut-off answers, failing reads, long `Retry-After`s, a server without TLS, and every
//! answer shape connctl accepts for the undocumented listing and jobs endpoints.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use connctl_immuta::{ApiError, ClientConfig, ImmutaClient, RedirectRefusal};
use connctl_spec::Secret;
use serde_json::{Value, json};

const KEY: &str = "test-api-key";
const SECRET: &str = "hunter2-password";

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    authorization: Option<String>,
    body: String,
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Response + Send + Sync>;

/// A server on 127.0.0.1 that records every request and answers with `handler(request, n)`
/// (`n` counts from 0).
struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start(handler: impl Fn(&Seen, usize) -> Response + Send + Sync + 'static) -> Server {
        let handler: Handler = Arc::new(handler);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let handler = handler.clone();
            let log = log.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
                let hit = Seen {
                    method: parts.method.to_string(),
                    path_and_query: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    authorization: parts
                        .headers
                        .get(header::AUTHORIZATION)
                        .map(|v| v.to_str().unwrap().to_owned()),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(hit.clone());
                    log.len() - 1
                };
                handler(&hit, n)
            }
        });
        Server {
            url: serve(app).await,
            seen: seen.clone(),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `app` on 127.0.0.1 (a free port) for the rest of the test; its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn client(url: &str) -> ImmutaClient {
    let mut config = ClientConfig::new(url, Secret::new(KEY));
    config.timeout = Duration::from_secs(5);
    config.max_retries = 3;
    ImmutaClient::new(config).unwrap()
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn raw(status: StatusCode, content_type: &str, body: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    (status, headers, Body::from(body.to_owned())).into_response()
}

fn redirect(status: u16, location: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap()
}

fn registration() -> Value {
    json!({"connectionKey": "k", "connection": {"password": SECRET}})
}

fn registered() -> Value {
    json!({"objectPath": ["k"], "bulkId": "bulk-1"})
}

// ---- redirects --------------------------------------------------------------------------

#[tokio::test]
async fn a_write_follows_no_redirect_and_sends_nothing_to_the_target() {
    for status in [301, 302, 303, 307, 308] {
        let elsewhere = Server::start(|_, _| json_answer(StatusCode::OK, registered())).await;
        let target = format!("{}/data/connection?token=abc", elsewhere.url);
        let immuta = Server::start(move |_, _| redirect(status, &target)).await;

        let err = client(&immuta.url).register(&registration()).await.unwrap_err();

        assert!(
            matches!(&err, ApiError::Redirected { status: s, refusal: RedirectRefusal::Write, .. } if *s == status),
            "{status}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{}/data/connection", elsewhere.url)),
            "{msg}"
        );
        assert!(
            !msg.contains("token=abc"),
            "the target's query is not shown: {msg}"
        );
        assert!(
            err.outcome_unknown(),
            "a redirected write must be confirmed by reading"
        );
        assert!(
            elsewhere.seen().is_empty(),
            "{status}: the target received {:?}",
            elsewhere.seen()
        );
        let sent = immuta.seen();
        assert_eq!(sent.len(), 1, "{status}: not retried");
        assert_eq!(sent[0].method, "POST");
        assert!(sent[0].body.contains(SECRET), "the body went to Immuta only");
    }
}

#[tokio::test]
async fn script_requests_and_updates_follow_no_redirect_either() {
    let elsewhere = Server::start(|_, _| raw(StatusCode::OK, "text/plain", "CREATE ROLE x;")).await;
    let target = elsewhere.url.clone();
    let immuta = Server::start(move |_, _| redirect(307, &target)).await;
    let c = client(&immuta.url);
    let body = json!({"config": {"password": SECRET}});
    for err in [
        c.create_script(&body).await.unwrap_err(),
        c.edit_script("1", &body).await.unwrap_err(),
        c.update_connection("k", &body).await.unwrap_err(),
        c.update_settings("k", &body).await.unwrap_err(),
        c.delete_object("k").await.unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                ApiError::Redirected {
                    refusal: RedirectRefusal::Write,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[tokio::test]
async fn a_read_follows_a_redirect_only_to_the_same_origin() {
    let elsewhere = Server::start(|_, _| json_answer(StatusCode::OK, json!({"connectionKey": "k"}))).await;
    let target = format!("{}/data/connection/k", elsewhere.url);
    let immuta = Server::start(move |_, _| redirect(302, &target)).await;
    let err = client(&immuta.url).get_connection("k").await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Redirected {
                refusal: RedirectRefusal::OtherOrigin,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&elsewhere.url), "{err}");
    assert!(!err.outcome_unknown());
    assert!(
        elsewhere.seen().is_empty(),
        "the key went to {:?}",
        elsewhere.seen()
    );

    // Same origin: followed, with the key.
    let same = Server::start(|seen, _| {
        if seen.path_and_query == "/data/connection/k" {
            redirect(301, "/v2/data/connection/k")
        } else {
            json_answer(StatusCode::OK, json!({"connectionKey": "k"}))
        }
    })
    .await;
    let got = client(&same.url).get_connection("k").await.unwrap().unwrap();
    assert_eq!(got.connection_key, "k");
    let seen = same.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path_and_query, "/v2/data/connection/k");
    assert_eq!(seen[1].authorization.as_deref(), Some(KEY));
    assert_eq!((seen[1].method.as_str(), seen[1].body.as_str()), ("GET", ""));

    // A loop ends.
    let looping = Server::start(|_, _| redirect(302, "/again")).await;
    let err = client(&looping.url).get_object("k").await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Redirected {
                refusal: RedirectRefusal::TooMany,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---- success bodies ---------------------------------------------------------------------

#[tokio::test]
async fn a_script_must_be_sql() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "text/html",
            "<html><body><h1>Sign in</h1></body></html>",
            "HTML page",
        ),
        ("text/plain", "", "empty"),
        ("application/json", r#"{"status": "ok"}"#, "no `script` field"),
        ("application/json", r#"{"script": "CREATE"#, "cut off"),
        ("application/json", "[1, 2]", "not a script"),
        ("application/json", r#"{"script": "  "}"#, "empty"),
    ];
    for (content_type, body, expected) in cases {
        let body_owned = body.to_owned();
        let ct = content_type.to_owned();
        let immuta = Server::start(move |_, _| raw(StatusCode::OK, &ct, &body_owned)).await;
        let err = client(&immuta.url)
            .create_script(&json!({}))
            .await
            .expect_err(body);
        let msg = err.to_string();
        assert!(msg.contains(expected), "{body}: {msg}");
        assert!(msg.contains("/integrations/scripts/create answered 200"), "{msg}");
        if body.len() > 2 {
            let start: String = body.chars().take(10).collect();
            assert!(msg.contains(&start), "the body is in the error: {msg}");
        }
        assert_eq!(immuta.seen().len(), 1, "{body}: not retried");
    }
    for (content_type, body) in [
        ("text/plain", "CREATE ROLE immuta;\nGRANT x TO y;"),
        ("application/json", r#""CREATE ROLE immuta;""#),
        ("application/json", r#"{"script": "CREATE ROLE immuta;"}"#),
    ] {
        let body_owned = body.to_owned();
        let ct = content_type.to_owned();
        let immuta = Server::start(move |_, _| raw(StatusCode::OK, &ct, &body_owned)).await;
        let script = client(&immuta.url).create_script(&json!({})).await.unwrap();
        assert!(script.sql.starts_with("CREATE ROLE immuta;"), "{body}");
    }
}

#[tokio::test]
async fn an_unreadable_registration_answer_leaves_the_outcome_unknown() {
    for body in [
        r#"{"objectPath": ["k"], "bulk"#,
        "OK",
        "",
        r#"{"ok": true}"#,
        "<html>502</html>",
    ] {
        let body_owned = body.to_owned();
        let immuta = Server::start(move |_, _| raw(StatusCode::OK, "application/json", &body_owned)).await;
        let err = client(&immuta.url).register(&registration()).await.unwrap_err();
        assert!(
            matches!(
                err,
                ApiError::UnexpectedAnswer {
                    outcome_unknown: true,
                    ..
                }
            ),
            "{body}: {err:?}"
        );
        assert!(err.outcome_unknown(), "{body}");
        assert!(
            err.to_string().contains("may or may not have applied it"),
            "{err}"
        );
        assert_eq!(
            immuta.seen().len(),
            1,
            "{body}: a registration is never repeated blindly"
        );
    }
    let immuta = Server::start(|_, _| json_answer(StatusCode::OK, registered())).await;
    let ok = client(&immuta.url).register(&registration()).await.unwrap();
    assert_eq!(ok.bulk_id.as_deref(), Some("bulk-1"));
}

#[tokio::test]
async fn an_unreadable_bulk_id_answer_of_a_put_leaves_the_outcome_unknown() {
    let immuta = Server::start(|_, _| raw(StatusCode::OK, "application/json", r#"{"bulkId": "b"#)).await;
    let err = client(&immuta.url)
        .update_settings("k", &json!({}))
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert!(err.to_string().contains("cut off"), "{err}");
    // No body at all is a PUT without a bulkId, not an error.
    let empty = Server::start(|_, _| raw(StatusCode::OK, "application/json", "")).await;
    assert_eq!(
        client(&empty.url)
            .update_connection("k", &json!({}))
            .await
            .unwrap(),
        None
    );
}

// ---- retries ----------------------------------------------------------------------------

#[tokio::test]
async fn a_read_retries_a_500_and_an_unreadable_200() {
    let immuta = Server::start(|_, n| match n {
        0 => raw(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "boom"),
        1 => raw(StatusCode::OK, "text/html", "<html>maintenance</html>"),
        2 => raw(StatusCode::OK, "application/json", r#"{"connectionKey": "#),
        _ => json_answer(StatusCode::OK, json!({"connectionKey": "k"})),
    })
    .await;
    let got = client(&immuta.url).get_connection("k").await.unwrap().unwrap();
    assert_eq!(got.connection_key, "k");
    assert_eq!(immuta.seen().len(), 4);
}

#[tokio::test]
async fn an_html_502_is_retried_then_reported_with_its_start() {
    let immuta = Server::start(|_, _| {
        raw(
            StatusCode::BAD_GATEWAY,
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head></html>",
        )
    })
    .await;
    let err = client(&immuta.url).get_object("k").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
    assert_eq!(immuta.seen().len(), 4, "first attempt and 3 retries");

    // A non-idempotent write is not repeated after a 502: its outcome is unknown.
    let err = client(&immuta.url).register(&registration()).await.unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    assert_eq!(immuta.seen().len(), 5);
}

#[tokio::test]
async fn retry_after_is_capped_and_the_cap_is_said() {
    assert_eq!(
        ClientConfig::new("https://x", Secret::new(KEY)).retry_after_cap,
        Duration::from_secs(30),
        "the same cap as the executors"
    );
    let limited = |_: &Seen, n: usize| {
        if n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "86400")],
                "slow down",
            )
                .into_response()
        } else {
            json_answer(StatusCode::OK, json!({"connectionKey": "k"}))
        }
    };
    let immuta = Server::start(limited).await;
    let mut config = ClientConfig::new(&immuta.url, Secret::new(KEY));
    config.retry_after_cap = Duration::from_millis(300);
    let started = Instant::now();
    ImmutaClient::new(config)
        .unwrap()
        .get_connection("k")
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "Retry-After honoured up to the cap: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "a day's Retry-After is cut: {took:?}"
    );

    // When it still fails, the message says the server's value and the cap.
    let always = Server::start(|_, _| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "86400")],
            "slow down",
        )
            .into_response()
    })
    .await;
    let mut config = ClientConfig::new(&always.url, Secret::new(KEY));
    config.retry_after_cap = Duration::from_millis(10);
    config.max_retries = 1;
    let err = ImmutaClient::new(config)
        .unwrap()
        .get_connection("k")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Retry-After: 86400 s; connctl waits at most 30 s"),
        "{err}"
    );
}

// ---- transport and URLs -----------------------------------------------------------------

#[tokio::test]
async fn a_server_without_tls_is_a_tls_error_not_unreachable() {
    let plain = Server::start(|_, _| raw(StatusCode::OK, "text/plain", "hello")).await;
    let https = plain.url.replace("http://", "https://");
    let err = client(&https).get_connection("k").await.unwrap_err();
    assert!(matches!(err, ApiError::Tls { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("TLS with Immuta at https://127.0.0.1:"), "{msg}");
    assert!(msg.contains("handshake failed"), "the reason is given: {msg}");
    assert!(!msg.contains("refused or unreachable"), "{msg}");
    assert!(!err.is_transient(), "a TLS failure does not go away by retrying");
}

#[test]
fn a_url_without_a_scheme_gets_a_hint() {
    let err = connctl_immuta::check_url("acme.hosted.immutacloud.com").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Immuta URL acme.hosted.immutacloud.com: it has no scheme"
    );
    assert_eq!(
        err.help().as_deref(),
        Some("did you mean https://acme.hosted.immutacloud.com?")
    );
}

// ---- shapes of undocumented answers -----------------------------------------------------

fn hit(key: &str) -> Value {
    json!({"objectPath": [key], "technology": "Snowflake", "state": "active"})
}

/// Renders one page of hits and the total as a search answer.
type Shape = fn(Vec<Value>, usize) -> Value;

/// A tenant of `n` connections whose search answers `shape(page, total)`, obeying offset and
/// size (`page_size` overrides the size asked, like a server with a smaller maximum).
async fn tenant(n: usize, page_size: Option<usize>, shape: Shape) -> Server {
    Server::start(move |seen, _| {
        let query = seen.path_and_query.split_once('?').map_or("", |(_, q)| q);
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse::<usize>().ok())
        };
        let offset = param("offset").unwrap_or(0);
        let size = page_size.or(param("size")).unwrap_or(100);
        let page: Vec<Value> = (0..n)
            .skip(offset)
            .take(size)
            .map(|i| hit(&format!("c{i:04}")))
            .collect();
        json_answer(StatusCode::OK, shape(page, n))
    })
    .await
}

#[tokio::test]
async fn the_listing_accepts_each_envelope_and_pages() {
    let shapes: [(&str, Shape); 5] = [
        ("hits+count", |p, n| json!({"hits": p, "count": n})),
        ("results+total", |p, n| json!({"results": p, "total": n})),
        ("data", |p, _| json!({"data": p})),
        ("array", |p, _| Value::Array(p)),
        ("hits, no count", |p, _| json!({"hits": p})),
    ];
    for (name, shape) in shapes {
        // 2,500 connections: three pages of 1,000 asked.
        let immuta = tenant(2500, None, shape).await;
        let hits = client(&immuta.url).list_connections(0, 1).await.unwrap();
        assert_eq!(hits.len(), 2500, "{name}");
        assert_eq!(hits[2499].key(), Some("c2499"), "{name}");
        assert_eq!(immuta.seen().len(), 3, "{name}: pages read");
    }
    // A server with a smaller page than asked, and a count: pages until the count.
    let immuta = tenant(250, Some(100), |p, n| json!({"hits": p, "count": n})).await;
    assert_eq!(
        client(&immuta.url).list_connections(0, 1).await.unwrap().len(),
        250
    );
    assert_eq!(immuta.seen().len(), 3);
}

#[tokio::test]
async fn the_listing_deduplicates_and_never_passes_off_a_part_as_the_whole() {
    // Duplicates within a page are dropped.
    let immuta = Server::start(|_, _| {
        json_answer(
            StatusCode::OK,
            json!({"hits": [hit("a"), hit("a"), hit("b")], "count": 2}),
        )
    })
    .await;
    let keys: Vec<String> = client(&immuta.url)
        .list_connections(0, 1)
        .await
        .unwrap()
        .iter()
        .filter_map(|h| h.key().map(str::to_owned))
        .collect();
    assert_eq!(keys, ["a", "b"]);

    // Ignores offset and size: the same 1,000 hits again, with a larger count.
    let immuta = Server::start(|_, _| {
        let all: Vec<Value> = (0..1000).map(|i| hit(&format!("c{i}"))).collect();
        json_answer(StatusCode::OK, json!({"hits": all, "count": 5000}))
    })
    .await;
    let err = client(&immuta.url).list_connections(0, 1).await.unwrap_err();
    assert!(err.to_string().contains("stopped at 1000 of the 5000"), "{err}");
    assert_eq!(immuta.seen().len(), 2);

    // The same without a count: a full page again cannot be trusted either.
    let immuta = Server::start(|_, _| {
        let all: Vec<Value> = (0..1000).map(|i| hit(&format!("c{i}"))).collect();
        json_answer(StatusCode::OK, Value::Array(all))
    })
    .await;
    let err = client(&immuta.url).list_connections(0, 1).await.unwrap_err();
    assert!(err.to_string().contains("ignore `offset`"), "{err}");

    // A count larger than what the pages hold: an error, not a short list.
    let immuta = tenant(30, None, |p, _| json!({"hits": p, "count": 31})).await;
    let err = client(&immuta.url).list_connections(0, 1).await.unwrap_err();
    assert!(err.to_string().contains("stopped at 30 of the 31"), "{err}");
}

/// The offsets of the listing pages a server saw, in order.
fn offsets(server: &Server) -> Vec<usize> {
    server
        .seen()
        .iter()
        .filter_map(|s| {
            let (_, q) = s.path_and_query.split_once("offset=")?;
            q.split('&').next()?.parse().ok()
        })
        .collect()
}

#[tokio::test]
async fn the_listing_asks_the_pages_it_expects_at_once() {
    // Each page waits until all three were asked: a client asking them one after another
    // would get a refusal for the first instead (after a generous bound, not a timing check).
    let gate = Arc::new(tokio::sync::Barrier::new(3));
    let app = axum::Router::new().fallback(move |req: Request| {
        let gate = gate.clone();
        async move {
            let query = req.uri().query().unwrap_or_default().to_owned();
            let offset: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if tokio::time::timeout(Duration::from_secs(20), gate.wait())
                .await
                .is_err()
            {
                return json_answer(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "pages not asked at once"}),
                );
            }
            let page: Vec<Value> = (offset..2500.min(offset + 1000))
                .map(|i| hit(&format!("c{i:04}")))
                .collect();
            json_answer(StatusCode::OK, json!({"hits": page, "count": 2500}))
        }
    });
    let url = serve(app).await;
    let hits = client(&url).list_connections(2500, 8).await.unwrap();
    assert_eq!(hits.len(), 2500);
    assert_eq!(hits[2499].key(), Some("c2499"));
}

#[tokio::test]
async fn pages_asked_ahead_are_used_only_where_they_fit() {
    // A server with smaller pages than asked: the pages asked ahead (1000, 2000) start past
    // where the listing stands, so they are dropped and it goes on page by page.
    let immuta = tenant(250, Some(100), |p, n| json!({"hits": p, "count": n})).await;
    let hits = client(&immuta.url).list_connections(2500, 8).await.unwrap();
    assert_eq!(hits.len(), 250);
    assert_eq!(hits[249].key(), Some("c0249"));
    let mut asked = offsets(&immuta);
    asked.sort_unstable();
    assert_eq!(asked, [0, 100, 200, 1000, 2000]);

    // Fewer connections than expected, and a server that refuses an offset past its end: the
    // refused page was not needed, so the listing is whole and no error.
    let immuta = Server::start(|seen, _| {
        let offset: usize = seen
            .path_and_query
            .split_once("offset=")
            .and_then(|(_, q)| q.split('&').next()?.parse().ok())
            .unwrap_or(0);
        if offset >= 900 {
            return json_answer(StatusCode::BAD_REQUEST, json!({"message": "offset past the end"}));
        }
        let page: Vec<Value> = (offset..900).map(|i| hit(&format!("c{i:04}"))).collect();
        json_answer(StatusCode::OK, json!({"hits": page, "count": 900}))
    })
    .await;
    assert_eq!(
        client(&immuta.url).list_connections(2000, 8).await.unwrap().len(),
        900
    );

    // A server that ignores `offset` is still caught when the pages were asked at once.
    let immuta = Server::start(|_, _| {
        let all: Vec<Value> = (0..1000).map(|i| hit(&format!("c{i}"))).collect();
        json_answer(StatusCode::OK, json!({"hits": all, "count": 5000}))
    })
    .await;
    let err = client(&immuta.url).list_connections(5000, 8).await.unwrap_err();
    assert!(err.to_string().contains("stopped at 1000 of the 5000"), "{err}");
    let mut asked = offsets(&immuta);
    asked.sort_unstable();
    assert_eq!(asked, [0, 1000, 2000, 3000]);
}

#[tokio::test]
async fn an_unreadable_listing_is_an_error_never_an_empty_tenant() {
    for body in [
        json!({"items": [hit("a")], "count": 1}),
        json!({}),
        json!({"hits": {"a": 1}}),
        json!([{"name": "no object path"}]),
        json!({"hits": [hit("a")], "count": "one"}),
        json!("nothing"),
    ] {
        let answer = body.clone();
        let immuta = Server::start(move |_, _| json_answer(StatusCode::OK, answer.clone())).await;
        let err = client(&immuta.url).list_connections(0, 1).await.unwrap_err();
        assert!(
            matches!(err, ApiError::UnexpectedAnswer { .. }),
            "{body}: {err:?}"
        );
        assert!(
            err.to_string().contains("/data/object/search answered 200"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn object_calls_encode_each_name_and_list_children_over_all_pages() {
    // 1,500 children of a schema whose name holds a `/`, with a smaller page than asked.
    let immuta = Server::start(|seen, _| {
        let (path, query) = seen
            .path_and_query
            .split_once('?')
            .unwrap_or((&seen.path_and_query, ""));
        match (seen.method.as_str(), path) {
            ("POST", "/data/object/search/k/DB/odd%2Fname") => {
                let offset = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("offset="))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                // Every 10th hit is a grandchild: a server that lists every descendant.
                let page: Vec<Value> = (offset..1500)
                    .take(600)
                    .map(|i| match i % 10 {
                        9 => json!({"objectPath": ["k", "DB", "odd/name", format!("T{i}"), "C"]}),
                        _ => json!({"objectPath": ["k", "DB", "odd/name", format!("T{i}")]}),
                    })
                    .collect();
                json_answer(StatusCode::OK, json!({"hits": page, "count": 1500}))
            }
            ("GET", "/data/object/k/my.db/100%25") => json_answer(
                StatusCode::OK,
                json!({"objectPath": ["k", "my.db", "100%"], "state": "inactive",
                       "settings": {"activateNewChildren": {"value": true, "hasDescendantsWithOverrides": true}}}),
            ),
            ("PUT", "/data/settings/k/a%20b") => json_answer(StatusCode::OK, json!({"bulkId": "b-1"})),
            ("POST", "/data/crawl/k/Z%C3%BCrich") => json_answer(StatusCode::OK, json!({"bulkId": "b-2"})),
            _ => json_answer(StatusCode::NOT_FOUND, json!({"message": "no such object"})),
        }
    })
    .await;
    let client = client(&immuta.url);
    let p = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();

    let children = client
        .list_object_children(&p(&["k", "DB", "odd/name"]))
        .await
        .unwrap();
    assert_eq!(children.len(), 1350, "the direct children only");
    assert_eq!(children[1349].object_path[3], "T1498");
    assert_eq!(
        client
            .count_object_children(&p(&["k", "DB", "odd/name"]))
            .await
            .unwrap(),
        Some(1500)
    );

    let object = client
        .get_data_object(&p(&["k", "my.db", "100%"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(object.is_active(), Some(false));
    assert_eq!(object.activate_new_children(), Some(true));
    assert!(object.has_descendants_with_overrides());
    assert!(
        client
            .get_data_object(&p(&["k", "nope"]))
            .await
            .unwrap()
            .is_none()
    );

    let body = connctl_immuta::payload::object_settings(Some(true), None);
    assert_eq!(body, json!({"settings": {"isActive": true}}));
    let bulk = client
        .update_object_settings(&p(&["k", "a b"]), &body)
        .await
        .unwrap();
    assert_eq!(bulk.as_deref(), Some("b-1"));
    assert_eq!(
        client.crawl(&p(&["k", "Zürich"])).await.unwrap().as_deref(),
        Some("b-2")
    );

    let seen = immuta.seen();
    let put = seen.iter().find(|s| s.method == "PUT").unwrap();
    assert_eq!(serde_json::from_str::<Value>(&put.body).unwrap(), body);
    // Pages of 600 until the count: three searches for the listing, one for the count.
    let searches = seen
        .iter()
        .filter(|s| s.path_and_query.starts_with("/data/object/search/"))
        .count();
    assert_eq!(searches, 4);
    // An unaddressable name is refused before anything is sent.
    let before = immuta.seen().len();
    let err = client.get_data_object(&p(&["k", ".."])).await.unwrap_err();
    assert!(matches!(err, ApiError::BadObjectPath { .. }), "{err}");
    assert_eq!(immuta.seen().len(), before);
}

#[tokio::test]
async fn jobs_accept_an_array_a_keyed_object_or_an_envelope() {
    let job = |id: &str, state: &str| json!({"id": id, "state": state, "output": null});
    let shapes = [
        json!([job("j1", "completed"), job("j2", "active")]),
        json!({"j1": job("j1", "completed"), "j2": {"state": "active"}}),
        json!({"jobs": [job("j1", "completed"), job("j2", "active")]}),
        json!({"hits": [job("j1", "completed"), job("j2", "active")], "count": 2}),
        json!({"data": [job("j1", "completed"), job("j2", "active")]}),
    ];
    for body in shapes {
        let answer = body.clone();
        let immuta = Server::start(move |_, _| json_answer(StatusCode::OK, answer.clone())).await;
        let jobs = client(&immuta.url).jobs("bulk-1").await.unwrap();
        let got: Vec<(Option<String>, String)> =
            jobs.into_iter().map(|j| (j.id, j.state.to_string())).collect();
        assert_eq!(
            got,
            vec![
                (Some("j1".into()), "completed".into()),
                (Some("j2".into()), "active".into())
            ],
            "{body}"
        );
    }
    for body in [
        json!({"j1": "completed"}),
        json!({"jobs": "none"}),
        json!(7),
        json!([{"id": "j1"}]),
    ] {
        let answer = body.clone();
        let immuta = Server::start(move |_, _| json_answer(StatusCode::OK, answer.clone())).await;
        let err = client(&immuta.url).jobs("bulk-1").await.unwrap_err();
        assert!(
            matches!(err, ApiError::UnexpectedAnswer { .. }),
            "{body}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_current_user_is_read_only_from_an_answer_that_lists_permissions() {
    let answer = |body: Value| async move {
        let immuta = Server::start(move |_, _| json_answer(StatusCode::OK, body.clone())).await;
        client(&immuta.url).current_user().await
    };
    // The swagger's shape: own and group permissions, either may be missing.
    let user = answer(json!({"userid": "svc", "permissions": ["CREATE_DATA_SOURCE"], "groupPermissions": ["APPLICATION_ADMIN"]}))
        .await
        .unwrap();
    let held: Vec<&String> = user.all_permissions().collect();
    assert_eq!(held, ["CREATE_DATA_SOURCE", "APPLICATION_ADMIN"]);
    let user = answer(json!({"userid": "svc", "groupPermissions": []}))
        .await
        .unwrap();
    assert_eq!(user.all_permissions().count(), 0, "an empty list is an answer");
    // Another shape is not a user without permissions (preflight would fail a good key).
    for body in [
        json!({"userid": "svc"}),
        json!({"user": {"permissions": ["CREATE_DATA_SOURCE"]}}),
        json!({}),
    ] {
        let err = answer(body.clone()).await.unwrap_err();
        assert!(
            matches!(err, ApiError::UnexpectedAnswer { .. }),
            "{body}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains("neither `permissions` nor `groupPermissions`"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn the_pages_at_once_stay_within_the_requests_allowed_and_one_not_needed_holds_nothing_up() {
    assert_eq!(connctl_immuta::pages_at_once(2500, 8), 3);
    assert_eq!(connctl_immuta::pages_at_once(2500, 2), 2);
    assert_eq!(connctl_immuta::pages_at_once(2500, 0), 1);
    assert_eq!(connctl_immuta::pages_at_once(0, 8), 1);
    assert_eq!(connctl_immuta::pages_at_once(100_000, 64), 4);

    // One request allowed: the pages go one after another (never two in flight).
    let now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (n, m) = (now.clone(), most.clone());
    let app = axum::Router::new().fallback(move |req: Request| {
        let (now, most) = (n.clone(), m.clone());
        async move {
            use std::sync::atomic::Ordering::SeqCst;
            let inside = now.fetch_add(1, SeqCst) + 1;
            most.fetch_max(inside, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            let offset: usize = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("offset=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let page: Vec<Value> = (offset..2500.min(offset + 1000))
                .map(|i| hit(&format!("c{i:04}")))
                .collect();
            now.fetch_sub(1, SeqCst);
            json_answer(StatusCode::OK, json!({"hits": page, "count": 2500}))
        }
    });
    let url = serve(app).await;
    assert_eq!(client(&url).list_connections(2500, 1).await.unwrap().len(), 2500);
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A page asked ahead that never answers, while the first already holds the whole listing:
    // the listing ends without it (bounded at 20 s here; the hung page would hold 10 minutes).
    let app = axum::Router::new().fallback(move |req: Request| async move {
        if req.uri().query().is_some_and(|q| !q.contains("offset=0&")) {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        let page: Vec<Value> = (0..900).map(|i| hit(&format!("c{i:04}"))).collect();
        json_answer(StatusCode::OK, json!({"hits": page, "count": 900}))
    });
    let url = serve(app).await;
    let got = tokio::time::timeout(Duration::from_secs(20), client(&url).list_connections(2000, 8))
        .await
        .expect("the listing waited for a page it did not need");
    assert_eq!(got.unwrap().len(), 900);
}
