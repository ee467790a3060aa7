//! The structure of a connctl file: top level, `defaults:`, each connection by technology, and
//! each auth variant. Walks the YAML tree with [`crate::check`] and reports every problem.
//!
//! The field tables here mirror the serde types of [`crate::model`]; the typed read that
//! follows a clean walk (and the schema tests over the fixtures) keep the two in step.

use crate::check::{Field, Ty, check_fields, non_empty_str, opt, req};
use crate::diagnostic::Sink;
use crate::model::SPEC_VERSION;
use crate::suggest::{did_you_mean, one_of};
use crate::yaml::{Node, Pos, Value};

const TECHNOLOGIES: &[&str] = &["Snowflake", "Databricks"];

const TOP: &[Field] = &[
    req("version", Ty::Skip),
    opt("defaults", Ty::Nested(defaults)),
    opt("connections", Ty::Skip),
];

const DEFAULTS: &[Field] = &[
    opt("settings", Ty::Nested(settings)),
    opt("options", Ty::Nested(options)),
    opt("protect", Ty::Bool),
    opt("executor", Ty::Executor),
];

const SETTINGS: &[Field] = &[opt("isActive", Ty::Bool), opt("activateNewChildren", Ty::Bool)];
const OPTIONS: &[Field] = &[opt("forceRecursiveCrawl", Ty::Bool)];

/// Fields every connection has, whatever its technology.
const COMMON: &[Field] = &[
    req("key", Ty::ConnectionKey),
    req("technology", Ty::Skip),
    opt("protect", Ty::Bool),
    opt("executor", Ty::Executor),
    opt("settings", Ty::Nested(settings)),
    opt("options", Ty::Nested(options)),
    req("auth", Ty::Skip),
];

const SNOWFLAKE: &[Field] = &[
    req("host", Ty::Str),
    opt("port", Ty::Port),
    req("warehouse", Ty::Str),
    req("database", Ty::Str),
    req("role", Ty::Str),
    opt("audit", Ty::Toggle),
    opt("workspaces", Ty::Toggle),
    opt("impersonation", Ty::Toggle),
    opt("lineage", Ty::Toggle),
    opt("userRolePattern", Ty::Nested(user_role_pattern)),
];

const DATABRICKS: &[Field] = &[
    req("workspaceUrl", Ty::Str),
    req("httpPath", Ty::Str),
    opt("port", Ty::Port),
    req("catalog", Ty::Catalog),
    opt("audit", Ty::Toggle),
    opt("workspaceIds", Ty::StrList),
    opt("enableNativeQueryParsing", Ty::Bool),
    opt("groupPattern", Ty::Nested(group_pattern)),
    opt("jobConfig", Ty::Nested(job_config)),
];

/// Auth variants per technology: the `type` value and the fields it takes.
struct Variant {
    name: &'static str,
    fields: &'static [Field],
}

const SNOWFLAKE_AUTH: &[Variant] = &[
    Variant {
        name: "userPassword",
        fields: &[
            req("type", Ty::Skip),
            req("username", Ty::Str),
            req("password", Ty::Secret),
        ],
    },
    Variant {
        name: "keyPair",
        fields: &[
            req("type", Ty::Skip),
            req("username", Ty::Str),
            req("privateKey", Ty::Secret),
            opt("privateKeyPassword", Ty::Secret),
        ],
    },
    Variant {
        name: "oAuthClientCredentials",
        fields: &[
            req("type", Ty::Skip),
            req("provider", Ty::Str),
            req("clientId", Ty::Str),
            req("authorityUrl", Ty::Str),
            opt("resource", Ty::Str),
            opt("clientSecret", Ty::Secret),
            opt("publicCertificateThumbprint", Ty::Str),
            opt("privateKey", Ty::Secret),
        ],
    },
];

const DATABRICKS_AUTH: &[Variant] = &[
    Variant {
        name: "token",
        fields: &[req("type", Ty::Skip), req("token", Ty::Secret)],
    },
    Variant {
        name: "oAuthM2M",
        fields: &[
            req("type", Ty::Skip),
            req("clientId", Ty::Str),
            req("clientSecret", Ty::Secret),
            req("authorityUrl", Ty::Str),
            opt("scope", Ty::Str),
        ],
    },
];

/// A connection entry that passed every check, ready for the typed read.
pub(crate) struct Checked<'n> {
    pub node: &'n Node,
    pub key: String,
    /// The `key:` field name (the connection's origin).
    pub key_field: Pos,
    /// The key's value (underlined by "duplicate key").
    pub key_value: Pos,
}

/// What a file holds once its structure is checked.
pub(crate) struct CheckedFile<'n> {
    /// `defaults:` when present and valid.
    pub defaults: Option<&'n Node>,
    /// Whether `defaults:` had errors (then no connection of the file is built).
    pub defaults_ok: bool,
    pub connections: Vec<Checked<'n>>,
}

/// Checks a whole file. `source` decides between "empty file" and "not a mapping".
pub(crate) fn check_file<'n>(sink: &mut Sink<'_>, root: &'n Node, source: &str) -> CheckedFile<'n> {
    let mut out = CheckedFile {
        defaults: None,
        defaults_ok: true,
        connections: Vec::new(),
    };
    let Some(_) = root.as_map() else {
        if root.value == Value::Null && is_blank(source) {
            sink.error(
                Pos {
                    line: 1,
                    column: 1,
                    len: 1,
                },
                "file is empty",
                Some("a connctl file starts with `version: 1` and lists `connections:`".into()),
            );
        } else {
            sink.error(
                root.pos,
                format!("the top level must be a mapping, found {}", root.value.kind()),
                Some("a connctl file starts with `version: 1` and lists `connections:`".into()),
            );
        }
        return out;
    };
    let before = sink.error_count();
    check_fields(sink, root, root.pos, "", "the top level", TOP, &|name| {
        (name == "connection").then(|| "did you mean `connections`?".to_owned())
    });
    if let Some(version) = root.get("version") {
        match version.value {
            Value::Int(v) if v == i128::from(SPEC_VERSION) => {}
            Value::Int(v) => sink.error(
                version.pos,
                format!("unsupported spec version {v}"),
                Some(format!("this connctl reads `version: {SPEC_VERSION}`")),
            ),
            _ => sink.wrong_type(version, "version", "an integer"),
        }
    }
    let top_ok = sink.error_count() == before;
    out.defaults = root.get("defaults").filter(|d| d.value != Value::Null);
    out.defaults_ok = top_ok;
    let Some(list) = root.get("connections") else {
        return out;
    };
    match &list.value {
        Value::Null => {}
        Value::Seq(items) => {
            for item in items {
                let before = sink.error_count();
                let key = connection(sink, item);
                if let Some(key) = key.filter(|_| sink.error_count() == before) {
                    out.connections.push(key);
                }
            }
        }
        _ => sink.wrong_type(list, "connections", "a list of connections"),
    }
    out
}

fn is_blank(source: &str) -> bool {
    source.lines().all(|l| {
        let t = l.trim().trim_start_matches('\u{feff}');
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Checks one entry of `connections:`; returns its key and positions.
fn connection<'n>(sink: &mut Sink<'_>, item: &'n Node) -> Option<Checked<'n>> {
    if item.as_map().is_none() {
        sink.error(
            item.pos,
            format!(
                "each entry of `connections` must be a mapping, found {}",
                item.value.kind()
            ),
            None,
        );
        return None;
    }
    let key = item
        .get("key")
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_owned();
    let what = if key.is_empty() {
        "a connection".to_owned()
    } else {
        format!("connection `{key}`")
    };
    let Some(tech_node) = item.get("technology") else {
        // Without a technology the other fields cannot be judged; say which one they suggest.
        let guess = if item.get("warehouse").is_some() || item.get("host").is_some() {
            "these fields look like `technology: Snowflake`".to_owned()
        } else if item.get("workspaceUrl").is_some() || item.get("catalog").is_some() {
            "these fields look like `technology: Databricks`".to_owned()
        } else {
            format!("expected {}", one_of(TECHNOLOGIES))
        };
        sink.error(
            item.pos,
            format!("missing field `technology` in {what}"),
            Some(guess),
        );
        return None;
    };
    let technology = match tech_node.as_str() {
        Some(t) if TECHNOLOGIES.contains(&t) => t,
        Some(t) => {
            let help = match did_you_mean(t, TECHNOLOGIES) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected {}", one_of(TECHNOLOGIES)),
            };
            sink.error(tech_node.pos, format!("unknown technology `{t}`"), Some(help));
            return None;
        }
        None => {
            sink.wrong_type(tech_node, "technology", "a string");
            return None;
        }
    };
    let (own, other, other_name) = match technology {
        "Snowflake" => (SNOWFLAKE, DATABRICKS, "Databricks"),
        _ => (DATABRICKS, SNOWFLAKE, "Snowflake"),
    };
    let fields: Vec<Field> = COMMON.iter().chain(own).map(copy_field).collect();
    let what = format!("{technology} {what}");
    check_fields(sink, item, item.pos, "", &what, &fields, &|name| {
        other
            .iter()
            .any(|f| f.name == name)
            .then(|| format!("`{name}` is a {other_name} field; this connection is {technology}"))
            .or_else(|| misplaced(name))
    });
    if let Some(auth_node) = item.get("auth") {
        let auth_key = item.key_node("auth").map_or(item.pos, |k| k.pos);
        auth(sink, auth_node, auth_key, technology);
    }
    if technology == "Snowflake" {
        workspaces_with_impersonation(sink, item);
    }
    let key_field = item.key_node("key").map_or(item.pos, |k| k.pos);
    let key_value = item.get("key").map_or(item.pos, |k| k.pos);
    Some(Checked {
        node: item,
        key,
        key_field,
        key_value,
    })
}

fn copy_field(f: &Field) -> Field {
    Field {
        name: f.name,
        required: f.required,
        ty: f.ty,
    }
}

/// The guide: workspaces and impersonation conflict with table grants / low row access policy mode.
fn workspaces_with_impersonation(sink: &mut Sink<'_>, item: &Node) {
    let enabled = |name: &str| {
        item.get(name)
            .and_then(|t| t.get("enabled"))
            .is_some_and(|e| e.value == Value::Bool(true))
    };
    if enabled("workspaces") && enabled("impersonation") {
        let pos = item.key_node("impersonation").map_or(item.pos, |k| k.pos);
        sink.warning(
            pos,
            "`workspaces` and `impersonation` are both enabled",
            Some(
                "Immuta's guide: project workspaces cannot be used with Snowflake table grants, and \
                 impersonation cannot be used with low row access policy mode; make sure neither is in use"
                    .into(),
            ),
        );
    }
}

/// Checks an auth block: picks the variant by `type` and checks its fields.
fn auth(sink: &mut Sink<'_>, node: &Node, anchor: Pos, technology: &str) {
    let (variants, others, other_tech) = match technology {
        "Snowflake" => (SNOWFLAKE_AUTH, DATABRICKS_AUTH, "Databricks"),
        _ => (DATABRICKS_AUTH, SNOWFLAKE_AUTH, "Snowflake"),
    };
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    if node.as_map().is_none() {
        sink.wrong_type(node, "auth", "a mapping");
        return;
    }
    let Some(type_node) = node.get("type") else {
        missing_auth_type(sink, node, anchor, variants);
        return;
    };
    let Some(ty) = non_empty_str(sink, type_node, "auth.type") else {
        return;
    };
    let Some(variant) = variants.iter().find(|v| v.name == ty) else {
        let help = if others.iter().any(|v| v.name == ty) {
            format!(
                "`{ty}` is a {other_tech} auth type; a {technology} connection takes {}",
                one_of(&names)
            )
        } else if let Some(s) = did_you_mean(ty, &names) {
            format!("did you mean `{s}`?")
        } else {
            format!("expected {}", one_of(&names))
        };
        sink.error(
            type_node.pos,
            format!("unknown auth type `{ty}` for {technology}"),
            Some(help),
        );
        return;
    };
    let what = format!("`auth` (type `{ty}`)");
    check_fields(sink, node, anchor, "auth", &what, variant.fields, &|name| {
        variants
            .iter()
            .find(|v| v.name != ty && v.fields.iter().any(|f| f.name == name))
            .map(|v| format!("`{name}` belongs to auth type `{}`", v.name))
    });
    if ty == "oAuthClientCredentials" {
        oauth_credential(sink, node, type_node);
    }
}

/// No `type`: say which variants the fields fit, so the fix is obvious.
fn missing_auth_type(sink: &mut Sink<'_>, node: &Node, anchor: Pos, variants: &[Variant]) {
    let present: Vec<&str> = node
        .as_map()
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .collect();
    let fits: Vec<&str> = variants
        .iter()
        .filter(|v| {
            present.iter().all(|p| v.fields.iter().any(|f| f.name == *p))
                && v.fields
                    .iter()
                    .filter(|f| f.required && f.name != "type")
                    .all(|f| present.contains(&f.name))
        })
        .map(|v| v.name)
        .collect();
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    let help = match fits.as_slice() {
        [one] => format!("these fields fit `type: {one}`; add it"),
        [] => format!("the fields fit no auth variant; set `type` to {}", one_of(&names)),
        many => format!("the fields fit several variants ({}); set `type`", one_of(many)),
    };
    sink.error(anchor, "missing field `auth.type`", Some(help));
}

/// Snowflake OAuth: exactly one of a client secret or a certificate (thumbprint + key).
fn oauth_credential(sink: &mut Sink<'_>, node: &Node, type_node: &Node) {
    let has = |name: &str| node.get(name).is_some_and(|v| v.value != Value::Null);
    let secret = has("clientSecret");
    let thumbprint = has("publicCertificateThumbprint");
    let key = has("privateKey");
    const HELP: &str = "give either `clientSecret` (client secret) or `publicCertificateThumbprint` and \
                        `privateKey` (certificate)";
    if secret && (thumbprint || key) {
        let pos = node.key_node("clientSecret").map_or(node.pos, |k| k.pos);
        sink.error(
            pos,
            "`auth` fits two OAuth variants: it has a client secret and a certificate",
            Some(HELP.into()),
        );
    } else if !secret && !thumbprint && !key {
        sink.error(
            type_node.pos,
            "`auth` fits no OAuth variant: it has no client secret and no certificate",
            Some(HELP.into()),
        );
    } else if !secret && thumbprint != key {
        let missing = if thumbprint {
            "privateKey"
        } else {
            "publicCertificateThumbprint"
        };
        sink.error(
            type_node.pos,
            format!("certificate OAuth needs `auth.{missing}` too"),
            Some("a certificate credential is `publicCertificateThumbprint` plus `privateKey`".into()),
        );
    }
}

fn defaults(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    check_fields(sink, node, key.pos, path, "`defaults`", DEFAULTS, &misplaced);
}

/// A settings or options field written one level too high.
fn misplaced(name: &str) -> Option<String> {
    let parent = if SETTINGS.iter().any(|f| f.name == name) {
        "settings"
    } else if OPTIONS.iter().any(|f| f.name == name) {
        "options"
    } else {
        return None;
    };
    Some(format!("`{name}` goes under `{parent}:`"))
}

fn settings(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), SETTINGS, &|_| {
        None
    });
}

fn options(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), OPTIONS, &|_| {
        None
    });
}

fn user_role_pattern(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    let fields = [req("exclude", Ty::StrList)];
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), &fields, &|_| {
        None
    });
}

fn group_pattern(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    let fields = [req("deny", Ty::Str)];
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), &fields, &|_| {
        None
    });
}

fn job_config(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    let fields = [
        opt("workspaceDirectoryPath", Ty::Str),
        opt("jobClusterId", Ty::Str),
    ];
    check_fields(sink, node, key.pos, path, &format!("`{path}`"), &fields, &|_| {
        None
    });
}
