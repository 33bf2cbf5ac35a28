//! Secret providers: one module per GitLab `secrets:` provider key.
//!
//! Every provider separates the *login* (a credential exchange the caller
//! can cache and share between secrets) from the *fetch* of one secret, so
//! that 50 secrets behind the same identity cost one login. Values are
//! returned as [`secrecy::SecretString`] and are never logged or put into
//! an error message; errors name the secret (id, name), never its value or
//! a credential.
//!
//! Shared here: [`ProviderError`], the HTTP client every provider uses
//! ([`http_client`]: timeouts, no redirects, a User-Agent), a capped
//! response reader, and the transport rules of `coffer_client::transport`
//! applied to provider URLs: a 3xx answer is an error naming the status and
//! the `Location` host (`refuse_redirect`), and plain `http://` is refused
//! before any connection unless the host is loopback, a cloud metadata
//! address the caller names, or `COFFER_ALLOW_INSECURE_HTTP` is set in the
//! host environment (`check_plain_http`, [`Env::allow_insecure_http`]).

pub mod akeyless;
pub mod aws;
pub mod azure;

use std::time::Duration;

/// Per-request timeout, as GitLab Runner's AWS resolver (30 s per secret).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection timeout (TCP + TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read from any provider. Secrets Manager values are
/// at most 64 KiB (88 KiB once base64-encoded in JSON), Key Vault values
/// 25 KiB; anything larger is not a legitimate reply.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a provider could not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The secret's settings are unusable; found before any request was sent.
    #[error("{0}")]
    Config(String),
    /// No credentials could be found on this host (AWS default chain).
    #[error("{0}")]
    Credentials(String),
    /// The provider answered with an error (login or fetch).
    #[error("{message}")]
    Api {
        /// HTTP status of the reply.
        status: u16,
        /// The provider's error code (`ResourceNotFoundException`,
        /// `InvalidIdentityToken`, `invalid_client`, `ForbiddenByRbac`, …),
        /// empty when the reply had none.
        code: String,
        /// The readable message shown to the user.
        message: String,
    },
    /// The provider says the secret does not exist (GitLab's
    /// `ErrSecretNotFound`; the caller decides between failing and an empty
    /// value, as `FF_SECRET_RESOLVING_FAILS_IF_MISSING` does).
    #[error("secret not found")]
    NotFound,
    /// The request did not complete, or the reply could not be understood.
    #[error("{0}")]
    Transport(String),
    /// The secret was fetched but no value could be taken from it (empty
    /// secret, `field` extraction).
    #[error("{0}")]
    Value(String),
}

impl ProviderError {
    /// Masks each of `sent` (the credentials a request carried) in the
    /// message ([`scrub`]): a provider, or something posing as one, that
    /// echoes its input must not make us print a credential.
    pub(crate) fn redact(self, sent: &[&str]) -> ProviderError {
        let scrub =
            |text: String| String::from_utf8_lossy(&scrub(text.as_bytes(), sent)).into_owned();
        match self {
            ProviderError::Api {
                status,
                code,
                message,
            } => ProviderError::Api {
                status,
                code: scrub(code),
                message: scrub(message),
            },
            ProviderError::Config(m) => ProviderError::Config(scrub(m)),
            ProviderError::Credentials(m) => ProviderError::Credentials(scrub(m)),
            ProviderError::Transport(m) => ProviderError::Transport(scrub(m)),
            ProviderError::Value(m) => ProviderError::Value(scrub(m)),
            ProviderError::NotFound => ProviderError::NotFound,
        }
    }

    /// The HTTP status of a provider error reply, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the failure lies in the job's configuration or in the
    /// provider's access rules (bad settings, 400/401/403/404) rather than in
    /// an unavailable dependency (connection failures, 5xx). This mirrors
    /// GitLab Runner's Vault classification (`config_error` versus
    /// `runner_external_dependency_failure`).
    pub fn is_config_error(&self) -> bool {
        match self {
            ProviderError::Config(_)
            | ProviderError::Credentials(_)
            | ProviderError::NotFound
            | ProviderError::Value(_) => true,
            ProviderError::Api { status, .. } => (400..500).contains(status),
            ProviderError::Transport(_) => false,
        }
    }
}

/// The HTTP client for provider calls: `timeout` per request
/// ([`DEFAULT_TIMEOUT`] is what GitLab Runner uses), [`CONNECT_TIMEOUT`] to
/// connect, redirects not followed (a redirect could carry a bearer token or
/// a signed request elsewhere), and a `coffer-ci/<version>` User-Agent.
///
/// One client is meant to be shared by every secret of a run (it pools
/// connections).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .user_agent(concat!("coffer-ci/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .redirect(coffer_client::transport::redirect_policy())
        .build()
        .map_err(|e| ProviderError::Transport(format!("building the HTTP client: {}", chain(&e))))
}

/// `e` and its sources, `: `-separated (reqwest's own message alone does not
/// say *why* a connection failed).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A transport error for a request to `what` (for example
/// `AWS STS AssumeRoleWithWebIdentity`).
pub(crate) fn transport(what: &str, e: &reqwest::Error) -> ProviderError {
    let reason = if e.is_timeout() {
        "timed out".to_string()
    } else {
        chain(e)
    };
    ProviderError::Transport(format!("{what}: request failed: {reason}"))
}

/// Reads a reply body, refusing more than [`MAX_RESPONSE_BYTES`]. The buffer
/// is wiped on drop: it may hold a secret or a credential.
pub(crate) async fn read_capped(
    what: &str,
    mut response: reqwest::Response,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ProviderError> {
    let too_large = || {
        ProviderError::Transport(format!(
            "{what}: the reply is larger than {MAX_RESPONSE_BYTES} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = zeroize::Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(what, &e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `body` with every form of each of `sent` the masker knows (as is,
/// JSON-escaped, base64, URL-encoded) replaced by `[MASKED]`. Applied to a
/// provider's error reply before it is quoted, and cut, in a message, so
/// not even a prefix of a credential the request carried is shown.
pub(crate) fn scrub(body: &[u8], sent: &[&str]) -> Vec<u8> {
    let values: Vec<(String, secrecy::SecretString)> = sent
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            (
                "sent".to_owned(),
                secrecy::SecretString::from((*s).to_owned()),
            )
        })
        .collect();
    if values.is_empty() {
        return body.to_vec();
    }
    crate::mask::Masker::new(&values).0.mask(body)
}

/// True when `url`'s host is `localhost` or a loopback address.
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    coffer_client::transport::is_loopback(url)
}

/// A 3xx reply to a request to `what` becomes a configuration error naming
/// the status and the `Location` host (the clients never follow redirects:
/// a 307 would send the same credentials to the new address).
pub(crate) fn refuse_redirect(
    what: &str,
    response: &reqwest::Response,
) -> Result<(), ProviderError> {
    coffer_client::transport::RedirectRefused::check(response)
        .map_err(|r| ProviderError::Config(format!("{what}: {r}")))
}

/// Refuses a plain `http://` URL before any connection unless its host is
/// loopback, one of `also_plain` (the exact cloud metadata addresses that
/// only speak plain HTTP) or `env` allows insecure HTTP
/// ([`Env::allow_insecure_http`]). `what` names the setting or request.
pub(crate) fn check_plain_http(
    what: &str,
    url: &reqwest::Url,
    env: &Env,
    also_plain: &[&str],
) -> Result<(), ProviderError> {
    coffer_client::transport::check_plain_http(url, env.allow_insecure_http(), also_plain)
        .map_err(|e| ProviderError::Config(format!("{what}: {e}")))
}

/// Makes provider-supplied text safe and short enough for one log line:
/// control characters (CR/LF included) become spaces, runs of spaces are
/// collapsed, and the result is cut at 600 characters.
pub(crate) fn clean_text(text: &str) -> String {
    const MAX: usize = 600;
    let mut out = String::with_capacity(text.len().min(MAX + 3));
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if out.chars().count() >= MAX {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// Where host settings (endpoint overrides, host credentials, authority
/// host) are read from: the process environment, or a fixed map (tests,
/// embedding). An empty value counts as unset, as in the AWS and Azure SDKs.
#[derive(Clone, Default)]
pub enum Env {
    /// `std::env::var`.
    #[default]
    Process,
    /// A fixed set of variables; nothing else is visible.
    Map(std::collections::HashMap<String, String>),
}

/// The host variable that allows plain `http://` to hosts that are not
/// loopback (`1`, `true`, `yes`, `on`); the CLI's `--allow-insecure-http`
/// sets it in the [`Env`] it passes.
pub const ALLOW_INSECURE_HTTP_VAR: &str = "COFFER_ALLOW_INSECURE_HTTP";

impl Env {
    /// This process's environment with `overrides` on top (a snapshot: later
    /// changes to the process environment are not seen).
    pub fn process_with<K: Into<String>, V: Into<String>>(
        overrides: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut map: std::collections::HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        map.extend(overrides.into_iter().map(|(k, v)| (k.into(), v.into())));
        Env::Map(map)
    }

    /// True when [`ALLOW_INSECURE_HTTP_VAR`] is `1`, `true`, `yes` or `on`
    /// (any case; also `t` and `y`, as the CLI's flags accept). Anything
    /// else, including an unreadable value, is false.
    pub fn allow_insecure_http(&self) -> bool {
        self.get(ALLOW_INSECURE_HTTP_VAR).is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "t" | "yes" | "y" | "on"
            )
        })
    }

    /// A fixed environment from `(name, value)` pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The variable's value; `None` when unset, empty or not UTF-8.
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
        }
        .filter(|v| !v.is_empty())
    }
}

/// Names only: the values may be credentials.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Env::Process => f.write_str("Env::Process"),
            Env::Map(map) => {
                let mut names: Vec<&String> = map.keys().collect();
                names.sort();
                f.debug_tuple("Env::Map").field(&names).finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_flattens_and_caps() {
        assert_eq!(clean_text("a\r\nb  \t c\n"), "a b c");
        let long = "x".repeat(1000);
        let cleaned = clean_text(&long);
        assert_eq!(cleaned.chars().count(), 601);
        assert!(cleaned.ends_with('…'));
    }

    #[test]
    fn classification() {
        let api = |status| ProviderError::Api {
            status,
            code: String::new(),
            message: String::new(),
        };
        assert!(api(403).is_config_error());
        assert!(!api(503).is_config_error());
        assert!(ProviderError::NotFound.is_config_error());
        assert!(!ProviderError::Transport("x".into()).is_config_error());
        assert_eq!(ProviderError::NotFound.to_string(), "secret not found");
        assert_eq!(api(404).status(), Some(404));
    }

    #[test]
    fn echoed_credentials_are_redacted() {
        let e = ProviderError::Api {
            status: 400,
            code: "Bad".into(),
            message: "token eyJ.S3CR3T.sig is invalid".into(),
        }
        .redact(&["eyJ.S3CR3T.sig", ""]);
        assert_eq!(e.to_string(), "token [MASKED] is invalid");
        assert_eq!(
            scrub(b"a=eyJ.S3CR3T%2Bsig&b", &["eyJ.S3CR3T+sig"]),
            b"a=[MASKED]&b"
        );
    }
}
