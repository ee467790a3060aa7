//! Splitting a setup script into single statements.
//!
//! Databricks' Statement Execution API takes one statement per call, so a script has to be cut at
//! its top-level semicolons. Cutting on the text alone breaks on `';'` inside literals, comments
//! and bodies, so the script is tokenized with the `sqlparser` tokenizer (Databricks or Snowflake
//! dialect) and cut only at [`Token::SemiColon`] tokens. Each statement is the *original* slice of
//! the script between two cuts, trimmed of surrounding whitespace, so nothing is re-rendered:
//! quotes (`'…''…'`, `"…"`, backticks), `--` and `/* */` comments and `$$…$$` bodies reach the
//! server byte for byte.
//!
//! Unquoted compound blocks (`BEGIN … END`, Snowflake `DECLARE … BEGIN … END`, `CASE … END`)
//! hold semicolons of their own; the splitter tracks their nesting and cuts only at depth 0.
//! Segments that hold nothing but whitespace and comments are dropped.

use std::fmt;

use sqlparser::dialect::{DatabricksDialect, Dialect, SnowflakeDialect};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// The SQL dialect whose lexical rules apply when splitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    /// Databricks SQL: backtick identifiers, `"…"` and `'…'` strings with backslash escapes.
    Databricks,
    /// Snowflake SQL: `"…"` identifiers, `'…'` strings, `$$…$$` bodies; `DECLARE` opens a block.
    Snowflake,
}

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's original text, without the terminating `;` and surrounding whitespace.
    pub text: &'a str,
    /// The 1-based line of the script on which the statement starts.
    pub line: usize,
    /// The first keyword (uppercased), e.g. `GRANT`; safe to show, unlike the text.
    pub keyword: String,
}

/// The script could not be split; names a line, never the script's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line})")]
pub struct SplitError {
    /// The 1-based line where the problem was found.
    pub line: usize,
    /// What is wrong, e.g. "unterminated string literal".
    pub message: String,
}

impl fmt::Display for SqlDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SqlDialect::Databricks => "Databricks",
            SqlDialect::Snowflake => "Snowflake",
        })
    }
}

/// Maps tokenizer locations (1-based line, 1-based column in characters) to byte offsets.
struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Offsets { text, line_starts }
    }

    /// The byte offset of a location, clamped to the text.
    fn byte(&self, loc: Location) -> usize {
        let line = usize::try_from(loc.line).unwrap_or(usize::MAX).max(1);
        let Some(&start) = self.line_starts.get(line - 1) else {
            return self.text.len();
        };
        let column = usize::try_from(loc.column).unwrap_or(usize::MAX).max(1) - 1;
        let rest = &self.text[start..];
        rest.char_indices()
            .nth(column)
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// The 1-based line of a byte offset.
    fn line_of(&self, byte: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= byte)
    }
}

fn is_trivia(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

fn is_code(token: &Token) -> bool {
    !is_trivia(token) && *token != Token::EOF
}

/// The uppercased text of an unquoted word, for the few keywords that drive block nesting.
fn keyword_of(token: &Token) -> Option<String> {
    match token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// Splits `script` into statements. Never panics; an input the tokenizer rejects (for example an
/// unterminated quote) gives a [`SplitError`] naming the line.
pub fn split_statements(script: &str, dialect: SqlDialect) -> Result<Vec<Statement<'_>>, SplitError> {
    let tokens = tokenize(script, dialect)?;
    let offsets = Offsets::new(script);
    let code: Vec<usize> = (0..tokens.len()).filter(|&i| is_code(&tokens[i].token)).collect();

    let mut statements = Vec::new();
    let mut seg_start = 0usize; // byte offset where the current segment starts
    let mut depth = 0usize;
    let mut awaiting_begin = false; // Snowflake `DECLARE … BEGIN`: the BEGIN does not nest again
    // The previous code token of the current segment (`None` at its start).
    let mut prev: Option<&Token> = None;
    let mut skip_next_code = false;

    for (pos, &ti) in code.iter().enumerate() {
        let token = &tokens[ti].token;
        let next = code.get(pos + 1).map(|&n| &tokens[n].token);
        if skip_next_code {
            skip_next_code = false;
            prev = Some(token);
            continue;
        }
        let next_kw = next.and_then(keyword_of);
        let prev_kw = prev.and_then(keyword_of);
        // BEGIN and DECLARE open a block only where a statement or a body can start, so a column
        // named `begin` does not.
        let at_block_start = matches!(prev, None | Some(Token::SemiColon | Token::Colon))
            || matches!(
                prev_kw.as_deref(),
                Some("AS" | "THEN" | "ELSE" | "DO" | "LOOP" | "REPEAT")
            );
        match keyword_of(token).as_deref() {
            Some("BEGIN") if at_block_start => {
                let transaction = matches!(next, None | Some(Token::SemiColon))
                    || matches!(next_kw.as_deref(), Some("TRANSACTION" | "WORK" | "NAME"));
                if !transaction {
                    if awaiting_begin {
                        awaiting_begin = false;
                    } else {
                        depth += 1;
                    }
                }
            }
            Some("DECLARE") if at_block_start && !awaiting_begin && dialect == SqlDialect::Snowflake => {
                depth += 1;
                awaiting_begin = true;
            }
            Some("CASE") => depth += 1,
            Some("END") => {
                // `END IF`, `END LOOP`, … close constructs that never opened a level;
                // `END CASE` closes a CASE statement, which did.
                match next_kw.as_deref() {
                    Some("IF" | "LOOP" | "WHILE" | "FOR" | "REPEAT") => skip_next_code = true,
                    Some("CASE") => {
                        skip_next_code = true;
                        depth = depth.saturating_sub(1);
                    }
                    _ => depth = depth.saturating_sub(1),
                }
            }
            _ => {}
        }
        prev = Some(token);
        if *token == Token::SemiColon && depth == 0 && !awaiting_begin {
            let end = offsets.byte(tokens[ti].span.start);
            push_segment(&mut statements, script, &offsets, &tokens, seg_start, end);
            seg_start = (end + 1).min(script.len());
            prev = None;
        }
    }
    if depth > 0 || awaiting_begin {
        let line = offsets.line_of(seg_start + leading_ws(&script[seg_start..]));
        return Err(SplitError {
            line,
            message: "a BEGIN … END (or CASE … END) block is not closed; the script cannot be split \
                      into statements"
                .to_owned(),
        });
    }
    push_segment(
        &mut statements,
        script,
        &offsets,
        &tokens,
        seg_start,
        script.len(),
    );
    Ok(statements)
}

fn leading_ws(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

fn push_segment<'a>(
    out: &mut Vec<Statement<'a>>,
    script: &'a str,
    offsets: &Offsets<'_>,
    tokens: &[TokenWithSpan],
    start: usize,
    end: usize,
) {
    let Some(raw) = script.get(start..end) else { return };
    let text = raw.trim();
    if text.is_empty() {
        return;
    }
    let text_start = start + leading_ws(raw);
    let text_end = text_start + text.len();
    // The first code token inside the segment decides whether it is a statement at all.
    let first = tokens.iter().find(|t| {
        is_code(&t.token) && {
            let b = offsets.byte(t.span.start);
            b >= text_start && b < text_end
        }
    });
    let Some(first) = first else { return };
    let keyword = match &first.token {
        Token::Word(w) => w.value.to_uppercase(),
        other => other.to_string(),
    };
    out.push(Statement {
        text,
        line: offsets.line_of(text_start),
        keyword,
    });
}

fn tokenize(script: &str, dialect: SqlDialect) -> Result<Vec<TokenWithSpan>, SplitError> {
    fn run(d: &dyn Dialect, script: &str) -> Result<Vec<TokenWithSpan>, SplitError> {
        Tokenizer::new(d, script)
            .with_unescape(false)
            .tokenize_with_location()
            .map_err(|e| SplitError {
                line: usize::try_from(e.location.line).unwrap_or(0).max(1),
                message: format!("the SQL tokenizer stopped: {}", strip_location(&e.message)),
            })
    }
    match dialect {
        SqlDialect::Databricks => run(&DatabricksDialect {}, script),
        SqlDialect::Snowflake => run(&SnowflakeDialect {}, script),
    }
}

/// Tokenizer messages are short descriptions ("Unterminated string literal"); keep at most the
/// first line and 120 characters so no script text leaks through.
fn strip_location(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    first.chars().take(120).collect()
}

/// The string literals of a statement (`'…'`, `"…"`, `$$…$$`), used to scrub server messages
/// that echo the statement back.
pub(crate) fn string_literals(sql: &str, dialect: SqlDialect) -> Vec<String> {
    let Ok(tokens) = tokenize(sql, dialect) else {
        return Vec::new();
    };
    tokens
        .into_iter()
        .filter_map(|t| match t.token {
            Token::SingleQuotedString(s)
            | Token::DoubleQuotedString(s)
            | Token::TripleSingleQuotedString(s)
            | Token::TripleDoubleQuotedString(s)
            | Token::NationalStringLiteral(s)
            | Token::EscapedStringLiteral(s)
            | Token::UnicodeStringLiteral(s)
            | Token::SingleQuotedRawStringLiteral(s)
            | Token::DoubleQuotedRawStringLiteral(s) => Some(s),
            Token::DollarQuotedString(d) => Some(d.value),
            _ => None,
        })
        .filter(|s| s.len() >= 3)
        .collect()
}

/// Whether the segment is only whitespace and comments.
#[cfg(test)]
fn only_trivia(tokens: &[TokenWithSpan]) -> bool {
    tokens
        .iter()
        .all(|t| is_trivia(&t.token) || t.token == Token::EOF)
}

#[cfg(test)]
mod tests;
