//! The data objects of a connection (`objects:`): which databases, schemas and tables below it
//! Immuta governs. Owns the object path (its quoting rule, parsing and printing), the entry as
//! written ([`ObjectSpec`]), and the YAML walk's checks of the list.
//!
//! A path is written below the connection, its segments joined with `/`: `SALES`,
//! `SALES/PUBLIC`, `SALES/PUBLIC/ORDERS`. Dots are never separators (`my.db` is one name). A
//! segment holding `/` or `"`, or starting or ending with white space, is written in double
//! quotes, with `""` for a literal quote: `SALES/"odd/name"/T1`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{Field, Ty, check_fields, opt, req};
use crate::diagnostic::Sink;
use crate::yaml::{Node, Value};

/// The most segments a path below a connection has: database (Databricks: catalog), schema,
/// table.
pub const MAX_OBJECT_DEPTH: usize = 3;

/// Where an object sits below its connection: 1 to [`MAX_OBJECT_DEPTH`] non-empty names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectPath(Vec<String>);

/// Why a path does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectPathError {
    /// An empty segment (`A//B`, a leading or trailing `/`, `""`, or no text at all).
    EmptySegment,
    /// More than [`MAX_OBJECT_DEPTH`] segments.
    TooDeep(usize),
    /// A quoted segment without its closing quote.
    Unterminated,
    /// Text after a quoted segment's closing quote, before the next `/`.
    AfterQuote,
    /// A `"` inside an unquoted segment.
    StrayQuote,
    /// An unquoted segment starting or ending with white space.
    Whitespace,
}

impl fmt::Display for ObjectPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectPathError::EmptySegment => f.write_str("has an empty segment"),
            ObjectPathError::TooDeep(n) => write!(
                f,
                "has {n} segments; a path below a connection has at most {MAX_OBJECT_DEPTH} (database/schema/table)"
            ),
            ObjectPathError::Unterminated => f.write_str("has a quoted segment without its closing `\"`"),
            ObjectPathError::AfterQuote => {
                f.write_str("has text after a quoted segment's closing `\"` (expected `/` or the end)")
            }
            ObjectPathError::StrayQuote => f.write_str("has a `\"` inside an unquoted segment"),
            ObjectPathError::Whitespace => f.write_str("has a segment starting or ending with white space"),
        }
    }
}

impl std::error::Error for ObjectPathError {}

/// How to write a segment that needs quoting, for help lines.
pub const QUOTING_HELP: &str = "segments are joined with `/`; write a segment holding `/` or `\"`, or starting or ending with a space, in double quotes, with `\"\"` for a literal quote: `DB/\"odd/name\"/T1`";

impl ObjectPath {
    /// A path from its segments (names as Immuta has them, unquoted).
    pub fn new(segments: Vec<String>) -> Result<ObjectPath, ObjectPathError> {
        if segments.is_empty() || segments.iter().any(String::is_empty) {
            return Err(ObjectPathError::EmptySegment);
        }
        if segments.len() > MAX_OBJECT_DEPTH {
            return Err(ObjectPathError::TooDeep(segments.len()));
        }
        Ok(ObjectPath(segments))
    }

    /// Reads a path as written in YAML (see the module's quoting rule).
    pub fn parse(text: &str) -> Result<ObjectPath, ObjectPathError> {
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut segment = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(ObjectPathError::Unterminated),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            segment.push('"');
                        }
                        Some('"') => break,
                        Some(c) => segment.push(c),
                    }
                }
                match chars.next() {
                    None => {
                        segments.push(segment);
                        break;
                    }
                    Some('/') => segments.push(segment),
                    Some(_) => return Err(ObjectPathError::AfterQuote),
                }
            } else {
                let mut ended = true;
                for c in chars.by_ref() {
                    match c {
                        '/' => {
                            ended = false;
                            break;
                        }
                        '"' => return Err(ObjectPathError::StrayQuote),
                        c => segment.push(c),
                    }
                }
                if segment.trim() != segment {
                    return Err(ObjectPathError::Whitespace);
                }
                segments.push(segment);
                if ended {
                    break;
                }
            }
        }
        ObjectPath::new(segments)
    }

    /// The names, outermost first (not quoted).
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// 1 for a database (catalog), 2 for a schema, 3 for a table.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// The path one level up; `None` for a database.
    pub fn parent(&self) -> Option<ObjectPath> {
        (self.0.len() > 1).then(|| ObjectPath(self.0[..self.0.len() - 1].to_vec()))
    }

    /// Whether `other` lies below this path (strictly: a path is not its own ancestor).
    pub fn is_ancestor_of(&self, other: &ObjectPath) -> bool {
        other.0.len() > self.0.len() && other.0.starts_with(&self.0)
    }

    /// Immuta's `objectPath`: the connection key, then these segments.
    pub fn full(&self, key: &str) -> Vec<String> {
        std::iter::once(key.to_owned())
            .chain(self.0.iter().cloned())
            .collect()
    }
}

/// Whether a segment must be quoted to read back as itself.
fn needs_quotes(segment: &str) -> bool {
    segment.is_empty() || segment.contains(['/', '"']) || segment.trim() != segment
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            if needs_quotes(segment) {
                write!(f, "\"{}\"", segment.replace('"', "\"\""))?;
            } else {
                f.write_str(segment)?;
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for ObjectPath {
    type Error = ObjectPathError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        ObjectPath::parse(&text)
    }
}

impl From<ObjectPath> for String {
    fn from(path: ObjectPath) -> String {
        path.to_string()
    }
}

impl Serialize for ObjectPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ObjectPath::parse(&text).map_err(|e| serde::de::Error::custom(format!("object path {e}")))
    }
}

/// One entry of `objects:`: a database, schema or table below the connection and the settings
/// connctl keeps on it. A setting left out is not managed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = one_setting)]
pub struct ObjectSpec {
    /// The object below the connection: `DB`, `DB/SCHEMA` or `DB/SCHEMA/TABLE`. Dots never
    /// separate; a segment holding `/` or `"`, or starting or ending with a space, is written
    /// in double quotes (`""` for a literal quote).
    #[schemars(with = "String", length(min = 1))]
    pub path: ObjectPath,
    /// Whether Immuta governs the object. Changing it changes the status of every object below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Whether objects a crawl finds below it are registered as active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_new_children: Option<bool>,
}

/// Schema transform: at least one of `active` and `activateNewChildren`.
fn one_setting(schema: &mut schemars::Schema) {
    schema.insert(
        "anyOf".into(),
        serde_json::json!([{ "required": ["active"] }, { "required": ["activateNewChildren"] }]),
    );
}

const ENTRY: &[Field] = &[
    req("path", Ty::Scalar(path_value)),
    opt("active", Ty::Bool),
    opt("activateNewChildren", Ty::Bool),
];

/// The checker of `path`: a string that parses as an [`ObjectPath`].
fn path_value(sink: &mut Sink<'_>, node: &Node, field: &str) {
    let Some(text) = crate::check::non_empty_str(sink, node, field) else {
        return;
    };
    if let Err(e) = ObjectPath::parse(text) {
        let help = match e {
            ObjectPathError::TooDeep(_) => {
                "write database, database/schema or database/schema/table, below the connection (without its key)"
            }
            _ => QUOTING_HELP,
        };
        sink.error(
            node.pos,
            format!("object path `{text}` {e}"),
            Some(help.to_owned()),
        );
    }
}

/// Checks `objects:` of a connection: each entry's fields, a setting in each, unique paths, and
/// every parent listed before its children (apply goes parents first, in list order).
pub(crate) fn check(sink: &mut Sink<'_>, _key: &Node, node: &Node, path: &str) {
    let Value::Seq(items) = &node.value else {
        sink.wrong_type(node, path, "a list of objects");
        return;
    };
    let mut listed: Vec<(ObjectPath, &Node)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if item.as_map().is_none() {
            sink.wrong_type(
                item,
                &at,
                "a mapping with `path` and `active` or `activateNewChildren`",
            );
            continue;
        }
        let before = sink.error_count();
        check_fields(sink, item, item.pos, &at, &format!("`{at}`"), ENTRY, &|name| {
            (name == "isActive").then(|| "an object's status is `active`".to_owned())
        });
        if sink.error_count() == before
            && item.get("active").is_none()
            && item.get("activateNewChildren").is_none()
        {
            sink.error(
                item.get("path").map_or(item.pos, |p| p.pos),
                format!("`{at}` sets neither `active` nor `activateNewChildren`"),
                Some("give at least one; an object connctl changes nothing on need not be listed".into()),
            );
        }
        if sink.error_count() != before {
            continue;
        }
        let Some(path_node) = item.get("path") else {
            continue;
        };
        let Some(parsed) = path_node.as_str().and_then(|t| ObjectPath::parse(t).ok()) else {
            continue;
        };
        if let Some((_, first)) = listed.iter().find(|(p, _)| *p == parsed) {
            sink.error(
                path_node.pos,
                format!("object `{parsed}` is listed twice"),
                Some(format!("it is first listed at line {}", first.pos.line)),
            );
            continue;
        }
        listed.push((parsed, path_node));
    }
    // A child listed before an ancestor: apply order is list order (parents first), and a
    // parent's status change would undo the child's.
    for (i, (child, child_node)) in listed.iter().enumerate() {
        if let Some((parent, parent_node)) = listed[i + 1..].iter().find(|(p, _)| p.is_ancestor_of(child)) {
            sink.error(
                child_node.pos,
                format!("object `{child}` is listed before its parent `{parent}`"),
                Some(format!(
                    "move it below `{parent}` (line {}); a parent's status change cascades to its children, so parents come first",
                    parent_node.pos.line
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> ObjectPath {
        ObjectPath::parse(text).unwrap()
    }

    #[test]
    fn parses_plain_and_quoted_segments() {
        assert_eq!(p("SALES").segments(), ["SALES"]);
        assert_eq!(p("SALES/PUBLIC/ORDERS").segments(), ["SALES", "PUBLIC", "ORDERS"]);
        assert_eq!(p("my.db/s.x").segments(), ["my.db", "s.x"]);
        assert_eq!(
            p(r#"SALES/"odd/name"/T1"#).segments(),
            ["SALES", "odd/name", "T1"]
        );
        assert_eq!(
            p(r#""say ""hi"""/" padded ""#).segments(),
            [r#"say "hi""#, " padded "]
        );
        assert_eq!(p(r#""SALES""#).segments(), ["SALES"]);
        assert_eq!(p("Ventes €/Schéma").segments(), ["Ventes €", "Schéma"]);
    }

    #[test]
    fn refuses_bad_paths() {
        use ObjectPathError as E;
        for (text, err) in [
            ("", E::EmptySegment),
            ("A//B", E::EmptySegment),
            ("/A", E::EmptySegment),
            ("A/", E::EmptySegment),
            (r#""""#, E::EmptySegment),
            ("A/B/C/D", E::TooDeep(4)),
            (r#"A/"B"#, E::Unterminated),
            (r#"A/"B"x/C"#, E::AfterQuote),
            (r#"A/B"C"#, E::StrayQuote),
            ("A/ B", E::Whitespace),
            ("A /B", E::Whitespace),
        ] {
            assert_eq!(ObjectPath::parse(text), Err(err), "{text}");
        }
    }

    #[test]
    fn display_requotes_and_reads_back() {
        for text in [
            "SALES",
            "SALES/PUBLIC/ORDERS",
            r#"SALES/"odd/name"/T1"#,
            r#""say ""hi"""/" padded ""#,
            "my.db",
        ] {
            let path = p(text);
            assert_eq!(path.to_string(), text);
            assert_eq!(p(&path.to_string()), path);
        }
        // Quotes that are not needed are dropped.
        assert_eq!(p(r#""SALES"/PUBLIC"#).to_string(), "SALES/PUBLIC");
        let odd = ObjectPath::new(vec!["a\"b".into(), "c/d".into()]).unwrap();
        assert_eq!(odd.to_string(), r#""a""b"/"c/d""#);
        assert_eq!(p(&odd.to_string()), odd);
    }

    #[test]
    fn parent_depth_and_ancestry() {
        let table = p("S/P/T");
        assert_eq!(table.depth(), 3);
        assert_eq!(table.parent(), Some(p("S/P")));
        assert_eq!(p("S").parent(), None);
        assert!(p("S").is_ancestor_of(&table));
        assert!(p("S/P").is_ancestor_of(&table));
        assert!(!table.is_ancestor_of(&table));
        assert!(!p("S/Q").is_ancestor_of(&table));
        assert!(!p("SP").is_ancestor_of(&p("SP2/X")));
        assert_eq!(table.full("sf"), ["sf", "S", "P", "T"]);
    }

    #[test]
    fn object_spec_round_trips_through_serde() {
        let spec: ObjectSpec =
            serde_json::from_value(serde_json::json!({"path": "S/\"a/b\"", "activateNewChildren": true}))
                .unwrap();
        assert_eq!(spec.path.segments(), ["S", "a/b"]);
        assert_eq!(spec.active, None);
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({"path": "S/\"a/b\"", "activateNewChildren": true})
        );
        assert!(
            serde_json::from_value::<ObjectSpec>(serde_json::json!({"path": "A//B", "active": true}))
                .is_err()
        );
    }
}
