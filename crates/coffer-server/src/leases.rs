//! Leases that always die: the reaper revokes expired temporary database
//! users (and those whose session token is gone, for auth methods that tie
//! them), retrying failures with backoff without holding up the others.
//!
//! Every node runs the reaper. A lease is taken with a time-limited claim
//! (`Store::claim_leases`, `FOR UPDATE SKIP LOCKED` on PostgreSQL), its user
//! dropped, and marked revoked only by the node holding it, so each lease is
//! revoked once and a node that dies mid-way only delays its leases until
//! the claim runs out. Every revocation and every failure has its audit
//! record.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::audit::{AuditRecord, Outcome};
use coffer_core::model::{AuthMethod, Lease};
use coffer_store::{Audit, LeaseScope};
use futures::StreamExt;

use crate::dbconn::DbError;
use crate::error::ApiError;
use crate::ops::dynamic;
use crate::state::{AppState, now_ms, system_record};

/// How long a claim holds a lease: longer than a pass can take (each
/// revocation is bounded by the database layer's 60 s; a pass handles
/// [`BATCH`] leases, [`PARALLEL`] items at once, an item's leases one after
/// another, failing fast after the first failure of its database).
const CLAIM_MS: i64 = 600_000;
/// Leases taken per pass; items revoked at once.
const BATCH: i64 = 64;
const PARALLEL: usize = 8;
/// First retry after a failure; doubles up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 5_000;
const MAX_BACKOFF_MS: i64 = 600_000;

/// The auth-method setting that ties issued credentials to the session
/// token: `lease-tied-to-token` at creation.
pub(crate) const TIED_SETTING: &str = "lease_tied_to_token";

/// Does this auth method tie credentials to the token that asked for them?
pub(crate) fn tied_to_token(am: &AuthMethod) -> bool {
    am.config
        .get(TIED_SETTING)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

fn backoff_ms(attempts: i32) -> i64 {
    let shift = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    FIRST_BACKOFF_MS
        .saturating_mul(1_i64 << shift)
        .min(MAX_BACKOFF_MS)
}

/// Why a revocation failed, and whether the item's database (or Graph)
/// itself is down, so its other leases need not wait on it in this pass.
struct Failure {
    message: String,
    server_down: bool,
}

impl Failure {
    fn of(message: String) -> Failure {
        Failure {
            message,
            server_down: false,
        }
    }
}

/// Drop a lease's database user.
async fn drop_user(state: &AppState, l: &Lease) -> Result<(), Failure> {
    let item = match state.store.get_item(&l.item_name).await {
        Ok(Some(item)) if item.id == l.item_id => item,
        Ok(_) => {
            return Err(Failure::of(format!(
                "its dynamic secret {:?} no longer exists; drop database user {:?} by hand",
                l.item_name, l.id
            )));
        }
        Err(e) => return Err(Failure::of(ApiError::from(e).to_string())),
    };
    let mut server_down = false;
    let run = async {
        let (_, s) = dynamic::load(state, &item).await?;
        if let Some(app) = &s.azure {
            let secret = dynamic::sealed_secret(state, &item.name).await?;
            return crate::ops::azure::remove_secret(state, app, &secret, &l.id).await;
        }
        let spec = dynamic::connection(state, &item, &s).await?;
        let revocation = s.revocation()?;
        state
            .db
            .revoke_user(&spec, &l.id, revocation.as_ref())
            .await
            .map_err(|e| {
                server_down = matches!(
                    e,
                    DbError::Unreachable(_)
                        | DbError::Timeout(_)
                        | DbError::Tls(_)
                        | DbError::AuthFailed(_)
                );
                ApiError::Upstream(e.to_string())
            })
    };
    let result = run.await;
    result.map_err(|e| {
        let message = match e {
            ApiError::Internal(detail) => {
                tracing::error!(lease = %l.id, error = %detail, "lease revocation failed");
                "internal error (see the server log)".to_owned()
            }
            ApiError::Upstream(m) => {
                server_down |= m.contains("cannot connect") || m.contains("timed out");
                m
            }
            other => other.to_string(),
        };
        Failure {
            message,
            server_down,
        }
    })
}

/// Revoke a lease this node holds and record the outcome (revoked, or the
/// failure and the next attempt). Returns the failure, if any.
async fn revoke_claimed(
    state: &AppState,
    l: &Lease,
    template: &AuditRecord,
    reason: &str,
    skip: Option<&str>,
) -> Result<(), Failure> {
    let result = match skip {
        // Its item's server just failed to answer: do not wait on it again.
        Some(first) => Err(Failure {
            message: format!("not tried: this item's server just failed: {first}"),
            server_down: true,
        }),
        None => drop_user(state, l).await,
    };
    let mut rec = template.clone();
    rec.time_ms = now_ms();
    rec.object = format!("{}/{}", l.item_name, l.id);
    let node = state.request_prefix.as_str();
    let stored = match &result {
        Ok(()) => {
            rec.error = format!("revoked: {reason}");
            state
                .store
                .finish_lease(
                    &l.id,
                    node,
                    now_ms(),
                    Audit::new(&mut rec, &*state.keys.audit),
                )
                .await
        }
        Err(f) => {
            let e = &f.message;
            rec.outcome = Outcome::Error;
            rec.status = 502;
            rec.error = format!("revocation failed (attempt {}): {e}", l.attempts + 1);
            tracing::warn!(lease = %l.id, item = %l.item_name, attempt = l.attempts + 1, error = %e, "lease revocation failed; will retry");
            state
                .store
                .fail_lease(
                    &l.id,
                    node,
                    e,
                    now_ms() + backoff_ms(l.attempts),
                    Audit::new(&mut rec, &*state.keys.audit),
                )
                .await
        }
    };
    match stored {
        Ok(true) => state.audited(rec.seq),
        Ok(false) => {
            tracing::warn!(lease = %l.id, "lease claim was lost before its revocation was recorded")
        }
        Err(e) => tracing::error!(lease = %l.id, error = %e, "cannot record a lease revocation"),
    }
    result
}

/// Revoke the leases of `scope` now (on request): returns the IDs revoked
/// and those that failed with their errors (the reaper retries them).
pub(crate) async fn revoke_scope(
    state: &Arc<AppState>,
    scope: LeaseScope<'_>,
    template: &AuditRecord,
    reason: &str,
) -> Result<(Vec<String>, Vec<(String, String)>), ApiError> {
    let mut revoked = Vec::new();
    let mut failed = Vec::new();
    loop {
        let now = now_ms();
        let batch = state
            .store
            .claim_leases(scope, &state.request_prefix, now, now + CLAIM_MS, BATCH)
            .await?;
        let n = batch.len();
        // One item's leases one after another, different items at once:
        // a slow or unreachable database costs one timeout per pass, and
        // the other items' leases go on meanwhile.
        let mut by_item: Vec<Vec<Lease>> = Vec::new();
        for l in batch {
            match by_item.iter_mut().find(|g| g[0].item_id == l.item_id) {
                Some(g) => g.push(l),
                None => by_item.push(vec![l]),
            }
        }
        let results: Vec<(String, Result<(), Failure>)> = futures::stream::iter(by_item)
            .map(|group| async move {
                let mut out = Vec::with_capacity(group.len());
                let mut first_failure: Option<String> = None;
                for l in group {
                    let r =
                        revoke_claimed(state, &l, template, reason, first_failure.as_deref()).await;
                    if let Err(f) = &r
                        && f.server_down
                        && first_failure.is_none()
                    {
                        first_failure = Some(f.message.clone());
                    }
                    out.push((l.id, r));
                }
                out
            })
            .buffer_unordered(PARALLEL)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        for (id, r) in results {
            match r {
                Ok(()) => revoked.push(id),
                Err(f) => failed.push((id, f.message)),
            }
        }
        // Failed leases are released with a later next attempt, and a
        // scope other than `Due` would take them again: stop after one
        // round unless the batch was full.
        if (n as i64) < BATCH || !failed.is_empty() || matches!(scope, LeaseScope::One(_)) {
            break;
        }
    }
    Ok((revoked, failed))
}

/// Revoke one lease (e.g. after its user could not be created).
pub(crate) async fn revoke_one(
    state: &Arc<AppState>,
    id: &str,
    template: AuditRecord,
    reason: &str,
) {
    if let Err(e) = revoke_scope(state, LeaseScope::One(id), &template, reason).await {
        tracing::warn!(lease = %id, error = %e, "lease revocation failed; the reaper retries");
    }
}

/// One pass of the reaper: every due lease. Returns how many were handled
/// (public for tests, which run it instead of waiting for the loop).
pub async fn reap_once(state: &Arc<AppState>) -> Result<usize, String> {
    let template = system_record("lease-expire", "");
    let (revoked, failed) = revoke_scope(state, LeaseScope::Due, &template, "expired")
        .await
        .map_err(|e| e.to_string())?;
    Ok(revoked.len() + failed.len())
}

/// The reaper: runs on every node, from start-up (leases that expired
/// while no node ran are revoked at once).
pub(crate) async fn reaper(state: Arc<AppState>, every: Duration) {
    loop {
        match reap_once(&state).await {
            // A full pass: go again at once.
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "lease reaper pass failed"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(0), 5_000);
        assert_eq!(backoff_ms(1), 10_000);
        assert_eq!(backoff_ms(3), 40_000);
        assert_eq!(backoff_ms(30), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(-1), 5_000);
    }
}
