//! [`SqlStore`]: the [`Store`] implementation shared by SQLite and
//! PostgreSQL. The backends differ only in pool setup (see `sqlite.rs` and
//! `postgres.rs`) and in the few statements of their [`Dialect`].
//!
//! Concurrency model:
//! * every multi-statement write runs in a transaction begun with
//!   [`Dialect::BEGIN_WRITE`], which on SQLite takes the database write lock
//!   up front (no lock upgrade, no `SQLITE_BUSY` mid-transaction);
//! * rows that concurrent writers on other nodes could race on are locked
//!   explicitly ([`Dialect::LOCK_AUDIT_HEAD`], [`Dialect::LOCK_ITEM`]);
//! * `add_version` is optimistic: it only moves `items.highest_version` from
//!   the expected value, so of two concurrent updates exactly one wins;
//! * every change appends its request's audit record and, for policy and
//!   revocation changes, moves the generation, in its own transaction
//!   ([`SqlStore::commit_change`]): no change is committed without both.

use async_trait::async_trait;
use coffer_core::audit::{AuditRecord, ChainHead, ChainSealer};
use coffer_core::model::{
    Association, AuthMethod, IssuedCert, Item, Lease, Producer, Role, SealedVersion, Target,
    TokenRecord, UidToken, VersionInfo,
};
use coffer_core::policy::{Rule, RuleType};
use sqlx::{Database, Encode, Executor, Pool, QueryBuilder, Row, Transaction, Type};

/// `impl [Trait for] SqlStore<D> { … }` with the bounds the shared SQL code
/// needs from a backend's type mapping. Rust does not propagate
/// where-clauses, so without this every impl block (here, in
/// `audit_retention.rs` and in `keyring.rs`) would repeat them.
macro_rules! impl_sql_store {
    ($(#[$attr:meta])* impl $($tr:ident for)? { $($body:tt)* }) => {
        $(#[$attr])*
        impl<D> $($tr for)? SqlStore<D>
        where
            D: $crate::sql_store::Dialect,
            D::Arguments: ::sqlx::IntoArguments<D>,
            for<'c> &'c mut D::Connection: ::sqlx::Executor<'c, Database = D>,
            for<'a> i64: ::sqlx::Encode<'a, D> + ::sqlx::Decode<'a, D> + ::sqlx::Type<D>,
            for<'a> i32: ::sqlx::Encode<'a, D> + ::sqlx::Decode<'a, D> + ::sqlx::Type<D>,
            for<'a> bool: ::sqlx::Encode<'a, D> + ::sqlx::Decode<'a, D> + ::sqlx::Type<D>,
            for<'a> &'a str: ::sqlx::Encode<'a, D> + ::sqlx::Type<D>,
            for<'a> String: ::sqlx::Decode<'a, D> + ::sqlx::Type<D>,
            for<'a> &'a [u8]: ::sqlx::Encode<'a, D> + ::sqlx::Type<D>,
            for<'a> Vec<u8>: ::sqlx::Decode<'a, D> + ::sqlx::Type<D>,
            for<'a> Option<i32>: ::sqlx::Encode<'a, D>,
            for<'a> Option<&'a [u8]>: ::sqlx::Encode<'a, D>,
            for<'a> Option<&'a str>: ::sqlx::Encode<'a, D>,
            usize: ::sqlx::ColumnIndex<D::Row>,
        {
            $($body)*
        }
    };
}

#[path = "audit_retention.rs"]
mod audit_retention;

use crate::rows::{self, named};

/// Key rotation support (a child module: it shares the helpers here).
pub(crate) mod keyring;
use crate::sql;
use crate::{
    Audit, AuditQuery, CertFilter, ItemChange, LeaseFilter, LeaseScope, PolicyData, Result, Store,
    StoreError,
};

/// What differs between the SQL backends beyond pool setup. Sealed:
/// implemented for [`sqlx::Sqlite`] and [`sqlx::Postgres`] only.
pub trait Dialect: Database + sealed::Sealed {
    /// `"sqlite"` or `"postgres"`, as returned by [`Store::backend`].
    const BACKEND: &'static str;
    /// Starts a write transaction.
    const BEGIN_WRITE: &'static str;
    /// Starts a read-only transaction that sees one consistent snapshot.
    const BEGIN_SNAPSHOT: &'static str;
    /// Reads `(seq, hash)` of the audit chain head and holds it until commit.
    const LOCK_AUDIT_HEAD: &'static str;
    /// Inserts a JSON array of audit records (`$1`).
    const INSERT_AUDIT_JSON: &'static str;
    /// Reads an item's `last_version` (`$1` = id) and holds the row until commit.
    const LOCK_ITEM: &'static str;
    /// Claims leases (see `sql::claim_leases!`), skipping rows other
    /// nodes hold where the backend can.
    const CLAIM_LEASES: &'static str;
    /// Rows changed by an `INSERT`, `UPDATE` or `DELETE`.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// A [`Store`] on an SQL database; use it as [`SqliteStore`](crate::SqliteStore)
/// or [`PgStore`](crate::PgStore).
pub struct SqlStore<D: Database> {
    /// Reads: single statements, each consistent on its own.
    read: Pool<D>,
    /// Writes. On SQLite a one-connection pool, so writers queue in process
    /// instead of contending for the file lock; on PostgreSQL the read pool.
    write: Pool<D>,
    /// A maintenance task of this store (SQLite's WAL checkpointer), stopped
    /// when the store is closed or dropped.
    background: Option<AbortOnDrop>,
}

/// Aborts a spawned task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<D: Database> SqlStore<D> {
    /// Close every connection, waiting for those in use to be returned.
    /// On SQLite the last connection to close checkpoints the WAL.
    pub async fn close(&self) {
        if let Some(task) = &self.background {
            task.0.abort();
        }
        self.read.close().await;
        self.write.close().await;
    }

    pub(crate) fn with_background(mut self, task: AbortOnDrop) -> Self {
        self.background = Some(task);
        self
    }
}

/// Highest `limit` honoured by the audit queries.
const MAX_AUDIT_LIMIT: i64 = 10_000;
/// `limit` used by [`Store::query_audit`] when the caller gives none.
const DEFAULT_AUDIT_LIMIT: i64 = 1_000;

// The where-clause below lists what the shared code needs from a backend's
// type mapping; both impl blocks repeat it (Rust does not propagate it).
impl_sql_store! {
    impl {
    pub(crate) fn from_pools(read: Pool<D>, write: Pool<D>) -> Self {
        SqlStore {
            read,
            write,
            background: None,
        }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, D>> {
        self.write.begin_with(D::BEGIN_WRITE).await.map_err(db)
    }

    /// Finish a change: move the generation when `bump` (policy and
    /// revocation changes, which other nodes must notice), append the
    /// request's audit record to the chain, and commit, all in `tx`. On any
    /// error nothing is committed and the record's `seq` is 0 again.
    async fn commit_change(
        mut tx: Transaction<'static, D>,
        audit: Audit<'_>,
        bump: bool,
    ) -> Result<()> {
        if audit.record.seq != 0 {
            return Err(StoreError::Backend(
                "a request's audit record can carry one change only".into(),
            ));
        }
        let result = async {
            if bump {
                sqlx::query(sql::BUMP_GENERATION)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            Self::append_in_tx(&mut tx, std::slice::from_mut(audit.record), audit.sealer).await?;
            tx.commit().await.map_err(db)
        }
        .await;
        if result.is_err() {
            audit.record.seq = 0;
        }
        result
    }

    /// Insert an issued certificate's record (Conflict when its serial is
    /// taken for its issuer).
    async fn insert_cert_in_tx(tx: &mut Transaction<'_, D>, c: &IssuedCert) -> Result<()> {
        let names = rows::to_json("certificate names", &c.names)?;
        let inserted = sqlx::query(sql::INSERT_CERT)
            .bind(c.issuer_id)
            .bind(c.serial.as_str())
            .bind(c.issuer_name.as_str())
            .bind(c.kind.as_str())
            .bind(c.signer_key.as_str())
            .bind(c.signer_version)
            .bind(c.subject.as_str())
            .bind(names.as_str())
            .bind(c.access_id.as_str())
            .bind(c.identity.as_str())
            .bind(c.request_id.as_str())
            .bind(c.issued_ms)
            .bind(c.expires_ms)
            .bind(c.revoked_ms)
            .bind(c.revocation_reason.as_str())
            .execute(&mut **tx)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "certificate serial {} of {}",
                c.serial,
                named("issuer", &c.issuer_name)
            ))),
            Err(e) => Err(db(e)),
        }
    }

    /// Append records to the chain inside `tx`: lock the head, link and
    /// seal each record, insert them all from one JSON parameter, move the
    /// head and its MAC.
    async fn append_in_tx(
        tx: &mut Transaction<'static, D>,
        records: &mut [AuditRecord],
        sealer: &dyn ChainSealer,
    ) -> Result<()> {
        let (mut seq, mut prev_hash): (i64, Vec<u8>) = sqlx::query_as(D::LOCK_AUDIT_HEAD)
            .fetch_one(&mut **tx)
            .await
            .map_err(db)?;
        for r in records.iter_mut() {
            seq += 1;
            r.seq = seq;
            r.prev_hash = prev_hash;
            r.hash = sealer.seal(r);
            prev_hash = r.hash.clone();
        }
        let batch = serde_json::to_string(&*records)
            .map_err(|e| StoreError::Backend(format!("cannot encode audit records: {e}")))?;
        sqlx::query(D::INSERT_AUDIT_JSON)
            .bind(batch.as_str())
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        let mac = sealer.seal_head(seq, &prev_hash);
        sqlx::query(sql::SET_AUDIT_HEAD)
            .bind(seq)
            .bind(prev_hash.as_slice())
            .bind(mac.as_slice())
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// A change that deletes the row(s) keyed by `key`: false (and nothing
    /// written, not even the record) when there was nothing to delete.
    async fn delete_keyed<'k, K>(
        &self,
        sql: &'static str,
        key: K,
        audit: Audit<'_>,
        bump: bool,
    ) -> Result<bool>
    where
        K: Encode<'k, D> + Type<D> + Send + 'k,
    {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, bump).await?;
        Ok(true)
    }

    /// The item columns of `row` starting at column `at`.
    fn item_at(row: &D::Row, at: usize) -> Result<rows::ItemCols> {
        Ok(rows::ItemCols {
            id: row.try_get(at).map_err(db)?,
            name: row.try_get(at + 1).map_err(db)?,
            item_type: row.try_get(at + 2).map_err(db)?,
            sub_type: row.try_get(at + 3).map_err(db)?,
            format: row.try_get(at + 4).map_err(db)?,
            description: row.try_get(at + 5).map_err(db)?,
            tags: row.try_get(at + 6).map_err(db)?,
            max_versions: row.try_get(at + 7).map_err(db)?,
            last_version: row.try_get(at + 8).map_err(db)?,
            highest_version: row.try_get(at + 9).map_err(db)?,
            enabled: row.try_get(at + 10).map_err(db)?,
            created_ms: row.try_get(at + 11).map_err(db)?,
            modified_ms: row.try_get(at + 12).map_err(db)?,
            deletion_ms: row.try_get(at + 13).map_err(db)?,
        })
    }

    fn item_row(row: &D::Row) -> Result<Item> {
        rows::item(Self::item_at(row, 0)?)
    }

    /// Insert a role and its rules inside `tx`.
    async fn insert_role(tx: &mut Transaction<'static, D>, role: &Role) -> Result<()> {
        sqlx::query(sql::INSERT_ROLE)
            .bind(role.name.as_str())
            .bind(role.description.as_str())
            .bind(role.audit_access.as_str())
            .bind(role.created_ms)
            .bind(role.modified_ms)
            .execute(&mut **tx)
            .await
            .map_err(|e| unique_or_db(e, || named("role", &role.name)))?;
        for rule in &role.rules {
            sqlx::query(sql::UPSERT_ROLE_RULE)
                .bind(role.name.as_str())
                .bind(rule.rule_type.as_str())
                .bind(rule.path.as_str())
                .bind(rows::caps_bits(rule.caps))
                .execute(&mut **tx)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    /// Insert an auth method inside `tx`; a unique violation is returned
    /// as is (the caller maps it, after ending the transaction).
    async fn insert_auth_method(
        tx: &mut Transaction<'static, D>,
        am: &AuthMethod,
    ) -> std::result::Result<(), InsertError> {
        sqlx::query(sql::INSERT_AUTH_METHOD)
            .bind(am.name.as_str())
            .bind(am.access_id.as_str())
            .bind(am.kind.as_str())
            .bind(am.description.as_str())
            .bind(am.access_key_hash.as_deref())
            .bind(am.access_expires_ms)
            .bind(rows::to_json("bound IPs", &am.bound_ips)?.as_str())
            .bind(am.token_ttl_secs)
            .bind(am.force_sub_claims)
            .bind(rows::to_json("auth method config", &am.config)?.as_str())
            .bind(am.created_ms)
            .bind(am.modified_ms)
            .execute(&mut **tx)
            .await
            .map_err(InsertError::from)?;
        Ok(())
    }

    /// Insert an association inside `tx`.
    async fn insert_association(
        tx: &mut Transaction<'static, D>,
        assoc: &Association,
    ) -> std::result::Result<(), InsertError> {
        sqlx::query(sql::INSERT_ASSOCIATION)
            .bind(assoc.assoc_id.as_str())
            .bind(assoc.role_name.as_str())
            .bind(assoc.auth_method_name.as_str())
            .bind(rows::to_json("sub-claims", &assoc.sub_claims)?.as_str())
            .bind(assoc.case_sensitive)
            .bind(assoc.created_ms)
            .execute(&mut **tx)
            .await
            .map_err(InsertError::from)?;
        Ok(())
    }

    async fn exists<'e, E, K>(ex: E, sql: &'static str, key: K) -> Result<bool>
    where
        E: Executor<'e, Database = D>,
        K: Encode<'e, D> + Type<D> + 'e,
    {
        let row: Option<i32> = sqlx::query_scalar(sql)
            .bind(key)
            .fetch_optional(ex)
            .await
            .map_err(db)?;
        Ok(row.is_some())
    }

    /// The NotFound error for a failed foreign key of an association.
    async fn missing_role_or_method(&self, role: &str, method: &str) -> Result<StoreError> {
        Ok(
            if !Self::exists(&self.read, sql::ROLE_EXISTS, role).await? {
                StoreError::NotFound(named("role", role))
            } else if !Self::exists(&self.read, sql::AUTH_METHOD_EXISTS, method).await? {
                StoreError::NotFound(named("auth method", method))
            } else {
                StoreError::Backend("association refused by a foreign key".into())
            },
        )
    }

    /// Lock an auth method's UID token tree for the rest of the
    /// transaction; NotFound if the method does not exist.
    async fn lock_uid_tree(tx: &mut Transaction<'static, D>, access_id: &str) -> Result<()> {
        let locked = sqlx::query(sql::LOCK_UID_TREE)
            .bind(access_id)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&locked) == 0 {
            return Err(StoreError::NotFound(named(
                "auth method with access ID",
                access_id,
            )));
        }
        Ok(())
    }

    /// Insert one version inside the caller's transaction.
    /// Begin a write that inserts an item and its first version (Conflict
    /// naming the name or the ID that is taken); the caller adds to it and
    /// commits.
    async fn begin_item(
        &self,
        item: &Item,
        first: &SealedVersion,
    ) -> Result<Transaction<'static, D>> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(sql::INSERT_ITEM)
            .bind(item.id)
            .bind(item.name.as_str())
            .bind(item.item_type.as_str())
            .bind(item.sub_type.as_str())
            .bind(item.format.as_str())
            .bind(item.description.as_str())
            .bind(rows::to_json("tags", &item.tags)?.as_str())
            .bind(item.max_versions)
            // The invariants: last_version = newest stored version,
            // highest_version = highest number ever given.
            .bind(first.version)
            .bind(first.version)
            .bind(item.enabled)
            .bind(item.created_ms)
            .bind(item.modified_ms)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            if !is_unique_violation(&e) {
                return Err(db(e));
            }
            // PostgreSQL refuses further statements in a failed transaction.
            drop(tx);
            let name_taken =
                Self::exists(&self.read, sql::ITEM_NAME_EXISTS, item.name.as_str()).await?;
            return Err(StoreError::Conflict(if name_taken {
                named("item", &item.name)
            } else {
                format!("item with ID {}", item.id)
            }));
        }
        self.insert_version(&mut tx, item.id, first).await?;
        Ok(tx)
    }

    async fn insert_version(
        &self,
        tx: &mut Transaction<'static, D>,
        item_id: i64,
        v: &SealedVersion,
    ) -> Result<()> {
        let inserted = sqlx::query(sql::INSERT_VERSION)
            .bind(item_id)
            .bind(v.version)
            .bind(v.key_id)
            .bind(v.sealed.as_slice())
            .bind(v.created_ms)
            .execute(&mut **tx)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "version {} of item {item_id}",
                v.version
            ))),
            // The only other foreign key is the item, which the caller holds.
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::NotFound(format!("data key {}", v.key_id)))
            }
            Err(e) => Err(db(e)),
        }
    }
    }
}

impl_sql_store! {
    #[async_trait]
    impl Store for {
    fn backend(&self) -> &'static str {
        D::BACKEND
    }

    fn pool_stats(&self) -> crate::PoolStats {
        fn one<D: Database>(p: &Pool<D>) -> crate::PoolStats {
            let size = p.size();
            let idle = u32::try_from(p.num_idle()).unwrap_or(u32::MAX).min(size);
            crate::PoolStats {
                in_use: size - idle,
                idle,
                max: p.options().get_max_connections(),
            }
        }
        let mut stats = one(&self.read);
        // SQLite has its own writer pool; on PostgreSQL both are one pool.
        if D::BACKEND == "sqlite" {
            let w = one(&self.write);
            stats.in_use += w.in_use;
            stats.idle += w.idle;
            stats.max += w.max;
        }
        stats
    }

    async fn usage_counts(&self, now_ms: i64) -> Result<crate::UsageCounts> {
        let live_tokens: i64 = sqlx::query_scalar(sql::COUNT_LIVE_TOKENS)
            .bind(now_ms)
            .fetch_one(&self.read)
            .await
            .map_err(db)?;
        let (leases_live, leases_failing, leases_revoked): (i64, i64, i64) =
            sqlx::query_as(sql::COUNT_LEASES_BY_STATE)
                .fetch_one(&self.read)
                .await
                .map_err(db)?;
        Ok(crate::UsageCounts {
            live_tokens,
            leases_live,
            leases_failing,
            leases_revoked,
        })
    }

    // ---- metadata and keys ----

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar(sql::GET_META)
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .map_err(db)
    }

    async fn generation(&self) -> Result<i64> {
        sqlx::query_scalar(sql::GET_GENERATION)
            .fetch_one(&self.read)
            .await
            .map_err(db)
    }

    async fn ensure_data_key(
        &self,
        first: (i64, &[u8]),
        created_ms: i64,
        audit: Audit<'_>,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let existing = self.data_keys().await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        let mut tx = self.begin_write().await?;
        // Serialize with other nodes creating the first key: on PostgreSQL
        // the chain lock (a row lock), on SQLite the write lock already held.
        sqlx::query(D::LOCK_AUDIT_HEAD)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let count: i64 = sqlx::query_scalar(sql::COUNT_DATA_KEYS)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if count == 0 {
            let (id, wrapped) = first;
            sqlx::query(sql::INSERT_DATA_KEY)
                .bind(id)
                .bind(wrapped)
                .bind(created_ms)
                .execute(&mut *tx)
                .await
                .map_err(|e| unique_or_db(e, || format!("data key {id}")))?;
            Self::commit_change(tx, audit, false).await?;
        } else {
            drop(tx);
        }
        self.data_keys().await
    }

    async fn data_keys(&self) -> Result<Vec<(i64, Vec<u8>)>> {
        sqlx::query_as(sql::LIST_DATA_KEYS)
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    async fn add_data_key(
        &self,
        id: i64,
        wrapped: &[u8],
        created_ms: i64,
        existing: &[(i64, Vec<u8>)],
        audit: Audit<'_>,
    ) -> Result<()> {
        self.add_data_key_impl(id, wrapped, created_ms, existing, audit)
            .await
    }

    async fn rewrap_keys(&self, rewrap: &keyring::Rewrap<'_>, audit: Audit<'_>) -> Result<()> {
        self.rewrap_keys_impl(rewrap, audit).await
    }

    async fn sealed_rows(
        &self,
        table: keyring::SealedTable,
        not_key_id: i64,
        after: (i64, i32),
        limit: i64,
    ) -> Result<Vec<keyring::SealedRow>> {
        self.sealed_rows_impl(table, not_key_id, after, limit).await
    }

    async fn count_sealed(&self, table: keyring::SealedTable) -> Result<Vec<(i64, i64)>> {
        self.count_sealed_impl(table).await
    }

    async fn reseal_rows(
        &self,
        table: keyring::SealedTable,
        rows: &[keyring::Resealed],
        audit: Audit<'_>,
    ) -> Result<u64> {
        self.reseal_rows_impl(table, rows, audit).await
    }

    async fn bootstrap(
        &self,
        role: &Role,
        am: &AuthMethod,
        assoc: &Association,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // The marker goes first: a second node blocks on it until the first
        // commits, then finds it and changes nothing.
        let marked = sqlx::query(sql::PUT_META_IF_ABSENT)
            .bind(BOOTSTRAPPED)
            .bind(audit.record.time_ms.to_string().as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&marked) == 0 {
            return Ok(false);
        }
        Self::insert_role(&mut tx, role).await?;
        if let Err(e) = Self::insert_auth_method(&mut tx, am).await {
            return Err(e.into_store(|| named("auth method", &am.name)));
        }
        if let Err(e) = Self::insert_association(&mut tx, assoc).await {
            return Err(e.into_store(|| named("association", &assoc.assoc_id)));
        }
        Self::commit_change(tx, audit, true).await?;
        Ok(true)
    }

    async fn load_policy(&self) -> Result<PolicyData> {
        let mut tx = self.read.begin_with(D::BEGIN_SNAPSHOT).await.map_err(db)?;
        let generation: i64 = sqlx::query_scalar(sql::GET_GENERATION)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let methods: Vec<rows::AuthMethodRow> = sqlx::query_as(sql::LIST_AUTH_METHODS)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let roles: Vec<rows::RoleRuleRow> = sqlx::query_as(sql::LIST_ROLES)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let assocs: Vec<rows::AssociationRow> = sqlx::query_as(sql::LIST_ASSOCIATIONS)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(PolicyData {
            generation,
            auth_methods: rows::all(methods, rows::auth_method)?,
            roles: rows::roles(roles)?,
            associations: rows::all(assocs, rows::association)?,
        })
    }

    // ---- auth methods ----

    async fn create_auth_method(&self, am: &AuthMethod, audit: Audit<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        match Self::insert_auth_method(&mut tx, am).await {
            Ok(()) => Self::commit_change(tx, audit, true).await,
            Err(InsertError::Sql(e)) if is_unique_violation(&e) => {
                // PostgreSQL refuses further statements in a failed transaction.
                drop(tx);
                // Name or access ID? Ask, rather than parse the error text.
                let what =
                    if Self::exists(&self.read, sql::AUTH_METHOD_EXISTS, am.name.as_str()).await? {
                        named("auth method", &am.name)
                    } else {
                        named("auth method with access ID", &am.access_id)
                    };
                Err(StoreError::Conflict(what))
            }
            Err(e) => Err(e.into_store(|| named("auth method", &am.name))),
        }
    }

    async fn get_auth_method(&self, name: &str) -> Result<Option<AuthMethod>> {
        let row: Option<rows::AuthMethodRow> = sqlx::query_as(sql::GET_AUTH_METHOD)
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::auth_method).transpose()
    }

    async fn get_auth_method_by_access_id(&self, access_id: &str) -> Result<Option<AuthMethod>> {
        let row: Option<rows::AuthMethodRow> = sqlx::query_as(sql::GET_AUTH_METHOD_BY_ACCESS_ID)
            .bind(access_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::auth_method).transpose()
    }

    async fn list_auth_methods(&self) -> Result<Vec<AuthMethod>> {
        let found: Vec<rows::AuthMethodRow> = sqlx::query_as(sql::LIST_AUTH_METHODS)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::auth_method)
    }

    async fn delete_auth_method(&self, name: &str, audit: Audit<'_>) -> Result<bool> {
        self.delete_keyed(sql::DELETE_AUTH_METHOD, name, audit, true)
            .await
    }

    async fn update_auth_method(
        &self,
        name: &str,
        expected_modified_ms: i64,
        am: &AuthMethod,
        audit: Audit<'_>,
    ) -> Result<()> {
        let bound_ips = rows::to_json("bound IPs", &am.bound_ips)?;
        let config = rows::to_json("auth method config", &am.config)?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::UPDATE_AUTH_METHOD)
            .bind(name)
            .bind(am.name.as_str())
            .bind(am.description.as_str())
            .bind(am.access_expires_ms)
            .bind(bound_ips.as_str())
            .bind(am.token_ttl_secs)
            .bind(am.force_sub_claims)
            .bind(config.as_str())
            .bind(am.modified_ms)
            .bind(expected_modified_ms)
            .bind(am.access_id.as_str())
            .execute(&mut *tx)
            .await;
        match done {
            Ok(r) if D::rows_affected(&r) == 1 => Self::commit_change(tx, audit, true).await,
            Ok(_) => {
                drop(tx);
                Err(
                    if Self::exists(&self.read, sql::AUTH_METHOD_EXISTS, name).await? {
                        StoreError::Conflict(changed("auth method", name))
                    } else {
                        StoreError::NotFound(named("auth method", name))
                    },
                )
            }
            Err(e) => {
                drop(tx);
                Err(unique_or_db(e, || named("auth method", &am.name)))
            }
        }
    }

    async fn reset_access_key(
        &self,
        name: &str,
        access_id: &str,
        access_key_hash: &[u8],
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::SET_ACCESS_KEY_HASH)
            .bind(name)
            .bind(access_id)
            .bind(access_key_hash)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, true).await?;
        Ok(true)
    }

    // ---- roles, rules, associations ----

    async fn create_role(&self, role: &Role, audit: Audit<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::insert_role(&mut tx, role).await?;
        Self::commit_change(tx, audit, true).await
    }

    async fn get_role(&self, name: &str) -> Result<Option<Role>> {
        let found: Vec<rows::RoleRuleRow> = sqlx::query_as(sql::GET_ROLE)
            .bind(name)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        Ok(rows::roles(found)?.pop())
    }

    async fn list_roles(&self) -> Result<Vec<Role>> {
        let found: Vec<rows::RoleRuleRow> = sqlx::query_as(sql::LIST_ROLES)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::roles(found)
    }

    async fn delete_role(&self, name: &str, audit: Audit<'_>) -> Result<bool> {
        self.delete_keyed(sql::DELETE_ROLE, name, audit, true).await
    }

    async fn update_role(
        &self,
        name: &str,
        expected_modified_ms: i64,
        role: &Role,
        audit: Audit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::UPDATE_ROLE)
            .bind(name)
            .bind(role.name.as_str())
            .bind(role.description.as_str())
            .bind(role.audit_access.as_str())
            .bind(role.modified_ms)
            .bind(expected_modified_ms)
            .execute(&mut *tx)
            .await;
        match done {
            Ok(r) if D::rows_affected(&r) == 1 => Self::commit_change(tx, audit, true).await,
            Ok(_) => {
                drop(tx);
                Err(
                    if Self::exists(&self.read, sql::ROLE_EXISTS, name).await? {
                        StoreError::Conflict(changed("role", name))
                    } else {
                        StoreError::NotFound(named("role", name))
                    },
                )
            }
            Err(e) => {
                drop(tx);
                Err(unique_or_db(e, || named("role", &role.name)))
            }
        }
    }

    async fn set_role_rule(
        &self,
        role: &str,
        rule: &Rule,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let touched = sqlx::query(sql::TOUCH_ROLE)
            .bind(role)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&touched) == 0 {
            return Err(StoreError::NotFound(named("role", role)));
        }
        sqlx::query(sql::UPSERT_ROLE_RULE)
            .bind(role)
            .bind(rule.rule_type.as_str())
            .bind(rule.path.as_str())
            .bind(rows::caps_bits(rule.caps))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Self::commit_change(tx, audit, true).await
    }

    async fn delete_role_rule(
        &self,
        role: &str,
        rule_type: RuleType,
        path: &str,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::DELETE_ROLE_RULE)
            .bind(role)
            .bind(rule_type.as_str())
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, true).await?;
        Ok(true)
    }

    async fn create_association(&self, assoc: &Association, audit: Audit<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        match Self::insert_association(&mut tx, assoc).await {
            Ok(()) => Self::commit_change(tx, audit, true).await,
            Err(InsertError::Sql(e)) if is_foreign_key_violation(&e) => {
                drop(tx);
                Err(self
                    .missing_role_or_method(&assoc.role_name, &assoc.auth_method_name)
                    .await?)
            }
            Err(e) => Err(e.into_store(|| named("association", &assoc.assoc_id))),
        }
    }

    async fn delete_association(&self, assoc_id: &str, audit: Audit<'_>) -> Result<bool> {
        self.delete_keyed(sql::DELETE_ASSOCIATION, assoc_id, audit, true)
            .await
    }

    async fn update_association(
        &self,
        assoc_id: &str,
        sub_claims: &coffer_core::subclaims::SubClaims,
        case_sensitive: bool,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let claims = rows::to_json("sub-claims", sub_claims)?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::UPDATE_ASSOCIATION)
            .bind(assoc_id)
            .bind(claims.as_str())
            .bind(case_sensitive)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, true).await?;
        Ok(true)
    }

    async fn list_associations(&self) -> Result<Vec<Association>> {
        let found: Vec<rows::AssociationRow> = sqlx::query_as(sql::LIST_ASSOCIATIONS)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::association)
    }

    // ---- items ----

    async fn create_item(
        &self,
        item: &Item,
        first: &SealedVersion,
        audit: Audit<'_>,
    ) -> Result<()> {
        let tx = self.begin_item(item, first).await?;
        Self::commit_change(tx, audit, false).await
    }

    async fn get_item(&self, name: &str) -> Result<Option<Item>> {
        let row: Option<D::Row> = sqlx::query(sql::GET_ITEM)
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(Self::item_row).transpose()
    }

    async fn get_item_value(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<Option<(Item, SealedVersion)>> {
        let row: Option<D::Row> = sqlx::query(sql::GET_ITEM_VALUE)
            .bind(name)
            .bind(version)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let item = Self::item_row(&row)?;
        let at = rows::ITEM_COLUMNS;
        let value = SealedVersion {
            version: row.try_get(at).map_err(db)?,
            key_id: row.try_get(at + 1).map_err(db)?,
            sealed: row.try_get(at + 2).map_err(db)?,
            created_ms: row.try_get(at + 3).map_err(db)?,
        };
        Ok(Some((item, value)))
    }

    async fn list_versions(&self, item_id: i64) -> Result<Vec<VersionInfo>> {
        let found: Vec<(i32, i64)> = sqlx::query_as(sql::LIST_VERSIONS)
            .bind(item_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        Ok(found
            .into_iter()
            .map(|(version, created_ms)| VersionInfo {
                version,
                created_ms,
            })
            .collect())
    }

    async fn add_version(
        &self,
        item_id: i64,
        expected_highest: i32,
        v: &SealedVersion,
        keep: i32,
        audit: Audit<'_>,
    ) -> Result<()> {
        let new_last = expected_highest
            .checked_add(1)
            .filter(|n| *n == v.version)
            .ok_or_else(|| {
                StoreError::Conflict(format!("version {} of item {item_id}", v.version))
            })?;
        let mut tx = self.begin_write().await?;
        let advanced = sqlx::query(sql::ADVANCE_LAST_VERSION)
            .bind(item_id)
            .bind(expected_highest)
            .bind(new_last)
            .bind(v.created_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&advanced) == 0 {
            return Err(
                if Self::exists(&mut *tx, sql::ITEM_ID_EXISTS, item_id).await? {
                    // Somebody else moved highest_version first.
                    StoreError::Conflict(format!("version {new_last} of item {item_id}"))
                } else {
                    StoreError::NotFound(format!("item {item_id}"))
                },
            );
        }
        self.insert_version(&mut tx, item_id, v).await?;
        if keep > 0 {
            sqlx::query(sql::PRUNE_VERSIONS)
                .bind(item_id)
                .bind(i64::from(keep) - 1)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        Self::commit_change(tx, audit, false).await
    }

    async fn list_items(
        &self,
        prefix: &str,
        after_name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Item>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        // Names are never empty, so "after the empty name" is "from the start".
        let after = after_name.unwrap_or("");
        let upper = rows::prefix_upper_bound(prefix);
        let query = match upper.as_deref() {
            Some(upper) => sqlx::query(sql::LIST_ITEMS)
                .bind(prefix)
                .bind(after)
                .bind(upper),
            None => sqlx::query(sql::LIST_ITEMS_UNBOUNDED)
                .bind(prefix)
                .bind(after),
        };
        let found: Vec<D::Row> = query.bind(limit).fetch_all(&self.read).await.map_err(db)?;
        found.iter().map(Self::item_row).collect()
    }

    async fn delete_item(&self, item_id: i64, audit: Audit<'_>) -> Result<bool> {
        self.delete_keyed(sql::DELETE_ITEM, item_id, audit, false)
            .await
    }

    async fn delete_version(&self, item_id: i64, version: i32, audit: Audit<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // Lock the item first so a concurrent add_version cannot slip in
        // between reading the remaining versions and moving last_version.
        let last: Option<i32> = sqlx::query_scalar(D::LOCK_ITEM)
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(last) = last else {
            return Ok(false);
        };
        let deleted = sqlx::query(sql::DELETE_VERSION)
            .bind(item_id)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&deleted) == 0 {
            return Ok(false);
        }
        let highest: Option<i32> = sqlx::query_scalar(sql::MAX_VERSION)
            .bind(item_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        match highest {
            None => {
                sqlx::query(sql::DELETE_ITEM)
                    .bind(item_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            Some(highest) if highest != last => {
                // highest_version stays: the deleted number is never reused.
                sqlx::query(sql::SET_LAST_VERSION)
                    .bind(item_id)
                    .bind(highest)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            Some(_) => {}
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    async fn renumber_item(
        &self,
        old_id: i64,
        new_id: i64,
        versions: &[SealedVersion],
        audit: Audit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Lock the item so no update slips in between.
        let last: Option<i32> = sqlx::query_scalar(D::LOCK_ITEM)
            .bind(old_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if last.is_none() {
            return Err(StoreError::NotFound(format!("item {old_id}")));
        }
        let stored: Vec<(i32, i64)> = sqlx::query_as(sql::LIST_VERSIONS)
            .bind(old_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let mut given: Vec<i32> = versions.iter().map(|v| v.version).collect();
        given.sort_unstable();
        if stored.iter().map(|(v, _)| *v).collect::<Vec<_>>() != given {
            return Err(StoreError::Conflict(format!(
                "versions of item {old_id} (changed while it was being renumbered)"
            )));
        }
        sqlx::query(sql::DELETE_ITEM_VERSIONS)
            .bind(old_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(sql::SET_ITEM_ID)
            .bind(old_id)
            .bind(new_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_or_db(e, || format!("item with ID {new_id}")))?;
        for v in versions {
            self.insert_version(&mut tx, new_id, v).await?;
        }
        Self::commit_change(tx, audit, false).await
    }

    async fn items_with_id_at_least(&self, min_id: i64) -> Result<Vec<Item>> {
        let found: Vec<D::Row> = sqlx::query(sql::ITEMS_WITH_ID_AT_LEAST)
            .bind(min_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        found.iter().map(Self::item_row).collect()
    }

    async fn item_versions(&self, item_id: i64) -> Result<Vec<SealedVersion>> {
        let found: Vec<(i32, i64, Vec<u8>, i64)> = sqlx::query_as(sql::ITEM_VERSIONS_SEALED)
            .bind(item_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        Ok(found
            .into_iter()
            .map(|(version, key_id, sealed, created_ms)| SealedVersion {
                version,
                key_id,
                sealed,
                created_ms,
            })
            .collect())
    }

    async fn update_item_meta(
        &self,
        item_id: i64,
        change: &ItemChange,
        audit: Audit<'_>,
    ) -> Result<Item> {
        let mut tx = self.begin_write().await?;
        let locked: Option<i32> = sqlx::query_scalar(D::LOCK_ITEM)
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let row: Option<D::Row> = match locked {
            Some(_) => sqlx::query(sql::GET_LIVE_ITEM_BY_ID)
                .bind(item_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?,
            None => None,
        };
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("item {item_id}")));
        };
        let mut item = Self::item_row(&row)?;
        let old_name = item.name.clone();
        for t in &change.add_tags {
            if !item.tags.contains(t) {
                item.tags.push(t.clone());
            }
        }
        item.tags.retain(|t| !change.rm_tags.contains(t));
        item.tags.sort();
        if change.max_tags > 0 && item.tags.len() > change.max_tags {
            return Err(StoreError::Limit(format!(
                "item {old_name:?} would have {} tags: at most {} are allowed",
                item.tags.len(),
                change.max_tags
            )));
        }
        if let Some(n) = &change.new_name {
            item.name = n.clone();
        }
        if let Some(d) = &change.description {
            item.description = d.clone();
        }
        if let Some(m) = change.max_versions {
            item.max_versions = m;
        }
        item.modified_ms = change.modified_ms;
        let tags = rows::to_json("tags", &item.tags)?;
        let updated = sqlx::query(sql::UPDATE_ITEM_META)
            .bind(item_id)
            .bind(item.name.as_str())
            .bind(item.description.as_str())
            .bind(tags.as_str())
            .bind(item.max_versions)
            .bind(item.modified_ms)
            .execute(&mut *tx)
            .await;
        match updated {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(named("item", &item.name)));
            }
            Err(e) => return Err(db(e)),
        }
        if item.name != old_name {
            for statement in [sql::RENAME_LEASE_ITEM, sql::RENAME_CERT_ISSUER] {
                sqlx::query(statement)
                    .bind(item_id)
                    .bind(item.name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        if change.max_versions.is_some() && change.keep_versions > 0 {
            sqlx::query(sql::PRUNE_VERSIONS)
                .bind(item_id)
                .bind(i64::from(change.keep_versions) - 1)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(item)
    }

    async fn mark_items_deleted(
        &self,
        item_ids: &[i64],
        deletion_ms: i64,
        audit: Audit<'_>,
    ) -> Result<()> {
        if deletion_ms <= 0 {
            return Err(StoreError::Backend(
                "a pending deletion needs a deletion time".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        for id in item_ids {
            let done = sqlx::query(sql::MARK_ITEM_DELETED)
                .bind(*id)
                .bind(deletion_ms)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            if D::rows_affected(&done) == 0 {
                return Err(StoreError::Conflict(format!(
                    "a pending deletion of item {id}"
                )));
            }
        }
        Self::commit_change(tx, audit, false).await
    }

    async fn restore_item(&self, item_id: i64, audit: Audit<'_>) -> Result<bool> {
        self.delete_keyed(sql::RESTORE_ITEM, item_id, audit, false)
            .await
    }

    async fn due_deletions(&self, now_ms: i64, limit: i64) -> Result<Vec<Item>> {
        let found: Vec<D::Row> = sqlx::query(sql::DUE_DELETIONS)
            .bind(now_ms)
            .bind(limit.clamp(0, 10_000))
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        found.iter().map(Self::item_row).collect()
    }

    async fn purge_item(&self, item_id: i64, now_ms: i64, audit: Audit<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::PURGE_ITEM)
            .bind(item_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    // ---- tokens ----

    async fn get_token(&self, token_hash: &[u8]) -> Result<Option<TokenRecord>> {
        let row: Option<rows::TokenRow> = sqlx::query_as(sql::GET_TOKEN)
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::token).transpose()
    }

    async fn revoke_token(&self, token_hash: &[u8], audit: Audit<'_>) -> Result<bool> {
        self.delete_keyed(sql::DELETE_TOKEN, token_hash, audit, true)
            .await
    }

    async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64> {
        let done = sqlx::query(sql::PURGE_EXPIRED_TOKENS)
            .bind(now_ms)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(D::rows_affected(&done))
    }

    // ---- single-use login nonces ----

    async fn consume_login_nonce(
        &self,
        nonce_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        // An expired nonce is refused here, whatever the caller checked
        // before: a replay that passed its expiry check just before the
        // expiry must not get in after it.
        if expires_ms <= now_ms {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(sql::PURGE_LOGIN_NONCES)
            .bind(now_ms.saturating_sub(crate::LOGIN_NONCE_PURGE_GRACE_MS))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let done = sqlx::query(sql::INSERT_LOGIN_NONCE)
            .bind(nonce_hash)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(D::rows_affected(&done) == 1)
    }

    // ---- Universal Identity tokens ----

    async fn insert_uid_token(&self, t: &UidToken, audit: Audit<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::lock_uid_tree(&mut tx, &t.access_id).await?;
        if let Some(parent) = &t.parent_id {
            let live: Option<i32> = sqlx::query_scalar(sql::LIVE_UID_PARENT)
                .bind(parent.as_str())
                .bind(t.access_id.as_str())
                .bind(t.created_ms)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if live.is_none() {
                return Err(StoreError::NotFound(named("live parent UID token", parent)));
            }
        }
        let inserted = sqlx::query(sql::INSERT_UID_TOKEN)
            .bind(t.token_id.as_str())
            .bind(t.token_hash.as_slice())
            .bind(t.parent_id.as_deref())
            .bind(t.access_id.as_str())
            .bind(t.depth)
            .bind(t.ttl_secs)
            .bind(t.expires_ms)
            .bind(t.deny_rotate)
            .bind(t.deny_inheritance)
            .bind(t.comment.as_str())
            .bind(t.revoked)
            .bind(t.last_rotated_ms)
            .bind(t.created_ms)
            .bind(t.modified_ms)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => Self::commit_change(tx, audit, false).await,
            // ID or hash: never put the hash in a message.
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(named("UID token", &t.token_id)))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn get_uid_token(&self, token_id: &str) -> Result<Option<UidToken>> {
        let row: Option<rows::UidTokenRow> = sqlx::query_as(sql::GET_UID_TOKEN)
            .bind(token_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::uid_token).transpose()
    }

    async fn get_uid_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<UidToken>> {
        let row: Option<rows::UidTokenRow> = sqlx::query_as(sql::GET_UID_TOKEN_BY_HASH)
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::uid_token).transpose()
    }

    async fn list_uid_tokens(&self, access_id: &str) -> Result<Vec<UidToken>> {
        let found: Vec<rows::UidTokenRow> = sqlx::query_as(sql::LIST_UID_TOKENS)
            .bind(access_id)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::uid_token)
    }

    async fn count_live_uid_tokens(&self, access_id: &str, now_ms: i64) -> Result<i64> {
        sqlx::query_scalar(sql::COUNT_LIVE_UID_TOKENS)
            .bind(access_id)
            .bind(now_ms)
            .fetch_one(&self.read)
            .await
            .map_err(db)
    }

    async fn rotate_uid_token(
        &self,
        token_id: &str,
        old_hash: &[u8],
        new_hash: &[u8],
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        // One statement: the row lock makes it a compare-and-swap (on
        // PostgreSQL a waiting writer re-checks the WHERE clause against
        // the winner's row, whose hash no longer matches).
        let rotated: std::result::Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar(sql::ROTATE_UID_TOKEN)
                .bind(token_id)
                .bind(old_hash)
                .bind(new_hash)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await;
        match rotated {
            Ok(Some(expires)) => {
                Self::commit_change(tx, audit, true).await?;
                Ok(Some(expires))
            }
            Ok(None) => Ok(None),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("UID token".into())),
            Err(e) => Err(db(e)),
        }
    }

    async fn revoke_uid_token(
        &self,
        token_id: &str,
        descendants: bool,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let access_id: Option<String> = sqlx::query_scalar(sql::UID_TOKEN_ACCESS_ID)
            .bind(token_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(access_id) = access_id else {
            return Err(StoreError::NotFound(named("UID token", token_id)));
        };
        // Serialize with insert_uid_token: once the lock is held, every
        // child committed before is visible to the statements below.
        Self::lock_uid_tree(&mut tx, &access_id).await?;
        let (revoke, sessions) = if descendants {
            (sql::REVOKE_UID_SUBTREE, sql::DELETE_UID_SUBTREE_SESSIONS)
        } else {
            (sql::REVOKE_UID_TOKEN, sql::DELETE_UID_SESSIONS)
        };
        let revoked: Vec<String> = sqlx::query_scalar(revoke)
            .bind(token_id)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(sessions)
            .bind(token_id)
            .bind(access_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Self::commit_change(tx, audit, true).await?;
        Ok(revoked)
    }

    // ---- audit ----

    async fn append_audit(
        &self,
        records: &mut [AuditRecord],
        tokens: &[TokenRecord],
        certs: &[IssuedCert],
        sealer: &dyn ChainSealer,
    ) -> Result<()> {
        if records.is_empty() && tokens.is_empty() && certs.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for c in certs {
            Self::insert_cert_in_tx(&mut tx, c).await?;
        }
        for t in tokens {
            sqlx::query(sql::INSERT_TOKEN_IF_METHOD)
                .bind(t.token_hash.as_slice())
                .bind(t.access_id.as_str())
                .bind(t.auth_method_name.as_str())
                .bind(t.identity.as_str())
                .bind(rows::to_json("token claims", &t.claims)?.as_str())
                .bind(t.issued_ms)
                .bind(t.expires_ms)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if !records.is_empty() {
            Self::append_in_tx(&mut tx, records, sealer).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn audit_head(&self) -> Result<ChainHead> {
        let (seq, hash, mac): (i64, Vec<u8>, Vec<u8>) = sqlx::query_as(sql::GET_AUDIT_HEAD)
            .fetch_one(&self.read)
            .await
            .map_err(db)?;
        Ok(ChainHead { seq, hash, mac })
    }

    async fn audit_range(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let found: Vec<rows::AuditRow> = sqlx::query_as(sql::AUDIT_RANGE)
            .bind(after_seq)
            .bind(limit.min(MAX_AUDIT_LIMIT))
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::audit_record)
    }

    async fn audit_checkpoint(&self) -> Result<Option<coffer_core::audit::Checkpoint>> {
        self.checkpoint_on(&self.read).await
    }

    async fn prune_audit(
        &self,
        before_ms: i64,
        max_records: i64,
        audit: Audit<'_>,
    ) -> Result<Option<crate::PrunedRange>> {
        self.prune_audit_batch(before_ms, max_records, audit).await
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        // Only the filters given appear in the statement, so each can use
        // its index (a `$n IS NULL OR ...` form would defeat that).
        let mut qb = QueryBuilder::<D>::new(concat!(sql::audit_select!(), " WHERE a.seq > "));
        qb.push_bind(q.after_seq.unwrap_or(0));
        if let Some(since) = q.since_ms {
            qb.push(" AND a.time_ms >= ").push_bind(since);
        }
        if let Some(until) = q.until_ms {
            qb.push(" AND a.time_ms < ").push_bind(until);
        }
        if let Some(access_id) = &q.access_id {
            qb.push(" AND a.access_id = ").push_bind(access_id.as_str());
        }
        if let Some(identity) = &q.identity {
            qb.push(" AND a.identity = ").push_bind(identity.as_str());
        }
        if let Some(object) = &q.object {
            qb.push(" AND a.object = ").push_bind(object.as_str());
        }
        if let Some(operation) = &q.operation {
            qb.push(" AND a.operation = ").push_bind(operation.as_str());
        }
        if let Some(outcome) = q.outcome {
            qb.push(" AND a.outcome = ").push_bind(outcome.as_str());
        }
        let limit = if q.limit <= 0 {
            DEFAULT_AUDIT_LIMIT
        } else {
            q.limit.min(MAX_AUDIT_LIMIT)
        };
        qb.push(" ORDER BY a.seq LIMIT ").push_bind(limit);
        let found: Vec<rows::AuditRow> = qb
            .build_query_as()
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::audit_record)
    }

    // ---- targets ----

    async fn create_target(&self, t: &Target, audit: Audit<'_>) -> Result<()> {
        let details = rows::to_json("target details", &t.details)?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(sql::INSERT_TARGET)
            .bind(t.id)
            .bind(t.name.as_str())
            .bind(t.target_type.as_str())
            .bind(t.description.as_str())
            .bind(details.as_str())
            .bind(t.key_id)
            .bind(t.sealed.as_slice())
            .bind(t.version)
            .bind(t.created_ms)
            .bind(t.modified_ms)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => Self::commit_change(tx, audit, false).await,
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(named("target", &t.name)))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn update_target(&self, t: &Target, audit: Audit<'_>) -> Result<()> {
        let details = rows::to_json("target details", &t.details)?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::UPDATE_TARGET)
            .bind(t.name.as_str())
            .bind(t.description.as_str())
            .bind(details.as_str())
            .bind(t.key_id)
            .bind(t.sealed.as_slice())
            .bind(t.version)
            .bind(t.modified_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Err(
                if Self::exists(&mut *tx, sql::TARGET_NAME_EXISTS, t.name.as_str()).await? {
                    StoreError::Conflict(format!("version {} of target {:?}", t.version, t.name))
                } else {
                    StoreError::NotFound(named("target", &t.name))
                },
            );
        }
        Self::commit_change(tx, audit, false).await
    }

    async fn get_target(&self, name: &str) -> Result<Option<Target>> {
        let row: Option<rows::TargetRow> = sqlx::query_as(sql::GET_TARGET)
            .bind(name)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::target).transpose()
    }

    async fn list_targets(&self) -> Result<Vec<Target>> {
        let found: Vec<rows::TargetRow> = sqlx::query_as(sql::LIST_TARGETS)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::target)
    }

    async fn target_items(&self, name: &str) -> Result<Vec<String>> {
        sqlx::query_scalar(sql::TARGET_ITEMS)
            .bind(name)
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    async fn delete_target(&self, name: &str, force: bool, audit: Audit<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if !force {
            let users: Vec<String> = sqlx::query_scalar(sql::TARGET_ITEMS)
                .bind(name)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            if !users.is_empty() {
                return Err(StoreError::Limit(format!(
                    "target {name:?} is used by {}: delete or move those items first, or pass force-deletion=true",
                    users.join(", ")
                )));
            }
        }
        let done = sqlx::query(sql::DELETE_TARGET)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    // ---- producers ----

    async fn create_producer(
        &self,
        item: &Item,
        first: &SealedVersion,
        p: &Producer,
        audit: Audit<'_>,
    ) -> Result<()> {
        let settings = rows::to_json("producer settings", &p.settings)?;
        let mut tx = self.begin_item(item, first).await?;
        sqlx::query(sql::INSERT_PRODUCER)
            .bind(item.id)
            .bind(p.target_name.as_deref())
            .bind(settings.as_str())
            .bind(p.status.as_str())
            .bind(p.pending_version)
            .bind(p.last_rotation_ms)
            .bind(p.next_rotation_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Self::commit_change(tx, audit, false).await
    }

    async fn get_producer(&self, item_id: i64) -> Result<Option<Producer>> {
        let row: Option<rows::ProducerRow> = sqlx::query_as(sql::GET_PRODUCER)
            .bind(item_id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::producer).transpose()
    }

    async fn update_producer(
        &self,
        item: &Item,
        v: Option<&SealedVersion>,
        p: &Producer,
        keep: i32,
        audit: Audit<'_>,
    ) -> Result<()> {
        let settings = rows::to_json("producer settings", &p.settings)?;
        let mut tx = self.begin_write().await?;
        if let Some(v) = v {
            if v.version != item.highest_version + 1 {
                return Err(StoreError::Conflict(format!(
                    "version {} of item {:?}",
                    v.version, item.name
                )));
            }
            let advanced = sqlx::query(sql::ADVANCE_LAST_VERSION)
                .bind(item.id)
                .bind(item.highest_version)
                .bind(v.version)
                .bind(v.created_ms)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            if D::rows_affected(&advanced) == 0 {
                return Err(StoreError::Conflict(format!(
                    "version {} of item {:?}",
                    v.version, item.name
                )));
            }
            self.insert_version(&mut tx, item.id, v).await?;
            if keep > 0 {
                sqlx::query(sql::PRUNE_VERSIONS)
                    .bind(item.id)
                    .bind(i64::from(keep) - 1)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        sqlx::query(sql::TOUCH_ITEM)
            .bind(item.id)
            .bind(item.description.as_str())
            .bind(rows::to_json("tags", &item.tags)?.as_str())
            .bind(item.modified_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let done = sqlx::query(sql::UPDATE_PRODUCER)
            .bind(item.id)
            .bind(p.target_name.as_deref())
            .bind(settings.as_str())
            .bind(p.status.as_str())
            .bind(p.next_rotation_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Err(StoreError::NotFound(named("item", &item.name)));
        }
        Self::commit_change(tx, audit, false).await
    }

    async fn due_rotations(&self, now_ms: i64, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(sql::DUE_ROTATIONS)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    async fn claim_producer(
        &self,
        item_id: i64,
        node: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(sql::CLAIM_PRODUCER)
            .bind(item_id)
            .bind(node)
            .bind(until_ms)
            .bind(now_ms)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(D::rows_affected(&done) == 1)
    }

    async fn release_producer(&self, item_id: i64, node: &str) -> Result<()> {
        sqlx::query(sql::RELEASE_PRODUCER)
            .bind(item_id)
            .bind(node)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn add_pending_version(
        &self,
        item_id: i64,
        expected_highest: i32,
        v: &SealedVersion,
        audit: Audit<'_>,
    ) -> Result<()> {
        if v.version != expected_highest + 1 {
            return Err(StoreError::Conflict(format!(
                "version {} of item {item_id}",
                v.version
            )));
        }
        let mut tx = self.begin_write().await?;
        let pending = sqlx::query(sql::SET_PENDING)
            .bind(item_id)
            .bind(v.version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&pending) == 0 {
            return Err(StoreError::Conflict(format!(
                "a pending rotation of item {item_id}"
            )));
        }
        let advanced = sqlx::query(sql::ADVANCE_HIGHEST_VERSION)
            .bind(item_id)
            .bind(expected_highest)
            .bind(v.version)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&advanced) == 0 {
            return Err(StoreError::Conflict(format!(
                "version {} of item {item_id}",
                v.version
            )));
        }
        self.insert_version(&mut tx, item_id, v).await?;
        Self::commit_change(tx, audit, false).await
    }

    async fn promote_pending(
        &self,
        item_id: i64,
        node: &str,
        version: i32,
        keep: i32,
        status: &str,
        now_ms: i64,
        next_rotation_ms: i64,
        audit: Audit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::PROMOTE_PENDING)
            .bind(item_id)
            .bind(version)
            .bind(status)
            .bind(now_ms)
            .bind(next_rotation_ms)
            .bind(node)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Err(StoreError::Conflict(format!(
                "pending version {version} of item {item_id}"
            )));
        }
        sqlx::query(sql::SET_ITEM_LAST_VERSION)
            .bind(item_id)
            .bind(version)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if keep > 0 {
            sqlx::query(sql::PRUNE_VERSIONS)
                .bind(item_id)
                .bind(i64::from(keep) - 1)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        Self::commit_change(tx, audit, false).await
    }

    async fn set_producer_status(
        &self,
        item_id: i64,
        node: &str,
        status: &str,
        next_rotation_ms: i64,
        drop_pending: Option<i32>,
        audit: Audit<'_>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if let Some(v) = drop_pending {
            sqlx::query(sql::DELETE_VERSION)
                .bind(item_id)
                .bind(v)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let done = sqlx::query(sql::SET_PRODUCER_STATUS)
            .bind(item_id)
            .bind(status)
            .bind(next_rotation_ms)
            .bind(drop_pending.is_some())
            .bind(node)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Err(StoreError::Conflict(format!(
                "item {item_id} (held by this node)"
            )));
        }
        Self::commit_change(tx, audit, false).await
    }

    // ---- leases ----

    async fn insert_lease(&self, l: &Lease, max_live: i64, audit: Audit<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Serialize issuers of one item (on PostgreSQL; SQLite's write lock
        // already does) so the cap holds across nodes.
        let held: Option<i32> = sqlx::query_scalar(D::LOCK_ITEM)
            .bind(l.item_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if held.is_none() {
            return Err(StoreError::NotFound(named("item", &l.item_name)));
        }
        let live: i64 = sqlx::query_scalar(sql::COUNT_LIVE_LEASES_OF_ITEM)
            .bind(l.item_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if live >= max_live {
            return Err(StoreError::Limit(format!(
                "dynamic secret {:?} has {live} live credentials, its limit (max-leases {max_live}): revoke some (dynamic-secret-tmp-creds-delete) or raise the limit",
                l.item_name
            )));
        }
        let inserted = sqlx::query(sql::INSERT_LEASE)
            .bind(l.id.as_str())
            .bind(l.item_id)
            .bind(l.item_name.as_str())
            .bind(l.access_id.as_str())
            .bind(l.identity.as_str())
            .bind(l.token_hash.as_deref())
            .bind(l.created_ms)
            .bind(l.expires_ms)
            .bind(l.state.as_str())
            .bind(l.attempts)
            .bind(l.next_attempt_ms)
            .bind(l.last_error.as_str())
            .bind(l.revoked_ms)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => Self::commit_change(tx, audit, false).await,
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("lease {:?}", l.id)))
            }
            Err(e) => Err(db(e)),
        }
    }

    async fn get_lease(&self, id: &str) -> Result<Option<Lease>> {
        let row: Option<rows::LeaseRow> = sqlx::query_as(sql::GET_LEASE)
            .bind(id)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::lease).transpose()
    }

    async fn list_leases(&self, f: LeaseFilter) -> Result<Vec<Lease>> {
        let limit = if f.limit <= 0 {
            10_000
        } else {
            f.limit.min(100_000)
        };
        let found: Vec<rows::LeaseRow> = sqlx::query_as(sql::LIST_LEASES)
            .bind(f.item_id)
            .bind(i64::from(f.live_only))
            .bind(i64::from(f.failing_only))
            .bind(limit)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::lease)
    }

    async fn count_live_leases(&self) -> Result<i64> {
        sqlx::query_scalar(sql::COUNT_LEASES)
            .fetch_one(&self.read)
            .await
            .map_err(db)
    }

    async fn set_lease_expiry(
        &self,
        id: &str,
        expires_ms: i64,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::SET_LEASE_EXPIRY)
            .bind(id)
            .bind(expires_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    async fn delete_producer_item(&self, item_id: i64, audit: Audit<'_>) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let held: Option<i32> = sqlx::query_scalar(D::LOCK_ITEM)
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if held.is_none() {
            return Ok(false);
        }
        let live: i64 = sqlx::query_scalar(sql::COUNT_LIVE_LEASES_OF_ITEM)
            .bind(item_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if live > 0 {
            return Err(StoreError::Limit(format!(
                "the dynamic secret still has {live} live credentials (being issued or revoked right now): retry"
            )));
        }
        sqlx::query(sql::DELETE_ITEM)
            .bind(item_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    async fn claim_leases(
        &self,
        scope: LeaseScope<'_>,
        node: &str,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<Lease>> {
        let (kind, item_id, id) = match scope {
            LeaseScope::Due => (0_i64, 0_i64, ""),
            LeaseScope::Item(item) => (1, item, ""),
            LeaseScope::One(id) => (2, 0, id),
        };
        let found: Vec<rows::LeaseRow> = sqlx::query_as(D::CLAIM_LEASES)
            .bind(now_ms)
            .bind(kind)
            .bind(item_id)
            .bind(id)
            .bind(limit)
            .bind(node)
            .bind(until_ms)
            .fetch_all(&self.write)
            .await
            .map_err(db)?;
        rows::all(found, rows::lease)
    }

    async fn finish_lease(
        &self,
        id: &str,
        node: &str,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::FINISH_LEASE)
            .bind(id)
            .bind(node)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    async fn fail_lease(
        &self,
        id: &str,
        node: &str,
        error: &str,
        next_attempt_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::FAIL_LEASE)
            .bind(id)
            .bind(node)
            .bind(error)
            .bind(next_attempt_ms)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }

    // ---- issued certificates ----

    async fn insert_certificate(&self, c: &IssuedCert, audit: Audit<'_>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        Self::insert_cert_in_tx(&mut tx, c).await?;
        Self::commit_change(tx, audit, false).await
    }

    async fn get_certificate(&self, issuer_id: i64, serial: &str) -> Result<Option<IssuedCert>> {
        let row: Option<rows::CertRow> = sqlx::query_as(sql::GET_CERT)
            .bind(issuer_id)
            .bind(serial)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.map(rows::cert).transpose()
    }

    async fn list_certificates(&self, f: &CertFilter) -> Result<Vec<IssuedCert>> {
        let limit = if f.limit <= 0 {
            1_000
        } else {
            f.limit.min(10_000)
        };
        let found: Vec<rows::CertRow> = match &f.issuer_name {
            Some(name) => {
                sqlx::query_as(sql::LIST_CERTS_OF_ISSUER)
                    .bind(name.as_str())
                    .bind(i64::from(f.revoked_only))
                    .bind(f.not_expired_at_ms)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await
            }
            None => {
                sqlx::query_as(sql::LIST_CERTS)
                    .bind(i64::from(f.revoked_only))
                    .bind(f.not_expired_at_ms)
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await
            }
        }
        .map_err(db)?;
        rows::all(found, rows::cert)
    }

    async fn revoked_certificates(
        &self,
        signer_key: &str,
        signer_version: i32,
        now_ms: i64,
    ) -> Result<Vec<IssuedCert>> {
        let found: Vec<rows::CertRow> = sqlx::query_as(sql::REVOKED_CERTS_OF_SIGNER)
            .bind(signer_key)
            .bind(signer_version)
            .bind(now_ms)
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows::all(found, rows::cert)
    }

    async fn revoke_certificate(
        &self,
        issuer_id: i64,
        serial: &str,
        now_ms: i64,
        reason: &str,
        audit: Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql::REVOKE_CERT)
            .bind(issuer_id)
            .bind(serial)
            .bind(now_ms)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if D::rows_affected(&done) == 0 {
            return Ok(false);
        }
        Self::commit_change(tx, audit, false).await?;
        Ok(true)
    }
    }
}

/// The meta key marking a bootstrapped store.
pub const BOOTSTRAPPED: &str = "bootstrapped";

/// A failed insert: the database's error (to classify) or an encoding error.
enum InsertError {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for InsertError {
    fn from(e: sqlx::Error) -> Self {
        InsertError::Sql(e)
    }
}

impl From<StoreError> for InsertError {
    fn from(e: StoreError) -> Self {
        InsertError::Store(e)
    }
}

impl InsertError {
    fn into_store(self, what: impl FnOnce() -> String) -> StoreError {
        match self {
            InsertError::Sql(e) => unique_or_db(e, what),
            InsertError::Store(e) => e,
        }
    }
}

// ---- error mapping ----

/// Errors made by [`db`] (see [`crate::error_count`]).
pub(crate) static STORE_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The Conflict text of a compare-and-swap another change won
/// ([`StoreError::Conflict`] appends "already exists").
fn changed(kind: &str, name: &str) -> String {
    format!("a newer version of {kind} {name:?}")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

fn unique_or_db(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(what())
    } else {
        db(e)
    }
}

/// Map a database error to [`StoreError`]. The text is for server logs: it
/// carries the driver's message (SQLite and PostgreSQL put constraint and
/// table names there; values only appear in PostgreSQL's DETAIL, which is
/// not included) and never the bound parameters. Counted in
/// [`STORE_ERRORS`].
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    STORE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => StoreError::Backend(format!("database error {code}: {}", d.message())),
            None => StoreError::Backend(format!("database error: {}", d.message())),
        },
        sqlx::Error::ColumnDecode { index, source } => {
            StoreError::Corrupt(format!("column {index}: {source}"))
        }
        sqlx::Error::Decode(source) => StoreError::Corrupt(source.to_string()),
        sqlx::Error::RowNotFound => StoreError::Corrupt("expected row is missing".into()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Backend("timed out waiting for a database connection".into())
        }
        other => StoreError::Backend(other.to_string()),
    }
}
