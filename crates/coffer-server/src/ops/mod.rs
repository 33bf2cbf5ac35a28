//! Operations, one module per family. Each handler authorizes through
//! [`require`] and returns the JSON response; the pipeline in `http.rs`
//! does decoding, authentication, audit and encoding.

use std::sync::Arc;

use coffer_core::model::AuthMethodKind;
use coffer_core::policy::{Caps, RuleType, effective};
use serde_json::Value;

use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{Caller, now_ms};
use crate::wire::Body;

mod audit_ops;
mod auth;
mod auth_methods;
mod explain;
mod items;
mod roles;
mod uid;

/// Operations that are called without a token.
/// The `uid-*` ones authenticate themselves: with the `uid-token` they act
/// on, or as an admin with `token` (see `uid.rs`).
const PUBLIC: &[&str] = &[
    "auth",
    "validate-token",
    "uid-rotate-token",
    "uid-create-child-token",
    "uid-revoke-token",
    "uid-list-children",
];

const AUTHENTICATED: &[&str] = &[
    "revoke-token",
    "create-auth-method",
    "auth-method-create-api-key",
    "create-auth-method-oauth2",
    "auth-method-create-oauth2",
    "create-auth-method-k8s",
    "auth-method-create-k8s",
    "create-auth-method-aws-iam",
    "auth-method-create-aws-iam",
    "create-auth-method-azure-ad",
    "auth-method-create-azure-ad",
    "create-auth-method-gcp",
    "auth-method-create-gcp",
    "create-auth-method-universal-identity",
    "auth-method-create-universal-identity",
    "get-auth-method",
    "list-auth-methods",
    "delete-auth-method",
    "uid-generate-token",
    "create-role",
    "get-role",
    "list-roles",
    "delete-role",
    "set-role-rule",
    "delete-role-rule",
    "assoc-role-am",
    "delete-assoc",
    "create-secret",
    "update-secret-val",
    "get-secret-value",
    "describe-item",
    "list-items",
    "delete-item",
    "audit-list",
    "audit-verify",
    "explain-access",
];

pub fn is_known(op: &str) -> bool {
    PUBLIC.contains(&op) || AUTHENTICATED.contains(&op)
}

pub async fn dispatch(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    match ctx.op.as_str() {
        "auth" => return auth::auth(ctx, body).await,
        "validate-token" => return auth::validate_token(ctx, body).await,
        "uid-rotate-token" => return uid::rotate(ctx, body).await,
        "uid-create-child-token" => return uid::create_child(ctx, body).await,
        "uid-revoke-token" => return uid::revoke(ctx, body).await,
        "uid-list-children" => return uid::list_children(ctx, body).await,
        _ => {}
    }
    authenticate(ctx, body).await?;
    match ctx.op.as_str() {
        "revoke-token" if uid::called_with_uid(body) => Err(ApiError::bad(
            "revoke-token revokes session tokens; revoke a UID token with uid-revoke-token",
        )),
        "revoke-token" => auth::revoke_token(ctx).await,
        "create-auth-method" | "auth-method-create-api-key" => {
            auth_methods::create_api_key(ctx, body).await
        }
        "create-auth-method-oauth2" | "auth-method-create-oauth2" => {
            auth_methods::create_typed(ctx, body, AuthMethodKind::OAuth2).await
        }
        "create-auth-method-k8s" | "auth-method-create-k8s" => {
            auth_methods::create_typed(ctx, body, AuthMethodKind::K8s).await
        }
        "create-auth-method-aws-iam" | "auth-method-create-aws-iam" => {
            auth_methods::create_typed(ctx, body, AuthMethodKind::AwsIam).await
        }
        "create-auth-method-azure-ad" | "auth-method-create-azure-ad" => {
            auth_methods::create_typed(ctx, body, AuthMethodKind::AzureAd).await
        }
        "create-auth-method-gcp" | "auth-method-create-gcp" => {
            auth_methods::create_typed(ctx, body, AuthMethodKind::Gcp).await
        }
        "create-auth-method-universal-identity" | "auth-method-create-universal-identity" => {
            auth_methods::create_typed(ctx, body, AuthMethodKind::UniversalIdentity).await
        }
        "get-auth-method" => auth_methods::get(ctx, body).await,
        "list-auth-methods" => auth_methods::list(ctx, body).await,
        "delete-auth-method" => auth_methods::delete(ctx, body).await,
        "uid-generate-token" => uid::generate(ctx, body).await,
        "create-role" => roles::create(ctx, body).await,
        "get-role" => roles::get(ctx, body).await,
        "list-roles" => roles::list(ctx, body).await,
        "delete-role" => roles::delete(ctx, body).await,
        "set-role-rule" => roles::set_rule(ctx, body).await,
        "delete-role-rule" => roles::delete_rule(ctx, body).await,
        "assoc-role-am" => roles::assoc(ctx, body).await,
        "delete-assoc" => roles::delete_assoc(ctx, body).await,
        "create-secret" => items::create_secret(ctx, body).await,
        "update-secret-val" => items::update_secret_val(ctx, body).await,
        "get-secret-value" => items::get_secret_value(ctx, body).await,
        "describe-item" => items::describe_item(ctx, body).await,
        "list-items" => items::list_items(ctx, body).await,
        "delete-item" => items::delete_item(ctx, body).await,
        "audit-list" => audit_ops::list(ctx, body).await,
        "audit-verify" => audit_ops::verify(ctx, body).await,
        "explain-access" => explain::explain_access(ctx, body).await,
        other => Err(ApiError::NotFound(format!("unknown operation {other:?}"))),
    }
}

/// Resolve the body's token to a caller: cache first, then the store.
async fn authenticate(ctx: &mut Ctx, body: &Body) -> Result<(), ApiError> {
    let token = body.token().ok_or_else(|| {
        ApiError::Unauthorized(
            "missing token: log in with /auth and pass the token in the \"token\" field".into(),
        )
    })?;
    if token.len() > 4096 {
        return Err(ApiError::Unauthorized("invalid token".into()));
    }
    if crate::identity::uid::is_uid_secret(&token) {
        return uid::authenticate_uid(ctx, &token).await;
    }
    let state = ctx.state.clone();
    let hash = state.keys.token_hasher.hash(token.as_bytes());
    let rec = match state.tokens.get(&hash) {
        Some(rec) => rec,
        None => {
            let rec = state.store.get_token(&hash).await?.ok_or_else(|| {
                ApiError::Unauthorized("invalid token: unknown or revoked".into())
            })?;
            let rec = Arc::new(rec);
            if rec.expires_ms > now_ms() {
                state.tokens.insert(hash.clone(), rec.clone());
            }
            rec
        }
    };
    ctx.access_id = rec.access_id.clone();
    ctx.auth_method = rec.auth_method_name.clone();
    ctx.identity = rec.identity.clone();
    if rec.expires_ms <= now_ms() {
        state.tokens.remove(&hash);
        return Err(ApiError::Unauthorized(
            "token expired: log in again with /auth".into(),
        ));
    }
    let snap = state.snapshot();
    // A deleted auth method takes its tokens with it, immediately.
    match snap.by_access_id.get(&rec.access_id) {
        Some(am) if am.name == rec.auth_method_name => {}
        _ => {
            state.tokens.remove(&hash);
            return Err(ApiError::Unauthorized(
                "invalid token: its auth method no longer exists".into(),
            ));
        }
    }
    let roles = snap.roles_for(&rec);
    ctx.caller = Some(Caller { token: rec, roles });
    Ok(())
}

/// Refuse unless the caller holds every capability in `need` on the object.
pub fn require(ctx: &Ctx, rule_type: RuleType, name: &str, need: Caps) -> Result<(), ApiError> {
    let caller = ctx.caller()?;
    if effective(caller.rules(), rule_type, name).contains(need) {
        Ok(())
    } else {
        Err(denied(rule_type, name, need))
    }
}

/// Refuse unless the caller holds at least one capability of `any`.
pub fn require_any(ctx: &Ctx, rule_type: RuleType, name: &str, any: Caps) -> Result<(), ApiError> {
    let caller = ctx.caller()?;
    if effective(caller.rules(), rule_type, name).intersects(any) {
        Ok(())
    } else {
        Err(denied(rule_type, name, any))
    }
}

fn denied(rule_type: RuleType, name: &str, need: Caps) -> ApiError {
    ApiError::Forbidden(format!(
        "access denied: no role of this caller grants {} on {} {name:?}",
        need.names().join("+"),
        rule_type
    ))
}

/// Can the caller `need` on the object? (For filtering lists.)
pub fn allowed(caller: &Caller, rule_type: RuleType, name: &str, need: Caps) -> bool {
    effective(caller.rules(), rule_type, name).contains(need)
}

/// Normalise a name parameter and record it as the audit object.
pub fn name_param(ctx: &mut Ctx, body: &Body, key: &str) -> Result<String, ApiError> {
    let raw = body.req_str(key)?;
    ctx.set_object(coffer_core::name::truncate_for_message(&raw));
    let name = coffer_core::name::normalize_name(&raw)?;
    ctx.set_object(name.clone());
    Ok(name)
}

/// Optional RFC 3339 date field: omitted rather than empty.
pub fn date_field(ms: i64) -> Value {
    if ms <= 0 {
        Value::Null
    } else {
        Value::String(crate::timefmt::rfc3339(ms))
    }
}

/// Drop null fields so no date is ever an empty string or null placeholder.
pub fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}
