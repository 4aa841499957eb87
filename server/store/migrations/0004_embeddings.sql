-- The semantic tier's conversation embeddings, so that a restart does not embed the corpus again.
-- One row per (workspace, model, conversation): vectors of different models are never mixed.
-- `text_hash` fingerprints the exact text embedded (the first 8 bytes of its SHA-256, as a
-- signed integer); a vector whose conversation text has changed since is ignored and replaced.
-- `vector` is the embedding as little-endian 32-bit floats.

CREATE TABLE embeddings (
    workspace    TEXT    NOT NULL REFERENCES workspaces (id),
    model        TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    text_hash    INTEGER NOT NULL,
    vector       BLOB    NOT NULL CHECK (length(vector) % 4 = 0),
    PRIMARY KEY (workspace, model, source, external_id)
) STRICT;
