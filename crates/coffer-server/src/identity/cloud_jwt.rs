//! Cloud identities whose proof is a signed JWT: `azure_ad` (a managed
//! identity / workload identity access token issued by Entra ID) and `gcp`
//! (a Google-signed ID token). The SDKs send the token base64-encoded as
//! `cloud-id`. Both are verified offline against the provider's JWKS
//! (cached; overridable with `jwks-uri`, which is also how tests point them
//! at a local issuer), then bound on tenant / project / service account.
//!
//! Audiences: the defaults are Coffer's own ([`AZURE_DEFAULT_AUDIENCE`],
//! [`GCP_DEFAULT_AUDIENCE`]), never a token meant for another service;
//! ARM's resource or `akeyless.io` are accepted only when an operator sets
//! them as the method's `audience`. The Coffer token expires no later than
//! the cloud token.

use std::sync::Arc;

use coffer_core::glob::wildcard_match;
use coffer_core::model::AuthMethod;
use coffer_core::subclaims::flatten_claims;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::oauth2::{jwks_data_b64, jwks_settings};
use super::{KeySource, Verified, bounded_list, settings, verify_jwt};
use crate::error::ApiError;
use crate::jwt;
use crate::state::AppState;
use crate::wire::Body;

pub(crate) const AZURE_DEFAULT_JWKS: &str =
    "https://login.microsoftonline.com/common/discovery/keys";
/// The audience an `azure_ad` method expects unless configured: a
/// Coffer-specific resource (an Entra application whose Application ID URI
/// is `api://coffer`), so that a managed identity's token for Azure
/// Resource Manager (`https://management.azure.com/`, what the Akeyless
/// cloud-id libraries request), Key Vault or any other service cannot be
/// replayed here. `coffer ci` requests this resource by default (same
/// value in `coffer-ci/src/cloud_id.rs`).
pub(crate) const AZURE_DEFAULT_AUDIENCE: &str = "api://coffer";
pub(crate) const GCP_DEFAULT_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// The audience a `gcp` method expects unless configured, rather than
/// Akeyless' `akeyless.io`: an ID token requested for Akeyless (or for any
/// other service) cannot be replayed here. Same value in
/// `coffer-ci/src/cloud_id.rs`.
pub(crate) const GCP_DEFAULT_AUDIENCE: &str = "coffer";
const GCP_ISSUERS: &[&str] = &["https://accounts.google.com", "accounts.google.com"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AzureConfig {
    pub tenant_id: String,
    /// Empty: the tenant's v1 or v2 issuer.
    pub issuer: String,
    pub jwks_uri: String,
    pub jwks_json: String,
    pub audience: String,
    pub unique_identifier: String,
    pub bound_spids: Vec<String>,
    pub bound_group_ids: Vec<String>,
    pub bound_sub_ids: Vec<String>,
    pub bound_rg_ids: Vec<String>,
    pub bound_providers: Vec<String>,
    pub bound_resource_types: Vec<String>,
    pub bound_resource_names: Vec<String>,
    pub bound_resource_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct GcpConfig {
    /// `iam` (service-account ID token) or `gce` (VM instance identity).
    pub kind: String,
    pub audience: String,
    pub issuer: String,
    pub jwks_uri: String,
    pub jwks_json: String,
    pub unique_identifier: String,
    pub bound_service_accounts: Vec<String>,
    pub bound_projects: Vec<String>,
    pub bound_zones: Vec<String>,
    pub bound_regions: Vec<String>,
}

fn short_str(body: &Body, key: &str) -> Result<String, ApiError> {
    let v = body.opt_str(key)?.unwrap_or_default().trim().to_owned();
    if v.len() > 1024 {
        return Err(ApiError::bad(format!("{key} is longer than 1024 bytes")));
    }
    Ok(v)
}

fn keys_or_default(body: &Body, default_uri: &str) -> Result<(String, String), ApiError> {
    let (uri, json) = jwks_settings(body, false)?;
    Ok(if uri.is_empty() && json.is_empty() {
        (default_uri.to_owned(), String::new())
    } else {
        (uri, json)
    })
}

pub(crate) fn azure_settings_from_body(body: &Body) -> Result<Value, ApiError> {
    let tenant_id = short_str(body, "bound-tenant-id")?;
    if tenant_id.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter bound-tenant-id: the Entra ID (Azure AD) tenant whose identities may log in",
        ));
    }
    if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ApiError::bad(
            "bound-tenant-id must be a tenant ID (a GUID) or domain",
        ));
    }
    let (jwks_uri, jwks_json) = keys_or_default(body, AZURE_DEFAULT_JWKS)?;
    let issuer = short_str(body, "issuer")?;
    let cfg = AzureConfig {
        issuer: issuer.replace("---bound_tenant_id---", &tenant_id),
        jwks_uri,
        jwks_json,
        audience: Some(short_str(body, "audience")?)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| AZURE_DEFAULT_AUDIENCE.into()),
        unique_identifier: Some(short_str(body, "unique-identifier")?)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "oid".into()),
        bound_spids: bounded_list(body, "bound-spid")?,
        bound_group_ids: bounded_list(body, "bound-group-id")?,
        bound_sub_ids: bounded_list(body, "bound-sub-id")?,
        bound_rg_ids: bounded_list(body, "bound-rg-id")?,
        bound_providers: bounded_list(body, "bound-providers")?,
        bound_resource_types: bounded_list(body, "bound-resource-types")?,
        bound_resource_names: bounded_list(body, "bound-resource-names")?,
        bound_resource_ids: bounded_list(body, "bound-resource-id")?,
        tenant_id,
    };
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

pub(crate) fn gcp_settings_from_body(body: &Body) -> Result<Value, ApiError> {
    let kind = Some(short_str(body, "type")?.to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "iam".into());
    if kind != "iam" && kind != "gce" {
        return Err(ApiError::bad(
            "type must be iam (service-account ID tokens) or gce (Compute Engine instance identity tokens)",
        ));
    }
    if !body.list("bound-labels")?.is_empty() {
        return Err(ApiError::bad(
            "bound-labels is not supported: instance labels are not in the identity token and Coffer does not call the Compute API; bind on bound-projects, bound-zones or bound-service-accounts",
        ));
    }
    if body
        .opt_str("service-account-creds-data")?
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad(
            "service-account-creds-data is not needed: Coffer verifies Google-signed tokens offline with Google's public keys; leave it out",
        ));
    }
    let (jwks_uri, jwks_json) = keys_or_default(body, GCP_DEFAULT_JWKS)?;
    let cfg = GcpConfig {
        audience: Some(short_str(body, "audience")?)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| GCP_DEFAULT_AUDIENCE.into()),
        issuer: short_str(body, "issuer")?,
        jwks_uri,
        jwks_json,
        unique_identifier: short_str(body, "unique-identifier")?,
        bound_service_accounts: bounded_list(body, "bound-service-accounts")?,
        bound_projects: bounded_list(body, "bound-projects")?,
        bound_zones: bounded_list(body, "bound-zones")?,
        bound_regions: bounded_list(body, "bound-regions")?,
        kind,
    };
    if cfg.kind == "iam" && !(cfg.bound_zones.is_empty() && cfg.bound_regions.is_empty()) {
        return Err(ApiError::bad(
            "bound-zones and bound-regions need type gce: service-account ID tokens carry no zone",
        ));
    }
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

pub(crate) fn azure_rules_json(am: &AuthMethod) -> Value {
    let c: AzureConfig = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "bound_tenant_id": c.tenant_id,
        "issuer": c.issuer,
        "jwks_uri": c.jwks_uri,
        "jwks_json_data": jwks_data_b64(&c.jwks_json),
        "audience": c.audience,
        // The SDK's (and Terraform's) name of the audience.
        "ad_endpoint": c.audience,
        "unique_identifier": c.unique_identifier,
        "bound_service_principal_ids": c.bound_spids,
        "bound_group_ids": c.bound_group_ids,
        "bound_subscription_ids": c.bound_sub_ids,
        "bound_resource_groups": c.bound_rg_ids,
        "bound_resource_providers": c.bound_providers,
        "bound_resource_types": c.bound_resource_types,
        "bound_resource_names": c.bound_resource_names,
        "bound_resource_ids": c.bound_resource_ids,
    })
}

pub(crate) fn gcp_rules_json(am: &AuthMethod) -> Value {
    let c: GcpConfig = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "type": c.kind,
        "audience": c.audience,
        "issuer": c.issuer,
        "jwks_uri": c.jwks_uri,
        "jwks_json_data": jwks_data_b64(&c.jwks_json),
        "unique_identifier": c.unique_identifier,
        "bound_service_accounts": c.bound_service_accounts,
        "bound_projects": c.bound_projects,
        "bound_zones": c.bound_zones,
        "bound_regions": c.bound_regions,
    })
}

/// The JWT in `cloud-id`: base64 of the token as the SDKs send it, or the
/// raw token.
fn cloud_id_jwt(body: &Body, what: &str) -> Result<String, ApiError> {
    if let Some(raw) = body.opt_str("cloud-id")?
        && raw.trim().starts_with("eyJ")
        && raw.trim().contains('.')
    {
        return Ok(raw.trim().to_owned());
    }
    super::decode_b64_param(body, "cloud-id", what)
}

fn str_claim<'a>(c: &'a Map<String, Value>, k: &str) -> &'a str {
    c.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// A bound-* rule: empty allows any value; otherwise one pattern must match.
fn bound(
    provider: &str,
    what: &str,
    patterns: &[String],
    values: &[&str],
    case_sensitive: bool,
) -> Result<(), ApiError> {
    if patterns.is_empty()
        || values.iter().any(|v| {
            !v.is_empty()
                && patterns
                    .iter()
                    .any(|p| wildcard_match(p, v, case_sensitive))
        })
    {
        return Ok(());
    }
    let shown = values
        .iter()
        .find(|v| !v.is_empty())
        .copied()
        .unwrap_or("(none)");
    Err(ApiError::Unauthorized(format!(
        "{provider} authentication failed: {what} check: {:?} is not bound by this auth method",
        coffer_core::name::truncate_for_message(shown)
    )))
}

/// Parts of an Azure resource ID (`xms_mirid`):
/// `/subscriptions/S/resourcegroups/RG/providers/P/TYPE/NAME`.
#[derive(Debug, Default, PartialEq)]
struct AzureResource {
    subscription: String,
    resource_group: String,
    provider: String,
    resource_type: String,
    name: String,
}

fn parse_resource_id(id: &str) -> AzureResource {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    let mut r = AzureResource::default();
    let mut i = 0;
    while i + 1 < parts.len() {
        match parts[i].to_ascii_lowercase().as_str() {
            "subscriptions" => r.subscription = parts[i + 1].to_owned(),
            "resourcegroups" => r.resource_group = parts[i + 1].to_owned(),
            "providers" => {
                r.provider = parts[i + 1].to_owned();
                if i + 3 < parts.len() {
                    r.resource_type = parts[i + 2].to_owned();
                    r.name = parts[i + 3].to_owned();
                }
                break;
            }
            _ => {}
        }
        i += 2;
    }
    r
}

pub(crate) async fn login_azure(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let token = cloud_id_jwt(
        body,
        "the Entra ID access token of the managed identity, base64-encoded",
    )?;
    let cfg: AzureConfig = settings(am)?;
    let audience = vec![cfg.audience.clone()];
    let v = verify_jwt(
        state,
        am,
        &token,
        KeySource::new(&cfg.jwks_uri, &cfg.jwks_json),
        jwt::Expectations {
            unique_identifier: &cfg.unique_identifier,
            issuer: Some(cfg.issuer.as_str()).filter(|i| !i.is_empty()),
            audience: &audience,
            ..Default::default()
        },
    )
    .await?;
    let c = &v.claims;
    let fail = |m: String| ApiError::Unauthorized(format!("Azure AD authentication failed: {m}"));
    let tid = str_claim(c, "tid");
    if !tid.eq_ignore_ascii_case(&cfg.tenant_id) {
        return Err(fail(format!(
            "tenant check: the token's tid {:?} is not the bound tenant",
            coffer_core::name::truncate_for_message(tid)
        )));
    }
    if cfg.issuer.is_empty() {
        let iss = str_claim(c, "iss");
        let v1 = format!("https://sts.windows.net/{tid}/");
        let v2 = format!("https://login.microsoftonline.com/{tid}/v2.0");
        if iss != v1 && iss != v2 {
            return Err(fail(format!(
                "iss check: issuer {:?} is not the tenant's Entra ID issuer",
                coffer_core::name::truncate_for_message(iss)
            )));
        }
    }
    let mirid = str_claim(c, "xms_mirid");
    let res = parse_resource_id(mirid);
    let groups: Vec<&str> = c
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    const AZ: &str = "Azure AD";
    bound(
        AZ,
        "service principal",
        &cfg.bound_spids,
        &[
            str_claim(c, "oid"),
            str_claim(c, "appid"),
            str_claim(c, "azp"),
        ],
        false,
    )?;
    bound(AZ, "group", &cfg.bound_group_ids, &groups, false)?;
    bound(
        AZ,
        "subscription",
        &cfg.bound_sub_ids,
        &[&res.subscription],
        false,
    )?;
    bound(
        AZ,
        "resource group",
        &cfg.bound_rg_ids,
        &[&res.resource_group],
        false,
    )?;
    bound(
        AZ,
        "resource provider",
        &cfg.bound_providers,
        &[&res.provider],
        false,
    )?;
    bound(
        AZ,
        "resource type",
        &cfg.bound_resource_types,
        &[&res.resource_type],
        false,
    )?;
    bound(
        AZ,
        "resource name",
        &cfg.bound_resource_names,
        &[&res.name],
        false,
    )?;
    bound(AZ, "resource ID", &cfg.bound_resource_ids, &[mirid], false)?;
    let mut claims = flatten_claims(c);
    for (k, val) in [
        ("subscription_id", &res.subscription),
        ("resource_group", &res.resource_group),
        ("resource_provider", &res.provider),
        ("resource_type", &res.resource_type),
        ("resource_name", &res.name),
    ] {
        if !val.is_empty() {
            claims.insert(k.to_owned(), vec![val.clone()]);
        }
    }
    Ok(Verified {
        identity: v.identity,
        claims,
        not_after_ms: Some(super::jwt_not_after_ms(v.exp)),
    })
}

pub(crate) async fn login_gcp(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let token = cloud_id_jwt(body, "a Google-signed ID token, base64-encoded")?;
    let cfg: GcpConfig = settings(am)?;
    let fail = |m: String| ApiError::Unauthorized(format!("GCP authentication failed: {m}"));
    // `gcp-audience` is what the client says it asked for; the token's
    // signed `aud` is what counts. The SDKs send `akeyless.io` whatever the
    // token's audience, so it only makes an aud refusal say what to change.
    let asked = body
        .opt_str("gcp-audience")?
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty() && *a != cfg.audience);
    let audience = vec![cfg.audience.clone()];
    let v = verify_jwt(
        state,
        am,
        &token,
        KeySource::new(&cfg.jwks_uri, &cfg.jwks_json),
        jwt::Expectations {
            unique_identifier: "sub",
            issuer: Some(cfg.issuer.as_str()).filter(|i| !i.is_empty()),
            audience: &audience,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| match (e, &asked) {
        (ApiError::Unauthorized(m), Some(asked)) if m.contains("aud check") => {
            ApiError::Unauthorized(format!(
                "{m}; the client says it requested the ID token for audience {:?}: request it for {:?} (gcp_audience), or set the auth method's audience",
                coffer_core::name::truncate_for_message(asked),
                cfg.audience
            ))
        }
        (e, _) => e,
    })?;
    let c = &v.claims;
    if cfg.issuer.is_empty() && !GCP_ISSUERS.contains(&str_claim(c, "iss")) {
        return Err(fail(
            "iss check: the token was not issued by Google (accounts.google.com)".into(),
        ));
    }
    let email = str_claim(c, "email");
    if !email.is_empty() && c.get("email_verified").and_then(Value::as_bool) == Some(false) {
        return Err(fail(
            "email check: the token's email is not verified".into(),
        ));
    }
    let gce = c
        .get("google")
        .and_then(|g| g.get("compute_engine"))
        .and_then(Value::as_object);
    let gce_str = |k: &str| {
        gce.and_then(|g| g.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (project, zone) = (gce_str("project_id"), gce_str("zone"));
    if cfg.kind == "gce" && (gce.is_none() || project.is_empty()) {
        return Err(fail(
            "gce check: the token carries no Compute Engine instance claims; request it from the metadata server with format=full".into(),
        ));
    }
    let sa_project = email
        .strip_suffix(".iam.gserviceaccount.com")
        .and_then(|d| d.rsplit_once('@'))
        .map(|(_, p)| p.to_owned())
        .unwrap_or_default();
    let project = if project.is_empty() {
        sa_project
    } else {
        project
    };
    let region = zone
        .rsplit_once('-')
        .map(|(r, _)| r.to_owned())
        .unwrap_or_default();
    const G: &str = "GCP";
    bound(
        G,
        "service account",
        &cfg.bound_service_accounts,
        &[email, str_claim(c, "sub")],
        false,
    )?;
    bound(G, "project", &cfg.bound_projects, &[&project], true)?;
    bound(G, "zone", &cfg.bound_zones, &[&zone], true)?;
    bound(G, "region", &cfg.bound_regions, &[&region], true)?;
    let identity = if !cfg.unique_identifier.is_empty() {
        let id = str_claim(c, &cfg.unique_identifier);
        if id.is_empty() {
            return Err(fail(format!(
                "unique-identifier check: the token has no {:?} claim",
                cfg.unique_identifier
            )));
        }
        id.to_owned()
    } else if !email.is_empty() {
        email.to_owned()
    } else {
        v.identity.clone()
    };
    let mut claims = flatten_claims(c);
    for (k, val) in [
        ("project_id", &project),
        ("zone", &zone),
        ("region", &region),
    ] {
        if !val.is_empty() {
            claims.insert(k.to_owned(), vec![val.clone()]);
        }
    }
    Ok(Verified {
        identity,
        claims,
        not_after_ms: Some(super::jwt_not_after_ms(v.exp)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_resource_ids() {
        let r = parse_resource_id(
            "/subscriptions/s-1/resourcegroups/rg-ci/providers/Microsoft.Compute/virtualMachines/runner-1",
        );
        assert_eq!(
            r,
            AzureResource {
                subscription: "s-1".into(),
                resource_group: "rg-ci".into(),
                provider: "Microsoft.Compute".into(),
                resource_type: "virtualMachines".into(),
                name: "runner-1".into(),
            }
        );
        let r = parse_resource_id(
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        );
        assert_eq!(r.resource_group, "RG");
        assert_eq!(r.name, "id1");
        assert_eq!(parse_resource_id(""), AzureResource::default());
        assert_eq!(parse_resource_id("/subscriptions").subscription, "");
    }

    #[test]
    fn bound_rules() {
        assert!(bound("X", "zone", &[], &["a"], true).is_ok());
        assert!(bound("X", "zone", &["europe-*".into()], &["europe-west1-b"], true).is_ok());
        let e = bound("X", "zone", &["europe-*".into()], &["us-east1-b"], true).unwrap_err();
        assert!(e.to_string().contains("zone check"), "{e}");
        // An empty value never satisfies a pattern, not even "*".
        assert!(bound("X", "group", &["*".into()], &[""], true).is_err());
    }
}
