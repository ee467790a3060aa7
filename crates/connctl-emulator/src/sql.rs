//! A small SQL lexer shared by the warehouse emulators: splitting a text into statements on
//! top-level `;`, normalising a statement for matching (comments removed, whitespace outside
//! quotes collapsed, trailing `;` dropped), and deciding whether a statement is accepted.

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    Single,
    Double,
    Backtick,
    Line,
    Block,
    Dollar,
}

/// One lexed piece of text: `(char, counts_as_code)`; comments are reported as not code.
fn lex(text: &str, mut on: impl FnMut(char, Mode, bool)) {
    let chars: Vec<char> = text.chars().collect();
    let mut mode = Mode::Normal;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match mode {
            Mode::Normal => {
                if c == '-' && next == Some('-') {
                    mode = Mode::Line;
                    on(c, Mode::Line, false);
                } else if c == '/' && next == Some('*') {
                    mode = Mode::Block;
                    on(c, Mode::Block, false);
                    on('*', Mode::Block, false);
                    i += 1;
                } else if c == '$' && next == Some('$') {
                    mode = Mode::Dollar;
                    on(c, Mode::Dollar, false);
                    on('$', Mode::Dollar, false);
                    i += 1;
                } else {
                    let m = match c {
                        '\'' => Mode::Single,
                        '"' => Mode::Double,
                        '`' => Mode::Backtick,
                        _ => Mode::Normal,
                    };
                    // `true` marks the opening quote as a boundary
                    on(c, m, m != Mode::Normal);
                    mode = m;
                }
            }
            Mode::Single => {
                if c == '\\' {
                    on(c, mode, false);
                    if let Some(n) = next {
                        on(n, mode, false);
                    }
                    i += 1;
                } else if c == '\'' && next == Some('\'') {
                    on(c, mode, false);
                    on('\'', mode, false);
                    i += 1;
                } else {
                    on(c, mode, false);
                    if c == '\'' {
                        mode = Mode::Normal;
                    }
                }
            }
            Mode::Double | Mode::Backtick => {
                let close = if mode == Mode::Double { '"' } else { '`' };
                if c == close && next == Some(close) {
                    on(c, mode, false);
                    on(c, mode, false);
                    i += 1;
                } else {
                    on(c, mode, false);
                    if c == close {
                        mode = Mode::Normal;
                    }
                }
            }
            Mode::Line => {
                if c == '\n' {
                    mode = Mode::Normal;
                    on(c, Mode::Normal, false);
                } else {
                    on(c, mode, false);
                }
            }
            Mode::Block => {
                if c == '*' && next == Some('/') {
                    on(c, mode, false);
                    on('/', mode, false);
                    i += 1;
                    mode = Mode::Normal;
                } else {
                    on(c, mode, false);
                }
            }
            Mode::Dollar => {
                if c == '$' && next == Some('$') {
                    on(c, mode, false);
                    on('$', mode, false);
                    i += 1;
                    mode = Mode::Normal;
                } else {
                    on(c, mode, false);
                }
            }
        }
        i += 1;
    }
}

/// Split `text` on top-level `;` into raw statements; pieces holding only comments and
/// whitespace are dropped.
pub fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    lex(text, |c, mode, _| {
        if c == ';' && mode == Mode::Normal {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    });
    out.push(cur);
    out.into_iter()
        .filter(|s| !normalize(s).is_empty())
        .map(|s| s.trim().to_string())
        .collect()
}

/// The matching form of one statement: comments removed, whitespace outside quotes collapsed to
/// one space, trimmed, trailing `;` removed.
pub fn normalize(stmt: &str) -> String {
    let mut out = String::new();
    let mut pending_space = false;
    lex(stmt, |c, mode, _| match mode {
        Mode::Line | Mode::Block => pending_space = true,
        Mode::Normal if c.is_whitespace() => pending_space = true,
        _ => {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    });
    let mut s = out.trim().to_string();
    while s.ends_with(';') {
        s.pop();
        s = s.trim_end().to_string();
    }
    s
}

/// The first word of a normalised statement, upper-cased.
pub fn first_word(normalized: &str) -> String {
    normalized
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

const KEYWORDS: &[&str] = &[
    "ALTER", "ANALYZE", "BEGIN", "CACHE", "CALL", "CLEAR", "COMMENT", "COMMIT", "COPY", "CREATE", "DECLARE",
    "DELETE", "DENY", "DESC", "DESCRIBE", "DROP", "EXECUTE", "EXPLAIN", "GRANT", "INSERT", "LIST", "MERGE",
    "MSCK", "OPTIMIZE", "REFRESH", "REMOVE", "REPAIR", "RESET", "REVOKE", "ROLLBACK", "SELECT", "SET",
    "SHOW", "TRUNCATE", "UNCACHE", "UNDROP", "UNSET", "UPDATE", "USE", "VACUUM", "VALUES", "WITH",
];

/// Whether the emulated warehouse rejects the statement; `Some(offending word)` if so.
pub fn rejection(normalized: &str) -> Option<String> {
    if normalized.contains("SYNTAX_ERROR_FOR_TEST") {
        return Some("SYNTAX_ERROR_FOR_TEST".to_string());
    }
    let word = first_word(normalized);
    if KEYWORDS.contains(&word.as_str()) {
        None
    } else if word.is_empty() {
        Some(normalized.chars().take(12).collect())
    } else {
        Some(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respecting_quotes_and_comments() {
        let text = "-- head; x\nCREATE X 'a;b';\n/* c;d */ GRANT \"u;v\" `w;x`; SELECT 'it''s;ok';\n-- end\n";
        let parts = split(text);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(normalize(&parts[0]), "CREATE X 'a;b'");
        assert_eq!(normalize(&parts[1]), "GRANT \"u;v\" `w;x`");
        assert_eq!(normalize(&parts[2]), "SELECT 'it''s;ok'");
    }

    #[test]
    fn normalizes_whitespace() {
        assert_eq!(normalize("  CREATE\n\tDATABASE   x ;  "), "CREATE DATABASE x");
        assert_eq!(normalize("SELECT 'a  b'"), "SELECT 'a  b'");
        assert_eq!(split("$$ a; b $$; SELECT 1").len(), 2);
    }

    #[test]
    fn rejects_gibberish() {
        assert!(rejection("CREATE DATABASE x").is_none());
        assert!(rejection("FOO BAR").is_some());
        assert!(rejection("SELECT SYNTAX_ERROR_FOR_TEST").is_some());
    }
}
