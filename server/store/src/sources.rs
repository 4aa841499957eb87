//! [`SourceStore`] for SQLite: sources and their committed sync state. A checkpoint is one
//! transaction that replaces the stream's state and adds the records it covers to the source's
//! count, so the count and the state never disagree after a crash.

use rusqlite::{OptionalExtension, params};
use trellis_core::CoreError;
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::error::CoreResult;
use trellis_core::sources::{Source, SourceStore, SyncStatus};

use crate::sqlite::{SqliteStore, ensure_workspace_in, now_millis, storage_error};

const COLUMNS: &str = "id, connector, display_name, config_json, sync_interval_seconds, isolated, \
                       status, last_sync_at, last_error, records_synced, sealed_secrets, \
                       secret_names";

fn source_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Source> {
    let status: String = row.get(6)?;
    Ok(Source {
        id: row.get(0)?,
        connector: row.get(1)?,
        display_name: row.get(2)?,
        config_json: row.get(3)?,
        sync_interval_seconds: row.get(4)?,
        isolated: row.get::<_, i64>(5)? != 0,
        status: SyncStatus::parse(&status).unwrap_or_default(),
        last_sync_at: row.get(7)?,
        last_error: row.get(8)?,
        records_synced: u64::try_from(row.get::<_, i64>(9)?).unwrap_or(0),
        sealed_secrets: row.get(10)?,
        secret_names: names_from_column(&row.get::<_, String>(11)?),
    })
}

/// The names of a source's set secrets, one per line in their column.
pub(crate) fn names_column(names: &[String]) -> String {
    names.join("\n")
}

pub(crate) fn names_from_column(column: &str) -> Vec<String> {
    column
        .lines()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SourceStore for SqliteStore {
    fn create_source(&self, workspace: &WorkspaceId, source: &Source) -> CoreResult<()> {
        let inserted = self.write("creating a source", |transaction| {
            ensure_workspace_in(transaction, workspace)?;
            transaction.execute(
                &format!(
                    "INSERT INTO sources (workspace, {COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (workspace, id) DO NOTHING"
                ),
                params![
                    workspace.as_str(),
                    source.id,
                    source.connector,
                    source.display_name,
                    source.config_json,
                    source.sync_interval_seconds,
                    i64::from(source.isolated),
                    source.status.as_str(),
                    source.last_sync_at,
                    source.last_error,
                    count(source.records_synced),
                    source.sealed_secrets,
                    names_column(&source.secret_names),
                ],
            )
        })?;
        if inserted == 0 {
            return Err(CoreError::FailedPrecondition(format!(
                "source {:?} already exists; update it, or choose another id",
                source.id
            )));
        }
        Ok(())
    }

    fn update_source(&self, workspace: &WorkspaceId, source: &Source) -> CoreResult<()> {
        let updated = self.write("updating a source", |transaction| {
            transaction.execute(
                "UPDATE sources SET connector = ?3, display_name = ?4, config_json = ?5,
                     sync_interval_seconds = ?6, isolated = ?7, sealed_secrets = ?8,
                     secret_names = ?9
                 WHERE workspace = ?1 AND id = ?2",
                params![
                    workspace.as_str(),
                    source.id,
                    source.connector,
                    source.display_name,
                    source.config_json,
                    source.sync_interval_seconds,
                    i64::from(source.isolated),
                    source.sealed_secrets,
                    names_column(&source.secret_names),
                ],
            )
        })?;
        if updated == 0 {
            return Err(CoreError::NotFound {
                kind: "source",
                id: source.id.clone(),
            });
        }
        Ok(())
    }

    fn set_source_secrets(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        config_json: Option<&str>,
        sealed_secrets: &str,
        secret_names: &[String],
    ) -> CoreResult<()> {
        let updated = self.write("sealing a source's secrets", |transaction| {
            transaction.execute(
                "UPDATE sources SET config_json = COALESCE(?3, config_json), sealed_secrets = ?4,
                     secret_names = ?5
                 WHERE workspace = ?1 AND id = ?2",
                params![
                    workspace.as_str(),
                    id,
                    config_json,
                    sealed_secrets,
                    names_column(secret_names),
                ],
            )
        })?;
        if updated == 0 {
            return Err(CoreError::NotFound {
                kind: "source",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    fn source(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<Option<Source>> {
        let connection = self.read()?;
        connection
            .query_row(
                &format!("SELECT {COLUMNS} FROM sources WHERE workspace = ?1 AND id = ?2"),
                params![workspace.as_str(), id],
                source_from_row,
            )
            .optional()
            .map_err(storage_error("reading a source"))
    }

    fn sources(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        after: Option<&str>,
    ) -> CoreResult<Vec<Source>> {
        let connection = self.read()?;
        let mut statement = connection
            .prepare(&format!(
                "SELECT {COLUMNS} FROM sources WHERE workspace = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            ))
            .map_err(storage_error("listing sources"))?;
        let rows = statement
            .query_map(
                params![
                    workspace.as_str(),
                    after.unwrap_or(""),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                source_from_row,
            )
            .map_err(storage_error("listing sources"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(storage_error("listing sources"))
    }

    fn all_sources(&self) -> CoreResult<Vec<(WorkspaceId, Source)>> {
        let connection = self.read()?;
        let mut statement = connection
            .prepare(&format!(
                "SELECT {COLUMNS}, workspace FROM sources ORDER BY workspace, id"
            ))
            .map_err(storage_error("listing sources"))?;
        let rows = statement
            .query_map([], |row| {
                let workspace: String = row.get(12)?;
                Ok((workspace, source_from_row(row)?))
            })
            .map_err(storage_error("listing sources"))?;
        let mut sources = Vec::new();
        for row in rows {
            let (workspace, source) = row.map_err(storage_error("listing sources"))?;
            let workspace = WorkspaceId::parse(&workspace).map_err(|violation| {
                CoreError::Storage(format!("a stored workspace id: {violation}"))
            })?;
            sources.push((workspace, source));
        }
        Ok(sources)
    }

    fn delete_source(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<bool> {
        let deleted = self.write("deleting a source", |transaction| {
            transaction.execute(
                "DELETE FROM source_state WHERE workspace = ?1 AND source = ?2",
                params![workspace.as_str(), id],
            )?;
            transaction.execute(
                "DELETE FROM sources WHERE workspace = ?1 AND id = ?2",
                params![workspace.as_str(), id],
            )
        })?;
        Ok(deleted > 0)
    }

    fn sync_state(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<Vec<(String, String)>> {
        let connection = self.read()?;
        let mut statement = connection
            .prepare(
                "SELECT stream, state_json FROM source_state WHERE workspace = ?1 AND source = ?2 ORDER BY stream",
            )
            .map_err(storage_error("reading sync state"))?;
        let rows = statement
            .query_map(params![workspace.as_str(), id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(storage_error("reading sync state"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(storage_error("reading sync state"))
    }

    fn clear_sync_state(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<()> {
        self.write("clearing sync state", |transaction| {
            transaction.execute(
                "DELETE FROM source_state WHERE workspace = ?1 AND source = ?2",
                params![workspace.as_str(), id],
            )
        })?;
        Ok(())
    }

    fn commit_checkpoint(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        stream: &str,
        state_json: &str,
        records: u64,
    ) -> CoreResult<()> {
        let updated = self.write("committing a checkpoint", |transaction| {
            let updated = transaction.execute(
                "UPDATE sources SET records_synced = records_synced + ?3 WHERE workspace = ?1 AND id = ?2",
                params![workspace.as_str(), id, count(records)],
            )?;
            if updated > 0 {
                transaction.execute(
                    "INSERT INTO source_state (workspace, source, stream, state_json, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (workspace, source, stream)
                     DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at",
                    params![workspace.as_str(), id, stream, state_json, now_millis()],
                )?;
            }
            Ok(updated)
        })?;
        if updated == 0 {
            return Err(CoreError::NotFound {
                kind: "source",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    fn take_lease(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> CoreResult<Option<String>> {
        let now = now_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let found = self.write("taking a sync lease", |transaction| {
            let taken = transaction.execute(
                "UPDATE sources SET lease_holder = ?3, lease_expires_at = ?5
                 WHERE workspace = ?1 AND id = ?2
                   AND (lease_holder IS NULL OR lease_holder = ?3 OR lease_expires_at < ?4)",
                params![workspace.as_str(), id, holder, now, until],
            )?;
            if taken == 1 {
                return Ok(Some(None));
            }
            transaction
                .query_row(
                    "SELECT lease_holder FROM sources WHERE workspace = ?1 AND id = ?2",
                    params![workspace.as_str(), id],
                    |row| row.get::<_, Option<String>>(0),
                )
                .optional()
        })?;
        match found {
            Some(holder) => Ok(holder),
            None => Err(CoreError::NotFound {
                kind: "source",
                id: id.to_owned(),
            }),
        }
    }

    fn release_lease(&self, workspace: &WorkspaceId, id: &str, holder: &str) -> CoreResult<()> {
        self.write("releasing a sync lease", |transaction| {
            transaction.execute(
                "UPDATE sources SET lease_holder = NULL, lease_expires_at = NULL
                 WHERE workspace = ?1 AND id = ?2 AND lease_holder = ?3",
                params![workspace.as_str(), id, holder],
            )
        })?;
        Ok(())
    }

    fn break_lease(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<()> {
        self.write("breaking a sync lease", |transaction| {
            transaction.execute(
                "UPDATE sources SET lease_holder = NULL, lease_expires_at = NULL
                 WHERE workspace = ?1 AND id = ?2",
                params![workspace.as_str(), id],
            )
        })?;
        Ok(())
    }

    fn lease_is_live(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<bool> {
        let connection = self.read()?;
        let live = connection
            .query_row(
                "SELECT 1 FROM sources WHERE workspace = ?1 AND id = ?2
                   AND lease_holder IS NOT NULL AND lease_expires_at >= ?3",
                params![workspace.as_str(), id, now_millis()],
                |_| Ok(()),
            )
            .optional()
            .map_err(storage_error("reading a sync lease"))?;
        Ok(live.is_some())
    }

    fn set_sync_status(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        status: SyncStatus,
        last_error: &str,
        at: Option<Millis>,
    ) -> CoreResult<()> {
        self.write("recording a sync status", |transaction| {
            transaction.execute(
                "UPDATE sources SET status = ?3, last_error = ?4, last_sync_at = COALESCE(?5, last_sync_at)
                 WHERE workspace = ?1 AND id = ?2",
                params![workspace.as_str(), id, status.as_str(), last_error, at],
            )
        })?;
        Ok(())
    }
}
