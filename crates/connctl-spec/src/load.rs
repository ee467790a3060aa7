//! Loading: paths → files → YAML trees → checks → typed, merged [`Connection`]s.
//!
//! Every file is read and checked even after an error, so one run reports all problems; only a
//! run without errors yields a [`Desired`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Report, Sink};
use crate::merge::build;
use crate::model::{ConnectionSpec, Defaults, Desired, Origin};
use crate::validate::check_file;
use crate::yaml::{Node, Pos};

/// Deepest nesting accepted. A connctl file needs 6 levels; the cap keeps hostile input from
/// exhausting the stack of the recursive tree reader.
const MAX_DEPTH: usize = 20;

/// Loads and validates every spec file below `paths` (files, or directories searched
/// recursively for `*.yaml` / `*.yml`, sorted). Warnings are dropped; see [`load_with_warnings`].
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Desired, Report> {
    load_with_warnings(paths).map(|(desired, _)| desired)
}

/// Like [`load`], and also returns the warnings of a successful run. On failure the report
/// holds errors and warnings together.
pub fn load_with_warnings(paths: &[impl AsRef<Path>]) -> Result<(Desired, Report), Report> {
    let mut report = Report::default();
    let files = collect_files(paths, &mut report);
    let mut desired = Desired::default();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    for file in files {
        let source = match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    report
                        .diagnostics
                        .push(not_utf8(&file, e.as_bytes(), e.utf8_error().valid_up_to()));
                    continue;
                }
            },
            Err(e) => {
                report.diagnostics.push(Diagnostic::error(
                    &file,
                    1,
                    1,
                    format!("cannot read file: {}", e.kind()),
                ));
                continue;
            }
        };
        desired.files.push(file.clone());
        let mut sink = Sink::new(&file, &source);
        load_file(&mut sink, &source, &mut seen, &mut desired);
        let mut file_report = sink.into_report();
        file_report.diagnostics.sort_by_key(|d| (d.line, d.column));
        report.extend(file_report);
    }
    one_integration_per_host(&desired, &mut report);
    if report.has_errors() {
        Err(report)
    } else {
        Ok((desired, report))
    }
}

/// Parses, checks and builds the connections of one file into `desired`.
fn load_file(sink: &mut Sink<'_>, source: &str, seen: &mut HashMap<String, Origin>, desired: &mut Desired) {
    let Some(root) = parse(sink, source) else { return };
    let checked = check_file(sink, &root, source);
    let file = sink.file().to_path_buf();
    if !checked.defaults_ok {
        return;
    }
    let defaults = match checked
        .defaults
        .map(|d| serde_json::from_value::<Defaults>(d.to_json()))
    {
        None => Defaults::default(),
        Some(Ok(d)) => d,
        Some(Err(_)) => return internal(sink, checked.defaults.map_or(root.pos, |d| d.pos)),
    };
    let base = file.parent().unwrap_or(Path::new("")).to_path_buf();
    for conn in checked.connections {
        let origin = Origin {
            file: file.clone(),
            line: conn.key_field.line,
            column: conn.key_field.column,
        };
        if let Some(first) = seen.get(&conn.key) {
            sink.error(
                conn.key_value,
                format!("duplicate connection key `{}`", conn.key),
                Some(format!("`{}` is first declared at {first}", conn.key)),
            );
            continue;
        }
        seen.insert(conn.key.clone(), origin.clone());
        match serde_json::from_value::<ConnectionSpec>(conn.node.to_json()) {
            Ok(spec) => desired.connections.push(build(spec, &defaults, origin, &base)),
            Err(_) => internal(sink, conn.node.pos),
        }
    }
}

/// Immuta allows one Snowflake integration per host, and every connection creates one: a second
/// connection on a host is refused by Immuta (409) after its setup script has already run, so it
/// is an error here, naming both.
fn one_integration_per_host(desired: &Desired, report: &mut Report) {
    let mut first: HashMap<String, &crate::model::Connection> = HashMap::new();
    for conn in &desired.connections {
        let crate::model::Platform::Snowflake(sf) = &conn.platform else {
            continue;
        };
        let host = sf.host.to_ascii_lowercase();
        match first.get(&host) {
            Some(earlier) => report.diagnostics.push(
                Diagnostic::error(
                    &conn.origin.file,
                    conn.origin.line,
                    conn.origin.column,
                    format!(
                        "connection `{}` is on Snowflake host `{}`, which connection `{}` at {} already uses",
                        conn.key, sf.host, earlier.key, earlier.origin
                    ),
                )
                .with_help(
                    "Immuta allows one Snowflake integration per host and each connection creates one; \
                     keep one connection per Snowflake account",
                ),
            ),
            None => {
                first.insert(host, conn);
            }
        }
    }
}

/// A clean walk that the typed read still rejects is a bug in the checker; say so without
/// repeating serde's message (it could quote a value).
fn internal(sink: &mut Sink<'_>, pos: Pos) {
    sink.error(
        pos,
        "this entry passed validation but could not be read (a connctl bug; please report it)",
        None,
    );
}

/// YAML text → tree, or a diagnostic at the parser's location.
fn parse(sink: &mut Sink<'_>, source: &str) -> Option<Node> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
    };
    match serde_saphyr::from_str_with_options::<Node>(source, options) {
        Ok(node) => Some(node),
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| {
                (
                    usize::try_from(l.line()).unwrap_or(1),
                    usize::try_from(l.column()).unwrap_or(1),
                )
            });
            let (message, help, len) = parse_message(&e);
            sink.error(Pos { line, column, len }, message, help);
            None
        }
    }
}

/// A friendlier wording of serde-saphyr's parse errors (without its location suffix), a help
/// line, and the underline width.
fn parse_message(e: &serde_saphyr::Error) -> (String, Option<String>, usize) {
    let raw = e.to_string();
    let text = raw.rfind(" at line ").map_or(raw.as_str(), |i| &raw[..i]);
    if let serde_saphyr::Error::Budget {
        breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
        ..
    } = e
    {
        let help = "a connctl file nests at most 6 levels; is this the right file?";
        return (
            format!("nesting deeper than {MAX_DEPTH} levels"),
            Some(help.into()),
            1,
        );
    }
    if text.starts_with("multiple YAML documents") {
        return (
            "more than one YAML document in this file".into(),
            Some("put each document in its own file".into()),
            1,
        );
    }
    if let Some(key) = text.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return (
            format!("field `{key}` appears twice in this mapping"),
            None,
            key.chars().count(),
        );
    }
    if text.starts_with("recursion limit exceeded") {
        return ("nesting too deep".into(), None, 1);
    }
    let help = text
        .contains("tab")
        .then(|| "YAML indents with spaces, never tabs".to_owned());
    (format!("invalid YAML: {text}"), help, 1)
}

fn not_utf8(file: &Path, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    let before = String::from_utf8_lossy(&bytes[..valid_up_to]);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Diagnostic::error(file, line, column, "file is not valid UTF-8")
}

/// Expands directories into their `*.yaml` / `*.yml` files (sorted, recursive). A missing
/// path or an empty directory is an error.
fn collect_files(paths: &[impl AsRef<Path>], report: &mut Report) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found, report);
            found.sort();
            if found.is_empty() {
                report.diagnostics.push(Diagnostic::error(
                    path,
                    1,
                    1,
                    "no *.yaml or *.yml files in this directory",
                ));
            }
            files.extend(found);
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else {
            report
                .diagnostics
                .push(Diagnostic::error(path, 1, 1, "no such file or directory"));
        }
    }
    let mut unique = Vec::new();
    for f in files {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    unique
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, report: &mut Report) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            report.diagnostics.push(Diagnostic::error(
                dir,
                1,
                1,
                format!("cannot read directory: {}", e.kind()),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Hidden entries (.git, editor swap folders) are never specs.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // `file_type` does not follow symlinks, so a link cycle cannot recurse forever.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            walk(&path, found, report);
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) && path.is_file()
        {
            found.push(path);
        }
    }
}
