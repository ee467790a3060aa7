//! Secret references and resolved secrets.
//!
//! The YAML never holds a secret, only where to find one: `{ env: NAME }`, `{ file: PATH }` or
//! `{ secret: "provider:path#field" }` ([`crate::provider`]).
//! A resolved [`Secret`] cannot be printed, debugged or serialised by accident: its `Debug`
//! shows `(sensitive)`, it has no `Display` and no `Serialize`, and the only way to the value is
//! the explicit [`Secret::expose`]. Making one registers its value for [`crate::redact`].

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a secret lives. Relative file paths are taken from the spec file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretRef {
    /// The name of an environment variable holding the value.
    Env(#[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))] String),
    /// A file holding the value (a trailing newline is dropped, except for PEM keys it is kept).
    File(#[schemars(length(min = 1))] PathBuf),
    /// `<provider>:<path>#<field>`, resolved by a provider declared in connctl.toml
    /// (`[secrets.<provider>]`).
    Secret(#[schemars(regex(pattern = r"^[A-Za-z0-9_-]+:.+$"))] String),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "environment variable {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
            SecretRef::Secret(reference) => write!(f, "secret {reference}"),
        }
    }
}

/// Why a secret reference did not resolve. Names the reference, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("cannot read secret file {path}: {reason}")]
    FileUnreadable { path: PathBuf, reason: String },
    #[error("secret file {0} is empty")]
    FileEmpty(PathBuf),
    #[error(
        "secret file {path} is {kind}, not a regular file; connctl reads secrets only from regular files"
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("secret file {path} is larger than {} KiB, the most connctl reads for a secret", MAX_SECRET_FILE_BYTES / 1024)]
    FileTooLarge { path: PathBuf },
    #[error("secret {reference}: {reason}")]
    Provider { reference: String, reason: String },
}

/// Largest secret file read, in bytes. A password, a token or a PEM key is a few KiB at most;
/// the cap keeps a wrong path (a log, a disk image) from being read whole and sent.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

impl SecretRef {
    /// Makes a relative file reference absolute against `base` (the spec file's folder).
    pub fn anchored(self, base: &Path) -> SecretRef {
        match self {
            SecretRef::File(p) if p.is_relative() => SecretRef::File(base.join(p)),
            other => other,
        }
    }

    /// Reads the value. Trailing line breaks of a file are dropped (editors add them), but a
    /// PEM block keeps its final newline so the key stays byte-identical to the file.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if v.is_empty() => Err(SecretError::EnvEmpty(name.clone())),
                Ok(v) => Ok(Secret::new(v)),
                Err(_) => Err(SecretError::EnvMissing(name.clone())),
            },
            SecretRef::File(path) => {
                let text = read_secret_file(path)?;
                let value = if text.contains("-----BEGIN") {
                    text
                } else {
                    text.trim_end_matches(['\r', '\n']).to_owned()
                };
                if value.trim().is_empty() {
                    return Err(SecretError::FileEmpty(path.clone()));
                }
                Ok(Secret::new(value))
            }
            SecretRef::Secret(reference) => crate::provider::resolve(reference),
        }
    }

    /// Whether the value comes from a provider program (resolved lazily, once per run).
    pub fn is_provider(&self) -> bool {
        matches!(self, SecretRef::Secret(_))
    }

    /// The file name Immuta records as `userFilename` for a key: the base name of the file,
    /// or a fixed name when the key comes from an environment variable.
    pub fn user_filename(&self) -> String {
        match self {
            SecretRef::File(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "private_key.p8".to_owned()),
            SecretRef::Env(_) | SecretRef::Secret(_) => "private_key.p8".to_owned(),
        }
    }
}

/// Reads a secret file: a regular file (a FIFO would block for ever, a device such as
/// `/dev/zero` never ends) of at most [`MAX_SECRET_FILE_BYTES`].
fn read_secret_file(path: &Path) -> Result<String, SecretError> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| SecretError::FileUnreadable {
        path: path.to_path_buf(),
        reason: e.kind().to_string(),
    };
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    let kind = std::fs::metadata(path).map_err(unreadable)?.file_type();
    if !kind.is_file() {
        return Err(SecretError::NotAFile {
            path: path.to_path_buf(),
            kind: file_kind(kind),
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::FileTooLarge {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| unreadable(std::io::ErrorKind::InvalidData.into()))
}

/// What a file that is not a regular file is, for the message.
fn file_kind(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// A resolved secret value. Deliberately neither `Display` nor `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value obtained elsewhere (an executor's token, an API key). Every secret is
    /// registered for [`crate::redact`], so no text that leaves the process can carry it.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        crate::redact::register(&value);
        Secret(value)
    }

    /// The value itself. Call only where it leaves for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Salted SHA-256 fingerprint (`sha256:<hex>`), stable for a given salt, so the state can
    /// tell a rotated secret from an unchanged one without holding either.
    pub fn fingerprint(&self, salt: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(salt.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.0.as_bytes());
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "(sensitive)");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn fingerprint_depends_on_salt_and_value() {
        let a = Secret::new("a");
        assert_eq!(a.fingerprint("s1"), a.fingerprint("s1"));
        assert_ne!(a.fingerprint("s1"), a.fingerprint("s2"));
        assert_ne!(a.fingerprint("s1"), Secret::new("b").fingerprint("s1"));
        assert!(a.fingerprint("s1").starts_with("sha256:"));
    }

    /// Resolves on another thread, so that a reference that blocks fails the test, not hangs it.
    fn resolve_within_5s(reference: SecretRef) -> Result<Secret, SecretError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(reference.resolve()));
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("resolve blocked for 5 s")
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("secret.fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let err = resolve_within_5s(SecretRef::File(fifo.clone())).expect_err("a FIFO");
        assert_eq!(
            err.to_string(),
            format!(
                "secret file {} is a FIFO (named pipe), not a regular file; connctl reads secrets only from regular files",
                fifo.display()
            )
        );
        let err = resolve_within_5s(SecretRef::File("/dev/zero".into())).expect_err("a device");
        assert_eq!(
            err,
            SecretError::NotAFile {
                path: "/dev/zero".into(),
                kind: "a device"
            }
        );
        let err = resolve_within_5s(SecretRef::File(dir.path().into())).expect_err("a directory");
        assert!(
            err.to_string().contains("is a directory, not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_file_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cap = usize::try_from(MAX_SECRET_FILE_BYTES).expect("fits");
        let at_cap = dir.path().join("at-cap");
        std::fs::write(&at_cap, "k".repeat(cap)).expect("write");
        assert_eq!(
            SecretRef::File(at_cap)
                .resolve()
                .expect("at the cap")
                .expose()
                .len(),
            cap
        );
        let over = dir.path().join("over");
        std::fs::write(&over, "k".repeat(cap + 1)).expect("write");
        let err = SecretRef::File(over.clone()).resolve().expect_err("over the cap");
        assert_eq!(
            err.to_string(),
            format!(
                "secret file {} is larger than 64 KiB, the most connctl reads for a secret",
                over.display()
            )
        );
    }

    #[test]
    fn relative_files_are_anchored_to_the_spec_folder() {
        let r = SecretRef::File("keys/k.p8".into()).anchored(Path::new("/specs"));
        assert_eq!(r, SecretRef::File("/specs/keys/k.p8".into()));
        assert_eq!(r.user_filename(), "k.p8");
        let e = SecretRef::Env("X".into()).anchored(Path::new("/specs"));
        assert_eq!(e, SecretRef::Env("X".into()));
    }
}
