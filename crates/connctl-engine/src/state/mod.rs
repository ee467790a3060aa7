//! The state: what connctl last applied, and the journal of every step it took.
//!
//! `.connctl/state.json` is pretty JSON, versioned, with a `serial` that grows on every write
//! and a `lineage` id fixed at creation. It never holds a secret (only salted fingerprints),
//! a script (only its sha256) or an API key. [`connection`] holds what is known of each
//! connection; [`file`] reads and writes the local file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod connection;
mod file;

pub use connection::{
    BulkRecord, ConnectionState, JournalEntry, ObjectRecord, Pending, PendingOp, Phase, ScriptRecord, Step,
    Task,
};
pub use file::{
    private_file, private_new_file, remove_stale_temporaries, resolve_path, survive_file_size_limit,
    write_atomic,
};

/// The state format this build reads and writes.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// Grows by one on every write.
    pub serial: u64,
    /// Identifies this state's history; a saved plan from another lineage is refused.
    pub lineage: String,
    /// The Immuta tenant (normalised URL) this state was written against; using the state
    /// with another is refused. Absent in states written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The connctl.toml environment (`--env`) this state belongs to; using it from another is
    /// refused. Absent in states written without environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Salt of the secret fingerprints. Not a secret itself; it stops rainbow tables.
    pub salt: String,
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionState>,
}

/// Why a state file could not be used. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("state file {path} has version {found}, newer than this connctl understands ({STATE_VERSION})")]
    TooNew { path: PathBuf, found: u64 },
    #[error("cannot write state file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("state path {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("state path {path} ends in `.lock`, the name of its own lock file")]
    LockCollision { path: PathBuf },
    #[error("state file {path} has serial {serial}, the largest there is; it cannot be written again")]
    SerialExhausted { path: PathBuf, serial: u64 },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("the state {path} belongs to the Immuta tenant {recorded}, but this run uses {given}")]
    OtherTenant {
        path: PathBuf,
        recorded: String,
        given: String,
    },
    #[error("the state {path} belongs to the environment `{recorded}`, but this run is for `{given}`")]
    OtherEnvironment {
        path: PathBuf,
        recorded: String,
        given: String,
    },
    #[error("invalid state location {location}: {reason}")]
    BadLocation { location: String, reason: String },
    #[error("cannot reach the state at {url}: {reason}")]
    Remote { url: String, reason: String },
    #[error(
        "the state at {url} changed since this run read it (another writer, or this run's lock was taken over); stopped before the next Immuta call"
    )]
    Conflict { url: String },
}

impl StateError {
    /// What the user can do about it, apart from the message (the CLI renders it).
    pub fn help(&self) -> Option<String> {
        Some(match self {
            StateError::Corrupt { .. } => {
                "restore it from a backup or version control; connctl will not overwrite it".into()
            }
            StateError::TooNew { .. } => "upgrade connctl; the file was left untouched".into(),
            StateError::Write { .. } => {
                "the file holds the last complete write; fix the cause and run the command again".into()
            }
            StateError::NotAFile { .. } => {
                "point --state at a file (or a path where one can be created)".into()
            }
            StateError::LockCollision { .. } => "name the state file something else, e.g. state.json".into(),
            StateError::SerialExhausted { .. } => {
                "the file was edited by hand or is damaged; restore it from a backup".into()
            }
            // Transparent: the lock error is not a separate link of the chain.
            StateError::Lock(e) => return e.help(),
            StateError::OtherTenant { recorded, given, .. } => format!(
                "point --state (or CONNCTL_STATE, [state] in connctl.toml) at the state of {given}, or --immuta-url (IMMUTA_URL) at {recorded}"
            ),
            StateError::OtherEnvironment { given, .. } => format!(
                "each environment has its own state: set `[environments.{given}.state]` in connctl.toml (or pass --state)"
            ),
            StateError::Conflict { .. } => {
                "run `connctl plan` to see where things stand, then apply again".into()
            }
            StateError::Read { .. } | StateError::BadLocation { .. } | StateError::Remote { .. } => {
                return None;
            }
        })
    }
}

impl State {
    /// A fresh, empty state with a new lineage and salt.
    pub fn new() -> State {
        State {
            version: STATE_VERSION,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            tenant: None,
            environment: None,
            salt: hex::encode(rand::random::<[u8; 16]>()),
            connections: BTreeMap::new(),
        }
    }
}

impl State {
    /// Refuses a state written against another tenant than `immuta_url`; records the tenant
    /// in a state that has none yet (it is written with the next save).
    pub fn claim_tenant(&mut self, immuta_url: &str, path: &Path) -> Result<(), StateError> {
        self.check_tenant(immuta_url, path)?;
        self.tenant = Some(normalise_tenant(immuta_url));
        Ok(())
    }

    /// Refuses a state of another environment; records `environment` in a state that has
    /// none yet (it is written with the next save).
    pub fn claim_environment(&mut self, environment: &str, path: &Path) -> Result<(), StateError> {
        self.check_environment(environment, path)?;
        self.environment = Some(environment.to_owned());
        Ok(())
    }

    /// Refuses a state recorded for another environment than `environment`.
    pub fn check_environment(&self, environment: &str, path: &Path) -> Result<(), StateError> {
        match &self.environment {
            Some(recorded) if recorded != environment => Err(StateError::OtherEnvironment {
                path: path.into(),
                recorded: recorded.clone(),
                given: environment.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a state written against another tenant than `immuta_url`.
    pub fn check_tenant(&self, immuta_url: &str, path: &Path) -> Result<(), StateError> {
        let given = normalise_tenant(immuta_url);
        match &self.tenant {
            Some(recorded) if *recorded != given => Err(StateError::OtherTenant {
                path: path.into(),
                recorded: recorded.clone(),
                given,
            }),
            _ => Ok(()),
        }
    }
}

/// An Immuta URL as a tenant name: scheme and host in lower case, no default port, no
/// credentials, query or trailing slash.
pub fn normalise_tenant(url: &str) -> String {
    let trimmed = url.trim();
    match url::Url::parse(trimmed) {
        Ok(u) if u.has_host() => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}{}",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                u.path().trim_end_matches('/')
            )
        }
        _ => trimmed.trim_end_matches('/').to_lowercase(),
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// The serial after `serial`; at `u64::MAX` an error rather than a wrap to 0, which would make
/// every saved plan look current again.
pub fn next_serial(serial: u64, path: &Path) -> Result<u64, StateError> {
    serial.checked_add(1).ok_or_else(|| StateError::SerialExhausted {
        path: path.into(),
        serial,
    })
}

/// Now, as RFC 3339 UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_normalised_and_another_is_refused() {
        assert_eq!(
            normalise_tenant("HTTPS://Acme.Immuta.com:443/"),
            "https://acme.immuta.com"
        );
        assert_eq!(
            normalise_tenant("http://127.0.0.1:8080/immuta/"),
            "http://127.0.0.1:8080/immuta"
        );
        let mut s = State::new();
        s.claim_tenant("https://acme.immuta.com/", Path::new("x"))
            .unwrap();
        s.check_tenant("https://ACME.immuta.com", Path::new("x")).unwrap();
        let err = s
            .check_tenant("https://dev.immuta.com", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://acme.immuta.com"), "{err}");
        assert!(err.contains("https://dev.immuta.com"), "{err}");
    }

    #[test]
    fn state_errors_keep_their_help_out_of_the_message() {
        let mut s = State::new();
        s.claim_tenant("https://acme.immuta.com", Path::new("x")).unwrap();
        let err = s
            .check_tenant("https://dev.immuta.com", Path::new("x"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the state x belongs to the Immuta tenant https://acme.immuta.com, but this run uses https://dev.immuta.com"
        );
        assert_eq!(
            err.help().as_deref(),
            Some(
                "point --state (or CONNCTL_STATE, [state] in connctl.toml) at the state of https://dev.immuta.com, or --immuta-url (IMMUTA_URL) at https://acme.immuta.com"
            )
        );
        let lock = StateError::from(crate::lock::LockError::OtherId {
            url: "s3://b/s".into(),
            id: "x".into(),
            holder: "h".into(),
        });
        assert_eq!(lock.help().as_deref(), Some("pass the ID shown"));
        let read = StateError::Read {
            path: "x".into(),
            reason: "denied".into(),
        };
        assert_eq!(read.help(), None);
    }
}
