//! Errors as the CLI shows them: a message and its help lines, kept apart as data until
//! `main` renders them (`error: …` then `  = help: …`). The library crates' errors carry their
//! help the same way (a `help()` method); [`help_of`] is the one place that collects it.

use std::fmt;

use connctl_engine::apply::ApplyError;
use connctl_engine::lock::LockError;
use connctl_engine::state::StateError;
use connctl_immuta::ApiError;

/// An error of the CLI itself, with what the user can do about it.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    help: Vec<String>,
}

impl Hinted {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Hinted {
        Hinted {
            message: message.into(),
            help: vec![help.into()],
        }
    }

    /// An error whose help (if any) comes from elsewhere, e.g. an engine error's `help()`.
    pub fn maybe(message: impl Into<String>, help: Option<&str>) -> Hinted {
        Hinted {
            message: message.into(),
            help: help.into_iter().map(str::to_owned).collect(),
        }
    }

    /// One more help line, shown after the others.
    pub fn and(mut self, help: impl Into<String>) -> Hinted {
        self.help.push(help.into());
        self
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Every help line of `error`'s chain, outermost first.
pub fn help_of(error: &anyhow::Error) -> Vec<String> {
    let mut out = Vec::new();
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<ApplyError>() {
            // Its help already brings its sources', which follow it in the chain.
            out.extend(e.help());
            break;
        }
        out.extend(own_help(cause));
    }
    out
}

/// The help of one link of a chain (not of its sources): the library errors that carry help.
fn own_help(cause: &(dyn std::error::Error + 'static)) -> Vec<String> {
    if let Some(e) = cause.downcast_ref::<Hinted>() {
        e.help.clone()
    } else if let Some(e) = cause.downcast_ref::<connctl_engine::saved::StalePlan>() {
        e.help().map(str::to_owned).into_iter().collect()
    } else if let Some(e) = cause.downcast_ref::<ApiError>() {
        e.help().into_iter().collect()
    } else if let Some(e) = cause.downcast_ref::<StateError>() {
        e.help().into_iter().collect()
    } else if let Some(e) = cause.downcast_ref::<LockError>() {
        e.help().into_iter().collect()
    } else {
        Vec::new()
    }
}

/// A message and its help lines as one text (`…` then `\n  = help: …` each), for where errors
/// travel as strings: a warning that quotes an error, a failed connection's line and the apply
/// report's JSON.
pub fn joined(message: impl Into<String>, help: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut text = message.into();
    for help in help {
        text.push_str("\n  = help: ");
        text.push_str(help.as_ref());
    }
    text
}

/// `error`'s chain and help lines as one text, for a warning that quotes an error.
pub fn with_help(error: &anyhow::Error) -> String {
    joined(format!("{error:#}"), help_of(error))
}

/// A failed connection's error as one text: its message, then its help (and its source's).
pub fn apply_error_text(error: &ApplyError) -> String {
    joined(error.to_string(), error.help())
}

/// An error ready to show: the whole cause chain as one message, and its help lines.
#[derive(Debug)]
struct Shown {
    message: String,
    help: Vec<String>,
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Shown {}

impl miette::Diagnostic for Shown {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.help.is_empty()).then(|| Box::new(self.help.join("\n")) as Box<dyn fmt::Display + 'a>)
    }
}

/// connctl's one layout for a diagnostic, as a miette handler: `error: …`, then one
/// `  = help: …` line per help line (rustc's layout, which CI logs and editors recognise).
/// Spec diagnostics add `--> file:line:col` and the source; `connctl_spec` renders those.
pub struct Layout {
    pub color: bool,
}

impl miette::ReportHandler for Layout {
    fn debug(&self, diagnostic: &dyn miette::Diagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        writeln!(f, "{prefix}: {diagnostic}")?;
        if let Some(help) = diagnostic.help() {
            for line in help.to_string().lines() {
                writeln!(f, "  = help: {line}")?;
            }
        }
        Ok(())
    }
}

/// `error` as the user sees it, every secret of the run removed.
pub fn render(error: &anyhow::Error, color: bool) -> String {
    struct Rendered<'a>(&'a Layout, &'a Shown);
    impl fmt::Display for Rendered<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            miette::ReportHandler::debug(self.0, self.1, f)
        }
    }
    let shown = Shown {
        message: format!("{error:#}"),
        help: help_of(error),
    };
    let text = Rendered(&Layout { color }, &shown).to_string();
    connctl_spec::redact(&text).into_owned()
}

impl Hinted {
    /// The message and its help lines as one text, for where errors travel as strings (the
    /// apply report's `errors`, documented with the help included).
    pub fn to_text(&self) -> String {
        joined(self.message.clone(), &self.help)
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn the_layout_is_error_then_one_help_line_each() {
        let error = anyhow::Error::new(
            Hinted::new("the state is lost", "check --state").and("or pass --allow-empty-state"),
        )
        .context("cannot plan");
        insta::assert_snapshot!(render(&error, false), @r"
        error: cannot plan: the state is lost
          = help: check --state
          = help: or pass --allow-empty-state
        ");
    }

    #[test]
    fn an_error_without_help_is_one_line_and_colour_only_paints_the_prefix() {
        let error = anyhow::anyhow!("boom");
        assert_eq!(render(&error, false), "error: boom\n");
        assert_eq!(render(&error, true), "\x1b[1;31merror\x1b[0m: boom\n");
    }

    #[test]
    fn engine_errors_bring_their_help() {
        let stale = connctl_engine::saved::StalePlan::StateChanged { then: 1, now: 2 };
        let error = anyhow::Error::new(stale);
        assert_eq!(
            render(&error, false),
            "error: stale plan: the state changed since the plan was made (serial 1 then, 2 now)\n  = help: run `connctl plan --out` again\n"
        );
    }

    #[test]
    fn a_hinted_error_keeps_its_text_for_the_json_report() {
        let e = Hinted::new("refusing", "pass --auto-approve");
        assert_eq!(e.to_text(), "refusing\n  = help: pass --auto-approve");
    }

    #[test]
    fn help_survives_context() {
        let r: Result<(), Hinted> = Err(Hinted::new("inner", "do this"));
        let error = r.context("outer").unwrap_err();
        assert_eq!(help_of(&error), ["do this"]);
    }

    fn unreachable() -> connctl_immuta::ApiError {
        connctl_immuta::ApiError::Unreachable {
            method: "DELETE".into(),
            path: "/data/connection/k".into(),
            base: "https://immuta".into(),
            reason: "connection reset".into(),
            sent: true,
        }
    }

    #[test]
    fn library_errors_bring_their_help_from_data_through_context() {
        let error = anyhow::Error::new(unreachable()).context("cannot plan");
        insta::assert_snapshot!(render(&error, false), @r"
        error: cannot plan: cannot reach Immuta at https://immuta (DELETE /data/connection/k): connection reset
          = help: check the URL (connctl.toml [immuta] url, IMMUTA_URL or --immuta-url) and your network
        ");
        let lock = connctl_engine::lock::LockError::OtherId {
            url: "s3://b/s".into(),
            id: "x".into(),
            holder: "h".into(),
        };
        // Transparent inside a state error: the help still comes through, once.
        let error = anyhow::Error::new(StateError::from(lock));
        assert_eq!(help_of(&error), ["pass the ID shown"]);
    }

    #[test]
    fn an_apply_error_answers_for_its_source_so_no_help_is_shown_twice() {
        let failed = ApplyError::Deregister {
            cleanup: std::path::PathBuf::from("k.cleanup.sql"),
            source: unreachable(),
        };
        assert_eq!(
            apply_error_text(&failed),
            "cannot reach Immuta at https://immuta (DELETE /data/connection/k): connection reset\n  = help: check the URL (connctl.toml [immuta] url, IMMUTA_URL or --immuta-url) and your network\n  = help: the cleanup script is saved at k.cleanup.sql; the next apply checks Immuta and finishes the delete"
        );
        let error = anyhow::Error::new(failed);
        assert_eq!(help_of(&error).len(), 2, "{:?}", help_of(&error));
    }
}
