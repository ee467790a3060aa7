//! Names in URL paths: object paths and single ids or keys, percent-encoded one segment at a
//! time. The one place a name from the YAML or from a server is put into a URL.

use crate::error::ApiError;

/// An object path (connection key first) as it appears in a URL: each name percent-encoded on
/// its own, so `/`, `.`, `%`, spaces and non-ASCII never split or change a segment, joined with
/// `/`. The one place object paths are put into URLs. A path that no URL can carry (empty, an
/// empty name, or a name that is `.` or `..`, which URL parsers resolve away even encoded) is an
/// error, never a request to another object.
pub fn object_url_path(path: &[String]) -> Result<String, ApiError> {
    if path.is_empty() {
        return Err(ApiError::BadObjectPath {
            path: String::new(),
            reason: "it is empty".into(),
        });
    }
    let mut out = Vec::with_capacity(path.len());
    for name in path {
        if name.is_empty() || name == "." || name == ".." {
            return Err(ApiError::BadObjectPath {
                path: path.join("/"),
                reason: format!("the name `{name}` cannot be sent in a URL path"),
            });
        }
        out.push(seg(name));
    }
    Ok(out.join("/"))
}

/// Percent-encodes one path segment (connection keys may hold only safe characters, but ids
/// and keys from a server are not trusted to).
pub(super) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn each_name_of_an_object_path_is_one_url_segment() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["sf-prod", "SALES", "PUBLIC", "ORDERS"],
                "sf-prod/SALES/PUBLIC/ORDERS",
            ),
            (&["k", "odd/name", "T"], "k/odd%2Fname/T"),
            (&["k", "my.db", "a.b.c"], "k/my.db/a.b.c"),
            (&["k", "100%", "a b"], "k/100%25/a%20b"),
            (&["k", "Zürich", "表"], "k/Z%C3%BCrich/%E8%A1%A8"),
            (&["k", "q\"uote?#&+"], "k/q%22uote%3F%23%26%2B"),
        ];
        for (names, want) in cases {
            assert_eq!(object_url_path(&path(names)).unwrap(), want, "{names:?}");
        }
    }

    #[test]
    fn a_path_no_url_can_carry_is_an_error_not_another_object() {
        for names in [&[][..], &["k", ""][..], &["k", "."][..], &["k", "DB", ".."][..]] {
            let err = object_url_path(&path(names)).unwrap_err();
            assert!(matches!(err, ApiError::BadObjectPath { .. }), "{names:?}: {err}");
        }
    }

    #[test]
    fn an_encoded_path_survives_url_parsing_unchanged() {
        // The URL parser must not decode or resolve what `object_url_path` encoded.
        let encoded = object_url_path(&path(&["k", "a/b", "..x", "%2e", "c d"])).unwrap();
        let url = reqwest::Url::parse(&format!("http://127.0.0.1/data/object/{encoded}")).unwrap();
        assert_eq!(url.path(), "/data/object/k/a%2Fb/..x/%252e/c%20d");
    }
}
