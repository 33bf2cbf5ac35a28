-- Issue 9 (trustworthy pipeline), PostgreSQL flavour. Keep in step with
-- ../sqlite/0003_pipeline.sql.

-- Version numbers are never reused: highest_version is the highest number
-- ever given; last_version the newest that still exists.
ALTER TABLE items ADD COLUMN highest_version INTEGER NOT NULL DEFAULT 0;
UPDATE items SET highest_version = last_version;
-- generic or password (a password-manager entry stored as JSON).
ALTER TABLE items ADD COLUMN sub_type TEXT NOT NULL DEFAULT 'generic';

-- MAC of (seq, hash) with the audit key: the head cannot be pointed at an
-- earlier record, or reset, without the key. Empty until the first append.
ALTER TABLE audit_head ADD COLUMN mac BYTEA NOT NULL DEFAULT ''::bytea;

-- audit-access "own": one identity of an access ID shared by many jobs.
CREATE INDEX audit_log_identity ON audit_log (access_id, identity, seq);
