//! `connctl show`: prints a saved plan again, exactly as `plan` printed it (never contacts Immuta).

use std::path::Path;

use anyhow::Result;

use super::read_plan;
use crate::cli::Format;
use crate::view::{self, plan::Kind};

pub(super) fn run(plan: &Path, format: Format, color: bool) -> Result<u8> {
    view::plan::print(&read_plan(plan)?, format, Kind::Plan, color);
    Ok(0)
}
