//! What isolation mode costs: the same read, and the same sync into SQLite, of the template
//! connector (a real shared library) over a generated JSON Lines file of 5,000 conversations,
//! once in this process and once in a `trellis-plugin-runner` child (started anew for each read,
//! as a sync does); and the registry's start-up over the project's real connectors, reading their
//! specs in this process and probing each in a runner child (`plugins.probe_isolated`).
//! Benchmarks report, they do not assert times.
//!
//! `cargo bench -p trellis-plugin-host --bench isolation` (add `-- --quick` for a rougher run).
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use trellis_conformance::built_library;
use trellis_core::domain::WorkspaceId;
use trellis_core::service::{Settings, Trellis};
use trellis_core::sources::{Source, SourceStore};
use trellis_core::store::Store;
use trellis_plugin_host::{ConnectorInstance, IsolationSettings, PluginRegistry, Sources};
use trellis_plugin_sdk::State;
use trellis_store::SqliteStore;

const RECORDS: usize = 5_000;

fn fixture(dir: &Path) -> (PathBuf, String) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("a plugin folder");
    let library = built_library("trellis_connector_template");
    std::fs::copy(
        &library,
        plugins.join(library.file_name().expect("a file name")),
    )
    .expect("the library is copied");
    let data = dir.join("records.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&data).expect("a data file"));
    for n in 0..RECORDS {
        writeln!(
            file,
            r#"{{"type":"conversation","id":"c{n}","title":"thread {n} about tracing","body":"how do we propagate context for request {n} across services, and which spans should we keep?","tags":["tracing","otel"]}}"#
        )
        .expect("a line is written");
    }
    file.flush().expect("the data is written");
    let config = serde_json::json!({"path": data, "batch_size": 500}).to_string();
    (plugins, config)
}

fn isolation() -> IsolationSettings {
    IsolationSettings {
        runner: PathBuf::from(env!("CARGO_BIN_EXE_trellis-plugin-runner")),
        call_timeout: Duration::from_secs(60),
        memory_mb: 1024,
    }
}

fn read_all(instance: &ConnectorInstance, config: &str) -> usize {
    let mut session = instance
        .read(config, &State::new())
        .expect("the read opens");
    let mut items = 0;
    while let Some(batch) = session.next_batch().expect("a batch") {
        items += batch.items.len();
    }
    items
}

fn isolation_overhead(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (plugins, config) = fixture(dir.path());
    let registry = Arc::new(PluginRegistry::load(&[plugins]));
    let connector = Arc::clone(registry.get("jsonl").expect("the template is loaded"));
    let settings = isolation();

    let mut group = c.benchmark_group("read 5000 records");
    group.sample_size(10);
    group.bench_function("in process", |b| {
        b.iter(|| {
            let instance = ConnectorInstance::open(&connector, None).expect("an instance");
            black_box(read_all(&instance, &config))
        })
    });
    group.bench_function("isolated", |b| {
        b.iter(|| {
            let instance =
                ConnectorInstance::open(&connector, Some((&settings, "bench"))).expect("a child");
            black_box(read_all(&instance, &config))
        })
    });
    group.finish();

    let store = Arc::new(SqliteStore::open(&dir.path().join("trellis.db")).expect("a store"));
    let trellis = Arc::new(
        Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).expect("opens"),
    );
    let sources = Sources::new(trellis, store as Arc<dyn SourceStore>, registry)
        .with_isolation(settings.clone());
    let workspace = WorkspaceId::default_workspace();
    for (id, isolated) in [("inside", false), ("outside", true)] {
        sources
            .create(
                &workspace,
                Source {
                    id: id.to_owned(),
                    connector: "jsonl".to_owned(),
                    config_json: config.clone(),
                    isolated,
                    ..Source::default()
                },
            )
            .expect("the source is created");
    }
    let mut group = c.benchmark_group("full sync of 5000 records into sqlite");
    group.sample_size(10);
    for (name, id) in [("in process", "inside"), ("isolated", "outside")] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let outcome = sources
                    .sync(&workspace, id, true, &mut |_| {})
                    .expect("the sync runs");
                assert_eq!(outcome.records_read, RECORDS as u64, "{outcome:?}");
            })
        });
    }
    group.finish();
}

/// The project's real connectors, built by cargo as dev-dependencies.
const REAL_CONNECTORS: [&str; 7] = [
    "trellis_connector_template",
    "trellis_connector_stackexchange",
    "trellis_connector_bookmarks",
    "trellis_connector_blog",
    "trellis_connector_slack",
    "trellis_connector_discourse",
    "trellis_connector_mastodon",
];

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("a plugin folder");
    for crate_name in REAL_CONNECTORS {
        let library = built_library(crate_name);
        std::fs::copy(
            &library,
            plugins.join(library.file_name().expect("a file name")),
        )
        .expect("the library is copied");
    }
    let dirs = [plugins];
    let settings = isolation();
    let mut group = c.benchmark_group(format!(
        "start-up: the specs of {} real plugins",
        REAL_CONNECTORS.len()
    ));
    group.sample_size(10);
    // Libraries are never unloaded: after the first iteration, loading one in this process only
    // finds it already mapped, as a restart would not; each probe starts a fresh child.
    group.bench_function("read in process", |b| {
        b.iter(|| {
            let registry = PluginRegistry::load(&dirs);
            assert_eq!(registry.names().len(), REAL_CONNECTORS.len());
            black_box(registry)
        })
    });
    group.bench_function("probed in runner children", |b| {
        b.iter(|| {
            let registry = PluginRegistry::load_probed(&dirs, &settings);
            assert_eq!(
                registry.names().len(),
                REAL_CONNECTORS.len(),
                "{:?}",
                registry.refused()
            );
            black_box(registry)
        })
    });
    group.finish();
}

criterion_group!(benches, isolation_overhead, startup);
criterion_main!(benches);
