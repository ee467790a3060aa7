//! `connctl validate` and `connctl schema`.

use crate::support::{TestEnv, repo};

#[test]
fn example_file_is_valid() {
    let env = TestEnv::new();
    let example = repo().join("connections.example.yaml");
    let out = env.run(&["validate", example.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "ok: 2 connections in 1 file are valid\n");
}

#[test]
fn all_six_auth_variants_in_a_folder() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    insta::assert_snapshot!(env.snap(&["validate", "--resolve-secrets", "valid/all-variants"]), @r"
    exit: 0
    --- stdout
    ok: 6 connections in 3 files are valid, and every secret reference resolves
    --- stderr
    ");
}

#[test]
fn every_invalid_fixture_exits_1_naming_file_line_col() {
    let env = TestEnv::new();
    let dir = repo().join("tests/fixtures/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "corpus has {} files", files.len());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let rel = format!("invalid/{name}");
        env.fixture(&rel);
        let out = env.run(&["validate", &rel]);
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        // A corpus of dozens of files, each its own message: every one must name file:line:col.
        assert!(
            out.stderr.contains(&format!("{rel}:")),
            "{name}: no file:line:col in\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{name} panicked");
        assert!(out.stdout.is_empty(), "{name} wrote to stdout");
    }
}

#[test]
fn secret_that_does_not_resolve_names_field_not_value() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        "version: 1\nconnections:\n  - key: sf\n    technology: Snowflake\n    host: a.snowflakecomputing.com\n    warehouse: W\n    database: D\n    role: R\n    auth: { type: userPassword, username: U, password: { env: NOT_SET_ANYWHERE } }\n",
    );
    insta::assert_snapshot!(env.snap(&["validate", "--resolve-secrets", "c.yaml"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: connection `sf`: auth.password: environment variable NOT_SET_ANYWHERE is not set
     --> c.yaml:3:5
      |
    3 |   - key: sf
      |     ^^^
      = help: export NOT_SET_ANYWHERE before running connctl
    ");
}

#[test]
fn schema_output_is_the_committed_schema() {
    let env = TestEnv::new();
    let out = env.run(&["schema"]);
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string(repo().join("docs/connctl.schema.json")).unwrap();
    assert_eq!(
        out.stdout, committed,
        "docs/connctl.schema.json is stale: run `make schema`"
    );
}

#[test]
fn init_writes_files_that_validate_and_never_overwrites() {
    let env = TestEnv::new();
    let out = env.run(&["init", "starter"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = env.run(&["validate", "starter/connections.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = env.run(&[
        "--config",
        "starter/connctl.toml",
        "validate",
        "starter/connections.yaml",
    ]);
    assert_eq!(out.code, 0, "starter connctl.toml must parse: {}", out.stderr);
    insta::assert_snapshot!(env.snap(&["init", "starter"]), @"
    exit: 1
    --- stdout
    --- stderr
    error: starter/connections.yaml already exists; connctl init never overwrites a file
    ");
}
