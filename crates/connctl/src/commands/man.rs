//! `connctl man`: writes the man pages.

use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::Cli;

pub(super) fn run(out: &Path) -> Result<u8> {
    std::fs::create_dir_all(out)?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, out)
        .with_context(|| format!("cannot write man pages to {}", out.display()))?;
    crate::view::notice::wrote("man pages to ", out);
    Ok(0)
}
