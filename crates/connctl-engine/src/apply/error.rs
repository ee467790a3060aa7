//! [`ApplyError`]: why one connection's apply failed.

use std::path::PathBuf;

use connctl_immuta::ApiError;
use connctl_spec::SecretError;

use super::{Purpose, RunError};
use crate::state::StateError;

/// Why one connection's apply failed. The text is what the CLI prints, unchanged from when
/// these were strings; each variant keeps the error it wraps as its source.
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
    #[error(
        "{source}\n  = help: the cleanup script is saved at {}; the next apply checks Immuta and finishes the delete",
        .cleanup.display()
    )]
    Deregister {
        cleanup: PathBuf,
        #[source]
        source: ApiError,
    },
    /// The connection is gone from Immuta but its cleanup script failed.
    #[error(
        "deregistered, but the cleanup script failed: {source}\n  = help: it is saved at {}; the next apply runs it again",
        .cleanup.display()
    )]
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
    /// A followed bulk job ended failed.
    #[error("bulk job {bulk_id} failed")]
    JobFailed { bulk_id: String },
}
