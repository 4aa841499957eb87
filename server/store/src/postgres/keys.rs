//! [`KeyStore`] for PostgreSQL: the same rows as SQLite's, read on every call so that a key
//! revoked through any replica or by `trellis keys revoke` is refused on the next call.

use trellis_core::CoreError;
use trellis_core::domain::{Millis, WorkspaceId};
use trellis_core::error::CoreResult;
use trellis_core::keys::{ApiKey, KeyStore, Role};

use super::{Doing, PostgresStore, check_text, ensure_workspace_in, refuse};

const COLUMNS: &str = "id, workspace, role, name, secret_sha256, created_at, revoked_at";

fn key_from_row(row: &postgres::Row) -> CoreResult<ApiKey> {
    let id: String = row.get(0);
    let damaged = |what: &str| CoreError::Storage(format!("api key {id}: {what} is damaged"));
    let workspace: &str = row.get(1);
    let workspace = WorkspaceId::parse(workspace).map_err(|_| damaged("workspace"))?;
    let role: &str = row.get(2);
    let role = Role::parse(role).ok_or_else(|| damaged("role"))?;
    let digest: &[u8] = row.get(4);
    let secret_sha256 = <[u8; 32]>::try_from(digest).map_err(|_| damaged("secret digest"))?;
    Ok(ApiKey {
        name: row.get(3),
        created_at: row.get(5),
        revoked_at: row.get(6),
        id,
        workspace,
        role,
        secret_sha256,
    })
}

impl KeyStore for PostgresStore {
    fn put_key(&self, key: &ApiKey) -> CoreResult<()> {
        let mut violations = Vec::new();
        check_text(&mut violations, "name".to_owned(), &key.name);
        refuse(violations)?;
        self.write(None, "storing an api key", |transaction| {
            ensure_workspace_in(transaction, &key.workspace).doing("storing an api key")?;
            transaction
                .execute(
                    &format!(
                        "INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ),
                    &[
                        &key.id,
                        &key.workspace.as_str(),
                        &key.role.as_str(),
                        &key.name,
                        &key.secret_sha256.as_slice(),
                        &key.created_at,
                        &key.revoked_at,
                    ],
                )
                .doing("storing an api key")
        })?;
        Ok(())
    }

    fn key(&self, id: &str) -> CoreResult<Option<ApiKey>> {
        if super::has_nul(id) {
            return Ok(None);
        }
        let row = self.read(|client| {
            client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"),
                    &[&id],
                )
                .doing("reading an api key")
        })?;
        row.as_ref().map(key_from_row).transpose()
    }

    fn keys(&self) -> CoreResult<Vec<ApiKey>> {
        let rows = self.read(|client| {
            client
                .query(
                    &format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"),
                    &[],
                )
                .doing("listing api keys")
        })?;
        rows.iter().map(key_from_row).collect()
    }

    fn revoke_key(&self, id: &str, now: Millis) -> CoreResult<bool> {
        if super::has_nul(id) {
            return Ok(false);
        }
        let changed = self.write(None, "revoking an api key", |transaction| {
            transaction
                .execute(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                    &[&id, &now],
                )
                .doing("revoking an api key")
        })?;
        Ok(changed == 1)
    }
}
