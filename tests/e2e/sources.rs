//! Connector plugins end to end: the real server loads the template connector (a real shared
//! library) from a configured plugin folder, sources are managed over gRPC and the CLI, and a
//! server killed with SIGKILL in the middle of a sync resumes after restart without a gap or a
//! duplicate.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;
use trellis_conformance::built_library;
use trellis_core::domain::WorkspaceId;

use super::{ChildGuard, START_TIMEOUT, Server, pb, trellis, wait_until_serving};

mod egress;
mod isolation;
mod secrets;

/// A plugin folder holding the template connector.
pub(crate) fn plugin_dir(root: &Path) -> PathBuf {
    let dir = root.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let library = built_library("trellis_connector_template");
    std::fs::copy(&library, dir.join(library.file_name().unwrap())).unwrap();
    dir
}

/// `trellis serve` on `db`, loading plugins from `plugins`.
async fn start_with_plugins(db: &Path, plugins: &Path) -> Server {
    start_with_plugins_and(db, plugins, &[]).await
}

/// The same, with more `TRELLIS__…` settings in the environment.
pub(crate) async fn start_with_plugins_and(
    db: &Path,
    plugins: &Path,
    settings: &[(&str, &str)],
) -> Server {
    start_with_plugins_logged(db, plugins, settings, None).await
}

/// The same, writing the server's log (at `debug`) to `log` when given.
pub(crate) async fn start_with_plugins_logged(
    db: &Path,
    plugins: &Path,
    settings: &[(&str, &str)],
    log: Option<&Path>,
) -> Server {
    let (level, stderr) = match log {
        Some(path) => (
            "debug,h2=info,tower=info,hyper=info",
            Stdio::from(std::fs::File::create(path).unwrap()),
        ),
        None => ("warn", Stdio::null()),
    };
    let mut child = trellis()
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .envs(super::storage_settings(db))
        .envs(settings.iter().copied())
        .env(
            "TRELLIS__PLUGINS__DIRS",
            format!("[{:?}]", plugins.display().to_string()),
        )
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the trellis binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut guard = ChildGuard(Some(child));
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = sender.send(line);
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = tokio::task::spawn_blocking(move || receiver.recv_timeout(START_TIMEOUT))
        .await
        .unwrap()
        .expect("the server prints its address within the start timeout");
    let addr = line
        .trim()
        .strip_prefix("trellis listening on ")
        .unwrap_or_else(|| panic!("unexpected first line on stdout: {line:?}"))
        .to_owned();
    let channel = wait_until_serving(&addr).await;
    Server {
        child: guard.0.take().unwrap(),
        addr,
        channel,
    }
}

pub(crate) fn sources(server: &Server) -> pb::source_service_client::SourceServiceClient<Channel> {
    pb::source_service_client::SourceServiceClient::new(server.channel.clone())
}

pub(crate) fn write_conversations(path: &Path, count: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for n in 0..count {
        writeln!(
            file,
            r#"{{"type":"conversation","id":"c{n}","title":"thread {n}","body":"how do we trace request {n} across services"}}"#
        )
        .unwrap();
    }
    file.flush().unwrap();
}

pub(crate) async fn create_source(
    server: &Server,
    id: &str,
    config: serde_json::Value,
) -> pb::Source {
    sources(server)
        .create_source(pb::CreateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: id.to_owned(),
                connector: "jsonl".to_owned(),
                config_json: config.to_string(),
                ..pb::Source::default()
            }),
        })
        .await
        .expect("the source is created")
        .into_inner()
        .source
        .unwrap()
}

pub(crate) async fn get_source(server: &Server, id: &str) -> pb::Source {
    sources(server)
        .get_source(pb::GetSourceRequest {
            workspace: String::new(),
            id: id.to_owned(),
        })
        .await
        .expect("the source exists")
        .into_inner()
        .source
        .unwrap()
}

/// Polls a source until no sync of it is running (bounded), and returns it.
pub(crate) async fn wait_for_sync_end(server: &Server, id: &str) -> pb::Source {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let source = get_source(server, id).await;
        if source.status != pb::SyncStatus::Running as i32 {
            return source;
        }
        assert!(
            Instant::now() < deadline,
            "the sync of {id} did not end: {source:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts a sync of `id` and reads its progress until `checkpoints` are committed (bounded);
/// returns the stream, still open, and the checkpoints committed so far.
pub(crate) async fn sync_until_checkpoints(
    server: &Server,
    id: &str,
    checkpoints: u64,
) -> (tonic::Streaming<pb::SyncSourceResponse>, u64) {
    let mut stream = start_sync(server, id).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let progress = stream
            .message()
            .await
            .expect("the sync streams progress")
            .expect("the sync is still running");
        if progress.checkpoints_committed >= checkpoints {
            return (stream, progress.checkpoints_committed);
        }
        assert!(
            Instant::now() < deadline,
            "the sync of {id} made no progress"
        );
    }
}

/// Starts a sync (not a full refresh) and returns its progress stream.
pub(crate) async fn start_sync(
    server: &Server,
    id: &str,
) -> tonic::Streaming<pb::SyncSourceResponse> {
    sources(server)
        .sync_source(pb::SyncSourceRequest {
            workspace: String::new(),
            id: id.to_owned(),
            full_refresh: false,
        })
        .await
        .expect("the sync starts")
        .into_inner()
}

/// Runs a sync to its end and returns its last progress message.
async fn sync_to_end(server: &Server, id: &str) -> pb::SyncSourceResponse {
    sync_messages(server, id)
        .await
        .pop()
        .expect("at least one progress message")
}

/// Runs a sync to its end and returns every progress message.
async fn sync_messages(server: &Server, id: &str) -> Vec<pb::SyncSourceResponse> {
    let mut stream = start_sync(server, id).await;
    let mut messages = Vec::new();
    while let Some(progress) = stream.message().await.expect("the sync streams progress") {
        messages.push(progress);
    }
    messages
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_are_managed_over_grpc_and_the_cli_with_schema_validation() {
    let dir = crate::test_dir().unwrap();
    let server = start_with_plugins(&dir.path().join("t.db"), &plugin_dir(dir.path())).await;

    let connectors = server.cli_json(&["connectors", "list"]);
    assert_eq!(connectors[0]["name"], "jsonl", "{connectors}");
    assert_eq!(connectors[0]["abi"], "1.0");
    assert_eq!(connectors[0]["config_schema"]["required"][0], "path");

    let refused = sources(&server)
        .create_source(pb::CreateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: "forum".into(),
                connector: "jsonl".into(),
                config_json: r#"{"batch_size": 0}"#.into(),
                ..pb::Source::default()
            }),
        })
        .await
        .expect_err("a config against the schema is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = super::violations(&refused)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    assert_eq!(fields, ["source.config_json"], "{refused:?}");
    assert!(refused.message().contains("path"), "{}", refused.message());

    let data = dir.path().join("community.jsonl");
    std::fs::copy(super::example("community.jsonl"), &data).unwrap();
    let created = server.cli_json(&[
        "sources",
        "create",
        "community",
        "--connector",
        "jsonl",
        "--config",
        &serde_json::json!({"path": data}).to_string(),
    ]);
    assert_eq!(created["status"], "idle");
    let check = server.cli_json(&["sources", "check", "community"]);
    assert_eq!(check["ok"], true, "{check}");

    let output = server.cli(&["sources", "sync", "community"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "succeeded", "{lines:?}");
    assert_eq!(last["records_read"], 20);

    let listed = server.cli_json(&["sources", "list"]);
    assert_eq!(listed[0]["id"], "community");
    assert_eq!(listed[0]["records_synced"], 20);
    assert_eq!(listed[0]["status"], "succeeded");

    // The records are stored under the source's id, whatever source the file names.
    let (_, first_id) = super::conversation_ids_of_example().remove(0);
    let stored = server
        .ingest()
        .get_conversation(pb::GetConversationRequest {
            workspace: String::new(),
            r#ref: super::reference("community", &first_id),
        })
        .await
        .expect("a synced conversation is stored under the source id")
        .into_inner();
    assert_eq!(
        stored.conversation.unwrap().r#ref.unwrap().external_id,
        first_id
    );

    let deleted = server.cli_json(&["sources", "delete", "community"]);
    assert_eq!(deleted["deleted"], "community");
    let missing = sources(&server)
        .get_source(pb::GetSourceRequest {
            workspace: String::new(),
            id: "community".into(),
        })
        .await
        .expect_err("a deleted source is gone");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_mid_sync_resumes_after_restart_without_gaps_or_duplicates() {
    const TOTAL: usize = 20_000;
    let dir = crate::test_dir().unwrap();
    let db = dir.path().join("t.db");
    let plugins = plugin_dir(dir.path());
    let data = dir.path().join("big.jsonl");
    write_conversations(&data, TOTAL);

    // A short lease, so that on PostgreSQL (where the killed server's lease must run out before
    // anyone takes its sync over) the test does not wait long.
    let lease = [("TRELLIS__SYNC__LEASE_SECONDS", "3")];
    let server = start_with_plugins_and(&db, &plugins, &lease).await;
    // 100 batches of 200 records, 30 ms apart: a sync of a few seconds to kill in the middle.
    create_source(
        &server,
        "big",
        serde_json::json!({"path": data, "batch_size": 200, "throttle_ms": 30}),
    )
    .await;
    let (stream, committed_before_kill) = sync_until_checkpoints(&server, "big", 20).await;
    drop(stream);
    let mut server = server;
    server.child.kill().expect("SIGKILL is delivered");
    server.child.wait().unwrap();
    drop(server);

    let server = start_with_plugins_and(&db, &plugins, &lease).await;
    let interrupted = get_source(&server, "big").await;
    let synced_before = interrupted.records_synced;
    assert!(
        synced_before >= committed_before_kill * 200 && synced_before < TOTAL as u64,
        "the committed checkpoints survived the kill: {synced_before}"
    );
    if super::on_postgres() {
        // A database replicas share: the restarted server cannot tell the killed one from a
        // live replica until its lease runs out; then its scheduler takes the sync over.
        assert_eq!(
            interrupted.status,
            pb::SyncStatus::Running as i32,
            "{interrupted:?}"
        );
        let taken_over = wait_for_sync_end(&server, "big").await;
        assert_eq!(
            taken_over.status,
            pb::SyncStatus::Succeeded as i32,
            "{taken_over:?}"
        );
    } else {
        // One process owns a SQLite file: the sync marked running was the killed server's.
        assert_eq!(
            interrupted.status,
            pb::SyncStatus::Failed as i32,
            "{interrupted:?}"
        );
        assert!(
            interrupted
                .last_error
                .contains("resumes from its last checkpoint")
        );
        let resumed = sync_to_end(&server, "big").await;
        assert_eq!(
            resumed.status,
            pb::SyncStatus::Succeeded as i32,
            "{resumed:?}"
        );
        assert!(
            resumed.records_read <= TOTAL as u64 - synced_before,
            "the second sync resumed after the last committed checkpoint: read {} of {TOTAL}, {synced_before} already committed",
            resumed.records_read
        );
    }
    let after = get_source(&server, "big").await;
    assert_eq!(
        after.records_synced, TOTAL as u64,
        "every record is covered by exactly one committed checkpoint"
    );
    let status = server.terminate().await;
    assert!(status.success(), "the server stops cleanly: {status}");

    // Count what is stored: every record, once.
    // On a thread of its own: the PostgreSQL client blocks, which an async test's thread must not.
    let counts = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let store = super::open_store(&db);
                store.counts(&WorkspaceId::default_workspace()).unwrap()
            })
            .join()
            .unwrap()
    });
    assert_eq!(counts.conversations, TOTAL as u64, "no gap, no duplicate");
}

/// A local HTTP server for a feed: answers each request with the next of `answers` (status,
/// extra header), then with the feed; counts the requests.
struct FlakyFeed {
    url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn flaky_feed(
    answers: Vec<(u16, Option<(&'static str, &'static str)>)>,
    always: Option<u16>,
) -> FlakyFeed {
    use std::sync::atomic::Ordering;
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a local HTTP server starts");
    let url = format!("http://{}/feed.xml", server.server_addr().to_ip().unwrap());
    let feed = std::fs::read(Path::new(super::ROOT).join("plugins/blog/tests/fixtures/rss2.xml"))
        .expect("the blog connector's RSS fixture");
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&requests);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let response = match (always, answers.get(n)) {
                (Some(status), _) => {
                    tiny_http::Response::from_data(Vec::new()).with_status_code(status)
                }
                (None, Some((status, header))) => {
                    let mut response =
                        tiny_http::Response::from_data(Vec::new()).with_status_code(*status);
                    if let Some((name, value)) = header {
                        response = response.with_header(
                            tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                                .unwrap(),
                        );
                    }
                    response
                }
                (None, None) => tiny_http::Response::from_data(feed.clone()).with_header(
                    tiny_http::Header::from_bytes("Content-Type", "application/rss+xml").unwrap(),
                ),
            };
            let _ = request.respond(response);
        }
    });
    FlakyFeed { url, requests }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_retries_transient_errors_and_rate_limits_then_gives_up_with_the_reason() {
    use std::sync::atomic::Ordering;
    let dir = crate::test_dir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_blog");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    let server = start_with_plugins_and(
        &dir.path().join("trellis.db"),
        &plugins,
        &[
            ("TRELLIS__SYNC__RETRY_MIN_DELAY_MS", "100"),
            // The feeds are local servers, which the egress policy refuses unless allowed.
            ("TRELLIS__EGRESS__ALLOW_PRIVATE", "true"),
        ],
    )
    .await;

    // A 503, then a 429 asking for a second's pause, then the feed.
    let flaky = flaky_feed(vec![(503, None), (429, Some(("Retry-After", "1")))], None);
    let create = |id: &str, url: &str| pb::CreateSourceRequest {
        workspace: String::new(),
        source: Some(pb::Source {
            id: id.to_owned(),
            connector: "blog".to_owned(),
            config_json: serde_json::json!({ "feeds": [url] }).to_string(),
            ..pb::Source::default()
        }),
    };
    sources(&server)
        .create_source(create("flaky", &flaky.url))
        .await
        .expect("the blog source is created");
    let started = Instant::now();
    let messages = sync_messages(&server, "flaky").await;
    let last = messages.last().unwrap();
    assert_eq!(last.status, pb::SyncStatus::Succeeded as i32, "{last:?}");
    assert!(last.records_stored > 0, "{last:?}");
    assert_eq!(flaky.requests.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the rate limit's retry-after was honoured"
    );
    let said: Vec<&str> = messages.iter().map(|m| m.message.as_str()).collect();
    assert!(
        said.iter()
            .any(|m| m.contains("503") && m.contains("attempt 2 of 5")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|m| m.contains("429") && m.contains("attempt 3 of 5")),
        "{said:?}"
    );
    let stored = get_source(&server, "flaky").await;
    assert_eq!(stored.last_error, "", "{stored:?}");

    // A feed that is always down: five reads, then the sync fails and says why.
    let down = flaky_feed(Vec::new(), Some(502));
    sources(&server)
        .create_source(create("down", &down.url))
        .await
        .expect("the blog source is created");
    let last = sync_to_end(&server, "down").await;
    assert_eq!(last.status, pb::SyncStatus::Failed as i32, "{last:?}");
    assert!(
        last.message.contains("502") && last.message.contains("gave up after 5 attempts"),
        "{last:?}"
    );
    assert_eq!(down.requests.load(Ordering::SeqCst), 5);
    assert!(
        get_source(&server, "down")
            .await
            .last_error
            .contains("gave up")
    );

    // A rate limit asking for longer than the longest wait ends the sync at once.
    let slow = flaky_feed(vec![(429, Some(("Retry-After", "86400")))], None);
    sources(&server)
        .create_source(create("slow", &slow.url))
        .await
        .expect("the blog source is created");
    let last = sync_to_end(&server, "slow").await;
    assert_eq!(last.status, pb::SyncStatus::Failed as i32, "{last:?}");
    assert!(last.message.contains("86400"), "{last:?}");
    assert_eq!(slow.requests.load(Ordering::SeqCst), 1);
}

/// A write key must not be a way to read the server's files: a source's paths must lie below
/// the operator's `[files] roots`, symbolic links resolved, checked when the source is made and
/// again before every sync; a refusal names the field and the setting.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_may_name_only_files_below_the_roots_and_no_link_out_of_them() {
    let dir = crate::test_dir().unwrap();
    let db = dir.path().join("t.db");
    let plugins = plugin_dir(dir.path());
    let root = dir.path().join("imports");
    std::fs::create_dir_all(&root).unwrap();
    let inside = root.join("community.jsonl");
    write_conversations(&inside, 3);
    let outside = dir.path().join("other-tenant.jsonl");
    write_conversations(&outside, 3);
    std::os::unix::fs::symlink(&outside, root.join("link.jsonl")).unwrap();
    let roots = serde_json::to_string(&[root.display().to_string()]).unwrap();
    let settings = [("TRELLIS__FILES__ROOTS", roots.as_str())];
    let server = start_with_plugins_and(&db, &plugins, &settings).await;

    let create = |id: &str, path: String| {
        let mut client = sources(&server);
        let request = pb::CreateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: id.to_owned(),
                connector: "jsonl".into(),
                config_json: serde_json::json!({ "path": path }).to_string(),
                ..pb::Source::default()
            }),
        };
        async move { client.create_source(request).await }
    };
    let link = root.join("link.jsonl").display().to_string();
    let climbing = root.join("../other-tenant.jsonl").display().to_string();
    let missing = root.join("missing.jsonl").display().to_string();
    for (path, says) in [
        ("/etc/passwd".to_owned(), "is outside"),
        (outside.display().to_string(), "is outside"),
        (climbing, "is outside"),
        (link, "symbolic link"),
        (missing, "does not exist"),
    ] {
        let refused = create("s", path.clone())
            .await
            .expect_err("a path outside the roots is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{path}: {refused:?}");
        let violations = super::violations(&refused);
        assert_eq!(violations[0].0, "source.config_json.path", "{violations:?}");
        assert!(violations[0].1.contains(says), "{path}: {violations:?}");
        if says != "does not exist" {
            assert!(violations[0].1.contains("[files] roots"), "{violations:?}");
        }
    }
    // A file deleted after its source was made: the source's check says so (the connector's
    // words), it is not refused as a config.
    let gone = root.join("gone.jsonl");
    write_conversations(&gone, 1);
    create("later", gone.display().to_string())
        .await
        .expect("a file below the root is taken");
    std::fs::remove_file(&gone).unwrap();
    let checked = sources(&server)
        .check_source(pb::CheckSourceRequest {
            workspace: String::new(),
            id: "later".into(),
        })
        .await
        .expect("the check runs")
        .into_inner();
    assert!(!checked.ok, "{checked:?}");
    assert!(checked.message.contains("gone.jsonl"), "{checked:?}");
    create("ok", inside.display().to_string())
        .await
        .expect("a file below the root is taken");
    let output = server.cli(&["sources", "sync", "ok"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(last["status"], "succeeded", "{stdout}");
    assert_eq!(last["records_read"], 3, "{stdout}");

    // The file is swapped for a link out of the root after the source was made: the next sync
    // is refused before the plugin opens anything.
    std::fs::remove_file(&inside).unwrap();
    std::os::unix::fs::symlink(&outside, &inside).unwrap();
    let output = server.cli(&["sources", "sync", "ok"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("symbolic link"), "{said}");
}
