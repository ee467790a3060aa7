//! `connctl-emulator`: an Immuta + Snowflake SQL API v2 + Databricks Statement Execution API
//! stand-in over real HTTP, for tests, benchmarks and the demo.
//!
//! This module owns the public entry points: [`EmulatorConfig`], [`serve`] and
//! [`RunningEmulator`]. Everything else is private plumbing; see `docs/emulator.md`.

mod admin;
mod auth;
mod databricks;
mod error;
mod faults;
mod immuta;
mod lost;
mod preflight;
mod scripts;
mod server;
mod snowflake;
mod sql;
mod store;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

pub use faults::{FaultKind, InjectedFault, fault_decision};
pub use immuta::objects::render::{ChildrenSearch, ObjectShape};
pub use immuta::shapes::{JobsShape, SearchShape};
pub use preflight::Prerequisite;

/// Knobs of one emulator instance. `Default` gives a fault-free, fast emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The Immuta API key every Immuta request must carry.
    pub api_key: String,
    /// Fixed latency added to every Immuta and warehouse request.
    pub latency_ms: u64,
    /// Extra latency, uniform in `0..=jitter_ms`, decided by the seeded RNG per request.
    pub jitter_ms: u64,
    /// Fraction (0.0..=1.0) of Immuta and warehouse requests answered with 503.
    pub fail_rate: f64,
    /// Requests per second admitted before answering 429 with `Retry-After`.
    pub rate_limit: Option<u32>,
    /// Seed of the per-request-sequence-number RNG (faults and jitter).
    pub seed: u64,
    /// Duration of one step of jobs and warehouse statements.
    pub job_step_ms: u64,
    /// Persist the store here as JSON after each mutation; load it at start.
    pub state_file: Option<PathBuf>,
    /// Bearer token the warehouse APIs accept; `None` accepts any non-empty token.
    pub warehouse_token: Option<String>,
    /// The shape of `GET /jobs?bulkId=` answers (undocumented; each one connctl accepts).
    pub jobs_shape: JobsShape,
    /// The shape of `POST /data/object/search` answers (undocumented; each one connctl accepts).
    pub search_shape: SearchShape,
    /// Faults programmed from the start, as `POST /_emulator/faults` adds them (a reset clears them).
    pub faults: Vec<InjectedFault>,
    /// Preflight prerequisites left out (`--missing`), so that exactly those checks fail.
    pub missing: Vec<Prerequisite>,
    /// Hosts with a Snowflake integration that no connection owns, from the start
    /// (`--existing-integration`; a reset clears them).
    pub existing_integrations: Vec<String>,
    /// Enabling an object with this many objects below it, or more, is refused (Immuta: "limited
    /// to parent objects with under 100,000 child objects"; `--max-activate-children`).
    pub max_activate_children: u64,
    /// The shape of `GET /data/object/{path}` answers (`--object-shape`).
    pub object_shape: ObjectShape,
    /// Which objects `POST /data/object/search/{path}` lists (`--children-search`).
    pub children_search: ChildrenSearch,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            api_key: "emulator-api-key".to_string(),
            latency_ms: 0,
            jitter_ms: 0,
            fail_rate: 0.0,
            rate_limit: None,
            seed: 0,
            job_step_ms: 50,
            state_file: None,
            warehouse_token: None,
            jobs_shape: JobsShape::default(),
            search_shape: SearchShape::default(),
            faults: Vec::new(),
            missing: Vec::new(),
            existing_integrations: Vec::new(),
            max_activate_children: 100_000,
            object_shape: ObjectShape::default(),
            children_search: ChildrenSearch::default(),
        }
    }
}

/// Serve the emulator on `listener` until the future is dropped or the listener fails.
pub async fn serve(config: EmulatorConfig, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    server::App::new(config)?.serve(listener).await
}

/// An emulator on its own thread and tokio runtime, bound to `127.0.0.1:0`; dropped = stopped.
pub struct RunningEmulator {
    addr: SocketAddr,
    other_host: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// Bind `127.0.0.1:0` and start serving in the background.
    pub fn start(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let app = server::App::new(config)?;
        let other_host = app.other_host_addr();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("connctl-emulator")
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("connctl-emulator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::select! {
                        res = app.serve(listener) => {
                            if let Err(e) = res {
                                tracing::error!("emulator stopped: {e}");
                            }
                        }
                        _ = rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::Error::other("emulator thread died during start")),
        }
        Ok(RunningEmulator {
            addr,
            other_host,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` of the other host, where cross-origin redirect faults point
    /// (what it received: `GET /_emulator/other-host`).
    pub fn other_host_url(&self) -> String {
        format!("http://{}", self.other_host)
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
