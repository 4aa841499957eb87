-- The semantic tier's asset embeddings, beside the conversations' (0004): an asset may be kept
-- under the same reference as a conversation (an earlier thread offered as an asset), and the
-- two texts differ, so each kind has its table. Same columns and meaning as `embeddings`.

CREATE TABLE asset_embeddings (
    workspace    TEXT    NOT NULL REFERENCES workspaces (id),
    model        TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    text_hash    INTEGER NOT NULL,
    vector       BLOB    NOT NULL CHECK (length(vector) % 4 = 0),
    PRIMARY KEY (workspace, model, source, external_id)
) STRICT;
