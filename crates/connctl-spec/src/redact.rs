//! Redaction: the process-wide register of secret values, and the one function that removes
//! them from text leaving the process.
//!
//! Every [`crate::Secret`] registers its value here when it is made — resolved from a reference
//! (connection secrets, executor credentials, the Immuta API key) or wrapped with
//! [`crate::Secret::new`] (derived tokens). [`redact`] replaces each registered value with
//! [`REDACTED`], and also every form the value takes on its way out, because a server or a
//! program that echoes a request echoes it encoded:
//!
//! - SQL string literals and identifiers: `'` or `"` doubled or backslash-escaped, `\` doubled,
//!   line breaks as `\n` (and the combinations);
//! - each of those inside a JSON string (standard, ASCII-only `\uXXXX`, `\/`), and inside a JSON
//!   string that is itself inside a JSON string (an echoed request body as an error `message`);
//! - URL encodings (strict RFC 3986, form encoding with `+` for a space, the sets of common path
//!   and component encoders; upper- and lower-case hex), HTML escaping;
//! - base64 (standard and URL-safe, padded or not), and for values up to 256 bytes also the part
//!   of a longer base64 text that holds only the value's bytes, at any alignment (e.g. a `Basic`
//!   header of `id:secret`);
//! - for a multi-line value (a PEM private key), also each long line on its own, so that a text
//!   cut short or re-wrapped still loses every line of the key.
//!
//! Values shorter than [`MIN_SECRET_LEN`] characters are not registered: they would blank out
//! ordinary words everywhere. `validate --resolve-secrets` warns about them.
//!
//! Callers apply [`redact`] at the boundaries: where the CLI prints, logs or writes files, where
//! the state journal records an error, and where a client captures a server's or a program's
//! text — before shortening it, so that a cut cannot leave half a secret behind.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What replaces a secret in redacted text (the same words the plan shows for a secret field).
pub const REDACTED: &str = "(sensitive)";

/// Shortest value (in characters) that is redacted; shorter secrets are weak anyway, and
/// replacing a 3-letter value everywhere would shred every message.
pub const MIN_SECRET_LEN: usize = 6;

/// Lines of a multi-line value shorter than this are not registered on their own (a PEM's last
/// line can be a few characters; its armour lines are not secret).
const MIN_LINE_LEN: usize = 16;

/// Longest value whose base64 is also looked for inside longer base64 texts. Short secrets are
/// the ones embedded so (`Basic` headers of `id:secret`); a long token or key repeated at three
/// alignments would only grow the matcher.
const MAX_EMBEDDED_BASE64: usize = 256;

#[derive(Default)]
struct Registry {
    /// Values registered so far, to make registering again cheap.
    values: HashSet<String>,
    /// Every form of every value, deduplicated.
    forms: HashSet<String>,
    /// The matcher over `forms`; `None` when `forms` changed since it was built.
    matcher: Option<Arc<Matcher>>,
}

enum Matcher {
    Empty,
    Automaton(AhoCorasick),
    /// Longest first; only if the automaton could not be built (it has a size limit).
    Plain(Vec<String>),
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a secret value (and its encoded forms) for [`redact`]. Cheap when already known.
pub fn register(value: &str) {
    if value.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut reg = registry();
    if !reg.values.insert(value.to_owned()) {
        return;
    }
    let before = reg.forms.len();
    reg.forms.extend(forms(value));
    if reg.forms.len() != before {
        reg.matcher = None;
    }
}

/// Replaces every registered secret value, in any of its forms, with [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let matcher = {
        let mut reg = registry();
        match &reg.matcher {
            Some(m) => m.clone(),
            None => {
                let m = Arc::new(build(&reg.forms));
                reg.matcher = Some(m.clone());
                m
            }
        }
    };
    match &*matcher {
        Matcher::Empty => Cow::Borrowed(text),
        Matcher::Automaton(ac) => {
            if !ac.is_match(text) {
                return Cow::Borrowed(text);
            }
            let mut out = String::with_capacity(text.len());
            ac.replace_all_with(text, &mut out, |_, _, dst| {
                dst.push_str(REDACTED);
                true
            });
            Cow::Owned(out)
        }
        Matcher::Plain(forms) => {
            let mut out = Cow::Borrowed(text);
            for f in forms {
                if out.contains(f.as_str()) {
                    out = Cow::Owned(out.replace(f.as_str(), REDACTED));
                }
            }
            out
        }
    }
}

/// Whether `text` holds a registered secret in any of its forms.
pub fn contains_secret(text: &str) -> bool {
    matches!(redact(text), Cow::Owned(_))
}

fn build(forms: &HashSet<String>) -> Matcher {
    if forms.is_empty() {
        return Matcher::Empty;
    }
    let mut list: Vec<String> = forms.iter().cloned().collect();
    // Longest first: a longer form (`a''b`) wins over a shorter one it contains.
    list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    match AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&list)
    {
        Ok(ac) => Matcher::Automaton(ac),
        Err(_) => Matcher::Plain(list),
    }
}

/// Every form of `value` that [`redact`] removes (at least [`MIN_SECRET_LEN`] long each).
pub fn forms(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pieces = vec![value.to_owned()];
    let trimmed = value.trim();
    if trimmed != value {
        pieces.push(trimmed.to_owned());
    }
    if value.contains('\n') {
        // Each long line alone: a cut or re-wrapped text still loses every line of the key.
        pieces.extend(
            value
                .lines()
                .map(str::trim)
                .filter(|l| l.chars().count() >= MIN_LINE_LEN && !l.starts_with("-----"))
                .map(str::to_owned),
        );
        // The lines joined without breaks (a key body written on one line).
        let body: String = value
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        pieces.push(body);
    }
    for piece in &pieces {
        for inner in sql_forms(piece) {
            out.push(json(&inner, Json::Standard));
            out.push(json(&inner, Json::Ascii));
            out.push(json(&inner, Json::Slash));
            out.push(json(&json(&inner, Json::Standard), Json::Standard));
            out.push(inner);
        }
        out.extend(url_forms(piece));
        out.extend(html_forms(piece));
        out.extend(base64_forms(piece.as_bytes()));
    }
    let mut seen = HashSet::new();
    out.retain(|f| f.chars().count() >= MIN_SECRET_LEN && seen.insert(f.clone()));
    out
}

/// How a quote or backslash appears inside a quoted string.
#[derive(Clone, Copy)]
enum Esc {
    Keep,
    Double,
    Backslash,
}

/// The value with every combination of the usual escapes for `\`, `'`, `"` and line breaks.
fn sql_forms(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for bs in [Esc::Keep, Esc::Double] {
        for sq in [Esc::Keep, Esc::Double, Esc::Backslash] {
            for dq in [Esc::Keep, Esc::Double, Esc::Backslash] {
                for nl in [false, true] {
                    let mut s = String::with_capacity(value.len() + 8);
                    for c in value.chars() {
                        let esc = match c {
                            '\\' => bs,
                            '\'' => sq,
                            '"' => dq,
                            '\n' if nl => {
                                s.push_str("\\n");
                                continue;
                            }
                            '\r' if nl => {
                                s.push_str("\\r");
                                continue;
                            }
                            '\t' if nl => {
                                s.push_str("\\t");
                                continue;
                            }
                            _ => Esc::Keep,
                        };
                        match esc {
                            Esc::Keep => s.push(c),
                            Esc::Double => {
                                s.push(c);
                                s.push(c);
                            }
                            Esc::Backslash => {
                                s.push('\\');
                                s.push(c);
                            }
                        }
                    }
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Json {
    /// serde_json's escaping.
    Standard,
    /// Non-ASCII as `\uXXXX` (Python's `json.dumps` default).
    Ascii,
    /// `/` as `\/` (PHP and some Java encoders).
    Slash,
}

/// The inside of a JSON string holding `value`.
fn json(value: &str, style: Json) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted);
    match style {
        Json::Standard => inner.to_owned(),
        Json::Slash => inner.replace('/', "\\/"),
        Json::Ascii => {
            let mut s = String::with_capacity(inner.len());
            for c in inner.chars() {
                if c.is_ascii() {
                    s.push(c);
                } else {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        s.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            s
        }
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodings by the common encoders' sets of characters left alone.
fn url_forms(value: &str) -> Vec<String> {
    let encode = |keep: &dyn Fn(u8) -> bool, plus: bool, lower: bool| {
        let mut s = String::with_capacity(value.len() * 3);
        for &b in value.as_bytes() {
            if plus && b == b' ' {
                s.push('+');
            } else if keep(b) {
                s.push(char::from(b));
            } else if lower {
                s.push_str(&format!("%{b:02x}"));
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s
    };
    // RFC 3986 unreserved only (percent-encoding's NON_ALPHANUMERIC, Go's QueryEscape but `+`).
    let strict = |b: u8| unreserved(b);
    // application/x-www-form-urlencoded (url's form_urlencoded, Go's QueryEscape).
    let form = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_');
    // JavaScript's encodeURIComponent.
    let component = |b: u8| unreserved(b) || matches!(b, b'!' | b'*' | b'\'' | b'(' | b')');
    // Path encoders (JavaScript's encodeURI, URL path segments, Python's quote).
    let path = |b: u8| unreserved(b) || b"!$&'()*+,;=:@/".contains(&b);
    let python = |b: u8| unreserved(b) || b == b'/';
    vec![
        encode(&strict, false, false),
        encode(&strict, false, true),
        encode(&strict, true, false),
        encode(&form, true, false),
        encode(&form, true, true),
        encode(&component, false, false),
        encode(&path, false, false),
        encode(&python, false, false),
    ]
}

fn html_forms(value: &str) -> Vec<String> {
    let escape = |apos: &str| {
        let mut s = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '&' => s.push_str("&amp;"),
                '<' => s.push_str("&lt;"),
                '>' => s.push_str("&gt;"),
                '"' => s.push_str("&quot;"),
                '\'' => s.push_str(apos),
                c => s.push(c),
            }
        }
        s
    };
    vec![escape("&#39;"), escape("&#x27;")]
}

/// Base64 of the value alone, and (for values up to [`MAX_EMBEDDED_BASE64`] bytes) the part of
/// a longer base64 text that depends only on the value's bytes, for each of the three alignments
/// the value can have in it.
fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(bytes));
    }
    if bytes.len() > MAX_EMBEDDED_BASE64 {
        return out;
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(bytes);
            let text = engine.encode(&padded);
            // The first characters mix in the bytes before the value, the last one (when the
            // length is not a multiple of 3) the bytes after it.
            let skip = [0, 2, 3][offset];
            let end = text.len() - usize::from(padded.len() % 3 != 0);
            if offset == 0 {
                out.push(text.clone());
            }
            if let Some(core) = text.get(skip..end) {
                out.push(core.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "can'ary \"pw\"\\ 50%/a+b ünï";

    #[test]
    fn every_form_of_a_registered_value_is_removed() {
        register(CANARY);
        let texts = [
            CANARY.to_owned(),
            CANARY.replace('\'', "''"),
            CANARY.replace('\\', "\\\\").replace('\'', "''"),
            CANARY.replace('"', "\"\""),
            serde_json::to_string(CANARY).unwrap(),
            serde_json::to_string(
                &serde_json::to_string(&format!("PASSWORD = '{}'", CANARY.replace('\'', "''"))).unwrap(),
            )
            .unwrap(),
            STANDARD.encode(CANARY),
            URL_SAFE_NO_PAD.encode(CANARY),
            STANDARD.encode(format!("client-id:{CANARY}")),
            STANDARD.encode(format!("x{CANARY}yz")),
            url_forms(CANARY)[3].clone(),
        ];
        for text in texts {
            let wrapped = format!("error: the server said <{text}> and stopped");
            let out = redact(&wrapped);
            assert!(out.contains(REDACTED), "not redacted: {wrapped}");
            for needle in ["can", "ary", "ünï", "pw"] {
                assert!(!out.contains(needle), "{needle} left in {out} (from {wrapped})");
            }
            assert!(out.starts_with("error: the server said <") && out.ends_with("> and stopped"));
        }
        // Text without a secret is returned as it is.
        assert!(matches!(
            redact("nothing to see"),
            Cow::Borrowed("nothing to see")
        ));
    }

    #[test]
    fn form_encoding_and_percent_encoding_of_a_secret_are_removed() {
        let v = "s3cret value+/=&?";
        register(v);
        for text in [
            "password=s3cret+value%2B%2F%3D%26%3F&x=1",
            "password=s3cret%20value%2B%2F%3D%26%3F&x=1",
            "password=s3cret%20value%2b%2f%3d%26%3f&x=1",
        ] {
            let out = redact(text);
            assert_eq!(out, format!("password={REDACTED}&x=1"), "{text}");
        }
    }

    #[test]
    fn each_line_of_a_pem_key_is_removed() {
        let body = [
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDmultiline",
            "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG9mcmVk",
            "QUFB",
        ];
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            body.join("\n")
        );
        register(&pem);
        let cut = format!(
            "bad request: {{\"content\": {}",
            &serde_json::to_string(&pem).unwrap()[..80]
        );
        let out = redact(&cut);
        assert!(!out.contains(body[0]), "{out}");
        let escaped = pem.replace('\n', "\\n");
        let out = redact(&escaped);
        assert!(!out.contains(body[1]), "{out}");
        // The armour is not a secret.
        assert!(redact("expected -----BEGIN PRIVATE KEY-----").contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn short_values_are_not_registered() {
        register("abc");
        assert_eq!(redact("abc abcdef"), "abc abcdef");
        assert!(
            forms("abcdef")
                .iter()
                .all(|f| f.chars().count() >= MIN_SECRET_LEN)
        );
    }

    #[test]
    fn longest_form_wins() {
        register("o'brien-secret");
        assert_eq!(
            redact("PASSWORD = 'o''brien-secret';"),
            format!("PASSWORD = '{REDACTED}';")
        );
        assert!(contains_secret("x o'brien-secret y"));
        assert!(!contains_secret("x o'brien y"));
    }
}
