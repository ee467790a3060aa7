//! Reliability, the state reader under random input: random bytes and JSON mutations of a real
//! state (from an apply of every auth variant). `connctl state list` and `status` exit 0 or 1,
//! never panic. 64 cases per property by default, 4,000 with `CONNCTL_SOAK=1`; see
//! docs/reliability.md.

use std::process::Command;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{TestEnv, soak};

/// A state written by a real apply of every variant (made once per test binary).
fn real_state() -> &'static Value {
    static STATE: OnceLock<Value> = OnceLock::new();
    STATE.get_or_init(|| {
        let env = TestEnv::new();
        env.fixture("valid/all-variants");
        let out = env.run(&["apply", "--auto-approve", "--wait", "valid/all-variants"]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        env.state()
    })
}

fn state_reader_cases() -> u32 {
    if soak() { 4000 } else { 64 }
}

/// Runs the state readers on `bytes`; returns the exit codes.
fn read_state_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    std::fs::write(dir.path().join("fuzzed-state.json"), bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for args in [&["state", "list"][..], &["status", "--json"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_connctl"))
            .args(args)
            .args(["--state", "fuzzed-state.json"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .output()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(
            code == 0 || code == 1,
            "`connctl {}` exit {code} on {} bytes:\n{stderr}",
            args.join(" "),
            bytes.len()
        );
        prop_assert!(!stderr.contains("panicked"), "{stderr}");
        if code == 1 {
            prop_assert!(
                stderr.starts_with("error: ") && stderr.contains("fuzzed-state.json"),
                "an error that does not name the file:\n{stderr}"
            );
        }
        // Nothing but the state file is left (readers write nothing).
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        prop_assert_eq!(names, vec!["fuzzed-state.json".to_owned()]);
    }
    Ok(())
}

/// Every path (object keys and array indices) in `v`.
fn value_paths(v: &Value, here: &mut Vec<PathSeg>, out: &mut Vec<Vec<PathSeg>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(PathSeg::Key(k.clone()));
                value_paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(PathSeg::Index(i));
                value_paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathSeg {
    Key(String),
    Index(usize),
}

fn at_mut<'a>(v: &'a mut Value, path: &[PathSeg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        PathSeg::Key(k) => v.get_mut(k.as_str()),
        PathSeg::Index(i) => v.get_mut(*i),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at a path.
    Replace(prop::sample::Index, Value),
    /// Remove the key or element at a path.
    Remove(prop::sample::Index),
    /// Add a key to the object at (or above) a path.
    Insert(prop::sample::Index, String, Value),
    /// Cut the serialised text at a point.
    Truncate(prop::sample::Index),
    /// Overwrite one byte of the serialised text.
    Byte(prop::sample::Index, u8),
    /// Wrap the value at a path in `depth` arrays.
    Nest(prop::sample::Index, usize),
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!("registered")),
        Just(json!("exploded")),
        Just(json!("")),
        "\\PC{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let key = prop_oneof![
        Just("version".to_owned()),
        Just("serial".to_owned()),
        Just("step".to_owned()),
        Just("bulkIds".to_owned()),
        Just("pending".to_owned()),
        Just("applied".to_owned()),
        "[a-zA-Z]{1,10}",
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        2 => (any::<prop::sample::Index>(), key, json_value()).prop_map(|(i, k, v)| Mutation::Insert(i, k, v)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        1 => (any::<prop::sample::Index>(), 1usize..400).prop_map(|(i, d)| Mutation::Nest(i, d)),
    ]
}

/// Applies `mutations` in order to `state`; returns the bytes to write.
fn mutate(state: &Value, mutations: &[Mutation]) -> Vec<u8> {
    let mut v = state.clone();
    let mut text: Option<Vec<u8>> = None;
    for m in mutations {
        if let Some(bytes) = text.as_mut() {
            // Already text: only the byte-level mutations still apply.
            match m {
                Mutation::Truncate(i) if !bytes.is_empty() => bytes.truncate(i.index(bytes.len())),
                Mutation::Byte(i, b) if !bytes.is_empty() => {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
                _ => {}
            }
            continue;
        }
        let mut paths = Vec::new();
        value_paths(&v, &mut Vec::new(), &mut paths);
        match m {
            Mutation::Replace(i, new) => {
                if let Some(slot) = at_mut(&mut v, &paths[i.index(paths.len())]) {
                    *slot = new.clone();
                }
            }
            Mutation::Remove(i) => {
                let path = &paths[i.index(paths.len())];
                if let Some((last, parent)) = path.split_last()
                    && let Some(p) = at_mut(&mut v, parent)
                {
                    match (last, p) {
                        (PathSeg::Key(k), Value::Object(m)) => {
                            m.remove(k);
                        }
                        (PathSeg::Index(i), Value::Array(a)) if *i < a.len() => {
                            a.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Insert(i, key, new) => {
                let mut path = paths[i.index(paths.len())].clone();
                loop {
                    match at_mut(&mut v, &path) {
                        Some(Value::Object(m)) => {
                            m.insert(key.clone(), new.clone());
                            break;
                        }
                        _ if path.pop().is_some() => {}
                        _ => break,
                    }
                }
            }
            Mutation::Nest(i, depth) => {
                if let Some(slot) = at_mut(&mut v, &paths[i.index(paths.len())]) {
                    for _ in 0..*depth {
                        *slot = Value::Array(vec![slot.take()]);
                    }
                }
            }
            Mutation::Truncate(_) | Mutation::Byte(..) => {
                let mut bytes = serde_json::to_vec_pretty(&v).expect("serialise");
                match m {
                    Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
                    Mutation::Byte(i, b) => {
                        let at = i.index(bytes.len());
                        bytes[at] = *b;
                    }
                    _ => unreachable!(),
                }
                text = Some(bytes);
            }
        }
    }
    text.unwrap_or_else(|| serde_json::to_vec_pretty(&v).expect("serialise"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: state_reader_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn state_reader_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_state_bytes(&bytes)?;
    }

    #[test]
    fn state_reader_never_panics_on_mutated_state(mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(real_state(), &mutations);
        read_state_bytes(&bytes)?;
    }
}

#[test]
fn state_reader_reads_the_unmutated_state() {
    // The control for the mutation test: the real state itself reads fine.
    let bytes = serde_json::to_vec_pretty(real_state()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.json"), &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_connctl"))
        .args(["state", "list", "--state", "s.json"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
}
