//! Isolation mode end to end: the real server runs an isolated source's plugin in
//! `trellis-plugin-runner` (found next to the `trellis` binary, where cargo builds both). A plugin
//! that segfaults fails its own sync with an error naming the source and the signal; the server
//! keeps answering, and a well-behaved source synced at the same time succeeds.

use std::path::Path;

use trellis_conformance::built_library;

use super::{Server, get_source, sources, start_sync, start_with_plugins_and, sync_to_end};
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
    let dir = crate::test_dir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_broken");
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
    let dir = crate::test_dir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let built = built_library("trellis_connector_broken");
    let library = plugins.join(built.file_name().unwrap());
    std::fs::copy(&built, &library).unwrap();
    let mut server = start_with_plugins_and(
        &dir.path().join("t.db"),
        &plugins,
        &[("TRELLIS__PLUGINS__ISOLATED_CALL_TIMEOUT_SECONDS", "600")],
    )
    .await;
    create_broken(&server, "stuck", "hang", true).await;
    let mut progress = start_sync(&server, "stuck").await;
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

/// A plugin folder holding the broken connector (which takes its start-up fault from
/// `TRELLIS_BROKEN_SPEC`) and the template.
fn folder_with_a_spec_crasher(root: &Path) -> std::path::PathBuf {
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for crate_name in ["trellis_connector_broken", "trellis_connector_template"] {
        let library = built_library(crate_name);
        std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    }
    plugins
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_crashes_in_spec_is_refused_at_start_and_the_server_serves_the_others() {
    runner_next_to_trellis();
    let dir = crate::test_dir().unwrap();
    let plugins = folder_with_a_spec_crasher(dir.path());
    let db = dir.path().join("t.db");
    let mut server =
        start_with_plugins_and(&db, &plugins, &[("TRELLIS_BROKEN_SPEC", "segfault")]).await;
    let connectors = server.cli_json(&["connectors", "list"]);
    let names: Vec<&str> = connectors
        .as_array()
        .expect("a list of connectors")
        .iter()
        .filter_map(|connector| connector["name"].as_str())
        .collect();
    assert_eq!(names, ["jsonl"], "{connectors}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    drop(server);

    // The switch: with specs read in the server process, the same plugin takes the server down
    // while it starts.
    let mut child = crate::trellis()
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .envs(crate::storage_settings(&db))
        .env(
            "TRELLIS__PLUGINS__DIRS",
            format!("[{:?}]", plugins.display().to_string()),
        )
        .env("TRELLIS__PLUGINS__PROBE_ISOLATED", "false")
        .env("TRELLIS_BROKEN_SPEC", "segfault")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the trellis binary starts");
    let until = std::time::Instant::now() + crate::START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server read the crashing spec out of process although probe_isolated = false"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(11), "SIGSEGV: {status:?}");
}
