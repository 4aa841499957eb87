-- API keys, as in SQLite's 0005: only the SHA-256 of a key's secret part is stored, and a
-- revoked key keeps its row (revoked_at set) so that `trellis keys list` says until when.

CREATE TABLE api_keys (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    workspace     text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    role          text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    name          text NOT NULL,
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    bigint NOT NULL,
    revoked_at    bigint
);
