//! The checks of who is asking: the connection API on the tenant, the API key's permissions, the
//! runner's CREATE CATALOG, and the connection's Databricks service principal.

use super::*;

fn verdict(r: &Report, id: CheckId) -> Verdict {
    r.connections[0]
        .checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.verdict.clone())
        .unwrap()
}

#[tokio::test]
async fn a_tenant_without_the_connection_api_fails_that_check_only() {
    let mut f = snowflake_fake();
    f.connection_api = Some(ProbeError::NotFound("404 Not Found".into()));
    let r = report(&f, SNOWFLAKE, false).await;
    assert_eq!(failed(&r), vec![CheckId::ConnectionApi]);
    // A 404 for the key says nothing when the API itself is missing.
    assert_eq!(
        verdict(&r, CheckId::ConnectionKeyFree),
        Verdict::NotChecked {
            why: "the connection API is not available".into(),
            statement: None
        }
    );
}

#[tokio::test]
async fn the_key_users_permissions_fail_when_one_is_lacking_and_are_not_checked_without_the_read() {
    let mut f = snowflake_fake();
    f.user = Some(Ok(ImmutaUser {
        name: Some("ci-bot".into()),
        permissions: vec!["APPLICATION_ADMIN".into()],
    }));
    let r = report(&f, SNOWFLAKE, false).await;
    assert_eq!(failed(&r), vec![CheckId::ImmutaPermission]);
    match verdict(&r, CheckId::ImmutaPermission) {
        Verdict::Fail { why, .. } => {
            assert_eq!(why, "the API key's user ci-bot lacks CREATE_DATA_SOURCE")
        }
        other => panic!("{other:?}"),
    }

    f.user = Some(Err(ProbeError::NotFound("404".into())));
    let r = report(&f, SNOWFLAKE, false).await;
    assert!(!r.failed());
    match verdict(&r, CheckId::ImmutaPermission) {
        Verdict::NotChecked { why, .. } => assert!(why.contains("People"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn create_catalog_counts_only_for_the_runner_or_its_groups() {
    let grants_to = |who: &str| {
        Ok(rows(
            &["Principal", "ActionType", "ObjectType"],
            &[&[who, "CREATE CATALOG", "METASTORE"]],
        ))
    };
    // Held by a group the runner belongs to.
    let mut f = databricks_fake();
    f.answers.insert(
        statements::DATABRICKS_METASTORE_GRANTS.into(),
        grants_to("admins"),
    );
    f.answers.insert(
        statements::databricks_group_member("admins"),
        Ok(rows(&["member"], &[&["true"]])),
    );
    assert!(!report(&f, DATABRICKS, false).await.failed());

    // Held by someone else only.
    let mut f = databricks_fake();
    f.answers.insert(
        statements::DATABRICKS_METASTORE_GRANTS.into(),
        grants_to("other@example.com"),
    );
    f.answers.insert(
        statements::databricks_group_member("other@example.com"),
        Ok(rows(&["member"], &[&["false"]])),
    );
    let r = report(&f, DATABRICKS, false).await;
    assert_eq!(failed(&r), vec![CheckId::DatabricksCreateCatalog]);
    match verdict(&r, CheckId::DatabricksCreateCatalog) {
        Verdict::Fail { why, fix } => {
            assert!(why.contains("held by other@example.com"), "{why}");
            assert_eq!(
                fix.statement.as_deref(),
                Some("GRANT CREATE CATALOG ON METASTORE TO `runner`;")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_connection_credential_must_be_an_accepted_service_principal() {
    let cases = [
        Err(ProbeError::Unauthorized("401 Invalid access token.".into())),
        Ok(Principal {
            name: "jane@example.com".into(),
            kind: PrincipalKind::User,
        }),
        Err(ProbeError::Secret("environment variable X is not set".into())),
    ];
    for case in cases {
        let mut f = databricks_fake();
        f.principal = Some(case.clone());
        let r = report(&f, DATABRICKS, false).await;
        assert_eq!(failed(&r), vec![CheckId::DatabricksServicePrincipal], "{case:?}");
    }

    let mut f = databricks_fake();
    f.principal = Some(Err(ProbeError::NoCredentials));
    let r = report(&f, DATABRICKS, false).await;
    assert!(!r.failed());
    match verdict(&r, CheckId::DatabricksServicePrincipal) {
        Verdict::NotChecked { statement, .. } => assert_eq!(
            statement.as_deref(),
            Some(
                "curl -H \"Authorization: Bearer $TOKEN\" https://dbc-1.cloud.databricks.com/api/2.0/preview/scim/v2/Me"
            )
        ),
        other => panic!("{other:?}"),
    }
}
