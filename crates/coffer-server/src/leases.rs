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

use crate::error::ApiError;
use crate::ops::dynamic;
use crate::state::{AppState, now_ms, system_record};

/// How long a claim holds a lease (longer than any revocation takes:
/// connections time out after 10 s).
const CLAIM_MS: i64 = 120_000;
/// Leases taken per pass; revocations run this many at once.
const BATCH: i64 = 200;
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

/// Drop a lease's database user.
async fn drop_user(state: &AppState, l: &Lease) -> Result<(), String> {
    let item = match state.store.get_item(&l.item_name).await {
        Ok(Some(item)) if item.id == l.item_id => item,
        Ok(_) => {
            return Err(format!(
                "its dynamic secret {:?} no longer exists; drop database user {:?} by hand",
                l.item_name, l.id
            ));
        }
        Err(e) => return Err(ApiError::from(e).to_string()),
    };
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
            .map_err(|e| ApiError::Upstream(e.to_string()))
    };
    run.await.map_err(|e| match e {
        ApiError::Internal(detail) => {
            tracing::error!(lease = %l.id, error = %detail, "lease revocation failed");
            "internal error (see the server log)".to_owned()
        }
        other => other.to_string(),
    })
}

/// Revoke a lease this node holds and record the outcome (revoked, or the
/// failure and the next attempt). Returns the failure, if any.
async fn revoke_claimed(
    state: &AppState,
    l: &Lease,
    template: &AuditRecord,
    reason: &str,
) -> Result<(), String> {
    let result = drop_user(state, l).await;
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
        Err(e) => {
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
        let results: Vec<(String, Result<(), String>)> = futures::stream::iter(batch)
            .map(|l| async move {
                let r = revoke_claimed(state, &l, template, reason).await;
                (l.id, r)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (id, r) in results {
            match r {
                Ok(()) => revoked.push(id),
                Err(e) => failed.push((id, e)),
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
