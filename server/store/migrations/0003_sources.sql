-- Sources (configured connector instances) and the sync state the plugin host commits for them.
-- A source's state is one row per stream; a checkpoint replaces its stream's row and adds the
-- records it covers to the source's count in the same transaction.

CREATE TABLE sources (
    workspace             TEXT    NOT NULL REFERENCES workspaces (id),
    id                    TEXT    NOT NULL,
    connector             TEXT    NOT NULL,
    display_name          TEXT    NOT NULL,
    config_json           TEXT    NOT NULL,
    sync_interval_seconds INTEGER NOT NULL,
    isolated              INTEGER NOT NULL,
    status                TEXT    NOT NULL,
    last_sync_at          INTEGER,
    last_error            TEXT    NOT NULL,
    records_synced        INTEGER NOT NULL,
    PRIMARY KEY (workspace, id)
) STRICT;

CREATE TABLE source_state (
    workspace   TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    state_json  TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, source, stream),
    FOREIGN KEY (workspace, source) REFERENCES sources (workspace, id) ON DELETE CASCADE
) STRICT;
