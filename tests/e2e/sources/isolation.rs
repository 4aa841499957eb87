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

/// The live runner processes started for `library`, found by their command line.
fn runners_of(library: &Path) -> Vec<u32> {
    let wanted = library.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&byte| byte == 0)
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let runs_it = args
            .windows(2)
            .any(|pair| pair[0] == "--library" && pair[1] == wanted);
        // An exited process that nobody reaped yet (a zombie) is not running any more.
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if runs_it && !zombie {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_process_dies_with_a_server_killed_by_sigkill() {
    runner_next_to_trellis();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let built = connector_library("trellis_connector_broken");
    let library = plugins.join(built.file_name().unwrap());
    std::fs::copy(&built, &library).unwrap();
    let mut server = start_with_plugins_and(
        &dir.path().join("t.db"),
        &plugins,
        &[("TRELLIS__PLUGINS__ISOLATED_CALL_TIMEOUT_SECONDS", "600")],
    )
    .await;
    create_broken(&server, "stuck", "hang", true).await;
    let mut progress = sources(&server)
        .sync_source(pb::SyncSourceRequest {
            workspace: String::new(),
            id: "stuck".to_owned(),
            full_refresh: false,
        })
        .await
        .expect("the sync starts")
        .into_inner();
    // After the first checkpoint the plugin is inside the call that never returns.
    loop {
        let update = progress
            .message()
            .await
            .expect("the sync streams progress")
            .expect("the sync does not end before the first checkpoint");
        if update.checkpoints_committed >= 1 {
            break;
        }
    }
    let running = runners_of(&library);
    assert_eq!(
        running.len(),
        1,
        "one runner for the isolated source: {running:?}"
    );

    server.child.kill().expect("the server is killed");
    server.child.wait().expect("the server is reaped");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !runners_of(&library).is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "the plugin process outlived its server: {:?}",
            runners_of(&library)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
