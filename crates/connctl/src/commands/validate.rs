//! `connctl validate`: checks connection files without contacting anything.

use std::path::PathBuf;

use anyhow::Result;

use crate::Reported;
use crate::context::Context;
use crate::view;

pub(super) fn run(ctx: &Context, paths: &[PathBuf], resolve_secrets: bool) -> Result<u8> {
    let desired = ctx.load_desired(paths)?;
    if resolve_secrets {
        let report = connctl_spec::check_secrets(&desired);
        if report.has_errors() {
            eprint!("{}", report.render(ctx.color));
            return Err(Reported(1).into());
        }
        if !report.is_empty() {
            eprint!("{}", report.render(ctx.color));
        }
    }
    let n = desired.connections.len();
    let files = desired.files.len();
    view::notice::validated(n, files, resolve_secrets);
    Ok(0)
}
