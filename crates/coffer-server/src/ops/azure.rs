//! Azure app-secret dynamic secrets (`dynamic-secret-create-azure`): each
//! request adds a client secret to an Entra ID application through
//! Microsoft Graph (`addPassword`), each lease removes it at expiry
//! (`removePassword`). The secret's own `endDateTime` is the lease's
//! expiry, so Entra ID ends it even if Coffer never could.
//!
//! Protocol: OAuth 2.0 client credentials at
//! `{login}/{tenant}/oauth2/v2.0/token` (scope `{graph}/.default`), then
//! `POST {graph}/v1.0/applications/{app-obj-id}/addPassword` with
//! `{"passwordCredential":{"displayName","endDateTime"}}` (answer: the
//! `passwordCredential` with `keyId` and `secretText`),
//! `GET {graph}/v1.0/applications/{id}?$select=id,passwordCredentials`, and
//! `POST …/removePassword` with `{"keyId"}` (204). The lease ID is the
//! secret's display name, written before the secret exists, so a secret
//! whose answer was lost is still found and removed.

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::state::AppState;

const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest Graph answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// The application whose client secrets a dynamic secret issues (no
/// secret: the client secret Coffer uses is the item's sealed value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AzureApp {
    pub tenant_id: String,
    pub client_id: String,
    pub app_obj_id: String,
}

fn check_id(key: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{key} must be an Entra ID identifier (a GUID, or the tenant's domain name)"
        )))
    }
}

impl AzureApp {
    pub(crate) fn new(
        tenant_id: String,
        client_id: String,
        app_obj_id: String,
    ) -> Result<Self, ApiError> {
        check_id("azure-tenant-id", &tenant_id)?;
        check_id("azure-client-id", &client_id)?;
        check_id("app-obj-id", &app_obj_id)?;
        Ok(AzureApp {
            tenant_id,
            client_id,
            app_obj_id,
        })
    }
}

fn client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| crate::outbound::client(Duration::from_secs(5), TIMEOUT, "Graph"))
        .as_ref()
        .map_err(ApiError::internal)
}

/// Read an answer: status and JSON (size-capped). Graph's own error
/// message is passed on (it names what is wrong, never a secret).
async fn answer(
    what: &str,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<(u16, Value), ApiError> {
    let mut resp = resp.map_err(|e| {
        ApiError::Upstream(format!(
            "{what}: {}",
            if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            }
        ))
    })?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| ApiError::Upstream(format!("{what}: the answer was cut off")))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(ApiError::Upstream(format!(
                "{what}: the answer is too large"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    Ok((status, v))
}

fn graph_error(what: &str, status: u16, v: &Value) -> ApiError {
    let detail = v["error"]["message"]
        .as_str()
        .or_else(|| v["error_description"].as_str())
        .unwrap_or("");
    let detail: String = detail.chars().take(300).collect();
    let hint = match status {
        400 | 401 => " (check azure-tenant-id, azure-client-id and azure-client-secret)",
        403 => {
            " (the client needs the Application.ReadWrite.OwnedBy or Application.ReadWrite.All permission)"
        }
        404 => " (check app-obj-id: the application's object ID, not its client ID)",
        _ => "",
    };
    ApiError::Upstream(format!("{what}: HTTP {status}{hint}: {detail}"))
}

/// A Graph access token from the client credentials.
async fn token(
    state: &AppState,
    app: &AzureApp,
    secret: &str,
) -> Result<Zeroizing<String>, ApiError> {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        state.config.azure_login_url, app.tenant_id
    );
    let scope = format!("{}/.default", state.config.azure_graph_url);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", secret),
        ("scope", scope.as_str()),
    ];
    let (status, v) = answer(
        "Entra ID token request",
        client()?.post(&url).form(&form).send().await,
    )
    .await?;
    if status != 200 {
        return Err(graph_error(
            "Entra ID refused the client credentials",
            status,
            &v,
        ));
    }
    v["access_token"]
        .as_str()
        .map(|t| Zeroizing::new(t.to_owned()))
        .ok_or_else(|| ApiError::Upstream("Entra ID answered without an access_token".into()))
}

fn app_url(state: &AppState, app: &AzureApp) -> String {
    format!(
        "{}/v1.0/applications/{}",
        state.config.azure_graph_url, app.app_obj_id
    )
}

/// The application's password credentials (keyId, displayName, …).
async fn credentials(
    state: &AppState,
    app: &AzureApp,
    token: &str,
) -> Result<Vec<Value>, ApiError> {
    let url = format!("{}?$select=id,passwordCredentials", app_url(state, app));
    let (status, v) = answer(
        "reading the Entra ID application",
        client()?.get(&url).bearer_auth(token).send().await,
    )
    .await?;
    if status != 200 {
        return Err(graph_error(
            "reading the Entra ID application failed",
            status,
            &v,
        ));
    }
    Ok(v["passwordCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Check the settings: a token, and the application readable.
pub(crate) async fn check(state: &AppState, app: &AzureApp, secret: &str) -> Result<(), ApiError> {
    let t = token(state, app, secret).await?;
    credentials(state, app, &t).await.map(|_| ())
}

/// Add a client secret named `display_name`, valid until `end`
/// (RFC 3339). Returns Graph's `passwordCredential`.
pub(crate) async fn add_secret(
    state: &AppState,
    app: &AzureApp,
    secret: &str,
    display_name: &str,
    end: &str,
) -> Result<Value, ApiError> {
    let t = token(state, app, secret).await?;
    let url = format!("{}/addPassword", app_url(state, app));
    let body = json!({"passwordCredential": {"displayName": display_name, "endDateTime": end}});
    let (status, v) = answer(
        "adding a client secret",
        client()?
            .post(&url)
            .bearer_auth(t.as_str())
            .json(&body)
            .send()
            .await,
    )
    .await?;
    if status != 200 && status != 201 {
        return Err(graph_error("adding a client secret failed", status, &v));
    }
    if !v["secretText"].is_string() || !v["keyId"].is_string() {
        return Err(ApiError::Upstream(
            "Graph's addPassword answer has no keyId/secretText".into(),
        ));
    }
    Ok(v)
}

/// Remove every client secret named `display_name` (none left is success).
pub(crate) async fn remove_secret(
    state: &AppState,
    app: &AzureApp,
    secret: &str,
    display_name: &str,
) -> Result<(), ApiError> {
    let t = token(state, app, secret).await?;
    let url = format!("{}/removePassword", app_url(state, app));
    for c in credentials(state, app, &t).await? {
        if c["displayName"].as_str() != Some(display_name) {
            continue;
        }
        let Some(key_id) = c["keyId"].as_str() else {
            continue;
        };
        let (status, v) = answer(
            "removing a client secret",
            client()?
                .post(&url)
                .bearer_auth(t.as_str())
                .json(&json!({"keyId": key_id}))
                .send()
                .await,
        )
        .await?;
        // 404: gone already.
        if !matches!(status, 200 | 204 | 404) {
            return Err(graph_error("removing a client secret failed", status, &v));
        }
    }
    Ok(())
}
