//! The JSON Schema: `docs/connctl.schema.json` is current, accepts the example and every valid
//! fixture, and rejects what the loader rejects structurally.

mod common;

use std::path::Path;

use connctl_spec::{json_schema, json_schema_text};

const SCHEMA_FILE: &str = "docs/connctl.schema.json";

fn yaml_to_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&json_schema()).expect("the schema compiles")
}

fn errors(value: &serde_json::Value) -> Vec<String> {
    validator()
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn schema_file_is_current() {
    let path = common::repo_root().join(SCHEMA_FILE);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("CONNCTL_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, json_schema_text()).expect("write schema");
        return;
    }
    assert!(
        on_disk == json_schema_text(),
        "{SCHEMA_FILE} is stale: run `make schema` (or CONNCTL_WRITE_SCHEMA=1 cargo test -p connctl-spec --test schema)"
    );
}

#[test]
fn the_example_validates_against_the_schema() {
    let example = yaml_to_json(&common::repo_root().join("connections.example.yaml"));
    assert_eq!(errors(&example), Vec::<String>::new());
}

#[test]
fn every_valid_fixture_validates_against_the_schema() {
    let dir = common::repo_root().join("tests/fixtures/valid/all-variants");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            assert_eq!(
                errors(&yaml_to_json(&path)),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
            count += 1;
        }
    }
    assert!(count >= 2);
}

#[test]
fn the_schema_rejects_an_unknown_field() {
    let mut example = yaml_to_json(&common::repo_root().join("connections.example.yaml"));
    example["connections"][0]["warehous"] = serde_json::json!("IMMUTA_WH");
    assert!(!errors(&example).is_empty());
    let mut example = yaml_to_json(&common::repo_root().join("connections.example.yaml"));
    example["connections"][1]["auth"]["tokne"] = serde_json::json!({ "env": "X" });
    assert!(!errors(&example).is_empty());
}

/// A named change that makes a valid file invalid.
type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn the_schema_rejects_structural_mistakes_the_loader_rejects() {
    let base = yaml_to_json(&common::repo_root().join("connections.example.yaml"));
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "literal secret",
            Box::new(|v| v["connections"][0]["auth"]["password"] = "hunter2".into()),
        ),
        (
            "unknown technology",
            Box::new(|v| v["connections"][0]["technology"] = "Oracle".into()),
        ),
        (
            "databricks auth on snowflake",
            Box::new(|v| v["connections"][0]["auth"]["type"] = "token".into()),
        ),
        ("port 0", Box::new(|v| v["connections"][0]["port"] = 0.into())),
        (
            "port too big",
            Box::new(|v| v["connections"][0]["port"] = 70000.into()),
        ),
        ("version 2", Box::new(|v| v["version"] = 2.into())),
        (
            "bad catalog",
            Box::new(|v| v["connections"][1]["catalog"] = "1abc".into()),
        ),
        (
            "dotted key",
            Box::new(|v| v["connections"][1]["key"] = "a.b".into()),
        ),
        (
            "secret with both",
            Box::new(|v| v["connections"][1]["auth"]["token"]["file"] = "x".into()),
        ),
        (
            "missing host",
            Box::new(|v| _ = v["connections"][0].as_object_mut().map(|o| o.remove("host"))),
        ),
        (
            "wrong type",
            Box::new(|v| v["connections"][0]["protect"] = "yes".into()),
        ),
        (
            "integer workspace id",
            Box::new(|v| v["connections"][1]["workspaceIds"][0] = 12.into()),
        ),
    ];
    for (name, mutate) in cases {
        let mut value = base.clone();
        mutate(&mut value);
        assert!(!errors(&value).is_empty(), "the schema accepts: {name}");
    }
}

#[test]
fn the_schema_knows_reserved_keys_and_oauth_credentials() {
    let base = yaml_to_json(&common::repo_root().join("tests/fixtures/valid/all-variants/snowflake.yaml"));
    let oauth = 2;
    let mut both = base.clone();
    both["connections"][oauth]["auth"]["publicCertificateThumbprint"] = "AB".into();
    both["connections"][oauth]["auth"]["privateKey"] = serde_json::json!({ "env": "K" });
    assert!(
        !errors(&both).is_empty(),
        "the schema accepts OAuth with both credentials"
    );
    let mut neither = base.clone();
    _ = neither["connections"][oauth]["auth"]
        .as_object_mut()
        .map(|o| o.remove("clientSecret"));
    assert!(
        !errors(&neither).is_empty(),
        "the schema accepts OAuth without a credential"
    );
    let mut reserved = base.clone();
    reserved["connections"][0]["key"] = "Metadata".into();
    assert!(!errors(&reserved).is_empty(), "the schema accepts a reserved key");
    let mut empty_env = base;
    empty_env["connections"][0]["auth"]["password"]["env"] = "".into();
    assert!(
        !errors(&empty_env).is_empty(),
        "the schema accepts an empty env name"
    );
}

#[test]
fn the_schema_knows_objects() {
    let mut base = yaml_to_json(&common::repo_root().join("connections.example.yaml"));
    base["connections"][0]["objects"] = serde_json::json!([
        { "path": "SALES", "active": true, "activateNewChildren": false },
        { "path": "SALES/\"odd/name\"/T1", "active": false },
        { "path": "SALES/PUBLIC", "activateNewChildren": true },
    ]);
    assert_eq!(errors(&base), Vec::<String>::new());
    for bad in [
        serde_json::json!({ "path": "SALES" }),
        serde_json::json!({ "path": "SALES", "isActive": true }),
        serde_json::json!({ "path": "", "active": true }),
        serde_json::json!({ "path": "SALES", "active": "yes" }),
    ] {
        let mut value = base.clone();
        value["connections"][0]["objects"] = serde_json::json!([bad.clone()]);
        assert!(!errors(&value).is_empty(), "the schema accepts {bad}");
    }
}
