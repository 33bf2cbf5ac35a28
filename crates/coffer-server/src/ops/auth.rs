//! `auth`, `validate-token`, `revoke-token`.

use std::net::IpAddr;
use std::sync::Arc;

use coffer_core::model::{AuthMethod, AuthMethodKind, TokenRecord};
use coffer_core::subclaims::Claims;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::Ctx;
use crate::identity;
use crate::state::{AppState, now_ms};
use crate::timefmt::go_time;
use crate::wire::Body;

pub(super) async fn auth(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let mut access_type = "unknown";
    let result = auth_as(ctx, body, &mut access_type).await;
    let status = result
        .as_ref()
        .map_or_else(|e| e.status().as_u16(), |_| 200);
    crate::metrics::login(access_type, status);
    result
}

/// [`auth`], noting the access type (for metrics) once it is known.
async fn auth_as(
    ctx: &mut Ctx,
    body: &Body,
    kind_label: &mut &'static str,
) -> Result<Value, ApiError> {
    let access_id = body.req_str("access-id")?.trim().to_owned();
    if access_id.len() > 64 {
        return Err(ApiError::bad("access-id is too long"));
    }
    ctx.access_id = access_id.clone();
    ctx.set_object(access_id.clone());
    let access_type = body
        .opt_str("access-type")?
        .unwrap_or_else(|| "access_key".into())
        .trim()
        .to_ascii_lowercase();
    let kind = identity::kind_for_access_type(&access_type).ok_or_else(|| {
        ApiError::bad(format!(
            "unknown access-type {:?}: use access_key (alias api_key), jwt, oidc, k8s, aws_iam, azure_ad, gcp, universal_identity, cert or oidc (people, with code and state from oidc-auth-url)",
            coffer_core::name::truncate_for_message(&access_type)
        ))
    })?;
    *kind_label = identity::access_type_for(kind);
    let state = ctx.state.clone();
    // Failed-login back-off protects guessable secrets (access keys and
    // UID tokens). A signed identity document cannot be guessed, and JWT
    // access IDs sit in CI files: a back-off there would let anyone lock a
    // project's jobs out.
    let limited = matches!(
        kind,
        AuthMethodKind::ApiKey | AuthMethodKind::UniversalIdentity
    );
    let peer = ctx.peer.ip();
    if limited {
        state.limiter.check(&access_id, peer)?;
    }
    let result = login(ctx, &state, &access_id, kind, body).await;
    if limited {
        match &result {
            Ok(_) => state.limiter.succeeded(&access_id, peer),
            Err(ApiError::Unauthorized(_)) => state.limiter.failed(&access_id, peer),
            Err(_) => {}
        }
    }
    result
}

async fn login(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    access_id: &str,
    kind: AuthMethodKind,
    body: &Body,
) -> Result<Value, ApiError> {
    let snap = state.snapshot();
    let am = snap.by_access_id.get(access_id).cloned();
    if kind == AuthMethodKind::ApiKey {
        return api_key_login(ctx, state, access_id, am, body).await;
    }
    let Some(am) = am else {
        return Err(ApiError::Unauthorized(
            "authentication failed: unknown access ID".into(),
        ));
    };
    ctx.auth_method = am.name.clone();
    // `oidc` also names the OAuth2/JWT type's logins (a CI job's ID token
    // sent as access-type oidc), as it always has.
    if am.kind != kind && !(kind == AuthMethodKind::Oidc && am.kind == AuthMethodKind::OAuth2) {
        return Err(wrong_type(&am));
    }
    check_method_usable(&am, ctx.peer.ip(), Use::Login)?;
    let v = identity::verify(ctx, state, &am, body).await?;
    ctx.identity = v.identity.clone();
    let (token, rec) = issue_token(ctx, &am, v.identity, v.claims, v.not_after_ms)?;
    Ok(auth_response(&token, &rec))
}

/// `get-cert-challenge {access-id, cert-data}` → `{challenge}`: the first
/// step of a cert login (see `identity/cert.rs`). The certificate is
/// checked now, so a client learns at once what is wrong with it.
pub(super) async fn get_cert_challenge(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let am = first_step_method(ctx, body, AuthMethodKind::Cert)?;
    let state = ctx.state.clone();
    identity::cert::issue_challenge(&state, &am, body).await
}

/// `oidc-auth-url {access-id, redirect-uri, client-nonce}` → `{auth_url, state}`: the
/// first step of a person's OIDC login (see `identity/oidc.rs`).
pub(super) async fn oidc_auth_url(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let am = first_step_method(ctx, body, AuthMethodKind::Oidc)?;
    let state = ctx.state.clone();
    identity::oidc::auth_url(&state, &am, body).await
}

/// The usable auth method of `kind` whose `access-id` the first step of a
/// two-step login names (recorded as the request's identity).
fn first_step_method(
    ctx: &mut Ctx,
    body: &Body,
    kind: AuthMethodKind,
) -> Result<Arc<AuthMethod>, ApiError> {
    let access_id = body.req_str("access-id")?.trim().to_owned();
    if access_id.len() > 64 {
        return Err(ApiError::bad("access-id is too long"));
    }
    ctx.access_id = access_id.clone();
    ctx.set_object(access_id.clone());
    let snap = ctx.state.snapshot();
    let Some(am) = snap.by_access_id.get(&access_id).cloned() else {
        return Err(ApiError::Unauthorized(
            "authentication failed: unknown access ID".into(),
        ));
    };
    ctx.auth_method = am.name.clone();
    if am.kind != kind {
        return Err(wrong_type(&am));
    }
    check_method_usable(&am, ctx.peer.ip(), Use::Login)?;
    Ok(am)
}

fn wrong_type(am: &AuthMethod) -> ApiError {
    ApiError::Unauthorized(format!(
        "access ID {} is a {} auth method; log in with access-type {}",
        am.access_id,
        am.kind,
        identity::access_type_for(am.kind)
    ))
}

async fn api_key_login(
    ctx: &mut Ctx,
    state: &Arc<AppState>,
    access_id: &str,
    am: Option<Arc<AuthMethod>>,
    body: &Body,
) -> Result<Value, ApiError> {
    // One message for unknown IDs and wrong keys: no account enumeration.
    let failed =
        || ApiError::Unauthorized("authentication failed: wrong access ID or access key".into());
    let key = body.opt_str("access-key")?.unwrap_or_default();
    if key.is_empty() {
        return Err(ApiError::bad("missing required parameter access-key"));
    }
    let Some(am) = am else {
        return Err(failed());
    };
    ctx.auth_method = am.name.clone();
    if am.kind != AuthMethodKind::ApiKey {
        return Err(wrong_type(&am));
    }
    check_method_usable(&am, ctx.peer.ip(), Use::Login)?;
    let ok = am
        .access_key_hash
        .as_ref()
        .is_some_and(|h| state.keys.access_key_hasher.verify(key.as_bytes(), h));
    if !ok {
        return Err(failed());
    }
    ctx.identity = access_id.to_owned();
    let (token, rec) = issue_token(ctx, &am, access_id.to_owned(), Claims::new(), None)?;
    Ok(auth_response(&token, &rec))
}

/// What an auth method's credential is being used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// A login (`auth`, UID token operations).
    Login,
    /// A token minted by the method, on any request.
    Token,
}

/// Expiry and bound-IP checks shared by every access type, at login and
/// again on every request a token of the method makes.
pub(super) fn check_method_usable(
    am: &AuthMethod,
    peer: IpAddr,
    used: Use,
) -> Result<(), ApiError> {
    let what = match used {
        Use::Login => "authentication failed",
        Use::Token => "token refused",
    };
    if am.access_expires_ms > 0 && am.access_expires_ms <= now_ms() {
        return Err(ApiError::Unauthorized(format!(
            "{what}: the access of auth method {:?} has expired",
            am.name
        )));
    }
    if !am.bound_ips.is_empty() && !ip_allowed(&am.bound_ips, peer) {
        return Err(ApiError::Unauthorized(format!(
            "{what}: address {peer} is not in the bound IPs of auth method {:?}",
            am.name
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

/// Mint a token for an authenticated identity; its keyed hash is stored
/// with the request's audit record.
pub(super) fn issue_token(
    ctx: &mut Ctx,
    am: &AuthMethod,
    identity: String,
    claims: Claims,
    not_after_ms: Option<i64>,
) -> Result<(SecretString, TokenRecord), ApiError> {
    let state = &ctx.state;
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
        // Never outlive the proof the login presented (e.g. a UID token).
        expires_ms: not_after_ms.map_or(now + ttl * 1000, |n| n.min(now + ttl * 1000)),
    };
    // Written with this request's audit record (group commit), before the
    // response leaves; cached now so the caller can use it at once.
    ctx.minted = Some(rec.clone());
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

pub(super) async fn validate_token(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
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
            } else if let Some(Err(e)) = snap
                .by_access_id
                .get(&r.access_id)
                .filter(|am| am.kind == AuthMethodKind::Cert)
                .map(|am| identity::cert::token_still_trusted(am, &r.claims))
            {
                json!({"is_valid": false, "reason": e.to_string()})
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

pub(super) async fn revoke_token(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    if super::uid::called_with_uid(body) {
        return Err(ApiError::bad(
            "revoke-token revokes session tokens; revoke a UID token with uid-revoke-token",
        ));
    }
    let state = ctx.state.clone();
    let hash = ctx.caller()?.token.token_hash.clone();
    // The generation moves in the same transaction: other nodes drop their
    // caches within a second; this one now, before anything else.
    state.store.revoke_token(&hash, ctx.audit()).await?;
    state.tokens.remove(&hash);
    Ok(json!({}))
}

/// `get-caller-identity` (Coffer): who the calling token is — access ID,
/// auth method and its type, identity, the claims it logged in with, its
/// roles and its expiry. Needs no rule: it only tells a caller about
/// itself.
pub(super) async fn get_caller_identity(ctx: &mut Ctx, _body: &Body) -> Result<Value, ApiError> {
    let state = ctx.state.clone();
    let caller = ctx.caller()?;
    let token = caller.token.clone();
    let roles: Vec<Value> = caller
        .roles
        .iter()
        .map(|r| json!({"name": r.name, "audit_access": r.audit_access.as_str()}))
        .collect();
    let kind = state
        .snapshot()
        .by_access_id
        .get(&token.access_id)
        .map(|am| am.kind.as_str());
    let now = now_ms();
    ctx.set_object(token.access_id.clone());
    Ok(json!({
        "access_id": token.access_id,
        "auth_method_name": token.auth_method_name,
        "auth_method_type": kind,
        "identity": token.identity,
        "sub_claims": token.claims,
        "roles": roles,
        "issued": go_time(token.issued_ms),
        "expiration": go_time(token.expires_ms),
        "ttl": (token.expires_ms - now).max(0) / 1000,
    }))
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
