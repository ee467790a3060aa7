//! Records the git commit connctl is built from, for `connctl --version`.
//!
//! `CONNCTL_GIT_COMMIT` in the environment wins (a container or packaging build without `.git`);
//! otherwise `git rev-parse`, with `-dirty` when tracked files differ from that commit, and
//! `unknown` when there is no git or no repository (a source tarball, `cargo install` from a
//! registry copy).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// Whether tracked files differ from HEAD. A status that cannot be read counts as dirty: the
/// version then claims less, never more. `--no-optional-locks`: a build beside another git
/// process must not fail on (or hold) the index lock.
fn dirty() -> bool {
    let out = Command::new("git")
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match out {
        Ok(out) if out.status.success() => !out.stdout.iter().all(u8::is_ascii_whitespace),
        _ => true,
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=CONNCTL_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let from_env = std::env::var("CONNCTL_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = from_env
        .or_else(|| {
            let head = git(&["rev-parse", "--short=12", "HEAD"])?;
            Some(if dirty() { format!("{head}-dirty") } else { head })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    // An edit can make the tree dirty (or clean again) without moving HEAD: watch every
    // tracked top-level file and folder (not `target/`, which each build changes).
    if let (Some(root), Some(names)) = (
        git(&["rev-parse", "--show-toplevel"]),
        git(&["ls-tree", "--name-only", "HEAD"]),
    ) {
        for name in names.lines() {
            println!("cargo:rerun-if-changed={root}/{name}");
        }
    }
    // Build again when HEAD moves: HEAD itself, the branch it points to, and packed refs.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=CONNCTL_GIT_COMMIT={commit}");
}
