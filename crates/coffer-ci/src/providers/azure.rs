//! The `azure_key_vault` provider: Azure Key Vault secrets over plain REST,
//! authenticated with Microsoft Entra ID's client-assertion flow (the job's
//! ID token as a federated credential), as GitLab Runner's resolver does.
//!
//! Two requests:
//!
//! 1. [`get_token`]: `POST {authority}/{tenant}/oauth2/v2.0/token` with
//!    `grant_type=client_credentials`, `client_id`,
//!    `scope=https://vault.azure.net/.default`,
//!    `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//!    and `client_assertion=<JWT>` → `access_token`. Cache the
//!    [`AccessToken`] under [`TokenRequest::cache_key`]: every secret of a
//!    job shares it.
//! 2. [`get_secret`]: `GET {vault}/secrets/{name}/{version}?api-version=7.5`
//!    with the bearer token → `value`.
//!
//! [`resolve`] chains both for a single secret, after checking every input
//! ([`check`]) so that a bad name or URL fails before any request.
//!
//! Secret names are checked against Key Vault's rule (`^[0-9a-zA-Z-]{1,127}$`),
//! versions must be alphanumeric, and both are added as escaped path segments,
//! so a name can never add path segments or a query. Plain `http://` is
//! accepted for the vault and the authority only on loopback (tests); the
//! Azure SDK refuses it everywhere, and so does `coffer ci` even with
//! `COFFER_ALLOW_INSECURE_HTTP` (Entra ID and Key Vault only speak HTTPS).
//! Redirects are never followed (the token request carries the job's ID
//! token, the secret request the access token): a 3xx is an error.

use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Env, ProviderError, clean_text, is_loopback, read_capped, refuse_redirect, transport};

type Result<T> = std::result::Result<T, ProviderError>;

/// Entra ID authority when `AZURE_AUTHORITY_HOST` is not set.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// OAuth scope of the Key Vault data plane.
pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// Key Vault REST API version.
pub const API_VERSION: &str = "7.5";
/// `client_assertion_type` of a JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest Key Vault object name.
pub const MAX_NAME_LEN: usize = 127;

/// The provider's settings (GitLab's `server` block).
#[derive(Clone, Debug, Default)]
pub struct AzureServer {
    /// `AZURE_KEY_VAULT_SERVER_URL`, e.g. `https://my-vault.vault.azure.net/`.
    pub vault_url: String,
    /// `AZURE_CLIENT_ID`: the application (client) id of the app registration
    /// or managed identity holding the federated credential.
    pub client_id: String,
    /// `AZURE_TENANT_ID`.
    pub tenant_id: String,
    /// `AZURE_AUTHORITY_HOST`, default [`DEFAULT_AUTHORITY_HOST`].
    pub authority_host: String,
}

impl AzureServer {
    /// `AZURE_KEY_VAULT_SERVER_URL`, `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`
    /// from the job's variables (`get`); `AZURE_AUTHORITY_HOST` from the
    /// host environment `env`, as the Azure SDK reads it.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>, env: &Env) -> Self {
        let var = |name: &str| get(name).unwrap_or_default();
        AzureServer {
            vault_url: var("AZURE_KEY_VAULT_SERVER_URL"),
            client_id: var("AZURE_CLIENT_ID"),
            tenant_id: var("AZURE_TENANT_ID"),
            authority_host: env
                .get("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_string()),
        }
    }
}

/// One `azure_key_vault:` secret after `$VARIABLE` expansion.
#[derive(Clone, Debug, Default)]
pub struct AzureSecret {
    pub name: String,
    /// Empty = the latest version.
    pub version: String,
}

/// One client-assertion token request.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    /// The job's ID token.
    pub assertion: SecretString,
}

/// Identifies a [`TokenRequest`] for caching its [`AccessToken`]: authority,
/// tenant, client id and a SHA-256 digest of the assertion.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    pub assertion_sha256: [u8; 32],
}

impl TokenRequest {
    pub fn new(server: &AzureServer, assertion: SecretString) -> Self {
        TokenRequest {
            authority_host: server.authority_host.clone(),
            tenant_id: server.tenant_id.clone(),
            client_id: server.client_id.clone(),
            assertion,
        }
    }

    /// The cache key of this request.
    pub fn cache_key(&self) -> TokenKey {
        use sha2::Digest as _;
        TokenKey {
            authority_host: self.authority_host.clone(),
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            assertion_sha256: sha2::Sha256::digest(self.assertion.expose_secret().as_bytes())
                .into(),
        }
    }

    /// The token endpoint URL, after checking the authority and tenant.
    pub fn token_url(&self) -> Result<reqwest::Url> {
        if self.client_id.trim().is_empty() {
            return Err(ProviderError::Config(
                "AZURE_CLIENT_ID is not set".to_string(),
            ));
        }
        let tenant = self.tenant_id.as_str();
        if tenant.is_empty() {
            return Err(ProviderError::Config(
                "AZURE_TENANT_ID is not set".to_string(),
            ));
        }
        // A GUID or a domain name (contoso.onmicrosoft.com).
        if tenant.len() > 256
            || !tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || tenant.starts_with('.')
        {
            return Err(ProviderError::Config(format!(
                "invalid AZURE_TENANT_ID '{}': expected a tenant GUID or domain name",
                clean_text(tenant)
            )));
        }
        let mut url = base_url("AZURE_AUTHORITY_HOST", &self.authority_host)?;
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::Config(format!(
                    "invalid AZURE_AUTHORITY_HOST '{}'",
                    self.authority_host
                ))
            })?
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        Ok(url)
    }
}

/// An Entra ID access token for Key Vault. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    token: SecretString,
    expires_at: Option<SystemTime>,
}

impl AccessToken {
    pub fn new(token: SecretString, expires_at: Option<SystemTime>) -> Self {
        AccessToken { token, expires_at }
    }

    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// True when the token expires within `margin` from now.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= SystemTime::now() + margin)
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Parses an `https://` base URL (`http://` only for loopback hosts) with no
/// query, fragment or user info.
fn base_url(var: &str, raw: &str) -> Result<reqwest::Url> {
    let shown = clean_text(&coffer_client::transport::redact_userinfo(raw.trim()));
    let bad = |why: &str| ProviderError::Config(format!("invalid {var} '{shown}': {why}"));
    if raw.trim().is_empty() {
        return Err(ProviderError::Config(format!("{var} is not set")));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(bad("https is required (http only for loopback)")),
        _ => return Err(bad("expected an https:// URL")),
    }
    if url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad("expected https://host[:port][/path]"));
    }
    Ok(url)
}

/// The Key Vault URL of `secret`, after checking the name and version.
pub fn secret_url(vault_url: &str, secret: &AzureSecret) -> Result<reqwest::Url> {
    let name = secret.name.as_str();
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ProviderError::Config(format!(
            "invalid Azure Key Vault secret name '{}': use 1-127 letters, digits and dashes",
            clean_text(name)
        )));
    }
    let version = secret.version.as_str();
    if !version.is_empty()
        && (version.len() > 64 || !version.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(ProviderError::Config(format!(
            "invalid Azure Key Vault secret version '{}' for secret '{name}': \
             expected the version id (32 hexadecimal characters)",
            clean_text(version)
        )));
    }
    let mut url = base_url("AZURE_KEY_VAULT_SERVER_URL", vault_url)?;
    {
        let mut segments = url.path_segments_mut().map_err(|()| {
            ProviderError::Config(format!("invalid AZURE_KEY_VAULT_SERVER_URL '{vault_url}'"))
        })?;
        segments.pop_if_empty().extend(["secrets", name]);
        if !version.is_empty() {
            segments.push(version);
        }
    }
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION);
    Ok(url)
}

/// Checks every input of one secret without any I/O; returns the secret's
/// URL and the token request.
pub fn check(
    server: &AzureServer,
    secret: &AzureSecret,
    jwt: &SecretString,
) -> Result<(reqwest::Url, TokenRequest)> {
    let url = secret_url(&server.vault_url, secret)?;
    if jwt.expose_secret().trim().is_empty() {
        return Err(ProviderError::Config(format!(
            "no ID token for Azure Key Vault secret '{}': declare an id_token and set the \
             secret's token (for example token: $AZURE_JWT)",
            secret.name
        )));
    }
    let request = TokenRequest::new(server, jwt.clone());
    request.token_url()?;
    Ok((url, request))
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<SecretString>,
    /// Seconds; v2.0 sends a number, v1.0 a string.
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<i64>,
}

/// Exchanges the job's ID token for a Key Vault access token. Entra ID error
/// replies (`{"error","error_description","error_codes",…}`) become
/// readable [`ProviderError::Api`] errors with a hint for the usual
/// federated-credential mistakes.
pub async fn get_token(client: &reqwest::Client, request: &TokenRequest) -> Result<AccessToken> {
    let url = request.token_url()?;
    let what = "Azure AD token request";
    let form: [(&str, &str); 5] = [
        ("grant_type", "client_credentials"),
        ("client_id", &request.client_id),
        ("scope", KEY_VAULT_SCOPE),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", request.assertion.expose_secret()),
    ];
    let started = SystemTime::now();
    let response = client
        .post(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| transport(what, &e))?;
    refuse_redirect(what, &response)?;
    let status = response.status();
    let body = read_capped(what, response).await?;

    if !status.is_success() {
        let sent = [request.assertion.expose_secret()];
        return Err(entra_error(status.as_u16(), &super::scrub(&body, &sent)).redact(&sent));
    }
    let reply: TokenReply = serde_json::from_slice(&body).map_err(|_| {
        ProviderError::Transport(format!("{what}: the reply is not a token response"))
    })?;
    let token = reply
        .access_token
        .filter(|t| !t.expose_secret().is_empty())
        .ok_or_else(|| {
            ProviderError::Transport(format!("{what}: the reply has no access_token"))
        })?;
    let seconds = match reply.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(AccessToken::new(
        token,
        seconds.map(|s| started + Duration::from_secs(s)),
    ))
}

fn entra_error(status: u16, body: &[u8]) -> ProviderError {
    let Ok(parsed) = serde_json::from_slice::<EntraError>(body) else {
        return ProviderError::Api {
            status,
            code: String::new(),
            message: format!(
                "Azure AD token request failed (HTTP {status}): {}",
                clean_text(&String::from_utf8_lossy(&body[..body.len().min(300)]))
            ),
        };
    };
    // "AADSTS50027: JWT token is invalid or malformed.\r\nTrace ID: …"
    let first_line = parsed
        .error_description
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.')
        .to_string();
    let number = parsed.error_codes.first().copied().or_else(|| {
        first_line
            .strip_prefix("AADSTS")
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
    });
    let summary = if first_line.is_empty() {
        parsed.error.clone()
    } else {
        clean_text(&first_line)
    };
    let code = number
        .map(|n| format!("AADSTS{n}"))
        .unwrap_or_else(|| parsed.error.clone());
    let assertion_hint = match number {
        Some(50027) => Some(
            "check that the secret's token is the job's ID token and that its audience \
             matches the federated credential",
        ),
        Some(700211) => Some(
            "no federated credential matches the ID token's issuer: set the federated \
             credential's issuer to the GitLab instance URL",
        ),
        Some(700212) => Some(
            "no federated credential matches the ID token's audience: set id_tokens aud to \
             the federated credential's audience",
        ),
        Some(700213) => Some(
            "no federated credential matches the ID token's subject: check the federated \
             credential's subject (project_path:<group>/<project>:ref_type:<type>:ref:<ref>)",
        ),
        Some(700024) => Some("the ID token has expired or is not yet valid"),
        _ => None,
    };
    let message = match (assertion_hint, number) {
        (Some(hint), _) => format!("Azure AD refused the client assertion ({summary}): {hint}"),
        (None, Some(700016)) => format!(
            "Azure AD token request failed ({summary}): check AZURE_CLIENT_ID and AZURE_TENANT_ID"
        ),
        (None, Some(90002)) => {
            format!("Azure AD token request failed ({summary}): check AZURE_TENANT_ID")
        }
        (None, _) => format!(
            "Azure AD token request failed (HTTP {status} {}): {summary}",
            parsed.error
        ),
    };
    ProviderError::Api {
        status,
        code,
        message,
    }
}

#[derive(Deserialize)]
struct SecretBundle {
    value: Option<SecretString>,
}

#[derive(Deserialize, Default)]
struct KeyVaultErrorBody {
    error: Option<KeyVaultError>,
}

#[derive(Deserialize, Default)]
struct KeyVaultError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    innererror: Option<Box<KeyVaultError>>,
}

/// Reads one secret with `token`. 404 `SecretNotFound` (and a bundle with
/// no value) is [`ProviderError::NotFound`] (`secret not found`, GitLab's
/// text); other Key Vault errors become readable [`ProviderError::Api`]
/// errors, 403 `ForbiddenByRbac` with the role to assign.
pub async fn get_secret(
    client: &reqwest::Client,
    vault_url: &str,
    secret: &AzureSecret,
    token: &AccessToken,
) -> Result<SecretString> {
    let url = secret_url(vault_url, secret)?;
    let name = &secret.name;
    let what = format!("Azure Key Vault GET secret '{name}'");
    let response = client
        .get(url)
        .bearer_auth(token.token.expose_secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| transport(&what, &e))?;
    refuse_redirect(&what, &response)?;
    let status = response.status().as_u16();
    let body = read_capped(&what, response).await?;
    if (200..300).contains(&status) {
        let bundle: SecretBundle = serde_json::from_slice(&body).map_err(|_| {
            ProviderError::Transport(format!("{what}: the reply is not a secret bundle"))
        })?;
        return bundle.value.ok_or(ProviderError::NotFound);
    }
    let body = super::scrub(&body, &[token.token.expose_secret()]);
    let error = serde_json::from_slice::<KeyVaultErrorBody>(&body)
        .ok()
        .and_then(|b| b.error)
        .unwrap_or_default();
    let inner = error
        .innererror
        .as_ref()
        .map(|i| i.code.clone())
        .unwrap_or_default();
    if status == 404 && (error.code == "SecretNotFound" || inner == "SecretNotFound") {
        return Err(ProviderError::NotFound);
    }
    let first_line = error
        .message
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.')
        .to_string();
    let codes = match (error.code.is_empty(), inner.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!(", {}", error.code),
        (false, false) => format!(", {}, {inner}", error.code),
    };
    let detail = if first_line.is_empty() {
        String::new()
    } else {
        format!(": {}", clean_text(&first_line))
    };
    let hint = match (status, inner.as_str()) {
        (403, "ForbiddenByRbac") => {
            ". Assign the \"Key Vault Secrets User\" role on the vault (or the secret) to the \
             application AZURE_CLIENT_ID"
        }
        (403, "ForbiddenByPolicy" | "AccessDenied") => {
            ". Grant the application AZURE_CLIENT_ID the Get permission on secrets in the \
             vault's access policies"
        }
        (403, "ForbiddenByFirewall" | "ForbiddenByConnection") => {
            ". The vault's network rules do not allow this host"
        }
        (401, _) => {
            ". The access token was refused: check that AZURE_TENANT_ID is the vault's tenant"
        }
        _ => "",
    };
    Err(ProviderError::Api {
        status,
        code: if inner.is_empty() { error.code } else { inner },
        message: format!("{what} failed (HTTP {status}{codes}){detail}{hint}"),
    }
    .redact(&[token.token.expose_secret()]))
}

/// One secret end to end: [`check`], [`get_token`], [`get_secret`]. No
/// caching: a caller resolving several secrets should cache the token under
/// [`TokenRequest::cache_key`].
pub async fn resolve(
    client: &reqwest::Client,
    server: &AzureServer,
    secret: &AzureSecret,
    jwt: &SecretString,
) -> Result<SecretString> {
    let (_, request) = check(server, secret, jwt)?;
    let token = get_token(client, &request).await?;
    get_secret(client, &server.vault_url, secret, &token).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, version: &str) -> AzureSecret {
        AzureSecret {
            name: name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn secret_urls() {
        let vault = "https://my-vault.vault.azure.net/";
        assert_eq!(
            secret_url(vault, &secret("db-password", ""))
                .unwrap()
                .as_str(),
            "https://my-vault.vault.azure.net/secrets/db-password?api-version=7.5"
        );
        assert_eq!(
            secret_url("https://my-vault.vault.azure.net", &secret("a", "0123abcd"))
                .unwrap()
                .as_str(),
            "https://my-vault.vault.azure.net/secrets/a/0123abcd?api-version=7.5"
        );
        let long = "a".repeat(MAX_NAME_LEN);
        assert!(secret_url(vault, &secret(&long, "")).is_ok());
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "../keys/k",
            "a/b",
            "a?b",
            "a%2Fb",
            "a b",
            "é",
            too_long.as_str(),
        ] {
            let e = secret_url(vault, &secret(bad, "")).unwrap_err();
            assert!(
                e.to_string()
                    .contains("invalid Azure Key Vault secret name"),
                "{e}"
            );
        }
        for bad in ["../x", "v/1", "v?x", "v-1"] {
            let e = secret_url(vault, &secret("ok", bad)).unwrap_err();
            assert!(
                e.to_string()
                    .contains("invalid Azure Key Vault secret version"),
                "{e}"
            );
        }
    }

    #[test]
    fn urls_must_be_https_except_loopback() {
        let s = secret("a", "");
        assert!(secret_url("http://127.0.0.1:8080", &s).is_ok());
        assert!(secret_url("http://localhost:8080/", &s).is_ok());
        assert!(secret_url("http://[::1]:8080/", &s).is_ok());
        for bad in [
            "http://my-vault.vault.azure.net",
            "ftp://x",
            "https://x/?q=1",
            "https://u:p@x/",
            "not a url",
            "",
        ] {
            assert!(
                matches!(secret_url(bad, &s), Err(ProviderError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_urls() {
        let server = AzureServer {
            vault_url: "https://v.vault.azure.net".into(),
            client_id: "client".into(),
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            authority_host: DEFAULT_AUTHORITY_HOST.into(),
        };
        let request = TokenRequest::new(&server, SecretString::from("jwt"));
        assert_eq!(
            request.token_url().unwrap().as_str(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
        for bad in ["", "../x", "a/b", "a?b", ".x"] {
            let mut r = request.clone();
            r.tenant_id = bad.into();
            assert!(
                matches!(r.token_url(), Err(ProviderError::Config(_))),
                "{bad}"
            );
        }
        let mut r = request.clone();
        r.client_id = String::new();
        assert!(r.token_url().is_err());
        let mut other = request.clone();
        assert_eq!(request.cache_key(), other.cache_key());
        other.assertion = SecretString::from("jwt2");
        assert_ne!(request.cache_key(), other.cache_key());
    }

    #[test]
    fn server_from_variables() {
        let s = AzureServer::from_variables(
            |k| (k == "AZURE_TENANT_ID").then(|| "t".to_string()),
            &Env::from_pairs([("AZURE_AUTHORITY_HOST", "http://127.0.0.1:9")]),
        );
        assert_eq!(s.tenant_id, "t");
        assert_eq!(s.authority_host, "http://127.0.0.1:9");
        let d = AzureServer::from_variables(|_| None, &Env::from_pairs::<&str, &str>([]));
        assert_eq!(d.authority_host, DEFAULT_AUTHORITY_HOST);
    }

    #[test]
    fn entra_errors() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS50027: JWT token is invalid or malformed.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[50027],"timestamp":"2026-01-01 00:00:00Z","trace_id":"1","correlation_id":"2"}"#;
        let e = entra_error(400, body);
        assert_eq!(
            e.to_string(),
            "Azure AD refused the client assertion (AADSTS50027: JWT token is invalid or malformed): \
             check that the secret's token is the job's ID token and that its audience matches the federated credential"
        );
        assert!(
            matches!(&e, ProviderError::Api { code, status: 400, .. } if code == "AADSTS50027")
        );
        let e = entra_error(502, b"<html>bad gateway</html>");
        assert!(e.to_string().contains("HTTP 502"), "{e}");
    }

    #[test]
    fn token_debug_hides_the_token() {
        let t = AccessToken::new(SecretString::from("eyJ-secret"), None);
        assert!(!format!("{t:?}").contains("eyJ-secret"));
        assert!(!t.expires_within(Duration::from_secs(60)));
    }
}
