//! Loading: paths → files → YAML trees → checks → typed, merged [`Connection`]s.
//!
//! Every file is read and checked even after an error, so one run reports all problems; only a
//! run without errors yields a [`Desired`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::common::Origin;
use crate::defaults::{merged_defaults, same_file, shared_defaults};
use crate::diagnostic::{Diagnostic, Report, Sink};
use crate::merge::build;
use crate::model::{ConnectionSpec, Defaults, Desired};
use crate::validate::check_file;
use crate::vars::Vars;
use crate::yaml::{Node, Pos};

/// Deepest nesting accepted. A connctl file needs 6 levels; the cap keeps hostile input from
/// exhausting the stack of the recursive tree reader.
const MAX_DEPTH: usize = 20;

/// Largest spec file read, in bytes (4 MiB). A bigger file is refused before it is parsed, with
/// the limit in the message (`docs/yaml-reference.md`). For ordinary files the YAML reader's own
/// limit of 250,000 values (some 10,000 connections) is reached first.
pub const MAX_SPEC_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// How files are read beyond their own text: the variables of the environment and its shared
/// `defaults:` file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Expand `${var.NAME}` / `${env.name}` in string values with these (`None`: strings are
    /// taken as written).
    pub vars: Option<Vars>,
    /// A connctl file whose `defaults:` every file gets beneath its own (maps merge by key,
    /// the file's own value wins; lists and scalars replace).
    pub shared_defaults: Option<PathBuf>,
}

/// Loads and validates every spec file below `paths` (files, or directories searched
/// recursively for `*.yaml` / `*.yml`, sorted). Warnings are dropped; see [`load_with_warnings`].
pub fn load(paths: &[impl AsRef<Path>]) -> Result<Desired, Report> {
    load_with_warnings(paths).map(|(desired, _)| desired)
}

/// Like [`load`], and also returns the warnings of a successful run. On failure the report
/// holds errors and warnings together.
pub fn load_with_warnings(paths: &[impl AsRef<Path>]) -> Result<(Desired, Report), Report> {
    load_with(paths, &LoadOptions::default())
}

/// Like [`load_with_warnings`], with variables and shared defaults.
pub fn load_with(paths: &[impl AsRef<Path>], options: &LoadOptions) -> Result<(Desired, Report), Report> {
    let mut desired = Desired::default();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let report = each_file(paths, options, &mut |sink, tree, shared| {
        desired.files.push(sink.file().to_path_buf());
        load_file(sink, tree, shared, &mut seen, &mut desired);
    });
    let mut report = report;
    desired.check_across(&mut report);
    if report.has_errors() {
        Err(report)
    } else {
        Ok((desired, report))
    }
}

/// One file's text and its tree (variables expanded).
pub(crate) struct Tree<'s> {
    pub(crate) source: &'s str,
    pub(crate) root: Node,
}

/// Reads the shared defaults, then each file below `paths`, and calls `each` with a sink for
/// the file, its tree and the shared `defaults:`; returns every diagnostic, sorted per file.
pub(crate) fn each_file(
    paths: &[impl AsRef<Path>],
    options: &LoadOptions,
    each: &mut dyn FnMut(&mut Sink<'_>, &Tree<'_>, Option<&Node>),
) -> Report {
    let mut report = Report::default();
    let shared = options
        .shared_defaults
        .as_deref()
        .and_then(|file| shared_defaults(file, options, &mut report));
    let files = collect_files(paths, &mut report);
    for file in files {
        // The shared file may sit among the YAML; it is read once, as defaults.
        if let Some(shared) = &options.shared_defaults
            && same_file(shared, &file)
        {
            continue;
        }
        let Some(source) = read_source(&file, &mut report) else {
            continue;
        };
        let mut sink = Sink::new(&file, &source);
        if let Some(root) = parse_expanded(&mut sink, &source, options) {
            each(
                &mut sink,
                &Tree {
                    source: &source,
                    root,
                },
                shared.as_ref(),
            );
        }
        let mut file_report = sink.into_report();
        file_report.diagnostics.sort_by_key(|d| (d.line, d.column));
        report.extend(file_report);
    }
    report
}

/// The file as text, or a diagnostic in `report`.
pub(crate) fn read_source(file: &Path, report: &mut Report) -> Option<String> {
    match read_capped(file) {
        Ok(None) => {
            report.diagnostics.push(too_large(file));
            None
        }
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                report
                    .diagnostics
                    .push(not_utf8(file, e.as_bytes(), e.utf8_error().valid_up_to()));
                None
            }
        },
        Err(e) => {
            report.diagnostics.push(Diagnostic::error(
                file,
                1,
                1,
                format!("cannot read file: {}", e.kind()),
            ));
            None
        }
    }
}

/// Parses and expands variables; `None` when the file does not parse or a variable fails.
pub(crate) fn parse_expanded(sink: &mut Sink<'_>, source: &str, options: &LoadOptions) -> Option<Node> {
    let mut root = parse(sink, source)?;
    if let Some(vars) = &options.vars {
        let before = sink.error_count();
        let lines: Vec<&str> = source.lines().collect();
        vars.expand_tree(&mut root, sink, &lines);
        if sink.error_count() > before {
            return None;
        }
    }
    Some(root)
}

/// Reads at most [`MAX_SPEC_FILE_BYTES`]; `None` when the file holds more. Reading (rather than
/// asking the file system for a size) keeps pipes such as `<(generate-spec)` working.
fn read_capped(file: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?
        .take(MAX_SPEC_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_SPEC_FILE_BYTES).then_some(bytes))
}

fn too_large(file: &Path) -> Diagnostic {
    Diagnostic::error(
        file,
        1,
        1,
        format!(
            "file is larger than {} MiB, the most connctl reads from one spec file",
            MAX_SPEC_FILE_BYTES / (1024 * 1024)
        ),
    )
    .with_help("split the connections over several files (a directory is read as one spec)")
}

/// Checks and builds the connections of one file into `desired`.
fn load_file(
    sink: &mut Sink<'_>,
    tree: &Tree<'_>,
    shared: Option<&Node>,
    seen: &mut HashMap<String, Origin>,
    desired: &mut Desired,
) {
    let root = &tree.root;
    let checked = check_file(sink, root, tree.source);
    let file = sink.file().to_path_buf();
    if !checked.defaults_ok {
        return;
    }
    let defaults_node = merged_defaults(shared, checked.defaults);
    let defaults = match defaults_node
        .as_ref()
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
        budget: Some(budget()),
    };
    match serde_saphyr::from_str_with_options::<Node>(source, options) {
        Ok(node) => (!refuse_tags(sink, source)).then_some(node),
        Err(e) => {
            let (mut line, mut column) = e.location().map_or((1, 1), |l| {
                (
                    usize::try_from(l.line()).unwrap_or(1),
                    usize::try_from(l.column()).unwrap_or(1),
                )
            });
            let (mut message, help, len) = parse_message(&e);
            let about_tabs = message.starts_with("invalid YAML") && message.contains("tab");
            if about_tabs && let Some(tab) = indentation_tab(source, line) {
                // The scanner notices a tab only after the token before it, often a line early.
                (line, column) = tab;
                message = "invalid YAML: a tab in the indentation".into();
            }
            sink.error(Pos { line, column, len }, message, help);
            None
        }
    }
}

/// The first tab in the indentation of line `from` or a later line, as (line, column).
fn indentation_tab(source: &str, from: usize) -> Option<(usize, usize)> {
    source
        .lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(i, text)| {
            let indent = &text[..text.len() - text.trim_start_matches([' ', '\t']).len()];
            let column = indent.find('\t')?;
            Some((i + 1, column + 1))
        })
}

/// YAML tags (`!!binary`, `!!str`, `!custom`) change how a value is read — `!!binary aGVsbG8=`
/// would quietly become `hello` — and a connctl file has no use for them: each is an error.
/// Returns whether there was one.
fn refuse_tags(sink: &mut Sink<'_>, source: &str) -> bool {
    let mut found = false;
    for event in serde_saphyr::granit_parser::Parser::new_from_str(source) {
        // The document parsed a moment ago; a scan error here cannot happen, and ends the scan.
        let Ok((event, span)) = event else { break };
        let Some(tag) = event.tag().and(span.tag_span()) else {
            continue;
        };
        let text = tag.slice(source).unwrap_or("!");
        sink.error(
            Pos {
                line: tag.start.line(),
                column: tag.start.col() + 1,
                len: text.chars().count().max(1),
            },
            format!("YAML tag `{text}` is not supported"),
            Some(
                "remove the tag (quote the value if it must stay a string); connctl files use no tags".into(),
            ),
        );
        found = true;
    }
    found
}

/// A friendlier wording of serde-saphyr's parse errors (without its location suffix), a help
/// line, and the underline width.
fn parse_message(e: &serde_saphyr::Error) -> (String, Option<String>, usize) {
    let raw = e.to_string();
    let text = raw.rfind(" at line ").map_or(raw.as_str(), |i| &raw[..i]);
    if let serde_saphyr::Error::Budget { breach, .. } = e {
        let (message, help) = budget_message(breach);
        return (message, Some(help), 1);
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

/// The limits of the YAML reader: serde-saphyr's defaults, with a shallower nesting.
fn budget() -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget
}

/// A breached reader limit as a sentence that names the limit, and a help line.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> (String, String) {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = budget();
    let split = "split the connections over several files (a directory is read as one spec)";
    let (message, help) = match breach {
        B::Depth { .. } => (
            format!("nesting deeper than {MAX_DEPTH} levels"),
            "a connctl file nests at most 6 levels; is this the right file?",
        ),
        B::Nodes { .. } => (
            format!(
                "the file holds more than {} YAML values, the most connctl reads from one file",
                limits.max_nodes
            ),
            split,
        ),
        B::Events { .. } => (
            format!(
                "the file holds more than {} YAML events, the most connctl reads from one file",
                limits.max_events
            ),
            split,
        ),
        B::ScalarBytes { .. } => (
            format!(
                "the values of the file hold more than {} MiB of text, the most connctl reads",
                limits.max_total_scalar_bytes / (1024 * 1024)
            ),
            split,
        ),
        B::Documents { .. } => (
            format!("more than {} YAML documents in this file", limits.max_documents),
            "put each document in its own file",
        ),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => (
            format!(
                "too many YAML anchors, aliases or merge keys (limits: {} anchors, {} aliases, {} merge keys)",
                limits.max_anchors, limits.max_aliases, limits.max_merge_keys
            ),
            "write the values out; a connctl file needs no anchors",
        ),
        _ => ("the file exceeds a limit of the YAML reader".to_owned(), split),
    };
    (message, help.to_owned())
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
