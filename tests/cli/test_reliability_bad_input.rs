//! Reliability, bad input: invalid settings (tests/fixtures/invalid-settings/*.toml) and state
//! files (tests/fixtures/invalid-state/*.json). Each: exit 1, one clear message naming the
//! problem, no panic, nothing written. See docs/reliability.md.

use std::path::PathBuf;

use crate::support::{TestEnv, assert_no_panic, repo, snapshot_tree};

const ONE_SPEC: &str = "version: 1
connections:
  - key: dbx-bad-input
    technology: Databricks
    workspaceUrl: dbc-bi.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/bi
    catalog: immuta_bi
    auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }
";

fn fixture_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures").join(dir))
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Exactly one `error:` line, no panic.
fn assert_one_error(what: &str, stderr: &str) {
    assert_no_panic(what, stderr);
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(errors, 1, "{what}: expected one error, got:\n{stderr}");
}

#[test]
fn invalid_settings_are_one_clear_error_and_write_nothing() {
    let files = fixture_files("invalid-settings", "toml");
    assert!(files.len() >= 8, "only {} settings cases", files.len());
    let mut tried = 0;
    let mut problems: Vec<String> = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let expects: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| e.replace("{file}", &name))
            .collect();
        assert!(!expects.is_empty(), "{name}: no `# expect:` line");
        let env = TestEnv::new();
        std::fs::remove_file(env.path("connctl.toml")).unwrap();
        env.write(&name, &text);
        env.write("c.yaml", ONE_SPEC);
        let before = snapshot_tree(env.dir.path());
        for args in [
            &["plan", "c.yaml"][..],
            &["apply", "--auto-approve", "c.yaml"],
            &["drift", "c.yaml"],
            &["import", "c.yaml", "--key", "dbx-bad-input"],
        ] {
            let mut full = vec!["--config", name.as_str()];
            full.extend_from_slice(args);
            let out = env.run(&full);
            tried += 1;
            let what = format!("{name}: `connctl {}`", full.join(" "));
            // Problems are collected, so that one run lists every case that misbehaves.
            let mut problem = |p: String| problems.push(format!("{what}: {p}"));
            // One run per fixture and command: each fixture names what its error must say.
            assert_no_panic(&what, &out.stderr);
            if out.code != 1 {
                problem(format!("exit {}\n{}\n{}", out.code, out.stdout, out.stderr));
            }
            let errors = out.stderr.lines().filter(|l| l.starts_with("error")).count();
            if errors != 1 {
                problem(format!("{errors} error lines:\n{}", out.stderr));
            }
            for e in &expects {
                if !out.stderr.contains(e.as_str()) {
                    problem(format!("no `{e}` in: {}", out.stderr));
                }
            }
            if out.stderr.contains("literal-key-never-echoed") {
                problem(format!("echoed the literal API key: {}", out.stderr.trim()));
            }
            // Writes are collected so that one run shows every case that writes.
            let after = snapshot_tree(env.dir.path());
            if after != before {
                let new: Vec<String> = after
                    .iter()
                    .filter(|f| !before.contains(f))
                    .map(|(p, _)| p.display().to_string())
                    .collect();
                problems.push(format!("{what}: wrote {new:?}"));
                if env.path(".connctl").exists() {
                    std::fs::remove_dir_all(env.path(".connctl")).unwrap();
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {tried} runs with invalid settings misbehaved (expected: exit 1, one error naming \
         the problem, no secret echoed, nothing written):\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "bad input: {} settings cases, {tried} runs, each exit 1 with one clear error, nothing written",
        files.len()
    );
}

/// What each state case must say (by default: that the file is corrupt).
fn state_expectation(name: &str) -> &'static str {
    match name {
        "newer-version.json" => "newer than this connctl understands",
        "missing-version.json" | "top-level-array.json" => "no \"version\" field",
        "version-string.json" | "version-fraction.json" => "\"version\" must be a whole number",
        _ => "is corrupt",
    }
}

#[test]
fn invalid_state_files_are_one_clear_error_and_stay_untouched() {
    let files = fixture_files("invalid-state", "json");
    assert!(files.len() >= 6, "only {} state cases", files.len());
    let env = TestEnv::new();
    env.write("c.yaml", ONE_SPEC);
    // The cases are mutations of this state, which is valid.
    env.write("valid.json", VALID_STATE);
    insta::assert_snapshot!(env.snap(&["state", "list", "--state", "valid.json"]), @"
    exit: 0
    --- stdout
    dbx-token	Databricks	registered
    --- stderr
    ");

    let mut tried = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap();
        let rel = format!("state/{name}");
        let path = env.path(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        for args in [
            &["state", "list"][..],
            &["state", "show", "dbx-token"],
            &["state", "rm", "dbx-token"],
            &["status"],
            &["plan", "c.yaml"],
            &["apply", "--auto-approve", "c.yaml"],
            &["drift"],
            &["import", "c.yaml", "--key", "dbx-bad-input"],
        ] {
            let mut full = args.to_vec();
            full.extend_from_slice(&["--state", rel.as_str()]);
            let out = env.run(&full);
            tried += 1;
            let what = format!("`connctl {}`", full.join(" "));
            assert_eq!(out.code, 1, "{what}\n{}\n{}", out.stdout, out.stderr);
            assert_one_error(&what, &out.stderr);
            assert!(
                out.stderr.contains(&name),
                "{what}: the file is not named:\n{}",
                out.stderr
            );
            let expect = state_expectation(&name);
            assert!(
                out.stderr.contains(expect),
                "{what}: no `{expect}` in:\n{}",
                out.stderr
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{what}: the state file changed"
            );
            let others: Vec<String> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".json") && !n.ends_with(".lock"))
                .collect();
            assert!(others.is_empty(), "{what}: wrote {others:?}");
        }
    }
    assert_eq!(env.count_requests("POST", "/integrations/scripts/create"), 0);
    eprintln!(
        "bad input: {} state cases, {tried} runs, each exit 1 with one clear error, file untouched",
        files.len()
    );
}

/// The state the invalid-state cases were made from.
const VALID_STATE: &str = r#"{
  "version": 1,
  "serial": 7,
  "lineage": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
  "salt": "5f0e2a9c4b7d1e3f5a6b8c9d0e1f2a3b",
  "connections": {
    "dbx-token": {
      "technology": "Databricks",
      "step": "registered",
      "applied": {
        "catalog": "immuta_token",
        "connection.hostname": "dbc-1234.cloud.databricks.com",
        "connection.token": "sha256:9c1f1c0b6c2f0a7e5b1d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b"
      },
      "integrationId": "1",
      "bulkIds": [
        {
          "bulkId": "b-1",
          "origin": "register",
          "at": "2025-01-01T00:00:00Z",
          "jobState": "completed"
        }
      ],
      "journal": [
        {
          "at": "2025-01-01T00:00:00Z",
          "step": "register",
          "phase": "intent"
        }
      ]
    }
  }
}
"#;
