//! The egress policy end to end, with the real blog connector and a local feed server: a source
//! pointing at `http://127.0.0.1:PORT/` is refused by a server with the default policy (the
//! check and the sync say so and name `[egress]`; nothing reaches the feed), works on a server
//! whose operator allows it, never quotes what a failing peer answered, and cannot bring a
//! policy of its own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::Code;
use trellis_conformance::built_library;

use super::super::{ROOT, Server, pb, test_dir, violations};
use super::{sources, start_with_plugins_and, sync_to_end};

/// What the feed server answers on `/fail.xml`: never in an error text.
const PEER_SECRET: &str = "internal-dashboard-token-41ac7";

/// A local feed server: `/feed.xml` is the blog connector's RSS fixture, `/fail.xml` a 500
/// whose body holds [`PEER_SECRET`]. Its address and how many requests reached it.
fn feed_server() -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a local HTTP server starts");
    let address = server.server_addr().to_ip().unwrap().to_string();
    let feed = std::fs::read(Path::new(ROOT).join("plugins/blog/tests/fixtures/rss2.xml"))
        .expect("the blog connector's RSS fixture");
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            counted.fetch_add(1, Ordering::SeqCst);
            let response = if request.url() == "/fail.xml" {
                tiny_http::Response::from_data(format!("debug: {PEER_SECRET}").into_bytes())
                    .with_status_code(500)
            } else {
                tiny_http::Response::from_data(feed.clone())
            };
            let _ = request.respond(response);
        }
    });
    (address, requests)
}

async fn create(server: &Server, id: &str, config: serde_json::Value) -> Result<(), tonic::Status> {
    sources(server)
        .create_source(pb::CreateSourceRequest {
            workspace: String::new(),
            source: Some(pb::Source {
                id: id.to_owned(),
                connector: "blog".to_owned(),
                config_json: config.to_string(),
                ..pb::Source::default()
            }),
        })
        .await
        .map(|_| ())
}

async fn check(server: &Server, id: &str) -> pb::CheckSourceResponse {
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
async fn a_blog_on_a_loopback_address_is_refused_by_default_and_fetched_when_allowed() {
    let dir = test_dir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_blog");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    let db = dir.path().join("trellis.db");
    let (address, requests) = feed_server();
    let feed = serde_json::json!({"feeds": [format!("http://{address}/feed.xml")]});
    let by_name = serde_json::json!({"feeds": [format!("http://localhost:{}/feed.xml", address.rsplit_once(':').unwrap().1)]});

    let server = start_with_plugins_and(&db, &plugins, &[]).await;
    // A source cannot set the policy itself.
    let own = serde_json::json!({
        "feeds": [format!("http://{address}/feed.xml")],
        "$trellis": {"egress": {"allow_private": true}}
    });
    let refused = create(&server, "own", own).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let said = violations(&refused);
    assert!(
        said[0].1.contains("$trellis") && said[0].1.contains("reserved"),
        "{said:?}"
    );

    create(&server, "feed", feed)
        .await
        .expect("created: the URL is checked when fetched");
    create(&server, "named", by_name).await.expect("created");
    for id in ["feed", "named"] {
        let checked = check(&server, id).await;
        assert!(!checked.ok, "{id}: {checked:?}");
        assert!(
            checked.message.contains("refused by the egress policy"),
            "{id}: {checked:?}"
        );
        assert!(
            checked.message.contains("[egress] allow"),
            "{id}: {checked:?}"
        );
        let last = sync_to_end(&server, id).await;
        assert_eq!(last.status, pb::SyncStatus::Failed as i32, "{id}: {last:?}");
        assert!(last.message.contains("[egress]"), "{id}: {last:?}");
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "the server never fetched loopback"
    );
    drop(server);

    // The operator allows this one address and port: the same source works.
    let allow = format!("[{address:?}]");
    let server =
        start_with_plugins_and(&db, &plugins, &[("TRELLIS__EGRESS__ALLOW", allow.as_str())]).await;
    let checked = check(&server, "feed").await;
    assert!(checked.ok, "{checked:?}");
    let last = sync_to_end(&server, "feed").await;
    assert_eq!(last.status, pb::SyncStatus::Succeeded as i32, "{last:?}");
    assert!(last.records_stored > 0, "{last:?}");

    // What an allowed peer answers when it fails is not quoted.
    create(
        &server,
        "failing",
        serde_json::json!({"feeds": [format!("http://{address}/fail.xml")]}),
    )
    .await
    .expect("created");
    let checked = check(&server, "failing").await;
    assert!(!checked.ok, "{checked:?}");
    assert!(checked.message.contains("500"), "{checked:?}");
    assert!(!checked.message.contains(PEER_SECRET), "{checked:?}");
}
