//! The state file: what connctl last applied, and the journal of every step it took.
//!
//! `.connctl/state.json` is pretty JSON, versioned, with a `serial` that grows on every write
//! and a `lineage` id fixed at creation. It never holds a secret (only salted fingerprints),
//! a script (only its sha256) or an API key. Writes are atomic: a temp file in the same
//! folder, fsync, rename, fsync the folder — so a crash leaves either the old or the new file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fields::FieldMap;

/// The state format this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Journal entries kept per connection; older ones are dropped.
const JOURNAL_LIMIT: usize = 64;

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

/// Everything connctl knows about one connection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionState {
    pub technology: String,
    /// The step reached by the last operation.
    pub step: Step,
    /// Deletion is refused while true, even after the entry leaves the YAML.
    #[serde(default)]
    pub protect: bool,
    /// The spec last applied in full (secrets as fingerprints); `None` before the first
    /// registration completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<FieldMap>,
    /// The operation in flight, if a run stopped part-way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bulk_ids: Vec<BulkRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<ScriptRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Nothing done yet.
    #[default]
    New,
    /// A script was obtained; it has not run.
    Scripted,
    /// The manual executor saved the script; a person must run it.
    AwaitingExecution,
    /// The script ran.
    Executed,
    /// The dry run passed.
    Tested,
    /// Registration was sent; its outcome is being confirmed.
    Registering,
    /// In Immuta, matching `applied`.
    Registered,
    /// Deregistration started: the cleanup script is saved and the DELETE may have been sent.
    Deleting,
    /// Immuta no longer has it; the cleanup script has not run yet.
    Deregistered,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::New => "new",
            Step::Scripted => "scripted",
            Step::AwaitingExecution => "awaiting-execution",
            Step::Executed => "executed",
            Step::Tested => "tested",
            Step::Registering => "registering",
            Step::Registered => "registered",
            Step::Deleting => "deleting",
            Step::Deregistered => "deregistered",
        }
    }
}

/// An operation that has started and not finished.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pending {
    pub operation: PendingOp,
    /// The spec being applied (secrets as fingerprints).
    pub target: FieldMap,
    /// sha256 of the script of this operation, once obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_sha256: Option<String>,
    /// A delete's cleanup script, saved (mode 0600) before the `DELETE`; kept until it ran or
    /// was handed to a person, so neither a lost answer nor a kill can lose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_script: Option<PathBuf>,
}

impl Pending {
    pub fn new(operation: PendingOp, target: FieldMap) -> Pending {
        Pending {
            operation,
            target,
            script_sha256: None,
            cleanup_script: None,
        }
    }
}

/// The kind of operation in flight. The JSON spelling is the one state files have always had.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PendingOp {
    /// script → execute → test → register.
    Create,
    /// In-place changes: connection update, rescript, settings.
    Update,
    /// An edit script; written by versions before `update` covered it, read as an update.
    Rescript,
    /// delete script → `DELETE` → cleanup.
    Delete,
}

impl PendingOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingOp::Create => "create",
            PendingOp::Update => "update",
            PendingOp::Rescript => "rescript",
            PendingOp::Delete => "delete",
        }
    }
}

/// A `bulkId` Immuta returned, with what produced it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkRecord {
    pub bulk_id: String,
    /// `register`, `update`, `settings`, `crawl`.
    pub origin: String,
    pub at: String,
    /// The job state last seen, if followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
}

/// The sha256 of a script executed (never the script: it can hold passwords).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptRecord {
    pub purpose: String,
    pub sha256: String,
    pub at: String,
}

/// One line of the journal: an intent written before a remote call, or its outcome after.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JournalEntry {
    pub at: String,
    pub step: Task,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a journal line is about. The JSON spelling is the one state files have always had.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// `POST /integrations/scripts/create`.
    Script,
    /// Running a script with an executor.
    Execute,
    /// `POST /data/connection/test`.
    Test,
    /// `POST /data/connection`.
    Register,
    /// `PUT /data/connection/{key}`, and an update as a whole.
    Update,
    /// `PUT /data/settings/{key}`.
    Settings,
    /// `POST /integrations/{id}/scripts/edit`.
    EditScript,
    /// `PUT /integrations/{id}`.
    UpdateIntegration,
    /// `POST /integrations/{id}/scripts/delete`, saved before the `DELETE`.
    DeleteScript,
    /// `DELETE /data/object/{key}`.
    Delete,
    /// Running (or handing over) a delete's cleanup script.
    Cleanup,
    /// Following a bulk job.
    Await,
    /// `connctl import`.
    Import,
    /// `connctl state unprotect`.
    Unprotect,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Script => "script",
            Task::Execute => "execute",
            Task::Test => "test",
            Task::Register => "register",
            Task::Update => "update",
            Task::Settings => "settings",
            Task::EditScript => "edit-script",
            Task::UpdateIntegration => "update-integration",
            Task::DeleteScript => "delete-script",
            Task::Delete => "delete",
            Task::Cleanup => "cleanup",
            Task::Await => "await",
            Task::Import => "import",
            Task::Unprotect => "unprotect",
        }
    }

    /// How a progress line names the step. The journal keeps [`Task::as_str`] (old state files
    /// spell it so); progress says `update-connection`, as `update` is already the action's name.
    pub fn label(self) -> &'static str {
        match self {
            Task::Update => "update-connection",
            other => other.as_str(),
        }
    }
}

/// Where a journal line stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Written before the remote call.
    Intent,
    Done,
    Failed,
    /// Saved for a person to run.
    Awaiting,
}

/// Why a state file could not be used. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "state file {path} is corrupt: {reason}\n  = help: restore it from a backup or version control; connctl will not overwrite it"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "state file {path} has version {found}, newer than this connctl understands ({STATE_VERSION})\n  = help: upgrade connctl; the file was left untouched"
    )]
    TooNew { path: PathBuf, found: u64 },
    #[error(
        "cannot write state file {path}: {reason}\n  = help: the file holds the last complete write; fix the cause and run the command again"
    )]
    Write { path: PathBuf, reason: String },
    #[error(
        "state path {path} is not a regular file\n  = help: point --state at a file (or a path where one can be created)"
    )]
    NotAFile { path: PathBuf },
    #[error(
        "state path {path} ends in `.lock`, the name of its own lock file\n  = help: name the state file something else, e.g. state.json"
    )]
    LockCollision { path: PathBuf },
    #[error(
        "state file {path} has serial {serial}, the largest there is; it cannot be written again\n  = help: the file was edited by hand or is damaged; restore it from a backup"
    )]
    SerialExhausted { path: PathBuf, serial: u64 },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error(
        "the state {path} belongs to the Immuta tenant {recorded}, but this run uses {given}\n  = help: point --state (or CONNCTL_STATE, [state] in connctl.toml) at the state of {given}, or --immuta-url (IMMUTA_URL) at {recorded}"
    )]
    OtherTenant {
        path: PathBuf,
        recorded: String,
        given: String,
    },
    #[error(
        "the state {path} belongs to the environment `{recorded}`, but this run is for `{given}`\n  = help: each environment has its own state: set `[environments.{given}.state]` in connctl.toml (or pass --state)"
    )]
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
        "the state at {url} changed since this run read it (another writer, or this run's lock was taken over); stopped before the next Immuta call\n  = help: run `connctl plan` to see where things stand, then apply again"
    )]
    Conflict { url: String },
}

impl ConnectionState {
    pub fn new(technology: &str) -> ConnectionState {
        ConnectionState {
            technology: technology.to_owned(),
            ..ConnectionState::default()
        }
    }

    /// Appends to the journal, keeping the last [`JOURNAL_LIMIT`] entries. The detail (often
    /// a server's or an executor's error) is stored with every secret of the run removed.
    pub fn journal(&mut self, step: Task, phase: Phase, detail: Option<String>) {
        self.journal.push(JournalEntry {
            at: now(),
            step,
            phase,
            detail: detail.map(|d| connctl_spec::redact(&d).into_owned()),
        });
        if self.journal.len() > JOURNAL_LIMIT {
            let excess = self.journal.len() - JOURNAL_LIMIT;
            self.journal.drain(..excess);
        }
    }

    pub fn record_bulk(&mut self, bulk_id: String, origin: &str) {
        if !self.bulk_ids.iter().any(|b| b.bulk_id == bulk_id) {
            self.bulk_ids.push(BulkRecord {
                bulk_id,
                origin: origin.to_owned(),
                at: now(),
                job_state: None,
            });
        }
    }

    pub fn last_bulk(&self) -> Option<&BulkRecord> {
        self.bulk_ids.last()
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

    /// Reads the state at `path`; a missing file is an empty state. A corrupt or newer file
    /// is an error, never replaced.
    pub fn load(path: &Path) -> Result<State, StateError> {
        // A FIFO or device would block the read forever or never end.
        match fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(StateError::NotAFile { path: path.into() }),
            _ => {}
        }
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new()),
            Err(e) => {
                return Err(StateError::Read {
                    path: path.into(),
                    reason: e.to_string(),
                });
            }
        };
        State::parse(&text, path)
    }

    /// Parses a state read from `path` (a file or a URL): corrupt or newer is an error.
    pub fn parse(text: &str, path: &Path) -> Result<State, StateError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| StateError::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let version = value.get("version");
        match version.map(|v| (v, v.as_u64())) {
            Some((_, Some(v))) if v > u64::from(STATE_VERSION) => {
                return Err(StateError::TooNew {
                    path: path.into(),
                    found: v,
                });
            }
            Some((_, Some(_))) => {}
            Some((v, None)) => {
                return Err(StateError::Corrupt {
                    path: path.into(),
                    reason: bad_version(path, text, v),
                });
            }
            None => {
                return Err(StateError::Corrupt {
                    path: path.into(),
                    reason: "no \"version\" field".into(),
                });
            }
        }
        serde_json::from_value(value).map_err(|e| StateError::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Bumps the serial and writes atomically with mode 0600.
    pub fn save(&mut self, path: &Path) -> Result<(), StateError> {
        let bytes = self.next_revision(path)?;
        write_atomic(path, &bytes).map_err(|e| StateError::Write {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Bumps the serial and serialises: the bytes of the next write to `path`.
    pub fn next_revision(&mut self, path: &Path) -> Result<Vec<u8>, StateError> {
        self.serial = next_serial(self.serial, path)?;
        let mut text = serde_json::to_string_pretty(self).map_err(|e| StateError::Write {
            path: path.into(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        Ok(text.into_bytes())
    }
}

/// Why a `version` that is there is not a version (`-1`, `1.5`, `"1"`), at its
/// `file:line:col`: serde_json's error for the field gives the line, the line gives the column.
fn bad_version(path: &Path, text: &str, found: &serde_json::Value) -> String {
    #[derive(Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        version: u64,
    }
    let at = serde_json::from_str::<Probe>(text).err().map(|e| {
        let column = text
            .lines()
            .nth(e.line().saturating_sub(1))
            .and_then(|line| {
                let key = line.find("\"version\"")?;
                let value = line[key + "\"version\"".len()..]
                    .trim_start()
                    .strip_prefix(':')?
                    .trim_start();
                Some(line[..line.len() - value.len()].chars().count() + 1)
            })
            .unwrap_or(e.column());
        format!(" at {}:{}:{column}", path.display(), e.line())
    });
    let found = match found {
        serde_json::Value::Array(_) => "a list".to_owned(),
        serde_json::Value::Object(_) => "an object".to_owned(),
        scalar => scalar.to_string().chars().take(40).collect(),
    };
    format!(
        "\"version\" must be a whole number (this connctl writes {STATE_VERSION}), found {found}{}",
        at.unwrap_or_default()
    )
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

/// The file a state path names: symlinks followed (a write replaces the target, never the
/// link), and a path refused that is not a regular file or that would be its own lock file.
pub fn resolve_path(path: &Path) -> Result<PathBuf, StateError> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(|e| StateError::Read {
                    path: current.clone(),
                    reason: e.to_string(),
                })?;
                current = match current.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(m) if !m.is_file() => return Err(StateError::NotAFile { path: current }),
            _ => {
                if crate::lock::lock_path(&current) == current {
                    return Err(StateError::LockCollision { path: current });
                }
                return Ok(current);
            }
        }
    }
    Err(StateError::Read {
        path: path.into(),
        reason: "too many levels of symbolic links".into(),
    })
}

/// The temporary a write by process `pid` uses beside `path`.
fn temporary(dir: &Path, name: &str, pid: u32) -> PathBuf {
    dir.join(format!(".{name}.{pid}.tmp"))
}

/// Removes temporaries beside `path` left by writers that were killed mid-write. Called by
/// the lock holder only, so no live writer of this state is using one.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    false
}

/// Under a file-size limit (`ulimit -f`) the kernel kills a process whose write crosses it
/// with SIGXFSZ, silently. Handling the signal makes the write fail with EFBIG instead, which
/// is reported like any other write failure. Needs a Tokio runtime.
#[cfg(unix)]
pub fn survive_file_size_limit() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // The handler stays installed after the stream is dropped.
    signal(SignalKind::from_raw(25)).map(drop)
}

#[cfg(not(unix))]
pub fn survive_file_size_limit() -> std::io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix.
/// A failed write removes its temporary; a killed one leaves it for
/// [`remove_stale_temporaries`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = temporary(&dir, &name, std::process::id());
    let written = private_file(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // fsync the folder so the rename itself survives a power cut.
    File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Creates (truncating) a file readable only by its owner.
pub fn private_file(path: &Path) -> std::io::Result<File> {
    private_options().create(true).truncate(true).open(path)
}

/// Creates a new file readable only by its owner; fails if `path` exists.
pub fn private_new_file(path: &Path) -> std::io::Result<File> {
    private_options().create_new(true).open(path)
}

/// Options to write a file that, when created, is readable only by its owner.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
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
    fn roundtrip_bumps_serial_and_keeps_lineage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".connctl/state.json");
        let mut s = State::load(&path).unwrap();
        assert_eq!(s.serial, 0);
        s.connections
            .insert("a".into(), ConnectionState::new("Snowflake"));
        s.save(&path).unwrap();
        let back = State::load(&path).unwrap();
        assert_eq!(back.serial, 1);
        assert_eq!(back.lineage, s.lineage);
        assert_eq!(back.connections.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn newer_and_corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, r#"{"version": 99, "serial": 1}"#).unwrap();
        assert!(matches!(
            State::load(&path),
            Err(StateError::TooNew { found: 99, .. })
        ));
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Corrupt { .. })));
        // A field this build does not know, even deep inside, would be dropped on the next write.
        let mut s = State::new();
        s.connections
            .insert("a".into(), ConnectionState::new("Snowflake"));
        let mut v = serde_json::to_value(&s).unwrap();
        v["connections"]["a"]["futureField"] = serde_json::json!(1);
        fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn a_version_that_is_not_a_whole_number_is_named_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for (version, shown) in [
            ("-1", "-1"),
            ("1.5", "1.5"),
            (r#""1""#, r#""1""#),
            ("[1]", "a list"),
        ] {
            fs::write(
                &path,
                format!("{{\n  \"serial\": 3,\n  \"version\": {version}\n}}\n"),
            )
            .unwrap();
            let err = State::load(&path).unwrap_err().to_string();
            let want = format!(
                "state file {p} is corrupt: \"version\" must be a whole number (this connctl writes 1), found {shown} at {p}:3:14\n",
                p = path.display()
            );
            assert!(err.starts_with(&want), "{version}: {err}");
        }
    }

    #[test]
    fn a_serial_at_its_maximum_is_refused_not_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = State::new();
        s.serial = u64::MAX;
        let err = s.save(&path).unwrap_err();
        assert!(matches!(
            err,
            StateError::SerialExhausted { serial: u64::MAX, .. }
        ));
        assert_eq!(s.serial, u64::MAX);
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn paths_are_resolved_and_non_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real/state.json");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real/state.json", &link).unwrap();
        // A dangling link resolves to where the file will be created.
        assert_eq!(resolve_path(&link).unwrap(), dir.path().join("real/state.json"));
        let mut s = State::new();
        s.save(&resolve_path(&link).unwrap()).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(State::load(&link).unwrap().serial, 1);

        assert!(matches!(
            resolve_path(&dir.path().join("state.lock")),
            Err(StateError::LockCollision { .. })
        ));
        assert!(matches!(
            resolve_path(dir.path()),
            Err(StateError::NotAFile { .. })
        ));
        assert!(matches!(
            State::load(dir.path()),
            Err(StateError::NotAFile { .. })
        ));
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder: the rename fails after the temporary was written.
        let path = dir.path().join("state.json");
        fs::create_dir_all(path.join("x")).unwrap();
        assert!(write_atomic(&path, b"{}").is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("state.json")]);
    }

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
    fn journal_is_bounded() {
        let mut c = ConnectionState::new("Snowflake");
        for i in 0..200 {
            c.journal(Task::Script, Phase::Intent, Some(i.to_string()));
        }
        assert_eq!(c.journal.len(), JOURNAL_LIMIT);
        assert_eq!(c.journal.last().unwrap().detail.as_deref(), Some("199"));
    }
}
