//! The three payloads of every auth variant, pinned: built from the YAML fixtures with secret
//! placeholders, so each snapshot can be read against the guide's field tables.

use connctl_immuta::payload::{self, Placeholders};

fn fixtures() -> connctl_spec::Desired {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/valid/all-variants"
    );
    connctl_spec::load(&[dir]).expect("fixtures load")
}

#[test]
fn every_variant_script_request_and_registration() {
    let desired = fixtures();
    assert_eq!(desired.connections.len(), 6);
    for conn in &desired.connections {
        let script = payload::script_request(conn, &Placeholders);
        let registration = payload::registration(conn, &Placeholders);
        insta::assert_json_snapshot!(format!("{}-script", conn.key), script);
        insta::assert_json_snapshot!(format!("{}-registration", conn.key), registration);
        // The invariants the guide insists on, checked for every variant.
        assert_eq!(registration["connectionKey"], conn.key.as_str());
        assert_eq!(registration["nativeIntegration"]["autoBootstrap"], false);
        assert_eq!(script["autoBootstrap"], false);
        let native = &registration["nativeIntegration"]["config"];
        let config = &script["config"];
        assert_eq!(
            native["authenticationType"], config["authenticationType"],
            "{}",
            conn.key
        );
        assert_eq!(native["audit"], config["audit"], "{}", conn.key);
        assert_eq!(registration["connection"]["port"], native["port"], "{}", conn.key);
    }
}

#[test]
fn settings_body_carries_only_the_settings_that_changed() {
    use payload::Setting;
    let desired = fixtures();
    let conn = &desired.connections[0];
    // Only activateNewChildren changed: `isActive` is absent, so the connection's status (and,
    // through Immuta's cascade, its children's) is left alone.
    let mut only_children = serde_json::Map::new();
    if let Some(v) = conn.settings.activate_new_children {
        only_children.insert("activateNewChildren".into(), v.into());
    }
    let body = payload::settings_update(conn, &[Setting::ActivateNewChildren]);
    match conn.settings.activate_new_children {
        Some(_) => assert_eq!(body, Some(serde_json::json!({"settings": only_children}))),
        None => assert_eq!(body, None),
    }
    assert_eq!(
        payload::settings_update(conn, &[Setting::IsActive]),
        Some(serde_json::json!({"settings": {"isActive": conn.settings.is_active}}))
    );
    assert_eq!(payload::settings_update(conn, &[]), None);
}
