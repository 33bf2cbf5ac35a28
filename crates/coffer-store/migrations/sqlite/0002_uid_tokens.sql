-- Universal Identity tokens, SQLite flavour. Keep in step with
-- ../postgres/0002_uid_tokens.sql (same columns and indexes).
--
-- One row per token; rotation replaces token_hash in place (the ID stays),
-- revocation sets revoked (rows are kept so the tree stays listable).
-- Tokens go with their auth method (ON DELETE CASCADE on the access ID).
CREATE TABLE uid_tokens (
    token_id         TEXT NOT NULL PRIMARY KEY,
    token_hash       BLOB NOT NULL UNIQUE,   -- keyed hash of the current secret, never the secret
    parent_id        TEXT REFERENCES uid_tokens (token_id) ON DELETE CASCADE,   -- NULL for a root token
    access_id        TEXT NOT NULL REFERENCES auth_methods (access_id) ON DELETE CASCADE ON UPDATE CASCADE,
    depth            INTEGER NOT NULL,       -- 1 for a root token
    ttl_secs         INTEGER NOT NULL,
    expires_ms       INTEGER NOT NULL,
    deny_rotate      INTEGER NOT NULL,       -- boolean
    deny_inheritance INTEGER NOT NULL,       -- boolean
    comment          TEXT NOT NULL,
    revoked          INTEGER NOT NULL,       -- boolean
    last_rotated_ms  INTEGER NOT NULL,       -- 0 = never
    created_ms       INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX uid_tokens_parent ON uid_tokens (parent_id);
CREATE INDEX uid_tokens_access_id ON uid_tokens (access_id);

-- Session tokens minted from a UID token carry its ID as their identity;
-- revoking the UID token deletes them by (access_id, identity).
CREATE INDEX tokens_identity ON tokens (access_id, identity);
