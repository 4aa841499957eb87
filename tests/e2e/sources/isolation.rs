//! Isolation mode end to end: the real server runs an isolated source's plugin in
//! `trellis-plugin-runner` (found next to the `trellis` binary, where cargo builds both). A plugin
//! that segfaults fails its own sync with an error naming the source and the signal; the server
//! keeps answering, and a well-behaved source synced at the same time succeeds.

use std::path::Path;

use super::{Server, connector_library, get_source, sources, start_with_plugins_and, sync_to_end};
use crate::pb;

fn runner_next_to_trellis() -> std::path::PathBuf {
    let runner = Path::new(crate::BIN).with_file_name(format!(
        "trellis-plugin-runner{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        runner.is_file(),
        "{} is not built; run cargo build -p trellis-plugin-host (cargo test --workspace builds it)",
        runner.display()
    );
    runner
}

async fn create_broken(server: &Server, id: &str, mode: &str, isolated: bool) -> pb::Source {
    sources(server)
        .create_source(pb::CreateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: id.to_owned(),
                connector: "broken".to_owned(),
                config_json: serde_json::json!({"mode": mode, "records": 10, "batch_size": 5})
                    .to_string(),
                isolated,
                ..pb::Source::default()
            }),
        })
        .await
        .expect("the source is created")
        .into_inner()
        .source
        .expect("the created source")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segfaulting_isolated_plugin_fails_its_sync_and_the_server_keeps_serving() {
    runner_next_to_trellis();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = connector_library("trellis_connector_broken");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    let mut server = start_with_plugins_and(
        &dir.path().join("t.db"),
        &plugins,
        &[("TRELLIS__PLUGINS__ISOLATED_CALL_TIMEOUT_SECONDS", "30")],
    )
    .await;

    let crashy = create_broken(&server, "crashy", "segfault", true).await;
    assert!(crashy.isolated, "{crashy:?}");
    create_broken(&server, "steady", "ok", false).await;

    let (crashed, steady) = tokio::join!(
        sync_to_end(&server, "crashy"),
        sync_to_end(&server, "steady")
    );
    let expected = "the plugin process of source \"crashy\" died with signal SIGSEGV";
    assert_eq!(crashed.status(), pb::SyncStatus::Failed, "{crashed:?}");
    assert!(crashed.message.contains(expected), "{crashed:?}");
    assert_eq!(
        crashed.records_stored, 5,
        "the batch before the crash: {crashed:?}"
    );
    assert_eq!(steady.status(), pb::SyncStatus::Succeeded, "{steady:?}");
    assert_eq!(steady.records_stored, 10, "{steady:?}");

    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    let saved = get_source(&server, "crashy").await;
    assert_eq!(saved.status(), pb::SyncStatus::Failed);
    assert!(saved.last_error.contains(expected), "{saved:?}");
    let health = server.cli_json(&["health"]);
    assert_eq!(health["serving"], true, "{health}");
    // The server goes on syncing, isolated sources included.
    create_broken(&server, "steady-isolated", "ok", true).await;
    let isolated = sync_to_end(&server, "steady-isolated").await;
    assert_eq!(isolated.status(), pb::SyncStatus::Succeeded, "{isolated:?}");
    assert_eq!(isolated.records_stored, 10, "{isolated:?}");
}
