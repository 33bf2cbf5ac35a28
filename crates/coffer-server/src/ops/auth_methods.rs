//! Auth-method operations (rule type `auth-method-rule`).

use base64::Engine as _;
use coffer_core::model::{AuthMethod, AuthMethodKind};
use coffer_core::policy::{Caps, RuleType};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{allowed, date_field, name_param, require, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::jwt::{DEFAULT_REFUSED_EVENTS, KeySet, OAuth2Config, check_jwks_url};
use crate::state::{PolicySnapshot, now_ms};
use crate::wire::Body;

/// Longest token lifetime accepted as `jwt-ttl`, in minutes (30 days).
const MAX_JWT_TTL_MINUTES: i64 = 43_200;

pub async fn create_api_key(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
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
        config: json!({}),
        created_ms: now,
        modified_ms: now,
    };
    ctx.state
        .store
        .create_auth_method(&am)
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("auth method {name:?} already exists"))
            }
            other => other.into(),
        })?;
    ctx.state.policy_changed().await?;
    Ok(json!({
        "access_id": access_id,
        "access_key": access_key.expose_secret(),
        "name": name,
    }))
}

/// `create-auth-method-oauth2` / `auth-method-create-oauth2`: a JWT/OIDC
/// method verified with a JWKS (URL or inline). force-sub-claims is on
/// unless turned off.
pub async fn create_oauth2(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::CREATE)?;
    let bound_ips = parse_bound_ips(body)?;
    let (jwt_ttl, description) = ttl_and_description(body)?;
    let force_sub_claims = body.bool_or("force-sub-claims", true)?;
    let config = oauth2_config(body)?;

    let access_id = coffer_crypto::new_access_id(AuthMethodKind::OAuth2.type_char())?;
    let now = now_ms();
    let am = AuthMethod {
        name: name.clone(),
        access_id: access_id.clone(),
        kind: AuthMethodKind::OAuth2,
        description,
        access_key_hash: None,
        access_expires_ms: 0,
        bound_ips,
        token_ttl_secs: jwt_ttl * 60,
        force_sub_claims,
        config: serde_json::to_value(&config).map_err(ApiError::internal)?,
        created_ms: now,
        modified_ms: now,
    };
    insert(ctx, &am).await?;
    Ok(json!({"access_id": access_id, "access_key": "", "name": name}))
}

fn oauth2_config(body: &Body) -> Result<OAuth2Config, ApiError> {
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
    let jwks_uri = body
        .opt_str("jwks-uri")?
        .unwrap_or_default()
        .trim()
        .to_owned();
    let jwks_data = body.opt_str("jwks-json-data")?.unwrap_or_default();
    let jwks_json = match (jwks_uri.is_empty(), jwks_data.trim().is_empty()) {
        (true, true) => {
            return Err(ApiError::bad(
                "missing required parameter jwks-uri (the issuer's JWKS URL) or jwks-json-data (the JWKS, base64)",
            ));
        }
        (false, false) => {
            return Err(ApiError::bad(
                "pass either jwks-uri or jwks-json-data, not both",
            ));
        }
        (false, true) => {
            if jwks_uri.len() > 2048 {
                return Err(ApiError::bad("jwks-uri is longer than 2048 bytes"));
            }
            check_jwks_url(&jwks_uri).map_err(ApiError::BadRequest)?;
            String::new()
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
            String::from_utf8(bytes)
                .map_err(|_| ApiError::bad("jwks-json-data is not UTF-8 JSON"))?
        }
    };
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
    Ok(OAuth2Config {
        unique_identifier,
        jwks_uri,
        jwks_json,
        issuer,
        audience,
        bound_client_ids,
        refuse_replay: body.bool_or("refuse-replay", false)?,
        refuse_events,
    })
}

async fn insert(ctx: &Ctx, am: &AuthMethod) -> Result<(), ApiError> {
    ctx.state
        .store
        .create_auth_method(am)
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("auth method {:?} already exists", am.name))
            }
            other => other.into(),
        })?;
    ctx.state.policy_changed().await
}

/// The stored settings of an OAuth2/JWT method.
pub fn oauth2_settings(am: &AuthMethod) -> Result<OAuth2Config, ApiError> {
    serde_json::from_value(am.config.clone())
        .map_err(|e| ApiError::internal(format!("auth method {}: bad config: {e}", am.name)))
}

/// `jwt-ttl` (minutes) and `description`, shared by every auth-method type.
fn ttl_and_description(body: &Body) -> Result<(i64, String), ApiError> {
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

fn parse_bound_ips(body: &Body) -> Result<Vec<String>, ApiError> {
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

pub fn check_description(d: &str) -> Result<(), ApiError> {
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
    without_nulls(json!({
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
            "api_key_access_rules": if am.kind == AuthMethodKind::ApiKey { json!({"alg": "hmac-sha256"}) } else { Value::Null },
            "oauth2_access_rules": oauth2_rules(am),
        },
        "auth_method_roles_assoc": assocs,
        "creation_date": date_field(am.created_ms),
        "modification_date": date_field(am.modified_ms),
    }))
}

fn oauth2_rules(am: &AuthMethod) -> Value {
    if am.kind != AuthMethodKind::OAuth2 {
        return Value::Null;
    }
    let c: OAuth2Config = serde_json::from_value(am.config.clone()).unwrap_or_default();
    let data = if c.jwks_json.is_empty() {
        String::new()
    } else {
        base64::engine::general_purpose::STANDARD.encode(&c.jwks_json)
    };
    json!({
        "jwks_uri": c.jwks_uri,
        "jwks_json_data": data,
        "unique_identifier": c.unique_identifier,
        "issuer": c.issuer,
        "audience": c.audience.join(","),
        "bound_client_ids": c.bound_client_ids,
        "bound_claims": [],
        "refuse_replay": c.refuse_replay,
        "refuse_events": c.refuse_events,
    })
}

pub async fn get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::READ)?;
    let snap = ctx.state.snapshot();
    let am = snap
        .auth_methods
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("auth method {name:?} not found")))?;
    Ok(render(am, &snap))
}

pub async fn list(ctx: &mut Ctx, _body: &Body) -> Result<Value, ApiError> {
    let caller = ctx.caller()?;
    let snap = ctx.state.snapshot();
    let mut ams: Vec<_> = snap
        .auth_methods
        .values()
        .filter(|am| allowed(caller, RuleType::AuthMethod, &am.name, Caps::LIST))
        .collect();
    ams.sort_by(|a, b| a.name.cmp(&b.name));
    let out: Vec<Value> = ams.iter().map(|am| render(am, &snap)).collect();
    Ok(json!({"auth_methods": out, "next_page": ""}))
}

pub async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::AuthMethod, &name, Caps::DELETE)?;
    if !ctx.state.store.delete_auth_method(&name).await? {
        return Err(ApiError::NotFound(format!(
            "auth method {name:?} not found"
        )));
    }
    ctx.state.policy_changed().await?;
    Ok(json!({"name": name}))
}
