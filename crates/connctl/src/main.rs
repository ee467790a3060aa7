//! connctl: the binary. Parses the command line, sets up logging and colour, and dispatches to
//! the commands. Business rules live in the library crates; this crate only wires and renders.

mod cli;
mod commands;
mod context;
mod error;
mod export;
mod probe;
mod runner;
mod settings;
mod signals;
mod view;

use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, ColorChoice, LogFormat};

/// An error already reported to the user; exit with this code and print nothing more.
#[derive(Debug)]
pub struct Reported(pub u8);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Reported {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = use_color(cli.global.color);
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Under `ulimit -f`, a state write that crosses the limit must fail and be reported, not
    // kill connctl silently.
    if let Err(e) = runtime.block_on(async { connctl_engine::state::survive_file_size_limit() }) {
        tracing::debug!("cannot handle SIGXFSZ: {e}");
    }
    match runtime.block_on(commands::run(cli, color)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Reported(code)) = e.downcast_ref::<Reported>() {
                return ExitCode::from(*code);
            }
            eprint!("{}", error::render(&e, color));
            ExitCode::from(1)
        }
    }
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = if cli.global.quiet {
        "error"
    } else {
        match cli.global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    // Only connctl's own crates log at the chosen level; dependencies stay at warn.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,connctl={level},connctl_engine={level},connctl_immuta={level},connctl_exec={level},connctl_spec={level}"
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr)
        .with_target(false);
    match cli.global.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder
            .with_ansi(use_color(cli.global.color) && std::io::stderr().is_terminal())
            .init(),
    }
}

/// The log writer: standard error, with every secret of the run removed from each log line.
struct RedactingStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One event, buffered whole so a secret cannot be split across two writes, redacted and
/// written when the event is done.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().write_all(connctl_spec::redact(&text).as_bytes());
    }
}
