//! `connctl status` output: one row per connection, as a table (comfy-table) or JSON
//! (`docs/plan-json.md`), then the operations that stopped part-way.

use std::path::PathBuf;

use comfy_table::{ColumnConstraint, Table, Width, presets};
use connctl_engine::state::State;
use connctl_engine::status::ImmutaView;
use serde::Serialize;

/// One connection's row; the JSON keys are the documented ones.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub key: String,
    /// `None` for a connection in Immuta that connctl does not manage.
    pub technology: Option<String>,
    pub step: String,
    pub protect: bool,
    pub bulk_id: Option<String>,
    pub bulk_origin: Option<String>,
    pub job_state: String,
    /// What Immuta shows now (`ok`, `missing`, `drifted`, …, `unmanaged`).
    pub immuta: ImmutaView,
    pub pending: Option<String>,
    pub cleanup_script: Option<PathBuf>,
}

impl Row {
    /// A connection Immuta has and no state manages.
    pub fn unmanaged(key: &str) -> Row {
        Row {
            key: key.to_owned(),
            technology: None,
            step: "-".into(),
            protect: false,
            bulk_id: None,
            bulk_origin: None,
            job_state: "-".into(),
            immuta: ImmutaView::Unmanaged,
            pending: None,
            cleanup_script: None,
        }
    }
}

/// The column titles, and the least width of every column but the last.
const COLUMNS: [(&str, u16); 6] = [
    ("KEY", 28),
    ("TECHNOLOGY", 11),
    ("STEP", 19),
    ("LAST BULK ID", 38),
    ("JOB", 10),
    ("IMMUTA", 0),
];

/// `Immuta: URL (environment NAME)`, as under a plan; `None` without a URL.
pub fn tenant_line(tenant: Option<&str>, environment: Option<&str>) -> Option<String> {
    let tenant = tenant?;
    Some(match environment {
        Some(env) => format!("Immuta: {tenant} (environment {env})\n"),
        None => format!("Immuta: {tenant}\n"),
    })
}

/// The rows as JSON.
pub fn json(rows: &[Row]) -> serde_json::Result<String> {
    serde_json::to_string_pretty(rows).map(|text| text + "\n")
}

/// The rows as a table (or a sentence saying there are none), for `state` at `location`.
pub fn table(rows: &[Row], location: &str) -> String {
    if rows.is_empty() {
        return format!("The state ({location}) holds no connections.\n");
    }
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(COLUMNS.map(|(title, _)| title));
    for r in rows {
        // The state still says registered; Immuta says otherwise, and Immuta wins.
        let step = if r.immuta.is_missing() {
            "deleted in Immuta"
        } else {
            r.step.as_str()
        };
        let immuta = r.immuta.to_string();
        table.add_row([
            r.key.as_str(),
            r.technology.as_deref().unwrap_or("-"),
            step,
            r.bulk_id.as_deref().unwrap_or("-"),
            r.job_state.as_str(),
            immuta.as_str(),
        ]);
    }
    // Left-aligned columns one space apart, each at least as wide as it always was (the
    // bound counts the padding).
    for (column, (_, width)) in table.column_iter_mut().zip(COLUMNS) {
        column.set_padding((0, 1));
        if width > 0 {
            column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(width + 1)));
        }
    }
    table.trim_fmt() + "\n"
}

/// The operations that stopped part-way (above all a delete whose cleanup has not run yet),
/// for the connections of `keys` (all when empty).
pub fn interrupted(state: &State, keys: &[String]) -> String {
    let mut out = String::new();
    for (key, s) in &state.connections {
        let Some(p) = s
            .pending
            .as_ref()
            .filter(|_| keys.is_empty() || keys.contains(key))
        else {
            continue;
        };
        match &p.cleanup_script {
            Some(path) => out.push_str(&format!(
                "{key}: an interrupted delete; its cleanup script is saved at {} and the next apply finishes it\n",
                path.display()
            )),
            None => out.push_str(&format!(
                "{key}: an interrupted {}; the next apply resumes it\n",
                p.operation.as_str()
            )),
        }
    }
    out
}

/// Immuta could not be read: the job states shown are the ones recorded in the state.
pub fn unread_warning(reason: &str, location: &str) -> String {
    format!(
        "warning: live job states could not be read from Immuta: {reason}\n  = help: JOB shows the states recorded in {location}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, immuta: ImmutaView) -> Row {
        Row {
            technology: Some("Snowflake".into()),
            step: "registered".into(),
            bulk_id: Some("4b1a2c3d-0000-4000-8000-000000000001".into()),
            bulk_origin: Some("register".into()),
            job_state: "completed".into(),
            immuta,
            ..Row::unmanaged(key)
        }
    }

    /// The layout the hand-written `format!` widths gave, byte for byte.
    fn by_hand(rows: &[Row]) -> String {
        let mut out = format!(
            "{:<28} {:<11} {:<19} {:<38} {:<10} IMMUTA\n",
            "KEY", "TECHNOLOGY", "STEP", "LAST BULK ID", "JOB"
        );
        for r in rows {
            let step = if r.immuta.is_missing() {
                "deleted in Immuta"
            } else {
                &r.step
            };
            out.push_str(&format!(
                "{:<28} {:<11} {:<19} {:<38} {:<10} {}\n",
                r.key,
                r.technology.as_deref().unwrap_or("-"),
                step,
                r.bulk_id.as_deref().unwrap_or("-"),
                r.job_state,
                r.immuta
            ));
        }
        out
    }

    #[test]
    fn the_table_keeps_the_hand_made_layout() {
        let rows = [
            row("snowflake-prod", ImmutaView::Ok),
            row("databricks-dev", ImmutaView::Missing),
            Row::unmanaged("stranger"),
        ];
        assert_eq!(table(&rows, "state.json"), by_hand(&rows));
        insta::assert_snapshot!(table(&rows, "state.json"), @r"
        KEY                          TECHNOLOGY  STEP                LAST BULK ID                           JOB        IMMUTA
        snowflake-prod               Snowflake   registered          4b1a2c3d-0000-4000-8000-000000000001   completed  ok
        databricks-dev               Snowflake   deleted in Immuta   4b1a2c3d-0000-4000-8000-000000000001   completed  missing
        stranger                     -           -                   -                                      -          unmanaged
        ");
    }

    #[test]
    fn a_long_key_widens_its_column_for_every_row() {
        let long = "a-connection-key-longer-than-28-chars";
        let rows = [row(long, ImmutaView::Ok), row("short", ImmutaView::Ok)];
        let text = table(&rows, "state.json");
        // Unlike fixed `format!` widths, the columns stay aligned.
        let starts: Vec<usize> = text.lines().map(|l| l.find("Snowflake").unwrap_or(0)).collect();
        assert_eq!(starts[1], starts[2]);
        assert_eq!(starts[1], long.len() + 1);
    }

    #[test]
    fn no_rows_is_a_sentence() {
        assert_eq!(table(&[], "s.json"), "The state (s.json) holds no connections.\n");
    }

    #[test]
    fn json_keeps_the_documented_keys_in_order() {
        let text = json(&[Row::unmanaged("x")]).unwrap();
        let keys: Vec<String> =
            serde_json::from_str::<Vec<serde_json::Map<String, serde_json::Value>>>(&text).unwrap()[0]
                .keys()
                .cloned()
                .collect();
        assert_eq!(
            keys,
            [
                "key",
                "technology",
                "step",
                "protect",
                "bulkId",
                "bulkOrigin",
                "jobState",
                "immuta",
                "pending",
                "cleanupScript"
            ]
        );
    }
}
