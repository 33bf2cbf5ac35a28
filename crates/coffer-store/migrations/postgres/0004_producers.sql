-- Issue 10 (dynamic and rotated secrets), PostgreSQL flavour. Keep in step with
-- ../sqlite/0004_producers.sql.

-- Stored admin connections. The password is sealed (AAD = id, version).
CREATE TABLE targets (
    id          BIGINT NOT NULL PRIMARY KEY,   -- chosen by the caller (bound into the ciphertext)
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    target_type TEXT NOT NULL,                  -- mysql | postgres
    description TEXT NOT NULL,
    details     TEXT NOT NULL,                  -- JSON: host, port, user, database, TLS (no secret)
    key_id      BIGINT NOT NULL REFERENCES data_keys (id),
    sealed      BYTEA NOT NULL,
    version     INTEGER NOT NULL,
    created_ms  BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL
);

-- Settings of dynamic and rotated secrets (their secret parts are the
-- item's sealed versions). claimed_by/claim_until_ms: the node rotating it.
CREATE TABLE producers (
    item_id          BIGINT NOT NULL PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    target_name      TEXT COLLATE "C",                      -- NULL: inline connection
    settings         TEXT NOT NULL,             -- JSON (no secret)
    status           TEXT NOT NULL,
    pending_version  INTEGER,                   -- rotation written, not yet confirmed
    last_rotation_ms BIGINT NOT NULL,
    next_rotation_ms BIGINT NOT NULL,          -- 0 = no automatic rotation
    claimed_by       TEXT NOT NULL DEFAULT '',
    claim_until_ms   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX producers_target ON producers (target_name);
CREATE INDEX producers_due ON producers (next_rotation_ms);

-- Issued temporary credentials. A lease is written before its database user
-- is created and kept (state revoked) after the user is dropped.
CREATE TABLE leases (
    id              TEXT NOT NULL PRIMARY KEY,  -- the database user name
    item_id         BIGINT NOT NULL,           -- no FK: revoked before the item goes
    item_name       TEXT NOT NULL,
    access_id       TEXT NOT NULL,
    identity        TEXT NOT NULL,
    token_hash      BYTEA,                       -- tied to this session token
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    state           TEXT NOT NULL,              -- live | revoked
    attempts        INTEGER NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    last_error      TEXT NOT NULL,
    revoked_ms      BIGINT NOT NULL,
    claimed_by      TEXT NOT NULL DEFAULT '',
    claim_until_ms  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX leases_due ON leases (state, expires_ms);
CREATE INDEX leases_item ON leases (item_id, state);
CREATE INDEX leases_token ON leases (token_hash);
