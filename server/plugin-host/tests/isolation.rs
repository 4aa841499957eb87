//! Isolation mode over real child processes (`trellis-plugin-runner`, built by cargo with this
//! crate), real shared libraries and a real SQLite store. A deliberately broken connector aborts,
//! segfaults, hangs, leaks memory or answers garbage in its child: each sync fails with an error
//! that names the source and what happened, nothing is committed past what was stored, no child
//! is left behind, and this process — the host — keeps syncing other sources, in process and
//! isolated. A real connector gives the same records in both modes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_core::CoreError;
use trellis_core::domain::WorkspaceId;
use trellis_core::service::{Settings, Trellis};
use trellis_core::sources::{Source, SourceStore, SyncStatus};
use trellis_core::store::Store;
use trellis_plugin_host::{
    ConnectorInstance, IsolationSettings, PluginRegistry, RetryPolicy, Sources, SyncProgress,
};
use trellis_plugin_sdk::State;
use trellis_plugin_sdk::pb::connector::ReadBatch;
use trellis_store::SqliteStore;

use common::plugin_dir;

/// Generous, so that a loaded machine does not look like a hung plugin; the test of a hang sets
/// [`HANG_TIMEOUT`].
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const HANG_TIMEOUT: Duration = Duration::from_secs(5);
const MEMORY_MB: u64 = 256;

fn isolation() -> IsolationSettings {
    common::isolation(CALL_TIMEOUT, MEMORY_MB)
}

fn sources_with(dir: &Path, isolation: IsolationSettings) -> (Arc<Sources>, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(&dir.join("trellis.db")).unwrap());
    let trellis =
        Arc::new(Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).unwrap());
    let registry = Arc::new(PluginRegistry::load(&[plugin_dir(dir)]));
    let sources = Sources::new(
        trellis,
        Arc::clone(&store) as Arc<dyn SourceStore>,
        registry,
    )
    .with_isolation(isolation)
    .with_retry(RetryPolicy {
        attempts: 3,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    });
    (Arc::new(sources), store)
}

fn sources(dir: &Path) -> (Arc<Sources>, Arc<SqliteStore>) {
    sources_with(dir, isolation())
}

fn broken(id: &str, mode: &str, isolated: bool) -> Source {
    Source {
        id: id.to_owned(),
        connector: "broken".to_owned(),
        config_json: serde_json::json!({"mode": mode, "records": 10, "batch_size": 5}).to_string(),
        isolated,
        ..Source::default()
    }
}

fn workspace(name: &str) -> WorkspaceId {
    WorkspaceId::parse(name).unwrap()
}

fn sync(sources: &Sources, workspace: &WorkspaceId, id: &str) -> SyncProgress {
    sources.sync(workspace, id, false, &mut |_| {}).unwrap()
}

/// The children of this process that have exited but were not reaped.
fn zombie_children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after its closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == me {
            zombies.push(head.to_owned());
        }
    }
    zombies
}

/// Fails unless no child of this process stays a zombie (other tests of this binary run
/// children at the same time, so a zombie may be seen for an instant before it is reaped).
fn assert_no_zombies() {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let zombies = zombie_children();
        if zombies.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "children left unreaped: {zombies:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn broken_plugins_fail_their_syncs_clearly_while_the_host_keeps_syncing_others() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources_with(
        dir.path(),
        IsolationSettings {
            call_timeout: HANG_TIMEOUT,
            ..isolation()
        },
    );
    let expectations: [(&str, &[&str]); 5] = [
        (
            "abort",
            &[
                "the plugin process of source \"abort\" died with signal SIGABRT (it aborted) during read_next",
            ],
        ),
        (
            "segfault",
            &[
                "the plugin process of source \"segfault\" died with signal SIGSEGV (an invalid memory access) during read_next",
            ],
        ),
        (
            "hang",
            &[
                "the plugin process of source \"hang\" did not answer read_next within 5 s (plugins.isolated_call_timeout_seconds); it was stopped",
            ],
        ),
        (
            "leak",
            &[
                "the plugin process of source \"leak\" ran out of memory during read_next (its limit is 256 MiB; raise plugins.isolated_memory_mb",
                "memory allocation of",
            ],
        ),
        (
            "garbage",
            &[
                "the plugin process of source \"garbage\" failed read_next",
                "does not decode",
                "it was stopped",
            ],
        ),
    ];
    for (mode, _) in &expectations {
        sources
            .create(&workspace(mode), broken(mode, mode, true))
            .unwrap();
    }
    for (id, isolated) in [("fine-inside", false), ("fine-isolated", true)] {
        sources
            .create(&workspace(id), broken(id, "ok", isolated))
            .unwrap();
    }

    // Every broken source and both well-behaved ones sync at the same time.
    let started = Instant::now();
    let handles: Vec<_> = expectations
        .iter()
        .map(|(mode, _)| *mode)
        .chain(["fine-inside", "fine-isolated"])
        .map(|id| {
            let sources = Arc::clone(&sources);
            std::thread::spawn(move || (id, sync(&sources, &workspace(id), id)))
        })
        .collect();
    let outcomes: Vec<(&str, SyncProgress)> = handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the hang is bounded by the call timeout"
    );

    for (id, outcome) in &outcomes {
        let saved = sources.get(&workspace(id), id).unwrap();
        let committed = store.sync_state(&workspace(id), id).unwrap();
        let stored = store.counts(&workspace(id)).unwrap().conversations;
        if id.starts_with("fine") {
            assert_eq!(outcome.status, SyncStatus::Succeeded, "{id}: {outcome:?}");
            assert_eq!(stored, 10, "{id}");
            continue;
        }
        let (_, fragments) = expectations.iter().find(|(mode, _)| mode == id).unwrap();
        eprintln!("{id}: {}", saved.last_error);
        assert_eq!(outcome.status, SyncStatus::Failed, "{id}: {outcome:?}");
        assert_eq!(saved.status, SyncStatus::Failed, "{id}");
        for fragment in *fragments {
            assert!(
                saved.last_error.contains(fragment),
                "{id}: {fragment:?} is not in {:?}",
                saved.last_error
            );
        }
        // The first batch and its checkpoint made it; nothing after it was committed.
        assert_eq!(
            committed,
            [("conversations".to_owned(), r#"{"next":5}"#.to_owned())],
            "{id}"
        );
        assert_eq!(
            stored, 5,
            "{id}: the records before the checkpoint are stored"
        );
        assert_eq!(saved.records_synced, 5, "{id}");
    }

    // Right after, both well-behaved sources sync again, and a fresh one isolated from scratch.
    for id in ["fine-inside", "fine-isolated"] {
        let again = sources.sync(&workspace(id), id, true, &mut |_| {}).unwrap();
        assert_eq!(again.status, SyncStatus::Succeeded, "{id}: {again:?}");
        assert_eq!(again.records_read, 10, "{id}");
    }
    assert_no_zombies();
}

#[test]
fn a_crashed_source_resumes_from_its_last_checkpoint_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path());
    let forum = workspace("forum");
    sources
        .create(&forum, broken("flaky", "segfault", true))
        .unwrap();
    assert_eq!(sync(&sources, &forum, "flaky").status, SyncStatus::Failed);
    sources.update(&forum, broken("flaky", "ok", true)).unwrap();
    let fixed = sync(&sources, &forum, "flaky");
    assert_eq!(fixed.status, SyncStatus::Succeeded, "{fixed:?}");
    assert_eq!(fixed.records_read, 5, "only what came after the checkpoint");
    assert_eq!(store.counts(&forum).unwrap().conversations, 10);
}

#[test]
fn transient_errors_of_an_isolated_plugin_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path());
    let forum = workspace("forum");
    sources
        .create(&forum, broken("flaky", "transient", true))
        .unwrap();
    let mut messages = Vec::new();
    let outcome = sources
        .sync(&forum, "flaky", false, &mut |progress| {
            messages.push(progress.message.clone())
        })
        .unwrap();
    assert_eq!(outcome.status, SyncStatus::Succeeded, "{outcome:?}");
    assert!(
        messages
            .iter()
            .any(|message| message.contains("transient error")
                && message.contains("reading again from the last checkpoint")),
        "{messages:?}"
    );
    assert_eq!(store.counts(&forum).unwrap().conversations, 10);
}

#[test]
fn a_cancel_kills_the_child_and_ends_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _store) = sources_with(
        dir.path(),
        IsolationSettings {
            call_timeout: Duration::from_secs(120),
            ..isolation()
        },
    );
    let forum = workspace("forum");
    sources
        .create(&forum, broken("stuck", "hang", true))
        .unwrap();
    let syncing = {
        let sources = Arc::clone(&sources);
        let forum = forum.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            (sync(&sources, &forum, "stuck"), started.elapsed())
        })
    };
    // Wait until the first checkpoint is in, so the child is inside its hanging call.
    let until = Instant::now() + Duration::from_secs(30);
    while sources.get(&forum, "stuck").unwrap().records_synced < 5 {
        assert!(Instant::now() < until, "the first batch never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(sources.cancel(&forum, "stuck"));
    let (outcome, elapsed) = syncing.join().unwrap();
    assert_eq!(outcome.status, SyncStatus::Failed, "{outcome:?}");
    assert!(outcome.message.contains("cancelled"), "{outcome:?}");
    assert!(
        elapsed < Duration::from_secs(60),
        "the cancel did not wait for the call timeout"
    );
    assert_no_zombies();
}

#[test]
fn what_a_plugin_prints_does_not_corrupt_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path());
    let forum = workspace("forum");
    sources
        .create(&forum, broken("chatty", "noisy", true))
        .unwrap();
    let outcome = sync(&sources, &forum, "chatty");
    assert_eq!(outcome.status, SyncStatus::Succeeded, "{outcome:?}");
    assert_eq!(store.counts(&forum).unwrap().conversations, 10);
    let (ok, message) = sources.check(&forum, "chatty").unwrap();
    assert!(ok && message == "mode noisy", "{message}");
}

#[test]
fn an_isolated_source_needs_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _store) = sources_with(
        dir.path(),
        IsolationSettings {
            runner: dir.path().join("no-such-runner"),
            ..isolation()
        },
    );
    let Err(CoreError::Invalid(violations)) =
        sources.create(&workspace("forum"), broken("lonely", "ok", true))
    else {
        panic!("an isolated source without a runner must be refused");
    };
    let text = format!("{violations:?}");
    assert!(
        text.contains("source.isolated") && text.contains("set plugins.runner"),
        "{text}"
    );
    sources
        .create(&workspace("forum"), broken("lonely", "ok", false))
        .unwrap();
}

/// Every batch of a full read, in order.
fn read_all(instance: &ConnectorInstance, config: &str) -> Vec<ReadBatch> {
    let mut session = instance.read(config, &State::new()).unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = session.next_batch().unwrap() {
        batches.push(batch);
    }
    batches
}

#[test]
fn a_real_connector_gives_the_same_answers_in_and_out_of_process() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path());
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/stackexchange/tests/fixtures/mini");
    let config = serde_json::json!({"path": fixture}).to_string();
    let connector = sources.registry().get("stackexchange").unwrap();
    let inside = ConnectorInstance::open(connector, None).unwrap();
    let settings = isolation();
    let outside = ConnectorInstance::open(connector, Some((&settings, "mini"))).unwrap();
    assert!(matches!(outside, ConnectorInstance::Isolated(_)));
    assert_eq!(inside.spec().unwrap(), outside.spec().unwrap());
    assert_eq!(
        inside.check(&config).unwrap(),
        outside.check(&config).unwrap()
    );
    assert_eq!(
        inside.discover(&config).unwrap(),
        outside.discover(&config).unwrap()
    );
    let batches = read_all(&inside, &config);
    assert!(
        batches.iter().map(|batch| batch.items.len()).sum::<usize>() > 10,
        "the fixture has records"
    );
    assert_eq!(batches, read_all(&outside, &config));
    // A config error keeps its kind and message across the process boundary.
    let bad = serde_json::json!({"path": dir.path().join("missing")}).to_string();
    assert_eq!(
        inside.check(&bad).unwrap_err().to_string(),
        outside.check(&bad).unwrap_err().to_string()
    );

    // Synced through sources, both modes store the same.
    let mut counts = Vec::new();
    for (id, isolated) in [("inside", false), ("outside", true)] {
        let space = workspace(id);
        sources
            .create(
                &space,
                Source {
                    id: id.to_owned(),
                    connector: "stackexchange".to_owned(),
                    config_json: config.clone(),
                    isolated,
                    ..Source::default()
                },
            )
            .unwrap();
        let outcome = sync(&sources, &space, id);
        assert_eq!(outcome.status, SyncStatus::Succeeded, "{outcome:?}");
        counts.push((
            outcome.records_read,
            outcome.checkpoints_committed,
            store.counts(&space).unwrap(),
            store.sync_state(&space, id).unwrap(),
        ));
    }
    assert_eq!(counts[0], counts[1]);
}

#[test]
fn a_child_that_breaks_the_framing_or_exits_is_reported_and_stopped() {
    // Real programs in the runner's place: `echo` answers with its arguments, whose first four
    // bytes announce a frame far over the limit; `true` exits before it says anything.
    for (program, expected) in [
        (
            "/bin/echo",
            "the plugin process of source \"odd\" answered loading the library with bytes that are not a valid frame (a frame of",
        ),
        (
            "/bin/true",
            "the plugin process of source \"odd\" exited with status 0 during loading the library",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (sources, _store) = sources_with(
            dir.path(),
            IsolationSettings {
                runner: PathBuf::from(program),
                ..isolation()
            },
        );
        let forum = workspace("forum");
        sources.create(&forum, broken("odd", "ok", true)).unwrap();
        let (ok, message) = sources.check(&forum, "odd").unwrap();
        assert!(!ok && message.contains(expected), "{program}: {message}");
        let outcome = sync(&sources, &forum, "odd");
        assert_eq!(outcome.status, SyncStatus::Failed, "{program}: {outcome:?}");
        assert!(outcome.message.contains(expected), "{program}: {outcome:?}");
        if program == "/bin/echo" {
            assert!(message.contains("larger than the limit"), "{message}");
        }
        assert_no_zombies();
    }
}
