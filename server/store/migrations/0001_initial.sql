-- The first schema. Every ingested table is keyed by (workspace, source, external_id), which is
-- what makes ingest idempotent, and carries `seq`, the order of first insertion, which is the
-- order the engine is rebuilt in. AUTOINCREMENT keeps `seq` from ever being reused, so that
-- order stays meaningful even if rows are deleted one day.
-- Tables are STRICT so a wrongly typed write fails loudly instead of being coerced.

CREATE TABLE workspaces (
    id          TEXT    NOT NULL PRIMARY KEY,
    created_at  INTEGER NOT NULL
) STRICT;

INSERT INTO workspaces (id, created_at)
VALUES ('default', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

CREATE TABLE strategy_versions (
    workspace   TEXT    NOT NULL REFERENCES workspaces (id),
    version     INTEGER NOT NULL CHECK (version > 0),
    created_at  INTEGER NOT NULL,
    strategy    TEXT    NOT NULL CHECK (json_valid(strategy)),
    PRIMARY KEY (workspace, version)
) STRICT;

CREATE TABLE people (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace     TEXT    NOT NULL REFERENCES workspaces (id),
    source        TEXT    NOT NULL,
    external_id   TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    bio           TEXT    NOT NULL,
    member        INTEGER NOT NULL CHECK (member IN (0, 1)),
    identities    TEXT    NOT NULL CHECK (json_valid(identities)),
    crm_ids       TEXT    NOT NULL CHECK (json_valid(crm_ids)),
    created_at    INTEGER,
    UNIQUE (workspace, source, external_id)
) STRICT;

CREATE TABLE conversations (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace         TEXT    NOT NULL REFERENCES workspaces (id),
    source            TEXT    NOT NULL,
    external_id       TEXT    NOT NULL,
    platform          TEXT,
    url               TEXT    NOT NULL,
    title             TEXT    NOT NULL,
    body              TEXT    NOT NULL,
    tags              TEXT    NOT NULL CHECK (json_valid(tags)),
    author            TEXT,
    open              INTEGER NOT NULL CHECK (open IN (0, 1)),
    created_at        INTEGER,
    last_activity_at  INTEGER,
    UNIQUE (workspace, source, external_id)
) STRICT;

CREATE TABLE posts (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace     TEXT    NOT NULL REFERENCES workspaces (id),
    source        TEXT    NOT NULL,
    external_id   TEXT    NOT NULL,
    conversation  TEXT    NOT NULL,
    author        TEXT,
    parent        TEXT,
    created_at    INTEGER,
    text          TEXT    NOT NULL,
    reactions     INTEGER NOT NULL CHECK (reactions >= 0),
    UNIQUE (workspace, source, external_id)
) STRICT;

CREATE TABLE assets (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace       TEXT    NOT NULL REFERENCES workspaces (id),
    source          TEXT    NOT NULL,
    external_id     TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    own             INTEGER NOT NULL CHECK (own IN (0, 1)),
    bookmark_count  INTEGER NOT NULL CHECK (bookmark_count >= 0),
    share_count     INTEGER NOT NULL CHECK (share_count >= 0),
    tags            TEXT    NOT NULL CHECK (json_valid(tags)),
    created_at      INTEGER,
    UNIQUE (workspace, source, external_id)
) STRICT;

-- A conversation's posts, already in the order `posts_of` returns them: the implicit trailing
-- rowid (`seq`) breaks ties between equal creation times by insertion order.
CREATE INDEX posts_by_conversation ON posts (workspace, source, conversation, created_at);

-- A workspace's conversations and posts in `seq` order (again through the implicit trailing
-- rowid), so that the start-up scan reads one workspace without walking the others. People and
-- assets are never scanned, and their unique keys already lead with the workspace for counts.
CREATE INDEX conversations_by_workspace ON conversations (workspace);
CREATE INDEX posts_by_workspace ON posts (workspace);
