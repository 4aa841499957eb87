//! Versioned schema migrations, run every time a database is opened.
//!
//! The migrations are plain SQL files compiled into the binary, so a deployed `trellis` carries
//! exactly the schema it was built against and needs no files beside it. Version N is the N-th
//! entry of [`MIGRATIONS`]; an entry is never edited once released, only followed by a new one.
//! Each runs in its own transaction together with its row in `schema_migrations`, so a crash
//! leaves the database at the last whole version and the next start carries on from there.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use trellis_core::CoreError;

use crate::sqlite::{now_millis, storage_error};

/// The schema, in order. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_people.sql"),
    include_str!("../migrations/0003_sources.sql"),
    include_str!("../migrations/0004_embeddings.sql"),
    include_str!("../migrations/0005_api_keys.sql"),
    include_str!("../migrations/0006_sync_leases.sql"),
    include_str!("../migrations/0007_source_secrets.sql"),
    include_str!("../migrations/0008_asset_embeddings.sql"),
    include_str!("../migrations/0009_feedback.sql"),
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`]; returns the versions it applied.
pub(crate) fn migrate(connection: &mut Connection) -> Result<Vec<u32>, CoreError> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER NOT NULL PRIMARY KEY,
                 applied_at INTEGER NOT NULL
             ) STRICT;",
        )
        .map_err(storage_error("creating the schema_migrations table"))?;

    let found = current_version(connection)?;
    if found > SCHEMA_VERSION {
        return Err(newer_schema(found));
    }

    let mut applied = Vec::new();
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as u32 + 1;
        // IMMEDIATE takes the write lock before looking, so two processes opening the same new
        // file at once cannot both apply a version: the second waits, then sees it applied.
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_error("starting a migration"))?;
        let already: Option<i64> = transaction
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                params![version],
                |row| row.get(0),
            )
            .optional()
            .map_err(storage_error("reading schema_migrations"))?;
        if already.is_some() {
            continue;
        }
        transaction.execute_batch(sql).map_err(|error| {
            CoreError::Storage(format!("applying schema migration {version}: {error}"))
        })?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, now_millis()],
            )
            .map_err(storage_error("recording a schema migration"))?;
        transaction.commit().map_err(|error| {
            CoreError::Storage(format!("committing schema migration {version}: {error}"))
        })?;
        tracing::info!(version, "applied schema migration");
        applied.push(version);
    }
    Ok(applied)
}

/// The highest version recorded in the database (0 for a new one).
pub(crate) fn current_version(connection: &Connection) -> Result<u32, CoreError> {
    let version: i64 = connection
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(storage_error("reading schema_migrations"))?;
    u32::try_from(version).map_err(|_| newer_schema(u32::MAX))
}

fn newer_schema(found: u32) -> CoreError {
    CoreError::FailedPrecondition(format!(
        "the database has schema version {found}, newer than version {SCHEMA_VERSION} that this trellis \
         knows; run the trellis release that wrote it (or a later one), or restore a backup taken \
         before the upgrade"
    ))
}
