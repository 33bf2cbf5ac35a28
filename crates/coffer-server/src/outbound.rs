//! HTTP clients for the calls Coffer itself makes (JWKS, AWS STS,
//! Microsoft Graph): no redirects followed, bounded connect and total time,
//! TLS through aws-lc-rs, Coffer's user agent.

use std::time::Duration;

/// A client for one kind of outbound call; `what` names it in the error.
pub(crate) fn client(
    connect: Duration,
    total: Duration,
    what: &str,
) -> Result<reqwest::Client, String> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .ok();
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the {what} HTTP client: {e}"))
}
