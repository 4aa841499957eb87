-- People: what a person wrote is looked up by author, newest first, for evidence and profiles.
CREATE INDEX posts_by_author ON posts (workspace, source, author, created_at);
CREATE INDEX conversations_by_author ON conversations (workspace, source, author, created_at);

-- Merges of people believed to be one: every merge is kept, undone ones with the time they were
-- undone, so the trail of who was merged with whom, why and by what evidence stays readable.
CREATE TABLE merges (
    workspace           TEXT    NOT NULL REFERENCES workspaces (id),
    id                  TEXT    NOT NULL,
    target_source       TEXT    NOT NULL,
    target_external_id  TEXT    NOT NULL,
    others              TEXT    NOT NULL CHECK (json_valid(others)),
    confidence          REAL    NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    reasons             TEXT    NOT NULL CHECK (json_valid(reasons)),
    automatic           INTEGER NOT NULL CHECK (automatic IN (0, 1)),
    created_at          INTEGER NOT NULL,
    undone_at           INTEGER,
    PRIMARY KEY (workspace, id)
) STRICT;

-- People who asked to be forgotten. Only the record keys stay, so that what a later sync brings
-- back of them is dropped or blanked before it is stored.
CREATE TABLE forgotten (
    workspace     TEXT    NOT NULL REFERENCES workspaces (id),
    source        TEXT    NOT NULL,
    external_id   TEXT    NOT NULL,
    forgotten_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, source, external_id)
) STRICT;
