//! Plan rendering: text for a terminal (grouped, coloured, unified field diffs with `similar`),
//! markdown for a PR comment (summary first, details folded, never over 65,000 characters),
//! and JSON (the plan itself, `docs/plan-json.md`).

use std::fmt::Write as _;

use crate::cli::Format;
use connctl_engine::objects::{HighRisk, ObjectAction, ObjectChange};
use connctl_engine::plan::{Action, Attribute, Cause, Change, FieldChange, Plan};
use owo_colors::{OwoColorize, Style};
use serde_json::Value;

mod objects;
use objects::*;

/// Prints the plan, naming the Immuta tenant and the environment it is for (markdown: under
/// the title; text: the last line; JSON: `state.tenant`, `state.environment`).
pub fn print(plan: &Plan, format: Format, kind: Kind, color: bool) {
    let with_env = plan
        .state
        .tenant
        .as_deref()
        .map(|t| match &plan.state.environment {
            Some(env) => format!("{t} (environment {env})"),
            None => t.to_owned(),
        });
    let tenant = with_env.as_deref();
    let text = match format {
        Format::Text => {
            let body = text(plan, kind, color);
            // Last, so the first line stays the verdict ("No changes." / the actions).
            match tenant {
                Some(t) => format!("{body}Immuta: {t}\n"),
                None => body,
            }
        }
        Format::Markdown => {
            let body = markdown(plan, kind);
            match (tenant, body.split_once('\n')) {
                (Some(t), Some((title, rest))) => format!("{title}\nImmuta: `{t}`\n{rest}"),
                _ => body,
            }
        }
        Format::Json => json(plan),
    };
    // Plan errors can quote a server's answer, which can echo a request.
    print!("{}", connctl_spec::redact(&text));
}

/// The plan as text on standard error (apply `--format json`: standard output carries the
/// apply report only).
pub fn eprint(plan: &Plan, kind: Kind, color: bool) {
    eprint!("{}", connctl_spec::redact(&text(plan, kind, color)));
}

/// After `plan --out FILE` (text format only).
pub fn saved(out: &std::path::Path) {
    println!(
        "Saved the plan to {}; apply exactly it with `connctl apply {}`.",
        out.display(),
        out.display()
    );
}

/// GitHub rejects comments over 65,536 characters; stay clear of it.
pub const MARKDOWN_LIMIT: usize = 65_000;

/// What the report is about: a full plan, or drift only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plan,
    Drift,
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Recreate => "+",
        Action::Import => "?",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Resume => ">",
        Action::Orphan => "!",
        Action::Delete => "-",
        Action::Forget => "x",
    }
}

fn style(action: Action) -> Style {
    match action {
        Action::Create | Action::Recreate => Style::new().green(),
        Action::Update | Action::Resume => Style::new().yellow(),
        Action::Replace | Action::Delete => Style::new().red(),
        Action::Import | Action::Orphan | Action::Forget => Style::new().cyan(),
    }
}

pub fn paint(text: &str, style: Style, color: bool) -> String {
    if color {
        text.style(style).to_string()
    } else {
        text.to_owned()
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

fn cause(c: Cause) -> &'static str {
    match c {
        Cause::Config => "config",
        Cause::Drift => "drift",
        Cause::Both => "config+drift",
    }
}

fn before_line(f: &FieldChange) -> String {
    if f.sensitive {
        format!("{}: (sensitive)", f.path)
    } else {
        format!("{}: {}", f.path, show(&f.before))
    }
}

fn after_line(f: &FieldChange) -> String {
    if f.sensitive && f.after.as_str() == Some(connctl_engine::plan::UNKNOWN_SECRET) {
        format!("{}: (sensitive, unknown)", f.path)
    } else if f.sensitive {
        format!("{}: (sensitive, changed)", f.path)
    } else {
        format!("{}: {}", f.path, show(&f.after))
    }
}

/// One attribute a registration sends, a secret as `(sensitive)`.
fn attribute_line(a: &Attribute) -> String {
    if a.sensitive {
        format!("{}: (sensitive)", a.path)
    } else {
        format!("{}: {}", a.path, show(&a.value))
    }
}

/// The field diff of one change as unified-diff lines (`-` Immuta now, `+` desired), one
/// field at a time so each removal sits above its replacement.
fn field_diff(change: &Change) -> Vec<(char, String, &'static str)> {
    let mut lines = Vec::new();
    for field in &change.fields {
        let (before, after) = (before_line(field) + "\n", after_line(field) + "\n");
        let diff = similar::TextDiff::from_lines(&before, &after);
        for op in diff.iter_all_changes() {
            let sign = match op.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            lines.push((sign, op.value().trim_end().to_owned(), cause(field.cause)));
        }
    }
    lines
}

fn summary_line(plan: &Plan, kind: Kind) -> String {
    let s = &plan.summary;
    match kind {
        Kind::Plan => {
            let mut line = format!(
                "Plan: {} to create, {} to update, {} to replace, {} to delete, {} drifted.",
                s.create, s.update, s.replace, s.delete, s.drifted
            );
            let mut extra = Vec::new();
            if s.resume > 0 {
                extra.push(format!("{} to resume", s.resume));
            }
            if s.import > 0 {
                extra.push(format!("{} to import", s.import));
            }
            if s.forget > 0 {
                extra.push(format!("{} to forget", s.forget));
            }
            if s.orphan > 0 {
                extra.push(format!("{} orphaned", s.orphan));
            }
            if s.unmanaged > 0 {
                extra.push(format!("{} unmanaged", s.unmanaged));
            }
            if s.unhealthy > 0 {
                extra.push(format!("{} unhealthy", s.unhealthy));
            }
            let (objects, missing) = object_counts(plan);
            if objects > 0 {
                extra.push(format!("{objects} data object(s) to change"));
            }
            if missing > 0 {
                extra.push(format!("{missing} data object(s) missing"));
            }
            if !extra.is_empty() {
                line = format!("{line} ({})", extra.join(", "));
            }
            line
        }
        Kind::Drift => {
            let mut line = format!(
                "Drift: {} connection(s) changed in Immuta outside connctl.",
                s.drifted
            );
            if !plan.objects.is_empty() {
                let _ = write!(
                    line,
                    " {} data object(s) changed in Immuta outside connctl.",
                    plan.objects.len()
                );
            }
            if s.unhealthy > 0 {
                let _ = write!(line, " {} with health problems.", s.unhealthy);
            }
            if s.unmanaged > 0 {
                let _ = write!(line, " {} unmanaged (information only).", s.unmanaged);
            }
            line
        }
    }
}

/// The health problems, one line each.
fn health_lines(plan: &Plan) -> Vec<String> {
    plan.health
        .iter()
        .map(|h| format!("{}: {}: {}", h.key, h.kind.as_str(), h.detail))
        .collect()
}

/// The one line of a `--refresh=changed` plan on the connections it did not read.
fn not_read_line(plan: &Plan) -> Option<String> {
    let n = plan.not_read?;
    Some(format!(
        "{n} other connection(s), unchanged in the YAML since the last apply, were not read from Immuta (--refresh=changed); their drift is `connctl drift`'s job."
    ))
}

/// The terminal rendering.
pub fn text(plan: &Plan, kind: Kind, color: bool) -> String {
    let mut out = String::new();
    let quiet = plan.health.is_empty() && (kind == Kind::Plan || plan.unmanaged.is_empty());
    if plan.changes.is_empty() && plan.objects.is_empty() {
        match kind {
            Kind::Plan if plan.health.is_empty() => {
                out.push_str("No changes. Immuta matches the configuration.\n")
            }
            Kind::Plan => out.push_str("Nothing to apply, but Immuta reports problems:\n\n"),
            Kind::Drift if quiet => {
                out.push_str("No drift. Immuta matches what connctl last applied.\n");
                return out;
            }
            Kind::Drift if plan.health.is_empty() => out.push_str("No drift.\n\n"),
            Kind::Drift => out.push_str("No field drift, but Immuta reports problems:\n\n"),
        }
    } else {
        let _ = match kind {
            Kind::Plan => writeln!(
                out,
                "connctl will take these actions (- Immuta now, + desired):\n"
            ),
            Kind::Drift => {
                writeln!(
                    out,
                    "Changed in Immuta outside connctl (- Immuta now, + last applied, restored by apply):\n"
                )
            }
        };
        let rows = object_rows(plan);
        for change in &plan.changes {
            let head = format!(
                "{:>3} {:<8} {}",
                symbol(change.action),
                change.action.as_str(),
                change.key
            );
            let _ = write!(
                out,
                "{} ({})",
                paint(&head, style(change.action), color),
                change.technology
            );
            let ops: Vec<&str> = change.operations.iter().map(operation_name).collect();
            if !ops.is_empty() {
                let _ = write!(out, "  [{}]", ops.join(" → "));
            }
            out.push('\n');
            if let Some(note) = &change.note {
                let _ = writeln!(out, "      # {note}");
            }
            if let Some(warning) = change.cascade.as_ref().and_then(|c| c.warning.as_ref()) {
                let _ = writeln!(
                    out,
                    "      # {} {warning}",
                    paint("warning:", Style::new().red(), color)
                );
            }
            for (sign, line, why) in field_diff(change) {
                let styled = match sign {
                    '-' => paint(&format!("-   {line}"), Style::new().red(), color),
                    '+' => paint(&format!("+   {line}"), Style::new().green(), color),
                    _ => format!("    {line}"),
                };
                let _ = writeln!(out, "      {styled}  ({why})");
            }
            if !change.attributes.is_empty() && !change.fields.is_empty() {
                let _ = writeln!(out, "      # registers again with:");
            }
            for a in &change.attributes {
                let line = format!("+   {}", attribute_line(a));
                let _ = writeln!(out, "      {}", paint(&line, Style::new().green(), color));
            }
            objects_text(&rows, &change.key, color, &mut out);
        }
        for key in object_only_keys(plan, &rows) {
            let head = format!("{:>3} {:<8} {key}", "~", "objects");
            let _ = writeln!(out, "{}", paint(&head, Style::new().yellow(), color));
            objects_text(&rows, key, color, &mut out);
        }
        out.push('\n');
    }
    let health = health_lines(plan);
    if !health.is_empty() {
        let _ = writeln!(
            out,
            "Health problems (apply cannot repair these in place; check them in Immuta):"
        );
        for line in &health {
            let _ = writeln!(out, "  {} {line}", paint("!", Style::new().red(), color));
        }
        out.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "Unmanaged (in Immuta, never touched): {}\n",
            plan.unmanaged.join(", ")
        );
    }
    if !plan.refreshed {
        out.push_str("Note: planned from the state alone (--refresh=false); Immuta was not read.\n");
    }
    if let Some(line) = not_read_line(plan) {
        let _ = writeln!(out, "Note: {line}");
    }
    for e in &plan.errors {
        let _ = writeln!(out, "{} {e}", paint("error:", Style::new().red().bold(), color));
    }
    let _ = writeln!(out, "{}", summary_line(plan, kind));
    out
}

pub fn operation_name(op: &connctl_engine::plan::Operation) -> &'static str {
    use connctl_engine::plan::Operation::*;
    match op {
        Register => "script, execute, test, register",
        UpdateConnection => "update connection",
        Rescript => "edit script, execute, update integration",
        Settings => "settings",
        Deregister => "delete script, deregister, cleanup",
        RecordState => "state only",
    }
}

/// The PR-comment rendering: summary table first, per-connection details folded, cut to
/// [`MARKDOWN_LIMIT`] with a pointer to the JSON when too long.
pub fn markdown(plan: &Plan, kind: Kind) -> String {
    let title = match kind {
        Kind::Plan => "connctl plan",
        Kind::Drift => "connctl drift",
    };
    let s = &plan.summary;
    let mut head = format!("### {title}\n\n**{}**\n\n", summary_line(plan, kind));
    head.push_str(
        "| create | update | replace | delete | drifted | import | orphaned | unmanaged | unchanged |\n",
    );
    head.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(
        head,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        s.create, s.update, s.replace, s.delete, s.drifted, s.import, s.orphan, s.unmanaged, s.unchanged
    );
    for e in &plan.errors {
        let _ = writeln!(head, "> [!CAUTION]\n> {e}\n");
    }
    for line in health_lines(plan) {
        let _ = writeln!(head, "> [!WARNING]\n> Health: {line}\n");
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            head,
            "Unmanaged (in Immuta, never touched): {}\n",
            plan.unmanaged.join(", ")
        );
    }
    if let Some(line) = not_read_line(plan) {
        let _ = writeln!(head, "> [!NOTE]\n> {line}\n");
    }
    if plan.changes.is_empty() && plan.objects.is_empty() {
        head.push_str(match kind {
            Kind::Plan => "No changes. Immuta matches the configuration.\n",
            Kind::Drift => "No drift.\n",
        });
        return head;
    }
    let footer_room = 400;
    let mut body = String::new();
    let mut shown = 0;
    let rows = object_rows(plan);
    for change in &plan.changes {
        let block = markdown_change(change) + &markdown_objects(&rows, &change.key);
        if head.len() + body.len() + block.len() + footer_room > MARKDOWN_LIMIT {
            break;
        }
        body.push_str(&block);
        shown += 1;
    }
    for key in object_only_keys(plan, &rows) {
        let block = format!("<b>~ objects</b> {key}\n\n{}", markdown_objects(&rows, key));
        if head.len() + body.len() + block.len() + footer_room > MARKDOWN_LIMIT {
            break;
        }
        body.push_str(&block);
    }
    let mut out = head + &body;
    if shown < plan.changes.len() {
        let _ = write!(
            out,
            "\n> [!NOTE]\n> Cut to stay under {MARKDOWN_LIMIT} characters: {} of {} changes shown. \
             The full plan is in the JSON (`connctl plan --format json` or `--out plan.json`).\n",
            shown,
            plan.changes.len()
        );
    }
    out
}

fn markdown_change(change: &Change) -> String {
    let mut block = format!(
        "<details><summary><code>{}</code> <b>{}</b> {} ({})</summary>\n\n",
        symbol(change.action),
        change.action.as_str(),
        change.key,
        change.technology
    );
    if let Some(note) = &change.note {
        let _ = writeln!(block, "{note}\n");
    }
    if let Some(warning) = change.cascade.as_ref().and_then(|c| c.warning.as_ref()) {
        let _ = writeln!(block, "**Warning:** {warning}\n");
    }
    if !change.fields.is_empty() {
        block.push_str("```diff\n");
        for (sign, line, why) in field_diff(change) {
            let _ = writeln!(block, "{sign} {line}  # {why}");
        }
        block.push_str("```\n");
    }
    if !change.attributes.is_empty() {
        if !change.fields.is_empty() {
            block.push_str("\nRegisters again with:\n\n");
        }
        block.push_str("```diff\n");
        for a in &change.attributes {
            let _ = writeln!(block, "+ {}", attribute_line(a));
        }
        block.push_str("```\n");
    }
    block.push_str("</details>\n\n");
    block
}

/// The JSON rendering.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|_| "{}".into()) + "\n"
}
