//! The change log that replicas on one PostgreSQL database follow (see migration 0006).
//!
//! Every write transaction of a workspace appends its change here before it commits, under the
//! workspace's row lock that the write took first; the number comes from
//! `workspaces.change_seq`, bumped in the same transaction. Two writes to one workspace therefore
//! commit in the order of their numbers, and a rolled-back write leaves no hole. A reader that
//! has applied change N and sees N + 1 knows nothing between them will ever appear.
//!
//! A snapshot for loading an engine is one `REPEATABLE READ` transaction on one connection,
//! which reads the workspace's `change_seq` first: the snapshot shows exactly the changes up to
//! that number.

use std::sync::Mutex;

use postgres::GenericClient;
use trellis_core::CoreError;
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::error::CoreResult;
use trellis_core::store::{Change, ChangeKind, ChangeLog, Store};

use super::{Connection, Doing, PostgresStore};
use crate::sqlite::now_millis;

/// Appends `kind` to the workspace's log inside `transaction`, which holds the workspace's row
/// lock; returns its number.
pub(super) fn append(
    transaction: &mut postgres::Transaction<'_>,
    workspace: &WorkspaceId,
    kind: &ChangeKind,
) -> CoreResult<u64> {
    const DOING: &str = "logging a change";
    let seq: i64 = transaction
        .query_one(
            "UPDATE workspaces SET change_seq = change_seq + 1 WHERE id = $1 RETURNING change_seq",
            &[&workspace.as_str()],
        )
        .doing(DOING)?
        .get(0);
    let change = serde_json::to_string(kind)
        .map_err(|error| CoreError::Internal(format!("serializing a change: {error}")))?;
    transaction
        .execute(
            "INSERT INTO changes (workspace, seq, at, change) VALUES ($1, $2, $3, $4::text::json)",
            &[&workspace.as_str(), &seq, &now_millis(), &change],
        )
        .doing(DOING)?;
    Ok(u64::try_from(seq).unwrap_or_default())
}

/// Removes every logged change of a workspace (they carry text of people being forgotten);
/// replicas that had not read them reload the workspace instead.
pub(super) fn clear(
    transaction: &mut postgres::Transaction<'_>,
    workspace: &WorkspaceId,
) -> CoreResult<()> {
    transaction
        .execute(
            "DELETE FROM changes WHERE workspace = $1",
            &[&workspace.as_str()],
        )
        .doing("clearing the change log")?;
    Ok(())
}

fn position(client: &mut impl GenericClient, workspace: &WorkspaceId) -> CoreResult<u64> {
    let row = client
        .query_opt(
            "SELECT change_seq FROM workspaces WHERE id = $1",
            &[&workspace.as_str()],
        )
        .doing("reading the change log's position")?;
    Ok(row
        .map(|row| u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
        .unwrap_or(0))
}

/// A pooled connection inside an open read-only transaction; rolled back (which ends a read-only
/// transaction as a commit would) before it goes back to the pool, whatever happened.
pub(super) struct Pinned(pub(super) Connection);

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Err(error) = self.0.batch_execute("ROLLBACK") {
            tracing::warn!(%error, "ending a snapshot's transaction failed");
        }
    }
}

impl ChangeLog for PostgresStore {
    fn head(&self, workspace: &WorkspaceId) -> CoreResult<u64> {
        self.read(|client| position(client, workspace))
    }

    fn heads(&self) -> CoreResult<Vec<(WorkspaceId, u64)>> {
        let rows = self.read(|client| {
            client
                .query("SELECT id, change_seq FROM workspaces ORDER BY id", &[])
                .doing("reading the change logs' heads")
        })?;
        rows.iter()
            .map(|row| {
                let id: &str = row.get(0);
                let workspace = WorkspaceId::parse(id).map_err(|violation| {
                    CoreError::Storage(format!(
                        "the stored workspace id {id:?} is not valid: {violation}"
                    ))
                })?;
                Ok((
                    workspace,
                    u64::try_from(row.get::<_, i64>(1)).unwrap_or_default(),
                ))
            })
            .collect()
    }

    fn changes_after(
        &self,
        workspace: &WorkspaceId,
        after: u64,
        limit: usize,
    ) -> CoreResult<Vec<Change>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|client| {
            client
                .query(
                    "SELECT seq, at, change::text FROM changes
                     WHERE workspace = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&workspace.as_str(), &after, &limit],
                )
                .doing("reading the change log")
        })?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let text: &str = row.get(2);
                let kind: ChangeKind = serde_json::from_str(text).map_err(|error| {
                    CoreError::Storage(format!(
                        "change {seq} of workspace {workspace:?} is unreadable ({error}); a \
                         replica of another version may have written it"
                    ))
                })?;
                Ok(Change {
                    seq: u64::try_from(seq).unwrap_or_default(),
                    at: row.get(1),
                    kind,
                })
            })
            .collect()
    }

    fn snapshot(
        &self,
        workspace: &WorkspaceId,
        load: &mut dyn FnMut(&dyn Store) -> CoreResult<()>,
    ) -> CoreResult<u64> {
        const DOING: &str = "starting a snapshot";
        let mut connection = self.connection()?;
        connection
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .doing(DOING)?;
        let mut pinned = Pinned(connection);
        // The first statement fixes the snapshot, so the position and everything `load` reads
        // are of one moment.
        let position = position(&mut *pinned.0, workspace)?;
        let view = PostgresStore {
            pool: None,
            target: self.target.clone(),
            schema: self.schema.clone(),
            pinned: Some(Mutex::new(pinned)),
        };
        load(&view)?;
        Ok(position)
    }

    fn prune(&self, before: Millis) -> CoreResult<u64> {
        self.write(None, "pruning the change log", |transaction| {
            transaction
                .execute("DELETE FROM changes WHERE at < $1", &[&before])
                .doing("pruning the change log")
        })
    }
}
