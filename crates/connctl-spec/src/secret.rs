//! Secret references and resolved secrets.
//!
//! The YAML never holds a secret, only where to find one: `{ env: NAME }` or `{ file: PATH }`.
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
    Env(#[schemars(length(min = 1))] String),
    /// A file holding the value (a trailing newline is dropped, except for PEM keys it is kept).
    File(#[schemars(length(min = 1))] PathBuf),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "environment variable {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
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
}

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
                let text = std::fs::read_to_string(path).map_err(|e| SecretError::FileUnreadable {
                    path: path.clone(),
                    reason: e.kind().to_string(),
                })?;
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
        }
    }

    /// The file name Immuta records as `userFilename` for a key: the base name of the file,
    /// or a fixed name when the key comes from an environment variable.
    pub fn user_filename(&self) -> String {
        match self {
            SecretRef::File(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "private_key.p8".to_owned()),
            SecretRef::Env(_) => "private_key.p8".to_owned(),
        }
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

    #[test]
    fn relative_files_are_anchored_to_the_spec_folder() {
        let r = SecretRef::File("keys/k.p8".into()).anchored(Path::new("/specs"));
        assert_eq!(r, SecretRef::File("/specs/keys/k.p8".into()));
        assert_eq!(r.user_filename(), "k.p8");
        let e = SecretRef::Env("X".into()).anchored(Path::new("/specs"));
        assert_eq!(e, SecretRef::Env("X".into()));
    }
}
