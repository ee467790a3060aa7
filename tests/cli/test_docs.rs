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
            if *w != "connctl" {
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
