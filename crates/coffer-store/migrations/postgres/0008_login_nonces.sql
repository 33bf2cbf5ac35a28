-- Single-use login nonces, PostgreSQL flavour. Keep in step with
-- ../sqlite/0008_login_nonces.sql (same columns and indexes).
--
-- A login challenge (cert auth) or an OIDC login state is MAC-bound and
-- carries its own expiry, so no node has to remember issuing it; using one
-- inserts its keyed hash here, and a second use (on any node) conflicts.
-- An expired nonce is refused whatever this table holds; rows are removed
-- only LOGIN_NONCE_PURGE_GRACE_MS (10 min) after expiry, so a node whose
-- clock runs ahead cannot forget a nonce another node still accepts.
CREATE TABLE login_nonces (
    nonce_hash  BYTEA NOT NULL PRIMARY KEY,   -- keyed hash of the nonce, never the nonce
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX login_nonces_expires ON login_nonces (expires_ms);
