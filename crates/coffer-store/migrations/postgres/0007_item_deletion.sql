-- Soft deletion (delete-item with delete-in-days): an item pending deletion
-- keeps its row, versions and name until `deletion_ms` (Unix ms; 0 = not
-- pending), when the purge job deletes it; restore-item sets it back to 0.
-- Its value cannot be read meanwhile, list-items skips it, and its name
-- stays taken (the UNIQUE name) until it is purged or restored.
ALTER TABLE items ADD COLUMN deletion_ms BIGINT NOT NULL DEFAULT 0;

-- The purge job's scan: only pending items are indexed.
CREATE INDEX items_pending_deletion ON items (deletion_ms) WHERE deletion_ms > 0;
