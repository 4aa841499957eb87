//! The SQLite store: the storage conformance suite (`conformance/mod.rs`), run on a fresh
//! database file per test, and what only SQLite has: its write-ahead log, its file, and
//! migrations checked in the file itself.

mod conformance;

use std::path::Path;

use trellis_core::CoreError;
use trellis_core::domain::{Record, RecordKey, WorkspaceId};
use trellis_core::store::Store;
use trellis_store::{SCHEMA_VERSION, SqliteStore};

use conformance::{Database, Engine, Stores};

/// SQLite on a database file in a temporary folder, nested so that opening creates folders.
struct Sqlite;

struct SqliteFile(tempfile::TempDir);

impl Database for SqliteFile {
    fn open(&self) -> std::sync::Arc<dyn Stores> {
        let path = self.0.path().join("nested/deeper/trellis.db");
        let store = SqliteStore::open(&path).expect("open the sqlite store");
        assert_eq!(store.path(), Some(path.as_path()));
        std::sync::Arc::new(store)
    }
}

impl Engine for Sqlite {
    fn database(&self) -> Option<Box<dyn Database>> {
        Some(Box::new(SqliteFile(tempfile::tempdir().expect("tempdir"))))
    }

    fn refuses_nul(&self) -> bool {
        false
    }
}

conformance_tests!(Sqlite);

fn default_workspace() -> WorkspaceId {
    WorkspaceId::default_workspace()
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw connection")
}

/// Every record kind, as one batch.
fn corpus() -> Vec<Record> {
    conformance::corpus()
}

#[test]
fn an_in_memory_store_passes_the_basics_and_may_be_reentered_during_a_scan() {
    // An in-memory database has one connection: a scan must not hold it while visiting.
    let store = SqliteStore::open_in_memory().unwrap();
    let ws = default_workspace();
    store.upsert_records(&ws, &corpus()).unwrap();
    let mut visited = 0;
    store
        .scan_corpus(&ws, &mut |record| {
            visited += 1;
            if let Record::Post(post) = &record {
                let parent = RecordKey::new(post.key.source.clone(), post.conversation.clone());
                assert!(store.conversation(&ws, &parent)?.is_some());
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(visited, 5);
    assert_eq!(store.counts(&ws).unwrap().conversations, 2);
}

#[test]
fn flush_checkpoints_the_log_into_the_database_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .upsert_records(&default_workspace(), &corpus())
        .unwrap();
    let wal = folder.path().join("trellis.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    store.flush().unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    let journal_mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal_mode, "wal");
    // An in-memory store has no log, and flushing it is harmless.
    SqliteStore::open_in_memory().unwrap().flush().unwrap();
}

#[cfg(unix)]
#[test]
fn the_database_and_its_log_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("new").join("trellis.db");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let store = SqliteStore::open(&path).unwrap();
    store
        .upsert_records(&default_workspace(), &corpus())
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        mode(&folder.path().join("new").join("trellis.db-wal")),
        0o600
    );
    assert_eq!(
        mode(&folder.path().join("new")),
        0o700,
        "the folder it made"
    );
    drop(store);
    // A file made open to others before is narrowed at the next open.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn migrations_run_once_and_reopening_applies_nothing_twice() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    let applied = |path: &Path| -> Vec<(u32, i64)> {
        raw(path)
            .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    drop(store);
    let first = applied(&path);
    assert_eq!(
        first
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>(),
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    for _ in 0..3 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.workspaces().unwrap(), vec![default_workspace()]);
    }
    assert_eq!(applied(&path), first, "nothing was applied again");
}

#[test]
fn a_database_newer_than_the_binary_is_refused_with_a_clear_error() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("trellis.db");
    drop(SqliteStore::open(&path).unwrap());
    let future = SCHEMA_VERSION + 1;
    raw(&path)
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
            [future],
        )
        .unwrap();
    let Err(CoreError::FailedPrecondition(message)) = SqliteStore::open(&path) else {
        panic!("expected a failed precondition");
    };
    assert!(
        message.contains(&format!("schema version {future}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("version {SCHEMA_VERSION} that this trellis knows")),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_storage_error() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the pages you are looking for ".repeat(100),
    )
    .unwrap();
    let Err(CoreError::Storage(message)) = SqliteStore::open(&path) else {
        panic!("expected a storage error");
    };
    assert!(message.contains("notes.txt"), "{message}");
}
