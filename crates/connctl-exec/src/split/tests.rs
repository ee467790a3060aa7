use super::*;

fn texts(script: &str, d: SqlDialect) -> Vec<&str> {
    split_statements(script, d)
        .expect("splits")
        .into_iter()
        .map(|s| s.text)
        .collect()
}

fn db(script: &str) -> Vec<&str> {
    texts(script, SqlDialect::Databricks)
}

fn sf(script: &str) -> Vec<&str> {
    texts(script, SqlDialect::Snowflake)
}

#[test]
fn empty_input_gives_no_statements() {
    assert!(db("").is_empty());
    assert!(db("   \n\t ").is_empty());
    assert!(sf(";;;").is_empty());
}

#[test]
fn plain_statements() {
    assert_eq!(db("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn trailing_statement_without_semicolon() {
    assert_eq!(db("SELECT 1;\nSELECT 2\n"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn single_quotes_with_doubled_quote() {
    assert_eq!(
        db("SELECT 'it''s;ok'; SELECT 2"),
        ["SELECT 'it''s;ok'", "SELECT 2"]
    );
    assert_eq!(sf("SELECT 'a;b'; SELECT 'c'"), ["SELECT 'a;b'", "SELECT 'c'"]);
}

#[test]
fn backslash_escaped_quote_on_databricks() {
    assert_eq!(
        db(r"SELECT 'it\'s;ok'; SELECT 2"),
        [r"SELECT 'it\'s;ok'", "SELECT 2"]
    );
}

#[test]
fn double_quotes() {
    assert_eq!(
        sf(r#"CREATE ROLE "u;v"; SELECT 1"#),
        [r#"CREATE ROLE "u;v""#, "SELECT 1"]
    );
    assert_eq!(db(r#"SELECT "u;v"; SELECT 1"#), [r#"SELECT "u;v""#, "SELECT 1"]);
}

#[test]
fn backticks() {
    assert_eq!(
        db("GRANT USE CATALOG ON CATALOG `my;cat` TO `svc`; SELECT 1"),
        ["GRANT USE CATALOG ON CATALOG `my;cat` TO `svc`", "SELECT 1"]
    );
}

#[test]
fn line_comments_with_semicolons() {
    assert_eq!(
        db("-- step 1; grant\nGRANT SELECT ON t TO x; -- done; really\nSELECT 1"),
        [
            "-- step 1; grant\nGRANT SELECT ON t TO x",
            "-- done; really\nSELECT 1"
        ]
    );
}

#[test]
fn block_comments_with_semicolons() {
    assert_eq!(
        db("/* a; b */ SELECT 1; /* c;\n d */ SELECT 2"),
        ["/* a; b */ SELECT 1", "/* c;\n d */ SELECT 2"]
    );
}

#[test]
fn comment_only_segments_are_dropped() {
    assert_eq!(db("SELECT 1; -- trailing; comment\n"), ["SELECT 1"]);
    assert_eq!(db("/* nothing */;\n-- here\n;SELECT 1"), ["SELECT 1"]);
    assert!(db("-- only a comment").is_empty());
}

#[test]
fn dollar_bodies_with_semicolons() {
    let script = "CREATE OR REPLACE PROCEDURE p() RETURNS STRING LANGUAGE SQL AS $$\nBEGIN\n  \
                  LET x := 'x;y';\n  RETURN x;\nEND;\n$$;\nCALL p();";
    let got = sf(script);
    assert_eq!(got.len(), 2);
    assert!(got[0].ends_with("END;\n$$"));
    assert_eq!(got[1], "CALL p()");
    assert_eq!(
        sf("EXECUTE IMMEDIATE $$ SELECT 1; SELECT 2; $$; SELECT 3").len(),
        2
    );
}

#[test]
fn tagged_dollar_bodies() {
    let got = sf("SELECT $tag$ a; b $tag$; SELECT 2");
    assert_eq!(got, ["SELECT $tag$ a; b $tag$", "SELECT 2"]);
}

#[test]
fn databricks_python_udf_body() {
    let script =
        "CREATE FUNCTION f(x INT) RETURNS INT LANGUAGE PYTHON AS $$\nreturn x; # ;\n$$;\nSELECT f(1)";
    let got = db(script);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].ends_with("$$"));
}

#[test]
fn unquoted_begin_end_block_is_one_statement() {
    let script = "BEGIN\n  SELECT 1;\n  IF (1 = 1) THEN SELECT 2; END IF;\n  CASE WHEN true THEN SELECT 3; END CASE;\nEND;\nSELECT 4;";
    let got = db(script);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("BEGIN") && got[0].ends_with("END"));
    assert_eq!(got[1], "SELECT 4");
}

#[test]
fn snowflake_declare_block_is_one_statement() {
    let script = "DECLARE\n  n INTEGER DEFAULT 0;\nBEGIN\n  n := 1;\n  RETURN n;\nEND;\nSELECT 1";
    let got = sf(script);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("DECLARE") && got[0].ends_with("END"));
}

#[test]
fn databricks_declare_variable_is_a_statement() {
    assert_eq!(
        db("DECLARE VARIABLE v INT DEFAULT 1; SELECT v"),
        ["DECLARE VARIABLE v INT DEFAULT 1", "SELECT v"]
    );
}

#[test]
fn begin_and_end_as_column_names_do_not_open_blocks() {
    assert_eq!(
        db("CREATE TABLE t (begin INT, end INT); SELECT 1"),
        ["CREATE TABLE t (begin INT, end INT)", "SELECT 1"]
    );
    assert_eq!(
        sf("SELECT t.begin FROM t; SELECT 2"),
        ["SELECT t.begin FROM t", "SELECT 2"]
    );
}

#[test]
fn unquoted_procedure_bodies_stay_whole() {
    let script = "CREATE OR REPLACE PROCEDURE p() RETURNS INT LANGUAGE SQL AS\nDECLARE\n  n INT DEFAULT 1;\nBEGIN\n  \
                  FOR i IN 1 TO 3 DO\n    n := n + i;\n  END FOR;\n  RETURN n;\nEND;\nCALL p();";
    assert_eq!(sf(script).len(), 2, "{:?}", sf(script));
    let dbx = "CREATE PROCEDURE p() LANGUAGE SQL AS BEGIN\n  lbl: BEGIN SELECT 1; END lbl;\n  \
               WHILE true DO SELECT 2; END WHILE;\nEND;\nCALL p()";
    assert_eq!(db(dbx).len(), 2, "{:?}", db(dbx));
}

#[test]
fn transactions_are_not_blocks() {
    assert_eq!(sf("BEGIN; SELECT 1; COMMIT;"), ["BEGIN", "SELECT 1", "COMMIT"]);
    assert_eq!(
        sf("BEGIN TRANSACTION; SELECT 1; COMMIT"),
        ["BEGIN TRANSACTION", "SELECT 1", "COMMIT"]
    );
}

#[test]
fn case_expressions_do_not_swallow_statements() {
    assert_eq!(
        db("SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t; SELECT 2"),
        ["SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t", "SELECT 2"]
    );
}

#[test]
fn unclosed_block_is_rejected_with_line() {
    let err =
        split_statements("SELECT 1;\nBEGIN\n SELECT 2;\n", SqlDialect::Databricks).expect_err("unclosed");
    assert_eq!(err.line, 2);
    assert!(err.message.contains("BEGIN"));
}

#[test]
fn tokenizer_error_reports_line_not_text() {
    let err = split_statements("SELECT 1;\nSELECT 'secret-value", SqlDialect::Databricks)
        .expect_err("unterminated");
    assert_eq!(err.line, 2);
    assert!(!err.to_string().contains("secret-value"), "{err}");
}

#[test]
fn keywords_and_lines() {
    let s = split_statements(
        "-- header\n\ngrant select on t to x;\n  CREATE USER u",
        SqlDialect::Snowflake,
    )
    .expect("splits");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].keyword, "GRANT");
    assert_eq!(s[0].line, 1, "the leading comment belongs to the statement");
    assert_eq!(s[1].keyword, "CREATE");
    assert_eq!(s[1].line, 4);
}

#[test]
fn multibyte_text_keeps_offsets() {
    assert_eq!(
        db("SELECT 'ünïcødé;…'; SELECT '日本;語'"),
        ["SELECT 'ünïcødé;…'", "SELECT '日本;語'"]
    );
}

#[test]
fn crlf_line_endings() {
    assert_eq!(db("SELECT 1;\r\nSELECT 2;\r\n"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn realistic_databricks_script() {
    let script = include_str!("../../tests/fixtures/databricks_setup.sql");
    let s = split_statements(script, SqlDialect::Databricks).expect("splits");
    let keywords: Vec<&str> = s.iter().map(|s| s.keyword.as_str()).collect();
    assert_eq!(
        keywords,
        [
            "CREATE", "GRANT", "GRANT", "GRANT", "GRANT", "GRANT", "CREATE", "GRANT"
        ]
    );
    assert!(s.iter().all(|s| !s.text.ends_with(';')));
}

#[test]
fn realistic_snowflake_script() {
    let script = include_str!("../../tests/fixtures/snowflake_setup.sql");
    let s = split_statements(script, SqlDialect::Snowflake).expect("splits");
    assert_eq!(
        s.len(),
        11,
        "{:?}",
        s.iter().map(|s| &s.keyword).collect::<Vec<_>>()
    );
    assert_eq!(s[0].keyword, "USE");
    assert!(s[7].text.ends_with("END;\n$$"), "the procedure body stays whole");
}

#[test]
fn string_literals_are_found_for_scrubbing() {
    let lits = string_literals(
        "CREATE USER u PASSWORD = 'hunter22' COMMENT = \"x\"",
        SqlDialect::Snowflake,
    );
    assert!(lits.contains(&"hunter22".to_owned()));
}

#[test]
fn trivia_detection() {
    let t = tokenize("-- a\n/* b */ ", SqlDialect::Databricks).expect("tokenizes");
    assert!(only_trivia(&t));
}

mod prop {
    use super::super::*;
    use proptest::prelude::*;

    fn non_ws_tokens(s: &str, d: SqlDialect) -> Option<Vec<String>> {
        let toks = tokenize(s, d).ok()?;
        Some(
            toks.into_iter()
                .filter(|t| is_code(&t.token) && t.token != Token::SemiColon)
                .map(|t| t.token.to_string())
                .collect(),
        )
    }

    fn sql_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("SELECT 1".to_owned()),
            Just(";".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just("'a;b'".to_owned()),
            Just("'it''s'".to_owned()),
            Just("\"x;y\"".to_owned()),
            Just("`c;d`".to_owned()),
            Just("-- note; here\n".to_owned()),
            Just("/* c; */".to_owned()),
            Just("$$ p; q $$".to_owned()),
            Just("GRANT USE CATALOG ON CATALOG c TO `u`".to_owned()),
            Just("BEGIN SELECT 1; END".to_owned()),
            Just("CASE WHEN x THEN 1 END".to_owned()),
            "[a-zA-Z0-9_ ,.()=*]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = split_statements(&s, SqlDialect::Databricks);
            let _ = split_statements(&s, SqlDialect::Snowflake);
        }

        #[test]
        fn pieces_preserve_tokens(parts in proptest::collection::vec(sql_piece(), 0..30)) {
            let script = parts.concat();
            for d in [SqlDialect::Databricks, SqlDialect::Snowflake] {
                let Ok(stmts) = split_statements(&script, d) else { continue };
                let Some(expected) = non_ws_tokens(&script, d) else { continue };
                let mut got = Vec::new();
                for s in &stmts {
                    got.extend(non_ws_tokens(s.text, d).unwrap_or_default());
                }
                // Semicolons inside blocks stay in their statement; compare without them.
                prop_assert_eq!(got, expected);
            }
        }
    }
}
