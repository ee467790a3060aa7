//! The Databricks checks: the SQL warehouse, the metastore and the runner's CREATE CATALOG on
//! it, the catalog's name, the connection's service principal, and the audit tables of
//! `system.access`.

use super::*;

pub(super) async fn databricks_checks(
    wh: &dyn WarehouseProbe,
    shared: &Shared,
    conn: &Connection,
    db: &connctl_spec::Databricks,
) -> Vec<Check> {
    let mut out = Vec::new();
    // The warehouse answering the metastore query proves it exists and runs statements.
    let metastore = shared
        .workspace_query(wh, conn, db, statements::DATABRICKS_METASTORE)
        .await;
    let (warehouse, attached) = match &metastore {
        Ok(rows) => {
            let id = rows.rows.first().and_then(|r| r.first().cloned().flatten());
            let attached = match id {
                Some(id) if !id.trim().is_empty() => Verdict::Pass,
                _ => fail(
                    "the workspace has no Unity Catalog metastore attached",
                    None,
                    "docs/preflight.md#databricks (create a metastore and assign it to the workspace in the account console)",
                ),
            };
            (Verdict::Pass, attached)
        }
        Err(ProbeError::NotFound(m)) => (
            fail(
                format!(
                    "the SQL warehouse of httpPath {} was not found: {m}",
                    db.http_path
                ),
                None,
                "docs/preflight.md#databricks (check `httpPath` in the YAML against the warehouse's connection details)",
            ),
            not_checked("the SQL warehouse did not answer"),
        ),
        Err(ProbeError::Statement(m)) if m.to_ascii_lowercase().contains("metastore") => (
            Verdict::Pass,
            fail(
                format!("no Unity Catalog metastore: {m}"),
                None,
                "docs/preflight.md#databricks (create a metastore and assign it to the workspace in the account console)",
            ),
        ),
        Err(e) => (
            unanswered(e.clone(), statements::DATABRICKS_METASTORE.into()),
            unanswered(e.clone(), statements::DATABRICKS_METASTORE.into()),
        ),
    };
    out.push(check(CheckId::DatabricksWarehouse, warehouse));
    out.push(check(CheckId::DatabricksMetastore, attached));

    let verdict = create_catalog(wh, shared, conn, db).await;
    out.push(check(CheckId::DatabricksCreateCatalog, verdict));

    let sql = statements::databricks_catalog(&db.catalog);
    let verdict = match wh.query(conn, &sql).await {
        Ok(rows)
            if rows
                .column("catalog")
                .iter()
                .any(|c| c.is_some_and(|c| c.eq_ignore_ascii_case(&db.catalog))) =>
        {
            fail(
                format!(
                    "catalog {} already exists; the setup script creates it",
                    db.catalog
                ),
                Some(format!(
                    "DROP CATALOG {} CASCADE;  -- only if it is an unused leftover",
                    db_ident(&db.catalog)
                )),
                "docs/preflight.md#databricks (or name another `catalog` in the YAML)",
            )
        }
        Ok(_) => Verdict::Pass,
        Err(e) => unanswered(e, sql),
    };
    out.push(check(CheckId::DatabricksCatalogFree, verdict));

    out.push(check(
        CheckId::DatabricksServicePrincipal,
        service_principal(wh, conn, db).await,
    ));

    if db.audit.as_ref().is_some_and(|a| a.enabled) {
        let mut verdict = Verdict::Pass;
        for sql in statements::DATABRICKS_SYSTEM_TABLES {
            match shared.workspace_query(wh, conn, db, sql).await {
                Ok(_) => {}
                Err(ProbeError::Statement(m)) => {
                    verdict = fail(
                        format!("`{sql}` failed: {m}"),
                        Some(
                            "GRANT USE CATALOG ON CATALOG system TO `<principal>`; GRANT USE SCHEMA ON SCHEMA system.access TO `<principal>`; GRANT SELECT ON TABLE system.access.audit TO `<principal>`; GRANT SELECT ON TABLE system.access.table_lineage TO `<principal>`; GRANT SELECT ON TABLE system.access.column_lineage TO `<principal>`; (and enable the schema: databricks system-schemas enable <metastore-id> access)"
                                .into(),
                        ),
                        DOCS_AUDIT,
                    );
                    break;
                }
                Err(e) => {
                    verdict = unanswered(e, sql.into());
                    break;
                }
            }
        }
        out.push(check(CheckId::DatabricksSystemAccess, verdict));
    }
    out
}

/// Most holders of CREATE CATALOG asked about as groups of the runner.
const MAX_GROUPS_ASKED: usize = 20;

/// Whether the runner (`current_user()`, the executor's principal) holds CREATE CATALOG (or ALL
/// PRIVILEGES) on the metastore: granted to it by name, or to an account group it belongs to
/// (`is_account_group_member`).
async fn create_catalog(
    wh: &dyn WarehouseProbe,
    shared: &Shared,
    conn: &Connection,
    db: &connctl_spec::Databricks,
) -> Verdict {
    let by_hand = || {
        format!(
            "{}; {}",
            statements::DATABRICKS_CURRENT_USER,
            statements::DATABRICKS_METASTORE_GRANTS
        )
    };
    let runner = match shared
        .workspace_query(wh, conn, db, statements::DATABRICKS_CURRENT_USER)
        .await
    {
        Ok(rows) => match rows.rows.first().and_then(|r| r.first().cloned().flatten()) {
            Some(user) if !user.trim().is_empty() => user,
            _ => return not_checked("current_user() answered no user"),
        },
        Err(e) => return unanswered(e, by_hand()),
    };
    let grants = match shared
        .workspace_query(wh, conn, db, statements::DATABRICKS_METASTORE_GRANTS)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unanswered(e, by_hand()),
    };
    let principals = grants.column("Principal");
    let mut holders: Vec<&str> = Vec::new();
    for (principal, action) in principals.iter().zip(grants.column("ActionType")) {
        let holds = action.is_some_and(|a| {
            a.eq_ignore_ascii_case("CREATE CATALOG") || a.eq_ignore_ascii_case("ALL PRIVILEGES")
        });
        if let (true, Some(p)) = (holds, principal)
            && !holders.contains(p)
        {
            holders.push(p);
        }
    }
    if holders.iter().any(|h| h.eq_ignore_ascii_case(&runner)) {
        return Verdict::Pass;
    }
    for group in holders.iter().take(MAX_GROUPS_ASKED) {
        let sql = statements::databricks_group_member(group);
        match shared.workspace_query(wh, conn, db, &sql).await {
            Ok(rows) => {
                let member = rows
                    .rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                if member {
                    return Verdict::Pass;
                }
            }
            Err(e) => return unanswered(e, sql),
        }
    }
    let held_by = if holders.is_empty() {
        "nobody holds it".to_owned()
    } else {
        format!("held by {}", holders.join(", "))
    };
    fail(
        format!(
            "the runner {runner} holds no CREATE CATALOG on the metastore, directly or through its groups ({held_by})"
        ),
        Some(format!(
            "GRANT CREATE CATALOG ON METASTORE TO {};",
            db_ident(&runner)
        )),
        DOCS_DATABRICKS,
    )
}

/// Whether the connection's own credential (the YAML's `auth`, which Immuta will use) is
/// accepted by the workspace and belongs to a service principal (SCIM `Me`).
async fn service_principal(
    wh: &dyn WarehouseProbe,
    conn: &Connection,
    db: &connctl_spec::Databricks,
) -> Verdict {
    const DOCS_SP: &str = "docs/preflight.md#databricks (registration guide, step 1: create a service principal with a personal access token, or an OAuth client, and put it in `auth`)";
    let what = match &db.auth {
        connctl_spec::DatabricksAuth::Token { .. } => "token",
        connctl_spec::DatabricksAuth::OAuthM2M { .. } => "OAuth client",
    };
    match wh.databricks_principal(conn, db).await {
        Ok(p) => match p.kind {
            PrincipalKind::ServicePrincipal => Verdict::Pass,
            PrincipalKind::User => fail(
                format!("the connection's {what} belongs to the user {}, not a service principal", p.name),
                None,
                DOCS_SP,
            ),
            PrincipalKind::Unknown => not_checked(format!(
                "SCIM Me named {} but not whether it is a service principal",
                p.name
            )),
        },
        Err(ProbeError::Unauthorized(m)) => fail(
            format!("Databricks refused the connection's {what}: {m}"),
            None,
            DOCS_SP,
        ),
        Err(ProbeError::Secret(m)) => fail(
            format!("the connection's {what} cannot be read: {m}"),
            None,
            "docs/security.md#secrets-are-references (set the variable, file or provider secret that `auth` names)",
        ),
        Err(ProbeError::NoCredentials) => Verdict::NotChecked {
            why: "not checked: connctl reaches Databricks only through the `databricks` executor; run this by hand with the connection's token".into(),
            statement: Some(statements::databricks_scim_me(&db.workspace_url)),
        },
        Err(e) => not_checked(format!("SCIM Me failed: {e}")),
    }
}
