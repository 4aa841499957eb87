//! [`SourceStore`] for PostgreSQL: sources and their committed sync state. A checkpoint is one
//! transaction that replaces the stream's state and adds the records it covers to the source's
//! count, under the workspace's write lock, so the count and the state never disagree after a
//! crash and two replicas committing for one source queue up rather than interleave.

use postgres::Row;
use trellis_core::CoreError;
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::error::CoreResult;
use trellis_core::sources::{Source, SourceStore, SyncStatus};

use super::{Doing, PostgresStore, check_text, has_nul, refuse};
use crate::sources::{names_column, names_from_column};
use crate::sqlite::now_millis;

const COLUMNS: &str = "id, connector, display_name, config_json, sync_interval_seconds, isolated, \
                       status, last_sync_at, last_error, records_synced, sealed_secrets, \
                       secret_names";

fn source_from_row(row: &Row) -> Source {
    let status: &str = row.get(6);
    Source {
        id: row.get(0),
        connector: row.get(1),
        display_name: row.get(2),
        config_json: row.get(3),
        sync_interval_seconds: u32::try_from(row.get::<_, i64>(4)).unwrap_or(u32::MAX),
        isolated: row.get(5),
        status: SyncStatus::parse(status).unwrap_or_default(),
        last_sync_at: row.get(7),
        last_error: row.get(8),
        records_synced: u64::try_from(row.get::<_, i64>(9)).unwrap_or(0),
        sealed_secrets: row.get(10),
        secret_names: names_from_column(row.get(11)),
    }
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn check_source(source: &Source) -> CoreResult<()> {
    let mut violations = Vec::new();
    for (field, value) in [
        ("source.id", &source.id),
        ("source.connector", &source.connector),
        ("source.display_name", &source.display_name),
        ("source.config_json", &source.config_json),
        ("source.last_error", &source.last_error),
        ("source.sealed_secrets", &source.sealed_secrets),
    ] {
        check_text(&mut violations, field.to_owned(), value);
    }
    refuse(violations)
}

impl SourceStore for PostgresStore {
    fn create_source(&self, workspace: &WorkspaceId, source: &Source) -> CoreResult<()> {
        check_source(source)?;
        const DOING: &str = "creating a source";
        let inserted = self.write(Some((workspace, true)), DOING, |transaction| {
            transaction
                .execute(
                    &format!(
                        "INSERT INTO sources (workspace, {COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                         ON CONFLICT (workspace, id) DO NOTHING"
                    ),
                    &[
                        &workspace.as_str(),
                        &source.id,
                        &source.connector,
                        &source.display_name,
                        &source.config_json,
                        &i64::from(source.sync_interval_seconds),
                        &source.isolated,
                        &source.status.as_str(),
                        &source.last_sync_at,
                        &source.last_error,
                        &count(source.records_synced),
                        &source.sealed_secrets,
                        &names_column(&source.secret_names),
                    ],
                )
                .doing(DOING)
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
        check_source(source)?;
        const DOING: &str = "updating a source";
        let updated = self.write(Some((workspace, false)), DOING, |transaction| {
            transaction
                .execute(
                    "UPDATE sources SET connector = $3, display_name = $4, config_json = $5,
                         sync_interval_seconds = $6, isolated = $7, sealed_secrets = $8,
                         secret_names = $9
                     WHERE workspace = $1 AND id = $2",
                    &[
                        &workspace.as_str(),
                        &source.id,
                        &source.connector,
                        &source.display_name,
                        &source.config_json,
                        &i64::from(source.sync_interval_seconds),
                        &source.isolated,
                        &source.sealed_secrets,
                        &names_column(&source.secret_names),
                    ],
                )
                .doing(DOING)
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
        let mut violations = Vec::new();
        check_text(&mut violations, "source.id".to_owned(), id);
        if let Some(config_json) = config_json {
            check_text(
                &mut violations,
                "source.config_json".to_owned(),
                config_json,
            );
        }
        check_text(
            &mut violations,
            "source.sealed_secrets".to_owned(),
            sealed_secrets,
        );
        refuse(violations)?;
        const DOING: &str = "sealing a source's secrets";
        let names = names_column(secret_names);
        let updated = self.write(Some((workspace, false)), DOING, |transaction| {
            transaction
                .execute(
                    "UPDATE sources SET config_json = COALESCE($3, config_json), sealed_secrets = $4,
                         secret_names = $5
                     WHERE workspace = $1 AND id = $2",
                    &[&workspace.as_str(), &id, &config_json, &sealed_secrets, &names],
                )
                .doing(DOING)
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
        if has_nul(id) {
            return Ok(None);
        }
        let row = self.read(|client| {
            client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM sources WHERE workspace = $1 AND id = $2"),
                    &[&workspace.as_str(), &id],
                )
                .doing("reading a source")
        })?;
        Ok(row.as_ref().map(source_from_row))
    }

    fn sources(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        after: Option<&str>,
    ) -> CoreResult<Vec<Source>> {
        let after = after.unwrap_or("").replace('\0', "");
        let rows = self.read(|client| {
            client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM sources WHERE workspace = $1 AND id > $2 ORDER BY id LIMIT $3"
                    ),
                    &[&workspace.as_str(), &after, &super::limit(limit)],
                )
                .doing("listing sources")
        })?;
        Ok(rows.iter().map(source_from_row).collect())
    }

    fn all_sources(&self) -> CoreResult<Vec<(WorkspaceId, Source)>> {
        let rows = self.read(|client| {
            client
                .query(
                    &format!("SELECT {COLUMNS}, workspace FROM sources ORDER BY workspace, id"),
                    &[],
                )
                .doing("listing sources")
        })?;
        rows.iter()
            .map(|row| {
                let workspace: &str = row.get(12);
                let workspace = WorkspaceId::parse(workspace).map_err(|violation| {
                    CoreError::Storage(format!("a stored workspace id: {violation}"))
                })?;
                Ok((workspace, source_from_row(row)))
            })
            .collect()
    }

    fn delete_source(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<bool> {
        if has_nul(id) {
            return Ok(false);
        }
        const DOING: &str = "deleting a source";
        let deleted = self.write(Some((workspace, false)), DOING, |transaction| {
            transaction
                .execute(
                    "DELETE FROM source_state WHERE workspace = $1 AND source = $2",
                    &[&workspace.as_str(), &id],
                )
                .doing(DOING)?;
            transaction
                .execute(
                    "DELETE FROM sources WHERE workspace = $1 AND id = $2",
                    &[&workspace.as_str(), &id],
                )
                .doing(DOING)
        })?;
        Ok(deleted > 0)
    }

    fn sync_state(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<Vec<(String, String)>> {
        if has_nul(id) {
            return Ok(Vec::new());
        }
        let rows = self.read(|client| {
            client
                .query(
                    "SELECT stream, state_json FROM source_state WHERE workspace = $1 AND source = $2 ORDER BY stream",
                    &[&workspace.as_str(), &id],
                )
                .doing("reading sync state")
        })?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    fn clear_sync_state(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<()> {
        if has_nul(id) {
            return Ok(());
        }
        const DOING: &str = "clearing sync state";
        self.write(Some((workspace, false)), DOING, |transaction| {
            transaction
                .execute(
                    "DELETE FROM source_state WHERE workspace = $1 AND source = $2",
                    &[&workspace.as_str(), &id],
                )
                .doing(DOING)
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
        let mut violations = Vec::new();
        check_text(&mut violations, "stream".to_owned(), stream);
        check_text(&mut violations, "state_json".to_owned(), state_json);
        refuse(violations)?;
        if has_nul(id) {
            return Err(CoreError::NotFound {
                kind: "source",
                id: id.to_owned(),
            });
        }
        const DOING: &str = "committing a checkpoint";
        let updated = self.write(Some((workspace, false)), DOING, |transaction| {
            let updated = transaction
                .execute(
                    "UPDATE sources SET records_synced = records_synced + $3 WHERE workspace = $1 AND id = $2",
                    &[&workspace.as_str(), &id, &count(records)],
                )
                .doing(DOING)?;
            if updated > 0 {
                transaction
                    .execute(
                        "INSERT INTO source_state (workspace, source, stream, state_json, updated_at)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (workspace, source, stream)
                         DO UPDATE SET state_json = excluded.state_json, updated_at = excluded.updated_at",
                        &[&workspace.as_str(), &id, &stream, &state_json, &now_millis()],
                    )
                    .doing(DOING)?;
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

    /// Times come from the database's clock, so replicas whose clocks disagree still agree on
    /// when a lease runs out. No workspace lock: a lease is one row, updated on its own.
    fn take_lease(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> CoreResult<Option<String>> {
        const DOING: &str = "taking a sync lease";
        if has_nul(id) || has_nul(holder) {
            return Err(CoreError::NotFound {
                kind: "source",
                id: id.replace('\0', ""),
            });
        }
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let found = self.write(None, DOING, |transaction| {
            let taken = transaction
                .execute(
                    "UPDATE sources SET lease_holder = $3, lease_expires_at = now_ms + $4
                     FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms) AS clock
                     WHERE workspace = $1 AND id = $2
                       AND (lease_holder IS NULL OR lease_holder = $3 OR lease_expires_at < now_ms)",
                    &[&workspace.as_str(), &id, &holder, &ttl],
                )
                .doing(DOING)?;
            if taken == 1 {
                return Ok(Some(None));
            }
            Ok(transaction
                .query_opt(
                    "SELECT lease_holder FROM sources WHERE workspace = $1 AND id = $2",
                    &[&workspace.as_str(), &id],
                )
                .doing(DOING)?
                .map(|row| row.get::<_, Option<String>>(0)))
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
        const DOING: &str = "releasing a sync lease";
        if has_nul(id) || has_nul(holder) {
            return Ok(());
        }
        self.write(None, DOING, |transaction| {
            transaction
                .execute(
                    "UPDATE sources SET lease_holder = NULL, lease_expires_at = NULL
                     WHERE workspace = $1 AND id = $2 AND lease_holder = $3",
                    &[&workspace.as_str(), &id, &holder],
                )
                .doing(DOING)
        })?;
        Ok(())
    }

    fn break_lease(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<()> {
        const DOING: &str = "breaking a sync lease";
        if has_nul(id) {
            return Ok(());
        }
        self.write(None, DOING, |transaction| {
            transaction
                .execute(
                    "UPDATE sources SET lease_holder = NULL, lease_expires_at = NULL
                     WHERE workspace = $1 AND id = $2",
                    &[&workspace.as_str(), &id],
                )
                .doing(DOING)
        })?;
        Ok(())
    }

    fn lease_is_live(&self, workspace: &WorkspaceId, id: &str) -> CoreResult<bool> {
        if has_nul(id) {
            return Ok(false);
        }
        let live = self.read(|client| {
            client
                .query_opt(
                    "SELECT 1 FROM sources WHERE workspace = $1 AND id = $2
                       AND lease_holder IS NOT NULL
                       AND lease_expires_at >= (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                    &[&workspace.as_str(), &id],
                )
                .doing("reading a sync lease")
        })?;
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
        if has_nul(id) {
            return Ok(());
        }
        // An error text from a plugin may hold anything; keep what PostgreSQL can.
        let last_error = last_error.replace('\0', "");
        const DOING: &str = "recording a sync status";
        self.write(Some((workspace, false)), DOING, |transaction| {
            transaction
                .execute(
                    "UPDATE sources SET status = $3, last_error = $4, last_sync_at = COALESCE($5, last_sync_at)
                     WHERE workspace = $1 AND id = $2",
                    &[&workspace.as_str(), &id, &status.as_str(), &last_error, &at],
                )
                .doing(DOING)
        })?;
        Ok(())
    }
}
