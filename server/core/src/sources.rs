//! Sources: configured connector instances (a plugin, its config, a schedule) and the sync state
//! the plugin host commits for them. Core owns the storage contract ([`SourceStore`]) so the
//! plugin host can persist checkpoints without knowing the database, exactly as the engine does
//! with [`crate::store::Store`].

use crate::domain::{Millis, WorkspaceId};
use crate::error::{CoreResult, Violation};

/// Where a source's syncs stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncStatus {
    #[default]
    Idle,
    Running,
    Succeeded,
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Idle => "idle",
            SyncStatus::Running => "running",
            SyncStatus::Succeeded => "succeeded",
            SyncStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            SyncStatus::Idle,
            SyncStatus::Running,
            SyncStatus::Succeeded,
            SyncStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

/// One configured connector instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// 1 to 64 characters of a-z, 0-9, '-' or '_'; the `source` of every record it brings.
    pub id: String,
    /// The connector's name, as its spec gives it.
    pub connector: String,
    pub display_name: String,
    /// The connector's config, as JSON, without the fields its schema marks as secrets.
    pub config_json: String,
    /// The secret fields of the config, sealed by the plugin host with the operator's key;
    /// empty when none is set. Opaque to everything but the host.
    pub sealed_secrets: String,
    /// The names of the secret fields that are set (e.g. `api_key`), so that answers can say
    /// which are set without opening them.
    pub secret_names: Vec<String>,
    /// Seconds between scheduled syncs; 0 for manual only.
    pub sync_interval_seconds: u32,
    pub isolated: bool,
    pub status: SyncStatus,
    pub last_sync_at: Option<Millis>,
    pub last_error: String,
    /// Records covered by committed checkpoints, over every sync.
    pub records_synced: u64,
}

/// Checks a source id.
pub fn check_source_id(id: &str) -> Result<(), Violation> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Violation::new(
            "source.id",
            format!("{id:?} must be 1 to 64 characters of a-z, 0-9, '-' or '_', e.g. forum"),
        ))
    }
}

/// The persistence of sources and their sync state.
pub trait SourceStore: Send + Sync + 'static {
    /// Inserts a new source; `FailedPrecondition` when the id is taken.
    fn create_source(&self, workspace: &WorkspaceId, source: &Source) -> CoreResult<()>;
    /// Replaces the configuration of an existing source (connector, name, config, secrets,
    /// schedule, isolation); its sync status and state are kept. `NotFound` when it does not
    /// exist.
    fn update_source(&self, workspace: &WorkspaceId, source: &Source) -> CoreResult<()>;
    /// Replaces only the sealed secrets of a source (sealing them anew with another key, or
    /// taking secrets out of a config that held them in clear when `config_json` is given).
    /// `NotFound` when it does not exist.
    fn set_source_secrets(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        config_json: Option<&str>,
        sealed_secrets: &str,
        secret_names: &[String],
    ) -> CoreResult<()>;
    fn source(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<Option<Source>>;
    /// Sources ordered by id, after `after`, at most `limit`.
    fn sources(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        after: Option<&str>,
    ) -> CoreResult<Vec<Source>>;
    /// Every source of every workspace, for the scheduler.
    fn all_sources(&self) -> CoreResult<Vec<(WorkspaceId, Source)>>;
    /// Deletes a source and its sync state; false when it did not exist.
    fn delete_source(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<bool>;

    /// The committed state of every stream of a source: (stream, state JSON).
    fn sync_state(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<Vec<(String, String)>>;
    /// Forgets the sync state (a full refresh).
    fn clear_sync_state(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<()>;
    /// Commits one checkpoint, atomically with the count of records it covers. Called only
    /// after those records are stored.
    fn commit_checkpoint(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        stream: &str,
        state_json: &str,
        records: u64,
    ) -> CoreResult<()>;
    /// Takes or extends the sync lease of a source for `holder`, for `ttl` from now by the
    /// database's clock. Succeeds (`None`) when no one holds it, `holder` does, or the last
    /// holder's lease ran out; otherwise names the holder. A missing source is `NotFound`.
    fn take_lease(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> CoreResult<Option<String>>;
    /// Gives up the lease if `holder` holds it.
    fn release_lease(&self, workspace: &WorkspaceId, id: &str, holder: &str) -> CoreResult<()>;
    /// Ends the source's lease whoever holds it: only for a holder known to be dead (the last
    /// process on a store one process owns).
    fn break_lease(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<()>;
    /// Whether someone holds an unexpired lease on the source, by the database's clock.
    fn lease_is_live(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<bool>;

    /// Records the outcome of a sync (or its start).
    fn set_sync_status(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        status: SyncStatus,
        last_error: &str,
        at: Option<Millis>,
    ) -> CoreResult<()>;
}
