//! Audit retention: pruning the start of the chain behind a sealed
//! checkpoint (a child module of `sql_store`, so it shares its private
//! helpers).
//!
//! One prune is one write transaction under the chain lock (the audit head
//! row, `FOR UPDATE` on PostgreSQL; SQLite's write lock): appends and other
//! pruners (every node runs the job) wait for it, and a pruner that waited
//! sees the other's checkpoint and starts after it. Before deleting, the
//! records about to go are verified from the current checkpoint: a broken
//! chain is never pruned, so a checkpoint never vouches for tampered or
//! missing records.

use coffer_core::audit::{ChainVerifier, Checkpoint};
use sqlx::{Pool, Transaction};

use super::{SqlStore, db};
use crate::{Audit, PrunedRange, Result, StoreError, rows, sql};

type CheckpointRow = (i64, Vec<u8>, i64, Vec<u8>);

const GET_CHECKPOINT: &str = "SELECT seq, hash, time_ms, mac FROM audit_checkpoint WHERE id = 1";
const SET_CHECKPOINT: &str = "INSERT INTO audit_checkpoint (id, seq, hash, time_ms, mac, pruned_ms) \
     VALUES (1, $1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
     time_ms = excluded.time_ms, mac = excluded.mac, pruned_ms = excluded.pruned_ms";
const DELETE_PRUNED: &str = "DELETE FROM audit_log WHERE seq <= $1";

fn checkpoint(row: Option<CheckpointRow>) -> Option<Checkpoint> {
    row.map(|(seq, hash, time_ms, mac)| Checkpoint {
        seq,
        hash,
        time_ms,
        mac,
    })
}

impl_sql_store! {
    impl {
    pub(super) async fn checkpoint_on(&self, pool: &Pool<D>) -> Result<Option<Checkpoint>> {
        let row: Option<CheckpointRow> = sqlx::query_as(GET_CHECKPOINT)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
        Ok(checkpoint(row))
    }

    pub(super) async fn prune_audit_batch(
        &self,
        before_ms: i64,
        max_records: i64,
        audit: Audit<'_>,
    ) -> Result<Option<PrunedRange>> {
        if max_records < 1 {
            return Err(StoreError::Backend(
                "prune_audit needs max_records of at least 1".into(),
            ));
        }
        let mut tx: Transaction<'static, D> = self.begin_write().await?;
        // The chain lock: appends and other pruners wait until we commit.
        let (head_seq, _): (i64, Vec<u8>) = sqlx::query_as(D::LOCK_AUDIT_HEAD)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let row: Option<CheckpointRow> = sqlx::query_as(GET_CHECKPOINT)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let old = checkpoint(row);
        let after = old.as_ref().map_or(0, |c| c.seq);
        let found: Vec<rows::AuditRow> = sqlx::query_as(sql::AUDIT_RANGE)
            .bind(after)
            .bind(max_records.min(super::MAX_AUDIT_LIMIT))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let records = rows::all(found, rows::audit_record)?;
        // Verify what would go, from the current checkpoint (whose own MAC
        // is checked too).
        let mut verifier = ChainVerifier::new();
        if let Some(cp) = &old {
            verifier = verifier
                .after_checkpoint(audit.sealer, cp)
                .map_err(|e| StoreError::Corrupt(format!("audit chain: {e}; nothing pruned")))?;
        }
        let mut last = None;
        for r in &records {
            // Keep at least the head record: the chain never becomes empty.
            if r.time_ms >= before_ms || r.seq >= head_seq {
                break;
            }
            verifier.push(audit.sealer, r).map_err(|e| {
                StoreError::Corrupt(format!(
                    "audit chain: {e}; nothing pruned (run `coffer audit verify`)"
                ))
            })?;
            last = Some(r);
        }
        let Some(last) = last else {
            return Ok(None);
        };
        let range = PrunedRange {
            first_seq: after + 1,
            last_seq: last.seq,
            last_time_ms: last.time_ms,
        };
        sqlx::query(DELETE_PRUNED)
            .bind(last.seq)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let cp = Checkpoint::new(audit.sealer, last.seq, last.hash.clone(), last.time_ms);
        sqlx::query(SET_CHECKPOINT)
            .bind(cp.seq)
            .bind(cp.hash.as_slice())
            .bind(cp.time_ms)
            .bind(cp.mac.as_slice())
            .bind(audit.record.time_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        audit.record.object = format!(
            "audit-log seq {}-{} ({} records)",
            range.first_seq,
            range.last_seq,
            range.count()
        );
        Self::commit_change(tx, audit, false).await?;
        Ok(Some(range))
    }
    }
}
