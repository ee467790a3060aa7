//! Secret providers (`{ secret: "provider:path#field" }`, `[secrets.NAME]` in connctl.toml)
//! through fake `vault`, `gcloud`, `az`, `op` and a `command` provider on `PATH`, each of
//! which checks its arguments and that `IMMUTA_*` / `CONNCTL_*` were removed from its
//! environment; and `plan --no-secrets`. Canary values must never appear in any output, the
//! state, a saved plan or a script.

use crate::support::TestEnv;

const PROVIDERS: &str = r#"
[secrets.vault]
preset = "vault"

[secrets.gcp]
preset = "gcp"
project = "acme"

[secrets.azure]
preset = "azure"
vault = "acme-kv"

[secrets.op]
preset = "1password"

[secrets.cmd]
command = ["fetch-secret", "--path", "{path}", "--field={field}"]

[secrets.slow]
command = ["slow-secret"]
timeout_secs = 1
"#;

/// (program, the arguments it accepts, the value it prints)
const FAKES: &[(&str, &str, &str)] = &[
    (
        "vault",
        "kv get -field=password kv/immuta/dev",
        "canary-vault-value-9f1",
    ),
    (
        "gcloud",
        "secrets versions access latest --secret=sf-password --project=acme",
        "canary-gcp-value-9f2",
    ),
    (
        "az",
        "keyvault secret show --vault-name acme-kv --name sf-password --query value -o tsv",
        "canary-azure-value-9f3",
    ),
    ("op", "read op://Infra/Snowflake/password", "canary-op-value-9f4"),
    (
        "fetch-secret",
        "--path team/sf --field=pw",
        "canary-cmd-value-9f5",
    ),
];

fn connection(key: &str, host: &str, reference: &str) -> String {
    format!(
        "  - key: {key}\n    technology: Snowflake\n    host: {host}.snowflakecomputing.com\n    warehouse: WH\n    database: DB_{host}\n    role: R\n    auth:\n      type: userPassword\n      username: SVC\n      password: {{ secret: \"{reference}\" }}\n"
    )
}

fn env() -> TestEnv {
    let mut env = TestEnv::new();
    env.write_settings(PROVIDERS);
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = env.path("calls.log");
    for (program, args, value) in FAKES {
        let script = format!(
            "#!/bin/sh\necho \"{program} $*\" >> '{log}'\n\
             if [ -n \"$IMMUTA_PROBE$CONNCTL_PROBE\" ]; then echo 'environment not scrubbed' >&2; exit 3; fi\n\
             if [ \"$*\" != '{args}' ]; then echo \"unexpected arguments: $* canary-stderr-{program}-77\" >&2; exit 2; fi\n\
             printf '%s\\n' '{value}'\n",
            log = log.display()
        );
        write_exe(&bin.join(program), &script);
    }
    write_exe(
        &bin.join("slow-secret"),
        "#!/bin/sh\nsleep 5\necho canary-slow-value-9f6\n",
    );
    env.set_env(
        "PATH",
        &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
    );
    env.set_env("IMMUTA_PROBE", "must-not-reach-providers");
    env.set_env("CONNCTL_PROBE", "must-not-reach-providers");
    let mut yaml = String::from("version: 1\nconnections:\n");
    yaml += &connection("sf-vault", "acme-vault", "vault:kv/immuta/dev#password");
    yaml += &connection("sf-vault-2", "acme-vault-2", "vault:kv/immuta/dev#password");
    yaml += &connection("sf-gcp", "acme-gcp", "gcp:sf-password");
    yaml += &connection("sf-azure", "acme-azure", "azure:sf-password");
    yaml += &connection("sf-op", "acme-op", "op:Infra/Snowflake#password");
    yaml += &connection("sf-cmd", "acme-cmd", "cmd:team/sf#pw");
    env.write("connections/all.yaml", &yaml);
    env
}

fn write_exe(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn calls(env: &TestEnv) -> Vec<String> {
    std::fs::read_to_string(env.path("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every file the run left (the fake programs aside), as text.
fn every_file(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.ends_with("bin") {
            continue;
        }
        if path.is_dir() {
            every_file(&path, out);
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            out.push((path.display().to_string(), text));
        }
    }
}

fn assert_no_canary(env: &TestEnv, outputs: &[&str]) {
    let mut files = Vec::new();
    every_file(env.dir.path(), &mut files);
    let files: Vec<(String, String)> = files
        .into_iter()
        .filter(|(p, _)| !p.ends_with("calls.log"))
        .collect();
    for (_, _, value) in FAKES {
        for text in outputs {
            assert!(!text.contains(value), "{value} leaked into output:\n{text}");
        }
        for (path, text) in &files {
            assert!(!text.contains(value), "{value} leaked into {path}");
        }
    }
    for text in outputs {
        assert!(
            !text.contains("canary-stderr"),
            "a provider's stderr was shown:\n{text}"
        );
    }
}

#[test]
fn every_preset_resolves_once_and_no_value_reaches_output_state_plan_or_scripts() {
    let env = env();
    let plan = env.run(&["plan", "connections", "-vvv", "--out", "plan.json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let mut seen = calls(&env);
    seen.sort();
    // One call per reference, although two connections share the Vault one.
    assert_eq!(
        seen,
        [
            "az keyvault secret show --vault-name acme-kv --name sf-password --query value -o tsv",
            "fetch-secret --path team/sf --field=pw",
            "gcloud secrets versions access latest --secret=sf-password --project=acme",
            "op read op://Infra/Snowflake/password",
            "vault kv get -field=password kv/immuta/dev",
        ]
    );
    let apply = env.run(&[
        "apply",
        "connections",
        "-vvv",
        "--log-format",
        "json",
        "--auto-approve",
        "--wait",
    ]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(env.count_requests("POST", "/data/connection"), 6);
    let again = env.run(&["plan", "connections", "--detailed-exitcode"]);
    assert_eq!(
        again.code, 0,
        "a provider secret gave a phantom diff:\n{}",
        again.stdout
    );
    assert_no_canary(
        &env,
        &[
            &plan.stdout,
            &plan.stderr,
            &apply.stdout,
            &apply.stderr,
            &again.stdout,
        ],
    );
}

#[test]
fn only_the_targeted_connections_secrets_are_resolved() {
    let env = env();
    let out = env.run(&["plan", "connections", "--target", "sf-op"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(calls(&env), ["op read op://Infra/Snowflake/password"]);
}

#[test]
fn a_failing_or_slow_provider_names_the_reference_never_its_output() {
    let env = env();
    let yaml = std::fs::read_to_string(env.path("connections/all.yaml")).unwrap();
    env.write(
        "connections/all.yaml",
        &yaml.replace("vault:kv/immuta/dev#password", "vault:kv/immuta/other#password"),
    );
    let out = env.run(&["plan", "connections", "--target", "sf-vault"]);
    assert_eq!(out.code, 0, "a plan with unknown secrets: {}", out.stderr);
    insta::assert_snapshot!(env.normalize(&out.stderr), @"
    warning: a secret reference did not resolve (check it with `connctl validate --resolve-secrets`, or plan with --no-secrets): connection `sf-vault`: auth.password: secret vault:kv/immuta/other#password: `vault` failed (exit status: 2); its error output is not shown, since it may hold a value
      = help: planning without connection secrets: fields that depend on one show as (sensitive, unknown), and this plan cannot be applied
    ");
    assert!(
        out.stdout.contains("auth.password: (sensitive)"),
        "{}",
        out.stdout
    );
    assert_no_canary(&env, &[&out.stdout, &out.stderr]);

    env.write(
        "connections/all.yaml",
        &connection("sf-slow", "acme-slow", "slow:x").replace("  - key", "version: 1\nconnections:\n  - key"),
    );
    let started = std::time::Instant::now();
    let out = env.run(&["validate", "connections", "--resolve-secrets"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the timeout was not applied"
    );
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(env.normalize(&out.stderr), @"
    error: connection `sf-slow`: auth.password: secret slow:x: `slow-secret` did not finish within 1 s
     --> connections/all.yaml:3:5
      |
    3 |   - key: sf-slow
      |     ^^^
      = help: check the provider in connctl.toml ([secrets.NAME]) and that its program is logged in
    ");
}

#[test]
fn a_plan_without_secrets_shows_them_unknown_and_cannot_be_applied() {
    let env = env();
    let apply = env.run(&["apply", "connections", "--auto-approve", "--wait"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let before = calls(&env).len();
    let plan = env.run(&[
        "plan",
        "connections",
        "--no-secrets",
        "--target",
        "sf-gcp",
        "--out",
        "plan.json",
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(calls(&env).len(), before, "--no-secrets ran a provider");
    insta::assert_snapshot!(env.normalize(&plan.stdout), @"
    connctl will take these actions (- Immuta now, + desired):

      ~ update   sf-gcp (Snowflake)  [update connection]
          -   auth.password: (sensitive)  (config)
          +   auth.password: (sensitive, unknown)  (config)

    Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 drifted.
    Immuta: [URL]
    Saved the plan to plan.json; apply exactly it with `connctl apply plan.json`.
    ");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("plan.json")).unwrap()).unwrap();
    assert_eq!(saved["state"]["secrets_unknown"], true, "{saved}");
    let out = env.run(&["apply", "plan.json"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(env.normalize(&out.stderr), @"
    error: this plan was made without connection secrets (--no-secrets, or a secret that did not resolve), so it cannot be applied
      = help: plan again where the secrets resolve: `connctl plan --out plan.json`
    ");
    let fresh = env.run(&[
        "apply",
        "connections",
        "--no-secrets",
        "--auto-approve",
        "--target",
        "sf-gcp",
    ]);
    assert_eq!(fresh.code, 1, "{}", fresh.stdout);
    assert!(
        fresh
            .stderr
            .contains("refusing to apply a plan whose connection secrets are unknown"),
        "{}",
        fresh.stderr
    );
    assert_eq!(env.count_requests("PUT", "/data/connection/sf-gcp"), 0);
}

/// The real tools of `make test-deps`: sops (decrypting a file encrypted to an age key) and the
/// aws CLI against moto's Secrets Manager on 127.0.0.1.
#[test]
fn the_sops_and_aws_presets_work_with_the_real_tools() {
    let tools = crate::support::repo().join("target/test-tools/venv/bin");
    assert!(
        tools.join("sops").exists() && tools.join("aws").exists(),
        "run `make test-deps`"
    );
    let moto = crate::servers::moto();
    let mut env = TestEnv::new();
    env.write_settings(&format!(
        "\n[secrets.aws]\npreset = \"aws\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[secrets.sops]\npreset = \"sops\"\n",
        moto.endpoint()
    ));
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let aws_env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("SOPS_DISABLE_VERSION_CHECK", "1"),
    ];
    let run = |program: &str, args: &[&str]| {
        let out = std::process::Command::new(program)
            .args(args)
            .current_dir(env.dir.path())
            .env("PATH", &path)
            .envs(aws_env)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(
        "aws",
        &[
            "secretsmanager",
            "create-secret",
            "--name",
            "immuta/dev/snowflake",
            "--secret-string",
            r#"{"password":"canary-aws-value-9f7"}"#,
            "--endpoint-url",
            &moto.endpoint(),
        ],
    );
    run("age-keygen", &["-o", "age.key"]);
    let key = std::fs::read_to_string(env.path("age.key")).unwrap();
    let public = key
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    env.write(
        "plain.yaml",
        "connections:\n  sf:\n    password: canary-sops-value-9f8\n",
    );
    let encrypted = run("sops", &["encrypt", "--age", &public, "plain.yaml"]);
    std::fs::remove_file(env.path("plain.yaml")).unwrap();
    env.write("secrets/dev.enc.yaml", &encrypted);

    for (k, v) in aws_env {
        env.set_env(k, v);
    }
    env.set_env("PATH", &path);
    env.set_env("SOPS_AGE_KEY_FILE", &env.path("age.key").display().to_string());
    let mut yaml = String::from("version: 1\nconnections:\n");
    yaml += &connection("sf-aws", "acme-aws", "aws:immuta/dev/snowflake#password");
    yaml += &connection(
        "sf-sops",
        "acme-sops",
        "sops:secrets/dev.enc.yaml#connections.sf.password",
    );
    env.write("connections/all.yaml", &yaml);

    let check = env.run(&["validate", "connections", "--resolve-secrets"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let apply = env.run(&["apply", "connections", "-vvv", "--auto-approve", "--wait"]);
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(env.count_requests("POST", "/data/connection"), 2);
    let again = env.run(&["plan", "connections", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    let mut files = Vec::new();
    every_file(env.dir.path(), &mut files);
    for value in ["canary-aws-value-9f7", "canary-sops-value-9f8"] {
        for text in [
            &check.stdout,
            &check.stderr,
            &apply.stdout,
            &apply.stderr,
            &again.stdout,
        ] {
            assert!(!text.contains(value), "{value} leaked:\n{text}");
        }
        for (path, text) in &files {
            assert!(!text.contains(value), "{value} leaked into {path}");
        }
    }
}

#[test]
fn export_writes_secret_references_from_a_template() {
    let env = env();
    let apply = env.run(&["apply", "connections", "--auto-approve", "--target", "sf-op"]);
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let out = env.run(&["export", "sf-op", "--secret-ref", "op:Infra/{key}#{field}"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let auth = out.stdout.split("auth:").nth(1).unwrap_or_default();
    insta::assert_snapshot!(auth, @"

      type: userPassword
      username: SVC
      password:
        secret: op:Infra/sf-op#password
    audit:
      enabled: false
    workspaces:
      enabled: false
    impersonation:
      enabled: false
    lineage:
      enabled: false
    settings:
      isActive: false
    ");
    // The export plans as written once the provider has the secret.
    std::fs::write(env.path("exported.yaml"), &out.stdout).unwrap();
    let check = env.run(&["validate", "exported.yaml"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let bad = env.run(&["export", "--secret-ref", "vault:kv/immuta#password"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("has no `{key}`"), "{}", bad.stderr);
}
