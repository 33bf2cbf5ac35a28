//! The HTTP layer: one pipeline for every operation.
//!
//! decode → authenticate → authorize → act → audit → encode.
//! Paths `/<op>`, `/v2/<op>` and `/api/v2/<op>` are the same operation;
//! repeated slashes are collapsed.
//!
//! Once its body has been read, a request runs to completion in a task of
//! its own, whatever the client does: a client that disconnects (or half-
//! closes) mid-request drops only the wait for the answer, never the work,
//! its audit record or the cache invalidation that follows a change. A
//! change is audited in its own transaction (see [`Ctx::audit`]); every
//! other outcome is recorded by the group-committed audit writer before the
//! response leaves. A handler that panics becomes an audited 500.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coffer_core::audit::{AuditRecord, Outcome};
use coffer_core::policy::{Caps, RuleType};
use coffer_store::Audit;
use futures::FutureExt;
use serde_json::Value;

use crate::error::{ApiError, error_response};
use crate::ops::{self, Operation};
use crate::state::{AppState, Caller, now_ms};
use crate::wire::Body;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        // /health, /health/live, /health/ready (and /metrics when enabled)
        .merge(crate::health::routes(state.config.metrics))
        .route("/pki/crl/{*name}", get(crl))
        .route("/openapi.json", get(openapi_json))
        .fallback(handle)
        .with_state(state)
        // A panic outside an operation handler (those are caught and
        // audited in `run`) must still not take the connection task down.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("request panicked outside an operation handler");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            },
        ))
}

/// `GET /openapi.json`: the API's description, generated from the
/// operation table (`openapi.rs`). Public and not audited: it describes the
/// binary, nothing stored.
async fn openapi_json() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_bytes(),
    )
        .into_response()
}

/// `GET /pki/crl/<issuer name>`: the PKI issuer's current CRL (PEM),
/// public like every CA's CRL. Not an operation: no token, no audit record
/// (it reveals only revoked serials, which clients must be able to fetch).
async fn crl(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    uri: axum::http::Uri,
) -> Response {
    // `?key-version=N`: the CRL of a CA key's earlier version (after
    // rotate-key, what that version signed is still revocable).
    let mut key_version = None;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("key-version", v)) => match v.parse::<i32>() {
                Ok(n) if n > 0 => key_version = Some(n),
                _ => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        "key-version must be a positive key version",
                    );
                }
            },
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "unknown query parameter: the CRL takes only key-version",
                );
            }
        }
    }
    // Bounded like operations: no permit, no work.
    let Ok(_permit) = state.in_flight.clone().try_acquire_owned() else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy; retry shortly",
        );
    };
    let built = tokio::time::timeout(
        state.config.request_timeout,
        ops::certs::crl_pem(&state, &name, key_version),
    )
    .await
    .unwrap_or_else(|_| {
        Err(ApiError::Unavailable(
            "building the CRL took too long; retry".into(),
        ))
    });
    match built {
        Ok(pem) => (
            [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
            pem.as_str().to_owned(),
        )
            .into_response(),
        Err(e) => {
            if let ApiError::Internal(detail) = &e {
                tracing::error!(issuer = %name, "CRL failed: {detail}");
            }
            error_response(e.status(), &e.to_string())
        }
    }
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
    /// The record of a certificate this request issued: written with its
    /// audit record (group commit), only if the request succeeds.
    pub issued: Option<coffer_core::model::IssuedCert>,
    client_type: String,
    /// The record of this request's change, once [`Ctx::audit`] made it;
    /// its `seq` is set when the change committed.
    written: Option<AuditRecord>,
    /// The authorization checks this request made, for the pipeline's
    /// check that every operation authorized what its table row says.
    checked: Vec<(RuleType, Caps)>,
}

impl Ctx {
    fn new(state: Arc<AppState>, peer: SocketAddr, op: String, client_type: String) -> Ctx {
        Ctx {
            request_id: state.next_request_id(),
            state,
            peer,
            op,
            object: String::new(),
            caller: None,
            access_id: String::new(),
            auth_method: String::new(),
            identity: String::new(),
            minted: None,
            issued: None,
            client_type,
            written: None,
            checked: Vec::new(),
        }
    }

    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("not authenticated".into()))
    }

    pub fn set_object(&mut self, object: impl Into<String>) {
        self.object = object.into();
    }

    /// Note that an authorization check of `caps` on `rule_type` passed.
    pub(crate) fn checked(&mut self, rule_type: RuleType, caps: Caps) {
        self.checked.push((rule_type, caps));
    }

    fn record(&self, outcome: Outcome, status: StatusCode, error: String) -> AuditRecord {
        AuditRecord {
            seq: 0,
            time_ms: now_ms(),
            request_id: self.request_id.clone(),
            operation: self.op.clone(),
            object: self.object.clone(),
            outcome,
            status: status.as_u16(),
            error,
            access_id: self.access_id.clone(),
            auth_method: self.auth_method.clone(),
            identity: self.identity.clone(),
            client_type: self.client_type.clone(),
            peer: self.peer.ip().to_string(),
            prev_hash: Vec::new(),
            hash: Vec::new(),
        }
    }

    /// The audit record of this request's change (success), for the store
    /// to write in the change's own transaction: a committed change always
    /// has its record, even if the request fails or is abandoned later.
    /// A request makes at most one change.
    pub fn audit(&mut self) -> Audit<'_> {
        let rec = self.record(Outcome::Allowed, StatusCode::OK, String::new());
        let Ctx { written, state, .. } = self;
        Audit::new(written.insert(rec), &*state.keys.audit)
    }

    /// A record for a further change this request makes besides its own
    /// (a lease revoked on its behalf, a rotation step): same request ID
    /// and caller, another operation and object. The store writes it with
    /// that change.
    pub fn sub_record(&self, operation: &str, object: &str) -> AuditRecord {
        let mut r = self.record(Outcome::Allowed, StatusCode::OK, String::new());
        r.operation = operation.to_owned();
        r.object = object.to_owned();
        r
    }

    /// Was this request's change committed (with its record)?
    fn change_committed(&self) -> Option<i64> {
        self.written.as_ref().map(|r| r.seq).filter(|s| *s > 0)
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

/// Read the body: at most `limit` bytes, within `timeout` (a client that
/// trickles its body must not hold a connection and a buffer for long).
async fn read_body(req: Request, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(req.into_body(), limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::TooLarge(format!(
            "request body is larger than {limit} bytes, or the connection broke while it was read"
        ))),
        Err(_) => Err(ApiError::Timeout(format!(
            "the request body did not arrive within {} s",
            timeout.as_secs()
        ))),
    }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let name = operation_from_path(&path);
    let op = name.as_deref().and_then(ops::find);
    let ctx = Ctx::new(
        state.clone(),
        peer,
        op.map_or_else(
            || name.clone().unwrap_or_else(|| "unknown".into()),
            |o| o.name.to_owned(),
        ),
        client_type(req.headers()),
    );
    // Requests outlive their clients, so their number is bounded here,
    // before any work: beyond it the server is overloaded and says so.
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        let busy = ApiError::Unavailable(format!(
            "the server is busy ({} requests in progress); retry shortly",
            state.config.max_requests_in_flight
        ));
        return finish(ctx, Err(busy), started).await;
    };
    let input = match (op, name) {
        (Some(op), _) if req.method() == Method::POST => {
            read_body(req, state.config.max_body_bytes, state.config.body_timeout)
                .await
                .map(|b| (op, b))
        }
        (Some(op), _) => Err(ApiError::bad(format!("use POST for /{}", op.name))),
        (None, Some(name)) => Err(ApiError::NotFound(format!(
            "unknown operation {:?}",
            coffer_core::name::truncate_for_message(&name)
        ))),
        (None, None) => Err(ApiError::NotFound(format!(
            "no operation at {:?}: POST to /<operation>, /v2/<operation> or /api/v2/<operation>",
            coffer_core::name::truncate_for_message(&path)
        ))),
    };
    // From here on the request is the server's: it runs to completion in
    // its own task even if the client goes away.
    let request_id = ctx.request_id.clone();
    let task = tokio::spawn(async move {
        let response = run(ctx, input, started).await;
        drop(permit);
        response
    });
    match tokio::time::timeout(state.config.request_timeout, task).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::error!(%request_id, error = %e, "request task failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "internal error; the server log has the details under request id {request_id}"
                ),
            )
        }
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "request {request_id} is taking longer than {} s; it goes on, and its outcome will be in the audit log under that request id",
                state.config.request_timeout.as_secs()
            ),
        ),
    }
}

/// Run the operation, audit the outcome, encode the response.
async fn run(
    mut ctx: Ctx,
    input: Result<(&'static Operation, Bytes), ApiError>,
    started: Instant,
) -> Response {
    let result: Result<Value, ApiError> = match input {
        Err(e) => Err(e),
        Ok((op, bytes)) => {
            let work = async {
                let mut body = Body::parse(&bytes)?;
                if let Some(params) = ops::params::declared(op.name) {
                    body.bind(op.name, params);
                }
                execute(&mut ctx, op, &body).await
            };
            match AssertUnwindSafe(work).catch_unwind().await {
                Ok(r) => r,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(ApiError::Internal(format!(
                        "the operation panicked: {what}"
                    )))
                }
            }
        }
    };
    finish(ctx, result, started).await
}

/// Authenticate (unless the operation is public), run the handler, and
/// check that it authorized what its table row declares.
async fn execute(ctx: &mut Ctx, op: &'static Operation, body: &Body) -> Result<Value, ApiError> {
    if op.access.needs_token() {
        ops::authenticate(ctx, body).await?;
    }
    ops::params::refuse_undeclared(op, body)?;
    let out = op.handler()(ctx, body).await?;
    if let Some(missing) = op.access.unchecked(&ctx.checked) {
        return Err(ApiError::Internal(format!(
            "operation {} returned without checking {missing}",
            op.name
        )));
    }
    #[cfg(debug_assertions)]
    ops::returns::check(op.name, &out);
    Ok(out)
}

async fn finish(ctx: Ctx, result: Result<Value, ApiError>, started: Instant) -> Response {
    let state = ctx.state.clone();
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
    let committed = ctx.change_committed();
    if let Some(seq) = committed {
        state.audited(seq);
    }
    // Unauthenticated failures beyond a small burst are only counted, and
    // written as one aggregate record per window (audit_flood.rs): an
    // anonymous flood must not grow the audit log without bound.
    let counted_only = committed.is_none()
        && crate::audit_flood::failure_of(&ctx, status.as_u16(), outcome, &error)
            .is_some_and(|f| !crate::audit_flood::admit(&state, &f));
    // A committed change that ends in success is audited already. Anything
    // else gets its record now: a failure, or a failure after the change
    // committed (then the change's record and this one both stand).
    if !counted_only && (committed.is_none() || result.is_err()) {
        let mut record = ctx.record(outcome, status, error);
        if committed.is_some() {
            record.error = format!("after its change was committed: {}", record.error);
        }
        let extra = if result.is_ok() {
            crate::audit::Extra {
                token: ctx.minted.clone(),
                cert: ctx.issued.clone(),
            }
        } else {
            crate::audit::Extra::default()
        };
        let token_hash = ctx.minted.as_ref().map(|t| t.token_hash.clone());
        match state.audit.record(record, extra).await {
            Ok(seq) => state.audited(seq),
            Err(_) => {
                if let Some(h) = token_hash {
                    state.tokens.remove(&h);
                }
                // Nothing leaves without its audit record: drop the result.
                crate::metrics::request(&ctx.op, 500, started.elapsed());
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the audit log could not be written, so the request was refused; see the server log",
                );
            }
        }
    }

    crate::metrics::request(&ctx.op, status.as_u16(), started.elapsed());
    // One line per request (target `coffer::request`, INFO): never a
    // value, key or token, only who asked for what and how it ended. An
    // unauthenticated failure that was only counted logs at DEBUG (a flood
    // must not grow the logs either): its aggregate record logs one INFO
    // line when written (target `coffer::audit_flood`).
    let access_id = if ctx.access_id.is_empty() {
        "-"
    } else {
        ctx.access_id.as_str()
    };
    let duration_us = started.elapsed().as_micros() as u64;
    macro_rules! request_line {
        ($level:ident $(, $field:ident = $value:expr)?) => {
            tracing::$level!(
                target: "coffer::request",
                request_id = %ctx.request_id,
                op = %ctx.op,
                status = status.as_u16(),
                duration_us,
                access_id = %access_id,
                peer = %ctx.peer.ip(),
                $($field = $value,)?
                "request"
            )
        };
    }
    if counted_only {
        request_line!(debug, audit = "counted");
    } else {
        request_line!(info);
    }
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
    use super::*;

    /// A dev-mode server state in a temporary directory.
    async fn dev_state() -> (
        tempfile::TempDir,
        Arc<AppState>,
        Option<crate::bootstrap::AdminCredentials>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::Config::resolve(&crate::ServerArgs {
            dev: true,
            data_dir: Some(dir.path().join("data")),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        let (state, admin) = crate::build(&config).await.unwrap();
        (dir, state, admin)
    }

    #[tokio::test]
    async fn a_panicking_handler_is_an_audited_500() {
        let (_dir, state, _) = dev_state().await;
        let boom = ops::test_operation("panic-test", ops::Access::Public, |_, _| {
            Box::pin(async { panic!("boom") })
        });
        let ctx = Ctx::new(
            state.clone(),
            "127.0.0.1:1".parse().unwrap(),
            boom.name.into(),
            "test".into(),
        );
        let resp = run(ctx, Ok((boom, Bytes::from_static(b"{}"))), Instant::now()).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let recs = state
            .store
            .query_audit(&coffer_store::AuditQuery {
                operation: Some("panic-test".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!((recs[0].status, recs[0].outcome), (500, Outcome::Error));
    }

    /// When every in-flight slot is taken, a request is refused at once
    /// with 503 (and audited); once slots free up, requests go through.
    #[tokio::test]
    async fn too_many_requests_in_flight_get_503() {
        use tower::ServiceExt;
        let (_dir, state, _) = dev_state().await;
        let app = router(state.clone()).layer(axum::extract::connect_info::MockConnectInfo(
            SocketAddr::from(([127, 0, 0, 1], 1)),
        ));
        let req = || {
            axum::http::Request::post("/validate-token")
                .body(axum::body::Body::from(r#"{"token":"t-x"}"#))
                .unwrap()
        };
        let all = u32::try_from(state.config.max_requests_in_flight).unwrap();
        let held = state
            .in_flight
            .clone()
            .acquire_many_owned(all)
            .await
            .unwrap();
        let resp = app.clone().oneshot(req()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(held);
        let resp = app.oneshot(req()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let busy = state
            .store
            .query_audit(&coffer_store::AuditQuery {
                operation: Some("validate-token".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            busy.iter().map(|r| r.status).collect::<Vec<_>>(),
            [503, 200]
        );
    }

    /// A handler that returns without the check its table row declares
    /// fails closed.
    #[tokio::test]
    async fn a_handler_that_skips_its_check_fails_closed() {
        let (_dir, state, admin) = dev_state().await;
        let admin = admin.unwrap();
        let sloppy = ops::test_operation(
            "sloppy-test",
            ops::Access::Requires(&[(RuleType::Item, Caps::READ)]),
            |_, _| Box::pin(async { Ok(serde_json::json!({"leaked": true})) }),
        );
        // Log in as the admin through the real pipeline.
        let login = ops::find("auth").unwrap();
        let body = serde_json::json!({
            "access-id": admin.access_id,
            "access-key": secrecy::ExposeSecret::expose_secret(&admin.access_key),
        });
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let ctx = Ctx::new(state.clone(), peer, "auth".into(), "test".into());
        let resp = run(
            ctx,
            Ok((login, Bytes::from(body.to_string()))),
            Instant::now(),
        )
        .await;
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let token = serde_json::from_slice::<Value>(&bytes).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let ctx = Ctx::new(state.clone(), peer, sloppy.name.into(), "test".into());
        let body = serde_json::json!({"token": token}).to_string();
        let resp = run(ctx, Ok((sloppy, Bytes::from(body))), Instant::now()).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

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
