//! `connctl completions`: prints shell completions.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;

pub(super) fn run(shell: clap_complete::Shell) -> Result<u8> {
    clap_complete::generate(shell, &mut Cli::command(), "connctl", &mut std::io::stdout());
    Ok(0)
}
