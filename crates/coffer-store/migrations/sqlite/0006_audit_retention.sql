-- Audit retention: what is left of the pruned start of the chain. One row
-- at most (none until the first prune): the last pruned record's seq, hash
-- and time, and a MAC over them with the audit key. The first remaining
-- record links to `hash`, so `audit verify` still proves the rest.
CREATE TABLE audit_checkpoint (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL,
    hash       BLOB NOT NULL,
    time_ms    INTEGER NOT NULL,
    mac        BLOB NOT NULL,
    pruned_ms  INTEGER NOT NULL
) STRICT;

-- Fewer bytes per audit record (see docs/operations.md, "Audit bytes per request"):
-- prev_hash is the previous record's hash, so it is read back by a join
-- instead of stored (records already written keep verifying: the MAC
-- covers the same bytes); (access_id, seq) is served by the
-- (access_id, identity, seq) index of migration 3.
ALTER TABLE audit_log DROP COLUMN prev_hash;
DROP INDEX audit_log_access_id;
