//! The axum router: shared state, the front middleware (request log, latency, rate limit,
//! programmed and random faults) and the route table for Immuta, Snowflake, Databricks and the
//! `/_emulator/` admin API; [`App`] serves it beside the other host.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, patch, post, put};
use serde::Serialize;

use crate::EmulatorConfig;
use crate::error::envelope;
use crate::faults::{self, InjectedFault, RateWindow};
use crate::lost::{self, Cut, CuttableListener, OtherHost};
use crate::store::Store;
use crate::{admin, auth, databricks, immuta, snowflake};

/// Entries kept in the request log (oldest dropped first).
const LOG_CAP: usize = 200_000;

#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The status the client was sent; 0 when the connection was cut without an answer.
    pub status: u16,
    /// Milliseconds since the emulator started, when the request arrived.
    pub at_ms: u64,
    /// The programmed fault that met this request (`reset`, `timeout`, `redirect` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    /// Under a fault: the status the handler answered when the request reached it (the write
    /// happened), `null` when it never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled: Option<u16>,
}

pub struct AppState {
    pub cfg: EmulatorConfig,
    store: Mutex<Store>,
    pub start: Instant,
    pub seq: AtomicU64,
    pub rate: Mutex<RateWindow>,
    pub log: Mutex<VecDeque<LogEntry>>,
    pub injected: Mutex<Vec<InjectedFault>>,
    pub immuta_tokens: Mutex<HashSet<String>>,
    pub warehouse_tokens: Mutex<HashSet<String>>,
    /// Where cross-origin redirects point.
    pub other_host: OtherHost,
}

pub type Shared = Arc<AppState>;

/// Lock a mutex, ignoring poisoning (a panicked handler must not wedge the emulator).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    /// Read the store.
    pub fn read<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.store))
    }

    /// Change the store and persist it when `--state-file` is set.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = lock(&self.store);
        let out = f(&mut store);
        if let Some(path) = &self.cfg.state_file
            && let Err(e) = store.save(path)
        {
            tracing::error!("cannot write state file {}: {e}", path.display());
        }
        out
    }

    pub fn step_ms(&self) -> u64 {
        self.cfg.job_step_ms
    }
}

/// The emulator's router and the other host, ready to serve.
pub struct App {
    router: Router,
    other_host: OtherHost,
    other_listener: std::net::TcpListener,
}

impl App {
    pub fn new(cfg: EmulatorConfig) -> std::io::Result<App> {
        let (other_host, other_listener) = OtherHost::bind()?;
        let router = router(cfg, other_host.clone())?;
        Ok(App {
            router,
            other_host,
            other_listener,
        })
    }

    pub fn other_host_addr(&self) -> std::net::SocketAddr {
        self.other_host.addr
    }

    /// Serves the emulator on `listener` and the other host on its own port, until either fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let main = axum::serve(
            CuttableListener(listener),
            self.router.into_make_service_with_connect_info::<Cut>(),
        );
        tokio::select! {
            res = main => res,
            res = self.other_host.serve(self.other_listener) => res,
        }
    }
}

fn router(cfg: EmulatorConfig, other_host: OtherHost) -> std::io::Result<Router> {
    let store = match &cfg.state_file {
        Some(p) => Store::load(p)?,
        None => Store::default(),
    };
    let mut store = store;
    for host in &cfg.existing_integrations {
        crate::preflight::seed_integration(&mut store, host);
    }
    let injected = cfg.faults.clone();
    let state: Shared = Arc::new(AppState {
        cfg,
        store: Mutex::new(store),
        start: Instant::now(),
        seq: AtomicU64::new(0),
        rate: Mutex::new(RateWindow::default()),
        log: Mutex::new(VecDeque::new()),
        injected: Mutex::new(injected),
        immuta_tokens: Mutex::new(HashSet::new()),
        warehouse_tokens: Mutex::new(HashSet::new()),
        other_host,
    });

    let immuta_routes = Router::new()
        .route("/integrations", get(immuta::integrations::list))
        .route(
            "/integrations/scripts/create",
            post(immuta::integrations::script_create),
        )
        .route(
            "/integrations/{id}",
            get(immuta::integrations::get_one)
                .put(immuta::integrations::put_one)
                .delete(immuta::integrations::delete_one),
        )
        .route("/integrations/{id}/status", get(immuta::integrations::status))
        .route(
            "/integrations/{id}/scripts/edit",
            post(immuta::integrations::script_edit),
        )
        .route(
            "/integrations/{id}/scripts/delete",
            post(immuta::integrations::script_delete),
        )
        .route("/data/connection/test", post(immuta::connections::test))
        .route("/data/connection", post(immuta::connections::register))
        .route(
            "/data/connection/{key}",
            get(immuta::connections::get_one).put(immuta::connections::put_one),
        )
        .route("/data/object/search", post(immuta::objects::search))
        .route(
            "/data/object/search/{*path}",
            post(immuta::objects::search_children),
        )
        .route(
            "/data/object/{*path}",
            get(immuta::objects::get_one).delete(immuta::objects::delete_one),
        )
        .route("/data/settings/{*path}", put(immuta::objects::settings))
        .route("/data/crawl/{*path}", post(immuta::objects::crawl))
        .route("/jobs", get(immuta::jobs::by_bulk))
        .route("/jobs/statuses", post(immuta::jobs::statuses))
        .route(
            "/bim/rpc/user/current",
            get(crate::preflight::routes::current_user),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::preflight::routes::connection_api_gate,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::immuta_auth));

    let admin_routes = Router::new()
        .route("/_emulator/reset", post(admin::reset))
        .route(
            "/_emulator/requests",
            get(admin::requests).delete(admin::clear_requests),
        )
        .route(
            "/_emulator/connections/{key}",
            patch(admin::patch_connection).delete(admin::delete_connection),
        )
        .route("/_emulator/integrations/{id}", patch(admin::patch_integration))
        .route("/_emulator/integrations", post(admin::add_integration))
        .route(
            "/_emulator/objects/{*path}",
            patch(admin::patch_object)
                .post(immuta::objects::admin::post)
                .get(immuta::objects::admin::get),
        )
        .route(
            "/_emulator/faults",
            post(admin::add_fault)
                .get(admin::list_faults)
                .delete(admin::clear_faults),
        )
        .route("/_emulator/state", get(admin::state))
        .route("/_emulator/jobs/end-next", post(admin::end_next_jobs))
        .route(
            "/_emulator/other-host",
            get(admin::other_host).delete(admin::clear_other_host),
        )
        .route("/_emulator/seed", post(admin::seed));

    let app = Router::new()
        .route("/bim/apikey/authenticate", post(auth::authenticate))
        .route("/api/v2/statements", post(snowflake::submit))
        .route("/api/v2/statements/{handle}", get(snowflake::status))
        .route("/api/v2/statements/{handle}/cancel", post(snowflake::cancel))
        .route("/api/2.0/sql/statements", post(databricks::submit))
        .route("/api/2.0/sql/statements/{id}", get(databricks::status))
        .route("/api/2.0/sql/statements/{id}/cancel", post(databricks::cancel))
        .route("/oidc/v1/token", post(databricks::token))
        .route(
            "/api/2.0/preview/scim/v2/Me",
            get(crate::preflight::routes::scim_me),
        )
        .merge(immuta_routes)
        .merge(admin_routes)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state);
    Ok(app)
}

async fn fallback(req: Request) -> Response {
    envelope(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    envelope(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method {} not allowed on {}", req.method(), req.uri().path()),
    )
}

fn is_admin(path: &str) -> bool {
    path == "/_emulator" || path.starts_with("/_emulator/")
}

/// Log every non-admin request and apply latency and faults before handing it on. The work runs
/// in its own task, so a client that gives up (a timeout, a late answer) does not cancel it: the
/// write still lands and the request is still logged, as on a real server.
async fn front(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if is_admin(req.uri().path()) {
        return next.run(req).await;
    }
    let (response, cut_after) = match tokio::spawn(handle(st, req, next)).await {
        Ok(done) => done,
        Err(e) => {
            return envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("emulator task failed: {e}"),
            );
        }
    };
    if let Some((after, cut)) = cut_after {
        tokio::time::sleep(after).await;
        if let Some(cut) = cut {
            cut.cut();
        }
    }
    response
}

/// The response to one logged request, and when to cut its connection instead of answering.
async fn handle(st: Shared, req: Request, next: Next) -> (Response, Option<(Duration, Option<Cut>)>) {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let query = req.uri().query().map(str::to_string);
    let seq = st.seq.fetch_add(1, Ordering::SeqCst);
    let at_ms = st.start.elapsed().as_millis() as u64;
    let cfg = &st.cfg;

    let delay = cfg.latency_ms + faults::jitter(cfg.seed, seq, cfg.jitter_ms);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let mut fault = None;
    let mut handled = None;
    let mut cut_after = None;
    let response = 'resp: {
        if let Some(limit) = cfg.rate_limit {
            let admitted = lock(&st.rate).admit(limit, Instant::now());
            if let Err(retry_after) = admitted {
                let mut r = envelope(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("rate limit of {limit} requests per second exceeded"),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    r.headers_mut().insert("retry-after", v);
                }
                break 'resp r;
            }
        }
        let injected = faults::take_injected(&mut lock(&st.injected), &method, &path);
        if let Some(f) = injected {
            fault = Some(f.kind.name());
            let faulted = lost::respond(&f, st.other_host.addr, req, next).await;
            handled = faulted.handled;
            cut_after = faulted.cut_after;
            break 'resp faulted.response;
        }
        if faults::fault_decision(cfg.seed, seq, cfg.fail_rate) {
            break 'resp envelope(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("injected fault (fail rate {}, request {seq})", cfg.fail_rate),
            );
        }
        next.run(req).await
    };

    let entry = LogEntry {
        seq,
        method,
        path,
        query,
        // 0: the connection is cut, nothing reaches the client.
        status: if cut_after.is_some() {
            0
        } else {
            response.status().as_u16()
        },
        at_ms,
        fault,
        handled,
    };
    let mut log = lock(&st.log);
    if log.len() >= LOG_CAP {
        log.pop_front();
    }
    log.push_back(entry);
    drop(log);
    (response, cut_after)
}
