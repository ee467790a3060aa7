//! Variables in YAML string values: `${var.NAME}`, `${env.name}` (the selected environment's
//! name) and `$${` for a literal `${`. Only values are expanded, never mapping keys nor a
//! connection's `key:` (a state address must not depend on the environment).

use std::collections::BTreeMap;

use crate::diagnostic::Sink;
use crate::yaml::{Node, Pos, Value};

/// What `${…}` can refer to in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    /// The selected environment, for `${env.name}`.
    pub environment: Option<String>,
    /// Every variable with its winning value (connctl.toml default < the environment's `vars` <
    /// `CONNCTL_VAR_NAME` < `--var`; the CLI decides).
    pub values: BTreeMap<String, String>,
}

/// Why one `${…}` could not be expanded, and at which character of the string it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    pub offset: usize,
    pub message: String,
    pub help: Option<String>,
}

impl Vars {
    /// `text` with every `${…}` replaced and every `$${` turned into `${`.
    pub fn expand(&self, text: &str) -> Result<String, ExpandError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut offset = 0;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let at = offset + i;
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let Some(end) = tail.find('}') else {
                    return Err(ExpandError {
                        offset: char_offset(text, at),
                        message: "`${` is not closed by `}`".into(),
                        help: Some("write `$${` for a literal `${`".into()),
                    });
                };
                out.push_str(&self.lookup(tail[..end].trim(), char_offset(text, at))?);
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
            offset = text.len() - rest.len();
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, name: &str, offset: usize) -> Result<String, ExpandError> {
        let error = |message: String, help: Option<String>| ExpandError {
            offset,
            message,
            help,
        };
        if let Some(var) = name.strip_prefix("var.") {
            return self.values.get(var).cloned().ok_or_else(|| {
                let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
                let close = crate::suggest::closest(var, &known, 3);
                error(
                    format!("undefined variable `{var}`"),
                    Some(if close.is_empty() {
                        format!(
                            "declare it in connctl.toml (`[vars] {var} = \"…\"` or the environment's `vars`), or pass --var {var}=VALUE"
                        )
                    } else {
                        format!("did you mean {}?", crate::suggest::one_of(&close))
                    }),
                )
            });
        }
        if name == "env.name" {
            return self.environment.clone().ok_or_else(|| {
                error(
                    "`${env.name}` is used, but no environment is selected".into(),
                    Some("pass --env NAME (or set CONNCTL_ENV)".into()),
                )
            });
        }
        Err(error(
            format!("unknown reference `${{{name}}}`"),
            Some("use `${var.NAME}` or `${env.name}`; write `$${` for a literal `${`".into()),
        ))
    }

    /// Expands every string value below `node` in place; each failure is an error in `sink`
    /// at the `${` it is about.
    pub(crate) fn expand_tree(&self, node: &mut Node, sink: &mut Sink<'_>, source: &[&str]) {
        match &mut node.value {
            Value::Str(text) if text.contains('$') => match self.expand(text) {
                Ok(expanded) => *text = expanded,
                Err(e) => sink.error(position(node.pos, e.offset, source), e.message, e.help),
            },
            Value::Seq(items) => {
                for item in items {
                    self.expand_tree(item, sink, source);
                }
            }
            Value::Map(entries) => {
                // A connection's `key` is its address in the state: the same in every
                // environment, so never expanded (a `$` in it is then refused as a key).
                for (_, value) in entries.iter_mut().filter(|(k, _)| k.as_str() != Some("key")) {
                    self.expand_tree(value, sink, source);
                }
            }
            _ => {}
        }
    }
}

fn char_offset(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |t| t.chars().count())
}

/// Where the `${` at character `offset` of a scalar starting at `pos` is: exact for a scalar on
/// one line (a quote before it is skipped), else the scalar's start.
fn position(pos: Pos, offset: usize, source: &[&str]) -> Pos {
    let line = pos
        .line
        .checked_sub(1)
        .and_then(|i| source.get(i))
        .copied()
        .unwrap_or("");
    let first = line.chars().nth(pos.column.saturating_sub(1));
    let quoted = matches!(first, Some('"' | '\''));
    let column = pos.column + offset + usize::from(quoted);
    if column + 2 <= line.chars().count() + 1 {
        Pos {
            line: pos.line,
            column,
            len: 2,
        }
    } else {
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars {
            environment: Some("prod".into()),
            values: [("host".to_owned(), "acme".to_owned())].into_iter().collect(),
        }
    }

    #[test]
    fn variables_the_environment_and_escapes_expand() {
        let v = vars();
        assert_eq!(
            v.expand("${var.host}.snowflakecomputing.com").unwrap(),
            "acme.snowflakecomputing.com"
        );
        assert_eq!(v.expand("WH_${env.name}").unwrap(), "WH_prod");
        assert_eq!(v.expand("$${var.host} costs $5").unwrap(), "${var.host} costs $5");
        assert_eq!(v.expand("${ var.host }-${var.host}").unwrap(), "acme-acme");
        assert_eq!(v.expand("plain").unwrap(), "plain");
    }

    #[test]
    fn undefined_unknown_and_unclosed_references_are_errors_at_their_offset() {
        let v = vars();
        let e = v.expand("a-${var.hots}").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (2, "undefined variable `hots`"));
        assert_eq!(e.help.as_deref(), Some("did you mean `host`?"));
        let e = v.expand("é${target.name}").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (1, "unknown reference `${target.name}`")
        );
        let e = v.expand("x ${var.host").unwrap_err();
        assert_eq!((e.offset, e.message.as_str()), (2, "`${` is not closed by `}`"));
        let none = Vars::default();
        assert!(
            none.expand("${env.name}")
                .unwrap_err()
                .message
                .contains("no environment")
        );
    }
}
