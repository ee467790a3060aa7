use super::*;

fn answer(text: &str) -> Response {
    Response {
        method: "POST".into(),
        path: "/data/connection/test".into(),
        status: 200,
        outcome_unknown: false,
        content_type: "application/json".into(),
        text: text.into(),
    }
}

#[test]
fn a_write_is_acknowledged_only_by_an_empty_body_or_a_json_object() {
    assert!(answer("").acknowledged().is_ok());
    assert!(
        answer(r#"{"objectPath":["k"],"childCount":4}"#)
            .acknowledged()
            .is_ok()
    );
    for unreadable in [r#"{"objectPath":["#, "<html>502</html>", "[]"] {
        let err = answer(unreadable).acknowledged().unwrap_err();
        assert!(err.is_unexpected_answer(), "{unreadable}: {err}");
    }
}

#[test]
fn a_dry_run_passes_only_on_an_answer_that_says_so() {
    let passed =
        r#"{"status":"passed","validationTests":[{"name":"Setup script executed","status":"passed"}]}"#;
    assert!(dry_run_verdict(&answer(passed)).is_ok());
    assert!(
        dry_run_verdict(&answer("")).is_ok(),
        "an empty 200 says nothing else"
    );
    assert!(dry_run_verdict(&answer("{}")).is_ok());

    let failed = r#"{"status":"failed","validationTests":[{"name":"Setup script executed","status":"failed","message":"not run"}]}"#;
    let err = dry_run_verdict(&answer(failed)).unwrap_err();
    assert!(matches!(err, ApiError::DryRunFailed { .. }), "{err}");
    assert!(
        err.to_string().contains("Setup script executed: not run"),
        "{err}"
    );
    let err = dry_run_verdict(&answer(
        r#"{"validationResults":[{"name":"x","status":"error"}]}"#,
    ))
    .unwrap_err();
    assert!(matches!(err, ApiError::DryRunFailed { .. }), "{err}");
    let err = dry_run_verdict(&answer(r#"{"status":"FAILED","message":"bad role"}"#)).unwrap_err();
    assert!(err.to_string().contains("bad role"), "{err}");

    for unreadable in [r#"{"status":"pas"#, "<html>sign in</html>", "[1,2]"] {
        let err = dry_run_verdict(&answer(unreadable)).unwrap_err();
        assert!(err.is_unexpected_answer(), "{unreadable}: {err}");
    }
}

fn object(v: Value) -> LiveObject {
    serde_json::from_value(v).unwrap()
}

#[test]
fn active_state_comes_from_the_documented_state_first() {
    let documented = object(serde_json::json!({"objectPath": ["k"], "state": "inactive",
        "settings": {"activateNewChildren": {"value": true, "hasDescendantsWithOverrides": false}}}));
    assert_eq!(documented.is_active(), Some(false));
    assert_eq!(
        documented.setting("activateNewChildren"),
        Some(&Value::Bool(true))
    );
    // `state` wins over a stale setting; the setting is the fallback when `state` is absent.
    let both = object(serde_json::json!({"state": "active", "settings": {"isActive": {"value": false}}}));
    assert_eq!(both.is_active(), Some(true));
    let wrapped = object(serde_json::json!({"settings": {"isActive": {"value": true}}}));
    assert_eq!(wrapped.is_active(), Some(true));
    let bare = object(serde_json::json!({"settings": {"isActive": false}, "childCount": 7}));
    assert_eq!(bare.is_active(), Some(false));
    assert_eq!(bare.child_count, Some(7));
    assert_eq!(object(serde_json::json!({})).is_active(), None);
}

#[test]
fn each_plausible_object_shape_reads_the_same() {
    let wrapped =
        |value: Value, flag: bool| serde_json::json!({"value": value, "hasDescendantsWithOverrides": flag});
    // Documented: top-level `state`, each setting wrapped, the override flag on
    // `activateNewChildren`, no child count.
    let documented = object(serde_json::json!({
        "objectPath": ["k", "SALES", "PUBLIC"], "technology": "Snowflake", "state": "active",
        "settings": {"activateNewChildren": wrapped(Value::Bool(false), true),
                     "dataOwners": wrapped(serde_json::json!([]), false)},
        "overrides": {"activateNewChildren": false}}));
    // The same object with the status only as `settings.isActive`, the flag on it, and a
    // child count.
    let flat_status = object(serde_json::json!({
        "objectPath": ["k", "SALES", "PUBLIC"],
        "settings": {"isActive": wrapped(Value::Bool(true), true),
                     "activateNewChildren": wrapped(Value::Bool(false), false)},
        "childCount": 12}));
    // Bare (unwrapped) settings with no override flag anywhere.
    let bare = object(serde_json::json!({
        "objectPath": ["k", "SALES", "PUBLIC"],
        "settings": {"isActive": true, "activateNewChildren": false}}));
    for (name, o) in [
        ("documented", &documented),
        ("flat", &flat_status),
        ("bare", &bare),
    ] {
        assert_eq!(o.object_path, ["k", "SALES", "PUBLIC"], "{name}");
        assert_eq!(o.is_active(), Some(true), "{name}");
        assert_eq!(o.activate_new_children(), Some(false), "{name}");
    }
    assert!(documented.has_descendants_with_overrides());
    assert!(flat_status.has_descendants_with_overrides());
    assert!(!bare.has_descendants_with_overrides());
    assert_eq!(documented.child_count, None);
    assert_eq!(flat_status.child_count, Some(12));
    assert_eq!(
        documented.overrides,
        Some(serde_json::json!({"activateNewChildren": false}))
    );
    // Nothing said: nothing assumed.
    let empty = object(serde_json::json!({"objectPath": ["k", "DB"]}));
    assert_eq!(empty.activate_new_children(), None);
    assert!(!empty.has_descendants_with_overrides());
    // An inactive documented object with the flag only on `isActive`.
    let off = object(serde_json::json!({"state": "INACTIVE",
        "settings": {"isActive": wrapped(Value::Bool(false), true)}}));
    assert_eq!(off.is_active(), Some(false));
    assert!(off.has_descendants_with_overrides());
}
