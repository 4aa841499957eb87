//! [`SqliteStore`]: the connections, the pragmas, and the `Store` trait over them.
//!
//! One writer connection behind a mutex, because SQLite admits one writer at a time anyway and a
//! queue in our process is cheaper and fairer than retries on `SQLITE_BUSY`. Reads go through a
//! small pool of read-only connections, because under WAL a reader sees the last committed state
//! without waiting for the writer: a long ingest batch never stalls an API read. An in-memory
//! database is private to its connection, so there every call shares the writer.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use trellis_core::CoreError;
use trellis_core::domain::{
    Asset, Conversation, Forgotten, Merge, Millis, Person, Post, Record, RecordKey, WorkspaceId,
};
use trellis_core::engine::semantic::Embedded;
use trellis_core::error::CoreResult;
use trellis_core::feedback::{Feedback, FeedbackCounts, FeedbackFilter};
use trellis_core::store::{CorpusCounts, Store, TextBudget, Upserted};
use trellis_core::strategy::{Strategy, StrategyVersion};

use crate::migrations;
use crate::records::{self, SCAN_PAGE, ScannedKind};

/// How long a statement waits for a lock held by another process (a CLI next to the server, a
/// backup) before giving up with an error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept open; more are opened under load and closed when returned.
const MAX_IDLE_READERS: usize = 4;

pub(crate) fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            Millis::try_from(elapsed.as_millis()).unwrap_or(Millis::MAX)
        })
}

/// Wraps a SQLite error with what we were doing, for the operator reading the log.
pub(crate) fn storage_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> CoreError {
    move |error| CoreError::Storage(format!("{doing}: {error}"))
}

/// A poisoned lock only means another thread panicked while holding a connection. Its
/// transaction, if any, was rolled back when the `Transaction` unwound, so the connection is
/// still sound and refusing every later call would turn one bug into an outage.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates `folder` (and its parents) readable by its owner only, when it does not exist.
fn private_folder(folder: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// The database holds every workspace's records, keys' hashes and sealed secrets: its file is
/// created readable and writable by its owner only (0600), and SQLite gives its `-wal` and
/// `-shm` files the mode of the database. An existing file open to others is narrowed, with a
/// warning.
fn private_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
        let mut companions = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            companions.push(PathBuf::from(name));
        }
        for file in companions {
            let Ok(metadata) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = metadata.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
                tracing::warn!(file = %file.display(), was = format!("{:o}", mode & 0o777), "the database file was open to other users; it is now readable by its owner only");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The SQLite-backed [`Store`]: one file (plus its `-wal` and `-shm` companions) holding every
/// workspace.
pub struct SqliteStore {
    /// `None` for an in-memory database.
    path: Option<PathBuf>,
    writer: Mutex<Connection>,
    /// Idle read-only connections; empty and unused for an in-memory database.
    readers: Mutex<Vec<Connection>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A connection to read with: a pooled reader, returned to the pool on drop, or the writer
/// itself when there is no pool.
pub(crate) enum ReadConnection<'a> {
    Pooled {
        connection: Option<Connection>,
        pool: &'a Mutex<Vec<Connection>>,
    },
    Writer(MutexGuard<'a, Connection>),
}

impl Deref for ReadConnection<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadConnection::Pooled { connection, .. } => connection
                .as_ref()
                .expect("a pooled connection is present until dropped"),
            ReadConnection::Writer(guard) => guard,
        }
    }
}

impl Drop for ReadConnection<'_> {
    fn drop(&mut self) {
        if let ReadConnection::Pooled { connection, pool } = self
            && let Some(connection) = connection.take()
        {
            let mut idle = lock(pool);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(connection);
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, CoreError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            private_folder(parent).map_err(|error| {
                CoreError::Storage(format!(
                    "creating the folder {} for the database: {error}",
                    parent.display()
                ))
            })?;
        }
        private_files(path).map_err(|error| {
            CoreError::Storage(format!(
                "making the database {} readable by its owner only: {error}",
                path.display()
            ))
        })?;
        let connection = Connection::open(path).map_err(|error| {
            CoreError::Storage(format!("opening the database {}: {error}", path.display()))
        })?;
        // Name the file in every error: the operator may run several databases.
        let store =
            Self::with_writer(connection, Some(path.to_path_buf())).map_err(
                |error| match error {
                    CoreError::Storage(message) => {
                        CoreError::Storage(format!("{}: {message}", path.display()))
                    }
                    CoreError::FailedPrecondition(message) => {
                        CoreError::FailedPrecondition(format!("{}: {message}", path.display()))
                    }
                    other => other,
                },
            )?;
        tracing::debug!(path = %path.display(), "opened the sqlite store");
        Ok(store)
    }

    /// A private database that lives as long as the store: for tests and dry runs.
    pub fn open_in_memory() -> Result<SqliteStore, CoreError> {
        let connection =
            Connection::open_in_memory().map_err(storage_error("opening an in-memory database"))?;
        Self::with_writer(connection, None)
    }

    fn with_writer(
        mut connection: Connection,
        path: Option<PathBuf>,
    ) -> Result<SqliteStore, CoreError> {
        configure_writer(&connection)?;
        migrations::migrate(&mut connection)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(connection),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open database; equal to [`crate::SCHEMA_VERSION`] once opened.
    pub fn schema_version(&self) -> CoreResult<u32> {
        migrations::current_version(&*self.read()?)
    }

    pub(crate) fn read(&self) -> CoreResult<ReadConnection<'_>> {
        let Some(path) = &self.path else {
            return Ok(ReadConnection::Writer(lock(&self.writer)));
        };
        let idle = lock(&self.readers).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(path)?,
        };
        Ok(ReadConnection::Pooled {
            connection: Some(connection),
            pool: &self.readers,
        })
    }

    /// Runs `work` in one write transaction, committed if it returns `Ok`, rolled back otherwise.
    pub(crate) fn write<T>(
        &self,
        doing: &'static str,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> CoreResult<T> {
        let mut connection = lock(&self.writer);
        // IMMEDIATE takes SQLite's write lock up front. A deferred transaction that reads first
        // and writes later can fail with SQLITE_BUSY at the upgrade when another process (a CLI
        // next to the server) writes in between, and busy_timeout cannot help with that case.
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_error(doing))?;
        let value = work(&transaction).map_err(storage_error(doing))?;
        transaction.commit().map_err(storage_error(doing))?;
        Ok(value)
    }
}

/// Settings that belong to the database file or to the writer connection.
fn configure_writer(connection: &Connection) -> Result<(), CoreError> {
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(storage_error("setting busy_timeout"))?;
    // WAL lets readers work alongside the writer, and a commit is one append to the log. (An
    // in-memory database answers "memory"; it has no file to log to, which is fine for it.)
    let journal_mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(storage_error("setting journal_mode"))?;
    debug_assert!(
        journal_mode.eq_ignore_ascii_case("wal") || journal_mode.eq_ignore_ascii_case("memory"),
        "journal_mode is {journal_mode}"
    );
    // NORMAL, not FULL: in WAL mode a commit that returned is safe from a crash of this process
    // (the log is in the OS page cache and is replayed on the next open) and the file never
    // corrupts; only a power cut or kernel crash can lose the last commits before a checkpoint.
    // Surviving process crashes is the bar we set, and NORMAL spares an fsync on every commit,
    // which is most of the cost of a small ingest batch. `flush` checkpoints (and so syncs) at
    // shutdown.
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(storage_error("setting synchronous"))?;
    // Off by default in SQLite, per connection; the schema relies on it to refuse rows in a
    // workspace that does not exist.
    connection
        .pragma_update(None, "foreign_keys", true)
        .map_err(storage_error("setting foreign_keys"))?;
    Ok(())
}

fn open_reader(path: &Path) -> CoreResult<Connection> {
    // Read-only so that a bug in a read path can never write behind the writer's back.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|error| {
        CoreError::Storage(format!(
            "opening a read connection to {}: {error}",
            path.display()
        ))
    })?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(storage_error("setting busy_timeout"))?;
    Ok(connection)
}

/// Creates the workspace if it is new, inside the caller's transaction, so that a write to a
/// new workspace never trips over the foreign key.
pub(crate) fn ensure_workspace_in(
    connection: &Connection,
    workspace: &WorkspaceId,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO workspaces (id, created_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![workspace.as_str(), now_millis()])?;
    Ok(())
}

pub(crate) fn parse_strategy(
    version: u32,
    created_at: Millis,
    json: &str,
) -> CoreResult<StrategyVersion> {
    let strategy = serde_json::from_str(json).map_err(|error| {
        CoreError::Storage(format!(
            "strategy version {version} is stored as unreadable JSON: {error}"
        ))
    })?;
    Ok(StrategyVersion {
        version,
        created_at,
        strategy,
    })
}

fn strategy_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(u32, Millis, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// JSON has no NaN or infinity: serde_json would write `null` and the version could never be read
/// back. Core's validation already refuses such weights; this keeps the store safe on its own.
pub(crate) fn check_storable(strategy: &Strategy) -> CoreResult<()> {
    let violations: Vec<_> = strategy
        .facets
        .iter()
        .enumerate()
        .filter(|(_, facet)| !facet.weight.is_finite())
        .map(|(index, facet)| {
            trellis_core::Violation::new(
                format!("facets[{index}].weight"),
                format!("is {}; use a finite weight", facet.weight),
            )
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(CoreError::Invalid(violations))
    }
}

impl Store for SqliteStore {
    fn workspaces(&self) -> CoreResult<Vec<WorkspaceId>> {
        let connection = self.read()?;
        let ids: Vec<String> = connection
            .prepare_cached("SELECT id FROM workspaces ORDER BY id")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .map_err(storage_error("listing workspaces"))?;
        ids.iter()
            .map(|id| {
                WorkspaceId::parse(id).map_err(|violation| {
                    CoreError::Storage(format!(
                        "the stored workspace id {id:?} is not valid: {violation}"
                    ))
                })
            })
            .collect()
    }

    fn ensure_workspace(&self, workspace: &WorkspaceId) -> CoreResult<()> {
        self.write("creating a workspace", |transaction| {
            ensure_workspace_in(transaction, workspace)
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
        let version = self.write("storing a strategy version", |transaction| {
            ensure_workspace_in(transaction, workspace)?;
            let version: u32 = transaction
                .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM strategy_versions WHERE workspace = ?1")?
                .query_row(params![workspace.as_str()], |row| row.get(0))?;
            transaction
                .prepare_cached(
                    "INSERT INTO strategy_versions (workspace, version, created_at, strategy) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![workspace.as_str(), version, now, json])?;
            Ok(version)
        })?;
        Ok(StrategyVersion {
            version,
            created_at: now,
            strategy: strategy.clone(),
        })
    }

    fn strategy(
        &self,
        workspace: &WorkspaceId,
        version: Option<u32>,
    ) -> CoreResult<Option<StrategyVersion>> {
        let connection = self.read()?;
        let row = connection
            .prepare_cached(
                "SELECT version, created_at, strategy FROM strategy_versions
                 WHERE workspace = ?1 AND (?2 IS NULL OR version = ?2)
                 ORDER BY version DESC LIMIT 1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![workspace.as_str(), version], strategy_from_row)
                    .optional()
            })
            .map_err(storage_error("reading a strategy version"))?;
        row.map(|(version, created_at, json)| parse_strategy(version, created_at, &json))
            .transpose()
    }

    fn strategy_versions(
        &self,
        workspace: &WorkspaceId,
        limit: usize,
        before: Option<u32>,
    ) -> CoreResult<Vec<StrategyVersion>> {
        let connection = self.read()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(u32, Millis, String)> = connection
            .prepare_cached(
                "SELECT version, created_at, strategy FROM strategy_versions
                 WHERE workspace = ?1 AND (?2 IS NULL OR version < ?2)
                 ORDER BY version DESC LIMIT ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(
                        params![workspace.as_str(), before, limit],
                        strategy_from_row,
                    )?
                    .collect()
            })
            .map_err(storage_error("listing strategy versions"))?;
        rows.iter()
            .map(|(version, created_at, json)| parse_strategy(*version, *created_at, json))
            .collect()
    }

    fn upsert_records(
        &self,
        workspace: &WorkspaceId,
        records: &[Record],
    ) -> CoreResult<Vec<Upserted<Record>>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.write("storing records", |transaction| {
            ensure_workspace_in(transaction, workspace)?;
            let mut results = Vec::with_capacity(records.len());
            for record in records {
                // Read inside the transaction, so a key repeated within the batch compares against
                // its earlier occurrence, exactly as if the two had come in separate batches.
                let result = match records::stored_like(transaction, workspace, record)? {
                    None => Upserted::Inserted,
                    Some(previous) if previous == *record => Upserted::Unchanged,
                    Some(previous) => Upserted::Updated { previous },
                };
                if !matches!(result, Upserted::Unchanged) {
                    records::write(transaction, workspace, record)?;
                }
                results.push(result);
            }
            Ok(results)
        })
    }

    fn conversation(
        &self,
        workspace: &WorkspaceId,
        key: &RecordKey,
    ) -> CoreResult<Option<Conversation>> {
        records::conversation(&*self.read()?, workspace, key)
            .map_err(storage_error("reading a conversation"))
    }

    fn posts_of(&self, workspace: &WorkspaceId, conversation: &RecordKey) -> CoreResult<Vec<Post>> {
        records::posts_of(&*self.read()?, workspace, conversation)
            .map_err(storage_error("reading posts"))
    }

    fn opening_posts(
        &self,
        workspace: &WorkspaceId,
        conversation: &RecordKey,
        text_bytes: usize,
    ) -> CoreResult<Vec<Post>> {
        records::opening_posts(
            &*self.read()?,
            workspace,
            conversation,
            TextBudget::new(text_bytes),
        )
        .map_err(storage_error("reading posts"))
    }

    fn person(&self, workspace: &WorkspaceId, key: &RecordKey) -> CoreResult<Option<Person>> {
        records::person(&*self.read()?, workspace, key).map_err(storage_error("reading a person"))
    }

    fn put_merge(&self, workspace: &WorkspaceId, merge: &Merge) -> CoreResult<()> {
        self.write("recording a merge", |transaction| {
            ensure_workspace_in(transaction, workspace)?;
            records::put_merge(transaction, workspace, merge)
        })
    }

    fn undo_merge(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        now: Millis,
    ) -> CoreResult<Option<Merge>> {
        self.write("undoing a merge", |transaction| {
            records::undo_merge(transaction, workspace, id, now)
        })
    }

    fn merges(&self, workspace: &WorkspaceId) -> CoreResult<Vec<Merge>> {
        records::merges(&*self.read()?, workspace).map_err(storage_error("reading merges"))
    }

    fn forget_people(
        &self,
        workspace: &WorkspaceId,
        people: &[RecordKey],
        now: Millis,
    ) -> CoreResult<Forgotten> {
        self.write("forgetting people", |transaction| {
            ensure_workspace_in(transaction, workspace)?;
            records::forget_people(transaction, workspace, people, now)
        })
    }

    fn forgotten(&self, workspace: &WorkspaceId) -> CoreResult<Vec<RecordKey>> {
        records::forgotten(&*self.read()?, workspace)
            .map_err(storage_error("reading who was forgotten"))
    }

    fn list_people(
        &self,
        workspace: &WorkspaceId,
        member: Option<bool>,
        after: i64,
        limit: usize,
    ) -> CoreResult<Vec<(i64, Person)>> {
        records::list_people(&*self.read()?, workspace, member, after, limit)
            .map_err(storage_error("listing people"))
    }

    fn writing_of(
        &self,
        workspace: &WorkspaceId,
        person: &RecordKey,
        limit: usize,
    ) -> CoreResult<(Vec<Conversation>, Vec<Post>)> {
        records::writing_of(&*self.read()?, workspace, person, limit)
            .map_err(storage_error("reading a person's posts"))
    }

    fn asset(&self, workspace: &WorkspaceId, key: &RecordKey) -> CoreResult<Option<Asset>> {
        records::asset(&*self.read()?, workspace, key).map_err(storage_error("reading an asset"))
    }

    /// Reads in pages of a few hundred rows, keyed on `seq`, and holds no connection while
    /// `visit` runs. Memory stays bounded by one page; `visit` may call back into this store
    /// (even an in-memory one, whose only connection would otherwise be held); and no read
    /// transaction stays open for the whole rebuild, which would keep checkpoints from
    /// recycling the WAL and let it grow for as long as the rebuild takes. The price is that
    /// the scan is not one snapshot: a record written meanwhile is seen at its latest state or,
    /// if it is new, at the end — which is what an index following the writes wants anyway.
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
                let page = records::scan_page(&*self.read()?, workspace, kind, after)
                    .map_err(storage_error("scanning the corpus"))?;
                let last_page = page.len() < SCAN_PAGE;
                for (seq, record) in page {
                    debug_assert!(seq > after, "scan pages come in seq order");
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
            let page = records::scan_page(&*self.read()?, workspace, ScannedKind::Asset, after)
                .map_err(storage_error("scanning the assets"))?;
            let last_page = page.len() < SCAN_PAGE;
            for (seq, record) in page {
                debug_assert!(seq > after, "scan pages come in seq order");
                after = seq;
                if let Record::Asset(asset) = record {
                    visit(asset)?;
                }
            }
            if last_page {
                break;
            }
        }
        Ok(())
    }

    fn put_embeddings(
        &self,
        workspace: &WorkspaceId,
        model: &str,
        of: Embedded,
        embeddings: &[trellis_core::engine::semantic::Embedding],
    ) -> CoreResult<()> {
        self.write("storing embeddings", |transaction| {
            records::put_embeddings(transaction, workspace, model, of, embeddings)
        })
    }

    fn scan_embeddings(
        &self,
        workspace: &WorkspaceId,
        model: &str,
        of: Embedded,
        visit: &mut dyn FnMut(trellis_core::engine::semantic::Embedding) -> CoreResult<()>,
    ) -> CoreResult<()> {
        let mut after = 0;
        loop {
            let page =
                records::embeddings_page(&*self.read()?, workspace, model, of, after, SCAN_PAGE)
                    .map_err(storage_error("reading embeddings"))?;
            let last_page = page.len() < SCAN_PAGE;
            for (rowid, embedding) in page {
                after = rowid;
                visit(embedding)?;
            }
            if last_page {
                return Ok(());
            }
        }
    }

    fn counts(&self, workspace: &WorkspaceId) -> CoreResult<CorpusCounts> {
        let connection = self.read()?;
        // One statement, so the four numbers come from one snapshot.
        connection
            .prepare_cached(
                "SELECT (SELECT COUNT(*) FROM people WHERE workspace = ?1),
                        (SELECT COUNT(*) FROM conversations WHERE workspace = ?1),
                        (SELECT COUNT(*) FROM posts WHERE workspace = ?1),
                        (SELECT COUNT(*) FROM assets WHERE workspace = ?1)",
            )
            .and_then(|mut statement| {
                statement.query_row(params![workspace.as_str()], |row| {
                    // SQLite integers are signed; a count is never negative.
                    let count = |index: usize| row.get::<_, i64>(index).map(i64::unsigned_abs);
                    Ok(CorpusCounts {
                        people: count(0)?,
                        conversations: count(1)?,
                        posts: count(2)?,
                        assets: count(3)?,
                    })
                })
            })
            .map_err(storage_error("counting records"))
    }

    fn put_feedback(&self, workspace: &WorkspaceId, feedback: &[Feedback]) -> CoreResult<u64> {
        self.write("recording feedback", |transaction| {
            ensure_workspace_in(transaction, workspace)?;
            crate::feedback::put_feedback(transaction, workspace, feedback)
        })
    }

    fn scan_feedback(
        &self,
        workspace: &WorkspaceId,
        visit: &mut dyn FnMut(Feedback) -> CoreResult<()>,
    ) -> CoreResult<()> {
        crate::feedback::scan_feedback(&*self.read()?, workspace, visit)
    }

    fn list_feedback(
        &self,
        workspace: &WorkspaceId,
        filter: &FeedbackFilter,
        before: Option<(Millis, &str)>,
        limit: usize,
    ) -> CoreResult<Vec<Feedback>> {
        crate::feedback::list_feedback(&*self.read()?, workspace, filter, before, limit)
            .map_err(storage_error("listing feedback"))
    }

    fn feedback_counts(&self, workspace: &WorkspaceId) -> CoreResult<FeedbackCounts> {
        crate::feedback::feedback_counts(&*self.read()?, workspace)
            .map_err(storage_error("counting feedback"))
    }

    fn flush(&self) -> CoreResult<()> {
        let connection = lock(&self.writer);
        let (busy, log_frames, checkpointed): (i64, i64, i64) = connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(storage_error("checkpointing the write-ahead log"))?;
        // A reader in the middle of a query can keep the checkpoint from finishing. Nothing is
        // at risk: the log was synced before copying began and is replayed on the next open.
        if busy != 0 {
            tracing::warn!(
                log_frames,
                checkpointed,
                "the write-ahead log checkpoint could not finish; a reader was busy"
            );
        }
        Ok(())
    }
}
