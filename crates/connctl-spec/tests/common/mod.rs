//! Helpers shared by the integration tests: paths relative to the repository root, so that
//! rendered diagnostics (and their snapshots) do not depend on where the checkout lives.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Once;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Makes the repository root the working directory, once per test binary, so that paths
/// like `tests/fixtures/…` resolve and render as written.
pub fn at_repo_root() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_current_dir(repo_root()).expect("repository root exists"));
}
