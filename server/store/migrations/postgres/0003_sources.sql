-- Sources (configured connector instances) and the sync state the plugin host commits for them,
-- one row per stream; a checkpoint replaces its stream's row and adds the records it covers to
-- the source's count in the same transaction.

CREATE TABLE sources (
    workspace             text COLLATE "C" NOT NULL REFERENCES workspaces (id),
    id                    text COLLATE "C" NOT NULL,
    connector             text    NOT NULL,
    display_name          text    NOT NULL,
    config_json           text    NOT NULL,
    sync_interval_seconds bigint  NOT NULL,
    isolated              boolean NOT NULL,
    status                text    NOT NULL,
    last_sync_at          bigint,
    last_error            text    NOT NULL,
    records_synced        bigint  NOT NULL,
    PRIMARY KEY (workspace, id)
);

CREATE TABLE source_state (
    workspace   text COLLATE "C" NOT NULL,
    source      text COLLATE "C" NOT NULL,
    stream      text COLLATE "C" NOT NULL,
    state_json  text   NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (workspace, source, stream),
    FOREIGN KEY (workspace, source) REFERENCES sources (workspace, id) ON DELETE CASCADE
);
