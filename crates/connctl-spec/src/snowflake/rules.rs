//! The rules the YAML walk applies to a Snowflake connection: its fields, its auth variants,
//! and the checks across fields (one OAuth credential; workspaces with impersonation).

use crate::check::{Field, TechRules, Ty, Variant, opt, req};
use crate::diagnostic::Sink;
use crate::yaml::{Node, Value as YamlValue};

/// What the YAML walk checks of a Snowflake connection.
pub(crate) const RULES: TechRules = TechRules {
    fields: &[
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
    ],
    telltales: &["warehouse", "host"],
    auth: &[
        Variant {
            name: "userPassword",
            fields: &[
                req("type", Ty::Skip),
                req("username", Ty::Str),
                req("password", Ty::Secret),
            ],
            check: None,
        },
        Variant {
            name: "keyPair",
            fields: &[
                req("type", Ty::Skip),
                req("username", Ty::Str),
                req("privateKey", Ty::Secret),
                opt("privateKeyPassword", Ty::Secret),
            ],
            check: None,
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
            check: Some(oauth_credential),
        },
    ],
    check: workspaces_with_impersonation,
};

fn user_role_pattern(sink: &mut Sink<'_>, key: &Node, node: &Node, path: &str) {
    let fields: [Field; 1] = [req("exclude", Ty::StrList)];
    crate::check::check_fields(sink, node, key.pos, path, &format!("`{path}`"), &fields, &|_| {
        None
    });
}

/// The guide: workspaces and impersonation conflict with table grants / low row access policy mode.
fn workspaces_with_impersonation(sink: &mut Sink<'_>, item: &Node) {
    let enabled = |name: &str| {
        item.get(name)
            .and_then(|t| t.get("enabled"))
            .is_some_and(|e| e.value == YamlValue::Bool(true))
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

/// OAuth: exactly one of a client secret or a certificate (thumbprint + key).
fn oauth_credential(sink: &mut Sink<'_>, node: &Node, type_node: &Node) {
    let has = |name: &str| node.get(name).is_some_and(|v| v.value != YamlValue::Null);
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
