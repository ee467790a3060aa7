//! How connctl talks HTTP, as a user sees it: a URL without a scheme, a server that does not
//! speak TLS.

use crate::support::TestEnv;

#[test]
fn an_immuta_url_without_a_scheme_says_so_with_a_hint() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    let out = env.run(&[
        "plan",
        "--immuta-url",
        "acme.hosted.immutacloud.com",
        "valid/all-variants/databricks.yaml",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("did you mean https://acme.hosted.immutacloud.com?"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("relative URL"), "{}", out.stderr);
}

#[test]
fn a_server_without_tls_is_reported_as_tls() {
    let env = TestEnv::new();
    env.fixture("valid/all-variants");
    // The emulator speaks plain HTTP: an https:// URL to it fails the TLS handshake.
    let https = env.url().replace("http://", "https://");
    let out = env.run(&[
        "plan",
        "--immuta-url",
        &https,
        "valid/all-variants/databricks.yaml",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("TLS with Immuta at https://127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("handshake failed"), "{}", out.stderr);
    assert!(!out.stderr.contains("refused or unreachable"), "{}", out.stderr);
}
