-- The semantic tier's conversation embeddings, one row per (workspace, model, conversation).
-- `text_hash` is the first 8 bytes of the SHA-256 of the text embedded, as a signed integer;
-- `vector` the embedding as little-endian 32-bit floats; `seq` the order the scan reads them in.

CREATE TABLE embeddings (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace    text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    model        text COLLATE "C" NOT NULL,
    source       text COLLATE "C" NOT NULL,
    external_id  text COLLATE "C" NOT NULL,
    text_hash    bigint NOT NULL,
    vector       bytea  NOT NULL CHECK (length(vector) % 4 = 0),
    UNIQUE (workspace, model, source, external_id)
);
CREATE INDEX embeddings_by_model ON embeddings (workspace, model, seq);
