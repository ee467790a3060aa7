//! `connctl render`: the YAML as the selected environment gets it (variables expanded, shared
//! defaults merged; secrets stay references).

use std::path::PathBuf;

use anyhow::Result;

use crate::Reported;
use crate::context::Context;

pub(super) fn run(ctx: &Context, paths: &[PathBuf]) -> Result<u8> {
    let paths = ctx.spec_paths(paths)?;
    match connctl_spec::render(&paths, &ctx.load_options()) {
        Ok(text) => {
            crate::view::notice::rendered(ctx.environment(), &text);
            Ok(0)
        }
        Err(report) => {
            eprint!("{}", report.render(ctx.color));
            eprintln!("error: {} problem(s) found", report.errors().count());
            Err(Reported(1).into())
        }
    }
}
