//! Connector secrets end to end, with the real Discourse connector: an API key given in a
//! source's config reaches the plugin (a local forum that refuses requests without it answers
//! the check and the sync), yet no answer, no CLI output, no log line and no byte of the
//! database holds it; it is replaced alone from standard input; and it survives a key rotation.
//! (A server without a key refusing secrets is tested where the key is chosen, in `serve`, and
//! in the plugin host.)

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tonic::Code;
use trellis_conformance::built_library;

use super::super::{on_postgres, pb, test_dir, trellis};
use super::{plugin_dir, sources, start_with_plugins_logged};

const FIRST_SECRET: &str = "first-api-key-5f1c0e";
/// The forum is a local server, which the egress policy refuses unless the operator allows it.
const LOCAL_FORUM: (&str, &str) = ("TRELLIS__EGRESS__ALLOW_PRIVATE", "true");
const SECOND_SECRET: &str = "second-api-key-9b7d2a";

/// A forum that answers `/latest.json` (no topics) only to the API key it expects now.
struct Forum {
    base: String,
    expected: Arc<Mutex<String>>,
}

fn forum(expected: &str) -> Forum {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let expected = Arc::new(Mutex::new(expected.to_owned()));
    let wanted = Arc::clone(&expected);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let key = request
                .headers()
                .iter()
                .find(|header| header.field.equiv("Api-Key"))
                .map(|header| header.value.as_str().to_owned());
            let allowed = key.as_deref() == Some(wanted.lock().unwrap().as_str());
            let (status, body) = if !allowed {
                (403, r#"{"errors":["not allowed"]}"#.to_owned())
            } else if request.url().starts_with("/latest.json") {
                (
                    200,
                    r#"{"users":[],"topic_list":{"can_create_topic":false,"per_page":30,"topics":[]}}"#
                        .to_owned(),
                )
            } else {
                (404, r#"{"errors":["not found"]}"#.to_owned())
            };
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(
                    tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap(),
                );
            let _ = request.respond(response);
        }
    });
    Forum {
        base: format!("http://127.0.0.1:{port}"),
        expected,
    }
}

/// The template connector's folder, with the Discourse connector beside it.
fn plugins_with_discourse(root: &Path) -> std::path::PathBuf {
    let dir = plugin_dir(root);
    let library = built_library("trellis_connector_discourse");
    std::fs::copy(&library, dir.join(library.file_name().unwrap())).unwrap();
    dir
}

/// Every byte a test can look at for the secret: the database (its file, WAL and shared
/// memory) and the server's log.
fn assert_nowhere(secret: &str, files: &[&Path]) {
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{} holds the secret {secret:?}",
            file.display()
        );
    }
}

fn database_files(db: &Path) -> Vec<std::path::PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            name.into()
        })
        .collect()
}

fn cli(server_addr: &str, args: &[&str]) -> std::process::Command {
    let mut command = trellis();
    command.args(args).args(["--addr", server_addr]);
    command
}

async fn check(server: &super::super::Server, id: &str) -> pb::CheckSourceResponse {
    sources(server)
        .check_source(pb::CheckSourceRequest {
            workspace: String::new(),
            id: id.to_owned(),
        })
        .await
        .expect("the check runs")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_reach_the_plugin_and_nothing_else() {
    let dir = test_dir().unwrap();
    let plugins = plugins_with_discourse(dir.path());
    let db = dir.path().join("data").join("trellis.db");
    let log = dir.path().join("server.log");
    let forum = forum(FIRST_SECRET);
    // On SQLite, a loopback server makes its key beside the database; on PostgreSQL there is
    // no such folder, so the key comes from the environment, as an operator would give it.
    let first_key = {
        let output = trellis().args(["secrets", "new-key"]).output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let env_key: Vec<(&str, &str)> = if on_postgres() {
        vec![("TRELLIS_SECRETS_KEY", first_key.as_str()), LOCAL_FORUM]
    } else {
        vec![LOCAL_FORUM]
    };
    let server = start_with_plugins_logged(&db, &plugins, &env_key, Some(&log)).await;
    let key_file = db.parent().unwrap().join("secrets.key");
    if !on_postgres() {
        let mode = std::fs::metadata(&key_file).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600, "the generated key is private");
        for file in database_files(&db) {
            if let Ok(metadata) = std::fs::metadata(&file) {
                assert_eq!(
                    metadata.permissions().mode() & 0o777,
                    0o600,
                    "{} is readable by its owner only",
                    file.display()
                );
            }
        }
    }

    let config = serde_json::json!({
        "base_url": forum.base,
        "api_key": FIRST_SECRET,
        "api_username": "system",
    });
    let created = sources(&server)
        .create_source(pb::CreateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: "forum".to_owned(),
                connector: "discourse".to_owned(),
                config_json: config.to_string(),
                ..pb::Source::default()
            }),
        })
        .await
        .expect("a source with a secret is created")
        .into_inner()
        .source
        .unwrap();
    assert!(
        !created.config_json.contains(FIRST_SECRET),
        "{}",
        created.config_json
    );
    assert!(created.config_json.contains("api_username"));
    assert_eq!(
        created.secrets,
        [pb::SecretField {
            field: "api_key".to_owned(),
            set: true
        }]
    );

    // The plugin gets the key: the forum answers only to it.
    let answer = check(&server, "forum").await;
    assert!(answer.ok, "{answer:?}");
    let last = super::sync_to_end(&server, "forum").await;
    assert_eq!(
        last.status,
        pb::SyncStatus::Succeeded as i32,
        "{}",
        last.message
    );

    // No answer holds it: get, list, and the CLI's tables and JSON.
    let listed = sources(&server)
        .list_sources(pb::ListSourcesRequest {
            workspace: String::new(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{listed:?}").contains(FIRST_SECRET));
    assert!(!format!("{:?}", super::get_source(&server, "forum").await).contains(FIRST_SECRET));
    for args in [
        &["sources", "list"][..],
        &["sources", "list", "--json"],
        &["sources", "show", "forum"],
        &["sources", "show", "forum", "--json"],
    ] {
        let output = cli(&server.addr, args).output().unwrap();
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(!printed.contains(FIRST_SECRET), "{args:?}: {printed}");
        assert!(
            printed.contains("api_key"),
            "{args:?} says which secret is set: {printed}"
        );
    }

    // An update that leaves the key out keeps it.
    sources(&server)
        .update_source(pb::UpdateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: "forum".to_owned(),
                connector: "discourse".to_owned(),
                display_name: "The forum".to_owned(),
                config_json: serde_json::json!({"base_url": forum.base, "api_username": "system"})
                    .to_string(),
                ..pb::Source::default()
            }),
        })
        .await
        .expect("the update is accepted");
    assert!(check(&server, "forum").await.ok, "the kept key still works");

    // Replaced alone, from standard input.
    *forum.expected.lock().unwrap() = SECOND_SECRET.to_owned();
    assert!(
        !check(&server, "forum").await.ok,
        "the forum wants the new key"
    );
    let mut child = cli(&server.addr, &["sources", "set-secret", "forum", "api_key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{SECOND_SECRET}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECOND_SECRET));
    assert!(
        check(&server, "forum").await.ok,
        "the new key reaches the plugin"
    );

    // A field that is not a secret, and a refusal that would quote one.
    let status = sources(&server)
        .set_source_secrets(pb::SetSourceSecretsRequest {
            workspace: String::new(),
            id: "forum".to_owned(),
            set: BTreeMap::from([("base_url".to_owned(), "x".to_owned())])
                .into_iter()
                .collect(),
            clear: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("secrets.base_url"), "{status:?}");
    assert!(
        status.message().contains("api_key"),
        "names the secret fields: {status:?}"
    );
    drop(server);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("source created") && logged.contains("source secrets set"),
        "the log is written at debug, so its silence about the secret means something:\n{logged}"
    );
    for file in database_files(&db).iter().chain([&log]) {
        assert_nowhere(FIRST_SECRET, &[file]);
        assert_nowhere(SECOND_SECRET, &[file]);
    }

    // Rotation: a new current key, the old one kept as previous; the start seals anew.
    let second_key = {
        let output = trellis().args(["secrets", "new-key"]).output().unwrap();
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let old_key = if on_postgres() {
        first_key.clone()
    } else {
        std::fs::read_to_string(&key_file)
            .unwrap()
            .trim()
            .to_owned()
    };
    let rotated = [
        ("TRELLIS_SECRETS_KEY", second_key.as_str()),
        ("TRELLIS_SECRETS_PREVIOUS_KEYS", old_key.as_str()),
        LOCAL_FORUM,
    ];
    let server = start_with_plugins_logged(&db, &plugins, &rotated, None).await;
    assert!(
        check(&server, "forum").await.ok,
        "opened with the previous key"
    );
    drop(server);
    let server = start_with_plugins_logged(
        &db,
        &plugins,
        &[("TRELLIS_SECRETS_KEY", second_key.as_str()), LOCAL_FORUM],
        None,
    )
    .await;
    assert!(
        check(&server, "forum").await.ok,
        "sealed anew at the rotated start: the old key is no longer needed"
    );
    drop(server);
    // The old key alone no longer opens it, and the check says which key is missing.
    let server = start_with_plugins_logged(
        &db,
        &plugins,
        &[
            ("TRELLIS_SECRETS_KEY", old_key.as_str()),
            ("TRELLIS__SECRETS__KEY_FILE", "/nonexistent"),
            LOCAL_FORUM,
        ],
        None,
    )
    .await;
    let status = sources(&server)
        .check_source(pb::CheckSourceRequest {
            workspace: String::new(),
            id: "forum".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("previous_key_files"),
        "{status:?}"
    );
}
