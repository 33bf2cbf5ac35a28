//! The Azure Key Vault provider against a protocol-exact local stub (no
//! Azure emulator exists): the Microsoft identity platform token endpoint
//! (client-assertion flow, documented success and error bodies) and the Key
//! Vault `GET secret` endpoint (bearer token, `api-version`, documented
//! `{"error":{"code","message","innererror"}}` bodies).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use coffer_ci::providers::azure::{self, AccessToken, AzureSecret, AzureServer, TokenRequest};
use coffer_ci::providers::{DEFAULT_TIMEOUT, ProviderError, http_client};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "5f3b8a61-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
const AUDIENCE: &str = "api://AzureADTokenExchange";
const V1: &str = "4387e9f3d6e14c459867679a90fd0f79";
const V2: &str = "b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5";

// ------------------------------------------------------------------ stub

#[derive(Default)]
struct Counters {
    tokens: AtomicUsize,
    token_requests: AtomicUsize,
    secret_requests: AtomicUsize,
    unexpected: AtomicUsize,
}

#[derive(Clone)]
struct Stub {
    counters: Arc<Counters>,
    base: Arc<std::sync::OnceLock<String>>,
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The Microsoft identity platform error body.
fn entra_error(error: &str, number: u32, text: &str) -> Response {
    json_reply(
        StatusCode::BAD_REQUEST,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{number}: {text}\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-11-22 07:54:08Z"
            ),
            "error_codes": [number],
            "timestamp": "2026-11-22 07:54:08Z",
            "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
            "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
            "error_uri": format!("https://login.microsoftonline.com/error?code={number}")
        }),
    )
}

/// The `aud` claim of a JWT, if it is one.
fn jwt_audience(jwt: &str) -> Option<String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    claims["aud"].as_str().map(str::to_string)
}

async fn token_endpoint(
    State(stub): State<Stub>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    stub.counters.token_requests.fetch_add(1, Ordering::SeqCst);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if tenant != TENANT {
        return entra_error(
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    for required in [
        "grant_type",
        "client_id",
        "scope",
        "client_assertion_type",
        "client_assertion",
    ] {
        if field(required).is_empty() {
            return entra_error(
                "invalid_request",
                900144,
                &format!("The request body must contain the following parameter: '{required}'."),
            );
        }
    }
    if field("grant_type") != "client_credentials" {
        return entra_error(
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if field("scope") != "https://vault.azure.net/.default" {
        return entra_error(
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return entra_error(
            "invalid_request",
            700024,
            "Client assertion type is invalid.",
        );
    }
    if field("client_id") != CLIENT_ID {
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "unauthorized_client",
                "error_description": format!("AADSTS700016: Application with identifier '{}' was not found in the directory 'Contoso'.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-11-22 07:54:08Z", field("client_id")),
                "error_codes": [700016],
                "timestamp": "2026-11-22 07:54:08Z",
                "trace_id": "1",
                "correlation_id": "2"
            }),
        );
    }
    let Some(audience) = jwt_audience(field("client_assertion")) else {
        return entra_error(
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.",
        );
    };
    if audience != AUDIENCE {
        return entra_error(
            "invalid_client",
            700212,
            &format!(
                "No matching federated identity record found for presented assertion audience '{audience}'."
            ),
        );
    }
    let n = stub.counters.tokens.fetch_add(1, Ordering::SeqCst);
    json_reply(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": format!("kv-access-token-{n}")
        }),
    )
}

fn key_vault_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    json_reply(status, json!({ "error": error }))
}

async fn get_secret_endpoint(
    State(stub): State<Stub>,
    Path(path): Path<Vec<String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    stub.counters.secret_requests.fetch_add(1, Ordering::SeqCst);
    let (name, version) = match path.as_slice() {
        [name] => (name.as_str(), None),
        [name, version] => (name.as_str(), Some(version.as_str())),
        _ => {
            stub.counters.unexpected.fetch_add(1, Ordering::SeqCst);
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bearer.starts_with("kv-access-token-") {
        let mut response = key_vault_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
            None,
        );
        response.headers_mut().insert(
            "www-authenticate",
            format!("Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"https://vault.azure.net\"")
                .parse()
                .unwrap(),
        );
        return response;
    }
    if query.get("api-version").map(String::as_str) != Some("7.5") {
        return key_vault_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The specified version is not recognized. Consider using the latest supported version (7.5).",
            None,
        );
    }
    let not_found = |id: &str| {
        key_vault_error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!(
                "A secret with (name/id) {id} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
            None,
        )
    };
    let base = stub.base.get().cloned().unwrap_or_default();
    match name {
        "forbidden-secret" => key_vault_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={CLIENT_ID};oid=0c2a1b3d-0000-0000-0000-000000000000;iss=https://sts.windows.net/{TENANT}/\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/ci/providers/microsoft.keyvault/vaults/coffer-test/secrets/forbidden-secret'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: coffer-test;location=westeurope\r\n"
            ),
            Some("ForbiddenByRbac"),
        ),
        "db-password" => {
            let version = version.unwrap_or(V2);
            let value = match version {
                V1 => "old-password",
                V2 => "new-password",
                other => return not_found(&format!("{name}/{other}")),
            };
            json_reply(
                StatusCode::OK,
                json!({
                    "value": value,
                    "id": format!("{base}/secrets/{name}/{version}"),
                    "attributes": {
                        "enabled": true,
                        "created": 1493938410,
                        "updated": 1493938410,
                        "recoveryLevel": "Recoverable+Purgeable",
                        "recoverableDays": 90
                    },
                    "tags": {}
                }),
            )
        }
        other => not_found(other),
    }
}

async fn start_stub() -> (Stub, String) {
    let stub = Stub {
        counters: Arc::new(Counters::default()),
        base: Arc::new(std::sync::OnceLock::new()),
    };
    let counters = stub.counters.clone();
    let router = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route("/secrets/{name}", get(get_secret_endpoint))
        .route("/secrets/{name}/{version}", get(get_secret_endpoint))
        .fallback(move || {
            let counters = counters.clone();
            async move {
                counters.unexpected.fetch_add(1, Ordering::SeqCst);
                StatusCode::IM_A_TEAPOT
            }
        })
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    stub.base.set(base.clone()).unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (stub, base)
}

// ------------------------------------------------------------------ helpers

fn jwt(aud: &str) -> SecretString {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    SecretString::from(format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256", "typ": "JWT", "kid": "k"})),
        b64(
            json!({"iss": "https://gitlab.example.com", "aud": aud, "sub": "project_path:g/p:ref_type:branch:ref:main"})
        ),
    ))
}

fn server(base: &str) -> AzureServer {
    AzureServer {
        vault_url: format!("{base}/"),
        client_id: CLIENT_ID.into(),
        tenant_id: TENANT.into(),
        authority_host: base.into(),
    }
}

fn secret(name: &str, version: &str) -> AzureSecret {
    AzureSecret {
        name: name.into(),
        version: version.into(),
    }
}

fn client() -> reqwest::Client {
    http_client(DEFAULT_TIMEOUT).unwrap()
}

async fn resolve(
    base: &str,
    s: &AzureSecret,
    token: &SecretString,
) -> Result<String, ProviderError> {
    azure::resolve(&client(), &server(base), s, token)
        .await
        .map(|v| v.expose_secret().to_string())
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn one_token_then_latest_and_pinned_versions() {
    let (stub, base) = start_stub().await;
    let client = client();
    let server = server(&base);
    let (url, request) = azure::check(&server, &secret("db-password", ""), &jwt(AUDIENCE)).unwrap();
    assert_eq!(
        url.as_str(),
        format!("{base}/secrets/db-password?api-version=7.5")
    );
    let before = SystemTime::now();
    let token = azure::get_token(&client, &request).await.unwrap();
    let expires = token.expires_at().unwrap();
    assert!(expires >= before + Duration::from_secs(3590));
    assert!(!format!("{token:?}").contains("kv-access-token"));

    // Every secret of the job shares the token.
    let again = TokenRequest::new(&server, jwt(AUDIENCE));
    assert_eq!(again.cache_key(), request.cache_key());
    let get = |name: &str, version: &str| {
        let s = secret(name, version);
        let (client, token, vault) = (client.clone(), token.clone(), server.vault_url.clone());
        async move {
            azure::get_secret(&client, &vault, &s, &token)
                .await
                .map(|v| v.expose_secret().to_string())
        }
    };
    assert_eq!(get("db-password", "").await.unwrap(), "new-password");
    assert_eq!(get("db-password", V2).await.unwrap(), "new-password");
    assert_eq!(get("db-password", V1).await.unwrap(), "old-password");
    assert_eq!(stub.counters.tokens.load(Ordering::SeqCst), 1);
    assert_eq!(stub.counters.secret_requests.load(Ordering::SeqCst), 3);
    assert_eq!(stub.counters.unexpected.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn resolve_end_to_end() {
    let (_stub, base) = start_stub().await;
    assert_eq!(
        resolve(&base, &secret("db-password", V1), &jwt(AUDIENCE))
            .await
            .unwrap(),
        "old-password"
    );
}

#[tokio::test]
async fn malformed_assertion_is_aadsts50027() {
    let (stub, base) = start_stub().await;
    let bad = SecretString::from("this-is-not-a-jwt");
    let e = resolve(&base, &secret("db-password", ""), &bad)
        .await
        .unwrap_err();
    let ProviderError::Api {
        status,
        code,
        message,
    } = &e
    else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!((*status, code.as_str()), (400, "AADSTS50027"));
    assert_eq!(
        message,
        "Azure AD refused the client assertion (AADSTS50027: JWT token is invalid or malformed): \
         check that the secret's token is the job's ID token and that its audience matches the federated credential"
    );
    assert!(!message.contains("this-is-not-a-jwt"));
    assert_eq!(stub.counters.secret_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn audience_mismatch_is_explained() {
    let (_stub, base) = start_stub().await;
    let e = resolve(
        &base,
        &secret("db-password", ""),
        &jwt("https://gitlab.com"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { status: 400, code, .. } if code == "AADSTS700212"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.starts_with("Azure AD refused the client assertion (AADSTS700212: No matching federated identity record found for presented assertion audience 'https://gitlab.com')"), "{text}");
    assert!(text.contains("set id_tokens aud"), "{text}");
}

#[tokio::test]
async fn wrong_client_id_or_tenant() {
    let (_stub, base) = start_stub().await;
    let client = client();
    let mut wrong_client = server(&base);
    wrong_client.client_id = "00000000-0000-0000-0000-000000000000".into();
    let e = azure::resolve(
        &client,
        &wrong_client,
        &secret("db-password", ""),
        &jwt(AUDIENCE),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { code, .. } if code == "AADSTS700016"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("check AZURE_CLIENT_ID and AZURE_TENANT_ID"),
        "{e}"
    );

    let mut wrong_tenant = server(&base);
    wrong_tenant.tenant_id = "contoso.onmicrosoft.com".into();
    let e = azure::resolve(
        &client,
        &wrong_tenant,
        &secret("db-password", ""),
        &jwt(AUDIENCE),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { code, .. } if code == "AADSTS90002"),
        "{e:?}"
    );
    assert!(e.to_string().contains("check AZURE_TENANT_ID"), "{e}");
}

#[tokio::test]
async fn forbidden_by_rbac_names_the_role_to_assign() {
    let (_stub, base) = start_stub().await;
    let e = resolve(&base, &secret("forbidden-secret", ""), &jwt(AUDIENCE))
        .await
        .unwrap_err();
    let ProviderError::Api {
        status,
        code,
        message,
    } = &e
    else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!((*status, code.as_str()), (403, "ForbiddenByRbac"));
    assert_eq!(
        message,
        "Azure Key Vault GET secret 'forbidden-secret' failed (HTTP 403, Forbidden, ForbiddenByRbac): \
         Caller is not authorized to perform action on resource. \
         Assign the \"Key Vault Secrets User\" role on the vault (or the secret) to the application AZURE_CLIENT_ID"
    );
    assert!(e.is_config_error());
}

#[tokio::test]
async fn missing_secret_or_version_is_secret_not_found() {
    let (_stub, base) = start_stub().await;
    for s in [
        secret("no-such-secret", ""),
        secret("db-password", "ffffffffffffffffffffffffffffffff"),
    ] {
        let e = resolve(&base, &s, &jwt(AUDIENCE)).await.unwrap_err();
        assert!(matches!(e, ProviderError::NotFound), "{e:?}");
        assert_eq!(e.to_string(), "secret not found");
    }
}

#[tokio::test]
async fn a_refused_bearer_token_is_explained() {
    let (_stub, base) = start_stub().await;
    let forged = AccessToken::new(SecretString::from("forged"), None);
    let e = azure::get_secret(
        &client(),
        &format!("{base}/"),
        &secret("db-password", ""),
        &forged,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { status: 401, code, .. } if code == "Unauthorized"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("AKV10000: Request is missing a Bearer or PoP token"),
        "{text}"
    );
    assert!(text.contains("access token was refused"), "{text}");
    assert!(!text.contains("forged"));
}

#[tokio::test]
async fn hostile_names_never_reach_the_network() {
    let (stub, base) = start_stub().await;
    let long = "a".repeat(128);
    let cases = [
        secret("../../keys/master", ""),
        secret("db-password/../../keys/x", ""),
        secret("db-password?api-version=1.0", ""),
        secret("db-password#x", ""),
        secret("db%2Dpassword", ""),
        secret("", ""),
        secret(&long, ""),
        secret("db-password", "../v"),
        secret("db-password", "v?x=1"),
    ];
    for s in &cases {
        let e = resolve(&base, s, &jwt(AUDIENCE)).await.unwrap_err();
        assert!(matches!(e, ProviderError::Config(_)), "{s:?}: {e:?}");
    }
    // A 127-character name is fine (and simply not found).
    let e = resolve(&base, &secret(&"a".repeat(127), ""), &jwt(AUDIENCE))
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound), "{e:?}");
    assert_eq!(stub.counters.token_requests.load(Ordering::SeqCst), 1);
    assert_eq!(stub.counters.secret_requests.load(Ordering::SeqCst), 1);
    assert_eq!(stub.counters.unexpected.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn missing_settings_fail_before_any_request() {
    let (stub, base) = start_stub().await;
    let client = client();
    let e = azure::resolve(
        &client,
        &server(&base),
        &secret("db-password", ""),
        &SecretString::from(""),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("no ID token"), "{e}");

    let mut no_tenant = server(&base);
    no_tenant.tenant_id.clear();
    let e = azure::resolve(
        &client,
        &no_tenant,
        &secret("db-password", ""),
        &jwt(AUDIENCE),
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "AZURE_TENANT_ID is not set");

    let mut plain_http = server(&base);
    plain_http.vault_url = "http://coffer-test.vault.azure.net/".into();
    let e = azure::resolve(
        &client,
        &plain_http,
        &secret("db-password", ""),
        &jwt(AUDIENCE),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("https is required"), "{e}");
    assert_eq!(stub.counters.token_requests.load(Ordering::SeqCst), 0);
    assert_eq!(stub.counters.secret_requests.load(Ordering::SeqCst), 0);
}
