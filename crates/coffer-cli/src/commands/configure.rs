//! `configure` / `unconfigure`: login profiles.

use anyhow::{Context as _, bail};

use crate::args::{ConfigureArgs, UnconfigureArgs};
use crate::output::emit;
use crate::profile::{CofferHome, Profile};
use crate::session::secret_or_stdin;

/// Access types that log in with an access key.
pub(super) fn uses_access_key(access_type: &str) -> bool {
    matches!(access_type, "access_key" | "api_key")
}

pub(super) fn configure(a: ConfigureArgs) -> anyhow::Result<()> {
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
    let access_key = match a.access_key {
        Some(key) => Some(secret_or_stdin(key, true)?),
        None if uses_access_key(&a.access_type) => bail!(
            "--access-key is required for access type {} (or set COFFER_ACCESS_KEY)",
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
    let path = home.write_profile(&a.profile, &profile)?;
    emit(&format!(
        "Profile {} saved to {}",
        a.profile,
        path.display()
    ))
}

pub(super) fn unconfigure(a: UnconfigureArgs) -> anyhow::Result<()> {
    let home = CofferHome::from_env()?;
    if !home.remove_profile(&a.profile)? {
        bail!("no profile named {:?}", a.profile);
    }
    emit(&format!("Profile {} removed", a.profile))
}
