//! `auth`, `validate-token`, `revoke-token`.

use anyhow::bail;
use coffer_client::ops::{Auth, RevokeToken, ValidateToken};
use secrecy::ExposeSecret;

use super::{configure::uses_access_key, print_response, respond};
use crate::args::{AuthArgs, NoArgs};
use crate::output::{emit, emit_json, fields};
use crate::session::{Context, Session, secret_or_stdin};

/// Log in, cache the token for the profile and print it: only the token on
/// stdout, so `TOKEN=$(coffer auth …)` works.
pub async fn auth(a: AuthArgs) -> anyhow::Result<()> {
    let ctx = Context::new(&a.global)?;
    let from_profile = a.access_id.is_none();
    let profile = if from_profile {
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
        .or_else(|| profile.map(|p| p.access_id.clone()))
        .unwrap_or_default();
    let access_type = a
        .access_type
        .clone()
        .or_else(|| profile.map(|p| p.access_type.clone()))
        .unwrap_or_else(crate::profile::default_access_type);
    let access_key = match a.access_key {
        Some(k) => Some(secret_or_stdin(k, true)?),
        None => profile.and_then(|p| p.access_key.clone()),
    };
    let jwt = match a.jwt {
        Some(j) => Some(secret_or_stdin(j, true)?),
        None => None,
    };
    if uses_access_key(&access_type) && access_key.is_none() {
        bail!("--access-key is required for --access-type {access_type}");
    }
    if matches!(access_type.as_str(), "jwt" | "oidc") && jwt.is_none() {
        bail!("--jwt is required for --access-type {access_type} (the CI job's ID token)");
    }
    let request = Auth {
        access_id,
        access_type,
        access_key,
        jwt,
    };
    let (raw, out) = ctx.login(&request).await?;
    if ctx.json {
        emit_json(&raw)
    } else {
        emit(out.token.expose_secret())
    }
}

pub async fn validate_token(a: NoArgs) -> anyhow::Result<()> {
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

pub async fn revoke_token(a: NoArgs) -> anyhow::Result<()> {
    let mut session = Session::open(&a.global).await?;
    let raw = session.call(&RevokeToken {}).await?;
    session.forget_cached_token()?;
    print_response::<RevokeToken>(a.global.json, raw, |_| Ok("Token revoked".to_string()))
}
