//! [`ApplyError`]: why one connection's apply failed.

use std::path::PathBuf;

use connctl_immuta::ApiError;
use connctl_spec::SecretError;

use super::{Purpose, RunError};
use crate::state::StateError;

/// Why one connection's apply failed. The text is what the CLI prints, unchanged from when
/// these were strings; each variant keeps the error it wraps as its source. The message quotes
/// its source's; [`ApplyError::help`] brings the source's help too, so a renderer asks only
/// this error (not its chain) for both.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Immuta refused a call, or could not be read.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The state could not be written (nothing further is sent to Immuta then).
    #[error(transparent)]
    State(#[from] StateError),
    /// A secret of the connection did not resolve; nothing was sent.
    #[error("{field}: {source}")]
    Secret {
        field: &'static str,
        #[source]
        source: SecretError,
    },
    /// A setup or edit script failed in the warehouse.
    #[error("executing the {purpose} script failed: {source}")]
    Execute {
        purpose: Purpose,
        #[source]
        source: RunError,
    },
    /// The `DELETE` failed or its answer was lost; the cleanup script is saved.
    #[error("{source}")]
    Deregister {
        cleanup: PathBuf,
        #[source]
        source: ApiError,
    },
    /// The connection is gone from Immuta but its cleanup script failed.
    #[error("deregistered, but the cleanup script failed: {source}")]
    Cleanup {
        cleanup: PathBuf,
        #[source]
        source: RunError,
    },
    /// The cleanup script could not be saved, so the `DELETE` was not sent.
    #[error("the cleanup script could not be saved, so nothing was deleted: {source}")]
    SaveScript {
        #[source]
        source: std::io::Error,
    },
    /// The plan names a key the YAML no longer has.
    #[error("`{key}` is not in the YAML")]
    NotInYaml { key: String },
    /// An update needs the integration, and Immuta names none.
    #[error("Immuta reports no integration for `{key}`")]
    NoIntegration { key: String },
    /// Every answer to the registration was lost and a read never found it.
    #[error("registration did not go through after {attempts} attempts")]
    RegistrationGaveUp { attempts: u32 },
    /// A followed bulk job ended without completing: `end` is how (failed, cancelled or
    /// expired).
    #[error("bulk job {bulk_id} did not complete: Immuta says it {end}")]
    JobFailed { bulk_id: String, end: &'static str },
    /// A data object of `objects:` is not in Immuta (not crawled yet, or a typo).
    #[error("data object `{path}` of `{key}` is not in Immuta")]
    ObjectMissing { key: String, path: String },
}

impl ApplyError {
    /// What the user can do about it, one line each: the help of the error it wraps first,
    /// then its own. Kept apart from the message so the CLI renders it (`  = help: …`).
    pub fn help(&self) -> Vec<String> {
        let (source, own) = match self {
            ApplyError::Api(e) => (e.help(), None),
            ApplyError::State(e) => (e.help(), None),
            ApplyError::Deregister { cleanup, source } => (
                source.help(),
                Some(format!(
                    "the cleanup script is saved at {}; the next apply checks Immuta and finishes the delete",
                    cleanup.display()
                )),
            ),
            ApplyError::Cleanup { cleanup, .. } => (
                None,
                Some(format!(
                    "it is saved at {}; the next apply runs it again",
                    cleanup.display()
                )),
            ),
            ApplyError::Secret { .. }
            | ApplyError::Execute { .. }
            | ApplyError::SaveScript { .. }
            | ApplyError::NotInYaml { .. }
            | ApplyError::NoIntegration { .. }
            | ApplyError::RegistrationGaveUp { .. } => (None, None),
            // Immuta accepted the request; the job that carries it out did not do its work, so
            // what it was to change may not have changed.
            ApplyError::JobFailed { bulk_id, .. } => (
                None,
                Some(format!(
                    "Immuta accepted the request but its job did not do the work; GET /jobs?bulkId={bulk_id} (or Immuta's job page) says why. The next plan reads this connection again and shows what is still to do; after a registration, `connctl crawl KEY` looks for the objects its job missed"
                )),
            ),
            ApplyError::ObjectMissing { key, .. } => (
                None,
                Some(format!(
                    "check the path's spelling, or run `connctl crawl {key}` so Immuta finds it"
                )),
            ),
        };
        source.into_iter().chain(own).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> ApiError {
        ApiError::Unreachable {
            method: "DELETE".into(),
            path: "/data/connection/k".into(),
            base: "https://immuta".into(),
            reason: "connection reset".into(),
            sent: true,
        }
    }

    #[test]
    fn the_help_of_the_wrapped_error_comes_first_and_the_message_has_none() {
        let e = ApplyError::Deregister {
            cleanup: PathBuf::from("/s/k.cleanup.sql"),
            source: unreachable(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach Immuta at https://immuta (DELETE /data/connection/k): connection reset"
        );
        assert_eq!(
            e.help(),
            [
                "check the URL (connctl.toml [immuta] url, IMMUTA_URL or --immuta-url) and your network",
                "the cleanup script is saved at /s/k.cleanup.sql; the next apply checks Immuta and finishes the delete",
            ]
        );
        let cleanup = ApplyError::Cleanup {
            cleanup: PathBuf::from("/s/k.cleanup.sql"),
            source: RunError::Failed("no privilege".into()),
        };
        assert_eq!(
            cleanup.to_string(),
            "deregistered, but the cleanup script failed: no privilege"
        );
        assert_eq!(
            cleanup.help(),
            ["it is saved at /s/k.cleanup.sql; the next apply runs it again"]
        );
    }

    #[test]
    fn wrapped_api_state_and_lock_errors_bring_their_help() {
        assert_eq!(
            ApplyError::from(unreachable()).help(),
            [unreachable().help().unwrap()]
        );
        let conflict = StateError::Conflict {
            url: "s3://b/state.json".into(),
        };
        assert_eq!(
            ApplyError::from(conflict).help(),
            ["run `connctl plan` to see where things stand, then apply again"]
        );
        let lost = StateError::from(crate::lock::LockError::Lost {
            path: PathBuf::from("state.lock"),
        });
        assert!(!lost.to_string().contains("help"), "{lost}");
        assert_eq!(
            ApplyError::from(lost).help(),
            [
                "another connctl run may be using the state now; when none is, run `connctl plan` to see where things stand"
            ]
        );
        let help = ApplyError::JobFailed {
            bulk_id: "b".into(),
            end: "failed",
        }
        .help();
        assert!(
            help.len() == 1 && help[0].contains("GET /jobs?bulkId=b"),
            "{help:?}"
        );
    }
}
