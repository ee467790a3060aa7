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
