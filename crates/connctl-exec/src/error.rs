//! Errors of the executors.
//!
//! Every message says what failed and what to do about it. None carries a secret or the text of a
//! statement (statements can hold passwords): a failed statement is named by its 1-based number
//! and first keyword, e.g. `statement 4 (GRANT)`, and the server's own message is scrubbed of the
//! statement's string literals and cut short before it is kept.

use std::path::PathBuf;

use connctl_spec::SecretError;

use crate::split::SplitError;

/// Why a script was not executed (or not completely).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The executor's configuration cannot work: an empty command, a non-https URL, a target of
    /// the wrong technology, an unusable private key, …
    #[error("executor configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A credential reference of the executor did not resolve.
    #[error("cannot read the executor's {what}: {source}; make it available and run again")]
    Credential {
        /// Which credential, e.g. "private key".
        what: &'static str,
        /// Why it did not resolve (names the reference, never a value).
        #[source]
        source: SecretError,
    },

    /// The script could not be cut into statements (Databricks runs one statement per call).
    #[error(
        "cannot split the script into statements: {0}; check the script, or run it with the manual or \
         command executor"
    )]
    Split(#[from] SplitError),

    /// The script could not be written for manual execution.
    #[error("cannot write the script to {path}: {reason}; check the folder's permissions")]
    Io {
        /// The file that was being written.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },

    /// The configured command could not be started.
    #[error("cannot start the executor command `{program}`: {reason}; check `command` in connctl.toml")]
    Spawn {
        /// The program (argv\[0\]).
        program: String,
        /// The operating system's reason.
        reason: String,
    },

    /// The configured command ran and failed.
    #[error(
        "the executor command `{program}` failed ({status}); the script may be partly applied: fix the \
         cause and run again{}",
        tail_suffix(stderr_tail)
    )]
    Command {
        /// The program (argv\[0\]).
        program: String,
        /// `exit code N`, `killed by signal N` or `timed out after N s`.
        status: String,
        /// The exit code, when it exited.
        code: Option<i32>,
        /// The last lines (at most 20) of its standard error.
        stderr_tail: String,
    },

    /// A statement was rejected by the warehouse.
    #[error(
        "{warehouse} rejected {}: {code}: {message}; fix the cause (privileges of the executor's user, \
         existing objects) and run again — statements before it have been applied",
        statement_label(*number, keyword.as_deref())
    )]
    Statement {
        /// "Snowflake" or "Databricks".
        warehouse: &'static str,
        /// The 1-based number of the statement in the script, when known.
        number: Option<usize>,
        /// The statement's first keyword, when known.
        keyword: Option<String>,
        /// The server's error code (Snowflake `code`, Databricks `error_code`), or the final state.
        code: String,
        /// The server's message, scrubbed of the statement's literals and shortened.
        message: String,
    },

    /// The warehouse refused the executor's credentials.
    #[error(
        "{warehouse} refused the executor's credentials (HTTP {status}{}): {message}; {hint}",
        code_suffix(code)
    )]
    Auth {
        /// "Snowflake" or "Databricks".
        warehouse: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's error code, if any.
        code: Option<String>,
        /// The server's message, shortened.
        message: String,
        /// What to check.
        hint: &'static str,
    },

    /// A request was answered with an error that is not about one statement.
    #[error("{warehouse}: {what} failed{}{}: {message}; {hint}", status_suffix(*status), code_suffix(code))]
    Api {
        /// "Snowflake" or "Databricks".
        warehouse: &'static str,
        /// Which request, e.g. "submitting the script".
        what: String,
        /// The HTTP status, or `None` when no answer arrived (connection failure, timeout).
        status: Option<u16>,
        /// The server's error code, if any.
        code: Option<String>,
        /// The server's (or the HTTP client's) message, shortened.
        message: String,
        /// What to do.
        hint: &'static str,
    },

    /// A statement or script did not reach a final state in time.
    #[error(
        "{what} did not finish within {secs} s and was cancelled; raise `timeoutSecs` or check the \
         warehouse, then run again"
    )]
    Timeout {
        /// What was waited for, e.g. "statement 3 (GRANT)".
        what: String,
        /// The limit.
        secs: u64,
    },
}

impl ExecError {
    /// The 1-based number of the failed statement, for a statement failure that names one.
    pub fn statement_number(&self) -> Option<usize> {
        match self {
            ExecError::Statement { number, .. } => *number,
            _ => None,
        }
    }

    /// The server's error code for a failed statement or request, if any.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            ExecError::Statement { code, .. } => Some(code),
            ExecError::Auth { code, .. } | ExecError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> ExecError {
        ExecError::Config {
            message: message.into(),
        }
    }
}

/// `statement 4 (GRANT)`, or `a statement` when the number is not known.
pub(crate) fn statement_label(number: Option<usize>, keyword: Option<&str>) -> String {
    match (number, keyword) {
        (Some(n), Some(k)) => format!("statement {n} ({k})"),
        (Some(n), None) => format!("statement {n}"),
        (None, _) => "a statement".to_owned(),
    }
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; its last lines of stderr:\n{tail}")
    }
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default()
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

/// [`crate::http::error_fields`] of the answer with every secret of the run removed first, so
/// that cutting the body short cannot leave part of a secret behind.
pub(crate) fn error_fields(reply: &crate::http::Reply) -> (Option<String>, String) {
    crate::http::error_fields(&crate::http::Reply {
        status: reply.status,
        body: connctl_spec::redact(&reply.body).into_owned(),
    })
}

/// Longest excerpt of an unexpected answer kept in an error, in characters.
const MAX_EXCERPT: usize = 200;

/// A short, safe excerpt of an answer whose body is not what it must be (an HTML page from a
/// proxy, a truncated or non-JSON body): secrets and the statement's literals removed
/// ([`scrub`]), whitespace collapsed, cut to [`MAX_EXCERPT`] characters.
pub(crate) fn excerpt(body: &str, literals: &[String]) -> String {
    let collapsed = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "(an empty body)".to_owned();
    }
    let text = scrub(&collapsed, literals);
    if text.chars().count() > MAX_EXCERPT {
        format!(
            "{} …",
            text.chars().take(MAX_EXCERPT).collect::<String>().trim_end()
        )
    } else {
        text
    }
}

/// Longest server message kept, in characters.
const MAX_MESSAGE: usize = 600;

/// Makes a server message safe to keep: drops an echoed copy of the statement (Databricks parse
/// errors append `== SQL ==` and the statement), removes every secret of the run
/// ([`connctl_spec::redact`]), replaces the statement's string literals with `'***'` and cuts
/// the rest to a few hundred characters.
pub(crate) fn scrub(message: &str, literals: &[String]) -> String {
    let first = message.split("== SQL").next().unwrap_or("").trim_end();
    let mut text = connctl_spec::redact(first).into_owned();
    let mut sorted: Vec<&String> = literals.iter().collect();
    sorted.sort_by_key(|l| std::cmp::Reverse(l.len()));
    for lit in sorted {
        if !lit.is_empty() && text.contains(lit.as_str()) {
            text = text.replace(lit.as_str(), "***");
        }
    }
    if text.chars().count() > MAX_MESSAGE {
        text = text.chars().take(MAX_MESSAGE).collect::<String>() + " …";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_errors_name_number_and_keyword_only() {
        let e = ExecError::Statement {
            warehouse: "Databricks",
            number: Some(4),
            keyword: Some("GRANT".into()),
            code: "PERMISSION_DENIED".into(),
            message: "User does not have MANAGE on Catalog 'main'".into(),
        };
        let text = e.to_string();
        assert!(text.contains("statement 4 (GRANT)"), "{text}");
        assert!(text.contains("PERMISSION_DENIED"), "{text}");
        assert_eq!(e.statement_number(), Some(4));
        assert_eq!(e.server_code(), Some("PERMISSION_DENIED"));
    }

    #[test]
    fn scrub_removes_literals_and_echoed_sql() {
        let lits = vec!["s3cr3t-pass".to_owned()];
        let m = scrub(
            "syntax error near 's3cr3t-pass'\n== SQL ==\nCREATE USER x PASSWORD 's3cr3t-pass'",
            &lits,
        );
        assert!(!m.contains("s3cr3t"), "{m}");
        assert!(!m.contains("CREATE USER"), "{m}");
        assert!(m.starts_with("syntax error near"));
        let long = "x".repeat(5000);
        assert!(scrub(&long, &[]).chars().count() < 700);
    }

    #[test]
    fn command_error_shows_tail() {
        let e = ExecError::Command {
            program: "snowsql".into(),
            status: "exit code 2".into(),
            code: Some(2),
            stderr_tail: "boom".into(),
        };
        let t = e.to_string();
        assert!(t.contains("exit code 2") && t.ends_with("boom"), "{t}");
    }
}
