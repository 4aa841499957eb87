-- Feedback on suggestions (see `trellis_core::feedback`); the same table as SQLite's 0009.
CREATE TABLE feedback (
    workspace                 text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    id                        text COLLATE "C" NOT NULL,
    kind                      text COLLATE "C" NOT NULL,
    outcome                   text COLLATE "C" NOT NULL,
    at                        bigint NOT NULL,
    recorded_at               bigint NOT NULL,
    person_source             text COLLATE "C",
    person_external_id        text COLLATE "C",
    conversation_source       text COLLATE "C",
    conversation_external_id  text COLLATE "C",
    body                      json NOT NULL,
    PRIMARY KEY (workspace, id)
);
CREATE INDEX feedback_by_time ON feedback (workspace, at, id);
