//! Liveness and readiness, for load balancers and orchestrators (like
//! Vault's `sys/health`).
//!
//! * `GET /health/live`: 200 while the process serves HTTP at all.
//! * `GET /health/ready` (and `GET /health`): 200 when this node can serve
//!   requests: the store answers a cheap query within [`PROBE_TIMEOUT`],
//!   the audit writer runs and its last batch committed, and the key
//!   material is loaded; 503 otherwise. The body names each check and its
//!   state, nothing else (no addresses, no error text).
//!
//! The store probe is cached for [`PROBE_TTL`] and only one runs at a
//! time, so a flood of health checks costs the database at most one query
//! per [`PROBE_TTL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::state::{AppState, now_ms};

/// How long a store probe's answer is reused.
pub const PROBE_TTL: Duration = Duration::from_secs(1);
/// A store that does not answer within this is unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The health routes, and `/metrics` when `metrics` is set.
pub fn routes(metrics: bool) -> Router<Arc<AppState>> {
    let r = Router::new()
        .route("/health", get(ready))
        .route("/health/ready", get(ready))
        .route("/health/live", get(live));
    if metrics {
        r.route("/metrics", get(crate::metrics::serve))
    } else {
        r
    }
}

/// The cached store probe.
#[derive(Default)]
pub struct Health {
    probe: tokio::sync::Mutex<Option<Probe>>,
}

#[derive(Clone, Copy)]
struct Probe {
    at: Instant,
    at_ms: i64,
    ok: bool,
}

impl Health {
    /// Does the store answer? (cached; one probe at a time)
    async fn store(&self, state: &AppState) -> Probe {
        let mut cached = self.probe.lock().await;
        if let Some(p) = *cached
            && p.at.elapsed() < PROBE_TTL
        {
            return p;
        }
        let at_ms = now_ms();
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, state.store.generation()).await,
            Ok(Ok(_))
        );
        let p = Probe {
            at: Instant::now(),
            at_ms,
            ok,
        };
        *cached = Some(p);
        p
    }
}

/// What the audit writer last did (set by the writer after every batch).
#[derive(Debug, Default)]
pub struct AuditHealth {
    last_ok_ms: AtomicI64,
    last_failed_ms: AtomicI64,
}

impl AuditHealth {
    pub fn batch(&self, ok: bool) {
        let slot = if ok {
            &self.last_ok_ms
        } else {
            &self.last_failed_ms
        };
        slot.fetch_max(now_ms(), Ordering::Relaxed);
    }

    /// Healthy unless the last batch failed and the store has not been
    /// seen answering since (`store_ok_at_ms`: when the store last answered
    /// a probe). A failed batch has no other cause than the store, and
    /// without traffic no batch would come to clear it.
    fn healthy(&self, store_ok_at_ms: Option<i64>) -> bool {
        let failed = self.last_failed_ms.load(Ordering::Relaxed);
        failed == 0
            || self.last_ok_ms.load(Ordering::Relaxed) >= failed
            || store_ok_at_ms.is_some_and(|t| t > failed)
    }
}

/// `GET /health/live`.
pub async fn live() -> Response {
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"status": "ok"})),
    )
        .into_response()
}

/// `GET /health/ready` and `GET /health`.
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let probe = state.health.store(&state).await;
    let store = if probe.ok { "ok" } else { "unreachable" };
    let audit = if !state.audit.running() {
        "stopped"
    } else if state.audit.health.healthy(probe.ok.then_some(probe.at_ms)) {
        "ok"
    } else {
        "failing"
    };
    let keys = if state.keys.data_key(state.keys.active_key_id()).is_ok() {
        "loaded"
    } else {
        "missing"
    };
    let ready = store == "ok" && audit == "ok" && keys == "loaded";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "status": if ready { "ok" } else { "unavailable" },
            "checks": {"store": store, "audit": audit, "keys": keys},
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_audit_batch_clears_on_success_or_a_later_store_answer() {
        let h = AuditHealth::default();
        assert!(h.healthy(None), "nothing written yet");
        h.batch(true);
        assert!(h.healthy(None));
        h.last_failed_ms.store(now_ms() + 10, Ordering::Relaxed);
        assert!(!h.healthy(None));
        assert!(
            !h.healthy(Some(now_ms())),
            "store answered before the failure"
        );
        assert!(h.healthy(Some(now_ms() + 20)), "store answered after it");
        h.last_ok_ms.store(now_ms() + 30, Ordering::Relaxed);
        assert!(h.healthy(None), "a later batch committed");
    }
}
