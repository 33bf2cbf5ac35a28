//! Azure app-secret dynamic secrets against a Microsoft Graph / Entra ID
//! stub on 127.0.0.1 that follows the documented protocol: the OAuth 2.0
//! client-credentials token endpoint (`/{tenant}/oauth2/v2.0/token`,
//! form-encoded, `scope=<graph>/.default`), `GET /v1.0/applications/{id}`,
//! `POST …/addPassword` (`{"passwordCredential":{displayName,endDateTime}}`
//! → the credential with `keyId` and `secretText`) and
//! `POST …/removePassword` (`{"keyId"}` → 204). No real Azure can run here.
#![allow(clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::Harness;
use serde_json::{Value, json};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const CLIENT_SECRET: &str = "stub~client~secret";
const APP: &str = "99999999-8888-7777-6666-555555555555";
const TOKEN: &str = "stub-graph-token";

/// `application/x-www-form-urlencoded` (also a query string) decoded.
fn form_decode(s: &str) -> HashMap<String, String> {
    fn dec(x: &str) -> String {
        let b = x.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

#[derive(Default)]
struct Graph {
    /// keyId -> credential
    creds: HashMap<String, Value>,
    base: String,
    next: u32,
}

type Shared = Arc<Mutex<Graph>>;

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "innerError": {}}})),
    )
        .into_response()
}

async fn token(
    State(g): State<Shared>,
    Path(tenant): Path<String>,
    h: HeaderMap,
    body: String,
) -> Response {
    assert_eq!(
        h.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    let form = form_decode(&body);
    let base = g.lock().unwrap().base.clone();
    let ok = tenant == TENANT
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && form.get("scope") == Some(&format!("{base}/.default"));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})),
        )
            .into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": TOKEN}))
        .into_response()
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn application(
    State(g): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let q = form_decode(q.as_deref().unwrap_or(""));
    if !authorized(&h) {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        );
    }
    if id != APP {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    }
    assert_eq!(
        q.get("$select").map(String::as_str),
        Some("id,passwordCredentials")
    );
    let g = g.lock().unwrap();
    // Graph never returns secretText after creation.
    let creds: Vec<Value> = g
        .creds
        .values()
        .map(|c| {
            let mut c = c.clone();
            c["secretText"] = Value::Null;
            c
        })
        .collect();
    Json(json!({"id": APP, "passwordCredentials": creds})).into_response()
}

async fn add_password(
    State(g): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&h) || id != APP {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "no such application",
        );
    }
    let pc = &body["passwordCredential"];
    let (Some(name), Some(end)) = (pc["displayName"].as_str(), pc["endDateTime"].as_str()) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "passwordCredential is required",
        );
    };
    let mut g = g.lock().unwrap();
    g.next += 1;
    let key_id = format!("00000000-0000-0000-0000-{:012}", g.next);
    let cred = json!({
        "customKeyIdentifier": null, "displayName": name, "endDateTime": end, "hint": "Xy1",
        "keyId": key_id, "secretText": format!("Xy1~stub~secret~{}", g.next),
        "startDateTime": "2026-12-07T00:00:00Z",
    });
    g.creds.insert(key_id, cred.clone());
    Json(cred).into_response()
}

async fn remove_password(
    State(g): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&h) || id != APP {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "no such application",
        );
    }
    let key = body["keyId"].as_str().unwrap_or_default().to_owned();
    if g.lock().unwrap().creds.remove(&key).is_none() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("No password credential found with keyId {key}."),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn stub() -> (String, Shared) {
    let g: Shared = Arc::default();
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/applications/{id}", get(application))
        .route("/v1.0/applications/{id}/addPassword", post(add_password))
        .route(
            "/v1.0/applications/{id}/removePassword",
            post(remove_password),
        )
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    g.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, g)
}

fn create_body(h: &Harness, name: &str, secret: &str) -> Value {
    json!({
        "token": h.admin, "name": name, "azure-tenant-id": TENANT, "azure-client-id": CLIENT_ID,
        "azure-client-secret": secret, "app-obj-id": APP, "user-ttl": "2s",
    })
}

#[tokio::test]
async fn azure_client_secrets_are_issued_in_seed_004s_shape_and_removed_at_expiry() {
    let (base, graph) = stub().await;
    let h = Harness::with_args(|a| {
        a.azure_login_url = Some(base.clone());
        a.azure_graph_url = Some(base.clone());
    })
    .await;
    // Wrong credentials and a wrong application are refused at creation.
    let msg = h
        .fails(
            "dynamic-secret-create-azure",
            create_body(&h, "/dynamic/postgres/credentials", "wrong"),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        msg.contains("AADSTS7000215") && !msg.contains("wrong"),
        "{msg}"
    );
    let mut b = create_body(&h, "/dynamic/postgres/credentials", CLIENT_SECRET);
    b["app-obj-id"] = json!("12345678-0000-0000-0000-000000000000");
    h.fails_with(
        "dynamic-secret-create-azure",
        b,
        StatusCode::BAD_REQUEST,
        "app-obj-id",
    )
    .await;
    let mut b = create_body(&h, "/dynamic/postgres/credentials", CLIENT_SECRET);
    b["user-portal-access"] = json!(true);
    h.fails_with(
        "dynamic-secret-create-azure",
        b,
        StatusCode::BAD_REQUEST,
        "user-portal-access",
    )
    .await;
    h.ok(
        "dynamic-secret-create-azure",
        create_body(&h, "/dynamic/postgres/credentials", CLIENT_SECRET),
    )
    .await;
    let d = h
        .admin_ok(
            "dynamic-secret-get",
            json!({"name": "/dynamic/postgres/credentials"}),
        )
        .await;
    assert_eq!(d["producer_type"], json!("azure"));
    assert!(!d.to_string().contains(CLIENT_SECRET), "{d}");
    // Seed 004: .secret.displayName, .secret.secretText, .ttl_in_minutes.
    let v = h
        .admin_ok(
            "get-dynamic-secret-value",
            json!({"name": "/dynamic/postgres/credentials"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["secret"]["displayName"], json!(id));
    assert!(
        v["secret"]["secretText"]
            .as_str()
            .unwrap()
            .starts_with("Xy1~")
    );
    assert!(v["secret"]["keyId"].is_string());
    assert_eq!(v["ttl_in_minutes"], json!("1"));
    let end = v["secret"]["endDateTime"].as_str().unwrap();
    assert!(end.ends_with('Z'), "{end}");
    assert_eq!(graph.lock().unwrap().creds.len(), 1);
    // At expiry the secret is removed from the application.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(coffer_server::leases::reap_once(&h.state).await.unwrap(), 1);
    assert!(
        graph.lock().unwrap().creds.is_empty(),
        "the client secret survived its lease"
    );
    // Revoke on request, and deletion of the producer.
    let v = h
        .admin_ok(
            "get-dynamic-secret-value",
            json!({"name": "/dynamic/postgres/credentials"}),
        )
        .await;
    h.admin_ok(
        "dynamic-secret-tmp-creds-delete",
        json!({"name": "/dynamic/postgres/credentials", "tmp-creds-id": v["id"]}),
    )
    .await;
    assert!(graph.lock().unwrap().creds.is_empty());
    h.admin_ok(
        "get-dynamic-secret-value",
        json!({"name": "/dynamic/postgres/credentials"}),
    )
    .await;
    h.admin_ok(
        "delete-item",
        json!({"name": "/dynamic/postgres/credentials"}),
    )
    .await;
    assert!(graph.lock().unwrap().creds.is_empty());
    let everything = serde_json::to_string(&h.audit().await).unwrap();
    assert!(!everything.contains(CLIENT_SECRET) && !everything.contains("Xy1~stub"));
}

#[tokio::test]
async fn azure_endpoints_must_be_https_or_loopback() {
    let args = coffer_server::ServerArgs {
        dev: true,
        data_dir: Some(tempfile::tempdir().unwrap().path().join("d")),
        azure_graph_url: Some("http://graph.example.com".into()),
        ..Default::default()
    };
    let err = coffer_server::Config::resolve(&args)
        .unwrap_err()
        .to_string();
    assert!(err.contains("azure-graph-url"), "{err}");
}
