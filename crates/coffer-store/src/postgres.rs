//! PostgreSQL backend, for several Coffer nodes sharing one database.

use std::str::FromStr;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};

use crate::sql_store::{Dialect, SqlStore, db, sealed};
use crate::{Result, StoreError, migrations, redact_url};

/// The shared store: `PgStore::connect("postgres://coffer@db/coffer")`.
pub type PgStore = SqlStore<Postgres>;

impl sealed::Sealed for Postgres {}

impl Dialect for Postgres {
    const BACKEND: &'static str = "postgres";
    /// READ COMMITTED; the statements that need more lock rows explicitly.
    const BEGIN_WRITE: &'static str = "BEGIN";
    const BEGIN_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    /// The chain lock: appends from every node queue on this row.
    const LOCK_AUDIT_HEAD: &'static str =
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
    const LOCK_ITEM: &'static str = "SELECT last_version FROM items WHERE id = $1 FOR UPDATE";
    const CLAIM_LEASES: &'static str = crate::sql::CLAIM_LEASES_PG;
    const INSERT_AUDIT_JSON: &'static str = crate::sql::INSERT_AUDIT_JSON_POSTGRES;
    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

const MAX_CONNECTIONS: u32 = 16;

impl SqlStore<Postgres> {
    /// Connect and run the migrations (under PostgreSQL's advisory lock, so
    /// nodes starting together migrate once).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Config(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // No ping per query: a broken connection fails one query and
            // is then discarded by the pool.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| match db(e) {
                StoreError::Backend(msg) => {
                    StoreError::Backend(format!("cannot connect to {}: {msg}", redact_url(url)))
                }
                other => other,
            })?;
        migrations::postgres()
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("PostgreSQL migration failed: {e}")))?;
        Ok(SqlStore::from_pools(pool.clone(), pool))
    }
}
