-- Audit retention: what is left of the pruned start of the chain. One row
-- at most (none until the first prune): the last pruned record's seq, hash
-- and time, and a MAC over them with the audit key. The first remaining
-- record links to `hash`, so `audit verify` still proves the rest.
CREATE TABLE audit_checkpoint (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq        BIGINT NOT NULL,
    hash       BYTEA NOT NULL,
    time_ms    BIGINT NOT NULL,
    mac        BYTEA NOT NULL,
    pruned_ms  BIGINT NOT NULL
);

-- Fewer bytes per audit record (see docs/operations.md, "Audit bytes per request"):
-- prev_hash is the previous record's hash, so it is read back by a join
-- instead of stored (records already written keep verifying: the MAC
-- covers the same bytes); (access_id, seq) is served by the
-- (access_id, identity, seq) index of migration 3.
-- The column stays, nullable and no longer written (a NULL costs a bit in
-- the row's null bitmap): nodes of the previous version, still running
-- during a rolling upgrade of several nodes, keep inserting their records.
ALTER TABLE audit_log ALTER COLUMN prev_hash DROP NOT NULL;
DROP INDEX audit_log_access_id;
