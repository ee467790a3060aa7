//! The Databricks checks: the SQL warehouse, the metastore and CREATE CATALOG on it, the
//! catalog's name, and the audit tables of `system.access`.

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

    let sql = statements::DATABRICKS_METASTORE_GRANTS;
    let verdict = match shared.workspace_query(wh, conn, db, sql).await {
        Ok(rows) => {
            let any = rows.column("ActionType").iter().any(|a| {
                a.is_some_and(|a| {
                    a.eq_ignore_ascii_case("CREATE CATALOG") || a.eq_ignore_ascii_case("ALL PRIVILEGES")
                })
            });
            if any {
                Verdict::Pass
            } else {
                fail(
                    "the runner holds no CREATE CATALOG on the metastore",
                    Some("GRANT CREATE CATALOG ON METASTORE TO `<the user or service principal running the script>`;".into()),
                    DOCS_DATABRICKS,
                )
            }
        }
        Err(e) => unanswered(e, sql.into()),
    };
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
