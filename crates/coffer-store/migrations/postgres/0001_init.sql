-- Coffer schema, PostgreSQL flavour. Keep in step with ../sqlite/0001_init.sql:
-- same tables, columns and indexes; only the column types differ
-- (BIGINT for i64, INTEGER for i32, BOOLEAN, BYTEA).
--
-- Conventions (both backends):
--   * times are Unix milliseconds (BIGINT);
--   * enums are stored as their stable strings (AuthMethodKind::as_str, ...);
--   * lists and maps (tags, bound IPs, sub-claims, claims, config) are JSON text;
--   * capabilities are the integer bits of coffer_core::policy::Caps;
--   * names are compared byte-wise: name columns use COLLATE "C", which is
--     what prefix listing and ordering rely on (and matches SQLite).

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- Bumped by every change other nodes must notice (auth methods, roles,
-- rules, associations, token revocation). Exactly one row.
CREATE TABLE generation (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 0);

-- Data keys, wrapped by the master key. Never deleted while versions use them.
CREATE TABLE data_keys (
    id         BIGINT NOT NULL PRIMARY KEY,
    wrapped    BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE auth_methods (
    name              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    access_id         TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL,
    description       TEXT NOT NULL,
    access_key_hash   BYTEA,              -- keyed hash, API-key methods only
    access_expires_ms BIGINT NOT NULL,    -- 0 = never
    bound_ips         TEXT NOT NULL,      -- JSON array of CIDRs
    token_ttl_secs    BIGINT NOT NULL,    -- 0 = server default
    force_sub_claims  BOOLEAN NOT NULL,
    config            TEXT NOT NULL,      -- JSON
    created_ms        BIGINT NOT NULL,
    modified_ms       BIGINT NOT NULL
);

CREATE TABLE roles (
    name         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    description  TEXT NOT NULL,
    audit_access TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    modified_ms  BIGINT NOT NULL
);

CREATE TABLE role_rules (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- keeps the rules in insertion order
    role_name TEXT COLLATE "C" NOT NULL REFERENCES roles (name) ON DELETE CASCADE ON UPDATE CASCADE,
    rule_type TEXT NOT NULL,
    path      TEXT NOT NULL,
    caps      INTEGER NOT NULL,
    UNIQUE (role_name, rule_type, path)
);

CREATE TABLE associations (
    assoc_id         TEXT NOT NULL PRIMARY KEY,
    role_name        TEXT COLLATE "C" NOT NULL REFERENCES roles (name) ON DELETE CASCADE ON UPDATE CASCADE,
    auth_method_name TEXT COLLATE "C" NOT NULL REFERENCES auth_methods (name) ON DELETE CASCADE ON UPDATE CASCADE,
    sub_claims       TEXT NOT NULL,       -- JSON object: claim -> [patterns]
    case_sensitive   BOOLEAN NOT NULL,
    created_ms       BIGINT NOT NULL
);
CREATE INDEX associations_role ON associations (role_name);
CREATE INDEX associations_auth_method ON associations (auth_method_name);

CREATE TABLE items (
    id           BIGINT NOT NULL PRIMARY KEY,   -- chosen by the caller (bound into the ciphertext)
    name         TEXT COLLATE "C" NOT NULL UNIQUE,
    item_type    TEXT NOT NULL,
    format       TEXT NOT NULL,
    description  TEXT NOT NULL,
    tags         TEXT NOT NULL,      -- JSON array
    max_versions INTEGER NOT NULL,   -- 0 = server default
    last_version INTEGER NOT NULL,   -- always the highest stored version
    enabled      BOOLEAN NOT NULL,
    created_ms   BIGINT NOT NULL,
    modified_ms  BIGINT NOT NULL
);

CREATE TABLE item_versions (
    item_id    BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    key_id     BIGINT NOT NULL REFERENCES data_keys (id),
    sealed     BYTEA NOT NULL,       -- nonce || ciphertext || tag
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (item_id, version)
);

-- Issued tokens, by keyed hash. Deleted with their auth method.
CREATE TABLE tokens (
    token_hash       BYTEA NOT NULL PRIMARY KEY,
    access_id        TEXT NOT NULL,
    auth_method_name TEXT COLLATE "C" NOT NULL REFERENCES auth_methods (name) ON DELETE CASCADE ON UPDATE CASCADE,
    identity         TEXT NOT NULL,
    claims           TEXT NOT NULL,  -- JSON object: claim -> [values]
    issued_ms        BIGINT NOT NULL,
    expires_ms       BIGINT NOT NULL
);
CREATE INDEX tokens_expires ON tokens (expires_ms);
CREATE INDEX tokens_auth_method ON tokens (auth_method_name);

-- The audit hash chain: hash = MAC(record without hash), prev_hash = the
-- previous record's hash (empty for seq 1).
CREATE TABLE audit_log (
    seq         BIGINT NOT NULL PRIMARY KEY,
    time_ms     BIGINT NOT NULL,
    request_id  TEXT NOT NULL,
    operation   TEXT NOT NULL,
    object      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    status      INTEGER NOT NULL,
    error       TEXT NOT NULL,
    access_id   TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    identity    TEXT NOT NULL,
    client_type TEXT NOT NULL,
    peer        TEXT NOT NULL,
    prev_hash   BYTEA NOT NULL,
    hash        BYTEA NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time_ms);
CREATE INDEX audit_log_access_id ON audit_log (access_id, seq);
CREATE INDEX audit_log_object ON audit_log (object, seq);
CREATE INDEX audit_log_operation ON audit_log (operation, seq);

-- The chain head: the last record's seq and hash, moved in the same
-- transaction as the records. Exactly one row; locking it (FOR UPDATE) is
-- the chain lock that serializes appends from several nodes.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ''::bytea);
