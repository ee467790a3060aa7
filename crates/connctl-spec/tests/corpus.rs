//! The bad-input corpus: every file under `tests/fixtures/invalid/` holds one mistake and
//! starts with `# expect: LINE:COL message fragment`. Each must fail to load, its first
//! diagnostic must sit exactly there and say that, and the rendered report is snapshotted.

mod common;

use std::path::PathBuf;

use connctl_spec::load;

const DIR: &str = "tests/fixtures/invalid";

/// `# expect: 4:5 unknown field` → (4, 5, "unknown field").
fn expectation(text: &str, file: &str) -> (usize, usize, String) {
    let header = text.lines().next().and_then(|l| l.strip_prefix("# expect: "));
    let parsed = header.and_then(|h| {
        let (loc, fragment) = h.split_once(' ')?;
        let (line, col) = loc.split_once(':')?;
        Some((line.parse().ok()?, col.parse().ok()?, fragment.trim().to_owned()))
    });
    parsed.unwrap_or_else(|| panic!("{file}: first line must be `# expect: LINE:COL fragment`"))
}

fn fixtures() -> Vec<PathBuf> {
    common::at_repo_root();
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| PathBuf::from(DIR).join(p.file_name().expect("file name")))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_input_fails_at_the_expected_place() {
    let files = fixtures();
    assert!(files.len() >= 32, "the corpus has only {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_owned();
        let text = std::fs::read_to_string(file).expect("readable");
        let (line, column, fragment) = expectation(&text, &name);
        let report = match load(&[file]) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without errors"));
                continue;
            }
            Err(report) => report,
        };
        assert!(report.has_errors(), "{name}: a failed load must hold an error");
        let first = &report.diagnostics[0];
        let rendered = report.render(false);
        if (first.line, first.column) != (line, column) || !first.message.contains(&fragment) {
            failures.push(format!(
                "{name}: expected {line}:{column} `{fragment}`, got {}:{} `{}`",
                first.line, first.column, first.message
            ));
        }
        if !rendered.contains(&format!("--> {}:{}:{}", file.display(), first.line, first.column)) {
            failures.push(format!(
                "{name}: the rendered report lacks the location:\n{rendered}"
            ));
        }
        insta::assert_snapshot!(name, rendered);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn literal_secrets_are_never_echoed() {
    common::at_repo_root();
    for (name, secret) in [
        ("literal-password", "hunter2"),
        ("literal-token", "dapi0123456789abcdef"),
        ("literal-private-key", "BEGIN PRIVATE KEY"),
    ] {
        let report = load(&[format!("{DIR}/{name}.yaml")]).expect_err("a literal secret is an error");
        let rendered = report.render(false);
        assert!(
            !rendered.contains(secret),
            "{name} echoes the secret:\n{rendered}"
        );
        assert!(rendered.contains("{ env: NAME }"), "{rendered}");
    }
}

#[test]
fn a_zero_byte_file_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("empty.yaml");
    std::fs::write(&file, "").expect("write");
    let report = load(&[&file]).expect_err("empty");
    assert_eq!(report.diagnostics[0].message, "file is empty");
    assert_eq!((report.diagnostics[0].line, report.diagnostics[0].column), (1, 1));
}

#[test]
fn missing_paths_and_empty_directories_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report =
        load(&[dir.path().join("nope.yaml"), dir.path().to_path_buf()]).expect_err("nothing to read");
    let messages: Vec<&str> = report.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "no such file or directory",
            "no *.yaml or *.yml files in this directory"
        ]
    );
}

#[test]
fn one_run_reports_every_error_of_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("many.yaml");
    std::fs::write(
        &file,
        "version: 1\nconnections:\n  - key: a.b\n    technology: Databricks\n    workspaceUrl: h\n    httpPath: /p\n    port: 0\n    catalog: 9c\n    auth: { type: token, token: secret }\n    colour: blue\n",
    )
    .expect("write");
    let report = load(&[&file]).expect_err("invalid");
    let at: Vec<(usize, usize)> = report.diagnostics.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(at, [(3, 10), (7, 11), (8, 14), (9, 33), (10, 5)], "{report}");
}

#[test]
fn a_file_over_the_size_cap_is_refused_with_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("huge.yaml");
    let cap = usize::try_from(connctl_spec::MAX_SPEC_FILE_BYTES).expect("fits");
    let mut text = "version: 1\nconnections: []\n".to_owned();
    text.push_str(&"#".repeat(cap + 1 - text.len()));
    std::fs::write(&file, &text).expect("write");
    let report = load(&[&file]).expect_err("too large");
    assert_eq!(
        report.diagnostics[0].message,
        "file is larger than 4 MiB, the most connctl reads from one spec file"
    );
    // One byte less is read.
    std::fs::write(&file, &text[..cap]).expect("write");
    load(&[&file]).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn a_reader_limit_is_a_sentence_with_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("many.yaml");
    std::fs::write(&file, format!("version: 1\nx: [{}]\n", "0,".repeat(250_001))).expect("write");
    let report = load(&[&file]).expect_err("too many values");
    let d = &report.diagnostics[0];
    assert_eq!(
        d.message,
        "the file holds more than 250000 YAML values, the most connctl reads from one file"
    );
    assert_eq!(
        d.help.as_deref(),
        Some("split the connections over several files (a directory is read as one spec)")
    );
}
