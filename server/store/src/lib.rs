//! Trellis persistence: the core's [`Store`](trellis_core::store::Store) and
//! [`SourceStore`](trellis_core::sources::SourceStore) traits implemented over one embedded
//! SQLite file, the default that needs no set-up and keeps everything across restarts, and over
//! PostgreSQL, for deployments that share one database server (the `postgres` module).
//!
//! This crate owns the schema, its migrations and the mapping between domain types and rows;
//! core owns the trait and the types, so the engine never sees SQL and a second backend
//! (PostgreSQL) can slot in beside this one. The shape follows from what the service asks:
//!
//! - ingest is idempotent per (workspace, source, external id), and every upsert reports what
//!   it replaced, because the engine updates its indexes by difference rather than by rescan;
//! - every row remembers the order it first arrived in, because the engine is rebuilt at
//!   start-up by replaying the corpus in that order;
//! - scalars are columns and lists are JSON, because nothing queries inside a list and a table
//!   per list would multiply the cost of every ingest;
//! - one writer and a few readers under WAL, because SQLite serialises writers anyway and WAL
//!   lets reads proceed while a batch is being written (the `sqlite` module says how).

mod feedback;
mod keys;
mod migrations;
mod postgres;
mod records;
mod sources;
mod sqlite;

pub use migrations::SCHEMA_VERSION;
pub use postgres::{POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;
