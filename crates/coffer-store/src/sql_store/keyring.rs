//! Key rotation support for the operator tools (`coffer operator
//! rotate-root-key`, `rotate-data-key`): adding a data key, re-wrapping
//! every data key and the derivation key under a new root key in one
//! transaction, and re-sealing values in bounded, conditional batches.
//!
//! A child module of `sql_store`, so it shares its transaction helpers.

use coffer_core::audit::AuditRecord;
use sqlx::{Row, Transaction};

use super::{SqlStore, db, unique_or_db};
use crate::{Audit, Result, StoreError};

/// Meta key of the derivation key (wrapped by the root key, base64): what
/// the keyed hashes and the audit MAC derive from. Absent: the root key
/// itself (every store made before root-key rotation existed).
pub const DERIVATION_KEY: &str = "derivation_key";

/// Test-only: milliseconds to sleep between the steps of a root-key
/// re-wrap transaction, so a crash test can kill the process mid-way.
/// Read only by debug builds (see [`test_step_delay_ms`]): a release
/// binary ignores it, so nobody can stretch a production rotation (and the
/// write lock it holds) through the environment.
pub const TEST_STEP_DELAY_ENV: &str = "COFFER_TEST_ROTATE_STEP_DELAY_MS";

/// The test-only step delay: `None` in release builds, whatever the
/// environment says; at most 10 s in debug builds.
pub fn test_step_delay_ms() -> Option<u64> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var(TEST_STEP_DELAY_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| ms.min(10_000))
}

/// The tables holding values sealed with a data key (a `key_id` and a
/// `sealed` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// Secret values, key material and issuer settings (AAD = item, version).
    ItemVersions,
    /// Target passwords (AAD = target, version).
    Targets,
}

impl SealedTable {
    pub const ALL: [SealedTable; 2] = [SealedTable::ItemVersions, SealedTable::Targets];

    pub fn as_str(self) -> &'static str {
        match self {
            SealedTable::ItemVersions => "item_versions",
            SealedTable::Targets => "targets",
        }
    }

    fn select(self) -> &'static str {
        match self {
            SealedTable::ItemVersions => {
                "SELECT item_id, version, key_id, sealed FROM item_versions \
                 WHERE key_id <> $1 AND (item_id > $2 OR (item_id = $2 AND version > $3)) \
                 ORDER BY item_id, version LIMIT $4"
            }
            SealedTable::Targets => {
                "SELECT id, version, key_id, sealed FROM targets \
                 WHERE key_id <> $1 AND (id > $2 OR (id = $2 AND version > $3)) \
                 ORDER BY id, version LIMIT $4"
            }
        }
    }

    fn count(self) -> &'static str {
        match self {
            SealedTable::ItemVersions => {
                "SELECT key_id, COUNT(*) FROM item_versions GROUP BY key_id ORDER BY key_id"
            }
            SealedTable::Targets => {
                "SELECT key_id, COUNT(*) FROM targets GROUP BY key_id ORDER BY key_id"
            }
        }
    }

    fn update(self) -> &'static str {
        match self {
            SealedTable::ItemVersions => {
                "UPDATE item_versions SET key_id = $1, sealed = $2 \
                 WHERE item_id = $3 AND version = $4 AND key_id = $5 AND sealed = $6"
            }
            SealedTable::Targets => {
                "UPDATE targets SET key_id = $1, sealed = $2 \
                 WHERE id = $3 AND version = $4 AND key_id = $5 AND sealed = $6"
            }
        }
    }
}

/// One sealed value: the row's ID (item or target), version, data key and
/// sealed bytes.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub id: i64,
    pub version: i32,
    pub key_id: i64,
    pub sealed: Vec<u8>,
}

/// A value sealed again: written only if the row still holds exactly
/// `old_key_id` and `old_sealed` (a writer that replaced it meanwhile, even
/// under the same key, wins).
#[derive(Debug, Clone)]
pub struct Resealed {
    pub id: i64,
    pub version: i32,
    pub old_key_id: i64,
    /// The sealed bytes as read (compare-and-swap).
    pub old_sealed: Vec<u8>,
    pub new_key_id: i64,
    pub sealed: Vec<u8>,
}

/// A root-key rotation: every data key and the derivation key, as read
/// before (wrapped by the old root key) and wrapped by the new one.
#[derive(Debug)]
pub struct Rewrap<'a> {
    /// Every data key as read: `(id, wrapped by the old root key)`.
    pub old: &'a [(i64, Vec<u8>)],
    /// The same keys wrapped by the new root key.
    pub new: &'a [(i64, Vec<u8>)],
    /// The stored derivation key (meta [`DERIVATION_KEY`]) as read; `None`
    /// when there was none (the old root key was the derivation key).
    pub old_derivation: Option<&'a str>,
    /// The derivation key wrapped by the new root key.
    pub new_derivation: &'a str,
}

const INSERT_NEWEST_DATA_KEY: &str = "INSERT INTO data_keys (id, wrapped, created_ms) \
     SELECT $1, $2, CASE WHEN MAX(created_ms) >= $3 THEN MAX(created_ms) + 1 ELSE $3 END \
     FROM data_keys";
const REWRAP_DATA_KEY: &str = "UPDATE data_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3";
const INSERT_META: &str = "INSERT INTO meta (key, value) VALUES ($1, $2)";
const SWAP_META: &str = "UPDATE meta SET value = $1 WHERE key = $2 AND value = $3";
const COUNT_DATA_KEYS: &str = "SELECT COUNT(*) FROM data_keys";
const ALL_DATA_KEYS: &str = "SELECT id, wrapped FROM data_keys ORDER BY id";

fn changed_meanwhile() -> StoreError {
    StoreError::Conflict(
        "the data keys changed while the rotation ran (another rotation or a new data key); nothing was changed: run the command again".into(),
    )
}

async fn test_step_delay() {
    if let Some(ms) = test_step_delay_ms() {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

impl_sql_store! {
    impl {
    /// Serialize with other key changes (on PostgreSQL the chain lock, a
    /// row lock; on SQLite the write lock `BEGIN IMMEDIATE` already holds).
    async fn lock_keys(tx: &mut Transaction<'static, D>) -> Result<()> {
        sqlx::query(D::LOCK_AUDIT_HEAD)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn add_data_key_impl(
        &self,
        id: i64,
        wrapped: &[u8],
        created_ms: i64,
        existing: &[(i64, Vec<u8>)],
        audit: Audit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_keys(&mut tx).await?;
        // Compare-and-swap on every existing key's wrapping: a root-key
        // rotation committed since the caller read them re-wrapped them, and
        // a key wrapped by the old root key must not join a store the new
        // one opens (it would then need both).
        let now: Vec<(i64, Vec<u8>)> = sqlx::query_as(ALL_DATA_KEYS)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let mut expected = existing.to_vec();
        expected.sort_by_key(|(id, _)| *id);
        if now != expected {
            return Err(changed_meanwhile());
        }
        sqlx::query(INSERT_NEWEST_DATA_KEY)
            .bind(id)
            .bind(wrapped)
            .bind(created_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_or_db(e, || format!("data key {id}")))?;
        Self::commit_change(tx, audit, true).await
    }

    pub(crate) async fn rewrap_keys_impl(&self, r: &Rewrap<'_>, audit: Audit<'_>) -> Result<()> {
        if r.old.len() != r.new.len() || r.old.iter().zip(r.new).any(|((a, _), (b, _))| a != b) {
            return Err(StoreError::Backend(
                "re-wrap: the new data keys do not match the old ones".into(),
            ));
        }
        if r.old.is_empty() {
            return Err(StoreError::Conflict(
                "this store has no data key yet: start the server once first".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        Self::lock_keys(&mut tx).await?;
        let count: i64 = sqlx::query_scalar(COUNT_DATA_KEYS)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if usize::try_from(count).ok() != Some(r.old.len()) {
            return Err(changed_meanwhile());
        }
        for ((id, old), (_, new)) in r.old.iter().zip(r.new) {
            test_step_delay().await;
            let done = sqlx::query(REWRAP_DATA_KEY)
                .bind(new.as_slice())
                .bind(*id)
                .bind(old.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            if D::rows_affected(&done) != 1 {
                return Err(changed_meanwhile());
            }
        }
        test_step_delay().await;
        let done = match r.old_derivation {
            None => sqlx::query(INSERT_META)
                .bind(DERIVATION_KEY)
                .bind(r.new_derivation)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or_db(e, || "the derivation key".into()))?,
            Some(old) => sqlx::query(SWAP_META)
                .bind(r.new_derivation)
                .bind(DERIVATION_KEY)
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(db)?,
        };
        if D::rows_affected(&done) != 1 {
            return Err(changed_meanwhile());
        }
        test_step_delay().await;
        Self::commit_change(tx, audit, false).await
    }

    pub(crate) async fn sealed_rows_impl(
        &self,
        table: SealedTable,
        not_key_id: i64,
        after: (i64, i32),
        limit: i64,
    ) -> Result<Vec<SealedRow>> {
        let rows = sqlx::query(table.select())
            .bind(not_key_id)
            .bind(after.0)
            .bind(after.1)
            .bind(limit.clamp(1, 10_000))
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(SealedRow {
                    id: row.try_get(0).map_err(db)?,
                    version: row.try_get(1).map_err(db)?,
                    key_id: row.try_get(2).map_err(db)?,
                    sealed: row.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    pub(crate) async fn count_sealed_impl(&self, table: SealedTable) -> Result<Vec<(i64, i64)>> {
        sqlx::query_as(table.count())
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    pub(crate) async fn reseal_rows_impl(
        &self,
        table: SealedTable,
        rows: &[Resealed],
        audit: Audit<'_>,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for r in rows {
            let done = sqlx::query(table.update())
                .bind(r.new_key_id)
                .bind(r.sealed.as_slice())
                .bind(r.id)
                .bind(r.version)
                .bind(r.old_key_id)
                .bind(r.old_sealed.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            n += D::rows_affected(&done);
        }
        if n == 0 {
            return Ok(0);
        }
        note_count(audit.record, n);
        Self::commit_change(tx, audit, false).await?;
        Ok(n)
    }
    }
}

/// Say in the record how many rows the batch changed.
fn note_count(record: &mut AuditRecord, n: u64) {
    record.object = format!("{} ({n} re-sealed)", record.object);
}
