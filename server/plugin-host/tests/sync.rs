//! The plugin host over the real template plugin (a shared library copied into a plugin folder)
//! and a real SQLite store: sources are validated against the connector's schema, syncs store
//! records and commit checkpoints, and a later sync resumes where the last one stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trellis_conformance::built_library;
use trellis_core::CoreError;
use trellis_core::domain::WorkspaceId;
use trellis_core::service::{Settings, Trellis};
use trellis_core::sources::{Source, SourceStore, SyncStatus};
use trellis_core::store::Store;
use trellis_plugin_host::{PluginRegistry, Sources};
use trellis_store::SqliteStore;

fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_template");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    // Not a library: ignored. A library without the entry symbol: refused, not fatal.
    std::fs::write(plugins.join("README.txt"), "not a plugin").unwrap();
    plugins
}

fn sources(dir: &Path) -> (Arc<Sources>, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(&dir.join("trellis.db")).unwrap());
    let trellis =
        Arc::new(Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).unwrap());
    let registry = Arc::new(PluginRegistry::load(&[plugin_dir(dir)]));
    (
        Arc::new(Sources::new(
            trellis,
            Arc::clone(&store) as Arc<dyn SourceStore>,
            registry,
        )),
        store,
    )
}

fn write_lines(path: &Path, from: usize, to: usize) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in from..to {
        writeln!(file, r#"{{"type":"conversation","id":"c{n}","title":"thread {n}","body":"about tracing {n}"}}"#).unwrap();
    }
}

fn source(id: &str, config: serde_json::Value) -> Source {
    Source {
        id: id.to_owned(),
        connector: "jsonl".to_owned(),
        config_json: config.to_string(),
        ..Source::default()
    }
}

#[test]
fn a_sync_stores_records_and_the_next_one_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path());
    let workspace = WorkspaceId::default_workspace();
    assert_eq!(sources.registry().names(), ["jsonl"]);
    let data = dir.path().join("records.jsonl");
    write_lines(&data, 0, 250);
    sources
        .create(
            &workspace,
            source("forum", serde_json::json!({"path": data, "batch_size": 40})),
        )
        .unwrap();
    let mut updates = Vec::new();
    let first = sources
        .sync(&workspace, "forum", false, &mut |progress| {
            updates.push(progress.clone())
        })
        .unwrap();
    assert_eq!(first.status, SyncStatus::Succeeded, "{first:?}");
    assert_eq!(
        (
            first.records_read,
            first.records_stored,
            first.checkpoints_committed
        ),
        (250, 250, 7)
    );
    assert!(
        updates.len() >= 8,
        "progress after every checkpoint: {updates:?}"
    );
    assert_eq!(store.counts(&workspace).unwrap().conversations, 250);

    write_lines(&data, 250, 260);
    let second = sources
        .sync(&workspace, "forum", false, &mut |_| {})
        .unwrap();
    assert_eq!(second.records_read, 10, "only the new lines: {second:?}");
    let saved = sources.get(&workspace, "forum").unwrap();
    assert_eq!(saved.records_synced, 260);
    assert_eq!(saved.status, SyncStatus::Succeeded);
    assert!(saved.last_sync_at.is_some());

    let refreshed = sources
        .sync(&workspace, "forum", true, &mut |_| {})
        .unwrap();
    assert_eq!(refreshed.records_read, 260);
    assert_eq!(
        store.counts(&workspace).unwrap().conversations,
        260,
        "a full refresh duplicates nothing"
    );
}

#[test]
fn configs_are_validated_against_the_connector_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _store) = sources(dir.path());
    let workspace = WorkspaceId::default_workspace();
    let Err(CoreError::Invalid(violations)) = sources.create(
        &workspace,
        source("forum", serde_json::json!({"batch_size": 0})),
    ) else {
        panic!("a config without path must be refused");
    };
    let text = format!("{violations:?}");
    assert!(
        text.contains("source.config_json") && text.contains("path"),
        "{text}"
    );
    let Err(CoreError::Invalid(violations)) = sources.create(
        &workspace,
        Source {
            connector: "nope".into(),
            ..source("Bad:Id", serde_json::json!({}))
        },
    ) else {
        panic!("a bad id and connector must be refused");
    };
    let text = format!("{violations:?}");
    assert!(
        text.contains("source.id") && text.contains("use one of jsonl"),
        "{text}"
    );
}

#[test]
fn check_reports_a_missing_file_and_a_failed_sync_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _store) = sources(dir.path());
    let workspace = WorkspaceId::default_workspace();
    let missing = dir.path().join("missing.jsonl");
    sources
        .create(
            &workspace,
            source("gone", serde_json::json!({"path": missing})),
        )
        .unwrap();
    let (ok, message) = sources.check(&workspace, "gone").unwrap();
    assert!(!ok);
    assert!(message.contains("config error: path"), "{message}");
    let outcome = sources
        .sync(&workspace, "gone", false, &mut |_| {})
        .unwrap();
    assert_eq!(outcome.status, SyncStatus::Failed);
    let saved = sources.get(&workspace, "gone").unwrap();
    assert_eq!(saved.status, SyncStatus::Failed);
    assert!(
        saved.last_error.contains("cannot open"),
        "{}",
        saved.last_error
    );
    sources.delete(&workspace, "gone").unwrap();
    assert!(matches!(
        sources.get(&workspace, "gone"),
        Err(CoreError::NotFound { .. })
    ));
}

#[test]
fn a_sync_from_the_start_that_reads_nothing_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _store) = sources(dir.path());
    let workspace = WorkspaceId::default_workspace();
    let data = dir.path().join("empty.jsonl");
    std::fs::write(&data, "").unwrap();
    sources
        .create(
            &workspace,
            source("empty", serde_json::json!({"path": data})),
        )
        .unwrap();
    let report = sources
        .sync(&workspace, "empty", false, &mut |_| {})
        .unwrap();
    assert_eq!(report.status, SyncStatus::Succeeded);
    assert!(report.message.contains("read nothing"), "{report:?}");
    assert!(report.message.contains("sources check"), "{report:?}");
    // With data, nothing to say.
    write_lines(&data, 0, 3);
    let report = sources
        .sync(&workspace, "empty", true, &mut |_| {})
        .unwrap();
    assert_eq!(report.records_read, 3);
    assert!(report.message.is_empty(), "{report:?}");
}
