//! Docs and CI recipes: every `docs/ci/*.yml` parses as YAML and calls only real `connctl`
//! subcommands with flags of that subcommand, and a markdown plan of 500 changed connections
//! stays under 65,000 characters and says how it was cut.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::{TestEnv, repo};

/// The CI recipes, sorted.
fn recipes() -> Vec<PathBuf> {
    let dir = repo().join("docs/ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

fn parse_recipe(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// Hosted runners start empty: every recipe takes its state from `CONNCTL_STATE` (a remote
/// URL), needs no self-hosted runner, and no job passes a local `--state` path.
#[test]
fn recipes_use_the_remote_state_on_hosted_runners() {
    for path in recipes() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        let env = &parse_recipe(&path)["env"];
        let vars = &parse_recipe(&path)["variables"];
        let state = env["CONNCTL_STATE"].as_str().or(vars["CONNCTL_STATE"].as_str());
        assert!(
            state.is_some_and(|s| s.contains("vars.CONNCTL_STATE") || s.starts_with("s3://")),
            "{name}: CONNCTL_STATE is not a remote state: {state:?}"
        );
        assert!(!text.contains("self-hosted"), "{name} needs a self-hosted runner");
        let local = text
            .lines()
            .find(|l| l.contains("connctl ") && l.contains("--state "));
        assert!(local.is_none(), "{name} passes a local --state: {local:?}");
    }
}

#[test]
fn recipes_parse_as_yaml() {
    let files = recipes();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "github-plan.yml",
        "github-apply.yml",
        "github-drift.yml",
        "gitlab-ci.yml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "docs/ci/{expected} is missing"
        );
    }
    for path in &files {
        let value = parse_recipe(path);
        assert!(
            value.is_object(),
            "{}: the top level is not a mapping",
            path.display()
        );
    }
}

/// What `--help` says: each subcommand (`plan`, `state list`, …) with its long flags and whether
/// each takes a value; `""` holds the global flags.
#[derive(Debug)]
struct Cli {
    commands: BTreeMap<String, BTreeMap<String, bool>>,
}

/// The long flags of one help text: lines that start with `-` (the option column), up to the
/// description; a flag takes a value when its signature shows `<VALUE>`.
fn flags_in_help(help: &str) -> BTreeMap<String, bool> {
    let mut flags = BTreeMap::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let signature = line.split("  ").next().unwrap_or(line);
        let takes_value = signature.contains('<');
        for word in signature.split([' ', ',']) {
            if let Some(rest) = word.strip_prefix("--") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() {
                    flags.insert(name, takes_value);
                }
            }
        }
    }
    flags
}

/// The subcommands listed under `Commands:` in a help text (without `help`).
fn commands_in_help(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

fn help_of(env: &TestEnv, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let out = env.run(&all);
    assert_eq!(out.code, 0, "connctl {} --help: {}", args.join(" "), out.stderr);
    out.stdout
}

fn cli(env: &TestEnv) -> Cli {
    let top = help_of(env, &[]);
    let mut commands = BTreeMap::new();
    commands.insert(String::new(), flags_in_help(&top));
    for cmd in commands_in_help(&top) {
        let help = help_of(env, &[&cmd]);
        for sub in commands_in_help(&help) {
            let sub_help = help_of(env, &[&cmd, &sub]);
            commands.insert(format!("{cmd} {sub}"), flags_in_help(&sub_help));
        }
        commands.insert(cmd, flags_in_help(&help));
    }
    assert!(
        commands.contains_key("plan") && commands.contains_key("state rm"),
        "{commands:?}"
    );
    Cli { commands }
}

/// The shell text of a recipe: GitHub `run:` steps and GitLab `script:` / `before_script:` /
/// `after_script:` (a string or a list of strings). `with:` blocks are not shell (e.g. the
/// JavaScript of `actions/github-script`), so they are skipped.
fn shell_texts(value: &Value, key: Option<&str>, out: &mut Vec<String>) {
    let is_shell = matches!(key, Some("run" | "script" | "before_script" | "after_script"));
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k != "with" {
                    shell_texts(v, Some(k), out);
                }
            }
        }
        Value::Array(items) if is_shell && items.iter().all(Value::is_string) => {
            out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        Value::Array(items) => {
            for v in items {
                shell_texts(v, key, out);
            }
        }
        Value::String(s) if is_shell => out.push(s.clone()),
        _ => {}
    }
}

/// Every `connctl …` command line in a piece of shell: the words after `connctl` up to the end
/// of the simple command (a pipe, a redirection, `;`, `&&`, `||`). Comment lines are skipped and
/// backslash continuations joined.
fn invocations(shell: &str) -> Vec<Vec<String>> {
    let joined = shell.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            // `cargo build -p connctl` names the package, it does not run connctl.
            if *w != "connctl" || (i > 0 && matches!(words[i - 1], "-p" | "--package" | "--bin")) {
                continue;
            }
            let mut args = Vec::new();
            for word in &words[i + 1..] {
                if matches!(*word, "|" | "||" | "&&" | ";" | ")" | "&")
                    || word.starts_with('>')
                    || word.starts_with("2>")
                    || word.starts_with('<')
                    || word.starts_with('|')
                {
                    break;
                }
                if let Some(last) = word.strip_suffix(';') {
                    args.push(last.to_owned());
                    break;
                }
                args.push((*word).to_owned());
            }
            found.push(args);
        }
    }
    found
}

/// Checks one invocation: global flags before the subcommand, a real subcommand (and
/// `state` sub-subcommand), and each `--flag` after it a flag of that subcommand.
fn check_invocation(cli: &Cli, args: &[String]) -> Result<String, String> {
    let global = &cli.commands[""];
    if args == ["--version"] {
        return Ok("--version".into());
    }
    let mut i = 0;
    // Global flags may come before the subcommand.
    while let Some(word) = args.get(i).filter(|w| w.starts_with('-')) {
        let name = word.trim_start_matches('-').split('=').next().unwrap_or_default();
        match global.get(name) {
            Some(true) if !word.contains('=') => i += 2,
            Some(_) => i += 1,
            None if !word.starts_with("--") => i += 1,
            None => return Err(format!("`{word}` is not a global flag of connctl")),
        }
    }
    let sub = args.get(i).ok_or("`connctl` without a subcommand")?;
    i += 1;
    let mut command = sub.clone();
    if !cli.commands.contains_key(&command) {
        return Err(format!("`connctl {sub}`: no such subcommand"));
    }
    let has_subcommands = cli.commands.keys().any(|k| k.starts_with(&format!("{sub} ")));
    if has_subcommands {
        let next = args
            .get(i)
            .ok_or_else(|| format!("`connctl {sub}` needs a subcommand"))?;
        command = format!("{sub} {next}");
        i += 1;
        if !cli.commands.contains_key(&command) {
            return Err(format!("`connctl {command}`: no such subcommand"));
        }
    }
    let flags = &cli.commands[&command];
    while let Some(word) = args.get(i) {
        i += 1;
        let Some(rest) = word.strip_prefix("--") else {
            continue;
        };
        let name = rest.split('=').next().unwrap_or_default();
        match flags.get(name) {
            Some(true) if !rest.contains('=') => i += 1,
            Some(_) => {}
            None => return Err(format!("`connctl {command}` has no flag `--{name}`")),
        }
    }
    Ok(command)
}

#[test]
fn recipes_call_only_real_subcommands_and_flags() {
    let env = TestEnv::new();
    let cli = cli(&env);

    // The checker itself catches what it is for.
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert!(check_invocation(&cli, &words("plan --detailed-exitcode --out p.json c/")).is_ok());
    assert!(check_invocation(&cli, &words("--color never drift --format markdown")).is_ok());
    assert!(check_invocation(&cli, &words("state rm --state s.json k")).is_ok());
    assert!(check_invocation(&cli, &words("apply --out plan.json c/")).is_err());
    assert!(check_invocation(&cli, &words("plan --no-such-flag c/")).is_err());
    assert!(check_invocation(&cli, &words("frobnicate c/")).is_err());
    assert!(check_invocation(&cli, &words("state frobnicate k")).is_err());
    assert_eq!(
        invocations(
            "set -e\n# connctl nonsense --x\ncode=0\nconnctl plan \\\n  --out p.json c/ > p.md || code=$?\n"
        ),
        vec![words("plan --out p.json c/")]
    );

    let mut seen = BTreeMap::<String, usize>::new();
    for path in recipes() {
        let mut texts = Vec::new();
        shell_texts(&parse_recipe(&path), None, &mut texts);
        let calls: Vec<Vec<String>> = texts.iter().flat_map(|t| invocations(t)).collect();
        assert!(
            !calls.is_empty(),
            "{} calls connctl nowhere in a run:/script:",
            path.display()
        );
        for args in calls {
            match check_invocation(&cli, &args) {
                Ok(command) => *seen.entry(command).or_default() += 1,
                Err(e) => panic!("{}: `connctl {}`: {e}", path.display(), args.join(" ")),
            }
        }
    }
    for command in ["plan", "apply", "drift", "status"] {
        assert!(
            seen.contains_key(command),
            "no recipe runs `connctl {command}`: {seen:?}"
        );
    }
}

/// Must-show 4: a markdown plan of 500 changed connections stays under 65,000 characters and
/// says how it was cut. Planned from the state alone (`--refresh=false`): the state says each
/// connection was registered with other values than the YAML now asks for.
#[test]
fn markdown_plan_of_500_changes_is_cut_under_65000_characters() {
    const N: usize = 500;
    let env = TestEnv::new();
    let mut yaml = String::from("version: 1\nconnections:\n");
    let mut connections = serde_json::Map::new();
    for i in 0..N {
        let key = format!("snowflake-{i:03}");
        let host = format!("acct{i:03}.snowflakecomputing.com");
        let database = format!("IMMUTA_DB_{i:03}");
        let username = format!("IMMUTA_SYSTEM_{i:03}");
        yaml.push_str(&format!(
            "  - key: {key}
    technology: Snowflake
    host: {host}
    warehouse: NEW_WH
    database: {database}
    role: NEW_ROLE
    auth: {{ type: userPassword, username: {username}, password: {{ env: CONNCTL_TEST_SF_PASSWORD }} }}
    audit: {{ enabled: true }}
    settings: {{ isActive: false }}
    options: {{ forceRecursiveCrawl: true }}
"
        ));
        // What was last applied, as field paths (crates/connctl-engine/src/fields.rs): the
        // warehouse, role, audit, isActive and the password differ from the YAML.
        let applied = json!({
            "technology": "Snowflake",
            "protect": false,
            "settings.isActive": true,
            "options.forceRecursiveCrawl": true,
            "host": host,
            "port": 443,
            "warehouse": "OLD_WH",
            "database": database,
            "role": "OLD_ROLE",
            "auth.type": "userPassword",
            "auth.username": username,
            "auth.password": format!("sha256:{}", "0".repeat(64)),
            "audit.enabled": false,
            "workspaces.enabled": false,
            "impersonation.enabled": false,
            "lineage.enabled": false,
        });
        connections.insert(
            key,
            json!({
                "technology": "Snowflake",
                "step": "registered",
                "protect": false,
                "applied": applied,
                "integrationId": (i + 1).to_string(),
            }),
        );
    }
    let state = json!({
        "version": 1,
        "serial": 7,
        "lineage": "docs-test-lineage",
        "salt": "docs-test-salt",
        "connections": connections,
    });
    env.write(
        ".connctl/state.json",
        &serde_json::to_string_pretty(&state).unwrap(),
    );
    env.write("connections.yaml", &yaml);

    let out = env.run(&[
        "plan",
        "--refresh=false",
        "--format",
        "markdown",
        "connections.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let md = &out.stdout;
    let chars = md.chars().count();
    assert!(chars < 65_000, "the markdown plan has {chars} characters");
    // Close to 65,000 characters: checked by its parts rather than snapshotted.
    assert!(md.contains("Cut to stay under 65000 characters"), "{md}");
    assert!(md.contains(&format!("of {N} changes shown")), "{md}");
    // The note's count matches the connections actually shown, and some were.
    let shown: usize = md
        .split("Cut to stay under 65000 characters: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the cut note says how many changes it shows");
    assert!(shown > 0 && shown < N, "{shown} of {N} shown");
    assert_eq!(md.matches("<details>").count(), shown);
    assert!(
        md.contains("| 0 | 500 |"),
        "the summary counts every change: {md}"
    );
    assert!(
        !md.contains("canary-sf-password"),
        "a secret leaked into the plan"
    );

    // The JSON of the same plan has all 500.
    let out = env.run(&["plan", "--refresh=false", "--format", "json", "connections.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan JSON");
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), N);
    assert!(
        changes.iter().all(|c| c["action"] == "update"),
        "{:?}",
        changes[0]
    );
    assert_eq!(plan["refreshed"], false);

    // Planned without the network.
    let log = env.admin("GET", "/_emulator/requests", Value::Null);
    assert_eq!(log.as_array().map(Vec::len), Some(0), "{log}");
}

/// Every workflow-like file of the repository: the CI recipes, the repository's own workflows,
/// the composite action and the pre-commit hooks.
fn workflows() -> Vec<PathBuf> {
    let mut files = recipes();
    let dir = repo().join(".github/workflows");
    let mut own: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    own.sort();
    files.extend(own);
    files.push(repo().join("action.yml"));
    files.push(repo().join(".pre-commit-hooks.yaml"));
    files
}

/// Issue 16: every workflow parses, and every `connctl` it runs (in `run:`/`script:`, or a
/// pre-commit hook's `entry:`) is a real subcommand with real flags.
#[test]
fn every_workflow_parses_and_calls_only_real_flags() {
    let env = TestEnv::new();
    let cli = cli(&env);
    let mut hooks = 0;
    for path in workflows() {
        let value = parse_recipe(&path);
        let mut texts = Vec::new();
        shell_texts(&value, None, &mut texts);
        if let Value::Array(items) = &value {
            for hook in items {
                let entry = hook["entry"].as_str().unwrap_or_default();
                assert!(entry.starts_with("connctl "), "{}: {hook}", path.display());
                texts.push(entry.to_owned());
                hooks += 1;
            }
        }
        for args in texts.iter().flat_map(|t| invocations(t)) {
            if let Err(e) = check_invocation(&cli, &args) {
                panic!("{}: `connctl {}`: {e}", path.display(), args.join(" "));
            }
        }
    }
    assert_eq!(hooks, 1, "the connctl-validate pre-commit hook");
}

/// The GitHub recipes install a released connctl with the repository's own action (not by
/// building it), pass it only inputs it declares, and the action downloads exactly the
/// targets the release workflow builds.
#[test]
fn github_recipes_install_with_the_action_the_release_feeds() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let repository = manifest
        .lines()
        .find_map(|l| l.strip_prefix("repository = \"https://github.com/"))
        .and_then(|r| r.strip_suffix('"'))
        .expect("Cargo.toml names the GitHub repository");
    let action = parse_recipe(&repo().join("action.yml"));
    assert_eq!(action["runs"]["using"], "composite");
    let inputs = action["inputs"].as_object().unwrap();
    for path in recipes()
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("github-"))
    {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("cargo install"),
            "{} builds connctl",
            path.display()
        );
        let recipe = parse_recipe(&path);
        let steps: Vec<&Value> = recipe["jobs"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|job| job["steps"].as_array().unwrap())
            .collect();
        let install: Vec<&&Value> = steps
            .iter()
            .filter(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("{repository}@v")))
            })
            .collect();
        assert_eq!(install.len(), 1, "{}: one install step", path.display());
        if let Some(with) = install[0]["with"].as_object() {
            for key in with.keys() {
                assert!(inputs.contains_key(key), "{}: no input `{key}`", path.display());
            }
        }
    }

    // The action's platform → target table and the release matrix agree.
    let script = action["runs"]["steps"][0]["run"].as_str().unwrap();
    let mut downloaded: Vec<&str> = script
        .split("target=")
        .skip(1)
        .map(|rest| rest.split([' ', ';']).next().unwrap())
        .collect();
    downloaded.sort();
    let release = parse_recipe(&repo().join(".github/workflows/release.yml"));
    let mut built: Vec<&str> = release["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    built.sort();
    assert_eq!(downloaded, built);
    assert!(
        built
            .iter()
            .any(|t| t.contains("linux-musl") && t.starts_with("aarch64"))
    );
    assert!(built.iter().any(|t| t.contains("windows")) && built.iter().any(|t| t.contains("apple")));
    // Checksums are made and attached.
    let text = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    assert!(text.contains("sha256sum") && text.contains("gh release create"));
}

/// hadolint is not available here: check the Dockerfile's structure with a small parser —
/// known instructions only, multi-stage, the final stage copies from an earlier one and runs
/// as a non-root user — and that `.dockerignore` keeps build output and history out.
#[test]
fn dockerfile_is_multi_stage_and_runs_as_non_root() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let known = [
        "FROM",
        "RUN",
        "COPY",
        "ADD",
        "ARG",
        "ENV",
        "WORKDIR",
        "USER",
        "ENTRYPOINT",
        "CMD",
        "LABEL",
        "EXPOSE",
        "VOLUME",
        "HEALTHCHECK",
        "SHELL",
        "STOPSIGNAL",
        "ONBUILD",
    ];
    let mut stages: Vec<Option<String>> = Vec::new();
    let mut user_of_last = None;
    let mut copies_from = Vec::new();
    let mut entrypoint = None;
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        assert!(known.contains(&word), "unknown instruction `{word}` in: {line}");
        if stages.is_empty() {
            assert!(matches!(word, "FROM" | "ARG"), "{line} before the first FROM");
        }
        match word {
            "FROM" => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let name = match parts.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("AS") => Some(name.to_string()),
                    [_] => None,
                    _ => panic!("malformed FROM: {line}"),
                };
                stages.push(name);
                user_of_last = None;
            }
            "USER" => user_of_last = Some(rest.to_owned()),
            "COPY" => {
                if let Some(from) = rest.split_whitespace().find_map(|w| w.strip_prefix("--from=")) {
                    copies_from.push((stages.len(), from.to_owned()));
                }
            }
            "ENTRYPOINT" => entrypoint = Some(rest.to_owned()),
            _ => {}
        }
    }
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    for (stage, from) in &copies_from {
        assert!(
            stages[..stage - 1]
                .iter()
                .any(|s| s.as_deref() == Some(from.as_str())),
            "COPY --from={from} names no earlier stage"
        );
    }
    assert!(
        copies_from.iter().any(|(s, _)| *s == stages.len()),
        "the final stage copies the binary in"
    );
    let user = user_of_last.expect("the final stage sets USER");
    let name = user.split(':').next().unwrap();
    assert!(!matches!(name, "root" | "0"), "runs as root: {user}");
    let entrypoint = entrypoint.expect("an ENTRYPOINT");
    let argv: Vec<String> = serde_json::from_str(&entrypoint).expect("ENTRYPOINT in exec (JSON) form");
    assert!(argv[0].ends_with("connctl"), "{argv:?}");

    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for needed in ["target/", ".git/", ".connctl/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == needed),
            ".dockerignore lacks {needed}"
        );
    }
}

/// Issue 16: the pull-request plan recipes read from Immuta only what the change touches
/// (`--refresh=changed`); apply and drift still read everything they need.
#[test]
fn pull_request_plan_recipes_refresh_only_what_changed() {
    let mut plans = 0;
    for path in recipes() {
        let mut texts = Vec::new();
        shell_texts(&parse_recipe(&path), None, &mut texts);
        for args in texts.iter().flat_map(|t| invocations(t)) {
            let refresh = args.iter().find(|a| a.starts_with("--refresh"));
            if args.first().map(String::as_str) == Some("plan") {
                plans += 1;
                assert_eq!(
                    refresh.map(String::as_str),
                    Some("--refresh=changed"),
                    "{}: `connctl {}`",
                    path.display(),
                    args.join(" ")
                );
            } else {
                assert!(
                    refresh.is_none(),
                    "{}: `connctl {}`",
                    path.display(),
                    args.join(" ")
                );
            }
        }
    }
    assert_eq!(
        plans, 3,
        "the GitHub and GitLab plan recipes, and the per-environment one"
    );
}

/// Issue 16: the GitLab recipe runs in connctl's container image (the version of Cargo.toml,
/// published by the release workflow from the Dockerfile) instead of building connctl, and
/// that image has the tools the recipe's scripts call.
#[test]
fn gitlab_recipe_runs_in_the_released_container_image() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml has a version");
    let path = repo().join("docs/ci/gitlab-ci.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("cargo "), "the GitLab recipe builds connctl");
    let recipe = parse_recipe(&path);
    let image = &recipe[".connctl"]["image"];
    assert_eq!(image["name"], format!("ghcr.io/connctl/connctl:{version}"));
    // The image's entrypoint is connctl; GitLab runs the job's shell instead.
    assert_eq!(image["entrypoint"], json!([""]));
    for job in ["plan", "apply", "drift"] {
        assert_eq!(recipe[job]["extends"], ".connctl", "{job}");
    }

    // The release workflow pushes that image, built from the Dockerfile, on a tag.
    let release = parse_recipe(&repo().join(".github/workflows/release.yml"));
    let steps = release["jobs"]["image"]["steps"]
        .as_array()
        .expect("an image job");
    let push = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .expect("a build-push step");
    assert_eq!(push["with"]["push"], true);
    let tags = steps.iter().filter_map(|s| s["run"].as_str()).collect::<String>();
    assert!(
        tags.contains("ghcr.io/${GITHUB_REPOSITORY,,}") && tags.contains("${GITHUB_REF_NAME#v}"),
        "{tags}"
    );

    // The final stage installs what the recipe's scripts call besides connctl.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let runtime = dockerfile.rsplit("\nFROM ").next().unwrap();
    for tool in ["curl", "jq"] {
        assert!(
            text.contains(&format!("{tool} ")),
            "the recipe no longer uses {tool}"
        );
        assert!(
            runtime
                .lines()
                .any(|l| l.contains("apk add") && l.split_whitespace().any(|w| w == tool)),
            "the image lacks {tool}"
        );
    }
}
