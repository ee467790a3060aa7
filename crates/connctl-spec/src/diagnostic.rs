//! Diagnostics: one problem found in a spec file, and the report that gathers all of a run's.
//!
//! Rendering follows rustc's layout (`error: …`, ` --> file:line:col`, the source line with the
//! offending text underlined, `= help: …`) so that editors and CI log viewers recognise the
//! location. Without colour the output is plain, stable text (it is snapshotted in tests).

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is. Only errors fail a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, located in a file. Lines and columns are 1-based and count characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Width of the underline, in characters (at least 1).
    pub len: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line shown above the underline; `None` when there is no line to show.
    /// Literal secrets are masked in it before it is stored.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// An error at `file:line:col` without a source line.
    pub fn error(file: impl Into<PathBuf>, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            line,
            column,
            len: 1,
            message: message.into(),
            help: None,
            snippet: None,
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col` of this diagnostic.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.display(), self.line, self.column)
    }

    fn render_into(&self, out: &mut String, color: bool) {
        let paint = Paint(color);
        let (label, label_color) = match self.severity {
            Severity::Error => ("error", RED),
            Severity::Warning => ("warning", YELLOW),
        };
        out.push_str(&paint.bold(label_color, label));
        out.push_str(&paint.bold("", &format!(": {}", self.message)));
        out.push('\n');
        let gutter = if self.snippet.is_some() {
            self.line.to_string().len()
        } else {
            1
        };
        let pad = " ".repeat(gutter);
        out.push_str(&format!("{pad}{} {}\n", paint.fg(BLUE, "-->"), self.location()));
        if let Some(snippet) = &self.snippet {
            let bar = paint.fg(BLUE, "|");
            out.push_str(&format!("{pad} {bar}\n"));
            let number = paint.fg(BLUE, &self.line.to_string());
            let (shown, column, len) = window(snippet.trim_end(), self.column, self.len);
            out.push_str(&format!("{number} {bar} {shown}\n"));
            let indent = " ".repeat(column.saturating_sub(1));
            let carets = paint.bold(label_color, &"^".repeat(len.max(1)));
            out.push_str(&format!("{pad} {bar} {indent}{carets}\n"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("{pad} {} {help}\n", paint.bold("", "= help:")));
        }
    }
}

/// Widest source line shown; a longer one (a minified file) is cut around the column.
const SNIPPET_WIDTH: usize = 120;

/// The part of `line` to show, with the column and underline width inside it.
fn window(line: &str, column: usize, len: usize) -> (String, usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SNIPPET_WIDTH {
        return (line.to_owned(), column, len);
    }
    let at = column.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(SNIPPET_WIDTH / 3);
    let end = (start + SNIPPET_WIDTH).min(chars.len());
    let head = usize::from(start > 0);
    let text: String = chars[start..end].iter().collect();
    let shown = format!(
        "{}{text}{}",
        if head > 0 { "…" } else { "" },
        if end < chars.len() { "…" } else { "" }
    );
    (
        shown,
        at - start + head + 1,
        len.min(end.saturating_sub(at)).max(1),
    )
}

/// Every diagnostic of a run, errors and warnings, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Renders every diagnostic, rustc style, separated by blank lines. `color` adds ANSI
    /// colours; without it the text is plain and stable.
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            d.render_into(&mut out, color);
        }
        out
    }

    pub(crate) fn extend(&mut self, other: Report) {
        self.diagnostics.extend(other.diagnostics);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Report {}

impl From<Diagnostic> for Report {
    fn from(d: Diagnostic) -> Self {
        Report { diagnostics: vec![d] }
    }
}

/// Builds diagnostics for one source file, attaching the source line and clipping the
/// underline to it.
pub(crate) struct Sink<'a> {
    file: &'a Path,
    lines: Vec<&'a str>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(file: &'a Path, source: &'a str) -> Self {
        Sink {
            file,
            lines: source.lines().collect(),
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn file(&self) -> &'a Path {
        self.file
    }

    /// A diagnostic at `line:col` spanning `len` characters (clipped to the end of the line).
    pub(crate) fn at(&self, severity: Severity, line: usize, column: usize, len: usize) -> Diagnostic {
        let line_text = line
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map(|l| l.replace('\t', " "));
        let (column, len) = match &line_text {
            Some(text) => {
                let width = text.chars().count();
                let column = column.clamp(1, width + 1);
                (column, len.min(width + 1 - column).max(1))
            }
            None => (column.max(1), len.max(1)),
        };
        Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line: line.max(1),
            column,
            len,
            message: String::new(),
            help: None,
            snippet: line_text,
        }
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub(crate) fn into_report(self) -> Report {
        Report {
            diagnostics: self.diagnostics,
        }
    }
}

/// Masks the underlined characters of a diagnostic's source line (a literal secret).
pub(crate) fn redact(mut d: Diagnostic) -> Diagnostic {
    if let Some(snippet) = &d.snippet {
        let start = d.column - 1;
        let masked: String = snippet
            .chars()
            .enumerate()
            .map(|(i, c)| if i >= start && i < start + d.len { '*' } else { c })
            .collect();
        d.snippet = Some(masked);
    }
    d
}

const RED: &str = "31";
const YELLOW: &str = "33";
const BLUE: &str = "34";

/// ANSI styling that is a no-op when colour is off.
struct Paint(bool);

impl Paint {
    fn fg(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(&self, code: &str, text: &str) -> String {
        match (self.0, code.is_empty()) {
            (false, _) => text.to_owned(),
            (true, true) => format!("\x1b[1m{text}\x1b[0m"),
            (true, false) => format!("\x1b[1;{code}m{text}\x1b[0m"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rustc_style_without_colour() {
        let src = "version: 1\nconnections:\n  - key: a\n    warehous: X\n";
        let mut sink = Sink::new(Path::new("specs/a.yaml"), src);
        let mut d = sink.at(Severity::Error, 4, 5, 8);
        d.message = "unknown field `warehous`".into();
        d.help = Some("did you mean `warehouse`?".into());
        sink.push(d);
        let report = sink.into_report();
        assert_eq!(
            report.render(false),
            "error: unknown field `warehous`\n --> specs/a.yaml:4:5\n  |\n4 |     warehous: X\n  |     ^^^^^^^^\n  = help: did you mean `warehouse`?\n"
        );
        assert!(report.render(true).contains("\x1b["));
        assert!(!report.render(false).contains('\x1b'));
        assert_eq!(report.to_string(), report.render(false));
    }

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let src = format!("x: [{}]\n", "0,".repeat(10_000));
        let mut sink = Sink::new(Path::new("a.yaml"), &src);
        let mut d = sink.at(Severity::Error, 1, 10_001, 1);
        d.message = "too long".into();
        sink.push(d);
        let text = sink.into_report().render(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[3], format!("1 | …{}…", "0,".repeat(60)));
        assert_eq!(lines[4], format!("  | {}^", " ".repeat(41)));
    }

    #[test]
    fn underline_is_clipped_to_the_line_and_secrets_are_masked() {
        let src = "password: hunter2\n";
        let sink = Sink::new(Path::new("a.yaml"), src);
        let d = redact(sink.at(Severity::Error, 1, 11, 99));
        assert_eq!(d.len, 7);
        assert_eq!(d.snippet.as_deref(), Some("password: *******"));
    }
}
