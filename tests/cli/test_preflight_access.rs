//! `connctl preflight`, the checks of who is asking: the tenant's connection API, the API key's
//! Immuta permissions, the runner's CREATE CATALOG and the Databricks service principal of the
//! connection's own credentials. Each prerequisite left out of the emulator fails exactly its
//! check, with its fix, exit 1.

use crate::support::TestEnv;
use crate::test_preflight::{DATABRICKS, env_with, failures, missing};

fn fail_count(stdout: &str) -> usize {
    stdout.lines().filter(|l| l.starts_with("  FAIL")).count()
}

#[test]
fn preflight_without_the_connection_api_fails_only_that_check() {
    let out = missing("immuta:connection-api").run(&["preflight", "c", "--target", "sf-prod"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert_eq!(fail_count(&out.stdout), 1, "{}", out.stdout);
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the connection API is available
          the tenant does not serve the connection API: POST /data/object/search failed with 404: Not Found
          docs: docs/preflight.md#immuta (the connection API is in public preview on SaaS and needs 2025.1+ self-managed; ask Immuta support to enable it)
    ");
    // The key cannot be looked up without the API: not checked, not passed.
    assert!(
        out.stdout
            .contains("n/a   the connection key is free\n        the connection API is not available"),
        "{}",
        out.stdout
    );
}

#[test]
fn preflight_when_the_key_user_lacks_the_permission_fails_that_check() {
    let out = missing("immuta:permission").run(&["preflight", "c", "--target", "sf-prod"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN
          the API key's user connctl-admin@example.com lacks CREATE_DATA_SOURCE
          docs: docs/preflight.md#immuta (a user admin grants it in Immuta: People → the user → Permissions; or use the key of a user who holds it)
    ");
}

#[test]
fn preflight_when_only_another_principal_may_create_catalogs_fails_that_check() {
    let out = missing("databricks:runner-create-catalog").run(&["preflight", "c"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @r#"
    FAIL  the runner holds CREATE CATALOG on the metastore
          the runner platform-admin@example.com holds no CREATE CATALOG on the metastore, directly or through its groups (held by data-eng@example.com)
          fix:  GRANT CREATE CATALOG ON METASTORE TO `platform-admin@example.com`;
          docs: docs/preflight.md#databricks (registration guide: "Databricks privileges for the user registering the connection")
    "#);
}

#[test]
fn preflight_with_a_refused_service_principal_token_fails_that_check() {
    let out = missing("databricks:service-principal").run(&["preflight", "c"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the connection's credentials authenticate a service principal
          Databricks refused the connection's token: HTTP 401: Invalid access token.
          docs: docs/preflight.md#databricks (registration guide, step 1: create a service principal with a personal access token, or an OAuth client, and put it in `auth`)
    ");
    assert!(!out.stdout.contains("canary-dbx-token-7c4"), "{}", out.stdout);
}

#[test]
fn preflight_with_a_user_token_instead_of_a_service_principal_fails_that_check() {
    let out = missing("databricks:service-principal-user").run(&["preflight", "c"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the connection's credentials authenticate a service principal
          the connection's token belongs to the user jane.doe@example.com, not a service principal
          docs: docs/preflight.md#databricks (registration guide, step 1: create a service principal with a personal access token, or an OAuth client, and put it in `auth`)
    ");
}

/// The connection's OAuth client gets a token from the workspace's OIDC endpoint, then SCIM
/// `Me` with it; a refused client fails the check.
#[test]
fn preflight_with_an_oauth_client_checks_it_through_the_oidc_endpoint() {
    let oauth = DATABRICKS.replace(
        "auth: { type: token, token: { env: CONNCTL_TEST_DBX_TOKEN } }",
        "auth: { type: oAuthM2M, clientId: 6e1c5f2a-8d3b-4c4e-9a7f-3b2d1c0e9f8a, clientSecret: { env: CONNCTL_TEST_DBX_TOKEN }, authorityUrl: https://dbc-1234.cloud.databricks.com/oidc/v1/token }",
    );
    let env = env_with(vec![], vec![]);
    env.write("c/dbx.yaml", &oauth);
    let out = env.run(&["preflight", "c", "--target", "dbx-prod"]);
    assert_eq!(out.code, 0, "{}", out.snapshot());
    assert!(
        out.stdout
            .contains("pass  the connection's credentials authenticate a service principal"),
        "{}",
        out.stdout
    );
    assert_eq!(env.count_requests("POST", "/oidc/v1/token"), 1);
    assert_eq!(env.count_requests("GET", "/api/2.0/preview/scim/v2/Me"), 1);

    let env = missing("databricks:service-principal");
    env.write("c/dbx.yaml", &oauth);
    let out = env.run(&["preflight", "c", "--target", "dbx-prod"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert_eq!(fail_count(&out.stdout), 1, "{}", out.stdout);
    assert!(!out.stdout.contains("canary-dbx-token-7c4"), "{}", out.stdout);
}

/// A token reference that does not resolve fails the check naming the reference, not a value.
#[test]
fn preflight_with_an_unresolvable_token_names_the_reference() {
    let env = TestEnv::with_emulator(Default::default());
    env.write(
        "c/dbx.yaml",
        &DATABRICKS.replace("CONNCTL_TEST_DBX_TOKEN", "CONNCTL_TEST_UNSET_TOKEN"),
    );
    let out = env.run(&["preflight", "c"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    insta::assert_snapshot!(failures(&out.stdout), @"
    FAIL  the connection's credentials authenticate a service principal
          the connection's token cannot be read: environment variable CONNCTL_TEST_UNSET_TOKEN is not set
          docs: docs/security.md#secrets-are-references (set the variable, file or provider secret that `auth` names)
    ");
}

/// The status word preflight printed for check `title` of the one connection shown.
fn verdict<'a>(stdout: &'a str, title: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.trim_end().ends_with(title))
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .unwrap_or_else(|| panic!("no check `{title}`:\n{stdout}"))
}

/// A hostile network on each of preflight's Immuta reads (an HTML error page, a cut-off or
/// non-JSON 200, a reset, every retry of it): the check that read it never passes, and never
/// fails on what it could not read either: "not checked", except that an Immuta which does not
/// answer fails its own check.
#[test]
fn preflight_never_passes_a_check_whose_answer_it_could_not_read() {
    const PERMISSION: &str = "the API key's user holds CREATE_DATA_SOURCE and APPLICATION_ADMIN";
    let cases = [
        ("GET", "/bim/rpc/user/current", "truncated", PERMISSION, "n/a"),
        ("GET", "/bim/rpc/user/current", "html502", PERMISSION, "n/a"),
        (
            "GET",
            "/integrations",
            "nonjson200",
            "no integration exists on the host",
            "n/a",
        ),
        (
            "GET",
            "/integrations",
            "reset",
            "Immuta answers and accepts the API key",
            "FAIL",
        ),
        (
            "POST",
            "/data/object/search",
            "html502",
            "the connection API is available",
            "n/a",
        ),
        (
            "GET",
            "/data/connection/sf-prod",
            "truncated",
            "the connection key is free",
            "n/a",
        ),
    ];
    // Each case waits out the client's retries (seconds): they run side by side.
    std::thread::scope(|scope| {
        for case in cases {
            scope.spawn(move || hostile_preflight_case(case));
        }
    });
}

fn hostile_preflight_case((method, path, kind, title, want): (&str, &str, &str, &str, &str)) {
    let env = env_with(vec![], vec![]);
    env.admin(
        "POST",
        "/_emulator/faults",
        serde_json::json!({"method": method, "path": path, "kind": kind, "count": 50}),
    );
    let out = env.run(&["preflight", "c", "--target", "sf-prod"]);
    crate::support::assert_no_panic(&format!("{kind} on {method} {path}"), &out.stderr);
    let got = verdict(&out.stdout, title);
    assert_eq!(got, want, "{kind} on {method} {path}: `{title}`:\n{}", out.stdout);
    assert!(
        !out.stdout.contains(crate::support::API_KEY) && !out.stderr.contains(crate::support::API_KEY),
        "the API key was printed"
    );
}
