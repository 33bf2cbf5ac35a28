//! `auth`, `validate-token`, `revoke-token`.

use std::net::IpAddr;
use std::sync::Arc;

use coffer_core::model::{AuthMethod, AuthMethodKind, TokenRecord};
use coffer_core::subclaims::Claims;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::Ctx;
use crate::jwt;
use crate::state::{AppState, now_ms};
use crate::timefmt::go_time;
use crate::wire::Body;

pub async fn auth(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let access_id = body.req_str("access-id")?.trim().to_owned();
    if access_id.len() > 64 {
        return Err(ApiError::bad("access-id is too long"));
    }
    ctx.access_id = access_id.clone();
    ctx.set_object(access_id.clone());
    let access_type = body
        .opt_str("access-type")?
        .unwrap_or_else(|| "access_key".into())
        .to_ascii_lowercase();
    let state = ctx.state.clone();
    // Failed-login back-off protects guessable secrets (access keys). A
    // signed JWT cannot be guessed, and JWT access IDs sit in CI files: a
    // back-off there would let anyone lock a project's jobs out.
    let limited = !matches!(access_type.as_str(), "jwt" | "oidc");
    if limited {
        state.limiter.check(&access_id)?;
    }

    let result = login(ctx, &state, &access_id, &access_type, body).await;
    if limited {
        match &result {
            Ok(_) => state.limiter.succeeded(&access_id),
            Err(ApiError::Unauthorized(_)) => state.limiter.failed(&access_id),
            Err(_) => {}
        }
    }
    result
}

async fn login(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    access_id: &str,
    access_type: &str,
    body: &Body,
) -> Result<Value, ApiError> {
    // One message for unknown IDs and wrong keys: no account enumeration.
    let failed =
        || ApiError::Unauthorized("authentication failed: wrong access ID or access key".into());
    let snap = state.snapshot();
    let am = snap.by_access_id.get(access_id).cloned();
    match access_type {
        "access_key" | "api_key" => {
            let key = body.opt_str("access-key")?.unwrap_or_default();
            if key.is_empty() {
                return Err(ApiError::bad("missing required parameter access-key"));
            }
            let Some(am) = am else {
                return Err(failed());
            };
            ctx.auth_method = am.name.clone();
            if am.kind != AuthMethodKind::ApiKey {
                return Err(ApiError::Unauthorized(format!(
                    "access ID {access_id} is a {} auth method; use access-type {}",
                    am.kind, am.kind
                )));
            }
            check_method_usable(&am, ctx.peer.ip())?;
            let ok = am
                .access_key_hash
                .as_ref()
                .is_some_and(|h| state.keys.access_key_hasher.verify(key.as_bytes(), h));
            if !ok {
                return Err(failed());
            }
            ctx.identity = access_id.to_owned();
            let (token, rec) = issue_token(state, &am, access_id.to_owned(), Claims::new()).await?;
            Ok(auth_response(&token, &rec))
        }
        "jwt" | "oidc" => {
            let Some(am) = am else {
                return Err(ApiError::Unauthorized(
                    "authentication failed: unknown access ID".into(),
                ));
            };
            jwt_login(ctx, state, am, body).await
        }
        "k8s" | "aws_iam" | "azure_ad" | "gcp" | "universal_identity" => Err(ApiError::bad(
            format!("access-type {access_type} is not enabled on this server yet; use access_key"),
        )),
        other => Err(ApiError::bad(format!(
            "unknown access-type {:?}: use access_key (alias api_key), jwt or oidc",
            coffer_core::name::truncate_for_message(other)
        ))),
    }
}

/// `jwt`/`oidc`: verify the token against the method's JWKS and rules;
/// the Coffer token carries the verified claims (for sub-claim matching)
/// and is named by the unique-identifier claim.
async fn jwt_login(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    am: Arc<AuthMethod>,
    body: &Body,
) -> Result<Value, ApiError> {
    ctx.auth_method = am.name.clone();
    if am.kind != AuthMethodKind::OAuth2 {
        return Err(ApiError::Unauthorized(format!(
            "access ID {} is a {} auth method, not a JWT one; use access-type {}",
            am.access_id,
            am.kind,
            if am.kind == AuthMethodKind::ApiKey {
                "access_key"
            } else {
                am.kind.as_str()
            }
        )));
    }
    let token = body.opt_str("jwt")?.unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter jwt (the CI job's ID token)",
        ));
    }
    check_method_usable(&am, ctx.peer.ip())?;
    let fail = |e: jwt::Rejected| ApiError::Unauthorized(format!("JWT authentication failed: {e}"));
    let parsed = jwt::ParsedJwt::parse(token).map_err(fail)?;
    let cfg = super::auth_methods::oauth2_settings(&am)?;
    let keys = if cfg.jwks_uri.is_empty() {
        state.jwks.inline(&am.access_id, &cfg.jwks_json).await
    } else {
        state
            .jwks
            .for_url(&am.access_id, &cfg.jwks_uri, parsed.kid.as_deref())
            .await
    }
    .map_err(fail)?;
    let now_secs = now_ms() / 1000;
    let verified = jwt::verify(
        &parsed,
        &keys,
        &jwt::Expectations {
            unique_identifier: &cfg.unique_identifier,
            issuer: Some(cfg.issuer.as_str()).filter(|i| !i.is_empty()),
            audience: &cfg.audience,
            bound_client_ids: &cfg.bound_client_ids,
            refuse_events: &cfg.refuse_events,
            leeway_secs: i64::try_from(state.config.jwt_leeway_secs).unwrap_or(60),
            now_secs,
        },
    )
    .map_err(fail)?;
    if cfg.refuse_replay {
        let Some(jti) = &verified.jti else {
            return Err(fail(jwt::Rejected(
                "replay check: this auth method refuses replays, so the JWT must carry a jti claim"
                    .into(),
            )));
        };
        state
            .replay
            .check_and_remember(&am.access_id, jti, verified.exp, now_secs)
            .map_err(fail)?;
    }
    ctx.identity = verified.identity.clone();
    let claims = coffer_core::subclaims::flatten_claims(&verified.claims);
    let (token, rec) = issue_token(state, &am, verified.identity, claims).await?;
    Ok(auth_response(&token, &rec))
}

/// Expiry and bound-IP checks shared by every access type.
pub fn check_method_usable(am: &AuthMethod, peer: IpAddr) -> Result<(), ApiError> {
    if am.access_expires_ms > 0 && am.access_expires_ms <= now_ms() {
        return Err(ApiError::Unauthorized(
            "authentication failed: this auth method's access has expired".into(),
        ));
    }
    if !am.bound_ips.is_empty() && !ip_allowed(&am.bound_ips, peer) {
        return Err(ApiError::Unauthorized(format!(
            "authentication failed: address {peer} is not in this auth method's bound IPs"
        )));
    }
    Ok(())
}

fn ip_allowed(bound: &[String], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    bound.iter().any(|b| {
        if let Ok(net) = b.parse::<ipnet::IpNet>() {
            net.contains(&peer)
        } else if let Ok(ip) = b.parse::<IpAddr>() {
            ip.to_canonical() == peer
        } else {
            false
        }
    })
}

/// Mint a token for an authenticated identity and store its keyed hash.
pub async fn issue_token(
    state: &Arc<AppState>,
    am: &AuthMethod,
    identity: String,
    claims: Claims,
) -> Result<(SecretString, TokenRecord), ApiError> {
    let token = coffer_crypto::new_token()?;
    let ttl = if am.token_ttl_secs > 0 {
        am.token_ttl_secs.min(state.config.max_token_ttl_secs)
    } else {
        state.config.token_ttl_secs
    };
    let now = now_ms();
    let rec = TokenRecord {
        token_hash: coffer_crypto::hash_secret(&state.keys.token_hasher, &token),
        access_id: am.access_id.clone(),
        auth_method_name: am.name.clone(),
        identity,
        claims,
        issued_ms: now,
        expires_ms: now + ttl * 1000,
    };
    state.store.insert_token(&rec).await?;
    state
        .tokens
        .insert(rec.token_hash.clone(), Arc::new(rec.clone()));
    Ok((token, rec))
}

fn auth_response(token: &SecretString, rec: &TokenRecord) -> Value {
    json!({
        "token": token.expose_secret(),
        "expiration": go_time(rec.expires_ms),
        "creds": {
            "token": token.expose_secret(),
            "expiry": rec.expires_ms / 1000,
            "access_id": rec.access_id,
            "auth_method_name": rec.auth_method_name,
            "sub_claims": rec.claims,
        }
    })
}

pub async fn validate_token(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let Some(token) = body.token() else {
        return Err(ApiError::bad("missing required parameter token"));
    };
    let state = ctx.state.clone();
    let hash = state.keys.token_hasher.hash(token.as_bytes());
    let rec = match state.tokens.get(&hash) {
        Some(r) => Some(r),
        None => state.store.get_token(&hash).await?.map(Arc::new),
    };
    let now = now_ms();
    let snap = state.snapshot();
    let v = match rec {
        None => json!({"is_valid": false, "reason": "unknown or revoked token"}),
        Some(r) => {
            ctx.access_id = r.access_id.clone();
            ctx.auth_method = r.auth_method_name.clone();
            ctx.identity = r.identity.clone();
            if r.expires_ms <= now {
                json!({"is_valid": false, "reason": "token expired", "expiration": go_time(r.expires_ms)})
            } else if !snap.by_access_id.contains_key(&r.access_id) {
                json!({"is_valid": false, "reason": "auth method deleted"})
            } else {
                json!({
                    "is_valid": true,
                    "reason": "",
                    "expiration": go_time(r.expires_ms),
                    "ttl": (r.expires_ms - now) / 1000,
                })
            }
        }
    };
    Ok(v)
}

pub async fn revoke_token(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let state = ctx.state.clone();
    let hash = ctx.caller()?.token.token_hash.clone();
    state.store.revoke_token(&hash).await?;
    state.tokens.remove(&hash);
    // Other nodes drop their caches when the generation moves.
    state.store.bump_generation().await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::ip_allowed;

    #[test]
    fn bound_ips() {
        let b = vec!["10.0.0.0/8".to_owned(), "127.0.0.1".to_owned()];
        assert!(ip_allowed(&b, "10.1.2.3".parse().unwrap()));
        assert!(ip_allowed(&b, "127.0.0.1".parse().unwrap()));
        assert!(ip_allowed(&b, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!ip_allowed(&b, "192.168.0.1".parse().unwrap()));
    }
}
