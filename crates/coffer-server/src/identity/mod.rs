//! Access types: how a login proves who it is. One file per type; each
//! turns a `create-auth-method-<type>` body into the method's stored
//! settings, verifies a login for that method, and renders its rules for
//! `get-auth-method`. `ops/auth.rs` owns the shared flow (lookup, back-off,
//! bound IPs, token minting) and calls [`verify`].

use std::sync::Arc;

use coffer_core::model::{AuthMethod, AuthMethodKind};
use coffer_core::subclaims::Claims;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::http::Ctx;
use crate::jwt;
use crate::state::{AppState, now_ms};
use crate::wire::Body;

pub(crate) mod aws_iam;
pub(crate) mod cert;
pub(crate) mod cloud_jwt;
pub(crate) mod k8s;
pub(crate) mod oauth2;
pub(crate) mod oidc;
pub(crate) mod uid;

/// Who logged in, as proven by the access type.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    /// Names the caller in the audit log and in the token.
    pub identity: String,
    /// Claims matched against role-association sub-claims.
    pub claims: Claims,
    /// Latest expiry (Unix ms) the proof allows for the Coffer token, if
    /// any: a JWT's `exp`, a UID token's expiry. `ops::auth::issue_token`
    /// caps the token's TTL at it, so a token never outlives its proof.
    pub not_after_ms: Option<i64>,
}

/// The auth-method kind an `access-type` value logs in to.
pub(crate) fn kind_for_access_type(access_type: &str) -> Option<AuthMethodKind> {
    Some(match access_type {
        "access_key" | "api_key" => AuthMethodKind::ApiKey,
        "jwt" => AuthMethodKind::OAuth2,
        "oidc" => AuthMethodKind::Oidc,
        "k8s" => AuthMethodKind::K8s,
        "aws_iam" => AuthMethodKind::AwsIam,
        "azure_ad" => AuthMethodKind::AzureAd,
        "gcp" => AuthMethodKind::Gcp,
        "universal_identity" => AuthMethodKind::UniversalIdentity,
        "cert" => AuthMethodKind::Cert,
        _ => return None,
    })
}

/// The `access-type` a client must send for a method of this kind.
pub(crate) fn access_type_for(kind: AuthMethodKind) -> &'static str {
    match kind {
        AuthMethodKind::ApiKey => "access_key",
        AuthMethodKind::OAuth2 => "jwt",
        other => other.as_str(),
    }
}

/// Verify a login against `am`, whose kind matches the access type.
/// API keys are checked in `ops/auth.rs` (they share the back-off path).
pub(crate) async fn verify(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    match am.kind {
        AuthMethodKind::OAuth2 => oauth2::login(state, am, body).await,
        AuthMethodKind::K8s => k8s::login(state, am, body).await,
        AuthMethodKind::AwsIam => aws_iam::login(state, am, body).await,
        AuthMethodKind::AzureAd => cloud_jwt::login_azure(state, am, body).await,
        AuthMethodKind::Gcp => cloud_jwt::login_gcp(state, am, body).await,
        AuthMethodKind::UniversalIdentity => uid::login(ctx, state, am, body).await,
        AuthMethodKind::Cert => cert::login(state, am, body).await,
        AuthMethodKind::Oidc => oidc::login(state, am, body).await,
        AuthMethodKind::ApiKey => Err(ApiError::internal("api keys are verified by ops::auth")),
    }
}

/// Verify a login proof for `explain-access`: as [`verify`], but nothing
/// is remembered (a `jti` stays usable for the real login).
pub(crate) async fn verify_for_explain(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    match am.kind {
        AuthMethodKind::OAuth2 => oauth2::verify(state, am, body, false).await,
        AuthMethodKind::Cert => cert::verify_for_explain(am, body).await,
        AuthMethodKind::Oidc => oidc::verify_for_explain(state, am, body).await,
        _ => verify(ctx, state, am, body).await,
    }
}

/// A method's stored settings, typed.
pub(crate) fn settings<T: DeserializeOwned>(am: &AuthMethod) -> Result<T, ApiError> {
    serde_json::from_value(am.config.clone()).map_err(|e| {
        ApiError::internal(format!("auth method {}: bad stored settings: {e}", am.name))
    })
}

/// The `access_info` key and value describing a method's type-specific
/// rules in `get-auth-method` (Akeyless names them `<type>_access_rules`).
pub(crate) fn rules_json(am: &AuthMethod) -> Option<(&'static str, Value)> {
    match am.kind {
        AuthMethodKind::ApiKey => Some((
            "api_key_access_rules",
            serde_json::json!({"alg": "hmac-sha256"}),
        )),
        AuthMethodKind::OAuth2 => Some(("oauth2_access_rules", oauth2::rules_json(am))),
        AuthMethodKind::K8s => Some(("k8s_access_rules", k8s::rules_json(am))),
        AuthMethodKind::AwsIam => Some(("aws_iam_access_rules", aws_iam::rules_json(am))),
        AuthMethodKind::AzureAd => Some(("azure_ad_access_rules", cloud_jwt::azure_rules_json(am))),
        AuthMethodKind::Gcp => Some(("gcp_access_rules", cloud_jwt::gcp_rules_json(am))),
        AuthMethodKind::UniversalIdentity => {
            Some(("universal_identity_access_rules", uid::rules_json(am)))
        }
        AuthMethodKind::Cert => Some(("cert_access_rules", cert::rules_json(am))),
        AuthMethodKind::Oidc => Some(("oidc_access_rules", oidc::rules_json(am))),
    }
}

/// Where a JWT-based method gets its verification keys.
pub(crate) struct KeySource<'a> {
    pub jwks_uri: &'a str,
    /// Inline JWKS JSON (`jwks-json-data`), used when `jwks_uri` is empty.
    pub jwks_json: &'a str,
}

impl<'a> KeySource<'a> {
    pub(crate) fn new(jwks_uri: &'a str, jwks_json: &'a str) -> Self {
        KeySource {
            jwks_uri,
            jwks_json,
        }
    }
}

/// Verify a JWT for a method: keys from the method's JWKS (cached per
/// access ID), then signature and claim rules. Every rejection names the
/// failed check.
pub(crate) async fn verify_jwt(
    state: &AppState,
    am: &AuthMethod,
    token: &str,
    keys: KeySource<'_>,
    expect: jwt::Expectations<'_>,
) -> Result<jwt::Verified, ApiError> {
    let what = match am.kind {
        AuthMethodKind::K8s => "Kubernetes",
        AuthMethodKind::AzureAd => "Azure AD",
        AuthMethodKind::Gcp => "GCP",
        _ => "JWT",
    };
    let fail =
        |e: jwt::Rejected| ApiError::Unauthorized(format!("{what} authentication failed: {e}"));
    let parsed = jwt::ParsedJwt::parse(token).map_err(fail)?;
    let set = if keys.jwks_uri.is_empty() {
        state.jwks.inline(&am.access_id, keys.jwks_json).await
    } else {
        state
            .jwks
            .for_url(&am.access_id, keys.jwks_uri, parsed.kid.as_deref())
            .await
    }
    .map_err(fail)?;
    let now = now_ms();
    let expect = jwt::Expectations {
        leeway_secs: i64::try_from(state.config.jwt_leeway_secs).unwrap_or(60),
        now_secs: now / 1000,
        ..expect
    };
    let verified = jwt::verify(&parsed, &set, &expect).map_err(fail)?;
    // Within the clock leeway an expired JWT still verifies, but the Coffer
    // token ends at `exp` (see `jwt_not_after_ms`): it would be born dead.
    if jwt_not_after_ms(verified.exp) <= now {
        return Err(fail(jwt::Rejected(format!(
            "exp check: the JWT expired at {} (accepted only within the clock leeway), and a Coffer token never outlives the JWT it was issued for; present a fresh token (and check the clocks)",
            crate::timefmt::rfc3339(jwt_not_after_ms(verified.exp))
        ))));
    }
    Ok(verified)
}

/// The latest expiry (Unix ms) of a Coffer token issued for a JWT whose
/// `exp` is `exp_secs`: the JWT's own expiry.
pub(crate) fn jwt_not_after_ms(exp_secs: i64) -> i64 {
    exp_secs.saturating_mul(1000)
}

/// A string field holding a credential, possibly base64-encoded (the SDKs
/// send `cloud-id` and the k8s token as base64). Returns the decoded text.
pub(crate) fn decode_b64_param(body: &Body, key: &str, what: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    let raw = body.opt_str(key)?.unwrap_or_default();
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ApiError::bad(format!(
            "missing required parameter {key} ({what})"
        )));
    }
    if raw.len() > 4 * jwt::MAX_TOKEN_BYTES {
        return Err(ApiError::Unauthorized(format!(
            "{key} is larger than {} bytes",
            4 * jwt::MAX_TOKEN_BYTES
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
        })
        .map_err(|_| {
            ApiError::Unauthorized(format!(
                "{key} is not valid base64 ({what}, base64-encoded)"
            ))
        })?;
    String::from_utf8(bytes)
        .map_err(|_| ApiError::Unauthorized(format!("{key} does not decode to text")))
}

/// A list parameter with bounded size, for bound-* settings.
pub(crate) fn bounded_list(body: &Body, key: &str) -> Result<Vec<String>, ApiError> {
    let list: Vec<String> = body
        .list(key)?
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if list.len() > 64 || list.iter().any(|v| v.len() > 512) {
        return Err(ApiError::bad(format!(
            "{key} accepts at most 64 values of 512 bytes"
        )));
    }
    Ok(list)
}
