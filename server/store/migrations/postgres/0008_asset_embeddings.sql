-- The semantic tier's asset embeddings, beside the conversations' (0004): an asset may be kept
-- under the same reference as a conversation (an earlier thread offered as an asset), and the
-- two texts differ, so each kind has its table. Same columns and meaning as `embeddings`.

CREATE TABLE asset_embeddings (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace    text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    model        text COLLATE "C" NOT NULL,
    source       text COLLATE "C" NOT NULL,
    external_id  text COLLATE "C" NOT NULL,
    text_hash    bigint NOT NULL,
    vector       bytea  NOT NULL CHECK (length(vector) % 4 = 0),
    UNIQUE (workspace, model, source, external_id)
);
CREATE INDEX asset_embeddings_by_model ON asset_embeddings (workspace, model, seq);
