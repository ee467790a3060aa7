//! Import adoption: which connections `connctl import` adopts, and recording an adopted
//! connection in the state as if connctl had registered it. Nothing is sent to Immuta: a
//! connection is adopted only when Immuta already has it exactly as the YAML says.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::objects::{ObjectAction, ObjectChange};
use crate::plan::DesiredView;
use crate::refresh::Seen;
use crate::state::{ConnectionState, ObjectRecord, Phase, State, Step, Task};

/// Which connections to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every connection of the YAML that exists in Immuta and is not managed yet.
    All,
    /// These keys; a glob selects the matching keys of the YAML like `All` does.
    Keys(Vec<String>),
}

/// A `--key` glob that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid --key pattern `{pattern}`")]
pub struct BadPattern {
    pub pattern: String,
    #[source]
    pub source: globset::Error,
}

/// Why a connection is not adopted (each one an error of the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoMatch { pattern: String },
    NotDeclared { key: String },
    AlreadyManaged { key: String },
    NotInImmuta { key: String },
    Differs { key: String, fields: Vec<Mismatch> },
}

/// A field where Immuta and the YAML disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: String,
    pub immuta: Value,
    pub yaml: Value,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoMatch { pattern } => write!(f, "`{pattern}` matches no connection of the YAML"),
            Problem::NotDeclared { key } => {
                write!(f, "`{key}` is not declared in the YAML; declare it first")
            }
            Problem::AlreadyManaged { key } => write!(f, "`{key}` is already managed"),
            Problem::NotInImmuta { key } => {
                write!(f, "`{key}` does not exist in Immuta; `connctl apply` creates it")
            }
            Problem::Differs { key, fields } => {
                write!(
                    f,
                    "`{key}` differs from the YAML; make them agree before importing:"
                )?;
                for m in fields {
                    write!(
                        f,
                        "\n    {}: Immuta has {}, the YAML says {}",
                        m.path, m.immuta, m.yaml
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// The connections a [`Selection`] picks from the YAML.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Keys named exactly and adoptable so far (declared, not managed): each must be in Immuta.
    pub exact: Vec<String>,
    /// Keys picked by `All` or a glob and not managed yet: adopted where Immuta has them, the
    /// others left for `apply` to create.
    pub matched: BTreeSet<String>,
    /// Patterns that match nothing, and exact keys that cannot be adopted.
    pub problems: Vec<Problem>,
}

impl Selected {
    /// True for a key this selection adopts (if Immuta has it).
    pub fn contains(&self, key: &str) -> bool {
        self.exact.iter().any(|k| k == key) || self.matched.contains(key)
    }

    /// The keys to read from Immuta: the exact ones first, in the order given.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.exact.iter().chain(&self.matched)
    }
}

/// Picks the connections to adopt among `declared` (the YAML's keys). Keys named exactly must
/// each be adoptable; keys selected by `All` or a glob are adopted where Immuta has them.
pub fn select(selection: &Selection, declared: &[String], state: &State) -> Result<Selected, BadPattern> {
    let managed = |key: &str| state.connections.get(key).is_some_and(|s| s.applied.is_some());
    let mut out = Selected::default();
    let mut exact = Vec::new();
    match selection {
        Selection::All => out
            .matched
            .extend(declared.iter().filter(|k| !managed(k)).cloned()),
        Selection::Keys(keys) => {
            for pattern in keys {
                if !pattern.contains(['*', '?', '[', '{']) {
                    exact.push(pattern.clone());
                    continue;
                }
                let glob = globset::Glob::new(pattern)
                    .map_err(|source| BadPattern {
                        pattern: pattern.clone(),
                        source,
                    })?
                    .compile_matcher();
                let matched: Vec<&String> = declared.iter().filter(|k| glob.is_match(k)).collect();
                if matched.is_empty() {
                    out.problems.push(Problem::NoMatch {
                        pattern: pattern.clone(),
                    });
                }
                out.matched
                    .extend(matched.into_iter().filter(|k| !managed(k)).cloned());
            }
        }
    }
    for key in exact {
        out.matched.remove(&key);
        if !declared.contains(&key) {
            out.problems.push(Problem::NotDeclared { key });
        } else if managed(&key) {
            out.problems.push(Problem::AlreadyManaged { key });
        } else {
            out.exact.push(key);
        }
    }
    Ok(out)
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// Recorded in the state as registered.
    pub adopted: Vec<String>,
    /// Picked by `All` or a glob but not in Immuta: `apply` creates them.
    pub left_for_apply: Vec<String>,
    /// The selection's problems, then those found reading Immuta.
    pub problems: Vec<Problem>,
    /// Listed data objects of the adopted connections recorded as Immuta has them
    /// ([`adopt_objects`]), and those left to the plan (they differ, or are missing).
    pub objects_recorded: usize,
    pub objects_left: usize,
}

/// Records in `state` each selected connection that Immuta has (`seen`, as read for the keys
/// of [`Selected::keys`]) exactly as the YAML wants it (`wanted`). Secrets are taken as the
/// YAML's: Immuta never shows them.
pub fn adopt(
    state: &mut State,
    selected: Selected,
    wanted: &BTreeMap<String, DesiredView<'_>>,
    seen: BTreeMap<String, Option<Seen>>,
) -> Adoption {
    let mut out = Adoption {
        problems: selected.problems.clone(),
        ..Adoption::default()
    };
    for (key, seen) in seen {
        let Some(want) = wanted.get(&key).filter(|_| selected.contains(&key)) else {
            continue;
        };
        let Some(seen) = seen else {
            if selected.matched.contains(&key) {
                out.left_for_apply.push(key);
            } else {
                out.problems.push(Problem::NotInImmuta { key });
            }
            continue;
        };
        let fields: Vec<Mismatch> = seen
            .fields
            .iter()
            .filter_map(|(path, value)| {
                let yaml = want.fields.get(path)?;
                (yaml != value).then(|| Mismatch {
                    path: path.clone(),
                    immuta: value.clone(),
                    yaml: yaml.clone(),
                })
            })
            .collect();
        if !fields.is_empty() {
            out.problems.push(Problem::Differs { key, fields });
            continue;
        }
        let entry = state
            .connections
            .entry(key.clone())
            .or_insert_with(|| ConnectionState::new(want.technology));
        entry.applied = Some(want.fields.clone().into_owned());
        entry.step = Step::Registered;
        entry.protect = want.protect;
        entry.integration_id = seen.integration_id;
        entry.journal(
            Task::Import,
            Phase::Done,
            Some("adopted; secrets taken as the YAML's (Immuta never shows them)".into()),
        );
        out.adopted.push(key);
    }
    out
}

/// Records in `state` each listed object that Immuta already has as the YAML wants it (a
/// `= record` row of [`crate::objects::plan`] made for the adopted connections against what was
/// just read), as `apply` would record it; an object that differs or is missing is left to the
/// plan, which shows it. So is one that matches only once an ancestor's planned status change
/// reaches it: Immuta does not have it yet. Returns how many were recorded.
pub fn adopt_objects(state: &mut State, rows: &[ObjectChange]) -> usize {
    let mut recorded = 0;
    let matching = rows
        .iter()
        .filter(|r| r.action == ObjectAction::Record && r.cascaded_from.is_none());
    for row in matching {
        let Some(entry) = state.connections.get_mut(&row.key) else {
            continue;
        };
        entry.objects.insert(
            row.path.clone(),
            ObjectRecord {
                applied: row.settings,
                pending: None,
                bulk_id: None,
                at: crate::state::now(),
            },
        );
        entry.journal(
            Task::Import,
            Phase::Done,
            Some(format!("object {}: Immuta matches the YAML", row.path)),
        );
        recorded += 1;
    }
    recorded
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fields::FieldMap;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    fn fields(warehouse: &str) -> FieldMap {
        FieldMap::from([("warehouse".to_owned(), json!(warehouse))])
    }

    /// `sf-managed` is managed already; `sf-new` is only in the state's memory (never applied).
    fn state() -> State {
        let mut state = State::new();
        let mut managed = ConnectionState::new("Snowflake");
        managed.applied = Some(fields("WH"));
        state.connections.insert("sf-managed".into(), managed);
        state
            .connections
            .insert("sf-new".into(), ConnectionState::new("Snowflake"));
        state
    }

    fn declared() -> Vec<String> {
        keys(&["db-a", "sf-managed", "sf-new", "sf-other"])
    }

    fn seen(warehouse: &str) -> Option<Seen> {
        Some(Seen {
            fields: fields(warehouse),
            integration_id: Some("7".into()),
            child_count: None,
            health: vec![],
        })
    }

    fn wanted() -> BTreeMap<String, DesiredView<'static>> {
        declared()
            .into_iter()
            .map(|k| {
                let view = DesiredView {
                    technology: "Snowflake",
                    fields: std::borrow::Cow::Owned(fields("WH")),
                    protect: k == "sf-other",
                };
                (k, view)
            })
            .collect()
    }

    #[test]
    fn all_selects_every_unmanaged_key_of_the_yaml() {
        let s = select(&Selection::All, &declared(), &state()).unwrap();
        assert_eq!(s.exact, Vec::<String>::new());
        assert_eq!(
            s.matched,
            keys(&["db-a", "sf-new", "sf-other"]).into_iter().collect()
        );
        assert!(s.problems.is_empty());
    }

    #[test]
    fn exact_keys_must_be_declared_and_unmanaged_globs_must_match() {
        let which = Selection::Keys(keys(&["sf-*", "nope-*", "sf-new", "ghost", "sf-managed"]));
        let s = select(&which, &declared(), &state()).unwrap();
        assert_eq!(s.exact, ["sf-new"]);
        // `sf-new` is named exactly, so it must exist; the glob's other match may be missing.
        assert_eq!(s.matched, keys(&["sf-other"]).into_iter().collect());
        assert_eq!(
            s.problems,
            [
                Problem::NoMatch {
                    pattern: "nope-*".into()
                },
                Problem::NotDeclared { key: "ghost".into() },
                Problem::AlreadyManaged {
                    key: "sf-managed".into()
                },
            ]
        );
        assert_eq!(s.keys().collect::<Vec<_>>(), ["sf-new", "sf-other"]);
    }

    #[test]
    fn a_bad_glob_is_an_error_naming_it() {
        let err = select(&Selection::Keys(keys(&["sf-[a"])), &declared(), &state()).unwrap_err();
        assert_eq!(err.to_string(), "invalid --key pattern `sf-[a`");
    }

    #[test]
    fn adoption_records_a_registered_connection_with_the_yamls_fields() {
        let mut state = state();
        let s = select(&Selection::Keys(keys(&["sf-other"])), &declared(), &state).unwrap();
        let out = adopt(
            &mut state,
            s,
            &wanted(),
            BTreeMap::from([("sf-other".to_owned(), seen("WH"))]),
        );
        assert_eq!(out.adopted, ["sf-other"]);
        assert!(out.problems.is_empty() && out.left_for_apply.is_empty());
        let c = &state.connections["sf-other"];
        assert_eq!(c.step, Step::Registered);
        assert_eq!(c.applied, Some(fields("WH")));
        assert!(c.protect);
        assert_eq!(c.integration_id.as_deref(), Some("7"));
        assert_eq!(c.journal.last().map(|j| j.step), Some(Task::Import));
    }

    #[test]
    fn a_difference_or_absence_is_a_problem_and_nothing_is_recorded() {
        let mut state = state();
        let which = Selection::Keys(keys(&["sf-new", "sf-other"]));
        let s = select(&which, &declared(), &state).unwrap();
        let before = state.clone();
        let out = adopt(
            &mut state,
            s,
            &wanted(),
            BTreeMap::from([("sf-new".to_owned(), None), ("sf-other".to_owned(), seen("BIG"))]),
        );
        assert!(out.adopted.is_empty());
        assert_eq!(
            out.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "`sf-new` does not exist in Immuta; `connctl apply` creates it",
                "`sf-other` differs from the YAML; make them agree before importing:\n    warehouse: Immuta has \"BIG\", the YAML says \"WH\"",
            ]
        );
        assert_eq!(state, before);
    }

    #[test]
    fn a_glob_match_missing_from_immuta_is_left_for_apply() {
        let mut state = state();
        let s = select(&Selection::All, &declared(), &state).unwrap();
        let out = adopt(
            &mut state,
            s,
            &wanted(),
            BTreeMap::from([
                ("db-a".to_owned(), None),
                ("sf-new".to_owned(), seen("WH")),
                ("sf-other".to_owned(), None),
            ]),
        );
        assert_eq!(out.adopted, ["sf-new"]);
        assert_eq!(out.left_for_apply, ["db-a", "sf-other"]);
        assert!(out.problems.is_empty());
    }
}
