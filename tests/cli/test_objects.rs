//! Data objects as code (`objects:` under a connection, issue #17): validation, plan, apply,
//! drift and the cascade gate, against the emulator's object tree.

use crate::support::TestEnv;

const CONNECTION: &str = "version: 1
connections:
  - key: sf-prod
    technology: Snowflake
    host: acme.snowflakecomputing.com
    warehouse: WH
    database: IMMUTA_DB
    role: R
    auth: { type: userPassword, username: U, password: { env: SF_PASSWORD } }
";

#[test]
fn validate_names_a_bad_object_path_at_file_line_col() {
    let env = TestEnv::new();
    env.write(
        "c.yaml",
        &format!(
            "{CONNECTION}    objects:\n      - path: SALES\n        active: true\n      - path: 'SALES/\"odd/name/T1'\n        active: false\n      - path: SALES/PUBLIC\n"
        ),
    );
    insta::assert_snapshot!(env.snap(&["validate", "c.yaml"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    error: object path `SALES/"odd/name/T1` has a quoted segment without its closing `"`
      --> c.yaml:13:15
       |
    13 |       - path: 'SALES/"odd/name/T1'
       |               ^^^^^^^^^^^^^^^^^^^^
       = help: segments are joined with `/`; write a segment holding `/` or `"`, or starting or ending with a space, in double quotes, with `""` for a literal quote: `DB/"odd/name"/T1`

    error: `objects[2]` sets neither `active` nor `activateNewChildren`
      --> c.yaml:15:15
       |
    15 |       - path: SALES/PUBLIC
       |               ^^^^^^^^^^^^
       = help: give at least one; an object connctl changes nothing on need not be listed
    error: 2 problem(s) found; nothing was planned, sent or written
    "#);
}
