//! The apply report for people: each connection's outcome and the counts, and the lines apply
//! writes around them (the prompt, a stop by a signal). `--format json` uses [`super::report`].

use std::collections::BTreeMap;
use std::io::{self, Write};

use connctl_engine::apply::Outcome;
use owo_colors::Style;

use super::plan::paint;

/// Each connection's outcome, one line each, then the counts.
pub fn outcomes(out: &mut dyn Write, outcomes: &BTreeMap<String, Outcome>, color: bool) -> io::Result<()> {
    // An outcome's text can quote a server's or an executor's answer, which can echo a secret.
    let redact = |text: &str| connctl_spec::redact(text).into_owned();
    writeln!(out)?;
    let (mut ok, mut waiting, mut failed, mut skipped, mut interrupted) = (0, 0, 0, 0, 0);
    for (key, outcome) in outcomes {
        match outcome {
            Outcome::Applied { detail } => {
                ok += 1;
                writeln!(
                    out,
                    "  {} {key}: {}",
                    paint("✓", Style::new().green(), color),
                    redact(&detail.to_string())
                )?;
            }
            Outcome::AwaitingExecution { path } => {
                waiting += 1;
                writeln!(
                    out,
                    "  {} {key}: run the script saved at {} as a privileged user, then run `connctl apply` again",
                    paint("…", Style::new().yellow(), color),
                    path.display()
                )?;
            }
            Outcome::Skipped { reason } => {
                skipped += 1;
                writeln!(
                    out,
                    "  {} {key}: skipped: {}",
                    paint("-", Style::new().cyan(), color),
                    redact(&reason.to_string())
                )?;
            }
            Outcome::Failed { error } => {
                failed += 1;
                writeln!(
                    out,
                    "  {} {key}: {}",
                    paint("✗", Style::new().red(), color),
                    redact(&crate::error::apply_error_text(error))
                )?;
            }
            Outcome::Interrupted { detail, help } => {
                interrupted += 1;
                writeln!(
                    out,
                    "  {} {key}: interrupted: {}",
                    paint("‖", Style::new().yellow(), color),
                    crate::error::joined(detail.clone(), help)
                )?;
            }
        }
    }
    let stopped = if interrupted > 0 {
        format!(", {interrupted} interrupted")
    } else {
        String::new()
    };
    writeln!(
        out,
        "\nApply: {ok} applied, {waiting} awaiting execution, {skipped} skipped, {failed} failed{stopped}."
    )?;
    Ok(())
}

/// The question asked before applying without `--auto-approve`.
pub fn prompt(out: &mut dyn Write) -> io::Result<()> {
    write!(out, "\nApply these changes? Only 'yes' is accepted: ")?;
    out.flush()
}

/// The answer to anything but `yes`.
pub fn cancelled(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Apply cancelled; nothing was changed.")
}

/// After a stop by `signal`: what is left for the next apply.
pub fn stopped(out: &mut dyn Write, signal: &str, unfinished: &[&str]) -> io::Result<()> {
    writeln!(
        out,
        "Stopped by {signal}: {} connection(s) left unfinished{}{}; the state is saved and the next `connctl apply` resumes them.",
        unfinished.len(),
        if unfinished.is_empty() { "" } else { ": " },
        unfinished.join(", ")
    )
}
