//! `connctl export`: writes YAML for connections that exist in Immuta (secrets as placeholders, or
//! provider references with `--secret-ref`), and with `--objects` their data objects set apart
//! from their parent's settings.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::cli::CommonArgs;
use crate::context::Context;

pub(super) async fn run(
    ctx: &Context,
    keys: &[String],
    out: Option<&Path>,
    common: &CommonArgs,
    secret_ref: Option<&str>,
    objects: bool,
) -> Result<u8> {
    let walk = objects.then(|| ctx.settings.parallelism(common));
    let yaml = crate::export::export(&ctx.client(common)?, keys, secret_ref, walk).await?;
    match out {
        Some(path) => {
            // 0600 like the state: it lists every connection and its settings.
            let mut file = connctl_engine::state::private_new_file(path)
                .with_context(|| format!("cannot create {} (export never overwrites)", path.display()))?;
            file.write_all(yaml.as_bytes())?;
            crate::view::notice::wrote("", path);
        }
        None => print!("{yaml}"),
    }
    Ok(0)
}
