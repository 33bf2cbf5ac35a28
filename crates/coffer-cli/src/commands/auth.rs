//! `auth`, `validate-token`, `revoke-token`.

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_client::ops::{Auth, GetCallerIdentity, RevokeToken, ValidateToken};
use secrecy::{ExposeSecret, SecretString};

use super::{configure::uses_access_key, print_response, respond};
use crate::args::{AuthArgs, NoArgs};
use crate::output::{emit, emit_json, fields};
use crate::session::{Context, Origin, Session, secret_or_stdin};

/// Where Kubernetes mounts a pod's service-account token.
const K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Log in, cache the token for the profile and print it: only the token on
/// stdout, so `TOKEN=$(coffer auth …)` works.
pub(super) async fn auth(a: AuthArgs) -> anyhow::Result<()> {
    // Precedence: flags, then the environment (COFFER_ACCESS_ID…, else
    // AKEYLESS_ACCESS_ID…), then the profile. The environment's type and
    // key are read only with its access ID (never another ID's key with
    // --access-id), and each source logs in at its own gateway.
    let env_id = if a.access_id.is_some() {
        None
    } else {
        crate::session::env_access_id()
    };
    let origin = match (&a.access_id, &env_id) {
        (Some(_), _) => Origin::Flags,
        (None, Some((_, _, origin))) => *origin,
        (None, None) => Origin::Profile,
    };
    let ctx = Context::for_origin(&a.global, origin)?;
    let env_prefix = env_id.as_ref().map(|(p, _, _)| *p);
    let env_field =
        |field: &str| env_prefix.and_then(|p| crate::session::env_var(&format!("{p}_{field}")));
    let profile = if origin == Origin::Profile {
        match &ctx.profile {
            Some(p) => Some(p),
            None => bail!(
                "--access-id is required (or save a profile with `coffer configure --profile {}`)",
                ctx.profile_name
            ),
        }
    } else {
        None
    };
    let access_id = a
        .access_id
        .clone()
        .or_else(|| env_id.as_ref().map(|(_, id, _)| id.clone()))
        .or_else(|| profile.map(|p| p.access_id.clone()))
        .unwrap_or_default();
    let access_type = a
        .access_type
        .clone()
        .or_else(|| env_field("ACCESS_TYPE"))
        .or_else(|| profile.map(|p| p.access_type.clone()))
        .unwrap_or_else(crate::profile::default_access_type);
    let access_key = match a.access_key {
        Some(k) => Some(secret_or_stdin(k, true)?),
        None => env_field("ACCESS_KEY")
            .map(|k| SecretString::from(k.trim().to_owned()))
            .or_else(|| profile.and_then(|p| p.access_key.clone())),
    };
    let read = |s: Option<SecretString>| s.map(|v| secret_or_stdin(v, true)).transpose();
    let jwt = read(a.jwt)?;
    let cloud_id = read(a.cloud_id)?;
    let uid_token = read(a.global.uid_token.clone())?;
    let mut k8s_token = read(a.k8s_service_account_token)?;
    if uses_access_key(&access_type) && access_key.is_none() {
        bail!("--access-key is required for --access-type {access_type}");
    }
    match access_type.as_str() {
        "jwt" if jwt.is_none() => {
            bail!("--jwt is required for --access-type {access_type} (the CI job's ID token)")
        }
        "aws_iam" | "azure_ad" | "gcp" if cloud_id.is_none() => bail!(
            "--cloud-id is required for --access-type {access_type} (the base64 identity document of this machine)"
        ),
        "universal_identity" if uid_token.is_none() => {
            bail!("--uid-token is required for --access-type universal_identity")
        }
        "k8s" if k8s_token.is_none() => {
            let text = std::fs::read_to_string(K8S_TOKEN_PATH).map_err(|e| {
                anyhow::anyhow!(
                    "--k8s-service-account-token is required outside a pod (cannot read {K8S_TOKEN_PATH}: {e})"
                )
            })?;
            k8s_token = Some(SecretString::from(text.trim().to_owned()));
        }
        _ => {}
    }
    // The server takes the service-account token base64-encoded.
    let k8s_token = k8s_token.map(|t| {
        let t = t.expose_secret().trim();
        if t.starts_with("eyJ") {
            SecretString::from(STANDARD.encode(t))
        } else {
            SecretString::from(t.to_owned())
        }
    });
    let request = Auth {
        access_id,
        access_type,
        access_key,
        jwt,
        cloud_id,
        gcp_audience: a.gcp_audience,
        k8s_service_account_token: k8s_token,
        k8s_auth_config_name: a.k8s_auth_config_name,
        uid_token,
        ..Default::default()
    };
    let request = if request.access_type == "cert" {
        super::cert_auth::with_signed_challenge(
            &ctx,
            request,
            a.cert_file_name.as_deref(),
            a.key_file_name.as_deref(),
        )
        .await?
    } else if request.access_type == "oidc" && request.jwt.is_none() {
        // A person in a browser; with --jwt, an ID token as for jwt.
        super::oidc_auth::with_browser_login(&ctx, request, a.redirect_port, a.no_browser).await?
    } else {
        request
    };
    let (raw, out) = ctx.login(&request).await?;
    if ctx.json {
        emit_json(&raw)
    } else {
        emit(out.token.expose_secret())
    }
}

pub(super) async fn validate_token(a: NoArgs) -> anyhow::Result<()> {
    respond(&a.global, &ValidateToken {}, |out| {
        if !out.is_valid {
            bail!("the token is not valid: {}", out.reason);
        }
        Ok(fields(&[
            ("valid", "true".into()),
            ("expiration", out.expiration.unwrap_or_default()),
            ("ttl", format!("{}s", out.ttl)),
        ]))
    })
    .await
}

/// `whoami`: the calling token's identity, roles and expiry.
pub(super) async fn whoami(a: NoArgs) -> anyhow::Result<()> {
    respond(&a.global, &GetCallerIdentity {}, |out| {
        let method = match &out.auth_method_type {
            Some(t) => format!("{} ({t})", out.auth_method_name),
            None => out.auth_method_name.clone(),
        };
        let roles = out
            .roles
            .iter()
            .map(|r| match r.audit_access.as_str() {
                "" | "none" => r.name.clone(),
                access => format!("{} (audit {access})", r.name),
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(fields(&[
            ("access_id", out.access_id),
            ("auth_method", method),
            ("identity", out.identity),
            ("sub_claims", super::sub_claims(&out.sub_claims)),
            (
                "roles",
                if roles.is_empty() {
                    "(none)".to_owned()
                } else {
                    roles
                },
            ),
            ("expiration", out.expiration.unwrap_or_default()),
            ("ttl", format!("{}s", out.ttl)),
        ]))
    })
    .await
}

pub(super) async fn revoke_token(a: NoArgs) -> anyhow::Result<()> {
    let mut session = Session::open(&a.global).await?;
    let raw = session.call(&RevokeToken {}).await?;
    session.forget_cached_token()?;
    print_response::<RevokeToken>(a.global.json, raw, |_| Ok("Token revoked".to_string()))
}
