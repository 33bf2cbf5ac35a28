//! Changing auth methods: `auth-method-update-<type>` (and the legacy
//! `update-auth-method-<type>` names), the generic `update-auth-method`,
//! and `reset-access-key`.
//!
//! Semantics (what Terraform and the SDKs send: the full desired state):
//! * the common options (`access-expires`, `bound-ips`, `jwt-ttl`,
//!   `description`, `force-sub-claims`, `lease-tied-to-token`) replace the
//!   stored value when given and keep it when absent;
//! * a typed update replaces the type's settings with those of the body,
//!   validated exactly as `create-auth-method-<type>` validates them (one
//!   function, [`super::auth_methods::type_settings`], so a new kind plugs
//!   into both); the generic `update-auth-method` keeps them;
//! * `new-name` renames; the access ID never changes; associations and
//!   tokens follow the rename;
//! * the change and its audit record commit together with a generation
//!   move, so logins and existing tokens see it at once here and within the
//!   sync interval on every other node (bound IPs, access expiry and a
//!   shortened `jwt-ttl` are checked on every request).
//!
//! Delegation: changing who can log in as a method is like minting a
//! credential for it, so the caller must hold every role associated with
//! it (as for deleting it), besides `update` on the method and `create` on
//! a new name.

use coffer_core::model::{AuthMethod, AuthMethodKind};
use coffer_core::policy::{Caps, RuleType};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::auth_methods::{check_description, parse_bound_ips, type_settings};
use super::{name_param, refuse_unsupported, require};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::now_ms;
use crate::wire::Body;

/// Longest token lifetime accepted as `jwt-ttl`, in minutes (30 days),
/// as for create.
const MAX_JWT_TTL_MINUTES: i64 = 43_200;

/// Akeyless auth-method options Coffer does not implement: refused when
/// set (not empty, `false` or 0), never silently ignored.
pub(super) const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "audit-logs-claims",
        "extra audit-log claims are not supported (every audit record names the access ID and identity)",
    ),
    (
        "expiration-event-in",
        "expiration events are an Akeyless SaaS feature",
    ),
    (
        "gw-bound-ips",
        "Coffer has no gateway: restrict addresses with bound-ips",
    ),
    ("product-type", "product types are an Akeyless SaaS feature"),
    (
        "allowed-client-type",
        "restricting client types is not supported",
    ),
    (
        "delete_protection",
        "deletion protection is not supported yet",
    ),
    (
        "uid-expiration-event-at",
        "expiration events are an Akeyless SaaS feature",
    ),
];

/// Options of one type's update operation that Coffer does not implement
/// (its create operation takes the same; a new kind adds its list here).
fn unsupported_for(kind: AuthMethodKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        AuthMethodKind::OAuth2 => &[
            (
                "gateway-url",
                "Coffer has no gateway: it fetches the JWKS itself",
            ),
            (
                "cert",
                "a custom CA for the JWKS URL is not supported (use a publicly trusted HTTPS URL or jwks-json-data)",
            ),
            (
                "cert-file-data",
                "a custom CA for the JWKS URL is not supported (use a publicly trusted HTTPS URL or jwks-json-data)",
            ),
            (
                "subclaims-delimiters",
                "sub-claim delimiters are not supported: list sub-claim values instead",
            ),
        ],
        AuthMethodKind::K8s => &[
            (
                "public-key",
                "Coffer verifies service-account tokens itself: give jwks-uri or jwks-json-data (the cluster's JWKS) or k8s-host (TokenReview)",
            ),
            (
                "gen-key",
                "Coffer has no gateway key pair: give jwks-uri or jwks-json-data, or k8s-host",
            ),
        ],
        AuthMethodKind::AwsIam => &[(
            "unique-identifier",
            "the identity of an aws_iam login is always the caller's ARN",
        )],
        _ => &[],
    }
}

/// The operation that updates a method of `kind` (for messages).
fn update_op(kind: AuthMethodKind) -> String {
    format!("auth-method-update-{}", kind.as_str().replace('_', "-"))
}

/// `auth-method-update-<kind>` (`Some`) or `update-auth-method` (`None`).
pub(super) async fn update(
    ctx: &mut Ctx,
    body: &Body,
    kind: Option<AuthMethodKind>,
) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::UPDATE)?;
    let new_name = match body.opt_str("new-name")? {
        Some(n) if !n.trim().is_empty() => coffer_core::name::normalize_name(&n)?,
        _ => name.clone(),
    };
    if new_name != name {
        ctx.set_object(format!("{name} -> {new_name}"));
        require(ctx, RuleType::AuthMethod, &new_name, Caps::CREATE)?;
    }
    refuse_unsupported(body, UNSUPPORTED)?;
    let snap = ctx.state.snapshot();
    let current = snap
        .auth_methods
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("auth method {name:?} not found")))?;
    if let Some(kind) = kind
        && kind != current.kind
    {
        return Err(ApiError::bad(format!(
            "auth method {name:?} is a {} auth method, not {}: update it with {} (or update-auth-method for the common options)",
            current.kind,
            kind,
            update_op(current.kind)
        )));
    }
    if let Some(kind) = kind {
        refuse_unsupported(body, unsupported_for(kind))?;
    }
    super::roles::check_method_roles_within(ctx, &name)?;
    if new_name != name && snap.auth_methods.contains_key(&new_name) {
        return Err(ApiError::Conflict(format!(
            "auth method {new_name:?} already exists: choose another new-name"
        )));
    }

    let mut am: AuthMethod = (*current).clone();
    am.name = new_name.clone();
    if let Some(secs) = body.opt_i64("access-expires")? {
        if secs < 0 {
            return Err(ApiError::bad(
                "access-expires must be a Unix time in seconds, or 0 for never",
            ));
        }
        am.access_expires_ms = secs.saturating_mul(1000);
    }
    if body.get("bound-ips").is_some() {
        am.bound_ips = parse_bound_ips(body)?;
    }
    if let Some(minutes) = body.opt_i64("jwt-ttl")? {
        if !(0..=MAX_JWT_TTL_MINUTES).contains(&minutes) {
            return Err(ApiError::bad(format!(
                "jwt-ttl is the token lifetime in minutes: 0 (server default) to {MAX_JWT_TTL_MINUTES}"
            )));
        }
        am.token_ttl_secs = minutes * 60;
    }
    if let Some(d) = body.opt_str("description")? {
        check_description(&d)?;
        am.description = d;
    }
    if body.get("force-sub-claims").is_some() {
        am.force_sub_claims = body.bool_or("force-sub-claims", am.force_sub_claims)?;
    }
    // Turning force-sub-claims on would leave associations without
    // sub-claims granting their role to every token the method accepts:
    // refuse, naming them, until they are narrowed or deleted.
    if am.force_sub_claims && !current.force_sub_claims {
        let open: Vec<String> = snap
            .assocs
            .get(&name)
            .into_iter()
            .flatten()
            .filter(|a| a.sub_claims.is_empty())
            .map(|a| format!("{} (role {})", a.assoc_id, a.role_name))
            .collect();
        if !open.is_empty() {
            return Err(ApiError::Conflict(format!(
                "force-sub-claims cannot be turned on while associations without sub-claims exist: {}; add sub-claims with update-assoc or delete them first",
                open.join(", ")
            )));
        }
    }
    if kind.is_some()
        && let Some(config) = type_settings(&ctx.state, body, am.kind)?
    {
        am.config = keep_lease_setting(config, &current.config);
    }
    am.config = lease_setting_update(body, am.config)?;
    am.modified_ms = now_ms().max(current.modified_ms + 1);

    let state = ctx.state.clone();
    state
        .store
        .update_auth_method(&name, current.modified_ms, &am, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) if new_name != name => ApiError::Conflict(format!(
                "auth method {new_name:?} already exists, or {name:?} was changed by another request meanwhile: check and retry"
            )),
            coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "auth method {name:?} was changed by another request meanwhile: read it again and retry"
            )),
            coffer_store::StoreError::NotFound(_) => {
                ApiError::NotFound(format!("auth method {name:?} not found"))
            }
            other => other.into(),
        })?;
    state.policy_changed_reload().await;
    Ok(json!({"name": new_name}))
}

/// A typed update replaces the type's settings; Coffer's own
/// `lease-tied-to-token` is a common option, kept unless given.
fn keep_lease_setting(mut config: Value, current: &Value) -> Value {
    let key = crate::leases::TIED_SETTING;
    if let (Value::Object(m), Some(v)) = (&mut config, current.get(key)) {
        m.insert(key.into(), v.clone());
    }
    config
}

/// `lease-tied-to-token` when given: set or cleared.
fn lease_setting_update(body: &Body, mut config: Value) -> Result<Value, ApiError> {
    if body.get("lease-tied-to-token").is_none() {
        return Ok(config);
    }
    let tied = body.bool_or("lease-tied-to-token", false)?;
    let Value::Object(m) = &mut config else {
        return Err(ApiError::internal("auth method settings are not an object"));
    };
    if tied {
        m.insert(crate::leases::TIED_SETTING.into(), Value::Bool(true));
    } else {
        m.remove(crate::leases::TIED_SETTING);
    }
    Ok(config)
}

/// `reset-access-key {name}`: a new access key for an API-key method,
/// returned once; the old one stops working at once (tokens already
/// issued keep working until they expire or are revoked).
pub(super) async fn reset_access_key(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::UPDATE)?;
    let current = ctx
        .state
        .snapshot()
        .auth_methods
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("auth method {name:?} not found")))?;
    if current.kind != AuthMethodKind::ApiKey {
        return Err(ApiError::bad(format!(
            "auth method {name:?} is a {} auth method: only API-key methods have an access key to reset",
            current.kind
        )));
    }
    // The new key carries the method's roles: the caller must hold them.
    super::roles::check_method_roles_within(ctx, &name)?;
    let access_key = coffer_crypto::new_access_key()?;
    let hash = coffer_crypto::hash_secret(&ctx.state.keys.access_key_hasher, &access_key);
    let state = ctx.state.clone();
    let done = state
        .store
        .reset_access_key(&name, &current.access_id, &hash, now_ms(), ctx.audit())
        .await?;
    if !done {
        return Err(ApiError::NotFound(format!(
            "auth method {name:?} not found"
        )));
    }
    state.policy_changed_reload().await;
    Ok(json!({"access_key": access_key.expose_secret()}))
}
