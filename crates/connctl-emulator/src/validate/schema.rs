//! The field tables themselves: which fields each payload of each technology and auth variant
//! carries ([`schema`]), and how a body's technology and auth variant are told apart.

use serde_json::Value;

use super::{Auth, Payload, Tech, Ty, join, o, r, type_name};

const SF_AUTH: &[&str] = &["userPassword", "keyPair", "oAuthClientCredentials"];
const DBX_AUTH: &[&str] = &["token", "oAuthM2M"];

fn toggle() -> Ty {
    Ty::Obj(vec![o("enabled", Ty::Bool)])
}
pub(super) fn user_role_pattern() -> Ty {
    Ty::Obj(vec![o("exclude", Ty::StrList)])
}
fn key_file(key_name: Option<bool>) -> Ty {
    let mut f = vec![r("userFilename", Ty::Str), r("content", Ty::Str)];
    match key_name {
        Some(true) => f.insert(0, r("keyName", Ty::Const("PRIV_KEY_FILE"))),
        Some(false) => f.insert(0, o("keyName", Ty::Const("PRIV_KEY_FILE"))),
        None => {}
    }
    Ty::Obj(f)
}

fn snowflake_oauth(payload: Payload, cert: bool) -> Ty {
    let mut f = match payload {
        Payload::Script => vec![
            r("provider", Ty::Str),
            r("clientId", Ty::Str),
            r("authorityUrl", Ty::Str),
        ],
        _ => vec![
            r("clientId", Ty::Str),
            r("authorityUrl", Ty::Str),
            o("resource", Ty::Str),
            o("provider", Ty::Str),
        ],
    };
    f.push(o("useCertificate", Ty::BoolConst(cert)));
    if cert {
        f.push(r("publicCertificateThumbprint", Ty::Str));
        f.push(match payload {
            Payload::Script => r("oauthPrivateKey", Ty::Str),
            _ => r("oauthPrivateKey", key_file(None)),
        });
    } else {
        f.push(r("clientSecret", Ty::Str));
    }
    Ty::Obj(f)
}

/// The field table for one payload of one technology and auth variant.
pub fn schema(tech: Tech, auth: Auth, payload: Payload) -> Ty {
    let mut f = Vec::new();
    match tech {
        Tech::Snowflake => {
            match payload {
                Payload::Script => f.extend([
                    r("host", Ty::Str),
                    r("warehouse", Ty::Str),
                    r("database", Ty::Str),
                    r("authenticationType", Ty::OneOf(SF_AUTH)),
                    o("port", Ty::Port),
                ]),
                Payload::Native => f.extend([
                    r("host", Ty::Str),
                    r("port", Ty::Port),
                    r("warehouse", Ty::Str),
                    r("database", Ty::Str),
                    r("authenticationType", Ty::OneOf(SF_AUTH)),
                ]),
                Payload::Connection => f.extend([
                    r("technology", Ty::Const("Snowflake")),
                    r("hostname", Ty::Str),
                    r("port", Ty::Port),
                    r("warehouse", Ty::Str),
                    r("role", Ty::Str),
                    r("authenticationType", Ty::OneOf(SF_AUTH)),
                ]),
            }
            if payload != Payload::Connection {
                f.extend([
                    o("audit", toggle()),
                    o("workspaces", toggle()),
                    o("impersonation", toggle()),
                    o("lineage", toggle()),
                    o("userRolePattern", user_role_pattern()),
                ]);
            }
            match auth {
                Auth::UserPassword => f.extend([r("username", Ty::Str), r("password", Ty::Str)]),
                Auth::KeyPair => {
                    f.push(r("username", Ty::Str));
                    match payload {
                        Payload::Script => f.push(r("privateKey", Ty::Str)),
                        Payload::Native => {
                            f.push(r("privateKey", key_file(Some(true))));
                            f.push(o("privateKeyPassword", Ty::Str));
                        }
                        Payload::Connection => {
                            f.push(r("privateKey", key_file(Some(false))));
                            f.push(o("privateKeyPassword", Ty::Str));
                        }
                    }
                }
                Auth::OAuthSecret | Auth::OAuthCert => f.push(r(
                    "oAuthClientConfig",
                    snowflake_oauth(payload, auth == Auth::OAuthCert),
                )),
                Auth::Token | Auth::OAuthM2M => {}
            }
        }
        Tech::Databricks => {
            match payload {
                Payload::Script => f.extend([
                    r("workspaceUrl", Ty::Str),
                    r("httpPath", Ty::Str),
                    r("authenticationType", Ty::OneOf(DBX_AUTH)),
                    r("catalog", Ty::Catalog),
                    o("port", Ty::Port),
                ]),
                Payload::Native => f.extend([
                    r("host", Ty::Str),
                    r("port", Ty::Port),
                    r("authenticationType", Ty::OneOf(DBX_AUTH)),
                    r("catalog", Ty::Catalog),
                ]),
                Payload::Connection => f.extend([
                    r("technology", Ty::Const("Databricks")),
                    r("hostname", Ty::Str),
                    r("port", Ty::Port),
                    r("httpPath", Ty::Str),
                    r("authenticationType", Ty::OneOf(DBX_AUTH)),
                ]),
            }
            if payload != Payload::Connection {
                f.extend([
                    o("audit", toggle()),
                    o("workspaceIds", Ty::StrList),
                    o("enableNativeQueryParsing", Ty::Bool),
                    o("groupPattern", Ty::Obj(vec![o("deny", Ty::Str)])),
                    o(
                        "jobConfig",
                        Ty::Obj(vec![
                            o("workspaceDirectoryPath", Ty::Str),
                            o("jobClusterId", Ty::Str),
                        ]),
                    ),
                ]);
            }
            match auth {
                Auth::Token => f.push(r("token", Ty::Str)),
                Auth::OAuthM2M => f.push(r(
                    "oAuthClientConfig",
                    Ty::Obj(vec![
                        o("useCertificate", Ty::BoolConst(false)),
                        r("clientId", Ty::Str),
                        r("clientSecret", Ty::Str),
                        o("scope", Ty::Str),
                        r("authorityUrl", Ty::Str),
                    ]),
                )),
                _ => {}
            }
        }
    }
    Ty::Obj(f)
}

/// Decide the auth variant of a config/connection object at `path`.
pub fn auth_of(tech: Tech, obj: &Value, path: &str) -> Result<Auth, String> {
    let at_path = join(path, "authenticationType");
    let at = match obj.get("authenticationType") {
        None => return Err(format!("{at_path}: required")),
        Some(Value::String(s)) => s.as_str(),
        Some(v) => return Err(format!("{at_path}: expected string, got {}", type_name(v))),
    };
    match (tech, at) {
        (Tech::Snowflake, "userPassword") => Ok(Auth::UserPassword),
        (Tech::Snowflake, "keyPair") => Ok(Auth::KeyPair),
        (Tech::Snowflake, "oAuthClientCredentials") => {
            let op = join(path, "oAuthClientConfig");
            let Some(oc) = obj.get("oAuthClientConfig").and_then(Value::as_object) else {
                return Err(format!(
                    "{op}: required (an object) for authenticationType oAuthClientCredentials"
                ));
            };
            let secret = oc.contains_key("clientSecret");
            let cert = oc.contains_key("publicCertificateThumbprint") || oc.contains_key("oauthPrivateKey");
            let use_cert = oc.get("useCertificate").and_then(Value::as_bool);
            match (secret, cert, use_cert) {
                (true, true, _) => Err(format!(
                    "{op}: give either clientSecret or publicCertificateThumbprint and oauthPrivateKey, not both"
                )),
                (true, false, _) | (false, false, Some(false)) => Ok(Auth::OAuthSecret),
                (false, true, _) | (false, false, Some(true)) => Ok(Auth::OAuthCert),
                (false, false, None) => Err(format!(
                    "{op}: give clientSecret, or publicCertificateThumbprint and oauthPrivateKey"
                )),
            }
        }
        (Tech::Databricks, "token") => Ok(Auth::Token),
        (Tech::Databricks, "oAuthM2M") => Ok(Auth::OAuthM2M),
        (Tech::Snowflake, other) => Err(format!(
            "{at_path}: unknown authentication type '{other}' for Snowflake (expected one of: {})",
            SF_AUTH.join(", ")
        )),
        (Tech::Databricks, other) => Err(format!(
            "{at_path}: unknown authentication type '{other}' for Databricks (expected one of: {})",
            DBX_AUTH.join(", ")
        )),
    }
}

pub(super) fn tech_at(v: Option<&Value>, path: &str) -> Result<Tech, String> {
    match v {
        None => Err(format!("{path}: required")),
        Some(Value::String(s)) => Tech::parse(s)
            .ok_or_else(|| format!("{path}: unknown technology '{s}' (expected Snowflake or Databricks)")),
        Some(v) => Err(format!("{path}: expected string, got {}", type_name(v))),
    }
}
