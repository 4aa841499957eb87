-- The first schema, as in SQLite's 0001: every ingested table is keyed by (workspace, source,
-- external_id), which makes ingest idempotent, and carries `seq`, the order of first insertion,
-- which is the order the engine is rebuilt in. An identity column never reuses a value, and an
-- upsert that updates keeps the row's `seq`.
-- Keys and ids compare byte by byte (COLLATE "C"), as SQLite's BINARY collation does, so that
-- listings and pages come in the same order whatever the database's locale.
-- Lists are `json`, which keeps the text exactly as written (and, unlike `jsonb`, accepts every
-- string JSON can hold).

CREATE TABLE workspaces (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    created_at  bigint NOT NULL
);

INSERT INTO workspaces (id, created_at)
VALUES ('default', (extract(epoch FROM now()) * 1000)::bigint);

CREATE TABLE strategy_versions (
    workspace   text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    version     bigint NOT NULL CHECK (version > 0),
    created_at  bigint NOT NULL,
    strategy    json   NOT NULL,
    PRIMARY KEY (workspace, version)
);

CREATE TABLE people (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace     text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    source        text COLLATE "C" NOT NULL,
    external_id   text COLLATE "C" NOT NULL,
    display_name  text    NOT NULL,
    bio           text    NOT NULL,
    member        boolean NOT NULL,
    identities    json    NOT NULL,
    crm_ids       json    NOT NULL,
    created_at    bigint,
    UNIQUE (workspace, source, external_id)
);

CREATE TABLE conversations (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace         text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    source            text COLLATE "C" NOT NULL,
    external_id       text COLLATE "C" NOT NULL,
    platform          text,
    url               text    NOT NULL,
    title             text    NOT NULL,
    body              text    NOT NULL,
    tags              json    NOT NULL,
    author            text COLLATE "C",
    open              boolean NOT NULL,
    created_at        bigint,
    last_activity_at  bigint,
    UNIQUE (workspace, source, external_id)
);

CREATE TABLE posts (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace     text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    source        text COLLATE "C" NOT NULL,
    external_id   text COLLATE "C" NOT NULL,
    conversation  text COLLATE "C" NOT NULL,
    author        text COLLATE "C",
    parent        text,
    created_at    bigint,
    text          text   NOT NULL,
    reactions     bigint NOT NULL CHECK (reactions >= 0),
    UNIQUE (workspace, source, external_id)
);

CREATE TABLE assets (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace       text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    source          text COLLATE "C" NOT NULL,
    external_id     text COLLATE "C" NOT NULL,
    url             text    NOT NULL,
    title           text    NOT NULL,
    text            text    NOT NULL,
    kind            text    NOT NULL,
    own             boolean NOT NULL,
    bookmark_count  bigint  NOT NULL CHECK (bookmark_count >= 0),
    share_count     bigint  NOT NULL CHECK (share_count >= 0),
    tags            json    NOT NULL,
    created_at      bigint,
    UNIQUE (workspace, source, external_id)
);

-- A conversation's posts in the order `posts_of` returns them (unknown times first, as in
-- SQLite) and the start-up scan of a workspace in `seq` order.
CREATE INDEX posts_by_conversation
    ON posts (workspace, source, conversation, created_at NULLS FIRST, seq);
CREATE INDEX conversations_by_workspace ON conversations (workspace, seq);
CREATE INDEX posts_by_workspace ON posts (workspace, seq);
CREATE INDEX people_by_workspace ON people (workspace, seq);
CREATE INDEX assets_by_workspace ON assets (workspace, seq);
