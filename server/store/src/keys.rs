//! [`KeyStore`] for SQLite: API keys by id, each read from the database on every call so that a
//! revocation made by `trellis keys revoke` (another process) counts on the server's next call.

use rusqlite::{OptionalExtension, params};
use trellis_core::CoreError;
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::error::CoreResult;
use trellis_core::keys::{ApiKey, KeyStore, Role};

use crate::sqlite::{SqliteStore, ensure_workspace_in, storage_error};

const COLUMNS: &str = "id, workspace, role, name, secret_sha256, created_at, revoked_at";

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ApiKey, CoreError>> {
    let workspace: String = row.get(1)?;
    let role: String = row.get(2)?;
    let digest: Vec<u8> = row.get(4)?;
    let id: String = row.get(0)?;
    let damaged = |what: &str| CoreError::Storage(format!("api key {id}: {what} is damaged"));
    let Ok(workspace) = WorkspaceId::parse(&workspace) else {
        return Ok(Err(damaged("workspace")));
    };
    let Some(role) = Role::parse(&role) else {
        return Ok(Err(damaged("role")));
    };
    let Ok(secret_sha256) = <[u8; 32]>::try_from(digest.as_slice()) else {
        return Ok(Err(damaged("secret digest")));
    };
    Ok(Ok(ApiKey {
        name: row.get(3)?,
        created_at: row.get(5)?,
        revoked_at: row.get(6)?,
        id,
        workspace,
        role,
        secret_sha256,
    }))
}

impl KeyStore for SqliteStore {
    fn put_key(&self, key: &ApiKey) -> CoreResult<()> {
        self.write("storing an api key", |transaction| {
            ensure_workspace_in(transaction, &key.workspace)?;
            transaction.execute(
                &format!("INSERT INTO api_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    key.id,
                    key.workspace.as_str(),
                    key.role.as_str(),
                    key.name,
                    key.secret_sha256.as_slice(),
                    key.created_at,
                    key.revoked_at,
                ],
            )
        })?;
        Ok(())
    }

    fn key(&self, id: &str) -> CoreResult<Option<ApiKey>> {
        let connection = self.read()?;
        connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"))
            .and_then(|mut statement| statement.query_row(params![id], key_from_row).optional())
            .map_err(storage_error("reading an api key"))?
            .transpose()
    }

    fn keys(&self) -> CoreResult<Vec<ApiKey>> {
        let connection = self.read()?;
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"
            ))
            .map_err(storage_error("listing api keys"))?;
        let rows = statement
            .query_map([], key_from_row)
            .map_err(storage_error("listing api keys"))?;
        let mut keys = Vec::new();
        for row in rows {
            keys.push(row.map_err(storage_error("listing api keys"))??);
        }
        Ok(keys)
    }

    fn revoke_key(&self, id: &str, now: Millis) -> CoreResult<bool> {
        let changed = self.write("revoking an api key", |transaction| {
            transaction.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )
        })?;
        Ok(changed == 1)
    }
}
