//! Loading valid specs: defaults, merging, origins, secret anchoring, directories, warnings,
//! duplicates across files and `check_secrets`.

mod common;

use std::path::{Path, PathBuf};

use connctl_spec::{
    DatabricksAuth, ExecutorKind, Platform, SecretRef, SnowflakeAuth, Technology, check_secrets, load,
    load_with_warnings,
};

const ALL_VARIANTS: &str = "tests/fixtures/valid/all-variants";

#[test]
fn the_example_loads() {
    common::at_repo_root();
    let desired = load(&["connections.example.yaml"]).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(desired.connections.len(), 2);
    let sf = desired.get("snowflake-prod").expect("snowflake-prod");
    assert_eq!(sf.technology(), Technology::Snowflake);
    assert!(sf.protect);
    assert_eq!(
        sf.executor, None,
        "the example leaves the executor to connctl.toml"
    );
    assert_eq!(sf.origin.to_string(), "connections.example.yaml:19:5");
    let db = desired.get("databricks-prod").expect("databricks-prod");
    assert!(!db.protect);
    assert!(!db.settings.is_active);
    assert!(db.options.force_recursive_crawl);
    match &db.platform {
        Platform::Databricks(d) => assert_eq!(d.port, 443),
        Platform::Snowflake(_) => panic!("expected Databricks"),
    }
}

#[test]
fn a_directory_holds_all_six_variants() {
    common::at_repo_root();
    let (desired, warnings) = load_with_warnings(&[ALL_VARIANTS]).unwrap_or_else(|r| panic!("{r}"));
    assert!(warnings.is_empty(), "{warnings}");
    let files: Vec<String> = desired.files.iter().map(|f| f.display().to_string()).collect();
    assert_eq!(
        files,
        [
            "tests/fixtures/valid/all-variants/databricks.yaml",
            "tests/fixtures/valid/all-variants/snowflake-oauth-cert.yml",
            "tests/fixtures/valid/all-variants/snowflake.yaml",
        ]
    );
    let mut types: Vec<&str> = desired
        .connections
        .iter()
        .map(|c| match &c.platform {
            Platform::Snowflake(s) => match s.auth.oauth_credential() {
                Some(connctl_spec::OAuthCredential::ClientSecret(_)) => "sf-oauth-secret",
                Some(connctl_spec::OAuthCredential::Certificate { .. }) => "sf-oauth-cert",
                None => s.auth.authentication_type(),
            },
            Platform::Databricks(d) => d.auth.authentication_type(),
        })
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "keyPair",
            "oAuthM2M",
            "sf-oauth-cert",
            "sf-oauth-secret",
            "token",
            "userPassword"
        ]
    );
}

#[test]
fn defaults_merge_under_each_connection_and_the_connection_wins() {
    common::at_repo_root();
    let desired = load(&[ALL_VARIANTS]).unwrap_or_else(|r| panic!("{r}"));
    let pw = desired.get("sf-password").expect("sf-password");
    assert!(pw.protect);
    assert!(pw.settings.is_active);
    assert_eq!(pw.settings.activate_new_children, Some(false));
    assert!(!pw.options.force_recursive_crawl);
    assert_eq!(pw.executor, Some(ExecutorKind::Snowflake));
    let kp = desired.get("sf_keypair").expect("sf_keypair");
    assert!(!kp.protect);
    assert!(!kp.settings.is_active);
    assert_eq!(kp.settings.activate_new_children, Some(false));
    assert!(kp.options.force_recursive_crawl);
    assert_eq!(kp.executor, Some(ExecutorKind::Command));
    // Defaults belong to their file: the .yml file has none.
    let cert = desired.get("sf-oauth-cert").expect("sf-oauth-cert");
    assert!(!cert.protect && !cert.settings.is_active && cert.options.force_recursive_crawl);
    assert_eq!(cert.executor, None);
}

#[test]
fn relative_secret_files_are_anchored_to_the_spec_folder() {
    common::at_repo_root();
    let desired = load(&[ALL_VARIANTS]).unwrap_or_else(|r| panic!("{r}"));
    let kp = desired.get("sf_keypair").expect("sf_keypair");
    match &kp.platform {
        Platform::Snowflake(s) => match &s.auth {
            SnowflakeAuth::KeyPair {
                private_key,
                private_key_password,
                ..
            } => {
                assert_eq!(
                    private_key,
                    &SecretRef::File(PathBuf::from(ALL_VARIANTS).join("keys/snowflake-keypair.p8"))
                );
                assert_eq!(
                    private_key_password,
                    &Some(SecretRef::Env("CONNCTL_TEST_SF_KEY_PASSWORD".into()))
                );
                assert!(
                    private_key
                        .resolve()
                        .expect("dummy key readable")
                        .expose()
                        .starts_with("-----BEGIN")
                );
            }
            other => panic!("expected keyPair, got {other:?}"),
        },
        Platform::Databricks(_) => panic!("expected Snowflake"),
    }
    let m2m = desired.get("dbx-m2m").expect("dbx-m2m");
    match &m2m.platform {
        Platform::Databricks(d) => match &d.auth {
            DatabricksAuth::OAuthM2M {
                client_secret, scope, ..
            } => {
                assert_eq!(
                    client_secret.resolve().expect("readable").expose(),
                    "dummy-databricks-oauth-secret"
                );
                assert_eq!(scope.as_deref(), Some("all-apis"));
            }
            other => panic!("expected oAuthM2M, got {other:?}"),
        },
        Platform::Snowflake(_) => panic!("expected Databricks"),
    }
}

#[test]
fn check_secrets_names_connection_and_field_never_the_value() {
    common::at_repo_root();
    let desired = load(&["connections.example.yaml"]).unwrap_or_else(|r| panic!("{r}"));
    // SAFETY-free: this test binary is the only reader of these two names.
    let report = check_secrets(&desired);
    let text = report.render(false);
    if std::env::var_os("SNOWFLAKE_PROD_PASSWORD").is_none() {
        assert!(
            text.contains(
                "error: connection `snowflake-prod`: auth.password: environment variable SNOWFLAKE_PROD_PASSWORD is not set"
            ),
            "{text}"
        );
        assert!(text.contains("--> connections.example.yaml:19:5"), "{text}");
    }
    let dummy = tempfile::tempdir().expect("tempdir");
    let spec = dummy.path().join("c.yaml");
    std::fs::write(
        &spec,
        "version: 1\nconnections:\n  - key: d\n    technology: Databricks\n    workspaceUrl: h\n    httpPath: /p\n    catalog: c\n    auth: { type: token, token: { file: missing.txt } }\n",
    )
    .expect("write");
    let desired = load(&[&spec]).unwrap_or_else(|r| panic!("{r}"));
    let text = check_secrets(&desired).render(false);
    assert!(
        text.contains("connection `d`: auth.token: cannot read secret file"),
        "{text}"
    );
    assert!(text.contains("missing.txt"), "{text}");
}

#[test]
fn resolvable_secrets_give_an_empty_report() {
    common::at_repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token.txt"), "s3cr3t-value\n").expect("write");
    let spec = dir.path().join("c.yaml");
    std::fs::write(
        &spec,
        "version: 1\nconnections:\n  - key: d\n    technology: Databricks\n    workspaceUrl: h\n    httpPath: /p\n    catalog: c\n    auth: { type: token, token: { file: token.txt } }\n",
    )
    .expect("write");
    let desired = load(&[&spec]).unwrap_or_else(|r| panic!("{r}"));
    let report = check_secrets(&desired);
    assert!(report.is_empty(), "{report}");
}

#[test]
fn duplicate_keys_across_files_name_both_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = "version: 1\nconnections:\n  - key: same\n    technology: Databricks\n    workspaceUrl: h\n    httpPath: /p\n    catalog: c\n    auth: { type: token, token: { env: T } }\n";
    std::fs::write(dir.path().join("a.yaml"), body).expect("write");
    std::fs::write(dir.path().join("b.yml"), body).expect("write");
    let report = load(&[dir.path()]).expect_err("duplicate");
    assert_eq!(report.diagnostics.len(), 1);
    let d = &report.diagnostics[0];
    assert!(
        d.file.ends_with("b.yml") && d.line == 3 && d.column == 10,
        "{report}"
    );
    assert_eq!(d.message, "duplicate connection key `same`");
    let first = format!("{}:3:5", dir.path().join("a.yaml").display());
    assert!(d.help.as_deref().is_some_and(|h| h.contains(&first)), "{report}");
}

#[test]
fn two_connections_on_one_snowflake_host_name_both_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = |key: &str, host: &str| {
        format!(
            "  - key: {key}\n    technology: Snowflake\n    host: {host}\n    warehouse: W\n    database: D_{key}\n    role: R\n    auth: {{ type: userPassword, username: U, password: {{ env: P }} }}\n"
        )
    };
    let a = format!(
        "version: 1\nconnections:\n{}",
        conn("first", "acme.snowflakecomputing.com")
    );
    // Host names are case-insensitive; a different host is fine.
    let b = format!(
        "version: 1\nconnections:\n{}{}",
        conn("other", "other.snowflakecomputing.com"),
        conn("second", "ACME.snowflakecomputing.com")
    );
    std::fs::write(dir.path().join("a.yaml"), a).expect("write");
    std::fs::write(dir.path().join("b.yaml"), b).expect("write");
    let report = load(&[dir.path()]).expect_err("one integration per host");
    assert_eq!(report.diagnostics.len(), 1, "{report}");
    let d = &report.diagnostics[0];
    assert!(
        d.file.ends_with("b.yaml") && d.line == 10 && d.column == 5,
        "{report}"
    );
    let first = format!("{}:3:5", dir.path().join("a.yaml").display());
    assert!(
        d.message.contains("`second`") && d.message.contains(&first),
        "{report}"
    );
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("one Snowflake integration per host")),
        "{report}"
    );
}

#[test]
fn errors_of_every_file_are_reported_together() {
    common::at_repo_root();
    let report = load(&[
        "tests/fixtures/invalid/unknown-field.yaml",
        "tests/fixtures/invalid/bad-catalog-name.yaml",
    ])
    .expect_err("invalid");
    let files: Vec<&Path> = report.errors().map(|d| d.file.as_path()).collect();
    assert!(files.contains(&Path::new("tests/fixtures/invalid/unknown-field.yaml")));
    assert!(files.contains(&Path::new("tests/fixtures/invalid/bad-catalog-name.yaml")));
}

#[test]
fn workspaces_with_impersonation_is_a_warning_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("w.yaml");
    std::fs::write(
        &spec,
        "version: 1\nconnections:\n  - key: w\n    technology: Snowflake\n    host: h\n    warehouse: w\n    database: d\n    role: r\n    auth: { type: userPassword, username: u, password: { env: P } }\n    workspaces: { enabled: true }\n    impersonation: { enabled: true }\n",
    )
    .expect("write");
    let (desired, warnings) = load_with_warnings(&[&spec]).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(desired.connections.len(), 1);
    assert!(!warnings.has_errors());
    let w = warnings.warnings().next().expect("one warning");
    assert_eq!((w.line, w.column), (11, 5));
    assert!(
        warnings
            .render(false)
            .starts_with("warning: `workspaces` and `impersonation` are both enabled")
    );
}

#[test]
fn an_empty_connections_list_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("e.yaml");
    std::fs::write(&spec, "version: 1\nconnections: []\n").expect("write");
    let desired = load(&[&spec]).unwrap_or_else(|r| panic!("{r}"));
    assert!(desired.connections.is_empty());
    assert_eq!(desired.files, [spec]);
}

#[cfg(unix)]
#[test]
fn check_secrets_refuses_a_fifo_naming_connection_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = std::process::Command::new("mkfifo")
        .arg(dir.path().join("password.fifo"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let spec = dir.path().join("c.yaml");
    std::fs::write(
        &spec,
        "version: 1\nconnections:\n  - key: sf\n    technology: Snowflake\n    host: h\n    warehouse: W\n    database: D\n    role: R\n    auth: { type: userPassword, username: U, password: { file: password.fifo } }\n",
    )
    .expect("write");
    let desired = load(&[&spec]).unwrap_or_else(|r| panic!("{r}"));
    // On another thread: before the fix, reading the FIFO blocked for ever.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(check_secrets(&desired).render(false)));
    let text = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("check_secrets blocked on a FIFO");
    assert!(
        text.contains("error: connection `sf`: auth.password: secret file ")
            && text.contains("password.fifo is a FIFO (named pipe), not a regular file"),
        "{text}"
    );
}

#[test]
fn objects_load_in_order_with_their_quoted_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("objects.yaml");
    std::fs::write(
        &spec,
        r#"version: 1
connections:
  - key: dbx
    technology: Databricks
    workspaceUrl: acme.cloud.databricks.com
    httpPath: /sql/1.0/warehouses/abc
    catalog: immuta
    auth: { type: token, token: { env: DBX_TOKEN } }
    objects:
      - path: main
        active: true
        activateNewChildren: false
      - path: main/my.schema
        activateNewChildren: true
      - path: 'main/"odd/name ""x"""/T1'
        active: false
"#,
    )
    .expect("write");
    let desired = load(&[&spec]).unwrap_or_else(|r| panic!("{r}"));
    let objects = &desired.get("dbx").expect("dbx").objects;
    let paths: Vec<Vec<String>> = objects.iter().map(|o| o.path.segments().to_vec()).collect();
    assert_eq!(
        paths,
        [
            vec!["main".to_owned()],
            vec!["main".to_owned(), "my.schema".to_owned()],
            vec!["main".to_owned(), "odd/name \"x\"".to_owned(), "T1".to_owned()],
        ]
    );
    assert_eq!(
        objects
            .iter()
            .map(|o| (o.active, o.activate_new_children))
            .collect::<Vec<_>>(),
        [(Some(true), Some(false)), (None, Some(true)), (Some(false), None)]
    );
    assert_eq!(objects[2].path.to_string(), r#"main/"odd/name ""x"""/T1"#);
    assert_eq!(objects[2].path.full("dbx")[0], "dbx");
    // Without `objects:` a connection manages none (the example lists them for one of two).
    common::at_repo_root();
    let example = load(&["connections.example.yaml"]).unwrap_or_else(|r| panic!("{r}"));
    let listed: Vec<usize> = example.connections.iter().map(|c| c.objects.len()).collect();
    assert_eq!(listed, [3, 0], "snowflake-prod, then databricks-prod");
}
