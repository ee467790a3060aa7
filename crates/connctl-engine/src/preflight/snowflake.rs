//! The Snowflake checks: the setup role's privileges (through the roles granted to it), the
//! warehouse, and the Immuta database's name.

use super::*;

pub(super) async fn snowflake_checks(
    wh: &dyn WarehouseProbe,
    conn: &Connection,
    sf: &connctl_spec::Snowflake,
) -> Vec<Check> {
    let mut out = Vec::new();
    let role = setup_role(wh, conn).await;
    let grants_sql = statements::snowflake_grants(role.as_deref().unwrap_or("<setup role>"));
    match async { held_with_grant_option(wh, conn, role.as_deref().map_err(Clone::clone)?).await }.await {
        Ok(held) => {
            let role = role.as_deref().unwrap_or_default();
            for p in SnowflakePrivilege::ALL {
                let verdict = if held.contains(&p) {
                    Verdict::Pass
                } else {
                    fail(
                        format!(
                            "role {} holds no {} ON ACCOUNT WITH GRANT OPTION, directly or through its roles",
                            role,
                            p.as_sql()
                        ),
                        Some(format!(
                            "GRANT {} ON ACCOUNT TO ROLE {} WITH GRANT OPTION;",
                            p.as_sql(),
                            sf_ident(role)
                        )),
                        DOCS_SNOWFLAKE,
                    )
                };
                out.push(check(CheckId::SnowflakePrivilege(p), verdict));
            }
        }
        Err(e) => {
            for p in SnowflakePrivilege::ALL {
                out.push(check(
                    CheckId::SnowflakePrivilege(p),
                    unanswered(e.clone(), grants_sql.clone()),
                ));
            }
        }
    }

    let sql = statements::snowflake_warehouse(&sf.warehouse);
    let verdict = match wh.query(conn, &sql).await {
        Ok(rows) if rows.column("name").contains(&Some(sf.warehouse.as_str())) => Verdict::Pass,
        Ok(_) => fail(
            format!("no warehouse named {} is visible to the role", sf.warehouse),
            Some(format!(
                "CREATE WAREHOUSE {} WITH WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60;",
                sf_ident(&sf.warehouse)
            )),
            DOCS_SNOWFLAKE,
        ),
        Err(e) => unanswered(e, sql),
    };
    out.push(check(CheckId::SnowflakeWarehouse, verdict));

    let sql = statements::snowflake_database(&sf.database);
    let verdict = match wh.query(conn, &sql).await {
        Ok(rows) if rows.column("name").contains(&Some(sf.database.as_str())) => fail(
            format!(
                "database {} already exists; the setup script creates it",
                sf.database
            ),
            Some(format!(
                "DROP DATABASE {};  -- only if it is an unused leftover",
                sf_ident(&sf.database)
            )),
            "docs/preflight.md#snowflake (or name another `database` in the YAML)",
        ),
        Ok(_) => Verdict::Pass,
        Err(e) => unanswered(e, sql),
    };
    out.push(check(CheckId::SnowflakeDatabaseFree, verdict));
    out
}

/// The account privileges `role` holds WITH GRANT OPTION, through itself and every role granted
/// to it (`SHOW GRANTS TO ROLE`, followed through `USAGE` on `ROLE` grants; cycles are cut).
async fn held_with_grant_option(
    wh: &dyn WarehouseProbe,
    conn: &Connection,
    role: &str,
) -> Result<Vec<SnowflakePrivilege>, ProbeError> {
    let mut held = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut queue = vec![role.to_owned()];
    while let Some(r) = queue.pop() {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(&r)) || seen.len() > 64 {
            continue;
        }
        seen.push(r.clone());
        let rows = wh.query(conn, &statements::snowflake_grants(&r)).await?;
        let privilege = rows.column("privilege");
        let granted_on = rows.column("granted_on");
        let name = rows.column("name");
        let option = rows.column("grant_option");
        for i in 0..rows.rows.len() {
            let on = granted_on.get(i).copied().flatten().unwrap_or("");
            let p = privilege.get(i).copied().flatten().unwrap_or("");
            if on.eq_ignore_ascii_case("ROLE") && p.eq_ignore_ascii_case("USAGE") {
                if let Some(Some(n)) = name.get(i) {
                    queue.push((*n).to_owned());
                }
            } else if on.eq_ignore_ascii_case("ACCOUNT")
                && option
                    .get(i)
                    .copied()
                    .flatten()
                    .is_some_and(|o| o.eq_ignore_ascii_case("true"))
                && let Some(found) = SnowflakePrivilege::ALL
                    .into_iter()
                    .find(|x| x.as_sql().eq_ignore_ascii_case(p))
                && !held.contains(&found)
            {
                held.push(found);
            }
        }
    }
    Ok(held)
}
