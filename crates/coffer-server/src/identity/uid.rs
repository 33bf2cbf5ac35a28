//! `universal_identity` methods (Akeyless "Universal Identity", UID): a
//! machine without a cloud identity holds a Coffer-issued UID token
//! (`u-` + 64 hex characters) and rotates it regularly. An admin makes root
//! tokens (`uid-generate-token`); a token may make child tokens. The
//! operations on tokens live in `ops/uid.rs`; this module holds the
//! method's settings, the secret format and the login check.
//!
//! Only the keyed hash of a secret is stored (hasher purpose
//! `uid-token-hash`). Each token also has a public ID (`uid-…`) that never
//! changes; it names the caller in the audit log and in session tokens
//! minted from the UID token, and is the `token_id` claim.

use std::sync::Arc;

use coffer_core::model::{AuthMethod, UidToken};
use coffer_core::subclaims::Claims;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroize;

use super::Verified;
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms};
use crate::wire::Body;

/// Prefix of UID token secrets (session tokens start with `t-`).
pub(crate) const SECRET_PREFIX: &str = "u-";
/// Prefix of UID token IDs.
pub(crate) const ID_PREFIX: &str = "uid-";
/// Hex characters after the prefix (256 bits).
const SECRET_HEX_LEN: usize = 64;

/// Default TTL of a token and of each rotation, in minutes (Akeyless' default).
pub(crate) const DEFAULT_TTL_MINUTES: i64 = 60;
/// Longest TTL and child-TTL limit, in minutes (30 days; Akeyless' default
/// child-ttl-limit). UID tokens are meant to be short-lived and rotated.
pub(crate) const MAX_TTL_MINUTES: i64 = 43_200;
/// Deepest token tree (root = 1). Also Akeyless' default tree-length.
pub(crate) const MAX_TREE_LENGTH: i32 = 200;

/// The claim carrying the UID token's ID (usable in association sub-claims).
pub(crate) const TOKEN_ID_CLAIM: &str = "token_id";

/// Stored settings of a `universal_identity` method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UidSettings {
    /// Lifetime of a root token, and of a token after each rotation, in minutes.
    pub ttl_minutes: i64,
    /// Root tokens cannot be rotated (they die at the end of their TTL).
    pub deny_rotate: bool,
    /// Root tokens cannot create child tokens.
    pub deny_inheritance: bool,
    /// Longest `child-ttl` accepted by `uid-create-child-token`, in minutes.
    pub child_ttl_limit_minutes: i64,
    /// Deepest token allowed (root = 1, its children 2, ...).
    pub tree_length: i32,
}

/// Validated settings of `create-auth-method-universal-identity`: `ttl`
/// (minutes, default 60), `deny-rotate`, `deny-inheritance`,
/// `child-ttl-limit` (minutes, default 43200) and `tree-length` (default
/// 200). Akeyless' expiration-notification options
/// (`uid-expiration-event-at`, `expiration-event-in`) are accepted and
/// ignored: Coffer sends no notifications.
pub(crate) fn settings_from_body(body: &Body) -> Result<Value, ApiError> {
    let minutes = |key: &str, default: i64| -> Result<i64, ApiError> {
        match body.opt_i64(key)? {
            None | Some(0) => Ok(default),
            Some(m) if (1..=MAX_TTL_MINUTES).contains(&m) => Ok(m),
            Some(_) => Err(ApiError::bad(format!(
                "{key} is in minutes: 1 to {MAX_TTL_MINUTES} (30 days)"
            ))),
        }
    };
    let ttl_minutes = minutes("ttl", DEFAULT_TTL_MINUTES)?;
    let child_ttl_limit_minutes = minutes("child-ttl-limit", MAX_TTL_MINUTES)?;
    let tree_length = match body.opt_i64("tree-length")? {
        None | Some(0) => MAX_TREE_LENGTH,
        Some(n) => i32::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_TREE_LENGTH).contains(n))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "tree-length is the deepest token level allowed (root = 1): 1 to {MAX_TREE_LENGTH}"
                ))
            })?,
    };
    let s = UidSettings {
        ttl_minutes,
        deny_rotate: body.bool_or("deny-rotate", false)?,
        deny_inheritance: body.bool_or("deny-inheritance", false)?,
        child_ttl_limit_minutes,
        tree_length,
    };
    serde_json::to_value(&s).map_err(ApiError::internal)
}

/// The settings of a `universal_identity` method.
pub(crate) fn settings_of(am: &AuthMethod) -> Result<UidSettings, ApiError> {
    super::settings(am)
}

/// `universal_identity_access_rules` of `get-auth-method`.
pub(crate) fn rules_json(am: &AuthMethod) -> Value {
    match settings_of(am) {
        Ok(s) => json!({
            "ttl": s.ttl_minutes,
            "deny_rotate": s.deny_rotate,
            "deny_inheritance": s.deny_inheritance,
            "child_ttl_limit": s.child_ttl_limit_minutes,
            "tree_length": s.tree_length,
        }),
        Err(_) => json!({}),
    }
}

/// Does a presented credential claim to be a UID token (rather than a
/// session token)? Only the prefix: [`lookup`] checks the rest.
pub(crate) fn is_uid_secret(s: &str) -> bool {
    s.starts_with(SECRET_PREFIX)
}

/// Does it have the exact shape of a UID secret?
fn well_formed(s: &str) -> bool {
    s.len() == SECRET_PREFIX.len() + SECRET_HEX_LEN
        && s.starts_with(SECRET_PREFIX)
        && s[SECRET_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

/// A new UID token secret: `u-` and 64 hex characters (256 bits).
pub(crate) fn new_secret() -> Result<SecretString, ApiError> {
    let mut b = [0u8; 32];
    coffer_crypto::fill_random(&mut b)?;
    let s = format!("{SECRET_PREFIX}{}", hex::encode(b));
    b.zeroize();
    Ok(SecretString::from(s))
}

/// A new token ID: `uid-` and 16 alphanumerics.
pub(crate) fn new_token_id() -> Result<String, ApiError> {
    Ok(format!("{ID_PREFIX}{}", coffer_crypto::random_alnum(16)?))
}

/// The keyed hash a secret is stored and looked up under.
pub(crate) fn hash(state: &AppState, secret: &str) -> Vec<u8> {
    state.keys.uid_token_hasher.hash(secret.as_bytes())
}

/// [`hash`] of a freshly minted secret.
pub(crate) fn hash_new(state: &AppState, secret: &SecretString) -> Vec<u8> {
    hash(state, secret.expose_secret())
}

/// The stored token a presented secret currently is (revoked and expired
/// ones included: the caller decides). A malformed secret is unknown.
pub(crate) async fn lookup(state: &AppState, secret: &str) -> Result<Option<UidToken>, ApiError> {
    if !well_formed(secret) {
        return Ok(None);
    }
    Ok(state
        .store
        .get_uid_token_by_hash(&hash(state, secret))
        .await?)
}

/// The claims of a caller holding `token`: its ID.
pub(crate) fn claims(token: &UidToken) -> Claims {
    Claims::from([(TOKEN_ID_CLAIM.to_owned(), vec![token.token_id.clone()])])
}

/// Why a token that exists cannot be used now, if it cannot.
pub(crate) fn unusable(token: &UidToken, now: i64) -> Option<ApiError> {
    if token.revoked {
        Some(ApiError::Unauthorized(format!(
            "UID token {} was revoked: ask an admin for a new one (uid-generate-token)",
            token.token_id
        )))
    } else if token.expires_ms <= now {
        Some(ApiError::Unauthorized(format!(
            "UID token {} expired at {}: rotate UID tokens before they expire (uid-rotate-token), or ask an admin for a new one",
            token.token_id,
            crate::timefmt::rfc3339(token.expires_ms)
        )))
    } else {
        None
    }
}

/// `auth` with `access-type: universal_identity`: the `uid-token` must be
/// the current secret of a live token of this method. The session token
/// never outlives the UID token (`not_after_ms`), and revoking the UID
/// token deletes it (see `ops/uid.rs`).
pub(crate) async fn login(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let secret = body.opt_str("uid-token")?.unwrap_or_default();
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter uid-token (the Universal Identity token, u-…)",
        ));
    }
    // One message for unknown secrets and other methods' tokens.
    let failed = || {
        ApiError::Unauthorized(
            "authentication failed: the uid-token is not a current UID token of this access ID (unknown, or replaced by a rotation)"
                .into(),
        )
    };
    let token = lookup(state, secret).await?.ok_or_else(failed)?;
    if token.access_id != am.access_id {
        return Err(failed());
    }
    ctx.identity = token.token_id.clone();
    if let Some(e) = unusable(&token, now_ms()) {
        return Err(e);
    }
    Ok(Verified {
        identity: token.token_id.clone(),
        claims: claims(&token),
        not_after_ms: Some(token.expires_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_well_formed_and_distinct() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(
            well_formed(a.expose_secret()),
            "{}",
            a.expose_secret().len()
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(is_uid_secret(a.expose_secret()));
        assert!(!is_uid_secret("t-abc"));
        assert!(!well_formed("u-xyz"));
        assert!(!well_formed(&format!("u-{}", "g".repeat(64))));
        let id = new_token_id().unwrap();
        assert!(id.starts_with(ID_PREFIX) && id.len() == ID_PREFIX.len() + 16);
        assert!(!is_uid_secret(&id), "IDs and secrets are told apart");
    }

    #[test]
    fn settings_defaults_and_bounds() {
        let s: UidSettings =
            serde_json::from_value(settings_from_body(&Body::parse(b"{}").unwrap()).unwrap())
                .unwrap();
        assert_eq!(s.ttl_minutes, 60);
        assert_eq!(s.child_ttl_limit_minutes, MAX_TTL_MINUTES);
        assert_eq!(s.tree_length, MAX_TREE_LENGTH);
        assert!(!s.deny_rotate && !s.deny_inheritance);
        // What the Python SDK sends by default.
        let sdk = br#"{"ttl":60,"child-ttl-limit":43200,"tree-length":200,"deny-rotate":"true","deny_inheritance":true}"#;
        let s: UidSettings =
            serde_json::from_value(settings_from_body(&Body::parse(sdk).unwrap()).unwrap())
                .unwrap();
        assert!(s.deny_rotate && s.deny_inheritance);
        for bad in [
            r#"{"ttl":-1}"#,
            r#"{"ttl":43201}"#,
            r#"{"child-ttl-limit":100000}"#,
            r#"{"tree-length":201}"#,
            r#"{"tree-length":-3}"#,
            r#"{"deny-rotate":"maybe"}"#,
        ] {
            let e = settings_from_body(&Body::parse(bad.as_bytes()).unwrap()).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{bad}: {e}");
        }
    }
}
