//! `configure` / `unconfigure`: login profiles.

use anyhow::{Context as _, bail};

use coffer_client::ops::Auth;

use crate::args::{ConfigureArgs, UnconfigureArgs};
use crate::output::{emit, emit_json, json_wanted};
use crate::profile::{CofferHome, Profile};
use crate::session::{env_var, read_hidden_line, resolve_gateway_url, secret_or_stdin};

/// Access types that log in with an access key.
pub(super) fn uses_access_key(access_type: &str) -> bool {
    matches!(access_type, "access_key" | "api_key")
}

pub(super) async fn configure(a: ConfigureArgs) -> anyhow::Result<()> {
    let home = CofferHome::from_env()?;
    // A plain-http gateway off loopback is refused now rather than at
    // every later command, unless the exception is stored with it.
    let gateway_url = match a.gateway_url {
        Some(url) => Some(
            coffer_client::check_base_url(&url, a.allow_insecure_http).map_err(|e| match e {
                coffer_client::Error::InsecureHttp(i) => anyhow::anyhow!(
                    "gateway URL: refusing plain HTTP to {}: credentials would cross the network unencrypted. Use https://, or pass --allow-insecure-http to store this exception in the profile (when a TLS proxy or a private network protects the traffic)",
                    i.origin
                ),
                other => other.into(),
            })?,
        ),
        None => None,
    };
    // COFFER_ACCESS_KEY only for the access ID it goes with: never another
    // ID's key saved (and sent) under --access-id.
    let env_key = || match env_var("COFFER_ACCESS_ID") {
        Some(id) if id.trim() != a.access_id.trim() => None,
        _ => env_var("COFFER_ACCESS_KEY").map(|k| secrecy::SecretString::from(k.trim().to_owned())),
    };
    let access_key = match a.access_key.or_else(env_key) {
        Some(key)
            if secrecy::ExposeSecret::expose_secret(&key) == "-"
                && std::io::IsTerminal::is_terminal(&std::io::stdin()) =>
        {
            Some(read_hidden_line("Access key (input hidden): ")?)
        }
        Some(key) => Some(secret_or_stdin(key, true)?),
        None if uses_access_key(&a.access_type) => bail!(
            "--access-key is required for access type {} (or set COFFER_ACCESS_KEY, with COFFER_ACCESS_ID unset or the same access ID)",
            a.access_type
        ),
        None => None,
    };
    let ca_cert = match a.ca_cert {
        Some(path) => Some(
            std::fs::canonicalize(&path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    let profile = Profile {
        access_id: a.access_id,
        access_key,
        access_type: a.access_type,
        gateway_url,
        ca_cert,
        allow_insecure_http: a.allow_insecure_http,
    };
    let checked = if a.no_login_check {
        None
    } else {
        check_login(&profile).await?
    };
    let path = home.write_profile(&a.profile, &profile)?;
    if json_wanted() {
        return emit_json(&serde_json::json!({
            "profile": a.profile,
            "path": path.display().to_string(),
            "access_id": profile.access_id,
            "gateway_url": checked,
        }));
    }
    match checked {
        Some(gateway) => emit(&format!(
            "Profile {} saved to {} (logged in to {gateway} as {})",
            a.profile,
            path.display(),
            profile.access_id
        )),
        None => emit(&format!(
            "Profile {} saved to {}",
            a.profile,
            path.display()
        )),
    }
}

/// Log in with the profile about to be saved (the gateway it names, else
/// COFFER_GATEWAY_URL, else the default: where later commands send the
/// profile's credentials; never AKEYLESS_GATEWAY_URL, which belongs to the
/// AKEYLESS_* credentials), so a
/// wrong key, ID or URL is found now, not at the next command. Only API-key
/// profiles can be checked (the others hold no credential); returns the
/// gateway logged in to.
async fn check_login(profile: &Profile) -> anyhow::Result<Option<String>> {
    let Some(key) = &profile.access_key else {
        return Ok(None);
    };
    if !uses_access_key(&profile.access_type) {
        return Ok(None);
    }
    let flag = profile
        .gateway_url
        .clone()
        .or_else(|| env_var("COFFER_GATEWAY_URL"));
    let gateway = resolve_gateway_url(flag.as_deref(), None);
    let ca_cert_pem = match profile
        .ca_cert
        .clone()
        .or_else(|| env_var("COFFER_CA_CERT").map(Into::into))
    {
        Some(path) => Some(
            std::fs::read(&path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    let client = coffer_client::Client::new(
        &gateway,
        coffer_client::ClientOptions {
            ca_cert_pem,
            allow_insecure_http: profile.allow_insecure_http,
            ..Default::default()
        },
    )?;
    let request = Auth {
        access_id: profile.access_id.clone(),
        access_type: profile.access_type.clone(),
        access_key: Some(key.clone()),
        ..Default::default()
    };
    client.auth(&request).await.map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "profile not saved: logging in to {gateway} as {} failed (fix the access ID, key or gateway URL, or pass --no-login-check to save it anyway)",
            profile.access_id
        ))
    })?;
    Ok(Some(client.base_url().to_owned()))
}

pub(super) fn unconfigure(a: UnconfigureArgs) -> anyhow::Result<()> {
    let home = CofferHome::from_env()?;
    if !home.remove_profile(&a.profile)? {
        bail!("no profile named {:?}", a.profile);
    }
    if json_wanted() {
        return emit_json(&serde_json::json!({"profile": a.profile, "removed": true}));
    }
    emit(&format!("Profile {} removed", a.profile))
}
