//! Snowflake key-pair authentication: an RS256 JWT signed with the user's RSA private key.
//!
//! Claims: `iss = ACCOUNT.USER.SHA256:<fingerprint>`, `sub = ACCOUNT.USER` (both uppercased),
//! `iat` = now, `exp` = now + 59 min. The fingerprint is the base64 SHA-256 of the DER
//! SubjectPublicKeyInfo of the public key, which is derived from the private key with aws-lc-rs
//! (the same backend `jsonwebtoken` signs with); no `rsa` crate is involved.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ExecError;

/// How long a token is valid, in seconds (Snowflake allows at most one hour).
pub(crate) const LIFETIME_SECS: i64 = 59 * 60;

/// The claims Snowflake expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
}

/// A loaded private key, ready to sign tokens.
pub(crate) struct KeyPairSigner {
    key: EncodingKey,
    fingerprint: String,
}

impl std::fmt::Debug for KeyPairSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPairSigner")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn key_error(detail: &str) -> ExecError {
    ExecError::config(format!(
        "the Snowflake private key {detail}; provide an unencrypted RSA key in PKCS#8 PEM \
         (`openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8`)"
    ))
}

/// The DER inside the first PEM block, and whether it is PKCS#1 (`RSA PRIVATE KEY`).
fn pem_der(pem: &str) -> Result<(Vec<u8>, bool), ExecError> {
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(key_error("is encrypted, which is not supported"));
    }
    let (label, pkcs1) = if pem.contains("-----BEGIN PRIVATE KEY-----") {
        ("PRIVATE KEY", false)
    } else if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        ("RSA PRIVATE KEY", true)
    } else {
        return Err(key_error("is not a PEM private key"));
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = pem
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or_else(|| key_error("has no matching END line"))?;
    if body.contains("Proc-Type:") {
        return Err(key_error("is encrypted, which is not supported"));
    }
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| key_error("is not valid base64 PEM"))?;
    Ok((der, pkcs1))
}

/// The base64 SHA-256 of the DER SubjectPublicKeyInfo of the key's public half.
pub(crate) fn public_key_fingerprint(pem: &str) -> Result<String, ExecError> {
    let (der, pkcs1) = pem_der(pem)?;
    let pair = if pkcs1 {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    }
    .map_err(|_| key_error("is not a usable RSA key"))?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| key_error("has no encodable public key"))?;
    Ok(STANDARD.encode(Sha256::digest(spki.as_ref())))
}

impl KeyPairSigner {
    /// Loads a PEM private key (PKCS#8 or PKCS#1, unencrypted).
    pub(crate) fn from_pem(pem: &str) -> Result<KeyPairSigner, ExecError> {
        let fingerprint = public_key_fingerprint(pem)?;
        let key =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| key_error("is not a usable RSA key"))?;
        Ok(KeyPairSigner { key, fingerprint })
    }

    /// The claims for `account` and `user` at `now` (seconds since the epoch).
    pub(crate) fn claims(&self, account: &str, user: &str, now: i64) -> Claims {
        let qualified = format!("{}.{}", account.to_uppercase(), user.to_uppercase());
        Claims {
            iss: format!("{qualified}.SHA256:{}", self.fingerprint),
            sub: qualified,
            iat: now,
            exp: now + LIFETIME_SECS,
        }
    }

    /// A signed token for `account` and `user`, valid from `now`.
    pub(crate) fn token(&self, account: &str, user: &str, now: i64) -> Result<String, ExecError> {
        install_crypto_provider();
        let claims = self.claims(account, user, now);
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| ExecError::config(format!("cannot sign the Snowflake key-pair token: {e}")))
    }
}

/// Selects the aws-lc-rs backend for `jsonwebtoken` explicitly, so signing works even when
/// another crate in the build enables its RustCrypto backend too.
fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const KEY: &str = include_str!("../../tests/fixtures/test_rsa_key.p8");
    const KEY_PKCS1: &str = include_str!("../../tests/fixtures/test_rsa_key_pkcs1.pem");
    const PUBLIC: &str = include_str!("../../tests/fixtures/test_rsa_key.pub");
    /// `openssl rsa -in test_rsa_key.p8 -pubout -outform DER | openssl dgst -sha256 -binary | base64`
    const OPENSSL_FINGERPRINT: &str = "6Hmp25Fvr2Fk+cwy8pK4GlUonFRz0t2RNkh4HKuH5jk=";

    #[test]
    fn fingerprint_matches_openssl() {
        assert_eq!(
            public_key_fingerprint(KEY).expect("fingerprint"),
            OPENSSL_FINGERPRINT
        );
        assert_eq!(
            public_key_fingerprint(KEY_PKCS1).expect("fingerprint"),
            OPENSSL_FINGERPRINT
        );
    }

    #[test]
    fn claims_are_uppercased_and_expire_in_59_minutes() {
        let signer = KeyPairSigner::from_pem(KEY).expect("loads");
        let c = signer.claims("acme-prod", "platform_admin", 1_700_000_000);
        assert_eq!(c.sub, "ACME-PROD.PLATFORM_ADMIN");
        assert_eq!(
            c.iss,
            format!("ACME-PROD.PLATFORM_ADMIN.SHA256:{OPENSSL_FINGERPRINT}")
        );
        assert_eq!(c.exp - c.iat, 3540);
    }

    #[test]
    fn token_verifies_with_the_public_key() {
        let signer = KeyPairSigner::from_pem(KEY).expect("loads");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let token = signer.token("xy12345", "svc", now).expect("signs");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        let mut v = Validation::new(Algorithm::RS256);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).expect("public key"),
            &v,
        )
        .expect("verifies");
        assert_eq!(data.claims, signer.claims("xy12345", "svc", now));
    }

    #[test]
    fn bad_keys_are_explained_without_their_content() {
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHz\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = KeyPairSigner::from_pem(enc).expect_err("encrypted");
        assert!(e.to_string().contains("encrypted"), "{e}");
        let junk = "-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldA==\n-----END PRIVATE KEY-----\n";
        let e = KeyPairSigner::from_pem(junk).expect_err("junk");
        assert!(!e.to_string().contains("bm90LWEta2V5"), "{e}");
        assert!(KeyPairSigner::from_pem("hunter2").is_err());
    }
}
