//! Field-level checks over the span-carrying YAML tree: shapes of mappings (unknown, missing
//! fields), scalar types, and the small value rules (keys, ports, secrets). What is particular
//! to a technology comes from its module as a [`TechRules`].
//!
//! Each check reports into a [`Sink`] and carries on, so one run shows every problem.

use crate::common::{ExecutorKind, RESERVED_KEYS};
use crate::diagnostic::{Diagnostic, Severity, Sink, redact};
use crate::suggest::{did_you_mean, one_of};
use crate::yaml::{Node, Pos, Value};

/// What a field must hold.
#[derive(Clone, Copy)]
pub(crate) enum Ty {
    /// A non-empty string.
    Str,
    Bool,
    Port,
    /// A list of non-empty strings.
    StrList,
    /// `{ enabled: bool }`.
    Toggle,
    /// `{ env: NAME }` or `{ file: PATH }`.
    Secret,
    Executor,
    ConnectionKey,
    /// A scalar with its own checker (node, field path), such as a catalog name.
    Scalar(fn(&mut Sink<'_>, &Node, &str)),
    /// A nested mapping with its own checker.
    Nested(fn(&mut Sink<'_>, &Node, &Node, &str)),
    /// Checked by the caller (e.g. a tag such as `technology` or `auth.type`).
    Skip,
}

/// One field of a mapping.
pub(crate) struct Field {
    pub name: &'static str,
    pub required: bool,
    pub ty: Ty,
}

pub(crate) const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        required: true,
        ty,
    }
}

pub(crate) const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        required: false,
        ty,
    }
}

/// One `auth.type` variant of a technology: its name and the fields it takes.
pub(crate) struct Variant {
    pub name: &'static str,
    pub fields: &'static [Field],
    /// Rules across the variant's fields (auth node, `type` node), after the fields are checked.
    pub check: Option<fn(&mut Sink<'_>, &Node, &Node)>,
}

/// What the structural check knows of one technology; each technology module has one.
pub(crate) struct TechRules {
    /// Fields beyond the ones every connection has.
    pub fields: &'static [Field],
    /// Fields that, in an entry without `technology`, suggest this technology.
    pub telltales: &'static [&'static str],
    /// The `auth.type` variants.
    pub auth: &'static [Variant],
    /// Rules across fields of a connection entry (warnings such as conflicting toggles).
    pub check: fn(&mut Sink<'_>, &Node),
}

/// `auth.password` from `auth` and `password`.
pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

impl Sink<'_> {
    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = self.at(Severity::Error, pos.line, pos.column, pos.len);
        d.message = message.into();
        d.help = help;
        self.push(d);
    }

    pub(crate) fn warning(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = self.at(Severity::Warning, pos.line, pos.column, pos.len);
        d.message = message.into();
        d.help = help;
        self.push(d);
    }

    /// An error whose underlined text is masked in the snippet (it may be a secret).
    pub(crate) fn secret_error(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = self.at(Severity::Error, pos.line, pos.column, pos.len);
        d.message = message.into();
        d.help = help;
        self.push(redact(d));
    }

    pub(crate) fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d: &&Diagnostic| d.severity == Severity::Error)
            .count()
    }

    /// "`path` must be X, found Y" at the value.
    pub(crate) fn wrong_type(&mut self, node: &Node, path: &str, expected: &str) {
        let help = match &node.value {
            Value::Int(_) | Value::Float(_) | Value::Bool(_) if expected == "a string" => {
                Some(format!("quote it to make it a string: \"{}\"", node.key_text()))
            }
            Value::Str(s)
                if expected == "a boolean" && ["true", "false"].contains(&s.to_lowercase().as_str()) =>
            {
                Some(format!("write `{}` without quotes", s.to_lowercase()))
            }
            Value::Str(s) if expected.starts_with("an integer") && s.trim().parse::<i64>().is_ok() => {
                Some(format!("write `{}` without quotes", s.trim()))
            }
            _ => None,
        };
        self.error(
            node.pos,
            format!("`{path}` must be {expected}, found {}", node.value.kind()),
            help,
        );
    }
}

/// Checks a mapping against its fields: reports non-string keys, unknown fields (with a
/// suggestion, or `foreign`'s note on where the field belongs) and missing required fields
/// (at `anchor`, the key that introduced the mapping), then checks each known field's value.
pub(crate) fn check_fields(
    sink: &mut Sink<'_>,
    node: &Node,
    anchor: Pos,
    path: &str,
    what: &str,
    fields: &[Field],
    foreign: &dyn Fn(&str) -> Option<String>,
) {
    let Some(entries) = node.as_map() else {
        let what_path = if path.is_empty() {
            what.to_owned()
        } else {
            format!("`{path}`")
        };
        sink.error(
            node.pos,
            format!("{what_path} must be a mapping, found {}", node.value.kind()),
            None,
        );
        return;
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    // A misspelt required field is reported once, as unknown with a suggestion, not also as missing.
    let mut suggested = Vec::new();
    for (key, value) in entries {
        let Some(name) = key.as_str() else {
            sink.error(
                key.pos,
                format!("field names must be strings, found {}", key.value.kind()),
                None,
            );
            continue;
        };
        match fields.iter().find(|f| f.name == name) {
            Some(field) => check_value(sink, key, value, &join(path, name), field),
            None => {
                let suggestion = did_you_mean(name, &names);
                suggested.extend(suggestion);
                let help = foreign(name)
                    .or_else(|| suggestion.map(|s| format!("did you mean `{s}`?")))
                    .or_else(|| (names.len() <= 8).then(|| format!("expected {}", one_of(&names))));
                sink.error(key.pos, format!("unknown field `{name}` in {what}"), help);
            }
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if node.get(field.name).is_none() && !suggested.contains(&field.name) {
            sink.error(
                anchor,
                format!("missing field `{}` in {what}", join(path, field.name)),
                None,
            );
        }
    }
}

/// Checks one value against its type. A `null` stands for "absent" in optional fields.
fn check_value(sink: &mut Sink<'_>, key: &Node, value: &Node, path: &str, field: &Field) {
    if value.value == Value::Null && !field.required && !matches!(field.ty, Ty::Secret) {
        return;
    }
    match field.ty {
        Ty::Str => {
            non_empty_str(sink, value, path);
        }
        Ty::Bool => {
            if !matches!(value.value, Value::Bool(_)) {
                sink.wrong_type(value, path, "a boolean");
            }
        }
        Ty::Port => port(sink, value, path),
        Ty::StrList => match &value.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    non_empty_str(sink, item, &format!("{path}[{i}]"));
                }
            }
            _ => sink.wrong_type(value, path, "a list of strings"),
        },
        Ty::Toggle => {
            let fields = [req("enabled", Ty::Bool)];
            check_fields(sink, value, key.pos, path, &format!("`{path}`"), &fields, &|_| {
                None
            });
        }
        Ty::Secret => secret(sink, key, value, path, field.required),
        Ty::Executor => {
            let names = ExecutorKind::ALL.map(ExecutorKind::as_str);
            one_of_values(sink, value, path, "executor", &names);
        }
        Ty::ConnectionKey => connection_key(sink, value),
        Ty::Scalar(check) => check(sink, value, path),
        Ty::Nested(check) => check(sink, key, value, path),
        Ty::Skip => {}
    }
}

/// A non-empty string, or an error.
pub(crate) fn non_empty_str<'n>(sink: &mut Sink<'_>, node: &'n Node, path: &str) -> Option<&'n str> {
    match &node.value {
        Value::Str(s) if s.trim().is_empty() => {
            sink.error(node.pos, format!("`{path}` must not be empty"), None);
            None
        }
        Value::Str(s) => Some(s),
        _ => {
            sink.wrong_type(node, path, "a string");
            None
        }
    }
}

/// A string from a fixed set, with a suggestion when it is a near miss.
pub(crate) fn one_of_values(sink: &mut Sink<'_>, node: &Node, path: &str, noun: &str, allowed: &[&str]) {
    let Some(value) = non_empty_str(sink, node, path) else {
        return;
    };
    if !allowed.contains(&value) {
        let help = match did_you_mean(value, allowed) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected {}", one_of(allowed)),
        };
        sink.error(node.pos, format!("unknown {noun} `{value}`"), Some(help));
    }
}

fn port(sink: &mut Sink<'_>, node: &Node, path: &str) {
    match node.value {
        Value::Int(p) if (1..=65535).contains(&p) => {}
        Value::Int(p) => sink.error(
            node.pos,
            format!("`{path}` {p} is out of range"),
            Some("a port is from 1 to 65535".into()),
        ),
        _ => sink.wrong_type(node, path, "an integer from 1 to 65535"),
    }
}

/// The Immuta `connectionKey` rules.
fn connection_key(sink: &mut Sink<'_>, node: &Node) {
    let Some(key) = non_empty_str(sink, node, "key") else {
        return;
    };
    if key.contains('.') {
        sink.error(
            node.pos,
            format!("connection key `{key}` contains `.`"),
            Some("Immuta uses `.` to separate object path segments; use `-` or `_` instead".into()),
        );
    } else if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        let bad = if bad.is_whitespace() {
            "a space".to_owned()
        } else {
            format!("`{bad}`")
        };
        sink.error(
            node.pos,
            format!("connection key `{key}` contains {bad}"),
            Some("a connection key may hold only letters, digits, `-` and `_`".into()),
        );
    } else if let Some(word) = RESERVED_KEYS.iter().find(|w| w.eq_ignore_ascii_case(key)) {
        sink.error(
            node.pos,
            format!("connection key `{key}` is a reserved word"),
            Some(format!(
                "Immuta reserves `{word}`; pick a more specific key, such as `{key}-prod`"
            )),
        );
    }
}

/// A portable environment variable name (POSIX): what a shell can `export`.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const SECRET_HELP: &str = "use `{ env: NAME }` or `{ file: PATH }`";

/// A secret reference: a mapping with exactly one of `env` and `file`. A literal is an error
/// that never repeats the literal (and masks it in the snippet).
fn secret(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str, required: bool) {
    match &node.value {
        Value::Null if !required => {}
        Value::Null => sink.error(
            node.pos,
            format!("`{path}` must be a secret reference, found nothing"),
            Some(SECRET_HELP.into()),
        ),
        Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => sink.secret_error(
            node.pos,
            format!("`{path}` holds a literal value; a secret must be a reference, never the secret itself"),
            Some(format!("{SECRET_HELP}, and take the value out of this file")),
        ),
        Value::Seq(_) => sink.error(
            node.pos,
            format!("`{path}` must be a secret reference, found a list"),
            Some(SECRET_HELP.into()),
        ),
        Value::Map(entries) => {
            let fields = [
                opt("env", Ty::Skip),
                opt("file", Ty::Skip),
                opt("secret", Ty::Skip),
            ];
            let what = format!("secret reference `{path}`");
            check_fields(sink, node, key.pos, path, &what, &fields, &|_| None);
            if let Some(reference) = node.get("secret") {
                if node.get("env").is_some() || node.get("file").is_some() {
                    sink.error(
                        reference.pos,
                        format!("secret reference `{path}` has `secret` and `env` or `file`"),
                        Some("give exactly one of them".into()),
                    );
                } else if let Some(text) = non_empty_str(sink, reference, &join(path, "secret"))
                    && let Err(reason) = crate::provider::ProviderRef::parse(text)
                {
                    sink.error(
                        reference.pos,
                        format!("`{}` {reason}", join(path, "secret")),
                        Some("write `{ secret: \"<provider>:<path>#<field>\" }` with a provider of connctl.toml ([secrets.<provider>])".into()),
                    );
                }
                return;
            }
            let env = node.get("env");
            let file = node.get("file");
            match (env, file) {
                (Some(_), Some(_)) => {
                    let second = entries
                        .iter()
                        .filter(|(k, _)| matches!(k.as_str(), Some("env" | "file")))
                        .nth(1)
                        .map_or(node.pos, |(k, _)| k.pos);
                    sink.error(
                        second,
                        format!("secret reference `{path}` has both `env` and `file`"),
                        Some("give exactly one of them".into()),
                    );
                }
                // An unknown field was just reported; "needs env or file" would repeat it.
                (None, None)
                    if entries
                        .iter()
                        .any(|(k, _)| !matches!(k.as_str(), Some("env" | "file" | "secret"))) => {}
                (None, None) => sink.error(
                    key.pos,
                    format!("secret reference `{path}` needs `env` or `file`"),
                    Some(SECRET_HELP.into()),
                ),
                (Some(env), None) => {
                    if let Some(name) = non_empty_str(sink, env, &join(path, "env"))
                        && !is_env_name(name)
                    {
                        sink.error(
                            env.pos,
                            format!("`{}` is not a valid environment variable name", join(path, "env")),
                            Some(
                                "a name is letters, digits and underscores, not starting with a digit (`SF_PASSWORD`)"
                                    .into(),
                            ),
                        );
                    }
                }
                (None, Some(file)) => {
                    non_empty_str(sink, file, &join(path, "file"));
                }
            }
        }
    }
}
