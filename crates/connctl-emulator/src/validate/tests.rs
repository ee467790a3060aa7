use super::*;
use serde_json::json;

#[test]
fn script_request_names_fields() {
    let err = script_request(&json!({"type": "Snowflake", "autoBootstrap": false, "config": {
        "host": "h", "warehouse": 1, "authenticationType": "userPassword", "username": "u", "password": "p",
        "bogus": true
    }}))
    .unwrap_err();
    assert!(
        err.message.contains("config.warehouse: expected string"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("config.database: required"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("config.bogus: unknown field"),
        "{}",
        err.message
    );
    let err = script_request(&json!({"type": "Oracle", "autoBootstrap": false, "config": {}})).unwrap_err();
    assert!(
        err.message.contains("type: unknown technology 'Oracle'"),
        "{}",
        err.message
    );
}

#[test]
fn keys() {
    assert!(check_key("snowflake-prod_1").is_ok());
    assert!(check_key("a.b").is_err());
    assert!(check_key("Search").is_err());
}

#[test]
fn flatten_roundtrip() {
    let v = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
    assert_eq!(unflatten(&flatten(&v)), v);
}

#[test]
fn snowflake_oauth_certificate_maps_across_payloads() {
    let oauth = json!({"provider": "Okta", "clientId": "cid", "authorityUrl": "https://idp",
                       "publicCertificateThumbprint": "AB:CD", "oauthPrivateKey": "PEM"});
    let req = script_request(&json!({"type": "Snowflake", "autoBootstrap": false, "config": {
        "host": "h.snowflakecomputing.com", "warehouse": "WH", "database": "DB",
        "authenticationType": "oAuthClientCredentials", "oAuthClientConfig": oauth
    }}))
    .unwrap();
    let client = json!({"clientId": "cid", "authorityUrl": "https://idp", "resource": "r",
                        "publicCertificateThumbprint": "AB:CD",
                        "oauthPrivateKey": {"userFilename": "k.pem", "content": "PEM"}});
    let reg = registration(&json!({
        "connectionKey": "sf-oauth",
        "connection": {"technology": "Snowflake", "hostname": "h.snowflakecomputing.com", "port": 443,
                       "warehouse": "WH", "role": "R", "authenticationType": "oAuthClientCredentials",
                       "oAuthClientConfig": client},
        "nativeIntegration": {"type": "Snowflake", "autoBootstrap": false, "config": {
            "host": "h.snowflakecomputing.com", "port": 443, "warehouse": "WH", "database": "DB",
            "authenticationType": "oAuthClientCredentials", "oAuthClientConfig": client}}
    }))
    .unwrap();
    assert_eq!(first_difference(&req.canon, &reg.canon), None);
    let mut other = reg.canon.clone();
    other.insert("oAuthClientConfig.oauthPrivateKey.content".into(), json!("OTHER"));
    assert_eq!(
        first_difference(&req.canon, &other).as_deref(),
        Some("oAuthClientConfig.oauthPrivateKey.content")
    );
    // both a secret and a certificate is refused
    let err = script_request(&json!({"type": "Snowflake", "autoBootstrap": false, "config": {
        "host": "h", "warehouse": "WH", "database": "DB", "authenticationType": "oAuthClientCredentials",
        "oAuthClientConfig": {"provider": "Okta", "clientId": "c", "authorityUrl": "u", "clientSecret": "s",
                              "publicCertificateThumbprint": "t", "oauthPrivateKey": "k"}
    }}))
    .unwrap_err();
    assert!(err.message.contains("not both"), "{}", err.message);
}
