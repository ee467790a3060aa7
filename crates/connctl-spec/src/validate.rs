//! The structure of a connctl file: top level, `defaults:`, each connection by technology, and
//! each auth variant. Walks the YAML tree with [`crate::check`] and reports every problem.
//!
//! The field tables here and in each technology module ([`TechRules`]) mirror the serde types
//! of [`crate::model`]; the typed read that follows a clean walk (and the schema tests over the
//! fixtures) keep the two in step.

use crate::check::{Field, TechRules, Ty, Variant, check_fields, non_empty_str, opt, req};
use crate::diagnostic::Sink;
use crate::model::{SPEC_VERSION, Technology};
use crate::suggest::{did_you_mean, one_of};
use crate::yaml::{Node, Pos, Value};

/// The rules of one technology.
fn rules(technology: Technology) -> &'static TechRules {
    match technology {
        Technology::Snowflake => &crate::snowflake::RULES,
        Technology::Databricks => &crate::databricks::RULES,
    }
}

/// Whether a field path of a connection (`auth.password`) holds a secret reference, for any
/// technology: an `auth` field the rules check as a secret.
pub fn is_secret_field(path: &str) -> bool {
    let Some(name) = path.strip_prefix("auth.") else {
        return false;
    };
    Technology::ALL.iter().any(|t| {
        rules(*t).auth.iter().any(|v| {
            v.fields
                .iter()
                .any(|f| f.name == name && matches!(f.ty, Ty::Secret))
        })
    })
}

const TOP: &[Field] = &[
    req("version", Ty::Skip),
    opt("defaults", Ty::Nested(defaults)),
    opt("connections", Ty::Skip),
];

const DEFAULTS: &[Field] = &[
    opt("settings", Ty::Nested(settings)),
    opt("options", Ty::Nested(options)),
    opt("protect", Ty::Bool),
    opt("executor", Ty::Executor),
];

const SETTINGS: &[Field] = &[opt("isActive", Ty::Bool), opt("activateNewChildren", Ty::Bool)];
const OPTIONS: &[Field] = &[opt("forceRecursiveCrawl", Ty::Bool)];

/// Fields every connection has, whatever its technology.
const COMMON: &[Field] = &[
    req("key", Ty::ConnectionKey),
    req("technology", Ty::Skip),
    opt("protect", Ty::Bool),
    opt("executor", Ty::Executor),
    opt("settings", Ty::Nested(settings)),
    opt("options", Ty::Nested(options)),
    opt("objects", Ty::Nested(crate::objects::check)),
    req("auth", Ty::Skip),
];

/// A connection entry that passed every check, ready for the typed read.
pub(crate) struct Checked<'n> {
    pub node: &'n Node,
    pub key: String,
    /// The `key:` field name (the connection's origin).
    pub key_field: Pos,
    /// The key's value (underlined by "duplicate key").
    pub key_value: Pos,
}

/// What a file holds once its structure is checked.
pub(crate) struct CheckedFile<'n> {
    /// `defaults:` when present and valid.
    pub defaults: Option<&'n Node>,
    /// Whether `defaults:` had errors (then no connection of the file is built).
    pub defaults_ok: bool,
    pub connections: Vec<Checked<'n>>,
}

/// Checks a whole file. `source` decides between "empty file" and "not a mapping".
pub(crate) fn check_file<'n>(sink: &mut Sink<'_>, root: &'n Node, source: &str) -> CheckedFile<'n> {
    let mut out = CheckedFile {
        defaults: None,
        defaults_ok: true,
        connections: Vec::new(),
    };
    let Some(_) = root.as_map() else {
        if root.value == Value::Null && is_blank(source) {
            sink.error(
                Pos {
                    line: 1,
                    column: 1,
                    len: 1,
                },
                "file is empty",
                Some("a connctl file starts with `version: 1` and lists `connections:`".into()),
            );
        } else {
            sink.error(
                root.pos,
                format!("the top level must be a mapping, found {}", root.value.kind()),
                Some("a connctl file starts with `version: 1` and lists `connections:`".into()),
            );
        }
        return out;
    };
    let before = sink.error_count();
    check_fields(sink, root, root.pos, "", "the top level", TOP, &|name| {
        (name == "connection").then(|| "did you mean `connections`?".to_owned())
    });
    if let Some(version) = root.get("version") {
        match version.value {
            Value::Int(v) if v == i128::from(SPEC_VERSION) => {}
            Value::Int(v) => sink.error(
                version.pos,
                format!("unsupported spec version {v}"),
                Some(format!("this connctl reads `version: {SPEC_VERSION}`")),
            ),
            _ => sink.wrong_type(version, "version", "an integer"),
        }
    }
    let top_ok = sink.error_count() == before;
    out.defaults = root.get("defaults").filter(|d| d.value != Value::Null);
    out.defaults_ok = top_ok;
    let Some(list) = root.get("connections") else {
        return out;
    };
    match &list.value {
        Value::Null => {}
        Value::Seq(items) => {
            for item in items {
                let before = sink.error_count();
                let key = connection(sink, item);
                if let Some(key) = key.filter(|_| sink.error_count() == before) {
                    out.connections.push(key);
                }
            }
        }
        _ => sink.wrong_type(list, "connections", "a list of connections"),
    }
    out
}

fn is_blank(source: &str) -> bool {
    source.lines().all(|l| {
        let t = l.trim().trim_start_matches('\u{feff}');
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Checks one entry of `connections:`; returns its key and positions.
fn connection<'n>(sink: &mut Sink<'_>, item: &'n Node) -> Option<Checked<'n>> {
    if item.as_map().is_none() {
        sink.error(
            item.pos,
            format!(
                "each entry of `connections` must be a mapping, found {}",
                item.value.kind()
            ),
            None,
        );
        return None;
    }
    let key = item
        .get("key")
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_owned();
    let what = if key.is_empty() {
        "a connection".to_owned()
    } else {
        format!("connection `{key}`")
    };
    let names = Technology::ALL.map(Technology::as_str);
    let Some(tech_node) = item.get("technology") else {
        // Without a technology the other fields cannot be judged; say which one they suggest.
        let guess = Technology::ALL
            .into_iter()
            .find(|t| rules(*t).telltales.iter().any(|f| item.get(f).is_some()))
            .map_or_else(
                || format!("expected {}", one_of(&names)),
                |t| format!("these fields look like `technology: {t}`"),
            );
        sink.error(
            item.pos,
            format!("missing field `technology` in {what}"),
            Some(guess),
        );
        return None;
    };
    let technology = match tech_node.as_str() {
        Some(t) => match Technology::from_name(t) {
            Some(technology) => technology,
            None => {
                let help = match did_you_mean(t, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected {}", one_of(&names)),
                };
                sink.error(tech_node.pos, format!("unknown technology `{t}`"), Some(help));
                return None;
            }
        },
        None => {
            sink.wrong_type(tech_node, "technology", "a string");
            return None;
        }
    };
    let own = rules(technology);
    let fields: Vec<Field> = COMMON.iter().chain(own.fields).map(copy_field).collect();
    let what = format!("{technology} {what}");
    check_fields(sink, item, item.pos, "", &what, &fields, &|name| {
        others(technology)
            .find(|other| rules(*other).fields.iter().any(|f| f.name == name))
            .map(|other| format!("`{name}` is a {other} field; this connection is {technology}"))
            .or_else(|| misplaced(name))
    });
    if let Some(auth_node) = item.get("auth") {
        let auth_key = item.key_node("auth").map_or(item.pos, |k| k.pos);
        auth(sink, auth_node, auth_key, technology);
    }
    (own.check)(sink, item);
    let key_field = item.key_node("key").map_or(item.pos, |k| k.pos);
    let key_value = item.get("key").map_or(item.pos, |k| k.pos);
    Some(Checked {
        node: item,
        key,
        key_field,
        key_value,
    })
}

fn copy_field(f: &Field) -> Field {
    Field {
        name: f.name,
        required: f.required,
        ty: f.ty,
    }
}

/// The technologies other than `technology`, in [`Technology::ALL`] order.
fn others(technology: Technology) -> impl Iterator<Item = Technology> {
    Technology::ALL.into_iter().filter(move |t| *t != technology)
}

/// Checks an auth block: picks the variant by `type` and checks its fields.
fn auth(sink: &mut Sink<'_>, node: &Node, anchor: Pos, technology: Technology) {
    let variants = rules(technology).auth;
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    if node.as_map().is_none() {
        sink.wrong_type(node, "auth", "a mapping");
        return;
    }
    let Some(type_node) = node.get("type") else {
        missing_auth_type(sink, node, anchor, variants);
        return;
    };
    let Some(ty) = non_empty_str(sink, type_node, "auth.type") else {
        return;
    };
    let Some(variant) = variants.iter().find(|v| v.name == ty) else {
        let other_tech = others(technology).find(|other| rules(*other).auth.iter().any(|v| v.name == ty));
        let help = if let Some(other_tech) = other_tech {
            format!(
                "`{ty}` is a {other_tech} auth type; a {technology} connection takes {}",
                one_of(&names)
            )
        } else if let Some(s) = did_you_mean(ty, &names) {
            format!("did you mean `{s}`?")
        } else {
            format!("expected {}", one_of(&names))
        };
        sink.error(
            type_node.pos,
            format!("unknown auth type `{ty}` for {technology}"),
            Some(help),
        );
        return;
    };
    let what = format!("`auth` (type `{ty}`)");
    check_fields(sink, node, anchor, "auth", &what, variant.fields, &|name| {
        variants
            .iter()
            .find(|v| v.name != ty && v.fields.iter().any(|f| f.name == name))
            .map(|v| format!("`{name}` belongs to auth type `{}`", v.name))
    });
    if let Some(check) = variant.check {
        check(sink, node, type_node);
    }
}

/// No `type`: say which variants the fields fit, so the fix is obvious.
fn missing_auth_type(sink: &mut Sink<'_>, node: &Node, anchor: Pos, variants: &[Variant]) {
    let present: Vec<&str> = node
        .as_map()
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .collect();
    let fits: Vec<&str> = variants
        .iter()
        .filter(|v| {
            present.iter().all(|p| v.fields.iter().any(|f| f.name == *p))
                && v.fields
                    .iter()
                    .filter(|f| f.required && f.name != "type")
                    .all(|f| present.contains(&f.name))
        })
        .map(|v| v.name)
        .collect();
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    let help = match fits.as_slice() {
        [one] => format!("these fields fit `type: {one}`; add it"),
        [] => format!("the fields fit no auth variant; set `type` to {}", one_of(&names)),
        many => format!("the fields fit several variants ({}); set `type`", one_of(many)),
    };
    sink.error(anchor, "missing field `auth.type`", Some(help));
}

fn defaults(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    check_fields(sink, node, key.pos, path, "`defaults`", DEFAULTS, &misplaced);
}

/// A settings or options field written one level too high.
fn misplaced(name: &str) -> Option<String> {
    let parent = if SETTINGS.iter().any(|f| f.name == name) {
        "settings"
    } else if OPTIONS.iter().any(|f| f.name == name) {
        "options"
    } else {
        return None;
    };
    Some(format!("`{name}` goes under `{parent}:`"))
}

fn settings(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), SETTINGS, &|_| {
        None
    });
}

fn options(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), OPTIONS, &|_| {
        None
    });
}
