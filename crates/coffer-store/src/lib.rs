//! Storage for Coffer, behind one trait ([`Store`]) with two
//! implementations: SQLite (the embedded default, WAL mode) and PostgreSQL
//! (for several Coffer nodes sharing one database).
//!
//! The store never sees plaintext secrets: values arrive sealed
//! ([`SealedVersion`]), access keys and tokens arrive as keyed hashes.
//! Migrations are embedded and run by [`open`].
//!
//! Layout:
//! * `migrations/{sqlite,postgres}/` — the schema (the data model, with comments);
//! * `sql.rs` — every SQL statement, shared by both backends;
//! * `rows.rs` — row tuples and their conversion to and from the core types;
//! * `sql_store.rs` — [`SqlStore`], the one [`Store`] implementation, generic
//!   over the backend's [`Dialect`];
//! * `sqlite.rs`, `postgres.rs` — connection setup and dialect of each backend;
//! * [`conformance`] — the suite every backend must pass.
#![forbid(unsafe_code)]

use std::sync::Arc;

use async_trait::async_trait;
use coffer_core::audit::{AuditRecord, ChainHead, ChainSealer, Outcome};
use coffer_core::model::{
    Association, AuthMethod, IssuedCert, Item, Lease, Producer, Role, SealedVersion, Target,
    TokenRecord, UidToken, VersionInfo,
};
use coffer_core::policy::{Rule, RuleType};
use coffer_core::subclaims::SubClaims;
use thiserror::Error;

pub mod backup;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod migrations;
mod postgres;
mod rows;
mod sql;
mod sql_store;
mod sqlite;

pub use postgres::PgStore;
pub use sql_store::keyring::{
    DERIVATION_KEY, Resealed, Rewrap, SealedRow, SealedTable, TEST_STEP_DELAY_ENV,
    test_step_delay_ms,
};
pub use sql_store::{BOOTSTRAPPED, Dialect, SqlStore};
pub use sqlite::SqliteStore;

/// How long a used login nonce is kept after its expiry before
/// [`Store::consume_login_nonce`] purges it. Each node compares expiries
/// with its own clock: a node whose clock runs ahead would otherwise purge
/// a nonce that a node whose clock runs behind still takes for unexpired,
/// and that node's insert would succeed, i.e. accept a replay. Keeping rows
/// this long covers clock skew between nodes up to the grace (NTP keeps
/// real skew far below it).
pub const LOGIN_NONCE_PURGE_GRACE_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique name/ID is already taken. The message names the object.
    #[error("{0} already exists")]
    Conflict(String),
    /// A referenced object does not exist. The message names it.
    #[error("{0} not found")]
    NotFound(String),
    /// The database failed. The detail is for server logs only.
    #[error("storage error: {0}")]
    Backend(String),
    /// A limit was reached (e.g. live leases of a dynamic secret). The
    /// message says which.
    #[error("{0}")]
    Limit(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The storage URL or configuration is wrong.
    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Filter for audit queries. All fields are optional; `limit` is capped.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Records with `time_ms >= since_ms`.
    pub since_ms: Option<i64>,
    /// Records with `time_ms < until_ms`.
    pub until_ms: Option<i64>,
    pub access_id: Option<String>,
    /// Exact identity (with `access_id`: one job of a shared JWT method).
    pub identity: Option<String>,
    /// Exact object name.
    pub object: Option<String>,
    pub operation: Option<String>,
    pub outcome: Option<Outcome>,
    /// Return records with `seq` greater than this (pagination).
    pub after_seq: Option<i64>,
    /// At most this many records (capped at 10 000); `<= 0` means 1 000.
    pub limit: i64,
}

/// The audit record of the request that makes a change.
///
/// Every method of [`Store`] that changes something takes one and appends
/// it to the audit chain **in the change's own transaction**: a committed
/// change always has its record, and a change that fails leaves no record
/// (the caller then records the failure through [`Store::append_audit`]).
/// On success the record's `seq`, `prev_hash` and `hash` are set; on any
/// error `seq` is 0 again. One record carries at most one change: a record
/// whose `seq` is already set is refused.
pub struct Audit<'a> {
    pub(crate) record: &'a mut AuditRecord,
    pub(crate) sealer: &'a dyn ChainSealer,
}

impl<'a> Audit<'a> {
    pub fn new(record: &'a mut AuditRecord, sealer: &'a dyn ChainSealer) -> Self {
        Audit { record, sealer }
    }
}

/// What [`Store::update_item_meta`] changes; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ItemChange {
    pub new_name: Option<String>,
    pub description: Option<String>,
    /// Tags added, then tags removed.
    pub add_tags: Vec<String>,
    pub rm_tags: Vec<String>,
    /// Most tags an item may have afterwards (0: no limit).
    pub max_tags: usize,
    /// 0 = the server default.
    pub max_versions: Option<i32>,
    /// Versions kept when `max_versions` is set (the default resolved).
    pub keep_versions: i32,
    pub modified_ms: i64,
}

/// Which leases [`Store::claim_leases`] may take.
#[derive(Debug, Clone, Copy)]
pub enum LeaseScope<'a> {
    /// Expired ones, and those tied to a session token that is gone.
    Due,
    /// Every live lease of an item (deleting it, or revoke-all).
    Item(i64),
    /// One live lease.
    One(&'a str),
}

/// Which leases [`Store::list_leases`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaseFilter {
    /// Only this item's (0 = every item).
    pub item_id: i64,
    pub live_only: bool,
    /// Only leases whose revocation failed at least once.
    pub failing_only: bool,
    pub limit: i64,
}

/// Which issued-certificate records to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    /// Only this issuer's (by name; `None` = every issuer).
    pub issuer_name: Option<String>,
    /// Only revoked ones.
    pub revoked_only: bool,
    /// Only those expiring at or after this time (0 = also expired ones).
    pub not_expired_at_ms: i64,
    /// At most this many (capped at 10 000; `<= 0` means 1 000).
    pub limit: i64,
}

/// Connection pool use of a store, for metrics (SQLite: readers and the
/// writer added up; PostgreSQL: its one pool).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections handed out to a query or transaction right now.
    pub in_use: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// Most connections the pool(s) may open.
    pub max: u32,
}

/// What a periodic task reads for gauges: a few `COUNT`s, no content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Session tokens not expired at the time asked.
    pub live_tokens: i64,
    /// Live leases whose revocation never failed.
    pub leases_live: i64,
    /// Live leases whose revocation failed at least once (retried later).
    pub leases_failing: i64,
    /// Leases revoked (kept as records).
    pub leases_revoked: i64,
}

/// Database errors this process has seen (any store, since start): every
/// failure of the database itself or of decoding what it returned, not
/// expected outcomes such as a name already taken.
pub fn error_count() -> u64 {
    sql_store::STORE_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Auth methods, roles and associations with the generation they belong
/// to, read in one consistent snapshot.
#[derive(Debug, Clone, Default)]
pub struct PolicyData {
    pub generation: i64,
    pub auth_methods: Vec<AuthMethod>,
    pub roles: Vec<Role>,
    pub associations: Vec<Association>,
}

/// The storage contract. Every method is one transaction.
///
/// Times are Unix milliseconds. Names are already normalised by the caller.
/// IDs of items and data keys are chosen by the caller (random), because the
/// encryption binds them into the ciphertext before the row is written.
///
/// Changes that other nodes must notice at once (auth methods, roles, rules,
/// associations, revocations of session and UID tokens, UID rotations) move
/// the shared generation counter in the same transaction; the conformance
/// suite checks every changing method for its audit record and generation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Connection pool use right now (no I/O).
    fn pool_stats(&self) -> PoolStats;
    /// Live tokens and leases by state at `now_ms` (for gauges; a few counts).
    async fn usage_counts(&self, now_ms: i64) -> Result<UsageCounts>;

    // ---- metadata and keys ----
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    /// The counter moved by every change to auth methods, roles, rules,
    /// associations or revocations; other nodes poll it to refresh caches.
    async fn generation(&self) -> Result<i64>;
    /// The data keys, creating `first` when there are none yet. Nodes
    /// starting together on an empty database agree on one key: creation
    /// is serialized and only the first `first` is kept.
    async fn ensure_data_key(
        &self,
        first: (i64, &[u8]),
        created_ms: i64,
        audit: Audit<'_>,
    ) -> Result<Vec<(i64, Vec<u8>)>>;
    /// The data keys, oldest first: the last one is the active one.
    async fn data_keys(&self) -> Result<Vec<(i64, Vec<u8>)>>;
    /// Add a data key that becomes the active one (its creation time is
    /// made later than every other key's), moving the generation so
    /// running nodes load it. A compare-and-swap: Conflict (nothing
    /// changed) unless the stored data keys are exactly `existing` (as
    /// [`Store::data_keys`] returned them, same wrapping), so a key wrapped
    /// by a root key that a concurrent rotation replaced never gets in;
    /// Conflict too if the ID is taken.
    async fn add_data_key(
        &self,
        id: i64,
        wrapped: &[u8],
        created_ms: i64,
        existing: &[(i64, Vec<u8>)],
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Root-key rotation: replace the wrapping of every data key and of
    /// the derivation key in one transaction with its audit record. A
    /// compare-and-swap: when a key or the derivation key differs from
    /// what `rewrap.old*` says, or a data key was added, nothing changes
    /// (Conflict).
    async fn rewrap_keys(&self, rewrap: &Rewrap<'_>, audit: Audit<'_>) -> Result<()>;
    /// Sealed values of `table` not under `not_key_id`, ordered by (ID,
    /// version), after `after`, at most `limit` (capped at 10 000).
    async fn sealed_rows(
        &self,
        table: SealedTable,
        not_key_id: i64,
        after: (i64, i32),
        limit: i64,
    ) -> Result<Vec<SealedRow>>;
    /// How many values of `table` each data key seals: `(key_id, count)`.
    async fn count_sealed(&self, table: SealedTable) -> Result<Vec<(i64, i64)>>;
    /// Write re-sealed values in one transaction with its audit record,
    /// each only where the row still has its old key (racing writers
    /// win). Returns how many rows changed; with none, nothing is written
    /// (not even the record).
    async fn reseal_rows(
        &self,
        table: SealedTable,
        rows: &[Resealed],
        audit: Audit<'_>,
    ) -> Result<u64>;
    /// First start: create the admin role, auth method and their
    /// association, and mark the store bootstrapped, all at once. Returns
    /// false (and changes nothing) when the store is bootstrapped already,
    /// e.g. by another node starting at the same time.
    async fn bootstrap(
        &self,
        role: &Role,
        am: &AuthMethod,
        assoc: &Association,
        audit: Audit<'_>,
    ) -> Result<bool>;
    /// Auth methods, roles and associations in one read snapshot.
    async fn load_policy(&self) -> Result<PolicyData>;

    // ---- auth methods ----
    /// Conflict if the name or access ID is taken.
    async fn create_auth_method(&self, am: &AuthMethod, audit: Audit<'_>) -> Result<()>;
    async fn get_auth_method(&self, name: &str) -> Result<Option<AuthMethod>>;
    async fn get_auth_method_by_access_id(&self, access_id: &str) -> Result<Option<AuthMethod>>;
    async fn list_auth_methods(&self) -> Result<Vec<AuthMethod>>;
    /// Deletes the method, its associations and its tokens.
    async fn delete_auth_method(&self, name: &str, audit: Audit<'_>) -> Result<bool>;
    /// Replace the settings of auth method `name` with `am`'s (name,
    /// description, access expiry, bound IPs, token TTL, force-sub-claims,
    /// config, modification time), renaming it when `am.name` differs: its
    /// associations and tokens follow. The access ID, kind, access key and
    /// creation time never change. A compare-and-swap: the stored row must
    /// have `am.access_id` and modification time `expected_modified_ms`
    /// (as last read), else Conflict (a concurrent change won; nothing
    /// written). NotFound if there is no method `name`; Conflict if
    /// `am.name` is taken.
    async fn update_auth_method(
        &self,
        name: &str,
        expected_modified_ms: i64,
        am: &AuthMethod,
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Replace the access key (its keyed hash) of API-key method `name`
    /// with access ID `access_id`. False (nothing written) if there is no
    /// such API-key method.
    async fn reset_access_key(
        &self,
        name: &str,
        access_id: &str,
        access_key_hash: &[u8],
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool>;

    // ---- roles, rules, associations ----
    /// Conflict if the name is taken. `role.rules` is stored too.
    async fn create_role(&self, role: &Role, audit: Audit<'_>) -> Result<()>;
    async fn get_role(&self, name: &str) -> Result<Option<Role>>;
    async fn list_roles(&self) -> Result<Vec<Role>>;
    /// Deletes the role, its rules and its associations.
    async fn delete_role(&self, name: &str, audit: Audit<'_>) -> Result<bool>;
    /// Rename role `name` to `role.name` (its rules and associations
    /// follow) and set its description, audit access and modification
    /// time (`role.rules` and `role.created_ms` are ignored). A
    /// compare-and-swap on the modification time `expected_modified_ms`
    /// (Conflict when a concurrent change won). NotFound if there is no
    /// such role; Conflict if `role.name` is taken.
    async fn update_role(
        &self,
        name: &str,
        expected_modified_ms: i64,
        role: &Role,
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Insert or replace the rule with the same (rule type, path).
    /// NotFound if the role does not exist.
    async fn set_role_rule(
        &self,
        role: &str,
        rule: &Rule,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<()>;
    async fn delete_role_rule(
        &self,
        role: &str,
        rule_type: RuleType,
        path: &str,
        audit: Audit<'_>,
    ) -> Result<bool>;
    /// NotFound if the role or auth method does not exist.
    async fn create_association(&self, assoc: &Association, audit: Audit<'_>) -> Result<()>;
    async fn delete_association(&self, assoc_id: &str, audit: Audit<'_>) -> Result<bool>;
    /// Replace an association's sub-claims and case flag. False (nothing
    /// written) if there is no such association.
    async fn update_association(
        &self,
        assoc_id: &str,
        sub_claims: &SubClaims,
        case_sensitive: bool,
        audit: Audit<'_>,
    ) -> Result<bool>;
    async fn list_associations(&self) -> Result<Vec<Association>>;

    // ---- items ----
    /// Conflict if the name is taken.
    async fn create_item(&self, item: &Item, first: &SealedVersion, audit: Audit<'_>)
    -> Result<()>;
    async fn get_item(&self, name: &str) -> Result<Option<Item>>;
    /// The item and one version (`None` = the latest), in one query.
    async fn get_item_value(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<Option<(Item, SealedVersion)>>;
    async fn list_versions(&self, item_id: i64) -> Result<Vec<VersionInfo>>;
    /// Append version `v.version`, which must be `expected_highest + 1`
    /// where `expected_highest` is the item's `highest_version` (Conflict
    /// otherwise: a concurrent update won). Then keep only the newest
    /// `keep` versions (`keep <= 0` keeps all).
    async fn add_version(
        &self,
        item_id: i64,
        expected_highest: i32,
        v: &SealedVersion,
        keep: i32,
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Items whose name starts with `prefix`, ordered by name, at most
    /// `limit`, starting after `after_name` when given.
    async fn list_items(
        &self,
        prefix: &str,
        after_name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Item>>;
    async fn delete_item(&self, item_id: i64, audit: Audit<'_>) -> Result<bool>;
    /// Delete one version. Deleting the last remaining version deletes the
    /// item. Version numbers are never reused (`highest_version` stays).
    async fn delete_version(&self, item_id: i64, version: i32, audit: Audit<'_>) -> Result<bool>;
    /// Give an item a new ID, with its versions re-sealed for that ID (the
    /// ID is bound into the ciphertext). Used once per item to move IDs
    /// into the range every JSON client can represent exactly.
    async fn renumber_item(
        &self,
        old_id: i64,
        new_id: i64,
        versions: &[SealedVersion],
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Items whose ID is at least `min_id`.
    async fn items_with_id_at_least(&self, min_id: i64) -> Result<Vec<Item>>;
    /// Every stored version of an item, sealed.
    async fn item_versions(&self, item_id: i64) -> Result<Vec<SealedVersion>>;
    /// update-item: apply `change` to an item that is not pending
    /// deletion, under its row lock, and return it as it is now. A rename
    /// also renames the item in its leases and issued-certificate records.
    /// NotFound if the item is gone or pending deletion; Conflict if the
    /// new name is taken; Limit if the tags would exceed `change.max_tags`.
    /// Lowering `max_versions` drops the oldest versions beyond it.
    async fn update_item_meta(
        &self,
        item_id: i64,
        change: &ItemChange,
        audit: Audit<'_>,
    ) -> Result<Item>;
    /// Mark items pending deletion until `deletion_ms`, all or none:
    /// Conflict (nothing written) if any is gone or pending already.
    async fn mark_items_deleted(
        &self,
        item_ids: &[i64],
        deletion_ms: i64,
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Cancel a pending deletion. False (nothing written) if the item is
    /// gone or not pending.
    async fn restore_item(&self, item_id: i64, audit: Audit<'_>) -> Result<bool>;
    /// Items whose pending deletion is due at `now_ms`, oldest first, at
    /// most `limit`.
    async fn due_deletions(&self, now_ms: i64, limit: i64) -> Result<Vec<Item>>;
    /// Delete an item whose pending deletion is due at `now_ms`. False
    /// (nothing written) if it is gone, restored or not due: of nodes
    /// purging at once, exactly one deletes it and writes the record.
    async fn purge_item(&self, item_id: i64, now_ms: i64, audit: Audit<'_>) -> Result<bool>;

    // ---- targets (stored database connections) ----
    /// Conflict if the name or ID is taken.
    async fn create_target(&self, t: &Target, audit: Audit<'_>) -> Result<()>;
    /// Replace a target's settings; `t.version` must be the stored version
    /// plus one (Conflict otherwise: a concurrent update won). NotFound if
    /// there is no such target.
    async fn update_target(&self, t: &Target, audit: Audit<'_>) -> Result<()>;
    async fn get_target(&self, name: &str) -> Result<Option<Target>>;
    async fn list_targets(&self) -> Result<Vec<Target>>;
    /// Names of the items (dynamic and rotated secrets) using a target.
    async fn target_items(&self, name: &str) -> Result<Vec<String>>;
    /// Delete a target. Unless `force`, Conflict while items use it (the
    /// check and the delete are one transaction).
    async fn delete_target(&self, name: &str, force: bool, audit: Audit<'_>) -> Result<bool>;

    // ---- producers: settings of dynamic and rotated secrets ----
    /// Create the item, its first sealed version and its settings row.
    async fn create_producer(
        &self,
        item: &Item,
        first: &SealedVersion,
        p: &Producer,
        audit: Audit<'_>,
    ) -> Result<()>;
    async fn get_producer(&self, item_id: i64) -> Result<Option<Producer>>;
    /// Replace the settings (target, settings, status, next rotation) and
    /// the item's description and tags, and with `v` add a version as
    /// [`Store::add_version`] does (`v.version` = `item.highest_version` + 1,
    /// keeping `keep`).
    async fn update_producer(
        &self,
        item: &Item,
        v: Option<&SealedVersion>,
        p: &Producer,
        keep: i32,
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Items due for rotation at `now_ms` (or with a rotation to finish)
    /// that nobody holds, at most `limit`.
    async fn due_rotations(&self, now_ms: i64, limit: i64) -> Result<Vec<String>>;
    /// Hold an item for rotating until `until_ms`, unless another holder's
    /// claim is still valid at `now_ms` (the holder itself may extend its
    /// claim). A lock, not a change: no record.
    async fn claim_producer(
        &self,
        item_id: i64,
        node: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool>;
    async fn release_producer(&self, item_id: i64, node: &str) -> Result<()>;
    /// Phase one of a rotation: store the new value as version
    /// `v.version` = `expected_highest` + 1 without making it current,
    /// and mark it pending. Conflict if a rotation is pending already or
    /// the item moved.
    async fn add_pending_version(
        &self,
        item_id: i64,
        expected_highest: i32,
        v: &SealedVersion,
        audit: Audit<'_>,
    ) -> Result<()>;
    /// Phase two: the pending version logged in; make it current, keep the
    /// newest `keep` versions, record the rotation and release the claim.
    /// Conflict if `version` is not the pending one or `node` no longer
    /// holds the item (another node took over: its claim had run out).
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<()>;
    /// Record a status (a failed rotation), drop a pending version that
    /// never became current (`drop_pending`; `None` keeps a pending one),
    /// set the next rotation and release the claim. Conflict unless `node`
    /// holds the item.
    async fn set_producer_status(
        &self,
        item_id: i64,
        node: &str,
        status: &str,
        next_rotation_ms: i64,
        drop_pending: Option<i32>,
        audit: Audit<'_>,
    ) -> Result<()>;

    // ---- leases: issued temporary credentials ----
    /// Write a lease, unless its item already has `max_live` live leases
    /// (Limit) or the ID is taken (Conflict). Serialized per item.
    async fn insert_lease(&self, l: &Lease, max_live: i64, audit: Audit<'_>) -> Result<()>;
    async fn get_lease(&self, id: &str) -> Result<Option<Lease>>;
    async fn list_leases(&self, f: LeaseFilter) -> Result<Vec<Lease>>;
    /// Live leases of every item.
    async fn count_live_leases(&self) -> Result<i64>;
    /// Move a live lease's expiry. False if it is not live, or a node holds
    /// it at `now_ms` (revoking it).
    async fn set_lease_expiry(
        &self,
        id: &str,
        expires_ms: i64,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool>;
    /// Delete a dynamic secret, unless it has live leases (Limit): checked
    /// under the item's lock, which issuing takes too, so no lease slips
    /// in between.
    async fn delete_producer_item(&self, item_id: i64, audit: Audit<'_>) -> Result<bool>;
    /// Take up to `limit` live leases of `scope` for `node` until
    /// `until_ms`, skipping leases another node holds (claim still valid at
    /// `now_ms`). Several nodes claiming at once never get the same lease.
    /// A lock, not a change: the outcome is recorded by
    /// [`Store::finish_lease`] or [`Store::fail_lease`].
    async fn claim_leases(
        &self,
        scope: LeaseScope<'_>,
        node: &str,
        now_ms: i64,
        until_ms: i64,
        limit: i64,
    ) -> Result<Vec<Lease>>;
    /// The lease's user is gone: mark it revoked. False (nothing written)
    /// unless `node` holds it and it is live, so each lease is revoked once.
    async fn finish_lease(
        &self,
        id: &str,
        node: &str,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool>;
    /// A revocation failed: count it, keep the error, retry after
    /// `next_attempt_ms`, release the claim.
    async fn fail_lease(
        &self,
        id: &str,
        node: &str,
        error: &str,
        next_attempt_ms: i64,
        audit: Audit<'_>,
    ) -> Result<bool>;

    // ---- issued certificates ----
    /// Record an issued certificate (Conflict if its serial is taken for
    /// this issuer: the caller picks another and signs again).
    async fn insert_certificate(&self, c: &IssuedCert, audit: Audit<'_>) -> Result<()>;
    async fn get_certificate(&self, issuer_id: i64, serial: &str) -> Result<Option<IssuedCert>>;
    async fn list_certificates(&self, f: &CertFilter) -> Result<Vec<IssuedCert>>;
    /// Every revoked certificate key `signer_key` version `signer_version`
    /// signed that has not expired at `now_ms` (a CRL's content: never
    /// truncated).
    async fn revoked_certificates(
        &self,
        signer_key: &str,
        signer_version: i32,
        now_ms: i64,
    ) -> Result<Vec<IssuedCert>>;
    /// Mark a certificate revoked at `now_ms`. False (nothing written) if
    /// no such certificate or already revoked.
    async fn revoke_certificate(
        &self,
        issuer_id: i64,
        serial: &str,
        now_ms: i64,
        reason: &str,
        audit: Audit<'_>,
    ) -> Result<bool>;

    // ---- tokens ----
    async fn get_token(&self, token_hash: &[u8]) -> Result<Option<TokenRecord>>;
    async fn revoke_token(&self, token_hash: &[u8], audit: Audit<'_>) -> Result<bool>;
    async fn purge_expired_tokens(&self, now_ms: i64) -> Result<u64>;

    // ---- single-use login nonces ----
    /// Use a login nonce (a cert-auth challenge, an OIDC login state) once:
    /// `nonce_hash` (a keyed hash) is recorded until `expires_ms`; true the
    /// first time on any node sharing the database, false for every later
    /// use, and false for a nonce already expired at `now_ms` (the store
    /// refuses it itself: a caller's expiry check and this call are not
    /// atomic). Rows are forgotten [`LOGIN_NONCE_PURGE_GRACE_MS`] after
    /// their expiry. Bookkeeping, not a change: no audit record (the
    /// login's own record says what happened).
    async fn consume_login_nonce(
        &self,
        nonce_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<bool>;

    // ---- Universal Identity tokens ----
    /// Insert a UID token. A child (`parent_id` set) is inserted only while
    /// its parent is live at `t.created_ms` (not revoked, not expired) and
    /// belongs to the same auth method, else NotFound. Serialized with
    /// [`Store::revoke_uid_token`] on the same method, so a child cannot
    /// slip past a concurrent revocation of its parent's subtree.
    /// NotFound if the auth method does not exist; Conflict if the ID or
    /// hash is taken. Checking depth and TTL limits is the caller's job.
    async fn insert_uid_token(&self, t: &UidToken, audit: Audit<'_>) -> Result<()>;
    async fn get_uid_token(&self, token_id: &str) -> Result<Option<UidToken>>;
    /// By the keyed hash of the current secret. Revoked and expired tokens
    /// are returned too (the caller checks).
    async fn get_uid_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<UidToken>>;
    /// Every token of an auth method, revoked and expired ones included,
    /// parents before children.
    async fn list_uid_tokens(&self, access_id: &str) -> Result<Vec<UidToken>>;
    /// How many tokens of an auth method are live at `now_ms`.
    async fn count_live_uid_tokens(&self, access_id: &str, now_ms: i64) -> Result<i64>;
    /// Rotate a token's secret by compare-and-swap: `new_hash` replaces
    /// `old_hash` only if `old_hash` is still current and the token is
    /// live at `now_ms` and not deny-rotate; the expiry restarts from
    /// `now_ms` with the token's TTL. Returns the new expiry, or `None` when
    /// the swap did not happen (a concurrent rotation won, or the token is
    /// revoked, expired, deny-rotate or unknown); then nothing is written.
    async fn rotate_uid_token(
        &self,
        token_id: &str,
        old_hash: &[u8],
        new_hash: &[u8],
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<Option<i64>>;
    /// Revoke a token and, with `descendants`, every token below it (also
    /// below tokens revoked earlier on their own). In the same transaction,
    /// deletes the session tokens minted from the revoked tokens: those of
    /// the same access ID whose `identity` is a revoked token's ID. Returns
    /// the IDs newly revoked (empty if all were revoked already); NotFound
    /// if there is no such token.
    async fn revoke_uid_token(
        &self,
        token_id: &str,
        descendants: bool,
        now_ms: i64,
        audit: Audit<'_>,
    ) -> Result<Vec<String>>;

    // ---- audit ----
    /// Append records atomically: assigns consecutive `seq` after the chain
    /// head, sets each `prev_hash` and `hash` (via `sealer`) and moves the
    /// head (with its MAC), all under the chain lock so concurrent writers
    /// (other nodes) serialize. On error nothing is written.
    /// The tokens minted and the certificates issued by the requests of
    /// this batch are written in the same transaction (group commit: a
    /// login or a certificate costs no commit of its own); a token whose
    /// auth method no longer exists is skipped. A certificate serial
    /// already taken fails the whole batch (callers check first; only a
    /// concurrent duplicate of a random serial can get here).
    async fn append_audit(
        &self,
        records: &mut [AuditRecord],
        tokens: &[TokenRecord],
        certs: &[IssuedCert],
        sealer: &dyn ChainSealer,
    ) -> Result<()>;
    /// The chain head; `seq` 0 and empty hash and MAC when nothing was
    /// ever appended.
    async fn audit_head(&self) -> Result<ChainHead>;
    /// Records with `seq > after_seq`, in order, at most `limit`.
    async fn audit_range(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>>;
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>>;
    /// The retention checkpoint (the pruned start of the chain); None when
    /// nothing was ever pruned.
    async fn audit_checkpoint(&self) -> Result<Option<coffer_core::audit::Checkpoint>>;
    /// Retention: delete the longest run of records at the start of the
    /// chain whose times are all before `before_ms`, at most `max_records`,
    /// after verifying them (a broken chain is never pruned); write the
    /// sealed checkpoint of the last one and append `audit`'s record (its
    /// object is set to the range pruned), all in one transaction under the
    /// chain lock, so several nodes may run it at once. None (and nothing
    /// written) when no record is old enough.
    async fn prune_audit(
        &self,
        before_ms: i64,
        max_records: i64,
        audit: Audit<'_>,
    ) -> Result<Option<PrunedRange>>;
}

/// What one [`Store::prune_audit`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunedRange {
    pub first_seq: i64,
    pub last_seq: i64,
    /// Time of the last record pruned.
    pub last_time_ms: i64,
}

impl PrunedRange {
    pub fn count(&self) -> i64 {
        self.last_seq - self.first_seq + 1
    }
}

/// Open a store from a URL and run the embedded migrations.
///
/// * `sqlite:///abs/path/coffer.db` or `sqlite://relative.db` (created if missing)
/// * `postgres://user:pass@host:port/db` (or `postgresql://`)
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open_url(url).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported storage URL scheme in {:?}: use sqlite:///path/to/coffer.db or postgres://user@host/db",
            redact_url(url)
        )))
    }
}

/// Remove a password from a URL before printing it.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
    {
        let user = creds.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}
