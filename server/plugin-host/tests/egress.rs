//! The egress policy from the host's side, over the real blog plugin and a local feed server:
//! every config a plugin gets carries the operator's policy (by default no loopback), in
//! process and isolated alike, and a source cannot bring a policy of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use trellis_conformance::built_library;
use trellis_core::CoreError;
use trellis_core::domain::WorkspaceId;
use trellis_core::service::{Settings, Trellis};
use trellis_core::sources::{Source, SourceStore};
use trellis_core::store::Store;
use trellis_plugin_host::{IsolationSettings, PluginRegistry, Sources};
use trellis_plugin_sdk::egress::EgressPolicy;
use trellis_store::SqliteStore;

fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let library = built_library("trellis_connector_blog");
    std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
    plugins
}

fn sources(dir: &Path) -> (Sources, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(&dir.join("trellis.db")).unwrap());
    let trellis =
        Arc::new(Trellis::open(Arc::clone(&store) as Arc<dyn Store>, Settings::default()).unwrap());
    let registry = Arc::new(PluginRegistry::load(&[plugin_dir(dir)]));
    let sources = Sources::new(
        trellis,
        Arc::clone(&store) as Arc<dyn SourceStore>,
        registry,
    )
    .with_isolation(IsolationSettings {
        runner: PathBuf::from(env!("CARGO_BIN_EXE_trellis-plugin-runner")),
        call_timeout: std::time::Duration::from_secs(30),
        memory_mb: 1024,
    });
    (sources, store)
}

/// A feed on 127.0.0.1: its address and how many requests reached it.
fn feed() -> (String, Arc<AtomicUsize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let address = server.server_addr().to_ip().unwrap().to_string();
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/blog/tests/fixtures/rss2.xml"),
    )
    .unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = request.respond(tiny_http::Response::from_data(body.clone()));
        }
    });
    (address, requests)
}

fn blog(id: &str, config: serde_json::Value, isolated: bool) -> Source {
    Source {
        id: id.to_owned(),
        connector: "blog".to_owned(),
        config_json: config.to_string(),
        isolated,
        ..Source::default()
    }
}

fn sync_message(sources: &Sources, workspace: &WorkspaceId, id: &str) -> String {
    match sources.sync(workspace, id, false, &mut |_| {}) {
        Ok(progress) => format!("{:?}: {}", progress.status, progress.message),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_source_on_a_loopback_address_is_refused_by_default_in_process_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, _store) = sources(dir.path());
    let workspace = WorkspaceId::default_workspace();
    let (address, requests) = feed();
    let config = serde_json::json!({"feeds": [format!("http://{address}/feed.xml")]});
    for (id, isolated) in [("here", false), ("apart", true)] {
        sources
            .create(&workspace, blog(id, config.clone(), isolated))
            .unwrap();
        let (ok, message) = sources.check(&workspace, id).unwrap();
        assert!(!ok, "{id}: {message}");
        assert!(
            message.contains("refused by the egress policy"),
            "{id}: {message}"
        );
        assert!(message.contains("[egress] allow"), "{id}: {message}");
        let said = sync_message(&sources, &workspace, id);
        assert!(
            said.contains("refused by the egress policy"),
            "{id}: {said}"
        );
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "nothing reached the feed"
    );
}

#[test]
fn the_operators_allowance_reaches_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let (address, requests) = feed();
    let (sources, _store) = sources(dir.path());
    let sources = sources.with_egress(EgressPolicy::allowing([address.clone()]));
    let workspace = WorkspaceId::default_workspace();
    let config = serde_json::json!({"feeds": [format!("http://{address}/feed.xml")]});
    for (id, isolated) in [("here", false), ("apart", true)] {
        sources
            .create(&workspace, blog(id, config.clone(), isolated))
            .unwrap();
        let (ok, message) = sources.check(&workspace, id).unwrap();
        assert!(ok, "{id}: {message}");
        let said = sync_message(&sources, &workspace, id);
        assert!(said.starts_with("Succeeded"), "{id}: {said}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 4);
}

#[test]
fn a_source_cannot_bring_its_own_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, store) = sources(dir.path());
    let workspace = WorkspaceId::default_workspace();
    let (address, requests) = feed();
    let own_policy = serde_json::json!({
        "feeds": [format!("http://{address}/feed.xml")],
        "$trellis": {"egress": {"allow_private": true}}
    });
    match sources.create(&workspace, blog("mine", own_policy.clone(), false)) {
        Err(CoreError::Invalid(violations)) => {
            assert_eq!(violations[0].field, "source.config_json", "{violations:?}");
            assert!(
                violations[0].description.contains("$trellis"),
                "{violations:?}"
            );
            assert!(
                violations[0].description.contains("reserved"),
                "{violations:?}"
            );
        }
        other => panic!("a config with $trellis is refused: {other:?}"),
    }
    // One stored without the host's checks (a store written before them) is overwritten on
    // its way to the plugin.
    store
        .create_source(&workspace, &blog("stored", own_policy, false))
        .unwrap();
    let (ok, message) = sources.check(&workspace, "stored").unwrap();
    assert!(!ok, "{message}");
    assert!(
        message.contains("refused by the egress policy"),
        "{message}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 0);
}
