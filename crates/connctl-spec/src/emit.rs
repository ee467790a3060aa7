//! A YAML writer for [`Node`] trees (`connctl render`): block style, keys in document order,
//! strings plain when YAML would read them back as the same string, else double-quoted.

use crate::yaml::{Node, Value};

/// Writes `node` as one list item at `depth` (two spaces per level).
pub(crate) fn item(node: &Node, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => {
            for (i, (k, v)) in entries.iter().enumerate() {
                out.push_str(&pad);
                out.push_str(if i == 0 { "- " } else { "  " });
                entry(k, v, depth + 1, out);
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str("- ");
            out.push_str(&scalar(node));
            out.push('\n');
        }
    }
}

/// `key: value` for a key at level `depth` (its indentation already written).
fn entry(key: &Node, value: &Node, depth: usize, out: &mut String) {
    out.push_str(&string(&key.key_text()));
    out.push(':');
    match &value.value {
        Value::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            for (k, v) in entries {
                out.push_str(&"  ".repeat(depth + 1));
                entry(k, v, depth + 1, out);
            }
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            for i in items {
                item(i, depth + 1, out);
            }
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(value));
            out.push('\n');
        }
    }
}

fn scalar(node: &Node) -> String {
    match &node.value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => string(s),
        Value::Seq(_) => "[]".into(),
        Value::Map(_) => "{}".into(),
    }
}

/// A string plain when that is unambiguous, else as a JSON string (valid YAML double-quoted).
fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@' | '(' | ')'))
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_round_trips_through_the_reader() {
        let text = "key: a\nhost: \"x: y\"\nport: 443\nauth:\n  password:\n    env: P\nids:\n  - 1\n  - \"007\"\nflag: \"true\"\n";
        let node: Node = serde_saphyr::from_str(text).expect("valid");
        let mut out = String::new();
        item(&node, 0, &mut out);
        let back: Node = serde_saphyr::from_str(&out).expect("rendered YAML parses");
        let Value::Seq(items) = back.value else {
            panic!("a list: {out}")
        };
        assert_eq!(items[0].to_json(), node.to_json(), "{out}");
    }
}
