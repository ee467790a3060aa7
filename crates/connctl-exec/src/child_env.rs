//! The environment of a `command` executor's program: an explicit allow-list, never connctl's
//! whole environment.
//!
//! connctl's own environment holds the Immuta API key and the secrets of every connection, under
//! names nobody can predict (`MY_KEY`, `OTHER_PW`), so removing known names cannot work. The
//! program gets only the variables that tools need to run at all — [`DEFAULT_ALLOWED`] — plus
//! the names the executor's `env` setting lists, and even of those none whose value holds a
//! secret connctl resolved in this run ([`connctl_spec::redact::contains_secret`]).

use std::ffi::OsString;

/// Passed by default: where programs are (`PATH`); whose they are and where their settings live
/// (`HOME`, `USER`, `LOGNAME`, `SHELL` — SnowSQL and the Databricks CLI read `~/.snowsql`,
/// `~/.databrickscfg`); how text is encoded and times shown (`LANG`, `LANGUAGE`, `LC_*`, `TZ`);
/// where temporary files go (`TMPDIR`). None of them holds a credential.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR",
];

/// Whether `name` is matched by `pattern`: an exact name, or a prefix ending in `*`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Checks an `env` entry: a variable name, or a prefix followed by `*`.
pub(crate) fn check_pattern(pattern: &str) -> Result<(), String> {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "executor `command`: `env` entry {pattern:?} is not a variable name (letters, digits and `_`, optionally ending in `*` for a prefix)"
        ))
    }
}

/// The variables of `from` the program may see: allowed by name (the defaults or `extra`) and
/// holding no secret of the run.
pub(crate) fn allowed(
    from: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[String],
) -> Vec<(OsString, OsString)> {
    from.into_iter()
        .filter(|(name, value)| {
            let Some(name) = name.to_str() else { return false };
            let listed = DEFAULT_ALLOWED
                .iter()
                .copied()
                .chain(extra.iter().map(String::as_str))
                .any(|p| matches(p, name));
            if !listed {
                return false;
            }
            let secret = connctl_spec::redact::contains_secret(&value.to_string_lossy());
            if secret {
                tracing::debug!(
                    variable = name,
                    "not passed to the executor command: it holds a secret"
                );
            }
            !secret
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    fn names(v: &[(OsString, OsString)]) -> Vec<String> {
        v.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn only_listed_variables_without_secrets_pass() {
        connctl_spec::Secret::new("child-env-api-key-0b1");
        let env = vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LC_ALL", "C.UTF-8"),
            ("MY_KEY", "child-env-api-key-0b1"),
            ("OTHER_PW", "whatever"),
            ("SNOWSQL_PWD", "admin-pw"),
            ("SNOWSQL_ACCOUNT", "acme"),
            ("IMMUTA_API_KEY", "x"),
            // Listed, but its value holds a secret of the run.
            ("HTTPS_PROXY", "http://u:child-env-api-key-0b1@proxy:3128"),
        ]);
        let got = names(&allowed(env, &["SNOWSQL_*".into(), "HTTPS_PROXY".into()]));
        assert_eq!(got, ["PATH", "HOME", "LC_ALL", "SNOWSQL_PWD", "SNOWSQL_ACCOUNT"]);
    }

    #[test]
    fn patterns_are_names_or_prefixes() {
        assert!(check_pattern("SNOWSQL_PWD").is_ok());
        assert!(check_pattern("SNOWSQL_*").is_ok());
        for bad in ["", "*", "A B", "1X", "A*B", "A=B"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
