-- Several replicas on one database.
--
-- The change log: every committed write of a workspace, numbered 1, 2, … by
-- `workspaces.change_seq`, which the write bumps under the workspace's row lock. Writes to a
-- workspace already follow one another under that lock, so the numbers are handed out in commit
-- order without gaps, and a replica that has applied change N knows that N + 1 is the next one
-- to commit. `change` is the change as JSON (new records with the versions they replaced, a
-- strategy version, a reload, embeddings). Old changes are pruned; forgetting people removes
-- every change of their workspace, since changes carry text.
--
-- Sync leases: the replica that syncs a source holds a lease on it until `lease_expires_at`
-- (milliseconds since the epoch), renewed while the sync runs, so that one replica at a time
-- syncs a source and a sync whose replica died is taken over by another.

ALTER TABLE workspaces ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE changes (
    workspace  text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    seq        bigint NOT NULL CHECK (seq > 0),
    at         bigint NOT NULL,
    change     json   NOT NULL,
    PRIMARY KEY (workspace, seq)
);

CREATE INDEX changes_by_time ON changes (at);

ALTER TABLE sources ADD COLUMN lease_holder text;
ALTER TABLE sources ADD COLUMN lease_expires_at bigint;
