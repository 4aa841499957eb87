-- People: what a person wrote is looked up by author, newest first, for evidence and profiles.
CREATE INDEX posts_by_author
    ON posts (workspace, source, author, created_at DESC NULLS LAST, seq DESC);
CREATE INDEX conversations_by_author
    ON conversations (workspace, source, author, created_at DESC NULLS LAST, seq DESC);


-- Merges of people believed to be one, undone ones kept with the time they were undone; and the
-- people who asked to be forgotten, by key only, so that a later sync drops them again.
CREATE TABLE merges (
    workspace           text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    id                  text COLLATE "C" NOT NULL,
    target_source       text    NOT NULL,
    target_external_id  text    NOT NULL,
    others              json    NOT NULL,
    confidence          double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    reasons             json    NOT NULL,
    automatic           boolean NOT NULL,
    created_at          bigint  NOT NULL,
    undone_at           bigint,
    PRIMARY KEY (workspace, id)
);

CREATE TABLE forgotten (
    workspace     text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    source        text COLLATE "C" NOT NULL,
    external_id   text COLLATE "C" NOT NULL,
    forgotten_at  bigint NOT NULL,
    PRIMARY KEY (workspace, source, external_id)
);
