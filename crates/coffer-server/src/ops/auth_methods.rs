//! Auth-method operations (rule type `auth-method-rule`).

use coffer_core::model::{AuthMethod, AuthMethodKind};
use coffer_core::policy::{Caps, RuleType};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{allowed, date_field, name_param, require, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::identity;
use crate::state::{PolicySnapshot, now_ms};
use crate::wire::Body;

/// Longest token lifetime accepted as `jwt-ttl`, in minutes (30 days).
const MAX_JWT_TTL_MINUTES: i64 = 43_200;

pub(super) async fn create_api_key(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::CREATE)?;
    let bound_ips = parse_bound_ips(body)?;
    let access_expires = body.opt_i64("access-expires")?.unwrap_or(0);
    if access_expires < 0 {
        return Err(ApiError::bad(
            "access-expires must be a Unix time in seconds, or 0 for never",
        ));
    }
    let (jwt_ttl, description) = ttl_and_description(body)?;
    let force_sub_claims = body.bool_or("force-sub-claims", false)?;

    let access_key = coffer_crypto::new_access_key()?;
    let access_id = coffer_crypto::new_access_id(AuthMethodKind::ApiKey.type_char())?;
    let now = now_ms();
    let am = AuthMethod {
        name: name.clone(),
        access_id: access_id.clone(),
        kind: AuthMethodKind::ApiKey,
        description,
        access_key_hash: Some(coffer_crypto::hash_secret(
            &ctx.state.keys.access_key_hasher,
            &access_key,
        )),
        access_expires_ms: access_expires.saturating_mul(1000),
        bound_ips,
        token_ttl_secs: jwt_ttl * 60,
        force_sub_claims,
        config: lease_setting(body, json!({}))?,
        created_ms: now,
        modified_ms: now,
    };
    insert(ctx, &am).await?;
    Ok(json!({
        "access_id": access_id,
        "access_key": access_key.expose_secret(),
        "name": name,
    }))
}

/// `create-auth-method-<type>` for every type but API keys: the type's
/// module validates its settings; the common options are handled here.
/// Claims-based types (JWT, k8s, Azure AD, GCP) default force-sub-claims
/// on, so that no association can grant a role to every token the issuer
/// ever signs.
pub(super) async fn create_typed(
    ctx: &mut Ctx,
    body: &Body,
    kind: AuthMethodKind,
) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::CREATE)?;
    let bound_ips = parse_bound_ips(body)?;
    let (jwt_ttl, description) = ttl_and_description(body)?;
    let force_sub_claims = body.bool_or("force-sub-claims", kind.claims_based())?;
    let access_expires = body.opt_i64("access-expires")?.unwrap_or(0);
    if access_expires < 0 {
        return Err(ApiError::bad(
            "access-expires must be a Unix time in seconds, or 0 for never",
        ));
    }
    let Some(config) = type_settings(&ctx.state, body, kind)? else {
        return create_api_key(ctx, body).await;
    };
    let config = lease_setting(body, config)?;
    let access_id = coffer_crypto::new_access_id(kind.type_char())?;
    let now = now_ms();
    let am = AuthMethod {
        name: name.clone(),
        access_id: access_id.clone(),
        kind,
        description,
        access_key_hash: None,
        access_expires_ms: access_expires.saturating_mul(1000),
        bound_ips,
        token_ttl_secs: jwt_ttl * 60,
        force_sub_claims,
        config,
        created_ms: now,
        modified_ms: now,
    };
    insert(ctx, &am).await?;
    Ok(json!({"access_id": access_id, "access_key": "", "name": name}))
}

/// The stored settings of a `kind` method from a create or update body,
/// validated by the type's module; `None` for API keys, which have none.
/// The one place a new kind plugs its settings into both
/// `create-auth-method-*` and `auth-method-update-*`.
pub(super) fn type_settings(
    state: &crate::state::AppState,
    body: &Body,
    kind: AuthMethodKind,
) -> Result<Option<Value>, ApiError> {
    Ok(Some(match kind {
        AuthMethodKind::OAuth2 => identity::oauth2::settings_from_body(body)?,
        AuthMethodKind::K8s => identity::k8s::settings_from_body(state, body)?,
        AuthMethodKind::AwsIam => identity::aws_iam::settings_from_body(body)?,
        AuthMethodKind::AzureAd => identity::cloud_jwt::azure_settings_from_body(body)?,
        AuthMethodKind::Gcp => identity::cloud_jwt::gcp_settings_from_body(body)?,
        AuthMethodKind::UniversalIdentity => identity::uid::settings_from_body(body)?,
        AuthMethodKind::Cert => identity::cert::settings_from_body(body)?,
        AuthMethodKind::Oidc => identity::oidc::settings_from_body(state, body)?,
        AuthMethodKind::ApiKey => return Ok(None),
    }))
}

/// `lease-tied-to-token` (Coffer's own option, every auth method type):
/// dynamic-secret credentials issued to a token of this method are revoked
/// when that token is revoked or expires.
pub(super) fn lease_setting(body: &Body, mut config: Value) -> Result<Value, ApiError> {
    if body.bool_or("lease-tied-to-token", false)? {
        match &mut config {
            Value::Object(m) => {
                m.insert(crate::leases::TIED_SETTING.into(), Value::Bool(true));
            }
            _ => return Err(ApiError::internal("auth method settings are not an object")),
        }
    }
    Ok(config)
}

async fn insert(ctx: &mut Ctx, am: &AuthMethod) -> Result<(), ApiError> {
    let state = ctx.state.clone();
    state
        .store
        .create_auth_method(am, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("auth method {:?} already exists", am.name))
            }
            other => other.into(),
        })?;
    state.policy_changed_reload().await;
    Ok(())
}

/// `jwt-ttl` (minutes) and `description`, shared by every auth-method type.
pub(super) fn ttl_and_description(body: &Body) -> Result<(i64, String), ApiError> {
    let jwt_ttl = body.opt_i64("jwt-ttl")?.unwrap_or(0);
    if !(0..=MAX_JWT_TTL_MINUTES).contains(&jwt_ttl) {
        return Err(ApiError::bad(format!(
            "jwt-ttl is the token lifetime in minutes: 0 (server default) to {MAX_JWT_TTL_MINUTES}"
        )));
    }
    let description = body.opt_str("description")?.unwrap_or_default();
    check_description(&description)?;
    Ok((jwt_ttl, description))
}

pub(super) fn parse_bound_ips(body: &Body) -> Result<Vec<String>, ApiError> {
    let ips = body.list("bound-ips")?;
    if ips.len() > 256 {
        return Err(ApiError::bad("bound-ips accepts at most 256 entries"));
    }
    for ip in &ips {
        if ip.parse::<ipnet::IpNet>().is_err() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::bad(format!(
                "bound-ips entry {:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)",
                coffer_core::name::truncate_for_message(ip)
            )));
        }
    }
    Ok(ips)
}

pub(super) fn check_description(d: &str) -> Result<(), ApiError> {
    if d.len() > 1024 {
        return Err(ApiError::bad("description is longer than 1024 bytes"));
    }
    Ok(())
}

fn render(am: &AuthMethod, snap: &PolicySnapshot) -> Value {
    let assocs: Vec<Value> = snap
        .assocs
        .get(&am.name)
        .into_iter()
        .flatten()
        .map(|a| {
            json!({
                "assoc_id": a.assoc_id,
                "role_name": a.role_name,
                "auth_method_sub_claims": a.sub_claims,
                "sub_claims_case_sensitive": a.case_sensitive,
            })
        })
        .collect();
    let mut v = json!({
        "auth_method_name": am.name,
        "auth_method_access_id": am.access_id,
        "description": am.description,
        "access_info": {
            "access_id_alias": "",
            "rules_type": am.kind.as_str(),
            "access_expires": am.access_expires_ms / 1000,
            "jwt_ttl": am.token_ttl_secs / 60,
            "force_sub_claims": am.force_sub_claims,
            "cidr_whitelist": am.bound_ips.join(","),
            "bound_ips": am.bound_ips,
        },
        "auth_method_roles_assoc": assocs,
        "creation_date": date_field(am.created_ms),
        "modification_date": date_field(am.modified_ms),
    });
    if let Some((key, rules)) = identity::rules_json(am) {
        v["access_info"][key] = rules;
    }
    without_nulls(v)
}

pub(super) async fn get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::READ)?;
    let snap = ctx.state.snapshot();
    let am = snap
        .auth_methods
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("auth method {name:?} not found")))?;
    Ok(render(am, &snap))
}

/// `list-auth-methods {type[], filter, pagination-token}`: `type` keeps the
/// listed kinds (Akeyless names: api_key, oauth2/jwt, k8s, aws_iam,
/// azure_ad, gcp, universal_identity; kinds Coffer does not have match
/// nothing), `filter` keeps names containing it. Everything fits one page.
pub(super) async fn list(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let mut kinds: Vec<AuthMethodKind> = Vec::new();
    for t in body.list("type")? {
        let t = t.trim().to_ascii_lowercase().replace('-', "_");
        match t.as_str() {
            "api_key" | "access_key" => kinds.push(AuthMethodKind::ApiKey),
            "oauth2" | "jwt" | "oauth2/jwt" => kinds.push(AuthMethodKind::OAuth2),
            "k8s" => kinds.push(AuthMethodKind::K8s),
            "aws_iam" => kinds.push(AuthMethodKind::AwsIam),
            "azure_ad" => kinds.push(AuthMethodKind::AzureAd),
            "gcp" => kinds.push(AuthMethodKind::Gcp),
            "universal_identity" => kinds.push(AuthMethodKind::UniversalIdentity),
            "cert" => kinds.push(AuthMethodKind::Cert),
            "oidc" => kinds.push(AuthMethodKind::Oidc),
            // Akeyless types Coffer does not offer: no method can match.
            "saml2" | "saml" | "ldap" | "alicloud" | "oci" | "kerberos" | "email" | "password" => {}
            other => {
                return Err(ApiError::bad(format!(
                    "unknown auth method type {:?} in type: use api_key, oauth2/jwt, k8s, aws_iam, azure_ad, gcp, universal_identity, cert or oidc",
                    coffer_core::name::truncate_for_message(other)
                )));
            }
        }
    }
    let typed = !body.list("type")?.is_empty();
    let filter = body.opt_str("filter")?.filter(|f| !f.is_empty());
    if body
        .opt_str("pagination-token")?
        .is_some_and(|t| !t.trim().is_empty())
    {
        return Err(ApiError::bad(
            "pagination-token is not one returned by list-auth-methods (every method fits on one page)",
        ));
    }
    let caller = ctx.caller()?;
    let snap = ctx.state.snapshot();
    let mut ams: Vec<_> = snap
        .auth_methods
        .values()
        .filter(|am| allowed(caller, RuleType::AuthMethod, &am.name, Caps::LIST))
        .filter(|am| !typed || kinds.contains(&am.kind))
        .filter(|am| filter.as_ref().is_none_or(|f| am.name.contains(f.as_str())))
        .collect();
    ams.sort_by(|a, b| a.name.cmp(&b.name));
    let out: Vec<Value> = ams.iter().map(|am| render(am, &snap)).collect();
    Ok(json!({"auth_methods": out, "next_page": ""}))
}

pub(super) async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::DELETE)?;
    // A caller cannot take away the method of an identity holding more
    // than itself (e.g. the admin's).
    super::roles::check_method_roles_within(ctx, &name)?;
    let state = ctx.state.clone();
    if !state.store.delete_auth_method(&name, ctx.audit()).await? {
        return Err(ApiError::NotFound(format!(
            "auth method {name:?} not found"
        )));
    }
    state.policy_changed_reload().await;
    Ok(json!({"name": name}))
}
