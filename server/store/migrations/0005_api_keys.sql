-- API keys. The secret is never stored: only the SHA-256 of its secret part, so a copy of the
-- database lets no one in. A revoked key keeps its row (revoked_at set) so that `trellis keys
-- list` can still say who had access and until when.

CREATE TABLE api_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    workspace     TEXT    NOT NULL REFERENCES workspaces (id),
    role          TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    name          TEXT    NOT NULL,
    secret_sha256 BLOB    NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT;
