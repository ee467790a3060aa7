//! The `connctl-emulator` binary: parses flags, binds the listener, prints
//! `listening on http://ADDR` as the first stdout line and serves until SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use connctl_emulator::{ChildrenSearch, EmulatorConfig, JobsShape, ObjectShape, SearchShape};

/// An Immuta + Snowflake SQL API + Databricks Statement Execution API emulator for connctl tests,
/// benchmarks and demos. All three APIs are served on one port; `/_emulator/` is the admin API.
#[derive(Debug, Parser)]
#[command(name = "connctl-emulator", version, term_width = 100)]
struct Args {
    /// Address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: SocketAddr,
    /// The Immuta API key clients must send (raw, or as Bearer, or exchanged for a token).
    #[arg(long, default_value = "emulator-api-key", value_name = "KEY")]
    api_key: String,
    /// Latency added to every Immuta and warehouse request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,
    /// Extra random latency, uniform in 0..=MS, decided by the seeded RNG per request.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    jitter_ms: u64,
    /// Fraction (0.0-1.0) of Immuta and warehouse requests answered 503.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION", value_parser = parse_rate)]
    fail_rate: f64,
    /// Requests per second admitted before answering 429 with Retry-After (unlimited if unset).
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Seed of the per-request RNG: the same seed gives the same fault and jitter sequence.
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// Duration of one step of a bulk job or warehouse statement, in milliseconds.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    job_step_ms: u64,
    /// Persist the emulator's objects as JSON here after every change, and load them at start.
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
    /// Bearer token the warehouse APIs require (default: any non-empty token is accepted).
    #[arg(long, value_name = "TOKEN")]
    warehouse_token: Option<String>,
    /// Shape of GET /jobs answers: array, keyed (by job id) or envelope ({"jobs": [...]}).
    #[arg(long, value_enum, default_value_t = JobsShape::Array, value_name = "SHAPE", hide_possible_values = true)]
    jobs_shape: JobsShape,
    /// Shape of POST /data/object/search answers: hits ({hits, count}), results ({results, total}),
    /// data ({data}) or array.
    #[arg(long, value_enum, default_value_t = SearchShape::Hits, value_name = "SHAPE", hide_possible_values = true)]
    search_shape: SearchShape,
    /// Leave out a preflight prerequisite (repeatable): snowflake:"CREATE USER" (any of the six
    /// account privileges), snowflake:warehouse, snowflake:free-database, databricks:metastore,
    /// databricks:create-catalog, databricks:free-catalog, databricks:system-access.
    #[arg(long, value_name = "TECH:WHAT")]
    missing: Vec<connctl_emulator::Prerequisite>,
    /// Start with a Snowflake integration on HOST that no connection owns (repeatable).
    #[arg(long, value_name = "HOST")]
    existing_integration: Vec<String>,
    /// Refuse to enable an object with N or more objects below it (Immuta's limit: 100,000).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    max_activate_children: u64,
    /// Shape of GET /data/object answers: documented, flat (no settings.isActive),
    /// with-child-count or settings-only (no top-level state).
    #[arg(long, value_enum, default_value_t = ObjectShape::Documented, value_name = "SHAPE", hide_possible_values = true)]
    object_shape: ObjectShape,
    /// What POST /data/object/search/{path} lists: descendants (every object below) or direct.
    #[arg(long, value_enum, default_value_t = ChildrenSearch::Descendants, value_name = "WHICH", hide_possible_values = true)]
    children_search: ChildrenSearch,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0.0 and 1.0".into())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if !args.listen.ip().is_loopback() {
        eprintln!("error: --listen must be a loopback address (got {})", args.listen);
        return std::process::ExitCode::from(2);
    }
    let config = EmulatorConfig {
        api_key: args.api_key,
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        fail_rate: args.fail_rate,
        rate_limit: args.rate_limit,
        seed: args.seed,
        job_step_ms: args.job_step_ms,
        state_file: args.state_file,
        warehouse_token: args.warehouse_token,
        jobs_shape: args.jobs_shape,
        search_shape: args.search_shape,
        faults: Vec::new(),
        missing: args.missing,
        existing_integrations: args.existing_integration,
        max_activate_children: args.max_activate_children,
        object_shape: args.object_shape,
        children_search: args.children_search,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{addr}")?;
            out.flush()?;
        }
        tokio::select! {
            res = connctl_emulator::serve(config, listener) => res,
            _ = shutdown_signal() => Ok(()),
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
