//! Errors as the CLI shows them: a message and its help lines, kept apart as data until
//! `main` renders them (`error: …` then `  = help: …`). The library crates' errors carry their
//! help the same way (a `help()` method); [`help_of`] is the one place that collects it.

use std::fmt;

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
        if let Some(e) = cause.downcast_ref::<Hinted>() {
            out.extend(e.help.iter().cloned());
        } else if let Some(e) = cause.downcast_ref::<connctl_engine::saved::StalePlan>() {
            out.extend(e.help().map(str::to_owned));
        }
    }
    out
}
