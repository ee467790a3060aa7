//! `validate --resolve-secrets`: proves that every secret reference resolves, reporting the
//! connection and field of each one that does not — never a value.

use crate::diagnostic::{Report, Severity, Sink};
use crate::model::Desired;

/// Resolves every secret reference of every connection; each failure is an error at the
/// connection's origin. The resolved values are dropped at once.
pub fn check_secrets(desired: &Desired) -> Report {
    let mut report = Report::default();
    for conn in &desired.connections {
        for (field, reference) in conn.secret_refs() {
            let Err(err) = reference.resolve() else { continue };
            // The spec file is re-read only to show the origin's line; failing that, no snippet.
            let source = std::fs::read_to_string(&conn.origin.file).unwrap_or_default();
            let sink = Sink::new(&conn.origin.file, &source);
            let mut d = sink.at(Severity::Error, conn.origin.line, conn.origin.column, "key".len());
            d.message = format!("connection `{}`: {field}: {err}", conn.key);
            d.help = Some(match reference {
                crate::SecretRef::Env(name) => format!("export {name} before running connctl"),
                crate::SecretRef::File(_) => {
                    "relative secret files are read from the folder of the spec file".to_owned()
                }
            });
            report.diagnostics.push(d);
        }
    }
    report
}
