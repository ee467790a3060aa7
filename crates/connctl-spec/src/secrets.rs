//! `validate --resolve-secrets`: proves that every secret reference resolves, reporting the
//! connection and field of each one that does not — never a value — and warning about values
//! too short to be redacted from output ([`crate::redact::MIN_SECRET_LEN`]).

use crate::diagnostic::{Report, Severity, Sink};
use crate::model::Desired;
use crate::redact::MIN_SECRET_LEN;

/// Resolves every secret reference of every connection; each failure is an error at the
/// connection's origin, each value shorter than [`MIN_SECRET_LEN`] a warning. The resolved
/// values are dropped at once.
pub fn check_secrets(desired: &Desired) -> Report {
    let mut report = Report::default();
    for conn in &desired.connections {
        for (field, reference) in conn.secret_refs() {
            let (severity, message, help) = match reference.resolve() {
                Ok(secret) if secret.expose().chars().count() >= MIN_SECRET_LEN => continue,
                Ok(_) => (
                    Severity::Warning,
                    format!(
                        "connection `{}`: {field}: the value is shorter than {MIN_SECRET_LEN} characters, \
                         so connctl cannot remove it from error messages and logs",
                        conn.key
                    ),
                    "use a longer secret".to_owned(),
                ),
                Err(err) => (
                    Severity::Error,
                    format!("connection `{}`: {field}: {err}", conn.key),
                    match reference {
                        crate::SecretRef::Env(name) => format!("export {name} before running connctl"),
                        crate::SecretRef::File(_) => {
                            "relative secret files are read from the folder of the spec file".to_owned()
                        }
                        crate::SecretRef::Secret(_) => {
                            "check the provider in connctl.toml ([secrets.NAME]) and that its program is logged in".to_owned()
                        }
                    },
                ),
            };
            // The spec file is re-read only to show the origin's line; failing that, no snippet.
            let source = std::fs::read_to_string(&conn.origin.file).unwrap_or_default();
            let sink = Sink::new(&conn.origin.file, &source);
            let mut d = sink.at(severity, conn.origin.line, conn.origin.column, "key".len());
            d.message = message;
            d.help = Some(help);
            report.diagnostics.push(d);
        }
    }
    report
}
