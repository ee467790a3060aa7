//! The preflight checklist: text for a terminal, markdown for a PR comment, JSON for programs
//! (the engine's [`Report`] plus `failed`).

use std::fmt::Write as _;

use connctl_engine::preflight::{Check, Report, Verdict};
use owo_colors::OwoColorize;

use connctl_engine::plan::Plan;

use super::plan::Kind;
use crate::cli::Format;

pub fn print(report: &Report, format: Format, color: bool) {
    let text = match format {
        Format::Text => text(report, color),
        Format::Markdown => markdown(report),
        Format::Json => json(report),
    };
    // A server's answer quoted in a reason can echo a request.
    print!("{}", connctl_spec::redact(&text));
}

/// `plan --preflight`: the plan, then the checklist (JSON: the plan with a `preflight` field
/// holding the checklist's JSON, docs/plan-json.md).
pub fn print_with_plan(plan: &Plan, report: &Report, format: Format, color: bool) {
    if format != Format::Json {
        super::plan::print(plan, format, Kind::Plan, color);
        println!();
        print(report, format, color);
        return;
    }
    let mut value = serde_json::to_value(plan).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("preflight".into(), report_value(report));
    }
    let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
    // Plan errors and check reasons can quote a server's answer, which can echo a request.
    print!("{}", connctl_spec::redact(&text));
}

/// The checklist as text on standard error (apply's gate: standard output carries the plan or
/// the apply report).
pub fn eprint(report: &Report, color: bool) {
    eprint!("{}", connctl_spec::redact(&text(report, color)));
}

/// Counts of (failed, passed, not checked).
fn counts(report: &Report) -> (usize, usize, usize) {
    let checks = report.connections.iter().flat_map(|c| &c.checks);
    checks.fold((0, 0, 0), |(f, p, n), c| match c.verdict {
        Verdict::Fail { .. } => (f + 1, p, n),
        Verdict::Pass => (f, p + 1, n),
        Verdict::NotChecked { .. } => (f, p, n + 1),
    })
}

fn summary(report: &Report) -> String {
    let (failed, passed, unchecked) = counts(report);
    format!(
        "Preflight: {} connection(s), {failed} failed, {passed} passed, {unchecked} not checked",
        report.connections.len()
    )
}

pub fn text(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", summary(report));
    for conn in &report.connections {
        let _ = writeln!(out, "\n{} ({})", conn.key, conn.technology);
        for check in &conn.checks {
            write_check(&mut out, check, color);
        }
    }
    out
}

fn write_check(out: &mut String, check: &Check, color: bool) {
    let paint = |label: &str, style: fn(&str) -> String| if color { style(label) } else { label.to_owned() };
    match &check.verdict {
        Verdict::Pass => {
            let _ = writeln!(
                out,
                "  {}  {}",
                paint("pass", |s| s.green().to_string()),
                check.title
            );
        }
        Verdict::Fail { why, fix } => {
            let _ = writeln!(
                out,
                "  {}  {}",
                paint("FAIL", |s| s.red().bold().to_string()),
                check.title
            );
            let _ = writeln!(out, "        {why}");
            if let Some(statement) = &fix.statement {
                let _ = writeln!(out, "        fix:  {statement}");
            }
            let _ = writeln!(out, "        docs: {}", fix.docs);
        }
        Verdict::NotChecked { why, statement } => {
            let _ = writeln!(
                out,
                "  {}  {}",
                paint("n/a ", |s| s.yellow().to_string()),
                check.title
            );
            let _ = writeln!(out, "        {why}");
            if let Some(statement) = statement {
                let _ = writeln!(out, "        by hand: {statement}");
            }
        }
    }
}

/// A markdown table cell: `|` escaped, on one line.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}", summary(report));
    for conn in &report.connections {
        let _ = writeln!(out, "\n### `{}` ({})\n", conn.key, conn.technology);
        let _ = writeln!(out, "| Result | Check | Detail |\n|---|---|---|");
        for check in &conn.checks {
            let (result, detail) = match &check.verdict {
                Verdict::Pass => ("✅ pass", String::new()),
                Verdict::Fail { why, fix } => {
                    let mut d = cell(why);
                    if let Some(s) = &fix.statement {
                        let _ = write!(d, "<br>Fix: `{}`", cell(s));
                    }
                    let _ = write!(d, "<br>Docs: {}", cell(fix.docs));
                    ("❌ fail", d)
                }
                Verdict::NotChecked { why, statement } => {
                    let mut d = cell(why);
                    if let Some(s) = statement {
                        let _ = write!(d, "<br>By hand: `{}`", cell(s));
                    }
                    ("⚪ not checked", d)
                }
            };
            let _ = writeln!(out, "| {result} | {} | {detail} |", cell(&check.title));
        }
    }
    out
}

fn report_value(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "failed": report.failed(),
        "connections": report.connections,
    })
}

pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(&report_value(report)).unwrap_or_default();
    text.push('\n');
    text
}
