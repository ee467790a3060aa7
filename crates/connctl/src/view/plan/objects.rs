//! The object rows of a plan (issue #17): symbols and styles, and the lines of each row in
//! text and markdown, under their connection.

use std::collections::BTreeMap;

use super::*;

pub(super) fn object_symbol(action: ObjectAction) -> &'static str {
    match action {
        ObjectAction::Activate | ObjectAction::Deactivate | ObjectAction::Settings => "~",
        ObjectAction::Missing => "!",
        ObjectAction::Record => "=",
    }
}

pub(super) fn object_style(row: &ObjectChange) -> Style {
    match (row.action, row.high_risk) {
        (_, Some(_)) | (ObjectAction::Missing, _) => Style::new().red(),
        (ObjectAction::Record, _) => Style::new().cyan(),
        _ => Style::new().yellow(),
    }
}

/// One object row as text lines: the head (`~ deactivate SALES/PUBLIC  (12 child objects)`),
/// then each setting (`active: true → false (config)`) and the notes.
pub(super) fn object_lines(row: &ObjectChange) -> (String, Vec<String>) {
    let mut head = format!(
        "{} {:<10} {}",
        object_symbol(row.action),
        row.action.as_str(),
        row.path
    );
    if let Some(c) = &row.cascade {
        let _ = write!(head, "  (cascades to {})", c.describe());
    }
    let mut lines: Vec<String> = row
        .fields
        .iter()
        .map(|f| {
            let before = f.before.map_or("(unknown)".to_owned(), |b| b.to_string());
            format!(
                "{}: {before} → {} ({})",
                f.setting.as_str(),
                f.after,
                cause(f.cause)
            )
        })
        .collect();
    match row.action {
        ObjectAction::Missing => lines.push(
            "listed in the YAML but not in Immuta: not crawled yet (`connctl crawl`), or a typo".into(),
        ),
        // A new connection's object is not read yet: that it will match is a prediction.
        ObjectAction::Record if row.after_registration => lines.push(
            "expected to match (it cannot be read before registration); apply reads it after the registration job and sends only what differs".into(),
        ),
        ObjectAction::Record => lines.push("Immuta already matches; only the state records it".into()),
        _ => {}
    }
    if let Some(ancestor) = &row.cascaded_from {
        lines.push(format!("`{ancestor}`'s status change above reaches it first"));
    }
    if row.after_registration {
        lines.push(
            "set after the connection's registration job completes (the object exists after its first crawl)"
                .into(),
        );
    }
    match row.high_risk {
        Some(HighRisk::Deactivation) => lines.push(
            "high-risk: Immuta stops governing it and every object below; apply needs --allow-cascade".into(),
        ),
        Some(HighRisk::OverridesBelow) => lines.push(
            "high-risk: objects below were set differently by hand (hasDescendantsWithOverrides); the cascade overrides them; apply needs --allow-cascade".into(),
        ),
        None => {}
    }
    if let Some(w) = &row.warning {
        lines.push(format!("warning: {w}"));
    }
    (head, lines)
}

/// A plan's object rows by connection key (in their plan order), built once per rendering so
/// that a plan of many connections does not scan every row for each.
pub(super) type ObjectRows<'a> = BTreeMap<&'a str, Vec<&'a ObjectChange>>;

pub(super) fn object_rows(plan: &Plan) -> ObjectRows<'_> {
    let mut rows: ObjectRows<'_> = BTreeMap::new();
    for row in &plan.objects {
        rows.entry(row.key.as_str()).or_default().push(row);
    }
    rows
}

/// The object rows of `key`, as indented text lines.
pub(super) fn objects_text(rows: &ObjectRows<'_>, key: &str, color: bool, out: &mut String) {
    for row in rows.get(key).into_iter().flatten() {
        let (head, lines) = object_lines(row);
        let _ = writeln!(out, "      {}", paint(&head, object_style(row), color));
        for line in lines {
            let _ = writeln!(out, "          # {line}");
        }
    }
}

/// Connections with object rows and no connection change, in key order.
pub(super) fn object_only_keys<'a>(plan: &Plan, rows: &ObjectRows<'a>) -> Vec<&'a str> {
    let changed: std::collections::BTreeSet<&str> = plan.changes.iter().map(|c| c.key.as_str()).collect();
    rows.keys().copied().filter(|k| !changed.contains(k)).collect()
}

/// How many object rows change something in Immuta, and how many are missing.
pub(super) fn object_counts(plan: &Plan) -> (usize, usize) {
    let change = plan.objects.iter().filter(|o| o.action.sends()).count();
    let missing = plan
        .objects
        .iter()
        .filter(|o| o.action == ObjectAction::Missing)
        .count();
    (change, missing)
}

/// The object rows of `key` as a markdown list (empty when it has none).
pub(super) fn markdown_objects(rows: &ObjectRows<'_>, key: &str) -> String {
    let mut block = String::new();
    for row in rows.get(key).into_iter().flatten() {
        let (head, lines) = object_lines(row);
        let _ = writeln!(block, "- `{head}`");
        for line in lines {
            let _ = writeln!(block, "  - {line}");
        }
    }
    if !block.is_empty() {
        block.push('\n');
    }
    block
}
