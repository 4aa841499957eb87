//! [`PostgresStore`]: the `Store` and `SourceStore` contracts over a PostgreSQL database, for
//! deployments that outgrow one file or run several replicas on one database.
//!
//! It keeps every promise the SQLite store keeps, by the same means where PostgreSQL allows:
//!
//! - every write is one transaction, committed whole or not at all;
//! - writes to one workspace are serialised by a row lock on the workspace, taken first in every
//!   write transaction. SQLite serialises all writers anyway; here two workspaces write side by
//!   side, while an upsert still compares against exactly what the previous batch left and a
//!   strategy version number is never handed out twice;
//! - text compares byte by byte (`COLLATE "C"`) and unknown times sort as SQLite sorts them, so
//!   listings and pages come in the same order on both engines;
//! - reads take a pooled connection (`r2d2`) and see the last committed state; the start-up scan
//!   reads in pages and holds no connection while the caller works;
//! - every write to a workspace also appends to its change log ([`changes`]), which other
//!   replicas follow; a snapshot for loading an engine reads through one connection in one
//!   `REPEATABLE READ` transaction.
//!
//! One difference cannot be hidden: PostgreSQL text cannot hold the character U+0000. A record
//! or source carrying one is refused as invalid input naming the field, rather than failing
//! deep in the database; lookups by such a key find nothing, since nothing can be stored under it.

mod changes;
mod feedback;
mod keys;
mod records;
mod sources;

use std::fmt;
use std::time::Duration;

use postgres::config::Host;
use postgres::{GenericClient, NoTls};
use r2d2_postgres::PostgresConnectionManager;
use trellis_core::CoreError;
use trellis_core::domain::{
    Asset, Conversation, Forgotten, Merge, Millis, Person, Post, Record, RecordKey, WorkspaceId,
};
use trellis_core::engine::semantic::Embedded;
use trellis_core::error::CoreResult;
use trellis_core::feedback::{Feedback, FeedbackCounts, FeedbackFilter};
use trellis_core::store::{
    ChangeKind, ChangeLog, CorpusCounts, RecordChange, Store, TextBudget, Upserted,
};
use trellis_core::strategy::{Strategy, StrategyVersion};

use crate::records::{SCAN_PAGE, ScannedKind};
use crate::sqlite::{check_storable, now_millis, parse_strategy};

/// The schema, in order. Append only; version N here is version N of the SQLite schema.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_people.sql"),
    include_str!("../../migrations/postgres/0003_sources.sql"),
    include_str!("../../migrations/postgres/0004_embeddings.sql"),
    include_str!("../../migrations/postgres/0005_api_keys.sql"),
    include_str!("../../migrations/postgres/0006_changes_and_leases.sql"),
    include_str!("../../migrations/postgres/0007_source_secrets.sql"),
    include_str!("../../migrations/postgres/0008_asset_embeddings.sql"),
    include_str!("../../migrations/postgres/0009_feedback.sql"),
];

/// The PostgreSQL schema version this binary writes and understands.
pub const POSTGRES_SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long opening a connection may take before the server counts as unreachable, unless the
/// URL sets `connect_timeout` itself.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub url: String,
    /// Most connections kept open at once.
    pub pool_size: u32,
    /// A schema to keep the tables in, created if missing; `None` for the connection's default
    /// (`public`). Lets several instances (or tests) share one database.
    pub schema: Option<String>,
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PostgresOptions")
            .field("url", &redacted(&self.url))
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .finish()
    }
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            pool_size: 8,
            schema: None,
        }
    }

    /// The URL without its password: `postgres://USER@HOST:PORT/DATABASE`, for logs.
    pub fn redacted_url(&self) -> String {
        redacted(&self.url)
    }
}

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// The PostgreSQL-backed [`Store`] and [`trellis_core::sources::SourceStore`].
pub struct PostgresStore {
    /// Always `Some` until dropped (see the `Drop` impl), except in a snapshot's view.
    pool: Option<Pool>,
    /// Host, port, database and user, without the password: for errors and logs.
    target: String,
    schema: Option<String>,
    /// In a snapshot's view: the one connection, inside its read-only transaction, that every
    /// read goes through.
    pinned: Option<std::sync::Mutex<changes::Pinned>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// The URL with its password, if any, replaced, for messages.
fn redacted(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(config) => describe(&config),
        Err(_) => "(unparsable url)".to_owned(),
    }
}

fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// Wraps a database error with what we were doing.
pub(crate) trait Doing<T> {
    fn doing(self, what: &str) -> CoreResult<T>;
}

impl<T> Doing<T> for Result<T, postgres::Error> {
    fn doing(self, what: &str) -> CoreResult<T> {
        self.map_err(|error| match error.as_db_error() {
            Some(db) => CoreError::Storage(format!("{what}: {}", db.message())),
            None => CoreError::Storage(format!("{what}: {}", with_causes(&error))),
        })
    }
}

/// True when `text` holds U+0000, which PostgreSQL text cannot.
pub(crate) fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

/// Refuses U+0000 in `value`, naming `field`.
pub(crate) fn check_text(
    violations: &mut Vec<trellis_core::Violation>,
    field: String,
    value: &str,
) {
    if has_nul(value) {
        violations.push(trellis_core::Violation::new(
            field,
            "contains the character U+0000, which PostgreSQL cannot store; remove it",
        ));
    }
}

pub(crate) fn refuse(violations: Vec<trellis_core::Violation>) -> CoreResult<()> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Invalid(violations))
    }
}

fn check_schema_name(schema: &str) -> CoreResult<()> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "storage.schema",
            format!(
                "{schema:?} must be 1 to 63 characters of a-z, 0-9 or '_', starting with a letter or '_', e.g. trellis"
            ),
        ))
    }
}

impl PostgresStore {
    /// Connects, creates the schema if asked for one, brings the tables up to date, and opens the
    /// pool. Errors name `storage.url` (unparsable, or the server unreachable) and the fix.
    pub fn open(options: &PostgresOptions) -> CoreResult<PostgresStore> {
        let mut config: postgres::Config = options.url.parse().map_err(|error| {
            CoreError::invalid(
                "storage.url",
                format!(
                    "is not a PostgreSQL URL ({error}); write postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                ),
            )
        })?;
        if options.pool_size == 0 {
            return Err(CoreError::invalid(
                "storage.pool_size",
                "must be at least 1, e.g. 8",
            ));
        }
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            // Every pooled connection then finds the tables in the schema.
            config.options(&format!("-c search_path={schema}"));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe(&config);
        let mut client = config.connect(NoTls).map_err(|error| {
            let error = with_causes(&error);
            CoreError::Storage(format!(
                "cannot connect to PostgreSQL at {target} (storage.url): {error}; check that the \
                 server is running and reachable, and that storage.url names the right host, port, \
                 database, user and password"
            ))
        })?;
        migrate(&mut client, options.schema.as_deref())
            .map_err(|error| prefixed(error, &target))?;
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(PostgresConnectionManager::new(config, NoTls))
            .map_err(|error| {
                CoreError::Storage(format!(
                    "opening a pool of connections to PostgreSQL at {target}: {error}"
                ))
            })?;
        tracing::debug!(%target, schema = ?options.schema, "opened the postgres store");
        Ok(PostgresStore {
            pool: Some(pool),
            target,
            schema: options.schema.clone(),
            pinned: None,
        })
    }

    /// The schema the tables live in, if one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> CoreResult<u32> {
        current_version(&mut *self.connection()?)
    }

    fn connection(&self) -> CoreResult<Connection> {
        let pool = self.pool.as_ref().ok_or_else(|| {
            CoreError::Internal(match self.pinned {
                Some(_) => "a snapshot of the postgres store only reads".into(),
                None => "the postgres store is closing".into(),
            })
        })?;
        pool.get().map_err(|error| {
            CoreError::Storage(format!(
                "no connection to PostgreSQL at {} within {} s: {error}; check that the server is \
                 running, or raise storage.pool_size if every connection is busy",
                self.target,
                CONNECT_TIMEOUT.as_secs()
            ))
        })
    }

    /// Runs `work` in one transaction, committed if it returns `Ok`, rolled back otherwise. With
    /// a workspace, first takes that workspace's write lock (creating it when `create`), so
    /// writes to one workspace follow one another as they do in SQLite.
    pub(crate) fn write<T>(
        &self,
        lock: Option<(&WorkspaceId, bool)>,
        doing: &str,
        work: impl FnOnce(&mut postgres::Transaction<'_>) -> CoreResult<T>,
    ) -> CoreResult<T> {
        let mut connection = self.connection()?;
        let mut transaction = connection.transaction().doing(doing)?;
        if let Some((workspace, create)) = lock {
            if create {
                ensure_workspace_in(&mut transaction, workspace).doing(doing)?;
            }
            transaction
                .execute(
                    "SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE",
                    &[&workspace.as_str()],
                )
                .doing(doing)?;
        }
        let value = work(&mut transaction)?;
        transaction.commit().doing(doing)?;
        Ok(value)
    }

    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&mut postgres::Client) -> CoreResult<T>,
    ) -> CoreResult<T> {
        if let Some(pinned) = &self.pinned {
            let mut pinned = pinned.lock().map_err(|_| {
                CoreError::Internal("a snapshot's connection was poisoned by a panic".into())
            })?;
            return work(&mut pinned.0);
        }
        let mut connection = self.connection()?;
        work(&mut connection)
    }
}

impl Drop for PostgresStore {
    /// A `postgres::Client` closes by blocking on its own small runtime, which panics on a thread
    /// that drives async tasks (as the server's last reference to the store may be dropped on).
    /// The pool is therefore closed on a thread of its own.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let closed = std::thread::Builder::new()
                .name("trellis-pg-close".into())
                .spawn(move || drop(pool))
                .map(|closing| closing.join());
            if !matches!(closed, Ok(Ok(()))) {
                tracing::warn!("closing the postgres connections failed");
            }
        }
    }
}

/// An error with its causes, which `postgres::Error` leaves out of its own message (it says
/// "error connecting to server" without saying that the connection was refused).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

fn prefixed(error: CoreError, target: &str) -> CoreError {
    match error {
        CoreError::Storage(message) => CoreError::Storage(format!("{target}: {message}")),
        CoreError::FailedPrecondition(message) => {
            CoreError::FailedPrecondition(format!("{target}: {message}"))
        }
        other => other,
    }
}

/// Brings the schema up to [`POSTGRES_SCHEMA_VERSION`] under an advisory lock, so replicas
/// starting together apply each version once; returns the versions applied.
fn migrate(client: &mut postgres::Client, schema: Option<&str>) -> CoreResult<Vec<u32>> {
    let lock_name = format!("trellis migrations {}", schema.unwrap_or("(default)"));
    client
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock_name])
        .doing("waiting for the migration lock")?;
    let result = migrate_locked(client, schema);
    let unlocked = client
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_name])
        .doing("releasing the migration lock");
    let applied = result?;
    unlocked?;
    Ok(applied)
}

fn migrate_locked(client: &mut postgres::Client, schema: Option<&str>) -> CoreResult<Vec<u32>> {
    // "already exists, skipping" notices are expected on every start but the first.
    client
        .batch_execute("SET client_min_messages = warning")
        .doing("setting client_min_messages")?;
    if let Some(schema) = schema {
        // The name was checked to be a plain identifier.
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .doing("creating the schema")?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    bigint NOT NULL PRIMARY KEY,
                 applied_at bigint NOT NULL
             )",
        )
        .doing("creating the schema_migrations table")?;
    let found = current_version(client)?;
    if found > POSTGRES_SCHEMA_VERSION {
        return Err(CoreError::FailedPrecondition(format!(
            "the database has schema version {found}, newer than version {POSTGRES_SCHEMA_VERSION} \
             that this trellis knows; run the trellis release that wrote it (or a later one), or \
             restore a backup taken before the upgrade"
        )));
    }
    let mut applied = Vec::new();
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as u32 + 1;
        if version <= found {
            continue;
        }
        let mut transaction = client.transaction().doing("starting a migration")?;
        transaction.batch_execute(sql).map_err(|error| {
            let detail = error
                .as_db_error()
                .map_or_else(|| error.to_string(), |db| db.message().to_owned());
            CoreError::Storage(format!("applying schema migration {version}: {detail}"))
        })?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[&i64::from(version), &now_millis()],
            )
            .doing("recording a schema migration")?;
        transaction
            .commit()
            .doing(&format!("committing schema migration {version}"))?;
        tracing::info!(version, "applied postgres schema migration");
        applied.push(version);
    }
    Ok(applied)
}

fn current_version(client: &mut impl GenericClient) -> CoreResult<u32> {
    let version: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM schema_migrations",
            &[],
        )
        .doing("reading schema_migrations")?
        .get(0);
    Ok(u32::try_from(version).unwrap_or(u32::MAX))
}

pub(crate) fn ensure_workspace_in(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
) -> Result<u64, postgres::Error> {
    client.execute(
        "INSERT INTO workspaces (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        &[&workspace.as_str(), &now_millis()],
    )
}

fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn strategy_version(row: &postgres::Row) -> CoreResult<StrategyVersion> {
    let version: i64 = row.get(0);
    let json: String = row.get(2);
    parse_strategy(u32::try_from(version).unwrap_or(0), row.get(1), &json)
}

impl Store for PostgresStore {
    fn workspaces(&self) -> CoreResult<Vec<WorkspaceId>> {
        let rows = self.read(|client| {
            client
                .query("SELECT id FROM workspaces ORDER BY id", &[])
                .doing("listing workspaces")
        })?;
        rows.iter()
            .map(|row| {
                let id: &str = row.get(0);
                WorkspaceId::parse(id).map_err(|violation| {
                    CoreError::Storage(format!(
                        "the stored workspace id {id:?} is not valid: {violation}"
                    ))
                })
            })
            .collect()
    }

    fn ensure_workspace(&self, workspace: &WorkspaceId) -> CoreResult<()> {
        self.write(None, "creating a workspace", |transaction| {
            ensure_workspace_in(transaction, workspace).doing("creating a workspace")?;
            Ok(())
        })
    }

    fn put_strategy(
        &self,
        workspace: &WorkspaceId,
        strategy: &Strategy,
        now: i64,
    ) -> CoreResult<StrategyVersion> {
        check_storable(strategy)?;
        let json = serde_json::to_string(strategy)
            .map_err(|error| CoreError::Internal(format!("serializing a strategy: {error}")))?;
        const DOING: &str = "storing a strategy version";
        let version = self.write(Some((workspace, true)), DOING, |transaction| {
            let version: i64 = transaction
                .query_one(
                    "SELECT (COALESCE(MAX(version), 0) + 1)::bigint FROM strategy_versions WHERE workspace = $1",
                    &[&workspace.as_str()],
                )
                .doing(DOING)?
                .get(0);
            transaction
                .execute(
                    "INSERT INTO strategy_versions (workspace, version, created_at, strategy)
                     VALUES ($1, $2, $3, $4::text::json)",
                    &[&workspace.as_str(), &version, &now, &json],
                )
                .doing(DOING)?;
            let logged = ChangeKind::Strategy {
                version: u32::try_from(version).unwrap_or(u32::MAX),
            };
            changes::append(transaction, workspace, &logged)?;
            Ok(version)
        })?;
        Ok(StrategyVersion {
            version: u32::try_from(version).unwrap_or(u32::MAX),
            created_at: now,
            strategy: strategy.clone(),
        })
    }

    fn strategy(
        &self,
        workspace: &WorkspaceId,
        version: Option<u32>,
    ) -> CoreResult<Option<StrategyVersion>> {
        let version = version.map(i64::from);
        let row = self.read(|client| {
            client
                .query_opt(
                    "SELECT version, created_at, strategy::text FROM strategy_versions
                     WHERE workspace = $1 AND ($2::bigint IS NULL OR version = $2)
                     ORDER BY version DESC LIMIT 1",
                    &[&workspace.as_str(), &version],
                )
                .doing("reading a strategy version")
        })?;
        row.as_ref().map(strategy_version).transpose()
    }

    fn strategy_versions(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        before: Option<u32>,
    ) -> CoreResult<Vec<StrategyVersion>> {
        let before = before.map(i64::from);
        let rows = self.read(|client| {
            client
                .query(
                    "SELECT version, created_at, strategy::text FROM strategy_versions
                     WHERE workspace = $1 AND ($2::bigint IS NULL OR version < $2)
                     ORDER BY version DESC LIMIT $3",
                    &[&workspace.as_str(), &before, &self::limit(limit)],
                )
                .doing("listing strategy versions")
        })?;
        rows.iter().map(strategy_version).collect()
    }

    fn upsert_records(
        &self,
        workspace: &WorkspaceId,
        batch: &[Record],
    ) -> CoreResult<Vec<Upserted<Record>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        records::check_records(batch)?;
        self.write(Some((workspace, true)), "storing records", |transaction| {
            let mut results = Vec::with_capacity(batch.len());
            let mut logged = Vec::new();
            for record in batch {
                // Read inside the transaction, under the workspace's lock: a key repeated within
                // the batch compares against its earlier occurrence, and a concurrent batch
                // against this one's result, exactly as if they had come one after the other.
                let result = match records::stored_like(transaction, workspace, record)? {
                    None => Upserted::Inserted,
                    Some(previous) if previous == *record => Upserted::Unchanged,
                    Some(previous) => Upserted::Updated { previous },
                };
                match &result {
                    Upserted::Unchanged => {}
                    Upserted::Inserted | Upserted::Updated { .. } => {
                        records::write(transaction, workspace, record)?;
                        logged.push(RecordChange {
                            record: record.clone(),
                            previous: match &result {
                                Upserted::Updated { previous } => Some(previous.clone()),
                                _ => None,
                            },
                        });
                    }
                }
                results.push(result);
            }
            if !logged.is_empty() {
                changes::append(transaction, workspace, &ChangeKind::Records(logged))?;
            }
            Ok(results)
        })
    }

    fn conversation(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
    ) -> CoreResult<Option<Conversation>> {
        self.read(|client| records::conversation(client, workspace, key))
    }

    fn posts_of(&self, workspace: &WorkspaceId, conversation: &RecordKey) -> CoreResult<Vec<Post>> {
        self.read(|client| records::posts_of(client, workspace, conversation))
    }

    fn opening_posts(
        &self,
        workspace: &WorkspaceId,
        conversation: &RecordKey,
        text_bytes: usize,
    ) -> CoreResult<Vec<Post>> {
        self.read(|client| {
            records::opening_posts(client, workspace, conversation, TextBudget::new(text_bytes))
        })
    }

    fn person(&self, workspace: &WorkspaceId, key: &RecordKey) -> CoreResult<Option<Person>> {
        self.read(|client| records::person(client, workspace, key))
    }

    fn put_merge(&self, workspace: &WorkspaceId, merge: &Merge) -> CoreResult<()> {
        records::check_merge(merge)?;
        self.write(
            Some((workspace, true)),
            "recording a merge",
            |transaction| {
                records::put_merge(transaction, workspace, merge)?;
                changes::append(transaction, workspace, &ChangeKind::Reload)?;
                Ok(())
            },
        )
    }

    fn undo_merge(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> CoreResult<Option<Merge>> {
        if has_nul(id) {
            return Ok(None);
        }
        self.write(Some((workspace, false)), "undoing a merge", |transaction| {
            let undone = records::undo_merge(transaction, workspace, id, now)?;
            if undone.is_some() {
                changes::append(transaction, workspace, &ChangeKind::Reload)?;
            }
            Ok(undone)
        })
    }

    fn merges(&self, workspace: &WorkspaceId) -> CoreResult<Vec<Merge>> {
        self.read(|client| records::merges(client, workspace))
    }

    fn forget_people(
        &self,
        workspace: &WorkspaceId,
        people: &[RecordKey],
        now: Millis,
    ) -> CoreResult<Forgotten> {
        let mut violations = Vec::new();
        for (index, key) in people.iter().enumerate() {
            check_text(
                &mut violations,
                format!("people[{index}].source"),
                &key.source,
            );
            check_text(
                &mut violations,
                format!("people[{index}].external_id"),
                &key.external_id,
            );
        }
        refuse(violations)?;
        self.write(
            Some((workspace, true)),
            "forgetting people",
            |transaction| {
                let forgotten = records::forget_people(transaction, workspace, people, now)?;
                // Logged changes carry what they wrote: they go too, and every replica reloads.
                changes::clear(transaction, workspace)?;
                changes::append(transaction, workspace, &ChangeKind::Reload)?;
                Ok(forgotten)
            },
        )
    }

    fn forgotten(&self, workspace: &WorkspaceId) -> CoreResult<Vec<RecordKey>> {
        self.read(|client| records::forgotten(client, workspace))
    }

    fn list_people(
        &self,
        workspace: &WorkspaceId,
        member: Option<bool>,
        after: i64,
        limit: usize,
    ) -> CoreResult<Vec<(i64, Person)>> {
        self.read(|client| records::list_people(client, workspace, member, after, limit))
    }

    fn writing_of(
        &self,
        workspace: &WorkspaceId,
        person: &RecordKey,
        limit: usize,
    ) -> CoreResult<(Vec<Conversation>, Vec<Post>)> {
        self.read(|client| records::writing_of(client, workspace, person, limit))
    }

    fn asset(&self, workspace: &WorkspaceId, key: &RecordKey) -> CoreResult<Option<Asset>> {
        self.read(|client| records::asset(client, workspace, key))
    }

    /// Pages of a few hundred rows keyed on `seq`, with no connection held while `visit` runs,
    /// as in SQLite: memory stays bounded, and `visit` may call back into the store.
    fn scan_corpus(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Record) -> CoreResult<()>,
    ) -> CoreResult<()> {
        for kind in [
            ScannedKind::Person,
            ScannedKind::Conversation,
            ScannedKind::Post,
        ] {
            let mut after = 0;
            loop {
                let page =
                    self.read(|client| records::scan_page(client, workspace, kind, after))?;
                let last_page = page.len() < SCAN_PAGE;
                for (seq, record) in page {
                    after = seq;
                    visit(record)?;
                }
                if last_page {
                    break;
                }
            }
        }
        Ok(())
    }

    fn scan_assets(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Asset) -> CoreResult<()>,
    ) -> CoreResult<()> {
        let mut after = 0;
        loop {
            let page = self
                .read(|client| records::scan_page(client, workspace, ScannedKind::Asset, after))?;
            let last_page = page.len() < SCAN_PAGE;
            for (seq, record) in page {
                after = seq;
                if let Record::Asset(asset) = record {
                    visit(asset)?;
                }
            }
            if last_page {
                return Ok(());
            }
        }
    }

    fn counts(&self, workspace: &WorkspaceId) -> CoreResult<CorpusCounts> {
        let row = self.read(|client| {
            // One statement, so the four numbers come from one snapshot.
            client
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM people WHERE workspace = $1),
                            (SELECT COUNT(*) FROM conversations WHERE workspace = $1),
                            (SELECT COUNT(*) FROM posts WHERE workspace = $1),
                            (SELECT COUNT(*) FROM assets WHERE workspace = $1)",
                    &[&workspace.as_str()],
                )
                .doing("counting records")
        })?;
        let count = |index: usize| row.get::<_, i64>(index).unsigned_abs();
        Ok(CorpusCounts {
            people: count(0),
            conversations: count(1),
            posts: count(2),
            assets: count(3),
        })
    }

    fn put_embeddings(
        &self,
        workspace: &WorkspaceId,
        model: &str,
        of: Embedded,
        embeddings: &[trellis_core::engine::semantic::Embedding],
    ) -> CoreResult<()> {
        let mut violations = Vec::new();
        check_text(&mut violations, "model".to_owned(), model);
        refuse(violations)?;
        self.write(
            Some((workspace, false)),
            "storing embeddings",
            |transaction| {
                records::put_embeddings(transaction, workspace, model, of, embeddings)?;
                if embeddings.is_empty() {
                    return Ok(());
                }
                let logged = ChangeKind::Embeddings {
                    model: model.to_owned(),
                    of,
                    embeddings: embeddings.to_vec(),
                };
                changes::append(transaction, workspace, &logged)?;
                Ok(())
            },
        )
    }

    fn scan_embeddings(
        &self,
        workspace: &WorkspaceId,
        model: &str,
        of: Embedded,
        visit: &mut dyn FnMut(trellis_core::engine::semantic::Embedding) -> CoreResult<()>,
    ) -> CoreResult<()> {
        if has_nul(model) {
            return Ok(());
        }
        let mut after = 0;
        loop {
            let page = self.read(|client| {
                records::embeddings_page(client, workspace, model, of, after, SCAN_PAGE)
            })?;
            let last_page = page.len() < SCAN_PAGE;
            for (seq, embedding) in page {
                after = seq;
                visit(embedding)?;
            }
            if last_page {
                return Ok(());
            }
        }
    }

    /// Nothing to do: PostgreSQL makes a commit durable before it returns, and checkpoints its
    /// own log.
    fn change_log(&self) -> Option<&dyn ChangeLog> {
        Some(self)
    }

    fn put_feedback(&self, workspace: &WorkspaceId, feedback: &[Feedback]) -> CoreResult<u64> {
        self.write(
            Some((workspace, true)),
            "recording feedback",
            |transaction| {
                let replaced = feedback::put_feedback(transaction, workspace, feedback)?;
                if !feedback.is_empty() {
                    changes::append(
                        transaction,
                        workspace,
                        &ChangeKind::Feedback(feedback.to_vec()),
                    )?;
                }
                Ok(replaced)
            },
        )
    }

    fn scan_feedback(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Feedback) -> CoreResult<()>,
    ) -> CoreResult<()> {
        self.read(|client| feedback::scan_feedback(client, workspace, visit))
    }

    fn list_feedback(
        &self,
        workspace: &WorkspaceId,
        filter: &FeedbackFilter,
        before: Option<(Millis, &str)>,
        limit: usize,
    ) -> CoreResult<Vec<Feedback>> {
        self.read(|client| feedback::list_feedback(client, workspace, filter, before, limit))
    }

    fn feedback_counts(&self, workspace: &WorkspaceId) -> CoreResult<FeedbackCounts> {
        self.read(|client| feedback::feedback_counts(client, workspace))
    }

    fn flush(&self) -> CoreResult<()> {
        Ok(())
    }
}
