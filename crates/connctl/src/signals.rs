//! SIGINT and SIGTERM during `apply` (CI cancels a job with SIGTERM).
//!
//! The first signal asks the engine to stop: no new step starts, the requests in flight finish
//! or time out, `command` executor children are terminated, and the apply returns with what was
//! left unfinished, so the state is written and the lock released before exiting 130 (SIGINT) or
//! 143 (SIGTERM). A second signal exits at once: every state write is atomic, so the file on disk
//! is whole, and the next apply resumes from it. Other commands keep the default (exit at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Context as _, Result};
use connctl_engine::apply::Stop;

/// A signal that stops an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// 128 + the signal number, as a shell reports a process killed by it.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    fn from_code(code: u8) -> Option<Signal> {
        [Signal::Interrupt, Signal::Terminate]
            .into_iter()
            .find(|s| s.exit_code() == code)
    }
}

/// Which signal arrived, if any.
pub struct Received(Arc<AtomicU8>);

impl Received {
    pub fn received(&self) -> Option<Signal> {
        Signal::from_code(self.0.load(Ordering::SeqCst))
    }
}

/// Handles SIGINT and SIGTERM from now on: the first requests `stop`, the second exits.
#[cfg(unix)]
pub fn watch(stop: Stop) -> Result<Received> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let first = Arc::new(AtomicU8::new(0));
    let seen = first.clone();
    tokio::spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = interrupt.recv() => Signal::Interrupt,
                _ = terminate.recv() => Signal::Terminate,
            };
            if seen
                .compare_exchange(0, signal.exit_code(), Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                eprintln!(
                    "connctl: {} again: exiting now; the state file is whole and the next apply resumes",
                    signal.name()
                );
                std::process::exit(i32::from(signal.exit_code()));
            }
            eprintln!(
                "connctl: {}: finishing the steps in flight, then stopping (send it again to exit at once)",
                signal.name()
            );
            stop.request();
        }
    });
    Ok(Received(first))
}

/// Elsewhere the default handling stays: Ctrl-C ends the process.
#[cfg(not(unix))]
pub fn watch(_stop: Stop) -> Result<Received> {
    Ok(Received(Arc::new(AtomicU8::new(0))))
}
