-- Sync leases, as in PostgreSQL's 0006: the replica that syncs a source holds a lease on it
-- until `lease_expires_at` (milliseconds since the epoch), renewed while the sync runs, so that
-- no two processes sync one source at once and a sync whose process died can be taken over.
-- (The change log of PostgreSQL's 0006 has no counterpart here: one process owns a SQLite file.)

ALTER TABLE sources ADD COLUMN lease_holder TEXT;
ALTER TABLE sources ADD COLUMN lease_expires_at INTEGER;
