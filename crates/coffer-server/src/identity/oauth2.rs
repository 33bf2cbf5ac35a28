//! `oauth2` methods, logged in with access type `jwt`/`oidc`: a CI job's ID
//! token verified with the issuer's JWKS (URL or inline). The method must
//! bind an audience (or, for issuers without `aud`, client IDs), and the
//! Coffer token expires no later than the JWT.

use std::sync::Arc;

use base64::Engine as _;
use coffer_core::model::AuthMethod;
use serde_json::{Value, json};

use super::{KeySource, Verified, settings, verify_jwt};
use crate::error::ApiError;
use crate::jwt::{self, DEFAULT_REFUSED_EVENTS, KeySet, OAuth2Config, check_jwks_url};
use crate::state::{AppState, now_ms};
use crate::wire::Body;

/// Why an OAuth2/JWT method needs an audience. Issuers such as GitLab,
/// GitHub or a cloud's OIDC provider sign tokens for many relying parties
/// with the same keys; only `aud` says which one a token was minted for.
const MISSING_AUDIENCE: &str = "missing required parameter audience: the aud value of the tokens meant for this Coffer server (GitLab: id_tokens: <NAME>: aud; GitHub Actions: the audience requested for the OIDC token; coffer dev oidc mint --aud). Without it, a token minted for any other service that trusts the same issuer would log in here. For an issuer whose tokens carry no aud at all, bind bound-client-ids instead (tokens carrying aud are then refused)";

/// Validated settings of `create-auth-method-oauth2`: `audience` is
/// required, or, for issuers whose tokens carry no `aud`, `bound-client-ids`
/// (then tokens that carry an `aud` are refused: see `jwt::check_claims`).
pub(crate) fn settings_from_body(body: &Body) -> Result<Value, ApiError> {
    let unique_identifier = body
        .opt_str("unique-identifier")?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad(
                "missing required parameter unique-identifier: the claim that names the caller, e.g. user_login, sub or repository",
            )
        })?;
    if unique_identifier.len() > 128 {
        return Err(ApiError::bad("unique-identifier is longer than 128 bytes"));
    }
    let (jwks_uri, jwks_json) = jwks_settings(body, true)?;
    let audience = body.list("audience")?;
    let bound_client_ids = body.list("bound-client-ids")?;
    let issuer = body
        .opt_str("issuer")?
        .unwrap_or_default()
        .trim()
        .to_owned();
    let refuse_events = match body.get("refuse-events") {
        None => DEFAULT_REFUSED_EVENTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        Some(_) => body
            .list("refuse-events")?
            .into_iter()
            .filter(|e| e != "none")
            .collect(),
    };
    for (what, list) in [
        ("audience", &audience),
        ("bound-client-ids", &bound_client_ids),
        ("refuse-events", &refuse_events),
    ] {
        if list.len() > 32 || list.iter().any(|v| v.len() > 512) {
            return Err(ApiError::bad(format!(
                "{what} accepts at most 32 values of 512 bytes"
            )));
        }
    }
    if issuer.len() > 512 {
        return Err(ApiError::bad("issuer is longer than 512 bytes"));
    }
    if audience.is_empty() && bound_client_ids.is_empty() {
        return Err(ApiError::bad(MISSING_AUDIENCE));
    }
    let cfg = OAuth2Config {
        unique_identifier,
        jwks_uri,
        jwks_json,
        issuer,
        audience,
        bound_client_ids,
        refuse_replay: body.bool_or("refuse-replay", false)?,
        refuse_events,
    };
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

/// `jwks-uri` or `jwks-json-data` (base64 JSON): exactly one unless
/// `required` is false (then neither means "use the type's default").
pub(crate) fn jwks_settings(body: &Body, required: bool) -> Result<(String, String), ApiError> {
    let jwks_uri = body
        .opt_str("jwks-uri")?
        .unwrap_or_default()
        .trim()
        .to_owned();
    let jwks_data = body.opt_str("jwks-json-data")?.unwrap_or_default();
    match (jwks_uri.is_empty(), jwks_data.trim().is_empty()) {
        (true, true) if required => Err(ApiError::bad(
            "missing required parameter jwks-uri (the issuer's JWKS URL) or jwks-json-data (the JWKS, base64)",
        )),
        (true, true) => Ok((String::new(), String::new())),
        (false, false) => Err(ApiError::bad(
            "pass either jwks-uri or jwks-json-data, not both",
        )),
        (false, true) => {
            if jwks_uri.len() > 2048 {
                return Err(ApiError::bad("jwks-uri is longer than 2048 bytes"));
            }
            check_jwks_url(&jwks_uri).map_err(ApiError::BadRequest)?;
            Ok((jwks_uri, String::new()))
        }
        (true, false) => {
            let data = jwks_data.trim();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data))
                .map_err(|_| {
                    ApiError::bad("jwks-json-data must be the JWKS JSON, base64-encoded")
                })?;
            KeySet::parse(&bytes).map_err(|e| ApiError::bad(format!("jwks-json-data: {e}")))?;
            let json = String::from_utf8(bytes)
                .map_err(|_| ApiError::bad("jwks-json-data is not UTF-8 JSON"))?;
            Ok((String::new(), json))
        }
    }
}

/// Inline JWKS as the API shows it (base64), empty when a URL is used.
pub(crate) fn jwks_data_b64(jwks_json: &str) -> String {
    if jwks_json.is_empty() {
        String::new()
    } else {
        base64::engine::general_purpose::STANDARD.encode(jwks_json)
    }
}

pub(crate) fn rules_json(am: &AuthMethod) -> Value {
    let c: OAuth2Config = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "jwks_uri": c.jwks_uri,
        "jwks_json_data": jwks_data_b64(&c.jwks_json),
        "unique_identifier": c.unique_identifier,
        "issuer": c.issuer,
        "audience": c.audience.join(","),
        "bound_client_ids": c.bound_client_ids,
        // The SDK's (and Terraform's) name of the same list.
        "bound_clients_id": c.bound_client_ids,
        "bound_claims": [],
        "refuse_replay": c.refuse_replay,
        "refuse_events": c.refuse_events,
    })
}

/// The job's ID token, verified; the Coffer token carries its claims and
/// is named by the unique-identifier claim.
pub(crate) async fn login(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    verify(state, am, body, true).await
}

/// Verify the token; `remember` records its `jti` for replay refusal
/// (off when only explaining access).
pub(crate) async fn verify(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
    remember: bool,
) -> Result<Verified, ApiError> {
    let token = body.opt_str("jwt")?.unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter jwt (the CI job's ID token)",
        ));
    }
    let cfg: OAuth2Config = settings(am)?;
    let verified = verify_jwt(
        state,
        am,
        token,
        KeySource::new(&cfg.jwks_uri, &cfg.jwks_json),
        jwt::Expectations {
            unique_identifier: &cfg.unique_identifier,
            issuer: Some(cfg.issuer.as_str()).filter(|i| !i.is_empty()),
            audience: &cfg.audience,
            bound_client_ids: &cfg.bound_client_ids,
            refuse_events: &cfg.refuse_events,
            ..Default::default()
        },
    )
    .await?;
    if cfg.refuse_replay && remember {
        check_replay(state, am, &verified)?;
    }
    Ok(Verified {
        identity: verified.identity.clone(),
        claims: coffer_core::subclaims::flatten_claims(&verified.claims),
        not_after_ms: Some(super::jwt_not_after_ms(verified.exp)),
    })
}

/// Refuse a second login with the same `jti` while the token is valid.
pub(crate) fn check_replay(
    state: &AppState,
    am: &AuthMethod,
    v: &jwt::Verified,
) -> Result<(), ApiError> {
    let fail = |e: jwt::Rejected| ApiError::Unauthorized(format!("JWT authentication failed: {e}"));
    let Some(jti) = &v.jti else {
        return Err(fail(jwt::Rejected(
            "replay check: this auth method refuses replays, so the JWT must carry a jti claim"
                .into(),
        )));
    };
    state
        .replay
        .check_and_remember(&am.access_id, jti, v.exp, now_ms() / 1000)
        .map_err(fail)
}
