//! `--help` of every command, pinned, and docs that name only real flags.

use clap_flags::flags_of;

use crate::support::TestEnv;

mod clap_flags {
    /// Every `--flag` the binary's help mentions, across all commands.
    pub fn flags_of(env: &crate::support::TestEnv) -> std::collections::BTreeSet<String> {
        let mut flags = std::collections::BTreeSet::new();
        for cmd in super::COMMANDS {
            let mut args: Vec<&str> = cmd.split(' ').filter(|s| !s.is_empty()).collect();
            args.push("--help");
            let out = env.run(&args);
            for word in out
                .stdout
                .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
            {
                if let Some(rest) = word.strip_prefix("--") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    if !name.is_empty() {
                        flags.insert(name);
                    }
                }
            }
        }
        flags
    }
}

pub const COMMANDS: &[&str] = &[
    "",
    "init",
    "validate",
    "plan",
    "apply",
    "show",
    "drift",
    "status",
    "import",
    "export",
    "state",
    "state list",
    "state show",
    "state rm",
    "state unprotect",
    "schema",
    "completions",
    "preflight",
];

#[test]
fn help_of_every_command() {
    let env = TestEnv::new();
    for cmd in COMMANDS {
        let mut args: Vec<&str> = cmd.split(' ').filter(|s| !s.is_empty()).collect();
        args.push("--help");
        let out = env.run(&args);
        assert_eq!(out.code, 0, "{cmd}");
        let name = if cmd.is_empty() {
            "connctl".to_owned()
        } else {
            cmd.replace(' ', "_")
        };
        insta::assert_snapshot!(format!("help_{name}"), out.stdout);
    }
}

#[test]
fn completions_for_each_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.run(&["completions", shell]);
        assert_eq!(out.code, 0);
        assert!(out.stdout.contains("connctl"), "{shell}");
    }
}

#[test]
fn docs_name_only_real_flags() {
    let env = TestEnv::new();
    let known = flags_of(&env);
    let docs = crate::support::repo().join("docs");
    let mut checked = 0;
    let mut stack = vec![docs];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Lines that run connctl itself; `cargo … -p connctl --test cli` names the crate.
            for line in text
                .lines()
                .filter(|l| l.contains("connctl ") && !l.contains("-p connctl"))
            {
                let after = &line[line.find("connctl ").unwrap_or(0)..];
                // The command ends at the end of its code span, a `;`, a pipe or a comment.
                let after = &after[..after.find(['`', ';', '|', '#']).unwrap_or(after.len())];
                for word in after.split(|c: char| {
                    c.is_whitespace() || c == '`' || c == '"' || c == '\'' || c == '=' || c == ')' || c == ','
                }) {
                    if let Some(rest) = word.strip_prefix("--") {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                            .collect();
                        if name.is_empty() {
                            continue;
                        }
                        checked += 1;
                        assert!(
                            known.contains(&name),
                            "{} names --{name}, which connctl does not have",
                            path.display()
                        );
                    }
                }
            }
        }
    }
    assert!(checked > 0, "no flags found in docs");
}

#[test]
fn man_pages_come_from_the_same_definitions() {
    let env = TestEnv::new();
    let out = env.run(&["man", "--out", "man"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for page in [
        "connctl.1",
        "connctl-plan.1",
        "connctl-apply.1",
        "connctl-state-rm.1",
    ] {
        let text = std::fs::read_to_string(env.path("man").join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let plan = std::fs::read_to_string(env.path("man/connctl-plan.1")).unwrap();
    assert!(
        plan.contains("detailed\\-exitcode"),
        "the plan page documents its flags"
    );
}

/// Issue 16: `--version` names the version and the git commit it was built from (`unknown`
/// without git, or the `CONNCTL_GIT_COMMIT` given to the build).
#[test]
fn version_names_the_git_commit() {
    let env = TestEnv::new();
    let out = env.run(&["--version"]);
    assert_eq!(out.code, 0);
    let expected_commit = match option_env!("CONNCTL_GIT_COMMIT").filter(|c| !c.is_empty()) {
        Some(given) => given.to_owned(),
        None => std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(crate::support::repo())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned())
            .unwrap_or_else(|| "unknown".into()),
    };
    assert_eq!(
        out.stdout,
        format!(
            "connctl {} (commit {expected_commit})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
