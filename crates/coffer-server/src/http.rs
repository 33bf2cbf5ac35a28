//! The HTTP layer: one pipeline for every operation.
//!
//! decode → authenticate → authorize → act → audit → encode.
//! Paths `/<op>`, `/v2/<op>` and `/api/v2/<op>` are the same operation;
//! repeated slashes are collapsed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coffer_core::audit::{AuditRecord, Outcome};
use serde_json::Value;

use crate::error::{ApiError, error_response};
use crate::ops;
use crate::state::{AppState, Caller, now_ms};
use crate::wire::Body;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .fallback(handle)
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Per-request context handed to operation handlers.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub request_id: String,
    pub peer: SocketAddr,
    pub op: String,
    /// What the request was about, for the audit record.
    pub object: String,
    pub caller: Option<Caller>,
    /// Identity fields for the audit record (set by login or authentication).
    pub access_id: String,
    pub auth_method: String,
    pub identity: String,
    /// A token minted by this request (login): written with its audit
    /// record, in the same transaction, before the response leaves.
    pub minted: Option<coffer_core::model::TokenRecord>,
}

impl Ctx {
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("not authenticated".into()))
    }

    pub fn set_object(&mut self, object: impl Into<String>) {
        self.object = object.into();
    }
}

/// Extract the operation name from a request path.
pub fn operation_from_path(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", "v2", rest @ ..] => rest,
        ["v2", rest @ ..] => rest,
        rest => rest,
    };
    match rest {
        [op] if op.len() <= 64
            && op
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(op.to_ascii_lowercase().replace('_', "-"))
        }
        _ => None,
    }
}

fn client_type(headers: &HeaderMap) -> String {
    let v = headers
        .get("akeylessclienttype")
        .or_else(|| headers.get(axum::http::header::USER_AGENT))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    v.chars().filter(|c| !c.is_control()).take(128).collect()
}

async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let request_id = state.next_request_id();
    let client_type = client_type(req.headers());
    let path = req.uri().path().to_owned();
    let op = operation_from_path(&path);
    let method = req.method().clone();

    let mut ctx = Ctx {
        state: state.clone(),
        request_id,
        peer,
        op: op.clone().unwrap_or_else(|| "unknown".into()),
        object: String::new(),
        caller: None,
        access_id: String::new(),
        auth_method: String::new(),
        identity: String::new(),
        minted: None,
    };

    let result: Result<Value, ApiError> = async {
        let Some(op) = op else {
            return Err(ApiError::NotFound(format!(
                "no operation at {:?}: POST to /<operation>, /v2/<operation> or /api/v2/<operation>",
                coffer_core::name::truncate_for_message(&path)
            )));
        };
        if !ops::is_known(&op) {
            return Err(ApiError::NotFound(format!("unknown operation {op:?}")));
        }
        if method != Method::POST {
            return Err(ApiError::bad(format!("use POST for /{op}")));
        }
        let limit = state.config.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                ApiError::TooLarge(format!("request body is larger than {limit} bytes"))
            })?;
        let body = Body::parse(&bytes)?;
        ops::dispatch(&mut ctx, &body).await
    }
    .await;

    let (status, outcome, error) = match &result {
        Ok(_) => (StatusCode::OK, Outcome::Allowed, String::new()),
        Err(e) => {
            if let ApiError::Internal(detail) = e {
                tracing::error!(request_id = %ctx.request_id, op = %ctx.op, %detail, "request failed");
            }
            let outcome = if e.is_denial() {
                Outcome::Denied
            } else {
                Outcome::Error
            };
            (e.status(), outcome, e.to_string())
        }
    };

    let record = AuditRecord {
        seq: 0,
        time_ms: now_ms(),
        request_id: ctx.request_id.clone(),
        operation: ctx.op.clone(),
        object: ctx.object.clone(),
        outcome,
        status: status.as_u16(),
        error: error.clone(),
        access_id: ctx.access_id.clone(),
        auth_method: ctx.auth_method.clone(),
        identity: ctx.identity.clone(),
        client_type,
        peer: peer.ip().to_string(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    };
    let minted = ctx.minted.take();
    let token_hash = minted.as_ref().map(|t| t.token_hash.clone());
    if state
        .audit
        .record(record, minted.filter(|_| result.is_ok()))
        .await
        .is_err()
    {
        if let Some(h) = token_hash {
            state.tokens.remove(&h);
        }
        // Nothing leaves without its audit record: drop the result.
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the audit log could not be written, so the request was refused; see the server log",
        );
    }

    tracing::debug!(
        request_id = %ctx.request_id,
        op = %ctx.op,
        status = status.as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(ApiError::Internal(_)) => error_response(
            status,
            &format!(
                "internal error; the server log has the details under request id {}",
                ctx.request_id
            ),
        ),
        Err(e) => error_response(status, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::operation_from_path as op;

    #[test]
    fn paths() {
        assert_eq!(op("/auth").as_deref(), Some("auth"));
        assert_eq!(op("/v2/auth").as_deref(), Some("auth"));
        assert_eq!(op("/api/v2/auth").as_deref(), Some("auth"));
        assert_eq!(
            op("//api//v2///get-secret-value/").as_deref(),
            Some("get-secret-value")
        );
        assert_eq!(op("/get_secret_value").as_deref(), Some("get-secret-value"));
        assert_eq!(op("/"), None);
        assert_eq!(op("/a/b"), None);
        assert_eq!(op("/../auth"), None);
        assert_eq!(op("/v3/auth"), None);
    }
}
