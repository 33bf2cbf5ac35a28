//! The SQL statements, shared by both backends.
//!
//! SQLite and PostgreSQL both accept `$n` placeholders, `ON CONFLICT` and
//! `RETURNING`, so one text serves both; the few statements that must differ
//! (transaction start, row locks) live in the [`Dialect`](crate::Dialect)
//! impls. Column lists are macros so they can be spliced with `concat!` and
//! stay `&'static str` (sqlx caches prepared statements by their text).
//!
//! The column order of every `SELECT` matches a row tuple in [`crate::rows`]
//! (items: the column decoder in `sql_store.rs`).

macro_rules! auth_method_columns {
    () => {
        "name, access_id, kind, description, access_key_hash, access_expires_ms, bound_ips, \
         token_ttl_secs, force_sub_claims, config, created_ms, modified_ms"
    };
}

macro_rules! item_columns {
    () => {
        "i.id, i.name, i.item_type, i.sub_type, i.format, i.description, i.tags, i.max_versions, \
         i.last_version, i.highest_version, i.enabled, i.created_ms, i.modified_ms, i.deletion_ms"
    };
}

macro_rules! token_columns {
    () => {
        "token_hash, access_id, auth_method_name, identity, claims, issued_ms, expires_ms"
    };
}

macro_rules! uid_token_columns {
    () => {
        "token_id, token_hash, parent_id, access_id, depth, ttl_secs, expires_ms, deny_rotate, \
         deny_inheritance, comment, revoked, last_rotated_ms, created_ms, modified_ms"
    };
}

/// The IDs of token `$1` and every token below it (`sub(id)`). Parents are
/// fixed at insertion, so the tree has no cycles.
macro_rules! uid_subtree {
    () => {
        "WITH RECURSIVE sub(id) AS ( \
           SELECT token_id FROM uid_tokens WHERE token_id = $1 \
           UNION ALL \
           SELECT t.token_id FROM uid_tokens t JOIN sub ON t.parent_id = sub.id) "
    };
}

/// The stored columns of `audit_log`. `prev_hash` is not stored (since
/// migration 6): it is the previous record's `hash`, or the retention
/// checkpoint's for the first record after it, joined in by
/// [`audit_select!`].
macro_rules! audit_columns {
    () => {
        "seq, time_ms, request_id, operation, object, outcome, status, error, access_id, \
         auth_method, identity, client_type, peer, hash"
    };
}

/// Audit records with their `prev_hash` (NULL for seq 1 and for a record
/// whose predecessor is missing, which verification reports as a gap).
/// Filters name the record's columns as `a.<column>`.
macro_rules! audit_select {
    () => {
        "SELECT a.seq, a.time_ms, a.request_id, a.operation, a.object, a.outcome, a.status, \
         a.error, a.access_id, a.auth_method, a.identity, a.client_type, a.peer, \
         COALESCE(p.hash, c.hash) AS prev_hash, a.hash \
         FROM audit_log a LEFT JOIN audit_log p ON p.seq = a.seq - 1 \
         LEFT JOIN audit_checkpoint c ON c.seq = a.seq - 1"
    };
}

/// Roles with their rules: one row per rule, or one row with NULL rule
/// columns for a role without rules.
macro_rules! select_roles_with_rules {
    () => {
        "SELECT r.name, r.description, r.audit_access, r.created_ms, r.modified_ms, \
                rr.rule_type, rr.path, rr.caps \
         FROM roles r LEFT JOIN role_rules rr ON rr.role_name = r.name"
    };
}

pub(crate) use audit_select;

// ---- metadata and keys ----

pub(crate) const GET_META: &str = "SELECT value FROM meta WHERE key = $1";
pub(crate) const PUT_META_IF_ABSENT: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
pub(crate) const GET_GENERATION: &str = "SELECT value FROM generation WHERE id = 1";
pub(crate) const BUMP_GENERATION: &str =
    "UPDATE generation SET value = value + 1 WHERE id = 1 RETURNING value";
pub(crate) const INSERT_DATA_KEY: &str =
    "INSERT INTO data_keys (id, wrapped, created_ms) VALUES ($1, $2, $3)";
pub(crate) const COUNT_DATA_KEYS: &str = "SELECT COUNT(*) FROM data_keys";
// Oldest first: the last is the active key (rotation adds newer ones).
pub(crate) const LIST_DATA_KEYS: &str = "SELECT id, wrapped FROM data_keys ORDER BY created_ms, id";

// ---- auth methods ----

pub(crate) const INSERT_AUTH_METHOD: &str = concat!(
    "INSERT INTO auth_methods (",
    auth_method_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
pub(crate) const GET_AUTH_METHOD: &str = concat!(
    "SELECT ",
    auth_method_columns!(),
    " FROM auth_methods WHERE name = $1"
);
pub(crate) const GET_AUTH_METHOD_BY_ACCESS_ID: &str = concat!(
    "SELECT ",
    auth_method_columns!(),
    " FROM auth_methods WHERE access_id = $1"
);
pub(crate) const LIST_AUTH_METHODS: &str = concat!(
    "SELECT ",
    auth_method_columns!(),
    " FROM auth_methods ORDER BY name"
);
pub(crate) const AUTH_METHOD_EXISTS: &str = "SELECT 1 FROM auth_methods WHERE name = $1";
/// Associations and tokens go with it (`ON DELETE CASCADE`).
pub(crate) const DELETE_AUTH_METHOD: &str = "DELETE FROM auth_methods WHERE name = $1";
/// Settings and name of an auth method whose row is as last read
/// (`modified_ms` = $10); associations and tokens follow a rename
/// (`ON UPDATE CASCADE`). The access ID, kind and access key stay.
pub(crate) const UPDATE_AUTH_METHOD: &str = "UPDATE auth_methods SET name = $2, description = $3, \
     access_expires_ms = $4, bound_ips = $5, token_ttl_secs = $6, force_sub_claims = $7, config = $8, \
     modified_ms = $9 WHERE name = $1 AND modified_ms = $10 AND access_id = $11";
/// A new access key (keyed hash) for an API-key method.
pub(crate) const SET_ACCESS_KEY_HASH: &str = "UPDATE auth_methods SET access_key_hash = $3, modified_ms = $4 \
     WHERE name = $1 AND access_id = $2 AND access_key_hash IS NOT NULL";

// ---- roles, rules, associations ----

pub(crate) const INSERT_ROLE: &str = "INSERT INTO roles (name, description, audit_access, created_ms, modified_ms) \
     VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET_ROLE: &str = concat!(
    select_roles_with_rules!(),
    " WHERE r.name = $1 ORDER BY rr.id"
);
pub(crate) const LIST_ROLES: &str = concat!(select_roles_with_rules!(), " ORDER BY r.name, rr.id");
pub(crate) const ROLE_EXISTS: &str = "SELECT 1 FROM roles WHERE name = $1";
/// Rules and associations go with it (`ON DELETE CASCADE`).
pub(crate) const DELETE_ROLE: &str = "DELETE FROM roles WHERE name = $1";
pub(crate) const TOUCH_ROLE: &str = "UPDATE roles SET modified_ms = $2 WHERE name = $1";
/// Rename a role (rules and associations follow: `ON UPDATE CASCADE`) and
/// set its description and audit access, if its row is as last read
/// (`modified_ms` = $6).
pub(crate) const UPDATE_ROLE: &str = "UPDATE roles SET name = $2, description = $3, audit_access = $4, \
     modified_ms = $5 WHERE name = $1 AND modified_ms = $6";
pub(crate) const UPSERT_ROLE_RULE: &str = "INSERT INTO role_rules (role_name, rule_type, path, caps) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (role_name, rule_type, path) DO UPDATE SET caps = excluded.caps";
pub(crate) const DELETE_ROLE_RULE: &str =
    "DELETE FROM role_rules WHERE role_name = $1 AND rule_type = $2 AND path = $3";

pub(crate) const INSERT_ASSOCIATION: &str = "INSERT INTO associations \
     (assoc_id, role_name, auth_method_name, sub_claims, case_sensitive, created_ms) \
     VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const DELETE_ASSOCIATION: &str = "DELETE FROM associations WHERE assoc_id = $1";
pub(crate) const UPDATE_ASSOCIATION: &str =
    "UPDATE associations SET sub_claims = $2, case_sensitive = $3 WHERE assoc_id = $1";
pub(crate) const LIST_ASSOCIATIONS: &str = "SELECT assoc_id, role_name, auth_method_name, sub_claims, case_sensitive, created_ms \
     FROM associations ORDER BY created_ms, assoc_id";

// ---- items ----

pub(crate) const INSERT_ITEM: &str = "INSERT INTO items (id, name, item_type, sub_type, format, description, tags, \
     max_versions, last_version, highest_version, enabled, created_ms, modified_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
pub(crate) const ITEM_NAME_EXISTS: &str = "SELECT 1 FROM items WHERE name = $1";
pub(crate) const GET_ITEM: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items i WHERE i.name = $1"
);
/// The item and one version; `$2` NULL means the latest (`last_version`).
pub(crate) const GET_ITEM_VALUE: &str = concat!(
    "SELECT ",
    item_columns!(),
    ", v.version, v.key_id, v.sealed, v.created_ms \
     FROM items i JOIN item_versions v \
       ON v.item_id = i.id AND v.version = COALESCE($2, i.last_version) \
     WHERE i.name = $1"
);
/// Names starting with a prefix, after `$2` (`""` for none): the range
/// `[$1 = prefix, $3 = upper bound)`. With byte-wise collation this range is
/// exactly "starts with the prefix", see [`crate::rows::prefix_upper_bound`];
/// unlike `LIKE` it needs no escaping, is case-sensitive on both backends,
/// and every bound is an index condition (no `$n IS NULL OR ...`, which
/// PostgreSQL's generic plans cannot use to bound an index scan).
pub(crate) const LIST_ITEMS: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items i WHERE i.name >= $1 AND i.name > $2 AND i.name < $3 ORDER BY i.name LIMIT $4"
);
/// [`LIST_ITEMS`] for a prefix without upper bound (the empty prefix).
pub(crate) const LIST_ITEMS_UNBOUNDED: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items i WHERE i.name >= $1 AND i.name > $2 ORDER BY i.name LIMIT $3"
);
pub(crate) const DELETE_ITEM: &str = "DELETE FROM items WHERE id = $1";
pub(crate) const INSERT_VERSION: &str = "INSERT INTO item_versions (item_id, version, key_id, sealed, created_ms) \
     VALUES ($1, $2, $3, $4, $5)";
pub(crate) const LIST_VERSIONS: &str =
    "SELECT version, created_ms FROM item_versions WHERE item_id = $1 ORDER BY version";
/// Optimistic concurrency: moves `highest_version` (and `last_version`)
/// only if nobody else did.
pub(crate) const ADVANCE_LAST_VERSION: &str = "UPDATE items SET last_version = $3, highest_version = $3, \
     modified_ms = $4 WHERE id = $1 AND highest_version = $2";
pub(crate) const ITEMS_WITH_ID_AT_LEAST: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items i WHERE i.id >= $1 ORDER BY i.id"
);
pub(crate) const ITEM_VERSIONS_SEALED: &str = "SELECT version, key_id, sealed, created_ms FROM item_versions WHERE item_id = $1 ORDER BY version";
pub(crate) const DELETE_ITEM_VERSIONS: &str = "DELETE FROM item_versions WHERE item_id = $1";
pub(crate) const SET_ITEM_ID: &str = "UPDATE items SET id = $2 WHERE id = $1";
pub(crate) const ITEM_ID_EXISTS: &str = "SELECT 1 FROM items WHERE id = $1";
/// Keep the newest `$2 + 1` versions: delete every version below the
/// (`$2 + 1`)-th newest. With fewer versions the subquery is NULL and
/// nothing is deleted.
pub(crate) const PRUNE_VERSIONS: &str = "DELETE FROM item_versions WHERE item_id = $1 AND version < \
     (SELECT version FROM item_versions WHERE item_id = $1 ORDER BY version DESC LIMIT 1 OFFSET $2)";
pub(crate) const DELETE_VERSION: &str =
    "DELETE FROM item_versions WHERE item_id = $1 AND version = $2";
pub(crate) const MAX_VERSION: &str = "SELECT MAX(version) FROM item_versions WHERE item_id = $1";
pub(crate) const SET_LAST_VERSION: &str = "UPDATE items SET last_version = $2 WHERE id = $1";
/// The item (not pending deletion), locked for the rest of the
/// transaction on PostgreSQL (SQLite's write transaction holds the lock).
pub(crate) const GET_LIVE_ITEM_BY_ID: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items i WHERE i.id = $1 AND i.deletion_ms = 0"
);
/// update-item: name, description, tags, max versions.
pub(crate) const UPDATE_ITEM_META: &str = "UPDATE items SET name = $2, description = $3, tags = $4, \
     max_versions = $5, modified_ms = $6 WHERE id = $1 AND deletion_ms = 0";
/// A rename carries the name kept beside the item's ID in other tables.
pub(crate) const RENAME_LEASE_ITEM: &str = "UPDATE leases SET item_name = $2 WHERE item_id = $1";
pub(crate) const RENAME_CERT_ISSUER: &str =
    "UPDATE certificates SET issuer_name = $2 WHERE issuer_id = $1";
/// Mark an item pending deletion (only one that is not pending already).
pub(crate) const MARK_ITEM_DELETED: &str =
    "UPDATE items SET deletion_ms = $2 WHERE id = $1 AND deletion_ms = 0";
pub(crate) const RESTORE_ITEM: &str =
    "UPDATE items SET deletion_ms = 0 WHERE id = $1 AND deletion_ms > 0";
/// Items whose pending deletion is due at `$1`, oldest first.
pub(crate) const DUE_DELETIONS: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM items i WHERE i.deletion_ms > 0 AND i.deletion_ms <= $1 ORDER BY i.deletion_ms, i.id LIMIT $2"
);
/// Purge one due item: only while it is still pending and due, so of
/// several nodes purging at once exactly one deletes it (and a restore
/// that came first wins).
pub(crate) const PURGE_ITEM: &str =
    "DELETE FROM items WHERE id = $1 AND deletion_ms > 0 AND deletion_ms <= $2";

// ---- tokens ----

/// A token written with the audit batch of its login: skipped (not an
/// error) when its auth method was deleted meanwhile or the hash exists.
pub(crate) const INSERT_TOKEN_IF_METHOD: &str = concat!(
    "INSERT INTO tokens (",
    token_columns!(),
    ") SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS ",
    "(SELECT 1 FROM auth_methods WHERE name = $3 AND access_id = $2) ",
    "ON CONFLICT DO NOTHING"
);
pub(crate) const GET_TOKEN: &str = concat!(
    "SELECT ",
    token_columns!(),
    " FROM tokens WHERE token_hash = $1"
);
pub(crate) const DELETE_TOKEN: &str = "DELETE FROM tokens WHERE token_hash = $1";
pub(crate) const PURGE_EXPIRED_TOKENS: &str = "DELETE FROM tokens WHERE expires_ms <= $1";

// ---- single-use login nonces ----

pub(crate) const PURGE_LOGIN_NONCES: &str = "DELETE FROM login_nonces WHERE expires_ms <= $1";
pub(crate) const INSERT_LOGIN_NONCE: &str = "INSERT INTO login_nonces (nonce_hash, expires_ms) VALUES ($1, $2) ON CONFLICT (nonce_hash) DO NOTHING";

// ---- Universal Identity tokens ----

pub(crate) const INSERT_UID_TOKEN: &str = concat!(
    "INSERT INTO uid_tokens (",
    uid_token_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
pub(crate) const GET_UID_TOKEN: &str = concat!(
    "SELECT ",
    uid_token_columns!(),
    " FROM uid_tokens WHERE token_id = $1"
);
pub(crate) const GET_UID_TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    uid_token_columns!(),
    " FROM uid_tokens WHERE token_hash = $1"
);
/// Parents before children: a parent's depth is always lower.
pub(crate) const LIST_UID_TOKENS: &str = concat!(
    "SELECT ",
    uid_token_columns!(),
    " FROM uid_tokens WHERE access_id = $1 ORDER BY depth, created_ms, token_id"
);
pub(crate) const COUNT_LIVE_UID_TOKENS: &str =
    "SELECT COUNT(*) FROM uid_tokens WHERE access_id = $1 AND NOT revoked AND expires_ms > $2";
pub(crate) const UID_TOKEN_ACCESS_ID: &str = "SELECT access_id FROM uid_tokens WHERE token_id = $1";
/// Serializes changes to one auth method's token tree. The no-op update
/// takes the auth method row's write lock on PostgreSQL (held until
/// commit); on SQLite `BEGIN IMMEDIATE` already holds the database lock.
/// One text for both, and 0 rows means the method does not exist.
pub(crate) const LOCK_UID_TREE: &str =
    "UPDATE auth_methods SET modified_ms = modified_ms WHERE access_id = $1";
/// A parent that may take a child now: same method, not revoked, not expired at `$3`.
pub(crate) const LIVE_UID_PARENT: &str = "SELECT depth FROM uid_tokens \
     WHERE token_id = $1 AND access_id = $2 AND NOT revoked AND expires_ms > $3";
/// Compare-and-swap of the secret: only from the current hash `$2`, only
/// while live and rotatable at `$4`. The expiry restarts from `$4` with the
/// token's own TTL. Returns the new expiry; no row = the swap lost.
pub(crate) const ROTATE_UID_TOKEN: &str = "UPDATE uid_tokens \
     SET token_hash = $3, expires_ms = $4 + ttl_secs * 1000, last_rotated_ms = $4, modified_ms = $4 \
     WHERE token_id = $1 AND token_hash = $2 AND NOT revoked AND NOT deny_rotate AND expires_ms > $4 \
     RETURNING expires_ms";
pub(crate) const REVOKE_UID_TOKEN: &str = "UPDATE uid_tokens SET revoked = TRUE, modified_ms = $2 \
     WHERE token_id = $1 AND NOT revoked RETURNING token_id";
pub(crate) const REVOKE_UID_SUBTREE: &str = concat!(
    uid_subtree!(),
    "UPDATE uid_tokens SET revoked = TRUE, modified_ms = $2 \
     WHERE token_id IN (SELECT id FROM sub) AND NOT revoked RETURNING token_id"
);
/// Session tokens minted from UID token `$1` (their identity is its ID).
pub(crate) const DELETE_UID_SESSIONS: &str =
    "DELETE FROM tokens WHERE access_id = $2 AND identity = $1";
/// Session tokens minted from UID token `$1` or any token below it.
pub(crate) const DELETE_UID_SUBTREE_SESSIONS: &str = concat!(
    uid_subtree!(),
    "DELETE FROM tokens WHERE access_id = $2 AND identity IN (SELECT id FROM sub)"
);

// ---- audit ----

pub(crate) const GET_AUDIT_HEAD: &str = "SELECT seq, hash, mac FROM audit_head WHERE id = 1";
/// The chain lock on SQLite (`BEGIN IMMEDIATE` holds the file's write lock).
pub(crate) const GET_AUDIT_HEAD_SEQ_HASH: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
pub(crate) const SET_AUDIT_HEAD: &str =
    "UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1";
pub(crate) const AUDIT_RANGE: &str =
    concat!(audit_select!(), " WHERE a.seq > $1 ORDER BY a.seq LIMIT $2");
/// Insert a whole batch of audit records from ONE bind parameter: the
/// records as a JSON array (`AuditRecord`'s serde form, hashes in hex).
/// Binding one parameter instead of 15 per row matters: SQLite looks up
/// `$N` parameter names linearly, so wide multi-row inserts cost O(n²).
pub(crate) const INSERT_AUDIT_JSON_SQLITE: &str = concat!(
    "INSERT INTO audit_log (",
    audit_columns!(),
    ") SELECT value->>'seq', value->>'time_ms', value->>'request_id', value->>'operation', \
     value->>'object', value->>'outcome', value->>'status', value->>'error', value->>'access_id', \
     value->>'auth_method', value->>'identity', value->>'client_type', value->>'peer', \
     unhex(value->>'hash') FROM json_each($1)"
);
pub(crate) const INSERT_AUDIT_JSON_POSTGRES: &str = concat!(
    "INSERT INTO audit_log (",
    audit_columns!(),
    ") SELECT (r->>'seq')::bigint, (r->>'time_ms')::bigint, r->>'request_id', r->>'operation', \
     r->>'object', r->>'outcome', (r->>'status')::integer, r->>'error', r->>'access_id', \
     r->>'auth_method', r->>'identity', r->>'client_type', r->>'peer', \
     decode(r->>'hash', 'hex') \
     FROM jsonb_array_elements($1::text::jsonb) AS r"
);

// ---- targets, producers (dynamic and rotated secrets), leases ----

macro_rules! target_columns {
    () => {
        "id, name, target_type, description, details, key_id, sealed, version, created_ms, modified_ms"
    };
}
macro_rules! producer_columns {
    () => {
        "item_id, target_name, settings, status, pending_version, last_rotation_ms, next_rotation_ms"
    };
}
macro_rules! lease_columns {
    () => {
        "id, item_id, item_name, access_id, identity, token_hash, created_ms, expires_ms, state, \
         attempts, next_attempt_ms, last_error, revoked_ms"
    };
}

pub(crate) const INSERT_TARGET: &str = concat!(
    "INSERT INTO targets (",
    target_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
/// Optimistic concurrency: only from version `$8 - 1`.
pub(crate) const UPDATE_TARGET: &str = "UPDATE targets SET description = $2, details = $3, key_id = $4, \
     sealed = $5, version = $6, modified_ms = $7 WHERE name = $1 AND version = $6 - 1";
pub(crate) const GET_TARGET: &str = concat!(
    "SELECT ",
    target_columns!(),
    " FROM targets WHERE name = $1"
);
pub(crate) const LIST_TARGETS: &str =
    concat!("SELECT ", target_columns!(), " FROM targets ORDER BY name");
pub(crate) const TARGET_NAME_EXISTS: &str = "SELECT 1 FROM targets WHERE name = $1";
pub(crate) const TARGET_ITEMS: &str = "SELECT i.name FROM producers p JOIN items i ON i.id = p.item_id \
     WHERE p.target_name = $1 ORDER BY i.name";
pub(crate) const DELETE_TARGET: &str = "DELETE FROM targets WHERE name = $1";

pub(crate) const INSERT_PRODUCER: &str = concat!(
    "INSERT INTO producers (",
    producer_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
pub(crate) const GET_PRODUCER: &str = concat!(
    "SELECT ",
    producer_columns!(),
    " FROM producers WHERE item_id = $1"
);
pub(crate) const UPDATE_PRODUCER: &str = "UPDATE producers SET target_name = $2, settings = $3, status = $4, \
     next_rotation_ms = $5 WHERE item_id = $1";
pub(crate) const TOUCH_ITEM: &str =
    "UPDATE items SET description = $2, tags = $3, modified_ms = $4 WHERE id = $1";
/// A rotation's new version: `highest_version` moves, `last_version` stays.
pub(crate) const ADVANCE_HIGHEST_VERSION: &str =
    "UPDATE items SET highest_version = $3 WHERE id = $1 AND highest_version = $2";
pub(crate) const SET_PENDING: &str =
    "UPDATE producers SET pending_version = $2 WHERE item_id = $1 AND pending_version IS NULL";
pub(crate) const PROMOTE_PENDING: &str = "UPDATE producers SET pending_version = NULL, status = $3, \
     last_rotation_ms = $4, next_rotation_ms = $5, claimed_by = '', claim_until_ms = 0 \
     WHERE item_id = $1 AND pending_version = $2 AND claimed_by = $6";
pub(crate) const SET_ITEM_LAST_VERSION: &str =
    "UPDATE items SET last_version = $2, modified_ms = $3 WHERE id = $1";
pub(crate) const SET_PRODUCER_STATUS: &str = "UPDATE producers SET \
     pending_version = CASE WHEN $4 THEN NULL ELSE pending_version END, status = $2, \
     next_rotation_ms = $3, claimed_by = '', claim_until_ms = 0 WHERE item_id = $1 AND claimed_by = $5";
/// Producers due for rotation (or with a rotation to finish), unclaimed.
pub(crate) const DUE_ROTATIONS: &str = "SELECT i.name FROM producers p JOIN items i ON i.id = p.item_id \
     WHERE p.claim_until_ms < $1 AND p.next_rotation_ms <= $1 \
     AND (p.next_rotation_ms > 0 OR p.pending_version IS NOT NULL) \
     ORDER BY p.next_rotation_ms LIMIT $2";
/// Take (or, by its holder, extend) the claim on an item.
pub(crate) const CLAIM_PRODUCER: &str = "UPDATE producers SET claimed_by = $2, claim_until_ms = $3 \
     WHERE item_id = $1 AND (claim_until_ms < $4 OR claimed_by = $2)";
pub(crate) const RELEASE_PRODUCER: &str = "UPDATE producers SET claimed_by = '', claim_until_ms = 0 WHERE item_id = $1 AND claimed_by = $2";

pub(crate) const INSERT_LEASE: &str = concat!(
    "INSERT INTO leases (",
    lease_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
/// Metrics gauges (`Store::usage_counts`).
pub(crate) const COUNT_LIVE_TOKENS: &str = "SELECT COUNT(*) FROM tokens WHERE expires_ms > $1";
pub(crate) const COUNT_LEASES_BY_STATE: &str = "SELECT \
    COALESCE(SUM(CASE WHEN state = 'live' AND attempts = 0 THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN state = 'live' AND attempts > 0 THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN state = 'revoked' THEN 1 ELSE 0 END), 0) FROM leases";
pub(crate) const COUNT_LIVE_LEASES_OF_ITEM: &str =
    "SELECT COUNT(*) FROM leases WHERE item_id = $1 AND state = 'live'";
pub(crate) const GET_LEASE: &str =
    concat!("SELECT ", lease_columns!(), " FROM leases WHERE id = $1");
pub(crate) const LIST_LEASES: &str = concat!(
    "SELECT ",
    lease_columns!(),
    " FROM leases WHERE ($1 = 0 OR item_id = $1) AND ($2 = 0 OR state = 'live') \
     AND ($3 = 0 OR attempts > 0) ORDER BY expires_ms, id LIMIT $4"
);
pub(crate) const COUNT_LEASES: &str = "SELECT COUNT(*) FROM leases WHERE state = 'live'";
/// Not while a node holds the lease (it may be dropping the user).
pub(crate) const SET_LEASE_EXPIRY: &str = "UPDATE leases SET expires_ms = $2, next_attempt_ms = 0 \
     WHERE id = $1 AND state = 'live' AND claim_until_ms < $3";
pub(crate) const FINISH_LEASE: &str = "UPDATE leases SET state = 'revoked', revoked_ms = $3, last_error = '', \
     claimed_by = '', claim_until_ms = 0 WHERE id = $1 AND claimed_by = $2 AND state = 'live'";
pub(crate) const FAIL_LEASE: &str = "UPDATE leases SET attempts = attempts + 1, last_error = $3, next_attempt_ms = $4, \
     claimed_by = '', claim_until_ms = 0 WHERE id = $1 AND claimed_by = $2 AND state = 'live'";
/// Claim the leases of [`CLAIMABLE_LEASES`] for node `$6` until `$7`; on
/// PostgreSQL rows another node is claiming are skipped, not waited for.
macro_rules! claim_leases {
    ($lock:literal) => {
        concat!(
            "UPDATE leases SET claimed_by = $6, claim_until_ms = $7 WHERE id IN (",
            "SELECT id FROM leases WHERE state = 'live' AND claim_until_ms < $1 AND ( \
               ($2 = 0 AND next_attempt_ms <= $1 AND (expires_ms <= $1 OR (token_hash IS NOT NULL AND NOT EXISTS \
                  (SELECT 1 FROM tokens t WHERE t.token_hash = leases.token_hash AND t.expires_ms > $1)))) \
               OR ($2 = 1 AND item_id = $3) OR ($2 = 2 AND id = $4)) \
             ORDER BY expires_ms LIMIT $5",
            $lock,
            ") AND state = 'live' AND claim_until_ms < $1 RETURNING ",
            lease_columns!()
        )
    };
}
pub(crate) const CLAIM_LEASES_SQLITE: &str = claim_leases!("");
pub(crate) const CLAIM_LEASES_PG: &str = claim_leases!(" FOR UPDATE SKIP LOCKED");

// ---- issued certificates ----

macro_rules! cert_columns {
    () => {
        "issuer_id, serial, issuer_name, kind, signer_key, signer_version, subject, names, access_id, \
         identity, request_id, issued_ms, expires_ms, revoked_ms, revocation_reason"
    };
}

pub(crate) const INSERT_CERT: &str = concat!(
    "INSERT INTO certificates (",
    cert_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
);
/// By primary key.
pub(crate) const GET_CERT: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE issuer_id = $1 AND serial = $2"
);
/// One issuer's, by name (index `certificates_issuer`).
pub(crate) const LIST_CERTS_OF_ISSUER: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE issuer_name = $1 AND ($2 = 0 OR revoked_ms > 0) AND expires_ms >= $3 \
     ORDER BY issued_ms DESC, serial LIMIT $4"
);
pub(crate) const LIST_CERTS: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE ($1 = 0 OR revoked_ms > 0) AND expires_ms >= $2 \
     ORDER BY issued_ms DESC, serial LIMIT $3"
);
/// Every revoked, unexpired certificate a key version signed (index
/// `certificates_signer`): a CRL is complete or not served.
pub(crate) const REVOKED_CERTS_OF_SIGNER: &str = concat!(
    "SELECT ",
    cert_columns!(),
    " FROM certificates WHERE signer_key = $1 AND signer_version = $2 AND revoked_ms > 0 \
     AND expires_ms >= $3 ORDER BY revoked_ms, serial"
);
pub(crate) const REVOKE_CERT: &str = "UPDATE certificates SET revoked_ms = $3, revocation_reason = $4 \
     WHERE issuer_id = $1 AND serial = $2 AND revoked_ms = 0";
