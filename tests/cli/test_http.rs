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
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 1
    --- stdout
    --- stderr
    error: invalid Immuta URL acme.hosted.immutacloud.com: it has no scheme
      = help: did you mean https://acme.hosted.immutacloud.com?
    ");
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
    insta::assert_snapshot!(out.snapshot(), @"
    exit: 1
    --- stdout
    --- stderr
    error: TLS with Immuta at https://127.0.0.1:[PORT] failed (POST /data/object/search): the handshake failed (received corrupt message of type InvalidContentType); the server may not speak TLS on this port
      = help: check that the URL's scheme and port are right and that the server's certificate is valid and trusted (a proxy that re-signs TLS needs its CA in the system trust store)
    ");
}
