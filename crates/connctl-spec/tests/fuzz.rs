//! Hostile input never panics: random bytes, YAML-ish text and deep nesting all come back as
//! an error report (written to temp files, loaded through the public `load`).

use proptest::prelude::*;

use connctl_spec::load;

/// Writes `bytes` to a temp file and loads it; the result must be an error with a location.
fn load_bytes(bytes: &[u8]) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("input.yaml");
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    match load(&[&file]) {
        Ok(desired) => Ok(desired.connections.len()),
        Err(report) => {
            assert!(report.has_errors());
            let rendered = report.render(false);
            assert!(rendered.contains("input.yaml:"), "{rendered}");
            Err(rendered)
        }
    }
}

fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("version: 1\n".to_owned()),
        Just("connections:\n".to_owned()),
        Just("  - key: a\n".to_owned()),
        Just("    technology: Snowflake\n".to_owned()),
        Just("    technology: Databricks\n".to_owned()),
        Just("    auth: { type: token, token: { env: T } }\n".to_owned()),
        Just("    password: hunter2\n".to_owned()),
        Just("    port: 99999\n".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("&a ".to_owned()),
        Just("*a ".to_owned()),
        Just("<<: *a\n".to_owned()),
        Just("!!binary ".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("|\n  ".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("---\n".to_owned()),
        "[a-zA-Z0-9 :#'\"-]{0,12}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Random bytes are almost never a valid spec; an error report is the expected outcome.
        let _ = load_bytes(&bytes);
    }

    #[test]
    fn yaml_ish_text_never_panics(text in yamlish()) {
        let _ = load_bytes(text.as_bytes());
    }

    #[test]
    fn nesting_of_any_depth_is_an_error(depth in 2usize..3000, kind in 0usize..4) {
        let text = match kind {
            0 => "[".repeat(depth),
            1 => "{".repeat(depth),
            2 => format!("version: 1\nconnections: {}{}\n", "[".repeat(depth), "]".repeat(depth)),
            _ => (0..depth.min(400)).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect(),
        };
        prop_assert!(load_bytes(text.as_bytes()).is_err());
    }
}

#[test]
fn ten_thousand_open_brackets_and_braces_are_errors() {
    for opener in ["[", "{", "[{", "- "] {
        let text = opener.repeat(10_000);
        assert!(load_bytes(text.as_bytes()).is_err(), "{opener}");
    }
    let mappings: String = (0..10_000)
        .map(|i| format!("{}k:\n", " ".repeat(i % 2000)))
        .collect();
    assert!(load_bytes(mappings.as_bytes()).is_err());
}

#[test]
fn alias_bombs_are_errors() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    assert!(load_bytes(text.as_bytes()).is_err());
}
