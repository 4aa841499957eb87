-- Feedback on suggestions (see `trellis_core::feedback`): each record as it came, under the id
-- the client gave or the service derived. The suggestion's parts that lists filter on are
-- columns; the whole record is kept as JSON beside them.
CREATE TABLE feedback (
    workspace                 TEXT    NOT NULL REFERENCES workspaces (id),
    id                        TEXT    NOT NULL,
    kind                      TEXT    NOT NULL,
    outcome                   TEXT    NOT NULL,
    at                        INTEGER NOT NULL,
    recorded_at               INTEGER NOT NULL,
    person_source             TEXT,
    person_external_id        TEXT,
    conversation_source       TEXT,
    conversation_external_id  TEXT,
    body                      TEXT    NOT NULL CHECK (json_valid(body)),
    PRIMARY KEY (workspace, id)
) STRICT;
CREATE INDEX feedback_by_time ON feedback (workspace, at, id);
