//! The short lines the simple commands end with (`validate`, `export`, `init`, `man`), the
//! output of `render`, and warnings (`warning: …` then `  = help: …`, the layout of errors).

use std::path::Path;

/// `validate`: what was checked.
pub fn validated(connections: usize, files: usize, secrets_resolved: bool) {
    println!(
        "ok: {connections} connection{} in {files} file{} are valid{}",
        if connections == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
        if secrets_resolved {
            ", and every secret reference resolves"
        } else {
            ""
        }
    );
}

/// `export --out FILE`, `man --out DIR`: where the output went.
pub fn wrote(what: &str, path: &Path) {
    println!("Wrote {what}{}", path.display());
}

/// `init`: one line per file written, then what to do next (with `--env` of the first
/// environment written, if any; else a pointer to environments).
pub fn initialised(written: &[std::path::PathBuf], first_environment: Option<&str>) {
    for path in written {
        println!("wrote {}", path.display());
    }
    let env = first_environment
        .map(|e| format!("--env {e} "))
        .unwrap_or_default();
    println!(
        "\nNext:\n  1. edit connections.yaml and connctl.toml\n  2. connctl validate {env}connections.yaml\n  3. connctl plan {env}connections.yaml"
    );
    if first_environment.is_none() {
        println!(
            "\nOne YAML for several tenants (dev, prod): `connctl init --environments dev,prod`, see docs/environments.md"
        );
    }
}

/// `render`: the YAML, under a comment naming the environment (if any).
pub fn rendered(environment: Option<&str>, yaml: &str) {
    if let Some(env) = environment {
        println!("# environment: {env}");
    }
    print!("{yaml}");
}

/// A problem that does not stop the command.
pub fn warning(message: &dyn std::fmt::Display, help: Option<&str>) {
    let mut text = format!("warning: {message}\n");
    if let Some(help) = help {
        text.push_str(&format!("  = help: {help}\n"));
    }
    eprint!("{text}");
}
