//! The purge job: deletes items whose pending deletion (delete-item with
//! delete-in-days, delete-items) is due, each with its own audit record.
//!
//! It runs on every node; the store's purge is a conditional delete (only
//! an item still pending and due), so when several nodes scan the same due
//! items at once exactly one deletes each and writes its record, and a
//! restore that commits first always wins. No claim is needed: unlike a
//! lease revocation or a rotation, a purge has no effect outside the
//! database that could happen twice.

use std::sync::Arc;
use std::time::Duration;

use coffer_store::Audit;

use crate::state::{AppState, now_ms, system_record};

/// Due items read per pass.
const BATCH: i64 = 64;

/// One pass: purge every item due at `now_ms` (up to [`BATCH`]). Returns
/// how many this node purged. Public so tests pass a time days ahead
/// instead of waiting.
pub async fn purge_once(state: &Arc<AppState>, now_ms: i64) -> Result<usize, String> {
    let due = state
        .store
        .due_deletions(now_ms, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut purged = 0;
    for item in due {
        let mut rec = system_record("item-purge", &item.name);
        rec.error = format!(
            "purged: pending deletion since before {}",
            crate::timefmt::rfc3339(item.deletion_ms)
        );
        let done = state
            .store
            .purge_item(item.id, now_ms, Audit::new(&mut rec, &*state.keys.audit))
            .await;
        state.items.remove(item.name.as_str());
        match done {
            Ok(true) => purged += 1,
            // Restored, or purged by another node first.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(item = %item.name, error = %e, "purging an item pending deletion failed; retried on the next pass");
            }
        }
    }
    Ok(purged)
}

/// The purge loop (every node, from start-up: items that came due while
/// no node ran go at once).
pub(crate) async fn purge_loop(state: Arc<AppState>, every: Duration) {
    loop {
        match purge_once(&state, now_ms()).await {
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge pass failed"),
        }
        tokio::time::sleep(every).await;
    }
}
