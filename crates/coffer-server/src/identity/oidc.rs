//! `oidc` methods: people log in through an OpenID Provider with the
//! authorization-code flow and PKCE (like `vault login -method=oidc`).
//!
//! 1. `oidc-auth-url {access-id, redirect-uri, client-nonce}` (no
//!    token): the redirect URI must be one the method allows (loopback
//!    URIs for the CLI); `client-nonce` is a random value the client
//!    keeps to itself (like Vault's `client_nonce`). The server makes a
//!    nonce and a PKCE verifier and seals them, with the access ID, the
//!    redirect URI, the SHA-256 of the client nonce and an expiry
//!    ([`STATE_TTL_MS`]), into the `state`: AES-GCM under a key of its
//!    own (derived from the derivation key and a random salt carried in
//!    the state, never a data key: anyone may ask for states), so no node
//!    has to remember it, and neither the browser nor the provider can
//!    read the verifier. It answers the provider's authorization URL
//!    (from `<issuer>/.well-known/openid-configuration`) and the state.
//! 2. The CLI opens the URL; the provider redirects the browser to the
//!    CLI's loopback listener with `code` and `state`.
//! 3. `auth {access-type: oidc, access-id, code, state, client-nonce}`:
//!    the state is opened (it must be this method's, unexpired), the
//!    client nonce must be the one it was issued for (whoever saw only
//!    the redirect cannot redeem the code), and the state is used up in
//!    the store (once, on any node); the code is redeemed at the provider's
//!    token endpoint with the client secret (sealed at rest) and the PKCE
//!    verifier; the ID token is verified (signature with the provider's
//!    JWKS, `iss` exactly the configured issuer, `aud` naming the client
//!    ID, `azp` when present the client ID, `exp`, `nonce`); the required
//!    scopes must have been granted (a token response without `scope`
//!    granted what was asked, RFC 6749 §5.1). The Coffer token carries the ID token's claims as
//!    sub-claims and ends no later than the ID token.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_core::model::AuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{KeySource, Verified, settings, verify_jwt};
use crate::error::ApiError;
use crate::jwt::{self, check_jwks_url};
use crate::state::{AppState, now_ms};
use crate::wire::Body;

/// How long a login may take between `oidc-auth-url` and `auth`.
pub(crate) const STATE_TTL_MS: i64 = 10 * 60_000;
const SECRET_AAD: &[u8] = b"coffer:oidc:client-secret";
const STATE_AAD: &[u8] = b"coffer:oidc:state v2";
/// First byte of a sealed state: its format (v2: salt, then AES-GCM under
/// the salt's subkey of [`crate::state::Keys::oidc_state_keys`]).
const STATE_VERSION: u8 = 2;
const STATE_SALT_LEN: usize = 16;
/// Bounds of `client-nonce` (the CLI sends 43 characters).
const CLIENT_NONCE_MIN: usize = 16;
const CLIENT_NONCE_MAX: usize = 512;
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Stored settings of an OIDC method. The client secret is sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    /// Data key id and sealed client secret (base64).
    pub client_secret_key_id: i64,
    pub client_secret_sealed: String,
    /// The `aud` the ID tokens must carry (default: the client ID).
    pub audience: String,
    pub unique_identifier: String,
    pub required_scopes: Vec<String>,
    pub required_scopes_prefix: String,
    pub allowed_redirect_uris: Vec<String>,
}

/// What the state carries, sealed.
#[derive(Debug, Serialize, Deserialize)]
struct LoginState {
    /// Access ID.
    a: String,
    /// Redirect URI.
    r: String,
    /// Nonce (also the single-use key).
    n: String,
    /// PKCE verifier.
    v: String,
    /// SHA-256 of the client nonce (base64url).
    c: String,
    /// Expiry, Unix ms.
    e: i64,
}

fn trimmed(body: &Body, key: &str) -> Result<String, ApiError> {
    Ok(body.opt_str(key)?.unwrap_or_default().trim().to_owned())
}

/// Validated settings of `create-auth-method-oidc` (and of an update,
/// which replaces them all); the client secret is sealed with the active
/// data key.
pub(crate) fn settings_from_body(state: &AppState, body: &Body) -> Result<Value, ApiError> {
    // Stored exactly as given: the discovery document's `issuer` and the
    // ID tokens' `iss` must equal it, trailing slash included (Auth0's
    // issuers end with one).
    let issuer = trimmed(body, "issuer")?;
    if issuer.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter issuer: the OpenID Provider's issuer URL (its /.well-known/openid-configuration is read from there)",
        ));
    }
    if issuer.len() > 512 {
        return Err(ApiError::bad("issuer is longer than 512 bytes"));
    }
    check_jwks_url(&issuer).map_err(|e| ApiError::BadRequest(e.replace("jwks-uri", "issuer")))?;
    if issuer.contains(['?', '#']) {
        return Err(ApiError::bad(
            "issuer must not have a ?query or #fragment (OpenID Connect Discovery §2)",
        ));
    }
    let client_id = trimmed(body, "client-id")?;
    if client_id.is_empty() || client_id.len() > 512 {
        return Err(ApiError::bad(
            "missing required parameter client-id: the client ID Coffer is registered with at the provider",
        ));
    }
    let secret = body.opt_str("client-secret")?.unwrap_or_default();
    let secret = secret.trim();
    if secret.is_empty() || secret.len() > 4096 {
        return Err(ApiError::bad(
            "missing required parameter client-secret: the client secret of client-id at the provider (stored sealed, never shown)",
        ));
    }
    let key_id = state.keys.active_key_id();
    let sealed = state
        .keys
        .data_key(key_id)?
        .seal(secret.as_bytes(), SECRET_AAD)?;
    let unique_identifier = match trimmed(body, "unique-identifier")? {
        u if u.is_empty() => "sub".to_owned(),
        u if u.len() > 128 => {
            return Err(ApiError::bad("unique-identifier is longer than 128 bytes"));
        }
        u => u,
    };
    let audience = trimmed(body, "audience")?;
    let required_scopes = super::bounded_list(body, "required-scopes")?;
    let required_scopes_prefix = trimmed(body, "required-scopes-prefix")?;
    if required_scopes_prefix.len() > 256 {
        return Err(ApiError::bad(
            "required-scopes-prefix is longer than 256 bytes",
        ));
    }
    let allowed_redirect_uris = super::bounded_list(body, "allowed-redirect-uri")?;
    if allowed_redirect_uris.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter allowed-redirect-uri: the redirect URIs logins may use, e.g. http://127.0.0.1:8250/callback for `coffer auth --access-type oidc` (register the same at the provider)",
        ));
    }
    for uri in &allowed_redirect_uris {
        check_redirect_uri(uri).map_err(ApiError::BadRequest)?;
    }
    let cfg = OidcConfig {
        issuer,
        client_id,
        client_secret_key_id: key_id,
        client_secret_sealed: STANDARD.encode(sealed),
        audience,
        unique_identifier,
        required_scopes,
        required_scopes_prefix,
        allowed_redirect_uris,
    };
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

/// A redirect URI a login may use: https, or http to a loopback address.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(uri).map_err(|_| format!("redirect URI {uri:?} is not a URL"))?;
    if parsed.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not have a #fragment"));
    }
    check_jwks_url(uri).map_err(|_| {
        format!(
            "redirect URI {uri:?} must use https (plain http only to 127.0.0.1, ::1 or localhost, as the CLI's listener does)"
        )
    })
}

/// `oidc_access_rules` of `get-auth-method` (the SDK's OIDCAccessRules);
/// the client secret is never shown.
pub(crate) fn rules_json(am: &AuthMethod) -> Value {
    let c: OidcConfig = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "issuer": c.issuer,
        "client_id": c.client_id,
        "audience": c.audience,
        "unique_identifier": c.unique_identifier,
        "required_scopes": c.required_scopes,
        "required_scopes_prefix": c.required_scopes_prefix,
        "allowed_redirect_URIs": c.allowed_redirect_uris,
        "bound_claims": [],
        "is_internal": false,
    })
}

fn http() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::outbound::client(Duration::from_secs(5), Duration::from_secs(15), "OIDC")
        })
        .as_ref()
        .map_err(|e| ApiError::internal(e.clone()))
}

/// What login needs from the provider's discovery document.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

fn provider_error(msg: impl std::fmt::Display) -> ApiError {
    ApiError::Unauthorized(format!("OIDC authentication failed: {msg}"))
}

/// Read at most [`MAX_RESPONSE_BYTES`] of a response.
async fn body_bytes(resp: reqwest::Response, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut resp = resp;
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| provider_error(format!("reading the {what}: {e}")))?
    {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_RESPONSE_BYTES {
            return Err(provider_error(format!(
                "the {what} is larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
    }
    Ok(out)
}

/// How long a provider's discovery document is reused: `oidc-auth-url`
/// needs no token, so without it every anonymous call would be a request
/// to the provider.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// How long a failed discovery is remembered (the same anonymous calls
/// must not turn into a request each to a provider that is down).
const DISCOVERY_FAILURE_TTL: Duration = Duration::from_secs(30);

/// A discovery outcome: the document, or the failure's message.
type Discovered = Result<Arc<Discovery>, String>;

fn discovery_cache() -> std::sync::MutexGuard<
    'static,
    std::collections::HashMap<String, (std::time::Instant, Discovered)>,
> {
    type Cached = std::collections::HashMap<String, (std::time::Instant, Discovered)>;
    static CACHE: OnceLock<std::sync::Mutex<Cached>> = OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cached_discovery(issuer: &str) -> Option<Discovered> {
    let c = discovery_cache();
    let (at, d) = c.get(issuer)?;
    let ttl = if d.is_ok() {
        DISCOVERY_TTL
    } else {
        DISCOVERY_FAILURE_TTL
    };
    (at.elapsed() < ttl).then(|| d.clone())
}

fn discovery_result(d: Discovered) -> Result<Arc<Discovery>, ApiError> {
    d.map_err(provider_error)
}

/// The provider's discovery document: cached (failures briefly), and at
/// most one fetch per issuer in flight (concurrent callers wait for it).
async fn discover(cfg: &OidcConfig) -> Result<Arc<Discovery>, ApiError> {
    type Flights = std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>;
    static FLIGHTS: OnceLock<std::sync::Mutex<Flights>> = OnceLock::new();
    let flights = || {
        FLIGHTS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(d) = cached_discovery(&cfg.issuer) {
        return discovery_result(d);
    }
    let flight = flights().entry(cfg.issuer.clone()).or_default().clone();
    let outcome = {
        let _one_at_a_time = flight.lock().await;
        match cached_discovery(&cfg.issuer) {
            Some(d) => Ok(d),
            None => {
                let d: Result<Discovered, ApiError> = match fetch_discovery(cfg).await {
                    Ok(d) => Ok(Ok(Arc::new(d))),
                    // The provider's failures are kept for a while; this
                    // server's own (no HTTP client) are not.
                    Err(ApiError::Unauthorized(m)) => Ok(Err(m
                        .trim_start_matches("OIDC authentication failed: ")
                        .to_owned())),
                    Err(other) => Err(other),
                };
                if let Ok(d) = &d {
                    let mut c = discovery_cache();
                    if c.len() >= 256 {
                        c.retain(|_, (at, _)| at.elapsed() < DISCOVERY_TTL);
                        if c.len() >= 256 {
                            c.clear();
                        }
                    }
                    c.insert(cfg.issuer.clone(), (std::time::Instant::now(), d.clone()));
                }
                d
            }
        }
    };
    {
        // The map's and this caller's: no one else waits on this flight.
        let mut f = flights();
        if Arc::strong_count(&flight) <= 2 {
            f.remove(&cfg.issuer);
        }
    }
    discovery_result(outcome?)
}

/// Is `url`'s host 127.0.0.0/8, ::1 or localhost?
fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.host_str().is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
    })
}

/// An endpoint the discovery document names: https (never to a loopback
/// host) for a remote issuer; a loopback issuer (a provider on this
/// machine, tests) may also use plain http to loopback.
fn check_endpoint(issuer: &str, what: &str, url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| provider_error(format!("the provider's {what} {url:?} is not a URL")))?;
    if is_loopback_url(issuer) {
        return check_jwks_url(url).map_err(|e| {
            provider_error(format!(
                "the provider's {what}: {}",
                e.replace("jwks-uri ", "")
            ))
        });
    }
    if parsed.scheme() != "https" || is_loopback_url(url) {
        return Err(provider_error(format!(
            "the provider's {what} {url:?} must use https to a host that is not loopback (the issuer {issuer:?} is not on this machine)"
        )));
    }
    Ok(())
}

async fn fetch_discovery(cfg: &OidcConfig) -> Result<Discovery, ApiError> {
    // Only the document's address drops the slash; the issuer is compared
    // exactly (OpenID Connect Discovery §4.3).
    let url = format!(
        "{}/.well-known/openid-configuration",
        cfg.issuer.trim_end_matches('/')
    );
    let resp = http()?
        .get(&url)
        .send()
        .await
        .map_err(|e| provider_error(format!("cannot read {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(provider_error(format!(
            "{url} answered HTTP {}",
            resp.status().as_u16()
        )));
    }
    let bytes = body_bytes(resp, "discovery document").await?;
    let d: Discovery = serde_json::from_slice(&bytes)
        .map_err(|e| provider_error(format!("{url} is not an OpenID discovery document ({e})")))?;
    if d.issuer != cfg.issuer {
        return Err(provider_error(format!(
            "issuer mismatch: the provider at {url} says its issuer is {:?}, the auth method expects {:?} (they must be identical, trailing slash included)",
            coffer_core::name::truncate_for_message(&d.issuer),
            cfg.issuer
        )));
    }
    for (what, u) in [
        ("authorization_endpoint", &d.authorization_endpoint),
        ("token_endpoint", &d.token_endpoint),
        ("jwks_uri", &d.jwks_uri),
    ] {
        check_endpoint(&cfg.issuer, what, u)?;
    }
    Ok(d)
}

fn random_b64(n: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; n];
    coffer_crypto::fill_random(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn scopes(cfg: &OidcConfig) -> Vec<String> {
    let mut s = vec!["openid".to_owned()];
    for r in &cfg.required_scopes {
        let full = format!("{}{r}", cfg.required_scopes_prefix);
        if !s.contains(&full) {
            s.push(full);
        }
    }
    s
}

/// SHA-256 of the client nonce, base64url: what the state carries.
fn client_nonce_hash(client_nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, client_nonce.as_bytes()).as_ref(),
    )
}

/// The `client-nonce` of a request: required, 16 to 512 bytes.
fn client_nonce(body: &Body) -> Result<String, ApiError> {
    let n = trimmed(body, "client-nonce")?;
    if n.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter client-nonce: a random value (at least 16 characters) the client keeps to itself, sent to oidc-auth-url and again with auth (coffer auth --access-type oidc does this)",
        ));
    }
    if !(CLIENT_NONCE_MIN..=CLIENT_NONCE_MAX).contains(&n.len()) {
        return Err(ApiError::bad(format!(
            "client-nonce must be {CLIENT_NONCE_MIN} to {CLIENT_NONCE_MAX} bytes long"
        )));
    }
    Ok(n)
}

/// Seal a login state: version, salt, then AES-GCM under the salt's key.
fn seal_state(state: &AppState, login: &LoginState) -> Result<String, ApiError> {
    let mut salt = [0u8; STATE_SALT_LEN];
    coffer_crypto::fill_random(&mut salt)?;
    let plain = serde_json::to_vec(login).map_err(ApiError::internal)?;
    let mut raw = vec![STATE_VERSION];
    raw.extend_from_slice(&salt);
    raw.extend(
        state
            .keys
            .oidc_state_keys
            .subkey(&salt)
            .seal(&plain, STATE_AAD)?,
    );
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// `oidc-auth-url {access-id, redirect-uri, client-nonce}` → `{auth_url,
/// state}`.
pub(crate) async fn auth_url(
    state: &AppState,
    am: &AuthMethod,
    body: &Body,
) -> Result<Value, ApiError> {
    let cfg: OidcConfig = settings(am)?;
    let redirect_uri = trimmed(body, "redirect-uri")?;
    let client_nonce = client_nonce(body)?;
    if !cfg.allowed_redirect_uris.contains(&redirect_uri) {
        return Err(ApiError::bad(format!(
            "redirect-uri {:?} is not one auth method {:?} allows (allowed-redirect-uri: {:?}); for the CLI, pass the port of an allowed loopback URI with --redirect-port",
            coffer_core::name::truncate_for_message(&redirect_uri),
            am.name,
            cfg.allowed_redirect_uris
        )));
    }
    let disc = discover(&cfg).await?;
    let login = LoginState {
        a: am.access_id.clone(),
        r: redirect_uri.clone(),
        n: random_b64(24)?,
        v: random_b64(48)?,
        c: client_nonce_hash(&client_nonce),
        e: now_ms() + STATE_TTL_MS,
    };
    let challenge = URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, login.v.as_bytes()).as_ref());
    let sealed_state = seal_state(state, &login)?;
    let mut url = reqwest::Url::parse(&disc.authorization_endpoint)
        .map_err(|_| provider_error("the provider's authorization_endpoint is not a URL"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &scopes(&cfg).join(" "))
        .append_pair("state", &sealed_state)
        .append_pair("nonce", &login.n)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(json!({"auth_url": url.as_str(), "state": sealed_state}))
}

/// Open a state this server sealed for `am`.
fn open_state(state: &AppState, am: &AuthMethod, text: &str) -> Result<LoginState, ApiError> {
    let bad = || {
        provider_error(
            "state is not one this server issued for this auth method (start the login again)",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
    if raw.len() < 1 + STATE_SALT_LEN + 28 || raw[0] != STATE_VERSION {
        return Err(bad());
    }
    let (salt, sealed) = raw[1..].split_at(STATE_SALT_LEN);
    let plain = state
        .keys
        .oidc_state_keys
        .subkey(salt)
        .open(sealed, STATE_AAD)
        .map_err(|_| bad())?;
    let login: LoginState = serde_json::from_slice(&plain).map_err(|_| bad())?;
    if login.a != am.access_id {
        return Err(bad());
    }
    if login.e <= now_ms() {
        return Err(provider_error(format!(
            "the login took longer than {} minutes: start it again",
            STATE_TTL_MS / 60_000
        )));
    }
    Ok(login)
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn client_secret(state: &AppState, cfg: &OidcConfig) -> Result<SecretString, ApiError> {
    let sealed = STANDARD
        .decode(&cfg.client_secret_sealed)
        .map_err(|_| ApiError::internal("oidc method: stored client secret is not base64"))?;
    let plain = state
        .keys
        .data_key(cfg.client_secret_key_id)?
        .open(&sealed, SECRET_AAD)?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| ApiError::internal("oidc method: stored client secret is not UTF-8"))?;
    Ok(SecretString::from(text))
}

/// A login: the state, then the code at the provider, then the ID token.
pub(crate) async fn login(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let code = trimmed(body, "code")?;
    let state_text = trimmed(body, "state")?;
    if code.is_empty() || state_text.is_empty() {
        return Err(ApiError::bad(
            "an oidc login needs code and state: get an authorization URL from oidc-auth-url {access-id, redirect-uri, client-nonce}, log in at the provider, and send the code and state it redirects with and the same client-nonce (coffer auth --access-type oidc does this)",
        ));
    }
    if code.len() > 4096 {
        return Err(ApiError::bad("code is longer than 4096 bytes"));
    }
    let cfg: OidcConfig = settings(am)?;
    let client_nonce = client_nonce(body)?;
    let login = open_state(state, am, &state_text)?;
    // Only the client that asked for the state knows the client nonce:
    // whoever saw the redirect (code and state) cannot redeem the code.
    // Checked before the state is used up, so a stranger's attempt does
    // not spend the real login.
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        client_nonce_hash(&client_nonce).as_bytes(),
        login.c.as_bytes(),
    )
    .is_err()
    {
        return Err(provider_error(
            "client-nonce is not the one this login started with (only the client that called oidc-auth-url can finish the login)",
        ));
    }
    // Used once, on whichever node sees it first: a replayed state (and
    // with it its code) is refused before the provider is asked.
    let mut key = b"oidc-state\0".to_vec();
    key.extend_from_slice(login.n.as_bytes());
    let nonce_hash = state.keys.login_nonce_mac.hash(&key);
    if !state
        .store
        .consume_login_nonce(&nonce_hash, login.e, now_ms())
        .await?
    {
        return Err(provider_error(
            "this login state was already used: every login starts with a new oidc-auth-url",
        ));
    }
    let disc = discover(&cfg).await?;
    // A data key rotation this node has not noticed yet may have sealed
    // the secret (an update of the method on another node).
    state
        .keys
        .load_missing(&*state.store, cfg.client_secret_key_id)
        .await;
    let secret = client_secret(state, &cfg)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", login.r.as_str()),
        ("code_verifier", login.v.as_str()),
        ("client_id", cfg.client_id.as_str()),
    ];
    let basic = disc.token_endpoint_auth_methods_supported.is_empty()
        || disc
            .token_endpoint_auth_methods_supported
            .iter()
            .any(|m| m == "client_secret_basic");
    let mut req = http()?.post(&disc.token_endpoint);
    req = if basic {
        // RFC 6749 §2.3.1: form-urlencoded before base64.
        let enc = |s: &str| url_encode(s);
        req.basic_auth(enc(&cfg.client_id), Some(enc(secret.expose_secret())))
            .form(&form)
    } else {
        let mut with_secret = form.to_vec();
        with_secret.push(("client_secret", secret.expose_secret()));
        req.form(&with_secret)
    };
    let resp = req
        .send()
        .await
        .map_err(|e| provider_error(format!("cannot reach the token endpoint: {e}")))?;
    let status = resp.status();
    let bytes = body_bytes(resp, "token response").await?;
    let tr: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
        provider_error(format!(
            "the token endpoint answered HTTP {} without a JSON token response",
            status.as_u16()
        ))
    })?;
    if let Some(err) = tr.error {
        return Err(provider_error(format!(
            "the provider refused the code: {}{}",
            coffer_core::name::truncate_for_message(&err),
            tr.error_description
                .map(|d| format!(" ({})", coffer_core::name::truncate_for_message(&d)))
                .unwrap_or_default()
        )));
    }
    let Some(id_token) = tr.id_token.filter(|t| !t.is_empty()) else {
        return Err(provider_error(
            "the token response has no id_token (is the openid scope allowed for this client?)",
        ));
    };
    let audience = vec![if cfg.audience.is_empty() {
        cfg.client_id.clone()
    } else {
        cfg.audience.clone()
    }];
    let verified = verify_jwt(
        state,
        am,
        &id_token,
        KeySource::new(&disc.jwks_uri, ""),
        jwt::Expectations {
            unique_identifier: &cfg.unique_identifier,
            issuer: Some(cfg.issuer.as_str()),
            audience: &audience,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| match e {
        ApiError::Unauthorized(m) => {
            ApiError::Unauthorized(m.replace("JWT authentication", "OIDC authentication"))
        }
        other => other,
    })?;
    if verified.claims.get("nonce").and_then(Value::as_str) != Some(login.n.as_str()) {
        return Err(provider_error(
            "nonce mismatch: the ID token was not issued for this login",
        ));
    }
    check_client(&verified.claims, &cfg.client_id)?;
    // RFC 6749 §5.1: a response without `scope` granted the requested ones.
    let requested = scopes(&cfg);
    let granted: Vec<&str> = match tr.scope.as_deref() {
        Some(s) => s.split_ascii_whitespace().collect(),
        None => requested.iter().map(String::as_str).collect(),
    };
    for r in &cfg.required_scopes {
        let full = format!("{}{r}", cfg.required_scopes_prefix);
        if !granted.contains(&full.as_str()) {
            return Err(provider_error(format!(
                "the provider did not grant the required scope {full:?} (granted: {granted:?})"
            )));
        }
    }
    Ok(Verified {
        identity: verified.identity.clone(),
        claims: coffer_core::subclaims::flatten_claims(&verified.claims),
        not_after_ms: Some(super::jwt_not_after_ms(verified.exp)),
    })
}

/// OpenID Connect Core §3.1.3.7: the ID token's `aud` names this client
/// (whatever other audience the method also requires), and an `azp`, when
/// present, is this client.
fn check_client(claims: &serde_json::Map<String, Value>, client_id: &str) -> Result<(), ApiError> {
    let names_client = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !names_client {
        return Err(provider_error(format!(
            "aud check: the ID token's audience does not include the client ID {client_id:?}"
        )));
    }
    if let Some(azp) = claims.get("azp")
        && azp.as_str() != Some(client_id)
    {
        return Err(provider_error(format!(
            "azp check: the ID token was issued to another party ({}), not the client ID {client_id:?}",
            coffer_core::name::truncate_for_message(&azp.to_string())
        )));
    }
    Ok(())
}

/// `explain-access` for an OIDC method: an ID token of the provider
/// (`jwt`), checked for signature, issuer, audience and expiry (not the
/// nonce: there is no login in progress), gives the claims.
pub(crate) async fn verify_for_explain(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    let token = trimmed(body, "jwt")?;
    if token.is_empty() {
        return Err(ApiError::bad(
            "explain-access for an oidc method takes an ID token of the provider in jwt",
        ));
    }
    let cfg: OidcConfig = settings(am)?;
    let disc = discover(&cfg).await?;
    let audience = vec![if cfg.audience.is_empty() {
        cfg.client_id.clone()
    } else {
        cfg.audience.clone()
    }];
    let v = verify_jwt(
        state,
        am,
        &token,
        KeySource::new(&disc.jwks_uri, ""),
        jwt::Expectations {
            unique_identifier: &cfg.unique_identifier,
            issuer: Some(cfg.issuer.as_str()),
            audience: &audience,
            ..Default::default()
        },
    )
    .await?;
    check_client(&v.claims, &cfg.client_id)?;
    Ok(Verified {
        identity: v.identity.clone(),
        claims: coffer_core::subclaims::flatten_claims(&v.claims),
        not_after_ms: Some(super::jwt_not_after_ms(v.exp)),
    })
}

/// application/x-www-form-urlencoded form of one value.
fn url_encode(s: &str) -> String {
    reqwest::Url::parse_with_params("x:", [("v", s)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("v=").to_owned()))
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        assert!(check_redirect_uri("http://127.0.0.1:8250/callback").is_ok());
        assert!(check_redirect_uri("http://localhost:8250/callback").is_ok());
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("http://127.0.0.1:1/cb#x").is_err());
        assert!(check_redirect_uri("not a url").is_err());
    }

    /// A remote issuer's endpoints must be https and not loopback (no
    /// client secret sent to this host's own services); a loopback issuer
    /// may use http to loopback.
    #[test]
    fn endpoints_follow_the_issuer() {
        let remote = "https://tenant.auth0.com/";
        assert!(
            check_endpoint(
                remote,
                "token_endpoint",
                "https://tenant.auth0.com/oauth/token"
            )
            .is_ok()
        );
        for bad in [
            "http://127.0.0.1:8200/v1/sys",
            "http://localhost/token",
            "http://[::1]:9000/token",
            "https://127.0.0.1/token",
            "https://localhost:8443/token",
            "http://idp.example/token",
            "ftp://idp.example/token",
            "not a url",
        ] {
            assert!(
                check_endpoint(remote, "token_endpoint", bad).is_err(),
                "{bad}"
            );
        }
        let local = "http://127.0.0.1:9000/tenant/";
        assert!(check_endpoint(local, "jwks_uri", "http://127.0.0.1:9000/jwks").is_ok());
        assert!(check_endpoint(local, "jwks_uri", "https://idp.example/jwks").is_ok());
        assert!(check_endpoint(local, "jwks_uri", "http://idp.example/jwks").is_err());
    }

    #[test]
    fn client_nonce_hashes_differ() {
        assert_ne!(
            client_nonce_hash("a".repeat(16).as_str()),
            client_nonce_hash("b".repeat(16).as_str())
        );
        assert_eq!(client_nonce_hash("x").len(), 43);
    }

    #[test]
    fn the_id_token_must_name_the_client() {
        let c = |v: Value| v.as_object().unwrap().clone();
        assert!(check_client(&c(json!({"aud": "coffer"})), "coffer").is_ok());
        assert!(
            check_client(
                &c(json!({"aud": ["x", "coffer"], "azp": "coffer"})),
                "coffer"
            )
            .is_ok()
        );
        assert!(check_client(&c(json!({"aud": ["x"]})), "coffer").is_err());
        assert!(check_client(&c(json!({})), "coffer").is_err());
        assert!(check_client(&c(json!({"aud": "coffer", "azp": "other"})), "coffer").is_err());
        assert!(check_client(&c(json!({"aud": "coffer", "azp": 1})), "coffer").is_err());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(url_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(url_encode("plain"), "plain");
    }

    #[test]
    fn scopes_are_prefixed() {
        let cfg = OidcConfig {
            required_scopes: vec!["read".into(), "write".into()],
            required_scopes_prefix: "api://x/".into(),
            ..Default::default()
        };
        assert_eq!(scopes(&cfg), ["openid", "api://x/read", "api://x/write"]);
    }
}
