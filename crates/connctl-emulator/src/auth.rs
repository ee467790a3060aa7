//! Authentication: the Immuta API key (raw, `Bearer <key>`, or `Bearer <token>` from
//! `POST /bim/apikey/authenticate`) and the warehouse bearer tokens (Snowflake key-pair JWT
//! structure and claims, OAuth / PAT, Databricks PAT / OAuth M2M tokens).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, parse_object};
use crate::server::{Shared, lock};

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let a = authorization(headers)?;
    let (scheme, rest) = a.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
        Some(rest.trim().to_string())
    } else {
        None
    }
}

/// Middleware on every Immuta route except `/bim/apikey/authenticate`.
pub async fn immuta_auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let ok = match authorization(req.headers()) {
        None => Err("missing Authorization header (send the API key, or Bearer <token>)"),
        Some(a) => {
            let token = bearer(req.headers());
            if a == st.cfg.api_key
                || token.as_deref() == Some(st.cfg.api_key.as_str())
                || token
                    .as_ref()
                    .is_some_and(|t| lock(&st.immuta_tokens).contains(t))
            {
                Ok(())
            } else {
                Err("invalid API key or expired token")
            }
        }
    };
    match ok {
        Ok(()) => next.run(req).await,
        Err(m) => ApiError::unauthorized(m).into_response(),
    }
}

/// `POST /bim/apikey/authenticate` `{"apikey": "..."}` → `{"authenticated": true, "token": "..."}`.
pub async fn authenticate(State(st): State<Shared>, body: Bytes) -> ApiResult<Response> {
    let v = parse_object(&body)?;
    let key = match v.get("apikey") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::bad_request("apikey: expected string")),
        None => return Err(ApiError::bad_request("apikey: required")),
    };
    if *key != st.cfg.api_key {
        return Err(ApiError::unauthorized("invalid API key"));
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    lock(&st.immuta_tokens).insert(token.clone());
    Ok(axum::Json(json!({"authenticated": true, "token": token})).into_response())
}

fn b64url(part: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()
}

/// Structural check of a Snowflake key-pair JWT (no signature check): header with `alg`, claims
/// `iss = ACCOUNT.USER.SHA256:<fp>`, `sub = ACCOUNT.USER` (upper case), `exp` in the future.
pub fn check_keypair_jwt(token: &str, now_s: u64) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err("JWT token is invalid: expected header.claims.signature".into());
    }
    let header: Value = b64url(parts[0])
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("JWT token is invalid: header is not base64url JSON")?;
    if header.get("alg").and_then(Value::as_str).is_none() {
        return Err("JWT token is invalid: header has no alg".into());
    }
    let claims: Value = b64url(parts[1])
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("JWT token is invalid: claims are not base64url JSON")?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or("JWT token is invalid: no iss claim")?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("JWT token is invalid: no sub claim")?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or("JWT token is invalid: no numeric exp claim")?;
    let Some((prefix, fp)) = iss.split_once(".SHA256:") else {
        return Err(format!(
            "JWT token is invalid: iss '{iss}' is not ACCOUNT.USER.SHA256:<fingerprint>"
        ));
    };
    if fp.is_empty() || !prefix.contains('.') {
        return Err(format!(
            "JWT token is invalid: iss '{iss}' is not ACCOUNT.USER.SHA256:<fingerprint>"
        ));
    }
    if sub != prefix {
        return Err(format!(
            "JWT token is invalid: sub '{sub}' must equal the ACCOUNT.USER of iss ('{prefix}')"
        ));
    }
    if sub != sub.to_ascii_uppercase() {
        return Err(format!(
            "JWT token is invalid: account and user in sub '{sub}' must be upper case"
        ));
    }
    if exp <= now_s {
        return Err("JWT token is invalid: expired".into());
    }
    Ok(())
}

/// A non-JWT warehouse token: any non-empty one, or exactly `--warehouse-token` when set, or
/// one issued by the emulated OAuth M2M endpoint.
pub fn check_plain_token(st: &Shared, token: &str) -> Result<(), String> {
    if lock(&st.warehouse_tokens).contains(token) {
        return Ok(());
    }
    match &st.cfg.warehouse_token {
        Some(t) if t != token => Err("invalid access token".into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: Value) -> String {
        let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            e(&json!({"alg": "RS256", "typ": "JWT"})),
            e(&claims)
        )
    }

    #[test]
    fn jwt_claims() {
        let ok = jwt(json!({"iss": "ACME.ADMIN.SHA256:abc=", "sub": "ACME.ADMIN", "iat": 1, "exp": 2000}));
        assert!(check_keypair_jwt(&ok, 1000).is_ok());
        assert!(check_keypair_jwt(&ok, 3000).is_err());
        let bad = jwt(json!({"iss": "ACME.ADMIN.SHA256:abc=", "sub": "ACME.OTHER", "exp": 2000}));
        assert!(check_keypair_jwt(&bad, 1000).is_err());
        let lower = jwt(json!({"iss": "acme.admin.SHA256:abc=", "sub": "acme.admin", "exp": 2000}));
        assert!(check_keypair_jwt(&lower, 1000).is_err());
        assert!(check_keypair_jwt("nope", 1000).is_err());
    }
}
